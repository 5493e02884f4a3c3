//! `date_trunc` over timestamps in UTC, as fast as over timestamps without a zone.
//!
//! Every FOCUS date-time column is stored as a timestamp in UTC, and billing queries truncate
//! them all the time (`date_trunc('day', ChargePeriodStart)`). DataFusion's `date_trunc` takes
//! its arithmetic fast path only for timestamps that carry no zone; given one in UTC it converts
//! every value to a zoned date-time and back, and formats an error message per value whether or
//! not it is used: more than half of a day-by-service-by-account query's time went there.
//!
//! In UTC a day, an hour, a week, a month is the same span of instants as without a zone, so
//! [`UtcDateTrunc`] strips the zone from its argument (the values are not touched), lets
//! DataFusion's own `date_trunc` truncate the zone-less timestamps, and puts the zone back.
//! Any other zone, and a single value, go to DataFusion's function unchanged. It replaces the
//! built-in `date_trunc` (and its alias `datetrunc`) in the billing store's sessions.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, make_array};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};
use datafusion::common::Result;
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};

/// The spellings of UTC a stored or computed timestamp carries.
fn is_utc(zone: &str) -> bool {
    matches!(zone, "UTC" | "+00:00" | "Z" | "Etc/UTC")
}

/// DataFusion's `date_trunc`, with UTC timestamps truncated as zone-less ones (see the module).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct UtcDateTrunc {
    inner: Arc<ScalarUDF>,
}

impl Default for UtcDateTrunc {
    fn default() -> Self {
        Self { inner: datafusion::functions::datetime::date_trunc() }
    }
}

impl UtcDateTrunc {
    /// The function, ready to register in a session (it takes the built-in's name).
    pub fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(Self::default())
    }
}

/// The same array with another data type of the same layout (a timestamp's zone).
fn retyped(array: &ArrayRef, to: &DataType) -> Result<ArrayRef> {
    Ok(make_array(array.to_data().into_builder().data_type(to.clone()).build()?))
}

/// The unit and zone of the timestamps, when the argument is an array of timestamps in UTC.
fn utc_array(args: &ScalarFunctionArgs) -> Option<(TimeUnit, Arc<str>)> {
    match args.args.get(1) {
        Some(ColumnarValue::Array(a)) => match a.data_type() {
            DataType::Timestamp(unit, Some(zone)) if is_utc(zone) => Some((*unit, zone.clone())),
            _ => None,
        },
        _ => None,
    }
}

impl ScalarUDFImpl for UtcDateTrunc {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        datafusion::common::internal_err!("date_trunc's type comes from return_field_from_args")
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn invoke_with_args(&self, mut args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some((unit, zone)) = utc_array(&args) else {
            return self.inner.invoke_with_args(args);
        };
        let naive = DataType::Timestamp(unit, None);
        if let Some(ColumnarValue::Array(a)) = args.args.get_mut(1) {
            *a = retyped(a, &naive)?;
        }
        if let Some(f) = args.arg_fields.get_mut(1) {
            *f = Arc::new(Field::new(f.name(), naive.clone(), f.is_nullable()));
        }
        args.return_field = Arc::new(Field::new(args.return_field.name(), naive, args.return_field.is_nullable()));
        let zoned = DataType::Timestamp(unit, Some(zone));
        match self.inner.invoke_with_args(args)? {
            ColumnarValue::Array(a) => Ok(ColumnarValue::Array(retyped(&a, &zoned)?)),
            ColumnarValue::Scalar(s) => ColumnarValue::Scalar(s).cast_to(&zoned, None),
        }
    }

    fn output_ordering(&self, input: &[ExprProperties]) -> Result<SortProperties> {
        self.inner.output_ordering(input)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{TimestampMicrosecondArray, TimestampNanosecondArray};
    use datafusion::common::config::ConfigOptions;
    use datafusion::scalar::ScalarValue;

    const GRANULARITIES: &[&str] =
        &["year", "quarter", "month", "week", "day", "hour", "minute", "second", "millisecond", "microsecond"];

    fn call(f: &ScalarUDF, granularity: &str, values: ArrayRef) -> ArrayRef {
        let arg_fields = vec![
            Arc::new(Field::new("g", DataType::Utf8, false)),
            Arc::new(Field::new("t", values.data_type().clone(), true)),
        ];
        let return_field = Arc::new(Field::new("date_trunc", values.data_type().clone(), true));
        let rows = values.len();
        let out = f
            .invoke_with_args(ScalarFunctionArgs {
                args: vec![
                    ColumnarValue::Scalar(ScalarValue::Utf8(Some(granularity.to_string()))),
                    ColumnarValue::Array(values),
                ],
                arg_fields,
                number_rows: rows,
                return_field,
                config_options: Arc::new(ConfigOptions::default()),
            })
            .expect("date_trunc");
        match out {
            ColumnarValue::Array(a) => a,
            ColumnarValue::Scalar(s) => s.to_array_of_size(rows).expect("array"),
        }
    }

    /// Instants around the epoch, leap days, month and year ends, and far from now.
    fn instants() -> Vec<Option<i64>> {
        let mut v = vec![None, Some(0), Some(-1), Some(951_782_400_000_000 - 1), Some(-2_208_988_800_000_001)];
        let mut x: i64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..2_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Within about ±150 years of 1970, in microseconds.
            v.push(Some(x % 4_733_640_000_000_000));
        }
        v
    }

    #[test]
    fn utc_timestamps_truncate_exactly_as_the_built_in_truncates_them_and_keep_their_zone() {
        let ours = UtcDateTrunc::udf();
        let builtin = datafusion::functions::datetime::date_trunc();
        for zone in ["UTC", "+00:00"] {
            let micros: ArrayRef = Arc::new(TimestampMicrosecondArray::from(instants()).with_timezone(zone));
            let nanos: ArrayRef = Arc::new(
                TimestampNanosecondArray::from(
                    instants().into_iter().map(|v| v.map(|m| m * 1_000)).collect::<Vec<_>>(),
                )
                .with_timezone(zone),
            );
            for values in [micros, nanos] {
                for g in GRANULARITIES {
                    let got = call(&ours, g, values.clone());
                    let want = call(&builtin, g, values.clone());
                    assert_eq!(got.data_type(), values.data_type(), "{g} in {zone}: the zone is kept");
                    assert_eq!(&got, &want, "{g} in {zone}");
                }
            }
        }
    }

    #[test]
    fn other_zones_and_zone_less_timestamps_go_to_the_built_in() {
        let ours = UtcDateTrunc::udf();
        let builtin = datafusion::functions::datetime::date_trunc();
        // A day in Kathmandu starts at 18:15 UTC: truncating as if in UTC would be wrong.
        let kathmandu: ArrayRef = Arc::new(TimestampMicrosecondArray::from(instants()).with_timezone("Asia/Kathmandu"));
        let naive: ArrayRef = Arc::new(TimestampMicrosecondArray::from(instants()));
        for values in [kathmandu, naive] {
            for g in ["day", "month", "hour"] {
                assert_eq!(&call(&ours, g, values.clone()), &call(&builtin, g, values.clone()), "{g}");
            }
        }
    }

    #[tokio::test]
    async fn the_billing_store_session_uses_it_under_both_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = crate::Store::new(dir.path()).session().await.expect("session");
        let registered = ctx.state().scalar_functions().get("date_trunc").cloned().expect("date_trunc");
        assert!(registered.inner().is::<UtcDateTrunc>(), "the built-in is replaced");
        let sql = "SELECT date_trunc('day', arrow_cast('2024-02-29T23:59:59.999999Z', 'Timestamp(µs, \"UTC\")')) AS d, \
                   datetrunc('month', arrow_cast('2024-02-29T23:59:59Z', 'Timestamp(µs, \"UTC\")')) AS m";
        let batches = ctx.sql(sql).await.expect("plan").collect().await.expect("run");
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches).expect("format").to_string();
        assert!(text.contains("2024-02-29T00:00:00Z"), "{text}");
        assert!(text.contains("2024-02-01T00:00:00Z"), "{text}");
    }
}
