//! Anomaly scoring of a regular series (sans-IO): each point is compared with what the series'
//! own recent past predicts, and scored by how far it is from it in units of the past's
//! robust spread.
//!
//! The prediction for point `t` is the median of the points one, two, three and four seasons
//! back (for daily cost, the same weekday of the last four weeks), which follows weekly
//! seasonality and is not dragged by a single spike. The spread is the median absolute
//! deviation of the recent residuals. Only points before `t` are used, so scores are the same
//! whether a series is scored in one batch or as it arrives.

use serde::Serialize;

/// How points are scored and flagged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Season length in points (7 for daily data with weekly seasonality; 1 for none).
    pub season: usize,
    /// Seasons of history used for the prediction.
    pub seasons: usize,
    /// Residuals of the recent past used for the spread.
    pub window: usize,
    /// A point is anomalous when its robust z-score reaches this.
    pub threshold: f64,
    /// ...and when it differs from the prediction by at least this much in absolute terms,
    pub min_absolute: f64,
    /// ...and by at least this fraction of the prediction, so noise on small series is quiet.
    pub min_relative: f64,
}

impl Default for Options {
    fn default() -> Self {
        Self { season: 7, seasons: 4, window: 28, threshold: 4.0, min_absolute: 0.0, min_relative: 0.2 }
    }
}

/// The score of one point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Score {
    /// What the past predicted, when there was enough past.
    pub expected: Option<f64>,
    /// The robust z-score: residual over 1.4826 × MAD (0 without a prediction).
    pub z: f64,
    /// The z-score mapped to 0..1 (0 below half the threshold, 1 at twice it).
    pub score: f64,
    /// Whether the point is anomalous.
    pub anomalous: bool,
}

pub(crate) use assay_detect::median;

/// What the past predicts for point `t`: the median of the points one to `seasons` seasons
/// back, when at least half of them are present.
pub fn baseline(series: &[f64], t: usize, options: &Options) -> Option<f64> {
    let season = options.season.max(1);
    let mut history: Vec<f64> = (1..=options.seasons)
        .filter_map(|k| t.checked_sub(k * season))
        .map(|i| series[i])
        .filter(|v| v.is_finite())
        .collect();
    if history.len() * 2 >= options.seasons { median(&mut history) } else { None }
}

/// Scores every point of a series. Missing points are `NaN` and are neither scored nor used.
pub fn score(series: &[f64], options: &Options) -> Vec<Score> {
    let season = options.season.max(1);
    let mut residuals: Vec<f64> = Vec::new();
    let mut out = Vec::with_capacity(series.len());
    for (t, &y) in series.iter().enumerate() {
        let expected = baseline(series, t, options);
        let (Some(expected), true) = (expected, y.is_finite()) else {
            out.push(Score { expected, z: 0.0, score: 0.0, anomalous: false });
            continue;
        };
        let residual = y - expected;
        let recent_start = residuals.len().saturating_sub(options.window);
        let mut recent: Vec<f64> = residuals[recent_start..].to_vec();
        let center = median(&mut recent.clone()).unwrap_or(0.0);
        let mut deviations: Vec<f64> = recent.iter_mut().map(|r| (*r - center).abs()).collect();
        // A floor on the spread: a perfectly flat past would make any change infinitely surprising.
        let mad = median(&mut deviations).unwrap_or(0.0).max(expected.abs() * 0.01).max(f64::EPSILON);
        // Centred on the recent residuals, so a steady trend the baseline lags behind is not news.
        let z = (residual - center) / (1.4826 * mad);
        let big_enough =
            residual.abs() >= options.min_absolute && residual.abs() >= options.min_relative * expected.abs();
        let anomalous = residuals.len() >= season && z.abs() >= options.threshold && big_enough;
        let score = ((z.abs() - options.threshold / 2.0) / (options.threshold * 1.5)).clamp(0.0, 1.0);
        out.push(Score { expected: Some(expected), z, score, anomalous });
        // An anomalous point does not teach the spread what normal is.
        if !anomalous {
            residuals.push(residual);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A weekly-seasonal series with small deterministic noise.
    fn weekly(days: usize) -> Vec<f64> {
        (0..days)
            .map(|d| {
                let weekend = if d % 7 >= 5 { 0.6 } else { 1.0 };
                let noise = ((d * 7919) % 13) as f64 / 13.0 - 0.5;
                100.0 * weekend * (1.0 + 0.04 * noise)
            })
            .collect()
    }

    #[test]
    fn quiet_series_has_no_anomalies() {
        let scores = score(&weekly(120), &Options::default());
        assert_eq!(scores.iter().filter(|s| s.anomalous).count(), 0);
        assert!(scores[..28].iter().all(|s| s.expected.is_none() || s.z.is_finite()));
    }

    #[test]
    fn spike_and_level_shift_onset_are_flagged() {
        let mut series = weekly(120);
        series[60] *= 4.0;
        for v in &mut series[90..] {
            *v *= 2.0;
        }
        let flagged: Vec<usize> = score(&series, &Options::default())
            .iter()
            .enumerate()
            .filter(|(_, s)| s.anomalous)
            .map(|(i, _)| i)
            .collect();
        assert!(flagged.contains(&60), "{flagged:?}");
        assert!(flagged.contains(&90), "{flagged:?}");
        assert!(flagged.iter().all(|&i| i == 60 || (90..120).contains(&i)), "{flagged:?}");
    }

    #[test]
    fn online_scores_equal_batch_scores() {
        let mut series = weekly(80);
        series[50] *= 3.0;
        let batch = score(&series, &Options::default());
        for t in [30, 50, 79] {
            let online = score(&series[..=t], &Options::default());
            assert_eq!(online[t], batch[t]);
        }
    }

    #[test]
    fn small_relative_changes_are_not_reported() {
        let mut series = weekly(60);
        series[45] *= 1.1;
        assert!(!score(&series, &Options::default())[45].anomalous);
    }
}
