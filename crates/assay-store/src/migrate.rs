//! Versioned schemas, migrated at start.
//!
//! Each component (the lineage graph, the outbox, …) lists its migrations in order; the table
//! `assay_schema` records which were applied. Migrating runs in one transaction that first
//! takes a lock every other migrating process waits for (SQLite's write lock; on PostgreSQL a
//! transaction-level advisory lock), so replicas that start at once apply each step once and
//! the others find it done. A database migrated by a newer assay than this one is refused, not
//! guessed at.

use crate::{Backend, Db, Error, Result, vals};

/// One step of a component's schema: its version (1, 2, …) and its statements on each engine.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// The version this step brings the schema to.
    pub version: i64,
    /// The statements on SQLite.
    pub sqlite: &'static str,
    /// The statements on PostgreSQL.
    pub postgres: &'static str,
}

/// The advisory lock key that migrations take on PostgreSQL ("assay" in ASCII).
const LOCK: i64 = 0x0061_7373_6179;

/// Brings `component`'s schema to the last of `steps`; the version it is now at.
pub fn migrate(db: &Db, component: &str, steps: &[Migration]) -> Result<i64> {
    let latest = steps.last().map_or(0, |s| s.version);
    db.transaction(|tx| {
        match tx.backend() {
            Backend::Postgres => {
                tx.execute("SELECT pg_advisory_xact_lock(?1)", &vals![LOCK])?;
                tx.batch(
                    "CREATE TABLE IF NOT EXISTS assay_schema (
                         component TEXT NOT NULL, version BIGINT NOT NULL, applied TIMESTAMPTZ NOT NULL DEFAULT now(),
                         PRIMARY KEY (component, version))",
                )?;
            }
            Backend::Sqlite => tx.batch(
                "CREATE TABLE IF NOT EXISTS assay_schema (
                     component TEXT NOT NULL, version INTEGER NOT NULL,
                     applied TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
                     PRIMARY KEY (component, version))",
            )?,
        }
        let current: i64 = tx
            .row("SELECT coalesce(max(version), 0) FROM assay_schema WHERE component = ?1", &vals![component])?
            .map(|r| r.get(0))
            .transpose()?
            .unwrap_or(0);
        if current > latest {
            return Err(Error::Type(format!(
                "the {component} schema in {} is at version {current}, newer than this assay knows ({latest}): \
                 a newer assay migrated it; run that version",
                db.location().redacted()
            )));
        }
        for step in steps.iter().filter(|s| s.version > current) {
            let sql = match tx.backend() {
                Backend::Sqlite => step.sqlite,
                Backend::Postgres => step.postgres,
            };
            tx.batch(sql).map_err(|e| {
                Error::Type(format!("migrating the {component} schema to version {}: {e}", step.version))
            })?;
            tx.execute(
                "INSERT INTO assay_schema (component, version) VALUES (?1, ?2)",
                &vals![component, step.version],
            )?;
            tracing::debug!(component, version = step.version, "schema migrated");
        }
        Ok(latest.max(current))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Location;

    const STEPS: [Migration; 2] = [
        Migration { version: 1, sqlite: "CREATE TABLE t (a INTEGER)", postgres: "CREATE TABLE t (a BIGINT)" },
        Migration {
            version: 2,
            sqlite: "ALTER TABLE t ADD COLUMN b TEXT",
            postgres: "ALTER TABLE t ADD COLUMN b TEXT",
        },
    ];

    #[test]
    fn steps_apply_once_and_a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("test");
        let db = Db::open(&Location::Sqlite(dir.path().join("s.sqlite"))).expect("test");
        assert_eq!(migrate(&db, "t", &STEPS[..1]).expect("test"), 1);
        assert_eq!(migrate(&db, "t", &STEPS).expect("test"), 2);
        assert_eq!(migrate(&db, "t", &STEPS).expect("again"), 2, "nothing left to apply");
        db.execute("INSERT INTO t (a, b) VALUES (?1, ?2)", &vals![1i64, "x"]).expect("both columns exist");
        let err = migrate(&db, "t", &STEPS[..1]).expect_err("an older assay");
        assert!(err.to_string().contains("newer than this assay knows (1)"), "{err}");
    }
}
