//! Forecasts of daily cost (sans-IO), with augurs: MSTL splits off the weekly season and an
//! automatically chosen ETS model (additive or multiplicative error, with or without a possibly
//! damped trend) forecasts what is left. Short series fall back to ETS alone.
//!
//! [`backtest`] holds back the last days, forecasts them a week at a time from the days before
//! (rolling origin), and scores the forecasts against a seasonal-naive forecast ("same as last
//! week") of the same days: MASE below 1 means the model beats it. Hyndman and Koehler's MASE
//! (scaled by the in-sample error of one-week-back) is reported beside it for both.

use augurs::ets::AutoETS;
use augurs::ets::trend::AutoETSTrendModel;
use augurs::mstl::MSTLModel;
use augurs::{Fit, Predict};
use serde::Serialize;

use crate::{Error, Result};

/// The season of daily cost: a week.
pub const WEEK: usize = 7;

/// Points needed for a forecast at all.
pub const MIN_HISTORY: usize = 8;

/// A forecast of the next days.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Forecast {
    /// The model used.
    pub model: String,
    /// Expected value per day.
    pub point: Vec<f64>,
    /// 80% prediction interval per day.
    pub lower80: Vec<f64>,
    /// Upper bound of the 80% interval.
    pub upper80: Vec<f64>,
    /// 95% prediction interval per day.
    pub lower95: Vec<f64>,
    /// Upper bound of the 95% interval.
    pub upper95: Vec<f64>,
}

impl Forecast {
    /// The forecast's total over its days, with the totals of its 80% and 95% intervals (the
    /// daily bounds added up, as budgets do).
    pub fn totals(&self) -> ForecastTotal {
        let sum = |v: &[f64]| v.iter().sum::<f64>();
        ForecastTotal {
            total: sum(&self.point),
            total80: (sum(&self.lower80), sum(&self.upper80)),
            total95: (sum(&self.lower95), sum(&self.upper95)),
        }
    }
}

/// A forecast's total over its days.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ForecastTotal {
    /// Sum of the expected values.
    pub total: f64,
    /// Sum of the 80% interval's bounds.
    pub total80: (f64, f64),
    /// Sum of the 95% interval's bounds.
    pub total95: (f64, f64),
}

fn model_error(e: impl std::fmt::Display) -> Error {
    Error::Query(format!("forecast: {e}"))
}

/// Forecasts `horizon` days after `history` (daily values, oldest first). Costs are never
/// negative, so neither are forecasts or their lower bounds.
pub fn forecast(history: &[f64], horizon: usize) -> Result<Forecast> {
    if history.len() < MIN_HISTORY {
        return Err(Error::Query(format!(
            "forecast: {} days of history; at least {MIN_HISTORY} are needed",
            history.len()
        )));
    }
    if history.iter().any(|v| !v.is_finite()) {
        return Err(Error::Query("forecast: the history has missing values".into()));
    }
    // A constant series (a flat fee, or nothing at all) forecasts itself; ETS cannot fit it.
    if history.iter().all(|v| (v - history[0]).abs() < 1e-9) {
        let flat = vec![history[0]; horizon];
        return Ok(Forecast {
            model: "constant".into(),
            point: flat.clone(),
            lower80: flat.clone(),
            upper80: flat.clone(),
            lower95: flat.clone(),
            upper95: flat,
        });
    }
    // Cost is never negative and its weekly swing grows with its level: model ln(1 + y), in
    // which a multiplicative season is additive, and transform back.
    let logged: Vec<f64> = history.iter().map(|v| v.max(0.0).ln_1p()).collect();
    let (model, p80, p95) = if history.len() >= 3 * WEEK {
        let mstl = MSTLModel::new(vec![WEEK], AutoETSTrendModel::from(AutoETS::non_seasonal()));
        let fitted = mstl.fit(&logged).map_err(model_error)?;
        (
            "MSTL(7) + AutoETS on ln(1+y)",
            fitted.predict(horizon, 0.8).map_err(model_error)?,
            fitted.predict(horizon, 0.95).map_err(model_error)?,
        )
    } else {
        let fitted = AutoETS::non_seasonal().fit(&logged).map_err(model_error)?;
        (
            "AutoETS on ln(1+y)",
            fitted.predict(horizon, 0.8).map_err(model_error)?,
            fitted.predict(horizon, 0.95).map_err(model_error)?,
        )
    };
    let bounds = |f: &augurs::Forecast| {
        f.intervals
            .as_ref()
            .map(|i| (i.lower.clone(), i.upper.clone()))
            .unwrap_or_else(|| (f.point.clone(), f.point.clone()))
    };
    // Back from ln(1 + y); a bound that is not finite is no bound.
    let back =
        |v: Vec<f64>| v.into_iter().map(|x| if x.is_finite() { x.exp_m1().max(0.0) } else { 0.0 }).collect::<Vec<_>>();
    let (lower80, upper80) = bounds(&p80);
    let (lower95, upper95) = bounds(&p95);
    Ok(Forecast {
        model: model.into(),
        point: back(p80.point),
        lower80: back(lower80),
        upper80: back(upper80),
        lower95: back(lower95),
        upper95: back(upper95),
    })
}

/// The accuracy of forecasts of held-back days.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Backtest {
    /// Days held back.
    pub holdout: usize,
    /// Days forecast from each origin.
    pub horizon: usize,
    /// Origins (folds).
    pub folds: usize,
    /// The model of the last fold.
    pub model: String,
    /// Mean absolute error of the model.
    pub mae: f64,
    /// Mean absolute error of the seasonal-naive forecast (the last week repeated).
    pub naive_mae: f64,
    /// MASE against the seasonal-naive forecast: `mae / naive_mae`, both over the same
    /// held-back days. Below 1, the model beats "same as last week".
    pub mase: f64,
    /// MASE as Hyndman and Koehler define it: `mae / scale`.
    pub mase_in_sample: f64,
    /// The seasonal-naive forecast's `naive_mae / scale`.
    pub naive_mase_in_sample: f64,
    /// The scale: mean absolute error of one-week-back over the days before the first origin.
    pub scale: f64,
    /// Share of held-back days inside the 80% interval.
    pub coverage80: f64,
    /// Share of held-back days inside the 95% interval.
    pub coverage95: f64,
}

/// Rolling-origin evaluation: the last `holdout` days are split into folds of `horizon` days;
/// each fold is forecast from every day before it, as the forecast would have been made then.
/// Errors of all folds are pooled and scaled by the in-sample error of one-week-back over the
/// days before the first fold.
pub fn backtest(series: &[f64], holdout: usize, horizon: usize) -> Result<Backtest> {
    let horizon = horizon.clamp(1, holdout.max(1));
    if holdout == 0 || series.len() < holdout + 2 * WEEK {
        return Err(Error::Query(format!(
            "backtest: {} days of data; holding back {holdout} needs at least {}",
            series.len(),
            holdout + 2 * WEEK
        )));
    }
    let first_origin = series.len() - holdout;
    let train = &series[..first_origin];
    let scale =
        (WEEK..train.len()).map(|t| (train[t] - train[t - WEEK]).abs()).sum::<f64>() / (train.len() - WEEK) as f64;
    let scale = if scale > 0.0 { scale } else { f64::EPSILON };
    let (mut model_error, mut naive_error, mut in80, mut in95, mut days) = (0.0, 0.0, 0usize, 0usize, 0usize);
    let mut model = String::new();
    let mut folds = 0;
    let mut origin = first_origin;
    while origin < series.len() {
        let h = horizon.min(series.len() - origin);
        let history = &series[..origin];
        let fc = forecast(history, h)?;
        for i in 0..h {
            let y = series[origin + i];
            model_error += (fc.point[i] - y).abs();
            naive_error += (history[origin - WEEK + i % WEEK] - y).abs();
            in80 += usize::from(y >= fc.lower80[i] - 1e-9 && y <= fc.upper80[i] + 1e-9);
            in95 += usize::from(y >= fc.lower95[i] - 1e-9 && y <= fc.upper95[i] + 1e-9);
        }
        days += h;
        folds += 1;
        model = fc.model;
        origin += h;
    }
    let n = days as f64;
    Ok(Backtest {
        holdout,
        horizon,
        folds,
        model,
        mae: model_error / n,
        naive_mae: naive_error / n,
        mase: if naive_error > 0.0 { model_error / naive_error } else { f64::INFINITY },
        mase_in_sample: model_error / n / scale,
        naive_mase_in_sample: naive_error / n / scale,
        scale,
        coverage80: in80 as f64 / n,
        coverage95: in95 as f64 / n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Weekly-seasonal daily cost with growth and deterministic noise.
    fn series(days: usize, growth: f64) -> Vec<f64> {
        (0..days)
            .map(|d| {
                let weekly = if d % 7 >= 5 { 0.6 } else { 1.0 };
                let noise = ((d * 7919) % 23) as f64 / 23.0 - 0.5;
                1000.0 * (1.0 + growth).powi(d as i32) * weekly * (1.0 + 0.05 * noise)
            })
            .collect()
    }

    #[test]
    fn forecast_follows_season_and_growth_within_its_intervals() {
        let history = series(98, 0.004);
        let fc = forecast(&history, 14).unwrap_or_else(|e| panic!("{e}"));
        let truth = &series(112, 0.004)[98..];
        for (i, truth) in truth.iter().enumerate() {
            assert!(fc.lower95[i] <= fc.lower80[i] && fc.lower80[i] <= fc.point[i]);
            assert!(fc.point[i] <= fc.upper80[i] && fc.upper80[i] <= fc.upper95[i]);
            let error = (fc.point[i] - truth).abs() / truth;
            assert!(error < 0.12, "day {i}: forecast {} truth {truth}", fc.point[i]);
        }
        // Weekends are forecast lower than weekdays.
        assert!(fc.point[103 - 98] < 0.8 * fc.point[100 - 98]);
    }

    #[test]
    fn backtest_beats_seasonal_naive_on_a_growing_series() {
        let b = backtest(&series(120, 0.004), 28, 7).unwrap_or_else(|e| panic!("{e}"));
        assert!(b.mase < 1.0, "{b:?}");
        assert!(b.mase_in_sample < b.naive_mase_in_sample, "{b:?}");
    }

    #[test]
    fn short_and_flat_histories() {
        assert!(forecast(&[1.0, 2.0], 3).is_err());
        let flat = forecast(&[5.0; 10], 3).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(flat.point, vec![5.0; 3]);
        assert!(backtest(&series(20, 0.0), 14, 7).is_err());
    }
}
