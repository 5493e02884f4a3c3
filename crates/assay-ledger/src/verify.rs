//! Verifying a whole log: every entry is re-read and hashed, every tile recomputed and compared,
//! the root checked against the signed checkpoint, and, optionally, the log checked to extend a
//! checkpoint seen earlier. Each problem is named precisely (which entry, which file).

use std::path::{Path, PathBuf};

use crate::checkpoint::Checkpoint;
use crate::files::{Dir, Files};
use crate::merkle::{Hash, leaf_hash, root};
use crate::note::{NoteError, NoteVerifier};
use crate::reader::{note_text, tile_width};
use crate::store::{LogError, read_checkpoint_note_in, signed_by};
use crate::tiles::{WIDTH, bundle_path, edge, tile_path};
use crate::tree::Edge;

/// One thing wrong with a log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The checkpoint carries a signature under the key's name that the key did not make.
    #[error("forged checkpoint: its signature under the name {name} was not made by the key {key}")]
    ForgedCheckpoint {
        /// The key's name.
        name: String,
        /// The verifier key.
        key: String,
    },
    /// An entry bundle is missing.
    #[error("{path} is missing (entries {first}..{end})")]
    BundleMissing {
        /// The bundle.
        path: String,
        /// Its first entry.
        first: u64,
        /// One past its last entry.
        end: u64,
    },
    /// An entry bundle ends inside an entry.
    #[error("{path} is {why}")]
    BundleTruncated {
        /// The bundle.
        path: String,
        /// Where it breaks.
        why: String,
    },
    /// An entry was removed from a bundle.
    #[error("entry {index} was deleted from {path}")]
    EntryDeleted {
        /// The bundle.
        path: String,
        /// The index the entry had.
        index: u64,
    },
    /// A bundle holds the wrong number of entries, in a way not explained by one deletion.
    #[error("{path} holds {holds} entries where the checkpoint needs {needs}")]
    BundleCount {
        /// The bundle.
        path: String,
        /// Entries in the file.
        holds: u64,
        /// Entries the checkpoint needs.
        needs: u64,
    },
    /// An entry's bytes changed.
    #[error("entry {index} was changed: it no longer hashes to its leaf hash in {tile}")]
    EntryChanged {
        /// The entry.
        index: u64,
        /// The tile holding its recorded hash.
        tile: String,
    },
    /// Two entries changed places.
    #[error("entries {first} and {second} were swapped")]
    EntriesSwapped {
        /// The first.
        first: u64,
        /// The second.
        second: u64,
    },
    /// A hash tile is missing.
    #[error("{path} is missing")]
    TileMissing {
        /// The tile.
        path: String,
    },
    /// A hash tile has the wrong length.
    #[error("{path} is truncated: {len} bytes where {width} hashes take {want}")]
    TileTruncated {
        /// The tile.
        path: String,
        /// Its length.
        len: u64,
        /// Hashes it should hold.
        width: u64,
        /// The length they take.
        want: u64,
    },
    /// A hash in a tile does not match what the entries below it hash to.
    #[error("{path}: hash {position} was changed (it covers entries {first}..{end})")]
    TileHashChanged {
        /// The tile.
        path: String,
        /// The hash's position in the tile.
        position: u64,
        /// The first entry it covers.
        first: u64,
        /// One past the last.
        end: u64,
    },
    /// The entries and tiles agree with each other but not with the signed checkpoint.
    #[error(
        "fork: the checkpoint is signed over a different tree of size {size} (root {signed}); the log's entries hash to {actual}"
    )]
    Fork {
        /// The checkpoint's size.
        size: u64,
        /// The signed root (base64).
        signed: String,
        /// The log's root (base64).
        actual: String,
    },
    /// Entries and tiles disagree and neither matches the checkpoint.
    #[error("entry {index} does not match its hash in {tile}, and neither matches the checkpoint")]
    Mismatch {
        /// The entry.
        index: u64,
        /// Its tile.
        tile: String,
    },
    /// The log is smaller than a checkpoint seen earlier.
    #[error("rollback: the log has {size} entries but an earlier checkpoint showed {seen}")]
    Rollback {
        /// The log's size now.
        size: u64,
        /// The size seen earlier.
        seen: u64,
    },
    /// The log's first entries no longer hash to a root seen earlier.
    #[error(
        "history rewritten: the log's first {seen} entries no longer hash to the root an earlier checkpoint signed"
    )]
    Inconsistent {
        /// The size seen earlier.
        seen: u64,
    },
    /// The earlier checkpoint is for another log.
    #[error("the earlier checkpoint is for log {other}, not {origin}")]
    OtherLog {
        /// Its origin.
        other: String,
        /// This log's origin.
        origin: String,
    },
}

/// The outcome of verifying a log.
#[derive(Debug)]
pub struct Report {
    /// The checkpoint that was verified.
    pub checkpoint: Checkpoint,
    /// What is wrong; empty when the log verifies.
    pub problems: Vec<Problem>,
}

/// Why verification could not start.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The log cannot be read.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The earlier checkpoint given with `--since` is not signed by the log's key.
    #[error("the earlier checkpoint: {0}")]
    SinceUnsigned(String),
    /// The earlier checkpoint given with `--since` is not a checkpoint.
    #[error("the earlier checkpoint: {0}")]
    SinceMalformed(String),
}

fn b64(h: &Hash) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(h)
}

/// The hashes of each level, from level 0 up: level L+1 holds the roots of level L's full tiles.
fn levels_from(level0: Vec<Hash>) -> Vec<Vec<Hash>> {
    let mut levels = vec![level0];
    loop {
        let last = &levels[levels.len() - 1];
        if (last.len() as u64) < WIDTH {
            break;
        }
        let next: Vec<Hash> = last.chunks_exact(WIDTH as usize).map(root).collect();
        levels.push(next);
    }
    levels
}

/// The root of the first `size` leaves, from the levels.
fn root_at(levels: &[Vec<Hash>], size: u64) -> Hash {
    let tiles: Vec<Vec<Hash>> = edge(size)
        .iter()
        .map(|&(level, index, width)| {
            let start = (index * WIDTH) as usize;
            levels[level as usize][start..start + width as usize].to_vec()
        })
        .collect();
    Edge::from_tiles(size, &tiles).map(|e| e.root()).unwrap_or([0; 32])
}

/// Bundles (or tiles of one level) read in one request to the store: with entries at their
/// largest (64 KiB), 32 full bundles are 512 MiB; typical entries make it a few MiB.
const READ_AHEAD: u64 = 32;

/// A hash tile as read (`bytes`), or `None` with the problem noted.
fn parse_tile(path: String, bytes: Option<Vec<u8>>, width: u64, problems: &mut Vec<Problem>) -> Option<Vec<Hash>> {
    match bytes {
        Some(bytes) if bytes.len() as u64 == width * 32 => {
            Some(bytes.chunks_exact(32).map(|c| c.try_into().unwrap_or([0; 32])).collect())
        }
        Some(bytes) => {
            problems.push(Problem::TileTruncated { path, len: bytes.len() as u64, width, want: width * 32 });
            None
        }
        None => {
            problems.push(Problem::TileMissing { path });
            None
        }
    }
}

/// Checks the signature: `Ok(None)` when it verifies, `Ok(Some(problem))` for a forgery (a
/// signature under the key's name that the key did not make), `Err` when the checkpoint is
/// not signed under the key's name at all (the wrong key for this log).
fn check_signature(note: &str, verifier: &NoteVerifier, path: &Path) -> Result<Option<Problem>, LogError> {
    match verifier.verify(note) {
        Ok(_) => Ok(None),
        Err(NoteError::Malformed(why)) => Err(LogError::CorruptCheckpoint { path: path.to_path_buf(), why }),
        Err(_) => {
            let named = crate::note::signature_keys(note)
                .iter()
                .any(|k| k.rsplit_once('+').map(|(n, _)| n) == Some(verifier.name()));
            if named {
                Ok(Some(Problem::ForgedCheckpoint { name: verifier.name().to_string(), key: verifier.text() }))
            } else {
                Err(LogError::WrongKey { path: path.to_path_buf(), key: verifier.text(), signed_by: signed_by(note) })
            }
        }
    }
}

/// Verifies the log in `dir` against `verifier`; `since` is a signed checkpoint seen earlier,
/// which the log must extend.
pub fn verify(dir: &Path, verifier: &NoteVerifier, since: Option<&str>) -> Result<Report, VerifyError> {
    verify_in(&Dir::existing(dir)?, verifier, since)
}

/// Verifies the log in `files`, as [`verify`] does. A file the store does not have is a
/// problem in the report; a store that cannot be read is an error.
pub fn verify_in(files: &dyn Files, verifier: &NoteVerifier, since: Option<&str>) -> Result<Report, VerifyError> {
    let path = PathBuf::from(files.name("checkpoint"));
    let note = read_checkpoint_note_in(files)?;
    let mut problems = Vec::new();
    problems.extend(check_signature(&note, verifier, &path)?);
    let corrupt = |why: String| LogError::CorruptCheckpoint { path: path.clone(), why };
    let text = note_text(&note).ok_or_else(|| corrupt("it is not a signed note".into()))?;
    let checkpoint = Checkpoint::parse(text).map_err(corrupt)?;
    let size = checkpoint.size;

    // Level 0 twice: from the entries (computed) and from the stored tiles (recorded), each
    // filled from the other where its own source is unreadable.
    let bundles = size.div_ceil(WIDTH);
    let mut computed: Vec<Hash> = Vec::with_capacity(size as usize);
    let mut recorded: Vec<Hash> = Vec::with_capacity(size as usize);
    // Per bundle: the entries' hashes when they were read whole but their count is wrong.
    let mut miscounted: Vec<(u64, Vec<Hash>)> = Vec::new();
    let mut read = Vec::new().into_iter();
    for b in 0..bundles {
        if b.is_multiple_of(READ_AHEAD) {
            // Each bundle's tile and bundle, for the next READ_AHEAD bundles, in one request.
            let paths: Vec<String> = (b..bundles.min(b + READ_AHEAD))
                .flat_map(|b| {
                    let width = tile_width(size, 0, b);
                    [tile_path(0, b, width), bundle_path(b, width)]
                })
                .collect();
            read = files.read_many(&paths)?.into_iter();
        }
        let width = tile_width(size, 0, b);
        let tile = parse_tile(tile_path(0, b, width), read.next().flatten(), width, &mut problems);
        let bpath = bundle_path(b, width);
        let entries: Option<Vec<Hash>> = match read.next().flatten() {
            None => {
                problems.push(Problem::BundleMissing { path: bpath.clone(), first: b * WIDTH, end: b * WIDTH + width });
                None
            }
            Some(bytes) => match crate::bundle::parse(&bytes) {
                Err(why) => {
                    problems.push(Problem::BundleTruncated { path: bpath.clone(), why });
                    None
                }
                Ok(entries) if entries.len() as u64 != width => {
                    miscounted.push((b, entries.iter().map(|e| leaf_hash(e)).collect()));
                    None
                }
                Ok(entries) => Some(entries.iter().map(|e| leaf_hash(e)).collect()),
            },
        };
        let placeholder = || vec![[0u8; 32]; width as usize];
        match (entries, tile) {
            (Some(e), Some(t)) => {
                computed.extend_from_slice(&e);
                recorded.extend_from_slice(&t);
            }
            (Some(e), None) => {
                computed.extend_from_slice(&e);
                recorded.extend_from_slice(&e);
            }
            (None, Some(t)) => {
                computed.extend_from_slice(&t);
                recorded.extend_from_slice(&t);
            }
            (None, None) => {
                computed.extend(placeholder());
                recorded.extend(placeholder());
            }
        }
    }

    // Which level 0 the checkpoint vouches for decides whether a difference is a changed entry
    // or a changed tile.
    let entries_agree = computed == recorded;
    let computed_levels = levels_from(computed);
    let computed_root = root_at(&computed_levels, size);
    let (truth, entries_true) = if computed_root == checkpoint.root || entries_agree {
        (computed_levels, true)
    } else {
        let recorded_levels = levels_from(recorded.clone());
        if root_at(&recorded_levels, size) == checkpoint.root {
            (recorded_levels, false)
        } else {
            (computed_levels, true)
        }
    };
    let root_ok = root_at(&truth, size) == checkpoint.root;

    for (b, hashes) in miscounted {
        let width = tile_width(size, 0, b);
        let start = (b * WIDTH) as usize;
        let tile = &recorded[start..start + width as usize];
        let path = bundle_path(b, width);
        let missing = width as usize - hashes.len().min(width as usize);
        let gap = (0..hashes.len()).find(|&i| hashes[i] != tile[i]).unwrap_or(hashes.len());
        if missing == 1 && hashes[gap..] == tile[gap + 1..] {
            problems.push(Problem::EntryDeleted { path, index: start as u64 + gap as u64 });
        } else {
            problems.push(Problem::BundleCount { path, holds: hashes.len() as u64, needs: width });
        }
    }

    if !entries_agree {
        let computed0 = &truth[0];
        let differing: Vec<usize> = if entries_true {
            (0..size as usize).filter(|&i| computed0[i] != recorded[i]).collect()
        } else {
            // `truth` is the recorded level; the entries' hashes are needed again.
            Vec::new()
        };
        if entries_true && root_ok {
            for i in differing {
                let b = i as u64 / WIDTH;
                problems.push(Problem::TileHashChanged {
                    path: tile_path(0, b, tile_width(size, 0, b)),
                    position: i as u64 % WIDTH,
                    first: i as u64,
                    end: i as u64 + 1,
                });
            }
        } else {
            // Entries differ from the tiles the checkpoint vouches for (or from tiles nothing vouches for).
            let entries_hashes = entry_hashes(files, size)?;
            let mut diff: Vec<usize> =
                (0..size as usize).filter(|&i| entries_hashes[i].is_some_and(|h| h != recorded[i])).collect();
            if !root_ok {
                for i in diff {
                    let b = i as u64 / WIDTH;
                    problems.push(Problem::Mismatch { index: i as u64, tile: tile_path(0, b, tile_width(size, 0, b)) });
                }
            } else {
                while let Some(i) = diff.first().copied() {
                    diff.remove(0);
                    let swap = diff.iter().position(|&j| {
                        entries_hashes[i] == Some(recorded[j]) && entries_hashes[j] == Some(recorded[i])
                    });
                    if let Some(k) = swap {
                        let j = diff.remove(k);
                        problems.push(Problem::EntriesSwapped { first: i as u64, second: j as u64 });
                    } else {
                        let b = i as u64 / WIDTH;
                        problems.push(Problem::EntryChanged {
                            index: i as u64,
                            tile: tile_path(0, b, tile_width(size, 0, b)),
                        });
                    }
                }
            }
        }
    }

    // Upper levels: every stored tile against the level below as the checkpoint vouches for it.
    for (level, hashes) in truth.iter().enumerate().skip(1) {
        let count = hashes.len() as u64;
        let tiles: Vec<(u64, u64)> = (0..count.div_ceil(WIDTH))
            .map(|index| (index, tile_width(size, level as u8, index)))
            .filter(|&(_, width)| width > 0)
            .collect();
        let mut read = Vec::new().into_iter();
        for (n, &(index, width)) in tiles.iter().enumerate() {
            if (n as u64).is_multiple_of(READ_AHEAD) {
                let paths: Vec<String> = tiles[n..tiles.len().min(n + READ_AHEAD as usize)]
                    .iter()
                    .map(|&(index, width)| tile_path(level as u8, index, width))
                    .collect();
                read = files.read_many(&paths)?.into_iter();
            }
            let path = tile_path(level as u8, index, width);
            let Some(tile) = parse_tile(path, read.next().flatten(), width, &mut problems) else { continue };
            let span = WIDTH.pow(level as u32);
            for (j, h) in tile.iter().enumerate() {
                let position = index * WIDTH + j as u64;
                if hashes.get(position as usize) != Some(h) {
                    problems.push(Problem::TileHashChanged {
                        path: tile_path(level as u8, index, width),
                        position: j as u64,
                        first: position * span,
                        end: (position + 1) * span,
                    });
                }
            }
        }
    }

    if !root_ok && entries_agree {
        problems.push(Problem::Fork { size, signed: b64(&checkpoint.root), actual: b64(&root_at(&truth, size)) });
    }

    if let Some(since) = since {
        let earlier = match verifier.verify(since) {
            Ok(body) => Checkpoint::parse(body).map_err(VerifyError::SinceMalformed)?,
            Err(e @ NoteError::NotSigned(_)) => return Err(VerifyError::SinceUnsigned(e.to_string())),
            Err(e) => return Err(VerifyError::SinceMalformed(e.to_string())),
        };
        if earlier.origin != checkpoint.origin {
            problems.push(Problem::OtherLog { other: earlier.origin, origin: checkpoint.origin.clone() });
        } else if earlier.size > size {
            problems.push(Problem::Rollback { size, seen: earlier.size });
        } else if root_at(&truth, earlier.size) != earlier.root {
            problems.push(Problem::Inconsistent { seen: earlier.size });
        }
    }
    Ok(Report { checkpoint, problems })
}

/// The entries' leaf hashes, bundle by bundle, where the bundles can be read with the right
/// count (`None` elsewhere).
fn entry_hashes(files: &dyn Files, size: u64) -> Result<Vec<Option<Hash>>, LogError> {
    let mut out = Vec::with_capacity(size as usize);
    for b in 0..size.div_ceil(WIDTH) {
        let width = tile_width(size, 0, b);
        let parsed = files.read(&bundle_path(b, width))?.and_then(|bytes| {
            crate::bundle::parse(&bytes)
                .ok()
                .filter(|e| e.len() as u64 == width)
                .map(|e| e.iter().map(|x| Some(leaf_hash(x))).collect::<Vec<_>>())
        });
        match parsed {
            Some(h) => out.extend(h),
            // Unreadable bundles are reported on their own.
            None => out.extend(std::iter::repeat_n(None, width as usize)),
        }
    }
    Ok(out)
}
