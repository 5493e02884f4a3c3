//! Reading a log without the lock: entries, tiles and inclusion proofs at the published
//! checkpoint. A writer never changes a file the published checkpoint covers, so a reader sees
//! a consistent log while appends go on.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::checkpoint::Checkpoint;
use crate::files::{Dir, Files};
use crate::merkle::{Hash, ProofError, inclusion_proof_from, root};
use crate::note::NoteVerifier;
use crate::store::{LogError, read_checkpoint_in, read_checkpoint_note_in, read_hashes};
use crate::tiles::{WIDTH, bundle_path, tile_path};

/// A log opened for reading at its current checkpoint.
pub struct Reader {
    files: Arc<dyn Files>,
    note: String,
    checkpoint: Checkpoint,
    tiles: HashMap<(u8, u64), Vec<Hash>>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("location", &self.files.location())
            .field("size", &self.checkpoint.size)
            .finish_non_exhaustive()
    }
}

/// The text of a signed note, without checking any signature.
pub fn note_text(note: &str) -> Option<&str> {
    note.rfind("\n\n").map(|split| &note[..=split])
}

/// The width of tile `index` at `level` in a tree of `size`.
pub fn tile_width(size: u64, level: u8, index: u64) -> u64 {
    let count = size >> (8 * u32::from(level));
    if index < count / WIDTH { WIDTH } else { count % WIDTH }
}

impl Reader {
    /// Opens the log in `dir`. With a verifier, the checkpoint's signature must verify.
    pub fn open(dir: &Path, verifier: Option<&NoteVerifier>) -> Result<Reader, LogError> {
        Reader::open_in(Arc::new(Dir::existing(dir)?), verifier)
    }

    /// Opens the log in `files`. With a verifier, the checkpoint's signature must verify.
    pub fn open_in(files: Arc<dyn Files>, verifier: Option<&NoteVerifier>) -> Result<Reader, LogError> {
        let (note, checkpoint) = match verifier {
            Some(v) => read_checkpoint_in(files.as_ref(), v)?,
            None => {
                let note = read_checkpoint_note_in(files.as_ref())?;
                let corrupt =
                    |why: String| LogError::CorruptCheckpoint { path: PathBuf::from(files.name("checkpoint")), why };
                let text = note_text(&note).ok_or_else(|| corrupt("it is not a signed note".into()))?;
                let checkpoint = Checkpoint::parse(text).map_err(corrupt)?;
                (note, checkpoint)
            }
        };
        Ok(Reader { files, note, checkpoint, tiles: HashMap::new() })
    }

    /// The checkpoint read at open.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The signed checkpoint, as it is on disk.
    pub fn note(&self) -> &str {
        &self.note
    }

    /// The entries in `range` (clamped to the checkpoint's size).
    pub fn entries(&self, range: Range<u64>) -> Result<Vec<Vec<u8>>, LogError> {
        let end = range.end.min(self.checkpoint.size);
        let mut out = Vec::new();
        let mut i = range.start;
        while i < end {
            let bundle = i / WIDTH;
            let width = tile_width(self.checkpoint.size, 0, bundle);
            let path = bundle_path(bundle, width);
            let name = || self.files.name(&path);
            let bytes = self.files.read(&path)?.ok_or_else(|| LogError::Damaged(format!("{} is missing", name())))?;
            let entries =
                crate::bundle::parse(&bytes).map_err(|why| LogError::Damaged(format!("{}: {why}", name())))?;
            if entries.len() as u64 != width {
                return Err(LogError::Damaged(format!(
                    "{} holds {} entries where the checkpoint needs {width}",
                    name(),
                    entries.len()
                )));
            }
            let stop = end.min((bundle + 1) * WIDTH);
            for j in i..stop {
                out.push(entries[(j - bundle * WIDTH) as usize].to_vec());
            }
            i = stop;
        }
        Ok(out)
    }

    fn tile(&mut self, level: u8, index: u64) -> Result<&[Hash], LogError> {
        if !self.tiles.contains_key(&(level, index)) {
            let width = tile_width(self.checkpoint.size, level, index);
            let hashes = read_hashes(self.files.as_ref(), &tile_path(level, index, width), width)?;
            self.tiles.insert((level, index), hashes);
        }
        Ok(self.tiles.get(&(level, index)).map_or(&[], Vec::as_slice))
    }

    /// The root of the perfect subtree of leaves `start .. start + 2^height`, from one tile.
    fn subtree(&mut self, start: u64, height: u32) -> Result<Hash, LogError> {
        let level = (height / 8) as u8;
        let first = start >> (8 * u32::from(level));
        let tile = self.tile(level, first / WIDTH)?;
        let position = (first % WIDTH) as usize;
        let hashes = tile.get(position..position + (1usize << (height % 8))).ok_or_else(|| {
            LogError::Damaged(format!("tile {level}/{} is too short for leaves from {start}", first / WIDTH))
        })?;
        Ok(root(hashes))
    }

    /// The inclusion proof of entry `index` in the tree of the checkpoint.
    pub fn inclusion_proof(&mut self, index: u64) -> Result<Result<Vec<Hash>, ProofError>, LogError> {
        let size = self.checkpoint.size;
        inclusion_proof_from(index, size, &mut |start, height| self.subtree(start, height))
    }
}
