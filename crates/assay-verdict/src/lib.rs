//! assay-verdict
