//! Unit tests of the parent module.

use super::*;
use crate::sink::part::PartWriter;
use crate::tabular::{Cell, ColType};

/// A row of `schema` with its currency and total columns set, every other cell null (or
/// zero where the column is not nullable).
fn row(schema: &DatasetSchema, currency: Option<&str>, amounts: &[i128]) -> Vec<Cell> {
    let blank = |ty| match ty {
        ColType::Utf8 | ColType::Json => Cell::Str(String::new()),
        ColType::Decimal { .. } => Cell::Dec(0),
        ColType::Int64 => Cell::Int(0),
        ColType::Bool => Cell::Bool(false),
        ColType::Timestamp | ColType::TimestampMicros => Cell::Timestamp(0),
        ColType::Date => Cell::Date(0),
    };
    let mut cells: Vec<Cell> =
        schema.columns.iter().map(|c| if c.nullable { Cell::Null } else { blank(c.ty) }).collect();
    if let (Some(at), Some(c)) = (schema.currency_column.and_then(|c| schema.column(c)), currency) {
        cells[at] = Cell::Str(c.to_owned());
    }
    for (column, &amount) in schema.totals.iter().zip(amounts) {
        if let Some(at) = schema.column(column) {
            cells[at] = Cell::Dec(amount);
        }
    }
    cells
}

#[test]
fn control_totals_read_back_are_the_writers_own() {
    let dir = tempfile::tempdir().unwrap();
    for dataset in [Dataset::Invoices, Dataset::BilledRecon, Dataset::LegacyAzureUsage] {
        let schema = dataset.schema().unwrap();
        let parquet = dir.path().join(format!("{dataset}.parquet"));
        let csv = dir.path().join(format!("{dataset}.csv"));
        let mut writer =
            PartWriter::create(schema, &parquet, Some((&csv, crate::sink::writer::CsvFormat::default()))).unwrap();
        let rows = [
            row(schema, Some("EUR"), &[1050, -25, 7]),
            row(schema, Some("eur"), &[1, 2, 3]),
            row(schema, Some("JPY"), &[-100, 0, 100]),
            row(schema, None, &[5, 5, 5]),
        ];
        let mut sparse = row(schema, Some("EUR"), &[]);
        if let Some(at) = schema.column(schema.totals[0]) {
            sparse[at] = Cell::Dec(9);
        }
        for r in rows.into_iter().chain([sparse]) {
            writer.push(r).unwrap();
        }
        let written = writer.finish().unwrap();
        let columns = TotalColumns::of(schema);
        let mut read = Totals::new();
        let mut count = 0;
        crate::sink::read::for_each_row(&parquet, schema, |r| {
            count += 1;
            columns.add(&r, &mut read).unwrap();
        })
        .unwrap();
        assert_eq!(count, written.rows, "{dataset}");
        assert_eq!(read, written.totals, "{dataset}: the same rule as the writer's");
        assert!(!read.distinct.is_empty(), "{dataset}");
    }
}

#[test]
fn csv_records_are_counted_outside_quotes() {
    let text = b"a,b\r\n\"x\r\ny\",\"say \"\"hi\"\"\"\r\n1,2\r\n";
    let mut lines = Lines::default();
    lines.write_all(text).unwrap();
    assert_eq!(lines.lines, 3, "a header and two records, one with a line end inside quotes");
    // The same text gzipped: its records are counted inside, its bytes hashed as on disk.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text).unwrap();
    let bytes = gz.finish().unwrap();
    std::fs::write(&path, &bytes).unwrap();
    let scan = scan_file(&path).unwrap();
    assert_eq!((scan.lines, scan.bytes), (Some(3), bytes.len() as u64));
    assert_eq!(crate::model::hex(&scan.hasher.finalize()), crate::model::hex(&Sha256::digest(&bytes)));
    std::fs::write(&path, text).unwrap();
    assert_eq!(scan_file(&path).unwrap().lines, None, "not gzip: no records to count");
}

#[test]
fn manifest_paths_outside_the_snapshot_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("snap");
    std::fs::create_dir_all(root.join("invoices")).unwrap();
    std::fs::write(dir.path().join("secret"), "x").unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret"), root.join("invoices/link")).unwrap();
    let real = root.canonicalize().unwrap();
    assert_eq!(outside(&root, &real, "invoices/part-00000.parquet"), None);
    assert!(outside(&root, &real, "../secret").is_some());
    assert!(outside(&root, &real, "invoices/../../secret").is_some());
    assert!(outside(&root, &real, dir.path().join("secret").to_str().unwrap()).is_some());
    assert!(outside(&root, &real, "invoices/link").is_some(), "a link out of the snapshot");
    assert!(outside(&root, &real, "").is_some());
}
