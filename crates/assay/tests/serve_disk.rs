//! A full disk under the decision ledger (a small tmpfs): the server stays up, `/ready` and
//! `/health` say why, admissions are answered (failure mode open) or refused (closed) during
//! the outage, and when space returns the ledger writes what was queued and carries on; the log
//! verifies.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::server::{Server, eventually};
use common::{assay, stderr, stdout};
use serde_json::{Value, json};

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).expect("mkdir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("running mount");
        assert!(
            out.status.success(),
            "this test needs to mount a small tmpfs (run as root, as CI does): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes zeros into `path` until the filesystem is full.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).expect("filler");
    let chunk = vec![0u8; 16 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let mut small = vec![0u8; 512];
    while !small.is_empty() {
        if f.write_all(&small).is_err() {
            small.truncate(small.len() / 2);
        }
    }
    let _ = f.sync_all();
}

fn review(uid: &str) -> Value {
    common::server::namespace_review(uid, json!({"owner": "ml"}))
}

fn admit(server: &Server, uid: &str) -> Value {
    let (status, answer) = server.json("POST", "/v1/admission", &review(uid));
    assert_eq!(status, 200, "{answer}");
    answer["response"].clone()
}

fn ready(server: &Server) -> (u16, String) {
    server.send("GET", "/ready", &[], b"")
}

#[test]
fn the_ledger_recovers_from_a_full_disk_and_ready_fails_meanwhile() {
    let work = tempfile::tempdir().expect("tempdir");
    let small = work.path().join("small");
    let _mount = Tmpfs::mount(&small, "256k");
    let out = assay(work.path(), &["log", "keygen", "decisions.example/log", "--private", "k", "--public", "k.pub"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = assay(work.path(), &["log", "init", "small/ledger", "--key", "k"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let filler = small.join("filler");

    for mode in ["open", "closed"] {
        let server =
            Server::start(work.path(), &["--ledger", "small/ledger", "--ledger-key", "k", "--ledger-failure", mode]);
        assert_eq!(admit(&server, &format!("{mode}-before"))["allowed"], true);
        assert_eq!(ready(&server).0, 200);

        // The disk fills up: the next decision cannot be written, and the server says so.
        fill(&filler);
        let during = admit(&server, &format!("{mode}-first-during"));
        assert_eq!(during["allowed"], true, "queued before the failure was known: {during}");
        let not_ready = eventually(Duration::from_secs(10), || {
            let (status, text) = ready(&server);
            (status == 503).then_some(text)
        });
        let text = not_ready.unwrap_or_else(|| panic!("/ready never failed: {}", server.log()));
        assert!(text.contains("the decision ledger cannot write"), "{text}");
        let (status, text) = server.send("GET", "/health", &[], b"");
        assert_eq!(status, 500, "{text}");
        let (_, metrics) = server.send("GET", "/metrics", &[], b"");
        assert!(metrics.contains("assay_ledger_failing 1"), "{metrics}");
        let answer = admit(&server, &format!("{mode}-during"));
        if mode == "closed" {
            assert_eq!(answer["allowed"], false, "{answer}");
            assert_eq!(answer["status"]["code"], 503, "{answer}");
            assert!(answer["status"]["message"].as_str().unwrap_or("").contains("ledger failure mode: closed"));
            let (status, _) = server.json("POST", "/v1/data/authz/residency/allow", &json!({"input": {}}));
            assert_eq!(status, 503);
        } else {
            assert_eq!(answer["allowed"], true, "{answer}");
        }

        // Space returns: the queued decisions are written, and the server is ready again.
        std::fs::remove_file(&filler).expect("remove the filler");
        let back = eventually(Duration::from_secs(20), || (ready(&server).0 == 200).then_some(()));
        assert!(back.is_some(), "/ready did not recover: {}", ready(&server).1);
        assert_eq!(admit(&server, &format!("{mode}-after"))["allowed"], true);
        let (code, log) = server.stop();
        assert_eq!(code, Some(0), "{log}");
    }

    let verify = assay(work.path(), &["log", "verify", "small/ledger", "--key", "k.pub"]);
    assert_eq!(verify.status.code(), Some(0), "{}{}", stdout(&verify), stderr(&verify));
    let shown = stdout(&assay(work.path(), &["log", "show", "small/ledger", "--json"]));
    let uids: Vec<String> = shown
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["json"]["input"]["request"]["uid"].as_str().map(str::to_string))
        .collect();
    // Every decision that was answered allowed is in the ledger, in order; the one refused
    // because it could not be logged is not.
    assert_eq!(
        uids,
        [
            "open-before",
            "open-first-during",
            "open-during",
            "open-after",
            "closed-before",
            "closed-first-during",
            "closed-after"
        ],
        "{shown}"
    );
}
