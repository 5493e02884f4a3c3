//! The estate against a cluster's live objects (sans-IO): each object in sync, drifted (with
//! each changed field), missing (in Git, not live) or extra (live, the estate's by its
//! ownership labels, not in Git).

use std::collections::{BTreeMap, BTreeSet};

use assay_estate::Object;
use serde::Serialize;
use serde_json::Value;

use crate::diff::{FieldDiff, compare_normalised};
use crate::ignore::Ignore;

/// Kinds that are not namespaced (the built-in ones; a custom resource declared without a
/// namespace is matched by name alone).
const CLUSTER_SCOPED: [&str; 21] = [
    "Namespace",
    "Node",
    "PersistentVolume",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
    "RuntimeClass",
    "CSIDriver",
    "CSINode",
    "VolumeAttachment",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "APIService",
    "PodSecurityPolicy",
    "ConstraintTemplate",
    "FlowSchema",
];

/// What identifies an object in a cluster: API group, kind, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Key {
    /// API group (`apps`; `""` for the core group).
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Namespace (`None` for cluster-scoped objects).
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

impl Key {
    /// The key of an object; `None` without a kind or a name.
    pub fn of(object: &Value) -> Option<Key> {
        let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = object.get("kind").and_then(Value::as_str).filter(|k| !k.is_empty())?;
        let name = object.pointer("/metadata/name").and_then(Value::as_str).filter(|n| !n.is_empty())?;
        let namespace =
            object.pointer("/metadata/namespace").and_then(Value::as_str).filter(|n| !n.is_empty()).map(str::to_string);
        Some(Key {
            group: api_version.rsplit_once('/').map_or("", |(g, _)| g).to_string(),
            kind: kind.to_string(),
            namespace,
            name: name.to_string(),
        })
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.group.is_empty() {
            write!(f, "{}/", self.group)?;
        }
        write!(f, "{} ", self.kind)?;
        if let Some(ns) = &self.namespace {
            write!(f, "{ns}/")?;
        }
        f.write_str(&self.name)
    }
}

/// Where an object stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Live as Git declares it.
    InSync,
    /// Live, with fields that differ from Git.
    Drifted,
    /// In Git, not live.
    Missing,
    /// Live and the estate's, not in Git.
    Extra,
}

impl Status {
    /// The name used in renderings and filters: `in_sync`, `drifted`, `missing`, `extra`.
    pub fn name(self) -> &'static str {
        match self {
            Status::InSync => "in_sync",
            Status::Drifted => "drifted",
            Status::Missing => "missing",
            Status::Extra => "extra",
        }
    }
}

/// One object's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectDrift {
    /// What it is.
    #[serde(flatten)]
    pub key: Key,
    /// Where it stands.
    pub status: Status,
    /// The fields that differ (drifted objects).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diffs: Vec<FieldDiff>,
    /// SHA-256 (hex) of the live object as compared (normalised, canonical JSON): what was
    /// observed, for attestations. Absent for missing objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_sha256: Option<String>,
    /// The estate file and line that declares it (not for extra objects).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

/// How the estate is compared with a cluster.
#[derive(Debug, Default)]
pub struct Options {
    /// Labels that mark a live object as the estate's (see `assay.yaml`'s `drift`).
    pub ownership_labels: Vec<String>,
    /// The estate's name: a live object labelled `assay.dev/estate` with it is the estate's.
    pub estate_name: Option<String>,
    /// The namespace an object declared without one is applied to (`default`).
    pub default_namespace: Option<String>,
    /// Compiled `ignoreDifferences` rules.
    pub ignore: Vec<Ignore>,
}

impl Options {
    /// The options `assay.yaml`'s `name` and `drift` settings give, with each broken
    /// `ignoreDifferences` rule named (`assay.yaml: drift.ignoreDifferences[0].…`) and left out.
    pub fn for_settings(settings: &assay_estate::Settings) -> (Options, Vec<String>) {
        let mut ignore = Vec::new();
        let mut problems = Vec::new();
        for (i, rule) in settings.drift.ignore_differences.iter().enumerate() {
            match Ignore::compile(rule.clone()) {
                Ok(r) => ignore.push(r),
                Err(errors) => {
                    problems.extend(errors.into_iter().map(|e| format!("assay.yaml: drift.ignoreDifferences[{i}].{e}")))
                }
            }
        }
        let options = Options {
            ownership_labels: settings.drift.ownership_labels.clone(),
            estate_name: settings.name.clone(),
            default_namespace: None,
            ignore,
        };
        (options, problems)
    }
}

/// A live object held compactly between comparisons: its JSON text, about a sixth of the
/// memory of the parsed value (a server watching ten thousand objects holds them all); parsed
/// again when it is compared or audited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packed(Box<[u8]>);

impl Packed {
    /// `value` as JSON text.
    pub fn pack(value: &Value) -> Packed {
        Packed(serde_json::to_vec(value).unwrap_or_default().into_boxed_slice())
    }

    /// Anything serializable as a JSON object (kube's `DynamicObject`), without a parsed copy.
    pub fn of<T: Serialize>(object: &T) -> Option<Packed> {
        serde_json::to_vec(object).ok().map(|v| Packed(v.into_boxed_slice()))
    }

    /// The object again.
    pub fn value(&self) -> Value {
        // Only text this type wrote is held, so it parses.
        serde_json::from_slice(&self.0).unwrap_or(Value::Null)
    }
}

/// What the comparison reads of a live object: its key and its value. Implemented by parsed
/// values and by packed ones with their key.
pub trait Live {
    /// The object's key; `None` without a kind or a name.
    fn key(&self) -> Option<Key>;
    /// The object.
    fn value(&self) -> std::borrow::Cow<'_, Value>;
}

impl Live for Value {
    fn key(&self) -> Option<Key> {
        Key::of(self)
    }

    fn value(&self) -> std::borrow::Cow<'_, Value> {
        std::borrow::Cow::Borrowed(self)
    }
}

impl Live for &Value {
    fn key(&self) -> Option<Key> {
        Key::of(self)
    }

    fn value(&self) -> std::borrow::Cow<'_, Value> {
        std::borrow::Cow::Borrowed(*self)
    }
}

impl<P: std::ops::Deref<Target = Packed>> Live for (Key, P) {
    fn key(&self) -> Option<Key> {
        Some(self.0.clone())
    }

    fn value(&self) -> std::borrow::Cow<'_, Value> {
        std::borrow::Cow::Owned(self.1.value())
    }
}

/// Label keys and values.
type Labels = Vec<(String, String)>;

/// What the comparison reads of a desired object: the object, borrowed, or parsed for the
/// occasion. Implemented by estate objects and by packed ones (a server holds a revision's
/// manifests packed and parses each when it compares it).
pub trait Desired {
    /// The object.
    fn object(&self) -> std::borrow::Cow<'_, Object>;
}

impl Desired for &Object {
    fn object(&self) -> std::borrow::Cow<'_, Object> {
        std::borrow::Cow::Borrowed(*self)
    }
}

impl Desired for &assay_estate::PackedObject {
    fn object(&self) -> std::borrow::Cow<'_, Object> {
        std::borrow::Cow::Owned(self.unpack())
    }
}

/// Compares the estate's objects bound for a cluster with the cluster's live objects. Results are
/// in key order. Each live object is read once for its key and, when compared or possibly extra,
/// once for its value; each desired object once for its key and labels and once to compare it:
/// packed objects are parsed a few at a time (one per core), never all at once. Objects are
/// compared on every core.
pub fn reconcile<D: Desired + Sync, L: Live + Sync>(desired: &[D], live: &[L], options: &Options) -> Vec<ObjectDrift> {
    use rayon::prelude::*;
    let default_ns = options.default_namespace.clone().unwrap_or_else(|| "default".to_string());
    let mut live_by_key: BTreeMap<Key, &L> = BTreeMap::new();
    for object in live {
        if let Some(key) = object.key() {
            live_by_key.insert(key, object);
        }
    }
    // The namespaces each namespaced live object's (group, kind, name) is found in.
    let mut namespaces_of: BTreeMap<(&str, &str, &str), Vec<&str>> = BTreeMap::new();
    for key in live_by_key.keys() {
        if let Some(ns) = &key.namespace {
            namespaces_of.entry((&key.group, &key.kind, &key.name)).or_default().push(ns);
        }
    }
    // Each desired object's key as written, and the values of the ownership labels on it: what
    // marks a live object as ours.
    let read: Vec<(Option<Key>, Labels)> = desired
        .par_iter()
        .map(|d| {
            let object = d.object();
            let labels = object.value.pointer("/metadata/labels").and_then(Value::as_object);
            let owned = options
                .ownership_labels
                .iter()
                .filter_map(|label| {
                    labels.and_then(|l| l.get(label)).and_then(Value::as_str).map(|v| (label.clone(), v.to_string()))
                })
                .collect();
            (Key::of(&object.value), owned)
        })
        .collect();
    let mut owned: BTreeSet<(String, String)> = read.iter().flat_map(|(_, o)| o.iter().cloned()).collect();
    if let Some(name) = &options.estate_name {
        owned.insert(("assay.dev/estate".to_string(), name.clone()));
    }
    let keyed: Vec<(Key, &D)> = desired
        .iter()
        .zip(read)
        .filter_map(|(object, (key, _))| {
            let mut key = key?;
            if key.namespace.is_none() && !CLUSTER_SCOPED.contains(&key.kind.as_str()) {
                // Applied into the default namespace, unless the one live object of that name
                // is elsewhere (a tool applied it to its destination namespace).
                key.namespace = match namespaces_of.get(&(key.group.as_str(), key.kind.as_str(), key.name.as_str())) {
                    Some(only) if only.len() == 1 => only.first().map(|ns| (*ns).to_string()),
                    _ => Some(default_ns.clone()),
                };
            }
            Some((key, object))
        })
        .collect();
    let matched: BTreeSet<&Key> = keyed.iter().map(|(k, _)| k).filter(|k| live_by_key.contains_key(*k)).collect();
    let mut out: Vec<ObjectDrift> = keyed
        .par_iter()
        .map(|(key, desired)| {
            let object = desired.object();
            let (status, diffs, live_sha256) = match live_by_key.get(key) {
                None => (Status::Missing, Vec::new(), None),
                Some(live_object) => {
                    let live_value = live_object.value();
                    let normal = crate::diff::normalise(&live_value);
                    let sha = crate::canonical::sha256_hex(&normal);
                    let rules: Vec<&Ignore> = options
                        .ignore
                        .iter()
                        .filter(|i| i.rule.applies(&key.group, &key.kind, key.namespace.as_deref(), &key.name))
                        .collect();
                    let diffs = compare_normalised(&object.value, &live_value, normal, &rules);
                    (if diffs.is_empty() { Status::InSync } else { Status::Drifted }, diffs, Some(sha))
                }
            };
            ObjectDrift {
                key: key.clone(),
                status,
                diffs,
                live_sha256,
                file: Some(object.path.clone()),
                line: Some(object.line),
            }
        })
        .collect();
    let unmatched: Vec<(&Key, &&L)> = live_by_key.iter().filter(|(k, _)| !matched.contains(k)).collect();
    out.par_extend(unmatched.into_par_iter().filter_map(|(key, object)| {
        let object = object.value();
        if object.pointer("/metadata/ownerReferences").is_some_and(|o| !crate::diff::is_empty(o)) {
            return None;
        }
        let ours = object.pointer("/metadata/labels").and_then(Value::as_object).is_some_and(|labels| {
            labels.iter().any(|(k, v)| v.as_str().is_some_and(|v| owned.contains(&(k.clone(), v.to_string()))))
        });
        ours.then(|| ObjectDrift {
            key: key.clone(),
            status: Status::Extra,
            diffs: Vec::new(),
            live_sha256: Some(digest(&object)),
            file: None,
            line: None,
        })
    }));
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

/// SHA-256 (hex) of a live object's canonical JSON once normalised (server bookkeeping left out,
/// so that a resync that changes only `resourceVersion` does not change it).
pub fn digest(live: &Value) -> String {
    crate::canonical::sha256_hex(&crate::diff::normalise(live))
}

/// How many objects stand where.
pub fn counts(results: &[ObjectDrift]) -> BTreeMap<&'static str, usize> {
    let mut out: BTreeMap<&'static str, usize> =
        [Status::InSync, Status::Drifted, Status::Missing, Status::Extra].iter().map(|s| (s.name(), 0)).collect();
    for r in results {
        *out.entry(r.status.name()).or_default() += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Object {
        Object { path: "apps/web.yaml".into(), line: 1, value }
    }

    #[test]
    fn in_sync_drifted_missing_and_extra() {
        let labels = json!({"app.kubernetes.io/instance": "shop"});
        let desired = [
            object(
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop", "labels": labels},
                "spec": {"replicas": 2}}),
            ),
            object(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "shop"}, "data": {"a": "1"}}),
            ),
            object(
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}),
            ),
        ];
        let live = vec![
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop", "labels": labels, "uid": "1"},
                "spec": {"replicas": 5}}),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"}, "spec": {"ports": [{"port": 80, "protocol": "TCP"}]}}),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "debug", "namespace": "shop", "labels": labels}}),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-1", "namespace": "shop", "labels": labels,
                "ownerReferences": [{"kind": "ReplicaSet", "name": "web-1", "uid": "2"}]}}),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "other", "namespace": "shop", "labels": {"app.kubernetes.io/instance": "blog"}}}),
        ];
        let options = Options { ownership_labels: vec!["app.kubernetes.io/instance".into()], ..Options::default() };
        let results = reconcile(&desired.iter().collect::<Vec<_>>(), &live, &options);
        let summary: Vec<(String, Status)> = results.iter().map(|r| (r.key.to_string(), r.status)).collect();
        assert_eq!(
            summary,
            vec![
                ("ConfigMap shop/settings".to_string(), Status::Missing),
                ("Pod shop/debug".to_string(), Status::Extra),
                ("Service shop/web".to_string(), Status::InSync),
                ("apps/Deployment shop/web".to_string(), Status::Drifted),
            ]
        );
        assert_eq!(results[3].diffs[0].path, "spec.replicas");
        assert_eq!(counts(&results)["drifted"], 1);

        // ignoreDifferences: replicas belong to an autoscaler.
        let rule = assay_estate::settings::IgnoreDifference {
            group: Some("apps".into()),
            kind: Some("Deployment".into()),
            json_pointers: vec!["/spec/replicas".into()],
            ..Default::default()
        };
        let options = Options { ignore: vec![Ignore::compile(rule).expect("rule")], ..options };
        let results = reconcile(&desired.iter().collect::<Vec<_>>(), &live, &options);
        assert_eq!(results[3].status, Status::InSync);
    }
}
