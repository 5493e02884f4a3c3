//! Where a log's files live: a local directory ([`Dir`]), or anything else that can keep named
//! blobs whole (object storage implements [`Files`] outside this crate).
//!
//! Paths are the tlog-tiles paths relative to the log's root (`checkpoint`, `tile/0/000`, …).
//! What a store must promise:
//!
//! - [`Files::write`] returns once every file is durable; a reader never looks at those paths
//!   before the checkpoint that covers them is published, so they may appear in any order;
//! - [`Files::replace`] is atomic: a reader sees the old bytes or the new, never a mix. The
//!   checkpoint is written this way, last, and is the moment a batch is published.
//!
//! Where nothing else keeps a second writer out (object storage has no lock a writer holds for
//! as long as it lives), a store also fences: [`Files::create`] refuses to write over a file
//! that exists, and [`Files::replace_if`] replaces the checkpoint only if it is still the one
//! this writer read or wrote last. A writer that lost its turn without knowing (cut off from
//! whatever elected it) then fails with [`LogError::Superseded`] instead of writing over tiles
//! or a checkpoint another writer published.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::store::LogError;

/// Which content of a file a store holds: its entity tag, or its version (generation) where the
/// store numbers them. What [`Files::replace_if`] compares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Version {
    /// The entity tag (HTTP `ETag`).
    pub e_tag: Option<String>,
    /// The store's version of the object, where it keeps one.
    pub version: Option<String>,
}

/// The files of one log.
pub trait Files: Send + Sync {
    /// Where the log is, for messages: a directory or a URL.
    fn location(&self) -> String;

    /// A file's full name, for messages.
    fn name(&self, path: &str) -> String {
        format!("{}/{path}", self.location().trim_end_matches('/'))
    }

    /// Reads a whole file; `None` when there is no such file.
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, LogError>;

    /// Reads several whole files, in order (`None` for each that is not there). A store that
    /// pays a round trip per file (object storage) reads them concurrently.
    fn read_many(&self, paths: &[String]) -> Result<Vec<Option<Vec<u8>>>, LogError> {
        paths.iter().map(|path| self.read(path)).collect()
    }

    /// Writes files (creating or overwriting them) and returns once every one is durable.
    fn write(&self, files: &[(String, Vec<u8>)]) -> Result<(), LogError>;

    /// Replaces one file atomically and durably.
    fn replace(&self, path: &str, bytes: &[u8]) -> Result<(), LogError>;

    /// Reads a whole file with its [`Version`]; `None` when there is no such file. A store
    /// that does not fence (see [`Files::replace_if`]) may give an empty version.
    fn read_versioned(&self, path: &str) -> Result<Option<(Vec<u8>, Version)>, LogError> {
        Ok(self.read(path)?.map(|bytes| (bytes, Version::default())))
    }

    /// Writes files that must not exist yet and returns once every one is durable. When one
    /// exists already, another writer is at work: [`LogError::Superseded`], and what this
    /// call wrote is left for the next writer's recovery to remove. A store whose writer is
    /// kept out another way (a directory's lock) may write over.
    fn create(&self, files: &[(String, Vec<u8>)]) -> Result<(), LogError> {
        self.write(files)
    }

    /// Replaces `path` atomically and durably if it still holds `version` (with `None`: if
    /// there is no such file), and returns its new version. When another writer changed it
    /// meanwhile: [`LogError::Superseded`], and nothing is written. A store whose writer is
    /// kept out another way may replace unconditionally.
    fn replace_if(&self, path: &str, bytes: &[u8], version: Option<&Version>) -> Result<Version, LogError> {
        let _ = version;
        self.replace(path, bytes)?;
        Ok(Version::default())
    }

    /// Removes files durably; a file that is not there is not an error.
    fn remove(&self, paths: &[String]) -> Result<(), LogError>;

    /// The names directly under the directory `dir` (empty when there is none).
    fn list(&self, dir: &str) -> Result<Vec<String>, LogError>;

    /// Whether anything at all is stored there (a new log needs an empty place).
    fn is_empty(&self) -> Result<bool, LogError>;
}

/// An error reading or writing `name`.
fn failed(name: impl Into<PathBuf>, source: std::io::Error) -> LogError {
    LogError::Io { path: name.into(), source }
}

/// A log in a local directory.
#[derive(Debug, Clone)]
pub struct Dir {
    root: PathBuf,
}

impl Dir {
    /// The log in `root`.
    pub fn new(root: &Path) -> Dir {
        Dir { root: root.to_path_buf() }
    }

    /// The log in `root`, which must be a directory (the error names it otherwise).
    pub fn existing(root: &Path) -> Result<Dir, LogError> {
        if root.is_dir() { Ok(Dir::new(root)) } else { Err(LogError::NoDirectory(root.to_path_buf())) }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |source| failed(path, source)
}

/// Makes a directory's entries durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// Writes a whole file and makes it durable (not its directory entry).
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), LogError> {
    let mut f = File::create(path).map_err(io(path))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(io(path))
}

/// Makes every file durable, on as many threads as there are files (at most 16 at a time):
/// concurrent fsyncs share the filesystem's journal commits.
fn sync_all(files: &[(PathBuf, File)]) -> Result<(), LogError> {
    if files.len() <= 1 {
        return files.iter().try_for_each(|(p, f)| f.sync_all().map_err(io(p)));
    }
    for chunk in files.chunks(16) {
        std::thread::scope(|s| {
            let handles: Vec<_> =
                chunk.iter().map(|(p, f)| s.spawn(move || f.sync_all().map_err(|e| (p.clone(), e)))).collect();
            handles.into_iter().try_for_each(|h| match h.join() {
                Ok(Ok(())) => Ok(()),
                Ok(Err((path, source))) => Err(LogError::Io { path, source }),
                Err(_) => Err(LogError::Damaged("a sync thread panicked".into())),
            })
        })?;
    }
    Ok(())
}

/// Creates the directories of `path` and remembers which directories gain an entry (a file
/// written over in place needs no directory sync).
fn prepare(dir: &Path, path: &str, touched: &mut Vec<PathBuf>) -> Result<PathBuf, LogError> {
    let full = dir.join(path);
    if full.is_file() {
        return Ok(full);
    }
    let parent = full.parent().unwrap_or(dir).to_path_buf();
    if !parent.is_dir() {
        // Each new directory must be made durable in its parent.
        let mut missing = Vec::new();
        let mut p = parent.as_path();
        while !p.is_dir() {
            missing.push(p.to_path_buf());
            p = p.parent().unwrap_or(dir);
        }
        fs::create_dir_all(&parent).map_err(io(&parent))?;
        touched.push(p.to_path_buf());
        touched.extend(missing.iter().filter_map(|m| m.parent().map(Path::to_path_buf)));
    }
    touched.push(parent);
    Ok(full)
}

impl Files for Dir {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn name(&self, path: &str) -> String {
        self.root.join(path).display().to_string()
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, LogError> {
        let full = self.root.join(path);
        match fs::read(&full) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(failed(full, e)),
        }
    }

    fn write(&self, files: &[(String, Vec<u8>)]) -> Result<(), LogError> {
        // Write every file, then make the files and their directories durable together.
        let mut touched: Vec<PathBuf> = Vec::new();
        let mut open = Vec::with_capacity(files.len());
        for (path, bytes) in files {
            let full = prepare(&self.root, path, &mut touched)?;
            let mut f = File::create(&full).map_err(io(&full))?;
            f.write_all(bytes).map_err(io(&full))?;
            open.push((full, f));
        }
        touched.sort();
        touched.dedup();
        for d in &touched {
            open.push((d.clone(), File::open(d).map_err(io(d))?));
        }
        sync_all(&open)
    }

    fn replace(&self, path: &str, bytes: &[u8]) -> Result<(), LogError> {
        let full = self.root.join(path);
        let dir = full.parent().unwrap_or(&self.root).to_path_buf();
        let name = full.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let tmp = dir.join(format!(".{name}.tmp"));
        write_file(&tmp, bytes)?;
        fs::rename(&tmp, &full).map_err(io(&full))?;
        sync_dir(&dir)
    }

    fn remove(&self, paths: &[String]) -> Result<(), LogError> {
        let mut touched = Vec::new();
        for path in paths {
            let full = self.root.join(path);
            match fs::remove_file(&full) {
                Ok(()) => touched.extend(full.parent().map(Path::to_path_buf)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(failed(full, e)),
            }
        }
        touched.sort();
        touched.dedup();
        touched.iter().try_for_each(|d| sync_dir(d))
    }

    fn list(&self, dir: &str) -> Result<Vec<String>, LogError> {
        let full = self.root.join(dir);
        match fs::read_dir(&full) {
            Ok(read) => Ok(read.flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(failed(full, e)),
        }
    }

    fn is_empty(&self) -> Result<bool, LogError> {
        match fs::read_dir(&self.root) {
            Ok(mut entries) => Ok(entries.next().is_none()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(failed(self.root.clone(), e)),
        }
    }
}
