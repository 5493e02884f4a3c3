//! The web UI's read API and pages, through the real binary: the posture of the active
//! revision is what `assay check` says of it, its filters and hotspots add up, the OpenAPI
//! document describes what the server answers, and the pages are served from the binary.

mod common;

use std::collections::BTreeMap;

use common::server::{Server, schema_errors};
use common::{assay, repo_root};
use serde_json::Value;

fn check_example() -> Value {
    let out = assay(&repo_root(), &["check", "examples/estate", "--format", "json"]);
    serde_json::from_slice(&out.stdout).expect("verdict JSON")
}

#[test]
fn the_posture_is_the_verdict_of_assay_check_with_its_hotspots_and_filters() {
    let work = tempfile::tempdir().expect("tempdir");
    let server = Server::start(work.path(), &["--poll", "0"]);
    let verdict = check_example();

    let (status, posture) = server.json("GET", "/api/v1/posture", &Value::Null);
    assert_eq!(status, 200, "{posture}");
    for key in ["denied", "warnings", "dryrun", "objects", "policies", "budget_findings", "passed"] {
        assert_eq!(posture["summary"][key], verdict["summary"][key], "summary.{key}: {posture:#}");
    }
    assert_eq!(posture["violations"].as_array().map(Vec::len), verdict["violations"].as_array().map(Vec::len));
    assert_eq!(posture["cost"]["monthly"], verdict["cost"]["monthly"]);

    // Each hotspot table counts every violation once.
    let total = posture["violations"].as_array().map_or(0, Vec::len);
    for by in ["policies", "namespaces", "files"] {
        let sum: u64 = posture["hotspots"][by]
            .as_array()
            .into_iter()
            .flatten()
            .map(|h| {
                h["deny"].as_u64().unwrap_or(0) + h["warn"].as_u64().unwrap_or(0) + h["dryrun"].as_u64().unwrap_or(0)
            })
            .sum();
        assert_eq!(sum as usize, total, "hotspots by {by}: {:#}", posture["hotspots"]);
    }
    // The research namespace has two denials in the example (a label and a missing annotation)
    // and the Namespace object itself is cluster-scoped.
    let namespaces: BTreeMap<String, u64> = posture["hotspots"]["namespaces"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| (h["key"].as_str().unwrap_or("").to_string(), h["deny"].as_u64().unwrap_or(0)))
        .collect();
    let expected_research = verdict["violations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["action"] == "deny" && v["object"].as_str().is_some_and(|o| o.contains("/research/")))
        .count() as u64;
    assert_eq!(namespaces.get("research"), Some(&expected_research), "{namespaces:?}");

    // A filter keeps only what matches, and says which filter it applied.
    let (_, filtered) = server.json("GET", "/api/v1/posture?policy=data.k8s.labels.deny&action=deny", &Value::Null);
    let listed = filtered["violations"].as_array().cloned().unwrap_or_default();
    let expected = verdict["violations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["policy"]["rule"] == "data.k8s.labels.deny" && v["action"] == "deny")
        .count();
    assert!(expected > 0);
    assert_eq!(listed.len(), expected, "{filtered:#}");
    assert!(listed.iter().all(|v| v["policy"]["rule"] == "data.k8s.labels.deny"));
    assert_eq!(filtered["filter"]["policy"], "data.k8s.labels.deny");
    assert_eq!(filtered["estate"]["revision"], posture["estate"]["revision"]);
    // A form submitted with blank fields filters nothing.
    let (_, blank) = server.json("GET", "/api/v1/posture?policy=&namespace=&file=&action=", &Value::Null);
    assert_eq!(blank["violations"], posture["violations"]);
}

#[test]
fn the_pages_are_served_from_the_binary_with_their_filters_in_the_url() {
    let work = tempfile::tempdir().expect("tempdir");
    let server = Server::start(work.path(), &["--poll", "0"]);
    let verdict = check_example();

    let (status, _) = server.request("GET", "/ui/", None, b"");
    assert!(matches!(status, 303 | 307 | 308), "{status}");
    let (status, page) = server.request("GET", "/ui/posture", None, b"");
    assert_eq!(status, 200);
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert!(page.contains(r#"<html lang="en">"#));
    assert!(page.contains(r#"href="/ui/assets/assay.css""#));
    // No asset from elsewhere: the page works offline.
    assert!(!page.contains("https://") && !page.contains("http://"), "{page}");
    let denied = verdict["summary"]["denied"].as_u64().expect("denied");
    assert!(page.contains(&format!("<dt>Denied</dt><dd>{denied}</dd>")), "{page}");
    // Each hotspot links to the violations it counts, filtered in the URL.
    assert!(page.contains("/ui/posture?policy=data.k8s.labels.deny#violations"), "{page}");
    assert!(page.contains("/ui/posture?namespace=research#violations"), "{page}");

    let (_, only) = server.request("GET", "/ui/posture?namespace=research&action=deny", None, b"");
    let rows = only.matches("<tr><td class=\"deny\">deny</td>").count();
    let expected = verdict["violations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["action"] == "deny" && v["object"].as_str().is_some_and(|o| o.contains("/research/")))
        .count();
    assert_eq!(rows, expected, "{only}");
    // What a user typed is shown back escaped, never as markup.
    let (_, hostile) = server.request("GET", "/ui/posture?file=%3Cscript%3Ealert(1)%3C%2Fscript%3E", None, b"");
    assert!(!hostile.contains("<script>"), "{hostile}");
    assert!(hostile.contains("&lt;script&gt;"), "{hostile}");

    let (status, css) = server.request("GET", "/ui/assets/assay.css", None, b"");
    assert_eq!(status, 200);
    assert!(css.contains("--deny"));
}

#[test]
fn the_openapi_document_describes_what_the_server_answers() {
    let work = tempfile::tempdir().expect("tempdir");
    let server = Server::start(work.path(), &["--poll", "0"]);
    let (status, doc) = server.json("GET", "/api/v1/openapi.json", &Value::Null);
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/api/v1/posture",
        "/api/v1/lineage",
        "/api/v1/cost",
        "/api/v1/residency",
        "/api/v1/ledger",
        "/api/v1/ledger/entries/{index}",
        "/api/v1/ledger/entries/{index}/raw",
        "/api/v1/ledger/entries/{index}/receipt",
        "/api/v1/openapi.json",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} undocumented");
    }
    // The posture the server answers is valid against the document's own schema.
    let (_, posture) = server.json("GET", "/api/v1/posture", &Value::Null);
    let errors = schema_errors(&server, "Posture", &posture);
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn the_ledger_api_lists_entries_by_type_and_gives_receipts_that_verify_offline() {
    use common::server::{keyed_ledger, namespace_review};
    let work = tempfile::tempdir().expect("tempdir");
    keyed_ledger(work.path());
    let server = Server::start(work.path(), &["--poll", "0", "--ledger", "ledger", "--ledger-key", "k"]);
    for uid in ["a", "b", "c"] {
        let (status, _) =
            server.json("POST", "/v1/admission", &namespace_review(uid, serde_json::json!({"owner": "ml"})));
        assert_eq!(status, 200);
    }
    // Decisions reach the ledger off the request's path: wait for the checkpoint to hold them.
    let doc = common::server::eventually(std::time::Duration::from_secs(20), || {
        let (_, doc) = server.json("GET", "/api/v1/ledger?type=decision", &Value::Null);
        (doc["entries"].as_array().map_or(0, Vec::len) == 3).then_some(doc)
    })
    .expect("three decisions in the ledger");
    let entries = doc["entries"].as_array().cloned().unwrap_or_default();
    assert!(entries.iter().all(|e| e["type"] == "decision"), "{doc:#}");
    // Latest first.
    let indexes: Vec<u64> = entries.iter().filter_map(|e| e["index"].as_u64()).collect();
    assert!(indexes.windows(2).all(|w| w[0] > w[1]), "{indexes:?}");
    assert_eq!(doc["checkpoint"]["origin"], "decisions.example/log");
    assert_eq!(schema_errors(&server, "LedgerPage", &doc), Vec::<String>::new());
    let (_, all) = server.json("GET", "/api/v1/ledger", &Value::Null);
    assert!(all["entries"].as_array().into_iter().flatten().any(|e| e["type"] == "activation"), "{all:#}");
    let (_, paged) = server.json("GET", "/api/v1/ledger?limit=1", &Value::Null);
    assert_eq!(paged["entries"].as_array().map(Vec::len), Some(1));
    assert_eq!(paged["next_before"], paged["entries"][0]["index"]);

    // One entry, its proof, and a receipt that assay log verify-receipt accepts offline.
    let index = indexes[0];
    let (status, entry) = server.json("GET", &format!("/api/v1/ledger/entries/{index}"), &Value::Null);
    assert_eq!(status, 200, "{entry}");
    assert_eq!(entry["record"]["type"], "assay.dev/record/decision/v2");
    assert_eq!(schema_errors(&server, "LedgerEntry", &entry), Vec::<String>::new());
    let (_, receipt) = server.request("GET", &format!("/api/v1/ledger/entries/{index}/receipt"), None, b"");
    assert!(receipt.starts_with("c2sp.org/tlog-proof@v1\n"), "{receipt}");
    let (_, raw) = server.request("GET", &format!("/api/v1/ledger/entries/{index}/raw"), None, b"");
    std::fs::write(work.path().join("r.tlog-proof"), &receipt).expect("write");
    std::fs::write(work.path().join("e.json"), &raw).expect("write");
    let out = assay(work.path(), &["log", "verify-receipt", "r.tlog-proof", "--entry", "e.json", "--key", "k.pub"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    // Another entry's bytes do not verify with this receipt.
    let (_, other) = server.request("GET", &format!("/api/v1/ledger/entries/{}/raw", indexes[1]), None, b"");
    std::fs::write(work.path().join("e.json"), &other).expect("write");
    let out = assay(work.path(), &["log", "verify-receipt", "r.tlog-proof", "--entry", "e.json", "--key", "k.pub"]);
    assert_eq!(out.status.code(), Some(1), "{}", common::stderr(&out));

    let (status, missing) = server.json("GET", "/api/v1/ledger/entries/999999", &Value::Null);
    assert_eq!(status, 404);
    assert_eq!(missing["code"], "no_such_entry");
    // The pages.
    let (status, page) = server.request("GET", "/ui/ledger?type=decision", None, b"");
    assert_eq!(status, 200);
    assert_eq!(page.matches("<a href=\"/ui/ledger/entries/").count(), 3, "{page}");
    let (status, page) = server.request("GET", &format!("/ui/ledger/entries/{index}"), None, b"");
    assert_eq!(status, 200);
    assert!(page.contains(&format!("/api/v1/ledger/entries/{index}/receipt")), "{page}");
}

#[test]
fn a_server_without_a_ledger_says_how_to_keep_one() {
    let work = tempfile::tempdir().expect("tempdir");
    let server = Server::start(work.path(), &["--poll", "0"]);
    let (status, answer) = server.json("GET", "/api/v1/ledger", &Value::Null);
    assert_eq!(status, 404);
    assert_eq!(answer["code"], "ledger_not_kept");
    let (status, page) = server.request("GET", "/ui/ledger", None, b"");
    assert_eq!(status, 200);
    assert!(page.contains("assay log init"), "{page}");
}

#[test]
fn assay_ui_serves_the_pages_and_reads_without_enforcing_anything() {
    use common::server::{keyed_ledger, namespace_review};
    let work = tempfile::tempdir().expect("tempdir");
    keyed_ledger(work.path());
    // A ledger with entries in it, written by an enforcing server, then stopped.
    {
        let server = Server::start(work.path(), &["--poll", "0", "--ledger", "ledger", "--ledger-key", "k"]);
        let (status, _) =
            server.json("POST", "/v1/admission", &namespace_review("x", serde_json::json!({"owner": "a"})));
        assert_eq!(status, 200);
        let _ = server.stop();
    }
    let estate = repo_root().join("examples/estate");
    let ui = Server::launch_ui(
        work.path(),
        &["--estate", estate.to_str().expect("path"), "--poll", "0", "--ledger", "ledger"],
    );
    // It says loudly that its reads are open.
    assert!(ui.log().contains("WARNING: no authentication on the web UI"), "{}", ui.log());
    let (status, posture) = ui.json("GET", "/api/v1/posture", &Value::Null);
    assert_eq!(status, 200);
    assert_eq!(posture["summary"], check_example()["summary"]);
    // The ledger is read without its key, and nothing is appended to it.
    let (status, ledger) = ui.json("GET", "/api/v1/ledger?type=decision", &Value::Null);
    assert_eq!(status, 200, "{ledger}");
    assert_eq!(ledger["entries"].as_array().map(Vec::len), Some(1), "{ledger:#}");
    let size = ledger["checkpoint"]["size"].clone();
    // No enforcement route is mounted.
    for (method, path) in [
        ("POST", "/v1/admission"),
        ("POST", "/v1/data/k8s"),
        ("POST", "/v1/events"),
        ("POST", "/api/v1/lineage"),
        ("POST", "/v1/estate/refresh"),
    ] {
        let (status, _) = ui.request(method, path, Some("application/json"), b"{}");
        assert!(matches!(status, 404 | 405), "{method} {path}: {status}");
    }
    let (status, _) = ui.request("GET", "/ui/ledger", None, b"");
    assert_eq!(status, 200);
    let (_, again) = ui.json("GET", "/api/v1/ledger", &Value::Null);
    assert_eq!(again["checkpoint"]["size"], size);
}

#[test]
fn the_cost_api_gives_the_numbers_of_the_assay_cost_commands() {
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    common::billing_store(dir, 70, 3);
    let estate = repo_root().join("examples/estate");
    let estate = estate.to_str().expect("path");
    let json = |args: &[&str]| -> Value {
        let out = assay(dir, args);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", common::stderr(&out)))
    };
    let report = json(&["cost", "--data", "data", "report", "--by", "tag:cost-center", "--format", "json"]);
    let budgets = json(&["cost", "--data", "data", "budgets", "--estate", estate, "--format", "json"]);
    let anomalies = json(&["cost", "--data", "data", "anomalies", "--format", "json"]);

    let server = Server::launch(dir, &["--estate", estate, "--poll", "0", "--data", "data"]);
    let (status, cost) = server.json("GET", "/api/v1/cost?by=tag:cost-center&days=14", &Value::Null);
    assert_eq!(status, 200, "{cost}");
    assert_eq!(cost["allocation"], report);
    assert_eq!(schema_errors(&server, "Cost", &cost), Vec::<String>::new());
    assert_eq!(cost["budgets"], budgets);
    assert_eq!(cost["anomalies"], anomalies);
    assert!(cost["anomalies"].as_array().is_some_and(|a| !a.is_empty()), "generated data has anomalies");
    let days = cost["daily"]["days"].as_array().map_or(0, Vec::len);
    assert_eq!(days, 70);
    assert_eq!(cost["forecast"]["days"].as_array().map(Vec::len), Some(14));
    for band in ["lower95", "lower80", "point", "upper80", "upper95"] {
        assert_eq!(cost["forecast"]["forecast"][band].as_array().map(Vec::len), Some(14), "{band}");
    }
    // A period filters the allocation, as `report --period` does.
    let period = cost["billing"]["last_day"].as_str().expect("last day")[..7].to_string();
    let by_period =
        json(&["cost", "--data", "data", "report", "--by", "ServiceName", "--period", &period, "--format", "json"]);
    let (_, cost) = server.json("GET", &format!("/api/v1/cost?period={period}"), &Value::Null);
    assert_eq!(cost["allocation"], by_period);
    // Bad queries are answered, naming what is wrong.
    let (status, answer) = server.json("GET", "/api/v1/cost?by=Nonsense", &Value::Null);
    assert_eq!(status, 400, "{answer}");
    assert!(answer["message"].as_str().is_some_and(|m| m.starts_with("by:")), "{answer}");
    let (status, _) = server.json("GET", "/api/v1/cost?period=2026-13", &Value::Null);
    assert_eq!(status, 400);

    // The server keeps the answer, but not past an ingest: a restated bill shows at once.
    let before = server.json("GET", "/api/v1/cost?by=tag:cost-center&days=14", &Value::Null).1;
    assert_eq!(before["allocation"], report, "asked again, the same answer");
    common::billing_store(dir, 70, 4);
    let restated = json(&["cost", "--data", "data", "report", "--by", "tag:cost-center", "--format", "json"]);
    assert_ne!(restated, report, "another seed, other numbers");
    let (_, after) = server.json("GET", "/api/v1/cost?by=tag:cost-center&days=14", &Value::Null);
    assert_eq!(after["allocation"], restated);
}
