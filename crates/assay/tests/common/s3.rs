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
