//! What moving data between regions cost: for every run, each input read from another region
//! than the job's (bytes from its `inputStatistics` facet) and each output written to another
//! region (bytes from its `outputStatistics` facet), priced at the estate's egress rate from the
//! source region to the destination (`egressGB` of the source region in the price catalog, by
//! destination, else its `default`). A job's region is its `region` tag or `DataLocations` rule,
//! else the region of its inputs when they all share one.

use std::collections::{BTreeMap, HashMap};

use assay_estate::PriceCatalog;
use assay_estate::pricing::RegionPrices;
use assay_estate::residency::Residency;
use serde::Serialize;
use serde_json::Value;

use crate::check::{region_of_dataset, region_of_job, tag};
use crate::graph::{Graph, GraphError};

const GB: f64 = 1_000_000_000.0;

/// One priced flow leg, summed over runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Leg {
    /// The job that moved the data.
    pub job: String,
    /// The job's `cost-center` tag, if any.
    pub cost_center: Option<String>,
    /// The dataset moved.
    pub dataset: String,
    /// Source and destination regions.
    pub from: String,
    /// Destination region.
    pub to: String,
    /// Bytes moved, over all runs.
    pub bytes: u64,
    /// Runs that moved it.
    pub runs: u64,
    /// The egress rate per GB, when the catalog has one.
    pub rate_per_gb: Option<f64>,
    /// The cost, in the catalog's currency (0 when unpriced).
    pub cost: f64,
}

/// Every cross-region leg in the graph, priced.
pub fn egress(graph: &Graph, residency: &Residency, prices: &PriceCatalog) -> Result<Vec<Leg>, GraphError> {
    let datasets: HashMap<i64, (String, Option<String>)> = graph
        .datasets()?
        .into_iter()
        .map(|(id, ns, name)| -> Result<_, GraphError> {
            let node = format!("dataset:{ns}:{name}");
            let region = region_of_dataset(graph, residency, &ns, &name)?;
            Ok((id, (node, region)))
        })
        .collect::<Result<_, _>>()?;
    let jobs: HashMap<i64, (String, Option<String>, Option<String>)> = graph
        .jobs()?
        .into_iter()
        .map(|(id, ns, name)| -> Result<_, GraphError> {
            let node = format!("job:{ns}:{name}");
            let facets = graph.facets(&node)?;
            let region = region_of_job(&facets, residency, &ns, &name);
            let cost_center = tag(&facets, "cost-center");
            Ok((id, (node, region, cost_center)))
        })
        .collect::<Result<_, _>>()?;
    let edges = graph.run_edges()?;
    // The inputs' shared region stands in for a job with none.
    let mut input_regions: HashMap<i64, Vec<String>> = HashMap::new();
    for (_, job, dataset, output) in &edges {
        if !output && let Some(r) = datasets.get(dataset).and_then(|d| d.1.clone()) {
            input_regions.entry(*job).or_default().push(r);
        }
    }
    let job_region = |job: i64| -> Option<String> {
        jobs.get(&job).and_then(|j| j.1.clone()).or_else(|| {
            let rs = input_regions.get(&job)?;
            let first = rs.first()?;
            rs.iter().all(|r| r == first).then(|| first.clone())
        })
    };
    // A run's own `region` tag overrides its job's region.
    let run_regions = crate::check::run_regions(graph, &edges)?;
    let mut legs: BTreeMap<(String, String, String, String), Leg> = BTreeMap::new();
    for (run, job, dataset, output) in &edges {
        let processing = run_regions.get(run).cloned().or_else(|| job_region(*job));
        let (Some((dataset_id, Some(dataset_region))), Some(processing)) = (datasets.get(dataset), processing) else {
            continue;
        };
        let (from, to) = if *output {
            (processing.clone(), dataset_region.clone())
        } else {
            (dataset_region.clone(), processing.clone())
        };
        if from == to {
            continue;
        }
        let (_, ns_name) = dataset_id.split_once(':').unwrap_or_default();
        let io = if *output { "output" } else { "input" };
        let facets = graph.facets(&format!("run:{run}:{io}:{ns_name}"))?;
        let key = if *output { "outputStatistics" } else { "inputStatistics" };
        let bytes = facets.get(key).and_then(|s| s.get("size")).and_then(Value::as_u64).unwrap_or(0);
        let (job_id, _, cost_center) = jobs.get(job).cloned().unwrap_or_default();
        let rate = prices.regions.get(&from).and_then(|p| RegionPrices::keyed(&p.egress_gb, Some(&to)));
        let leg = legs.entry((job_id.clone(), dataset_id.clone(), from.clone(), to.clone())).or_insert_with(|| Leg {
            job: job_id,
            cost_center,
            dataset: dataset_id.clone(),
            from,
            to,
            bytes: 0,
            runs: 0,
            rate_per_gb: rate,
            cost: 0.0,
        });
        leg.bytes += bytes;
        leg.runs += 1;
    }
    let mut out: Vec<Leg> = legs.into_values().collect();
    for leg in &mut out {
        leg.cost = leg.rate_per_gb.map_or(0.0, |r| leg.bytes as f64 / GB * r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use assay_estate::manifest::parse_objects;
    use serde_json::json;

    use super::*;

    #[test]
    fn a_run_with_a_region_of_its_own_is_priced_from_there() {
        let (objects, _) = parse_objects(
            "residency/r.yaml",
            "apiVersion: assay.dev/v1alpha1\nkind: DataLocations\nmetadata: {name: where}\nspec:\n  \
             datasets: [{match: \"s3://eu-*\", region: eu-west-1}]\n  jobs: [{match: \"eu:*\", region: eu-west-1}]\n",
        );
        let mut diags = Vec::new();
        let residency = Residency::from_objects(&objects, &mut diags);
        let (objects, _) = parse_objects(
            "pricing/p.yaml",
            "apiVersion: assay.dev/v1alpha1\nkind: PriceCatalog\nmetadata: {name: p}\nspec:\n  currency: USD\n  \
             regions:\n    eu-west-1: {egressGB: {default: 0.02}}\n",
        );
        let (prices, d) = PriceCatalog::from_objects(&objects, "USD");
        assert!(d.is_empty() && diags.is_empty(), "{d:?} {diags:?}");
        let mut g = Graph::in_memory().expect("graph");
        let event = |run: u32, tags: Value| {
            json!({
                "eventType": "COMPLETE", "eventTime": "2026-11-23T10:00:00Z", "producer": "https://x.example/p",
                "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
                "run": {"runId": format!("00000000-0000-4000-8000-{run:012}"), "facets": tags},
                "job": {"namespace": "eu", "name": "train"},
                "inputs": [{"namespace": "s3://eu-lake", "name": "features", "inputFacets": {"inputStatistics": {
                    "_producer": "https://x.example/p", "_schemaURL": "https://x.example/s", "size": 2_000_000_000u64}}}],
            })
        };
        let elsewhere = json!({"tags": {"_producer": "https://x.example/p", "_schemaURL": "https://x.example/s",
                                        "tags": [{"key": "region", "value": "us-east-1"}]}});
        for raw in [event(1, json!({})), event(2, elsewhere)] {
            g.apply(&crate::parse(&raw).expect("valid")).expect("apply");
        }
        let legs = egress(&g, &residency, &prices).expect("egress");
        assert_eq!(legs.len(), 1, "only the run in us-east-1 crosses regions: {legs:#?}");
        assert_eq!(
            (legs[0].from.as_str(), legs[0].to.as_str(), legs[0].bytes),
            ("eu-west-1", "us-east-1", 2_000_000_000)
        );
        assert!((legs[0].cost - 0.04).abs() < 1e-9, "{}", legs[0].cost);
    }
}

/// Egress cost of the legs grouped by job or by cost center.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupCost {
    /// The job (`job:NS:NAME`) or cost center (`(untagged)` for jobs without one).
    pub group: String,
    /// Bytes moved across regions.
    pub bytes: u64,
    /// What it cost, in the catalog's currency.
    pub cost: f64,
}

/// How to group egress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// By the job that moved the data.
    Job,
    /// By the job's `cost-center` tag.
    CostCenter,
}

/// The legs' cost per group, sorted by group, and the total.
pub fn by_group(legs: &[Leg], by: GroupBy) -> (Vec<GroupCost>, f64) {
    let mut groups: BTreeMap<String, (u64, f64)> = BTreeMap::new();
    for leg in legs {
        let key = match by {
            GroupBy::Job => leg.job.clone(),
            GroupBy::CostCenter => leg.cost_center.clone().unwrap_or_else(|| "(untagged)".into()),
        };
        let g = groups.entry(key).or_default();
        g.0 += leg.bytes;
        g.1 += leg.cost;
    }
    let total = groups.values().map(|(_, cost)| cost).sum();
    (groups.into_iter().map(|(group, (bytes, cost))| GroupCost { group, bytes, cost }).collect(), total)
}
