//! Comparing one desired object (as Git declares it) with the same object as the API server
//! returns it, the way Argo CD compares, so that what is reported is a change someone made and
//! not the API server's bookkeeping (sans-IO).
//!
//! Both sides are first normalised: server-set metadata (`uid`, `resourceVersion`, `generation`,
//! `creationTimestamp`, `managedFields`, `selfLink`, `deletionTimestamp`, `deletionGracePeriodSeconds`,
//! `ownerReferences`), `status`, and the `kubectl.kubernetes.io/last-applied-configuration`
//! annotation are left out; a Secret's `stringData` is folded into base64 `data`; an aggregated
//! ClusterRole's `rules` (which its controller fills in) are left out. Then every field Git
//! declares must have the same value live; a field Git does not declare is the API server's
//! default or another controller's and is not drift, *unless* the last-applied configuration
//! shows it was applied from Git before and has since been removed there (the three-way
//! comparison `kubectl apply` makes). Lists of objects with a merge key (`name`, `mountPath`,
//! `containerPort`, `port`, `ip`, `devicePath`) are matched by it, as a strategic merge patch
//! does; other lists element by element. Empty values (`null`, `""`, `[]`, `{}`) equal absent
//! ones, numbers compare by value (`1` = `1.0`), and resource quantities by amount
//! (`"1"` = `"1000m"`, `"1Gi"` = `"1024Mi"`).

use serde::Serialize;
use serde_json::{Map, Value};

/// How a field differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Git declares a value; the live object has another.
    Changed,
    /// Git declares it; the live object lacks it.
    Missing,
    /// The live object has more list elements than Git declares (a list compared element by
    /// element).
    Added,
    /// Git no longer declares it, but it was applied from Git before (last-applied
    /// configuration) and is still live.
    RemovedInGit,
}

/// One field that differs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldDiff {
    /// Where: `spec.template.spec.containers[name=web].image`, `rules[0].verbs`.
    pub path: String,
    /// What Git declares (`None` when it declares nothing there).
    pub desired: Option<Value>,
    /// What is live (`None` when absent).
    pub live: Option<Value>,
    /// How it differs.
    pub change: Change,
}

/// The annotation `kubectl apply` keeps the applied configuration in.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

const SERVER_METADATA: [&str; 9] = [
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "ownerReferences",
];

/// The object as compared: without server-set fields, with Secret `stringData` in `data`.
pub fn normalise(object: &Value) -> Value {
    let mut v = object.clone();
    let Some(map) = v.as_object_mut() else { return v };
    map.remove("status");
    if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in SERVER_METADATA {
            meta.remove(key);
        }
        if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            annotations.remove(LAST_APPLIED);
        }
    }
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or("").to_string();
    if kind == "Secret"
        && let Some(Value::Object(string_data)) = map.remove("stringData")
    {
        use base64::Engine as _;
        let data = map.entry("data").or_insert_with(|| Value::Object(Map::new()));
        if let Some(data) = data.as_object_mut() {
            for (k, v) in string_data {
                let text = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                data.insert(k, Value::String(base64::engine::general_purpose::STANDARD.encode(text)));
            }
        }
    }
    if kind == "ClusterRole" && map.get("aggregationRule").is_some_and(|r| !is_empty(r)) {
        map.remove("rules");
    }
    v
}

/// The last-applied configuration recorded on a live object, normalised.
fn last_applied(live: &Value) -> Option<Value> {
    let text = live.pointer("/metadata/annotations")?.get(LAST_APPLIED)?.as_str()?;
    let mut applied: Value = serde_json::from_str(text).ok()?;
    // It is compared with the desired object as Git declares it: the same normalisation.
    if let (Some(kind), Some(map)) = (live.get("kind").cloned(), applied.as_object_mut()) {
        map.entry("kind").or_insert(kind);
    }
    Some(normalise(&applied))
}

/// The fields in which `live` differs from `desired` (both as read: normalised here).
pub fn compare(desired: &Value, live: &Value) -> Vec<FieldDiff> {
    compare_ignoring(desired, live, &[])
}

/// As [`compare`], leaving out the fields the `ignoreDifferences` rules name (the rules are
/// assumed to apply to this object).
pub fn compare_ignoring(desired: &Value, live: &Value, rules: &[&crate::ignore::Ignore]) -> Vec<FieldDiff> {
    compare_normalised(desired, live, normalise(live), rules)
}

/// As [`compare_ignoring`], given the live object already normalised (`normal`, which is
/// consumed): the comparison and the live digest share one normalisation.
pub(crate) fn compare_normalised(
    desired: &Value,
    live: &Value,
    normal: Value,
    rules: &[&crate::ignore::Ignore],
) -> Vec<FieldDiff> {
    let (mut d, mut l) = (normalise(desired), normal);
    // An object Git declares without a namespace is applied into one (the tool's destination):
    // its identity was matched already, so the namespace is not a difference.
    if let (Some(ns), Some(meta)) =
        (l.pointer("/metadata/namespace").cloned(), d.get_mut("metadata").and_then(Value::as_object_mut))
    {
        meta.entry("namespace").or_insert(ns);
    }
    let mut applied = last_applied(live);
    let mut paths: Vec<Vec<crate::ignore::Step>> = Vec::new();
    for ignore in rules {
        paths.extend(ignore.rule.json_pointers.iter().map(|p| crate::ignore::pointer_steps(p)));
        paths.extend(crate::ignore::managed_by(live, &ignore.rule.managed_fields_managers));
    }
    for path in &paths {
        crate::ignore::remove(&mut d, path);
        crate::ignore::remove(&mut l, path);
        if let Some(a) = &mut applied {
            crate::ignore::remove(a, path);
        }
    }
    for jq in rules.iter().flat_map(|r| r.jq()) {
        d = jq.delete(&d);
        l = jq.delete(&l);
        applied = applied.map(|a| jq.delete(&a));
    }
    let kind = l.get("kind").or_else(|| d.get("kind")).and_then(Value::as_str).unwrap_or("").to_string();
    let mut out = Vec::new();
    subset(&kind, &d, &l, &mut String::new(), None, &mut out);
    if let Some(applied) = applied {
        removed(&kind, &applied, &d, &l, &mut String::new(), None, &mut out);
    }
    out
}

/// `null`, `""`, `[]` and `{}`: what the API server drops or fills with nothing.
pub fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn push(path: &mut String, segment: &str) -> usize {
    let len = path.len();
    if !path.is_empty() && !segment.starts_with('[') {
        path.push('.');
    }
    path.push_str(segment);
    len
}

/// Whether two scalars are the same value: numbers by value, quantities (under `limits`,
/// `requests`, `capacity`, `hard` and the like) by amount.
fn same_scalar(d: &Value, l: &Value, parent_key: Option<&str>) -> bool {
    if d == l {
        return true;
    }
    match (d, l) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::String(a), Value::String(b))
            if parent_key.is_some_and(|k| {
                matches!(k, "limits" | "requests" | "capacity" | "hard" | "allocatable" | "overhead")
            }) =>
        {
            match (assay_estate::manifest::parse_quantity(a), assay_estate::manifest::parse_quantity(b)) {
                (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
                _ => false,
            }
        }
        (Value::Number(n), Value::String(s)) | (Value::String(s), Value::Number(n))
            if parent_key.is_some_and(|k| matches!(k, "limits" | "requests" | "capacity" | "hard")) =>
        {
            n.as_f64().zip(assay_estate::manifest::parse_quantity(s)).is_some_and(|(a, b)| (a - b).abs() < 1e-9)
        }
        _ => false,
    }
}

/// The strategic-merge key of the list `field` in an object of `kind` (the `patchMergeKey`s of
/// the Kubernetes API), when every element of `items` has a distinct value for it. Other lists,
/// and every list of a custom resource, are atomic: compared element by element.
fn merge_key(kind: &str, field: Option<&str>, items: &[Value]) -> Option<&'static str> {
    let key = match field? {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "imagePullSecrets"
        | "env"
        | "webhooks"
        | "secrets" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "hostAliases" => "ip",
        "conditions" => "type",
        "ports" if items.iter().all(|i| i.get("containerPort").is_some()) => "containerPort",
        "ports" if kind == "Service" => "port",
        _ => return None,
    };
    if matches!(key, "name" | "mountPath" | "devicePath" | "ip" | "type" | "containerPort" | "port")
        && !items.is_empty()
        && items.iter().all(|i| i.get(key).is_some())
    {
        let mut seen = std::collections::HashSet::new();
        items.iter().all(|i| seen.insert(i[key].to_string())).then_some(key)
    } else {
        None
    }
}

fn key_label(key: &str, value: &Value) -> String {
    match value {
        Value::String(s) => format!("[{key}={s}]"),
        other => format!("[{key}={other}]"),
    }
}

/// What Git declares at `path` that is not live.
fn missing(path: &str, desired: &Value) -> FieldDiff {
    FieldDiff { path: path.to_string(), desired: Some(desired.clone()), live: None, change: Change::Missing }
}

/// Every field of `d` must be in `l` with the same value.
fn subset(kind: &str, d: &Value, l: &Value, path: &mut String, parent_key: Option<&str>, out: &mut Vec<FieldDiff>) {
    match (d, l) {
        (Value::Object(dm), Value::Object(lm)) => {
            for (k, dv) in dm {
                let at = push(path, k);
                match lm.get(k) {
                    // A scalar is judged with the key of the map holding it (`limits`).
                    Some(lv) if !dv.is_object() && !dv.is_array() && same_scalar(dv, lv, parent_key) => {}
                    Some(lv) => subset(kind, dv, lv, path, Some(k), out),
                    None if is_empty(dv) => {}
                    None => out.push(missing(path, dv)),
                }
                path.truncate(at);
            }
        }
        (Value::Array(da), Value::Array(la)) => match merge_key(kind, parent_key, da) {
            Some(key) => {
                for item in da {
                    let id = &item[key];
                    let at = push(path, &key_label(key, id));
                    match la.iter().find(|x| x.get(key) == Some(id)) {
                        Some(live_item) => subset(kind, item, live_item, path, parent_key, out),
                        None => out.push(missing(path, item)),
                    }
                    path.truncate(at);
                }
            }
            None => {
                for (i, item) in da.iter().enumerate() {
                    let at = push(path, &format!("[{i}]"));
                    match la.get(i) {
                        Some(live_item) => subset(kind, item, live_item, path, parent_key, out),
                        None if is_empty(item) => {}
                        None => out.push(missing(path, item)),
                    }
                    path.truncate(at);
                }
                for (i, item) in la.iter().enumerate().skip(da.len()) {
                    let at = push(path, &format!("[{i}]"));
                    out.push(FieldDiff {
                        path: path.clone(),
                        desired: None,
                        live: Some(item.clone()),
                        change: Change::Added,
                    });
                    path.truncate(at);
                }
            }
        },
        _ if is_empty(d) && is_empty(l) => {}
        _ if same_scalar(d, l, parent_key) => {}
        _ => out.push(FieldDiff {
            path: path.clone(),
            desired: Some(d.clone()),
            live: Some(l.clone()),
            change: Change::Changed,
        }),
    }
}

/// Fields the last-applied configuration `a` has, `d` (Git now) does not, and `l` still has.
fn removed(
    kind: &str,
    a: &Value,
    d: &Value,
    l: &Value,
    path: &mut String,
    field: Option<&str>,
    out: &mut Vec<FieldDiff>,
) {
    match (a, l) {
        (Value::Object(am), Value::Object(lm)) => {
            let dm = d.as_object();
            for (k, av) in am {
                let Some(lv) = lm.get(k) else { continue };
                let at = push(path, k);
                match dm.and_then(|m| m.get(k)) {
                    None if !is_empty(av) && !is_empty(lv) => out.push(FieldDiff {
                        path: path.clone(),
                        desired: None,
                        live: Some(lv.clone()),
                        change: Change::RemovedInGit,
                    }),
                    None => {}
                    Some(dv) => removed(kind, av, dv, lv, path, Some(k), out),
                }
                path.truncate(at);
            }
        }
        (Value::Array(aa), Value::Array(la)) => {
            let Some(key) = merge_key(kind, field, aa) else { return };
            let da = d.as_array();
            for item in aa {
                let id = &item[key];
                let Some(live_item) = la.iter().find(|x| x.get(key) == Some(id)) else { continue };
                let at = push(path, &key_label(key, id));
                match da.and_then(|d| d.iter().find(|x| x.get(key) == Some(id))) {
                    None => out.push(FieldDiff {
                        path: path.clone(),
                        desired: None,
                        live: Some(live_item.clone()),
                        change: Change::RemovedInGit,
                    }),
                    Some(desired_item) => removed(kind, item, desired_item, live_item, path, field, out),
                }
                path.truncate(at);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn defaults_bookkeeping_and_other_controllers_fields_are_not_drift() {
        let desired = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "a"},
            "spec": {"ports": [{"port": 80, "targetPort": 8080}], "selector": {"app": "web"}}});
        let live = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "a", "uid": "x", "resourceVersion": "9", "annotations": {"x/y": "z"}},
            "spec": {"clusterIP": "10.0.0.1", "ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}],
                     "selector": {"app": "web"}, "type": "ClusterIP"},
            "status": {"loadBalancer": {}}});
        assert_eq!(compare(&desired, &live), vec![]);
    }

    #[test]
    fn changed_missing_and_removed_fields_are_named() {
        let desired = json!({"kind": "Deployment", "metadata": {"name": "d"}, "spec": {"template": {"spec": {
            "containers": [{"name": "web", "image": "web:2", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}}}});
        let applied = json!({"kind": "Deployment", "metadata": {"name": "d"}, "spec": {"paused": true, "template": {"spec": {
            "containers": [{"name": "web", "image": "web:2", "args": ["--debug"]}]}}}});
        let live = json!({"kind": "Deployment", "metadata": {"name": "d", "annotations": {LAST_APPLIED: applied.to_string()}},
            "spec": {"paused": true, "replicas": 1, "template": {"spec": {"containers": [
                {"name": "web", "image": "web:3", "args": ["--debug"], "resources": {"limits": {"cpu": "1000m", "memory": "1024Mi"}}},
                {"name": "sidecar", "image": "mesh:1"}]}}}});
        let diffs = compare(&desired, &live);
        let summary: Vec<(&str, Change)> = diffs.iter().map(|d| (d.path.as_str(), d.change)).collect();
        assert_eq!(
            summary,
            vec![
                ("spec.template.spec.containers[name=web].image", Change::Changed),
                ("spec.paused", Change::RemovedInGit),
                ("spec.template.spec.containers[name=web].args", Change::RemovedInGit),
            ]
        );
        assert_eq!(diffs[0].desired, Some(json!("web:2")));
        assert_eq!(diffs[0].live, Some(json!("web:3")));
    }

    #[test]
    fn secrets_compare_string_data_with_base64_data() {
        let desired = json!({"kind": "Secret", "metadata": {"name": "s"}, "stringData": {"password": "hunter2"}});
        let live = json!({"kind": "Secret", "metadata": {"name": "s"}, "data": {"password": "aHVudGVyMg=="}, "type": "Opaque"});
        assert_eq!(compare(&desired, &live), vec![]);
        let changed = json!({"kind": "Secret", "metadata": {"name": "s"}, "data": {"password": "aHVudGVyMw=="}});
        assert_eq!(compare(&desired, &changed)[0].path, "data.password");
    }
}
