//! The server's state: the active revision (`active`), the estate follower, the ledger sink,
//! the outbox, the lineage intake and the metrics, and what happens when a new revision is
//! looked at. Handlers (in the modules of their routes) read it; nothing it uses reads it back.

use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use assay_record::{EstateAt, Record};
use axum::extract::FromRef;

use crate::active::{Active, ActiveCell};
use crate::auth::Auth;
use crate::config::{Config, FailureMode};
use crate::errors::BodyLimit;
use crate::follow::{Candidate, Follower, Look, Refusal};
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::outbox::Outbox;

pub(crate) struct State {
    active: Arc<ActiveCell>,
    pub(crate) follower: Mutex<Follower>,
    /// The estate's source, as shown (credentials hidden).
    pub(crate) source: String,
    /// What the follower last saw, for status; never locked across a fetch.
    pub(crate) observed: Arc<Mutex<crate::follow::Observed>>,
    outbox: Option<Arc<Outbox>>,
    pub(crate) metrics: Arc<Metrics>,
    lineage: Option<Arc<crate::lineage::Intake>>,
    pub(crate) ledger: Arc<Ledger>,
    pub(crate) failure_mode: FailureMode,
    /// What to answer when a decision cannot be logged.
    pub(crate) ledger_failure: FailureMode,
    pub(crate) outbox_stall: std::time::Duration,
    pub(crate) max_body: usize,
    pub(crate) auth: Arc<Auth>,
    /// The drift watch of a cluster, when the server has one.
    drift: Option<Arc<crate::drift::Drift>>,
    /// The data directory, where `assay cost ingest` keeps billing data too.
    pub(crate) data: Option<std::path::PathBuf>,
}

impl FromRef<Arc<State>> for BodyLimit {
    fn from_ref(state: &Arc<State>) -> BodyLimit {
        BodyLimit(state.max_body)
    }
}

/// What one look at the estate's source did.
pub(crate) enum Refreshed {
    Unchanged,
    Activated { previous: String },
    Refused(Refusal),
    Failed(String),
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl State {
    pub(crate) fn start(config: &Config) -> Result<State> {
        let ledger = Arc::new(Ledger::open(
            config.ledger.as_ref(),
            config.ledger_read_only.as_ref(),
            config.decision_inputs,
            config.database.as_deref(),
        )?);
        let rules = crate::follow::Rules {
            require_signed: config.require_signed,
            allow_history_rewrite: config.allow_history_rewrite,
            max_estate_bytes: config.max_estate_bytes,
            fetch_timeout: config.fetch_timeout,
            memo: config.constraint_memo,
        };
        let mut follower = Follower::new(config.estate.clone(), config.data.clone(), rules)?;
        if let Some(url) = &config.database {
            follower = follower.share(&assay_store::Location::Postgres(url.clone()))?;
        }
        let described = follower.source.describe();
        let (candidate, refused_at_start) = follower.start()?;
        if let Some(refusal) = &refused_at_start {
            tracing::warn!(head = %refusal.revision, reasons = ?refusal.reasons, "refused");
            eprintln!(
                "assay serve: the head of {described} ({}) is refused: {}; enforcing the last revision that was \
                 activated ({})",
                refusal.revision,
                refusal.reasons.join("; "),
                candidate.estate.revision()
            );
        }
        let record = activation_record(&candidate, None);
        // Shared state: in PostgreSQL when given, else in SQLite files in the data directory.
        let store = |file: &str| match (&config.database, &config.data) {
            (Some(url), _) => Some(assay_store::Location::Postgres(url.clone())),
            (None, Some(dir)) => Some(assay_store::Location::Sqlite(dir.join(file))),
            (None, None) => None,
        };
        let outbox = match store("outbox.sqlite") {
            Some(location) => {
                let outbox = Arc::new(Outbox::open(&location, config.outbox)?);
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
        let metrics = Arc::new(Metrics::new());
        metrics.activations.inc();
        if refused_at_start.is_some() {
            metrics.refusals.inc();
        }
        let lineage = match store("lineage.sqlite") {
            Some(location) => {
                let schemas = match &config.lineage_schemas {
                    Some(d) => Some(
                        assay_lineage::schema::Schemas::load(d)
                            .with_context(|| format!("loading the OpenLineage schemas in {}", d.display()))?,
                    ),
                    None => None,
                };
                Some(Arc::new(crate::lineage::Intake::open(location, schemas)?))
            }
            None => None,
        };
        let active = Arc::new(ActiveCell::new(Active::from_candidate(candidate)));
        let auth =
            Arc::new(Auth::new(config.auth.clone(), Arc::clone(&active), Arc::clone(&metrics), config.max_body)?);
        let state = State {
            data: config.data.clone(),
            metrics,
            lineage,
            outbox,
            auth,
            active,
            source: described,
            observed: Arc::clone(&follower.observed),
            follower: Mutex::new(follower),
            ledger,
            failure_mode: config.failure_mode,
            ledger_failure: config.ledger_failure,
            outbox_stall: config.outbox_stall,
            max_body: config.max_body,
            drift: match &config.drift {
                Some(d) => Some(Arc::new(crate::drift::Drift::new(
                    d.clone(),
                    config.data.as_deref(),
                    config.database.as_deref(),
                )?)),
                None => None,
            },
        };
        if let Some(refusal) = refused_at_start {
            state.record(refusal_record(&refusal, state.active().name.as_ref(), None));
        }
        lock(&state.follower).record(&state.active().baseline())?;
        state.record(record);
        Ok(state)
    }

    /// Looks at the estate's source once and activates a new head when it is good. Blocking:
    /// run it off the async workers. Looks are serialized.
    pub(crate) fn refresh(&self) -> Refreshed {
        let mut follower = lock(&self.follower);
        let active = self.active();
        match follower.look(Some(&active.baseline())) {
            Ok(Look::Unchanged) => Refreshed::Unchanged,
            Ok(Look::Good(candidate)) => {
                let record = activation_record(&candidate, Some(&active.revision));
                let next = Arc::new(Active::from_candidate(*candidate));
                let revision = next.revision.clone();
                // Recorded before it is enforced: a restart judges the next head against it.
                if let Err(e) = follower.record(&next.baseline()) {
                    tracing::error!(error = %format!("{e:#}"), "not activated: the active revision cannot be recorded");
                    return Refreshed::Failed(format!("{e:#}"));
                }
                self.active.set(next);
                self.record(record);
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
        self.active.get()
    }

    /// The lineage intake, when the server has a data directory.
    pub(crate) fn lineage(&self) -> Option<Arc<crate::lineage::Intake>> {
        self.lineage.clone()
    }

    /// Starts the residency checker over the lineage graph, when there is one.
    pub(crate) fn start_checker(&self) -> Result<()> {
        match &self.lineage {
            Some(lineage) => {
                let checker = crate::lineage::Checker {
                    active: Arc::clone(&self.active),
                    outbox: self.outbox.clone(),
                    ledger: Arc::clone(&self.ledger),
                    metrics: Arc::clone(&self.metrics),
                };
                lineage.start_checker(checker)
            }
            None => Ok(()),
        }
    }

    /// What the drift watch is given of the server.
    pub(crate) fn drift_parts(&self) -> crate::drift::Parts {
        crate::drift::Parts {
            active: Arc::clone(&self.active),
            outbox: self.outbox.clone(),
            ledger: Arc::clone(&self.ledger),
            metrics: Arc::clone(&self.metrics),
        }
    }

    /// The drift watch, when the server watches a cluster.
    pub(crate) fn drift(&self) -> Option<Arc<crate::drift::Drift>> {
        self.drift.clone()
    }

    /// The alert outbox, when the server has a data directory.
    pub(crate) fn outbox(&self) -> Option<Arc<Outbox>> {
        self.outbox.clone()
    }

    /// Masks a decision record with `active`'s `data.system.log.mask` and queues it for the
    /// ledger; returns once it is queued.
    pub(crate) async fn log(&self, record: Record, active: &Active) {
        self.ledger.log(record, active).await;
    }

    /// Why a decision must be refused now: the ledger cannot write and the ledger failure
    /// mode is closed.
    pub(crate) fn unloggable(&self) -> Option<String> {
        if self.ledger_failure != FailureMode::Closed {
            return None;
        }
        self.ledger.failing().map(|why| {
            format!(
                "the decision ledger cannot record decisions ({why}), so none is made (ledger failure mode: closed)"
            )
        })
    }

    /// Queues a record for the ledger.
    pub(crate) fn record(&self, record: Record) {
        self.ledger.record(record);
    }

    /// Flushes the ledger: every queued record is durable when this returns. Stops the outbox
    /// deliverer (what it has not delivered stays in the outbox for the next start).
    pub(crate) fn close(&self) -> Result<()> {
        if let Some(outbox) = &self.outbox {
            outbox.stop();
        }
        self.ledger.close()
    }
}

fn refusal_record(refusal: &Refusal, name: Option<&String>, active: Option<&str>) -> Record {
    let estate = EstateAt { name: name.cloned(), revision: refusal.revision.clone() };
    Record::refusal(refusal.time, estate, active, refusal.reasons.clone())
}

fn activation_record(candidate: &Candidate, previous: Option<&str>) -> Record {
    let estate = EstateAt { name: candidate.estate.settings.name.clone(), revision: candidate.estate.revision() };
    Record::activation(estate, previous, candidate.policies.len(), candidate.signatures.clone())
}
