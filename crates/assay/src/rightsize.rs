//! `assay cost rightsize`: what the estate's workloads should request, from what they used over
//! a window (Prometheus), and the GPUs that sat idle, priced with the estate's catalog; with
//! `--write`, the recommendations applied to the manifests as minimal edits.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use assay_cost::prometheus::{Client, Endpoint};
use assay_cost::waste::{self, Report};

/// Where workloads' use is read: a Prometheus and how to authenticate to it.
#[derive(Debug, clap::Args)]
pub(crate) struct PrometheusArgs {
    /// The Prometheus that holds the usage (its base URL).
    #[arg(long, env = "ASSAY_PROMETHEUS")]
    pub(crate) prometheus: Option<String>,
    /// A file holding a bearer token for Prometheus.
    #[arg(long)]
    prometheus_token_file: Option<PathBuf>,
    /// Basic authentication for Prometheus: USER, with the password in --prometheus-password-file.
    #[arg(long, requires = "prometheus_password_file")]
    prometheus_user: Option<String>,
    /// A file holding the basic-authentication password.
    #[arg(long)]
    prometheus_password_file: Option<PathBuf>,
    /// PEM certificates to trust for an HTTPS Prometheus.
    #[arg(long)]
    prometheus_ca: Option<PathBuf>,
}

impl PrometheusArgs {
    /// A client of the Prometheus given; `None` without --prometheus.
    pub(crate) fn client(&self) -> Result<Option<Client>> {
        let Some(url) = &self.prometheus else { return Ok(None) };
        let endpoint = Endpoint {
            url: url.clone(),
            bearer: self.prometheus_token_file.as_ref().map(|p| read_secret(p, "Prometheus token")).transpose()?,
            basic: match (&self.prometheus_user, &self.prometheus_password_file) {
                (Some(user), Some(file)) => Some((user.clone(), read_secret(file, "Prometheus password")?)),
                _ => None,
            },
            ca_pem: self
                .prometheus_ca
                .as_ref()
                .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
                .transpose()?,
        };
        Client::new(endpoint).map(Some).map_err(|e| anyhow::anyhow!("--prometheus-ca: {e}"))
    }
}

/// Arguments of `assay cost rightsize`.
#[derive(Debug, clap::Args)]
pub(crate) struct RightsizeArgs {
    /// The estate.
    #[arg(default_value = ".")]
    estate: PathBuf,
    #[command(flatten)]
    prometheus: PrometheusArgs,
    /// How far back to look: 14d, 36h, 90m.
    #[arg(long, default_value = "14d")]
    window: String,
    /// The window's end (RFC 3339); now by default.
    #[arg(long)]
    at: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Apply recommendations of medium or high confidence to the manifests (only the changed
    /// request values are edited).
    #[arg(long)]
    write: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    Table,
    Json,
    Markdown,
}

/// `14d`, `36h`, `90m`, `3600s` or `2w` in seconds.
pub(crate) fn window_seconds(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n: u64 = t[..split].parse().with_context(|| format!("--window {text:?}: expected a length such as 14d"))?;
    let unit = match &t[split..] {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        other => bail!("--window {text:?}: unknown unit {other:?} (use s, m, h, d or w)"),
    };
    if n == 0 {
        bail!("--window {text:?}: the window is empty");
    }
    Ok(n * unit)
}

/// The end of a usage window: `text` (RFC 3339), else now; `flag` names it in the error.
pub(crate) fn end_time(text: Option<&str>, flag: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    match text {
        Some(t) => Ok(chrono::DateTime::parse_from_rfc3339(t)
            .with_context(|| format!("{flag} {t:?}: expected an RFC 3339 time"))?
            .with_timezone(&chrono::Utc)),
        None => Ok(chrono::Utc::now()),
    }
}

fn read_secret(path: &PathBuf, what: &str) -> Result<String> {
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("reading the {what} {}", path.display()))?
        .trim()
        .to_string())
}

pub(crate) fn run(args: RightsizeArgs) -> Result<u8> {
    let estate = assay_estate::source::load_dir(&args.estate)
        .with_context(|| format!("reading the estate {}", args.estate.display()))?;
    for d in estate.diagnostics.iter().filter(|d| d.severity == assay_estate::Severity::Error) {
        eprintln!("{d}");
    }
    let policy = assay_cost::rightsize::policy_of(&estate.settings.rightsizing).map_err(anyhow::Error::msg)?;
    let window = window_seconds(&args.window)?;
    let end = end_time(args.at.as_deref(), "--at")?;
    let Some(client) = args.prometheus.client()? else {
        bail!("--prometheus URL (or ASSAY_PROMETHEUS) is required: the Prometheus that holds the usage");
    };
    let manifests: Vec<&assay_estate::Object> = estate.manifests.iter().collect();
    let workloads = assay_cost::rightsize::workloads(&manifests);
    let observed =
        assay_cost::usage::collect(&client, &workloads, &estate.settings.rightsizing, end.timestamp(), window);
    let (advice, idle_gpus, mut problems) =
        waste::plan(&manifests, &workloads, &observed, &estate.settings, &estate.prices, &policy);
    problems.splice(0..0, observed.problems.iter().cloned());
    let monthly_saving = advice
        .iter()
        .filter(|a| a.containers.iter().all(|c| c.confidence != "low"))
        .filter_map(|a| a.monthly_saving)
        .sum();
    let report = Report {
        schema: waste::SCHEMA,
        prometheus: args.prometheus.prometheus.clone().unwrap_or_default(),
        end: end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        window_seconds: window,
        step_seconds: observed.step,
        queries: observed.queries,
        currency: estate.settings.currency.clone(),
        workloads: advice,
        idle_gpus,
        problems,
        monthly_saving,
    };
    let mut written = Vec::new();
    if args.write {
        written = write(&args.estate, &report, &workloads)?;
    }
    let text = match args.format {
        Format::Json => serde_json::to_string_pretty(&report)? + "\n",
        Format::Table => table(&report),
        Format::Markdown => markdown(&report),
    };
    print!("{text}");
    for line in &written {
        eprintln!("{line}");
    }
    for p in &report.problems {
        eprintln!("assay cost rightsize: {p}");
    }
    Ok(0)
}

/// Applies the recommendations of medium or high confidence to the manifest files; returns what
/// was done, file by file. A value that cannot be placed is named and the rest is written.
fn write(
    root: &std::path::Path,
    report: &Report,
    workloads: &[assay_cost::rightsize::Workload],
) -> Result<Vec<String>> {
    let mut done = Vec::new();
    let mut files: std::collections::BTreeMap<&str, Vec<(&waste::WorkloadAdvice, &assay_cost::rightsize::Workload)>> =
        Default::default();
    for a in &report.workloads {
        if let Some(w) = workloads.iter().find(|w| w.object == a.object && w.path == a.path && w.line == a.line) {
            files.entry(a.path.as_str()).or_default().push((a, w));
        }
    }
    for (path, items) in files {
        let file = root.join(path);
        let mut text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        let mut changed = 0;
        for (a, w) in items {
            for c in a.containers.iter().filter(|c| c.confidence != "low") {
                for (resource, value) in &c.set {
                    match assay_estate::edit::set_request(&text, a.line, &w.pod_spec, &c.container, resource, value) {
                        Ok(t) => {
                            text = t;
                            changed += 1;
                        }
                        Err(e) => done.push(format!(
                            "{path}:{}: {} container {}: {resource} not written: {e}",
                            a.line, a.object, c.container
                        )),
                    }
                }
            }
        }
        if changed > 0 {
            std::fs::write(&file, &text).with_context(|| format!("writing {}", file.display()))?;
            done.push(format!("{path}: {changed} request(s) rewritten"));
        }
    }
    Ok(done)
}

fn money(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"))
}

fn resource(r: &Option<assay_cost::rightsize::Recommendation>, cpu: bool) -> String {
    let q =
        |v: f64| if cpu { assay_cost::rightsize::cpu_quantity(v) } else { assay_cost::rightsize::memory_quantity(v) };
    match r {
        Some(r) => format!("{} -> {}", r.current.map_or_else(|| "none".into(), q), q(r.recommended)),
        None => "-".into(),
    }
}

fn table(report: &Report) -> String {
    let mut out = String::new();
    let days = report.window_seconds as f64 / 86_400.0;
    let _ = writeln!(
        out,
        "Rightsizing over {days:.1} days to {} (step {} s, {} queries to {})",
        report.end, report.step_seconds, report.queries, report.prometheus
    );
    let _ = writeln!(
        out,
        "{:<44} {:<14} {:>18} {:>22} {:>10} {:>12}",
        "workload", "container", "cpu", "memory", "confidence", "saving/month"
    );
    for a in &report.workloads {
        for (i, c) in a.containers.iter().enumerate() {
            let saving = if i == 0 { money(a.monthly_saving) } else { String::new() };
            let _ = writeln!(
                out,
                "{:<44} {:<14} {:>18} {:>22} {:>10} {:>12}",
                if i == 0 { a.object.as_str() } else { "" },
                c.container,
                resource(&c.cpu, true),
                resource(&c.memory, false),
                c.confidence,
                saving
            );
            for n in &c.notes {
                let _ = writeln!(out, "    note: {n}");
            }
        }
    }
    let _ = writeln!(
        out,
        "Saved a month if applied (medium and high confidence; increases count against): {:.2} {}",
        report.monthly_saving, report.currency
    );
    for g in &report.idle_gpus {
        let _ = writeln!(
            out,
            "Idle GPU: {} ({}:{}) costs {} {} a month: {}",
            g.object,
            g.path,
            g.line,
            money(g.monthly_gpu_cost),
            report.currency,
            g.suggestion
        );
    }
    for p in &report.problems {
        let _ = writeln!(out, "Problem: {p}");
    }
    out
}

fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### Rightsizing: {:.2} {} a month to save\n", report.monthly_saving, report.currency);
    let _ = writeln!(
        out,
        "Usage over {:.1} days to {} from Prometheus ({} queries).\n",
        report.window_seconds as f64 / 86_400.0,
        report.end,
        report.queries
    );
    if !report.workloads.is_empty() {
        let _ = writeln!(out, "| Workload | Container | CPU | Memory | Confidence | Saving a month |");
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for a in &report.workloads {
            for c in &a.containers {
                let _ = writeln!(
                    out,
                    "| `{}` ([{}:{}]({})) | {} | {} | {} | {} | {} |",
                    a.object,
                    a.path,
                    a.line,
                    a.path,
                    c.container,
                    resource(&c.cpu, true),
                    resource(&c.memory, false),
                    c.confidence,
                    money(a.monthly_saving)
                );
            }
        }
    }
    if !report.idle_gpus.is_empty() {
        let _ = writeln!(out, "\n**Idle GPUs**\n");
        for g in &report.idle_gpus {
            let _ = writeln!(
                out,
                "- `{}`: {} {} a month; {}",
                g.object,
                money(g.monthly_gpu_cost),
                report.currency,
                g.suggestion
            );
        }
    }
    if !report.problems.is_empty() {
        let _ = writeln!(out, "\n**Not judged**\n");
        for p in &report.problems {
            let _ = writeln!(out, "- {p}");
        }
    }
    out
}
