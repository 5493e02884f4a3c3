//! The read API behind the web UI, under `/api/v1/`: `GET /api/v1/posture`, the ledger
//! (`GET /api/v1/ledger`, `/api/v1/ledger/entries/{index}` with `/raw` and `/receipt`), and the
//! OpenAPI document that describes every `/api/v1/` route (`GET /api/v1/openapi.json`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State as Extract};
use axum::http::header;
use axum::response::{IntoResponse as _, Response};

use crate::cost_view::{self, CostQuery};
use crate::errors::error;
use crate::ledger_read;
use crate::posture::{self, Filter};
use crate::residency_view;
use crate::state::State;

/// `GET /api/v1/posture?policy=&namespace=&file=&action=`.
pub(crate) async fn posture(Extract(state): Extract<Arc<State>>, Query(filter): Query<Filter>) -> Response {
    match posture::document(&state, &filter).await {
        Ok(doc) => Json(doc).into_response(),
        Err(why) => error(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "posture_failed", why),
    }
}

/// A file to download: its type, its name, its bytes.
fn attachment(content_type: &'static str, filename: String, body: impl axum::response::IntoResponse) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
        ],
        body,
    )
        .into_response()
}

/// The OpenAPI 3.1 document of `/api/v1/`.
const OPENAPI: &str = include_str!("openapi.json");

/// `GET /api/v1/openapi.json`.
pub(crate) async fn openapi() -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// `GET /api/v1/ledger?type=&before=&limit=`: the query.
#[derive(Debug, Default, Clone, serde::Deserialize, serde::Serialize)]
pub(crate) struct LedgerQuery {
    /// Only entries of this record type (`decision`, `verdict`, `activation`...).
    #[serde(
        rename = "type",
        default,
        deserialize_with = "crate::posture::empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) kind: Option<String>,
    /// Only entries before this index (the `next_before` of the previous answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) before: Option<u64>,
    /// How many (50 unless set, at most 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) limit: Option<usize>,
}

/// Answers what the ledger cannot give.
pub(crate) fn unavailable(why: ledger_read::Unavailable) -> Response {
    use axum::http::StatusCode;
    match why {
        ledger_read::Unavailable::NoLedger => {
            error(StatusCode::NOT_FOUND, "ledger_not_kept", "this server keeps no ledger (start it with --ledger)")
        }
        ledger_read::Unavailable::NoEntry(index, size) => error(
            StatusCode::NOT_FOUND,
            "no_such_entry",
            format!("entry {index} is not in the ledger: it has {size} entries"),
        ),
        ledger_read::Unavailable::Broken(why) => {
            error(StatusCode::INTERNAL_SERVER_ERROR, "ledger_unreadable", format!("the ledger cannot be read: {why}"))
        }
    }
}

/// Runs a ledger read on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    read: impl FnOnce() -> Result<T, ledger_read::Unavailable> + Send + 'static,
) -> Result<T, ledger_read::Unavailable> {
    tokio::task::spawn_blocking(read)
        .await
        .unwrap_or_else(|e| Err(ledger_read::Unavailable::Broken(format!("the read failed: {e}"))))
}

/// `GET /api/v1/ledger`.
pub(crate) async fn ledger(Extract(state): Extract<Arc<State>>, Query(q): Query<LedgerQuery>) -> Response {
    let files = state.ledger.files.clone();
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    match blocking(move || ledger_read::recent(files, q.kind.as_deref(), q.before, limit)).await {
        Ok(doc) => Json(doc).into_response(),
        Err(why) => unavailable(why),
    }
}

/// `GET /api/v1/ledger/entries/{index}`.
pub(crate) async fn ledger_entry(Extract(state): Extract<Arc<State>>, Path(index): Path<u64>) -> Response {
    let files = state.ledger.files.clone();
    match blocking(move || ledger_read::entry(files, index)).await {
        Ok((_, doc)) => Json(doc).into_response(),
        Err(why) => unavailable(why),
    }
}

/// `GET /api/v1/ledger/entries/{index}/raw`: the entry's bytes, as `verify-receipt --entry`
/// takes them.
pub(crate) async fn ledger_raw(Extract(state): Extract<Arc<State>>, Path(index): Path<u64>) -> Response {
    let files = state.ledger.files.clone();
    match blocking(move || ledger_read::entry_bytes(files, index)).await {
        Ok(bytes) => attachment("application/octet-stream", format!("entry-{index}.json"), bytes),
        Err(why) => unavailable(why),
    }
}

/// `GET /api/v1/ledger/entries/{index}/receipt`: a C2SP tlog-proof receipt.
pub(crate) async fn ledger_receipt(Extract(state): Extract<Arc<State>>, Path(index): Path<u64>) -> Response {
    let files = state.ledger.files.clone();
    match blocking(move || ledger_read::receipt(files, index)).await {
        Ok(text) => attachment("text/plain; charset=utf-8", format!("entry-{index}.tlog-proof"), text),
        Err(why) => unavailable(why),
    }
}

/// `GET /api/v1/cost?by=&period=&metric=&days=`.
pub(crate) async fn cost(Extract(state): Extract<Arc<State>>, Query(q): Query<CostQuery>) -> Response {
    use axum::http::StatusCode;
    let active = state.active();
    match cost_view::document(state.data.as_deref(), &active, &q).await {
        Ok(doc) => Json(&*doc).into_response(),
        Err(cost_view::Unavailable::NoData) => error(
            StatusCode::NOT_FOUND,
            "no_billing_store",
            "this server has no --data directory, where `assay cost ingest` keeps billing data",
        ),
        Err(cost_view::Unavailable::Invalid(why)) => error(StatusCode::BAD_REQUEST, "invalid_query", why),
        Err(cost_view::Unavailable::Broken(why)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "billing_unreadable",
            format!("the billing store cannot be read: {why}"),
        ),
    }
}

/// `?node=dataset:NS:NAME&depth=`.
#[derive(Debug, Default, Clone, serde::Deserialize, serde::Serialize)]
pub(crate) struct ResidencyQuery {
    /// The node to show the lineage around.
    #[serde(default, deserialize_with = "crate::posture::empty_as_none", skip_serializing_if = "Option::is_none")]
    pub(crate) node: Option<String>,
    /// Jobs away from it, each way (3 unless set, at most 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) depth: Option<usize>,
}

/// Answers what the residency document cannot give.
pub(crate) fn residency_unavailable(why: residency_view::Unavailable) -> Response {
    use axum::http::StatusCode;
    match why {
        residency_view::Unavailable::NoGraph => error(
            StatusCode::NOT_FOUND,
            "lineage_unavailable",
            "this server has no --data directory for its lineage graph",
        ),
        residency_view::Unavailable::NoNode(why) => error(StatusCode::NOT_FOUND, "not_found", why),
        residency_view::Unavailable::Broken(why) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", why),
    }
}

/// `GET /api/v1/residency?node=&depth=`.
pub(crate) async fn residency(Extract(state): Extract<Arc<State>>, Query(q): Query<ResidencyQuery>) -> Response {
    match residency_view::document(&state, q.node.as_deref(), residency_view::depth(q.depth)).await {
        Ok(doc) => Json(doc.to_json()).into_response(),
        Err(why) => residency_unavailable(why),
    }
}
