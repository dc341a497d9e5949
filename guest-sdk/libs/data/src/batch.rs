//! [`Batch`]: what `map_batches` functions and `iter_batches` hand out — one
//! Arrow record batch with typed views of it (rows, columns, a tensor).

use crate::block::invalid;
use crate::rows;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, ArrowPrimitiveType, PrimitiveArray, RecordBatch};
use arrow_schema::{Field, Schema, SchemaRef};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::borrow::Cow;
use std::sync::Arc;
use wray_guest_core::{Error, Tensor};

/// A batch of rows in Arrow's columnar form.
///
/// ```no_run
/// # use wray::data::Batch;
/// # fn f(batch: Batch) -> Result<(), wray::Error> {
/// let alcohol = batch.column::<f32>("alcohol")?; // no copy if the column is f32 already
/// let mean = alcohol.iter().sum::<f32>() / alcohol.len() as f32;
/// let centred: Vec<f32> = alcohol.iter().map(|a| a - mean).collect();
/// let batch = batch.with_column("alcohol", centred)?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Batch(pub(crate) RecordBatch);

/// Numbers a column can be read as without going through serde:
/// `f32 f64 i8 i16 i32 i64 u8 u16 u32 u64`.
pub trait Number: arrow_buffer::ArrowNativeType + private::Sealed {
    #[doc(hidden)]
    type Arrow: ArrowPrimitiveType<Native = Self>;
}

mod private {
    pub trait Sealed {}
}

macro_rules! numbers {
    ($($t:ty => $a:ty),*) => {$(
        impl private::Sealed for $t {}
        impl Number for $t { type Arrow = $a; }
    )*};
}
numbers!(f32 => Float32Type, f64 => Float64Type, i8 => Int8Type, i16 => Int16Type, i32 => Int32Type,
    i64 => Int64Type, u8 => UInt8Type, u16 => UInt16Type, u32 => UInt32Type, u64 => UInt64Type);

impl Batch {
    /// Wraps an Arrow record batch.
    pub fn new(batch: RecordBatch) -> Batch {
        Batch(batch)
    }

    /// A batch of rows: a struct's fields become columns, any other type the
    /// column `item`.
    pub fn from_rows<T: Serialize + DeserializeOwned + 'static>(rows: &[T]) -> Result<Batch, Error> {
        rows::to_batch(rows).map(Batch)
    }

    /// A batch of named columns of numbers, all as long.
    pub fn from_columns<T: Number>(columns: Vec<(&str, Vec<T>)>) -> Result<Batch, Error> {
        let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = columns
            .into_iter()
            .map(|(name, values)| {
                (
                    Field::new(name, T::Arrow::DATA_TYPE, false),
                    Arc::new(PrimitiveArray::<T::Arrow>::from_iter_values(values)) as ArrayRef,
                )
            })
            .unzip();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
            .map(Batch)
            .map_err(|e| invalid(format!("building a batch: {e}")))
    }

    /// The rows, read as `T` (a struct by column names, or the only column).
    pub fn rows<T: Serialize + DeserializeOwned + 'static>(&self) -> Result<Vec<T>, Error> {
        rows::from_batch(&self.0)
    }

    /// Rows in the batch.
    pub fn num_rows(&self) -> usize {
        self.0.num_rows()
    }

    /// Whether the batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.0.num_rows() == 0
    }

    /// The batch's schema.
    pub fn schema(&self) -> SchemaRef {
        self.0.schema()
    }

    /// The columns' names, in order.
    pub fn column_names(&self) -> Vec<String> {
        self.0.schema().fields().iter().map(|f| f.name().clone()).collect()
    }

    /// The Arrow record batch.
    pub fn record_batch(&self) -> &RecordBatch {
        &self.0
    }

    /// The Arrow record batch, owned.
    pub fn into_record_batch(self) -> RecordBatch {
        self.0
    }

    /// Column `name` as numbers of type `T`: borrowed from the block when it
    /// holds `T`s already, converted (Arrow's cast) otherwise. Null values
    /// are an error: fill or filter them first.
    pub fn column<T: Number>(&self, name: &str) -> Result<Cow<'_, [T]>, Error> {
        let column = self.array(name)?;
        if column.data_type() == &T::Arrow::DATA_TYPE && column.null_count() == 0 {
            return Ok(Cow::Borrowed(&column.as_primitive::<T::Arrow>().values()[..]));
        }
        let cast = arrow_cast::cast(column, &T::Arrow::DATA_TYPE)
            .map_err(|e| invalid(format!("column {name:?} cannot be read as {}: {e}", std::any::type_name::<T>())))?;
        if cast.null_count() > 0 {
            return Err(invalid(format!(
                "column {name:?} holds {} nulls (or values that are not numbers), read as {}",
                cast.null_count(),
                std::any::type_name::<T>()
            )));
        }
        Ok(Cow::Owned(cast.as_primitive::<T::Arrow>().values()[..].to_vec()))
    }

    /// Column `name` as an Arrow array.
    pub fn array(&self, name: &str) -> Result<&ArrayRef, Error> {
        self.0.column_by_name(name).ok_or_else(|| invalid(format!("no column {name:?} in {:?}", self.column_names())))
    }

    /// The batch with column `name` set to `values` (replaced where it
    /// exists, appended otherwise).
    pub fn with_column<T: Number>(self, name: &str, values: Vec<T>) -> Result<Batch, Error> {
        let array: ArrayRef = Arc::new(PrimitiveArray::<T::Arrow>::from_iter_values(values));
        self.with_array(name, array)
    }

    /// The batch with column `name` set to an Arrow array.
    pub fn with_array(self, name: &str, array: ArrayRef) -> Result<Batch, Error> {
        if array.len() != self.num_rows() {
            return Err(invalid(format!("column {name:?} has {} values for {} rows", array.len(), self.num_rows())));
        }
        let schema = self.0.schema();
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        let mut columns = self.0.columns().to_vec();
        let field = Field::new(name, array.data_type().clone(), array.null_count() > 0);
        match fields.iter().position(|f| f.name() == name) {
            Some(i) => {
                fields[i] = field;
                columns[i] = array;
            }
            None => {
                fields.push(field);
                columns.push(array);
            }
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .map(Batch)
            .map_err(|e| invalid(format!("setting column {name:?}: {e}")))
    }

    /// `columns` as a row-major `f32` matrix, one row per row of the batch.
    /// A number column gives one value per row; a fixed-size list column
    /// (a feature vector, such as `Concatenator`'s output) gives its width.
    pub fn matrix(&self, columns: &[&str]) -> Result<Vec<f32>, Error> {
        let rows = self.num_rows();
        let parts = columns.iter().map(|c| self.part(c)).collect::<Result<Vec<_>, _>>()?;
        let width: usize = parts.iter().map(|(_, w)| w).sum();
        let mut out = Vec::with_capacity(rows * width);
        for r in 0..rows {
            for (values, w) in &parts {
                out.extend_from_slice(&values[r * w..(r + 1) * w]);
            }
        }
        Ok(out)
    }

    /// One column's values as `f32`s, and how many each row has.
    fn part(&self, name: &str) -> Result<(Cow<'_, [f32]>, usize), Error> {
        let Some(list) = self.array(name)?.as_fixed_size_list_opt() else {
            return Ok((self.column::<f32>(name)?, 1));
        };
        let width = list.value_length() as usize;
        // A sliced list slices its values too: they start at its first row.
        let values = list.values().slice(0, list.len() * width);
        let cast = arrow_cast::cast(&values, &arrow_schema::DataType::Float32)
            .map_err(|e| invalid(format!("column {name:?}: its vectors cannot be read as f32: {e}")))?;
        if list.null_count() > 0 || cast.null_count() > 0 {
            return Err(invalid(format!("column {name:?} holds missing vectors or values")));
        }
        Ok((Cow::Owned(cast.as_primitive::<Float32Type>().values().to_vec()), width))
    }

    /// `columns` as a host tensor of shape `[rows, width]` (the
    /// [`matrix`](Batch::matrix)) — what `wray::nn` layers take.
    pub fn tensor(&self, columns: &[&str]) -> Result<Tensor, Error> {
        let m = self.matrix(columns)?;
        let rows = self.num_rows();
        let width = m.len().checked_div(rows).unwrap_or(columns.len());
        Tensor::from_vec(&[rows, width], &m)
    }
}

impl From<RecordBatch> for Batch {
    fn from(batch: RecordBatch) -> Batch {
        Batch(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_borrowed_when_they_can_be_and_cast_otherwise() {
        let batch = Batch::from_columns(vec![("a", vec![1.0f32, 2.0]), ("b", vec![3.0, 4.0])]).unwrap();
        assert!(matches!(batch.column::<f32>("a").unwrap(), Cow::Borrowed(_)));
        assert_eq!(&*batch.column::<f64>("b").unwrap(), &[3.0, 4.0]);
        assert_eq!(batch.matrix(&["b", "a"]).unwrap(), [3.0, 1.0, 4.0, 2.0]);
        assert!(batch.column::<f32>("zz").unwrap_err().to_string().contains("no column \"zz\""));
        let batch = batch.with_column("c", vec![7i64, 8]).unwrap().with_column("a", vec![0.5f32, 0.5]).unwrap();
        assert_eq!(batch.column_names(), ["a", "b", "c"]);
        assert_eq!(&*batch.column::<f32>("a").unwrap(), &[0.5, 0.5]);
        assert!(batch.with_column("d", vec![1u8]).is_err());
    }
}
