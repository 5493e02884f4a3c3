//! Writes the ledger kept as test data in `crates/assay-record/testdata/log`: one record of every
//! type as this version writes it, after the records earlier versions wrote (version 1 of
//! decision, finding, lineage-event and provenance, and a verdict with millisecond time), so
//! that tests hold every later version to reading them.
//!
//!     cargo run -p assay-record --example record_log -- crates/assay-record/testdata/log
//!
//! Run it only when a new record type or version is added (and keep the old log's entries: the
//! test data is what earlier versions wrote). The signing key is fixed, so the checkpoint is
//! signed by `assay.dev/record-testdata`, verifier key in `testdata/log.pub`.

use assay_estate::Origin;
use assay_ledger::note::NoteSigner;
use assay_ledger::store::Log;
use assay_lineage::check::{Finding, Violation};
use assay_record::{
    ActivationRecord, DecisionRecord, EstateAt, EventFindingRecord, EventRef, Record, RefusalRecord, SignatureCheck,
    Time,
};
use assay_verdict::{EstateRef, Evaluated, VerdictInput};
use serde_json::json;

/// What version 1 wrote, byte for byte (canonical JSON).
const VERSION_1: [&str; 5] = [
    r#"{"estate":{"name":"acme","origin":{"kind":"directory","path":"estate"},"revision":"sha256:6b1f"},"time":"2026-11-23T07:00:00.000Z","type":"assay.dev/record/verdict/v1","verdict":{"digest":"sha256:00ff","schema":"assay.dev/verdict/v1","summary":{"budget_findings":0,"commits_checked":0,"denied":1,"dryrun":0,"errors":0,"objects":3,"passed":false,"policies":2,"untrusted_commits":0,"warnings":0}}}"#,
    r#"{"decision_id":"5d0c9d64-63a2-4d8a-9a51-7f1b2f6c1a10","estate":{"name":"acme","revision":"abc123"},"input":{"request":{"uid":"u1"}},"path":"admission","result":{"allowed":true},"timestamp":"2026-11-20T10:00:00.123456Z","type":"assay.dev/record/decision/v1"}"#,
    r#"{"alerts":1,"decision_id":"d2","estate":{"name":"acme","revision":"abc123"},"event":{"id":"e1","source":"s3","type":"com.example.object.created"},"finding":{"msg":"public bucket","quarantine":true},"quarantine":true,"timestamp":"2026-11-20T10:00:01.000001Z","type":"assay.dev/record/finding/v1"}"#,
    r#"{"digest":"sha256:aa11","eventTime":"2026-11-20T09:00:00Z","eventType":"COMPLETE","job":"etl:daily","producer":"https://example.com/producer","run":"0190a6c4-7d2e-7c3a-9b1e-3f5a2b1c4d5e","type":"assay.dev/record/lineage-event/v1"}"#,
    r#"{"envelope_sha256":"bb22","run":"0190a6c4-7d2e-7c3a-9b1e-3f5a2b1c4d5e","subject":{"annotations":{"version":"v7"},"digest":{"sha256":"cc33"},"name":"dataset:s3://acme-eu:features"},"type":"assay.dev/record/provenance/v1"}"#,
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: record_log DIR")?;
    let signer = NoteSigner::from_seed("assay.dev/record-testdata", [7; 32])?;
    let mut log = Log::create(std::path::Path::new(&dir), signer.clone())?;
    let estate = EstateAt { name: Some("acme".into()), revision: "abc123".into() };

    let verdict = assay_verdict::verdict(VerdictInput {
        estate: EstateRef { name: Some("acme".into()), origin: Origin::Directory { path: "estate".into() } },
        head: Evaluated { objects: &[], evaluations: &[], subjects: &[] },
        policies: 2,
        base: None,
        changes: Vec::new(),
        commits: Vec::new(),
        diagnostics: Vec::new(),
        cost: None,
    });
    let event = assay_lineage::parse(&json!({
        "eventType": "COMPLETE",
        "eventTime": "2026-11-20T09:00:00Z",
        "producer": "https://example.com/producer",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": "0190a6c4-7d2e-7c3a-9b1e-3f5a2b1c4d5e"},
        "job": {"namespace": "etl", "name": "daily"},
        "inputs": [],
        "outputs": [{"namespace": "s3://acme-eu", "name": "features"}],
    }))?;
    let finding = Finding {
        violation: Violation::Process,
        classification: "GDPR_SENSITIVE".into(),
        region: "us-east-1".into(),
        job: "job:etl:train".into(),
        dataset: "dataset:s3://acme-eu:features".into(),
        path: vec!["dataset:s3://acme-eu:features".into(), "job:etl:train".into()],
        rule: "residency/gdpr.yaml:1".into(),
        message: "GDPR_SENSITIVE data processed in us-east-1".into(),
    };
    let run = assay_lineage::provenance::Run {
        job: "job:etl:daily".into(),
        run_id: "0190a6c4-7d2e-7c3a-9b1e-3f5a2b1c4d5e".into(),
        producer: "https://example.com/producer".into(),
        started: None,
        finished: Some("2026-11-20T09:00:00Z".into()),
    };
    let statement = assay_lineage::provenance::statement(("s3://acme-eu", "features", "v7"), &run, &[]);
    let envelope = assay_lineage::provenance::envelope(&statement, signer.name(), |m| signer.sign_bytes(m));

    let mut decision = DecisionRecord::new(
        "5d0c9d64-63a2-4d8a-9a51-7f1b2f6c1a11",
        "authz/allow",
        &json!({"user": "alice"}),
        Some(&json!(true)),
        estate.clone(),
    );
    decision.masked = vec!["/input/user".into()];
    let current = vec![
        Record::verdict(&verdict, "sha256:6b1f".into())?,
        Record::Decision(decision),
        Record::EventFinding(EventFindingRecord {
            decision_id: "d3".into(),
            event: EventRef { id: "e2".into(), source: "s3".into(), kind: "com.example.object.created".into() },
            finding: json!({"msg": "public bucket"}),
            alerts: 1,
            quarantine: false,
            time: Time::now(),
            estate: estate.clone(),
        }),
        Record::Activation(ActivationRecord {
            time: Time::now(),
            estate: estate.clone(),
            previous: Some("9f8e".into()),
            policies: 4,
            signatures: vec![SignatureCheck { commit: "abc123".into(), trusted: true, detail: "alice".into() }],
        }),
        Record::Refusal(RefusalRecord {
            time: Time::now(),
            estate: EstateAt { name: Some("acme".into()), revision: "def456".into() },
            active: Some("abc123".into()),
            reasons: vec!["commit def456 (wip): unsigned".into()],
        }),
        Record::lineage_event(&event),
        Record::residency_finding(&finding, Time::now(), estate),
        Record::provenance(&statement, &envelope, &run.run_id)?,
    ];
    let mut entries: Vec<Vec<u8>> = VERSION_1.iter().map(|e| e.as_bytes().to_vec()).collect();
    for record in &current {
        entries.push(record.to_entry()?);
    }
    log.append(&entries)?;
    drop(log);
    // The writer's lock and batch marker are no part of the kept log.
    for leftover in [".lock", ".pending"] {
        let _ = std::fs::remove_file(std::path::Path::new(&dir).join(leftover));
    }
    std::fs::write(format!("{dir}.pub"), format!("{}\n", signer.verifier().text()))?;
    println!("wrote {} entries to {dir}", entries.len());
    Ok(())
}
