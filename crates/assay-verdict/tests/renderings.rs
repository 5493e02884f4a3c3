//! Snapshots of every rendering of one fixed verdict: a change with new, unchanged and fixed
//! violations, a warning and a dry run, an untrusted commit, a diagnostic, and a cost section
//! with a delta, an unpriced workload and a budget finding. A change to a rendering shows here
//! as a diff; `UPDATE_EXPECT=1 cargo test -p assay-verdict --test renderings` accepts it.

use assay_estate::settings::EnforcementAction;
use assay_estate::{Diagnostic, FileChange, FileChangeKind, Object, Origin};
use assay_policy::{Evaluation, Finding, PolicyRef};
use assay_verdict::cost::{BudgetFinding, CostCenterCost, CostReport, FindingChange, Projection, Unpriced};
use assay_verdict::render::{Format, render, render_with};
use assay_verdict::{CommitCheck, EstateRef, Evaluated, Verdict, VerdictInput};
use expect_test::expect_file;
use serde_json::json;

fn object(path: &str, line: u32, api_version: &str, kind: &str, name: &str) -> Object {
    Object {
        path: path.into(),
        line,
        value: json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": "ml"}}),
    }
}

fn rule(rule: &str) -> PolicyRef {
    PolicyRef::Rule { rule: rule.into(), path: "policies/k8s/labels.rego".into() }
}

fn finding(policy: PolicyRef, action: EnforcementAction, message: &str) -> Finding {
    Finding { policy, action, message: message.into(), details: None }
}

fn verdict() -> Verdict {
    let objects = vec![
        object("manifests/serve.yaml", 1, "apps/v1", "Deployment", "llm"),
        object("manifests/serve.yaml", 24, "v1", "Service", "llm"),
        object("manifests/train.yaml", 1, "batch/v1", "Job", "train"),
    ];
    let limits = PolicyRef::Constraint {
        kind: "K8sContainerLimits".into(),
        name: "limits".into(),
        path: "constraints/limits.yaml".into(),
        line: 12,
    };
    let head = vec![
        Evaluation {
            findings: vec![
                finding(
                    rule("data.k8s.labels.deny"),
                    EnforcementAction::Deny,
                    "Deployment must carry a cost-center label",
                ),
                finding(limits.clone(), EnforcementAction::Deny, "container <server> has no memory limit"),
                finding(rule("data.k8s.labels.warn"), EnforcementAction::Warn, "Deployment runs a single replica"),
            ],
            errors: Vec::new(),
        },
        Evaluation::default(),
        Evaluation {
            findings: vec![finding(rule("data.k8s.gpu.deny"), EnforcementAction::Dryrun, "Job asks for 8 GPUs")],
            errors: Vec::new(),
        },
    ];
    let base = vec![
        Evaluation {
            findings: vec![
                finding(limits, EnforcementAction::Deny, "container <server> has no memory limit"),
                finding(
                    rule("data.k8s.images.deny"),
                    EnforcementAction::Deny,
                    "image <llm:latest> uses the latest tag",
                ),
            ],
            errors: Vec::new(),
        },
        Evaluation::default(),
        Evaluation::default(),
    ];
    let budget = Projection {
        budget: "serving".into(),
        period: "2024-04".into(),
        amount: 4500.0,
        actual: Some(4410.5),
        forecast: 4562.0,
        delta: 52.3,
        projected: 4614.3,
    };
    let cost = CostReport {
        currency: "USD".into(),
        monthly: 4774.2,
        base_monthly: Some(3182.8),
        delta: Some(1591.4),
        by_cost_center: vec![
            CostCenterCost {
                cost_center: Some("CC-1042".into()),
                monthly: 4774.2,
                base_monthly: Some(3182.8),
                delta: Some(1591.4),
            },
            CostCenterCost { cost_center: None, monthly: 0.0, base_monthly: Some(0.0), delta: Some(0.0) },
        ],
        workloads: 2,
        unpriced: vec![Unpriced {
            path: "manifests/train.yaml".into(),
            line: 1,
            object: "Job/ml/train".into(),
            reason: "no price for nvidia-b200 in eu-west-1".into(),
        }],
        billing_as_of: Some("2024-04-29".into()),
        budget_findings: vec![BudgetFinding {
            budget: "serving".into(),
            path: "budgets/serving.yaml".into(),
            line: 1,
            action: EnforcementAction::Deny,
            period: budget.period.clone(),
            amount: budget.amount,
            actual: budget.actual,
            forecast: budget.forecast,
            delta: budget.delta,
            projected: budget.projected,
            status: Some(FindingChange::New),
            message: budget.message("USD"),
        }],
        budgets: vec![budget],
        terraform: Vec::new(),
    };
    let estate = |commit: &str| EstateRef {
        name: Some("acme-ai-platform".into()),
        origin: Origin::Git { repository: ".".into(), rev: commit.into(), commit: commit.repeat(40 / commit.len()) },
    };
    assay_verdict::verdict(VerdictInput {
        estate: estate("b"),
        head: Evaluated { objects: &objects, evaluations: &head, subjects: &[] },
        policies: 5,
        base: Some((estate("a"), Evaluated { objects: &objects, evaluations: &base, subjects: &[] })),
        changes: vec![
            FileChange { path: "manifests/serve.yaml".into(), kind: FileChangeKind::Modified },
            FileChange { path: "manifests/train.yaml".into(), kind: FileChangeKind::Added },
        ],
        commits: vec![
            CommitCheck {
                commit: "b".repeat(40),
                summary: "serve the new model".into(),
                trusted: false,
                detail: "not signed".into(),
            },
            CommitCheck {
                commit: "c".repeat(40),
                summary: "train on the new data".into(),
                trusted: true,
                detail: "signed by alice@example.com".into(),
            },
        ],
        diagnostics: vec![
            Diagnostic::warning("budgets/serving.yaml", "budget serving: alert at 120% is above the amount")
                .at(7, Some(3)),
        ],
        cost: Some(cost),
    })
}

#[test]
fn table() {
    expect_file!["snapshots/verdict.txt"].assert_eq(&render(&verdict(), Format::Table));
}

#[test]
fn markdown() {
    expect_file!["snapshots/verdict.md"].assert_eq(&render(&verdict(), Format::Markdown));
}

#[test]
fn junit() {
    expect_file!["snapshots/verdict.junit.xml"].assert_eq(&render(&verdict(), Format::Junit));
}

#[test]
fn sarif() {
    // Paths in SARIF are resolved from the repository root: the estate sits in `platform/`.
    expect_file!["snapshots/verdict.sarif.json"].assert_eq(&render_with(&verdict(), Format::Sarif, "platform"));
}

#[test]
fn json() {
    expect_file!["snapshots/verdict.json"].assert_eq(&render(&verdict(), Format::Json));
}
