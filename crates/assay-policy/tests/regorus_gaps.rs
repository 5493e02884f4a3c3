//! Known gaps of regorus against OPA, asserted as they are today (see docs/compatibility.md).
//! When regorus closes a gap, its test here fails: update the document, the known-gaps list,
//! and this test to assert OPA's behaviour.

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

fn eval(text: &str, rule: &str, input: &str) -> Result<String, String> {
    let mut engine = engine(text)?;
    engine.set_input(regorus::Value::from_json_str(input).map_err(|e| e.to_string())?);
    engine.eval_rule(rule.to_string()).map(|v| v.to_string()).map_err(|e| format!("{e:#}"))
}

#[test]
fn g1_expression_starting_with_paren_on_a_new_line_is_read_as_a_call() {
    // OPA: the newline ends `input.a`, so r is true. FIXME(regorus): a call `input.a(...)`.
    let result = eval("package gap\n\nr {\n  x := 1\n  input.a\n  (x + 1) > 1\n}\n", "data.gap.r", r#"{"a": true}"#);
    let err = result.err().unwrap_or_default();
    assert!(err.contains("could not find function input.a"), "{err}");
}

#[test]
fn g2_sprintf_with_fewer_arguments_than_verbs_is_an_error() {
    // OPA: "1 %!v(MISSING)". FIXME(regorus): an evaluation error.
    let result = eval("package gap\n\nmsg := sprintf(\"%v %v\", [1])\n", "data.gap.msg", "{}");
    let err = result.err().unwrap_or_default();
    assert!(err.contains("no argument specified for format verb"), "{err}");
}

#[test]
fn g3_v0_set_rule_with_several_bodies_does_not_parse() {
    // OPA: s == {"b"}; each body is an alternative. FIXME(regorus): a parse error.
    let err = engine("package gap\n\ns[msg] { false; msg := \"a\" } { msg := \"b\" }\n").err().unwrap_or_default();
    assert!(err.contains("else cannot be used with set rules"), "{err}");
}
