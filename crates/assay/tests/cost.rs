//! `assay cost` on real FOCUS data: the conformance sample and files made here.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{assay, stderr, stdout};
use serde_json::Value;

fn sample() -> PathBuf {
    common::repo_root().join("../shared/conformance/focus/focus_sample_1000.csv")
}

/// Exact sums of a cost column per provider, straight from the CSV, as decimal strings.
fn direct_sums(path: &Path, column: &str) -> BTreeMap<String, String> {
    let mut reader = csv::Reader::from_path(path).expect("sample CSV");
    let headers = reader.headers().expect("header").clone();
    let provider = headers.iter().position(|h| h == "ProviderName").expect("ProviderName");
    let cost = headers.iter().position(|h| h == column).expect("cost column");
    let mut exact: BTreeMap<String, i128> = BTreeMap::new();
    for record in reader.records() {
        let record = record.expect("record");
        let value = assay_cost::validate::parse_decimal(&record[cost]).expect("decimal");
        *exact.entry(record[provider].to_string()).or_default() += value;
    }
    exact.into_iter().map(|(k, v)| (k, assay_cost::allocation::exact_decimal(v))).collect()
}

fn report(data: &Path, args: &[&str]) -> Value {
    let mut all = vec!["cost", "--data", data.to_str().unwrap_or(""), "report", "--format", "json"];
    all.extend_from_slice(args);
    let out = assay(data, &all);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    serde_json::from_slice(&out.stdout).expect("report JSON")
}

#[test]
fn focus_sample_ingests_with_every_row_accounted_for_and_totals_match_the_csv() {
    let data = tempfile::tempdir().expect("tempdir");
    let d = data.path().to_str().unwrap_or("");
    let out = assay(data.path(), &["cost", "--data", d, "ingest", sample().to_str().unwrap_or("")]);
    let text = stdout(&out);
    assert!(text.contains("1000 rows read, 1000 kept, 0 rejected"), "{text}{}", stderr(&out));
    assert!(
        text.contains("warning: ChargeFrequency: \"Usage-based\" normalised to \"Usage-Based\" (7 rows)"),
        "{text}"
    );
    assert!(text.contains("not stored (not FOCUS columns): Id"), "{text}");
    assert_eq!(out.status.code(), Some(0));

    for metric in ["BilledCost", "EffectiveCost"] {
        let v = report(data.path(), &["--by", "ProviderName", "--metric", metric]);
        let groups = v["groups"].as_array().cloned().unwrap_or_default();
        let got: BTreeMap<String, String> = groups
            .iter()
            .map(|g| (g["keys"][0].as_str().unwrap_or("").to_string(), g["amount"].as_str().unwrap_or("").to_string()))
            .collect();
        assert_eq!(got, direct_sums(&sample(), metric), "{metric}");
        // Rounded to the cent, the groups add up to the total.
        let cents: i64 = groups.iter().map(|g| g["cents"].as_i64().unwrap_or(0)).sum();
        assert_eq!(v["total_cents"].as_i64(), Some(cents));
    }

    // Re-ingesting the same export replaces its partitions: nothing is counted twice.
    let before = report(data.path(), &["--by", "BillingPeriod"]);
    let out = assay(data.path(), &["cost", "--data", d, "ingest", sample().to_str().unwrap_or("")]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(report(data.path(), &["--by", "BillingPeriod"]), before);
}

#[test]
fn allocation_by_tag_shows_untagged_spend_and_adds_up() {
    let data = tempfile::tempdir().expect("tempdir");
    let d = data.path().to_str().unwrap_or("");
    let out = assay(data.path(), &["cost", "--data", d, "ingest", sample().to_str().unwrap_or("")]);
    assert_eq!(out.status.code(), Some(0));
    let v = report(data.path(), &["--by", "tag:business_unit", "--metric", "BilledCost"]);
    let groups = v["groups"].as_array().cloned().unwrap_or_default();
    assert!(groups.iter().any(|g| g["keys"][0].is_null()), "an untagged group exists");
    let sum: i64 = groups.iter().map(|g| g["cents"].as_i64().unwrap_or(0)).sum();
    assert_eq!(Some(sum), v["total_cents"].as_i64());
    let table = assay(data.path(), &["cost", "--data", d, "report", "--by", "tag:business_unit"]);
    assert!(stdout(&table).contains("(untagged)"), "{}", stdout(&table));
}

#[test]
fn query_runs_sql_over_the_focus_table() {
    let data = tempfile::tempdir().expect("tempdir");
    let d = data.path().to_str().unwrap_or("");
    assay(data.path(), &["cost", "--data", d, "ingest", sample().to_str().unwrap_or("")]);
    let out = assay(
        data.path(),
        &[
            "cost",
            "--data",
            d,
            "query",
            "SELECT \"ProviderName\", COUNT(*) AS n FROM focus GROUP BY 1 ORDER BY 1",
            "--format",
            "csv",
        ],
    );
    assert_eq!(stdout(&out), "ProviderName,n\nAWS,942\nMicrosoft,51\nOracle,7\n", "{}", stderr(&out));
    let out = assay(data.path(), &["cost", "--data", d, "query", "SELECT nope FROM focus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("nope"), "{}", stderr(&out));

    // DataFusion's settings come from its environment variables, as in datafusion-cli; a value
    // that does not parse is an error that names the setting.
    let with_env = |vars: &[(&str, &str)], sql: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_assay"))
            .args(["cost", "--data", d, "query", sql, "--format", "csv"])
            .envs(vars.iter().copied())
            .output()
            .expect("running assay")
    };
    let vars = [("DATAFUSION_CATALOG_INFORMATION_SCHEMA", "true"), ("DATAFUSION_EXECUTION_BATCH_SIZE", "7")];
    let out = with_env(&vars, "SHOW datafusion.execution.batch_size");
    assert_eq!(stdout(&out), "name,value\ndatafusion.execution.batch_size,7\n", "{}", stderr(&out));
    let out = with_env(&vars, "SELECT \"ProviderName\", COUNT(*) AS n FROM focus GROUP BY 1 ORDER BY 1");
    assert_eq!(stdout(&out), "ProviderName,n\nAWS,942\nMicrosoft,51\nOracle,7\n", "{}", stderr(&out));
    let out = with_env(&[("DATAFUSION_EXECUTION_BATCH_SIZE", "seven")], "SELECT 1");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("datafusion.execution.batch_size"), "{}", stderr(&out));
}

#[test]
fn bad_rows_are_rejected_with_line_and_reason_and_the_rest_is_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(sample()).expect("sample");
    let mut lines: Vec<String> = text.lines().take(6).map(str::to_string).collect();
    // Line 3: a cost that is not a number. Line 5: a row cut short.
    lines[2] = lines[2].replacen("NULL,0.0000", "NULL,abc0.0000", 1);
    lines[4] = lines[4].split(',').take(5).collect::<Vec<_>>().join(",");
    let file = dir.path().join("export.csv");
    std::fs::write(&file, lines.join("\n") + "\n").expect("write");
    let not_focus = dir.path().join("not-focus.csv");
    std::fs::write(&not_focus, "Date,Cost\n2024-01-01,3\n").expect("write");

    let data = dir.path().join("data");
    let out = assay(
        dir.path(),
        &[
            "cost",
            "--data",
            data.to_str().unwrap_or(""),
            "ingest",
            not_focus.to_str().unwrap_or(""),
            file.to_str().unwrap_or(""),
        ],
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("not-focus.csv: error: not FOCUS data: missing mandatory columns BilledCost"), "{text}");
    assert!(text.contains("export.csv: read 5 rows, kept 3, rejected 2"), "{text}");
    let rejects =
        std::fs::read_dir(data.join("rejects")).expect("rejects dir").flatten().next().expect("a rejects file").path();
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_path(&rejects).expect("rejects CSV");
    let rows: Vec<(String, String)> =
        reader.records().flatten().map(|r| (r[0].to_string(), r[1].to_string())).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].0, "3");
    assert!(rows[0].1.contains("BilledCost \"abc0.00001605990\" is not a decimal number"), "{rows:?}");
    assert_eq!(rows[1].0, "5");
    assert!(rows[1].1.contains("has 5 fields, the header has 44"), "{rows:?}");
}

#[test]
fn gzip_and_parquet_exports_ingest_like_csv() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gz = dir.path().join("export.csv.gz");
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -c '{}' > '{}'", sample().display(), gz.display()))
        .status()
        .expect("gzip");
    assert!(status.success());
    let first = dir.path().join("first");
    let out = assay(dir.path(), &["cost", "--data", first.to_str().unwrap_or(""), "ingest", gz.to_str().unwrap_or("")]);
    assert!(stdout(&out).contains("1000 rows read, 1000 kept, 0 rejected"), "{}", stdout(&out));
    let expected = report(&first, &["--by", "ProviderName,tag:environment", "--metric", "BilledCost"]);

    // The store's own partitions are FOCUS Parquet files: ingest them into a second store.
    let parts: Vec<String> = walk(&first.join("focus")).into_iter().map(|p| p.display().to_string()).collect();
    assert_eq!(parts.len(), 4, "{parts:?}");
    let second = dir.path().join("second");
    let mut args = vec!["cost", "--data", second.to_str().unwrap_or(""), "ingest"];
    args.extend(parts.iter().map(String::as_str));
    let out = assay(dir.path(), &args);
    assert!(stdout(&out).contains("1000 rows read, 1000 kept, 0 rejected"), "{}", stdout(&out));
    assert_eq!(report(&second, &["--by", "ProviderName,tag:environment", "--metric", "BilledCost"]), expected);
}

/// The Parquet files under `dir`, sorted.
fn walk(dir: &Path) -> Vec<PathBuf> {
    walk_all(dir).into_iter().filter(|p| p.extension().is_some_and(|e| e == "parquet")).collect()
}

#[test]
fn a_file_that_fails_midway_stores_nothing_and_the_other_files_are_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The same export twice, gzipped; the second cut off in the middle.
    let whole = dir.path().join("whole.csv.gz");
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -c '{}' > '{}'", sample().display(), whole.display()))
        .status()
        .expect("gzip");
    assert!(status.success());
    let bytes = std::fs::read(&whole).expect("read");
    let cut = dir.path().join("cut.csv.gz");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).expect("write");

    let alone = dir.path().join("alone");
    let out =
        assay(dir.path(), &["cost", "--data", alone.to_str().unwrap_or(""), "ingest", whole.to_str().unwrap_or("")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let expected = report(&alone, &["--by", "ProviderName", "--metric", "BilledCost"]);

    let both = dir.path().join("both");
    let out = assay(
        dir.path(),
        &[
            "cost",
            "--data",
            both.to_str().unwrap_or(""),
            "ingest",
            whole.to_str().unwrap_or(""),
            cut.to_str().unwrap_or(""),
        ],
    );
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("cut.csv.gz"), "{text}");
    assert!(text.contains("were stored"), "the report says none of the cut file's rows were stored: {text}");
    // Only the whole file's rows are in the store: the same report as the whole file alone.
    assert_eq!(report(&both, &["--by", "ProviderName", "--metric", "BilledCost"]), expected);
    let leftovers: Vec<_> =
        walk_all(&both.join("focus")).into_iter().filter(|p| p.to_string_lossy().ends_with(".tmp")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Every file under `dir`, sorted.
fn walk_all(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk_all(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// `--memory-limit` holds a query to a memory pool: an aggregation bigger than the pool spills
/// to disk and gives the same answer; one that cannot fit fails with an error that says so.
#[test]
fn a_query_held_to_little_memory_spills_to_disk_and_gives_the_same_answer() {
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    common::scale::billing(dir, &["--days", "120", "--resources", "40", "--seed", "3"]);
    // One group per resource and day: over 100,000 groups.
    let sql = "SELECT ResourceId, ChargePeriodStart, SUM(EffectiveCost) AS c FROM focus GROUP BY 1, 2 \
               ORDER BY c DESC, ResourceId LIMIT 5";
    let answer = |limit: Option<&str>| -> (Option<i32>, String, String) {
        let mut args = vec!["cost", "--data", "data"];
        if let Some(l) = limit {
            args.extend(["--memory-limit", l]);
        }
        args.extend(["query", "--format", "csv", sql]);
        let out = assay(dir, &args);
        (out.status.code(), stdout(&out), stderr(&out))
    };
    let (code, unlimited, err) = answer(None);
    assert_eq!(code, Some(0), "{err}");
    let (code, limited, err) = answer(Some("32MiB"));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(limited, unlimited);
    // It did spill: DataFusion's own metrics say so.
    let out =
        assay(dir, &["cost", "--data", "data", "--memory-limit", "32MiB", "query", &format!("EXPLAIN ANALYZE {sql}")]);
    let plan = stdout(&out);
    let spills: u64 = plan
        .split("spill_count=")
        .skip(1)
        .filter_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next()?.parse::<u64>().ok())
        .sum();
    assert!(spills > 0, "no operator spilled under 32 MiB:\n{plan}");
    // Too little to work at all: refused with the reason, not killed.
    let (code, _, err) = answer(Some("1MiB"));
    assert_eq!(code, Some(2));
    assert!(err.contains("Resources exhausted"), "{err}");
    let out = assay(dir, &["cost", "--data", "data", "--memory-limit", "lots", "query", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not a size"), "{}", stderr(&out));
}
