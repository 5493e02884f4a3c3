//! Allocation: cost per group of dimensions (FOCUS columns, the billing period, tags), each with
//! its share of the total, untagged spend as its own group, and amounts rounded to the cent so
//! that the groups add up to the total exactly.

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::Decimal128Type;
use serde::Serialize;

use crate::spec::{COLUMNS, ColumnType};
use crate::store::{PERIOD_COLUMN, Store};
use crate::validate::SCALE;
use crate::{Error, Result};

/// Something cost is grouped by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "lowercase")]
pub enum Dimension {
    /// A FOCUS column (a string column such as ServiceName).
    Column(String),
    /// The billing period, `YYYY-MM`.
    Period,
    /// A tag key, written `tag:KEY`.
    Tag(String),
}

impl Dimension {
    /// The dimension as the user writes it.
    pub fn label(&self) -> String {
        match self {
            Self::Column(c) => c.clone(),
            Self::Period => "BillingPeriod".into(),
            Self::Tag(t) => format!("tag:{t}"),
        }
    }

    fn sql(&self) -> String {
        match self {
            Self::Column(c) => format!("\"{c}\""),
            Self::Period => PERIOD_COLUMN.to_string(),
            Self::Tag(t) => format!("\"Tags\"['{}']", t.replace('\'', "''")),
        }
    }

    /// What a group with no value for this dimension is called.
    pub fn missing(&self) -> &'static str {
        match self {
            Self::Tag(_) => "(untagged)",
            _ => "(none)",
        }
    }
}

/// Parses `ServiceName,RegionId,tag:cost-center`.
pub fn parse_dimensions(spec: &str) -> Result<Vec<Dimension>> {
    spec.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            if let Some(tag) = s.strip_prefix("tag:") {
                return if tag.is_empty() {
                    Err(Error::Query("tag: needs a key, as in tag:cost-center".into()))
                } else {
                    Ok(Dimension::Tag(tag.to_string()))
                };
            }
            if s.eq_ignore_ascii_case("BillingPeriod") || s == PERIOD_COLUMN {
                return Ok(Dimension::Period);
            }
            match COLUMNS.iter().find(|c| c.name.eq_ignore_ascii_case(s)) {
                Some(c) if c.kind == ColumnType::String => Ok(Dimension::Column(c.name.to_string())),
                Some(c) => Err(Error::Query(format!("{} is not a dimension (it is a {:?} column)", c.name, c.kind))),
                None => Err(Error::Query(format!(
                    "unknown dimension {s:?}: use a FOCUS column such as ServiceName, BillingPeriod, or tag:KEY"
                ))),
            }
        })
        .collect()
}

/// Checks that a metric is a FOCUS cost column.
pub fn parse_metric(name: &str) -> Result<&'static str> {
    match COLUMNS.iter().find(|c| c.name.eq_ignore_ascii_case(name)) {
        Some(c) if c.kind == ColumnType::Decimal && c.name.ends_with("Cost") => Ok(c.name),
        _ => Err(Error::Query(format!(
            "unknown metric {name:?}: use BilledCost, EffectiveCost, ListCost or ContractedCost"
        ))),
    }
}

/// One group of an allocation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// The group's value for each dimension; `None` when it has none (untagged).
    pub keys: Vec<Option<String>>,
    /// Exact amount, scaled by 10^16.
    #[serde(skip)]
    pub exact: i128,
    /// Exact amount as a decimal string (the sum of the stored values, unrounded).
    pub amount: String,
    /// Amount in cents, rounded so that all groups add up to the total.
    pub cents: i64,
    /// Share of the total, 0 to 1.
    pub share: f64,
}

/// Cost grouped by dimensions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Allocation {
    /// The dimensions, as written.
    pub dimensions: Vec<String>,
    /// The cost column summed.
    pub metric: String,
    /// The billing currency.
    pub currency: String,
    /// Billing period filter, if any.
    pub period: Option<String>,
    /// Groups, largest first.
    pub groups: Vec<Group>,
    /// Total in cents (the exact total, rounded).
    pub total_cents: i64,
    /// Exact total as a decimal string.
    pub total: String,
}

/// A scaled decimal as an exact decimal string, without trailing zeros.
pub fn exact_decimal(value: i128) -> String {
    let text = crate::validate::format_decimal(value, u32::try_from(SCALE).unwrap_or(16));
    let text = text.trim_end_matches('0');
    text.strip_suffix('.').unwrap_or(text).to_string()
}

/// Rounds exact amounts (scaled by 10^16) to cents so that the parts add up to the rounded
/// total: each part is rounded down, and the cents left over go to the parts with the largest
/// remainders (the largest remainder method).
pub fn round_to_cents(amounts: &[i128]) -> (Vec<i64>, i64) {
    let unit: i128 = 10i128.pow(u32::try_from(SCALE).unwrap_or(16) - 2);
    let total: i128 = amounts.iter().sum();
    let total_cents = (total + if total >= 0 { unit / 2 } else { -unit / 2 }) / unit;
    let mut parts: Vec<i128> = amounts.iter().map(|a| a.div_euclid(unit)).collect();
    let mut left = total_cents - parts.iter().sum::<i128>();
    let mut order: Vec<usize> = (0..amounts.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(amounts[i].rem_euclid(unit)));
    // `left` can be negative when the total rounds down past the floors of negative parts.
    let mut k = 0;
    while left != 0 && !order.is_empty() {
        let i = order[k % order.len()];
        if left > 0 {
            parts[i] += 1;
            left -= 1;
        } else {
            parts[i] -= 1;
            left += 1;
        }
        k += 1;
    }
    (parts.into_iter().map(|p| p as i64).collect(), total_cents as i64)
}

/// The billing currency of all stored data; an error when it holds several.
pub async fn currency(store: &Store) -> Result<String> {
    currency_where(store, "").await
}

async fn currency_where(store: &Store, filter: &str) -> Result<String> {
    let batches = crate::query(store, &format!("SELECT DISTINCT \"BillingCurrency\" FROM focus {filter}")).await?;
    let mut currencies: Vec<String> = Vec::new();
    for b in &batches {
        let text = datafusion::arrow::compute::cast(b.column(0), &datafusion::arrow::datatypes::DataType::Utf8)
            .map_err(|e| Error::Query(format!("reading the currencies: {e}")))?;
        let a = text.as_string::<i32>();
        currencies.extend((0..a.len()).filter(|i| !a.is_null(*i)).map(|i| a.value(i).to_string()));
    }
    if currencies.len() > 1 {
        return Err(Error::Query(format!(
            "the billing data holds several currencies ({}): filter with --period or query each with `assay cost query`",
            currencies.join(", ")
        )));
    }
    Ok(currencies.into_iter().next().unwrap_or_else(|| "USD".into()))
}

/// Groups the `metric` by `dimensions`, optionally in one billing period (`YYYY-MM`).
pub async fn allocate(
    store: &Store,
    dimensions: &[Dimension],
    period: Option<&str>,
    metric: &str,
) -> Result<Allocation> {
    let metric = parse_metric(metric)?;
    let filter = match period {
        Some(p) => {
            if !(p.len() == 7
                && p.as_bytes()[4] == b'-'
                && p.bytes().enumerate().all(|(i, b)| i == 4 || b.is_ascii_digit()))
            {
                return Err(Error::Query(format!("period {p:?} is not YYYY-MM")));
            }
            format!("WHERE {PERIOD_COLUMN} = '{p}'")
        }
        None => String::new(),
    };
    let currency = currency_where(store, &filter).await?;
    let keys: Vec<String> = dimensions.iter().enumerate().map(|(i, d)| format!("{} AS k{i}", d.sql())).collect();
    let group_by: Vec<String> = (1..=dimensions.len()).map(|i| i.to_string()).collect();
    let sql = if dimensions.is_empty() {
        format!("SELECT SUM(\"{metric}\") AS amount FROM focus {filter}")
    } else {
        format!(
            "SELECT {}, SUM(\"{metric}\") AS amount FROM focus {filter} GROUP BY {}",
            keys.join(", "),
            group_by.join(", ")
        )
    };
    let batches = crate::query(store, &sql).await?;
    let mut groups = Vec::new();
    for batch in &batches {
        let amounts = batch.column(dimensions.len()).as_primitive::<Decimal128Type>();
        // Group keys as text, one cast per column and batch.
        let keys: Vec<_> = (0..dimensions.len())
            .map(|c| {
                datafusion::arrow::compute::cast(batch.column(c), &datafusion::arrow::datatypes::DataType::Utf8)
                    .map_err(|e| Error::Query(format!("reading group keys: {e}")))
            })
            .collect::<Result<_>>()?;
        for row in 0..batch.num_rows() {
            let keys = keys
                .iter()
                .map(|k| {
                    let s = k.as_string::<i32>();
                    (!s.is_null(row)).then(|| s.value(row).to_string())
                })
                .collect();
            let exact = if amounts.is_null(row) { 0 } else { amounts.value(row) };
            groups.push(Group { keys, exact, amount: String::new(), cents: 0, share: 0.0 });
        }
    }
    groups.sort_by(|a, b| b.exact.cmp(&a.exact).then_with(|| a.keys.cmp(&b.keys)));
    let (cents, total_cents) = round_to_cents(&groups.iter().map(|g| g.exact).collect::<Vec<_>>());
    let total: i128 = groups.iter().map(|g| g.exact).sum();
    for (g, c) in groups.iter_mut().zip(cents) {
        g.cents = c;
        g.amount = exact_decimal(g.exact);
        g.share = if total == 0 { 0.0 } else { g.exact as f64 / total as f64 };
    }
    Ok(Allocation {
        dimensions: dimensions.iter().map(Dimension::label).collect(),
        metric: metric.to_string(),
        currency,
        period: period.map(str::to_string),
        groups,
        total_cents,
        total: exact_decimal(total),
    })
}

/// Formats cents as `1234.56`.
pub fn format_cents(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents.unsigned_abs() / 100, cents.unsigned_abs() % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_adds_up() {
        let third = 10i128.pow(16) / 3; // 0.3333... dollars
        let (parts, total) = round_to_cents(&[third, third, third]);
        assert_eq!(total, 100);
        assert_eq!(parts.iter().sum::<i64>(), 100);
        let (parts, total) = round_to_cents(&[-third, 5 * 10i128.pow(14)]);
        assert_eq!(parts.iter().sum::<i64>(), total);
        assert_eq!(format_cents(-1234), "-12.34");
    }

    proptest::proptest! {
        /// Whatever the amounts, the rounded parts add up to the rounded total, and each part is
        /// within a cent of its exact amount.
        #[test]
        fn rounded_parts_add_up_to_the_total(amounts in proptest::collection::vec(-10i128.pow(24)..10i128.pow(24), 0..200)) {
            let (parts, total) = round_to_cents(&amounts);
            proptest::prop_assert_eq!(parts.iter().sum::<i64>(), total);
            let unit = 10i128.pow(14);
            for (p, a) in parts.iter().zip(&amounts) {
                let exact_cents = *a as f64 / unit as f64;
                proptest::prop_assert!((*p as f64 - exact_cents).abs() < 1.0 + 1e-6, "{p} vs {exact_cents}");
            }
        }
    }

    #[test]
    fn dimensions_parse_and_name_mistakes() {
        let dims = parse_dimensions("ServiceName, regionid,tag:cost-center,BillingPeriod").unwrap_or_default();
        assert_eq!(
            dims,
            vec![
                Dimension::Column("ServiceName".into()),
                Dimension::Column("RegionId".into()),
                Dimension::Tag("cost-center".into()),
                Dimension::Period
            ]
        );
        let err = parse_dimensions("Servicename,Nope").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("unknown dimension \"Nope\""), "{err}");
        assert!(parse_dimensions("BilledCost").is_err());
        assert!(parse_metric("effectivecost").is_ok());
        assert!(parse_metric("ServiceName").is_err());
    }
}
