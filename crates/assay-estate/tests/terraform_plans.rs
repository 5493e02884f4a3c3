//! Every plan of `../shared/conformance/terraform` (Infracost's real plans, format versions 0.1
//! to 1.x, and OpenTofu's golden `tofu show -json` outputs) is read: its resource changes, their
//! addresses and actions are those of the file; the plan that errored says so; drift is read.

use std::path::{Path, PathBuf};

use assay_estate::terraform::plan::{self, Action};
use serde_json::Value;

fn conformance() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/terraform");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("{} not found: Terraform conformance not run", dir.display());
        None
    }
}

fn plans(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir.join("plans"))
        .expect("conformance data")
        .map(|e| e.expect("conformance data").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    for entry in std::fs::read_dir(dir.join("opentofu-show-json")).expect("conformance data") {
        let p = entry.expect("conformance data").path().join("output.json");
        if p.is_file() {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The action a list of actions means, read independently of the crate.
fn expected(actions: &[Value]) -> &'static str {
    let a: Vec<&str> = actions.iter().map(|v| v.as_str().expect("conformance data")).collect();
    match a.as_slice() {
        ["no-op"] => "no-op",
        ["create"] => "create",
        ["update"] => "update",
        ["delete"] => "delete",
        ["read"] => "read",
        [_, _] => "replace",
        other => panic!("unexpected actions {other:?}"),
    }
}

#[test]
fn every_conformance_plan_is_read_with_its_changes_and_actions() {
    let Some(dir) = conformance() else { return };
    let files = plans(&dir);
    assert!(files.len() >= 27, "{} plans", files.len());
    let mut actions_seen = std::collections::BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("conformance data");
        let name = file.display().to_string();
        let document: Value = serde_json::from_str(&text).expect("conformance data");
        let (plan, diagnostics) = plan::parse(&name, &text);
        let plan = plan.unwrap_or_else(|| panic!("{name}: {diagnostics:?}"));
        let errored = document.get("errored").and_then(Value::as_bool).unwrap_or(false);
        assert_eq!(plan.errored, errored, "{name}");
        if errored {
            assert!(diagnostics.iter().any(|d| d.message.contains("the plan errored")), "{name}: {diagnostics:?}");
        } else {
            assert!(diagnostics.is_empty(), "{name}: {diagnostics:?}");
        }
        for (key, read) in [("resource_changes", &plan.changes), ("resource_drift", &plan.drift)] {
            let listed = document.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
            assert_eq!(read.len(), listed.len(), "{name} {key}");
            for (change, raw) in read.iter().zip(&listed) {
                assert_eq!(change.address, raw["address"].as_str().expect("conformance data"), "{name}");
                assert_eq!(change.kind, raw["type"].as_str().expect("conformance data"), "{name}");
                let want = expected(raw["change"]["actions"].as_array().expect("conformance data"));
                assert_eq!(change.action.as_str(), want, "{name} {}", change.address);
                actions_seen.insert(want);
            }
        }
    }
    // The corpus exercises creation, update, deletion, replacement and no-op.
    for a in ["create", "update", "delete", "replace", "no-op"] {
        assert!(actions_seen.contains(a), "no {a} in the corpus");
    }
}

#[test]
fn drift_moves_and_module_addresses() {
    let Some(dir) = conformance() else { return };
    let read = |folder: &str| {
        let path = dir.join("opentofu-show-json").join(folder).join("output.json");
        plan::parse(folder, &std::fs::read_to_string(path).expect("conformance data")).0.expect("conformance data")
    };
    let drift = read("drift");
    assert_eq!(drift.drift.len(), 1);
    assert_eq!(drift.drift[0].action, Action::Update);
    let moved = read("moved-drift");
    assert_eq!(moved.drift[0].previous_address.as_deref(), Some("test_instance.should_refresh"));
    let replace = read("requires-replace");
    assert_eq!(replace.changes[0].action, Action::Replace);
    assert_eq!(replace.changes[0].reason.as_deref(), Some("replace_because_cannot_update"));
    let modules = read("nested-modules");
    let change = &modules.changes[0];
    assert!(change.address.starts_with("module."), "{}", change.address);
    assert!(!change.module_address.is_empty());
    assert!(change.config_address().ends_with(&format!("{}.{}", change.kind, change.name)));
    // A pretty-printed plan places each change on its own line.
    assert!(modules.changes[0].line > 1);
}
