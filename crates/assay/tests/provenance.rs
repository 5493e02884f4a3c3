//! Signed provenance, checked by an independent implementation: `assay lineage provenance`
//! writes a DSSE envelope (in-toto Statement v1, SLSA Provenance v1) that Python's
//! securesystemslib verifies with the Ed25519 public key, and refuses once a byte changes.
//! securesystemslib is installed from PyPI into a virtual environment under the target directory
//! the first time (scripts/test.sh does the same up front).

mod common;

use common::{assay, stderr, stdout};
use serde_json::{Value, json};

fn run_event(run: u32, state: &str, job: &str, inputs: Vec<Value>, outputs: Vec<Value>) -> Value {
    json!({
        "eventType": state,
        "eventTime": format!("2026-11-23T0{run}:{}:00Z", if state == "START" { "00" } else { "30" }),
        "producer": "https://github.com/acme/pipelines/tree/v3",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": format!("0192f0c4-8a57-7d3c-b1a5-{run:012}")},
        "job": {"namespace": "airflow-prod", "name": job, "facets": {"sourceCodeLocation": {
            "_producer": "https://github.com/OpenLineage/OpenLineage/tree/1.40.0/integration/airflow",
            "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/SourceCodeLocationJobFacet.json",
            "type": "git", "url": "https://github.com/acme/pipelines", "version": "4f1c2d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e"}}},
        "inputs": inputs,
        "outputs": outputs
    })
}

fn versioned(ns: &str, name: &str, version: &str) -> Value {
    json!({"namespace": ns, "name": name, "facets": {"version": {
        "_producer": "https://github.com/acme/pipelines/tree/v3",
        "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json",
        "datasetVersion": version}}})
}

#[test]
fn provenance_is_a_dsse_envelope_that_securesystemslib_verifies() {
    let work = tempfile::tempdir().expect("tempdir");
    let features = "sha256:".to_string() + &"ab".repeat(32);
    let events = [
        run_event(
            1,
            "START",
            "train_churn_model",
            vec![versioned("s3://acme-features-eu", "churn_features", &features)],
            vec![],
        ),
        run_event(
            1,
            "COMPLETE",
            "train_churn_model",
            vec![versioned("s3://acme-features-eu", "churn_features", &features)],
            vec![versioned("s3://acme-models-us", "churn-model", "3.2.0")],
        ),
    ];
    let text: String = events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(work.path().join("events.jsonl"), text).expect("write");
    assert_eq!(assay(work.path(), &["lineage", "ingest", "events.jsonl", "--data", "d"]).status.code(), Some(0));
    let keys =
        assay(work.path(), &["log", "keygen", "provenance.acme.example", "--private", "p.key", "--public", "p.pub"]);
    assert_eq!(keys.status.code(), Some(0), "{}", stderr(&keys));
    assert_eq!(
        assay(work.path(), &["log", "keygen", "ledger.acme.example", "--private", "l.key", "--public", "l.pub"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(assay(work.path(), &["log", "init", "ledger", "--key", "l.key"]).status.code(), Some(0));

    let out = assay(
        work.path(),
        &[
            "lineage",
            "provenance",
            "dataset:s3://acme-models-us:churn-model@3.2.0",
            "--data",
            "d",
            "--key",
            "p.key",
            "-o",
            "model.intoto.json",
            "--ledger",
            "ledger",
            "--ledger-key",
            "l.key",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let envelope: Value =
        serde_json::from_str(&std::fs::read_to_string(work.path().join("model.intoto.json")).expect("read"))
            .expect("json");
    assert_eq!(envelope["payloadType"], "application/vnd.in-toto+json");
    let payload = base64_decode(envelope["payload"].as_str().expect("payload"));
    let statement: Value = serde_json::from_slice(&payload).expect("statement");
    assert_eq!(statement["predicateType"], "https://slsa.dev/provenance/v1");
    let deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"].as_array().expect("deps");
    assert_eq!(deps[0]["uri"], "dataset:s3://acme-features-eu:churn_features");
    assert_eq!(deps[0]["digest"]["sha256"], "ab".repeat(32), "a digest version is kept as the digest");
    assert_eq!(deps[1]["uri"], "git+https://github.com/acme/pipelines@4f1c2d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e");
    assert_eq!(deps[1]["digest"]["gitCommit"], "4f1c2d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e");
    assert_eq!(
        statement["predicate"]["runDetails"]["metadata"]["invocationId"],
        "0192f0c4-8a57-7d3c-b1a5-000000000001"
    );

    let (ok, said) = common::verify_dsse(&work.path().join("model.intoto.json"), &work.path().join("p.pub"));
    assert!(ok, "securesystemslib refused assay's envelope: {said}");
    let said: Value = serde_json::from_str(said.trim()).expect("json");
    assert_eq!(said["subject"], "dataset:s3://acme-models-us:churn-model");
    assert_eq!(said["type"], "https://in-toto.io/Statement/v1");

    // One changed byte in the payload, or another key: refused.
    let mut tampered = envelope.clone();
    let mut statement2 = statement.clone();
    statement2["subject"][0]["annotations"]["version"] = json!("3.2.1");
    tampered["payload"] = json!(base64_encode(&serde_json::to_vec(&statement2).expect("json")));
    std::fs::write(work.path().join("tampered.json"), tampered.to_string()).expect("write");
    let (ok, said) = common::verify_dsse(&work.path().join("tampered.json"), &work.path().join("p.pub"));
    assert!(!ok && said.contains("REFUSED"), "{said}");
    let (ok, _) = common::verify_dsse(&work.path().join("model.intoto.json"), &work.path().join("l.pub"));
    assert!(!ok, "another key must not verify");

    // The attestation is in the ledger.
    let shown = stdout(&assay(work.path(), &["log", "show", "ledger", "--json"]));
    assert!(shown.contains("assay.dev/record/provenance/v2"), "{shown}");
    let missing = assay(
        work.path(),
        &["lineage", "provenance", "dataset:s3://acme-models-us:churn-model@9.9.9", "--data", "d", "--key", "p.key"],
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing)
            .contains("no run in the lineage graph wrote dataset:s3://acme-models-us:churn-model at version 9.9.9"),
        "{}",
        stderr(&missing)
    );
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).expect("base64")
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
