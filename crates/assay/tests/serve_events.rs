//! `assay serve` events and transport: CloudEvents in structured, binary and batched mode judged
//! by the example estate's event policy; alerts and quarantine requests that reach a receiver
//! which was down, across a server restart; `data.system.log.mask`; admission over TLS with the
//! certificate replaced while the server runs.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use common::server::{Receiver, Server, estate_copy as estate, eventually, free_port, keyed_ledger};
use common::{assay, stdout};
use serde_json::{Value, json};

fn ledger_records(dir: &Path) -> Vec<Value> {
    let shown = stdout(&assay(dir, &["log", "show", "ledger", "--json"]));
    shown.lines().map(|l| serde_json::from_str::<Value>(l).expect("json")["json"].clone()).collect()
}

/// A CloudTrail CopyObject record.
fn copy_record(from: &str, to: &str) -> Value {
    json!({
        "eventVersion": "1.09",
        "eventSource": "s3.amazonaws.com",
        "eventName": "CopyObject",
        "awsRegion": "us-east-1",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/alice"},
        "requestParameters": {
            "bucketName": to,
            "key": "exports/customers.parquet",
            "x-amz-copy-source": format!("{from}/raw/customers.parquet")
        }
    })
}

fn cloud_event(id: &str, from: &str, to: &str) -> Value {
    json!({
        "specversion": "1.0",
        "id": id,
        "source": "aws.s3",
        "type": "aws.cloudtrail.api-call",
        "subject": format!("{to}/exports/customers.parquet"),
        "time": "2026-11-23T10:00:00Z",
        "datacontenttype": "application/json",
        "data": copy_record(from, to)
    })
}

fn outbox(server: &Server) -> Value {
    server.json("GET", "/v1/status", &Value::Null).1["outbox"].clone()
}

#[test]
fn cloud_events_raise_alerts_that_reach_a_receiver_that_was_down_across_a_restart() {
    let work = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let dir = estate(
        work.path(),
        &format!(
            "actions:\n  alerts: [\"http://127.0.0.1:{port}/alerts\"]\n  quarantine: \"http://127.0.0.1:{port}/quarantine\"\n"
        ),
    );
    keyed_ledger(work.path());
    let args = ["--estate", dir.to_str().expect("path"), "--data", "data", "--ledger", "ledger", "--ledger-key", "k"];
    let server = Server::launch(work.path(), &args);

    // Structured mode: GDPR data copied from the EU to the US.
    let body = cloud_event("evt-1", "acme-customer-data-eu", "acme-analytics-us").to_string();
    let (status, text) = server.request("POST", "/v1/events", Some("application/cloudevents+json"), body.as_bytes());
    assert_eq!(status, 200, "{text}");
    let answer: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(answer["id"], "evt-1");
    assert_eq!(answer["findings"][0]["severity"], "high", "{answer}");
    assert!(answer["findings"][0]["msg"].as_str().unwrap_or("").contains("acme-customer-data-eu (eu-west-1)"));
    assert_eq!((answer["alerts"].clone(), answer["quarantine_requests"].clone()), (json!(1), json!(1)));

    // Binary mode: the same kind of record as the body, attributes in ce-* headers.
    let record = copy_record("acme-customer-data-eu", "somebody-elses-bucket").to_string();
    let (status, text) = server.send(
        "POST",
        "/v1/events",
        &[
            ("content-type", "application/json"),
            ("ce-specversion", "1.0"),
            ("ce-id", "evt-2"),
            ("ce-source", "aws.s3"),
            ("ce-type", "aws.cloudtrail.api-call"),
            ("ce-time", "2026-11-23T10:01:00Z"),
        ],
        record.as_bytes(),
    );
    assert_eq!(status, 200, "{text}");
    let answer: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(answer["id"], "evt-2");
    assert_eq!(answer["findings"][0]["severity"], "medium", "{answer}");
    assert_eq!((answer["alerts"].clone(), answer["quarantine_requests"].clone()), (json!(1), json!(0)));

    // Batched mode: one copy within the EU (fine), one to the US (a finding).
    let batch = json!([
        cloud_event("evt-3", "acme-customer-data-eu", "acme-features-eu"),
        cloud_event("evt-4", "acme-features-eu", "acme-analytics-us"),
    ])
    .to_string();
    let (status, text) =
        server.request("POST", "/v1/events", Some("application/cloudevents-batch+json"), batch.as_bytes());
    assert_eq!(status, 200, "{text}");
    let answer: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(answer["events"][0]["findings"], json!([]), "{answer}");
    assert_eq!(answer["events"][1]["findings"].as_array().map(Vec::len), Some(1), "{answer}");

    // Bad requests are answered and nothing is queued for them.
    let (status, text) = server.request("POST", "/v1/events", Some("text/plain"), b"copied");
    assert_eq!(status, 415, "{text}");
    let (status, text) = server.request("POST", "/v1/events", Some("application/cloudevents+json"), b"{\"id\": ");
    assert_eq!(status, 400, "{text}");
    let (status, text) = server.request(
        "POST",
        "/v1/events",
        Some("application/cloudevents+json"),
        br#"{"specversion":"1.0","id":"x","type":"t"}"#,
    );
    assert_eq!(status, 400);
    assert!(text.contains("no source"), "{text}");

    // The receiver is down: 3 alerts and 2 quarantine requests wait, and delivery is retried.
    let waiting = eventually(Duration::from_secs(10), || {
        let o = outbox(&server);
        (o["pending"] == 5 && o["failed_attempts"].as_u64().unwrap_or(0) >= 1).then_some(o)
    });
    assert!(waiting.is_some(), "{}", outbox(&server));
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");

    // The server comes back, then the receiver: every message arrives.
    let server = Server::launch(work.path(), &args);
    assert_eq!(outbox(&server)["pending"], 5);
    let receiver = Receiver::listen(port);
    let all = eventually(Duration::from_secs(30), || {
        let got = receiver.got.lock().expect("got").clone();
        let ids: std::collections::BTreeSet<String> =
            got.iter().filter_map(|(_, v)| v["id"].as_str().map(str::to_string)).collect();
        (ids.len() >= 5).then_some(got)
    });
    let got = all.unwrap_or_else(|| panic!("not every message arrived: {:?}", receiver.got.lock().expect("got")));
    let alerts: Vec<&Value> = got.iter().filter(|(p, _)| p == "/alerts").map(|(_, v)| v).collect();
    let quarantines: Vec<&Value> = got.iter().filter(|(p, _)| p == "/quarantine").map(|(_, v)| v).collect();
    let events: std::collections::BTreeSet<&str> =
        alerts.iter().filter_map(|a| a["data"]["event"]["id"].as_str()).collect();
    assert_eq!(events.into_iter().collect::<Vec<_>>(), ["evt-1", "evt-2", "evt-4"]);
    for a in &alerts {
        assert_eq!(a["specversion"], "1.0");
        assert_eq!(a["type"], "dev.assay.alert.v1");
        assert_eq!(a["source"], "assay/serve");
        assert!(a["data"]["finding"]["msg"].is_string(), "{a}");
    }
    let quarantined: std::collections::BTreeSet<&str> =
        quarantines.iter().filter_map(|q| q["data"]["event"]["id"].as_str()).collect();
    assert_eq!(quarantined.into_iter().collect::<Vec<_>>(), ["evt-1", "evt-4"]);
    for q in &quarantines {
        assert_eq!(q["type"], "dev.assay.quarantine.requested.v1");
        assert_eq!(q["subject"], "arn:aws:s3:::acme-analytics-us/exports/customers.parquet");
    }
    let drained = eventually(Duration::from_secs(10), || (outbox(&server)["pending"] == 0).then_some(()));
    assert!(drained.is_some(), "{}", outbox(&server));
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");

    // Every event and finding is in the ledger.
    let records = ledger_records(work.path());
    let events: Vec<&Value> = records.iter().filter(|r| r["path"] == "assay/events").collect();
    assert_eq!(events.len(), 4, "{records:?}");
    let findings: Vec<&Value> = records.iter().filter(|r| r["type"] == "assay.dev/record/finding/v2").collect();
    assert_eq!(findings.len(), 3);
    assert!(findings.iter().all(|f| f["decision_id"].as_str().is_some_and(|id| id.len() == 36)));
}

#[test]
fn decision_records_are_masked_by_the_system_log_mask_policy() {
    let work = tempfile::tempdir().expect("tempdir");
    let dir = estate(work.path(), "");
    std::fs::create_dir_all(dir.join("policies/system")).expect("mkdir");
    std::fs::write(
        dir.join("policies/system/mask.rego"),
        "package system.log\n\nimport rego.v1\n\nmask contains \"/input/user/token\"\n\n\
         mask contains {\"op\": \"upsert\", \"path\": \"/input/user/email\", \"value\": \"**REDACTED**\"} if {\n\
         \tinput.input.user.email\n}\n",
    )
    .expect("write");
    keyed_ledger(work.path());
    let server = Server::launch(
        work.path(),
        &[
            "--estate",
            dir.to_str().expect("path"),
            "--ledger",
            "ledger",
            "--ledger-key",
            "k",
            "--decision-inputs",
            "masked",
        ],
    );
    let input = json!({"input": {
        "action": "store", "region": "eu-west-1", "data": {"classification": "GDPR_SENSITIVE"},
        "user": {"name": "alice", "token": "s3cr3t", "email": "alice@example.com"}
    }});
    let (status, answer) = server.json("POST", "/v1/data/authz/residency/allow", &input);
    assert_eq!((status, answer["result"].clone()), (200, json!(true)));
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");
    let records = ledger_records(work.path());
    let decision = records.iter().find(|r| r["path"] == "authz/residency/allow").expect("the decision");
    assert_eq!(decision["input"]["user"], json!({"name": "alice", "email": "**REDACTED**"}), "{decision}");
    assert_eq!(decision["erased"], json!(["/input/user/token"]));
    assert_eq!(decision["masked"], json!(["/input/user/email"]));
    assert!(!records.iter().any(|r| r.to_string().contains("s3cr3t")));
}

struct Pki {
    ca_der: Vec<u8>,
    cert_pem: String,
    key_pem: String,
}

/// A CA and a certificate for `localhost` signed by it.
fn pki(name: &str) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, name);
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("key");
    let cert =
        CertificateParams::new(vec!["localhost".to_string()]).expect("params").signed_by(&key, &issuer).expect("cert");
    Pki { ca_der: ca.der().to_vec(), cert_pem: cert.pem(), key_pem: key.serialize_pem() }
}

fn admission(uid: &str, labels: Value) -> Value {
    common::server::namespace_review(uid, labels)
}

#[test]
fn admission_over_tls_with_the_certificate_replaced_while_serving() {
    let work = tempfile::tempdir().expect("tempdir");
    let first = pki("assay test CA one");
    std::fs::write(work.path().join("tls.crt"), &first.cert_pem).expect("write");
    std::fs::write(work.path().join("tls.key"), &first.key_pem).expect("write");
    let server = Server::start(work.path(), &["--tls-cert", "tls.crt", "--tls-key", "tls.key"]);
    assert!(server.https);
    let server = server.trusting(first.ca_der.clone());
    let (status, answer) = server.json("POST", "/v1/admission", &admission("tls-1", json!({"owner": "ml-team"})));
    assert_eq!(status, 200);
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    let (_, answer) = server.json("POST", "/v1/admission", &admission("tls-2", json!({})));
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    assert_eq!(answer["response"]["status"]["code"], 403);
    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut stream = std::net::TcpStream::connect(&server.addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").expect("write");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    assert!(!raw.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&raw));

    // The certificate is replaced on disk (as cert-manager does): new connections get the new one.
    let second = pki("assay test CA two");
    std::fs::write(work.path().join("tls.key"), &second.key_pem).expect("write");
    std::fs::write(work.path().join("tls.crt"), &second.cert_pem).expect("write");
    let server = server.trusting(second.ca_der.clone());
    let reloaded = eventually(Duration::from_secs(15), || server.try_send("GET", "/health", &[], b"").ok());
    assert_eq!(reloaded.map(|(s, _)| s), Some(200), "{}", server.log());
    assert!(server.log().contains("TLS certificate reloaded"), "{}", server.log());
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");
}
