//! One ledger for several replicas (`--ledger DIR|URL` with `--database postgres://…`). The
//! log's files are in a directory every replica mounts, or on object storage
//! (`--ledger s3://bucket/prefix`), where the sequencer writes tiles and bundles before the
//! checkpoint, each object by one PUT, and every replica reads them.
//!
//! - Every replica hands its records to PostgreSQL (`ledger_queue`), in batches, from one
//!   thread: a decision is answered once its record is committed there, so a replica that dies
//!   loses none it answered.
//! - One replica at a time sequences: the one holding a PostgreSQL advisory lock (on the
//!   connection it sequences with). When it dies its connection closes, the lock is free, and
//!   another replica takes it within a second. The sequencer alone opens the log for writing
//!   (in a directory, the log's own file lock stops a second writer there too).
//! - On object storage, tiles and bundles are written only where nothing is yet, and the
//!   checkpoint only over the one the sequencer last read or wrote (conditional PUTs): a
//!   sequencer cut off from PostgreSQL that goes on with a batch while another took over has
//!   its writes refused and writes nothing over the log (`LogError::Superseded`).
//! - When the log's storage fails, the sequencer keeps the lock and retries every second;
//!   records wait in PostgreSQL meanwhile, and the failure is reported (`/ready` answers 503 on
//!   the sequencer).
//! - The sequencer binds queued records to ledger indices in a transaction (on its locked
//!   connection, checking it still holds the lock), appends them (durable when the checkpoint
//!   is), then deletes them. A sequencer that dies between binding and the checkpoint leaves
//!   records bound past the log's end: the next one binds them again. One that dies after the
//!   checkpoint leaves records bound below the end: the next one deletes them. So each record
//!   lands once, in the order its replica committed it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use assay_ledger::files::Files;
use assay_ledger::note::NoteSigner;
use assay_ledger::store::Log;
use assay_store::{Db, Location, Migration, vals};

/// The advisory lock of the sequencer ("ledger" in ASCII).
const SEQUENCER: i64 = 0x6c65_6467_6572;
/// Records handed over in one transaction, at most.
const HANDOVER_BATCH: usize = 512;
/// Records sequenced in one batch, at most.
const SEQUENCE_BATCH: i64 = 1024;
/// Records waiting to be handed over, at most.
const QUEUE: usize = 8192;

const SCHEMA: [Migration; 1] = [Migration {
    version: 1,
    // The shared ledger needs PostgreSQL; a SQLite store never has this table.
    sqlite: "SELECT 1",
    postgres: "CREATE TABLE ledger_queue (
                   seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, entry BYTEA NOT NULL, idx BIGINT);
               CREATE INDEX ledger_queue_idx ON ledger_queue (idx);",
}];

enum Msg {
    Entry(Vec<u8>, Option<tokio::sync::oneshot::Sender<()>>),
    Flush(std::sync::mpsc::Sender<()>),
}

#[derive(Default)]
struct Status {
    /// Why handing records over fails, while it does.
    failing: Mutex<Option<String>>,
    /// Why the sequencer cannot write the log's storage, while it cannot.
    storage_failing: Mutex<Option<String>>,
    /// Entries in the log, as this replica last saw it.
    durable: AtomicU64,
    /// Whether this replica sequences now.
    sequencer: AtomicBool,
    stop: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// This replica's side of the shared ledger.
pub(crate) struct Shared {
    queue: SyncSender<Msg>,
    status: Arc<Status>,
    /// Says when the sequencer thread has ended.
    ended: Mutex<Receiver<()>>,
}

impl Shared {
    /// Connects, migrates, and starts the handover and the sequencer threads.
    /// `dir` is the log's directory when `files` is one (its file lock is then taken too).
    pub(crate) fn start(url: &str, files: Arc<dyn Files>, dir: Option<PathBuf>, signer: NoteSigner) -> Result<Shared> {
        let location = Location::Postgres(url.to_string());
        let open = || Db::open(&location).with_context(|| format!("the ledger queue in {}", location.redacted()));
        let handover_db = open()?;
        assay_store::migrate(&handover_db, "ledger", &SCHEMA).context("preparing the ledger queue")?;
        let sequencer_db = open()?;
        // What this replica can say of the log before it sequences (the log's files).
        let size = logged_size(files.as_ref()).unwrap_or(0);
        let status = Arc::new(Status { durable: AtomicU64::new(size), ..Status::default() });
        let (queue, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let s = Arc::clone(&status);
        std::thread::Builder::new()
            .name("assay-ledger-handover".into())
            .spawn(move || handover(&handover_db, &rx, &s))
            .context("starting the ledger handover")?;
        let s = Arc::clone(&status);
        let (end, ended) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("assay-ledger-sequencer".into())
            .spawn(move || {
                sequence(&sequencer_db, &files, dir.as_deref(), &signer, &s);
                let _ = end.send(());
            })
            .context("starting the ledger sequencer")?;
        Ok(Shared { queue, status, ended: Mutex::new(ended) })
    }

    /// Queues a record without waiting; gives it back when the queue is full.
    pub(crate) fn try_submit(
        &self,
        entry: Vec<u8>,
        done: Option<tokio::sync::oneshot::Sender<()>>,
    ) -> Result<(), (Vec<u8>, Option<tokio::sync::oneshot::Sender<()>>)> {
        match self.queue.try_send(Msg::Entry(entry, done)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(Msg::Entry(e, d)) | TrySendError::Disconnected(Msg::Entry(e, d))) => Err((e, d)),
            Err(_) => Ok(()),
        }
    }

    /// Queues a record, waiting for room.
    pub(crate) fn submit(&self, entry: Vec<u8>, done: Option<tokio::sync::oneshot::Sender<()>>) {
        if self.queue.send(Msg::Entry(entry, done)).is_err() {
            tracing::error!("the ledger handover has stopped; a record is lost");
        }
    }

    /// Why the ledger cannot take records now.
    pub(crate) fn failing(&self) -> Option<String> {
        lock(&self.status.failing).clone()
    }

    /// Why the log's storage cannot be written (on the sequencer), while it cannot.
    pub(crate) fn storage_failing(&self) -> Option<String> {
        lock(&self.status.storage_failing).clone()
    }

    /// Entries in the log, as this replica last saw it.
    pub(crate) fn durable(&self) -> u64 {
        self.status.durable.load(Ordering::Relaxed)
    }

    /// Whether this replica sequences the log now.
    pub(crate) fn sequencer(&self) -> bool {
        self.status.sequencer.load(Ordering::Relaxed)
    }

    /// Hands over every queued record (waiting at most `limit`), then stops sequencing; the
    /// sequencer first appends what is queued.
    pub(crate) fn close(&self, limit: Duration) -> Result<()> {
        let (tx, rx) = std::sync::mpsc::channel();
        let flushed = self.queue.send(Msg::Flush(tx)).is_ok() && rx.recv_timeout(limit).is_ok();
        self.status.stop.store(true, Ordering::Relaxed);
        let _ = lock(&self.ended).recv_timeout(limit);
        if !flushed {
            anyhow::bail!(
                "records queued for the shared ledger were not handed over to PostgreSQL in {} s: {}",
                limit.as_secs(),
                self.failing().unwrap_or_else(|| "it did not answer".into())
            );
        }
        Ok(())
    }
}

/// Hands queued records to PostgreSQL, a batch per transaction, retrying a batch until it is
/// taken.
fn handover(db: &Db, rx: &Receiver<Msg>, status: &Status) {
    let mut batch: Vec<Msg> = Vec::with_capacity(HANDOVER_BATCH);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < HANDOVER_BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        loop {
            let result = db.transaction(|tx| {
                for m in &batch {
                    if let Msg::Entry(entry, _) = m {
                        tx.execute("INSERT INTO ledger_queue (entry) VALUES (?1)", &vals![entry])?;
                    }
                }
                Ok(())
            });
            match result {
                Ok(()) => {
                    if lock(&status.failing).take().is_some() {
                        tracing::info!("records reach the shared ledger's queue again");
                    }
                    break;
                }
                Err(e) => {
                    let why = format!("handing records to the shared ledger: {e}");
                    if lock(&status.failing).replace(why.clone()).is_none() {
                        tracing::error!(error = %why, "retrying every second");
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
        for m in batch.drain(..) {
            match m {
                Msg::Entry(_, Some(done)) => {
                    let _ = done.send(());
                }
                Msg::Entry(_, None) => {}
                Msg::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
    }
}

/// Takes the sequencer's lock when it is free, and sequences while it holds it.
fn sequence(db: &Db, files: &Arc<dyn Files>, dir: Option<&std::path::Path>, signer: &NoteSigner, status: &Status) {
    let mut log: Option<Log> = None;
    let mut holding = false;
    let storage = |why: Option<String>| {
        let mut failing = lock(&status.storage_failing);
        match (&why, failing.is_some()) {
            (Some(w), false) => {
                tracing::error!(error = %w, "the shared ledger's storage cannot be written; retrying every second")
            }
            (None, true) => tracing::info!("the shared ledger's storage is written again"),
            _ => {}
        }
        *failing = why;
    };
    let let_go = |log: &mut Option<Log>, holding: &mut bool| {
        status.sequencer.store(false, Ordering::Relaxed);
        *log = None;
        *holding = false;
        let _ = db.execute("SELECT pg_advisory_unlock_all()", &[]);
    };
    while !status.stop.load(Ordering::Relaxed) {
        if !holding {
            match db
                .row("SELECT pg_try_advisory_lock(?1)", &vals![SEQUENCER])
                .and_then(|r| r.map_or(Ok(false), |r| r.get(0)))
            {
                Ok(true) => holding = true,
                Ok(false) => {
                    refresh_size(files.as_ref(), status);
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "the sequencer's lock cannot be asked for");
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            }
        }
        let Some(l) = log.as_mut() else {
            let opened = match dir {
                Some(dir) => Log::open(dir, signer.clone()),
                None => Log::open_in(Arc::clone(files), signer.clone()),
            };
            match opened {
                Ok(opened) => {
                    tracing::info!(size = opened.size(), "this replica sequences the shared ledger");
                    status.durable.store(opened.size(), Ordering::Relaxed);
                    status.sequencer.store(true, Ordering::Relaxed);
                    storage(None);
                    log = Some(opened);
                }
                Err(e) => {
                    storage(Some(format!("opening the log {}: {e}", files.location())));
                    // Still the sequencer? (The lock goes with a connection that dropped.)
                    if !db.transaction(|tx| assay_store::advisory_lock_held(tx, SEQUENCER)).unwrap_or(false) {
                        let_go(&mut log, &mut holding);
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
            continue;
        };
        match round(db, l) {
            Ok(0) => std::thread::sleep(Duration::from_millis(50)),
            Ok(_) => {
                status.durable.store(l.size(), Ordering::Relaxed);
                storage(None);
            }
            Err(e) => {
                if status.stop.load(Ordering::Relaxed) {
                    break;
                }
                let why = format!("{:#}", e.error);
                if e.superseded {
                    // Another sequencer wrote the log (this one lost the lock without knowing,
                    // or a write it retried had landed): nothing was written over it. The log
                    // is read again; binding checks the lock before the next batch.
                    tracing::warn!(error = %why, "the shared ledger changed under this sequencer; reading it again");
                    log = None;
                } else if e.storage {
                    // The lock is kept: the log is read again from its storage and the same
                    // records are bound and appended again.
                    storage(Some(why));
                    log = None;
                } else {
                    // Leadership is let go and taken again from the start (the lock may be
                    // gone with the connection).
                    tracing::error!(error = %why, "sequencing the shared ledger failed; letting go of it");
                    let_go(&mut log, &mut holding);
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
    // Stopping: what is queued goes into the log first.
    if let Some(l) = log.as_mut() {
        while let Ok(n) = round(db, l) {
            status.durable.store(l.size(), Ordering::Relaxed);
            if n == 0 {
                break;
            }
        }
    }
    status.sequencer.store(false, Ordering::Relaxed);
}

/// The log's size as its checkpoint says (not verified: for status, not for proofs).
fn logged_size(files: &dyn Files) -> Option<u64> {
    let note = assay_ledger::store::read_checkpoint_note_in(files).ok()?;
    assay_ledger::checkpoint::Checkpoint::stated_size(note.as_bytes())
}

/// Reads the log's size from its checkpoint, for a replica that does not sequence.
fn refresh_size(files: &dyn Files, status: &Status) {
    if let Some(size) = logged_size(files) {
        status.durable.store(size, Ordering::Relaxed);
    }
}

/// Why a batch failed, and whether it was the log's storage (rather than PostgreSQL), or
/// another writer's change to the log.
struct RoundError {
    error: anyhow::Error,
    storage: bool,
    superseded: bool,
}

/// One batch: binds the oldest unbound records to the next indices, appends them, forgets
/// them. The number appended.
fn round(db: &Db, log: &mut Log) -> Result<usize, RoundError> {
    let db_error = |error: anyhow::Error| RoundError { error, storage: false, superseded: false };
    let size = log.size() as i64;
    let mut bound = db
        .transaction(|tx| {
            if !assay_store::advisory_lock_held(tx, SEQUENCER)? {
                return Err(assay_store::Error::Type("this replica no longer holds the sequencer's lock".into()));
            }
            // In the log already (a sequencer died before forgetting them).
            tx.execute("DELETE FROM ledger_queue WHERE idx < ?1", &vals![size])?;
            // Bound but never appended (a sequencer died before its checkpoint).
            tx.execute("UPDATE ledger_queue SET idx = NULL WHERE idx >= ?1", &vals![size])?;
            let rows = tx.rows(
                "UPDATE ledger_queue q SET idx = ?1 + b.n - 1
                 FROM (SELECT seq, row_number() OVER (ORDER BY seq) AS n FROM ledger_queue
                       WHERE idx IS NULL ORDER BY seq LIMIT ?2) b
                 WHERE q.seq = b.seq RETURNING q.idx, q.entry",
                &vals![size, SEQUENCE_BATCH],
            )?;
            rows.iter()
                .map(|r| Ok((r.get::<i64>(0)?, r.get::<Vec<u8>>(1)?)))
                .collect::<Result<Vec<_>, assay_store::Error>>()
        })
        .context("binding records to ledger indices")
        .map_err(db_error)?;
    if bound.is_empty() {
        return Ok(0);
    }
    bound.sort_by_key(|(idx, _)| *idx);
    let entries: Vec<&[u8]> = bound.iter().map(|(_, e)| e.as_slice()).collect();
    if let Err(e) = log.append(&entries) {
        return Err(RoundError {
            superseded: matches!(e, assay_ledger::store::LogError::Superseded(_)),
            error: anyhow::Error::new(e).context("appending to the shared ledger"),
            storage: true,
        });
    }
    db.execute("DELETE FROM ledger_queue WHERE idx < ?1", &vals![log.size() as i64])
        .context("forgetting records that are in the log")
        .map_err(db_error)?;
    Ok(entries.len())
}

/// How long a decision waits for its record to be handed over before it is answered anyway.
pub(crate) const HANDOVER_WAIT: Duration = Duration::from_secs(5);
