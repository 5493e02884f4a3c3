//! Google Cloud resources.

use serde_json::Value;

use super::{HOURS_PER_MONTH, Parts, blocks, number};

pub(super) fn compute_instance(parts: &mut Parts<'_>) {
    let after = parts.after;
    let machine_type = parts.text("machine_type").unwrap_or("").to_string();
    let preemptible = blocks(after, "scheduling").first().is_some_and(|s| {
        s.get("preemptible") == Some(&Value::Bool(true))
            || s.get("provisioning_model").and_then(Value::as_str) == Some("SPOT")
    });
    let hours = parts.usage.get("monthly_hrs").and_then(number).unwrap_or(HOURS_PER_MONTH);
    machine(parts, "", &machine_type, preemptible, hours);
    for disk in blocks(after, "boot_disk") {
        let params = blocks(disk, "initialize_params");
        let params = params.first().copied().unwrap_or(&Value::Null);
        let size = params.get("size").and_then(number).unwrap_or(10.0);
        let kind = params.get("type").and_then(Value::as_str).unwrap_or("pd-standard");
        disk_storage(parts, "", kind, size);
    }
    // Each local SSD is 375 GB.
    local_ssd(parts, "", blocks(after, "scratch_disk").len() as f64, preemptible);
    gpus(parts, "", after, preemptible, hours);
}

/// Hours of a machine type, predefined or custom, on demand or preemptible (spot).
fn machine(parts: &mut Parts<'_>, group: &str, machine: &str, preemptible: bool, hours: f64) {
    let model = if preemptible { "preemptible" } else { "on-demand" };
    let tier = if preemptible { "preemptible." } else { "" };
    match custom_machine(machine) {
        Some((family, vcpus, ram_gb, extended_gb)) => {
            let upper = family.to_uppercase();
            parts.fixed(
                group,
                &format!("Custom instance CPU (Linux/UNIX, {model}, {upper} {vcpus} vCPUs)"),
                "hours",
                hours,
                format!("gcp.custom.{tier}{family}.vcpu"),
            );
            parts.scaled(f64::from(vcpus));
            parts.fixed(
                group,
                &format!("Custom Instance RAM (Linux/UNIX, {model}, {upper} {} GB)", format_gb(ram_gb)),
                "hours",
                hours,
                format!("gcp.custom.{tier}{family}.ram"),
            );
            parts.scaled(ram_gb);
            if extended_gb > 0.0 {
                parts.fixed(
                    group,
                    &format!(
                        "Custom Instance Extended RAM (Linux/UNIX, {model}, {upper} {} GB)",
                        format_gb(extended_gb)
                    ),
                    "hours",
                    hours,
                    format!("gcp.custom.{tier}{family}.extended_ram"),
                );
                parts.scaled(extended_gb);
            }
        }
        None => {
            let key = format!("gcp.compute.{tier}{machine}");
            parts.fixed(group, &format!("Instance usage (Linux/UNIX, {model}, {machine})"), "hours", hours, key);
        }
    }
}

fn disk_storage(parts: &mut Parts<'_>, group: &str, kind: &str, gb: f64) {
    let name = match kind {
        "pd-standard" => "Standard provisioned storage (pd-standard)".to_string(),
        "pd-ssd" => "SSD provisioned storage (pd-ssd)".to_string(),
        "pd-balanced" => "Balanced provisioned storage (pd-balanced)".to_string(),
        other => format!("Provisioned storage ({other})"),
    };
    parts.fixed(group, &name, "GB", gb, format!("gcp.disk.{kind}"));
}

/// Local SSDs, 375 GB each.
fn local_ssd(parts: &mut Parts<'_>, group: &str, count: f64, preemptible: bool) {
    if count > 0.0 {
        let tier = if preemptible { "preemptible." } else { "" };
        parts.fixed(group, "Local SSD provisioned storage", "GB", 375.0 * count, format!("gcp.disk.{tier}local-ssd"));
    }
}

/// The accelerators (`guest_accelerator` blocks) of a machine, for `hours` machine-hours.
fn gpus(parts: &mut Parts<'_>, group: &str, config: &Value, preemptible: bool, hours: f64) {
    let model = if preemptible { "preemptible" } else { "on-demand" };
    for gpu in blocks(config, "guest_accelerator") {
        let kind = gpu.get("type").and_then(Value::as_str).unwrap_or("").to_string();
        let count = gpu.get("count").and_then(number).unwrap_or(1.0);
        let key = if preemptible { format!("gcp.gpu.preemptible.{kind}") } else { format!("gcp.gpu.{kind}") };
        parts.fixed(group, &format!("{} ({model})", gpu_name(&kind)), "hours", hours * count, key);
    }
}

/// The nodes of a GKE node pool (or a cluster's default pool), `per_zone` in each of `zones`:
/// each a machine of its `node_config` with its boot disk (100 GB pd-standard by default),
/// local SSDs and accelerators.
fn nodes(parts: &mut Parts<'_>, group: &str, config: &Value, count: f64) {
    let machine_type = config.get("machine_type").and_then(Value::as_str).unwrap_or("e2-medium").to_string();
    let flag = |k: &str| config.get(k) == Some(&Value::Bool(true));
    let preemptible = flag("preemptible") || flag("spot");
    let hours = HOURS_PER_MONTH * count;
    machine(parts, group, &machine_type, preemptible, hours);
    let gb = config.get("disk_size_gb").and_then(number).unwrap_or(100.0);
    let kind = config.get("disk_type").and_then(Value::as_str).unwrap_or("pd-standard").to_string();
    disk_storage(parts, group, &kind, gb * count);
    let ssds = config.get("local_ssd_count").and_then(number).unwrap_or(0.0);
    local_ssd(parts, group, ssds * count, preemptible);
    gpus(parts, group, config, preemptible, hours);
}

/// The zones a pool's nodes are in: its `node_locations`, else its cluster's, else one zone for
/// a zonal cluster (`us-central1-a`) and three for a regional one (`us-central1`).
fn zones(pool: &Value, cluster: Option<&Value>) -> f64 {
    let listed = |v: &Value| v.get("node_locations").and_then(Value::as_array).filter(|l| !l.is_empty()).map(Vec::len);
    if let Some(n) = listed(pool).or_else(|| cluster.and_then(listed)) {
        return n as f64;
    }
    let location = cluster.or(Some(pool)).and_then(|c| c.get("location")).and_then(Value::as_str);
    match location {
        Some(l) if l.rsplit_once('-').is_some_and(|(_, z)| z.len() == 1) => 1.0,
        Some(_) => 3.0,
        None => 1.0,
    }
}

/// A GKE cluster: its management fee, and its default node pool unless it is removed
/// (`initial_node_count` nodes, 3 by default, in each zone).
pub(super) fn container_cluster(parts: &mut Parts<'_>) {
    let after = parts.after;
    let autopilot = after.get("enable_autopilot") == Some(&Value::Bool(true));
    parts.fixed("", "Cluster management fee", "hours", HOURS_PER_MONTH, "gcp.gke.management".into());
    if autopilot || after.get("remove_default_node_pool") == Some(&Value::Bool(true)) {
        return;
    }
    let per_zone =
        parts.usage.get("nodes").and_then(number).or_else(|| parts.number("initial_node_count")).unwrap_or(3.0);
    let count = per_zone * zones(after, None);
    let config = blocks(after, "node_config").first().copied().cloned().unwrap_or(Value::Null);
    nodes(parts, "default_pool", &config, count);
}

/// A GKE node pool: `node_count` nodes per zone (else `initial_node_count`, the autoscaling
/// minimum, or 3), or the usage file's `nodes`.
pub(super) fn container_node_pool(parts: &mut Parts<'_>) {
    let after = parts.after;
    let cluster = parts.plan.referenced(parts.change, &["cluster"]).and_then(|c| c.after.as_ref());
    let autoscaling = blocks(after, "autoscaling").first().and_then(|a| a.get("min_node_count")).and_then(number);
    let per_zone = parts
        .usage
        .get("nodes")
        .and_then(number)
        .or_else(|| parts.number("node_count"))
        .or_else(|| parts.number("initial_node_count"))
        .or(autoscaling)
        .unwrap_or(3.0);
    let count = per_zone * zones(after, cluster);
    let config = blocks(after, "node_config").first().copied().cloned().unwrap_or(Value::Null);
    nodes(parts, "", &config, count);
}

/// A custom machine type (`custom-6-20480`, `n2-custom-6-20480`, `custom-2-15360-ext`): its
/// family, vCPUs, memory in GB, and memory beyond the family's per-vCPU maximum (extended).
fn custom_machine(machine: &str) -> Option<(String, u32, f64, f64)> {
    let (family, rest) = match machine.split_once("custom-") {
        Some(("", rest)) => ("n1".to_string(), rest),
        Some((prefix, rest)) => (prefix.trim_end_matches('-').to_string(), rest),
        None => return None,
    };
    let mut fields = rest.split('-');
    let vcpus: u32 = fields.next()?.parse().ok()?;
    let mb: f64 = fields.next()?.parse().ok()?;
    let extended = fields.next() == Some("ext");
    let total = mb / 1024.0;
    // Memory per vCPU beyond which memory is "extended": 6.5 GB on N1, 8 GB on N2 and N2D.
    let per_vcpu = if family == "n1" { 6.5 } else { 8.0 };
    let (ram, ext) = if extended {
        let base = (per_vcpu * f64::from(vcpus)).min(total);
        (base, total - base)
    } else {
        (total, 0.0)
    };
    Some((family, vcpus, ram, ext))
}

fn format_gb(gb: f64) -> String {
    if gb.fract() == 0.0 { format!("{gb:.0}") } else { format!("{gb}") }
}

/// Google's accelerator types by their product names.
fn gpu_name(kind: &str) -> String {
    match kind {
        "nvidia-tesla-k80" => "NVIDIA Tesla K80".into(),
        "nvidia-tesla-p100" => "NVIDIA Tesla P100".into(),
        "nvidia-tesla-p4" => "NVIDIA Tesla P4".into(),
        "nvidia-tesla-v100" => "NVIDIA Tesla V100".into(),
        "nvidia-tesla-t4" => "NVIDIA Tesla T4".into(),
        "nvidia-tesla-a100" => "NVIDIA Tesla A100".into(),
        "nvidia-a100-80gb" => "NVIDIA A100 80GB".into(),
        "nvidia-l4" => "NVIDIA L4".into(),
        "nvidia-h100-80gb" => "NVIDIA H100 80GB".into(),
        other => other.to_string(),
    }
}

/// A persistent disk: `size` GB of its `type` (`pd-standard` by default); a disk made from an
/// image without a size takes the image's, which is not known without a plan.
pub(super) fn compute_disk(parts: &mut Parts<'_>) {
    let kind = parts.text("type").unwrap_or("pd-standard").to_string();
    let size = parts.number("size");
    match size {
        Some(gb) => disk_storage(parts, "", &kind, gb),
        None => parts.push(
            "",
            format!("Provisioned storage ({kind}, size of its image)"),
            "GB",
            None,
            format!("gcp.disk.{kind}"),
            false,
        ),
    }
}

/// A Cloud Storage bucket: what it stores and serves is usage, in its storage class
/// (`STANDARD` by default): storage, class A and B operations, retrieval of cold classes.
pub(super) fn storage_bucket(parts: &mut Parts<'_>) {
    let class = parts.text("storage_class").unwrap_or("STANDARD").to_lowercase();
    parts.usage("", &format!("Storage ({class})"), "GB", "storage_gb", 1.0, format!("gcp.storage.{class}.storage_gb"));
    parts.usage(
        "",
        "Object adds, bucket/object list (class A)",
        "10k operations",
        "monthly_class_a_operations",
        10_000.0,
        format!("gcp.storage.{class}.class_a"),
    );
    parts.usage(
        "",
        "Object gets, retrieve bucket/object metadata (class B)",
        "10k operations",
        "monthly_class_b_operations",
        10_000.0,
        format!("gcp.storage.{class}.class_b"),
    );
    if class != "standard" && class != "regional" && class != "multi_regional" {
        parts.usage(
            "",
            "Data retrieval",
            "GB",
            "monthly_data_retrieval_gb",
            1.0,
            format!("gcp.storage.{class}.retrieval_gb"),
        );
    }
}

/// A Cloud SQL instance: its tier's hours (twice for `availability_type = "REGIONAL"`, high
/// availability) by engine, and its disk (`PD_SSD` 10 GB by default).
pub(super) fn sql_instance(parts: &mut Parts<'_>) {
    let engine = parts.text("database_version").unwrap_or("MYSQL").split('_').next().unwrap_or("MYSQL").to_lowercase();
    let settings = blocks(parts.after, "settings").first().copied().cloned().unwrap_or(Value::Null);
    let tier = settings.get("tier").and_then(Value::as_str).unwrap_or("").to_string();
    let regional = settings.get("availability_type").and_then(Value::as_str) == Some("REGIONAL");
    let ha = if regional { "regional" } else { "zonal" };
    let hours = parts.usage.get("monthly_hrs").and_then(number).unwrap_or(HOURS_PER_MONTH);
    parts.fixed(
        "",
        &format!("SQL instance ({engine}, {ha}, {tier})"),
        "hours",
        hours,
        format!("gcp.sql.{engine}.{ha}.{tier}"),
    );
    let gb = settings.get("disk_size").and_then(number).unwrap_or(10.0);
    let disk = match settings.get("disk_type").and_then(Value::as_str).unwrap_or("PD_SSD") {
        "PD_HDD" => "hdd",
        _ => "ssd",
    };
    parts.fixed("", &format!("Storage ({disk}, {ha})"), "GB", gb, format!("gcp.sql.storage.{disk}.{ha}"));
}

/// A Cloud Function: invocations and compute time (GB-seconds of its `available_memory_mb`,
/// 256 MB by default) from usage.
pub(super) fn cloud_function(parts: &mut Parts<'_>) {
    let memory_gb = parts.number("available_memory_mb").unwrap_or(256.0) / 1024.0;
    let calls = parts.usage.get("monthly_function_invocations").and_then(number);
    let ms = parts.usage.get("request_duration_ms").and_then(number);
    parts.push(
        "",
        "Invocations".into(),
        "1M invocations",
        calls.map(|c| c / 1e6),
        "gcp.functions.invocations".into(),
        true,
    );
    let gb_seconds = calls.zip(ms).map(|(c, ms)| c * ms / 1000.0 * memory_gb);
    parts.push("", "Memory".into(), "GB-seconds", gb_seconds, "gcp.functions.gb_seconds".into(), true);
}

/// Cloud NAT: one gateway's VM-hours (the usage file's `assigned_vms`, at least one) and the data
/// it processes.
pub(super) fn router_nat(parts: &mut Parts<'_>) {
    let vms = parts.usage.get("assigned_vms").and_then(number);
    parts.push(
        "",
        "NAT gateway (VM-hours)".into(),
        "hours",
        vms.map(|v| v.max(1.0) * HOURS_PER_MONTH),
        "gcp.nat.vm_hour".into(),
        true,
    );
    parts.usage("", "Data processed", "GB", "monthly_data_processed_gb", 1.0, "gcp.nat.data".into());
}

/// A forwarding rule (a load balancer's front end): its hours and the data it processes.
pub(super) fn forwarding_rule(parts: &mut Parts<'_>) {
    parts.fixed("", "Forwarding rule", "hours", HOURS_PER_MONTH, "gcp.lb.forwarding_rule".into());
    parts.usage("", "Ingress data processed", "GB", "monthly_ingress_data_gb", 1.0, "gcp.lb.data".into());
}
