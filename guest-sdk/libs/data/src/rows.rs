//! Rows as Rust values: a struct is one row whose fields are the columns
//! (through `serde_arrow`); any other type — a number, a string, a tuple, a
//! `Vec` — is a row of one column named `item`, as in Ray's `from_items`.
//! Reading rows of a non-struct type takes the block's only column whatever
//! its name (`range`'s `id`, for instance).

use crate::block::invalid;
use arrow_array::RecordBatch;
use arrow_schema::{FieldRef, Schema};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_arrow::schema::{SchemaLike, TracingOptions};
use std::any::TypeId;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use wray_guest_core::Error;

/// The column a non-struct row lives in.
pub const ITEM: &str = "item";

#[derive(Serialize, Deserialize)]
struct Item<T> {
    item: T,
}

/// How a row type maps to columns, traced once per type.
#[derive(Clone)]
enum Shape {
    /// A struct: these fields.
    Struct(Vec<FieldRef>),
    /// Anything else, wrapped as `Item<T>`: these fields (one, `item`).
    Item(Vec<FieldRef>),
    /// Tracing the type failed; trace each block's rows instead (needed for
    /// enums and untagged types whose shape only values reveal).
    Samples,
}

thread_local! {
    static SHAPES: RefCell<HashMap<TypeId, Shape>> = RefCell::new(HashMap::new());
}

fn options() -> TracingOptions {
    TracingOptions::default().allow_null_fields(true).strings_as_large_utf8(false)
}

fn shape<T: Serialize + DeserializeOwned + 'static>() -> Shape {
    if let Some(s) = SHAPES.with(|m| m.borrow().get(&TypeId::of::<T>()).cloned()) {
        return s;
    }
    let s = match Vec::<FieldRef>::from_type::<T>(options()) {
        Ok(fields) => Shape::Struct(fields),
        Err(_) => match Vec::<FieldRef>::from_type::<Item<T>>(options()) {
            Ok(fields) => Shape::Item(fields),
            Err(_) => Shape::Samples,
        },
    };
    SHAPES.with(|m| m.borrow_mut().insert(TypeId::of::<T>(), s.clone()));
    s
}

fn type_error<T>(what: &str, e: impl std::fmt::Display) -> Error {
    invalid(format!("{what} rows of type {}: {}", std::any::type_name::<T>(), reword(&e.to_string())))
}

/// serde_arrow says a field does not match its column in its own terms —
/// `Error: deserializer does not implement deserialize_u32_at (data_type:
/// "Utf8", field: "$.shop")` — and keeps the parts in annotations only its
/// `Display` shows. A user needs the field, the type asked for and the
/// column's: `field shop is read as u32, but its column holds Utf8`. Any
/// other message passes through without serde_arrow's `Error: ` prefix.
fn reword(message: &str) -> String {
    let message = message.strip_prefix("Error: ").unwrap_or(message);
    let annotation = |key: &str| {
        let start = message.find(&format!("{key}: \""))? + key.len() + 3;
        let len = message[start..].find('"')?;
        Some(&message[start..start + len])
    };
    let asked = message
        .strip_prefix("deserializer does not implement ")
        .and_then(|rest| rest.split([' ', '(']).next())
        .map(|call| call.trim_start_matches("deserialize_").trim_end_matches("_at"))
        .map(|ty| match ty {
            "str" | "string" => "String",
            "is_some" | "any_some" => "Option",
            other => other,
        });
    match (asked, annotation("field"), annotation("data_type")) {
        (Some(asked), Some(field), Some(column)) => {
            let field = field.trim_start_matches("$.");
            format!("field {field} is read as {asked}, but its column holds {column}")
        }
        _ => message.to_owned(),
    }
}

fn wrap<T>(rows: &[T]) -> Vec<Item<&T>> {
    rows.iter().map(|r| Item { item: r }).collect()
}

/// Builds a batch from rows.
pub fn to_batch<T: Serialize + DeserializeOwned + 'static>(rows: &[T]) -> Result<RecordBatch, Error> {
    if let Some(batch) = numbers_to_batch(rows) {
        return Ok(batch);
    }
    match shape::<T>() {
        Shape::Struct(fields) => {
            serde_arrow::to_record_batch(&fields, &rows).map_err(|e| type_error::<T>("writing", e))
        }
        Shape::Item(fields) => {
            serde_arrow::to_record_batch(&fields, &wrap(rows)).map_err(|e| type_error::<T>("writing", e))
        }
        Shape::Samples => {
            let traced = Vec::<FieldRef>::from_samples(rows, options())
                .map(|f| (f, false))
                .or_else(|_| Vec::<FieldRef>::from_samples(wrap(rows), options()).map(|f| (f, true)))
                .map_err(|e| type_error::<T>("describing", e))?;
            match traced {
                (fields, false) => serde_arrow::to_record_batch(&fields, &rows),
                (fields, true) => serde_arrow::to_record_batch(&fields, &wrap(rows)),
            }
            .map_err(|e| type_error::<T>("writing", e))
        }
    }
}

/// Reads a batch's rows as `T`.
pub fn from_batch<T: Serialize + DeserializeOwned + 'static>(batch: &RecordBatch) -> Result<Vec<T>, Error> {
    if let Some(rows) = numbers_from_batch(batch) {
        return Ok(rows);
    }
    let shape = shape::<T>();
    let as_items = match &shape {
        Shape::Struct(_) => false,
        Shape::Item(_) => true,
        // Unknown shape: a one-column block that is not named like a field
        // of T is read as items.
        Shape::Samples => batch.num_columns() == 1 && batch.schema().field(0).name() == ITEM,
    };
    if !as_items {
        let batch = match &shape {
            Shape::Struct(fields) => coerce(batch, fields)?,
            _ => batch.clone(),
        };
        return serde_arrow::from_record_batch(&batch).map_err(|e| type_error::<T>("reading", e));
    }
    if batch.num_columns() != 1 {
        let names: Vec<_> = batch.schema().fields().iter().map(|f| f.name().clone()).collect();
        return Err(invalid(format!(
            "reading rows of type {}: a value that is not a struct is read from a block of one column, \
             but this one has {names:?} (read a struct with those fields, or select_columns first)",
            std::any::type_name::<T>()
        )));
    }
    let mut renamed = renamed_to_item(batch)?;
    if let Shape::Item(fields) = &shape {
        renamed = coerce(&renamed, fields)?;
    }
    let items: Vec<Item<T>> = serde_arrow::from_record_batch(&renamed).map_err(|e| type_error::<T>("reading", e))?;
    Ok(items.into_iter().map(|i| i.item).collect())
}

/// Rows that are plain numbers skip serde: a column of `i64`s is the
/// `Vec<i64>` itself (one copy), read from any numeric column Arrow can cast
/// without loss. `None`: not such a row type or column (serde decides).
fn numbers_from_batch<T: 'static>(batch: &RecordBatch) -> Option<Vec<T>> {
    fn read<N: crate::batch::Number, T: 'static>(batch: &RecordBatch) -> Option<Vec<T>> {
        if batch.num_columns() != 1 {
            return None;
        }
        let column = crate::batch::Batch(batch.clone());
        let name = batch.schema().field(0).name().clone();
        let values: Vec<N> = column.column::<N>(&name).ok()?.into_owned();
        (Box::new(values) as Box<dyn std::any::Any>).downcast::<Vec<T>>().ok().map(|v| *v)
    }
    let t = TypeId::of::<T>();
    macro_rules! try_numbers {
        ($($n:ty),*) => {$(
            if t == TypeId::of::<$n>() {
                return read::<$n, T>(batch);
            }
        )*};
    }
    try_numbers!(i64, u64, f64, f32, i32, u32);
    None
}

/// The other way: numbers are the column `item` as they are (one copy).
fn numbers_to_batch<T: 'static>(rows: &[T]) -> Option<RecordBatch> {
    fn write<N: crate::batch::Number, T: 'static>(rows: &[T]) -> Option<RecordBatch> {
        if TypeId::of::<T>() != TypeId::of::<N>() {
            return None;
        }
        // T is N: each downcast succeeds (and compiles to a copy).
        let values: Option<Vec<N>> =
            rows.iter().map(|r| (r as &dyn std::any::Any).downcast_ref::<N>().copied()).collect();
        crate::batch::Batch::from_columns(vec![(ITEM, values?)]).ok().map(|b| b.0)
    }
    write::<i64, T>(rows)
        .or_else(|| write::<u64, T>(rows))
        .or_else(|| write::<f64, T>(rows))
        .or_else(|| write::<f32, T>(rows))
        .or_else(|| write::<i32, T>(rows))
        .or_else(|| write::<u32, T>(rows))
}

/// Casts numeric columns to the type the row type's fields expect: a CSV
/// column of whole numbers is `Int64`, and a struct may read it as `f32`.
fn coerce(batch: &RecordBatch, fields: &[FieldRef]) -> Result<RecordBatch, Error> {
    let schema = batch.schema();
    let mut changed = false;
    let mut new_fields = Vec::with_capacity(batch.num_columns());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let want = fields.iter().find(|f| f.name() == field.name()).map(|f| f.data_type());
        match want {
            Some(t) if t != field.data_type() && t.is_numeric() && field.data_type().is_numeric() => {
                let cast = arrow_cast::cast(column, t)
                    .map_err(|e| invalid(format!("column {:?} cannot be read as {t}: {e}", field.name())))?;
                new_fields.push(field.as_ref().clone().with_data_type(t.clone()));
                columns.push(cast);
                changed = true;
            }
            _ => {
                new_fields.push(field.as_ref().clone());
                columns.push(column.clone());
            }
        }
    }
    if !changed {
        return Ok(batch.clone());
    }
    RecordBatch::try_new(Arc::new(Schema::new(new_fields)), columns)
        .map_err(|e| invalid(format!("casting columns: {e}")))
}

fn renamed_to_item(batch: &RecordBatch) -> Result<RecordBatch, Error> {
    let field = batch.schema().field(0).clone().with_name(ITEM);
    RecordBatch::try_new(Arc::new(Schema::new(vec![field])), batch.columns().to_vec())
        .map_err(|e| invalid(format!("renaming a column: {e}")))
}

/// What passes between the fused stages of one task: a batch, or rows a
/// row function made and the next stage has not needed as Arrow yet. A
/// `map` followed by a `filter` (or another `map`) over the same row type
/// hands its `Vec` on as it is, instead of writing Arrow columns for the
/// next stage to read back.
pub(crate) enum Flow {
    Batch(RecordBatch),
    Rows(Box<dyn AnyRows>),
}

/// A `Vec` of some row type.
pub(crate) trait AnyRows {
    fn len(&self) -> usize;
    /// `TypeId::of::<Vec<T>>()`.
    fn rows_type(&self) -> TypeId;
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any>;
    fn into_batch(self: Box<Self>) -> Result<RecordBatch, Error>;
}

impl<T: Serialize + DeserializeOwned + 'static> AnyRows for Vec<T> {
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn rows_type(&self) -> TypeId {
        TypeId::of::<Vec<T>>()
    }
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
    fn into_batch(self: Box<Self>) -> Result<RecordBatch, Error> {
        to_batch(&self)
    }
}

impl Flow {
    pub fn rows<T: Serialize + DeserializeOwned + 'static>(rows: Vec<T>) -> Flow {
        Flow::Rows(Box::new(rows))
    }

    pub fn num_rows(&self) -> usize {
        match self {
            Flow::Batch(b) => b.num_rows(),
            Flow::Rows(r) => r.len(),
        }
    }

    pub fn into_batch(self) -> Result<RecordBatch, Error> {
        match self {
            Flow::Batch(b) => Ok(b),
            Flow::Rows(r) => r.into_batch(),
        }
    }

    /// The rows as `T`: the `Vec` itself when it holds `T`s, else read
    /// from the batch.
    pub fn into_rows<T: Serialize + DeserializeOwned + 'static>(self) -> Result<Vec<T>, Error> {
        match self {
            Flow::Rows(r) if r.rows_type() == TypeId::of::<Vec<T>>() => {
                Ok(*r.into_any().downcast::<Vec<T>>().expect("the type was checked"))
            }
            other => from_batch(&other.into_batch()?),
        }
    }

    /// Whether this holds a `Vec<T>`.
    pub fn holds<T: 'static>(&self) -> bool {
        matches!(self, Flow::Rows(r) if r.rows_type() == TypeId::of::<Vec<T>>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
    struct Wine {
        alcohol: f32,
        quality: i64,
        name: Option<String>,
    }

    /// Reading a struct whose field does not match its column names the
    /// field, the type asked for and the column's type.
    #[test]
    fn a_mismatched_field_is_named_with_both_types() {
        #[derive(Serialize, Deserialize, Debug)]
        struct Wrong {
            alcohol: f32,
            name: u32,
        }
        let wines = vec![Wine { alcohol: 9.4, quality: 5, name: Some("a".into()) }];
        let e = from_batch::<Wrong>(&to_batch(&wines).unwrap()).unwrap_err().to_string();
        assert!(e.contains("rows of type") && e.contains("Wrong"), "{e}");
        assert!(e.ends_with("field name is read as u32, but its column holds Utf8"), "{e}");
        // Anything else passes through, without serde_arrow's prefix.
        assert_eq!(reword("Error: missing field `x`"), "missing field `x`");
        assert_eq!(
            reword(
                "Error: deserializer does not implement deserialize_str_at (data_type: \"Int64\", field: \"$.a.b\")"
            ),
            "field a.b is read as String, but its column holds Int64"
        );
    }

    #[test]
    fn structs_are_columns_and_scalars_are_items() {
        let wines = vec![
            Wine { alcohol: 9.4, quality: 5, name: Some("a".into()) },
            Wine { alcohol: 11.0, quality: 7, name: None },
        ];
        let batch = to_batch(&wines).unwrap();
        let names: Vec<_> = batch.schema().fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(names, ["alcohol", "quality", "name"]);
        assert_eq!(from_batch::<Wine>(&batch).unwrap(), wines);

        let numbers: Vec<u64> = (0..100).collect();
        let batch = to_batch(&numbers).unwrap();
        assert_eq!(batch.schema().field(0).name(), ITEM);
        assert_eq!(from_batch::<u64>(&batch).unwrap(), numbers);
        // Pairs and vectors are items too.
        let pairs = vec![(1u32, "x".to_string()), (2, "y".to_string())];
        assert_eq!(from_batch::<(u32, String)>(&to_batch(&pairs).unwrap()).unwrap(), pairs);
        let vecs = vec![vec![1.0f32, 2.0], vec![]];
        assert_eq!(from_batch::<Vec<f32>>(&to_batch(&vecs).unwrap()).unwrap(), vecs);
    }

    #[test]
    fn rows_pass_between_stages_as_they_are_or_through_arrow() {
        let flow = Flow::rows(vec![1u64, 2, 3]);
        assert!(flow.holds::<u64>() && !flow.holds::<i64>());
        assert_eq!(flow.into_rows::<u64>().unwrap(), [1, 2, 3]);
        // Another type reads the Arrow form.
        assert_eq!(Flow::rows(vec![1u64, 2, 3]).into_rows::<f64>().unwrap(), [1.0, 2.0, 3.0]);
        let flow = Flow::Batch(to_batch(&[7u32]).unwrap());
        assert_eq!(flow.num_rows(), 1);
        assert_eq!(flow.into_rows::<u32>().unwrap(), [7]);
    }

    #[test]
    fn a_single_column_reads_as_scalars_whatever_its_name() {
        #[derive(Serialize, Deserialize)]
        struct Id {
            id: i64,
        }
        let batch = to_batch(&[Id { id: 3 }, Id { id: 4 }]).unwrap();
        assert_eq!(from_batch::<u64>(&batch).unwrap(), [3, 4]);
        assert_eq!(from_batch::<f64>(&batch).unwrap(), [3.0, 4.0]);
    }

    #[test]
    fn mismatched_rows_are_named_errors() {
        let batch = to_batch(&[1u64, 2]).unwrap();
        let e = from_batch::<Wine>(&batch).unwrap_err().to_string();
        assert!(e.contains("Wine"), "{e}");
        let wide = to_batch(&[Wine { alcohol: 1.0, quality: 1, name: None }]).unwrap();
        let e = from_batch::<u64>(&wide).unwrap_err().to_string();
        assert!(e.contains("alcohol"), "{e}");
    }
}
