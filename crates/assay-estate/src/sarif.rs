//! The SARIF 2.1.0 log that assay's renderings share (`assay check --format sarif`, `assay drift
//! --format sarif`): one run of the `assay` tool with its rules and results.

use serde_json::{Value, json};

/// A SARIF log with one run of assay: its `rules`, `results`, and whether the run succeeded.
pub fn log(rules: Vec<Value>, results: Vec<Value>, successful: bool) -> Value {
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "assay",
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/assay-dev/assay",
                "rules": rules
            }},
            "results": results,
            "invocations": [{"executionSuccessful": successful}]
        }]
    })
}
