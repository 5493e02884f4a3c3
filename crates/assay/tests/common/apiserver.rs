//! A Kubernetes API server's read side, over HTTP, for tests (no API server runs on these
//! machines): discovery documents (`/api`, `/apis`, `/api/v1`, `/apis/GROUP/VERSION`), lists with
//! `limit` and `continue` pages, `labelSelector`, a `410 Gone` for an expired continue token,
//! `403 Forbidden` Status answers for what RBAC would refuse, and bearer-token authentication.
//! The shapes follow the Kubernetes API conventions (kind `APIResourceList`, `PodList` whose
//! items carry no kind, `Status` with `reason` and `code`); the objects are real ones, as tests
//! give them.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

/// A resource the server serves: (group, version, plural, kind, namespaced).
pub const RESOURCES: &[(&str, &str, &str, &str, bool)] = &[
    ("", "v1", "namespaces", "Namespace", false),
    ("", "v1", "pods", "Pod", true),
    ("", "v1", "services", "Service", true),
    ("", "v1", "configmaps", "ConfigMap", true),
    ("", "v1", "secrets", "Secret", true),
    ("apps", "v1", "deployments", "Deployment", true),
    ("apps", "v1", "replicasets", "ReplicaSet", true),
    ("batch", "v1", "jobs", "Job", true),
    ("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", false),
];

/// What the server holds and refuses.
#[derive(Default)]
pub struct Cluster {
    /// Every object, with apiVersion and kind.
    pub objects: Vec<Value>,
    /// Plurals whose lists RBAC refuses (403).
    pub forbidden: BTreeSet<String>,
    /// The token clients must present.
    pub token: String,
    /// Continue tokens that answer 410 Gone once.
    pub expired_once: BTreeSet<String>,
    /// Requests served, by path.
    pub requests: BTreeMap<String, usize>,
    /// Objects per page at most (2 when unset, so that clients must follow `continue`).
    pub page: Option<usize>,
    /// Watch events, by plural, to every open watch of it.
    pub events: Option<tokio::sync::broadcast::Sender<(String, Value)>>,
}

/// Changes an object the way the API server would and tells every watch of its kind: `kind` is
/// `ADDED`, `MODIFIED` or `DELETED`.
pub fn change(shared: &Shared, plural: &str, kind: &str, object: Value) {
    let mut cluster = shared.lock().expect("cluster");
    let same = |o: &Value| {
        o["kind"] == object["kind"]
            && o["metadata"]["name"] == object["metadata"]["name"]
            && o["metadata"]["namespace"] == object["metadata"]["namespace"]
    };
    cluster.objects.retain(|o| !same(o));
    if kind != "DELETED" {
        cluster.objects.push(object.clone());
    }
    if let Some(events) = &cluster.events {
        let _ = events.send((plural.to_string(), json!({"type": kind, "object": object})));
    }
}

/// Sends a raw watch event (a BOOKMARK, or an ERROR with a Status) to every watch of `plural`.
pub fn event(shared: &Shared, plural: &str, event: Value) {
    let cluster = shared.lock().expect("cluster");
    if let Some(events) = &cluster.events {
        let _ = events.send((plural.to_string(), event));
    }
}

pub type Shared = Arc<Mutex<Cluster>>;

fn status(code: u16, reason: &str, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    (StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), Json(body)).into_response()
}

fn authorised(cluster: &Cluster, headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {}", cluster.token))
}

fn api_resource_list(group_version: &str) -> Value {
    let resources: Vec<Value> = RESOURCES
        .iter()
        .filter(|(g, v, ..)| (if g.is_empty() { (*v).to_string() } else { format!("{g}/{v}") }) == group_version)
        .flat_map(|(_, _, plural, kind, namespaced)| {
            let verbs = json!(["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]);
            [
                json!({"name": plural, "singularName": kind.to_lowercase(), "namespaced": namespaced, "kind": kind, "verbs": verbs}),
                json!({"name": format!("{plural}/status"), "singularName": "", "namespaced": namespaced, "kind": kind, "verbs": ["get", "patch", "update"]}),
            ]
        })
        .collect();
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources})
}

fn groups() -> Value {
    let mut names: Vec<(&str, &str)> = RESOURCES.iter().filter(|r| !r.0.is_empty()).map(|r| (r.0, r.1)).collect();
    names.dedup();
    let groups: Vec<Value> = names
        .iter()
        .map(|(g, v)| {
            let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
            json!({"name": g, "versions": [gv], "preferredVersion": gv})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// The query's parameters, as the API server reads them (kube starts its queries with `?&`).
fn query(raw: Option<String>) -> BTreeMap<String, String> {
    let decode = |s: &str| {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'%' => match u8::from_str_radix(s.get(i + 1..i + 3).unwrap_or(""), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                },
                b'+' => {
                    out.push(b' ');
                    i += 1;
                }
                b => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    raw.unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

fn selects(selector: &str, object: &Value) -> bool {
    let labels = object.pointer("/metadata/labels").and_then(Value::as_object);
    selector.split(',').filter(|s| !s.is_empty()).all(|term| match term.split_once('=') {
        Some((k, v)) => labels.and_then(|l| l.get(k)).and_then(Value::as_str) == Some(v),
        None => labels.is_some_and(|l| l.contains_key(term)),
    })
}

fn list(
    shared: &Shared,
    headers: &HeaderMap,
    group: &str,
    version: &str,
    ns: Option<&str>,
    plural: &str,
    q: &BTreeMap<String, String>,
) -> Response {
    if q.get("watch").is_some_and(|w| w == "true" || w == "1") {
        return watch(shared, headers, ns, plural);
    }
    let mut cluster = shared.lock().expect("cluster");
    *cluster
        .requests
        .entry(format!("{group}/{version}/{}{plural}", ns.map(|n| format!("{n}/")).unwrap_or_default()))
        .or_default() += 1;
    if !authorised(&cluster, headers) {
        return status(401, "Unauthorized", "Unauthorized");
    }
    let Some(&(_, _, _, kind, namespaced)) = RESOURCES.iter().find(|r| r.0 == group && r.1 == version && r.2 == plural)
    else {
        return status(404, "NotFound", "the server could not find the requested resource");
    };
    if ns.is_some() && !namespaced {
        return status(404, "NotFound", "the server could not find the requested resource");
    }
    if cluster.forbidden.contains(plural) {
        let user = "system:serviceaccount:assay-system:assay";
        let place = ns.map(|n| format!(" in the namespace \"{n}\"")).unwrap_or_else(|| " at the cluster scope".into());
        return status(
            403,
            "Forbidden",
            &format!(
                "{plural} is forbidden: User \"{user}\" cannot list resource \"{plural}\" in API group \"{group}\"{place}"
            ),
        );
    }
    let token = q.get("continue").cloned().unwrap_or_default();
    if !token.is_empty() && plural == "pods" && !cluster.expired_once.contains(&token) {
        cluster.expired_once.insert(token.clone());
        return status(
            410,
            "Expired",
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
        );
    }
    let api_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    let selector = q.get("labelSelector").cloned().unwrap_or_default();
    let matching: Vec<Value> = cluster
        .objects
        .iter()
        .filter(|o| o["kind"] == kind && o["apiVersion"] == api_version.as_str())
        .filter(|o| ns.is_none_or(|n| o.pointer("/metadata/namespace").and_then(Value::as_str) == Some(n)))
        .filter(|o| selects(&selector, o))
        .map(|o| {
            let mut item = o.clone();
            if let Some(m) = item.as_object_mut() {
                m.remove("apiVersion");
                m.remove("kind");
            }
            item
        })
        .collect();
    // Small pages, whatever the client asks, so that clients must follow `continue`.
    let limit =
        q.get("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(usize::MAX).min(cluster.page.unwrap_or(2));
    let start = token.strip_prefix("page-").and_then(|n| n.parse::<usize>().ok()).unwrap_or(0);
    let page: Vec<Value> = matching.iter().skip(start).take(limit).cloned().collect();
    let mut metadata = json!({"resourceVersion": "48213"});
    if start + page.len() < matching.len() {
        metadata["continue"] = json!(format!("page-{}", start + page.len()));
        metadata["remainingItemCount"] = json!(matching.len() - start - page.len());
    }
    Json(json!({"kind": format!("{kind}List"), "apiVersion": api_version, "metadata": metadata, "items": page}))
        .into_response()
}

/// A watch: a chunked stream of JSON lines (`{"type", "object"}`) for as long as the client keeps
/// it, of the events sent to `plural` in `ns`.
fn watch(shared: &Shared, headers: &HeaderMap, ns: Option<&str>, plural: &str) -> Response {
    let mut cluster = shared.lock().expect("cluster");
    *cluster.requests.entry(format!("watch {plural}")).or_default() += 1;
    if !authorised(&cluster, headers) {
        return status(401, "Unauthorized", "Unauthorized");
    }
    let Some(events) = &cluster.events else { return status(405, "MethodNotAllowed", "no watches") };
    let receiver = events.subscribe();
    drop(cluster);
    let (plural, ns) = (plural.to_string(), ns.map(str::to_string));
    let stream = futures_util::stream::unfold(receiver, move |mut rx| {
        let (plural, ns) = (plural.clone(), ns.clone());
        async move {
            loop {
                match rx.recv().await {
                    Ok((p, event)) => {
                        let in_ns = ns
                            .as_deref()
                            .is_none_or(|n| event["object"]["metadata"]["namespace"].as_str().is_none_or(|o| o == n));
                        if p == plural && in_ns {
                            let line = format!("{event}\n");
                            return Some((Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(line)), rx));
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return None,
                }
            }
        }
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(axum::body::Body::from_stream(stream))
        .unwrap_or_else(|_| status(500, "InternalError", "response"))
}

/// Serves `cluster` on a free local port; returns the port.
pub fn serve(mut cluster: Cluster) -> (u16, Shared) {
    cluster.events = Some(tokio::sync::broadcast::channel(1024).0);
    let shared: Shared = Arc::new(Mutex::new(cluster));
    let state = shared.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async move {
            let app =
                Router::new()
                    .route(
                        "/api",
                        get(|| async {
                            Json(json!({"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "10.0.0.1:6443"}]}))
                        }),
                    )
                    .route("/apis", get(|| async { Json(groups()) }))
                    .route("/api/{version}", get(|Path(v): Path<String>| async move { Json(api_resource_list(&v)) }))
                    .route(
                        "/apis/{group}/{version}",
                        get(|Path((g, v)): Path<(String, String)>| async move {
                            Json(api_resource_list(&format!("{g}/{v}")))
                        }),
                    )
                    .route(
                        "/api/{version}/{plural}",
                        get(
                            |State(s): State<Shared>,
                             h: HeaderMap,
                             Path((v, p)): Path<(String, String)>,
                             RawQuery(q): RawQuery| async move {
                                list(&s, &h, "", &v, None, &p, &query(q))
                            },
                        ),
                    )
                    .route(
                        "/api/{version}/namespaces/{ns}/{plural}",
                        get(
                            |State(s): State<Shared>,
                             h: HeaderMap,
                             Path((v, n, p)): Path<(String, String, String)>,
                             RawQuery(q): RawQuery| async move {
                                list(&s, &h, "", &v, Some(&n), &p, &query(q))
                            },
                        ),
                    )
                    .route(
                        "/apis/{group}/{version}/{plural}",
                        get(
                            |State(s): State<Shared>,
                             h: HeaderMap,
                             Path((g, v, p)): Path<(String, String, String)>,
                             RawQuery(q): RawQuery| async move {
                                list(&s, &h, &g, &v, None, &p, &query(q))
                            },
                        ),
                    )
                    .route(
                        "/apis/{group}/{version}/namespaces/{ns}/{plural}",
                        get(
                            |State(s): State<Shared>,
                             h: HeaderMap,
                             Path((g, v, n, p)): Path<(String, String, String, String)>,
                             RawQuery(q): RawQuery| async move {
                                list(&s, &h, &g, &v, Some(&n), &p, &query(q))
                            },
                        ),
                    )
                    .with_state(state);
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            axum::serve(listener, app).await.expect("serve");
        });
    });
    (port, shared)
}

/// A kubeconfig with one context per (name, port), each reaching its server with `token`.
pub fn kubeconfig(contexts: &[(&str, u16)], token: &str) -> String {
    let mut out = String::from("apiVersion: v1\nkind: Config\nclusters:\n");
    for (name, port) in contexts {
        out.push_str(&format!("- name: {name}\n  cluster:\n    server: http://127.0.0.1:{port}\n"));
    }
    out.push_str("contexts:\n");
    for (name, _) in contexts {
        out.push_str(&format!("- name: {name}\n  context:\n    cluster: {name}\n    user: reader\n"));
    }
    out.push_str(&format!("current-context: {}\nusers:\n- name: reader\n  user:\n    token: {token}\n", contexts[0].0));
    out
}
