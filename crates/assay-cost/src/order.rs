//! The order rows are stored in: by charge period start, then sub account, then service, the
//! order billing queries filter and group by. Each row group is sorted on its own, so that a
//! period filter skips pages (and, when the export comes in time order, whole row groups) by
//! their statistics; a partition is not sorted as a whole, which would take a second pass over
//! it, so the files do not declare an order (DataFusion would take a row group's for the file's).
//!
//! A row's key packs the three into one integer: the timestamp in the high half, and in the low
//! half each text's rank among the distinct values of the rows being sorted (nulls first, text
//! by its bytes, as Parquet's statistics and Arrow's sort compare it). Sorting integers is a
//! few milliseconds for a row group; comparing text row by row was several times that.

use std::collections::HashMap;

use datafusion::arrow::array::{Array, AsArray, StringArray};
use datafusion::arrow::datatypes::TimestampMicrosecondType;
use datafusion::arrow::record_batch::RecordBatch;

use crate::{Error, Result};

/// The columns rows are sorted by, most significant first.
pub const SORT_COLUMNS: [&str; 3] = ["ChargePeriodStart", "SubAccountId", "ServiceName"];

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a datafusion::arrow::array::ArrayRef> {
    batch.column_by_name(name).ok_or_else(|| Error::Store(format!("sorting rows: no column {name}")))
}

/// The sort keys of the rows of `batches`, one after another.
pub fn keys(batches: &[RecordBatch]) -> Result<Vec<u128>> {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let mut keys = Vec::with_capacity(rows);
    for batch in batches {
        let start = column(batch, SORT_COLUMNS[0])?;
        let start = start.as_primitive_opt::<TimestampMicrosecondType>().ok_or_else(|| {
            Error::Store(format!("sorting rows: {} is {}, not a timestamp", SORT_COLUMNS[0], start.data_type()))
        })?;
        for i in 0..start.len() {
            // Nulls first; the sign bit flipped so that negative times order before positive.
            let time = if start.is_null(i) { i64::MIN } else { start.value(i) };
            keys.push(u128::from((time as u64) ^ (1 << 63)) << 64);
        }
    }
    for (shift, name) in [(32, SORT_COLUMNS[1]), (0, SORT_COLUMNS[2])] {
        let texts: Vec<&StringArray> = batches
            .iter()
            .map(|b| {
                let array = column(b, name)?;
                array
                    .as_string_opt::<i32>()
                    .ok_or_else(|| Error::Store(format!("sorting rows: {name} is {}, not text", array.data_type())))
            })
            .collect::<Result<_>>()?;
        let ranks = Ranks::of(&texts);
        let mut row = 0;
        for text in &texts {
            for i in 0..text.len() {
                let rank = if text.is_null(i) { 0 } else { ranks.rank(text.value(i)) };
                keys[row] |= u128::from(rank) << shift;
                row += 1;
            }
        }
    }
    Ok(keys)
}

/// Each distinct text's place in byte order, counted from 1 (0 is null).
struct Ranks<'a> {
    rank: HashMap<&'a str, u32>,
}

impl<'a> Ranks<'a> {
    fn of(texts: &[&'a StringArray]) -> Ranks<'a> {
        let mut distinct: HashMap<&'a str, u32> = HashMap::new();
        for text in texts {
            // Rows repeat their neighbour's value most of the time: skip the lookup then.
            let mut last: Option<&str> = None;
            for value in text.iter().flatten() {
                if last != Some(value) {
                    distinct.entry(value).or_insert(0);
                    last = Some(value);
                }
            }
        }
        let mut sorted: Vec<&'a str> = distinct.keys().copied().collect();
        sorted.sort_unstable();
        for (i, value) in sorted.into_iter().enumerate() {
            distinct.insert(value, i as u32 + 1);
        }
        Ranks { rank: distinct }
    }

    fn rank(&self, value: &str) -> u32 {
        self.rank.get(value).copied().unwrap_or(0)
    }
}

/// The time a key holds, as stored (microseconds; `i64::MIN` for null).
pub fn time_of(key: u128) -> i64 {
    ((key >> 64) as u64 ^ (1 << 63)) as i64
}

/// The rows' positions in key order (ties keep their order), or `None` when they are in order
/// already.
pub fn sorted_positions(keys: &[u128]) -> Option<Vec<u32>> {
    if keys.is_sorted() {
        return None;
    }
    let mut order: Vec<(u128, u32)> = keys.iter().enumerate().map(|(i, k)| (*k, i as u32)).collect();
    // The position breaks ties, so an unstable sort keeps equal keys in their order.
    order.sort_unstable();
    Some(order.into_iter().map(|(_, i)| i).collect())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, TimestampMicrosecondArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use proptest::prelude::*;

    use super::*;

    fn batch(rows: &[(Option<i64>, Option<&str>, Option<&str>)]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new(SORT_COLUMNS[0], DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
            Field::new(SORT_COLUMNS[1], DataType::Utf8, true),
            Field::new(SORT_COLUMNS[2], DataType::Utf8, true),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(
                TimestampMicrosecondArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>()).with_timezone("UTC"),
            ),
            Arc::new(StringArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
            Arc::new(StringArray::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())),
        ];
        RecordBatch::try_new(schema, columns).expect("batch")
    }

    type Row = (Option<i64>, Option<String>, Option<String>);

    fn row() -> impl Strategy<Value = Row> {
        (
            prop::option::weighted(0.9, -3i64..3),
            prop::option::weighted(0.8, "[ab]{0,2}"),
            prop::option::weighted(0.8, "[aZé]{0,2}"),
        )
    }

    proptest! {
        /// Sorting by the packed keys orders rows exactly as comparing the three columns does
        /// (nulls first, text by its bytes), across batches, and keeps ties in their order.
        #[test]
        fn keys_order_rows_as_the_columns_do(first in prop::collection::vec(row(), 0..40), second in prop::collection::vec(row(), 0..40)) {
            let batches: Vec<RecordBatch> = [&first, &second]
                .iter()
                .map(|rows| {
                    let refs: Vec<(Option<i64>, Option<&str>, Option<&str>)> =
                        rows.iter().map(|(t, a, s)| (*t, a.as_deref(), s.as_deref())).collect();
                    batch(&refs)
                })
                .collect();
            let all: Vec<Row> = first.iter().chain(&second).cloned().collect();
            let keys = keys(&batches).expect("keys");
            let mut expected: Vec<u32> = (0..all.len() as u32).collect();
            expected.sort_by(|a, b| all[*a as usize].cmp(&all[*b as usize]));
            let got = sorted_positions(&keys).unwrap_or_else(|| (0..all.len() as u32).collect());
            prop_assert_eq!(got, expected);
            for (k, r) in keys.iter().zip(&all) {
                prop_assert_eq!(time_of(*k), r.0.unwrap_or(i64::MIN));
            }
        }
    }

    #[test]
    fn rows_in_order_are_left_alone_and_a_column_of_another_type_is_named() {
        let b = batch(&[(Some(1), Some("a"), Some("x")), (Some(1), Some("a"), Some("y")), (Some(2), None, None)]);
        assert_eq!(sorted_positions(&keys(std::slice::from_ref(&b)).expect("keys")), None);
        let wrong = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new(SORT_COLUMNS[0], DataType::Utf8, true)])),
            vec![Arc::new(StringArray::from(vec!["2026-01-01"])) as ArrayRef],
        )
        .expect("batch");
        let e = keys(&[wrong]).expect_err("text is not a time").to_string();
        assert!(e.contains("ChargePeriodStart is Utf8, not a timestamp"), "{e}");
    }
}
