//! The outbox: alerts and quarantine requests waiting to be delivered, in SQLite in the data
//! directory. A message is stored (and fsynced) before the event that caused it is answered,
//! and deleted only after its receiver answered 2xx, so every message is delivered at least once
//! even across restarts. Failed deliveries are retried with exponential backoff (1 s doubling
//! to 5 min, with jitter); each message carries a stable id so receivers can drop duplicates.
//!
//! A receiver that fails puts all its messages back by the same wait, so that a dead receiver
//! costs one attempt per wait, not one per message, and the others' messages keep flowing. A
//! message still undelivered after [`Limits::max_age`] moves to the `dead_letter` table (kept
//! for an operator, counted in status and metrics). The outbox holds at most
//! [`Limits::max_pending`] messages: beyond that, storing fails and the event is answered 503.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use rusqlite::{Connection, OptionalExtension, params};

/// One message to deliver.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    /// `alert` or `quarantine`.
    pub(crate) kind: &'static str,
    pub(crate) url: String,
    /// A structured-mode CloudEvent.
    pub(crate) body: Vec<u8>,
}

/// A stored message that is due: row id, URL, body, attempts so far.
type Due = (i64, String, Vec<u8>, u32);

/// Counts for `/v1/status` and `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counts {
    pub(crate) pending: u64,
    pub(crate) delivered: u64,
    pub(crate) failed_attempts: u64,
    /// Messages moved to the dead-letter table (all time).
    pub(crate) dead: u64,
}

/// How much the outbox holds, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Messages waiting at most.
    pub max_pending: u64,
    /// A message undelivered this long after it was stored moves to the dead-letter table.
    pub max_age: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_pending: 100_000, max_age: Duration::from_secs(24 * 3600) }
    }
}

pub(crate) struct Outbox {
    limits: Limits,
    path: PathBuf,
    db: Mutex<Connection>,
    wake: Condvar,
    stop: Mutex<bool>,
    counts: Mutex<Counts>,
}

const FIRST_RETRY: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(300);
const TIMEOUT: Duration = Duration::from_secs(10);
/// A receiver that does not accept a connection in this time is as good as down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The wait before attempt `attempts + 1`: 1 s doubling to 5 min, ±20 % so that many failed
/// messages do not retry in lock step.
fn backoff(attempts: u32) -> Duration {
    let base = FIRST_RETRY.saturating_mul(1u32 << attempts.saturating_sub(1).min(16)).min(LAST_RETRY);
    let jitter = 0.8 + 0.4 * (uuid::Uuid::new_v4().as_u128() % 1000) as f64 / 1000.0;
    base.mul_f64(jitter)
}

impl Outbox {
    /// Opens (or creates) the outbox in `dir/outbox.sqlite`.
    pub(crate) fn open(dir: &Path, limits: Limits) -> Result<Outbox> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("outbox.sqlite");
        let db = Connection::open(&path).with_context(|| format!("opening {}", path.display()))?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS outbox (
                 id INTEGER PRIMARY KEY,
                 kind TEXT NOT NULL,
                 url TEXT NOT NULL,
                 body BLOB NOT NULL,
                 created_ms INTEGER NOT NULL,
                 attempts INTEGER NOT NULL DEFAULT 0,
                 next_attempt_ms INTEGER NOT NULL,
                 last_error TEXT
             );
             CREATE INDEX IF NOT EXISTS outbox_due ON outbox (next_attempt_ms);
             CREATE INDEX IF NOT EXISTS outbox_url ON outbox (url);
             CREATE TABLE IF NOT EXISTS dead_letter (
                 id INTEGER PRIMARY KEY,
                 kind TEXT NOT NULL,
                 url TEXT NOT NULL,
                 body BLOB NOT NULL,
                 created_ms INTEGER NOT NULL,
                 attempts INTEGER NOT NULL,
                 last_error TEXT,
                 dead_ms INTEGER NOT NULL
             );",
        )
        .with_context(|| format!("preparing {}", path.display()))?;
        let count = |table: &str| -> Result<u64> {
            db.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                .with_context(|| format!("reading {}", path.display()))
        };
        let (pending, dead) = (count("outbox")?, count("dead_letter")?);
        Ok(Outbox {
            limits,
            path,
            db: Mutex::new(db),
            wake: Condvar::new(),
            stop: Mutex::new(false),
            counts: Mutex::new(Counts { pending, dead, ..Counts::default() }),
        })
    }

    /// Stores messages durably, in one transaction, and wakes the deliverer. Blocking.
    pub(crate) fn push(&self, messages: &[Message]) -> Result<()> {
        if messages.is_empty() {
            return Ok(());
        }
        let mut db = lock(&self.db);
        let pending = lock(&self.counts).pending;
        if pending + messages.len() as u64 > self.limits.max_pending {
            anyhow::bail!(
                "the outbox holds {pending} undelivered messages, its limit ({}): are the receivers down?",
                self.limits.max_pending
            );
        }
        let tx = db.transaction().context("the outbox")?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO outbox (kind, url, body, created_ms, next_attempt_ms) VALUES (?1, ?2, ?3, ?4, ?4)",
                )
                .context("the outbox")?;
            let now = now_ms();
            for m in messages {
                insert.execute(params![m.kind, m.url, m.body, now]).context("storing a message in the outbox")?;
            }
        }
        tx.commit().with_context(|| format!("committing to {}", self.path.display()))?;
        drop(db);
        lock(&self.counts).pending += messages.len() as u64;
        self.wake.notify_all();
        Ok(())
    }

    pub(crate) fn counts(&self) -> Counts {
        *lock(&self.counts)
    }

    /// How long the oldest undelivered message has waited, and why its last attempt failed.
    pub(crate) fn oldest(&self) -> Result<Option<(Duration, Option<String>)>> {
        let db = lock(&self.db);
        let row = db
            .query_row("SELECT created_ms, last_error FROM outbox ORDER BY created_ms, id LIMIT 1", [], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?))
            })
            .optional()
            .context("reading the outbox")?;
        Ok(row.map(|(created, error)| (Duration::from_millis((now_ms() - created).max(0) as u64), error)))
    }

    /// Asks the deliverer to stop after the message in hand.
    pub(crate) fn stop(&self) {
        *lock(&self.stop) = true;
        self.wake.notify_all();
    }

    fn stopped(&self) -> bool {
        *lock(&self.stop)
    }

    /// The next message that is due, or how long until one is.
    fn next(&self) -> Result<std::result::Result<Due, Option<Duration>>> {
        let db = lock(&self.db);
        let row = db
            .query_row(
                "SELECT id, url, body, attempts, next_attempt_ms FROM outbox ORDER BY next_attempt_ms, id LIMIT 1",
                [],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                        r.get::<_, u32>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                },
            )
            .optional()
            .context("reading the outbox")?;
        Ok(match row {
            None => Err(None),
            Some((id, url, body, attempts, due)) => {
                let wait = due - now_ms();
                if wait > 0 { Err(Some(Duration::from_millis(wait as u64))) } else { Ok((id, url, body, attempts)) }
            }
        })
    }

    fn delivered(&self, id: i64) -> Result<()> {
        lock(&self.db).execute("DELETE FROM outbox WHERE id = ?1", params![id]).context("the outbox")?;
        let mut c = lock(&self.counts);
        c.pending = c.pending.saturating_sub(1);
        c.delivered += 1;
        Ok(())
    }

    /// Records a failed attempt: the message waits, and so does every other message for the
    /// same receiver; a message older than the limit moves to the dead-letter table instead.
    fn failed(&self, id: i64, attempts: u32, error: &str) -> Result<()> {
        let now = now_ms();
        let next = now + backoff(attempts + 1).as_millis() as i64;
        let oldest_alive = now - self.limits.max_age.as_millis() as i64;
        let mut db = lock(&self.db);
        let tx = db.transaction().context("the outbox")?;
        tx.execute(
            "UPDATE outbox SET attempts = ?2, next_attempt_ms = ?3, last_error = ?4 WHERE id = ?1",
            params![id, attempts + 1, next, error],
        )
        .context("the outbox")?;
        tx.execute(
            "UPDATE outbox SET next_attempt_ms = max(next_attempt_ms, ?2)
             WHERE url = (SELECT url FROM outbox WHERE id = ?1)",
            params![id, next],
        )
        .context("the outbox")?;
        let dead = tx
            .execute(
                "INSERT INTO dead_letter (kind, url, body, created_ms, attempts, last_error, dead_ms)
                 SELECT kind, url, body, created_ms, attempts, last_error, ?3 FROM outbox WHERE id = ?1 AND created_ms < ?2",
                params![id, oldest_alive, now],
            )
            .context("the outbox")?;
        if dead > 0 {
            tx.execute("DELETE FROM outbox WHERE id = ?1", params![id]).context("the outbox")?;
        }
        tx.commit().with_context(|| format!("committing to {}", self.path.display()))?;
        drop(db);
        let mut c = lock(&self.counts);
        c.failed_attempts += 1;
        if dead > 0 {
            c.pending = c.pending.saturating_sub(1);
            c.dead += 1;
            tracing::error!(%error, "an alert was not delivered in time; moved to the dead-letter table");
        }
        Ok(())
    }

    /// Waits until woken, stopped, or `wait` (at most a minute) has passed.
    fn sleep(&self, wait: Option<Duration>) {
        let guard = lock(&self.stop);
        if *guard {
            return;
        }
        let wait = wait.unwrap_or(Duration::from_secs(60)).min(Duration::from_secs(60));
        let _ = self.wake.wait_timeout(guard, wait);
    }
}

/// Delivers messages until the outbox is stopped. Runs on its own thread.
pub(crate) fn deliver(outbox: Arc<Outbox>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(TIMEOUT))
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .http_status_as_error(false)
        .user_agent(concat!("assay/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    while !outbox.stopped() {
        match outbox.next() {
            Ok(Ok((id, url, body, attempts))) => {
                let result = agent
                    .post(&url)
                    .header("content-type", "application/cloudevents+json; charset=utf-8")
                    .send(&body[..]);
                let outcome = match result {
                    Ok(response) if response.status().is_success() => outbox.delivered(id),
                    Ok(response) => {
                        let error = format!("{url} answered {}", response.status());
                        tracing::warn!(%error, attempts = attempts + 1, "delivery failed; will retry");
                        outbox.failed(id, attempts, &error)
                    }
                    Err(e) => {
                        let error = format!("{url}: {e}");
                        tracing::warn!(%error, attempts = attempts + 1, "delivery failed; will retry");
                        outbox.failed(id, attempts, &error)
                    }
                };
                if let Err(e) = outcome {
                    tracing::error!(error = %format!("{e:#}"), "updating the outbox failed");
                    outbox.sleep(Some(Duration::from_secs(1)));
                }
            }
            Ok(Err(wait)) => outbox.sleep(wait),
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "reading the outbox failed");
                outbox.sleep(Some(Duration::from_secs(1)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let secs = |n| backoff(n).as_secs_f64();
        assert!((0.8..=1.2).contains(&secs(1)));
        assert!((1.6..=2.4).contains(&secs(2)));
        assert!((6.4..=9.6).contains(&secs(4)));
        assert!((240.0..=360.0).contains(&secs(30)));
    }

    #[test]
    fn messages_survive_reopening_and_leave_once_delivered() {
        let dir = tempfile::tempdir().expect("test");
        let outbox = Outbox::open(dir.path(), Limits::default()).expect("test");
        let m = |n: u8| Message { kind: "alert", url: format!("http://127.0.0.1:9/{n}"), body: vec![n] };
        outbox.push(&[m(1), m(2)]).expect("test");
        drop(outbox);
        let outbox = Outbox::open(dir.path(), Limits::default()).expect("test");
        assert_eq!(outbox.counts().pending, 2);
        let Ok(Ok((id, _, body, 0))) = outbox.next() else { panic!("a due message") };
        assert_eq!(body, vec![1]);
        outbox.failed(id, 0, "down").expect("test");
        // The failed one waits; the other, for another receiver, is due now.
        let Ok(Ok((id2, _, body, 0))) = outbox.next() else { panic!("the second message") };
        assert_eq!(body, vec![2]);
        outbox.delivered(id2).expect("test");
        assert!(matches!(outbox.next(), Ok(Err(Some(_)))));
        assert_eq!(outbox.counts().pending, 1);
    }
}

#[cfg(test)]
mod limits {
    use super::*;

    #[test]
    fn a_dead_receiver_holds_back_its_own_messages_only_and_old_ones_go_to_dead_letters() {
        let dir = tempfile::tempdir().expect("test");
        let limits = Limits { max_pending: 3, max_age: Duration::from_millis(200) };
        let outbox = Outbox::open(dir.path(), limits).expect("test");
        let to = |url: &str, n: u8| Message { kind: "alert", url: url.into(), body: vec![n] };
        outbox.push(&[to("http://dead/a", 1), to("http://dead/a", 2), to("http://live/b", 3)]).expect("test");
        let err = outbox.push(&[to("http://live/b", 4)]).expect_err("over the limit");
        assert!(err.to_string().contains("its limit (3)"), "{err}");
        let Ok(Ok((id, url, _, 0))) = outbox.next() else { panic!("a due message") };
        assert_eq!(url, "http://dead/a");
        outbox.failed(id, 0, "connection refused").expect("test");
        // The dead receiver's other message waits too; the live one is next.
        let Ok(Ok((id3, url, _, 0))) = outbox.next() else { panic!("the live receiver's message") };
        assert_eq!(url, "http://live/b");
        outbox.delivered(id3).expect("test");
        assert!(matches!(outbox.next(), Ok(Err(Some(_)))));
        // Past the age limit, a failed message moves to the dead letters.
        std::thread::sleep(Duration::from_millis(250));
        outbox.failed(id, 1, "connection refused").expect("test");
        let c = outbox.counts();
        assert_eq!((c.pending, c.dead, c.delivered), (1, 1, 1));
        assert!(outbox.oldest().expect("test").is_some_and(|(age, _)| age >= Duration::from_millis(200)));
        drop(outbox);
        let outbox = Outbox::open(dir.path(), limits).expect("test");
        assert_eq!(outbox.counts().dead, 1);
    }
}
