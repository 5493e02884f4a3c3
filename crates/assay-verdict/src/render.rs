//! Renderings of a [`Verdict`]: a human table, JSON, SARIF 2.1.0, Markdown and JUnit XML.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use assay_estate::settings::EnforcementAction;
use assay_estate::{Origin, Severity};
use serde_json::{Value, json};

use crate::cost::{CostCenterCost, CostReport, FindingChange};
use crate::{Status, Verdict, Violation};

/// Output formats of `assay check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Human table.
    Table,
    /// The verdict as JSON.
    Json,
    /// SARIF 2.1.0 for code scanning.
    Sarif,
    /// Markdown for a pull-request comment.
    Markdown,
    /// JUnit XML for CI systems.
    Junit,
}

/// Renders a verdict in a format.
pub fn render(verdict: &Verdict, format: Format) -> String {
    render_with(verdict, format, "")
}

/// Renders a verdict; `path_prefix` (the estate's directory inside its repository, such as
/// `platform/estate`) is put before file paths in SARIF, which code scanning resolves from the
/// repository root.
pub fn render_with(verdict: &Verdict, format: Format, path_prefix: &str) -> String {
    match format {
        Format::Table => table(verdict),
        Format::Json => serde_json::to_string_pretty(verdict).unwrap_or_default() + "\n",
        Format::Sarif => serde_json::to_string_pretty(&sarif(verdict, path_prefix)).unwrap_or_default() + "\n",
        Format::Markdown => markdown(verdict),
        Format::Junit => junit(verdict),
    }
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

fn origin_text(origin: &Origin) -> String {
    match origin {
        Origin::Directory { path } => path.clone(),
        Origin::Git { repository, rev, commit } => format!("{repository} @ {rev} ({})", short(commit)),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The one-line summary.
pub fn summary_line(v: &Verdict) -> String {
    let s = &v.summary;
    let mut parts = vec![plural(s.denied, "denied", "denied"), plural(s.warnings, "warning", "warnings")];
    if s.dryrun > 0 {
        parts.push(format!("{} dryrun", s.dryrun));
    }
    if let (Some(new), Some(fixed), Some(unchanged)) = (s.new, s.fixed, s.unchanged) {
        parts.push(format!("{new} new, {fixed} fixed, {unchanged} unchanged"));
    }
    if s.commits_checked > 0 {
        parts.push(format!("{} of {} untrusted", plural(s.untrusted_commits, "commit", "commits"), s.commits_checked));
    }
    if s.budget_findings > 0 {
        parts.push(plural(s.budget_findings, "budget exceeded", "budgets exceeded"));
    }
    if s.errors > 0 {
        parts.push(plural(s.errors, "error", "errors"));
    }
    let mark = if s.errors > 0 {
        "ERROR"
    } else if s.passed {
        "PASS"
    } else {
        "FAIL"
    };
    format!(
        "{mark}: {} — {} checked against {}",
        parts.join(", "),
        plural(s.objects, "object", "objects"),
        plural(s.policies, "policy", "policies")
    )
}

fn status_tag(v: &Violation) -> &'static str {
    match v.status {
        Some(Status::New) => "new ",
        Some(Status::Fixed) => "fixed ",
        _ => "",
    }
}

fn table_section(out: &mut String, title: &str, violations: &[&Violation]) {
    if violations.is_empty() {
        return;
    }
    let _ = writeln!(out, "{title}\n");
    let mut by_file: BTreeMap<&str, Vec<&Violation>> = BTreeMap::new();
    for v in violations {
        by_file.entry(v.path.as_str()).or_default().push(v);
    }
    for (file, items) in by_file {
        let _ = writeln!(out, "{file}");
        let width = items.iter().map(|v| v.policy.id().len()).max().unwrap_or(0);
        for v in items {
            let _ = writeln!(
                out,
                "  {:>5}  {:<6}  {:<width$}  {}{}: {}",
                v.line,
                v.action.as_str(),
                v.policy.id(),
                status_tag(v),
                v.object,
                v.message,
            );
        }
        out.push('\n');
    }
}

/// The human table.
pub fn table(v: &Verdict) -> String {
    let mut out = String::new();
    let _ = write!(out, "assay check: {}", origin_text(&v.estate.origin));
    if let Some(base) = &v.base {
        let _ = write!(out, " against base {}", origin_text(&base.origin));
    }
    out.push_str("\n\n");
    if !v.changes.is_empty() {
        let _ = writeln!(out, "Changed files: {}\n", v.changes.len());
    }
    let of = |a: EnforcementAction| v.violations.iter().filter(|x| x.action == a).collect::<Vec<_>>();
    table_section(&mut out, "Violations", &of(EnforcementAction::Deny));
    table_section(&mut out, "Warnings", &of(EnforcementAction::Warn));
    table_section(&mut out, "Dry run (not enforced)", &of(EnforcementAction::Dryrun));
    table_section(&mut out, "Fixed by this change", &v.fixed.iter().collect::<Vec<_>>());
    if let Some(cost) = &v.cost {
        cost_table(&mut out, cost);
    }
    let untrusted: Vec<_> = v.commits.iter().filter(|c| !c.trusted).collect();
    if !untrusted.is_empty() {
        let _ = writeln!(out, "Commit signatures\n");
        for c in untrusted {
            let _ = writeln!(out, "  {}  {}: {}", short(&c.commit), c.summary, c.detail);
        }
        out.push('\n');
    }
    let shown: Vec<_> = v.diagnostics.iter().filter(|d| d.severity != Severity::Info).collect();
    if !shown.is_empty() {
        let _ = writeln!(out, "Diagnostics\n");
        for d in shown {
            let _ = writeln!(out, "  {d}");
        }
        out.push('\n');
    }
    out.push_str(&summary_line(v));
    out.push('\n');
    out
}

/// An amount with thousands separators and cents: `12,345.60`.
pub fn money(value: f64) -> String {
    let cents = (value.abs() * 100.0).round() as u128;
    let whole = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{}{grouped}.{:02}", if value < 0.0 && cents > 0 { "-" } else { "" }, cents % 100)
}

fn signed(value: f64) -> String {
    if value >= 0.005 { format!("+{}", money(value)) } else { money(value) }
}

fn cost_center_name(c: &CostCenterCost) -> &str {
    c.cost_center.as_deref().unwrap_or("(no cost-center label)")
}

fn cost_table(out: &mut String, cost: &CostReport) {
    let _ = write!(out, "Estimated monthly cost: {} {}", money(cost.monthly), cost.currency);
    if let (Some(base), Some(delta)) = (cost.base_monthly, cost.delta) {
        let _ = write!(out, " ({} from {})", signed(delta), money(base));
    }
    let _ = writeln!(out, ", {} priced\n", plural(cost.workloads, "workload", "workloads"));
    let width = cost.by_cost_center.iter().map(|c| cost_center_name(c).len()).max().unwrap_or(0);
    for c in &cost.by_cost_center {
        let _ = write!(out, "  {:<width$}  {:>14}", cost_center_name(c), money(c.monthly));
        if let Some(delta) = c.delta {
            let _ = write!(out, "  {:>14}", signed(delta));
        }
        out.push('\n');
    }
    out.push('\n');
    if let Some(diff) = terraform_diff(cost) {
        let _ = writeln!(out, "Terraform\n");
        for line in diff.lines() {
            if line.is_empty() {
                out.push('\n');
            } else {
                let _ = writeln!(out, "  {line}");
            }
        }
        out.push('\n');
    }
    if !cost.unpriced.is_empty() {
        let _ = writeln!(out, "Not priced\n");
        for u in &cost.unpriced {
            let _ = writeln!(out, "  {}:{}  {}: {}", u.path, u.line, u.object, u.reason);
        }
        out.push('\n');
    }
    if !cost.budget_findings.is_empty() {
        let _ = writeln!(out, "Budgets\n");
        for f in &cost.budget_findings {
            let tag = match f.status {
                Some(FindingChange::New) => "new ",
                _ => "",
            };
            let _ = writeln!(out, "  {}:{}  {:<6}  {tag}{}", f.path, f.line, f.action.as_str(), f.message);
        }
        out.push('\n');
    }
}

/// The Terraform resources of a cost report as Infracost's diff shows them: each resource the
/// change adds (`+`), removes (`-`) or changes (`~`), with its monthly cost change, then its
/// components; then how many were left as they were. Without a base, every resource is `+`.
fn terraform_diff(cost: &CostReport) -> Option<String> {
    if cost.terraform.is_empty() {
        return None;
    }
    let mut out = String::new();
    let mut unchanged = 0;
    let mut rows: Vec<&crate::cost::ResourceCost> = cost.terraform.iter().collect();
    let delta = |r: &crate::cost::ResourceCost| r.monthly - r.base_monthly.unwrap_or(0.0);
    rows.sort_by(|a, b| delta(b).abs().total_cmp(&delta(a).abs()).then_with(|| a.address.cmp(&b.address)));
    for r in rows {
        let d = delta(r);
        let sign = match r.action.as_str() {
            "create" => "+",
            "delete" => "-",
            _ if r.base_monthly == Some(0.0) && r.monthly > 0.0 => "+",
            _ => "~",
        };
        if sign == "~" && d.abs() < 0.005 {
            unchanged += 1;
            continue;
        }
        // Without a base there is no change to show, only what each resource costs.
        let amount = if r.base_monthly.is_some() { signed(d) } else { money(r.monthly) };
        let _ = write!(out, "{sign} {}\n  {amount} {}", r.address, cost.currency);
        if let Some(base) = r.base_monthly.filter(|b| sign == "~" && *b > 0.0) {
            let _ = write!(out, " ({} → {})", money(base), money(r.monthly));
        }
        out.push('\n');
        for c in &r.components {
            let name = if c.group.is_empty() { c.name.clone() } else { format!("{}: {}", c.group, c.name) };
            let amount = match (c.monthly, c.quantity, c.unit_price) {
                (Some(m), _, _) => money(m),
                (None, None, Some(p)) => format!("depends on usage: {p} per {}", c.unit),
                (None, None, None) => "depends on usage (no price)".into(),
                (None, Some(_), _) => "no price".into(),
            };
            let _ = writeln!(out, "    {sign} {name}\n      {amount}");
        }
        for why in &r.unpriced {
            let _ = writeln!(out, "    ! {why}");
        }
        out.push('\n');
    }
    if unchanged > 0 {
        let _ = writeln!(
            out,
            "{unchanged} Terraform {} with no cost change",
            if unchanged == 1 { "resource" } else { "resources" }
        );
    }
    let total: f64 = cost.terraform.iter().map(delta).sum();
    if cost.base_monthly.is_some() {
        let _ = writeln!(out, "Monthly cost change for Terraform: {} {}", signed(total), cost.currency);
    } else {
        let _ = writeln!(out, "Monthly cost of Terraform: {} {}", money(total), cost.currency);
    }
    Some(out)
}

fn cost_markdown(out: &mut String, cost: &CostReport) {
    let _ = write!(out, "#### Cost\n\nEstimated monthly cost **{} {}**", money(cost.monthly), cost.currency);
    if let (Some(base), Some(delta)) = (cost.base_monthly, cost.delta) {
        let _ = write!(out, ", **{}** from {}", signed(delta), money(base));
    }
    out.push_str(".\n\n");
    let with_delta = cost.base_monthly.is_some();
    out.push_str(if with_delta {
        "| Cost center | Monthly | Change |\n|---|---:|---:|\n"
    } else {
        "| Cost center | Monthly |\n|---|---:|\n"
    });
    for c in &cost.by_cost_center {
        let _ = write!(out, "| {} | {} |", md_cell(cost_center_name(c)), money(c.monthly));
        if with_delta {
            let _ = write!(out, " {} |", c.delta.map(signed).unwrap_or_default());
        }
        out.push('\n');
    }
    out.push('\n');
    if let Some(diff) = terraform_diff(cost) {
        let count = cost.terraform.len();
        let _ = write!(
            out,
            "<details><summary>Terraform: {}</summary>\n\n```diff\n{diff}```\n\n</details>\n\n",
            plural(count, "resource", "resources")
        );
    }
    for f in &cost.budget_findings {
        let icon = match f.action {
            EnforcementAction::Deny => "❌",
            EnforcementAction::Warn => "⚠️",
            EnforcementAction::Dryrun => "ℹ️",
        };
        let _ = writeln!(out, "- {icon} `{}:{}` {}", f.path, f.line, md_cell(&f.message));
    }
    if !cost.budget_findings.is_empty() {
        out.push('\n');
    }
}

fn level(action: EnforcementAction) -> &'static str {
    match action {
        EnforcementAction::Deny => "error",
        EnforcementAction::Warn => "warning",
        EnforcementAction::Dryrun => "note",
    }
}

/// SARIF 2.1.0, as GitHub code scanning accepts it.
pub fn sarif(v: &Verdict, path_prefix: &str) -> Value {
    let location = |path: &str, line: u32| {
        let uri = if path_prefix.is_empty() {
            path.to_string()
        } else {
            format!("{}/{path}", path_prefix.trim_end_matches('/'))
        };
        location(&uri, line)
    };
    let mut rules: BTreeMap<String, Value> = BTreeMap::new();
    for x in &v.violations {
        let id = x.policy.id();
        rules.entry(id.clone()).or_insert_with(|| {
            let (description, location) = match &x.policy {
                assay_policy::PolicyRef::Rule { rule, path } => (format!("Rego rule {rule}"), path.clone()),
                assay_policy::PolicyRef::Constraint { kind, name, path, .. } => {
                    (format!("Gatekeeper constraint {name} of kind {kind}"), path.clone())
                }
            };
            json!({
                "id": id,
                "shortDescription": {"text": description},
                "fullDescription": {"text": format!("{description}, defined in {location}")},
                "defaultConfiguration": {"level": level(x.action)},
                "properties": {"tags": ["policy"]}
            })
        });
    }
    let has_diagnostics = v.diagnostics.iter().any(|d| d.severity == Severity::Error);
    if has_diagnostics {
        rules.insert(
            "assay/input-error".into(),
            json!({
                "id": "assay/input-error",
                "name": "InputError",
                "shortDescription": {"text": "A file of the estate could not be read, parsed or evaluated"},
                "defaultConfiguration": {"level": "error"}
            }),
        );
    }
    let findings = v.cost.as_ref().map(|c| c.budget_findings.as_slice()).unwrap_or_default();
    for f in findings {
        let id = format!("budget/{}", f.budget);
        rules.entry(id.clone()).or_insert_with(|| {
            json!({
                "id": id,
                "shortDescription": {"text": format!("Budget {}", f.budget)},
                "fullDescription": {"text": format!("Budget {} of {:.2} per period, defined in {}", f.budget, f.amount, f.path)},
                "defaultConfiguration": {"level": level(f.action)},
                "properties": {"tags": ["cost", "budget"]}
            })
        });
    }
    let index: BTreeMap<&String, usize> = rules.keys().enumerate().map(|(i, k)| (k, i)).collect();
    let mut results: Vec<Value> = v
        .violations
        .iter()
        .map(|x| {
            let id = x.policy.id();
            json!({
                "ruleId": id,
                "ruleIndex": index.get(&id).copied().unwrap_or(0),
                "level": level(x.action),
                "message": {"text": format!("{}: {}", x.object, x.message)},
                "locations": [location(&x.path, x.line)],
                "partialFingerprints": {"assayFingerprint/v1": x.fingerprint},
                "properties": {"enforcementAction": x.action.as_str(), "object": x.object, "status": x.status}
            })
        })
        .collect();
    for f in findings {
        let id = format!("budget/{}", f.budget);
        results.push(json!({
            "ruleId": id,
            "ruleIndex": index.get(&id).copied().unwrap_or(0),
            "level": level(f.action),
            "message": {"text": f.message},
            "locations": [location(&f.path, f.line)],
            "properties": {"enforcementAction": f.action.as_str(), "projected": f.projected, "amount": f.amount, "delta": f.delta, "status": f.status}
        }));
    }
    for d in v.diagnostics.iter().filter(|d| d.severity == Severity::Error) {
        let id = "assay/input-error".to_string();
        results.push(json!({
            "ruleId": id,
            "ruleIndex": index.get(&id).copied().unwrap_or(0),
            "level": "error",
            "message": {"text": d.message},
            "locations": [location(&d.path, d.line.unwrap_or(1))],
        }));
    }
    assay_estate::sarif::log(rules.into_values().collect(), results, v.summary.errors == 0)
}

fn location(path: &str, line: u32) -> Value {
    json!({"physicalLocation": {
        "artifactLocation": {"uri": path, "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": line.max(1)}
    }})
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn md_table(out: &mut String, items: &[&Violation]) {
    out.push_str("| | File | Line | Object | Policy | Message |\n|---|---|---:|---|---|---|\n");
    for v in items {
        let _ = writeln!(
            out,
            "| {}{} | `{}` | {} | `{}` | `{}` | {} |",
            status_tag(v),
            v.action.as_str(),
            md_cell(&v.path),
            v.line,
            md_cell(&v.object),
            md_cell(&v.policy.id()),
            md_cell(&v.message)
        );
    }
}

/// Markdown for a pull-request comment.
pub fn markdown(v: &Verdict) -> String {
    let mut out = String::new();
    let icon = if v.summary.errors > 0 {
        "⚠️"
    } else if v.summary.passed {
        "✅"
    } else {
        "❌"
    };
    let _ = writeln!(out, "### {icon} assay check\n");
    let name = v.estate.name.as_deref().map(|n| format!("**{n}** ")).unwrap_or_default();
    let _ = write!(out, "Estate {name}at `{}`", origin_text(&v.estate.origin));
    if let Some(base) = &v.base {
        let _ = write!(out, ", compared with `{}`", origin_text(&base.origin));
    }
    let _ = writeln!(out, ".\n\n{}\n", summary_line(v));
    let blocking: Vec<&Violation> = v.blocking().collect();
    if !blocking.is_empty() {
        let _ = writeln!(out, "#### Denied\n");
        md_table(&mut out, &blocking);
        out.push('\n');
    }
    let mut details = |title: &str, items: Vec<&Violation>| {
        if !items.is_empty() {
            let _ = writeln!(out, "<details><summary>{title} ({})</summary>\n", items.len());
            md_table(&mut out, &items);
            out.push_str("\n</details>\n\n");
        }
    };
    details("Warnings", v.violations.iter().filter(|x| x.action == EnforcementAction::Warn).collect());
    details("Dry run", v.violations.iter().filter(|x| x.action == EnforcementAction::Dryrun).collect());
    details(
        "Unchanged denials (present before this change)",
        v.violations
            .iter()
            .filter(|x| x.action == EnforcementAction::Deny && x.status == Some(Status::Unchanged))
            .collect(),
    );
    details("Fixed by this change", v.fixed.iter().collect());
    if let Some(cost) = &v.cost {
        cost_markdown(&mut out, cost);
    }
    let untrusted: Vec<_> = v.commits.iter().filter(|c| !c.trusted).collect();
    if !untrusted.is_empty() {
        out.push_str("#### Commit signatures\n\n");
        for c in untrusted {
            let _ = writeln!(out, "- `{}` {}: {}", short(&c.commit), md_cell(&c.summary), md_cell(&c.detail));
        }
        out.push('\n');
    }
    let errors: Vec<_> = v.diagnostics.iter().filter(|d| d.severity == Severity::Error).collect();
    if !errors.is_empty() {
        out.push_str("#### Errors\n\n");
        for d in errors {
            let _ = writeln!(out, "- `{}`", md_cell(&d.to_string()));
        }
        out.push('\n');
    }
    out
}

fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 forbids most control characters, even escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: one test case per object (failing on deny), one per untrusted commit, one per
/// error diagnostic; warnings go to the test case's `system-out`.
pub fn junit(v: &Verdict) -> String {
    let mut by_file: BTreeMap<&str, Vec<&crate::CheckedObject>> = BTreeMap::new();
    for o in &v.checked {
        by_file.entry(o.path.as_str()).or_default().push(o);
    }
    let mut findings: BTreeMap<(&str, u32, &str), Vec<&Violation>> = BTreeMap::new();
    for x in &v.violations {
        findings.entry((x.path.as_str(), x.line, x.object.as_str())).or_default().push(x);
    }
    let mut suites = String::new();
    let (mut total, mut total_failures, mut total_errors) = (0, 0, 0);
    for (file, objects) in by_file {
        let mut cases = String::new();
        let mut failures = 0;
        for o in &objects {
            let found = findings.get(&(file, o.line, o.object.as_str())).cloned().unwrap_or_default();
            let denied: Vec<_> = found
                .iter()
                .filter(|x| x.action == EnforcementAction::Deny && x.status != Some(Status::Unchanged))
                .collect();
            let _ = write!(
                cases,
                "    <testcase classname=\"{}\" name=\"{} (line {})\">",
                xml(file),
                xml(&o.object),
                o.line
            );
            if !denied.is_empty() {
                failures += 1;
                let text: Vec<String> = denied.iter().map(|x| format!("{}: {}", x.policy.id(), x.message)).collect();
                let _ = write!(
                    cases,
                    "\n      <failure type=\"deny\" message=\"{}\">{}</failure>",
                    xml(&denied[0].message),
                    xml(&text.join("\n"))
                );
            }
            let others: Vec<String> = found
                .iter()
                .filter(|x| x.action != EnforcementAction::Deny || x.status == Some(Status::Unchanged))
                .map(|x| format!("{}{}: {}: {}", status_tag(x), x.action.as_str(), x.policy.id(), x.message))
                .collect();
            if !others.is_empty() {
                let _ = write!(cases, "\n      <system-out>{}</system-out>", xml(&others.join("\n")));
            }
            cases.push_str(if denied.is_empty() && others.is_empty() {
                "</testcase>\n"
            } else {
                "\n    </testcase>\n"
            });
        }
        total += objects.len();
        total_failures += failures;
        let _ = write!(
            suites,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\">\n{cases}  </testsuite>\n",
            xml(file),
            objects.len()
        );
    }
    if !v.commits.is_empty() {
        let mut cases = String::new();
        let mut failures = 0;
        for c in &v.commits {
            let _ = write!(
                cases,
                "    <testcase classname=\"commit signatures\" name=\"{} {}\">",
                short(&c.commit),
                xml(&c.summary)
            );
            if !c.trusted {
                failures += 1;
                let _ = write!(cases, "\n      <failure type=\"signature\" message=\"{}\"/>\n    ", xml(&c.detail));
            }
            cases.push_str("</testcase>\n");
        }
        total += v.commits.len();
        total_failures += failures;
        let _ = write!(
            suites,
            "  <testsuite name=\"commit signatures\" tests=\"{}\" failures=\"{failures}\" errors=\"0\">\n{cases}  </testsuite>\n",
            v.commits.len()
        );
    }
    // A budget finding that blocks fails the check as a denial does, so CI systems reading
    // JUnit see it as a failure; the others are reported by the other renderings.
    let budgets: Vec<_> = v.cost.iter().flat_map(|c| &c.budget_findings).filter(|f| f.blocks()).collect();
    if !budgets.is_empty() {
        let mut cases = String::new();
        for f in &budgets {
            let _ = write!(
                cases,
                "    <testcase classname=\"budgets\" name=\"{} ({}:{})\">\n      <failure type=\"budget\" message=\"{}\"/>\n    </testcase>\n",
                xml(&f.budget),
                xml(&f.path),
                f.line,
                xml(&f.message)
            );
        }
        let failures = budgets.len();
        total += budgets.len();
        total_failures += failures;
        let _ = write!(
            suites,
            "  <testsuite name=\"budgets\" tests=\"{}\" failures=\"{failures}\" errors=\"0\">\n{cases}  </testsuite>\n",
            budgets.len()
        );
    }
    let errors: Vec<_> = v.diagnostics.iter().filter(|d| d.severity == Severity::Error).collect();
    if !errors.is_empty() {
        let mut cases = String::new();
        for d in &errors {
            let _ = write!(
                cases,
                "    <testcase classname=\"input\" name=\"{}:{}\">\n      <error type=\"input\" message=\"{}\"/>\n    </testcase>\n",
                xml(&d.path),
                d.line.unwrap_or(0),
                xml(&d.message)
            );
        }
        total += errors.len();
        total_errors += errors.len();
        let _ = write!(
            suites,
            "  <testsuite name=\"input errors\" tests=\"{}\" failures=\"0\" errors=\"{}\">\n{cases}  </testsuite>\n",
            errors.len(),
            errors.len()
        );
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"assay check\" tests=\"{total}\" failures=\"{total_failures}\" errors=\"{total_errors}\">\n{suites}</testsuites>\n"
    )
}
