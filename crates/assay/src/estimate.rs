//! The cost part of `assay check`: prices the workloads of the head (and base), projects each
//! budget with billing data when there is some, and gives Rego rules `input.cost`.

use std::path::Path;

use anyhow::Result;
use assay_cost::budgets::{self, Projection};
use assay_cost::pricing::{self, WorkloadCost};
use assay_cost::{Store, series};
use assay_estate::{Diagnostic, Estate};
use assay_verdict::Status;
use assay_verdict::cost::{BudgetFinding, CostCenterCost, CostReport, Unpriced};
use serde_json::{Value, json};

/// The cost of a check: the report for the verdict and each head object's `input.cost`.
pub(crate) struct Estimate {
    pub(crate) report: CostReport,
    /// `input.cost` per object of the head's manifests, in order.
    pub(crate) inputs: Vec<Value>,
}

fn today() -> i64 {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    i64::try_from(secs / 86_400).unwrap_or(0)
}

/// Whether the estate asks for cost at all: it has prices or budgets.
pub(crate) fn wanted(estate: &Estate) -> bool {
    !estate.prices.regions.is_empty() || !estate.budgets.is_empty()
}

pub(crate) fn estimate(
    head: &Estate,
    base: Option<&Estate>,
    data: Option<&Path>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Result<Estimate> {
    let _span = tracing::info_span!("cost").entered();
    let currency = head.settings.currency.clone();
    let head_costs = pricing::price_workloads(&head.manifests, &head.settings, &head.prices);
    let base_costs = base.map(|b| pricing::price_workloads(&b.manifests, &b.settings, &b.prices));
    let total = |ws: &[WorkloadCost]| ws.iter().filter_map(|w| w.monthly).sum::<f64>();
    let head_by = pricing::by_cost_center(&head_costs);
    let base_by = base_costs.as_deref().map(pricing::by_cost_center);
    let mut centers: Vec<Option<String>> = head_by.keys().cloned().collect();
    if let Some(b) = &base_by {
        centers.extend(b.keys().filter(|k| !head_by.contains_key(*k)).cloned());
    }
    let mut by_cost_center: Vec<CostCenterCost> = centers
        .into_iter()
        .map(|cc| {
            let monthly = head_by.get(&cc).copied().unwrap_or(0.0);
            let base_monthly = base_by.as_ref().map(|b| b.get(&cc).copied().unwrap_or(0.0));
            CostCenterCost { cost_center: cc, monthly, base_monthly, delta: base_monthly.map(|b| monthly - b) }
        })
        .collect();
    by_cost_center.sort_by(|a, b| b.monthly.total_cmp(&a.monthly).then_with(|| a.cost_center.cmp(&b.cost_center)));

    // Budgets: with billing data, spend to date and the forecast of the period.
    let store = data.map(Store::new).filter(|s| s.root().is_dir());
    if let (Some(dir), None) = (data, &store) {
        diagnostics.push(Diagnostic::warning(
            dir.display().to_string(),
            "no billing data here (run `assay cost ingest`): budgets are projected from the manifests alone",
        ));
    }
    let (projections, as_of) = project_budgets(head, store.as_ref(), &head_costs, base_costs.as_deref(), diagnostics)?;
    let mut findings = Vec::new();
    for (budget, p) in head.budgets.iter().zip(&projections) {
        if !p.exceeded() {
            continue;
        }
        findings.push(BudgetFinding {
            budget: budget.name.clone(),
            path: budget.path.clone(),
            line: budget.line,
            action: budget.enforcement_action,
            period: p.period.clone(),
            amount: p.amount,
            actual: p.actual,
            forecast: p.forecast,
            delta: p.delta,
            projected: p.projected,
            status: base.map(|_| if p.delta > 0.0 { Status::New } else { Status::Unchanged }),
            message: p.message(&budget.currency),
        });
    }

    let budgets_input: Vec<Value> = head
        .budgets
        .iter()
        .zip(&projections)
        .map(|(b, p)| {
            json!({
                "name": b.name, "period": p.period, "amount": p.amount, "currency": b.currency,
                "actual": p.actual, "forecast": p.forecast, "delta": p.delta, "projected": p.projected,
                "exceeded": p.exceeded(), "enforcementAction": b.enforcement_action.as_str(),
            })
        })
        .collect();
    let centers_input: serde_json::Map<String, Value> = by_cost_center
        .iter()
        .map(|c| (c.cost_center.clone().unwrap_or_default(), json!({"monthly": c.monthly, "delta": c.delta})))
        .collect();
    let monthly = total(&head_costs);
    let base_monthly = base_costs.as_deref().map(total);
    let common = json!({
        "currency": currency,
        "monthly": monthly,
        "base_monthly": base_monthly,
        "delta": base_monthly.map(|b| monthly - b),
        "by_cost_center": centers_input,
        "budgets": budgets_input,
    });
    let by_path: std::collections::HashMap<(&str, u32, String), &WorkloadCost> =
        head_costs.iter().map(|w| ((w.path.as_str(), w.line, w.object.clone()), w)).collect();
    let inputs = head
        .manifests
        .iter()
        .map(|o| {
            let mut cost = common.clone();
            if let (Some(w), Some(map)) = (by_path.get(&(o.path.as_str(), o.line, o.identity())), cost.as_object_mut())
            {
                map.insert(
                    "workload".into(),
                    json!({
                        "monthly": w.monthly, "compute": w.compute, "gpu": w.gpu, "storage": w.storage,
                        "cost_center": w.cost_center, "region": w.region, "cluster": w.cluster, "basis": w.basis,
                    }),
                );
            }
            json!({ "cost": cost })
        })
        .collect();
    let report = CostReport {
        currency,
        monthly,
        base_monthly,
        delta: base_monthly.map(|b| monthly - b),
        by_cost_center,
        workloads: head_costs.iter().filter(|w| w.monthly.is_some()).count(),
        unpriced: head_costs
            .iter()
            .filter(|w| w.monthly.is_none())
            .map(|w| Unpriced { path: w.path.clone(), line: w.line, object: w.object.clone(), reason: w.basis.clone() })
            .collect(),
        billing_as_of: as_of,
        budget_findings: findings,
    };
    Ok(Estimate { report, inputs })
}

/// One projection per budget of the head, in order, and the billing data's last day.
fn project_budgets(
    head: &Estate,
    store: Option<&Store>,
    head_costs: &[WorkloadCost],
    base_costs: Option<&[WorkloadCost]>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Result<(Vec<Projection>, Option<String>)> {
    let mut out = Vec::new();
    let mut as_of = None;
    let runtime = if store.is_some() && !head.budgets.is_empty() { Some(crate::cost::runtime()?) } else { None };
    let billing_currency = match (store, &runtime) {
        (Some(store), Some(rt)) => Some(rt.block_on(assay_cost::allocation::currency(store))?),
        _ => None,
    };
    let total = match (store, &runtime) {
        (Some(store), Some(rt)) => Some(rt.block_on(series::daily(store, &Default::default(), "EffectiveCost"))?),
        _ => None,
    };
    for budget in &head.budgets {
        let mut status = None;
        if let (Some(store), Some(rt), Some(currency)) = (store, &runtime, &billing_currency) {
            if *currency != budget.currency {
                diagnostics.push(
                    Diagnostic::warning(
                        &budget.path,
                        format!(
                            "budget {} is in {} but the billing data is in {currency}: projected without billing data",
                            budget.name, budget.currency
                        ),
                    )
                    .at(budget.line, None),
                );
            } else {
                let daily = rt.block_on(series::daily(store, &budget.scope, "EffectiveCost"))?;
                if let Some(total) = total.as_ref().filter(|t| t.days > 0) {
                    let last = total.last_day();
                    as_of = Some(series::format_day(last));
                    let values = daily.total_over(total.first_day, total.days);
                    match budgets::status(budget, total.first_day, &values, last) {
                        Ok(s) => status = Some(s),
                        Err(e) => {
                            diagnostics.push(Diagnostic::warning(&budget.path, e.to_string()).at(budget.line, None))
                        }
                    }
                }
            }
        }
        out.push(budgets::project(budget, status.as_ref(), head_costs, base_costs, today()));
    }
    Ok((out, as_of))
}
