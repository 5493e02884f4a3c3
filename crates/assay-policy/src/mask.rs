//! OPA's decision-log masking (`data.system.log.mask`): the estate's policy sees
//! `{"input", "result", "path", "decision_id"}` of a decision and answers a set of JSON pointers
//! to erase (`"/input/password"`) or operations (`{"op": "remove" | "upsert", "path":
//! "/input/...", "value": ...}`), as OPA applies them to its decision logs. Only `/input` and
//! `/result` can be changed. A mask policy that fails to evaluate erases the whole input rather
//! than risk logging a secret.

use serde_json::{Map, Value};

use crate::PolicySet;

/// A decision's input and result after masking, and what was changed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Masked {
    /// The input; `None` once erased.
    pub input: Option<Value>,
    /// The result; `None` when undefined or erased.
    pub result: Option<Value>,
    /// JSON pointers erased.
    pub erased: Vec<String>,
    /// JSON pointers replaced.
    pub masked: Vec<String>,
    /// Why the mask policy failed, when it did (the input is then erased).
    pub error: Option<String>,
}

/// Whether the policies define `data.system.log.mask` (a `system.log` package).
pub fn defines_mask(policies: &[assay_estate::PolicySource]) -> bool {
    policies.iter().any(|p| crate::rego::package_of(&p.text).is_some_and(|pkg| pkg == "system.log"))
}

/// Applies `data.system.log.mask` of `policies` to one decision.
pub fn apply(
    policies: &PolicySet,
    decision_id: &str,
    path: &str,
    input: Option<Value>,
    result: Option<Value>,
) -> Masked {
    let mut doc = Map::new();
    doc.insert("input".into(), input.clone().unwrap_or(Value::Null));
    doc.insert("result".into(), result.clone().unwrap_or(Value::Null));
    doc.insert("path".into(), Value::String(path.into()));
    doc.insert("decision_id".into(), Value::String(decision_id.into()));
    let ops = match policies.query(&["system", "log", "mask"], Some(&Value::Object(doc.clone()))) {
        Ok(Some(Value::Array(ops))) => ops,
        Ok(_) => return Masked { input, result, ..Masked::default() },
        Err(e) => {
            return Masked {
                input: None,
                result,
                erased: vec!["/input".into()],
                masked: Vec::new(),
                error: Some(e.to_string()),
            };
        }
    };
    let mut record = Value::Object(doc);
    if input.is_none() {
        record.as_object_mut().map(|m| m.remove("input"));
    }
    let mut erased = Vec::new();
    let mut masked = Vec::new();
    for op in ops {
        let (kind, path, value) = match &op {
            Value::String(p) => ("remove", p.clone(), None),
            Value::Object(m) => (
                m.get("op").and_then(Value::as_str).unwrap_or("remove"),
                m.get("path").and_then(Value::as_str).unwrap_or_default().to_string(),
                m.get("value").cloned(),
            ),
            _ => continue,
        };
        if !(path.starts_with("/input") || path.starts_with("/result")) {
            continue;
        }
        match (kind, value) {
            ("upsert", Some(value)) if upsert(&mut record, &path, &value) => masked.push(path),
            ("remove", _) if remove(&mut record, &path) => erased.push(path),
            _ => {}
        }
    }
    let mut map = match record {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    Masked {
        input: map.remove("input"),
        result: map.remove("result").filter(|r| !r.is_null()),
        erased,
        masked,
        error: None,
    }
}

fn segments(pointer: &str) -> Vec<String> {
    pointer.split('/').skip(1).map(|s| s.replace("~1", "/").replace("~0", "~")).collect()
}

fn remove(root: &mut Value, pointer: &str) -> bool {
    let mut parts = segments(pointer);
    let Some(last) = parts.pop() else { return false };
    let mut at = root;
    for p in &parts {
        at = match at {
            Value::Object(m) => match m.get_mut(p) {
                Some(v) => v,
                None => return false,
            },
            Value::Array(a) => match p.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match at {
        Value::Object(m) => m.remove(&last).is_some(),
        Value::Array(a) => match last.parse::<usize>() {
            Ok(i) if i < a.len() => {
                a.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

fn upsert(root: &mut Value, pointer: &str, value: &Value) -> bool {
    let mut parts = segments(pointer);
    let Some(last) = parts.pop() else { return false };
    let mut at = root;
    for p in &parts {
        if at.is_null() {
            *at = Value::Object(Default::default());
        }
        at = match at {
            Value::Object(m) => m.entry(p.clone()).or_insert(Value::Null),
            _ => return false,
        };
    }
    if at.is_null() {
        *at = Value::Object(Default::default());
    }
    match at {
        Value::Object(m) => {
            m.insert(last, value.clone());
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointers_remove_and_upsert() {
        let mut v = json!({"input": {"user": {"password": "x", "name": "a/b"}, "list": [1, 2, 3]}});
        assert!(remove(&mut v, "/input/user/password"));
        assert!(!remove(&mut v, "/input/user/password"));
        assert!(remove(&mut v, "/input/list/1"));
        assert!(upsert(&mut v, "/input/user/token", &json!("**REDACTED**")));
        assert!(upsert(&mut v, "/input/new/deep", &json!(1)));
        assert_eq!(
            v,
            json!({"input": {"user": {"name": "a/b", "token": "**REDACTED**"}, "list": [1, 3], "new": {"deep": 1}}})
        );
    }
}
