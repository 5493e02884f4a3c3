//! The billing store on object storage (`--data s3://bucket/prefix`), against an S3-compatible
//! server (moto): ingestion uploads partitions, a re-export replaces its partition whole, every
//! query of the billing benchmark answers as it does from local disk, also on a Ballista
//! cluster of separate processes (`--cluster`), and a server that hangs or goes away is named
//! in a clear error.

mod common;

use std::path::Path;
use std::process::Output;

use common::s3::{Fault, Proxy, S3};
use common::{assay_env, stderr, stdout};

fn ok(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(0), "{}\n{}", stdout(out), stderr(out));
    stdout(out)
}

/// Lines of CSV output, sorted (queries without ORDER BY may come in any order).
fn sorted(csv: &str) -> Vec<String> {
    let mut lines: Vec<String> = csv.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

fn csv_files(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .expect("generated")
        .flatten()
        .map(|e| e.path().display().to_string())
        .filter(|p| p.ends_with(".csv"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_billing_store_on_s3_answers_as_on_local_disk() {
    let s3 = S3::start("bills");
    let env = s3.env();
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    ok(&assay_env(dir, &[], &["cost", "generate", "--days", "70", "--start", "2026-01-01", "--out", "gen"]));
    let files = csv_files(&dir.join("gen"));
    let remote = "s3://bills/acme/billing";
    for data in ["local", remote] {
        let mut args = vec!["cost", "--data", data, "ingest"];
        args.extend(files.iter().map(String::as_str));
        ok(&assay_env(dir, &env, &args));
    }
    // The partitions are objects in the bucket, and nothing is left staged on local disk.
    let (status, listing) =
        common::server::http(&format!("127.0.0.1:{}", s3.port), "GET", "/bills?list-type=2&prefix=acme/", &[], b"");
    assert_eq!(status, 200, "{listing}");
    assert!(listing.contains("acme/billing/focus/billing_period=2026-01/account-"), "{listing}");
    assert_eq!(listing.matches("<Key>").count(), 3 * 3, "three months of three accounts: {listing}");
    let staged: Vec<_> = walk(&dir.join("assay-data/focus"));
    assert!(staged.is_empty(), "left on local disk: {staged:?}");

    let month = |data: &str| {
        let out = ok(&assay_env(
            dir,
            &env,
            &[
                "cost",
                "--data",
                data,
                "query",
                "SELECT date_trunc('month', max(ChargePeriodStart)) FROM focus",
                "--format",
                "csv",
            ],
        ));
        out.lines().nth(1).expect("a row").get(..10).expect("a day").to_string()
    };
    let start = month("local");
    assert_eq!(month(remote), start);
    let queries = [
        "SELECT SUM(EffectiveCost) FROM focus".to_string(),
        "SELECT date_trunc('day', ChargePeriodStart) AS day, ServiceName, BillingAccountId, SUM(EffectiveCost) AS cost FROM focus GROUP BY 1, 2, 3".into(),
        "SELECT ResourceId, SUM(EffectiveCost) AS cost FROM focus GROUP BY 1 ORDER BY cost DESC LIMIT 20".into(),
        format!("SELECT Tags['cost-center'] AS CostCenter, SUM(EffectiveCost) AS Cost FROM focus WHERE ChargePeriodStart >= '{start}' AND Tags['team'] = 'research' GROUP BY 1 ORDER BY Cost DESC"),
        "SELECT CommitmentDiscountId, SUM(CASE WHEN CommitmentDiscountStatus = 'Used' THEN EffectiveCost ELSE 0 END) / SUM(EffectiveCost) AS Utilization, SUM(EffectiveCost) AS Cost FROM focus WHERE CommitmentDiscountId IS NOT NULL GROUP BY CommitmentDiscountId".into(),
    ];
    // A Ballista cluster of one scheduler and two executors, each its own process, reading the
    // bucket with the same environment.
    let cluster = Cluster::start(dir, &env);
    let on_cluster = ["--cluster", cluster.url.as_str()];
    // Scans split into more tasks than one executor has slots, as a cluster's would.
    let mut env = env.clone();
    env.push(("DATAFUSION_EXECUTION_TARGET_PARTITIONS", "8".into()));
    for sql in &queries {
        let answer = |data: &str, extra: &[&str]| {
            let mut all = vec!["cost", "--data", data];
            all.extend(extra);
            all.extend(["query", sql.as_str(), "--format", "csv"]);
            ok(&assay_env(dir, &env, &all))
        };
        let local = answer("local", &[]);
        assert!(local.lines().count() > 1, "{sql} has rows");
        assert_eq!(sorted(&answer(remote, &[])), sorted(&local), "{sql}");
        assert_eq!(sorted(&answer(remote, &on_cluster)), sorted(&local), "{sql} on the cluster");
    }
    for args in [
        ["report", "--by", "ServiceName,tag:team", "--format", "json"],
        ["anomalies", "--format", "json", "--since", "2026-01-01"],
    ] {
        let answer = |data: &str, extra: &[&str]| {
            let mut all = vec!["cost", "--data", data];
            all.extend(extra);
            all.extend(args);
            ok(&assay_env(dir, &env, &all))
        };
        let local = answer("local", &[]);
        assert_eq!(answer(remote, &[]), local, "{args:?}");
        assert_eq!(answer(remote, &on_cluster), local, "{args:?} on the cluster");
    }
    // The work was spread over both executors.
    let tasks = Cluster::tasks(dir);
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    assert!(tasks.iter().all(|&n| n > 0), "each executor ran tasks: {tasks:?}");
    // The queries above went through the cluster: without its scheduler they fail, naming it.
    let url = cluster.url.clone();
    drop(cluster);
    let out =
        assay_env(dir, &env, &["cost", "--data", remote, "--cluster", &url, "query", "SELECT 1", "--format", "csv"]);
    assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stderr(&out).contains(&url), "names the cluster: {}", stderr(&out));

    // A provider's re-export of one month replaces that month's partitions whole.
    let january = files.iter().find(|f| f.ends_with("2026-01.csv")).expect("January");
    let text = std::fs::read_to_string(january).expect("read");
    let half: Vec<&str> = text.lines().take(1 + (text.lines().count() - 1) / 2).collect();
    let restated = dir.join("restated-2026-01.csv");
    std::fs::write(&restated, half.join("\n") + "\n").expect("write");
    let rows = |data: &str| {
        let sql = "SELECT count(*) FROM focus WHERE billing_period = '2026-01'";
        ok(&assay_env(dir, &env, &["cost", "--data", data, "query", sql, "--format", "csv"]))
    };
    let before = rows(remote);
    for data in ["local", remote] {
        ok(&assay_env(dir, &env, &["cost", "--data", data, "ingest", restated.to_str().expect("path")]));
    }
    assert_ne!(rows(remote), before);
    assert_eq!(rows(remote), rows("local"));
}

/// A Ballista scheduler and two executors (`assay cost cluster …`) on loopback.
struct Cluster {
    url: String,
    nodes: Vec<std::process::Child>,
}

impl Cluster {
    fn start(dir: &Path, env: &[(&'static str, String)]) -> Cluster {
        use common::server::free_port;
        let spawn = |name: String, args: &[&str]| {
            // What a node logs goes to `NAME.log` (the executors log each task they run).
            let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("a log file");
            std::process::Command::new(env!("CARGO_BIN_EXE_assay"))
                .args(args)
                .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
                .env("ASSAY_LOG", "info")
                .current_dir(dir)
                .stdout(std::process::Stdio::null())
                .stderr(log)
                .spawn()
                .expect("starting a cluster node")
        };
        let listening = |port: u16| {
            let started = std::time::Instant::now();
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(started.elapsed() < std::time::Duration::from_secs(60), "nothing listens on {port}");
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        };
        let scheduler = free_port();
        let mut nodes = vec![spawn(
            "scheduler".into(),
            &["cost", "cluster", "scheduler", "--addr", &format!("127.0.0.1:{scheduler}")],
        )];
        listening(scheduler);
        for i in 0..2 {
            let (flight, grpc) = (free_port(), free_port());
            nodes.push(spawn(
                format!("executor-{i}"),
                &[
                    "cost",
                    "cluster",
                    "executor",
                    "--scheduler",
                    &format!("127.0.0.1:{scheduler}"),
                    "--addr",
                    &format!("127.0.0.1:{flight}"),
                    "--grpc-port",
                    &grpc.to_string(),
                    "--concurrency",
                    "2",
                    "--memory-limit",
                    "1GiB",
                ],
            ));
            listening(flight);
            listening(grpc);
        }
        Cluster { url: format!("df://127.0.0.1:{scheduler}"), nodes }
    }

    /// How many tasks each executor finished, from its log.
    fn tasks(dir: &Path) -> Vec<usize> {
        let mut logs: Vec<_> = std::fs::read_dir(dir)
            .expect("dir")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("executor-"))
            .map(|e| std::fs::read_to_string(e.path()).expect("log"))
            .collect();
        logs.sort();
        logs.iter().map(|l| l.matches("Finished task").count()).collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn an_object_store_that_hangs_or_is_gone_is_named_by_queries_and_ingests() {
    let mut s3 = S3::start("bills");
    let proxy = Proxy::start(s3.port);
    let env = s3.env_via(&proxy, "2s");
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    ok(&assay_env(dir, &[], &["cost", "generate", "--days", "20", "--start", "2026-03-01", "--out", "gen"]));
    let files = csv_files(&dir.join("gen"));
    let remote = "s3://bills/acme";
    let mut args = vec!["cost", "--data", remote, "ingest"];
    args.extend(files.iter().map(String::as_str));
    ok(&assay_env(dir, &env, &args));
    let total = || {
        assay_env(
            dir,
            &env,
            &["cost", "--data", remote, "query", "SELECT SUM(EffectiveCost) FROM focus", "--format", "csv"],
        )
    };
    let before = ok(&total());
    assert_eq!(before.lines().count(), 2, "a header and the total: {before}");

    // A store that accepts connections and never answers: each request times out, is retried
    // for a bounded time, and the query fails naming the store rather than hanging.
    proxy.set(Fault::Stall);
    let started = std::time::Instant::now();
    let out = total();
    assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stderr(&out).contains("s3://bills/acme"), "names the store: {}", stderr(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(120), "gives up: {:?}", started.elapsed());
    proxy.set(Fault::None);
    assert_eq!(ok(&total()), before, "answers again once the store does");

    s3.stop();
    let out = total();
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("s3://bills/acme"), "names the store: {}", stderr(&out));
    let out = assay_env(dir, &env, &args);
    assert_ne!(out.status.code(), Some(0), "an ingest that cannot upload fails: {}", stdout(&out));
    let err = format!("{}{}", stdout(&out), stderr(&out));
    assert!(err.contains("s3://bills/acme/focus/billing_period=2026-03"), "names the partition: {err}");
}
