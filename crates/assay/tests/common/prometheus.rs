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
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--storage.tsdb.retention.time=100y")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus (scripts/test.sh installs Debian's prometheus package)");
    let p = Prometheus { child, url: format!("http://127.0.0.1:{port}"), _dir: dir };
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    for _ in 0..300 {
        if agent.get(&format!("{}/-/ready", p.url)).call().is_ok_and(|r| r.status() == 200) {
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
