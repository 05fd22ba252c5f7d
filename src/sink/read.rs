//! Reads published Parquet back into rows of [`Cell`]s, by the dataset's schema: the inverse of
//! the writer, for auditors' commands.

use std::fs::File;
use std::io;
use std::path::Path;

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::tabular::batch::rows_of;
use crate::tabular::{Cell, DatasetSchema};

/// Calls `each` with every row of a Parquet file written for `schema`, in file order. A file
/// whose columns are not the schema's is an error.
pub fn for_each_row(path: &Path, schema: &DatasetSchema, mut each: impl FnMut(Vec<Cell>)) -> io::Result<()> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {what}", path.display()));
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path)?)
        .map_err(|e| bad(e.to_string()))?
        .with_batch_size(8192)
        .build()
        .map_err(|e| bad(e.to_string()))?;
    let expected = crate::tabular::batch::arrow_schema(schema);
    for batch in reader {
        let batch = batch.map_err(|e| bad(e.to_string()))?;
        if batch.schema().fields() != expected.fields() {
            return Err(bad(format!(
                "its columns are not those of dataset {} version {}",
                schema.name, schema.version
            )));
        }
        rows_of(&batch).into_iter().for_each(&mut each);
    }
    Ok(())
}
