//! Trusted signers (`.assay/allowed_signers`, in git's `gpg.ssh.allowedSignersFile` format) and
//! verification of SSH commit signatures against them, as `git verify-commit` does.
//!
//! Sans-IO: functions over the raw bytes of a commit object.

use ssh_key::{HashAlg, PublicKey, SshSig};

use crate::Diagnostic;
use crate::calendar::days_from_civil;

/// The namespace git signs commits in.
const GIT_NAMESPACE: &str = "git";

/// One line of an allowed-signers file.
#[derive(Debug, Clone)]
pub struct AllowedSigner {
    /// The principals (comma-separated patterns), as written.
    pub principals: String,
    /// The trusted key.
    pub key: PublicKey,
    /// `namespaces="..."`: the signature namespaces this key may sign in; empty means any.
    pub namespaces: Vec<String>,
    /// `valid-after`, as seconds since the epoch (UTC).
    pub valid_after: Option<i64>,
    /// `valid-before`, as seconds since the epoch (UTC).
    pub valid_before: Option<i64>,
    /// 1-based line in the file.
    pub line: u32,
}

/// A parsed allowed-signers file.
#[derive(Debug, Clone, Default)]
pub struct AllowedSigners {
    /// The usable entries.
    pub signers: Vec<AllowedSigner>,
}

fn tokens(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn is_key_type(token: &str) -> bool {
    token.starts_with("ssh-") || token.starts_with("ecdsa-") || token.starts_with("sk-")
}

/// Splits `a="x,y",b` on commas outside quotes.
fn split_options(options: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in options.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

impl AllowedSigners {
    /// Parses an allowed-signers file; a bad line is a diagnostic and the other lines still count.
    pub fn parse(path: &str, text: &str) -> (AllowedSigners, Vec<Diagnostic>) {
        let mut signers = Vec::new();
        let mut diags = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line_no = i as u32 + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match Self::parse_line(line, line_no) {
                Ok(Some(signer)) => signers.push(signer),
                Ok(None) => diags.push(
                    Diagnostic::error(
                        path,
                        "cert-authority entries are not supported: assay verifies commits signed by listed keys, \
                         not by SSH certificates; list each signer's public key instead",
                    )
                    .at(line_no, None),
                ),
                Err(message) => diags.push(Diagnostic::error(path, message).at(line_no, None)),
            }
        }
        (AllowedSigners { signers }, diags)
    }

    fn parse_line(line: &str, line_no: u32) -> Result<Option<AllowedSigner>, String> {
        let tokens = tokens(line);
        if tokens.len() < 3 {
            return Err("expected: principals [options] key-type base64-key".to_string());
        }
        let principals = tokens[0].trim_matches('"').to_string();
        let (options, key_at) = if is_key_type(&tokens[1]) { (None, 1) } else { (Some(tokens[1].as_str()), 2) };
        let (Some(key_type), Some(key_b64)) = (tokens.get(key_at), tokens.get(key_at + 1)) else {
            return Err("missing key after options".to_string());
        };
        let key = PublicKey::from_openssh(&format!("{key_type} {key_b64}"))
            .map_err(|e| format!("invalid public key for {principals}: {e}"))?;
        let mut signer = AllowedSigner {
            principals,
            key,
            namespaces: Vec::new(),
            valid_after: None,
            valid_before: None,
            line: line_no,
        };
        for option in options.map(split_options).unwrap_or_default() {
            let (name, value) = option.split_once('=').unwrap_or((option.as_str(), ""));
            match name.to_ascii_lowercase().as_str() {
                "cert-authority" => return Ok(None),
                "namespaces" => signer.namespaces = value.split(',').map(|s| s.trim().to_string()).collect(),
                "valid-after" => signer.valid_after = Some(parse_ssh_time(value)?),
                "valid-before" => signer.valid_before = Some(parse_ssh_time(value)?),
                other => return Err(format!("unknown option {other:?}")),
            }
        }
        Ok(Some(signer))
    }

    /// The entry that trusts `key` to sign git commits at time `at`, if any.
    pub fn find(&self, key: &ssh_key::public::KeyData, at: i64) -> Result<&AllowedSigner, KeyProblem> {
        let mut matching = self.signers.iter().filter(|s| s.key.key_data() == key).peekable();
        if matching.peek().is_none() {
            return Err(KeyProblem::Unknown);
        }
        let mut problem = KeyProblem::Unknown;
        for signer in matching {
            if !signer.namespaces.is_empty() && !signer.namespaces.iter().any(|n| n == GIT_NAMESPACE || n == "*") {
                problem = KeyProblem::Namespace;
                continue;
            }
            if signer.valid_after.is_some_and(|t| at < t) || signer.valid_before.is_some_and(|t| at > t) {
                problem = KeyProblem::Expired;
                continue;
            }
            return Ok(signer);
        }
        Err(problem)
    }
}

/// Why a key is not trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyProblem {
    /// No entry has this key.
    Unknown,
    /// Entries have this key, but not for the `git` namespace.
    Namespace,
    /// Entries have this key, but not valid at the time of the check.
    Expired,
}

/// `YYYYMMDD[HHMM[SS]][Z]` as in ssh-keygen's allowed-signers options, read as UTC.
fn parse_ssh_time(value: &str) -> Result<i64, String> {
    let digits = value.trim_matches('"').trim_end_matches(['Z', 'z']);
    let bad = || format!("invalid time {value:?}: expected YYYYMMDD[HHMM[SS]][Z]");
    if !matches!(digits.len(), 8 | 12 | 14) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n = |r: std::ops::Range<usize>| digits.get(r).and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
    let (y, m, d) = (n(0..4), n(4..6), n(6..8));
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    let days = days_from_civil(y, m, d);
    Ok(days * 86_400 + n(8..10) * 3600 + n(10..12) * 60 + n(12..14))
}

/// The outcome of checking one commit's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureCheck {
    /// Signed by a trusted principal.
    Good {
        /// The principals of the allowed-signers entry.
        principal: String,
        /// SHA-256 fingerprint of the key.
        fingerprint: String,
    },
    /// No `gpgsig` header.
    Unsigned,
    /// Signed, but not with SSH (OpenPGP or X.509), which assay does not accept.
    UnsupportedFormat {
        /// What the signature looks like.
        format: String,
    },
    /// The signature does not verify, or cannot be read.
    Bad {
        /// Why.
        reason: String,
    },
    /// A valid signature by a key that is not trusted.
    UntrustedKey {
        /// SHA-256 fingerprint of the key.
        fingerprint: String,
        /// Why the key is not trusted.
        problem: KeyProblem,
    },
}

impl SignatureCheck {
    /// Whether the commit is acceptable.
    pub fn is_good(&self) -> bool {
        matches!(self, Self::Good { .. })
    }

    /// A one-line description for reports.
    pub fn describe(&self) -> String {
        match self {
            Self::Good { principal, fingerprint } => format!("good signature by {principal} ({fingerprint})"),
            Self::Unsigned => "commit is not signed".to_string(),
            Self::UnsupportedFormat { format } => {
                format!("commit is signed with {format}; only SSH signatures from allowed signers are accepted")
            }
            Self::Bad { reason } => format!("bad signature: {reason}"),
            Self::UntrustedKey { fingerprint, problem } => match problem {
                KeyProblem::Unknown => {
                    format!("signed by {fingerprint}, which is not in the trusted allowed_signers")
                }
                KeyProblem::Namespace => {
                    format!("key {fingerprint} is not allowed to sign in the git namespace")
                }
                KeyProblem::Expired => format!(
                    "key {fingerprint} is not valid now (its valid-after/valid-before in allowed_signers; judged \
                     when assay sees the commit, not by the commit's own date, which its author chooses)"
                ),
            },
        }
    }
}

/// A raw commit split into the signature and the payload that was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCommit {
    /// The `gpgsig` header's value, continuation lines joined; `None` when unsigned.
    pub signature: Option<String>,
    /// The commit with every `gpgsig*` header removed, as git verifies it.
    pub payload: Vec<u8>,
    /// The committer timestamp, seconds since the epoch.
    pub committer_time: i64,
}

/// Splits a raw commit object (as stored by git, without the object header).
pub fn split_commit(raw: &[u8]) -> SignedCommit {
    let header_end = raw.windows(2).position(|w| w == b"\n\n").map_or(raw.len(), |i| i + 1);
    let (headers, body) = raw.split_at(header_end);
    let mut payload = Vec::with_capacity(raw.len());
    let mut signature: Option<String> = None;
    let mut committer_time = 0;
    let mut in_sig = false;
    let mut in_dropped = false;
    for line in headers.split_inclusive(|b| *b == b'\n') {
        if line.first() == Some(&b' ') {
            if in_dropped {
                if in_sig && let Some(sig) = signature.as_mut() {
                    sig.push('\n');
                    sig.push_str(String::from_utf8_lossy(&line[1..]).trim_end_matches('\n'));
                }
                continue;
            }
            payload.extend_from_slice(line);
            continue;
        }
        let name_end = line.iter().position(|b| *b == b' ').unwrap_or(line.len());
        let name = &line[..name_end];
        in_dropped = name.starts_with(b"gpgsig");
        in_sig = name == b"gpgsig";
        if in_dropped {
            if in_sig && signature.is_none() {
                let value = line.get(name_end + 1..).unwrap_or_default();
                signature = Some(String::from_utf8_lossy(value).trim_end_matches('\n').to_string());
            } else {
                in_sig = false;
            }
            continue;
        }
        if name == b"committer" {
            let text = String::from_utf8_lossy(line);
            let mut fields = text.trim_end().rsplitn(3, ' ');
            let _tz = fields.next();
            committer_time = fields.next().and_then(|t| t.parse().ok()).unwrap_or(0);
        }
        payload.extend_from_slice(line);
    }
    payload.extend_from_slice(body);
    SignedCommit { signature, payload, committer_time }
}

/// Checks one commit's SSH signature against the trusted signers, as `git verify-commit` with
/// `gpg.ssh.allowedSignersFile` does, except that a key's `valid-after` and `valid-before` are
/// judged at `at` (seconds since the epoch: when the commit is seen), not at the committer date
/// the commit claims, which anyone can backdate.
pub fn verify_commit(raw: &[u8], signers: &AllowedSigners, at: i64) -> SignatureCheck {
    let commit = split_commit(raw);
    let Some(signature) = commit.signature else {
        return SignatureCheck::Unsigned;
    };
    if signature.contains("BEGIN PGP SIGNATURE") {
        return SignatureCheck::UnsupportedFormat { format: "OpenPGP".to_string() };
    }
    if signature.contains("BEGIN SIGNED MESSAGE") {
        return SignatureCheck::UnsupportedFormat { format: "X.509 (gpgsm)".to_string() };
    }
    let sig = match SshSig::from_pem(signature.trim()) {
        Ok(sig) => sig,
        Err(e) => {
            return SignatureCheck::Bad { reason: format!("unreadable SSH signature: {e}") };
        }
    };
    if sig.namespace() != GIT_NAMESPACE {
        return SignatureCheck::Bad { reason: format!("signature namespace is {:?}, not \"git\"", sig.namespace()) };
    }
    let key = PublicKey::from(sig.public_key().clone());
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    if let Err(e) = key.verify(GIT_NAMESPACE, &commit.payload, &sig) {
        return SignatureCheck::Bad { reason: format!("signature by {fingerprint} does not verify: {e}") };
    }
    match signers.find(sig.public_key(), at) {
        Ok(signer) => SignatureCheck::Good { principal: signer.principals.clone(), fingerprint },
        Err(problem) => SignatureCheck::UntrustedKey { fingerprint, problem },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJDdQ0TgesdjPuB7hYOHDBsEUkkTzfBSFiu18ft65iiB";

    #[test]
    fn parses_options_and_reports_bad_lines() {
        let text = format!(
            "# team\nalice@example.com {KEY}\n\"bob@example.com,carol@example.com\" namespaces=\"git,file\",valid-after=\"20240101\" {KEY} bob\nbroken line\n"
        );
        let (signers, diags) = AllowedSigners::parse(".assay/allowed_signers", &text);
        assert_eq!(signers.signers.len(), 2);
        assert_eq!(signers.signers[1].principals, "bob@example.com,carol@example.com");
        assert_eq!(signers.signers[1].namespaces, vec!["git", "file"]);
        assert_eq!(signers.signers[1].valid_after, Some(1_704_067_200));
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].line, Some(4));
    }

    #[test]
    fn split_commit_strips_every_gpgsig_header() {
        let raw = b"tree abc\nauthor A <a@x> 1 +0000\ncommitter C <c@x> 1700000000 +0100\ngpgsig -----BEGIN SSH SIGNATURE-----\n line1\n -----END SSH SIGNATURE-----\ngpgsig-sha256 other\n more\n\nmessage\n";
        let c = split_commit(raw);
        assert_eq!(c.committer_time, 1_700_000_000);
        assert_eq!(c.signature.as_deref(), Some("-----BEGIN SSH SIGNATURE-----\nline1\n-----END SSH SIGNATURE-----"));
        assert_eq!(
            String::from_utf8(c.payload).unwrap_or_default(),
            "tree abc\nauthor A <a@x> 1 +0000\ncommitter C <c@x> 1700000000 +0100\n\nmessage\n"
        );
    }

    #[test]
    fn unsigned_commit() {
        let raw = b"tree abc\ncommitter C <c@x> 1 +0000\n\nm\n";
        assert_eq!(verify_commit(raw, &AllowedSigners::default(), 0), SignatureCheck::Unsigned);
    }

    #[test]
    fn ssh_times_parse() {
        assert_eq!(parse_ssh_time("20000301").ok(), Some(951_868_800));
        assert!(parse_ssh_time("2024").is_err());
    }
}
