//! The ledger over HTTP, read-only (from its directory or its object storage), in the C2SP tlog-tiles layout: `/ledger/checkpoint`,
//! `/ledger/tile/<L>/<N>[.p/<W>]`, `/ledger/tile/entries/<N>[.p/<W>]`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::errors::error;
use crate::state::State as ServerState;

fn allowed(path: &str) -> bool {
    path == "checkpoint"
        || (path.starts_with("tile/")
            && path.split('/').skip(1).all(|part| {
                !part.is_empty()
                    && part != "."
                    && part != ".."
                    && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
            }))
}

/// `GET /ledger/{path}`.
pub(crate) async fn serve(State(state): State<Arc<ServerState>>, Path(path): Path<String>) -> Response {
    let Some(files) = state.ledger.files.clone() else {
        return error(StatusCode::NOT_FOUND, "not_found", "this server keeps no ledger");
    };
    if !allowed(&path) {
        return error(StatusCode::NOT_FOUND, "not_found", format!("{path} is not a tlog-tiles path"));
    }
    let wanted = path.clone();
    let read = tokio::task::spawn_blocking(move || files.read(&wanted))
        .await
        .unwrap_or_else(|e| Err(assay_ledger::store::LogError::Damaged(format!("the read failed: {e}"))));
    match read {
        Ok(Some(bytes)) => {
            let (kind, cache) = if path == "checkpoint" {
                ("text/plain; charset=utf-8", "no-cache")
            } else if path.contains(".p/") {
                ("application/octet-stream", "max-age=60")
            } else {
                // Full tiles and bundles never change.
                ("application/octet-stream", "max-age=31536000, immutable")
            };
            ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, cache)], bytes).into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, "not_found", format!("no {path} in the ledger")),
        // The storage failed: the client may try again (a 404 would say the file is gone).
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, "ledger_unavailable", e.to_string()),
    }
}
