//! What the cost page and `GET /api/v1/cost` show, from the billing store in the server's data
//! directory (the one `assay cost --data` ingests into), through the same library functions the
//! `assay cost` commands call: the allocation of `assay cost report`, the daily total with the
//! forecast of `assay cost forecast`, the budgets of `assay cost budgets`, the anomalies of
//! `assay cost anomalies`; and the manifests' estimate per cost center from the verdict.

use std::path::Path;
use std::sync::Arc;

use assay_cost::{Store, allocation, budgets, cost_anomaly, forecast, series};
use assay_estate::Estate;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::active::Active;

/// `?by=&period=&metric=&days=`.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
pub(crate) struct CostQuery {
    /// Dimensions to allocate by, as `assay cost report --by` takes them (`ServiceName` unless
    /// set; `tag:cost-center` for a tag).
    #[serde(default, deserialize_with = "crate::posture::empty_as_none", skip_serializing_if = "Option::is_none")]
    pub(crate) by: Option<String>,
    /// A billing period, `YYYY-MM` (all unless set).
    #[serde(default, deserialize_with = "crate::posture::empty_as_none", skip_serializing_if = "Option::is_none")]
    pub(crate) period: Option<String>,
    /// The cost column (`EffectiveCost` unless set).
    #[serde(default, deserialize_with = "crate::posture::empty_as_none", skip_serializing_if = "Option::is_none")]
    pub(crate) metric: Option<String>,
    /// Days to forecast (30 unless set, at most 366).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) days: Option<usize>,
}

/// Why the cost cannot be shown.
#[derive(Debug)]
pub(crate) enum Unavailable {
    /// The server has no data directory.
    NoData,
    /// The request is wrong (a dimension, a metric, a period); the message says what.
    Invalid(String),
    /// The store cannot be read.
    Broken(String),
}

/// The cost document. `Ok` with `billing: null` when the store has no billing data yet.
///
/// Its three parts are each kept with the active revision (whose budgets it shows) until the
/// store changes: the daily series with its forecast and anomalies (per metric and horizon), the
/// budgets, the allocation (per dimensions, period and metric). Choosing another dimension on
/// the page then runs one query, not all of them.
pub(crate) async fn document(data: Option<&Path>, active: &Active, q: &CostQuery) -> Result<Arc<Value>, Unavailable> {
    let data = data.ok_or(Unavailable::NoData)?;
    let store = Store::new(data);
    let by = q.by.clone().unwrap_or_else(|| "ServiceName".into());
    let dims = allocation::parse_dimensions(&by).map_err(|e| Unavailable::Invalid(format!("by: {e}")))?;
    let metric = allocation::parse_metric(q.metric.as_deref().unwrap_or("EffectiveCost"))
        .map_err(|e| Unavailable::Invalid(format!("metric: {e}")))?;
    if let Some(p) = &q.period
        && !(p.len() == 7
            && p.as_bytes()[4] == b'-'
            && p[..4].parse::<u16>().is_ok()
            && p[5..].parse::<u8>().is_ok_and(|m| (1..=12).contains(&m)))
    {
        return Err(Unavailable::Invalid(format!("period: {p:?} is not YYYY-MM")));
    }
    let horizon = q.days.unwrap_or(30).clamp(1, 366);
    let version = store.version();
    let daily =
        kept(active, format!("cost-daily\t{version}\t{metric}\t{horizon}"), || daily_part(&store, metric, horizon))
            .await?;
    if daily.is_null() {
        return Ok(Arc::new(json!({"query": q, "billing": null})));
    }
    let report = kept(active, format!("cost-allocation\t{version}\t{by}\t{:?}\t{metric}", q.period), || async {
        let report = allocation::allocate(&store, &dims, q.period.as_deref(), metric).await.map_err(broken)?;
        Ok(json!(report))
    })
    .await?;
    let budgets = kept(active, format!("cost-budgets\t{version}"), || budgets_part(&store, &active.estate)).await?;
    Ok(Arc::new(json!({
        "query": q,
        "billing": {
            "currency": report["currency"],
            "first_day": daily["days"][0],
            "last_day": daily["days"].as_array().and_then(|d| d.last()),
        },
        "allocation": *report,
        "daily": {"metric": metric, "days": daily["days"], "total": daily["total"]},
        "forecast": daily["forecast"],
        "budgets": budgets["budgets"],
        "budgets_skipped": budgets["budgets_skipped"],
        "anomalies": daily["anomalies"],
    })))
}

fn broken(e: assay_cost::Error) -> Unavailable {
    Unavailable::Broken(e.to_string())
}

/// The part kept under `key`, or made and kept.
async fn kept<F: std::future::Future<Output = Result<Value, Unavailable>>>(
    active: &Active,
    key: String,
    make: impl FnOnce() -> F,
) -> Result<Arc<Value>, Unavailable> {
    if let Some(part) = active.views.get(&key) {
        return Ok(part);
    }
    let part = Arc::new(make().await?);
    active.views.put(key, Arc::clone(&part));
    Ok(part)
}

/// The daily total with its forecast and anomalies; `null` when there is no billing data.
async fn daily_part(store: &Store, metric: &'static str, horizon: usize) -> Result<Value, Unavailable> {
    let daily = series::daily(store, &assay_estate::budget::Scope::default(), metric).await.map_err(broken)?;
    if daily.days == 0 {
        return Ok(Value::Null);
    }
    let total = daily.total();
    let forecast = match forecast::forecast(&total, horizon) {
        Ok(f) => json!({
            "days": (1..=horizon).map(|i| series::format_day(daily.last_day() + i as i64)).collect::<Vec<_>>(),
            "totals": f.totals(),
            "forecast": f,
        }),
        Err(e) => json!({"error": e.to_string()}),
    };
    Ok(json!({
        "days": (0..daily.days).map(|i| daily.date(i)).collect::<Vec<_>>(),
        "total": total,
        "forecast": forecast,
        "anomalies": cost_anomaly::detect(&daily, &cost_anomaly::Options::default()),
    }))
}

/// The estate's budgets with billing data in their scope, and those without.
async fn budgets_part(store: &Store, estate: &Estate) -> Result<Value, Unavailable> {
    let billing = budgets::billing(store, &estate.budgets, None).await.map_err(broken)?;
    let (statuses, skipped): (Vec<_>, Vec<_>) =
        estate.budgets.iter().zip(billing.budgets).partition(|(_, b)| b.status.is_ok());
    Ok(json!({
        "budgets": statuses.into_iter().filter_map(|(_, b)| b.status.ok()).collect::<Vec<_>>(),
        "budgets_skipped": skipped.into_iter().map(|(budget, b)| json!({
            "budget": budget.name, "path": budget.path, "line": budget.line,
            "reason": b.status.err().map(|e| e.to_string()),
        })).collect::<Vec<_>>(),
    }))
}
