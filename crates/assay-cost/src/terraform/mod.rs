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

mod aws;
mod azure;
mod google;
use serde::Serialize;
use serde_json::Value;

/// Hours in Infracost's month.
pub const HOURS_PER_MONTH: f64 = 730.0;

/// Resource types assay prices.
pub const PRICED_TYPES: [&str; 34] = [
    "aws_instance",
    "aws_autoscaling_group",
    "aws_ebs_volume",
    "aws_nat_gateway",
    "aws_eks_node_group",
    "aws_lb",
    "aws_alb",
    "aws_db_instance",
    "aws_s3_bucket",
    "aws_lambda_function",
    "google_compute_instance",
    "google_container_cluster",
    "google_container_node_pool",
    "google_compute_disk",
    "google_storage_bucket",
    "google_sql_database_instance",
    "google_cloudfunctions_function",
    "google_cloudfunctions2_function",
    "google_compute_router_nat",
    "google_compute_forwarding_rule",
    "google_compute_global_forwarding_rule",
    "azurerm_linux_virtual_machine",
    "azurerm_windows_virtual_machine",
    "azurerm_kubernetes_cluster",
    "azurerm_kubernetes_cluster_node_pool",
    "azurerm_managed_disk",
    "azurerm_storage_account",
    "azurerm_postgresql_flexible_server",
    "azurerm_mysql_flexible_server",
    "azurerm_linux_function_app",
    "azurerm_windows_function_app",
    "azurerm_function_app",
    "azurerm_nat_gateway",
    "azurerm_lb",
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
    /// What the change does to it (`create`, `update`, `replace`, `delete`, `no-op`...).
    pub action: String,
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

/// Attributes by which a resource belongs to another that knows its region (a node pool to its
/// cluster).
const PARENT_LINKS: [&str; 4] = ["kubernetes_cluster_id", "cluster", "cluster_name", "cluster_id"];

/// The region of a resource of a plan: its own `region` or `location`, its availability zone
/// without the zone letter, else the region of the cluster it belongs to, else its provider
/// configuration's region.
pub fn region_of(plan: &Plan, change: &ResourceChange) -> Option<String> {
    // Only attributes the resource has can refer to its cluster.
    let has =
        |k: &str| change.after.as_ref().is_some_and(|a| a.get(k).is_some()) || change.after_unknown.get(k).is_some();
    own_region(change)
        .or_else(|| {
            PARENT_LINKS
                .iter()
                .filter(|l| has(l))
                .find_map(|link| plan.referenced(change, &[link]).and_then(own_region))
        })
        .or_else(|| {
            let provider = change.kind.split('_').next().unwrap_or("");
            let config = plan.document.pointer("/configuration/provider_config")?;
            [provider.to_string(), format!("{provider}.default")].iter().find_map(|key| {
                config
                    .get(key)
                    .and_then(|p| p.pointer("/expressions/region/constant_value"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
        })
}

/// A zone without its zone letter: us-east-1a → us-east-1, europe-west4-b → europe-west4.
fn zone_region(zone: &str) -> String {
    zone.trim_end_matches(|c: char| c.is_ascii_lowercase()).trim_end_matches('-').to_string()
}

fn own_region(change: &ResourceChange) -> Option<String> {
    let after = change.after.as_ref();
    let text = |k: &str| after.and_then(|a| a.get(k)).and_then(Value::as_str).map(str::to_string);
    if let Some(r) = text("region") {
        return Some(r);
    }
    if let Some(zone) = text("availability_zone").or_else(|| text("zone")) {
        return Some(zone_region(&zone));
    }
    let location = text("location")?;
    if change.kind.starts_with("google_") {
        // A Google location is a region or a zone (us-central1-a).
        let zonal = location.rsplit_once('-').is_some_and(|(_, z)| z.len() == 1);
        return Some(if zonal { zone_region(&location) } else { location });
    }
    // Azure writes locations either way: "West Europe" is westeurope.
    Some(location.to_lowercase().replace(' ', ""))
}

/// Prices one resource change of a plan as it will be after the change (`after`); a deletion
/// costs nothing after.
pub fn price(plan: &Plan, change: &ResourceChange, usage: &Usage, catalog: &PriceCatalog) -> ResourceCost {
    let region = region_of(plan, change);
    let mut cost = ResourceCost {
        address: change.address.clone(),
        kind: change.kind.clone(),
        action: change.action.as_str().to_string(),
        region: region.clone(),
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
    let mut parts = Parts { plan, change, after, usage: used, components: Vec::new() };
    match change.kind.as_str() {
        "aws_instance" => aws::instance(&mut parts),
        "aws_ebs_volume" => {
            let size = parts.number("size");
            aws::ebs(&mut parts, "", after, size.unwrap_or(0.0), "gp2");
        }
        "aws_nat_gateway" => {
            parts.fixed("", "NAT gateway", "hours", HOURS_PER_MONTH, "aws.nat_gateway".into());
            parts.usage("", "Data processed", "GB", "monthly_data_processed_gb", 1.0, "aws.nat_gateway.data".into());
        }
        "aws_eks_node_group" => aws::eks_node_group(&mut parts),
        "aws_lb" | "aws_alb" => aws::load_balancer(&mut parts, &change.kind),
        "aws_autoscaling_group" => aws::autoscaling_group(&mut parts),
        "aws_db_instance" => aws::db_instance(&mut parts),
        "aws_s3_bucket" => aws::s3_bucket(&mut parts),
        "aws_lambda_function" => aws::lambda_function(&mut parts),
        "google_compute_instance" => google::compute_instance(&mut parts),
        "google_compute_disk" => google::compute_disk(&mut parts),
        "google_storage_bucket" => google::storage_bucket(&mut parts),
        "google_sql_database_instance" => google::sql_instance(&mut parts),
        "google_cloudfunctions_function" | "google_cloudfunctions2_function" => google::cloud_function(&mut parts),
        "google_compute_router_nat" => google::router_nat(&mut parts),
        "google_compute_forwarding_rule" | "google_compute_global_forwarding_rule" => {
            google::forwarding_rule(&mut parts)
        }
        "azurerm_managed_disk" => azure::managed_disk(&mut parts),
        "azurerm_storage_account" => azure::storage_account(&mut parts),
        "azurerm_postgresql_flexible_server" => azure::flexible_server(&mut parts, "postgresql"),
        "azurerm_mysql_flexible_server" => azure::flexible_server(&mut parts, "mysql"),
        "azurerm_linux_function_app" | "azurerm_windows_function_app" | "azurerm_function_app" => {
            azure::function_app(&mut parts)
        }
        "azurerm_nat_gateway" => azure::nat_gateway(&mut parts),
        "azurerm_lb" => azure::load_balancer(&mut parts),
        "google_container_cluster" => google::container_cluster(&mut parts),
        "google_container_node_pool" => google::container_node_pool(&mut parts),
        "azurerm_linux_virtual_machine" => azure::vm(&mut parts, false),
        "azurerm_windows_virtual_machine" => azure::vm(&mut parts, true),
        "azurerm_kubernetes_cluster" => azure::kubernetes_cluster(&mut parts),
        "azurerm_kubernetes_cluster_node_pool" => azure::kubernetes_node_pool(&mut parts),
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
    let prices = catalog.regions.get(&region);
    let mut missing: Vec<String> = Vec::new();
    for mut c in parts.components {
        c.unit_price = prices.and_then(|p| p.products.get(&c.price_key)).copied();
        match (c.quantity, c.unit_price) {
            (Some(q), Some(p)) => {
                c.monthly = Some(q * c.factor * p);
                cost.monthly += q * c.factor * p;
            }
            (_, None) => {
                if !missing.contains(&c.price_key) {
                    missing.push(c.price_key.clone());
                }
            }
            (None, Some(_)) => {}
        }
        cost.components.push(c);
    }
    if !missing.is_empty() {
        cost.unpriced.push(format!("no price in {region} for {}", missing.join(", ")));
    }
    cost
}

/// Prices every resource change of the plans: its cost after the change, and before it for
/// updates, replacements and deletions (from `before`).
pub fn price_plans(plans: &[&Plan], usage: &Usage, catalog: &PriceCatalog) -> Vec<(ResourceCost, Action)> {
    let mut out = Vec::new();
    for plan in plans {
        for change in plan.changes.iter().filter(|c| c.mode == "managed") {
            out.push((price(plan, change, usage, catalog), change.action));
        }
    }
    out
}

/// Components being built for one resource.
struct Parts<'a> {
    plan: &'a Plan,
    change: &'a ResourceChange,
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
            let cost = price(plan, change, &usage, &estate.prices);
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
            // A resource with nothing to bill (a Basic load balancer) is free, not unpriced.
            let free = cost.components.is_empty() && cost.unpriced.is_empty();
            let priced = free || cost.components.iter().any(|c| c.monthly.is_some());
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
