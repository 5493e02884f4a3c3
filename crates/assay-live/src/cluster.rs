//! Reading a cluster's live objects from its Kubernetes API server with kube-rs (the IO side of
//! this crate): a kubeconfig context or the in-cluster service account; the API resources
//! discovered; every kind the estate declares listed, page by page, in the namespaces it uses;
//! and every listable kind listed by the estate's ownership labels, so that objects made outside
//! Git are found. A list the API refuses (RBAC) or that fails is named and the rest is read.

use std::collections::{BTreeMap, BTreeSet};

use assay_estate::{Estate, Object};
use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope, verbs};
use serde_json::Value;

use crate::state::{Key, Packed};

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    /// (group, kind) of every object the estate declares for the cluster.
    pub kinds: BTreeSet<(String, String)>,
    /// Namespaces its namespaced objects use: declared kinds are listed in these.
    pub namespaces: BTreeSet<String>,
    /// Every object of these (group, kind) in those namespaces too, for the audit (`Pod`).
    pub audit_kinds: BTreeSet<(String, String)>,
    /// Ownership label keys: every other listable kind is listed with `labelSelector=KEY`.
    pub ownership_labels: Vec<String>,
}

/// The estate's objects bound for `cluster`: those whose path its `paths` match (all, when the
/// estate names no clusters).
pub fn desired_for<'e>(estate: &'e Estate, cluster: &str) -> Vec<&'e Object> {
    estate.manifests.iter().filter(|o| bound_for(estate, &o.path, cluster)).collect()
}

/// Whether the estate file `path` is bound for `cluster`: its `paths` match (always, when the
/// estate names no clusters).
pub fn bound_for(estate: &Estate, path: &str, cluster: &str) -> bool {
    estate.settings.clusters.is_empty() || estate.settings.cluster_of(path).is_some_and(|c| c.name == cluster)
}

/// What to read of a cluster: the kinds and namespaces of its estate objects, the estate's
/// ownership labels, and with an audit the kinds the constraints match.
pub fn wanted<D: crate::state::Desired>(estate: &Estate, desired: &[D], audit: bool) -> Wanted {
    let mut w = Wanted { ownership_labels: estate.settings.drift.ownership_labels.clone(), ..Default::default() };
    for d in desired {
        let o = d.object();
        if let Some(key) = crate::state::Key::of(&o.value) {
            w.kinds.insert((key.group.clone(), key.kind.clone()));
            if let Some(ns) = key.namespace {
                w.namespaces.insert(ns);
            }
        }
        if o.kind() == "Namespace" {
            w.namespaces.insert(o.name().to_string());
        }
    }
    if audit {
        for c in estate.constraints.iter().filter(|c| c.kind() != "ConstraintTemplate") {
            for m in c.value.pointer("/spec/match/kinds").and_then(Value::as_array).into_iter().flatten() {
                let groups = m.get("apiGroups").and_then(Value::as_array).cloned().unwrap_or_default();
                for kind in m.get("kinds").and_then(Value::as_array).into_iter().flatten().filter_map(|k| k.as_str()) {
                    for g in groups.iter().filter_map(|g| g.as_str()).filter(|g| *g != "*") {
                        if kind != "*" {
                            w.audit_kinds.insert((g.to_string(), kind.to_string()));
                        }
                    }
                }
            }
        }
    }
    w
}

/// What was read.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The live objects, each with its `apiVersion` and `kind`, packed, with their keys.
    pub objects: Vec<(Key, Packed)>,
    /// What could not be read, named (the cluster, the kind, the namespace, the API's answer).
    pub errors: Vec<String>,
    /// Searches by ownership label for objects made outside Git that the API refused (RBAC
    /// commonly keeps Secrets from a reader): extra objects of that kind may be missed, the
    /// comparison of what Git declares is whole.
    pub warnings: Vec<String>,
    /// Lists made (pages included).
    pub requests: usize,
}

/// Objects per page: the API server's own default for `kubectl get --chunk-size`.
const PAGE: u32 = 500;

/// A client for a kubeconfig context (the current one when `None`), or, with no kubeconfig at
/// all, for the in-cluster service account.
pub async fn client(context: Option<&str>) -> Result<kube::Client, String> {
    let config = match context {
        Some(ctx) => {
            let options = kube::config::KubeConfigOptions { context: Some(ctx.to_string()), ..Default::default() };
            kube::Config::from_kubeconfig(&options).await.map_err(|e| format!("kubeconfig context {ctx:?}: {e}"))?
        }
        None => {
            kube::Config::infer().await.map_err(|e| format!("no kubeconfig and no in-cluster service account: {e}"))?
        }
    };
    let url = config.cluster_url.to_string();
    kube::Client::try_from(config).map_err(|e| format!("{url}: {e}"))
}

/// The API's answer to a failed request, for people: its Status message and code when it sent one.
fn refusal(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => format!("{} ({} {})", status.message, status.code, status.reason),
        other => other.to_string(),
    }
}

/// Lists every object of `resource` that `params` select, page by page (a `continue` token that
/// expired starts the list again once).
async fn list_all(
    api: &Api<DynamicObject>,
    resource: &ApiResource,
    params: ListParams,
    snapshot: &mut Snapshot,
) -> Result<(), String> {
    let mut params = params.limit(PAGE);
    let mut restarted = false;
    loop {
        snapshot.requests += 1;
        let page = match api.list(&params).await {
            Ok(p) => p,
            Err(kube::Error::Api(status)) if status.code == 410 && !restarted && params.continue_token.is_some() => {
                // 410 Gone: the continue token expired; list again from the start.
                restarted = true;
                params.continue_token = None;
                continue;
            }
            Err(e) => return Err(refusal(&e)),
        };
        // List items carry no type of their own: the list's.
        snapshot.objects.extend(page.items.into_iter().filter_map(|item| typed(item, resource)));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params.continue_token = Some(token),
            None => return Ok(()),
        }
    }
}

/// Reads what `wanted` asks of the cluster behind `client`; `cluster` names it in errors.
pub async fn read(client: &kube::Client, cluster: &str, wanted: &Wanted) -> Snapshot {
    let mut snapshot = Snapshot::default();
    let discovery = match Discovery::new(client.clone()).run().await {
        Ok(d) => d,
        Err(e) => {
            snapshot.errors.push(format!("cluster {cluster}: API discovery failed: {}", refusal(&e)));
            return snapshot;
        }
    };
    let resources: Vec<(ApiResource, ApiCapabilities)> = discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .filter(|(_, caps)| caps.supports_operation(verbs::LIST))
        .collect();
    for (resource, caps) in &resources {
        let gk = (resource.group.clone(), resource.kind.clone());
        let what = if resource.group.is_empty() {
            format!("{} ({})", resource.plural, resource.api_version)
        } else {
            format!("{}.{} ({})", resource.plural, resource.group, resource.api_version)
        };
        let declared = wanted.kinds.contains(&gk) || wanted.audit_kinds.contains(&gk);
        if declared && caps.scope == Scope::Namespaced {
            for ns in &wanted.namespaces {
                let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, resource);
                if let Err(e) = list_all(&api, resource, ListParams::default(), &mut snapshot).await {
                    snapshot.errors.push(format!("cluster {cluster}: listing {what} in namespace {ns}: {e}"));
                }
            }
        } else if declared {
            let api: Api<DynamicObject> = Api::all_with(client.clone(), resource);
            if let Err(e) = list_all(&api, resource, ListParams::default(), &mut snapshot).await {
                snapshot.errors.push(format!("cluster {cluster}: listing {what}: {e}"));
            }
        }
        // Objects of the estate made outside Git: any kind, anywhere, by ownership label.
        for label in &wanted.ownership_labels {
            let api: Api<DynamicObject> = Api::all_with(client.clone(), resource);
            if let Err(e) = list_all(&api, resource, ListParams::default().labels(label), &mut snapshot).await {
                snapshot.warnings.push(format!("cluster {cluster}: not searched for {what} labelled {label}: {e}"));
            }
        }
    }
    // The same object may come from several lists: keep one.
    let mut seen: BTreeSet<Key> = BTreeSet::new();
    snapshot.objects.retain(|(key, _)| seen.insert(key.clone()));
    snapshot
}

/// Live objects as they change, by key, packed, shared between watchers and their reader; a
/// reader takes a snapshot by cloning the `Arc`s, never holding the lock while it works.
pub type Store = std::sync::Arc<std::sync::Mutex<BTreeMap<Key, std::sync::Arc<Packed>>>>;

/// What to watch for `wanted`: each kind the estate declares or audits, in each of its
/// namespaces (everywhere for cluster-scoped kinds). Objects found only by ownership label are
/// caught at each resync (see [`read`]).
pub async fn watch_targets(
    client: &kube::Client,
    wanted: &Wanted,
) -> Result<Vec<(ApiResource, Option<String>)>, String> {
    let discovery = Discovery::new(client.clone()).run().await.map_err(|e| refusal(&e))?;
    let mut out = Vec::new();
    for (resource, caps) in discovery.groups().flat_map(|g| g.recommended_resources()) {
        let gk = (resource.group.clone(), resource.kind.clone());
        if !(caps.supports_operation(verbs::WATCH) && (wanted.kinds.contains(&gk) || wanted.audit_kinds.contains(&gk)))
        {
            continue;
        }
        if caps.scope == Scope::Namespaced && wanted.namespaces.len() <= NAMESPACE_WATCHES {
            out.extend(wanted.namespaces.iter().map(|ns| (resource.clone(), Some(ns.clone()))));
        } else {
            // Cluster-scoped, or namespaced in many namespaces: one watch across the cluster
            // (what it sees outside the estate's namespaces is dropped as it arrives), rather
            // than a list and a connection per namespace.
            out.push((resource, None));
        }
    }
    Ok(out)
}

/// Up to this many namespaces, a kind is watched namespace by namespace (what a reader confined
/// to those namespaces may do); beyond, across the cluster.
pub const NAMESPACE_WATCHES: usize = 3;

/// An object's key, and the object packed as JSON with its resource's `apiVersion` and `kind`
/// (list items and watch objects may carry none); `None` for one with no name.
fn typed(mut object: DynamicObject, resource: &ApiResource) -> Option<(Key, Packed)> {
    let name = object.metadata.name.clone().filter(|n| !n.is_empty())?;
    object.types = Some(kube::api::TypeMeta { api_version: resource.api_version.clone(), kind: resource.kind.clone() });
    let key = Key {
        group: resource.group.clone(),
        kind: resource.kind.clone(),
        namespace: object.metadata.namespace.clone().filter(|n| !n.is_empty()),
        name,
    };
    Some((key, Packed::of(&object)?))
}

/// Watches one kind in one namespace (or everywhere) with kube's watcher, which lists, then
/// watches from the list's version with bookmarks, and lists again when the API answers `410
/// Gone`: every change lands in `store` and wakes `changed`; `relists` counts the complete lists.
/// What changes nothing (the watch's first list of what was just read, a list after `410 Gone`
/// or an event that gives back an object as stored) does not wake it. Runs until dropped.
pub async fn watch(
    client: kube::Client,
    resource: ApiResource,
    namespace: Option<String>,
    keep: std::sync::Arc<BTreeSet<String>>,
    store: Store,
    changed: std::sync::Arc<tokio::sync::Notify>,
    relists: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use futures_util::StreamExt as _;
    use kube::runtime::WatchStreamExt as _;
    use kube::runtime::watcher::{self, Event};
    let api: Api<DynamicObject> = match &namespace {
        Some(ns) => Api::namespaced_with(client, ns, &resource),
        None => Api::all_with(client, &resource),
    };
    // A watch across the cluster keeps only objects in the namespaces asked for (and
    // cluster-scoped ones).
    let wanted_here =
        |key: &Key| namespace.is_some() || keep.is_empty() || key.namespace.as_ref().is_none_or(|ns| keep.contains(ns));
    let in_scope = |key: &Key| {
        key.kind == resource.kind
            && key.group == resource.group
            && namespace.as_ref().is_none_or(|ns| key.namespace.as_ref() == Some(ns))
    };
    let mut fresh: BTreeMap<Key, std::sync::Arc<Packed>> = BTreeMap::new();
    let stream = watcher::watcher(api, watcher::Config::default().page_size(PAGE)).default_backoff();
    futures_util::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                // kube retries with backoff (and relists after 410 Gone); say why.
                tracing::warn!(kind = %resource.kind, namespace = ?namespace, error = %e, "watch");
                continue;
            }
        };
        let mut store_now = store.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            Event::Init => {
                fresh.clear();
                continue;
            }
            Event::InitApply(object) => {
                if let Some((key, value)) = typed(object, &resource).filter(|(k, _)| wanted_here(k)) {
                    fresh.insert(key, std::sync::Arc::new(value));
                }
                continue;
            }
            Event::InitDone => {
                // A complete list: what this watch covers is exactly what it listed.
                relists.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let mut held = store_now.iter().filter(|(key, _)| in_scope(key));
                let same = held.clone().count() == fresh.len()
                    && fresh.iter().all(|(k, v)| held.next().is_some_and(|(hk, hv)| hk == k && hv == v));
                if same {
                    fresh.clear();
                    continue;
                }
                tracing::debug!(kind = %resource.kind, namespace = ?namespace, listed = fresh.len(), held = store_now.iter().filter(|(key, _)| in_scope(key)).count(), "a complete list changed the store");
                store_now.retain(|key, _| !in_scope(key));
                store_now.extend(std::mem::take(&mut fresh));
            }
            Event::Apply(object) => {
                let Some((key, value)) = typed(object, &resource).filter(|(k, _)| wanted_here(k)) else { continue };
                if store_now.get(&key).is_some_and(|held| **held == value) {
                    continue;
                }
                store_now.insert(key, std::sync::Arc::new(value));
            }
            Event::Delete(object) => {
                let Some((key, _)) = typed(object, &resource) else { continue };
                if store_now.remove(&key).is_none() {
                    continue;
                }
            }
        }
        drop(store_now);
        changed.notify_one();
    }
}
