//! Reading an estate from a plain directory (an edge: this module touches the filesystem).
//!
//! Only the parts of the tree that assay reads are walked. Symlinks are followed only when they
//! point inside the estate; files over [`MAX_FILE_BYTES`](crate::MAX_FILE_BYTES) are reported and
//! skipped.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::{Diagnostic, Error, Estate, FileRole, MAX_FILE_BYTES, Origin, RawFile, Result};

/// Reads the estate files under `root`.
pub fn read_dir(root: &Path) -> Result<(Vec<RawFile>, Vec<Diagnostic>)> {
    let meta =
        std::fs::metadata(root).map_err(|source| Error::Directory { path: root.display().to_string(), source })?;
    if !meta.is_dir() {
        return Err(Error::Directory {
            path: root.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
        });
    }
    let canonical_root =
        root.canonicalize().map_err(|source| Error::Directory { path: root.display().to_string(), source })?;
    // The walk, in order: what to read, and what was found wrong on the way.
    let mut found: Vec<std::result::Result<(String, PathBuf), Diagnostic>> = Vec::new();
    let walker = walkdir::WalkDir::new(root).follow_links(false).sort_by_file_name().into_iter();
    let walker = walker.filter_entry(|e| {
        if e.depth() == 0 {
            return true;
        }
        let rel = relative(root, e.path());
        if e.file_type().is_dir() { FileRole::may_contain(&rel) } else { true }
    });
    for entry in walker {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                let path = e.path().map(|p| relative(root, p)).unwrap_or_default();
                found.push(Err(Diagnostic::error(path, format!("cannot read: {e}"))));
                continue;
            }
        };
        if entry.depth() == 0 || entry.file_type().is_dir() {
            continue;
        }
        let rel = relative(root, entry.path());
        if FileRole::of(&rel).is_none() {
            continue;
        }
        let mut path: PathBuf = entry.path().to_path_buf();
        if entry.file_type().is_symlink() {
            match entry.path().canonicalize() {
                Ok(target) if target.starts_with(&canonical_root) => path = target,
                Ok(target) => {
                    found.push(Err(Diagnostic::warning(
                        &rel,
                        format!("skipped symlink to {} outside the estate", target.display()),
                    )));
                    continue;
                }
                Err(e) => {
                    found.push(Err(Diagnostic::warning(&rel, format!("skipped broken symlink: {e}"))));
                    continue;
                }
            }
            if path.is_dir() {
                found.push(Err(Diagnostic::info(&rel, "skipped symlink to a directory")));
                continue;
            }
        }
        found.push(Ok((rel, path)));
    }
    // Reading ten thousand small files is mostly system calls: on every core.
    let read: Vec<std::result::Result<RawFile, Diagnostic>> = found
        .into_par_iter()
        .map(|entry| {
            let (rel, path) = entry?;
            match read_limited(&path) {
                Ok(Some(bytes)) => Ok(RawFile { path: rel, bytes }),
                Ok(None) => Err(Diagnostic::error(
                    &rel,
                    format!("file is larger than {} MiB; skipped", MAX_FILE_BYTES / (1024 * 1024)),
                )),
                Err(e) => Err(Diagnostic::error(&rel, format!("cannot read: {e}"))),
            }
        })
        .collect();
    let mut files = Vec::new();
    let mut diags = Vec::new();
    for entry in read {
        match entry {
            Ok(file) => files.push(file),
            Err(d) => diags.push(d),
        }
    }
    Ok((files, diags))
}

fn read_limited(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= MAX_FILE_BYTES).then_some(bytes))
}

/// `path` relative to `root`, `/`-separated, as estate paths are written.
pub fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

/// Loads the estate in a directory.
pub fn load_dir(root: &Path) -> Result<Estate> {
    let (files, diags) = read_dir(root)?;
    Ok(Estate::from_files(Origin::Directory { path: root.display().to_string() }, files, diags))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_directory_is_an_error_naming_it() {
        let err = load_dir(Path::new("/nonexistent/estate")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("/nonexistent/estate"), "{err}");
    }

    #[test]
    fn symlinks_outside_binary_and_huge_files_are_reported_not_fatal() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        std::fs::create_dir_all(root.join("manifests"))?;
        std::fs::write(root.join("manifests/ok.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")?;
        std::fs::write(root.join("manifests/bin.yaml"), [0xff, 0xfe, 0x00, 0x01])?;
        let outside = tempfile::NamedTempFile::new()?;
        std::fs::write(outside.path(), "apiVersion: v1\nkind: Secret\nmetadata: {name: leaked}\n")?;
        std::os::unix::fs::symlink(outside.path(), root.join("manifests/link.yaml"))?;
        std::os::unix::fs::symlink(root.join("manifests/ok.yaml"), root.join("manifests/inside.yaml"))?;
        let big = std::fs::File::create(root.join("manifests/huge.yaml"))?;
        big.set_len(MAX_FILE_BYTES + 1)?;
        std::fs::write(root.join("README.md"), "not read")?;

        let estate = load_dir(root).map_err(std::io::Error::other)?;
        let names: Vec<_> = estate.manifests.iter().map(|o| (o.path.as_str(), o.name())).collect();
        assert_eq!(names, vec![("manifests/inside.yaml", "a"), ("manifests/ok.yaml", "a")]);
        let diags: Vec<String> = estate.diagnostics.iter().map(ToString::to_string).collect();
        assert_eq!(diags.len(), 3, "{diags:#?}");
        assert!(diags.iter().any(|d| d.starts_with("manifests/bin.yaml: note: skipped binary file")), "{diags:#?}");
        assert!(diags.iter().any(|d| d.starts_with("manifests/huge.yaml: error: file is larger than 16 MiB")));
        assert!(diags.iter().any(|d| d.starts_with("manifests/link.yaml: warning: skipped symlink")));
        Ok(())
    }

    #[test]
    fn a_directory_revision_is_known_without_parsing_and_changes_with_any_estate_file() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        std::fs::create_dir_all(root.join("manifests"))?;
        std::fs::write(root.join("manifests/a.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")?;
        std::fs::write(root.join("README.md"), "not part of the estate")?;
        let revision = |root: &Path| -> std::io::Result<(String, String)> {
            let (files, _) = read_dir(root).map_err(std::io::Error::other)?;
            let parsed = load_dir(root).map_err(std::io::Error::other)?;
            Ok((crate::Estate::directory_revision(&files), parsed.revision()))
        };
        let (quick, parsed) = revision(root)?;
        assert_eq!(quick, parsed);
        std::fs::write(root.join("README.md"), "edited, still not part of the estate")?;
        assert_eq!(revision(root)?.0, quick);
        std::fs::write(root.join("manifests/a.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n")?;
        let (changed, parsed) = revision(root)?;
        assert_ne!(changed, quick);
        assert_eq!(changed, parsed);
        Ok(())
    }
}
