//! The web UI under `/ui/`: server-rendered HTML from the same documents the `/api/v1/` routes
//! answer, one stable URL per page with its filters in the query, every asset embedded.
//!
//! - `GET /ui/` → `/ui/posture`.
//! - `GET /ui/posture?policy=&namespace=&file=&action=`: the active revision's verdict, its
//!   hotspots and violations, cost per cost center, refused revisions, drift, diagnostics.
//! - `GET /ui/cost?by=&period=&metric=&days=`: allocation, daily cost with its forecast and
//!   anomalies, budgets, and the manifests' estimate per cost center.
//! - `GET /ui/residency?node=&depth=`: residency findings with their paths, flows between
//!   regions with their egress cost, and the lineage graph around a node.
//! - `GET /ui/ledger?type=&before=`: the signed checkpoint and recent entries by type;
//!   `GET /ui/ledger/entries/{index}`: one entry, its inclusion proof, and its receipt and bytes
//!   to download for `assay log verify-receipt`.
//! - `GET /ui/assets/assay.css`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State as Extract};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde_json::Value;

use crate::api_http::{self, LedgerQuery, ResidencyQuery};
use crate::charts;
use crate::cost_view::{self, CostQuery};
use crate::ledger_read::{self, Unavailable};
use crate::posture::{self, Filter, Hotspot};
use crate::residency_view;
use crate::state::State;

const CSS: &str = include_str!("ui/assay.css");

/// `GET /ui/` and `GET /ui`.
pub(crate) async fn index() -> Redirect {
    Redirect::to("/ui/posture")
}

/// `GET /ui/assets/assay.css`.
pub(crate) async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")], CSS).into_response()
}

/// The pages, in the navigation's order: (path, title).
const PAGES: [(&str, &str); 4] = [
    ("/ui/posture", "Posture"),
    ("/ui/cost", "Cost"),
    ("/ui/residency", "Residency and lineage"),
    ("/ui/ledger", "Ledger"),
];

fn page(current: &str, title: &str, estate: &Value, body: Markup) -> Markup {
    let name = estate["name"].as_str().unwrap_or("estate");
    let revision = estate["revision"].as_str().unwrap_or("");
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (name) " · assay" }
                link rel="stylesheet" href="/ui/assets/assay.css";
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    span.brand { "assay" }
                    nav aria-label="Pages" {
                        @for (path, label) in PAGES {
                            a href=(path) aria-current=[(path == current).then_some("page")] { (label) }
                        }
                    }
                    span.where { (name) " at " code { (short(revision)) } }
                }
                main #main { (body) }
            }
        }
    }
}

/// A revision or commit as people quote it: its first 12 hex digits.
fn short(revision: &str) -> &str {
    let hex = revision.strip_prefix("sha256:").unwrap_or(revision);
    hex.get(..12).unwrap_or(hex)
}

/// A link to the posture page's violations with one filter set (the hotspots count every
/// violation, so their links do not keep other filters).
fn filtered(set: impl FnOnce(&mut Filter)) -> String {
    let mut f = Filter::default();
    set(&mut f);
    match serde_urlencoded::to_string(&f) {
        Ok(q) if !q.is_empty() => format!("/ui/posture?{q}#violations"),
        _ => "/ui/posture#violations".into(),
    }
}

fn hotspot_table(caption: &str, column: &str, rows: &[Hotspot], link: impl Fn(&str) -> String) -> Markup {
    html! {
        table {
            caption { (caption) }
            thead { tr { th scope="col" { (column) } th.num scope="col" { "Denied" } th.num scope="col" { "Warnings" } th.num scope="col" { "Dry run" } } }
            tbody {
                @for h in rows.iter().take(10) {
                    tr {
                        td { a href=(link(&h.key)) { @if h.key == "-" { "(no namespace)" } @else { code { (h.key) } } } }
                        td.num.deny[h.deny > 0] { (h.deny) }
                        td.num.warn[h.warn > 0] { (h.warn) }
                        td.num { (h.dryrun) }
                    }
                }
            }
        }
        @if rows.len() > 10 { p.muted { (rows.len() - 10) " more in " code { "/api/v1/posture" } } }
    }
}

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn money(v: &Value) -> String {
    v.as_f64().map(assay_verdict::render::money).unwrap_or_default()
}

/// Rows a long table shows at a time: a page stays quick to load and to read however large the
/// estate or the graph; the JSON API has every row.
const PAGE: usize = 100;

/// The first row to show: `from` rounded down to a page, and within the table.
fn page_start(from: Option<usize>, total: usize) -> usize {
    let from = from.unwrap_or(0).min(total.saturating_sub(1));
    from - from % PAGE
}

/// Where a long table is: "Rows 101–200 of 1366", with links to the pages before and after
/// (`link(offset)` is the URL of the page that starts at `offset`). Nothing for a short table.
fn pager(label: &str, total: usize, from: usize, link: impl Fn(usize) -> String) -> Markup {
    html! {
        @if total > PAGE {
            nav.pager aria-label=(label) {
                "Rows " (from + 1) "–" ((from + PAGE).min(total)) " of " (total) ". "
                @if from > 0 { a href=(link(from - PAGE)) rel="prev" { "Previous " (PAGE) } " " }
                @if from + PAGE < total { a href=(link(from + PAGE)) rel="next" { "Next " (PAGE.min(total - from - PAGE)) } }
            }
        }
    }
}

/// `?from=`: the first row of a long table to show.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub(crate) struct Offset {
    #[serde(default)]
    pub(crate) from: Option<usize>,
}

/// `GET /ui/posture`.
pub(crate) async fn posture(
    Extract(state): Extract<Arc<State>>,
    Query(filter): Query<Filter>,
    Query(offset): Query<Offset>,
) -> Response {
    let doc = match posture::document(&state, &filter).await {
        Ok(doc) => doc,
        Err(why) => {
            let body = html! { h1 { "Posture" } p.empty role="alert" { (why) } };
            let estate = estate_of(&state);
            return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, page("/ui/posture", "Posture", &estate, body))
                .into_response();
        }
    };
    let estate = &doc["estate"];
    let summary = &doc["summary"];
    let passed = summary["passed"].as_bool().unwrap_or(false);
    let violations = doc["violations"].as_array().cloned().unwrap_or_default();
    let hotspots: posture::Hotspots = serde_json::from_value(doc["hotspots"].clone()).unwrap_or(posture::Hotspots {
        policies: Vec::new(),
        namespaces: Vec::new(),
        files: Vec::new(),
    });
    let tiles = [
        ("Denied", count(&summary["denied"])),
        ("Warnings", count(&summary["warnings"])),
        ("Dry run", count(&summary["dryrun"])),
        ("Budgets exceeded", count(&summary["budget_findings"])),
        ("Errors", count(&summary["errors"])),
        ("Objects checked", count(&summary["objects"])),
        ("Policies", count(&summary["policies"])),
    ];
    let body = html! {
        h1 { "Posture" }
        p {
            "Estate " strong { (estate["name"].as_str().unwrap_or("(unnamed)")) }
            " at revision " code { (estate["revision"].as_str().unwrap_or("")) }
            @if let Some(commit) = estate["commit"].as_str() { " (commit " code { (short(commit)) } ")" }
            ", active since " (estate["active_since"].as_str().unwrap_or("")) ". "
            @if estate["require_signed"].as_bool().unwrap_or(false) {
                "Only signed commits from trusted signers are activated."
            } @else {
                "Commit signatures are not required (" code { "require_signed" } " is off)."
            }
        }
        p {
            span.status.pass[passed].fail[!passed] role="status" { @if passed { "PASS" } @else { "FAIL" } }
            " as " code { "assay check" } " judges this revision."
        }
        dl.tiles aria-label="Summary" {
            @for (label, n) in tiles { div { dt { (label) } dd { (n) } } }
        }
        h2 #hotspots { "Hotspots" }
        @if hotspots.policies.is_empty() {
            p.empty { "No policy finds anything to say about this revision." }
        } @else {
            div.grid {
                div { (hotspot_table("By policy", "Policy", &hotspots.policies, |k| filtered(|f| f.policy = Some(k.to_string())))) }
                div { (hotspot_table("By namespace", "Namespace", &hotspots.namespaces, |k| filtered(|f| f.namespace = Some(k.to_string())))) }
                div { (hotspot_table("By file", "File", &hotspots.files, |k| filtered(|f| f.file = Some(k.to_string())))) }
            }
        }
        h2 #violations { "Violations" }
        form.filters method="get" action="/ui/posture" aria-label="Filter violations" {
            label { "Policy" input type="text" name="policy" value=[filter.policy.as_deref()]; }
            label { "Namespace" input type="text" name="namespace" value=[filter.namespace.as_deref()]; }
            label { "File" input type="text" name="file" value=[filter.file.as_deref()]; }
            label { "Action"
                select name="action" {
                    option value="" { "any" }
                    @for a in ["deny", "warn", "dryrun"] {
                        option value=(a) selected[filter.action.as_deref() == Some(a)] { (a) }
                    }
                }
            }
            button type="submit" { "Filter" }
            @if !filter.is_empty() { a href="/ui/posture#violations" { "Clear filters" } }
        }
        @if violations.is_empty() {
            p.empty { @if filter.is_empty() { "No violations." } @else { "No violation matches these filters." } }
        } @else {
            @let from = page_start(offset.from, violations.len());
            table #violation-list {
                caption { (violations.len()) " violations" }
                thead { tr { th scope="col" { "Action" } th scope="col" { "File" } th scope="col" { "Object" } th scope="col" { "Policy" } th scope="col" { "Message" } } }
                tbody {
                    @for v in violations.iter().skip(from).take(PAGE) {
                        @let action = v["action"].as_str().unwrap_or("");
                        tr {
                            td.deny[action == "deny"].warn[action == "warn"] { (action) }
                            td { code { (v["path"].as_str().unwrap_or("")) ":" (v["line"]) } }
                            td { code { (v["object"].as_str().unwrap_or("")) } }
                            td { code { (policy_id(&v["policy"])) } }
                            td { (v["message"].as_str().unwrap_or("")) }
                        }
                    }
                }
            }
            (pager("Pages of violations", violations.len(), from, |n| {
                let q = serde_urlencoded::to_string(&filter).unwrap_or_default();
                format!("/ui/posture?{q}{}from={n}#violations", if q.is_empty() { "" } else { "&" })
            }))
        }
        @if let Some(cost) = doc["cost"].as_object() {
            h2 #cost { "Cost of the manifests and Terraform" }
            p { "Estimated " strong { (money(&cost["monthly"])) " " (cost["currency"].as_str().unwrap_or("")) } " a month." }
            table {
                caption { "By cost center" }
                thead { tr { th scope="col" { "Cost center" } th.num scope="col" { "Monthly" } } }
                tbody {
                    @for c in cost["by_cost_center"].as_array().into_iter().flatten() {
                        tr { td { (c["cost_center"].as_str().unwrap_or("(no cost-center label)")) } td.num { (money(&c["monthly"])) } }
                    }
                }
            }
            @for f in cost["budget_findings"].as_array().into_iter().flatten() {
                p { strong { (f["action"].as_str().unwrap_or("")) } " " code { (f["path"].as_str().unwrap_or("")) ":" (f["line"]) } " " (f["message"].as_str().unwrap_or("")) }
            }
        }
        @if let Some(drift) = doc["drift"].as_object() {
            h2 #drift { "Drift" }
            p {
                "Cluster " code { (drift["cluster"].as_str().unwrap_or("")) } " against revision " code { (short(drift["revision"].as_str().unwrap_or(""))) }
                ": " (count(&drift["counts"]["in_sync"])) " in sync, " (count(&drift["counts"]["drifted"])) " drifted, "
                (count(&drift["counts"]["missing"])) " missing, " (count(&drift["counts"]["extra"])) " extra."
            }
        }
        h2 #refused { "Refused revisions" }
        @let refused = doc["refused"].as_array().cloned().unwrap_or_default();
        @if refused.is_empty() {
            p.empty { "No revision has been refused since the server started." }
        } @else {
            table {
                thead { tr { th scope="col" { "Time" } th scope="col" { "Revision" } th scope="col" { "Why" } } }
                tbody {
                    @for r in &refused {
                        tr {
                            td { (r["time"].as_str().unwrap_or("")) }
                            td { code { (short(r["revision"].as_str().unwrap_or(""))) } }
                            td { @for why in r["reasons"].as_array().into_iter().flatten() { (why.as_str().unwrap_or("")) br; } }
                        }
                    }
                }
            }
        }
        @let diagnostics: Vec<&Value> = doc["diagnostics"].as_array().into_iter().flatten().filter(|d| d["severity"] != "info").collect();
        @if !diagnostics.is_empty() {
            h2 #diagnostics { "Diagnostics" }
            table {
                thead { tr { th scope="col" { "Severity" } th scope="col" { "Where" } th scope="col" { "Message" } } }
                tbody {
                    @for d in diagnostics {
                        tr {
                            td { (d["severity"].as_str().unwrap_or("")) }
                            td { code { (d["path"].as_str().unwrap_or("")) @if let Some(l) = d["line"].as_u64() { ":" (l) } } }
                            td { (d["message"].as_str().unwrap_or("")) }
                        }
                    }
                }
            }
        }
        p.muted { "The same data as JSON: " a href=(api_link(&filter)) { code { (api_link(&filter)) } } "." }
    };
    page("/ui/posture", "Posture", estate, body).into_response()
}

fn api_link(filter: &Filter) -> String {
    match serde_urlencoded::to_string(filter) {
        Ok(q) if !q.is_empty() => format!("/api/v1/posture?{q}"),
        _ => "/api/v1/posture".into(),
    }
}

/// A policy reference as `assay check` names it: the rule, or `Kind/name` of a constraint.
fn policy_id(policy: &Value) -> String {
    match (policy["rule"].as_str(), policy["kind"].as_str(), policy["name"].as_str()) {
        (Some(rule), _, _) => rule.to_string(),
        (None, Some(kind), Some(name)) => format!("{kind}/{name}"),
        _ => policy.to_string(),
    }
}

/// Record types, for the ledger page's filter.
const RECORD_TYPES: [&str; 11] = [
    "decision",
    "verdict",
    "activation",
    "refusal",
    "finding",
    "lineage-event",
    "residency-finding",
    "quality-finding",
    "provenance",
    "sync-attestation",
    "drift-observation",
];

fn estate_of(state: &State) -> Value {
    let active = state.active();
    serde_json::json!({"name": active.name, "revision": active.revision})
}

fn no_ledger(why: &Unavailable) -> Markup {
    html! {
        @match why {
            Unavailable::NoLedger => p.empty {
                "This server keeps no ledger. Create one with " code { "assay log keygen" } " and "
                code { "assay log init" } ", then start the server with " code { "--ledger DIR --ledger-key KEY" } "."
            },
            Unavailable::NoEntry(index, size) => p.empty { "Entry " (index) " is not in the ledger: it has " (size) " entries." },
            Unavailable::Broken(why) => p.empty { "The ledger cannot be read: " (why) },
        }
    }
}

fn checkpoint_box(c: &Value) -> Markup {
    html! {
        dl.tiles aria-label="Checkpoint" {
            div { dt { "Log" } dd { code { (c["origin"].as_str().unwrap_or("")) } } }
            div { dt { "Entries" } dd { (c["size"]) } }
        }
        p { "Root hash " code { (c["root_hash"].as_str().unwrap_or("")) } }
        details {
            summary { "The signed checkpoint" }
            pre { (c["note"].as_str().unwrap_or("")) }
        }
    }
}

/// `GET /ui/ledger`.
pub(crate) async fn ledger(Extract(state): Extract<Arc<State>>, Query(q): Query<LedgerQuery>) -> Markup {
    let files = state.ledger.files.clone();
    let query = q.clone();
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let read = api_http::blocking(move || ledger_read::recent(files, query.kind.as_deref(), query.before, limit)).await;
    let body = html! {
        h1 { "Ledger" }
        p {
            "Every verdict, decision and event this server recorded, in a Merkle log with signed checkpoints "
            "(C2SP tlog-tiles). Each entry has an inclusion proof and a receipt an auditor verifies offline."
        }
        @match &read {
            Err(why) => (no_ledger(why)),
            Ok(doc) => {
                h2 { "Checkpoint" }
                (checkpoint_box(&doc["checkpoint"]))
                h2 #entries { "Recent entries" }
                form.filters method="get" action="/ui/ledger" aria-label="Filter entries" {
                    label { "Type"
                        select name="type" {
                            option value="" { "any" }
                            @for t in RECORD_TYPES { option value=(t) selected[q.kind.as_deref() == Some(t)] { (t) } }
                        }
                    }
                    button type="submit" { "Show" }
                }
                @let entries = doc["entries"].as_array().cloned().unwrap_or_default();
                @if entries.is_empty() {
                    p.empty { @if q.kind.is_some() { "No entry of this type among the latest." } @else { "The ledger is empty." } }
                } @else {
                    table #entry-list {
                        thead { tr { th.num scope="col" { "Index" } th scope="col" { "Type" } th scope="col" { "Time" } th scope="col" { "Summary" } } }
                        tbody {
                            @for e in &entries {
                                tr {
                                    td.num { a href={ "/ui/ledger/entries/" (e["index"]) } { (e["index"]) } }
                                    td { (e["type"].as_str().unwrap_or("")) }
                                    td { (e["time"].as_str().unwrap_or("")) }
                                    td { (e["summary"].as_str().unwrap_or("")) }
                                }
                            }
                        }
                    }
                    @if let Some(before) = doc["next_before"].as_u64() {
                        @let next = LedgerQuery { before: Some(before), ..q.clone() };
                        p { a href={ "/ui/ledger?" (serde_urlencoded::to_string(&next).unwrap_or_default()) "#entries" } { "Older entries" } }
                    }
                }
            }
        }
    };
    page("/ui/ledger", "Ledger", &estate_of(&state), body)
}

/// `GET /ui/ledger/entries/{index}`.
pub(crate) async fn ledger_entry(Extract(state): Extract<Arc<State>>, Path(index): Path<u64>) -> Response {
    let files = state.ledger.files.clone();
    let read = api_http::blocking(move || ledger_read::entry(files, index)).await;
    let missing = matches!(read, Err(Unavailable::NoEntry(..) | Unavailable::NoLedger));
    let body = html! {
        h1 { "Ledger entry " (index) }
        p { a href="/ui/ledger" { "All entries" } }
        @match &read {
            Err(why) => (no_ledger(why)),
            Ok((_, doc)) => {
                @let origin = doc["checkpoint"]["origin"].as_str().unwrap_or("");
                p { strong { (doc["type"].as_str().unwrap_or("")) } " " (doc["summary"].as_str().unwrap_or("")) }
                h2 { "Receipt" }
                p {
                    "A receipt proves, offline, that this entry is in the log whose checkpoint it carries: "
                    a href={ "/api/v1/ledger/entries/" (index) "/receipt" } download={ "entry-" (index) ".tlog-proof" } { "download the receipt" }
                    " and "
                    a href={ "/api/v1/ledger/entries/" (index) "/raw" } download={ "entry-" (index) ".json" } { "the entry" }
                    ", then check them with the verifier key of " code { (origin) } " (what " code { "assay log keygen --public" } " wrote):"
                }
                pre { "assay log verify-receipt entry-" (index) ".tlog-proof --entry entry-" (index) ".json --key LOG.pub" }
                h2 { "Inclusion proof" }
                p { "Leaf hash " code { (doc["leaf_hash"].as_str().unwrap_or("")) } }
                ol {
                    @for h in doc["inclusion_proof"].as_array().into_iter().flatten() { li { code { (h.as_str().unwrap_or("")) } } }
                }
                (checkpoint_box(&doc["checkpoint"]))
                h2 { "Record" }
                pre { (serde_json::to_string_pretty(&doc["record"]).unwrap_or_default()) }
            }
        }
    };
    let markup = page("/ui/ledger", &format!("Entry {index}"), &estate_of(&state), body);
    if missing { (axum::http::StatusCode::NOT_FOUND, markup).into_response() } else { markup.into_response() }
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().into_iter().flatten().map(num).collect()
}

/// `GET /ui/cost`.
pub(crate) async fn cost(
    Extract(state): Extract<Arc<State>>,
    Query(q): Query<CostQuery>,
    Query(offset): Query<Offset>,
) -> Response {
    let active = state.active();
    let read = cost_view::document(state.data.as_deref(), &active, &q).await;
    let manifests = posture::verdict(Arc::clone(&active)).await.ok().and_then(|v| v.cost.clone());
    let invalid = matches!(read, Err(cost_view::Unavailable::Invalid(_)));
    let body = html! {
        h1 { "Cost" }
        form.filters method="get" action="/ui/cost" aria-label="Choose what to show" {
            label { "Allocate by" input type="text" name="by" value=(q.by.as_deref().unwrap_or("ServiceName")) placeholder="ServiceName,tag:cost-center"; }
            label { "Billing period" input type="month" name="period" value=[q.period.as_deref()]; }
            label { "Cost column"
                select name="metric" {
                    @for m in ["EffectiveCost", "BilledCost", "ListCost", "ContractedCost"] {
                        option value=(m) selected[q.metric.as_deref().unwrap_or("EffectiveCost") == m] { (m) }
                    }
                }
            }
            label { "Forecast days" input type="number" name="days" min="1" max="366" value=(q.days.unwrap_or(30)); }
            button type="submit" { "Show" }
        }
        @match &read {
            Err(cost_view::Unavailable::NoData) => p.empty {
                "This server has no data directory. Start it with " code { "--data DIR" } " and load billing data with "
                code { "assay cost --data DIR ingest FILE..." } "."
            },
            Err(cost_view::Unavailable::Invalid(why)) => p.empty role="alert" { (why) },
            Err(cost_view::Unavailable::Broken(why)) => p.empty role="alert" { "The billing store cannot be read: " (why) },
            Ok(doc) if doc["billing"].is_null() => p.empty {
                "No billing data yet: run " code { "assay cost --data DIR ingest FILE..." } " with FOCUS exports."
            },
            Ok(doc) => {
                @let currency = doc["billing"]["currency"].as_str().unwrap_or("");
                p {
                    "Billing data from " (doc["billing"]["first_day"].as_str().unwrap_or("")) " to "
                    (doc["billing"]["last_day"].as_str().unwrap_or("")) ", in " (currency) "; "
                    code { (doc["daily"]["metric"].as_str().unwrap_or("")) } "."
                }
                h2 #daily { "Daily cost and forecast" }
                @let days: Vec<String> = doc["daily"]["days"].as_array().into_iter().flatten().filter_map(|d| d.as_str().map(str::to_string)).collect();
                @let actual = floats(&doc["daily"]["total"]);
                @let f = &doc["forecast"]["forecast"];
                @let (point, l80, u80, l95, u95) = (floats(&f["point"]), floats(&f["lower80"]), floats(&f["upper80"]), floats(&f["lower95"]), floats(&f["upper95"]));
                @let dates: Vec<String> = days.iter().cloned().chain(doc["forecast"]["days"].as_array().into_iter().flatten().filter_map(|d| d.as_str().map(str::to_string))).collect();
                @let anomalous: Vec<usize> = doc["anomalies"].as_array().into_iter().flatten()
                    .flat_map(|a| {
                        let (s, e) = (a["start"].as_str().unwrap_or(""), a["end"].as_str().unwrap_or(""));
                        days.iter().enumerate().filter(move |(_, d)| d.as_str() >= s && d.as_str() <= e).map(|(i, _)| i)
                    }).collect();
                @let band = charts::Band { point: &point, lower80: &l80, upper80: &u80, lower95: &l95, upper95: &u95 };
                figure {
                    div role="img" aria-label={ "Daily cost from " (days.first().cloned().unwrap_or_default()) " to " (days.last().cloned().unwrap_or_default()) ", with a " (point.len()) "-day forecast and its 80% and 95% bands; " (anomalous.len()) " anomalous days marked" } {
                        (PreEscaped(charts::daily(&dates, &actual, (!point.is_empty()).then_some(&band), &anomalous, currency)))
                    }
                    figcaption.muted {
                        "Blue: daily " (doc["daily"]["metric"].as_str().unwrap_or("")) ". Brown: forecast ("
                        (doc["forecast"]["forecast"]["model"].as_str().unwrap_or("no forecast")) "), shaded 80% and 95% intervals. Red dots: anomalous days."
                    }
                }
                // The chart's numbers as a table, for screen readers and for copying.
                details #daily-numbers {
                    summary { "The numbers behind the chart" }
                    table {
                        thead { tr { th scope="col" { "Day" } th.num scope="col" { "Cost" } th.num scope="col" { "Forecast" } th.num scope="col" { "80% interval" } th.num scope="col" { "95% interval" } } }
                        tbody {
                            @for (i, day) in days.iter().enumerate() {
                                tr { td { (day) } td.num.deny[anomalous.contains(&i)] { (assay_verdict::render::money(actual[i])) } td {} td {} td {} }
                            }
                            @for (i, day) in dates.iter().skip(days.len()).enumerate() {
                                tr {
                                    td { (day) } td {}
                                    td.num { (point.get(i).map(|v| assay_verdict::render::money(*v)).unwrap_or_default()) }
                                    td.num { (l80.get(i).map(|v| assay_verdict::render::money(*v)).unwrap_or_default()) " – " (u80.get(i).map(|v| assay_verdict::render::money(*v)).unwrap_or_default()) }
                                    td.num { (l95.get(i).map(|v| assay_verdict::render::money(*v)).unwrap_or_default()) " – " (u95.get(i).map(|v| assay_verdict::render::money(*v)).unwrap_or_default()) }
                                }
                            }
                        }
                    }
                }
                @if let Some(t) = doc["forecast"]["totals"].as_object() {
                    p { "Forecast of the next " (point.len()) " days: " strong { (money(&t["total"])) " " (currency) }
                        " (80%: " (money(&t["total80"][0])) " – " (money(&t["total80"][1])) "; 95%: " (money(&t["total95"][0])) " – " (money(&t["total95"][1])) ")." }
                }
                @if let Some(e) = doc["forecast"]["error"].as_str() { p.muted { "No forecast: " (e) } }
                h2 #anomalies { "Anomalies" }
                @let anomalies = doc["anomalies"].as_array().cloned().unwrap_or_default();
                @if anomalies.is_empty() { p.empty { "No anomaly in the billing data." } } @else {
                    table #anomaly-list {
                        thead { tr { th scope="col" { "From" } th scope="col" { "To" } th scope="col" { "Seen in" } th.num scope="col" { "Expected" } th.num scope="col" { "Actual" } th.num scope="col" { "Impact" } th scope="col" { "Root cause" } } }
                        tbody {
                            @for a in &anomalies {
                                @let cause = &a["root_causes"][0];
                                tr {
                                    td { (a["start"].as_str().unwrap_or("")) } td { (a["end"].as_str().unwrap_or("")) }
                                    td { (a["monitor"]["dimension"].as_str().unwrap_or("")) " " code { (a["monitor"]["value"].as_str().unwrap_or("")) } }
                                    td.num { (money(&a["expected"])) } td.num { (money(&a["actual"])) } td.num.deny { "+" (money(&a["impact"])) }
                                    td {
                                        @if cause.is_object() {
                                            (cause["service"].as_str().unwrap_or("")) " / " (cause["region"].as_str().unwrap_or("")) " / "
                                            (cause["account"].as_str().unwrap_or("")) " / " (cause["cost_center"].as_str().unwrap_or("(untagged)"))
                                            " (" (format!("{:.0}", num(&cause["share"]) * 100.0)) "% of the impact)"
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                h2 #allocation { "Allocation" }
                @let alloc = &doc["allocation"];
                p { "By " code { (alloc["dimensions"].as_array().into_iter().flatten().filter_map(|d| d.as_str()).collect::<Vec<_>>().join(", ")) }
                    @if let Some(p) = alloc["period"].as_str() { ", billing period " (p) }
                    ": total " strong { (alloc["total_cents"].as_i64().map(assay_cost::allocation::format_cents).unwrap_or_default()) " " (currency) } "." }
                @let groups: &[Value] = alloc["groups"].as_array().map(Vec::as_slice).unwrap_or_default();
                @let from = page_start(offset.from, groups.len());
                table #allocation-list {
                    thead { tr {
                        @for d in alloc["dimensions"].as_array().into_iter().flatten() { th scope="col" { (d.as_str().unwrap_or("")) } }
                        th.num scope="col" { (alloc["metric"].as_str().unwrap_or("")) } th scope="col" { "Share" }
                    } }
                    tbody {
                        @for g in groups.iter().skip(from).take(PAGE) {
                            tr {
                                @for k in g["keys"].as_array().into_iter().flatten() { td { (k.as_str().unwrap_or("(none)")) } }
                                td.num { (g["cents"].as_i64().map(assay_cost::allocation::format_cents).unwrap_or_default()) }
                                td { span.bar style={ "width:" (format!("{:.1}", num(&g["share"]) * 100.0)) "%" } {} " " (format!("{:.1}%", num(&g["share"]) * 100.0)) }
                            }
                        }
                    }
                }
                (pager("Pages of the allocation", groups.len(), from, |n| {
                    let q = serde_urlencoded::to_string(&q).unwrap_or_default();
                    format!("/ui/cost?{q}{}from={n}#allocation", if q.is_empty() { "" } else { "&" })
                }))
                h2 #budgets { "Budgets" }
                @let statuses = doc["budgets"].as_array().cloned().unwrap_or_default();
                @if statuses.is_empty() { p.empty { "No budget of the estate has billing data in its scope." } } @else {
                    table #budget-list {
                        thead { tr { th scope="col" { "Budget" } th scope="col" { "Period" } th.num scope="col" { "Amount" } th.num scope="col" { "Actual" } th.num scope="col" { "Forecast" } th.num scope="col" { "80%" } th.num scope="col" { "95%" } th scope="col" { "Predicted breach" } } }
                        tbody {
                            @for b in &statuses {
                                tr {
                                    td { (b["name"].as_str().unwrap_or("")) } td { (b["period"].as_str().unwrap_or("")) }
                                    td.num { (money(&b["amount"])) } td.num { (money(&b["actual"])) }
                                    td.num.deny[num(&b["forecast"]) > num(&b["amount"])] { (money(&b["forecast"])) }
                                    td.num { (money(&b["forecast80"][0])) " – " (money(&b["forecast80"][1])) }
                                    td.num { (money(&b["forecast95"][0])) " – " (money(&b["forecast95"][1])) }
                                    td { @match (b["breach_date"].as_str(), b["earliest_breach_date"].as_str()) {
                                        (Some(d), _) => strong { (d) },
                                        (None, Some(d)) => { "none (earliest " (d) ")" },
                                        (None, None) => "none",
                                    } }
                                }
                            }
                        }
                    }
                }
                @for s in doc["budgets_skipped"].as_array().into_iter().flatten() {
                    p.muted { code { (s["path"].as_str().unwrap_or("")) ":" (s["line"]) } " " (s["reason"].as_str().unwrap_or("")) }
                }
            }
        }
        @if let Some(c) = &manifests {
            h2 #manifests { "What the manifests and Terraform cost" }
            p { "Estimated " strong { (assay_verdict::render::money(c.monthly)) " " (c.currency) } " a month, as " code { "assay check" } " estimates it." }
            table {
                thead { tr { th scope="col" { "Cost center" } th.num scope="col" { "Monthly" } } }
                tbody { @for cc in &c.by_cost_center { tr { td { (cc.cost_center.as_deref().unwrap_or("(no cost-center label)")) } td.num { (assay_verdict::render::money(cc.monthly)) } } } }
            }
        }
        p.muted { "The same data as JSON: " code { "/api/v1/cost" } "." }
    };
    let markup = page("/ui/cost", "Cost", &estate_of(&state), body);
    if invalid { (axum::http::StatusCode::BAD_REQUEST, markup).into_response() } else { markup.into_response() }
}

fn node_link(id: &str, depth: usize) -> String {
    let q = ResidencyQuery { node: Some(id.to_string()), depth: Some(depth) };
    // To the node itself: the browser scrolls the columns to it, however many lie upstream.
    format!("/ui/residency?{}#focus", serde_urlencoded::to_string(&q).unwrap_or_default())
}

fn gigabytes(bytes: &Value) -> String {
    format!("{:.2}", bytes.as_f64().unwrap_or(0.0) / 1e9)
}

/// `?node=&depth=&findings_from=&flows_from=`: the residency page's query, the API's
/// ([`ResidencyQuery`]) with an offset for each of the tables of findings and flows.
#[derive(Debug, Default, Clone, serde::Deserialize, serde::Serialize)]
pub(crate) struct ResidencyPage {
    /// The node to show the lineage around.
    #[serde(default, deserialize_with = "crate::posture::empty_as_none", skip_serializing_if = "Option::is_none")]
    pub(crate) node: Option<String>,
    /// Jobs away from it, each way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) depth: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) findings_from: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) flows_from: Option<usize>,
}

/// `GET /ui/residency`.
pub(crate) async fn residency(Extract(state): Extract<Arc<State>>, Query(p): Query<ResidencyPage>) -> Response {
    let depth = residency_view::depth(p.depth);
    let read = residency_view::document(&state, p.node.as_deref(), depth).await;
    let status = match &read {
        Err(residency_view::Unavailable::NoNode(_)) => axum::http::StatusCode::NOT_FOUND,
        Err(residency_view::Unavailable::Broken(_)) => axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        _ => axum::http::StatusCode::OK,
    };
    // The page with one table moved to another offset (the other table and the graph stay).
    let paged = |set: &dyn Fn(&mut ResidencyPage), anchor: &str| {
        let mut next = p.clone();
        set(&mut next);
        format!("/ui/residency?{}#{anchor}", serde_urlencoded::to_string(&next).unwrap_or_default())
    };
    let body = html! {
        h1 { "Residency and lineage" }
        @match &read {
            Err(residency_view::Unavailable::NoGraph) => p.empty {
                "This server has no data directory, so no lineage graph. Start it with " code { "--data DIR" }
                " and send it OpenLineage events (" code { "POST /api/v1/lineage" } "), or load them with "
                code { "assay lineage ingest --data DIR FILE.jsonl" } "."
            },
            Err(residency_view::Unavailable::NoNode(why)) => p.empty role="alert" { (why) },
            Err(residency_view::Unavailable::Broken(why)) => p.empty role="alert" { "The lineage graph cannot be read: " (why) },
            Ok(doc) => {
                @let overview = &*doc.overview;
                @let c = &overview["counts"];
                p { (c["datasets"]) " datasets, " (c["jobs"]) " jobs, " (c["runs"]) " runs from " (c["events"]) " OpenLineage events." }
                h2 #findings { "Residency findings" }
                @let findings: &[Value] = overview["findings"].as_array().map(Vec::as_slice).unwrap_or_default();
                @if findings.is_empty() { p.empty { "No flow breaks a residency rule." } } @else {
                    @let from = page_start(p.findings_from, findings.len());
                    table #finding-list {
                        caption { (findings.len()) " findings" }
                        thead { tr { th scope="col" { "Finding" } th scope="col" { "Rule" } th scope="col" { "Path from the origin of the data" } } }
                        tbody {
                            @for f in findings.iter().skip(from).take(PAGE) {
                                tr {
                                    // The path is in its own column, each step a link.
                                    td.deny { (f["message"].as_str().unwrap_or("").split(" (path: ").next().unwrap_or("")) }
                                    td.nowrap { code { (f["rule"].as_str().unwrap_or("")) } }
                                    td { @for (i, step) in f["path"].as_array().into_iter().flatten().enumerate() {
                                        @if i > 0 { " → " }
                                        a href=(node_link(step.as_str().unwrap_or(""), depth)) { code { (step.as_str().unwrap_or("")) } }
                                    } }
                                }
                            }
                        }
                    }
                    (pager("Pages of findings", findings.len(), from, |n| paged(&|next| next.findings_from = Some(n), "findings")))
                }
                h2 #regions { "Flows between regions" }
                @let regions = overview["regions"].as_array().map(Vec::as_slice).unwrap_or_default();
                @let currency = overview["currency"].as_str().unwrap_or("");
                @if regions.is_empty() { p.empty { "No data crosses a region." } } @else {
                    table #region-list {
                        thead { tr { th scope="col" { "From" } th scope="col" { "To" } th.num scope="col" { "GB" } th.num scope="col" { "Runs" } th.num scope="col" { "Egress (" (currency) ")" } } }
                        tbody { @for r in regions { tr {
                            td { (r["from"].as_str().unwrap_or("")) } td { (r["to"].as_str().unwrap_or("")) }
                            td.num { (gigabytes(&r["bytes"])) } td.num { (r["runs"]) } td.num { (money(&r["cost"])) }
                        } } }
                    }
                    @let flows: &[Value] = overview["flows"].as_array().map(Vec::as_slice).unwrap_or_default();
                    @let from = page_start(p.flows_from, flows.len());
                    table #flow-list {
                        caption { "Each flow, most expensive first: " (flows.len()) }
                        thead { tr { th scope="col" { "Job" } th scope="col" { "Dataset" } th scope="col" { "From" } th scope="col" { "To" } th.num scope="col" { "GB" } th.num scope="col" { "Egress" } } }
                        tbody { @for l in flows.iter().skip(from).take(PAGE) { tr {
                            td { a href=(node_link(l["job"].as_str().unwrap_or(""), depth)) { code { (l["job"].as_str().unwrap_or("")) } } }
                            td { a href=(node_link(l["dataset"].as_str().unwrap_or(""), depth)) { code { (l["dataset"].as_str().unwrap_or("")) } } }
                            td { (l["from"].as_str().unwrap_or("")) } td { (l["to"].as_str().unwrap_or("")) }
                            td.num { (gigabytes(&l["bytes"])) }
                            td.num { @if l["rate_per_gb"].is_null() { "no price" } @else { (money(&l["cost"])) } }
                        } } }
                    }
                    (pager("Pages of flows", flows.len(), from, |n| paged(&|next| next.flows_from = Some(n), "regions")))
                }
                h2 #lineage { "Lineage" }
                form.filters method="get" action="/ui/residency" aria-label="Show the lineage around a node" {
                    label { "Around" input type="text" name="node" value=[p.node.as_deref()] placeholder="dataset:NAMESPACE:NAME"; }
                    label { "Depth" input type="number" name="depth" min="1" max="20" value=(depth); }
                    button type="submit" { "Show" }
                }
                @if let Some(graph) = doc.lineage.as_ref().and_then(|l| l["graph"].as_array()) {
                    @let columns = by_distance(graph);
                    div.lineage {
                        @for (d, nodes) in &columns {
                            section id=[(*d == 0).then_some("focus")] aria-label={ @match *d { 0 => "This node", d if d < 0 => { (-d) " steps upstream" }, i64::MAX => "Elsewhere", d => { (d) " steps downstream" } } } {
                                h3 { @match *d { 0 => "This node", d if d < 0 => { "Upstream " (-d) }, i64::MAX => "Elsewhere", d => { "Downstream " (d) } } }
                                @for n in nodes {
                                    div.node.job[n["type"] == "JOB"] {
                                        span.muted { (if n["type"] == "JOB" { "job" } else { "dataset" }) }
                                        br;
                                        a href=(node_link(n["id"].as_str().unwrap_or(""), depth)) { code { (n["data"]["name"].as_str().unwrap_or("")) } }
                                        br;
                                        span.muted { (n["data"]["namespace"].as_str().unwrap_or("")) }
                                        @if let Some(r) = n["region"].as_str() { br; "region " strong { (r) } }
                                        @if let Some(c) = n["classification"].as_str() { br; span.tag { (c) } }
                                    }
                                }
                            }
                        }
                    }
                    // The page's only script: the columns scroll to put the node in the middle,
                    // upstream to its left and downstream to its right (without scripts, the
                    // #focus anchor still brings it into view).
                    script { (maud::PreEscaped("document.getElementById('focus')?.scrollIntoView({block: 'start', inline: 'center'});")) }
                } @else {
                    p.empty { "Pick a dataset or job: a link in a finding or a flow, or its id in the form." }
                }
            }
        }
        p.muted { "The same data as JSON, every finding and flow: " code { "/api/v1/residency" } "." }
    };
    (status, page("/ui/residency", "Residency and lineage", &estate_of(&state), body)).into_response()
}

/// The nodes of a graph by their distance from its centre (negative upstream; unreached last).
fn by_distance(graph: &[Value]) -> BTreeMap<i64, Vec<&Value>> {
    let mut columns: BTreeMap<i64, Vec<&Value>> = BTreeMap::new();
    for n in graph {
        columns.entry(n["distance"].as_i64().unwrap_or(i64::MAX)).or_default().push(n);
    }
    columns
}
