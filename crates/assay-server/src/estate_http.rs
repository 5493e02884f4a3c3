//! The estate routes: `GET /v1/status` (the active revision, what was refused, the outbox's
//! backlog) and `POST /v1/estate/refresh` (look at the estate's source now, as a Git host's push
//! webhook asks).

use std::sync::Arc;

use axum::Json;
use axum::extract::State as Extract;
use serde_json::{Value, json};

use crate::state::{Refreshed, State, lock};

/// `GET /v1/status`.
pub(crate) async fn status(Extract(state): Extract<Arc<State>>) -> Json<Value> {
    let active = state.active();
    let source = state.source.clone();
    let (refused, last_error, last_checked) = {
        let o = lock(&state.observed);
        (o.refused.iter().rev().cloned().collect::<Vec<_>>(), o.last_error.clone(), o.last_checked.clone())
    };
    Json(json!({
        "estate": {"name": active.name, "revision": active.revision, "source": source},
        "active_since": active.since,
        "policies": active.policies.len(),
        "diagnostics": active.diagnostics,
        "refused": refused,
        "last_checked": last_checked,
        "last_error": last_error,
        "authentication": state.auth.describe(),
        "ledger": state.ledger.location(),
        "ledger_entries": state.ledger.size(),
        "ledger_sequencer": state.ledger.sequencer(),
        "drift_leader": state.drift().and_then(|d| d.leading()),
        "outbox": state.outbox().map(|o| {
            let c = o.counts();
            json!({"pending": c.pending, "delivered": c.delivered, "failed_attempts": c.failed_attempts})
        }),
    }))
}

/// `POST /v1/estate/refresh`: look at the estate's source now (a Git host's push webhook).
/// Answers once the look is done, with what it did.
pub(crate) async fn refresh(Extract(state): Extract<Arc<State>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let s = Arc::clone(&state);
    let outcome = match tokio::task::spawn_blocking(move || s.refresh()).await {
        Ok(o) => o,
        Err(e) => Refreshed::Failed(format!("the refresh task failed: {e}")),
    };
    let active = state.active();
    let body =
        |outcome: &str| json!({"outcome": outcome, "active": {"revision": active.revision, "since": active.since}});
    match outcome {
        Refreshed::Unchanged => Json(body("unchanged")).into_response(),
        Refreshed::Activated { previous } => {
            let mut b = body("activated");
            b["previous"] = json!(previous);
            Json(b).into_response()
        }
        Refreshed::Refused(r) => {
            let mut b = body("refused");
            b["refused"] = json!(r);
            Json(b).into_response()
        }
        Refreshed::Failed(message) => {
            let mut b = body("failed");
            b["error"] = json!(message);
            (axum::http::StatusCode::BAD_GATEWAY, Json(b)).into_response()
        }
    }
}
