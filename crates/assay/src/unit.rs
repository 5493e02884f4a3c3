//! `assay cost unit`: what a model costs per million tokens, and what each training run cost.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use assay_cost::Store;
use assay_cost::unit::{self, ModelUnit, RunUnit};

/// What to divide cost by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Per {
    /// Per model, and per million tokens it served.
    Model,
    /// Per training run.
    Run,
}

/// Arguments of `assay cost unit`.
#[derive(Debug, clap::Args)]
pub(crate) struct UnitArgs {
    /// Per model or per training run.
    #[arg(long, value_enum)]
    per: Per,
    /// First day of the period (YYYY-MM-DD, UTC).
    #[arg(long)]
    from: String,
    /// Last day of the period, included.
    #[arg(long)]
    to: String,
    /// The billing tag that names a model (its value is vLLM's model name).
    #[arg(long, default_value = "model")]
    model_tag: String,
    /// The billing tag that names a training job (its value is the lineage job's name).
    #[arg(long, default_value = "job")]
    job_tag: String,
    /// The estate: `rightsizing:` metric and label names, and for a model with no billing rows,
    /// the estimated cost of the workloads its manifests label with it (`--model-tag`).
    #[arg(long)]
    estate: Option<PathBuf>,
    #[command(flatten)]
    prometheus: crate::rightsize::PrometheusArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    Table,
    Json,
}

fn day_start(text: &str, flag: &str) -> Result<i64> {
    Ok(crate::cost::parse_day(text).with_context(|| flag.to_string())? * 86_400)
}

pub(crate) fn run(store: &Store, data: &Path, args: UnitArgs) -> Result<u8> {
    let from = day_start(&args.from, "--from")?;
    let to = day_start(&args.to, "--to")? + 86_400;
    if to <= from {
        bail!("--to {} is before --from {}", args.to, args.from);
    }
    let estate = args
        .estate
        .as_ref()
        .map(|dir| assay_estate::source::load_dir(dir).with_context(|| format!("reading {}", dir.display())))
        .transpose()?;
    let settings = estate.as_ref().map(|e| e.settings.clone()).unwrap_or_default();
    let runtime = crate::cost::runtime()?;
    let text = match args.per {
        Per::Model => {
            let charges = runtime.block_on(unit::charges(store, &args.model_tag, from, to))?;
            let mut problems = Vec::new();
            let tokens = match args.prometheus.client()? {
                Some(client) => {
                    let r = &settings.rightsizing;
                    unit::tokens(&client, &r.metrics, &r.model_label, to, (to - from) as u64).unwrap_or_else(|e| {
                        problems.push(format!("tokens not read: {e}"));
                        Default::default()
                    })
                }
                None => {
                    problems.push("no --prometheus: tokens not read, so no cost per token".to_string());
                    Default::default()
                }
            };
            // Models with no billing rows: what the manifests' workloads labelled with them cost.
            let mut estimates = std::collections::BTreeMap::new();
            if let Some(estate) = &estate {
                for w in assay_cost::pricing::price_workloads(&estate.manifests, &estate.settings, &estate.prices) {
                    if let (Some(model), Some(monthly)) = (w.labels.get(&args.model_tag), w.monthly) {
                        *estimates.entry(model.clone()).or_insert(0.0) += monthly;
                    }
                }
            }
            let units = unit::per_model(&charges, &estimates, &tokens, from, to);
            for p in &problems {
                eprintln!("assay cost unit: {p}");
            }
            match args.format {
                Format::Json => {
                    serde_json::to_string_pretty(&serde_json::json!({"per": "model", "from": args.from, "to": args.to,
                        "models": units, "problems": problems}))?
                        + "\n"
                }
                Format::Table => models_table(&units),
            }
        }
        Per::Run => {
            let graph = crate::lineage::open_existing(data)?;
            let charges = runtime.block_on(unit::charges(store, &args.job_tag, i64::MIN / 4, i64::MAX / 4))?;
            let units = runs(&graph, &charges, from, to)?;
            match args.format {
                Format::Json => {
                    serde_json::to_string_pretty(&serde_json::json!({"per": "run", "from": args.from, "to": args.to,
                        "runs": units}))?
                        + "\n"
                }
                Format::Table => runs_table(&units),
            }
        }
    };
    print!("{text}");
    Ok(0)
}

/// The training runs that started in `from..to`, each costed from the rows tagged with its job's
/// name over its own time.
fn runs(graph: &assay_lineage::graph::Graph, charges: &[unit::Charge], from: i64, to: i64) -> Result<Vec<RunUnit>> {
    let time = |t: &Option<String>| {
        t.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()).map(|t| t.timestamp())
    };
    let mut out = Vec::new();
    for r in graph.training_runs()? {
        let (Some(start), Some(end)) = (time(&r.started), time(&r.ended)) else { continue };
        if !(from..to).contains(&start) {
            continue;
        }
        let job = assay_lineage::graph::Node::parse(&r.job);
        let name = match &job {
            Some(assay_lineage::graph::Node::Job(_, name)) => name.clone(),
            _ => continue,
        };
        out.push(RunUnit {
            cost: unit::prorated(charges, &name, start, end),
            hours: (end - start) as f64 / 3600.0,
            run_id: r.run_id,
            job: r.job,
            models: r.models,
            started: r.started.unwrap_or_default(),
            ended: r.ended.unwrap_or_default(),
        });
    }
    Ok(out)
}

fn models_table(units: &[ModelUnit]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<32} {:>14} {:<9} {:>16} {:>16} {:>14}",
        "model", "cost", "basis", "prompt tokens", "generated", "per 1M tokens"
    );
    for u in units {
        let _ = writeln!(
            out,
            "{:<32} {:>14.2} {:<9} {:>16.0} {:>16.0} {:>14}",
            u.model,
            u.cost,
            u.basis,
            u.prompt_tokens,
            u.generation_tokens,
            u.cost_per_million_tokens.map_or_else(|| "-".to_string(), |c| format!("{c:.4}"))
        );
    }
    out
}

fn runs_table(units: &[RunUnit]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:<38} {:<28} {:>8} {:>12}  models", "run", "job", "hours", "cost");
    for u in units {
        let _ =
            writeln!(out, "{:<38} {:<28} {:>8.1} {:>12.2}  {}", u.run_id, u.job, u.hours, u.cost, u.models.join(", "));
    }
    out
}
