//! `assay check` on real Git repositories: revisions, changes, monorepos and signed commits.

mod common;

use common::{DEPLOYMENT_OK, Key, Repo, TEAM_POLICY, assay, stderr, stdout};
use serde_json::Value;

fn deployment(name: &str, team: bool) -> String {
    let labels = if team { "  labels: {team: a}\n" } else { "" };
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: prod\n{labels}spec:\n  replicas: 2\n"
    )
}

fn json(repo: &Repo, args: &[&str]) -> (Option<i32>, Value) {
    let mut all = vec!["check", "."];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    let out = assay(repo.path(), &all);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)));
    (out.status.code(), v)
}

#[test]
fn rev_reads_git_objects_not_the_work_tree() {
    let repo = Repo::new();
    repo.write("policies/team.rego", TEAM_POLICY);
    repo.write("manifests/web.yaml", DEPLOYMENT_OK);
    let good = repo.commit("good", None);
    repo.git(&["tag", "v1"]);
    repo.write("manifests/web.yaml", &deployment("web", false));
    // The work tree is bad, the commit is good.
    assert_eq!(assay(repo.path(), &["check", "."]).status.code(), Some(1));
    for rev in ["HEAD", "main", "v1", &good[..8], &good] {
        let out = assay(repo.path(), &["check", ".", "--rev", rev]);
        assert_eq!(out.status.code(), Some(0), "--rev {rev}: {}{}", stdout(&out), stderr(&out));
    }
    let (_, v) = json(&repo, &["--rev", "v1"]);
    assert_eq!(v["estate"]["origin"]["commit"], good.as_str());
    assert_eq!(v["estate"]["origin"]["rev"], "v1");
}

#[test]
fn base_reports_new_fixed_and_unchanged_and_fails_only_on_new() {
    let repo = Repo::new();
    repo.write("policies/team.rego", TEAM_POLICY);
    repo.write("manifests/a.yaml", &deployment("a", false));
    repo.write("manifests/b.yaml", &deployment("b", false));
    let base = repo.commit("base", None);
    repo.write("manifests/a.yaml", &deployment("a", true));
    repo.write("manifests/c.yaml", &deployment("c", false));
    let head = repo.commit("fix a, add c", None);

    let (code, v) = json(&repo, &["--base", &base, "--rev", &head]);
    assert_eq!(code, Some(1));
    assert_eq!(
        (v["summary"]["new"].as_u64(), v["summary"]["fixed"].as_u64(), v["summary"]["unchanged"].as_u64()),
        (Some(1), Some(1), Some(1))
    );
    let status: Vec<(String, String)> = v["violations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| (x["path"].as_str().unwrap_or("").to_string(), x["status"].as_str().unwrap_or("").to_string()))
        .collect();
    assert_eq!(
        status,
        vec![("manifests/b.yaml".into(), "unchanged".into()), ("manifests/c.yaml".into(), "new".into())]
    );
    assert_eq!(v["fixed"][0]["path"], "manifests/a.yaml");
    let changes: Vec<String> = v["changes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| format!("{} {}", c["kind"].as_str().unwrap_or(""), c["path"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(changes, vec!["modified manifests/a.yaml", "added manifests/c.yaml"]);

    // A change that only fixes passes, even though b is still denied.
    repo.write("manifests/c.yaml", &deployment("c", true));
    repo.remove("manifests/a.yaml");
    let fix = repo.commit("fix c, drop a", None);
    let out = assay(repo.path(), &["check", ".", "--base", &head, "--rev", &fix]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("0 new, 1 fixed, 1 unchanged"), "{}", stdout(&out));

    // Without --rev the work tree is compared with the base.
    repo.write("manifests/d.yaml", &deployment("d", false));
    let out = assay(repo.path(), &["check", ".", "--base", &fix]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("new Deployment.apps/prod/d"), "{}", stdout(&out));
}

#[test]
fn estate_in_a_subdirectory_of_a_monorepo() {
    let repo = Repo::new();
    repo.write("README.md", "monorepo\n");
    repo.write("platform/estate/policies/team.rego", TEAM_POLICY);
    repo.write("platform/estate/manifests/web.yaml", &deployment("web", false));
    repo.write("services/manifests/ignored.yaml", &deployment("elsewhere", false));
    repo.commit("monorepo", None);
    let out = assay(repo.path(), &["check", "platform/estate", "--rev", "HEAD", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["summary"]["objects"], 1);
    assert_eq!(v["violations"][0]["path"], "manifests/web.yaml");
    let out = assay(repo.path(), &["check", "platform/estate", "--rev", "HEAD", "--format", "sarif"]);
    let sarif: Value = serde_json::from_slice(&out.stdout).expect("sarif");
    let uri = &sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"];
    assert_eq!(uri, "platform/estate/manifests/web.yaml");
}

#[test]
fn unknown_revision_and_non_repository_exit_2_with_the_name() {
    let repo = Repo::new();
    repo.write("manifests/web.yaml", DEPLOYMENT_OK);
    repo.commit("one", None);
    let out = assay(repo.path(), &["check", ".", "--rev", "no-such-branch"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("revision \"no-such-branch\" not found"), "{}", stderr(&out));

    let plain = tempfile::tempdir().expect("tempdir");
    let out = assay(plain.path(), &["check", ".", "--rev", "HEAD"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is not a git repository"), "{}", stderr(&out));
}

/// Writes a commit object by hand: `raw` with `parent` and `message` replaced, and points main at it.
fn forge(repo: &Repo, from: &str, parent: &str, message: &str) -> String {
    let raw = repo.git(&["cat-file", "commit", from]);
    let (headers, _) = raw.split_once("\n\n").unwrap_or((&raw, ""));
    let headers: Vec<String> = headers
        .lines()
        .map(|l| if l.starts_with("parent ") { format!("parent {parent}") } else { l.to_string() })
        .collect();
    let object = format!("{}\n\n{message}\n", headers.join("\n"));
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("commit");
    std::fs::write(&file, object).expect("write");
    let id = repo.git(&["hash-object", "-t", "commit", "-w", file.to_str().unwrap_or("")]);
    repo.git(&["update-ref", "refs/heads/main", &id]);
    id
}

#[test]
fn signed_commits_agree_with_git_verify_commit() {
    let alice = Key::new("ed25519", "alice");
    let bob = Key::new("ecdsa", "bob");
    let mallory = Key::new("ed25519", "mallory");
    let repo = Repo::new();
    repo.write(
        ".assay/allowed_signers",
        &(alice.signer_line("alice@example.com") + &bob.signer_line("bob@example.com")),
    );
    repo.write("assay.yaml", "require_signed: true\n");
    repo.write("manifests/web.yaml", DEPLOYMENT_OK);
    let base = repo.commit("trust alice and bob", Some(&alice));
    let signers_dir = tempfile::tempdir().expect("tempdir");
    let base_signers = signers_dir.path().join("allowed_signers");
    std::fs::write(&base_signers, repo.git(&["show", &format!("{base}:.assay/allowed_signers")]) + "\n")
        .expect("write");

    let mut expected = Vec::new();
    repo.write("manifests/a.yaml", DEPLOYMENT_OK.replace("web", "a").as_str());
    expected.push((repo.commit("signed by alice", Some(&alice)), true));
    repo.write("manifests/b.yaml", DEPLOYMENT_OK.replace("web", "b").as_str());
    expected.push((repo.commit("signed by bob (ecdsa)", Some(&bob)), true));
    repo.write("manifests/c.yaml", DEPLOYMENT_OK.replace("web", "c").as_str());
    expected.push((repo.commit("unsigned", None), false));
    // Mallory trusts herself in the same change: the base's signers decide, so it does not count.
    let signers = std::fs::read_to_string(repo.path().join(".assay/allowed_signers")).expect("read");
    repo.write(".assay/allowed_signers", &(signers + &mallory.signer_line("mallory@example.com")));
    expected.push((repo.commit("add my own key", Some(&mallory)), false));
    let signed_by_alice = expected[0].0.clone();
    let tip = expected.last().map(|e| e.0.clone()).unwrap_or_default();
    // A good signature over different content: the message was changed after signing.
    expected.push((forge(&repo, &signed_by_alice, &tip, "tampered message"), false));

    let (code, v) = json(&repo, &["--base", &base, "--rev", "main"]);
    assert_eq!(code, Some(1), "{v:#}");
    let commits = v["commits"].as_array().cloned().unwrap_or_default();
    assert_eq!(commits.len(), expected.len(), "{v:#}");
    for (id, trusted) in &expected {
        let c =
            commits.iter().find(|c| c["commit"] == id.as_str()).unwrap_or_else(|| panic!("commit {id} not checked"));
        assert_eq!(c["trusted"], *trusted, "{c:#}");
        let git = repo.git_output(&[
            "-c",
            &format!("gpg.ssh.allowedSignersFile={}", base_signers.display()),
            "verify-commit",
            id,
        ]);
        assert_eq!(
            git.status.success(),
            *trusted,
            "assay and git verify-commit disagree on {id}: {c:#}\n{}",
            stderr(&git)
        );
    }
    let details: Vec<&str> = commits.iter().filter_map(|c| c["detail"].as_str()).collect();
    assert!(details.iter().any(|d| d.contains("commit is not signed")), "{details:?}");
    assert!(details.iter().any(|d| d.contains("not in the trusted allowed_signers")), "{details:?}");
    assert!(details.iter().any(|d| d.contains("does not verify")), "{details:?}");
    assert_eq!(v["summary"]["untrusted_commits"], 3);

    // Once mallory's key is in the base, her later commits are trusted.
    let trusted_base = expected[3].0.clone();
    repo.git(&["reset", "-q", "--hard", &trusted_base]);
    repo.write("manifests/d.yaml", DEPLOYMENT_OK.replace("web", "d").as_str());
    repo.commit("mallory, now trusted", Some(&mallory));
    let (code, v) = json(&repo, &["--base", &trusted_base]);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["commits"][0]["trusted"], true);
}

#[test]
fn require_signed_cannot_be_switched_off_by_the_change() {
    let alice = Key::new("ed25519", "alice");
    let repo = Repo::new();
    repo.write(".assay/allowed_signers", &alice.signer_line("alice@example.com"));
    repo.write("assay.yaml", "require_signed: true\n");
    let base = repo.commit("base", Some(&alice));
    repo.write("assay.yaml", "require_signed: false\n");
    repo.commit("switch it off, unsigned", None);
    let (code, v) = json(&repo, &["--base", &base, "--rev", "HEAD"]);
    assert_eq!(code, Some(1));
    assert_eq!(v["summary"]["untrusted_commits"], 1);
}
