//! `assay drift`: is each cluster in the state the estate declares? Reads live objects (files
//! of `kubectl get -o json|yaml` output), compares them with the estate, and with `--audit`
//! evaluates the estate's policies on them, as Gatekeeper's audit does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{Context, Result};
use assay_estate::{Estate, Object, Severity};
use assay_live::ignore::Ignore;
use assay_live::report::{self, AuditFinding, ClusterDrift, Report};
use assay_live::state::{self, Key};
use clap::ValueEnum;

/// Output formats of `assay drift`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DriftFormat {
    /// A table for terminals.
    Table,
    /// JSON (`assay.dev/drift/v1`).
    Json,
    /// Markdown, for an issue or a pull-request comment.
    Markdown,
    /// SARIF 2.1.0, for code scanning.
    Sarif,
}

#[derive(Debug, clap::Args)]
pub(crate) struct DriftArgs {
    /// The estate directory.
    #[arg(default_value = ".")]
    estate: PathBuf,
    /// Live objects, as `kubectl get -o json|yaml` writes them (a `List` or objects; several
    /// files; `-` for standard input). `CLUSTER=FILE` for a cluster of `assay.yaml`'s
    /// `clusters`; a file with no cluster belongs to the only cluster, or to `default`.
    #[arg(long = "live", value_name = "[CLUSTER=]FILE", required = true)]
    live: Vec<String>,
    /// Also evaluate the estate's policies and constraints on the live objects (Gatekeeper's
    /// audit), including objects that never came from Git.
    #[arg(long)]
    audit: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DriftFormat::Table)]
    format: DriftFormat,
    /// Write the report here instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

/// The clusters the estate names, with the live files given for each.
fn files_by_cluster(estate: &Estate, live: &[String]) -> Result<BTreeMap<String, Vec<String>>> {
    let clusters: Vec<&str> = estate.settings.clusters.iter().map(|c| c.name.as_str()).collect();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for spec in live {
        let (cluster, file) = match spec.split_once('=') {
            Some((c, f)) if !c.is_empty() && !c.contains('/') => (c.to_string(), f.to_string()),
            _ => match clusters.as_slice() {
                [] => ("default".to_string(), spec.clone()),
                [only] => ((*only).to_string(), spec.clone()),
                many => anyhow::bail!(
                    "--live {spec}: the estate has clusters {}; name one as CLUSTER=FILE",
                    many.join(", ")
                ),
            },
        };
        if !clusters.is_empty() && !clusters.contains(&cluster.as_str()) {
            anyhow::bail!("--live {spec}: assay.yaml has no cluster {cluster:?} (it has {})", clusters.join(", "));
        }
        out.entry(cluster).or_default().push(file);
    }
    Ok(out)
}

/// The estate's objects bound for `cluster`: those whose path its `paths` match (all, when the
/// estate names no clusters).
fn desired_for(estate: &Estate, cluster: &str) -> Vec<Object> {
    let named = !estate.settings.clusters.is_empty();
    estate
        .manifests
        .iter()
        .filter(|o| !named || estate.settings.cluster_of(&o.path).is_some_and(|c| c.name == cluster))
        .cloned()
        .collect()
}

/// Reads live files: the objects, and what could not be read, named with file and line.
fn read_live(files: &[String]) -> (Vec<Object>, Vec<String>) {
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        let text = if file == "-" {
            let mut text = String::new();
            match std::io::Read::read_to_string(&mut std::io::stdin(), &mut text) {
                Ok(_) => text,
                Err(e) => {
                    errors.push(format!("standard input: {e}"));
                    continue;
                }
            }
        } else {
            match std::fs::read_to_string(file) {
                Ok(t) => t,
                Err(e) => {
                    errors.push(format!("{file}: {e}"));
                    continue;
                }
            }
        };
        let (found, diags) = assay_estate::manifest::parse_objects(file, &text);
        errors.extend(diags.iter().filter(|d| d.severity == Severity::Error).map(ToString::to_string));
        objects.extend(found);
    }
    (objects, errors)
}

/// The compiled `ignoreDifferences` of `assay.yaml`; broken rules are named and left out.
fn ignore_rules(estate: &Estate) -> (Vec<Ignore>, Vec<String>) {
    let mut rules = Vec::new();
    let mut problems = Vec::new();
    for (i, rule) in estate.settings.drift.ignore_differences.iter().enumerate() {
        match Ignore::compile(rule.clone()) {
            Ok(r) => rules.push(r),
            Err(errors) => {
                problems.extend(errors.into_iter().map(|e| format!("assay.yaml: drift.ignoreDifferences[{i}].{e}")))
            }
        }
    }
    (rules, problems)
}

/// The estate's policies on live objects; each finding says whether its object is in Git.
fn audit(estate: &Estate, live: &[Object], in_git: &BTreeSet<Key>) -> (Vec<AuditFinding>, Vec<String>) {
    let policies = assay_policy::PolicySet::from_estate(estate);
    let evaluations = policies.evaluate_objects(live);
    let mut diagnostics = Vec::new();
    let violations = assay_verdict::violations(
        assay_verdict::Evaluated { objects: live, evaluations: &evaluations },
        &mut diagnostics,
    );
    let keys: BTreeMap<String, bool> =
        live.iter().map(|o| (o.identity(), Key::of(&o.value).is_some_and(|k| in_git.contains(&k)))).collect();
    let findings = violations
        .into_iter()
        .map(|v| AuditFinding {
            in_git: keys.get(&v.object).copied().unwrap_or(false),
            object: v.object,
            policy: v.policy.id(),
            action: v.action.as_str().to_string(),
            message: v.message,
        })
        .collect();
    (findings, diagnostics.iter().map(ToString::to_string).collect())
}

pub(crate) fn run(args: DriftArgs) -> Result<u8> {
    let estate = assay_estate::source::load_dir(&args.estate)
        .with_context(|| format!("reading the estate {}", args.estate.display()))?;
    for d in estate.diagnostics.iter().filter(|d| d.severity == Severity::Error) {
        eprintln!("{d}");
    }
    let (ignore, problems) = ignore_rules(&estate);
    for p in &problems {
        eprintln!("{p}; the rule is left out");
    }
    let options = state::Options {
        ownership_labels: estate.settings.drift.ownership_labels.clone(),
        estate_name: estate.settings.name.clone(),
        default_namespace: None,
        ignore,
    };
    let mut clusters = Vec::new();
    for (cluster, files) in files_by_cluster(&estate, &args.live)? {
        let desired = desired_for(&estate, &cluster);
        let (live, errors) = read_live(&files);
        let values: Vec<serde_json::Value> = live.iter().map(|o| o.value.clone()).collect();
        let objects = state::reconcile(&desired, &values, &options);
        let in_git: BTreeSet<Key> =
            objects.iter().filter(|o| o.status != state::Status::Extra).map(|o| o.key.clone()).collect();
        let mut result = ClusterDrift::new(&cluster, &format!("files {}", files.join(", ")), objects, errors);
        if args.audit {
            let (findings, failures) = audit(&estate, &live, &in_git);
            result.errors.extend(failures);
            result.audit = Some(findings);
        }
        clusters.push(result);
    }
    let report = Report {
        schema: report::SCHEMA,
        estate: estate.settings.name.clone(),
        revision: estate.revision(),
        time: assay_record::Time::now().to_string(),
        clusters,
    };
    let text = match args.format {
        DriftFormat::Table => report::table(&report),
        DriftFormat::Json => serde_json::to_string_pretty(&report)? + "\n",
        DriftFormat::Markdown => report::markdown(&report),
        DriftFormat::Sarif => serde_json::to_string_pretty(&report::sarif(&report, ""))? + "\n",
    };
    match &args.output {
        Some(path) => std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(report.exit_code())
}
