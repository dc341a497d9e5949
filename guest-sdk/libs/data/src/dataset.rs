//! [`Dataset`]: the lazy, immutable handle users build and consume.

use crate::batch::Batch;
use crate::block::{self, BlockRef, invalid};
use crate::context::DataContext;
use crate::exchange::{self, Agg};
use crate::exec::{self, BlockStream};
use crate::ops::{self, Row};
use crate::plan::{Barrier, Code, Node};
use crate::pool::{ActorPool, BatchMapper, PoolSpec};
use crate::stats::Stats;
use crate::write::{Format, WriteArg};
use arrow_array::{Array, RecordBatch};
use arrow_schema::SchemaRef;
use std::cell::RefCell;
use std::rc::Rc;
use wray_guest_core::{Error, Rng};

/// A distributed dataset: rows in Arrow blocks in the object store, and a
/// plan of transforms not yet run — Ray's `ray.data.Dataset`.
///
/// Transforms (`map`, `filter`, `random_shuffle`, ...) return a new dataset
/// at once and run nothing; consuming it (`iter_batches`, `take`, `count`,
/// `write_parquet`, ...) runs the plan as a stream of tasks. Consuming it
/// again runs it again (call [`materialize`](Dataset::materialize) to keep
/// the blocks).
///
/// Functions passed to transforms run in tasks, in other instances of the
/// job, so they must not capture variables (a compile-time error says so);
/// what they need goes in through the `_with` variants.
///
/// ```no_run
/// # fn main() -> Result<(), wray::Error> {
/// let ds = wray::data::range(10_000)
///     .map(|x: u64| x * x)
///     .filter(|x: &u64| x % 2 == 0)
///     .flat_map(|x: u64| [x, x * x * x]);
/// let first: Vec<u64> = ds.take(10)?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Dataset {
    node: Rc<Node>,
    last: Rc<RefCell<Stats>>,
}

/// A dataset is a value: its plan (the blocks it names travel as object
/// refs), so it can be passed to a task or an actor, which runs it there.
impl serde::Serialize for Dataset {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.node.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Dataset {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Dataset::from_node(Rc::<Node>::deserialize(d)?))
    }
}

/// How [`Dataset::iter_batches_with`] cuts and orders batches.
#[derive(Clone, Debug)]
pub struct IterBatches {
    /// Rows per batch (the last may be smaller).
    pub batch_size: usize,
    /// Drop a last batch smaller than `batch_size`.
    pub drop_last: bool,
    /// Shuffle rows within a buffer of at least this many rows before
    /// cutting batches (Ray's `local_shuffle_buffer_size`); `None`: keep
    /// the order.
    pub local_shuffle_buffer_size: Option<usize>,
    /// Seed of the local shuffle.
    pub local_shuffle_seed: u64,
    /// Blocks the producing stages run ahead of the consumer (Ray's
    /// `prefetch_batches`, in blocks); `None`: the context's in-flight bound.
    pub prefetch_blocks: Option<usize>,
}

impl IterBatches {
    /// Batches of `batch_size` rows, in order.
    pub fn new(batch_size: usize) -> IterBatches {
        IterBatches {
            batch_size: batch_size.max(1),
            drop_last: false,
            local_shuffle_buffer_size: None,
            local_shuffle_seed: 0,
            prefetch_blocks: None,
        }
    }
}

/// Cuts blocks into batches as `options` say. Rows wait in a buffer of at
/// least `local_shuffle_buffer_size` rows, shuffled together once each time
/// it is refilled (not once per batch).
pub(crate) fn batches(
    mut blocks: impl Iterator<Item = Result<Batch, Error>>,
    options: IterBatches,
) -> impl Iterator<Item = Result<Batch, Error>> {
    let want = options.batch_size.max(options.local_shuffle_buffer_size.unwrap_or(0));
    let mut rng = Rng::new(options.local_shuffle_seed);
    // Rows not handed out yet, shuffled if asked.
    let mut current: Option<RecordBatch> = None;
    let mut exhausted = false;
    std::iter::from_fn(move || {
        let have = current.as_ref().map_or(0, RecordBatch::num_rows);
        if have < options.batch_size && !exhausted {
            let mut parts: Vec<RecordBatch> = current.take().into_iter().collect();
            let mut rows = have;
            while rows < want {
                match blocks.next() {
                    Some(Ok(b)) => {
                        rows += b.num_rows();
                        parts.push(b.0);
                    }
                    Some(Err(e)) => {
                        exhausted = true;
                        return Some(Err(e));
                    }
                    None => {
                        exhausted = true;
                        break;
                    }
                }
            }
            let refilled = match parts.first().map(|p| block::concat(&p.schema(), &parts)) {
                None => None,
                Some(Ok(all)) if options.local_shuffle_buffer_size.is_some() => {
                    let mut order: Vec<u32> = (0..all.num_rows() as u32).collect();
                    rng.shuffle(&mut order);
                    match arrow_select::take::take_record_batch(&all, &arrow_array::UInt32Array::from(order)) {
                        Ok(a) => Some(a),
                        Err(e) => return Some(Err(invalid(format!("shuffling a batch: {e}")))),
                    }
                }
                Some(Ok(all)) => Some(all),
                Some(Err(e)) => return Some(Err(e)),
            };
            current = refilled;
        }
        let rest = current.take()?;
        let rows = rest.num_rows();
        if rows == 0 || (exhausted && options.drop_last && rows < options.batch_size) {
            return None;
        }
        let n = options.batch_size.min(rows);
        if rows > n {
            current = Some(rest.slice(n, rows - n));
        }
        Some(Ok(Batch(rest.slice(0, n))))
    })
}

/// What a write did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// The files written, in block order.
    pub files: Vec<String>,
    /// Rows written.
    pub rows: u64,
}

impl Dataset {
    pub(crate) fn node(&self) -> &Rc<Node> {
        &self.node
    }

    pub(crate) fn from_node(node: Rc<Node>) -> Dataset {
        Dataset { node, last: Rc::new(RefCell::new(Stats::default())) }
    }

    fn then(&self, node: Node) -> Dataset {
        Dataset::from_node(Rc::new(node))
    }

    fn stage(&self, stage: crate::plan::Stage) -> Dataset {
        self.then(Node::Stage { input: self.node.clone(), stage })
    }

    // ---- row-wise transforms ----

    /// Maps each row (Ray's `map`). The closure names the row type: a
    /// struct reads the columns of its fields, any other type the only
    /// column; it returns the new row likewise.
    pub fn map<T: Row, U: Row, F: Fn(T) -> U + Copy + 'static>(&self, f: F) -> Dataset {
        let _ = f;
        self.stage(ops::row_stage(ops::name::<F>("Map"), ops::map::<F, T, U>, &()).keeping_rows())
    }

    /// [`map`](Dataset::map) with state: `state` is sent to every task and
    /// lent to `f` for each row.
    pub fn map_with<S: Row, T: Row, U: Row, F: Fn(&S, T) -> U + Copy + 'static>(&self, state: S, f: F) -> Dataset {
        let _ = f;
        self.stage(ops::row_stage(ops::name::<F>("Map"), ops::map_with::<F, S, T, U>, &state).keeping_rows())
    }

    /// Maps each row to any number of rows (Ray's `flat_map`).
    pub fn flat_map<T: Row, U: Row, I: IntoIterator<Item = U>, F: Fn(T) -> I + Copy + 'static>(&self, f: F) -> Dataset {
        let _ = f;
        self.stage(ops::row_stage(ops::name::<F>("FlatMap"), ops::flat_map::<F, T, I, U>, &()))
    }

    /// Keeps the rows for which `f` is true (Ray's `filter`). The columns
    /// pass through untouched: `T` may read only some of them.
    pub fn filter<T: Row, F: Fn(&T) -> bool + Copy + 'static>(&self, f: F) -> Dataset {
        let _ = f;
        self.stage(ops::row_stage(ops::name::<F>("Filter"), ops::filter::<F, T>, &()))
    }

    /// Maps batches of at most `batch_size` rows (whole blocks if `None`)
    /// in stateless tasks (Ray's `map_batches` with a function).
    pub fn map_batches<F: Fn(Batch) -> Result<Batch, Error> + Copy + 'static>(
        &self,
        f: F,
        batch_size: impl Into<Option<usize>>,
    ) -> Dataset {
        let _ = f;
        let size = batch_size.into().map(|s| s.max(1) as u64);
        self.stage(ops::stage(ops::name::<F>("MapBatches"), ops::map_batches::<F>, &size))
    }

    /// [`map_batches`](Dataset::map_batches) with state sent to every task.
    pub fn map_batches_with<S: Row, F: Fn(&S, Batch) -> Result<Batch, Error> + Copy + 'static>(
        &self,
        state: S,
        f: F,
        batch_size: impl Into<Option<usize>>,
    ) -> Dataset {
        let _ = f;
        let size = batch_size.into().map(|s| s.max(1) as u64);
        let state = wray_codec::encode(&state).unwrap_or_else(|e| panic!("wray::data: {e}"));
        self.stage(ops::stage(ops::name::<F>("MapBatches"), ops::map_batches_with::<F, S>, &(size, state)))
    }

    /// Maps batches on a pool of actors, each holding an `M` built once
    /// from `args` (Ray's `map_batches` with a callable class and
    /// `ActorPoolStrategy`).
    pub fn map_batches_on_actors<M: BatchMapper>(
        &self,
        args: M::Args,
        pool: ActorPool,
        batch_size: impl Into<Option<usize>>,
    ) -> Dataset {
        let spec = PoolSpec {
            name: format!("MapBatches({})", std::any::type_name::<M>()),
            code: Code::of(crate::pool::new_mapper::<M> as crate::pool::NewFn),
            args: wray_codec::encode(&args).unwrap_or_else(|e| panic!("wray::data: {e}")),
            pool,
            batch_size: batch_size.into().map(|s| s.max(1) as u64),
        };
        self.then(Node::Pool { input: self.node.clone(), pool: spec })
    }

    /// Adds (or replaces) column `name`, computed from each batch.
    pub fn add_column<V: Row, F: Fn(&Batch) -> Result<Vec<V>, Error> + Copy + 'static>(
        &self,
        name: &str,
        f: F,
    ) -> Dataset {
        let _ = f;
        self.stage(ops::stage(format!("AddColumn({name})"), ops::add_column::<F, V>, &name.to_string()).keeping_rows())
    }

    /// Drops columns.
    pub fn drop_columns(&self, columns: &[&str]) -> Dataset {
        let names: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        self.stage(ops::stage(format!("DropColumns({})", names.join(", ")), ops::drop_columns, &names).keeping_rows())
    }

    /// Keeps only these columns, in this order.
    pub fn select_columns(&self, columns: &[&str]) -> Dataset {
        let names: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        self.stage(
            ops::stage(format!("SelectColumns({})", names.join(", ")), ops::select_columns, &names).keeping_rows(),
        )
    }

    /// Renames columns: `(from, to)` pairs.
    pub fn rename_columns(&self, renames: &[(&str, &str)]) -> Dataset {
        let pairs: Vec<(String, String)> = renames.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        self.stage(ops::stage("RenameColumns(..)".into(), ops::rename_columns, &pairs).keeping_rows())
    }

    /// The first `n` rows; the stream stops (and cancels what it was
    /// running) once they are produced.
    pub fn limit(&self, n: u64) -> Dataset {
        self.then(Node::Limit { input: self.node.clone(), rows: n })
    }

    // ---- all-to-all ----

    /// Shuffles the rows randomly (Ray's `random_shuffle`); the same seed
    /// gives the same order on the same blocks.
    pub fn random_shuffle(&self, seed: Option<u64>) -> Dataset {
        let seed = seed.unwrap_or_else(fresh_seed);
        self.then(Node::Exchange { input: self.node.clone(), exchange: exchange::shuffle(seed) })
    }

    /// Shuffles the order of the blocks, not the rows within them (cheap).
    pub fn randomize_block_order(&self, seed: Option<u64>) -> Dataset {
        self.barrier(Barrier::RandomizeBlockOrder { seed: seed.unwrap_or_else(fresh_seed) })
    }

    /// `n` blocks of (nearly) equal row counts, order kept.
    pub fn repartition(&self, n: usize) -> Dataset {
        self.barrier(Barrier::Repartition { n: n.max(1) as u64 })
    }

    /// Sorts by column `key` (Ray's `sort`).
    pub fn sort(&self, key: &str, descending: bool) -> Dataset {
        self.sort_by(&[key], descending)
    }

    /// Sorts by several columns, the first most significant.
    pub fn sort_by(&self, keys: &[&str], descending: bool) -> Dataset {
        self.barrier(Barrier::Sort { keys: keys.iter().map(|k| k.to_string()).collect(), descending })
    }

    /// Groups rows by the values of `keys` (Ray's `groupby`).
    pub fn groupby(&self, keys: &[&str]) -> GroupedData {
        GroupedData { ds: self.clone(), keys: keys.iter().map(|k| k.to_string()).collect() }
    }

    /// Whole-dataset aggregations: one row, a column per aggregation.
    pub fn aggregate(&self, aggs: Vec<Agg>) -> Dataset {
        self.then(Node::Exchange { input: self.node.clone(), exchange: exchange::group(vec![], aggs, None) })
    }

    fn scalar(&self, agg: Agg) -> Result<f64, Error> {
        let name = agg.column_name();
        let out = self.aggregate(vec![agg]).take_all_batches()?;
        out.iter()
            .find(|b| b.num_rows() > 0)
            .and_then(|b| b.column::<f64>(&name).ok().map(|c| c[0]))
            .ok_or_else(|| invalid(format!("{name}: the dataset is empty")))
    }

    /// Sum of a column.
    pub fn sum(&self, column: &str) -> Result<f64, Error> {
        self.scalar(Agg::Sum(column.into()))
    }
    /// Mean of a column.
    pub fn mean(&self, column: &str) -> Result<f64, Error> {
        self.scalar(Agg::Mean(column.into()))
    }
    /// Smallest value of a column.
    pub fn min(&self, column: &str) -> Result<f64, Error> {
        self.scalar(Agg::Min(column.into()))
    }
    /// Largest value of a column.
    pub fn max(&self, column: &str) -> Result<f64, Error> {
        self.scalar(Agg::Max(column.into()))
    }
    /// Sample standard deviation of a column (`ddof = 1`).
    pub fn std(&self, column: &str) -> Result<f64, Error> {
        self.scalar(Agg::Std(column.into()))
    }

    fn barrier(&self, barrier: Barrier) -> Dataset {
        self.then(Node::Barrier { input: self.node.clone(), barrier })
    }

    // ---- combining and splitting ----

    /// This dataset's rows, then `other`'s.
    pub fn union(&self, other: &Dataset) -> Dataset {
        self.then(Node::Union { inputs: vec![self.node.clone(), other.node.clone()] })
    }

    /// Row `i` of the result has the columns of row `i` of both (Ray's
    /// `zip`); both must have as many rows. A column of `other` whose name
    /// is taken gets the suffix `_1`.
    pub fn zip(&self, other: &Dataset) -> Result<Dataset, Error> {
        let exec = self.start();
        let left = exec::collect(exec::stream(&self.node, &exec)?)?;
        let right = exec::collect(exec::stream(&other.node, &exec)?)?;
        let (nl, nr): (u64, u64) = (left.iter().map(|b| b.rows).sum(), right.iter().map(|b| b.rows).sum());
        if nl != nr {
            return Err(invalid(format!("zip: {nl} rows and {nr} rows")));
        }
        let blocks = exec::collect(exchange::zip(&left, &right, &exec))?;
        Ok(Dataset::from_node(Rc::new(Node::Blocks { blocks })))
    }

    /// Splits at row positions: `[a, b]` gives rows `..a`, `a..b`, `b..`
    /// (Ray's `split_at_indices`). Runs the dataset.
    pub fn split_at_indices(&self, indices: &[u64]) -> Result<Vec<Dataset>, Error> {
        let blocks = exec::collect(self.execute()?)?;
        let total: u64 = blocks.iter().map(|b| b.rows).sum();
        let mut cuts = vec![0];
        cuts.extend(indices.iter().map(|&i| i.min(total)));
        cuts.push(total);
        if cuts.windows(2).any(|w| w[0] > w[1]) {
            return Err(invalid(format!("split_at_indices: {indices:?} is not in increasing order")));
        }
        cuts.windows(2)
            .map(|w| Ok(Dataset::from_node(Rc::new(Node::Blocks { blocks: exchange::range_of(&blocks, w[0], w[1])? }))))
            .collect()
    }

    /// `n` datasets of (nearly) equal row counts, in order (Ray's
    /// `split(n, equal=True)`). Runs the dataset.
    pub fn split(&self, n: usize) -> Result<Vec<Dataset>, Error> {
        let n = n.max(1) as u64;
        let total = self.count()?;
        let cuts: Vec<u64> = (1..n).map(|i| i * total / n).collect();
        self.split_at_indices(&cuts)
    }

    /// `(train, test)`, `test_size` of the rows (rounded up) in the test
    /// part. With a seed the rows are drawn as scikit-learn's
    /// `train_test_split(..., random_state=seed)` draws them (the same
    /// numpy permutation), so results compare on the same split; without,
    /// the last rows are the test part.
    pub fn train_test_split(&self, test_size: f64, seed: Option<u32>) -> Result<(Dataset, Dataset), Error> {
        if !(0.0..=1.0).contains(&test_size) {
            return Err(invalid(format!("train_test_split: test_size {test_size} is not in 0..=1")));
        }
        let exec = self.start();
        let blocks = exec::collect(exec::stream(&self.node, &exec)?)?;
        let total: u64 = blocks.iter().map(|b| b.rows).sum();
        let n_test = ((test_size * total as f64).ceil() as u64).min(total);
        let ds = |blocks: Vec<BlockRef>| Dataset::from_node(Rc::new(Node::Blocks { blocks }));
        match seed {
            None => Ok((
                ds(exchange::range_of(&blocks, 0, total - n_test)?),
                ds(exchange::range_of(&blocks, total - n_test, total)?),
            )),
            Some(seed) => {
                let perm: Vec<u64> =
                    wray_guest_core::numpy_permutation(total as usize, seed).into_iter().map(|i| i as u64).collect();
                let (test, train) = perm.split_at(n_test as usize);
                let per = DataContext::current().rows_per_block;
                let gather = |rows| exec::collect(exchange::gather(&blocks, rows, per, &exec));
                Ok((ds(gather(train)?), ds(gather(test)?)))
            }
        }
    }

    /// The dataset `times` times over (epochs); each pass runs the plan
    /// again unless it was materialised.
    pub fn repeat(&self, times: u64) -> Dataset {
        self.then(Node::Repeat { input: self.node.clone(), times: Some(times) })
    }

    /// The dataset over and over, without end: consume it with `take`,
    /// `limit` or by breaking out of the iteration.
    pub fn repeat_forever(&self) -> Dataset {
        self.then(Node::Repeat { input: self.node.clone(), times: None })
    }

    /// `n` iterators that share one run of the dataset, each taking the next
    /// block as it asks (Ray's `streaming_split`): hand one to each Train
    /// worker (they are values, so they go to other tasks and actors as
    /// arguments). Every iteration over an iterator is one epoch; the next
    /// epoch starts once every iterator has finished the current one.
    pub fn streaming_split(&self, n: usize) -> Result<Vec<crate::split::DataIterator>, Error> {
        crate::split::streaming_split(self, n, crate::split::StreamingSplit::default())
    }

    /// [`streaming_split`](Dataset::streaming_split) with options: with
    /// `equal`, every iterator gets the same number of rows each epoch, as
    /// data-parallel training needs (Ray's `streaming_split(n, equal=True)`).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), wray::Error> {
    /// use wray::data::{self, StreamingSplit};
    /// let shares = data::range(1001).streaming_split_with(2, StreamingSplit { equal: true })?;
    /// // Each share yields 500 rows an epoch; one row is dropped.
    /// # Ok(()) }
    /// ```
    pub fn streaming_split_with(
        &self,
        n: usize,
        options: crate::split::StreamingSplit,
    ) -> Result<Vec<crate::split::DataIterator>, Error> {
        crate::split::streaming_split(self, n, options)
    }

    /// Runs the plan and keeps its blocks in the object store: consuming
    /// the result runs nothing again.
    pub fn materialize(&self) -> Result<Dataset, Error> {
        let blocks = exec::collect(self.execute()?)?;
        self.finished();
        Ok(Dataset { node: Rc::new(Node::Blocks { blocks }), last: self.last.clone() })
    }

    // ---- consuming ----

    /// Starts a run of the plan; its statistics become [`stats`](Dataset::stats).
    fn start(&self) -> exec::Exec {
        let stats = Stats::new(DataContext::current().progress);
        *self.last.borrow_mut() = stats.clone();
        exec::Exec::new(stats)
    }

    fn execute(&self) -> Result<BlockStream, Error> {
        exec::stream(&self.node, &self.start())
    }

    fn finished(&self) {
        if DataContext::current().progress {
            let stats = self.last.borrow();
            stats.finish_line();
            for line in stats.to_string().lines() {
                eprintln!("wray::data: {line}");
            }
        }
    }

    /// The blocks' batches, one per block, as the stream produces them.
    pub fn iter_blocks(&self) -> Result<impl Iterator<Item = Result<Batch, Error>> + use<>, Error> {
        self.fetch_blocks(self.start())
    }

    fn fetch_blocks(&self, exec: exec::Exec) -> Result<impl Iterator<Item = Result<Batch, Error>> + use<>, Error> {
        let mut stream = exec::stream(&self.node, &exec)?;
        let this = self.clone();
        let mut done = false;
        Ok(std::iter::from_fn(move || {
            if done {
                return None;
            }
            match stream.next() {
                Some(Ok(b)) => Some(block::fetch(&b).map(Batch)),
                Some(Err(e)) => {
                    done = true;
                    Some(Err(e))
                }
                None => {
                    done = true;
                    this.finished();
                    None
                }
            }
        }))
    }

    /// The rows, read as `T`, in order.
    pub fn iter_rows<T: Row>(&self) -> Result<impl Iterator<Item = Result<T, Error>> + use<T>, Error> {
        let blocks = self.iter_blocks()?;
        Ok(blocks.flat_map(|b| {
            let rows: Vec<Result<T, Error>> = match b.and_then(|b| b.rows::<T>()) {
                Ok(rows) => rows.into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            };
            rows
        }))
    }

    /// Batches of `batch_size` rows, in order.
    pub fn iter_batches(&self, batch_size: usize) -> Result<impl Iterator<Item = Result<Batch, Error>> + use<>, Error> {
        self.iter_batches_with(IterBatches::new(batch_size))
    }

    /// Batches cut, shuffled and prefetched as `options` say.
    pub fn iter_batches_with(
        &self,
        options: IterBatches,
    ) -> Result<impl Iterator<Item = Result<Batch, Error>> + use<>, Error> {
        let mut exec = self.start();
        if let Some(p) = options.prefetch_blocks {
            exec.in_flight = p.max(1);
        }
        Ok(batches(self.fetch_blocks(exec)?, options))
    }

    /// The first `n` rows as `T` (runs only as much of the plan as needed).
    pub fn take<T: Row>(&self, n: usize) -> Result<Vec<T>, Error> {
        self.limit(n as u64).iter_rows::<T>()?.collect()
    }

    /// Every row as `T`.
    pub fn take_all<T: Row>(&self) -> Result<Vec<T>, Error> {
        self.iter_rows::<T>()?.collect()
    }

    /// Every block's batch.
    pub fn take_all_batches(&self) -> Result<Vec<Batch>, Error> {
        self.iter_blocks()?.collect()
    }

    /// Prints the first `n` rows, one JSON object per line (Ray's `show`).
    pub fn show(&self, n: usize) -> Result<(), Error> {
        for b in self.limit(n as u64).iter_blocks()? {
            let b = b?;
            let mut out = arrow_json::LineDelimitedWriter::new(Vec::new());
            out.write(b.record_batch()).map_err(|e| invalid(format!("show: {e}")))?;
            out.finish().map_err(|e| invalid(format!("show: {e}")))?;
            print!("{}", String::from_utf8_lossy(&out.into_inner()));
        }
        Ok(())
    }

    /// Rows in the dataset: from metadata when the plan keeps row counts
    /// known (reads of Parquet, `range`, column edits), otherwise by
    /// running it — counting never fetches a block.
    pub fn count(&self) -> Result<u64, Error> {
        if let Some(n) = self.node.known_rows() {
            return Ok(n);
        }
        let mut n = 0;
        for b in self.execute()? {
            n += b?.rows;
        }
        self.finished();
        Ok(n)
    }

    /// The schema: of the first block (which runs the plan up to it).
    pub fn schema(&self) -> Result<SchemaRef, Error> {
        match self.limit(1).iter_blocks()?.next() {
            Some(b) => Ok(b?.schema()),
            None => Err(invalid("schema: the dataset has no blocks".into())),
        }
    }

    /// Column names, from [`schema`](Dataset::schema).
    pub fn columns(&self) -> Result<Vec<String>, Error> {
        Ok(self.schema()?.fields().iter().map(|f| f.name().clone()).collect())
    }

    /// The statistics of the last run, per operator (Ray's `ds.stats()`).
    pub fn stats(&self) -> Stats {
        self.last.borrow().clone()
    }

    /// The plan's operators, source first.
    pub fn plan(&self) -> String {
        self.node.describe()
    }

    fn write(&self, dir: &str, format: Format) -> Result<Written, Error> {
        // Made here, by the consumer, as Ray's writers make their output
        // path; the write tasks expect it to exist (on a cluster, a task
        // whose node does not see it fails rather than scatter files over
        // nodes' own disks).
        let made = match std::fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => return Err(invalid(format!("{} {dir}: not a directory", format.op()))),
            Err(_) => std::fs::create_dir_all(dir),
        };
        made.map_err(|e| {
            invalid(format!("{} {dir}: {e} (grant the directory with `wray run --dir HOST::GUEST`)", format.op()))
        })?;
        let arg = WriteArg { dir: dir.to_string(), id: crate::write::write_id(), format };
        let ds = self.stage(ops::stage(format.op().into(), crate::write::write, &arg));
        let mut written = Written { files: Vec::new(), rows: 0 };
        for b in ds.iter_blocks()? {
            let b = b?;
            let paths = b.array("path")?.clone();
            let paths = paths.as_any().downcast_ref::<arrow_array::StringArray>().expect("write returns paths");
            written.files.extend(paths.iter().flatten().map(str::to_string));
            written.rows += b.column::<u64>("rows")?.iter().sum::<u64>();
        }
        *self.last.borrow_mut() = ds.stats();
        Ok(written)
    }

    /// Writes one CSV file per block into `dir`, made (with its parents) if
    /// missing; it must lie in a directory granted to the job.
    pub fn write_csv(&self, dir: &str) -> Result<Written, Error> {
        self.write(dir, Format::Csv)
    }

    /// Writes one JSON-lines file per block into `dir` (as `write_csv`).
    pub fn write_json(&self, dir: &str) -> Result<Written, Error> {
        self.write(dir, Format::Json)
    }

    /// Writes one Parquet file per block into `dir` (as `write_csv`).
    pub fn write_parquet(&self, dir: &str) -> Result<Written, Error> {
        self.write(dir, Format::Parquet)
    }
}

fn fresh_seed() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    nanos as u64
}

/// Rows grouped by key columns: aggregate them or map each group.
pub struct GroupedData {
    ds: Dataset,
    keys: Vec<String>,
}

impl GroupedData {
    /// One row per group: the keys, then a column per aggregation.
    pub fn aggregate(&self, aggs: Vec<Agg>) -> Dataset {
        self.ds.then(Node::Exchange {
            input: self.ds.node.clone(),
            exchange: exchange::group(self.keys.clone(), aggs, None),
        })
    }
    /// Rows per group: column `count()`.
    pub fn count(&self) -> Dataset {
        self.aggregate(vec![Agg::Count])
    }
    /// Column `sum(col)`.
    pub fn sum(&self, column: &str) -> Dataset {
        self.aggregate(vec![Agg::Sum(column.into())])
    }
    /// Column `mean(col)`.
    pub fn mean(&self, column: &str) -> Dataset {
        self.aggregate(vec![Agg::Mean(column.into())])
    }
    /// Column `min(col)`.
    pub fn min(&self, column: &str) -> Dataset {
        self.aggregate(vec![Agg::Min(column.into())])
    }
    /// Column `max(col)`.
    pub fn max(&self, column: &str) -> Dataset {
        self.aggregate(vec![Agg::Max(column.into())])
    }
    /// Column `std(col)` (`ddof = 1`).
    pub fn std(&self, column: &str) -> Dataset {
        self.aggregate(vec![Agg::Std(column.into())])
    }

    /// Runs `f` on each group's rows (sorted by key) and joins what it
    /// returns — any aggregation of your own (Ray's `map_groups`).
    pub fn map_groups<F: Fn(Batch) -> Result<Batch, Error> + Copy + 'static>(&self, f: F) -> Dataset {
        let _ = f;
        let code = Code::of(ops::map_batches::<F> as crate::plan::BlockFn);
        let arg = wray_codec::encode(&None::<u64>).expect("encodes");
        self.ds.then(Node::Exchange {
            input: self.ds.node.clone(),
            exchange: exchange::group(self.keys.clone(), vec![], Some((code, arg))),
        })
    }
}
