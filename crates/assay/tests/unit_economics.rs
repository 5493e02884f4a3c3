//! `assay cost unit`: generated FOCUS data (some rows tagged with a model or a training job),
//! vLLM's token counters in a real Prometheus, and a training run in the lineage graph; the
//! per-model and per-run figures equal a computation made here from the same rows.

mod common;

use common::prometheus::{self, OpenMetrics};
use common::{assay, stderr, stdout};
use serde_json::{Value, json};

const DAY: i64 = 86_400;
/// 2025-11-01T00:00:00Z, the first generated day.
const FIRST: i64 = 1_761_955_200;

/// Seconds since the epoch of an RFC 3339 time.
fn seconds(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t).expect("time").timestamp()
}

/// Generates ten days of FOCUS data and tags every fifth row with a model, a job, or another
/// model; returns the rows as (tag key, tag value, charge start, charge end, effective cost).
fn billing(dir: &std::path::Path, data: &str) -> Vec<(String, String, i64, i64, f64)> {
    let generated = dir.join("generated");
    let out = assay(
        dir,
        &["cost", "generate", "--days", "10", "--start", "2025-11-01", "--out", generated.to_str().unwrap_or("")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut tagged = Vec::new();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&generated).expect("dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "csv") {
            continue;
        }
        let mut reader = csv::Reader::from_path(&path).expect("csv");
        let headers = reader.headers().expect("headers").clone();
        let col = |name: &str| headers.iter().position(|h| h == name).expect(name);
        let (tags, start, end, cost) =
            (col("Tags"), col("ChargePeriodStart"), col("ChargePeriodEnd"), col("EffectiveCost"));
        let out_path = dir.join(path.file_name().expect("name"));
        let mut writer = csv::Writer::from_path(&out_path).expect("write");
        writer.write_record(&headers).expect("headers");
        for (i, record) in reader.records().enumerate() {
            let mut row: Vec<String> = record.expect("row").iter().map(str::to_string).collect();
            let tag = match i % 5 {
                0 => Some(("model", "llama-3-8b")),
                1 => Some(("model", "mistral-7b")),
                2 => Some(("job", "train-llama")),
                _ => None,
            };
            if let Some((k, v)) = tag {
                row[tags] = json!({k: v}).to_string();
                tagged.push((
                    k.to_string(),
                    v.to_string(),
                    seconds(&row[start]),
                    seconds(&row[end]),
                    row[cost].parse::<f64>().expect("cost"),
                ));
            }
            writer.write_record(&row).expect("row");
        }
        writer.flush().expect("flush");
        files.push(out_path);
    }
    let mut args = vec!["cost", "--data", data, "ingest"];
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    let out = assay(dir, &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    tagged
}

/// vLLM's counters: llama at 1,000 prompt and 300 generated tokens a second, mistral at 200 and
/// 50, every 5 minutes over the ten days.
fn tokens() -> String {
    let mut om = OpenMetrics::default();
    for (metric, rates) in
        [("vllm:prompt_tokens_total", [1000.0, 200.0]), ("vllm:generation_tokens_total", [300.0, 50.0])]
    {
        for (model, rate) in ["llama-3-8b", "mistral-7b"].into_iter().zip(rates) {
            for t in (FIRST..=FIRST + 10 * DAY).step_by(300) {
                let labels = format!("model_name=\"{model}\",instance=\"vllm-0\"");
                om.sample(metric, "counter", &labels, rate * (t - FIRST) as f64, t);
            }
        }
    }
    om.text()
}

fn event(run: &str, state: &str, time: &str, job: &str, outputs: Value) -> Value {
    json!({
        "eventType": state, "eventTime": time,
        "producer": "https://github.com/acme/pipelines/tree/v3",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run}, "job": {"namespace": "ml", "name": job},
        "inputs": [{"namespace": "s3://lake", "name": "tokens"}], "outputs": outputs
    })
}

#[test]
fn per_model_and_per_run_figures_equal_a_hand_computation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let d = data.to_str().unwrap_or("");
    let rows = billing(dir.path(), d);
    let p = prometheus::start(&tokens());

    // Days 2 to 8 (2025-11-02 .. 2025-11-08): daily rows inside count whole, the rest not at all.
    let (from, to) = (FIRST + DAY, FIRST + 8 * DAY);
    let args = ["cost", "--data", d, "unit", "--per", "model", "--from", "2025-11-02", "--to", "2025-11-08"];
    let out = assay(dir.path(), &[&args[..], &["--prometheus", &p.url, "--format", "json"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    assert_eq!(v["problems"], json!([]), "{v:#}");
    for (model, prompt_rate, generation_rate) in [("llama-3-8b", 1000.0, 300.0), ("mistral-7b", 200.0, 50.0)] {
        let cost: f64 = rows
            .iter()
            .filter(|(k, m, s, e, _)| k == "model" && m == model && *s >= from && *e <= to)
            .map(|r| r.4)
            .sum();
        let seconds = (to - from) as f64;
        let tokens = (prompt_rate + generation_rate) * seconds;
        let got = v["models"].as_array().and_then(|a| a.iter().find(|m| m["model"] == model)).expect(model);
        assert!((got["cost"].as_f64().unwrap_or(0.0) - cost).abs() < 1e-6, "{got:#} vs {cost}");
        assert!((got["prompt_tokens"].as_f64().unwrap_or(0.0) - prompt_rate * seconds).abs() < 1e-3, "{got:#}");
        assert!((got["generation_tokens"].as_f64().unwrap_or(0.0) - generation_rate * seconds).abs() < 1e-3);
        let per_million = cost / (tokens / 1e6);
        assert!((got["cost_per_million_tokens"].as_f64().unwrap_or(0.0) - per_million).abs() < 1e-9, "{got:#}");
    }

    // A training run from 2025-11-03T00:00 to 2025-11-05T12:00 wrote a model; a run of another
    // job wrote a table and is no training run.
    let model = json!([{"namespace": "s3://models", "name": "llama-3-8b-ft",
        "facets": {"datasetType": {"_producer": "https://github.com/acme/pipelines/tree/v3",
            "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/DatasetTypeDatasetFacet.json", "datasetType": "MODEL"}}}]);
    let table = json!([{"namespace": "s3://lake", "name": "features"}]);
    let run = "0192f0c4-8a57-7d3c-b1a5-00000000000a";
    let other = "0192f0c4-8a57-7d3c-b1a5-00000000000b";
    let events = [
        event(run, "START", "2025-11-03T00:00:00Z", "train-llama", json!([])),
        event(run, "COMPLETE", "2025-11-05T12:00:00Z", "train-llama", model),
        event(other, "START", "2025-11-03T00:00:00Z", "build-features", json!([])),
        event(other, "COMPLETE", "2025-11-03T01:00:00Z", "build-features", table),
    ];
    let file = dir.path().join("events.jsonl");
    std::fs::write(&file, events.iter().map(|e| format!("{e}\n")).collect::<String>()).expect("write");
    let out = assay(dir.path(), &["lineage", "--data", d, "ingest", file.to_str().unwrap_or("")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let args = ["cost", "--data", d, "unit", "--per", "run", "--from", "2025-11-01", "--to", "2025-11-10"];
    let out = assay(dir.path(), &[&args[..], &["--format", "json"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    let runs = v["runs"].as_array().cloned().unwrap_or_default();
    assert_eq!(runs.len(), 1, "{v:#}");
    assert_eq!(runs[0]["run_id"], run);
    assert_eq!(runs[0]["models"], json!(["dataset:s3://models:llama-3-8b-ft"]));
    assert_eq!(runs[0]["hours"], 60.0);
    // The job's daily rows of the 3rd and 4th whole, and half of the 5th's.
    let start = FIRST + 2 * DAY;
    let cost: f64 = rows
        .iter()
        .filter(|(k, j, _, _, _)| k == "job" && j == "train-llama")
        .map(|(_, _, s, e, c)| {
            if *s >= start && *e <= FIRST + 4 * DAY {
                *c
            } else if *s == FIRST + 4 * DAY && *e == FIRST + 5 * DAY {
                c / 2.0
            } else {
                0.0
            }
        })
        .sum();
    assert!(cost > 0.0);
    assert!((runs[0]["cost"].as_f64().unwrap_or(0.0) - cost).abs() < 1e-6, "{:#} vs {cost}", runs[0]);

    // A model with no billing rows is costed from the manifests: phi-3's Deployment, 2 replicas
    // of 1 vCPU and 4 GiB at 0.05 and 0.01 an hour, for the 7 days of the period.
    let estate = dir.path().join("estate");
    std::fs::create_dir_all(estate.join("manifests")).expect("mkdir");
    std::fs::create_dir_all(estate.join("pricing")).expect("mkdir");
    std::fs::write(
        estate.join("assay.yaml"),
        "clusters:\n  - {name: eu, region: eu-west-1, paths: [\"manifests/**\"]}\n",
    )
    .expect("write");
    std::fs::write(
        estate.join("pricing/p.yaml"),
        "apiVersion: assay.dev/v1alpha1\nkind: PriceCatalog\nmetadata: {name: p}\nspec:\n  regions:\n    eu-west-1: {vcpuHour: 0.05, memoryGiBHour: 0.01}\n",
    )
    .expect("write");
    std::fs::write(
        estate.join("manifests/phi.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: phi, namespace: ml, labels: {model: phi-3}}\nspec:\n  replicas: 2\n  template:\n    spec:\n      containers: [{name: s, resources: {requests: {cpu: \"1\", memory: 4Gi}}}]\n",
    )
    .expect("write");
    let args = ["cost", "--data", d, "unit", "--per", "model", "--from", "2025-11-02", "--to", "2025-11-08"];
    let out =
        assay(dir.path(), &[&args[..], &["--estate", estate.to_str().unwrap_or(""), "--format", "json"]].concat());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
    let phi = v["models"].as_array().and_then(|a| a.iter().find(|m| m["model"] == "phi-3")).expect("phi-3");
    assert_eq!(phi["basis"], "estimate");
    let expected = 2.0 * (0.05 + 4.0 * 0.01) * 7.0 * 24.0;
    assert!((phi["cost"].as_f64().unwrap_or(0.0) - expected).abs() < 1e-9, "{phi:#} vs {expected}");
    let llama = v["models"].as_array().and_then(|a| a.iter().find(|m| m["model"] == "llama-3-8b")).expect("llama");
    assert_eq!(llama["basis"], "billing");

    // Without Prometheus, the cost per model is still given, and the missing tokens are named.
    let out = assay(
        dir.path(),
        &["cost", "--data", d, "unit", "--per", "model", "--from", "2025-11-02", "--to", "2025-11-08"],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("llama-3-8b") && stderr(&out).contains("no --prometheus"), "{}", stderr(&out));
}
