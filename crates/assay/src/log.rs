//! `assay log ...`: the verifiable ledger's commands.
//!
//! Exit codes (distinct so that scripts can tell bad input from a failed verification):
//! 0 verified / done, 1 the log or receipt does not verify (tampering), 2 other errors,
//! 3 no log at the directory, 4 a key problem (unreadable key, or not the log's key),
//! 5 a corrupt checkpoint file, 6 a receipt or checkpoint for another log, 7 another process
//! is writing the log.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use assay_ledger::appender::{Appender, Batching};
use assay_ledger::merkle::leaf_hash;
use assay_ledger::note::{NoteSigner, NoteVerifier};
use assay_ledger::reader::Reader;
use assay_ledger::receipt::{Receipt, ReceiptError};
use assay_ledger::store::{Log, LogError};
use assay_ledger::verify::{VerifyError, verify_in};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Exit codes of `assay log`.
pub(crate) mod exit {
    /// The log or receipt does not verify.
    pub(crate) const FAILED: u8 = 1;
    /// No log at the directory (missing, or no checkpoint).
    pub(crate) const NO_LOG: u8 = 3;
    /// The key cannot be read or is not the log's key.
    pub(crate) const KEY: u8 = 4;
    /// The checkpoint file is corrupt.
    pub(crate) const CHECKPOINT: u8 = 5;
    /// A receipt or checkpoint for another log.
    pub(crate) const OTHER_LOG: u8 = 6;
    /// Another process holds the writer lock.
    pub(crate) const LOCKED: u8 = 7;
}

/// An error with the exit code it maps to.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

fn failure(code: u8, message: impl Into<String>) -> anyhow::Error {
    Failure { code, message: message.into() }.into()
}

/// The exit code of a log error.
pub(crate) fn code_of(e: &LogError) -> u8 {
    match e {
        LogError::NoDirectory(_) | LogError::NotALog(_) => exit::NO_LOG,
        LogError::WrongKey { .. } | LogError::Key(_) => exit::KEY,
        LogError::CorruptCheckpoint { .. } => exit::CHECKPOINT,
        LogError::Locked { .. } | LogError::Superseded(_) => exit::LOCKED,
        LogError::Damaged(_) => exit::FAILED,
        _ => 2,
    }
}

fn log_error(e: LogError) -> anyhow::Error {
    failure(code_of(&e), e.to_string())
}

/// Opens the ledger that `--ledger` and `--ledger-key` name, for commands that append to it;
/// `None` without `--ledger`. A missing log or a wrong key fails with `assay log`'s exit codes,
/// before any work.
pub(crate) fn open_ledger(ledger: Option<&Path>, key: Option<&Path>) -> Result<Option<Log>> {
    let Some(dir) = ledger else { return Ok(None) };
    local_only(dir)?;
    let key = key.context(
        "--ledger needs --ledger-key (or ASSAY_LEDGER_KEY): the private key that signs the log's checkpoints",
    )?;
    let signer = read_signer(key)?;
    let log = Log::open(dir, signer).map_err(|e| failure(code_of(&e), format!("--ledger: {e}")))?;
    Ok(Some(log))
}

/// Reads a private key file.
pub(crate) fn read_signer(path: &Path) -> Result<NoteSigner> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| failure(exit::KEY, format!("reading the private key {}: {e}", path.display())))?;
    NoteSigner::from_text(text.trim()).map_err(|e| failure(exit::KEY, format!("{}: {e}", path.display())))
}

/// Reads a verifier key file, or takes the argument as the key itself when it is one.
fn read_verifier(arg: &Path) -> Result<NoteVerifier> {
    let text = match std::fs::read_to_string(arg) {
        Ok(t) => t,
        Err(e) => match NoteVerifier::from_text(&arg.to_string_lossy()) {
            Ok(v) => return Ok(v),
            Err(_) => return Err(failure(exit::KEY, format!("reading the verifier key {}: {e}", arg.display()))),
        },
    };
    NoteVerifier::from_text(text.trim()).map_err(|e| failure(exit::KEY, format!("{}: {e}", arg.display())))
}

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

/// Whether a log location is on object storage (`s3://…`, `gs://…`, `az://…`).
fn on_object_storage(location: &Path) -> bool {
    !is_url(location) && assay_store::objects::is_url(&location.to_string_lossy())
}

/// The files of a log on object storage.
fn object_files(location: &Path) -> Result<std::sync::Arc<dyn assay_ledger::files::Files>> {
    assay_store::objects::log_files(location).map_err(|e| failure(exit::NO_LOG, e))
}

/// A log opened for reading, in a directory or on object storage.
fn open_reader(location: &Path, verifier: Option<&NoteVerifier>) -> Result<Reader> {
    if on_object_storage(location) {
        Reader::open_in(object_files(location)?, verifier).map_err(log_error)
    } else {
        Reader::open(location, verifier).map_err(log_error)
    }
}

/// Refuses to write a log on object storage from the command line: there, the one writer is
/// chosen by `assay serve` replicas through PostgreSQL, and a second would fork the log.
fn local_only(location: &Path) -> Result<()> {
    if on_object_storage(location) {
        return Err(failure(
            2,
            format!(
                "{}: a ledger on object storage is written by `assay serve` (its sequencer), not by this command",
                location.display()
            ),
        ));
    }
    Ok(())
}

/// `assay log init DIR|URL --key SKEY`: a new, empty log whose origin is the key's name.
pub(crate) fn init(dir: &Path, key: &Path) -> Result<u8> {
    let signer = read_signer(key)?;
    let created =
        if on_object_storage(dir) { Log::create_in(object_files(dir)?, signer) } else { Log::create(dir, signer) };
    let log = created.map_err(|e| match e {
        LogError::NotEmpty(_) => failure(2, e.to_string()),
        e => log_error(e),
    })?;
    print!("{}", log.checkpoint());
    eprintln!("created an empty log {} in {}", log.origin(), dir.display());
    Ok(0)
}

/// `assay log append DIR --key SKEY FILE...`: each file's bytes as one entry (or, with
/// `lines`, each line), each index printed once a checkpoint covering it is durable.
pub(crate) fn append(dir: &Path, key: &Path, files: &[PathBuf], lines: bool) -> Result<u8> {
    local_only(dir)?;
    let signer = read_signer(key)?;
    if lines {
        return append_lines(dir, signer, files);
    }
    // Read everything first: a missing file must not leave half the files appended.
    let mut entries = Vec::new();
    for f in files {
        let bytes = if f.as_os_str() == "-" {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).context("reading standard input")?;
            buf
        } else {
            std::fs::read(f).with_context(|| format!("reading {}", f.display()))?
        };
        if bytes.len() > assay_ledger::store::MAX_ENTRY {
            return Err(failure(
                2,
                format!(
                    "{}: {} bytes; an entry is at most {} bytes",
                    f.display(),
                    bytes.len(),
                    assay_ledger::store::MAX_ENTRY
                ),
            ));
        }
        entries.push(bytes);
    }
    let mut log = Log::open(dir, signer).map_err(log_error)?;
    let first = log.append(&entries).map_err(log_error)?;
    for (i, f) in files.iter().enumerate() {
        println!("{}\t{}", first + i as u64, f.display());
    }
    Ok(0)
}

fn append_lines(dir: &Path, signer: NoteSigner, files: &[PathBuf]) -> Result<u8> {
    let log = Log::open(dir, signer).map_err(log_error)?;
    let appender = Appender::start(log, Batching::default());
    let (tx, rx) = std::sync::mpsc::sync_channel::<u64>(1 << 16);
    let result = std::thread::scope(|s| -> Result<()> {
        let appender = &appender;
        let printer = s.spawn(move || -> Result<()> {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let mut pending = rx.recv().ok();
            while let Some(index) = pending {
                appender.wait(index).map_err(|e| anyhow::anyhow!("{e}"))?;
                writeln!(out, "{index}")?;
                pending = rx.try_recv().ok();
                if pending.is_none() {
                    out.flush()?;
                    pending = rx.recv().ok();
                }
            }
            out.flush()?;
            Ok(())
        });
        let inputs: Vec<PathBuf> = if files.is_empty() { vec![PathBuf::from("-")] } else { files.to_vec() };
        let mut read_result = Ok(());
        'files: for f in &inputs {
            let reader: Box<dyn BufRead> = if f.as_os_str() == "-" {
                Box::new(std::io::stdin().lock())
            } else {
                match std::fs::File::open(f) {
                    Ok(file) => Box::new(std::io::BufReader::new(file)),
                    Err(e) => {
                        read_result = Err(anyhow::anyhow!("reading {}: {e}", f.display()));
                        break;
                    }
                }
            };
            for line in reader.split(b'\n') {
                let line = match line {
                    Ok(l) => l,
                    Err(e) => {
                        read_result = Err(anyhow::anyhow!("reading {}: {e}", f.display()));
                        break 'files;
                    }
                };
                match appender.submit(line) {
                    Ok(index) => {
                        if tx.send(index).is_err() {
                            break 'files;
                        }
                    }
                    Err(e) => {
                        read_result = Err(anyhow::anyhow!("{}: {e}", f.display()));
                        break 'files;
                    }
                }
            }
        }
        drop(tx);
        let printed = printer.join().map_err(|_| anyhow::anyhow!("the printer thread panicked"))?;
        read_result.and(printed)
    });
    let closed = appender.close().map_err(|e| anyhow::anyhow!("{e}"));
    result?;
    closed?;
    Ok(0)
}

/// `assay log show DIR [INDEX] [--tail N]`.
pub(crate) fn show(dir: &Path, index: Option<u64>, tail: Option<u64>, json: bool, key: Option<&Path>) -> Result<u8> {
    let verifier = key.map(read_verifier).transpose()?;
    let reader = open_reader(dir, verifier.as_ref())?;
    let size = reader.checkpoint().size;
    let range = match (index, tail) {
        (Some(i), _) if i >= size => {
            return Err(failure(2, format!("entry {i} is not in the log: it has {size} entries")));
        }
        (Some(i), _) => i..i + 1,
        (None, Some(n)) => size.saturating_sub(n)..size,
        (None, None) => 0..size,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut at = range.start;
    while at < range.end {
        // Read a bundle's worth at a time.
        let end = range.end.min((at / 256 + 1) * 256);
        for (i, entry) in (at..end).zip(reader.entries(at..end).map_err(log_error)?) {
            write_entry(&mut out, i, &entry, json)?;
        }
        at = end;
    }
    out.flush()?;
    if index.is_none() {
        eprintln!("{}: {size} entries", reader.checkpoint().origin);
    }
    Ok(0)
}

fn write_entry(out: &mut impl Write, index: u64, entry: &[u8], json: bool) -> Result<()> {
    let text = std::str::from_utf8(entry).ok();
    if json {
        /// One line of `assay log show --json`.
        #[derive(serde::Serialize)]
        struct Shown<'a> {
            index: u64,
            size: usize,
            leaf_hash: String,
            /// The entry's record type, when it is an assay record this version reads.
            #[serde(skip_serializing_if = "Option::is_none")]
            record: Option<&'static str>,
            /// Why an entry that says it is an assay record cannot be read as one.
            #[serde(skip_serializing_if = "Option::is_none")]
            record_error: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            json: Option<serde_json::Value>,
            #[serde(skip_serializing_if = "Option::is_none")]
            text: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            base64: Option<String>,
        }
        let parsed = text.and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok());
        let (record, record_error) = match assay_record::Record::from_entry(entry) {
            Ok(r) => (r.map(|r| r.kind()), None),
            Err(e) => (None, Some(e)),
        };
        let shown = Shown {
            index,
            size: entry.len(),
            leaf_hash: STANDARD.encode(leaf_hash(entry)),
            record,
            record_error,
            text: if parsed.is_none() { text } else { None },
            base64: text.is_none().then(|| STANDARD.encode(entry)),
            json: parsed,
        };
        writeln!(out, "{}", serde_json::to_string(&shown)?)?;
    } else {
        match text {
            Some(t) if !t.contains('\n') => writeln!(out, "{index}\t{t}")?,
            _ => writeln!(out, "{index}\tbase64:{}", STANDARD.encode(entry))?,
        }
    }
    Ok(())
}

/// Whether a log location is a URL rather than a directory.
pub(crate) fn is_url(location: &Path) -> bool {
    let s = location.to_string_lossy();
    s.starts_with("http://") || s.starts_with("https://")
}

/// Copies a log served over HTTP in the tlog-tiles layout into `into`: the checkpoint, then
/// every tile and bundle it implies. A file the server does not have (404) is left out, so that
/// verification reports it missing.
fn fetch_log(url: &str, into: &Path) -> Result<()> {
    let base = url.trim_end_matches('/');
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(60)))
        .build()
        .into();
    let get = |path: &str| -> Result<Option<Vec<u8>>> {
        let address = format!("{base}/{path}");
        let mut response = agent.get(&address).call().map_err(|e| failure(exit::NO_LOG, format!("{address}: {e}")))?;
        match response.status().as_u16() {
            200 => {
                let body = response
                    .body_mut()
                    .with_config()
                    .limit(64 * 1024 * 1024)
                    .read_to_vec()
                    .map_err(|e| failure(exit::NO_LOG, format!("{address}: {e}")))?;
                Ok(Some(body))
            }
            404 => Ok(None),
            status => Err(failure(exit::NO_LOG, format!("{address} answered {status}"))),
        }
    };
    let checkpoint =
        get("checkpoint")?.ok_or_else(|| failure(exit::NO_LOG, format!("{base}/checkpoint: not found (404)")))?;
    let text = String::from_utf8_lossy(&checkpoint);
    let size = assay_ledger::reader::note_text(&text)
        .ok_or_else(|| "not a signed note".to_string())
        .and_then(assay_ledger::checkpoint::Checkpoint::parse)
        .map_err(|e| failure(exit::CHECKPOINT, format!("{base}/checkpoint: {e}")))?
        .size;
    // Eight requests at a time over the agent's pooled connections: a log of a million entries
    // is some 8,000 files.
    let paths = assay_ledger::tiles::paths(size);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::Mutex::new(None::<anyhow::Error>);
    let fetch = || -> Result<()> {
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(path) = paths.get(i) else { return Ok(()) };
            if failed.lock().map_or(true, |f| f.is_some()) {
                return Ok(());
            }
            if let Some(bytes) = get(path)? {
                let file = into.join(path);
                if let Some(parent) = file.parent() {
                    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
                }
                std::fs::write(&file, bytes).with_context(|| format!("writing {}", file.display()))?;
            }
        }
    };
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                if let Err(e) = fetch()
                    && let Ok(mut first) = failed.lock()
                {
                    first.get_or_insert(e);
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
        return Err(e);
    }
    std::fs::write(into.join("checkpoint"), checkpoint).context("writing the checkpoint")?;
    Ok(())
}

/// `assay log verify DIR|URL --key VKEY [--since CHECKPOINT]`.
pub(crate) fn verify_log(location: &Path, key: &Path, since: Option<&Path>) -> Result<u8> {
    let verifier = read_verifier(key)?;
    let fetched;
    let files: std::sync::Arc<dyn assay_ledger::files::Files> = if is_url(location) {
        fetched = tempfile::tempdir().context("a temporary directory for the fetched log")?;
        fetch_log(&location.to_string_lossy(), fetched.path())?;
        std::sync::Arc::new(assay_ledger::files::Dir::new(fetched.path()))
    } else if on_object_storage(location) {
        object_files(location)?
    } else {
        std::sync::Arc::new(assay_ledger::files::Dir::existing(location).map_err(log_error)?)
    };
    let since_text = since
        .map(|p| {
            std::fs::read_to_string(p)
                .map_err(|e| failure(exit::CHECKPOINT, format!("reading the earlier checkpoint {}: {e}", p.display())))
        })
        .transpose()?;
    let report = verify_in(files.as_ref(), &verifier, since_text.as_deref()).map_err(|e| match e {
        VerifyError::Log(e) => log_error(e),
        VerifyError::SinceUnsigned(why) => {
            failure(exit::KEY, format!("{}: {why}", since.map(|p| p.display().to_string()).unwrap_or_default()))
        }
        VerifyError::SinceMalformed(why) => {
            failure(exit::CHECKPOINT, format!("{}: {why}", since.map(|p| p.display().to_string()).unwrap_or_default()))
        }
    })?;
    let cp = &report.checkpoint;
    if report.problems.is_empty() {
        println!(
            "ok: {} holds {} entries; every entry, tile and the root match the checkpoint signed by {}{}",
            cp.origin,
            cp.size,
            verifier.name(),
            since.map(|p| format!(", and it extends {}", p.display())).unwrap_or_default()
        );
        return Ok(0);
    }
    for p in &report.problems {
        println!("{p}");
    }
    eprintln!("{}: {} problem(s) in the log of {} entries", location.display(), report.problems.len(), cp.size);
    if report.problems.iter().all(|p| matches!(p, assay_ledger::verify::Problem::OtherLog { .. })) {
        return Ok(exit::OTHER_LOG);
    }
    Ok(exit::FAILED)
}

/// `assay log prove DIR INDEX`: a receipt in the C2SP tlog-proof format.
pub(crate) fn prove(dir: &Path, index: u64, key: Option<&Path>, output: Option<&Path>) -> Result<u8> {
    let verifier = key.map(read_verifier).transpose()?;
    let mut reader = open_reader(dir, verifier.as_ref())?;
    let size = reader.checkpoint().size;
    let proof = reader
        .inclusion_proof(index)
        .map_err(log_error)?
        .map_err(|_| failure(2, format!("entry {index} is not in the log: it has {size} entries")))?;
    let receipt = Receipt { extra: None, index, proof, checkpoint: reader.note().to_string() };
    match output {
        Some(path) => {
            std::fs::write(path, receipt.text()).with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "receipt for entry {index} of {} (size {size}) written to {}",
                reader.checkpoint().origin,
                path.display()
            );
        }
        None => print!("{}", receipt.text()),
    }
    Ok(0)
}

/// `assay log verify-receipt RECEIPT --entry FILE --key VKEY`, offline.
pub(crate) fn verify_receipt(receipt: &Path, entry: &Path, key: &Path) -> Result<u8> {
    let verifier = read_verifier(key)?;
    let text = std::fs::read_to_string(receipt).with_context(|| format!("reading {}", receipt.display()))?;
    let bytes = std::fs::read(entry).with_context(|| format!("reading {}", entry.display()))?;
    let parsed = Receipt::parse(&text).map_err(|e| failure(exit::CHECKPOINT, format!("{}: {e}", receipt.display())))?;
    match parsed.verify(&bytes, &verifier) {
        Ok(cp) => {
            println!("ok: {} is entry {} of {} (tree size {})", entry.display(), parsed.index, cp.origin, cp.size);
            Ok(0)
        }
        Err(e) => {
            let code = match e {
                ReceiptError::Malformed(_) => exit::CHECKPOINT,
                ReceiptError::OtherLog { .. } => exit::OTHER_LOG,
                ReceiptError::NotSigned { .. } => exit::KEY,
                ReceiptError::NotIncluded { .. } => exit::FAILED,
            };
            Err(failure(code, format!("{}: {e}", receipt.display())))
        }
    }
}
