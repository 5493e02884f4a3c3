//! Argo CD's desired/live pairs (`../shared/conformance/argo-diff`, from gitops-engine's diff
//! tests): each compares as in sync as given, and the project's own variants with one live field
//! changed compare as drifted, naming the field.

use std::path::PathBuf;

use assay_live::diff::{Change, FieldDiff, LAST_APPLIED, compare};
use serde_json::{Value, json};

fn corpus() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/argo-diff");
    assert!(dir.is_dir(), "the Argo CD pairs are not at {}", dir.display());
    dir
}

fn pair(name: &str) -> (Value, Value) {
    let read = |side: &str| -> Value {
        let path = corpus().join(format!("{name}-{side}.json"));
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("JSON")
    };
    (read("config"), read("live"))
}

const PAIRS: [&str; 9] = [
    "aggr-clusterrole",
    "deployment",
    "elasticsearch",
    "endpoints",
    "grafana-clusterrole",
    "mutatingwebhookconfig",
    "sealedsecret",
    "spinnaker-sa",
    "wordpress",
];

#[test]
fn every_real_pair_is_in_sync() {
    let mut listed: Vec<String> = std::fs::read_dir(corpus())
        .expect("corpus")
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix("-config.json")).map(str::to_string))
        .collect();
    listed.sort();
    assert_eq!(listed, PAIRS, "the corpus changed");
    for name in PAIRS {
        let (desired, live) = pair(name);
        assert_eq!(compare(&desired, &live), Vec::<FieldDiff>::new(), "{name}");
    }
}

/// Compares `name` with its live object changed by `change`: exactly one field differs, at
/// `path`, in the way `how`.
fn drifted(name: &str, change: impl FnOnce(&mut Value), path: &str, how: Change) -> FieldDiff {
    let (desired, mut live) = pair(name);
    change(&mut live);
    let diffs = compare(&desired, &live);
    assert_eq!(diffs.len(), 1, "{name}: {diffs:#?}");
    assert_eq!((diffs[0].path.as_str(), diffs[0].change), (path, how), "{name}: {diffs:#?}");
    diffs[0].clone()
}

#[test]
fn one_changed_live_field_is_drift_and_is_named() {
    // An image changed by hand.
    let d = drifted(
        "elasticsearch",
        |live| {
            let containers = live.pointer_mut("/spec/template/spec/containers").expect("containers");
            let image = &mut containers[0]["image"];
            *image = json!(format!("{}-patched", image.as_str().expect("image")));
        },
        "spec.template.spec.containers[name=elasticsearch].image",
        Change::Changed,
    );
    assert!(d.live.as_ref().and_then(Value::as_str).is_some_and(|i| i.ends_with("-patched")));

    // A rule granted by hand to a role that Git says has none.
    drifted(
        "grafana-clusterrole",
        |live| live["rules"] = json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]),
        "rules[0]",
        Change::Added,
    );

    // The selector of an aggregated role (its rules are the controller's, not Git's).
    drifted(
        "aggr-clusterrole",
        |live| {
            live["aggregationRule"]["clusterRoleSelectors"][0]["matchLabels"] =
                json!({"rbac.example.com/aggregate-to-test": "false"})
        },
        "aggregationRule.clusterRoleSelectors[0].matchLabels.rbac.example.com/aggregate-to-test",
        Change::Changed,
    );

    // A Secret's key rewritten.
    drifted(
        "wordpress",
        |live| live["data"]["wordpress-password"] = json!("aHVudGVyMg=="),
        "data.wordpress-password",
        Change::Changed,
    );

    // A port added to endpoints whose ports Git lists in full (an atomic list).
    drifted(
        "endpoints",
        |live| {
            let ports = live.pointer_mut("/subsets/0/ports").and_then(Value::as_array_mut).expect("ports");
            ports.push(json!({"name": "debug", "port": 5005, "protocol": "TCP"}));
        },
        "subsets[0].ports[4]",
        Change::Added,
    );

    // A field removed from Git after it was applied, still live (three-way).
    drifted(
        "deployment",
        |live| {
            live["spec"]["minReadySeconds"] = json!(30);
            let annotations = live.pointer_mut("/metadata/annotations").expect("annotations");
            let mut applied: Value =
                serde_json::from_str(annotations[LAST_APPLIED].as_str().expect("last applied")).expect("JSON");
            applied["spec"]["minReadySeconds"] = json!(30);
            annotations[LAST_APPLIED] = json!(applied.to_string());
        },
        "spec.minReadySeconds",
        Change::RemovedInGit,
    );

    // A label Git sets, changed by hand; an env var Git sets, removed by hand.
    drifted(
        "deployment",
        |live| live["metadata"]["labels"]["app.kubernetes.io/instance"] = json!("other"),
        "metadata.labels.app.kubernetes.io/instance",
        Change::Changed,
    );
    drifted(
        "deployment",
        |live| {
            let env =
                live.pointer_mut("/spec/template/spec/containers/0/env").and_then(Value::as_array_mut).expect("env");
            env.retain(|e| e["name"] != "VAR1");
        },
        "spec.template.spec.containers[name=guestbook-ui].env[name=VAR1]",
        Change::Missing,
    );
}
