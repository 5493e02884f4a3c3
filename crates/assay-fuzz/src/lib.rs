//! The fuzz targets' bodies: each takes arbitrary bytes, feeds them to one of assay's parsers
//! of outside input, and checks what must hold whatever the input (no panic; what parses
//! round-trips). `fuzz/` runs them under libFuzzer with cargo-fuzz; `tests/corpus.rs` replays
//! their corpora and every crasher found (`fuzz/regressions/`) as ordinary tests.

use std::path::Path;
use std::sync::OnceLock;

use serde_json::Value;

/// A target's body.
pub type Target = fn(&[u8]);

/// Every target, by the name cargo-fuzz knows it by.
pub const TARGETS: [(&str, Target); 5] = [
    ("focus_row", focus_row),
    ("estate_files", estate_files),
    ("openlineage_event", openlineage_event),
    ("signed_note", signed_note),
    ("admission_review", admission_review),
];

/// A FOCUS export: the bytes as CSV, the first record the header, every other record a row
/// checked by the validator the ingest uses; every field also as a decimal and a date-time.
pub fn focus_row(data: &[u8]) {
    use assay_cost::validate::{Header, format_decimal, parse_datetime, parse_decimal, row};
    let mut reader = csv::ReaderBuilder::new().flexible(true).has_headers(false).from_reader(data);
    let mut header: Option<Header> = None;
    for record in reader.records().take(64) {
        let Ok(record) = record else { continue };
        let fields: Vec<&str> = record.iter().collect();
        for field in &fields {
            if let Ok(value) = parse_decimal(field) {
                // What parses prints back to the same value.
                let printed = format_decimal(value, 16);
                assert_eq!(parse_decimal(&printed), Ok(value), "{field:?} printed as {printed:?}");
            }
            let _ = parse_datetime(field);
        }
        match &header {
            None => header = Header::new(&fields).ok(),
            Some(h) if fields.len() == h.positions.iter().flatten().count() + h.extra.len() => {
                let _ = row(h, &fields);
            }
            Some(_) => {}
        }
    }
}

/// Estate files: the first byte picks which file of an estate the rest is (a manifest in YAML
/// or JSON, the settings, a budget, prices, residency rules, policy data, a constraint, the
/// allowed signers).
pub fn estate_files(data: &[u8]) {
    const PATHS: [&str; 9] = [
        "manifests/app.yaml",
        "manifests/app.json",
        "assay.yaml",
        "budgets/team.yaml",
        "pricing/prices.yaml",
        "residency/rules.yaml",
        "policies/data.yaml",
        "constraints/required.yaml",
        ".assay/allowed_signers",
    ];
    let Some((&pick, bytes)) = data.split_first() else { return };
    let path = PATHS[usize::from(pick) % PATHS.len()];
    let files = vec![assay_estate::RawFile { path: path.to_string(), bytes: bytes.to_vec() }];
    let origin = assay_estate::Origin::Directory { path: "fuzz".into() };
    let estate = assay_estate::Estate::from_files(origin, files, Vec::new());
    for d in &estate.diagnostics {
        // Every problem names the file it is in.
        assert_eq!(d.path, path, "{d}");
    }
}

/// An OpenLineage event as it arrives over HTTP.
pub fn openlineage_event(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else { return };
    let _ = assay_lineage::event::parse(&value);
}

fn signer() -> &'static assay_ledger::note::NoteSigner {
    static SIGNER: OnceLock<assay_ledger::note::NoteSigner> = OnceLock::new();
    SIGNER.get_or_init(|| {
        assay_ledger::note::NoteSigner::from_seed("fuzz.example/log", [7; 32]).expect("a fixed key makes a signer")
    })
}

/// A signed note and a checkpoint: verified against a fixed key, parsed; a checkpoint that
/// parses prints back to itself, and any text that can be signed verifies.
pub fn signed_note(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let verifier = signer().verifier();
    let _ = verifier.verify(text);
    let _ = assay_ledger::note::signature_keys(text);
    if let Ok(checkpoint) = assay_ledger::checkpoint::Checkpoint::parse(text) {
        let again = assay_ledger::checkpoint::Checkpoint::parse(&checkpoint.text());
        assert_eq!(again.as_ref().map(|c| c.text()), Ok(checkpoint.text()));
    }
    if let Ok(note) = signer().sign(text) {
        assert_eq!(verifier.verify(&note), Ok(text), "a note just signed verifies");
    }
}

fn policies() -> &'static assay_policy::PolicySet {
    static POLICIES: OnceLock<assay_policy::PolicySet> = OnceLock::new();
    POLICIES.get_or_init(|| {
        // A request the fuzzer makes should not run for long: past this it is an error.
        assay_policy::set_evaluation_time_limit(Some(std::time::Duration::from_millis(200)));
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/estate");
        let estate = assay_estate::source::load_dir(&root).expect("the example estate loads");
        assay_policy::PolicySet::from_estate(&estate)
    })
}

/// An AdmissionReview as the API server posts it: parsed as the webhook parses it, then
/// reviewed by the example estate's policies and constraints.
pub fn admission_review(data: &[u8]) {
    let Ok(review) = serde_json::from_slice::<Value>(data) else { return };
    let Ok((_uid, request)) = assay_policy::review::admission_request(&review) else { return };
    let _ = policies().review(&request);
}
