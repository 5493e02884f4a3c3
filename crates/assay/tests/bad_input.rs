//! Bad input: a clear message naming the path or name, exit code 2, no panic, and the rest of
//! the estate still checked.

mod common;

use common::{DEPLOYMENT_OK, TEAM_POLICY, assay, stderr, stdout};

fn estate(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, text) in files {
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        std::fs::write(full, text).expect("write");
    }
    dir
}

#[test]
fn broken_yaml_is_reported_with_line_and_the_rest_is_checked() {
    let dir = estate(&[
        ("policies/team.rego", TEAM_POLICY),
        ("manifests/broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [oops\n"),
        ("manifests/web.yaml", &DEPLOYMENT_OK.replace("  labels: {team: a}\n", "")),
    ]);
    let out = assay(dir.path(), &["check", "."]);
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    assert!(text.contains("manifests/broken.yaml:5:1: error: invalid YAML"), "{text}");
    assert!(text.contains("Deployment has no team label"), "the good file is still checked: {text}");
    assert!(!stderr(&out).contains("panicked"));
}

#[test]
fn broken_rego_is_reported_with_file_and_line() {
    let dir = estate(&[
        ("policies/team.rego", TEAM_POLICY),
        ("policies/broken.rego", "package broken\n\ndeny contains msg if {\n  msg := \n}\n"),
        ("manifests/web.yaml", &DEPLOYMENT_OK.replace("  labels: {team: a}\n", "")),
    ]);
    let out = assay(dir.path(), &["check", ".", "--format", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let d = &v["diagnostics"][0];
    assert_eq!(d["path"], "policies/broken.rego");
    assert!(d["line"].as_u64().is_some_and(|l| l >= 4), "{d}");
    assert_eq!(v["summary"]["denied"], 1, "the other policy still applies");
}

#[test]
fn rego_runtime_error_is_an_error_not_a_pass() {
    let dir = estate(&[
        (
            "policies/bad.rego",
            "package bad\n\ndeny contains msg if {\n  msg := no_such_function(input.request.name)\n}\n",
        ),
        ("manifests/web.yaml", DEPLOYMENT_OK),
    ]);
    let out = assay(dir.path(), &["check", "."]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stdout(&out).contains("policies/bad.rego: error: data.bad.deny failed to evaluate on 1 object(s)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn missing_directory_exits_2_naming_it() {
    let out = assay(std::path::Path::new("/"), &["check", "/no/such/estate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/no/such/estate"), "{}", stderr(&out));
}

#[test]
fn misspelled_setting_names_key_file_and_line() {
    let dir = estate(&[("assay.yaml", "name: x\nrequire_signd: true\n"), ("manifests/web.yaml", DEPLOYMENT_OK)]);
    let out = assay(dir.path(), &["check", "."]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stdout(&out).contains("assay.yaml:2:1: error: invalid settings: unknown field `require_signd`"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn constraint_without_template_is_reported() {
    let constraint = "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: NoSuchTemplate\nmetadata:\n  name: orphan\n";
    let dir = estate(&[("constraints/orphan.yaml", constraint), ("manifests/web.yaml", DEPLOYMENT_OK)]);
    let out = assay(dir.path(), &["check", "."]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stdout(&out).contains(
            "constraints/orphan.yaml:1: error: constraint NoSuchTemplate/orphan has no usable ConstraintTemplate"
        ),
        "{}",
        stdout(&out)
    );
}

#[test]
fn policy_test_reports_failures_and_exits_1() {
    let dir = estate(&[
        ("p.rego", TEAM_POLICY),
        (
            "p_test.rego",
            "package k8s.team_test\n\nimport data.k8s.team\n\ntest_ok if { count(team.deny) == 0 with input as {\"request\": {\"kind\": {\"kind\": \"Pod\"}}} }\n\ntest_wrong if {\n  print(\"deny is\", team.deny)\n  count(team.deny) == 1 with input as {\"request\": {\"kind\": {\"kind\": \"Pod\"}}}\n}\n",
        ),
    ]);
    let out = assay(dir.path(), &["policy", "test", ".", "-v"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("data.k8s.team_test.test_wrong: FAIL"), "{text}");
    assert!(text.contains("deny is"), "print output of the failing test is shown with -v: {text}");
    assert!(text.ends_with("1 passed, 1 failed\n"), "{text}");
}

#[test]
fn policy_verify_reports_a_failing_case_and_exits_1() {
    let template = "apiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\nmetadata: {name: denyall}\nspec:\n  crd: {spec: {names: {kind: DenyAll}}}\n  targets:\n    - target: admission.k8s.gatekeeper.sh\n      rego: |\n        package denyall\n        violation[{\"msg\": \"no\"}] { true }\n";
    let constraint = "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: DenyAll\nmetadata: {name: all}\n";
    let suite = "kind: Suite\napiVersion: test.gatekeeper.sh/v1alpha1\nmetadata: {name: s}\ntests:\n- name: t\n  template: template.yaml\n  constraint: constraint.yaml\n  cases:\n  - name: wrong\n    object: pod.yaml\n    assertions:\n    - violations: no\n  - name: right\n    object: pod.yaml\n    assertions:\n    - violations: 1\n      message: ^no$\n";
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n";
    let dir = estate(&[
        ("s/suite.yaml", suite),
        ("s/template.yaml", template),
        ("s/constraint.yaml", constraint),
        ("s/pod.yaml", pod),
    ]);
    let out = assay(dir.path(), &["policy", "verify", "s"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("--- FAIL: t"), "{text}");
    assert!(text.contains("    --- FAIL: wrong"), "{text}");
    assert!(text.contains("got 1 violations but want none"), "{text}");
    assert!(text.ends_with("FAIL\n1 passed, 1 failed\n"), "{text}");

    // A known gap that fails is expected; one that passes is a failure.
    let gaps = dir.path().join("gaps.txt");
    std::fs::write(&gaps, "s/t/wrong  # a gap\n").expect("write");
    let out = assay(dir.path(), &["policy", "verify", "s", "--expect-fail", gaps.to_str().unwrap_or("")]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    std::fs::write(&gaps, "s/t/right  # not a gap\n").expect("write");
    let out = assay(dir.path(), &["policy", "verify", "s", "--expect-fail", gaps.to_str().unwrap_or("")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("XPASS: right"), "{}", stdout(&out));
}

#[test]
fn constraint_parameters_are_checked_against_the_template_schema() {
    let root = common::repo_root().join("examples/estate/constraints/required-labels-template.yaml");
    let template = std::fs::read_to_string(root).expect("example template");
    let constraint = "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: AssayRequiredLabels\nmetadata:\n  name: typo\nspec:\n  parameters:\n    labels: owner\n";
    let dir = estate(&[
        ("constraints/template.yaml", &template),
        ("constraints/typo.yaml", constraint),
        ("manifests/web.yaml", DEPLOYMENT_OK),
    ]);
    let out = assay(dir.path(), &["check", "."]);
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    assert!(
        text.contains("constraints/typo.yaml:1: error: constraint AssayRequiredLabels/typo: spec.parameters.labels: \"owner\" is not of type \"array\"; constraint not enforced"),
        "{text}"
    );
}

#[test]
fn budget_with_a_typo_names_the_key() {
    let budget = "apiVersion: assay.dev/v1alpha1\nkind: Budget\nmetadata: {name: b}\nspec:\n  amount: 10\n  period: monthly\n  scope: {servces: [x]}\n";
    let dir = estate(&[("budgets/b.yaml", budget), ("manifests/web.yaml", DEPLOYMENT_OK)]);
    let out = assay(dir.path(), &["check", "."]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stdout(&out).contains("budgets/b.yaml:1: error: Budget b: spec.scope.servces: unknown field `servces`"),
        "{}",
        stdout(&out)
    );
}
