//! `assay serve` following a Git branch: a signed commit that changes a policy takes effect
//! without a restart; a broken or unsigned head is refused and the last good revision stays in
//! force (also across a restart); polling a repository URL picks up new commits by itself.

mod common;

use std::time::Duration;

use common::server::{Server, eventually, keyed_ledger};
use common::{DEPLOYMENT_OK, Key, Repo, assay, stdout};
use serde_json::{Value, json};

fn label_policy(label: &str) -> String {
    format!(
        "package k8s.labels\n\ndeny contains msg if {{\n\tinput.request.kind.kind == \"Deployment\"\n\t\
         not input.request.object.metadata.labels[\"{label}\"]\n\tmsg := \"Deployment has no {label} label\"\n}}\n"
    )
}

fn review(uid: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "operation": "CREATE",
            "object": {"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": "web", "namespace": "prod", "labels": labels}}
        }
    })
}

/// The admission answer's `(allowed, message)`.
fn admit(server: &Server, labels: Value) -> (bool, String) {
    let (status, answer) = server.json("POST", "/v1/admission", &review("u", labels));
    assert_eq!(status, 200, "{answer}");
    let r = &answer["response"];
    (r["allowed"] == true, r["status"]["message"].as_str().unwrap_or("").to_string())
}

fn status(server: &Server) -> Value {
    let (code, v) = server.json("GET", "/v1/status", &Value::Null);
    assert_eq!(code, 200);
    v
}

fn refresh(server: &Server) -> Value {
    let (code, v) = server.json("POST", "/v1/estate/refresh", &Value::Null);
    assert_eq!(code, 200, "{v}");
    v
}

#[test]
fn signed_commits_take_effect_without_a_restart_and_broken_or_unsigned_heads_are_refused() {
    let alice = Key::new("ed25519", "alice");
    let mallory = Key::new("ed25519", "mallory");
    let repo = Repo::new();
    repo.write(".assay/allowed_signers", &alice.signer_line("alice@example.com"));
    repo.write("assay.yaml", "name: follow-test\nrequire_signed: true\n");
    repo.write("policies/labels.rego", &label_policy("team"));
    repo.write("manifests/web.yaml", DEPLOYMENT_OK);
    let first = repo.commit("team label required", Some(&alice));

    let work = tempfile::tempdir().expect("tempdir");
    keyed_ledger(work.path());
    let repo_path = repo.path().to_str().expect("path").to_string();
    let args = [
        "--estate",
        repo_path.as_str(),
        "--branch",
        "main",
        "--data",
        "data",
        "--poll",
        "0",
        "--ledger",
        "ledger",
        "--ledger-key",
        "k",
    ];
    let server = Server::launch(work.path(), &args);
    assert_eq!(status(&server)["estate"]["revision"], first.as_str());
    assert_eq!(
        admit(&server, json!({"owner": "x"})),
        (false, "[data.k8s.labels.deny] Deployment has no team label".into())
    );
    assert!(admit(&server, json!({"team": "a"})).0);

    // A signed commit that changes the policy takes effect at the next look.
    repo.write("policies/labels.rego", &label_policy("owner"));
    let second = repo.commit("owner label required instead", Some(&alice));
    let v = refresh(&server);
    assert_eq!(v["outcome"], "activated", "{v}");
    assert_eq!(v["previous"], first.as_str());
    assert_eq!(status(&server)["estate"]["revision"], second.as_str());
    assert!(admit(&server, json!({"owner": "x"})).0);
    assert_eq!(
        admit(&server, json!({"team": "a"})),
        (false, "[data.k8s.labels.deny] Deployment has no owner label".into())
    );
    assert_eq!(refresh(&server)["outcome"], "unchanged");

    // A signed head whose policy does not compile is refused; the owner policy stays.
    repo.write("policies/labels.rego", "package k8s.labels\n\ndeny contains msg if {\n");
    let broken = repo.commit("oops", Some(&alice));
    let v = refresh(&server);
    assert_eq!(v["outcome"], "refused", "{v}");
    assert_eq!(v["refused"]["revision"], broken.as_str());
    let reasons = v["refused"]["reasons"].to_string();
    assert!(reasons.contains("policies/labels.rego"), "{reasons}");
    assert_eq!(status(&server)["estate"]["revision"], second.as_str());
    assert!(!admit(&server, json!({"team": "a"})).0, "the last good policy is still enforced");

    // An unsigned head, and one signed by a key that is not trusted (even though the same
    // commit adds it to allowed_signers), are refused.
    repo.write("policies/labels.rego", &label_policy("team"));
    let unsigned = repo.commit("unsigned fix", None);
    let v = refresh(&server);
    assert_eq!(v["outcome"], "refused", "{v}");
    assert!(v["refused"]["reasons"].to_string().contains("commit is not signed"), "{v}");
    let signers = std::fs::read_to_string(repo.path().join(".assay/allowed_signers")).expect("read");
    repo.write(".assay/allowed_signers", &(signers + &mallory.signer_line("mallory@example.com")));
    let self_trusted = repo.commit("trust myself", Some(&mallory));
    let v = refresh(&server);
    assert_eq!(v["outcome"], "refused", "{v}");
    assert!(v["refused"]["reasons"].to_string().contains("not in the trusted allowed_signers"), "{v}");
    let s = status(&server);
    assert_eq!(s["estate"]["revision"], second.as_str());
    let refused: Vec<&str> =
        s["refused"].as_array().expect("refused").iter().filter_map(|r| r["revision"].as_str()).collect();
    assert_eq!(refused, [self_trusted.as_str(), unsigned.as_str(), broken.as_str()], "newest first");

    // A restart whose head is refused enforces the last revision that was activated.
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");
    let server = Server::launch(work.path(), &args);
    let s = status(&server);
    assert_eq!(s["estate"]["revision"], second.as_str(), "{s}");
    assert_eq!(s["refused"][0]["revision"], self_trusted.as_str(), "{s}");
    assert!(server.log().contains("enforcing the last revision that was activated"), "{}", server.log());

    // Every commit since the active revision must be signed: the branch is reset past the
    // unsigned and self-trusted commits, and Alice signs the fix; it is activated.
    repo.git(&["reset", "-q", "--hard", &broken]);
    repo.write("policies/labels.rego", &label_policy("team"));
    let fixed = repo.commit("team label again, signed", Some(&alice));
    assert_eq!(refresh(&server)["outcome"], "activated");
    assert_eq!(status(&server)["estate"]["revision"], fixed.as_str());
    assert!(admit(&server, json!({"team": "a"})).0);
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");

    // Every activation and refusal is in the ledger.
    let shown = stdout(&assay(work.path(), &["log", "show", "ledger", "--json"]));
    let records: Vec<Value> =
        shown.lines().map(|l| serde_json::from_str::<Value>(l).expect("json")["json"].clone()).collect();
    let of = |kind: &str| -> Vec<String> {
        records
            .iter()
            .filter(|r| r["type"] == kind)
            .map(|r| r["estate"]["revision"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(of("assay.dev/record/activation/v1"), [first.clone(), second.clone(), second.clone(), fixed.clone()]);
    assert_eq!(
        of("assay.dev/record/refusal/v1"),
        [broken.clone(), unsigned.clone(), self_trusted.clone(), self_trusted.clone()]
    );
    let activation = records
        .iter()
        .find(|r| r["type"] == "assay.dev/record/activation/v1" && r["estate"]["revision"] == fixed.as_str());
    let activation = activation.expect("activation of the fix");
    assert_eq!(activation["signatures"][0]["trusted"], true);
    assert!(activation["signatures"][0]["detail"].as_str().unwrap_or("").contains("alice@example.com"), "{activation}");
}

#[test]
fn a_repository_url_is_mirrored_and_polled() {
    let repo = Repo::new();
    repo.write("policies/labels.rego", &label_policy("team"));
    let first = repo.commit("first", None);
    let work = tempfile::tempdir().expect("tempdir");
    let url = format!("file://{}", repo.path().display());
    let server = Server::launch(work.path(), &["--estate", &url, "--data", "data", "--poll", "200ms"]);
    assert_eq!(status(&server)["estate"]["revision"], first.as_str());
    assert!(work.path().join("data/estate.git/HEAD").exists(), "the mirror is in the data directory");

    repo.write("policies/labels.rego", &label_policy("owner"));
    let second = repo.commit("second", None);
    let seen = eventually(Duration::from_secs(20), || {
        (status(&server)["estate"]["revision"] == second.as_str()).then_some(())
    });
    assert!(seen.is_some(), "the new commit was not picked up: {}", status(&server));
    assert!(admit(&server, json!({"owner": "x"})).0);

    // A URL that cannot be fetched is reported and the active revision stays.
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");
    let missing = Server::try_launch(work.path(), &["--estate", "file:///nonexistent/estate.git", "--data", "other"]);
    let log = missing.err().expect("a start without any estate fails");
    assert!(log.contains("cloning file:///nonexistent/estate.git"), "{log}");
}

/// The allowed-signers line of a key with options.
fn signer_with(key: &Key, principal: &str, options: &str) -> String {
    let mut parts = key.public.split_whitespace();
    format!("{principal} {options} {} {}\n", parts.next().unwrap_or(""), parts.next().unwrap_or(""))
}

#[test]
fn trust_is_anchored_at_the_revision_last_activated_before_and_after_a_restart() {
    let alice = Key::new("ed25519", "alice");
    let bob = Key::new("ed25519", "bob");
    let mallory = Key::new("ed25519", "mallory");
    let repo = Repo::new();
    // Bob's key expired in June 2026; the test repository's commits say they were made in
    // January 2026.
    repo.write(
        ".assay/allowed_signers",
        &(alice.signer_line("alice@example.com") + &signer_with(&bob, "bob@example.com", "valid-before=\"20260601\"")),
    );
    repo.write("assay.yaml", "name: trust-test\nrequire_signed: true\n");
    repo.write("policies/labels.rego", &label_policy("team"));
    repo.write("manifests/web.yaml", DEPLOYMENT_OK);
    let first = repo.commit("team label required", Some(&alice));
    repo.write("policies/labels.rego", &label_policy("owner"));
    let second = repo.commit("owner label required", Some(&alice));

    let work = tempfile::tempdir().expect("tempdir");
    let repo_path = repo.path().to_str().expect("path").to_string();
    let args = [
        "--estate",
        repo_path.as_str(),
        "--branch",
        "main",
        "--data",
        "data",
        "--poll",
        "0",
        "--max-estate-bytes",
        "20000",
    ];
    let server = Server::launch(work.path(), &args);
    assert_eq!(status(&server)["estate"]["revision"], second.as_str());
    let restart = |server: Server| {
        let (code, log) = server.stop();
        assert_eq!(code, Some(0), "{log}");
        Server::launch(work.path(), &args)
    };
    let refused_reasons = |server: &Server| {
        let v = refresh(server);
        assert_eq!(v["outcome"], "refused", "{v}");
        v["refused"]["reasons"].to_string()
    };

    // A force-push back to an older signed commit: refused, also after a restart.
    repo.git(&["reset", "-q", "--hard", &first]);
    let reasons = refused_reasons(&server);
    assert!(reasons.contains("does not descend from the active revision"), "{reasons}");
    let server = restart(server);
    let s = status(&server);
    assert_eq!(s["estate"]["revision"], second.as_str(), "{s}");
    assert_eq!(s["refused"][0]["revision"], first.as_str(), "{s}");
    assert!(s["refused"][0]["reasons"].to_string().contains("does not descend"), "{s}");
    assert!(admit(&server, json!({"owner": "x"})).0, "the owner policy of the active revision is enforced");
    repo.git(&["reset", "-q", "--hard", &second]);
    assert_eq!(refresh(&server)["outcome"], "unchanged");

    // Mallory adds her key in a commit she signs, then signs another on top: both are judged
    // by the signers trusted at the active revision, before and after a restart (where the
    // head's parent, which trusts her, must not become the judge).
    let signers = std::fs::read_to_string(repo.path().join(".assay/allowed_signers")).expect("read");
    repo.write(".assay/allowed_signers", &(signers + &mallory.signer_line("mallory@example.com")));
    let adds = repo.commit("trust mallory", Some(&mallory));
    repo.write("policies/labels.rego", &label_policy("team"));
    let on_top = repo.commit("team label again", Some(&mallory));
    let reasons = refused_reasons(&server);
    assert!(reasons.contains(&adds[..12]) && reasons.contains(&on_top[..12]), "{reasons}");
    assert!(reasons.contains("not in the trusted allowed_signers"), "{reasons}");
    let server = restart(server);
    let s = status(&server);
    assert_eq!(s["estate"]["revision"], second.as_str(), "{s}");
    assert_eq!(s["refused"][0]["revision"], on_top.as_str(), "{s}");
    repo.git(&["reset", "-q", "--hard", &second]);

    // Bob's commit says it was made before his key expired; it is judged now, and refused.
    repo.write("policies/labels.rego", &label_policy("team"));
    repo.commit("backdated", Some(&bob));
    let reasons = refused_reasons(&server);
    assert!(reasons.contains("is not valid now"), "{reasons}");
    repo.git(&["reset", "-q", "--hard", &second]);

    // An unsigned head is refused on its signature before its files are parsed: its broken
    // policy is never compiled.
    repo.write("policies/labels.rego", "package k8s.labels\n\ndeny contains msg if {\n");
    repo.commit("unsigned and broken", None);
    let reasons = refused_reasons(&server);
    assert!(reasons.contains("commit is not signed"), "{reasons}");
    assert!(!reasons.contains("policies/labels.rego"), "{reasons}");
    repo.git(&["reset", "-q", "--hard", &second]);

    // A signed head whose estate is larger than --max-estate-bytes is refused unread.
    repo.write("manifests/big.yaml", &format!("# {}\n{DEPLOYMENT_OK}", "x".repeat(30_000)));
    repo.commit("a large manifest", Some(&alice));
    let reasons = refused_reasons(&server);
    assert!(reasons.contains("larger than 20000 bytes"), "{reasons}");
    repo.git(&["reset", "-q", "--hard", &second]);

    // A signed change that descends from the active revision is activated.
    repo.write("policies/labels.rego", &label_policy("team"));
    let good = repo.commit("team label, signed by alice", Some(&alice));
    assert_eq!(refresh(&server)["outcome"], "activated");
    let server = restart(server);
    assert_eq!(status(&server)["estate"]["revision"], good.as_str());
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn cert_authority_signers_are_refused_with_a_clear_error() {
    let alice = Key::new("ed25519", "alice");
    let repo = Repo::new();
    repo.write(
        ".assay/allowed_signers",
        &(alice.signer_line("alice@example.com") + &signer_with(&alice, "*@example.com", "cert-authority")),
    );
    repo.write("assay.yaml", "require_signed: true\n");
    repo.write("policies/labels.rego", &label_policy("team"));
    repo.commit("first", Some(&alice));
    repo.write("policies/labels.rego", &label_policy("owner"));
    repo.commit("second", Some(&alice));
    let work = tempfile::tempdir().expect("tempdir");
    let repo_path = repo.path().to_str().expect("path").to_string();
    let refused =
        Server::try_launch(work.path(), &["--estate", &repo_path, "--branch", "main", "--data", "data", "--poll", "0"]);
    let log = refused.err().expect("the head must be refused");
    assert!(log.contains(".assay/allowed_signers:2"), "{log}");
    assert!(log.contains("cert-authority entries are not supported"), "{log}");
}
