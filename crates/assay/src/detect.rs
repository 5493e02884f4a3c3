//! `assay detect`: anomaly scores for any time series in a CSV file.

use std::io::Read;

use anyhow::{Context, Result};
use assay_detect::online;
use assay_detect::telemetry::{self, Point};

use crate::{DetectArgs, DetectFormat};

/// Seconds since the epoch from an ISO 8601 date-time or a number of seconds, milliseconds or
/// microseconds (told apart by size).
pub(crate) fn parse_time(text: &str) -> Result<f64, String> {
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

/// A CSV series as read: each row's line, time and value text and note, and its point.
pub(crate) struct ReadSeries {
    pub(crate) rows: Vec<(u64, String, String, Option<String>)>,
    pub(crate) points: Vec<Point>,
    /// Rows whose time or value could not be read (each named on standard error).
    pub(crate) problems: usize,
}

/// Reads the `time` and `value` columns of a CSV text; unreadable rows are kept without a point
/// and named on standard error with their line.
pub(crate) fn read(name: &str, text: &str, time: &str, value: &str) -> Result<ReadSeries> {
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
    let (time_col, value_col) = (column(time, "--time")?, column(value, "--value")?);
    let mut out = ReadSeries { rows: Vec::new(), points: Vec::new(), problems: 0 };
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                eprintln!("{name}:{line}: {e}");
                out.problems += 1;
                out.rows.push((line, String::new(), String::new(), Some(e.to_string())));
                out.points.push(Point { time: f64::NAN, value: f64::NAN });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let time_text = record.get(time_col).unwrap_or("").to_string();
        let value_text = record.get(value_col).unwrap_or("").to_string();
        let t = parse_time(&time_text).map_err(|e| format!("column {time}: {e}"));
        let v = match value_text.trim() {
            "" | "NULL" | "null" | "NaN" | "nan" => Ok(f64::NAN),
            v => v.parse::<f64>().map_err(|_| format!("column {value}: {v:?} is not a number")),
        };
        let note = match (&t, &v) {
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("{name}:{line}: {e}; row kept without a score");
                out.problems += 1;
                Some(e.clone())
            }
            (Ok(_), Ok(v)) if v.is_nan() => Some("missing value".into()),
            _ => None,
        };
        out.points.push(Point { time: t.unwrap_or(f64::NAN), value: v.unwrap_or(f64::NAN) });
        out.rows.push((line, time_text, value_text, note));
    }
    Ok(out)
}

pub(crate) fn run(args: DetectArgs) -> Result<u8> {
    if let Some(crate::DetectCommand::Eval(eval)) = args.command {
        return crate::detect_eval::run(eval);
    }
    let (Some(file), Some(time), Some(value)) = (args.file, args.time, args.value) else {
        anyhow::bail!("assay detect needs a FILE, --time and --value");
    };
    let name = file.display().to_string();
    let mut text = String::new();
    if name == "-" {
        std::io::stdin().read_to_string(&mut text).context("reading standard input")?;
    } else {
        text = std::fs::read_to_string(&file).with_context(|| format!("reading {name}"))?;
    }
    let ReadSeries { rows, points, problems } = read(&name, &text, &time, &value)?;
    let scores: Vec<Row> = if args.online {
        online_scores(&points)
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

/// The online detector's scores of `points`, with its default options.
pub(crate) fn online_scores(points: &[Point]) -> Vec<online::Scored> {
    let pairs: Vec<(f64, f64)> = points.iter().map(|p| (p.time, p.value)).collect();
    online::score(&pairs, &online::Options::default())
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
