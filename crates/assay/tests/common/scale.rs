//! The scale the web UI is measured at: a year of daily FOCUS billing for 1,000 resources and a
//! lineage graph of about 10,000 nodes, in a data directory beside a copy of the example estate
//! with residency rules. Shared by the browser test (`tests/ui_browser.rs`, debug build) and the
//! benchmark (`benches/serve.rs -- ui`, release build), each with its own build of `assay`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What was made.
pub struct Scale {
    /// The estate: the example estate with `residency/gdpr.yaml`.
    pub estate: PathBuf,
    /// Billing rows stored.
    pub rows: u64,
    /// Jobs plus datasets in the lineage graph.
    pub nodes: u64,
    /// A dataset deep in the graph, with lineage both ways.
    pub deep_dataset: String,
}

/// Runs assay; its standard output, and its standard error.
fn assay(dir: &Path, args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_assay")).args(args).current_dir(dir).output().expect("run assay");
    assert!(out.status.success(), "assay {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A small, seeded pseudo-random sequence (xorshift64*): the same graph on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n.max(1)
    }
}

/// `jobs` OpenLineage COMPLETE events, one run of each job: a pipeline where each job reads two
/// datasets written by the last 2,000 before it (or raw data) and writes three, some of them in
/// the US; EU customer data is classified, and every tenth job is a training job that runs in
/// the US, so classified data crosses regions along many paths. About four nodes per job.
/// Returns the events, one per line, and the id of a dataset deep in the graph that a later
/// job reads (so it has lineage both ways).
pub fn lineage_events(jobs: usize) -> (String, String) {
    let producer = "https://github.com/OpenLineage/OpenLineage/tree/1.40.0/integration/spark";
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut datasets: Vec<(String, String)> = (0..jobs / 10)
        .map(|i| {
            let ns = match i % 5 {
                0 => "s3://customers-eu",
                1 | 3 => "s3://raw-eu",
                _ => "s3://raw-us",
            };
            (ns.to_string(), format!("table_{i}"))
        })
        .collect();
    let mut out = String::new();
    let mut deep = String::new();
    for j in 0..jobs {
        let name = if j % 10 == 9 { format!("train_{j}") } else { format!("etl_{j}") };
        let window = datasets.len().saturating_sub(2000);
        let a = window + rng.below(datasets.len() - window);
        let mut b = window + rng.below(datasets.len() - window);
        if b == a {
            b = if a > window { a - 1 } else { a + 1 };
        }
        if j == jobs * 9 / 10 {
            let (ns, name) = &datasets[a.max(b)];
            deep = format!("dataset:{ns}:{name}");
        }
        let inputs: Vec<serde_json::Value> =
            [a, b].iter().map(|&i| serde_json::json!({"namespace": datasets[i].0, "name": datasets[i].1})).collect();
        let outputs: Vec<(String, String)> = (0..3)
            .map(|k| {
                let ns = if (j + k) % 7 == 0 { "s3://features-us" } else { "s3://features-eu" };
                (ns.to_string(), format!("out_{j}_{k}"))
            })
            .collect();
        let event = serde_json::json!({
            "eventType": "COMPLETE",
            "eventTime": format!("2026-11-23T{:02}:{:02}:{:02}Z", (j / 3600) % 24, (j / 60) % 60, j % 60),
            "producer": producer,
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "run": {"runId": format!("0192f0c4-8a57-7d3c-b1a5-{j:012}")},
            "job": {"namespace": "airflow", "name": name},
            "inputs": inputs,
            "outputs": outputs.iter().map(|(ns, n)| serde_json::json!({
                "namespace": ns, "name": n,
                "outputFacets": {"outputStatistics": {
                    "_producer": producer,
                    "_schemaURL": "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json",
                    "rowCount": 1_000_000 + j, "size": 2_000_000_000u64 + j as u64,
                }},
            })).collect::<Vec<_>>(),
        });
        out.push_str(&event.to_string());
        out.push('\n');
        datasets.extend(outputs);
    }
    (out, deep)
}

/// Generates billing data (`assay cost generate` with `args`) into `dir/gen` and ingests it into
/// the billing store in `dir/data`.
pub fn billing(dir: &Path, args: &[&str]) {
    let mut generate = vec!["cost", "generate", "--out", "gen"];
    generate.extend(args);
    assay(dir, &generate);
    let mut files: Vec<String> = std::fs::read_dir(dir.join("gen"))
        .expect("gen")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut ingest = vec!["cost", "--data", "data", "ingest"];
    ingest.extend(files.iter().map(String::as_str));
    assay(dir, &ingest);
}

/// Makes the estate, the billing store (`assay cost generate --days 365 --resources 40`: 1,000
/// resources) and the lineage graph (2,500 jobs) in `dir/estate` and `dir/data`.
pub fn build(dir: &Path) -> Scale {
    let estate = dir.join("estate");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/estate");
    let status = Command::new("cp").arg("-r").arg(&example).arg(&estate).status().expect("cp");
    assert!(status.success());
    std::fs::create_dir_all(estate.join("residency")).expect("mkdir");
    std::fs::write(estate.join("residency/gdpr.yaml"), include_str!("residency.yaml")).expect("write");

    billing(dir, &["--days", "365", "--resources", "40", "--start", "2025-11-01"]);
    let (counted, _) = assay(
        dir,
        &[
            "cost",
            "--data",
            "data",
            "query",
            "--format",
            "csv",
            "SELECT count(*) AS n, count(DISTINCT \"ResourceId\") AS r FROM focus",
        ],
    );
    let (rows, resources) = counted
        .lines()
        .nth(1)
        .and_then(|l| l.split_once(','))
        .map(|(n, r)| (n.parse::<u64>().unwrap_or(0), r.trim().parse::<u64>().unwrap_or(0)))
        .expect("counts");
    assert_eq!(resources, 1000, "a year of billing for 1,000 resources");
    let _ = std::fs::remove_dir_all(dir.join("gen"));

    let (events, deep_dataset) = lineage_events(2500);
    std::fs::write(dir.join("lineage.jsonl"), events).expect("write events");
    let (_, said) = assay(dir, &["lineage", "ingest", "--data", "data", "lineage.jsonl"]);
    // "... the graph holds J jobs, R runs, D datasets, V dataset versions (PATH)"
    let held = said.rsplit("holds ").next().unwrap_or("").to_string();
    let count_of =
        |what: &str| -> u64 { held.split(", ").find_map(|part| part.strip_suffix(what)?.parse().ok()).unwrap_or(0) };
    let nodes = count_of(" jobs") + count_of(" datasets");
    assert!(nodes >= 10_000, "a graph of 10,000 nodes: {said}");
    Scale { estate, rows, nodes, deep_dataset }
}
