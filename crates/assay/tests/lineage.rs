//! `assay lineage` through the real binary: a three-job pipeline across two regions ingested in
//! order, and again out of order and twice, gives the same graph; broken events are rejected
//! with file, line and field, and the rest kept; walks answer in Marquez's shape.

mod common;

use std::path::Path;

use common::{assay, stderr, stdout};
use serde_json::{Value, json};

fn facet(extra: Value) -> Value {
    let mut f = json!({"_producer": "https://github.com/acme/pipelines/tree/v3", "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/Facet.json"});
    if let (Some(m), Value::Object(e)) = (f.as_object_mut(), extra) {
        m.extend(e);
    }
    f
}

fn dataset(ns: &str, name: &str, version: Option<&str>) -> Value {
    let mut d = json!({"namespace": ns, "name": name});
    if let Some(v) = version {
        d["facets"] = json!({"version": facet(json!({"datasetVersion": v}))});
    }
    d
}

fn run_event(run: &str, state: &str, time: &str, job: &str, inputs: Vec<Value>, outputs: Vec<Value>) -> Value {
    json!({
        "eventType": state,
        "eventTime": time,
        "producer": "https://github.com/acme/pipelines/tree/v3",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run},
        "job": {"namespace": "airflow-prod", "name": job,
                "facets": {"sourceCodeLocation": facet(json!({"type": "git", "url": "https://github.com/acme/pipelines", "version": "4f1c2d9"}))}},
        "inputs": inputs,
        "outputs": outputs
    })
}

/// Ingest customers (EU), build features (EU), train a model (US): START and COMPLETE of each.
fn pipeline() -> Vec<Value> {
    let raw = || dataset("s3://acme-customer-data-eu", "raw/customers", Some("2026-11-23"));
    let clean = || dataset("s3://acme-features-eu", "customers_clean", Some("v41"));
    let census = || dataset("s3://acme-public-datasets", "census/2025", None);
    let features = || dataset("s3://acme-features-eu", "churn_features", Some("v17"));
    let features_read = || {
        let mut d = features();
        d["inputFacets"] = json!({"inputStatistics": facet(json!({"rowCount": 2000000, "size": 5_000_000_000u64}))});
        d
    };
    let mut model = dataset("s3://acme-models-us", "churn-model", Some("3.2.0"));
    model["outputFacets"] = json!({"outputStatistics": facet(json!({"rowCount": 1, "size": 734003200}))});
    let r1 = "0192f0c4-8a57-7d3c-b1a5-000000000001";
    let r2 = "0192f0c4-8a57-7d3c-b1a5-000000000002";
    let r3 = "0192f0c4-8a57-7d3c-b1a5-000000000003";
    vec![
        run_event(r1, "START", "2026-11-23T02:00:00Z", "ingest_customers", vec![raw()], vec![]),
        run_event(r1, "COMPLETE", "2026-11-23T02:10:00Z", "ingest_customers", vec![raw()], vec![clean()]),
        run_event(r2, "START", "2026-11-23T03:00:00Z", "build_features", vec![clean(), census()], vec![]),
        run_event(r2, "COMPLETE", "2026-11-23T03:20:00Z", "build_features", vec![clean(), census()], vec![features()]),
        run_event(r3, "START", "2026-11-23T04:00:00Z", "train_churn_model", vec![features_read()], vec![]),
        run_event(r3, "COMPLETE", "2026-11-23T05:00:00Z", "train_churn_model", vec![features_read()], vec![model]),
    ]
}

fn write_lines(path: &Path, events: &[Value]) {
    let text: String = events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(path, text).expect("write");
}

fn upstream_json(dir: &Path, data: &str) -> Value {
    let out = assay(dir, &["lineage", "upstream", "dataset:s3://acme-models-us:churn-model", "--data", data, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("json")
}

#[test]
fn a_pipeline_ingested_out_of_order_and_twice_gives_the_same_graph() {
    let work = tempfile::tempdir().expect("tempdir");
    write_lines(&work.path().join("in-order.jsonl"), &pipeline());
    let mut shuffled = pipeline();
    shuffled.reverse();
    shuffled.swap(0, 3);
    shuffled.extend(pipeline());
    write_lines(&work.path().join("shuffled.jsonl"), &shuffled);

    let out = assay(work.path(), &["lineage", "ingest", "in-order.jsonl", "--data", "a"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("6 events read: 6 new, 0 already known, 0 rejected"), "{}", stderr(&out));
    assert!(stderr(&out).contains("3 jobs, 3 runs, 5 datasets, 4 dataset versions"), "{}", stderr(&out));
    let out = assay(work.path(), &["lineage", "ingest", "shuffled.jsonl", "--data", "b"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("12 events read: 6 new, 6 already known, 0 rejected"), "{}", stderr(&out));

    let a = upstream_json(work.path(), "a");
    assert_eq!(a, upstream_json(work.path(), "b"), "the same graph whatever the order");
    let ids: Vec<&str> = a["graph"].as_array().expect("graph").iter().filter_map(|n| n["id"].as_str()).collect();
    for expected in [
        "dataset:s3://acme-models-us:churn-model",
        "dataset:s3://acme-customer-data-eu:raw/customers",
        "dataset:s3://acme-public-datasets:census/2025",
        "job:airflow-prod:ingest_customers",
        "job:airflow-prod:train_churn_model",
    ] {
        assert!(ids.contains(&expected), "{expected} missing from {ids:?}");
    }
    let train = a["graph"]
        .as_array()
        .expect("graph")
        .iter()
        .find(|n| n["id"] == "job:airflow-prod:train_churn_model")
        .expect("job");
    assert_eq!(train["type"], "JOB");
    assert_eq!(
        train["inEdges"],
        json!([{"origin": "dataset:s3://acme-features-eu:churn_features", "destination": "job:airflow-prod:train_churn_model"}])
    );
    assert_eq!(train["data"]["facets"]["sourceCodeLocation"]["version"], "4f1c2d9");

    // Depth 1 stops at the model's direct inputs.
    let out = assay(
        work.path(),
        &["lineage", "upstream", "dataset:s3://acme-models-us:churn-model", "--data", "a", "--depth", "1"],
    );
    assert!(!stdout(&out).contains("raw/customers"), "{}", stdout(&out));
    let out = assay(
        work.path(),
        &["lineage", "downstream", "dataset:s3://acme-customer-data-eu:raw/customers", "--data", "a"],
    );
    assert!(stdout(&out).contains("dataset:s3://acme-models-us:churn-model"), "{}", stdout(&out));
    // The GDPR customer data reaches a US job and a US bucket: two findings, each with its path.
    let estate = work.path().join("estate");
    std::fs::create_dir_all(estate.join("residency")).expect("mkdir");
    std::fs::write(
        estate.join("residency/gdpr.yaml"),
        "apiVersion: assay.dev/v1alpha1\nkind: ResidencyRule\nmetadata: {name: gdpr}\n\
         spec: {classification: GDPR_SENSITIVE, storeIn: [eu-west-1, eu-central-1], processIn: [eu-west-1, eu-central-1]}\n---\n\
         apiVersion: assay.dev/v1alpha1\nkind: DataLocations\nmetadata: {name: where}\nspec:\n  \
         datasets: [{match: \"s3://*-eu\", region: eu-west-1}, {match: \"s3://*-us\", region: us-east-1}]\n  \
         jobs: [{match: \"airflow-prod:train_*\", region: us-east-1}, {match: \"airflow-prod:*\", region: eu-west-1}]\n---\n\
         apiVersion: assay.dev/v1alpha1\nkind: DataClassifications\nmetadata: {name: classes}\nspec:\n  \
         order: [PUBLIC, INTERNAL, GDPR_SENSITIVE]\n  rules: [{match: \"s3://acme-customer-data-eu\", classification: GDPR_SENSITIVE}]\n",
    )
    .expect("write");
    for data in ["a", "b"] {
        let out = assay(work.path(), &["lineage", "check", "--estate", "estate", "--data", data, "--json"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let v: Value = serde_json::from_str(&stdout(&out)).expect("json");
        let findings = v["findings"].as_array().expect("findings");
        assert_eq!(findings.len(), 2, "{v:#}");
        let process = findings.iter().find(|f| f["violation"] == "process").expect("process");
        assert_eq!(
            process["path"],
            json!([
                "dataset:s3://acme-customer-data-eu:raw/customers",
                "job:airflow-prod:ingest_customers",
                "dataset:s3://acme-features-eu:customers_clean",
                "job:airflow-prod:build_features",
                "dataset:s3://acme-features-eu:churn_features",
                "job:airflow-prod:train_churn_model"
            ])
        );
        assert_eq!(process["region"], "us-east-1");
        let store = findings.iter().find(|f| f["violation"] == "store").expect("store");
        assert_eq!(store["dataset"], "dataset:s3://acme-models-us:churn-model");
        assert_eq!(store["rule"], "residency/gdpr.yaml:1");
    }

    // Egress: 5 GB of features read from eu-west-1 by the US training job at 0.02 USD/GB.
    std::fs::create_dir_all(estate.join("pricing")).expect("mkdir");
    std::fs::write(
        estate.join("pricing/aws.yaml"),
        "apiVersion: assay.dev/v1alpha1\nkind: PriceCatalog\nmetadata: {name: aws}\nspec:\n  currency: USD\n  regions:\n    \
         eu-west-1: {egressGB: {us-east-1: 0.02, default: 0.09}}\n    us-east-1: {egressGB: {default: 0.02}}\n",
    )
    .expect("write");
    for data in ["a", "b"] {
        let out = assay(work.path(), &["lineage", "costs", "--estate", "estate", "--data", data, "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let v: Value = serde_json::from_str(&stdout(&out)).expect("json");
        assert_eq!(v["legs"].as_array().map(Vec::len), Some(1), "{v:#}");
        let leg = &v["legs"][0];
        assert_eq!((leg["from"].as_str(), leg["to"].as_str()), (Some("eu-west-1"), Some("us-east-1")));
        assert_eq!(leg["bytes"], 5_000_000_000u64);
        assert!((leg["cost"].as_f64().unwrap_or(0.0) - 0.10).abs() < 1e-9, "{leg}");
    }
    let out = assay(work.path(), &["lineage", "costs", "--estate", "estate", "--data", "a"]);
    assert!(stdout(&out).contains("job:airflow-prod:train_churn_model\t5.000\t0.10"), "{}", stdout(&out));

    let out = assay(work.path(), &["lineage", "upstream", "dataset:nowhere:x", "--data", "a"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("dataset:nowhere:x is not in the lineage graph"), "{}", stderr(&out));
}

#[test]
fn broken_events_are_rejected_with_file_line_and_field_and_the_rest_kept() {
    let work = tempfile::tempdir().expect("tempdir");
    let good = pipeline();
    let mut no_run_id = good[0].clone();
    no_run_id["run"] = json!({});
    let mut wrong_type = good[1].clone();
    wrong_type["eventType"] = json!("DONE");
    let mut bad_facet = good[2].clone();
    bad_facet["inputs"][0]["facets"]["version"] =
        json!({"_producer": "https://x.example", "_schemaURL": "https://x.example/s", "datasetVersion": 3});
    let text = format!("{}\n{no_run_id}\n{{not json\n{wrong_type}\n\n{bad_facet}\n{}\n", good[0], good[1]);
    std::fs::write(work.path().join("mixed.jsonl"), text).expect("write");
    let out = assay(work.path(), &["lineage", "ingest", "mixed.jsonl", "--data", "d", "--rejects", "rejects.jsonl"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("rejected: mixed.jsonl:2: run.runId: is required"), "{err}");
    assert!(err.contains("rejected: mixed.jsonl:3: not JSON"), "{err}");
    assert!(err.contains("rejected: mixed.jsonl:4: eventType: \"DONE\" is not one of"), "{err}");
    assert!(
        err.contains("rejected: mixed.jsonl:6: inputs[0].facets.version.datasetVersion: must be a string"),
        "{err}"
    );
    assert!(err.contains("6 events read: 2 new, 0 already known, 4 rejected"), "{err}");
    let rejects: Vec<Value> = std::fs::read_to_string(work.path().join("rejects.jsonl"))
        .expect("rejects")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(rejects.iter().map(|r| r["line"].as_u64().unwrap_or(0)).collect::<Vec<_>>(), [2, 3, 4, 6]);
    assert_eq!(rejects[0]["event"]["eventType"], "START");
}
