//! The row-wise operators' code: generic trampolines, monomorphised per
//! user function, that decode a block, call the function and encode the
//! result (see `plan` for how they travel to tasks).

use crate::batch::Batch;
use crate::block::invalid;
use crate::plan::{BlockFn, Code, RowsFn, Stage, StageCtx, StageFn, conjure};
use crate::rows;
use crate::rows::Flow;
use arrow_array::{BooleanArray, RecordBatch};
use arrow_schema::{Field, Schema};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use wray_guest_core::Error;

/// A row type: anything serde reads and writes (see [`crate::Dataset`]).
pub trait Row: Serialize + DeserializeOwned + 'static {}
impl<T: Serialize + DeserializeOwned + 'static> Row for T {}

fn encode_arg<A: Serialize + 'static>(a: &A) -> Vec<u8> {
    wray_codec::encode(a).unwrap_or_else(|e| panic!("wray::data: {e}"))
}

fn decode_arg<A: DeserializeOwned + 'static>(bytes: &[u8]) -> Result<A, Error> {
    wray_codec::decode(bytes).map_err(|e| invalid(format!("a stage's argument: {e}")))
}

pub(crate) fn stage<A: Serialize + 'static>(name: String, code: BlockFn, arg: &A) -> Stage {
    Stage { name, code: StageFn::Batch(Code::of(code)), arg: encode_arg(arg), keeps_rows: false }
}

pub(crate) fn row_stage<A: Serialize + 'static>(name: String, code: RowsFn, arg: &A) -> Stage {
    Stage { name, code: StageFn::Rows(Code::of(code)), arg: encode_arg(arg), keeps_rows: false }
}

impl Stage {
    /// Marks a stage that makes one row per row.
    pub(crate) fn keeping_rows(self) -> Stage {
        Stage { keeps_rows: true, ..self }
    }
}

/// `Map(path::to::f)`: the operator's name for stats and errors.
pub(crate) fn name<F>(op: &str) -> String {
    let full = std::any::type_name::<F>();
    // A closure's type name is `crate::fn::{{closure}}`: keep the function.
    let short = full.trim_end_matches("::{{closure}}");
    format!("{op}({short})")
}

pub(crate) fn map<F: Fn(T) -> U + Copy + 'static, T: Row, U: Row>(
    rows: Flow,
    _: &StageCtx,
    _: &[u8],
) -> Result<Flow, Error> {
    let f = conjure::<F>();
    Ok(Flow::rows(rows.into_rows::<T>()?.into_iter().map(f).collect::<Vec<U>>()))
}

pub(crate) fn map_with<F: Fn(&S, T) -> U + Copy + 'static, S: Row, T: Row, U: Row>(
    rows: Flow,
    _: &StageCtx,
    arg: &[u8],
) -> Result<Flow, Error> {
    let (f, state) = (conjure::<F>(), decode_arg::<S>(arg)?);
    Ok(Flow::rows(rows.into_rows::<T>()?.into_iter().map(|r| f(&state, r)).collect::<Vec<U>>()))
}

pub(crate) fn flat_map<F: Fn(T) -> I + Copy + 'static, T: Row, I: IntoIterator<Item = U>, U: Row>(
    rows: Flow,
    _: &StageCtx,
    _: &[u8],
) -> Result<Flow, Error> {
    let f = conjure::<F>();
    Ok(Flow::rows(rows.into_rows::<T>()?.into_iter().flat_map(f).collect::<Vec<U>>()))
}

/// Rows a row function made are filtered as they are. A batch keeps its
/// columns: only the mask is computed from rows, so a filter never
/// re-encodes the columns it does not read.
pub(crate) fn filter<F: Fn(&T) -> bool + Copy + 'static, T: Row>(
    rows: Flow,
    _: &StageCtx,
    _: &[u8],
) -> Result<Flow, Error> {
    let f = conjure::<F>();
    if rows.holds::<T>() {
        let mut rows = rows.into_rows::<T>()?;
        rows.retain(f);
        return Ok(Flow::rows(rows));
    }
    let batch = rows.into_batch()?;
    let mask: BooleanArray = rows::from_batch::<T>(&batch)?.iter().map(|r| Some(f(r))).collect();
    arrow_select::filter::filter_record_batch(&batch, &mask)
        .map(Flow::Batch)
        .map_err(|e| invalid(format!("filtering: {e}")))
}

/// Calls `f` on batches of at most `batch_size` rows (the whole block if
/// `None`) and joins what it returns.
pub(crate) fn in_batches(
    batch: RecordBatch,
    batch_size: Option<usize>,
    mut f: impl FnMut(Batch) -> Result<Batch, Error>,
) -> Result<RecordBatch, Error> {
    let rows = batch.num_rows();
    let size = batch_size.unwrap_or(rows).max(1);
    if rows <= size {
        return f(Batch(batch)).map(Batch::into_record_batch);
    }
    let outs = (0..rows)
        .step_by(size)
        .map(|s| f(Batch(batch.slice(s, size.min(rows - s)))).map(Batch::into_record_batch))
        .collect::<Result<Vec<_>, _>>()?;
    let schema = outs[0].schema();
    crate::block::concat(&schema, &outs)
}

pub(crate) fn map_batches<F: Fn(Batch) -> Result<Batch, Error> + Copy + 'static>(
    batch: RecordBatch,
    _: &StageCtx,
    arg: &[u8],
) -> Result<RecordBatch, Error> {
    in_batches(batch, decode_arg::<Option<u64>>(arg)?.map(|s| s as usize), conjure::<F>())
}

pub(crate) fn map_batches_with<F: Fn(&S, Batch) -> Result<Batch, Error> + Copy + 'static, S: Row>(
    batch: RecordBatch,
    _: &StageCtx,
    arg: &[u8],
) -> Result<RecordBatch, Error> {
    let (size, state): (Option<u64>, Vec<u8>) = decode_arg(arg)?;
    let state: S = decode_arg(&state)?;
    let f = conjure::<F>();
    in_batches(batch, size.map(|s| s as usize), |b| f(&state, b))
}

pub(crate) fn add_column<F: Fn(&Batch) -> Result<Vec<V>, Error> + Copy + 'static, V: Row>(
    batch: RecordBatch,
    _: &StageCtx,
    arg: &[u8],
) -> Result<RecordBatch, Error> {
    let name: String = decode_arg(arg)?;
    let batch = Batch(batch);
    let values = conjure::<F>()(&batch)?;
    let column = rows::to_batch(&values)?;
    if column.num_columns() != 1 {
        return Err(invalid(format!("add_column({name:?}): the function must return plain values, not structs")));
    }
    batch.with_array(&name, column.column(0).clone()).map(Batch::into_record_batch)
}

fn rebuild(batch: &RecordBatch, picks: Vec<(usize, String)>) -> Result<RecordBatch, Error> {
    let schema = batch.schema();
    let fields: Vec<Field> = picks.iter().map(|(i, n)| schema.field(*i).clone().with_name(n)).collect();
    let columns = picks.iter().map(|(i, _)| batch.column(*i).clone()).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| invalid(e.to_string()))
}

fn index_of(batch: &RecordBatch, name: &str) -> Result<usize, Error> {
    batch.schema().index_of(name).map_err(|_| {
        let names: Vec<_> = batch.schema().fields().iter().map(|f| f.name().clone()).collect();
        invalid(format!("no column {name:?} in {names:?}"))
    })
}

pub(crate) fn select_columns(batch: RecordBatch, _: &StageCtx, arg: &[u8]) -> Result<RecordBatch, Error> {
    let names: Vec<String> = decode_arg(arg)?;
    let picks = names.into_iter().map(|n| Ok((index_of(&batch, &n)?, n))).collect::<Result<_, Error>>()?;
    rebuild(&batch, picks)
}

pub(crate) fn drop_columns(batch: RecordBatch, _: &StageCtx, arg: &[u8]) -> Result<RecordBatch, Error> {
    let names: Vec<String> = decode_arg(arg)?;
    for n in &names {
        index_of(&batch, n)?;
    }
    let schema = batch.schema();
    let picks = (0..batch.num_columns())
        .map(|i| (i, schema.field(i).name().clone()))
        .filter(|(_, n)| !names.contains(n))
        .collect();
    rebuild(&batch, picks)
}

pub(crate) fn rename_columns(batch: RecordBatch, _: &StageCtx, arg: &[u8]) -> Result<RecordBatch, Error> {
    let renames: Vec<(String, String)> = decode_arg(arg)?;
    for (from, _) in &renames {
        index_of(&batch, from)?;
    }
    let schema = batch.schema();
    let picks = (0..batch.num_columns())
        .map(|i| {
            let n = schema.field(i).name();
            (i, renames.iter().find(|(f, _)| f == n).map_or_else(|| n.clone(), |(_, t)| t.clone()))
        })
        .collect();
    rebuild(&batch, picks)
}

fn slice(batch: RecordBatch, _: &StageCtx, arg: &[u8]) -> Result<RecordBatch, Error> {
    let (offset, len): (u64, u64) = decode_arg(arg)?;
    let offset = (offset as usize).min(batch.num_rows());
    let len = (len as usize).min(batch.num_rows() - offset);
    Ok(batch.slice(offset, len))
}

pub(crate) fn slice_stage(offset: u64, len: u64) -> Stage {
    stage(format!("Slice({offset}, {len})"), slice, &(offset, len))
}
