//! All-to-all operators: `random_shuffle`, `sort`, `groupby` and the
//! row-moving helpers behind `repartition`, `split` and
//! `train_test_split`. Each runs as an exchange: a partition task per input
//! block cuts it into one part per output, then a combine task per output
//! joins its parts (Ray's push-based shuffle without the push). Its input is
//! materialised first; its output streams.

use crate::block::{self, BlockRef, invalid};
use crate::exec::{BlockStream, Exec};
use crate::plan::Node;
use crate::plan::{Code, CombineFn, Exchange, PartitionFn, StageCtx};
use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch, UInt32Array};
use arrow_ord::sort::{SortColumn, lexsort_to_indices};
use arrow_row::{RowConverter, Rows, SortField};
use arrow_schema::{DataType, Field, Schema, SortOptions};
use serde::{Deserialize, Serialize};
use std::rc::Rc;
use std::sync::Arc;
use wray_guest_core::{Error, Rng};

fn arg<A: serde::de::DeserializeOwned + 'static>(bytes: &[u8]) -> Result<A, Error> {
    wray_codec::decode(bytes).map_err(|e| invalid(format!("an exchange's argument: {e}")))
}

fn encode<A: Serialize + 'static>(a: &A) -> Vec<u8> {
    wray_codec::encode(a).expect("exchange arguments encode")
}

/// Rows of `batch` grouped by target part, in row order within a part.
fn take_parts(batch: &RecordBatch, assign: impl Fn(usize) -> usize, parts: usize) -> Result<Vec<RecordBatch>, Error> {
    let mut picks: Vec<Vec<u32>> = vec![Vec::new(); parts];
    for row in 0..batch.num_rows() {
        picks[assign(row)].push(row as u32);
    }
    picks.into_iter().map(|p| take(batch, &p)).collect()
}

fn take(batch: &RecordBatch, rows: &[u32]) -> Result<RecordBatch, Error> {
    arrow_select::take::take_record_batch(batch, &UInt32Array::from(rows.to_vec()))
        .map_err(|e| invalid(format!("moving rows: {e}")))
}

fn concat(parts: &[RecordBatch]) -> Result<Option<RecordBatch>, Error> {
    match parts.first() {
        None => Ok(None),
        Some(p) => block::concat(&p.schema(), parts).map(Some),
    }
}

// ---- random_shuffle ----

fn shuffle_partition(
    batch: RecordBatch,
    ctx: &StageCtx,
    arg_bytes: &[u8],
    parts: usize,
) -> Result<Vec<RecordBatch>, Error> {
    let seed: u64 = arg(arg_bytes)?;
    let mut rng = Rng::new(seed ^ ctx.index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let targets: Vec<usize> = (0..batch.num_rows()).map(|_| rng.below(parts)).collect();
    take_parts(&batch, |r| targets[r], parts)
}

fn shuffle_combine(parts: Vec<RecordBatch>, ctx: &StageCtx, arg_bytes: &[u8]) -> Result<RecordBatch, Error> {
    let seed: u64 = arg(arg_bytes)?;
    let Some(all) = concat(&parts)? else { return Err(invalid("a shuffle output has no parts".into())) };
    let mut order: Vec<u32> = (0..all.num_rows() as u32).collect();
    Rng::new(seed ^ (ctx.index + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9)).shuffle(&mut order);
    take(&all, &order)
}

pub(crate) fn shuffle(seed: u64) -> Exchange {
    Exchange {
        name: "RandomShuffle".into(),
        partition: Code::of(shuffle_partition as PartitionFn),
        combine: Code::of(shuffle_combine as CombineFn),
        arg: encode(&seed),
        outputs: None,
        keeps_rows: true,
    }
}

// ---- sort ----

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct SortArg {
    pub keys: Vec<String>,
    pub descending: bool,
    /// Sorted boundary keys (an IPC block of the key columns).
    pub bounds: Vec<u8>,
}

fn key_columns(batch: &RecordBatch, keys: &[String]) -> Result<Vec<ArrayRef>, Error> {
    keys.iter()
        .map(|k| {
            batch.column_by_name(k).cloned().ok_or_else(|| {
                let names: Vec<_> = batch.schema().fields().iter().map(|f| f.name().clone()).collect();
                invalid(format!("no column {k:?} in {names:?}"))
            })
        })
        .collect()
}

fn converter(columns: &[ArrayRef], descending: bool) -> Result<RowConverter, Error> {
    let options = SortOptions { descending, nulls_first: !descending };
    RowConverter::new(columns.iter().map(|c| SortField::new_with_options(c.data_type().clone(), options)).collect())
        .map_err(|e| invalid(format!("keys: {e}")))
}

fn rows_of(conv: &RowConverter, columns: &[ArrayRef]) -> Result<Rows, Error> {
    conv.convert_columns(columns).map_err(|e| invalid(format!("keys: {e}")))
}

fn range_partition(
    batch: RecordBatch,
    _: &StageCtx,
    arg_bytes: &[u8],
    parts: usize,
) -> Result<Vec<RecordBatch>, Error> {
    let a: SortArg = arg(arg_bytes)?;
    let keys = key_columns(&batch, &a.keys)?;
    let conv = converter(&keys, a.descending)?;
    let bounds_batch = block::decode(a.bounds.clone())?;
    let bounds = rows_of(&conv, &key_columns(&bounds_batch, &a.keys)?)?;
    let rows = rows_of(&conv, &keys)?;
    let targets: Vec<usize> = (0..batch.num_rows())
        .map(|r| {
            let row = rows.row(r);
            // The number of bounds at or below the row: its part.
            let (mut lo, mut hi) = (0, bounds.num_rows());
            while lo < hi {
                let mid = (lo + hi) / 2;
                if bounds.row(mid) <= row { lo = mid + 1 } else { hi = mid }
            }
            lo.min(parts - 1)
        })
        .collect();
    take_parts(&batch, |r| targets[r], parts)
}

fn sort_batch(batch: &RecordBatch, keys: &[String], descending: bool) -> Result<RecordBatch, Error> {
    let columns: Vec<SortColumn> = key_columns(batch, keys)?
        .into_iter()
        .map(|values| SortColumn { values, options: Some(SortOptions { descending, nulls_first: !descending }) })
        .collect();
    let order = lexsort_to_indices(&columns, None).map_err(|e| invalid(format!("sorting: {e}")))?;
    arrow_select::take::take_record_batch(batch, &order).map_err(|e| invalid(format!("sorting: {e}")))
}

fn sort_combine(parts: Vec<RecordBatch>, _: &StageCtx, arg_bytes: &[u8]) -> Result<RecordBatch, Error> {
    let a: SortArg = arg(arg_bytes)?;
    let Some(all) = concat(&parts)? else { return Err(invalid("a sort output has no parts".into())) };
    sort_batch(&all, &a.keys, a.descending)
}

/// Up to this many evenly spaced rows of each block decide where a sort
/// cuts its outputs.
const SORT_SAMPLES_PER_BLOCK: usize = 64;

fn sample_keys(batch: RecordBatch, _: &StageCtx, arg_bytes: &[u8]) -> Result<RecordBatch, Error> {
    let keys: Vec<String> = arg(arg_bytes)?;
    let n = batch.num_rows();
    let step = n.div_ceil(SORT_SAMPLES_PER_BLOCK).max(1);
    let picks: Vec<u32> = (0..n).step_by(step).map(|r| r as u32).collect();
    let columns = key_columns(&batch, &keys)?;
    let fields: Vec<Field> =
        keys.iter().zip(&columns).map(|(k, c)| Field::new(k, c.data_type().clone(), true)).collect();
    let sampled = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| invalid(e.to_string()))?;
    take(&sampled, &picks)
}

/// Plans a sort of materialised blocks: samples keys with one task per
/// block, picks `blocks - 1` boundaries, and returns the exchange.
pub(crate) fn sort(blocks: &[BlockRef], keys: Vec<String>, descending: bool, exec: &Exec) -> Result<Exchange, Error> {
    let stage = crate::ops::stage("SortSample".into(), sample_keys, &keys);
    let sampling = Rc::new(Node::Stage { input: Rc::new(Node::Blocks { blocks: blocks.to_vec() }), stage });
    let samples = crate::exec::collect(crate::exec::stream(&sampling, exec)?)?
        .iter()
        .map(block::fetch)
        .collect::<Result<Vec<_>, _>>()?;
    let bounds = match concat(&samples)? {
        Some(all) if all.num_rows() > 0 && blocks.len() > 1 => {
            let sorted = sort_batch(&all, &keys, descending)?;
            let n = sorted.num_rows();
            let picks: Vec<u32> = (1..blocks.len()).map(|i| ((i * n) / blocks.len()).min(n - 1) as u32).collect();
            take(&sorted, &picks)?
        }
        Some(all) => all.slice(0, 0),
        None => return Err(invalid("sort: the dataset has no blocks".into())),
    };
    Ok(Exchange {
        name: format!("Sort({})", keys.join(", ")),
        partition: Code::of(range_partition as PartitionFn),
        combine: Code::of(sort_combine as CombineFn),
        arg: encode(&SortArg { keys, descending, bounds: block::encode(&bounds)? }),
        outputs: Some(blocks.len().max(1)),
        keeps_rows: true,
    })
}

// ---- groupby ----

/// An aggregation over a column (or the rows, for `Count`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum Agg {
    /// Rows per group: column `count()`.
    Count,
    /// Sum of a column: `sum(col)`.
    Sum(String),
    /// Mean: `mean(col)`.
    Mean(String),
    /// Smallest value: `min(col)`.
    Min(String),
    /// Largest value: `max(col)`.
    Max(String),
    /// Sample standard deviation (`ddof = 1`, as Ray and pandas): `std(col)`.
    Std(String),
}

impl Agg {
    /// The output column's name.
    pub fn column_name(&self) -> String {
        match self {
            Agg::Count => "count()".into(),
            Agg::Sum(c) => format!("sum({c})"),
            Agg::Mean(c) => format!("mean({c})"),
            Agg::Min(c) => format!("min({c})"),
            Agg::Max(c) => format!("max({c})"),
            Agg::Std(c) => format!("std({c})"),
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct GroupArg {
    pub keys: Vec<String>,
    pub aggs: Vec<Agg>,
    /// `map_groups`: the function to run on each group instead.
    pub map: Option<Code<crate::plan::BlockFn>>,
    pub map_arg: Vec<u8>,
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

fn hash_partition(batch: RecordBatch, _: &StageCtx, arg_bytes: &[u8], parts: usize) -> Result<Vec<RecordBatch>, Error> {
    let a: GroupArg = arg(arg_bytes)?;
    if a.keys.is_empty() {
        let mut out = vec![batch.slice(0, 0); parts];
        out[0] = batch;
        return Ok(out);
    }
    let keys = key_columns(&batch, &a.keys)?;
    let rows = rows_of(&converter(&keys, false)?, &keys)?;
    take_parts(&batch, |r| (fnv(rows.row(r).as_ref()) % parts as u64) as usize, parts)
}

/// Group boundaries of a batch sorted by its keys: `(start, len)` runs.
fn runs(batch: &RecordBatch, keys: &[String]) -> Result<Vec<(usize, usize)>, Error> {
    let n = batch.num_rows();
    if keys.is_empty() {
        return Ok(if n == 0 { vec![] } else { vec![(0, n)] });
    }
    let columns = key_columns(batch, keys)?;
    let rows = rows_of(&converter(&columns, false)?, &columns)?;
    let mut out = Vec::new();
    let mut start = 0;
    for r in 1..=n {
        if r == n || rows.row(r) != rows.row(start) {
            out.push((start, r - start));
            start = r;
        }
    }
    Ok(out)
}

fn floats(batch: &RecordBatch, column: &str) -> Result<Float64Array, Error> {
    let c = key_columns(batch, &[column.to_string()])?.remove(0);
    let cast = arrow_cast::cast(&c, &DataType::Float64).map_err(|e| invalid(format!("column {column:?}: {e}")))?;
    Ok(cast.as_any().downcast_ref::<Float64Array>().expect("cast to f64").clone())
}

fn aggregate(values: &Float64Array, start: usize, len: usize, agg: &Agg) -> Option<f64> {
    let xs = (start..start + len).filter(|&i| values.is_valid(i)).map(|i| values.value(i));
    match agg {
        Agg::Count => Some(len as f64),
        Agg::Sum(_) => Some(xs.sum()),
        Agg::Mean(_) => {
            let (s, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
            (n > 0).then(|| s / n as f64)
        }
        Agg::Min(_) => xs.reduce(f64::min),
        Agg::Max(_) => xs.reduce(f64::max),
        Agg::Std(_) => {
            let v: Vec<f64> = xs.collect();
            (v.len() > 1).then(|| {
                let mean = v.iter().sum::<f64>() / v.len() as f64;
                (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
            })
        }
    }
}

fn group_combine(parts: Vec<RecordBatch>, ctx: &StageCtx, arg_bytes: &[u8]) -> Result<RecordBatch, Error> {
    let a: GroupArg = arg(arg_bytes)?;
    let Some(all) = concat(&parts)? else { return Err(invalid("a groupby output has no parts".into())) };
    let sorted = if a.keys.is_empty() { all } else { sort_batch(&all, &a.keys, false)? };
    let groups = runs(&sorted, &a.keys)?;
    if let Some(code) = a.map {
        let f = code.get()?;
        let outs =
            groups.iter().map(|&(s, n)| f(sorted.slice(s, n), ctx, &a.map_arg)).collect::<Result<Vec<_>, _>>()?;
        return match concat(&outs)? {
            Some(b) => Ok(b),
            None => Ok(RecordBatch::new_empty(Arc::new(Schema::empty()))),
        };
    }
    let firsts: Vec<u32> = groups.iter().map(|&(s, _)| s as u32).collect();
    let keyed = take(&sorted, &firsts)?;
    let mut fields: Vec<Field> = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (k, c) in a.keys.iter().zip(key_columns(&keyed, &a.keys)?) {
        fields.push(Field::new(k, c.data_type().clone(), true));
        columns.push(c);
    }
    for agg in &a.aggs {
        let name = agg.column_name();
        if *agg == Agg::Count {
            fields.push(Field::new(&name, DataType::Int64, false));
            columns.push(Arc::new(Int64Array::from_iter_values(groups.iter().map(|&(_, n)| n as i64))));
            continue;
        }
        let column = match agg {
            Agg::Sum(c) | Agg::Mean(c) | Agg::Min(c) | Agg::Max(c) | Agg::Std(c) => c,
            Agg::Count => unreachable!(),
        };
        let values = floats(&sorted, column)?;
        let out: Float64Array = groups.iter().map(|&(s, n)| aggregate(&values, s, n, agg)).collect();
        fields.push(Field::new(&name, DataType::Float64, true));
        columns.push(Arc::new(out));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| invalid(e.to_string()))
}

pub(crate) fn group(keys: Vec<String>, aggs: Vec<Agg>, map: Option<(Code<crate::plan::BlockFn>, Vec<u8>)>) -> Exchange {
    let name = match (&map, keys.is_empty()) {
        (Some(_), _) => format!("GroupBy({}).map_groups", keys.join(", ")),
        (None, true) => "Aggregate".to_string(),
        (None, false) => format!("GroupBy({})", keys.join(", ")),
    };
    let outputs = keys.is_empty().then_some(1);
    let (map, map_arg) = match map {
        Some((c, a)) => (Some(c), a),
        None => (None, Vec::new()),
    };
    Exchange {
        name,
        partition: Code::of(hash_partition as PartitionFn),
        combine: Code::of(group_combine as CombineFn),
        arg: encode(&GroupArg { keys, aggs, map, map_arg }),
        outputs,
        keeps_rows: false,
    }
}

// ---- moving rows by position ----

/// Gathers rows from parts: `picks` are `(part, row)` pairs, in output order.
fn gather_combine(parts: Vec<RecordBatch>, _: &StageCtx, arg_bytes: &[u8]) -> Result<RecordBatch, Error> {
    let picks: Vec<(u32, u32)> = arg(arg_bytes)?;
    let refs: Vec<&RecordBatch> = parts.iter().collect();
    let indices: Vec<(usize, usize)> = picks.iter().map(|&(p, r)| (p as usize, r as usize)).collect();
    if let Some(&(p, r)) = indices.iter().find(|&&(p, r)| p >= parts.len() || r >= parts[p].num_rows()) {
        return Err(invalid(format!("gathering row {r} of part {p}, which does not exist")));
    }
    match refs.first() {
        None => Err(invalid("gathering from no parts".into())),
        Some(first) if indices.is_empty() => Ok(first.slice(0, 0)),
        Some(_) => arrow_select::interleave::interleave_record_batch(&refs, &indices)
            .map_err(|e| invalid(format!("gathering rows: {e}"))),
    }
}

/// Where each block starts, and the total row count.
fn starts(blocks: &[BlockRef]) -> (Vec<u64>, u64) {
    let mut starts = Vec::with_capacity(blocks.len());
    let mut total = 0u64;
    for b in blocks {
        starts.push(total);
        total += b.rows;
    }
    (starts, total)
}

/// An empty block with the dataset's schema, for an output with no rows.
fn empty(blocks: &[BlockRef]) -> Result<Vec<BlockRef>, Error> {
    blocks.first().map(|b| crate::exec::slice(b, 0, 0)).into_iter().collect()
}

/// New blocks holding the dataset's rows at global positions `rows`, in
/// that order, about `per_block` rows each; one task per output block,
/// each fetching only the blocks it needs.
pub(crate) fn gather(blocks: &[BlockRef], rows: &[u64], per_block: usize, exec: &Exec) -> BlockStream {
    let (starts, total) = starts(blocks);
    let locate = |g: u64| -> Result<(usize, u32), Error> {
        if g >= total {
            return Err(invalid(format!("row {g} is past the dataset's {total} rows")));
        }
        let b = starts.partition_point(|&s| s <= g) - 1;
        Ok((b, (g - starts[b]) as u32))
    };
    let mut jobs = Vec::new();
    for chunk in rows.chunks(per_block.max(1)) {
        let located = match chunk.iter().map(|&g| locate(g)).collect::<Result<Vec<_>, _>>() {
            Ok(l) => l,
            Err(e) => return Box::new(std::iter::once(Err(e))),
        };
        let mut used: Vec<usize> = located.iter().map(|&(b, _)| b).collect();
        used.sort_unstable();
        used.dedup();
        let picks: Vec<(u32, u32)> =
            located.iter().map(|&(b, r)| (used.binary_search(&b).expect("used block") as u32, r)).collect();
        jobs.push((used.iter().map(|&b| blocks[b].clone()).collect(), encode(&picks)));
    }
    if jobs.is_empty() {
        return Box::new(empty(blocks).into_iter().flatten().map(Ok));
    }
    crate::exec::combine(jobs, Code::of(gather_combine as CombineFn), exec, "Gather")
}

/// Joins its parts and keeps `len` rows from `skip` on.
fn concat_range(parts: Vec<RecordBatch>, _: &StageCtx, arg_bytes: &[u8]) -> Result<RecordBatch, Error> {
    let (skip, len): (u64, u64) = arg(arg_bytes)?;
    let Some(all) = concat(&parts)? else { return Err(invalid("joining no parts".into())) };
    let skip = (skip as usize).min(all.num_rows());
    Ok(all.slice(skip, (len as usize).min(all.num_rows() - skip)))
}

/// For each `(start, end)` row range: the blocks it overlaps, and where
/// in their join it starts and how long it is.
fn range_jobs(blocks: &[BlockRef], ranges: Vec<(u64, u64)>) -> Vec<(Vec<BlockRef>, (u64, u64))> {
    let (starts, _) = starts(blocks);
    ranges
        .into_iter()
        .map(|(s, e)| {
            let mut used: Vec<usize> =
                (0..blocks.len()).filter(|&b| starts[b] < e && starts[b] + blocks[b].rows > s).collect();
            if used.is_empty() && !blocks.is_empty() {
                // An empty range: an empty block with the schema.
                used.push(0);
            }
            let skip = used.first().map_or(0, |&b| s.saturating_sub(starts[b]));
            (used.iter().map(|&b| blocks[b].clone()).collect(), (skip, e - s))
        })
        .collect()
}

/// One new block per `(start, end)` row range, each joined by a task from
/// the blocks the range overlaps.
pub(crate) fn contiguous(blocks: &[BlockRef], ranges: Vec<(u64, u64)>, exec: &Exec) -> BlockStream {
    if blocks.is_empty() {
        return Box::new(std::iter::empty());
    }
    let jobs = range_jobs(blocks, ranges).into_iter().map(|(parts, range)| (parts, encode(&range))).collect();
    crate::exec::combine(jobs, Code::of(concat_range as CombineFn), exec, "Repartition")
}

/// Contiguous rows `start..end` of the dataset, as blocks (whole blocks
/// reused, the two ends sliced).
pub(crate) fn range_of(blocks: &[BlockRef], start: u64, end: u64) -> Result<Vec<BlockRef>, Error> {
    let mut out = Vec::new();
    let mut offset = 0u64;
    for b in blocks {
        let (lo, hi) = (offset, offset + b.rows);
        offset = hi;
        if hi <= start || lo >= end {
            continue;
        }
        let s = start.max(lo) - lo;
        let e = end.min(hi) - lo;
        out.push(crate::exec::slice(b, s, e - s)?);
    }
    if out.is_empty() {
        out = empty(blocks)?;
    }
    Ok(out)
}

// ---- zip ----

/// `parts[0]` beside the rows the argument picks from the other parts.
fn zip_combine(parts: Vec<RecordBatch>, ctx: &StageCtx, arg_bytes: &[u8]) -> Result<RecordBatch, Error> {
    let mut parts = parts.into_iter();
    let left = parts.next().ok_or_else(|| invalid("zip: no left block".into()))?;
    let right = concat_range(parts.collect(), ctx, arg_bytes)?;
    let mut fields: Vec<Field> = left.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    let mut columns = left.columns().to_vec();
    for (f, c) in right.schema().fields().iter().zip(right.columns()) {
        let mut name = f.name().clone();
        while fields.iter().any(|g| g.name() == &name) {
            name.push_str("_1");
        }
        fields.push(f.as_ref().clone().with_name(name));
        columns.push(c.clone());
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| invalid(format!("zip: {e}")))
}

/// `left`'s blocks, each beside the same rows of `right` (which has as
/// many rows): one task per block of `left`.
pub(crate) fn zip(left: &[BlockRef], right: &[BlockRef], exec: &Exec) -> BlockStream {
    let mut offset = 0;
    let ranges = left
        .iter()
        .map(|b| {
            offset += b.rows;
            (offset - b.rows, offset)
        })
        .collect();
    let jobs = left
        .iter()
        .zip(range_jobs(right, ranges))
        .map(|(l, (parts, range))| (std::iter::once(l.clone()).chain(parts).collect(), encode(&range)))
        .collect();
    crate::exec::combine(jobs, Code::of(zip_combine as CombineFn), exec, "Zip")
}
