//! What the residency and lineage page and `GET /api/v1/residency` show, from the lineage graph
//! in the server's data directory and the active revision's residency rules and prices, through
//! the functions `assay lineage check` and `assay lineage costs` call: the residency findings
//! with their paths, every flow that crosses regions with its egress cost, the matrix of
//! regions, and the graph around one node with each node's region and classification.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use assay_lineage::graph::Node;
use serde_json::{Value, json};

use crate::state::State;

/// Why the page cannot be shown.
#[derive(Debug)]
pub(crate) enum Unavailable {
    /// The server has no data directory, so no lineage graph.
    NoGraph,
    /// The node asked for is not `dataset:NS:NAME` or `job:NS:NAME`, or not in the graph.
    NoNode(String),
    /// The graph cannot be read.
    Broken(String),
}

/// The residency document: the overview of the whole graph (kept per graph version and active
/// revision), and the graph around one node when asked for.
pub(crate) struct Document {
    /// `counts`, `currency`, `findings`, `flows`, `regions`.
    pub(crate) overview: Arc<Value>,
    /// The graph around the node asked for, in Marquez's form with each node's region,
    /// classification and distance.
    pub(crate) lineage: Option<Value>,
}

impl Document {
    /// As `GET /api/v1/residency` answers: the overview with `lineage`.
    pub(crate) fn to_json(&self) -> Value {
        let mut doc = (*self.overview).clone();
        doc["lineage"] = self.lineage.clone().unwrap_or(Value::Null);
        doc
    }
}

/// How far from the node the graph goes, each way: 3 jobs unless asked, at most 20.
pub(crate) fn depth(asked: Option<usize>) -> usize {
    asked.unwrap_or(3).min(20)
}

/// The document; `node` (with `depth`) adds the graph around it.
pub(crate) async fn document(state: &State, node: Option<&str>, depth: usize) -> Result<Document, Unavailable> {
    let intake = state.lineage().ok_or(Unavailable::NoGraph)?;
    let focus = match node {
        Some(id) => Some(Node::parse(id).ok_or_else(|| {
            Unavailable::NoNode(format!("{id:?} is not dataset:NAMESPACE:NAME or job:NAMESPACE:NAME"))
        })?),
        None => None,
    };
    let active = state.active();
    let for_query = Arc::clone(&active);
    let answer = intake
        .query(move |graph| {
            let active = for_query;
            let key = format!("residency\t{}", graph.version()?);
            let overview = match active.views.get(&key) {
                Some(kept) => kept,
                None => {
                    let fresh = Arc::new(overview(graph, &active)?);
                    active.views.put(key, Arc::clone(&fresh));
                    fresh
                }
            };
            let around = match &focus {
                None => None,
                Some(n) => match graph.upstream(n, depth)? {
                    None => return Ok(Err(n.id())),
                    Some(mut lineage) => {
                        if let Some(down) = graph.downstream(n, depth)? {
                            lineage.merge(down);
                        }
                        Some(graph.marquez(&lineage)?)
                    }
                },
            };
            Ok(Ok((overview, around)))
        })
        .await
        .map_err(Unavailable::Broken)?;
    let (overview, around) = answer.map_err(|id| Unavailable::NoNode(format!("{id} is not in the lineage graph")))?;
    let lineage = around.map(|g| annotate(g, &active.residency, node.unwrap_or("")));
    Ok(Document { overview, lineage })
}

/// What the whole graph shows under the active revision's rules and prices: the findings, every
/// flow between regions with its egress cost (most expensive first), and the matrix of regions.
fn overview(
    graph: &assay_lineage::graph::Graph,
    active: &crate::active::Active,
) -> Result<Value, assay_lineage::graph::GraphError> {
    let findings = assay_lineage::check::check(graph, &active.residency)?;
    let mut legs = assay_lineage::egress::egress(graph, &active.residency, &active.estate.prices)?;
    legs.sort_by(|a, b| b.cost.total_cmp(&a.cost).then(b.bytes.cmp(&a.bytes)));
    let counts = graph.counts()?;
    // Regions: bytes, runs and cost of every flow from one to another.
    let mut matrix: BTreeMap<(String, String), (u64, u64, f64)> = BTreeMap::new();
    for leg in &legs {
        let cell = matrix.entry((leg.from.clone(), leg.to.clone())).or_default();
        cell.0 += leg.bytes;
        cell.1 += leg.runs;
        cell.2 += leg.cost;
    }
    Ok(json!({
        "counts": {"jobs": counts[0], "runs": counts[1], "datasets": counts[2], "dataset_versions": counts[3], "events": counts[4]},
        "currency": active.estate.prices.currency,
        "findings": findings,
        "flows": legs,
        "regions": matrix.into_iter().map(|((from, to), (bytes, runs, cost))| json!({
            "from": from, "to": to, "bytes": bytes, "runs": runs, "cost": cost,
        })).collect::<Vec<_>>(),
    }))
}

/// The graph around `focus` with each node's region and classification (as the residency rules
/// give them from its name and tags) and its distance from `focus` (negative upstream).
fn annotate(mut graph: Value, residency: &assay_estate::residency::Residency, focus: &str) -> Value {
    let nodes = graph["graph"].as_array().cloned().unwrap_or_default();
    // Distances along the edges, both ways.
    let mut next: HashMap<String, Vec<(String, i64)>> = HashMap::new();
    for n in &nodes {
        let id = n["id"].as_str().unwrap_or("").to_string();
        for e in n["outEdges"].as_array().into_iter().flatten() {
            let to = e["destination"].as_str().unwrap_or("").to_string();
            next.entry(id.clone()).or_default().push((to.clone(), 1));
            next.entry(to).or_default().push((id.clone(), -1));
        }
    }
    let mut distance: HashMap<String, i64> = HashMap::from([(focus.to_string(), 0)]);
    let mut queue = VecDeque::from([focus.to_string()]);
    while let Some(at) = queue.pop_front() {
        let d = distance[&at];
        for (to, step) in next.get(&at).cloned().unwrap_or_default() {
            // Keep going the way it started: upstream stays upstream.
            if distance.contains_key(&to) || (d != 0 && d.signum() != step) {
                continue;
            }
            distance.insert(to.clone(), d + step);
            queue.push_back(to);
        }
    }
    if let Some(items) = graph["graph"].as_array_mut() {
        for n in items {
            let (ns, name) = (
                n["data"]["namespace"].as_str().unwrap_or("").to_string(),
                n["data"]["name"].as_str().unwrap_or("").to_string(),
            );
            let job = n["type"] == "JOB";
            let tags: Vec<String> = n["data"]["facets"]["tags"]["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["key"].as_str().map(str::to_string))
                .collect();
            let region = if job { residency.job_region(&ns, &name) } else { residency.dataset_region(&ns, &name) };
            n["region"] = json!(region);
            n["classification"] = json!(if job { None } else { residency.classify(&ns, &name, &tags) });
            n["distance"] = json!(distance.get(n["id"].as_str().unwrap_or("")));
        }
    }
    graph
}
