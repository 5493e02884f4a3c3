//! The cost side of `assay check` (sans-IO): the estimated monthly cost of the head's and the
//! base's workloads, per cost center and in total, each budget's projection for its period,
//! the budget findings and whether they block, and the `input.cost` document that Rego rules
//! see for each object.
//!
//! Billing data reaches this module as a [`Billing`] (read by [`crate::budgets::billing`]), so
//! that `assay check`, `assay cost budgets` and `assay cost forecast --estate` report the same
//! spend to date and forecast for every budget. This module reads no files and no clock: the
//! caller gives it the day.

use std::collections::{BTreeMap, HashMap};

use assay_estate::settings::EnforcementAction;
use assay_estate::{Diagnostic, Estate};
use serde::Serialize;

use crate::budgets::{self, Billing, Projection};
use crate::pricing::{self, WorkloadCost};

/// Estimated cost of the desired state, and what the change does to it: the `cost` section of
/// a verdict (documented in `docs/verdict.md`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostReport {
    /// ISO 4217 code of every amount.
    pub currency: String,
    /// Estimated monthly cost of the priced workloads at the checked revision.
    pub monthly: f64,
    /// The same at the base revision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_monthly: Option<f64>,
    /// `monthly - base_monthly`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<f64>,
    /// Per cost center, largest first.
    pub by_cost_center: Vec<CostCenterCost>,
    /// Workloads priced.
    pub workloads: usize,
    /// Workloads that could not be priced, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unpriced: Vec<Unpriced>,
    /// The day budgets were taken on with billing data (its last day, or `--as-of`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billing_as_of: Option<String>,
    /// Every budget's projection for its current period, in the order of the estate.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub budgets: Vec<Projection>,
    /// Budgets the projection exceeds.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub budget_findings: Vec<BudgetFinding>,
    /// Each Terraform resource's breakdown (its components), with the base's monthly cost
    /// when there is a base (a resource the change removes has a monthly cost of 0).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub terraform: Vec<crate::terraform::ResourceCost>,
}

/// One cost center's estimated monthly cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostCenterCost {
    /// The `cost-center` label; `None` for workloads without one.
    pub cost_center: Option<String>,
    /// At the checked revision.
    pub monthly: f64,
    /// At the base.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_monthly: Option<f64>,
    /// `monthly - base_monthly`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<f64>,
}

/// A workload without an estimate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unpriced {
    /// Manifest file.
    pub path: String,
    /// Line.
    pub line: u32,
    /// `kind/namespace/name`.
    pub object: String,
    /// Why.
    pub reason: String,
}

/// Whether a change made a budget finding (with a base revision).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FindingChange {
    /// The change raised the projection.
    New,
    /// The change did not raise it: the budget was already over.
    Unchanged,
}

/// A budget that the projected spend of its period exceeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetFinding {
    /// The budget's name.
    pub budget: String,
    /// Its file.
    pub path: String,
    /// Its line.
    pub line: u32,
    /// The budget's enforcement action.
    pub action: EnforcementAction,
    /// The period, `2024-04` or `2024-Q2`.
    pub period: String,
    /// The budget amount.
    pub amount: f64,
    /// Spend to date in the period, from billing data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<f64>,
    /// Forecast spend for the period before the change (actual plus forecast), from billing
    /// data; without billing data, the estimate of the workloads in scope for the period.
    pub forecast: f64,
    /// The change's effect on the period: the monthly delta of the workloads in the budget's
    /// scope, for the part of the period still to come.
    pub delta: f64,
    /// `forecast + delta`.
    pub projected: f64,
    /// With a base: new when the change raises the projection, unchanged otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<FindingChange>,
    /// What is wrong, in words.
    pub message: String,
}

impl BudgetFinding {
    /// Whether this finding fails the check: deny, and with a base only when the change raised
    /// the projection.
    pub fn blocks(&self) -> bool {
        self.action == EnforcementAction::Deny && self.status != Some(FindingChange::Unchanged)
    }
}

/// `input.cost`: what Rego rules see of cost when they judge one object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostInput {
    /// ISO 4217 code of every amount.
    pub currency: String,
    /// Estimated monthly cost of the estate's priced workloads.
    pub monthly: f64,
    /// The same at the base revision (`null` without one).
    pub base_monthly: Option<f64>,
    /// `monthly - base_monthly` (`null` without a base).
    pub delta: Option<f64>,
    /// Per cost-center label (`""` for workloads without one).
    pub by_cost_center: BTreeMap<String, CostCenterInput>,
    /// Every budget's projection.
    pub budgets: Vec<BudgetInput>,
    /// The object's own estimate, when it is a priced or unpriced workload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<WorkloadInput>,
}

impl CostInput {
    /// The extra input document of one object: `{"cost": …}`.
    pub fn to_input(&self) -> serde_json::Value {
        let mut doc = serde_json::Map::new();
        doc.insert("cost".into(), serde_json::to_value(self).unwrap_or_default());
        serde_json::Value::Object(doc)
    }
}

/// `input.cost.by_cost_center[name]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostCenterInput {
    /// Monthly cost at the checked revision.
    pub monthly: f64,
    /// Change from the base (`null` without one).
    pub delta: Option<f64>,
}

/// `input.cost.budgets[]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetInput {
    /// The budget's name.
    pub name: String,
    /// The period, `2024-04` or `2024-Q2`.
    pub period: String,
    /// The amount.
    pub amount: f64,
    /// Its currency.
    pub currency: String,
    /// Spend to date, with billing data (`null` otherwise).
    pub actual: Option<f64>,
    /// Spend of the period before the change.
    pub forecast: f64,
    /// What the change adds to the period.
    pub delta: f64,
    /// `forecast + delta`.
    pub projected: f64,
    /// Whether `projected` exceeds `amount`.
    pub exceeded: bool,
    /// `deny`, `warn` or `dryrun`.
    #[serde(rename = "enforcementAction")]
    pub enforcement_action: &'static str,
}

/// `input.cost.workload`: the judged object's own estimate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkloadInput {
    /// Monthly cost (`null` when it could not be priced).
    pub monthly: Option<f64>,
    /// Of which compute.
    pub compute: f64,
    /// Of which GPUs.
    pub gpu: f64,
    /// Of which storage.
    pub storage: f64,
    /// Its cost center.
    pub cost_center: Option<String>,
    /// Its region.
    pub region: Option<String>,
    /// Its cluster.
    pub cluster: Option<String>,
    /// How it was priced, or why not.
    pub basis: String,
}

/// The cost of a check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckCost {
    /// The verdict's cost section.
    pub report: CostReport,
    /// `input.cost` for each object of the head's manifests, in order.
    pub inputs: Vec<CostInput>,
    /// Budgets that billing data could not project (each at its file and line).
    pub diagnostics: Vec<Diagnostic>,
}

/// Whether the estate asks for cost at all: it has prices or budgets.
pub fn wanted(estate: &Estate) -> bool {
    // (Terraform resources are priced from the same catalog.)
    !estate.prices.regions.is_empty() || !estate.budgets.is_empty()
}

/// The sum of the priced workloads' monthly costs.
pub fn total(workloads: &[WorkloadCost]) -> f64 {
    workloads.iter().filter_map(|w| w.monthly).sum()
}

/// Prices the head (and the base) and projects every budget of the head: with the statuses of
/// `billing` where they could be had, from the manifests alone otherwise, for the period holding
/// `today` (days since 1970-01-01).
pub fn estimate(head: &Estate, base: Option<&Estate>, billing: Option<&Billing>, today: i64) -> CheckCost {
    estimate_with(head, base, &[], billing, today)
}

/// As [`estimate`], with Terraform plans given besides the head's own (`--terraform-plan`).
/// Terraform resources count like workloads: in the totals, per cost center (their cost-center
/// tag) and toward the budgets whose scope they are in.
pub fn estimate_with(
    head: &Estate,
    base: Option<&Estate>,
    given: &[&assay_estate::terraform::Plan],
    billing: Option<&Billing>,
    today: i64,
) -> CheckCost {
    let currency = head.settings.currency.clone();
    let mut head_costs = pricing::price_workloads(&head.manifests, &head.settings, &head.prices);
    let head_plans: Vec<&assay_estate::terraform::Plan> =
        head.terraform_plans.iter().chain(given.iter().copied()).collect();
    let (terraform_head, mut terraform, terraform_diagnostics) = crate::terraform::workloads(head, &head_plans);
    head_costs.extend(terraform_head);
    let base_costs = base.map(|b| {
        let mut costs = pricing::price_workloads(&b.manifests, &b.settings, &b.prices);
        let plans: Vec<&assay_estate::terraform::Plan> = b.terraform_plans.iter().collect();
        let (base_terraform, base_resources, _) = crate::terraform::workloads(b, &plans);
        for r in &mut terraform {
            let before = base_resources.iter().find(|x| x.address == r.address);
            r.base_monthly = Some(before.map_or(0.0, |x| x.monthly));
            // Against the base, a resource the base already had is not created by the change
            // (a plan worked out from `.tf` files creates every resource).
            if before.is_some() && r.action == "create" {
                r.action = "update".into();
            } else if before.is_none() {
                r.action = "create".into();
            }
        }
        let gone: Vec<crate::terraform::ResourceCost> = base_resources
            .iter()
            .filter(|x| !terraform.iter().any(|r| r.address == x.address))
            .map(|x| {
                let mut removed = x.clone();
                removed.base_monthly = Some(x.monthly);
                removed.monthly = 0.0;
                removed.action = "delete".into();
                removed.components.clear();
                removed
            })
            .collect();
        terraform.extend(gone);
        costs.extend(base_terraform);
        costs
    });
    let by_cost_center = cost_centers(&head_costs, base_costs.as_deref());

    let mut diagnostics = terraform_diagnostics;
    let mut billing_as_of = None;
    let mut projections = Vec::new();
    for (i, budget) in head.budgets.iter().enumerate() {
        let status = match billing.and_then(|b| b.budgets.get(i)).map(|b| &b.status) {
            Some(Ok(status)) => {
                billing_as_of = Some(status.as_of.clone());
                Some(status)
            }
            Some(Err(why)) => {
                diagnostics.push(
                    Diagnostic::warning(&budget.path, format!("{why}: projected from the manifests alone"))
                        .at(budget.line, None),
                );
                None
            }
            None => None,
        };
        projections.push(budgets::project(budget, status, &head_costs, base_costs.as_deref(), today));
    }

    let budget_findings = head
        .budgets
        .iter()
        .zip(&projections)
        .filter(|(_, p)| p.exceeded())
        .map(|(budget, p)| BudgetFinding {
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
            status: base.map(|_| if p.delta > 0.0 { FindingChange::New } else { FindingChange::Unchanged }),
            message: p.message(&budget.currency),
        })
        .collect();

    let monthly = total(&head_costs);
    let base_monthly = base_costs.as_deref().map(total);
    let delta = base_monthly.map(|b| monthly - b);
    let common = CostInput {
        currency: currency.clone(),
        monthly,
        base_monthly,
        delta,
        by_cost_center: by_cost_center
            .iter()
            .map(|c| {
                (c.cost_center.clone().unwrap_or_default(), CostCenterInput { monthly: c.monthly, delta: c.delta })
            })
            .collect(),
        budgets: head
            .budgets
            .iter()
            .zip(&projections)
            .map(|(b, p)| BudgetInput {
                name: b.name.clone(),
                period: p.period.clone(),
                amount: p.amount,
                currency: b.currency.clone(),
                actual: p.actual,
                forecast: p.forecast,
                delta: p.delta,
                projected: p.projected,
                exceeded: p.exceeded(),
                enforcement_action: b.enforcement_action.as_str(),
            })
            .collect(),
        workload: None,
    };
    let by_object: HashMap<(&str, u32, &str), &WorkloadCost> =
        head_costs.iter().map(|w| ((w.path.as_str(), w.line, w.object.as_str()), w)).collect();
    let inputs = head
        .manifests
        .iter()
        .map(|o| {
            let identity = o.identity();
            let workload = by_object.get(&(o.path.as_str(), o.line, identity.as_str())).map(|w| WorkloadInput {
                monthly: w.monthly,
                compute: w.compute,
                gpu: w.gpu,
                storage: w.storage,
                cost_center: w.cost_center.clone(),
                region: w.region.clone(),
                cluster: w.cluster.clone(),
                basis: w.basis.clone(),
            });
            CostInput { workload, ..common.clone() }
        })
        .collect();
    let report = CostReport {
        currency,
        monthly,
        base_monthly,
        delta,
        by_cost_center,
        workloads: head_costs.iter().filter(|w| w.monthly.is_some()).count(),
        unpriced: head_costs
            .iter()
            .filter(|w| w.monthly.is_none())
            .map(|w| Unpriced { path: w.path.clone(), line: w.line, object: w.object.clone(), reason: w.basis.clone() })
            .collect(),
        billing_as_of,
        budgets: projections,
        budget_findings,
        terraform,
    };
    CheckCost { report, inputs, diagnostics }
}

/// Per cost center, head and base side by side, largest first.
fn cost_centers(head: &[WorkloadCost], base: Option<&[WorkloadCost]>) -> Vec<CostCenterCost> {
    let head_by = pricing::by_cost_center(head);
    let base_by = base.map(pricing::by_cost_center);
    let mut centers: Vec<Option<String>> = head_by.keys().cloned().collect();
    if let Some(b) = &base_by {
        centers.extend(b.keys().filter(|k| !head_by.contains_key(*k)).cloned());
    }
    let mut out: Vec<CostCenterCost> = centers
        .into_iter()
        .map(|cc| {
            let monthly = head_by.get(&cc).copied().unwrap_or(0.0);
            let base_monthly = base_by.as_ref().map(|b| b.get(&cc).copied().unwrap_or(0.0));
            CostCenterCost { cost_center: cc, monthly, base_monthly, delta: base_monthly.map(|b| monthly - b) }
        })
        .collect();
    out.sort_by(|a, b| b.monthly.total_cmp(&a.monthly).then_with(|| a.cost_center.cmp(&b.cost_center)));
    out
}
