//! A trainer as a Tune trainable (Ray's `Tuner(trainer, param_space=...)`):
//! every trial runs the whole trainer — its own worker group, in its own
//! placement group — with the trial's config laid over the trainer's
//! `train_loop_config`, and hands each reported iteration on to Tune, whose
//! schedulers and stoppers may end it early.

use crate::checkpoint::Checkpoint;
use crate::invalid;
use crate::trainer::{
    CheckpointConfig, DataParallelTrainer, FailureConfig, Order, RunConfig, ScalingConfig, TrainLoop,
};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::BTreeMap;
use wray_data::Dataset;
use wray_guest_core::{Code, Error, ObjectRef, PlacementStrategy};
use wray_tune::{Config, LoopTrial, Space, Tuner};

/// The prefix Ray's param spaces put before the loop's parameters
/// (`{"train_loop_config": {"lr": ...}}`); a trial's config may use it or
/// not.
pub const TRAIN_LOOP_CONFIG: &str = "train_loop_config/";

/// What a trial needs to rebuild the trainer (all of it but the callbacks,
/// which stay with the tuner).
#[derive(Serialize, Deserialize)]
struct TrialSpec {
    train_loop: Code<TrainLoop<Config>>,
    config: Config,
    num_workers: usize,
    worker_resources: BTreeMap<String, f64>,
    /// `PlacementStrategy` as a number (see `strategy_code`).
    strategy: u8,
    name: String,
    num_to_keep: Option<usize>,
    score_attribute: Option<String>,
    min_order: bool,
    max_failures: u32,
    datasets: BTreeMap<String, Dataset>,
    resume: Option<Checkpoint>,
}

fn strategy_code(s: PlacementStrategy) -> u8 {
    match s {
        PlacementStrategy::Pack => 0,
        PlacementStrategy::Spread => 1,
        PlacementStrategy::StrictPack => 2,
        PlacementStrategy::StrictSpread => 3,
    }
}

fn strategy_of(code: u8) -> PlacementStrategy {
    match code {
        1 => PlacementStrategy::Spread,
        2 => PlacementStrategy::StrictPack,
        3 => PlacementStrategy::StrictSpread,
        _ => PlacementStrategy::Pack,
    }
}

impl DataParallelTrainer<Config> {
    /// An experiment whose trials each run this trainer (Ray's
    /// `Tuner(trainer, param_space={"train_loop_config": ...})`): a trial's
    /// sampled parameters replace the same-named entries of the trainer's
    /// `train_loop_config` (keys may carry Ray's `train_loop_config/`
    /// prefix), and every iteration the loop reports is the trial's result,
    /// with its checkpoint. So Tune's schedulers stop poor trials early, and
    /// a paused or failed trial restarts its trainer from the latest
    /// checkpoint ([`get_checkpoint`](crate::get_checkpoint) in the loop).
    ///
    /// Each trial holds its workers' resources in a placement group of its
    /// own (PACK unless the scaling config names a strategy), so trials start
    /// whole or wait; the tuner runs as many at once as the cluster's CPUs
    /// and GPUs hold (`resources_per_trial` is set to the workers' sum; other
    /// resources are not counted). The trainer's callbacks, storage path and
    /// name become the tuner's; its `FailureConfig` restarts a trial's
    /// worker group inside the trial, and the tuner's `max_failures` (set
    /// from it too) restarts the trial. Tune needs the loop's config to be a
    /// [`Config`], the tuner's own parameter map.
    pub fn tuner(self, space: Space) -> Result<Tuner<LoopTrial>, Error> {
        let n = self.scaling.num_workers();
        let resources = self.scaling.worker_resources();
        let spec = TrialSpec {
            train_loop: self.train_loop,
            config: self.config.clone().unwrap_or_default(),
            num_workers: n,
            worker_resources: resources.clone(),
            strategy: strategy_code(self.scaling.strategy.unwrap_or(PlacementStrategy::Pack)),
            name: self.run.name.clone(),
            num_to_keep: self.run.checkpoint_config.num_to_keep,
            score_attribute: self.run.checkpoint_config.score_attribute.clone(),
            min_order: self.run.checkpoint_config.order == Some(Order::Min),
            max_failures: self.run.failure_config.max_failures,
            datasets: self.datasets.clone(),
            resume: self.resume.clone(),
        };
        // The spec holds refs (the datasets' blocks): it goes to the store,
        // which keeps them alive, and trials get its ref — pinned, so that
        // each runner holds it — rather than bytes naming freed objects.
        let spec = wray_guest_core::try_put(&spec)?;
        let payload =
            wray_codec::encode(&spec).map_err(|e| invalid(format!("Tuner: the trainer does not encode: {e}")))?;
        let per = |name: &str| resources.get(name).copied().unwrap_or(0.0) * n as f64;
        let mut tuner = Tuner::loop_trials(
            space,
            Code::of(run_trial as fn(&[u8], &Config) -> Result<(), Error>),
            payload,
            false,
            vec![spec.untyped()],
        )
        .resources_per_trial(per("CPU"), per("GPU"))
        .name(&self.run.name)
        .max_failures(self.run.failure_config.max_failures);
        if let Some(path) = &self.run.storage_path {
            tuner = tuner.storage_path(path);
        }
        for callback in self.callbacks.take() {
            tuner = tuner.callback(callback);
        }
        Ok(tuner)
    }
}

/// A trial: the trainer rebuilt with the trial's config, run to its end.
fn run_trial(payload: &[u8], config: &Config) -> Result<(), Error> {
    let spec: ObjectRef<TrialSpec> =
        wray_codec::decode(payload).map_err(|e| invalid(format!("a trainer trial's spec does not decode: {e}")))?;
    let spec = wray_guest_core::get(&spec)?;
    // The tuner's status table is the output: no per-stage summaries of the
    // datasets a trial splits.
    wray_data::DataContext::set(wray_data::DataContext { progress: false, ..wray_data::DataContext::current() });
    let mut merged = spec.config.clone();
    for (key, value) in &config.0 {
        let key = key.strip_prefix(TRAIN_LOOP_CONFIG).unwrap_or(key);
        merged.0.insert(key.to_string(), value.clone());
    }
    let resume = match wray_tune::get_checkpoint()? {
        Some(bytes) if !bytes.is_empty() => Some(Checkpoint::from_bytes(&bytes)?),
        _ => spec.resume,
    };
    let pairs: Vec<(&str, f64)> = spec.worker_resources.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let mut scaling = ScalingConfig::new(spec.num_workers).resources_per_worker(&pairs);
    scaling.strategy = Some(strategy_of(spec.strategy));
    let trainer = DataParallelTrainer {
        train_loop: spec.train_loop,
        config: Some(merged),
        scaling,
        run: RunConfig {
            name: spec.name,
            // Tune writes the trial's results; its status table replaces
            // the trainer's lines.
            storage_path: None,
            checkpoint_config: CheckpointConfig {
                num_to_keep: spec.num_to_keep,
                score_attribute: spec.score_attribute,
                order: Some(if spec.min_order { Order::Min } else { Order::Max }),
            },
            failure_config: FailureConfig { max_failures: spec.max_failures },
            verbose: false,
        },
        datasets: spec.datasets,
        resume,
        callbacks: RefCell::new(Vec::new()),
        in_trial: true,
    };
    let result = trainer.fit()?;
    match result.error {
        // Stopped by the tuner: the trial ends as Tune decided.
        None | Some(Error::Cancelled) => Ok(()),
        Some(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_survive_their_codes() {
        for s in [
            PlacementStrategy::Pack,
            PlacementStrategy::Spread,
            PlacementStrategy::StrictPack,
            PlacementStrategy::StrictSpread,
        ] {
            assert_eq!(strategy_of(strategy_code(s)), s);
        }
    }
}
