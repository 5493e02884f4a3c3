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

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use assay_ledger::bundle;
use assay_ledger::note::NoteSigner;
use assay_ledger::tiles::bundle_bytes;

/// A work directory with a key pair (`log.key`, `log.pub`) named `log.example/audit`.
fn keyed() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = assay(dir.path(), &["log", "keygen", "log.example/audit", "--private", "log.key", "--public", "log.pub"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    dir
}

/// Runs `assay` with `input` on standard input.
fn assay_stdin(dir: &Path, args: &[&str], input: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write");
    child.wait_with_output().expect("wait")
}

fn lines(n: usize, tag: &str) -> String {
    (0..n).map(|i| format!("{tag} entry {i:04}\n")).collect()
}

/// A log `name` of `n` entries in `dir`, signed with `key`.
fn make_log(dir: &Path, name: &str, key: &str, n: usize, tag: &str) {
    let out = assay(dir, &["log", "init", name, "--key", key]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = assay_stdin(dir, &["log", "append", name, "--key", key, "--lines"], &lines(n, tag));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), n);
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else if e.file_name() != ".lock" {
                out.push((e.path(), std::fs::read(e.path()).expect("read")));
            }
        }
    }
    out.sort();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

fn verify(dir: &Path, log: &str, extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec!["log", "verify", log, "--key", "log.pub"];
    args.extend_from_slice(extra);
    let out = assay(dir, &args);
    (out.status.code(), format!("{}{}", stdout(&out), stderr(&out)))
}

fn rewrite_bundle(path: &Path, change: impl FnOnce(&mut Vec<Vec<u8>>)) {
    let bytes = std::fs::read(path).expect("bundle");
    let mut entries: Vec<Vec<u8>> = bundle::parse(&bytes).expect("parse").iter().map(|e| e.to_vec()).collect();
    change(&mut entries);
    std::fs::write(path, bundle_bytes(&entries)).expect("write");
}

#[test]
fn appended_entries_are_shown_proven_and_receipts_verify_offline() {
    let work = keyed();
    let dir = work.path();
    make_log(dir, "ledger", "log.key", 300, "a");
    std::fs::write(dir.join("doc.json"), "{\"hello\": \"auditor\"}").expect("write");
    let out = assay(dir, &["log", "append", "ledger", "--key", "log.key", "doc.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "300\tdoc.json\n");

    let out = assay(dir, &["log", "show", "ledger", "--tail", "2"]);
    assert_eq!(stdout(&out), "299\ta entry 0299\n300\t{\"hello\": \"auditor\"}\n");
    let out = assay(dir, &["log", "show", "ledger", "300", "--json", "--key", "log.pub"]);
    let shown: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(shown["json"]["hello"], "auditor");

    let out = assay(dir, &["log", "prove", "ledger", "300", "-o", "doc.tlog-proof"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let receipt = std::fs::read_to_string(dir.join("doc.tlog-proof")).expect("receipt");
    assert!(receipt.starts_with("c2sp.org/tlog-proof@v1\nindex 300\n"), "{receipt}");
    // Offline: the log itself is gone.
    std::fs::rename(dir.join("ledger"), dir.join("elsewhere")).expect("move");
    let ok = assay(dir, &["log", "verify-receipt", "doc.tlog-proof", "--entry", "doc.json", "--key", "log.pub"]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert_eq!(stdout(&ok), "ok: doc.json is entry 300 of log.example/audit (tree size 301)\n");
    std::fs::write(dir.join("other.json"), "{\"hello\": \"forger\"}").expect("write");
    let bad = assay(dir, &["log", "verify-receipt", "doc.tlog-proof", "--entry", "other.json", "--key", "log.pub"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("entry 300 is not in the tree of size 301"), "{}", stderr(&bad));
}

#[test]
fn check_with_a_ledger_appends_a_canonical_verdict_record() {
    let work = keyed();
    let dir = work.path();
    assert_eq!(assay(dir, &["log", "init", "ledger", "--key", "log.key"]).status.code(), Some(0));
    let estate = common::repo_root().join("examples/estate");
    let estate = estate.to_string_lossy();
    let out = assay(dir, &["check", &estate, "--format", "json", "--ledger", "ledger", "--ledger-key", "log.key"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("ledger: verdict recorded as entry 0 of log.example/audit"), "{}", stderr(&out));
    let verdict: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("verdict json");

    let shown = stdout(&assay(dir, &["log", "show", "ledger", "0"]));
    let entry = shown.strip_prefix("0\t").expect("index").trim_end();
    let record: serde_json::Value = serde_json::from_str(entry).expect("record");
    // Canonical: re-serializing canonically gives the same bytes.
    assert_eq!(serde_json_canonicalizer::to_string(&record).expect("jcs"), entry);
    assert_eq!(record["type"], "assay.dev/record/verdict/v1");
    assert_eq!(record["verdict"]["summary"], verdict["summary"]);
    assert!(record["estate"]["revision"].as_str().is_some_and(|r| r.starts_with("sha256:")), "{record}");
    // The digest is the verdict's canonical JSON: the full verdict can be matched to its entry.
    let digest = {
        use sha2::Digest;
        let bytes = serde_json_canonicalizer::to_vec(&verdict).expect("jcs");
        sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    assert_eq!(record["verdict"]["digest"], format!("sha256:{digest}"));
    assert!(chrono::DateTime::parse_from_rfc3339(record["time"].as_str().expect("time")).is_ok());

    // Without a log, the check stops before doing anything and says why.
    let out = assay(dir, &["check", &estate, "--ledger", "missing", "--ledger-key", "log.key"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("--ledger: missing: no such directory"), "{}", stderr(&out));
}

#[test]
fn verify_names_each_kind_of_tampering() {
    let work = keyed();
    let dir = work.path();
    make_log(dir, "pristine", "log.key", 600, "t");
    assert_eq!(verify(dir, "pristine", &[]).0, Some(0));
    let fresh = |name: &str| -> PathBuf {
        let to = dir.join(name);
        copy_dir(&dir.join("pristine"), &to);
        to
    };

    let log = fresh("byte");
    let path = log.join("tile/entries/001");
    let mut bytes = std::fs::read(&path).expect("bundle");
    bytes[2 + 12 * 14 + 5] ^= 1; // inside entry 256 + 12 (every entry is 2 + 12 bytes)
    std::fs::write(&path, bytes).expect("write");
    let (code, out) = verify(dir, "byte", &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("entry 268 was changed"), "{out}");

    let log = fresh("deleted");
    rewrite_bundle(&log.join("tile/entries/001"), |e| {
        e.remove(44);
    });
    let (code, out) = verify(dir, "deleted", &[]);
    assert_eq!(code, Some(1));
    assert!(out.contains("entry 300 was deleted from tile/entries/001"), "{out}");

    let log = fresh("swapped");
    rewrite_bundle(&log.join("tile/entries/000"), |e| e.swap(3, 7));
    let (code, out) = verify(dir, "swapped", &[]);
    assert_eq!(code, Some(1));
    assert!(out.contains("entries 3 and 7 were swapped"), "{out}");

    let log = fresh("truncated");
    let path = log.join("tile/0/001");
    let bytes = std::fs::read(&path).expect("tile");
    std::fs::write(&path, &bytes[..bytes.len() - 40]).expect("write");
    let (code, out) = verify(dir, "truncated", &[]);
    assert_eq!(code, Some(1));
    assert!(out.contains("tile/0/001 is truncated: 8152 bytes where 256 hashes take 8192"), "{out}");

    let log = fresh("tilehash");
    let path = log.join("tile/0/000");
    let mut bytes = std::fs::read(&path).expect("tile");
    bytes[32 * 5 + 9] ^= 0x80;
    std::fs::write(&path, bytes).expect("write");
    let (code, out) = verify(dir, "tilehash", &[]);
    assert_eq!(code, Some(1));
    assert!(out.contains("tile/0/000: hash 5 was changed (it covers entries 5..6)"), "{out}");

    // A checkpoint signed under the log's name by a key that is not the log's.
    let log = fresh("forged");
    let note = std::fs::read_to_string(log.join("checkpoint")).expect("checkpoint");
    let body = &note[..=note.rfind("\n\n").expect("note")];
    let impostor = NoteSigner::generate("log.example/audit").expect("key");
    std::fs::write(log.join("checkpoint"), impostor.sign(body).expect("sign")).expect("write");
    let (code, out) = verify(dir, "forged", &[]);
    assert_eq!(code, Some(1));
    assert!(out.contains("forged checkpoint"), "{out}");

    // The right key over another tree of the same size: a fork.
    make_log(dir, "other", "log.key", 600, "u");
    let log = fresh("fork");
    std::fs::copy(dir.join("other/checkpoint"), log.join("checkpoint")).expect("copy");
    let (code, out) = verify(dir, "fork", &[]);
    assert_eq!(code, Some(1));
    assert!(out.contains("fork: the checkpoint is signed over a different tree of size 600"), "{out}");
    // … and seen from a verifier that kept the genuine checkpoint.
    let (code, out) = verify(dir, "other", &["--since", "pristine/checkpoint"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("history rewritten: the log's first 600 entries"), "{out}");

    // A rollback: the log is replaced by an older copy of itself.
    make_log(dir, "growing", "log.key", 300, "g");
    copy_dir(&dir.join("growing"), &dir.join("old"));
    let out = assay_stdin(dir, &["log", "append", "growing", "--key", "log.key", "--lines"], &lines(50, "h"));
    assert_eq!(out.status.code(), Some(0));
    std::fs::copy(dir.join("growing/checkpoint"), dir.join("seen.checkpoint")).expect("copy");
    assert_eq!(verify(dir, "growing", &["--since", "seen.checkpoint"]).0, Some(0));
    let (code, out) = verify(dir, "old", &["--since", "seen.checkpoint"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("rollback: the log has 300 entries but an earlier checkpoint showed 350"), "{out}");
}

#[test]
fn bad_input_gets_a_clear_message_a_distinct_code_and_changes_nothing() {
    let work = keyed();
    let dir = work.path();
    make_log(dir, "ledger", "log.key", 20, "b");
    let before = snapshot(&dir.join("ledger"));

    let out = assay(dir, &["log", "verify", "nowhere", "--key", "log.pub"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("nowhere: no such directory"), "{}", stderr(&out));
    std::fs::create_dir(dir.join("empty")).expect("mkdir");
    let out = assay(dir, &["log", "append", "empty", "--key", "log.key", "log.pub"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("is not a log: it has no checkpoint"), "{}", stderr(&out));

    let other = assay(dir, &["log", "keygen", "log.example/other", "--private", "o.key", "--public", "o.pub"]);
    assert_eq!(other.status.code(), Some(0));
    let out = assay(dir, &["log", "verify", "ledger", "--key", "o.pub"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(stderr(&out).contains("not signed by log.example/other+"), "{}", stderr(&out));
    assert!(stderr(&out).contains("it is signed by log.example/audit+"), "{}", stderr(&out));
    let out = assay(dir, &["log", "append", "ledger", "--key", "o.key", "log.pub"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let out = assay(dir, &["log", "verify", "ledger", "--key", "no-such.pub"]);
    assert_eq!(out.status.code(), Some(4));

    // A receipt for another log.
    make_log(dir, "second", "o.key", 5, "s");
    assert_eq!(assay(dir, &["log", "prove", "second", "2", "-o", "r.tlog-proof"]).status.code(), Some(0));
    std::fs::write(dir.join("e"), "s entry 0002").expect("write");
    let out = assay(dir, &["log", "verify-receipt", "r.tlog-proof", "--entry", "e", "--key", "log.pub"]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains("the receipt is for log log.example/other, not for log.example/audit"));
    assert_eq!(
        assay(dir, &["log", "verify-receipt", "r.tlog-proof", "--entry", "e", "--key", "o.pub"]).status.code(),
        Some(0)
    );

    // Another writer holds the log.
    let signer = NoteSigner::from_text(&std::fs::read_to_string(dir.join("log.key")).expect("key")).expect("key");
    let held = assay_ledger::store::Log::open(&dir.join("ledger"), signer).expect("open");
    let out = assay(dir, &["log", "append", "ledger", "--key", "log.key", "log.pub"]);
    assert_eq!(out.status.code(), Some(7));
    assert!(stderr(&out).contains(&format!("being written by another process (pid {})", std::process::id())));
    drop(held);
    assert_eq!(snapshot(&dir.join("ledger")), before);

    // A corrupt checkpoint.
    copy_dir(&dir.join("ledger"), &dir.join("corrupt"));
    std::fs::write(dir.join("corrupt/checkpoint"), "log.example/audit\nnot a number\n").expect("write");
    for args in [
        vec!["log", "verify", "corrupt", "--key", "log.pub"],
        vec!["log", "append", "corrupt", "--key", "log.key", "log.pub"],
        vec!["log", "show", "corrupt"],
    ] {
        let out = assay(dir, &args);
        assert_eq!(out.status.code(), Some(5), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("corrupt checkpoint"), "{}", stderr(&out));
    }
    assert_eq!(snapshot(&dir.join("ledger")), before);
}

/// Kills a real writer with SIGKILL at random moments, many times: every acknowledged entry
/// survives, the log always verifies, and it holds exactly what was sent, in order.
#[test]
fn a_writer_killed_at_random_moments_loses_nothing_it_acknowledged() {
    let work = keyed();
    let dir = work.path();
    assert_eq!(assay(dir, &["log", "init", "ledger", "--key", "log.key"]).status.code(), Some(0));
    let mut sent: Vec<String> = Vec::new();
    let mut acknowledged = 0;
    // A small deterministic generator for the kill delays.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..30 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = std::time::Duration::from_millis(seed % 120);
        let mut child = Command::new(env!("CARGO_BIN_EXE_assay"))
            .args(["log", "append", "ledger", "--key", "log.key", "--lines"])
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let mut stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let feeder = std::thread::spawn(move || {
            // Feed until the pipe breaks (the process died).
            let mut k = 0u64;
            let mut lines = Vec::new();
            loop {
                let line = format!("round {round} line {k}");
                if stdin.write_all(format!("{line}\n").as_bytes()).is_err() {
                    return lines;
                }
                lines.push(line);
                k += 1;
                if k.is_multiple_of(500) {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
        });
        let (first, started) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut acked = Vec::new();
            for n in std::io::BufReader::new(stdout).lines().map_while(Result::ok).filter_map(|l| l.parse::<u64>().ok())
            {
                if acked.is_empty() {
                    let _ = first.send(());
                }
                acked.push(n);
            }
            acked
        });
        // The random moment is counted from the first acknowledgement, so that a slow start (a
        // loaded machine) does not make every round end before anything was written.
        let _ = started.recv_timeout(std::time::Duration::from_secs(30));
        std::thread::sleep(delay);
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        let acked = reader.join().expect("reader");
        let fed = feeder.join().expect("feeder");

        let (code, out) = verify(dir, "ledger", &[]);
        assert_eq!(code, Some(0), "round {round}: {out}");
        // "ok: ORIGIN holds N entries; …"
        let size: usize =
            out.split(" holds ").nth(1).and_then(|s| s.split(' ').next()).and_then(|s| s.parse().ok()).expect("size");
        let base = sent.len();
        acknowledged += acked.len();
        assert!(acked.windows(2).all(|w| w[1] == w[0] + 1), "round {round}: acknowledgements in order");
        // Every acknowledged index is inside the log, and it holds a prefix of what was fed.
        if let Some(&last) = acked.last() {
            assert!((last as usize) < size, "round {round}: acknowledged {last} but the log has {size}");
        }
        assert!(size >= base && size - base <= fed.len(), "round {round}: size {size}, base {base}, fed {}", fed.len());
        sent.extend(fed.into_iter().take(size - base));
    }
    let shown = stdout(&assay(dir, &["log", "show", "ledger"]));
    let entries: Vec<&str> = shown.lines().map(|l| l.split_once('\t').expect("tab").1).collect();
    assert_eq!(entries, sent.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(sent.len() > 1000, "the writer should have appended a good deal: {}", sent.len());
    assert!(acknowledged > 1000, "acknowledged {acknowledged}");
}

/// A log written by an earlier version (kept in crates/assay-record/testdata) is still read:
/// it verifies, and `log show --json` reads every entry as a known record type.
#[test]
fn logs_written_by_earlier_versions_are_shown_as_records() {
    let kept = common::repo_root().join("crates/assay-record/testdata");
    let dir = tempfile::tempdir().expect("tempdir");
    let log = kept.join("log");
    let key = kept.join("log.pub");
    let (log, key) = (log.to_str().unwrap_or(""), key.to_str().unwrap_or(""));
    let out = assay(dir.path(), &["log", "verify", log, "--key", key]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    let out = assay(dir.path(), &["log", "show", log, "--json", "--key", key]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut kinds = std::collections::BTreeSet::new();
    for line in stdout(&out).lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        assert_eq!(v.get("record_error"), None, "{line}");
        let kind = v["record"].as_str().unwrap_or_else(|| panic!("not read as a record: {line}"));
        assert!(v["json"]["type"].as_str().is_some_and(|t| t.starts_with("assay.dev/record/")), "{line}");
        kinds.insert(kind.to_string());
    }
    let expected = [
        "verdict/v1",
        "decision/v2",
        "finding/v2",
        "activation/v1",
        "refusal/v1",
        "lineage-event/v2",
        "residency-finding/v1",
        "provenance/v2",
    ];
    assert_eq!(kinds, expected.iter().map(|k| format!("assay.dev/record/{k}")).collect());
}
