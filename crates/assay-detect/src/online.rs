//! The online detector: each row's score from that row and the rows before it only.
//!
//! **What is scored: novelty of the latest pattern.** The last `m` values (4 by default) are
//! compared with every earlier run of `m` values (the last 4,096 rows), and the distance to the
//! nearest one is the row's *novelty*: a spike, a dip, a level never seen, a rhythm that broke
//! or a signal that went flat all make a run of values unlike any before, while a change that
//! has happened before, or a new level once it has lasted a while, does not. This is the
//! nearest-neighbour "discord" idea behind matrix-profile and KNN detectors, and it makes no
//! assumption about the series' shape, noise or seasonality.
//!
//! **From novelty to a probability.** The novelty is then turned into a probability against
//! the series' *own* history of novelties: the chance of one at least as large, from the
//! empirical distribution and, beyond its 95th percentile, from a generalised Pareto
//! distribution fitted to the largest values (peaks over threshold, as in Siffer et al.,
//! "Anomaly detection in streams with extreme value theory", KDD 2017; the shape is kept at or
//! above zero, so tails are never assumed to end). That makes scores comparable across series
//! whatever their units and noise, so one threshold serves them all. The surprise is
//! `S = −log10(p)` and the score `S / (S + 2)`: 0.5, the flag, at a probability of 1%.
//!
//! **Events, not runs.** The first row that reaches the flag raises an alert and opens an
//! event; later rows keep a quarter of their score while the novelty stays unusual (probability
//! under 10%) and for twice a pattern's length after, so a level shift gives one early alert rather than one
//! per row.
//!
//! **Why.** Each row is also asked simpler questions, which explain a flag but do not decide
//! it: how far the value is from the recent level (the median of the last 256 rows), from the
//! previous value, and from the same time on earlier days (when the series has a daily rhythm),
//! each in units of its typical size and turned into a probability the same way. The reason
//! given is the question that finds the row least likely; the expected value is that
//! question's prediction.

use serde::Serialize;

/// How rows are scored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// The surprise (−log10 of the probability) that scores 0.5.
    pub surprise_at_half: f64,
    /// Values in a pattern.
    pub pattern: usize,
    /// Earlier rows a pattern is compared with.
    pub references: usize,
    /// Rows of recent past for the level and the typical step (the explanations).
    pub window: usize,
    /// Values of each statistic kept for its probabilities.
    pub history: usize,
    /// Values a statistic needs before it gives probabilities: with fewer than 100, a 1%
    /// probability cannot be told from the data.
    pub warmup: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self { surprise_at_half: 2.0, pattern: 4, references: 4096, window: 256, history: 4096, warmup: 100 }
    }
}

/// One row's score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Scored {
    /// What the recent past predicted (its median), when there was a past.
    pub expected: Option<f64>,
    /// 0 to 1; 0.5 at the flag threshold.
    pub score: f64,
    /// −log10 of the (corrected) probability of a row at least this unusual.
    pub surprise: f64,
    /// Whether this row raised an alert (the first of its event).
    pub alert: bool,
    /// The question that found the row most unusual.
    pub reason: Option<Reason>,
}

impl Scored {
    const NONE: Scored = Scored { expected: None, score: 0.0, surprise: 0.0, alert: false, reason: None };
}

/// Which question found a row least likely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Far from the recent level.
    Level,
    /// A sudden change from the previous value.
    Jump,
    /// Unusual for the time of day.
    Season,
    /// The last values form a pattern not seen before.
    Pattern,
}

impl Reason {
    const ALL: [Reason; 4] = [Reason::Level, Reason::Jump, Reason::Season, Reason::Pattern];

    /// Its name: `level`, `jump`, `season` or `pattern`.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Level => "level",
            Reason::Jump => "jump",
            Reason::Season => "season",
            Reason::Pattern => "pattern",
        }
    }

    /// What the reason means, for people, with the expected value's meaning.
    pub fn describe(self) -> &'static str {
        match self {
            Reason::Level => "far from the recent level (expected: the median of recent values)",
            Reason::Jump => "a sudden change from the previous value (expected: the previous value)",
            Reason::Season => "unusual for the time of day (expected: the median at this time on earlier days)",
            Reason::Pattern => "the last values form a pattern not seen before (expected: the closest earlier pattern)",
        }
    }
}

/// A statistic's history, turned into tail probabilities.
#[derive(Debug, Default, Clone)]
struct Tail {
    values: std::collections::VecDeque<f64>,
    /// Sorted copy of `values`, refreshed every few rows.
    sorted: Vec<f64>,
    stale: usize,
    /// Peaks over threshold: (threshold, count above, GPD shape, GPD scale).
    fit: Option<(f64, usize, f64, f64)>,
}

impl Tail {
    fn push(&mut self, x: f64, keep: usize) {
        self.values.push_back(x);
        if self.values.len() > keep {
            self.values.pop_front();
        }
        self.stale += 1;
    }

    fn refresh(&mut self) {
        if self.stale == 0 && !self.sorted.is_empty() {
            return;
        }
        // Refreshing every row is exact but slow; every 8 rows (and while the history is short)
        // changes probabilities by less than one row's weight.
        if self.stale < 8 && self.sorted.len() >= 64 {
            return;
        }
        self.stale = 0;
        self.sorted.clear();
        self.sorted.extend(self.values.iter().copied());
        self.sorted.sort_by(f64::total_cmp);
        let n = self.sorted.len();
        let u = self.sorted[((n as f64 * 0.95) as usize).min(n - 1)];
        let excesses: Vec<f64> = self.sorted.iter().filter(|&&v| v > u).map(|v| v - u).collect();
        self.fit = None;
        if excesses.len() >= 5 {
            let k = excesses.len() as f64;
            let mean = excesses.iter().sum::<f64>() / k;
            let var = excesses.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (k - 1.0);
            if mean > 0.0 && var > 0.0 {
                // Method of moments for the generalised Pareto distribution.
                let r = mean * mean / var;
                let shape = (0.5 * (1.0 - r)).clamp(0.0, 0.5);
                let scale = 0.5 * mean * (1.0 + r);
                self.fit = Some((u, excesses.len(), shape, scale));
            }
        }
    }

    /// The probability of a value at least `x` under this history; `None` while too short.
    fn probability(&mut self, x: f64, warmup: usize) -> Option<f64> {
        if self.values.len() < warmup {
            return None;
        }
        self.refresh();
        let n = self.sorted.len() as f64;
        let at_least = self.sorted.len() - self.sorted.partition_point(|&v| v < x);
        let empirical = (at_least as f64 + 1.0) / (n + 1.0);
        let Some((u, above, shape, scale)) = self.fit else {
            // No tail to fit: beyond everything seen (a flat history) is very unusual.
            let max = self.sorted.last().copied().unwrap_or(0.0);
            return Some(if x > max { empirical * 1e-3 } else { empirical });
        };
        if x <= u {
            return Some(empirical);
        }
        let z = (x - u) / scale;
        let survival = if shape.abs() < 1e-6 {
            (-z).exp()
        } else {
            let base = 1.0 + shape * z;
            if base <= 0.0 { 0.0 } else { base.powf(-1.0 / shape) }
        };
        // Never less likely than the data say: beyond the largest value seen, at most 1/(n+1).
        Some((above as f64 / n * survival).min(empirical).max(1e-300))
    }
}

/// Scores rows as they arrive.
#[derive(Debug, Clone)]
pub struct Detector {
    options: Options,
    /// Recent valid (time, value) rows.
    recent: std::collections::VecDeque<f64>,
    /// Valid rows by time, for the season question.
    times: Vec<f64>,
    values: Vec<f64>,
    steps: std::collections::VecDeque<f64>,
    seasonal: std::collections::VecDeque<f64>,
    tails: [Tail; 4],
    /// Recent valid values for the pattern question.
    past: std::collections::VecDeque<f64>,
    /// The surprise of the strongest row of the current event, if one is open; rows since the
    /// event was last unusual.
    event: Option<(f64, usize)>,
    /// Rows since the last gap.
    since_gap: usize,
}

/// The mean absolute deviation of `values` from `center`: a spread that, unlike the median
/// absolute deviation, does not collapse to zero on quantised data (CPU percentages, counts).
fn mean_abs(values: impl Iterator<Item = f64>, center: f64) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + (v - center).abs(), n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}

fn median_of(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.collect();
    crate::median(&mut v)
}

impl Detector {
    /// A detector with no history.
    pub fn new(options: Options) -> Self {
        Self {
            options,
            recent: Default::default(),
            times: Vec::new(),
            values: Vec::new(),
            steps: Default::default(),
            seasonal: Default::default(),
            tails: Default::default(),
            past: Default::default(),
            event: None,
            since_gap: 0,
        }
    }

    /// The value nearest to `time` among earlier rows, within `tolerance` seconds.
    fn near(&self, time: f64, tolerance: f64) -> Option<f64> {
        let i = self.times.partition_point(|&t| t < time);
        [i.checked_sub(1), Some(i)]
            .into_iter()
            .flatten()
            .filter_map(|j| Some((self.times.get(j)?, self.values[j])))
            .filter(|(t, _)| (**t - time).abs() <= tolerance)
            .min_by(|a, b| (a.0 - time).abs().total_cmp(&(b.0 - time).abs()))
            .map(|(_, v)| v)
    }

    /// Scores the next row and learns from it.
    pub fn push(&mut self, time: f64, value: f64) -> Scored {
        if !(time.is_finite() && value.is_finite()) {
            return Scored::NONE;
        }
        let o = self.options;
        let typical = self.typical_step();
        // Each question's statistic and prediction: level, jump, season, pattern.
        let mut stats: [Option<(f64, f64)>; 4] = [None; 4];
        if self.recent.len() >= 3 {
            let med = median_of(self.recent.iter().copied()).unwrap_or(value);
            let floor = med.abs() * 1e-6 + 1e-12;
            let spread = mean_abs(self.recent.iter().copied(), med) + floor;
            stats[0] = Some(((value - med).abs() / spread, med));
            let last = *self.recent.back().unwrap_or(&value);
            let step = mean_abs(self.steps.iter().copied(), 0.0) + floor;
            stats[1] = Some(((value - last).abs() / step, last));
            // A daily rhythm: the values one to three days before, when rows are at most an
            // hour apart.
            if typical > 0.0 && typical <= 3_600.0 {
                let tolerance = typical / 2.0;
                let before: Vec<f64> =
                    (1..=3).filter_map(|k| self.near(time - k as f64 * 86_400.0, tolerance)).collect();
                if before.len() >= 2 {
                    let e = median_of(before.into_iter()).unwrap_or(value);
                    let typical_diff = mean_abs(self.seasonal.iter().copied(), 0.0) + floor;
                    stats[2] = Some(((value - e).abs() / typical_diff, e));
                    self.seasonal.push_back((value - e).abs());
                    if self.seasonal.len() > o.window {
                        self.seasonal.pop_front();
                    }
                }
            }
        }
        // Novelty: the distance from the last `m` values to the nearest earlier run of `m`. A
        // pattern that spans a gap in the data (more than five typical steps) is not one: none
        // is scored until `m` rows have come after the gap.
        let m = o.pattern.max(1);
        if typical > 0.0 && self.times.last().is_some_and(|&t| time - t > 5.0 * typical) {
            self.since_gap = 0;
        }
        self.since_gap += 1;
        self.past.push_back(value);
        if self.past.len() > o.references + m {
            self.past.pop_front();
        }
        let n = self.past.len();
        if n >= o.warmup + 2 * m && self.since_gap >= m {
            let past = self.past.make_contiguous();
            let current = &past[n - m..];
            let (mut best, mut at) = (f64::INFINITY, 0);
            for j in 0..=(n - 2 * m) {
                let mut d = 0.0;
                for k in 0..m {
                    let x = past[j + k] - current[k];
                    d += x * x;
                    if d >= best {
                        break;
                    }
                }
                if d < best {
                    (best, at) = (d, j);
                }
            }
            stats[3] = Some((best.sqrt(), past[at + m - 1]));
        }
        // Probabilities against each statistic's own past.
        let mut probabilities: [Option<f64>; 4] = [None; 4];
        for ((stat, tail), p) in stats.iter().zip(&mut self.tails).zip(&mut probabilities) {
            let Some((x, _)) = *stat else { continue };
            *p = tail.probability(x, o.warmup);
            tail.push(x, o.history);
        }
        let surprise = probabilities[3].map_or(0.0, |p| (-p.log10()).max(0.0));
        // The explanation: the question that finds the row least likely.
        let (reason, expected) = probabilities
            .iter()
            .zip(Reason::ALL)
            .zip(&stats)
            .filter_map(|((p, r), s)| Some((p.as_ref()?, r, s.as_ref()?.1)))
            .min_by(|a, b| a.0.total_cmp(b.0))
            .map_or((None, stats[0].map(|s| s.1)), |(_, r, e)| (Some(r), Some(e)));
        let raw = surprise / (surprise + o.surprise_at_half);
        // Events: one alert per run of unusual rows.
        // An event stays open while rows are unusual at the 10% level, and for twice a
        // pattern's length after.
        let unusual = surprise >= 1.0;
        let mut score = raw;
        let mut alert = false;
        match self.event {
            Some((strongest, quiet)) => {
                score = raw * 0.25;
                self.event = if unusual {
                    Some((strongest.max(surprise), 0))
                } else if quiet + 1 >= 2 * m {
                    None
                } else {
                    Some((strongest, quiet + 1))
                };
            }
            None if raw >= 0.5 => {
                alert = true;
                self.event = Some((surprise, 0));
            }
            None => {}
        }
        // Learn.
        if let Some(&last) = self.recent.back() {
            self.steps.push_back((value - last).abs());
            if self.steps.len() > o.window {
                self.steps.pop_front();
            }
        }
        self.recent.push_back(value);
        if self.recent.len() > o.window {
            self.recent.pop_front();
        }
        if self.times.last().is_none_or(|&t| time >= t) {
            self.times.push(time);
            self.values.push(value);
        }
        // The season question looks three days back: older rows are dropped, a batch at a time.
        if self.times.first().is_some_and(|&t| t < time - 4.0 * 86_400.0) && self.times.len() > 1024 {
            let keep = self.times.partition_point(|&t| t < time - 3.5 * 86_400.0);
            self.times.drain(..keep);
            self.values.drain(..keep);
        }
        Scored { expected, score, surprise, alert, reason }
    }

    fn typical_step(&self) -> f64 {
        let n = self.times.len();
        if n < 8 {
            return 0.0;
        }
        let from = n.saturating_sub(64);
        median_of(self.times[from..].windows(2).map(|w| w[1] - w[0]).filter(|g| *g > 0.0)).unwrap_or(0.0)
    }
}

/// Scores every row of a series in order, online.
pub fn score(points: &[(f64, f64)], options: &Options) -> Vec<Scored> {
    let mut d = Detector::new(*options);
    points.iter().map(|&(t, v)| d.push(t, v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pseudo-random noise in -0.5..0.5, the same for the same `i`.
    fn noise(i: usize) -> f64 {
        let x = (i as f64 * 12.9898).sin() * 43_758.545_3;
        x - x.floor() - 0.5
    }

    /// Hourly rows with a daily cycle, noise, jittered times and a ten-hour gap.
    fn hourly(hours: usize) -> Vec<(f64, f64)> {
        (0..hours)
            .filter(|h| !(300..310).contains(h))
            .map(|h| {
                let t = 1_700_000_000.0 + h as f64 * 3600.0 + ((h * 37) % 300) as f64;
                let cycle = 40.0 + 25.0 * ((h % 24) as f64 / 24.0 * std::f64::consts::TAU).sin();
                (t, cycle + 4.0 * noise(h))
            })
            .collect()
    }

    fn alerts(scores: &[Scored]) -> Vec<usize> {
        scores.iter().enumerate().filter(|(_, s)| s.alert).map(|(i, _)| i).collect()
    }

    #[test]
    fn a_spike_in_a_daily_cycle_is_the_only_alert_and_says_what_was_expected() {
        let mut points = hourly(24 * 21);
        let spike = points.len() - 70;
        points[spike].1 += 45.0;
        let scores = score(&points, &Options::default());
        assert_eq!(alerts(&scores), vec![spike]);
        let s = scores[spike];
        assert!(s.score > 0.6 && s.surprise > 3.0, "{s:?}");
        let expected = s.expected.expect("expected");
        assert!((expected - (points[spike].1 - 45.0)).abs() < 15.0, "{s:?} for {}", points[spike].1);
        assert!(scores.iter().all(|s| (0.0..=1.0).contains(&s.score)));
    }

    #[test]
    fn a_level_shift_raises_one_alert_not_a_run() {
        let points: Vec<(f64, f64)> =
            (0..1500).map(|i| (i as f64 * 300.0, if i < 1000 { 10.0 } else { 25.0 } + 2.0 * noise(i))).collect();
        let scores = score(&points, &Options::default());
        let found = alerts(&scores);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!((1000..1004).contains(&found[0]), "{found:?}");
        // Later rows of the event score below the flag.
        assert!(scores[1001..1100].iter().all(|s| s.score < 0.5));
    }

    #[test]
    fn each_score_uses_only_earlier_rows() {
        let mut points = hourly(24 * 12);
        points[200].1 *= 3.0;
        let all = score(&points, &Options::default());
        for t in [30, 150, 200, points.len() - 1] {
            assert_eq!(score(&points[..=t], &Options::default())[t], all[t]);
        }
    }

    #[test]
    fn constant_gappy_and_missing_values_are_scored_without_panic() {
        let mut points: Vec<(f64, f64)> = (0..600).map(|i| (i as f64 * 60.0, 5.0)).collect();
        points.retain(|p| (p.0 as usize / 60) % 50 != 7);
        points[100].1 = f64::NAN;
        points[101].0 = f64::NAN;
        let change = points.len() - 20;
        points[change].1 = 6.0;
        let scores = score(&points, &Options::default());
        assert_eq!(scores[100], Scored::NONE);
        assert_eq!(alerts(&scores), vec![change], "a flat series that moves is news");
        assert!(scores.iter().all(|s| s.score.is_finite()));
        assert!(score(&[], &Options::default()).is_empty());
    }
}
