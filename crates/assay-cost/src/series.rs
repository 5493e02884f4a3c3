//! Daily cost series from the billing store, at the finest grain the detectors and forecasts
//! use: service × region × account × cost center (a *leaf*). Days without charges are zero.
//!
//! A charge whose period spans several days (a monthly fee, a commitment's amortisation over a
//! month) is spread evenly over the days it covers, so it does not appear as a spike on its
//! first day.

use std::collections::HashMap;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{Float64Type, Int64Type};
use serde::Serialize;

use assay_estate::budget::Scope;

use crate::store::Store;
use crate::validate::civil_from_days;
use crate::{Error, Result};

/// The tag whose value is a row's cost center.
pub const COST_CENTER_TAG: &str = "cost-center";

/// The longest charge period spread over days; longer ones (a yearly upfront fee) are too.
const MAX_SPREAD_DAYS: i64 = 400;

/// One finest-grain series: a service in a region of an account, for one cost center.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Leaf {
    /// FOCUS ServiceName.
    pub service: String,
    /// FOCUS RegionId.
    pub region: String,
    /// FOCUS BillingAccountId.
    pub account: String,
    /// The `cost-center` tag; `None` for untagged spend.
    pub cost_center: Option<String>,
}

/// A dimension that cost anomalies are monitored along.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dimension {
    /// ServiceName.
    Service,
    /// RegionId.
    Region,
    /// BillingAccountId.
    Account,
    /// The `cost-center` tag.
    CostCenter,
}

impl Dimension {
    /// Every dimension, in report order.
    pub const ALL: [Dimension; 4] = [Dimension::Service, Dimension::Region, Dimension::Account, Dimension::CostCenter];

    /// The leaf's value along this dimension (`(untagged)` for spend without a cost center).
    pub fn value_of<'a>(&self, leaf: &'a Leaf) -> &'a str {
        match self {
            Self::Service => &leaf.service,
            Self::Region => &leaf.region,
            Self::Account => &leaf.account,
            Self::CostCenter => leaf.cost_center.as_deref().unwrap_or("(untagged)"),
        }
    }

    /// The name used in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Service => "service",
            Self::Region => "region",
            Self::Account => "account",
            Self::CostCenter => "cost-center",
        }
    }
}

/// Daily cost per leaf over a range of days.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Daily {
    /// The first day, as days since 1970-01-01.
    pub first_day: i64,
    /// Number of days.
    pub days: usize,
    /// The leaves, sorted.
    pub leaves: Vec<Leaf>,
    /// `values[leaf][day]`.
    pub values: Vec<Vec<f64>>,
}

impl Daily {
    /// The total over all leaves, per day.
    pub fn total(&self) -> Vec<f64> {
        self.sum(|_| true)
    }

    /// The sum of the leaves that `keep` accepts, per day.
    pub fn sum(&self, keep: impl Fn(&Leaf) -> bool) -> Vec<f64> {
        let mut out = vec![0.0; self.days];
        for (leaf, values) in self.leaves.iter().zip(&self.values) {
            if keep(leaf) {
                for (o, v) in out.iter_mut().zip(values) {
                    *o += v;
                }
            }
        }
        out
    }

    /// The distinct values of `dimension` among the leaves, sorted.
    pub fn values_of(&self, dimension: Dimension) -> Vec<&str> {
        let mut values: Vec<&str> = self.leaves.iter().map(|l| dimension.value_of(l)).collect();
        values.sort_unstable();
        values.dedup();
        values
    }

    /// The total per day over `days` days from `first_day`, zero where this has no data.
    pub fn total_over(&self, first_day: i64, days: usize) -> Vec<f64> {
        let mut out = vec![0.0; days];
        for (i, v) in self.total().into_iter().enumerate() {
            if let Some(slot) =
                usize::try_from(self.first_day - first_day + i as i64).ok().and_then(|at| out.get_mut(at))
            {
                *slot = v;
            }
        }
        out
    }

    /// A day index as `YYYY-MM-DD`.
    pub fn date(&self, index: usize) -> String {
        format_day(self.first_day + index as i64)
    }

    /// The last day with data, as days since 1970-01-01.
    pub fn last_day(&self) -> i64 {
        self.first_day + self.days as i64 - 1
    }
}

/// A day (`YYYY-MM-DD`, or a date-time, whose day counts) as days since 1970-01-01.
pub fn parse_day(text: &str) -> Result<i64> {
    let micros = crate::validate::parse_datetime(text).map_err(|e| Error::Invalid(format!("{text:?}: {e}")))?;
    Ok(micros.div_euclid(86_400_000_000))
}

/// Days since 1970-01-01 as `YYYY-MM-DD`.
pub fn format_day(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

fn list(column: &str, values: &[String]) -> String {
    format!("\"{column}\" IN ({})", values.iter().map(|v| quote(v)).collect::<Vec<_>>().join(", "))
}

/// The SQL condition selecting a budget scope's rows (`TRUE` for an empty scope).
pub fn scope_condition(scope: &Scope) -> String {
    let mut parts = Vec::new();
    for (key, value) in &scope.tags {
        parts.push(format!("\"Tags\"[{}] = {}", quote(key), quote(value)));
    }
    if !scope.services.is_empty() {
        parts.push(list("ServiceName", &scope.services));
    }
    if !scope.accounts.is_empty() {
        parts.push(format!(
            "({} OR {})",
            list("BillingAccountId", &scope.accounts),
            list("SubAccountId", &scope.accounts)
        ));
    }
    if !scope.regions.is_empty() {
        parts.push(list("RegionId", &scope.regions));
    }
    if !scope.providers.is_empty() {
        parts.push(list("ProviderName", &scope.providers));
    }
    if parts.is_empty() { "TRUE".into() } else { parts.join(" AND ") }
}

/// Reads daily cost per leaf of `metric` (a cost column) for the rows of `scope`.
pub async fn daily(store: &Store, scope: &Scope, metric: &str) -> Result<Daily> {
    let metric = crate::allocation::parse_metric(metric)?;
    let sql = format!(
        "SELECT to_unixtime(\"ChargePeriodStart\") AS start_s, to_unixtime(\"ChargePeriodEnd\") AS end_s, \
         \"ServiceName\", \"RegionId\", \"BillingAccountId\", \"Tags\"['{COST_CENTER_TAG}'] AS cost_center, \
         CAST(SUM(\"{metric}\") AS DOUBLE) AS cost \
         FROM focus WHERE {} GROUP BY 1, 2, 3, 4, 5, 6",
        scope_condition(scope)
    );
    let batches = crate::query(store, &sql).await?;
    // (leaf, first day, days covered, cost)
    let mut charges: Vec<(Leaf, i64, i64, f64)> = Vec::new();
    for batch in &batches {
        let int = |i: usize| {
            batch.column(i).as_primitive_opt::<Int64Type>().ok_or_else(|| Error::Query(format!("column {i} type")))
        };
        let (start, end) = (int(0)?, int(1)?);
        let texts: Vec<_> = (2..6)
            .map(|i| {
                let column =
                    datafusion::arrow::compute::cast(batch.column(i), &datafusion::arrow::datatypes::DataType::Utf8)
                        .map_err(|e| Error::Query(e.to_string()))?;
                Ok(column)
            })
            .collect::<Result<_>>()?;
        let texts: Vec<_> = texts.iter().map(|c| c.as_string::<i32>()).collect();
        let cost =
            batch.column(6).as_primitive_opt::<Float64Type>().ok_or_else(|| Error::Query("cost column type".into()))?;
        for row in 0..batch.num_rows() {
            if start.is_null(row) || cost.is_null(row) {
                continue;
            }
            let text = |c: usize| if texts[c].is_null(row) { None } else { Some(texts[c].value(row).to_string()) };
            let leaf = Leaf {
                service: text(0).unwrap_or_else(|| "(none)".into()),
                region: text(1).unwrap_or_else(|| "(none)".into()),
                account: text(2).unwrap_or_else(|| "(none)".into()),
                cost_center: text(3),
            };
            let first = start.value(row).div_euclid(86_400);
            let end_s = if end.is_null(row) { start.value(row) + 86_400 } else { end.value(row) };
            // The end is exclusive: a charge for one day ends at the next midnight.
            let last = (end_s - 1).div_euclid(86_400).max(first);
            let covered = (last - first + 1).min(MAX_SPREAD_DAYS);
            charges.push((leaf, first, covered, cost.value(row)));
        }
    }
    Ok(spread(charges))
}

/// Spreads charges over the days they cover, into zero-filled daily series per leaf.
fn spread(charges: Vec<(Leaf, i64, i64, f64)>) -> Daily {
    let Some(first_day) = charges.iter().map(|c| c.1).min() else { return Daily::default() };
    let last_day = charges.iter().map(|c| c.1 + c.2 - 1).max().unwrap_or(first_day);
    let days = usize::try_from(last_day - first_day + 1).unwrap_or(0);
    let mut index: HashMap<Leaf, usize> = HashMap::new();
    let mut leaves: Vec<Leaf> = Vec::new();
    for (leaf, ..) in &charges {
        if !index.contains_key(leaf) {
            index.insert(leaf.clone(), leaves.len());
            leaves.push(leaf.clone());
        }
    }
    let mut order: Vec<usize> = (0..leaves.len()).collect();
    order.sort_by(|&a, &b| leaves[a].cmp(&leaves[b]));
    let mut rank = vec![0; leaves.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r;
    }
    let mut values = vec![vec![0.0; days]; leaves.len()];
    for (leaf, first, covered, cost) in charges {
        let series = &mut values[rank[index[&leaf]]];
        let share = cost / covered as f64;
        for d in first..first + covered {
            series[usize::try_from(d - first_day).unwrap_or(0)] += share;
        }
    }
    let leaves = order.into_iter().map(|i| leaves[i].clone()).collect();
    Daily { first_day, days, leaves, values }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(service: &str) -> Leaf {
        Leaf { service: service.into(), region: "r".into(), account: "a".into(), cost_center: None }
    }

    #[test]
    fn charges_are_spread_over_their_days_and_gaps_are_zero() {
        let daily = spread(vec![(leaf("b"), 10, 1, 5.0), (leaf("a"), 12, 4, 8.0), (leaf("b"), 14, 1, 1.0)]);
        assert_eq!(daily.first_day, 10);
        assert_eq!(daily.days, 6);
        assert_eq!(daily.leaves, vec![leaf("a"), leaf("b")]);
        assert_eq!(daily.values[0], vec![0.0, 0.0, 2.0, 2.0, 2.0, 2.0]);
        assert_eq!(daily.values[1], vec![5.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
        assert_eq!(daily.total().iter().sum::<f64>(), 14.0);
        assert_eq!(daily.total_over(12, 3), vec![2.0, 2.0, 3.0]);
        assert_eq!(daily.total_over(8, 3), vec![0.0, 0.0, 5.0]);
    }

    #[test]
    fn scope_becomes_a_quoted_condition() {
        let scope = Scope {
            tags: [("cost-center".to_string(), "CC'1".to_string())].into(),
            services: vec!["Amazon SageMaker".into()],
            accounts: vec!["111".into()],
            ..Scope::default()
        };
        assert_eq!(
            scope_condition(&scope),
            "\"Tags\"['cost-center'] = 'CC''1' AND \"ServiceName\" IN ('Amazon SageMaker') AND \
             (\"BillingAccountId\" IN ('111') OR \"SubAccountId\" IN ('111'))"
        );
        assert_eq!(scope_condition(&Scope::default()), "TRUE");
    }
}
