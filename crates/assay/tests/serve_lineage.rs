//! OpenLineage over HTTP: `POST /api/v1/lineage` (the path OpenLineage's HTTP transport and
//! Marquez use) into the server's graph, out of order and twice, and Marquez-style queries;
//! residency findings raised at run time as alerts, once each, across a restart.

mod common;

use std::time::Duration;

use common::server::{
    Receiver, Server, estate_copy, eventually, flow, free_port, keyed_ledger, residency_estate, schema_errors,
};
use common::{assay, stderr, stdout};
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
        .filter(|r| r["type"] == "assay.dev/record/lineage-event/v2")
        .count();
    assert_eq!(lineage_records, 4);
}

fn residency_alerts(receiver: &Receiver) -> Vec<Value> {
    let got = receiver.got.lock().expect("got");
    got.iter().filter(|(_, v)| v["data"]["kind"] == "residency").map(|(_, v)| v.clone()).collect()
}

#[test]
fn residency_findings_at_run_time_are_alerted_once_and_logged() {
    let work = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let receiver = Receiver::listen(port);
    residency_estate(work.path(), Some(port));
    keyed_ledger(work.path());
    let args = ["--estate", "estate", "--data", "data", "--ledger", "ledger", "--ledger-key", "k"];
    let server = Server::launch(work.path(), &args);

    // Customer data cleaned in the EU (fine), then a model trained on it in the US and stored
    // there: two findings.
    for e in [
        flow(1, "clean", ("s3://customers-eu", "raw"), ("s3://lake-eu", "clean")),
        flow(2, "train", ("s3://lake-eu", "clean"), ("s3://models-us", "churn")),
    ] {
        let (status, answer) = server.json("POST", "/api/v1/lineage", &e);
        assert_eq!(status, 201, "{answer}");
    }
    let alerts = eventually(Duration::from_secs(20), || {
        let a = residency_alerts(&receiver);
        (a.len() >= 2).then_some(a)
    })
    .expect("two residency alerts");
    let process = alerts.iter().find(|a| a["data"]["finding"]["violation"] == "process").expect("process");
    assert_eq!(process["type"], "dev.assay.alert.v1");
    assert_eq!(process["subject"], "dataset:s3://lake-eu:clean");
    assert_eq!(
        process["data"]["finding"]["path"],
        json!([
            "dataset:s3://customers-eu:raw",
            "job:airflow:clean",
            "dataset:s3://lake-eu:clean",
            "job:airflow:train"
        ])
    );
    let store = alerts.iter().find(|a| a["data"]["finding"]["violation"] == "store").expect("store");
    assert_eq!(store["data"]["finding"]["region"], "us-east-1");

    // The same flows again, and another clean one in the EU: nothing new to say.
    server.json("POST", "/api/v1/lineage", &flow(2, "train", ("s3://lake-eu", "clean"), ("s3://models-us", "churn")));
    server.json(
        "POST",
        "/api/v1/lineage",
        &flow(3, "report", ("s3://lake-eu", "clean"), ("s3://reports-eu", "weekly")),
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(residency_alerts(&receiver).len(), 2);
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");

    // A restart checks the graph again and still has nothing new to say; a new flow does.
    let server = Server::launch(work.path(), &args);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(residency_alerts(&receiver).len(), 2);
    server.json("POST", "/api/v1/lineage", &flow(4, "train_v2", ("s3://lake-eu", "clean"), ("s3://lake-eu", "v2")));
    let alerts = eventually(Duration::from_secs(20), || {
        let a = residency_alerts(&receiver);
        (a.len() >= 3).then_some(a)
    })
    .expect("a third alert");
    assert_eq!(alerts[2]["data"]["finding"]["job"], "job:airflow:train_v2");
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");

    let shown = stdout(&assay(work.path(), &["log", "show", "ledger", "--json"]));
    let findings: Vec<Value> = shown
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("json")["json"].clone())
        .filter(|r| r["type"] == "assay.dev/record/residency-finding/v1")
        .collect();
    assert_eq!(findings.len(), 3, "{findings:#?}");
    assert!(findings.iter().all(|f| f["estate"]["revision"].as_str().is_some_and(|r| !r.is_empty())));
}

#[test]
fn with_the_openlineage_schemas_the_server_refuses_what_they_refuse() {
    let spec = common::repo_root().join("../shared/conformance/openlineage/spec");
    if !spec.join("OpenLineage.json").is_file() {
        eprintln!("skipped: {} is not here", spec.display());
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let schemas = spec.to_str().expect("path");
    let server = Server::start(work.path(), &["--data", "data", "--lineage-schemas", schemas]);
    let full: Value =
        serde_json::from_str(&std::fs::read_to_string(spec.join("tests/example_full_event.json")).expect("read"))
            .expect("json");
    let (status, answer) = server.json("POST", "/api/v1/lineage", &full);
    assert_eq!(status, 201, "{answer}");
    // A facet that assay's own checks let through but its schema does not.
    let mut broken = event(9, "START", 0, "clean", &["raw"], &[]);
    broken["run"]["facets"] = json!({"nominalTime": {
        "_producer": "https://example.com/p",
        "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/NominalTimeRunFacet.json#/$defs/NominalTimeRunFacet",
        "nominalStartTime": 5
    }});
    let (status, answer) = server.json("POST", "/api/v1/lineage", &broken);
    assert_eq!(status, 400, "{answer}");
    assert!(answer["message"].as_str().unwrap_or("").contains("nominalTime"), "{answer}");
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");
}

/// OpenLineage's own Python client (openlineage-python from PyPI) with its HTTP transport, as
/// pipelines configure it: a run's START and COMPLETE gzip-compressed, then a dataset event and
/// a job event uncompressed.
const EMIT: &str = r#"
import datetime, sys
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import (DatasetEvent, InputDataset, Job, JobEvent, OutputDataset,
                                         Run, RunEvent, RunState, StaticDataset)
from openlineage.client.facet_v2 import output_statistics_output_dataset, schema_dataset, tags_dataset
from openlineage.client.transport.http import HttpCompression, HttpConfig, HttpTransport
from openlineage.client.uuid import generate_new_uuid

def client(compression):
    return OpenLineageClient(transport=HttpTransport(HttpConfig(url=sys.argv[1], compression=compression)))

now = lambda: datetime.datetime.now(datetime.timezone.utc).isoformat()
producer = "https://github.com/acme/pipelines/tree/v3"
run = Run(runId=str(generate_new_uuid()))
job = Job(namespace="spark-prod", name="nightly_features")
schema = schema_dataset.SchemaDatasetFacet(fields=[schema_dataset.SchemaDatasetFacetFields(name="id", type="STRING")])
inputs = [InputDataset(namespace="s3://raw-eu", name="events", facets={"schema": schema})]
stats = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(rowCount=10, size=1000)
outputs = [OutputDataset(namespace="s3://features-eu", name="daily", outputFacets={"outputStatistics": stats})]
gzipped = client(HttpCompression.GZIP)
for state in (RunState.START, RunState.COMPLETE):
    gzipped.emit(RunEvent(eventType=state, eventTime=now(), run=run, job=job, producer=producer,
                          inputs=inputs, outputs=outputs))
plain = client(None)
tags = tags_dataset.TagsDatasetFacet(tags=[tags_dataset.TagsDatasetFacetFields(key="pii", value="true")])
plain.emit(DatasetEvent(eventTime=now(), producer=producer,
                        dataset=StaticDataset(namespace="s3://raw-eu", name="events", facets={"tags": tags})))
plain.emit(JobEvent(eventTime=now(), producer=producer, job=Job(namespace="spark-prod", name="weekly_report"),
                    inputs=[InputDataset(namespace="s3://features-eu", name="daily")], outputs=[]))
print(run.runId)
"#;

#[test]
fn openlineages_python_client_sends_to_the_server_unchanged() {
    let python = common::python_with("openlineage.client", "openlineage-python==1.40.1");
    let work = tempfile::tempdir().expect("tempdir");
    let server = Server::start(work.path(), &["--data", "data"]);
    let out = std::process::Command::new(python)
        .args(["-c", EMIT, &format!("http://{}", server.addr)])
        .output()
        .expect("python");
    assert!(out.status.success(), "the OpenLineage client failed: {}", String::from_utf8_lossy(&out.stderr));

    let (status, answer) =
        server.json("GET", "/api/v1/lineage?nodeId=dataset:s3://features-eu:daily&depth=5", &Value::Null);
    assert_eq!(status, 200, "{answer}");
    let graph = answer["graph"].as_array().expect("graph");
    let node = |id: &str| graph.iter().find(|n| n["id"] == id).unwrap_or_else(|| panic!("{id} missing: {answer:#}"));
    assert_eq!(
        node("job:spark-prod:nightly_features")["inEdges"],
        json!([{"origin": "dataset:s3://raw-eu:events", "destination": "job:spark-prod:nightly_features"}])
    );
    let events = node("dataset:s3://raw-eu:events");
    assert_eq!(events["data"]["facets"]["schema"]["fields"][0]["name"], "id");
    assert_eq!(events["data"]["facets"]["tags"]["tags"][0]["key"], "pii", "the dataset event's facet is kept");
    node("job:spark-prod:weekly_report");
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");
}

/// A nightly run of a sensor-cleaning job that wrote `rows` rows, from `commit` of its code.
fn nightly(run: u32, rows: u64, commit: &str) -> Value {
    json!({
        "eventType": "COMPLETE",
        "eventTime": format!("2026-11-{:02}T02:00:00Z", run + 1),
        "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.40.0/integration/spark",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": format!("0193a0c4-8a57-7d3c-b1a5-{run:012}")},
        "job": {"namespace": "spark", "name": "sensors.clean", "facets": {"sourceCodeLocation": {
            "_producer": "https://github.com/OpenLineage/OpenLineage/tree/1.40.0/integration/spark",
            "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/SourceCodeLocationJobFacet.json",
            "type": "git", "url": "https://git.example.com/sensors", "version": commit}}},
        "inputs": [{"namespace": "kafka://broker:9092", "name": "sensors.raw"}],
        "outputs": [{"namespace": "s3://sensor-lake", "name": "clean", "outputFacets": {"outputStatistics": {
            "_producer": "https://github.com/OpenLineage/OpenLineage/tree/1.40.0/integration/spark",
            "_schemaURL": "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json",
            "rowCount": rows}}}]
    })
}

#[test]
fn a_row_count_that_halves_after_a_new_commit_is_alerted_once_logged_and_listed() {
    let work = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let receiver = Receiver::listen(port);
    estate_copy(work.path(), &format!("actions:\n  alerts: [\"http://127.0.0.1:{port}/alerts\"]\n"));
    keyed_ledger(work.path());
    let args = ["--estate", "estate", "--data", "data", "--ledger", "ledger", "--ledger-key", "k"];
    let server = Server::launch(work.path(), &args);
    let quality = || -> Vec<Value> {
        let got = receiver.got.lock().expect("got");
        got.iter().filter(|(_, v)| v["data"]["kind"] == "quality").map(|(_, v)| v.clone()).collect()
    };
    // Two weeks of steady nights from one commit, then four nights at half from the next.
    for night in 0..14 {
        let (status, answer) = server.json(
            "POST",
            "/api/v1/lineage",
            &nightly(night, 2_000_000 + u64::from(night % 3) * 1_500, "9f1c2ab"),
        );
        assert_eq!(status, 201, "{answer}");
    }
    std::thread::sleep(Duration::from_secs(2));
    assert!(quality().is_empty(), "steady nights are not news: {:?}", quality());
    for night in 14..18 {
        let (status, answer) =
            server.json("POST", "/api/v1/lineage", &nightly(night, 1_000_000 + u64::from(night % 2) * 900, "4d7e0b1"));
        assert_eq!(status, 201, "{answer}");
    }
    let alerts = eventually(Duration::from_secs(20), || {
        let a = quality();
        (!a.is_empty()).then_some(a)
    })
    .expect("a data-quality alert");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(quality().len(), 1, "one change, one alert: {:#?}", quality());
    let finding = &alerts[0]["data"]["finding"];
    assert_eq!(alerts[0]["subject"], "dataset:s3://sensor-lake:clean");
    assert_eq!(finding["metric"], "outputStatistics.rowCount");
    assert_eq!(finding["expected"], 2_001_500.0);
    assert_eq!(finding["observed"], 1_000_000.0);
    assert_eq!(finding["version"], "4d7e0b1");
    assert_eq!(finding["previous_version"], "9f1c2ab");
    assert_eq!(finding["job"], "job:spark:sensors.clean");
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");

    // In the ledger, once; and listed by `assay lineage quality` from the same graph.
    let shown = stdout(&assay(work.path(), &["log", "show", "ledger", "--json"]));
    let records: Vec<Value> = shown
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("json")["json"].clone())
        .filter(|r| r["type"] == "assay.dev/record/quality-finding/v1")
        .collect();
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(records[0]["finding"]["version"], "4d7e0b1");
    let out = assay(work.path(), &["lineage", "--data", "data", "quality", "--json"]);
    assert_eq!(out.status.code(), Some(1), "findings exit 1: {}", stderr(&out));
    let listed: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(listed["findings"].as_array().map(Vec::len), Some(1), "{listed:#}");
    assert_eq!(listed["findings"][0]["observed"], 1_000_000.0);
    let out = assay(work.path(), &["lineage", "--data", "data", "quality", "--since", "2026-12-01"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn the_residency_page_shows_findings_flows_between_regions_and_the_graph_around_a_node() {
    let work = tempfile::tempdir().expect("tempdir");
    residency_estate(work.path(), None);
    let server = Server::launch(work.path(), &["--estate", "estate", "--data", "data", "--poll", "0"]);
    for e in [
        flow(1, "clean", ("s3://customers-eu", "raw"), ("s3://lake-eu", "clean")),
        flow(2, "train", ("s3://lake-eu", "clean"), ("s3://models-us", "churn")),
    ] {
        let (status, answer) = server.json("POST", "/api/v1/lineage", &e);
        assert_eq!(status, 201, "{answer}");
    }
    let (status, doc) = server.json("GET", "/api/v1/residency?node=dataset:s3://lake-eu:clean&depth=3", &Value::Null);
    assert_eq!(status, 200, "{doc}");
    // The findings are assay lineage check's, on the same graph.
    let checked: Value = serde_json::from_str(&stdout(&assay(
        work.path(),
        &["lineage", "check", "--estate", "estate", "--data", "data", "--json"],
    )))
    .expect("check JSON");
    let messages = |v: &Value| -> Vec<String> {
        let list = v.get("findings").unwrap_or(v);
        let mut m: Vec<String> =
            list.as_array().into_iter().flatten().filter_map(|f| f["message"].as_str().map(str::to_string)).collect();
        m.sort();
        m
    };
    assert_eq!(messages(&doc["findings"]), messages(&checked));
    assert_eq!(doc["findings"].as_array().map(Vec::len), Some(2));
    assert_eq!(schema_errors(&server, "Residency", &doc), Vec::<String>::new());
    // The model was trained in the US on data from the EU: one flow between the regions.
    let regions = doc["regions"].as_array().cloned().unwrap_or_default();
    assert!(regions.iter().any(|r| r["from"] == "eu-west-1" && r["to"] == "us-east-1"), "{regions:?}");
    // Around the cleaned data: its producer upstream, its consumer downstream, with regions.
    let graph = doc["lineage"]["graph"].as_array().cloned().unwrap_or_default();
    let at = |id: &str| graph.iter().find(|n| n["id"] == id).unwrap_or_else(|| panic!("{id} in {graph:?}")).clone();
    assert_eq!(at("dataset:s3://lake-eu:clean")["distance"], 0);
    assert_eq!(at("job:airflow:clean")["distance"], -1);
    assert_eq!(at("dataset:s3://customers-eu:raw")["distance"], -2);
    assert_eq!(at("dataset:s3://customers-eu:raw")["classification"], "GDPR_SENSITIVE");
    assert_eq!(at("job:airflow:train")["distance"], 1);
    assert_eq!(at("job:airflow:train")["region"], "us-east-1");

    let (status, page) = server.request("GET", "/ui/residency?node=dataset%3As3%3A%2F%2Flake-eu%3Aclean", None, b"");
    assert_eq!(status, 200);
    assert!(page.contains("Upstream 2") && page.contains("Downstream 1"), "{page}");
    assert!(page.contains("job:airflow:train"), "{page}");
    let (status, _) = server.request("GET", "/ui/residency?node=dataset%3Anowhere%3Ax", None, b"");
    assert_eq!(status, 404);

    // Events loaded by another process while the server runs show at once: the server keeps
    // its answer only while the graph stays as it was.
    let events: String = (0..110)
        .map(|i| {
            let mut e = flow(
                100 + i,
                &format!("train_{i}"),
                ("s3://customers-eu", "raw"),
                ("s3://models-us", &format!("m{i}")),
            );
            e["eventTime"] = json!(format!("2026-11-24T{:02}:{:02}:00Z", i / 60, i % 60));
            format!("{e}\n")
        })
        .collect();
    std::fs::write(work.path().join("more.jsonl"), events).expect("write events");
    let out = assay(work.path(), &["lineage", "ingest", "--data", "data", "more.jsonl"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (_, doc) = server.json("GET", "/api/v1/residency", &Value::Null);
    let checked: Value = serde_json::from_str(&stdout(&assay(
        work.path(),
        &["lineage", "check", "--estate", "estate", "--data", "data", "--json"],
    )))
    .expect("check JSON");
    let total = messages(&checked).len();
    assert!(total > 200, "each US training run breaks the rule twice: {total}");
    assert_eq!(messages(&doc["findings"]), messages(&checked));

    // The page lists them 100 at a time, with the way to the next page.
    let rows = |page: &str| {
        let table = page.split("id=\"finding-list\"").nth(1).unwrap_or("");
        let body = table.split("<tbody>").nth(1).unwrap_or("");
        body.split("</tbody>").next().unwrap_or("").matches("<tr>").count()
    };
    let (_, page) = server.request("GET", "/ui/residency", None, b"");
    assert_eq!(rows(&page), 100);
    assert!(page.contains(&format!("Rows 1–100 of {total}")), "{page}");
    let (_, page) = server.request("GET", "/ui/residency?findings_from=200", None, b"");
    assert_eq!(rows(&page), total - 200);
    assert!(page.contains(&format!("Rows 201–{total} of {total}")), "{page}");
    assert!(page.contains("href=\"/ui/residency?findings_from=100#findings\""), "{page}");
}
