//! assay-policy
