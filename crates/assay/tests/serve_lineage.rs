//! OpenLineage over HTTP: `POST /api/v1/lineage` (the path OpenLineage's HTTP transport and
//! Marquez use) into the server's graph, out of order and twice, and Marquez-style queries.

mod common;

use common::server::{Server, keyed_ledger};
use common::{assay, stdout};
use serde_json::{Value, json};

fn event(run: u32, state: &str, minute: u32, job: &str, inputs: &[&str], outputs: &[&str]) -> Value {
    let ds = |names: &[&str]| -> Vec<Value> {
        names.iter().map(|n| json!({"namespace": "s3://lake-eu", "name": n})).collect()
    };
    json!({
        "eventType": state,
        "eventTime": format!("2026-11-23T10:{minute:02}:00Z"),
        "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.40.0/integration/airflow",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": format!("0192f0c4-8a57-7d3c-b1a5-{run:012}")},
        "job": {"namespace": "airflow", "name": job},
        "inputs": ds(inputs),
        "outputs": ds(outputs)
    })
}

#[test]
fn lineage_events_over_http_build_the_graph_and_answer_marquez_queries() {
    let work = tempfile::tempdir().expect("tempdir");
    keyed_ledger(work.path());
    let server = Server::start(work.path(), &["--data", "data", "--ledger", "ledger", "--ledger-key", "k"]);
    let events = [
        event(1, "START", 0, "clean", &["raw"], &[]),
        event(1, "COMPLETE", 5, "clean", &["raw"], &["clean"]),
        event(2, "START", 10, "train", &["clean"], &[]),
        event(2, "COMPLETE", 20, "train", &["clean"], &["model"]),
    ];
    // Out of order, then again: 4 new, 4 already known.
    let mut new = 0;
    for e in events.iter().rev().chain(events.iter()) {
        let (status, answer) = server.json("POST", "/api/v1/lineage", e);
        assert_eq!(status, 201, "{answer}");
        assert!(answer["digest"].as_str().is_some_and(|d| d.starts_with("sha256:")), "{answer}");
        new += usize::from(answer["new"] == true);
    }
    assert_eq!(new, 4);

    let mut broken = events[0].clone();
    broken["run"]["runId"] = json!("not-a-uuid");
    let (status, answer) = server.json("POST", "/api/v1/lineage", &broken);
    assert_eq!(status, 400);
    assert!(answer["message"].as_str().unwrap_or("").starts_with("run.runId: "), "{answer}");

    let (status, answer) =
        server.json("GET", "/api/v1/lineage?nodeId=dataset:s3://lake-eu:clean&depth=5", &Value::Null);
    assert_eq!(status, 200, "{answer}");
    let ids: Vec<&str> = answer["graph"].as_array().expect("graph").iter().filter_map(|n| n["id"].as_str()).collect();
    for id in [
        "dataset:s3://lake-eu:raw",
        "dataset:s3://lake-eu:clean",
        "dataset:s3://lake-eu:model",
        "job:airflow:clean",
        "job:airflow:train",
    ] {
        assert!(ids.contains(&id), "{id} not in {ids:?}");
    }
    let (status, _) = server.json("GET", "/api/v1/lineage?nodeId=dataset:s3://lake-eu:nothing", &Value::Null);
    assert_eq!(status, 404);
    let (status, _) = server.json("GET", "/api/v1/lineage?nodeId=table:x", &Value::Null);
    assert_eq!(status, 400);
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");

    // Each new event is in the ledger, by digest.
    let shown = stdout(&assay(work.path(), &["log", "show", "ledger", "--json"]));
    let lineage_records = shown
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("json")["json"].clone())
        .filter(|r| r["type"] == "assay.dev/record/lineage-event/v1")
        .count();
    assert_eq!(lineage_records, 4);
}
