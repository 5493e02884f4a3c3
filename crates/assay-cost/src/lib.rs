//! FinOps: FOCUS billing data, its store, and allocation of cost.
//!
//! - [`spec`] and [`validate`] are the sans-IO core: the FOCUS columns and the validation of a
//!   row's text into typed cells.
//! - [`ingest`] and [`store`] are the edge: exports read from disk into Parquet partitioned by
//!   billing period and account, queried with DataFusion as the table `focus`.
//! - [`allocation`] groups cost by dimensions and tags, with totals that add up to the cent.
//! - [`forecast`] forecasts daily cost (augurs MSTL and ETS) and backtests the forecast;
//!   [`budgets`] reads each budget's spend and turns it and the forecast into a budget's status.
//! - [`check`] is the cost side of `assay check`: pricing head and base, budget projections and
//!   findings, and the `input.cost` document given to Rego.
//! - [`pricing`] estimates the monthly cost of the workloads an estate declares; [`rightsize`]
//!   recommends requests from observed usage.
//! - [`generate`] writes realistic FOCUS data with labelled anomalies.
//! - [`anomaly`] scores a series against its own seasonal past, online.
//! - [`series`] reads daily cost per service, region, account and cost center from the store;
//!   [`cost_anomaly`] finds the days that cost more than expected, and why.
//!
//! This crate must not know about policies.

pub mod allocation;
pub mod anomaly;
pub mod batch;
pub mod budgets;
pub mod check;
pub mod chunks;
pub mod cluster;
pub mod cost_anomaly;
pub mod datetime;
pub mod forecast;
pub mod generate;
pub mod ingest;
pub mod order;
pub mod pricing;
pub mod prometheus;
pub mod rightsize;
pub mod series;
pub mod spec;
pub mod sql;
pub mod store;
pub mod terraform;
pub mod unit;
pub mod usage;
pub mod validate;
pub mod waste;

use std::path::Path;

use datafusion::arrow::record_batch::RecordBatch;

pub use ingest::{IngestReport, ingest};
pub use store::Store;

/// Errors of the cost crate. Problems with single rows are not errors: they are rejects.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// An input file is not usable as a whole (not FOCUS, not CSV or Parquet).
    #[error("{path}: {message}")]
    Input {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The billing store failed.
    #[error("billing store: {0}")]
    Store(String),
    /// A query failed (bad SQL, unknown column).
    #[error("{0}")]
    Query(String),
    /// A value given as an argument is not valid (a day, a dimension).
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io { path: path.display().to_string(), source }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Runs SQL over the table `focus`, FOCUS column names unquoted in any case (see [`sql`]).
pub async fn query(store: &Store, sql: &str) -> Result<Vec<RecordBatch>> {
    sql::query(store, sql, &[]).await
}
