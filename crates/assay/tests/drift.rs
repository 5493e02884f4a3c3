//! `assay drift` over files of live objects: an estate (the example's, with a ConfigMap added),
//! and a live state as the API server would answer `kubectl get -o json` for it, with one
//! Deployment edited by hand, the ConfigMap never applied, and a hand-made Pod that breaks a
//! constraint.

mod common;

use std::path::Path;

use common::{assay, repo_root, stderr, stdout};
use serde_json::{Value, json};

/// The example estate, with a ConfigMap for eu-prod.
fn estate(work: &Path) -> std::path::PathBuf {
    let dir = work.join("estate");
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(repo_root().join("examples/estate"))
        .arg(&dir)
        .status()
        .expect("cp");
    assert!(status.success());
    std::fs::write(
        dir.join("manifests/eu-prod/settings.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: inference-settings\n  namespace: ml-serving\ndata:\n  batch: \"8\"\n",
    )
    .expect("write");
    dir
}

/// What the API server answers for an applied object: server-set metadata, the
/// last-applied-configuration annotation, defaulted fields, status.
fn as_live(desired: &Value, n: usize) -> Value {
    let mut live = desired.clone();
    let meta = live["metadata"].as_object_mut().expect("metadata");
    meta.insert("uid".into(), json!(format!("6c7f0a3e-0000-4000-8000-{n:012}")));
    meta.insert("resourceVersion".into(), json!(format!("{}", 1000 + n)));
    meta.insert("creationTimestamp".into(), json!("2026-11-30T09:00:00Z"));
    meta.insert("generation".into(), json!(1));
    let mut annotations = meta.get("annotations").cloned().unwrap_or(json!({}));
    annotations["kubectl.kubernetes.io/last-applied-configuration"] = json!(desired.to_string());
    meta.insert("annotations".into(), annotations);
    match desired["kind"].as_str() {
        Some("Deployment") => {
            live["spec"]["progressDeadlineSeconds"] = json!(600);
            live["spec"]["strategy"] =
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}});
            let spec = &mut live["spec"]["template"]["spec"];
            spec["dnsPolicy"] = json!("ClusterFirst");
            spec["restartPolicy"] = json!("Always");
            for c in spec["containers"].as_array_mut().expect("containers") {
                c["imagePullPolicy"] = json!("IfNotPresent");
                c["terminationMessagePath"] = json!("/dev/termination-log");
            }
            live["status"] = json!({"replicas": 1, "readyReplicas": 1});
        }
        Some("Service") => {
            live["spec"]["clusterIP"] = json!("10.96.12.7");
            live["spec"]["type"] = json!("ClusterIP");
            for p in live["spec"]["ports"].as_array_mut().expect("ports") {
                p["protocol"] = json!("TCP");
            }
        }
        Some("Namespace") => live["status"] = json!({"phase": "Active"}),
        _ => {}
    }
    live
}

fn eu_prod_live(estate: &Path) -> Value {
    let mut items = Vec::new();
    for file in ["namespace.yaml", "inference.yaml", "training.yaml"] {
        let path = estate.join("manifests/eu-prod").join(file);
        let (objects, diags) =
            assay_estate::manifest::parse_objects(file, &std::fs::read_to_string(path).expect("read"));
        assert!(diags.is_empty(), "{diags:?}");
        for o in objects {
            let n = items.len();
            items.push(as_live(&o.value, n));
        }
    }
    // Someone patched the inference image by hand.
    let inference = items
        .iter_mut()
        .find(|i| i["kind"] == "Deployment" && i["metadata"]["name"] == "llm-inference")
        .expect("deployment");
    inference["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!("registry.example.com/llm-server:2.4.2-hotfix");
    // A debugging pod made by hand, labelled as the estate's, with a floating tag.
    items.push(
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "debug-shell", "namespace": "ml-serving",
        "uid": "6c7f0a3e-0000-4000-8000-999999999999", "labels": {"assay.dev/estate": "acme-ai-platform"}},
        "spec": {"containers": [{"name": "sh", "image": "busybox:latest"}]}, "status": {"phase": "Running"}}),
    );
    // A pod its ReplicaSet made: not the estate's to declare.
    items.push(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "llm-inference-7d9f-x2", "namespace": "ml-serving",
        "labels": {"app": "llm-inference"}, "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "llm-inference-7d9f", "uid": "1", "controller": true}]},
        "spec": {"containers": [{"name": "server", "image": "registry.example.com/llm-server:2.4.2-hotfix"}]}}));
    json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items})
}

#[test]
fn drift_names_the_edited_the_missing_and_the_extra_and_the_audit_the_violation() {
    let work = tempfile::tempdir().expect("tempdir");
    let estate = estate(work.path());
    let live = work.path().join("eu-prod.json");
    std::fs::write(&live, serde_json::to_string_pretty(&eu_prod_live(&estate)).expect("json")).expect("write");
    let live_arg = format!("eu-prod={}", live.display());
    let estate_arg = estate.to_str().expect("path");

    let out = assay(work.path(), &["drift", estate_arg, "--live", &live_arg, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "drift exits 1: {}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(report["schema"], "assay.dev/drift/v1");
    let cluster = &report["clusters"][0];
    assert_eq!(cluster["cluster"], "eu-prod");
    let not_in_sync: Vec<(String, String)> = cluster["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .filter(|o| o["status"] != "in_sync")
        .map(|o| {
            (
                format!("{} {}", o["kind"].as_str().unwrap_or(""), o["name"].as_str().unwrap_or("")),
                o["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        not_in_sync,
        vec![
            ("ConfigMap inference-settings".to_string(), "missing".to_string()),
            ("Pod debug-shell".to_string(), "extra".to_string()),
            ("Deployment llm-inference".to_string(), "drifted".to_string()),
        ]
    );
    let deployment =
        cluster["objects"].as_array().expect("objects").iter().find(|o| o["status"] == "drifted").expect("drifted");
    assert_eq!(
        deployment["diffs"],
        json!([{
            "path": "spec.template.spec.containers[name=server].image",
            "desired": "registry.example.com/llm-server:2.4.1",
            "live": "registry.example.com/llm-server:2.4.2-hotfix",
            "change": "changed"
        }])
    );
    assert_eq!(deployment["file"], "manifests/eu-prod/inference.yaml");
    assert!(cluster.get("audit").is_none());

    // The audit: the estate's constraints on what is live, the hand-made pod included.
    let out = assay(work.path(), &["drift", estate_arg, "--live", &live_arg, "--audit", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    let audit = report["clusters"][0]["audit"].as_array().expect("audit").clone();
    let debug: Vec<&Value> = audit.iter().filter(|f| f["object"] == "Pod/ml-serving/debug-shell").collect();
    assert_eq!(debug.len(), 1, "{audit:#?}");
    assert_eq!(debug[0]["policy"], "AssayDisallowedTags/no-latest-images");
    assert_eq!(debug[0]["in_git"], false);

    // Table, Markdown and SARIF say the same.
    let table = stdout(&assay(work.path(), &["drift", estate_arg, "--live", &live_arg]));
    assert!(table.contains("drifted  apps/Deployment ml-serving/llm-inference"), "{table}");
    assert!(table.contains("spec.template.spec.containers[name=server].image: registry.example.com/llm-server:2.4.1 → registry.example.com/llm-server:2.4.2-hotfix"), "{table}");
    let markdown = stdout(&assay(work.path(), &["drift", estate_arg, "--live", &live_arg, "--format", "markdown"]));
    assert!(markdown.contains("| missing | `ConfigMap ml-serving/inference-settings` |"), "{markdown}");
    let sarif_file = work.path().join("drift.sarif");
    let sarif_arg = sarif_file.to_str().expect("path");
    let out = assay(
        work.path(),
        &["drift", estate_arg, "--live", &live_arg, "--audit", "--format", "sarif", "-o", sarif_arg],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    common::validate_sarif(&sarif_file);
    let sarif: Value = serde_json::from_slice(&std::fs::read(&sarif_file).expect("read")).expect("SARIF");
    let rules: Vec<&str> =
        sarif["runs"][0]["results"].as_array().expect("results").iter().filter_map(|r| r["ruleId"].as_str()).collect();
    assert_eq!(&rules[..3], ["drift/missing", "drift/extra", "drift/drifted"]);
    assert!(rules[3..].iter().all(|r| *r == "drift/audit") && rules.len() > 3, "{rules:?}");

    // In sync once the hand edit is undone, the ConfigMap applied and the pod deleted.
    let mut fixed = eu_prod_live(&estate);
    let items = fixed["items"].as_array_mut().expect("items");
    items.retain(|i| i["metadata"]["name"] != "debug-shell");
    for i in items.iter_mut() {
        if i["metadata"]["name"] == "llm-inference" && i["kind"] == "Deployment" {
            i["spec"]["template"]["spec"]["containers"][0]["image"] = json!("registry.example.com/llm-server:2.4.1");
        }
    }
    items.push(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "inference-settings", "namespace": "ml-serving", "uid": "u"}, "data": {"batch": "8"}}));
    std::fs::write(&live, serde_json::to_string(&fixed).expect("json")).expect("write");
    let out = assay(work.path(), &["drift", estate_arg, "--live", &live_arg]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
}

#[test]
fn unreadable_live_files_are_named_and_the_rest_is_compared() {
    let work = tempfile::tempdir().expect("tempdir");
    let estate = estate(work.path());
    let good = work.path().join("good.json");
    std::fs::write(&good, serde_json::to_string(&eu_prod_live(&estate)).expect("json")).expect("write");
    let bad = work.path().join("notes.yaml");
    std::fs::write(&bad, "shopping:\n  - milk\n").expect("write");
    let estate_arg = estate.to_str().expect("path");
    let out = assay(
        work.path(),
        &[
            "drift",
            estate_arg,
            "--live",
            &format!("eu-prod={}", good.display()),
            "--live",
            &format!("eu-prod={}", bad.display()),
            "--live",
            "eu-prod=absent.json",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    let errors: Vec<&str> =
        report["clusters"][0]["errors"].as_array().expect("errors").iter().filter_map(Value::as_str).collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].contains("notes.yaml:1") && errors[0].contains("not a Kubernetes-style object"), "{errors:?}");
    assert!(errors[1].starts_with("absent.json: "), "{errors:?}");
    assert_eq!(report["clusters"][0]["counts"]["drifted"], 1, "the readable file was still compared");
    // A cluster assay.yaml does not name is refused.
    let out = assay(work.path(), &["drift", estate_arg, "--live", "staging=x.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("assay.yaml has no cluster \"staging\""), "{}", stderr(&out));
}

#[test]
fn drift_reads_each_cluster_through_its_api_server() {
    use common::apiserver::{Cluster, kubeconfig, serve};
    let work = tempfile::tempdir().expect("tempdir");
    let estate = estate(work.path());
    // The API server answers with the same live state (objects carry no kind inside lists); RBAC
    // refuses secrets; pod lists page and their first continue token has expired.
    let live = eu_prod_live(&estate);
    let mut objects: Vec<Value> = live["items"].as_array().expect("items").clone();
    objects.push(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "batch-1", "namespace": "ml-serving"}, "spec": {"containers": [{"name": "b", "image": "registry.example.com/batch:1"}]}}));
    objects.push(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "batch-2", "namespace": "ml-serving"}, "spec": {"containers": [{"name": "b", "image": "registry.example.com/batch:1"}]}}));
    let cluster = Cluster {
        objects,
        forbidden: ["secrets".to_string()].into(),
        token: "reader-token".into(),
        ..Default::default()
    };
    let (port, state) = serve(cluster);
    let config = work.path().join("kubeconfig");
    std::fs::write(&config, kubeconfig(&[("eu-prod", port), ("us-prod", free_port())], "reader-token")).expect("write");
    let estate_arg = estate.to_str().expect("path");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_assay"))
            .args(args)
            .env("KUBECONFIG", &config)
            .current_dir(work.path())
            .output()
            .expect("assay")
    };

    let out = run(&["drift", estate_arg, "--cluster", "eu-prod", "--audit", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}{}", stdout(&out), stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    let c = &report["clusters"][0];
    assert_eq!(c["source"], "API server of kubeconfig context eu-prod");
    assert_eq!(
        (c["counts"]["drifted"].as_u64(), c["counts"]["missing"].as_u64(), c["counts"]["extra"].as_u64()),
        (Some(1), Some(1), Some(1)),
        "{c:#}"
    );
    assert!(c["errors"].as_array().is_none_or(Vec::is_empty), "secrets are not declared, so not listed: {c:#}");
    let audited: Vec<&str> =
        c["audit"].as_array().expect("audit").iter().filter_map(|f| f["object"].as_str()).collect();
    assert!(audited.contains(&"Pod/ml-serving/debug-shell"), "{audited:?}");
    // Pods were listed page by page (two per page, after one expired token), in the estate's namespace.
    let requests = state.lock().expect("state").requests.clone();
    assert!(requests.get("/v1/ml-serving/pods").copied().unwrap_or(0) >= 3, "{requests:?}");

    // A Secret in Git: RBAC refuses the list, which is named; the rest is still compared.
    std::fs::write(
        estate.join("manifests/eu-prod/secret.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: api-key\n  namespace: ml-serving\nstringData:\n  key: k\n",
    )
    .expect("write");
    let out = run(&["drift", estate_arg, "--cluster", "eu-prod", "--format", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    let errors: Vec<&str> =
        report["clusters"][0]["errors"].as_array().expect("errors").iter().filter_map(Value::as_str).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("cluster eu-prod: listing secrets (v1) in namespace ml-serving: secrets is forbidden"),
        "{errors:?}"
    );
    assert!(errors[0].contains("(403 Forbidden)"), "{errors:?}");
    assert_eq!(report["clusters"][0]["counts"]["drifted"], 1);

    // us-prod's server is unreachable: named; a wrong token is refused: named.
    let out = run(&["drift", estate_arg, "--cluster", "us-prod", "--format", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    let error = report["clusters"][0]["errors"][0].as_str().expect("an error").to_string();
    assert!(error.starts_with("cluster us-prod: API discovery failed"), "{error}");
    std::fs::write(&config, kubeconfig(&[("eu-prod", port)], "stolen")).expect("write");
    let out = run(&["drift", estate_arg, "--cluster", "eu-prod", "--format", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stdout(&out).contains("Unauthorized"), "{}", stdout(&out));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

#[test]
fn a_sync_attestation_is_signed_logged_and_verifies_offline() {
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    let estate = estate(dir);
    let live = dir.join("eu-prod.json");
    std::fs::write(&live, serde_json::to_string(&eu_prod_live(&estate)).expect("json")).expect("write");
    for args in [
        &["log", "keygen", "audit.example/platform", "--private", "k", "--public", "k.pub"][..],
        &["log", "init", "ledger", "--key", "k"],
    ] {
        let out = assay(dir, args);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let live_arg = format!("eu-prod={}", live.display());
    let estate_arg = estate.to_str().expect("path");
    let out = assay(
        dir,
        &[
            "drift",
            estate_arg,
            "--live",
            &live_arg,
            "--attest",
            "--ledger",
            "ledger",
            "--ledger-key",
            "k",
            "--attestation",
            "eu.intoto.jsonl",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "drift is still reported: {}", stderr(&out));
    assert!(stderr(&out).contains("sync attestation of cluster eu-prod recorded as entry 0"), "{}", stderr(&out));

    // The envelope verifies with the ledger's public key, in securesystemslib.
    let envelope_text = std::fs::read_to_string(dir.join("eu.intoto.jsonl")).expect("envelope");
    let envelope: Value = serde_json::from_str(envelope_text.trim()).expect("JSON");
    std::fs::write(dir.join("eu.intoto.json"), envelope_text.trim()).expect("write");
    let (ok, said) = common::verify_dsse(&dir.join("eu.intoto.json"), &dir.join("k.pub"));
    assert!(ok, "securesystemslib refused: {said}");
    let said: Value = serde_json::from_str(said.trim()).expect("json");
    assert_eq!(said["subject"], "cluster:eu-prod");
    assert_eq!(said["predicateType"], "https://assay.dev/attestation/sync/v1");
    use base64::Engine as _;
    let statement: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(envelope["payload"].as_str().expect("payload"))
            .expect("base64"),
    )
    .expect("statement");
    let predicate = &statement["predicate"];
    assert_eq!(predicate["estate"]["name"], "acme-ai-platform");
    assert_eq!(predicate["counts"]["drifted"], 1);
    let drifted = predicate["notInSync"]
        .as_array()
        .expect("notInSync")
        .iter()
        .find(|o| o["status"] == "drifted")
        .expect("drifted");
    assert_eq!(drifted["object"], "apps/Deployment ml-serving/llm-inference");
    assert_eq!(drifted["liveDigest"]["sha256"].as_str().map(str::len), Some(64));
    assert_eq!(drifted["fields"], json!(["spec.template.spec.containers[name=server].image"]));

    // The record is in the log; its receipt verifies offline, without the log.
    let shown = stdout(&assay(dir, &["log", "show", "ledger", "--json"]));
    let record: Value = serde_json::from_str(shown.lines().next().expect("an entry")).expect("json");
    assert_eq!(record["json"]["type"], "assay.dev/record/sync-attestation/v1");
    assert_eq!(record["json"]["observed_sha256"], statement["subject"][0]["digest"]["sha256"]);
    let entry = serde_json_canonicalizer::to_vec(&record["json"]).expect("canonical");
    std::fs::write(dir.join("entry.json"), entry).expect("write");
    assert_eq!(assay(dir, &["log", "prove", "ledger", "0", "-o", "sync.tlog-proof"]).status.code(), Some(0));
    std::fs::rename(dir.join("ledger"), dir.join("archived")).expect("move");
    let ok = assay(dir, &["log", "verify-receipt", "sync.tlog-proof", "--entry", "entry.json", "--key", "k.pub"]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert!(stdout(&ok).starts_with("ok: entry.json is entry 0 of audit.example/platform"), "{}", stdout(&ok));

    // --attest without a ledger is refused before anything is read.
    let out = assay(dir, &["drift", estate_arg, "--live", &live_arg, "--attest"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// What a server watching `eu-prod` needs: the estate (alerts sent to `receiver`), an API server
/// stand-in holding the cluster as it is (the hand edit, the missing ConfigMap, the pod), and a
/// kubeconfig for it.
struct Watched {
    estate: std::path::PathBuf,
    receiver: common::server::Receiver,
    api: common::apiserver::Shared,
    config: std::path::PathBuf,
}

fn watched(dir: &Path) -> Watched {
    use common::apiserver::{Cluster, kubeconfig, serve};
    let estate = estate(dir);
    let port = free_port();
    let receiver = common::server::Receiver::listen(port);
    let settings = std::fs::read_to_string(estate.join("assay.yaml")).expect("read");
    std::fs::write(
        estate.join("assay.yaml"),
        format!("{settings}\nactions:\n  alerts: [\"http://127.0.0.1:{port}/alerts\"]\n"),
    )
    .expect("write");
    let (api_port, api) = serve(Cluster {
        objects: eu_prod_live(&estate)["items"].as_array().expect("items").clone(),
        token: "reader-token".into(),
        ..Default::default()
    });
    let config = dir.join("kubeconfig");
    std::fs::write(&config, kubeconfig(&[("eu-prod", api_port)], "reader-token")).expect("write");
    Watched { estate, receiver, api, config }
}

/// The live `finetune-worker` Deployment after a hand edit of its replicas (to 9).
fn finetune_edited(estate: &Path) -> Value {
    let mut edited = eu_prod_live(estate)["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["kind"] == "Deployment" && i["metadata"]["name"] == "finetune-worker")
        .expect("deployment")
        .clone();
    edited["spec"]["replicas"] = json!(9);
    edited
}

#[test]
fn the_server_watches_its_cluster_alerts_each_change_once_and_records_it() {
    use common::apiserver::{change, event};
    use common::server::{Server, eventually, keyed_ledger};
    use std::time::Duration;
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    let Watched { estate, receiver, api, config } = watched(dir);
    keyed_ledger(dir);
    let args = [
        "--estate",
        "estate",
        "--data",
        "data",
        "--ledger",
        "ledger",
        "--ledger-key",
        "k",
        "--watch-cluster",
        "eu-prod",
        "--kube-context",
        "eu-prod",
        "--drift-resync",
        "1h",
    ];
    let server = Server::launch_with_env(dir, &args, &[("KUBECONFIG", config.as_path())]);
    let drift = |query: &str| -> Value {
        let (status, body) = server.json("GET", &format!("/v1/drift{query}"), &Value::Null);
        if status == 503 { Value::Null } else { body }
    };
    let first = eventually(Duration::from_secs(30), || {
        let d = drift("");
        (!d.is_null()).then_some(d)
    })
    .expect("a first comparison");
    let c = &first["clusters"][0];
    assert_eq!(
        (c["counts"]["drifted"].as_u64(), c["counts"]["missing"].as_u64(), c["counts"]["extra"].as_u64()),
        (Some(1), Some(1), Some(1)),
        "{c:#}"
    );
    assert!(c["audit"].as_array().expect("audit").iter().any(|f| f["object"] == "Pod/ml-serving/debug-shell"), "{c:#}");
    // Filters.
    let drifted = drift("?status=drifted&kind=Deployment");
    assert_eq!(drifted["clusters"][0]["objects"].as_array().map(Vec::len), Some(1), "{drifted:#}");
    assert_eq!(drift("?namespace=elsewhere")["clusters"][0]["objects"].as_array().map(Vec::len), Some(0));
    // One alert per object that is not in sync, and per violation; a signed attestation.
    let drift_alerts = || -> Vec<Value> {
        receiver
            .got
            .lock()
            .expect("got")
            .iter()
            .filter(|(_, v)| v["data"]["kind"] == "drift")
            .map(|(_, v)| v.clone())
            .collect()
    };
    eventually(Duration::from_secs(20), || (drift_alerts().len() >= 3).then_some(())).expect("alerts");
    // Delivery takes its time: count once nothing more arrives.
    std::thread::sleep(Duration::from_secs(3));
    let initial = drift_alerts().len();
    let subjects: std::collections::BTreeSet<String> =
        drift_alerts().iter().filter_map(|a| a["subject"].as_str().map(str::to_string)).collect();
    assert!(subjects.contains("apps/Deployment ml-serving/llm-inference"), "{subjects:?}");
    assert!(subjects.contains("ConfigMap ml-serving/inference-settings"), "{subjects:?}");
    assert!(subjects.contains("Pod ml-serving/debug-shell"), "{subjects:?}");
    assert!(first["attestation"]["payloadType"] == "application/vnd.in-toto+json", "{:#}", first["attestation"]);
    // The watches' first lists give back what was just read: that is not a change, and the
    // cluster is compared once, not again.
    let comparisons = || {
        let (status, text) = server.request("GET", "/metrics", None, b"");
        assert_eq!(status, 200);
        text.lines()
            .find_map(|l| l.strip_prefix("assay_drift_comparisons_total{cluster=\"eu-prod\"} "))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert_eq!(comparisons(), 1, "one comparison once the watches have listed what was read");

    // A second hand edit, over the watch: the same Deployment's replicas. One more alert? No:
    // it was drifting already; a record, not an alert. A bookmark changes nothing.
    let edited = finetune_edited(&estate);
    let watching =
        |plural: &str| api.lock().expect("api").requests.get(&format!("watch {plural}")).copied().unwrap_or(0);
    if eventually(Duration::from_secs(20), || (watching("deployments") > 0).then_some(())).is_none() {
        let requests = api.lock().expect("api").requests.clone();
        let (_, log) = server.stop();
        panic!("no watch of deployments: {requests:?}\n{log}");
    }
    change(&api, "deployments", "MODIFIED", edited.clone());
    event(
        &api,
        "deployments",
        json!({"type": "BOOKMARK", "object": {"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"resourceVersion": "48300"}}}),
    );
    let now = eventually(Duration::from_secs(20), || {
        let d = drift("?status=drifted");
        (d["clusters"][0]["objects"].as_array().map(Vec::len) == Some(2)).then_some(d)
    })
    .expect("the watched change is seen");
    let finetune = now["clusters"][0]["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .find(|o| o["name"] == "finetune-worker")
        .expect("finetune")
        .clone();
    assert_eq!(finetune["diffs"][0]["path"], "spec.replicas");
    let after = eventually(Duration::from_secs(10), || {
        let a = drift_alerts();
        (a.len() > initial).then_some(a)
    })
    .expect("an alert for the newly drifting Deployment");
    assert_eq!(after.last().expect("alert")["subject"], "apps/Deployment ml-serving/finetune-worker");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(drift_alerts().len(), initial + 1, "a resync or a bookmark is not news");

    // The watch expires (410 Gone): kube relists, and the comparison holds.
    let relists = now["relists"].as_u64().unwrap_or(0);
    event(
        &api,
        "pods",
        json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": "too old resource version: 1 (48213)", "reason": "Expired", "code": 410}}),
    );
    let relisted = eventually(Duration::from_secs(30), || {
        let d = drift("");
        (d["relists"].as_u64().unwrap_or(0) > relists).then_some(d)
    })
    .expect("a relist after 410 Gone");
    assert_eq!(relisted["clusters"][0]["counts"]["drifted"], 2);

    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");

    // A restart remembers what was alerted (the data directory keeps the standings).
    let alerted = drift_alerts().len();
    let server = Server::launch_with_env(dir, &args, &[("KUBECONFIG", config.as_path())]);
    eventually(Duration::from_secs(30), || {
        let (status, _) = server.json("GET", "/v1/drift", &Value::Null);
        (status == 200).then_some(())
    })
    .expect("served again");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(drift_alerts().len(), alerted, "nothing new after a restart");
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");

    let shown = stdout(&assay(dir, &["log", "show", "ledger", "--json"]));
    let kinds: Vec<String> = shown
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["json"]["type"].as_str().map(str::to_string))
        .collect();
    assert!(kinds.iter().any(|k| k == "assay.dev/record/sync-attestation/v1"), "{kinds:?}");
    let observations = kinds.iter().filter(|k| *k == "assay.dev/record/drift-observation/v1").count();
    assert!(observations >= 4, "{kinds:?}");
}

#[test]
fn ignore_differences_in_assay_yaml_leave_fields_out_and_broken_rules_are_named() {
    let work = tempfile::tempdir().expect("tempdir");
    let estate = estate(work.path());
    let settings = std::fs::read_to_string(estate.join("assay.yaml")).expect("read");
    std::fs::write(
        estate.join("assay.yaml"),
        format!(
            "{settings}\ndrift:\n  ignoreDifferences:\n    - group: apps\n      kind: Deployment\n      name: llm-inference\n      jqPathExpressions: ['.spec.template.spec.containers[] | select(.name == \"server\") | .image']\n    - kind: Pod\n      jqPathExpressions: ['.spec[']\n"
        ),
    )
    .expect("write");
    let live = work.path().join("eu-prod.json");
    std::fs::write(&live, serde_json::to_string(&eu_prod_live(&estate)).expect("json")).expect("write");
    let out = assay(
        work.path(),
        &[
            "drift",
            estate.to_str().expect("path"),
            "--live",
            &format!("eu-prod={}", live.display()),
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("assay.yaml: drift.ignoreDifferences[1].jqPathExpressions[0]: \".spec[\" does not parse as jq"),
        "{}",
        stderr(&out)
    );
    let report: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    let counts = &report["clusters"][0]["counts"];
    assert_eq!(
        (counts["drifted"].as_u64(), counts["missing"].as_u64(), counts["extra"].as_u64()),
        (Some(0), Some(1), Some(1)),
        "{counts}"
    );
}

#[test]
fn two_replicas_watching_one_cluster_alert_each_drift_once_and_the_survivor_takes_over() {
    use assay_store::testing::TempPostgres;
    use common::apiserver::change;
    use common::server::{Server, eventually};
    use std::time::Duration;
    let pg = TempPostgres::start();
    let url = pg.database("assay");
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    let Watched { estate, receiver, api, config } = watched(dir);
    let replica = |data: &str| {
        let args = [
            "--estate",
            "estate",
            "--data",
            data,
            "--database",
            &url,
            "--watch-cluster",
            "eu-prod",
            "--kube-context",
            "eu-prod",
            "--drift-resync",
            "1h",
        ];
        Server::launch_with_env(dir, &args, &[("KUBECONFIG", config.as_path())])
    };
    let servers = [replica("a"), replica("b")];
    // What each alert says (its data names the object, status and details, no time): the same
    // alert from two replicas would be the same text twice.
    let drift_alerts = || -> Vec<String> {
        receiver
            .got
            .lock()
            .expect("got")
            .iter()
            .filter(|(_, v)| v["data"]["kind"] == "drift")
            .map(|(_, v)| v["data"].to_string())
            .collect()
    };
    let distinct = |alerts: &[String]| alerts.iter().collect::<std::collections::BTreeSet<_>>().len();
    eventually(Duration::from_secs(30), || (drift_alerts().len() >= 3).then_some(())).expect("drift alerts");
    std::thread::sleep(Duration::from_secs(4));
    let first = drift_alerts();
    assert_eq!(distinct(&first), first.len(), "each alerted once, not once per replica: {first:#?}");
    assert!(
        first.iter().any(|a| a.contains("debug-shell")) && first.iter().any(|a| a.contains("llm-inference")),
        "{first:#?}"
    );
    let leader = |s: &Server| s.json("GET", "/v1/status", &Value::Null).1["drift_leader"].clone();
    let flags: Vec<Value> = servers.iter().map(leader).collect();
    assert_eq!(flags.iter().filter(|f| **f == json!(true)).count(), 1, "{flags:?}");
    let [a, b] = servers;
    let (mut dead, survivor) = if flags[0] == json!(true) { (a, b) } else { (b, a) };
    dead.child.kill().expect("SIGKILL");
    dead.child.wait().expect("wait");
    eventually(Duration::from_secs(20), || (leader(&survivor) == json!(true)).then_some(()))
        .unwrap_or_else(|| panic!("the survivor takes over the watch\n{}", survivor.log()));
    // A new hand edit: alerted once, by the survivor, which does not alert again what the
    // dead replica alerted.
    let edited = finetune_edited(&estate);
    change(&api, "deployments", "MODIFIED", edited);
    eventually(Duration::from_secs(30), || (drift_alerts().len() > first.len()).then_some(()))
        .unwrap_or_else(|| panic!("the survivor alerts the new drift\n{}", survivor.log()));
    std::thread::sleep(Duration::from_secs(4));
    let all = drift_alerts();
    assert_eq!(all.len(), first.len() + 1, "one new alert, and nothing alerted again: {all:#?}");
    let new = all.last().expect("the new alert");
    assert!(new.contains("finetune-worker") && new.contains("\"drifted\""), "{new}");
    let (code, log) = survivor.stop();
    assert_eq!(code, Some(0), "{log}");
}
