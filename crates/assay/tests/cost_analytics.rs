//! Anomalies, forecasts, budgets and `assay detect`, through the binary, on generated billing
//! data and files made here.

mod common;

use std::path::Path;

use common::{assay, stderr, stdout};
use serde_json::Value;

/// Generates `days` of billing data with `seed` and ingests it into `dir/data`.
fn generated(dir: &Path, seed: u64, extra: &[&str]) -> String {
    let out_dir = dir.join("gen");
    let seed = seed.to_string();
    let mut args = vec!["cost", "generate", "--seed", &seed, "--out", out_dir.to_str().unwrap_or("")];
    args.extend_from_slice(extra);
    let out = assay(dir, &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let data = dir.join("data").to_str().unwrap_or("").to_string();
    let mut files: Vec<String> = std::fs::read_dir(&out_dir)
        .expect("generated files")
        .filter_map(|e| e.ok().map(|e| e.path().to_str().unwrap_or("").to_string()))
        .filter(|p| p.ends_with(".csv"))
        .collect();
    files.sort();
    let mut args = vec!["cost", "--data", &data, "ingest"];
    args.extend(files.iter().map(String::as_str));
    let out = assay(dir, &args);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    data
}

fn json(dir: &Path, args: &[&str]) -> Value {
    let out = assay(dir, args);
    assert_eq!(out.status.code(), Some(0), "{:?}: {}{}", args, stdout(&out), stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", stdout(&out)))
}

#[test]
fn detection_finds_the_injected_anomalies_and_the_forecast_beats_seasonal_naive() {
    for seed in 1..=10 {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = generated(dir.path(), seed, &[]);
        let labels = dir.path().join("gen/anomalies.json");
        let e = json(
            dir.path(),
            &["cost", "--data", &data, "eval-anomalies", "--labels", labels.to_str().unwrap_or(""), "--format", "json"],
        );
        let f1 = e["f1"].as_f64().unwrap_or(0.0);
        assert!(f1 >= 0.9, "seed {seed}: {e:#}");
        assert_eq!(e["labels"], 7, "seed {seed}: four kinds of anomaly are injected");
        if seed > 3 {
            continue;
        }

        let backtests = json(dir.path(), &["cost", "--data", &data, "forecast", "--backtest", "--format", "json"]);
        let total = &backtests[0];
        assert_eq!(total["series"], "total");
        assert_eq!((total["holdout"].as_u64(), total["folds"].as_u64()), (Some(28), Some(4)));
        let mase = total["mase"].as_f64().unwrap_or(f64::INFINITY);
        assert!(mase < 1.0, "seed {seed}: {total:#}");
        assert!(total["mae"].as_f64() < total["naive_mae"].as_f64(), "{total:#}");
    }
}

#[test]
fn anomalies_name_their_root_cause_and_since_filters_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = generated(dir.path(), 1, &[]);
    let labels: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("gen/anomalies.json")).expect("labels"))
            .expect("labels JSON");
    let spike = labels.as_array().and_then(|l| l.iter().find(|l| l["kind"] == "spike")).expect("a spike").clone();
    let all = json(dir.path(), &["cost", "--data", &data, "anomalies", "--format", "json"]);
    let found = all
        .as_array()
        .and_then(|a| a.iter().find(|a| a["start"] == spike["start"]))
        .unwrap_or_else(|| panic!("no anomaly on {}: {all:#}", spike["start"]));
    let cause = &found["root_causes"][0];
    for (field, label) in [("service", "service"), ("region", "region"), ("account", "account")] {
        assert_eq!(cause[field], spike[label], "{found:#}");
    }
    assert!(found["impact"].as_f64().unwrap_or(0.0) > 0.0);
    assert!(found["actual"].as_f64() > found["expected"].as_f64());

    let since = json(dir.path(), &["cost", "--data", &data, "anomalies", "--since", "2024-04-01", "--format", "json"]);
    let starts: Vec<&str> =
        since.as_array().map(|a| a.iter().filter_map(|x| x["start"].as_str()).collect()).unwrap_or_default();
    assert!(!starts.is_empty() && starts.iter().all(|s| *s >= "2024-04-01"), "{starts:?}");
    assert!(since.as_array().map(Vec::len) < all.as_array().map(Vec::len));

    // A threshold no day reaches reports nothing, in words.
    let out = assay(dir.path(), &["cost", "--data", &data, "anomalies", "--min-impact", "1000000"]);
    assert_eq!(stdout(&out), "no cost anomalies\n");
}

#[test]
fn budgets_show_actual_forecast_intervals_and_breach_date() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = generated(dir.path(), 4, &["--no-anomalies"]);
    let estate = dir.path().join("estate");
    std::fs::create_dir_all(estate.join("budgets")).expect("mkdir");
    std::fs::write(estate.join("assay.yaml"), "currency: USD\n").expect("write");
    // About 190 a day of RDS in account 111111111111: 4,000 in April is crossed after the 10th.
    std::fs::write(
        estate.join("budgets/rds.yaml"),
        "apiVersion: assay.dev/v1alpha1\nkind: Budget\nmetadata: {name: rds}\nspec:\n  scope:\n    services: [\"Amazon Relational Database Service\"]\n    accounts: [\"111111111111\"]\n  amount: 4000\n  period: monthly\n  alerts: [{on: actual, at: 50%}, {on: forecast, at: 100%}]\n  enforcementAction: warn\n---\napiVersion: assay.dev/v1alpha1\nkind: Budget\nmetadata: {name: everything}\nspec:\n  amount: 100000000\n  period: quarterly\n",
    )
    .expect("write");
    let statuses = json(
        dir.path(),
        &[
            "cost",
            "--data",
            &data,
            "budgets",
            "--estate",
            estate.to_str().unwrap_or(""),
            "--as-of",
            "2024-04-10",
            "--format",
            "json",
        ],
    );
    let rds = &statuses[0];
    assert_eq!(rds["name"], "rds");
    assert_eq!((rds["period"].as_str(), rds["as_of"].as_str()), (Some("2024-04"), Some("2024-04-10")));
    let (actual, forecast) = (rds["actual"].as_f64().unwrap_or(0.0), rds["forecast"].as_f64().unwrap_or(0.0));
    assert!(actual > 0.0 && forecast > actual * 2.0, "{rds:#}");
    let (lo95, hi95) = (rds["forecast95"][0].as_f64().unwrap_or(0.0), rds["forecast95"][1].as_f64().unwrap_or(0.0));
    let (lo80, hi80) = (rds["forecast80"][0].as_f64().unwrap_or(0.0), rds["forecast80"][1].as_f64().unwrap_or(0.0));
    assert!(lo95 <= lo80 && lo80 <= forecast && forecast <= hi80 && hi80 <= hi95, "{rds:#}");
    let breach = rds["breach_date"].as_str().unwrap_or_else(|| panic!("no breach date: {rds:#}"));
    assert!(("2024-04-11".."2024-04-31").contains(&breach), "{breach}");
    assert_eq!(rds["alerts"][1]["crossed"], true, "{rds:#}");

    let everything = &statuses[1];
    assert_eq!(everything["period"], "2024-Q2");
    assert_eq!(everything["breach_date"], Value::Null);

    // The same through the forecast command: one series per budget besides the total.
    let forecasts = json(
        dir.path(),
        &[
            "cost",
            "--data",
            &data,
            "forecast",
            "--days",
            "14",
            "--estate",
            estate.to_str().unwrap_or(""),
            "--format",
            "json",
        ],
    );
    let names: Vec<&str> =
        forecasts.as_array().map(|a| a.iter().filter_map(|f| f["series"].as_str()).collect()).unwrap_or_default();
    assert_eq!(names, vec!["total", "budget rds", "budget everything"]);
    assert_eq!(forecasts[0]["from"], "2024-04-30");
}

#[test]
fn a_budget_in_another_currency_is_named_and_the_others_still_evaluated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = generated(dir.path(), 5, &["--no-anomalies", "--days", "60"]);
    let estate = dir.path().join("estate");
    std::fs::create_dir_all(estate.join("budgets")).expect("mkdir");
    std::fs::write(
        estate.join("budgets/b.yaml"),
        "apiVersion: assay.dev/v1alpha1\nkind: Budget\nmetadata: {name: euro}\nspec: {amount: 10, currency: EUR, period: monthly}\n---\napiVersion: assay.dev/v1alpha1\nkind: Budget\nmetadata: {name: dollar}\nspec: {amount: 10, period: monthly}\n---\napiVersion: assay.dev/v1alpha1\nkind: Budget\nmetadata: {name: typo}\nspec: {amount: 10, perod: monthly}\n",
    )
    .expect("write");
    let out = assay(dir.path(), &["cost", "--data", &data, "budgets", "--estate", estate.to_str().unwrap_or("")]);
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(2), "{text}{err}");
    assert!(err.contains("budgets/b.yaml:1: budget euro is in EUR but the billing data is in USD"), "{err}");
    assert!(err.contains("budgets/b.yaml:11: error: Budget typo: spec.perod: unknown field `perod`"), "{err}");
    assert!(text.contains("dollar"), "{text}");
}

/// Hourly CPU with a daily cycle, gaps, jittered timestamps, one spike and one broken row.
fn telemetry_csv() -> (String, usize) {
    let mut text = String::from("timestamp,host,cpu\n");
    let mut line = 1;
    let mut spike_line = 0;
    for h in 0..24 * 21 {
        if (300..310).contains(&h) {
            continue; // an outage: no data for ten hours
        }
        let t = 1_700_000_000 + h * 3600 + (h * 37) % 300;
        let cycle = 40.0 + 25.0 * ((h % 24) as f64 / 24.0 * std::f64::consts::TAU).sin();
        let x = (h as f64 * 12.9898).sin() * 43_758.545_3;
        let noise = x - x.floor() - 0.5;
        let mut value = cycle + 4.0 * noise;
        line += 1;
        if h == 24 * 18 + 3 {
            value += 45.0;
            spike_line = line;
        }
        if h == 24 * 19 {
            text.push_str(&format!("{t},web-1,n/a\n"));
            continue;
        }
        text.push_str(&format!("{t},web-1,{value:.3}\n"));
    }
    (text, spike_line)
}

#[test]
fn detect_scores_every_row_online_and_in_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (text, spike_line) = telemetry_csv();
    let file = dir.path().join("cpu.csv");
    std::fs::write(&file, &text).expect("write");
    let rows = text.lines().count() - 1;
    for mode in [&["--online"][..], &[][..]] {
        let mut args = vec!["detect", file.to_str().unwrap_or(""), "--time", "timestamp", "--value", "cpu"];
        args.extend_from_slice(mode);
        let out = assay(dir.path(), &args);
        // One row could not be read: exit 1, and it is named.
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains(&format!("cpu.csv:{}: column cpu: \"n/a\" is not a number", spike_line + 21)));
        let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
        let records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("record")).collect();
        assert_eq!(records.len(), rows, "every row is written");
        let flagged: Vec<&str> = records.iter().filter(|r| &r[5] == "true").map(|r| &r[0]).collect();
        assert_eq!(flagged, vec![spike_line.to_string()], "{mode:?}");
        let spike = records.iter().find(|r| r[0] == *spike_line.to_string()).expect("spike row");
        if mode.is_empty() {
            assert_eq!(&spike[6], "season day", "the daily cycle is found");
        } else {
            assert!(["level", "jump", "season", "pattern"].contains(&&spike[6]), "{:?}", &spike[6]);
        }
        assert!(records.iter().all(|r| r[4].parse::<f64>().is_ok_and(|s| (0.0..=1.0).contains(&s))));
    }

    // Online: a row's score is the same whether or not later rows exist.
    let cut: String = text.lines().take(spike_line).map(|l| format!("{l}\n")).collect();
    let short = dir.path().join("short.csv");
    std::fs::write(&short, cut).expect("write");
    let score_of = |path: &Path| -> String {
        let out = assay(
            dir.path(),
            &["detect", path.to_str().unwrap_or(""), "--time", "timestamp", "--value", "cpu", "--online"],
        );
        let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
        let records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("record")).collect();
        let row = records.iter().find(|r| r[0] == *spike_line.to_string()).expect("row");
        format!("{},{},{}", &row[3], &row[4], &row[5])
    };
    assert_eq!(score_of(&short), score_of(&file));

    let out = assay(dir.path(), &["detect", file.to_str().unwrap_or(""), "--time", "ts", "--value", "cpu"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no column \"ts\" for --time (the columns are: timestamp, host, cpu)"),
        "{}",
        stderr(&out)
    );
}
