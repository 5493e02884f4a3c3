//! The server's ledger sink: records are queued for the ledger's single writer (an
//! [`Appender`]), which makes them durable in batches. A decision is queued before it is
//! answered, so an answered decision is in the ledger after a shutdown; while the queue is full,
//! the request waits (off the async workers) rather than a record being dropped.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::{Context, Result};
use assay_ledger::appender::{Appender, Batching, TrySubmitError};
use assay_ledger::files::Files;
use assay_ledger::note::NoteSigner;
use assay_ledger::store::Log;
use assay_record::Record;

use crate::active::Active;

/// Where records go.
enum Sink {
    /// This server's own log.
    Local(Appender),
    /// A log several replicas share.
    Shared(crate::ledger_shared::Shared),
}

/// Where records go: the ledger, when the server has one.
pub(crate) struct Ledger {
    appender: RwLock<Option<Sink>>,
    /// Records dropped because the ledger could not take them (failure mode open).
    lost: std::sync::atomic::AtomicU64,
    /// What of a decision's input its record keeps.
    inputs: crate::decisions::DecisionInputs,
    /// The ledger's files (a directory, or a prefix on object storage), for reading.
    pub(crate) files: Option<Arc<dyn Files>>,
    /// What `/ledger/…` served lately.
    pub(crate) tiles: crate::tile_cache::TileCache,
}

/// Whether a ledger location is on object storage (`s3://…`, `gs://…`, `az://…`).
fn is_remote(location: &Path) -> bool {
    assay_store::objects::is_url(&location.to_string_lossy())
}

fn files_at(location: &Path) -> Result<Arc<dyn Files>> {
    assay_store::objects::log_files(location).map_err(anyhow::Error::msg)
}

impl Ledger {
    /// Opens the ledger in `dir` (none: records are not kept).
    pub(crate) fn open(
        ledger: Option<&(PathBuf, NoteSigner)>,
        read_only: Option<&PathBuf>,
        inputs: crate::decisions::DecisionInputs,
        database: Option<&str>,
    ) -> Result<Ledger> {
        let appender = match (ledger, database) {
            (Some((location, signer)), Some(url)) => {
                let files = files_at(location)?;
                let not_a_log = || format!("the ledger {} (create it with `assay log init`)", location.display());
                if is_remote(location) {
                    assay_ledger::store::read_checkpoint_note_in(files.as_ref()).with_context(not_a_log)?;
                } else {
                    assay_ledger::store::read_checkpoint_note(location).with_context(not_a_log)?;
                }
                let dir = (!is_remote(location)).then(|| location.clone());
                Some(Sink::Shared(crate::ledger_shared::Shared::start(url, files, dir, signer.clone())?))
            }
            (Some((location, _)), None) if is_remote(location) => anyhow::bail!(
                "the ledger {} is on object storage, where one writer is chosen through PostgreSQL: \
                 give --database postgres://… as well (or keep the ledger in a directory)",
                location.display()
            ),
            (Some((dir, signer)), None) => {
                let log = Log::open(dir, signer.clone()).with_context(|| format!("the ledger {}", dir.display()))?;
                // Decisions are answered before they are durable, so a longer batch costs no
                // request any time, and it writes far fewer partial tiles under load.
                let batching = Batching { max_delay: std::time::Duration::from_millis(50), ..Batching::default() };
                Some(Sink::Local(Appender::start(log, batching)))
            }
            (None, _) => None,
        };
        Ok(Ledger {
            appender: RwLock::new(appender),
            lost: std::sync::atomic::AtomicU64::new(0),
            inputs,
            files: ledger.map(|(d, _)| d).or(read_only).map(|d| files_at(d)).transpose()?,
            tiles: crate::tile_cache::TileCache::new(),
        })
    }

    fn guard(&self) -> std::sync::RwLockReadGuard<'_, Option<Sink>> {
        self.appender.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Masks a decision record with `active`'s `data.system.log.mask` and queues it; returns
    /// once it is queued.
    pub(crate) async fn log(self: &Arc<Self>, mut record: Record, active: &Active) {
        if !self.recording() {
            return;
        }
        crate::decisions::mask(active, self.inputs, &mut record);
        let bytes = match record.to_entry() {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "a decision record could not be serialized");
                return;
            }
        };
        let shared = matches!(self.guard().as_ref(), Some(Sink::Shared(_)));
        if shared {
            return self.hand_over(bytes).await;
        }
        let full = {
            let guard = self.guard();
            let Some(Sink::Local(appender)) = guard.as_ref() else { return };
            let Some(full) = self.offer(appender, bytes) else { return };
            full
        };
        let ledger = Arc::clone(self);
        let queued = tokio::task::spawn_blocking(move || {
            if let Some(Sink::Local(appender)) = ledger.guard().as_ref()
                && let Err(e) = appender.submit(full)
            {
                tracing::error!(error = %e, "the decision ledger refused a record");
            }
        });
        if queued.await.is_err() {
            tracing::error!("queueing a decision record failed");
        }
    }

    /// Hands a decision's record to the shared ledger and waits until PostgreSQL has it (at
    /// most [`crate::ledger_shared::HANDOVER_WAIT`]; it stays queued after that).
    async fn hand_over(self: &Arc<Self>, bytes: Vec<u8>) {
        let (done, handed) = tokio::sync::oneshot::channel();
        let full = {
            let guard = self.guard();
            let Some(Sink::Shared(shared)) = guard.as_ref() else { return };
            match shared.try_submit(bytes, Some(done)) {
                Ok(()) => None,
                Err(_) if shared.failing().is_some() => {
                    self.lose();
                    return;
                }
                Err(full) => Some(full),
            }
        };
        if let Some((bytes, done)) = full {
            let ledger = Arc::clone(self);
            let queued = tokio::task::spawn_blocking(move || {
                if let Some(Sink::Shared(shared)) = ledger.guard().as_ref() {
                    shared.submit(bytes, done);
                }
            });
            if queued.await.is_err() {
                tracing::error!("queueing a decision record failed");
                return;
            }
        }
        if tokio::time::timeout(crate::ledger_shared::HANDOVER_WAIT, handed).await.is_err() {
            tracing::warn!("a decision is answered before its record reached the shared ledger's queue");
        }
    }

    /// Queues a record (blocking only while the queue is full).
    pub(crate) fn record(&self, record: Record) {
        let guard = self.guard();
        let appender = match guard.as_ref() {
            None => return,
            Some(Sink::Shared(shared)) => {
                match record.to_entry() {
                    Ok(bytes) => match shared.try_submit(bytes, None) {
                        Ok(()) => {}
                        Err(_) if shared.failing().is_some() => self.lose(),
                        Err((bytes, _)) => shared.submit(bytes, None),
                    },
                    Err(e) => tracing::error!(error = %e, "a record could not be serialized"),
                }
                return;
            }
            Some(Sink::Local(appender)) => appender,
        };
        match record.to_entry() {
            Ok(bytes) => {
                if let Some(full) = self.offer(appender, bytes)
                    && let Err(e) = appender.submit(full)
                {
                    tracing::error!(error = %e, "the decision ledger refused a record");
                }
            }
            Err(e) => tracing::error!(error = %e, "a record could not be serialized"),
        }
    }

    /// Queues an entry without waiting. `Some` gives it back when the queue is full while the
    /// ledger writes: the caller waits for room. While writing fails the queue does not drain,
    /// so an entry that finds it full is dropped and counted rather than holding its caller
    /// for good.
    fn offer(&self, appender: &Appender, bytes: Vec<u8>) -> Option<Vec<u8>> {
        match appender.try_submit(bytes) {
            Ok(_) => None,
            Err(TrySubmitError::Full(_)) if appender.failing().is_some() => {
                self.lose();
                None
            }
            Err(TrySubmitError::Full(bytes)) => Some(bytes),
            Err(TrySubmitError::Append(e)) => {
                tracing::error!(error = %e, "the decision ledger refused a record");
                None
            }
        }
    }

    fn lose(&self) {
        let lost = self.lost.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if lost.is_power_of_two() {
            tracing::error!(lost, "the decision ledger cannot take records; decisions are answered but not logged");
        }
    }

    /// Records dropped because the ledger could not take them.
    pub(crate) fn lost(&self) -> u64 {
        self.lost.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Why the ledger cannot write, while it cannot.
    pub(crate) fn failing(&self) -> Option<String> {
        match self.guard().as_ref()? {
            Sink::Local(a) => a.failing(),
            Sink::Shared(s) => s.failing(),
        }
    }

    /// Why the shared ledger's storage cannot be written (on its sequencer), while it cannot.
    pub(crate) fn storage_failing(&self) -> Option<String> {
        match self.guard().as_ref()? {
            Sink::Local(_) => None,
            Sink::Shared(s) => s.storage_failing(),
        }
    }

    /// Where the ledger is: its directory or URL.
    pub(crate) fn location(&self) -> Option<String> {
        self.files.as_ref().map(|f| f.location())
    }

    /// Entries durable in the ledger, when there is one.
    pub(crate) fn size(&self) -> Option<u64> {
        self.guard().as_ref().map(|sink| match sink {
            Sink::Local(a) => a.durable(),
            Sink::Shared(s) => s.durable(),
        })
    }

    /// Whether this replica sequences a shared ledger (`None`: the ledger is not shared).
    pub(crate) fn sequencer(&self) -> Option<bool> {
        match self.guard().as_ref()? {
            Sink::Local(_) => None,
            Sink::Shared(s) => Some(s.sequencer()),
        }
    }

    /// Whether records are kept.
    pub(crate) fn recording(&self) -> bool {
        self.guard().is_some()
    }

    /// Flushes the ledger: every queued record is durable when this returns.
    pub(crate) fn close(&self) -> Result<()> {
        let appender = self.appender.write().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        match appender {
            Some(Sink::Local(appender)) => {
                appender.close().map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            Some(Sink::Shared(shared)) => shared.close(std::time::Duration::from_secs(10))?,
            None => {}
        }
        Ok(())
    }
}
