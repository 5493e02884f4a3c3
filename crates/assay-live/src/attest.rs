//! Sync attestations: an in-toto Statement v1 that a cluster, at a time, compared with an estate
//! revision, had N objects in sync and these not (each with the digest of what was live), for
//! an auditor to verify offline. The caller signs it (a DSSE envelope) and logs it.

use serde_json::{Value, json};

use crate::report::ClusterDrift;
use crate::state::Status;

/// The predicate type of sync attestations.
pub const PREDICATE_TYPE: &str = "https://assay.dev/attestation/sync/v1";

/// SHA-256 (hex) of the canonical JSON of `value`.
pub fn sha256_hex(value: &Value) -> String {
    crate::canonical::sha256_hex(value)
}

/// The objects of a cluster's comparison that were live, each by key and digest, in key order:
/// what the subject's digest covers.
fn observed(cluster: &ClusterDrift) -> Value {
    Value::Array(
        cluster.objects.iter().filter_map(|o| o.live_sha256.as_ref().map(|d| json!([o.key.to_string(), d]))).collect(),
    )
}

/// The statement for one cluster's comparison with the estate at `revision` (named `estate`),
/// observed at `time` (RFC 3339).
pub fn statement(cluster: &ClusterDrift, estate: Option<&str>, revision: &str, time: &str) -> Value {
    let not_in_sync: Vec<Value> = cluster
        .objects
        .iter()
        .filter(|o| o.status != Status::InSync)
        .map(|o| {
            json!({
                "object": o.key.to_string(),
                "status": o.status.name(),
                "liveDigest": o.live_sha256.as_ref().map(|d| json!({"sha256": d})),
                "fields": o.diffs.iter().map(|d| d.path.clone()).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{
            "name": format!("cluster:{}", cluster.cluster),
            "digest": {"sha256": sha256_hex(&observed(cluster))},
        }],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "cluster": cluster.cluster,
            "observedAt": time,
            "source": cluster.source,
            "estate": {"name": estate, "revision": revision},
            "counts": cluster.counts,
            "inSync": cluster.counts.get("in_sync").copied().unwrap_or(0),
            "notInSync": not_in_sync,
            "unreadable": cluster.errors,
        },
    })
}
