//! Debian's headless Chromium driven over WebDriver (chromedriver; `scripts/test.sh` installs
//! both), for the browser tests and the UI benchmark. Self-contained, so that the benchmark can
//! include it by path.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::json;

/// chromedriver on a free port, stopped when dropped.
pub struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts chromedriver (`ASSAY_CHROMEDRIVER`, `/usr/bin/chromedriver` unless set).
pub fn driver() -> Driver {
    let program = std::env::var("ASSAY_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    assert!(
        std::path::Path::new(&program).exists(),
        "{program} not found: scripts/test.sh installs Debian's chromium and chromium-driver"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let child = Command::new(&program)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {program}: {e}"));
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while ureq::get(&format!("{url}/status")).call().is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "chromedriver did not answer on {url}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Driver { child, url }
}

/// A browser session (`ASSAY_CHROMIUM`, `/usr/bin/chromium` unless set), headless, in a laptop's
/// window.
pub async fn browser(driver: &Driver) -> Client {
    let chromium = std::env::var("ASSAY_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            // As root, without a sandbox; no background connections (the network is closed).
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--no-first-run", "--disable-quic", "--window-size=1366,900"]
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector).capabilities(caps).connect(&driver.url).await.expect("a browser session")
}

/// Runs `steps` in a fresh headless Chromium session, given the base URL of a server listening
/// on `addr`; the browser and chromedriver stop after.
pub fn with_browser<F: std::future::Future<Output = ()>>(addr: &str, steps: impl FnOnce(Client, String) -> F) {
    let base = format!("http://{addr}");
    let driver = driver();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let client = browser(&driver).await;
        steps(client, base).await;
    });
}

/// How long a page took, from the browser's Navigation Timing: until the server's answer had
/// arrived whole, and until the page was loaded (parsed, styled, its charts drawn: the `load`
/// event), in milliseconds; and its size as transferred, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub response_ms: f64,
    pub loaded_ms: f64,
    pub bytes: f64,
}

/// Opens `url` (returning once the page has loaded) and reads its timing.
pub async fn load(client: &Client, url: &str) -> Timing {
    client.goto(url).await.unwrap_or_else(|e| panic!("{url}: {e}"));
    let t = client
        .execute(
            "const n = performance.getEntriesByType('navigation')[0]; \
             return [n.responseEnd - n.startTime, n.loadEventEnd - n.startTime, n.transferSize];",
            vec![],
        )
        .await
        .expect("navigation timing");
    let at = |i: usize| t[i].as_f64().unwrap_or(f64::NAN);
    Timing { response_ms: at(0), loaded_ms: at(1), bytes: at(2) }
}

/// Where screenshots go: `target/ui-screenshots/` (under `CARGO_TARGET_DIR` when set).
pub fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("ui-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    dir
}

/// Waits, up to ten seconds, for a navigation that a click started: until the browser's URL is
/// one whose path and query `arrived` accepts and that page has loaded. A click returns once
/// the browser has the event, which can be before the new page is there.
pub async fn arrive(client: &Client, arrived: impl Fn(&str, Option<&str>) -> bool) {
    let started = Instant::now();
    loop {
        let url = client.current_url().await.expect("url");
        if arrived(url.path(), url.query()) {
            let ready = client.execute("return document.readyState", vec![]).await.expect("readyState");
            if ready == "complete" {
                return;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the browser stayed at {url}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
