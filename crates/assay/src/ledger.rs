//! What `assay check --ledger` appends: a canonical JSON (RFC 8785) record of the verdict.
//!
//! ```json
//! {"estate":{"name":…,"origin":{…},"revision":"<commit>|sha256:<files digest>"},
//!  "time":"2026-11-23T07:00:00.000Z","type":"assay.dev/record/verdict/v1",
//!  "verdict":{"digest":"sha256:<hex>","schema":…,"summary":{…}}}
//! ```
//!
//! The verdict digest is SHA-256 over the canonical JSON of the whole verdict (what
//! `assay check --format json` prints, canonicalized), so the full verdict can be kept
//! elsewhere and still be matched to its entry.

use anyhow::{Context, Result};
use assay_estate::Estate;
use assay_verdict::Verdict;
use sha2::{Digest, Sha256};

/// The record's type.
pub(crate) const VERDICT_RECORD: &str = "assay.dev/record/verdict/v1";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The ledger entry for a verdict.
pub(crate) fn verdict_record(verdict: &Verdict, estate: &Estate) -> Result<Vec<u8>> {
    let canonical = serde_json_canonicalizer::to_vec(verdict).context("serializing the verdict")?;
    let record = serde_json::json!({
        "type": VERDICT_RECORD,
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "estate": {
            "name": verdict.estate.name,
            "origin": verdict.estate.origin,
            "revision": estate.revision(),
        },
        "verdict": {
            "schema": verdict.schema,
            "digest": format!("sha256:{}", hex(&Sha256::digest(&canonical))),
            "summary": verdict.summary,
        },
    });
    serde_json_canonicalizer::to_vec(&record).context("serializing the ledger record")
}
