//! Anomaly detection for any time series (sans-IO): telemetry, cost, data-quality metrics.
//!
//! - [`telemetry`] scores a series against its own seasonal past, online or in batch.
//! - [`online`] scores each row of a stream from the rows before it, on any series.
//! - [`runs`] judges a metric measured once per run against the runs before it.
//! - [`nab`] scores detections against labelled windows with the Numenta Anomaly Benchmark's
//!   rules, so that a detector can be measured on real, hand-labelled incidents.
//!
//! Detectors advise: they say how surprising a point is, what was expected and why; people
//! decide what to do about it.

pub mod nab;
pub mod online;
pub mod runs;
pub mod telemetry;

/// The median of `values` (sorted in place), `None` when empty.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len().is_multiple_of(2) { (values[mid - 1] + values[mid]) / 2.0 } else { values[mid] })
}
