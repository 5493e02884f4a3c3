//! AI unit economics: what a model costs per million tokens it served, and what a training run
//! cost. Billing rows are allocated by tag (the model's name, the training job's name) and
//! prorated by how much of each row's charge period falls in the period asked (a daily row half
//! inside a run counts half); tokens come from vLLM's counters in Prometheus
//! (`vllm:prompt_tokens_total`, `vllm:generation_tokens_total`, by `model_name`); training runs
//! from the lineage graph (runs that wrote a dataset of type `MODEL`).

use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{Float64Type, Int64Type};
use serde::Serialize;

use crate::{Error, Result, Store};

/// One billing row's cost and charge period (seconds since the epoch), with its tag's value.
#[derive(Debug, Clone, PartialEq)]
pub struct Charge {
    /// The tag's value.
    pub key: String,
    /// Charge period start.
    pub start: i64,
    /// Charge period end.
    pub end: i64,
    /// EffectiveCost.
    pub cost: f64,
}

/// The billing rows carrying tag `tag` whose charge periods overlap `from..to` (seconds).
pub async fn charges(store: &Store, tag: &str, from: i64, to: i64) -> Result<Vec<Charge>> {
    let tag = tag.replace('\'', "''");
    let sql = format!(
        "SELECT \"Tags\"['{tag}'] AS k, CAST(to_unixtime(\"ChargePeriodStart\") AS BIGINT) AS s,
                CAST(to_unixtime(\"ChargePeriodEnd\") AS BIGINT) AS e, CAST(\"EffectiveCost\" AS DOUBLE) AS c
         FROM focus
         WHERE \"Tags\"['{tag}'] IS NOT NULL
           AND to_unixtime(\"ChargePeriodStart\") < {to} AND to_unixtime(\"ChargePeriodEnd\") > {from}"
    );
    let mut out = Vec::new();
    for batch in crate::query(store, &sql).await? {
        let key = datafusion::arrow::compute::cast(batch.column(0), &datafusion::arrow::datatypes::DataType::Utf8)
            .map_err(|e| Error::Query(format!("reading tag values: {e}")))?;
        let key = key.as_string::<i32>();
        let start = batch.column(1).as_primitive_opt::<Int64Type>().ok_or_else(|| Error::Query("start type".into()))?;
        let end = batch.column(2).as_primitive_opt::<Int64Type>().ok_or_else(|| Error::Query("end type".into()))?;
        let cost = batch.column(3).as_primitive_opt::<Float64Type>().ok_or_else(|| Error::Query("cost type".into()))?;
        for row in 0..batch.num_rows() {
            if key.is_null(row) || start.is_null(row) || end.is_null(row) || cost.is_null(row) {
                continue;
            }
            out.push(Charge {
                key: key.value(row).to_string(),
                start: start.value(row),
                end: end.value(row),
                cost: cost.value(row),
            });
        }
    }
    Ok(out)
}

/// The cost of the charges with `key` that falls in `from..to`: each row's cost times the share
/// of its charge period inside (a row with an empty period counts whole when its start is).
pub fn prorated(charges: &[Charge], key: &str, from: i64, to: i64) -> f64 {
    charges
        .iter()
        .filter(|c| c.key == key)
        .map(|c| {
            if c.end <= c.start {
                return if (from..to).contains(&c.start) { c.cost } else { 0.0 };
            }
            let inside = (c.end.min(to) - c.start.max(from)).max(0) as f64;
            c.cost * inside / (c.end - c.start) as f64
        })
        .sum()
}

/// A model's cost and tokens over a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelUnit {
    /// The model (the tag's value, and vLLM's `model_name`).
    pub model: String,
    /// Allocated cost in the period.
    pub cost: f64,
    /// Where the cost comes from: `billing` (rows by tag), or `estimate` (the manifests'
    /// workloads labelled with the model, priced from the catalog, for a model with no billing
    /// rows).
    pub basis: &'static str,
    /// Prompt tokens processed.
    pub prompt_tokens: f64,
    /// Tokens generated.
    pub generation_tokens: f64,
    /// Cost per million tokens (prompt and generated); `None` without tokens.
    pub cost_per_million_tokens: Option<f64>,
}

/// Per model: cost in `from..to` from `charges`, else from `estimates` (model → monthly cost of
/// its workloads in the manifests, prorated to the period's length); tokens from `tokens` (model
/// → (prompt, generation)); every model that has any of them.
pub fn per_model(
    charges: &[Charge],
    estimates: &BTreeMap<String, f64>,
    tokens: &BTreeMap<String, (f64, f64)>,
    from: i64,
    to: i64,
) -> Vec<ModelUnit> {
    let mut models: Vec<&str> = charges
        .iter()
        .map(|c| c.key.as_str())
        .chain(tokens.keys().map(String::as_str))
        .chain(estimates.keys().map(String::as_str))
        .collect();
    models.sort_unstable();
    models.dedup();
    models
        .into_iter()
        .map(|m| {
            let billed = charges.iter().any(|c| c.key == m);
            let (cost, basis) = match estimates.get(m) {
                Some(monthly) if !billed => {
                    (monthly * (to - from) as f64 / 3600.0 / crate::pricing::HOURS_PER_MONTH, "estimate")
                }
                _ => (prorated(charges, m, from, to), "billing"),
            };
            let (prompt, generation) = tokens.get(m).copied().unwrap_or((0.0, 0.0));
            let total = prompt + generation;
            ModelUnit {
                model: m.to_string(),
                cost,
                basis,
                prompt_tokens: prompt,
                generation_tokens: generation,
                cost_per_million_tokens: (total > 0.0).then(|| cost / (total / 1e6)),
            }
        })
        .collect()
}

/// A training run's cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunUnit {
    /// The run.
    pub run_id: String,
    /// Its job, `job:NS:NAME`.
    pub job: String,
    /// The models it wrote.
    pub models: Vec<String>,
    /// Start and end (RFC 3339).
    pub started: String,
    /// End.
    pub ended: String,
    /// Hours it ran.
    pub hours: f64,
    /// Cost of the billing rows tagged with its job's name, prorated to the run's time.
    pub cost: f64,
}

/// Tokens per model over the `window` seconds up to `end`, from vLLM's counters (one query per
/// counter).
pub fn tokens(
    client: &crate::prometheus::Client,
    metrics: &assay_estate::settings::UsageMetrics,
    model_label: &str,
    end: i64,
    window: u64,
) -> std::result::Result<BTreeMap<String, (f64, f64)>, crate::prometheus::Error> {
    let mut out: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for (i, metric) in [&metrics.prompt_tokens, &metrics.generation_tokens].into_iter().enumerate() {
        let query = format!("sum by ({model_label}) (increase({metric}[{window}s]))");
        for series in client.query_range(&query, end, end, 60)? {
            let Some(model) = series.labels.get(model_label) else { continue };
            let Some((_, v)) = series.samples.last() else { continue };
            let entry = out.entry(model.clone()).or_default();
            if i == 0 { entry.0 += v } else { entry.1 += v }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_prorated_to_the_period_and_units_divide_by_tokens() {
        let day = 86_400;
        let rows = vec![
            Charge { key: "llama".into(), start: 0, end: day, cost: 100.0 },
            Charge { key: "llama".into(), start: day, end: 2 * day, cost: 50.0 },
            Charge { key: "mistral".into(), start: 0, end: day, cost: 10.0 },
        ];
        assert_eq!(prorated(&rows, "llama", day / 2, 2 * day), 100.0);
        assert_eq!(prorated(&rows, "llama", 0, day + day / 4), 112.5);
        let tokens = BTreeMap::from([("llama".to_string(), (1.5e6, 0.5e6)), ("phi".to_string(), (1e6, 0.0))]);
        // phi has no billing rows: its workloads' estimate, 730 a month, for two days (48 h).
        let estimates = BTreeMap::from([("phi".to_string(), 730.0), ("llama".to_string(), 1e9)]);
        let units = per_model(&rows, &estimates, &tokens, 0, 2 * day);
        assert_eq!(units.len(), 3);
        assert_eq!(units[0].basis, "billing", "billing rows win over an estimate");
        assert_eq!(units[0].model, "llama");
        assert_eq!(units[0].cost_per_million_tokens, Some(75.0));
        assert_eq!(units[1].model, "mistral");
        assert_eq!(units[1].cost_per_million_tokens, None);
        assert_eq!((units[2].cost, units[2].basis, units[2].cost_per_million_tokens), (48.0, "estimate", Some(48.0)));
    }
}
