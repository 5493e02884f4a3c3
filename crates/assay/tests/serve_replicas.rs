//! Several `assay serve` replicas on one PostgreSQL database (`--database`): lineage sent to
//! either is visible from both; residency findings are alerted once each, even when a replica
//! is killed mid-way; PostgreSQL going away makes replicas not ready and loses nothing they
//! acknowledged.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use assay_store::testing::TempPostgres;
use common::s3::{Fault, Proxy, S3};
use common::server::{Receiver, Server, eventually, flow, free_port, residency_estate};
use serde_json::Value;

/// The alerts the receiver got, by CloudEvent id: how many times each came.
fn alert_counts(receiver: &Receiver) -> HashMap<String, usize> {
    let got = receiver.got.lock().expect("got");
    let mut counts = HashMap::new();
    for (_, v) in got.iter().filter(|(_, v)| v["data"]["kind"] == "residency") {
        *counts.entry(v["data"]["key"].as_str().unwrap_or("").to_string()).or_insert(0) += 1;
    }
    counts
}

fn ids(answer: &Value) -> Vec<String> {
    answer["graph"]
        .as_array()
        .map_or_else(Vec::new, |g| g.iter().filter_map(|n| n["id"].as_str().map(str::to_string)).collect())
}

#[test]
fn two_replicas_share_the_graph_and_alert_each_finding_once_across_a_kill() {
    let pg = TempPostgres::start();
    let url = pg.database("assay");
    let work = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let receiver = Receiver::listen(port);
    residency_estate(work.path(), Some(port));
    let replica = |data: &str| Server::launch(work.path(), &["--estate", "estate", "--data", data, "--database", &url]);
    let a = replica("a");
    let b = replica("b");

    // Sent to one, seen by both.
    let (status, answer) =
        a.json("POST", "/api/v1/lineage", &flow(1, "clean", ("s3://customers-eu", "raw"), ("s3://lake-eu", "clean")));
    assert_eq!(status, 201, "{answer}");
    let (status, answer) = b.json("GET", "/api/v1/lineage?nodeId=dataset:s3://lake-eu:clean&depth=2", &Value::Null);
    assert_eq!(status, 200, "{answer}");
    assert!(ids(&answer).contains(&"job:airflow:clean".to_string()), "{answer}");

    // 500 training runs in the US on EU customer data, each a finding where it runs and one
    // where it stores: 1,000 findings, sent half to each replica.
    for i in 0..500u32 {
        let mut e = flow(
            10,
            &format!("train_{i}"),
            ("s3://customers-eu", &format!("raw_{i}")),
            ("s3://models-us", &format!("model_{i}")),
        );
        e["run"]["runId"] = format!("0192f0c4-8a57-7d3c-b1a5-{:012}", 1000 + i).into();
        let to = if i % 2 == 0 { &a } else { &b };
        let (status, answer) = to.json("POST", "/api/v1/lineage", &e);
        assert_eq!(status, 201, "{answer}");
    }
    // Replica A dies without a word once alerts are flowing.
    eventually(Duration::from_secs(120), || (alert_counts(&receiver).len() >= 100).then_some(()))
        .unwrap_or_else(|| panic!("alerts began to flow\nA:\n{}\nB:\n{}", a.log(), b.log()));
    let mut a = a;
    a.child.kill().expect("SIGKILL");
    let at_kill = alert_counts(&receiver).len();
    assert!(at_kill < 1000, "A was killed before every alert was out ({at_kill})");
    a.child.wait().expect("wait");
    let counts = eventually(Duration::from_secs(180), || {
        let c = alert_counts(&receiver);
        (c.len() >= 1000).then_some(c)
    })
    .unwrap_or_else(|| panic!("1,000 findings alerted, got {}\nB:\n{}", alert_counts(&receiver).len(), b.log()));
    // A message A held when it died is sent again once its claim lapses; give that time.
    std::thread::sleep(Duration::from_secs(20));
    let counts = alert_counts(&receiver).into_iter().chain(counts).collect::<HashMap<_, _>>();
    assert_eq!(counts.len(), 1000, "one alert per finding");
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    // At most the one A was sending when it was killed (the receiver had it; A had not yet
    // written down that it had): at-least-once delivery, with a stable id for receivers.
    assert!(twice.len() <= 1, "alerted more than once: {twice:?}");

    // B answers for the whole graph, A's events too.
    let (status, answer) =
        b.json("GET", "/api/v1/lineage?nodeId=dataset:s3://customers-eu:raw_0&depth=1", &Value::Null);
    assert_eq!(status, 200, "{answer}");
    assert!(ids(&answer).contains(&"job:airflow:train_0".to_string()), "{answer}");
    // The command line reads the same graph.
    let out = common::assay(
        work.path(),
        &["lineage", "--data", &url, "upstream", "dataset:s3://models-us:model_7", "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    assert!(common::stdout(&out).contains("job:airflow:train_7"), "{}", common::stdout(&out));
    let (code, log) = b.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn postgresql_going_away_makes_a_replica_not_ready_and_loses_nothing_it_acknowledged() {
    let pg = TempPostgres::start();
    let url = pg.database("assay");
    let work = tempfile::tempdir().expect("tempdir");
    let server = Server::start(work.path(), &["--data", "data", "--database", &url]);
    let event = |i: u32| {
        let mut e = flow(10, &format!("job_{i}"), ("s3://in", &format!("in_{i}")), ("s3://out", &format!("out_{i}")));
        e["run"]["runId"] = format!("0192f0c4-8a57-7d3c-b1a5-{:012}", 2000 + i).into();
        e
    };
    for i in 0..20 {
        let (status, answer) = server.json("POST", "/api/v1/lineage", &event(i));
        assert_eq!(status, 201, "{answer}");
    }
    let (status, _) = server.request("GET", "/ready", None, b"");
    assert_eq!(status, 200);

    pg.stop();
    // Refused, not acknowledged: the sender keeps the event and sends it again.
    let (status, answer) = server.json("POST", "/api/v1/lineage", &event(20));
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["code"], "store_unavailable", "{answer}");
    assert!(answer["message"].as_str().is_some_and(|m| m.contains("PostgreSQL")), "{answer}");
    let (status, _) = server.json("GET", "/api/v1/lineage?nodeId=dataset:s3://in:in_0", &Value::Null);
    assert_eq!(status, 503);
    let problems = eventually(Duration::from_secs(20), || {
        let (status, body) = server.request("GET", "/ready", None, b"");
        (status == 503).then_some(body)
    })
    .expect("not ready while PostgreSQL is away");
    assert!(problems.contains("cannot be read") && problems.contains("PostgreSQL"), "{problems}");

    pg.start_again();
    eventually(Duration::from_secs(20), || (server.request("GET", "/ready", None, b"").0 == 200).then_some(()))
        .unwrap_or_else(|| panic!("ready again once PostgreSQL is back\n{}", server.log()));
    let (status, answer) = server.json("POST", "/api/v1/lineage", &event(20));
    assert_eq!(status, 201, "{answer}");
    for i in 0..=20 {
        let (status, answer) =
            server.json("GET", &format!("/api/v1/lineage?nodeId=dataset:s3://in:in_{i}&depth=1"), &Value::Null);
        assert_eq!(status, 200, "event {i} was kept: {answer}");
        assert!(ids(&answer).contains(&format!("job:airflow:job_{i}")), "{answer}");
    }
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");
}

/// The decision ids in the ledger at `location`, after checking it verifies.
fn ledger_decisions(work: &std::path::Path, location: &str, env: &[(&'static str, String)]) -> Vec<String> {
    let verify = common::assay_env(work, env, &["log", "verify", location, "--key", "k.pub"]);
    assert_eq!(verify.status.code(), Some(0), "{}{}", common::stdout(&verify), common::stderr(&verify));
    let shown = common::stdout(&common::assay_env(work, env, &["log", "show", location, "--json"]));
    shown
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("json")["json"].clone())
        .filter(|r| r["type"] == "assay.dev/record/decision/v2")
        .filter_map(|r| r["decision_id"].as_str().map(str::to_string))
        .collect()
}

/// Two replicas sharing the ledger at `location`; which of them sequences.
fn replicas_on_one_ledger(
    work: &std::path::Path,
    url: &str,
    location: &str,
    env: &[(&'static str, String)],
) -> ([Server; 2], usize) {
    let replica = |data: &str| {
        Server::start_with_env(
            work,
            &["--data", data, "--database", url, "--ledger", location, "--ledger-key", "k"],
            env,
        )
    };
    let servers = [replica("a"), replica("b")];
    let leader = eventually(Duration::from_secs(20), || {
        let flags: Vec<Value> = servers.iter().map(sequencer).collect();
        (flags.iter().filter(|f| **f == Value::Bool(true)).count() == 1 && flags.iter().all(Value::is_boolean))
            .then(|| flags.iter().position(|f| *f == Value::Bool(true)).expect("one"))
    })
    .expect("exactly one replica sequences");
    (servers, leader)
}

fn sequencer(s: &Server) -> Value {
    s.json("GET", "/v1/status", &Value::Null).1["ledger_sequencer"].clone()
}

/// Asks `s` for a decision that is logged; its decision id.
fn decide(s: &Server) -> String {
    let input = serde_json::json!({"input": {"action": "store", "region": "eu-west-1", "data": {"classification": "GDPR_SENSITIVE"}}});
    let (status, answer) = s.json("POST", "/v1/data/authz/residency/allow", &input);
    assert_eq!(status, 200, "{answer}");
    answer["decision_id"].as_str().expect("a decision id").to_string()
}

/// The sequencer dies without a word; the other takes over and what the dead one answered is
/// in the log all the same. Stops the survivor and checks the log holds exactly `answered`.
fn kill_the_sequencer_and_check(
    servers: [Server; 2],
    leader: usize,
    mut answered: Vec<String>,
    work: &std::path::Path,
    location: &str,
    env: &[(&'static str, String)],
) {
    let [a, b] = servers;
    let (mut dead, survivor) = if leader == 0 { (a, b) } else { (b, a) };
    dead.child.kill().expect("SIGKILL");
    dead.child.wait().expect("wait");
    for _ in 0..200 {
        answered.push(decide(&survivor));
    }
    eventually(Duration::from_secs(20), || (sequencer(&survivor) == Value::Bool(true)).then_some(()))
        .unwrap_or_else(|| panic!("the survivor sequences\n{}", survivor.log()));
    let (code, log) = survivor.stop();
    assert_eq!(code, Some(0), "{log}");
    let logged = ledger_decisions(work, location, env);
    let unique: std::collections::HashSet<&String> = logged.iter().collect();
    assert_eq!(unique.len(), logged.len(), "no decision twice");
    let answered: std::collections::HashSet<&String> = answered.iter().collect();
    assert_eq!(unique, answered, "every answered decision, and only those");
}

#[test]
fn decisions_on_both_replicas_land_once_in_one_ledger_across_a_sequencer_kill() {
    let pg = TempPostgres::start();
    let url = pg.database("assay");
    let work = tempfile::tempdir().expect("tempdir");
    common::server::keyed_ledger(work.path());
    let (servers, leader) = replicas_on_one_ledger(work.path(), &url, "ledger", &[]);
    let answered: Vec<String> = (0..300).map(|i| decide(&servers[i % 2])).collect();
    kill_the_sequencer_and_check(servers, leader, answered, work.path(), "ledger", &[]);
}

#[test]
fn a_ledger_on_object_storage_is_shared_survives_a_store_outage_and_a_sequencer_kill() {
    let pg = TempPostgres::start();
    let url = pg.database("assay");
    let s3 = S3::start("ledgers");
    let proxy = Proxy::start(s3.port);
    let env = s3.env_via(&proxy, "2s");
    let work = tempfile::tempdir().expect("tempdir");
    let location = "s3://ledgers/acme/decisions";
    let out =
        common::assay(work.path(), &["log", "keygen", "decisions.example/log", "--private", "k", "--public", "k.pub"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    let out = common::assay_env(work.path(), &env, &["log", "init", location, "--key", "k"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    // A second init finds the log there and refuses.
    let again = common::assay_env(work.path(), &env, &["log", "init", location, "--key", "k"]);
    assert_eq!(again.status.code(), Some(2), "{}", common::stderr(&again));
    assert!(common::stderr(&again).contains("not empty"), "{}", common::stderr(&again));
    // One replica alone cannot write a ledger on object storage: nothing would elect it.
    let alone = Server::try_launch(work.path(), &["--estate", "x", "--ledger", location, "--ledger-key", "k"]);
    assert!(alone.is_err_and(|log| log.contains("--database postgres://")), "a lone replica is refused");

    let (servers, leader) = replicas_on_one_ledger(work.path(), &url, location, &env);
    let mut answered: Vec<String> = (0..150).map(|i| decide(&servers[i % 2])).collect();
    // Every replica serves the log's tiles from the bucket: the one that does not sequence too.
    let follower = &servers[1 - leader];
    // Each replica also logs the revision it activated.
    let size = |s: &Server| s.json("GET", "/v1/status", &Value::Null).1["ledger_entries"].as_u64().unwrap_or(0);
    let last = std::cell::RefCell::new(String::new());
    let checkpoint = eventually(Duration::from_secs(20), || {
        let (status, body) = follower.send("GET", "/ledger/checkpoint", &[], b"");
        *last.borrow_mut() = format!("{status} {body}");
        let served = body.lines().nth(1).and_then(|l| l.parse::<u64>().ok()).unwrap_or(0);
        (status == 200 && served >= 150 && served == size(&servers[leader])).then_some(body)
    })
    .unwrap_or_else(|| {
        panic!(
            "the follower serves the sequencer's checkpoint; it served {}\n{}\nthe sequencer:\n{}",
            last.borrow(),
            follower.log(),
            servers[leader].log()
        )
    });
    let served = format!("http://{}/ledger", follower.addr);
    let out = common::assay(work.path(), &["log", "verify", &served, "--key", "k.pub"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", common::stdout(&out), common::stderr(&out));
    assert!(checkpoint.starts_with("decisions.example/log\n"), "{checkpoint}");
    let before = size(&servers[leader]);
    // The first tile `assay log verify` fetched from the follower.
    let served_size = checkpoint.lines().nth(1).and_then(|l| l.parse::<u64>().ok()).unwrap_or(0);
    let first_tile = assay_ledger::tiles::paths(served_size)[0].clone();

    // The store hangs, then refuses: decisions are still answered (their records wait in
    // PostgreSQL), and the sequencer says it is not ready, naming the store.
    for fault in [Fault::Stall, Fault::Refuse] {
        proxy.set(fault);
        for i in 0..40 {
            answered.push(decide(&servers[i % 2]));
        }
        let problem = eventually(Duration::from_secs(60), || {
            let (status, body) = servers[leader].send("GET", "/ready", &[], b"");
            (status == 503).then_some(body)
        })
        .unwrap_or_else(|| {
            panic!("the sequencer is not ready while the store fails ({fault:?})\n{}", servers[leader].log())
        });
        assert!(problem.contains("s3://ledgers/acme/decisions"), "{problem}");
        assert_eq!(servers[1 - leader].send("GET", "/ready", &[], b"").0, 200, "the follower still takes decisions");
        // A tile the follower served is served again from memory: it never changes.
        let (status, body) = follower.send("GET", &format!("/ledger/{first_tile}"), &[], b"");
        assert_eq!(status, 200, "{first_tile} while the store fails ({fault:?}): {body}");
    }
    proxy.set(Fault::None);
    eventually(Duration::from_secs(60), || {
        let status = servers[leader].json("GET", "/v1/status", &Value::Null).1;
        (servers[leader].send("GET", "/ready", &[], b"").0 == 200 && status["ledger_entries"] == before + 80)
            .then_some(())
    })
    .unwrap_or_else(|| panic!("the sequencer catches up once the store is back\n{}", servers[leader].log()));
    // Nothing beyond the published checkpoint is served: an unfinished batch's tiles may change.
    let (status, body) = follower.send("GET", "/ledger/tile/0/100", &[], b"");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("beyond the published checkpoint"), "{body}");

    kill_the_sequencer_and_check(servers, leader, answered, work.path(), location, &env);
}

#[test]
fn a_database_that_cannot_be_reached_at_start_is_named_and_the_server_does_not_start() {
    let work = tempfile::tempdir().expect("tempdir");
    // Nothing listens there.
    let url = format!("postgres://assay:s3cret@127.0.0.1:{}/assay", free_port());
    let started = std::time::Instant::now();
    let log = Server::try_launch(
        work.path(),
        &["--estate", common::repo_root().join("examples/estate").to_str().expect("path"), "--database", &url],
    )
    .err()
    .expect("the server does not start without its database");
    assert!(started.elapsed() < Duration::from_secs(60), "it says so promptly: {:?}", started.elapsed());
    assert!(log.contains("127.0.0.1") && log.contains("assay:***@"), "names the database: {log}");
    assert!(!log.contains("s3cret"), "without its password: {log}");
}

#[test]
fn a_new_replica_judges_the_head_against_the_revision_the_others_activated() {
    use common::{DEPLOYMENT_OK, Key, Repo};
    let pg = TempPostgres::start();
    let url = pg.database("assay");
    let alice = Key::new("ed25519", "alice");
    let mallory = Key::new("ed25519", "mallory");
    let repo = Repo::new();
    repo.write(".assay/allowed_signers", &alice.signer_line("alice@example.com"));
    repo.write("assay.yaml", "name: shared-trust\nrequire_signed: true\n");
    repo.write("manifests/web.yaml", DEPLOYMENT_OK);
    let first = repo.commit("the estate, signed by alice", Some(&alice));
    let work = tempfile::tempdir().expect("tempdir");
    let repo_path = repo.path().to_str().expect("path").to_string();
    let replica = |data: &str, database: Option<&str>| {
        let mut args = vec!["--estate", repo_path.as_str(), "--branch", "main", "--data", data, "--poll", "0"];
        args.extend(database.map(|d| ["--database", d]).into_iter().flatten());
        Server::launch(work.path(), &args)
    };
    let revision = |s: &Server| s.json("GET", "/v1/status", &Value::Null).1["estate"]["revision"].clone();
    let a = replica("a", Some(&url));
    assert_eq!(revision(&a), first.as_str());

    // Mallory trusts herself in a commit she signs, and signs another on top: judged by the
    // signers trusted at the active revision, the head is refused.
    let signers = std::fs::read_to_string(repo.path().join(".assay/allowed_signers")).expect("read");
    repo.write(".assay/allowed_signers", &(signers + &mallory.signer_line("mallory@example.com")));
    repo.commit("trust mallory", Some(&mallory));
    repo.write("manifests/other.yaml", DEPLOYMENT_OK);
    let on_top = repo.commit("on top, signed by mallory", Some(&mallory));
    let (_, refreshed) = a.json("POST", "/v1/estate/refresh", &Value::Null);
    assert_eq!(refreshed["outcome"], "refused", "{refreshed}");

    // A new replica (a new pod: nothing in its data directory) judges the head against the
    // revision replica A activated, from the shared database, and refuses it too.
    let b = replica("b", Some(&url));
    let status = b.json("GET", "/v1/status", &Value::Null).1;
    assert_eq!(status["estate"]["revision"], first.as_str(), "{status}");
    assert_eq!(status["refused"][0]["revision"], on_top.as_str(), "{status}");
    // What the shared record prevents: alone, with nothing recorded, a replica judges the head
    // as a first activation (by its parent's signers, which trust Mallory) and enforces it.
    let alone = replica("c", None);
    assert_eq!(revision(&alone), on_top.as_str());
    for s in [a, b, alone] {
        let (code, log) = s.stop();
        assert_eq!(code, Some(0), "{log}");
    }
}

/// On a real S3 server, a sequencer that lost its turn without knowing it (cut off from
/// PostgreSQL, still reaching the bucket) and goes on writing is refused by the store's
/// conditional writes: neither its tiles nor its checkpoint replace what the next sequencer
/// published, and the log verifies as the next one left it.
#[test]
fn on_s3_a_sequencer_that_lost_its_turn_writes_nothing_over_the_log() {
    use assay_ledger::files::Files;
    use assay_ledger::note::NoteSigner;
    use assay_ledger::store::{Log, LogError};
    use std::sync::Arc;

    let s3 = S3::start("fenced");
    let env = s3.env();
    let location = "s3://fenced/acme/decisions";
    let open =
        || -> Arc<dyn Files> { Arc::new(assay_store::objects::Bucket::open_with(location, &env).expect("the bucket")) };
    let signer = NoteSigner::from_seed("decisions.example/log", [7; 32]).expect("key");
    let entries = |who: &str, range: std::ops::Range<u64>| -> Vec<Vec<u8>> {
        range.map(|i| format!("{who} {i}").into_bytes()).collect()
    };
    Log::create_in(open(), signer.clone()).expect("create").append(&entries("first", 0..10)).expect("append");
    let mut stale = Log::open_in(open(), signer.clone()).expect("the old sequencer opens");
    let mut next = Log::open_in(open(), signer.clone()).expect("the next sequencer opens");

    // The same batch size: the old sequencer's tiles and bundle have the names the next one's
    // have, under its published checkpoint.
    next.append(&entries("next", 10..13)).expect("the next sequencer appends");
    let Err(e) = stale.append(&entries("stale", 10..13)) else { panic!("the old sequencer wrote over the tiles") };
    assert!(matches!(&e, LogError::Superseded(name) if name.starts_with(&format!("{location}/tile/"))), "{e}");

    // A different size: its tiles are new names, its checkpoint is refused.
    stale.reload().expect("reload");
    next.append(&entries("next", 13..15)).expect("the next sequencer appends");
    let Err(e) = stale.append(&entries("stale", 13..18)) else { panic!("the old sequencer replaced the checkpoint") };
    assert_eq!(
        e.to_string(),
        format!(
            "{location}/checkpoint was written by another writer meanwhile: this one no longer owns the log and wrote nothing over it"
        )
    );

    // The log is the next sequencer's: 15 entries, verified from the bucket by `assay log verify`.
    let work = tempfile::tempdir().expect("tempdir");
    std::fs::write(work.path().join("k.pub"), signer.verifier().text()).expect("key");
    let out = common::assay_env(work.path(), &env, &["log", "verify", location, "--key", "k.pub"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", common::stdout(&out), common::stderr(&out));
    let reader = assay_ledger::reader::Reader::open_in(open(), Some(&signer.verifier())).expect("the log reads");
    assert_eq!(reader.checkpoint().size, 15);
    assert_eq!(reader.entries(10..15).expect("entries"), entries("next", 10..15));

    // A server without conditional writes is used with AWS_CONDITIONAL_PUT=disabled: the log is
    // written, unfenced.
    let mut unfenced_env = env.clone();
    unfenced_env.push(("AWS_CONDITIONAL_PUT", "disabled".into()));
    let unfenced = assay_store::objects::Bucket::open_with(location, &unfenced_env).expect("the bucket");
    let mut log = Log::open_in(Arc::new(unfenced), signer.clone()).expect("open");
    log.append(&entries("unfenced", 15..20)).expect("an unfenced append");
    let out = common::assay_env(work.path(), &env, &["log", "verify", location, "--key", "k.pub"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", common::stdout(&out), common::stderr(&out));
    assert_eq!(assay_ledger::reader::Reader::open_in(open(), None).expect("read").checkpoint().size, 20);
}
