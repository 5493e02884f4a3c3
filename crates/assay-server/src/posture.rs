//! The posture of the active revision: its verdict (the same computation as `assay check`),
//! where its violations gather (by policy, namespace and file), what was refused, and the
//! drift watch's counts. Shared by `GET /api/v1/posture` and the posture page.

use std::collections::BTreeMap;
use std::sync::Arc;

use assay_estate::settings::EnforcementAction;
use assay_verdict::judge::{self, Judge};
use assay_verdict::{Verdict, Violation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::active::Active;
use crate::state::{State, lock};

/// The active revision's verdict, worked out once per revision (on a blocking thread: it
/// evaluates every policy over every object). `Err` says why it could not be worked out.
pub(crate) async fn verdict(active: Arc<Active>) -> Result<Arc<Verdict>, String> {
    if let Some(v) = active.verdict.get() {
        return Ok(Arc::clone(v));
    }
    tokio::task::spawn_blocking(move || {
        Arc::clone(active.verdict.get_or_init(|| {
            let _span = tracing::info_span!("posture", revision = %active.revision).entered();
            Arc::new(judge::judge(&active.whole_estate(), Judge { today: today(), ..Judge::default() }))
        }))
    })
    .await
    .map_err(|e| format!("judging the active revision failed: {e}"))
}

/// Days since 1970-01-01, by the system clock (the day budgets are taken on).
fn today() -> i64 {
    assay_record::Time::now().0.timestamp().div_euclid(86_400)
}

/// A query parameter left empty (a form's blank field) is not given.
pub(crate) fn empty_as_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v: Option<String> = Option::deserialize(d)?;
    Ok(v.filter(|s| !s.trim().is_empty()))
}

/// Which violations to list: each filter, when given, must match.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
pub(crate) struct Filter {
    /// A policy's identifier (`data.k8s.labels.deny`, `K8sRequiredLabels/owner`).
    #[serde(default, deserialize_with = "empty_as_none", skip_serializing_if = "Option::is_none")]
    pub(crate) policy: Option<String>,
    /// A namespace; `-` for cluster-scoped objects and Terraform resources.
    #[serde(default, deserialize_with = "empty_as_none", skip_serializing_if = "Option::is_none")]
    pub(crate) namespace: Option<String>,
    /// A file of the estate.
    #[serde(default, deserialize_with = "empty_as_none", skip_serializing_if = "Option::is_none")]
    pub(crate) file: Option<String>,
    /// `deny`, `warn` or `dryrun`.
    #[serde(default, deserialize_with = "empty_as_none", skip_serializing_if = "Option::is_none")]
    pub(crate) action: Option<String>,
}

impl Filter {
    pub(crate) fn matches(&self, v: &Violation) -> bool {
        self.policy.as_deref().is_none_or(|p| v.policy.id() == p)
            && self.namespace.as_deref().is_none_or(|n| namespace(&v.object) == n)
            && self.file.as_deref().is_none_or(|f| v.path == f)
            && self.action.as_deref().is_none_or(|a| v.action.as_str() == a)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.policy.is_none() && self.namespace.is_none() && self.file.is_none() && self.action.is_none()
    }
}

/// The namespace of an object as a verdict names it (`Kind[.group]/namespace/name`); `-` for
/// one without (cluster-scoped objects, Terraform resources).
pub(crate) fn namespace(object: &str) -> &str {
    let parts: Vec<&str> = object.splitn(3, '/').collect();
    if parts.len() == 3 && !parts[0].contains(' ') && !object.starts_with("module.") { parts[1] } else { "-" }
}

/// Violations counted by one key, most first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Hotspot {
    pub(crate) key: String,
    pub(crate) deny: usize,
    pub(crate) warn: usize,
    pub(crate) dryrun: usize,
}

impl Hotspot {
    pub(crate) fn total(&self) -> usize {
        self.deny + self.warn + self.dryrun
    }
}

fn count_by(violations: &[&Violation], key: impl Fn(&Violation) -> String) -> Vec<Hotspot> {
    let mut by: BTreeMap<String, Hotspot> = BTreeMap::new();
    for v in violations {
        let k = key(v);
        let h = by.entry(k.clone()).or_insert(Hotspot { key: k, deny: 0, warn: 0, dryrun: 0 });
        match v.action {
            EnforcementAction::Deny => h.deny += 1,
            EnforcementAction::Warn => h.warn += 1,
            EnforcementAction::Dryrun => h.dryrun += 1,
        }
    }
    let mut out: Vec<Hotspot> = by.into_values().collect();
    out.sort_by(|a, b| b.deny.cmp(&a.deny).then(b.total().cmp(&a.total())).then_with(|| a.key.cmp(&b.key)));
    out
}

/// Where the violations gather.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Hotspots {
    pub(crate) policies: Vec<Hotspot>,
    pub(crate) namespaces: Vec<Hotspot>,
    pub(crate) files: Vec<Hotspot>,
}

pub(crate) fn hotspots(violations: &[&Violation]) -> Hotspots {
    Hotspots {
        policies: count_by(violations, |v| v.policy.id()),
        namespaces: count_by(violations, |v| namespace(&v.object).to_string()),
        files: count_by(violations, |v| v.path.clone()),
    }
}

/// `GET /api/v1/posture`: the document the posture page shows.
pub(crate) async fn document(state: &State, filter: &Filter) -> Result<Value, String> {
    let active = state.active();
    let verdict = verdict(Arc::clone(&active)).await?;
    let listed: Vec<&Violation> = verdict.violations.iter().filter(|v| filter.matches(v)).collect();
    let refused: Vec<Value> = {
        let o = lock(&state.observed);
        o.refused
            .iter()
            .rev()
            .map(|r| json!({"revision": r.revision, "time": r.time.to_string(), "reasons": r.reasons}))
            .collect()
    };
    let drift = state.drift().and_then(|d| d.current.read().ok().and_then(|c| c.clone())).map(|obs| {
        json!({"cluster": obs.report.cluster, "revision": obs.revision, "time": obs.time, "counts": obs.report.counts,
               "audit_violations": obs.report.audit.as_ref().map(Vec::len)})
    });
    Ok(json!({
        "estate": {
            "name": active.name,
            "revision": active.revision,
            "commit": active.commit,
            "source": state.source,
            "active_since": active.since,
            "require_signed": active.require_signed,
        },
        "summary": verdict.summary,
        "filter": filter,
        "hotspots": hotspots(&verdict.violations.iter().collect::<Vec<_>>()),
        "violations": listed,
        "diagnostics": verdict.diagnostics,
        "cost": verdict.cost.as_ref().map(|c| json!({
            "currency": c.currency, "monthly": c.monthly, "by_cost_center": c.by_cost_center,
            "budget_findings": c.budget_findings,
        })),
        "refused": refused,
        "drift": drift,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_of_objects() {
        assert_eq!(namespace("Deployment.apps/ml-serving/finetune-worker"), "ml-serving");
        assert_eq!(namespace("Namespace/research"), "-");
        assert_eq!(namespace(r#"module.storage.aws_s3_bucket.dataset["a/b/c"]"#), "-");
        assert_eq!(namespace("aws_s3_bucket.scratch"), "-");
    }
}
