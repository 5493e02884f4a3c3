//! A real Prometheus (Debian's package, which `scripts/test.sh` installs) serving usage
//! backfilled through `promtool tsdb create-blocks-from openmetrics`, stopped when dropped.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running Prometheus.
pub struct Prometheus {
    child: Child,
    /// Its base URL.
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts Prometheus over `openmetrics` (OpenMetrics text ending with `# EOF`).
pub fn start(openmetrics: &str) -> Prometheus {
    let dir = tempfile::tempdir().expect("tempdir");
    let om = dir.path().join("usage.om");
    std::fs::write(&om, openmetrics).expect("write");
    start_from(dir, &om)
}

/// Starts Prometheus over the OpenMetrics file `om`, keeping its data in `dir`.
pub fn start_from(dir: tempfile::TempDir, om: &std::path::Path) -> Prometheus {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let ready = move |url: &str| agent.get(&format!("{url}/-/ready")).call().is_ok_and(|r| r.status() == 200);
    start_with(dir, om, None, "http", &ready)
}

/// Starts Prometheus over `om` with a web configuration (`--web.config.file`: TLS, basic
/// authentication), at `scheme://localhost:PORT`; `ready` says when it answers.
pub fn start_with(
    dir: tempfile::TempDir,
    om: &std::path::Path,
    web_config: Option<&str>,
    scheme: &str,
    ready: &dyn Fn(&str) -> bool,
) -> Prometheus {
    let data = dir.path().join("data");
    let made = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(om)
        .arg(&data)
        .output()
        .expect("promtool (scripts/test.sh installs Debian's prometheus package)");
    assert!(made.status.success(), "promtool: {}", String::from_utf8_lossy(&made.stderr));
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1h\n").expect("write");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let mut command = Command::new("prometheus");
    command
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--storage.tsdb.retention.time=100y");
    if let Some(web) = web_config {
        let path = dir.path().join("web.yml");
        std::fs::write(&path, web).expect("write");
        command.arg(format!("--web.config.file={}", path.display()));
    }
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus (scripts/test.sh installs Debian's prometheus package)");
    let host = if scheme == "http" { "127.0.0.1" } else { "localhost" };
    let p = Prometheus { child, url: format!("{scheme}://{host}:{port}"), _dir: dir };
    for _ in 0..300 {
        if ready(&p.url) {
            return p;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("Prometheus did not become ready at {}", p.url);
}

/// OpenMetrics text being written: families declared once, samples added in any order.
#[derive(Default)]
pub struct OpenMetrics {
    families: std::collections::BTreeMap<String, (String, Vec<String>)>,
}

impl OpenMetrics {
    /// Adds a sample of `metric` (`counter` or `gauge`) with `labels` (`k="v",…`) at `t`.
    pub fn sample(&mut self, metric: &str, kind: &str, labels: &str, value: f64, t: i64) {
        let family = self.families.entry(metric.to_string()).or_insert_with(|| (kind.to_string(), Vec::new()));
        family.1.push(format!("{metric}{{{labels}}} {value} {t}"));
    }

    /// The text, ending with `# EOF`. Each series' samples stay in the order they were added.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (name, (kind, lines)) in &self.families {
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            for l in lines {
                out.push_str(l);
                out.push('\n');
            }
        }
        out.push_str("# EOF\n");
        out
    }
}
