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

    // Alice signs the fix: it is activated.
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
