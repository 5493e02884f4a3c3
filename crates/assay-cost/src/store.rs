//! The billing store: FOCUS rows as Parquet files in the data directory, one file per billing
//! period and billing account, queried with DataFusion as the table `focus`.
//!
//! Layout: `DATA/focus/billing_period=YYYY-MM/<account>.parquet`. Cloud providers restate a
//! period's bill by re-exporting it whole, so a new export for a (period, account) replaces
//! the old file: written beside it, synced, then renamed over it, so a reader never sees half a
//! file and a crash leaves the old one.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::ListingOptions;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::parquet::schema::types::ColumnPath;
use datafusion::prelude::SessionContext;
use sha2::{Digest, Sha256};

use crate::spec::{COLUMNS, ColumnType};
use crate::{Error, Result};

/// Name of the partition column derived from the directory layout.
pub const PERIOD_COLUMN: &str = "billing_period";

/// The schema of stored files.
pub fn schema() -> SchemaRef {
    crate::batch::BatchBuilder::default().finish().map(|b| b.schema()).unwrap_or_else(|_| Arc::new(Schema::empty()))
}

/// The schema the table `focus` has: the stored files' with text read as Arrow's string views.
/// A view points into the page it was decoded from, so a column such as `ResourceId` (a
/// dictionary of 55-byte IDs in the file) is read without copying each row's text, and grouped
/// and compared as views; DataFusion reads Parquet text as views already, and with a table of
/// plain strings copied every value once more to turn the views back.
fn table_schema() -> SchemaRef {
    let fields: Vec<_> = schema()
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 => Arc::new(f.as_ref().clone().with_data_type(DataType::Utf8View)),
            _ => f.clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// A billing store rooted at a data directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// The most memory a query may hold, in bytes; past it, operators that can spill to disk
    /// (sorts, aggregations, joins) do, and others fail with an error that says so.
    memory_limit: usize,
}

/// Queries' memory unless set otherwise ([`Store::with_memory_limit`]).
pub const DEFAULT_MEMORY_LIMIT: usize = 2 << 30;

/// A partition file being written: replaced atomically on [`PartitionWriter::commit`].
#[derive(Debug)]
pub struct PartitionWriter {
    writer: ArrowWriter<File>,
    tmp: PathBuf,
    target: PathBuf,
    /// Rows written.
    pub rows: usize,
}

impl PartitionWriter {
    /// Writes a batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows();
        self.writer.write(batch).map_err(|e| Error::Store(format!("writing {}: {e}", self.tmp.display())))
    }

    /// Finishes the file and syncs it, without putting it in place: a part of a partition,
    /// for [`Store::merge`]. Returns its path and rows.
    pub fn finish(self) -> Result<(PathBuf, usize)> {
        let file =
            self.writer.into_inner().map_err(|e| Error::Store(format!("finishing {}: {e}", self.tmp.display())))?;
        file.sync_all().map_err(|e| Error::io(&self.tmp, e))?;
        Ok((self.tmp, self.rows))
    }

    /// Drops what was written.
    pub fn abort(self) {
        let tmp = self.tmp.clone();
        drop(self.writer);
        let _ = std::fs::remove_file(tmp);
    }

    /// Finishes the file, syncs it, and renames it over the partition it replaces.
    pub fn commit(self) -> Result<PathBuf> {
        let target = self.target.clone();
        let (tmp, _) = self.finish()?;
        replace_durably(&tmp, &target)?;
        Ok(target)
    }
}

/// How partitions are written. Text columns are dictionary-encoded, with room for a dictionary of
/// 8 MiB (Parquet's default, 1 MiB, holds about 20,000 resource IDs: past it a row group's
/// `ResourceId` fell back to plain text, a third of a file's bytes, read again by every query
/// that groups by resource). Amounts are nearly all distinct, so they are written plain rather
/// than first tried in a dictionary.
fn writer_properties() -> WriterProperties {
    let mut props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(256 * 1024))
        .set_dictionary_page_size_limit(8 << 20);
    for column in COLUMNS.iter().filter(|c| c.kind == ColumnType::Decimal) {
        props = props.set_column_dictionary_enabled(ColumnPath::from(column.name), false);
    }
    props.build()
}

/// Renames a synced file over `target` and makes the rename itself durable.
fn replace_durably(tmp: &Path, target: &Path) -> Result<()> {
    std::fs::rename(tmp, target).map_err(|e| Error::io(target, e))?;
    if let Some(dir) = target.parent()
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

impl Store {
    /// The store in `data_dir` (created on first write).
    pub fn new(data_dir: &Path) -> Store {
        Store { root: data_dir.join("focus"), memory_limit: DEFAULT_MEMORY_LIMIT }
    }

    /// The same store, its queries held to `bytes` of memory (spilling to the system's temporary
    /// directory where DataFusion can).
    pub fn with_memory_limit(mut self, bytes: usize) -> Store {
        self.memory_limit = bytes;
        self
    }

    /// Where the Parquet files are.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file holding one billing period (`YYYY-MM`) of one billing account.
    pub fn partition_path(&self, period: &str, account: &str) -> PathBuf {
        let digest = Sha256::digest(account.as_bytes());
        let name: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        self.root.join(format!("{PERIOD_COLUMN}={period}")).join(format!("account-{name}.parquet"))
    }

    /// Starts writing the partition of a period and account.
    pub fn writer(&self, period: &str, account: &str) -> Result<PartitionWriter> {
        self.part_writer(period, account, None)
    }

    /// A writer for part `part` of a partition (several input files feed one partition; each
    /// is written apart, so that one that fails midway can be dropped), or the whole of it.
    pub fn part_writer(&self, period: &str, account: &str, part: Option<usize>) -> Result<PartitionWriter> {
        let target = self.partition_path(period, account);
        let dir = target.parent().map(Path::to_path_buf).unwrap_or_else(|| self.root.clone());
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let tmp = match part {
            Some(n) => target.with_extension(format!("parquet.{}.part{n}.tmp", std::process::id())),
            None => target.with_extension(format!("parquet.{}.tmp", std::process::id())),
        };
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let writer = ArrowWriter::try_new(file, schema(), Some(writer_properties()))
            .map_err(|e| Error::Store(format!("creating {}: {e}", tmp.display())))?;
        Ok(PartitionWriter { writer, tmp, target, rows: 0 })
    }

    /// Replaces a partition with the rows of `parts` (as [`PartitionWriter::finish`] returns
    /// them: path and rows), in order: one part is renamed into place; several are copied into
    /// one file. The parts are removed. Returns the rows.
    pub fn merge(&self, period: &str, account: &str, parts: &[(PathBuf, usize)]) -> Result<u64> {
        use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        if let [(only, rows)] = parts {
            replace_durably(only, &self.partition_path(period, account))?;
            return Ok(*rows as u64);
        }
        let mut writer = self.writer(period, account)?;
        for (part, _) in parts {
            let file = File::open(part).map_err(|e| Error::io(part, e))?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .and_then(|b| b.build())
                .map_err(|e| Error::Store(format!("reading {}: {e}", part.display())))?;
            for batch in reader {
                let batch = batch.map_err(|e| Error::Store(format!("reading {}: {e}", part.display())))?;
                writer.write(&batch)?;
            }
        }
        let rows = writer.rows as u64;
        writer.commit()?;
        for (part, _) in parts {
            let _ = std::fs::remove_file(part);
        }
        Ok(rows)
    }

    /// A digest of what is stored: every partition file's path, size and modification time.
    /// An ingest renames a new file over the one it replaces, so any change to the data changes
    /// it; what it reads is the directory listing, not the data. For callers that keep answers
    /// worked out from the store (the server's cost page) and must know when they are stale.
    pub fn version(&self) -> String {
        let mut files = Vec::new();
        for period in std::fs::read_dir(&self.root).into_iter().flatten().flatten() {
            for f in std::fs::read_dir(period.path()).into_iter().flatten().flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                if !name.ends_with(".parquet") {
                    continue;
                }
                let Ok(meta) = f.metadata() else { continue };
                let modified = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                files.push(format!("{}/{name}\t{}\t{modified}", period.file_name().to_string_lossy(), meta.len()));
            }
        }
        files.sort();
        let digest = Sha256::digest(files.join("\n").as_bytes());
        digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
    }

    /// Removes temporary files a crashed ingest left behind.
    pub fn clean(&self) {
        let Ok(periods) = std::fs::read_dir(&self.root) else { return };
        for period in periods.flatten() {
            let Ok(files) = std::fs::read_dir(period.path()) else { continue };
            for f in files.flatten() {
                if f.file_name().to_string_lossy().ends_with(".tmp") {
                    let _ = std::fs::remove_file(f.path());
                }
            }
        }
    }

    /// A DataFusion session with the table `focus` (every stored column plus `billing_period`),
    /// where decimals divide in double precision and `date_trunc` takes its fast path on UTC
    /// timestamps ([`crate::datetime`]), its memory held to the store's limit.
    pub async fn session(&self) -> Result<SessionContext> {
        // Decimals divide as doubles (see `sql::DecimalDivision`), before type coercion.
        let mut rules = datafusion::optimizer::Analyzer::new().rules;
        rules.insert(0, Arc::new(crate::sql::DecimalDivision));
        let pool = Arc::new(datafusion::execution::memory_pool::FairSpillPool::new(self.memory_limit));
        let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
            .with_memory_pool(pool)
            .build_arc()
            .map_err(|e| Error::Store(format!("setting up the query engine: {e}")))?;
        // DataFusion's own settings from its environment variables
        // (`DATAFUSION_EXECUTION_BATCH_SIZE=...`, as datafusion-cli reads them), for tuning.
        let config = datafusion::prelude::SessionConfig::from_env()
            .map_err(|e| Error::Store(format!("a DATAFUSION_* environment variable: {e}")))?;
        let state = datafusion::execution::SessionStateBuilder::new()
            .with_default_features()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_analyzer_rules(rules)
            .build();
        let ctx = SessionContext::new_with_state(state);
        ctx.register_udf(crate::datetime::UtcDateTrunc::udf());
        std::fs::create_dir_all(&self.root).map_err(|e| Error::io(&self.root, e))?;
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(vec![(PERIOD_COLUMN.to_string(), DataType::Utf8)]);
        let url = format!("{}/", self.root.display());
        ctx.register_listing_table("focus", &url, options, Some(table_schema()), None)
            .await
            .map_err(|e| Error::Store(format!("opening the billing store {}: {e}", self.root.display())))?;
        Ok(ctx)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::ArrayRef;

    use super::*;
    use crate::validate::SCALE;

    /// Writes a partition (with no rows: the file is what counts).
    fn write(store: &Store, period: &str, account: &str) {
        let mut writer = store.writer(period, account).expect("writer");
        writer.write(&crate::batch::BatchBuilder::default().finish().expect("empty batch")).expect("write");
        writer.commit().expect("commit");
    }

    #[test]
    fn many_resource_ids_stay_in_a_dictionary_and_amounts_are_written_plain() {
        use datafusion::arrow::array::{Decimal128Array, StringArray, new_null_array};
        use datafusion::parquet::basic::Encoding;
        use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path());
        // 40,000 IDs of 60 bytes, each in four rows (hours): 2.4 MB of distinct text, past
        // Parquet's default dictionary, and 9.6 MB as plain text.
        let rows = 160_000;
        let schema = schema();
        let columns: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .map(|f| -> ArrayRef {
                match f.name().as_str() {
                    "ResourceId" => Arc::new(StringArray::from_iter_values(
                        (0..rows).map(|i| format!("arn:aws:ec2:us-east-1:123456789012:instance/i-{:020}", i % 40_000)),
                    )),
                    "EffectiveCost" => Arc::new(
                        Decimal128Array::from_iter_values((0..rows).map(|i| i as i128 * 1_234_567))
                            .with_precision_and_scale(38, SCALE)
                            .expect("decimal"),
                    ),
                    _ => new_null_array(f.data_type(), rows),
                }
            })
            .collect();
        let batch = RecordBatch::try_new(schema.clone(), columns).expect("batch");
        let mut writer = store.writer("2026-01", "a").expect("writer");
        writer.write(&batch).expect("write");
        let path = writer.commit().expect("commit");
        let reader = SerializedFileReader::new(File::open(&path).expect("open")).expect("parquet");
        let group = reader.metadata().row_group(0);
        let column = |name: &str| group.column(schema.index_of(name).expect("column"));
        let resource = column("ResourceId");
        assert!(
            resource.compressed_size() < 4_000_000,
            "ResourceId is 2.4 MB of dictionary and 160,000 small indices, not 9.6 MB of text: {} bytes",
            resource.compressed_size()
        );
        let cost = column("EffectiveCost");
        assert!(
            cost.dictionary_page_offset().is_none(),
            "amounts are plain: {:?}",
            cost.encodings().collect::<Vec<_>>()
        );
        assert!(!cost.encodings().any(|e| e == Encoding::RLE_DICTIONARY));
    }

    #[test]
    fn the_version_changes_when_a_partition_is_added_or_replaced_and_only_then() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path());
        let empty = store.version();
        write(&store, "2026-01", "a");
        let one = store.version();
        assert_ne!(one, empty);
        assert_eq!(store.version(), one, "reading does not change it");
        // A crashed ingest's leftover is not data.
        std::fs::write(store.partition_path("2026-01", "a").with_extension("parquet.9.tmp"), b"x").expect("tmp");
        assert_eq!(store.version(), one);
        write(&store, "2026-02", "a");
        let two = store.version();
        assert_ne!(two, one);
        std::thread::sleep(std::time::Duration::from_millis(20));
        write(&store, "2026-02", "a");
        assert_ne!(store.version(), two, "a re-ingested partition is a new version");
    }
}
