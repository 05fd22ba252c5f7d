//! The table vocabulary in Arrow: a column type's Arrow type, a dataset's Arrow schema, builders
//! that append [`Value`]s into arrays and record batches, and typed views that read a batch's
//! values back without copying them.
//!
//! In: a dataset's schema, values, or a record batch. Out: arrays, batches and borrowed values.
//! It decodes no wire value (that is `normalize`) and writes no file (that is `sink`).

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Decimal128Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
    TimestampNanosecondBuilder,
};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Date32Array, Decimal128Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, TimestampNanosecondArray,
};
use arrow_schema::{ArrowError, DataType, Field, Schema, TimeUnit};

use super::column::{Cell, ColType, DatasetSchema, Row, Value};

/// The Arrow type of a column type: decimals are `Decimal128(38, scale)`, instants UTC.
pub fn data_type(ty: ColType) -> DataType {
    match ty {
        ColType::Utf8 | ColType::Json => DataType::Utf8,
        ColType::Decimal { scale, .. } => DataType::Decimal128(38, decimal_scale(scale)),
        ColType::Int64 => DataType::Int64,
        ColType::Bool => DataType::Boolean,
        ColType::Timestamp => DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
        ColType::TimestampMicros => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ColType::Date => DataType::Date32,
    }
}

fn decimal_scale(scale: u32) -> i8 {
    i8::try_from(scale).unwrap_or(38)
}

/// The Arrow schema of a dataset: its columns in order, with their nullability.
pub fn arrow_schema(schema: &DatasetSchema) -> Arc<Schema> {
    Arc::new(Schema::new(
        schema.columns.iter().map(|c| Field::new(&c.name, data_type(c.ty), c.nullable)).collect::<Vec<_>>(),
    ))
}

/// The Arrow schema of a dataset's batches between the stages: every column nullable, since the
/// columns the stages derive (`row_key`, FX, match) are empty until they are filled. The sink
/// holds each batch to [`arrow_schema()`] before it writes it.
pub fn stage_schema(schema: &DatasetSchema) -> Arc<Schema> {
    Arc::new(Schema::new(schema.columns.iter().map(|c| Field::new(&c.name, data_type(c.ty), true)).collect::<Vec<_>>()))
}

/// Appends the values of one column into its Arrow array.
pub enum ColumnBuilder {
    /// Text and JSON text.
    Utf8(StringBuilder),
    /// Decimal128(38, scale).
    Decimal(Decimal128Builder, u32),
    /// Int64.
    Int(Int64Builder),
    /// Boolean.
    Bool(BooleanBuilder),
    /// Nanosecond instants.
    Nanos(TimestampNanosecondBuilder),
    /// Microsecond instants.
    Micros(TimestampMicrosecondBuilder),
    /// Days.
    Date(Date32Builder),
}

impl ColumnBuilder {
    /// A builder for a column of type `ty`, with room for `rows` values.
    pub fn new(ty: ColType, rows: usize) -> ColumnBuilder {
        match ty {
            ColType::Utf8 | ColType::Json => ColumnBuilder::Utf8(StringBuilder::with_capacity(rows, rows * 16)),
            ColType::Decimal { scale, .. } => ColumnBuilder::Decimal(Decimal128Builder::with_capacity(rows), scale),
            ColType::Int64 => ColumnBuilder::Int(Int64Builder::with_capacity(rows)),
            ColType::Bool => ColumnBuilder::Bool(BooleanBuilder::with_capacity(rows)),
            ColType::Timestamp => ColumnBuilder::Nanos(TimestampNanosecondBuilder::with_capacity(rows)),
            ColType::TimestampMicros => ColumnBuilder::Micros(TimestampMicrosecondBuilder::with_capacity(rows)),
            ColType::Date => ColumnBuilder::Date(Date32Builder::with_capacity(rows)),
        }
    }

    /// Appends a value; a value of another type than the column's is appended as null.
    pub fn append(&mut self, value: &Value<'_>) {
        match (self, value) {
            (ColumnBuilder::Utf8(b), Value::Str(s)) => b.append_value(s),
            (ColumnBuilder::Decimal(b, _), Value::Dec(v)) => b.append_value(*v),
            (ColumnBuilder::Int(b), Value::Int(v)) => b.append_value(*v),
            (ColumnBuilder::Bool(b), Value::Bool(v)) => b.append_value(*v),
            (ColumnBuilder::Nanos(b), Value::Timestamp(v)) => b.append_value(*v),
            (ColumnBuilder::Micros(b), Value::Timestamp(v)) => b.append_value(*v),
            (ColumnBuilder::Date(b), Value::Date(v)) => b.append_value(*v),
            (builder, _) => builder.append_null(),
        }
    }

    /// Appends a text value (or null).
    pub fn append_str(&mut self, text: Option<&str>) {
        match (self, text) {
            (ColumnBuilder::Utf8(b), Some(s)) => b.append_value(s),
            (builder, _) => builder.append_null(),
        }
    }

    /// Appends a null.
    pub fn append_null(&mut self) {
        match self {
            ColumnBuilder::Utf8(b) => b.append_null(),
            ColumnBuilder::Decimal(b, _) => b.append_null(),
            ColumnBuilder::Int(b) => b.append_null(),
            ColumnBuilder::Bool(b) => b.append_null(),
            ColumnBuilder::Nanos(b) => b.append_null(),
            ColumnBuilder::Micros(b) => b.append_null(),
            ColumnBuilder::Date(b) => b.append_null(),
        }
    }

    /// The array of the values appended so far (the builder starts over); an error when a
    /// decimal does not fit its precision of 38 digits.
    pub fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        let array: ArrayRef = match self {
            ColumnBuilder::Utf8(b) => Arc::new(b.finish()),
            ColumnBuilder::Decimal(b, scale) => {
                let array = b.finish().with_precision_and_scale(38, decimal_scale(*scale))?;
                // arrow does not check values against the declared precision by itself.
                array.validate_decimal_precision(38)?;
                Arc::new(array)
            }
            ColumnBuilder::Int(b) => Arc::new(b.finish()),
            ColumnBuilder::Bool(b) => Arc::new(b.finish()),
            ColumnBuilder::Nanos(b) => Arc::new(b.finish().with_timezone("UTC")),
            ColumnBuilder::Micros(b) => Arc::new(b.finish().with_timezone("UTC")),
            ColumnBuilder::Date(b) => Arc::new(b.finish()),
        };
        Ok(array)
    }
}

/// Appends rows of a dataset into a record batch of its [`stage_schema`].
pub struct BatchBuilder {
    schema: Arc<Schema>,
    columns: Vec<ColumnBuilder>,
    rows: usize,
}

impl BatchBuilder {
    /// A builder for `schema`'s rows, with room for `rows` of them.
    pub fn new(schema: &DatasetSchema, rows: usize) -> BatchBuilder {
        BatchBuilder::with_schema(stage_schema(schema), schema, rows)
    }

    /// [`BatchBuilder::new`] with `schema`'s [`stage_schema`] made already (by a caller that
    /// builds many batches of one dataset).
    pub fn with_schema(arrow: Arc<Schema>, schema: &DatasetSchema, rows: usize) -> BatchBuilder {
        BatchBuilder {
            schema: arrow,
            columns: schema.columns.iter().map(|c| ColumnBuilder::new(c.ty, rows)).collect(),
            rows: 0,
        }
    }

    /// Appends one row of values, in column order.
    pub fn push_row(&mut self, row: &[Value<'_>]) {
        for (builder, value) in self.columns.iter_mut().zip(row) {
            builder.append(value);
        }
        self.rows += 1;
    }

    /// Appends one row of cells, in column order.
    pub fn push_cells(&mut self, row: &[Cell]) {
        for (builder, cell) in self.columns.iter_mut().zip(row) {
            builder.append(&cell.value());
        }
        self.rows += 1;
    }

    /// Rows appended since the last batch.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was appended since the last batch.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The batch of the rows appended so far (the builder starts over).
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let arrays = self.columns.iter_mut().map(ColumnBuilder::finish).collect::<Result<Vec<_>, _>>()?;
        self.rows = 0;
        RecordBatch::try_new(self.schema.clone(), arrays)
    }
}

/// One column of a batch, bound to its array type once.
#[derive(Clone, Copy)]
enum View<'a> {
    Utf8(&'a StringArray),
    Decimal(&'a Decimal128Array),
    Int(&'a Int64Array),
    Bool(&'a BooleanArray),
    Nanos(&'a TimestampNanosecondArray),
    Micros(&'a TimestampMicrosecondArray),
    Date(&'a Date32Array),
    /// A type no dataset column has: read as null.
    Other,
}

/// The columns of a record batch, each bound to its array type once, read value by value.
#[derive(Clone)]
pub struct Columns<'a> {
    views: Vec<View<'a>>,
    rows: usize,
}

impl<'a> Columns<'a> {
    /// The columns of `batch`.
    pub fn of(batch: &'a RecordBatch) -> Columns<'a> {
        let views = batch
            .columns()
            .iter()
            .map(|array| {
                let any = array.as_any();
                let bound = match array.data_type() {
                    DataType::Utf8 => any.downcast_ref().map(View::Utf8),
                    DataType::Decimal128(..) => any.downcast_ref().map(View::Decimal),
                    DataType::Int64 => any.downcast_ref().map(View::Int),
                    DataType::Boolean => any.downcast_ref().map(View::Bool),
                    DataType::Timestamp(TimeUnit::Nanosecond, _) => any.downcast_ref().map(View::Nanos),
                    DataType::Timestamp(TimeUnit::Microsecond, _) => any.downcast_ref().map(View::Micros),
                    DataType::Date32 => any.downcast_ref().map(View::Date),
                    _ => None,
                };
                bound.unwrap_or(View::Other)
            })
            .collect();
        Columns { views, rows: batch.num_rows() }
    }

    /// Rows of the batch.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The value at a column and row.
    pub fn value(&self, column: usize, row: usize) -> Value<'a> {
        fn get<A: Array>(array: &A, row: usize, value: impl FnOnce(&A) -> Value<'_>) -> Value<'_> {
            if array.is_null(row) { Value::Null } else { value(array) }
        }
        match self.views.get(column).copied().unwrap_or(View::Other) {
            View::Utf8(a) => get(a, row, |a| Value::Str(std::borrow::Cow::Borrowed(a.value(row)))),
            View::Decimal(a) => get(a, row, |a| Value::Dec(a.value(row))),
            View::Int(a) => get(a, row, |a| Value::Int(a.value(row))),
            View::Bool(a) => get(a, row, |a| Value::Bool(a.value(row))),
            View::Nanos(a) => get(a, row, |a| Value::Timestamp(a.value(row))),
            View::Micros(a) => get(a, row, |a| Value::Timestamp(a.value(row))),
            View::Date(a) => get(a, row, |a| Value::Date(a.value(row))),
            View::Other => Value::Null,
        }
    }

    /// One row, read through [`Row`].
    pub fn row(&self, row: usize) -> BatchRow<'_, 'a> {
        BatchRow { columns: self, row }
    }
}

/// One row of a batch.
#[derive(Clone, Copy)]
pub struct BatchRow<'c, 'a> {
    columns: &'c Columns<'a>,
    row: usize,
}

impl Row for BatchRow<'_, '_> {
    fn value(&self, index: usize) -> Value<'_> {
        self.columns.value(index, self.row)
    }
}

/// The rows of a batch as owned cells (for the small datasets kept whole until the end).
pub fn rows_of(batch: &RecordBatch) -> Vec<Vec<Cell>> {
    let columns = Columns::of(batch);
    (0..batch.num_rows())
        .map(|row| (0..batch.num_columns()).map(|c| columns.value(c, row).into_cell()).collect())
        .collect()
}

/// `batch` with some of its columns replaced by arrays of the same type and length.
pub fn with_columns(batch: &RecordBatch, replaced: Vec<(usize, ArrayRef)>) -> Result<RecordBatch, ArrowError> {
    let mut columns = batch.columns().to_vec();
    for (at, array) in replaced {
        if let Some(slot) = columns.get_mut(at) {
            *slot = array;
        }
    }
    RecordBatch::try_new(batch.schema(), columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tabular::Dataset;

    #[test]
    fn values_go_into_a_batch_and_come_back_as_they_were() {
        let schema = Dataset::Rejects.schema().unwrap();
        let mut builder = BatchBuilder::new(schema, 2);
        let row: Vec<Cell> = schema
            .columns
            .iter()
            .map(|c| match c.ty {
                ColType::Int64 => Cell::Int(-7),
                _ => Cell::Str(format!("{}=x", c.name)),
            })
            .collect();
        builder.push_cells(&row);
        builder.push_row(&vec![Value::Null; schema.columns.len()]);
        let batch = builder.finish().unwrap();
        assert!(builder.is_empty(), "the builder starts over");
        let rows = rows_of(&batch);
        assert_eq!(rows[0], row);
        assert!(rows[1].iter().all(|c| *c == Cell::Null));
        assert_eq!(Columns::of(&batch).row(0).value(0), row[0].value());
    }

    #[test]
    fn a_decimal_beyond_38_digits_is_refused() {
        let mut builder = ColumnBuilder::new(ColType::decimal(2), 1);
        builder.append(&Value::Dec(10i128.pow(38)));
        assert!(builder.finish().is_err());
        builder.append(&Value::Dec(10i128.pow(38) - 1));
        assert_eq!(builder.finish().unwrap().len(), 1);
    }
}
