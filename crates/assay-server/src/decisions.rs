//! Decision records, in the ledger as canonical JSON (RFC 8785), with the fields of OPA's
//! decision-log events: `decision_id`, `path`, `input`, `result`, the estate revision and the
//! time. An entry holds at most 65,535 bytes: a larger input is replaced by its SHA-256 and
//! size (`input_sha256`, `input_size`), so the record still identifies it.

use assay_ledger::store::MAX_ENTRY;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::state::Active;

/// A new decision id (a random UUID).
pub(crate) fn decision_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A decision record.
pub(crate) fn record(id: &str, path: &str, input: &Value, result: Option<&Value>, active: &Active) -> Value {
    json!({
        "type": "assay.dev/record/decision/v1",
        "decision_id": id,
        "path": path,
        "input": input,
        "result": result,
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "estate": {"name": active.name, "revision": active.revision},
    })
}

/// The record's ledger entry: canonical JSON, with the input replaced by its digest when the
/// whole record would not fit an entry.
pub(crate) fn entry(record: &Value) -> Result<Vec<u8>, String> {
    let bytes = serde_json_canonicalizer::to_vec(record).map_err(|e| e.to_string())?;
    if bytes.len() <= MAX_ENTRY {
        return Ok(bytes);
    }
    let mut smaller = record.clone();
    if let Some(map) = smaller.as_object_mut()
        && let Some(input) = map.remove("input")
    {
        let canonical = serde_json_canonicalizer::to_vec(&input).map_err(|e| e.to_string())?;
        let digest: String = Sha256::digest(&canonical).iter().map(|b| format!("{b:02x}")).collect();
        map.insert("input_sha256".into(), Value::String(digest));
        map.insert("input_size".into(), Value::from(canonical.len()));
    }
    let bytes = serde_json_canonicalizer::to_vec(&smaller).map_err(|e| e.to_string())?;
    if bytes.len() <= MAX_ENTRY {
        Ok(bytes)
    } else {
        Err(format!("the decision record is {} bytes even without its input", bytes.len()))
    }
}

/// Applies the estate's `data.system.log.mask` policy to a decision record, as OPA does for its
/// decision logs: the policy sees `{"input", "result", "path", "decision_id"}` and answers a set
/// of JSON pointers to erase (`"/input/password"`) or operations
/// (`{"op": "remove" | "upsert", "path": "/input/...", "value": ...}`). Only `/input` and
/// `/result` can be changed. The record lists what was `erased` and `masked`. A mask policy that
/// fails to evaluate erases the whole input rather than risk logging a secret.
pub(crate) fn mask(active: &Active, record: &mut Value) {
    if !active.has_mask {
        return;
    }
    let event = json!({
        "input": record.get("input"),
        "result": record.get("result"),
        "path": record.get("path"),
        "decision_id": record.get("decision_id"),
    });
    let ops = match active.policies.query(&["system", "log", "mask"], Some(&event)) {
        Ok(Some(Value::Array(ops))) => ops,
        Ok(_) => return,
        Err(e) => {
            record["input"] = Value::Null;
            record["erased"] = json!(["/input"]);
            record["mask_error"] = json!(e.to_string());
            return;
        }
    };
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
            ("upsert", Some(value)) if upsert(record, &path, &value) => masked.push(path),
            ("remove", _) if remove(record, &path) => erased.push(path),
            _ => {}
        }
    }
    if !erased.is_empty() {
        record["erased"] = json!(erased);
    }
    if !masked.is_empty() {
        record["masked"] = json!(masked);
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
