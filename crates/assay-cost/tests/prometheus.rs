//! A real Prometheus (Debian's package, which `scripts/test.sh` installs), loaded with
//! backfilled usage through `promtool tsdb create-blocks-from openmetrics`, answers assay's
//! range queries; a bad query and a Prometheus that is gone are named.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use assay_cost::prometheus::{Client, Endpoint, Error};

/// A Prometheus serving backfilled blocks, stopped when dropped.
struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Starts Prometheus over `openmetrics` (the OpenMetrics text, ending with `# EOF`).
fn prometheus(openmetrics: &str) -> Prometheus {
    let dir = tempfile::tempdir().expect("tempdir");
    let om = dir.path().join("usage.om");
    std::fs::write(&om, openmetrics).expect("write");
    let data = dir.path().join("data");
    let made = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&data)
        .output()
        .expect("promtool (scripts/test.sh installs Debian's prometheus package)");
    assert!(made.status.success(), "promtool: {}", String::from_utf8_lossy(&made.stderr));
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1h\n").expect("write");
    let port = free_port();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--storage.tsdb.retention.time=100y")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus (scripts/test.sh installs Debian's prometheus package)");
    let url = format!("http://127.0.0.1:{port}");
    let p = Prometheus { child, url, _dir: dir };
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    for _ in 0..200 {
        if agent.get(&format!("{}/-/ready", p.url)).call().is_ok_and(|r| r.status() == 200) {
            return p;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("Prometheus did not become ready at {}", p.url);
}

const START: i64 = 1_764_547_200; // 2025-12-01T00:00:00Z

/// Two days of a container's CPU counter at a steady 0.25 cores, every 5 minutes.
fn steady_cpu() -> String {
    let mut out = String::from(
        "# HELP container_cpu_usage_seconds_total CPU\n# TYPE container_cpu_usage_seconds_total counter\n",
    );
    for i in 0..576i64 {
        let value = 0.25 * 300.0 * i as f64;
        out.push_str(&format!(
            "container_cpu_usage_seconds_total{{namespace=\"ml-serving\",pod=\"llm-inference-7d9f-x2\",container=\"server\"}} {value} {}\n",
            START + 300 * i
        ));
    }
    out.push_str("# EOF\n");
    out
}

#[test]
fn range_queries_are_answered_and_failures_named() {
    let p = prometheus(&steady_cpu());
    let client = Client::new(Endpoint { url: p.url.clone(), ..Endpoint::default() }).expect("client");
    let series = client
        .query_range(
            "rate(container_cpu_usage_seconds_total{namespace=\"ml-serving\"}[15m])",
            START + 3600,
            START + 86_400,
            300,
        )
        .expect("query");
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].labels.get("container").map(String::as_str), Some("server"));
    assert!(series[0].samples.len() > 250, "{}", series[0].samples.len());
    assert!(series[0].samples.iter().all(|(_, v)| (v - 0.25).abs() < 1e-9), "{:?}", &series[0].samples[..3]);
    assert_eq!(client.queries.load(std::sync::atomic::Ordering::Relaxed), 1);

    match client.query_range("rate(container_cpu_usage_seconds_total[", START, START + 3600, 300) {
        Err(Error::Query { query, kind, message }) => {
            assert_eq!(kind, "bad_data");
            assert!(query.starts_with("rate(") && message.contains("parse error"), "{message}");
        }
        other => panic!("a bad query: {other:?}"),
    }
    let url = p.url.clone();
    drop(p);
    match client.query_range("up", START, START + 3600, 300) {
        Err(e @ Error::Unreachable { .. }) => assert!(e.to_string().starts_with(&url), "{e}"),
        other => panic!("Prometheus gone: {other:?}"),
    }
}
