//! Budget status (sans-IO): spend to date in the current period, the forecast of the period's
//! end with 80% and 95% intervals, the day the budget is predicted to be exceeded, and which
//! alert thresholds are crossed.
//!
//! The interval of the period's total adds up the daily intervals, which assumes the daily
//! errors move together. That overstates the width when they are independent, and is the
//! cautious choice for a budget: it warns early rather than late.

use serde::Serialize;

use assay_estate::budget::{AlertOn, Budget, Period, Scope};
use assay_estate::calendar::{civil_from_days, days_from_civil};

use crate::forecast::{self, Forecast};
use crate::pricing::WorkloadCost;
use crate::series::{self, COST_CENTER_TAG, format_day};
use crate::{Error, Result, Store};

/// The first and last day (inclusive, days since 1970-01-01) of the budget period holding `day`,
/// and the period's name (`2024-04`, `2024-Q2`).
pub fn period_of(period: Period, day: i64) -> (i64, i64, String) {
    let (y, m, _) = civil_from_days(day);
    let (first_month, months, name) = match period {
        Period::Monthly => (m, 1, format!("{y:04}-{m:02}")),
        Period::Quarterly => {
            let q = (m - 1) / 3;
            (q * 3 + 1, 3, format!("{y:04}-Q{}", q + 1))
        }
    };
    let start = days_from_civil(y, first_month, 1);
    let next = first_month + months;
    let end = if next > 12 { days_from_civil(y + 1, next - 12, 1) } else { days_from_civil(y, next, 1) };
    (start, end - 1, name)
}

/// An alert threshold and whether it is crossed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertState {
    /// Actual or forecast spend.
    pub on: AlertOn,
    /// The threshold as a fraction of the amount.
    pub at: f64,
    /// Whether spend (actual to date, or the forecast of the period's end) has reached it.
    pub crossed: bool,
}

/// Where a budget stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetStatus {
    /// The budget's name.
    pub name: String,
    /// Its file.
    pub path: String,
    /// The period, `2024-04` or `2024-Q2`.
    pub period: String,
    /// First day of the period.
    pub period_start: String,
    /// Last day of the period.
    pub period_end: String,
    /// The last day with billing data counted.
    pub as_of: String,
    /// The amount.
    pub amount: f64,
    /// Its currency.
    pub currency: String,
    /// Spend from the period's start to `as_of`.
    pub actual: f64,
    /// Forecast spend for the whole period: actual plus the forecast of the remaining days.
    pub forecast: f64,
    /// 80% interval of the period's spend.
    pub forecast80: (f64, f64),
    /// 95% interval of the period's spend.
    pub forecast95: (f64, f64),
    /// The day spend is predicted to exceed the amount (or did), if within the period.
    pub breach_date: Option<String>,
    /// The earliest day it could, at the upper bound of the 95% interval.
    pub earliest_breach_date: Option<String>,
    /// The forecasting model.
    pub model: String,
    /// Alert thresholds and whether they are crossed.
    pub alerts: Vec<AlertState>,
}

impl BudgetStatus {
    /// Whether the forecast of the period's end exceeds the amount.
    pub fn forecast_exceeds(&self) -> bool {
        self.forecast > self.amount
    }
}

/// The status of `budget` on day `as_of`, from the daily spend of its scope (`daily[i]` is
/// day `first_day + i`; days before `first_day` had no spend).
pub fn status(budget: &Budget, first_day: i64, daily: &[f64], as_of: i64) -> Result<BudgetStatus> {
    let (start, end, period) = period_of(budget.period, as_of);
    let day_value = |d: i64| usize::try_from(d - first_day).ok().and_then(|i| daily.get(i)).copied().unwrap_or(0.0);
    let mut actual = 0.0;
    let mut crossed_on = None;
    for d in start..=as_of {
        actual += day_value(d);
        if crossed_on.is_none() && actual > budget.amount {
            crossed_on = Some(d);
        }
    }
    let remaining = usize::try_from(end - as_of).unwrap_or(0);
    let history_end = usize::try_from(as_of - first_day + 1).unwrap_or(0).min(daily.len());
    let history = &daily[..history_end];
    let fc = if remaining == 0 {
        Forecast {
            model: "none (period complete)".into(),
            point: vec![],
            lower80: vec![],
            upper80: vec![],
            lower95: vec![],
            upper95: vec![],
        }
    } else {
        forecast::forecast(history, remaining)
            .map_err(|e| Error::Query(format!("{}: budget {}: {e}", budget.path, budget.name)))?
    };
    let sum = |v: &[f64]| actual + v.iter().sum::<f64>();
    let first_over = |v: &[f64]| -> Option<i64> {
        if let Some(d) = crossed_on {
            return Some(d);
        }
        let mut running = actual;
        v.iter().enumerate().find_map(|(i, x)| {
            running += x;
            (running > budget.amount).then_some(as_of + 1 + i as i64)
        })
    };
    let total = sum(&fc.point);
    let alerts = budget
        .alerts
        .iter()
        .map(|a| {
            let spend = match a.on {
                AlertOn::Actual => actual,
                AlertOn::Forecast => total,
            };
            AlertState { on: a.on, at: a.at, crossed: spend >= a.at * budget.amount }
        })
        .collect();
    Ok(BudgetStatus {
        name: budget.name.clone(),
        path: budget.path.clone(),
        period,
        period_start: format_day(start),
        period_end: format_day(end),
        as_of: format_day(as_of),
        amount: budget.amount,
        currency: budget.currency.clone(),
        actual,
        forecast: total,
        forecast80: (sum(&fc.lower80), sum(&fc.upper80)),
        forecast95: (sum(&fc.lower95), sum(&fc.upper95)),
        breach_date: first_over(&fc.point).map(format_day),
        earliest_breach_date: first_over(&fc.upper95).map(format_day),
        model: fc.model,
        alerts,
    })
}

/// Why a budget has no status from billing data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unevaluated {
    /// The budget and the billing data are in different currencies.
    #[error("budget {budget} is in {currency} but the billing data is in {billing}")]
    Currency {
        /// The budget.
        budget: String,
        /// Its currency.
        currency: String,
        /// The billing data's.
        billing: String,
    },
    /// The store holds no billing data.
    #[error("budget {budget}: no billing data (run `assay cost ingest`)")]
    NoData {
        /// The budget.
        budget: String,
    },
    /// No row of the billing data is in the budget's scope.
    #[error("budget {budget}: no billing data in its scope")]
    NoSpend {
        /// The budget.
        budget: String,
    },
    /// The forecast failed.
    #[error("{0}")]
    Forecast(String),
}

/// A budget's daily spend as every command sees it: from the first day its scope has spend to
/// the last day of the billing data as a whole, zero on days without spend (a scope that
/// stopped spending did spend nothing on the days since).
#[derive(Debug, Clone, PartialEq)]
pub struct Spend {
    /// The first day, as days since 1970-01-01.
    pub first_day: i64,
    /// Spend per day from `first_day`.
    pub daily: Vec<f64>,
}

/// One budget, seen through billing data.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetBilling {
    /// Its daily spend, when its scope has any.
    pub spend: Option<Spend>,
    /// Its status on the billing day, or why there is none.
    pub status: std::result::Result<BudgetStatus, Unevaluated>,
}

/// Budgets seen through billing data: the one reading that `assay check`, `assay cost budgets`
/// and `assay cost forecast --estate` share, so that they report the same numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Billing {
    /// The billing data's currency.
    pub currency: String,
    /// Its first and last day over every scope; `None` when the store is empty.
    pub span: Option<(i64, i64)>,
    /// The day statuses are taken on: `as_of` when given, else the billing data's last day.
    pub as_of: Option<i64>,
    /// One per budget, in order.
    pub budgets: Vec<BudgetBilling>,
}

/// Reads each budget's spend from the store and works out its status on `as_of` (days since
/// 1970-01-01; by default the last day of billing data).
pub async fn billing(store: &Store, budgets: &[Budget], as_of: Option<i64>) -> Result<Billing> {
    let currency = crate::allocation::currency(store).await?;
    let all = series::daily(store, &Scope::default(), METRIC).await?;
    let span = (all.days > 0).then(|| (all.first_day, all.last_day()));
    let day = as_of.or(span.map(|(_, last)| last));
    let mut out = Vec::with_capacity(budgets.len());
    for budget in budgets {
        let (spend, status) = match span {
            None => (None, Err(Unevaluated::NoData { budget: budget.name.clone() })),
            Some((_, last)) => {
                let scoped = series::daily(store, &budget.scope, METRIC).await?;
                let spend = (scoped.days > 0).then(|| Spend {
                    first_day: scoped.first_day,
                    daily: scoped
                        .total_over(scoped.first_day, usize::try_from(last - scoped.first_day + 1).unwrap_or(0)),
                });
                let status = if budget.currency != currency {
                    Err(Unevaluated::Currency {
                        budget: budget.name.clone(),
                        currency: budget.currency.clone(),
                        billing: currency.clone(),
                    })
                } else {
                    match (&spend, day) {
                        (Some(s), Some(day)) => {
                            status(budget, s.first_day, &s.daily, day).map_err(|e| Unevaluated::Forecast(e.to_string()))
                        }
                        _ => Err(Unevaluated::NoSpend { budget: budget.name.clone() }),
                    }
                };
                (spend, status)
            }
        };
        out.push(BudgetBilling { spend, status });
    }
    Ok(Billing { currency, span, as_of: day, budgets: out })
}

/// Budgets count effective cost (after discounts and commitments), as FOCUS defines it.
const METRIC: &str = "EffectiveCost";

/// Whether a workload of the manifests counts toward a budget: its labels carry the scope's
/// tags and it runs in one of the scope's regions. Workloads carry no FOCUS service, account or
/// provider, so a scope that filters on those is a billing-only scope and counts none.
pub fn workload_in_scope(scope: &Scope, workload: &WorkloadCost) -> bool {
    if !(scope.services.is_empty() && scope.accounts.is_empty() && scope.providers.is_empty()) {
        return false;
    }
    scope.tags.iter().all(|(k, v)| {
        workload.labels.get(k) == Some(v) || (k == COST_CENTER_TAG && workload.cost_center.as_ref() == Some(v))
    }) && (scope.regions.is_empty() || workload.region.as_ref().is_some_and(|r| scope.regions.contains(r)))
}

/// A budget's projected spend for its period, with a change to the estate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Projection {
    /// The budget.
    pub budget: String,
    /// Its period.
    pub period: String,
    /// Its amount.
    pub amount: f64,
    /// Spend to date, when billing data was used.
    pub actual: Option<f64>,
    /// Spend for the period before the change: actual plus forecast from billing data, or
    /// without billing data the estimate of the workloads in scope before the change.
    pub forecast: f64,
    /// What the change adds in the rest of the period.
    pub delta: f64,
    /// `forecast + delta`.
    pub projected: f64,
}

impl Projection {
    /// Whether the projection exceeds the amount.
    pub fn exceeded(&self) -> bool {
        self.projected > self.amount
    }

    /// The projection in words.
    pub fn message(&self, currency: &str) -> String {
        let mut text = format!(
            "budget {} ({:.2} {currency} for {}): projected {:.2}",
            self.budget, self.amount, self.period, self.projected
        );
        match self.actual {
            Some(actual) => text.push_str(&format!(
                " = {actual:.2} spent + {:.2} forecast + {:.2} from this change",
                self.forecast - actual,
                self.delta
            )),
            None if self.delta == 0.0 => text.push_str(" for the workloads in its scope"),
            None => text.push_str(&format!(
                " = {:.2} for the workloads in its scope before this change + {:.2} from it",
                self.forecast, self.delta
            )),
        }
        if self.exceeded() {
            text.push_str(&format!(", {:.2} over", self.projected - self.amount));
        }
        text
    }
}

/// Projects a budget's period: `status` from billing data when there is some, `today` (days
/// since 1970-01-01) for the period otherwise; the change is `base` → `head` workloads.
pub fn project(
    budget: &Budget,
    status: Option<&BudgetStatus>,
    head: &[WorkloadCost],
    base: Option<&[WorkloadCost]>,
    today: i64,
) -> Projection {
    let monthly = |ws: &[WorkloadCost]| -> f64 {
        ws.iter().filter(|w| workload_in_scope(&budget.scope, w)).filter_map(|w| w.monthly).sum()
    };
    let head_monthly = monthly(head);
    let base_monthly = base.map(monthly).unwrap_or(head_monthly);
    let change = head_monthly - base_monthly;
    let days_per_month = 365.25 / 12.0;
    match status {
        Some(s) => {
            let remaining_days = (crate::validate::parse_datetime(&s.period_end).ok().unwrap_or(0)
                - crate::validate::parse_datetime(&s.as_of).ok().unwrap_or(0))
                / 86_400_000_000;
            let delta = change * remaining_days.max(0) as f64 / days_per_month;
            Projection {
                budget: budget.name.clone(),
                period: s.period.clone(),
                amount: budget.amount,
                actual: Some(s.actual),
                forecast: s.forecast,
                delta,
                projected: s.forecast + delta,
            }
        }
        None => {
            let (start, end, period) = period_of(budget.period, today);
            let months = (end - start + 1) as f64 / days_per_month;
            Projection {
                budget: budget.name.clone(),
                period,
                amount: budget.amount,
                actual: None,
                forecast: base_monthly * months,
                delta: change * months,
                projected: head_monthly * months,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use assay_estate::budget::Alert;
    use assay_estate::settings::EnforcementAction;

    fn budget(amount: f64, period: Period) -> Budget {
        Budget {
            name: "b".into(),
            path: "budgets/b.yaml".into(),
            line: 1,
            scope: Default::default(),
            amount,
            currency: "USD".into(),
            period,
            alerts: vec![Alert { on: AlertOn::Actual, at: 0.5 }, Alert { on: AlertOn::Forecast, at: 1.0 }],
            enforcement_action: EnforcementAction::Deny,
        }
    }

    #[test]
    fn periods_hold_the_day() {
        let day = days_from_civil(2024, 5, 17);
        assert_eq!(
            period_of(Period::Monthly, day),
            (days_from_civil(2024, 5, 1), days_from_civil(2024, 5, 31), "2024-05".into())
        );
        assert_eq!(
            period_of(Period::Quarterly, days_from_civil(2024, 12, 3)),
            (days_from_civil(2024, 10, 1), days_from_civil(2024, 12, 31), "2024-Q4".into())
        );
    }

    #[test]
    fn steady_spend_forecasts_the_period_and_the_breach_day() {
        // 100 a day from 2024-03-01: on 2024-04-10, 1,000 of April's 2,550 is spent.
        let first = days_from_civil(2024, 3, 1);
        let daily: Vec<f64> = (0..41).map(|d| 100.0 + if d % 7 == 0 { 1.0 } else { 0.0 }).collect();
        let as_of = days_from_civil(2024, 4, 10);
        let s = status(&budget(2_550.0, Period::Monthly), first, &daily, as_of).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (s.period.as_str(), s.period_start.as_str(), s.period_end.as_str()),
            ("2024-04", "2024-04-01", "2024-04-30")
        );
        assert!((s.actual - 1_000.0).abs() < 5.0, "{s:?}");
        assert!((s.forecast - 3_000.0).abs() < 60.0, "{s:?}");
        assert!(s.forecast95.0 <= s.forecast80.0 && s.forecast80.1 <= s.forecast95.1);
        assert_eq!(s.breach_date.as_deref(), Some("2024-04-26"));
        assert!(s.earliest_breach_date <= s.breach_date);
        assert_eq!(s.alerts.iter().map(|a| a.crossed).collect::<Vec<_>>(), vec![false, true]);
        assert!(s.forecast_exceeds());
    }

    #[test]
    fn a_budget_already_exceeded_names_the_day_it_was() {
        let first = days_from_civil(2024, 3, 1);
        let daily = vec![100.0; 41];
        let s = status(&budget(450.0, Period::Monthly), first, &daily, days_from_civil(2024, 4, 10))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.breach_date.as_deref(), Some("2024-04-05"));
    }
}
