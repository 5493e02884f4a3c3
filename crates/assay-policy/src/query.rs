//! `opa eval`'s evaluation for `assay policy eval`: a query over Rego modules, data and an
//! input, answered in OPA's JSON shape (`{"result": [{"expressions": [{"value", "text",
//! "location"}], "bindings": {…}}]}`, `{}` when undefined), so that answers can be compared
//! with OPA's side by side.

use assay_estate::Diagnostic;
use serde_json::Value;

use crate::Error;
use crate::rego::{Module, compile, to_rego};

/// What a query gave.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// OPA's `opa eval --format json` document.
    pub document: Value,
    /// Whether the query had at least one result.
    pub defined: bool,
}

/// Compiles `modules` with `data` (rewritten as [`crate::rewrite`] says) and evaluates `query`
/// with `input`. A module that does not compile is an error, as it is for `opa eval`: the
/// diagnostics come back in `Err`.
pub fn evaluate(
    modules: &[Module],
    data: &Value,
    input: Option<&Value>,
    query: &str,
) -> std::result::Result<Answer, QueryError> {
    let mut diagnostics = Vec::new();
    let mut compiled = compile(modules, &to_rego(data), &mut diagnostics);
    if diagnostics.iter().any(|d| d.severity == assay_estate::Severity::Error) {
        return Err(QueryError::Compile(diagnostics));
    }
    if let Some(input) = input {
        compiled.engine.set_input(to_rego(input));
    }
    let results = compiled
        .engine
        .eval_query(query.to_string(), false)
        .map_err(|e| QueryError::Evaluation(Error::evaluation(e)))?;
    let document =
        serde_json::to_value(&results).map_err(|e| QueryError::Evaluation(Error::Evaluation(e.to_string())))?;
    Ok(Answer { defined: !results.result.is_empty(), document })
}

/// Why a query has no answer.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Modules that do not compile, each problem with its file and line.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Compile(Vec<Diagnostic>),
    /// The query failed to parse or evaluate.
    #[error("{0}")]
    Evaluation(Error),
}

/// The value of the first expression of the first result, when defined: what `opa eval
/// --format pretty` shows for a single-expression query.
pub fn first_value(document: &Value) -> Option<&Value> {
    document.pointer("/result/0/expressions/0/value")
}

#[cfg(test)]
mod tests {
    use super::*;
    use assay_estate::settings::RegoVersion;

    fn module(text: &str) -> Module {
        Module { path: "p.rego".into(), text: text.into(), version: RegoVersion::V1 }
    }

    #[test]
    fn answers_in_opa_shape() {
        let m = module("package p\n\nallow if input.user == \"alice\"\n");
        let a = evaluate(
            std::slice::from_ref(&m),
            &serde_json::json!({}),
            Some(&serde_json::json!({"user": "alice"})),
            "data.p.allow",
        )
        .expect("test");
        assert!(a.defined);
        assert_eq!(
            a.document,
            serde_json::json!({"result": [{"expressions": [{"value": true, "text": "data.p.allow", "location": {"row": 1, "col": 1}}]}]})
        );
        let b = evaluate(
            std::slice::from_ref(&m),
            &serde_json::json!({}),
            Some(&serde_json::json!({"user": "bob"})),
            "data.p.allow",
        )
        .expect("test");
        assert!(!b.defined);
        assert_eq!(b.document, serde_json::json!({}));
        let c = evaluate(&[m], &serde_json::json!({"n": [1, 2]}), None, "x := data.n[_]").expect("test");
        assert_eq!(c.document["result"][1]["bindings"], serde_json::json!({"x": 2}));
        let broken = evaluate(&[module("package p\n\nallow if {\n")], &serde_json::json!({}), None, "data.p");
        assert!(matches!(broken, Err(QueryError::Compile(_))));
    }
}
