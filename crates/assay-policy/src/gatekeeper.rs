//! Gatekeeper ConstraintTemplates and Constraints, used unchanged.
//!
//! Each template compiles into its own engine (as Gatekeeper gives each template its own
//! namespace), with its `libs` and `data.inventory`. Constraints select objects with
//! `spec.match` exactly as Gatekeeper's matcher does, and pass `spec.parameters` as
//! `input.parameters` next to `input.review`.

use std::collections::BTreeMap;

use assay_estate::settings::{EnforcementAction, RegoVersion};
use assay_estate::{Diagnostic, Object};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::rego::{self, Module};

/// The Gatekeeper admission target; templates for other targets are ignored.
pub const ADMISSION_TARGET: &str = "admission.k8s.gatekeeper.sh";

/// Whether an object is a ConstraintTemplate.
pub fn is_template(object: &Object) -> bool {
    object.kind() == "ConstraintTemplate" && object.group() == "templates.gatekeeper.sh"
}

/// Whether an object is a Constraint.
pub fn is_constraint(object: &Object) -> bool {
    object.group() == "constraints.gatekeeper.sh"
}

/// A compiled ConstraintTemplate.
#[derive(Debug, Clone)]
pub struct Template {
    /// The constraint kind it defines (`spec.crd.spec.names.kind`).
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// File it came from.
    pub path: String,
    /// Line where its document starts.
    pub line: u32,
    /// The parameters schema (`spec.crd.spec.validation.openAPIV3Schema`), if any.
    pub parameters_schema: Option<Value>,
    validator: Option<std::sync::Arc<jsonschema::Validator>>,
    engine: crate::pool::Pool,
    entry: String,
    /// The `violation` rule on regorus's virtual machine, when it compiles there.
    program: Option<crate::pool::Programs>,
    /// What the template reads of `input`, when its answers can be memoized.
    reads: Option<std::sync::Arc<Vec<Vec<crate::memo::Segment>>>>,
    answers: Answers,
}

/// A template's violations: each `msg` and `details`.
pub type Violations = Vec<(String, Option<Value>)>;

/// Memoized answers of one template. A copy of a template (with other data) starts empty.
#[derive(Debug, Default)]
struct Answers(crate::memo::Cache<std::sync::Arc<Violations>>);

impl Clone for Answers {
    fn clone(&self) -> Self {
        Answers::default()
    }
}

impl Template {
    /// Compiles a ConstraintTemplate object. Returns `None`, with diagnostics, when it cannot be used.
    pub fn compile(object: &Object, inventory: &regorus::Value, diags: &mut Vec<Diagnostic>) -> Option<Template> {
        let at = |message: String| Diagnostic::error(&object.path, message).at(object.line, None);
        let v = &object.value;
        let Some(kind) = v.pointer("/spec/crd/spec/names/kind").and_then(Value::as_str).filter(|k| !k.is_empty())
        else {
            diags.push(at("ConstraintTemplate has no spec.crd.spec.names.kind".into()));
            return None;
        };
        let targets = v.pointer("/spec/targets").and_then(Value::as_array).cloned().unwrap_or_default();
        let Some(target) = targets.iter().find(|t| t.get("target").and_then(Value::as_str) == Some(ADMISSION_TARGET))
        else {
            diags.push(at(format!("ConstraintTemplate {kind} has no {ADMISSION_TARGET} target")));
            return None;
        };
        // Rego is either `rego` + `libs` on the target, or a `code` entry with engine Rego.
        let code_rego = target.get("code").and_then(Value::as_array).and_then(|code| {
            code.iter().find(|c| c.get("engine").and_then(Value::as_str) == Some("Rego")).and_then(|c| c.get("source"))
        });
        let (main, libs, version) = match (target.get("rego").and_then(Value::as_str), code_rego) {
            (Some(rego), _) => (rego.to_string(), string_list(target.get("libs")), RegoVersion::V0),
            (None, Some(source)) => {
                let version = match source.get("version").and_then(Value::as_str) {
                    Some("v1") => RegoVersion::V1,
                    _ => RegoVersion::V0,
                };
                let rego = source.get("rego").and_then(Value::as_str).unwrap_or("").to_string();
                (rego, string_list(source.get("libs")), version)
            }
            (None, None) => {
                diags.push(at(format!(
                    "ConstraintTemplate {kind} has no Rego source (only CEL, which assay does not evaluate); skipped"
                )));
                return None;
            }
        };
        let Some(package) = rego::package_of(&main) else {
            diags.push(at(format!("ConstraintTemplate {kind}: rego has no package")));
            return None;
        };
        let name = object.name().to_string();
        let mut modules = vec![Module { path: format!("{}#{kind}", object.path), text: main, version }];
        for (i, lib) in libs.into_iter().enumerate() {
            modules.push(Module { path: format!("{}#{kind}.libs[{i}]", object.path), text: lib, version });
        }
        let mut errors = Vec::new();
        let compiled = rego::compile(&modules, &inventory_data(inventory.clone()), &mut errors);
        let failed = !errors.is_empty();
        for e in errors {
            let position = e.line.map(|l| format!(" (rego line {l})")).unwrap_or_default();
            let module = e.path.rsplit_once('#').map_or("rego", |(_, m)| m);
            diags.push(at(format!("ConstraintTemplate {kind}: {module}{position}: {}", e.message)));
        }
        let entry = format!("data.{package}.violation");
        if failed {
            return None;
        }
        if !compiled.rules.contains(&entry) {
            diags.push(at(format!("ConstraintTemplate {kind}: package {package} has no violation rule")));
            return None;
        }
        let parameters_schema = v.pointer("/spec/crd/spec/validation/openAPIV3Schema").cloned();
        // OpenAPI v3 schemas are close to JSON Schema draft 4; keywords it does not know
        // (x-kubernetes-*, nullable) are ignored, as the API server's structural checks would be.
        let validator = match &parameters_schema {
            Some(schema) => match jsonschema::draft4::new(schema) {
                Ok(v) => Some(std::sync::Arc::new(v)),
                Err(e) => {
                    diags.push(at(format!("ConstraintTemplate {kind}: invalid openAPIV3Schema: {e}")));
                    return None;
                }
            },
            None => None,
        };
        let program = if modules.iter().any(|m| crate::pool::uses_else(&m.text)) {
            None
        } else {
            crate::pool::Programs::compile(&compiled.engine, &entry, inventory_data(inventory.clone()))
        };
        let reads = match compiled.engine.get_ast_as_json().map(|ast| crate::memo::reads(&ast)) {
            Ok(Ok(crate::memo::Reads::Paths(paths))) => Some(std::sync::Arc::new(paths)),
            _ => None,
        };
        Some(Template {
            program,
            reads,
            answers: Answers::default(),
            kind: kind.to_string(),
            name,
            path: object.path.clone(),
            line: object.line,
            parameters_schema,
            validator,
            engine: crate::pool::Pool::new(compiled.engine),
            entry,
        })
    }

    /// Checks a constraint's parameters against the template's schema, as the API server does
    /// before it accepts a constraint. Returns one message per problem, naming the field.
    pub fn check_parameters(&self, parameters: &Value) -> Vec<String> {
        let Some(validator) = &self.validator else { return Vec::new() };
        validator
            .iter_errors(parameters)
            .map(|e| {
                let at = e.instance_path().to_string();
                let field = if at.is_empty() {
                    "spec.parameters".to_string()
                } else {
                    format!("spec.parameters{}", at.replace('/', "."))
                };
                format!("{field}: {e}")
            })
            .collect()
    }

    /// The same template with a different `data.inventory`.
    pub fn with_inventory(&self, inventory: &Value) -> Template {
        let mut t = self.clone();
        let data = inventory_data(rego::to_rego(inventory));
        t.program = t.program.as_ref().map(|p| p.with_data(data.clone()));
        let engine = t.engine.compiled_mut();
        engine.clear_data();
        let _ = engine.add_data(data);
        t
    }

    /// Evaluates the template's `violation` rule for one review with a constraint's parameters.
    /// Returns each violation's `msg` and `details`.
    pub fn violations(&self, review: &regorus::Value, parameters: &regorus::Value) -> crate::Result<Violations> {
        self.evaluate(input_of(review, parameters))
    }

    /// As [`Template::violations`], answered from the template's memo when the parts of the
    /// input it reads were seen before (see [`crate::memo`]). Evaluation errors are not kept.
    pub fn violations_memoized(
        &self,
        review: &regorus::Value,
        parameters: &regorus::Value,
    ) -> crate::Result<std::sync::Arc<Violations>> {
        let input = input_of(review, parameters);
        let Some(reads) = &self.reads else {
            return self.evaluate(input).map(std::sync::Arc::new);
        };
        let key = crate::memo::key(reads, &input);
        if let Some(found) = self.answers.0.get(&key) {
            return Ok(found);
        }
        let found = std::sync::Arc::new(self.evaluate(input)?);
        self.answers.0.put(key, std::sync::Arc::clone(&found));
        Ok(found)
    }

    /// Whether answers are memoized: the template calls no impure builtin.
    pub fn memoizes(&self) -> bool {
        self.reads.is_some()
    }

    /// Keeps at most `capacity` memoized answers.
    pub fn memo_capacity(&self, capacity: usize) {
        self.answers.0.resize(capacity);
    }

    /// (hits, misses) of the memo so far.
    pub fn memo_counts(&self) -> (u64, u64) {
        self.answers.0.counts()
    }

    fn evaluate(&self, input: regorus::Value) -> crate::Result<Violations> {
        // The virtual machine first; should it fail at run time, the interpreter decides.
        if let Some(program) = &self.program
            && let Ok(result) = program.execute(input.clone())
        {
            return Ok(crate::messages(&result));
        }
        self.interpret(input)
    }

    fn interpret(&self, input: regorus::Value) -> crate::Result<Violations> {
        self.engine.with(|engine| {
            engine.set_input(input);
            let result = engine.eval_rule(self.entry.clone()).map_err(crate::Error::evaluation)?;
            Ok(crate::messages(&result))
        })
    }
}

/// `{"review": review, "parameters": parameters}`.
fn input_of(review: &regorus::Value, parameters: &regorus::Value) -> regorus::Value {
    let mut input = regorus::Value::new_object();
    if let Ok(map) = input.as_object_mut() {
        map.insert("review".into(), review.clone());
        map.insert("parameters".into(), parameters.clone());
    }
    input
}

/// `{"inventory": inventory}`.
fn inventory_data(inventory: regorus::Value) -> regorus::Value {
    let mut data = regorus::Value::new_object();
    if let Ok(map) = data.as_object_mut() {
        map.insert("inventory".into(), inventory);
    }
    data
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

/// A label selector as in Kubernetes: `matchLabels` and `matchExpressions`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    /// Labels that must all be present with these values.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    /// Expressions that must all hold.
    #[serde(default)]
    pub match_expressions: Vec<LabelExpression>,
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LabelExpression {
    /// Label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    /// Values for `In` and `NotIn`.
    #[serde(default)]
    pub values: Vec<String>,
}

impl LabelSelector {
    /// Whether labels satisfy the selector.
    pub fn matches(&self, labels: &serde_json::Map<String, Value>) -> bool {
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.match_labels.iter().all(|(k, v)| get(k) == Some(v.as_str()))
            && self.match_expressions.iter().all(|e| match e.operator.as_str() {
                "In" => get(&e.key).is_some_and(|v| e.values.iter().any(|x| x == v)),
                "NotIn" => get(&e.key).is_none_or(|v| !e.values.iter().any(|x| x == v)),
                "Exists" => labels.contains_key(&e.key),
                "DoesNotExist" => !labels.contains_key(&e.key),
                _ => false,
            })
    }
}

/// One `spec.match.kinds` entry.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KindSelector {
    /// API groups; `""` is the core group, `"*"` any.
    #[serde(default)]
    pub api_groups: Vec<String>,
    /// Kinds; `"*"` any.
    #[serde(default)]
    pub kinds: Vec<String>,
}

/// `spec.match` of a Constraint.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Match {
    /// Kinds the constraint applies to; empty means all.
    #[serde(default)]
    pub kinds: Vec<KindSelector>,
    /// `Cluster`, `Namespaced` or `*` (default).
    #[serde(default)]
    pub scope: Option<String>,
    /// Namespaces the constraint applies to (prefix or suffix `*` wildcards).
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Namespaces it does not apply to.
    #[serde(default)]
    pub excluded_namespaces: Vec<String>,
    /// Selector on the object's labels.
    #[serde(default)]
    pub label_selector: Option<LabelSelector>,
    /// Selector on the labels of the object's namespace.
    #[serde(default)]
    pub namespace_selector: Option<LabelSelector>,
    /// Object name (prefix or suffix `*` wildcards).
    #[serde(default)]
    pub name: Option<String>,
    /// `All`, `Original` or `Generated`; assay sees only original objects.
    #[serde(default)]
    pub source: Option<String>,
}

/// Gatekeeper's wildcard: `*` at the start or the end of a pattern.
fn wildcard(pattern: &str, value: &str) -> bool {
    match (pattern.strip_prefix('*'), pattern.strip_suffix('*')) {
        _ if pattern == "*" => true,
        (Some(suffix), _) => value.ends_with(suffix),
        (_, Some(prefix)) => value.starts_with(prefix),
        _ => pattern == value,
    }
}

impl Match {
    /// Whether the constraint applies to `object`. `namespace` is the object's Namespace object,
    /// when known, for `namespaceSelector`.
    pub fn matches(&self, object: &Value, namespace: Option<&Value>) -> bool {
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
        let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
        let is_namespace = kind == "Namespace" && group.is_empty();
        let own_namespace = object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("");
        // As in Gatekeeper, an object without a namespace counts as cluster-scoped and the
        // namespace criteria do not apply to it; a Namespace is matched on its own name.
        let cluster_scoped = own_namespace.is_empty();
        let ns_name = if is_namespace { name } else { own_namespace };
        let ns_applies = is_namespace || !cluster_scoped;

        let kinds_ok = self.kinds.is_empty()
            || self.kinds.iter().any(|k| {
                (k.api_groups.is_empty() || k.api_groups.iter().any(|g| g == "*" || g == group))
                    && (k.kinds.is_empty() || k.kinds.iter().any(|x| x == "*" || x == kind))
            });
        let scope_ok = match self.scope.as_deref() {
            Some("Cluster") => cluster_scoped,
            Some("Namespaced") => !cluster_scoped,
            _ => true,
        };
        let namespaces_ok =
            self.namespaces.is_empty() || !ns_applies || self.namespaces.iter().any(|p| wildcard(p, ns_name));
        let excluded = ns_applies && self.excluded_namespaces.iter().any(|p| wildcard(p, ns_name));
        let empty = serde_json::Map::new();
        let labels = object.pointer("/metadata/labels").and_then(Value::as_object).unwrap_or(&empty);
        let labels_ok = self.label_selector.as_ref().is_none_or(|s| s.matches(labels));
        let ns_selector_ok = match &self.namespace_selector {
            None => true,
            Some(_) if !ns_applies => true,
            Some(selector) => {
                let ns_object = if is_namespace { Some(object) } else { namespace };
                ns_object.is_some_and(|ns| {
                    selector.matches(ns.pointer("/metadata/labels").and_then(Value::as_object).unwrap_or(&empty))
                })
            }
        };
        let name_ok = self.name.as_deref().is_none_or(|p| wildcard(p, name));
        kinds_ok && scope_ok && namespaces_ok && !excluded && labels_ok && ns_selector_ok && name_ok
    }
}

/// A Constraint: an instance of a template's kind, with its match, parameters and action.
#[derive(Debug, Clone)]
pub struct Constraint {
    /// The template kind, such as `K8sRequiredLabels`.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// File it came from.
    pub path: String,
    /// Line where its document starts.
    pub line: u32,
    /// `spec.enforcementAction`, `deny` when absent.
    pub action: EnforcementAction,
    /// `spec.match`.
    pub matcher: Match,
    /// `spec.parameters`, `{}` when absent.
    pub parameters: Value,
    /// The parameters as the engine sees them, converted once.
    pub parameters_rego: regorus::Value,
}

impl Constraint {
    /// Reads a Constraint object. Returns `None`, with a diagnostic, when it cannot be used.
    pub fn parse(object: &Object, diags: &mut Vec<Diagnostic>) -> Option<Constraint> {
        let at = |message: String| Diagnostic::error(&object.path, message).at(object.line, None);
        let id = format!("{}/{}", object.kind(), object.name());
        let spec = object.value.get("spec").cloned().unwrap_or_else(|| json!({}));
        let matcher = match spec.get("match") {
            None | Some(Value::Null) => Match::default(),
            Some(m) => match serde_json::from_value::<Match>(m.clone()) {
                Ok(m) => m,
                Err(e) => {
                    diags.push(at(format!("constraint {id}: spec.match: {e}")));
                    return None;
                }
            },
        };
        let action = match spec.get("enforcementAction").and_then(Value::as_str).map(str::to_ascii_lowercase).as_deref()
        {
            None | Some("deny") => EnforcementAction::Deny,
            Some("warn") => EnforcementAction::Warn,
            Some("dryrun") => EnforcementAction::Dryrun,
            Some(other) => {
                diags.push(at(format!(
                    "constraint {id}: spec.enforcementAction {other:?} is not one of deny, warn, dryrun; constraint not enforced"
                )));
                return None;
            }
        };
        let parameters = spec.get("parameters").cloned().unwrap_or_else(|| json!({}));
        Some(Constraint {
            kind: object.kind().to_string(),
            name: object.name().to_string(),
            path: object.path.clone(),
            line: object.line,
            action,
            matcher,
            parameters_rego: rego::to_rego(&parameters),
            parameters,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8simages}
spec:
  crd: {spec: {names: {kind: K8sImages}}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8simages
        violation[{"msg": msg, "details": {"image": c.image}}] {
          c := input_containers[_]
          not startswith(c.image, input.parameters.registry)
          msg := sprintf("container <%v> uses %v, not from %v", [c.name, c.image, input.parameters.registry])
        }
        violation[{"msg": msg}] {
          other := data.inventory.namespace[ns][_]["Pod"][name]
          name == input.review.object.metadata.name
          ns != input.review.object.metadata.namespace
          msg := sprintf("pod name %v is also used in %v", [name, ns])
        }
        input_containers[c] { c := input.review.object.spec.containers[_] }
        input_containers[c] { c := input.review.object.spec.initContainers[_] }
"#;

    #[test]
    fn the_virtual_machine_and_the_interpreter_agree() {
        let (objects, _) = assay_estate::manifest::parse_objects("t.yaml", TEMPLATE);
        let mut diags = Vec::new();
        let inventory = rego::to_rego(&json!({"namespace": {"other": {"v1": {"Pod": {"web": {"kind": "Pod"}}}}}}));
        let template = Template::compile(&objects[0], &inventory, &mut diags).expect("compiles");
        assert!(diags.is_empty(), "{diags:?}");
        assert!(template.program.is_some(), "the template runs on the RVM");
        let parameters = rego::to_rego(&json!({"registry": "registry.acme.example/"}));
        for pod in [
            json!({"metadata": {"name": "web", "namespace": "prod"}, "spec": {
                "containers": [{"name": "a", "image": "docker.io/nginx"}, {"name": "b", "image": "registry.acme.example/b"}],
                "initContainers": [{"name": "i", "image": "quay.io/init"}]}}),
            json!({"metadata": {"name": "api", "namespace": "prod"}, "spec": {"containers": [{"name": "a", "image": "registry.acme.example/a"}]}}),
        ] {
            let review = rego::to_rego(&json!({"object": pod, "kind": {"kind": "Pod"}}));
            let mut input = regorus::Value::new_object();
            if let Ok(map) = input.as_object_mut() {
                map.insert("review".into(), review.clone());
                map.insert("parameters".into(), parameters.clone());
            }
            let mut fast = template.violations(&review, &parameters).expect("rvm");
            let mut slow = template.interpret(input).expect("interpreter");
            fast.sort_by(|a, b| a.0.cmp(&b.0));
            slow.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(fast, slow);
        }
        let review = rego::to_rego(&json!({"object": {"metadata": {"name": "web", "namespace": "prod"}, "spec": {
            "containers": [{"name": "a", "image": "docker.io/nginx"}], "initContainers": [{"name": "i", "image": "quay.io/init"}]}}}));
        let found = template.violations(&review, &parameters).expect("rvm");
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found.iter().any(|(m, _)| m == "pod name web is also used in other"), "{found:?}");
    }

    fn m(yaml: &str) -> Match {
        yaml_serde::from_str(yaml).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("kube-*", "kube-system"));
        assert!(wildcard("*-system", "kube-system"));
        assert!(!wildcard("kube-*", "default"));
        assert!(wildcard("prod", "prod"));
    }

    #[test]
    fn match_by_kind_namespace_and_labels() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "prod", "labels": {"app": "web"}}});
        let ns =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod", "labels": {"env": "prod"}}});
        assert!(m("kinds: [{apiGroups: [''], kinds: [Pod]}]").matches(&pod, None));
        assert!(!m("kinds: [{apiGroups: [apps], kinds: [Pod]}]").matches(&pod, None));
        assert!(m("namespaces: ['pr*']").matches(&pod, None));
        assert!(!m("excludedNamespaces: [prod]").matches(&pod, None));
        assert!(m("labelSelector: {matchExpressions: [{key: app, operator: In, values: [web]}]}").matches(&pod, None));
        assert!(!m("labelSelector: {matchLabels: {app: db}}").matches(&pod, None));
        assert!(m("namespaceSelector: {matchLabels: {env: prod}}").matches(&pod, Some(&ns)));
        assert!(!m("namespaceSelector: {matchLabels: {env: prod}}").matches(&pod, None));
        assert!(m("namespaceSelector: {matchLabels: {env: prod}}").matches(&ns, None));
        assert!(!m("scope: Cluster").matches(&pod, None));
        assert!(m("name: 'p*'").matches(&pod, None));
        let role =
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"}});
        assert!(m("namespaces: [prod]").matches(&role, None), "namespaces do not apply to cluster-scoped objects");
        let bare = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
        assert!(
            m("namespaces: [default]").matches(&bare, None),
            "an object without a namespace is taken as cluster-scoped"
        );
        assert!(m("scope: Cluster").matches(&bare, None));
    }
}
