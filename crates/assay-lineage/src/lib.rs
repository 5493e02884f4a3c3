//! Data lineage and sovereignty: OpenLineage events (spec 2-0-2) read and checked field by field,
//! optionally against the OpenLineage JSON schemas; later the lineage graph, residency and egress
//! checks, provenance, and data-quality changes across runs.
//!
//! Sans-IO except for [`schema::Schemas::load`], which reads a directory of schema files.

pub mod check;
pub mod egress;
pub mod event;
pub mod graph;
pub mod provenance;
pub mod quality;
pub mod schema;

pub use event::{Event, EventError, Kind, parse};
