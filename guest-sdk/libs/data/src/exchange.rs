//! All-to-all operators: `random_shuffle`, `sort`, `groupby` and the
//! row-moving helpers behind `repartition`, `split` and
//! `train_test_split`. Each runs as an exchange: a partition task per input
//! block cuts it into one part per output, then a combine task per output
//! joins its parts (Ray's push-based shuffle without the push). Its input is
//! materialised first; its output streams.

use crate::block::{self, BlockRef, invalid};
use crate::exec::{BlockStream, Exec};
use crate::plan::Node;
use crate::plan::{Code, CombineFn, Exchange, Outputs, PartitionFn, StageCtx};
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
        outputs: Outputs::Inputs,
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
        outputs: Outputs::Fixed(blocks.len()),
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
    // Aggregations are combined map-side: each block sends one partial row
    // per group, not its rows (a whole-dataset sum moves one row a block).
    let batch = match a.map {
        Some(_) => batch,
        None => partials(&batch, &a.keys, &a.aggs)?,
    };
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

/// One aggregation's state over part of a group: enough to merge with
/// another part's and to give every `Agg` at the end.
#[derive(Clone, Copy)]
struct Partial {
    /// Values that were not null.
    n: f64,
    sum: f64,
    /// Sum of squared deviations from the mean (merged with Chan's formula).
    m2: f64,
    min: f64,
    max: f64,
}

impl Partial {
    const EMPTY: Partial = Partial { n: 0.0, sum: 0.0, m2: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY };

    fn of(values: &Float64Array, start: usize, len: usize) -> Partial {
        let xs = || (start..start + len).filter(|&i| values.is_valid(i)).map(|i| values.value(i));
        let (n, sum) = xs().fold((0.0, 0.0), |(n, s), x| (n + 1.0, s + x));
        if n == 0.0 {
            return Partial::EMPTY;
        }
        let mean = sum / n;
        Partial {
            n,
            sum,
            m2: xs().map(|x| (x - mean).powi(2)).sum(),
            min: xs().fold(f64::INFINITY, f64::min),
            max: xs().fold(f64::NEG_INFINITY, f64::max),
        }
    }

    fn merge(self, o: Partial) -> Partial {
        if self.n == 0.0 {
            return o;
        }
        if o.n == 0.0 {
            return self;
        }
        let n = self.n + o.n;
        let delta = o.sum / o.n - self.sum / self.n;
        Partial {
            n,
            sum: self.sum + o.sum,
            m2: self.m2 + o.m2 + delta * delta * self.n * o.n / n,
            min: self.min.min(o.min),
            max: self.max.max(o.max),
        }
    }

    fn finish(self, agg: &Agg) -> Option<f64> {
        match agg {
            Agg::Count => None,
            Agg::Sum(_) => Some(self.sum),
            Agg::Mean(_) => (self.n > 0.0).then(|| self.sum / self.n),
            Agg::Min(_) => (self.n > 0.0).then_some(self.min),
            Agg::Max(_) => (self.n > 0.0).then_some(self.max),
            Agg::Std(_) => (self.n > 1.0).then(|| (self.m2 / (self.n - 1.0)).sqrt()),
        }
    }
}

/// The partial state's columns of aggregation `i`.
const PARTIAL_FIELDS: [&str; 5] = ["n", "sum", "m2", "min", "max"];
/// Rows per group, in partial batches.
const ROWS: &str = "__rows";

fn partial_column(i: usize, field: &str) -> String {
    format!("__{i}_{field}")
}

/// The column an aggregation reads (`Count` reads none).
fn agg_column(agg: &Agg) -> Option<&str> {
    match agg {
        Agg::Count => None,
        Agg::Sum(c) | Agg::Mean(c) | Agg::Min(c) | Agg::Max(c) | Agg::Std(c) => Some(c),
    }
}

/// The key columns of each group's first row, named as the keys.
fn group_keys(
    sorted: &RecordBatch,
    keys: &[String],
    groups: &[(usize, usize)],
) -> Result<Vec<(Field, ArrayRef)>, Error> {
    let firsts: Vec<u32> = groups.iter().map(|&(s, _)| s as u32).collect();
    let keyed = take(sorted, &firsts)?;
    Ok(keys
        .iter()
        .zip(key_columns(&keyed, keys)?)
        .map(|(k, c)| (Field::new(k, c.data_type().clone(), true), c))
        .collect())
}

fn batch_of(columns: Vec<(Field, ArrayRef)>) -> Result<RecordBatch, Error> {
    let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = columns.into_iter().unzip();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(|e| invalid(e.to_string()))
}

/// One row per group of `batch`: its keys, its row count and the partial
/// state of every aggregation.
fn partials(batch: &RecordBatch, keys: &[String], aggs: &[Agg]) -> Result<RecordBatch, Error> {
    let sorted = if keys.is_empty() { batch.clone() } else { sort_batch(batch, keys, false)? };
    let groups = runs(&sorted, keys)?;
    let mut columns = group_keys(&sorted, keys, &groups)?;
    let rows = Int64Array::from_iter_values(groups.iter().map(|&(_, n)| n as i64));
    columns.push((Field::new(ROWS, DataType::Int64, false), Arc::new(rows)));
    for (i, agg) in aggs.iter().enumerate() {
        let states: Vec<Partial> = match agg_column(agg) {
            Some(c) => {
                let values = floats(&sorted, c)?;
                groups.iter().map(|&(s, n)| Partial::of(&values, s, n)).collect()
            }
            None => vec![Partial::EMPTY; groups.len()],
        };
        let fields: [fn(&Partial) -> f64; 5] = [|p| p.n, |p| p.sum, |p| p.m2, |p| p.min, |p| p.max];
        for (name, get) in PARTIAL_FIELDS.iter().zip(fields) {
            let values = Float64Array::from_iter_values(states.iter().map(get));
            columns.push((Field::new(partial_column(i, name), DataType::Float64, false), Arc::new(values)));
        }
    }
    batch_of(columns)
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
    // Merge the partial rows of each group.
    let mut columns = group_keys(&sorted, &a.keys, &groups)?;
    let column = |name: &str| floats(&sorted, name);
    for (i, agg) in a.aggs.iter().enumerate() {
        let name = agg.column_name();
        if *agg == Agg::Count {
            let rows = key_columns(&sorted, &[ROWS.to_string()])?.remove(0);
            let rows = rows.as_any().downcast_ref::<Int64Array>().ok_or_else(|| invalid("row counts".into()))?;
            let counts =
                Int64Array::from_iter_values(groups.iter().map(|&(s, n)| (s..s + n).map(|r| rows.value(r)).sum()));
            columns.push((Field::new(&name, DataType::Int64, false), Arc::new(counts)));
            continue;
        }
        let state: Vec<Float64Array> =
            PARTIAL_FIELDS.iter().map(|f| column(&partial_column(i, f))).collect::<Result<_, _>>()?;
        let at = |r: usize| Partial {
            n: state[0].value(r),
            sum: state[1].value(r),
            m2: state[2].value(r),
            min: state[3].value(r),
            max: state[4].value(r),
        };
        let out: Float64Array =
            groups.iter().map(|&(s, n)| (s..s + n).map(at).fold(Partial::EMPTY, Partial::merge).finish(agg)).collect();
        columns.push((Field::new(&name, DataType::Float64, true), Arc::new(out)));
    }
    batch_of(columns)
}

pub(crate) fn group(keys: Vec<String>, aggs: Vec<Agg>, map: Option<(Code<crate::plan::BlockFn>, Vec<u8>)>) -> Exchange {
    let name = match (&map, keys.is_empty()) {
        (Some(_), _) => format!("GroupBy({}).map_groups", keys.join(", ")),
        (None, true) => "Aggregate".to_string(),
        (None, false) => format!("GroupBy({})", keys.join(", ")),
    };
    let outputs = if keys.is_empty() { Outputs::Fixed(1) } else { Outputs::Parallelism };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn arg_of(keys: &[&str], aggs: Vec<Agg>) -> Vec<u8> {
        encode(&GroupArg { keys: keys.iter().map(|k| k.to_string()).collect(), aggs, map: None, map_arg: Vec::new() })
    }

    /// Partials made per block and merged per group give what one pass over
    /// each whole group gives (a seeded run of uneven blocks).
    #[test]
    fn partial_aggregates_merge_to_the_whole_groups_figures() {
        let mut rng = Rng::new(7);
        let n = 1000;
        let keys: Vec<i64> = (0..n).map(|_| rng.below(5) as i64).collect();
        let values: Vec<f64> = (0..n).map(|_| f64::from(rng.normal()) * 10.0 + 3.0).collect();
        let batch = RecordBatch::try_from_iter([
            ("k", Arc::new(Int64Array::from(keys.clone())) as ArrayRef),
            ("v", Arc::new(Float64Array::from(values.clone())) as ArrayRef),
        ])
        .unwrap();
        let aggs = vec![
            Agg::Count,
            Agg::Sum("v".into()),
            Agg::Mean("v".into()),
            Agg::Min("v".into()),
            Agg::Max("v".into()),
            Agg::Std("v".into()),
        ];
        let arg = arg_of(&["k"], aggs);
        let ctx = StageCtx { index: 0, part: 0 };
        let mut parts = Vec::new();
        for (start, len) in [(0, 1), (1, 400), (401, 599)] {
            parts.extend(hash_partition(batch.slice(start, len), &ctx, &arg, 2).unwrap());
        }
        let out = concat(&[
            group_combine(parts[0..].iter().step_by(2).cloned().collect(), &ctx, &arg).unwrap(),
            group_combine(parts[1..].iter().step_by(2).cloned().collect(), &ctx, &arg).unwrap(),
        ])
        .unwrap()
        .unwrap();
        let out = sort_batch(&out, &["k".to_string()], false).unwrap();
        assert_eq!(out.num_rows(), 5);
        let col = |name: &str| floats(&out, name).unwrap();
        for g in 0..5 {
            let xs: Vec<f64> = keys.iter().zip(&values).filter(|(k, _)| **k == g).map(|(_, v)| *v).collect();
            let m = xs.len() as f64;
            let mean = xs.iter().sum::<f64>() / m;
            let std = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (m - 1.0)).sqrt();
            let r = g as usize;
            assert_eq!(col("count()").value(r), m);
            assert!((col("sum(v)").value(r) - xs.iter().sum::<f64>()).abs() < 1e-9);
            assert!((col("mean(v)").value(r) - mean).abs() < 1e-9);
            assert_eq!(col("min(v)").value(r), xs.iter().copied().fold(f64::INFINITY, f64::min));
            assert_eq!(col("max(v)").value(r), xs.iter().copied().fold(f64::NEG_INFINITY, f64::max));
            assert!((col("std(v)").value(r) - std).abs() < 1e-9, "{} vs {std}", col("std(v)").value(r));
        }
    }
}
