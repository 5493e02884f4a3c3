//! Reading an estate: the desired state of a platform at one Git commit or in one directory.
//!
//! The core of this crate is sans-IO: [`Estate::from_files`] turns a list of [`RawFile`]s into
//! parsed manifests, policy sources, settings and trusted signers, and never fails as a whole:
//! a file that does not parse becomes a [`Diagnostic`] and the rest still loads.
//! The edges ([`source::read_dir`], [`git::GitRepo`]) produce those raw files from a directory or
//! straight from Git objects.
//!
//! This crate must not evaluate policies or touch the network.

pub mod budget;
pub mod calendar;
pub mod diff;
pub mod edit;
pub mod git;
pub mod manifest;
pub mod pricing;
pub mod residency;
pub mod sarif;
pub mod settings;
pub mod signers;
pub mod source;
pub mod terraform;

use std::collections::BTreeMap;
use std::fmt;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use budget::Budget;
pub use diff::{FileChange, FileChangeKind};
pub use manifest::{Object, PackedObject};
pub use pricing::PriceCatalog;
pub use settings::Settings;
pub use signers::AllowedSigners;

/// Files larger than this are reported and skipped: nobody writes a 16 MiB manifest by hand,
/// and reading one into a policy engine is a denial of service.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Something was skipped on purpose (a binary file, an empty document).
    Info,
    /// Something looks wrong but was still used.
    Warning,
    /// Something could not be used: a file that does not parse, a policy that does not compile.
    Error,
}

/// A problem found while reading or analysing one file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// How bad it is.
    pub severity: Severity,
    /// Path of the file, relative to the estate root, `/`-separated.
    pub path: String,
    /// 1-based line, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// 1-based column, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    /// What is wrong, lowercase, naming the thing that was wrong.
    pub message: String,
}

impl Diagnostic {
    /// An error in `path` at no particular line.
    pub fn error(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { severity: Severity::Error, path: path.into(), line: None, column: None, message: message.into() }
    }

    /// A warning in `path` at no particular line.
    pub fn warning(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { severity: Severity::Warning, ..Self::error(path, message) }
    }

    /// A note that something in `path` was skipped on purpose.
    pub fn info(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { severity: Severity::Info, ..Self::error(path, message) }
    }

    /// The same diagnostic at a line and, when known, a column.
    #[must_use]
    pub fn at(mut self, line: u32, column: Option<u32>) -> Self {
        self.line = Some(line);
        self.column = column;
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        let level = match self.severity {
            Severity::Info => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(f, ": {level}: {}", self.message)
    }
}

/// One file as read from a directory or a Git tree, before parsing.
#[derive(Debug, Clone)]
pub struct RawFile {
    /// Path relative to the estate root, `/`-separated.
    pub path: String,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

/// What part of the estate a path belongs to, decided by its place in the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileRole {
    /// `assay.yaml`
    Settings,
    /// `.assay/allowed_signers`
    AllowedSigners,
    /// `policies/**/*.rego`
    Policy,
    /// `policies/**/data.{json,yaml,yml}`
    PolicyData,
    /// `constraints/**.{yaml,yml,json}`: Gatekeeper templates and constraints.
    Constraint,
    /// `manifests/**.{yaml,yml,json}`: the desired state.
    Manifest,
    /// `budgets/`, `residency/`, `pricing/`: assay's own objects.
    EstateObject,
    /// `terraform/**.json`: Terraform or OpenTofu plans (`terraform show -json`).
    TerraformPlan,
    /// `terraform/**.tf` and `.tfvars`: Terraform or OpenTofu configuration and variables.
    TerraformSource,
}

impl FileRole {
    /// The role of a path, or `None` when assay does not read it.
    pub fn of(path: &str) -> Option<Self> {
        let (top, rest) = path.split_once('/').unwrap_or((path, ""));
        let ext = path.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
        let yaml_or_json = matches!(ext, "yaml" | "yml" | "json");
        match top {
            "assay.yaml" | "assay.yml" if rest.is_empty() => Some(Self::Settings),
            ".assay" if rest == "allowed_signers" => Some(Self::AllowedSigners),
            "policies" if ext == "rego" => Some(Self::Policy),
            "policies" => {
                let name = path.rsplit('/').next().unwrap_or("");
                matches!(name, "data.json" | "data.yaml" | "data.yml").then_some(Self::PolicyData)
            }
            "constraints" if yaml_or_json => Some(Self::Constraint),
            "manifests" if yaml_or_json => Some(Self::Manifest),
            "budgets" | "residency" | "pricing" if yaml_or_json => Some(Self::EstateObject),
            // Terraform's own working directory (providers, module copies) is not the estate's.
            "terraform" if path.contains("/.terraform/") => None,
            // `.tf.json` is configuration in JSON syntax, not a plan.
            "terraform" if ext == "json" && !path.ends_with(".tf.json") => Some(Self::TerraformPlan),
            "terraform" if ext == "tf" || ext == "tfvars" => Some(Self::TerraformSource),
            "terraform" if path.ends_with("infracost-usage.yml") || path.ends_with(".usage.yml") => {
                Some(Self::TerraformSource)
            }
            _ => None,
        }
    }

    /// Whether a directory may hold files assay reads, so that walkers can skip the rest.
    pub fn may_contain(dir: &str) -> bool {
        let top = dir.split('/').next().unwrap_or(dir);
        matches!(
            top,
            ".assay" | "policies" | "constraints" | "manifests" | "budgets" | "residency" | "pricing" | "terraform"
        )
    }
}

/// A Rego source file from `policies/`.
#[derive(Debug, Clone)]
pub struct PolicySource {
    /// Path relative to the estate root.
    pub path: String,
    /// The Rego text.
    pub text: String,
}

/// A `data.json` or `data.yaml` file from `policies/`, merged into `data` at its directory path.
#[derive(Debug, Clone)]
pub struct PolicyData {
    /// Path relative to the estate root.
    pub path: String,
    /// Where it goes under `data`: the directory path below `policies/`, split on `/`.
    pub prefix: Vec<String>,
    /// The parsed document.
    pub value: serde_json::Value,
}

impl PolicyData {
    /// Where the documents of the data file at `path` go under `data`: its directory path, split
    /// on `/`; in an estate, data under `policies/` is rooted there (`policies/k8s/data.yaml`
    /// is `data.k8s`), as OPA roots a bundle.
    pub fn prefix_of(path: &str, in_estate: bool) -> Vec<String> {
        let mut prefix: Vec<String> = path.split('/').map(str::to_string).collect();
        prefix.pop();
        if in_estate && prefix.first().is_some_and(|p| p == "policies") {
            prefix.remove(0);
        }
        prefix
    }
}

/// Where an estate was read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Origin {
    /// A plain directory.
    Directory {
        /// The directory as given.
        path: String,
    },
    /// A commit of a Git repository.
    Git {
        /// The repository as given.
        repository: String,
        /// The revision as given (`main`, a tag, a SHA).
        rev: String,
        /// The full commit id it resolved to.
        commit: String,
    },
}

impl Origin {
    /// The commit id, when the estate came from Git.
    pub fn commit(&self) -> Option<&str> {
        match self {
            Self::Git { commit, .. } => Some(commit),
            Self::Directory { .. } => None,
        }
    }
}

/// The desired state of a platform, parsed, with everything that could not be.
#[derive(Debug, Clone)]
pub struct Estate {
    /// Where it came from.
    pub origin: Origin,
    /// `assay.yaml`, or defaults when it is absent or broken.
    pub settings: Settings,
    /// Objects under `manifests/`.
    pub manifests: Vec<Object>,
    /// Gatekeeper ConstraintTemplates and Constraints under `constraints/`.
    pub constraints: Vec<Object>,
    /// assay's own objects under `budgets/`, `residency/` and `pricing/`.
    pub objects: Vec<Object>,
    /// Rego sources under `policies/`.
    pub policies: Vec<PolicySource>,
    /// `data.{json,yaml}` files under `policies/`.
    pub policy_data: Vec<PolicyData>,
    /// Budgets from `budgets/`.
    pub budgets: Vec<Budget>,
    /// Prices from `pricing/`, merged.
    pub prices: PriceCatalog,
    /// Residency rules, data locations and classifications from `residency/`.
    pub residency: residency::Residency,
    /// `.assay/allowed_signers`, when present.
    pub allowed_signers: Option<AllowedSigners>,
    /// Terraform and OpenTofu plans under `terraform/`, in path order, then those worked out from
    /// the `.tf` files of root modules that have no plan ([`terraform::eval`]).
    pub terraform_plans: Vec<terraform::Plan>,
    /// Where the `.tf` files under `terraform/` declare each resource.
    pub terraform: terraform::Configuration,
    /// SHA-256 of every file assay read, by path: what [`diff::changes`] compares.
    pub files: BTreeMap<String, [u8; 32]>,
    /// Everything that went wrong, file by file.
    pub diagnostics: Vec<Diagnostic>,
}

/// `sha256:` over each file's path and content digest, in path order.
fn files_revision<'a>(files: impl Iterator<Item = (&'a str, &'a [u8; 32])>) -> String {
    let mut h = Sha256::new();
    for (path, digest) in files {
        h.update(path.as_bytes());
        h.update([0]);
        h.update(digest);
    }
    let digest: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{digest}")
}

impl Estate {
    /// The estate's revision: its commit, or for a plain directory `sha256:` over every file's
    /// path and content digest, so that two reads of the same files name the same revision.
    pub fn revision(&self) -> String {
        if let Some(commit) = self.origin.commit() {
            return commit.to_string();
        }
        files_revision(self.files.iter().map(|(path, digest)| (path.as_str(), digest)))
    }

    /// The revision [`Estate::revision`] gives a plain directory of these files, without parsing
    /// them: a server polling a directory reads it at every poll, and parses it only when this
    /// changed.
    pub fn directory_revision(files: &[RawFile]) -> String {
        let digests: BTreeMap<&str, [u8; 32]> = files
            .iter()
            .filter(|f| FileRole::of(&f.path).is_some())
            .map(|f| (f.path.as_str(), Sha256::digest(&f.bytes).into()))
            .collect();
        files_revision(digests.iter().map(|(path, digest)| (*path, digest)))
    }

    /// Parses raw files into an estate. Never fails: problems become diagnostics.
    pub fn from_files(origin: Origin, files: Vec<RawFile>, mut diagnostics: Vec<Diagnostic>) -> Self {
        let mut estate = Estate {
            origin,
            settings: Settings::default(),
            manifests: Vec::new(),
            constraints: Vec::new(),
            objects: Vec::new(),
            policies: Vec::new(),
            policy_data: Vec::new(),
            budgets: Vec::new(),
            prices: PriceCatalog::default(),
            residency: residency::Residency::default(),
            allowed_signers: None,
            terraform_plans: Vec::new(),
            terraform: terraform::Configuration::default(),
            files: BTreeMap::new(),
            diagnostics: Vec::new(),
        };
        let mut files = files;
        files.sort_by(|a, b| a.path.cmp(&b.path));
        // Parsing manifests is most of the work on a large estate: do it on every core, then
        // assemble in path order so the result does not depend on scheduling.
        let parsed: Vec<Option<(Vec<Object>, Vec<Diagnostic>)>> = files
            .par_iter()
            .map(|f| match FileRole::of(&f.path) {
                Some(FileRole::Constraint | FileRole::Manifest | FileRole::EstateObject) => {
                    let text = std::str::from_utf8(&f.bytes).ok().filter(|t| !t.contains('\0'))?;
                    Some(manifest::parse_objects(&f.path, text))
                }
                _ => None,
            })
            .collect();
        for (file, parsed) in files.into_iter().zip(parsed) {
            let Some(role) = FileRole::of(&file.path) else {
                continue;
            };
            estate.files.insert(file.path.clone(), Sha256::digest(&file.bytes).into());
            let text = match String::from_utf8(file.bytes) {
                Ok(text) => text,
                Err(_) => {
                    diagnostics.push(Diagnostic::info(&file.path, "skipped binary file (not UTF-8 text)"));
                    continue;
                }
            };
            if text.contains('\0') {
                diagnostics.push(Diagnostic::info(&file.path, "skipped binary file (contains NUL bytes)"));
                continue;
            }
            match role {
                FileRole::Settings => {
                    let (settings, diags) = Settings::parse(&file.path, &text);
                    estate.settings = settings;
                    diagnostics.extend(diags);
                }
                FileRole::AllowedSigners => {
                    let (signers, diags) = AllowedSigners::parse(&file.path, &text);
                    estate.allowed_signers = Some(signers);
                    diagnostics.extend(diags);
                }
                FileRole::Policy => estate.policies.push(PolicySource { path: file.path, text }),
                FileRole::TerraformPlan => {
                    let (plan, diags) = terraform::plan::parse(&file.path, &text);
                    diagnostics.extend(diags);
                    estate.terraform_plans.extend(plan);
                }
                FileRole::TerraformSource if file.path.ends_with(".yml") => {
                    estate.terraform.usage_files.push((file.path.clone(), text));
                }
                FileRole::TerraformSource => diagnostics.extend(estate.terraform.add_file(&file.path, &text)),
                FileRole::PolicyData => {
                    let (docs, diags) = manifest::parse_documents(&file.path, &text);
                    diagnostics.extend(diags);
                    let prefix = PolicyData::prefix_of(&file.path, true);
                    for doc in docs {
                        if doc.value.is_object() {
                            estate.policy_data.push(PolicyData {
                                path: file.path.clone(),
                                prefix: prefix.clone(),
                                value: doc.value,
                            });
                        } else {
                            diagnostics.push(
                                Diagnostic::error(&file.path, "policy data must be an object at the top level")
                                    .at(doc.line, None),
                            );
                        }
                    }
                }
                FileRole::Constraint | FileRole::Manifest | FileRole::EstateObject => {
                    let (objects, diags) = parsed.unwrap_or_else(|| manifest::parse_objects(&file.path, &text));
                    diagnostics.extend(diags);
                    let target = match role {
                        FileRole::Constraint => &mut estate.constraints,
                        FileRole::Manifest => &mut estate.manifests,
                        _ => &mut estate.objects,
                    };
                    target.extend(objects);
                }
            }
        }
        // A root module without a plan is judged from its `.tf` files alone.
        let planned: std::collections::BTreeSet<&str> =
            estate.terraform_plans.iter().filter_map(|p| estate.terraform.root_for(&p.path)).collect();
        let mut worked_out = Vec::new();
        for root in estate.terraform.roots().into_iter().filter(|r| !planned.contains(r)) {
            let var_files = estate.settings.terraform.var_files.get(root).map(Vec::as_slice).unwrap_or(&[]);
            let (plan, diags) = terraform::eval::synthesize_with(&estate.terraform, root, var_files);
            diagnostics.extend(diags);
            worked_out.extend(plan);
        }
        estate.terraform_plans.extend(worked_out);
        let roots = estate.terraform.roots();
        for root in estate.settings.terraform.var_files.keys().filter(|r| !roots.contains(&r.as_str())) {
            diagnostics.push(Diagnostic::warning(
                "assay.yaml",
                format!(
                    "terraform.varFiles: {root} is not a root module of the estate; its variable files are not used"
                ),
            ));
        }
        // Typed objects, once the settings (the default currency) are known.
        for object in estate.objects.iter().filter(|o| o.path.starts_with("budgets/")) {
            if object.kind() != "Budget" || object.api_version() != budget::API_VERSION {
                diagnostics.push(
                    Diagnostic::warning(
                        &object.path,
                        format!(
                            "{} {} is not a Budget ({}); ignored",
                            object.api_version(),
                            object.kind(),
                            budget::API_VERSION
                        ),
                    )
                    .at(object.line, None),
                );
                continue;
            }
            match Budget::from_object(object, &estate.settings.currency) {
                Ok(b) => estate.budgets.push(b),
                Err(d) => diagnostics.push(d),
            }
        }
        let (prices, price_diagnostics) = PriceCatalog::from_objects(
            estate.objects.iter().filter(|o| o.path.starts_with("pricing/")),
            &estate.settings.currency,
        );
        estate.prices = prices;
        diagnostics.extend(price_diagnostics);
        estate.residency = residency::Residency::from_objects(
            estate.objects.iter().filter(|o| o.path.starts_with("residency/")),
            &mut diagnostics,
        );
        estate.diagnostics = diagnostics;
        estate
    }

    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.severity == Severity::Error)
    }
}

/// Errors that stop an estate from being read at all: the directory or revision does not exist.
/// Problems inside files are [`Diagnostic`]s, not errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The estate directory does not exist or cannot be listed.
    #[error("cannot read estate directory {path}: {source}")]
    Directory {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The path is not inside a Git repository.
    #[error("{path} is not a git repository: {message}")]
    NotARepository {
        /// The path.
        path: String,
        /// What gix said.
        message: String,
    },
    /// A revision does not name a commit.
    #[error("revision {rev:?} not found in {repository}: {message}")]
    RevisionNotFound {
        /// The revision as given.
        rev: String,
        /// The repository.
        repository: String,
        /// What gix said.
        message: String,
    },
    /// The estate's files at a commit add up to more than the limit given.
    #[error("the estate at commit {commit} is larger than {limit} bytes in total; not read")]
    TooLarge {
        /// The commit.
        commit: String,
        /// The limit, in bytes.
        limit: u64,
    },
    /// Reading Git objects failed.
    #[error("reading git objects in {repository}: {message}")]
    Git {
        /// The repository.
        repository: String,
        /// What gix said.
        message: String,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
