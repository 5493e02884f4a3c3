//! The `assay` command line: a thin shell over the library crates.
//!
//! It parses arguments, reads files and Git objects through `assay-estate`, hands values to the
//! analysis crates, prints their renderings, and maps outcomes to exit codes. It holds no
//! business logic.

mod check;
mod cost;
mod policy;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Git-driven governance for AI platforms: policy, cost, lineage and a verifiable audit trail.
#[derive(Debug, Parser)]
#[command(name = "assay", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check an estate, or a change to it, against its policies and constraints.
    Check(CheckArgs),
    /// Test and verify policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// FinOps: ingest FOCUS billing data, query it, allocate cost.
    Cost {
        /// The data directory holding the billing store.
        #[arg(long, global = true, env = "ASSAY_DATA", default_value = "assay-data")]
        data: PathBuf,
        #[command(subcommand)]
        command: CostCommand,
    },
}

/// Output formats of tabular results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    /// An aligned text table.
    Table,
    /// CSV with a header row.
    Csv,
    /// JSON.
    Json,
}

#[derive(Debug, Subcommand)]
enum CostCommand {
    /// Ingest FOCUS exports (CSV, CSV.gz or Parquet); each (billing period, account) replaces what was stored.
    Ingest {
        /// Export files; give all parts of one export together.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run DataFusion SQL over the table `focus`.
    Query {
        /// The SQL, for example "SELECT ServiceName, SUM(BilledCost) FROM focus GROUP BY 1".
        sql: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// Write realistic FOCUS billing data with labelled anomalies (for evaluation and benchmarks).
    Generate {
        /// Number of days.
        #[arg(long, default_value_t = 120)]
        days: u32,
        /// Random seed; the same seed writes the same data.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Resources per series: rows per day grow with it.
        #[arg(long, default_value_t = 3)]
        resources: u32,
        /// First day, YYYY-MM-DD.
        #[arg(long, default_value = "2024-01-01")]
        start: String,
        /// Directory to write focus-YYYY-MM.csv files and anomalies.json into.
        #[arg(long)]
        out: PathBuf,
    },
    /// Cost per group, with share of total; untagged spend is its own group.
    Report {
        /// Dimensions: FOCUS columns, BillingPeriod, or tag:KEY, comma-separated.
        #[arg(long, default_value = "ServiceName")]
        by: String,
        /// Only this billing period (YYYY-MM).
        #[arg(long)]
        period: Option<String>,
        /// The cost column to sum.
        #[arg(long, default_value = "EffectiveCost")]
        metric: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
}

/// Output formats of `assay check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CheckFormat {
    /// Violations grouped by file, warnings apart, and a one-line summary.
    Table,
    /// The verdict itself (see docs/verdict.md).
    Json,
    /// SARIF 2.1.0, for GitHub code scanning and other SARIF consumers.
    Sarif,
    /// Markdown for a pull-request comment.
    Markdown,
    /// JUnit XML for CI systems.
    Junit,
}

#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// The estate: a directory, or a directory inside a Git repository when --rev or --base is given.
    #[arg(default_value = ".")]
    estate: PathBuf,
    /// Check the estate as it is at this Git revision (branch, tag, SHA) instead of the files on disk.
    #[arg(long)]
    rev: Option<String>,
    /// Report on the change from this Git revision: new, fixed and unchanged violations.
    #[arg(long)]
    base: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = CheckFormat::Table)]
    format: CheckFormat,
    /// Require every commit in base..rev (or rev alone) to be signed by a trusted signer.
    #[arg(long)]
    require_signed: bool,
    /// Write the output to this file instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Run the test_* rules of *_test.rego files, as `opa test` does.
    Test(PolicyTestArgs),
    /// Run Gatekeeper suite.yaml files, as `gator verify` does.
    Verify(PolicyVerifyArgs),
}

#[derive(Debug, clap::Args)]
struct PolicyTestArgs {
    /// Directory (or estate) holding Rego files and data.json/data.yaml files.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Show every test, and the print output of failing tests.
    #[arg(short, long)]
    verbose: bool,
    /// Treat Rego files as v0 syntax unless they say otherwise.
    #[arg(long)]
    v0_compatible: bool,
}

#[derive(Debug, clap::Args)]
struct PolicyVerifyArgs {
    /// A suite file, or a directory searched recursively for suites.
    dir: PathBuf,
    /// Show every test and case.
    #[arg(short, long)]
    verbose: bool,
    /// A file of cases expected to fail (`suite/test/case  # why` per line): known gaps of the
    /// Rego engine. They are reported as XFAIL; one that passes is a failure, so the list stays true.
    #[arg(long, value_name = "FILE")]
    expect_fail: Option<PathBuf>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ASSAY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => check::run(args),
        Command::Policy(PolicyCommand::Test(args)) => policy::test(args),
        Command::Policy(PolicyCommand::Verify(args)) => policy::verify(args),
        Command::Cost { data, command } => cost::run(data, command),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
