//! Changes in a metric measured once per run (a dataset's row count, a column's null count):
//! series of tens of points, too short for the online detector's calibration, judged instead
//! against the runs just before.
//!
//! A run's value is expected to be the median of the previous runs (up to 20); it is a change
//! when it is at least `threshold` robust standard deviations away (1.4826 × the median absolute
//! deviation of those runs, but never less than 1% of the expected value, so that a metric that
//! never moved does not make every wobble infinitely surprising) *and* differs from the expected
//! value by at least `min_relative` of it (of 1 when the expected value is 0). Consecutive changed
//! runs are one change, reported at its first run.

use serde::Serialize;

/// How runs are judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Earlier runs the expected value comes from.
    pub history: usize,
    /// Earlier runs needed before a run is judged.
    pub min_history: usize,
    /// Robust standard deviations from the expected value that make a change.
    pub threshold: f64,
    /// The smallest relative difference that is a change.
    pub min_relative: f64,
}

impl Default for Options {
    fn default() -> Self {
        Self { history: 20, min_history: 5, threshold: 4.0, min_relative: 0.1 }
    }
}

/// A changed run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Change {
    /// The run's position in the series.
    pub index: usize,
    /// The median of the earlier runs.
    pub expected: f64,
    /// The run's value.
    pub observed: f64,
    /// How many robust standard deviations from the expected value.
    pub z: f64,
    /// The difference relative to the expected value (of 1 when it is 0): −0.5 is a halving.
    pub relative: f64,
}

/// Judges `value` against `earlier` runs (oldest first); `None` when it is not a change or there
/// are too few earlier runs. Values that are not finite are left out.
pub fn judge(earlier: &[f64], value: f64, options: &Options) -> Option<Change> {
    if !value.is_finite() {
        return None;
    }
    let mut recent: Vec<f64> = earlier.iter().rev().filter(|v| v.is_finite()).take(options.history).copied().collect();
    if recent.len() < options.min_history {
        return None;
    }
    let expected = crate::median(&mut recent)?;
    let mut deviations: Vec<f64> = recent.iter().map(|v| (v - expected).abs()).collect();
    let mad = crate::median(&mut deviations).unwrap_or(0.0);
    let spread = (1.4826 * mad).max(0.01 * expected.abs()).max(1e-9);
    let z = (value - expected) / spread;
    let relative = (value - expected) / if expected == 0.0 { 1.0 } else { expected.abs() };
    (z.abs() >= options.threshold && relative.abs() >= options.min_relative).then_some(Change {
        index: earlier.len(),
        expected,
        observed: value,
        z,
        relative,
    })
}

/// The changes in a series of runs (oldest first): the first run of each run of changed runs.
pub fn changes(values: &[f64], options: &Options) -> Vec<Change> {
    let mut out = Vec::new();
    let mut previous_changed = false;
    for (i, &v) in values.iter().enumerate() {
        let change = judge(&values[..i], v, options);
        if let Some(c) = change
            && !previous_changed
        {
            out.push(c);
        }
        previous_changed = change.is_some();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_count_that_halves_is_one_change_at_its_first_run() {
        let mut values: Vec<f64> = (0..12).map(|i| 1000.0 + f64::from(i % 3)).collect();
        values.extend([500.0, 501.0, 499.0, 500.0]);
        let found = changes(&values, &Options::default());
        assert_eq!(found.len(), 1, "{found:?}");
        let c = found[0];
        assert_eq!((c.index, c.observed), (12, 500.0));
        assert!((c.expected - 1001.0).abs() < 1.5 && (c.relative + 0.5).abs() < 0.01, "{c:?}");
    }

    #[test]
    fn noise_small_changes_and_short_histories_are_not_changes() {
        // Noisy but stable: ±20% swings are its normal.
        let noisy: Vec<f64> = (0..40).map(|i| 100.0 + 20.0 * ((i as f64) * 1.7).sin()).collect();
        assert!(changes(&noisy, &Options::default()).is_empty());
        // Steady, then 5% more: over four robust deviations, under the 10% that matters.
        let mut steady = vec![1000.0; 10];
        steady.push(1050.0);
        assert!(changes(&steady, &Options::default()).is_empty());
        assert!(judge(&[1.0, 1.0], 100.0, &Options::default()).is_none(), "two runs are too few");
        // Nulls appear where there were none.
        let mut nulls = vec![0.0; 8];
        nulls.push(250.0);
        assert_eq!(changes(&nulls, &Options::default()).len(), 1);
        assert!(judge(&[1.0; 8], f64::NAN, &Options::default()).is_none());
    }
}
