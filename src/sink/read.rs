//! Reads published Parquet back into rows of [`Cell`]s, by the dataset's schema: the inverse of
//! the writer, for auditors' commands.

use std::fs::File;
use std::io;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Decimal128Type, Int64Type, TimestampMicrosecondType, TimestampNanosecondType};
use arrow_array::{Array, ArrayRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::tabular::{Cell, ColType, DatasetSchema};

fn cell(array: &ArrayRef, ty: ColType, row: usize) -> Cell {
    if array.is_null(row) {
        return Cell::Null;
    }
    match ty {
        ColType::Utf8 | ColType::Json => Cell::Str(array.as_string::<i32>().value(row).to_owned()),
        ColType::Decimal { .. } => Cell::Dec(array.as_primitive::<Decimal128Type>().value(row)),
        ColType::Int64 => Cell::Int(array.as_primitive::<Int64Type>().value(row)),
        ColType::Bool => Cell::Bool(array.as_boolean().value(row)),
        ColType::Timestamp => Cell::Timestamp(array.as_primitive::<TimestampNanosecondType>().value(row)),
        ColType::TimestampMicros => Cell::Timestamp(array.as_primitive::<TimestampMicrosecondType>().value(row)),
        ColType::Date => Cell::Date(array.as_primitive::<Date32Type>().value(row)),
    }
}

/// Calls `each` with every row of a Parquet file written for `schema`, in file order. A file
/// whose columns are not the schema's is an error.
pub fn for_each_row(path: &Path, schema: &DatasetSchema, mut each: impl FnMut(Vec<Cell>)) -> io::Result<()> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {what}", path.display()));
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path)?)
        .map_err(|e| bad(e.to_string()))?
        .with_batch_size(8192)
        .build()
        .map_err(|e| bad(e.to_string()))?;
    for batch in reader {
        let batch = batch.map_err(|e| bad(e.to_string()))?;
        let expected = crate::tabular::batch::arrow_schema(schema);
        if batch.schema().fields() != expected.fields() {
            return Err(bad(format!(
                "its columns are not those of dataset {} version {}",
                schema.name, schema.version
            )));
        }
        for row in 0..batch.num_rows() {
            each(schema.columns.iter().zip(batch.columns()).map(|(c, a)| cell(a, c.ty, row)).collect());
        }
    }
    Ok(())
}
