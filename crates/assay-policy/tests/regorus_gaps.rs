//! Gaps of regorus against OPA (docs/compatibility.md): each is asserted twice. Through assay's
//! compilation (`assay_policy::rego::compile`, which rewrites the source as `rewrite` says) the
//! answer is OPA's; through regorus alone the gap is still there, so that a regorus upgrade that
//! closes it is noticed and the rewrite can go.

use assay_estate::settings::RegoVersion;
use assay_policy::rego::{Module, compile};

fn engine(text: &str) -> Result<regorus::Engine, String> {
    let mut diags = Vec::new();
    let compiled = compile(
        &[Module { path: "gap.rego".into(), text: text.into(), version: RegoVersion::V0 }],
        &regorus::Value::new_object(),
        &mut diags,
    );
    if diags.is_empty() { Ok(compiled.engine) } else { Err(diags.iter().map(ToString::to_string).collect()) }
}

fn run(mut engine: regorus::Engine, rule: &str, input: &str) -> Result<String, String> {
    engine.set_input(regorus::Value::from_json_str(input).map_err(|e| e.to_string())?);
    engine.eval_rule(rule.to_string()).map(|v| v.to_string()).map_err(|e| format!("{e:#}"))
}

/// Through assay.
fn eval(text: &str, rule: &str, input: &str) -> Result<String, String> {
    run(engine(text)?, rule, input)
}

/// Through regorus alone.
fn raw(text: &str, rule: &str, input: &str) -> Result<String, String> {
    let mut engine = regorus::Engine::new();
    engine.set_rego_v0(true);
    engine.add_policy("gap.rego".into(), text.into()).map_err(|e| format!("{e:#}"))?;
    run(engine, rule, input)
}

#[test]
fn g1_expression_starting_with_paren_on_a_new_line() {
    let text = "package gap\n\nr {\n  x := 1\n  input.a\n  (x + 1) > 1\n}\n";
    // OPA: the newline ends `input.a`, so r is true.
    assert_eq!(eval(text, "data.gap.r", r#"{"a": true}"#), Ok("true".into()));
    // regorus alone: a call `input.a(...)`.
    let err = raw(text, "data.gap.r", r#"{"a": true}"#).err().unwrap_or_default();
    assert!(err.contains("could not find function input.a"), "{err}");
}

#[test]
fn g2_sprintf_with_fewer_arguments_than_verbs() {
    let text = "package gap\n\nmsg := sprintf(\"%v %v\", [1])\n";
    // OPA, as Go's fmt: the missing operand is named.
    assert_eq!(eval(text, "data.gap.msg", "{}"), Ok("\"1 %!v(MISSING)\"".into()));
    // regorus alone: an evaluation error.
    let err = raw(text, "data.gap.msg", "{}").err().unwrap_or_default();
    assert!(err.contains("no argument specified for format verb"), "{err}");
}

#[test]
fn g3_v0_set_rule_with_several_bodies() {
    let text = "package gap\n\ns[msg] { false; msg := \"a\" } { msg := \"b\" }\n";
    // OPA: each body is an alternative.
    assert_eq!(eval(text, "data.gap.s", "{}"), Ok("[\"b\"]".into()));
    // regorus alone: a parse error.
    let err = raw(text, "data.gap.s", "{}").err().unwrap_or_default();
    assert!(err.contains("else cannot be used with set rules"), "{err}");
}
