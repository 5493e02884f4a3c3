//! Residency checks over the lineage graph. Each dataset gets a classification (its own, from
//! `DataClassifications` rules and its tags, or inherited: derived data takes the strictest
//! classification of the inputs of the jobs that write it, unless the job is tagged
//! `anonymises`) and a region (a `region` tag, else `DataLocations`); each job a processing region
//! (a `region` tag, else `DataLocations`). Every flow is then checked: a classified dataset read
//! by a job in a region where it may not be processed, or written to a region where it may not be
//! stored, is a finding that names the whole path from where the classified data came from.

use std::collections::{BTreeMap, HashMap, HashSet};

use assay_estate::residency::Residency;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::graph::{Graph, GraphError};

/// What a flow did that the residency rules forbid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Violation {
    /// Data processed in a region its classification may not be processed in.
    Process,
    /// Data stored in a region its classification may not be stored in.
    Store,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Process or store.
    pub violation: Violation,
    /// The data's classification.
    pub classification: String,
    /// The region where it happened.
    pub region: String,
    /// The job that read or wrote the data.
    pub job: String,
    /// The dataset read or written.
    pub dataset: String,
    /// The path from the origin of the classified data: node ids, dataset, job, dataset, ….
    pub path: Vec<String>,
    /// The residency rule (`file:line`).
    pub rule: String,
    /// A sentence for people.
    pub message: String,
}

impl Finding {
    /// What identifies a finding across checks: the violation, classification, region, job and
    /// dataset (not the path, which grows with the graph, nor the rule's line). A finding with
    /// the same key is reported once.
    pub fn key(&self) -> String {
        let text = serde_json::json!([self.violation, self.classification, self.region, self.job, self.dataset]);
        crate::graph::digest(&text)
    }
}

/// The value of a tag (TagsDatasetFacet / TagsJobFacet) in some facets.
pub(crate) fn tag(facets: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    tags(facets).into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// A dataset's region: its `region` tag, else the location rules.
pub(crate) fn region_of_dataset(
    graph: &Graph,
    residency: &Residency,
    namespace: &str,
    name: &str,
) -> Result<Option<String>, GraphError> {
    let facets = graph.facets(&format!("dataset:{namespace}:{name}"))?;
    Ok(tag(&facets, "region").or_else(|| residency.dataset_region(namespace, name).map(str::to_string)))
}

/// A job's region: its `region` tag, else the location rules.
pub(crate) fn region_of_job(
    facets: &serde_json::Map<String, Value>,
    residency: &Residency,
    namespace: &str,
    name: &str,
) -> Option<String> {
    tag(facets, "region").or_else(|| residency.job_region(namespace, name).map(str::to_string))
}

/// Tag keys and values (TagsDatasetFacet / TagsJobFacet) read from the graph.
fn tags(facets: &serde_json::Map<String, Value>) -> Vec<(String, String)> {
    facets
        .get("tags")
        .and_then(|t| t.get("tags"))
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|t| Some((t.get("key")?.as_str()?.to_string(), t.get("value")?.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The region of each run of `edges` (as [`Graph::run_edges`] gives them) that has a `region`
/// tag (TagsRunFacet), by run id. Each run's facets are read once.
pub(crate) fn run_regions(
    graph: &Graph,
    edges: &[(String, i64, i64, bool)],
) -> Result<HashMap<String, String>, GraphError> {
    let mut out = HashMap::new();
    let mut looked = HashSet::new();
    for (run, _, _, _) in edges {
        if looked.insert(run.as_str())
            && let Some(region) = tag(&graph.facets(&format!("run:{run}"))?, "region")
        {
            out.insert(run.clone(), region);
        }
    }
    Ok(out)
}

/// Reads by runs with a region of their own: (job, dataset, the run's region).
fn run_reads(graph: &Graph) -> Result<Vec<(i64, i64, String)>, GraphError> {
    let edges = graph.run_edges()?;
    let regions = run_regions(graph, &edges)?;
    if regions.is_empty() {
        return Ok(Vec::new());
    }
    Ok(edges
        .into_iter()
        .filter(|(_, _, _, output)| !output)
        .filter_map(|(run, job, dataset, _)| regions.get(&run).map(|r| (job, dataset, r.clone())))
        .collect())
}

#[derive(Debug, Clone)]
struct DatasetInfo {
    id: String,
    region: Option<String>,
    /// Effective classification and where it came from: (class, origin dataset, via job).
    class: Option<String>,
    via: Option<(i64, i64)>,
}

/// Checks every flow in the graph against the residency rules.
pub fn check(graph: &Graph, residency: &Residency) -> Result<Vec<Finding>, GraphError> {
    let mut datasets: BTreeMap<i64, DatasetInfo> = BTreeMap::new();
    for (id, ns, name) in graph.datasets()? {
        let node = format!("dataset:{ns}:{name}");
        let t = tags(&graph.facets(&node)?);
        let region = region_of_dataset(graph, residency, &ns, &name)?;
        let labels: Vec<String> = t.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let class = residency.classify(&ns, &name, &labels);
        datasets.insert(id, DatasetInfo { id: node, region, class, via: None });
    }
    let mut jobs: HashMap<i64, (String, Option<String>, bool)> = HashMap::new();
    for (id, ns, name) in graph.jobs()? {
        let node = format!("job:{ns}:{name}");
        let facets = graph.facets(&node)?;
        let region = region_of_job(&facets, residency, &ns, &name);
        let anonymises = tag(&facets, "anonymises").is_some_and(|v| v != "false");
        jobs.insert(id, (node, region, anonymises));
    }
    let edges = graph.job_edges()?;
    let mut reads: HashMap<i64, Vec<i64>> = HashMap::new();
    let mut writes: HashMap<i64, Vec<i64>> = HashMap::new();
    for (job, dataset, output) in &edges {
        if *output {
            writes.entry(*job).or_default().push(*dataset);
        } else {
            reads.entry(*job).or_default().push(*dataset);
        }
    }
    // Propagate classifications downstream until nothing changes: strictness only grows, so
    // this ends, cycles included.
    let mut changed = true;
    let mut rounds = 0;
    while changed && rounds <= datasets.len() {
        changed = false;
        rounds += 1;
        for (job, outputs) in &writes {
            if jobs.get(job).is_some_and(|j| j.2) {
                continue;
            }
            let inputs = reads.get(job).map(Vec::as_slice).unwrap_or_default();
            let Some((source, class)) = inputs
                .iter()
                .filter_map(|i| datasets.get(i).and_then(|d| d.class.clone()).map(|c| (*i, c)))
                .max_by_key(|(i, c)| (residency.rank(c), *i))
            else {
                continue;
            };
            for out in outputs {
                let Some(d) = datasets.get_mut(out) else { continue };
                let stricter = match &d.class {
                    None => true,
                    Some(mine) => residency.rank(&class) > residency.rank(mine),
                };
                if stricter {
                    d.class = Some(class.clone());
                    d.via = Some((*job, source));
                    changed = true;
                }
            }
        }
    }
    let path_to = |dataset: i64| -> Vec<String> {
        let mut path = Vec::new();
        let mut at = Some(dataset);
        let mut guard = 0;
        while let Some(d) = at {
            let Some(info) = datasets.get(&d) else { break };
            path.push(info.id.clone());
            at = info.via.map(|(job, source)| {
                path.push(jobs.get(&job).map(|j| j.0.clone()).unwrap_or_default());
                source
            });
            guard += 1;
            if guard > datasets.len() * 2 + 2 {
                break;
            }
        }
        path.reverse();
        path
    };
    // Every flow: the job-level edges with the job's region, and the reads of runs that carry a
    // region of their own (a `region` tag on the run) where it differs from the job's.
    let mut flows: Vec<(i64, i64, bool, Option<String>)> =
        edges.iter().map(|(j, d, o)| (*j, *d, *o, jobs.get(j).and_then(|job| job.1.clone()))).collect();
    let run_reads = run_reads(graph)?;
    if !run_reads.is_empty() {
        let mut seen: HashSet<(i64, i64, bool, Option<String>)> = flows.iter().cloned().collect();
        for (job, dataset, region) in run_reads {
            let flow = (job, dataset, false, Some(region));
            if seen.insert(flow.clone()) {
                flows.push(flow);
            }
        }
    }
    let mut findings = Vec::new();
    for (job, dataset, output, processing) in &flows {
        let (Some((job_id, _, _)), Some(d)) = (jobs.get(job), datasets.get(dataset)) else { continue };
        let Some(class) = &d.class else { continue };
        let Some(rule) = residency.rule(class) else { continue };
        let (region, allowed, violation) = if *output {
            let Some(region) = &d.region else { continue };
            (region, rule.may_store(region), Violation::Store)
        } else {
            let Some(region) = processing else { continue };
            (region, rule.may_process(region), Violation::Process)
        };
        if allowed {
            continue;
        }
        let mut path = path_to(*dataset);
        if !*output {
            path.push(job_id.clone());
        }
        let message = match violation {
            Violation::Process => format!("{class} data {} is processed by {job_id} in {region}", d.id),
            Violation::Store => format!("{class} data is stored as {} in {region} by {job_id}", d.id),
        } + &format!(", which {} does not allow (path: {})", rule.name, path.join(" -> "));
        findings.push(Finding {
            violation,
            classification: class.clone(),
            region: region.clone(),
            job: job_id.clone(),
            dataset: d.id.clone(),
            path,
            rule: format!("{}:{}", rule.path, rule.line),
            message,
        });
    }
    findings.sort_by(|a, b| (&a.job, &a.dataset).cmp(&(&b.job, &b.dataset)));
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use assay_estate::manifest::parse_objects;
    use serde_json::json;

    use super::*;

    const RESIDENCY: &str = "apiVersion: assay.dev/v1alpha1\nkind: ResidencyRule\nmetadata: {name: gdpr}\n\
        spec: {classification: GDPR_SENSITIVE, storeIn: [eu-west-1, eu-central-1], processIn: [eu-west-1, eu-central-1]}\n---\n\
        apiVersion: assay.dev/v1alpha1\nkind: DataLocations\nmetadata: {name: where}\nspec:\n  \
        datasets: [{match: \"s3://eu-*\", region: eu-west-1}, {match: \"s3://us-*\", region: us-east-1}]\n  \
        jobs: [{match: \"eu:*\", region: eu-west-1}, {match: \"us:*\", region: us-east-1}]\n---\n\
        apiVersion: assay.dev/v1alpha1\nkind: DataClassifications\nmetadata: {name: classes}\nspec:\n  \
        order: [PUBLIC, INTERNAL, GDPR_SENSITIVE]\n  rules: [{match: \"s3://eu-customers*\", classification: GDPR_SENSITIVE}]\n";

    fn residency() -> Residency {
        let (objects, _) = parse_objects("residency/r.yaml", RESIDENCY);
        let mut d = Vec::new();
        let r = Residency::from_objects(&objects, &mut d);
        assert!(d.is_empty(), "{d:?}");
        r
    }

    fn run(
        graph: &mut Graph,
        n: u32,
        job: (&str, &str),
        inputs: &[(&str, &str)],
        outputs: &[(&str, &str)],
        job_tags: &[(&str, &str)],
    ) {
        let ds = |list: &[(&str, &str)]| -> Vec<Value> {
            list.iter().map(|(ns, name)| json!({"namespace": ns, "name": name})).collect()
        };
        let mut raw = json!({
            "eventType": "COMPLETE", "eventTime": "2026-11-23T10:00:00Z", "producer": "https://x.example/p",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "run": {"runId": format!("00000000-0000-4000-8000-{n:012}")},
            "job": {"namespace": job.0, "name": job.1},
            "inputs": ds(inputs), "outputs": ds(outputs),
        });
        if !job_tags.is_empty() {
            let tags: Vec<Value> = job_tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect();
            raw["job"]["facets"] = json!({"tags": {"_producer": "https://x.example/p", "_schemaURL": "https://x.example/s", "tags": tags}});
        }
        let event = crate::parse(&raw).expect("valid");
        graph.apply(&event).expect("apply");
    }

    #[test]
    fn classified_data_that_reaches_a_forbidden_region_is_found_with_its_whole_path() {
        let mut g = Graph::in_memory().expect("graph");
        run(&mut g, 1, ("eu", "clean"), &[("s3://eu-customers", "raw")], &[("s3://eu-lake", "clean")], &[]);
        run(&mut g, 2, ("eu", "features"), &[("s3://eu-lake", "clean")], &[("s3://eu-lake", "features")], &[]);
        run(&mut g, 3, ("us", "train"), &[("s3://eu-lake", "features")], &[("s3://us-models", "model")], &[]);
        let findings = check(&g, &residency()).expect("check");
        assert_eq!(findings.len(), 2, "{findings:#?}");
        let process = findings.iter().find(|f| f.violation == Violation::Process).expect("process");
        assert_eq!(process.region, "us-east-1");
        assert_eq!(process.classification, "GDPR_SENSITIVE");
        assert_eq!(
            process.path,
            [
                "dataset:s3://eu-customers:raw",
                "job:eu:clean",
                "dataset:s3://eu-lake:clean",
                "job:eu:features",
                "dataset:s3://eu-lake:features",
                "job:us:train"
            ]
        );
        let store = findings.iter().find(|f| f.violation == Violation::Store).expect("store");
        assert_eq!(store.dataset, "dataset:s3://us-models:model");
        assert_eq!(store.path.first().map(String::as_str), Some("dataset:s3://eu-customers:raw"));
        assert!(store.message.contains("gdpr does not allow"), "{}", store.message);
    }

    #[test]
    fn a_run_with_a_region_of_its_own_is_checked_there() {
        let mut g = Graph::in_memory().expect("graph");
        run(&mut g, 1, ("eu", "clean"), &[("s3://eu-customers", "raw")], &[("s3://eu-lake", "clean")], &[]);
        // The same EU job, once run in us-east-1 (a `region` tag on the run).
        let raw = json!({
            "eventType": "COMPLETE", "eventTime": "2026-11-23T11:00:00Z", "producer": "https://x.example/p",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "run": {"runId": "00000000-0000-4000-8000-000000000009", "facets": {"tags": {
                "_producer": "https://x.example/p", "_schemaURL": "https://x.example/s",
                "tags": [{"key": "region", "value": "us-east-1"}]}}},
            "job": {"namespace": "eu", "name": "clean"},
            "inputs": [{"namespace": "s3://eu-customers", "name": "raw"}],
            "outputs": [{"namespace": "s3://eu-lake", "name": "clean"}],
        });
        g.apply(&crate::parse(&raw).expect("valid")).expect("apply");
        let findings = check(&g, &residency()).expect("check");
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!((findings[0].violation.clone(), findings[0].region.as_str()), (Violation::Process, "us-east-1"));
        assert_eq!(findings[0].job, "job:eu:clean");
    }

    #[test]
    fn an_anonymising_job_stops_the_classification() {
        let mut g = Graph::in_memory().expect("graph");
        run(
            &mut g,
            1,
            ("eu", "anonymise"),
            &[("s3://eu-customers", "raw")],
            &[("s3://eu-lake", "anon")],
            &[("anonymises", "true")],
        );
        run(&mut g, 2, ("us", "train"), &[("s3://eu-lake", "anon")], &[("s3://us-models", "model")], &[]);
        assert_eq!(check(&g, &residency()).expect("check"), []);
    }
}
