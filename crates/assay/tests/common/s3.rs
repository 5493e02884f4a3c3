//! An S3-compatible server for tests: moto's server mode (from PyPI), which speaks the S3 REST
//! API (PUT, GET, LIST, multipart uploads) as boto and every S3 client send it, without an
//! account, and stops and starts in a second, so that a test can take it away mid-run.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct S3 {
    child: Option<Child>,
    python: PathBuf,
    pub port: u16,
}

impl S3 {
    /// Starts a server on a free port with bucket `bucket`.
    pub fn start(bucket: &str) -> S3 {
        let python = super::python_with_pip("moto.server", &["moto[server]==5.1.18"]);
        let mut s3 = S3 { child: None, python, port: super::server::free_port() };
        s3.start_again();
        let (status, body) =
            super::server::http(&format!("127.0.0.1:{}", s3.port), "PUT", &format!("/{bucket}"), &[], b"");
        assert_eq!(status, 200, "creating bucket {bucket}: {body}");
        s3
    }

    /// Starts the server (again, after [`S3::stop`]: what it held is gone with it).
    pub fn start_again(&mut self) {
        let child = Command::new(&self.python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting moto's server");
        self.child = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "moto's server did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The environment an S3 client (assay through `object_store`, or the AWS CLI) needs to
    /// reach it.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", format!("http://127.0.0.1:{}", self.port)),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What a [`Proxy`] does to the connections it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forwards them.
    None,
    /// Closes each at once (the client sees the connection reset).
    Refuse,
    /// Holds each without an answer: a store that hangs.
    Stall,
}

/// A TCP proxy in front of a server that can be told to fail: how a test makes object storage
/// return errors or hang while keeping what it holds. A change of fault also cuts the
/// connections already open (clients keep pooled connections).
pub struct Proxy {
    pub port: u16,
    fault: std::sync::Arc<std::sync::atomic::AtomicU8>,
}

impl Proxy {
    /// Listens on a free port and forwards to `upstream` on loopback.
    pub fn start(upstream: u16) -> Proxy {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU8, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("addr").port();
        let fault = Arc::new(AtomicU8::new(0));
        let shared = Arc::clone(&fault);
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let fault = Arc::clone(&shared);
                let at_accept = fault.load(Ordering::Relaxed);
                std::thread::spawn(move || match at_accept {
                    0 => {
                        if let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", upstream)) {
                            let (c2, s2) = (client.try_clone().expect("clone"), server.try_clone().expect("clone"));
                            let f2 = Arc::clone(&fault);
                            std::thread::spawn(move || pump(c2, s2, &f2));
                            pump(server, client, &fault);
                        }
                    }
                    1 => drop(client),
                    _ => {
                        while fault.load(Ordering::Relaxed) == 2 {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        drop(client);
                    }
                });
            }
        });
        Proxy { port, fault }
    }

    /// From now on, `fault`.
    pub fn set(&self, fault: Fault) {
        let code = match fault {
            Fault::None => 0,
            Fault::Refuse => 1,
            Fault::Stall => 2,
        };
        self.fault.store(code, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Copies `from` to `to` until either closes or a fault is set.
fn pump(mut from: std::net::TcpStream, mut to: std::net::TcpStream, fault: &std::sync::atomic::AtomicU8) {
    use std::io::{Read, Write};
    let _ = from.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buf = vec![0u8; 64 * 1024];
    while fault.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(std::net::Shutdown::Both);
    let _ = to.shutdown(std::net::Shutdown::Both);
}

impl S3 {
    /// [`S3::env`], reaching the server through `proxy`, with requests that time out after
    /// `timeout` (object_store's `AWS_TIMEOUT`).
    pub fn env_via(&self, proxy: &Proxy, timeout: &str) -> Vec<(&'static str, String)> {
        let mut env = self.env();
        env[0].1 = format!("http://127.0.0.1:{}", proxy.port);
        env.push(("AWS_TIMEOUT", timeout.to_string()));
        env
    }
}
