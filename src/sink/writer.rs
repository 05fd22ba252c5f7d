//! One output file, Parquet or CSV, written batch by batch and made visible only by
//! [`Writer::finish`], which renames it into place and reports its rows, bytes and SHA-256
//! (hashed while writing).
//!
//! Parquet: zstd, `Decimal128(38, s)`, UTC timestamps, dictionary encoding, row groups of 128 Ki
//! rows, and a fixed `created_by`; batches reach the encoder re-cut into [`BATCH_ROWS`] rows,
//! so the same rows give the same bytes however the pages that brought them were cut. CSV: RFC 4180 with CRLF, UTF-8 (optional BOM for Excel), fixed-point decimals, ISO-8601
//! dates, and a formula-injection guard on free-text columns only (names, descriptions, tags,
//! JSON texts: never identifiers, amounts or dates); the delimiter and decimal separator are
//! chosen by [`CsvFormat`], which may also gzip the file (`.csv.gz`, deterministic: no name or
//! time in the gzip header), the SHA-256 being then that of the compressed bytes on disk.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use sha2::{Digest, Sha256};

use crate::tabular::batch::{Columns, arrow_schema};
use crate::tabular::text::{push_fixed_point, push_value_text};
use crate::tabular::{ColType, DatasetSchema, Value};

/// What a finished file is.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FileReport {
    /// Path relative to the snapshot root (set by the caller).
    pub path: String,
    /// Data rows.
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file, lower-case hex.
    pub sha256: String,
}

/// Counts and hashes what passes through.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn partial(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".partial");
    path.with_file_name(name)
}

fn open(path: &Path) -> io::Result<Hashing<BufWriter<File>>> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let file = File::create(partial(path))?;
    Ok(Hashing { inner: BufWriter::with_capacity(1 << 20, file), hasher: Sha256::new(), bytes: 0 })
}

fn close(out: Hashing<BufWriter<File>>, path: &Path, rows: u64) -> io::Result<FileReport> {
    let Hashing { inner, hasher, bytes } = out;
    let file = inner.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    std::fs::rename(partial(path), path)?;
    Ok(FileReport {
        path: path.to_string_lossy().into_owned(),
        rows,
        bytes,
        sha256: crate::model::hex(&hasher.finalize()),
    })
}

/// Rows per record batch handed to the Parquet encoder: the encoder cuts its pages by what it is
/// handed, so every file is handed the same cut.
pub const BATCH_ROWS: usize = 8192;

/// A Parquet file being written.
pub struct ParquetFile {
    path: PathBuf,
    /// Batches not yet handed to the encoder, fewer than [`BATCH_ROWS`] rows in all.
    pending: VecDeque<RecordBatch>,
    pending_rows: usize,
    rows: u64,
    writer: ArrowWriter<Hashing<BufWriter<File>>>,
}

impl ParquetFile {
    /// Hands the encoder `rows` rows from the front of the pending batches.
    fn encode(&mut self, rows: usize) -> io::Result<()> {
        let mut parts = Vec::new();
        let mut needed = rows;
        while needed > 0 {
            let Some(front) = self.pending.pop_front() else { break };
            if front.num_rows() <= needed {
                needed -= front.num_rows();
                parts.push(front);
            } else {
                parts.push(front.slice(0, needed));
                // A copy of the rest: a slice would keep the whole batch it came from alive.
                let rest = front.slice(needed, front.num_rows() - needed);
                let rest = arrow_select::concat::concat_batches(&rest.schema(), [&rest]).map_err(io::Error::other)?;
                self.pending.push_front(rest);
                needed = 0;
            }
        }
        self.pending_rows -= rows - needed;
        let batch = match parts.len() {
            0 => return Ok(()),
            1 => parts.remove(0),
            _ => arrow_select::concat::concat_batches(&parts[0].schema(), &parts).map_err(io::Error::other)?,
        };
        self.writer.write(&batch).map_err(io::Error::other)
    }
}

/// A CSV file being written.
pub struct CsvFile {
    path: PathBuf,
    types: Vec<ColType>,
    /// Per column, whether it is free text (formula-guarded).
    free_text: Vec<bool>,
    format: CsvFormat,
    out: CsvOut,
    rows: u64,
    text: String,
}

/// How CSV files are written: RFC 4180 with `,` and `.` by default; `;` and `,` (or a tab) for
/// spreadsheets of locales that write decimals with a comma.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvFormat {
    /// Start with a UTF-8 byte-order mark (Excel).
    pub bom: bool,
    /// Between fields: `,`, `;`, tab or `|`.
    pub delimiter: char,
    /// Between a decimal's whole and fractional digits: `.` or `,` (never the delimiter).
    pub decimal_separator: char,
    /// Whether the file is gzip-compressed (`.csv.gz`).
    pub compression: CsvCompression,
}

/// Whether CSV files are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CsvCompression {
    /// Plain text (`.csv`).
    #[default]
    None,
    /// gzip (`.csv.gz`), which DuckDB, Spark, pandas and Power Query read as they are.
    Gzip,
}

impl CsvCompression {
    /// The file name extension of a CSV file so compressed.
    pub fn extension(self) -> &'static str {
        match self {
            CsvCompression::None => "csv",
            CsvCompression::Gzip => "csv.gz",
        }
    }
}

impl Default for CsvFormat {
    fn default() -> CsvFormat {
        CsvFormat { bom: false, delimiter: ',', decimal_separator: '.', compression: CsvCompression::None }
    }
}

/// Where a CSV file's text goes: to the file, or through gzip to it; hashed as written to disk.
enum CsvOut {
    Plain(Hashing<BufWriter<File>>),
    Gzip(Box<flate2::write::GzEncoder<Hashing<BufWriter<File>>>>),
}

impl CsvOut {
    fn new(out: Hashing<BufWriter<File>>, compression: CsvCompression) -> CsvOut {
        match compression {
            CsvCompression::None => CsvOut::Plain(out),
            // The builder's header has no file name and a zero time: the same rows, the same bytes.
            CsvCompression::Gzip => {
                CsvOut::Gzip(Box::new(flate2::GzBuilder::new().write(out, flate2::Compression::new(GZIP_LEVEL))))
            }
        }
    }

    fn finish(self) -> io::Result<Hashing<BufWriter<File>>> {
        match self {
            CsvOut::Plain(out) => Ok(out),
            CsvOut::Gzip(gz) => gz.finish(),
        }
    }
}

impl Write for CsvOut {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            CsvOut::Plain(out) => out.write(buf),
            CsvOut::Gzip(gz) => gz.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            CsvOut::Plain(out) => out.flush(),
            CsvOut::Gzip(gz) => gz.flush(),
        }
    }
}

/// The gzip level of compressed CSV: zlib's default, most of the gain of level 9 at a third of
/// its time.
const GZIP_LEVEL: u32 = 6;

/// Guards a text cell against spreadsheet formula injection: a leading `=`, `+`, `-`, `@`, tab
/// or carriage return gets a `'` in front (OWASP), so Excel shows it as text.
pub fn guard_formula(text: &str) -> std::borrow::Cow<'_, str> {
    match text.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => std::borrow::Cow::Owned(format!("'{text}")),
        _ => std::borrow::Cow::Borrowed(text),
    }
}

/// Appends a CSV field, quoted when RFC 4180 needs it (with `delimiter` for its comma).
fn push_field(line: &mut String, text: &str, delimiter: char) {
    let special = text.chars().any(|c| c == delimiter || matches!(c, '"' | '\n' | '\r'));
    if special || text.starts_with(' ') || text.ends_with(' ') {
        line.push('"');
        line.push_str(&text.replace('"', "\"\""));
        line.push('"');
    } else {
        line.push_str(text);
    }
}

/// An output file of either format.
pub enum Writer {
    /// Parquet.
    Parquet(Box<ParquetFile>),
    /// CSV.
    Csv(Box<CsvFile>),
}

/// How every Parquet file pcrecon writes is encoded: zstd, row groups of 128 Ki rows.
pub fn parquet_properties() -> io::Result<WriterProperties> {
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).map_err(io::Error::other)?))
        .set_max_row_group_row_count(Some(128 * 1024))
        .set_dictionary_page_size_limit(256 * 1024)
        .set_created_by(concat!("pcrecon ", env!("CARGO_PKG_VERSION")).to_owned())
        .build())
}

impl Writer {
    /// Starts a Parquet file for a dataset's rows.
    pub fn parquet(path: &Path, schema: &DatasetSchema) -> io::Result<Writer> {
        let arrow = arrow_schema(schema);
        let writer = ArrowWriter::try_new(open(path)?, arrow, Some(parquet_properties()?)).map_err(io::Error::other)?;
        Ok(Writer::Parquet(Box::new(ParquetFile {
            path: path.to_path_buf(),
            pending: VecDeque::new(),
            pending_rows: 0,
            rows: 0,
            writer,
        })))
    }

    /// Starts a CSV file with its header row.
    pub fn csv(path: &Path, schema: &DatasetSchema, format: CsvFormat) -> io::Result<Writer> {
        let mut out = CsvOut::new(open(path)?, format.compression);
        if format.bom {
            out.write_all("\u{feff}".as_bytes())?;
        }
        let mut line = String::new();
        for (i, c) in schema.columns.iter().enumerate() {
            if i > 0 {
                line.push(format.delimiter);
            }
            push_field(&mut line, &c.name, format.delimiter);
        }
        line.push_str("\r\n");
        out.write_all(line.as_bytes())?;
        Ok(Writer::Csv(Box::new(CsvFile {
            path: path.to_path_buf(),
            types: schema.columns.iter().map(|c| c.ty).collect(),
            free_text: schema.columns.iter().map(crate::tabular::Column::is_free_text).collect(),
            format,
            out,
            rows: 0,
            text: String::with_capacity(1 << 16),
        })))
    }

    /// Appends a batch of the dataset's rows (columns in schema order).
    pub fn write(&mut self, batch: &RecordBatch) -> io::Result<()> {
        match self {
            Writer::Parquet(p) => {
                if batch.num_rows() == 0 {
                    return Ok(());
                }
                p.rows += batch.num_rows() as u64;
                p.pending_rows += batch.num_rows();
                p.pending.push_back(batch.clone());
                while p.pending_rows >= BATCH_ROWS {
                    p.encode(BATCH_ROWS)?;
                }
                Ok(())
            }
            Writer::Csv(c) => {
                let columns = Columns::of(batch);
                for row in 0..batch.num_rows() {
                    let CsvFormat { delimiter, decimal_separator, .. } = c.format;
                    for (i, ty) in c.types.iter().enumerate() {
                        if i > 0 {
                            c.text.push(delimiter);
                        }
                        match (columns.value(i, row), ty) {
                            // Digits, sign and separator never need quoting (the separator is
                            // never the delimiter).
                            (Value::Dec(v), ColType::Decimal { scale, .. }) => {
                                let start = c.text.len();
                                push_fixed_point(&mut c.text, v, *scale);
                                if decimal_separator != '.'
                                    && let Some(at) = c.text[start..].find('.')
                                {
                                    c.text.replace_range(
                                        start + at..start + at + 1,
                                        decimal_separator.encode_utf8(&mut [0; 4]),
                                    );
                                }
                            }
                            (Value::Str(text), _) if c.free_text[i] => {
                                push_field(&mut c.text, &guard_formula(&text), delimiter)
                            }
                            (Value::Str(text), _) => push_field(&mut c.text, &text, delimiter),
                            // Numbers, dates and timestamps never need quoting either.
                            (value, ty) => push_value_text(&mut c.text, &value, *ty),
                        }
                    }
                    c.text.push_str("\r\n");
                    if c.text.len() >= 1 << 16 {
                        c.out.write_all(c.text.as_bytes())?;
                        c.text.clear();
                    }
                }
                c.rows += batch.num_rows() as u64;
                c.out.write_all(c.text.as_bytes())?;
                c.text.clear();
                Ok(())
            }
        }
    }

    /// Completes the file, syncs it, and renames it into place.
    pub fn finish(self) -> io::Result<FileReport> {
        match self {
            Writer::Parquet(mut p) => {
                p.encode(p.pending_rows)?;
                let rows = p.rows;
                let out = p.writer.into_inner().map_err(io::Error::other)?;
                close(out, &p.path, rows)
            }
            Writer::Csv(c) => {
                let CsvFile { path, out, rows, .. } = *c;
                close(out.finish()?, &path, rows)
            }
        }
    }

    /// Abandons the file (its partial file is removed).
    pub fn abandon(self) {
        let path = match &self {
            Writer::Parquet(p) => p.path.clone(),
            Writer::Csv(c) => c.path.clone(),
        };
        drop(self);
        let _ = std::fs::remove_file(partial(&path));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tabular::Cell;

    #[test]
    fn csv_fields_are_quoted_as_rfc_4180_says_and_formulas_are_defused() {
        let mut line = String::new();
        push_field(&mut line, "a,b \"c\"", ',');
        assert_eq!(line, "\"a,b \"\"c\"\"\"");
        assert_eq!(guard_formula("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(guard_formula("-2+3"), "'-2+3");
        assert_eq!(guard_formula("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(guard_formula("Contoso"), "Contoso");
    }

    #[test]
    fn csv_files_guard_text_but_keep_amounts_signed() {
        let schema = test_schema();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        let mut w = Writer::csv(&path, &schema, CsvFormat { bom: true, ..CsvFormat::default() }).unwrap();
        let mut rows = crate::tabular::batch::BatchBuilder::new(&schema, 2);
        rows.push_cells(&[
            Cell::Str("=cmd|' /C calc'!A0".into()),
            Cell::Str("-7f3a".into()),
            Cell::Dec(-2647),
            Cell::Date(20089),
        ]);
        rows.push_cells(&[Cell::Str("Müller, \"Logistik\"".into()), Cell::Str("+1".into()), Cell::Null, Cell::Null]);
        w.write(&rows.finish().unwrap()).unwrap();
        let report = w.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "\u{feff}name,order_id,amount,day\r\n'=cmd|' /C calc'!A0,-7f3a,-26.47,2025-01-01\r\n\"Müller, \"\"Logistik\"\"\",+1,,\r\n",
            "a name is guarded, an identifier is written as it is"
        );
        assert_eq!(report.rows, 2);
        assert_eq!(report.bytes, text.len() as u64);
        assert!(!dir.path().join("t.csv.partial").exists());
    }

    #[test]
    fn csv_for_a_locale_that_writes_decimal_commas_uses_semicolons() {
        let schema = test_schema();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        let format = CsvFormat { delimiter: ';', decimal_separator: ',', ..CsvFormat::default() };
        let mut w = Writer::csv(&path, &schema, format).unwrap();
        let mut rows = crate::tabular::batch::BatchBuilder::new(&schema, 1);
        rows.push_cells(&[
            Cell::Str("Café; Niño".into()),
            Cell::Str("o,1".into()),
            Cell::Dec(-2647),
            Cell::Date(20089),
        ]);
        w.write(&rows.finish().unwrap()).unwrap();
        w.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "name;order_id;amount;day\r\n\"Café; Niño\";o,1;-26,47;2025-01-01\r\n");
    }

    #[test]
    fn gzip_csv_holds_the_plain_text_and_the_same_rows_give_the_same_bytes() {
        let schema = test_schema();
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, compression| {
            let path = dir.path().join(name);
            let mut w = Writer::csv(&path, &schema, CsvFormat { compression, ..CsvFormat::default() }).unwrap();
            let mut rows = crate::tabular::batch::BatchBuilder::new(&schema, 1);
            rows.push_cells(&[
                Cell::Str("Contoso".into()),
                Cell::Str("o-1".into()),
                Cell::Dec(-2647),
                Cell::Date(20089),
            ]);
            w.write(&rows.finish().unwrap()).unwrap();
            (w.finish().unwrap(), std::fs::read(&path).unwrap())
        };
        let (plain, text) = write("t.csv", CsvCompression::None);
        let (gzip, bytes) = write("t.csv.gz", CsvCompression::Gzip);
        let (again, same) = write("u.csv.gz", CsvCompression::Gzip);
        let mut inflated = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut inflated).unwrap();
        assert_eq!(inflated, text);
        assert_eq!((gzip.rows, gzip.bytes), (plain.rows, bytes.len() as u64), "bytes are those on disk");
        assert_eq!((bytes, &gzip.sha256), (same, &again.sha256), "no name or time in the header");
        assert_eq!(
            gzip.sha256,
            crate::model::hex(&Sha256::digest(std::fs::read(dir.path().join("t.csv.gz")).unwrap()))
        );
    }

    /// A schema of a free-text name, an identifier, an amount and a date.
    fn test_schema() -> DatasetSchema {
        use crate::tabular::{Column, Partition, Source};
        let column = |name: &str, ty| Column { name: name.into(), source: Source::Field(vec![]), ty, nullable: true };
        DatasetSchema {
            // Any dataset: only the columns matter here.
            name: crate::tabular::Dataset::Rejects,
            version: 1,
            description: "",
            grain: "",
            api: "",
            keys: vec![],
            partition: Partition::None,
            currency_column: None,
            totals: vec![],
            explode: None,
            fx: None,
            built_from: "",
            columns: vec![
                column("name", ColType::Utf8),
                column("order_id", ColType::Utf8),
                column("amount", ColType::decimal(2)),
                column("day", ColType::Date),
            ],
        }
    }

    #[test]
    fn parquet_bytes_do_not_depend_on_how_the_rows_were_cut_into_batches() {
        use crate::tabular::batch::BatchBuilder;
        use crate::tabular::{Cell, Dataset};
        let schema = Dataset::Rejects.schema().unwrap();
        let rows: Vec<Vec<Cell>> = (0..20_000i64)
            .map(|n| {
                schema
                    .columns
                    .iter()
                    .map(|c| match c.ty {
                        ColType::Int64 => Cell::Int(n % 97),
                        _ => Cell::Str(format!("{}-{}", c.name, n % 1013)),
                    })
                    .collect()
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, cuts: &[usize]| {
            let path = dir.path().join(name);
            let mut writer = Writer::parquet(&path, schema).unwrap();
            let mut start = 0;
            for &end in cuts.iter().chain([&rows.len()]) {
                let mut batch = BatchBuilder::new(schema, end - start);
                rows[start..end].iter().for_each(|row| batch.push_cells(row));
                writer.write(&batch.finish().unwrap()).unwrap();
                start = end;
            }
            writer.finish().unwrap();
            std::fs::read(path).unwrap()
        };
        let whole = write("whole.parquet", &[]);
        assert_eq!(whole, write("cut.parquet", &[1, 300, 8191, 8192, 16_385]));
        assert_eq!(whole, write("pages.parquet", &(1..20).map(|k| k * 1000).collect::<Vec<_>>()));
    }
}
