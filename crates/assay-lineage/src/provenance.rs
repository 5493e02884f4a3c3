//! Provenance of a dataset (or model) version: an in-toto Statement v1 whose subject is the
//! version and whose predicate is SLSA Provenance v1 (build type: an assay lineage run). The
//! resolved dependencies are the versions of the datasets the producing run read, with digests,
//! and the job's source code (SourceCodeLocation facet: repository URL and commit). The statement
//! is signed in a DSSE envelope with Ed25519 (PAE over the payload type and payload).
//!
//! Digests: a version whose `datasetVersion` is itself a digest (`sha256:<64 hex>`) is named by
//! it; otherwise by the SHA-256 of `NAMESPACE:NAME@VERSION`, which names the version without
//! reading its content (documented as a deviation: in-toto expects content digests).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

/// The DSSE payload type of in-toto statements.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// The build type of a provenance made from lineage.
pub const BUILD_TYPE: &str = "https://assay.dev/provenance/lineage-run/v1";

/// DSSE's pre-authentication encoding of a payload.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {} {} ", payload_type.len(), payload_type, payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The digest set of a dataset version.
pub fn version_digest(namespace: &str, name: &str, version: &str) -> Value {
    if let Some(hex) = version.strip_prefix("sha256:")
        && hex.len() == 64
        && hex.chars().all(|c| c.is_ascii_hexdigit())
    {
        return json!({"sha256": hex.to_ascii_lowercase()});
    }
    json!({"sha256": crate::graph::sha256_hex(format!("{namespace}:{name}@{version}").as_bytes())})
}

/// A resolved dependency (an input dataset version, or source code).
#[derive(Debug, Clone, PartialEq)]
pub struct Dependency {
    /// `dataset:NS:NAME` or the source's URI (`git+https://…@commit`).
    pub uri: String,
    /// Its digest set.
    pub digest: Value,
    /// The dataset version, when a dataset.
    pub version: Option<String>,
}

/// What the statement says about the run that made the subject.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// `job:NS:NAME`.
    pub job: String,
    /// The run id.
    pub run_id: String,
    /// The event producer (the builder).
    pub producer: String,
    /// Start and end times, RFC 3339.
    pub started: Option<String>,
    /// When it finished.
    pub finished: Option<String>,
}

/// The in-toto Statement v1 with a SLSA Provenance v1 predicate.
pub fn statement(subject: (&str, &str, &str), run: &Run, dependencies: &[Dependency]) -> Value {
    let (namespace, name, version) = subject;
    let deps: Vec<Value> = dependencies
        .iter()
        .map(|d| {
            let mut v = json!({"uri": d.uri, "digest": d.digest});
            if let Some(version) = &d.version {
                v["annotations"] = json!({"version": version});
            }
            v
        })
        .collect();
    let mut metadata = json!({"invocationId": run.run_id});
    if let Some(s) = &run.started {
        metadata["startedOn"] = json!(s);
    }
    if let Some(f) = &run.finished {
        metadata["finishedOn"] = json!(f);
    }
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{
            "name": format!("dataset:{namespace}:{name}"),
            "digest": version_digest(namespace, name, version),
            "annotations": {"version": version},
        }],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {"job": run.job},
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {"id": run.producer},
                "metadata": metadata,
            },
        },
    })
}

/// A DSSE envelope over `statement`, signed by `sign` (an Ed25519 signer over PAE bytes).
pub fn envelope(statement: &Value, keyid: &str, sign: impl Fn(&[u8]) -> [u8; 64]) -> Value {
    let payload = serde_json::to_vec(statement).unwrap_or_default();
    let signature = sign(&pae(PAYLOAD_TYPE, &payload));
    json!({
        "payloadType": PAYLOAD_TYPE,
        "payload": STANDARD.encode(&payload),
        "signatures": [{"keyid": keyid, "sig": STANDARD.encode(signature)}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_is_as_the_dsse_spec_writes_it() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn digest_versions_are_kept_and_others_named() {
        let hex = "a".repeat(64);
        assert_eq!(version_digest("s3://b", "t", &format!("sha256:{hex}")), json!({"sha256": hex}));
        let named = version_digest("s3://b", "t", "v7");
        assert_eq!(named["sha256"].as_str().map(str::len), Some(64));
        assert_ne!(named, version_digest("s3://b", "t", "v8"));
    }
}

/// A dataset version's provenance, from the lineage graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Provenance {
    /// The in-toto statement (unsigned).
    pub statement: Value,
    /// The run that produced the version.
    pub run: Run,
}

/// Why there is no provenance for a dataset.
#[derive(Debug, thiserror::Error)]
pub enum ProvenanceError {
    /// The id is not `dataset:NAMESPACE:NAME[@VERSION]`.
    #[error("{0:?} is not dataset:NAMESPACE:NAME[@VERSION]")]
    NotADataset(String),
    /// No run in the graph wrote it.
    #[error("no run in the lineage graph wrote {0}")]
    NotProduced(String),
    /// The graph could not be read.
    #[error(transparent)]
    Graph(#[from] crate::graph::GraphError),
}

/// Builds the provenance statement of `dataset` (`dataset:NS:NAME`, with `@VERSION` for one
/// version, else the latest written): the producing run, the versions of the datasets it read,
/// and the job's source code (its SourceCodeLocation facet).
pub fn of_dataset(graph: &crate::graph::Graph, dataset: &str) -> Result<Provenance, ProvenanceError> {
    use crate::graph::Node;
    let (id, version) = match dataset.rsplit_once('@') {
        Some((id, v)) if !v.contains(':') && !v.contains('/') && !v.is_empty() => (id, Some(v)),
        _ => (dataset, None),
    };
    let Some(Node::Dataset(ns, name)) = Node::parse(id) else {
        return Err(ProvenanceError::NotADataset(dataset.to_string()));
    };
    let Some(produced) = graph.producing_run(&ns, &name, version)? else {
        return Err(ProvenanceError::NotProduced(format!(
            "{id}{}",
            version.map(|v| format!(" at version {v}")).unwrap_or_default()
        )));
    };
    let version = produced.version.clone().or(version.map(str::to_string)).unwrap_or_else(|| "unversioned".into());
    let mut dependencies: Vec<Dependency> = produced
        .inputs
        .iter()
        .map(|(ns, name, v)| {
            let v = v.clone().unwrap_or_else(|| "unversioned".into());
            Dependency { uri: format!("dataset:{ns}:{name}"), digest: version_digest(ns, name, &v), version: Some(v) }
        })
        .collect();
    let job_facets = graph.facets(&produced.job.id())?;
    let source = job_facets.get("sourceCodeLocation");
    if let Some(url) = source.and_then(|s| s.get("url")).and_then(Value::as_str) {
        let commit = source.and_then(|s| s.get("version")).and_then(Value::as_str);
        dependencies.push(Dependency {
            uri: match commit {
                Some(c) => format!("git+{url}@{c}"),
                None => format!("git+{url}"),
            },
            digest: match commit {
                Some(c) => json!({"gitCommit": c}),
                None => json!({}),
            },
            version: None,
        });
    }
    let producer = source
        .and_then(|s| s.get("_producer"))
        .and_then(Value::as_str)
        .unwrap_or("https://assay.dev/lineage")
        .to_string();
    let run = Run {
        job: produced.job.id(),
        run_id: produced.run_id.clone(),
        producer,
        started: produced.started.clone(),
        finished: produced.ended.clone(),
    };
    let statement = statement((&ns, &name, &version), &run, &dependencies);
    Ok(Provenance { statement, run })
}
