//! Ingesting FOCUS exports (CSV, gzip-compressed CSV, Parquet) into the billing store.
//!
//! Every row is accounted for: it is kept, or rejected with its line and reason into a rejects
//! file beside the store; a file that is not FOCUS data is reported and the other files still
//! ingest. All files given to one ingest are grouped by (billing period, billing account), and
//! each group replaces that partition of the store, so a restated export does not double count.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use datafusion::arrow::array::{Array, MapArray, RecordBatchReader, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::batch::{BatchBuilder, Capacity};
use crate::chunks::{Chunk, Splitter};
use crate::store::{PartitionWriter, Store};
use crate::validate::{self, Fields, Header, Issue};
use crate::{Error, Result};

/// Rows per record batch written to Parquet.
const BATCH_ROWS: usize = 64 * 1024;

/// The most memory the rows held for sorting may take across the partitions being written
/// ([`PartitionWriter`]): past it, the partition holding the most writes them as a smaller row
/// group. An export of many accounts at once would otherwise hold a row group's worth for each.
const HELD_BYTES: usize = 768 << 20;

/// What happened to one input file.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FileReport {
    /// The file.
    pub path: String,
    /// Data rows read (the header excluded).
    pub read: u64,
    /// Rows kept.
    pub kept: u64,
    /// Rows rejected.
    pub rejected: u64,
    /// Warnings on kept rows, by column and message, with counts.
    pub warnings: BTreeMap<String, u64>,
    /// Columns that are not FOCUS columns and were not stored.
    pub extra_columns: Vec<String>,
    /// Why the file could not be ingested at all.
    pub error: Option<String>,
    /// Where rejected rows were written.
    pub rejects_file: Option<String>,
}

/// One partition written.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PartitionReport {
    /// Billing period, `YYYY-MM`.
    pub period: String,
    /// Billing account id.
    pub account: String,
    /// Rows in the partition.
    pub rows: u64,
}

/// What an ingest did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct IngestReport {
    /// Per input file.
    pub files: Vec<FileReport>,
    /// Partitions replaced.
    pub partitions: Vec<PartitionReport>,
}

impl IngestReport {
    /// Totals over all files: (read, kept, rejected).
    pub fn totals(&self) -> (u64, u64, u64) {
        self.files.iter().fold((0, 0, 0), |(r, k, j), f| (r + f.read, k + f.kept, j + f.rejected))
    }

    /// Whether any file failed as a whole or any row was rejected.
    pub fn has_problems(&self) -> bool {
        self.files.iter().any(|f| f.error.is_some() || f.rejected > 0)
    }
}

/// A file's part of each partition it has rows for, by (billing period, billing account).
type Parts = HashMap<(String, String), PartitionWriter>;

/// Writes rejected rows: the line, the reasons, and the original fields.
struct Rejects {
    path: PathBuf,
    writer: csv::Writer<File>,
}

/// Ingests files into the store. `progress` is called with the bytes read so far of the current file.
pub fn ingest(
    store: &Store,
    data_dir: &Path,
    paths: &[PathBuf],
    progress: &mut dyn FnMut(&Path, u64),
) -> Result<IngestReport> {
    ingest_in_chunks(store, data_dir, paths, progress, CHUNK_BYTES)
}

fn ingest_in_chunks(
    store: &Store,
    data_dir: &Path,
    paths: &[PathBuf],
    progress: &mut dyn FnMut(&Path, u64),
    chunk_bytes: usize,
) -> Result<IngestReport> {
    store.clean();
    // Each file's rows go to parts of their own, kept only when the whole file was read: a
    // file that fails midway (a truncated gzip) leaves nothing behind.
    let mut staged: BTreeMap<(String, String), Vec<(PathBuf, usize)>> = BTreeMap::new();
    let mut report = IngestReport::default();
    for (n, path) in paths.iter().enumerate() {
        let mut file_report = FileReport { path: path.display().to_string(), ..FileReport::default() };
        let mut parts: Parts = HashMap::new();
        let result = ingest_file(store, data_dir, path, n, &mut parts, &mut file_report, progress, chunk_bytes);
        match result {
            Ok(()) => {
                for (key, writer) in parts {
                    staged.entry(key).or_default().push(writer.finish()?);
                }
            }
            Err(e) => {
                for (_, writer) in parts {
                    writer.abort();
                }
                // The report names the file already.
                let message = match e {
                    Error::Input { message, .. } => message,
                    other => other.to_string(),
                };
                let kept = std::mem::take(&mut file_report.kept);
                file_report.error = Some(if kept > 0 {
                    format!("{message}; none of its {kept} good rows so far were stored")
                } else {
                    message
                });
            }
        }
        report.files.push(file_report);
    }
    let mut partitions = Vec::new();
    for ((period, account), parts) in staged {
        let rows = store.merge(&period, &account, &parts)?;
        partitions.push(PartitionReport { period, account, rows });
    }
    report.partitions = partitions;
    Ok(report)
}

/// Counts bytes as they are read, for progress.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Bytes of CSV validated as one unit of work.
const CHUNK_BYTES: usize = 8 << 20;

#[allow(clippy::too_many_arguments)]
fn ingest_file(
    store: &Store,
    data_dir: &Path,
    path: &Path,
    part: usize,
    parts: &mut Parts,
    report: &mut FileReport,
    progress: &mut dyn FnMut(&Path, u64),
    chunk_bytes: usize,
) -> Result<()> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic).map_err(|e| Error::io(path, e))?;
    drop(file);
    if n == 4 && &magic == b"PAR1" {
        return ingest_parquet(store, data_dir, path, part, parts, report);
    }
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let read = Arc::new(AtomicU64::new(0));
    let counting = Counting { inner: BufReader::with_capacity(1 << 20, file), read: read.clone() };
    let reader: Box<dyn Read + Send> = if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        Box::new(flate2::read::MultiGzDecoder::new(counting))
    } else {
        Box::new(counting)
    };
    let broken = |line: u64, e: &std::io::Error| Error::Input {
        path: path.display().to_string(),
        message: if line == 0 { format!("reading the header: {e}") } else { format!("line {line}: {e}") },
    };
    let mut splitter = Splitter::new(reader, chunk_bytes);
    let first = splitter.first_record().map_err(|e| broken(0, &e))?;
    let headers = match first {
        Some(chunk) => csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(chunk.bytes.as_slice())
            .headers()
            .map_err(|e| broken(0, &std::io::Error::other(e)))?
            .clone(),
        None => csv::StringRecord::new(),
    };
    let fields: Vec<&str> = headers.iter().collect();
    let header = Header::new(&fields).map_err(|message| Error::Input { path: path.display().to_string(), message })?;
    report.extra_columns = header.extra.clone();

    // One thread cuts the stream into chunks of whole records, workers validate chunks into
    // record batches, and this thread writes them in the file's order: the Parquet parts and
    // the rejects come out as a single pass over the file would write them.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
    let mut rejects: Option<Rejects> = None;
    std::thread::scope(|scope| -> Result<()> {
        // Chunks cut and not yet written: bounds memory whatever order the workers finish in.
        let (token_tx, token_rx) = mpsc::sync_channel::<()>(2 * workers + 1);
        for _ in 0..2 * workers + 1 {
            let _ = token_tx.send(());
        }
        let (chunk_tx, chunk_rx) = mpsc::sync_channel::<Chunk>(workers);
        let chunk_rx = Arc::new(Mutex::new(chunk_rx));
        let (done_tx, done_rx) = mpsc::channel::<(usize, u64, Result<Validated>)>();
        // Workers hand the chunks' buffers back, so that the cutter reuses them.
        let (spare_tx, spare_rx) = mpsc::channel::<Vec<u8>>();
        let cutter = scope.spawn(move || -> std::result::Result<(), (u64, std::io::Error)> {
            loop {
                if token_rx.recv().is_err() {
                    return Ok(());
                }
                while let Ok(buf) = spare_rx.try_recv() {
                    splitter.recycle(buf);
                }
                match splitter.next_chunk() {
                    Ok(Some(chunk)) => {
                        if chunk_tx.send(chunk).is_err() {
                            return Ok(());
                        }
                    }
                    Ok(None) => return Ok(()),
                    Err(e) => return Err((splitter.line(), e)),
                }
            }
        });
        for _ in 0..workers {
            let (chunk_rx, done_tx, spare_tx, header, headers, read) =
                (chunk_rx.clone(), done_tx.clone(), spare_tx.clone(), &header, &headers, read.clone());
            scope.spawn(move || {
                let mut sizes = Sizes::new();
                loop {
                    let next = chunk_rx.lock().map_err(|_| ()).and_then(|rx| rx.recv().map_err(|_| ()));
                    let Ok(chunk) = next else { return };
                    let mut validated = validate_chunk(header, headers.len(), &chunk, std::mem::take(&mut sizes));
                    if let Ok(v) = &mut validated {
                        sizes = std::mem::take(&mut v.sizes);
                    }
                    let _ = spare_tx.send(chunk.bytes);
                    if done_tx.send((chunk.index, read.load(Ordering::Relaxed), validated)).is_err() {
                        return;
                    }
                }
            });
        }
        drop((done_tx, chunk_rx, spare_tx));
        let written = (|| -> Result<()> {
            let mut waiting = BTreeMap::new();
            let mut next = 0usize;
            for (index, input_read, validated) in done_rx.iter() {
                waiting.insert(index, validated);
                while let Some(validated) = waiting.remove(&next) {
                    let written = Written { store, data_dir, path, part, headers: &headers };
                    written.apply(validated?, parts, report, &mut rejects)?;
                    next += 1;
                    let _ = token_tx.send(());
                    progress(path, input_read);
                }
            }
            Ok(())
        })();
        // Stops the cutter if writing failed (its next token never comes).
        drop(token_tx);
        drop(done_rx);
        let cut = cutter.join().unwrap_or_else(|_| Err((0, std::io::Error::other("the CSV reader panicked"))));
        written?;
        cut.map_err(|(line, e)| broken(line.max(1), &e))
    })?;
    if let Some(r) = rejects {
        finish_rejects(r, report)?;
    }
    Ok(())
}

/// Rows validated and sorted into record batches by partition, and the rows rejected.
#[derive(Default)]
struct Validated {
    read: u64,
    kept: u64,
    warnings: BTreeMap<String, u64>,
    rejects: Vec<Rejected>,
    batches: Vec<((String, String), datafusion::arrow::record_batch::RecordBatch)>,
    /// Rows not yet in a batch, by month number and partition. Rows come in few partitions
    /// (usually one or two at a time): a list is faster than a map.
    building: Vec<(i64, (String, String), BatchBuilder)>,
    /// The size of the last batch of each partition, to allocate the next one's builders at
    /// once. A worker carries it from chunk to chunk.
    sizes: Sizes,
    /// The last billing period start read and its value.
    period: crate::batch::Last<i64>,
}

/// Batch sizes by partition (see [`Capacity`]).
type Sizes = HashMap<(String, String), Capacity>;

/// A rejected record, to be written to the rejects file in order.
struct Rejected {
    line: u64,
    reason: String,
    values: Vec<String>,
}

impl Validated {
    /// Validates one record (fields as in the file) at `line`; keeps or rejects it.
    fn add<F: Fields + ?Sized>(&mut self, header: &Header, fields: &F, line: u64) -> Result<()> {
        self.read += 1;
        // The partition first, to know which batch the record goes to: a period that is not a
        // date or an account that is null fails the record, and `validate::row` says why below.
        let (period, account) = validate::partition_columns();
        let account = header.raw(fields, account);
        let start = match self.period.get(header.raw(fields, period), validate::parse_datetime) {
            Some(start) if !validate::is_null(account) => Some(*start),
            _ => None,
        };
        if let Some(start) = start {
            let month = validate::month_number(start);
            let i = match self.building.iter().position(|(m, (_, a), _)| *m == month && a == account) {
                Some(i) => i,
                None => {
                    let key = (validate::year_month(start), account.to_string());
                    let builder = match self.sizes.get(&key) {
                        Some(capacity) => BatchBuilder::with_capacity(&capacity.with_headroom()),
                        None => BatchBuilder::default(),
                    };
                    self.building.push((month, key, builder));
                    self.building.len() - 1
                }
            };
            let (_, key, builder) = &mut self.building[i];
            if let Some(warnings) = builder.push(header, fields) {
                for w in warnings {
                    *self.warnings.entry(format!("{}: {}", w.column, w.message)).or_default() += 1;
                }
                if builder.len() >= BATCH_ROWS {
                    self.sizes.insert(key.clone(), builder.used());
                    self.batches.push((key.clone(), builder.finish()?));
                }
                self.kept += 1;
                return Ok(());
            }
        }
        let values: Vec<&str> = (0..fields.count()).filter_map(|i| fields.field(i)).collect();
        match validate::row(header, &values) {
            Err(issues) => {
                self.reject(line, describe(&issues), &values);
                Ok(())
            }
            Ok(_) => Err(Error::Store(format!(
                "line {line}: the record passed validation but could not be stored (a text column of a batch over 2 GiB?)"
            ))),
        }
    }

    fn reject(&mut self, line: u64, reason: String, values: &[&str]) {
        self.rejects.push(Rejected { line, reason, values: values.iter().map(|v| v.to_string()).collect() });
    }

    /// Turns the rows still being built into batches.
    fn finish(mut self) -> Result<Validated> {
        for (_, key, mut builder) in std::mem::take(&mut self.building) {
            if !builder.is_empty() {
                self.sizes.insert(key.clone(), builder.used());
                self.batches.push((key, builder.finish()?));
            }
        }
        Ok(self)
    }
}

/// Where one file's validated rows are written.
struct Written<'a> {
    store: &'a Store,
    data_dir: &'a Path,
    path: &'a Path,
    part: usize,
    headers: &'a csv::StringRecord,
}

impl Written<'_> {
    /// Counts validated rows into the report, writes their rejects and their batches.
    fn apply(
        &self,
        v: Validated,
        parts: &mut Parts,
        report: &mut FileReport,
        rejects: &mut Option<Rejects>,
    ) -> Result<()> {
        report.read += v.read;
        report.kept += v.kept;
        report.rejected += v.rejects.len() as u64;
        for (warning, n) in v.warnings {
            *report.warnings.entry(warning).or_default() += n;
        }
        for r in &v.rejects {
            let values: Vec<&str> = r.values.iter().map(String::as_str).collect();
            reject(rejects, self.data_dir, self.path, self.headers, r.line, &r.reason, &values)?;
        }
        for (key, batch) in v.batches {
            let writer = match parts.entry(key) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let writer = self.store.part_writer(&e.key().0, &e.key().1, Some(self.part))?;
                    e.insert(writer)
                }
            };
            writer.write(&batch)?;
        }
        let mut held: usize = parts.values().map(PartitionWriter::pending_bytes).sum();
        while held > HELD_BYTES {
            let Some(writer) = parts.values_mut().max_by_key(|w| w.pending_bytes()) else { break };
            held -= writer.pending_bytes();
            writer.flush()?;
        }
        Ok(())
    }
}

/// Parses and validates a chunk of whole CSV records into record batches by partition.
/// `sizes` are the batch sizes of the chunks before (see [`Capacity`]); the result carries them on.
fn validate_chunk(header: &Header, width: usize, chunk: &Chunk, sizes: Sizes) -> Result<Validated> {
    let mut csv = csv::ReaderBuilder::new().flexible(true).has_headers(false).from_reader(chunk.bytes.as_slice());
    let mut out = Validated { sizes, ..Validated::default() };
    let mut record = csv::StringRecord::new();
    loop {
        // Where the next record starts, for a record that cannot be read.
        let line = chunk.base_line + csv.position().line();
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                // A broken record (bad UTF-8): reject it and go on.
                out.read += 1;
                let reason = match e.kind() {
                    csv::ErrorKind::Utf8 { err, .. } => {
                        format!(
                            "unreadable record: invalid UTF-8 in field {} near byte {}",
                            err.field() + 1,
                            err.valid_up_to()
                        )
                    }
                    _ => format!("unreadable record: {e}"),
                };
                out.reject(line, reason, &[]);
                continue;
            }
        }
        let line = chunk.base_line + record.position().map_or(line, |p| p.line());
        if record.len() != width {
            out.read += 1;
            let values: Vec<&str> = record.iter().collect();
            out.reject(line, format!("has {} fields, the header has {width}", values.len()), &values);
            continue;
        }
        out.add(header, &record, line)?;
    }
    out.finish()
}

fn describe(issues: &[Issue]) -> String {
    issues.iter().map(|i| format!("{} {}", i.column, i.message)).collect::<Vec<_>>().join("; ")
}

fn reject(
    rejects: &mut Option<Rejects>,
    data_dir: &Path,
    source: &Path,
    header: &csv::StringRecord,
    line: u64,
    reason: &str,
    values: &[&str],
) -> Result<()> {
    if rejects.is_none() {
        let dir = data_dir.join("rejects");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let stem = source.file_name().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "input".into());
        let stamp =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let path = dir.join(format!("{stem}.{stamp}.rejects.csv"));
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        // Rejected rows may have any number of fields.
        let mut writer = csv::WriterBuilder::new().flexible(true).from_writer(file);
        let mut head = vec!["line", "reason"];
        head.extend(header.iter());
        writer.write_record(&head).map_err(|e| Error::Store(format!("writing {}: {e}", path.display())))?;
        *rejects = Some(Rejects { path, writer });
    }
    if let Some(r) = rejects.as_mut() {
        let line = line.to_string();
        let mut record = vec![line.as_str(), reason];
        record.extend(values.iter().copied());
        r.writer.write_record(&record).map_err(|e| Error::Store(format!("writing {}: {e}", r.path.display())))?;
    }
    Ok(())
}

fn finish_rejects(r: Rejects, report: &mut FileReport) -> Result<()> {
    let file = r.writer.into_inner().map_err(|e| Error::Store(format!("writing {}: {e}", r.path.display())))?;
    file.sync_all().map_err(|e| Error::io(&r.path, e))?;
    report.rejects_file = Some(r.path.display().to_string());
    Ok(())
}

/// Formats a column of any type as the strings a CSV export would hold; maps become JSON.
fn column_strings(array: &dyn Array) -> Result<Vec<String>> {
    if let DataType::Map(_, _) = array.data_type() {
        let map = array.as_any().downcast_ref::<MapArray>().ok_or_else(|| Error::Store("map column".into()))?;
        let mut out = Vec::with_capacity(map.len());
        for i in 0..map.len() {
            if map.is_null(i) {
                out.push(String::new());
                continue;
            }
            let entries = map.value(i);
            let keys = entries.column(0).as_any().downcast_ref::<StringArray>().map(|a| a.iter().collect::<Vec<_>>());
            let values = column_strings(entries.column(1).as_ref())?;
            let mut object = serde_json::Map::new();
            for (k, v) in keys.unwrap_or_default().into_iter().zip(values) {
                object.insert(k.unwrap_or("").to_string(), serde_json::Value::String(v));
            }
            out.push(serde_json::Value::Object(object).to_string());
        }
        return Ok(out);
    }
    let options = FormatOptions::default().with_null("");
    let formatter = ArrayFormatter::try_new(array, &options).map_err(|e| Error::Store(format!("formatting: {e}")))?;
    Ok((0..array.len()).map(|i| formatter.value(i).to_string()).collect())
}

fn ingest_parquet(
    store: &Store,
    data_dir: &Path,
    path: &Path,
    part: usize,
    parts: &mut Parts,
    report: &mut FileReport,
) -> Result<()> {
    let bad = |e: &dyn std::fmt::Display| Error::Input {
        path: path.display().to_string(),
        message: format!("reading Parquet: {e}"),
    };
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| bad(&e))?.build().map_err(|e| bad(&e))?;
    let schema = reader.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let header = Header::new(&names).map_err(|message| Error::Input { path: path.display().to_string(), message })?;
    report.extra_columns = header.extra.clone();
    let header_fields = csv::StringRecord::from(names.clone());
    let written = Written { store, data_dir, path, part, headers: &header_fields };
    let mut rejects = None;
    let mut row_number = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| bad(&e))?;
        let columns: Vec<Vec<String>> =
            batch.columns().iter().map(|c| column_strings(c.as_ref())).collect::<Result<_>>()?;
        let mut validated = Validated::default();
        for i in 0..batch.num_rows() {
            row_number += 1;
            let values: Vec<&str> = columns.iter().map(|c| c[i].as_str()).collect();
            // Parquet has no lines: the row number (1-based) stands in for one.
            validated.add(&header, values.as_slice(), row_number)?;
        }
        written.apply(validated.finish()?, parts, report, &mut rejects)?;
    }
    if let Some(r) = rejects {
        finish_rejects(r, report)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A month of generated FOCUS rows with a bad cost at line 10, a row cut short at line 500,
    /// invalid UTF-8 at line 700 and a row whose quoted field holds a newline at line 800.
    fn export(dir: &Path) -> (PathBuf, usize) {
        let options = crate::generate::Options { days: 31, resources: 2, ..Default::default() };
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let mut written = std::collections::BTreeMap::new();
        crate::generate::generate(&options, &mut |name| {
            files.push((name.to_string(), Vec::new()));
            let path = dir.join(name);
            written.insert(name.to_string(), path.clone());
            Ok(Box::new(File::create(path)?))
        })
        .expect("generate");
        let path = written.values().next().expect("a file").clone();
        let text = std::fs::read_to_string(&path).expect("read");
        let mut lines: Vec<Vec<u8>> = text.lines().map(|l| l.as_bytes().to_vec()).collect();
        assert!(lines.len() > 1000, "{} lines", lines.len());
        let header: Vec<&str> = text.lines().next().expect("header").split(',').collect();
        let billed = header.iter().position(|h| *h == "BilledCost").expect("BilledCost");
        let description = header.iter().position(|h| *h == "ChargeDescription").expect("ChargeDescription");
        let set = |line: &mut Vec<u8>, field: usize, value: &str| {
            let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(line.as_slice());
            let record = reader.records().next().expect("record").expect("fields");
            let mut fields: Vec<String> = record.iter().map(str::to_string).collect();
            fields[field] = value.to_string();
            let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\r')).from_writer(Vec::new());
            w.write_record(&fields).expect("write");
            let mut out = w.into_inner().expect("bytes");
            out.pop();
            *line = out;
        };
        set(&mut lines[9], billed, "abc");
        lines[499] = lines[499].split(|b| *b == b',').take(5).collect::<Vec<_>>().join(&b',');
        lines[699].extend_from_slice(b"\xff\xfe");
        set(&mut lines[799], description, "two\nlines");
        let bytes = lines.join(&b'\n');
        std::fs::write(&path, [bytes.as_slice(), b"\n"].concat()).expect("write");
        (path, lines.len())
    }

    fn rejects_of(data: &Path) -> Vec<(String, String)> {
        let file = std::fs::read_dir(data.join("rejects")).expect("rejects").flatten().next().expect("a file").path();
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_path(file).expect("csv");
        reader
            .byte_records()
            .flatten()
            .map(|r| (String::from_utf8_lossy(&r[0]).into(), String::from_utf8_lossy(&r[1]).into()))
            .collect()
    }

    fn totals(store: &Store) -> Vec<String> {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let batches = runtime
            .block_on(crate::query(
                store,
                "SELECT billing_period, \"BillingAccountId\", COUNT(*), CAST(SUM(\"BilledCost\") AS VARCHAR), \
                 SUM(CASE WHEN strpos(\"ChargeDescription\", chr(10)) > 0 THEN 1 ELSE 0 END) FROM focus GROUP BY 1, 2 ORDER BY 1, 2",
            ))
            .expect("query");
        let options = datafusion::arrow::util::display::FormatOptions::default();
        let mut out = Vec::new();
        for b in &batches {
            let formatters: Vec<_> =
                b.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("format")).collect();
            for i in 0..b.num_rows() {
                out.push(formatters.iter().map(|f| f.value(i).to_string()).collect::<Vec<_>>().join("|"));
            }
        }
        out
    }

    #[test]
    fn a_file_validated_in_many_chunks_is_stored_and_rejected_as_in_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, lines) = export(dir.path());
        let mut results = Vec::new();
        for (name, chunk) in [("whole", usize::MAX), ("chunked", 4096)] {
            let data = dir.path().join(name);
            let store = Store::new(&data);
            let mut seen = Vec::new();
            let report = ingest_in_chunks(&store, &data, std::slice::from_ref(&path), &mut |_, n| seen.push(n), chunk)
                .expect("ingest");
            let file = &report.files[0];
            assert_eq!(file.error, None);
            assert_eq!((file.read, file.rejected), (lines as u64 - 1, 3), "{name}");
            let rejects = rejects_of(&data);
            assert_eq!(rejects.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), ["10", "500", "700"], "{name}");
            assert!(rejects[0].1.contains("BilledCost \"abc\" is not a decimal number"), "{rejects:?}");
            assert!(rejects[1].1.contains("has 5 fields"), "{rejects:?}");
            assert!(rejects[2].1.starts_with("unreadable record: invalid UTF-8"), "{rejects:?}");
            assert!(seen.windows(2).all(|w| w[0] <= w[1]), "progress goes forward: {seen:?}");
            if chunk == 4096 {
                assert!(seen.len() > 50, "{} chunks", seen.len());
            }
            results.push((file.kept, file.warnings.clone(), totals(&store)));
        }
        assert_eq!(results[0], results[1]);
        let multiline: u64 = results[0].2.iter().filter_map(|t| t.rsplit('|').next()?.parse::<u64>().ok()).sum();
        assert_eq!(multiline, 1, "{:?}", results[0].2);
    }

    #[test]
    fn a_truncated_gzip_export_is_an_error_and_stores_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, _) = export(dir.path());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &std::fs::read(&path).expect("read")).expect("gzip");
        let bytes = gz.finish().expect("gzip");
        let cut = dir.path().join("cut.csv.gz");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
        let data = dir.path().join("data");
        let store = Store::new(&data);
        let report = ingest_in_chunks(&store, &data, &[cut], &mut |_, _| {}, 4096).expect("ingest");
        let error = report.files[0].error.clone().unwrap_or_default();
        assert!(error.starts_with("line "), "{error}");
        assert!(report.partitions.is_empty());
        assert!(totals(&store).is_empty());
    }
}
