//! The FOCUS (FinOps Open Cost and Usage Specification) columns, versions 1.0 to 1.2: their
//! types, whether they are mandatory, and their allowed values. Facts from the specification;
//! the table is ours.

/// The data type of a FOCUS column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// Free text, or one of [`Column::allowed`].
    String,
    /// A decimal number (costs, prices, quantities).
    Decimal,
    /// An ISO 8601 date and time in UTC.
    DateTime,
    /// A JSON object of string keys (the `Tags` column).
    KeyValue,
}

/// One FOCUS column.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// Column id, as in the header.
    pub name: &'static str,
    /// Its type.
    pub kind: ColumnType,
    /// Present in every FOCUS dataset and never null (Mandatory, nulls not allowed).
    pub required: bool,
    /// Allowed values, when the column is an enumeration.
    pub allowed: &'static [&'static str],
    /// The FOCUS version that introduced it (10 = 1.0, 11 = 1.1, 12 = 1.2).
    pub since: u8,
}

const fn col(name: &'static str, kind: ColumnType, required: bool, since: u8) -> Column {
    Column { name, kind, required, allowed: &[], since }
}

const fn enumeration(name: &'static str, required: bool, allowed: &'static [&'static str], since: u8) -> Column {
    Column { name, kind: ColumnType::String, required, allowed, since }
}

use ColumnType::{DateTime, Decimal, KeyValue, String as Text};

/// Allowed values of ChargeCategory.
pub const CHARGE_CATEGORIES: &[&str] = &["Usage", "Purchase", "Tax", "Credit", "Adjustment"];

/// Allowed values of ServiceCategory.
pub const SERVICE_CATEGORIES: &[&str] = &[
    "AI and Machine Learning",
    "Analytics",
    "Business Applications",
    "Compute",
    "Databases",
    "Developer Tools",
    "Multicloud",
    "Identity",
    "Integration",
    "Internet of Things",
    "Management and Governance",
    "Media",
    "Migration",
    "Mobile",
    "Networking",
    "Security",
    "Storage",
    "Web",
    "Other",
];

/// Every column assay knows, in the order it stores them.
pub const COLUMNS: &[Column] = &[
    col("AvailabilityZone", Text, false, 10),
    col("BilledCost", Decimal, true, 10),
    col("BillingAccountId", Text, true, 10),
    col("BillingAccountName", Text, false, 10),
    col("BillingAccountType", Text, false, 12),
    col("BillingCurrency", Text, true, 10),
    col("BillingPeriodEnd", DateTime, true, 10),
    col("BillingPeriodStart", DateTime, true, 10),
    col("CapacityReservationId", Text, false, 11),
    enumeration("CapacityReservationStatus", false, &["Used", "Unused"], 11),
    enumeration("ChargeCategory", true, CHARGE_CATEGORIES, 10),
    enumeration("ChargeClass", false, &["Correction"], 10),
    col("ChargeDescription", Text, false, 10),
    enumeration("ChargeFrequency", false, &["One-Time", "Recurring", "Usage-Based"], 10),
    col("ChargePeriodEnd", DateTime, true, 10),
    col("ChargePeriodStart", DateTime, true, 10),
    enumeration("CommitmentDiscountCategory", false, &["Spend", "Usage"], 10),
    col("CommitmentDiscountId", Text, false, 10),
    col("CommitmentDiscountName", Text, false, 10),
    col("CommitmentDiscountQuantity", Decimal, false, 11),
    enumeration("CommitmentDiscountStatus", false, &["Used", "Unused"], 10),
    col("CommitmentDiscountType", Text, false, 10),
    col("CommitmentDiscountUnit", Text, false, 11),
    col("ConsumedQuantity", Decimal, false, 10),
    col("ConsumedUnit", Text, false, 10),
    col("ContractedCost", Decimal, false, 10),
    col("ContractedUnitPrice", Decimal, false, 10),
    col("EffectiveCost", Decimal, true, 10),
    col("InvoiceId", Text, false, 12),
    col("InvoiceIssuerName", Text, false, 10),
    col("ListCost", Decimal, false, 10),
    col("ListUnitPrice", Decimal, false, 10),
    enumeration("PricingCategory", false, &["Standard", "Dynamic", "Committed", "Other"], 10),
    col("PricingCurrency", Text, false, 12),
    col("PricingQuantity", Decimal, false, 10),
    col("PricingUnit", Text, false, 10),
    col("ProviderName", Text, true, 10),
    col("PublisherName", Text, false, 10),
    col("RegionId", Text, false, 10),
    col("RegionName", Text, false, 10),
    col("ResourceId", Text, false, 10),
    col("ResourceName", Text, false, 10),
    col("ResourceType", Text, false, 10),
    enumeration("ServiceCategory", true, SERVICE_CATEGORIES, 10),
    col("ServiceName", Text, true, 10),
    col("ServiceSubcategory", Text, false, 11),
    col("SkuId", Text, false, 10),
    col("SkuMeter", Text, false, 11),
    col("SkuPriceDetails", KeyValue, false, 11),
    col("SkuPriceId", Text, false, 10),
    col("SubAccountId", Text, false, 10),
    col("SubAccountName", Text, false, 10),
    col("SubAccountType", Text, false, 12),
    col("Tags", KeyValue, false, 10),
];

/// The column with this id.
pub fn column(name: &str) -> Option<&'static Column> {
    COLUMNS.iter().find(|c| c.name == name)
}

/// The index of a column in [`COLUMNS`].
pub fn index(name: &str) -> Option<usize> {
    COLUMNS.iter().position(|c| c.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_sorted() {
        let names: Vec<&str> = COLUMNS.iter().map(|c| c.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted);
    }
}
