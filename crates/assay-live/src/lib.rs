//! The live side of GitOps: what runs in a cluster, compared with what the estate declares.
//!
//! - [`diff`] compares one desired object with its live counterpart as Argo CD does (sans-IO);
//!   [`ignore`] leaves out what `ignoreDifferences` names.
//! - [`state`] compares an estate's objects with a cluster's: in sync, drifted, missing, extra.
//! - [`report`] holds the result per cluster, with the audit, and renders it.
//! - `canonical` hashes a value's canonical JSON (RFC 8785) without writing it out: the live
//!   digests.
//! - [`attest`] states, for signing, what a comparison found: a sync attestation.
//! - [`cluster`] reads live objects from a Kubernetes API server with kube-rs (the only IO here).
//!
//! assay reports and proves; it never changes the cluster.

pub mod attest;
mod canonical;
pub mod cluster;
pub mod diff;
pub mod ignore;
pub mod report;
pub mod state;
