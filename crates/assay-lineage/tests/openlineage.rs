//! Conformance with the OpenLineage spec in `../shared/conformance/openlineage/spec` (when it is
//! there): the spec's full example event is accepted; every facet fixture validates against its
//! facet schema and, placed where such a facet sits in a minimal run event, is accepted both by
//! assay's own checks and by the schemas; events the project breaks on purpose are refused with
//! the field named, by both.

use std::path::PathBuf;

use assay_lineage::schema::{FacetPlace, Schemas};
use serde_json::{Value, json};

fn spec() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/openlineage/spec");
    if dir.join("OpenLineage.json").is_file() {
        Some(dir)
    } else {
        eprintln!("skipped: {} is not here", dir.display());
        None
    }
}

fn read(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json")
}

fn minimal_run_event() -> Value {
    json!({
        "eventType": "START",
        "eventTime": "2026-11-23T10:00:00Z",
        "producer": "https://github.com/acme/pipelines",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": "0192f0c4-8a57-7d3c-b1a5-3c3b8f2c9d10"},
        "job": {"namespace": "airflow", "name": "ingest"},
        "inputs": [{"namespace": "s3://acme-raw", "name": "events"}],
        "outputs": [{"namespace": "s3://acme-clean", "name": "events"}]
    })
}

/// Puts `{key: facet}` where a facet of `place` sits.
fn place(event: &mut Value, at: FacetPlace, document: &Value) {
    let slot = match at {
        FacetPlace::Run => &mut event["run"]["facets"],
        FacetPlace::Job => &mut event["job"]["facets"],
        FacetPlace::Dataset => &mut event["inputs"][0]["facets"],
        FacetPlace::Input => &mut event["inputs"][0]["inputFacets"],
        FacetPlace::Output => &mut event["outputs"][0]["outputFacets"],
    };
    *slot = document.clone();
}

#[test]
fn the_full_example_event_is_accepted() {
    let Some(spec) = spec() else { return };
    let schemas = Schemas::load(&spec).expect("schemas");
    let event = read(&spec.join("tests/example_full_event.json"));
    let parsed = assay_lineage::parse(&event).expect("assay accepts the example");
    assert_eq!(parsed.job, Some(("food_delivery".into(), "dbt".into())));
    assert_eq!(schemas.validate(&event), []);
}

#[test]
fn every_facet_fixture_validates_and_is_accepted_in_its_place() {
    let Some(spec) = spec() else { return };
    let schemas = Schemas::load(&spec).expect("schemas");
    let mut checked = 0;
    let mut folders: Vec<PathBuf> = std::fs::read_dir(spec.join("tests"))
        .expect("tests")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    folders.sort();
    assert!(folders.len() >= 30, "{folders:?}");
    for folder in folders {
        let name = folder.file_name().expect("name").to_string_lossy().to_string();
        let places = schemas.places_of(&name).unwrap_or_else(|| panic!("no facet schema for the fixtures in {name}"));
        let mut fixtures: Vec<PathBuf> =
            std::fs::read_dir(&folder).expect("folder").flatten().map(|e| e.path()).collect();
        fixtures.sort();
        for fixture in fixtures {
            let document = read(&fixture);
            let problems = schemas.validate_facet_document(&name, &document).expect("schema");
            assert!(problems.is_empty(), "{}: {problems:?}", fixture.display());
            let mut event = minimal_run_event();
            place(&mut event, places[0], &document);
            if let Err(e) = assay_lineage::parse(&event) {
                panic!("{} placed as a {:?} facet is refused: {e}", fixture.display(), places[0]);
            }
            assert_eq!(schemas.validate(&event), [], "{}", fixture.display());
            checked += 1;
        }
    }
    assert!(checked >= 35, "only {checked} fixtures");
}

#[test]
fn broken_events_are_refused_naming_the_field_by_assay_and_by_the_schemas() {
    let Some(spec) = spec() else { return };
    let schemas = Schemas::load(&spec).expect("schemas");
    let cases: Vec<(Value, &str)> = vec![
        (
            {
                let mut e = minimal_run_event();
                e["run"] = json!({});
                e
            },
            "run.runId",
        ),
        (
            {
                let mut e = minimal_run_event();
                e["eventType"] = json!("DONE");
                e
            },
            "eventType",
        ),
        (
            {
                let mut e = minimal_run_event();
                e["inputs"][0]["facets"] = json!({"schema": {"_producer": "https://x.example", "fields": []}});
                e
            },
            "inputs[0].facets.schema",
        ),
        (
            {
                let mut e = minimal_run_event();
                e["outputs"][0]["outputFacets"] = json!({"outputStatistics": {
                    "_producer": "https://x.example", "_schemaURL": "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json",
                    "rowCount": "many"}});
                e
            },
            "outputs[0].outputFacets.outputStatistics",
        ),
    ];
    for (event, field) in cases {
        let ours = assay_lineage::parse(&event).expect_err("assay refuses it");
        assert!(ours.field.starts_with(field), "assay named {:?}, not {field:?}", ours.field);
        let theirs = schemas.validate(&event);
        assert!(theirs.iter().any(|e| e.field.starts_with(field)), "the schemas said {theirs:?}, not {field:?}");
    }
}
