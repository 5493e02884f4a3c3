//! `assay check`: load the estate (and its base), evaluate, build the verdict, render it.

use anyhow::{Context, Result};
use assay_estate::git::GitRepo;
use assay_estate::{Diagnostic, Estate, source};
use assay_verdict::CommitCheck;
use assay_verdict::judge::{self, Judge};
use assay_verdict::render::{self, Format};

use crate::{CheckArgs, CheckFormat};

pub(crate) fn run(args: CheckArgs) -> Result<u8> {
    let _span = tracing::info_span!("check", estate = %args.estate.display()).entered();
    crate::without_huge_pages();
    // Open the ledger first: a missing log or a wrong key is reported before any work, and
    // the writer lock is held until the verdict is recorded.
    let mut ledger = crate::log::open_ledger(args.ledger.as_deref(), args.ledger_key.as_deref())?;
    let mut repo = Repository { path: &args.estate, opened: None };
    if args.require_signed {
        repo.get()?;
    }
    let head = tracing::info_span!("load").in_scope(|| match &args.rev {
        Some(rev) => repo.get()?.load(rev),
        None => source::load_dir(&args.estate),
    })?;
    let base = match &args.base {
        Some(rev) => Some(repo.get()?.load(rev)?),
        None => None,
    };
    // A change cannot switch the requirement off: the base's settings count too.
    let require_signed =
        args.require_signed || head.settings.require_signed || base.as_ref().is_some_and(|b| b.settings.require_signed);
    let mut diagnostics = head.diagnostics.clone();
    let commits = if require_signed {
        let repo = repo.get().context("assay.yaml sets require_signed, which needs a Git repository")?;
        signature_checks(repo, args.rev.as_deref().unwrap_or("HEAD"), args.base.as_deref(), &mut diagnostics)?
    } else {
        Vec::new()
    };

    // Plans given on the command line are judged with the head's plans.
    let mut given = Vec::new();
    for path in &args.terraform_plan {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let (plan, diags) = assay_estate::terraform::plan::parse(&path.display().to_string(), &text);
        diagnostics.extend(diags);
        given.extend(plan);
    }
    // Budgets are projected with the billing data in --data, as of --as-of (else today).
    let as_of = args.as_of.as_deref().map(crate::cost::parse_day).transpose()?;
    let billing = if assay_cost::check::wanted(&head) {
        billing(args.data.as_deref(), &head, as_of, &mut diagnostics)?
    } else {
        None
    };
    if let Some(client) = args.usage.client()? {
        let _span = tracing::info_span!("usage").entered();
        let window = crate::rightsize::window_seconds(&args.usage_window)?;
        let end = crate::rightsize::end_time(args.usage_end.as_deref(), "--usage-end")?;
        diagnostics.extend(oversized(&client, &head, base.as_ref(), window, end.timestamp()));
    }
    let verdict = judge::judge(
        &head,
        Judge {
            base: base.as_ref(),
            plans: &given,
            billing: billing.as_ref(),
            today: as_of.unwrap_or_else(today),
            commits,
            diagnostics,
        },
    );
    let format = match args.format {
        CheckFormat::Table => Format::Table,
        CheckFormat::Json => Format::Json,
        CheckFormat::Sarif => Format::Sarif,
        CheckFormat::Markdown => Format::Markdown,
        CheckFormat::Junit => Format::Junit,
    };
    // SARIF paths are resolved from the repository root: prefix the estate's place in it.
    let prefix = match format {
        Format::Sarif => repo.get().map(|r| r.prefix().to_string()).unwrap_or_default(),
        _ => String::new(),
    };
    let text = tracing::info_span!("render").in_scope(|| render::render_with(&verdict, format, &prefix));
    match &args.output {
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
            if args.format != CheckFormat::Table {
                eprintln!("{}", render::summary_line(&verdict));
            }
        }
        None => print!("{text}"),
    }
    if let Some(log) = &mut ledger {
        let record = assay_record::Record::verdict(&verdict, head.revision())?.to_entry()?;
        let index = log.append(&[record]).with_context(|| format!("appending the verdict to {}", log.location()))?;
        eprintln!("ledger: verdict recorded as entry {index} of {} ({})", log.origin(), log.location());
    }
    Ok(verdict.exit_code())
}

/// Warnings for the requests the change raises far above what Prometheus saw the workloads use
/// (only the workloads whose requests went up, or are new, are looked up).
fn oversized(
    client: &assay_cost::prometheus::Client,
    head: &Estate,
    base: Option<&Estate>,
    window: u64,
    end: i64,
) -> Vec<Diagnostic> {
    use assay_cost::rightsize::{Workload, workloads};
    let settings = &head.settings;
    let policy = match assay_cost::rightsize::policy_of(&settings.rightsizing) {
        Ok(p) => p,
        Err(e) => return vec![Diagnostic::error("assay.yaml", e)],
    };
    let head_manifests: Vec<&assay_estate::Object> = head.manifests.iter().collect();
    let base_workloads = base.map(|b| workloads(&b.manifests.iter().collect::<Vec<_>>()));
    let raised = |w: &Workload| {
        let Some(before) = base_workloads.as_ref() else { return true };
        let Some(b) = before.iter().find(|b| b.kind == w.kind && b.namespace == w.namespace && b.name == w.name) else {
            return true;
        };
        w.containers.iter().any(|c| {
            let was = b.containers.iter().find(|x| x.name == c.name);
            let up = |now: Option<f64>, then: Option<f64>| now.is_some_and(|n| then.is_none_or(|t| n > t));
            up(c.cpu_request, was.and_then(|x| x.cpu_request))
                || up(c.memory_request, was.and_then(|x| x.memory_request))
        })
    };
    let candidates: Vec<Workload> = workloads(&head_manifests).into_iter().filter(|w| raised(w)).collect();
    if candidates.is_empty() {
        return Vec::new();
    }
    let observed = assay_cost::usage::collect(client, &candidates, &settings.rightsizing, end, window);
    let mut out: Vec<Diagnostic> =
        observed.problems.iter().map(|p| Diagnostic::warning("prometheus", p.clone())).collect();
    out.extend(assay_cost::waste::oversized(&candidates, base_workloads.as_deref(), &observed, settings, &policy));
    out
}

/// Days since 1970-01-01, by the system clock.
fn today() -> i64 {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    i64::try_from(secs / 86_400).unwrap_or(0)
}

/// The head's budgets seen through the billing data in `data`, when there is some.
fn billing(
    data: Option<&std::path::Path>,
    head: &Estate,
    as_of: Option<i64>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Result<Option<assay_cost::budgets::Billing>> {
    let Some(dir) = data else { return Ok(None) };
    let location = dir.to_string_lossy();
    let store = assay_cost::Store::at(&location, std::path::Path::new("assay-data"))?;
    if !store.is_remote() && !store.root().is_dir() {
        diagnostics.push(Diagnostic::warning(
            dir.display().to_string(),
            "no billing data here (run `assay cost ingest`): budgets are projected from the manifests alone",
        ));
        return Ok(None);
    }
    if head.budgets.is_empty() {
        return Ok(None);
    }
    let billing = crate::cost::runtime()?.block_on(assay_cost::budgets::billing(&store, &head.budgets, as_of))?;
    Ok(Some(billing))
}

/// The estate's Git repository, opened when first needed, and only once.
struct Repository<'a> {
    path: &'a std::path::Path,
    opened: Option<GitRepo>,
}

impl Repository<'_> {
    fn get(&mut self) -> Result<&GitRepo, assay_estate::Error> {
        let repo = match self.opened.take() {
            Some(repo) => repo,
            None => GitRepo::open(self.path)?,
        };
        Ok(self.opened.insert(repo))
    }
}

/// Checks every commit in base..tip (or tip alone) against the trusted signers.
fn signature_checks(
    repo: &GitRepo,
    tip: &str,
    base: Option<&str>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Result<Vec<CommitCheck>> {
    let tip_id = repo.resolve(tip)?;
    let base_id = base.map(|b| repo.resolve(b)).transpose()?;
    Ok(repo
        .check_signatures(base_id, tip_id, chrono::Utc::now().timestamp(), diagnostics)?
        .into_iter()
        .map(|c| CommitCheck { commit: c.id, summary: c.summary, trusted: c.trusted, detail: c.detail })
        .collect())
}
