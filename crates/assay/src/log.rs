//! `assay log ...`: the verifiable ledger's commands.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use assay_ledger::note::NoteSigner;

/// Writes a new key pair; the private key file is created with mode 0600 and never replaces
/// an existing file.
pub(crate) fn keygen(name: &str, private: &Path, public: &Path, print_private: bool) -> Result<u8> {
    let signer = NoteSigner::generate(name).with_context(|| format!("key name {name:?}"))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(private)
        .with_context(|| format!("creating {} (an existing private key is never overwritten)", private.display()))?;
    file.write_all(format!("{}\n", signer.private_key_text()).as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", private.display()))?;
    let verifier = signer.verifier().text();
    std::fs::write(public, format!("{verifier}\n")).with_context(|| format!("writing {}", public.display()))?;
    println!("{verifier}");
    if print_private {
        println!("{}", signer.private_key_text());
    }
    eprintln!("private key: {} (mode 0600), verifier key: {}", private.display(), public.display());
    Ok(0)
}
