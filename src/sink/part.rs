//! The rows of one dataset for one file pair (Parquet + CSV): computes each row's `row_key`,
//! the control totals per currency, and the billing month its rows belong to.
//!
//! Each file is encoded on its own thread (a lane), behind the caller: the caller hands over
//! a page of rows and goes on with the next page while both files encode it. A lane holds at
//! most [`LANE_PAGES`] pages, so memory stays bounded however many rows the file gets.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::totals::TotalColumns;
use super::writer::{FileReport, Writer};
use crate::tabular::text::cell_text;
use crate::tabular::{Cell, ColType, DatasetSchema, Partition, Source};

/// Σ per currency of each total column, as unscaled Decimal128 values.
pub use super::totals::Totals;

/// A finished file pair.
#[derive(Debug, Clone)]
pub struct PartReport {
    /// Parquet and CSV files.
    pub files: Vec<FileReport>,
    /// Rows in each.
    pub rows: u64,
    /// Control totals.
    pub totals: Totals,
    /// `YYYY-MM` of the first row's partition column, where the dataset needs it.
    pub month: Option<String>,
}

/// Pages a lane holds before the caller waits for it.
pub const LANE_PAGES: usize = 2;

/// Rows handed to single-row [`PartWriter::push`] are sent to the lanes this many at a time.
const PUSH_CHUNK: usize = 4096;

/// Rows shared by the two lanes of a file pair.
type Rows = Arc<Vec<Vec<Cell>>>;

/// What a lane is told.
enum LaneJob {
    /// Encode these rows.
    Rows(Rows),
    /// Complete the file. A lane whose channel closes without this abandons its file.
    Finish,
}

/// One output file, encoded on its own thread.
struct Lane {
    path: PathBuf,
    jobs: Option<SyncSender<LaneJob>>,
    thread: Option<JoinHandle<io::Result<FileReport>>>,
}

impl Lane {
    fn spawn(writer: Writer, path: &Path) -> io::Result<Lane> {
        let (jobs, queue) = sync_channel(LANE_PAGES);
        let thread = std::thread::Builder::new().name("pcrecon-encode".into()).spawn(move || encode(writer, queue))?;
        Ok(Lane { path: path.to_path_buf(), jobs: Some(jobs), thread: Some(thread) })
    }

    /// Queues rows; an error here is the lane's own, which ended it.
    fn send(&mut self, rows: &Rows) -> io::Result<()> {
        let sent = self.jobs.as_ref().is_some_and(|jobs| jobs.send(LaneJob::Rows(rows.clone())).is_ok());
        if sent { Ok(()) } else { Err(self.join().err().unwrap_or_else(|| io::Error::other("the encoder stopped"))) }
    }

    fn join(&mut self) -> io::Result<FileReport> {
        self.jobs = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other(format!("the encoder of {} panicked", self.path.display()))),
            None => Err(io::Error::other(format!("{} is already closed", self.path.display()))),
        }
    }

    fn finish(mut self) -> io::Result<FileReport> {
        if let Some(jobs) = &self.jobs {
            // A lane that already ended reports why when joined.
            let _ = jobs.send(LaneJob::Finish);
        }
        self.join()
    }
}

impl Drop for Lane {
    /// An unfinished lane abandons its file.
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.join();
        }
    }
}

/// A lane's thread: encodes what it is sent, then finishes or abandons the file.
fn encode(mut writer: Writer, queue: Receiver<LaneJob>) -> io::Result<FileReport> {
    for job in queue.iter() {
        match job {
            LaneJob::Rows(rows) => {
                if let Err(e) = rows.iter().try_for_each(|row| writer.push(row)) {
                    writer.abandon();
                    return Err(e);
                }
            }
            LaneJob::Finish => return writer.finish(),
        }
    }
    writer.abandon();
    Err(io::Error::other("abandoned"))
}

/// Writes rows of one dataset to a Parquet and a CSV file.
pub struct PartWriter<'s> {
    schema: &'s DatasetSchema,
    parquet: Lane,
    csv: Lane,
    pending: Vec<Vec<Cell>>,
    keys: Vec<usize>,
    row_key: Option<usize>,
    seen: HashMap<[u8; 16], u32>,
    total_columns: TotalColumns,
    totals: Totals,
    month_at: Option<usize>,
    month: Option<String>,
    rows: u64,
}

/// `YYYY-MM` of a date or timestamp cell.
pub fn month_of(cell: &Cell, ty: ColType) -> Option<String> {
    let text = cell_text(cell, ty);
    text.get(..7).filter(|m| m.len() == 7).map(str::to_owned)
}

/// The first 16 bytes of the SHA-256 of a row's key columns.
fn key_digest(schema: &DatasetSchema, keys: &[usize], row: &[Cell]) -> [u8; 16] {
    let mut hasher = Sha256::new();
    for &k in keys {
        hasher.update(schema.columns[k].name.as_bytes());
        hasher.update(b"=");
        hasher.update(cell_text(&row[k], schema.columns[k].ty).as_bytes());
        hasher.update(b"\x1f");
    }
    let digest = hasher.finalize();
    let mut short = [0u8; 16];
    short.copy_from_slice(&digest[..16]);
    short
}

impl<'s> PartWriter<'s> {
    /// Opens `parquet` and `csv` for a dataset's rows.
    pub fn create(schema: &'s DatasetSchema, parquet: &Path, csv: &Path, bom: bool) -> io::Result<PartWriter<'s>> {
        let index = |name: &str| schema.column(name);
        let month_column = match schema.partition {
            Partition::RowMonth(c) | Partition::ScopeMonth(c) => index(c),
            Partition::None | Partition::Invoice => None,
        };
        Ok(PartWriter {
            schema,
            parquet: Lane::spawn(Writer::parquet(parquet, schema)?, parquet)?,
            csv: Lane::spawn(Writer::csv(csv, schema, bom)?, csv)?,
            pending: Vec::new(),
            keys: schema.keys.iter().filter_map(|k| index(k)).collect(),
            row_key: schema.columns.iter().position(|c| c.source == Source::RowKey),
            seen: HashMap::new(),
            total_columns: TotalColumns::of(schema),
            totals: Totals::new(),
            month_at: month_column,
            month: None,
            rows: 0,
        })
    }

    /// Fills in `row_key` (exact duplicates are told apart by their order of arrival), and
    /// keeps the month and the control totals.
    fn account(&mut self, row: &mut [Cell], digest: Option<[u8; 16]>) -> io::Result<()> {
        if let (Some(at), Some(short)) = (self.row_key, digest) {
            let ordinal = self.seen.entry(short).or_insert(0);
            row[at] = Cell::Str(format!("{}-{}", crate::model::hex(&short), ordinal));
            *ordinal += 1;
        }
        if self.month.is_none() {
            self.month = self.month_at.and_then(|i| month_of(&row[i], self.schema.columns[i].ty));
        }
        self.total_columns.add(row, &mut self.totals).map_err(io::Error::other)
    }

    /// Writes one row (its `row_key` cell is filled in here).
    pub fn push(&mut self, mut row: Vec<Cell>) -> io::Result<()> {
        let digest = self.row_key.map(|_| key_digest(self.schema, &self.keys, &row));
        self.account(&mut row, digest)?;
        self.pending.push(row);
        self.rows += 1;
        if self.pending.len() >= PUSH_CHUNK {
            self.flush_pending()?;
        }
        Ok(())
    }

    /// Writes a page of rows in order, as [`PartWriter::push`] would one by one: key digests are
    /// computed on every core, and both files encode the page on their own threads.
    pub fn push_all(&mut self, mut rows: Vec<Vec<Cell>>) -> io::Result<()> {
        let digests: Vec<Option<[u8; 16]>> = match self.row_key {
            Some(_) => {
                let (schema, keys) = (self.schema, &self.keys);
                rows.par_iter().map(|row| Some(key_digest(schema, keys, row))).collect()
            }
            None => vec![None; rows.len()],
        };
        for (row, digest) in rows.iter_mut().zip(digests) {
            self.account(row, digest)?;
        }
        self.rows += rows.len() as u64;
        self.flush_pending()?;
        self.send(rows)
    }

    /// Sends the rows [`PartWriter::push`] gathered, if any.
    fn flush_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        self.send(pending)
    }

    fn send(&mut self, rows: Vec<Vec<Cell>>) -> io::Result<()> {
        let rows = Arc::new(rows);
        self.parquet.send(&rows)?;
        self.csv.send(&rows)
    }

    /// Completes both files.
    pub fn finish(mut self) -> io::Result<PartReport> {
        self.flush_pending()?;
        let files = vec![self.parquet.finish()?, self.csv.finish()?];
        Ok(PartReport { files, rows: self.rows, totals: self.totals, month: self.month })
    }

    /// Drops both files (a restarted sequence).
    pub fn abandon(self) {
        drop(self);
    }
}
