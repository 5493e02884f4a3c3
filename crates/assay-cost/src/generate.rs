//! A generator of realistic FOCUS billing data with labelled anomalies, to evaluate the
//! detectors and forecasts and to benchmark the store.
//!
//! Daily rows per resource across several accounts, services, regions and cost centers, with
//! weekly seasonality, growth, noise, some untagged spend and commitment discounts; anomalies of
//! four kinds are injected into chosen series and listed in a labels file.

use std::io::Write;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::validate::{civil_from_days, days_from_civil};

/// What to generate.
#[derive(Debug, Clone)]
pub struct Options {
    /// Number of days.
    pub days: u32,
    /// Random seed: the same seed gives the same data.
    pub seed: u64,
    /// First day, as days since 1970-01-01.
    pub start_day: i64,
    /// Resources per (account, service, region) series; rows per day scale with it.
    pub resources: u32,
    /// Whether to inject anomalies.
    pub anomalies: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self { days: 120, seed: 1, start_day: days_from_civil(2024, 1, 1), resources: 3, anomalies: true }
    }
}

/// An injected anomaly, as the labels file lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    /// `spike`, `level_shift`, `drift` or `new_service`.
    pub kind: String,
    /// First affected day, `YYYY-MM-DD`.
    pub start: String,
    /// Last affected day, inclusive.
    pub end: String,
    /// The series: service, account, region and cost center.
    pub service: String,
    /// BillingAccountId.
    pub account: String,
    /// RegionId.
    pub region: String,
    /// The `cost-center` tag, or `None` for untagged spend.
    pub cost_center: Option<String>,
    /// The cost multiplier at the anomaly's height.
    pub factor: f64,
}

struct Service {
    name: &'static str,
    category: &'static str,
    provider: &'static str,
    unit: &'static str,
    /// Mean daily cost of one resource.
    base: f64,
    /// Weekend level relative to weekdays.
    weekend: f64,
}

const SERVICES: &[Service] = &[
    Service {
        name: "Amazon Elastic Compute Cloud",
        category: "Compute",
        provider: "AWS",
        unit: "Hours",
        base: 180.0,
        weekend: 0.65,
    },
    Service {
        name: "Amazon SageMaker",
        category: "AI and Machine Learning",
        provider: "AWS",
        unit: "Hours",
        base: 420.0,
        weekend: 0.8,
    },
    Service {
        name: "Amazon Simple Storage Service",
        category: "Storage",
        provider: "AWS",
        unit: "GB-Mo",
        base: 55.0,
        weekend: 1.0,
    },
    Service {
        name: "Amazon Relational Database Service",
        category: "Databases",
        provider: "AWS",
        unit: "Hours",
        base: 95.0,
        weekend: 0.95,
    },
    Service {
        name: "AWS Data Transfer",
        category: "Networking",
        provider: "AWS",
        unit: "GB",
        base: 30.0,
        weekend: 0.6,
    },
    Service {
        name: "Virtual Machines",
        category: "Compute",
        provider: "Microsoft",
        unit: "Hours",
        base: 140.0,
        weekend: 0.7,
    },
    Service {
        name: "Azure OpenAI Service",
        category: "AI and Machine Learning",
        provider: "Microsoft",
        unit: "1K Tokens",
        base: 260.0,
        weekend: 0.5,
    },
];

const NEW_SERVICE: Service = Service {
    name: "Amazon Bedrock",
    category: "AI and Machine Learning",
    provider: "AWS",
    unit: "1K Tokens",
    base: 350.0,
    weekend: 0.6,
};

struct Account {
    id: &'static str,
    name: &'static str,
    provider: &'static str,
    regions: &'static [&'static str],
}

const ACCOUNTS: &[Account] = &[
    Account { id: "111111111111", name: "ml-platform", provider: "AWS", regions: &["us-east-1", "eu-west-1"] },
    Account { id: "222222222222", name: "data-lake", provider: "AWS", regions: &["us-east-1", "eu-central-1"] },
    Account {
        id: "3f1c0d2e-azure-billing",
        name: "research",
        provider: "Microsoft",
        regions: &["westeurope", "eastus"],
    },
];

const COST_CENTERS: &[&str] = &["CC-1042", "CC-2001", "CC-3100", "CC-4420"];

/// One daily series: a resource group of one service in one account and region.
struct Series {
    service: &'static Service,
    account: &'static Account,
    region: &'static str,
    cost_center: Option<&'static str>,
    /// Scale of this series relative to the service's base.
    scale: f64,
    /// Daily growth rate.
    growth: f64,
    /// Per-day multipliers from injected anomalies (1.0 elsewhere); 0 before a new service starts.
    shape: Vec<f64>,
}

fn date(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

fn normal(rng: &mut StdRng) -> f64 {
    // Box-Muller.
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn build_series(options: &Options, rng: &mut StdRng) -> (Vec<Series>, Vec<Label>) {
    let days = options.days as usize;
    let mut series = Vec::new();
    for account in ACCOUNTS {
        for service in SERVICES.iter().filter(|s| s.provider == account.provider) {
            for region in account.regions {
                // Most spend is tagged; one series in eight is untagged.
                let cost_center = if rng.random::<f64>() < 0.125 {
                    None
                } else {
                    Some(COST_CENTERS[rng.random_range(0..COST_CENTERS.len())])
                };
                series.push(Series {
                    service,
                    account,
                    region,
                    cost_center,
                    scale: 0.5 + rng.random::<f64>(),
                    growth: 0.001 + rng.random::<f64>() * 0.003,
                    shape: vec![1.0; days],
                });
            }
        }
    }
    let mut labels = Vec::new();
    if !options.anomalies || days < 35 {
        return (series, labels);
    }
    let start = options.start_day;
    // Anomalies start after four weeks of history, so detectors have something to learn from.
    let pick_day = |rng: &mut StdRng, span: usize| rng.random_range(28..days.saturating_sub(span).max(29));
    let kinds = ["spike", "level_shift", "drift", "spike", "level_shift", "spike"];
    let mut used = std::collections::HashSet::new();
    for kind in kinds {
        let mut index = rng.random_range(0..series.len());
        while !used.insert(index) {
            index = (index + 1) % series.len();
        }
        let s = &mut series[index];
        let (first, last, factor) = match kind {
            "spike" => {
                let d = pick_day(rng, 1);
                let factor = 3.0 + rng.random::<f64>() * 3.0;
                s.shape[d] *= factor;
                (d, d, factor)
            }
            "level_shift" => {
                let d = pick_day(rng, 20);
                let factor = 1.8 + rng.random::<f64>();
                for v in &mut s.shape[d..] {
                    *v *= factor;
                }
                (d, days - 1, factor)
            }
            _ => {
                let d = pick_day(rng, 21);
                let factor = 2.5;
                for (i, v) in s.shape[d..].iter_mut().enumerate() {
                    *v *= 1.0 + (factor - 1.0) * ((i as f64 + 1.0) / 14.0).min(1.0);
                }
                (d, days - 1, factor)
            }
        };
        labels.push(Label {
            kind: kind.to_string(),
            start: date(start + first as i64),
            end: date(start + last as i64),
            service: s.service.name.to_string(),
            account: s.account.id.to_string(),
            region: s.region.to_string(),
            cost_center: s.cost_center.map(str::to_string),
            factor,
        });
    }
    // A new service appears in the first account.
    let d = pick_day(rng, 20);
    let account = &ACCOUNTS[0];
    let mut shape = vec![0.0; days];
    for v in &mut shape[d..] {
        *v = 1.0;
    }
    series.push(Series {
        service: &NEW_SERVICE,
        account,
        region: account.regions[0],
        cost_center: Some(COST_CENTERS[0]),
        scale: 1.0,
        growth: 0.002,
        shape,
    });
    labels.push(Label {
        kind: "new_service".into(),
        start: date(start + d as i64),
        end: date(start + days as i64 - 1),
        service: NEW_SERVICE.name.to_string(),
        account: account.id.to_string(),
        region: account.regions[0].to_string(),
        cost_center: Some(COST_CENTERS[0].to_string()),
        factor: 1.0,
    });
    labels.sort_by(|a, b| a.start.cmp(&b.start));
    (series, labels)
}

/// The CSV header of generated files: FOCUS 1.0 columns.
pub const HEADER: &[&str] = &[
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "CommitmentDiscountCategory",
    "CommitmentDiscountId",
    "CommitmentDiscountStatus",
    "CommitmentDiscountType",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "ResourceId",
    "ServiceCategory",
    "ServiceName",
    "SubAccountId",
    "Tags",
];

/// Writes generated data, one CSV per billing month, through `open(name)`; returns the labels.
/// Days are written in order, so each month's file is complete when the next begins.
pub fn generate(
    options: &Options,
    open: &mut dyn FnMut(&str) -> std::io::Result<Box<dyn Write>>,
) -> std::io::Result<Vec<Label>> {
    let mut rng = StdRng::seed_from_u64(options.seed);
    let (series, labels) = build_series(options, &mut rng);
    let mut current: Option<(String, csv::Writer<Box<dyn Write>>)> = None;
    for day_index in 0..options.days as usize {
        let day = options.start_day + day_index as i64;
        let (y, m, _) = civil_from_days(day);
        let month = format!("{y:04}-{m:02}");
        if current.as_ref().is_none_or(|(cur, _)| *cur != month) {
            if let Some((_, mut w)) = current.take() {
                w.flush()?;
            }
            let mut w = csv::Writer::from_writer(open(&format!("focus-{month}.csv"))?);
            w.write_record(HEADER)?;
            current = Some((month.clone(), w));
        }
        let Some((_, writer)) = current.as_mut() else { continue };
        let period_start = format!("{y:04}-{m:02}-01T00:00:00Z");
        let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        let period_end = format!("{ny:04}-{nm:02}-01T00:00:00Z");
        let charge_start = format!("{}T00:00:00Z", date(day));
        let charge_end = format!("{}T00:00:00Z", date(day + 1));
        // 1970-01-01 was a Thursday: (day + 3) % 7 is 0 on Monday.
        let weekday = (day + 3).rem_euclid(7);
        for s in &series {
            let shape = s.shape[day_index];
            if shape == 0.0 {
                continue;
            }
            let seasonal = if weekday >= 5 { s.service.weekend } else { 1.0 };
            let trend = (1.0 + s.growth).powi(day_index as i32);
            for r in 0..options.resources {
                let noise = (0.06 * normal(&mut rng)).exp();
                let list =
                    s.service.base * s.scale * seasonal * trend * shape * noise / f64::from(options.resources.max(1));
                // Compute in the first account runs under a savings plan: 28% off.
                let committed = s.service.category == "Compute" && s.account.id == ACCOUNTS[0].id && r % 2 == 0;
                let effective = if committed { list * 0.72 } else { list };
                let unit_price = 0.25;
                let quantity = list / unit_price;
                let tags = match s.cost_center {
                    Some(cc) => format!(r#"{{"cost-center":"{cc}","team":"{}"}}"#, s.account.name),
                    None => String::new(),
                };
                let resource =
                    format!("{}/{}/{}/r{r}", s.account.id, s.region, s.service.name.replace(' ', "-").to_lowercase());
                writer.write_record([
                    format!("{effective:.10}").as_str(),
                    s.account.id,
                    s.account.name,
                    "USD",
                    &period_end,
                    &period_start,
                    "Usage",
                    "",
                    &format!("{} usage in {}", s.service.name, s.region),
                    "Usage-Based",
                    &charge_end,
                    &charge_start,
                    if committed { "Spend" } else { "" },
                    if committed { "arn:savingsplan/sp-1" } else { "" },
                    if committed { "Used" } else { "" },
                    if committed { "Savings Plan" } else { "" },
                    &format!("{quantity:.6}"),
                    s.service.unit,
                    &format!("{list:.10}"),
                    &format!("{effective:.10}"),
                    if s.account.provider == "AWS" { "Amazon Web Services, Inc." } else { "Microsoft" },
                    &format!("{list:.10}"),
                    &format!("{unit_price}"),
                    if committed { "Committed" } else { "Standard" },
                    &format!("{quantity:.6}"),
                    s.service.unit,
                    s.account.provider,
                    s.account.provider,
                    s.region,
                    &resource,
                    s.service.category,
                    s.service.name,
                    s.account.id,
                    &tags,
                ])?;
            }
        }
    }
    if let Some((_, mut w)) = current.take() {
        w.flush()?;
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Generates into a temporary directory; returns (file name, text) pairs and the labels.
    fn run(options: &Options) -> (Vec<(String, String)>, Vec<Label>) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut names = Vec::new();
        let mut open = |name: &str| -> std::io::Result<Box<dyn Write>> {
            names.push(name.to_string());
            Ok(Box::new(std::fs::File::create(dir.path().join(name))?))
        };
        let labels = generate(options, &mut open).unwrap_or_else(|e| panic!("{e}"));
        let files = names
            .iter()
            .map(|n| (n.clone(), std::fs::read_to_string(dir.path().join(n)).unwrap_or_default()))
            .collect();
        (files, labels)
    }

    #[test]
    fn same_seed_same_data_and_every_row_is_valid_focus() {
        let options = Options { days: 60, ..Options::default() };
        let (a, labels) = run(&options);
        let (b, _) = run(&options);
        assert_eq!(a, b);
        assert_eq!(
            a.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            vec!["focus-2024-01.csv", "focus-2024-02.csv"]
        );
        let kinds: std::collections::BTreeSet<&str> = labels.iter().map(|l| l.kind.as_str()).collect();
        assert_eq!(kinds.into_iter().collect::<Vec<_>>(), vec!["drift", "level_shift", "new_service", "spike"]);
        let mut rows = 0;
        for (_, text) in &a {
            let mut reader = csv::Reader::from_reader(text.as_bytes());
            let headers = reader.headers().cloned().unwrap_or_default();
            let fields: Vec<&str> = headers.iter().collect();
            let header = crate::validate::Header::new(&fields).unwrap_or_else(|e| panic!("{e}"));
            for record in reader.records() {
                let record = record.unwrap_or_default();
                let values: Vec<&str> = record.iter().collect();
                let row = crate::validate::row(&header, &values).unwrap_or_else(|e| panic!("{e:?}"));
                assert!(row.warnings.is_empty(), "{:?}", row.warnings);
                rows += 1;
            }
        }
        assert!(rows > 60 * 40, "{rows} rows");
    }
}
