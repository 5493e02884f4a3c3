//! Validated rows into Arrow record batches, column by column.
//!
//! A record is validated straight into typed column buffers (text as offsets and bytes,
//! decimals, timestamps, tags as a map), without building a row of cells first; a record that
//! fails is taken back out of every buffer. Timestamps and tags repeat from row to row in
//! billing exports, so each column remembers its last text and what it parsed to.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBufferBuilder, Decimal128Array, MapArray, StringArray, StructArray, TimestampMicrosecondArray,
};
use datafusion::arrow::buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{DataType, Field, Fields as ArrowFields, Schema};
use datafusion::arrow::record_batch::RecordBatch;

use crate::spec::{COLUMNS, ColumnType};
use crate::validate::{self, Fields, Header, Issue, SCALE};
use crate::{Error, Result};

/// How large a batch's buffers start: rows, and for each column the bytes of its text (for a
/// key-value column, of its keys) and its key-value entries and their values' bytes. Taken from
/// an earlier batch of the same partition ([`BatchBuilder::used`]), it lets the buffers be
/// allocated once at their size instead of growing row by row: growing copies every column
/// several times and touches fresh memory each time, which took a tenth of a CSV ingest.
#[derive(Debug, Clone, Default)]
pub struct Capacity {
    rows: usize,
    columns: Vec<[usize; 3]>,
}

impl Capacity {
    /// The same capacity with an eighth more room, for a batch a little larger than the last.
    pub fn with_headroom(&self) -> Capacity {
        let more = |n: usize| n + n / 8;
        Capacity { rows: more(self.rows), columns: self.columns.iter().map(|c| c.map(more)).collect() }
    }
}

/// A record batch of one array per FOCUS column, in [`COLUMNS`]' order, each field named after
/// its column and typed as its array.
fn batch_of(arrays: Vec<ArrayRef>) -> Result<RecordBatch> {
    let fields: Vec<Field> =
        COLUMNS.iter().zip(&arrays).map(|(c, a)| Field::new(c.name, a.data_type().clone(), true)).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .map_err(|e| Error::Store(format!("building a batch: {e}")))
}

/// Which rows of a column have a value.
struct Validity(BooleanBufferBuilder);

impl Validity {
    fn new(rows: usize) -> Self {
        Self(BooleanBufferBuilder::new(rows))
    }

    fn finish(&mut self) -> Option<NullBuffer> {
        let nulls = NullBuffer::new(self.0.finish());
        (nulls.null_count() > 0).then_some(nulls)
    }
}

/// Strings as Arrow lays them out: the end of each in `offsets`, their bytes one after another.
struct Strings {
    offsets: Vec<i32>,
    bytes: Vec<u8>,
}

impl Strings {
    fn new(rows: usize, bytes: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        Self { offsets, bytes: Vec::with_capacity(bytes) }
    }

    fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Appends a string; false when the buffer would pass what 32-bit offsets address.
    fn push(&mut self, s: &str) -> bool {
        let Ok(end) = i32::try_from(self.bytes.len() + s.len()) else { return false };
        self.bytes.extend_from_slice(s.as_bytes());
        self.offsets.push(end);
        true
    }

    fn push_empty(&mut self) {
        let end = self.offsets.last().copied().unwrap_or(0);
        self.offsets.push(end);
    }

    fn truncate(&mut self, len: usize) {
        self.offsets.truncate(len + 1);
        let end = self.offsets.last().copied().unwrap_or(0);
        self.bytes.truncate(usize::try_from(end).unwrap_or(0));
    }

    fn finish(&mut self, nulls: Option<NullBuffer>) -> Result<StringArray> {
        let taken = std::mem::replace(self, Strings::new(0, 0));
        let offsets = OffsetBuffer::new(ScalarBuffer::from(taken.offsets));
        StringArray::try_new(offsets, Buffer::from_vec(taken.bytes), nulls)
            .map_err(|e| Error::Store(format!("building a text column: {e}")))
    }
}

/// The last text a column parsed and what it gave.
pub(crate) struct Last<T> {
    raw: String,
    value: Option<T>,
}

impl<T> Default for Last<T> {
    fn default() -> Self {
        Self { raw: String::new(), value: None }
    }
}

impl<T> Last<T> {
    /// What `raw` parses to, from memory when it is the text parsed last.
    pub(crate) fn get(&mut self, raw: &str, parse: impl FnOnce(&str) -> std::result::Result<T, String>) -> Option<&T> {
        if self.value.is_none() || self.raw != raw {
            // A failure is not remembered: the record is validated again to say why.
            self.value = Some(parse(raw).ok()?);
            self.raw.clear();
            self.raw.push_str(raw);
        }
        self.value.as_ref()
    }
}

/// One column's buffers.
enum Column {
    Text { strings: Strings, valid: Validity },
    Decimal { values: Vec<i128>, valid: Validity },
    DateTime { values: Vec<i64>, valid: Validity, last: Last<i64> },
    KeyValue { entries: Vec<i32>, keys: Strings, values: Strings, valid: Validity, last: Last<Vec<(String, String)>> },
}

impl Column {
    fn new(kind: ColumnType, rows: usize, [bytes, entries, value_bytes]: [usize; 3]) -> Self {
        let valid = Validity::new(rows);
        match kind {
            ColumnType::String => Column::Text { strings: Strings::new(rows, bytes), valid },
            ColumnType::Decimal => Column::Decimal { values: Vec::with_capacity(rows), valid },
            ColumnType::DateTime => Column::DateTime { values: Vec::with_capacity(rows), valid, last: Last::default() },
            ColumnType::KeyValue => {
                let mut offsets = Vec::with_capacity(rows + 1);
                offsets.push(0);
                Column::KeyValue {
                    entries: offsets,
                    keys: Strings::new(entries, bytes),
                    values: Strings::new(entries, value_bytes),
                    valid,
                    last: Last::default(),
                }
            }
        }
    }

    fn valid(&mut self) -> &mut Validity {
        match self {
            Column::Text { valid, .. }
            | Column::Decimal { valid, .. }
            | Column::DateTime { valid, .. }
            | Column::KeyValue { valid, .. } => valid,
        }
    }

    fn push_null(&mut self) {
        match self {
            Column::Text { strings, .. } => strings.push_empty(),
            Column::Decimal { values, .. } => values.push(0),
            Column::DateTime { values, .. } => values.push(0),
            Column::KeyValue { entries, .. } => {
                let end = entries.last().copied().unwrap_or(0);
                entries.push(end);
            }
        }
        self.valid().0.append(false);
    }

    /// Appends the cell `raw` (trimmed, not null) of `column`; false when it is not valid.
    fn push(&mut self, column: &crate::spec::Column, raw: &str, warnings: &mut Vec<Issue>) -> bool {
        let pushed = match self {
            Column::Text { strings, .. } => match validate::text(column, raw) {
                Ok((value, warning)) => {
                    if let Some(message) = warning {
                        warnings.push(Issue { column: column.name, message });
                    }
                    strings.push(value)
                }
                Err(_) => false,
            },
            Column::Decimal { values, .. } => match validate::parse_decimal(raw) {
                Ok(d) => {
                    values.push(d);
                    true
                }
                Err(_) => false,
            },
            Column::DateTime { values, last, .. } => match last.get(raw, validate::parse_datetime) {
                Some(t) => {
                    values.push(*t);
                    true
                }
                None => false,
            },
            Column::KeyValue { entries, keys, values, last, .. } => match last.get(raw, validate::parse_key_value) {
                Some(pairs) => {
                    let mut fits = true;
                    for (k, v) in pairs {
                        fits &= keys.push(k) && values.push(v);
                    }
                    match i32::try_from(keys.len()) {
                        Ok(end) if fits => {
                            entries.push(end);
                            true
                        }
                        _ => false,
                    }
                }
                None => false,
            },
        };
        if pushed {
            self.valid().0.append(true);
        }
        pushed
    }

    /// Takes the column back to `rows` rows.
    fn truncate(&mut self, rows: usize) {
        match self {
            Column::Text { strings, .. } => strings.truncate(rows),
            Column::Decimal { values, .. } => values.truncate(rows),
            Column::DateTime { values, .. } => values.truncate(rows),
            Column::KeyValue { entries, keys, values, .. } => {
                entries.truncate(rows + 1);
                let end = usize::try_from(entries.last().copied().unwrap_or(0)).unwrap_or(0);
                keys.truncate(end);
                values.truncate(end);
            }
        }
        self.valid().0.truncate(rows);
    }

    /// `[bytes, entries, value bytes]` used so far (see [`Capacity`]).
    fn used(&self) -> [usize; 3] {
        match self {
            Column::Text { strings, .. } => [strings.bytes.len(), 0, 0],
            Column::KeyValue { keys, values, .. } => [keys.bytes.len(), keys.len(), values.bytes.len()],
            Column::Decimal { .. } | Column::DateTime { .. } => [0, 0, 0],
        }
    }

    fn finish(&mut self) -> Result<ArrayRef> {
        Ok(match self {
            Column::Text { strings, valid } => {
                let nulls = valid.finish();
                Arc::new(strings.finish(nulls)?)
            }
            Column::Decimal { values, valid } => {
                let nulls = valid.finish();
                let array = Decimal128Array::new(ScalarBuffer::from(std::mem::take(values)), nulls)
                    .with_precision_and_scale(38, SCALE)
                    .map_err(|e| Error::Store(format!("building a decimal column: {e}")))?;
                Arc::new(array)
            }
            Column::DateTime { values, valid, .. } => {
                let nulls = valid.finish();
                Arc::new(
                    TimestampMicrosecondArray::new(ScalarBuffer::from(std::mem::take(values)), nulls)
                        .with_timezone("UTC"),
                )
            }
            Column::KeyValue { entries, keys, values, valid, .. } => {
                let nulls = valid.finish();
                let offsets = OffsetBuffer::new(ScalarBuffer::from(std::mem::replace(entries, vec![0])));
                let (keys, values) = (keys.finish(None)?, values.finish(None)?);
                let DataType::Map(entry, _) = map_type() else { unreachable!("map_type is a map") };
                let DataType::Struct(fields) = entry.data_type().clone() else { unreachable!("entries are a struct") };
                let entries = StructArray::try_new(fields, vec![Arc::new(keys), Arc::new(values)], None)
                    .map_err(|e| Error::Store(format!("building the tags: {e}")))?;
                Arc::new(
                    MapArray::try_new(entry, offsets, entries, nulls, false)
                        .map_err(|e| Error::Store(format!("building the tags: {e}")))?,
                )
            }
        })
    }
}

/// The type of a key-value column: Arrow's map of text to text, with the field names and
/// nullability of `MapBuilder`'s defaults, which files written before this module have.
fn map_type() -> DataType {
    let fields =
        ArrowFields::from(vec![Field::new("keys", DataType::Utf8, false), Field::new("values", DataType::Utf8, true)]);
    DataType::Map(Arc::new(Field::new("entries", DataType::Struct(fields), false)), false)
}

/// Column buffers for one batch of rows, in [`COLUMNS`] order.
pub struct BatchBuilder {
    columns: Vec<Column>,
    rows: usize,
    /// The warnings of the record being added.
    warnings: Vec<Issue>,
}

impl std::fmt::Debug for BatchBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchBuilder").field("rows", &self.rows).finish_non_exhaustive()
    }
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::with_capacity(&Capacity::default())
    }
}

impl BatchBuilder {
    /// Buffers with room for `capacity` (see [`Capacity`]).
    pub fn with_capacity(capacity: &Capacity) -> Self {
        let columns = COLUMNS
            .iter()
            .enumerate()
            .map(|(i, c)| Column::new(c.kind, capacity.rows, capacity.columns.get(i).copied().unwrap_or_default()))
            .collect();
        Self { columns, rows: 0, warnings: Vec::new() }
    }

    /// The room the rows so far take, to size a later batch like this one.
    pub fn used(&self) -> Capacity {
        Capacity { rows: self.rows, columns: self.columns.iter().map(Column::used).collect() }
    }

    /// Rows appended since the last [`finish`](Self::finish).
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row is waiting.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Validates a record (its fields as the file has them, placed by `header`) into the batch.
    /// Kept, it gives the warnings it raised, as [`validate::row`] would; refused, it leaves the
    /// batch as it was and gives `None`: [`validate::row`] says why.
    pub fn push<F: Fields + ?Sized>(&mut self, header: &Header, fields: &F) -> Option<&[Issue]> {
        self.warnings.clear();
        let mut kept = true;
        for (i, (spec, column)) in COLUMNS.iter().zip(&mut self.columns).enumerate() {
            let raw = header.raw(fields, i);
            if validate::is_null(raw) {
                if spec.required {
                    kept = false;
                    break;
                }
                column.push_null();
            } else if !column.push(spec, raw, &mut self.warnings) {
                kept = false;
                break;
            }
        }
        if !kept {
            for column in &mut self.columns {
                column.truncate(self.rows);
            }
            return None;
        }
        let (start, end) = validate::charge_period();
        if let (
            Some(Column::DateTime { values: s, valid: sv, .. }),
            Some(Column::DateTime { values: e, valid: ev, .. }),
        ) = (self.columns.get(start), self.columns.get(end))
        {
            let row = self.rows;
            let set = |v: &Validity| v.0.len() > row && v.0.get_bit(row);
            if set(sv) && set(ev) && e.get(row) < s.get(row) {
                self.warnings.push(validate::backwards());
            }
        }
        self.rows += 1;
        Some(&self.warnings)
    }

    /// The rows so far as a record batch; the builder is empty again.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let arrays: Vec<ArrayRef> = self.columns.iter_mut().map(Column::finish).collect::<Result<_>>()?;
        self.rows = 0;
        batch_of(arrays)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{
        ArrayBuilder, Decimal128Builder, MapBuilder, StringBuilder, TimestampMicrosecondBuilder,
    };
    use proptest::prelude::*;

    use super::*;
    use crate::validate::Cell;

    /// Rows into Arrow's own builders, cell by cell, as ingestion did before this module: the
    /// reference the column buffers are checked against.
    fn reference(rows: &[crate::validate::Row]) -> RecordBatch {
        let mut builders: Vec<Box<dyn ArrayBuilder>> = COLUMNS
            .iter()
            .map(|c| -> Box<dyn ArrayBuilder> {
                match c.kind {
                    ColumnType::String => Box::new(StringBuilder::new()),
                    ColumnType::Decimal => {
                        Box::new(Decimal128Builder::new().with_precision_and_scale(38, SCALE).expect("decimal type"))
                    }
                    ColumnType::DateTime => Box::new(TimestampMicrosecondBuilder::new().with_timezone("UTC")),
                    ColumnType::KeyValue => Box::new(MapBuilder::new(None, StringBuilder::new(), StringBuilder::new())),
                }
            })
            .collect();
        for row in rows {
            for (builder, cell) in builders.iter_mut().zip(&row.cells) {
                let any = builder.as_any_mut();
                if let Some(b) = any.downcast_mut::<StringBuilder>() {
                    match cell {
                        Cell::Text(s) => b.append_value(s),
                        _ => b.append_null(),
                    }
                } else if let Some(b) = any.downcast_mut::<Decimal128Builder>() {
                    match cell {
                        Cell::Decimal(d) => b.append_value(*d),
                        _ => b.append_null(),
                    }
                } else if let Some(b) = any.downcast_mut::<TimestampMicrosecondBuilder>() {
                    match cell {
                        Cell::DateTime(t) => b.append_value(*t),
                        _ => b.append_null(),
                    }
                } else if let Some(b) = any.downcast_mut::<MapBuilder<StringBuilder, StringBuilder>>() {
                    match cell {
                        Cell::KeyValue(pairs) => {
                            for (k, v) in pairs {
                                b.keys().append_value(k);
                                b.values().append_value(v);
                            }
                            b.append(true).expect("append");
                        }
                        _ => b.append(false).expect("append"),
                    }
                }
            }
        }
        let arrays: Vec<ArrayRef> = builders.iter_mut().map(|b| b.finish()).collect();
        batch_of(arrays).expect("batch")
    }

    /// Generated FOCUS rows: the header and the records.
    fn generated() -> (Vec<String>, Vec<Vec<String>>) {
        let options = crate::generate::Options { days: 3, resources: 1, ..Default::default() };
        let mut files: Vec<Arc<std::sync::Mutex<Vec<u8>>>> = Vec::new();
        struct Shared(Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Shared {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        crate::generate::generate(&options, &mut |_| {
            let file = Arc::new(std::sync::Mutex::new(Vec::new()));
            files.push(file.clone());
            Ok(Box::new(Shared(file)))
        })
        .expect("generate");
        let bytes = files[0].lock().expect("bytes").clone();
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        let header = reader.headers().expect("header").iter().map(str::to_string).collect();
        let records = reader.records().map(|r| r.expect("record").iter().map(str::to_string).collect()).collect();
        (header, records)
    }

    /// What an export can hold in a cell: off-spec, null in its spellings, padded, broken.
    const ODD: &[&str] = &[
        "",
        "NULL",
        "null",
        " NULL ",
        "abc",
        "-0.5",
        "1.0E-7",
        "12,5",
        "1e99",
        "usage",
        "USAGE",
        "Usage-based",
        "Credit",
        "usd",
        "EUR",
        "2024-01-01",
        "2024-01-02T05:00:00+02:00",
        "2024-02-30",
        "2023-12-31 23:59:59",
        "{}",
        r#"{"team":"a","n":3}"#,
        r#"{"team":"b"}"#,
        "[1]",
        "{bad",
        "Compute",
        "compute",
        "x",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever a record holds, the column buffers keep and refuse the records that
        /// `validate::row` keeps and refuses, with the same warnings, into the same arrays.
        #[test]
        fn records_go_into_the_columns_as_validate_row_reads_them(
            edits in proptest::collection::vec((0usize..200, 0usize..40, 0usize..ODD.len(), any::<bool>()), 0..120)
        ) {
            let (names, mut records) = generated();
            records.truncate(200);
            for (row, column, odd, padded) in edits {
                let n = records.len();
                let record = &mut records[row % n];
                let width = record.len();
                let cell = &mut record[column % width];
                *cell = if padded { format!("  {cell} ") } else { ODD[odd].to_string() };
            }
            let fields: Vec<&str> = names.iter().map(String::as_str).collect();
            let header = Header::new(&fields).expect("header");
            let mut kept = Vec::new();
            let mut builder = BatchBuilder::default();
            for record in &records {
                let values: Vec<&str> = record.iter().map(String::as_str).collect();
                let expected = validate::row(&header, &values);
                let got = builder.push(&header, values.as_slice()).map(<[Issue]>::to_vec);
                match expected {
                    Ok(row) => {
                        prop_assert_eq!(got, Some(row.warnings.clone()));
                        kept.push(row);
                    }
                    Err(_) => prop_assert_eq!(got, None),
                }
            }
            prop_assert_eq!(builder.len(), kept.len());
            let batch = builder.finish().expect("batch");
            prop_assert_eq!(batch, reference(&kept));
            prop_assert!(builder.is_empty());
        }
    }
}
