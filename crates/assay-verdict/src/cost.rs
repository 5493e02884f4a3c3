//! The cost part of a verdict, owned by `assay-cost` (`assay_cost::check`): the estimated
//! monthly cost of the estate's workloads per cost center, the change's delta, every budget's
//! projection and the budget findings.

pub use assay_cost::budgets::Projection;
pub use assay_cost::check::{BudgetFinding, CostCenterCost, CostReport, FindingChange, Unpriced};
pub use assay_cost::terraform::ResourceCost;
