//! The cost part of a verdict: the estimated monthly cost of the estate's workloads per cost
//! center, the change's delta, and budget findings.

use assay_estate::settings::EnforcementAction;
use serde::Serialize;

use crate::Status;

/// Estimated cost of the desired state, and what the change does to it.
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
    /// The last day of billing data used for budgets, when billing data was present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billing_as_of: Option<String>,
    /// Budgets the projection exceeds.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub budget_findings: Vec<BudgetFinding>,
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
    pub status: Option<Status>,
    /// What is wrong, in words.
    pub message: String,
}

impl BudgetFinding {
    /// Whether this finding fails the check: deny, and with a base only when the change raised
    /// the projection.
    pub fn blocks(&self) -> bool {
        self.action == EnforcementAction::Deny && self.status != Some(Status::Unchanged)
    }
}
