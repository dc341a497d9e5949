//! `DataParallelTrainer`: runs the user's training loop on a group of worker
//! actors, collects what they report, keeps checkpoints, and restarts the
//! group from the latest checkpoint when a worker fails.

use crate::checkpoint::Checkpoint;
use crate::collective::{self, Group};
use crate::controller::{Controller, Reported};
use crate::session::{self, Setup, TrainContext};
use crate::{Metrics, invalid};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use wray_data::Dataset;
use wray_guest_core::{ActorHandle, Code, Error, ObjectRef, PlacementStrategy};
use wray_tune::{Callback, FileLogger, Status, Trial};

/// Workers one trainer may have.
pub const MAX_WORKERS: usize = 1024;

/// How often the driver looks for new reports and finished workers.
const POLL: Duration = Duration::from_millis(20);

/// The user's training loop, as the trainer calls it.
pub type TrainLoop<C> = fn(C) -> Result<(), Error>;

/// How many workers, with which resources each (Ray's `ScalingConfig`).
#[derive(Clone, Debug)]
pub struct ScalingConfig {
    num_workers: usize,
    use_gpu: bool,
    resources: BTreeMap<String, f64>,
    pub(crate) strategy: Option<PlacementStrategy>,
}

impl ScalingConfig {
    /// `num_workers` workers with 1 CPU each.
    pub fn new(num_workers: usize) -> ScalingConfig {
        ScalingConfig { num_workers, use_gpu: false, resources: BTreeMap::new(), strategy: None }
    }

    /// One GPU per worker (unless `resources_per_worker` names another
    /// amount); its tensors then live on the GPU.
    pub fn use_gpu(mut self, use_gpu: bool) -> ScalingConfig {
        self.use_gpu = use_gpu;
        self
    }

    /// Resources each worker holds, e.g. `&[("CPU", 2.0), ("GPU", 0.5)]`;
    /// replaces the default of 1 CPU for the resources it names.
    pub fn resources_per_worker(mut self, resources: &[(&str, f64)]) -> ScalingConfig {
        for (name, amount) in resources {
            self.resources.insert(name.to_string(), *amount);
        }
        self
    }

    /// Places the workers with a placement group of one bundle each, spread
    /// over the nodes as `strategy` says. Without it the scheduler places
    /// each worker where it fits, as it places any actor.
    pub fn placement_strategy(mut self, strategy: PlacementStrategy) -> ScalingConfig {
        self.strategy = Some(strategy);
        self
    }

    /// What one worker holds.
    pub fn worker_resources(&self) -> BTreeMap<String, f64> {
        let mut r = BTreeMap::from([("CPU".to_string(), 1.0)]);
        if self.use_gpu {
            r.insert("GPU".into(), 1.0);
        }
        r.extend(self.resources.clone());
        r.retain(|_, v| *v > 0.0);
        r
    }

    /// The number of workers.
    pub fn num_workers(&self) -> usize {
        self.num_workers
    }
}

/// Which metric ranks checkpoints, and which way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Higher is better.
    Max,
    /// Lower is better.
    Min,
}

/// Which checkpoints to keep (Ray's `CheckpointConfig`).
#[derive(Clone, Debug, Default)]
pub struct CheckpointConfig {
    /// Keep at most this many (all when `None`); the others are dropped,
    /// and their directories removed when the run has a storage path.
    pub num_to_keep: Option<usize>,
    /// Rank checkpoints by this reported metric (the most recent are kept
    /// when `None`).
    pub score_attribute: Option<String>,
    /// Which way the metric is better.
    pub order: Option<Order>,
}

/// How often the worker group may be restarted after a failure (Ray's
/// `FailureConfig`).
#[derive(Clone, Debug, Default)]
pub struct FailureConfig {
    /// Restarts allowed (0: the first failure ends the run).
    pub max_failures: u32,
}

/// The run's name, where its results go, and its checkpoint and failure
/// policies (Ray's `RunConfig`).
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The run's name (a directory under `storage_path`).
    pub name: String,
    /// A directory the job was granted (`--dir`): the run writes
    /// `{storage_path}/{name}/result.json` (one JSON object per reported
    /// iteration) and a `checkpoint_{iteration:06}` directory per kept
    /// checkpoint, as Ray lays out its results. Nothing is written when
    /// `None`.
    pub storage_path: Option<String>,
    /// Which checkpoints to keep.
    pub checkpoint_config: CheckpointConfig,
    /// How often to restart after failures.
    pub failure_config: FailureConfig,
    /// Print a line per reported iteration.
    pub verbose: bool,
}

impl Default for RunConfig {
    fn default() -> RunConfig {
        RunConfig {
            name: "train".into(),
            storage_path: None,
            checkpoint_config: CheckpointConfig::default(),
            failure_config: FailureConfig::default(),
            verbose: true,
        }
    }
}

/// What [`DataParallelTrainer::fit`] returns (Ray's `Result`).
#[derive(Clone, Debug)]
pub struct TrainResult {
    /// The last iteration's metrics (rank 0's), with `training_iteration`.
    pub metrics: Metrics,
    /// The latest checkpoint.
    pub checkpoint: Option<Checkpoint>,
    /// The checkpoints kept, best first (by the score attribute; latest
    /// first without one), each with the metrics reported beside it.
    pub best_checkpoints: Vec<(Checkpoint, Metrics)>,
    /// Every iteration's metrics, in order, across restarts.
    pub metrics_history: Vec<Metrics>,
    /// Why the run failed, if it did (after using up `max_failures`).
    pub error: Option<Error>,
    /// The run's directory, when it has a storage path.
    pub path: Option<String>,
    /// How often the worker group was restarted.
    pub failures: u32,
}

/// Runs a training loop on `num_workers` workers (Ray's
/// `DataParallelTrainer` / `TorchTrainer`). See the crate docs.
pub struct DataParallelTrainer<C> {
    pub(crate) train_loop: Code<TrainLoop<C>>,
    /// `None` until `train_loop_config`: a loop taking `()` needs none.
    pub(crate) config: Option<C>,
    pub(crate) scaling: ScalingConfig,
    pub(crate) run: RunConfig,
    pub(crate) datasets: BTreeMap<String, Dataset>,
    pub(crate) resume: Option<Checkpoint>,
    /// Taken by `fit` for the run and put back after it.
    pub(crate) callbacks: RefCell<Vec<Box<dyn Callback>>>,
    /// Running as a Tune trial: every recorded iteration goes on to
    /// `wray_tune::report`.
    pub(crate) in_trial: bool,
}

/// The worker actor: runs the loop once per attempt.
#[wray_guest_core::actor]
pub struct TrainWorker {
    started: bool,
}

type Entry = fn(&[u8]) -> Result<(), Error>;

#[wray_guest_core::actor]
impl TrainWorker {
    pub(crate) fn new() -> TrainWorker {
        TrainWorker { started: false }
    }

    /// The node it runs on.
    pub(crate) fn node(&self) -> String {
        wray_guest_core::runtime_context().node_id
    }

    /// Runs the loop: `entry` decodes the loop and its config from `job`.
    pub(crate) fn run(&mut self, setup: Setup, entry: Code<Entry>, job: Vec<u8>) -> Result<(), Error> {
        if std::mem::replace(&mut self.started, true) {
            return Err(invalid("a train worker runs one loop".into()));
        }
        session::install(setup);
        (entry.get()?)(&job)
    }
}

/// Decodes the loop and its config (typed) and runs it.
fn enter<C: DeserializeOwned + 'static>(job: &[u8]) -> Result<(), Error> {
    let (code, config): (Code<TrainLoop<C>>, C) =
        wray_codec::decode(job).map_err(|e| invalid(format!("the training loop's config does not decode: {e}")))?;
    (code.get()?)(config)
}

impl<C: Serialize + DeserializeOwned + Clone + 'static> DataParallelTrainer<C> {
    /// A trainer that runs `train_loop(config)` on every worker. A closure
    /// that captures nothing converts to the function pointer it takes.
    /// The config is any serde type, given with
    /// [`train_loop_config`](Self::train_loop_config) (a loop taking `()`
    /// needs none).
    pub fn new(train_loop: TrainLoop<C>) -> DataParallelTrainer<C> {
        DataParallelTrainer {
            train_loop: Code::of(train_loop),
            config: None,
            scaling: ScalingConfig::new(1),
            run: RunConfig::default(),
            datasets: BTreeMap::new(),
            resume: None,
            callbacks: RefCell::new(Vec::new()),
            in_trial: false,
        }
    }

    /// The value every worker's loop is called with (Ray's
    /// `train_loop_config`).
    pub fn train_loop_config(mut self, config: C) -> Self {
        self.config = Some(config);
        self
    }

    /// The loop's config: the one given, else the unit value, for a loop
    /// that takes `()` (or an `Option`).
    fn loop_config(&self) -> Result<C, Error> {
        match &self.config {
            Some(c) => Ok(c.clone()),
            None => {
                C::deserialize(serde::de::value::UnitDeserializer::<serde::de::value::Error>::new()).map_err(|_| {
                    invalid(format!(
                        "the training loop takes a {}: give it one with `.train_loop_config(..)`",
                        std::any::type_name::<C>()
                    ))
                })
            }
        }
    }

    /// How many workers, with which resources.
    pub fn scaling_config(mut self, scaling: ScalingConfig) -> Self {
        self.scaling = scaling;
        self
    }

    /// Name, storage, checkpoint and failure policies.
    pub fn run_config(mut self, run: RunConfig) -> Self {
        self.run = run;
        self
    }

    /// A dataset the loop reads with `get_dataset_shard(name)`: split into
    /// one shard per worker, of equal row counts (±1), when the run starts.
    pub fn dataset(mut self, name: &str, dataset: Dataset) -> Self {
        self.datasets.insert(name.to_string(), dataset);
        self
    }

    /// Adds a logger or other callback (Ray's `RunConfig(callbacks=...)`):
    /// Tune's callbacks see the run as one trial named after the run —
    /// `TensorBoardLogger::new(dir)` writes `dir/{name}/events.out.tfevents.*`,
    /// `MlflowLogger::new(dir, experiment)` an MLflow file store under
    /// `dir/mlruns`. With a storage path, a `FileLogger` (Ray's
    /// `result.json` and `progress.csv`) is always there.
    pub fn callback(self, callback: impl Callback + 'static) -> Self {
        self.callbacks.borrow_mut().push(Box::new(callback));
        self
    }

    /// Starts from this checkpoint: the loop finds it with
    /// `get_checkpoint()`.
    pub fn resume_from_checkpoint(mut self, checkpoint: Checkpoint) -> Self {
        self.resume = Some(checkpoint);
        self
    }

    /// Runs the loop on the workers until every worker's loop returns, or
    /// one fails after the restarts `max_failures` allows. Returns `Err` only
    /// when the run cannot start (a scaling config the cluster cannot hold,
    /// a storage path it cannot write); a failed run is `Ok` with
    /// [`TrainResult::error`] set.
    pub fn fit(&self) -> Result<TrainResult, Error> {
        let n = self.scaling.num_workers;
        if n == 0 || n > MAX_WORKERS {
            return Err(invalid(format!("ScalingConfig: {n} workers (1 to {MAX_WORKERS})")));
        }
        let config = self.loop_config()?;
        check_feasible(&self.scaling)?;
        let path = self.run.storage_path.as_ref().map(|p| format!("{}/{}", p.trim_end_matches('/'), self.run.name));
        if let Some(p) = &path {
            std::fs::create_dir_all(p).map_err(|e| invalid(format!("RunConfig: creating {p}: {e}")))?;
        }
        // Shards are cut once, before the first attempt: a restarted group
        // reads the same rows.
        let mut shards: Vec<BTreeMap<String, Dataset>> = vec![BTreeMap::new(); n];
        for (name, ds) in &self.datasets {
            for (rank, shard) in ds.split(n)?.into_iter().enumerate() {
                shards[rank].insert(name.clone(), shard);
            }
        }
        let job = wray_codec::encode(&(self.train_loop, config))
            .map_err(|e| invalid(format!("the training loop's config does not encode: {e}")))?;
        let mut callbacks = std::mem::take(&mut *self.callbacks.borrow_mut());
        if let Some(storage) = &self.run.storage_path {
            callbacks.insert(0, Box::new(FileLogger::new(std::path::Path::new(storage))));
        }
        if !self.in_trial {
            // The dashboard's Experiments view (`train/<name>`); as a Tune
            // trial, the run is in Tune's experiment instead.
            let cc = &self.run.checkpoint_config;
            let mode = match cc.order {
                Some(Order::Min) => "min",
                _ => "max",
            };
            callbacks.push(Box::new(wray_tune::StatusPublisher::new(
                "train",
                &self.run.name,
                cc.score_attribute.as_deref(),
                Some(mode),
            )));
        }
        let mut run = Run::new(&self.run, path, n, callbacks);
        run.in_trial = self.in_trial;
        let mut latest: Option<ObjectRef<Checkpoint>> =
            self.resume.as_ref().map(wray_guest_core::try_put).transpose()?;
        loop {
            match self.attempt(&mut run, &shards, &job, latest.clone()) {
                Ok(()) => break,
                // Tune stopped the trial this run is: not a failure.
                Err(Error::Cancelled) if self.in_trial => {
                    run.error = Some(Error::Cancelled);
                    break;
                }
                Err(e) => {
                    latest = run.latest.clone().or(latest);
                    if run.trial.failures >= self.run.failure_config.max_failures {
                        run.error = Some(e);
                        break;
                    }
                    run.trial.failures += 1;
                    run.trial.error = Some(e.to_string());
                    run.each(|c, t| c.on_trial_error(t));
                    if self.run.verbose {
                        eprintln!(
                            "[train] {e}; restarting the worker group from {} (restart {} of {})",
                            if latest.is_some() { "the latest checkpoint" } else { "the start" },
                            run.trial.failures,
                            self.run.failure_config.max_failures
                        );
                    }
                }
            }
        }
        let (result, mut callbacks) = run.finish();
        if self.run.storage_path.is_some() && !callbacks.is_empty() {
            callbacks.remove(0);
        }
        *self.callbacks.borrow_mut() = callbacks;
        result
    }

    /// One attempt: a fresh worker group runs the loop to its end.
    fn attempt(
        &self,
        run: &mut Run,
        shards: &[BTreeMap<String, Dataset>],
        job: &[u8],
        checkpoint: Option<ObjectRef<Checkpoint>>,
    ) -> Result<(), Error> {
        let n = shards.len();
        let attempt = run.trial.failures;
        let controller = Controller::options().num_cpus(0.0).try_remote(n as u32)?;
        let groups = collective::create_group(&format!("{} attempt {attempt}", self.run.name), n)?;
        let placement = match self.scaling.strategy {
            Some(strategy) => {
                let demand: Vec<(String, f64)> = self.scaling.worker_resources().into_iter().collect();
                let bundle: Vec<(&str, f64)> = demand.iter().map(|(k, v)| (k.as_str(), *v)).collect();
                let bundles: Vec<&[(&str, f64)]> = (0..n).map(|_| bundle.as_slice()).collect();
                Some(place(&bundles, strategy).map_err(|e| {
                    invalid(format!(
                        "ScalingConfig: {n} workers of {:?} cannot be placed: {e}",
                        self.scaling.worker_resources()
                    ))
                })?)
            }
            None => None,
        };
        let workers = (0..n)
            .map(|rank| {
                let mut options = TrainWorker::options();
                for (name, amount) in self.scaling.worker_resources() {
                    options = if name == "CPU" { options.num_cpus(amount) } else { options.resource(&name, amount) };
                }
                if let Some(group) = &placement {
                    options = options.placement_group(group, rank as u32);
                }
                options.try_remote()
            })
            .collect::<Result<Vec<ActorHandle<TrainWorker>>, Error>>()?;
        let result = self.drive(run, &controller, &groups, &workers, shards, job, checkpoint);
        for w in &workers {
            wray_guest_core::kill(w);
        }
        if let Some(group) = &placement {
            let _ = wray_guest_core::remove_placement_group(group);
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn drive(
        &self,
        run: &mut Run,
        controller: &ActorHandle<Controller>,
        groups: &[Group],
        workers: &[ActorHandle<TrainWorker>],
        shards: &[BTreeMap<String, Dataset>],
        job: &[u8],
        checkpoint: Option<ObjectRef<Checkpoint>>,
    ) -> Result<(), Error> {
        let n = workers.len();
        let nodes = wray_guest_core::get_all(&workers.iter().map(|w| w.node()).collect::<Vec<_>>())?;
        let contexts = contexts(&nodes, &self.run.name, run.trial.failures);
        if self.run.verbose {
            eprintln!(
                "[train] {}: worker ranks 0..{n} on nodes {nodes:?} (attempt {})",
                self.run.name, run.trial.failures
            );
        }
        let entry: Code<Entry> = Code::of(enter::<C> as Entry);
        let runs: Vec<ObjectRef<()>> = (0..n)
            .map(|rank| {
                let setup = Setup {
                    context: contexts[rank].clone(),
                    controller: controller.clone(),
                    datasets: shards[rank].clone(),
                    checkpoint: checkpoint.clone(),
                    group: groups[rank].clone(),
                };
                workers[rank].run(setup, entry, job.to_vec())
            })
            .collect();
        let mut pending: Vec<usize> = (0..n).collect();
        while !pending.is_empty() {
            let refs: Vec<ObjectRef<()>> = pending.iter().map(|&r| runs[r].clone()).collect();
            let (ready, _) = wray_guest_core::wait(&refs, refs.len(), Some(POLL));
            run.take(wray_guest_core::get(&controller.drain())?)?;
            if self.in_trial {
                wray_tune::__private::check_stopped()?;
            }
            for r in ready {
                let rank = pending.iter().copied().find(|&k| runs[k].id() == r.id()).unwrap_or(0);
                if let Err(e) = wray_guest_core::get(&r) {
                    let reason = format!("worker rank {rank} (node {}) failed: {e}", nodes[rank]);
                    groups[0].abort(&reason);
                    // What the controller holds is complete: record it, so
                    // the restart resumes from the newest checkpoint.
                    if let Ok(reports) = wray_guest_core::get(&controller.drain()) {
                        run.take(reports)?;
                    }
                    return Err(Error::TaskFailed {
                        function: format!("train run '{}'", self.run.name),
                        message: reason,
                    });
                }
                pending.retain(|&k| k != rank);
            }
        }
        run.take(wray_guest_core::get(&controller.drain())?)?;
        let counts = wray_guest_core::get(&controller.counts())?;
        let most = counts.iter().copied().max().unwrap_or(0);
        if most == 0 {
            return Err(invalid(
                "the training loop returned on every worker without calling wray::train::report: there are no \
                 metrics to return"
                    .into(),
            ));
        }
        if let Some(rank) = counts.iter().position(|c| *c < most) {
            return Err(invalid(format!(
                "worker rank {rank} called train::report {} times, others {most} times: every worker must report \
                 as often as the others",
                counts[rank]
            )));
        }
        Ok(())
    }
}

/// Reserves a placement group, waiting up to [`FEASIBLE_GRACE`] for the
/// resources to come free: a trial that has just ended (under Tune) or a
/// failed attempt's workers may still be releasing theirs.
fn place(bundles: &[&[(&str, f64)]], strategy: PlacementStrategy) -> Result<wray_guest_core::PlacementGroup, Error> {
    within_grace(Duration::from_millis(50), || wray_guest_core::placement_group(bundles, strategy))
}

/// `attempt` until it succeeds or [`FEASIBLE_GRACE`] has passed (then its
/// last error), `pause` between tries.
fn within_grace<T>(pause: Duration, mut attempt: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
    let started = Instant::now();
    loop {
        match attempt() {
            Err(_) if started.elapsed() < FEASIBLE_GRACE => std::thread::sleep(pause),
            r => return r,
        }
    }
}

/// How long a run waits for the cluster to offer the resources its workers
/// need — a node that has just joined, or a replacement for one that died —
/// before it fails naming the resource (the head waits as long for a task's
/// demand, `JOIN_GRACE`).
pub const FEASIBLE_GRACE: Duration = Duration::from_secs(3);

/// Fails, naming the resource, when the cluster as a whole cannot hold the
/// workers within [`FEASIBLE_GRACE`].
fn check_feasible(scaling: &ScalingConfig) -> Result<(), Error> {
    within_grace(Duration::from_millis(100), || missing(scaling))
}

fn missing(scaling: &ScalingConfig) -> Result<(), Error> {
    let total = wray_guest_core::cluster_resources();
    let n = scaling.num_workers as f64;
    for (name, amount) in scaling.worker_resources() {
        let have = total.get(&name).copied().unwrap_or(0.0);
        if amount * n > have + 1e-9 {
            return Err(invalid(format!(
                "ScalingConfig: {} worker{} × {amount} {name} need {} {name}; the cluster has {have}",
                scaling.num_workers,
                if scaling.num_workers == 1 { "" } else { "s" },
                amount * n
            )));
        }
    }
    Ok(())
}

/// Each rank's context from the nodes the workers landed on.
fn contexts(nodes: &[String], name: &str, attempt: u32) -> Vec<TrainContext> {
    let mut order: Vec<&String> = Vec::new();
    for node in nodes {
        if !order.contains(&node) {
            order.push(node);
        }
    }
    (0..nodes.len())
        .map(|rank| TrainContext {
            world_rank: rank,
            world_size: nodes.len(),
            local_rank: nodes[..rank].iter().filter(|n| **n == nodes[rank]).count(),
            local_world_size: nodes.iter().filter(|n| **n == nodes[rank]).count(),
            node_rank: order.iter().position(|n| **n == nodes[rank]).unwrap_or(0),
            node_id: nodes[rank].clone(),
            experiment_name: name.to_string(),
            attempt,
        })
        .collect()
}

/// The driver's record of a fit: history, checkpoints, output.
struct Run {
    config: RunConfig,
    path: Option<String>,
    started: Instant,
    /// Checkpoints kept: (iteration, ref, metrics).
    kept: Vec<(u64, ObjectRef<Checkpoint>, Metrics)>,
    latest: Option<ObjectRef<Checkpoint>>,
    error: Option<Error>,
    workers: usize,
    /// The run as Tune's callbacks see it: one trial.
    trial: Trial,
    callbacks: Vec<Box<dyn Callback>>,
    /// Hands every iteration on to Tune (the run is a trial).
    in_trial: bool,
}

impl Run {
    fn new(config: &RunConfig, path: Option<String>, workers: usize, callbacks: Vec<Box<dyn Callback>>) -> Run {
        let trial = Trial {
            id: 0,
            name: config.name.clone(),
            config: wray_tune::Config::default(),
            status: Status::Running,
            history: Vec::new(),
            error: None,
            failures: 0,
            checkpoint: None,
        };
        let mut run = Run {
            config: config.clone(),
            path,
            started: Instant::now(),
            kept: Vec::new(),
            latest: None,
            error: None,
            workers,
            trial,
            callbacks,
            in_trial: false,
        };
        run.each(|c, t| c.on_trial_start(t));
        run
    }

    /// Calls every callback with the run's trial.
    fn each(&mut self, f: impl Fn(&mut dyn Callback, &Trial)) {
        for c in &mut self.callbacks {
            f(c.as_mut(), &self.trial);
        }
    }

    /// Records reported iterations.
    fn take(&mut self, reports: Vec<Reported>) -> Result<(), Error> {
        for r in reports {
            let iteration = self.trial.history.len() as u64 + 1;
            let mut metrics = r.metrics;
            metrics.insert("training_iteration".into(), iteration as f64);
            metrics.insert("time_total_s".into(), self.started.elapsed().as_secs_f64());
            if self.config.verbose {
                let shown: Vec<String> = metrics
                    .iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "training_iteration" | "time_total_s"))
                    .map(|(k, v)| format!("{k}={v:.4}"))
                    .collect();
                eprintln!(
                    "[train] {} iteration {iteration} ({} workers, {:.2} s): {}{}",
                    self.config.name,
                    self.workers,
                    self.started.elapsed().as_secs_f64(),
                    shown.join(" "),
                    if r.checkpoint.is_some() { " [checkpoint]" } else { "" }
                );
            }
            self.trial.history.push(metrics.clone());
            for c in &mut self.callbacks {
                c.on_trial_result(&self.trial, &metrics);
            }
            let checkpoint = r.checkpoint.clone();
            if let Some(c) = r.checkpoint {
                if let Err(e) = self.keep(iteration, c, &metrics) {
                    // A checkpoint that cannot be ranked fails the attempt;
                    // its iteration is not part of the run's history.
                    self.trial.history.pop();
                    return Err(e);
                }
                self.each(|c, t| c.on_checkpoint(t));
            }
            if self.in_trial {
                // Blocks until Tune wants the next result; `Cancelled` once
                // the trial is stopped.
                let bytes = checkpoint.map(|c| wray_guest_core::get(&c)).transpose()?.map(|c| c.to_bytes());
                wray_tune::report(metrics, bytes)?;
            }
        }
        Ok(())
    }

    /// Keeps a checkpoint, dropping the worst beyond `num_to_keep`.
    fn keep(&mut self, iteration: u64, checkpoint: ObjectRef<Checkpoint>, metrics: &Metrics) -> Result<(), Error> {
        let cc = self.config.checkpoint_config.clone();
        if let Some(attr) = &cc.score_attribute {
            match metrics.get(attr) {
                Some(v) if v.is_finite() => {}
                Some(v) => {
                    return Err(invalid(format!(
                        "CheckpointConfig: iteration {iteration} reported {attr} = {v} with a checkpoint; checkpoints \
                         are ranked by {attr}, which must be a finite number"
                    )));
                }
                None => {
                    return Err(invalid(format!(
                        "CheckpointConfig: iteration {iteration} reported a checkpoint without the metric {attr} that \
                         ranks checkpoints"
                    )));
                }
            }
        }
        if let Some(path) = &self.path {
            wray_guest_core::get(&checkpoint)?.to_directory(&format!("{path}/checkpoint_{iteration:06}"))?;
        }
        self.latest = Some(checkpoint.clone());
        self.kept.push((iteration, checkpoint, metrics.clone()));
        self.rank_kept();
        if let Some(keep) = cc.num_to_keep {
            while self.kept.len() > keep.max(1) {
                // The worst is last; never drop the latest (a restart needs it).
                let latest = self.latest.as_ref().map(|l| l.id());
                let Some(i) = self.kept.iter().rposition(|(_, c, _)| Some(c.id()) != latest) else { break };
                let (it, _, _) = self.kept.remove(i);
                if let Some(path) = &self.path {
                    let _ = std::fs::remove_dir_all(format!("{path}/checkpoint_{it:06}"));
                }
            }
        }
        Ok(())
    }

    /// Best first by the score attribute (latest first without one).
    fn rank_kept(&mut self) {
        let cc = &self.config.checkpoint_config;
        match &cc.score_attribute {
            Some(attr) => {
                let sign = if cc.order == Some(Order::Min) { 1.0 } else { -1.0 };
                self.kept.sort_by(|a, b| {
                    let (x, y) = (a.2.get(attr).copied().unwrap_or(0.0), b.2.get(attr).copied().unwrap_or(0.0));
                    (sign * x).total_cmp(&(sign * y)).then(b.0.cmp(&a.0))
                });
            }
            None => self.kept.sort_by_key(|k| std::cmp::Reverse(k.0)),
        }
    }

    /// The result, and the callbacks (handed back to the trainer).
    fn finish(mut self) -> (Result<TrainResult, Error>, Vec<Box<dyn Callback>>) {
        match &self.error {
            Some(e) => {
                self.trial.status = Status::Error;
                self.trial.error = Some(e.to_string());
                self.each(|c, t| c.on_trial_error(t));
            }
            None => {
                self.trial.status = Status::Terminated;
                self.each(|c, t| c.on_trial_complete(t));
            }
        }
        let trials = [self.trial.clone()];
        for c in &mut self.callbacks {
            c.on_experiment_end(&trials);
        }
        let callbacks = std::mem::take(&mut self.callbacks);
        (self.result(), callbacks)
    }

    fn result(self) -> Result<TrainResult, Error> {
        let checkpoint = self.latest.as_ref().map(wray_guest_core::get).transpose()?;
        let best = self
            .kept
            .iter()
            .map(|(_, c, m)| Ok((wray_guest_core::get(c)?, m.clone())))
            .collect::<Result<Vec<_>, Error>>()?;
        if let Some(e) = &self.error
            && self.config.verbose
        {
            eprintln!("[train] {} failed: {e}", self.config.name);
        }
        Ok(TrainResult {
            metrics: self.trial.last_result(),
            checkpoint,
            best_checkpoints: best,
            metrics_history: self.trial.history,
            error: self.error,
            path: self.path,
            failures: self.trial.failures,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_ranks_count_workers_on_the_same_node() {
        let nodes: Vec<String> = ["a", "b", "a", "c", "b"].iter().map(|s| s.to_string()).collect();
        let c = contexts(&nodes, "run", 0);
        let got: Vec<(usize, usize, usize)> =
            c.iter().map(|c| (c.local_rank, c.local_world_size, c.node_rank)).collect();
        assert_eq!(got, vec![(0, 2, 0), (0, 2, 1), (1, 2, 0), (0, 1, 2), (1, 2, 1)]);
    }

    #[test]
    fn worker_resources_default_to_one_cpu() {
        let s = ScalingConfig::new(2).use_gpu(true).resources_per_worker(&[("CPU", 2.0), ("memory_gb", 1.0)]);
        let want: BTreeMap<String, f64> =
            [("CPU", 2.0), ("GPU", 1.0), ("memory_gb", 1.0)].iter().map(|(k, v)| (k.to_string(), *v)).collect();
        assert_eq!(s.worker_resources(), want);
    }
}
