//! Data residency as code, under `residency/`: which classifications of data may be stored and
//! processed in which regions (`ResidencyRule`), where datasets and job runs are
//! (`DataLocations`), and how data is classified (`DataClassifications`). Errors name the file,
//! line and field; a broken object is reported and the others still load.
//!
//! ```yaml
//! apiVersion: assay.dev/v1alpha1
//! kind: ResidencyRule
//! metadata: {name: gdpr}
//! spec: {classification: GDPR_SENSITIVE, storeIn: [eu-west-1, eu-central-1], processIn: [eu-west-1]}
//! ---
//! kind: DataLocations
//! spec:
//!   datasets: [{match: "s3://acme-*-eu/**", region: eu-west-1}]
//!   jobs: [{match: "airflow-us:*", region: us-east-1}]
//! ---
//! kind: DataClassifications
//! spec:
//!   order: [PUBLIC, INTERNAL, GDPR_SENSITIVE]        # least to most strict
//!   rules:
//!     - {match: "s3://acme-customer-data-eu/**", classification: GDPR_SENSITIVE}
//!     - {tag: pii, classification: GDPR_SENSITIVE}
//! ```

use globset::{Glob, GlobMatcher};
use serde::Deserialize;

use crate::Diagnostic;
use crate::manifest::Object;

/// Where a classification may be stored and processed (`*` means anywhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResidencyRule {
    /// `metadata.name`.
    pub name: String,
    /// The classification it governs.
    pub classification: String,
    /// Regions where such data may be stored.
    pub store_in: Vec<String>,
    /// Regions where such data may be processed.
    pub process_in: Vec<String>,
    /// File and line of the object.
    pub path: String,
    /// Line where its document starts.
    pub line: u32,
}

/// A glob over `NAMESPACE:NAME` (datasets) or `NAMESPACE:NAME` (jobs), and what it maps to.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// The pattern as written.
    pub pattern: String,
    glob: GlobMatcher,
}

impl Matcher {
    fn new(pattern: &str) -> Result<Matcher, String> {
        let glob = Glob::new(pattern).map_err(|e| format!("{pattern:?} is not a glob pattern: {e}"))?;
        Ok(Matcher { pattern: pattern.to_string(), glob: glob.compile_matcher() })
    }

    /// Whether `NAMESPACE:NAME`, `NAMESPACE/NAME` or the namespace alone matches.
    pub fn matches(&self, namespace: &str, name: &str) -> bool {
        let sep = if namespace.ends_with('/') { "" } else { "/" };
        self.glob.is_match(format!("{namespace}:{name}"))
            || self.glob.is_match(format!("{namespace}{sep}{name}"))
            || self.glob.is_match(namespace)
    }
}

/// Everything under `residency/`.
#[derive(Debug, Clone, Default)]
pub struct Residency {
    /// Residency rules by classification.
    pub rules: Vec<ResidencyRule>,
    /// Dataset locations: the first matching rule gives the region.
    pub datasets: Vec<(Matcher, String)>,
    /// Job locations: where a job's runs process data.
    pub jobs: Vec<(Matcher, String)>,
    /// Classification rules by dataset pattern.
    pub classify: Vec<(Matcher, String)>,
    /// Classification by tag (a TagsDatasetFacet key, or a tag `key=value`).
    pub tags: Vec<(String, String)>,
    /// Classifications from least to most strict.
    pub order: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RuleSpec {
    classification: String,
    #[serde(default)]
    store_in: Vec<String>,
    #[serde(default)]
    process_in: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Located {
    #[serde(rename = "match")]
    pattern: String,
    region: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LocationsSpec {
    #[serde(default)]
    datasets: Vec<Located>,
    #[serde(default)]
    jobs: Vec<Located>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Classified {
    #[serde(rename = "match", default)]
    pattern: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    classification: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassificationsSpec {
    #[serde(default)]
    order: Vec<String>,
    #[serde(default)]
    rules: Vec<Classified>,
}

fn spec<T: serde::de::DeserializeOwned>(object: &Object) -> Result<T, String> {
    let value = object.value.get("spec").cloned().unwrap_or(serde_json::Value::Null);
    serde_path_to_error::deserialize(value).map_err(|e| format!("spec.{}: {}", e.path(), e.inner()))
}

impl Residency {
    /// Reads the objects under `residency/`; problems become diagnostics.
    pub fn from_objects<'a>(objects: impl IntoIterator<Item = &'a Object>, diags: &mut Vec<Diagnostic>) -> Residency {
        let mut out = Residency::default();
        for object in objects {
            let kind = object.kind().to_string();
            let name = object.name().to_string();
            let at = |message: String| {
                Diagnostic::error(&object.path, format!("{kind} {name}: {message}")).at(object.line, None)
            };
            let result: Result<(), String> = match kind.as_str() {
                "ResidencyRule" => spec::<RuleSpec>(object).map(|s| {
                    out.rules.push(ResidencyRule {
                        name: name.clone(),
                        classification: s.classification,
                        store_in: s.store_in,
                        process_in: s.process_in,
                        path: object.path.clone(),
                        line: object.line,
                    });
                }),
                "DataLocations" => spec::<LocationsSpec>(object).and_then(|s| {
                    for (field, list, into) in
                        [("datasets", s.datasets, &mut out.datasets), ("jobs", s.jobs, &mut out.jobs)]
                    {
                        for (i, l) in list.into_iter().enumerate() {
                            let m = Matcher::new(&l.pattern).map_err(|e| format!("spec.{field}[{i}].match: {e}"))?;
                            into.push((m, l.region));
                        }
                    }
                    Ok(())
                }),
                "DataClassifications" => spec::<ClassificationsSpec>(object).and_then(|s| {
                    if !s.order.is_empty() {
                        out.order = s.order;
                    }
                    for (i, r) in s.rules.into_iter().enumerate() {
                        match (r.pattern, r.tag) {
                            (Some(p), None) => {
                                let m = Matcher::new(&p).map_err(|e| format!("spec.rules[{i}].match: {e}"))?;
                                out.classify.push((m, r.classification));
                            }
                            (None, Some(tag)) => out.tags.push((tag, r.classification)),
                            _ => return Err(format!("spec.rules[{i}]: give either match or tag")),
                        }
                    }
                    Ok(())
                }),
                _ => Err("unknown kind under residency/ (ResidencyRule, DataLocations, DataClassifications)".into()),
            };
            if let Err(e) = result {
                diags.push(at(e));
            }
        }
        out
    }

    /// The region of a dataset, from the first matching location rule.
    pub fn dataset_region(&self, namespace: &str, name: &str) -> Option<&str> {
        self.datasets.iter().find(|(m, _)| m.matches(namespace, name)).map(|(_, r)| r.as_str())
    }

    /// The region where a job's runs process data.
    pub fn job_region(&self, namespace: &str, name: &str) -> Option<&str> {
        self.jobs.iter().find(|(m, _)| m.matches(namespace, name)).map(|(_, r)| r.as_str())
    }

    /// The classification of a dataset from its name and tags: the strictest that applies.
    pub fn classify(&self, namespace: &str, name: &str, tags: &[String]) -> Option<String> {
        let by_name = self.classify.iter().filter(|(m, _)| m.matches(namespace, name)).map(|(_, c)| c.as_str());
        let by_tag = self
            .tags
            .iter()
            .filter(|(t, _)| tags.iter().any(|x| x == t || x.split_once('=').is_some_and(|(k, _)| k == t)))
            .map(|(_, c)| c.as_str());
        self.strictest(by_name.chain(by_tag))
    }

    /// How strict a classification is: its place in `order`; an unknown one counts as the
    /// strictest, so that a typo never loosens a rule.
    pub fn rank(&self, class: &str) -> usize {
        self.order.iter().position(|o| o == class).unwrap_or(usize::MAX)
    }

    /// The strictest of some classifications, by [`Residency::rank`].
    pub fn strictest<'a>(&self, classes: impl IntoIterator<Item = &'a str>) -> Option<String> {
        classes.into_iter().max_by_key(|c| (self.rank(c), c.to_string())).map(str::to_string)
    }

    /// The rule for a classification.
    pub fn rule(&self, classification: &str) -> Option<&ResidencyRule> {
        self.rules.iter().find(|r| r.classification == classification)
    }
}

impl ResidencyRule {
    /// Whether such data may be stored in `region`.
    pub fn may_store(&self, region: &str) -> bool {
        self.store_in.iter().any(|r| r == "*" || r == region)
    }

    /// Whether such data may be processed in `region`.
    pub fn may_process(&self, region: &str) -> bool {
        self.process_in.iter().any(|r| r == "*" || r == region)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse_objects;

    const YAML: &str = "apiVersion: assay.dev/v1alpha1\nkind: ResidencyRule\nmetadata: {name: gdpr}\n\
        spec: {classification: GDPR_SENSITIVE, storeIn: [eu-west-1, eu-central-1], processIn: [eu-west-1]}\n---\n\
        apiVersion: assay.dev/v1alpha1\nkind: DataLocations\nmetadata: {name: where}\nspec:\n  \
        datasets: [{match: \"s3://acme-*-eu*\", region: eu-west-1}, {match: \"s3://acme-*-us*\", region: us-east-1}]\n  \
        jobs: [{match: \"airflow-us:*\", region: us-east-1}]\n---\n\
        apiVersion: assay.dev/v1alpha1\nkind: DataClassifications\nmetadata: {name: classes}\nspec:\n  \
        order: [PUBLIC, INTERNAL, GDPR_SENSITIVE]\n  rules:\n  - {match: \"s3://acme-customer-data-eu*\", classification: GDPR_SENSITIVE}\n  \
        - {match: \"s3://acme-*\", classification: INTERNAL}\n  - {tag: pii, classification: GDPR_SENSITIVE}\n";

    fn residency(yaml: &str) -> (Residency, Vec<String>) {
        let (objects, diags) = parse_objects("residency/r.yaml", yaml);
        assert!(diags.is_empty(), "{diags:?}");
        let mut d = Vec::new();
        let r = Residency::from_objects(&objects, &mut d);
        (r, d.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn regions_classifications_and_rules() {
        let (r, d) = residency(YAML);
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(r.dataset_region("s3://acme-features-eu", "x"), Some("eu-west-1"));
        assert_eq!(r.dataset_region("s3://acme-models-us", "m"), Some("us-east-1"));
        assert_eq!(r.dataset_region("gs://elsewhere", "m"), None);
        assert_eq!(r.job_region("airflow-us", "train"), Some("us-east-1"));
        assert_eq!(r.classify("s3://acme-customer-data-eu", "raw", &[]).as_deref(), Some("GDPR_SENSITIVE"));
        assert_eq!(r.classify("s3://acme-features-eu", "f", &[]).as_deref(), Some("INTERNAL"));
        assert_eq!(r.classify("s3://acme-features-eu", "f", &["pii=true".into()]).as_deref(), Some("GDPR_SENSITIVE"));
        assert_eq!(r.classify("gs://x", "y", &[]), None);
        let gdpr = r.rule("GDPR_SENSITIVE").expect("rule");
        assert!(gdpr.may_store("eu-central-1") && !gdpr.may_store("us-east-1"));
        assert!(gdpr.may_process("eu-west-1") && !gdpr.may_process("eu-central-1"));
        assert_eq!(r.strictest(["INTERNAL", "PUBLIC"]).as_deref(), Some("INTERNAL"));
        assert_eq!(r.strictest(["INTERNAL", "TYPO"]).as_deref(), Some("TYPO"));
    }

    #[test]
    fn mistakes_name_the_file_line_and_field() {
        let (_, d) = residency(
            "apiVersion: assay.dev/v1alpha1\nkind: ResidencyRule\nmetadata: {name: g}\nspec: {classification: X, storeIn: [a], procesIn: [b]}\n",
        );
        assert!(
            d[0].contains("residency/r.yaml:1") && d[0].contains("ResidencyRule g: spec") && d[0].contains("procesIn"),
            "{d:?}"
        );
        let (_, d) = residency(
            "apiVersion: assay.dev/v1alpha1\nkind: DataLocations\nmetadata: {name: w}\nspec:\n  datasets: [{match: \"s3://[\", region: x}]\n",
        );
        assert!(d[0].contains("spec.datasets[0].match"), "{d:?}");
        let (_, d) = residency(
            "apiVersion: assay.dev/v1alpha1\nkind: DataClassifications\nmetadata: {name: c}\nspec:\n  rules: [{classification: X}]\n",
        );
        assert!(d[0].contains("spec.rules[0]: give either match or tag"), "{d:?}");
    }
}
