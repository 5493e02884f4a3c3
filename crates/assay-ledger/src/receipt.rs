//! Receipts in the C2SP tlog-proof format: proof, offline, that an entry is in a log.
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! [extra <base64>]
//! index <N>
//! <base64 hash>            (the inclusion proof, nearest sibling first)
//!
//! <the signed checkpoint, verbatim>
//! ```

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::checkpoint::Checkpoint;
use crate::merkle::{Hash, ProofError, leaf_hash, verify_inclusion};
use crate::note::{NoteError, NoteVerifier};
use crate::reader::note_text;

const HEADER: &str = "c2sp.org/tlog-proof@v1";

/// A receipt: an entry's index, its inclusion proof, and the signed checkpoint it leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Unauthenticated extra data, if any.
    pub extra: Option<Vec<u8>>,
    /// The entry's index.
    pub index: u64,
    /// The inclusion proof.
    pub proof: Vec<Hash>,
    /// The signed checkpoint, verbatim.
    pub checkpoint: String,
}

/// Why a receipt does not prove what it should.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// The receipt is not in the tlog-proof format.
    #[error("not a tlog-proof receipt: {0}")]
    Malformed(String),
    /// The receipt's checkpoint is for a log with another origin than the key's.
    #[error("the receipt is for log {origin}, not for {key}")]
    OtherLog {
        /// The checkpoint's origin.
        origin: String,
        /// The verifier key's name.
        key: String,
    },
    /// The checkpoint is not signed by the key.
    #[error("the receipt's checkpoint is not signed by {key}{signed_by}")]
    NotSigned {
        /// The verifier key.
        key: String,
        /// `; it is signed by …`, when known.
        signed_by: String,
    },
    /// The entry is not at the index in the checkpoint's tree.
    #[error("entry {index} is not in the tree of size {size}: {why}")]
    NotIncluded {
        /// The receipt's index.
        index: u64,
        /// The checkpoint's size.
        size: u64,
        /// The proof's failure.
        why: ProofError,
    },
}

impl Receipt {
    /// The receipt's text.
    pub fn text(&self) -> String {
        let mut out = format!("{HEADER}\n");
        if let Some(extra) = &self.extra {
            out.push_str(&format!("extra {}\n", STANDARD.encode(extra)));
        }
        out.push_str(&format!("index {}\n", self.index));
        for h in &self.proof {
            out.push_str(&STANDARD.encode(h));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint);
        out
    }

    /// Parses a receipt's text.
    pub fn parse(text: &str) -> Result<Receipt, ReceiptError> {
        let bad = |why: String| ReceiptError::Malformed(why);
        let (head, checkpoint) =
            text.split_once("\n\n").ok_or_else(|| bad("no blank line before the checkpoint".into()))?;
        let mut lines = head.split('\n');
        if lines.next() != Some(HEADER) {
            return Err(bad(format!("the first line is not {HEADER}")));
        }
        let mut line = lines.next().ok_or_else(|| bad("no index line".into()))?;
        let mut extra = None;
        if let Some(b64) = line.strip_prefix("extra ") {
            extra = Some(STANDARD.decode(b64).map_err(|_| bad("the extra data is not base64".into()))?);
            line = lines.next().ok_or_else(|| bad("no index line".into()))?;
        }
        let digits = line.strip_prefix("index ").ok_or_else(|| bad(format!("{line:?} is not an index line")))?;
        let index = digits
            .parse::<u64>()
            .ok()
            .filter(|_| !digits.starts_with('+') && (digits == "0" || !digits.starts_with('0')))
            .ok_or_else(|| bad(format!("index {digits:?} is not a decimal number")))?;
        let mut proof = Vec::new();
        for (i, l) in lines.enumerate() {
            let hash: Hash = STANDARD
                .decode(l)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| bad(format!("proof line {} is not a base64 SHA-256 hash", i + 1)))?;
            proof.push(hash);
        }
        Ok(Receipt { extra, index, proof, checkpoint: checkpoint.to_string() })
    }

    /// Verifies, offline, that `entry` is at the receipt's index in a tree whose checkpoint is
    /// signed by `verifier`. Returns the checkpoint.
    pub fn verify(&self, entry: &[u8], verifier: &NoteVerifier) -> Result<Checkpoint, ReceiptError> {
        let unsigned = note_text(&self.checkpoint)
            .ok_or_else(|| ReceiptError::Malformed("the checkpoint is not a signed note".into()))?;
        let claimed = Checkpoint::parse(unsigned).map_err(ReceiptError::Malformed)?;
        let body = match verifier.verify(&self.checkpoint) {
            Ok(body) => body,
            Err(NoteError::Malformed(why)) => return Err(ReceiptError::Malformed(why)),
            Err(_) if claimed.origin != verifier.name() => {
                return Err(ReceiptError::OtherLog { origin: claimed.origin, key: verifier.name().to_string() });
            }
            Err(_) => {
                return Err(ReceiptError::NotSigned {
                    key: verifier.text(),
                    signed_by: crate::store::signed_by(&self.checkpoint),
                });
            }
        };
        let checkpoint = Checkpoint::parse(body).map_err(ReceiptError::Malformed)?;
        verify_inclusion(self.index, checkpoint.size, &leaf_hash(entry), &self.proof, &checkpoint.root)
            .map_err(|why| ReceiptError::NotIncluded { index: self.index, size: checkpoint.size, why })?;
        Ok(checkpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{inclusion_proof, root};
    use crate::note::NoteSigner;

    #[test]
    fn receipts_round_trip_and_verify_only_their_entry() {
        let signer = NoteSigner::from_seed("log.example/a", [3; 32]).unwrap_or_else(|e| panic!("{e}"));
        let entries: Vec<Vec<u8>> = (0..13).map(|i| format!("entry {i}").into_bytes()).collect();
        let leaves: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
        let body = Checkpoint { origin: "log.example/a".into(), size: 13, root: root(&leaves) }.text();
        let checkpoint = signer.sign(&body).unwrap_or_else(|e| panic!("{e}"));
        let receipt = Receipt {
            extra: Some(b"context".to_vec()),
            index: 5,
            proof: inclusion_proof(5, &leaves).unwrap_or_default(),
            checkpoint,
        };
        let parsed = Receipt::parse(&receipt.text());
        assert_eq!(parsed.as_ref(), Ok(&receipt));
        assert!(receipt.verify(b"entry 5", &signer.verifier()).is_ok());
        assert!(matches!(receipt.verify(b"entry 6", &signer.verifier()), Err(ReceiptError::NotIncluded { .. })));
        let other = NoteSigner::from_seed("log.example/b", [4; 32]).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(receipt.verify(b"entry 5", &other.verifier()), Err(ReceiptError::OtherLog { .. })));
        let impostor = NoteSigner::from_seed("log.example/a", [5; 32]).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(receipt.verify(b"entry 5", &impostor.verifier()), Err(ReceiptError::NotSigned { .. })));
    }
}
