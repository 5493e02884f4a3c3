//! Anomaly scores for any time series (sans-IO): CPU, egress bytes, request or access counts.
//! Points may be irregular, have gaps, or arrive out of order; minute, hourly and daily data
//! are handled alike, because nothing assumes a grid.
//!
//! Each point is predicted by a *candidate* model and scored by its distance from the
//! prediction in units of the robust spread (1.4826 × MAD) of that model's past residuals.
//! The candidates are: no season (the median of the nearest earlier points), and a season of
//! an hour, a day or a week (the median of the points nearest to one to four seasons earlier).
//! The seasonality is chosen from the data: the candidate whose predictions have been most
//! accurate so far is used.
//!
//! [`score_batch`] looks at the whole series: it predicts each point from both sides and chooses
//! one candidate for the whole series. (Online scoring, each point from the points before it
//! only, is [`crate::online`].)

use std::collections::BTreeMap;

use serde::Serialize;

use crate::median;

/// One observation: seconds since the epoch and a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Seconds since 1970-01-01 UTC (fractions allowed).
    pub time: f64,
    /// The value; `NaN` when missing (such points are not scored and not used).
    pub value: f64,
}

/// How points are scored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// A point is anomalous when its robust z-score reaches this (its score reaches 0.5).
    pub threshold: f64,
    /// Seasons back (and, in batch mode, forward) a prediction uses.
    pub seasons: usize,
    /// Points a candidate must have predicted before it can be chosen or flag anything.
    pub warmup: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self { threshold: 4.0, seasons: 4, warmup: 10 }
    }
}

/// Season lengths tried, in seconds; 0 means no season.
pub const CANDIDATES: [f64; 4] = [0.0, 3_600.0, 86_400.0, 604_800.0];

/// A season length's name: `none`, `hour`, `day` or `week`.
pub fn season_name(seconds: f64) -> &'static str {
    if seconds <= 0.0 {
        "none"
    } else if seconds <= 3_600.0 {
        "hour"
    } else if seconds <= 86_400.0 {
        "day"
    } else {
        "week"
    }
}

/// The score of one point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Scored {
    /// The prediction, when there was one.
    pub expected: Option<f64>,
    /// Anomaly score, 0 to 1: `|z| / (|z| + threshold)`, so 0.5 at the threshold.
    pub score: f64,
    /// Whether the point is anomalous (score ≥ 0.5, after warm-up).
    pub anomalous: bool,
    /// The season used, in seconds (0 for none).
    pub season: f64,
}

impl Scored {
    const NONE: Scored = Scored { expected: None, score: 0.0, anomalous: false, season: 0.0 };
}

/// Points kept in time order for nearest-neighbour lookups; keys are (time in µs, arrival).
#[derive(Default)]
struct History {
    points: BTreeMap<(i64, usize), f64>,
}

fn micros(time: f64) -> i64 {
    (time * 1e6).round() as i64
}

impl History {
    fn insert(&mut self, index: usize, p: Point) {
        self.points.insert((micros(p.time), index), p.value);
    }

    /// The value nearest to `time` within `tolerance` seconds, not the point `skip`.
    fn near(&self, time: f64, tolerance: f64, skip: usize) -> Option<f64> {
        let (lo, hi) = (micros(time - tolerance), micros(time + tolerance));
        let at = micros(time);
        self.points
            .range((lo, 0)..=(hi, usize::MAX))
            .filter(|((_, i), _)| *i != skip)
            .min_by_key(|((t, _), _)| (t - at).abs())
            .map(|(_, v)| *v)
    }

    /// Up to `n` values just before `time` (and, when `both`, just after it), not `skip`.
    fn neighbours(&self, time: f64, n: usize, both: bool, skip: usize) -> Vec<f64> {
        let at = micros(time);
        let mut out: Vec<f64> =
            self.points.range(..(at, 0)).rev().filter(|((_, i), _)| *i != skip).take(n).map(|(_, v)| *v).collect();
        if both {
            out.extend(self.points.range((at, 0)..).filter(|((_, i), _)| *i != skip).take(n).map(|(_, v)| *v));
        }
        out
    }

    /// A candidate's prediction for a point at `time`.
    fn predict(
        &self,
        season: f64,
        time: f64,
        tolerance: f64,
        options: &Options,
        both: bool,
        skip: usize,
    ) -> Option<f64> {
        let mut values = if season == 0.0 {
            self.neighbours(time, options.seasons + 1, both, skip)
        } else {
            let mut v: Vec<f64> =
                (1..=options.seasons).filter_map(|k| self.near(time - k as f64 * season, tolerance, skip)).collect();
            if both {
                v.extend((1..=options.seasons).filter_map(|k| self.near(time + k as f64 * season, tolerance, skip)));
            }
            v
        };
        // At least half of one side's lookups must find a point.
        if values.len() * 2 < options.seasons.max(1) {
            return None;
        }
        median(&mut values)
    }
}

/// The robust z-score of `residual` against earlier `residuals`.
fn robust_z(residual: f64, residuals: &[f64], expected: f64) -> f64 {
    let (center, spread) = center_and_spread(residuals, expected);
    (residual - center) / spread
}

/// The median of `residuals` and 1.4826 × their median absolute deviation, with a floor on the
/// spread so that a perfectly flat past does not make any change infinitely surprising.
fn center_and_spread(residuals: &[f64], expected: f64) -> (f64, f64) {
    let mut recent = residuals.to_vec();
    let center = median(&mut recent).unwrap_or(0.0);
    let mut deviations: Vec<f64> = residuals.iter().map(|r| (r - center).abs()).collect();
    let mad = median(&mut deviations).unwrap_or(0.0).max(expected.abs() * 1e-3).max(1e-9);
    (center, 1.4826 * mad)
}

fn to_score(z: f64, threshold: f64) -> f64 {
    let z = z.abs();
    if z.is_finite() { z / (z + threshold) } else { 1.0 }
}

/// The typical spacing of the points: the median gap between neighbours in time.
fn typical_step(times: &mut [f64]) -> f64 {
    times.sort_by(f64::total_cmp);
    let mut gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).filter(|g| *g > 0.0).collect();
    median(&mut gaps).unwrap_or(1.0)
}

/// Candidates worth trying at this spacing: a season of fewer than four points is not one.
fn seasons_to_try(step: f64) -> Vec<f64> {
    CANDIDATES.into_iter().filter(|&s| s == 0.0 || s >= 4.0 * step).collect()
}

/// Scores each point against the whole series: predictions from both sides, one season for
/// the whole series (the candidate with the smallest median absolute relative error), and the
/// spread of all its residuals.
pub fn score_batch(points: &[Point], options: &Options) -> Vec<Scored> {
    let valid: Vec<(usize, Point)> =
        points.iter().copied().enumerate().filter(|(_, p)| p.value.is_finite() && p.time.is_finite()).collect();
    let mut history = History::default();
    for &(i, p) in &valid {
        history.insert(i, p);
    }
    let step = typical_step(&mut valid.iter().map(|(_, p)| p.time).collect::<Vec<_>>());
    let tolerance = step / 2.0;
    let mut best: Option<(f64, f64, Vec<Option<f64>>)> = None;
    for season in seasons_to_try(step) {
        let predictions: Vec<Option<f64>> =
            valid.iter().map(|&(i, p)| history.predict(season, p.time, tolerance, options, true, i)).collect();
        let mut errors: Vec<f64> = valid
            .iter()
            .zip(&predictions)
            .filter_map(|((_, p), e)| e.map(|e| ((p.value - e) / p.value.abs().max(e.abs()).max(1e-9)).abs()))
            .collect();
        if errors.len() < options.warmup || errors.len() * 2 < valid.len() {
            continue;
        }
        let error = median(&mut errors).unwrap_or(f64::INFINITY);
        if best.as_ref().is_none_or(|(_, e, _)| error < *e) {
            best = Some((season, error, predictions));
        }
    }
    let mut out = vec![Scored::NONE; points.len()];
    let Some((season, _, predictions)) = best else { return out };
    let residuals: Vec<f64> = valid.iter().zip(&predictions).filter_map(|((_, p), e)| e.map(|e| p.value - e)).collect();
    for (&(i, p), expected) in valid.iter().zip(predictions) {
        let Some(expected) = expected else { continue };
        let z = robust_z(p.value - expected, &residuals, expected);
        let score = to_score(z, options.threshold);
        out[i] = Scored { expected: Some(expected), score, anomalous: score >= 0.5, season };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pseudo-random noise in -0.5..0.5, the same for the same `i`.
    fn noise(i: usize) -> f64 {
        let x = (i as f64 * 12.9898).sin() * 43_758.545_3;
        x - x.floor() - 0.5
    }

    /// Hourly data with a daily cycle, small noise, and a few gaps.
    fn hourly(hours: usize) -> Vec<Point> {
        (0..hours)
            .filter(|h| h % 97 != 50)
            .map(|h| {
                let daily = 50.0 + 30.0 * ((h % 24) as f64 / 24.0 * std::f64::consts::TAU).sin();
                Point { time: 1_700_000_000.0 + h as f64 * 3600.0, value: daily + 4.0 * noise(h) }
            })
            .collect()
    }

    fn flagged(scores: &[Scored]) -> Vec<usize> {
        scores.iter().enumerate().filter(|(_, s)| s.anomalous).map(|(i, _)| i).collect()
    }

    #[test]
    fn batch_chooses_the_daily_cycle_and_a_spike_is_the_only_anomaly() {
        let mut points = hourly(24 * 21);
        let spike = points.len() - 40;
        points[spike].value += 60.0;
        let scores = score_batch(&points, &Options::default());
        assert_eq!(flagged(&scores), vec![spike]);
        assert_eq!(scores[spike].season, 86_400.0);
        assert!(scores[spike].score > 0.8);
        assert!(scores.iter().all(|s| (0.0..=1.0).contains(&s.score)));
    }

    #[test]
    fn irregular_minute_data_without_season() {
        // Jittered timestamps about a minute apart; a level that wanders slowly; one outlier.
        let mut points: Vec<Point> = (0..600)
            .map(|i| {
                let jitter = ((i * 37) % 20) as f64 - 10.0;
                Point {
                    time: 1_700_000_000.0 + i as f64 * 60.0 + jitter,
                    value: 200.0 + i as f64 * 0.05 + 4.0 * noise(i),
                }
            })
            .collect();
        points[400].value = 260.0;
        points[401].value = f64::NAN;
        let batch = score_batch(&points, &Options::default());
        assert_eq!(flagged(&batch), vec![400]);
        assert_eq!(batch[401], Scored::NONE);
    }
}
