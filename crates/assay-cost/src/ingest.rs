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

use datafusion::arrow::array::{Array, MapArray, RecordBatchReader, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::store::{BatchBuilder, PartitionWriter, Store};
use crate::validate::{self, Cell, Header, Issue};
use crate::{Error, Result};

/// Rows per record batch written to Parquet.
const BATCH_ROWS: usize = 64 * 1024;

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

struct Group {
    batch: BatchBuilder,
    writer: PartitionWriter,
}

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
    store.clean();
    // Each file's rows go to parts of their own, kept only when the whole file was read: a
    // file that fails midway (a truncated gzip) leaves nothing behind.
    let mut staged: BTreeMap<(String, String), Vec<(PathBuf, usize)>> = BTreeMap::new();
    let mut report = IngestReport::default();
    for (n, path) in paths.iter().enumerate() {
        let mut file_report = FileReport { path: path.display().to_string(), ..FileReport::default() };
        let mut groups: HashMap<(String, String), Group> = HashMap::new();
        let result = ingest_file(store, data_dir, path, n, &mut groups, &mut file_report, progress);
        match result {
            Ok(()) => {
                for (key, mut group) in groups {
                    if !group.batch.is_empty() {
                        let batch = group.batch.finish()?;
                        group.writer.write(&batch)?;
                    }
                    staged.entry(key).or_default().push(group.writer.finish()?);
                }
            }
            Err(e) => {
                for (_, group) in groups {
                    group.writer.abort();
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
    read: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

fn ingest_file(
    store: &Store,
    data_dir: &Path,
    path: &Path,
    part: usize,
    groups: &mut HashMap<(String, String), Group>,
    report: &mut FileReport,
    progress: &mut dyn FnMut(&Path, u64),
) -> Result<()> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic).map_err(|e| Error::io(path, e))?;
    drop(file);
    if n == 4 && &magic == b"PAR1" {
        return ingest_parquet(store, data_dir, path, part, groups, report);
    }
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let counting = Counting { inner: BufReader::with_capacity(1 << 20, file), read: 0 };
    let reader: Box<dyn Read> = if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        Box::new(flate2::read::MultiGzDecoder::new(counting))
    } else {
        Box::new(counting)
    };
    let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let headers = csv
        .headers()
        .map_err(|e| Error::Input { path: path.display().to_string(), message: format!("reading the header: {e}") })?
        .clone();
    let fields: Vec<&str> = headers.iter().collect();
    let header = Header::new(&fields).map_err(|message| Error::Input { path: path.display().to_string(), message })?;
    report.extra_columns = header.extra.clone();
    let mut rejects: Option<Rejects> = None;
    let mut record = csv::StringRecord::new();
    let mut rows_since_progress = 0u32;
    loop {
        let line = csv.position().line() + 1;
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                // A broken record (bad UTF-8, unterminated quote): reject it and go on.
                report.read += 1;
                report.rejected += 1;
                reject(&mut rejects, data_dir, path, &headers, line, &format!("unreadable record: {e}"), &[])?;
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    return Err(Error::Input {
                        path: path.display().to_string(),
                        message: format!("line {line}: {e}"),
                    });
                }
                continue;
            }
        }
        let line = record.position().map_or(line, |p| p.line());
        report.read += 1;
        let values: Vec<&str> = record.iter().collect();
        if values.len() != headers.len() {
            report.rejected += 1;
            let reason = format!("has {} fields, the header has {}", values.len(), headers.len());
            reject(&mut rejects, data_dir, path, &headers, line, &reason, &values)?;
            continue;
        }
        accept(store, data_dir, path, part, &header, &headers, &values, line, groups, report, &mut rejects)?;
        rows_since_progress += 1;
        if rows_since_progress == 10_000 {
            rows_since_progress = 0;
            progress(path, csv.position().byte());
        }
    }
    if let Some(r) = rejects {
        finish_rejects(r, report)?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn accept(
    store: &Store,
    data_dir: &Path,
    path: &Path,
    part: usize,
    header: &Header,
    header_fields: &csv::StringRecord,
    values: &[&str],
    line: u64,
    groups: &mut HashMap<(String, String), Group>,
    report: &mut FileReport,
    rejects: &mut Option<Rejects>,
) -> Result<()> {
    match validate::row(header, values) {
        Ok(row) => {
            let (Cell::DateTime(start), Some(account)) = (row.get("BillingPeriodStart"), row.text("BillingAccountId"))
            else {
                unreachable!("mandatory columns are non-null in a validated row");
            };
            let key = (validate::year_month(*start), account.to_string());
            for w in &row.warnings {
                *report.warnings.entry(format!("{}: {}", w.column, w.message)).or_default() += 1;
            }
            let group = match groups.entry(key) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let writer = store.part_writer(&e.key().0, &e.key().1, Some(part))?;
                    e.insert(Group { batch: BatchBuilder::default(), writer })
                }
            };
            group.batch.push(&row);
            if group.batch.len() >= BATCH_ROWS {
                let batch = group.batch.finish()?;
                group.writer.write(&batch)?;
            }
            report.kept += 1;
        }
        Err(issues) => {
            report.rejected += 1;
            reject(rejects, data_dir, path, header_fields, line, &describe(&issues), values)?;
        }
    }
    Ok(())
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
    groups: &mut HashMap<(String, String), Group>,
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
    let mut rejects = None;
    let mut row_number = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| bad(&e))?;
        let columns: Vec<Vec<String>> =
            batch.columns().iter().map(|c| column_strings(c.as_ref())).collect::<Result<_>>()?;
        for i in 0..batch.num_rows() {
            row_number += 1;
            report.read += 1;
            let values: Vec<&str> = columns.iter().map(|c| c[i].as_str()).collect();
            // Parquet has no lines: the row number (1-based) stands in for one.
            accept(
                store,
                data_dir,
                path,
                part,
                &header,
                &header_fields,
                &values,
                row_number,
                groups,
                report,
                &mut rejects,
            )?;
        }
    }
    if let Some(r) = rejects {
        finish_rejects(r, report)?;
    }
    Ok(())
}
