//! `assay check`, `assay cost budgets` and `assay cost forecast --estate` report the same spend
//! to date, forecast and projection for every budget: one function works them out.

mod common;

use std::path::Path;

use common::{assay, stderr, stdout};
use serde_json::Value;

const RDS: &str = "Amazon Relational Database Service";

/// Generated billing data, ingested into `dir/data`, with RDS's rows of the last ten days left
/// out: the RDS budget's spend stops before the billing data does (where the commands used to
/// part ways: one took the budget's own last day, another the data's).
fn billing(dir: &Path) -> String {
    let out_dir = dir.join("gen");
    let out = assay(
        dir,
        &[
            "cost",
            "generate",
            "--seed",
            "11",
            "--days",
            "100",
            "--no-anomalies",
            "--out",
            out_dir.to_str().unwrap_or(""),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut files = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&out_dir)
        .expect("generated")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    names.sort();
    // 2024-01-01 + 100 days: the data ends on 2024-04-09; RDS stops after 2024-03-30.
    for path in names {
        let mut reader = csv::Reader::from_path(&path).expect("generated csv");
        let head = reader.headers().expect("header").clone();
        let at = |name: &str| head.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}"));
        let (service, start) = (at("ServiceName"), at("ChargePeriodStart"));
        let kept = dir.join(path.file_name().expect("name"));
        let mut writer = csv::Writer::from_path(&kept).expect("write csv");
        writer.write_record(&head).expect("write");
        for row in reader.records() {
            let row = row.expect("row");
            if &row[service] == RDS && &row[start][..10] > "2024-03-30" {
                continue;
            }
            writer.write_record(&row).expect("write");
        }
        writer.flush().expect("flush");
        files.push(kept.to_str().unwrap_or("").to_string());
    }
    let data = dir.join("data").to_str().unwrap_or("").to_string();
    let mut args = vec!["cost", "--data", &data, "ingest"];
    args.extend(files.iter().map(String::as_str));
    let out = assay(dir, &args);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    data
}

fn json(dir: &Path, args: &[&str], code: i32) -> Value {
    let out = assay(dir, args);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {}{}", stdout(&out), stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", stdout(&out)))
}

#[test]
fn check_budgets_and_forecast_report_the_same_numbers_for_each_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = billing(dir.path());
    let estate = dir.path().join("estate");
    std::fs::create_dir_all(estate.join("budgets")).expect("mkdir");
    std::fs::write(estate.join("assay.yaml"), "name: finops\ncurrency: USD\n").expect("write");
    std::fs::write(
        estate.join("budgets/b.yaml"),
        format!(
            "apiVersion: assay.dev/v1alpha1\nkind: Budget\nmetadata: {{name: rds}}\nspec:\n  scope: {{services: [\"{RDS}\"]}}\n  amount: 3000\n  period: monthly\n  enforcementAction: warn\n---\napiVersion: assay.dev/v1alpha1\nkind: Budget\nmetadata: {{name: everything}}\nspec:\n  amount: 100000000\n  period: quarterly\n"
        ),
    )
    .expect("write");
    let estate = estate.to_str().unwrap_or("");

    let check = json(dir.path(), &["check", estate, "--data", &data, "--format", "json"], 0);
    let cost = &check["cost"];
    assert_eq!(cost["billing_as_of"], "2024-04-09", "{cost:#}");
    let statuses = json(dir.path(), &["cost", "--data", &data, "budgets", "--estate", estate, "--format", "json"], 0);
    let forecasts = json(dir.path(), &["cost", "--data", &data, "forecast", "--estate", estate, "--format", "json"], 0);

    for (i, name) in ["rds", "everything"].into_iter().enumerate() {
        let projection = &cost["budgets"][i];
        let status = &statuses[i];
        let row = forecasts
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["series"] == format!("budget {name}")))
            .unwrap_or_else(|| panic!("no forecast of budget {name}: {forecasts:#}"));
        let shown = &row["budget"];
        assert_eq!((projection["budget"].as_str(), status["name"].as_str()), (Some(name), Some(name)));
        assert_eq!(status["as_of"], "2024-04-09", "{name}: the billing data's last day, not the scope's");
        assert_eq!(shown["as_of"], status["as_of"], "{name}");
        assert_eq!(projection["period"], status["period"], "{name}");
        assert_eq!(shown["period"], status["period"], "{name}");
        for field in ["actual", "forecast"] {
            let value = status[field].as_f64().unwrap_or_else(|| panic!("{name}.{field}: {status:#}"));
            assert_eq!(projection[field].as_f64(), Some(value), "{name}.{field}: check {projection:#}");
            assert_eq!(shown[field].as_f64(), Some(value), "{name}.{field}: forecast {shown:#}");
        }
        // No change is checked: the projection is the forecast, in all three.
        assert_eq!(projection["projected"], status["forecast"], "{name}");
        assert_eq!(projection["delta"].as_f64(), Some(0.0), "{name}");
    }
    // RDS spent nothing in April's last ten days of data: spend to date is March's tail only.
    let rds = &statuses[0];
    assert!(rds["actual"].as_f64().unwrap_or(-1.0) == 0.0, "{rds:#}");

    // --as-of moves all three to another day together.
    let check = json(dir.path(), &["check", estate, "--data", &data, "--as-of", "2024-03-20", "--format", "json"], 0);
    let statuses = json(
        dir.path(),
        &["cost", "--data", &data, "budgets", "--estate", estate, "--as-of", "2024-03-20", "--format", "json"],
        0,
    );
    assert_eq!(check["cost"]["billing_as_of"], "2024-03-20");
    for i in 0..2 {
        assert_eq!(check["cost"]["budgets"][i]["actual"], statuses[i]["actual"]);
        assert_eq!(check["cost"]["budgets"][i]["forecast"], statuses[i]["forecast"]);
    }
    assert!(statuses[0]["actual"].as_f64().unwrap_or(0.0) > 0.0, "{:#}", statuses[0]);
}
