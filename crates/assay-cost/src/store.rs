//! The billing store: FOCUS rows as Parquet files in the data directory, one file per billing
//! period and billing account, queried with DataFusion as the table `focus`.
//!
//! Layout: `DATA/focus/billing_period=YYYY-MM/<account>.parquet`. Cloud providers restate a
//! period's bill by re-exporting it whole, so a new export for a (period, account) replaces
//! the old file: written beside it, synced, then renamed over it, so a reader never sees half a
//! file and a crash leaves the old one.
//!
//! The same layout may live on object storage (`s3://bucket/prefix`, `gs://…`, `az://…`, through
//! `object_store`): a partition is written to a local staging directory as above, then uploaded
//! over the object it replaces. An object is visible only once its upload completes (a single
//! PUT, or a multipart upload completed as one), so readers see the old partition or the new,
//! never half of one; a failed upload leaves the old object.

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

/// Where the partitions are kept when they are on object storage: `…/focus` in the bucket.
#[derive(Clone, Debug)]
struct Remote {
    bucket: assay_store::objects::Bucket,
}

impl Remote {
    /// Builds the client of a bucket URL from the environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`,
    /// as each cloud's own tools read them).
    fn open(url: &str) -> Result<Remote> {
        let bucket = assay_store::objects::Bucket::open(url).map_err(Error::Store)?;
        Ok(Remote { bucket: bucket.sub("focus") })
    }

    /// The key of a staged partition file (`…/focus/billing_period=P/account-X.parquet`).
    fn key(&self, local_root: &Path, local: &Path) -> object_store::path::Path {
        let rel = local.strip_prefix(local_root).unwrap_or(local);
        rel.iter().fold(self.bucket.prefix().clone(), |key, part| key.join(part.to_string_lossy().as_ref()))
    }

    /// Uploads a finished partition over the object it replaces, then removes the local file.
    fn publish(&self, local_root: &Path, local: &Path) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        let key = self.key(local_root, local);
        let store = self.bucket.store();
        let (file, url) = (
            local.to_path_buf(),
            self.bucket.name(&local.strip_prefix(local_root).unwrap_or(local).display().to_string()),
        );
        let stopped = || Error::Store(format!("{}: the object store's runtime stopped", self.bucket.url()));
        self.bucket.run(
            async move {
                let failed = |e: &dyn std::fmt::Display| Error::Store(format!("uploading {url}: {e}"));
                let mut source = tokio::fs::File::open(&file).await.map_err(|e| failed(&e))?;
                // One PUT for a small file, a multipart upload (completed as one) for a large one.
                let mut sink = object_store::buffered::BufWriter::new(store, key);
                if let Err(e) = tokio::io::copy(&mut source, &mut sink).await {
                    let _ = sink.abort().await;
                    return Err(failed(&e));
                }
                sink.shutdown().await.map_err(|e| failed(&e))?;
                Ok(())
            },
            stopped,
        )?;
        let _ = std::fs::remove_file(local);
        Ok(())
    }

    /// Every partition object: its key, size and tag.
    fn list(&self) -> Result<Vec<String>> {
        let objects = self.bucket.list_all().map_err(Error::Store)?;
        Ok(objects
            .into_iter()
            .filter(|o| o.location.as_ref().ends_with(".parquet"))
            .map(|o| {
                format!(
                    "{}\t{}\t{}\t{}",
                    o.location,
                    o.size,
                    o.last_modified.timestamp_nanos_opt().unwrap_or(0),
                    o.e_tag.unwrap_or_default()
                )
            })
            .collect())
    }
}

/// A billing store rooted at a data directory, or on object storage.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// Set when the partitions live on object storage: `root` then stages them.
    remote: Option<Remote>,
    /// The most memory a query may hold, in bytes; past it, operators that can spill to disk
    /// (sorts, aggregations, joins) do, and others fail with an error that says so.
    memory_limit: usize,
    /// Rows a row group holds ([`ROW_GROUP_ROWS`]; fewer in tests).
    row_group_rows: usize,
    /// A Ballista scheduler (`df://host:port`) that runs the queries, when not this process.
    cluster: Option<String>,
}

/// Queries' memory unless set otherwise ([`Store::with_memory_limit`]).
pub const DEFAULT_MEMORY_LIMIT: usize = 2 << 30;

/// Rows a row group holds, about: a group is cut where a charge period ends once it has this
/// many (or at twice this many, within one period).
pub const ROW_GROUP_ROWS: usize = 256 * 1024;

/// A partition file being written: replaced atomically on [`PartitionWriter::commit`].
///
/// Rows are kept in charge-period order within each row group ([`crate::order`]). While they
/// come in time order, as exports are mostly written, they are written as they come, a row
/// group cut where a period ends, so that row groups cover one period after another. Once a
/// row goes back in time, the rest of the partition is held a row group's worth at a time and
/// sorted before it is written; the rows of the latest period held are kept for the next group,
/// since more of them may still come.
#[derive(Debug)]
pub struct PartitionWriter {
    /// Where a committed file goes after it is in place locally, and the local root it is
    /// under.
    remote: Option<(Remote, PathBuf)>,
    writer: ArrowWriter<File>,
    tmp: PathBuf,
    target: PathBuf,
    /// Rows written.
    pub rows: usize,
    /// Rows in the row group being written.
    open_rows: usize,
    /// The charge period start of the last row written, while rows come in time order.
    last_time: Option<i64>,
    /// Rows have gone back in time: they are held and sorted.
    sorting: bool,
    /// Rows held, in the order they came.
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    pending_bytes: usize,
    group_rows: usize,
}

impl PartitionWriter {
    /// Writes a batch (or holds it, to sort it with those that follow).
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows();
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if !self.sorting {
            let times = crate::order::times(batch)?;
            if times.is_sorted() && self.last_time.is_none_or(|t| t <= times[0]) {
                return self.write_in_order(batch, &times);
            }
            // Back in time: the row group written so far is in order; end it there.
            self.end_group()?;
            self.sorting = true;
        }
        self.hold(batch)
    }

    /// Writes rows in time order, ending the row group where a period ends once it is full.
    fn write_in_order(&mut self, batch: &RecordBatch, times: &[i64]) -> Result<()> {
        let mut offset = 0;
        while offset < times.len() {
            let end = if self.open_rows < self.group_rows {
                (offset + self.group_rows - self.open_rows).min(times.len())
            } else {
                // Full: up to where the period of the last row written ends.
                let last = self.last_time.unwrap_or(i64::MIN);
                offset + times[offset..].iter().take_while(|&&t| t == last).count()
            };
            if end > offset {
                self.writer.write(&batch.slice(offset, end - offset)).map_err(|e| self.failed(&e))?;
                self.open_rows += end - offset;
                self.last_time = Some(times[end - 1]);
            }
            let period_ended = end < times.len() && Some(times[end]) != self.last_time;
            if self.open_rows >= self.group_rows && (period_ended || self.open_rows >= 2 * self.group_rows) {
                self.end_group()?;
            }
            offset = end;
        }
        Ok(())
    }

    fn failed(&self, e: &dyn std::fmt::Display) -> Error {
        Error::Store(format!("writing {}: {e}", self.tmp.display()))
    }

    /// Ends the row group being written.
    fn end_group(&mut self) -> Result<()> {
        if self.open_rows > 0 {
            self.writer.flush().map_err(|e| self.failed(&e))?;
            self.open_rows = 0;
        }
        Ok(())
    }

    /// Holds rows to sort, writing a row group once a group's worth is held.
    fn hold(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            let take = self.group_rows.saturating_sub(self.pending_rows).max(1).min(batch.num_rows() - offset);
            let part = batch.slice(offset, take);
            offset += take;
            self.pending_rows += part.num_rows();
            self.pending_bytes += part.get_array_memory_size();
            self.pending.push(part);
            if self.pending_rows >= self.group_rows {
                self.write_group(true)?;
            }
        }
        Ok(())
    }

    /// Memory held by rows not yet written.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Writes what is held (or ends the row group being written) now: a smaller row group, to
    /// free memory.
    pub fn flush(&mut self) -> Result<()> {
        self.write_group(false)?;
        self.end_group()
    }

    /// Sorts the rows held and writes them as one row group; with `hold_latest`, those of the
    /// latest period stay held, unless they are half the rows or more.
    fn write_group(&mut self, hold_latest: bool) -> Result<()> {
        use datafusion::arrow::compute::interleave_record_batch;
        if self.pending_rows == 0 {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let mut times = Vec::with_capacity(self.pending_rows);
        for batch in &pending {
            times.extend(crate::order::times(batch)?);
        }
        let order = crate::order::sorted_positions(&times);
        let position = |i: usize| order.as_ref().map_or(i, |o| o[i] as usize);
        let mut write = times.len();
        if hold_latest {
            let latest = times[position(times.len() - 1)];
            let held = (0..times.len()).rev().take_while(|&i| times[position(i)] == latest).count();
            if held < times.len() / 2 {
                write -= held;
            }
        }
        // Each (batch, row) of the rows in sorted order, a slice at a time.
        let starts: Vec<usize> = pending
            .iter()
            .scan(0, |n, b| {
                let start = *n;
                *n += b.num_rows();
                Some(start)
            })
            .collect();
        let locate = |i: usize| {
            let p = position(i);
            let batch = starts.partition_point(|&s| s <= p) - 1;
            (batch, p - starts[batch])
        };
        let refs: Vec<&RecordBatch> = pending.iter().collect();
        const SLICE: usize = 64 * 1024;
        for from in (0..write).step_by(SLICE) {
            let indices: Vec<(usize, usize)> = (from..(from + SLICE).min(write)).map(locate).collect();
            let sorted = interleave_record_batch(&refs, &indices).map_err(|e| self.failed(&e))?;
            self.writer.write(&sorted).map_err(|e| self.failed(&e))?;
        }
        self.writer.flush().map_err(|e| self.failed(&e))?;
        self.pending_rows = 0;
        self.pending_bytes = 0;
        if write < times.len() {
            let indices: Vec<(usize, usize)> = (write..times.len()).map(locate).collect();
            let held = interleave_record_batch(&refs, &indices).map_err(|e| self.failed(&e))?;
            self.pending_rows = held.num_rows();
            self.pending_bytes = held.get_array_memory_size();
            self.pending.push(held);
        }
        Ok(())
    }

    /// Finishes the file and syncs it, without putting it in place: a part of a partition,
    /// for [`Store::merge`]. Returns its path and rows.
    pub fn finish(mut self) -> Result<(PathBuf, usize)> {
        self.write_group(false)?;
        self.end_group()?;
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

    /// Finishes the file, syncs it, and renames it over the partition it replaces (on object
    /// storage: uploads it over the object it replaces).
    pub fn commit(self) -> Result<PathBuf> {
        let target = self.target.clone();
        let remote = self.remote.clone();
        let (tmp, _) = self.finish()?;
        replace_durably(&tmp, &target)?;
        if let Some((remote, root)) = remote {
            remote.publish(&root, &target)?;
        }
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
        // The writer decides where row groups end ([`PartitionWriter::write`]); this only caps
        // one that a long period would make larger.
        .set_max_row_group_row_count(Some(4 * ROW_GROUP_ROWS))
        .set_dictionary_page_size_limit(8 << 20);
    for column in COLUMNS.iter().filter(|c| c.kind == ColumnType::Decimal) {
        props = props.set_column_dictionary_enabled(ColumnPath::from(column.name), false);
    }
    props.build()
}

/// Whether a `--data` value is a URL (object storage) rather than a directory.
pub fn is_url(location: &str) -> bool {
    assay_store::objects::is_url(location)
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
        Store {
            root: data_dir.join("focus"),
            remote: None,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            row_group_rows: ROW_GROUP_ROWS,
            cluster: None,
        }
    }

    /// The store at `location`: a directory, or an object storage URL (`s3://bucket/prefix`,
    /// `gs://bucket/prefix`, `az://container/prefix`) whose credentials and endpoint come from
    /// the environment as the cloud's own tools read them. Partitions bound for object storage
    /// are staged in `staging` first.
    pub fn at(location: &str, staging: &Path) -> Result<Store> {
        if !is_url(location) {
            return Ok(Store::new(Path::new(location)));
        }
        let remote = Remote::open(location)?;
        Ok(Store { remote: Some(remote), ..Store::new(staging) })
    }

    /// Where the partitions are: a directory or a URL.
    pub fn location(&self) -> String {
        match &self.remote {
            Some(r) => r.bucket.url().to_string(),
            None => self.root.display().to_string(),
        }
    }

    /// Whether partitions live on object storage.
    pub fn is_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// The same store, its queries held to `bytes` of memory (spilling to the system's temporary
    /// directory where DataFusion can).
    pub fn with_memory_limit(mut self, bytes: usize) -> Store {
        self.memory_limit = bytes;
        self
    }

    /// The same store, its queries run on the Ballista cluster whose scheduler is `url`
    /// (`df://host:port`; see [`crate::cluster`]).
    pub fn with_cluster(mut self, url: &str) -> Store {
        self.cluster = Some(url.to_string());
        self
    }

    /// The same store, writing row groups of `rows` rows (for tests of many row groups).
    #[cfg(test)]
    pub(crate) fn with_row_group_rows(mut self, rows: usize) -> Store {
        self.row_group_rows = rows.max(1);
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
        Ok(PartitionWriter {
            remote: self.remote.clone().map(|r| (r, self.root.clone())),
            writer,
            tmp,
            target,
            rows: 0,
            open_rows: 0,
            last_time: None,
            sorting: false,
            pending: Vec::new(),
            pending_rows: 0,
            pending_bytes: 0,
            group_rows: self.row_group_rows,
        })
    }

    /// Replaces a partition with the rows of `parts` (as [`PartitionWriter::finish`] returns
    /// them: path and rows), in order: one part is renamed into place; several are copied into
    /// one file. The parts are removed. Returns the rows.
    pub fn merge(&self, period: &str, account: &str, parts: &[(PathBuf, usize)]) -> Result<u64> {
        use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        if let [(only, rows)] = parts {
            let target = self.partition_path(period, account);
            replace_durably(only, &target)?;
            if let Some(remote) = &self.remote {
                remote.publish(&self.root, &target)?;
            }
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
        if let Some(remote) = &self.remote {
            // Objects replaced in place get a new tag and time; a listing that fails is a
            // version of its own, so that nothing is kept as if it were current.
            let mut objects = remote.list().unwrap_or_else(|e| vec![format!("unlisted: {e}")]);
            objects.sort();
            let digest = Sha256::digest(objects.join("\n").as_bytes());
            return digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        }
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
        let ctx = match &self.cluster {
            Some(url) => crate::cluster::remote(url, state).await?,
            None => SessionContext::new_with_state(state),
        };
        ctx.register_udf(crate::datetime::UtcDateTrunc::udf());
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(vec![(PERIOD_COLUMN.to_string(), DataType::Utf8)]);
        let url = match &self.remote {
            Some(remote) => {
                ctx.runtime_env().register_object_store(remote.bucket.root(), remote.bucket.store());
                format!("{}/", remote.bucket.url())
            }
            None => {
                std::fs::create_dir_all(&self.root).map_err(|e| Error::io(&self.root, e))?;
                format!("{}/", self.root.display())
            }
        };
        ctx.register_listing_table("focus", &url, options, Some(table_schema()), None)
            .await
            .map_err(|e| Error::Store(format!("opening the billing store {}: {e}", self.location())))?;
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

    /// Rows of `days` days, each day's in the order given by `within`, in batches of 128.
    fn rows_by_day(days: std::ops::Range<i64>, within: impl Fn(i64, usize) -> usize) -> Vec<RecordBatch> {
        use datafusion::arrow::array::{StringArray, TimestampMicrosecondArray, new_null_array};
        let per_day = 3 * 5 * 20;
        let mut rows = Vec::new();
        for day in days {
            for i in 0..per_day {
                let r = within(day, i) % per_day;
                let (sub, service, resource) = (r / 100, (r / 20) % 5, r % 20);
                rows.push((
                    day * 86_400_000_000,
                    format!("sub-{sub}"),
                    format!("svc-{service}"),
                    format!("r-{r}-{resource}"),
                ));
            }
        }
        let schema = schema();
        rows.chunks(128)
            .map(|chunk| {
                let columns: Vec<ArrayRef> = schema
                    .fields()
                    .iter()
                    .map(|f| -> ArrayRef {
                        match f.name().as_str() {
                            "ChargePeriodStart" => Arc::new(
                                TimestampMicrosecondArray::from_iter_values(chunk.iter().map(|r| r.0))
                                    .with_timezone("UTC"),
                            ),
                            "SubAccountId" => Arc::new(StringArray::from_iter_values(chunk.iter().map(|r| &r.1))),
                            "ServiceName" => Arc::new(StringArray::from_iter_values(chunk.iter().map(|r| &r.2))),
                            "ResourceId" => Arc::new(StringArray::from_iter_values(chunk.iter().map(|r| &r.3))),
                            _ => new_null_array(f.data_type(), chunk.len()),
                        }
                    })
                    .collect();
                RecordBatch::try_new(schema.clone(), columns).expect("batch")
            })
            .collect()
    }

    /// The (start, sub account, service, resource) of each row of each row group of a file.
    fn row_groups(path: &Path) -> Vec<Vec<Row>> {
        use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let groups = ParquetRecordBatchReaderBuilder::try_new(File::open(path).expect("open"))
            .expect("parquet")
            .metadata()
            .num_row_groups();
        (0..groups)
            .map(|g| {
                let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).expect("open"))
                    .expect("parquet")
                    .with_row_groups(vec![g])
                    .build()
                    .expect("reader");
                reader.flat_map(|batch| rows_of(&batch.expect("batch"))).collect()
            })
            .collect()
    }

    /// A row as the tests compare it: (start, sub account, service, resource).
    type Row = (i64, String, String, String);

    /// The rows of a batch.
    fn rows_of(batch: &RecordBatch) -> Vec<Row> {
        use datafusion::arrow::array::{AsArray, TimestampMicrosecondArray};
        let text = |name: &str| batch.column_by_name(name).expect(name).as_string::<i32>().clone();
        let start = batch.column_by_name("ChargePeriodStart").expect("start");
        let start = start.as_any().downcast_ref::<TimestampMicrosecondArray>().expect("timestamp");
        let (sub, service, resource) = (text("SubAccountId"), text("ServiceName"), text("ResourceId"));
        (0..batch.num_rows())
            .map(|i| {
                (start.value(i), sub.value(i).to_string(), service.value(i).to_string(), resource.value(i).to_string())
            })
            .collect()
    }

    #[test]
    fn each_row_group_is_in_period_order_and_every_row_is_kept_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path()).with_row_group_rows(1000);
        let write = |batches: &[RecordBatch], account: &str, flush_after: Option<usize>| {
            let mut writer = store.writer("2026-01", account).expect("writer");
            for (i, batch) in batches.iter().enumerate() {
                writer.write(batch).expect("write");
                if flush_after == Some(i) {
                    writer.flush().expect("flush");
                }
            }
            writer.commit().expect("commit")
        };
        let check = |path: &Path, batches: &[RecordBatch]| {
            let groups = row_groups(path);
            for (g, rows) in groups.iter().enumerate() {
                let times: Vec<_> = rows.iter().map(|(t, ..)| t).collect();
                assert!(times.is_sorted(), "row group {g} is in period order: {:?}", &times[..times.len().min(5)]);
            }
            let mut stored = groups.concat();
            stored.sort();
            let mut given: Vec<Row> = batches.iter().flat_map(rows_of).collect();
            given.sort();
            assert_eq!(stored, given, "every row is kept, once");
            groups
        };
        // An export in time order: written as it comes, each day's rows in the export's order,
        // row groups ended where a day ends, so that each day is in one row group.
        let in_time = rows_by_day(0..10, |_, i| 299 - i);
        let groups = check(&write(&in_time, "a", None), &in_time);
        assert_eq!(groups.iter().map(Vec::len).collect::<Vec<_>>(), [1200, 1200, 600], "groups of four days");
        for pair in groups.windows(2) {
            let (last, first) = (pair[0].last().expect("rows").0, pair[1].first().expect("rows").0);
            assert!(last < first, "a day is in one row group: {last} then {first}");
        }
        let given: Vec<Row> = in_time.iter().flat_map(rows_of).collect();
        assert_eq!(groups[0][..300], given[..300], "a day's rows keep the export's order");
        // A flush ends the row group there.
        let groups = check(&write(&in_time, "c", Some(0)), &in_time);
        assert_eq!(groups[0].len(), 128);
        // Days out of order: every row group sorted all the same.
        let shuffled: Vec<RecordBatch> =
            rows_by_day(0..10, |day, i| (i * 7 + day as usize * 13) % 300).into_iter().rev().collect();
        let groups = check(&write(&shuffled, "b", None), &shuffled);
        assert!(groups.len() >= 3, "3000 rows in groups of about 1000: {}", groups.len());
    }

    /// A filter on the charge period skips the pages of a sorted row group that hold other
    /// periods, by the page index: an export out of time order is read in part, not whole.
    #[tokio::test]
    async fn a_period_filter_skips_pages_of_a_row_group_written_out_of_time_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path()).with_row_group_rows(40_000);
        // 30,000 rows over 100 days, last day first: after a few rows of the last day, one row
        // group of two pages (of 20,000 rows, Parquet's default), which without sorting would
        // both hold most days.
        let batches: Vec<RecordBatch> = rows_by_day(0..100, |_, i| i).into_iter().rev().collect();
        let mut writer = store.writer("2026-01", "a").expect("writer");
        for batch in &batches {
            writer.write(batch).expect("write");
        }
        writer.commit().expect("commit");
        let ctx = store.session().await.expect("session");
        let since = 90 * 86_400_000_000i64;
        let sql =
            format!("SELECT count(*) AS n FROM focus WHERE \"ChargePeriodStart\" >= to_timestamp_micros({since})");
        let plan = ctx.sql(&sql).await.expect("plan").create_physical_plan().await.expect("physical plan");
        let rows = datafusion::physical_plan::collect(plan.clone(), ctx.task_ctx()).await.expect("query");
        let n = datafusion::arrow::util::pretty::pretty_format_batches(&rows).expect("format").to_string();
        assert!(n.contains("| 3000 |"), "ten days of 300 rows: {n}");
        // Rows the page index skipped, over every node of the plan.
        fn pruned(plan: &Arc<dyn datafusion::physical_plan::ExecutionPlan>) -> usize {
            use datafusion::physical_plan::metrics::MetricValue;
            let own: usize = plan
                .metrics()
                .iter()
                .flat_map(|m| m.iter().cloned().collect::<Vec<_>>())
                .filter_map(|m| match m.value() {
                    MetricValue::PruningMetrics { name, pruning_metrics } if name == "page_index_rows_pruned" => {
                        Some(pruning_metrics.pruned())
                    }
                    _ => None,
                })
                .sum();
            own + plan.children().into_iter().map(pruned).sum::<usize>()
        }
        assert_eq!(pruned(&plan), 20_000, "the first page (days 0 to 66) is skipped");
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
