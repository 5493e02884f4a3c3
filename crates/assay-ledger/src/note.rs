//! C2SP signed notes with Ed25519 keys: the key text formats (`PRIVATE+KEY+<name>+<hash>+<key>`
//! and `<name>+<hash>+<key>`), signing a note, and verifying a note's signature.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest, Sha256};

/// The signature algorithm byte of Ed25519 in signed notes.
const ED25519: u8 = 0x01;

/// Why a key or a note is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// A key's text is not in the signed-note format.
    #[error("not a signed-note {kind} key: {why}")]
    BadKey {
        /// `private` or `verifier`.
        kind: &'static str,
        /// What is wrong.
        why: String,
    },
    /// The note's text is not a signed note.
    #[error("not a signed note: {0}")]
    Malformed(String),
    /// No signature by the verifier's key verifies.
    #[error("no valid signature by {0}")]
    NotSigned(String),
}

/// The 32-bit key hash: the first four bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key).
pub fn key_hash(name: &str, public: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ED25519]);
    h.update(public);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('+') && !name.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Splits `name+hash+base64` (after any prefix) and checks the hash and algorithm.
fn parse_key(kind: &'static str, text: &str) -> Result<(String, u32, [u8; 32]), NoteError> {
    let bad = |why: &str| NoteError::BadKey { kind, why: why.to_string() };
    // The name holds no '+'; the base64 key may.
    let mut parts = text.trim().splitn(3, '+');
    let (Some(name), Some(hash), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("expected <name>+<hash>+<key>"));
    };
    if !valid_name(name) {
        return Err(bad("the name is empty or has a space or +"));
    }
    let hash = u32::from_str_radix(hash, 16)
        .ok()
        .filter(|_| hash.len() == 8)
        .ok_or_else(|| bad("the hash is not 8 hex digits"))?;
    let bytes = STANDARD.decode(key).map_err(|_| bad("the key is not base64"))?;
    match bytes.split_first() {
        Some((&ED25519, rest)) if rest.len() == 32 => {
            let mut k = [0u8; 32];
            k.copy_from_slice(rest);
            Ok((name.to_string(), hash, k))
        }
        Some((&ED25519, _)) => Err(bad("an Ed25519 key is 32 bytes")),
        _ => Err(bad("only Ed25519 keys (algorithm 1) are supported")),
    }
}

/// The keys (`name+hash`) of a note's signature lines, for messages; empty when the note has
/// no readable signature block.
pub fn signature_keys(note: &str) -> Vec<String> {
    let Some(split) = note.rfind("\n\n") else { return Vec::new() };
    note[split + 2..]
        .lines()
        .filter_map(|line| {
            let (name, blob) = line.strip_prefix("\u{2014} ")?.split_once(' ')?;
            let blob = STANDARD.decode(blob).ok()?;
            let hash = blob.get(..4)?;
            Some(format!("{name}+{:02x}{:02x}{:02x}{:02x}", hash[0], hash[1], hash[2], hash[3]))
        })
        .collect()
}

/// A note signer: an Ed25519 private key with its name.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    hash: u32,
    key: SigningKey,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key itself.
        write!(f, "NoteSigner({}+{:08x})", self.name, self.hash)
    }
}

impl NoteSigner {
    /// Reads `PRIVATE+KEY+<name>+<hash>+<base64(0x01 ‖ seed)>`.
    pub fn from_text(text: &str) -> Result<NoteSigner, NoteError> {
        let rest = text
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(NoteError::BadKey { kind: "private", why: "it does not start with PRIVATE+KEY+".into() })?;
        let (name, hash, seed) = parse_key("private", rest)?;
        let key = SigningKey::from_bytes(&seed);
        if key_hash(&name, key.verifying_key().as_bytes()) != hash {
            return Err(NoteError::BadKey { kind: "private", why: "the hash does not match the key".into() });
        }
        Ok(NoteSigner { name, hash, key })
    }

    /// A new key named `name`, from the operating system's random source.
    pub fn generate(name: &str) -> Result<NoteSigner, NoteError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| NoteError::BadKey { kind: "private", why: format!("no random source: {e}") })?;
        NoteSigner::from_seed(name, seed)
    }

    /// A signer from a 32-byte seed.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<NoteSigner, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::BadKey { kind: "private", why: "the name is empty or has a space or +".into() });
        }
        let key = SigningKey::from_bytes(&seed);
        let hash = key_hash(name, key.verifying_key().as_bytes());
        Ok(NoteSigner { name: name.to_string(), hash, key })
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The private key in its text format. Handle with care.
    pub fn private_key_text(&self) -> String {
        let mut bytes = vec![ED25519];
        bytes.extend_from_slice(self.key.as_bytes());
        format!("PRIVATE+KEY+{}+{:08x}+{}", self.name, self.hash, STANDARD.encode(bytes))
    }

    /// The verifier key's text.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier { name: self.name.clone(), hash: self.hash, key: self.key.verifying_key() }
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// A plain Ed25519 signature over `message`, for other envelope formats (DSSE) that sign
    /// with the same kind of key. Prefer a key of its own for each purpose.
    pub fn sign_bytes(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    /// Signs `text` (which must end with a newline): the text, a blank line and the signature line.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        if !text.ends_with('\n') {
            return Err(NoteError::Malformed("the text does not end with a newline".into()));
        }
        let signature = self.key.sign(text.as_bytes());
        let mut blob = self.hash.to_be_bytes().to_vec();
        blob.extend_from_slice(&signature.to_bytes());
        Ok(format!("{text}\n\u{2014} {} {}\n", self.name, STANDARD.encode(blob)))
    }
}

/// A note verifier: an Ed25519 public key with its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    hash: u32,
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Reads `<name>+<hash>+<base64(0x01 ‖ public key)>`.
    pub fn from_text(text: &str) -> Result<NoteVerifier, NoteError> {
        let (name, hash, public) = parse_key("verifier", text)?;
        let key = VerifyingKey::from_bytes(&public)
            .map_err(|_| NoteError::BadKey { kind: "verifier", why: "not an Ed25519 public key".into() })?;
        if key_hash(&name, &public) != hash {
            return Err(NoteError::BadKey { kind: "verifier", why: "the hash does not match the key".into() });
        }
        Ok(NoteVerifier { name, hash, key })
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key in its text format.
    pub fn text(&self) -> String {
        let mut bytes = vec![ED25519];
        bytes.extend_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.hash, STANDARD.encode(bytes))
    }

    /// Verifies a signed note and returns its text. Signatures by other keys are ignored.
    pub fn verify<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        let split =
            note.rfind("\n\n").ok_or_else(|| NoteError::Malformed("no blank line before the signatures".into()))?;
        let (text, signatures) = (&note[..=split], &note[split + 2..]);
        if !signatures.ends_with('\n') {
            return Err(NoteError::Malformed("the signatures do not end with a newline".into()));
        }
        for line in signatures.lines() {
            let Some(rest) = line.strip_prefix("\u{2014} ") else {
                return Err(NoteError::Malformed(format!("{line:?} is not a signature line")));
            };
            let Some((name, blob)) = rest.split_once(' ') else {
                return Err(NoteError::Malformed(format!("{line:?} is not a signature line")));
            };
            let Ok(blob) = STANDARD.decode(blob) else {
                return Err(NoteError::Malformed(format!("the signature of {name} is not base64")));
            };
            if name != self.name || blob.len() != 68 || blob[..4] != self.hash.to_be_bytes() {
                continue;
            }
            let Ok(signature) = Signature::from_slice(&blob[4..]) else { continue };
            if self.key.verify(text.as_bytes(), &signature).is_ok() {
                return Ok(text);
            }
        }
        Err(NoteError::NotSigned(self.text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRIVATE: &str = "PRIVATE+KEY+example.com/log/testdata+33d7b496+AeymY/SZAX0jZcJ8enZ5FY1Dz+wTML2yWSkK+9DSF3eg";
    const VERIFIER: &str = "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx";

    #[test]
    fn keys_round_trip_and_agree() {
        let signer = NoteSigner::from_text(PRIVATE).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(signer.private_key_text(), PRIVATE);
        assert_eq!(signer.verifier().text(), VERIFIER);
        assert_eq!(NoteVerifier::from_text(VERIFIER), Ok(signer.verifier()));
        assert!(!format!("{signer:?}").contains("AeymY"));
    }

    #[test]
    fn signed_notes_verify_and_tampering_does_not() {
        let signer = NoteSigner::from_text(PRIVATE).unwrap_or_else(|e| panic!("{e}"));
        let note = signer.sign("hello\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(signer.verifier().verify(&note), Ok("hello\n"));
        assert!(signer.verifier().verify(&note.replace("hello", "hellO")).is_err());
        let other = NoteSigner::from_seed("example.com/log/testdata", [7; 32]).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(other.verifier().verify(&note), Err(NoteError::NotSigned(_))));
    }

    #[test]
    fn generated_keys_differ_and_round_trip() {
        let a = NoteSigner::generate("log.example/a").unwrap_or_else(|e| panic!("{e}"));
        let b = NoteSigner::generate("log.example/a").unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(a.private_key_text(), b.private_key_text());
        let again = NoteSigner::from_text(&a.private_key_text()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.verifier(), a.verifier());
        assert!(NoteSigner::generate("has space").is_err());
    }

    #[test]
    fn bad_keys_say_why() {
        let e = NoteVerifier::from_text("name+00000000+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx").err();
        assert_eq!(
            e.map(|e| e.to_string()),
            Some("not a signed-note verifier key: the hash does not match the key".into())
        );
        assert!(NoteSigner::from_text(VERIFIER).is_err());
    }
}
