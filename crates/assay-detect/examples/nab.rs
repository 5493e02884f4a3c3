//! Scores the NAB development corpus with the online detector: `cargo run --release -p assay-detect --example nab [DIR]`.
use std::collections::BTreeMap;

use assay_detect::nab::{self, Profile};
use assay_detect::telemetry::Point;

fn epoch(text: &str) -> f64 {
    // "YYYY-MM-DD HH:MM:SS"
    let t = text.split('.').next().unwrap_or(text);
    let n = |a: usize, b: usize| t[a..b].parse::<i64>().unwrap_or(0);
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    let (hh, mm, ss) = (n(11, 13), n(14, 16), n(17, 19));
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days * 86_400 + hh * 3600 + mm * 60 + ss) as f64
}

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "../shared/conformance/nab-dev".into());
    let labels: BTreeMap<String, Vec<(String, String)>> =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/labels/combined_windows.json")).expect("labels"))
            .expect("labels JSON");
    let started = std::time::Instant::now();
    let mut series = Vec::new();
    let mut rows = 0;
    for (rel, windows) in &labels {
        if std::env::var("ONLY").is_ok_and(|o| !rel.contains(&o)) {
            continue;
        }
        let text = std::fs::read_to_string(format!("{dir}/data/{rel}")).expect("data");
        let mut times = Vec::new();
        let mut points = Vec::new();
        for line in text.lines().skip(1) {
            let (t, v) = line.split_once(',').expect("row");
            times.push(t.split('.').next().unwrap_or(t).to_string());
            points.push(Point { time: epoch(t), value: v.trim().parse().unwrap_or(f64::NAN) });
        }
        rows += points.len();
        if std::env::var("DIAG").is_ok() {
            let pts: Vec<(f64, f64)> = points.iter().map(|p| (p.time, p.value)).collect();
            let scored = assay_detect::online::score(&pts, &opts());
            let prob = ((0.15 * pts.len() as f64) as usize).min(750);
            let idx = |ts: &str| times.iter().position(|t| t == ts.split('.').next().unwrap_or(ts)).unwrap_or(0);
            let w: Vec<(usize, usize)> = windows.iter().map(|(a, b)| (idx(a), idx(b))).collect();
            let alerts: Vec<String> = scored
                .iter()
                .enumerate()
                .filter(|(i, s)| s.alert && *i >= prob)
                .map(|(i, s)| {
                    let inside = w.iter().any(|(a, b)| i >= *a && i <= *b);
                    format!(
                        "{}{}:{:?}:{:.1}",
                        if inside { "+" } else { "-" },
                        i,
                        s.reason.map(|r| format!("{r:?}")).unwrap_or_default(),
                        s.surprise
                    )
                })
                .collect();
            println!("{rel} n={} prob={prob} windows={w:?}\n   {}", pts.len(), alerts.join(" "));
        }
        let pts: Vec<(f64, f64)> = points.iter().map(|p| (p.time, p.value)).collect();
        let scores: Vec<f64> = assay_detect::online::score(&pts, &opts()).iter().map(|s| s.score).collect();
        if let Ok(out) = std::env::var("RESULTS") {
            let path = format!("{out}/{rel}");
            std::fs::create_dir_all(std::path::Path::new(&path).parent().expect("dir")).expect("mkdir");
            let mut csv = String::from("timestamp,score\n");
            for (t, s) in times.iter().zip(&scores) {
                csv.push_str(&format!("{t},{s}\n"));
            }
            std::fs::write(path, csv).expect("write");
        }
        let index = |ts: &str| times.iter().position(|t| t == ts.split('.').next().unwrap_or(ts)).expect("window time");
        let windows = windows.iter().map(|(a, b)| (index(a), index(b))).collect();
        series.push(nab::Series { name: rel.clone(), scores, windows });
    }
    let elapsed = started.elapsed();
    let e = nab::evaluate(&series, &Profile::STANDARD, 0.5);
    println!(
        "all: best {:.1} at {:.3} (alerts {}, precision {:.2}, recall {:.2}); default {:.1} (alerts {}, precision {:.2}, recall {:.2}); {} rows in {:.2?}",
        e.best.score,
        e.best.threshold,
        e.best.alerts,
        e.best.precision,
        e.best.recall,
        e.default.score,
        e.default.alerts,
        e.default.precision,
        e.default.recall,
        rows,
        elapsed
    );
    let mut categories: Vec<&str> = series.iter().map(|s| s.name.split('/').next().unwrap_or("")).collect();
    categories.dedup();
    for c in categories {
        let part: Vec<nab::Series> = series.iter().filter(|s| s.name.starts_with(c)).cloned().collect();
        let e = nab::evaluate(&part, &Profile::STANDARD, 0.5);
        println!(
            "{c:24} best {:6.1} at {:.3}  default {:6.1}  alerts {:4} windows {}",
            e.best.score, e.best.threshold, e.default.score, e.default.alerts, e.windows
        );
    }
}

fn opts() -> assay_detect::online::Options {
    let mut o = assay_detect::online::Options::default();
    let get = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<f64>().ok());
    if let Some(v) = get("S0") {
        o.surprise_at_half = v;
    }
    if let Some(v) = get("WINDOW") {
        o.window = v as usize;
    }
    if let Some(v) = get("PATTERN") {
        o.pattern = v as usize;
    }
    if let Some(v) = get("REFS") {
        o.references = v as usize;
    }
    if let Some(v) = get("HISTORY") {
        o.history = v as usize;
    }
    if let Some(v) = get("WARMUP") {
        o.warmup = v as usize;
    }
    o
}
