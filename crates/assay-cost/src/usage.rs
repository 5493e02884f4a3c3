//! What workloads used, from Prometheus (the IO side of rightsizing): per namespace of the
//! estate's workloads, one range query per metric (CPU as a rate, memory working set, requests,
//! GPU utilisation and memory), never one per container; each series attributed to its workload
//! by pod name ([`crate::rightsize::owner`]). A query that fails is named and the rest is still
//! read; a Prometheus that cannot be reached is named once and not asked again.

use std::collections::{BTreeMap, BTreeSet};

use assay_estate::settings::Rightsizing;

use crate::prometheus::{Client, Error, Series};
use crate::rightsize::Workload;

/// What one container spec of a workload used, pooled over its pods (replicas and the pods
/// that came before them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerUsage {
    /// CPU in cores, one value per pod and sample time.
    pub cpu: Vec<f64>,
    /// Memory working set in bytes.
    pub memory: Vec<f64>,
    /// The distinct times any sample was taken at (seconds since the epoch, in order): how much
    /// of the window is covered.
    pub times: Vec<i64>,
    /// Requests as the scheduler saw them, by resource (`cpu` in cores, `memory` in bytes).
    pub requested: BTreeMap<String, f64>,
    /// The pods seen.
    pub pods: BTreeSet<String>,
}

/// What the GPUs of a workload's pods did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuUsage {
    /// Utilisation in percent (of the busiest GPU of a pod), one value per pod and sample time.
    pub utilisation: Vec<f64>,
    /// Memory used in MiB.
    pub memory_mib: Vec<f64>,
    /// Distinct sample times, in order.
    pub times: Vec<i64>,
}

/// What was observed over a window.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// By (namespace, workload name, container name).
    pub containers: BTreeMap<(String, String, String), ContainerUsage>,
    /// By (namespace, workload name).
    pub gpus: BTreeMap<(String, String), GpuUsage>,
    /// What could not be read, named (the query and Prometheus' answer).
    pub problems: Vec<String>,
    /// The window's end, its length and the step (seconds).
    pub end: i64,
    /// Window length.
    pub window: u64,
    /// Step.
    pub step: u64,
    /// Range queries made.
    pub queries: usize,
}

/// The step for a window: about 4,000 points per series (5 minutes over 14 days), in whole
/// minutes, at least one.
pub fn step_for(window_seconds: u64) -> u64 {
    (window_seconds.div_ceil(4032)).div_ceil(60).max(1) * 60
}

/// A PromQL string literal.
fn literal(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The queries for one namespace: (what, query). `gpu` adds the GPU metrics.
pub fn queries(namespace: &str, settings: &Rightsizing, step: u64, gpu: bool) -> Vec<(&'static str, String)> {
    let (m, l, g) = (&settings.metrics, &settings.labels, &settings.gpu_labels);
    let ns = literal(namespace);
    let containers = format!("{}={ns}, {c}!=\"\", {c}!=\"POD\"", l.namespace, c = l.container);
    // A rate over at least two scrapes of a slow scrape interval, and never shorter than the step.
    let range = (2 * step).max(600);
    let mut out = vec![
        ("cpu", format!("sum by ({}, {}) (rate({}{{{containers}}}[{range}s]))", l.pod, l.container, m.cpu)),
        ("memory", format!("max by ({}, {}) ({}{{{containers}}})", l.pod, l.container, m.memory)),
        (
            "requests",
            format!(
                "max by ({}, {}, resource) ({}{{{}={ns}, resource=~\"cpu|memory\"}})",
                l.pod, l.container, m.requests, l.namespace
            ),
        ),
    ];
    if gpu {
        out.push(("gpu", format!("max by ({}) ({}{{{}={ns}}})", g.pod, m.gpu_utilisation, g.namespace)));
        out.push(("gpu memory", format!("max by ({}) ({}{{{}={ns}}})", g.pod, m.gpu_memory, g.namespace)));
    }
    out
}

/// Queries in flight at once: Prometheus evaluates them and assay reads the answers on both
/// sides' cores.
const IN_FLIGHT: usize = 4;

/// A query's answer (`None`: not asked).
type Answer = Option<Result<Vec<Series>, Error>>;

/// Reads what `workloads` used over the `window` seconds up to `end`. The first query is asked
/// alone (a Prometheus that cannot be reached is named once and not asked again); the rest
/// `IN_FLIGHT` at a time. Answers are attributed in query order, so the result does not depend
/// on which answer came first.
pub fn collect(client: &Client, workloads: &[Workload], settings: &Rightsizing, end: i64, window: u64) -> Observed {
    let step = step_for(window);
    let mut observed = Observed { end, window, step, ..Observed::default() };
    let mut by_namespace: BTreeMap<&str, Vec<&Workload>> = BTreeMap::new();
    for w in workloads {
        by_namespace.entry(w.namespace.as_str()).or_default().push(w);
    }
    let start = end - window as i64;
    // (namespace, its workloads' names, what, query)
    let mut asks: Vec<(&str, Vec<&str>, &'static str, String)> = Vec::new();
    for (namespace, here) in &by_namespace {
        let names: Vec<&str> = here.iter().map(|w| w.name.as_str()).collect();
        let gpu = here.iter().any(|w| w.gpus_per_pod > 0.0);
        for (what, query) in queries(namespace, settings, step, gpu) {
            asks.push((namespace, names.clone(), what, query));
        }
    }
    let ask = |query: &str| client.query_range(query, start, end, step);
    let mut answers: Vec<Answer> = Vec::with_capacity(asks.len());
    if let Some((_, _, _, first)) = asks.first() {
        answers.push(Some(ask(first)));
    }
    let reachable = !matches!(answers.first(), Some(Some(Err(Error::Unreachable { .. }))));
    if reachable && asks.len() > 1 {
        let next = std::sync::atomic::AtomicUsize::new(1);
        let slots: Vec<std::sync::Mutex<Answer>> = (1..asks.len()).map(|_| std::sync::Mutex::new(None)).collect();
        std::thread::scope(|scope| {
            for _ in 0..IN_FLIGHT.min(asks.len() - 1) {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((_, _, _, query)) = asks.get(i) else { break };
                        let answer = ask(query);
                        *slots[i - 1].lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(answer);
                    }
                });
            }
        });
        answers.extend(slots.into_iter().map(|s| s.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner)));
    }
    observed.queries = answers.len();
    let mut unreachable = None;
    for ((namespace, names, what, _), answer) in asks.iter().zip(answers) {
        match answer {
            Some(Ok(series)) => attribute(&mut observed, namespace, names, what, &series, settings),
            Some(Err(e @ Error::Unreachable { .. })) => {
                unreachable.get_or_insert(e);
            }
            Some(Err(e)) => observed.problems.push(format!("namespace {namespace}: {what}: {e}")),
            None => {}
        }
    }
    if let Some(e) = unreachable {
        let more = if reachable { "" } else { "; nothing more was asked" };
        observed.problems.insert(0, format!("Prometheus cannot be reached ({e}){more}"));
    }
    for usage in observed.containers.values_mut() {
        usage.times.sort_unstable();
        usage.times.dedup();
    }
    for usage in observed.gpus.values_mut() {
        usage.times.sort_unstable();
        usage.times.dedup();
    }
    observed
}

/// Adds `series` (of metric `what` in `namespace`) to the workloads their pods belong to.
fn attribute(
    observed: &mut Observed,
    namespace: &str,
    names: &[&str],
    what: &str,
    series: &[Series],
    settings: &Rightsizing,
) {
    let (l, g) = (&settings.labels, &settings.gpu_labels);
    for s in series {
        let gpu = what.starts_with("gpu");
        let pod_label = if gpu { &g.pod } else { &l.pod };
        let Some(pod) = s.labels.get(pod_label) else { continue };
        let Some(owner) = crate::rightsize::owner(pod, names) else { continue };
        if gpu {
            let usage = observed.gpus.entry((namespace.to_string(), owner.to_string())).or_default();
            for (t, v) in &s.samples {
                usage.times.push(*t as i64);
                if what == "gpu" { usage.utilisation.push(*v) } else { usage.memory_mib.push(*v) }
            }
            continue;
        }
        let Some(container) = s.labels.get(&l.container) else { continue };
        let usage =
            observed.containers.entry((namespace.to_string(), owner.to_string(), container.clone())).or_default();
        usage.pods.insert(pod.clone());
        match what {
            "cpu" | "memory" => {
                for (t, v) in &s.samples {
                    usage.times.push(*t as i64);
                    if what == "cpu" { usage.cpu.push(*v) } else { usage.memory.push(*v) }
                }
            }
            _ => {
                if let (Some(resource), Some((_, v))) = (s.labels.get("resource"), s.samples.last()) {
                    usage.requested.insert(resource.clone(), *v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_queries() {
        assert_eq!(step_for(14 * 86_400), 300);
        assert_eq!(step_for(86_400), 60);
        assert_eq!(step_for(30 * 86_400), 660);
        let settings = Rightsizing::default();
        let q = queries("ml \"x\"", &settings, 300, true);
        assert_eq!(q.len(), 5);
        assert_eq!(
            q[0].1,
            "sum by (pod, container) (rate(container_cpu_usage_seconds_total{namespace=\"ml \\\"x\\\"\", container!=\"\", container!=\"POD\"}[600s]))"
        );
        assert_eq!(queries("ml", &settings, 300, false).len(), 3);
    }
}
