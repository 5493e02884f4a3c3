//! `GET /v1/drift`: the watched cluster's current drift and audit results.

use std::sync::Arc;

use assay_live::report::AuditFinding;
use assay_live::state;
use axum::Json;
use axum::extract::{Query, State as Extract};
use serde_json::json;

use crate::state::State;

/// Filters of `GET /v1/drift`.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct Filter {
    cluster: Option<String>,
    namespace: Option<String>,
    kind: Option<String>,
    status: Option<String>,
}

/// `GET /v1/drift`: the watched cluster's current drift and audit results, filterable by
/// cluster, namespace, kind and status.
pub(crate) async fn get(Extract(state): Extract<Arc<State>>, Query(filter): Query<Filter>) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let Some(drift) = state.drift() else {
        return crate::errors::error(
            axum::http::StatusCode::NOT_FOUND,
            "drift_not_watched",
            "this server watches no cluster (start it with --watch-cluster)",
        );
    };
    let current = drift.current.read().ok().and_then(|c| c.clone());
    let Some(obs) = current else {
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"code": "drift_not_ready", "message": "the first comparison has not finished"})),
        )
            .into_response();
    };
    let r = &obs.report;
    if filter.cluster.as_deref().is_some_and(|c| c != r.cluster) {
        return Json(json!({"clusters": []})).into_response();
    }
    let objects: Vec<&state::ObjectDrift> = r
        .objects
        .iter()
        .filter(|o| filter.namespace.as_deref().is_none_or(|n| o.key.namespace.as_deref() == Some(n)))
        .filter(|o| filter.kind.as_deref().is_none_or(|k| o.key.kind == k))
        .filter(|o| filter.status.as_deref().is_none_or(|s| o.status.name() == s))
        .collect();
    let audit: Vec<&AuditFinding> = r
        .audit
        .iter()
        .flatten()
        .filter(|f| filter.namespace.as_deref().is_none_or(|n| f.object.split('/').nth(1) == Some(n)))
        .filter(|f| {
            filter
                .kind
                .as_deref()
                .is_none_or(|k| f.object.split('/').next().is_some_and(|x| x.split('.').next() == Some(k)))
        })
        .filter(|_| filter.status.as_deref().is_none_or(|s| s == "violation"))
        .collect();
    Json(json!({
        "schema": assay_live::report::SCHEMA,
        "revision": obs.revision,
        "time": obs.time,
        "relists": drift.relists(),
        "clusters": [{
            "cluster": r.cluster,
            "source": r.source,
            "counts": r.counts,
            "objects": objects,
            "errors": r.errors,
            "warnings": r.warnings,
            "audit": audit,
        }],
        "attestation": obs.attestation,
    }))
    .into_response()
}
