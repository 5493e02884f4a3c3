//! `assay cost ...`: ingestion, SQL queries and allocation reports over the billing store.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result};
use assay_cost::allocation::{self, format_cents};
use assay_cost::{Store, ingest};
use datafusion::arrow::record_batch::RecordBatch;

use crate::{CostCommand, OutputFormat};

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the query runtime")
}

pub(crate) fn run(data: PathBuf, command: CostCommand) -> Result<u8> {
    let store = Store::new(&data);
    match command {
        CostCommand::Ingest { files } => ingest_files(&store, &data, &files),
        CostCommand::Generate { days, seed, resources, start, out } => generate(days, seed, resources, &start, &out),
        CostCommand::Query { sql, format } => {
            let batches = runtime()?.block_on(assay_cost::query(&store, &sql))?;
            print!("{}", render(&batches, format)?);
            Ok(0)
        }
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

fn generate(days: u32, seed: u64, resources: u32, start: &str, out: &std::path::Path) -> Result<u8> {
    let micros = assay_cost::validate::parse_datetime(start).map_err(|e| anyhow::anyhow!("--start: {e}"))?;
    let options = assay_cost::generate::Options {
        days,
        seed,
        resources,
        start_day: micros.div_euclid(86_400_000_000),
        anomalies: true,
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
