//! `assay detect`: anomaly scores for any time series in a CSV file.

use std::io::Read;

use anyhow::{Context, Result};
use assay_detect::online;
use assay_detect::telemetry::{self, Point};

use crate::{DetectArgs, DetectFormat};

/// Seconds since the epoch from an ISO 8601 date-time or a number of seconds, milliseconds or
/// microseconds (told apart by size).
fn parse_time(text: &str) -> Result<f64, String> {
    let text = text.trim();
    if let Ok(n) = text.parse::<f64>() {
        return Ok(match n.abs() {
            a if a >= 1e14 => n / 1e6,
            a if a >= 1e11 => n / 1e3,
            _ => n,
        });
    }
    assay_cost::validate::parse_datetime(text).map(|micros| micros as f64 / 1e6)
}

pub(crate) fn run(args: DetectArgs) -> Result<u8> {
    let name = args.file.display().to_string();
    let mut text = String::new();
    if name == "-" {
        std::io::stdin().read_to_string(&mut text).context("reading standard input")?;
    } else {
        text = std::fs::read_to_string(&args.file).with_context(|| format!("reading {name}"))?;
    }
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let headers = reader.headers().with_context(|| format!("{name}: reading the header row"))?.clone();
    let column = |wanted: &str, flag: &str| {
        headers.iter().position(|h| h.trim() == wanted).with_context(|| {
            format!(
                "{name}: no column {wanted:?} for {flag} (the columns are: {})",
                headers.iter().collect::<Vec<_>>().join(", ")
            )
        })
    };
    let (time_col, value_col) = (column(&args.time, "--time")?, column(&args.value, "--value")?);
    let mut rows: Vec<(u64, String, String, Option<String>)> = Vec::new();
    let mut points = Vec::new();
    let mut problems = 0;
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                eprintln!("{name}:{line}: {e}");
                problems += 1;
                rows.push((line, String::new(), String::new(), Some(e.to_string())));
                points.push(Point { time: f64::NAN, value: f64::NAN });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let time_text = record.get(time_col).unwrap_or("").to_string();
        let value_text = record.get(value_col).unwrap_or("").to_string();
        let time = parse_time(&time_text).map_err(|e| format!("column {}: {e}", args.time));
        let value = match value_text.trim() {
            "" | "NULL" | "null" | "NaN" | "nan" => Ok(f64::NAN),
            v => v.parse::<f64>().map_err(|_| format!("column {}: {v:?} is not a number", args.value)),
        };
        let note = match (&time, &value) {
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("{name}:{line}: {e}; row kept without a score");
                problems += 1;
                Some(e.clone())
            }
            (Ok(_), Ok(v)) if v.is_nan() => Some("missing value".into()),
            _ => None,
        };
        points.push(Point { time: time.unwrap_or(f64::NAN), value: value.unwrap_or(f64::NAN) });
        rows.push((line, time_text, value_text, note));
    }
    let scores: Vec<Row> = if args.online {
        let pairs: Vec<(f64, f64)> = points.iter().map(|p| (p.time, p.value)).collect();
        online::score(&pairs, &online::Options::default())
            .into_iter()
            .map(|s| Row {
                expected: s.expected,
                score: s.score,
                anomaly: s.alert,
                reason: s.reason.map(|r| r.name().to_string()),
            })
            .collect()
    } else {
        let options = telemetry::Options { threshold: args.threshold, ..telemetry::Options::default() };
        telemetry::score_batch(&points, &options)
            .into_iter()
            .map(|s| Row {
                expected: s.expected,
                score: s.score,
                anomaly: s.anomalous,
                reason: s.expected.map(|_| format!("season {}", telemetry::season_name(s.season))),
            })
            .collect()
    };
    write(&rows, &scores, args.format)?;
    let flagged = scores.iter().filter(|s| s.anomaly).count();
    eprintln!(
        "{name}: {} rows, {flagged} anomalous, {problems} unreadable ({} mode)",
        rows.len(),
        if args.online { "online" } else { "batch" }
    );
    Ok(if problems > 0 { 1 } else { 0 })
}

/// One row's result, whichever the mode.
struct Row {
    expected: Option<f64>,
    score: f64,
    anomaly: bool,
    /// Online: the question that found the row least likely; batch: the season used.
    reason: Option<String>,
}

fn write(rows: &[(u64, String, String, Option<String>)], scores: &[Row], format: DetectFormat) -> Result<()> {
    match format {
        DetectFormat::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout().lock());
            w.write_record(["line", "time", "value", "expected", "score", "anomaly", "reason", "note"])?;
            for ((line, time, value, note), s) in rows.iter().zip(scores) {
                w.write_record([
                    line.to_string(),
                    time.clone(),
                    value.clone(),
                    s.expected.map(|e| format!("{e:.6}")).unwrap_or_default(),
                    format!("{:.4}", s.score),
                    s.anomaly.to_string(),
                    s.reason.clone().unwrap_or_default(),
                    note.clone().unwrap_or_default(),
                ])?;
            }
            w.flush()?;
        }
        DetectFormat::Json => {
            let out: Vec<serde_json::Value> = rows
                .iter()
                .zip(scores)
                .map(|((line, time, value, note), s)| {
                    serde_json::json!({
                        "line": line,
                        "time": time,
                        "value": value.trim().parse::<f64>().ok(),
                        "expected": s.expected,
                        "score": s.score,
                        "anomaly": s.anomaly,
                        "reason": s.reason,
                        "note": note,
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn times_in_every_common_shape() {
        assert_eq!(parse_time("1700000000"), Ok(1_700_000_000.0));
        assert_eq!(parse_time("1700000000000"), Ok(1_700_000_000.0));
        assert_eq!(parse_time("1700000000000000"), Ok(1_700_000_000.0));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(1_700_000_000.0));
        assert!(parse_time("yesterday").is_err());
    }
}
