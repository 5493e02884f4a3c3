//! The server's state: the active policy set (swapped whole, so requests in flight keep the set
//! they started with) and the decision ledger.

use std::sync::{Arc, Mutex, RwLock};

use anyhow::{Context, Result, bail};
use assay_ledger::appender::{Appender, Batching, TrySubmitError};
use assay_ledger::store::Log;
use assay_policy::PolicySet;
use assay_record::{ActivationRecord, EstateAt, Record, RefusalRecord, Time};
use axum::Json;
use axum::extract::State as Extract;
use serde_json::{Value, json};

use crate::Config;
use crate::follow::{Baseline, Candidate, Follower, Look, Refusal};
use crate::outbox::Outbox;
use assay_estate::settings::Actions;

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
    pub(crate) commit: Option<String>,
    pub(crate) require_signed: bool,
    pub(crate) name: Option<String>,
    pub(crate) since: String,
    pub(crate) diagnostics: Vec<String>,
    /// What event policies' findings trigger.
    pub(crate) actions: Actions,
    /// Whether a `system.log` package may define `mask` for decision records.
    pub(crate) has_mask: bool,
    /// The residency rules that lineage flows are checked against.
    pub(crate) residency: assay_estate::residency::Residency,
}

pub(crate) struct State {
    active: RwLock<Arc<Active>>,
    follower: Mutex<Follower>,
    outbox: Option<Arc<Outbox>>,
    pub(crate) metrics: crate::metrics::Metrics,
    lineage: Option<Arc<crate::lineage::Intake>>,
    ledger: RwLock<Option<Appender>>,
    pub(crate) ledger_dir: Option<std::path::PathBuf>,
    pub(crate) failure_mode: FailureMode,
    pub(crate) max_body: usize,
}

/// Now, as records write time (RFC 3339, UTC, microseconds).
pub(crate) fn now() -> String {
    assay_record::Time::now().to_string()
}

/// What one look at the estate's source did.
pub(crate) enum Refreshed {
    Unchanged,
    Activated { previous: String },
    Refused(Refusal),
    Failed(String),
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl State {
    pub(crate) fn start(config: &Config) -> Result<State> {
        let ledger = match &config.ledger {
            Some((dir, signer)) => {
                let log = Log::open(dir, signer.clone()).with_context(|| format!("the ledger {}", dir.display()))?;
                // Decisions are answered before they are durable, so a longer batch costs no
                // request any time, and it writes far fewer partial tiles under load.
                let batching = Batching { max_delay: std::time::Duration::from_millis(50), ..Batching::default() };
                Some(Appender::start(log, batching))
            }
            None => None,
        };
        let mut follower =
            Follower::new(config.estate.clone(), config.data.clone(), config.require_signed, config.constraint_memo)?;
        let described = follower.source.describe();
        let mut refused_at_start = None;
        let candidate = match follower.look(None).with_context(|| format!("reading the estate {described}"))? {
            Look::Good(c) => c,
            Look::Refused(refusal) => match follower.fallback()? {
                Some(Look::Good(c)) => {
                    tracing::warn!(head = %refusal.revision, reasons = ?refusal.reasons, "refused");
                    eprintln!(
                        "assay serve: the head of {described} ({}) is refused: {}; \
                         enforcing the last revision that was activated ({})",
                        refusal.revision,
                        refusal.reasons.join("; "),
                        c.estate.revision()
                    );
                    refused_at_start = Some(refusal);
                    c
                }
                _ => bail!(
                    "the head of {described} ({}) cannot be activated:\n  {}\nand no earlier revision was activated \
                     (none is recorded in --data)",
                    refusal.revision,
                    refusal.reasons.join("\n  ")
                ),
            },
            Look::Unchanged => bail!("reading the estate {described}: nothing to activate"),
        };
        let record = activation_record(&candidate, None);
        let revision = candidate.estate.revision();
        let outbox = match &config.data {
            Some(dir) => {
                let outbox = Arc::new(Outbox::open(dir)?);
                let deliverer = Arc::clone(&outbox);
                // Not joined: what it has not delivered stays in the outbox for the next start.
                std::thread::Builder::new()
                    .name("assay-outbox".into())
                    .spawn(move || crate::outbox::deliver(deliverer))
                    .context("starting the outbox deliverer")?;
                Some(outbox)
            }
            None => None,
        };
        let metrics = crate::metrics::Metrics::new();
        metrics.activations.inc();
        if refused_at_start.is_some() {
            metrics.refusals.inc();
        }
        let lineage = match &config.data {
            Some(dir) => {
                let schemas = match &config.lineage_schemas {
                    Some(d) => Some(
                        assay_lineage::schema::Schemas::load(d)
                            .with_context(|| format!("loading the OpenLineage schemas in {}", d.display()))?,
                    ),
                    None => None,
                };
                Some(Arc::new(crate::lineage::Intake::open(dir, schemas)?))
            }
            None => None,
        };
        let state = State {
            metrics,
            lineage,
            outbox,
            active: RwLock::new(Arc::new(Self::compiled(*candidate))),
            follower: Mutex::new(follower),
            ledger: RwLock::new(ledger),
            ledger_dir: config.ledger.as_ref().map(|(d, _)| d.clone()),
            failure_mode: config.failure_mode,
            max_body: config.max_body,
        };
        if let Some(refusal) = refused_at_start {
            state.record(refusal_record(&refusal, state.active().name.as_ref(), None));
        }
        state.record(record);
        lock(&state.follower).record(&revision);
        Ok(state)
    }

    fn compiled(candidate: Candidate) -> Active {
        let estate = candidate.estate;
        let has_mask = assay_policy::mask::defines_mask(&estate.policies);
        let diagnostics =
            estate.diagnostics.iter().chain(candidate.policies.diagnostics.iter()).map(|d| d.to_string()).collect();
        Active {
            revision: estate.revision(),
            commit: candidate.commit,
            require_signed: estate.settings.require_signed,
            name: estate.settings.name,
            policies: candidate.policies,
            since: now(),
            diagnostics,
            actions: estate.settings.actions,
            has_mask,
            residency: estate.residency,
        }
    }

    /// Looks at the estate's source once and activates a new head when it is good. Blocking:
    /// run it off the async workers. Looks are serialized.
    pub(crate) fn refresh(&self) -> Refreshed {
        let mut follower = lock(&self.follower);
        let active = self.active();
        let baseline = Baseline {
            revision: &active.revision,
            commit: active.commit.as_deref(),
            require_signed: active.require_signed,
        };
        match follower.look(Some(&baseline)) {
            Ok(Look::Unchanged) => Refreshed::Unchanged,
            Ok(Look::Good(candidate)) => {
                let record = activation_record(&candidate, Some(&active.revision));
                let next = Arc::new(Self::compiled(*candidate));
                let revision = next.revision.clone();
                *self.active.write().unwrap_or_else(std::sync::PoisonError::into_inner) = next;
                self.record(record);
                follower.record(&revision);
                self.metrics.activations.inc();
                if let Some(lineage) = &self.lineage {
                    lineage.recheck();
                }
                tracing::info!(%revision, previous = %active.revision, "activated");
                Refreshed::Activated { previous: active.revision.clone() }
            }
            Ok(Look::Refused(refusal)) => {
                tracing::warn!(revision = %refusal.revision, reasons = ?refusal.reasons, "refused");
                self.record(refusal_record(&refusal, active.name.as_ref(), Some(&active.revision)));
                self.metrics.refusals.inc();
                Refreshed::Refused(refusal)
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "reading the estate failed; the active revision stays");
                Refreshed::Failed(format!("{e:#}"))
            }
        }
    }

    /// The active policy set.
    pub(crate) fn active(&self) -> Arc<Active> {
        Arc::clone(&self.active.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// The lineage intake, when the server has a data directory.
    pub(crate) fn lineage(&self) -> Option<Arc<crate::lineage::Intake>> {
        self.lineage.clone()
    }

    /// Starts the residency checker over the lineage graph, when there is one.
    pub(crate) fn start_checker(self: &Arc<Self>, data: Option<&std::path::Path>) -> Result<()> {
        match (&self.lineage, data) {
            (Some(lineage), Some(dir)) => lineage.start_checker(Arc::downgrade(self), dir),
            _ => Ok(()),
        }
    }

    /// The alert outbox, when the server has a data directory.
    pub(crate) fn outbox(&self) -> Option<Arc<Outbox>> {
        self.outbox.clone()
    }

    /// Masks a decision record (`data.system.log.mask`) and queues it for the ledger; returns
    /// once it is queued: a decision that was answered is always in the queue, and so in the
    /// ledger after shutdown. While the queue is full, the request waits (off the async workers)
    /// rather than a decision being dropped.
    pub(crate) async fn log(self: &Arc<Self>, mut record: Record) {
        if !self.recording() {
            return;
        }
        crate::decisions::mask(&self.active(), &mut record);
        let bytes = match record.to_entry() {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "a decision record could not be serialized");
                return;
            }
        };
        let full = {
            let guard = self.ledger.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            let Some(appender) = guard.as_ref() else { return };
            match appender.try_submit(bytes) {
                Ok(_) => return,
                Err(TrySubmitError::Full(bytes)) => bytes,
                Err(TrySubmitError::Append(e)) => {
                    tracing::error!(error = %e, "the decision ledger refused a record");
                    return;
                }
            }
        };
        let state = Arc::clone(self);
        let queued = tokio::task::spawn_blocking(move || {
            let guard = state.ledger.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(appender) = guard.as_ref()
                && let Err(e) = appender.submit(full)
            {
                tracing::error!(error = %e, "the decision ledger refused a record");
            }
        });
        if queued.await.is_err() {
            tracing::error!("queueing a decision record failed");
        }
    }

    /// Queues a record for the ledger (blocking only while the queue is full).
    pub(crate) fn record(&self, record: Record) {
        let guard = self.ledger.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(appender) = guard.as_ref() else { return };
        match record.to_entry() {
            Ok(bytes) => {
                if let Err(e) = appender.submit(bytes) {
                    tracing::error!(error = %e, "the decision ledger refused a record");
                }
            }
            Err(e) => tracing::error!(error = %e, "a decision record could not be serialized"),
        }
    }

    /// Entries durable in the ledger, when there is one.
    pub(crate) fn ledger_size(&self) -> Option<u64> {
        self.ledger.read().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref().map(Appender::durable)
    }

    /// Whether decisions are recorded.
    pub(crate) fn recording(&self) -> bool {
        self.ledger.read().unwrap_or_else(std::sync::PoisonError::into_inner).is_some()
    }

    /// Flushes the ledger: every queued record is durable when this returns. Stops the outbox
    /// deliverer (what it has not delivered stays in the outbox for the next start).
    pub(crate) fn close(&self) -> Result<()> {
        if let Some(outbox) = &self.outbox {
            outbox.stop();
        }
        let appender = self.ledger.write().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(appender) = appender {
            appender.close().map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        Ok(())
    }
}

fn refusal_record(refusal: &Refusal, name: Option<&String>, active: Option<&str>) -> Record {
    Record::Refusal(RefusalRecord {
        time: refusal.time,
        estate: EstateAt { name: name.cloned(), revision: refusal.revision.clone() },
        active: active.map(str::to_string),
        reasons: refusal.reasons.clone(),
    })
}

fn activation_record(candidate: &Candidate, previous: Option<&str>) -> Record {
    let estate = &candidate.estate;
    Record::Activation(ActivationRecord {
        time: Time::now(),
        estate: EstateAt { name: estate.settings.name.clone(), revision: estate.revision() },
        previous: previous.map(str::to_string),
        policies: candidate.policies.len(),
        signatures: candidate.signatures.clone(),
    })
}

/// `GET /v1/status`.
pub(crate) async fn status(Extract(state): Extract<Arc<State>>) -> Json<Value> {
    let active = state.active();
    let (source, refused, last_error, last_checked) = {
        let f = lock(&state.follower);
        (
            f.source.describe(),
            f.refused.iter().rev().cloned().collect::<Vec<_>>(),
            f.last_error.clone(),
            f.last_checked.clone(),
        )
    };
    Json(json!({
        "estate": {"name": active.name, "revision": active.revision, "source": source},
        "active_since": active.since,
        "policies": active.policies.len(),
        "diagnostics": active.diagnostics,
        "refused": refused,
        "last_checked": last_checked,
        "last_error": last_error,
        "ledger": state.ledger_dir.as_ref().map(|d| d.display().to_string()),
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
