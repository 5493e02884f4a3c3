//! `assay serve` under load, the real binary driven over loopback by a load generator in this
//! process (see BENCHMARKS.md):
//!
//! - `admission`: AdmissionReview requests over TLS with a client certificate that the server
//!   verifies and authorizes for the admission routes, as the API server calls a webhook
//!   (`admission-no-client-cert`: server TLS only), at a fixed rate (open loop: latency is
//!   measured from when a request was due, so a slow server cannot hide queueing), against 20
//!   Gatekeeper library constraints plus the example estate's policies, decisions logged to a
//!   ledger. The pods are replicas of one spec (names differ), as a Deployment's are, so
//!   constraints answer from their memos; `admission-distinct` gives every pod a spec of its
//!   own, so every constraint is evaluated.
//! - `data`: OPA data API decisions per second for the example estate's residency policy, as
//!   many as the server answers (closed loop, keep-alive connections), decisions logged.
//! - `memory`: resident memory of a server that loaded the whole Gatekeeper library (every
//!   template and sample constraint), after start and after serving requests.
//! - `lineage`: OpenLineage events per second through `POST /api/v1/lineage` (closed loop,
//!   keep-alive connections), each durable in the graph before its answer, ledger on.
//! - `lineage-wrk`, `data-wrk`: the same with wrk as the load generator, when it is installed
//!   (`apt-get install wrk`).
//! - `ingest`: the same events through the file path, `assay lineage ingest FILE.jsonl`, without
//!   and with the ledger, and with the OpenLineage schemas when `../shared` has them.
//!
//! - `ui`: the web UI's pages in headless Chromium (as the browser test drives it), with a year
//!   of daily billing for 1,000 resources, a lineage graph of 10,000 nodes and a ledger: each
//!   page's load time on the first visit after the data changed and on later visits.
//!
//! `cargo bench -p assay --bench serve [-- admission admission-distinct admission-no-client-cert data data-wrk memory lineage lineage-wrk ingest ui]`;
//! `ASSAY_BENCH_RATE` (default 1000/s), `ASSAY_BENCH_SECONDS` (default 20),
//! `ASSAY_BENCH_DATABASE` (a PostgreSQL URL, for `lineage` and `lineage-wrk`),
//! `ASSAY_BENCH_EVENTS` (default 100000, for `ingest`), `ASSAY_BENCH_CLIENTS` (default 64, for
//! `lineage`).

#[allow(dead_code, unreachable_pub)]
#[path = "../tests/common/browser.rs"]
mod browser;
mod common;
#[allow(dead_code, unreachable_pub)]
#[path = "../tests/common/scale.rs"]
mod scale;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

fn library() -> Option<PathBuf> {
    let dir = root().join("../shared/conformance/gatekeeper-library/library/general");
    dir.is_dir().then_some(dir)
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(dir: &Path, args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_assay"))
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn assay serve");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let mut addr = None;
        let mut seen = String::new();
        for line in lines.by_ref() {
            let line = line.expect("line");
            seen.push_str(&line);
            seen.push('\n');
            if let Some(a) = line.split("listening on ").nth(1) {
                addr = Some(a.split("://").nth(1).expect("address").to_string());
                break;
            }
        }
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        Server { child, addr: addr.unwrap_or_else(|| panic!("the server did not start:\n{seen}")) }
    }

    fn port(&self) -> &str {
        self.addr.rsplit(':').next().expect("port")
    }

    /// VmRSS and VmHWM from /proc, in MiB.
    fn memory(&self) -> (f64, f64) {
        common::memory_mib(self.child.id()).expect("proc status")
    }

    /// CPU seconds the server has used (user + system), from /proc.
    fn cpu(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).expect("proc stat");
        let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
        let fields: Vec<&str> = after.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of stat; after the ")" they are 12th and 13th.
        let ticks: f64 =
            fields.get(11..13).map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()).unwrap_or(0.0);
        ticks / 100.0
    }

    fn stop(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

fn assay(dir: &Path, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_assay")).args(args).current_dir(dir).output().expect("assay");
    assert!(out.status.success(), "assay {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn ledger(dir: &Path) {
    assay(dir, &["log", "keygen", "bench.example/log", "--private", "k", "--public", "k.pub"]);
    assay(dir, &["log", "init", "ledger", "--key", "k"]);
}

fn copy_estate(dir: &Path) -> PathBuf {
    let estate = dir.join("estate");
    let ok = Command::new("cp").arg("-r").arg(root().join("examples/estate")).arg(&estate).status().expect("cp");
    assert!(ok.success());
    estate
}

/// Every sample constraint of the library, with its template, as (name, template, constraint)
/// YAML; the name starts with the template's directory.
fn library_pairs(library: &Path) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(library).expect("library").flatten().map(|e| e.path()).collect();
    dirs.sort();
    for dir in dirs {
        let Ok(template) = std::fs::read_to_string(dir.join("template.yaml")) else { continue };
        let Ok(samples) = std::fs::read_dir(dir.join("samples")) else { continue };
        let mut samples: Vec<_> = samples.flatten().map(|e| e.path()).collect();
        samples.sort();
        for sample in samples {
            if let Ok(constraint) = std::fs::read_to_string(sample.join("constraint.yaml")) {
                let name = format!(
                    "{}-{}",
                    dir.file_name().unwrap_or_default().to_string_lossy(),
                    sample.file_name().unwrap_or_default().to_string_lossy()
                );
                out.push((name, template.clone(), constraint));
            }
        }
    }
    out
}

/// Writes templates (each once) and constraints into the estate; returns how many
/// constraints and templates.
fn add_constraints(estate: &Path, pairs: &[(String, String, String)]) -> (usize, usize) {
    let dir = estate.join("constraints/library");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut templates = std::collections::BTreeMap::new();
    for (name, template, constraint) in pairs {
        templates.insert(template.clone(), name.clone());
        std::fs::write(dir.join(format!("{name}.yaml")), constraint).expect("write");
    }
    for (template, name) in &templates {
        std::fs::write(dir.join(format!("{name}-template.yaml")), template).expect("write");
    }
    (pairs.len(), templates.len())
}

/// The admission request for pod `i`: a replica of one Deployment (same spec, another name), or
/// with `distinct` a spec of its own (another memory limit), so no answer comes from a memo.
fn pod_review(i: u64) -> Vec<u8> {
    pod_review_of(i, false)
}

fn pod_review_of(i: u64, distinct: bool) -> Vec<u8> {
    let memory_limit = if distinct { format!("{}Mi", 16_384 + i) } else { "16Gi".to_string() };
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("bench-{i}"),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "ml-serving",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": format!("llm-inference-{i}"),
                    "namespace": "ml-serving",
                    "labels": {"app": "llm-inference", "owner": "ml-platform", "finops.example.com/cost-center": "CC-1042"},
                    "annotations": {"a8r.io/owner": "ml-platform"}
                },
                "spec": {
                    "automountServiceAccountToken": false,
                    "containers": [{
                        "name": "server",
                        "image": "registry.example.com/llm-server@sha256:4a1c4b21597c1b4415bdbecb28a3296c6b5e23ca4f9feeb599860a1dac6a0108",
                        "ports": [{"containerPort": 8080}],
                        "resources": {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"cpu": "4", "memory": memory_limit}},
                        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
                        "livenessProbe": {"httpGet": {"path": "/live", "port": 8080}}
                    }]
                }
            }
        }
    })
    .to_string()
    .into_bytes()
}

struct Pki {
    ca_der: Vec<u8>,
    /// The client certificate and key (PEM) the load generator presents.
    client: (String, String),
}

fn pki(dir: &Path) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("key");
    let cert =
        CertificateParams::new(vec!["localhost".to_string()]).expect("params").signed_by(&key, &issuer).expect("cert");
    std::fs::write(dir.join("tls.crt"), cert.pem()).expect("write");
    std::fs::write(dir.join("tls.key"), key.serialize_pem()).expect("write");
    std::fs::write(dir.join("clients.pem"), ca.pem()).expect("write");
    let client_key = KeyPair::generate().expect("key");
    let mut client = CertificateParams::new(Vec::<String>::new()).expect("params");
    client.distinguished_name.push(rcgen::DnType::CommonName, "kube-apiserver-admission");
    client.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client = client.signed_by(&client_key, &issuer).expect("client cert");
    Pki { ca_der: ca.der().to_vec(), client: (client.pem(), client_key.serialize_pem()) }
}

fn agent(ca: Option<&[u8]>) -> ureq::Agent {
    client_agent(ca, None)
}

/// An agent trusting `ca`, presenting the client certificate and key (PEM) when given.
fn client_agent(ca: Option<&[u8]>, client: Option<&(String, String)>) -> ureq::Agent {
    use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};
    let mut config =
        ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(10)));
    if let Some(ca) = ca {
        let roots = RootCerts::Specific(Arc::new(vec![Certificate::from_der(ca).to_owned()]));
        let identity = client.map(|(cert, key)| {
            let chain = vec![Certificate::from_pem(cert.as_bytes()).expect("client certificate")];
            ClientCert::new_with_certs(&chain, PrivateKey::from_pem(key.as_bytes()).expect("client key"))
        });
        config = config.tls_config(
            TlsConfig::builder().provider(TlsProvider::Rustls).root_certs(roots).client_cert(identity).build(),
        );
    }
    config.build().into()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn admission(distinct: bool, client_auth: bool) {
    let Some(library) = library() else {
        eprintln!("admission: skipped, ../shared/conformance/gatekeeper-library is not here");
        return;
    };
    let work = tempfile::tempdir().expect("tempdir");
    let estate = copy_estate(work.path());
    let pod_pairs: Vec<_> = library_pairs(&library)
        .into_iter()
        .filter(|(_, _, c)| {
            c.contains("\"Pod\"") || c.contains("- Pod") || c.contains("[\"Pod\"]") || !c.contains("kinds:")
        })
        .collect();
    let pairs: Vec<_> = pod_pairs.into_iter().take(20 - 3).collect();
    let constraints = add_constraints(&estate, &pairs).0 + 3;
    ledger(work.path());
    let pki = pki(work.path());
    let mut args = vec![
        "--estate",
        estate.to_str().expect("path"),
        "--tls-cert",
        "tls.crt",
        "--tls-key",
        "tls.key",
        "--ledger",
        "ledger",
        "--ledger-key",
        "k",
    ];
    if client_auth {
        args.extend(["--client-ca", "clients.pem", "--client-name", "admission=kube-apiserver-admission"]);
    }
    let server = Server::start(work.path(), &args);
    let url = format!("https://localhost:{}/v1/admission", server.port());
    let client = client_auth.then(|| pki.client.clone());
    let rate = env_or("ASSAY_BENCH_RATE", 1000);
    let seconds = env_or("ASSAY_BENCH_SECONDS", 20);
    let workers = 32u64;
    // Warm up the server: policy engines, the blocking pool.
    let warm = client_agent(Some(&pki.ca_der), client.as_ref());
    for i in 0..200 {
        let _ = warm.post(&url).header("content-type", "application/json").send(&pod_review(i)[..]);
    }
    let total = rate * seconds;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let errors = Arc::new(AtomicU64::new(0));
    let denied = Arc::new(AtomicU64::new(0));
    // Each worker opens its keep-alive connection (TCP and TLS handshakes) before the clock
    // starts, as the API server keeps its connections to a webhook open.
    let ready = Arc::new(std::sync::Barrier::new(workers as usize + 1));
    let start_at = Arc::new(std::sync::OnceLock::new());
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let url = url.clone();
            let ca = pki.ca_der.clone();
            let client = client.clone();
            let errors = Arc::clone(&errors);
            let denied = Arc::clone(&denied);
            let ready = Arc::clone(&ready);
            let start_at = Arc::clone(&start_at);
            std::thread::spawn(move || {
                let agent = client_agent(Some(&ca), client.as_ref());
                let _ = agent.post(&url).header("content-type", "application/json").send(&pod_review(w)[..]);
                ready.wait();
                ready.wait();
                let start: Instant = *start_at.get().expect("start time");
                let mut latencies = Vec::new();
                let mut k = w;
                while k < total {
                    let due = start + interval * (k as u32);
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    let body = pod_review_of(k, distinct);
                    match agent.post(&url).header("content-type", "application/json").send(&body[..]) {
                        Ok(mut r) if r.status() == 200 => {
                            let text = r.body_mut().read_to_string().unwrap_or_default();
                            if text.contains("\"allowed\":false") {
                                denied.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    latencies.push(due.elapsed().as_secs_f64() * 1000.0);
                    k += workers;
                }
                latencies
            })
        })
        .collect();
    ready.wait();
    let cpu_before = server.cpu();
    let start = Instant::now() + Duration::from_millis(50);
    start_at.set(start).expect("start time set once");
    ready.wait();
    let mut all: Vec<f64> = handles.into_iter().flat_map(|h| h.join().expect("worker")).collect();
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    let (rss, hwm) = server.memory();
    let cpu_per_request = (server.cpu() - cpu_before) / all.len().max(1) as f64 * 1000.0;
    server.stop();
    let pods = match (distinct, client_auth) {
        (true, true) => "client certificate, every pod spec distinct (no memo hits)",
        (false, true) => "client certificate, replicas of one pod spec",
        (true, false) => "no client certificate, every pod spec distinct (no memo hits)",
        (false, false) => "no client certificate, replicas of one pod spec",
    };
    println!("server CPU per admission request (TLS, evaluation, decision log), {pods}: {cpu_per_request:.2} ms");
    println!(
        "admission over TLS, {constraints} constraints and the example estate's Rego rules, ledger on, {pods}: \
         offered {rate}/s for {seconds} s, \
         achieved {:.0}/s; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {} denied, {} errors; \
         server RSS {rss:.1} MiB (peak {hwm:.1} MiB)",
        all.len() as f64 / elapsed,
        percentile(&all, 0.50),
        percentile(&all, 0.90),
        percentile(&all, 0.99),
        all.last().copied().unwrap_or(f64::NAN),
        denied.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
    );
}

/// A server on the example estate with a ledger, in `work`.
fn data_server(work: &Path) -> Server {
    ledger(work);
    let estate = root().join("examples/estate");
    Server::start(work, &["--estate", estate.to_str().expect("path"), "--ledger", "ledger", "--ledger-key", "k"])
}

/// The data API's three inputs: stores allowed and refused, and an inference.
fn data_inputs() -> [serde_json::Value; 3] {
    [
        json!({"input": {"action": "store", "region": "eu-west-1", "data": {"classification": "GDPR_SENSITIVE"}}}),
        json!({"input": {"action": "store", "region": "us-east-1", "data": {"classification": "GDPR_SENSITIVE"}}}),
        json!({"input": {"action": "inference", "user": {"region": "eu-west-1"}, "model": {"region": "eu-west-1"}, "data": {"classification": "INTERNAL"}}}),
    ]
}

fn data() {
    let work = tempfile::tempdir().expect("tempdir");
    let server = data_server(work.path());
    let url = format!("http://{}/v1/data/authz/residency/allow", server.addr);
    let seconds = env_or("ASSAY_BENCH_SECONDS", 20).min(10);
    let workers = 8;
    let inputs = data_inputs().map(|v| v.to_string().into_bytes());
    let warm = agent(None);
    for body in inputs.iter().cycle().take(500) {
        let _ = warm.post(&url).header("content-type", "application/json").send(&body[..]);
    }
    let (n, allowed, _, elapsed, cpu) = closed_loop(&server, workers, seconds, move |agent, i| {
        let body = &inputs[i as usize % inputs.len()];
        match agent.post(&url).header("content-type", "application/json").send(&body[..]) {
            Ok(mut r) if r.status() == 200 => {
                Some(r.body_mut().read_to_string().unwrap_or_default().contains("\"result\":true"))
            }
            _ => None,
        }
    });
    server.stop();
    println!("server CPU per data API decision: {:.3} ms", cpu / n.max(1) as f64 * 1000.0);
    println!(
        "OPA data API, residency policy, ledger on, {workers} keep-alive clients: {n} decisions in {elapsed:.1} s = {:.0}/s \
         ({allowed} allowed)",
        n as f64 / elapsed,
    );
}

/// Runs `request` from `workers` threads, each with its own keep-alive agent, for `seconds`;
/// request `i` of worker `w` gets number `w + i × workers`. `request` answers `None` for a
/// failure, else a flag to count. Returns (successes, flagged, failures, seconds, server CPU s).
fn closed_loop(
    server: &Server,
    workers: u64,
    seconds: u64,
    request: impl Fn(&ureq::Agent, u64) -> Option<bool> + Send + Sync + 'static,
) -> (u64, u64, u64, f64, f64) {
    let request = Arc::new(request);
    let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
    let cpu_before = server.cpu();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let (request, counts) = (Arc::clone(&request), Arc::clone(&counts));
            std::thread::spawn(move || {
                let agent = agent(None);
                let mut i = w;
                while Instant::now() < deadline {
                    match request(&agent, i) {
                        Some(flag) => {
                            counts[0].fetch_add(1, Ordering::Relaxed);
                            counts[1].fetch_add(u64::from(flag), Ordering::Relaxed);
                        }
                        None => {
                            counts[2].fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    i += workers;
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("worker");
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = server.cpu() - cpu_before;
    let [done, flagged, failed] = [0, 1, 2].map(|k| counts[k].load(Ordering::Relaxed));
    (done, flagged, failed, elapsed, cpu)
}

fn lineage_event(i: u64) -> serde_json::Value {
    let facet = |extra: serde_json::Value| {
        let mut f = json!({"_producer": "https://github.com/OpenLineage/OpenLineage/tree/1.40.0/integration/spark",
                           "_schemaURL": "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json"});
        if let (Some(m), serde_json::Value::Object(e)) = (f.as_object_mut(), extra) {
            m.extend(e);
        }
        f
    };
    let job = i % 500;
    let fields: Vec<serde_json::Value> = (0..12)
        .map(|c| json!({"name": format!("column_{c}"), "type": if c % 3 == 0 { "STRING" } else { "DOUBLE" }}))
        .collect();
    let table = |ns: &str, name: String| json!({"namespace": ns, "name": name, "facets": {"schema": facet(json!({"fields": fields.clone()}))}});
    let mut output = table("s3://acme-features-eu", format!("features/job_{job}"));
    output["outputFacets"] =
        json!({"outputStatistics": facet(json!({"rowCount": 1_000_000 + i, "size": 52_428_800 + i}))});
    json!({
        "eventType": "COMPLETE",
        "eventTime": format!("2026-11-23T10:{:02}:{:02}.{:03}Z", (i / 60_000) % 60, (i / 1000) % 60, i % 1000),
        "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.40.0/integration/spark",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": format!("0192f0c4-8a57-7d3c-b1a5-{i:012}")},
        "job": {"namespace": "spark-prod", "name": format!("job_{job}"),
                "facets": {"sourceCodeLocation": facet(json!({"type": "git", "url": "https://github.com/acme/pipelines", "version": "4f1c2d9"}))}},
        "inputs": [table("s3://acme-raw-eu", format!("events/day_{}", job % 30)), table("s3://acme-raw-eu", format!("customers/part_{}", job % 7))],
        "outputs": [output],
    })
}

/// A server on the example estate with a data directory and a ledger, in `work`.
/// With `ASSAY_BENCH_DATABASE=postgres://…` (an empty database), the graph and the ledger's
/// queue are in PostgreSQL (`--database`).
fn lineage_server(work: &Path) -> Server {
    ledger(work);
    let estate = root().join("examples/estate");
    let mut args =
        vec!["--estate", estate.to_str().expect("path"), "--data", "data", "--ledger", "ledger", "--ledger-key", "k"];
    let database = std::env::var("ASSAY_BENCH_DATABASE").ok();
    if let Some(url) = &database {
        args.extend(["--database", url.as_str()]);
    }
    Server::start(work, &args)
}

fn lineage() {
    let work = tempfile::tempdir().expect("tempdir");
    let server = lineage_server(work.path());
    let url = format!("http://{}/api/v1/lineage", server.addr);
    let seconds = env_or("ASSAY_BENCH_SECONDS", 20).min(10);
    let workers = env_or("ASSAY_BENCH_CLIENTS", 64);
    let warm = agent(None);
    for i in 0..200 {
        let _ = warm
            .post(&url)
            .header("content-type", "application/json")
            .send(lineage_event(u64::MAX / 2 + i).to_string());
    }
    // Bodies made before the clock starts, so that the load generator, which shares the
    // machine's two cores with the server, spends its time sending.
    let bodies: Arc<Vec<String>> = Arc::new((0..150_000).map(|i| lineage_event(i).to_string()).collect());
    let (n, _, failed, elapsed, cpu) = closed_loop(&server, workers, seconds, move |agent, i| {
        let body = &bodies[i as usize % bodies.len()];
        match agent.post(&url).header("content-type", "application/json").send(body.as_bytes()) {
            // Read the answer whole, so that the connection is kept for the next request.
            Ok(mut r) if r.status() == 201 => r.body_mut().read_to_string().ok().map(|_| true),
            _ => None,
        }
    });
    server.stop();
    println!("server CPU per lineage event: {:.3} ms", cpu / n.max(1) as f64 * 1000.0);
    println!(
        "OpenLineage over HTTP, each event durable before its 201, ledger on, {workers} keep-alive clients: \
         {n} events in {elapsed:.1} s = {:.0}/s ({failed} failed)",
        n as f64 / elapsed,
    );
}

/// The lineage intake driven by wrk (when it is installed: `apt-get install wrk`), a load
/// generator in C that costs far less CPU per request than the built-in client, so more of the
/// two cores go to the server. Every request is a distinct event: a Lua script puts a counter
/// into the run id of one of 500 job templates.
fn lineage_wrk() {
    if !wrk_installed("lineage-wrk") {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let server = lineage_server(work.path());
    let seconds = env_or("ASSAY_BENCH_SECONDS", 20).min(10);
    let clients = env_or("ASSAY_BENCH_CLIENTS", 64);
    let templates: Vec<String> = (0..500)
        .map(|j| {
            let mut e = lineage_event(j);
            e["run"]["runId"] = json!("0192f0c4-8a57-7d3c-b1a5-RUNIDRUNIDRU");
            format!("[==[{e}]==]")
        })
        .collect();
    let script = format!(
        "local templates = {{{}}}\n\
         local threads, n = 0, 0\n\
         function setup(thread) thread:set(\"id\", threads); threads = threads + 1 end\n\
         wrk.method = \"POST\"\n\
         wrk.headers[\"Content-Type\"] = \"application/json\"\n\
         function request()\n\
           n = n + 1\n\
           local run = string.format(\"%02d%010d\", id or 0, n)\n\
           local body = templates[n % #templates + 1]:gsub(\"RUNIDRUNIDRU\", run)\n\
           return wrk.format(nil, nil, nil, body)\n\
         end\n",
        templates.join(",")
    );
    let path = work.path().join("lineage.lua");
    std::fs::write(&path, script).expect("write the wrk script");
    let url = format!("http://{}/api/v1/lineage", server.addr);
    let (rate, latency, cpu) = wrk(&server, &path, &url, clients, seconds);
    // Every request must have been a new event: the server counts new and known ones.
    let metrics = agent(None)
        .get(format!("http://{}/metrics", server.addr))
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_to_string().ok())
        .unwrap_or_default();
    let count = |result: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.contains("kind=\"lineage\"") && l.contains(&format!("result=\"{result}\"")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let (new, known) = (count("new"), count("duplicate"));
    server.stop();
    assert_eq!(known, 0, "the load repeated events");
    println!("server CPU per lineage event (wrk): {cpu:.3} ms; {new} new events, none repeated");
    println!(
        "OpenLineage over HTTP with wrk, each event durable before its 201, ledger on, {clients} connections: \
         {rate:.0}/s, {latency}"
    );
}

/// Whether wrk is installed; says that `part` is skipped when it is not.
fn wrk_installed(part: &str) -> bool {
    let found = Command::new("wrk").arg("--version").output().is_ok();
    if !found {
        eprintln!("{part}: skipped, wrk is not installed");
    }
    found
}

/// Runs wrk with a Lua script against `url`; returns requests per second, its latency summary
/// (and any errors it reports), and the server's CPU milliseconds per request.
fn wrk(server: &Server, script: &Path, url: &str, clients: u64, seconds: u64) -> (f64, String, f64) {
    let cpu_before = server.cpu();
    let out = Command::new("wrk")
        .args(["-t2", &format!("-c{clients}"), &format!("-d{seconds}s"), "--latency", "-s"])
        .arg(script)
        .arg(url)
        .output()
        .expect("wrk");
    let cpu = server.cpu() - cpu_before;
    let text = String::from_utf8_lossy(&out.stdout);
    let rate: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no rate in wrk's output:\n{text}"));
    let errors = text.lines().filter(|l| l.contains("Non-2xx") || l.contains("Socket errors")).collect::<Vec<_>>();
    let latency =
        |p: &str| text.lines().find_map(|l| l.trim().strip_prefix(p).map(|v| v.trim().to_string())).unwrap_or_default();
    let summary = format!(
        "latency p50 {}, p99 {}{}",
        latency("50%"),
        latency("99%"),
        if errors.is_empty() { String::new() } else { format!(" ({})", errors.join("; ")) }
    );
    (rate, summary, cpu / (rate * seconds as f64).max(1.0) * 1000.0)
}

/// The OPA data API driven by wrk (when it is installed), as `data` but with a load generator
/// that leaves the server more of the two cores.
fn data_wrk() {
    if !wrk_installed("data-wrk") {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let server = data_server(work.path());
    let seconds = env_or("ASSAY_BENCH_SECONDS", 20).min(10);
    let clients = env_or("ASSAY_BENCH_CLIENTS", 64);
    let bodies: Vec<String> = data_inputs().iter().map(|v| format!("[==[{v}]==]")).collect();
    let script = format!(
        "local bodies = {{{}}}\nlocal n = 0\nwrk.method = \"POST\"\n\
         wrk.headers[\"Content-Type\"] = \"application/json\"\n\
         function request() n = n + 1; return wrk.format(nil, nil, nil, bodies[n % #bodies + 1]) end\n",
        bodies.join(",")
    );
    let path = work.path().join("data.lua");
    std::fs::write(&path, script).expect("write the wrk script");
    let url = format!("http://{}/v1/data/authz/residency/allow", server.addr);
    let (rate, latency, cpu) = wrk(&server, &path, &url, clients, seconds);
    server.stop();
    println!("server CPU per data API decision (wrk): {cpu:.3} ms");
    println!("OPA data API with wrk, residency policy, ledger on, {clients} connections: {rate:.0}/s, {latency}");
}

fn ingest() {
    let work = tempfile::tempdir().expect("tempdir");
    ledger(work.path());
    let events = env_or("ASSAY_BENCH_EVENTS", 100_000);
    let mut text = String::new();
    for i in 0..events {
        text.push_str(&lineage_event(i).to_string());
        text.push('\n');
    }
    std::fs::write(work.path().join("events.jsonl"), &text).expect("write events");
    let spec = root().join("../shared/conformance/openlineage/spec");
    let spec = spec.to_str().expect("path").to_string();
    let mut runs: Vec<(&str, Vec<&str>)> = vec![
        ("no ledger", vec!["--data", "a"]),
        ("ledger on", vec!["--data", "b", "--ledger", "ledger", "--ledger-key", "k"]),
    ];
    if Path::new(&spec).join("OpenLineage.json").is_file() {
        runs.push(("schemas checked", vec!["--data", "c", "--schemas", &spec]));
    }
    for (what, extra) in runs {
        let start = Instant::now();
        let mut args = vec!["lineage", "ingest", "events.jsonl"];
        args.extend(extra);
        assay(work.path(), &args);
        let elapsed = start.elapsed().as_secs_f64();
        println!(
            "assay lineage ingest, {events} events ({:.0} MB), {what}: {elapsed:.1} s = {:.0} events/s",
            text.len() as f64 / 1e6,
            events as f64 / elapsed
        );
    }
}

fn memory() {
    let Some(library) = library() else {
        eprintln!("memory: skipped, ../shared/conformance/gatekeeper-library is not here");
        return;
    };
    let work = tempfile::tempdir().expect("tempdir");
    let estate = copy_estate(work.path());
    let pairs = library_pairs(&library);
    let (n, templates) = add_constraints(&estate, &pairs);
    ledger(work.path());
    let server = Server::start(
        work.path(),
        &["--estate", estate.to_str().expect("path"), "--ledger", "ledger", "--ledger-key", "k"],
    );
    let (rss_start, _) = server.memory();
    let url = format!("http://{}/v1/admission", server.addr);
    let client = agent(None);
    // Distinct specs: every template's memo fills up.
    for i in 0..2000 {
        let _ = client.post(&url).header("content-type", "application/json").send(&pod_review_of(i, true)[..]);
    }
    let (rss, hwm) = server.memory();
    server.stop();
    println!(
        "memory with the Gatekeeper library ({templates} templates, all of them; {n} sample \
         constraints) and the example estate: RSS {rss_start:.1} MiB after start, \
         {rss:.1} MiB after 2,000 admission requests with distinct pod specs, peak {hwm:.1} MiB"
    );
}

/// Each page of the web UI, loaded in Chromium: first after the server started (nothing kept
/// yet), then `ASSAY_BENCH_LOADS` (default 20) more times.
fn ui() {
    if !Path::new(&std::env::var("ASSAY_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into())).exists() {
        eprintln!("ui: skipped, chromedriver is not installed (scripts/test.sh installs it)");
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let scale = scale::build(work.path());
    println!(
        "ui: {} billing rows of 1,000 resources over 365 days, {} lineage nodes, made in {:.0} s",
        scale.rows,
        scale.nodes,
        started.elapsed().as_secs_f64()
    );
    ledger(work.path());
    let estate = scale.estate.to_str().expect("path").to_string();
    let server = Server::start(
        work.path(),
        &["--estate", &estate, "--data", "data", "--ledger", "ledger", "--ledger-key", "k", "--poll", "0"],
    );
    // Some decisions for the ledger page.
    let client = agent(None);
    for i in 0..200 {
        let _ = client
            .post(&format!("http://{}/v1/admission", server.addr))
            .header("content-type", "application/json")
            .send(&pod_review(i)[..]);
    }
    let loads = env_or("ASSAY_BENCH_LOADS", 20) as usize;
    let node = format!("node={}", scale.deep_dataset.replace(':', "%3A").replace('/', "%2F"));
    let pages = [
        "/ui/posture".to_string(),
        "/ui/cost".to_string(),
        "/ui/cost?by=tag%3Acost-center".to_string(),
        "/ui/cost?by=ResourceId".to_string(),
        "/ui/residency".to_string(),
        format!("/ui/residency?{node}&depth=3"),
        format!("/ui/residency?{node}&depth=10"),
        "/ui/ledger".to_string(),
    ];
    browser::with_browser(&server.addr, |client, base| async move {
        println!("| page | first visit: answer / loaded | later visits: loaded p50 / p95 | size |");
        println!("|---|---:|---:|---:|");
        for page in &pages {
            let first = browser::load(&client, &format!("{base}{page}")).await;
            let mut later = Vec::with_capacity(loads);
            for _ in 0..loads {
                later.push(browser::load(&client, &format!("{base}{page}")).await.loaded_ms);
            }
            later.sort_by(f64::total_cmp);
            println!(
                "| `{page}` | {:.0} ms / {:.0} ms | {:.0} ms / {:.0} ms | {:.0} KB |",
                first.response_ms,
                first.loaded_ms,
                percentile(&later, 0.5),
                percentile(&later, 0.95),
                first.bytes / 1024.0
            );
        }
        client.close().await.expect("close");
    });
    let (rss, hwm) = server.memory();
    server.stop();
    println!("ui: server RSS {rss:.0} MiB after the pages, peak {hwm:.0} MiB");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let want = |name: &str| args.is_empty() || args.iter().any(|a| a == name);
    if want("admission") {
        admission(false, true);
    }
    if want("admission-distinct") {
        admission(true, true);
    }
    if want("admission-no-client-cert") {
        admission(false, false);
    }
    if want("data") {
        data();
    }
    if want("data-wrk") {
        data_wrk();
    }
    if want("memory") {
        memory();
    }
    if want("lineage") {
        lineage();
    }
    if want("lineage-wrk") {
        lineage_wrk();
    }
    if want("ingest") {
        ingest();
    }
    if want("ui") {
        ui();
    }
}
