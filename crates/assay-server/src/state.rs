//! The server's state: the active policy set (swapped whole, so requests in flight keep the set
//! they started with) and the decision ledger.

use std::sync::{Arc, RwLock};

use anyhow::{Context, Result};
use assay_estate::source;
use assay_ledger::appender::{Appender, Batching};
use assay_ledger::store::Log;
use assay_policy::PolicySet;
use axum::Json;
use axum::extract::State as Extract;
use serde_json::{Value, json};

use crate::Config;

/// What to answer when a policy fails to evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailureMode {
    /// Refuse (the default): an error never lets a request through.
    #[default]
    Closed,
    /// Allow, with a warning that says so.
    Open,
}

/// One compiled revision of the estate.
pub(crate) struct Active {
    pub(crate) policies: PolicySet,
    pub(crate) revision: String,
    pub(crate) name: Option<String>,
    pub(crate) since: String,
    pub(crate) diagnostics: Vec<String>,
}

pub(crate) struct State {
    active: RwLock<Arc<Active>>,
    ledger: RwLock<Option<Appender>>,
    pub(crate) ledger_dir: Option<std::path::PathBuf>,
    pub(crate) failure_mode: FailureMode,
    pub(crate) max_body: usize,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl State {
    pub(crate) fn start(config: &Config) -> Result<State> {
        let estate = source::load_dir(&config.estate)
            .with_context(|| format!("reading the estate {}", config.estate.display()))?;
        let policies = PolicySet::from_estate(&estate);
        let diagnostics: Vec<String> =
            estate.diagnostics.iter().chain(policies.diagnostics.iter()).map(|d| d.to_string()).collect();
        let active = Active {
            revision: estate.revision(),
            name: estate.settings.name.clone(),
            policies,
            since: now(),
            diagnostics,
        };
        let ledger = match &config.ledger {
            Some((dir, signer)) => {
                let log = Log::open(dir, signer.clone()).with_context(|| format!("the ledger {}", dir.display()))?;
                Some(Appender::start(log, Batching::default()))
            }
            None => None,
        };
        let state = State {
            active: RwLock::new(Arc::new(active)),
            ledger: RwLock::new(ledger),
            ledger_dir: config.ledger.as_ref().map(|(d, _)| d.clone()),
            failure_mode: config.failure_mode,
            max_body: config.max_body,
        };
        let active = state.active();
        state.record(json!({
            "type": "assay.dev/record/activation/v1",
            "time": now(),
            "estate": {"name": active.name, "revision": active.revision},
            "policies": active.policies.len(),
        }));
        Ok(state)
    }

    /// The active policy set.
    pub(crate) fn active(&self) -> Arc<Active> {
        Arc::clone(&self.active.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Queues a decision record off the async workers, and returns once it is queued: a
    /// decision that was answered is always in the queue, and so in the ledger after shutdown.
    pub(crate) async fn log(self: &Arc<Self>, record: Value) {
        if !self.recording() {
            return;
        }
        let state = Arc::clone(self);
        if tokio::task::spawn_blocking(move || state.record(record)).await.is_err() {
            tracing::error!("queueing a decision record failed");
        }
    }

    /// Queues a record for the ledger (blocking only while the queue is full).
    pub(crate) fn record(&self, record: Value) {
        let guard = self.ledger.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(appender) = guard.as_ref() else { return };
        match crate::decisions::entry(&record) {
            Ok(bytes) => {
                if let Err(e) = appender.submit(bytes) {
                    tracing::error!(error = %e, "the decision ledger refused a record");
                }
            }
            Err(e) => tracing::error!(error = %e, "a decision record could not be serialized"),
        }
    }

    /// Whether decisions are recorded.
    pub(crate) fn recording(&self) -> bool {
        self.ledger.read().unwrap_or_else(std::sync::PoisonError::into_inner).is_some()
    }

    /// Flushes the ledger: every queued record is durable when this returns.
    pub(crate) fn close(&self) -> Result<()> {
        let appender = self.ledger.write().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(appender) = appender {
            appender.close().map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        Ok(())
    }
}

/// `GET /v1/status`.
pub(crate) async fn status(Extract(state): Extract<Arc<State>>) -> Json<Value> {
    let active = state.active();
    Json(json!({
        "estate": {"name": active.name, "revision": active.revision},
        "active_since": active.since,
        "policies": active.policies.len(),
        "diagnostics": active.diagnostics,
        "refused": [],
        "ledger": state.ledger_dir.as_ref().map(|d| d.display().to_string()),
    }))
}
