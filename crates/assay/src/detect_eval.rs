//! `assay detect eval`: the online detector measured on labelled series with the Numenta Anomaly
//! Benchmark's rules, so that teams can check it on their own incidents.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use assay_detect::nab::{self, AtThreshold, Profile};
use serde::Serialize;

use crate::{DetectEvalArgs, NabProfile, OutputFormat};

/// One category's (or the corpus') result.
#[derive(Debug, Serialize)]
struct Part {
    name: String,
    series: usize,
    windows: usize,
    best: AtThreshold,
    default: AtThreshold,
}

pub(crate) fn run(args: DetectEvalArgs) -> Result<u8> {
    let labels_path = args.dir.join("labels/combined_windows.json");
    let labels: BTreeMap<String, Vec<(String, String)>> = serde_json::from_str(
        &std::fs::read_to_string(&labels_path).with_context(|| format!("reading {}", labels_path.display()))?,
    )
    .with_context(|| format!("{}: want {{\"<category>/<file>.csv\": [[start, end], ...]}}", labels_path.display()))?;
    let profile = match args.profile {
        NabProfile::Standard => Profile::STANDARD,
        NabProfile::LowFp => Profile::LOW_FP,
        NabProfile::LowFn => Profile::LOW_FN,
    };
    let mut series = Vec::new();
    let (mut rows, mut problems, mut failed) = (0usize, 0usize, 0usize);
    for (rel, windows) in &labels {
        let path = args.dir.join("data").join(rel);
        let name = path.display().to_string();
        let read = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {name}"))
            .and_then(|text| crate::detect::read(&name, &text, &args.time, &args.value));
        let read = match read {
            Ok(r) => r,
            Err(e) => {
                // Reported, and the rest of the corpus is still scored.
                eprintln!("{e:#}");
                failed += 1;
                continue;
            }
        };
        problems += read.problems;
        rows += read.points.len();
        let scored = crate::detect::online_scores(&read.points);
        let scores: Vec<f64> = scored.iter().map(|s| s.score).collect();
        let mut spans = Vec::new();
        for (start, end) in windows {
            match (crate::detect::parse_time(start), crate::detect::parse_time(end)) {
                (Ok(a), Ok(b)) => {
                    // The rows inside the window: the first at or after its start, the last at
                    // or before its end.
                    let first = read.points.iter().position(|p| p.time >= a);
                    let last = read.points.iter().rposition(|p| p.time <= b);
                    if let (Some(f), Some(l)) = (first, last)
                        && f <= l
                    {
                        spans.push((f, l));
                    } else {
                        eprintln!("{}: window {start} – {end} holds no row of {name}; left out", labels_path.display());
                    }
                }
                (Err(e), _) | (_, Err(e)) => {
                    eprintln!("{}: {rel}: window {start} – {end}: {e}; left out", labels_path.display());
                    problems += 1;
                }
            }
        }
        spans.sort_unstable();
        if let Some(dir) = &args.results {
            write_results(&dir.join(rel), &read.rows, &scores)?;
        }
        series.push(nab::Series { name: rel.clone(), scores, windows: spans });
    }
    anyhow::ensure!(!series.is_empty(), "{}: no series could be read", args.dir.display());
    let part = |name: &str, members: &[nab::Series]| {
        let e = nab::evaluate(members, &profile, args.threshold);
        Part { name: name.to_string(), series: members.len(), windows: e.windows, best: e.best, default: e.default }
    };
    let all = part("all", &series);
    let mut categories: Vec<String> =
        series.iter().filter_map(|s| s.name.rsplit_once('/').map(|(c, _)| c.to_string())).collect();
    categories.dedup();
    let parts: Vec<Part> = categories
        .iter()
        .map(|c| {
            let members: Vec<nab::Series> =
                series.iter().filter(|s| s.name.starts_with(&format!("{c}/"))).cloned().collect();
            part(c, &members)
        })
        .collect();
    let profile_name = format!("{:?}", args.profile).to_lowercase();
    match args.format {
        OutputFormat::Json => {
            let doc = serde_json::json!({
                "profile": profile_name,
                "rows": rows,
                "all": all,
                "categories": parts,
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        OutputFormat::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout().lock());
            w.write_record([
                "part",
                "series",
                "windows",
                "which",
                "threshold",
                "score",
                "alerts",
                "precision",
                "recall",
            ])?;
            for p in std::iter::once(&all).chain(&parts) {
                for (which, at) in [("best", &p.best), ("default", &p.default)] {
                    w.write_record([
                        p.name.clone(),
                        p.series.to_string(),
                        p.windows.to_string(),
                        which.to_string(),
                        format!("{:.3}", at.threshold),
                        format!("{:.1}", at.score),
                        at.alerts.to_string(),
                        format!("{:.2}", at.precision),
                        format!("{:.2}", at.recall),
                    ])?;
                }
            }
            w.flush()?;
        }
        OutputFormat::Table => {
            println!(
                "NAB {profile_name} profile: {} series, {rows} rows, {} labelled windows after the probationary periods",
                all.series, all.windows
            );
            println!(
                "{:<28} {:>7} {:>9} {:>7} {:>7} {:>9} {:>7}",
                "", "", "threshold", "score", "alerts", "precision", "recall"
            );
            for p in std::iter::once(&all).chain(&parts) {
                for (which, at) in [("best", &p.best), ("default", &p.default)] {
                    println!(
                        "{:<28} {:>7} {:>9.3} {:>7.1} {:>7} {:>9.2} {:>7.2}",
                        if which == "best" { p.name.as_str() } else { "" },
                        which,
                        at.threshold,
                        at.score,
                        at.alerts,
                        at.precision,
                        at.recall
                    );
                }
            }
            println!(
                "score: 0 never fires, 100 flags every window's start; best: the one threshold that scores \
                 best over the corpus (within the category on category rows); default: the flag threshold {}",
                args.threshold
            );
        }
    }
    if failed > 0 {
        eprintln!("{failed} series could not be read (named above); the others were scored");
    }
    Ok(if failed + problems > 0 { 1 } else { 0 })
}

/// Writes one series' scores in NAB's results layout: `timestamp,score`, the timestamp as the
/// data file wrote it.
fn write_results(path: &Path, rows: &[(u64, String, String, Option<String>)], scores: &[f64]) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut w = csv::Writer::from_path(path).with_context(|| format!("writing {}", path.display()))?;
    w.write_record(["timestamp", "score"])?;
    for ((_, time, _, _), score) in rows.iter().zip(scores) {
        w.write_record([time.clone(), format!("{score}")])?;
    }
    w.flush().with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
