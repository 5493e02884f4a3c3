//! The ledger kept in `testdata/log` holds what earlier versions wrote: every entry must still
//! read as its record, with the fields it had.

use assay_ledger::note::NoteVerifier;
use assay_ledger::reader::Reader;
use assay_record::Record;

fn kept() -> Vec<Record> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let key = std::fs::read_to_string(dir.join("log.pub")).expect("verifier key");
    let verifier = NoteVerifier::from_text(key.trim()).expect("a verifier key");
    let reader = Reader::open(&dir.join("log"), Some(&verifier)).expect("the kept log");
    let size = reader.checkpoint().size;
    reader
        .entries(0..size)
        .expect("entries")
        .iter()
        .enumerate()
        .map(|(i, e)| match Record::from_entry(e) {
            Ok(Some(r)) => r,
            other => panic!("entry {i}: {other:?}: {}", String::from_utf8_lossy(e)),
        })
        .collect()
}

#[test]
fn version_1_records_are_read_with_their_times() {
    let records = kept();
    let Record::Decision(d) = &records[1] else { panic!("entry 1 is a decision/v1") };
    assert_eq!(d.time.to_string(), "2026-11-20T10:00:00.123456Z");
    assert_eq!(d.input.as_ref().map(|i| i["request"]["uid"].clone()), Some("u1".into()));
    let Record::EventFinding(f) = &records[2] else { panic!("entry 2 is a finding/v1") };
    assert!(f.quarantine && f.alerts == 1);
    let Record::LineageEvent(l) = &records[3] else { panic!("entry 3 is a lineage-event/v1") };
    assert_eq!((l.time, l.job.as_deref()), (None, Some("etl:daily")));
    let Record::Provenance(p) = &records[4] else { panic!("entry 4 is a provenance/v1") };
    assert_eq!(p.subject.digest.get("sha256").map(String::as_str), Some("cc33"));
    let Record::Verdict(v) = &records[0] else { panic!("entry 0 is a verdict/v1") };
    assert_eq!(v.time.to_string(), "2026-11-23T07:00:00.000000Z");
    assert!(!v.verdict.summary.passed);
}

#[test]
fn every_record_type_written_now_reads_back_to_the_same_entry() {
    let records = kept();
    for record in &records[5..] {
        let entry = record.to_entry().expect("entry");
        assert_eq!(Record::from_entry(&entry).as_ref(), Ok(&Some(record.clone())), "{}", record.kind());
    }
    let mut kinds: Vec<&str> = records.iter().map(Record::kind).collect();
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(kinds.len(), 8, "{kinds:?}");
}
