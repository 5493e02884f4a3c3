//! The log in the C2SP tlog-tiles layout: `checkpoint`, hash tiles under `tile/<L>/`, entry
//! bundles under `tile/entries/`, on the local filesystem or in any [`Files`] (object storage).
//!
//! In a directory, one writer at a time holds `.lock` (an advisory lock the kernel drops when
//! the process dies); elsewhere the caller elects the one writer. An append is one batch:
//!
//! 1. `.pending` records the size the batch will reach, and is made durable;
//! 2. the batch's entry bundles and hash tiles are written and made durable (with their
//!    directories). Every path they use is beyond what the published checkpoint covers, so
//!    readers never see them half-written;
//! 3. the new checkpoint is signed, written to a temporary file, made durable, and renamed over
//!    `checkpoint` (then the directory is made durable): this is the moment the batch is
//!    published and acknowledged.
//!
//! Opening a log after a crash reads `.pending`: when the checkpoint did not reach that size,
//! the files the unfinished batch may have written are removed, so nothing unacknowledged is
//! left where a client could find it. The log is then exactly the published checkpoint.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::checkpoint::Checkpoint;
use crate::files::{Dir, Files, Version, sync_dir};
use crate::merkle::{Hash, leaf_hash};
use crate::note::{NoteError, NoteSigner, NoteVerifier};
use crate::tiles::{WIDTH, bundle_path, edge, tile_path};
use crate::tree::Edge;

/// The largest entry: entry bundles store each length in 16 bits.
pub const MAX_ENTRY: usize = u16::MAX as usize;

/// The lock file a writer holds.
pub const LOCK_FILE: &str = ".lock";
/// The size an unfinished batch was going to reach.
pub const PENDING_FILE: &str = ".pending";

/// What went wrong with a log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The directory does not exist.
    #[error("{0}: no such directory")]
    NoDirectory(PathBuf),
    /// The directory exists but holds no checkpoint.
    #[error("{0} is not a log: it has no checkpoint (create one with `assay log init`)")]
    NotALog(PathBuf),
    /// `create` was given a directory that already holds something.
    #[error("{0} is not empty: a new log needs an empty or missing directory")]
    NotEmpty(PathBuf),
    /// Another process is writing the log.
    #[error("{dir} is being written by another process{holder}: only one writer at a time")]
    Locked {
        /// The log.
        dir: PathBuf,
        /// ` (pid N)`, when the lock file says.
        holder: String,
    },
    /// The checkpoint file is not a readable checkpoint.
    #[error("{path}: corrupt checkpoint: {why}")]
    CorruptCheckpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The checkpoint is not signed by the key in use.
    #[error("{path}: not signed by {key}{signed_by}")]
    WrongKey {
        /// The checkpoint file.
        path: PathBuf,
        /// The key that was expected to have signed.
        key: String,
        /// `; it is signed by …`, when known.
        signed_by: String,
    },
    /// A tile or bundle the checkpoint needs is missing or does not match it.
    #[error("{0} (run `assay log verify` for a full report)")]
    Damaged(String),
    /// An entry is too large for an entry bundle.
    #[error("entry {index} is {len} bytes; entries are at most {MAX_ENTRY} bytes")]
    EntryTooLarge {
        /// Its position in the batch.
        index: usize,
        /// Its length.
        len: usize,
    },
    /// A key could not sign.
    #[error(transparent)]
    Key(#[from] NoteError),
    /// The storage the log is kept in (not a local directory) failed: the message names the
    /// object.
    #[error("{0}")]
    Store(String),
    /// Another writer changed the log since this one last read it: this writer no longer owns
    /// it (see [`crate::files`]).
    #[error("{0} was written by another writer meanwhile: this one no longer owns the log and wrote nothing over it")]
    Superseded(String),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io { path: path.to_path_buf(), source }
}

/// Reads `dir/checkpoint`, verifies it with `verifier`, and parses it.
pub fn read_checkpoint(dir: &Path, verifier: &NoteVerifier) -> Result<(String, Checkpoint), LogError> {
    read_checkpoint_in(&Dir::existing(dir)?, verifier)
}

/// Reads the checkpoint of the log in `files`, verifies it with `verifier`, and parses it.
pub fn read_checkpoint_in(files: &dyn Files, verifier: &NoteVerifier) -> Result<(String, Checkpoint), LogError> {
    verified(files, read_checkpoint_note_in(files)?, verifier)
}

/// A checkpoint note read from `files`, verified with `verifier` and parsed.
fn verified(files: &dyn Files, note: String, verifier: &NoteVerifier) -> Result<(String, Checkpoint), LogError> {
    let path = PathBuf::from(files.name("checkpoint"));
    let body = verifier.verify(&note).map_err(|e| match e {
        NoteError::Malformed(why) => LogError::CorruptCheckpoint { path: path.clone(), why },
        _ => LogError::WrongKey { path: path.clone(), key: verifier.text(), signed_by: signed_by(&note) },
    })?;
    let checkpoint = Checkpoint::parse(body).map_err(|why| LogError::CorruptCheckpoint { path, why })?;
    Ok((note, checkpoint))
}

/// Reads `dir/checkpoint` as text, with the errors a user can act on.
pub fn read_checkpoint_note(dir: &Path) -> Result<String, LogError> {
    read_checkpoint_note_in(&Dir::existing(dir)?)
}

/// Reads the checkpoint of the log in `files` as text.
pub fn read_checkpoint_note_in(files: &dyn Files) -> Result<String, LogError> {
    note_text(files, files.read("checkpoint")?)
}

/// The checkpoint's bytes as text, naming the log when there are none.
fn note_text(files: &dyn Files, bytes: Option<Vec<u8>>) -> Result<String, LogError> {
    match bytes {
        Some(bytes) => String::from_utf8(bytes).map_err(|_| LogError::CorruptCheckpoint {
            path: PathBuf::from(files.name("checkpoint")),
            why: "it is not UTF-8 text".into(),
        }),
        None => Err(LogError::NotALog(PathBuf::from(files.location()))),
    }
}

/// `; it is signed by NAME+HASH, …` for a message, from a note's signature lines.
pub fn signed_by(note: &str) -> String {
    let keys = crate::note::signature_keys(note);
    if keys.is_empty() { String::new() } else { format!("; it is signed by {}", keys.join(", ")) }
}

/// A log open for appending. Dropping it releases the lock.
pub struct Log {
    files: Arc<dyn Files>,
    signer: NoteSigner,
    origin: String,
    edge: Edge,
    /// The entries of the unfinished bundle, encoded.
    bundle: Vec<u8>,
    checkpoint: String,
    /// The checkpoint's version as this writer last read or wrote it (`None` before there is
    /// one): it is replaced only if still so.
    version: Option<Version>,
    /// The lock file, for a log in a directory.
    _lock: Option<File>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("location", &self.files.location())
            .field("size", &self.edge.size())
            .finish_non_exhaustive()
    }
}

fn lock(dir: &Path) -> Result<File, LogError> {
    let path = dir.join(LOCK_FILE);
    let mut file =
        OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io(&path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let holder = text.trim().parse::<u32>().map(|pid| format!(" (pid {pid})")).unwrap_or_default();
            return Err(LogError::Locked { dir: dir.to_path_buf(), holder });
        }
        Err(fs::TryLockError::Error(e)) => return Err(LogError::Io { path, source: e }),
    }
    file.set_len(0).map_err(io(&path))?;
    file.write_all(format!("{}\n", std::process::id()).as_bytes()).map_err(io(&path))?;
    Ok(file)
}

/// Reads a hash tile of `width` hashes, naming a missing or wrongly sized file.
pub(crate) fn read_hashes(files: &dyn Files, path: &str, width: u64) -> Result<Vec<Hash>, LogError> {
    let bytes = files.read(path)?.ok_or_else(|| LogError::Damaged(format!("{} is missing", files.name(path))))?;
    if bytes.len() as u64 != width * 32 {
        return Err(LogError::Damaged(format!(
            "{} is {} bytes; {width} hashes take {}",
            files.name(path),
            bytes.len(),
            width * 32
        )));
    }
    Ok(bytes.chunks_exact(32).map(|c| c.try_into().unwrap_or([0; 32])).collect())
}

impl Log {
    /// Creates a new, empty log in `dir` (missing or empty) and publishes its checkpoint of
    /// size 0. The origin is the key's name.
    pub fn create(dir: &Path, signer: NoteSigner) -> Result<Log, LogError> {
        if dir.exists() {
            let mut entries = fs::read_dir(dir).map_err(io(dir))?;
            if entries.next().is_some() {
                return Err(LogError::NotEmpty(dir.to_path_buf()));
            }
        } else {
            fs::create_dir_all(dir).map_err(io(dir))?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        let lock = lock(dir)?;
        Log::start(Arc::new(Dir::new(dir)), signer, Some(lock))
    }

    /// Creates a new, empty log in `files` (which must hold nothing). Nothing here keeps a
    /// second writer out: the caller makes sure there is one (assay's shared ledger elects its
    /// sequencer through PostgreSQL).
    pub fn create_in(files: Arc<dyn Files>, signer: NoteSigner) -> Result<Log, LogError> {
        if !files.is_empty()? {
            return Err(LogError::NotEmpty(PathBuf::from(files.location())));
        }
        Log::start(files, signer, None)
    }

    fn start(files: Arc<dyn Files>, signer: NoteSigner, lock: Option<File>) -> Result<Log, LogError> {
        let origin = signer.name().to_string();
        let mut log = Log {
            files,
            signer,
            origin,
            edge: Edge::empty(),
            bundle: Vec::new(),
            checkpoint: String::new(),
            version: None,
            _lock: lock,
        };
        log.publish()?;
        Ok(log)
    }

    /// Opens an existing log for appending: takes the lock, removes what an unfinished batch
    /// left behind, and rebuilds the tree's edge from the tiles the checkpoint covers.
    pub fn open(dir: &Path, signer: NoteSigner) -> Result<Log, LogError> {
        read_checkpoint_note(dir)?;
        let lock = lock(dir)?;
        Log::open_locked(Arc::new(Dir::new(dir)), signer, Some(lock))
    }

    /// Opens an existing log in `files` for appending, as [`Log::open`] does, but without a
    /// lock: the caller makes sure there is one writer.
    pub fn open_in(files: Arc<dyn Files>, signer: NoteSigner) -> Result<Log, LogError> {
        Log::open_locked(files, signer, None)
    }

    fn open_locked(files: Arc<dyn Files>, signer: NoteSigner, lock: Option<File>) -> Result<Log, LogError> {
        let (origin, edge, bundle, checkpoint, version) = load(files.as_ref(), &signer)?;
        Ok(Log { files, origin, signer, edge, bundle, checkpoint, version: Some(version), _lock: lock })
    }

    /// Reads the log again from its files, keeping the lock: what a batch that failed to
    /// write left behind is removed, and the log is as its checkpoint says. What to do after
    /// [`Log::append`] failed, before appending again.
    pub fn reload(&mut self) -> Result<(), LogError> {
        let (origin, edge, bundle, checkpoint, version) = load(self.files.as_ref(), &self.signer)?;
        (self.origin, self.edge, self.bundle, self.checkpoint) = (origin, edge, bundle, checkpoint);
        self.version = Some(version);
        Ok(())
    }

    /// The number of entries.
    pub fn size(&self) -> u64 {
        self.edge.size()
    }

    /// The log's origin.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Where the log is: its directory or URL.
    pub fn location(&self) -> String {
        self.files.location()
    }

    /// The current signed checkpoint.
    pub fn checkpoint(&self) -> &str {
        &self.checkpoint
    }

    /// Appends `entries` as one batch and returns the index of the first. When this returns
    /// `Ok`, a checkpoint covering them is durable. On `Err`, none of them is published (the
    /// log must be read again with [`Log::reload`] before it is written again).
    pub fn append<E: AsRef<[u8]>>(&mut self, entries: &[E]) -> Result<u64, LogError> {
        for (index, e) in entries.iter().enumerate() {
            if e.as_ref().len() > MAX_ENTRY {
                return Err(LogError::EntryTooLarge { index, len: e.as_ref().len() });
            }
        }
        let first = self.size();
        if entries.is_empty() {
            return Ok(first);
        }
        let target = first + entries.len() as u64;
        // A torn record is read as no record: this batch had not started writing.
        self.files.write(&[(PENDING_FILE.to_string(), format!("{target}\n").into_bytes())])?;

        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        for e in entries {
            let e = e.as_ref();
            self.bundle.extend_from_slice(&(e.len() as u16).to_be_bytes());
            self.bundle.extend_from_slice(e);
            self.edge.push(leaf_hash(e), &mut |level, index, hashes| {
                files.push((tile_path(level, index, WIDTH), hashes.concat()));
            });
            if self.edge.size().is_multiple_of(WIDTH) {
                files.push((bundle_path(self.edge.size() / WIDTH - 1, WIDTH), std::mem::take(&mut self.bundle)));
            }
        }
        // The unfinished tile of each level that changed, and the unfinished bundle.
        for level in 0..self.edge.depth() {
            let shift = 8 * level as u32;
            let (before, after) = (first >> shift, target >> shift);
            if before != after && !after.is_multiple_of(WIDTH) {
                files.push((tile_path(level as u8, after / WIDTH, after % WIDTH), self.edge.partial(level).concat()));
            }
        }
        if !target.is_multiple_of(WIDTH) {
            files.push((bundle_path(target / WIDTH, target % WIDTH), self.bundle.clone()));
        }
        // Every one of them is beyond the published checkpoint, so none exists yet unless
        // another writer is at work.
        self.files.create(&files)?;
        self.publish()?;
        Ok(first)
    }

    fn publish(&mut self) -> Result<(), LogError> {
        let body = Checkpoint { origin: self.origin.clone(), size: self.edge.size(), root: self.edge.root() }.text();
        let note = self.signer.sign(&body)?;
        self.version = Some(self.files.replace_if("checkpoint", note.as_bytes(), self.version.as_ref())?);
        self.checkpoint = note;
        Ok(())
    }
}

/// The log in `files` as its checkpoint says (the lock held): origin, edge, unfinished bundle,
/// checkpoint note. Removes what an unfinished batch left behind.
fn load(files: &dyn Files, signer: &NoteSigner) -> Result<(String, Edge, Vec<u8>, String, Version), LogError> {
    // Read the checkpoint after taking the lock: a writer that just finished may have moved it.
    let (bytes, version) = match files.read_versioned("checkpoint")? {
        Some((bytes, version)) => (Some(bytes), version),
        None => (None, Version::default()),
    };
    let (note, checkpoint) = verified(files, note_text(files, bytes)?, &signer.verifier())?;
    recover(files, checkpoint.size)?;
    let size = checkpoint.size;
    let mut tiles = Vec::new();
    for (level, index, width) in edge(size) {
        tiles.push(read_hashes(files, &tile_path(level, index, width), width)?);
    }
    let edge = Edge::from_tiles(size, &tiles).map_err(LogError::Damaged)?;
    if edge.root() != checkpoint.root {
        return Err(LogError::Damaged(format!(
            "the edge tiles of {} do not hash to the checkpoint's root",
            files.location()
        )));
    }
    let mut bundle = Vec::new();
    let in_bundle = size % WIDTH;
    if in_bundle > 0 {
        let path = bundle_path(size / WIDTH, in_bundle);
        bundle = files.read(&path)?.ok_or_else(|| LogError::Damaged(format!("{} is missing", files.name(&path))))?;
        let leaves = crate::bundle::parse(&bundle)
            .map_err(|why| LogError::Damaged(format!("{}: {why}", files.name(&path))))?
            .iter()
            .map(|e| leaf_hash(e))
            .collect::<Vec<_>>();
        if leaves.as_slice() != edge.partial(0) {
            return Err(LogError::Damaged(format!("{} does not match its tile", files.name(&path))));
        }
    }
    Ok((checkpoint.origin, edge, bundle, note, version))
}

/// Removes every tile and bundle an unfinished batch from `size` may have written.
fn recover(files: &dyn Files, size: u64) -> Result<(), LogError> {
    let Some(bytes) = files.read(PENDING_FILE)? else { return Ok(()) };
    let text = String::from_utf8_lossy(&bytes);
    // A torn record means the batch had not started writing.
    let Some(target) = text.strip_suffix('\n').and_then(|t| t.parse::<u64>().ok()) else { return Ok(()) };
    if target <= size {
        return Ok(());
    }
    let mut doomed = Vec::new();
    let mut level = 0u32;
    loop {
        let shift = 8 * level;
        if shift >= 64 || target >> shift == 0 {
            break;
        }
        let (published, reached) = (size >> shift, target >> shift);
        // Every full tile from the published edge tile on, and every partial tile beyond the
        // published one, belongs to the unfinished batch.
        let edge_index = published / WIDTH;
        for index in edge_index..=reached / WIDTH {
            let mut paths = vec![tile_path(level as u8, index, WIDTH)];
            if level == 0 {
                paths.push(bundle_path(index, WIDTH));
            }
            for full in paths {
                for name in files.list(&format!("{full}.p"))? {
                    let width = name.parse::<u64>().unwrap_or(u64::MAX);
                    if index != edge_index || width > published % WIDTH {
                        doomed.push(format!("{full}.p/{name}"));
                    }
                }
                doomed.push(full);
            }
        }
        level += 1;
    }
    files.remove(&doomed)
}
