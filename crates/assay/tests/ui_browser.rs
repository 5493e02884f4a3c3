//! The web UI in a real browser: Debian's headless Chromium driven over WebDriver
//! (chromedriver, installed by `scripts/test.sh`), against `assay serve` on the example estate.
//! What a person checks: the numbers on the page are `assay check`'s, a hotspot leads to the
//! violations it counts, the filters live in the URL, the keyboard reaches the content first.
//! Each page's screenshot is kept in `target/ui-screenshots/`.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::browser::{arrive, screenshots, with_browser};
use common::server::{Server, eventually};
use common::{assay, repo_root};
use fantoccini::{Client, Locator};
use serde_json::{Value, json};

async fn text(client: &Client, css: &str) -> String {
    client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).text().await.expect("text")
}

#[test]
fn the_posture_page_shows_what_assay_check_says_and_leads_to_the_violations() {
    let out = assay(&repo_root(), &["check", "examples/estate", "--format", "json"]);
    let verdict: Value = serde_json::from_slice(&out.stdout).expect("verdict");
    let work = tempfile::tempdir().expect("tempdir");
    let server = Server::start(work.path(), &["--poll", "0"]);
    with_browser(&server.addr, |client, base| async move {
        // /ui/ leads to the posture page.
        client.goto(&format!("{base}/ui/")).await.expect("goto");
        assert_eq!(client.current_url().await.expect("url").path(), "/ui/posture");
        assert!(client.title().await.expect("title").starts_with("Posture"));

        // The tiles are assay check's summary.
        let mut tiles = std::collections::BTreeMap::new();
        for tile in client.find_all(Locator::Css("dl.tiles > div")).await.expect("tiles") {
            let label = tile.find(Locator::Css("dt")).await.expect("dt").text().await.expect("text");
            let value = tile.find(Locator::Css("dd")).await.expect("dd").text().await.expect("text");
            tiles.insert(label, value);
        }
        for (label, key) in [
            ("Denied", "denied"),
            ("Warnings", "warnings"),
            ("Objects checked", "objects"),
            ("Policies", "policies"),
            ("Budgets exceeded", "budget_findings"),
        ] {
            assert_eq!(
                tiles.get(label).map(String::as_str),
                Some(verdict["summary"][key].to_string().as_str()),
                "{label}: {tiles:?}"
            );
        }
        let status = text(&client, "[role=status]").await;
        assert_eq!(status, if verdict["summary"]["passed"] == true { "PASS" } else { "FAIL" });
        let violations = verdict["violations"].as_array().cloned().unwrap_or_default();
        let listed = client.find_all(Locator::Css("#violation-list tbody tr")).await.expect("rows");
        assert_eq!(listed.len(), violations.len());

        // The page loads fast enough to use (printed; BENCHMARKS.md records the figure).
        let timing = client
            .execute(
                "const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd - n.startTime;",
                vec![],
            )
            .await
            .expect("timing");
        println!("posture page loaded in {timing} ms");
        let shot = client.screenshot().await.expect("screenshot");
        assert!(shot.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::write(screenshots().join("posture.png"), &shot).expect("write screenshot");

        // The keyboard reaches the skip link first, and it leads to the content.
        client
            .find(Locator::Css("body"))
            .await
            .expect("body")
            .send_keys(&fantoccini::key::Key::Tab.to_string())
            .await
            .expect("tab");
        let focused = client.active_element().await.expect("focus");
        assert_eq!(focused.text().await.expect("text"), "Skip to content");

        // A hotspot leads to the violations it counts, with the filter in the URL.
        let policy = "data.k8s.labels.deny";
        let expected = violations.iter().filter(|v| v["policy"]["rule"] == policy).count();
        let link = client.find(Locator::LinkText(policy)).await.expect("the hotspot's link");
        link.click().await.expect("click");
        arrive(&client, |_, query| query == Some(format!("policy={policy}").as_str())).await;
        let rows = client.find_all(Locator::Css("#violation-list tbody tr")).await.expect("rows");
        assert_eq!(rows.len(), expected);
        for row in rows {
            assert!(row.text().await.expect("text").contains(policy));
        }
        // The filter form shows the filter, and clearing it shows everything again.
        let field = client.find(Locator::Css("input[name=policy]")).await.expect("policy field");
        assert_eq!(field.prop("value").await.expect("value").as_deref(), Some(policy));
        client.find(Locator::LinkText("Clear filters")).await.expect("clear").click().await.expect("click");
        let rows = client.find_all(Locator::Css("#violation-list tbody tr")).await.expect("rows");
        assert_eq!(rows.len(), violations.len());
        client.close().await.expect("close");
    });
}

#[test]
fn a_receipt_downloaded_from_the_ledger_page_verifies_offline() {
    use common::server::{keyed_ledger, namespace_review};
    let work = tempfile::tempdir().expect("tempdir");
    keyed_ledger(work.path());
    let server = Server::start(work.path(), &["--poll", "0", "--ledger", "ledger", "--ledger-key", "k"]);
    let (status, _) = server.json("POST", "/v1/admission", &namespace_review("ui", json!({"owner": "ml"})));
    assert_eq!(status, 200);
    let recorded = eventually(Duration::from_secs(20), || {
        let (_, doc) = server.json("GET", "/api/v1/ledger?type=decision", &Value::Null);
        doc["entries"][0]["index"].as_u64()
    });
    let index = recorded.expect("the decision in the ledger");
    let dir = work.path().to_path_buf();
    with_browser(&server.addr, |client, base| async move {
        client.goto(&format!("{base}/ui/posture")).await.expect("goto");
        // From the navigation to the ledger, filtered to decisions with the form.
        client.find(Locator::LinkText("Ledger")).await.expect("nav").click().await.expect("click");
        arrive(&client, |path, _| path == "/ui/ledger").await;
        let size = text(&client, "dl.tiles div:nth-child(2) dd").await;
        assert!(size.parse::<u64>().expect("a size") > index, "{size}");
        client
            .screenshot()
            .await
            .map(|png| std::fs::write(screenshots().join("ledger.png"), png))
            .expect("shot")
            .expect("write");
        let select = client.find(Locator::Css("select[name=type]")).await.expect("type filter");
        select.select_by_value("decision").await.expect("select");
        client.find(Locator::Css("form.filters button")).await.expect("button").click().await.expect("submit");
        arrive(&client, |_, query| query == Some("type=decision")).await;
        let rows = client.find_all(Locator::Css("#entry-list tbody tr")).await.expect("rows");
        assert_eq!(rows.len(), 1);
        client.find(Locator::LinkText(&index.to_string())).await.expect("the entry").click().await.expect("click");
        arrive(&client, |path, _| path == format!("/ui/ledger/entries/{index}")).await;
        client
            .screenshot()
            .await
            .map(|png| std::fs::write(screenshots().join("ledger-entry.png"), png))
            .expect("shot")
            .expect("write");
        // What the page's two download links give is what an auditor verifies.
        let receipt = client.find(Locator::LinkText("download the receipt")).await.expect("receipt link");
        let entry = client.find(Locator::LinkText("the entry")).await.expect("entry link");
        for (link, file) in [(receipt, "downloaded.tlog-proof"), (entry, "downloaded.json")] {
            let href = link.prop("href").await.expect("href").expect("a link");
            let body = ureq::get(&href).call().expect("download").into_body().read_to_vec().expect("body");
            std::fs::write(dir.join(file), body).expect("write");
        }
        client.close().await.expect("close");
    });
    let out = assay(
        work.path(),
        &["log", "verify-receipt", "downloaded.tlog-proof", "--entry", "downloaded.json", "--key", "k.pub"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    assert!(common::stdout(&out).starts_with("ok: "), "{}", common::stdout(&out));
}

#[test]
fn the_cost_page_shows_the_numbers_of_the_assay_cost_commands() {
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    common::billing_store(dir, 90, 2);
    let estate = repo_root().join("examples/estate");
    let estate = estate.to_str().expect("path");
    let json = |args: &[&str]| -> Value { serde_json::from_slice(&assay(dir, args).stdout).expect("JSON") };
    let report = json(&["cost", "--data", "data", "report", "--by", "tag:cost-center", "--format", "json"]);
    let anomalies = json(&["cost", "--data", "data", "anomalies", "--format", "json"]);
    let budgets = json(&["cost", "--data", "data", "budgets", "--estate", estate, "--format", "json"]);
    let server = Server::launch(dir, &["--estate", estate, "--poll", "0", "--data", "data"]);
    with_browser(&server.addr, |client, base| async move {
        client.goto(&format!("{base}/ui/posture")).await.expect("goto");
        client.find(Locator::LinkText("Cost")).await.expect("nav").click().await.expect("click");
        // Allocate by cost center with the form: the choice goes into the URL.
        let by = client.find(Locator::Css("input[name=by]")).await.expect("by");
        by.clear().await.expect("clear");
        by.send_keys("tag:cost-center").await.expect("type");
        client.find(Locator::Css("form.filters button")).await.expect("button").click().await.expect("submit");
        arrive(&client, |_, query| query.is_some_and(|q| q.contains("by=tag%3Acost-center"))).await;
        // The allocation is assay cost report's, group by group.
        let rows = client.find_all(Locator::Css("#allocation-list tbody tr")).await.expect("rows");
        let groups = report["groups"].as_array().cloned().unwrap_or_default();
        assert_eq!(rows.len(), groups.len());
        for (row, group) in rows.iter().zip(&groups) {
            let cells = row.find_all(Locator::Css("td")).await.expect("cells");
            let amount = cells[1].text().await.expect("text");
            let cents = group["cents"].as_i64().expect("cents");
            assert_eq!(amount, assay_cost_format(cents), "{group}");
        }
        // Each budget as assay cost budgets has it: amount, actual, forecast, predicted breach.
        let rows = client.find_all(Locator::Css("#budget-list tbody tr")).await.expect("rows");
        let budgets = budgets.as_array().cloned().unwrap_or_default();
        assert!(!budgets.is_empty(), "the example estate's budgets have billing data in scope");
        assert_eq!(rows.len(), budgets.len());
        for (row, budget) in rows.iter().zip(&budgets) {
            let cells = row.find_all(Locator::Css("td")).await.expect("cells");
            let mut texts = Vec::new();
            for c in &cells {
                texts.push(c.text().await.expect("text"));
            }
            let money = |v: &Value| assay_verdict::render::money(v.as_f64().expect("an amount"));
            assert_eq!(texts[0], budget["name"].as_str().expect("name"));
            assert_eq!(texts[1], budget["period"].as_str().expect("period"));
            assert_eq!(texts[2], money(&budget["amount"]), "{budget}");
            assert_eq!(texts[3], money(&budget["actual"]), "{budget}");
            assert_eq!(texts[4], money(&budget["forecast"]), "{budget}");
            assert!(texts[7].contains(budget["breach_date"].as_str().unwrap_or("none")), "{texts:?} {budget}");
        }
        // One row per anomaly of assay cost anomalies, and the chart marks them.
        let listed = client.find_all(Locator::Css("#anomaly-list tbody tr")).await.expect("rows");
        assert_eq!(listed.len(), anomalies.as_array().map_or(0, Vec::len));
        assert!(!listed.is_empty(), "generated data has anomalies");
        let chart = client.find(Locator::Css("figure [role=img] svg")).await.expect("the daily chart");
        let markers = chart.find_all(Locator::Css("circle")).await.expect("markers");
        assert!(!markers.is_empty());
        // The chart's numbers are there as a table too: every day, then every forecast day.
        let numbers = client.find_all(Locator::Css("#daily-numbers tbody tr")).await.expect("rows");
        assert_eq!(numbers.len(), 90 + 30);
        let shot = client.screenshot().await.expect("screenshot");
        std::fs::write(screenshots().join("cost.png"), shot).expect("write");
        client.close().await.expect("close");
    });
}

/// Cents as `assay cost report` writes them.
fn assay_cost_format(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents.abs() / 100, cents.abs() % 100)
}

#[test]
fn the_residency_page_shows_the_path_of_classified_data_and_navigates_the_graph() {
    let work = tempfile::tempdir().expect("tempdir");
    let estate = common::server::estate_copy(work.path(), "");
    std::fs::create_dir_all(estate.join("residency")).expect("mkdir");
    std::fs::write(estate.join("residency/gdpr.yaml"), common::server::RESIDENCY).expect("write");
    let server = Server::launch(work.path(), &["--estate", "estate", "--data", "data", "--poll", "0"]);
    let flow = common::server::flow;
    for e in [
        flow(1, "clean", ("s3://customers-eu", "raw"), ("s3://lake-eu", "clean")),
        flow(2, "train", ("s3://lake-eu", "clean"), ("s3://models-us", "churn")),
    ] {
        assert_eq!(server.json("POST", "/api/v1/lineage", &e).0, 201);
    }
    with_browser(&server.addr, |client, base| async move {
        client.goto(&format!("{base}/ui/posture")).await.expect("goto");
        client.find(Locator::LinkText("Residency and lineage")).await.expect("nav").click().await.expect("click");
        // Each finding shows the path the classified data took, from its origin.
        let findings = client.find_all(Locator::Css("#finding-list tbody tr")).await.expect("findings");
        assert_eq!(findings.len(), 2);
        let text = findings[0].text().await.expect("text");
        assert!(
            text.contains("dataset:s3://customers-eu:raw → job:airflow:clean → dataset:s3://lake-eu:clean"),
            "{text}"
        );
        // A step of the path leads to the graph around it, the node in the URL.
        findings[0]
            .find(Locator::LinkText("dataset:s3://lake-eu:clean"))
            .await
            .expect("step")
            .click()
            .await
            .expect("click");
        arrive(&client, |_, query| query.is_some_and(|q| q.contains("node=dataset%3As3%3A%2F%2Flake-eu%3Aclean")))
            .await;
        let columns = client.find_all(Locator::Css(".lineage section h3")).await.expect("columns");
        let mut titles = Vec::new();
        for c in columns {
            titles.push(c.text().await.expect("text"));
        }
        assert_eq!(titles, ["Upstream 2", "Upstream 1", "This node", "Downstream 1", "Downstream 2"]);
        let origin = client.find(Locator::Css(".lineage section:first-child .node")).await.expect("origin");
        let card = origin.text().await.expect("text");
        assert!(card.contains("raw") && card.contains("GDPR_SENSITIVE") && card.contains("eu-west-1"), "{card}");
        let shot = client.screenshot().await.expect("screenshot");
        std::fs::write(screenshots().join("residency.png"), shot).expect("write");
        client.close().await.expect("close");
    });
}

/// Every page at the scale the UI is built for: a year of daily billing for 1,000 resources, a
/// lineage graph of 10,000 nodes, a ledger. Long tables come a page at a time, and each page's
/// load time (first visit, then again) is printed; the release build's figures, measured the
/// same way by `cargo bench -p assay --bench serve -- ui`, are in BENCHMARKS.md (this is a
/// debug build, so its times are not the product's).
#[test]
fn every_page_works_with_a_year_of_billing_for_1000_resources_and_a_graph_of_10000_nodes() {
    let work = tempfile::tempdir().expect("tempdir");
    let scale = common::scale::build(work.path());
    common::server::keyed_ledger(work.path());
    let estate = scale.estate.to_str().expect("path").to_string();
    let server = Server::launch(
        work.path(),
        &["--estate", &estate, "--data", "data", "--ledger", "ledger", "--ledger-key", "k", "--poll", "0"],
    );
    let report = serde_json::from_slice::<Value>(
        &assay(work.path(), &["cost", "--data", "data", "report", "--by", "ResourceId", "--format", "json"]).stdout,
    )
    .expect("report");
    let deep = scale.deep_dataset.clone();
    with_browser(&server.addr, |client, base| async move {
        let node = format!("node={}", deep.replace(':', "%3A").replace('/', "%2F"));
        let pages = [
            "/ui/posture".to_string(),
            "/ui/cost".to_string(),
            "/ui/cost?by=ResourceId".to_string(),
            "/ui/residency".to_string(),
            format!("/ui/residency?{node}&depth=3"),
            "/ui/ledger".to_string(),
        ];
        for page in &pages {
            let first = common::browser::load(&client, &format!("{base}{page}")).await;
            let again = common::browser::load(&client, &format!("{base}{page}")).await;
            println!(
                "{page}: loaded in {:.0} ms ({:.0} ms to the whole answer, {:.0} KB), again {:.0} ms",
                first.loaded_ms,
                first.response_ms,
                first.bytes / 1024.0,
                again.loaded_ms
            );
            let title = client.title().await.expect("title");
            assert!(!title.starts_with("Error"), "{page}: {title}");
            let alerts = client.find_all(Locator::Css("[role=alert]")).await.expect("alerts");
            assert!(alerts.is_empty(), "{page} says something is wrong");
        }

        // The year of billing: every day on the chart's table, then the forecast.
        client.goto(&format!("{base}/ui/cost")).await.expect("goto");
        let numbers = client.find_all(Locator::Css("#daily-numbers tbody tr")).await.expect("rows");
        assert_eq!(numbers.len(), 365 + 30);
        // By resource: 1,000 groups, 100 to a page, the largest first as `assay cost report`.
        client.goto(&format!("{base}/ui/cost?by=ResourceId")).await.expect("goto");
        let groups = report["groups"].as_array().cloned().unwrap_or_default();
        assert_eq!(groups.len(), 1000);
        let rows = client.find_all(Locator::Css("#allocation-list tbody tr")).await.expect("rows");
        assert_eq!(rows.len(), 100);
        assert_eq!(text(&client, "nav.pager").await, "Rows 1–100 of 1000. Next 100");
        client.find(Locator::Css("nav.pager a[rel=next]")).await.expect("next").click().await.expect("click");
        arrive(&client, |_, query| query.is_some_and(|q| q.contains("from=100"))).await;
        let first = client.find(Locator::Css("#allocation-list tbody tr td")).await.expect("cell");
        assert_eq!(first.text().await.expect("text"), groups[100]["keys"][0].as_str().expect("resource"));

        // The graph: findings a page at a time; the lineage around a node deep in it.
        client.goto(&format!("{base}/ui/residency")).await.expect("goto");
        let findings = client.find_all(Locator::Css("#finding-list tbody tr")).await.expect("rows");
        assert_eq!(findings.len(), 100);
        let counts = text(&client, "main p").await;
        assert!(counts.contains("2500 jobs"), "{counts}");
        client.goto(&format!("{base}/ui/residency?{node}&depth=3#focus")).await.expect("goto");
        let columns = client.find_all(Locator::Css(".lineage section h3")).await.expect("columns");
        let mut titles = Vec::new();
        for c in &columns {
            titles.push(c.text().await.expect("text"));
        }
        assert!(
            titles.iter().any(|t| t == "Upstream 2") && titles.iter().any(|t| t == "Downstream 1"),
            "lineage both ways from a node deep in the graph: {titles:?}"
        );
        // However many columns lie upstream, the node itself is in view.
        let left = client
            .execute("const r = document.getElementById('focus').getBoundingClientRect(); return [r.left, window.innerWidth];", vec![])
            .await
            .expect("position");
        let (x, width) = (left[0].as_f64().unwrap_or(-1.0), left[1].as_f64().unwrap_or(0.0));
        assert!(x >= 0.0 && x < width, "the node's column is at {x} of {width}");
        let shot = client.screenshot().await.expect("screenshot");
        std::fs::write(screenshots().join("residency-at-scale.png"), shot).expect("write");
        client.close().await.expect("close");
    });
    println!("{} billing rows, {} lineage nodes", scale.rows, scale.nodes);
}

/// Deque's axe-core, the accessibility engine browsers' developer tools use, run in Chromium on
/// every page with data in it: no WCAG 2.1 A or AA rule is broken (labels, names, contrast,
/// landmarks, headings, tables, keyboard access).
#[test]
fn every_page_passes_an_automated_wcag_audit() {
    use common::server::{keyed_ledger, namespace_review};
    let axe = std::env::var("ASSAY_AXE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("target/tools/node_modules/axe-core/axe.min.js"));
    let axe = std::fs::read_to_string(&axe)
        .unwrap_or_else(|e| panic!("{}: {e} (scripts/test.sh installs axe-core from npm)", axe.display()));
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    common::billing_store(dir, 60, 5);
    keyed_ledger(dir);
    let estate = common::server::estate_copy(dir, "");
    std::fs::create_dir_all(estate.join("residency")).expect("mkdir");
    std::fs::write(estate.join("residency/gdpr.yaml"), common::server::RESIDENCY).expect("write");
    let server = Server::launch(
        dir,
        &["--estate", "estate", "--data", "data", "--ledger", "ledger", "--ledger-key", "k", "--poll", "0"],
    );
    let flow = common::server::flow;
    for e in [
        flow(1, "clean", ("s3://customers-eu", "raw"), ("s3://lake-eu", "clean")),
        flow(2, "train", ("s3://lake-eu", "clean"), ("s3://models-us", "churn")),
    ] {
        assert_eq!(server.json("POST", "/api/v1/lineage", &e).0, 201);
    }
    assert_eq!(server.json("POST", "/v1/admission", &namespace_review("a11y", json!({"owner": "ml"}))).0, 200);
    let index = eventually(Duration::from_secs(20), || {
        server.json("GET", "/api/v1/ledger?type=decision", &Value::Null).1["entries"][0]["index"].as_u64()
    })
    .expect("the decision in the ledger");
    let pages = [
        "/ui/posture".to_string(),
        "/ui/posture?policy=data.k8s.labels.deny".to_string(),
        "/ui/cost".to_string(),
        "/ui/cost?by=tag%3Acost-center".to_string(),
        "/ui/residency".to_string(),
        "/ui/residency?node=dataset%3As3%3A%2F%2Flake-eu%3Aclean".to_string(),
        "/ui/ledger".to_string(),
        format!("/ui/ledger/entries/{index}"),
    ];
    with_browser(&server.addr, |client, base| async move {
        let mut broken = Vec::new();
        for page in &pages {
            client.goto(&format!("{base}{page}")).await.expect("goto");
            client.execute(&format!("{axe}\n;return true;"), vec![]).await.expect("load axe-core");
            let found = client
                .execute_async(
                    "const done = arguments[arguments.length - 1];
                     axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
                        .then(r => done({passed: r.passes.length, violations: r.violations.map(v =>
                            `${v.id} (${v.impact}): ${v.help} at ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', ')}`)}))
                        .catch(e => done({passed: 0, violations: [`axe-core failed: ${e}`]}));",
                    vec![],
                )
                .await
                .expect("run axe-core");
            // The audit looked at the page: many rules apply to it and hold.
            assert!(found["passed"].as_u64().unwrap_or(0) >= 10, "{page}: {found}");
            for v in found["violations"].as_array().into_iter().flatten() {
                broken.push(format!("{page}: {}", v.as_str().unwrap_or("")));
            }
        }
        assert!(broken.is_empty(), "WCAG rules broken:\n{}", broken.join("\n"));
        client.close().await.expect("close");
    });
}
