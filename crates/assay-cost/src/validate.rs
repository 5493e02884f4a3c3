//! Validating FOCUS rows against the specification (sans-IO: text in, typed cells out).
//!
//! Real exports bend the specification: the literal `NULL`, empty strings for null, `Usage-based`
//! for `Usage-Based`, a missing ContractedCost. A row is rejected only when it cannot be
//! accounted for: a cost that is not a number, a billing period that is not a date, a mandatory
//! dimension that is null, Tags that are not a JSON object. Everything else that deviates is
//! kept, normalised where the intent is certain, and reported as a warning.

use std::borrow::Cow;
use std::collections::BTreeMap;

pub use assay_estate::calendar::{civil_from_days, days_from_civil};

use crate::spec::{COLUMNS, Column, ColumnType};

/// Decimal scale used for every cost, price and quantity: 16 digits after the point.
pub const SCALE: i8 = 16;

/// A validated cell; text borrows from the record it was read from where it can.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    /// No value.
    Null,
    /// A string.
    Text(Cow<'a, str>),
    /// A decimal, as an integer scaled by 10^[`SCALE`].
    Decimal(i128),
    /// Microseconds since the Unix epoch, UTC.
    DateTime(i64),
    /// Key-value pairs (Tags), keys sorted.
    KeyValue(Vec<(String, String)>),
}

/// One problem with one cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// The column.
    pub column: &'static str,
    /// What is wrong.
    pub message: String,
}

/// Where each FOCUS column is in a file's header.
#[derive(Debug, Clone)]
pub struct Header {
    /// For each of [`COLUMNS`], the field index in the file, if present.
    pub positions: Vec<Option<usize>>,
    /// Header fields that are not FOCUS columns (custom `x_` columns and others); not stored.
    pub extra: Vec<String>,
}

impl Header {
    /// Reads a header row. Fails, naming them, when mandatory columns are missing: the file is
    /// not FOCUS data.
    pub fn new(fields: &[&str]) -> Result<Header, String> {
        let trimmed: Vec<&str> = fields.iter().map(|f| f.trim().trim_start_matches('\u{feff}')).collect();
        let positions: Vec<Option<usize>> = COLUMNS.iter().map(|c| trimmed.iter().position(|f| *f == c.name)).collect();
        let missing: Vec<&str> =
            COLUMNS.iter().zip(&positions).filter(|(c, p)| c.required && p.is_none()).map(|(c, _)| c.name).collect();
        if !missing.is_empty() {
            return Err(format!("not FOCUS data: missing mandatory columns {}", missing.join(", ")));
        }
        let extra = trimmed.iter().filter(|f| crate::spec::column(f).is_none()).map(|f| f.to_string()).collect();
        Ok(Header { positions, extra })
    }
}

/// A validated row: one cell per column of [`COLUMNS`], and the warnings it raised.
#[derive(Debug, Clone, PartialEq)]
pub struct Row<'a> {
    /// Cells in [`COLUMNS`] order.
    pub cells: Vec<Cell<'a>>,
    /// What was normalised or is off-spec but kept.
    pub warnings: Vec<Issue>,
}

/// Where the columns looked at for every row are in [`COLUMNS`], found once.
struct Hot {
    billing_period_start: usize,
    billing_account_id: usize,
    charge_period_start: usize,
    charge_period_end: usize,
}

static HOT: std::sync::LazyLock<Hot> = std::sync::LazyLock::new(|| {
    let at = |name| crate::spec::index(name).unwrap_or(usize::MAX);
    Hot {
        billing_period_start: at("BillingPeriodStart"),
        billing_account_id: at("BillingAccountId"),
        charge_period_start: at("ChargePeriodStart"),
        charge_period_end: at("ChargePeriodEnd"),
    }
});

impl<'a> Row<'a> {
    /// The cell of a column.
    pub fn get(&self, name: &str) -> &Cell<'a> {
        crate::spec::index(name).and_then(|i| self.cells.get(i)).unwrap_or(&Cell::Null)
    }

    fn at(&self, i: usize) -> &Cell<'a> {
        self.cells.get(i).unwrap_or(&Cell::Null)
    }

    /// What decides the partition a row is stored in: its billing period start (microseconds)
    /// and billing account; `None` only for a row that did not pass validation.
    pub fn partition(&self) -> Option<(i64, &str)> {
        match (self.at(HOT.billing_period_start), self.at(HOT.billing_account_id)) {
            (Cell::DateTime(start), Cell::Text(account)) => Some((*start, account)),
            _ => None,
        }
    }

    /// A text cell's value.
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Cell::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// Whether a cell (trimmed) stands for no value: empty, `NULL` or `null`.
pub(crate) fn is_null(raw: &str) -> bool {
    raw.is_empty() || raw == "NULL" || raw == "null"
}

/// The fields of one record, by position in the file.
pub trait Fields {
    /// The field at `i`, if the record has one.
    fn field(&self, i: usize) -> Option<&str>;
    /// How many fields the record has.
    fn count(&self) -> usize;
}

impl Fields for [&str] {
    fn field(&self, i: usize) -> Option<&str> {
        self.get(i).copied()
    }
    fn count(&self) -> usize {
        self.len()
    }
}

impl Fields for csv::StringRecord {
    fn field(&self, i: usize) -> Option<&str> {
        self.get(i)
    }
    fn count(&self) -> usize {
        self.len()
    }
}

impl Header {
    /// The cell of `column` (an index into [`COLUMNS`]) in a record, trimmed; empty when the
    /// file has no such column.
    pub fn raw<'a, F: Fields + ?Sized>(&self, fields: &'a F, column: usize) -> &'a str {
        self.positions.get(column).copied().flatten().and_then(|p| fields.field(p)).map_or("", str::trim)
    }
}

/// The warning for a row whose charge period ends before it starts.
pub(crate) fn backwards() -> Issue {
    Issue { column: "ChargePeriodEnd", message: "is before ChargePeriodStart".into() }
}

/// Where [`COLUMNS`]' charge period start and end are.
pub(crate) fn charge_period() -> (usize, usize) {
    (HOT.charge_period_start, HOT.charge_period_end)
}

/// Where [`COLUMNS`]' billing period start and billing account are: what decides a row's
/// partition.
pub(crate) fn partition_columns() -> (usize, usize) {
    (HOT.billing_period_start, HOT.billing_account_id)
}

/// Why a null cell is refused, when the column is mandatory.
pub(crate) fn null(column: &Column) -> Result<(), String> {
    if column.required { Err("is null, but the column is mandatory".into()) } else { Ok(()) }
}

/// A text cell that is not null: the value to store (an enumeration's canonical spelling), and
/// a warning when it was normalised or is off-spec but kept.
pub(crate) fn text<'a>(column: &Column, raw: &'a str) -> Result<(&'a str, Option<String>), String> {
    if column.name == "BillingCurrency" && !(raw.len() == 3 && raw.bytes().all(|b| b.is_ascii_uppercase())) {
        return Err(format!("{raw:?} is not an ISO 4217 currency code"));
    }
    if column.allowed.is_empty() || column.allowed.contains(&raw) {
        return Ok((raw, None));
    }
    if let Some(canonical) = column.allowed.iter().find(|a| a.eq_ignore_ascii_case(raw)) {
        return Ok((canonical, Some(format!("{raw:?} normalised to {canonical:?}"))));
    }
    let message = format!("{raw:?} is not one of {}", column.allowed.join(", "));
    if column.required { Err(message) } else { Ok((raw, Some(message))) }
}

/// Validates one record (fields as in the file).
pub fn row<'a>(header: &Header, fields: &[&'a str]) -> Result<Row<'a>, Vec<Issue>> {
    let mut cells = Vec::with_capacity(COLUMNS.len());
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    for (column, position) in COLUMNS.iter().zip(&header.positions) {
        let raw: &'a str = position.and_then(|p| fields.get(p)).map(|s| s.trim()).unwrap_or("");
        match cell(column, raw) {
            Ok((value, warning)) => {
                if let Some(message) = warning {
                    warnings.push(Issue { column: column.name, message });
                }
                cells.push(value);
            }
            Err(message) => {
                errors.push(Issue { column: column.name, message });
                cells.push(Cell::Null);
            }
        }
    }
    if errors.is_empty() {
        let mut row = Row { cells, warnings };
        let backwards = matches!(
            (row.at(HOT.charge_period_start), row.at(HOT.charge_period_end)),
            (Cell::DateTime(start), Cell::DateTime(end)) if end < start
        );
        if backwards {
            row.warnings.push(self::backwards());
        }
        Ok(row)
    } else {
        Err(errors)
    }
}

fn cell<'a>(column: &Column, raw: &'a str) -> Result<(Cell<'a>, Option<String>), String> {
    if is_null(raw) {
        return null(column).map(|()| (Cell::Null, None));
    }
    match column.kind {
        ColumnType::Decimal => parse_decimal(raw).map(|d| (Cell::Decimal(d), None)),
        ColumnType::DateTime => parse_datetime(raw).map(|t| (Cell::DateTime(t), None)),
        ColumnType::KeyValue => parse_key_value(raw).map(|kv| (Cell::KeyValue(kv), None)),
        ColumnType::String => text(column, raw).map(|(value, warning)| (Cell::Text(Cow::Borrowed(value)), warning)),
    }
}

/// Parses a decimal (`-12.5`, `1.0E-7`) into an integer scaled by 10^[`SCALE`]. Digits beyond
/// the scale are rounded half away from zero.
pub fn parse_decimal(raw: &str) -> Result<i128, String> {
    match plain_decimal(raw) {
        Some(value) => Ok(value),
        None => any_decimal(raw),
    }
}

/// Powers of ten up to 10^[`SCALE`].
const POWERS: [i128; SCALE as usize + 1] = {
    let mut p = [1i128; SCALE as usize + 1];
    let mut i = 1;
    while i < p.len() {
        p[i] = p[i - 1] * 10;
        i += 1;
    }
    p
};

/// The decimals billing exports are made of (`0.0141239644`, `-3`, `12.50`): a sign, at most
/// 19 digits and a point, no exponent, no more than [`SCALE`] digits after the point. Read in
/// one pass into a `u64` and scaled with one multiplication; `None` for anything else, which
/// [`any_decimal`] reads (it gives the same value for what this reads).
fn plain_decimal(raw: &str) -> Option<i128> {
    let bytes = raw.as_bytes();
    let (negative, digits) = match bytes.first()? {
        b'-' => (true, &bytes[1..]),
        b'+' => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    // 19 digits are below 10^19, which a u64 holds.
    if digits.len() > 20 {
        return None;
    }
    let (mut value, mut count, mut point) = (0u64, 0usize, None::<usize>);
    for &b in digits {
        match b {
            b'0'..=b'9' if count < 19 => {
                value = value * 10 + u64::from(b - b'0');
                count += 1;
            }
            b'.' if point.is_none() => point = Some(count),
            _ => return None,
        }
    }
    let after = count - point.unwrap_or(count);
    if count == 0 || after > SCALE as usize {
        return None;
    }
    // At most 10^19 · 10^16, well within an i128.
    let scaled = i128::from(value) * POWERS[SCALE as usize - after];
    Some(if negative { -scaled } else { scaled })
}

/// [`parse_decimal`] for every form: exponents, any number of digits, rounding past the scale.
fn any_decimal(raw: &str) -> Result<i128, String> {
    let bad = || format!("{raw:?} is not a decimal number");
    let (mantissa, exponent) = match raw.find(['e', 'E']) {
        Some(i) => (&raw[..i], raw[i + 1..].parse::<i64>().map_err(|_| bad())?),
        None => (raw, 0),
    };
    let (negative, digits) = match mantissa.as_bytes().first() {
        Some(b'-') => (true, &mantissa[1..]),
        Some(b'+') => (false, &mantissa[1..]),
        _ => (false, mantissa),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    // The digits as one integer, leading zeros skipped, and where the point goes relative to
    // SCALE. In i64, an exponent as large as any i64 cannot overflow the shift; a shift past
    // what an i128 holds is an overflow (or zero) without counting to it.
    let shift = i64::from(SCALE).saturating_add(exponent).saturating_sub(frac_part.len() as i64);
    let significant = || int_part.bytes().chain(frac_part.bytes()).skip_while(|b| *b == b'0');
    let count = significant().count();
    let overflow = || format!("{raw:?} is too large");
    if count == 0 {
        return Ok(0);
    }
    if shift > 40 {
        return Err(overflow());
    }
    let push = |value: i128, digit: u8| {
        value.checked_mul(10).and_then(|v| v.checked_add(i128::from(digit - b'0'))).ok_or_else(overflow)
    };
    let mut value: i128 = 0;
    if shift >= 0 {
        for b in significant() {
            value = push(value, b)?;
        }
        for _ in 0..shift {
            value = value.checked_mul(10).ok_or_else(overflow)?;
        }
    } else {
        let drop = usize::try_from(shift.unsigned_abs()).unwrap_or(usize::MAX);
        if drop > count {
            return Ok(0);
        }
        let mut digits = significant();
        for b in digits.by_ref().take(count - drop) {
            value = push(value, b)?;
        }
        if digits.next().is_some_and(|d| d >= b'5') {
            value += 1;
        }
    }
    Ok(if negative { -value } else { value })
}

/// Formats a scaled decimal with `places` digits after the point (rounded half away from zero).
pub fn format_decimal(value: i128, places: u32) -> String {
    let drop = u32::try_from(SCALE).unwrap_or(16).saturating_sub(places);
    let divisor = 10i128.pow(drop);
    let rounded = (value.abs() + divisor / 2) / divisor;
    let unit = 10i128.pow(places);
    let sign = if value < 0 && rounded != 0 { "-" } else { "" };
    if places == 0 {
        format!("{sign}{rounded}")
    } else {
        format!("{sign}{}.{:0width$}", rounded / unit, rounded % unit, width = places as usize)
    }
}

/// Parses `YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS[.fff]]`, or the same with `T`, and an optional
/// `Z` or `±HH:MM` offset, into microseconds since the epoch, UTC.
pub fn parse_datetime(raw: &str) -> Result<i64, String> {
    let bad = || format!("{raw:?} is not an ISO 8601 date and time");
    let b = raw.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        raw.get(r).filter(|s| s.bytes().all(|c| c.is_ascii_digit())).and_then(|s| s.parse().ok()).ok_or_else(bad)
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(bad());
    }
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&m) || !(1..=days_in_month(y, m)).contains(&d) {
        return Err(bad());
    }
    let mut micros = days_from_civil(y, m, d) * 86_400_000_000;
    // Bytes 0..10 are ASCII (checked above), so every slice below is taken with `get`, which
    // refuses what is not on a character boundary instead of panicking.
    let two = |s: &str, at: usize| -> Result<i64, String> {
        s.get(at..at + 2).filter(|d| d.bytes().all(|c| c.is_ascii_digit())).and_then(|d| d.parse().ok()).ok_or_else(bad)
    };
    let mut rest = raw.get(10..).ok_or_else(bad)?;
    if !rest.is_empty() {
        rest = rest.strip_prefix(['T', ' ']).ok_or_else(bad)?;
        if rest.as_bytes().get(2) != Some(&b':') {
            return Err(bad());
        }
        let hh = two(rest, 0)?;
        let mm = two(rest, 3)?;
        let mut ss = 0i64;
        let mut frac = 0i64;
        let mut tail = rest.get(5..).ok_or_else(bad)?;
        if let Some(t) = tail.strip_prefix(':') {
            ss = two(t, 0)?;
            tail = t.get(2..).ok_or_else(bad)?;
            if let Some(f) = tail.strip_prefix('.') {
                let n = f.bytes().take_while(u8::is_ascii_digit).count();
                let digits = &f[..n.min(6)];
                frac = format!("{digits:0<6}").parse().map_err(|_| bad())?;
                tail = &f[n..];
            }
        }
        if hh > 23 || mm > 59 || ss > 60 {
            return Err(bad());
        }
        micros += ((hh * 60 + mm) * 60 + ss) * 1_000_000 + frac;
        let offset = match tail {
            "" | "Z" | "z" => 0,
            t if (t.starts_with('+') || t.starts_with('-')) && t.len() == 6 && t.as_bytes()[3] == b':' => {
                let sign = if t.starts_with('-') { -1 } else { 1 };
                let (oh, om) = (two(t, 1)?, two(t, 4)?);
                sign * (oh * 60 + om) * 60_000_000
            }
            _ => return Err(bad()),
        };
        micros -= offset;
    }
    Ok(micros)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `YYYY-MM` of a timestamp in microseconds.
pub fn year_month(micros: i64) -> String {
    let (y, m, _) = civil_from_days(micros.div_euclid(86_400_000_000));
    format!("{y:04}-{m:02}")
}

/// The month of a timestamp in microseconds, as a number (`year * 12 + month - 1`).
pub fn month_number(micros: i64) -> i64 {
    let (y, m, _) = civil_from_days(micros.div_euclid(86_400_000_000));
    y * 12 + m - 1
}

pub(crate) fn parse_key_value(raw: &str) -> Result<Vec<(String, String)>, String> {
    // Read straight into sorted pairs; only what is not an object is read again to say why.
    let map: BTreeMap<String, serde_json::Value> = match serde_json::from_str(raw) {
        Ok(map) => map,
        Err(_) => {
            // Any JSON object reads as the map above: what is valid JSON is another value.
            serde_json::from_str::<serde_json::Value>(raw).map_err(|e| format!("is not valid JSON: {e}"))?;
            return Err("is not a JSON object".into());
        }
    };
    Ok(map
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            (k, v)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_parse_exactly() {
        assert_eq!(parse_decimal("0.00000080000"), Ok(8_000_000_000));
        assert_eq!(parse_decimal("-12.5"), Ok(-125_000_000_000_000_000));
        assert_eq!(parse_decimal("1.0E-7"), Ok(1_000_000_000));
        assert_eq!(parse_decimal("3"), Ok(30_000_000_000_000_000));
        assert_eq!(parse_decimal("0.00000000000000005"), Ok(1), "rounded half away from zero");
        assert!(parse_decimal("12,5").is_err());
        assert!(parse_decimal("abc").is_err());
        assert!(parse_decimal("1e99").is_err());
        assert_eq!(format_decimal(parse_decimal("1234.5678").unwrap_or(0), 2), "1234.57");
        assert_eq!(format_decimal(parse_decimal("-0.004").unwrap_or(0), 2), "0.00");
    }

    proptest::proptest! {
        /// The one-pass reading of plain decimals gives what the general one gives, for
        /// anything made of digits, signs, points and exponents.
        #[test]
        fn plain_decimals_read_as_any_decimal_reads_them(raw in "[-+]?[0-9]{0,21}(\\.[0-9]{0,18})?([eE][-+]?[0-9]{1,3})?|[-+.0-9]{0,24}") {
            if let Some(value) = plain_decimal(&raw) {
                proptest::prop_assert_eq!(Ok(value), any_decimal(&raw), "{}", raw);
            }
            proptest::prop_assert_eq!(parse_decimal(&raw), any_decimal(&raw), "{}", raw);
        }
    }

    #[test]
    fn odd_input_is_an_error_not_a_panic() {
        for raw in
            ["2026-01-01T00:\u{20ac}0", "2026-01-01T\u{e9}:00", "2026-01-01T00:00+\u{e9}:00", "2026-01-01T00:00:\u{e9}"]
        {
            assert!(parse_datetime(raw).is_err(), "{raw}");
        }
        assert!(parse_datetime("2026-01-01T+1:00").is_err());
        for raw in [
            "1e2147483647",
            "1e9223372036854775807",
            "1e-9223372036854775808",
            "1.00000000000000000e-9223372036854775808",
            "1.5e40",
        ] {
            let parsed = parse_decimal(raw);
            assert!(parsed.is_err() || parsed == Ok(0), "{raw}: {parsed:?}");
        }
        assert_eq!(parse_decimal("0e999999999999"), Ok(0));
        assert_eq!(parse_decimal("1e-99999999999"), Ok(0));
        assert!(parse_decimal("1e99999999999").expect_err("too large").contains("too large"));
    }

    #[test]
    fn datetimes_in_the_shapes_exports_use() {
        let day = 86_400_000_000i64;
        let sept = days_from_civil(2024, 9, 1) * day;
        assert_eq!(parse_datetime("2024-09-01 00:00:00"), Ok(sept));
        assert_eq!(parse_datetime("2024-09-01T00:00:00Z"), Ok(sept));
        assert_eq!(parse_datetime("2024-09-01"), Ok(sept));
        assert_eq!(parse_datetime("2024-09-01T02:00:00+02:00"), Ok(sept));
        assert_eq!(parse_datetime("2024-09-01T00:00:00.5Z"), Ok(sept + 500_000));
        assert!(parse_datetime("2024-02-30").is_err());
        assert!(parse_datetime("09/01/2024").is_err());
        assert_eq!(year_month(sept), "2024-09");
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
    }

    #[test]
    fn rows_are_rejected_only_when_they_cannot_be_accounted_for() {
        let names: Vec<&str> = COLUMNS.iter().map(|c| c.name).collect();
        let header = Header::new(&names).unwrap_or_else(|e| panic!("{e}"));
        let mut fields: Vec<String> = COLUMNS
            .iter()
            .map(|c| match c.name {
                "BilledCost" | "EffectiveCost" => "1.5".to_string(),
                "BillingCurrency" => "USD".into(),
                "BillingPeriodStart" | "ChargePeriodStart" => "2024-09-01 00:00:00".into(),
                "BillingPeriodEnd" | "ChargePeriodEnd" => "2024-10-01 00:00:00".into(),
                "ChargeCategory" => "Usage".into(),
                "ServiceCategory" => "Compute".into(),
                "ChargeFrequency" => "Usage-based".into(),
                "Tags" => r#"{"cost-center": "CC-1", "n": 3}"#.into(),
                _ => match c.kind {
                    ColumnType::Decimal => "2".into(),
                    ColumnType::KeyValue => "{}".into(),
                    ColumnType::DateTime => "2024-09-01".into(),
                    ColumnType::String => c.allowed.first().map_or("x", |a| a).to_string(),
                },
            })
            .collect();
        fn as_refs(f: &[String]) -> Vec<&str> {
            f.iter().map(String::as_str).collect()
        }
        let ok = row(&header, &as_refs(&fields)).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(ok.text("ChargeFrequency"), Some("Usage-Based"));
        assert_eq!(ok.warnings.len(), 1);
        assert_eq!(
            ok.get("Tags"),
            &Cell::KeyValue(vec![("cost-center".into(), "CC-1".into()), ("n".into(), "3".into())])
        );

        let i = crate::spec::index("BilledCost").unwrap_or(0);
        fields[i] = "NULL".into();
        let j = crate::spec::index("Tags").unwrap_or(0);
        fields[j] = "[1]".into();
        let errors = row(&header, &as_refs(&fields)).err().unwrap_or_default();
        assert_eq!(errors.iter().map(|e| e.column).collect::<Vec<_>>(), vec!["BilledCost", "Tags"]);
    }

    #[test]
    fn header_without_mandatory_columns_is_not_focus() {
        let err = Header::new(&["Date", "Cost"]).err().unwrap_or_default();
        assert!(err.starts_with("not FOCUS data: missing mandatory columns BilledCost, BillingAccountId"), "{err}");
    }
}
