//! `assay lineage`: OpenLineage events into the lineage graph, and walks of the graph.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use assay_lineage::graph::{Applied, Graph, Node};
use assay_lineage::schema::Schemas;
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Debug, Subcommand)]
pub(crate) enum LineageCommand {
    /// Read OpenLineage events (JSON lines) into the lineage graph. Invalid events are reported
    /// with file, line and field and written to --rejects; the rest are kept. Exit 0 when every
    /// event was kept, 1 when some were rejected, 2 when a file could not be read.
    Ingest {
        /// Files of OpenLineage events, one JSON object per line (`-` for standard input).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Also validate against the OpenLineage JSON schemas in this directory
        /// (`OpenLineage.json` and `facets/*.json`, as the spec publishes them).
        #[arg(long, env = "ASSAY_OPENLINEAGE_SCHEMAS")]
        schemas: Option<PathBuf>,
        /// Write each rejected event here as a JSON line with its file, line and errors.
        #[arg(long)]
        rejects: Option<PathBuf>,
        /// Append each accepted event's digest to this ledger.
        #[arg(long, env = "ASSAY_LEDGER")]
        ledger: Option<PathBuf>,
        /// The private key that signs the ledger's checkpoints.
        #[arg(long, env = "ASSAY_LEDGER_KEY")]
        ledger_key: Option<PathBuf>,
    },
    /// Check every flow in the graph against the estate's residency rules (`residency/*.yaml`):
    /// classified data processed or stored where it may not be. Exit 1 when there are findings.
    Check {
        /// The estate whose `residency/` rules apply.
        #[arg(long, env = "ASSAY_ESTATE", default_value = ".")]
        estate: PathBuf,
        /// Print the findings as JSON.
        #[arg(long)]
        json: bool,
        /// Append each finding to this ledger.
        #[arg(long, env = "ASSAY_LEDGER")]
        ledger: Option<PathBuf>,
        /// The private key that signs the ledger's checkpoints.
        #[arg(long, env = "ASSAY_LEDGER_KEY")]
        ledger_key: Option<PathBuf>,
    },
    /// Changes in the data itself across runs: each dataset's row count, size and files
    /// (`outputStatistics`) and column metrics (`dataQualityMetrics`: nulls, distinct values,
    /// min, max, quantiles) judged run by run against the runs before, with the version of the
    /// job's code that first produced each change. Exit 1 when there are findings.
    Quality {
        /// Print the findings as JSON.
        #[arg(long)]
        json: bool,
        /// Only changes first seen at or after this time (RFC 3339 or YYYY-MM-DD).
        #[arg(long)]
        since: Option<String>,
        /// Robust standard deviations from the earlier runs' median that make a change.
        #[arg(long, default_value_t = 4.0)]
        threshold: f64,
        /// The smallest relative difference that is a change.
        #[arg(long, default_value_t = 0.1)]
        min_relative: f64,
        /// Append each finding to this ledger.
        #[arg(long, env = "ASSAY_LEDGER")]
        ledger: Option<PathBuf>,
        /// The private key that signs the ledger's checkpoints.
        #[arg(long, env = "ASSAY_LEDGER_KEY")]
        ledger_key: Option<PathBuf>,
    },
    /// What moving data between regions cost: bytes from the statistics facets times the
    /// estate's egress rates, by job or by cost center (a job's `cost-center` tag).
    Costs {
        /// The estate whose `residency/` locations and `pricing/` egress rates apply.
        #[arg(long, env = "ASSAY_ESTATE", default_value = ".")]
        estate: PathBuf,
        /// Group by `job` or `cost-center`.
        #[arg(long, default_value = "job")]
        by: String,
        /// Print every leg as JSON.
        #[arg(long)]
        json: bool,
    },
    /// A signed provenance attestation for a dataset (or model) version: an in-toto Statement
    /// v1 with a SLSA Provenance v1 predicate in a DSSE envelope, signed with Ed25519.
    Provenance {
        /// `dataset:NAMESPACE:NAME`, optionally `@VERSION` (default: the latest version written).
        dataset: String,
        /// The private key that signs (as made by `assay log keygen`).
        #[arg(long, env = "ASSAY_PROVENANCE_KEY")]
        key: PathBuf,
        /// Write the envelope here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Append the attestation's digest to this ledger.
        #[arg(long, env = "ASSAY_LEDGER")]
        ledger: Option<PathBuf>,
        /// The private key that signs the ledger's checkpoints.
        #[arg(long, env = "ASSAY_LEDGER_KEY")]
        ledger_key: Option<PathBuf>,
    },
    /// What a dataset or job was derived from: `dataset:NAMESPACE:NAME` or `job:NAMESPACE:NAME`.
    Upstream(WalkArgs),
    /// What was derived from a dataset or job.
    Downstream(WalkArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct WalkArgs {
    /// `dataset:NAMESPACE:NAME` or `job:NAMESPACE:NAME` (Marquez's node ids).
    node: String,
    /// How many jobs away to go.
    #[arg(long, default_value_t = 20)]
    depth: usize,
    /// Print the graph as JSON in the shape of Marquez's lineage API (`{"graph": [...]}`).
    #[arg(long)]
    json: bool,
}

/// A `--data` that names the PostgreSQL database `assay serve --database` replicas share
/// (`postgres://…`), rather than a directory.
fn database(data: &Path) -> Option<&str> {
    data.to_str().filter(|d| assay_store::is_postgres(d))
}

/// The graph that `ingest` made; an error saying so when there is none.
pub(crate) fn open_existing(data: &Path) -> Result<Graph> {
    if database(data).is_none() {
        let path = data.join("lineage.sqlite");
        if !path.is_file() {
            anyhow::bail!("no lineage graph at {}: run `assay lineage ingest` first", path.display());
        }
    }
    open(data)
}

fn open(data: &Path) -> Result<Graph> {
    if let Some(url) = database(data) {
        let location = assay_store::Location::Postgres(url.to_string());
        return Graph::at(&location).with_context(|| format!("opening the lineage graph in {}", location.redacted()));
    }
    std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
    let path = data.join("lineage.sqlite");
    Graph::open(&path).with_context(|| format!("opening {}", path.display()))
}

pub(crate) fn run(data: &Path, command: LineageCommand) -> Result<u8> {
    match command {
        LineageCommand::Ingest { files, schemas, rejects, ledger, ledger_key } => {
            ingest(data, &files, schemas.as_deref(), rejects.as_deref(), ledger.as_deref(), ledger_key.as_deref())
        }
        LineageCommand::Check { estate, json, ledger, ledger_key } => {
            check(data, &estate, json, ledger.as_deref(), ledger_key.as_deref())
        }
        LineageCommand::Quality { json, since, threshold, min_relative, ledger, ledger_key } => {
            let options =
                assay_detect::runs::Options { threshold, min_relative, ..assay_detect::runs::Options::default() };
            quality(data, &options, since.as_deref(), json, ledger.as_deref(), ledger_key.as_deref())
        }
        LineageCommand::Costs { estate, by, json } => costs(data, &estate, &by, json),
        LineageCommand::Provenance { dataset, key, output, ledger, ledger_key } => {
            provenance(data, &dataset, &key, output.as_deref(), ledger.as_deref(), ledger_key.as_deref())
        }
        LineageCommand::Upstream(args) => walk(data, &args, true),
        LineageCommand::Downstream(args) => walk(data, &args, false),
    }
}

const BATCH: usize = 1000;

fn ingest(
    data: &Path,
    files: &[PathBuf],
    schemas: Option<&Path>,
    rejects: Option<&Path>,
    ledger: Option<&Path>,
    ledger_key: Option<&Path>,
) -> Result<u8> {
    let mut log = crate::log::open_ledger(ledger, ledger_key)?;
    let schemas = match schemas {
        Some(dir) => {
            Some(Schemas::load(dir).with_context(|| format!("loading the OpenLineage schemas in {}", dir.display()))?)
        }
        None => None,
    };
    let mut graph = open(data)?;
    let mut rejects_out: Option<Box<dyn Write>> = match rejects {
        Some(path) => Some(Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ))),
        None => None,
    };
    let (mut read, mut new, mut duplicates, mut rejected) = (0u64, 0u64, 0u64, 0u64);
    let mut unreadable = false;
    let mut batch = Vec::with_capacity(BATCH);
    let flush = |batch: &mut Vec<assay_lineage::Event>,
                 graph: &mut Graph,
                 log: &mut Option<assay_ledger::store::Log>|
     -> Result<(u64, u64)> {
        if batch.is_empty() {
            return Ok((0, 0));
        }
        let applied = graph.apply_all(batch).context("writing the lineage graph")?;
        if let Some(log) = log {
            let records: Vec<Vec<u8>> = batch
                .iter()
                .zip(&applied)
                .filter(|(_, a)| **a == Applied::New)
                .map(|(e, _)| record(e))
                .collect::<Result<_>>()?;
            if !records.is_empty() {
                log.append(&records).with_context(|| format!("appending to the ledger {}", log.location()))?;
            }
        }
        batch.clear();
        let fresh = applied.iter().filter(|a| **a == Applied::New).count() as u64;
        Ok((fresh, applied.len() as u64 - fresh))
    };
    for file in files {
        let reader: Box<dyn BufRead> = if file.as_os_str() == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            match std::fs::File::open(file) {
                Ok(f) => Box::new(std::io::BufReader::new(f)),
                Err(e) => {
                    eprintln!("error: {}: {e}", file.display());
                    unreadable = true;
                    continue;
                }
            }
        };
        for (i, line) in reader.lines().enumerate() {
            let at = format!("{}:{}", file.display(), i + 1);
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("error: {at}: {e}");
                    unreadable = true;
                    break;
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            read += 1;
            let problems: Vec<String>;
            let raw: Value = match serde_json::from_str(&line) {
                Ok(v) => v,
                Err(e) => {
                    rejected += 1;
                    reject(&mut rejects_out, &at, &[format!("not JSON: {e}")], None)?;
                    continue;
                }
            };
            match assay_lineage::parse(&raw) {
                Ok(event) => {
                    problems = schemas
                        .as_ref()
                        .map(|s| s.validate(&raw).iter().map(ToString::to_string).collect())
                        .unwrap_or_default();
                    if problems.is_empty() {
                        batch.push(event);
                        if batch.len() >= BATCH {
                            let (n, d) = flush(&mut batch, &mut graph, &mut log)?;
                            new += n;
                            duplicates += d;
                        }
                        continue;
                    }
                }
                Err(e) => problems = vec![e.to_string()],
            }
            rejected += 1;
            reject(&mut rejects_out, &at, &problems, Some(&raw))?;
        }
    }
    let (n, d) = flush(&mut batch, &mut graph, &mut log)?;
    new += n;
    duplicates += d;
    if let Some(out) = &mut rejects_out {
        out.flush().context("writing the rejects")?;
    }
    let [jobs, runs, datasets, versions, _] = graph.counts()?;
    eprintln!(
        "{read} events read: {new} new, {duplicates} already known, {rejected} rejected; the graph holds \
         {jobs} jobs, {runs} runs, {datasets} datasets, {versions} dataset versions ({})",
        data.join("lineage.sqlite").display()
    );
    Ok(if unreadable {
        2
    } else if rejected > 0 {
        1
    } else {
        0
    })
}

/// The ledger record of an accepted event: its digest and what it is about.
fn record(event: &assay_lineage::Event) -> Result<Vec<u8>> {
    Ok(assay_record::Record::lineage_event(event).to_entry()?)
}

fn reject(out: &mut Option<Box<dyn Write>>, at: &str, problems: &[String], raw: Option<&Value>) -> Result<()> {
    for p in problems {
        eprintln!("rejected: {at}: {p}");
    }
    if let Some(out) = out {
        let (file, line) = at.rsplit_once(':').unwrap_or((at, "0"));
        let v = json!({"file": file, "line": line.parse::<u64>().unwrap_or(0), "errors": problems, "event": raw});
        writeln!(out, "{v}").context("writing a reject")?;
    }
    Ok(())
}

fn check(data: &Path, estate: &Path, json_out: bool, ledger: Option<&Path>, ledger_key: Option<&Path>) -> Result<u8> {
    let mut log = crate::log::open_ledger(ledger, ledger_key)?;
    let estate = assay_estate::source::load_dir(estate)?;
    for d in estate.diagnostics.iter().filter(|d| d.path.starts_with("residency/")) {
        eprintln!("{d}");
    }
    let graph = open_existing(data)?;
    let findings = assay_lineage::check::check(&graph, &estate.residency)?;
    if let Some(log) = &mut log
        && !findings.is_empty()
    {
        let time = assay_record::Time::now();
        let about = assay_record::EstateAt { name: estate.settings.name.clone(), revision: estate.revision() };
        record_findings(log, findings.iter().map(|f| assay_record::Record::residency_finding(f, time, about.clone())))?;
    }
    if json_out {
        println!("{}", serde_json::to_string_pretty(&json!({"findings": findings}))?);
    } else {
        for f in &findings {
            println!("{}  {}", f.rule, f.message);
        }
        eprintln!("{} residency finding(s) over {} rule(s)", findings.len(), estate.residency.rules.len());
    }
    Ok(u8::from(!findings.is_empty()))
}

/// Appends findings' records to the ledger, and says so.
fn record_findings(
    log: &mut assay_ledger::store::Log,
    records: impl Iterator<Item = assay_record::Record>,
) -> Result<()> {
    let entries: Vec<Vec<u8>> = records.map(|r| r.to_entry()).collect::<Result<_, _>>()?;
    log.append(&entries).with_context(|| format!("appending to the ledger {}", log.location()))?;
    eprintln!("ledger: {} finding(s) recorded in {}", entries.len(), log.origin());
    Ok(())
}

fn quality(
    data: &Path,
    options: &assay_detect::runs::Options,
    since: Option<&str>,
    json_out: bool,
    ledger: Option<&Path>,
    ledger_key: Option<&Path>,
) -> Result<u8> {
    let mut log = crate::log::open_ledger(ledger, ledger_key)?;
    let graph = open_existing(data)?;
    let mut findings = assay_lineage::quality::check(&graph, options)?;
    if let Some(since) = since {
        // Event times are RFC 3339 in UTC, so text order is time order.
        findings.retain(|f| f.time.as_str() >= since);
    }
    if let Some(log) = &mut log
        && !findings.is_empty()
    {
        let time = assay_record::Time::now();
        record_findings(log, findings.iter().map(|f| assay_record::Record::quality_finding(f, time)))?;
    }
    if json_out {
        println!("{}", serde_json::to_string_pretty(&json!({"findings": findings}))?);
    } else {
        for f in &findings {
            println!("{}  {}", f.time, f.message);
        }
        eprintln!("{} data-quality change(s)", findings.len());
    }
    Ok(u8::from(!findings.is_empty()))
}

fn costs(data: &Path, estate: &Path, by: &str, json_out: bool) -> Result<u8> {
    let group_by = match by {
        "job" => assay_lineage::egress::GroupBy::Job,
        "cost-center" => assay_lineage::egress::GroupBy::CostCenter,
        _ => anyhow::bail!("--by {by:?}: use job or cost-center"),
    };
    let estate = assay_estate::source::load_dir(estate)?;
    let graph = open_existing(data)?;
    let legs = assay_lineage::egress::egress(&graph, &estate.residency, &estate.prices)?;
    let currency = &estate.prices.currency;
    if json_out {
        #[derive(serde::Serialize)]
        struct Costs<'a> {
            currency: &'a str,
            legs: &'a [assay_lineage::egress::Leg],
        }
        println!("{}", serde_json::to_string_pretty(&Costs { currency, legs: &legs })?);
        return Ok(0);
    }
    for leg in legs.iter().filter(|l| l.rate_per_gb.is_none()) {
        eprintln!("warning: no egress price from {} to {} ({} moved by {})", leg.from, leg.to, leg.dataset, leg.job);
    }
    let (groups, total) = assay_lineage::egress::by_group(&legs, group_by);
    println!("{by}\tGB moved across regions\tegress cost ({currency})");
    for g in &groups {
        println!("{}\t{:.3}\t{:.2}", g.group, g.bytes as f64 / 1e9, g.cost);
    }
    println!("total\t\t{total:.2}");
    Ok(0)
}

fn provenance(
    data: &Path,
    dataset: &str,
    key: &Path,
    output: Option<&Path>,
    ledger: Option<&Path>,
    ledger_key: Option<&Path>,
) -> Result<u8> {
    let signer = crate::log::read_signer(key)?;
    let mut log = crate::log::open_ledger(ledger, ledger_key)?;
    let graph = open_existing(data)?;
    let provenance = assay_lineage::provenance::of_dataset(&graph, dataset)?;
    let envelope = assay_lineage::provenance::envelope(&provenance.statement, signer.name(), |m| signer.sign_bytes(m));
    let text = serde_json::to_string_pretty(&envelope)? + "\n";
    match output {
        Some(path) => std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?,
        None => print!("{text}"),
    }
    if let Some(log) = &mut log {
        let bytes =
            assay_record::Record::provenance(&provenance.statement, &envelope, &provenance.run.run_id)?.to_entry()?;
        let index = log.append(&[bytes]).with_context(|| format!("appending to {}", log.location()))?;
        eprintln!("ledger: provenance recorded as entry {index} of {}", log.origin());
    }
    Ok(0)
}

fn walk(data: &Path, args: &WalkArgs, up: bool) -> Result<u8> {
    let node = Node::parse(&args.node).with_context(|| {
        format!("{:?} is not a node id: use dataset:NAMESPACE:NAME or job:NAMESPACE:NAME", args.node)
    })?;
    let graph = open_existing(data)?;
    let found = if up { graph.upstream(&node, args.depth)? } else { graph.downstream(&node, args.depth)? };
    let Some(lineage) = found else {
        anyhow::bail!("{} is not in the lineage graph", node.id());
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&graph.marquez(&lineage)?)?);
    } else {
        for id in &lineage.datasets {
            println!("{}", graph.node(false, *id)?.id());
        }
        for id in &lineage.jobs {
            println!("{}", graph.node(true, *id)?.id());
        }
    }
    Ok(0)
}
