//! A real `assay serve` process on loopback, and clients for it: raw HTTP/1.1 over a socket (so
//! that malformed requests can be sent) and HTTPS through rustls (ureq) trusting a test CA.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use super::repo_root;

/// A running `assay serve`.
pub struct Server {
    pub child: Child,
    pub addr: String,
    pub https: bool,
    log: Arc<Mutex<String>>,
    agent: Option<ureq::Agent>,
}

impl Server {
    /// Serves the example estate, with extra flags.
    pub fn start(dir: &Path, extra: &[&str]) -> Server {
        let estate = repo_root().join("examples/estate");
        let mut args = vec!["--estate", estate.to_str().expect("path")];
        args.extend_from_slice(extra);
        Server::launch(dir, &args)
    }

    /// [`Server::start`], with environment variables set for the server.
    #[allow(dead_code)]
    pub fn start_with_env(dir: &Path, extra: &[&str], env: &[(&'static str, String)]) -> Server {
        let estate = repo_root().join("examples/estate");
        let mut args = vec!["--estate", estate.to_str().expect("path")];
        args.extend_from_slice(extra);
        let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, Path::new(v.as_str()))).collect();
        Server::launch_with_env(dir, &args, &env)
    }

    /// `assay serve --addr 127.0.0.1:0 ARGS...` in `dir` (no `--addr` of its own when `ARGS`
    /// has one); waits until it listens.
    pub fn launch(dir: &Path, args: &[&str]) -> Server {
        Server::try_launch(dir, args).unwrap_or_else(|log| panic!("the server did not start:\n{log}"))
    }

    /// Like [`Server::launch`], with environment variables set for the server.
    #[allow(dead_code)]
    pub fn launch_with_env(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> Server {
        Server::try_launch_env(dir, args, env).unwrap_or_else(|log| panic!("the server did not start:\n{log}"))
    }

    /// Like [`Server::launch`]; `Err` holds what the server wrote before it exited.
    pub fn try_launch(dir: &Path, args: &[&str]) -> Result<Server, String> {
        Server::try_launch_env(dir, args, &[])
    }

    /// `assay ui --addr 127.0.0.1:0 ARGS...` in `dir`; waits until it listens.
    #[allow(dead_code)]
    pub fn launch_ui(dir: &Path, args: &[&str]) -> Server {
        Server::try_launch_command(dir, "ui", args, &[]).unwrap_or_else(|log| panic!("assay ui did not start:\n{log}"))
    }

    fn try_launch_env(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> Result<Server, String> {
        Server::try_launch_command(dir, "serve", args, env)
    }

    fn try_launch_command(dir: &Path, command: &str, args: &[&str], env: &[(&str, &Path)]) -> Result<Server, String> {
        let default_addr: &[&str] = if args.contains(&"--addr") { &[] } else { &["--addr", "127.0.0.1:0"] };
        let mut child = Command::new(env!("CARGO_BIN_EXE_assay"))
            .envs(env.iter().map(|(k, v)| (*k, *v)))
            .arg(command)
            .args(default_addr)
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn assay serve");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let log = Arc::new(Mutex::new(String::new()));
        let mut found = None;
        for line in lines.by_ref() {
            let line = line.expect("stderr line");
            log.lock().expect("log").push_str(&format!("{line}\n"));
            if let Some(a) = line.strip_prefix("assay serve: listening on http://") {
                found = Some((a.to_string(), false));
                break;
            }
            if let Some(a) = line.strip_prefix("assay serve: listening on https://") {
                found = Some((a.to_string(), true));
                break;
            }
        }
        let Some((addr, https)) = found else {
            let _ = child.wait();
            return Err(log.lock().expect("log").clone());
        };
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().expect("log").push_str(&format!("{line}\n"));
            }
        });
        Ok(Server { child, addr, https, log, agent: None })
    }

    /// Trusts this CA certificate (DER) for HTTPS requests.
    pub fn trusting(self, ca_der: Vec<u8>) -> Server {
        self.client(ca_der, None)
    }

    /// Trusts this CA certificate (DER) for HTTPS requests and presents a client certificate
    /// (PEM chain and key), or none.
    pub fn client(mut self, ca_der: Vec<u8>, identity: Option<(&str, &str)>) -> Server {
        use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};
        let roots = RootCerts::Specific(Arc::new(vec![Certificate::from_der(&ca_der).to_owned()]));
        let client = identity.map(|(cert, key)| {
            let chain = vec![Certificate::from_pem(cert.as_bytes()).expect("client certificate")];
            ClientCert::new_with_certs(&chain, PrivateKey::from_pem(key.as_bytes()).expect("client key"))
        });
        let tls = TlsConfig::builder().provider(TlsProvider::Rustls).root_certs(roots).client_cert(client).build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        self.agent = Some(agent);
        self
    }

    /// What the server wrote on standard error so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }

    /// SIGTERM, then the exit status and everything the server wrote on standard error.
    pub fn stop(mut self) -> (Option<i32>, String) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
        assert!(sent.success());
        let status = self.child.wait().expect("wait");
        std::thread::sleep(Duration::from_millis(50));
        (status.code(), self.log())
    }

    /// One request with optional extra headers; the status and the body.
    pub fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
        self.try_send(method, path, headers, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// Like [`Server::send`]; `Err` when the request fails below HTTP (TLS, connection).
    pub fn try_send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(u16, String), String> {
        if self.https {
            let agent = self.agent.as_ref().expect("call trusting() before HTTPS requests");
            let url = format!("https://localhost:{}{path}", self.addr.rsplit(':').next().expect("port"));
            let mut request = ureq::http::Request::builder().method(method).uri(url);
            for (k, v) in headers {
                request = request.header(*k, *v);
            }
            let request = request.body(body.to_vec()).expect("request");
            let mut response = agent.run(request).map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let text = response.body_mut().read_to_string().map_err(|e| e.to_string())?;
            return Ok((status, text));
        }
        Ok(http(&self.addr, method, path, headers, body))
    }

    pub fn request(&self, method: &str, path: &str, content_type: Option<&str>, body: &[u8]) -> (u16, String) {
        match content_type {
            Some(ct) => self.send(method, path, &[("content-type", ct)], body),
            None => self.send(method, path, &[], body),
        }
    }

    pub fn json(&self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let (status, text) = self.request(method, path, Some("application/json"), body.to_string().as_bytes());
        (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text:?}")))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request on a fresh connection; the status and the body.
pub fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).expect("write head");
    // A server may answer (413) before it reads a large body, and close.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP response: {text:?}"));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("status: {head}"));
    (status, body.to_string())
}

/// An AdmissionReview v1 creating the Namespace `ml` with these labels.
pub fn namespace_review(uid: &str, labels: Value) -> Value {
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Namespace"},
            "operation": "CREATE",
            "object": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ml", "labels": labels}}
        }
    })
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `limit`.
pub fn eventually<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A copy of the example estate with `extra` appended to `assay.yaml`.
pub fn estate_copy(work: &Path, extra: &str) -> PathBuf {
    let dir = work.join("estate");
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(super::repo_root().join("examples/estate"))
        .arg(&dir)
        .status()
        .expect("cp");
    assert!(status.success());
    let settings = dir.join("assay.yaml");
    let text = std::fs::read_to_string(&settings).expect("read") + extra;
    std::fs::write(settings, text).expect("write");
    dir
}

/// [`estate_copy`] with the residency objects of the lineage tests ([`RESIDENCY`]) and, when
/// `alerts` is given, alerts sent to `http://127.0.0.1:PORT/alerts`.
#[allow(dead_code)]
pub fn residency_estate(work: &Path, alerts: Option<u16>) -> PathBuf {
    let extra = alerts.map(|port| format!("actions:\n  alerts: [\"http://127.0.0.1:{port}/alerts\"]\n"));
    let estate = estate_copy(work, extra.as_deref().unwrap_or(""));
    std::fs::create_dir_all(estate.join("residency")).expect("mkdir");
    std::fs::write(estate.join("residency/gdpr.yaml"), RESIDENCY).expect("write");
    estate
}

/// A key pair (`k`, `k.pub`, named `decisions.example/log`) and an empty ledger (`ledger`) in
/// `dir`, for a server started with `--ledger ledger --ledger-key k`.
pub fn keyed_ledger(dir: &Path) {
    let out = super::assay(dir, &["log", "keygen", "decisions.example/log", "--private", "k", "--public", "k.pub"]);
    assert_eq!(out.status.code(), Some(0), "{}", super::stderr(&out));
    let out = super::assay(dir, &["log", "init", "ledger", "--key", "k"]);
    assert_eq!(out.status.code(), Some(0), "{}", super::stderr(&out));
}

/// An HTTP receiver on a fixed port that records every POST body and answers 200.
pub struct Receiver {
    pub got: Arc<Mutex<Vec<(String, Value)>>>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    pub fn listen(port: u16) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the receiver");
        listener.set_nonblocking(true).expect("nonblocking");
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (sink, stopped) = (Arc::clone(&got), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                let Ok((mut stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                stream.set_nonblocking(false).expect("blocking");
                let mut raw = Vec::new();
                let mut buf = [0u8; 8192];
                let (head, body) = loop {
                    let n = stream.read(&mut buf).unwrap_or(0);
                    if n == 0 {
                        break (String::new(), Vec::new());
                    }
                    raw.extend_from_slice(&buf[..n]);
                    if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
                        let length: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string())
                            })
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        while raw.len() < end + 4 + length {
                            let n = stream.read(&mut buf).unwrap_or(0);
                            if n == 0 {
                                break;
                            }
                            raw.extend_from_slice(&buf[..n]);
                        }
                        break (head, raw[end + 4..].to_vec());
                    }
                };
                let path = head.split(' ').nth(1).unwrap_or("").to_string();
                if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                    sink.lock().expect("got").push((path, v));
                }
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            }
        });
        Receiver { got, stop }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Residency objects of the lineage tests: EU customer data stays in the EU; jobs named
/// `train*` run in the US.
#[allow(dead_code)]
pub const RESIDENCY: &str = include_str!("residency.yaml");

/// An OpenLineage COMPLETE event of run `run`: `job` reads `input` and writes `output`.
#[allow(dead_code)]
pub fn flow(run: u32, job: &str, input: (&str, &str), output: (&str, &str)) -> Value {
    json!({
        "eventType": "COMPLETE",
        "eventTime": format!("2026-11-23T11:{run:02}:00Z"),
        "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.40.0/integration/spark",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": format!("0192f0c4-8a57-7d3c-b1a5-{run:012}")},
        "job": {"namespace": "airflow", "name": job},
        "inputs": [{"namespace": input.0, "name": input.1}],
        "outputs": [{"namespace": output.0, "name": output.1}]
    })
}

/// Where `value` breaks the schema `name` of the server's OpenAPI document.
#[allow(dead_code)]
pub fn schema_errors(server: &Server, name: &str, value: &Value) -> Vec<String> {
    let (_, doc) = server.json("GET", "/api/v1/openapi.json", &Value::Null);
    let mut schema = doc["components"]["schemas"][name].clone();
    assert!(schema.is_object(), "no schema {name}");
    schema["$defs"] = doc["components"]["schemas"].clone();
    let text = schema.to_string().replace("#/components/schemas/", "#/$defs/");
    let schema: Value = serde_json::from_str(&text).expect("schema");
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    validator.iter_errors(value).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}
