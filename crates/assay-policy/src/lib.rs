//! Policies: Rego rules and Gatekeeper constraints compiled into an immutable [`PolicySet`]
//! that many threads share, and evaluated against objects presented as Kubernetes admission
//! requests.
//!
//! Rules named `deny`, `violation`, `warn`, `deny_*` and `warn_*` (as conftest reads them) in any
//! package under `policies/` produce findings, as do Gatekeeper constraints under `constraints/`.
//! Compile errors are diagnostics with file and line; the policies that compile still apply.
//!
//! This crate must not know about HTTP or files: sources arrive as values.

pub mod events;
pub mod gatekeeper;
pub mod mask;
pub mod memo;
mod pool;
pub mod query;
pub mod rego;
pub mod review;
pub mod rewrite;
pub mod suite;
pub mod terraform;
pub mod testing;

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use assay_estate::settings::EnforcementAction;
use assay_estate::{Diagnostic, Estate, Object};
use rayon::prelude::*;
use regex::Regex;
use serde::Serialize;
use serde_json::Value;

use gatekeeper::{Constraint, Template};
use rego::Module;

/// Errors of evaluating policies. Problems in policy files are not errors: they are diagnostics.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A rule, constraint or query failed to evaluate.
    #[error("{0}")]
    Evaluation(String),
    /// A syntax tree from the Rego engine could not be read.
    #[error("reading the syntax tree: {0}")]
    SyntaxTree(String),
}

impl Error {
    /// An evaluation error from the Rego engine.
    pub(crate) fn evaluation(e: impl std::fmt::Display) -> Error {
        Error::Evaluation(format!("{e:#}"))
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

static IDENTIFIER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*$").unwrap_or_else(|_| unreachable!("static regex")));

static RULE_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(deny|violation|warn)(_[A-Za-z0-9_]+)?$").unwrap_or_else(|_| unreachable!("static regex"))
});

/// Where a finding came from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum PolicyRef {
    /// A Rego rule under `policies/`.
    Rule {
        /// Full rule path, such as `data.k8s.limits.deny`.
        rule: String,
        /// File that declares the rule's package.
        path: String,
    },
    /// A Gatekeeper constraint.
    Constraint {
        /// The constraint kind (its template).
        kind: String,
        /// The constraint's name.
        name: String,
        /// File it came from.
        path: String,
        /// Line where its document starts.
        line: u32,
    },
}

impl PolicyRef {
    /// A short identifier: the rule path, or `Kind/name` of a constraint.
    pub fn id(&self) -> String {
        match self {
            Self::Rule { rule, .. } => rule.clone(),
            Self::Constraint { kind, name, .. } => format!("{kind}/{name}"),
        }
    }
}

/// One thing a policy said about one object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The rule or constraint.
    pub policy: PolicyRef,
    /// What it does: deny, warn or dryrun.
    pub action: EnforcementAction,
    /// The message the policy produced.
    pub message: String,
    /// Structured details, when the policy produced an object with more than `msg`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

/// The result of evaluating every policy for one request.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Evaluation {
    /// What the policies said.
    pub findings: Vec<Finding>,
    /// Rules or constraints that failed to evaluate (a Rego runtime error), with why.
    pub errors: Vec<(PolicyRef, String)>,
}

/// Messages out of a rule's value: a set or array of strings or `{msg, details}` objects, a
/// single string, or `true`.
pub(crate) fn messages(result: &regorus::Value) -> Vec<(String, Option<Value>)> {
    let Some(json) = rego::to_json(result) else {
        return Vec::new();
    };
    let one = |v: &Value| -> Option<(String, Option<Value>)> {
        match v {
            Value::String(s) => Some((s.clone(), None)),
            Value::Object(map) => {
                let msg = map.get("msg").map(|m| m.as_str().map(str::to_string).unwrap_or_else(|| m.to_string()));
                let details = map.get("details").cloned().or_else(|| {
                    let rest: serde_json::Map<String, Value> =
                        map.iter().filter(|(k, _)| *k != "msg").map(|(k, v)| (k.clone(), v.clone())).collect();
                    (!rest.is_empty()).then_some(Value::Object(rest))
                });
                Some((msg.unwrap_or_else(|| v.to_string()), details))
            }
            Value::Bool(true) => Some((String::new(), None)),
            Value::Bool(false) | Value::Null => None,
            other => Some((other.to_string(), None)),
        }
    };
    match &json {
        Value::Array(items) => items.iter().filter_map(one).collect(),
        other => one(other).into_iter().collect(),
    }
}

/// A deny/warn rule found in the compiled policies.
#[derive(Debug, Clone)]
struct Rule {
    reference: PolicyRef,
    path: String,
    action: EnforcementAction,
}

/// Everything a [`PolicySet`] is compiled from, as values.
#[derive(Debug, Clone, Default)]
pub struct PolicySources<'a> {
    /// Rego modules (test files excluded).
    pub modules: Vec<Module>,
    /// The `data` document.
    pub data: Value,
    /// ConstraintTemplate and Constraint objects.
    pub constraints: Vec<Object>,
    /// Objects that make up `data.inventory` and whose Namespaces serve `namespaceSelector`.
    pub inventory: &'a [Object],
    /// What `deny` and `violation` rules do.
    pub rule_action: EnforcementAction,
    /// Which packages judge Terraform plans and resource changes instead of manifests.
    pub terraform: assay_estate::settings::Terraform,
}

/// Compiled policies, immutable and shared by every thread and request.
#[derive(Debug, Clone)]
pub struct PolicySet {
    engine: Option<pool::Pool>,
    /// The data the rules' engine holds, for programs compiled from it.
    data: regorus::Value,
    /// Every rule's path (`data.authz.residency.allow`).
    rule_paths: std::collections::BTreeSet<String>,
    /// Packages whose rules stay on the interpreter: they use `else`, or read a package that
    /// does ([`pool::uses_else`]).
    interpreted: std::collections::HashSet<String>,
    /// `data.<path>` rules compiled for the RVM on first use, by path (`None`: the RVM compiler
    /// does not take it, so the interpreter answers).
    programs: std::sync::Arc<std::sync::RwLock<HashMap<String, Option<std::sync::Arc<pool::Programs>>>>>,
    rules: Vec<Rule>,
    /// Rules of the Terraform namespaces: `input` is a whole plan.
    plan_rules: Vec<Rule>,
    /// Rules of the per-resource Terraform namespaces: `input` is one resource change.
    resource_rules: Vec<Rule>,
    templates: BTreeMap<String, Template>,
    constraints: Vec<Constraint>,
    namespaces: HashMap<String, Value>,
    /// Whether constraints answer from their templates' memos ([`memo`]).
    memoize: bool,
    /// Problems found while compiling: each names its file and, where known, line.
    pub diagnostics: Vec<Diagnostic>,
}

/// Limits how long any one policy evaluation in this process may take (`None`: no limit). An
/// evaluation past the limit fails with an evaluation error, which callers answer as they answer
/// any evaluation failure (an admission server, per its failure mode).
pub fn set_evaluation_time_limit(limit: Option<std::time::Duration>) {
    let config = limit.map(|limit| regorus::utils::limits::ExecutionTimerConfig {
        limit,
        // Looking at the clock every few hundred steps costs nothing measurable.
        check_interval: std::num::NonZeroU32::new(256).unwrap_or(std::num::NonZeroU32::MIN),
    });
    regorus::utils::limits::set_fallback_execution_timer_config(config);
}

/// Packages that are not about manifests: event policies (`assay.events`, evaluated by
/// `assay serve` on each CloudEvent) and OPA's `system` namespace (`system.log.mask`).
pub fn is_runtime_package(package: &str) -> bool {
    let under = |root: &str| package == root || package.strip_prefix(root).is_some_and(|rest| rest.starts_with('.'));
    under("assay.events") || under("system")
}

/// Whether a path is a Rego test file.
pub fn is_test_file(path: &str) -> bool {
    path.ends_with("_test.rego")
}

/// Merges `value` into `data` at `prefix`, reporting conflicts on `path`.
pub fn merge_data(data: &mut Value, prefix: &[String], value: Value, path: &str, diags: &mut Vec<Diagnostic>) {
    let mut target = data;
    for key in prefix {
        if !target.is_object() {
            diags.push(Diagnostic::error(
                path,
                format!("data at {} conflicts with a value from another file", prefix.join(".")),
            ));
            return;
        }
        target = target
            .as_object_mut()
            .map(|m| m.entry(key.clone()).or_insert_with(|| Value::Object(Default::default())))
            .unwrap_or_else(|| unreachable!("checked object"));
    }
    merge_values(target, value, &prefix.join("."), path, diags);
}

fn merge_values(target: &mut Value, value: Value, at: &str, path: &str, diags: &mut Vec<Diagnostic>) {
    match (target, value) {
        (Value::Object(t), Value::Object(v)) => {
            for (k, v) in v {
                let at = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
                match t.get_mut(&k) {
                    Some(existing) => merge_values(existing, v, &at, path, diags),
                    None => {
                        t.insert(k, v);
                    }
                }
            }
        }
        (t, v) if *t == v => {}
        _ => diags.push(Diagnostic::error(path, format!("data.{at} is already defined by another file"))),
    }
}

impl<'a> PolicySources<'a> {
    /// The policy sources of an estate: `policies/` without tests, their data, the constraints,
    /// and the manifests as inventory.
    pub fn from_estate(estate: &'a Estate, diags: &mut Vec<Diagnostic>) -> PolicySources<'a> {
        let modules = estate
            .policies
            .iter()
            .filter(|p| !is_test_file(&p.path))
            .map(|p| Module {
                path: p.path.clone(),
                text: p.text.clone(),
                version: estate.settings.rego_version_of(&p.path, &p.text),
            })
            .collect();
        let mut data = Value::Object(Default::default());
        for d in &estate.policy_data {
            merge_data(&mut data, &d.prefix, d.value.clone(), &d.path, diags);
        }
        PolicySources {
            modules,
            data,
            constraints: estate.constraints.clone(),
            inventory: &estate.manifests,
            rule_action: estate.settings.enforcement_action,
            terraform: estate.settings.terraform.clone(),
        }
    }
}

impl PolicySet {
    /// Compiles an estate's policies.
    pub fn from_estate(estate: &Estate) -> PolicySet {
        let mut diags = Vec::new();
        let sources = PolicySources::from_estate(estate, &mut diags);
        let mut set = PolicySet::compile(&sources);
        diags.append(&mut set.diagnostics);
        set.diagnostics = diags;
        set
    }

    /// Compiles policy sources. Never fails: what does not compile is a diagnostic.
    pub fn compile(sources: &PolicySources<'_>) -> PolicySet {
        let _span = tracing::info_span!("compile_policies", modules = sources.modules.len()).entered();
        let mut diagnostics = Vec::new();
        // data.inventory is built once, and only when a policy mentions it: on a large estate
        // it is the largest value policies see.
        let templates_text: Vec<String> =
            sources.constraints.iter().filter(|o| gatekeeper::is_template(o)).map(|o| o.value.to_string()).collect();
        let rules_want_inventory = sources.modules.iter().any(|m| m.text.contains("inventory"));
        let inventory = if rules_want_inventory || templates_text.iter().any(|t| t.contains("inventory")) {
            rego::to_rego(&review::inventory(sources.inventory.iter().map(|o| &o.value)))
        } else {
            regorus::Value::new_object()
        };
        let mut data = rego::to_rego(&sources.data);
        if rules_want_inventory && let Ok(map) = data.as_object_mut() {
            let key = regorus::Value::from("inventory");
            if !map.contains_key(&key) {
                map.insert(key, inventory.clone());
            }
        }

        let mut plan_rules = Vec::new();
        let mut resource_rules = Vec::new();
        let (engine, rules, rule_paths) = if sources.modules.is_empty() {
            (None, Vec::new(), Default::default())
        } else {
            let compiled = rego::compile(&sources.modules, &data, &mut diagnostics);
            let package_files = package_files(&sources.modules);
            let mut rules = Vec::new();
            for path in &compiled.rules {
                let Some((package, name)) = path.rsplit_once('.') else { continue };
                if !RULE_NAME.is_match(name) {
                    continue;
                }
                let package = package.strip_prefix("data.").unwrap_or(package);
                if is_runtime_package(package) {
                    continue;
                }
                let Some(file) = package_files.get(package) else { continue };
                let action = if name.starts_with("warn") { EnforcementAction::Warn } else { sources.rule_action };
                let rule = Rule {
                    reference: PolicyRef::Rule { rule: path.clone(), path: file.clone() },
                    path: path.clone(),
                    action,
                };
                if sources.terraform.is_resource_package(package) {
                    resource_rules.push(rule);
                } else if sources.terraform.is_plan_package(package) {
                    plan_rules.push(rule);
                } else {
                    rules.push(rule);
                }
            }
            (Some(pool::Pool::new(compiled.engine)), rules, compiled.rules)
        };

        let mut templates = BTreeMap::new();
        for object in sources.constraints.iter().filter(|o| gatekeeper::is_template(o)) {
            if let Some(template) = Template::compile(object, &inventory, &mut diagnostics) {
                if let Some(previous) = templates.get(&template.kind) {
                    let previous: &Template = previous;
                    diagnostics.push(
                        Diagnostic::error(
                            &object.path,
                            format!("ConstraintTemplate for {} is also defined in {}", template.kind, previous.path),
                        )
                        .at(object.line, None),
                    );
                    continue;
                }
                templates.insert(template.kind.clone(), template);
            }
        }
        let mut constraints = Vec::new();
        for object in sources.constraints.iter().filter(|o| gatekeeper::is_constraint(o)) {
            if let Some(constraint) = Constraint::parse(object, &mut diagnostics) {
                if let Some(template) = templates.get(&constraint.kind) {
                    let problems = template.check_parameters(&constraint.parameters);
                    if !problems.is_empty() {
                        for problem in problems {
                            diagnostics.push(
                                Diagnostic::error(
                                    &object.path,
                                    format!(
                                        "constraint {}/{}: {problem}; constraint not enforced",
                                        constraint.kind, constraint.name
                                    ),
                                )
                                .at(object.line, None),
                            );
                        }
                        continue;
                    }
                }
                if !templates.contains_key(&constraint.kind) {
                    diagnostics.push(
                        Diagnostic::error(
                            &object.path,
                            format!(
                                "constraint {}/{} has no usable ConstraintTemplate for kind {}",
                                constraint.kind, constraint.name, constraint.kind
                            ),
                        )
                        .at(object.line, None),
                    );
                    continue;
                }
                constraints.push(constraint);
            }
        }
        let namespaces = sources
            .inventory
            .iter()
            .filter(|o| o.kind() == "Namespace" && o.group().is_empty())
            .map(|o| (o.name().to_string(), o.value.clone()))
            .collect();
        PolicySet {
            engine,
            data,
            rule_paths,
            programs: Default::default(),
            interpreted: pool::interpreted_packages(&sources.modules),
            rules,
            plan_rules,
            resource_rules,
            templates,
            constraints,
            namespaces,
            memoize: false,
            diagnostics,
        }
    }

    /// Answers constraints from memos keyed by what each template reads of the request
    /// ([`memo`]), each keeping at most `capacity` answers; `0` evaluates every time. A server
    /// sees the same pod spec many times (the replicas of a Deployment).
    pub fn memoize(mut self, capacity: usize) -> PolicySet {
        self.memoize = capacity > 0;
        for template in self.templates.values() {
            template.memo_capacity(capacity);
        }
        self
    }

    /// Memo (hits, misses) over all templates so far.
    pub fn memo_counts(&self) -> (u64, u64) {
        self.templates.values().map(Template::memo_counts).fold((0, 0), |(h, m), (a, b)| (h + a, m + b))
    }

    /// Number of deny/warn rules and constraints that will be evaluated.
    pub fn len(&self) -> usize {
        self.rules.len() + self.constraints.len() + self.terraform_rules()
    }

    /// Whether there is nothing to evaluate.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Evaluates every rule and matching constraint for one AdmissionRequest.
    pub fn review(&self, request: &Value) -> Evaluation {
        self.review_with(request, None)
    }

    /// As [`PolicySet::review`], with more top-level input for Rego rules: each key of
    /// `extra` (an object, such as `{"cost": ...}`) becomes `input.<key>`.
    pub fn review_with(&self, request: &Value, extra: Option<&Value>) -> Evaluation {
        let mut evaluation = Evaluation::default();
        let request_rego = rego::to_rego(request);
        if let Some(pool) = &self.engine {
            let mut input = regorus::Value::new_object();
            if let Ok(map) = input.as_object_mut() {
                map.insert("apiVersion".into(), "admission.k8s.io/v1".into());
                map.insert("kind".into(), "AdmissionReview".into());
                map.insert("request".into(), request_rego.clone());
                for (key, value) in extra.and_then(Value::as_object).into_iter().flatten() {
                    map.insert(key.as_str().into(), rego::to_rego(value));
                }
            }
            self.run_rules(pool, &self.rules, input, &mut evaluation);
        }
        if !self.constraints.is_empty() {
            let object = review::reviewed_object(request);
            let ns_name = object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("");
            let namespace = self.namespaces.get(ns_name);
            for constraint in &self.constraints {
                if !constraint.matcher.matches(&object, namespace) {
                    continue;
                }
                let Some(template) = self.templates.get(&constraint.kind) else {
                    continue;
                };
                let reference = PolicyRef::Constraint {
                    kind: constraint.kind.clone(),
                    name: constraint.name.clone(),
                    path: constraint.path.clone(),
                    line: constraint.line,
                };
                let found = if self.memoize {
                    template.violations_memoized(&request_rego, &constraint.parameters_rego)
                } else {
                    template.violations(&request_rego, &constraint.parameters_rego).map(std::sync::Arc::new)
                };
                match found {
                    Ok(found) => evaluation.findings.extend(found.iter().map(|(message, details)| Finding {
                        policy: reference.clone(),
                        action: constraint.action,
                        message: message.clone(),
                        details: details.clone(),
                    })),
                    Err(e) => evaluation.errors.push((reference, rego::diagnostic_from_error("", &e).message)),
                }
            }
        }
        evaluation
    }

    /// Evaluates `rules` for one input, into `evaluation`: each rule on the RVM when it compiles
    /// there, the rest on one interpreter engine.
    fn run_rules(&self, pool: &pool::Pool, rules: &[Rule], input: regorus::Value, evaluation: &mut Evaluation) {
        let mut results: Vec<Option<anyhow::Result<regorus::Value>>> = rules
            .iter()
            .map(|rule| self.program_for(pool, &rule.path).and_then(|p| p.execute(input.clone()).ok()).map(Ok))
            .collect();
        if results.iter().any(Option::is_none) {
            pool.with(|engine| {
                engine.set_input(input);
                for (rule, result) in rules.iter().zip(results.iter_mut()) {
                    if result.is_none() {
                        *result = Some(engine.eval_rule(rule.path.clone()));
                    }
                }
            });
        }
        for (rule, result) in rules.iter().zip(results) {
            match result {
                Some(Ok(value)) => {
                    for (message, details) in messages(&value) {
                        let message = if message.is_empty() { format!("{} is true", rule.path) } else { message };
                        evaluation.findings.push(Finding {
                            policy: rule.reference.clone(),
                            action: rule.action,
                            message,
                            details,
                        });
                    }
                }
                Some(Err(e)) => {
                    evaluation.errors.push((rule.reference.clone(), rego::diagnostic_from_error("", &e).message));
                }
                None => {}
            }
        }
    }

    /// Number of rules that judge Terraform: whole plans and single resource changes.
    pub fn terraform_rules(&self) -> usize {
        self.plan_rules.len() + self.resource_rules.len()
    }

    /// Evaluates the whole-plan Terraform rules with `input` the plan document, as conftest does.
    pub fn evaluate_plan(&self, plan: &Value) -> Evaluation {
        let mut evaluation = Evaluation::default();
        if let Some(pool) = &self.engine
            && !self.plan_rules.is_empty()
        {
            self.run_rules(pool, &self.plan_rules, rego::to_rego(plan), &mut evaluation);
        }
        evaluation
    }

    /// Evaluates the per-resource Terraform rules for each resource change (an element of a
    /// plan's `resource_changes`), in parallel, in the changes' order.
    pub fn evaluate_resource_changes(&self, changes: &[&Value]) -> Vec<Evaluation> {
        let Some(pool) = &self.engine else {
            return vec![Evaluation::default(); changes.len()];
        };
        changes
            .par_iter()
            .map(|change| {
                let mut evaluation = Evaluation::default();
                if !self.resource_rules.is_empty() {
                    self.run_rules(pool, &self.resource_rules, rego::to_rego(change), &mut evaluation);
                }
                evaluation
            })
            .collect()
    }

    /// Evaluates every object as if it were being created, in parallel, in the objects' order.
    pub fn evaluate_objects(&self, objects: &[Object]) -> Vec<Evaluation> {
        objects.par_iter().map(|o| self.review(&review::create_request(&o.value))).collect()
    }

    /// As [`PolicySet::evaluate_objects`], with `extra(i)` as more input for object `i`.
    pub fn evaluate_objects_with(
        &self,
        objects: &[Object],
        extra: &(dyn Fn(usize) -> Option<Value> + Sync),
    ) -> Vec<Evaluation> {
        objects
            .par_iter()
            .enumerate()
            .map(|(i, o)| self.review_with(&review::create_request(&o.value), extra(i).as_ref()))
            .collect()
    }

    /// Evaluates the document `data.<path>` (a rule, or a whole package as an object) for an
    /// input, as OPA's data API does; `path` holds the segments (`["authz", "residency",
    /// "allow"]`), each quoted into the query so that no segment can change its meaning.
    /// `Ok(None)` when the document is undefined. Without an input, `input` is undefined.
    pub fn query(&self, path: &[&str], input: Option<&Value>) -> Result<Option<Value>> {
        let Some(pool) = &self.engine else {
            return Ok(None);
        };
        let input = match input {
            Some(input) => rego::to_rego(input),
            None => regorus::Value::Undefined,
        };
        if let Some(program) = self.program(pool, path)
            && let Ok(result) = program.execute(input.clone())
        {
            return Ok(rego::to_json(&result));
        }
        pool.with(|engine| {
            engine.set_input(input);
            let mut query = String::from("data");
            for segment in path {
                query.push('[');
                query.push_str(&Value::String((*segment).to_string()).to_string());
                query.push(']');
            }
            let results = engine.eval_query(query, false).map_err(Error::evaluation)?;
            Ok(results.result.first().and_then(|r| r.expressions.first()).and_then(|e| rego::to_json(&e.value)))
        })
    }

    /// The RVM program of the rule `data.<path>`, compiled on first use; `None` for a path
    /// that is not a rule (a package, a data document, a segment that is not an identifier) or
    /// that the RVM compiler does not take.
    fn program(&self, pool: &pool::Pool, path: &[&str]) -> Option<std::sync::Arc<pool::Programs>> {
        if !path.iter().all(|s| IDENTIFIER.is_match(s)) {
            return None;
        }
        self.program_for(pool, &format!("data.{}", path.join(".")))
    }

    /// The RVM program of the rule `entry` (`data.authz.residency.allow`), compiled on first use.
    fn program_for(&self, pool: &pool::Pool, entry: &str) -> Option<std::sync::Arc<pool::Programs>> {
        if let Some(known) = self.programs.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(entry) {
            return known.clone();
        }
        let package = entry.rsplit_once('.').map_or(entry, |(p, _)| p);
        let package = package.strip_prefix("data.").unwrap_or(package);
        let program = if self.rule_paths.contains(entry) && !self.interpreted.contains(package) {
            pool::Programs::compile(pool.compiled(), entry, self.data.clone()).map(std::sync::Arc::new)
        } else {
            None
        };
        let mut programs = self.programs.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        // The paths a client asks for are few; a client asking for many distinct ones only
        // fills the cache up to a bound.
        if programs.len() < 1024 {
            programs.insert(entry.to_string(), program.clone());
        }
        program
    }
}

/// The file that declares each package (the first one, for packages split across files).
fn package_files(modules: &[Module]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for m in modules {
        if let Some(package) = rego::package_of(&m.text) {
            out.entry(package).or_insert_with(|| m.path.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const AUTHZ: &str = r#"
package authz.residency
import rego.v1

default allow := false
allow if {
    input.action == "store"
    input.region in data.regions[input.data.classification]
}
reasons contains msg if {
    not allow
    msg := sprintf("%v may not be stored in %v", [input.data.classification, input.region])
}
"#;

    /// A function's `else` branch after a body that iterates over nothing: what conftest
    /// policies write to give a default (regorus's virtual machine answers it wrongly).
    #[test]
    fn else_branches_answer_as_opa_does() {
        let text = r#"
package terraform.keys
import rego.v1

key(address) := k if {
    some r in input.items
    r.address == address
    k := r.key
} else := "fallback"

deny contains msg if {
    some a in ["x", "y"]
    msg := sprintf("%s -> %s", [a, key(a)])
}
"#;
        assert!(pool::uses_else(text));
        assert!(!pool::uses_else("# or else\nallow if elsewhere"));
        let sources = PolicySources {
            modules: vec![Module {
                path: "keys.rego".into(),
                text: text.into(),
                version: assay_estate::settings::RegoVersion::V1,
            }],
            ..PolicySources::default()
        };
        let set = PolicySet::compile(&sources);
        assert!(set.diagnostics.is_empty(), "{:?}", set.diagnostics);
        let evaluation = set.evaluate_plan(&json!({"items": [{"address": "x", "key": "kx"}]}));
        let mut messages: Vec<&str> = evaluation.findings.iter().map(|f| f.message.as_str()).collect();
        messages.sort_unstable();
        assert_eq!(messages, ["x -> kx", "y -> fallback"]);
        // Only what uses `else`, or reads what does, leaves the virtual machine.
        let module = |path: &str, text: &str| Module {
            path: path.into(),
            text: text.into(),
            version: assay_estate::settings::RegoVersion::V1,
        };
        let modules = [
            module("keys.rego", text),
            module("a.rego", "package k8s.a\nimport rego.v1\ndeny contains \"x\" if input.x\n"),
            module("b.rego", "package k8s.b\nimport rego.v1\ndeny contains m if m := data.terraform.keys.key(\"x\")\n"),
        ];
        let interpreted = pool::interpreted_packages(&modules);
        assert_eq!(interpreted, ["terraform.keys".to_string(), "k8s.b".to_string()].into_iter().collect());
    }

    #[test]
    fn data_api_rules_on_the_virtual_machine_answer_as_the_interpreter() {
        let sources = PolicySources {
            modules: vec![Module {
                path: "authz.rego".into(),
                text: AUTHZ.into(),
                version: assay_estate::settings::RegoVersion::V1,
            }],
            data: json!({"regions": {"GDPR": ["eu-west-1"]}}),
            ..PolicySources::default()
        };
        let set = PolicySet::compile(&sources);
        assert!(set.diagnostics.is_empty(), "{:?}", set.diagnostics);
        for (region, allowed) in [("eu-west-1", true), ("us-east-1", false)] {
            let input = json!({"action": "store", "region": region, "data": {"classification": "GDPR"}});
            let allow = set.query(&["authz", "residency", "allow"], Some(&input)).expect("allow");
            let reasons = set.query(&["authz", "residency", "reasons"], Some(&input)).expect("reasons");
            // The whole package is not a rule: the interpreter answers it.
            let package = set.query(&["authz", "residency"], Some(&input)).expect("package").expect("defined");
            assert_eq!(allow, Some(json!(allowed)));
            assert_eq!(package["allow"], json!(allowed));
            assert_eq!(reasons.unwrap_or(json!([])), package["reasons"]);
        }
        let programs = set.programs.read().expect("cache");
        assert!(programs.get("data.authz.residency.allow").is_some_and(Option::is_some), "allow runs on the RVM");
        assert!(programs.get("data.authz.residency").is_some_and(Option::is_none), "a package is interpreted");
        drop(programs);
        assert_eq!(set.query(&["authz", "nothing"], None).expect("undefined"), None);
    }

    #[test]
    fn admission_rules_run_on_the_virtual_machine() {
        let deny = "package k8s\nimport rego.v1\ndeny contains msg if {\n  not input.request.object.metadata.labels.team\n  \
                    msg := sprintf(\"%v has no team label\", [input.request.object.metadata.name])\n}\n";
        let sources = PolicySources {
            modules: vec![Module {
                path: "k8s.rego".into(),
                text: deny.into(),
                version: assay_estate::settings::RegoVersion::V1,
            }],
            ..PolicySources::default()
        };
        let set = PolicySet::compile(&sources);
        let pod = |labels: Value| json!({"kind": {"kind": "Pod"}, "object": {"kind": "Pod", "metadata": {"name": "web", "labels": labels}}});
        let found = set.review(&pod(json!({})));
        assert_eq!(found.findings.iter().map(|f| f.message.as_str()).collect::<Vec<_>>(), ["web has no team label"]);
        assert!(set.review(&pod(json!({"team": "ml"}))).findings.is_empty());
        let programs = set.programs.read().expect("cache");
        assert!(programs.get("data.k8s.deny").is_some_and(Option::is_some), "deny runs on the RVM");
    }
}
