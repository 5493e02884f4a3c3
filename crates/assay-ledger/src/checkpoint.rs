//! C2SP tlog-checkpoint: the origin line, the tree size, the base64 root hash, and optional
//! extension lines, as the text of a signed note.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::merkle::Hash;

/// A checkpoint's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin (usually its URL without the scheme).
    pub origin: String,
    /// The tree size.
    pub size: u64,
    /// The root hash.
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: three lines, each ending with a newline.
    pub fn text(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, STANDARD.encode(self.root))
    }

    /// The tree size a signed checkpoint note states, its signature not checked (for status and
    /// bookkeeping, never for proofs); `None` when it is not a checkpoint.
    pub fn stated_size(note: &[u8]) -> Option<u64> {
        let note = std::str::from_utf8(note).ok()?;
        Checkpoint::parse(crate::reader::note_text(note)?).ok().map(|c| c.size)
    }

    /// Parses a checkpoint's note text (extension lines are allowed and ignored).
    pub fn parse(text: &str) -> Result<Checkpoint, String> {
        let mut lines = text.split('\n');
        let origin = lines.next().filter(|o| !o.is_empty()).ok_or("the origin line is empty")?;
        let size_line = lines.next().ok_or("no tree size line")?;
        let size = size_line
            .parse::<u64>()
            .ok()
            .filter(|_| !size_line.starts_with('+') && (size_line == "0" || !size_line.starts_with('0')))
            .ok_or_else(|| format!("tree size {size_line:?} is not a decimal number"))?;
        let root_line = lines.next().ok_or("no root hash line")?;
        let root: Hash = STANDARD
            .decode(root_line)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("root hash {root_line:?} is not 32 bytes of base64"))?;
        if !text.ends_with('\n') {
            return Err("the checkpoint does not end with a newline".into());
        }
        Ok(Checkpoint { origin: origin.to_string(), size, root })
    }
}
