//! Lineage graph queries at scale (see BENCHMARKS.md): a generated graph of 100,000 jobs writing
//! 1,000,000 datasets is built through the library's own intake (`Graph::apply_all`, batches of
//! 1,000 events, durable commits), reopened, then asked for the upstream lineage of random deep
//! datasets at depth 20: the walk alone, and the walk rendered in Marquez's answer shape (what
//! `GET /api/v1/lineage` and `assay lineage upstream --json` return).
//!
//! The shape: 1,000 pipelines of 25 stages × 4 jobs; each job writes 10 datasets and reads 2
//! outputs of the previous stage of its pipeline, and one job in four also reads a dataset of
//! another pipeline (shared features, reference data), so walks cross pipelines as real ones do.
//!
//! `cargo bench -p assay-lineage --bench graph`; `ASSAY_BENCH_JOBS` (default 100000),
//! `ASSAY_BENCH_QUERIES` (default 1000); `ASSAY_BENCH_DATABASE=postgres://…` builds and asks the
//! graph in that PostgreSQL database (empty it first) instead of a SQLite file.

use std::time::Instant;

use assay_lineage::graph::{Graph, Node};
use assay_store::Location;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const STAGES: u64 = 25;
const WIDTH: u64 = 4;
const OUTPUTS: u64 = 10;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn dataset(pipeline: u64, stage: u64, job: u64, table: u64) -> Value {
    json!({"namespace": format!("s3://lake-{pipeline}"), "name": format!("s{stage}/j{job}/t{table}")})
}

fn event(rng: &mut StdRng, pipelines: u64, p: u64, stage: u64, k: u64) -> Value {
    let mut inputs = Vec::new();
    if stage == 0 {
        inputs.push(json!({"namespace": format!("s3://raw-{p}"), "name": format!("j{k}")}));
    } else {
        for _ in 0..2 {
            inputs.push(dataset(p, stage - 1, rng.random_range(0..WIDTH), rng.random_range(0..OUTPUTS)));
        }
        if rng.random_range(0..4) == 0 {
            let other = rng.random_range(0..pipelines);
            inputs.push(dataset(
                other,
                rng.random_range(0..stage),
                rng.random_range(0..WIDTH),
                rng.random_range(0..OUTPUTS),
            ));
        }
    }
    let outputs: Vec<Value> = (0..OUTPUTS).map(|t| dataset(p, stage, k, t)).collect();
    let n = (p * STAGES + stage) * WIDTH + k;
    json!({
        "eventType": "COMPLETE",
        "eventTime": "2026-11-23T10:00:00Z",
        "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.40.0/integration/spark",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": format!("0192f0c4-8a57-7d3c-b1a5-{n:012}")},
        "job": {"namespace": format!("pipeline-{p}"), "name": format!("s{stage}/j{k}")},
        "inputs": inputs,
        "outputs": outputs,
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn main() {
    let jobs = env_or("ASSAY_BENCH_JOBS", 100_000);
    let queries = env_or("ASSAY_BENCH_QUERIES", 1000) as usize;
    let pipelines = (jobs / (STAGES * WIDTH)).max(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("lineage.sqlite");
    let location = match std::env::var("ASSAY_BENCH_DATABASE") {
        Ok(url) => Location::Postgres(url),
        Err(_) => Location::Sqlite(path.clone()),
    };
    println!("store: {}", location.redacted());
    let mut rng = StdRng::seed_from_u64(20);

    let mut graph = Graph::at(&location).expect("graph");
    let start = Instant::now();
    let mut batch = Vec::with_capacity(1000);
    let mut events = 0u64;
    for p in 0..pipelines {
        for stage in 0..STAGES {
            for k in 0..WIDTH {
                let raw = event(&mut rng, pipelines, p, stage, k);
                let parsed = assay_lineage::parse(&raw).expect("valid event");
                batch.push(parsed);
                if batch.len() == 1000 {
                    graph.apply_all(&batch).expect("apply");
                    events += batch.len() as u64;
                    batch.clear();
                }
            }
        }
    }
    graph.apply_all(&batch).expect("apply");
    events += batch.len() as u64;
    let built = start.elapsed().as_secs_f64();
    let [njobs, runs, datasets, _, _] = graph.counts().expect("counts");
    drop(graph);
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "built: {events} events ({njobs} jobs, {runs} runs, {datasets} datasets) in {built:.1} s = {:.0} events/s, \
         {:.0} MB on disk",
        events as f64 / built,
        size as f64 / 1e6
    );

    let graph = Graph::at(&location).expect("reopen");
    let mut walk_ms = Vec::with_capacity(queries);
    let mut full_ms = Vec::with_capacity(queries);
    let mut reached = Vec::with_capacity(queries);
    for _ in 0..queries {
        let p = rng.random_range(0..pipelines);
        let stage = rng.random_range(STAGES - 5..STAGES);
        let node = Node::Dataset(
            format!("s3://lake-{p}"),
            format!("s{stage}/j{}/t{}", rng.random_range(0..WIDTH), rng.random_range(0..OUTPUTS)),
        );
        let t = Instant::now();
        let lineage = graph.upstream(&node, 20).expect("walk").expect("known node");
        walk_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let answer = graph.marquez(&lineage).expect("render");
        full_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        reached.push((lineage.jobs.len() + lineage.datasets.len()) as f64);
        std::hint::black_box(answer);
    }
    for v in [&mut walk_ms, &mut full_ms, &mut reached] {
        v.sort_by(f64::total_cmp);
    }
    println!(
        "upstream depth 20, {queries} random datasets of the last 5 stages: nodes reached p50 {:.0}, p95 {:.0}, max {:.0}",
        percentile(&reached, 0.5),
        percentile(&reached, 0.95),
        percentile(&reached, 1.0)
    );
    for (what, v) in [("walk", &walk_ms), ("walk + Marquez JSON", &full_ms)] {
        println!(
            "{what}: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            percentile(v, 0.5),
            percentile(v, 0.95),
            percentile(v, 0.99),
            percentile(v, 1.0)
        );
    }
}
