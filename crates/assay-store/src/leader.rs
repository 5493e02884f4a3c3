//! Leadership among replicas: the holder of a PostgreSQL advisory lock does a job that must be
//! done by one replica at a time (watching a cluster for drift, say). A thread keeps a
//! connection of its own and asks for the lock every second; the holder checks its connection
//! as often, and the lock is free as soon as the holder's connection closes (it died, it lost
//! the network long enough for keepalives to notice), so another replica takes over within a
//! few seconds. Each time this replica takes the lock, its term grows: a job that keeps state
//! reads it again from the store at a new term, as the previous leader may have changed it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::{Db, Location, Result, Tx, vals};

/// Whether this session holds advisory lock `key` (taken with `pg_try_advisory_lock(key)`):
/// a session opened again after its connection dropped does not, whatever it did before.
pub fn advisory_lock_held(tx: &mut Tx<'_>, key: i64) -> Result<bool> {
    let held: i64 = tx
        .row(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()
             AND classid::bigint = ?1 AND objid::bigint = ?2 AND objsubid = 1 AND granted",
            &vals![key >> 32, key & 0xffff_ffff],
        )?
        .map_or(Ok(0), |r| r.get(0))?;
    Ok(held > 0)
}

/// One replica's view of a leadership.
#[derive(Debug)]
pub struct Leadership {
    name: String,
    /// The term while leading, 0 when not.
    term: AtomicU64,
    stop: AtomicBool,
}

impl Leadership {
    /// Starts asking for leadership `key` on `url`; `name` is for logs.
    pub fn start(url: &str, key: i64, name: &str) -> Result<Arc<Leadership>> {
        let db = Db::open(&Location::Postgres(url.to_string()))?;
        let leadership =
            Arc::new(Leadership { name: name.to_string(), term: AtomicU64::new(0), stop: AtomicBool::new(false) });
        let me = Arc::clone(&leadership);
        std::thread::Builder::new()
            .name(format!("assay-leader-{name}"))
            .spawn(move || me.run(&db, key))
            .map_err(|e| crate::Error::Type(format!("starting the {name} leadership: {e}")))?;
        Ok(leadership)
    }

    /// The term, while this replica leads.
    pub fn leading(&self) -> Option<u64> {
        match self.term.load(Ordering::Acquire) {
            0 => None,
            term => Some(term),
        }
    }

    /// Lets go (the connection closes with the thread).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    fn run(&self, db: &Db, key: i64) {
        let mut terms = 0u64;
        while !self.stop.load(Ordering::Acquire) {
            if self.leading().is_some() {
                // The lock lives as long as the connection: a failed check means it may be
                // gone (a reconnected session does not hold it).
                if let Err(e) = self.holds(db, key) {
                    tracing::warn!(job = %self.name, error = %e, "leadership lost");
                    self.term.store(0, Ordering::Release);
                }
            } else {
                match db
                    .row("SELECT pg_try_advisory_lock(?1)", &vals![key])
                    .and_then(|r| r.map_or(Ok(false), |r| r.get(0)))
                {
                    Ok(true) => {
                        terms += 1;
                        tracing::info!(job = %self.name, term = terms, "this replica leads");
                        self.term.store(terms, Ordering::Release);
                    }
                    Ok(false) => {}
                    Err(e) => tracing::debug!(job = %self.name, error = %e, "asking for leadership failed"),
                }
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        self.term.store(0, Ordering::Release);
    }

    fn holds(&self, db: &Db, key: i64) -> Result<()> {
        if !db.transaction(|tx| advisory_lock_held(tx, key))? {
            return Err(crate::Error::Type("the lock is no longer held by this connection".into()));
        }
        Ok(())
    }
}
