//! `assay log ...` through the binary.

mod common;

use common::{assay, stderr, stdout};

#[test]
fn keygen_writes_a_private_key_only_its_owner_reads_and_prints_the_verifier() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = assay(dir.path(), &["log", "keygen", "log.example.com/audit"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed = stdout(&out);
    assert!(printed.starts_with("log.example.com/audit+"), "{printed}");
    assert!(!printed.contains("PRIVATE"), "{printed}");
    let private = std::fs::read_to_string(dir.path().join("assay-log.key")).expect("private key");
    let public = std::fs::read_to_string(dir.path().join("assay-log.pub")).expect("public key");
    assert_eq!(public, printed);
    let signer = assay_ledger::note::NoteSigner::from_text(&private).expect("a signed-note private key");
    assert_eq!(format!("{}\n", signer.verifier().text()), public);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("assay-log.key")).expect("metadata").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A second keygen does not overwrite the first key.
    let again = assay(dir.path(), &["log", "keygen", "log.example.com/audit"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("an existing private key is never overwritten"), "{}", stderr(&again));
    assert_eq!(std::fs::read_to_string(dir.path().join("assay-log.key")).expect("key"), private);
    // A name a note cannot carry is refused.
    let bad = assay(dir.path(), &["log", "keygen", "has space", "--private", "x.key", "--public", "x.pub"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("the name is empty or has a space or +"), "{}", stderr(&bad));
}
