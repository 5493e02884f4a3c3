//! Following the estate: read the head of a Git branch (or a directory), compile it, check its
//! signatures, and swap it in only when it is good. A refused head leaves the last good revision
//! in force and is reported in `/v1/status` and the ledger.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use assay_estate::git::{GitRepo, ObjectId};
use assay_estate::{Estate, Origin, Severity, source};
use assay_policy::PolicySet;
use serde::Serialize;

/// Where the estate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EstateSource {
    /// A directory, read as it is on disk (re-read when its files change).
    Directory(PathBuf),
    /// A branch of a Git repository: a local path, or a URL mirrored into the data directory
    /// with the system `git` (so the user's credential helpers and SSH configuration apply).
    Git {
        /// A path inside a local repository, or a URL (`https://…`, `ssh://…`, `git@host:path`).
        repository: String,
        /// The branch to follow.
        branch: String,
    },
}

impl EstateSource {
    /// How the source is shown in status and logs: credentials in a URL are hidden.
    pub fn describe(&self) -> String {
        match self {
            Self::Directory(p) => p.display().to_string(),
            Self::Git { repository, branch } => format!("{} (branch {branch})", redact(repository)),
        }
    }
}

/// `text` with the user information of every URL in it (`https://user:token@host`) hidden.
pub(crate) fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail.find(|c: char| c == '/' || c.is_whitespace() || c == '\'' || c == '"').unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

/// Whether a repository string names a remote rather than a local path.
pub fn is_url(repository: &str) -> bool {
    if repository.contains("://") {
        return true;
    }
    // scp-like syntax: user@host:path, with no slash before the colon.
    match repository.find(':') {
        Some(colon) => repository[..colon].contains('@') && !repository[..colon].contains('/'),
        None => false,
    }
}

/// A compiled revision, ready to be activated.
pub(crate) struct Candidate {
    pub(crate) estate: Estate,
    pub(crate) policies: PolicySet,
    pub(crate) commit: Option<String>,
    /// Signature checks of the commits since the active revision (empty when not required).
    pub(crate) signatures: Vec<assay_record::SignatureCheck>,
}

/// A head that was not activated, and why.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Refusal {
    pub(crate) revision: String,
    pub(crate) time: assay_record::Time,
    pub(crate) reasons: Vec<String>,
}

/// What the follower knows about the active revision, to judge the next one. Kept in the data
/// directory, so that trust after a restart is anchored where it was before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub(crate) struct Baseline {
    pub(crate) revision: String,
    pub(crate) commit: Option<String>,
    pub(crate) require_signed: bool,
}

/// What `/v1/status` shows of the follower, under a lock never held across a fetch.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    /// Most recent last; at most [`KEEP_REFUSED`].
    pub(crate) refused: VecDeque<Refusal>,
    /// The last error reading the source (a fetch that failed), cleared by a good read.
    pub(crate) last_error: Option<String>,
    pub(crate) last_checked: Option<String>,
}

/// The outcome of looking at the source once.
pub(crate) enum Look {
    /// The head is the active revision, or a head that was already refused.
    Unchanged,
    /// A new head that may be activated.
    Good(Box<Candidate>),
    /// A new head that must not be.
    Refused(Refusal),
}

/// How the follower judges new heads.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    /// Require every new commit to be signed, whatever the estate says.
    pub(crate) require_signed: bool,
    /// Judge a head that does not descend from the active revision instead of refusing it.
    pub(crate) allow_history_rewrite: bool,
    /// The most bytes of estate files read from a head.
    pub(crate) max_estate_bytes: u64,
    /// How long a fetch may take.
    pub(crate) fetch_timeout: std::time::Duration,
    /// Memoized answers kept per ConstraintTemplate; 0 for none.
    pub(crate) memo: usize,
}

pub(crate) struct Follower {
    pub(crate) source: EstateSource,
    data: Option<PathBuf>,
    rules: Rules,
    /// The last head that was refused, so that it is not judged again.
    last_refused: Option<String>,
    pub(crate) observed: std::sync::Arc<std::sync::Mutex<Observed>>,
    /// The database replicas share (`--database`), where the revision last activated by any
    /// of them is kept too: a replica with no record of its own (a new pod) judges heads
    /// against it, not as at a first activation.
    shared: Option<assay_store::Db>,
}

const SHARED_SCHEMA: [assay_store::Migration; 1] = [assay_store::Migration {
    version: 1,
    sqlite: "CREATE TABLE estate_active (source TEXT PRIMARY KEY, baseline TEXT NOT NULL, recorded_at BIGINT NOT NULL)",
    postgres: "CREATE TABLE estate_active (source TEXT PRIMARY KEY, baseline TEXT NOT NULL, recorded_at BIGINT NOT NULL)",
}];

const KEEP_REFUSED: usize = 20;
const ACTIVE_FILE: &str = "estate-active";

impl Follower {
    pub(crate) fn new(source: EstateSource, data: Option<PathBuf>, rules: Rules) -> Result<Self> {
        let require_signed = rules.require_signed;
        match &source {
            EstateSource::Directory(dir) if require_signed => bail!(
                "--require-signed needs a Git branch to check signatures on: give --branch (estate {})",
                dir.display()
            ),
            EstateSource::Git { repository, .. } if is_url(repository) && data.is_none() => {
                bail!("following {repository} needs --data DIR to keep the mirror in")
            }
            _ => {}
        }
        Ok(Self { source, data, rules, last_refused: None, observed: Default::default(), shared: None })
    }

    /// Keeps the revision last activated in the database replicas share as well.
    pub(crate) fn share(mut self, location: &assay_store::Location) -> Result<Self> {
        let db = assay_store::Db::open(location)
            .with_context(|| format!("the active revision in {}", location.redacted()))?;
        assay_store::migrate(&db, "estate", &SHARED_SCHEMA).context("preparing the active revision's table")?;
        self.shared = Some(db);
        Ok(self)
    }

    /// The revision last activated by any replica, from the shared database.
    fn shared_record(&self) -> Option<Baseline> {
        let db = self.shared.as_ref()?;
        let source = self.source.describe();
        let row = db
            .row("SELECT baseline FROM estate_active WHERE source = ?1", &assay_store::vals![&source])
            .map_err(|e| tracing::warn!(error = %e, "the shared active revision cannot be read"))
            .ok()??;
        serde_json::from_str(&row.get::<String>(0).ok()?).ok()
    }

    fn observe(&self) -> std::sync::MutexGuard<'_, Observed> {
        self.observed.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The mirror of a remote repository, fetched now; or the local repository's path.
    fn repository(&self) -> Result<PathBuf> {
        let EstateSource::Git { repository, .. } = &self.source else { bail!("not a Git source") };
        if !is_url(repository) {
            return Ok(PathBuf::from(repository));
        }
        let data = self.data.as_deref().context("no data directory")?;
        let mirror = self.repository_path()?;
        let timeout = self.rules.fetch_timeout;
        if mirror.join("HEAD").exists() {
            git(Command::new("git").arg("-C").arg(&mirror).args(["fetch", "--quiet", "--prune", "origin"]), timeout)
                .with_context(|| format!("fetching {}", redact(repository)))?;
        } else {
            std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
            let partial = data.join("estate.git.partial");
            let _ = std::fs::remove_dir_all(&partial);
            git(Command::new("git").args(["clone", "--quiet", "--mirror", repository]).arg(&partial), timeout)
                .with_context(|| format!("cloning {}", redact(repository)))?;
            std::fs::rename(&partial, &mirror).with_context(|| format!("moving the mirror to {}", mirror.display()))?;
        }
        Ok(mirror)
    }

    /// Reads the head and judges it against the active revision. A failure to read the source
    /// at all is an error; a head that is readable but not acceptable is a refusal.
    pub(crate) fn look(&mut self, active: Option<&Baseline>) -> Result<Look> {
        self.observe().last_checked = Some(assay_record::Time::now().to_string());
        let result = self.look_inner(active);
        self.observed(&result);
        result
    }

    fn observed(&mut self, result: &Result<Look>) {
        let mut observed = self.observe();
        match result {
            Ok(_) => observed.last_error = None,
            Err(e) => observed.last_error = Some(redact(&format!("{e:#}"))),
        }
        if let Ok(Look::Refused(r)) = result {
            observed.refused.push_back(r.clone());
            while observed.refused.len() > KEEP_REFUSED {
                observed.refused.pop_front();
            }
            drop(observed);
            self.last_refused = Some(r.revision.clone());
        }
    }

    fn look_inner(&mut self, active: Option<&Baseline>) -> Result<Look> {
        match self.source.clone() {
            EstateSource::Directory(dir) => {
                // The files are read at every look, but parsed only when they changed.
                let (files, diagnostics) =
                    source::read_dir(&dir).with_context(|| format!("reading the estate {}", dir.display()))?;
                if self.seen(active, &assay_estate::Estate::directory_revision(&files)) {
                    return Ok(Look::Unchanged);
                }
                let origin = assay_estate::Origin::Directory { path: dir.display().to_string() };
                let estate = assay_estate::Estate::from_files(origin, files, diagnostics);
                let mut reasons = Vec::new();
                if estate.settings.require_signed {
                    reasons.push(
                        "assay.yaml sets require_signed, but a directory has no commits to check: \
                         serve the repository with --branch"
                            .to_string(),
                    );
                }
                Ok(judge(estate, None, Vec::new(), reasons, self.rules.memo))
            }
            EstateSource::Git { branch, .. } => {
                let path = self.repository()?;
                let repo = GitRepo::open(&path)?;
                let reference = format!("refs/heads/{branch}");
                let head = repo.resolve(&reference)?;
                let revision = head.to_string();
                if self.seen(active, &revision) {
                    return Ok(Look::Unchanged);
                }
                self.judge_commit(&repo, head, &branch, active)
            }
        }
    }

    /// Whether `revision` is active or was already refused (so it is not judged again).
    fn seen(&self, active: Option<&Baseline>, revision: &str) -> bool {
        active.is_some_and(|a| a.revision == revision) || self.last_refused.as_deref() == Some(revision)
    }

    /// Judges `head` against the active revision: it must descend from it, every commit since
    /// it must be signed by a signer trusted at it (checked before any file of the head is
    /// parsed), and the head's estate must compile. Without an active revision (the first
    /// activation) the head is checked against its first parent's signers.
    fn judge_commit(&self, repo: &GitRepo, head: ObjectId, branch: &str, active: Option<&Baseline>) -> Result<Look> {
        let revision = head.to_string();
        let refused = |reasons: Vec<String>| {
            Ok(Look::Refused(Refusal { revision: revision.clone(), time: assay_record::Time::now(), reasons }))
        };
        let anchor = match active.and_then(|a| a.commit.as_deref()) {
            Some(c) => Some(ObjectId::from_hex(c.as_bytes()).context("the active commit id")?),
            None => None,
        };
        let descends = match anchor {
            Some(anchor) => repo.is_ancestor(anchor, head)?,
            None => true,
        };
        if !descends && !self.rules.allow_history_rewrite {
            let anchor = active.and_then(|a| a.commit.as_deref()).unwrap_or_default();
            return refused(vec![format!(
                "commit {} does not descend from the active revision {}: the branch was force-pushed or its \
                 history rewritten; start the server with --allow-history-rewrite to accept such a head",
                &revision[..12],
                &anchor[..anchor.len().min(12)]
            )]);
        }
        // The range to check: every commit since the active revision, or the head alone.
        let base = anchor.filter(|_| descends);
        let now = chrono::Utc::now().timestamp();
        let mut signatures = Vec::new();
        let mut reasons = Vec::new();
        let check = |signatures: &mut Vec<assay_record::SignatureCheck>, reasons: &mut Vec<String>| -> Result<()> {
            let mut diagnostics = Vec::new();
            let commits = match (base, anchor) {
                (Some(base), _) => repo.check_signatures(Some(base), head, now, &mut diagnostics)?,
                // A rewritten history is judged by the signers trusted at the active revision.
                (None, Some(anchor)) => vec![repo.check_commit(Some(anchor), head, now, &mut diagnostics)?],
                (None, None) => vec![repo.check_commit(None, head, now, &mut diagnostics)?],
            };
            for commit in commits {
                if !commit.trusted {
                    reasons.push(format!("commit {} ({}): {}", &commit.id[..12], commit.summary, commit.detail));
                }
                signatures.push(assay_record::SignatureCheck {
                    commit: commit.id,
                    trusted: commit.trusted,
                    detail: commit.detail,
                });
            }
            reasons.extend(diagnostics.iter().filter(|d| d.severity == Severity::Error).map(|d| d.to_string()));
            Ok(())
        };
        // Required by the server or the active revision (a change cannot switch it off):
        // checked before anything of the head is read.
        let required = self.rules.require_signed || active.is_some_and(|a| a.require_signed);
        if required {
            check(&mut signatures, &mut reasons)?;
            if !reasons.is_empty() {
                return refused(reasons);
            }
        }
        let (files, diagnostics) = match repo.read_files_within(head, self.rules.max_estate_bytes) {
            Ok(read) => read,
            Err(e @ assay_estate::Error::TooLarge { .. }) => {
                return refused(vec![format!("{e} (--max-estate-bytes)")]);
            }
            Err(e) => return Err(e.into()),
        };
        let origin =
            Origin::Git { repository: self.source.describe(), rev: branch.to_string(), commit: revision.clone() };
        let estate = Estate::from_files(origin, files, diagnostics);
        // The head's own settings may ask for signatures: then they are checked now.
        if !required && estate.settings.require_signed {
            check(&mut signatures, &mut reasons)?;
        }
        Ok(judge(estate, Some(revision), signatures, reasons, self.rules.memo))
    }

    /// The revision that was last activated, as recorded in the data directory (or, when this
    /// replica has no record, in the shared database). A file written by an earlier version
    /// holds the revision alone.
    pub(crate) fn recorded(&self) -> Option<Baseline> {
        self.recorded_here().or_else(|| self.shared_record())
    }

    fn recorded_here(&self) -> Option<Baseline> {
        let text = std::fs::read_to_string(self.data.as_ref()?.join(ACTIVE_FILE)).ok()?;
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        if let Ok(baseline) = serde_json::from_str::<Baseline>(text) {
            return Some(baseline);
        }
        let commit = (matches!(self.source, EstateSource::Git { .. }) && text.len() == 40)
            .then(|| text.to_string())
            .filter(|t| t.bytes().all(|b| b.is_ascii_hexdigit()));
        Some(Baseline { revision: text.to_string(), commit, require_signed: self.rules.require_signed })
    }

    /// Records the revision that was activated (durably, before it is used), so that after a
    /// restart new heads are judged against it.
    pub(crate) fn record(&self, baseline: &Baseline) -> Result<()> {
        let text = serde_json::to_string(baseline).context("the active revision")?;
        if let Some(db) = &self.shared {
            let source = self.source.describe();
            db.execute(
                "INSERT INTO estate_active (source, baseline, recorded_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (source) DO UPDATE SET baseline = excluded.baseline, recorded_at = excluded.recorded_at",
                &assay_store::vals![&source, &text, chrono::Utc::now().timestamp()],
            )
            .context("recording the active revision in the shared database")?;
        }
        let Some(data) = &self.data else { return Ok(()) };
        std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
        write_atomic(&data.join(ACTIVE_FILE), text.as_bytes())
            .with_context(|| format!("recording the active revision in {}", data.display()))
    }

    /// At start: the head, judged against the revision recorded as active (when there is one);
    /// when the head is refused, the recorded revision itself, which was judged when it was
    /// activated. `Ok` holds the revision to activate and the refusal of the head, if any.
    pub(crate) fn start(&mut self) -> Result<(Candidate, Option<Refusal>)> {
        // Trust is anchored at a commit: a directory's recorded revision has none, and a
        // directory is judged as at a first activation.
        let recorded = self.recorded().filter(|r| r.commit.is_some());
        let described = self.source.describe();
        match self.look(recorded.as_ref()).with_context(|| format!("reading the estate {described}"))? {
            Look::Good(candidate) => Ok((*candidate, None)),
            Look::Unchanged => {
                // The head is the recorded revision: activate it as it was.
                let recorded = recorded.context("nothing to activate")?;
                Ok((self.anchor(&recorded)?, None))
            }
            Look::Refused(refusal) => match &recorded {
                Some(r) => match self.anchor(r) {
                    Ok(candidate) => Ok((candidate, Some(refusal))),
                    Err(e) => bail!(
                        "the head of {described} ({}) cannot be activated:\n  {}\nand the revision last \
                             activated ({}) cannot be read again: {e:#}",
                        refusal.revision,
                        refusal.reasons.join("\n  "),
                        r.revision
                    ),
                },
                _ => bail!(
                    "the head of {described} ({}) cannot be activated:\n  {}\nand no earlier revision was activated \
                     (none is recorded in --data)",
                    refusal.revision,
                    refusal.reasons.join("\n  ")
                ),
            },
        }
    }

    /// The recorded revision, compiled again; its signatures were checked when it was activated.
    fn anchor(&self, recorded: &Baseline) -> Result<Candidate> {
        let (EstateSource::Git { branch, .. }, Some(commit)) = (&self.source, &recorded.commit) else {
            bail!("revision {} has no commit to read again", recorded.revision);
        };
        let repo = GitRepo::open(&self.repository_path()?)?;
        let id = repo.resolve(commit).with_context(|| format!("the active revision {commit}"))?;
        match self.judge_commit(&repo, id, branch, Some(recorded))? {
            Look::Good(candidate) => Ok(*candidate),
            Look::Refused(r) => bail!("{}", r.reasons.join("; ")),
            Look::Unchanged => bail!("nothing to activate"),
        }
    }

    /// The repository's path without fetching: the mirror in the data directory, or the local
    /// repository.
    fn repository_path(&self) -> Result<PathBuf> {
        let EstateSource::Git { repository, .. } = &self.source else { bail!("not a Git source") };
        if !is_url(repository) {
            return Ok(PathBuf::from(repository));
        }
        Ok(self.data.as_deref().context("no data directory")?.join("estate.git"))
    }
}

/// Compiles an estate and decides whether it may be activated.
fn judge(
    estate: Estate,
    commit: Option<String>,
    signatures: Vec<assay_record::SignatureCheck>,
    mut reasons: Vec<String>,
    memo: usize,
) -> Look {
    // A server sees the same pod spec many times (a Deployment's replicas): constraints
    // answer from memos keyed by what each template reads.
    let policies = PolicySet::from_estate(&estate).memoize(memo);
    reasons.extend(
        estate
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error && is_policy_file(&d.path))
            .chain(policies.diagnostics.iter().filter(|d| d.severity == Severity::Error))
            .map(|d| d.to_string()),
    );
    let revision = estate.revision();
    if reasons.is_empty() {
        Look::Good(Box::new(Candidate { estate, policies, commit, signatures }))
    } else {
        Look::Refused(Refusal { revision, time: assay_record::Time::now(), reasons })
    }
}

/// Files whose breakage makes a revision unfit to enforce: policies, constraints, settings.
fn is_policy_file(path: &str) -> bool {
    path.starts_with("policies/") || path.starts_with("constraints/") || path == "assay.yaml"
}

/// Runs git with a deadline, over https, ssh or file only (`GIT_ALLOW_PROTOCOL`: no `ext::`
/// commands, no plain `git://` or `http://`), without prompting. What git printed is summarised
/// with credentials hidden.
fn git(command: &mut Command, timeout: std::time::Duration) -> Result<()> {
    use std::io::Read;
    let mut child = command
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ALLOW_PROTOCOL", "https:ssh:file")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("running git (is it installed and on PATH?)")?;
    let mut stderr = child.stderr.take().context("git's standard error")?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.by_ref().take(64 * 1024).read_to_string(&mut text);
        text
    });
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for git")? {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("git did not finish within {} s; stopped", timeout.as_secs());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let output = reader.join().unwrap_or_default();
    if !status.success() {
        let last = output.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message");
        tracing::warn!(output = %redact(&output), "git failed");
        bail!("git failed ({status}): {}", redact(last.trim()));
    }
    Ok(())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::{is_url, redact};

    #[test]
    fn credentials_in_urls_are_hidden() {
        assert_eq!(redact("https://x-token:ghp_secret@github.com/acme/e.git"), "https://***@github.com/acme/e.git");
        assert_eq!(
            redact("fatal: unable to access 'https://u:p@h/r/': 403"),
            "fatal: unable to access 'https://***@h/r/': 403"
        );
        assert_eq!(redact("ssh://git@github.com/acme/e.git"), "ssh://***@github.com/acme/e.git");
        assert_eq!(redact("/srv/estate (branch main)"), "/srv/estate (branch main)");
    }

    #[test]
    fn urls_and_paths_are_told_apart() {
        assert!(is_url("https://github.com/acme/estate.git"));
        assert!(is_url("ssh://git@github.com/acme/estate.git"));
        assert!(is_url("file:///srv/estate.git"));
        assert!(is_url("git@github.com:acme/estate.git"));
        assert!(!is_url("/srv/estate"));
        assert!(!is_url("./estate"));
        assert!(!is_url("estate/with:colon"));
    }
}
