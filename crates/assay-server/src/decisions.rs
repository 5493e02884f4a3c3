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
