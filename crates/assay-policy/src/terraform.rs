//! Terraform and OpenTofu plans judged by the estate's policies: whole-plan rules (packages
//! under `terraform`, `input` the plan document, as conftest runs them) and per-resource rules
//! (packages under `terraform.resources`, `input` one element of `resource_changes`). Each
//! finding is placed on the resource it is about, at the `.tf` line that declares it when the
//! configuration is in the estate.

use assay_estate::terraform::{Configuration, Plan};
use assay_estate::{Diagnostic, Severity};
use serde_json::Value;

use crate::{Evaluation, PolicySet};

/// One thing judged: a resource change of a plan, or the plan itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    /// The file findings point at: the `.tf` file that declares the resource, else the plan.
    pub path: String,
    /// Its 1-based line.
    pub line: u32,
    /// The resource's address, or for findings about the plan as a whole, `plan <path>`.
    pub object: String,
    /// What the policies said.
    pub evaluation: Evaluation,
}

/// The address a whole-plan finding is about: the longest address of the plan that its message
/// or details name, as conftest policies name the resource they deny.
fn about(plan: &Plan, message: &str, details: Option<&Value>) -> Option<usize> {
    let details = details.map(Value::to_string).unwrap_or_default();
    let mentions = |text: &str, address: &str| {
        text.match_indices(address).any(|(at, _)| {
            let after = text[at + address.len()..].chars().next();
            let before = text[..at].chars().next_back();
            let boundary = |c: Option<char>| c.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.'));
            boundary(before) && (boundary(after) || after == Some('['))
        })
    };
    plan.changes
        .iter()
        .enumerate()
        .filter(|(_, c)| mentions(message, &c.address) || mentions(&details, &c.address))
        .max_by_key(|(_, c)| c.address.len())
        .map(|(i, _)| i)
}

/// Judges every plan: one [`Judged`] per resource change (even without findings, so that a
/// verdict lists what it checked), plus one for the plan when a whole-plan finding names no
/// resource of it. Drift found by the plan (`resource_drift`) comes back as warnings.
pub fn judge(policies: &PolicySet, config: &Configuration, plans: &[&Plan]) -> (Vec<Judged>, Vec<Diagnostic>) {
    let mut out = Vec::new();
    let mut diagnostics = Vec::new();
    let empty = Vec::new();
    for plan in plans {
        let listed = plan.document.get("resource_changes").and_then(Value::as_array).unwrap_or(&empty);
        let inputs: Vec<&Value> = plan.changes.iter().filter_map(|c| listed.get(c.position)).collect();
        let mut evaluations = if inputs.len() == plan.changes.len() {
            policies.evaluate_resource_changes(&inputs)
        } else {
            vec![Evaluation::default(); plan.changes.len()]
        };
        let mut whole = Evaluation::default();
        let evaluation = policies.evaluate_plan(&plan.document);
        whole.errors = evaluation.errors;
        for finding in evaluation.findings {
            match about(plan, &finding.message, finding.details.as_ref()) {
                Some(i) => evaluations[i].findings.push(finding),
                None => whole.findings.push(finding),
            }
        }
        let first = out.len();
        for (change, evaluation) in plan.changes.iter().zip(evaluations) {
            let (path, line) = config.place(plan, change);
            out.push(Judged { path, line, object: change.address.clone(), evaluation });
        }
        if !whole.findings.is_empty() || !whole.errors.is_empty() || plan.changes.is_empty() {
            // A plan worked out from `.tf` files is named by its directory and shown at its
            // first file.
            let (path, object) = match &plan.root {
                Some(root) => (
                    config.files.get(root).and_then(|f| f.first()).map_or(root.clone(), |f| f.path.clone()),
                    format!("configuration {root}"),
                ),
                None => (plan.path.clone(), format!("plan {}", plan.path)),
            };
            out.insert(first, Judged { path, line: 1, object, evaluation: whole });
        }
        for drifted in &plan.drift {
            let (path, line) = config.place(plan, drifted);
            let fields = changed_fields(drifted.before.as_ref(), drifted.after.as_ref());
            let what = if fields.is_empty() { String::new() } else { format!(": {}", fields.join(", ")) };
            let moved = drifted.previous_address.as_ref().map(|p| format!(" (moved from {p})")).unwrap_or_default();
            diagnostics.push(
                Diagnostic {
                    severity: Severity::Warning,
                    path,
                    line: None,
                    column: None,
                    message: format!(
                        "{}{moved} was changed outside Terraform since the last apply ({}, {}){what}",
                        drifted.address,
                        drifted.action.as_str(),
                        plan.path
                    ),
                }
                .at(line, None),
            );
        }
    }
    (out, diagnostics)
}

/// The top-level attributes whose values differ between `before` and `after`.
fn changed_fields(before: Option<&Value>, after: Option<&Value>) -> Vec<String> {
    let empty = serde_json::Map::new();
    let b = before.and_then(Value::as_object).unwrap_or(&empty);
    let a = after.and_then(Value::as_object).unwrap_or(&empty);
    let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter().filter(|k| b.get(*k) != a.get(*k)).cloned().collect()
}
