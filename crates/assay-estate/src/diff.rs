//! The change between two estates: which files were added, modified and deleted.

use serde::Serialize;

use crate::Estate;

/// How a file changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileChangeKind {
    /// Only in the new estate.
    Added,
    /// In both, with different content.
    Modified,
    /// Only in the base estate.
    Deleted,
}

/// One changed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileChange {
    /// Path relative to the estate root.
    pub path: String,
    /// How it changed.
    pub kind: FileChangeKind,
}

/// Files that differ between `base` and `head`, in path order. Renames are a deletion and an
/// addition, as policies see them.
pub fn changes(base: &Estate, head: &Estate) -> Vec<FileChange> {
    let mut out = Vec::new();
    for (path, digest) in &head.files {
        match base.files.get(path) {
            None => out.push(FileChange { path: path.clone(), kind: FileChangeKind::Added }),
            Some(old) if old != digest => out.push(FileChange { path: path.clone(), kind: FileChangeKind::Modified }),
            Some(_) => {}
        }
    }
    for path in base.files.keys() {
        if !head.files.contains_key(path) {
            out.push(FileChange { path: path.clone(), kind: FileChangeKind::Deleted });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}
