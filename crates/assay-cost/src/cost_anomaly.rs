//! Cost anomalies with root cause (sans-IO): the daily cost of every service, region, account
//! and cost center is scored with [`crate::anomaly`]; days that cost more than their seasonal
//! past predicts are grouped into episodes; each episode's root cause is the finest-grain
//! series (service × region × account × cost center) that drove it; episodes that several
//! monitors saw with the same cause are reported once.
//!
//! Only increases are reported, as cloud providers' cost anomaly detection does: a fall in
//! spend is rarely what a FinOps team is paged for. `assay detect` scores both directions.

use serde::Serialize;

use crate::anomaly::{self, baseline};
use crate::generate::Label;
use crate::series::{Daily, Dimension, Leaf};
use crate::validate::parse_datetime;

/// Thresholds of cost anomaly detection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// The scoring of each day; `min_absolute` is the smallest daily impact in the billing
    /// currency, `min_relative` the smallest as a fraction of the expected cost.
    pub detector: anomaly::Options,
    /// Flagged days at most this many days apart belong to one episode.
    pub max_gap: usize,
    /// Root causes listed per anomaly, at most.
    pub max_causes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            detector: anomaly::Options { min_absolute: 10.0, ..anomaly::Options::default() },
            max_gap: 2,
            max_causes: 3,
        }
    }
}

/// A series that is watched: one value of one dimension.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Monitor {
    /// The dimension.
    pub dimension: Dimension,
    /// Its value.
    pub value: String,
}

/// A finest-grain series that drove an anomaly.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cause {
    /// Service, region, account and cost center.
    #[serde(flatten)]
    pub leaf: Leaf,
    /// Expected cost over the anomaly's days.
    pub expected: f64,
    /// Actual cost over the anomaly's days.
    pub actual: f64,
    /// `actual - expected`.
    pub impact: f64,
    /// Share of the anomaly's impact, 0 to 1.
    pub share: f64,
}

/// A cost anomaly.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostAnomaly {
    /// First anomalous day, `YYYY-MM-DD`.
    pub start: String,
    /// Last anomalous day.
    pub end: String,
    /// The monitor that saw it most clearly (largest relative impact).
    pub monitor: Monitor,
    /// Other monitors that saw the same episode with the same cause.
    pub also_seen_by: Vec<Monitor>,
    /// Expected cost of the monitor over the anomaly's days.
    pub expected: f64,
    /// Actual cost.
    pub actual: f64,
    /// `actual - expected`, in the billing currency.
    pub impact: f64,
    /// `impact / expected`, or `None` when nothing was expected (new spend).
    pub impact_ratio: Option<f64>,
    /// The largest anomaly score of its days, 0 to 1.
    pub score: f64,
    /// The series that drove it, largest impact first.
    pub root_causes: Vec<Cause>,
    #[serde(skip)]
    first: usize,
    #[serde(skip)]
    last: usize,
}

/// Finds cost anomalies in daily series.
pub fn detect(daily: &Daily, options: &Options) -> Vec<CostAnomaly> {
    let mut episodes: Vec<CostAnomaly> = Vec::new();
    for dimension in Dimension::ALL {
        for value in daily.values_of(dimension) {
            let members: Vec<usize> =
                (0..daily.leaves.len()).filter(|&i| dimension.value_of(&daily.leaves[i]) == value).collect();
            let series = daily.sum(|l| dimension.value_of(l) == value);
            let scores = anomaly::score(&series, &options.detector);
            let monitor = Monitor { dimension, value: value.to_string() };
            for (first, last) in episodes_of(&scores, &series, options.max_gap) {
                episodes.push(describe(daily, &members, &series, &scores, monitor.clone(), first, last, options));
            }
        }
    }
    merge(episodes)
}

/// Runs of flagged increases, joined across gaps of at most `max_gap` days.
fn episodes_of(scores: &[anomaly::Score], series: &[f64], max_gap: usize) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for (t, s) in scores.iter().enumerate() {
        let up = s.expected.is_some_and(|e| series[t] > e);
        if !(s.anomalous && up) {
            continue;
        }
        match out.last_mut() {
            Some((_, last)) if t - *last <= max_gap + 1 => *last = t,
            _ => out.push((t, t)),
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn describe(
    daily: &Daily,
    members: &[usize],
    series: &[f64],
    scores: &[anomaly::Score],
    monitor: Monitor,
    first: usize,
    last: usize,
    options: &Options,
) -> CostAnomaly {
    let days = first..=last;
    let expected: f64 = days.clone().filter_map(|t| scores[t].expected).sum();
    let actual: f64 = days.clone().filter(|&t| scores[t].expected.is_some()).map(|t| series[t]).sum();
    let impact = actual - expected;
    let score = days.clone().map(|t| scores[t].score).fold(0.0, f64::max);
    // Each member's own deviation from its own seasonal past over the same days.
    let mut causes: Vec<Cause> = members
        .iter()
        .map(|&i| {
            let values = &daily.values[i];
            let expected: f64 = days.clone().map(|t| baseline(values, t, &options.detector).unwrap_or(0.0)).sum();
            let actual: f64 = days.clone().map(|t| values[t]).sum();
            Cause { leaf: daily.leaves[i].clone(), expected, actual, impact: actual - expected, share: 0.0 }
        })
        .filter(|c| c.impact > 0.0)
        .collect();
    causes.sort_by(|a, b| b.impact.total_cmp(&a.impact));
    let positive: f64 = causes.iter().map(|c| c.impact).sum();
    let mut covered = 0.0;
    let mut kept = Vec::new();
    for mut cause in causes {
        if kept.len() >= options.max_causes || (covered >= 0.8 * positive && !kept.is_empty()) {
            break;
        }
        covered += cause.impact;
        cause.share = if positive > 0.0 { cause.impact / positive } else { 0.0 };
        kept.push(cause);
    }
    CostAnomaly {
        start: daily.date(first),
        end: daily.date(last),
        monitor,
        also_seen_by: Vec::new(),
        expected,
        actual,
        impact,
        impact_ratio: (expected > 0.0).then(|| impact / expected),
        score,
        root_causes: kept,
        first,
        last,
    }
}

/// Reports an episode once when several monitors saw it with the same primary cause.
fn merge(mut episodes: Vec<CostAnomaly>) -> Vec<CostAnomaly> {
    let ratio = |a: &CostAnomaly| a.impact_ratio.unwrap_or(f64::INFINITY);
    episodes.sort_by(|a, b| ratio(b).total_cmp(&ratio(a)).then(a.monitor.cmp(&b.monitor)));
    let mut out: Vec<CostAnomaly> = Vec::new();
    for episode in episodes {
        let cause = episode.root_causes.first().map(|c| &c.leaf);
        let same = out.iter_mut().find(|a| {
            a.root_causes.first().map(|c| &c.leaf) == cause
                && episode.first <= a.last + 2
                && a.first <= episode.last + 2
        });
        match same {
            Some(a) => a.also_seen_by.push(episode.monitor),
            None => out.push(episode),
        }
    }
    out.sort_by(|a, b| a.first.cmp(&b.first).then(b.impact.total_cmp(&a.impact)));
    out
}

/// How well detected anomalies match labelled ones.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// Labelled anomalies.
    pub labels: usize,
    /// Labelled anomalies that some detection matched.
    pub found: usize,
    /// Detections.
    pub detections: usize,
    /// Detections that matched a label.
    pub true_positives: usize,
    /// `true_positives / detections`.
    pub precision: f64,
    /// `found / labels`.
    pub recall: f64,
    /// The harmonic mean of precision and recall.
    pub f1: f64,
    /// Labels no detection matched.
    pub missed: Vec<Label>,
    /// Detections that matched no label: `(start, monitor, primary cause)`.
    pub false_alarms: Vec<(String, Monitor, Option<Leaf>)>,
}

fn day_of(date: &str) -> Option<i64> {
    parse_datetime(date).ok().map(|m| m.div_euclid(86_400_000_000))
}

/// Scores detections against labels. A detection matches a label when its primary root cause
/// is the labelled series and it starts between the day before the label starts and the day
/// after it ends (a spike ends the day it starts; a shift lasts to the end of the data).
pub fn evaluate(anomalies: &[CostAnomaly], labels: &[Label]) -> Evaluation {
    let matches = |a: &CostAnomaly, l: &Label| {
        let Some(cause) = a.root_causes.first().map(|c| &c.leaf) else { return false };
        let same = cause.service == l.service
            && cause.account == l.account
            && cause.region == l.region
            && cause.cost_center == l.cost_center;
        match (day_of(&a.start), day_of(&l.start), day_of(&l.end)) {
            (Some(d), Some(s), Some(e)) => same && d >= s - 1 && d <= e + 1,
            _ => false,
        }
    };
    let true_positives = anomalies.iter().filter(|a| labels.iter().any(|l| matches(a, l))).count();
    let missed: Vec<Label> = labels.iter().filter(|l| !anomalies.iter().any(|a| matches(a, l))).cloned().collect();
    let false_alarms = anomalies
        .iter()
        .filter(|a| !labels.iter().any(|l| matches(a, l)))
        .map(|a| (a.start.clone(), a.monitor.clone(), a.root_causes.first().map(|c| c.leaf.clone())))
        .collect();
    let found = labels.len() - missed.len();
    let precision = if anomalies.is_empty() { 1.0 } else { true_positives as f64 / anomalies.len() as f64 };
    let recall = if labels.is_empty() { 1.0 } else { found as f64 / labels.len() as f64 };
    let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
    Evaluation {
        labels: labels.len(),
        found,
        detections: anomalies.len(),
        true_positives,
        precision,
        recall,
        f1,
        missed,
        false_alarms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(service: &str, region: &str) -> Leaf {
        Leaf { service: service.into(), region: region.into(), account: "a".into(), cost_center: Some("cc".into()) }
    }

    /// Three leaves with weekly seasonality; the second gets a spike on day 50.
    fn daily() -> Daily {
        let leaves = vec![leaf("compute", "eu"), leaf("compute", "us"), leaf("storage", "eu")];
        let values = (0..3)
            .map(|i| {
                (0..90)
                    .map(|d: usize| {
                        let weekly = if d % 7 >= 5 { 0.6 } else { 1.0 };
                        let noise = ((d * 7919 + i * 104_729) % 17) as f64 / 17.0 - 0.5;
                        100.0 * (i + 1) as f64 * weekly * (1.0 + 0.05 * noise)
                    })
                    .collect::<Vec<f64>>()
            })
            .collect::<Vec<_>>();
        Daily { first_day: 0, days: 90, leaves, values }
    }

    #[test]
    fn spike_is_reported_once_with_its_root_cause() {
        let mut data = daily();
        data.values[1][50] *= 4.0;
        let found = detect(&data, &Options::default());
        assert_eq!(found.len(), 1, "{found:#?}");
        let a = &found[0];
        assert_eq!(a.start, "1970-02-20");
        assert_eq!(a.root_causes[0].leaf, leaf("compute", "us"));
        assert!(a.root_causes[0].share > 0.9);
        // The service, region, account and cost center monitors all saw it.
        assert_eq!(a.also_seen_by.len(), 3, "{a:#?}");
        assert!((a.impact - 600.0).abs() < 60.0, "{}", a.impact);
    }

    #[test]
    fn quiet_data_has_no_anomalies_and_drops_are_not_reported() {
        let mut data = daily();
        assert!(detect(&data, &Options::default()).is_empty());
        data.values[2][60] *= 0.1;
        assert!(detect(&data, &Options::default()).is_empty());
    }

    #[test]
    fn evaluation_counts_matches_by_cause_and_window() {
        let mut data = daily();
        data.values[0][40] *= 5.0;
        let found = detect(&data, &Options::default());
        let label = |day: &str, region: &str| Label {
            kind: "spike".into(),
            start: day.into(),
            end: day.into(),
            service: "compute".into(),
            account: "a".into(),
            region: region.into(),
            cost_center: Some("cc".into()),
            factor: 5.0,
        };
        let e = evaluate(&found, &[label("1970-02-10", "eu")]);
        assert_eq!((e.found, e.true_positives, e.f1), (1, 1, 1.0));
        let e = evaluate(&found, &[label("1970-02-10", "us"), label("1970-01-20", "eu")]);
        assert_eq!((e.found, e.true_positives, e.precision, e.recall), (0, 0, 0.0, 0.0));
        assert_eq!(e.false_alarms.len(), 1);
    }
}
