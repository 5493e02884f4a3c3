//! Helpers for driving the real `assay` binary, real Git repositories and real SSH keys.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (where `examples/` is).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// The Python of the test virtual environment (`ASSAY_PYTHON_VENV`, else `target/tools/pyenv`),
/// with `requirement` installed from PyPI unless `module` already imports (scripts/test.sh
/// installs every requirement up front).
pub fn python_with(module: &str, requirement: &str) -> PathBuf {
    python_with_pip(module, &[requirement])
}

/// Like [`python_with`], installing with these arguments to `pip install`.
pub fn python_with_pip(module: &str, pip_args: &[&str]) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo_root().join("target"), PathBuf::from);
    let venv = std::env::var_os("ASSAY_PYTHON_VENV").map_or_else(|| target.join("tools/pyenv"), PathBuf::from);
    let python = venv.join("bin/python");
    let ready = std::process::Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ready {
        if !python.is_file() {
            let made = std::process::Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv)
                .status()
                .expect("python3 -m venv");
            assert!(made.success(), "could not create a virtual environment at {}", venv.display());
        }
        let pip = std::process::Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet"])
            .args(pip_args)
            .output()
            .expect("pip");
        assert!(pip.status.success(), "pip install {pip_args:?} failed: {}", String::from_utf8_lossy(&pip.stderr));
    }
    python
}

/// Runs `assay` with arguments in a directory.
pub fn assay(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_assay")).args(args).current_dir(dir).output().expect("running assay")
}

/// Runs `assay` with arguments and environment variables in a directory.
pub fn assay_env(dir: &Path, env: &[(&'static str, String)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(dir)
        .output()
        .expect("running assay")
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A Git repository in a temporary directory, with git isolated from the user's configuration.
pub struct Repo {
    pub dir: tempfile::TempDir,
    home: tempfile::TempDir,
}

impl Repo {
    pub fn new() -> Repo {
        let repo = Repo { dir: tempfile::tempdir().expect("tempdir"), home: tempfile::tempdir().expect("tempdir") };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["config", "user.name", "Test"]);
        repo.git(&["config", "user.email", "test@example.com"]);
        repo.git(&["config", "gpg.format", "ssh"]);
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn git_output(&self, args: &[&str]) -> Output {
        Command::new("git")
            .args(args)
            .current_dir(self.path())
            .env("HOME", self.home.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
            .output()
            .expect("running git")
    }

    pub fn git(&self, args: &[&str]) -> String {
        let out = self.git_output(args);
        assert!(out.status.success(), "git {args:?} failed: {}", stderr(&out));
        stdout(&out).trim().to_string()
    }

    pub fn write(&self, path: &str, text: &str) {
        let full = self.path().join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        std::fs::write(full, text).expect("write");
    }

    pub fn remove(&self, path: &str) {
        std::fs::remove_file(self.path().join(path)).expect("remove");
    }

    /// Commits everything; signs with `key` when given. Returns the commit id.
    pub fn commit(&self, message: &str, key: Option<&Key>) -> String {
        self.git(&["add", "-A"]);
        match key {
            Some(key) => {
                let signing = format!("user.signingkey={}", key.private.display());
                self.git(&["-c", &signing, "commit", "-q", "-S", "--allow-empty", "-m", message])
            }
            None => self.git(&["commit", "-q", "--allow-empty", "-m", message]),
        };
        self.git(&["rev-parse", "HEAD"])
    }
}

/// An SSH key pair made by ssh-keygen.
pub struct Key {
    pub private: PathBuf,
    pub public: String,
    _dir: tempfile::TempDir,
}

impl Key {
    pub fn new(kind: &str, comment: &str) -> Key {
        let dir = tempfile::tempdir().expect("tempdir");
        let private = dir.path().join("id");
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", "", "-C", comment, "-f"])
            .arg(&private)
            .status()
            .expect("running ssh-keygen");
        assert!(status.success());
        let public = std::fs::read_to_string(dir.path().join("id.pub")).expect("public key").trim().to_string();
        Key { private, public, _dir: dir }
    }

    /// The `allowed_signers` line for a principal.
    pub fn signer_line(&self, principal: &str) -> String {
        let mut parts = self.public.split_whitespace();
        format!("{principal} {} {}\n", parts.next().unwrap_or(""), parts.next().unwrap_or(""))
    }
}

pub const DEPLOYMENT_OK: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: prod\n  labels: {team: a}\nspec:\n  replicas: 2\n";
pub const TEAM_POLICY: &str = "package k8s.team\n\ndeny contains msg if {\n\tinput.request.kind.kind == \"Deployment\"\n\tnot input.request.object.metadata.labels.team\n\tmsg := \"Deployment has no team label\"\n}\n";
pub mod apiserver;
pub mod browser;
pub mod prometheus;
pub mod s3;
pub mod scale;
pub mod server;

fn sarif_multitool() -> PathBuf {
    if let Some(path) = std::env::var_os("ASSAY_SARIF_MULTITOOL") {
        return path.into();
    }
    // Outside scripts/test.sh: install the validator the same way.
    let tools = repo_root().join("target/tools");
    let bin = tools.join("node_modules/.bin/sarif-multitool");
    if !bin.exists() {
        let status = std::process::Command::new("npm")
            .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
            .arg(&tools)
            .arg("@microsoft/sarif-multitool@5.7.0")
            .status()
            .expect("npm, to install the SARIF validator");
        assert!(status.success(), "installing @microsoft/sarif-multitool");
    }
    bin
}

/// Microsoft's SARIF validator checks the schema and the SARIF rules of a log file; any error
/// or warning fails.
#[allow(dead_code)]
pub fn validate_sarif(sarif: &Path) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("validation.sarif");
    let status = std::process::Command::new(sarif_multitool())
        .arg("validate")
        .arg(sarif)
        .arg("--output")
        .arg(&log)
        .output()
        .expect("running sarif-multitool");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&log).expect("validation log")).expect("validation JSON");
    let problems: Vec<&serde_json::Value> = report["runs"][0]["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["level"] == "error" || r["level"] == "warning")
        .collect();
    assert!(problems.is_empty(), "SARIF validation: {problems:#?}\n{}", String::from_utf8_lossy(&status.stdout));
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stdout));
}

const VERIFY_DSSE: &str = r#"
import base64, json, sys
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey
envelope = json.load(open(sys.argv[1]))
name, _hash, key = open(sys.argv[2]).read().strip().split("+", 2)
raw = base64.b64decode(key)
assert raw[0] == 1, "not an Ed25519 verifier key"
public = SSlibKey(name, "ed25519", "ed25519", {"public": raw[1:].hex()})
try:
    Envelope.from_dict(envelope).verify([public], 1)
except Exception as e:
    print("REFUSED", type(e).__name__, e)
    sys.exit(1)
statement = json.loads(base64.b64decode(envelope["payload"]))
print(json.dumps({"type": statement["_type"], "predicateType": statement["predicateType"],
                  "subject": statement["subject"][0]["name"]}))
"#;

/// Verifies a DSSE envelope (a JSON file) with Python's securesystemslib and an Ed25519
/// verifier key in signed-note form (as `assay log keygen` writes it): whether it verifies, and
/// what the script said (the statement's type, predicate type and first subject).
#[allow(dead_code)]
pub fn verify_dsse(envelope: &Path, key: &Path) -> (bool, String) {
    let python = python_with("securesystemslib.dsse", "securesystemslib[crypto]==1.6.0");
    let out = Command::new(python).args(["-c", VERIFY_DSSE]).arg(envelope).arg(key).output().expect("python");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Generated FOCUS billing data (`assay cost generate`, `days` days, seed `seed`) ingested into
/// `dir/data`, the billing store `assay cost --data data` and `assay serve --data data` read.
#[allow(dead_code)]
pub fn billing_store(dir: &Path, days: u32, seed: u64) {
    scale::billing(dir, &["--days", &days.to_string(), "--seed", &seed.to_string()]);
}
