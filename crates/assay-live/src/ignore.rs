//! `ignoreDifferences`, with Argo CD's fields: which objects a rule applies to (`group`, `kind`,
//! `name`, `namespace`) and which of their fields are left out of the comparison: JSON pointers
//! (`/spec/replicas`), jq path expressions (`.spec.template.spec.initContainers[] |
//! select(.name == "istio-init")`, evaluated with jaq as `del(EXPR)`, as Argo CD evaluates them
//! with gojq), and the fields that given field managers own in the live object's
//! `managedFields` (`kube-controller-manager`, an autoscaler, a mutating webhook).

use serde_json::{Map, Value};

pub use assay_estate::settings::IgnoreDifference;

/// Checks a rule's pointers and jq expressions; each problem names the field.
pub fn problems(rule: &IgnoreDifference) -> Vec<String> {
    let mut out = Vec::new();
    for (i, p) in rule.json_pointers.iter().enumerate() {
        if !(p.is_empty() || p.starts_with('/')) {
            out.push(format!("jsonPointers[{i}]: {p:?} is not a JSON pointer (it starts with /)"));
        }
    }
    for (i, e) in rule.jq_path_expressions.iter().enumerate() {
        if let Err(err) = Jq::compile(e) {
            out.push(format!("jqPathExpressions[{i}]: {err}"));
        }
    }
    out
}
/// A rule ready to apply: its jq expressions compiled once.
#[derive(Debug)]
pub struct Ignore {
    /// The rule as written.
    pub rule: IgnoreDifference,
    jq: Vec<Jq>,
}

impl Ignore {
    /// Compiles a rule; `Err` with each problem (naming the field) when it has any.
    pub fn compile(rule: IgnoreDifference) -> Result<Ignore, Vec<String>> {
        let problems = problems(&rule);
        if !problems.is_empty() {
            return Err(problems);
        }
        let jq = rule.jq_path_expressions.iter().filter_map(|e| Jq::compile(e).ok()).collect();
        Ok(Ignore { rule, jq })
    }

    /// The compiled jq expressions.
    pub(crate) fn jq(&self) -> &[Jq] {
        &self.jq
    }
}

/// A compiled jq path expression: `del(EXPR)`.
pub struct Jq(jaq_core::Filter<jaq_core::Native<jaq_json::Val>>);

impl std::fmt::Debug for Jq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Jq(..)")
    }
}

impl Jq {
    /// Compiles `expression` as the paths to delete.
    pub fn compile(expression: &str) -> Result<Jq, String> {
        use jaq_core::load::{Arena, File, Loader};
        let code = format!("del({expression})");
        let loader = Loader::new(jaq_std::defs().chain(jaq_json::defs()));
        let arena = Arena::default();
        let modules = loader
            .load(&arena, File { code: code.as_str(), path: () })
            .map_err(|errs| format!("{expression:?} does not parse as jq ({} error(s))", errs.len()))?;
        jaq_core::Compiler::default()
            .with_funs(jaq_std::funs().chain(jaq_json::funs()))
            .compile(modules)
            .map(Jq)
            .map_err(|errs| format!("{expression:?} does not compile as jq ({} error(s))", errs.len()))
    }

    /// `value` without the fields the expression names; unchanged when it fails on it.
    pub fn delete(&self, value: &Value) -> Value {
        use jaq_core::{Ctx, RcIter};
        let inputs = RcIter::new(core::iter::empty());
        let mut out = self.0.run((Ctx::new([], &inputs), jaq_json::Val::from(value.clone())));
        match out.next() {
            Some(Ok(v)) => Value::from(v),
            _ => value.clone(),
        }
    }
}

/// One step of a path into an object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// A field of an object.
    Field(String),
    /// A list element by position.
    Index(usize),
    /// A list element whose fields have these values (managedFields' `k:{...}`).
    Matching(Map<String, Value>),
    /// A list element equal to this value (managedFields' `v:...`).
    Equal(Value),
}

/// Parses an RFC 6901 pointer into steps (`~1` is `/`, `~0` is `~`; a number is an index when
/// the value there is a list).
pub(crate) fn pointer_steps(pointer: &str) -> Vec<Step> {
    pointer
        .split('/')
        .skip(1)
        .map(|s| {
            let field = s.replace("~1", "/").replace("~0", "~");
            match field.parse::<usize>() {
                Ok(i) => Step::Index(i),
                Err(_) => Step::Field(field),
            }
        })
        .collect()
}

/// The paths a field manager owns, from one `managedFields` entry's `fieldsV1`.
pub(crate) fn owned_paths(fields: &Value) -> Vec<Vec<Step>> {
    fn walk(node: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
        let Some(map) = node.as_object() else { return };
        let mut leaf = true;
        for (key, child) in map {
            let step = if let Some(f) = key.strip_prefix("f:") {
                Step::Field(f.to_string())
            } else if let Some(k) = key.strip_prefix("k:") {
                match serde_json::from_str::<Map<String, Value>>(k) {
                    Ok(m) => Step::Matching(m),
                    Err(_) => continue,
                }
            } else if let Some(v) = key.strip_prefix("v:") {
                match serde_json::from_str::<Value>(v) {
                    Ok(v) => Step::Equal(v),
                    Err(_) => continue,
                }
            } else if let Some(i) = key.strip_prefix("i:") {
                match i.parse() {
                    Ok(i) => Step::Index(i),
                    Err(_) => continue,
                }
            } else {
                // "." marks the node itself as owned: its children decide.
                continue;
            };
            leaf = false;
            prefix.push(step);
            walk(child, prefix, out);
            prefix.pop();
        }
        if leaf && !prefix.is_empty() {
            out.push(prefix.clone());
        }
    }
    let mut out = Vec::new();
    walk(fields, &mut Vec::new(), &mut out);
    out
}

/// The paths the given managers own in a live object.
pub(crate) fn managed_by(live: &Value, managers: &[String]) -> Vec<Vec<Step>> {
    let Some(entries) = live.pointer("/metadata/managedFields").and_then(Value::as_array) else { return Vec::new() };
    entries
        .iter()
        .filter(|e| e.get("manager").and_then(Value::as_str).is_some_and(|m| managers.iter().any(|x| x == m)))
        .filter_map(|e| e.get("fieldsV1"))
        .flat_map(owned_paths)
        .collect()
}

/// Removes what `path` names from `value`, if it is there.
pub(crate) fn remove(value: &mut Value, path: &[Step]) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut at = value;
    for step in parents {
        let next = match (step, at) {
            (Step::Field(f), Value::Object(m)) => m.get_mut(f),
            (Step::Index(i), Value::Array(a)) => a.get_mut(*i),
            (Step::Matching(want), Value::Array(a)) => {
                a.iter_mut().find(|x| want.iter().all(|(k, v)| x.get(k) == Some(v)))
            }
            (Step::Equal(want), Value::Array(a)) => a.iter_mut().find(|x| *x == want),
            (Step::Index(i), Value::Object(m)) => m.get_mut(&i.to_string()),
            _ => None,
        };
        match next {
            Some(n) => at = n,
            None => return,
        }
    }
    match (last, at) {
        (Step::Field(f), Value::Object(m)) => {
            m.remove(f);
        }
        (Step::Index(i), Value::Object(m)) => {
            m.remove(&i.to_string());
        }
        (Step::Index(i), Value::Array(a)) if *i < a.len() => {
            a.remove(*i);
        }
        (Step::Matching(want), Value::Array(a)) => a.retain(|x| !want.iter().all(|(k, v)| x.get(k) == Some(v))),
        (Step::Equal(want), Value::Array(a)) => a.retain(|x| x != want),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn pointers_and_managed_fields_name_what_to_leave_out() {
        let mut v = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [
            {"name": "web", "image": "a", "resources": {"limits": {"cpu": "1"}}},
            {"name": "istio-proxy", "image": "b"}]}}}});
        remove(&mut v, &pointer_steps("/spec/replicas"));
        assert!(v["spec"].get("replicas").is_none());
        let fields = json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {
            "k:{\"name\":\"istio-proxy\"}": {".": {}, "f:image": {}, "f:name": {}},
            "k:{\"name\":\"web\"}": {"f:resources": {"f:limits": {"f:cpu": {}}}}}}}}});
        for path in owned_paths(&fields) {
            remove(&mut v, &path);
        }
        assert_eq!(
            v["spec"]["template"]["spec"]["containers"],
            json!([{"name": "web", "image": "a", "resources": {"limits": {}}}, {}])
        );
        let jq = Jq::compile(r#".spec.template.spec.containers[] | select(.name == "web") | .resources"#).expect("jq");
        let mut w = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "resources": {"a": 1}}, {"name": "x", "resources": {}}]}}}});
        w = jq.delete(&w);
        assert_eq!(
            w["spec"]["template"]["spec"]["containers"],
            json!([{"name": "web"}, {"name": "x", "resources": {}}])
        );
        assert!(Jq::compile(".spec[").is_err());
        let rule =
            IgnoreDifference { group: Some("apps".into()), kind: Some("Deployment".into()), ..Default::default() };
        assert!(rule.applies("apps", "Deployment", Some("a"), "x"));
        assert!(!rule.applies("", "Deployment", Some("a"), "x"));
    }
}
