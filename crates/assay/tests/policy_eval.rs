//! `assay policy eval`: `opa eval` for policy authors, answering in OPA's JSON shape.

mod common;

use common::{assay, stderr, stdout};
use serde_json::{Value, json};

#[test]
fn a_query_is_answered_in_opa_s_shape_with_exit_codes_for_scripts() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("authz.rego"),
        "package authz\n\ndefault allow := false\n\nallow if {\n\tinput.user in data.admins\n\t\
         # G1: a new expression that starts with a parenthesis\n\t(count(input.user) + 1) > 1\n}\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("admins.yaml"), "admins: [alice, carol]\n").expect("write");
    std::fs::write(dir.path().join("input.yaml"), "user: alice\n").expect("write");
    let d = dir.path().to_str().expect("path");
    let rego = format!("{d}/authz.rego");
    let admins = format!("{d}/admins.yaml");
    let input = format!("{d}/input.yaml");

    let out = assay(dir.path(), &["policy", "eval", "-d", &rego, "-d", &admins, "-i", &input, "data.authz.allow"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let answer: Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(
        answer,
        json!({"result": [{"expressions": [{"value": true, "text": "data.authz.allow", "location": {"row": 1, "col": 1}}]}]})
    );

    // Bindings of a query with variables, shown pretty.
    let out = assay(dir.path(), &["policy", "eval", "-d", &admins, "--format", "pretty", "x := data.admins[_]"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("\"x\": \"alice\"") && text.contains("\"x\": \"carol\""), "{text}");

    // --fail and --fail-defined, for scripts.
    let undefined = assay(dir.path(), &["policy", "eval", "-d", &rego, "--fail", "data.authz.nothing"]);
    assert_eq!((undefined.status.code(), stdout(&undefined).trim()), (Some(1), "{}"));
    let defined = assay(dir.path(), &["policy", "eval", "-d", &rego, "--fail-defined", "data.authz.allow"]);
    assert_eq!(defined.status.code(), Some(1));

    // A policy that does not compile: exit 2, naming file and line.
    std::fs::write(dir.path().join("broken.rego"), "package broken\n\nallow if {\n").expect("write");
    let broken = format!("{d}/broken.rego");
    let out = assay(dir.path(), &["policy", "eval", "-d", &broken, "data.broken"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("broken.rego:"), "{}", stderr(&out));
    // A query that does not parse: exit 2.
    let out = assay(dir.path(), &["policy", "eval", "-d", &rego, "data.authz.allow =="]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
}
