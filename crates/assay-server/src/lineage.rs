//! The lineage intake behind `POST /api/v1/lineage`, and the residency checker.
//!
//! - One writer thread owns the graph's write connection. Requests queue their validated event
//!   and wait; the writer takes everything queued (up to [`GROUP`] events) and applies it in one
//!   SQLite transaction, so one fsync covers many requests under load (group commit), and answers
//!   each request once the transaction is durable.
//! - Queries (`GET /api/v1/lineage`) use their own connection, so they never wait for writes.
//! - After new events with a job are committed, the checker thread checks the graph against the
//!   active estate's residency rules. A finding that was not reported before is pushed to the
//!   alert outbox (stored before it is marked reported, so a crash in between repeats an alert
//!   rather than losing one) and written to the ledger. The checker also runs at start (events
//!   acknowledged before a crash are checked) and when a new estate revision is activated. It
//!   runs at most once per [`CHECK_EVERY`], and pauses nine times as long as its last run took,
//!   so it never takes more than a tenth of a core; events arriving meanwhile are covered by the
//!   next run.

use assay_store::Location;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use assay_lineage::Event;
use assay_lineage::graph::{Applied, Graph};
use assay_lineage::schema::Schemas;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::active::ActiveCell;
use crate::alerts;
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::outbox::Outbox;

/// What the residency checker needs: the active rules, where alerts go, the ledger, and the
/// metrics it counts findings in.
pub(crate) struct Checker {
    pub(crate) active: Arc<ActiveCell>,
    pub(crate) outbox: Option<Arc<Outbox>>,
    pub(crate) ledger: Arc<Ledger>,
    pub(crate) metrics: Arc<Metrics>,
}

/// The most events applied in one transaction.
const GROUP: usize = 1024;
/// How many requests may wait for the writer before new ones wait to queue.
const QUEUE: usize = 8192;
/// The shortest time between two residency checks.
pub(crate) const CHECK_EVERY: Duration = Duration::from_secs(1);

struct Pending {
    event: Event,
    done: oneshot::Sender<Result<Applied, String>>,
}

/// The intake: the writer's queue, the query connection, the checker's wake-up.
pub(crate) struct Intake {
    queue: mpsc::Sender<Pending>,
    reader: Mutex<Graph>,
    wake: SyncSender<()>,
    checks: Mutex<Option<Receiver<()>>>,
    location: Location,
    pub(crate) schemas: Option<Schemas>,
}

impl Intake {
    /// Opens the graph (a SQLite file, or PostgreSQL) and starts the writer.
    pub(crate) fn open(location: Location, schemas: Option<Schemas>) -> Result<Intake> {
        if let Location::Sqlite(path) = &location
            && let Some(dir) = path.parent()
        {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let open =
            || Graph::at(&location).with_context(|| format!("opening the lineage graph in {}", location.redacted()));
        let writer = open()?;
        let reader = open()?;
        let (queue, rx) = mpsc::channel(QUEUE);
        let (wake, checks) = std::sync::mpsc::sync_channel(1);
        let woken = wake.clone();
        std::thread::Builder::new()
            .name("assay-lineage-writer".into())
            .spawn(move || write(writer, rx, &woken))
            .context("starting the lineage writer")?;
        // A first check at start covers events acknowledged before a restart.
        let _ = wake.try_send(());
        Ok(Intake { queue, reader: Mutex::new(reader), wake, checks: Mutex::new(Some(checks)), location, schemas })
    }

    /// Applies an event; returns once it is durable in the graph.
    pub(crate) async fn apply(&self, event: Event) -> Result<Applied, String> {
        let (done, answer) = oneshot::channel();
        self.queue.send(Pending { event, done }).await.map_err(|_| "the lineage writer has stopped".to_string())?;
        answer.await.map_err(|_| "the lineage writer has stopped".to_string())?
    }

    /// Runs `f` on the query connection, off the async workers.
    pub(crate) async fn query<T: Send + 'static>(
        self: &std::sync::Arc<Self>,
        f: impl FnOnce(&Graph) -> Result<T, assay_lineage::graph::GraphError> + Send + 'static,
    ) -> Result<T, String> {
        let intake = std::sync::Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let graph = intake.reader.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&graph).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// Asks for a residency check (a new estate revision was activated).
    pub(crate) fn recheck(&self) {
        let _ = self.wake.try_send(());
    }

    /// Starts the checker thread; it stops when the intake is gone (its wake-ups end).
    pub(crate) fn start_checker(&self, checker: Checker) -> Result<()> {
        let Some(wakes) = self.checks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() else {
            return Ok(());
        };
        let mut graph = Graph::at(&self.location)
            .with_context(|| format!("opening the lineage graph in {}", self.location.redacted()))?;
        std::thread::Builder::new()
            .name("assay-lineage-check".into())
            .spawn(move || {
                while wakes.recv().is_ok() {
                    let started = std::time::Instant::now();
                    if let Err(e) = check(&checker, &mut graph) {
                        tracing::error!(error = %format!("{e:#}"), "the lineage check (residency, data quality) failed; it runs again on the next event");
                    }
                    // A check of a large graph takes long: pause nine times as long after it, so
                    // that checking takes at most a tenth of a core however fast events arrive.
                    std::thread::sleep(CHECK_EVERY.max(started.elapsed() * 9));
                }
            })
            .context("starting the lineage checker")?;
        Ok(())
    }
}

/// The writer: group commits until every sender is gone.
fn write(mut graph: Graph, mut queue: mpsc::Receiver<Pending>, wake: &SyncSender<()>) {
    let mut batch = Vec::with_capacity(GROUP);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < GROUP {
            match queue.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let (events, answers): (Vec<Event>, Vec<_>) = batch.drain(..).map(|p| (p.event, p.done)).unzip();
        let results: Vec<Result<Applied, String>> = match graph.apply_all(&events) {
            Ok(applied) => applied.into_iter().map(Ok).collect(),
            // The transaction rolled back whole: apply one by one, so that one failure is
            // answered as such and the rest are kept.
            // The store is out of reach: every event of the group is answered so, at once.
            Err(assay_lineage::graph::GraphError::Store(e)) if e.is_unreachable() => {
                tracing::error!(error = %e, "the lineage store is out of reach; events are refused until it is back");
                events.iter().map(|_| Err(format!("the lineage store is out of reach: {e}"))).collect()
            }
            Err(e) => {
                tracing::warn!(error = %e, "a group commit failed; applying its events one by one");
                events.iter().map(|event| graph.apply(event).map_err(|e| e.to_string())).collect()
            }
        };
        let flows = events.iter().zip(&results).any(|(e, r)| matches!(r, Ok(Applied::New)) && e.job.is_some());
        for (answer, result) in answers.into_iter().zip(results) {
            let _ = answer.send(result);
        }
        if flows {
            // Full: a check is already due, and covers these events too.
            let _ = wake.try_send(());
        }
    }
}

/// One check of the graph: new residency findings (when the estate has rules) and new
/// data-quality changes go to the outbox and the ledger, each once.
fn check(checker: &Checker, graph: &mut Graph) -> Result<()> {
    let active = checker.active.get();
    let residency = if active.residency.rules.is_empty() {
        Vec::new()
    } else {
        assay_lineage::check::check(graph, &active.residency)?
    };
    let quality = assay_lineage::quality::check(graph, &assay_detect::runs::Options::default())?;
    let keys: Vec<String> = residency
        .iter()
        .map(assay_lineage::check::Finding::key)
        .chain(quality.iter().map(assay_lineage::quality::Finding::key))
        .collect();
    let fresh = graph.unreported(&keys)?;
    let (fresh_residency, fresh_quality) = fresh.split_at(residency.len());
    let (residency_keys, quality_keys) = keys.split_at(residency.len());
    let residency: Vec<(&assay_lineage::check::Finding, &String)> =
        residency.iter().zip(residency_keys).zip(fresh_residency).filter_map(|(f, new)| new.then_some(f)).collect();
    let quality: Vec<(&assay_lineage::quality::Finding, &String)> =
        quality.iter().zip(quality_keys).zip(fresh_quality).filter_map(|(f, new)| new.then_some(f)).collect();
    if residency.is_empty() && quality.is_empty() {
        return Ok(());
    }
    let time = assay_record::Time::now();
    let estate = active.estate_at();
    // Neither kind asks for a quarantine: residency findings are about data that has already
    // moved, quality changes are advice for the data's owners. Each message carries its
    // finding's key, so that replicas sharing the graph (and a restart between storing and
    // marking) store it once.
    let mut messages = Vec::new();
    let about = |kind: &str, key: &str, finding: serde_json::Value| json!({"kind": kind, "key": key, "finding": finding, "estate": estate});
    let mut alert = |about: serde_json::Value, subject: &str, key: &str| {
        let alert = alerts::Finding { about, subject: Some(subject), quarantine: None, key: Some(key) };
        messages.extend(alerts::messages(&active.actions, &alert));
    };
    for (finding, key) in &residency {
        alert(about("residency", key, json!(finding)), &finding.dataset, key);
    }
    for (finding, key) in &quality {
        alert(about("quality", key, json!(finding)), &finding.dataset, key);
    }
    if !messages.is_empty() {
        let outbox =
            checker.outbox.as_ref().context("assay.yaml configures alert actions, but the server has no outbox")?;
        outbox.push(&messages).context("storing the lineage alerts")?;
    }
    // Stored before marked: a crash in between stores again (once, by key) rather than losing
    // an alert. The finding is logged by the one replica that marks it.
    let keys: Vec<String> =
        residency.iter().map(|(_, k)| (*k).clone()).chain(quality.iter().map(|(_, k)| (*k).clone())).collect();
    let marked = graph.mark_reported(&keys, &time.to_string())?;
    let (marked_residency, marked_quality) = marked.split_at(residency.len());
    for ((finding, _), _) in residency.iter().zip(marked_residency).filter(|(_, m)| **m) {
        tracing::warn!(rule = %finding.rule, "{}", finding.message);
        checker.metrics.decision("residency", "finding");
        checker.ledger.record(assay_record::Record::residency_finding(finding, time, estate.clone()));
    }
    for ((finding, _), _) in quality.iter().zip(marked_quality).filter(|(_, m)| **m) {
        tracing::warn!(dataset = %finding.dataset, metric = %finding.metric, "{}", finding.message);
        checker.metrics.decision("quality", "finding");
        checker.ledger.record(assay_record::Record::quality_finding(finding, time));
    }
    Ok(())
}
