//! The live side of GitOps: what runs in a cluster, compared with what the estate declares.
//!
//! - [`diff`] compares one desired object with its live counterpart as Argo CD does (sans-IO).
//!
//! assay reports and proves; it never changes the cluster.

pub mod diff;
