//! Validation against the OpenLineage JSON schemas, read from a directory laid out as the spec
//! publishes them (`OpenLineage.json` and `facets/*.json`). References between the files
//! (`https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/…`) resolve to the files in the
//! directory, never to the network; a facet schema is found by the facet's key and where it
//! sits (run, job, dataset, input or output facets). Facets that no schema describes are custom
//! facets, which the spec allows, and only the core rules apply to them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jsonschema::{Retrieve, Uri, Validator};
use serde_json::{Map, Value};

use crate::event::EventError;

/// Where a facet sits in an event, which picks the family of schemas that describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FacetPlace {
    /// `run.facets`
    Run,
    /// `job.facets`
    Job,
    /// `inputs[].facets`, `outputs[].facets`, `dataset.facets`
    Dataset,
    /// `inputs[].inputFacets`
    Input,
    /// `outputs[].outputFacets`
    Output,
}

impl FacetPlace {
    /// The place a schema's `$ref` to the core (`…OpenLineage.json#/$defs/InputDatasetFacet`)
    /// names.
    fn of_definition(name: &str) -> Option<FacetPlace> {
        match name {
            "RunFacet" => Some(FacetPlace::Run),
            "JobFacet" => Some(FacetPlace::Job),
            "DatasetFacet" => Some(FacetPlace::Dataset),
            "InputDatasetFacet" => Some(FacetPlace::Input),
            "OutputDatasetFacet" => Some(FacetPlace::Output),
            _ => None,
        }
    }
}

/// Every core facet definition a schema refers to.
fn places(schema: &Value, out: &mut Vec<FacetPlace>) {
    match schema {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref"
                    && let Some(place) = v
                        .as_str()
                        .and_then(|r| r.split_once("OpenLineage.json#/$defs/"))
                        .and_then(|(_, name)| FacetPlace::of_definition(name))
                    && !out.contains(&place)
                {
                    out.push(place);
                }
                places(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| places(v, out)),
        _ => {}
    }
}

struct Files(PathBuf);

impl Retrieve for Files {
    fn retrieve(&self, uri: &Uri<String>) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let name = uri.path().as_str().rsplit('/').next().unwrap_or_default().to_string();
        let path = if name == "OpenLineage.json" { self.0.join(&name) } else { self.0.join("facets").join(&name) };
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{uri} (read as {}): {e}", path.display()))?;
        Ok(serde_json::from_str(&text)?)
    }
}

/// A facet schema: its name, where its facets may sit, and the facet keys its root object
/// describes.
struct FacetSchema {
    name: String,
    places: Vec<FacetPlace>,
    keys: Vec<String>,
    validator: Validator,
}

/// The compiled schemas.
pub struct Schemas {
    /// `RunEvent`, `DatasetEvent` and `JobEvent`: an event is checked against the one its
    /// fields make it, so that a problem is reported at its field rather than as "not valid
    /// under any of the schemas listed in oneOf".
    run: Validator,
    dataset: Validator,
    job: Validator,
    facets: Vec<FacetSchema>,
    by_name: BTreeMap<String, usize>,
}

impl std::fmt::Debug for Schemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schemas").field("facets", &self.by_name.keys().collect::<Vec<_>>()).finish()
    }
}

/// A problem loading the schema directory.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// A file could not be read or is not JSON.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A schema does not compile.
    #[error("{path}: not a usable JSON schema: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

fn read_json(path: &Path) -> Result<Value, SchemaError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SchemaError::File { path: path.display().to_string(), message: e.to_string() })?;
    serde_json::from_str(&text)
        .map_err(|e| SchemaError::File { path: path.display().to_string(), message: e.to_string() })
}

fn compile(dir: &Path, schema: &Value, path: &Path) -> Result<Validator, SchemaError> {
    jsonschema::options()
        .with_retriever(Files(dir.to_path_buf()))
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| SchemaError::Invalid { path: path.display().to_string(), message: e.to_string() })
}

/// A JSON pointer (`/inputs/0/facets/schema`) as a field path (`inputs[0].facets.schema`).
pub fn field_path(pointer: &str) -> String {
    let mut out = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty() && segment.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&segment);
        }
    }
    out
}

impl Schemas {
    /// Loads `OpenLineage.json` and every `facets/*.json` in `dir`.
    pub fn load(dir: &Path) -> Result<Schemas, SchemaError> {
        let core_path = dir.join("OpenLineage.json");
        let core = read_json(&core_path)?;
        let id =
            core.get("$id").and_then(Value::as_str).unwrap_or("https://openlineage.io/spec/2-0-2/OpenLineage.json");
        let definition =
            |name: &str| compile(dir, &serde_json::json!({"$ref": format!("{id}#/$defs/{name}")}), &core_path);
        let (run, dataset, job) = (definition("RunEvent")?, definition("DatasetEvent")?, definition("JobEvent")?);
        let mut facets = Vec::new();
        let mut by_name = BTreeMap::new();
        let facet_dir = dir.join("facets");
        let entries = std::fs::read_dir(&facet_dir)
            .map_err(|e| SchemaError::File { path: facet_dir.display().to_string(), message: e.to_string() })?;
        let mut paths: Vec<PathBuf> =
            entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect();
        paths.sort();
        for path in paths {
            let name = path.file_stem().unwrap_or_default().to_string_lossy().to_string();
            let schema = read_json(&path)?;
            let mut at = Vec::new();
            places(&schema, &mut at);
            if at.is_empty() {
                continue;
            }
            let keys = schema
                .get("properties")
                .and_then(Value::as_object)
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            let validator = compile(dir, &schema, &path)?;
            by_name.insert(name.clone(), facets.len());
            facets.push(FacetSchema { name, places: at, keys, validator });
        }
        Ok(Schemas { run, dataset, job, facets, by_name })
    }

    /// The names of the facet schemas loaded.
    pub fn facet_names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// Where facets described by the named schema may sit (the first is the usual one).
    pub fn places_of(&self, schema: &str) -> Option<&[FacetPlace]> {
        self.by_name.get(schema).map(|i| self.facets[*i].places.as_slice())
    }

    /// Validates `{key: facet}` against the named facet schema's root, as the spec's facet
    /// test fixtures are written. `None` when no schema has that name.
    pub fn validate_facet_document(&self, schema: &str, document: &Value) -> Option<Vec<EventError>> {
        let i = self.by_name.get(schema)?;
        Some(errors(&self.facets[*i].validator, document, ""))
    }

    /// Every problem with an event: the core schema, then each facet against its schema.
    pub fn validate(&self, event: &Value) -> Vec<EventError> {
        let core = if event.get("run").is_some() {
            &self.run
        } else if event.get("job").is_some() {
            &self.job
        } else {
            &self.dataset
        };
        let mut out = errors(core, event, "");
        let mut check = |place: FacetPlace, facets: Option<&Value>, path: String| {
            let Some(Value::Object(facets)) = facets else { return };
            for (key, facet) in facets {
                let found = self.facets.iter().find(|s| s.places.contains(&place) && s.keys.iter().any(|k| k == key));
                let Some(schema) = found else { continue };
                let mut doc = Map::new();
                doc.insert(key.clone(), facet.clone());
                let mut found = errors(&schema.validator, &Value::Object(doc), &path);
                for e in &mut found {
                    e.message = format!("{} ({})", e.message, schema.name);
                }
                out.extend(found);
            }
        };
        check(FacetPlace::Run, event.pointer("/run/facets"), "run.facets".into());
        check(FacetPlace::Job, event.pointer("/job/facets"), "job.facets".into());
        check(FacetPlace::Dataset, event.pointer("/dataset/facets"), "dataset.facets".into());
        for (list, io, place) in
            [("inputs", "inputFacets", FacetPlace::Input), ("outputs", "outputFacets", FacetPlace::Output)]
        {
            if let Some(Value::Array(items)) = event.get(list) {
                for (i, d) in items.iter().enumerate() {
                    check(FacetPlace::Dataset, d.get("facets"), format!("{list}[{i}].facets"));
                    check(place, d.get(io), format!("{list}[{i}].{io}"));
                }
            }
        }
        out
    }
}

fn errors(validator: &Validator, instance: &Value, prefix: &str) -> Vec<EventError> {
    validator
        .iter_errors(instance)
        .map(|e| {
            let mut pointer = e.instance_path().to_string();
            // A missing property is reported at its object; name the property itself.
            if let jsonschema::error::ValidationErrorKind::Required { property: Value::String(p) } = e.kind() {
                pointer = format!("{pointer}/{}", p.replace('~', "~0").replace('/', "~1"));
            }
            let inner = field_path(&pointer);
            let field = match (prefix.is_empty(), inner.is_empty()) {
                (true, _) => inner,
                (false, true) => prefix.to_string(),
                (false, false) => format!("{prefix}.{inner}"),
            };
            EventError { field, message: e.to_string() }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_become_field_paths() {
        assert_eq!(field_path(""), "");
        assert_eq!(field_path("/run/runId"), "run.runId");
        assert_eq!(field_path("/inputs/0/facets/schema/fields/3/name"), "inputs[0].facets.schema.fields[3].name");
        assert_eq!(field_path("/a~1b"), "a/b");
    }

    #[test]
    fn places_come_from_the_core_definitions_a_schema_refers_to() {
        let schema = serde_json::json!({"$defs": {"X": {"allOf": [
            {"$ref": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/InputDatasetFacet"},
            {"$ref": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/OutputDatasetFacet"}
        ]}}});
        let mut at = Vec::new();
        places(&schema, &mut at);
        assert_eq!(at, [FacetPlace::Input, FacetPlace::Output]);
    }
}
