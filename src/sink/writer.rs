//! One output file, Parquet or CSV, written row by row and made visible only by [`Writer::finish`],
//! which renames it into place and reports its rows, bytes and SHA-256 (hashed while writing).
//!
//! Parquet: zstd, `Decimal128(38, s)` checked against its precision, UTC timestamps, dictionary
//! encoding, row groups of 128 Ki rows, and a fixed `created_by`, so the same rows give the same
//! bytes. CSV: RFC 4180 with CRLF, UTF-8 (optional BOM for Excel), fixed-point decimals, ISO-8601
//! dates, and a formula-injection guard on text columns only (amounts keep their minus sign).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Decimal128Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
    TimestampNanosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use sha2::{Digest, Sha256};

use crate::tabular::text::{push_cell_text, push_fixed_point};
use crate::tabular::{Cell, ColType, DatasetSchema};

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

/// The Arrow type of a column.
pub fn data_type(ty: ColType) -> DataType {
    match ty {
        ColType::Utf8 | ColType::Json => DataType::Utf8,
        ColType::Decimal { scale } => DataType::Decimal128(38, i8::try_from(scale).unwrap_or(38)),
        ColType::Int64 => DataType::Int64,
        ColType::Bool => DataType::Boolean,
        ColType::Timestamp => DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
        ColType::TimestampMicros => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ColType::Date => DataType::Date32,
    }
}

/// The Arrow schema of a dataset.
pub fn arrow_schema(schema: &DatasetSchema) -> Arc<Schema> {
    Arc::new(Schema::new(
        schema.columns.iter().map(|c| Field::new(&c.name, data_type(c.ty), c.nullable)).collect::<Vec<_>>(),
    ))
}

enum Builder {
    Utf8(StringBuilder),
    Decimal(Decimal128Builder, u32),
    Int(Int64Builder),
    Bool(BooleanBuilder),
    Nanos(TimestampNanosecondBuilder),
    Micros(TimestampMicrosecondBuilder),
    Date(Date32Builder),
}

impl Builder {
    fn new(ty: ColType) -> Builder {
        match ty {
            ColType::Utf8 | ColType::Json => Builder::Utf8(StringBuilder::new()),
            ColType::Decimal { scale } => Builder::Decimal(Decimal128Builder::new(), scale),
            ColType::Int64 => Builder::Int(Int64Builder::new()),
            ColType::Bool => Builder::Bool(BooleanBuilder::new()),
            ColType::Timestamp => Builder::Nanos(TimestampNanosecondBuilder::new()),
            ColType::TimestampMicros => Builder::Micros(TimestampMicrosecondBuilder::new()),
            ColType::Date => Builder::Date(Date32Builder::new()),
        }
    }

    fn append(&mut self, cell: &Cell) {
        match (self, cell) {
            (Builder::Utf8(b), Cell::Str(s)) => b.append_value(s),
            (Builder::Decimal(b, _), Cell::Dec(v)) => b.append_value(*v),
            (Builder::Int(b), Cell::Int(v)) => b.append_value(*v),
            (Builder::Bool(b), Cell::Bool(v)) => b.append_value(*v),
            (Builder::Nanos(b), Cell::Timestamp(v)) => b.append_value(*v),
            (Builder::Micros(b), Cell::Timestamp(v)) => b.append_value(*v),
            (Builder::Date(b), Cell::Date(v)) => b.append_value(*v),
            (Builder::Utf8(b), _) => b.append_null(),
            (Builder::Decimal(b, _), _) => b.append_null(),
            (Builder::Int(b), _) => b.append_null(),
            (Builder::Bool(b), _) => b.append_null(),
            (Builder::Nanos(b), _) => b.append_null(),
            (Builder::Micros(b), _) => b.append_null(),
            (Builder::Date(b), _) => b.append_null(),
        }
    }

    fn finish(&mut self) -> io::Result<ArrayRef> {
        let array: ArrayRef = match self {
            Builder::Utf8(b) => Arc::new(b.finish()),
            Builder::Decimal(b, scale) => {
                let array = b
                    .finish()
                    .with_precision_and_scale(38, i8::try_from(*scale).unwrap_or(38))
                    .map_err(io::Error::other)?;
                // arrow does not check values against the declared precision by itself.
                array.validate_decimal_precision(38).map_err(io::Error::other)?;
                Arc::new(array)
            }
            Builder::Int(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Nanos(b) => Arc::new(b.finish().with_timezone("UTC")),
            Builder::Micros(b) => Arc::new(b.finish().with_timezone("UTC")),
            Builder::Date(b) => Arc::new(b.finish()),
        };
        Ok(array)
    }
}

/// Rows per record batch handed to the Parquet writer.
const BATCH_ROWS: usize = 8192;

/// A Parquet file being written.
pub struct ParquetFile {
    path: PathBuf,
    schema: Arc<Schema>,
    builders: Vec<Builder>,
    pending: usize,
    rows: u64,
    writer: ArrowWriter<Hashing<BufWriter<File>>>,
}

impl ParquetFile {
    fn flush_batch(&mut self) -> io::Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        let arrays = self.builders.iter_mut().map(Builder::finish).collect::<io::Result<Vec<_>>>()?;
        let batch = RecordBatch::try_new(self.schema.clone(), arrays).map_err(io::Error::other)?;
        self.writer.write(&batch).map_err(io::Error::other)?;
        self.pending = 0;
        Ok(())
    }
}

/// A CSV file being written.
pub struct CsvFile {
    path: PathBuf,
    types: Vec<ColType>,
    out: Hashing<BufWriter<File>>,
    rows: u64,
    line: String,
}

/// Guards a text cell against spreadsheet formula injection: a leading `=`, `+`, `-`, `@`, tab
/// or carriage return gets a `'` in front (OWASP), so Excel shows it as text.
pub fn guard_formula(text: &str) -> std::borrow::Cow<'_, str> {
    match text.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => std::borrow::Cow::Owned(format!("'{text}")),
        _ => std::borrow::Cow::Borrowed(text),
    }
}

/// Appends a CSV field, quoted when RFC 4180 needs it.
fn push_field(line: &mut String, text: &str) {
    let special = text.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'));
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

impl Writer {
    /// Starts a Parquet file for a dataset's rows.
    pub fn parquet(path: &Path, schema: &DatasetSchema) -> io::Result<Writer> {
        let arrow = arrow_schema(schema);
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).map_err(io::Error::other)?))
            .set_max_row_group_row_count(Some(128 * 1024))
            .set_dictionary_page_size_limit(256 * 1024)
            .set_created_by(concat!("pcrecon ", env!("CARGO_PKG_VERSION")).to_owned())
            .build();
        let writer = ArrowWriter::try_new(open(path)?, arrow.clone(), Some(props)).map_err(io::Error::other)?;
        Ok(Writer::Parquet(Box::new(ParquetFile {
            path: path.to_path_buf(),
            builders: schema.columns.iter().map(|c| Builder::new(c.ty)).collect(),
            schema: arrow,
            pending: 0,
            rows: 0,
            writer,
        })))
    }

    /// Starts a CSV file with its header row.
    pub fn csv(path: &Path, schema: &DatasetSchema, bom: bool) -> io::Result<Writer> {
        let mut out = open(path)?;
        if bom {
            out.write_all("\u{feff}".as_bytes())?;
        }
        let mut line = String::new();
        for (i, c) in schema.columns.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            push_field(&mut line, &c.name);
        }
        line.push_str("\r\n");
        out.write_all(line.as_bytes())?;
        Ok(Writer::Csv(Box::new(CsvFile {
            path: path.to_path_buf(),
            types: schema.columns.iter().map(|c| c.ty).collect(),
            out,
            rows: 0,
            line: String::with_capacity(4096),
        })))
    }

    /// Appends one row (cells in schema order).
    pub fn push(&mut self, row: &[Cell]) -> io::Result<()> {
        match self {
            Writer::Parquet(p) => {
                for (builder, cell) in p.builders.iter_mut().zip(row) {
                    builder.append(cell);
                }
                p.pending += 1;
                p.rows += 1;
                if p.pending >= BATCH_ROWS {
                    p.flush_batch()?;
                }
                Ok(())
            }
            Writer::Csv(c) => {
                c.line.clear();
                for (i, (cell, ty)) in row.iter().zip(&c.types).enumerate() {
                    if i > 0 {
                        c.line.push(',');
                    }
                    match (cell, ty) {
                        // Digits, sign and point never need quoting.
                        (Cell::Dec(v), ColType::Decimal { scale }) => push_fixed_point(&mut c.line, *v, *scale),
                        (Cell::Str(text), ColType::Utf8 | ColType::Json) => {
                            push_field(&mut c.line, &guard_formula(text))
                        }
                        // Numbers, dates and timestamps never need quoting either.
                        (Cell::Str(text), _) => push_field(&mut c.line, text),
                        _ => push_cell_text(&mut c.line, cell, *ty),
                    }
                }
                c.line.push_str("\r\n");
                c.rows += 1;
                c.out.write_all(c.line.as_bytes())
            }
        }
    }

    /// Completes the file, syncs it, and renames it into place.
    pub fn finish(self) -> io::Result<FileReport> {
        match self {
            Writer::Parquet(mut p) => {
                p.flush_batch()?;
                let rows = p.rows;
                let out = p.writer.into_inner().map_err(io::Error::other)?;
                close(out, &p.path, rows)
            }
            Writer::Csv(c) => {
                let CsvFile { path, out, rows, .. } = *c;
                close(out, &path, rows)
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

    #[test]
    fn csv_fields_are_quoted_as_rfc_4180_says_and_formulas_are_defused() {
        let mut line = String::new();
        push_field(&mut line, "a,b \"c\"");
        assert_eq!(line, "\"a,b \"\"c\"\"\"");
        assert_eq!(guard_formula("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(guard_formula("-2+3"), "'-2+3");
        assert_eq!(guard_formula("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(guard_formula("Contoso"), "Contoso");
    }

    #[test]
    fn csv_files_guard_text_but_keep_amounts_signed() {
        use crate::tabular::{Column, Partition, Source};
        let column = |name: &str, ty| Column { name: name.into(), source: Source::Field(vec![]), ty, nullable: true };
        let schema = DatasetSchema {
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
                column("amount", ColType::Decimal { scale: 2 }),
                column("day", ColType::Date),
            ],
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        let mut w = Writer::csv(&path, &schema, true).unwrap();
        w.push(&[Cell::Str("=cmd|' /C calc'!A0".into()), Cell::Dec(-2647), Cell::Date(20089)]).unwrap();
        w.push(&[Cell::Str("Müller, \"Logistik\"".into()), Cell::Null, Cell::Null]).unwrap();
        let report = w.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "\u{feff}name,amount,day\r\n'=cmd|' /C calc'!A0,-26.47,2025-01-01\r\n\"Müller, \"\"Logistik\"\"\",,\r\n"
        );
        assert_eq!(report.rows, 2);
        assert_eq!(report.bytes, text.len() as u64);
        assert!(!dir.path().join("t.csv.partial").exists());
    }
}
