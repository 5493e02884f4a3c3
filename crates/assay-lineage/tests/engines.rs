//! The lineage graph on both engines: the same events give the same graph on SQLite and on
//! PostgreSQL, whatever the order, and two writers on one PostgreSQL database (two replicas)
//! end with the graph one writer makes.

use assay_lineage::Event;
use assay_lineage::graph::{Applied, Graph, Node};
use assay_store::Location;
use assay_store::testing::TempPostgres;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// A pipeline of `jobs` jobs in layers, each run reading two datasets of the layer before and
/// writing one (the last layer writes models), with versions, statistics and code versions;
/// every run has a START and a COMPLETE or FAIL, some sent twice.
fn events(jobs: usize, seed: u64) -> Vec<Event> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    for j in 0..jobs {
        let layer = j / 10;
        let input = |k: usize| json!({"namespace": "s3://lake", "name": format!("l{layer}-{k}")});
        let model = layer == jobs / 10 - 1;
        let mut output = json!({
            "namespace": "s3://lake", "name": format!("l{}-{}", layer + 1, j % 10),
            "facets": {"version": {"_producer": "https://x.example/p", "_schemaURL": "https://x.example/s", "datasetVersion": format!("v{}", rng.random_range(0..3))}},
            "outputFacets": {"outputStatistics": {"_producer": "https://x.example/p", "_schemaURL": "https://x.example/s", "rowCount": rng.random_range(100..200)}}
        });
        if model {
            output["facets"]["datasetType"] = json!({"_producer": "https://x.example/p", "_schemaURL": "https://x.example/s", "datasetType": "MODEL"});
        }
        for r in 0..2 {
            let run = format!("00000000-0000-4000-8000-{:012}", j * 10 + r);
            let start = format!("2026-11-{:02}T{:02}:00:00Z", 1 + r, j % 24);
            let end = format!("2026-11-{:02}T{:02}:30:00+01:00", 1 + r, j % 24);
            let job = json!({"namespace": "airflow", "name": format!("job-{j}"),
                "facets": {"sourceCodeLocation": {"_producer": "https://x.example/p", "_schemaURL": "https://x.example/s", "type": "git", "url": "https://g/x", "version": format!("c{r}")}}});
            let ins = json!([input(j % 10), input((j + 1) % 10)]);
            let terminal = if rng.random_bool(0.8) { "COMPLETE" } else { "FAIL" };
            for (kind, time, outputs) in [("START", &start, json!([])), (terminal, &end, json!([output.clone()]))] {
                let raw: Value = json!({
                    "eventType": kind, "eventTime": time, "producer": "https://x.example/p",
                    "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
                    "run": {"runId": run}, "job": job, "inputs": ins, "outputs": outputs,
                });
                let event = assay_lineage::parse(&raw).expect("valid");
                if rng.random_bool(0.1) {
                    out.push(event.clone());
                }
                out.push(event);
            }
        }
    }
    out
}

/// Everything a user can ask of the graph, rendered.
fn answers(g: &Graph) -> Value {
    let model = Node::Dataset("s3://lake".into(), "l5-3".into());
    let raw = Node::Dataset("s3://lake".into(), "l0-1".into());
    let walk = |l: Option<assay_lineage::graph::Lineage>| {
        let l = l.expect("known");
        let mut names: Vec<String> = l.datasets.iter().map(|d| g.node(false, *d).expect("node").id()).collect();
        names.extend(l.jobs.iter().map(|j| g.node(true, *j).expect("node").id()));
        names.sort();
        names
    };
    let produced = g.producing_run("s3://lake", "l3-4", None).expect("produced").expect("a run");
    let produced_v1 = g.producing_run("s3://lake", "l3-4", Some("v1")).expect("produced").map(|p| p.run_id);
    // Nodes in walk order, which follows ids (the order rows were first written): by id here.
    let mut marquez = g.marquez(&g.upstream(&model, 2).expect("walk").expect("known")).expect("marquez")["graph"]
        .as_array()
        .expect("nodes")
        .clone();
    marquez.sort_by_key(|n| n["id"].as_str().map(str::to_string));
    json!({
        "counts": g.counts().expect("counts"),
        "edges": g.edges().expect("edges"),
        "up": walk(g.upstream(&model, 20).expect("walk")),
        "down": walk(g.downstream(&raw, 2).expect("walk")),
        "training": g.training_runs().expect("training"),
        "metrics": g.metric_points().expect("metrics").iter().map(|m| json!([m.dataset, m.metric, m.run_id, m.time, m.value, m.version])).collect::<Vec<_>>(),
        "produced": [produced.run_id, produced.job.id(), produced.version, produced.inputs],
        "produced_v1": produced_v1,
        "facets": g.facets("dataset:s3://lake:l5-3").expect("facets"),
        "run": g.run("00000000-0000-4000-8000-000000000011").expect("run").map(|(j, s)| (j.id(), s)),
        "marquez": marquez,
    })
}

/// Compares answer by answer, so that a failure names the one that differs.
fn same(got: &Value, expected: &Value) {
    for (key, want) in expected.as_object().expect("answers") {
        assert_eq!(&got[key], want, "{key} differs");
    }
}

#[test]
fn sqlite_and_postgres_hold_the_same_graph() {
    let all = events(60, 7);
    let mut sqlite = Graph::in_memory().expect("sqlite");
    sqlite.apply_all(&all).expect("apply");
    let pg = TempPostgres::start();
    let mut postgres = Graph::at(&Location::Postgres(pg.database("lineage"))).expect("postgres");
    let mut shuffled = all.clone();
    shuffled.shuffle(&mut StdRng::seed_from_u64(1));
    let before = postgres.version().expect("version");
    for chunk in shuffled.chunks(50) {
        postgres.apply_all(chunk).expect("apply");
    }
    assert!(postgres.version().expect("version") > before);
    let expected = answers(&sqlite);
    assert!(expected["training"].as_array().is_some_and(|t| !t.is_empty()), "the test has training runs");
    assert!(expected["metrics"].as_array().is_some_and(|m| !m.is_empty()), "and metrics");
    same(&answers(&postgres), &expected);
    // Applying everything again changes nothing, and the version does not move.
    let version = postgres.version().expect("version");
    assert!(postgres.apply_all(&all).expect("again").iter().all(|a| *a == Applied::Duplicate));
    assert_eq!(postgres.version().expect("version"), version);
    // A second connection (another replica) sees the same graph.
    let other = Graph::at(&Location::Postgres(pg.database("lineage"))).expect("again");
    same(&answers(&other), &expected);
}

#[test]
fn two_writers_on_one_database_make_the_graph_one_writer_makes() {
    let all = events(60, 11);
    let mut one = Graph::in_memory().expect("sqlite");
    one.apply_all(&all).expect("apply");
    let pg = TempPostgres::start();
    let url = pg.database("lineage");
    // Both replicas take every event, in their own order and their own batches: the same rows
    // are written by both at once.
    let writers: Vec<_> = [3u64, 4]
        .into_iter()
        .map(|seed| {
            let (url, mut mine) = (url.clone(), all.clone());
            std::thread::spawn(move || {
                mine.shuffle(&mut StdRng::seed_from_u64(seed));
                let mut g = Graph::at(&Location::Postgres(url)).expect("postgres");
                let mut new = 0;
                for chunk in mine.chunks(40) {
                    new += g.apply_all(chunk).expect("apply").iter().filter(|a| **a == Applied::New).count();
                }
                new
            })
        })
        .collect();
    let new: usize = writers.into_iter().map(|w| w.join().expect("writer")).sum();
    let distinct = one.counts().expect("counts")[4] as usize;
    assert_eq!(new, distinct, "each event is new to exactly one writer");
    let shared = Graph::at(&Location::Postgres(url)).expect("postgres");
    same(&answers(&shared), &answers(&one));
    assert_eq!(shared.version().expect("version"), distinct as i64);
}
