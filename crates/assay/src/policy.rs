//! `assay policy test`, `assay policy verify` and `assay policy eval`: file discovery and output
//! around the runners in `assay-policy`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use assay_estate::settings::RegoVersion;
use assay_estate::source::relative;
use assay_estate::{Diagnostic, Severity, manifest};
use assay_policy::rego::Module;
use assay_policy::testing::{self, Outcome};
use assay_policy::{merge_data, suite};

use crate::{EvalFormat, PolicyEvalArgs, PolicyTestArgs, PolicyVerifyArgs};

const RULE: &str = "--------------------------------------------------------------------------------";

fn walk(root: &Path) -> impl Iterator<Item = walkdir::DirEntry> {
    walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
}

fn millis(d: Duration) -> String {
    format!("{:.3}ms", d.as_secs_f64() * 1000.0)
}

/// Reads Rego modules and data documents under `dir`. In an estate (a directory with
/// `assay.yaml`) its settings decide each file's Rego version.
fn load_policies(dir: &Path, v0: bool, diags: &mut Vec<Diagnostic>) -> Result<(Vec<Module>, serde_json::Value)> {
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let settings = match std::fs::read_to_string(dir.join("assay.yaml")) {
        Ok(text) => {
            let (settings, d) = assay_estate::Settings::parse("assay.yaml", &text);
            diags.extend(d);
            Some(settings)
        }
        Err(_) => None,
    };
    let mut modules = Vec::new();
    let mut data = serde_json::Value::Object(Default::default());
    for entry in walk(dir) {
        let rel = relative(dir, entry.path());
        let name = entry.file_name().to_string_lossy();
        let is_rego = name.ends_with(".rego");
        let is_data = matches!(name.as_ref(), "data.json" | "data.yaml" | "data.yml");
        if !is_rego && !is_data {
            continue;
        }
        let text = match std::fs::read_to_string(entry.path()) {
            Ok(t) => t,
            Err(e) => {
                diags.push(Diagnostic::error(&rel, format!("cannot read: {e}")));
                continue;
            }
        };
        if is_rego {
            let version = match &settings {
                Some(s) => s.rego_version_of(&rel, &text),
                None if v0 => RegoVersion::V0,
                None => assay_estate::Settings::default().rego_version_of(&rel, &text),
            };
            modules.push(Module { path: rel, text, version });
        } else {
            let (docs, d) = manifest::parse_documents(&rel, &text);
            diags.extend(d);
            // In an estate, data is rooted as `assay check` roots it.
            let prefix = assay_estate::PolicyData::prefix_of(&rel, settings.is_some());
            for doc in docs {
                merge_data(&mut data, &prefix, doc.value, &rel, diags);
            }
        }
    }
    Ok((modules, data))
}

pub(crate) fn test(args: PolicyTestArgs) -> Result<u8> {
    let mut diags = Vec::new();
    let (modules, data) = load_policies(&args.dir, args.v0_compatible, &mut diags)?;
    let results = testing::run(&modules, &data, &mut diags);
    for d in &diags {
        eprintln!("{d}");
    }
    let failed: Vec<_> = results.iter().filter(|r| matches!(r.outcome, Outcome::Fail | Outcome::Error(_))).collect();
    let label = |o: &Outcome| match o {
        Outcome::Pass => "PASS",
        Outcome::Fail => "FAIL",
        Outcome::Error(_) => "ERROR",
        Outcome::Skip => "SKIPPED",
    };
    if !failed.is_empty() {
        println!("FAILURES\n{RULE}");
        for r in &failed {
            println!("{}: {} ({})", r.name, label(&r.outcome), millis(r.duration));
            if let Outcome::Error(e) = &r.outcome {
                println!("  {e}");
            }
            if args.verbose && !r.prints.is_empty() {
                println!();
                for p in &r.prints {
                    println!("  {p}");
                }
            }
            println!();
        }
        println!("SUMMARY\n{RULE}");
    }
    let mut file = None;
    for r in &results {
        let show = args.verbose || !matches!(r.outcome, Outcome::Pass);
        if !show {
            continue;
        }
        if file != Some(&r.file) {
            println!("{}:", r.file);
            file = Some(&r.file);
        }
        println!("{}: {} ({})", r.name, label(&r.outcome), millis(r.duration));
    }
    let count = |f: fn(&Outcome) -> bool| results.iter().filter(|r| f(&r.outcome)).count();
    let (pass, fail, error, skip) = (
        count(|o| *o == Outcome::Pass),
        count(|o| *o == Outcome::Fail),
        count(|o| matches!(o, Outcome::Error(_))),
        count(|o| *o == Outcome::Skip),
    );
    let total = results.len();
    if total > 0 {
        println!("{RULE}");
        for (name, n) in [("PASS", pass), ("FAIL", fail), ("ERROR", error), ("SKIPPED", skip)] {
            if n > 0 {
                println!("{name}: {n}/{total}");
            }
        }
    } else {
        eprintln!("no tests found in {}", args.dir.display());
    }
    let skipped = if skip > 0 { format!(", {skip} skipped") } else { String::new() };
    println!("{pass} passed, {} failed{skipped}", fail + error);
    let input_errors = diags.iter().any(|d| d.severity == Severity::Error);
    Ok(if fail + error > 0 {
        1
    } else if input_errors {
        2
    } else {
        0
    })
}

fn find_suites(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.is_dir() {
        bail!("{} does not exist", path.display());
    }
    let mut out = Vec::new();
    for entry in walk(path) {
        let name = entry.file_name().to_string_lossy();
        if !(name.ends_with(".yaml") || name.ends_with(".yml")) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(entry.path()) else { continue };
        if text.contains("Suite") && suite::is_suite(&text) {
            out.push(entry.path().to_path_buf());
        }
    }
    Ok(out)
}

/// Known gaps: `suite/test/case  # why` per line. Those cases are expected to fail.
fn read_expected_failures(path: Option<&Path>) -> Result<BTreeMap<String, String>> {
    let Some(path) = path else { return Ok(BTreeMap::new()) };
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let (key, why) = line.split_once('#').unwrap_or((line, ""));
        let key = key.trim();
        if key.is_empty() {
            continue;
        }
        if key.split('/').count() != 3 {
            bail!("{}:{}: expected suite/test/case, found {key:?}", path.display(), i + 1);
        }
        out.insert(key.to_string(), why.trim().to_string());
    }
    Ok(out)
}

pub(crate) fn verify(args: PolicyVerifyArgs) -> Result<u8> {
    let suites = find_suites(&args.dir)?;
    if suites.is_empty() {
        bail!("no suite files (kind: Suite) found under {}", args.dir.display());
    }
    let mut expected = read_expected_failures(args.expect_fail.as_deref())?;
    let (mut passed, mut failed, mut skipped, mut known) = (0usize, 0usize, 0usize, 0usize);
    let mut any_failed = false;
    for path in suites {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {shown}"))?;
        let mut read = |p: &str| std::fs::read_to_string(p).map_err(|e| format!("reading {p}: {e}"));
        let result = suite::run(&shown, &text, &mut read);
        if let Some(e) = &result.error {
            println!("FAIL\t{shown}\t{:.3}s\n    {e}", result.duration.as_secs_f64());
            any_failed = true;
            failed += 1;
            continue;
        }
        let mut suite_failed = false;
        for test in &result.tests {
            if args.verbose {
                println!("=== RUN   {}", test.name);
            }
            if test.skipped {
                skipped += 1;
                if args.verbose {
                    println!("--- SKIP: {}", test.name);
                }
                continue;
            }
            let mut lines = Vec::new();
            let mut test_failed = false;
            for case in &test.cases {
                let key = format!("{}/{}/{}", result.name, test.name, case.name);
                let gap = expected.remove(&key);
                let took = case.duration.as_secs_f64();
                match (&case.failure, case.skipped, gap) {
                    (_, true, _) => {
                        skipped += 1;
                        if args.verbose {
                            lines.push(format!("    --- SKIP: {}", case.name));
                        }
                    }
                    (None, false, None) => {
                        passed += 1;
                        if args.verbose {
                            lines.push(format!("    --- PASS: {} ({took:.3}s)", case.name));
                        }
                    }
                    (Some(_), false, Some(why)) => {
                        known += 1;
                        lines.push(format!("    --- XFAIL: {} (known gap: {why})", case.name));
                    }
                    (None, false, Some(_)) => {
                        failed += 1;
                        test_failed = true;
                        lines.push(format!("    --- XPASS: {} ({took:.3}s)", case.name));
                        lines.push(format!("        listed as a known gap but passed: remove {key} from the list"));
                    }
                    (Some(f), false, None) => {
                        failed += 1;
                        test_failed = true;
                        lines.push(format!("    --- FAIL: {} ({took:.3}s)", case.name));
                        lines.extend(f.lines().map(|l| format!("        {l}")));
                    }
                }
            }
            let took = test.duration.as_secs_f64();
            if test_failed {
                println!("--- FAIL: {} ({took:.3}s)", test.name);
            } else if args.verbose || lines.iter().any(|l| l.contains("XFAIL")) {
                println!("--- PASS: {} ({took:.3}s)", test.name);
            }
            for l in lines.iter().filter(|l| test_failed || args.verbose || l.contains("XFAIL")) {
                println!("{l}");
            }
            suite_failed |= test_failed;
        }
        any_failed |= suite_failed;
        println!("{}\t{shown}\t{:.3}s", if suite_failed { "FAIL" } else { "ok" }, result.duration.as_secs_f64());
    }
    for key in expected.keys() {
        eprintln!("warning: known gap {key} matches no case");
    }
    println!("{}", if any_failed { "FAIL" } else { "PASS" });
    if known > 0 {
        println!("{known} known gaps failed as expected (see docs/compatibility.md)");
    }
    let skipped = if skipped > 0 { format!(", {skipped} skipped") } else { String::new() };
    println!("{passed} passed, {failed} failed{skipped}");
    Ok(u8::from(any_failed))
}

/// Reads a JSON or YAML document from a file, or standard input for `-`.
fn read_document(path: &Path) -> Result<serde_json::Value> {
    let (name, text) = if path == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).context("reading standard input")?;
        ("stdin".to_string(), text)
    } else {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        (path.display().to_string(), text)
    };
    let (mut docs, diags) = manifest::parse_documents(&name, &text);
    if let Some(d) = diags.first() {
        bail!("{d}");
    }
    match docs.len() {
        1 => Ok(docs.remove(0).value),
        0 => bail!("{name}: no document"),
        n => bail!("{name}: {n} documents; the input is one"),
    }
}

pub(crate) fn eval(args: PolicyEvalArgs) -> Result<u8> {
    let mut modules = Vec::new();
    let mut data = serde_json::Value::Object(Default::default());
    let mut diags = Vec::new();
    for path in &args.data {
        let shown = path.display().to_string();
        if path.is_dir() {
            let (m, d) = load_policies(path, args.v0_compatible, &mut diags)?;
            modules.extend(m.into_iter().map(|mut m| {
                m.path = format!("{}/{}", shown.trim_end_matches('/'), m.path);
                m
            }));
            merge_data(&mut data, &[], d, &shown, &mut diags);
        } else if shown.ends_with(".rego") {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {shown}"))?;
            // As OPA 1.x: Rego v1 unless told otherwise.
            let version = if args.v0_compatible { RegoVersion::V0 } else { RegoVersion::V1 };
            modules.push(Module { path: shown, text, version });
        } else {
            let value = read_document(path)?;
            merge_data(&mut data, &[], value, &shown, &mut diags);
        }
    }
    for d in &diags {
        eprintln!("{d}");
    }
    if diags.iter().any(|d| d.severity == Severity::Error) {
        return Ok(2);
    }
    let input = args.input.as_deref().map(read_document).transpose()?;
    let answer = match assay_policy::query::evaluate(&modules, &data, input.as_ref(), &args.query) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return Ok(2);
        }
    };
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let mut text = String::new();
    match args.format {
        EvalFormat::Json => text.push_str(&pretty(&answer.document)),
        EvalFormat::Pretty => {
            let results = answer.document["result"].as_array().cloned().unwrap_or_default();
            let single = results.len() == 1
                && results[0]["expressions"].as_array().is_some_and(|e| e.len() == 1)
                && results[0].get("bindings").is_none();
            if results.is_empty() {
                text.push_str("undefined");
            } else if single {
                text.push_str(&pretty(
                    assay_policy::query::first_value(&answer.document).unwrap_or(&serde_json::Value::Null),
                ));
            } else {
                let shown: Vec<String> = results
                    .iter()
                    .map(|r| match r.get("bindings") {
                        Some(b) => pretty(b),
                        None => pretty(&serde_json::json!(
                            r["expressions"].as_array().map(|e| e.iter().map(|x| &x["value"]).collect::<Vec<_>>())
                        )),
                    })
                    .collect();
                text.push_str(&shown.join("\n"));
            }
        }
    }
    text.push('\n');
    // A reader that stops early (`| head`) is not an error.
    let mut out = std::io::stdout().lock();
    if let Err(e) = std::io::Write::write_all(&mut out, text.as_bytes()).and_then(|()| std::io::Write::flush(&mut out))
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(e).context("writing the answer");
    }
    Ok(u8::from((args.fail && !answer.defined) || (args.fail_defined && answer.defined)))
}
