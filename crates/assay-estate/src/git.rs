//! Reading an estate straight from Git objects with gix: no checkout, no `git` binary (an edge).
//!
//! The estate may be the whole repository or a directory inside it (a monorepo): the path given
//! is located in the repository's work tree and only that subtree is read, at any revision.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

pub use gix::ObjectId;

use crate::signers::{AllowedSigners, verify_commit};
use crate::{Diagnostic, Error, Estate, FileRole, MAX_FILE_BYTES, Origin, RawFile, Result};

/// A Git repository holding an estate.
#[derive(Debug)]
pub struct GitRepo {
    repo: gix::Repository,
    /// The path as the user gave it.
    display: String,
    /// The estate's directory inside the repository, `/`-separated; empty for the root.
    prefix: String,
}

/// A commit in a range, with its raw object bytes for signature checks.
#[derive(Debug, Clone)]
pub struct CommitInfo {
    /// Full hex id.
    pub id: String,
    /// First line of the message.
    pub summary: String,
    /// The raw commit object, without the object header.
    pub raw: Vec<u8>,
}

impl GitRepo {
    /// Opens the repository that contains `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let display = path.display().to_string();
        if !path.exists() {
            return Err(Error::Directory {
                path: display,
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
            });
        }
        let repo =
            gix::discover(path).map_err(|e| Error::NotARepository { path: display.clone(), message: e.to_string() })?;
        let prefix = match repo.workdir() {
            Some(workdir) => {
                let abs = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
                let workdir = workdir.canonicalize().unwrap_or_else(|_| workdir.to_path_buf());
                abs.strip_prefix(&workdir)
                    .map(|p| p.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/"))
                    .unwrap_or_default()
            }
            None => String::new(),
        };
        Ok(Self { repo, display, prefix })
    }

    /// The estate's directory inside the repository, `/`-separated; empty for the root.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn git_error(&self, e: impl std::fmt::Display) -> Error {
        Error::Git { repository: self.display.clone(), message: e.to_string() }
    }

    /// Resolves a revision (`main`, a tag, a SHA or an abbreviation, `HEAD~2`) to a commit id.
    pub fn resolve(&self, rev: &str) -> Result<ObjectId> {
        let not_found = |message: String| Error::RevisionNotFound {
            rev: rev.to_string(),
            repository: self.display.clone(),
            message,
        };
        let id = self.repo.rev_parse_single(rev).map_err(|e| not_found(e.to_string()))?;
        let commit = id
            .object()
            .map_err(|e| not_found(e.to_string()))?
            .peel_to_commit()
            .map_err(|e| not_found(e.to_string()))?;
        Ok(commit.id)
    }

    /// Loads the estate as it is at `rev`.
    pub fn load(&self, rev: &str) -> Result<Estate> {
        let commit = self.resolve(rev)?;
        let (files, diags) = self.read_files(commit)?;
        let origin = Origin::Git { repository: self.display.clone(), rev: rev.to_string(), commit: commit.to_string() };
        Ok(Estate::from_files(origin, files, diags))
    }

    /// Reads the files assay cares about from the estate's subtree at `commit`.
    pub fn read_files(&self, commit: ObjectId) -> Result<(Vec<RawFile>, Vec<Diagnostic>)> {
        self.read_files_within(commit, u64::MAX)
    }

    /// Like [`GitRepo::read_files`], refusing an estate whose files add up to more than
    /// `max_total` bytes ([`Error::TooLarge`]) before reading more than that.
    pub fn read_files_within(&self, commit: ObjectId, max_total: u64) -> Result<(Vec<RawFile>, Vec<Diagnostic>)> {
        let mut total: u64 = 0;
        let commit = self.repo.find_commit(commit).map_err(|e| self.git_error(e))?;
        let mut tree = commit.tree().map_err(|e| self.git_error(e))?;
        if !self.prefix.is_empty() {
            match tree.lookup_entry_by_path(&self.prefix).map_err(|e| self.git_error(e))? {
                Some(entry) if entry.mode().is_tree() => {
                    tree = self.repo.find_tree(entry.oid()).map_err(|e| self.git_error(e))?;
                }
                _ => {
                    return Ok((
                        Vec::new(),
                        vec![Diagnostic::error(&self.prefix, "directory does not exist at this revision")],
                    ));
                }
            }
        }
        let entries = tree.traverse().breadthfirst.files().map_err(|e| self.git_error(e))?;
        let by_path: HashMap<String, (gix::object::tree::EntryMode, ObjectId)> =
            entries.iter().map(|e| (e.filepath.to_string(), (e.mode, e.oid))).collect();
        let mut files = Vec::new();
        let mut diags = Vec::new();
        for entry in &entries {
            let path = entry.filepath.to_string();
            if entry.mode.is_tree() || entry.mode.is_commit() || FileRole::of(&path).is_none() {
                continue;
            }
            let mut oid = entry.oid;
            if entry.mode.is_link() {
                let target = self.repo.find_object(entry.oid).map_err(|e| self.git_error(e))?;
                let target = String::from_utf8_lossy(&target.data).to_string();
                match resolve_link(&path, &target).and_then(|p| by_path.get(&p).map(|found| (p, *found))) {
                    Some((_, (mode, id))) if mode.is_blob() => oid = id,
                    Some(_) => {
                        diags.push(Diagnostic::info(&path, "skipped symlink that does not point to a file"));
                        continue;
                    }
                    None => {
                        diags.push(Diagnostic::warning(
                            &path,
                            format!("skipped symlink to {target} outside the estate"),
                        ));
                        continue;
                    }
                }
            }
            let header = self.repo.find_header(oid).map_err(|e| self.git_error(e))?;
            if header.size() > MAX_FILE_BYTES {
                diags.push(Diagnostic::error(
                    &path,
                    format!("file is larger than {} MiB; skipped", MAX_FILE_BYTES / (1024 * 1024)),
                ));
                continue;
            }
            total = total.saturating_add(header.size());
            if total > max_total {
                return Err(Error::TooLarge { commit: commit.id.to_string(), limit: max_total });
            }
            let blob = self.repo.find_object(oid).map_err(|e| self.git_error(e))?;
            files.push(RawFile { path, bytes: blob.data.clone() });
        }
        Ok((files, diags))
    }

    /// Whether `ancestor` is `commit` or one of its ancestors.
    pub fn is_ancestor(&self, ancestor: ObjectId, commit: ObjectId) -> Result<bool> {
        if ancestor == commit {
            return Ok(true);
        }
        for info in self.repo.rev_walk([commit]).all().map_err(|e| self.git_error(e))? {
            if info.map_err(|e| self.git_error(e))?.id == ancestor {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The first parent of a commit, `None` for a root commit.
    pub fn first_parent(&self, commit: ObjectId) -> Result<Option<ObjectId>> {
        let commit = self.repo.find_commit(commit).map_err(|e| self.git_error(e))?;
        Ok(commit.parent_ids().next().map(|id| id.detach()))
    }

    /// One file of the estate (path relative to the estate root) at `commit`, if it exists.
    pub fn read_file(&self, commit: ObjectId, path: &str) -> Result<Option<Vec<u8>>> {
        let commit = self.repo.find_commit(commit).map_err(|e| self.git_error(e))?;
        let tree = commit.tree().map_err(|e| self.git_error(e))?;
        let full = if self.prefix.is_empty() { path.to_string() } else { format!("{}/{path}", self.prefix) };
        let Some(entry) = tree.lookup_entry_by_path(&full).map_err(|e| self.git_error(e))? else { return Ok(None) };
        if !entry.mode().is_blob() {
            return Ok(None);
        }
        let blob = self.repo.find_object(entry.oid()).map_err(|e| self.git_error(e))?;
        Ok(Some(blob.data.clone()))
    }

    /// Commits reachable from `tip` but not from `base`, newest first; with no base, `tip` alone.
    pub fn commits(&self, base: Option<ObjectId>, tip: ObjectId) -> Result<Vec<CommitInfo>> {
        let ids: Vec<ObjectId> = match base {
            None => vec![tip],
            Some(base) => self
                .repo
                .rev_walk([tip])
                .with_hidden([base])
                .all()
                .map_err(|e| self.git_error(e))?
                .map(|info| info.map(|i| i.id).map_err(|e| self.git_error(e)))
                .collect::<Result<_>>()?,
        };
        ids.into_iter()
            .map(|id| {
                let object = self.repo.find_object(id).map_err(|e| self.git_error(e))?;
                let raw = object.data.clone();
                let commit = object.into_commit();
                let summary = commit.message().map(|m| m.summary().to_string()).unwrap_or_default();
                Ok(CommitInfo { id: id.to_string(), summary, raw })
            })
            .collect()
    }
}

/// Where trusted signers are listed, relative to the estate root.
pub const SIGNERS_PATH: &str = ".assay/allowed_signers";

/// One commit checked against the trusted signers.
#[derive(Debug, Clone)]
pub struct CheckedCommit {
    /// Full hex id.
    pub id: String,
    /// First line of the message.
    pub summary: String,
    /// Whether a trusted signer signed it.
    pub trusted: bool,
    /// What was found, one line.
    pub detail: String,
}

impl GitRepo {
    /// Checks every commit in `base..tip` (or `tip` alone) against the allowed signers as they
    /// were at `base`, or, without a base, at the tip's first parent: nobody can trust
    /// themselves in the same change that adds their key. A root commit with no base is checked
    /// against its own file. Keys' validity periods are judged at `at` (seconds since the
    /// epoch), not at the commits' own dates. Problems reading the signers file are added to
    /// `diagnostics`.
    pub fn check_signatures(
        &self,
        base: Option<ObjectId>,
        tip: ObjectId,
        at: i64,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Result<Vec<CheckedCommit>> {
        let trust_root = match base {
            Some(id) => id,
            None => self.first_parent(tip)?.unwrap_or(tip),
        };
        let signers = self.signers_at(trust_root, diagnostics)?;
        let commits = self.commits(base, tip)?;
        Ok(commits.into_iter().map(|c| checked(c, signers.as_ref(), trust_root, at)).collect())
    }

    /// Checks one commit against the allowed signers as they were at `trust_root` (by default
    /// its first parent): what a deployment that follows a branch checks of each new head, as
    /// Argo CD and Flux do. The head's signature covers its whole tree.
    pub fn check_commit(
        &self,
        trust_root: Option<ObjectId>,
        commit: ObjectId,
        at: i64,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Result<CheckedCommit> {
        let trust_root = match trust_root {
            Some(id) => id,
            None => self.first_parent(commit)?.unwrap_or(commit),
        };
        let signers = self.signers_at(trust_root, diagnostics)?;
        let info = self.commits(None, commit)?.into_iter().next().ok_or_else(|| self.git_error("no such commit"))?;
        Ok(checked(info, signers.as_ref(), trust_root, at))
    }

    fn signers_at(&self, trust_root: ObjectId, diagnostics: &mut Vec<Diagnostic>) -> Result<Option<AllowedSigners>> {
        Ok(self.read_file(trust_root, SIGNERS_PATH)?.map(|bytes| {
            let text = String::from_utf8_lossy(&bytes);
            let (signers, diags) = AllowedSigners::parse(SIGNERS_PATH, &text);
            diagnostics.extend(diags);
            signers
        }))
    }
}

fn checked(c: CommitInfo, signers: Option<&AllowedSigners>, trust_root: ObjectId, at: i64) -> CheckedCommit {
    match signers {
        Some(signers) => {
            let check = verify_commit(&c.raw, signers, at);
            CheckedCommit { id: c.id, summary: c.summary, trusted: check.is_good(), detail: check.describe() }
        }
        None => CheckedCommit {
            id: c.id,
            summary: c.summary,
            trusted: false,
            detail: format!("no {SIGNERS_PATH} at {} to trust any signer", &trust_root.to_string()[..12]),
        },
    }
}

/// The path a symlink at `link` with `target` points to, if it stays inside the tree.
fn resolve_link(link: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut path: PathBuf = Path::new(link).parent().map(Path::to_path_buf).unwrap_or_default();
    for component in Path::new(target).components() {
        match component {
            Component::Normal(c) => path.push(c),
            Component::ParentDir => {
                if !path.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(path.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/"))
}

#[cfg(test)]
mod tests {
    use super::resolve_link;

    #[test]
    fn links_resolve_inside_the_tree_only() {
        assert_eq!(resolve_link("manifests/a.yaml", "b.yaml").as_deref(), Some("manifests/b.yaml"));
        assert_eq!(resolve_link("manifests/x/a.yaml", "../b.yaml").as_deref(), Some("manifests/b.yaml"));
        assert_eq!(resolve_link("manifests/a.yaml", "../../etc/passwd"), None);
        assert_eq!(resolve_link("manifests/a.yaml", "/etc/passwd"), None);
    }
}
