//! `GET /metrics` (Prometheus text format, OpenMetrics) and the middleware that counts and
//! times every request.

use std::sync::Arc;
use std::time::Instant;

use crate::metrics::Snapshot;
use crate::state::State as ServerState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Middleware: counts and times every request by its route (not its raw path, so that
/// cardinality stays bounded).
pub(crate) async fn track(State(state): State<Arc<ServerState>>, request: Request, next: Next) -> Response {
    let endpoint =
        request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().clone();
    let start = Instant::now();
    let response = next.run(request).await;
    let seconds = start.elapsed().as_secs_f64();
    tracing::debug!(%endpoint, %method, status = response.status().as_u16(), ms = seconds * 1000.0, "request");
    state.metrics.request(endpoint, method.as_str(), response.status().as_u16(), seconds);
    response
}

/// `GET /metrics`.
pub(crate) async fn serve(State(state): State<Arc<ServerState>>) -> Response {
    let active = state.active();
    let snapshot = Snapshot {
        revision: active.revision.clone(),
        name: active.name.clone(),
        ledger_entries: state.ledger.size(),
        ledger_lost: state.ledger.lost(),
        ledger_failing: state.ledger.failing().is_some(),
        memo: active.policies.memo_counts(),
        outbox: state.outbox().map(|o| o.counts()),
    };
    match state.metrics.encode(&snapshot) {
        Ok(text) => ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
            .into_response(),
        Err(e) => crate::errors::error(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            format!("encoding metrics: {e}"),
        ),
    }
}
