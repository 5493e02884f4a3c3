//! The estate against a cluster's live objects (sans-IO): each object in sync, drifted (with
//! each changed field), missing (in Git, not live) or extra (live, the estate's by its
//! ownership labels, not in Git).

use std::collections::{BTreeMap, BTreeSet};

use assay_estate::Object;
use serde::Serialize;
use serde_json::Value;

use crate::diff::{FieldDiff, compare_ignoring};
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
#[derive(Debug, Clone)]
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

/// Compares the estate's objects bound for a cluster with the cluster's live objects. Results are
/// in key order. Each live object is read once for its key and, when compared or possibly extra,
/// once for its value: packed objects are parsed one at a time, never all at once.
pub fn reconcile<L: Live>(desired: &[&Object], live: &[L], options: &Options) -> Vec<ObjectDrift> {
    let default_ns = options.default_namespace.clone().unwrap_or_else(|| "default".to_string());
    let mut live_by_key: BTreeMap<Key, &L> = BTreeMap::new();
    for object in live {
        if let Some(key) = object.key() {
            live_by_key.insert(key, object);
        }
    }
    // The values of the ownership labels on the estate's objects: what marks an object as ours.
    let mut owned: BTreeSet<(String, String)> = BTreeSet::new();
    for object in desired {
        if let Some(labels) = object.value.pointer("/metadata/labels").and_then(Value::as_object) {
            for label in &options.ownership_labels {
                if let Some(v) = labels.get(label).and_then(Value::as_str) {
                    owned.insert((label.clone(), v.to_string()));
                }
            }
        }
    }
    if let Some(name) = &options.estate_name {
        owned.insert(("assay.dev/estate".to_string(), name.clone()));
    }
    let mut matched: BTreeSet<Key> = BTreeSet::new();
    let mut out = Vec::new();
    for object in desired {
        let Some(mut key) = Key::of(&object.value) else { continue };
        if key.namespace.is_none() && !CLUSTER_SCOPED.contains(&key.kind.as_str()) {
            // Applied into the default namespace, unless the one live object of that name is
            // elsewhere (a tool applied it to its destination namespace).
            let candidates: Vec<&Key> = live_by_key
                .keys()
                .filter(|k| k.group == key.group && k.kind == key.kind && k.name == key.name && k.namespace.is_some())
                .collect();
            key.namespace = match candidates.as_slice() {
                [only] => only.namespace.clone(),
                _ => Some(default_ns.clone()),
            };
        }
        let live_value = live_by_key.get(&key).map(|l| l.value());
        let live_sha256 = live_value.as_deref().map(digest);
        let (status, diffs) = match live_value.as_deref() {
            None => (Status::Missing, Vec::new()),
            Some(live_object) => {
                matched.insert(key.clone());
                let rules: Vec<&Ignore> = options
                    .ignore
                    .iter()
                    .filter(|i| i.rule.applies(&key.group, &key.kind, key.namespace.as_deref(), &key.name))
                    .collect();
                let diffs = compare_ignoring(&object.value, live_object, &rules);
                (if diffs.is_empty() { Status::InSync } else { Status::Drifted }, diffs)
            }
        };
        out.push(ObjectDrift {
            key,
            status,
            diffs,
            live_sha256,
            file: Some(object.path.clone()),
            line: Some(object.line),
        });
    }
    for (key, object) in &live_by_key {
        if matched.contains(key) {
            continue;
        }
        let object = object.value();
        if object.pointer("/metadata/ownerReferences").is_some_and(|o| !crate::diff::is_empty(o)) {
            continue;
        }
        let ours = object.pointer("/metadata/labels").and_then(Value::as_object).is_some_and(|labels| {
            labels.iter().any(|(k, v)| v.as_str().is_some_and(|v| owned.contains(&(k.clone(), v.to_string()))))
        });
        if ours {
            out.push(ObjectDrift {
                key: key.clone(),
                status: Status::Extra,
                diffs: Vec::new(),
                live_sha256: Some(digest(&object)),
                file: None,
                line: None,
            });
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

/// SHA-256 (hex) of a live object's canonical JSON once normalised (server bookkeeping left out,
/// so that a resync that changes only `resourceVersion` does not change it).
pub fn digest(live: &Value) -> String {
    use sha2::Digest as _;
    let normal = crate::diff::normalise(live);
    let bytes = serde_json_canonicalizer::to_vec(&normal).unwrap_or_default();
    sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
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
