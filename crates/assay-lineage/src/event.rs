//! OpenLineage events: the run, dataset and job events of spec 2-0-2, read from JSON with every
//! rule of the spec's core checked and each problem named by its field path
//! (`run.runId`, `inputs[1].facets.schema._producer`). Facets are kept as JSON; the facets assay
//! reads itself (dataset version, output statistics, source code location, ownership, tags,
//! schema) are also checked for the fields assay uses.

use serde_json::{Map, Value};

/// Which of the three event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A run changed state (`run` and `job` present).
    Run,
    /// Static metadata about a dataset (`dataset`, no `run` or `job`).
    Dataset,
    /// Static metadata about a job (`job`, no `run`).
    Job,
}

/// A state transition of a run.
pub const EVENT_TYPES: [&str; 6] = ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"];

/// A dataset as an event names it.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The namespace (a data source: `s3://bucket`, `postgres://host:5432`).
    pub namespace: String,
    /// The name within the namespace.
    pub name: String,
    /// Dataset facets.
    pub facets: Map<String, Value>,
    /// Input or output facets (`inputFacets`, `outputFacets`).
    pub io_facets: Map<String, Value>,
}

/// A validated event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Run, dataset or job event.
    pub kind: Kind,
    /// `eventType` of a run event (`None` when absent, which the spec allows).
    pub event_type: Option<String>,
    /// `eventTime`, as sent (RFC 3339).
    pub event_time: String,
    /// `producer`.
    pub producer: String,
    /// The run id of a run event.
    pub run_id: Option<String>,
    /// Run facets.
    pub run_facets: Map<String, Value>,
    /// The job's namespace and name (run and job events).
    pub job: Option<(String, String)>,
    /// Job facets.
    pub job_facets: Map<String, Value>,
    /// Inputs (run and job events).
    pub inputs: Vec<Dataset>,
    /// Outputs (run and job events).
    pub outputs: Vec<Dataset>,
    /// The dataset of a dataset event.
    pub dataset: Option<Dataset>,
    /// The SHA-256 of the event's canonical JSON (RFC 8785), hex: its identity.
    pub digest: String,
}

/// Why an event was refused: the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct EventError {
    /// The field's path, `run.runId`, `inputs[0].facets.version.datasetVersion`; empty for the
    /// event itself.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> EventError {
    EventError { field: field.into(), message: message.into() }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, EventError> {
    value.as_object().ok_or_else(|| err(path, format!("must be an object, not {}", type_name(value))))
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn string(map: &Map<String, Value>, path: &str, key: &str) -> Result<String, EventError> {
    match map.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(err(join(path, key), format!("must be a string, not {}", type_name(other)))),
        None => Err(err(join(path, key), "is required")),
    }
}

fn non_empty(map: &Map<String, Value>, path: &str, key: &str) -> Result<String, EventError> {
    let s = string(map, path, key)?;
    if s.is_empty() {
        return Err(err(join(path, key), "must not be empty"));
    }
    Ok(s)
}

/// A URI as JSON Schema's `uri` format means it: a scheme, a colon, and no spaces.
fn is_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else { return false };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !rest.is_empty()
        && !s.chars().any(char::is_whitespace)
}

fn uri(map: &Map<String, Value>, path: &str, key: &str) -> Result<String, EventError> {
    let s = string(map, path, key)?;
    if !is_uri(&s) {
        return Err(err(join(path, key), format!("{s:?} is not a URI")));
    }
    Ok(s)
}

/// A UUID in its canonical text form (any version, as the spec's `uuid` format).
fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

fn facets(map: &Map<String, Value>, path: &str, key: &str) -> Result<Map<String, Value>, EventError> {
    let Some(value) = map.get(key) else { return Ok(Map::new()) };
    let path = join(path, key);
    let facets = object(value, &path)?;
    for (name, facet) in facets {
        let at = join(&path, name);
        let facet = object(facet, &at)?;
        // Every facet carries where it came from and which schema describes it.
        uri(facet, &at, "_producer")?;
        uri(facet, &at, "_schemaURL")?;
        if let Some(deleted) = facet.get("_deleted")
            && !deleted.is_boolean()
        {
            return Err(err(join(&at, "_deleted"), "must be a boolean"));
        }
        known_facet(name, facet, &at)?;
    }
    Ok(facets.clone())
}

/// Checks the fields assay reads from the facets it knows.
fn known_facet(name: &str, facet: &Map<String, Value>, path: &str) -> Result<(), EventError> {
    let integer = |key: &str| -> Result<(), EventError> {
        match facet.get(key) {
            None => Ok(()),
            Some(v) if v.as_i64().is_some_and(|n| n >= 0) || v.as_u64().is_some() => Ok(()),
            Some(v) => Err(err(join(path, key), format!("must be a non-negative integer, not {v}"))),
        }
    };
    let array_of_objects = |key: &str, required: &[&str]| -> Result<(), EventError> {
        let Some(v) = facet.get(key) else { return Err(err(join(path, key), "is required")) };
        let items = v.as_array().ok_or_else(|| err(join(path, key), "must be an array"))?;
        for (i, item) in items.iter().enumerate() {
            let at = format!("{}[{i}]", join(path, key));
            let item = object(item, &at)?;
            for r in required {
                string(item, &at, r)?;
            }
        }
        Ok(())
    };
    match name {
        "version" => string(facet, path, "datasetVersion").map(|_| ()),
        "outputStatistics" => {
            integer("rowCount")?;
            integer("size")?;
            integer("fileCount")
        }
        "inputStatistics" => {
            integer("rowCount")?;
            integer("size")
        }
        "sourceCodeLocation" => {
            string(facet, path, "type")?;
            uri(facet, path, "url").map(|_| ())
        }
        "ownership" => match facet.get("owners") {
            None => Ok(()),
            Some(_) => array_of_objects("owners", &["name"]),
        },
        "tags" => match facet.get("tags") {
            None => Ok(()),
            Some(_) => array_of_objects("tags", &["key", "value"]),
        },
        "schema" => match facet.get("fields") {
            None => Ok(()),
            Some(_) => array_of_objects("fields", &["name"]),
        },
        "dataSource" => match facet.get("uri") {
            None => Ok(()),
            Some(_) => uri(facet, path, "uri").map(|_| ()),
        },
        _ => Ok(()),
    }
}

fn dataset(value: &Value, path: &str, io_key: Option<&str>) -> Result<Dataset, EventError> {
    let map = object(value, path)?;
    Ok(Dataset {
        namespace: non_empty(map, path, "namespace")?,
        name: non_empty(map, path, "name")?,
        facets: facets(map, path, "facets")?,
        io_facets: match io_key {
            Some(key) => facets(map, path, key)?,
            None => Map::new(),
        },
    })
}

fn datasets(map: &Map<String, Value>, key: &str, io_key: &str) -> Result<Vec<Dataset>, EventError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => {
            items.iter().enumerate().map(|(i, d)| dataset(d, &format!("{key}[{i}]"), Some(io_key))).collect()
        }
        Some(other) => Err(err(key, format!("must be an array, not {}", type_name(other)))),
    }
}

/// Reads and checks one event. The first problem is returned, naming its field.
pub fn parse(value: &Value) -> Result<Event, EventError> {
    let map = object(value, "")?;
    let event_time = string(map, "", "eventTime")?;
    if chrono::DateTime::parse_from_rfc3339(&event_time).is_err() {
        return Err(err("eventTime", format!("{event_time:?} is not an RFC 3339 date-time")));
    }
    let producer = uri(map, "", "producer")?;
    uri(map, "", "schemaURL")?;
    let kind = if map.contains_key("run") {
        Kind::Run
    } else if map.contains_key("job") {
        Kind::Job
    } else if map.contains_key("dataset") {
        Kind::Dataset
    } else {
        return Err(err(
            "",
            "an event needs run and job (a run event), job (a job event) or dataset (a dataset event)",
        ));
    };
    let mut event = Event {
        kind,
        event_type: None,
        event_time,
        producer,
        run_id: None,
        run_facets: Map::new(),
        job: None,
        job_facets: Map::new(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        dataset: None,
        digest: String::new(),
    };
    if let Some(t) = map.get("eventType") {
        let t = t.as_str().ok_or_else(|| err("eventType", "must be a string"))?;
        if !EVENT_TYPES.contains(&t) {
            return Err(err("eventType", format!("{t:?} is not one of {}", EVENT_TYPES.join(", "))));
        }
        event.event_type = Some(t.to_string());
    }
    if kind == Kind::Run {
        let run = object(map.get("run").unwrap_or(&Value::Null), "run")?;
        let run_id = string(run, "run", "runId")?;
        if !is_uuid(&run_id) {
            return Err(err("run.runId", format!("{run_id:?} is not a UUID")));
        }
        event.run_id = Some(run_id.to_ascii_lowercase());
        event.run_facets = facets(run, "run", "facets")?;
        if !map.contains_key("job") {
            return Err(err("job", "is required in a run event"));
        }
    }
    if let Some(job) = map.get("job") {
        let job = object(job, "job")?;
        event.job = Some((non_empty(job, "job", "namespace")?, non_empty(job, "job", "name")?));
        event.job_facets = facets(job, "job", "facets")?;
        event.inputs = datasets(map, "inputs", "inputFacets")?;
        event.outputs = datasets(map, "outputs", "outputFacets")?;
    }
    if kind == Kind::Dataset {
        event.dataset = Some(dataset(map.get("dataset").unwrap_or(&Value::Null), "dataset", None)?);
    }
    event.digest = crate::graph::digest(value);
    Ok(event)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn facet(extra: Value) -> Value {
        let mut f = json!({"_producer": "https://example.com/p", "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/X.json"});
        if let (Some(m), Value::Object(e)) = (f.as_object_mut(), extra) {
            m.extend(e);
        }
        f
    }

    fn run_event() -> Value {
        json!({
            "eventType": "COMPLETE",
            "eventTime": "2026-11-23T10:00:00.000Z",
            "producer": "https://github.com/acme/pipelines/tree/1.0",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "run": {"runId": "0192f0c4-8a57-7d3c-b1a5-3c3b8f2c9d10", "facets": {}},
            "job": {"namespace": "airflow", "name": "features.build"},
            "inputs": [{"namespace": "s3://acme-raw-eu", "name": "customers", "facets": {"version": facet(json!({"datasetVersion": "7"}))}}],
            "outputs": [{"namespace": "s3://acme-features-eu", "name": "features",
                         "outputFacets": {"outputStatistics": facet(json!({"rowCount": 10, "size": 2048}))}}]
        })
    }

    #[test]
    fn a_run_event_is_read_whole() {
        let e = parse(&run_event()).expect("valid");
        assert_eq!(e.kind, Kind::Run);
        assert_eq!(e.event_type.as_deref(), Some("COMPLETE"));
        assert_eq!(e.job, Some(("airflow".into(), "features.build".into())));
        assert_eq!(e.inputs[0].facets["version"]["datasetVersion"], "7");
        assert_eq!(e.outputs[0].io_facets["outputStatistics"]["size"], 2048);
    }

    #[test]
    fn each_problem_names_its_field() {
        type Break = fn(&mut Value);
        let cases: Vec<(Break, &str)> = vec![
            (|e| drop(e["run"].as_object_mut().map(|r| r.remove("runId"))), "run.runId: is required"),
            (|e| e["run"]["runId"] = json!("42"), "run.runId: \"42\" is not a UUID"),
            (|e| e["eventType"] = json!("FINISHED"), "eventType: \"FINISHED\" is not one of"),
            (|e| e["eventTime"] = json!("yesterday"), "eventTime: \"yesterday\" is not an RFC 3339"),
            (|e| e["producer"] = json!("not a uri"), "producer: \"not a uri\" is not a URI"),
            (|e| drop(e.as_object_mut().map(|m| m.remove("job"))), "job: is required in a run event"),
            (|e| e["inputs"][0]["name"] = json!(""), "inputs[0].name: must not be empty"),
            (
                |e| drop(e["inputs"][0]["facets"]["version"].as_object_mut().map(|f| f.remove("_producer"))),
                "inputs[0].facets.version._producer: is required",
            ),
            (
                |e| e["inputs"][0]["facets"]["version"]["datasetVersion"] = json!(7),
                "inputs[0].facets.version.datasetVersion: must be a string",
            ),
            (
                |e| e["outputs"][0]["outputFacets"]["outputStatistics"]["size"] = json!("big"),
                "outputs[0].outputFacets.outputStatistics.size: must be a non-negative integer",
            ),
            (|e| e["outputs"] = json!({}), "outputs: must be an array"),
        ];
        for (break_it, expected) in cases {
            let mut e = run_event();
            break_it(&mut e);
            let got = parse(&e).expect_err("must be refused").to_string();
            assert!(got.starts_with(expected), "{got:?} should start with {expected:?}");
        }
    }

    #[test]
    fn dataset_and_job_events() {
        let d = json!({"eventTime": "2026-11-23T10:00:00Z", "producer": "https://x.example/p", "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
                       "dataset": {"namespace": "s3://b", "name": "t"}});
        assert_eq!(parse(&d).expect("dataset event").kind, Kind::Dataset);
        let j = json!({"eventTime": "2026-11-23T10:00:00Z", "producer": "https://x.example/p", "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent",
                       "job": {"namespace": "n", "name": "j"}, "inputs": [], "outputs": []});
        assert_eq!(parse(&j).expect("job event").kind, Kind::Job);
    }
}
