//! Price catalogs as code: `pricing/*.yaml` objects of kind `PriceCatalog`, with prices per
//! region for compute, memory, GPUs, storage and egress. Unknown keys are errors naming the key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::budget::{API_VERSION, is_currency};
use crate::{Diagnostic, Object};

/// The key of a price that applies when no more specific one does.
pub const DEFAULT: &str = "default";

/// Prices in one region.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegionPrices {
    /// Per vCPU per hour.
    #[serde(default)]
    pub vcpu_hour: f64,
    /// Per GiB of memory per hour.
    #[serde(default, rename = "memoryGiBHour")]
    pub memory_gib_hour: f64,
    /// Per GPU per hour, by GPU type (the value of a node selector such as
    /// `nvidia.com/gpu.product`), with `default` for any other.
    #[serde(default)]
    pub gpu_hour: BTreeMap<String, f64>,
    /// Per GB of storage per month, by storage class, with `default`.
    #[serde(default, rename = "storageGBMonth")]
    pub storage_gb_month: BTreeMap<String, f64>,
    /// Per GB leaving this region, by destination region (or `internet`), with `default`.
    #[serde(default, rename = "egressGB")]
    pub egress_gb: BTreeMap<String, f64>,
    /// Cloud products Terraform creates, by price key (`aws.ec2.m5.large` per hour,
    /// `aws.ebs.gp3` per GB-month...; docs/terraform-pricing.md lists the keys and units).
    #[serde(default)]
    pub products: BTreeMap<String, f64>,
}

impl RegionPrices {
    /// A keyed price: the key's, else `default`.
    pub fn keyed(prices: &BTreeMap<String, f64>, key: Option<&str>) -> Option<f64> {
        key.and_then(|k| prices.get(k)).or_else(|| prices.get(DEFAULT)).copied()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogSpec {
    #[serde(default)]
    currency: Option<String>,
    regions: BTreeMap<String, RegionPrices>,
}

/// Prices per region, merged from every catalog of the estate.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PriceCatalog {
    /// ISO 4217 code of every price.
    pub currency: String,
    /// Prices by region.
    pub regions: BTreeMap<String, RegionPrices>,
    /// Where each region's prices were written: `(path, line)`.
    #[serde(skip)]
    pub sources: BTreeMap<String, (String, u32)>,
}

impl PriceCatalog {
    /// Merges the `PriceCatalog` objects among `objects` (others are skipped). A region priced
    /// twice, a catalog in another currency, or a bad field is a diagnostic; the rest is used.
    pub fn from_objects<'a>(
        objects: impl IntoIterator<Item = &'a Object>,
        currency: &str,
    ) -> (PriceCatalog, Vec<Diagnostic>) {
        let mut catalog = PriceCatalog { currency: currency.to_string(), ..PriceCatalog::default() };
        let mut diagnostics = Vec::new();
        for object in objects {
            let at = |message: String| Diagnostic::error(&object.path, message).at(object.line, None);
            if object.kind() != "PriceCatalog" || object.api_version() != API_VERSION {
                diagnostics.push(
                    Diagnostic::warning(
                        &object.path,
                        format!(
                            "{} {} is not a PriceCatalog ({API_VERSION}); ignored",
                            object.api_version(),
                            object.kind()
                        ),
                    )
                    .at(object.line, None),
                );
                continue;
            }
            let name = object.name().to_string();
            let spec_value = object.value.get("spec").cloned().unwrap_or(serde_json::Value::Null);
            let spec: CatalogSpec = match serde_path_to_error::deserialize(spec_value) {
                Ok(s) => s,
                Err(e) => {
                    diagnostics.push(at(format!("PriceCatalog {name}: spec.{}: {}", e.path(), e.inner())));
                    continue;
                }
            };
            let own = spec.currency.unwrap_or_else(|| currency.to_string());
            if !is_currency(&own) {
                diagnostics
                    .push(at(format!("PriceCatalog {name}: spec.currency: {own:?} is not an ISO 4217 currency code")));
                continue;
            }
            if own != currency {
                diagnostics.push(at(format!(
                    "PriceCatalog {name}: spec.currency: prices in {own}, but the estate reports cost in {currency}; ignored"
                )));
                continue;
            }
            for (region, prices) in spec.regions {
                if let Some(bad) = negative(&prices) {
                    diagnostics.push(at(format!(
                        "PriceCatalog {name}: spec.regions.{region}.{bad}: a price cannot be negative"
                    )));
                    continue;
                }
                if let Some((path, line)) = catalog.sources.get(&region) {
                    diagnostics.push(at(format!(
                        "PriceCatalog {name}: region {region} is already priced at {path}:{line}; this one is ignored"
                    )));
                    continue;
                }
                catalog.sources.insert(region.clone(), (object.path.clone(), object.line));
                catalog.regions.insert(region, prices);
            }
        }
        (catalog, diagnostics)
    }
}

/// A usable price: finite and not negative.
fn valid(price: f64) -> bool {
    price.is_finite() && price >= 0.0
}

fn negative(p: &RegionPrices) -> Option<String> {
    if !valid(p.vcpu_hour) {
        return Some("vcpuHour".into());
    }
    if !valid(p.memory_gib_hour) {
        return Some("memoryGiBHour".into());
    }
    for (field, map) in [("gpuHour", &p.gpu_hour), ("storageGBMonth", &p.storage_gb_month), ("egressGB", &p.egress_gb)]
    {
        if let Some((k, _)) = map.iter().find(|(_, v)| !valid(**v)) {
            return Some(format!("{field}.{k}"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse_objects;

    const CATALOG: &str = "apiVersion: assay.dev/v1alpha1\nkind: PriceCatalog\nmetadata: {name: list}\nspec:\n  currency: USD\n  regions:\n    eu-west-1:\n      vcpuHour: 0.05\n      memoryGiBHour: 0.005\n      gpuHour: {nvidia-a100: 4.1, default: 3}\n      storageGBMonth: {default: 0.1}\n      egressGB: {us-east-1: 0.02, default: 0.09}\n";

    fn catalog(yaml: &str) -> (PriceCatalog, Vec<String>) {
        let (objects, diags) = parse_objects("pricing/list.yaml", yaml);
        assert!(diags.is_empty(), "{diags:?}");
        let (c, d) = PriceCatalog::from_objects(&objects, "USD");
        (c, d.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn a_catalog_reads_as_written() {
        let (c, d) = catalog(CATALOG);
        assert!(d.is_empty(), "{d:?}");
        let eu = &c.regions["eu-west-1"];
        assert_eq!(eu.vcpu_hour, 0.05);
        assert_eq!(RegionPrices::keyed(&eu.gpu_hour, Some("nvidia-a100")), Some(4.1));
        assert_eq!(RegionPrices::keyed(&eu.gpu_hour, Some("nvidia-t4")), Some(3.0));
        assert_eq!(RegionPrices::keyed(&eu.egress_gb, Some("us-east-1")), Some(0.02));
    }

    #[test]
    fn mistakes_are_named_and_the_rest_is_kept() {
        let (_, d) = catalog(&CATALOG.replace("vcpuHour", "cpuHour"));
        assert!(
            d[0].starts_with(
                "pricing/list.yaml:1: error: PriceCatalog list: spec.regions.eu-west-1.cpuHour: unknown field `cpuHour`"
            ),
            "{d:?}"
        );
        let (_, d) = catalog(&CATALOG.replace("0.05", "-1"));
        assert!(d[0].contains("spec.regions.eu-west-1.vcpuHour: a price cannot be negative"), "{d:?}");
        let (c, d) = catalog(&format!("{CATALOG}---\n{}", CATALOG.replace("name: list", "name: again")));
        assert!(
            d[0].contains("PriceCatalog again: region eu-west-1 is already priced at pricing/list.yaml:1"),
            "{d:?}"
        );
        assert_eq!(c.regions.len(), 1);
        let (c, d) = catalog(&CATALOG.replace("currency: USD", "currency: EUR"));
        assert!(d[0].contains("prices in EUR, but the estate reports cost in USD"), "{d:?}");
        assert!(c.regions.is_empty());
    }
}
