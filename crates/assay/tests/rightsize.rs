//! `assay cost rightsize` against a real Prometheus loaded with fourteen days of realistic use
//! (daily cycles), backfilled with promtool: a workload using a fifth of its CPU request, one
//! whose memory peaks near its limit (not cut), an idle GPU Deployment and a busy one, a
//! workload with two days of data (low confidence), one with none (named); `--write` edits
//! exactly the right lines and `assay check` then shows the saving as the change's delta. And
//! the failures: a bad metric name, Prometheus gone.

mod common;

use common::prometheus::{self, OpenMetrics};
use common::{Repo, assay, stderr, stdout};
use serde_json::Value;

const DAY: i64 = 86_400;
const STEP: i64 = 300;
/// The window's end: 2026-11-15T00:00:00Z.
const END: i64 = 1_763_164_800;
const AT: &str = "2025-11-15T00:00:00Z";
const MIB: f64 = 1_048_576.0;

const SETTINGS: &str = "currency: USD\nclusters:\n  - {name: eu, region: eu-west-1, paths: [\"manifests/**\"]}\n";
const PRICES: &str = "apiVersion: assay.dev/v1alpha1\nkind: PriceCatalog\nmetadata: {name: p}\nspec:\n  regions:\n    eu-west-1:\n      vcpuHour: 0.048\n      memoryGiBHour: 0.0065\n      gpuHour: {nvidia-a100: 4.10, nvidia-l4: 0.85, default: 1.20}\n";

const API: &str = "# The public API: sized by hand for launch day.\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n  namespace: ml\nspec:\n  replicas: 2\n  template:\n    spec:\n      containers:\n        - name: server\n          image: registry.example.com/api:1.4   # pinned\n          resources:\n            requests:\n              cpu: \"1\"\n              memory: 2Gi\n            limits:\n              memory: 4Gi\n";
const CACHE: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: cache, namespace: ml}\nspec:\n  replicas: 1\n  template:\n    spec:\n      containers:\n        - {name: redis, image: redis:7, resources: {requests: {cpu: 500m, memory: 1Gi}, limits: {memory: 1Gi}}}\n";
const GPUS: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: llm-idle, namespace: ml}\nspec:\n  replicas: 2\n  template:\n    spec:\n      nodeSelector: {nvidia.com/gpu.product: nvidia-a100}\n      containers:\n        - {name: vllm, image: vllm:0.6, resources: {requests: {cpu: \"4\", memory: 32Gi, nvidia.com/gpu: 1}}}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: llm-busy, namespace: ml}\nspec:\n  replicas: 1\n  template:\n    spec:\n      nodeSelector: {nvidia.com/gpu.product: nvidia-a100}\n      containers:\n        - {name: vllm, image: vllm:0.6, resources: {requests: {cpu: \"4\", memory: 32Gi, nvidia.com/gpu: 1}}}\n";
const NEW: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: new-svc, namespace: web}\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          resources:\n            requests: {cpu: \"2\", memory: 2Gi}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: ghost, namespace: web}\nspec:\n  template:\n    spec:\n      containers: [{name: app, resources: {requests: {cpu: 100m}}}]\n";

/// A daily cycle between 0 and 1, peaking mid-afternoon.
fn cycle(t: i64) -> f64 {
    let hour = (t % DAY) as f64 / 3600.0;
    0.5 - 0.5 * ((hour - 3.0) / 24.0 * std::f64::consts::TAU).cos()
}

/// A container's CPU counter and memory gauge from `cpu(t)` cores and `memory(t)` bytes over
/// `days` days up to the end.
fn container(
    om: &mut OpenMetrics,
    ns: &str,
    pod: &str,
    name: &str,
    days: i64,
    cpu: impl Fn(i64) -> f64,
    memory: impl Fn(i64) -> f64,
) {
    let labels = format!("namespace=\"{ns}\",pod=\"{pod}\",container=\"{name}\"");
    let start = END - days * DAY;
    let mut used = 0.0;
    for t in (start..=END).step_by(STEP as usize) {
        om.sample("container_cpu_usage_seconds_total", "counter", &labels, used, t);
        used += cpu(t) * STEP as f64;
    }
    for t in (start..=END).step_by(STEP as usize) {
        om.sample("container_memory_working_set_bytes", "gauge", &labels, memory(t).round(), t);
    }
}

fn gpu(om: &mut OpenMetrics, pod: &str, utilisation: impl Fn(i64) -> f64, memory_mib: f64) {
    let labels = format!("namespace=\"ml\",pod=\"{pod}\",container=\"vllm\",gpu=\"0\"");
    for t in (END - 14 * DAY..=END).step_by(STEP as usize) {
        om.sample("DCGM_FI_DEV_GPU_UTIL", "gauge", &labels, utilisation(t).round(), t);
    }
    for t in (END - 14 * DAY..=END).step_by(STEP as usize) {
        om.sample("DCGM_FI_DEV_FB_USED", "gauge", &labels, memory_mib, t);
    }
}

fn usage() -> String {
    let mut om = OpenMetrics::default();
    // api: two replicas each using 0.10–0.20 of the 1 core they request; memory 500–600 MiB.
    for pod in ["api-5d8f7c9b4-k2x9p", "api-5d8f7c9b4-q7w3z"] {
        container(&mut om, "ml", pod, "server", 14, |t| 0.10 + 0.10 * cycle(t), |t| (500.0 + 100.0 * cycle(t)) * MIB);
    }
    // cache: memory at 0.95 of its 1 GiB limit at the peak; CPU 0.34 of 0.5 (within 10%).
    container(&mut om, "ml", "cache-7c6b5d4f8-abcde", "redis", 14, |_| 0.34, |t| (600.0 + 372.8 * cycle(t)) * MIB);
    // The GPU Deployments.
    for pod in ["llm-idle-6f5d4c3b2-aaaaa", "llm-idle-6f5d4c3b2-bbbbb"] {
        container(&mut om, "ml", pod, "vllm", 14, |_| 0.5, |_| 20_000.0 * MIB);
        gpu(&mut om, pod, |t| if (t / STEP) % 50 == 0 { 35.0 } else { 1.0 }, 10_240.0);
    }
    container(&mut om, "ml", "llm-busy-5b4c3d2e1-ccccc", "vllm", 14, |_| 3.0, |_| 28_000.0 * MIB);
    gpu(&mut om, "llm-busy-5b4c3d2e1-ccccc", |t| 60.0 + 30.0 * cycle(t), 70_000.0);
    // new-svc: two days of data only.
    container(&mut om, "web", "new-svc-8d7c6b5a4-zzzzz", "app", 2, |_| 0.2, |_| 300.0 * MIB);
    om.text()
}

fn estate(repo: &Repo) {
    repo.write("assay.yaml", SETTINGS);
    repo.write("pricing/p.yaml", PRICES);
    repo.write("manifests/api.yaml", API);
    repo.write("manifests/cache.yaml", CACHE);
    repo.write("manifests/gpus.yaml", GPUS);
    repo.write("manifests/web.yaml", NEW);
}

fn rightsize(repo: &Repo, url: &str, extra: &[&str]) -> (Value, String) {
    let mut args = vec!["cost", "rightsize", ".", "--prometheus", url, "--at", AT, "--format", "json"];
    args.extend_from_slice(extra);
    let out = assay(repo.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)));
    (v, stderr(&out))
}

fn workload<'a>(v: &'a Value, object: &str) -> &'a Value {
    v["workloads"].as_array().and_then(|a| a.iter().find(|w| w["object"] == object)).unwrap_or(&Value::Null)
}

#[test]
fn recommendations_idle_gpus_and_edits_come_out_as_designed() {
    let p = prometheus::start(&usage());
    let repo = Repo::new();
    estate(&repo);
    repo.commit("the estate", None);
    let (v, _) = rightsize(&repo, &p.url, &[]);
    assert_eq!(v["step_seconds"], 300);
    // One query per metric and namespace: ml (5 with the GPU metrics), web (3).
    assert_eq!(v["queries"], 8, "{v:#}");

    // api: p95 of 0.10–0.20 cores is just under 0.2 → ÷ 0.7 ≈ 0.28; memory max 600 MiB ÷ 0.7.
    let api = workload(&v, "Deployment.apps/ml/api");
    let server = &api["containers"][0];
    assert_eq!(server["confidence"], "high", "{v:#}");
    assert_eq!(server["pods"], 2);
    let cpu = server["cpu"]["recommended"].as_f64().unwrap_or(0.0);
    assert!((0.26..=0.29).contains(&cpu), "{server:#}");
    assert_eq!(server["set"]["memory"], "858Mi", "{server:#}");
    assert_eq!(server["set"]["cpu"], format!("{}m", (cpu * 1000.0).round()));
    // The saving, by hand: 2 pods × 730 h × (CPU and memory given back × their prices).
    let memory_gib = 858.0 / 1024.0;
    let saving = 2.0 * 730.0 * ((1.0 - cpu) * 0.048 + (2.0 - memory_gib) * 0.0065);
    assert!((api["monthly_saving"].as_f64().unwrap_or(0.0) - saving).abs() < 1e-6, "{api:#} vs {saving}");

    // cache: memory peaks at 95% of its limit: not cut, and said why; CPU within 10%: left alone.
    let redis = &workload(&v, "Deployment.apps/ml/cache")["containers"][0];
    assert_eq!(redis["set"], serde_json::json!({}), "{redis:#}");
    assert!(redis["memory"]["recommended"].as_f64() == Some(1024.0 * MIB), "{redis:#}");
    assert!(redis["notes"][0].as_str().unwrap_or("").contains("95% of its limit"), "{redis:#}");

    // new-svc: two days of fourteen → low confidence; ghost: named, no samples.
    assert_eq!(workload(&v, "Deployment.apps/web/new-svc")["containers"][0]["confidence"], "low");
    let problems = v["problems"].to_string();
    assert!(problems.contains("Deployment.apps/web/ghost (manifests/web.yaml:"), "{problems}");

    // Idle GPUs: llm-idle (1% but for a spike every 50 samples), not llm-busy.
    let idle = v["idle_gpus"].as_array().cloned().unwrap_or_default();
    assert_eq!(idle.len(), 1, "{idle:#?}");
    assert_eq!(idle[0]["object"], "Deployment.apps/ml/llm-idle");
    assert!((idle[0]["idle_share"].as_f64().unwrap_or(0.0) - 0.98).abs() < 0.01, "{:#}", idle[0]);
    let gpu_month = 2.0 * 730.0 * 4.10;
    assert!((idle[0]["monthly_gpu_cost"].as_f64().unwrap_or(0.0) - gpu_month).abs() < 1e-6, "{:#}", idle[0]);
    // 10 GiB of memory fits an L4 (24 GiB), which costs 3.25 an hour less.
    assert_eq!(idle[0]["cheaper_type"][0], "nvidia-l4", "{:#}", idle[0]);
    assert!((idle[0]["cheaper_type"][1].as_f64().unwrap_or(0.0) - 2.0 * 730.0 * 3.25).abs() < 1e-6);

    // The Markdown for a pull request names the saving and the idle GPU.
    let md =
        assay(repo.path(), &["cost", "rightsize", ".", "--prometheus", &p.url, "--at", AT, "--format", "markdown"]);
    let md = stdout(&md);
    assert!(md.starts_with("### Rightsizing: "), "{md}");
    assert!(md.contains("| `Deployment.apps/ml/api`") && md.contains("**Idle GPUs**"), "{md}");

    // --write: exactly the two request lines of api change; the low-confidence one is left.
    let (_, said) = rightsize(&repo, &p.url, &["--write"]);
    assert!(said.contains("manifests/api.yaml: 2 request(s) rewritten"), "{said}");
    let edited = std::fs::read_to_string(repo.path().join("manifests/api.yaml")).expect("read");
    let changed: Vec<(&str, &str)> = API.lines().zip(edited.lines()).filter(|(a, b)| a != b).collect();
    let cpu_text = server["set"]["cpu"].as_str().unwrap_or("");
    assert_eq!(
        changed,
        vec![
            ("              cpu: \"1\"", format!("              cpu: \"{cpu_text}\"").as_str()),
            ("              memory: 2Gi", "              memory: 858Mi"),
        ],
        "{edited}"
    );
    assert_eq!(API.lines().count(), edited.lines().count());
    // cache (nothing to change) and web (low confidence; no samples) are left as they were.
    for file in ["manifests/cache.yaml", "manifests/web.yaml"] {
        let now = std::fs::read_to_string(repo.path().join(file)).expect("read");
        assert_eq!(now, if file.ends_with("cache.yaml") { CACHE } else { NEW }, "{file} was left as it was");
    }
    // The GPU Deployments' requests were rewritten too (high confidence); the edits re-parse,
    // and `assay check` shows the savings as the change's delta.
    let total = v["monthly_saving"].as_f64().unwrap_or(0.0);
    assert!(total > saving, "{v:#}");
    repo.commit("rightsize", None);
    let out = assay(repo.path(), &["check", ".", "--base", "HEAD~1", "--rev", "HEAD", "--format", "json"]);
    let check: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
    let delta = check["cost"]["delta"].as_f64().unwrap_or(0.0);
    assert!((delta + total).abs() < 1e-6, "delta {delta}, saving {total}: {:#}", check["cost"]);
}

#[test]
fn failures_are_named_and_the_rest_is_still_computed() {
    let p = prometheus::start(&usage());
    let repo = Repo::new();
    estate(&repo);
    // A platform that relabels: a metric name that does not exist here; GPU metrics missing.
    repo.write(
        "assay.yaml",
        &format!("{SETTINGS}rightsizing:\n  metrics: {{memory: node_memory_bytes, gpuUtilisation: DCGM_NOT_HERE}}\n"),
    );
    let (v, _) = rightsize(&repo, &p.url, &[]);
    let api = &workload(&v, "Deployment.apps/ml/api")["containers"][0];
    assert!(api["cpu"]["recommended"].as_f64().is_some() && api["memory"].is_null(), "{api:#}");
    let problems = v["problems"].to_string();
    assert!(problems.contains("no DCGM_NOT_HERE samples"), "{problems}");
    // A query Prometheus refuses is named with its query.
    repo.write("assay.yaml", &format!("{SETTINGS}rightsizing:\n  metrics: {{requests: \"bad{{\"}}\n"));
    let (v, _) = rightsize(&repo, &p.url, &[]);
    let problems = v["problems"].to_string();
    assert!(problems.contains("namespace ml: requests: query") && problems.contains("bad_data"), "{problems}");
    assert!(workload(&v, "Deployment.apps/ml/api")["containers"][0]["cpu"].is_object(), "the rest was still computed");
    // Prometheus gone: named once, nothing more asked, the command still answers.
    let url = p.url.clone();
    drop(p);
    let (v, _) = rightsize(&repo, &url, &[]);
    assert_eq!(v["queries"], 1, "{v:#}");
    assert!(v["problems"][0].as_str().unwrap_or("").starts_with("Prometheus cannot be reached"), "{v:#}");
}

#[test]
fn a_change_that_raises_requests_far_above_use_is_warned_with_the_numbers() {
    let p = prometheus::start(&usage());
    let repo = Repo::new();
    estate(&repo);
    repo.commit("the estate", None);
    // The change: api asks for 4 cores instead of 1, and its memory is left as it was.
    repo.write("manifests/api.yaml", &API.replace("cpu: \"1\"", "cpu: \"4\""));
    repo.commit("more CPU for api", None);
    let args = ["check", ".", "--base", "HEAD~1", "--rev", "HEAD", "--format", "json", "--prometheus", &p.url];
    let out = assay(repo.path(), &[&args[..], &["--usage-end", AT]].concat());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
    let warnings: Vec<&Value> = v["diagnostics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["message"].as_str().is_some_and(|m| m.contains("would do")))
        .collect();
    // Only the raised request: not api's memory (unchanged), not llm-idle's 4 cores (unchanged,
    // though far above its use too).
    assert_eq!(warnings.len(), 1, "{:#}", v["diagnostics"]);
    let w = warnings[0];
    assert_eq!(w["path"], "manifests/api.yaml");
    assert_eq!(w["line"], 2, "the document starts after the file's comment");
    let message = w["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with("Deployment.apps/ml/api container server: requests cpu 4 (was 1) but used ")
            && message.contains("at p95 over the last 14 days"),
        "{message}"
    );
    assert_eq!(w["severity"], "warning");
    // A warning: the check still passes.
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

/// bcrypt (cost 10) of `open-sesame`, as Prometheus's web configuration wants it.
const PASSWORD_HASH: &str = "$2b$10$./.10/M7bbPCpfde/5EP8evt/RVXP9rYkvqir3AyWa6j.oCHutuqi";

#[test]
fn a_prometheus_behind_tls_and_basic_authentication_is_read_with_the_credentials_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    std::fs::write(dir.path().join("tls.crt"), cert.cert.pem()).expect("write");
    std::fs::write(dir.path().join("tls.key"), cert.signing_key.serialize_pem()).expect("write");
    let web = format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\nbasic_auth_users:\n  assay: {PASSWORD_HASH}\n",
        dir.path().join("tls.crt").display(),
        dir.path().join("tls.key").display()
    );
    let om = dir.path().join("usage.om");
    std::fs::write(&om, usage()).expect("write");
    let ca = cert.cert.pem().into_bytes();
    // Ready once an authenticated query over TLS answers.
    let ready = |url: &str| {
        assay_cost::prometheus::Client::new(assay_cost::prometheus::Endpoint {
            url: url.to_string(),
            basic: Some(("assay".into(), "open-sesame".into())),
            ca_pem: Some(ca.clone()),
            ..Default::default()
        })
        .is_ok_and(|c| c.query_range("vector(1)", END, END, 60).is_ok())
    };
    let p = prometheus::start_with(dir, &om, Some(&web), "https", &ready);
    assert!(p.url.starts_with("https://localhost:"));

    let work = tempfile::tempdir().expect("tempdir");
    std::fs::write(work.path().join("ca.pem"), &ca).expect("write");
    std::fs::write(work.path().join("password"), "open-sesame\n").expect("write");
    std::fs::write(work.path().join("wrong"), "guess\n").expect("write");
    let repo = Repo::new();
    estate(&repo);
    let ca_file = work.path().join("ca.pem");
    let run = |password: &str, ca: bool| {
        let password = work.path().join(password);
        let mut args = vec![
            "--prometheus-user".to_string(),
            "assay".to_string(),
            "--prometheus-password-file".to_string(),
            password.display().to_string(),
        ];
        if ca {
            args.extend(["--prometheus-ca".to_string(), ca_file.display().to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        rightsize(&repo, &p.url, &args).0
    };
    // The right password and the CA: read as over plain HTTP.
    let v = run("password", true);
    assert_eq!(v["problems"].as_array().map(Vec::len), Some(1), "only the ghost: {:#}", v["problems"]);
    assert!(workload(&v, "Deployment.apps/ml/api")["containers"][0]["cpu"].is_object(), "{v:#}");
    // A wrong password: Prometheus's 401 is named with the query.
    let v = run("wrong", true);
    let problems = v["problems"].to_string();
    assert!(problems.contains("HTTP 401"), "{problems}");
    // Without the CA the certificate is not trusted: named once, nothing more asked.
    let v = run("password", false);
    assert_eq!(v["queries"], 1, "{v:#}");
    assert!(v["problems"][0].as_str().unwrap_or("").starts_with("Prometheus cannot be reached"), "{v:#}");
}
