//! Boosted trees on several workers (Ray's `XGBoostTrainer`, xgboost-ray's
//! `RayParams(num_actors=...)`): the rows are split between worker actors,
//! each computes the gradients and histograms of its own rows, and the
//! histograms are summed across the workers at every node — so every worker
//! picks the same split, and the model equals the one a single process
//! trains on all the rows, bit for bit.
//!
//! The driver computes what all must share — the feature bins and the
//! initial margins — from all the rows first. Histograms hold integers
//! (quantized gradients), so their sum does not depend on how the rows are
//! split; they cross between workers as `allgather`s of the group, their
//! bits carried in `f32` words (an allgather moves bits, it adds nothing).

use crate::collective::{self, Group};
use crate::invalid;
use wray_guest_core::{ActorHandle, Error, ObjectRef};
use wray_learn::gbdt::{Booster, Objective, Params, Reducer, Tree, boost, prepare};
use wray_learn::{Matrix, XGBClassifier};

/// Workers one boosting run may have.
pub const MAX_GBDT_WORKERS: usize = 256;

/// Trains an [`XGBClassifier`] on `num_workers` worker actors.
///
/// ```no_run
/// use wray::learn::{Matrix, XGBClassifier};
/// use wray::train::GbdtTrainer;
///
/// # fn f(x: Matrix, y: Vec<f32>) -> Result<(), wray::Error> {
/// let model = GbdtTrainer::new(XGBClassifier::new().max_depth(4)).num_workers(2).fit(&x, &y)?;
/// let predicted = model.predict(&x)?;
/// # Ok(()) }
/// ```
pub struct GbdtTrainer {
    model: XGBClassifier,
    workers: usize,
    cpus: f64,
}

impl GbdtTrainer {
    /// A trainer for `model`'s parameters, on 2 workers of 1 CPU.
    pub fn new(model: XGBClassifier) -> GbdtTrainer {
        GbdtTrainer { model, workers: 2, cpus: 1.0 }
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

    /// Splits the rows into contiguous shards, one per worker, and boosts;
    /// returns the trained classifier. No evaluation set or early stopping
    /// here (yet): train on one process for those.
    pub fn fit(&self, x: &Matrix, y: &[f32]) -> Result<XGBClassifier, Error> {
        let n = self.workers;
        if n == 0 || n > MAX_GBDT_WORKERS {
            return Err(invalid(format!("GbdtTrainer: {n} workers (1 to {MAX_GBDT_WORKERS})")));
        }
        if self.model.params.early_stopping_rounds.is_some() {
            return Err(invalid("GbdtTrainer: early stopping needs an evaluation set; train on one process".into()));
        }
        let (objective, k) = self.model.plan(x, y)?;
        if x.rows() < n {
            return Err(invalid(format!("GbdtTrainer: {} rows for {n} workers", x.rows())));
        }
        let (cuts, base_margin) = prepare(&self.model.params, objective, k, x, y)?;
        let groups = collective::create_group("gbdt", n)?;
        let workers = (0..n)
            .map(|_| GbdtWorker::options().num_cpus(self.cpus).try_remote())
            .collect::<Result<Vec<ActorHandle<GbdtWorker>>, Error>>()?;
        let runs: Vec<ObjectRef<Option<Vec<Tree>>>> = groups
            .into_iter()
            .enumerate()
            .map(|(rank, group)| {
                let (start, end) = (rank * x.rows() / n, (rank + 1) * x.rows() / n);
                let rows: Vec<usize> = (start..end).collect();
                let job = Job {
                    params: self.model.params.clone(),
                    objective: objective.name().to_string(),
                    k: k as u32,
                    cuts: cuts.clone(),
                    base_margin: base_margin.clone(),
                    first_row: start as u64,
                };
                workers[rank].boost(group, job, x.select(&rows), y[start..end].to_vec())
            })
            .collect();
        let results = wray_guest_core::get_all(&runs);
        for w in &workers {
            wray_guest_core::kill(w);
        }
        let trees = results?
            .into_iter()
            .flatten()
            .next()
            .ok_or_else(|| invalid("GbdtTrainer: rank 0 returned no model".into()))?;
        let mut model = self.model.clone();
        model.set_booster(Booster::assemble(objective, x.cols(), base_margin, trees));
        Ok(model)
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
    first_row: u64,
}

/// Holds a shard and boosts on it with the others.
#[wray_guest_core::actor]
pub struct GbdtWorker {}

#[wray_guest_core::actor]
impl GbdtWorker {
    pub(crate) fn new() -> GbdtWorker {
        GbdtWorker {}
    }

    /// Boosts; rank 0 returns the trees.
    pub(crate) fn boost(
        &mut self,
        mut group: Group,
        job: Job,
        x: Matrix,
        y: Vec<f32>,
    ) -> Result<Option<Vec<Tree>>, Error> {
        let objective = Objective::parse(&job.objective)?;
        let mut trees = Vec::new();
        let mut reducer = GroupReducer(&mut group);
        boost(
            &job.params,
            objective,
            job.k as usize,
            &job.cuts,
            &job.base_margin,
            &x,
            &y,
            job.first_row,
            &mut reducer,
            &mut trees,
            &mut |_, _| true,
        )?;
        Ok((group.rank() == 0).then_some(trees))
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
