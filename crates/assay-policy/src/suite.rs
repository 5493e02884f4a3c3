//! Gatekeeper test suites (`kind: Suite`, gator's format), run as `gator verify` runs them.
//!
//! A suite names a template, a constraint and cases; each case reviews one object (or an
//! `AdmissionReview`) with optional inventory, and asserts the number of violations (`yes`,
//! `no` or a count), optionally only those whose message matches a regular expression.
//! Files are read through a caller-supplied function: this crate does not touch the disk.

use std::time::{Duration, Instant};

use assay_estate::manifest::parse_objects;
use assay_estate::{Diagnostic, Object};
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::gatekeeper::{Constraint, Template};
use crate::{rego, review};

/// A suite file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SuiteFile {
    kind: String,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default)]
    tests: Vec<SuiteTest>,
}

#[derive(Debug, Clone, Deserialize)]
struct SuiteTest {
    #[serde(default)]
    name: String,
    #[serde(default)]
    template: String,
    #[serde(default)]
    constraint: String,
    #[serde(default)]
    cases: Vec<SuiteCase>,
    #[serde(default)]
    skip: bool,
}

#[derive(Debug, Clone, Deserialize)]
struct SuiteCase {
    #[serde(default)]
    name: String,
    #[serde(default)]
    object: String,
    #[serde(default)]
    inventory: Vec<String>,
    #[serde(default)]
    assertions: Vec<Assertion>,
    #[serde(default)]
    skip: bool,
}

/// `violations: yes | no | N` and an optional `message` regular expression.
#[derive(Debug, Clone, Deserialize)]
struct Assertion {
    #[serde(default)]
    violations: Option<Value>,
    #[serde(default)]
    message: Option<String>,
}

/// How one case ended.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// Why it failed; `None` when it passed or was skipped.
    pub failure: Option<String>,
    /// Whether it was skipped.
    pub skipped: bool,
    /// How long it took.
    pub duration: Duration,
}

/// How one test (a template and constraint with its cases) ended.
#[derive(Debug, Clone, Serialize)]
pub struct TestResult {
    /// The test's name.
    pub name: String,
    /// An error that stopped every case (a template that does not compile).
    pub error: Option<String>,
    /// Whether it was skipped.
    pub skipped: bool,
    /// Its cases.
    pub cases: Vec<CaseResult>,
    /// How long it took.
    pub duration: Duration,
}

impl TestResult {
    /// Whether the test failed: an error, or a failing case.
    pub fn failed(&self) -> bool {
        self.error.is_some() || self.cases.iter().any(|c| c.failure.is_some())
    }
}

/// How a suite ended.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteResult {
    /// Path of the suite file.
    pub path: String,
    /// `metadata.name` of the suite, or its directory's name.
    pub name: String,
    /// Why the suite could not run at all.
    pub error: Option<String>,
    /// Its tests.
    pub tests: Vec<TestResult>,
    /// How long it took.
    pub duration: Duration,
}

impl SuiteResult {
    /// Whether anything in the suite failed.
    pub fn failed(&self) -> bool {
        self.error.is_some() || self.tests.iter().any(TestResult::failed)
    }
}

/// Whether a YAML text is a gator suite (`kind: Suite`).
pub fn is_suite(text: &str) -> bool {
    yaml_serde::from_str::<SuiteFile>(text).is_ok_and(|s| s.kind == "Suite")
}

fn join(dir: &str, rel: &str) -> String {
    if rel.starts_with('/') || dir.is_empty() { rel.to_string() } else { format!("{dir}/{rel}") }
}

/// Reads the objects in a file through `read`.
fn objects(path: &str, read: &mut dyn FnMut(&str) -> Result<String, String>) -> Result<Vec<Object>, String> {
    let text = read(path)?;
    let (objects, diags) = parse_objects(path, &text);
    if let Some(d) = diags.iter().find(|d| d.severity == assay_estate::Severity::Error) {
        return Err(d.to_string());
    }
    Ok(objects)
}

/// Runs a suite. `path` is the suite file (paths in it are relative to its directory); `read`
/// returns a file's text.
pub fn run(path: &str, text: &str, read: &mut dyn FnMut(&str) -> Result<String, String>) -> SuiteResult {
    let started = Instant::now();
    let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let suite: SuiteFile = match yaml_serde::from_str(text) {
        Ok(s) => s,
        Err(e) => {
            return SuiteResult {
                path: path.into(),
                name: dir.rsplit('/').next().unwrap_or(dir).to_string(),
                error: Some(format!("invalid suite: {e}")),
                tests: Vec::new(),
                duration: started.elapsed(),
            };
        }
    };
    let name = suite
        .metadata
        .as_ref()
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| dir.rsplit('/').next().unwrap_or(dir).to_string());
    let tests = suite.tests.iter().map(|t| run_test(dir, t, read)).collect();
    SuiteResult { path: path.into(), name, error: None, tests, duration: started.elapsed() }
}

fn run_test(dir: &str, test: &SuiteTest, read: &mut dyn FnMut(&str) -> Result<String, String>) -> TestResult {
    let started = Instant::now();
    let mut result = TestResult {
        name: test.name.clone(),
        error: None,
        skipped: test.skip,
        cases: Vec::new(),
        duration: Duration::ZERO,
    };
    if test.skip {
        return result;
    }
    let setup = (|| -> Result<(Template, Constraint), String> {
        let template_path = join(dir, &test.template);
        let template_obj = objects(&template_path, read)?
            .into_iter()
            .next()
            .ok_or_else(|| format!("{template_path}: no ConstraintTemplate"))?;
        let mut diags: Vec<Diagnostic> = Vec::new();
        let template = Template::compile(&template_obj, &regorus::Value::new_object(), &mut diags)
            .ok_or_else(|| diags.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))?;
        let constraint_path = join(dir, &test.constraint);
        let constraint_obj = objects(&constraint_path, read)?
            .into_iter()
            .next()
            .ok_or_else(|| format!("{constraint_path}: no constraint"))?;
        let constraint = Constraint::parse(&constraint_obj, &mut diags)
            .ok_or_else(|| diags.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))?;
        if constraint.kind != template.kind {
            return Err(format!("constraint kind {} does not match template kind {}", constraint.kind, template.kind));
        }
        let problems = template.check_parameters(&constraint.parameters);
        if !problems.is_empty() {
            return Err(format!("{constraint_path}: invalid parameters: {}", problems.join("; ")));
        }
        Ok((template, constraint))
    })();
    match setup {
        Err(e) => {
            // Every case fails with the setup error, so that each is accounted for.
            for case in &test.cases {
                result.cases.push(CaseResult {
                    name: case.name.clone(),
                    failure: (!case.skip).then(|| e.clone()),
                    skipped: case.skip,
                    duration: Duration::ZERO,
                });
            }
            result.error = Some(e);
        }
        Ok((template, constraint)) => {
            for case in &test.cases {
                result.cases.push(run_case(dir, case, &template, &constraint, read));
            }
        }
    }
    result.duration = started.elapsed();
    result
}

fn run_case(
    dir: &str,
    case: &SuiteCase,
    template: &Template,
    constraint: &Constraint,
    read: &mut dyn FnMut(&str) -> Result<String, String>,
) -> CaseResult {
    let started = Instant::now();
    if case.skip {
        return CaseResult { name: case.name.clone(), failure: None, skipped: true, duration: Duration::ZERO };
    }
    let failure = (|| -> Result<(), String> {
        let object_path = join(dir, &case.object);
        let mut found = objects(&object_path, read)?;
        if found.len() != 1 {
            return Err(format!("{object_path}: expected exactly one object, found {}", found.len()));
        }
        let object = found.remove(0).value;
        let request = if object.get("kind").and_then(Value::as_str) == Some("AdmissionReview") {
            review::complete_request(object.get("request").cloned().unwrap_or(Value::Null))
        } else {
            review::create_request(&object)
        };
        let mut inventory_objects = Vec::new();
        for inv in &case.inventory {
            inventory_objects.extend(objects(&join(dir, inv), read)?.into_iter().map(|o| o.value));
        }
        let template = if inventory_objects.is_empty() {
            template.clone()
        } else {
            template.with_inventory(&review::inventory(inventory_objects.iter()))
        };
        let reviewed = review::reviewed_object(&request);
        let ns_name = reviewed.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("");
        let namespace = inventory_objects.iter().find(|o| {
            o.get("kind").and_then(Value::as_str) == Some("Namespace")
                && o.pointer("/metadata/name").and_then(Value::as_str) == Some(ns_name)
        });
        let violations = if constraint.matcher.matches(&reviewed, namespace) {
            template
                .violations(&rego::to_rego(&request), &constraint.parameters_rego)
                .map_err(|e| format!("evaluation error: {e:#}"))?
        } else {
            Vec::new()
        };
        for assertion in &case.assertions {
            check_assertion(assertion, &violations)?;
        }
        Ok(())
    })()
    .err();
    CaseResult { name: case.name.clone(), failure, skipped: false, duration: started.elapsed() }
}

fn check_assertion(assertion: &Assertion, violations: &[(String, Option<Value>)]) -> Result<(), String> {
    let (matching, about) = match &assertion.message {
        None => (violations.len(), String::new()),
        Some(pattern) => {
            let re = Regex::new(pattern).map_err(|e| format!("invalid message regex {pattern:?}: {e}"))?;
            (violations.iter().filter(|(m, _)| re.is_match(m)).count(), format!(" matching {pattern:?}"))
        }
    };
    let messages = || violations.iter().map(|(m, _)| format!("\n    {m}")).collect::<String>();
    match assertion.violations.as_ref().unwrap_or(&Value::String("yes".into())) {
        Value::String(s) if s == "yes" => {
            if matching == 0 {
                return Err(format!("got 0 violations{about} but want at least 1{}", messages()));
            }
        }
        Value::String(s) if s == "no" => {
            if matching != 0 {
                return Err(format!("got {matching} violations{about} but want none:{}", messages()));
            }
        }
        Value::Number(n) => {
            let want = n.as_u64().ok_or_else(|| format!("invalid violations count {n}"))? as usize;
            if matching != want {
                return Err(format!("got {matching} violations{about} but want exactly {want}:{}", messages()));
            }
        }
        Value::Bool(b) => {
            // YAML 1.1 readers turn yes/no into booleans; accept them as gator does.
            if *b && matching == 0 {
                return Err(format!("got 0 violations{about} but want at least 1"));
            }
            if !*b && matching != 0 {
                return Err(format!("got {matching} violations{about} but want none:{}", messages()));
            }
        }
        other => {
            return Err(format!("invalid assertion violations: {other}; want yes, no or a number"));
        }
    }
    Ok(())
}
