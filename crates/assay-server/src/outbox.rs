//! The outbox: alerts and quarantine requests waiting to be delivered, in the server's store
//! (SQLite in the data directory, or the PostgreSQL database several replicas share). A message
//! is stored (durably) before the event that caused it is answered, and marked delivered only
//! after its receiver answered 2xx, so every message is delivered at least once even across
//! restarts. Failed deliveries are retried with exponential backoff (1 s doubling to 5 min, with
//! jitter); each message carries a stable id so receivers can drop duplicates.
//!
//! Several deliverers (one per replica) share one outbox: a deliverer claims a message for
//! [`LEASE`] before sending it (on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so two never claim
//! the same one), and a replica that dies with a claim in hand loses it when the lease ends. A
//! message may carry a dedup key (a finding and its receiver): a second message with the same
//! key is not stored, and a delivered message is kept for [`KEEP_DELIVERED`] for that, so that
//! replicas which find the same thing alert once.
//!
//! A receiver that fails puts all its messages back by the same wait, so that a dead receiver
//! costs one attempt per wait, not one per message, and the others' messages keep flowing. A
//! message still undelivered after [`Limits::max_age`] moves to the `dead_letter` table (kept
//! for an operator, counted in status and metrics). The outbox holds at most
//! [`Limits::max_pending`] messages: beyond that, storing fails and the event is answered 503.
//!
//! Counts and the oldest message are read by the deliverer (at least every few seconds) and
//! kept in memory, so that status, metrics and readiness never wait for the store.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use assay_store::{Backend, Db, Location, Migration, vals};

/// One message to deliver.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    /// `alert` or `quarantine`.
    pub(crate) kind: &'static str,
    pub(crate) url: String,
    /// A structured-mode CloudEvent.
    pub(crate) body: Vec<u8>,
    /// Messages with the same key are one: the second is not stored.
    pub(crate) dedup: Option<String>,
}

/// A claimed message: row id, URL, body, attempts so far, whether it has a dedup key.
type Due = (i64, String, Vec<u8>, u32, bool);

/// Counts for `/v1/status` and `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counts {
    /// Messages waiting, on every replica.
    pub(crate) pending: u64,
    /// Delivered by this replica since it started.
    pub(crate) delivered: u64,
    /// Failed attempts of this replica since it started.
    pub(crate) failed_attempts: u64,
    /// Messages in the dead-letter table (all time).
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

/// What the deliverer last read of the store.
#[derive(Debug, Default)]
struct Seen {
    counts: Counts,
    /// When the oldest waiting message was stored (ms since the epoch), and why its last
    /// attempt failed.
    oldest: Option<(i64, Option<String>)>,
    /// Why the last read failed, when it did.
    error: Option<String>,
}

pub(crate) struct Outbox {
    limits: Limits,
    db: Db,
    wake: Condvar,
    stop: Mutex<bool>,
    seen: Mutex<Seen>,
}

const FIRST_RETRY: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(300);
const TIMEOUT: Duration = Duration::from_secs(10);
/// A receiver that does not accept a connection in this time is as good as down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a claim holds: longer than a delivery may take.
pub(crate) const LEASE: Duration = Duration::from_secs(15);
/// How long a delivered message with a dedup key is kept, so that a replica that finds the same
/// thing later does not alert again (findings are marked reported within seconds).
const KEEP_DELIVERED: Duration = Duration::from_secs(7 * 24 * 3600);

/// The outbox's schema. SQLite's first version is the one files had before versions were kept.
const SCHEMA: [Migration; 2] = [
    Migration {
        version: 1,
        sqlite: "CREATE TABLE IF NOT EXISTS outbox (
                     id INTEGER PRIMARY KEY, kind TEXT NOT NULL, url TEXT NOT NULL, body BLOB NOT NULL,
                     created_ms INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
                     next_attempt_ms INTEGER NOT NULL, last_error TEXT);
                 CREATE INDEX IF NOT EXISTS outbox_due ON outbox (next_attempt_ms);
                 CREATE INDEX IF NOT EXISTS outbox_url ON outbox (url);
                 CREATE TABLE IF NOT EXISTS dead_letter (
                     id INTEGER PRIMARY KEY, kind TEXT NOT NULL, url TEXT NOT NULL, body BLOB NOT NULL,
                     created_ms INTEGER NOT NULL, attempts INTEGER NOT NULL, last_error TEXT,
                     dead_ms INTEGER NOT NULL);",
        postgres: "CREATE TABLE outbox (
                       id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, kind TEXT NOT NULL, url TEXT NOT NULL,
                       body BYTEA NOT NULL, created_ms BIGINT NOT NULL, attempts BIGINT NOT NULL DEFAULT 0,
                       next_attempt_ms BIGINT NOT NULL, last_error TEXT);
                   CREATE INDEX outbox_url ON outbox (url);
                   CREATE TABLE dead_letter (
                       id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, kind TEXT NOT NULL, url TEXT NOT NULL,
                       body BYTEA NOT NULL, created_ms BIGINT NOT NULL, attempts BIGINT NOT NULL, last_error TEXT,
                       dead_ms BIGINT NOT NULL);",
    },
    Migration {
        version: 2,
        sqlite: "ALTER TABLE outbox ADD COLUMN dedup TEXT;
                 ALTER TABLE outbox ADD COLUMN claimed_until INTEGER NOT NULL DEFAULT 0;
                 ALTER TABLE outbox ADD COLUMN delivered_ms INTEGER;
                 CREATE UNIQUE INDEX outbox_dedup ON outbox (dedup);
                 DROP INDEX outbox_due;
                 CREATE INDEX outbox_due ON outbox (next_attempt_ms) WHERE delivered_ms IS NULL;",
        postgres: "ALTER TABLE outbox ADD COLUMN dedup TEXT;
                   ALTER TABLE outbox ADD COLUMN claimed_until BIGINT NOT NULL DEFAULT 0;
                   ALTER TABLE outbox ADD COLUMN delivered_ms BIGINT;
                   CREATE UNIQUE INDEX outbox_dedup ON outbox (dedup);
                   CREATE INDEX outbox_due ON outbox (next_attempt_ms) WHERE delivered_ms IS NULL;",
    },
];

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
    /// Opens (or creates) the outbox: `outbox.sqlite` in a data directory, or a PostgreSQL
    /// database.
    pub(crate) fn open(location: &Location, limits: Limits) -> Result<Outbox> {
        if let Location::Sqlite(path) = location
            && let Some(dir) = path.parent()
        {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let db = Db::open(location).with_context(|| format!("opening the outbox in {}", location.redacted()))?;
        assay_store::migrate(&db, "outbox", &SCHEMA)
            .with_context(|| format!("preparing the outbox in {}", location.redacted()))?;
        let outbox =
            Outbox { limits, db, wake: Condvar::new(), stop: Mutex::new(false), seen: Mutex::new(Seen::default()) };
        outbox.refresh()?;
        Ok(outbox)
    }

    /// Reads the counts and the oldest waiting message into memory.
    pub(crate) fn refresh(&self) -> Result<()> {
        type Read = (u64, u64, Option<(i64, Option<String>)>);
        let read = || -> Result<Read, assay_store::Error> {
            let counts = self
                .db
                .row(
                    "SELECT (SELECT count(*) FROM outbox WHERE delivered_ms IS NULL), (SELECT count(*) FROM dead_letter)",
                    &[],
                )?
                .ok_or_else(|| assay_store::Error::Type("no counts".into()))?;
            let oldest = self
                .db
                .row(
                    "SELECT created_ms, last_error FROM outbox WHERE delivered_ms IS NULL ORDER BY created_ms, id LIMIT 1",
                    &[],
                )?
                .map(|r| Ok::<_, assay_store::Error>((r.get(0)?, r.get(1)?)))
                .transpose()?;
            Ok((counts.get(0)?, counts.get(1)?, oldest))
        };
        let result = read();
        let mut seen = lock(&self.seen);
        match result {
            Ok((pending, dead, oldest)) => {
                seen.counts.pending = pending;
                seen.counts.dead = dead;
                seen.oldest = oldest;
                seen.error = None;
                Ok(())
            }
            Err(e) => {
                seen.error = Some(e.to_string());
                Err(e).context("reading the outbox")
            }
        }
    }

    /// Stores messages durably, in one transaction, and wakes the deliverer; how many were
    /// new (a message whose dedup key is already stored is not). Blocking.
    pub(crate) fn push(&self, messages: &[Message]) -> Result<usize> {
        if messages.is_empty() {
            return Ok(0);
        }
        let max = self.limits.max_pending;
        let stored = self
            .db
            .transaction(|tx| {
                let pending: i64 = tx
                    .row("SELECT count(*) FROM outbox WHERE delivered_ms IS NULL", &[])?
                    .map_or(Ok(0), |r| r.get(0))?;
                if pending as u64 + messages.len() as u64 > max {
                    return Err(assay_store::Error::Type(format!(
                        "the outbox holds {pending} undelivered messages, its limit ({max}): are the receivers down?"
                    )));
                }
                let now = now_ms();
                let mut stored = 0;
                for m in messages {
                    stored += tx.execute(
                        "INSERT INTO outbox (kind, url, body, created_ms, next_attempt_ms, dedup)
                         VALUES (?1, ?2, ?3, ?4, ?4, ?5) ON CONFLICT (dedup) DO NOTHING",
                        &vals![m.kind, &m.url, &m.body, now, m.dedup.as_ref()],
                    )? as usize;
                }
                Ok(stored)
            })
            .map_err(|e| match e {
                assay_store::Error::Type(limit) => anyhow::anyhow!(limit),
                e => anyhow::Error::new(e).context(format!("storing messages in {}", self.db.location().redacted())),
            })?;
        lock(&self.seen).counts.pending += stored as u64;
        self.wake.notify_all();
        Ok(stored)
    }

    pub(crate) fn counts(&self) -> Counts {
        lock(&self.seen).counts
    }

    /// How long the oldest undelivered message has waited, and why its last attempt failed;
    /// or why the store could not be read.
    pub(crate) fn oldest(&self) -> Result<Option<(Duration, Option<String>)>, String> {
        let seen = lock(&self.seen);
        if let Some(e) = &seen.error {
            return Err(e.clone());
        }
        Ok(seen
            .oldest
            .as_ref()
            .map(|(created, error)| (Duration::from_millis((now_ms() - created).max(0) as u64), error.clone())))
    }

    /// Asks the deliverer to stop after the message in hand.
    pub(crate) fn stop(&self) {
        *lock(&self.stop) = true;
        self.wake.notify_all();
    }

    fn stopped(&self) -> bool {
        *lock(&self.stop)
    }

    /// How the engine says two things the outbox's statements need: skip the rows another
    /// deliverer holds (PostgreSQL; SQLite has one writer), and the larger of two values.
    fn dialect(&self) -> (&'static str, &'static str) {
        match self.db.backend() {
            Backend::Postgres => ("FOR UPDATE SKIP LOCKED", "greatest"),
            Backend::Sqlite => ("", "max"),
        }
    }

    /// Claims the next message that is due, or says how long until one is.
    fn next(&self) -> Result<std::result::Result<Due, Option<Duration>>> {
        let (skip_locked, greatest) = self.dialect();
        let claim = format!(
            "UPDATE outbox SET claimed_until = ?1 WHERE id = (
                 SELECT id FROM outbox WHERE delivered_ms IS NULL AND next_attempt_ms <= ?2 AND claimed_until <= ?2
                 ORDER BY next_attempt_ms, id LIMIT 1 {skip_locked})
             RETURNING id, url, body, attempts, dedup IS NOT NULL"
        );
        let wait =
            format!("SELECT min({greatest}(next_attempt_ms, claimed_until)) FROM outbox WHERE delivered_ms IS NULL");
        let now = now_ms();
        let claimed = self
            .db
            .transaction(|tx| {
                if let Some(r) = tx.row(&claim, &vals![now + LEASE.as_millis() as i64, now])? {
                    return Ok(Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)));
                }
                let next: Option<i64> = tx.row(&wait, &[])?.map_or(Ok(None), |r| r.get(0))?;
                Ok(Err(next.map(|due| Duration::from_millis((due - now).max(1) as u64))))
            })
            .context("reading the outbox")?;
        Ok(claimed)
    }

    fn delivered(&self, id: i64, dedup: bool) -> Result<()> {
        let now = now_ms();
        self.db
            .transaction(|tx| {
                if dedup {
                    tx.execute(
                        "UPDATE outbox SET delivered_ms = ?2, claimed_until = 0, body = ?3 WHERE id = ?1",
                        &vals![id, now, &b""[..]],
                    )?;
                } else {
                    tx.execute("DELETE FROM outbox WHERE id = ?1", &vals![id])?;
                }
                Ok(())
            })
            .context("the outbox")?;
        let mut seen = lock(&self.seen);
        seen.counts.pending = seen.counts.pending.saturating_sub(1);
        seen.counts.delivered += 1;
        Ok(())
    }

    /// Forgets delivered messages older than [`KEEP_DELIVERED`].
    fn purge(&self) -> Result<()> {
        let before = now_ms() - KEEP_DELIVERED.as_millis() as i64;
        self.db.execute("DELETE FROM outbox WHERE delivered_ms < ?1", &vals![before]).context("the outbox")?;
        Ok(())
    }

    /// Records a failed attempt: the message waits, and so does every other message for the
    /// same receiver; a message older than the limit moves to the dead-letter table instead.
    fn failed(&self, id: i64, attempts: u32, error: &str) -> Result<()> {
        let now = now_ms();
        let next = now + backoff(attempts + 1).as_millis() as i64;
        let oldest_alive = now - self.limits.max_age.as_millis() as i64;
        // Messages another deliverer holds keep their own schedule.
        let (skip_locked, greatest) = self.dialect();
        let hold_back = format!(
            "UPDATE outbox SET next_attempt_ms = {greatest}(next_attempt_ms, ?2) WHERE id IN (
                 SELECT id FROM outbox WHERE url = (SELECT url FROM outbox WHERE id = ?1) AND delivered_ms IS NULL
                 {skip_locked})"
        );
        let dead = self
            .db
            .transaction(|tx| {
                tx.execute(
                    "UPDATE outbox SET attempts = ?2, next_attempt_ms = ?3, last_error = ?4, claimed_until = 0 WHERE id = ?1",
                    &vals![id, attempts + 1, next, error],
                )?;
                tx.execute(&hold_back, &vals![id, next])?;
                let dead = tx.execute(
                    "INSERT INTO dead_letter (kind, url, body, created_ms, attempts, last_error, dead_ms)
                     SELECT kind, url, body, created_ms, attempts, last_error, ?3 FROM outbox WHERE id = ?1 AND created_ms < ?2",
                    &vals![id, oldest_alive, now],
                )?;
                if dead > 0 {
                    tx.execute("DELETE FROM outbox WHERE id = ?1", &vals![id])?;
                }
                Ok(dead)
            })
            .context("the outbox")?;
        let mut seen = lock(&self.seen);
        seen.counts.failed_attempts += 1;
        if dead > 0 {
            seen.counts.pending = seen.counts.pending.saturating_sub(1);
            seen.counts.dead += 1;
            tracing::error!(%error, "an alert was not delivered in time; moved to the dead-letter table");
        }
        Ok(())
    }

    /// Waits until woken, stopped, or `wait` has passed; at most a second on PostgreSQL (other
    /// replicas store messages without waking this one) and five on SQLite, so that the counts
    /// stay fresh.
    fn sleep(&self, wait: Option<Duration>) {
        let guard = lock(&self.stop);
        if *guard {
            return;
        }
        let most = match self.db.backend() {
            Backend::Postgres => Duration::from_secs(1),
            Backend::Sqlite => Duration::from_secs(5),
        };
        let wait = wait.map_or(most, |w| w.min(most));
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
    let mut refreshed = std::time::Instant::now();
    let mut purged = std::time::Instant::now() - Duration::from_secs(3600);
    while !outbox.stopped() {
        if refreshed.elapsed() >= Duration::from_secs(1) {
            refreshed = std::time::Instant::now();
            if let Err(e) = outbox.refresh() {
                tracing::error!(error = %format!("{e:#}"), "reading the outbox failed");
            }
        }
        if purged.elapsed() >= Duration::from_secs(3600) {
            purged = std::time::Instant::now();
            if let Err(e) = outbox.purge() {
                tracing::warn!(error = %format!("{e:#}"), "forgetting old delivered messages failed");
            }
        }
        match outbox.next() {
            Ok(Ok((id, url, body, attempts, dedup))) => {
                let result = agent
                    .post(&url)
                    .header("content-type", "application/cloudevents+json; charset=utf-8")
                    .send(&body[..]);
                let outcome = match result {
                    Ok(response) if response.status().is_success() => outbox.delivered(id, dedup),
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
                    // The claim lapses by itself: the message is sent again after the lease.
                    tracing::error!(error = %format!("{e:#}"), "updating the outbox failed");
                    outbox.sleep(Some(Duration::from_secs(1)));
                }
            }
            Ok(Err(wait)) => outbox.sleep(wait),
            Err(e) => {
                lock(&outbox.seen).error = Some(format!("{e:#}"));
                tracing::error!(error = %format!("{e:#}"), "reading the outbox failed");
                outbox.sleep(Some(Duration::from_secs(1)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(dir: &std::path::Path) -> Location {
        Location::Sqlite(dir.join("outbox.sqlite"))
    }

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
        let outbox = Outbox::open(&at(dir.path()), Limits::default()).expect("test");
        let m = |n: u8| Message { kind: "alert", url: format!("http://127.0.0.1:9/{n}"), body: vec![n], dedup: None };
        outbox.push(&[m(1), m(2)]).expect("test");
        drop(outbox);
        let outbox = Outbox::open(&at(dir.path()), Limits::default()).expect("test");
        assert_eq!(outbox.counts().pending, 2);
        let Ok(Ok((id, _, body, 0, false))) = outbox.next() else { panic!("a due message") };
        assert_eq!(body, vec![1]);
        outbox.failed(id, 0, "down").expect("test");
        // The failed one waits; the other, for another receiver, is due now.
        let Ok(Ok((id2, _, body, 0, false))) = outbox.next() else { panic!("the second message") };
        assert_eq!(body, vec![2]);
        outbox.delivered(id2, false).expect("test");
        assert!(matches!(outbox.next(), Ok(Err(Some(_)))));
        outbox.refresh().expect("test");
        assert_eq!(outbox.counts().pending, 1);
    }

    #[test]
    fn a_claimed_message_is_not_claimed_twice_and_a_dedup_key_is_stored_once() {
        let dir = tempfile::tempdir().expect("test");
        // Two deliverers on one store, as two replicas.
        let a = Outbox::open(&at(dir.path()), Limits::default()).expect("test");
        let b = Outbox::open(&at(dir.path()), Limits::default()).expect("test");
        let m = |key: &str| Message {
            kind: "alert",
            url: "http://127.0.0.1:9/x".into(),
            body: b"{}".to_vec(),
            dedup: Some(key.into()),
        };
        assert_eq!(a.push(&[m("k1")]).expect("test"), 1);
        assert_eq!(b.push(&[m("k1"), m("k2")]).expect("test"), 1, "k1 is stored already");
        let Ok(Ok((first, ..))) = a.next() else { panic!("a claims one") };
        let Ok(Ok((second, ..))) = b.next() else { panic!("b claims the other") };
        assert_ne!(first, second);
        assert!(matches!(a.next(), Ok(Err(Some(wait))) if wait <= LEASE), "both are claimed");
        a.delivered(first, true).expect("test");
        b.delivered(second, true).expect("test");
        // Delivered, and still known: the same finding is not alerted again.
        assert_eq!(a.push(&[m("k1"), m("k2")]).expect("test"), 0);
        a.refresh().expect("test");
        assert_eq!(a.counts().pending, 0);
        assert!(matches!(a.next(), Ok(Err(None))));
    }
}
#[cfg(test)]
mod limits {
    use super::*;

    fn tests_at(dir: &std::path::Path) -> Location {
        Location::Sqlite(dir.join("outbox.sqlite"))
    }

    #[test]
    fn a_dead_receiver_holds_back_its_own_messages_only_and_old_ones_go_to_dead_letters() {
        let dir = tempfile::tempdir().expect("test");
        let limits = Limits { max_pending: 3, max_age: Duration::from_millis(200) };
        let outbox = Outbox::open(&tests_at(dir.path()), limits).expect("test");
        let to = |url: &str, n: u8| Message { kind: "alert", url: url.into(), body: vec![n], dedup: None };
        outbox.push(&[to("http://dead/a", 1), to("http://dead/a", 2), to("http://live/b", 3)]).expect("test");
        let err = outbox.push(&[to("http://live/b", 4)]).expect_err("over the limit");
        assert!(err.to_string().contains("its limit (3)"), "{err}");
        let Ok(Ok((id, url, _, 0, _))) = outbox.next() else { panic!("a due message") };
        assert_eq!(url, "http://dead/a");
        outbox.failed(id, 0, "connection refused").expect("test");
        // The dead receiver's other message waits too; the live one is next.
        let Ok(Ok((id3, url, _, 0, _))) = outbox.next() else { panic!("the live receiver's message") };
        assert_eq!(url, "http://live/b");
        outbox.delivered(id3, false).expect("test");
        assert!(matches!(outbox.next(), Ok(Err(Some(_)))));
        // Past the age limit, a failed message moves to the dead letters.
        std::thread::sleep(Duration::from_millis(250));
        outbox.failed(id, 1, "connection refused").expect("test");
        outbox.refresh().expect("test");
        let c = outbox.counts();
        assert_eq!((c.pending, c.dead, c.delivered), (1, 1, 1));
        assert!(outbox.oldest().expect("test").is_some_and(|(age, _)| age >= Duration::from_millis(200)));
        drop(outbox);
        let outbox = Outbox::open(&tests_at(dir.path()), limits).expect("test");
        assert_eq!(outbox.counts().dead, 1);
    }
}
