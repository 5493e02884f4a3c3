//! `GET /metrics`: Prometheus text format (OpenMetrics) with requests and latency by endpoint,
//! decisions by kind and result, the active estate revision as an info metric, estate
//! activations and refusals, the ledger's size and the outbox's backlog.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::state::State as ServerState;

type Labels = Vec<(&'static str, String)>;

fn latency_histogram() -> Histogram {
    // 50 µs to about 6.5 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 18))
}

/// The server's metrics.
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    latency: Family<Labels, Histogram, fn() -> Histogram>,
    decisions: Family<Labels, Counter>,
    pub(crate) activations: Counter,
    pub(crate) refusals: Counter,
    estate: Family<Labels, Gauge>,
    ledger_entries: Gauge,
    outbox_pending: Gauge,
    outbox_delivered: Gauge,
    outbox_failed: Gauge,
    memo_hits: Gauge,
    memo_misses: Gauge,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("assay");
        let requests = Family::<Labels, Counter>::default();
        registry.register("http_requests", "HTTP requests by endpoint, method and status", requests.clone());
        let latency = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        registry.register("http_request_duration_seconds", "HTTP request latency by endpoint", latency.clone());
        let decisions = Family::<Labels, Counter>::default();
        registry.register("decisions", "Decisions by kind (admission, data, event) and result", decisions.clone());
        let activations = Counter::default();
        registry.register("estate_activations", "Estate revisions activated", activations.clone());
        let refusals = Counter::default();
        registry.register("estate_refusals", "Estate heads refused (broken or not signed)", refusals.clone());
        let estate = Family::<Labels, Gauge>::default();
        registry.register("estate_active", "The active estate revision (always 1)", estate.clone());
        let mut gauge = |name: &str, help: &str| {
            let gauge = Gauge::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let ledger_entries = gauge("ledger_entries", "Entries durable in the decision ledger");
        let outbox_pending = gauge("outbox_pending", "Alerts and quarantine requests waiting for delivery");
        let outbox_delivered = gauge("outbox_delivered", "Alerts and quarantine requests delivered since start");
        let outbox_failed = gauge("outbox_failed_attempts", "Failed delivery attempts since start");
        let memo_hits = gauge(
            "constraint_memo_hits",
            "Constraint answers given from a template's memo since the active revision was activated",
        );
        let memo_misses = gauge(
            "constraint_memo_misses",
            "Constraint answers evaluated (not in the memo) since the active revision was activated",
        );
        Metrics {
            registry,
            requests,
            latency,
            decisions,
            activations,
            refusals,
            estate,
            ledger_entries,
            outbox_pending,
            outbox_delivered,
            outbox_failed,
            memo_hits,
            memo_misses,
        }
    }

    /// Counts one decision.
    pub(crate) fn decision(&self, kind: &'static str, result: &str) {
        self.decisions.get_or_create(&vec![("kind", kind.to_string()), ("result", result.to_string())]).inc();
    }
}

/// Middleware: counts and times every request by its route (not its raw path, so that
/// cardinality stays bounded).
pub(crate) async fn track(State(state): State<Arc<ServerState>>, request: Request, next: Next) -> Response {
    let endpoint =
        request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().as_str().to_string();
    let start = Instant::now();
    let response = next.run(request).await;
    let m = &state.metrics;
    let seconds = start.elapsed().as_secs_f64();
    tracing::debug!(%endpoint, %method, status = response.status().as_u16(), ms = seconds * 1000.0, "request");
    m.latency.get_or_create(&vec![("endpoint", endpoint.clone())]).observe(seconds);
    m.requests
        .get_or_create(&vec![
            ("endpoint", endpoint),
            ("method", method),
            ("status", response.status().as_u16().to_string()),
        ])
        .inc();
    response
}

/// `GET /metrics`.
pub(crate) async fn serve(State(state): State<Arc<ServerState>>) -> Response {
    let m = &state.metrics;
    let active = state.active();
    m.estate.clear();
    m.estate
        .get_or_create(&vec![("revision", active.revision.clone()), ("name", active.name.clone().unwrap_or_default())])
        .set(1);
    m.ledger_entries.set(state.ledger_size().map_or(0, |n| n as i64));
    let (hits, misses) = active.policies.memo_counts();
    m.memo_hits.set(hits as i64);
    m.memo_misses.set(misses as i64);
    if let Some(outbox) = state.outbox() {
        let c = outbox.counts();
        m.outbox_pending.set(c.pending as i64);
        m.outbox_delivered.set(c.delivered as i64);
        m.outbox_failed.set(c.failed_attempts as i64);
    }
    let mut text = String::new();
    if let Err(e) = encode(&mut text, &m.registry) {
        return crate::errors::error(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            format!("encoding metrics: {e}"),
        );
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}
