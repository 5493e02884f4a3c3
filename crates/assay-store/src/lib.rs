//! One storage interface for the server's state and the lineage graph, on two engines: an
//! embedded SQLite file (the default) or a PostgreSQL database shared by several `assay serve`
//! replicas.
//!
//! Callers write SQL once, in the common dialect of both (numbered parameters `?1`, `?2`, …,
//! `INSERT … ON CONFLICT`, `RETURNING`, row comparisons; a parameter whose type nothing else in
//! the statement fixes is cast, `CAST(?1 AS TEXT) IS NULL`, as PostgreSQL must know each
//! parameter's type when it prepares the statement); where the engines differ (schema,
//! JSON functions, row ids) they ask [`Db::backend`] and pass each its own text. Values cross the
//! boundary as [`Val`] (parameters) and [`Row`] (results), so both engines give the same Rust
//! types. Every call blocks: stores run on their own threads (or `spawn_blocking`), never on
//! async workers.
//!
//! - A PostgreSQL connection that drops (the server restarted, a failover) is opened again on
//!   the next call; the call that met the drop fails with a clear error.
//! - A transaction that PostgreSQL aborts for a deadlock or a serialization failure (two
//!   replicas writing the same rows) is run again, up to [`RETRIES`] times.
//! - Schemas are versioned per component and migrated at start ([`migrate`]), safely when
//!   several replicas start at once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

mod leader;
mod migrate;
pub mod objects;
mod val;

#[cfg(feature = "testing")]
pub mod testing;

pub use leader::{Leadership, advisory_lock_held};
pub use migrate::{Migration, migrate};
pub use val::{Cell, FromVal, Row, Val};

/// How often a transaction aborted by a deadlock or a serialization failure is run again.
pub const RETRIES: usize = 5;

/// Where the state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A SQLite database in memory (tests, one-off analysis).
    Memory,
    /// A PostgreSQL connection string, `postgres://user:password@host:port/database?…` or the
    /// `key=value` form.
    Postgres(String),
}

impl Location {
    /// A PostgreSQL URL (`postgres://`, `postgresql://`), else a path to a SQLite file.
    pub fn parse(text: &str) -> Location {
        if is_postgres(text) { Location::Postgres(text.to_string()) } else { Location::Sqlite(PathBuf::from(text)) }
    }

    /// The location with any password replaced by `***`, for messages and logs.
    pub fn redacted(&self) -> String {
        match self {
            Location::Sqlite(p) => p.display().to_string(),
            Location::Memory => ":memory:".into(),
            Location::Postgres(url) => redact(url),
        }
    }
}

/// Whether a `--database` value names PostgreSQL.
pub fn is_postgres(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

/// A connection string with its password replaced by `***`.
pub fn redact(url: &str) -> String {
    if let Some(rest) = url.split_once("://").map(|(_, r)| r)
        && let Some((auth, _)) = rest.split_once('@')
        && let Some((_, password)) = auth.split_once(':')
        && !password.is_empty()
    {
        return url.replacen(&format!(":{password}@"), ":***@", 1);
    }
    url.to_string()
}

/// Which engine a [`Db`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A failure of the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite failed.
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed (the server's own message, with its SQLSTATE, when it sent one).
    #[error("PostgreSQL ({where_}): {message}")]
    Postgres {
        /// The server, password hidden.
        where_: String,
        /// What went wrong.
        message: String,
        /// The SQLSTATE code, when the server answered one.
        code: Option<String>,
    },
    /// A value of a type the caller did not expect.
    #[error("{0}")]
    Type(String),
}

impl Error {
    fn postgres(e: &postgres::Error, where_: &str) -> Error {
        let (message, code) = match e.as_db_error() {
            Some(db) => {
                let mut m = format!("{}: {}", db.severity(), db.message());
                if let Some(detail) = db.detail() {
                    m.push_str(&format!(" ({detail})"));
                }
                (m, Some(db.code().code().to_string()))
            }
            None => {
                let mut m = e.to_string();
                let mut source = std::error::Error::source(e);
                while let Some(s) = source {
                    m.push_str(&format!(": {s}"));
                    source = s.source();
                }
                (m, e.code().map(|c| c.code().to_string()))
            }
        };
        Error::Postgres { where_: where_.to_string(), message, code }
    }

    /// Whether the store could not be reached at all (no connection, the server shutting down
    /// or starting), as opposed to refusing a statement.
    pub fn is_unreachable(&self) -> bool {
        match self {
            Error::Postgres { code: None, .. } => true,
            Error::Postgres { code: Some(c), .. } => c.starts_with("08") || c.starts_with("57P"),
            _ => false,
        }
    }

    /// Whether running the transaction again may succeed (PostgreSQL chose it as the victim of
    /// a deadlock or a serialization failure).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Postgres { code: Some(c), .. } if c == "40001" || c == "40P01")
    }
}

/// The result of a store call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

struct Pg {
    client: Option<postgres::Client>,
    url: String,
    where_: String,
    /// Prepared statements by their text in the common dialect.
    cache: HashMap<String, postgres::Statement>,
}

/// Closing a connection blocks on the client's own runtime, which must not happen on an async
/// worker (a store dropped with a task when a server shuts down): the client is closed on a
/// thread of its own.
impl Drop for Pg {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let closing = std::thread::Builder::new().name("assay-store-close".into()).spawn(move || drop(client));
            if let Ok(handle) = closing {
                let _ = handle.join();
            }
        }
    }
}

enum Conn {
    Sqlite(rusqlite::Connection),
    Postgres(Box<Pg>),
}

/// One connection to the store. Calls take `&self` and hold the connection for their
/// duration, so a `Db` can be shared by threads (each waits its turn).
pub struct Db {
    conn: Mutex<Conn>,
    backend: Backend,
    location: Location,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("backend", &self.backend).field("location", &self.location.redacted()).finish()
    }
}

/// How long a PostgreSQL connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Takes `sslrootcert=PATH` (libpq's parameter, which the client's parser does not know) out of
/// a URL's query.
fn split_root_cert(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else { return (url.to_string(), None) };
    let mut root = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.strip_prefix("sslrootcert=") {
            Some(path) => {
                root = Some(path.to_string());
                false
            }
            None => true,
        })
        .collect();
    let url = if rest.is_empty() { base.to_string() } else { format!("{base}?{}", rest.join("&")) };
    (url, root)
}

/// Roots that server certificates are checked against: Mozilla's, the system's (read once),
/// and `extra` (a PEM file: `sslrootcert=` or `PGSSLROOTCERT`, as libpq reads them).
fn tls(extra: Option<&str>, where_: &str) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    static SYSTEM: std::sync::OnceLock<Vec<CertificateDer<'static>>> = std::sync::OnceLock::new();
    let failed = |message: String| Error::Postgres { where_: where_.to_string(), message, code: None };
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in SYSTEM.get_or_init(|| rustls_native_certs::load_native_certs().certs) {
        let _ = roots.add(cert.clone());
    }
    let extra = extra.map(str::to_string).or_else(|| std::env::var("PGSSLROOTCERT").ok());
    if let Some(path) = extra {
        let certs = CertificateDer::pem_file_iter(&path)
            .map_err(|e| failed(format!("reading the root certificates {path}: {e}")))?;
        for cert in certs {
            let cert = cert.map_err(|e| failed(format!("reading the root certificates {path}: {e}")))?;
            roots.add(cert).map_err(|e| failed(format!("a root certificate in {path}: {e}")))?;
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| failed(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

fn connect(url: &str, where_: &str) -> Result<postgres::Client> {
    let (url, root) = split_root_cert(url);
    let mut config: postgres::Config = url.parse().map_err(|e: postgres::Error| Error::postgres(&e, where_))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("assay");
    }
    // A replica that dies with a claim in hand frees it when the server notices: keepalives
    // make that seconds, not the kernel's hours.
    config.keepalives(true).keepalives_idle(Duration::from_secs(10));
    // `sslmode=prefer` (the default) tries TLS and falls back to plain text when the server
    // has none; `require` insists; `disable` never tries.
    match config.get_ssl_mode() {
        postgres::config::SslMode::Disable => config.connect(postgres::NoTls),
        _ => config.connect(tls(root.as_deref(), where_)?),
    }
    .map_err(|e| Error::postgres(&e, where_))
}

impl Db {
    /// Opens the store: a SQLite file (created if missing), an in-memory SQLite database, or a
    /// PostgreSQL connection.
    pub fn open(location: &Location) -> Result<Db> {
        let (conn, backend) = match location {
            Location::Sqlite(path) => (Conn::Sqlite(sqlite(rusqlite::Connection::open(path))?), Backend::Sqlite),
            Location::Memory => (Conn::Sqlite(sqlite(rusqlite::Connection::open_in_memory())?), Backend::Sqlite),
            Location::Postgres(url) => {
                let where_ = redact(url);
                let client = connect(url, &where_)?;
                (
                    Conn::Postgres(Box::new(Pg {
                        client: Some(client),
                        url: url.clone(),
                        where_,
                        cache: HashMap::new(),
                    })),
                    Backend::Postgres,
                )
            }
        };
        Ok(Db { conn: Mutex::new(conn), backend, location: location.clone() })
    }

    /// Opens a SQLite file.
    pub fn sqlite(path: &Path) -> Result<Db> {
        Db::open(&Location::Sqlite(path.to_path_buf()))
    }

    /// Which engine this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Where it is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    fn lock(&self) -> MutexGuard<'_, Conn> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs statements with no parameters and no results (schema, pragmas).
    pub fn batch(&self, sql: &str) -> Result<()> {
        match &mut *self.lock() {
            Conn::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Conn::Postgres(pg) => {
                let where_ = pg.where_.clone();
                let result = pg.client()?.batch_execute(sql);
                result.map_err(|e| pg.failed(&e, &where_))
            }
        }
    }

    /// Runs one statement; the number of rows it changed.
    pub fn execute(&self, sql: &str, params: &[Val<'_>]) -> Result<u64> {
        self.transaction(|tx| tx.execute(sql, params))
    }

    /// Runs one query; its rows.
    pub fn rows(&self, sql: &str, params: &[Val<'_>]) -> Result<Vec<Row>> {
        match &mut *self.lock() {
            Conn::Sqlite(c) => sqlite_rows(c, sql, params),
            Conn::Postgres(pg) => pg.rows(sql, params),
        }
    }

    /// Runs one query; its first row, if any.
    pub fn row(&self, sql: &str, params: &[Val<'_>]) -> Result<Option<Row>> {
        Ok(self.rows(sql, params)?.into_iter().next())
    }

    /// Whether the store answers (a trivial query), for readiness.
    pub fn ping(&self) -> Result<()> {
        self.rows("SELECT 1", &[]).map(|_| ())
    }

    /// Runs `f` in one transaction, committed when `f` returns `Ok` and rolled back otherwise.
    /// On PostgreSQL, a transaction aborted by a deadlock or a serialization failure is run
    /// again (so `f` must not have effects outside the store that a second run would repeat).
    /// SQLite transactions take the write lock at their start (`BEGIN IMMEDIATE`), so that two
    /// connections that both write never fail each other halfway.
    pub fn transaction<T>(&self, mut f: impl FnMut(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        let mut guard = self.lock();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = match &mut *guard {
                Conn::Sqlite(c) => {
                    let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                    let mut t = Tx { inner: TxInner::Sqlite(tx) };
                    match f(&mut t) {
                        Ok(v) => {
                            let TxInner::Sqlite(tx) = t.inner else { unreachable!("a SQLite transaction") };
                            tx.commit()?;
                            Ok(v)
                        }
                        Err(e) => Err(e),
                    }
                }
                Conn::Postgres(pg) => pg.transaction(&mut f),
            };
            match result {
                Err(e) if e.is_retryable() && attempt <= RETRIES => {
                    tracing::debug!(error = %e, attempt, "a PostgreSQL transaction was aborted; running it again");
                    std::thread::sleep(Duration::from_millis(10 * (1 << attempt)));
                }
                other => return other,
            }
        }
    }
}

fn sqlite(conn: rusqlite::Result<rusqlite::Connection>) -> Result<rusqlite::Connection> {
    let conn = conn?;
    // Several connections share a file (a writer, readers, a checker): one waits for another
    // rather than failing.
    conn.busy_timeout(Duration::from_secs(60))?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
    Ok(conn)
}

fn sqlite_rows(c: &rusqlite::Connection, sql: &str, params: &[Val<'_>]) -> Result<Vec<Row>> {
    let mut stmt = c.prepare_cached(sql)?;
    let n = stmt.column_count();
    let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(Row::from_sqlite(r, n)?);
    }
    Ok(out)
}

impl Pg {
    fn client(&mut self) -> Result<&mut postgres::Client> {
        if self.client.as_ref().is_none_or(postgres::Client::is_closed) {
            self.cache.clear();
            self.client = None;
            let client = connect(&self.url, &self.where_)?;
            tracing::info!(database = %self.where_, "connected to PostgreSQL");
            self.client = Some(client);
        }
        Ok(self.client.as_mut().expect("connected above"))
    }

    /// Turns an error into ours; a connection that is gone is dropped so that the next call
    /// connects again.
    fn failed(&mut self, e: &postgres::Error, where_: &str) -> Error {
        if e.is_closed() || self.client.as_ref().is_some_and(postgres::Client::is_closed) {
            self.client = None;
            self.cache.clear();
        }
        Error::postgres(e, where_)
    }

    fn rows(&mut self, sql: &str, params: &[Val<'_>]) -> Result<Vec<Row>> {
        let where_ = self.where_.clone();
        let stmt = self.statement(sql)?;
        let client = self.client()?;
        let result = client.query(&stmt, &val::pg_params(params));
        match result {
            Ok(rows) => rows.iter().map(Row::from_postgres).collect(),
            Err(e) => Err(self.failed(&e, &where_)),
        }
    }

    fn statement(&mut self, sql: &str) -> Result<postgres::Statement> {
        if let Some(s) = self.cache.get(sql) {
            return Ok(s.clone());
        }
        let where_ = self.where_.clone();
        let text = numbered_params(sql);
        let prepared = self.client()?.prepare(&text);
        match prepared {
            Ok(s) => {
                self.cache.insert(sql.to_string(), s.clone());
                Ok(s)
            }
            Err(e) => Err(self.failed(&e, &where_)),
        }
    }

    fn transaction<T>(&mut self, f: &mut impl FnMut(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        let where_ = self.where_.clone();
        self.client()?;
        let outcome = {
            let Pg { client, cache, .. } = &mut *self;
            let client = client.as_mut().expect("connected above");
            match client.transaction() {
                Err(e) => Err(Error::postgres(&e, &where_)),
                Ok(tx) => {
                    let mut t = Tx { inner: TxInner::Postgres { tx, cache, where_: where_.clone() } };
                    let result = f(&mut t);
                    let TxInner::Postgres { tx, .. } = t.inner else { unreachable!("a PostgreSQL transaction") };
                    match result {
                        Ok(v) => tx.commit().map(|()| v).map_err(|e| Error::postgres(&e, &where_)),
                        Err(e) => {
                            let _ = tx.rollback();
                            Err(e)
                        }
                    }
                }
            }
        };
        if self.client.as_ref().is_some_and(postgres::Client::is_closed) {
            self.client = None;
            self.cache.clear();
        }
        outcome
    }
}

/// `?1` → `$1`, outside quoted text: the common dialect's parameters in PostgreSQL's form.
fn numbered_params(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
                out.push(c);
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) => out.push('$'),
            None => out.push(c),
        }
    }
    out
}

enum TxInner<'a> {
    Sqlite(rusqlite::Transaction<'a>),
    Postgres { tx: postgres::Transaction<'a>, cache: &'a mut HashMap<String, postgres::Statement>, where_: String },
}

/// A transaction in progress (see [`Db::transaction`]).
pub struct Tx<'a> {
    inner: TxInner<'a>,
}

impl std::fmt::Debug for Tx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tx")
    }
}

impl Tx<'_> {
    /// Which engine this is.
    pub fn backend(&self) -> Backend {
        match self.inner {
            TxInner::Sqlite(_) => Backend::Sqlite,
            TxInner::Postgres { .. } => Backend::Postgres,
        }
    }

    fn pg_statement(&mut self, sql: &str) -> Result<postgres::Statement> {
        let TxInner::Postgres { tx, cache, where_ } = &mut self.inner else { unreachable!("PostgreSQL only") };
        if let Some(s) = cache.get(sql) {
            return Ok(s.clone());
        }
        let s = tx.prepare(&numbered_params(sql)).map_err(|e| Error::postgres(&e, where_))?;
        cache.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    /// Runs one statement; the number of rows it changed.
    pub fn execute(&mut self, sql: &str, params: &[Val<'_>]) -> Result<u64> {
        if let TxInner::Sqlite(tx) = &self.inner {
            return Ok(tx.prepare_cached(sql)?.execute(rusqlite::params_from_iter(params.iter()))? as u64);
        }
        let stmt = self.pg_statement(sql)?;
        let TxInner::Postgres { tx, where_, .. } = &mut self.inner else { unreachable!("PostgreSQL only") };
        tx.execute(&stmt, &val::pg_params(params)).map_err(|e| Error::postgres(&e, where_))
    }

    /// Runs one query; its rows.
    pub fn rows(&mut self, sql: &str, params: &[Val<'_>]) -> Result<Vec<Row>> {
        if let TxInner::Sqlite(tx) = &self.inner {
            return sqlite_rows(tx, sql, params);
        }
        let stmt = self.pg_statement(sql)?;
        let TxInner::Postgres { tx, where_, .. } = &mut self.inner else { unreachable!("PostgreSQL only") };
        let rows = tx.query(&stmt, &val::pg_params(params)).map_err(|e| Error::postgres(&e, where_))?;
        rows.iter().map(Row::from_postgres).collect()
    }

    /// Runs one query; its first row, if any.
    pub fn row(&mut self, sql: &str, params: &[Val<'_>]) -> Result<Option<Row>> {
        Ok(self.rows(sql, params)?.into_iter().next())
    }

    /// Runs statements with no parameters and no results (schema).
    pub fn batch(&mut self, sql: &str) -> Result<()> {
        match &mut self.inner {
            TxInner::Sqlite(tx) => Ok(tx.execute_batch(sql)?),
            TxInner::Postgres { tx, where_, .. } => tx.batch_execute(sql).map_err(|e| Error::postgres(&e, where_)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_numbered_for_postgres_outside_quotes() {
        assert_eq!(
            numbered_params("SELECT ?1, '?2', \"?3\" WHERE a = ?12 AND b ? 'x'"),
            "SELECT $1, '?2', \"?3\" WHERE a = $12 AND b ? 'x'"
        );
    }

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(redact("postgres://assay:s3cret@db:5432/assay"), "postgres://assay:***@db:5432/assay");
        assert_eq!(redact("postgres://db/assay"), "postgres://db/assay");
        assert_eq!(Location::parse("/var/lib/assay/x.sqlite"), Location::Sqlite("/var/lib/assay/x.sqlite".into()));
    }
}
