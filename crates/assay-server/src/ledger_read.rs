//! What the ledger page and `/api/v1/ledger` show of the decision ledger, read from its files
//! as an auditor would (the signed checkpoint, entry bundles and hash tiles, through
//! `assay_ledger::Reader`): the checkpoint, recent entries by type, and for any entry its
//! inclusion proof and a receipt in the C2SP tlog-proof format that `assay log verify-receipt`
//! checks offline. Blocking file reads: call from the blocking pool.

use std::sync::Arc;

use assay_ledger::reader::Reader;
use assay_ledger::receipt::Receipt;
use base64::Engine as _;
use serde_json::{Value, json};

/// A ledger's files.
type Files = Arc<dyn assay_ledger::files::Files>;

/// Entries looked at, at most, to find the recent ones of a type.
const SCAN: u64 = 20_000;

/// Why the ledger cannot be shown.
#[derive(Debug)]
pub(crate) enum Unavailable {
    /// The server keeps no ledger (`--ledger`).
    NoLedger,
    /// No such entry.
    NoEntry(u64, u64),
    /// The files are not readable or not consistent.
    Broken(String),
}

/// A record type's short name: `assay.dev/record/decision/v2` is `decision`.
pub(crate) fn short_type(entry: &Value) -> String {
    entry["type"]
        .as_str()
        .and_then(|t| t.strip_prefix(assay_record::TYPE_PREFIX))
        .and_then(|t| t.split('/').next())
        .unwrap_or("other")
        .to_string()
}

/// One line about an entry, for a list.
pub(crate) fn describe(entry: &Value) -> String {
    let s = |p: &str| entry.pointer(p).and_then(Value::as_str).unwrap_or("").to_string();
    let revision = |p: &str| {
        let r = s(p);
        let hex = r.strip_prefix("sha256:").unwrap_or(&r).to_string();
        hex.get(..12).map(str::to_string).unwrap_or(hex)
    };
    match short_type(entry).as_str() {
        "decision" => {
            let result = entry.get("result").map(|r| r.to_string()).unwrap_or_else(|| "undefined".into());
            let result: String = result.chars().take(80).collect();
            format!("{} → {result}", s("/path"))
        }
        "verdict" => format!(
            "{}: {} denied, {} warnings{}",
            entry.pointer("/estate/name").and_then(Value::as_str).unwrap_or("estate"),
            entry.pointer("/verdict/summary/denied").map(Value::to_string).unwrap_or_default(),
            entry.pointer("/verdict/summary/warnings").map(Value::to_string).unwrap_or_default(),
            if entry.pointer("/verdict/summary/passed") == Some(&Value::Bool(true)) { ", passed" } else { "" }
        ),
        "activation" => format!("activated {}", revision("/estate/revision")),
        "refusal" => format!("refused {}: {}", revision("/estate/revision"), s("/reasons/0")),
        "finding" => format!("{} from {}", s("/event/type"), s("/event/source")),
        "lineage-event" => format!("{} {}", s("/event_type"), s("/event_time")),
        "residency-finding" => s("/finding/message"),
        "quality-finding" => s("/key"),
        "sync-attestation" => format!("cluster {} at {}", s("/cluster"), revision("/estate/revision")),
        "drift-observation" => format!("{} {} in {}", s("/object"), s("/status"), s("/cluster")),
        "provenance" => format!("run {}", s("/run")),
        _ => String::new(),
    }
}

fn open(files: Option<Files>) -> Result<Reader, Unavailable> {
    let files = files.ok_or(Unavailable::NoLedger)?;
    Reader::open_in(files, None).map_err(|e| Unavailable::Broken(e.to_string()))
}

fn checkpoint(reader: &Reader) -> Value {
    let c = reader.checkpoint();
    json!({
        "origin": c.origin,
        "size": c.size,
        "root_hash": base64::engine::general_purpose::STANDARD.encode(c.root),
        "note": reader.note(),
    })
}

/// The checkpoint and the latest `limit` entries (of `kind`, when given) before `before`.
pub(crate) fn recent(
    files: Option<Files>,
    kind: Option<&str>,
    before: Option<u64>,
    limit: usize,
) -> Result<Value, Unavailable> {
    let reader = open(files)?;
    let size = reader.checkpoint().size;
    let end = before.unwrap_or(size).min(size);
    let start = end.saturating_sub(SCAN);
    let mut found = Vec::new();
    let mut at = end;
    // Backwards, a bundle's worth at a time.
    while at > start && found.len() < limit {
        let from = at.saturating_sub(256).max(start);
        let entries = reader.entries(from..at).map_err(|e| Unavailable::Broken(e.to_string()))?;
        for (i, bytes) in entries.iter().enumerate().rev() {
            let index = from + i as u64;
            let value: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
            let t = short_type(&value);
            if kind.is_some_and(|k| k != t) {
                continue;
            }
            found.push(json!({
                "index": index,
                "type": t,
                "time": value.get("time").cloned().unwrap_or(Value::Null),
                "summary": describe(&value),
                "bytes": bytes.len(),
            }));
            if found.len() == limit {
                break;
            }
        }
        at = from;
    }
    let scanned_from =
        if found.len() == limit { found.last().and_then(|e| e["index"].as_u64()).unwrap_or(at) } else { at };
    Ok(json!({
        "checkpoint": checkpoint(&reader),
        "type": kind,
        "entries": found,
        // Where to continue (`before`), when there may be more.
        "next_before": (scanned_from > 0).then_some(scanned_from),
    }))
}

/// Entry `index` of the log `reader` reads.
fn read_entry(reader: &Reader, index: u64) -> Result<Vec<u8>, Unavailable> {
    let size = reader.checkpoint().size;
    if index >= size {
        return Err(Unavailable::NoEntry(index, size));
    }
    reader
        .entries(index..index + 1)
        .map_err(|e| Unavailable::Broken(e.to_string()))?
        .pop()
        .ok_or(Unavailable::NoEntry(index, size))
}

/// The inclusion proof of entry `index` in the tree of `reader`'s checkpoint.
fn proof(reader: &mut Reader, index: u64) -> Result<Vec<assay_ledger::merkle::Hash>, Unavailable> {
    let size = reader.checkpoint().size;
    if index >= size {
        return Err(Unavailable::NoEntry(index, size));
    }
    reader
        .inclusion_proof(index)
        .map_err(|e| Unavailable::Broken(e.to_string()))?
        .map_err(|e| Unavailable::Broken(e.to_string()))
}

/// Entry `index`'s bytes.
pub(crate) fn entry_bytes(files: Option<Files>, index: u64) -> Result<Vec<u8>, Unavailable> {
    read_entry(&open(files)?, index)
}

/// Entry `index`: its bytes, and a document with the record, its inclusion proof and the
/// checkpoint it leads to.
pub(crate) fn entry(files: Option<Files>, index: u64) -> Result<(Vec<u8>, Value), Unavailable> {
    let mut reader = open(files)?;
    let bytes = read_entry(&reader, index)?;
    let proof = proof(&mut reader, index)?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let record: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let doc = json!({
        "index": index,
        "type": short_type(&record),
        "summary": describe(&record),
        "record": record,
        "leaf_hash": b64.encode(assay_ledger::merkle::leaf_hash(&bytes)),
        "inclusion_proof": proof.iter().map(|h| b64.encode(h)).collect::<Vec<_>>(),
        "checkpoint": checkpoint(&reader),
    });
    Ok((bytes, doc))
}

/// A receipt for entry `index` against the current checkpoint (C2SP tlog-proof).
pub(crate) fn receipt(files: Option<Files>, index: u64) -> Result<String, Unavailable> {
    let mut reader = open(files)?;
    let proof = proof(&mut reader, index)?;
    Ok(Receipt { extra: None, index, proof, checkpoint: reader.note().to_string() }.text())
}
