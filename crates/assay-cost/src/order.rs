//! The order rows are stored in: by charge period start within each row group, so that a
//! filter on the period skips pages, and row groups, by their statistics.
//!
//! Exports mostly come in time order already; their rows are written as they come, with row
//! groups cut where a period ends ([`crate::store::PartitionWriter`]). A partition whose rows go
//! back in time is sorted a row group at a time, rows of one period kept in the export's order.
//! A partition is not sorted as a whole (that would take a second pass over it), so the files
//! do not declare an order: DataFusion would take a row group's declared order for the file's.

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::TimestampMicrosecondType;
use datafusion::arrow::record_batch::RecordBatch;

use crate::{Error, Result};

/// The column rows are ordered by.
pub const SORT_COLUMN: &str = "ChargePeriodStart";

/// The charge period start of each row of `batch` (microseconds; `i64::MIN`, first, for null).
pub fn times(batch: &RecordBatch) -> Result<Vec<i64>> {
    let column = batch
        .column_by_name(SORT_COLUMN)
        .ok_or_else(|| Error::Store(format!("ordering rows: no column {SORT_COLUMN}")))?;
    let start = column.as_primitive_opt::<TimestampMicrosecondType>().ok_or_else(|| {
        Error::Store(format!("ordering rows: {SORT_COLUMN} is {}, not a timestamp", column.data_type()))
    })?;
    Ok((0..start.len()).map(|i| if start.is_null(i) { i64::MIN } else { start.value(i) }).collect())
}

/// The rows' positions in time order, rows of the same time in their order, or `None` when
/// they are in order already.
pub fn sorted_positions(times: &[i64]) -> Option<Vec<u32>> {
    if times.is_sorted() {
        return None;
    }
    let mut order: Vec<(i64, u32)> = times.iter().enumerate().map(|(i, t)| (*t, i as u32)).collect();
    // The position breaks ties, so an unstable sort keeps rows of one time in their order.
    order.sort_unstable();
    Some(order.into_iter().map(|(_, i)| i).collect())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, StringArray, TimestampMicrosecondArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Rows come out in time order, nulls first, and rows of one time in their order.
        #[test]
        fn rows_are_put_in_time_order_and_ties_keep_theirs(times in prop::collection::vec(prop::option::weighted(0.9, -3i64..3), 0..80)) {
            let batch = RecordBatch::try_new(
                Arc::new(Schema::new(vec![Field::new(
                    SORT_COLUMN,
                    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                    true,
                )])),
                vec![Arc::new(TimestampMicrosecondArray::from(times.clone()).with_timezone("UTC")) as ArrayRef],
            )
            .expect("batch");
            let keys = super::times(&batch).expect("times");
            let mut expected: Vec<u32> = (0..times.len() as u32).collect();
            expected.sort_by_key(|i| times[*i as usize]);
            let got = sorted_positions(&keys).unwrap_or_else(|| (0..times.len() as u32).collect());
            prop_assert_eq!(got, expected);
        }
    }

    #[test]
    fn a_column_of_another_type_is_named() {
        let wrong = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new(SORT_COLUMN, DataType::Utf8, true)])),
            vec![Arc::new(StringArray::from(vec!["2026-01-01"])) as ArrayRef],
        )
        .expect("batch");
        let e = times(&wrong).expect_err("text is not a time").to_string();
        assert!(e.contains("ChargePeriodStart is Utf8, not a timestamp"), "{e}");
    }
}
