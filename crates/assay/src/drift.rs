//! `assay drift`: is each cluster in the state the estate declares? Reads live objects (files
//! of `kubectl get -o json|yaml` output), compares them with the estate, and with `--audit`
//! evaluates the estate's policies on them, as Gatekeeper's audit does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{Context, Result};
use assay_estate::{Estate, Object, Severity};
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
    /// `clusters`; a file with no cluster belongs to the only cluster, or to `default`. Without
    /// `--live`, each cluster is read from its API server.
    #[arg(long = "live", value_name = "[CLUSTER=]FILE")]
    live: Vec<String>,
    /// Only this cluster of `assay.yaml`.
    #[arg(long)]
    cluster: Option<String>,
    /// The kubeconfig context to read the cluster through (one cluster); by default the
    /// cluster's `context` in `assay.yaml`, else its name, else (no clusters) the current
    /// context, else the in-cluster service account.
    #[arg(long)]
    context: Option<String>,
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
    /// Sign a sync attestation per cluster (an in-toto statement in a DSSE envelope, signed
    /// with the ledger key) and append its record to the ledger.
    #[arg(long, requires_all = ["ledger", "ledger_key"])]
    attest: bool,
    /// Also write the signed envelopes here, one JSON line per cluster.
    #[arg(long, requires = "attest")]
    attestation: Option<PathBuf>,
    /// The ledger the attestations are recorded in.
    #[arg(long, env = "ASSAY_LEDGER")]
    ledger: Option<PathBuf>,
    /// The private key that signs the ledger's checkpoints and the attestations.
    #[arg(long, env = "ASSAY_LEDGER_KEY")]
    ledger_key: Option<PathBuf>,
}

/// The clusters the estate names, with the live files given for each.
fn files_by_cluster(estate: &Estate, live: &[String]) -> Result<BTreeMap<String, Vec<String>>> {
    let clusters: Vec<&str> = estate.settings.clusters.iter().map(|c| c.name.as_str()).collect();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for spec in live {
        let (cluster, file) = match spec.split_once('=') {
            Some((c, _)) if !c.is_empty() && !c.contains('/') => (c.to_string(), live_file(spec).to_string()),
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

/// Signs a sync attestation per cluster with the ledger key, appends each record to the ledger,
/// and writes the envelopes to `--attestation`.
fn attest(report: &Report, args: &DriftArgs, time: assay_record::Time) -> Result<()> {
    let key = args.ledger_key.as_deref().context("--attest needs --ledger-key")?;
    let signer = crate::log::read_signer(key)?;
    let mut log = crate::log::open_ledger(args.ledger.as_deref(), Some(key))?.context("--attest needs --ledger")?;
    let estate = assay_record::EstateAt { name: report.estate.clone(), revision: report.revision.clone() };
    let mut lines = String::new();
    for cluster in &report.clusters {
        let statement =
            assay_live::attest::statement(cluster, report.estate.as_deref(), &report.revision, &report.time);
        let envelope = assay_lineage::provenance::envelope(&statement, signer.name(), |m| signer.sign_bytes(m));
        let record = assay_record::Record::sync_attestation(&statement, &envelope, time, estate.clone()).to_entry()?;
        let index = log.append(&[record]).with_context(|| format!("appending to {}", log.location()))?;
        eprintln!(
            "ledger: sync attestation of cluster {} recorded as entry {index} of {} (receipt: assay log prove {} {index})",
            cluster.cluster,
            log.origin(),
            log.location()
        );
        lines.push_str(&serde_json::to_string(&envelope)?);
        lines.push('\n');
    }
    if let Some(path) = &args.attestation {
        std::fs::write(path, lines).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Where a cluster's live state comes from.
enum Source {
    /// Files of kubectl output.
    Files(Vec<String>),
    /// The API server, through a kubeconfig context (`None`: the current one, or in-cluster).
    Api(Option<String>),
}

/// Each cluster to compare, with where its live state comes from.
fn sources(estate: &Estate, args: &DriftArgs) -> Result<Vec<(String, Source)>> {
    let only = |name: &str| args.cluster.as_deref().is_none_or(|c| c == name);
    if !args.live.is_empty() {
        return Ok(files_by_cluster(estate, &args.live)?
            .into_iter()
            .filter(|(c, _)| only(c))
            .map(|(c, files)| (c, Source::Files(files)))
            .collect());
    }
    let clusters: Vec<(String, Option<String>)> = if estate.settings.clusters.is_empty() {
        vec![("default".to_string(), None)]
    } else {
        estate
            .settings
            .clusters
            .iter()
            .filter(|c| only(&c.name))
            .map(|c| (c.name.clone(), Some(c.context.clone().unwrap_or_else(|| c.name.clone()))))
            .collect()
    };
    if let Some(name) = &args.cluster
        && clusters.is_empty()
    {
        anyhow::bail!("--cluster {name}: assay.yaml has no such cluster");
    }
    if args.context.is_some() && clusters.len() > 1 {
        anyhow::bail!("--context names one cluster's context; choose the cluster with --cluster");
    }
    Ok(clusters.into_iter().map(|(name, context)| (name, Source::Api(args.context.clone().or(context)))).collect())
}

/// Reads a cluster through its API server.
fn read_api(
    cluster: &str,
    context: Option<&str>,
    wanted: &assay_live::cluster::Wanted,
) -> (Vec<Object>, Vec<String>, Vec<String>) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return (Vec::new(), vec![format!("cluster {cluster}: {e}")], Vec::new()),
    };
    runtime.block_on(async {
        let client = match assay_live::cluster::client(context).await {
            Ok(c) => c,
            Err(e) => return (Vec::new(), vec![format!("cluster {cluster}: {e}")], Vec::new()),
        };
        let snapshot = assay_live::cluster::read(&client, cluster, wanted).await;
        let objects = snapshot
            .objects
            .into_iter()
            .map(|(_, packed)| Object { path: format!("cluster {cluster}"), line: 0, value: packed.value() })
            .collect();
        (objects, snapshot.errors, snapshot.warnings)
    })
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

/// The estate's policies on live objects; each finding says whether its object is in Git.
fn audit(estate: &Estate, live: &[Object], in_git: &BTreeSet<Key>) -> (Vec<AuditFinding>, Vec<String>) {
    let policies = assay_policy::PolicySet::from_estate(estate);
    let evaluations = policies.evaluate_objects(live);
    let mut diagnostics = Vec::new();
    let (found, identities) = assay_verdict::ordered(
        assay_verdict::Evaluated { objects: live, evaluations: &evaluations, subjects: &[] },
        &mut diagnostics,
    );
    let mut texts = assay_live::report::Interner::default();
    // Each object's identity and whether it is in Git, worked out once per object.
    let objects: Vec<(std::sync::Arc<str>, bool)> = live
        .iter()
        .zip(&identities)
        .map(|(o, identity)| (texts.get(identity), Key::of(&o.value).is_some_and(|k| in_git.contains(&k))))
        .collect();
    let findings = found
        .into_iter()
        .filter_map(|f| {
            let (object, in_git) = objects.get(f.subject)?;
            Some(texts.finding(object, &f.finding.policy.id(), f.finding.action.as_str(), &f.finding.message, *in_git))
        })
        .collect();
    (findings, diagnostics.iter().map(ToString::to_string).collect())
}

/// The file a `--live` argument names (`CLUSTER=FILE` or `FILE`).
fn live_file(spec: &str) -> &str {
    match spec.split_once('=') {
        Some((c, f)) if !c.is_empty() && !c.contains('/') => f,
        _ => spec,
    }
}

pub(crate) fn run(args: DriftArgs) -> Result<u8> {
    crate::without_huge_pages();
    // The live files are read and parsed while the estate loads.
    let (estate, mut preread) = std::thread::scope(|scope| {
        let live = scope.spawn(|| {
            args.live.iter().map(|spec| live_file(spec)).map(|f| (f.to_string(), read_live(&[f.to_string()]))).collect()
        });
        let estate = assay_estate::source::load_dir(&args.estate);
        let live: BTreeMap<String, (Vec<Object>, Vec<String>)> = live.join().unwrap_or_default();
        (estate, live)
    });
    let estate = estate.with_context(|| format!("reading the estate {}", args.estate.display()))?;
    for d in estate.diagnostics.iter().filter(|d| d.severity == Severity::Error) {
        eprintln!("{d}");
    }
    let (options, problems) = state::Options::for_settings(&estate.settings);
    for p in &problems {
        eprintln!("{p}; the rule is left out");
    }
    let observed = assay_record::Time::now();
    let mut clusters = Vec::new();
    for (cluster, source) in sources(&estate, &args)? {
        let desired = assay_live::cluster::desired_for(&estate, &cluster);
        let (live, errors, warnings, described) = match source {
            Source::Files(files) => {
                let (mut live, mut errors) = (Vec::new(), Vec::new());
                for file in &files {
                    let (objects, problems) =
                        preread.remove(file).unwrap_or_else(|| read_live(std::slice::from_ref(file)));
                    live.extend(objects);
                    errors.extend(problems);
                }
                (live, errors, Vec::new(), format!("files {}", files.join(", ")))
            }
            Source::Api(context) => {
                let wanted = assay_live::cluster::wanted(&estate, &desired, args.audit);
                let (live, errors, warnings) = read_api(&cluster, context.as_deref(), &wanted);
                let described = match &context {
                    Some(c) => format!("API server of kubeconfig context {c}"),
                    None => "API server (current kubeconfig context or in-cluster)".to_string(),
                };
                (live, errors, warnings, described)
            }
        };
        let values: Vec<&serde_json::Value> = live.iter().map(|o| &o.value).collect();
        let objects = state::reconcile(&desired, &values, &options);
        let in_git: BTreeSet<Key> =
            objects.iter().filter(|o| o.status != state::Status::Extra).map(|o| o.key.clone()).collect();
        let mut result = ClusterDrift::new(&cluster, &described, objects, errors);
        result.warnings = warnings;
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
        time: observed.to_string(),
        clusters,
    };
    if args.attest {
        attest(&report, &args, observed)?;
    }
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
