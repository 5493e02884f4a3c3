//! AWS resources.

use serde_json::Value;

use assay_estate::terraform::ResourceChange;

use super::{HOURS_PER_MONTH, Parts, blocks, number};

/// EC2 machines of one kind, as an instance, a node group or a launch template declares them.
struct Machines<'v> {
    /// Where their components are listed (a launch template's address, or empty).
    group: String,
    /// The instance type; empty when unknown.
    kind: String,
    /// How many run.
    count: f64,
    /// Hours each runs in a month.
    hours: f64,
    windows: bool,
    dedicated: bool,
    ebs_optimized: bool,
    monitoring: bool,
    /// `credit_specification` blocks of burstable types.
    credits: Option<&'v Value>,
}

/// The hours of EC2 machines (on-demand, reserved from the usage file, dedicated, Windows), and
/// what their type bills besides: EBS optimisation (not charged apart on burstable types),
/// detailed monitoring (7 metrics each), CPU credits of unlimited burstable types (usage).
fn ec2(parts: &mut Parts<'_>, m: &Machines<'_>) {
    let group = m.group.as_str();
    let (kind, hours) = (m.kind.as_str(), m.hours * m.count);
    let text = |k: &str| parts.usage.get(k).and_then(Value::as_str).map(str::to_string);
    let reservation =
        (text("reserved_instance_type"), text("reserved_instance_term"), text("reserved_instance_payment_option"));
    let windows = m.windows || text("operating_system").is_some_and(|os| os.eq_ignore_ascii_case("windows"));
    let os = if windows { "Windows" } else { "Linux/UNIX" };
    let os_key = if windows { "windows." } else { "" };
    if kind.is_empty() {
        parts.push(
            group,
            "Instance usage (instance type unknown)".into(),
            "hours",
            None,
            "aws.ec2.unknown".into(),
            false,
        );
        return;
    }
    if let (Some(class), Some(term), Some(payment)) = reservation {
        // A reservation (from the usage file): its hourly rate by class, term and payment.
        parts.fixed(
            group,
            &format!("Instance usage ({os}, reserved, {kind})"),
            "hours",
            hours,
            format!("aws.ec2.reserved.{os_key}{class}.{term}.{payment}.{kind}"),
        );
    } else if m.dedicated {
        // Bought on demand, on dedicated hardware: Infracost's name, the dedicated rate.
        parts.fixed(
            group,
            &format!("Instance usage ({os}, on-demand, {kind})"),
            "hours",
            hours,
            format!("aws.ec2.dedicated.{os_key}{kind}"),
        );
    } else {
        parts.fixed(
            group,
            &format!("Instance usage ({os}, on-demand, {kind})"),
            "hours",
            hours,
            format!("aws.ec2.{os_key}{kind}"),
        );
    }
    let family = kind.split('.').next().unwrap_or("");
    let burstable = family.starts_with('t');
    if m.ebs_optimized && !burstable {
        parts.fixed(group, "EBS-optimized usage", "hours", hours, format!("aws.ec2.ebs_optimized.{kind}"));
    }
    if m.monitoring {
        parts.fixed(group, "EC2 detailed monitoring", "metrics", 7.0 * m.count, "aws.ec2.monitoring".into());
    }
    // CPU credits beyond the baseline are billed when unlimited (the default from t3 on).
    if burstable {
        let credits = m.credits.and_then(|c| c.get("cpu_credits")).and_then(Value::as_str);
        if credits.map_or(family != "t2", |c| c == "unlimited") {
            let used = |k: &str| parts.usage.get(k).and_then(number);
            let vcpu_hours = used("cpu_credit_hrs").or_else(|| used("monthly_cpu_credit_hrs"));
            let quantity = vcpu_hours.map(|h| h * used("vcpu_count").unwrap_or(1.0) * m.count);
            parts.push(
                group,
                "CPU credits".into(),
                "vCPU-hours",
                quantity,
                format!("aws.ec2.cpu_credits.{family}"),
                true,
            );
        }
    }
}

/// The launch template a resource's `launch_template` block refers to (by `id` or `name`).
fn launch_template<'p>(parts: &Parts<'p>) -> Option<&'p ResourceChange> {
    if blocks(parts.after, "launch_template").is_empty() && parts.change.after_unknown.get("launch_template").is_none()
    {
        return None;
    }
    ["id", "name"].iter().find_map(|k| parts.plan.referenced(parts.change, &["launch_template", k]))
}

/// A block device of a launch template (`block_device_mappings` → `ebs`) as an instance's
/// `ebs_block_device`.
fn mapped_device(mapping: &Value) -> Value {
    let mut device = blocks(mapping, "ebs").first().copied().cloned().unwrap_or_else(|| serde_json::json!({}));
    if let (Some(d), Some(name)) = (device.as_object_mut(), mapping.get("device_name")) {
        d.insert("device_name".into(), name.clone());
    }
    device
}

pub(super) fn instance(parts: &mut Parts<'_>) {
    let after = parts.after;
    // What the instance leaves unset comes from its launch template, when the plan has it.
    let template = launch_template(parts).and_then(|t| t.after.as_ref());
    let from = |key: &str| after.get(key).filter(|v| !v.is_null()).or_else(|| template.and_then(|t| t.get(key)));
    let monitoring = match after.get("monitoring") {
        Some(Value::Bool(b)) => *b,
        _ => template
            .and_then(|t| blocks(t, "monitoring").first().and_then(|m| m.get("enabled")).and_then(Value::as_bool))
            .unwrap_or(false),
    };
    let credits = blocks(after, "credit_specification")
        .first()
        .copied()
        .or_else(|| template.and_then(|t| blocks(t, "credit_specification").first().copied()));
    let machines = Machines {
        group: String::new(),
        kind: from("instance_type").and_then(Value::as_str).unwrap_or("").to_string(),
        count: 1.0,
        hours: parts.usage.get("monthly_hrs").and_then(number).unwrap_or(HOURS_PER_MONTH),
        windows: false,
        dedicated: match after.get("tenancy").and_then(Value::as_str) {
            Some(tenancy) => tenancy == "dedicated",
            None => {
                template
                    .and_then(|t| blocks(t, "placement").first().and_then(|p| p.get("tenancy")).and_then(Value::as_str))
                    == Some("dedicated")
            }
        },
        ebs_optimized: from("ebs_optimized") == Some(&Value::Bool(true)),
        monitoring,
        credits,
    };
    ec2(parts, &machines);
    for (i, device) in blocks(after, "root_block_device").into_iter().enumerate() {
        let size = device.get("volume_size").and_then(number).unwrap_or(8.0);
        let group = if i == 0 { "root_block_device".to_string() } else { format!("root_block_device[{i}]") };
        ebs(parts, &group, device, size, "gp2");
    }
    if blocks(after, "root_block_device").is_empty() {
        // Without a root_block_device block the AMI's root volume is used: 8 GB gp2 by default.
        ebs(parts, "root_block_device", &Value::Null, 8.0, "gp2");
    }
    // The instance's devices, completed by the template's mapping of the same device name; then
    // the template's other devices.
    let mapped: Vec<Value> = template
        .map(|t| blocks(t, "block_device_mappings").into_iter().map(mapped_device).collect())
        .unwrap_or_default();
    let name = |d: &Value| d.get("device_name").and_then(Value::as_str).map(str::to_string);
    let mut devices: Vec<Value> = Vec::new();
    for own in blocks(after, "ebs_block_device") {
        let mut device = own.clone();
        if let Some(base) = mapped.iter().find(|m| name(m).is_some() && name(m) == name(own))
            && let (Some(d), Some(b)) = (device.as_object_mut(), base.as_object())
        {
            for (k, v) in b {
                if d.get(k).is_none_or(Value::is_null) {
                    d.insert(k.clone(), v.clone());
                }
            }
        }
        devices.push(device);
    }
    let own_names: Vec<Option<String>> = blocks(after, "ebs_block_device").into_iter().map(name).collect();
    devices.extend(mapped.iter().filter(|m| name(m).is_none() || !own_names.contains(&name(m))).cloned());
    for (i, device) in devices.iter().enumerate() {
        let size = device.get("volume_size").and_then(number).unwrap_or(8.0);
        ebs(parts, &format!("ebs_block_device[{i}]"), device, size, "gp2");
    }
}

/// Lists components of `count` machines: the quantities of those pushed by `push` are
/// multiplied by `count` (a disk of each machine).
fn per_machine(parts: &mut Parts<'_>, count: f64, push: impl FnOnce(&mut Parts<'_>)) {
    let start = parts.components.len();
    push(parts);
    for c in &mut parts.components[start..] {
        c.quantity = c.quantity.map(|q| q * count);
    }
}

/// `count` machines launched from a launch template (listed under its address): its instance
/// type unless `kind` overrides it, its options, and its block devices for each machine.
fn from_template(parts: &mut Parts<'_>, template: &ResourceChange, kind: Option<&str>, count: f64, windows: bool) {
    let t = template.after.as_ref().unwrap_or(&Value::Null);
    let group = template.address.clone();
    let kind = kind.or_else(|| t.get("instance_type").and_then(Value::as_str)).unwrap_or("t3.medium");
    let placement = blocks(t, "placement");
    let machines = Machines {
        group: group.clone(),
        kind: kind.to_string(),
        count,
        hours: HOURS_PER_MONTH,
        windows,
        dedicated: placement.first().and_then(|p| p.get("tenancy")).and_then(Value::as_str) == Some("dedicated"),
        ebs_optimized: t.get("ebs_optimized") == Some(&Value::Bool(true)),
        monitoring: blocks(t, "monitoring").first().and_then(|m| m.get("enabled")) == Some(&Value::Bool(true)),
        credits: blocks(t, "credit_specification").first().copied(),
    };
    ec2(parts, &machines);
    for (i, mapping) in blocks(t, "block_device_mappings").into_iter().enumerate() {
        let device = mapped_device(mapping);
        let size = device.get("volume_size").and_then(number).unwrap_or(8.0);
        per_machine(parts, count, |p| ebs(p, &format!("{group}/block_device_mapping[{i}]"), &device, size, "gp2"));
    }
}

/// `count` machines launched from a launch configuration (listed under its address): its
/// instance type and options (detailed monitoring on unless disabled), its root device (8 GB
/// gp2 by default) and EBS devices for each machine.
fn from_configuration(parts: &mut Parts<'_>, config: &ResourceChange, count: f64) {
    let c = config.after.as_ref().unwrap_or(&Value::Null);
    let group = config.address.clone();
    let machines = Machines {
        group: group.clone(),
        kind: c.get("instance_type").and_then(Value::as_str).unwrap_or("").to_string(),
        count,
        hours: HOURS_PER_MONTH,
        windows: false,
        dedicated: c.get("placement_tenancy").and_then(Value::as_str) == Some("dedicated"),
        ebs_optimized: c.get("ebs_optimized") == Some(&Value::Bool(true)),
        monitoring: c.get("enable_monitoring") != Some(&Value::Bool(false)),
        credits: blocks(c, "credit_specification").first().copied(),
    };
    ec2(parts, &machines);
    let root = blocks(c, "root_block_device").first().copied().unwrap_or(&Value::Null);
    let size = root.get("volume_size").and_then(number).unwrap_or(8.0);
    per_machine(parts, count, |p| ebs(p, &format!("{group}/root_block_device"), root, size, "gp2"));
    for (i, device) in blocks(c, "ebs_block_device").into_iter().enumerate() {
        let size = device.get("volume_size").and_then(number).unwrap_or(8.0);
        per_machine(parts, count, |p| ebs(p, &format!("{group}/ebs_block_device[{i}]"), device, size, "gp2"));
    }
}

/// A managed node group: its instances (the usage file's `instances`, else the desired size of
/// `scaling_config`) of its first instance type (else its launch template's, else
/// `t3.medium`). Without a launch template each has a gp2 disk of `disk_size` GB (20 by
/// default); with one, the template's block devices and options, listed under the template.
pub(super) fn eks_node_group(parts: &mut Parts<'_>) {
    let after = parts.after;
    let desired = blocks(after, "scaling_config").first().and_then(|c| c.get("desired_size")).and_then(number);
    let count = parts.usage.get("instances").and_then(number).or(desired).unwrap_or(1.0);
    let own_type =
        after.get("instance_types").and_then(Value::as_array).and_then(|t| t.first()).and_then(Value::as_str);
    let windows = parts.text("ami_type").is_some_and(|t| t.starts_with("WINDOWS"));
    if !blocks(after, "launch_template").is_empty() {
        match launch_template(parts) {
            Some(template) => from_template(parts, template, own_type, count, windows),
            None => parts.push(
                "",
                "Instance usage (launch template not in the plan)".into(),
                "hours",
                None,
                "aws.ec2.launch_template".into(),
                true,
            ),
        }
        return;
    }
    let kind = own_type.unwrap_or("t3.medium").to_string();
    if parts.text("capacity_type") == Some("SPOT") {
        let name = format!("Instance usage (Linux/UNIX, spot, {kind})");
        parts.fixed("", &name, "hours", HOURS_PER_MONTH * count, format!("aws.ec2.spot.{kind}"));
    } else {
        let machines = Machines {
            group: String::new(),
            kind,
            count,
            hours: HOURS_PER_MONTH,
            windows,
            dedicated: false,
            ebs_optimized: false,
            monitoring: false,
            credits: None,
        };
        ec2(parts, &machines);
    }
    let disk = parts.number("disk_size").unwrap_or(20.0);
    parts.fixed("", "Storage (general purpose SSD, gp2)", "GB", disk * count, "aws.ebs.gp2".into());
}

/// An Auto Scaling group: its instances (the usage file's `instances`, else
/// `desired_capacity`, else `min_size` and at least one) launched from its launch
/// configuration or launch template; with a mixed-instances policy, its first override's
/// instance type, `weighted_capacity` units each.
pub(super) fn autoscaling_group(parts: &mut Parts<'_>) {
    let desired = parts.number("desired_capacity");
    let minimum = parts.number("min_size").unwrap_or(1.0).max(1.0);
    let mut count = parts.usage.get("instances").and_then(number).or(desired).unwrap_or(minimum);
    if let Some(config) = parts.plan.referenced(parts.change, &["launch_configuration"]) {
        from_configuration(parts, config, count);
        return;
    }
    if let Some(template) = launch_template(parts) {
        from_template(parts, template, None, count, false);
        return;
    }
    let policy = blocks(parts.after, "mixed_instances_policy");
    let spec = ["launch_template", "launch_template_specification"];
    let template = ["launch_template_id", "launch_template_name"].iter().find_map(|k| {
        let path = ["mixed_instances_policy", spec[0], spec[1], k];
        parts.plan.referenced(parts.change, &path)
    });
    if let (Some(policy), Some(template)) = (policy.first(), template) {
        let launch = blocks(policy, "launch_template");
        let first = launch.first().and_then(|l| blocks(l, "override").first().copied());
        let kind = first.and_then(|o| o.get("instance_type")).and_then(Value::as_str);
        let weight = first.and_then(|o| o.get("weighted_capacity")).and_then(number).unwrap_or(1.0);
        if parts.usage.get("instances").is_none() {
            count = (count / weight.max(1.0)).ceil();
        }
        from_template(parts, template, kind, count, false);
        return;
    }
    parts.push(
        "",
        "Instance usage (launch configuration not in the plan)".into(),
        "hours",
        None,
        "aws.ec2.launch_template".into(),
        true,
    );
}

/// An application or network load balancer: its hours, and its capacity units from usage (the
/// largest of its dimensions: processed GB per hour, new connections per second, active
/// connections per minute, rule evaluations per second, each against one unit's allowance).
pub(super) fn load_balancer(parts: &mut Parts<'_>, kind: &str) {
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
pub(super) fn ebs(parts: &mut Parts<'_>, group: &str, volume: &Value, size: f64, default_type: &str) {
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

/// vCPUs of an instance size by AWS's naming rule for current generations: `micro` to `large`
/// have 2, `xlarge` 4, `Nxlarge` 4·N (`db.m5.4xlarge` 16). `None` for sizes it does not cover
/// (`metal`).
pub(super) fn vcpus(class: &str) -> Option<f64> {
    let size = class.rsplit('.').next()?;
    match size {
        "nano" | "micro" | "small" | "medium" | "large" => Some(2.0),
        "xlarge" => Some(4.0),
        _ => size.strip_suffix("xlarge")?.parse::<f64>().ok().map(|n| 4.0 * n),
    }
}

/// An RDS instance: its hours (on-demand, or reserved from the usage file) by engine, license
/// and deployment; its storage by type (io1's 100 GB and 1,000 IOPS minimums, gp3's included
/// IOPS); backup storage beyond the free allowance, Performance Insights and CPU credits from
/// usage.
pub(super) fn db_instance(parts: &mut Parts<'_>) {
    let class = parts.text("instance_class").unwrap_or("").to_string();
    // A replica without an engine of its own is priced as MySQL, as Infracost does.
    let mut engine = parts.text("engine").unwrap_or("mysql").to_string();
    if engine == "aurora" {
        engine = "aurora-mysql".into();
    }
    if parts.text("license_model") == Some("bring-your-own-license") {
        engine.push_str(".byol");
    }
    let multi_az = parts.after.get("multi_az") == Some(&Value::Bool(true));
    let (deployment, az) = if multi_az { ("Multi-AZ", "multi-az") } else { ("Single-AZ", "single-az") };
    let hours = parts.usage.get("monthly_hrs").and_then(number).unwrap_or(HOURS_PER_MONTH);
    let reserved = |k: &str| parts.usage.get(k).and_then(Value::as_str).map(str::to_string);
    match (reserved("reserved_instance_term"), reserved("reserved_instance_payment_option")) {
        (Some(term), Some(payment)) => parts.fixed(
            "",
            &format!("Database instance (reserved, {deployment}, {class})"),
            "hours",
            hours,
            format!("aws.rds.reserved.{term}.{payment}.{engine}.{az}.{class}"),
        ),
        _ => parts.fixed(
            "",
            &format!("Database instance (on-demand, {deployment}, {class})"),
            "hours",
            hours,
            format!("aws.rds.{engine}.{az}.{class}"),
        ),
    }
    let iops = parts.number("iops");
    let kind = parts
        .text("storage_type")
        .map(str::to_string)
        .unwrap_or_else(|| if iops.is_some() { "io1".to_string() } else { "gp2".to_string() });
    let mut gb = parts.number("allocated_storage").unwrap_or(20.0);
    let name = match kind.as_str() {
        "standard" => "Storage (magnetic)".to_string(),
        "io1" | "io2" => format!("Storage (provisioned IOPS SSD, {kind})"),
        other => format!("Storage (general purpose SSD, {other})"),
    };
    if matches!(kind.as_str(), "io1" | "io2") {
        gb = gb.max(100.0);
    }
    parts.fixed("", &name, "GB", gb, format!("aws.rds.storage.{kind}.{az}"));
    match kind.as_str() {
        "io1" | "io2" => {
            let iops = iops.unwrap_or(1000.0).max(1000.0);
            parts.fixed("", "Provisioned IOPS", "IOPS", iops, format!("aws.rds.iops.{kind}.{az}"));
        }
        "gp3" => {
            // gp3 includes 3,000 IOPS below 400 GB and 12,000 from 400 GB.
            let included = if gb < 400.0 { 3000.0 } else { 12000.0 };
            if let Some(extra) = iops.map(|i| i - included).filter(|e| *e > 0.0) {
                let label = if gb < 400.0 { "3,000" } else { "12,000" };
                parts.fixed(
                    "",
                    &format!("Provisioned GP3 IOPS (above {label})"),
                    "IOPS",
                    extra,
                    format!("aws.rds.iops.gp3.{az}"),
                );
            }
        }
        "standard" => parts.usage(
            "",
            "I/O requests",
            "1M requests",
            "monthly_standard_io_requests",
            1e6,
            "aws.rds.io_requests".into(),
        ),
        _ => {}
    }
    let retention = parts.number("backup_retention_period").unwrap_or(0.0);
    if retention > 0.0 || parts.usage.contains_key("additional_backup_storage_gb") {
        let family = if engine.starts_with("aurora") { "aurora" } else { "rds" };
        parts.usage(
            "",
            "Additional backup storage",
            "GB",
            "additional_backup_storage_gb",
            1.0,
            format!("aws.rds.backup_storage.{family}"),
        );
    }
    let vcpus = vcpus(&class);
    if parts.after.get("performance_insights_enabled") == Some(&Value::Bool(true)) {
        // Retention beyond the free 7 days is billed per vCPU-month.
        if parts.number("performance_insights_retention_period").is_some_and(|d| d > 7.0) {
            parts.push(
                "",
                format!("Performance Insights Long Term Retention ({class})"),
                "vCPU-month",
                vcpus,
                format!("aws.rds.performance_insights.retention.{}", class.split('.').nth(1).unwrap_or("")),
                false,
            );
        }
        parts.usage(
            "",
            "Performance Insights API",
            "1000 requests",
            "monthly_additional_performance_insights_requests",
            1000.0,
            "aws.rds.performance_insights.api".into(),
        );
    }
    let family = class.split('.').nth(1).unwrap_or("");
    if family.starts_with('t')
        && let Some(hours) = parts.usage.get("monthly_cpu_credit_hrs").and_then(number)
    {
        parts.push(
            "",
            "CPU credits".into(),
            "vCPU-hours",
            vcpus.map(|v| hours * v),
            "aws.rds.cpu_credits".into(),
            true,
        );
    }
}

/// Lines of one S3 storage class: its name, the usage key of each line's quantity, the unit,
/// and how many of the usage's units one unit is.
type S3Line = (&'static str, &'static str, &'static str, f64);

const S3_REQUESTS: [S3Line; 2] = [
    ("PUT, COPY, POST, LIST requests", "monthly_tier_1_requests", "1k requests", 1000.0),
    ("GET, SELECT, and all other requests", "monthly_tier_2_requests", "1k requests", 1000.0),
];
const S3_SELECT: [S3Line; 2] = [
    ("Select data scanned", "monthly_select_data_scanned_gb", "GB", 1.0),
    ("Select data returned", "monthly_select_data_returned_gb", "GB", 1.0),
];
const S3_TRANSITION: S3Line = ("Lifecycle transition", "monthly_lifecycle_transition_requests", "1k requests", 1000.0);
const S3_RETRIEVALS: S3Line = ("Retrievals", "monthly_data_retrieval_gb", "GB", 1.0);

/// The storage classes of S3 (their group name and usage-file section) and what each bills.
fn s3_classes() -> Vec<(&'static str, &'static str, Vec<S3Line>)> {
    let storage: S3Line = ("Storage", "storage_gb", "GB", 1.0);
    let infrequent = || {
        let mut lines = vec![storage];
        lines.extend(S3_REQUESTS);
        lines.push(S3_TRANSITION);
        lines.push(S3_RETRIEVALS);
        lines.extend(S3_SELECT);
        lines
    };
    let standard = [vec![storage], S3_REQUESTS.to_vec(), S3_SELECT.to_vec()].concat();
    let intelligent = [
        vec![
            ("Storage (frequent access)", "frequent_access_storage_gb", "GB", 1.0),
            ("Storage (infrequent access)", "infrequent_access_storage_gb", "GB", 1.0),
            ("Storage (archive access)", "archive_access_storage_gb", "GB", 1.0),
            ("Storage (deep archive access)", "deep_archive_access_storage_gb", "GB", 1.0),
            ("Monitoring and automation", "monitored_objects", "1k objects", 1000.0),
        ],
        S3_REQUESTS.to_vec(),
        vec![S3_TRANSITION],
        S3_SELECT.to_vec(),
        vec![("Early delete (within 30 days)", "early_delete_gb", "GB", 1.0)],
    ]
    .concat();
    // Both Glacier classes: storage, requests, transitions and standard retrievals, then their own.
    let archive = |own: Vec<S3Line>| {
        let mut lines = vec![storage];
        lines.extend(S3_REQUESTS);
        lines.push(S3_TRANSITION);
        lines.push((
            "Retrieval requests (standard)",
            "monthly_standard_data_retrieval_requests",
            "1k requests",
            1000.0,
        ));
        lines.push(("Retrievals (standard)", "monthly_standard_data_retrieval_gb", "GB", 1.0));
        lines.extend(own);
        lines
    };
    let glacier = archive(vec![
        ("Select data scanned (standard)", "monthly_standard_select_data_scanned_gb", "GB", 1.0),
        ("Select data returned (standard)", "monthly_standard_select_data_returned_gb", "GB", 1.0),
        ("Retrieval requests (expedited)", "monthly_expedited_data_retrieval_requests", "1k requests", 1000.0),
        ("Retrievals (expedited)", "monthly_expedited_data_retrieval_gb", "GB", 1.0),
        ("Select data scanned (expedited)", "monthly_expedited_select_data_scanned_gb", "GB", 1.0),
        ("Select data returned (expedited)", "monthly_expedited_select_data_returned_gb", "GB", 1.0),
        ("Select data scanned (bulk)", "monthly_bulk_select_data_scanned_gb", "GB", 1.0),
        ("Select data returned (bulk)", "monthly_bulk_select_data_returned_gb", "GB", 1.0),
        ("Early delete (within 90 days)", "early_delete_gb", "GB", 1.0),
    ]);
    let deep_archive = archive(vec![
        ("Retrieval requests (bulk)", "monthly_bulk_data_retrieval_requests", "1k requests", 1000.0),
        ("Retrievals (bulk)", "monthly_bulk_data_retrieval_gb", "GB", 1.0),
        ("Early delete (within 180 days)", "early_delete_gb", "GB", 1.0),
    ]);
    vec![
        ("Standard", "standard", standard),
        ("Intelligent tiering", "intelligent_tiering", intelligent),
        ("Standard - infrequent access", "standard_infrequent_access", infrequent()),
        ("One zone - infrequent access", "one_zone_infrequent_access", infrequent()),
        ("Glacier flexible retrieval", "glacier_flexible_retrieval", glacier),
        ("Glacier deep archive", "glacier_deep_archive", deep_archive),
    ]
}

/// An S3 bucket: what it stores and serves is usage, per storage class (the usage file's
/// `standard`, `intelligent_tiering`... sections). Standard is always listed; another class
/// when the usage file gives it.
pub(super) fn s3_bucket(parts: &mut Parts<'_>) {
    for (group, section, lines) in s3_classes() {
        let usage = parts.usage.get(section).and_then(Value::as_object).cloned();
        if usage.is_none() && section != "standard" {
            continue;
        }
        for (name, key, unit, per) in lines {
            let quantity = usage.as_ref().and_then(|u| u.get(key)).and_then(number).map(|q| q / per);
            parts.push(group, name.into(), unit, quantity, format!("aws.s3.{section}.{key}"), true);
        }
    }
}

/// A Lambda function: requests, and GB-seconds of duration (requests × duration × memory) in
/// AWS's tiers (x86: 6B, 9B, then the rest; Arm: 7.5B, 11.25B, then the rest); ephemeral
/// storage beyond the free 512 MB.
pub(super) fn lambda_function(parts: &mut Parts<'_>) {
    let arm = parts
        .after
        .get("architectures")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|v| v.as_str() == Some("arm64")));
    let arch = if arm { "arm64" } else { "x86_64" };
    let memory_gb = parts.number("memory_size").unwrap_or(128.0) / 1024.0;
    let storage_mb =
        blocks(parts.after, "ephemeral_storage").first().and_then(|s| s.get("size")).and_then(number).unwrap_or(512.0);
    let requests = parts.usage.get("monthly_requests").and_then(number);
    let duration_ms = parts.usage.get("request_duration_ms").and_then(number);
    parts.push("", "Requests".into(), "1M requests", requests.map(|r| r / 1e6), "aws.lambda.requests".into(), true);
    let seconds = requests.zip(duration_ms).map(|(r, ms)| r * ms / 1000.0);
    if seconds.is_none() || storage_mb > 512.0 {
        parts.push(
            "",
            "Ephemeral storage".into(),
            "GB-seconds",
            seconds.map(|s| s * (storage_mb - 512.0) / 1024.0),
            format!("aws.lambda.ephemeral_storage.{arch}"),
            true,
        );
    }
    let (tiers, names): ([f64; 2], [&str; 3]) = if arm {
        ([7.5e9, 11.25e9], ["first 7.5B", "next 11.25B", "over 18.75B"])
    } else {
        ([6e9, 9e9], ["first 6B", "next 9B", "over 15B"])
    };
    let Some(total) = seconds.map(|s| s * memory_gb) else {
        parts.push(
            "",
            format!("Duration ({})", names[0]),
            "GB-seconds",
            None,
            format!("aws.lambda.duration.{arch}.tier1"),
            true,
        );
        return;
    };
    let mut left = total;
    for (i, name) in names.iter().enumerate() {
        let take = if i < 2 { left.min(tiers[i]) } else { left };
        if take <= 0.0 && i > 0 {
            break;
        }
        parts.push(
            "",
            format!("Duration ({name})"),
            "GB-seconds",
            Some(take),
            format!("aws.lambda.duration.{arch}.tier{}", i + 1),
            true,
        );
        left -= take;
    }
}
