//! Budgets as code: `budgets/*.yaml` objects of kind `Budget`.
//!
//! Parsed in two stages: the document as written (unknown keys are errors naming the key), then
//! validated (amounts, currencies, thresholds) into a [`Budget`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::settings::EnforcementAction;
use crate::{Diagnostic, Object};

/// The API version of assay's own objects.
pub const API_VERSION: &str = "assay.dev/v1alpha1";

/// ISO 4217 currency codes in use.
pub const CURRENCIES: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD", "BIF",
    "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF", "CLP", "CNY", "COP", "CRC",
    "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS",
    "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD",
    "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL",
    "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD",
    "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD",
    "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP",
    "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VES",
    "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
];

/// Whether a code is an ISO 4217 currency.
pub fn is_currency(code: &str) -> bool {
    CURRENCIES.binary_search(&code).is_ok()
}

/// Which billing rows a budget covers. Every filter given must match; an empty filter matches all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// Tags that must all be present with these values.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// FOCUS ServiceName values.
    #[serde(default)]
    pub services: Vec<String>,
    /// FOCUS BillingAccountId or SubAccountId values.
    #[serde(default)]
    pub accounts: Vec<String>,
    /// FOCUS RegionId values.
    #[serde(default)]
    pub regions: Vec<String>,
    /// FOCUS ProviderName values.
    #[serde(default)]
    pub providers: Vec<String>,
}

/// How long a budget's period is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// A calendar month.
    Monthly,
    /// A calendar quarter.
    Quarterly,
}

/// What an alert threshold is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertOn {
    /// Spend to date in the period.
    Actual,
    /// Forecast spend at the end of the period.
    Forecast,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertSpec {
    on: AlertOn,
    at: serde_json::Value,
}

/// An alert threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Alert {
    /// Actual or forecast spend.
    pub on: AlertOn,
    /// Fraction of the amount, 0.8 for `80%`.
    pub at: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct BudgetSpec {
    #[serde(default)]
    scope: Scope,
    amount: serde_json::Value,
    #[serde(default)]
    currency: Option<String>,
    period: Period,
    #[serde(default)]
    alerts: Vec<AlertSpec>,
    #[serde(default)]
    enforcement_action: EnforcementAction,
}

/// A budget: an amount per period over a scope of billing rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Budget {
    /// `metadata.name`.
    pub name: String,
    /// File it came from.
    pub path: String,
    /// Line where its document starts.
    pub line: u32,
    /// Which rows count.
    pub scope: Scope,
    /// The amount per period, in the currency's major unit.
    pub amount: f64,
    /// ISO 4217 code.
    pub currency: String,
    /// Monthly or quarterly.
    pub period: Period,
    /// Alert thresholds.
    pub alerts: Vec<Alert>,
    /// What a change that pushes the forecast over the budget gets.
    pub enforcement_action: EnforcementAction,
}

/// `"80%"` (a percentage) or `0.8` (a fraction) as a fraction.
fn threshold(value: &serde_json::Value) -> Result<f64, String> {
    match value {
        serde_json::Value::String(s) => {
            let Some(pct) = s.trim().strip_suffix('%') else {
                return Err(format!("{s:?} is not a percentage such as \"80%\""));
            };
            pct.trim()
                .parse::<f64>()
                .map(|p| p / 100.0)
                .map_err(|_| format!("{s:?} is not a percentage such as \"80%\""))
        }
        serde_json::Value::Number(n) => n.as_f64().ok_or_else(|| format!("{n} is not a number")),
        other => Err(format!("{other} is not a percentage such as \"80%\"")),
    }
}

impl Budget {
    /// Reads a `Budget` object; `default_currency` is the estate's. Errors name the field.
    pub fn from_object(object: &Object, default_currency: &str) -> Result<Budget, Diagnostic> {
        let at = |message: String| Diagnostic::error(&object.path, message).at(object.line, None);
        let name = object.name().to_string();
        if name.is_empty() {
            return Err(at("Budget has no metadata.name".into()));
        }
        let spec_value = object.value.get("spec").cloned().unwrap_or(serde_json::Value::Null);
        let spec: BudgetSpec = serde_path_to_error::deserialize(spec_value)
            .map_err(|e| at(format!("Budget {name}: spec.{}: {}", e.path(), e.inner())))?;
        let amount = match &spec.amount {
            serde_json::Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
            serde_json::Value::String(s) => s.trim().parse::<f64>().unwrap_or(f64::NAN),
            _ => f64::NAN,
        };
        if !(amount.is_finite() && amount > 0.0) {
            return Err(at(format!("Budget {name}: spec.amount: {} is not a positive number", spec.amount)));
        }
        let currency = spec.currency.unwrap_or_else(|| default_currency.to_string());
        if !is_currency(&currency) {
            return Err(at(format!("Budget {name}: spec.currency: {currency:?} is not an ISO 4217 currency code")));
        }
        let mut alerts = Vec::new();
        for (i, alert) in spec.alerts.iter().enumerate() {
            let fraction = threshold(&alert.at).map_err(|e| at(format!("Budget {name}: spec.alerts[{i}].at: {e}")))?;
            if !(fraction > 0.0 && fraction <= 10.0) {
                return Err(at(format!("Budget {name}: spec.alerts[{i}].at: {fraction} is out of range")));
            }
            alerts.push(Alert { on: alert.on, at: fraction });
        }
        Ok(Budget {
            name,
            path: object.path.clone(),
            line: object.line,
            scope: spec.scope,
            amount,
            currency,
            period: spec.period,
            alerts,
            enforcement_action: spec.enforcement_action,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse_objects;

    fn budget(yaml: &str) -> Result<Budget, String> {
        let (objects, diags) = parse_objects("budgets/b.yaml", yaml);
        assert!(diags.is_empty(), "{diags:?}");
        Budget::from_object(&objects[0], "USD").map_err(|d| d.to_string())
    }

    const GOOD: &str = "apiVersion: assay.dev/v1alpha1\nkind: Budget\nmetadata: {name: ml-training}\nspec:\n  scope: {tags: {cost-center: CC-1042}, services: [\"Amazon SageMaker\"], regions: [eu-west-1]}\n  amount: 120000\n  currency: EUR\n  period: monthly\n  alerts: [{on: actual, at: 80%}, {on: forecast, at: 100%}]\n  enforcementAction: deny\n";

    #[test]
    fn a_budget_reads_as_written() {
        let b = budget(GOOD).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(b.amount, 120_000.0);
        assert_eq!(b.currency, "EUR");
        assert_eq!(b.scope.tags.get("cost-center").map(String::as_str), Some("CC-1042"));
        assert_eq!(b.alerts, vec![Alert { on: AlertOn::Actual, at: 0.8 }, Alert { on: AlertOn::Forecast, at: 1.0 }]);
        assert_eq!(b.enforcement_action, EnforcementAction::Deny);
    }

    #[test]
    fn mistakes_name_the_field_file_and_line() {
        let typo = budget(&GOOD.replace("  amount:", "  amout:")).err().unwrap_or_default();
        assert!(
            typo.starts_with("budgets/b.yaml:1: error: Budget ml-training: spec.amout: unknown field `amout`"),
            "{typo}"
        );
        let scope = budget(&GOOD.replace("regions:", "region:")).err().unwrap_or_default();
        assert!(scope.contains("spec.scope.region: unknown field `region`"), "{scope}");
        let currency = budget(&GOOD.replace("EUR", "EUD")).err().unwrap_or_default();
        assert!(currency.contains("spec.currency: \"EUD\" is not an ISO 4217 currency code"), "{currency}");
        let period = budget(&GOOD.replace("monthly", "weekly")).err().unwrap_or_default();
        assert!(period.contains("spec.period: unknown variant `weekly`"), "{period}");
        let alert = budget(&GOOD.replace("at: 80%", "at: eighty")).err().unwrap_or_default();
        assert!(alert.contains("spec.alerts[0].at: \"eighty\" is not a percentage"), "{alert}");
    }

    #[test]
    fn currency_list_is_sorted_for_binary_search() {
        assert!(CURRENCIES.windows(2).all(|w| w[0] < w[1]));
        assert!(is_currency("USD") && !is_currency("XYZ"));
    }
}
