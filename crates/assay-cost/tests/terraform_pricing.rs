//! Pricing of Terraform resources read from `.tf` files: what a resource takes from the
//! resources it refers to, usage tiers, and what is not priced.

use assay_cost::terraform::{self, ResourceCost};
use assay_estate::PriceCatalog;
use assay_estate::pricing::RegionPrices;
use assay_estate::terraform::{Configuration, eval};

fn priced(tf: &str, usage: &str, prices: &[(&str, &str, f64)]) -> Vec<ResourceCost> {
    let mut config = Configuration::default();
    assert!(config.add_file("t/main.tf", tf).is_empty());
    let (plan, _) = eval::synthesize(&config, "t");
    let plan = plan.expect("a plan");
    let usage = terraform::parse_usage(usage).expect("usage");
    let mut catalog = PriceCatalog::default();
    for (region, key, price) in prices {
        let r: &mut RegionPrices = catalog.regions.entry((*region).to_string()).or_default();
        r.products.insert((*key).to_string(), *price);
    }
    terraform::price_plans(&[&plan], &usage, &catalog).into_iter().map(|(c, _)| c).collect()
}

fn find<'a>(costs: &'a [ResourceCost], address: &str) -> &'a ResourceCost {
    costs.iter().find(|c| c.address == address).expect("resource priced")
}

#[test]
fn a_node_pool_is_priced_in_its_clusters_region_with_its_launch_template() {
    let tf = r#"
resource "azurerm_kubernetes_cluster" "ml" {
  location = "West Europe"
  default_node_pool {
    name       = "system"
    vm_size    = "Standard_D2s_v3"
    node_count = 2
  }
}
resource "azurerm_kubernetes_cluster_node_pool" "gpu" {
  kubernetes_cluster_id = azurerm_kubernetes_cluster.ml.id
  vm_size               = "Standard_NC6s_v3"
  node_count            = 3
  os_disk_type          = "Ephemeral"
}
resource "aws_launch_template" "trainers" {
  instance_type = "g5.xlarge"
  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size = 200
      volume_type = "gp3"
    }
  }
}
resource "aws_eks_node_group" "trainers" {
  cluster_name = "ml"
  scaling_config {
    desired_size = 4
  }
  launch_template {
    id = aws_launch_template.trainers.id
  }
}
provider "aws" {
  region = "eu-west-1"
}
"#;
    let prices = [
        ("westeurope", "azure.vm.linux.standard_nc6s_v3", 3.06),
        ("westeurope", "azure.vm.linux.standard_d2s_v3", 0.1),
        ("westeurope", "azure.disk.P10.LRS", 19.71),
        ("eu-west-1", "aws.ec2.g5.xlarge", 1.123),
        ("eu-west-1", "aws.ebs.gp3", 0.088),
    ];
    let costs = priced(tf, "version: 0.1\n", &prices);

    // The pool has no location of its own: its cluster's, through kubernetes_cluster_id.
    let pool = find(&costs, "azurerm_kubernetes_cluster_node_pool.gpu");
    assert_eq!(pool.region.as_deref(), Some("westeurope"));
    assert!(pool.unpriced.is_empty(), "{:?}", pool.unpriced);
    assert!((pool.monthly - 3.0 * 730.0 * 3.06).abs() < 1e-6, "{}", pool.monthly);
    // An ephemeral OS disk costs nothing; the default pool's premium-capable size gets a P10.
    assert_eq!(pool.components.len(), 1);
    let cluster = find(&costs, "azurerm_kubernetes_cluster.ml");
    let disk = cluster.components.iter().find(|c| c.group == "default_node_pool/os_disk").expect("os disk");
    assert_eq!((disk.name.as_str(), disk.quantity), ("Storage (P10, LRS)", Some(2.0)));

    // The node group's machines and disks come from the template it refers to, per node.
    let group = find(&costs, "aws_eks_node_group.trainers");
    let hours = group.components.iter().find(|c| c.name.contains("g5.xlarge")).expect("instance usage");
    assert_eq!((hours.group.as_str(), hours.quantity), ("aws_launch_template.trainers", Some(4.0 * 730.0)));
    let storage = group.components.iter().find(|c| c.unit == "GB").expect("storage");
    assert_eq!(storage.quantity, Some(800.0));
    assert!((group.monthly - (4.0 * 730.0 * 1.123 + 800.0 * 0.088)).abs() < 1e-6);
    // A launch template on its own is not priced, and says so.
    let template = find(&costs, "aws_launch_template.trainers");
    assert!(template.unpriced[0].contains("not priced"), "{:?}", template.unpriced);
}

#[test]
fn usage_tiers_and_what_depends_on_usage() {
    let tf = r#"
provider "aws" {
  region = "us-east-1"
}
resource "aws_lambda_function" "embed" {
  memory_size   = 2048
  architectures = ["arm64"]
}
resource "aws_lambda_function" "idle" {
}
resource "aws_db_instance" "features" {
  engine            = "postgres"
  instance_class    = "db.r6g.2xlarge"
  storage_type      = "io1"
  allocated_storage = 50
  multi_az          = true
}
"#;
    let usage = "version: 0.1\nresource_usage:\n  aws_lambda_function.embed:\n    monthly_requests: 10000000000\n    request_duration_ms: 1000\n";
    let costs = priced(tf, usage, &[]);
    let embed = find(&costs, "aws_lambda_function.embed");
    let tiers: Vec<(&str, Option<f64>)> = embed
        .components
        .iter()
        .filter(|c| c.name.starts_with("Duration"))
        .map(|c| (c.name.as_str(), c.quantity))
        .collect();
    // 10B requests × 1 s × 2 GB = 20B GB-seconds: 7.5B, 11.25B, then 1.25B.
    assert_eq!(
        tiers,
        [
            ("Duration (first 7.5B)", Some(7.5e9)),
            ("Duration (next 11.25B)", Some(11.25e9)),
            ("Duration (over 18.75B)", Some(1.25e9))
        ]
    );
    let idle = find(&costs, "aws_lambda_function.idle");
    assert!(idle.components.iter().all(|c| c.quantity.is_none() && c.usage_based));
    // Nothing in the catalog: every component is listed as unpriced, never a silent zero.
    assert_eq!(idle.monthly, 0.0);
    assert!(idle.unpriced.iter().any(|u| u.contains("aws.lambda.requests")), "{:?}", idle.unpriced);

    let db = find(&costs, "aws_db_instance.features");
    let lines: Vec<(&str, Option<f64>, &str)> =
        db.components.iter().map(|c| (c.name.as_str(), c.quantity, c.price_key.as_str())).collect();
    assert_eq!(
        lines,
        [
            (
                "Database instance (on-demand, Multi-AZ, db.r6g.2xlarge)",
                Some(730.0),
                "aws.rds.postgres.multi-az.db.r6g.2xlarge"
            ),
            // io1: at least 100 GB and 1,000 IOPS.
            ("Storage (provisioned IOPS SSD, io1)", Some(100.0), "aws.rds.storage.io1.multi-az"),
            ("Provisioned IOPS", Some(1000.0), "aws.rds.iops.io1.multi-az"),
        ]
    );
}

#[test]
fn google_and_azure_storage_databases_networks_and_functions() {
    let tf = r#"
provider "google" {
  region = "europe-west4"
}
resource "google_compute_disk" "data" {
  type = "pd-ssd"
  size = 500
}
resource "google_compute_disk" "from_image" {
  image = "debian-12"
}
resource "google_storage_bucket" "lake" {
  location      = "europe-west4"
  storage_class = "NEARLINE"
}
resource "google_sql_database_instance" "db" {
  database_version = "POSTGRES_16"
  settings {
    tier              = "db-custom-4-16384"
    availability_type = "REGIONAL"
    disk_size         = 200
  }
}
resource "google_cloudfunctions_function" "embed" {
  available_memory_mb = 1024
}
resource "google_compute_router_nat" "nat" {
  region = "europe-west4"
}
resource "azurerm_managed_disk" "scratch" {
  location             = "westeurope"
  storage_account_type = "Premium_LRS"
  disk_size_gb         = 1024
}
resource "azurerm_postgresql_flexible_server" "pg" {
  location   = "westeurope"
  sku_name   = "GP_Standard_D4s_v3"
  storage_mb = 131072
  high_availability {
    mode = "ZoneRedundant"
  }
}
resource "azurerm_lb" "basic" {
  location = "westeurope"
}
resource "azurerm_windows_virtual_machine" "gpu" {
  location = "westeurope"
  size     = "Standard_NC6s_v3"
  os_disk {
    storage_account_type = "Premium_LRS"
    disk_size_gb         = 256
  }
}
resource "azurerm_lb" "standard" {
  location = "westeurope"
  sku      = "Standard"
}
"#;
    let usage = "version: 0.1\nresource_usage:\n  google_storage_bucket.lake:\n    storage_gb: 2000\n    monthly_class_a_operations: 50000\n  google_cloudfunctions_function.embed:\n    monthly_function_invocations: 2000000\n    request_duration_ms: 500\n  google_compute_router_nat.nat:\n    assigned_vms: 12\n";
    let costs =
        priced(tf, usage, &[("europe-west4", "gcp.disk.pd-ssd", 0.187), ("westeurope", "azure.lb.standard", 0.025)]);
    let lines = |address: &str| -> Vec<(String, Option<f64>, String)> {
        find(&costs, address).components.iter().map(|c| (c.name.clone(), c.quantity, c.price_key.clone())).collect()
    };
    assert_eq!(
        lines("google_compute_disk.data"),
        [("SSD provisioned storage (pd-ssd)".into(), Some(500.0), "gcp.disk.pd-ssd".into())]
    );
    assert!((find(&costs, "google_compute_disk.data").monthly - 500.0 * 0.187).abs() < 1e-9);
    // Sized by its image: not known without a plan, and said so.
    assert_eq!(lines("google_compute_disk.from_image")[0].1, None);
    let bucket = lines("google_storage_bucket.lake");
    assert_eq!(bucket[0], ("Storage (nearline)".into(), Some(2000.0), "gcp.storage.nearline.storage_gb".into()));
    assert_eq!(bucket[1].1, Some(5.0), "{bucket:?}");
    assert_eq!(bucket[3].1, None, "retrieval depends on usage: {bucket:?}");
    let db = lines("google_sql_database_instance.db");
    assert_eq!(
        db[0],
        (
            "SQL instance (postgres, regional, db-custom-4-16384)".into(),
            Some(730.0),
            "gcp.sql.postgres.regional.db-custom-4-16384".into()
        )
    );
    assert_eq!(db[1], ("Storage (ssd, regional)".into(), Some(200.0), "gcp.sql.storage.ssd.regional".into()));
    // 2M invocations × 0.5 s × 1 GB.
    assert_eq!(lines("google_cloudfunctions_function.embed")[1].1, Some(1_000_000.0));
    assert_eq!(lines("google_compute_router_nat.nat")[0].1, Some(12.0 * 730.0));
    assert_eq!(
        lines("azurerm_managed_disk.scratch"),
        [("Storage (P30, LRS)".into(), Some(1.0), "azure.disk.P30.LRS".into())]
    );
    let pg = lines("azurerm_postgresql_flexible_server.pg");
    assert_eq!(pg[0].1, Some(2.0 * 730.0), "high availability doubles the hours: {pg:?}");
    assert_eq!(pg[1], ("Storage".into(), Some(128.0), "azure.postgresql.storage".into()));
    let win = lines("azurerm_windows_virtual_machine.gpu");
    assert_eq!(
        win[0],
        (
            "Instance usage (Windows, pay as you go, Standard_NC6s_v3)".into(),
            Some(730.0),
            "azure.vm.windows.standard_nc6s_v3".into()
        )
    );
    assert_eq!(win[1].2, "azure.disk.P15.LRS");
    // A Basic load balancer costs nothing; a Standard one its hours.
    assert!(find(&costs, "azurerm_lb.basic").components.is_empty());
    assert!(find(&costs, "azurerm_lb.basic").unpriced.is_empty());
    assert!((find(&costs, "azurerm_lb.standard").monthly - 730.0 * 0.025).abs() < 1e-9);
}
