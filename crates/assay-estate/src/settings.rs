//! `assay.yaml`: the estate's settings.
//!
//! Parsed in two stages, as written and then validated, so that a misspelled key or a bad
//! value is reported with the file, line and field, and the estate still loads on defaults.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Diagnostic;

/// Which Rego syntax a policy file is written in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RegoVersion {
    /// Rego v0: `deny[msg] { ... }` without `if`/`contains`.
    V0,
    /// Rego v1, the default since OPA 1.0.
    #[default]
    V1,
}

/// What happens when a policy denies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EnforcementAction {
    /// Fail the check or reject the request.
    #[default]
    Deny,
    /// Report, but let it pass.
    Warn,
    /// Record only: shown in verdicts and logs, never blocks.
    Dryrun,
}

impl EnforcementAction {
    /// The lowercase name used in YAML and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deny => "deny",
            Self::Warn => "warn",
            Self::Dryrun => "dryrun",
        }
    }
}

/// A cluster that manifests are deployed to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// The cluster's name, as in verdicts.
    pub name: String,
    /// The cloud region it runs in, for residency and pricing.
    #[serde(default)]
    pub region: Option<String>,
    /// Glob patterns of estate paths whose manifests run on this cluster.
    #[serde(default)]
    pub paths: Vec<String>,
    /// The kubeconfig context that reaches it (`assay drift`, `assay serve`); its name when
    /// absent.
    #[serde(default)]
    pub context: Option<String>,
}

/// How `assay drift` compares the estate with what is live.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Drift {
    /// Labels that mark a live object as the estate's: one carrying any of them with a value an
    /// estate object carries, and not in Git, is extra. Argo CD's `app.kubernetes.io/instance`
    /// and assay's own `assay.dev/estate` (whose value is the estate's `name`) by default.
    #[serde(default = "default_ownership_labels")]
    pub ownership_labels: Vec<String>,
    /// Fields left out of the comparison, as Argo CD's `ignoreDifferences`.
    #[serde(default)]
    pub ignore_differences: Vec<IgnoreDifference>,
}

fn default_ownership_labels() -> Vec<String> {
    vec!["app.kubernetes.io/instance".to_string(), "assay.dev/estate".to_string()]
}

impl Default for Drift {
    fn default() -> Self {
        Drift { ownership_labels: default_ownership_labels(), ignore_differences: Vec::new() }
    }
}

/// One rule, as in Argo CD's `ignoreDifferences`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IgnoreDifference {
    /// API group (`apps`; `""` for the core group); any when absent.
    #[serde(default)]
    pub group: Option<String>,
    /// Kind; any when absent or `*`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Object name; any when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// Namespace; any when absent.
    #[serde(default)]
    pub namespace: Option<String>,
    /// RFC 6901 pointers to fields to leave out.
    #[serde(default)]
    pub json_pointers: Vec<String>,
    /// jq path expressions of fields to leave out (`assay-live` evaluates them).
    #[serde(default)]
    pub jq_path_expressions: Vec<String>,
    /// Field managers whose fields (in `metadata.managedFields`) are left out.
    #[serde(default)]
    pub managed_fields_managers: Vec<String>,
}

impl IgnoreDifference {
    /// Whether the rule applies to an object of this group, kind, namespace and name.
    pub fn applies(&self, group: &str, kind: &str, namespace: Option<&str>, name: &str) -> bool {
        self.group.as_deref().is_none_or(|g| g == group)
            && self.kind.as_deref().is_none_or(|k| k == "*" || k == kind)
            && self.name.as_deref().is_none_or(|n| n == name)
            && self.namespace.as_deref().is_none_or(|n| Some(n) == namespace)
    }
}

/// What `assay serve` does with what event policies (`package assay.events`) find.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Actions {
    /// Webhook URLs that each receive every finding as an alert (a CloudEvent), at least once.
    #[serde(default)]
    pub alerts: Vec<String>,
    /// The URL that receives a quarantine request (a CloudEvent) for a finding that asks for one.
    #[serde(default)]
    pub quarantine: Option<String>,
}

/// The contents of `assay.yaml`. Every field is optional.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Name of the estate, shown in verdicts and reports.
    #[serde(default)]
    pub name: Option<String>,
    /// ISO 4217 currency code in which costs are reported.
    #[serde(default = "default_currency")]
    pub currency: String,
    /// Require every commit to be signed by a principal in `.assay/allowed_signers`.
    #[serde(default)]
    pub require_signed: bool,
    /// Default Rego syntax for files under `policies/` (`v1` unless set).
    #[serde(default)]
    pub rego_version: RegoVersion,
    /// Rego syntax per file, by glob, overriding `rego_version` (as `file_rego_versions` in an
    /// OPA bundle manifest), for example `{"policies/legacy/**": v0}`.
    #[serde(default)]
    pub file_rego_versions: BTreeMap<String, RegoVersion>,
    /// What `deny` and `violation` rules under `policies/` do: `deny` (default), `warn` or
    /// `dryrun`, to roll a new policy set out gently. Gatekeeper constraints carry their own.
    #[serde(default)]
    pub enforcement_action: EnforcementAction,
    /// Clusters, each with the region it runs in and the manifest paths deployed to it.
    #[serde(default)]
    pub clusters: Vec<Cluster>,
    /// The Kubernetes label that names a workload's cost center (the billing tag is
    /// `cost-center`).
    #[serde(default = "default_cost_center_label")]
    pub cost_center_label: String,
    /// Alerts and quarantine requests for findings of event policies.
    #[serde(default)]
    pub actions: Actions,
    /// How the estate is compared with what is live (`assay drift`).
    #[serde(default)]
    pub drift: Drift,
    /// How requests are recommended from observed use (`assay cost rightsize`), and the metric
    /// and label names of the Prometheus that holds the use.
    #[serde(default)]
    pub rightsizing: Rightsizing,
    /// How Terraform and OpenTofu under `terraform/` are checked.
    #[serde(default)]
    pub terraform: Terraform,
}

/// `terraform:` in `assay.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Terraform {
    /// Packages whose `deny`, `violation` and `warn` rules judge a whole plan (`input` is the
    /// plan document, as conftest gives it), each with the packages below it (conftest's
    /// `--namespace`): `terraform` unless set.
    pub namespaces: Vec<String>,
    /// Packages whose rules judge one resource change at a time (`input` is one element of
    /// `resource_changes`): `terraform.resources` unless set. They are not whole-plan packages.
    pub resource_namespaces: Vec<String>,
    /// The tag that names a resource's cost center.
    pub cost_center_tag: String,
    /// Variable files given to root modules worked out without a plan, as `-var-file` gives
    /// them: root directory (`terraform/ml`) → files relative to it (`env/prod.tfvars`), loaded
    /// after `terraform.tfvars` and `*.auto.tfvars`, in order (later files win).
    pub var_files: std::collections::BTreeMap<String, Vec<String>>,
}

impl Default for Terraform {
    fn default() -> Self {
        Terraform {
            namespaces: vec!["terraform".into()],
            resource_namespaces: vec!["terraform.resources".into()],
            cost_center_tag: "cost-center".into(),
            var_files: std::collections::BTreeMap::new(),
        }
    }
}

/// Whether `package` is `root` or below it.
pub fn package_under(package: &str, root: &str) -> bool {
    package == root || package.strip_prefix(root).is_some_and(|rest| rest.starts_with('.'))
}

impl Terraform {
    /// Whether a package's rules judge one resource change at a time.
    pub fn is_resource_package(&self, package: &str) -> bool {
        self.resource_namespaces.iter().any(|r| package_under(package, r))
    }

    /// Whether a package's rules judge a whole plan.
    pub fn is_plan_package(&self, package: &str) -> bool {
        !self.is_resource_package(package) && self.namespaces.iter().any(|r| package_under(package, r))
    }
}

/// `rightsizing:` in `assay.yaml`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Rightsizing {
    /// The quantile of CPU use a request should cover (0.95).
    pub cpu_quantile: f64,
    /// The quantile of memory use a request should cover (1: the peak).
    pub memory_quantile: f64,
    /// The share of a request use should fill (0.7).
    pub target_utilisation: f64,
    /// The smallest CPU request recommended (`10m`).
    pub cpu_floor: String,
    /// The smallest memory request recommended (`20Mi`).
    pub memory_floor: String,
    /// A GPU under this utilisation, in percent, is idle (5).
    pub idle_gpu_utilisation: f64,
    /// The share of the window's samples a GPU must be idle in to be reported (0.9).
    pub idle_share: f64,
    /// A request within this share of the recommendation is left alone (0.1).
    pub min_change: f64,
    /// `assay check --prometheus` warns of a change that asks for more than this many times what
    /// observed use calls for (2).
    pub warn_above: f64,
    /// Metric names, for platforms that relabel.
    pub metrics: UsageMetrics,
    /// The label of the token counters that names the model (vLLM's `model_name`).
    pub model_label: String,
    /// Label names of the container metrics (cAdvisor, kube-state-metrics).
    pub labels: UsageLabels,
    /// Label names of the GPU metrics (NVIDIA's DCGM exporter; `exported_pod` and so on when
    /// Prometheus scrapes it without `honor_labels`).
    pub gpu_labels: UsageLabels,
}

impl Default for Rightsizing {
    fn default() -> Self {
        Rightsizing {
            cpu_quantile: 0.95,
            memory_quantile: 1.0,
            target_utilisation: 0.7,
            cpu_floor: "10m".into(),
            memory_floor: "20Mi".into(),
            idle_gpu_utilisation: 5.0,
            idle_share: 0.9,
            min_change: 0.1,
            warn_above: 2.0,
            metrics: UsageMetrics::default(),
            model_label: "model_name".into(),
            labels: UsageLabels::default(),
            gpu_labels: UsageLabels::default(),
        }
    }
}

/// Names of the metrics rightsizing and unit economics read.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct UsageMetrics {
    /// CPU seconds used, a counter (`container_cpu_usage_seconds_total`).
    pub cpu: String,
    /// Memory in use (`container_memory_working_set_bytes`).
    pub memory: String,
    /// Requests as the scheduler sees them (`kube_pod_container_resource_requests`).
    pub requests: String,
    /// GPU utilisation in percent (`DCGM_FI_DEV_GPU_UTIL`).
    pub gpu_utilisation: String,
    /// GPU memory used in MiB (`DCGM_FI_DEV_FB_USED`).
    pub gpu_memory: String,
    /// Prompt tokens processed, a counter (vLLM's `vllm:prompt_tokens_total`).
    pub prompt_tokens: String,
    /// Tokens generated, a counter (`vllm:generation_tokens_total`).
    pub generation_tokens: String,
}

impl Default for UsageMetrics {
    fn default() -> Self {
        UsageMetrics {
            cpu: "container_cpu_usage_seconds_total".into(),
            memory: "container_memory_working_set_bytes".into(),
            requests: "kube_pod_container_resource_requests".into(),
            gpu_utilisation: "DCGM_FI_DEV_GPU_UTIL".into(),
            gpu_memory: "DCGM_FI_DEV_FB_USED".into(),
            prompt_tokens: "vllm:prompt_tokens_total".into(),
            generation_tokens: "vllm:generation_tokens_total".into(),
        }
    }
}

/// Names of the labels that place a sample.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct UsageLabels {
    /// `namespace`.
    pub namespace: String,
    /// `pod`.
    pub pod: String,
    /// `container`.
    pub container: String,
}

impl Default for UsageLabels {
    fn default() -> Self {
        UsageLabels { namespace: "namespace".into(), pod: "pod".into(), container: "container".into() }
    }
}

fn default_cost_center_label() -> String {
    "cost-center".to_string()
}

fn default_currency() -> String {
    "USD".to_string()
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            name: None,
            currency: default_currency(),
            require_signed: false,
            rego_version: RegoVersion::default(),
            file_rego_versions: BTreeMap::new(),
            enforcement_action: EnforcementAction::default(),
            clusters: Vec::new(),
            cost_center_label: default_cost_center_label(),
            actions: Actions::default(),
            drift: Drift::default(),
            rightsizing: Rightsizing::default(),
            terraform: Terraform::default(),
        }
    }
}

impl Settings {
    /// Parses and validates `assay.yaml`. On error the defaults are returned with diagnostics.
    pub fn parse(path: &str, text: &str) -> (Settings, Vec<Diagnostic>) {
        if text.trim().is_empty() {
            return (Settings::default(), Vec::new());
        }
        let settings: Settings = match yaml_serde::from_str(text) {
            Ok(s) => s,
            Err(e) => {
                let d = Diagnostic::error(path, format!("invalid settings: {}", crate::manifest::yaml_message(&e)));
                let d = match e.location() {
                    Some(loc) => d.at(loc.line() as u32, Some(loc.column() as u32)),
                    None => d,
                };
                return (Settings::default(), vec![d]);
            }
        };
        let mut diags = Vec::new();
        if !crate::budget::is_currency(&settings.currency) {
            diags.push(Diagnostic::error(
                path,
                format!("currency: {:?} is not an ISO 4217 code such as USD or EUR", settings.currency),
            ));
        }
        let globs = settings.clusters.iter().flat_map(|c| c.paths.iter()).chain(settings.file_rego_versions.keys());
        for glob in globs {
            if let Err(e) = globset::Glob::new(glob) {
                diags.push(Diagnostic::error(path, format!("invalid path pattern {glob:?}: {e}")));
            }
        }
        let urls = settings
            .actions
            .alerts
            .iter()
            .enumerate()
            .map(|(i, u)| (format!("actions.alerts[{i}]"), u))
            .chain(settings.actions.quarantine.iter().map(|u| ("actions.quarantine".to_string(), u)));
        for (field, url) in urls {
            if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
                diags.push(Diagnostic::error(path, format!("{field}: {url:?} is not an http:// or https:// URL")));
            }
        }
        (settings, diags)
    }

    /// The cluster whose `paths` match a manifest's path: the first that does.
    pub fn cluster_of(&self, path: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| {
            c.paths.iter().any(|glob| globset::Glob::new(glob).is_ok_and(|g| g.compile_matcher().is_match(path)))
        })
    }

    /// The Rego syntax of a policy file: a `# assay: rego.v0` (or `rego.v1`) comment before the
    /// `package` line wins, then the first matching `file_rego_versions` glob, then `rego_version`.
    pub fn rego_version_of(&self, path: &str, text: &str) -> RegoVersion {
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with("package ") {
                break;
            }
            if let Some(pragma) = line.strip_prefix('#').map(str::trim).and_then(|l| l.strip_prefix("assay:")) {
                match pragma.trim() {
                    "rego.v0" => return RegoVersion::V0,
                    "rego.v1" => return RegoVersion::V1,
                    _ => {}
                }
            }
        }
        for (glob, version) in &self.file_rego_versions {
            if globset::Glob::new(glob).is_ok_and(|g| g.compile_matcher().is_match(path)) {
                return *version;
            }
        }
        self.rego_version
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_names_the_key_and_line() {
        let (settings, diags) = Settings::parse("assay.yaml", "name: x\nrequire_signd: true\n");
        assert_eq!(settings, Settings::default());
        assert_eq!(diags.len(), 1);
        let d = diags[0].to_string();
        assert!(d.starts_with("assay.yaml:2:"), "{d}");
        assert!(d.contains("unknown field `require_signd`"), "{d}");
    }

    #[test]
    fn rego_version_by_pragma_glob_and_default() {
        let (settings, diags) =
            Settings::parse("assay.yaml", "rego_version: v1\nfile_rego_versions:\n  \"policies/legacy/**\": v0\n");
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(settings.rego_version_of("policies/a.rego", "package a"), RegoVersion::V1);
        assert_eq!(settings.rego_version_of("policies/legacy/b.rego", "package b"), RegoVersion::V0);
        assert_eq!(settings.rego_version_of("policies/c.rego", "# assay: rego.v0\npackage c"), RegoVersion::V0);
    }

    #[test]
    fn bad_currency_is_reported() {
        let (_, diags) = Settings::parse("assay.yaml", "currency: dollars\n");
        assert!(diags[0].message.contains("currency"), "{diags:?}");
    }
}
