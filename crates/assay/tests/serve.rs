//! `assay serve` through the real binary on loopback: the admission webhook, OPA's data API,
//! error answers, the ledger over HTTP, and every decision in the ledger after SIGTERM.

mod common;

use common::server::{Server, estate_copy, keyed_ledger};
use common::{assay, stderr, stdout};
use serde_json::{Value, json};

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "llm-inference",
            "namespace": "ml-serving",
            "labels": {"app": "llm-inference", "finops.example.com/cost-center": "CC-1042", "ai.example.com/model-type": "text"}
        },
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "llm-inference"}},
            "template": {
                "metadata": {"labels": {"app": "llm-inference"}},
                "spec": {"containers": [{
                    "name": "server",
                    "image": "registry.example.com/llm-server:2.4.1",
                    "resources": {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"cpu": "4", "memory": "16Gi"}}
                }]}
            }
        }
    })
}

fn review(uid: &str, object: Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "namespace": "ml-serving",
            "name": object["metadata"]["name"],
            "operation": "CREATE",
            "userInfo": {"username": "alice@example.com"},
            "object": object,
            "dryRun": false
        }
    })
}

#[test]
fn admission_reviews_are_allowed_denied_and_warned_and_every_decision_is_in_the_ledger() {
    let work = tempfile::tempdir().expect("tempdir");
    keyed_ledger(work.path());
    let server = Server::start(work.path(), &["--ledger", "ledger", "--ledger-key", "k"]);

    let (status, answer) = server.json("POST", "/v1/admission", &review("uid-allow", deployment()));
    assert_eq!(status, 200);
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(answer["response"]["uid"], "uid-allow");
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    assert!(answer["response"].get("status").is_none(), "{answer}");

    let mut unlabelled = deployment();
    unlabelled["metadata"]["labels"].as_object_mut().expect("labels").remove("finops.example.com/cost-center");
    let (status, answer) = server.json("POST", "/v1/admission", &review("uid-deny", unlabelled));
    assert_eq!(status, 200);
    assert_eq!(answer["response"]["uid"], "uid-deny");
    assert_eq!(answer["response"]["allowed"], false);
    assert_eq!(answer["response"]["status"]["code"], 403);
    let message = answer["response"]["status"]["message"].as_str().expect("message");
    assert!(
        message.contains("[data.k8s.labels.deny] Deployment must carry the finops.example.com/cost-center label"),
        "{message}"
    );

    let mut single = deployment();
    single["spec"]["replicas"] = json!(1);
    single["spec"]["template"]["spec"]["containers"][0]["image"] = json!("registry.example.com/llm-server:latest");
    let (_, answer) = server.json("POST", "/v1/admission", &review("uid-warn", single));
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    let warnings: Vec<&str> =
        answer["response"]["warnings"].as_array().expect("warnings").iter().filter_map(Value::as_str).collect();
    assert!(warnings.iter().any(|w| w.contains("single replica")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("latest")), "a warn constraint: {warnings:?}");

    // Another replica of the first: same spec, another name. Answered alike, from the memos.
    let mut replica = deployment();
    replica["metadata"]["name"] = json!("llm-inference-2");
    let (_, answer) = server.json("POST", "/v1/admission", &review("uid-replica", replica));
    assert_eq!(answer["response"]["uid"], "uid-replica");
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    assert!(answer["response"].get("warnings").is_none(), "{answer}");

    // The ledger is served read-only in the tlog-tiles layout while the server runs.
    let (status, checkpoint) = server.request("GET", "/ledger/checkpoint", None, b"");
    assert_eq!(status, 200);
    assert!(checkpoint.starts_with("decisions.example/log\n"), "{checkpoint}");
    let (status, _) = server.request("GET", "/ledger/../k", None, b"");
    assert_eq!(status, 404);
    // Metrics, in the Prometheus text format.
    let (status, metrics) = server.request("GET", "/metrics", None, b"");
    assert_eq!(status, 200);
    for line in [
        "assay_decisions_total{kind=\"admission\",result=\"allowed\"} 3",
        "assay_decisions_total{kind=\"admission\",result=\"denied\"} 1",
        "assay_http_request_duration_seconds_count{endpoint=\"/v1/admission\"} 4",
        "assay_http_requests_total{endpoint=\"/v1/admission\",method=\"POST\",status=\"200\"} 4",
        "assay_estate_activations_total 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "no {line:?} in\n{metrics}");
    }
    assert!(
        metrics.lines().any(|l| l.starts_with("assay_estate_active{revision=\"sha256:") && l.ends_with("\"} 1")),
        "{metrics}"
    );
    assert!(metrics.lines().any(|l| l.starts_with("assay_ledger_entries ")), "{metrics}");
    let gauge = |name: &str| -> u64 {
        let line = metrics.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{metrics}"));
        line.rsplit(' ').next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{line}"))
    };
    let constraints_per_request = gauge("assay_constraint_memo_misses") + gauge("assay_constraint_memo_hits");
    assert!(constraints_per_request >= 4, "{metrics}");
    assert!(gauge("assay_constraint_memo_hits") >= 1, "the replica's constraints came from the memos:\n{metrics}");
    // An auditor verifies the served ledger by URL, while the server runs.
    let url = format!("http://{}/ledger", server.addr);
    let remote = assay(work.path(), &["log", "verify", &url, "--key", "k.pub"]);
    assert_eq!(remote.status.code(), Some(0), "{}{}", stdout(&remote), stderr(&remote));
    assert!(stdout(&remote).starts_with("ok: decisions.example/log holds "), "{}", stdout(&remote));
    let wrong = assay(work.path(), &["log", "verify", &format!("http://{}/nothing", server.addr), "--key", "k.pub"]);
    assert_eq!(wrong.status.code(), Some(3), "{}", stderr(&wrong));

    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("every decision is in the ledger"), "{log}");

    let verify = assay(work.path(), &["log", "verify", "ledger", "--key", "k.pub"]);
    assert_eq!(verify.status.code(), Some(0), "{}", stdout(&verify));
    let shown = stdout(&assay(work.path(), &["log", "show", "ledger", "--json"]));
    let records: Vec<Value> =
        shown.lines().map(|l| serde_json::from_str::<Value>(l).expect("json")["json"].clone()).collect();
    assert_eq!(records[0]["type"], "assay.dev/record/activation/v1");
    let decisions: Vec<&Value> = records.iter().filter(|r| r["type"] == "assay.dev/record/decision/v2").collect();
    assert_eq!(decisions.len(), 4, "{records:?}");
    let uids: Vec<&Value> = decisions.iter().map(|d| &d["result"]["uid"]).collect();
    assert_eq!(uids, [&json!("uid-allow"), &json!("uid-deny"), &json!("uid-warn"), &json!("uid-replica")]);
    for d in &decisions {
        assert_eq!(d["path"], "admission");
        assert!(d["decision_id"].as_str().is_some_and(|id| id.len() == 36), "{d}");
        assert!(d["estate"]["revision"].as_str().is_some_and(|r| r.starts_with("sha256:")), "{d}");
        assert_eq!(d["input"]["kind"], "AdmissionReview");
        // By default a record names the request and holds the digest of the whole review,
        // never the object.
        assert!(d["input"]["request"]["uid"].is_string() && d["input"]["request"].get("object").is_none(), "{d}");
        assert!(d["input_sha256"].as_str().is_some_and(|h| h.len() == 64), "{d}");
    }
}

#[test]
fn the_residency_policy_is_served_through_opa_s_data_api() {
    let work = tempfile::tempdir().expect("tempdir");
    let server = Server::start(work.path(), &[]);
    let (status, health) = server.json("GET", "/health", &json!(null));
    assert_eq!((status, health), (200, json!({})));

    let store_eu =
        json!({"input": {"action": "store", "region": "eu-west-1", "data": {"classification": "GDPR_SENSITIVE"}}});
    let (status, answer) = server.json("POST", "/v1/data/authz/residency/allow", &store_eu);
    assert_eq!(status, 200);
    assert_eq!(answer["result"], true);
    assert!(answer["decision_id"].as_str().is_some_and(|id| id.len() == 36), "{answer}");

    let store_us =
        json!({"input": {"action": "store", "region": "us-east-1", "data": {"classification": "GDPR_SENSITIVE"}}});
    let (_, answer) = server.json("POST", "/v1/data/authz/residency/allow", &store_us);
    assert_eq!(answer["result"], false);
    let (_, answer) = server.json("POST", "/v1/data/authz/residency/reasons", &store_us);
    assert_eq!(answer["result"], json!(["GDPR_SENSITIVE data may not be stored in us-east-1"]));
    // The whole package, as OPA answers for a package path.
    let (_, answer) = server.json("POST", "/v1/data/authz/residency", &store_us);
    assert_eq!(answer["result"]["allow"], false, "{answer}");

    // Undefined: no result, still a decision id.
    let (status, answer) = server.json("POST", "/v1/data/authz/nothing/here", &store_us);
    assert_eq!(status, 200);
    assert!(answer.get("result").is_none() && answer.get("decision_id").is_some(), "{answer}");

    // GET with the input as a query parameter, and v0 with the bare input and value.
    let input = "%7B%22action%22%3A%22store%22%2C%22region%22%3A%22eu-west-1%22%2C%22data%22%3A%7B%22classification%22%3A%22PUBLIC%22%7D%7D";
    let (status, body) = server.request("GET", &format!("/v1/data/authz/residency/allow?input={input}"), None, b"");
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).expect("json")["result"], true);
    let (status, body) = server.request(
        "POST",
        "/v0/data/authz/residency/allow",
        Some("application/json"),
        store_eu["input"].to_string().as_bytes(),
    );
    assert_eq!((status, body.as_str()), (200, "true"));
    let (status, body) = server.request("POST", "/v0/data/authz/nothing", Some("application/json"), b"{}");
    assert_eq!(status, 404);
    assert!(body.contains("undefined_document"), "{body}");

    // A path segment cannot smuggle Rego into the query.
    let (status, answer) = server.json("POST", "/v1/data/authz/residency/allow%5B_%5D", &store_eu);
    assert_eq!(status, 200);
    assert!(answer.get("result").is_none(), "{answer}");
}

#[test]
fn malformed_requests_get_clear_answers_and_the_server_keeps_serving() {
    let work = tempfile::tempdir().expect("tempdir");
    let server = Server::start(work.path(), &["--max-body", "65536"]);
    let (status, body) = server.request("POST", "/v1/admission", Some("application/json"), b"{\"kind\": ");
    assert_eq!(status, 400);
    assert!(body.contains("not valid JSON") && body.contains("line 1 column"), "{body}");
    let (status, body) = server.request("POST", "/v1/admission", Some("text/plain"), b"{}");
    assert_eq!(status, 415);
    assert!(body.contains("text/plain"), "{body}");
    let (status, body) = server.request(
        "POST",
        "/v1/admission",
        Some("application/json"),
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
    );
    assert_eq!(status, 400);
    assert!(body.contains("the AdmissionReview has no request"), "{body}");
    let big = vec![b' '; 200_000];
    let (status, body) = server.request("POST", "/v1/data/authz/residency/allow", Some("application/json"), &big);
    assert_eq!(status, 413);
    assert!(body.contains("larger than 65536 bytes"), "{body}");
    let json = [("content-type", "application/json")];
    let (status, body) =
        server.send("POST", "/v1/data/authz/residency/allow", &[json[0], ("content-encoding", "br")], b"{}");
    assert_eq!(status, 415);
    assert!(body.contains(r#"content encoding \"br\" is not supported"#), "{body}");
    let (status, body) =
        server.send("POST", "/v1/data/authz/residency/allow", &[json[0], ("content-encoding", "gzip")], b"{}");
    assert_eq!(status, 400);
    assert!(body.contains("could not be decoded"), "{body}");
    let (status, body) = server.request("GET", "/v2/nothing", None, b"");
    assert_eq!(status, 404);
    assert!(body.contains("no endpoint GET /v2/nothing"), "{body}");
    // Still serving.
    let (status, answer) = server.json("POST", "/v1/admission", &review("after", deployment()));
    assert_eq!(status, 200);
    assert_eq!(answer["response"]["allowed"], true);
    let (status, _) = server.request("GET", "/health", None, b"");
    assert_eq!(status, 200);
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn a_dryrun_constraint_is_logged_but_neither_denies_nor_warns() {
    let work = tempfile::tempdir().expect("tempdir");
    let estate = estate_copy(work.path(), "");
    std::fs::write(
        estate.join("constraints/gpu-workloads-need-model-type.yaml"),
        "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: AssayRequiredLabels\nmetadata:\n  \
         name: deployments-need-tier\nspec:\n  enforcementAction: dryrun\n  match:\n    kinds:\n      \
         - apiGroups: [apps]\n        kinds: [Deployment]\n  parameters:\n    labels: [tier]\n",
    )
    .expect("write");
    keyed_ledger(work.path());
    // Memos off: every constraint is evaluated for every request.
    let server = Server::launch(
        work.path(),
        &[
            "--estate",
            estate.to_str().expect("path"),
            "--ledger",
            "ledger",
            "--ledger-key",
            "k",
            "--constraint-memo",
            "0",
        ],
    );
    for uid in ["uid-dryrun", "uid-dryrun-again"] {
        let (status, answer) = server.json("POST", "/v1/admission", &review(uid, deployment()));
        assert_eq!(status, 200);
        assert_eq!(answer["response"]["allowed"], true, "{answer}");
        assert!(answer["response"].get("warnings").is_none(), "a dry run does not warn: {answer}");
    }
    let (_, metrics) = server.request("GET", "/metrics", None, b"");
    assert!(metrics.lines().any(|l| l == "assay_constraint_memo_hits 0"), "{metrics}");
    assert!(metrics.lines().any(|l| l == "assay_constraint_memo_misses 0"), "{metrics}");
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");
    let shown = stdout(&assay(work.path(), &["log", "show", "ledger", "--json"]));
    let decision = shown
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("json")["json"].clone())
        .find(|r| r["type"] == "assay.dev/record/decision/v2")
        .expect("the decision");
    let findings = decision["result"]["findings"].as_array().expect("findings");
    assert!(
        findings.iter().any(|f| f["action"] == "dryrun" && f["message"].as_str().unwrap_or("").contains("tier")),
        "the dry run is in the log: {decision}"
    );
}

/// The server turns transparent huge pages off for itself (they kept about 30 MiB of a watching
/// server's memory resident; BENCHMARKS.md), where the kernel lets a process choose.
#[cfg(target_os = "linux")]
#[test]
fn the_server_runs_without_transparent_huge_pages() {
    let thp = |pid: u32| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("reading /proc/PID/status");
        status.lines().find_map(|l| l.strip_prefix("THP_enabled:").map(|v| v.trim().to_string()))
    };
    // Kernels before 5.0 do not say; a process inherits the flag, so this test's own must be on.
    if thp(std::process::id()).as_deref() != Some("1") {
        return eprintln!("this kernel does not report THP_enabled, or it is off for the test itself");
    }
    let work = tempfile::tempdir().expect("tempdir");
    let server = Server::start(work.path(), &[]);
    assert_eq!(thp(server.child.id()).as_deref(), Some("0"), "THP_enabled of the server");
}

/// What a burst of large requests freed is given back to the system while the server idles:
/// mimalloc purges only as it next frees a page, which an idle server would not do.
#[test]
fn an_idle_server_gives_back_what_a_burst_of_work_freed() {
    let rss_kib = |pid: u32| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("reading /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("VmRSS")
    };
    let work = tempfile::tempdir().expect("tempdir");
    let server = Server::start(work.path(), &[]);
    let pid = server.child.id();
    let (status, _) = server.json("POST", "/v1/admission", &review("warm", deployment()));
    assert_eq!(status, 200);
    std::thread::sleep(std::time::Duration::from_secs(3));
    let before = rss_kib(pid);
    // Twenty reviews of a Deployment with 3 MB of annotations in small values: each is parsed,
    // converted for Rego and evaluated, tens of megabytes that are freed once it is answered.
    let mut big = deployment();
    let annotations: serde_json::Map<String, Value> =
        (0..60_000).map(|i| (format!("example.com/note-{i}"), json!(format!("value {i} of the burst")))).collect();
    big["metadata"]["annotations"] = Value::Object(annotations);
    let mut peak = before;
    for i in 0..20 {
        let (status, _) = server.json("POST", "/v1/admission", &review(&format!("big-{i}"), big.clone()));
        assert_eq!(status, 200);
        peak = peak.max(rss_kib(pid));
    }
    assert!(peak > before + 20 * 1024, "the burst should take memory: {before} KiB before, {peak} KiB at most");
    std::thread::sleep(std::time::Duration::from_secs(6));
    let after = rss_kib(pid);
    assert!(
        after < before + (peak - before) / 3,
        "idle after the burst: {after} KiB resident, {before} KiB before it and {peak} KiB at most during it"
    );
}
