//! The whole judgement of an estate (and of a change to it): its cost, its policies over the
//! manifests and over Terraform, and the verdict. What `assay check` prints and what
//! `assay serve` shows for its active revision are the same computation.

use assay_cost::budgets::Billing;
use assay_estate::terraform::Plan;
use assay_estate::{Diagnostic, Estate, diff};
use assay_policy::PolicySet;

use crate::{CommitCheck, EstateRef, Evaluated, Subject, Verdict, VerdictInput};

/// What a judgement needs besides the estate.
#[derive(Debug, Default)]
pub struct Judge<'a> {
    /// The base revision, for a change.
    pub base: Option<&'a Estate>,
    /// Terraform plans given besides the estate's own (`--terraform-plan`).
    pub plans: &'a [Plan],
    /// Billing data that budgets are projected with.
    pub billing: Option<&'a Billing>,
    /// The day budgets are taken on (days since 1970-01-01).
    pub today: i64,
    /// Commit signature checks already made.
    pub commits: Vec<CommitCheck>,
    /// Diagnostics already found (reading the estate, signatures, usage).
    pub diagnostics: Vec<Diagnostic>,
}

/// The estate's name and revision as a verdict names them.
pub fn estate_ref(estate: &Estate) -> EstateRef {
    EstateRef { name: estate.settings.name.clone(), origin: estate.origin.clone() }
}

/// Judges `head` (against `with.base` when given).
pub fn judge(head: &Estate, with: Judge<'_>) -> Verdict {
    let mut diagnostics = with.diagnostics;
    let given: Vec<&Plan> = with.plans.iter().collect();
    let estimate = assay_cost::check::wanted(head).then(|| {
        let _span = tracing::info_span!("cost").entered();
        let estimate = assay_cost::check::estimate_with(head, with.base, &given, with.billing, with.today);
        diagnostics.extend(estimate.diagnostics.iter().cloned());
        estimate
    });
    let policies = tracing::info_span!("compile").in_scope(|| PolicySet::from_estate(head));
    diagnostics.extend(policies.diagnostics.iter().cloned());
    let evaluations = tracing::info_span!("evaluate", objects = head.manifests.len()).in_scope(|| match &estimate {
        Some(e) => policies.evaluate_objects_with(&head.manifests, &|i| e.inputs.get(i).map(|c| c.to_input())),
        None => policies.evaluate_objects(&head.manifests),
    });
    let head_plans: Vec<&Plan> = head.terraform_plans.iter().chain(given.iter().copied()).collect();
    let (head_terraform, drift) = tracing::info_span!("terraform", plans = head_plans.len())
        .in_scope(|| assay_policy::terraform::judge(&policies, &head.terraform, &head_plans));
    diagnostics.extend(drift);
    let head_subjects = subjects(head_terraform);
    let base_eval = with.base.map(|b| {
        let set = PolicySet::from_estate(b);
        let plans: Vec<&Plan> = b.terraform_plans.iter().collect();
        let (judged, _) = assay_policy::terraform::judge(&set, &b.terraform, &plans);
        (set.evaluate_objects(&b.manifests), subjects(judged), b)
    });
    crate::verdict(VerdictInput {
        estate: estate_ref(head),
        head: Evaluated { objects: &head.manifests, evaluations: &evaluations, subjects: &head_subjects },
        // Terraform's rules count when there is Terraform to judge.
        policies: policies.len() - if head_plans.is_empty() { policies.terraform_rules() } else { 0 },
        base: base_eval.as_ref().map(|(evals, subjects, b)| {
            (estate_ref(b), Evaluated { objects: &b.manifests, evaluations: evals, subjects })
        }),
        changes: with.base.map(|b| diff::changes(b, head)).unwrap_or_default(),
        commits: with.commits,
        diagnostics,
        cost: estimate.map(|e| e.report),
    })
}

/// Terraform's judged resources as the verdict's subjects.
fn subjects(judged: Vec<assay_policy::terraform::Judged>) -> Vec<(Subject, assay_policy::Evaluation)> {
    judged.into_iter().map(|j| (Subject { path: j.path, line: j.line, object: j.object }, j.evaluation)).collect()
}
