//! Memoized answers equal fresh evaluations over the Gatekeeper library: for every template,
//! sample constraint and sample object in ../shared/conformance, and for every variant of the
//! object with one value changed (each string, number and boolean in the admission request in
//! turn), the memo answers exactly what evaluating the template afresh answers. A template that
//! read a part of the request its memo key leaves out would answer an earlier variant's
//! findings here and fail.

use std::path::{Path, PathBuf};

use assay_estate::Object;
use assay_estate::manifest::parse_objects;
use assay_policy::gatekeeper::{Constraint, Template};
use assay_policy::{rego, review};
use serde_json::Value;

fn library() -> PathBuf {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/gatekeeper-library/library/general");
    assert!(dir.is_dir(), "the Gatekeeper library is not at {}", dir.display());
    dir
}

fn objects(path: &Path) -> Vec<Object> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    parse_objects(&path.display().to_string(), &text).0
}

fn sorted(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).collect();
    entries.sort();
    entries
}

fn sort(mut v: Vec<(String, Option<Value>)>) -> Vec<(String, Option<Value>)> {
    v.sort_by(|a, b| {
        a.0.cmp(&b.0).then_with(|| a.1.as_ref().map(Value::to_string).cmp(&b.1.as_ref().map(Value::to_string)))
    });
    v
}

#[test]
fn memoized_answers_equal_fresh_ones_for_every_library_sample_and_every_one_value_change() {
    let inventory = rego::to_rego(&serde_json::json!({}));
    let (mut cases, mut hits_total, mut memoizing) = (0usize, 0u64, 0usize);
    for dir in sorted(&library()) {
        let Some(template_object) = objects(&dir.join("template.yaml")).into_iter().next() else { continue };
        let Some(template) = Template::compile(&template_object, &inventory, &mut Vec::new()) else { continue };
        if template.memoizes() {
            memoizing += 1;
        }
        for sample in sorted(&dir.join("samples")) {
            let Some(constraint_object) = objects(&sample.join("constraint.yaml")).into_iter().next() else {
                continue;
            };
            let Some(constraint) = Constraint::parse(&constraint_object, &mut Vec::new()) else { continue };
            for file in sorted(&sample) {
                if !file.file_name().is_some_and(|n| n.to_string_lossy().starts_with("example_")) {
                    continue;
                }
                for object in objects(&file) {
                    let request = if object.value["kind"] == "AdmissionReview" {
                        review::complete_request(object.value["request"].clone())
                    } else {
                        review::create_request(&object.value)
                    };
                    let changes = assay_policy::testing::one_value_changes(&request, "");
                    let variants = std::iter::once(request.clone()).chain(changes.iter().map(|(_, v)| v.clone()));
                    for (i, variant) in variants.enumerate() {
                        let variant = rego::to_rego(&variant);
                        let parameters = &constraint.parameters_rego;
                        let fresh = template.violations(&variant, parameters).map(sort).map_err(|e| e.to_string());
                        let memo = template
                            .violations_memoized(&variant, parameters)
                            .map(|v| sort(v.as_ref().clone()))
                            .map_err(|e| e.to_string());
                        let what =
                            if i == 0 { "as is".to_string() } else { format!("with {} changed", changes[i - 1].0) };
                        assert_eq!(memo, fresh, "{}: {} on {} {what}", template.kind, constraint.name, file.display());
                        cases += 1;
                    }
                }
            }
        }
        hits_total += template.memo_counts().0;
    }
    assert!(cases > 1000, "only {cases} cases ran");
    assert!(memoizing >= 20, "only {memoizing} library templates memoize");
    assert!(hits_total > cases as u64 / 4, "{hits_total} memo hits over {cases} cases");
}

#[test]
fn replicas_of_one_pod_spec_are_evaluated_once_and_a_changed_spec_is_evaluated_again() {
    let dir = library().join("containerlimits");
    let template = Template::compile(
        &objects(&dir.join("template.yaml"))[0],
        &rego::to_rego(&serde_json::json!({})),
        &mut Vec::new(),
    )
    .expect("template");
    let constraint = Constraint::parse(
        &objects(&dir.join("samples/container-must-have-limits/constraint.yaml"))[0],
        &mut Vec::new(),
    )
    .expect("constraint");
    let pod = |name: &str, memory: &str| {
        rego::to_rego(&review::create_request(&serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "ml"},
            "spec": {"containers": [{"name": "c", "image": "i", "resources": {"limits": {"cpu": "100m", "memory": memory}}}]},
        })))
    };
    let parameters = &constraint.parameters_rego;
    let first = template.violations_memoized(&pod("web-1", "1Gi"), parameters).expect("evaluates");
    let second = template.violations_memoized(&pod("web-2", "1Gi"), parameters).expect("evaluates");
    assert_eq!(first, second);
    assert_eq!(template.memo_counts(), (1, 1), "the second replica is answered from the memo");
    let larger = template.violations_memoized(&pod("web-3", "64Gi"), parameters).expect("evaluates");
    assert_eq!(template.memo_counts(), (1, 2), "a changed spec is evaluated");
    assert_ne!(first, larger, "64Gi is over the sample's memory limit, 1Gi is not");
}
