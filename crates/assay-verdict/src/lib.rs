//! The verdict: what assay says about an estate, or about a change between two revisions.
//!
//! A verdict is data first ([`Verdict`], serialized as the documented JSON of
//! `docs/verdict.md`); tables, SARIF, Markdown and JUnit are renderings of it ([`render`]).
//! Building one is a function over evaluated values: this crate reads no files and runs no
//! policies.

pub mod cost;
pub mod judge;
pub mod render;

use std::collections::{BTreeMap, HashSet};

use assay_estate::settings::EnforcementAction;
use assay_estate::{Diagnostic, FileChange, Object, Origin, Severity};
use assay_policy::{Evaluation, Finding, PolicyRef};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The version of the verdict's JSON shape.
pub const SCHEMA: &str = "assay.dev/verdict/v1";

/// Whether a violation is new in a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not present at the base revision.
    New,
    /// Present at the base revision too.
    Unchanged,
    /// Present at the base revision, gone now.
    Fixed,
}

/// One policy finding about one object, with where the object is written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    /// File of the object.
    pub path: String,
    /// Line where the object's document starts.
    pub line: u32,
    /// The object, as `Kind[.group]/[namespace/]name`.
    pub object: String,
    /// The rule or constraint.
    pub policy: PolicyRef,
    /// deny, warn or dryrun.
    pub action: EnforcementAction,
    /// The policy's message.
    pub message: String,
    /// Structured details from the policy, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
    /// With a base revision: new or unchanged (fixed ones are listed apart).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Stable identity across revisions: SHA-256 of path, object, policy and message.
    pub fingerprint: String,
}

/// An object that was checked (for renderings that list every check, such as JUnit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckedObject {
    /// File of the object.
    pub path: String,
    /// Line where its document starts.
    pub line: u32,
    /// The object's identity.
    pub object: String,
}

/// The signature check of one commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitCheck {
    /// Full commit id.
    pub commit: String,
    /// First line of its message.
    pub summary: String,
    /// Whether the signature is good and trusted.
    pub trusted: bool,
    /// What was found, in words.
    pub detail: String,
}

/// Which estate a verdict speaks of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EstateRef {
    /// `name` from `assay.yaml`, if set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where it was read from.
    pub origin: Origin,
}

/// Counts, for the one-line summary and for scripts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Whether the gate passes: nothing denied (or nothing newly denied, with a base), every
    /// commit trusted when signatures are required, and no errors.
    pub passed: bool,
    /// Objects checked.
    pub objects: usize,
    /// Rules and constraints evaluated.
    pub policies: usize,
    /// Violations with action deny.
    pub denied: usize,
    /// Violations with action warn.
    pub warnings: usize,
    /// Violations with action dryrun.
    pub dryrun: usize,
    /// With a base: violations not present at the base.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<usize>,
    /// With a base: violations present at the base and gone now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed: Option<usize>,
    /// With a base: violations present at both.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unchanged: Option<usize>,
    /// Commits whose signatures were checked.
    pub commits_checked: usize,
    /// Commits that are unsigned or not signed by a trusted signer.
    pub untrusted_commits: usize,
    /// Budgets the projected spend exceeds.
    pub budget_findings: usize,
    /// Diagnostics of severity error.
    pub errors: usize,
}

/// What assay says about an estate or a change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// The estate checked.
    pub estate: EstateRef,
    /// The base revision, when the verdict is about a change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<EstateRef>,
    /// Counts.
    pub summary: Summary,
    /// Every finding at the checked revision, deny first, by file and line.
    pub violations: Vec<Violation>,
    /// With a base: findings at the base that are gone.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fixed: Vec<Violation>,
    /// With a base: files added, modified and deleted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<FileChange>,
    /// Commit signature checks, when signatures were required.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub commits: Vec<CommitCheck>,
    /// Estimated cost, the change's delta and budget findings, when the estate has prices or
    /// budgets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<cost::CostReport>,
    /// Problems reading the estate or evaluating policies.
    pub diagnostics: Vec<Diagnostic>,
    /// Objects checked (not serialized: the summary counts them).
    #[serde(skip)]
    pub checked: Vec<CheckedObject>,
}

/// What a policy judged that is not a manifest: a Terraform resource change, or a whole plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The file a finding points at (the `.tf` file that declares the resource, else the plan).
    pub path: String,
    /// Its 1-based line.
    pub line: u32,
    /// What it is: a resource address (`module.net.aws_instance.web[0]`), or the plan's path.
    pub object: String,
}

/// One revision's objects and what the policies said about each, in the same order.
#[derive(Debug, Clone, Copy)]
pub struct Evaluated<'a> {
    /// The objects.
    pub objects: &'a [Object],
    /// One evaluation per object.
    pub evaluations: &'a [Evaluation],
    /// Other things judged (Terraform), each with what the policies said.
    pub subjects: &'a [(Subject, Evaluation)],
}

fn fingerprint(path: &str, object: &str, policy: &PolicyRef, message: &str) -> String {
    let mut h = Sha256::new();
    for part in [path, object, &policy.id(), message] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..16])
}

fn action_rank(a: EnforcementAction) -> u8 {
    match a {
        EnforcementAction::Deny => 0,
        EnforcementAction::Warn => 1,
        EnforcementAction::Dryrun => 2,
    }
}

/// A finding with what it is about, borrowed from the evaluations: what [`ordered`] gives.
#[derive(Debug, Clone, Copy)]
pub struct Found<'a> {
    /// The file of what was judged.
    pub path: &'a str,
    /// Its line.
    pub line: u32,
    /// Which object or subject it is: an index into the identities [`ordered`] returns.
    pub subject: usize,
    /// The finding.
    pub finding: &'a Finding,
}

/// The findings of evaluations in report order (deny before warn before dry-run, then by file,
/// line, policy and message; ties keep the order found), borrowed; with each judged thing's
/// identity once (`Found::subject` indexes it), and each evaluation error turned into a
/// diagnostic (one per policy and message, counting the objects it failed on). Building nothing
/// per finding, it serves audits of a hundred thousand findings as well as a check.
pub fn ordered<'a>(evaluated: Evaluated<'a>, diagnostics: &mut Vec<Diagnostic>) -> (Vec<Found<'a>>, Vec<String>) {
    let mut found = Vec::new();
    let mut identities = Vec::new();
    let mut errors: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    let manifests =
        evaluated.objects.iter().zip(evaluated.evaluations).map(|(o, e)| (o.path.as_str(), o.line, o.identity(), e));
    let others = evaluated.subjects.iter().map(|(s, e)| (s.path.as_str(), s.line, s.object.clone(), e));
    for (path, line, identity, evaluation) in manifests.chain(others) {
        let subject = identities.len();
        identities.push(identity);
        found.extend(evaluation.findings.iter().map(|finding| Found { path, line, subject, finding }));
        for (policy, message) in &evaluation.errors {
            let path = match policy {
                PolicyRef::Rule { path, .. } | PolicyRef::Constraint { path, .. } => path.clone(),
            };
            *errors.entry((path, policy.id(), message.clone())).or_default() += 1;
        }
    }
    for ((path, id, message), count) in errors {
        diagnostics.push(Diagnostic::error(path, format!("{id} failed to evaluate on {count} object(s): {message}")));
    }
    // A policy's id is worked out once per finding, not once per comparison.
    let ids: Vec<String> = found.iter().map(|f| f.finding.policy.id()).collect();
    let mut order: Vec<usize> = (0..found.len()).collect();
    order.sort_by(|&i, &j| {
        let (a, b) = (&found[i], &found[j]);
        (action_rank(a.finding.action), a.path, a.line, &ids[i], &a.finding.message).cmp(&(
            action_rank(b.finding.action),
            b.path,
            b.line,
            &ids[j],
            &b.finding.message,
        ))
    });
    (order.into_iter().filter_map(|i| found.get(i).copied()).collect(), identities)
}

/// Flattens evaluations into violations, in report order (see [`ordered`]), and turns evaluation
/// errors into diagnostics.
pub fn violations(evaluated: Evaluated<'_>, diagnostics: &mut Vec<Diagnostic>) -> Vec<Violation> {
    let (found, identities) = ordered(evaluated, diagnostics);
    found
        .into_iter()
        .map(|Found { path, line, subject, finding: f }| {
            let identity = identities.get(subject).map_or("", String::as_str);
            Violation {
                path: path.to_string(),
                line,
                object: identity.to_string(),
                fingerprint: fingerprint(path, identity, &f.policy, &f.message),
                policy: f.policy.clone(),
                action: f.action,
                message: f.message.clone(),
                details: f.details.clone(),
                status: None,
            }
        })
        .collect()
}

/// The inputs of a verdict.
#[derive(Debug)]
pub struct VerdictInput<'a> {
    /// The estate checked.
    pub estate: EstateRef,
    /// Its objects and their evaluations.
    pub head: Evaluated<'a>,
    /// Number of rules and constraints evaluated.
    pub policies: usize,
    /// The base estate and its evaluation, for a change.
    pub base: Option<(EstateRef, Evaluated<'a>)>,
    /// Files changed between base and head.
    pub changes: Vec<FileChange>,
    /// Commit signature checks.
    pub commits: Vec<CommitCheck>,
    /// Diagnostics from reading the estate and compiling its policies.
    pub diagnostics: Vec<Diagnostic>,
    /// The cost report, when there is one.
    pub cost: Option<cost::CostReport>,
}

/// Builds a verdict.
pub fn verdict(input: VerdictInput<'_>) -> Verdict {
    let mut diagnostics = input.diagnostics;
    let mut current = violations(input.head, &mut diagnostics);
    let mut fixed = Vec::new();
    let mut summary = Summary {
        objects: input.head.objects.len() + input.head.subjects.len(),
        policies: input.policies,
        ..Summary::default()
    };
    let base_ref = if let Some((base_ref, base_eval)) = input.base {
        // Diagnostics of the base revision are not this change's problem.
        let before = violations(base_eval, &mut Vec::new());
        let before_prints: HashSet<&str> = before.iter().map(|v| v.fingerprint.as_str()).collect();
        let now_prints: HashSet<String> = current.iter().map(|v| v.fingerprint.clone()).collect();
        for v in &mut current {
            v.status =
                Some(if before_prints.contains(v.fingerprint.as_str()) { Status::Unchanged } else { Status::New });
        }
        fixed = before
            .into_iter()
            .filter(|v| !now_prints.contains(&v.fingerprint))
            .map(|mut v| {
                v.status = Some(Status::Fixed);
                v
            })
            .collect();
        summary.new = Some(current.iter().filter(|v| v.status == Some(Status::New)).count());
        summary.unchanged = Some(current.iter().filter(|v| v.status == Some(Status::Unchanged)).count());
        summary.fixed = Some(fixed.len());
        Some(base_ref)
    } else {
        None
    };
    for v in &current {
        match v.action {
            EnforcementAction::Deny => summary.denied += 1,
            EnforcementAction::Warn => summary.warnings += 1,
            EnforcementAction::Dryrun => summary.dryrun += 1,
        }
    }
    summary.commits_checked = input.commits.len();
    summary.untrusted_commits = input.commits.iter().filter(|c| !c.trusted).count();
    summary.errors = diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
    let findings = input.cost.as_ref().map(|c| c.budget_findings.as_slice()).unwrap_or_default();
    summary.budget_findings = findings.len();
    let blocking =
        current.iter().filter(|v| v.action == EnforcementAction::Deny && v.status != Some(Status::Unchanged)).count()
            + findings.iter().filter(|f| f.blocks()).count();
    summary.passed = blocking == 0 && summary.untrusted_commits == 0 && summary.errors == 0;
    let checked = input
        .head
        .objects
        .iter()
        .map(|o| CheckedObject { path: o.path.clone(), line: o.line, object: o.identity() })
        .chain(input.head.subjects.iter().map(|(s, _)| CheckedObject {
            path: s.path.clone(),
            line: s.line,
            object: s.object.clone(),
        }))
        .collect();
    Verdict {
        schema: SCHEMA,
        estate: input.estate,
        base: base_ref,
        summary,
        violations: current,
        fixed,
        changes: input.changes,
        commits: input.commits,
        cost: input.cost,
        diagnostics,
        checked,
    }
}

impl Verdict {
    /// The process exit code: 2 when input could not be read or evaluated, 1 when something is
    /// denied (newly, with a base) or a commit is not trusted, 0 otherwise.
    pub fn exit_code(&self) -> u8 {
        if self.summary.errors > 0 {
            2
        } else if self.summary.passed {
            0
        } else {
            1
        }
    }

    /// Violations that block: deny, and with a base only the new ones.
    pub fn blocking(&self) -> impl Iterator<Item = &Violation> {
        self.violations.iter().filter(|v| v.action == EnforcementAction::Deny && v.status != Some(Status::Unchanged))
    }
}
