//! What event policies' findings mean. Event policies live in `package assay.events` and see a
//! CloudEvent (in its JSON form) as `input`; what they put in the rules `findings` and `deny`
//! are findings. A finding is a string or an object; it is normalised to an object with at least
//! `msg`. A finding with a true (or any non-false, non-null) `quarantine` asks for the resource
//! to be quarantined; `quarantine.resource`, when given, names it.

use serde_json::{Map, Value};

use crate::{PolicySet, Result};

/// The rules of `package assay.events` whose values are findings.
pub const RULES: [&str; 2] = ["findings", "deny"];

/// One finding of the event policies.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFinding {
    /// The finding as the policy wrote it, as an object with at least `msg`.
    pub finding: Value,
    /// Whether it asks for a quarantine, and of what.
    pub quarantine: Option<Quarantine>,
}

/// A quarantine a finding asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantine {
    /// The resource to quarantine (`quarantine.resource`), when named.
    pub resource: Option<String>,
}

/// Evaluates the event policies on one event.
pub fn evaluate(policies: &PolicySet, event: &Value) -> Result<Vec<EventFinding>> {
    let mut out = Vec::new();
    for rule in RULES {
        if let Some(Value::Array(items)) = policies.query(&["assay", "events", rule], Some(event))? {
            out.extend(items.iter().map(|item| {
                let finding = normalize(item);
                EventFinding { quarantine: quarantine(&finding), finding }
            }));
        }
    }
    Ok(out)
}

/// A finding as policies write it: a string, or an object with at least `msg`.
fn normalize(finding: &Value) -> Value {
    let msg = |text: String| {
        let mut m = Map::new();
        m.insert("msg".into(), Value::String(text));
        Value::Object(m)
    };
    match finding {
        Value::String(s) => msg(s.clone()),
        Value::Object(m) if m.contains_key("msg") => finding.clone(),
        other => msg(other.to_string()),
    }
}

fn quarantine(finding: &Value) -> Option<Quarantine> {
    let wanted = match finding.get("quarantine") {
        Some(Value::Bool(b)) => *b,
        Some(Value::Null) | None => false,
        Some(_) => true,
    };
    wanted.then(|| Quarantine {
        resource: finding.get("quarantine").and_then(|q| q.get("resource")).and_then(Value::as_str).map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn findings_are_objects_with_a_message_and_may_ask_for_quarantine() {
        assert_eq!(normalize(&json!("public bucket")), json!({"msg": "public bucket"}));
        assert_eq!(normalize(&json!(42)), json!({"msg": "42"}));
        let asked = json!({"msg": "m", "quarantine": {"resource": "s3://b"}});
        assert_eq!(normalize(&asked), asked);
        assert_eq!(quarantine(&asked), Some(Quarantine { resource: Some("s3://b".into()) }));
        assert_eq!(quarantine(&json!({"msg": "m", "quarantine": true})), Some(Quarantine { resource: None }));
        assert_eq!(quarantine(&json!({"msg": "m", "quarantine": false})), None);
        assert_eq!(quarantine(&json!({"msg": "m", "quarantine": null})), None);
    }
}
