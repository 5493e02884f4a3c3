//! Bounded work: a client that sends its head slowly is cut off, requests beyond the
//! concurrency limit are answered 503 with Retry-After at once, a request past its deadline is
//! answered 503, a policy that runs too long fails as any evaluation failure does (per the
//! failure mode), and a query-string input is held to the body limit.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::server::{Server, estate_copy};
use serde_json::{Value, json};

/// Reads what the server sends until it closes the connection or `limit` passes.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let start = Instant::now();
    stream.set_read_timeout(Some(limit)).expect("timeout");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    (String::from_utf8_lossy(&raw).into_owned(), start.elapsed())
}

#[test]
fn slow_clients_are_cut_off_and_requests_beyond_the_limits_get_503() {
    let work = tempfile::tempdir().expect("tempdir");
    let args =
        ["--header-timeout", "1s", "--request-timeout", "2s", "--max-concurrent-requests", "1", "--max-body", "2000"];
    let server = Server::start(work.path(), &args);

    // A head that never ends: the connection is closed after the header timeout.
    let mut slow = TcpStream::connect(&server.addr).expect("connect");
    slow.write_all(b"POST /v1/admission HTTP/1.1\r\nHost: x\r\n").expect("write");
    let (_, took) = read_until_closed(&mut slow, Duration::from_secs(10));
    assert!(took < Duration::from_secs(5), "the slow head was not cut off ({took:?})");

    // A body that never ends holds the one slot; the next request is answered 503 at once
    // with Retry-After, and the slow one 503 at its deadline.
    let mut holder = TcpStream::connect(&server.addr).expect("connect");
    holder
        .write_all(
            b"POST /v1/data/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
        )
        .expect("write");
    std::thread::sleep(Duration::from_millis(300));
    let mut other = TcpStream::connect(&server.addr).expect("connect");
    other.write_all(b"GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").expect("write");
    let (answer, _) = read_until_closed(&mut other, Duration::from_secs(5));
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("retry-after: 1"), "{answer}");
    assert!(answer.contains("\"code\":\"overloaded\""), "{answer}");
    // Probes are not held back.
    let (status, _) = server.send("GET", "/health", &[], b"");
    assert_eq!(status, 200);
    let (answer, took) = read_until_closed(&mut holder, Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("\"code\":\"timeout\""), "{answer}");
    assert!(took < Duration::from_secs(5), "{took:?}");

    // The slot is free again.
    let (status, _) = server.send("GET", "/v1/status", &[], b"");
    assert_eq!(status, 200);
    // A query-string input larger than the body limit.
    let big = format!("%7B%22x%22%3A%22{}%22%7D", "a".repeat(3000));
    let (status, text) = server.send("GET", &format!("/v1/data/authz?input={big}"), &[], b"");
    assert_eq!(status, 413, "{text}");
    let (_, metrics) = server.send("GET", "/metrics", &[], b"");
    assert!(metrics.contains("assay_requests_shed_total{reason=\"concurrency\"} 1"), "{metrics}");
    assert!(metrics.contains("assay_requests_shed_total{reason=\"timeout\"} 1"), "{metrics}");
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log}");
}

fn review() -> Value {
    common::server::namespace_review("slow", json!({"owner": "ml-team"}))
}

#[test]
fn a_policy_that_runs_too_long_fails_per_the_failure_mode() {
    let work = tempfile::tempdir().expect("tempdir");
    let estate = estate_copy(work.path(), "");
    std::fs::write(
        estate.join("policies/k8s/slow.rego"),
        "package k8s.slow\n\ndeny contains msg if {\n\tinput.request.kind.kind == \"Namespace\"\n\t\
         n := count([x | some a in numbers.range(1, 3000); some b in numbers.range(1, 3000); x := a + b])\n\t\
         n < 0\n\tmsg := \"never\"\n}\n",
    )
    .expect("write");
    let path = estate.to_str().expect("path");
    let closed = Server::launch(work.path(), &["--estate", path, "--policy-timeout", "100ms"]);
    let start = Instant::now();
    let (status, answer) = closed.json("POST", "/v1/admission", &review());
    let took = start.elapsed();
    assert_eq!(status, 200, "{answer}");
    let response = &answer["response"];
    assert_eq!(response["allowed"], false, "{answer}");
    let message = response["status"]["message"].as_str().unwrap_or("");
    assert!(message.contains("failure mode: closed") && message.contains("k8s.slow"), "{message}");
    assert!(message.to_ascii_lowercase().contains("time"), "{message}");
    assert!(took < Duration::from_secs(2), "the evaluation was not stopped: {took:?}");
    drop(closed);

    let open = Server::launch(work.path(), &["--estate", path, "--policy-timeout", "100ms", "--failure-mode", "open"]);
    let (_, answer) = open.json("POST", "/v1/admission", &review());
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    assert!(answer["response"]["warnings"].to_string().contains("failure mode open"), "{answer}");
}
