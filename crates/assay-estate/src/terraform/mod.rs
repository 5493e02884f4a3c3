//! Terraform and OpenTofu under `terraform/`: plans (`terraform show -json` output) and the
//! configuration they were planned from (`.tf` files), sans-IO.

pub mod config;
pub mod eval;
pub mod plan;

pub use config::{Configuration, Declared};
pub use plan::{Action, Plan, ResourceChange};
