//! Terraform and OpenTofu in `assay check`: the example estate's `terraform` policies (conftest
//! style, whole plan, and per resource) on a real plan, findings placed at the `.tf` lines that
//! declare the resources (through local modules), drift reported, a change judged against its
//! base in a real Git repository, and broken Terraform named while the rest is still checked.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{Repo, assay, repo_root, stderr};
use serde_json::{Value, json};

fn conformance(rel: &str) -> Option<std::path::PathBuf> {
    let path = repo_root().join("../shared/conformance/terraform").join(rel);
    if path.exists() {
        Some(path)
    } else {
        eprintln!("{} not found: Terraform conformance not run", path.display());
        None
    }
}

fn verdict(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("verdict JSON: {e}\n{}", stderr(out)))
}

/// (object, rule) of every violation whose object is not a Kubernetes object.
fn terraform_findings(v: &Value) -> BTreeSet<(String, String)> {
    v["violations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|x| {
            !x["object"].as_str().unwrap_or("").contains('/') || x["object"].as_str().unwrap_or("").starts_with("plan ")
        })
        .map(|x| {
            (x["object"].as_str().unwrap_or("").to_string(), x["policy"]["rule"].as_str().unwrap_or("").to_string())
        })
        .collect()
}

/// Copies the example estate's policies into `dir` (the Terraform ones and their data).
fn copy_policies(dir: &Path) {
    let from = repo_root().join("examples/estate/policies/terraform");
    for entry in walk(&from) {
        let rel = entry.strip_prefix(&from).expect("inside");
        let to = dir.join("policies/terraform").join(rel);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&entry, &to).expect("copy");
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn the_example_policies_judge_a_real_plan_as_conftest_would() {
    let Some(plan) = conformance("plans/infracost-example_plan.json") else { return };
    let out = assay(
        &repo_root(),
        &["check", "examples/estate", "--format", "json", "--terraform-plan", plan.to_str().unwrap_or("")],
    );
    let v = verdict(&out);
    // What the policies should find, worked out from the plan itself: every created resource
    // that takes tags and has no cost-center tag; every data store outside the EU (the
    // provider's region).
    let document: Value = serde_json::from_str(&std::fs::read_to_string(&plan).expect("plan")).expect("JSON");
    let region = document["configuration"]["provider_config"]["aws"]["expressions"]["region"]["constant_value"]
        .as_str()
        .expect("region");
    let mut expected = BTreeSet::new();
    for rc in document["resource_changes"].as_array().expect("changes") {
        let after = &rc["change"]["after"];
        let address = rc["address"].as_str().expect("address").to_string();
        let tagged = after["tags"].get("cost-center").is_some() || after["tags_all"].get("cost-center").is_some();
        if after.get("tags").is_some() && !tagged {
            expected.insert((address.clone(), "data.terraform.resources.tags.deny".to_string()));
        }
        if rc["type"] == "aws_s3_bucket" && !region.starts_with("eu-") {
            expected.insert((address, "data.terraform.regions.deny".to_string()));
        }
    }
    assert!(expected.len() >= 5, "{expected:?}");
    assert_eq!(terraform_findings(&v), expected, "{:#}", v["violations"]);
    // Each finding points at the resource's place in the plan (no configuration here).
    let text = std::fs::read_to_string(&plan).expect("plan");
    let changes_at = text.find("\"resource_changes\"").expect("resource_changes");
    for x in v["violations"].as_array().into_iter().flatten().filter(|x| x["object"] == "aws_s3_bucket.usage") {
        let at = changes_at + text[changes_at..].find("\"aws_s3_bucket.usage\"").expect("address");
        assert_eq!(x["line"].as_u64(), Some(text[..at].matches('\n').count() as u64 + 1));
        assert_eq!(x["path"], plan.display().to_string());
    }
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

/// A plan in Terraform's format for the estate below: a root module with a GPU instance and a
/// module that makes a bucket.
fn plan(gpu_type: &str, bucket_tags: Value, acl: &str) -> Value {
    let change = |address: &str, module: Option<&str>, kind: &str, name: &str, after: Value| {
        let mut c = json!({
            "address": address, "mode": "managed", "type": kind, "name": name,
            "provider_name": "registry.terraform.io/hashicorp/aws",
            "change": {"actions": ["create"], "before": null, "after": after, "after_unknown": {"id": true},
                       "before_sensitive": false, "after_sensitive": {}}
        });
        if let Some(m) = module {
            c["module_address"] = json!(m);
        }
        c
    };
    json!({
        "format_version": "1.2",
        "terraform_version": "1.9.8",
        "planned_values": {"root_module": {}},
        "resource_changes": [
            change("aws_instance.trainer", None, "aws_instance", "trainer",
                   json!({"instance_type": gpu_type, "ami": "ami-0abcdef", "tags": {"cost-center": "CC-1042"}})),
            change("module.storage.aws_s3_bucket.datasets", Some("module.storage"), "aws_s3_bucket", "datasets",
                   json!({"bucket": "acme-datasets", "acl": acl, "tags": bucket_tags})),
        ],
        "configuration": {
            "provider_config": {"aws": {"name": "aws", "expressions": {"region": {"constant_value": "us-east-1"}}}},
            "root_module": {
                "resources": [{"address": "aws_instance.trainer", "mode": "managed", "type": "aws_instance",
                               "name": "trainer", "provider_config_key": "aws"}],
                "module_calls": {"storage": {"source": "../modules/storage", "module": {"resources": [
                    {"address": "aws_s3_bucket.datasets", "mode": "managed", "type": "aws_s3_bucket",
                     "name": "datasets", "provider_config_key": "aws"}]}}}
            }
        }
    })
}

const ROOT_TF: &str = r#"terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

provider "aws" {
  region = "us-east-1"
}

module "storage" {
  source = "../modules/storage"
}

resource "aws_instance" "trainer" {
  ami           = "ami-0abcdef"
  instance_type = "p5.48xlarge"
  tags = {
    "cost-center" = "CC-1042"
  }
}
"#;

const MODULE_TF: &str = r#"# Datasets for training.
resource "aws_s3_bucket" "datasets" {
  bucket = "acme-datasets"
  acl    = "public-read"
}
"#;

fn line_of(text: &str, needle: &str) -> u64 {
    let at = text.find(needle).expect("needle");
    text[..at].matches('\n').count() as u64 + 1
}

#[test]
fn a_pull_request_is_judged_at_the_tf_lines_with_new_and_unchanged_findings() {
    let repo = Repo::new();
    copy_policies(repo.path());
    repo.write("assay.yaml", "name: infra\n");
    repo.write("terraform/prod/main.tf", ROOT_TF.replace("p5.48xlarge", "g5.xlarge").as_str());
    repo.write("terraform/modules/storage/main.tf", &MODULE_TF.replace("public-read", "private"));
    let base_plan = plan("g5.xlarge", json!({"cost-center": "CC-1042"}), "private");
    repo.write("terraform/prod/plan.json", &serde_json::to_string_pretty(&base_plan).expect("json"));
    let base = repo.commit("base: an approved GPU and a tagged private bucket", None);

    // The change: an unapproved GPU type, and the bucket public and untagged.
    repo.write("terraform/prod/main.tf", ROOT_TF);
    repo.write("terraform/modules/storage/main.tf", MODULE_TF);
    let head_plan = plan("p5.48xlarge", Value::Null, "public-read");
    repo.write("terraform/prod/plan.json", &serde_json::to_string_pretty(&head_plan).expect("json"));
    repo.commit("a bigger GPU, a public bucket", None);

    let out = assay(repo.path(), &["check", ".", "--rev", "HEAD", "--base", &base, "--format", "json"]);
    let v = verdict(&out);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let find = |rule: &str| {
        v["violations"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|x| x["policy"]["rule"] == rule)
            .unwrap_or_else(|| panic!("no {rule} in {:#}", v["violations"]))
            .clone()
    };
    let gpu = find("data.terraform.resources.gpus.deny");
    assert_eq!(gpu["object"], "aws_instance.trainer");
    assert_eq!(gpu["path"], "terraform/prod/main.tf");
    assert_eq!(gpu["line"].as_u64(), Some(line_of(ROOT_TF, "resource \"aws_instance\"")));
    assert_eq!(gpu["status"], "new");
    assert!(gpu["message"].as_str().unwrap_or("").contains("p5.48xlarge"), "{gpu:#}");
    for rule in ["data.terraform.resources.buckets.deny", "data.terraform.resources.tags.deny"] {
        let bucket = find(rule);
        assert_eq!(bucket["object"], "module.storage.aws_s3_bucket.datasets");
        assert_eq!(bucket["path"], "terraform/modules/storage/main.tf");
        assert_eq!(bucket["line"].as_u64(), Some(line_of(MODULE_TF, "resource")));
        assert_eq!(bucket["status"], "new");
    }
    // The bucket was already in us-east-1 at the base: that denial is not this change's.
    let region = find("data.terraform.regions.deny");
    assert_eq!(region["object"], "module.storage.aws_s3_bucket.datasets");
    assert_eq!(region["status"], "unchanged");
    assert_eq!(v["summary"]["new"], 3);

    // Every rendering carries the findings at their lines.
    let table = assay(repo.path(), &["check", ".", "--rev", "HEAD", "--base", &base]);
    let text = common::stdout(&table);
    assert!(text.contains("terraform/modules/storage/main.tf"), "{text}");
    assert!(text.contains("module.storage.aws_s3_bucket.datasets is public (acl public-read)"), "{text}");
    let sarif = assay(repo.path(), &["check", ".", "--rev", "HEAD", "--base", &base, "--format", "sarif"]);
    let sarif: Value = serde_json::from_slice(&sarif.stdout).expect("SARIF");
    let located: BTreeSet<(String, u64)> = sarif["runs"][0]["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let l = &r["locations"][0]["physicalLocation"];
            (
                l["artifactLocation"]["uri"].as_str().unwrap_or("").to_string(),
                l["region"]["startLine"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert!(
        located.contains(&("terraform/prod/main.tf".into(), line_of(ROOT_TF, "resource \"aws_instance\""))),
        "{located:?}"
    );
    let markdown = assay(repo.path(), &["check", ".", "--rev", "HEAD", "--base", &base, "--format", "markdown"]);
    assert!(common::stdout(&markdown).contains("p5.48xlarge"), "{}", common::stdout(&markdown));
}

#[test]
fn drift_found_by_a_plan_is_reported_with_the_fields_changed() {
    let Some(drift) = conformance("opentofu-show-json/moved-drift") else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("terraform/app")).expect("mkdir");
    std::fs::copy(drift.join("output.json"), dir.path().join("terraform/app/plan.json")).expect("copy");
    std::fs::copy(drift.join("main.tf"), dir.path().join("terraform/app/main.tf")).expect("copy");
    let out = assay(dir.path(), &["check", ".", "--format", "json"]);
    let v = verdict(&out);
    let warning = v["diagnostics"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["message"].as_str().unwrap_or("").contains("changed outside Terraform"))
        .unwrap_or_else(|| panic!("no drift warning in {:#}", v["diagnostics"]));
    let message = warning["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with("test_instance.should_refresh_with_move (moved from test_instance.should_refresh)"),
        "{message}"
    );
    assert!(message.ends_with(": ami"), "{message}");
    // The warning points at the block of the resource's new address in main.tf.
    let tf = std::fs::read_to_string(drift.join("main.tf")).expect("main.tf");
    assert_eq!(warning["path"], "terraform/app/main.tf");
    assert_eq!(warning["line"].as_u64(), Some(line_of(&tf, "\"should_refresh_with_move\"")));
}

#[test]
fn broken_terraform_is_named_and_the_rest_is_still_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_policies(dir.path());
    let write = |rel: &str, text: &str| {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    };
    write(
        "terraform/broken/plan.json",
        "{\n  \"format_version\": \"1.2\",\n  \"resource_changes\": [\n    {\"address\": \n",
    );
    write("terraform/future/plan.json", r#"{"format_version": "2.0", "resource_changes": []}"#);
    write("terraform/syntax/main.tf", "resource \"aws_s3_bucket\" \"a\" {\n  bucket = \"x\"\n  acl = \n}\n");
    write(
        "terraform/good/plan.json",
        &serde_json::to_string_pretty(&plan("p5.48xlarge", json!({"cost-center": "CC-1"}), "private")).expect("json"),
    );
    let out = assay(dir.path(), &["check", ".", "--format", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let v = verdict(&out);
    let diagnostics = v["diagnostics"].as_array().cloned().unwrap_or_default();
    let at = |path: &str| {
        diagnostics
            .iter()
            .find(|d| d["path"] == path && d["severity"] == "error")
            .unwrap_or_else(|| panic!("nothing about {path} in {diagnostics:#?}"))
            .clone()
    };
    let broken = at("terraform/broken/plan.json");
    assert_eq!(broken["line"], 5, "{broken:#}");
    assert!(broken["message"].as_str().unwrap_or("").contains("invalid JSON"), "{broken:#}");
    assert!(
        at("terraform/future/plan.json")["message"]
            .as_str()
            .unwrap_or("")
            .contains("format_version 2.0 is not supported")
    );
    let syntax = at("terraform/syntax/main.tf");
    assert_eq!(syntax["line"], 3, "{syntax:#}");
    assert!(syntax["message"].as_str().unwrap_or("").starts_with("HCL syntax error"), "{syntax:#}");
    // The good plan is still judged.
    assert!(
        terraform_findings(&v).contains(&("aws_instance.trainer".into(), "data.terraform.resources.gpus.deny".into())),
        "{:#}",
        v["violations"]
    );
}

const VARIABLES_TF: &str = r#"variable "region" {
  type = string
}

variable "trainers" {
  type    = number
  default = 1
}

variable "owner" {
  type = string
}
"#;

const MAIN_TF: &str = r#"locals {
  tags = { "cost-center" = "CC-1042", team = "ml" }
}

provider "aws" {
  region = var.region
}

module "storage" {
  source   = "../modules/storage"
  tags     = local.tags
  datasets = ["raw", "curated"]
}

resource "aws_instance" "trainer" {
  count         = var.trainers
  ami           = data.aws_ami.deep_learning.id
  instance_type = "g5.xlarge"
  tags          = merge(local.tags, { Name = "trainer-${count.index}", Owner = var.owner })
}
"#;

const STORAGE_TF: &str = r#"variable "tags" {
  type = map(string)
}

variable "datasets" {
  type = list(string)
}

resource "aws_s3_bucket" "dataset" {
  for_each = toset(var.datasets)
  bucket   = "acme-${each.key}"
  tags     = var.tags
}
"#;

/// The head of the change: a second, unapproved GPU instance and an untagged scratch bucket.
const HEAD_ADDITIONS: &str = r#"
resource "aws_instance" "big_trainer" {
  ami           = "ami-0123456789"
  instance_type = "p5.48xlarge"
  tags          = local.tags
}

resource "aws_s3_bucket" "scratch" {
  bucket = "acme-scratch"
}
"#;

#[test]
fn a_pull_request_without_a_plan_is_judged_from_its_tf_files() {
    let repo = Repo::new();
    copy_policies(repo.path());
    repo.write("terraform/ml/variables.tf", VARIABLES_TF);
    repo.write("terraform/ml/main.tf", MAIN_TF);
    repo.write("terraform/ml/terraform.tfvars", "region = \"eu-west-1\"\ntrainers = 2\n");
    repo.write("terraform/modules/storage/main.tf", STORAGE_TF);
    // List prices (per hour, per GB-month) and a budget for the ML cost center.
    repo.write(
        "pricing/aws.yaml",
        "apiVersion: assay.dev/v1alpha1\nkind: PriceCatalog\nmetadata: {name: aws}\nspec:\n  currency: USD\n  regions:\n    eu-west-1:\n      products: {aws.ec2.g5.xlarge: 1.123, aws.ebs.gp2: 0.11}\n    us-east-1:\n      products: {aws.ec2.g5.xlarge: 1.006, aws.ec2.p5.48xlarge: 98.32, aws.ebs.gp2: 0.10}\n",
    );
    repo.write(
        "budgets/ml.yaml",
        "apiVersion: assay.dev/v1alpha1\nkind: Budget\nmetadata: {name: ml}\nspec:\n  scope:\n    tags: {cost-center: CC-1042}\n  amount: 20000\n  currency: USD\n  period: monthly\n  enforcementAction: deny\n",
    );
    let base = repo.commit("training in eu-west-1", None);
    let main = format!("{MAIN_TF}{HEAD_ADDITIONS}");
    repo.write("terraform/ml/main.tf", &main);
    repo.write("terraform/ml/terraform.tfvars", "region = \"us-east-1\"\ntrainers = 2\n");
    repo.commit("a bigger GPU and a scratch bucket, in us-east-1", None);

    let out = assay(repo.path(), &["check", ".", "--rev", "HEAD", "--base", &base, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = verdict(&out);
    let found: BTreeSet<(String, String, String, u64, String)> = v["violations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| {
            (
                x["object"].as_str().unwrap_or("").to_string(),
                x["policy"]["rule"].as_str().unwrap_or("").to_string(),
                x["path"].as_str().unwrap_or("").to_string(),
                x["line"].as_u64().unwrap_or(0),
                x["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let main_tf = "terraform/ml/main.tf".to_string();
    let storage_tf = "terraform/modules/storage/main.tf".to_string();
    let big = line_of(&main, "resource \"aws_instance\" \"big_trainer\"");
    let scratch = line_of(&main, "resource \"aws_s3_bucket\" \"scratch\"");
    let dataset = line_of(STORAGE_TF, "resource");
    let expected: BTreeSet<(String, String, String, u64, String)> = [
        ("aws_instance.big_trainer", "data.terraform.resources.gpus.deny", &main_tf, big),
        ("aws_s3_bucket.scratch", "data.terraform.resources.tags.deny", &main_tf, scratch),
        ("aws_s3_bucket.scratch", "data.terraform.regions.deny", &main_tf, scratch),
        // The module's buckets moved with the region (a for_each over the caller's list).
        ("module.storage.aws_s3_bucket.dataset[\"raw\"]", "data.terraform.regions.deny", &storage_tf, dataset),
        ("module.storage.aws_s3_bucket.dataset[\"curated\"]", "data.terraform.regions.deny", &storage_tf, dataset),
    ]
    .into_iter()
    .map(|(o, r, p, l)| (o.to_string(), r.to_string(), p.clone(), l, "new".to_string()))
    .collect();
    assert_eq!(found, expected, "{:#}", v["violations"]);
    // Two trainers from count, tagged through merge() of a local: nothing to say about them.
    let checked = verdict(&assay(repo.path(), &["check", ".", "--rev", "HEAD", "--format", "json"]));
    let about_trainers = checked["violations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|x| x["object"].as_str().is_some_and(|o| o.starts_with("aws_instance.trainer[")))
        .count();
    assert_eq!(about_trainers, 0, "{:#}", checked["violations"]);
    // The variable without a value is named at its line; what uses it is unknown, not guessed.
    let owner = v["diagnostics"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["message"].as_str().unwrap_or("").starts_with("variable owner has no value"))
        .unwrap_or_else(|| panic!("no warning about var.owner in {:#}", v["diagnostics"]));
    assert_eq!(owner["path"], "terraform/ml/variables.tf");
    assert_eq!(owner["line"].as_u64(), Some(line_of(VARIABLES_TF, "variable \"owner\"")));
    assert_eq!(owner["severity"], "warning");

    // The change's cost: the trainers move to us-east-1 and a p5.48xlarge is added (730 hours a
    // month, each with an 8 GB gp2 root volume); what buckets cost depends on usage no usage file gives.
    let head_monthly = 2.0 * (730.0 * 1.006 + 8.0 * 0.10) + (730.0 * 98.32 + 8.0 * 0.10);
    let base_monthly = 2.0 * (730.0 * 1.123 + 8.0 * 0.11);
    let cost = &v["cost"];
    let close = |a: &Value, b: f64| (a.as_f64().unwrap_or(f64::NAN) - b).abs() < 1e-6;
    assert!(close(&cost["monthly"], head_monthly), "{cost:#}");
    assert!(close(&cost["delta"], head_monthly - base_monthly), "{cost:#}");
    let big = cost["terraform"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["address"] == "aws_instance.big_trainer")
        .unwrap_or_else(|| panic!("no big_trainer in {cost:#}"));
    assert_eq!(big["base_monthly"], 0.0);
    assert_eq!(big["components"][0]["name"], "Instance usage (Linux/UNIX, on-demand, p5.48xlarge)");
    assert!(
        cost["unpriced"].as_array().into_iter().flatten().any(|u| u["object"] == "aws_s3_bucket.scratch"),
        "{cost:#}"
    );
    // The ML budget (cost center CC-1042, every resource tagged so) is exceeded by the change.
    let finding = &cost["budget_findings"][0];
    assert_eq!(finding["budget"], "ml", "{cost:#}");
    assert_eq!(finding["action"], "deny");
    assert_eq!(finding["status"], "new");
    // And every rendering says so.
    let table = common::stdout(&assay(repo.path(), &["check", ".", "--rev", "HEAD", "--base", &base]));
    assert!(table.contains("budget ml"), "{table}");
    assert!(table.contains("aws_s3_bucket.scratch"), "{table}");
    let markdown =
        common::stdout(&assay(repo.path(), &["check", ".", "--rev", "HEAD", "--base", &base, "--format", "markdown"]));
    assert!(markdown.contains("budget ml"), "{markdown}");
    // Each changed resource with its monthly change, as Infracost's diff shows it, largest first.
    let added = "+ aws_instance.big_trainer\n  +71,774.40 USD\n    + Instance usage (Linux/UNIX, on-demand, p5.48xlarge)\n      71,773.60";
    for (name, text) in [("table", &table), ("markdown", &markdown)] {
        let (a, m) = (text.find("+ aws_instance.big_trainer"), text.find("~ aws_instance.trainer[0]"));
        assert!(a.is_some() && m.is_some() && a < m, "{name}: {text}");
        // The trainers moved to a cheaper region: their change, and what they cost before and after.
        assert!(text.contains("-85.49 USD (820.67 → 735.18)"), "{name}: {text}");
        assert!(text.contains("+ aws_s3_bucket.scratch"), "{name}: {text}");
        assert!(text.contains("depends on usage"), "{name}: {text}");
    }
    assert!(markdown.contains("```diff\n") && markdown.contains(added), "{markdown}");
    // SARIF: both denials at their .tf lines, and the budget at its file.
    let sarif = assay(repo.path(), &["check", ".", "--rev", "HEAD", "--base", &base, "--format", "sarif"]);
    let sarif: Value = serde_json::from_slice(&sarif.stdout).expect("SARIF");
    let results: Vec<(String, String, u64)> = sarif["runs"][0]["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let l = &r["locations"][0]["physicalLocation"];
            (
                r["ruleId"].as_str().unwrap_or("").to_string(),
                l["artifactLocation"]["uri"].as_str().unwrap_or("").to_string(),
                l["region"]["startLine"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    for (rule, line) in [
        ("data.terraform.resources.gpus.deny", line_of(&main, "resource \"aws_instance\" \"big_trainer\"")),
        ("data.terraform.resources.tags.deny", line_of(&main, "resource \"aws_s3_bucket\" \"scratch\"")),
    ] {
        assert!(results.contains(&(rule.to_string(), main_tf.clone(), line)), "{rule} at {line}: {results:?}");
    }
    assert!(results.iter().any(|(_, uri, _)| uri.starts_with("budgets/")), "{results:?}");
    // JUnit: a failing case per denial and for the budget.
    let junit =
        common::stdout(&assay(repo.path(), &["check", ".", "--rev", "HEAD", "--base", &base, "--format", "junit"]));
    for needle in ["aws_instance.big_trainer", "aws_s3_bucket.scratch", "budget ml"] {
        assert!(junit.contains(needle), "{needle}: {junit}");
    }
    assert!(junit.contains("<failure"), "{junit}");
    assert!((head_monthly - base_monthly - 71_603.42).abs() < 0.005);
    assert!(markdown.contains("Monthly cost change for Terraform: +71,603.42 USD"), "{markdown}");
}
