//! `GET /health` and `GET /ready`: whether the server does its job, not only whether it
//! answers. Each reports what is wrong: a ledger that cannot write (it retries), a last look at
//! the estate's source that failed (the active revision stays), an outbox whose oldest message
//! has waited longer than allowed. `/health` answers 500 as OPA's does; `/ready` answers 503, for
//! a readiness probe that takes a replica out of rotation while it cannot log what it decides.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::{State as ServerState, lock};

/// What is wrong now, one line each.
pub(crate) fn problems(state: &ServerState) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(why) = state.ledger.failing() {
        problems.push(format!("the decision ledger cannot write (retrying): {why}"));
    }
    if let Some(why) = state.ledger.storage_failing() {
        problems.push(format!(
            "the shared ledger's storage cannot be written (records wait in PostgreSQL; retrying): {why}"
        ));
    }
    if let Some(why) = lock(&state.observed).last_error.clone() {
        problems.push(format!("the last look at the estate's source failed (the active revision stays): {why}"));
    }
    if let Some(outbox) = state.outbox() {
        match outbox.oldest() {
            Ok(Some((age, error))) if age > state.outbox_stall => problems.push(format!(
                "the outbox's oldest message has waited {} s (more than {} s){}",
                age.as_secs(),
                state.outbox_stall.as_secs(),
                error.map(|e| format!(": {e}")).unwrap_or_default()
            )),
            Ok(_) => {}
            Err(e) => problems.push(format!("the server's store (the outbox) cannot be read: {e}")),
        }
    }
    problems
}

fn answer(state: &ServerState, status: StatusCode) -> Response {
    let problems = problems(state);
    if problems.is_empty() {
        Json(json!({})).into_response()
    } else {
        (status, Json(json!({"problems": problems}))).into_response()
    }
}

/// `GET /health`.
pub(crate) async fn health(State(state): State<Arc<ServerState>>) -> Response {
    answer(&state, StatusCode::INTERNAL_SERVER_ERROR)
}

/// `GET /ready`.
pub(crate) async fn ready(State(state): State<Arc<ServerState>>) -> Response {
    answer(&state, StatusCode::SERVICE_UNAVAILABLE)
}
