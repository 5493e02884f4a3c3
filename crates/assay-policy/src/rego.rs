//! Building regorus engines from Rego sources, with compile errors turned into diagnostics.
//!
//! regorus reports errors as text (`--> file:line:col`, the source line, `error: message`);
//! this module reads the location out of it so that a broken file is named, not fatal, and the
//! other files still compile.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use assay_estate::{Diagnostic, settings::RegoVersion};
use regex::Regex;

/// A Rego source to compile.
#[derive(Debug, Clone)]
pub struct Module {
    /// Path shown in diagnostics.
    pub path: String,
    /// The Rego text.
    pub text: String,
    /// Its syntax version.
    pub version: RegoVersion,
}

/// A package added to every engine so that rule paths can be listed through the public
/// `compile_with_entrypoint` API, which needs one rule known to exist.
const MARKER_PACKAGE: &str = "package assay_internal_marker\n\nmarker := true\n";
const MARKER_RULE: &str = "data.assay_internal_marker.marker";

static LOCATION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"--> (.+?):(\d+):(\d+)").unwrap_or_else(|_| unreachable!("static regex")));

static PACKAGE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?m)^\s*package\s+([^\s#]+)").unwrap_or_else(|_| unreachable!("static regex")));

/// The package a Rego text declares (`a.b` for `package a.b`), read from its `package` line.
pub fn package_of(text: &str) -> Option<String> {
    PACKAGE.captures(text).map(|c| c[1].to_string())
}

/// A diagnostic from a regorus error: the location it names, or `fallback_path` when none.
pub(crate) fn diagnostic_from_error(fallback_path: &str, err: &dyn std::fmt::Display) -> Diagnostic {
    let text = format!("{err:#}");
    let message = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| text.lines().next().unwrap_or("unknown error").to_string());
    match LOCATION.captures(&text) {
        Some(c) => {
            let line = c[2].parse().unwrap_or(1);
            let column = c[3].parse().ok();
            Diagnostic::error(&c[1], message).at(line, column)
        }
        None => Diagnostic::error(fallback_path, message),
    }
}

/// An engine with the modules that compiled, the rule paths it defines, and diagnostics for the
/// modules that did not.
#[derive(Debug, Clone)]
pub struct CompiledModules {
    /// The engine, ready to evaluate.
    pub engine: regorus::Engine,
    /// Every rule path, such as `data.k8s.deny`.
    pub rules: BTreeSet<String>,
    /// Paths of the modules that compiled.
    pub modules: Vec<String>,
}

/// A module's text as regorus is given it: rewritten where regorus would read it differently
/// from OPA ([`crate::rewrite`]), lines unchanged.
fn source(module: &Module) -> String {
    crate::rewrite::for_regorus(&module.text, module.version == RegoVersion::V0).into_owned()
}

/// Compiles modules into one engine with `data`. A module that fails to parse, or whose rules
/// fail to compile together with the others, is left out with a diagnostic; the rest compile.
pub fn compile(modules: &[Module], data: &regorus::Value, diags: &mut Vec<Diagnostic>) -> CompiledModules {
    let mut included: Vec<&Module> = Vec::new();
    for module in modules {
        let mut probe = regorus::Engine::new();
        probe.set_rego_v0(module.version == RegoVersion::V0);
        match probe.add_policy(module.path.clone(), source(module)) {
            Ok(_) => included.push(module),
            Err(e) => {
                let mut d = diagnostic_from_error(&module.path, &e);
                if module.version == RegoVersion::V1 && parses_as_v0(module) {
                    d.message.push_str(" (the file parses as Rego v0: add `# assay: rego.v0` or set rego_version)");
                }
                diags.push(d);
            }
        }
    }
    // Whole-program errors (conflicting rules, unknown functions) surface only when the modules
    // are compiled together: drop the module they point at and try again.
    loop {
        let mut engine = build_engine(&included, data);
        match engine.compile_with_entrypoint(&MARKER_RULE.into()) {
            Ok(compiled) => {
                let rules = compiled
                    .get_rules()
                    .keys()
                    .filter(|k| !k.starts_with("data.assay_internal_marker"))
                    .cloned()
                    .collect();
                return CompiledModules { engine, rules, modules: included.iter().map(|m| m.path.clone()).collect() };
            }
            Err(e) => {
                let d = diagnostic_from_error("policies", &e);
                let before = included.len();
                included.retain(|m| m.path != d.path);
                diags.push(d);
                if included.len() == before {
                    // The error names no module we can leave out: compile nothing rather than
                    // evaluate a policy set that is not the one written.
                    included.clear();
                }
            }
        }
    }
}

fn parses_as_v0(module: &Module) -> bool {
    let mut probe = regorus::Engine::new();
    probe.set_rego_v0(true);
    probe.add_policy(module.path.clone(), crate::rewrite::for_regorus(&module.text, true).into_owned()).is_ok()
}

/// Builtins OPA has and regorus does not, added as extensions (checked against OPA itself by
/// the differential test): `crypto.md5`, `crypto.sha1`, `crypto.sha256`, `crypto.sha512`, each the
/// lower-case hex digest of a string.
fn add_builtins(engine: &mut regorus::Engine) {
    fn digest<D: sha2::Digest>(args: Vec<regorus::Value>) -> anyhow::Result<regorus::Value> {
        let [regorus::Value::String(text)] = args.as_slice() else {
            anyhow::bail!("operand 1 must be string");
        };
        let hex: String = D::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
        Ok(regorus::Value::from(hex))
    }
    type Builtin = fn(Vec<regorus::Value>) -> anyhow::Result<regorus::Value>;
    let builtins: [(&str, Builtin); 4] = [
        ("crypto.md5", digest::<md5::Md5>),
        ("crypto.sha1", digest::<sha1::Sha1>),
        ("crypto.sha256", digest::<sha2::Sha256>),
        ("crypto.sha512", digest::<sha2::Sha512>),
    ];
    for (name, f) in builtins {
        // Adding fails only for a name added twice.
        let _ = engine.add_extension(name.to_string(), 1, Box::new(f));
    }
}

fn build_engine(modules: &[&Module], data: &regorus::Value) -> regorus::Engine {
    let mut engine = regorus::Engine::new();
    add_builtins(&mut engine);
    for module in modules {
        engine.set_rego_v0(module.version == RegoVersion::V0);
        // Each module parsed on its own above; the same text parses again.
        let _ = engine.add_policy(module.path.clone(), source(module));
    }
    engine.set_rego_v0(false);
    let _ = engine.add_policy("assay-internal-marker.rego".to_string(), MARKER_PACKAGE.to_string());
    // Values share their contents, so a large data document (an inventory) is not copied.
    let _ = engine.add_data(data.clone());
    engine
}

/// Converts JSON to a regorus value.
pub fn to_rego(value: &serde_json::Value) -> regorus::Value {
    regorus::Value::from(value.clone())
}

/// Converts a regorus value to JSON; sets become arrays, undefined becomes `None`.
pub fn to_json(value: &regorus::Value) -> Option<serde_json::Value> {
    if *value == regorus::Value::Undefined {
        return None;
    }
    value.to_json_str().ok().and_then(|s| serde_json::from_str(&s).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(path: &str, text: &str) -> Module {
        Module { path: path.into(), text: text.into(), version: RegoVersion::V1 }
    }

    #[test]
    fn parse_error_names_file_and_line_and_the_rest_compiles() {
        let mut diags = Vec::new();
        let compiled = compile(
            &[
                module("a.rego", "package a\n\ndeny contains \"x\" if {\n  input.x ==\n}\n"),
                module("b.rego", "package b\n\ndeny contains \"y\" if true\n"),
            ],
            &regorus::Value::new_object(),
            &mut diags,
        );
        assert_eq!(compiled.modules, vec!["b.rego"]);
        assert!(compiled.rules.contains("data.b.deny"), "{:?}", compiled.rules);
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].path, "a.rego");
        assert!(diags[0].line.is_some_and(|l| l >= 4), "{:?}", diags[0]);
    }

    #[test]
    fn v0_file_in_v1_mode_gets_a_hint() {
        let mut diags = Vec::new();
        compile(
            &[module("old.rego", "package old\ndeny[msg] { msg := \"x\" }\n")],
            &regorus::Value::new_object(),
            &mut diags,
        );
        assert_eq!(diags.len(), 1);
        assert!(diags[0].message.contains("parses as Rego v0"), "{}", diags[0]);
    }

    #[test]
    fn unknown_functions_are_runtime_errors_with_a_location() {
        // regorus resolves functions when it evaluates, so this compiles and fails per request.
        let mut diags = Vec::new();
        let compiled = compile(
            &[module("bad.rego", "package bad\n\ndeny contains msg if { msg := unknown_function(1) }\n")],
            &regorus::Value::new_object(),
            &mut diags,
        );
        assert!(diags.is_empty(), "{diags:?}");
        let mut engine = compiled.engine;
        let err = engine.eval_rule("data.bad.deny".to_string()).err().map(|e| diagnostic_from_error("?", &e));
        let err = err.unwrap_or_else(|| Diagnostic::error("?", "no error"));
        assert_eq!((err.path.as_str(), err.line), ("bad.rego", Some(3)), "{err}");
    }
}
