//! The monthly cost of Terraform resources, as Infracost estimates it, offline: each resource
//! is broken into cost components (instance hours, storage GB, provisioned IOPS...), each with
//! a monthly quantity worked out from the resource's attributes (or from Infracost's usage file,
//! `resource_usage`) and a unit price from the estate's catalog (`pricing/`, `products` of the
//! resource's region). A component whose quantity depends on usage that no usage file gives is
//! reported as such; a resource type assay does not price, or a price the catalog lacks, is
//! listed as unpriced: never a silent zero.

use std::collections::BTreeMap;

use assay_estate::terraform::{Action, Plan, ResourceChange};
use assay_estate::{Diagnostic, Estate, PriceCatalog};

use crate::pricing::WorkloadCost;
use serde::Serialize;
use serde_json::Value;

/// Hours in Infracost's month.
pub const HOURS_PER_MONTH: f64 = 730.0;

/// Resource types assay prices.
pub const PRICED_TYPES: [&str; 8] = [
    "aws_instance",
    "aws_ebs_volume",
    "aws_nat_gateway",
    "aws_eks_node_group",
    "aws_lb",
    "aws_alb",
    "google_compute_instance",
    "azurerm_linux_virtual_machine",
];

/// One priced part of a resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Component {
    /// The block it belongs to (`root_block_device`, `ebs_block_device[1]`), empty for the
    /// resource itself.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// What it is: `Instance usage (Linux/UNIX, on-demand, m5.large)`.
    pub name: String,
    /// Its unit: `hours`, `GB`, `IOPS`.
    pub unit: String,
    /// Monthly quantity; `None` when it depends on usage nobody gave.
    pub quantity: Option<f64>,
    /// The catalog key of its price.
    pub price_key: String,
    /// The unit price, when the catalog has it.
    pub unit_price: Option<f64>,
    /// How many of the catalog's unit one unit of `quantity` is: an hour of a 6-vCPU custom
    /// machine is 6 vCPU-hours at the per-vCPU price (1 for most components).
    #[serde(skip_serializing_if = "is_one")]
    pub factor: f64,
    /// `quantity × factor × unit_price`, when both are known.
    pub monthly: Option<f64>,
    /// Whether its quantity comes from usage (a usage file) rather than the configuration.
    pub usage_based: bool,
}

fn is_one(x: &f64) -> bool {
    *x == 1.0
}

/// A resource's estimated monthly cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceCost {
    /// Its address.
    pub address: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The region it is priced in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Its components.
    pub components: Vec<Component>,
    /// The sum of the components that could be priced.
    pub monthly: f64,
    /// The same at the base of a change (0 for a resource it creates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_monthly: Option<f64>,
    /// Why it is not (fully) priced: an unpriced type, missing prices, an unknown region.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unpriced: Vec<String>,
}

/// Usage per resource address, as Infracost's usage file (`resource_usage`) gives it.
pub type Usage = BTreeMap<String, serde_json::Map<String, Value>>;

/// Reads an Infracost usage file (`version: 0.1`, `resource_usage: {ADDRESS: {key: value}}`).
pub fn parse_usage(text: &str) -> Result<Usage, String> {
    let doc: Value = yaml_serde::from_str(text).map_err(|e| format!("invalid usage file: {e}"))?;
    let mut out = Usage::new();
    if let Some(map) = doc.get("resource_usage").and_then(Value::as_object) {
        for (address, values) in map {
            if let Some(values) = values.as_object() {
                out.insert(address.clone(), values.clone());
            }
        }
    }
    Ok(out)
}

/// The region of a resource of a plan: its own `region` or `location`, its availability zone
/// without the zone letter, else its provider configuration's region.
pub fn region_of(plan: &Plan, change: &ResourceChange) -> Option<String> {
    let after = change.after.as_ref();
    let text = |k: &str| after.and_then(|a| a.get(k)).and_then(Value::as_str).map(str::to_string);
    if let Some(r) = text("region") {
        return Some(r);
    }
    if let Some(zone) = text("availability_zone").or_else(|| text("zone")) {
        // us-east-1a → us-east-1; europe-west4-b → europe-west4.
        let trimmed = zone.trim_end_matches(|c: char| c.is_ascii_lowercase()).trim_end_matches('-');
        return Some(trimmed.to_string());
    }
    if let Some(location) = text("location") {
        return Some(location.to_lowercase().replace(' ', ""));
    }
    let provider = change.kind.split('_').next().unwrap_or("");
    let config = plan.document.pointer("/configuration/provider_config")?;
    for key in [provider.to_string(), format!("{provider}.default")] {
        if let Some(region) = config.get(&key).and_then(|p| p.pointer("/expressions/region/constant_value")) {
            return region.as_str().map(str::to_string);
        }
    }
    None
}

/// Prices one resource change as it will be after the change (`after`); a deletion costs
/// nothing after.
pub fn price(change: &ResourceChange, region: Option<&str>, usage: &Usage, catalog: &PriceCatalog) -> ResourceCost {
    let mut cost = ResourceCost {
        address: change.address.clone(),
        kind: change.kind.clone(),
        region: region.map(str::to_string),
        components: Vec::new(),
        monthly: 0.0,
        base_monthly: None,
        unpriced: Vec::new(),
    };
    let Some(after) = change.after.as_ref().filter(|_| change.action.exists_after() && change.mode == "managed") else {
        return cost;
    };
    let empty = serde_json::Map::new();
    let used = usage.get(&change.address).or_else(|| usage.get(&change.config_address())).unwrap_or(&empty);
    let mut parts = Parts { after, usage: used, components: Vec::new() };
    match change.kind.as_str() {
        "aws_instance" => aws_instance(&mut parts),
        "aws_ebs_volume" => {
            let size = parts.number("size");
            ebs(&mut parts, "", after, size.unwrap_or(0.0), "gp2");
        }
        "aws_nat_gateway" => {
            parts.fixed("", "NAT gateway", "hours", HOURS_PER_MONTH, "aws.nat_gateway".into());
            parts.usage("", "Data processed", "GB", "monthly_data_processed_gb", 1.0, "aws.nat_gateway.data".into());
        }
        "aws_eks_node_group" => eks_node_group(&mut parts),
        "aws_lb" | "aws_alb" => load_balancer(&mut parts, &change.kind),
        "google_compute_instance" => google_instance(&mut parts),
        "azurerm_linux_virtual_machine" => azure_linux_vm(&mut parts),
        other => {
            cost.unpriced.push(format!("resource type {other} is not priced by this version"));
            return cost;
        }
    }
    let Some(region) = region else {
        cost.unpriced.push("its region is not known without a plan".into());
        cost.components = parts.components;
        return cost;
    };
    let prices = catalog.regions.get(region);
    for mut c in parts.components {
        c.unit_price = prices.and_then(|p| p.products.get(&c.price_key)).copied();
        match (c.quantity, c.unit_price) {
            (Some(q), Some(p)) => {
                c.monthly = Some(q * c.factor * p);
                cost.monthly += q * c.factor * p;
            }
            (_, None) => cost.unpriced.push(format!("no price for {} in {region} ({})", c.price_key, c.name)),
            (None, Some(_)) => {}
        }
        cost.components.push(c);
    }
    cost
}

/// Prices every resource change of the plans: its cost after the change, and before it for
/// updates, replacements and deletions (from `before`).
pub fn price_plans(plans: &[&Plan], usage: &Usage, catalog: &PriceCatalog) -> Vec<(ResourceCost, Action)> {
    let mut out = Vec::new();
    for plan in plans {
        for change in plan.changes.iter().filter(|c| c.mode == "managed") {
            let region = region_of(plan, change);
            out.push((price(change, region.as_deref(), usage, catalog), change.action));
        }
    }
    out
}

/// Components being built for one resource.
struct Parts<'a> {
    after: &'a Value,
    usage: &'a serde_json::Map<String, Value>,
    components: Vec<Component>,
}

impl Parts<'_> {
    fn text(&self, key: &str) -> Option<&str> {
        self.after.get(key).and_then(Value::as_str)
    }

    fn number(&self, key: &str) -> Option<f64> {
        number(self.after.get(key)?)
    }

    fn push(&mut self, group: &str, name: String, unit: &str, quantity: Option<f64>, key: String, usage_based: bool) {
        self.components.push(Component {
            group: group.to_string(),
            name,
            unit: unit.to_string(),
            quantity,
            price_key: key,
            unit_price: None,
            factor: 1.0,
            monthly: None,
            usage_based,
        });
    }

    /// The last component pushed bills `factor` catalog units per unit of its quantity.
    fn scaled(&mut self, factor: f64) {
        if let Some(c) = self.components.last_mut() {
            c.factor = factor;
        }
    }

    /// A usage value, at the top level or in a nested block's usage (`os_disk.monthly_disk_operations`).
    fn used(&self, group: &str, key: &str) -> Option<f64> {
        let nested = if group.is_empty() { None } else { self.usage.get(group).and_then(|g| g.get(key)) };
        nested.or_else(|| self.usage.get(key)).and_then(number)
    }

    fn fixed(&mut self, group: &str, name: &str, unit: &str, quantity: f64, key: String) {
        self.push(group, name.to_string(), unit, Some(quantity), key, false);
    }

    /// A component whose quantity is a usage key (scaled by `per`, as 1M requests).
    fn usage(&mut self, group: &str, name: &str, unit: &str, usage_key: &str, per: f64, key: String) {
        let quantity = self.usage.get(usage_key).and_then(number).map(|q| q / per);
        self.push(group, name.to_string(), unit, quantity, key, true);
    }
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// Nested blocks of `after`: a list of objects (a plan writes single blocks as lists too).
fn blocks<'a>(after: &'a Value, key: &str) -> Vec<&'a Value> {
    match after.get(key) {
        Some(Value::Array(items)) => items.iter().filter(|v| v.is_object()).collect(),
        Some(v @ Value::Object(_)) => vec![v],
        _ => Vec::new(),
    }
}

/// EC2 on-demand hours of an instance type (Linux).
fn ec2_on_demand(parts: &mut Parts<'_>, kind: &str, hours: f64) {
    parts.fixed(
        "",
        &format!("Instance usage (Linux/UNIX, on-demand, {kind})"),
        "hours",
        hours,
        format!("aws.ec2.{kind}"),
    );
}

fn aws_instance(parts: &mut Parts<'_>) {
    let after = parts.after;
    let kind = parts.text("instance_type").unwrap_or("").to_string();
    let dedicated = parts.text("tenancy") == Some("dedicated");
    let hours = parts.usage.get("monthly_hrs").and_then(number).unwrap_or(HOURS_PER_MONTH);
    let reserved = |k: &str| parts.usage.get(k).and_then(Value::as_str).map(str::to_string);
    let reservation = (
        reserved("reserved_instance_type"),
        reserved("reserved_instance_term"),
        reserved("reserved_instance_payment_option"),
    );
    if kind.is_empty() {
        parts.push("", "Instance usage (instance type unknown)".into(), "hours", None, "aws.ec2.unknown".into(), false);
    } else if let (Some(class), Some(term), Some(payment)) = reservation {
        // A reservation (from the usage file): its hourly rate by class, term and payment.
        parts.fixed(
            "",
            &format!("Instance usage (Linux/UNIX, reserved, {kind})"),
            "hours",
            hours,
            format!("aws.ec2.reserved.{class}.{term}.{payment}.{kind}"),
        );
    } else if dedicated {
        parts.fixed(
            "",
            &format!("Instance usage (Linux/UNIX, dedicated, {kind})"),
            "hours",
            hours,
            format!("aws.ec2.dedicated.{kind}"),
        );
    } else {
        ec2_on_demand(parts, &kind, hours);
    }
    if after.get("ebs_optimized") == Some(&Value::Bool(true)) {
        parts.fixed("", "EBS-optimized usage", "hours", hours, format!("aws.ec2.ebs_optimized.{kind}"));
    }
    if after.get("monitoring") == Some(&Value::Bool(true)) {
        // Detailed monitoring publishes 7 metrics per instance.
        parts.fixed("", "EC2 detailed monitoring", "metrics", 7.0, "aws.ec2.monitoring".into());
    }
    // Burstable types: CPU credits beyond the baseline are billed when unlimited (the default
    // for t3 and later families).
    let family = kind.split('.').next().unwrap_or("");
    if family.starts_with('t') {
        let credits = blocks(after, "credit_specification")
            .first()
            .and_then(|c| c.get("cpu_credits"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let unlimited = credits.as_deref().map_or(family != "t2", |c| c == "unlimited");
        if unlimited {
            let vcpu_hours = parts
                .usage
                .get("cpu_credit_hrs")
                .or_else(|| parts.usage.get("monthly_cpu_credit_hrs"))
                .and_then(number);
            let vcpus = parts.usage.get("vcpu_count").and_then(number);
            let quantity = match (vcpu_hours, vcpus) {
                (Some(h), Some(v)) => Some(h * v),
                (Some(h), None) => Some(h),
                _ => None,
            };
            parts.push("", "CPU credits".into(), "vCPU-hours", quantity, format!("aws.ec2.cpu_credits.{family}"), true);
        }
    }
    for (i, device) in blocks(after, "root_block_device").into_iter().enumerate() {
        let size = device.get("volume_size").and_then(number).unwrap_or(8.0);
        let group = if i == 0 { "root_block_device".to_string() } else { format!("root_block_device[{i}]") };
        ebs(parts, &group, device, size, "gp2");
    }
    if blocks(after, "root_block_device").is_empty() {
        // Without a root_block_device block the AMI's root volume is used: 8 GB gp2 by default.
        ebs(parts, "root_block_device", &Value::Null, 8.0, "gp2");
    }
    for (i, device) in blocks(after, "ebs_block_device").into_iter().enumerate() {
        let size = device.get("volume_size").and_then(number).unwrap_or(8.0);
        ebs(parts, &format!("ebs_block_device[{i}]"), device, size, "gp2");
    }
}

/// A managed node group: its instances (the usage file's `instances`, else the desired size of
/// `scaling_config`) of its first instance type (`t3.medium` by default), each with a gp2 disk of
/// `disk_size` GB (20 by default). A node group that takes its machines from a launch template
/// is priced from that template, which is not known without a plan: its instance usage is left
/// to usage.
fn eks_node_group(parts: &mut Parts<'_>) {
    let after = parts.after;
    if !blocks(after, "launch_template").is_empty() {
        parts.push(
            "",
            "Instance usage (from the launch template)".into(),
            "hours",
            None,
            "aws.ec2.launch_template".into(),
            true,
        );
        return;
    }
    let desired = blocks(after, "scaling_config").first().and_then(|c| c.get("desired_size")).and_then(number);
    let count = parts.usage.get("instances").and_then(number).or(desired).unwrap_or(1.0);
    let kind = after
        .get("instance_types")
        .and_then(Value::as_array)
        .and_then(|t| t.first())
        .and_then(Value::as_str)
        .unwrap_or("t3.medium")
        .to_string();
    ec2_on_demand(parts, &kind, HOURS_PER_MONTH * count);
    let disk = parts.number("disk_size").unwrap_or(20.0);
    parts.fixed("", "Storage (general purpose SSD, gp2)", "GB", disk * count, "aws.ebs.gp2".into());
}

/// An application or network load balancer: its hours, and its capacity units from usage (the
/// largest of its dimensions: processed GB per hour, new connections per second, active
/// connections per minute, rule evaluations per second, each against one unit's allowance).
fn load_balancer(parts: &mut Parts<'_>, kind: &str) {
    let network = kind == "aws_lb" && parts.text("load_balancer_type") == Some("network");
    let (name, key) = if network {
        ("Network load balancer", "aws.lb.network")
    } else if kind == "aws_lb" && parts.text("load_balancer_type") == Some("gateway") {
        ("Gateway load balancer", "aws.lb.gateway")
    } else {
        ("Application load balancer", "aws.lb.application")
    };
    parts.fixed("", name, "hours", HOURS_PER_MONTH, key.into());
    let used = |k: &str| parts.usage.get(k).and_then(number);
    let seconds = HOURS_PER_MONTH * 3600.0;
    let dimensions = [
        used("processed_bytes_gb").map(|gb| gb / HOURS_PER_MONTH),
        used("new_connections").map(|n| n / seconds / if network { 800.0 } else { 25.0 }),
        used("active_connections").map(|n| n / (HOURS_PER_MONTH * 60.0) / if network { 100_000.0 } else { 3000.0 }),
        used("rule_evaluations").map(|n| n / seconds / 1000.0),
    ];
    let lcu = dimensions.iter().flatten().copied().reduce(f64::max);
    parts.push("", "Load balancer capacity units".into(), "LCU", lcu, format!("{key}.lcu"), true);
}

/// An EBS volume (or a block device of an instance): storage, and what its type bills besides.
fn ebs(parts: &mut Parts<'_>, group: &str, volume: &Value, size: f64, default_type: &str) {
    let kind = volume
        .get("type")
        .or_else(|| volume.get("volume_type"))
        .and_then(Value::as_str)
        .unwrap_or(default_type)
        .to_string();
    let iops = volume.get("iops").and_then(number);
    let name = match kind.as_str() {
        "gp2" | "gp3" => format!("Storage (general purpose SSD, {kind})"),
        "io1" | "io2" => format!("Storage (provisioned IOPS SSD, {kind})"),
        "st1" => "Storage (throughput optimized HDD, st1)".into(),
        "sc1" => "Storage (cold HDD, sc1)".into(),
        "standard" => "Storage (magnetic)".into(),
        other => format!("Storage ({other})"),
    };
    parts.fixed(group, &name, "GB", size, format!("aws.ebs.{kind}"));
    match kind.as_str() {
        "io1" | "io2" => {
            parts.fixed(group, "Provisioned IOPS", "IOPS", iops.unwrap_or(0.0), format!("aws.ebs.iops.{kind}"));
        }
        "gp3" => {
            // gp3 includes 3,000 IOPS and 125 MB/s; more are billed.
            let throughput = volume.get("throughput").and_then(number).unwrap_or(125.0);
            if throughput > 125.0 {
                parts.fixed(
                    group,
                    "Provisioned throughput",
                    "Mbps",
                    throughput - 125.0,
                    "aws.ebs.throughput.gp3".into(),
                );
            }
            if let Some(iops) = iops.filter(|i| *i > 3000.0) {
                parts.fixed(group, "Provisioned IOPS", "IOPS", iops - 3000.0, "aws.ebs.iops.gp3".into());
            }
        }
        "standard" => {
            parts.usage(
                group,
                "I/O requests",
                "1M request",
                "monthly_standard_io_requests",
                1e6,
                "aws.ebs.requests.standard".into(),
            );
        }
        _ => {}
    }
}

fn google_instance(parts: &mut Parts<'_>) {
    let after = parts.after;
    let machine = parts.text("machine_type").unwrap_or("").to_string();
    let preemptible = blocks(after, "scheduling").first().is_some_and(|s| {
        s.get("preemptible") == Some(&Value::Bool(true))
            || s.get("provisioning_model").and_then(Value::as_str) == Some("SPOT")
    });
    let model = if preemptible { "preemptible" } else { "on-demand" };
    let hours = parts.usage.get("monthly_hrs").and_then(number).unwrap_or(HOURS_PER_MONTH);
    let tier = if preemptible { "preemptible." } else { "" };
    match custom_machine(&machine) {
        Some((family, vcpus, ram_gb, extended_gb)) => {
            let upper = family.to_uppercase();
            parts.fixed(
                "",
                &format!("Custom instance CPU (Linux/UNIX, {model}, {upper} {vcpus} vCPUs)"),
                "hours",
                hours,
                format!("gcp.custom.{tier}{family}.vcpu"),
            );
            parts.scaled(f64::from(vcpus));
            parts.fixed(
                "",
                &format!("Custom Instance RAM (Linux/UNIX, {model}, {upper} {} GB)", format_gb(ram_gb)),
                "hours",
                hours,
                format!("gcp.custom.{tier}{family}.ram"),
            );
            parts.scaled(ram_gb);
            if extended_gb > 0.0 {
                parts.fixed(
                    "",
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
            parts.fixed("", &format!("Instance usage (Linux/UNIX, {model}, {machine})"), "hours", hours, key);
        }
    }
    for disk in blocks(after, "boot_disk") {
        let params = blocks(disk, "initialize_params");
        let params = params.first().copied().unwrap_or(&Value::Null);
        let size = params.get("size").and_then(number).unwrap_or(10.0);
        let kind = params.get("type").and_then(Value::as_str).unwrap_or("pd-standard").to_string();
        let name = match kind.as_str() {
            "pd-standard" => "Standard provisioned storage (pd-standard)".to_string(),
            "pd-ssd" => "SSD provisioned storage (pd-ssd)".to_string(),
            "pd-balanced" => "Balanced provisioned storage (pd-balanced)".to_string(),
            other => format!("Provisioned storage ({other})"),
        };
        parts.fixed("", &name, "GB", size, format!("gcp.disk.{kind}"));
    }
    // Each local SSD is 375 GB.
    let scratch = blocks(after, "scratch_disk").len();
    if scratch > 0 {
        parts.fixed(
            "",
            "Local SSD provisioned storage",
            "GB",
            375.0 * scratch as f64,
            format!("gcp.disk.{tier}local-ssd"),
        );
    }
    for gpu in blocks(after, "guest_accelerator") {
        let kind = gpu.get("type").and_then(Value::as_str).unwrap_or("").to_string();
        let count = gpu.get("count").and_then(number).unwrap_or(1.0);
        let key = if preemptible { format!("gcp.gpu.preemptible.{kind}") } else { format!("gcp.gpu.{kind}") };
        parts.fixed("", &format!("{} ({model})", gpu_name(&kind)), "hours", hours * count, key);
    }
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

fn azure_linux_vm(parts: &mut Parts<'_>) {
    let after = parts.after;
    let size = parts.text("size").unwrap_or("").to_string();
    let hours = parts.usage.get("monthly_hrs").and_then(number).unwrap_or(HOURS_PER_MONTH);
    parts.fixed(
        "",
        &format!("Instance usage (Linux, pay as you go, {size})"),
        "hours",
        hours,
        format!("azure.vm.linux.{}", size.to_lowercase()),
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

/// The usage of every usage file of the estate (`terraform/**/infracost-usage.yml`,
/// `*.usage.yml`); a file that does not parse is a diagnostic and the others still count.
pub fn estate_usage(estate: &Estate) -> (Usage, Vec<Diagnostic>) {
    let mut usage = Usage::new();
    let mut diagnostics = Vec::new();
    for (path, text) in &estate.terraform.usage_files {
        match parse_usage(text) {
            Ok(u) => usage.extend(u),
            Err(e) => diagnostics.push(Diagnostic::error(path, e)),
        }
    }
    (usage, diagnostics)
}

/// The Terraform resources of `plans` (the estate's, and any given besides) as workloads, so
/// that they count in the totals, per cost center (their cost-center tag) and toward budgets
/// like the manifests' workloads; with each resource's breakdown.
pub fn workloads(estate: &Estate, plans: &[&Plan]) -> (Vec<WorkloadCost>, Vec<ResourceCost>, Vec<Diagnostic>) {
    let (usage, diagnostics) = estate_usage(estate);
    let tag = &estate.settings.terraform.cost_center_tag;
    let mut workloads = Vec::new();
    let mut resources = Vec::new();
    for plan in plans {
        for change in plan.changes.iter().filter(|c| c.mode == "managed" && c.action.exists_after()) {
            let region = region_of(plan, change);
            let cost = price(change, region.as_deref(), &usage, &estate.prices);
            let (path, line) = estate.terraform.place(plan, change);
            let after = change.after.as_ref();
            let labels: BTreeMap<String, String> = ["tags", "labels"]
                .iter()
                .filter_map(|k| after.and_then(|a| a.get(*k)).and_then(Value::as_object))
                .flatten()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect();
            let storage: f64 = cost.components.iter().filter(|c| c.unit == "GB").filter_map(|c| c.monthly).sum();
            let gpu: f64 =
                cost.components.iter().filter(|c| c.name.starts_with("NVIDIA")).filter_map(|c| c.monthly).sum();
            let priced = cost.components.iter().any(|c| c.monthly.is_some());
            let usage_left: Vec<&str> =
                cost.components.iter().filter(|c| c.quantity.is_none()).map(|c| c.name.as_str()).collect();
            let mut basis = format!("Terraform {} ({})", change.action.as_str(), cost.kind);
            if !usage_left.is_empty() {
                basis.push_str(&format!("; depends on usage: {}", usage_left.join(", ")));
            }
            if !cost.unpriced.is_empty() {
                basis.push_str(&format!("; {}", cost.unpriced.join("; ")));
            }
            workloads.push(WorkloadCost {
                path,
                line,
                object: change.address.clone(),
                cost_center: labels.get(tag).cloned(),
                cluster: None,
                region: cost.region.clone(),
                monthly: priced.then_some(cost.monthly),
                compute: cost.monthly - storage - gpu,
                gpu,
                storage,
                basis,
                labels,
            });
            resources.push(cost);
        }
    }
    (workloads, resources, diagnostics)
}
