//! Data-quality drift: what OpenLineage runs say of the data they wrote and read (the
//! `outputStatistics` output facet: rows, bytes, files; the `dataQualityMetrics` facet: rows,
//! bytes, files, and per column nulls, distinct values, sum, count, min, max and quantiles) forms
//! one series per dataset and metric across runs, and each run's value is judged against the runs
//! before it ([`assay_detect::runs`]). A change names the dataset, the metric, the expected and
//! observed values, the run, and the version of the job's code that first produced it (the
//! `sourceCodeLocation` job facet's commit), with the version before it: "the sensor's data has
//! a different distribution since the pipeline update".

use assay_detect::runs::{self, Options};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::graph::{Graph, GraphError, MetricPoint};

/// Facets whose numeric fields are metrics.
pub const FACETS: [&str; 2] = ["outputStatistics", "dataQualityMetrics"];

/// The numeric fields of the quality facets among `facets`, by path
/// (`dataQualityMetrics.columnMetrics.age.nullCount`).
pub fn metrics(facets: &Map<String, Value>) -> Vec<(String, f64)> {
    fn walk(value: &Value, path: String, out: &mut Vec<(String, f64)>) {
        match value {
            Value::Number(n) => {
                if let Some(x) = n.as_f64().filter(|x| x.is_finite()) {
                    out.push((path, x));
                }
            }
            Value::Object(map) => {
                for (k, v) in map.iter().filter(|(k, _)| !k.starts_with('_')) {
                    walk(v, format!("{path}.{k}"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for name in FACETS {
        if let Some(facet) = facets.get(name) {
            walk(facet, name.to_string(), &mut out);
        }
    }
    out
}

/// A change in a dataset's metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// `dataset:NS:NAME`.
    pub dataset: String,
    /// The metric, by facet and field.
    pub metric: String,
    /// What the earlier runs lead to expect (their median).
    pub expected: f64,
    /// What the run measured.
    pub observed: f64,
    /// The difference relative to the expected value: −0.5 is a halving.
    pub relative: f64,
    /// The first run with the change.
    pub run: String,
    /// When its event was sent.
    pub time: String,
    /// `job:NS:NAME` of the run.
    pub job: String,
    /// The version of the job's code that first produced the change, when the run said.
    pub version: Option<String>,
    /// The version the run before it ran, when different.
    pub previous_version: Option<String>,
    /// A sentence for people.
    pub message: String,
}

impl Finding {
    /// What identifies a finding across checks: the dataset, metric and first run. A finding
    /// with the same key is reported once.
    pub fn key(&self) -> String {
        crate::graph::digest(&serde_json::json!(["quality", self.dataset, self.metric, self.run]))
    }
}

/// Every change in every dataset's metrics in the graph, oldest first within a series.
pub fn check(graph: &Graph, options: &Options) -> Result<Vec<Finding>, GraphError> {
    Ok(findings(&graph.metric_points()?, options))
}

/// The changes among metric points ordered by dataset, metric and time.
pub fn findings(points: &[MetricPoint], options: &Options) -> Vec<Finding> {
    let mut out = Vec::new();
    for series in points.chunk_by(|a, b| a.dataset == b.dataset && a.metric == b.metric) {
        let values: Vec<f64> = series.iter().map(|p| p.value).collect();
        for change in runs::changes(&values, options) {
            let p = &series[change.index];
            let before = change.index.checked_sub(1).and_then(|i| series[i].version.clone());
            let previous_version = before.filter(|b| Some(b) != p.version.as_ref());
            let since = match (&p.version, &previous_version) {
                (Some(v), Some(b)) => format!(", first with version {v} of the job's code (before: {b})"),
                (Some(v), None) => format!(", with version {v} of the job's code"),
                _ => String::new(),
            };
            out.push(Finding {
                message: format!(
                    "{} of {} was {} in run {} of {} where earlier runs lead to expect {} ({:+.0}%){since}",
                    p.metric,
                    p.dataset,
                    number(p.value),
                    p.run_id,
                    p.job,
                    number(change.expected),
                    100.0 * change.relative
                ),
                dataset: p.dataset.clone(),
                metric: p.metric.clone(),
                expected: change.expected,
                observed: p.value,
                relative: change.relative,
                run: p.run_id.clone(),
                time: p.time.clone(),
                job: p.job.clone(),
                version: p.version.clone(),
                previous_version,
            });
        }
    }
    out
}

fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 { format!("{x:.0}") } else { format!("{x:.4}") }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::Event;

    fn run(i: usize, rows: u64, commit: &str) -> Event {
        let raw = json!({
            "eventType": "COMPLETE",
            "eventTime": format!("2026-11-{:02}T02:00:00Z", i + 1),
            "producer": "https://example.com/etl",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "run": {"runId": format!("01930000-0000-7000-8000-{i:012}")},
            "job": {"namespace": "etl", "name": "sensors.daily", "facets": {"sourceCodeLocation": {
                "_producer": "https://example.com/etl",
                "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/SourceCodeLocationJobFacet.json",
                "type": "git", "url": "https://git.example.com/etl", "version": commit}}},
            "inputs": [],
            "outputs": [{"namespace": "s3://lake", "name": "sensors/clean", "outputFacets": {"outputStatistics": {
                "_producer": "https://example.com/etl",
                "_schemaURL": "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json",
                "rowCount": rows, "size": rows * 100}}}]
        });
        crate::parse(&raw).expect("a valid event")
    }

    #[test]
    fn a_row_count_that_halves_after_a_new_commit_is_one_finding_naming_the_commit() {
        let mut graph = Graph::in_memory().expect("graph");
        for i in 0..14 {
            graph.apply(&run(i, 1_000_000 + (i as u64 % 3) * 1_000, "a1b2c3d")).expect("apply");
        }
        for i in 14..18 {
            graph.apply(&run(i, 500_000 + (i as u64 % 2) * 1_000, "e4f5a6b")).expect("apply");
        }
        let found = check(&graph, &Options::default()).expect("check");
        let rows: Vec<&Finding> = found.iter().filter(|f| f.metric == "outputStatistics.rowCount").collect();
        assert_eq!(rows.len(), 1, "{found:#?}");
        let f = rows[0];
        assert_eq!(f.dataset, "dataset:s3://lake:sensors/clean");
        assert_eq!(f.job, "job:etl:sensors.daily");
        assert_eq!((f.expected, f.observed), (1_001_000.0, 500_000.0));
        assert_eq!(f.version.as_deref(), Some("e4f5a6b"));
        assert_eq!(f.previous_version.as_deref(), Some("a1b2c3d"));
        assert_eq!(f.run, "01930000-0000-7000-8000-000000000014");
        assert!(f.message.contains("-50%") && f.message.contains("e4f5a6b"), "{}", f.message);
        // The size moved with it: a finding of its own; nothing else.
        assert_eq!(found.len(), 2, "{found:#?}");
        // The same run again changes nothing.
        graph.apply(&run(17, 501_000, "e4f5a6b")).expect("apply");
        assert_eq!(check(&graph, &Options::default()).expect("check"), found);
    }

    #[test]
    fn column_metrics_are_series_of_their_own() {
        let facets = json!({"dataQualityMetrics": {"_producer": "x", "rowCount": 10, "columnMetrics": {
            "temperature": {"nullCount": 0, "distinctCount": 8, "quantiles": {"0.5": 21.5}}}}, "other": {"rowCount": 3}});
        let mut found = metrics(facets.as_object().expect("object"));
        found.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            found,
            vec![
                ("dataQualityMetrics.columnMetrics.temperature.distinctCount".to_string(), 8.0),
                ("dataQualityMetrics.columnMetrics.temperature.nullCount".to_string(), 0.0),
                ("dataQualityMetrics.columnMetrics.temperature.quantiles.0.5".to_string(), 21.5),
                ("dataQualityMetrics.rowCount".to_string(), 10.0),
            ]
        );
    }
}
