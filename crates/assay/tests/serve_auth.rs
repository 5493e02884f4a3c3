//! Attacks on an `assay serve` with authentication on: every route that writes or reveals
//! refuses a request without the right credential (bearer tokens, client certificates, Git
//! provider webhook signatures), an authorization policy decides what is left, and a server
//! refuses to listen openly off loopback.

mod common;

use std::time::Duration;

use common::server::{Server, eventually, keyed_ledger};
use common::{assay, stdout};
use serde_json::{Value, json};

const ALL_TOKEN: &str = "all-4f1c9e0b7d2a4c8e9b3f";
const ADMISSION_TOKEN: &str = "admission-8a7d6c5b4e3f2a1b";

fn review(uid: &str) -> Value {
    common::server::namespace_review(uid, json!({"owner": "ml-team"}))
}

fn lineage_event(dataset: &str) -> Value {
    json!({
        "eventType": "COMPLETE",
        "eventTime": "2026-11-23T10:05:00Z",
        "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.40.0/integration/airflow",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": "0192f0c4-8a57-7d3c-b1a5-000000000001"},
        "job": {"namespace": "airflow", "name": "hide"},
        "inputs": [],
        "outputs": [{"namespace": "s3://lake-eu", "name": dataset}]
    })
}

fn cloud_event() -> Value {
    json!({
        "specversion": "1.0", "id": "evt-forged", "source": "aws.s3", "type": "aws.cloudtrail.api-call",
        "time": "2026-11-23T10:00:00Z", "datacontenttype": "application/json", "data": {}
    })
}

/// Every route that writes or reveals: method, path, content type, body.
fn guarded_requests() -> Vec<(&'static str, String, &'static str, Vec<u8>)> {
    let j = |v: Value| v.to_string().into_bytes();
    vec![
        ("POST", "/v1/admission".into(), "application/json", j(review("attack"))),
        ("POST", "/v1/data/authz/residency/allow".into(), "application/json", j(json!({"input": {}}))),
        ("GET", "/v1/data".into(), "application/json", Vec::new()),
        ("POST", "/v0/data/authz/residency/allow".into(), "application/json", j(json!({}))),
        ("POST", "/v1/events".into(), "application/cloudevents+json", j(cloud_event())),
        ("POST", "/api/v1/lineage".into(), "application/json", j(lineage_event("planted"))),
        ("POST", "/v1/estate/refresh".into(), "application/json", Vec::new()),
        ("GET", "/ledger/checkpoint".into(), "text/plain", Vec::new()),
        ("GET", "/ledger/tile/0/000".into(), "text/plain", Vec::new()),
        ("GET", "/api/v1/lineage?nodeId=dataset:s3://lake-eu:planted".into(), "application/json", Vec::new()),
        ("GET", "/api/v1/posture".into(), "application/json", Vec::new()),
        ("GET", "/api/v1/openapi.json".into(), "application/json", Vec::new()),
        ("GET", "/ui/".into(), "text/html", Vec::new()),
        ("GET", "/ui/posture".into(), "text/html", Vec::new()),
        ("GET", "/api/v1/ledger".into(), "application/json", Vec::new()),
        ("GET", "/api/v1/cost".into(), "application/json", Vec::new()),
        ("GET", "/ui/cost".into(), "text/html", Vec::new()),
        ("GET", "/api/v1/residency".into(), "application/json", Vec::new()),
        ("GET", "/ui/residency".into(), "text/html", Vec::new()),
        ("GET", "/api/v1/ledger/entries/0/receipt".into(), "text/plain", Vec::new()),
        ("GET", "/api/v1/ledger/entries/0/raw".into(), "application/octet-stream", Vec::new()),
        ("GET", "/ui/ledger".into(), "text/html", Vec::new()),
        ("GET", "/ui/ledger/entries/0".into(), "text/html", Vec::new()),
    ]
}

#[test]
fn tokens_open_the_routes_they_are_for_and_are_rotated_by_replacing_their_file() {
    let work = tempfile::tempdir().expect("tempdir");
    keyed_ledger(work.path());
    std::fs::write(work.path().join("all.tokens"), format!("# operators\n{ALL_TOKEN}\n")).expect("write");
    std::fs::write(work.path().join("admission.tokens"), format!("{ADMISSION_TOKEN}\n")).expect("write");
    let args = [
        "--data",
        "data",
        "--ledger",
        "ledger",
        "--ledger-key",
        "k",
        "--poll",
        "0",
        "--auth-token",
        "all.tokens",
        "--auth-token",
        "admission=admission.tokens",
        "--unauthenticated",
        "status",
    ];
    let server = Server::start(work.path(), &args);
    for (method, path, ct, body) in guarded_requests() {
        for auth in [None, Some("Bearer wrong-token"), Some("Basic YWRtaW46YWRtaW4=")] {
            let mut headers = vec![("content-type", ct)];
            if let Some(a) = auth {
                headers.push(("authorization", a));
            }
            let (status, text) = server.send(method, &path, &headers, &body);
            assert_eq!(status, 401, "{method} {path} with {auth:?}: {text}");
            let answer: Value = serde_json::from_str(&text).expect("json");
            assert_eq!(answer["code"], "unauthorized", "{answer}");
        }
    }
    // The admission token opens admission only.
    let admission_only = format!("Bearer {ADMISSION_TOKEN}");
    for (method, path, ct, body) in guarded_requests() {
        let (status, text) =
            server.send(method, &path, &[("content-type", ct), ("authorization", admission_only.as_str())], &body);
        if path == "/v1/admission" {
            assert_eq!(status, 200, "{text}");
            let answer: Value = serde_json::from_str(&text).expect("json");
            assert_eq!(answer["response"]["allowed"], true, "{answer}");
        } else {
            assert_eq!(status, 401, "{method} {path} with the admission token: {text}");
        }
    }
    // The planted lineage event was not stored.
    let all = format!("Bearer {ALL_TOKEN}");
    let (status, text) = server.send(
        "GET",
        "/api/v1/lineage?nodeId=dataset:s3://lake-eu:planted",
        &[("authorization", all.as_str())],
        b"",
    );
    assert_eq!(status, 404, "{text}");
    // The operators' token opens everything.
    for (method, path, ct, body) in guarded_requests() {
        let (status, text) =
            server.send(method, &path, &[("content-type", ct), ("authorization", all.as_str())], &body);
        assert!(status != 401 && status != 403, "{method} {path} with the operators' token: {status} {text}");
    }
    // Health and status are open; status says how each group is guarded, and the refusals are
    // counted.
    assert_eq!(server.send("GET", "/health", &[], b"").0, 200);
    let (status, answer) = server.json("GET", "/v1/status", &Value::Null);
    assert_eq!(status, 200);
    let groups = &answer["authentication"]["groups"];
    assert_eq!(groups["admission"], json!(["token"]), "{answer}");
    assert_eq!(groups["status"], "unauthenticated", "{answer}");
    assert_eq!(answer["authentication"]["insecure"], false, "{answer}");
    let (_, metrics) = server.send("GET", "/metrics", &[], b"");
    assert!(metrics.contains("assay_auth_refused_total{group=\"admission\",reason=\"unauthorized\"} 3"), "{metrics}");

    // Rotation: the file is replaced; the old token stops working, the new one works.
    let rotated = "all-rotated-2b9e7c1d5f3a";
    std::fs::write(work.path().join("all.tokens"), format!("{rotated}\n")).expect("write");
    let new = format!("Bearer {rotated}");
    let switched = eventually(Duration::from_secs(15), || {
        (server.send("GET", "/ledger/checkpoint", &[("authorization", new.as_str())], b"").0 == 200).then_some(())
    });
    assert!(switched.is_some(), "{}", server.log());
    assert_eq!(server.send("GET", "/ledger/checkpoint", &[("authorization", all.as_str())], b"").0, 401);
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");

    // Nothing an unauthenticated request sent is in the ledger: every decision there was made
    // for a caller with a token.
    let out = assay(work.path(), &["log", "show", "ledger", "--json"]);
    let text = stdout(&out);
    let admissions = text.lines().filter(|l| l.contains("\"path\":\"admission\"")).count();
    // One admission each by the admission token and the operators' token.
    assert_eq!(admissions, 2, "{text}");
    let events = text.lines().filter(|l| l.contains("\"path\":\"assay/events\"")).count();
    assert_eq!(events, 1, "{text}");
}

struct Pki {
    ca_der: Vec<u8>,
    ca_pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl Pki {
    fn new(name: &str) -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let ca = params.self_signed(&key).expect("ca");
        Pki { ca_der: ca.der().to_vec(), ca_pem: ca.pem(), issuer: Issuer::new(params, key) }
    }

    /// A certificate and key (PEM) with this common name and DNS names.
    fn issue(&self, common_name: &str, dns: &[&str], client: bool) -> (String, String) {
        use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(dns.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("params");
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.extended_key_usages =
            vec![if client { ExtendedKeyUsagePurpose::ClientAuth } else { ExtendedKeyUsagePurpose::ServerAuth }];
        let cert = params.signed_by(&key, &self.issuer).expect("cert");
        (cert.pem(), key.serialize_pem())
    }
}

#[test]
fn client_certificates_are_verified_against_the_ca_and_their_names_decide() {
    let work = tempfile::tempdir().expect("tempdir");
    let servers = Pki::new("assay test server CA");
    let clients = Pki::new("assay test client CA");
    let rogue = Pki::new("rogue CA");
    let (cert, key) = servers.issue("assay", &["localhost"], false);
    std::fs::write(work.path().join("tls.crt"), cert).expect("write");
    std::fs::write(work.path().join("tls.key"), key).expect("write");
    std::fs::write(work.path().join("clients.pem"), &clients.ca_pem).expect("write");
    let args = [
        "--tls-cert",
        "tls.crt",
        "--tls-key",
        "tls.key",
        "--client-ca",
        "clients.pem",
        "--client-name",
        "admission=kube-apiserver",
        "--client-name",
        "status=*",
    ];
    let server = Server::start(work.path(), &args);
    assert!(server.log().contains("the events routes need a credential but none is configured"), "{}", server.log());
    let body = review("mtls").to_string();
    let admit = |server: &Server| {
        server.try_send("POST", "/v1/admission", &[("content-type", "application/json")], body.as_bytes())
    };

    // No certificate: the connection is made, the request refused.
    let server = server.client(servers.ca_der.clone(), None);
    assert_eq!(admit(&server).expect("request").0, 401);
    // The API server's certificate: allowed.
    let (apiserver, apiserver_key) = clients.issue("kube-apiserver", &["kube-apiserver.kube-system.svc"], true);
    let server = server.client(servers.ca_der.clone(), Some((&apiserver, &apiserver_key)));
    let (status, text) = admit(&server).expect("request");
    assert_eq!(status, 200, "{text}");
    assert_eq!(serde_json::from_str::<Value>(&text).expect("json")["response"]["allowed"], true);
    // ... but only for the groups its name is allowed on.
    let (status, _) = server
        .try_send(
            "POST",
            "/v1/events",
            &[("content-type", "application/cloudevents+json")],
            cloud_event().to_string().as_bytes(),
        )
        .expect("request");
    assert_eq!(status, 401);
    assert_eq!(server.try_send("GET", "/v1/status", &[], b"").expect("request").0, 200);
    // A certificate from the right CA with another name.
    let (intruder, intruder_key) = clients.issue("intruder", &["intruder.example"], true);
    let server = server.client(servers.ca_der.clone(), Some((&intruder, &intruder_key)));
    assert_eq!(admit(&server).expect("request").0, 401);
    assert_eq!(server.try_send("GET", "/v1/status", &[], b"").expect("request").0, 200);
    // A certificate naming the API server, signed by another CA: the handshake fails.
    let (forged, forged_key) = rogue.issue("kube-apiserver", &["kube-apiserver.kube-system.svc"], true);
    let server = server.client(servers.ca_der.clone(), Some((&forged, &forged_key)));
    let refused = admit(&server);
    assert!(refused.is_err(), "a certificate from another CA was accepted: {refused:?}");
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");
}

fn github_signature(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, body);
    format!("sha256={}", tag.as_ref().iter().map(|b| format!("{b:02x}")).collect::<String>())
}

#[test]
fn git_provider_webhooks_refresh_only_when_signed_as_the_provider_signs() {
    let work = tempfile::tempdir().expect("tempdir");
    std::fs::write(work.path().join("github.secret"), "gh-webhook-secret-31c4\n").expect("write");
    std::fs::write(work.path().join("gitlab.token"), "gl-webhook-token-77a0\n").expect("write");
    std::fs::write(work.path().join("ops.tokens"), format!("{ALL_TOKEN}\n")).expect("write");
    let args = [
        "--poll",
        "0",
        "--github-webhook-secret",
        "github.secret",
        "--gitlab-webhook-token",
        "gitlab.token",
        "--auth-token",
        "ops.tokens",
    ];
    let server = Server::start(work.path(), &args);
    let push = json!({"ref": "refs/heads/main", "after": "0000000000000000000000000000000000000000"}).to_string();
    let push = push.as_bytes();
    let json_ct = ("content-type", "application/json");
    let event = ("x-github-event", "push");
    // Unsigned, signed with another secret, signed over another body.
    assert_eq!(server.send("POST", "/v1/estate/refresh", &[json_ct, event], push).0, 401);
    let wrong = github_signature("not-the-secret", push);
    assert_eq!(
        server.send("POST", "/v1/estate/refresh", &[json_ct, event, ("x-hub-signature-256", &wrong)], push).0,
        401
    );
    let other_body = github_signature("gh-webhook-secret-31c4", b"{}");
    assert_eq!(
        server.send("POST", "/v1/estate/refresh", &[json_ct, event, ("x-hub-signature-256", &other_body)], push).0,
        401
    );
    let good = github_signature("gh-webhook-secret-31c4", push);
    let (status, text) =
        server.send("POST", "/v1/estate/refresh", &[json_ct, event, ("x-hub-signature-256", &good)], push);
    assert_eq!(status, 200, "{text}");
    assert_eq!(serde_json::from_str::<Value>(&text).expect("json")["outcome"], "unchanged");
    // A GitHub signature opens the refresh route only.
    assert_eq!(server.send("POST", "/v1/admission", &[json_ct, ("x-hub-signature-256", &good)], push).0, 401);
    // GitLab's token.
    let gitlab = |token: &str| server.send("POST", "/v1/estate/refresh", &[json_ct, ("x-gitlab-token", token)], push).0;
    assert_eq!(gitlab("gl-webhook-token-77a1"), 401);
    assert_eq!(gitlab("gl-webhook-token-77a0"), 200);
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn a_server_refuses_to_listen_off_loopback_with_write_routes_open() {
    let work = tempfile::tempdir().expect("tempdir");
    let refused = Server::try_launch(work.path(), &["--addr", "0.0.0.0:0", "--estate", &example()]);
    let log = refused.err().expect("the server must not start");
    assert!(log.contains("refusing to listen on 0.0.0.0:0"), "{log}");
    assert!(log.contains("admission, data, events, lineage, refresh"), "{log}");
    assert!(log.contains("--insecure-allow-unauthenticated"), "{log}");

    // Told explicitly, it starts, says so, and /v1/status says so too.
    let server = Server::launch(
        work.path(),
        &["--addr", "127.0.0.1:0", "--estate", &example(), "--insecure-allow-unauthenticated"],
    );
    assert!(
        server.log().contains("WARNING: no authentication on admission, data, events, lineage, refresh"),
        "{}",
        server.log()
    );
    let (_, status) = server.json("GET", "/v1/status", &Value::Null);
    assert_eq!(status["authentication"]["insecure"], true, "{status}");
    drop(server);

    // With tokens it listens off loopback.
    std::fs::write(work.path().join("t"), format!("{ALL_TOKEN}\n")).expect("write");
    let server = Server::launch(work.path(), &["--addr", "0.0.0.0:0", "--estate", &example(), "--auth-token", "t"]);
    let port = server.addr.rsplit(':').next().expect("port").to_string();
    let local = format!("127.0.0.1:{port}");
    let (status, _) = common::server::http(&local, "GET", "/v1/status", &[], b"");
    assert_eq!(status, 401);
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");
}

fn example() -> String {
    common::repo_root().join("examples/estate").to_str().expect("path").to_string()
}

#[test]
fn an_authorization_policy_in_the_estate_decides_what_authentication_lets_in() {
    let work = tempfile::tempdir().expect("tempdir");
    let estate = common::server::estate_copy(work.path(), "");
    std::fs::create_dir_all(estate.join("policies/system")).expect("mkdir");
    std::fs::write(
        estate.join("policies/system/authz.rego"),
        "package system.authz\n\ndefault allow := false\n\n\
         allow if input.assay.group == \"status\"\n\n\
         # The CI token may only ask for admission reviews.\n\
         allow if {\n\tinput.identity == \"ci-token-5e8f1a2b3c4d\"\n\tinput.method == \"POST\"\n\t\
         input.path == [\"v1\", \"admission\"]\n}\n\n\
         # Operators, known by their token file, may do anything.\n\
         allow if input.assay.authenticated.name == \"ops.tokens\"\n",
    )
    .expect("write");
    std::fs::write(work.path().join("ci.tokens"), "ci-token-5e8f1a2b3c4d\n").expect("write");
    std::fs::write(work.path().join("ops.tokens"), format!("{ALL_TOKEN}\n")).expect("write");
    let args = [
        "--estate",
        estate.to_str().expect("path"),
        "--auth-token",
        "ci.tokens",
        "--auth-token",
        "ops.tokens",
        "--authorization",
        "basic",
        "--unauthenticated",
        "status",
    ];
    let server = Server::launch(work.path(), &args);
    let body = review("authz").to_string();
    let send = |path: &str, token: &str| {
        let auth = format!("Bearer {token}");
        server.send("POST", path, &[("content-type", "application/json"), ("authorization", &auth)], body.as_bytes())
    };
    assert_eq!(send("/v1/admission", "ci-token-5e8f1a2b3c4d").0, 200);
    let (status, text) = send("/v1/data/authz/residency/allow", "ci-token-5e8f1a2b3c4d");
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("not allowed by data.system.authz.allow"), "{text}");
    assert_eq!(send("/v1/data/authz/residency/allow", ALL_TOKEN).0, 200);
    assert_eq!(send("/v1/admission", "no-such-token").0, 401);
    assert_eq!(server.send("GET", "/v1/status", &[], b"").0, 200);
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");
}
