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
    /// How the source is shown in status and logs.
    pub fn describe(&self) -> String {
        match self {
            Self::Directory(p) => p.display().to_string(),
            Self::Git { repository, branch } => format!("{repository} (branch {branch})"),
        }
    }
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

/// What the follower knows about the active revision, to judge the next one.
pub(crate) struct Baseline<'a> {
    pub(crate) revision: &'a str,
    pub(crate) commit: Option<&'a str>,
    pub(crate) require_signed: bool,
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

pub(crate) struct Follower {
    pub(crate) source: EstateSource,
    data: Option<PathBuf>,
    require_signed: bool,
    /// Memoized answers kept per ConstraintTemplate; 0 for none.
    memo: usize,
    /// Most recent last; at most [`KEEP_REFUSED`].
    pub(crate) refused: VecDeque<Refusal>,
    /// The last error reading the source (a fetch that failed), cleared by a good read.
    pub(crate) last_error: Option<String>,
    pub(crate) last_checked: Option<String>,
}

const KEEP_REFUSED: usize = 20;
const ACTIVE_FILE: &str = "estate-active";

impl Follower {
    pub(crate) fn new(source: EstateSource, data: Option<PathBuf>, require_signed: bool, memo: usize) -> Result<Self> {
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
        Ok(Self { source, data, require_signed, memo, refused: VecDeque::new(), last_error: None, last_checked: None })
    }

    /// The mirror of a remote repository, fetched now; or the local repository's path.
    fn repository(&self) -> Result<PathBuf> {
        let EstateSource::Git { repository, .. } = &self.source else { bail!("not a Git source") };
        if !is_url(repository) {
            return Ok(PathBuf::from(repository));
        }
        let data = self.data.as_deref().context("no data directory")?;
        let mirror = data.join("estate.git");
        if mirror.join("HEAD").exists() {
            git(Command::new("git").arg("-C").arg(&mirror).args(["fetch", "--quiet", "--prune", "origin"]))
                .with_context(|| format!("fetching {repository}"))?;
        } else {
            std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
            let partial = data.join("estate.git.partial");
            let _ = std::fs::remove_dir_all(&partial);
            git(Command::new("git").args(["clone", "--quiet", "--mirror", repository]).arg(&partial))
                .with_context(|| format!("cloning {repository}"))?;
            std::fs::rename(&partial, &mirror).with_context(|| format!("moving the mirror to {}", mirror.display()))?;
        }
        Ok(mirror)
    }

    /// Reads the head and judges it against the active revision. A failure to read the source
    /// at all is an error; a head that is readable but not acceptable is a refusal.
    pub(crate) fn look(&mut self, active: Option<&Baseline<'_>>) -> Result<Look> {
        self.last_checked = Some(assay_record::Time::now().to_string());
        let result = self.look_inner(active);
        match &result {
            Ok(_) => self.last_error = None,
            Err(e) => self.last_error = Some(format!("{e:#}")),
        }
        if let Ok(Look::Refused(r)) = &result {
            self.refused.push_back(r.clone());
            while self.refused.len() > KEEP_REFUSED {
                self.refused.pop_front();
            }
        }
        result
    }

    fn look_inner(&mut self, active: Option<&Baseline<'_>>) -> Result<Look> {
        match self.source.clone() {
            EstateSource::Directory(dir) => {
                let estate = source::load_dir(&dir).with_context(|| format!("reading the estate {}", dir.display()))?;
                let revision = estate.revision();
                if self.seen(active, &revision) {
                    return Ok(Look::Unchanged);
                }
                let mut reasons = Vec::new();
                if estate.settings.require_signed {
                    reasons.push(
                        "assay.yaml sets require_signed, but a directory has no commits to check: \
                         serve the repository with --branch"
                            .to_string(),
                    );
                }
                Ok(judge(estate, None, Vec::new(), reasons, self.memo))
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
    fn seen(&self, active: Option<&Baseline<'_>>, revision: &str) -> bool {
        active.is_some_and(|a| a.revision == revision) || self.refused.back().is_some_and(|r| r.revision == revision)
    }

    fn judge_commit(
        &self,
        repo: &GitRepo,
        head: ObjectId,
        branch: &str,
        active: Option<&Baseline<'_>>,
    ) -> Result<Look> {
        let (files, diagnostics) = repo.read_files(head)?;
        let origin =
            Origin::Git { repository: self.source.describe(), rev: branch.to_string(), commit: head.to_string() };
        let estate = Estate::from_files(origin, files, diagnostics);
        // A change cannot switch the requirement off: the active revision's settings count too.
        let require = self.require_signed || estate.settings.require_signed || active.is_some_and(|a| a.require_signed);
        let mut reasons = Vec::new();
        let mut signatures = Vec::new();
        if require {
            // The head must be signed by a signer trusted at the active revision: a change
            // cannot trust itself. At the first activation, the head's parent decides.
            let trust_root = match active.and_then(|a| a.commit) {
                Some(c) => Some(ObjectId::from_hex(c.as_bytes()).context("the active commit id")?),
                None => None,
            };
            let mut diagnostics = Vec::new();
            let commit = repo.check_commit(trust_root, head, &mut diagnostics)?;
            if !commit.trusted {
                reasons.push(format!("commit {} ({}): {}", &commit.id[..12], commit.summary, commit.detail));
            }
            signatures.push(assay_record::SignatureCheck {
                commit: commit.id.clone(),
                trusted: commit.trusted,
                detail: commit.detail.clone(),
            });
            reasons.extend(diagnostics.iter().filter(|d| d.severity == Severity::Error).map(|d| d.to_string()));
        }
        Ok(judge(estate, Some(head.to_string()), signatures, reasons, self.memo))
    }

    /// The last revision that was activated, as recorded in the data directory.
    pub(crate) fn recorded(&self) -> Option<String> {
        let path = self.data.as_ref()?.join(ACTIVE_FILE);
        std::fs::read_to_string(path).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
    }

    /// Records the revision that was activated, so a restart whose head is refused can fall
    /// back to it.
    pub(crate) fn record(&self, revision: &str) {
        let Some(data) = &self.data else { return };
        if let Err(e) = write_atomic(&data.join(ACTIVE_FILE), revision.as_bytes()) {
            tracing::warn!(error = %e, "recording the active revision failed");
        }
    }

    /// At start, when the head is refused: the recorded revision, judged as a first activation.
    pub(crate) fn fallback(&self) -> Result<Option<Look>> {
        let (Some(revision), EstateSource::Git { branch, .. }) = (self.recorded(), &self.source) else {
            return Ok(None);
        };
        let path = self.repository()?;
        let repo = GitRepo::open(&path)?;
        let Ok(id) = repo.resolve(&revision) else { return Ok(None) };
        self.judge_commit(&repo, id, branch, None).map(Some)
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

fn git(command: &mut Command) -> Result<()> {
    let output =
        command.env("GIT_TERMINAL_PROMPT", "0").output().context("running git (is it installed and on PATH?)")?;
    if !output.status.success() {
        bail!("git failed: {}", String::from_utf8_lossy(&output.stderr).trim());
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
    use super::is_url;

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
