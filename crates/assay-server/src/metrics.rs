//! The server's metrics: requests and latency by endpoint, decisions by kind and result, the
//! active estate revision as an info metric, estate activations and refusals, the ledger's size
//! and the outbox's backlog, in a prometheus-client registry. `metrics_http` serves them.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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
    auth_refused: Family<Labels, Counter>,
    shed: Family<Labels, Counter>,
    pub(crate) activations: Counter,
    pub(crate) refusals: Counter,
    estate: Family<Labels, Gauge>,
    ledger_entries: Gauge,
    ledger_lost: Gauge,
    ledger_failing: Gauge,
    outbox_pending: Gauge,
    outbox_delivered: Gauge,
    outbox_failed: Gauge,
    memo_hits: Gauge,
    memo_misses: Gauge,
    drift: Family<Labels, Gauge>,
    audit: Family<Labels, Gauge>,
    comparisons: Family<Labels, Counter>,
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
        let auth_refused = Family::<Labels, Counter>::default();
        registry.register(
            "auth_refused",
            "Requests refused by route group and reason (unauthorized: no or wrong credential; forbidden: \
             the authorization policy)",
            auth_refused.clone(),
        );
        let shed = Family::<Labels, Counter>::default();
        registry.register(
            "requests_shed",
            "Requests answered 503 by reason (concurrency: too many in flight; timeout: past the request deadline)",
            shed.clone(),
        );
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
        let ledger_lost = gauge(
            "ledger_records_lost",
            "Records dropped since start because the ledger could not write them (ledger failure mode open)",
        );
        let ledger_failing = gauge("ledger_failing", "1 while the decision ledger cannot write (it retries), else 0");
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
        let drift = Family::<Labels, Gauge>::default();
        registry.register("drift_objects", "Objects of the watched cluster by drift status", drift.clone());
        let audit = Family::<Labels, Gauge>::default();
        registry.register(
            "drift_audit_findings",
            "Policy findings on the watched cluster's live objects",
            audit.clone(),
        );
        let comparisons = Family::<Labels, Counter>::default();
        registry.register(
            "drift_comparisons",
            "Comparisons and audits of the watched cluster (one per change that changed something, and per resync)",
            comparisons.clone(),
        );
        Metrics {
            registry,
            drift,
            audit,
            comparisons,
            requests,
            latency,
            decisions,
            auth_refused,
            shed,
            activations,
            refusals,
            estate,
            ledger_entries,
            ledger_lost,
            ledger_failing,
            outbox_pending,
            outbox_delivered,
            outbox_failed,
            memo_hits,
            memo_misses,
        }
    }

    /// Sets the drift gauges after a comparison (objects by status, audit findings by action) and
    /// counts it.
    pub(crate) fn drift(&self, cluster: &str, counts: &[(&str, usize)], findings: &[(&str, usize)]) {
        self.comparisons.get_or_create(&vec![("cluster", cluster.to_string())]).inc();
        for (status, n) in counts {
            let labels = vec![("cluster", cluster.to_string()), ("status", (*status).to_string())];
            self.drift.get_or_create(&labels).set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        for (action, n) in findings {
            let labels = vec![("cluster", cluster.to_string()), ("action", (*action).to_string())];
            self.audit.get_or_create(&labels).set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
    }

    /// Counts a request answered 503 because of a limit.
    pub(crate) fn shed(&self, reason: &str) {
        self.shed.get_or_create(&vec![("reason", reason.to_string())]).inc();
    }

    /// Counts a request refused by authentication or authorization.
    pub(crate) fn auth_refused(&self, group: &str, reason: &str) {
        self.auth_refused.get_or_create(&vec![("group", group.to_string()), ("reason", reason.to_string())]).inc();
    }

    /// Counts and times one request by its route. Methods outside HTTP's standard set are
    /// counted as `other`, so that a client cannot make up label values.
    pub(crate) fn request(&self, endpoint: String, method: &str, status: u16, seconds: f64) {
        const KNOWN: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"];
        let method = KNOWN.iter().find(|m| **m == method).map_or("other", |m| m).to_string();
        self.latency.get_or_create(&vec![("endpoint", endpoint.clone())]).observe(seconds);
        self.requests
            .get_or_create(&vec![("endpoint", endpoint), ("method", method), ("status", status.to_string())])
            .inc();
    }

    /// The metrics in the OpenMetrics text format, with the gauges set from `now`.
    pub(crate) fn encode(&self, now: &Snapshot) -> Result<String, std::fmt::Error> {
        self.estate.clear();
        self.estate
            .get_or_create(&vec![("revision", now.revision.clone()), ("name", now.name.clone().unwrap_or_default())])
            .set(1);
        self.ledger_entries.set(now.ledger_entries.map_or(0, |n| n as i64));
        self.ledger_lost.set(now.ledger_lost as i64);
        self.ledger_failing.set(i64::from(now.ledger_failing));
        self.memo_hits.set(now.memo.0 as i64);
        self.memo_misses.set(now.memo.1 as i64);
        if let Some(c) = now.outbox {
            self.outbox_pending.set(c.pending as i64);
            self.outbox_delivered.set(c.delivered as i64);
            self.outbox_failed.set(c.failed_attempts as i64);
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }

    /// Counts one decision.
    pub(crate) fn decision(&self, kind: &'static str, result: &str) {
        self.decisions.get_or_create(&vec![("kind", kind.to_string()), ("result", result.to_string())]).inc();
    }
}

/// What the gauges show at a scrape.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    /// The active revision and the estate's name.
    pub(crate) revision: String,
    pub(crate) name: Option<String>,
    /// Entries durable in the ledger.
    pub(crate) ledger_entries: Option<u64>,
    /// Records the ledger dropped, and whether it is failing now.
    pub(crate) ledger_lost: u64,
    pub(crate) ledger_failing: bool,
    /// Constraint memo (hits, misses).
    pub(crate) memo: (u64, u64),
    /// The outbox's counts.
    pub(crate) outbox: Option<crate::outbox::Counts>,
}
