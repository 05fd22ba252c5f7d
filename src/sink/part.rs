//! The rows of one dataset for one file pair (Parquet, and CSV unless it is left out), held to the published schema: it
//! keeps the control totals per currency and the billing month its rows belong to.
//!
//! Each file is encoded on its own thread (a lane), behind the caller: the caller hands over
//! a page's batch and goes on with the next page while both files encode it. A lane holds at
//! most [`LANE_PAGES`] batches, so memory stays bounded however many rows the file gets.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use arrow_array::RecordBatch;

use super::totals::TotalColumns;
use super::writer::{CsvFormat, FileReport, Writer};
use crate::tabular::batch::{BatchBuilder, Columns, arrow_schema};
use crate::tabular::text::value_text;
use crate::tabular::{Cell, ColType, DatasetSchema, Partition, Value};

/// Σ per currency of each total column, as unscaled Decimal128 values.
pub use super::totals::Totals;

/// A finished file pair.
#[derive(Debug, Clone)]
pub struct PartReport {
    /// The Parquet file, then the CSV file if written.
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

/// What a lane is told.
enum LaneJob {
    /// Encode these rows.
    Rows(RecordBatch),
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
    fn send(&mut self, rows: &RecordBatch) -> io::Result<()> {
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
                if let Err(e) = writer.write(&rows) {
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

/// Writes rows of one dataset to a Parquet file and, unless CSV is left out, a CSV file.
pub struct PartWriter<'s> {
    schema: &'s DatasetSchema,
    parquet: Lane,
    csv: Option<Lane>,
    pending: BatchBuilder,
    arrow: std::sync::Arc<arrow_schema::Schema>,
    total_columns: TotalColumns,
    totals: Totals,
    month_at: Option<usize>,
    month: Option<String>,
    rows: u64,
}

/// `YYYY-MM` of a date or timestamp value.
pub fn month_of(value: &Value<'_>, ty: ColType) -> Option<String> {
    let text = value_text(value, ty);
    text.get(..7).filter(|m| m.len() == 7).map(str::to_owned)
}

impl<'s> PartWriter<'s> {
    /// Opens `parquet`, and `csv` in its format when given, for a dataset's rows.
    pub fn create(
        schema: &'s DatasetSchema,
        parquet: &Path,
        csv: Option<(&Path, CsvFormat)>,
    ) -> io::Result<PartWriter<'s>> {
        let index = |name: &str| schema.column(name);
        let month_column = match schema.partition {
            Partition::RowMonth(c) | Partition::ScopeMonth(c) => index(c),
            Partition::None | Partition::Invoice => None,
        };
        Ok(PartWriter {
            schema,
            parquet: Lane::spawn(Writer::parquet(parquet, schema)?, parquet)?,
            csv: csv.map(|(path, format)| Lane::spawn(Writer::csv(path, schema, format)?, path)).transpose()?,
            pending: BatchBuilder::new(schema, 0),
            arrow: arrow_schema(schema),
            total_columns: TotalColumns::of(schema),
            totals: Totals::new(),
            month_at: month_column,
            month: None,
            rows: 0,
        })
    }

    /// Writes one row; rows are sent on in batches.
    pub fn push(&mut self, row: Vec<Cell>) -> io::Result<()> {
        self.pending.push_cells(&row);
        if self.pending.len() >= PUSH_CHUNK {
            self.flush_pending()?;
        }
        Ok(())
    }

    /// Writes a batch of rows after those already pushed, while both files encode it on their
    /// own threads.
    pub fn push_batch(&mut self, batch: RecordBatch) -> io::Result<()> {
        self.flush_pending()?;
        self.account(batch)
    }

    /// Sends the rows [`PartWriter::push`] gathered, if any.
    fn flush_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = self.pending.finish().map_err(io::Error::other)?;
        self.account(batch)
    }

    /// Keeps the month and the control totals, and sends the batch to the lanes.
    fn account(&mut self, batch: RecordBatch) -> io::Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let columns = Columns::of(&batch);
        if let (None, Some(i)) = (&self.month, self.month_at) {
            let ty = self.schema.columns[i].ty;
            self.month = (0..columns.rows()).find_map(|r| month_of(&columns.value(i, r), ty));
        }
        for r in 0..columns.rows() {
            self.total_columns.add(&columns.row(r), &mut self.totals).map_err(io::Error::other)?;
        }
        self.rows += batch.num_rows() as u64;
        // Held to the published schema: a required column left empty is an error here.
        let batch = RecordBatch::try_new(self.arrow.clone(), batch.columns().to_vec()).map_err(io::Error::other)?;
        self.parquet.send(&batch)?;
        match &mut self.csv {
            Some(csv) => csv.send(&batch),
            None => Ok(()),
        }
    }

    /// Completes both files.
    pub fn finish(mut self) -> io::Result<PartReport> {
        self.flush_pending()?;
        let mut files = vec![self.parquet.finish()?];
        if let Some(csv) = self.csv.take() {
            files.push(csv.finish()?);
        }
        Ok(PartReport { files, rows: self.rows, totals: self.totals, month: self.month })
    }

    /// Drops both files (a restarted sequence).
    pub fn abandon(self) {
        drop(self);
    }
}
