//! The `assay` command line: a thin shell over the library crates.
//!
//! It parses arguments, reads files and Git objects through `assay-estate`, hands values to the
//! analysis crates, prints their renderings, and maps outcomes to exit codes. It holds no
//! business logic.

mod check;
mod cost;
mod detect;
mod detect_eval;
mod drift;
mod lineage;
mod log;
mod policy;
mod rightsize;
mod serve;
mod unit;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// mimalloc: the server and `check` allocate from many threads at once, where glibc's malloc
/// spent a fifth of the lineage intake's CPU (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Lets a long-running process give back what a burst of work freed. mimalloc returns freed
/// memory to the system (purges it) once it has been free for a second, but it only looks when
/// it next frees a whole page: a server that goes idle after a burst (a comparison of ten
/// thousand live objects, a large admission review) kept what the burst freed for as long as it
/// stayed idle, 20 to 40 MiB (BENCHMARKS.md). A thread frees one block of a size mimalloc maps
/// on its own every two seconds, which is when it purges what is due. Reserving the block does
/// not touch its pages, so it costs no resident memory.
pub(crate) fn return_freed_memory() {
    let purge = std::thread::Builder::new().name("assay-purge".into()).spawn(|| {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(2));
            let mut block: Vec<u8> = Vec::new();
            if block.try_reserve_exact(2 << 20).is_ok() {
                std::hint::black_box(&block);
            }
        }
    });
    if let Err(e) = purge {
        tracing::debug!("freed memory is returned only as the allocator next frees a page: {e}");
    }
}

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
    /// The verifiable ledger: a Merkle transparency log (C2SP tlog-tiles) of signed checkpoints.
    #[command(subcommand)]
    Log(LogCommand),
    /// Enforce the estate's policies at run time: Kubernetes admission webhook, OPA's data API,
    /// every decision in the ledger.
    Serve(Box<serve::ServeArgs>),
    /// The web UI and its read API alone, for local use: `assay serve`'s flags, its pages under
    /// /ui/ and the routes that read, without enforcement (no admission, data API, event or
    /// lineage intake); `--ledger` without a key shows a ledger read-only. Listens on
    /// 127.0.0.1:8080 unless told otherwise.
    Ui(Box<serve::ServeArgs>),
    /// Score any time series in a CSV file for anomalies: a score from 0 to 1 and a flag per row.
    Detect(DetectArgs),
    /// Is each cluster in the state the estate declares? Live objects compared with the estate
    /// (in sync, drifted, missing, extra), and with --audit the estate's policies on them.
    /// Exit 0 in sync, 1 drift or violations, 2 something could not be read.
    Drift(drift::DriftArgs),
    /// Data lineage: OpenLineage events into the lineage graph, and walks of it.
    Lineage {
        /// The data directory holding the lineage graph (`lineage.sqlite`), or the PostgreSQL
        /// database that `assay serve --database` replicas share (`postgres://…`).
        #[arg(long, global = true, env = "ASSAY_DATA", default_value = "assay-data")]
        data: PathBuf,
        #[command(subcommand)]
        command: lineage::LineageCommand,
    },
    /// FinOps: ingest FOCUS billing data, query it, allocate cost.
    Cost {
        /// The data directory holding the billing store.
        #[arg(long, global = true, env = "ASSAY_DATA", default_value = "assay-data")]
        data: PathBuf,
        /// The most memory a query over the billing store may hold (`512MiB`, `4GiB`, bytes);
        /// past it, sorts and aggregations spill to the temporary directory. 2 GiB unless set.
        #[arg(long, global = true, env = "ASSAY_QUERY_MEMORY", value_parser = parse_size)]
        memory_limit: Option<usize>,
        /// Run queries, reports and anomaly detection on a Ballista cluster: its scheduler's URL,
        /// `df://HOST:PORT` (executors started with `assay cost cluster executor`). The data must
        /// be where every executor reads it: object storage, or a filesystem they all mount.
        #[arg(long, global = true, env = "ASSAY_COST_CLUSTER", value_name = "URL")]
        cluster: Option<String>,
        #[command(subcommand)]
        command: CostCommand,
    },
}

/// A size in bytes: a number with an optional unit (`K`, `M`, `G`, `KiB`, `MiB`, `GiB`, `KB`,
/// `MB`, `GB`; all powers of 1024, as memory is counted).
fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: usize = number.parse().map_err(|_| format!("{text:?} is not a size such as 512MiB or 4GiB"))?;
    let scale: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("{other:?} is not a unit of size (use K, M or G, or KiB, MiB, GiB)")),
    };
    n.checked_mul(scale).ok_or_else(|| format!("{text:?} is too large"))
}

#[derive(Debug, Subcommand)]
enum LogCommand {
    /// Make an Ed25519 key pair for signing checkpoints, in the C2SP signed-note formats.
    Keygen {
        /// The key name, usually the log's origin (for example log.example.com/audit).
        name: String,
        /// Where to write the private key (created with mode 0600; never overwritten).
        #[arg(long, default_value = "assay-log.key")]
        private: PathBuf,
        /// Where to write the verifier key.
        #[arg(long, default_value = "assay-log.pub")]
        public: PathBuf,
        /// Also print the private key on standard output.
        #[arg(long)]
        print_private: bool,
    },
    /// Create a new, empty log in DIR (missing or empty) or on object storage (s3://bucket/prefix,
    /// gs://…, az://…, holding nothing); its origin is the key's name.
    Init {
        /// The log's directory, or its object storage URL.
        dir: PathBuf,
        /// The private key that signs checkpoints.
        #[arg(long, env = "ASSAY_LEDGER_KEY")]
        key: PathBuf,
    },
    /// Append each file's bytes as one entry; print each index once a checkpoint covering it is durable.
    Append {
        /// The log's directory.
        dir: PathBuf,
        /// The private key that signs checkpoints.
        #[arg(long, env = "ASSAY_LEDGER_KEY")]
        key: PathBuf,
        /// Each line of each file (or of standard input, `-`) is one entry, appended in batches as it arrives.
        #[arg(long)]
        lines: bool,
        /// Files to append (`-` for standard input).
        files: Vec<PathBuf>,
    },
    /// Print entries: all, one (INDEX), or the last N.
    Show {
        /// The log's directory, or its object storage URL.
        dir: PathBuf,
        /// One entry.
        index: Option<u64>,
        /// The last N entries.
        #[arg(long, conflicts_with = "index")]
        tail: Option<u64>,
        /// One JSON object per entry (index, size, leaf hash, and the entry as JSON, text or base64).
        #[arg(long)]
        json: bool,
        /// Check the checkpoint's signature with this verifier key first.
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Re-read every entry, recompute every tile and the root, check the signature; name every problem.
    Verify {
        /// The log's directory, the URL it is served at in the tlog-tiles layout
        /// (`https://host/ledger`, as `assay serve` serves it), or its object storage URL
        /// (`s3://bucket/prefix`, `gs://…`, `az://…`; credentials from the environment).
        dir: PathBuf,
        /// The verifier key (a file, or the key text).
        #[arg(long, env = "ASSAY_LEDGER_VERIFIER")]
        key: PathBuf,
        /// A checkpoint seen earlier: the log must extend it (no rollback, no rewritten history).
        #[arg(long, value_name = "CHECKPOINT_FILE")]
        since: Option<PathBuf>,
    },
    /// Write a receipt (C2SP tlog-proof) that entry INDEX is in the log.
    Prove {
        /// The log's directory, or its object storage URL.
        dir: PathBuf,
        /// The entry's index.
        index: u64,
        /// Check the checkpoint's signature with this verifier key first.
        #[arg(long)]
        key: Option<PathBuf>,
        /// Write the receipt here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Verify a receipt offline: the entry is in the log whose checkpoint the key signed.
    VerifyReceipt {
        /// The receipt (`assay log prove`).
        receipt: PathBuf,
        /// The entry's bytes.
        #[arg(long)]
        entry: PathBuf,
        /// The log's verifier key (a file, or the key text).
        #[arg(long, env = "ASSAY_LEDGER_VERIFIER")]
        key: PathBuf,
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

/// A node of a Ballista cluster.
#[derive(Debug, Subcommand)]
enum ClusterRole {
    /// The scheduler: takes plans from `assay cost --cluster` and hands their tasks to executors.
    Scheduler {
        /// The address to listen on (gRPC, Ballista's protocol).
        #[arg(long, default_value = "127.0.0.1:50050")]
        addr: std::net::SocketAddr,
    },
    /// An executor: runs tasks over the data and serves their results (Arrow Flight). Its tasks
    /// hold at most `--memory-limit` together (default: 70% of the machine's memory).
    Executor {
        /// The scheduler, HOST:PORT.
        #[arg(long, default_value = "127.0.0.1:50050")]
        scheduler: String,
        /// The address to serve results on; the scheduler reaches it at this IP.
        #[arg(long, default_value = "127.0.0.1:50051")]
        addr: std::net::SocketAddr,
        /// The port the scheduler hands tasks to.
        #[arg(long, default_value_t = 50052)]
        grpc_port: u16,
        /// Tasks run at once (default: the machine's cores).
        #[arg(long)]
        concurrency: Option<usize>,
        /// Where shuffle files go (default: a temporary directory).
        #[arg(long)]
        work_dir: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum CostCommand {
    /// Run a node of a Ballista cluster for `--cluster`: one scheduler, and executors on the
    /// machines that read the data. They run until stopped.
    Cluster {
        #[command(subcommand)]
        role: ClusterRole,
    },
    /// Ingest FOCUS exports (CSV, CSV.gz or Parquet); each (billing period, account) replaces what was stored.
    Ingest {
        /// Export files; give all parts of one export together.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run SQL over the table `focus` (also `focus_data_table`): FOCUS column names unquoted, in any
    /// case, as DuckDB, Athena and BigQuery take them.
    Query {
        /// The SQL, for example "SELECT ServiceName, SUM(BilledCost) FROM focus GROUP BY 1".
        sql: String,
        /// A value for the query's next `?` placeholder (give one per placeholder, in order).
        #[arg(long = "param", value_name = "VALUE")]
        params: Vec<String>,
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
        /// Inject no anomalies (anomalies.json is then empty).
        #[arg(long)]
        no_anomalies: bool,
        /// Directory to write focus-YYYY-MM.csv files and anomalies.json into.
        #[arg(long)]
        out: PathBuf,
    },
    /// Days that cost more than their seasonal past predicts, per service, region, account and
    /// cost center, each with its impact and root cause.
    Anomalies {
        /// Only anomalies that start on or after this day (YYYY-MM-DD).
        #[arg(long)]
        since: Option<String>,
        #[command(flatten)]
        detector: AnomalyArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// Precision, recall and F1 of anomaly detection against a labels file from `cost generate`.
    EvalAnomalies {
        /// The anomalies.json written by `assay cost generate`.
        #[arg(long)]
        labels: PathBuf,
        #[command(flatten)]
        detector: AnomalyArgs,
        /// Output format (table or json).
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// Forecast daily cost (augurs MSTL + ETS, weekly season), in total, per budget, or per dimension.
    Forecast {
        /// Days to forecast.
        #[arg(long, default_value_t = 30)]
        days: usize,
        /// Instead, hold back this many of the last days, forecast them from the rest, and report
        /// the accuracy (MASE) beside a seasonal-naive forecast's.
        #[arg(long, value_name = "DAYS", num_args = 0..=1, default_missing_value = "28")]
        backtest: Option<usize>,
        /// Days forecast from each origin in a backtest (the held-back days are forecast in
        /// folds of this many, each from all days before it).
        #[arg(long, default_value_t = 7)]
        horizon: usize,
        /// Forecast each value of this dimension: service, region, account or cost-center.
        #[arg(long)]
        by: Option<String>,
        /// Forecast each budget scope of this estate as well.
        #[arg(long)]
        estate: Option<PathBuf>,
        /// The cost column.
        #[arg(long, default_value = "EffectiveCost")]
        metric: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// The estate's budgets: spend to date, forecast of the period's end with 80% and 95%
    /// intervals, predicted breach date, alerts crossed.
    Budgets {
        /// The estate whose budgets/*.yaml to read.
        #[arg(long, default_value = ".")]
        estate: PathBuf,
        /// Evaluate as of this day (YYYY-MM-DD) instead of the last day with billing data.
        #[arg(long)]
        as_of: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// What the estate's workloads should request, from what they used (Prometheus), and the
    /// GPUs that sat idle, priced; with --write, the manifests edited in place.
    Rightsize(rightsize::RightsizeArgs),
    /// AI unit economics: cost per model and per million tokens (billing by tag, vLLM's token
    /// counters), or per training run (the lineage graph's runs that wrote a model).
    Unit(unit::UnitArgs),
    /// What each workload of the estate's manifests is estimated to cost a month, from pricing/.
    Estimate {
        /// The estate.
        #[arg(long, default_value = ".")]
        estate: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
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

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct DetectArgs {
    #[command(subcommand)]
    command: Option<DetectCommand>,
    /// A CSV file with a header row; `-` reads standard input.
    #[arg(required = true)]
    file: Option<PathBuf>,
    /// The time column: ISO 8601 date-times, or seconds (or milliseconds) since the epoch.
    #[arg(long, required = true)]
    time: Option<String>,
    /// The value column.
    #[arg(long, required = true)]
    value: Option<String>,
    /// Score each row from the rows before it only, as a live stream would.
    #[arg(long)]
    online: bool,
    /// Batch mode: a row is anomalous when its robust z-score reaches this (its score reaches 0.5).
    #[arg(long, default_value_t = 4.0)]
    threshold: f64,
    /// Output format: csv or json (one object per row).
    #[arg(long, value_enum, default_value_t = DetectFormat::Csv)]
    format: DetectFormat,
}

#[derive(Debug, clap::Subcommand)]
enum DetectCommand {
    /// Scores the online detector on labelled series in the Numenta Anomaly Benchmark's layout
    /// (DIR/data/**.csv, DIR/labels/combined_windows.json), with the benchmark's rules.
    Eval(DetectEvalArgs),
}

#[derive(Debug, clap::Args)]
struct DetectEvalArgs {
    /// The corpus: `data/<category>/<file>.csv` and `labels/combined_windows.json`.
    dir: PathBuf,
    /// The time column of every data file.
    #[arg(long, default_value = "timestamp")]
    time: String,
    /// The value column of every data file.
    #[arg(long, default_value = "value")]
    value: String,
    /// NAB's scoring profile.
    #[arg(long, value_enum, default_value_t = NabProfile::Standard)]
    profile: NabProfile,
    /// The flag threshold to report beside the best one.
    #[arg(long, default_value_t = 0.5)]
    threshold: f64,
    /// Also write each series' scores here as `<category>/<file>.csv` (timestamp, score), the
    /// benchmark's results layout, for its own scorer.
    #[arg(long)]
    results: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
}

/// NAB's scoring profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum NabProfile {
    /// Misses and false positives weighed as the benchmark's standard profile does.
    Standard,
    /// False positives cost twice as much.
    LowFp,
    /// Misses cost twice as much.
    LowFn,
}

/// Output formats of `assay detect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DetectFormat {
    /// CSV with a header row.
    Csv,
    /// A JSON array.
    Json,
}

/// Thresholds of cost anomaly detection.
#[derive(Debug, Clone, clap::Args)]
struct AnomalyArgs {
    /// A day is anomalous when its robust z-score against its seasonal past reaches this.
    #[arg(long, default_value_t = 4.0)]
    threshold: f64,
    /// ...and its cost exceeds the expected cost by at least this much (billing currency)...
    #[arg(long, default_value_t = 10.0)]
    min_impact: f64,
    /// ...and by at least this fraction of the expected cost.
    #[arg(long, default_value_t = 0.2)]
    min_relative: f64,
    /// The cost column.
    #[arg(long, default_value = "EffectiveCost")]
    metric: String,
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
    /// Billing data (from `assay cost ingest`) for budget projections: spend to date plus forecast.
    #[arg(long, env = "ASSAY_DATA")]
    data: Option<PathBuf>,
    /// Project budgets as of this day (YYYY-MM-DD) instead of the last day with billing data
    /// (without billing data: today).
    #[arg(long)]
    as_of: Option<String>,
    /// Append the verdict to this ledger (a log made by `assay log init`) as a canonical JSON record.
    #[arg(long, env = "ASSAY_LEDGER")]
    ledger: Option<PathBuf>,
    /// The private key that signs the ledger's checkpoints.
    #[arg(long, env = "ASSAY_LEDGER_KEY")]
    ledger_key: Option<PathBuf>,
    /// With --prometheus: warn of requests far above what the workloads used.
    #[command(flatten)]
    usage: rightsize::PrometheusArgs,
    /// With --prometheus: how much use to compare requests with (14d, 36h).
    #[arg(long, default_value = "14d")]
    usage_window: String,
    /// With --prometheus: the end of that window (RFC 3339); now by default.
    #[arg(long)]
    usage_end: Option<String>,
    /// A Terraform or OpenTofu plan (`terraform show -json PLANFILE`) to check with the
    /// estate's `terraform` policies, besides the plans under `terraform/`; may be repeated.
    #[arg(long, value_name = "FILE")]
    terraform_plan: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Run the test_* rules of *_test.rego files, as `opa test` does.
    Test(PolicyTestArgs),
    /// Run Gatekeeper suite.yaml files, as `gator verify` does.
    Verify(PolicyVerifyArgs),
    /// Evaluate a Rego query over policies, data and an input, as `opa eval` does.
    Eval(PolicyEvalArgs),
}

/// How `assay policy eval` shows its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum EvalFormat {
    /// OPA's `opa eval` JSON document (`result`, `expressions`, `bindings`).
    Json,
    /// The value of a one-expression query; otherwise each result's bindings and values.
    Pretty,
}

#[derive(Debug, clap::Args)]
struct PolicyEvalArgs {
    /// The query, as `opa eval` takes it: `data.k8s.labels.deny`, `x := data.a[_]; x > 1`.
    query: String,
    /// Rego files and data: a `.rego` file, a JSON or YAML data file (merged at the root of
    /// `data`), or a directory (its `.rego` files, and its `data.json`/`data.yaml` files at the
    /// path of their directory; an estate's data as `assay check` roots it). Repeat as needed.
    #[arg(short = 'd', long = "data", value_name = "PATH")]
    data: Vec<PathBuf>,
    /// The input document: a JSON or YAML file, `-` for standard input.
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    input: Option<PathBuf>,
    /// How to show the answer (default json).
    #[arg(short = 'f', long, value_enum, default_value = "json")]
    format: EvalFormat,
    /// Treat Rego files as v0 syntax unless they say otherwise.
    #[arg(long)]
    v0_compatible: bool,
    /// Exit 1 when the query is undefined (no result).
    #[arg(long, conflicts_with = "fail_defined")]
    fail: bool,
    /// Exit 1 when the query is defined (has a result).
    #[arg(long)]
    fail_defined: bool,
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

/// A reader that stops early (`assay check … | head`) closes standard output; printing then
/// fails, which Rust reports as a panic. Exit as a program killed by SIGPIPE does (status 141),
/// quietly, as `cat` or `grep` would.
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message =
            payload.downcast_ref::<String>().map(String::as_str).or_else(|| payload.downcast_ref::<&str>().copied());
        if message.is_some_and(|m| m.starts_with("failed printing to stdout") && m.contains("Broken pipe")) {
            std::process::exit(141);
        }
        default(info);
    }));
}

/// Turns transparent huge pages off for this process (a no-op off Linux). mimalloc asks for
/// them. A server holds a modest heap for weeks, and huge pages keep 2 MiB resident for a few
/// live objects (about 30 MiB of a server watching 10,000 objects); `assay drift` and `assay
/// check` build hundreds of thousands of small JSON values once, and the kernel's clearing and
/// compacting of 2 MiB pages as they are first touched cost them more than they save
/// (BENCHMARKS.md). The billing commands keep them: there they make hash aggregation and
/// ingestion faster.
pub(crate) fn without_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::debug!("transparent huge pages stay on: {e}");
    }
}

fn main() -> ExitCode {
    // ASSAY_LOG sets the level (`info`, `assay_server=debug`); ASSAY_LOG_FORMAT=json writes one
    // JSON object per event, for log pipelines.
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ASSAY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE);
    if std::env::var("ASSAY_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        logs.json().init();
    } else {
        logs.init();
    }
    quiet_on_closed_pipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => check::run(args),
        Command::Policy(PolicyCommand::Test(args)) => policy::test(args),
        Command::Policy(PolicyCommand::Verify(args)) => policy::verify(args),
        Command::Policy(PolicyCommand::Eval(args)) => policy::eval(args),
        Command::Detect(args) => detect::run(args),
        Command::Drift(args) => drift::run(args),
        Command::Serve(args) => serve::run(*args),
        Command::Ui(args) => serve::run_ui(*args),
        Command::Log(command) => log_command(command),
        Command::Cost { data, memory_limit, cluster, command } => {
            cost::run(data, memory_limit, cluster.as_deref(), command)
        }
        Command::Lineage { data, command } => lineage::run(&data, command),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(e.downcast_ref::<log::Failure>().map_or(2, |f| f.code))
        }
    }
}

fn log_command(command: LogCommand) -> anyhow::Result<u8> {
    match command {
        LogCommand::Keygen { name, private, public, print_private } => {
            log::keygen(&name, &private, &public, print_private)
        }
        LogCommand::Init { dir, key } => log::init(&dir, &key),
        LogCommand::Append { dir, key, lines, files } => log::append(&dir, &key, &files, lines),
        LogCommand::Show { dir, index, tail, json, key } => log::show(&dir, index, tail, json, key.as_deref()),
        LogCommand::Verify { dir, key, since } => log::verify_log(&dir, &key, since.as_deref()),
        LogCommand::Prove { dir, index, key, output } => log::prove(&dir, index, key.as_deref(), output.as_deref()),
        LogCommand::VerifyReceipt { receipt, entry, key } => log::verify_receipt(&receipt, &entry, &key),
    }
}
