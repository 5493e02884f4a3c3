//! Cost in `assay check`: the monthly estimate per cost center, a change's delta, budget
//! findings with and without billing data, and `input.cost` for Rego, on real Git repositories.

mod common;

use assay_verdict::render::money;
use common::{Repo, assay, stderr, stdout};
use serde_json::Value;

const SETTINGS: &str = "currency: USD\nclusters:\n  - {name: eu, region: eu-west-1, paths: [\"manifests/**\"]}\n";
const PRICES: &str = "apiVersion: assay.dev/v1alpha1\nkind: PriceCatalog\nmetadata: {name: p}\nspec:\n  regions:\n    eu-west-1: {vcpuHour: 0.05, memoryGiBHour: 0.01, gpuHour: {default: 2.0}}\n";
/// 4,500 a month for CC-1042 in eu-west-1; a change that pushes past it is denied.
const BUDGET: &str = "apiVersion: assay.dev/v1alpha1\nkind: Budget\nmetadata: {name: serving}\nspec:\n  scope: {tags: {cost-center: CC-1042}, regions: [eu-west-1]}\n  amount: 4500\n  period: monthly\n  enforcementAction: deny\n";
const POLICY: &str = "package cost\n\nimport rego.v1\n\nwarn contains msg if {\n\tinput.cost.workload.gpu > 0\n\tmsg := sprintf(\"GPUs cost %v a month\", [round(input.cost.workload.gpu)])\n}\n";

fn deployment(replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: serve, namespace: ml, labels: {{cost-center: CC-1042}}}}\nspec:\n  replicas: {replicas}\n  template:\n    spec:\n      containers: [{{name: s, resources: {{requests: {{cpu: '2', memory: 8Gi, nvidia.com/gpu: 1}}}}}}]\n"
    )
}

/// Per pod and month: 730 h × (2 × 0.05 + 8 × 0.01 + 2.0).
const POD_MONTH: f64 = 730.0 * (2.0 * 0.05 + 8.0 * 0.01 + 2.0);

fn estate(repo: &Repo, replicas: u32) {
    repo.write("assay.yaml", SETTINGS);
    repo.write("pricing/p.yaml", PRICES);
    repo.write("budgets/serving.yaml", BUDGET);
    repo.write("policies/cost.rego", POLICY);
    repo.write("manifests/serve.yaml", &deployment(replicas));
}

fn check(repo: &Repo, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["check", ".", "--base", "HEAD~1", "--rev", "HEAD", "--format", "json"];
    args.extend_from_slice(extra);
    let out = assay(repo.path(), &args);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)));
    (out.status.code(), v)
}

#[test]
fn a_change_shows_its_delta_and_is_denied_when_it_breaks_a_budget() {
    let repo = Repo::new();
    estate(&repo, 2);
    repo.commit("two replicas", None);
    estate(&repo, 3);
    repo.commit("three replicas", None);
    let (code, v) = check(&repo, &[]);
    let cost = &v["cost"];
    assert!((cost["monthly"].as_f64().unwrap_or(0.0) - 3.0 * POD_MONTH).abs() < 1e-6, "{cost:#}");
    assert!((cost["delta"].as_f64().unwrap_or(0.0) - POD_MONTH).abs() < 1e-6, "{cost:#}");
    assert_eq!(cost["by_cost_center"][0]["cost_center"], "CC-1042");
    // 3 pods ≈ 4,774 a month: over 4,500, and this change put it there (2 pods were ≈ 3,183).
    let finding = &cost["budget_findings"][0];
    assert_eq!(finding["budget"], "serving");
    assert_eq!(finding["status"], "new");
    assert_eq!(finding["action"], "deny");
    assert_eq!(code, Some(1), "{v:#}");
    assert_eq!(v["summary"]["passed"], false);
    // Rego saw input.cost.workload.
    let warning = v["violations"].as_array().and_then(|a| a.iter().find(|x| x["policy"]["rule"] == "data.cost.warn"));
    assert_eq!(
        warning.map(|w| w["message"].clone()),
        Some(Value::from(format!("GPUs cost {} a month", (3.0f64 * 730.0 * 2.0).round())))
    );

    // From four replicas back to three lowers the projection but leaves it over: reported, not blocking.
    estate(&repo, 4);
    repo.commit("four", None);
    estate(&repo, 3);
    repo.commit("back to three", None);
    let (code, v) = check(&repo, &[]);
    assert_eq!(v["cost"]["budget_findings"][0]["status"], "unchanged", "{v:#}");
    assert_eq!(code, Some(0), "{v:#}");

    // The table says it in words, Infracost-style.
    let out = assay(repo.path(), &["check", ".", "--base", "HEAD~1", "--rev", "HEAD"]);
    let text = stdout(&out);
    assert!(
        text.contains(&format!("Estimated monthly cost: {} USD (-{} from", money(3.0 * POD_MONTH), money(POD_MONTH))),
        "{text}"
    );
}

#[test]
fn with_billing_data_the_projection_is_actual_plus_forecast_plus_the_change() {
    let repo = Repo::new();
    // Billing data, generated for 2024-01-01..2024-04-29.
    let generated = repo.path().join("gen");
    let out = assay(
        repo.path(),
        &["cost", "generate", "--seed", "7", "--no-anomalies", "--out", generated.to_str().unwrap_or("")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let data = repo.path().join("billing");
    let mut files: Vec<String> = std::fs::read_dir(&generated)
        .expect("gen")
        .filter_map(|e| e.ok().map(|e| e.path().to_str().unwrap_or("").to_string()))
        .filter(|p| p.ends_with(".csv"))
        .collect();
    files.sort();
    let mut args = vec!["cost", "--data", data.to_str().unwrap_or(""), "ingest"];
    args.extend(files.iter().map(String::as_str));
    assert_eq!(assay(repo.path(), &args).status.code(), Some(0));

    // A budget of 1: the projection is over it, whatever the billing data holds.
    estate(&repo, 2);
    repo.write("budgets/serving.yaml", &BUDGET.replace("amount: 4500", "amount: 1"));
    repo.write(".gitignore", "gen/\nbilling/\n");
    repo.commit("two replicas", None);
    repo.write("manifests/serve.yaml", &deployment(3));
    repo.commit("three", None);
    let (_, v) = check(&repo, &["--data", data.to_str().unwrap_or("")]);
    let cost = &v["cost"];
    assert_eq!(cost["billing_as_of"], "2024-04-29", "{cost:#}");
    let f = &cost["budget_findings"][0];
    assert_eq!(f["period"], "2024-04");
    let (actual, forecast, delta, projected) = (
        f["actual"].as_f64().expect("actual from billing data"),
        f["forecast"].as_f64().unwrap_or(0.0),
        f["delta"].as_f64().unwrap_or(0.0),
        f["projected"].as_f64().unwrap_or(0.0),
    );
    assert!(forecast >= actual, "{f:#}");
    // One pod more, for the one day left of April.
    assert!((delta - POD_MONTH / (365.25 / 12.0)).abs() < 1e-6, "{f:#}");
    assert!((projected - forecast - delta).abs() < 1e-6, "{f:#}");
    assert!(f["message"].as_str().unwrap_or("").contains("spent +"), "{f:#}");
}
