//! What policies see: objects presented as Kubernetes AdmissionReview requests, and the
//! `data.inventory` that Gatekeeper templates read, in the shapes the ecosystem already uses.

use serde_json::{Map, Value, json};

/// The `uid` and `request` of an AdmissionReview (`admission.k8s.io/v1`) as the API server
/// sends it to a webhook; `Err` says what is wrong with it.
pub fn admission_request(review: &Value) -> Result<(String, Value), String> {
    if !review.is_object() {
        return Err("the body is not an AdmissionReview object".into());
    }
    if let Some(kind) = review.get("kind").and_then(Value::as_str)
        && kind != "AdmissionReview"
    {
        return Err(format!("kind is {kind:?}, not AdmissionReview"));
    }
    if let Some(version) = review.get("apiVersion").and_then(Value::as_str)
        && version != "admission.k8s.io/v1"
    {
        return Err(format!("apiVersion is {version:?}; this webhook speaks admission.k8s.io/v1"));
    }
    let Some(request) = review.get("request").filter(|r| r.is_object()).cloned() else {
        return Err("the AdmissionReview has no request".into());
    };
    let Some(uid) = request.get("uid").and_then(Value::as_str).map(str::to_string) else {
        return Err("the AdmissionReview's request has no uid".into());
    };
    Ok((uid, request))
}

fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

/// The `kind` field of an AdmissionRequest: `{group, version, kind}` of an object.
pub fn group_version_kind(object: &Value) -> Value {
    let (group, version) = split_api_version(object.get("apiVersion").and_then(Value::as_str).unwrap_or(""));
    json!({"group": group, "version": version, "kind": object.get("kind").and_then(Value::as_str).unwrap_or("")})
}

/// An AdmissionRequest (`admission.k8s.io/v1`) creating `object`, as the API server would send it.
pub fn create_request(object: &Value) -> Value {
    let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    let namespace = object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("");
    let gvk = group_version_kind(object);
    let plural = plural(gvk["kind"].as_str().unwrap_or(""));
    let mut request = Map::new();
    request.insert("uid".into(), json!(""));
    request.insert("kind".into(), gvk.clone());
    request.insert("resource".into(), json!({"group": gvk["group"], "version": gvk["version"], "resource": plural}));
    request.insert("name".into(), json!(name));
    if !namespace.is_empty() {
        request.insert("namespace".into(), json!(namespace));
    }
    request.insert("operation".into(), json!("CREATE"));
    request.insert("userInfo".into(), json!({"username": "assay"}));
    request.insert("object".into(), object.clone());
    request.insert("oldObject".into(), Value::Null);
    request.insert("dryRun".into(), json!(true));
    Value::Object(request)
}

/// Lower-case plural of a kind, as Kubernetes names resources (a best effort for built-in kinds).
fn plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if lower.ends_with('s') || lower.ends_with("ch") || lower.ends_with('x') {
        format!("{lower}es")
    } else if let Some(stem) = lower.strip_suffix('y').filter(|s| !s.ends_with(['a', 'e', 'o', 'u'])) {
        format!("{stem}ies")
    } else {
        format!("{lower}s")
    }
}

/// Completes an AdmissionRequest given by a caller (a webhook, or a gator `AdmissionReview`
/// test object): fills `kind`, `name` and `namespace` from the object when they are missing.
pub fn complete_request(mut request: Value) -> Value {
    let object = Some(reviewed_object(&request)).filter(|o| o.is_object());
    if let (Some(object), Some(map)) = (object, request.as_object_mut()) {
        if !map.get("kind").is_some_and(Value::is_object) {
            map.insert("kind".into(), group_version_kind(&object));
        }
        for (field, pointer) in [("name", "/metadata/name"), ("namespace", "/metadata/namespace")] {
            if !map.contains_key(field)
                && let Some(v) = object.pointer(pointer)
            {
                map.insert(field.into(), v.clone());
            }
        }
    }
    request
}

/// The object a request is about: `object`, or `oldObject` for a DELETE.
pub fn reviewed_object(request: &Value) -> Value {
    request.get("object").filter(|o| o.is_object()).or_else(|| request.get("oldObject")).cloned().unwrap_or(Value::Null)
}

/// The AdmissionReview that Rego rules under `policies/` get as `input`.
pub fn admission_review(request: &Value) -> Value {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
}

/// Gatekeeper's `data.inventory` of the given objects:
/// `cluster[apiVersion][kind][name]` and `namespace[ns][apiVersion][kind][name]`.
pub fn inventory<'a>(objects: impl IntoIterator<Item = &'a Value>) -> Value {
    let mut cluster = Map::new();
    let mut namespaced = Map::new();
    for object in objects {
        let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
        let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
        if kind.is_empty() || name.is_empty() {
            continue;
        }
        let namespace = object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("");
        let root = if namespace.is_empty() {
            &mut cluster
        } else {
            match namespaced.entry(namespace.to_string()).or_insert_with(|| json!({})).as_object_mut() {
                Some(map) => map,
                None => continue,
            }
        };
        let by_version = root.entry(api_version.to_string()).or_insert_with(|| json!({}));
        if let Some(by_kind) = by_version.as_object_mut()
            && let Some(by_name) = by_kind.entry(kind.to_string()).or_insert_with(|| json!({})).as_object_mut()
        {
            by_name.insert(name.to_string(), object.clone());
        }
    }
    json!({"cluster": cluster, "namespace": namespaced})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_has_the_admission_shape() {
        let obj =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "prod"}});
        let r = create_request(&obj);
        assert_eq!(r["kind"], json!({"group": "apps", "version": "v1", "kind": "Deployment"}));
        assert_eq!(r["resource"]["resource"], "deployments");
        assert_eq!(r["namespace"], "prod");
        assert_eq!(r["operation"], "CREATE");
        assert_eq!(r["object"], obj);
        assert_eq!(plural("Ingress"), "ingresses");
        assert_eq!(plural("NetworkPolicy"), "networkpolicies");
    }

    #[test]
    fn inventory_is_keyed_like_gatekeeper() {
        let a = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "ns"}});
        let b = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fast"}});
        let inv = inventory([&a, &b]);
        assert_eq!(inv["namespace"]["ns"]["v1"]["Service"]["s"], a);
        assert_eq!(inv["cluster"]["storage.k8s.io/v1"]["StorageClass"]["fast"], b);
    }
}
