//! Bounded work per request: at most so many requests in flight (more are answered 503 with
//! `Retry-After` at once, not queued), and a deadline for each (answered 503 when it passes).
//! Liveness and readiness probes are exempt, so that a busy server is not restarted for being
//! busy; the estate refresh is bounded by the fetch timeout instead.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::Semaphore;

use crate::errors::error;
use crate::metrics::Metrics;

/// The limits, shared by every request.
pub(crate) struct Limits {
    slots: Semaphore,
    max: usize,
    timeout: Duration,
    metrics: Arc<Metrics>,
}

impl Limits {
    pub(crate) fn new(max_concurrent: usize, timeout: Duration, metrics: Arc<Metrics>) -> Limits {
        Limits { slots: Semaphore::new(max_concurrent), max: max_concurrent, timeout, metrics }
    }
}

fn exempt(path: &str) -> (bool, bool) {
    let probe = matches!(path, "/health" | "/ready");
    (probe, probe || path == "/v1/estate/refresh")
}

/// Middleware around every route.
pub(crate) async fn limit(State(limits): State<Arc<Limits>>, request: Request, next: Next) -> Response {
    let (no_slot, no_deadline) = exempt(request.uri().path());
    let _slot = if no_slot {
        None
    } else {
        match limits.slots.try_acquire() {
            Ok(slot) => Some(slot),
            Err(_) => {
                limits.metrics.shed("concurrency");
                let mut r = error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded",
                    format!("{} requests are in flight, the most this server takes; try again", limits.max),
                );
                r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return r;
            }
        }
    };
    if no_deadline {
        return next.run(request).await;
    }
    match tokio::time::timeout(limits.timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            limits.metrics.shed("timeout");
            let mut r = error(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!("the request took longer than {} ms; stopped", limits.timeout.as_millis()),
            );
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
    }
}
