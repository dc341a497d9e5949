//! Boosted trees on several workers (Ray's `XGBoostTrainer`, xgboost-ray's
//! `RayParams(num_actors=...)`): the rows are split between worker actors,
//! each computes the gradients and histograms of its own rows, and the
//! histograms are summed across the workers at every node — so every worker
//! picks the same split, and the model equals the one a single process
//! trains on all the rows, bit for bit.
//!
//! Each worker reads its own rows — a shard of a dataset, or of a matrix
//! the driver put in the store — and sketches them (`wray_learn`'s
//! [`Sketch`]: each feature's values in a sample of the rows chosen by a
//! hash of each row's global number); the driver merges the sketches into
//! the feature bins and computes the initial margins from the labels, and
//! the workers bin their rows once and boost. Merged sketches give the cuts
//! one process computes from all the rows, and histograms hold integers
//! (quantized gradients), so their sum does not depend on how the rows are
//! split; they cross between workers as `allgather`s of the group, their
//! bits carried in `f32` words (an allgather moves bits, it adds nothing).

use crate::collective::{self, Group};
use crate::invalid;
use wray_data::Dataset;
use wray_guest_core::{ActorHandle, Error, ObjectRef};
use wray_learn::gbdt::{Booster, Evaluation, Objective, Params, Progress, Reducer, Sketch, Tree, base_margin, boost};
use wray_learn::{Matrix, XGBClassifier};

/// Workers one boosting run may have.
pub const MAX_GBDT_WORKERS: usize = 256;

/// Where a worker's rows come from.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub(crate) enum Source {
    /// A shard of a matrix, which the driver put in the store
    /// ([`GbdtTrainer::fit`]).
    Stored(ObjectRef<Matrix>, ObjectRef<Vec<f32>>),
    /// A shard of a dataset, which the worker reads itself
    /// ([`GbdtTrainer::fit_dataset`]), and the label column.
    Dataset(Dataset, String),
}

/// One worker's rows: where they come from, the first one's global number,
/// how many.
struct Shard {
    source: Source,
    first: u64,
    rows: u64,
}

/// Rounds between checkpoints by default.
pub const DEFAULT_CHECKPOINT_EVERY: usize = 10;

/// Trains an [`XGBClassifier`] on `num_workers` worker actors.
///
/// ```no_run
/// use wray::learn::{Matrix, XGBClassifier};
/// use wray::train::GbdtTrainer;
///
/// # fn f(x: Matrix, y: Vec<f32>) -> Result<(), wray::Error> {
/// let model = GbdtTrainer::new(XGBClassifier::new().max_depth(4)).num_workers(2).max_failures(2).fit(&x, &y)?;
/// let predicted = model.predict(&x)?;
/// # Ok(()) }
/// ```
///
/// The driver keeps the trees of every `checkpoint_every` rounds: when a
/// worker dies (its actor traps, its node goes), the trainer starts a new
/// group and the boosting goes on from the last checkpointed round, up to
/// `max_failures` times — and ends with the same model as a run without
/// failures.
pub struct GbdtTrainer {
    model: XGBClassifier,
    workers: usize,
    cpus: f64,
    checkpoint_every: usize,
    max_failures: u32,
    verbose: bool,
    fail: Option<(usize, usize)>,
    pause_ms: u64,
}

impl GbdtTrainer {
    /// A trainer for `model`'s parameters, on 2 workers of 1 CPU.
    pub fn new(model: XGBClassifier) -> GbdtTrainer {
        GbdtTrainer {
            model,
            workers: 2,
            cpus: 1.0,
            checkpoint_every: DEFAULT_CHECKPOINT_EVERY,
            max_failures: 0,
            verbose: true,
            fail: None,
            pause_ms: 0,
        }
    }

    /// Worker actors (xgboost-ray's `num_actors`).
    pub fn num_workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }

    /// CPUs each worker holds.
    pub fn cpus_per_worker(mut self, cpus: f64) -> Self {
        self.cpus = cpus;
        self
    }

    /// Rounds between checkpoints (the driver gets the trees so far).
    pub fn checkpoint_every(mut self, rounds: usize) -> Self {
        self.checkpoint_every = rounds.max(1);
        self
    }

    /// Times the worker group may be restarted after a worker dies.
    pub fn max_failures(mut self, n: u32) -> Self {
        self.max_failures = n;
        self
    }

    /// Status lines on standard error (default on): where the workers run,
    /// each checkpointed round, restarts.
    pub fn verbose(mut self, verbose: bool) -> Self {
        self.verbose = verbose;
        self
    }

    /// Makes every worker sleep this long after each round, so that a test
    /// can act while the boosting goes on (kill a node under a worker).
    #[doc(hidden)]
    pub fn pause_each_round(mut self, pause: std::time::Duration) -> Self {
        self.pause_ms = pause.as_millis().min(u128::from(u64::MAX)) as u64;
        self
    }

    /// Makes worker `rank` trap when it reaches round `round` in the first
    /// group (a real trap: its instance dies). For testing recovery.
    #[doc(hidden)]
    pub fn trap_worker_at(mut self, rank: usize, round: usize) -> Self {
        self.fail = Some((rank, round));
        self
    }

    /// Splits the rows into contiguous shards, one per worker, and boosts;
    /// returns the trained classifier.
    pub fn fit(&self, x: &Matrix, y: &[f32]) -> Result<XGBClassifier, Error> {
        self.fit_eval(x, y, None)
    }

    /// [`fit`](GbdtTrainer::fit), scoring `eval_x`/`eval_y` after every round
    /// (the model's `eval_metric`, its objective's by default) and, with
    /// `early_stopping_rounds`, stopping as one process would: the driver
    /// scores each checkpointed chunk of rounds and never lets the workers
    /// boost past the round that could decide, so the model — its trees,
    /// best round and scores — equals [`XGBClassifier::fit_with_eval`]'s.
    pub fn fit_with_eval(
        &self,
        x: &Matrix,
        y: &[f32],
        eval_x: &Matrix,
        eval_y: &[f32],
    ) -> Result<XGBClassifier, Error> {
        self.fit_eval(x, y, Some((eval_x, eval_y)))
    }

    /// [`fit`](GbdtTrainer::fit) on a dataset (Ray's
    /// `XGBoostTrainer(datasets={"train": ds}, label_column=label)`): every
    /// column but `label` is a feature, in the dataset's column order; see
    /// [`matrix_of`] for how columns are read. The dataset is run and split
    /// into one shard per worker (its blocks stay in the object store), and
    /// each worker reads its own shard; the driver never holds the rows.
    pub fn fit_dataset(&self, train: &Dataset, label: &str) -> Result<XGBClassifier, Error> {
        self.fit_shards(self.dataset_shards(train, &train.columns()?, label)?, None)
    }

    /// [`fit_with_eval`](GbdtTrainer::fit_with_eval) on datasets (Ray's
    /// `datasets={"train": ..., "valid": ...}`); both must have the same
    /// feature columns. The driver reads the evaluation set (it scores every
    /// round); the workers read the training set's shards.
    pub fn fit_dataset_with_eval(&self, train: &Dataset, eval: &Dataset, label: &str) -> Result<XGBClassifier, Error> {
        let (features, eval_features) = (train.columns()?, eval.columns()?);
        if features != eval_features {
            return Err(invalid(format!(
                "GbdtTrainer: the training set's columns {features:?} differ from the evaluation set's {eval_features:?}"
            )));
        }
        let (ex, ey) = matrix_of(eval, label)?;
        self.fit_shards(self.dataset_shards(train, &features, label)?, Some((&ex, &ey)))
    }

    fn check_workers(&self) -> Result<usize, Error> {
        let n = self.workers;
        if n == 0 || n > MAX_GBDT_WORKERS {
            return Err(invalid(format!("GbdtTrainer: {n} workers (1 to {MAX_GBDT_WORKERS})")));
        }
        Ok(n)
    }

    /// A dataset's shards, one per worker: the dataset runs (its blocks go
    /// to the store) and is split in order into nearly equal row counts.
    /// `columns` (the dataset's) are checked before anything runs; each
    /// worker checks its shard's values as it reads them.
    fn dataset_shards(&self, train: &Dataset, columns: &[String], label: &str) -> Result<Vec<Shard>, Error> {
        let n = self.check_workers()?;
        if !columns.iter().any(|c| c == label) {
            return Err(invalid(format!("GbdtTrainer: no label column {label:?} in {columns:?}")));
        }
        if columns.len() < 2 {
            return Err(invalid(format!("GbdtTrainer: the dataset has no column besides the label {label:?}")));
        }
        let mut first = 0;
        train
            .split(n)?
            .into_iter()
            .map(|part| {
                let rows = part.count()?;
                let shard = Shard { source: Source::Dataset(part, label.to_string()), first, rows };
                first += rows;
                Ok(shard)
            })
            .collect()
    }

    fn fit_eval(&self, x: &Matrix, y: &[f32], eval: Option<(&Matrix, &[f32])>) -> Result<XGBClassifier, Error> {
        let n = self.check_workers()?;
        // The labels are checked before any worker starts.
        self.model.plan(x, y)?;
        if x.rows() < n {
            return Err(invalid(format!("GbdtTrainer: {} rows for {n} workers", x.rows())));
        }
        let shards: Vec<Shard> = (0..n)
            .map(|rank| {
                let (start, end) = (rank * x.rows() / n, (rank + 1) * x.rows() / n);
                let rows: Vec<usize> = (start..end).collect();
                let source = Source::Stored(
                    wray_guest_core::try_put(&x.select(&rows))?,
                    wray_guest_core::try_put(&y[start..end].to_vec())?,
                );
                Ok(Shard { source, first: start as u64, rows: (end - start) as u64 })
            })
            .collect::<Result<_, Error>>()?;
        self.fit_shards(shards, eval)
    }

    /// Boosts on `shards`, one per worker, restarting the worker group from
    /// the last checkpoint when a worker dies.
    fn fit_shards(&self, shards: Vec<Shard>, eval: Option<(&Matrix, &[f32])>) -> Result<XGBClassifier, Error> {
        // One shard per worker (the callers checked the count).
        let n = shards.len();
        if self.model.params.early_stopping_rounds.is_some() && eval.is_none() {
            return Err(invalid("GbdtTrainer: early_stopping_rounds needs an evaluation set (fit_with_eval)".into()));
        }
        let total_rows: u64 = shards.iter().map(|s| s.rows).sum();
        if total_rows < n as u64 {
            return Err(invalid(format!("GbdtTrainer: {total_rows} rows for {n} workers")));
        }
        let mut run =
            Run { job: None, eval, scores: Scores { evaluation: None, scored: 0, stopped: false }, trees: Vec::new() };
        let mut failures = 0u32;
        let mut attempt = 0usize;
        loop {
            let fail = if attempt == 0 { self.fail } else { None };
            match self.attempt(attempt, &shards, total_rows, &mut run, fail) {
                Ok(()) => break,
                // What the driver found wrong with the data fails at once: a
                // new group would read the same rows.
                Err(e @ Error::InvalidArgument(_)) => return Err(e),
                Err(e) if failures < self.max_failures => {
                    failures += 1;
                    attempt += 1;
                    let k = run.job.as_ref().map_or(1, |j| j.k as usize);
                    // Said even when not verbose: a restart is news.
                    eprintln!(
                        "[gbdt] {e}; restarting the worker group from round {} (restart {failures} of {})",
                        run.trees.len() / k,
                        self.max_failures
                    );
                }
                Err(e) => return Err(e),
            }
        }
        let Run { job, scores, mut trees, .. } = run;
        let job = job.ok_or_else(|| invalid("GbdtTrainer: the workers never sketched their rows".into()))?;
        let objective = Objective::parse(&job.objective)?;
        let mut booster = Booster::assemble(objective, job.cuts.cuts.len(), job.base_margin, Vec::new());
        if let Some(e) = scores.evaluation {
            (booster.best_iteration, booster.eval_history) = e.finish(&mut trees);
        }
        booster.trees = trees;
        let mut model = self.model.clone();
        model.set_booster(booster);
        Ok(model)
    }

    /// The job every worker is told, from the workers' sketches and labels
    /// (merged and concatenated in rank order: global row order).
    fn plan(&self, workers: &[ActorHandle<GbdtWorker>], total_rows: u64) -> Result<Job, Error> {
        let parts = wray_guest_core::get_all(&workers.iter().map(|w| w.sketch(total_rows)).collect::<Vec<_>>())?;
        let mut sketch = Sketch::default();
        let mut labels = Vec::with_capacity(total_rows as usize);
        for (rank, (part, y)) in parts.into_iter().enumerate() {
            sketch.merge(part).map_err(|e| invalid(format!("GbdtTrainer: worker rank {rank}'s rows: {e}")))?;
            labels.extend(y);
        }
        let params = &self.model.params;
        let (objective, k) = self.model.plan_labels(&labels)?;
        let base_margin = base_margin(params, objective, k, &labels)?;
        let cuts = sketch.cuts(params.max_bin);
        Ok(Job { params: params.clone(), objective: objective.name().to_string(), k: k as u32, cuts, base_margin })
    }

    /// One worker group: each worker reads its shard; the first group's
    /// sketch their rows for the job; then they boost from the run's trees
    /// in chunks of `checkpoint_every` rounds, each chunk's trees
    /// checkpointed into the run by the driver.
    fn attempt<'e>(
        &self,
        attempt: usize,
        shards: &[Shard],
        total_rows: u64,
        run: &mut Run<'e>,
        fail: Option<(usize, usize)>,
    ) -> Result<(), Error> {
        let n = shards.len();
        let groups = collective::create_group(&format!("gbdt attempt {attempt}"), n)?;
        // The driver's handle on the group: a failed member aborts it, so
        // the others stop waiting at once.
        let group = groups[0].clone();
        let workers = groups
            .into_iter()
            .zip(shards)
            .map(|(group, s)| {
                GbdtWorker::options().num_cpus(self.cpus).try_remote(group, s.source.clone(), s.first, s.rows)
            })
            .collect::<Result<Vec<ActorHandle<GbdtWorker>>, Error>>()?;
        if self.verbose {
            // Where each rank runs, as the DataParallelTrainer says it: what
            // an operator (or a test that kills a node) looks for.
            let nodes = wray_guest_core::get_all(&workers.iter().map(|w| w.node()).collect::<Vec<_>>());
            match nodes {
                Ok(nodes) => eprintln!("[gbdt] worker ranks 0..{n} on nodes {nodes:?} (attempt {attempt})"),
                Err(e) => eprintln!("[gbdt] worker ranks 0..{n}: {e} (attempt {attempt})"),
            }
        }
        let result = (|| {
            if run.job.is_none() {
                let job = self.plan(&workers, total_rows)?;
                let objective = Objective::parse(&job.objective)?;
                run.scores.evaluation = run
                    .eval
                    .map(|(ex, ey)| {
                        Evaluation::new(&job.params, objective, job.cuts.cuts.len(), &job.base_margin, ex, ey)
                    })
                    .transpose()?;
                run.job = Some(job);
            }
            let Run { job: Some(job), scores, trees, .. } = run else {
                return Err(invalid("GbdtTrainer: the group has no job".into()));
            };
            let (k, total) = (job.k as usize, job.params.n_estimators);
            while trees.len() / k < total && !scores.stopped {
                let mut until = (trees.len() / k + self.checkpoint_every).min(total);
                if let Some(last) = scores.evaluation.as_ref().and_then(Evaluation::decided_by) {
                    until = until.min(last + 1);
                }
                let calls: Vec<ObjectRef<Option<Vec<Tree>>>> = workers
                    .iter()
                    .enumerate()
                    .map(|(rank, w)| {
                        let trap = fail.filter(|(r, _)| *r == rank).map(|(_, round)| round as u64);
                        w.boost(job.clone(), trees.clone(), until as u64, trap, self.pause_ms)
                    })
                    .collect();
                // Results as they come: the first failure aborts the group.
                let mut pending = calls.clone();
                while !pending.is_empty() {
                    let (ready, rest) = wray_guest_core::wait(&pending, 1, None);
                    for r in &ready {
                        if let Err(e) = wray_guest_core::get(r) {
                            let rank = calls.iter().position(|c| c.id() == r.id()).unwrap_or(0);
                            let reason = format!("GbdtTrainer: worker rank {rank} failed: {e}");
                            group.abort(&reason);
                            return Err(Error::TaskFailed { function: "GbdtTrainer".into(), message: reason });
                        }
                    }
                    pending = rest;
                }
                let grown = wray_guest_core::get_all(&calls)?
                    .into_iter()
                    .flatten()
                    .next()
                    .ok_or_else(|| invalid("GbdtTrainer: rank 0 returned no model".into()))?;
                *trees = grown;
                scores.score(trees, k);
                if self.verbose {
                    eprintln!("[gbdt] round {} of {total} checkpointed (attempt {attempt})", trees.len() / k);
                }
            }
            Ok(())
        })();
        for w in &workers {
            wray_guest_core::kill(w);
        }
        result
    }
}

/// A dataset's rows as a feature [`Matrix`] and labels — what any
/// `wray::learn` model fits on, and how [`GbdtTrainer::fit_dataset`] reads
/// its datasets: column `label` as the labels, every other column a feature
/// in the dataset's column order, each read as `f32` (integers, floats and
/// booleans converted; a null feature is NaN — a missing value, for which
/// boosted trees learn a direction — and a null label an error naming its
/// row). [`GbdtTrainer::fit_dataset`]'s workers read their shards with it.
pub fn matrix_of(ds: &Dataset, label: &str) -> Result<(Matrix, Vec<f32>), Error> {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Float32Type;
    let columns = ds.columns()?;
    if !columns.iter().any(|c| c == label) {
        return Err(invalid(format!("GbdtTrainer: no label column {label:?} in {columns:?}")));
    }
    let features: Vec<&String> = columns.iter().filter(|c| *c != label).collect();
    if features.is_empty() {
        return Err(invalid(format!("GbdtTrainer: the dataset has no column besides the label {label:?}")));
    }
    let as_f32 = |batch: &wray_data::Batch, name: &str| -> Result<arrow_array::ArrayRef, Error> {
        arrow_cast::cast(batch.array(name)?, &arrow_schema::DataType::Float32)
            .map_err(|e| invalid(format!("GbdtTrainer: column {name:?} is not numeric: {e}")))
    };
    let (mut data, mut labels) = (Vec::new(), Vec::new());
    for batch in ds.iter_batches(64 * 1024)? {
        let batch = batch?;
        let arrays = features.iter().map(|f| as_f32(&batch, f)).collect::<Result<Vec<_>, Error>>()?;
        let columns: Vec<&arrow_array::Float32Array> = arrays.iter().map(|a| a.as_primitive::<Float32Type>()).collect();
        let y = as_f32(&batch, label)?;
        if let Some(row) = (0..y.len()).find(|&r| y.is_null(r)) {
            return Err(invalid(format!("GbdtTrainer: label {label:?} of row {} is null", labels.len() + row)));
        }
        labels.extend_from_slice(y.as_primitive::<Float32Type>().values());
        for r in 0..batch.num_rows() {
            for c in &columns {
                data.push(if c.is_null(r) { f32::NAN } else { c.value(r) });
            }
        }
    }
    Ok((Matrix::new(data, features.len())?, labels))
}

/// What the driver keeps across restarts of the worker group: the job (once
/// the first group has sketched its rows), the evaluation set and its
/// scores, the trees of the last checkpoint.
struct Run<'e> {
    job: Option<Job>,
    eval: Option<(&'e Matrix, &'e [f32])>,
    scores: Scores<'e>,
    trees: Vec<Tree>,
}

/// The evaluation set's scores, round by round.
struct Scores<'a> {
    evaluation: Option<Evaluation<'a>>,
    /// Rounds scored so far.
    scored: usize,
    /// Early stopping has ended the boosting.
    stopped: bool,
}

impl Scores<'_> {
    /// Scores the rounds of `trees` not scored yet.
    fn score(&mut self, trees: &[Tree], k: usize) {
        let Some(e) = self.evaluation.as_mut() else { return };
        while self.scored < trees.len() / k && !self.stopped {
            let round = self.scored;
            self.stopped = !e.round(round, &trees[round * k..(round + 1) * k]);
            self.scored += 1;
        }
    }
}

/// What every worker is told.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Job {
    params: Params,
    objective: String,
    k: u32,
    cuts: wray_learn::gbdt::Cuts,
    base_margin: Vec<f64>,
}

/// Holds a shard and its group, and boosts on it with the others.
#[wray_guest_core::actor]
pub struct GbdtWorker {
    group: Group,
    first_row: u64,
    x: Matrix,
    y: Vec<f32>,
    /// The first job `boost` was given (the driver gives one group one job).
    job: Option<Job>,
    /// The rows' bins and margins, kept from one chunk of rounds to the next.
    progress: Progress,
}

#[wray_guest_core::actor]
impl GbdtWorker {
    /// Reads the shard: `rows` rows, global rows `first_row..`.
    pub(crate) fn new(group: Group, source: Source, first_row: u64, rows: u64) -> Result<GbdtWorker, Error> {
        let (x, y) = match source {
            Source::Stored(x, y) => (wray_guest_core::get(&x)?, wray_guest_core::get(&y)?),
            Source::Dataset(ds, label) => matrix_of(&ds, &label)?,
        };
        if x.rows() as u64 != rows {
            return Err(invalid(format!(
                "GbdtTrainer: worker rank {} read {} rows from its shard, which held {rows}",
                group.rank(),
                x.rows()
            )));
        }
        Ok(GbdtWorker { group, first_row, x, y, job: None, progress: Progress::default() })
    }

    /// The sketch of this worker's rows (of `total_rows` in all) and their
    /// labels, for the driver's plan.
    pub(crate) fn sketch(&mut self, total_rows: u64) -> (Sketch, Vec<f32>) {
        (Sketch::of(&self.x, self.first_row, total_rows), self.y.clone())
    }

    /// The node this worker runs on.
    pub(crate) fn node(&mut self) -> String {
        wray_guest_core::runtime_context().node_id
    }

    /// Boosts on from `trees` up to round `until` (`job` is the one the
    /// group was first given); rank 0 returns all the trees. `trap`: trap on reaching that round; `pause_ms`: sleep after
    /// each round (tests).
    pub(crate) fn boost(
        &mut self,
        job: Job,
        mut trees: Vec<Tree>,
        until: u64,
        trap: Option<u64>,
        pause_ms: u64,
    ) -> Result<Option<Vec<Tree>>, Error> {
        let job = self.job.get_or_insert(job);
        let objective = Objective::parse(&job.objective)?;
        let mut reducer = GroupReducer(&mut self.group);
        let mut on_round = |round: usize, _: &[Tree]| {
            if trap == Some(round as u64 + 1) {
                // A real trap: the instance dies, as on a crash.
                std::process::abort();
            }
            if pause_ms > 0 {
                std::thread::sleep(std::time::Duration::from_millis(pause_ms));
            }
            true
        };
        boost(
            &job.params,
            objective,
            job.k as usize,
            &job.cuts,
            &job.base_margin,
            &self.x,
            &self.y,
            self.first_row,
            &mut reducer,
            &mut self.progress,
            &mut trees,
            Some(until as usize),
            &mut on_round,
        )?;
        Ok((self.group.rank() == 0).then_some(trees))
    }
}

/// Sums and maxima across a collective group, by allgather: each member's
/// words are gathered and combined in rank order.
struct GroupReducer<'a>(&'a mut Group);

/// `v`'s bits as `f32` words (two per 64-bit value).
fn to_words(v: impl Iterator<Item = u64>) -> Vec<f32> {
    v.flat_map(|b| [f32::from_bits(b as u32), f32::from_bits((b >> 32) as u32)]).collect()
}

fn from_words(w: &[f32]) -> impl Iterator<Item = u64> + '_ {
    w.chunks_exact(2).map(|p| u64::from(p[0].to_bits()) | (u64::from(p[1].to_bits()) << 32))
}

impl Reducer for GroupReducer<'_> {
    fn sum(&mut self, v: &mut [i64]) -> Result<(), Error> {
        let all = self.0.allgather(&to_words(v.iter().map(|x| *x as u64)))?;
        v.iter_mut().for_each(|x| *x = 0);
        for member in &all {
            if member.len() != 2 * v.len() {
                return Err(invalid(format!("GbdtTrainer: a worker sent {} words for {}", member.len(), 2 * v.len())));
            }
            for (x, b) in v.iter_mut().zip(from_words(member)) {
                *x = x.wrapping_add(b as i64);
            }
        }
        Ok(())
    }

    fn max(&mut self, v: &mut [f64]) -> Result<(), Error> {
        let all = self.0.allgather(&to_words(v.iter().map(|x| x.to_bits())))?;
        for member in &all {
            for (x, b) in v.iter_mut().zip(from_words(member)) {
                *x = x.max(f64::from_bits(b));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_carry_every_bit() {
        let values = [0u64, 1, u64::MAX, 0x7FC0_0001_FF80_0001, 0x8000_0000_0000_0000, 12345678901234567];
        let back: Vec<u64> = from_words(&to_words(values.iter().copied())).collect();
        assert_eq!(back, values);
    }
}
