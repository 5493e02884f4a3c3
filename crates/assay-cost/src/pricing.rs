//! The cost of the desired state (sans-IO): each workload in the estate's manifests priced with
//! its price catalog, per month, and attributed to its cost-center label (`cost_center_label`
//! in assay.yaml, `cost-center` by default).
//!
//! - Deployments, StatefulSets, ReplicaSets: replicas × the pod's requests, all month (730 h).
//! - Jobs: parallelism × requests for the hours in `assay.dev/hours-per-month`, else
//!   `activeDeadlineSeconds`, else all month (a job with no bound may run that long).
//! - CronJobs: runs per month from the schedule × hours per run (`assay.dev/hours-per-run`,
//!   else the job's `activeDeadlineSeconds`, else one hour).
//! - PersistentVolumeClaims, and a StatefulSet's volumeClaimTemplates per replica: requested
//!   storage × the storage class's monthly price.
//!
//! A pod's request is what the Kubernetes scheduler reserves: the larger of the sum over its
//! containers and the largest init container; a container with limits but no requests
//! requests its limits. GPUs are `nvidia.com/gpu` (or `amd.com/gpu`) requests, priced by the
//! GPU type the pod selects (`nvidia.com/gpu.product`, `cloud.google.com/gke-accelerator`,
//! `karpenter.k8s.aws/instance-gpu-name` node selectors, or the `assay.dev/gpu-type`
//! annotation), else the region's `default` GPU price.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use assay_estate::Object;
use assay_estate::pricing::{PriceCatalog, RegionPrices};
use assay_estate::settings::Settings;

/// Hours in an average month (8,760 / 12).
pub const HOURS_PER_MONTH: f64 = 730.0;

/// What a workload is estimated to cost per month.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkloadCost {
    /// Manifest file.
    pub path: String,
    /// Line of its document.
    pub line: u32,
    /// `kind/namespace/name`.
    pub object: String,
    /// The cost center (its cost-center label, or its pod template's).
    pub cost_center: Option<String>,
    /// The cluster it runs on.
    pub cluster: Option<String>,
    /// The region it runs in.
    pub region: Option<String>,
    /// Its labels, for matching budget scopes.
    #[serde(skip)]
    pub labels: BTreeMap<String, String>,
    /// Monthly cost; `None` when it could not be priced.
    pub monthly: Option<f64>,
    /// Of which compute (vCPU and memory).
    pub compute: f64,
    /// Of which GPUs.
    pub gpu: f64,
    /// Of which storage.
    pub storage: f64,
    /// How the estimate was made, or why there is none.
    pub basis: String,
}

pub use assay_estate::manifest::parse_quantity;

/// A quantity as a manifest states it: a string (`500m`, `8Gi`) or a number.
pub(crate) fn quantity(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::String(s) => parse_quantity(s),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// What one pod reserves.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct PodRequest {
    cpu: f64,
    memory_gib: f64,
    gpus: f64,
}

fn container_request(container: &Value) -> PodRequest {
    let resources = container.get("resources");
    let get = |name: &str| {
        quantity(resources.and_then(|r| r.pointer(&format!("/requests/{}", name.replace('/', "~1")))))
            .or_else(|| quantity(resources.and_then(|r| r.pointer(&format!("/limits/{}", name.replace('/', "~1"))))))
            .unwrap_or(0.0)
    };
    PodRequest {
        cpu: get("cpu"),
        memory_gib: get("memory") / 1_073_741_824.0,
        gpus: get("nvidia.com/gpu") + get("amd.com/gpu"),
    }
}

fn pod_request(pod_spec: &Value) -> PodRequest {
    let list = |key: &str| pod_spec.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
    let mut sum = PodRequest::default();
    for c in list("containers") {
        let r = container_request(&c);
        sum.cpu += r.cpu;
        sum.memory_gib += r.memory_gib;
        sum.gpus += r.gpus;
    }
    for c in list("initContainers") {
        let r = container_request(&c);
        sum.cpu = sum.cpu.max(r.cpu);
        sum.memory_gib = sum.memory_gib.max(r.memory_gib);
        sum.gpus = sum.gpus.max(r.gpus);
    }
    sum
}

/// The GPU type a workload's pods select (its node selectors, else its `assay.dev/gpu-type`
/// annotation).
pub fn gpu_type_of(object: &Value, pod_spec: &Value) -> Option<String> {
    let selector = pod_spec.get("nodeSelector");
    ["nvidia.com/gpu.product", "cloud.google.com/gke-accelerator", "karpenter.k8s.aws/instance-gpu-name"]
        .iter()
        .find_map(|k| selector.and_then(|s| s.get(*k)).and_then(Value::as_str))
        .or_else(|| object.pointer("/metadata/annotations/assay.dev~1gpu-type").and_then(Value::as_str))
        .map(str::to_string)
}

fn labels(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect())
        .unwrap_or_default()
}

/// Runs per month of a cron schedule (five fields or a `@` macro), approximately: runs per day
/// × days per month on which it runs.
pub fn runs_per_month(schedule: &str) -> Option<f64> {
    let days_per_month = 365.25 / 12.0;
    let fields: Vec<&str> = match schedule.trim() {
        "@yearly" | "@annually" => return Some(1.0 / 12.0),
        "@monthly" => return Some(1.0),
        "@weekly" => return Some(days_per_month / 7.0),
        "@daily" | "@midnight" => return Some(days_per_month),
        "@hourly" => return Some(days_per_month * 24.0),
        s => s.split_whitespace().collect(),
    };
    // A leading CRON_TZ=/TZ= setting does not change the count.
    let fields: Vec<&str> =
        fields.into_iter().filter(|f| !f.starts_with("TZ=") && !f.starts_with("CRON_TZ=")).collect();
    if fields.len() != 5 {
        return None;
    }
    let count = |field: &str, lo: u32, hi: u32| -> Option<(f64, bool)> {
        let mut values = std::collections::BTreeSet::new();
        for part in field.split(',') {
            let (range, step) = match part.split_once('/') {
                Some((r, s)) => (r, s.parse::<u32>().ok().filter(|s| *s > 0)?),
                None => (part, 1),
            };
            let (a, b) = if range == "*" || range == "?" {
                (lo, hi)
            } else if let Some((a, b)) = range.split_once('-') {
                (a.parse().ok()?, b.parse().ok()?)
            } else {
                let a: u32 = range.parse().ok()?;
                (a, if part.contains('/') { hi } else { a })
            };
            if a < lo || b > hi || a > b {
                return None;
            }
            values.extend((a..=b).step_by(step as usize));
        }
        Some((values.len() as f64, field == "*" || field == "?"))
    };
    let (minutes, _) = count(fields[0], 0, 59)?;
    let (hours, _) = count(fields[1], 0, 23)?;
    let (dom, dom_any) = count(fields[2], 1, 31)?;
    let (months, _) = count(fields[3], 1, 12)?;
    let (dow, dow_any) = count(&fields[4].replace('7', "0"), 0, 6)?;
    // Cron runs on a day when the day of month or the day of week matches (when both are set).
    let days = match (dom_any, dow_any) {
        (true, true) => days_per_month,
        (false, true) => dom * days_per_month / 31.0 * (31.0 * 12.0 / 365.25),
        (true, false) => dow / 7.0 * days_per_month,
        (false, false) => (dom + dow / 7.0 * days_per_month).min(days_per_month),
    };
    Some(minutes * hours * days * months / 12.0)
}

/// Prices every workload of `manifests`.
pub fn price_workloads(manifests: &[Object], settings: &Settings, catalog: &PriceCatalog) -> Vec<WorkloadCost> {
    manifests.iter().filter_map(|o| price(o, settings, catalog)).collect()
}

fn price(object: &Object, settings: &Settings, catalog: &PriceCatalog) -> Option<WorkloadCost> {
    let v = &object.value;
    let kind = object.kind();
    let spec = v.get("spec");
    let number = |p: &str| v.pointer(p).and_then(Value::as_f64);
    let annotation = |k: &str| {
        v.pointer(&format!("/metadata/annotations/{}", k.replace('/', "~1")))
            .and_then(Value::as_str)
            .and_then(parse_quantity)
    };
    // (pod template, pods, hours per month, basis)
    let (template, pods, hours, basis): (Option<&Value>, f64, f64, String) = match kind {
        "Deployment" | "StatefulSet" | "ReplicaSet" => {
            let replicas = number("/spec/replicas").unwrap_or(1.0);
            (spec.and_then(|s| s.get("template")), replicas, HOURS_PER_MONTH, format!("{replicas} replicas all month"))
        }
        "Job" => {
            let parallelism = number("/spec/parallelism").unwrap_or(1.0);
            let (hours, why) = match (annotation("assay.dev/hours-per-month"), number("/spec/activeDeadlineSeconds")) {
                (Some(h), _) => (h, "assay.dev/hours-per-month"),
                (None, Some(s)) => ((s / 3600.0).min(HOURS_PER_MONTH), "activeDeadlineSeconds"),
                (None, None) => (HOURS_PER_MONTH, "no deadline: all month"),
            };
            (
                spec.and_then(|s| s.get("template")),
                parallelism,
                hours,
                format!("{parallelism} pods × {hours:.1} h ({why})"),
            )
        }
        "CronJob" => {
            let job = spec.and_then(|s| s.pointer("/jobTemplate/spec"));
            let schedule = spec.and_then(|s| s.get("schedule")).and_then(Value::as_str).unwrap_or("");
            let parallelism = job.and_then(|j| j.get("parallelism")).and_then(Value::as_f64).unwrap_or(1.0);
            let per_run = annotation("assay.dev/hours-per-run")
                .or_else(|| {
                    job.and_then(|j| j.get("activeDeadlineSeconds")).and_then(Value::as_f64).map(|s| s / 3600.0)
                })
                .unwrap_or(1.0);
            let Some(runs) = runs_per_month(schedule) else {
                return Some(unpriced(
                    object,
                    settings,
                    format!("CronJob schedule {schedule:?} is not a cron schedule"),
                ));
            };
            let hours = (runs * per_run).min(HOURS_PER_MONTH * parallelism.max(1.0));
            (
                job.and_then(|j| j.get("template")),
                parallelism,
                hours,
                format!("{runs:.1} runs × {per_run:.2} h × {parallelism} pods"),
            )
        }
        "PersistentVolumeClaim" => (None, 0.0, 0.0, String::new()),
        _ => return None,
    };
    let mut cost = unpriced(object, settings, String::new());
    let Some(region) = cost.region.clone() else {
        cost.basis = match &cost.cluster {
            Some(c) => format!("cluster {c} has no region in assay.yaml"),
            None => "no cluster in assay.yaml matches this file, so its region is unknown".into(),
        };
        return Some(cost);
    };
    let Some(prices) = catalog.regions.get(&region) else {
        cost.basis = format!("no prices for region {region} in pricing/");
        return Some(cost);
    };
    if kind == "PersistentVolumeClaim" {
        let gb = quantity(v.pointer("/spec/resources/requests/storage")).unwrap_or(0.0) / 1e9;
        let class = v.pointer("/spec/storageClassName").and_then(Value::as_str);
        let Some(price) = RegionPrices::keyed(&prices.storage_gb_month, class) else {
            cost.basis = format!("no storageGBMonth price for {} in {region}", class.unwrap_or("default"));
            return Some(cost);
        };
        cost.storage = gb * price;
        cost.monthly = Some(cost.storage);
        cost.basis = format!("{gb:.1} GB of {} storage", class.unwrap_or("default"));
        return Some(cost);
    }
    let pod_spec = template.and_then(|t| t.get("spec")).cloned().unwrap_or(Value::Null);
    if cost.cost_center.is_none() {
        cost.cost_center = template
            .and_then(|t| t.pointer("/metadata/labels").and_then(|l| l.get(&settings.cost_center_label)))
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    let request = pod_request(&pod_spec);
    let pod_hours = pods * hours;
    cost.compute = pod_hours * (request.cpu * prices.vcpu_hour + request.memory_gib * prices.memory_gib_hour);
    let mut basis = format!("{basis}; per pod {:.2} vCPU, {:.2} GiB", request.cpu, request.memory_gib);
    if request.gpus > 0.0 {
        let kind = gpu_type_of(v, &pod_spec);
        let Some(price) = RegionPrices::keyed(&prices.gpu_hour, kind.as_deref()) else {
            cost.basis = format!("no gpuHour price for {} in {region}", kind.as_deref().unwrap_or("default"));
            return Some(cost);
        };
        cost.gpu = pod_hours * request.gpus * price;
        basis.push_str(&format!(", {} GPU ({})", request.gpus, kind.as_deref().unwrap_or("default")));
    }
    // A StatefulSet's volume claim templates: one claim per replica.
    if kind == "StatefulSet" {
        for claim in v.pointer("/spec/volumeClaimTemplates").and_then(Value::as_array).into_iter().flatten() {
            let gb = quantity(claim.pointer("/spec/resources/requests/storage")).unwrap_or(0.0) / 1e9;
            let class = claim.pointer("/spec/storageClassName").and_then(Value::as_str);
            if let Some(price) = RegionPrices::keyed(&prices.storage_gb_month, class) {
                cost.storage += pods * gb * price;
                basis.push_str(&format!(", {gb:.1} GB storage per replica"));
            }
        }
    }
    cost.monthly = Some(cost.compute + cost.gpu + cost.storage);
    cost.basis = basis;
    Some(cost)
}

/// A workload's identity and placement, not yet priced.
fn unpriced(object: &Object, settings: &Settings, basis: String) -> WorkloadCost {
    let cluster = settings.cluster_of(&object.path);
    let labels = labels(object.value.pointer("/metadata/labels"));
    WorkloadCost {
        path: object.path.clone(),
        line: object.line,
        object: object.identity(),
        cost_center: labels.get(&settings.cost_center_label).cloned(),
        cluster: cluster.map(|c| c.name.clone()),
        region: cluster.and_then(|c| c.region.clone()),
        labels,
        monthly: None,
        compute: 0.0,
        gpu: 0.0,
        storage: 0.0,
        basis,
    }
}

/// Monthly cost per cost center (`None` for workloads without one), of priced workloads.
pub fn by_cost_center(workloads: &[WorkloadCost]) -> BTreeMap<Option<String>, f64> {
    let mut out = BTreeMap::new();
    for w in workloads {
        if let Some(m) = w.monthly {
            *out.entry(w.cost_center.clone()).or_insert(0.0) += m;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use assay_estate::manifest::parse_objects;

    #[test]
    fn quantities_in_every_unit() {
        assert_eq!(parse_quantity("500m"), Some(0.5));
        assert_eq!(parse_quantity("2"), Some(2.0));
        assert_eq!(parse_quantity("1.5Gi"), Some(1.5 * 1_073_741_824.0));
        assert_eq!(parse_quantity("100G"), Some(1e11));
        assert_eq!(parse_quantity("1e3"), Some(1000.0));
        assert_eq!(parse_quantity("-1"), None);
        assert_eq!(parse_quantity("lots"), None);
    }

    #[test]
    fn cron_schedules_count_runs() {
        let near = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 0.01 * b.max(1.0));
        assert!(near(runs_per_month("0 * * * *"), 730.5));
        assert!(near(runs_per_month("*/15 * * * *"), 2922.0));
        assert!(near(runs_per_month("0 2 * * 1-5"), 21.74));
        assert!(near(runs_per_month("@daily"), 30.44));
        assert!(near(runs_per_month("30 3 1 * *"), 1.0));
        assert_eq!(runs_per_month("every day"), None);
        assert_eq!(runs_per_month("61 * * * *"), None);
    }

    const CATALOG: &str = "apiVersion: assay.dev/v1alpha1\nkind: PriceCatalog\nmetadata: {name: p}\nspec:\n  regions:\n    eu-west-1: {vcpuHour: 0.04, memoryGiBHour: 0.005, gpuHour: {nvidia-a100: 4.0, default: 2.0}, storageGBMonth: {default: 0.1, fast: 0.2}}\n";

    fn priced(manifest: &str) -> Vec<WorkloadCost> {
        let (settings, d) = Settings::parse(
            "assay.yaml",
            "clusters:\n  - {name: eu, region: eu-west-1, paths: [\"manifests/eu/**\"]}\n  - {name: lab, paths: [\"manifests/lab/**\"]}\n",
        );
        assert!(d.is_empty(), "{d:?}");
        let (prices, _) = parse_objects("pricing/p.yaml", CATALOG);
        let (catalog, d) = PriceCatalog::from_objects(&prices, "USD");
        assert!(d.is_empty(), "{d:?}");
        let (objects, d) = parse_objects("manifests/eu/app.yaml", manifest);
        assert!(d.is_empty(), "{d:?}");
        price_workloads(&objects, &settings, &catalog)
    }

    #[test]
    fn deployment_with_gpus_and_an_init_container() {
        let w = priced(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: train, namespace: ml, labels: {cost-center: CC-1}}\nspec:\n  replicas: 3\n  template:\n    spec:\n      nodeSelector: {nvidia.com/gpu.product: nvidia-a100}\n      initContainers: [{name: i, resources: {requests: {cpu: '4', memory: 1Gi}}}]\n      containers:\n        - {name: a, resources: {requests: {cpu: 1500m, memory: 4Gi, nvidia.com/gpu: 2}}}\n        - {name: b, resources: {limits: {cpu: '1', memory: 2Gi}}}\n",
        );
        let w = &w[0];
        assert_eq!(w.cost_center.as_deref(), Some("CC-1"));
        assert_eq!(w.region.as_deref(), Some("eu-west-1"));
        // Per pod: max(2.5, 4) vCPU, 6 GiB, 2 A100s; 3 pods all month.
        let compute = 3.0 * 730.0 * (4.0 * 0.04 + 6.0 * 0.005);
        let gpu = 3.0 * 730.0 * 2.0 * 4.0;
        assert!((w.compute - compute).abs() < 1e-6, "{w:?}");
        assert!((w.gpu - gpu).abs() < 1e-6, "{w:?}");
        assert!((w.monthly.unwrap_or(0.0) - compute - gpu).abs() < 1e-6);
    }

    #[test]
    fn claims_jobs_and_cronjobs() {
        let w = priced(
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data, labels: {cost-center: CC-2}}\nspec: {storageClassName: fast, resources: {requests: {storage: 500G}}}\n---\napiVersion: batch/v1\nkind: Job\nmetadata: {name: once, annotations: {assay.dev/hours-per-month: '10'}}\nspec: {template: {spec: {containers: [{name: c, resources: {requests: {cpu: '2'}}}]}}}\n---\napiVersion: batch/v1\nkind: CronJob\nmetadata: {name: nightly}\nspec:\n  schedule: '0 2 * * *'\n  jobTemplate: {spec: {activeDeadlineSeconds: 7200, template: {spec: {containers: [{name: c, resources: {requests: {cpu: '1'}}}]}}}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: ignored}\n",
        );
        assert_eq!(w.len(), 3);
        assert!((w[0].monthly.unwrap_or(0.0) - 500.0 * 0.2).abs() < 1e-9, "{:?}", w[0]);
        assert!((w[1].monthly.unwrap_or(0.0) - 10.0 * 2.0 * 0.04).abs() < 1e-9, "{:?}", w[1]);
        assert!((w[2].monthly.unwrap_or(0.0) - 30.4375 * 2.0 * 0.04).abs() < 1e-6, "{:?}", w[2]);
        let totals = by_cost_center(&w);
        assert!((totals[&Some("CC-2".to_string())] - 100.0).abs() < 1e-9);
    }

    #[test]
    fn unpriceable_workloads_say_why() {
        let (settings, _) = Settings::parse("assay.yaml", "clusters:\n  - {name: lab, paths: [\"manifests/**\"]}\n");
        let (objects, _) =
            parse_objects("manifests/x.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {}\n");
        let w = price_workloads(&objects, &settings, &PriceCatalog::default());
        assert_eq!(w[0].monthly, None);
        assert_eq!(w[0].basis, "cluster lab has no region in assay.yaml");
    }
}
