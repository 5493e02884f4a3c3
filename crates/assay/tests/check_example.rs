//! `assay check` on the example estate, in every output format.

mod common;

use common::{assay, repo_root, stdout};
use serde_json::Value;

#[test]
fn example_estate_table_lists_expected_violations_and_exits_1() {
    let out = assay(&repo_root(), &["check", "examples/estate"]);
    assert_eq!(out.status.code(), Some(1), "{}", common::stderr(&out));
    let text = stdout(&out);
    let expected = [
        "manifests/eu-prod/training.yaml",
        "data.k8s.limits.deny  Deployment.apps/ml-serving/finetune-worker: container \"metrics-exporter\" has no memory limit",
        "label finops.example.com/cost-center=\"research\" does not match CC-<4 digits>",
        "multimodal model Deployment must carry the ai.example.com/responsible-ai-model-id annotation",
        "AssayRequiredLabels/namespaces-must-have-owner  Namespace/research: Namespace research is missing required labels: owner",
        "Warnings",
        "Deployment runs a single replica",
        "AssayDisallowedTags/no-latest-images",
        "data.k8s.cost.warn  Deployment.apps/ml-serving/llm-inference: estimated 2952.12 USD a month",
        "Estimated monthly cost: 4,930.06 USD, 5 workloads priced",
        "  CC-1042         2,952.12",
        "budgets/inference-eu.yaml:3  warn    budget inference-eu (2500.00 USD for ",
        "FAIL: 4 denied, 3 warnings, 1 budget exceeded — 10 objects checked against 10 policies",
    ];
    for e in expected {
        assert!(text.contains(e), "missing {e:?} in:\n{text}");
    }
    // Denials come before warnings, grouped by file.
    assert!(text.find("Violations").unwrap_or(usize::MAX) < text.find("Warnings").unwrap_or(0));
}

#[test]
fn example_estate_json_is_the_documented_verdict() {
    let out = assay(&repo_root(), &["check", "examples/estate", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("verdict JSON");
    assert_eq!(v["schema"], "assay.dev/verdict/v1");
    assert_eq!(v["estate"]["name"], "acme-ai-platform");
    assert_eq!(v["summary"]["denied"], 4);
    assert_eq!(v["summary"]["warnings"], 3);
    assert_eq!(v["summary"]["budget_findings"], 1);
    let cost = &v["cost"];
    assert_eq!(cost["currency"], "USD");
    assert_eq!(cost["workloads"], 5);
    // 3 replicas × 730 h × (2 vCPU × 0.048 + 8 GiB × 0.0065 + 1 GPU × 1.20) in eu-west-1.
    let inference = 3.0 * 730.0 * (2.0 * 0.048 + 8.0 * 0.0065 + 1.20);
    assert_eq!(cost["by_cost_center"][0]["cost_center"], "CC-1042");
    assert!((cost["by_cost_center"][0]["monthly"].as_f64().unwrap_or(0.0) - inference).abs() < 1e-6, "{cost:#}");
    let finding = &cost["budget_findings"][0];
    assert_eq!((finding["budget"].as_str(), finding["action"].as_str()), (Some("inference-eu"), Some("warn")));
    assert!(finding["projected"].as_f64() > finding["amount"].as_f64(), "{finding:#}");
    assert_eq!(v["summary"]["objects"], 10);
    // The Terraform of terraform/ml-platform, worked out from its .tf files and priced from the
    // catalog's eu-west-1 products: one g5.xlarge all month with a 200 GB gp3 root volume.
    let trainer = cost["terraform"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["address"] == "aws_instance.trainer[0]")
        .unwrap_or_else(|| panic!("no trainer in {cost:#}"));
    assert!((trainer["monthly"].as_f64().unwrap_or(0.0) - (730.0 * 1.123 + 200.0 * 0.088)).abs() < 1e-6, "{trainer:#}");
    assert_eq!(trainer["region"], "eu-west-1");
    assert!(cost["unpriced"].as_array().into_iter().flatten().any(|u| u["object"] == "aws_s3_bucket.features"));
    assert_eq!(v["summary"]["passed"], false);
    let first = &v["violations"][0];
    assert_eq!(first["path"], "manifests/eu-prod/training.yaml");
    assert_eq!(first["line"], 2);
    assert_eq!(first["action"], "deny");
    assert_eq!(first["policy"]["type"], "rule");
    assert_eq!(first["policy"]["path"], "policies/k8s/limits.rego");
    let constraint = v["violations"].as_array().into_iter().flatten().find(|x| x["policy"]["type"] == "constraint");
    let constraint = constraint.expect("a constraint violation");
    assert_eq!(constraint["policy"]["kind"], "AssayRequiredLabels");
    assert_eq!(constraint["details"]["missing"], serde_json::json!(["owner"]));
}

#[test]
fn example_estate_sarif_validates_against_sarif_2_1_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sarif = dir.path().join("out.sarif");
    let out = assay(
        &repo_root(),
        &["check", "examples/estate", "--format", "sarif", "--output", sarif.to_str().unwrap_or("")],
    );
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&std::fs::read(&sarif).expect("sarif written")).expect("SARIF JSON");
    assert_eq!(v["version"], "2.1.0");
    let results = v["runs"][0]["results"].as_array().cloned().unwrap_or_default();
    assert_eq!(results.len(), 8, "four denials, three warnings, one budget");
    let budget = results.iter().find(|r| r["ruleId"] == "budget/inference-eu").expect("budget result");
    assert_eq!(budget["level"], "warning");
    assert_eq!(
        budget["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "examples/estate/budgets/inference-eu.yaml"
    );
    let loc = &results[0]["locations"][0]["physicalLocation"];
    // Relative to the repository root, where code scanning resolves it.
    assert_eq!(loc["artifactLocation"]["uri"], "examples/estate/manifests/eu-prod/training.yaml");
    assert_eq!(loc["region"]["startLine"], 2);
    assert_eq!(results[0]["level"], "error");

    common::validate_sarif(&sarif);
}

#[test]
fn example_estate_markdown_and_junit() {
    let out = assay(&repo_root(), &["check", "examples/estate", "--format", "markdown"]);
    let md = stdout(&out);
    assert!(md.starts_with("### ❌ assay check"), "{md}");
    assert!(md.contains("| deny | `manifests/us-prod/namespace.yaml` | 1 | `Namespace/research` | `AssayRequiredLabels/namespaces-must-have-owner` |"), "{md}");
    assert!(md.contains("<details><summary>Warnings (3)</summary>"), "{md}");
    assert!(md.contains("#### Cost\n\nEstimated monthly cost **4,930.06 USD**."), "{md}");
    assert!(md.contains("| CC-1042 | 2,952.12 |"), "{md}");

    let out = assay(&repo_root(), &["check", "examples/estate", "--format", "junit"]);
    let xml = stdout(&out);
    assert!(xml.contains("<testsuites name=\"assay check\" tests=\"10\" failures=\"3\" errors=\"0\">"), "{xml}");
    // Well-formed XML, as a JUnit consumer parses it.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("junit.xml");
    std::fs::write(&file, &xml).expect("write");
    let parsed = std::process::Command::new("python3")
        .args(["-c", "import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); print(sum(1 for _ in r.iter('failure')))"])
        .arg(&file)
        .output()
        .expect("python3");
    assert_eq!(String::from_utf8_lossy(&parsed.stdout).trim(), "3", "{}", String::from_utf8_lossy(&parsed.stderr));
}

#[test]
fn policy_test_and_verify_on_the_example() {
    let out = assay(&repo_root(), &["policy", "test", "examples/estate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).ends_with("44 passed, 0 failed\n"), "{}", stdout(&out));
    let out = assay(&repo_root(), &["policy", "verify", "examples/estate/tests"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).ends_with("PASS\n7 passed, 0 failed\n"), "{}", stdout(&out));
}

#[test]
fn a_reader_that_stops_early_is_not_a_panic() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    // An estate whose verdict is far larger than a pipe's buffer.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("manifests")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("policies")).expect("mkdir");
    std::fs::write(
        dir.path().join("policies/all.rego"),
        "package all\n\nimport rego.v1\n\ndeny contains \"every object is denied, with a long message to fill the pipe quickly\" if true\n",
    )
    .expect("write");
    for i in 0..2000 {
        std::fs::write(
            dir.path().join(format!("manifests/cm-{i}.yaml")),
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\n  namespace: default\n"),
        )
        .expect("write");
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(["check", dir.path().to_str().expect("path"), "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut first).expect("a first line");
    // The reader goes away after one line.
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(matches!(out.status.code(), Some(141) | Some(1)), "{:?}", out.status);
}
