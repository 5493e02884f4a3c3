//! OPA itself as the oracle: the same policies, data, inputs and queries evaluated by assay
//! (`assay_policy::query::evaluate`, through the same compilation as every other command) and by
//! OPA 1.20.2 (PyPI's opa-golib-python-bindings, which embeds OPA's Go engine; driven by
//! `scripts/opa_oracle.py`), compared exactly. Every query binds `x`, so that a result is its
//! bindings whatever the expression's value.
//!
//! A disagreement fails the test, unless it is listed in `KNOWN` with the reason; a listed one
//! that starts to agree fails too, so the list stays true.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use assay_estate::settings::RegoVersion;
use assay_policy::rego::Module;
use serde_json::{Value, json};

/// How the OPA bindings are installed: the wheel declares Python 3.14 but loads and evaluates on
/// 3.11 (its Go library needs glibc 2.34).
pub const OPA_BINDINGS: &[&str] =
    &["--ignore-requires-python", "--no-deps", "--only-binary=:all:", "opa-golib-python-bindings==0.4.4"];

/// (name, module, input, query): generated Rego, one language feature or builtin each.
const FEATURES: &[(&str, &str, &str, &str)] = &[
    ("complete rule", "r := 1", "", "x := data.p.r"),
    ("default rule", "default r := false\nr if input.a == 1", r#"{"a": 2}"#, "x := data.p.r"),
    ("partial set", "s contains v if some v in input.xs; v > 1", r#"{"xs": [1, 2, 3]}"#, "x := data.p.s"),
    ("partial object", "o[k] := v if some k, v in input.m", r#"{"m": {"a": 1, "b": 2}}"#, "x := data.p.o"),
    (
        "else chain",
        "r := \"a\" if input.n > 2\nelse := \"b\" if input.n > 1\nelse := \"c\"",
        r#"{"n": 2}"#,
        "x := data.p.r",
    ),
    ("function", "f(a, b) := a + b\nr := f(1, 2)", "", "x := data.p.r"),
    ("function with several definitions", "f(1) := \"one\"\nf(2) := \"two\"\nr := [f(1), f(2)]", "", "x := data.p.r"),
    ("array comprehension", "r := [v * 2 | some v in input.xs]", r#"{"xs": [1, 2]}"#, "x := data.p.r"),
    ("set comprehension", "r := {v | some v in input.xs}", r#"{"xs": [2, 1, 2]}"#, "x := data.p.r"),
    (
        "object comprehension",
        "r := {k: v | some k, v in input.m; v > 1}",
        r#"{"m": {"a": 1, "b": 2}}"#,
        "x := data.p.r",
    ),
    ("every", "r if every v in input.xs { v > 0 }", r#"{"xs": [1, 2]}"#, "x := data.p.r"),
    ("every over empty", "r if every v in input.xs { v > 0 }", r#"{"xs": []}"#, "x := data.p.r"),
    ("some in with index", "r := [i | some i, v in input.xs; v == \"b\"]", r#"{"xs": ["a", "b"]}"#, "x := data.p.r"),
    ("with input", "r := input.a\nq := r with input as {\"a\": 5}", "", "x := data.p.q"),
    ("with data", "r := data.limits.max\nq := r with data.limits.max as 9", "", "x := data.p.q"),
    ("negation", "r if not input.flag", "{}", "x := data.p.r"),
    ("negation of a defined false", "r if not input.flag", r#"{"flag": false}"#, "x := data.p.r"),
    ("undefined inside a call", "r := count(input.missing)", "{}", "x := data.p.r"),
    ("not f(undefined)", "f(v) if v == 1\nr if not f(input.missing)", "{}", "x := data.p.r"),
    (
        "not f(undefined) in a partial rule",
        "f(v) if v == 1\ns contains \"hit\" if not f(input.missing.deep)",
        "{}",
        "x := data.p.s",
    ),
    ("object.get on null", "r := object.get(null, \"a\", \"d\")", "", "x := data.p.r"),
    ("object.get default", "r := object.get(input, [\"a\", \"b\"], 7)", r#"{"a": {}}"#, "x := data.p.r"),
    ("object.get present", "r := object.get(input, \"a\", 7)", r#"{"a": false}"#, "x := data.p.r"),
    ("set union and difference", "a := {1, 2}\nb := {2, 3}\nr := [a | b, a - b, a & b]", "", "x := data.p.r"),
    ("object keys of several types", "r := {1: \"n\", \"s\": 2, true: 3}", "", "x := data.p.r"),
    ("sets of objects", "r := {{\"a\": 1}, {\"a\": 1}, {\"b\": 2}}", "", "x := data.p.r"),
    (
        "string builtins",
        "r := [upper(\"a\"), lower(\"B\"), concat(\",\", [\"a\", \"b\"]), split(\"a.b\", \".\"), trim(\" a \", \" \"), replace(\"aa\", \"a\", \"b\")]",
        "",
        "x := data.p.r",
    ),
    (
        "prefix and suffix",
        "r := [startswith(\"abc\", \"ab\"), endswith(\"abc\", \"bc\"), contains(\"abc\", \"d\")]",
        "",
        "x := data.p.r",
    ),
    ("sprintf verbs", "r := sprintf(\"%v %d %s %.2f %q\", [[1, \"a\"], 3, \"s\", 1.5, \"q\"])", "", "x := data.p.r"),
    ("sprintf of an object", "r := sprintf(\"%v\", [{\"b\": 1, \"a\": [true, null]}])", "", "x := data.p.r"),
    ("sprintf missing values", "r := sprintf(\"%v %v\", [1])", "", "x := data.p.r"),
    ("regex.match", "r := [regex.match(\"^a+$\", \"aaa\"), regex.match(\"b\", \"aaa\")]", "", "x := data.p.r"),
    ("glob.match", "r := glob.match(\"*.example.com\", [\".\"], \"a.example.com\")", "", "x := data.p.r"),
    (
        "aggregates",
        "r := [count([1, 2]), sum([1, 2.5]), max([3, 1]), min([3, 1]), sort([3, 1, 2])]",
        "",
        "x := data.p.r",
    ),
    ("numbers.range", "r := numbers.range(1, 4)", "", "x := data.p.r"),
    ("integer and float arithmetic", "r := [7 / 2, 7 % 3, 2 * 0.5, 1 + 1.0]", "", "x := data.p.r"),
    ("units.parse_bytes", "r := [units.parse_bytes(\"1Gi\"), units.parse_bytes(\"100M\")]", "", "x := data.p.r"),
    ("units.parse", "r := [units.parse(\"100m\"), units.parse(\"2\")]", "", "x := data.p.r"),
    ("json round trip", "r := json.unmarshal(json.marshal({\"a\": [1, 2]}))", "", "x := data.p.r"),
    (
        "type checks",
        "r := [is_string(\"a\"), is_number(1), is_object({}), is_array([]), is_set(set()), is_null(null), type_name(true)]",
        "",
        "x := data.p.r",
    ),
    ("array.concat and slice", "r := [array.concat([1], [2]), array.slice([1, 2, 3], 1, 2)]", "", "x := data.p.r"),
    (
        "object.union and remove",
        "r := [object.union({\"a\": 1}, {\"b\": 2}), object.remove({\"a\": 1, \"b\": 2}, [\"a\"])]",
        "",
        "x := data.p.r",
    ),
    ("any-type equality", "r := [1 == 1.0, \"1\" == 1, [1] == [1], {\"a\": 1} == {\"a\": 1}]", "", "x := data.p.r"),
    ("comparison across types", "r := [null < false, false < 0, 0 < \"\", \"\" < [], [] < {}]", "", "x := data.p.r"),
    ("iteration over an object", "r := [k | some k, _ in {\"b\": 1, \"a\": 2}]", "", "x := data.p.r"),
    (
        "input iteration with a reference",
        "r := [c.name | c := input.spec.containers[_]; not c.securityContext.privileged]",
        r#"{"spec": {"containers": [{"name": "a", "securityContext": {"privileged": true}}, {"name": "b"}]}}"#,
        "x := data.p.r",
    ),
    ("query with several results", "xs := [1, 2, 3]", "", "x := data.p.xs[_]; x > 1"),
    (
        "trim_prefix and indexof",
        "r := [trim_prefix(\"abc\", \"a\"), indexof(\"abc\", \"c\"), substring(\"abcdef\", 1, 3)]",
        "",
        "x := data.p.r",
    ),
    ("time.parse_rfc3339_ns", "r := time.parse_rfc3339_ns(\"2026-01-01T00:00:00Z\")", "", "x := data.p.r"),
    ("base64", "r := [base64.encode(\"hi\"), base64.decode(\"aGk=\")]", "", "x := data.p.r"),
    (
        "strings.replace_n and format_int",
        "r := [strings.replace_n({\"a\": \"b\"}, \"aa\"), format_int(255, 16)]",
        "",
        "x := data.p.r",
    ),
    (
        "regex.find_n and regex.split",
        r#"r := [regex.find_n("[a-z]+", "ab 12 cd", -1), regex.split(",\\s*", "a, b,c")]"#,
        "",
        "x := data.p.r",
    ),
    (
        "strings.any_prefix_match",
        r#"r := [strings.any_prefix_match("abc", ["x", "ab"]), strings.any_suffix_match("abc", "c")]"#,
        "",
        "x := data.p.r",
    ),
    (
        "object.keys and object.filter",
        r#"r := [object.keys({"a": 1, "b": 2}), object.filter({"a": 1, "b": 2}, ["a"])]"#,
        "",
        "x := data.p.r",
    ),
    (
        "json.filter and json.remove",
        r#"r := [json.filter({"a": {"b": 1, "c": 2}}, ["a/b"]), json.remove({"a": {"b": 1, "c": 2}}, ["a/b"])]"#,
        "",
        "x := data.p.r",
    ),
    ("walk", r#"r := [p | walk({"a": [1]}, [p, _])]"#, "", "x := data.p.r"),
    (
        "net.cidr_contains",
        r#"r := [net.cidr_contains("10.0.0.0/8", "10.1.2.3"), net.cidr_contains("10.0.0.0/8", "11.0.0.1")]"#,
        "",
        "x := data.p.r",
    ),
    ("semver", r#"r := [semver.compare("1.2.3", "1.10.0"), semver.is_valid("v1")]"#, "", "x := data.p.r"),
    ("crypto.sha256 and md5", r#"r := [crypto.sha256("a"), crypto.md5("a")]"#, "", "x := data.p.r"),
    ("urlquery", r#"r := [urlquery.encode("a b&c"), urlquery.encode_object({"q": "x y"})]"#, "", "x := data.p.r"),
    ("yaml", r#"r := [yaml.unmarshal("a: [1, 2]"), yaml.is_valid("a: [")]"#, "", "x := data.p.r"),
    ("numbers", r#"r := [to_number("1.5"), abs(-2), round(2.5), ceil(1.2), floor(-1.2), 10 / 4]"#, "", "x := data.p.r"),
    ("product and empty aggregates", r#"r := [product([2, 3]), sum([]), count("héllo")]"#, "", "x := data.p.r"),
    ("max of an empty array", "r := max([])", "", "x := data.p.r"),
    ("array.reverse", "r := array.reverse([1, 2, 3])", "", "x := data.p.r"),
    ("sprintf hex and padding", r#"r := sprintf("%x|%5d|%-3s|%t", [255, 42, "a", true])"#, "", "x := data.p.r"),
    ("graph.reachable", r#"r := graph.reachable({"a": ["b"], "b": ["c"], "c": []}, ["a"])"#, "", "x := data.p.r"),
    ("time.date and add_date", "r := [time.date(0), time.add_date(0, 1, 1, 1)]", "", "x := data.p.r"),
    (
        "trim_space, trim_suffix, unicode case",
        r#"r := [trim_space("  a "), trim_suffix("ab", "b"), upper("é"), split("", ",")]"#,
        "",
        "x := data.p.r",
    ),
    ("a builtin given a wrong type", r#"r := startswith(1, "a")"#, "", "x := data.p.r"),
    ("object with a reference key", "r := {input.k: 1}", r#"{"k": "a"}"#, "x := data.p.r"),
    ("conflicting complete rule", "r := 1 if input.a\nr := 2 if input.b", r#"{"a": true, "b": true}"#, "x := data.p.r"),
    (
        "partial rule over input with duplicates",
        "s contains x.name if some x in input.items",
        r#"{"items": [{"name": "a"}, {"name": "a"}, {"name": "b"}]}"#,
        "x := data.p.s",
    ),
    (
        "nested every and some",
        "r if { every c in input.cs { some p in c.ports; p > 1000 } }",
        r#"{"cs": [{"ports": [80, 8080]}, {"ports": [9000]}]}"#,
        "x := data.p.r",
    ),
];

/// Disagreements known today, with why (docs/compatibility.md). Each must still disagree.
const KNOWN: &[(&str, &str)] = &[(
    "sprintf hex and padding",
    "regorus's sprintf ignores Go's `-` flag (prints `3s` for `%-3s`) and formats `%t` of a \
     boolean, where OPA pads left and prints `%!t(string=true)` (docs/compatibility.md)",
)];

struct Case {
    name: String,
    modules: Vec<Module>,
    data: Value,
    input: Option<Value>,
    query: String,
}

/// The example estate's policies and data, asked every rule the checks read (`deny`, `warn`,
/// `violation` and their `_*` variants) of every package, for every manifest as an
/// AdmissionReview request (as `assay check` and the webhook present it), and of a manifest with
/// its labels removed.
fn estate_cases() -> Vec<Case> {
    let estate = assay_estate::source::load_dir(&common::repo_root().join("examples/estate")).expect("example estate");
    let mut diags = Vec::new();
    let sources = assay_policy::PolicySources::from_estate(&estate, &mut diags);
    assert!(diags.is_empty(), "{diags:?}");
    let runtime =
        |m: &Module| assay_policy::rego::package_of(&m.text).is_some_and(|p| assay_policy::is_runtime_package(&p));
    let mut rules = Vec::new();
    for m in sources.modules.iter().filter(|m| !runtime(m)) {
        let package = assay_policy::rego::package_of(&m.text).expect("package");
        for line in m.text.lines() {
            let name: String = line.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            let counts = name == "deny"
                || name == "warn"
                || name == "violation"
                || name.starts_with("deny_")
                || name.starts_with("warn_");
            if counts && !rules.contains(&format!("data.{package}.{name}")) {
                rules.push(format!("data.{package}.{name}"));
            }
        }
    }
    assert!(rules.len() >= 3, "{rules:?}");
    let mut inputs: Vec<Value> = Vec::new();
    for object in &estate.manifests {
        let request = assay_policy::review::create_request(&object.value);
        inputs.push(json!({"request": request}));
        let mut bare = object.value.clone();
        if let Some(meta) = bare.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("labels");
            meta.remove("annotations");
        }
        inputs.push(json!({"request": assay_policy::review::create_request(&bare)}));
    }
    let mut cases = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        for rule in &rules {
            cases.push(Case {
                name: format!("example estate: {rule} on input {i}"),
                modules: sources.modules.iter().filter(|m| !runtime(m)).cloned().collect(),
                data: sources.data.clone(),
                input: Some(input.clone()),
                query: format!("x := {rule}"),
            });
        }
    }
    cases
}

fn cases() -> Vec<Case> {
    FEATURES
        .iter()
        .map(|(name, rules, input, query)| Case {
            name: (*name).to_string(),
            modules: vec![Module {
                path: "p.rego".into(),
                text: format!("package p\n\n{rules}\n"),
                version: RegoVersion::V1,
            }],
            data: json!({"limits": {"max": 3}}),
            input: (!input.is_empty()).then(|| serde_json::from_str(input).expect("case input")),
            query: (*query).to_string(),
        })
        .collect()
}

/// The results of each case as bindings, or the error, in the oracle's shape.
fn assay_answers(cases: &[Case]) -> Vec<Value> {
    cases
        .iter()
        .map(|c| match assay_policy::query::evaluate(&c.modules, &c.data, c.input.as_ref(), &c.query) {
            Ok(answer) => {
                let results = answer.document["result"].as_array().cloned().unwrap_or_default();
                json!({"results": results.iter().map(|r| r.get("bindings").cloned().unwrap_or(json!({}))).collect::<Vec<_>>()})
            }
            Err(e) => json!({"error": e.to_string()}),
        })
        .collect()
}

fn opa_answers(cases: &[Case]) -> Vec<Value> {
    let python = common::python_with_pip("opa_bindings", OPA_BINDINGS);
    let mut child = Command::new(python)
        .arg(common::repo_root().join("scripts/opa_oracle.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running the OPA oracle");
    let mut stdin = child.stdin.take().expect("stdin");
    let lines: Vec<String> = cases
        .iter()
        .map(|c| {
            let mut case = json!({
                "modules": c.modules.iter().map(|m| json!({"path": m.path, "text": m.text})).collect::<Vec<_>>(),
                "data": c.data,
                "query": c.query,
            });
            if let Some(input) = &c.input {
                case["input"] = input.clone();
            }
            case.to_string()
        })
        .collect();
    let writer = std::thread::spawn(move || {
        for line in lines {
            writeln!(stdin, "{line}").expect("write a case");
        }
    });
    let out = child.wait_with_output().expect("the OPA oracle");
    writer.join().expect("writer");
    assert!(out.status.success(), "the OPA oracle failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("oracle JSON")).collect()
}

/// Results compared as a multiset of canonical JSON (RFC 8785: object keys sorted), since the
/// engines may list results, and write object keys, in different orders.
fn normal(answer: &Value) -> Value {
    match answer.get("results").and_then(Value::as_array) {
        Some(results) => {
            let mut rows: Vec<String> =
                results.iter().map(|r| serde_json_canonicalizer::to_string(r).expect("canonical JSON")).collect();
            rows.sort();
            json!({"results": rows})
        }
        None => json!({"error": true}),
    }
}

#[test]
fn assay_agrees_with_opa_on_every_language_feature_and_builtin_case() {
    compare(cases());
}

#[test]
fn assay_agrees_with_opa_on_the_example_estate_s_policies() {
    compare(estate_cases());
}

fn compare(cases: Vec<Case>) {
    assert!(!cases.is_empty());
    let queries: std::collections::BTreeSet<&str> = cases.iter().map(|c| c.query.as_str()).collect();
    eprintln!("comparing {} cases ({} distinct queries) with OPA 1.20.2", cases.len(), queries.len());
    let ours = assay_answers(&cases);
    let theirs = opa_answers(&cases);
    assert_eq!(ours.len(), theirs.len());
    let mut disagreements = Vec::new();
    let mut known_agreeing = Vec::new();
    for ((case, a), o) in cases.iter().zip(&ours).zip(&theirs) {
        let agree = normal(a) == normal(o);
        let known = KNOWN.iter().any(|(n, _)| *n == case.name);
        if !agree && !known {
            disagreements.push(format!("{}:\n  query {}\n  assay {a}\n  OPA   {o}", case.name, case.query));
        }
        if agree && known {
            known_agreeing.push(case.name.clone());
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} cases disagree with OPA:\n{}",
        disagreements.len(),
        cases.len(),
        disagreements.join("\n")
    );
    assert!(known_agreeing.is_empty(), "listed as known differences but agree now: {known_agreeing:?}");
}

/// One evaluation of a Gatekeeper library template: the template's Rego (v0, as the library
/// writes it), the input Gatekeeper gives it, and `data.inventory`.
struct LibraryCase {
    name: String,
    template: assay_policy::gatekeeper::Template,
    modules: Vec<Module>,
    package: String,
    input: Value,
    inventory: Value,
}

fn library_dir() -> std::path::PathBuf {
    let dir = common::repo_root().join("../shared/conformance/gatekeeper-library/library/general");
    assert!(dir.is_dir(), "the Gatekeeper library is not at {}", dir.display());
    dir
}

fn library_objects(path: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (objects, diags) = assay_estate::manifest::parse_objects(&path.display().to_string(), &text);
    assert!(diags.iter().all(|d| d.severity != assay_estate::Severity::Error), "{diags:?}");
    objects.into_iter().map(|o| o.value).collect()
}

/// `object` without its labels and annotations: the variant most templates are about.
fn bare(object: &Value) -> Value {
    let mut copy = object.clone();
    for meta in ["/metadata", "/request/object/metadata"] {
        if let Some(m) = copy.pointer_mut(meta).and_then(Value::as_object_mut) {
            m.remove("labels");
            m.remove("annotations");
        }
    }
    copy
}

/// Every test case of every suite in the library's general set, as its suite gives it (the
/// sample object, its inventory, the constraint's parameters), and in variants: the object
/// without labels and annotations, and the constraint without parameters (every reference to
/// a parameter undefined: the `not f(x.undefined)` ground), and with each string, number and
/// boolean of the object changed in turn.
fn library_cases() -> Vec<LibraryCase> {
    let mut cases = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(library_dir()).expect("library").flatten().map(|e| e.path()).collect();
    dirs.sort();
    for dir in dirs.into_iter().filter(|d| d.join("suite.yaml").is_file()) {
        let suite: Value =
            yaml_serde::from_str(&std::fs::read_to_string(dir.join("suite.yaml")).expect("suite")).expect("suite YAML");
        for test in suite["tests"].as_array().into_iter().flatten() {
            let template_path = dir.join(test["template"].as_str().expect("template"));
            let template_object = &assay_estate::manifest::parse_objects(
                &template_path.display().to_string(),
                &std::fs::read_to_string(&template_path).expect("template"),
            )
            .0[0];
            let target = &template_object.value["spec"]["targets"][0];
            let Some(rego) = target["rego"].as_str() else { continue };
            let package = assay_policy::rego::package_of(rego).expect("package");
            let mut modules =
                vec![Module { path: format!("{}.rego", package), text: rego.to_string(), version: RegoVersion::V0 }];
            for (i, lib) in target["libs"].as_array().into_iter().flatten().enumerate() {
                let text = lib.as_str().expect("lib").to_string();
                modules.push(Module { path: format!("{package}.lib{i}.rego"), text, version: RegoVersion::V0 });
            }
            let mut diags = Vec::new();
            let template = assay_policy::gatekeeper::Template::compile(
                template_object,
                &assay_policy::rego::to_rego(&json!({})),
                &mut diags,
            )
            .unwrap_or_else(|| panic!("{}: {diags:?}", template_path.display()));
            let constraint = &library_objects(&dir.join(test["constraint"].as_str().expect("constraint")))[0];
            let parameters = constraint.pointer("/spec/parameters").cloned().unwrap_or(json!({}));
            for case in test["cases"].as_array().into_iter().flatten() {
                let object = &library_objects(&dir.join(case["object"].as_str().expect("object")))[0];
                let inventory_objects: Vec<Value> = case["inventory"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|p| library_objects(&dir.join(p.as_str().expect("inventory"))))
                    .collect();
                let inventory = assay_policy::review::inventory(inventory_objects.iter());
                let request = |object: &Value| {
                    if object["kind"] == "AdmissionReview" {
                        assay_policy::review::complete_request(object["request"].clone())
                    } else {
                        assay_policy::review::create_request(object)
                    }
                };
                let review = request(object);
                let mut variants = vec![
                    ("as in the suite".to_string(), review.clone(), parameters.clone()),
                    ("without labels and annotations".to_string(), request(&bare(object)), parameters.clone()),
                    ("without parameters".to_string(), review.clone(), json!({})),
                ];
                for (pointer, changed) in assay_policy::testing::one_value_changes(&review, "/object") {
                    variants.push((format!("with {pointer} changed"), changed, parameters.clone()));
                }
                for (variant, review, parameters) in variants {
                    cases.push(LibraryCase {
                        name: format!(
                            "{}: {} / {} {variant}",
                            dir.file_name().unwrap_or_default().to_string_lossy(),
                            test["name"].as_str().unwrap_or(""),
                            case["name"].as_str().unwrap_or("")
                        ),
                        template: template.clone(),
                        modules: modules.clone(),
                        package: package.clone(),
                        input: json!({"review": review, "parameters": parameters}),
                        inventory: inventory.clone(),
                    });
                }
            }
        }
    }
    cases
}

/// A set of violations as Gatekeeper reads them (each `msg` and `details`), canonical and sorted.
fn violations_of(items: impl IntoIterator<Item = (Value, Option<Value>)>) -> Vec<String> {
    let mut out: Vec<String> = items
        .into_iter()
        .map(|(msg, details)| {
            let mut v = json!({"msg": msg});
            if let Some(d) = details {
                v["details"] = d;
            }
            serde_json_canonicalizer::to_string(&v).expect("canonical JSON")
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[test]
fn assay_agrees_with_opa_on_every_gatekeeper_library_template() {
    let cases = library_cases();
    let templates: std::collections::BTreeSet<&str> = cases.iter().map(|c| c.package.as_str()).collect();
    eprintln!("comparing {} evaluations of {} library templates with OPA 1.20.2", cases.len(), templates.len());
    assert!(templates.len() >= 25 && cases.len() >= 1800, "{} templates, {} cases", templates.len(), cases.len());
    // OPA reads v1 only: each template as `v0_to_v1` writes it.
    let oracle_cases: Vec<Case> = cases
        .iter()
        .map(|c| Case {
            name: c.name.clone(),
            modules: c
                .modules
                .iter()
                .map(|m| Module {
                    path: m.path.clone(),
                    text: assay_policy::rewrite::v0_to_v1(&m.text),
                    version: RegoVersion::V1,
                })
                .collect(),
            data: json!({"inventory": c.inventory}),
            input: Some(c.input.clone()),
            query: format!("x := data.{}.violation", c.package),
        })
        .collect();
    let theirs = opa_answers(&oracle_cases);
    let mut disagreements = Vec::new();
    let mut violating = 0;
    for ((case, oracle_case), o) in cases.iter().zip(&oracle_cases).zip(&theirs) {
        let opa = o["results"].as_array().and_then(|r| r.first()).map(|row| {
            violations_of(
                row["x"].as_array().into_iter().flatten().map(|v| (v["msg"].clone(), v.get("details").cloned())),
            )
        });
        let Some(opa) = opa else {
            disagreements.push(format!("{}: OPA answered {o}", case.name));
            continue;
        };
        violating += usize::from(!opa.is_empty());
        // As admission and `assay check` evaluate it (the compiled template, its inventory).
        let template = case.template.with_inventory(&case.inventory);
        let review = assay_policy::rego::to_rego(&case.input["review"]);
        let parameters = assay_policy::rego::to_rego(&case.input["parameters"]);
        let gatekeeper = template
            .violations(&review, &parameters)
            .map(|v| violations_of(v.into_iter().map(|(m, d)| (Value::String(m), d))))
            .map_err(|e| e.to_string());
        // And as `assay policy eval` does: the v0 modules and the same query.
        let data = json!({"inventory": case.inventory});
        let query = assay_policy::query::evaluate(&case.modules, &data, Some(&case.input), &oracle_case.query)
            .map(|a| {
                let rows = a.document["result"].as_array().cloned().unwrap_or_default();
                let set = rows.first().map(|r| r["bindings"]["x"].clone()).unwrap_or(Value::Null);
                violations_of(
                    set.as_array().into_iter().flatten().map(|v| (v["msg"].clone(), v.get("details").cloned())),
                )
            })
            .map_err(|e| e.to_string());
        for (how, ours) in [("as a template", gatekeeper), ("through policy eval", query)] {
            if ours.as_ref() != Ok(&opa) {
                disagreements.push(format!("{} ({how}):\n  assay {ours:?}\n  OPA   {opa:?}", case.name));
            }
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} evaluations disagree with OPA:\n{}",
        disagreements.len(),
        cases.len() * 2,
        disagreements.join("\n")
    );
    assert!(violating * 4 >= cases.len(), "only {violating} of {} cases have violations", cases.len());
}
