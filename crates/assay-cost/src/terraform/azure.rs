//! Azure resources.

use serde_json::Value;

use super::{HOURS_PER_MONTH, Parts, blocks, number};

/// A Linux or Windows virtual machine: its size's hours, the ultra disk reservation, its OS
/// disk.
pub(super) fn vm(parts: &mut Parts<'_>, windows: bool) {
    let after = parts.after;
    let size = parts.text("size").unwrap_or("").to_string();
    let hours = parts.usage.get("monthly_hrs").and_then(number).unwrap_or(HOURS_PER_MONTH);
    let (os, key) = if windows { ("Windows", "windows") } else { ("Linux", "linux") };
    parts.fixed(
        "",
        &format!("Instance usage ({os}, pay as you go, {size})"),
        "hours",
        hours,
        format!("azure.vm.{key}.{}", size.to_lowercase()),
    );
    let ultra = blocks(after, "additional_capabilities")
        .first()
        .is_some_and(|c| c.get("ultra_ssd_enabled") == Some(&Value::Bool(true)));
    if ultra {
        // Reserved for ultra disks while none is attached, per vCPU of the machine.
        let vcpus = parts.usage.get("vcpu_count").and_then(number);
        parts.push(
            "",
            "Ultra disk reservation (if unattached)".into(),
            "vCPU",
            vcpus,
            "azure.disk.ultra_reservation".into(),
            true,
        );
    }
    for disk in blocks(after, "os_disk") {
        let account = disk.get("storage_account_type").and_then(Value::as_str).unwrap_or("Standard_LRS");
        let gb = disk.get("disk_size_gb").and_then(number);
        let (tier, redundancy) = azure_disk_tier(account, gb);
        parts.fixed(
            "os_disk",
            &format!("Storage ({tier}, {redundancy})"),
            "months",
            1.0,
            format!("azure.disk.{tier}.{redundancy}"),
        );
        // Standard disks (HDD and SSD) also bill their operations, per 10,000.
        if !tier.starts_with('P') {
            let ops = parts.used("os_disk", "monthly_disk_operations").map(|n| n / 10_000.0);
            let kind = if tier.starts_with('E') { "standard_ssd" } else { "standard_hdd" };
            parts.push(
                "os_disk",
                "Disk operations".into(),
                "10k operations",
                ops,
                format!("azure.disk.operations.{kind}"),
                true,
            );
        }
    }
}

/// The managed-disk tier a size falls in (S for standard HDD, E for standard SSD, P for
/// premium SSD), by Azure's published tier sizes; a disk of unknown size is the smallest tier
/// that holds an image (30 GiB).
fn azure_disk_tier(account: &str, gb: Option<f64>) -> (String, String) {
    const SIZES: [(u32, f64); 15] = [
        (1, 4.0),
        (2, 8.0),
        (3, 16.0),
        (4, 32.0),
        (6, 64.0),
        (10, 128.0),
        (15, 256.0),
        (20, 512.0),
        (30, 1024.0),
        (40, 2048.0),
        (50, 4096.0),
        (60, 8192.0),
        (70, 16384.0),
        (80, 32767.0),
        (90, 65536.0),
    ];
    let (kind, redundancy) = account.split_once('_').unwrap_or((account, "LRS"));
    let prefix = match kind {
        "Premium" => "P",
        "StandardSSD" => "E",
        _ => "S",
    };
    let gb = gb.unwrap_or(30.0);
    let number = SIZES.iter().find(|(_, size)| gb <= *size).map_or(90, |(n, _)| *n);
    // Standard HDD starts at S4.
    let number = if prefix == "S" { number.max(4) } else { number };
    (format!("{prefix}{number}"), redundancy.to_string())
}

/// Whether a VM size takes premium SSDs: the old `DS`/`GS`/`FS` series, or an `s` among the
/// features after the size number (`D2s_v3`, `E4as_v5`, `NC6s_v3`).
fn premium_capable(size: &str) -> bool {
    let name = size.strip_prefix("Standard_").unwrap_or(size);
    if size.starts_with("Basic_") {
        return false;
    }
    let head = name.split('_').next().unwrap_or("");
    let series: String = head.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
    let features: String =
        head.chars().skip_while(|c| !c.is_ascii_digit()).filter(|c| c.is_ascii_alphabetic()).collect();
    series.chars().skip(1).any(|c| c == 'S') || features.contains('s')
}

/// The nodes of an AKS pool: `nodes` VMs for `hours` each, and each one's managed OS disk
/// (none when the OS disk is ephemeral): premium when the size takes it, 128 GB by default.
fn pool(parts: &mut Parts<'_>, group: &str, config: &Value) {
    let size = config.get("vm_size").and_then(Value::as_str).unwrap_or("").to_string();
    let windows = config.get("os_type").and_then(Value::as_str) == Some("Windows")
        || config.get("os_sku").and_then(Value::as_str).is_some_and(|s| s.starts_with("Windows"));
    let count = config.get("node_count").and_then(number).or_else(|| config.get("min_count").and_then(number));
    let nodes = parts.used(group, "nodes").or(count).unwrap_or(1.0);
    let hours = parts.used(group, "monthly_hrs").unwrap_or(HOURS_PER_MONTH);
    let (os, key) = if windows { ("Windows", "windows") } else { ("Linux", "linux") };
    parts.fixed(
        group,
        &format!("Instance usage ({os}, pay as you go, {size})"),
        "hours",
        hours * nodes,
        format!("azure.vm.{key}.{}", size.to_lowercase()),
    );
    if config.get("os_disk_type").and_then(Value::as_str) == Some("Ephemeral") {
        return;
    }
    let gb = config.get("os_disk_size_gb").and_then(number).unwrap_or(128.0);
    let account = if premium_capable(&size) { "Premium_LRS" } else { "Standard_LRS" };
    let (tier, redundancy) = azure_disk_tier(account, Some(gb));
    let disk_group = if group.is_empty() { "os_disk".to_string() } else { format!("{group}/os_disk") };
    parts.fixed(
        &disk_group,
        &format!("Storage ({tier}, {redundancy})"),
        "months",
        nodes,
        format!("azure.disk.{tier}.{redundancy}"),
    );
}

/// An AKS cluster: the Uptime SLA of the Standard tier, and its default node pool.
pub(super) fn kubernetes_cluster(parts: &mut Parts<'_>) {
    if matches!(parts.text("sku_tier"), Some("Standard" | "Paid")) {
        parts.fixed("", "Uptime SLA", "hours", HOURS_PER_MONTH, "azure.aks.uptime_sla".into());
    }
    if let Some(config) = blocks(parts.after, "default_node_pool").first().copied() {
        pool(parts, "default_node_pool", config);
    }
}

/// An AKS node pool: `node_count` nodes (else `min_count`, else 1; the usage file's `nodes` and
/// `monthly_hrs` first).
pub(super) fn kubernetes_node_pool(parts: &mut Parts<'_>) {
    let after = parts.after;
    pool(parts, "", after);
}

/// A managed disk, by its tier (from `storage_account_type` and `disk_size_gb`).
pub(super) fn managed_disk(parts: &mut Parts<'_>) {
    let account = parts.text("storage_account_type").unwrap_or("Standard_LRS").to_string();
    let gb = parts.number("disk_size_gb");
    let (tier, redundancy) = azure_disk_tier(&account, gb);
    parts.fixed(
        "",
        &format!("Storage ({tier}, {redundancy})"),
        "months",
        1.0,
        format!("azure.disk.{tier}.{redundancy}"),
    );
}

/// A storage account: stored data and operations are usage, by its tier, replication and access
/// tier (`Standard`, `LRS`, `Hot` by default).
pub(super) fn storage_account(parts: &mut Parts<'_>) {
    let tier = parts.text("account_tier").unwrap_or("Standard").to_lowercase();
    let replication = parts.text("account_replication_type").unwrap_or("LRS").to_lowercase();
    let access = parts.text("access_tier").unwrap_or("Hot").to_lowercase();
    let key = format!("azure.storage.{tier}.{replication}.{access}");
    parts.usage(
        "",
        &format!("Capacity ({access}, {})", replication.to_uppercase()),
        "GB",
        "storage_gb",
        1.0,
        format!("{key}.storage_gb"),
    );
    parts.usage("", "Write operations", "10k operations", "monthly_write_operations", 10_000.0, format!("{key}.write"));
    parts.usage("", "Read operations", "10k operations", "monthly_read_operations", 10_000.0, format!("{key}.read"));
}

/// A PostgreSQL or MySQL flexible server: its SKU's hours (twice with high availability) and its
/// storage (`storage_mb`, 32 GB by default).
pub(super) fn flexible_server(parts: &mut Parts<'_>, engine: &str) {
    let sku = parts.text("sku_name").unwrap_or("").to_string();
    let ha = !blocks(parts.after, "high_availability").is_empty();
    let hours = if ha { 2.0 * HOURS_PER_MONTH } else { HOURS_PER_MONTH };
    parts.fixed(
        "",
        &format!("Compute ({sku}{})", if ha { ", high availability" } else { "" }),
        "hours",
        hours,
        format!("azure.{engine}.{}", sku.to_lowercase()),
    );
    let gb = parts.number("storage_mb").map_or(32.0, |mb| mb / 1024.0);
    parts.fixed("", "Storage", "GB", gb, format!("azure.{engine}.storage"));
}

/// A function app on the consumption plan: executions and execution time (GB-seconds) from
/// usage.
pub(super) fn function_app(parts: &mut Parts<'_>) {
    let runs = parts.usage.get("monthly_executions").and_then(number);
    let ms = parts.usage.get("execution_duration_ms").and_then(number);
    let gb = parts.usage.get("memory_mb").and_then(number).unwrap_or(128.0) / 1024.0;
    parts.push(
        "",
        "Executions".into(),
        "1M executions",
        runs.map(|r| r / 1e6),
        "azure.functions.executions".into(),
        true,
    );
    parts.push(
        "",
        "Execution time".into(),
        "GB-seconds",
        runs.zip(ms).map(|(r, ms)| r * ms / 1000.0 * gb),
        "azure.functions.gb_seconds".into(),
        true,
    );
}

/// A NAT gateway: its hours and the data it processes.
pub(super) fn nat_gateway(parts: &mut Parts<'_>) {
    parts.fixed("", "NAT gateway", "hours", HOURS_PER_MONTH, "azure.nat_gateway".into());
    parts.usage("", "Data processed", "GB", "monthly_data_processed_gb", 1.0, "azure.nat_gateway.data".into());
}

/// A load balancer: the Standard SKU bills its hours (up to five rules) and the data it
/// processes; the Basic SKU is free.
pub(super) fn load_balancer(parts: &mut Parts<'_>) {
    if parts.text("sku").unwrap_or("Basic") != "Standard" {
        return;
    }
    parts.fixed("", "Load balancer (first 5 rules)", "hours", HOURS_PER_MONTH, "azure.lb.standard".into());
    parts.usage("", "Data processed", "GB", "monthly_data_processed_gb", 1.0, "azure.lb.data".into());
}
