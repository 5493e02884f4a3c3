//! `assay cost ...`: ingestion, SQL queries and allocation reports over the billing store.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result};
use assay_cost::allocation::{self, format_cents};
use assay_cost::cost_anomaly::{self, CostAnomaly};
use assay_cost::generate::Label;
use assay_cost::series::{self, Leaf};
use assay_cost::{Store, ingest};
use assay_estate::budget::Scope;
use datafusion::arrow::record_batch::RecordBatch;

use crate::{AnomalyArgs, CostCommand, OutputFormat};

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the query runtime")
}

pub(crate) fn run(
    data: PathBuf,
    memory_limit: Option<usize>,
    cluster: Option<&str>,
    command: CostCommand,
) -> Result<u8> {
    if let CostCommand::Cluster { role } = command {
        return run_node(role, memory_limit);
    }
    // `--data s3://bucket/prefix` (or gs://, az://): the billing store on object storage; local
    // working files (partitions before upload, rejected rows, the lineage graph) stay in
    // ./assay-data.
    let location = data.to_string_lossy().into_owned();
    let data = if assay_cost::store::is_url(&location) { PathBuf::from("assay-data") } else { data };
    let mut store = Store::at(&location, &data)?;
    if let Some(bytes) = memory_limit {
        store = store.with_memory_limit(bytes);
    }
    if let Some(url) = cluster {
        store = store.with_cluster(url);
    }
    let remote = store.is_remote();
    let mut result = run_on(&store, &data, command);
    if let Some(url) = cluster {
        // A cluster fails in its own ways (a scheduler or an executor unreachable): say which.
        result = result.with_context(|| format!("on the Ballista cluster {url}"));
    }
    if remote {
        // Object storage fails in ways a local disk does not (unreachable, refused): say which.
        return result.with_context(|| format!("the billing store {location}"));
    }
    result
}

/// `assay cost cluster scheduler|executor`: runs until the process is stopped.
fn run_node(role: crate::ClusterRole, memory_limit: Option<usize>) -> Result<u8> {
    let rt = runtime()?;
    match role {
        crate::ClusterRole::Scheduler { addr } => {
            eprintln!("assay cost cluster: scheduler listening on {addr}");
            rt.block_on(assay_cost::cluster::scheduler(addr))?;
        }
        crate::ClusterRole::Executor { scheduler, addr, grpc_port, concurrency, work_dir } => {
            eprintln!(
                "assay cost cluster: executor on {addr} (tasks on port {grpc_port}) for the scheduler {scheduler}"
            );
            let options = assay_cost::cluster::ExecutorOptions {
                scheduler,
                bind: addr,
                grpc_port,
                concurrency,
                work_dir,
                memory_limit,
            };
            rt.block_on(assay_cost::cluster::executor(options))?;
        }
    }
    Ok(0)
}

fn run_on(store: &Store, data: &std::path::Path, command: CostCommand) -> Result<u8> {
    let (store, data) = (store.clone(), data.to_path_buf());
    match command {
        CostCommand::Cluster { role } => run_node(role, None),
        CostCommand::Ingest { files } => ingest_files(&store, &data, &files),
        CostCommand::Generate { days, seed, resources, start, no_anomalies, out } => {
            generate(days, seed, resources, &start, !no_anomalies, &out)
        }
        CostCommand::Query { sql, params, format } => {
            let batches = runtime()?.block_on(assay_cost::sql::query(&store, &sql, &params))?;
            print!("{}", render(&batches, format)?);
            Ok(0)
        }
        CostCommand::Anomalies { since, detector, format } => {
            let since_day = since.as_deref().map(parse_day).transpose()?;
            let (anomalies, currency) = runtime()?.block_on(detect_anomalies(&store, &detector))?;
            let shown: Vec<&CostAnomaly> = anomalies
                .iter()
                .filter(|a| since_day.is_none_or(|d| parse_day(&a.start).is_ok_and(|s| s >= d)))
                .collect();
            match format {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&shown)?),
                OutputFormat::Csv => {
                    let mut w = csv::Writer::from_writer(std::io::stdout());
                    w.write_record([
                        "start",
                        "end",
                        "dimension",
                        "value",
                        "expected",
                        "actual",
                        "impact",
                        "impact_ratio",
                        "score",
                        "service",
                        "region",
                        "account",
                        "cost_center",
                        "cause_share",
                    ])?;
                    for a in &shown {
                        let cause = a.root_causes.first();
                        w.write_record([
                            a.start.clone(),
                            a.end.clone(),
                            a.monitor.dimension.name().into(),
                            a.monitor.value.clone(),
                            format!("{:.2}", a.expected),
                            format!("{:.2}", a.actual),
                            format!("{:.2}", a.impact),
                            a.impact_ratio.map(|r| format!("{r:.4}")).unwrap_or_default(),
                            format!("{:.3}", a.score),
                            cause.map(|c| c.leaf.service.clone()).unwrap_or_default(),
                            cause.map(|c| c.leaf.region.clone()).unwrap_or_default(),
                            cause.map(|c| c.leaf.account.clone()).unwrap_or_default(),
                            cause.and_then(|c| c.leaf.cost_center.clone()).unwrap_or_default(),
                            cause.map(|c| format!("{:.4}", c.share)).unwrap_or_default(),
                        ])?;
                    }
                    w.flush()?;
                }
                OutputFormat::Table => print!("{}", anomalies_table(&shown, &currency)),
            }
            Ok(0)
        }
        CostCommand::EvalAnomalies { labels, detector, format } => {
            let text = std::fs::read_to_string(&labels).with_context(|| format!("reading {}", labels.display()))?;
            let labels: Vec<Label> = serde_json::from_str(&text)
                .with_context(|| format!("{}: not a labels file written by `assay cost generate`", labels.display()))?;
            let (anomalies, _) = runtime()?.block_on(detect_anomalies(&store, &detector))?;
            let e = cost_anomaly::evaluate(&anomalies, &labels);
            match format {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&e)?),
                _ => {
                    println!(
                        "labelled {}, found {}, detections {}, true positives {}",
                        e.labels, e.found, e.detections, e.true_positives
                    );
                    println!("precision {:.3}  recall {:.3}  F1 {:.3}", e.precision, e.recall, e.f1);
                    for l in &e.missed {
                        println!(
                            "missed: {} {} .. {} {} / {} / {} / {}",
                            l.kind,
                            l.start,
                            l.end,
                            l.service,
                            l.region,
                            l.account,
                            l.cost_center.as_deref().unwrap_or("(untagged)")
                        );
                    }
                    for (start, monitor, cause) in &e.false_alarms {
                        println!(
                            "false alarm: {start} {} {} caused by {}",
                            monitor.dimension.name(),
                            monitor.value,
                            cause.as_ref().map(leaf_text).unwrap_or_else(|| "?".into())
                        );
                    }
                }
            }
            Ok(0)
        }
        CostCommand::Forecast { days, backtest, horizon, by, estate, metric, format } => {
            let targets = runtime()?.block_on(forecast_targets(&store, by.as_deref(), estate.as_deref(), &metric))?;
            match backtest {
                Some(holdout) => print_backtests(&targets, holdout, horizon, format),
                None => print_forecasts(&targets, days, format),
            }
        }
        CostCommand::Rightsize(args) => crate::rightsize::run(args),
        CostCommand::Unit(args) => crate::unit::run(&store, &data, args),
        CostCommand::Estimate { estate, format } => estimate_workloads(&estate, format),
        CostCommand::Budgets { estate, as_of, format } => budgets(&store, &estate, as_of.as_deref(), format),
        CostCommand::Report { by, period, metric, format } => {
            let dims = allocation::parse_dimensions(&by)?;
            let report = runtime()?.block_on(allocation::allocate(&store, &dims, period.as_deref(), &metric))?;
            match format {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                OutputFormat::Csv => {
                    let mut w = csv::Writer::from_writer(std::io::stdout());
                    let mut head = report.dimensions.clone();
                    head.extend([report.metric.clone(), "share".into()]);
                    w.write_record(&head)?;
                    for g in &report.groups {
                        let mut rec: Vec<String> = g
                            .keys
                            .iter()
                            .zip(&dims)
                            .map(|(k, d)| k.clone().unwrap_or_else(|| d.missing().into()))
                            .collect();
                        rec.extend([format_cents(g.cents), format!("{:.6}", g.share)]);
                        w.write_record(&rec)?;
                    }
                    w.flush()?;
                }
                OutputFormat::Table => print!("{}", report_table(&report, &dims)),
            }
            Ok(0)
        }
    }
}

/// A series to forecast: its name, daily values from `first_day`, and for a budget's series its
/// status on the billing data's last day.
struct Target {
    name: String,
    first_day: i64,
    values: Vec<f64>,
    budget: Option<assay_cost::budgets::BudgetStatus>,
}

async fn forecast_targets(
    store: &Store,
    by: Option<&str>,
    estate: Option<&std::path::Path>,
    metric: &str,
) -> Result<Vec<Target>> {
    let daily = series::daily(store, &Scope::default(), metric).await?;
    if daily.days == 0 {
        anyhow::bail!("no billing data in {}: run `assay cost ingest` first", store.location());
    }
    let mut targets =
        vec![Target { name: "total".into(), first_day: daily.first_day, values: daily.total(), budget: None }];
    if let Some(by) = by {
        let dimension = series::Dimension::ALL
            .into_iter()
            .find(|d| d.name() == by)
            .with_context(|| format!("--by {by:?}: use service, region, account or cost-center"))?;
        for value in daily.values_of(dimension) {
            targets.push(Target {
                name: format!("{} {value}", dimension.name()),
                first_day: daily.first_day,
                values: daily.sum(|l| dimension.value_of(l) == value),
                budget: None,
            });
        }
    }
    if let Some(dir) = estate {
        // Budgets count effective cost whatever --metric says, as `assay cost budgets` and
        // `assay check` do.
        let budgets = load_budgets(dir)?;
        let billing = assay_cost::budgets::billing(store, &budgets, None).await?;
        for (budget, b) in budgets.iter().zip(billing.budgets) {
            let status = match b.status {
                Ok(s) => Some(s),
                Err(e) => {
                    eprintln!("{}:{}: {e}", budget.path, budget.line);
                    None
                }
            };
            let Some(spend) = b.spend else { continue };
            targets.push(Target {
                name: format!("budget {}", budget.name),
                first_day: spend.first_day,
                values: spend.daily,
                budget: status,
            });
        }
    }
    Ok(targets)
}

/// The estate's budgets; problems with budget files are reported and the rest are used.
fn load_budgets(dir: &std::path::Path) -> Result<Vec<assay_estate::budget::Budget>> {
    let estate = assay_estate::source::load_dir(dir)?;
    for d in &estate.diagnostics {
        if d.path.starts_with("budgets/") || d.path == "assay.yaml" {
            eprintln!("{d}");
        }
    }
    Ok(estate.budgets)
}

fn print_forecasts(targets: &[Target], days: usize, format: OutputFormat) -> Result<u8> {
    #[derive(serde::Serialize)]
    struct Row<'a> {
        series: &'a str,
        from: String,
        days: usize,
        #[serde(flatten)]
        totals: assay_cost::forecast::ForecastTotal,
        forecast: assay_cost::forecast::Forecast,
        /// A budget's status for its period, as `assay cost budgets` reports it.
        #[serde(skip_serializing_if = "Option::is_none")]
        budget: Option<&'a assay_cost::budgets::BudgetStatus>,
    }
    let mut rows = Vec::new();
    let mut failed = false;
    for t in targets {
        match assay_cost::forecast::forecast(&t.values, days) {
            Ok(f) => rows.push(Row {
                series: &t.name,
                from: series::format_day(t.first_day + t.values.len() as i64),
                days,
                totals: f.totals(),
                forecast: f,
                budget: t.budget.as_ref(),
            }),
            Err(e) => {
                eprintln!("{}: {e}", t.name);
                failed = true;
            }
        }
    }
    match format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        OutputFormat::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout());
            w.write_record(["series", "day", "forecast", "lower80", "upper80", "lower95", "upper95"])?;
            for r in &rows {
                let first = parse_day(&r.from)?;
                for i in 0..r.days {
                    let f = &r.forecast;
                    w.write_record([
                        r.series.to_string(),
                        series::format_day(first + i as i64),
                        format!("{:.2}", f.point[i]),
                        format!("{:.2}", f.lower80[i]),
                        format!("{:.2}", f.upper80[i]),
                        format!("{:.2}", f.lower95[i]),
                        format!("{:.2}", f.upper95[i]),
                    ])?;
                }
            }
            w.flush()?;
        }
        OutputFormat::Table => {
            let head = ["series", "model", "from", "days", "forecast", "80% interval", "95% interval"];
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.series.to_string(),
                        r.forecast.model.clone(),
                        r.from.clone(),
                        r.days.to_string(),
                        money(r.totals.total),
                        format!("{} – {}", money(r.totals.total80.0), money(r.totals.total80.1)),
                        format!("{} – {}", money(r.totals.total95.0), money(r.totals.total95.1)),
                    ]
                })
                .collect();
            print!("{}", text_table(&head, &table, &[false, false, false, true, true, true, true]));
        }
    }
    Ok(if failed { 2 } else { 0 })
}

fn print_backtests(targets: &[Target], holdout: usize, horizon: usize, format: OutputFormat) -> Result<u8> {
    #[derive(serde::Serialize)]
    struct Row<'a> {
        series: &'a str,
        #[serde(flatten)]
        backtest: assay_cost::forecast::Backtest,
    }
    let mut rows = Vec::new();
    let mut failed = false;
    for t in targets {
        match assay_cost::forecast::backtest(&t.values, holdout, horizon) {
            Ok(b) => rows.push(Row { series: &t.name, backtest: b }),
            Err(e) => {
                eprintln!("{}: {e}", t.name);
                failed = true;
            }
        }
    }
    match format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        _ => {
            let head = [
                "series",
                "held back",
                "model",
                "MAE",
                "seasonal-naive MAE",
                "MASE",
                "in-sample MASE",
                "(seasonal-naive)",
                "in 80%",
                "in 95%",
            ];
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let b = &r.backtest;
                    vec![
                        r.series.to_string(),
                        format!("{} ({}×{})", b.holdout, b.folds, b.horizon),
                        b.model.clone(),
                        money(b.mae),
                        money(b.naive_mae),
                        format!("{:.3}", b.mase),
                        format!("{:.3}", b.mase_in_sample),
                        format!("{:.3}", b.naive_mase_in_sample),
                        format!("{:.0}%", b.coverage80 * 100.0),
                        format!("{:.0}%", b.coverage95 * 100.0),
                    ]
                })
                .collect();
            if format == OutputFormat::Csv {
                let mut w = csv::Writer::from_writer(std::io::stdout());
                w.write_record([
                    "series",
                    "holdout",
                    "horizon",
                    "model",
                    "mae",
                    "naive_mae",
                    "mase",
                    "mase_in_sample",
                    "naive_mase_in_sample",
                    "coverage80",
                    "coverage95",
                ])?;
                for r in &rows {
                    let b = &r.backtest;
                    w.write_record([
                        r.series.to_string(),
                        b.holdout.to_string(),
                        b.horizon.to_string(),
                        b.model.clone(),
                        b.mae.to_string(),
                        b.naive_mae.to_string(),
                        b.mase.to_string(),
                        b.mase_in_sample.to_string(),
                        b.naive_mase_in_sample.to_string(),
                        b.coverage80.to_string(),
                        b.coverage95.to_string(),
                    ])?;
                }
                w.flush()?;
            } else {
                print!(
                    "{}",
                    text_table(&head, &table, &[false, true, false, true, true, true, true, true, true, true])
                );
                println!(
                    "MASE: the model's mean absolute error over the seasonal-naive forecast's (same as last week) on the \
                     same days; below 1 the model is better. In-sample MASE scales by one-week-back's error before the \
                     held-back days (Hyndman and Koehler)."
                );
            }
        }
    }
    Ok(if failed { 2 } else { 0 })
}

fn estimate_workloads(dir: &std::path::Path, format: OutputFormat) -> Result<u8> {
    let estate = assay_estate::source::load_dir(dir)?;
    let mut problems = false;
    for d in &estate.diagnostics {
        if d.path.starts_with("pricing/") || d.path == "assay.yaml" {
            eprintln!("{d}");
            problems |= d.severity == assay_estate::Severity::Error;
        }
    }
    let workloads = assay_cost::pricing::price_workloads(&estate.manifests, &estate.settings, &estate.prices);
    match format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&workloads)?),
        OutputFormat::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout());
            w.write_record([
                "path",
                "line",
                "object",
                "cluster",
                "region",
                "cost_center",
                "monthly",
                "compute",
                "gpu",
                "storage",
                "basis",
            ])?;
            for c in &workloads {
                w.write_record([
                    c.path.clone(),
                    c.line.to_string(),
                    c.object.clone(),
                    c.cluster.clone().unwrap_or_default(),
                    c.region.clone().unwrap_or_default(),
                    c.cost_center.clone().unwrap_or_default(),
                    c.monthly.map(|m| format!("{m:.2}")).unwrap_or_default(),
                    format!("{:.2}", c.compute),
                    format!("{:.2}", c.gpu),
                    format!("{:.2}", c.storage),
                    c.basis.clone(),
                ])?;
            }
            w.flush()?;
        }
        OutputFormat::Table => {
            let head =
                ["workload", "region", "cost center", &format!("monthly ({})", estate.settings.currency), "basis"];
            let rows: Vec<Vec<String>> = workloads
                .iter()
                .map(|c| {
                    vec![
                        c.object.clone(),
                        c.region.clone().unwrap_or_else(|| "?".into()),
                        c.cost_center.clone().unwrap_or_else(|| "(none)".into()),
                        c.monthly.map(money).unwrap_or_else(|| "not priced".into()),
                        c.basis.clone(),
                    ]
                })
                .collect();
            print!("{}", text_table(&head, &rows, &[false, false, false, true, false]));
            let total = assay_cost::check::total(&workloads);
            println!("total {} {} a month", money(total), estate.settings.currency);
        }
    }
    Ok(if problems { 2 } else { 0 })
}

fn budgets(store: &Store, estate: &std::path::Path, as_of: Option<&str>, format: OutputFormat) -> Result<u8> {
    let budgets = load_budgets(estate)?;
    if budgets.is_empty() {
        println!("no budgets in {}", estate.join("budgets").display());
        return Ok(0);
    }
    let as_of = as_of.map(parse_day).transpose()?;
    let billing = runtime()?.block_on(assay_cost::budgets::billing(store, &budgets, as_of))?;
    let mut statuses = Vec::new();
    let mut failed = false;
    for (budget, b) in budgets.iter().zip(billing.budgets) {
        match b.status {
            Ok(s) => statuses.push(s),
            Err(e) => {
                eprintln!("{}:{}: {e}; not evaluated", budget.path, budget.line);
                failed = true;
            }
        }
    }
    match format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&statuses)?),
        _ => {
            let head = [
                "budget",
                "period",
                "as of",
                "amount",
                "actual",
                "forecast",
                "80% interval",
                "95% interval",
                "breach",
                "alerts",
            ];
            let table: Vec<Vec<String>> = statuses
                .iter()
                .map(|s| {
                    let alerts = s
                        .alerts
                        .iter()
                        .map(|a| {
                            format!(
                                "{} {:.0}% {}",
                                match a.on {
                                    assay_estate::budget::AlertOn::Actual => "actual",
                                    assay_estate::budget::AlertOn::Forecast => "forecast",
                                },
                                a.at * 100.0,
                                if a.crossed { "CROSSED" } else { "ok" }
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(", ");
                    vec![
                        s.name.clone(),
                        s.period.clone(),
                        s.as_of.clone(),
                        format!("{} {}", money(s.amount), s.currency),
                        money(s.actual),
                        money(s.forecast),
                        format!("{} – {}", money(s.forecast80.0), money(s.forecast80.1)),
                        format!("{} – {}", money(s.forecast95.0), money(s.forecast95.1)),
                        match (&s.breach_date, &s.earliest_breach_date) {
                            (Some(d), _) => d.clone(),
                            (None, Some(d)) => format!("none (earliest {d})"),
                            (None, None) => "none".into(),
                        },
                        alerts,
                    ]
                })
                .collect();
            print!("{}", text_table(&head, &table, &[false, false, false, true, true, true, true, true, false, false]));
        }
    }
    Ok(if failed { 2 } else { 0 })
}

pub(crate) fn parse_day(text: &str) -> Result<i64> {
    Ok(series::parse_day(text)?)
}

async fn detect_anomalies(store: &Store, args: &AnomalyArgs) -> Result<(Vec<CostAnomaly>, String)> {
    let daily = series::daily(store, &Scope::default(), &args.metric).await?;
    let mut options = cost_anomaly::Options::default();
    options.detector.threshold = args.threshold;
    options.detector.min_absolute = args.min_impact;
    options.detector.min_relative = args.min_relative;
    let currency = allocation::currency(store).await?;
    Ok((cost_anomaly::detect(&daily, &options), currency))
}

fn leaf_text(leaf: &Leaf) -> String {
    format!(
        "{} / {} / {} / {}",
        leaf.service,
        leaf.region,
        leaf.account,
        leaf.cost_center.as_deref().unwrap_or("(untagged)")
    )
}

fn money(value: f64) -> String {
    assay_verdict::render::money(value)
}

fn anomalies_table(anomalies: &[&CostAnomaly], currency: &str) -> String {
    if anomalies.is_empty() {
        return "no cost anomalies\n".into();
    }
    let head = ["start", "end", "monitor", &format!("expected ({currency})"), "actual", "impact", "root cause"];
    let rows: Vec<Vec<String>> = anomalies
        .iter()
        .map(|a| {
            let ratio = a.impact_ratio.map(|r| format!(" ({:+.0}%)", r * 100.0)).unwrap_or_else(|| " (new)".into());
            let causes = a
                .root_causes
                .iter()
                .map(|c| format!("{} {:.0}%", leaf_text(&c.leaf), c.share * 100.0))
                .collect::<Vec<_>>()
                .join("; ");
            vec![
                a.start.clone(),
                a.end.clone(),
                format!("{} {}", a.monitor.dimension.name(), a.monitor.value),
                money(a.expected),
                money(a.actual),
                format!("+{}{ratio}", money(a.impact)),
                causes,
            ]
        })
        .collect();
    text_table(&head, &rows, &[false, false, false, true, true, true, false])
}

/// An aligned text table; `right[c]` aligns column `c` to the right.
fn text_table(head: &[&str], rows: &[Vec<String>], right: &[bool]) -> String {
    let mut all: Vec<Vec<String>> = vec![head.iter().map(|h| h.to_string()).collect()];
    all.extend(rows.iter().cloned());
    let widths: Vec<usize> = (0..head.len())
        .map(|c| all.iter().map(|r| r.get(c).map_or(0, |v| v.chars().count())).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &all {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, v)| {
                if right.get(c).copied().unwrap_or(false) {
                    format!("{v:>w$}", w = widths[c])
                } else {
                    format!("{v:<w$}", w = widths[c])
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn report_table(report: &allocation::Allocation, dims: &[allocation::Dimension]) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut head = report.dimensions.clone();
    head.extend([format!("{} ({})", report.metric, report.currency), "share".into()]);
    rows.push(head);
    for g in &report.groups {
        let mut row: Vec<String> =
            g.keys.iter().zip(dims).map(|(k, d)| k.clone().unwrap_or_else(|| d.missing().into())).collect();
        row.extend([format_cents(g.cents), format!("{:.1}%", g.share * 100.0)]);
        rows.push(row);
    }
    let mut total = vec![String::new(); dims.len()];
    if let Some(first) = total.first_mut() {
        *first = "total".into();
    }
    total.extend([format_cents(report.total_cents), "100.0%".into()]);
    rows.push(total);
    let widths: Vec<usize> =
        (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let numeric = |c: usize| c >= dims.len();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        if i == rows.len() - 1 {
            out.push_str(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("  "));
            out.push('\n');
        }
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(
                |(c, v)| if numeric(c) { format!("{v:>w$}", w = widths[c]) } else { format!("{v:<w$}", w = widths[c]) },
            )
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    if let Some(p) = &report.period {
        out.push_str(&format!("billing period {p}\n"));
    }
    out
}

fn render(batches: &[RecordBatch], format: OutputFormat) -> Result<String> {
    match format {
        OutputFormat::Table => Ok(datafusion::arrow::util::pretty::pretty_format_batches(batches)?.to_string() + "\n"),
        OutputFormat::Csv => {
            let mut buf = Vec::new();
            {
                let mut w = datafusion::arrow::csv::Writer::new(&mut buf);
                for b in batches {
                    w.write(b)?;
                }
            }
            Ok(String::from_utf8(buf)?)
        }
        OutputFormat::Json => {
            let mut buf = Vec::new();
            {
                let mut w = datafusion::arrow::json::ArrayWriter::new(&mut buf);
                for b in batches {
                    w.write(b)?;
                }
                w.finish()?;
            }
            let text = String::from_utf8(buf)?;
            Ok(if text.is_empty() { "[]\n".into() } else { text + "\n" })
        }
    }
}

fn generate(days: u32, seed: u64, resources: u32, start: &str, anomalies: bool, out: &std::path::Path) -> Result<u8> {
    let micros = assay_cost::validate::parse_datetime(start).map_err(|e| anyhow::anyhow!("--start: {e}"))?;
    let options = assay_cost::generate::Options {
        days,
        seed,
        resources,
        start_day: micros.div_euclid(86_400_000_000),
        anomalies,
    };
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut written = Vec::new();
    let mut open = |name: &str| -> std::io::Result<Box<dyn std::io::Write>> {
        let path = out.join(name);
        written.push(path.clone());
        Ok(Box::new(std::io::BufWriter::new(std::fs::File::create(path)?)))
    };
    let labels = assay_cost::generate::generate(&options, &mut open)
        .with_context(|| format!("writing into {}", out.display()))?;
    let labels_path = out.join("anomalies.json");
    std::fs::write(&labels_path, serde_json::to_string_pretty(&labels)? + "\n")
        .with_context(|| format!("writing {}", labels_path.display()))?;
    for p in &written {
        println!("wrote {}", p.display());
    }
    println!("wrote {} ({} labelled anomalies)", labels_path.display(), labels.len());
    Ok(0)
}

fn ingest_files(store: &Store, data: &std::path::Path, files: &[PathBuf]) -> Result<u8> {
    let sizes: Vec<u64> = files.iter().map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0)).collect();
    let show = std::io::stderr().is_terminal() && sizes.iter().sum::<u64>() > 8 * 1024 * 1024;
    let mut progress = |path: &std::path::Path, bytes: u64| {
        if show {
            let size = files.iter().position(|f| f == path).and_then(|i| sizes.get(i)).copied().unwrap_or(0).max(1);
            let pct = (bytes as f64 / size as f64 * 100.0).min(100.0);
            let filled = (pct / 5.0) as usize;
            eprint!("\r{} [{}{}] {pct:5.1}%", path.display(), "#".repeat(filled), " ".repeat(20 - filled.min(20)));
        }
    };
    let report = ingest(store, data, files, &mut progress)?;
    if show {
        eprintln!();
    }
    for f in &report.files {
        match &f.error {
            Some(e) => println!("{}: error: {e}", f.path),
            None => {
                println!("{}: read {} rows, kept {}, rejected {}", f.path, f.read, f.kept, f.rejected);
                if let Some(r) = &f.rejects_file {
                    println!("  rejected rows, with line and reason: {r}");
                }
                for (w, n) in &f.warnings {
                    println!("  warning: {w} ({n} rows)");
                }
                if !f.extra_columns.is_empty() {
                    println!("  not stored (not FOCUS columns): {}", f.extra_columns.join(", "));
                }
            }
        }
    }
    for p in &report.partitions {
        println!(
            "stored billing period {} of account {}: {} rows (replacing any earlier export)",
            p.period, p.account, p.rows
        );
    }
    let (read, kept, rejected) = report.totals();
    println!("{read} rows read, {kept} kept, {rejected} rejected");
    Ok(if report.files.iter().any(|f| f.error.is_some()) {
        2
    } else if rejected > 0 {
        1
    } else {
        0
    })
}
