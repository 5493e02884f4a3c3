//! What is wasted (sans-IO): rightsizing recommendations for each container spec of the
//! estate's workloads from what they used ([`crate::usage::Observed`]), and GPUs that sat idle,
//! each priced per month with the estate's price catalog (the workload priced as it is and as
//! recommended, by [`crate::pricing`], so Jobs and CronJobs count their hours as they do there).

use std::collections::BTreeMap;

use assay_estate::Object;
use assay_estate::pricing::{PriceCatalog, RegionPrices};
use assay_estate::settings::Settings;
use serde::Serialize;
use serde_json::Value;

use crate::rightsize::{self, Policy, Recommendation, Workload};
use crate::usage::Observed;

/// The schema of [`Report`] as JSON.
pub const SCHEMA: &str = "assay.dev/rightsizing/v1";

/// A recommendation for one container spec.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerAdvice {
    /// The container.
    pub container: String,
    /// CPU in cores: now, the usage quantile, recommended.
    pub cpu: Option<Recommendation>,
    /// Memory in bytes.
    pub memory: Option<Recommendation>,
    /// The recommended requests as the manifest would write them (`cpu`, `memory`), only those
    /// that change by more than `minChange`.
    pub set: BTreeMap<String, String>,
    /// Share of the window with samples (0 to 1).
    pub coverage: f64,
    /// high, medium or low.
    pub confidence: &'static str,
    /// Pods observed.
    pub pods: usize,
    /// Why a recommendation was held back (a limit in the way).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The recommendations for one workload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkloadAdvice {
    /// `Kind/namespace/name`.
    pub object: String,
    /// Manifest and line.
    pub path: String,
    /// Line.
    pub line: u32,
    /// Each observed container spec.
    pub containers: Vec<ContainerAdvice>,
    /// Monthly cost as the manifest asks, and as recommended (`None` when it cannot be priced).
    pub monthly_now: Option<f64>,
    /// As recommended.
    pub monthly_recommended: Option<f64>,
    /// Now minus recommended (negative: the workload needs more than it asks for).
    pub monthly_saving: Option<f64>,
}

/// A workload whose GPUs sat idle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IdleGpu {
    /// `Kind/namespace/name`.
    pub object: String,
    /// Manifest and line.
    pub path: String,
    /// Line.
    pub line: u32,
    /// GPUs per pod, and the GPU type (`default` when the manifest selects none).
    pub gpus_per_pod: f64,
    /// GPU type.
    pub gpu_type: String,
    /// Replicas the manifest asks for.
    pub replicas: f64,
    /// Share of samples with utilisation under the threshold.
    pub idle_share: f64,
    /// Highest utilisation seen, percent.
    pub peak_utilisation: f64,
    /// Highest GPU memory used, MiB.
    pub peak_memory_mib: Option<f64>,
    /// What its GPUs cost per month.
    pub monthly_gpu_cost: Option<f64>,
    /// What to do.
    pub suggestion: String,
    /// A cheaper GPU type the catalog prices whose memory holds the peak, and what it saves a
    /// month.
    pub cheaper_type: Option<(String, f64)>,
}

/// Everything `assay cost rightsize` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// The Prometheus read.
    pub prometheus: String,
    /// The window's end (RFC 3339), length and step in seconds.
    pub end: String,
    /// Window length in seconds.
    pub window_seconds: u64,
    /// Step in seconds.
    pub step_seconds: u64,
    /// Range queries made.
    pub queries: usize,
    /// Currency of the prices.
    pub currency: String,
    /// Per workload with an observed container, biggest saving first.
    pub workloads: Vec<WorkloadAdvice>,
    /// Workloads whose GPUs sat idle.
    pub idle_gpus: Vec<IdleGpu>,
    /// What could not be read or judged, named.
    pub problems: Vec<String>,
    /// What applying the recommendations of medium or high confidence saves a month, net: a
    /// workload that needs more than it asks for counts against.
    pub monthly_saving: f64,
}

/// Sets a container's request in a manifest's value (for pricing what is recommended).
fn set_request(value: &mut Value, pod_spec: &[&str], container: &str, resource: &str, quantity: &str) {
    let pointer = format!("/{}/containers", pod_spec.join("/"));
    let Some(list) = value.pointer_mut(&pointer).and_then(Value::as_array_mut) else { return };
    for c in list.iter_mut().filter(|c| c.get("name").and_then(Value::as_str) == Some(container)) {
        if let Some(map) = c.as_object_mut() {
            let resources = map.entry("resources").or_insert_with(|| Value::Object(Default::default()));
            if let Some(r) = resources.as_object_mut() {
                let requests = r.entry("requests").or_insert_with(|| Value::Object(Default::default()));
                if let Some(q) = requests.as_object_mut() {
                    q.insert(resource.to_string(), Value::String(quantity.to_string()));
                }
            }
        }
    }
}

/// The recommendations for `workloads` (of `manifests`) from what was `observed`.
pub fn plan(
    manifests: &[&Object],
    workloads: &[Workload],
    observed: &Observed,
    settings: &Settings,
    catalog: &PriceCatalog,
    policy: &Policy,
) -> (Vec<WorkloadAdvice>, Vec<IdleGpu>, Vec<String>) {
    let min_change = settings.rightsizing.min_change.max(0.0);
    let mut advice = Vec::new();
    let mut idle = Vec::new();
    let mut problems = Vec::new();
    let price = |object: &Object| {
        crate::pricing::price_workloads(std::slice::from_ref(object), settings, catalog).into_iter().next()
    };
    for w in workloads {
        let manifest = manifests[w.manifest];
        let mut recommended = manifest.clone();
        let mut containers = Vec::new();
        for c in &w.containers {
            let key = (w.namespace.clone(), w.name.clone(), c.name.clone());
            let Some(usage) = observed.containers.get(&key).filter(|u| !u.cpu.is_empty() || !u.memory.is_empty())
            else {
                continue;
            };
            let coverage = rightsize::coverage(usage.times.len(), observed.window as f64, observed.step as f64);
            let confidence = rightsize::confidence(coverage);
            let mut notes = Vec::new();
            let cpu_now = c.cpu_request.or_else(|| usage.requested.get("cpu").copied());
            let memory_now = c.memory_request.or_else(|| usage.requested.get("memory").copied());
            let mut cpu = rightsize::recommend(cpu_now, &usage.cpu, policy.cpu_quantile, policy.cpu_floor, policy);
            let mut memory =
                rightsize::recommend(memory_now, &usage.memory, policy.memory_quantile, policy.memory_floor, policy);
            // A request may not exceed its limit: hold it at the limit and say so.
            if let (Some(r), Some(limit)) = (&mut cpu, c.cpu_limit)
                && r.recommended > limit
            {
                notes.push(format!(
                    "CPU use (p{:.0} {:.3} cores) calls for {} but the limit is {}: raise the limit",
                    policy.cpu_quantile * 100.0,
                    r.observed,
                    rightsize::cpu_quantity(r.recommended),
                    rightsize::cpu_quantity(limit)
                ));
                r.recommended = limit;
            }
            if let (Some(r), Some(limit)) = (&mut memory, c.memory_limit)
                && r.recommended > limit
            {
                notes.push(format!(
                    "memory peaked at {:.0}% of its limit {}: not cut; raise the limit to leave headroom",
                    100.0 * r.observed / limit,
                    rightsize::memory_quantity(limit)
                ));
                r.recommended = limit;
            }
            let mut set = BTreeMap::new();
            let changes = |r: &Recommendation| {
                r.current.is_none_or(|now| now <= 0.0 || (r.recommended - now).abs() / now > min_change)
            };
            if let Some(r) = cpu.as_mut().filter(|r| changes(r)) {
                let q = rightsize::cpu_quantity(r.recommended);
                r.recommended = crate::pricing::parse_quantity(&q).unwrap_or(r.recommended);
                set.insert("cpu".to_string(), q);
            }
            if let Some(r) = memory.as_mut().filter(|r| changes(r)) {
                let q = rightsize::memory_quantity(r.recommended);
                r.recommended = crate::pricing::parse_quantity(&q).unwrap_or(r.recommended);
                set.insert("memory".to_string(), q);
            }
            for (resource, q) in &set {
                set_request(&mut recommended.value, &w.pod_spec, &c.name, resource, q);
            }
            containers.push(ContainerAdvice {
                container: c.name.clone(),
                cpu,
                memory,
                set,
                coverage,
                confidence,
                pods: usage.pods.len(),
                notes,
            });
        }
        if containers.is_empty() && w.containers.iter().any(|c| !c.name.is_empty()) {
            problems.push(format!(
                "{} ({}:{}): no CPU or memory samples in the window for pods named {}-…",
                w.object, w.path, w.line, w.name
            ));
        }
        if containers.is_empty() && w.gpus_per_pod <= 0.0 {
            continue;
        }
        let now = price(manifest);
        if !containers.is_empty() {
            let after = price(&recommended);
            let (monthly_now, monthly_recommended) =
                (now.as_ref().and_then(|c| c.monthly), after.as_ref().and_then(|c| c.monthly));
            advice.push(WorkloadAdvice {
                object: w.object.clone(),
                path: w.path.clone(),
                line: w.line,
                containers,
                monthly_now,
                monthly_recommended,
                monthly_saving: monthly_now.zip(monthly_recommended).map(|(a, b)| a - b),
            });
        }
        if w.gpus_per_pod > 0.0 {
            match observed.gpus.get(&(w.namespace.clone(), w.name.clone())).filter(|g| !g.utilisation.is_empty()) {
                None => problems.push(format!(
                    "{} ({}:{}): requests GPUs but has no {} samples (is NVIDIA's DCGM exporter scraped?)",
                    w.object, w.path, w.line, settings.rightsizing.metrics.gpu_utilisation
                )),
                Some(gpu) => {
                    let (is_idle, share) = rightsize::idle_gpu(&gpu.utilisation, policy);
                    if is_idle {
                        idle.push(idle_gpu(w, manifest, gpu, share, now.as_ref(), settings, catalog));
                    }
                }
            }
        }
    }
    advice.sort_by(|a, b| {
        b.monthly_saving.unwrap_or(0.0).total_cmp(&a.monthly_saving.unwrap_or(0.0)).then(a.object.cmp(&b.object))
    });
    (advice, idle, problems)
}

fn idle_gpu(
    w: &Workload,
    manifest: &Object,
    gpu: &crate::usage::GpuUsage,
    share: f64,
    cost: Option<&crate::pricing::WorkloadCost>,
    settings: &Settings,
    catalog: &PriceCatalog,
) -> IdleGpu {
    let replicas = manifest.value.pointer("/spec/replicas").and_then(Value::as_f64).unwrap_or(1.0);
    let peak_utilisation = gpu.utilisation.iter().copied().filter(|v| v.is_finite()).fold(0.0, f64::max);
    let peak_memory_mib = Some(gpu.memory_mib.iter().copied().filter(|v| v.is_finite()).fold(0.0, f64::max))
        .filter(|_| !gpu.memory_mib.is_empty());
    let pod_spec = manifest.value.pointer(&format!("/{}", w.pod_spec.join("/")));
    let gpu_type = crate::pricing::gpu_type_of(&manifest.value, pod_spec.unwrap_or(&Value::Null));
    let type_name = gpu_type.clone().unwrap_or_else(|| "default".to_string());
    let monthly_gpu_cost = cost.map(|c| c.gpu).filter(|g| *g > 0.0);
    // A cheaper type in the same region whose memory holds the peak with a fifth to spare.
    let prices = cost.and_then(|c| c.region.as_ref()).and_then(|r| catalog.regions.get(r));
    let cheaper_type = prices.and_then(|p| {
        let now = RegionPrices::keyed(&p.gpu_hour, gpu_type.as_deref())?;
        let need_gib = peak_memory_mib.map(|m| m / 1024.0 / 0.8)?;
        p.gpu_hour
            .iter()
            .filter(|(name, price)| {
                name.as_str() != "default"
                    && **price < now
                    && rightsize::gpu_memory_gib(name).is_some_and(|gib| gib >= need_gib)
            })
            .min_by(|a, b| a.1.total_cmp(b.1))
            .map(|(name, price)| {
                let pods = cost.map_or(replicas, |c| c.gpu / (now * w.gpus_per_pod).max(f64::MIN_POSITIVE));
                (name.clone(), (now - price) * w.gpus_per_pod * pods)
            })
    });
    let mut suggestion = if replicas > 1.0 {
        format!(
            "its GPUs were under {}% in {:.0}% of samples (peak {:.0}%): run fewer replicas, or scale it to zero when idle",
            settings.rightsizing.idle_gpu_utilisation,
            share * 100.0,
            peak_utilisation
        )
    } else {
        format!(
            "its GPUs were under {}% in {:.0}% of samples (peak {:.0}%): scale it to zero when idle, or share the GPU",
            settings.rightsizing.idle_gpu_utilisation,
            share * 100.0,
            peak_utilisation
        )
    };
    if let Some((name, saving)) = &cheaper_type {
        suggestion.push_str(&format!("; or run on {name}, whose memory holds its peak ({saving:.0} a month less)"));
    }
    IdleGpu {
        object: w.object.clone(),
        path: w.path.clone(),
        line: w.line,
        gpus_per_pod: w.gpus_per_pod,
        gpu_type: type_name,
        replicas,
        idle_share: share,
        peak_utilisation,
        peak_memory_mib,
        monthly_gpu_cost,
        suggestion,
        cheaper_type,
    }
}

/// The requests of `head`'s workloads that are far above what observed use
/// calls for (`rightsizing.warnAbove` times the recommendation), and that the change raised
/// (higher than at `base`, or new): a warning each at the manifest's line, with the numbers.
pub fn oversized(
    head: &[Workload],
    base: Option<&[Workload]>,
    observed: &Observed,
    settings: &Settings,
    policy: &Policy,
) -> Vec<assay_estate::Diagnostic> {
    let factor = settings.rightsizing.warn_above.max(1.0);
    let days = observed.window as f64 / 86_400.0;
    let mut out = Vec::new();
    for w in head {
        let before =
            base.and_then(|b| b.iter().find(|x| x.kind == w.kind && x.namespace == w.namespace && x.name == w.name));
        for c in &w.containers {
            let key = (w.namespace.clone(), w.name.clone(), c.name.clone());
            let Some(usage) = observed.containers.get(&key) else { continue };
            let was = before.and_then(|b| b.containers.iter().find(|x| x.name == c.name));
            let checks = [
                (
                    "cpu",
                    c.cpu_request,
                    was.and_then(|x| x.cpu_request),
                    &usage.cpu,
                    policy.cpu_quantile,
                    policy.cpu_floor,
                ),
                (
                    "memory",
                    c.memory_request,
                    was.and_then(|x| x.memory_request),
                    &usage.memory,
                    policy.memory_quantile,
                    policy.memory_floor,
                ),
            ];
            for (resource, now, then, samples, q, floor) in checks {
                let Some(now) = now else { continue };
                if base.is_some() && then.is_some_and(|t| now <= t) {
                    continue;
                }
                let Some(r) = rightsize::recommend(Some(now), samples, q, floor, policy) else { continue };
                if now <= factor * r.recommended {
                    continue;
                }
                let show = |v: f64| {
                    if resource == "cpu" { rightsize::cpu_quantity(v) } else { rightsize::memory_quantity(v) }
                };
                out.push(
                    assay_estate::Diagnostic::warning(
                        w.path.clone(),
                        format!(
                            "{} container {}: requests {resource} {}{} but used {} at p{:.0} over the last {days:.0} days; {} would do ({:.1}x less)",
                            w.object,
                            c.name,
                            show(now),
                            then.map(|t| format!(" (was {})", show(t))).unwrap_or_default(),
                            show(r.observed),
                            q * 100.0,
                            show(r.recommended),
                            now / r.recommended
                        ),
                    )
                    .at(w.line, None),
                );
            }
        }
    }
    out
}
