//! Rightsizing (sans-IO): what a container should request, from what it used over a window, as
//! Kubecost and the Vertical Pod Autoscaler recommend it: a quantile of usage (CPU p95, memory
//! the maximum, by default) divided by a target utilisation (0.7), never below a floor (10m
//! CPU, 20 MiB), with a confidence from how much of the window had samples. Idle GPUs: GPUs whose
//! utilisation stays under a threshold (5%) for most of the window (90% of its samples).

use serde::Serialize;

/// How recommendations are made.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Policy {
    /// The quantile of CPU usage a request should cover (0.95).
    pub cpu_quantile: f64,
    /// The quantile of memory usage a request should cover (1.0: the maximum; memory cannot be
    /// throttled, only killed).
    pub memory_quantile: f64,
    /// The share of the request usage should fill (0.7).
    pub target_utilisation: f64,
    /// The smallest CPU request recommended, in cores (0.010).
    pub cpu_floor: f64,
    /// The smallest memory request recommended, in bytes (20 MiB).
    pub memory_floor: f64,
    /// A GPU under this utilisation (percent) is idle (5).
    pub idle_gpu_utilisation: f64,
    /// The share of a window's samples a GPU must be idle in to be reported (0.9).
    pub idle_share: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            cpu_quantile: 0.95,
            memory_quantile: 1.0,
            target_utilisation: 0.7,
            cpu_floor: 0.010,
            memory_floor: 20.0 * 1024.0 * 1024.0,
            idle_gpu_utilisation: 5.0,
            idle_share: 0.9,
        }
    }
}

/// The `q` quantile of `samples` (linear interpolation between closest ranks, as Prometheus'
/// `quantile_over_time` computes it); `None` when there are none. Values that are not finite are
/// left out.
pub fn quantile(samples: &[f64], q: f64) -> Option<f64> {
    let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    Some(v[lo] + (v[hi] - v[lo]) * (rank - lo as f64))
}

/// A recommendation for one resource of one container spec.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Recommendation {
    /// What it requests now (cores or bytes), when it requests anything.
    pub current: Option<f64>,
    /// The usage quantile the recommendation covers.
    pub observed: f64,
    /// What it should request.
    pub recommended: f64,
}

/// The request `usage` calls for under `policy` for a resource with this quantile and floor.
pub fn recommend(
    current: Option<f64>,
    usage: &[f64],
    quantile_of: f64,
    floor: f64,
    policy: &Policy,
) -> Option<Recommendation> {
    let observed = quantile(usage, quantile_of)?;
    let recommended = (observed / policy.target_utilisation.clamp(0.05, 1.0)).max(floor);
    Some(Recommendation { current, observed, recommended })
}

/// How much of a window a series covers: the samples it has over the samples the window holds
/// at its step (0 to 1).
pub fn coverage(samples: usize, window_seconds: f64, step_seconds: f64) -> f64 {
    if window_seconds <= 0.0 || step_seconds <= 0.0 {
        return 0.0;
    }
    let expected = (window_seconds / step_seconds).floor().max(1.0);
    (samples as f64 / expected).min(1.0)
}

/// Confidence in a recommendation from its coverage: `high` from 80% of the window, `medium`
/// from 40%, else `low`.
pub fn confidence(coverage: f64) -> &'static str {
    if coverage >= 0.8 {
        "high"
    } else if coverage >= 0.4 {
        "medium"
    } else {
        "low"
    }
}

/// Whether a GPU with these utilisation samples (percent) is idle under `policy`, and the share of
/// samples it was idle in.
pub fn idle_gpu(utilisation: &[f64], policy: &Policy) -> (bool, f64) {
    let samples: Vec<f64> = utilisation.iter().copied().filter(|x| x.is_finite()).collect();
    if samples.is_empty() {
        return (false, 0.0);
    }
    let idle = samples.iter().filter(|u| **u < policy.idle_gpu_utilisation).count() as f64 / samples.len() as f64;
    (idle >= policy.idle_share, idle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_between_ranks() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&v, 0.5), Some(3.0));
        assert_eq!(quantile(&v, 1.0), Some(5.0));
        assert_eq!(quantile(&v, 0.9), Some(4.6));
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[f64::NAN, 2.0], 0.0), Some(2.0));
    }

    #[test]
    fn a_fifth_used_cpu_is_cut_and_memory_near_its_peak_is_not() {
        let policy = Policy::default();
        // Requests 1 core, uses 0.15-0.2: p95 ≈ 0.2 → 0.2857 cores.
        let cpu: Vec<f64> = (0..1000).map(|i| 0.15 + 0.05 * ((i % 100) as f64 / 100.0)).collect();
        let r = recommend(Some(1.0), &cpu, policy.cpu_quantile, policy.cpu_floor, &policy).expect("recommendation");
        assert!(
            (r.recommended - r.observed / 0.7).abs() < 1e-12 && r.recommended < 0.3 && r.recommended > 0.27,
            "{r:?}"
        );
        // Requests 1 GiB and peaks at 0.95 GiB: the recommendation is above the request.
        let gib = 1024.0 * 1024.0 * 1024.0;
        let memory: Vec<f64> = (0..1000).map(|i| if i == 500 { 0.95 * gib } else { 0.5 * gib }).collect();
        let m = recommend(Some(gib), &memory, policy.memory_quantile, policy.memory_floor, &policy).expect("memory");
        assert!(m.recommended > gib, "{m:?}");
        // Floors.
        let tiny = recommend(Some(0.5), &[0.0001; 10], policy.cpu_quantile, policy.cpu_floor, &policy).expect("tiny");
        assert_eq!(tiny.recommended, 0.010);
    }

    #[test]
    fn coverage_confidence_and_idle_gpus() {
        let (day, step) = (86_400.0, 300.0);
        assert_eq!(coverage(4032, 14.0 * day, step), 1.0);
        assert_eq!(confidence(coverage(576, 14.0 * day, step)), "low", "two days of fourteen");
        assert_eq!(confidence(coverage(2500, 14.0 * day, step)), "medium");
        let policy = Policy::default();
        let idle: Vec<f64> = (0..100).map(|i| if i < 95 { 1.0 } else { 60.0 }).collect();
        assert_eq!(idle_gpu(&idle, &policy), (true, 0.95));
        let busy: Vec<f64> = (0..100).map(|i| 40.0 + (i % 20) as f64).collect();
        assert!(!idle_gpu(&busy, &policy).0);
        assert_eq!(idle_gpu(&[], &policy), (false, 0.0));
    }
}

/// The workload a pod belongs to, by the names its controllers give pods: a Deployment's pods
/// are `NAME-<replicaset hash>-<suffix>`, a StatefulSet's `NAME-<ordinal>`, a Job's
/// `NAME-<suffix>`, a CronJob's `NAME-<schedule time>-<suffix>`, a DaemonSet's `NAME-<suffix>`.
/// Of `workloads` (names in the pod's namespace), the longest that the pod name starts with,
/// followed by `-` and one or two generated segments.
pub fn owner<'a>(pod: &str, workloads: &[&'a str]) -> Option<&'a str> {
    workloads
        .iter()
        .filter(|w| {
            pod.strip_prefix(**w).and_then(|rest| rest.strip_prefix('-')).is_some_and(|rest| {
                let segments: Vec<&str> = rest.split('-').collect();
                (1..=2).contains(&segments.len())
                    && segments.iter().all(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric()))
            })
        })
        .max_by_key(|w| w.len())
        .copied()
}

#[cfg(test)]
mod owner_tests {
    use super::owner;

    #[test]
    fn pods_belong_to_the_workload_their_names_come_from() {
        let workloads = ["llm-inference", "llm", "train", "db", "nightly-report"];
        assert_eq!(owner("llm-inference-7d9f8c6b5-x2k9p", &workloads), Some("llm-inference"));
        assert_eq!(owner("llm-5c8d7-abcde", &workloads), Some("llm"));
        assert_eq!(owner("db-0", &workloads), Some("db"));
        assert_eq!(owner("train-q8z7w", &workloads), Some("train"));
        assert_eq!(owner("nightly-report-29384756-abcde", &workloads), Some("nightly-report"));
        assert_eq!(owner("llm-inference-canary-7d9f8c6b5-x2k9p", &workloads), None, "another workload's pods");
        assert_eq!(owner("other-1", &workloads), None);
    }
}

/// The policy `assay.yaml`'s `rightsizing:` sets; floors that do not read as quantities are
/// named.
pub fn policy_of(settings: &assay_estate::settings::Rightsizing) -> Result<Policy, String> {
    let quantity = |field: &str, text: &str| {
        crate::pricing::parse_quantity(text)
            .ok_or_else(|| format!("assay.yaml: rightsizing.{field}: {text:?} is not a Kubernetes quantity"))
    };
    Ok(Policy {
        cpu_quantile: settings.cpu_quantile,
        memory_quantile: settings.memory_quantile,
        target_utilisation: settings.target_utilisation,
        cpu_floor: quantity("cpuFloor", &settings.cpu_floor)?,
        memory_floor: quantity("memoryFloor", &settings.memory_floor)?,
        idle_gpu_utilisation: settings.idle_gpu_utilisation,
        idle_share: settings.idle_share,
    })
}

/// A container spec of a workload in the manifests, with what it asks for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerSpec {
    /// The container's name.
    pub name: String,
    /// Its CPU request in cores, and limit.
    pub cpu_request: Option<f64>,
    /// CPU limit in cores.
    pub cpu_limit: Option<f64>,
    /// Memory request in bytes.
    pub memory_request: Option<f64>,
    /// Memory limit in bytes.
    pub memory_limit: Option<f64>,
}

/// A workload of the manifests whose pods rightsizing can observe.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workload {
    /// `Kind/namespace/name`, as findings name objects.
    pub object: String,
    /// Kind.
    pub kind: String,
    /// Namespace (`default` when the manifest names none).
    pub namespace: String,
    /// Name: its pods' names start with it.
    pub name: String,
    /// Manifest file and the line of its document.
    pub path: String,
    /// Line.
    pub line: u32,
    /// Keys from the document's root to its pod spec.
    pub pod_spec: Vec<&'static str>,
    /// Its containers.
    pub containers: Vec<ContainerSpec>,
    /// GPUs each pod requests.
    pub gpus_per_pod: f64,
    /// Index of its manifest in the list given to [`workloads`].
    #[serde(skip)]
    pub manifest: usize,
}

/// The workloads of `manifests`: Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and
/// CronJobs.
pub fn workloads(manifests: &[&assay_estate::Object]) -> Vec<Workload> {
    use crate::pricing::quantity;
    use serde_json::Value;
    let mut out = Vec::new();
    for (i, o) in manifests.iter().enumerate() {
        let pod_spec: Vec<&'static str> = match o.kind() {
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => vec!["spec", "template", "spec"],
            "CronJob" => vec!["spec", "jobTemplate", "spec", "template", "spec"],
            _ => continue,
        };
        let pointer = format!("/{}", pod_spec.join("/"));
        let Some(spec) = o.value.pointer(&pointer) else { continue };
        let mut containers = Vec::new();
        let mut gpus = 0.0;
        for c in spec.get("containers").and_then(Value::as_array).into_iter().flatten() {
            let r = |p: &str| quantity(c.pointer(&format!("/resources/{p}")));
            gpus += r("requests/nvidia.com~1gpu")
                .or_else(|| r("limits/nvidia.com~1gpu"))
                .or_else(|| r("requests/amd.com~1gpu"))
                .or_else(|| r("limits/amd.com~1gpu"))
                .unwrap_or(0.0);
            containers.push(ContainerSpec {
                name: c.get("name").and_then(Value::as_str).unwrap_or("").to_string(),
                cpu_request: r("requests/cpu"),
                cpu_limit: r("limits/cpu"),
                memory_request: r("requests/memory"),
                memory_limit: r("limits/memory"),
            });
        }
        out.push(Workload {
            object: o.identity(),
            kind: o.kind().to_string(),
            namespace: Some(o.namespace()).filter(|n| !n.is_empty()).unwrap_or("default").to_string(),
            name: o.name().to_string(),
            path: o.path.clone(),
            line: o.line,
            pod_spec,
            containers,
            gpus_per_pod: gpus,
            manifest: i,
        });
    }
    out
}

/// A CPU request as a manifest writes it: whole cores, else millicores (rounded up).
pub fn cpu_quantity(cores: f64) -> String {
    let milli = (cores * 1000.0 - 1e-6).ceil().max(1.0) as u64;
    if milli.is_multiple_of(1000) { format!("{}", milli / 1000) } else { format!("{milli}m") }
}

/// A memory request as a manifest writes it: whole GiB, else MiB (rounded up).
pub fn memory_quantity(bytes: f64) -> String {
    let mib = (bytes / 1_048_576.0 - 1e-6).ceil().max(1.0) as u64;
    if mib.is_multiple_of(1024) { format!("{}Gi", mib / 1024) } else { format!("{mib}Mi") }
}

/// GPU memory in GiB of common data-centre GPU types, matched in a type's name (the values of
/// `nvidia.com/gpu.product` and the clouds' accelerator names), longest first.
const GPU_MEMORY_GIB: &[(&str, f64)] = &[
    ("a100-sxm4-80gb", 80.0),
    ("a100-80gb", 80.0),
    ("h200", 141.0),
    ("h100", 80.0),
    ("a100", 40.0),
    ("l40s", 48.0),
    ("a6000", 48.0),
    ("l40", 48.0),
    ("a10g", 24.0),
    ("a10", 24.0),
    ("v100", 16.0),
    ("l4", 24.0),
    ("t4", 16.0),
];

/// The memory of a GPU type, when its name is known.
pub fn gpu_memory_gib(kind: &str) -> Option<f64> {
    let kind = kind.to_ascii_lowercase();
    GPU_MEMORY_GIB.iter().find(|(name, _)| kind.contains(name)).map(|(_, gib)| *gib)
}

#[cfg(test)]
mod quantity_tests {
    use super::*;

    #[test]
    fn quantities_are_written_as_people_write_them_and_never_below_the_value() {
        assert_eq!(cpu_quantity(0.2857), "286m");
        assert_eq!(cpu_quantity(2.0), "2");
        assert_eq!(cpu_quantity(0.0001), "1m");
        assert_eq!(memory_quantity(857.0 * 1_048_576.0), "857Mi");
        assert_eq!(memory_quantity(857.2 * 1_048_576.0), "858Mi");
        assert_eq!(memory_quantity(8.0 * 1_073_741_824.0), "8Gi");
        assert_eq!(gpu_memory_gib("NVIDIA-A100-SXM4-80GB"), Some(80.0));
        assert_eq!(gpu_memory_gib("nvidia-l4"), Some(24.0));
        assert_eq!(gpu_memory_gib("NVIDIA-L40S"), Some(48.0));
        assert_eq!(gpu_memory_gib("tpu-v5"), None);
    }
}
