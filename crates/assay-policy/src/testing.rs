//! Rego unit tests, run as `opa test` runs them: every rule whose name starts with `test_` is a
//! test; it passes when it is defined and not `false`, fails otherwise, and errors when
//! evaluation fails. Rules starting with `todo_test_` are skipped.

use std::time::{Duration, Instant};

use assay_estate::Diagnostic;
use serde::Serialize;
use serde_json::Value;

use crate::rego::{self, Module};

/// How one test ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "error", rename_all = "lowercase")]
pub enum Outcome {
    /// Defined and not false.
    Pass,
    /// Undefined or false.
    Fail,
    /// Evaluation failed.
    Error(String),
    /// A `todo_test_` rule.
    Skip,
}

/// One test's result.
#[derive(Debug, Clone, Serialize)]
pub struct TestResult {
    /// The test's rule path, such as `data.k8s.limits_test.test_denies`.
    pub name: String,
    /// The file that declares its package.
    pub file: String,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// How long it took.
    pub duration: Duration,
    /// What `print` wrote during the test.
    pub prints: Vec<String>,
}

/// Compiles all modules (policies and tests together) with `data`, then runs every test rule,
/// in path order. Modules that do not compile are diagnostics; their tests do not run.
pub fn run(modules: &[Module], data: &Value, diags: &mut Vec<Diagnostic>) -> Vec<TestResult> {
    let compiled = rego::compile(modules, &rego::to_rego(data), diags);
    let files = crate::package_files(modules);
    let mut results = Vec::new();
    for path in &compiled.rules {
        let Some((package, name)) = path.rsplit_once('.') else {
            continue;
        };
        let skip = name.starts_with("todo_test_");
        if !name.starts_with("test_") && !skip {
            continue;
        }
        let file = files.get(package.strip_prefix("data.").unwrap_or(package)).cloned().unwrap_or_default();
        if skip {
            results.push(TestResult {
                name: path.clone(),
                file,
                outcome: Outcome::Skip,
                duration: Duration::ZERO,
                prints: Vec::new(),
            });
            continue;
        }
        let mut engine = compiled.engine.clone();
        engine.set_gather_prints(true);
        let started = Instant::now();
        let result = engine.eval_rule(path.clone());
        let duration = started.elapsed();
        let prints = engine.take_prints().unwrap_or_default();
        let outcome = match result {
            Ok(value) if value == regorus::Value::Undefined || value == regorus::Value::Bool(false) => Outcome::Fail,
            Ok(_) => Outcome::Pass,
            Err(e) => Outcome::Error(rego::diagnostic_from_error(&file, &e).message),
        };
        results.push(TestResult { name: path.clone(), file, outcome, duration, prints });
    }
    results
}

/// Variants of `value` with one value under `under` (a JSON pointer, `""` for all) changed: each
/// string gets a suffix, each number grows by 7, each boolean flips, in turn. Each comes with the
/// pointer it changed. For holding an evaluation to a reference over many near-identical inputs
/// (a memo to fresh evaluation, assay to OPA).
pub fn one_value_changes(value: &Value, under: &str) -> Vec<(String, Value)> {
    fn leaves(value: &Value, at: String, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    leaves(v, format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    leaves(v, format!("{at}/{i}"), out);
                }
            }
            Value::Null => {}
            _ => out.push(at),
        }
    }
    let mut pointers = Vec::new();
    if let Some(start) = value.pointer(under) {
        leaves(start, under.to_string(), &mut pointers);
    }
    pointers
        .into_iter()
        .map(|pointer| {
            let mut copy = value.clone();
            if let Some(leaf) = copy.pointer_mut(&pointer) {
                *leaf = match leaf.take() {
                    Value::String(s) => Value::String(format!("{s}-changed")),
                    Value::Number(n) => Value::from(n.as_f64().unwrap_or(0.0) + 7.0),
                    Value::Bool(b) => Value::Bool(!b),
                    other => other,
                };
            }
            (pointer, copy)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use assay_estate::settings::RegoVersion;

    #[test]
    fn pass_fail_error_and_prints() {
        let policy = Module {
            path: "p.rego".into(),
            text: "package p\n\ndeny contains \"no\" if input.bad\n".into(),
            version: RegoVersion::V1,
        };
        let tests = Module {
            path: "p_test.rego".into(),
            text: "package p_test\n\nimport data.p\n\ntest_denies if { p.deny[\"no\"] with input as {\"bad\": true} }\n\ntest_fails if { print(\"looking\", 1); count(p.deny) == 1 }\n\ntest_errors if { x := 1 / 0; x > 0 }\n\ntodo_test_later if false\n".into(),
            version: RegoVersion::V1,
        };
        let mut diags = Vec::new();
        let results = run(&[policy, tests], &serde_json::json!({}), &mut diags);
        assert!(diags.is_empty(), "{diags:?}");
        let outcomes: Vec<(&str, &Outcome)> = results.iter().map(|r| (r.name.as_str(), &r.outcome)).collect();
        assert_eq!(outcomes[0], ("data.p_test.test_denies", &Outcome::Pass));
        assert_eq!(outcomes[1].0, "data.p_test.test_errors");
        assert!(matches!(outcomes[1].1, Outcome::Error(_) | Outcome::Fail), "{outcomes:?}");
        assert_eq!(outcomes[2], ("data.p_test.test_fails", &Outcome::Fail));
        assert_eq!(outcomes[3], ("data.p_test.todo_test_later", &Outcome::Skip));
        assert_eq!(results[2].file, "p_test.rego");
        assert_eq!(results[2].prints.len(), 1);
        assert!(results[2].prints[0].contains("looking 1"), "{:?}", results[2].prints);
    }
}
