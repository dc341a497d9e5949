//! The experiment loop: trials as actors, stepped in parallel, results
//! through the scheduler, stoppers and callbacks.

use super::Metrics;
use super::callbacks::{Callback, FileLogger, TensorBoardLogger};
use super::results::{ResultGrid, Status, Trial};
use super::schedulers::{Decision, Fifo, Mode, TrialScheduler};
use super::search::{BasicVariantGenerator, Searcher};
use super::session::{CHECKPOINTED, FAILED, FINISHED};
use super::space::{Config, Space};
use super::status::StatusPublisher;
use super::stop::Stopper;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use wray_guest_core::Error;
use wray_guest_core::{ObjectId, ObjectRef};

/// A class-style trainable (Ray's `tune.Trainable`): built from a config,
/// stepped by the tuner, checkpointed on request. Make it runnable as a
/// trial with [`trainable!`](crate::trainable).
pub trait Trainable: Sized {
    /// Builds the trial's state from its config.
    fn setup(config: &Config) -> Result<Self, Error>;
    /// Runs one iteration and returns its metrics. A metric `done` ≥ 1 ends
    /// the trial.
    fn step(&mut self) -> Result<Metrics, Error>;
    /// The state to restore from (default: nothing, the trial restarts).
    fn save_checkpoint(&self) -> Result<Vec<u8>, Error> {
        Ok(Vec::new())
    }
    /// Restores a state [`Trainable::save_checkpoint`] made.
    fn load_checkpoint(&mut self, _checkpoint: &[u8]) -> Result<(), Error> {
        Ok(())
    }
}

/// How the tuner starts, steps, checkpoints and stops one kind of trial;
/// implemented by [`trainable!`](crate::trainable) and
/// [`function!`](crate::function) (a trial is one actor, stepped by calls)
/// and by [`LoopTrial`](crate::LoopTrial) (a trial runs the user's loop,
/// which calls [`report`](crate::report)).
pub trait TrialActor: Sized {
    /// A running trial.
    type Handle;
    /// Starts a trial with its resources. `payload` is what the tuner was
    /// made with (a loop trial's function; empty for actor trials).
    fn start(
        config: &Config,
        checkpoint: Option<Vec<u8>>,
        cpus: f64,
        gpus: f64,
        payload: &[u8],
    ) -> Result<Self::Handle, Error>;
    /// Asks for the trial's next result.
    fn step(handle: &mut Self::Handle) -> ObjectRef<Metrics>;
    /// The trial's state to restore from (empty: none).
    fn save(handle: &Self::Handle) -> Result<Vec<u8>, Error>;
    /// Ends trials and frees what they hold.
    fn stop(handles: Vec<Self::Handle>);
    /// Why a trial whose step reported a failure (rather than returning an
    /// error) failed. Only loop trials report failures so.
    fn failure(_handle: &Self::Handle) -> Error {
        Error::InvalidArgument("tune: the trial failed".into())
    }
}

/// How much the tuner prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verbosity {
    /// Nothing.
    Quiet,
    /// A final summary line.
    Summary,
    /// A status table every `report_interval`, and a final one.
    Table,
    /// On a terminal, a status table redrawn in place every second and a
    /// final one; elsewhere (a pipe, a log file) the summary only. The
    /// default.
    Auto,
}

/// What survives a killed driver: every trial so far and how many configs
/// the searcher handed out.
#[derive(Serialize, Deserialize)]
struct ExperimentState {
    trials: Vec<Trial>,
}

/// A running trial and its step in flight.
struct Live<T: TrialActor> {
    handle: T::Handle,
    pending: Option<ObjectRef<Metrics>>,
    since: Instant,
    /// Time run in earlier actors (before a pause or a failure).
    before: f64,
}

/// Runs an experiment (Ray's `tune.Tuner` / `tune.run`). `T` is the trial
/// actor class made by [`trainable!`](crate::trainable) or
/// [`function!`](crate::function).
pub struct Tuner<T: TrialActor> {
    space: Space,
    metric: String,
    mode: String,
    num_samples: usize,
    searcher: Option<Box<dyn Searcher>>,
    points: Vec<Config>,
    scheduler: Box<dyn TrialScheduler>,
    max_concurrent: Option<usize>,
    cpus: f64,
    gpus: f64,
    stoppers: Vec<Box<dyn Stopper>>,
    time_budget: Option<Duration>,
    callbacks: Vec<Box<dyn Callback>>,
    name: String,
    storage_path: Option<PathBuf>,
    max_failures: u32,
    checkpoint_freq: usize,
    seed: u64,
    verbosity: Verbosity,
    report_interval: Duration,
    resume: bool,
    /// Handed to every trial's start (see [`TrialActor::start`]).
    payload: Vec<u8>,
    /// Objects `payload` names by id, kept alive while the tuner lives.
    pins: Vec<ObjectRef<()>>,
    _trial: std::marker::PhantomData<fn() -> T>,
}

impl<T: TrialActor> Tuner<T> {
    /// An experiment over `space` with Ray's defaults: one sample, random
    /// and grid search, FIFO scheduling, 1 CPU per trial, as many trials at
    /// once as the cluster's CPUs allow.
    pub fn new(space: Space) -> Tuner<T> {
        Tuner {
            space,
            metric: String::new(),
            mode: String::new(),
            num_samples: 1,
            searcher: None,
            points: Vec::new(),
            scheduler: Box::new(Fifo),
            max_concurrent: None,
            cpus: 1.0,
            gpus: 0.0,
            stoppers: Vec::new(),
            time_budget: None,
            callbacks: Vec::new(),
            name: "experiment".into(),
            storage_path: None,
            max_failures: 0,
            checkpoint_freq: 0,
            seed: 0,
            verbosity: Verbosity::Auto,
            report_interval: Duration::from_secs(5),
            resume: false,
            payload: Vec::new(),
            pins: Vec::new(),
            _trial: std::marker::PhantomData,
        }
    }

    /// What every trial's start is given, and the objects it names.
    pub(crate) fn payload(mut self, payload: Vec<u8>, pins: Vec<ObjectRef<()>>) -> Self {
        self.payload = payload;
        self.pins = pins;
        self
    }

    /// The metric to optimise and whether larger (`"max"`) or smaller
    /// (`"min"`) is better.
    pub fn metric(mut self, metric: &str, mode: &str) -> Self {
        self.metric = metric.into();
        self.mode = mode.into();
        self
    }
    /// Passes over the grid (random parameters drawn anew each time).
    pub fn num_samples(mut self, n: usize) -> Self {
        self.num_samples = n;
        self
    }
    /// A search algorithm instead of random/grid search.
    pub fn searcher(mut self, searcher: impl Searcher + 'static) -> Self {
        self.searcher = Some(Box::new(searcher));
        self
    }
    /// Configs to evaluate first (random/grid search).
    pub fn points_to_evaluate(mut self, points: Vec<Config>) -> Self {
        self.points = points;
        self
    }
    /// A trial scheduler (default FIFO).
    pub fn scheduler(mut self, scheduler: impl TrialScheduler + 'static) -> Self {
        self.scheduler = Box::new(scheduler);
        self
    }
    /// At most this many trials at once.
    pub fn max_concurrent_trials(mut self, n: usize) -> Self {
        self.max_concurrent = Some(n.max(1));
        self
    }
    /// CPUs and GPUs each trial's actor holds (fractions allowed).
    pub fn resources_per_trial(mut self, cpus: f64, gpus: f64) -> Self {
        self.cpus = cpus;
        self.gpus = gpus;
        self
    }
    /// Adds a stopper (e.g. [`Criteria`](super::Criteria)).
    pub fn stop(mut self, stopper: impl Stopper + 'static) -> Self {
        self.stoppers.push(Box::new(stopper));
        self
    }
    /// Stops every trial once the experiment has run this long.
    pub fn time_budget(mut self, budget: Duration) -> Self {
        self.time_budget = Some(budget);
        self
    }
    /// Adds a callback.
    pub fn callback(mut self, callback: impl Callback + 'static) -> Self {
        self.callbacks.push(Box::new(callback));
        self
    }
    /// The experiment's name (its directory under the storage path).
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.into();
        self
    }
    /// Where results, logs and the experiment's state go: a directory the
    /// job was granted. By default [`Tuner::DEFAULT_STORAGE`]
    /// (`/wray_results`) if the job was granted it (`wray run --dir
    /// ~/wray_results::/wray_results`); otherwise nothing is written and
    /// `resume` has nothing to resume.
    pub fn storage_path(mut self, path: &str) -> Self {
        self.storage_path = Some(path.into());
        self
    }
    /// Retries a failed trial this many times, from its last checkpoint.
    pub fn max_failures(mut self, n: u32) -> Self {
        self.max_failures = n;
        self
    }
    /// Checkpoints every `n` iterations (0: only when pausing).
    pub fn checkpoint_freq(mut self, n: usize) -> Self {
        self.checkpoint_freq = n;
        self
    }
    /// Seeds the random search.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// How much to print.
    pub fn verbose(mut self, verbosity: Verbosity) -> Self {
        self.verbosity = verbosity;
        self
    }
    /// How often the status table is printed.
    pub fn report_interval(mut self, every: Duration) -> Self {
        self.report_interval = every;
        self
    }
    /// Continues the experiment saved under the storage path: finished
    /// trials are kept, unfinished ones restart from their last checkpoint.
    pub fn resume(mut self, resume: bool) -> Self {
        self.resume = resume;
        self
    }

    fn experiment_dir(&self) -> Option<PathBuf> {
        self.storage_path.as_ref().map(|p| p.join(&self.name))
    }

    /// Ray's default location, where jobs see it: `wray run --dir
    /// ~/wray_results::/wray_results` makes `~/wray_results/<experiment>`.
    pub const DEFAULT_STORAGE: &'static str = "/wray_results";

    /// Checks everything that can be checked before a trial starts.
    fn validate(&self) -> Result<Mode, Error> {
        self.space.validate()?;
        if self.metric.is_empty() {
            return Err(Error::InvalidArgument("tune: set the metric to optimise with .metric(name, mode)".into()));
        }
        let mode = Mode::parse(&self.mode).ok_or_else(|| {
            Error::InvalidArgument(format!("tune: mode must be \"min\" or \"max\", got {:?}", self.mode))
        })?;
        if !(self.cpus.is_finite() && self.cpus >= 0.0 && self.gpus.is_finite() && self.gpus >= 0.0) {
            return Err(Error::InvalidArgument(format!(
                "tune: resources_per_trial must be non-negative, got {} CPU, {} GPU",
                self.cpus, self.gpus
            )));
        }
        if self.num_samples == 0 {
            return Err(Error::InvalidArgument("tune: num_samples must be at least 1".into()));
        }
        Ok(mode)
    }

    /// How many trials fit at once: the cluster's resources over each
    /// trial's, capped by `max_concurrent_trials`.
    fn concurrency(&self) -> usize {
        let total = wray_guest_core::cluster_resources();
        let mut n = usize::MAX;
        if self.cpus > 0.0 {
            n = n.min((total.get("CPU").copied().unwrap_or(0.0) / self.cpus).floor() as usize);
        }
        if self.gpus > 0.0 {
            n = n.min((total.get("GPU").copied().unwrap_or(0.0) / self.gpus).floor() as usize);
        }
        if n == usize::MAX {
            n = 64;
        }
        n.min(self.max_concurrent.unwrap_or(usize::MAX)).max(1)
    }

    fn load_state(&self) -> Vec<Trial> {
        let Some(dir) = self.experiment_dir() else { return Vec::new() };
        match std::fs::read(dir.join("experiment_state.bin")) {
            Ok(bytes) => match wray_codec::decode::<ExperimentState>(&bytes) {
                Ok(s) => s.trials,
                Err(e) => {
                    eprintln!("wray::tune: cannot read the saved experiment ({e}); starting over");
                    Vec::new()
                }
            },
            Err(_) => Vec::new(),
        }
    }

    fn save_state(&self, trials: &[Trial]) {
        let Some(dir) = self.experiment_dir() else { return };
        let state = ExperimentState { trials: trials.to_vec() };
        let Ok(bytes) = wray_codec::encode(&state) else { return };
        // Written aside and renamed: a driver killed mid-write leaves the
        // previous state whole.
        let tmp = dir.join("experiment_state.bin.tmp");
        if std::fs::write(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, dir.join("experiment_state.bin"))).is_err()
        {
            eprintln!("wray::tune: cannot save the experiment state under {}", dir.display());
        }
    }

    /// Runs the experiment to its end and returns every trial's results.
    /// Fails before starting any trial if the space, metric, mode or
    /// resources are invalid; a trial that fails is marked `ERROR` and the
    /// experiment goes on.
    pub fn fit(mut self) -> Result<ResultGrid, Error> {
        let mode = self.validate()?;
        self.scheduler.set_objective(&self.metric, mode);
        if self.storage_path.is_none() && std::path::Path::new(Self::DEFAULT_STORAGE).is_dir() {
            self.storage_path = Some(Self::DEFAULT_STORAGE.into());
        }
        let started = Instant::now();
        // A search algorithm makes `num_samples` trials in all.
        let limit = self.searcher.as_ref().map(|_| self.num_samples);
        let mut searcher = match self.searcher.take() {
            Some(mut s) => {
                s.set_search_properties(&self.space, &self.metric, mode, self.seed)?;
                s
            }
            None => Box::new(
                BasicVariantGenerator::new(self.space.clone(), self.num_samples, self.seed)
                    .points_to_evaluate(std::mem::take(&mut self.points)),
            ),
        };
        if let Some(dir) = self.experiment_dir() {
            if std::fs::create_dir_all(&dir).is_ok() {
                self.callbacks.push(Box::new(FileLogger::new(&dir)));
                self.callbacks.push(Box::new(TensorBoardLogger::new(&dir)));
            } else {
                eprintln!(
                    "wray::tune: cannot create {} (grant the storage directory with wray run --dir); results are not written",
                    dir.display()
                );
                self.storage_path = None;
            }
        }
        // The dashboard's Experiments view (`tune/<name>`).
        self.callbacks.push(Box::new(StatusPublisher::new("tune", &self.name, Some(&self.metric), Some(&self.mode))));
        let mut trials = if self.resume { self.load_state() } else { Vec::new() };
        if !trials.is_empty() {
            let done = trials.iter().filter(|t| t.is_finished()).count();
            if self.verbosity != Verbosity::Quiet {
                println!("resuming {}: {done} trials finished, {} to finish", self.name, trials.len() - done);
            }
            // Replay the searcher so that new trials continue its sequence.
            for t in &mut trials {
                let _ = searcher.suggest(t.id);
                self.scheduler.on_trial_add(t.id, &t.config);
                if !t.is_finished() {
                    t.status = Status::Pending;
                }
            }
        }
        let concurrency = self.concurrency();
        // On a terminal the table is redrawn in place: remember its height.
        let live_table = self.verbosity == Verbosity::Auto && {
            use std::io::IsTerminal;
            std::io::stdout().is_terminal()
        };
        if live_table {
            self.verbosity = Verbosity::Table;
            self.report_interval = self.report_interval.min(Duration::from_secs(1));
        }
        let mut drawn_lines = 0usize;
        let mut live: HashMap<usize, Live<T>> = HashMap::new();
        let mut waiting: HashMap<ObjectId, usize> = HashMap::new();
        let mut exhausted = false;
        let mut last_report = Instant::now();
        let mut stop_everything = false;
        loop {
            if !stop_everything
                && (self.time_budget.is_some_and(|b| started.elapsed() >= b)
                    || self.stoppers.iter_mut().any(|s| s.stop_all()))
            {
                stop_everything = true;
            }
            if stop_everything {
                let mut stopping = Vec::new();
                for t in trials.iter_mut().filter(|t| !t.is_finished()) {
                    if let Some(l) = live.remove(&t.id) {
                        stopping.push(l.handle);
                    }
                    t.status = Status::Terminated;
                    self.scheduler.on_trial_complete(t.id);
                    for c in &mut self.callbacks {
                        c.on_trial_complete(t);
                    }
                }
                T::stop(stopping);
                break;
            }
            for (id, decision) in self.scheduler.take_actions() {
                let Some(t) = trials.get_mut(id) else { continue };
                if t.status != Status::Paused {
                    continue;
                }
                match decision {
                    Decision::Continue => t.status = Status::Pending,
                    _ => {
                        t.status = Status::Terminated;
                        searcher.on_trial_complete(id, t.history.last());
                        for c in &mut self.callbacks {
                            c.on_trial_complete(t);
                        }
                    }
                }
            }
            // Start trials while there is room: resumed ones first.
            while live.len() < concurrency {
                let next = match trials.iter().position(|t| t.status == Status::Pending) {
                    Some(i) => Some(i),
                    None if !exhausted => {
                        match limit.is_none_or(|n| trials.len() < n).then(|| searcher.suggest(trials.len())).flatten() {
                            Some(config) => {
                                let id = trials.len();
                                self.scheduler.on_trial_add(id, &config);
                                trials.push(Trial {
                                    id,
                                    name: format!("trial_{id:05}"),
                                    config,
                                    status: Status::Pending,
                                    history: Vec::new(),
                                    error: None,
                                    failures: 0,
                                    checkpoint: None,
                                });
                                Some(id)
                            }
                            None => {
                                exhausted = true;
                                self.scheduler.on_no_more_trials();
                                None
                            }
                        }
                    }
                    None => None,
                };
                let Some(id) = next else { break };
                let t = &mut trials[id];
                match T::start(&t.config, t.checkpoint.clone(), self.cpus, self.gpus, &self.payload) {
                    Ok(mut handle) => {
                        let pending = T::step(&mut handle);
                        waiting.insert(pending.id(), id);
                        let before = t.history.last().and_then(|r| r.get("time_total_s")).copied().unwrap_or(0.0);
                        live.insert(id, Live { handle, pending: Some(pending), since: Instant::now(), before });
                        t.status = Status::Running;
                        for c in &mut self.callbacks {
                            c.on_trial_start(t);
                        }
                    }
                    Err(e) => {
                        t.status = Status::Error;
                        t.error = Some(format!("cannot start: {e}"));
                        for c in &mut self.callbacks {
                            c.on_trial_error(t);
                        }
                    }
                }
            }
            if live.is_empty() {
                // Nothing runs: the search is over unless the scheduler
                // still holds paused trials, which it must now release.
                if exhausted && trials.iter().any(|t| t.status == Status::Paused) {
                    self.scheduler.on_no_more_trials();
                    if self.scheduler_stalled(&mut trials) {
                        continue;
                    }
                }
                if exhausted && !trials.iter().any(|t| t.status == Status::Pending) {
                    break;
                }
                continue;
            }
            let refs: Vec<ObjectRef<Metrics>> = live.values().filter_map(|l| l.pending.clone()).collect();
            let (ready, _) = wray_guest_core::wait(&refs, 1, Some(self.report_interval));
            for r in ready {
                let Some(id) = waiting.remove(&r.id()) else { continue };
                let outcome = wray_guest_core::get(&r);
                if let Err(e) = self.handle(id, outcome, &mut trials, &mut live, &mut waiting, &mut *searcher) {
                    // Trials hold their resources until stopped.
                    T::stop(live.into_values().map(|l| l.handle).collect());
                    return Err(e);
                }
            }
            if self.verbosity == Verbosity::Table && last_report.elapsed() >= self.report_interval {
                last_report = Instant::now();
                let table = status_table(&trials, &self.metric, started.elapsed(), self.scheduler.name());
                if live_table && drawn_lines > 0 {
                    // Cursor up over the previous table, clear to the end.
                    print!("\x1b[{drawn_lines}A\x1b[J");
                }
                drawn_lines = table.lines().count();
                print!("{table}");
            }
        }
        for c in &mut self.callbacks {
            c.on_experiment_end(&trials);
        }
        self.save_state(&trials);
        let grid = ResultGrid { trials, metric: self.metric.clone(), mode, time_s: started.elapsed().as_secs_f64() };
        if let Some(dir) = self.experiment_dir() {
            let _ = std::fs::write(dir.join("results.csv"), grid.to_csv());
        }
        match self.verbosity {
            Verbosity::Quiet => {}
            Verbosity::Summary | Verbosity::Auto => println!("{}", summary(&grid)),
            Verbosity::Table => {
                if live_table && drawn_lines > 0 {
                    print!("\x1b[{drawn_lines}A\x1b[J");
                }
                print!("{}", status_table(&grid.trials, &self.metric, started.elapsed(), self.scheduler.name()));
                println!("{}", summary(&grid));
            }
        }
        Ok(grid)
    }

    /// Paused trials with no decision coming: resume them (a scheduler bug
    /// or an empty bracket must not hang the experiment).
    fn scheduler_stalled(&mut self, trials: &mut [Trial]) -> bool {
        let actions = self.scheduler.take_actions();
        if !actions.is_empty() {
            for (id, d) in actions {
                if let Some(t) = trials.get_mut(id).filter(|t| t.status == Status::Paused) {
                    t.status = if d == Decision::Continue { Status::Pending } else { Status::Terminated };
                }
            }
            return true;
        }
        let mut any = false;
        for t in trials.iter_mut().filter(|t| t.status == Status::Paused) {
            t.status = Status::Terminated;
            any = true;
        }
        any
    }

    #[allow(clippy::too_many_arguments)]
    fn handle(
        &mut self,
        id: usize,
        outcome: Result<Metrics, Error>,
        trials: &mut [Trial],
        live: &mut HashMap<usize, Live<T>>,
        waiting: &mut HashMap<ObjectId, usize>,
        searcher: &mut dyn Searcher,
    ) -> Result<(), Error> {
        let Some(l) = live.get_mut(&id) else { return Ok(()) };
        l.pending = None;
        let outcome = match outcome {
            Ok(r) if r.contains_key(FAILED) => Err(T::failure(&l.handle)),
            other => other,
        };
        let t = &mut trials[id];
        let mut result = match outcome {
            Ok(r) => r,
            Err(e) => {
                t.failures += 1;
                t.error = Some(e.to_string());
                for c in &mut self.callbacks {
                    c.on_trial_error(t);
                }
                if let Some(l) = live.remove(&id) {
                    T::stop(vec![l.handle]);
                }
                if t.failures <= self.max_failures {
                    // Retried from its last checkpoint (or from scratch).
                    t.status = Status::Pending;
                } else {
                    t.status = Status::Error;
                    self.scheduler.on_trial_complete(id);
                    searcher.on_trial_complete(id, None);
                }
                self.save_state(trials);
                return Ok(());
            }
        };
        if result.remove(FINISHED).is_some() {
            // A loop trial's loop returned after its last report.
            if t.history.is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "tune: {}'s loop returned without calling tune::report: there is no metric {:?} to compare",
                    t.name, self.metric
                )));
            }
            let l = live.remove(&id).expect("live");
            T::stop(vec![l.handle]);
            self.complete(t, searcher);
            self.save_state(trials);
            return Ok(());
        }
        // A loop trial reported a checkpoint with this result: keep it, so a
        // retry, a pause or an exploiting trial starts from it.
        let checkpointed = result.remove(CHECKPOINTED).is_some();
        let iteration = t.history.len() + 1;
        result.insert("training_iteration".into(), iteration as f64);
        result.insert("time_total_s".into(), l.before + l.since.elapsed().as_secs_f64());
        if !result.contains_key(&self.metric) && !result.contains_key("done") {
            let reported: Vec<&String> = result.keys().collect();
            return Err(Error::InvalidArgument(format!(
                "tune: {} reported no metric {:?} (it reported {reported:?})",
                t.name, self.metric
            )));
        }
        t.history.push(result.clone());
        for c in &mut self.callbacks {
            c.on_trial_result(t, &result);
        }
        if checkpointed || (self.checkpoint_freq > 0 && iteration.is_multiple_of(self.checkpoint_freq)) {
            match T::save(&l.handle) {
                Ok(cp) => {
                    t.checkpoint = Some(cp);
                    for c in &mut self.callbacks {
                        c.on_checkpoint(t);
                    }
                    self.save_state(trials);
                }
                Err(e) => eprintln!("wray::tune: checkpointing {} failed: {e}", t.name),
            }
        }
        let t = &mut trials[id];
        let done = result.get("done").is_some_and(|d| *d >= 1.0);
        // Every stopper sees every result (some keep state), so no `any`.
        let mut stopped = false;
        for s in &mut self.stoppers {
            stopped |= s.stop_trial(id, &result);
        }
        let decision = self.scheduler.on_result(id, &result);
        let decision = if done || stopped { Decision::Stop } else { decision };
        match decision {
            Decision::Continue => {
                let l = live.get_mut(&id).expect("live");
                let pending = T::step(&mut l.handle);
                waiting.insert(pending.id(), id);
                l.pending = Some(pending);
            }
            Decision::Pause => {
                let l = live.remove(&id).expect("live");
                match T::save(&l.handle) {
                    Ok(cp) => t.checkpoint = Some(cp),
                    Err(e) => t.error = Some(format!("checkpoint before pausing failed: {e}")),
                }
                T::stop(vec![l.handle]);
                t.status = Status::Paused;
                self.save_state(trials);
            }
            Decision::Exploit => {
                // Population Based Training: continue from a better trial's
                // state with a perturbed copy of its config.
                let l = live.remove(&id).expect("live");
                T::stop(vec![l.handle]);
                if let Some((donor, config)) = self.scheduler.take_exploit(id) {
                    let checkpoint = match live.get(&donor) {
                        Some(d) => T::save(&d.handle).ok(),
                        None => trials[donor].checkpoint.clone(),
                    };
                    let t = &mut trials[id];
                    t.config = config;
                    if checkpoint.is_some() {
                        t.checkpoint = checkpoint;
                    }
                }
                trials[id].status = Status::Pending;
                self.save_state(trials);
            }
            Decision::Stop => {
                let l = live.remove(&id).expect("live");
                T::stop(vec![l.handle]);
                self.complete(t, searcher);
                self.save_state(trials);
            }
        }
        Ok(())
    }

    /// Marks a trial finished and tells everyone.
    fn complete(&mut self, t: &mut Trial, searcher: &mut dyn Searcher) {
        t.status = Status::Terminated;
        self.scheduler.on_trial_complete(t.id);
        searcher.on_trial_complete(t.id, t.history.last());
        for c in &mut self.callbacks {
            c.on_trial_complete(t);
        }
    }
}

/// Ray Tune's status table: one row per trial.
pub fn status_table(trials: &[Trial], metric: &str, elapsed: Duration, scheduler: &str) -> String {
    let mut counts: Vec<(Status, usize)> = Vec::new();
    for t in trials {
        match counts.iter_mut().find(|(s, _)| *s == t.status) {
            Some((_, n)) => *n += 1,
            None => counts.push((t.status, 1)),
        }
    }
    let counts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    let mut params: Vec<&String> = Vec::new();
    for t in trials {
        for k in t.config.0.keys() {
            if !params.contains(&k) {
                params.push(k);
            }
        }
    }
    let mut rows: Vec<Vec<String>> = vec![{
        let mut h = vec!["Trial name".to_string(), "status".into()];
        h.extend(params.iter().map(|p| p.to_string()));
        h.extend(["iter".into(), "total time (s)".into(), metric.into()]);
        h
    }];
    for t in trials {
        let last = t.last_result();
        let mut r = vec![t.name.clone(), t.status.to_string()];
        r.extend(params.iter().map(|p| t.config.get(p).map(|v| v.to_string()).unwrap_or_default()));
        r.push(t.iterations().to_string());
        r.push(last.get("time_total_s").map(|v| format!("{v:.3}")).unwrap_or_default());
        r.push(match (&t.error, last.get(metric)) {
            (Some(e), _) if t.status == Status::Error => format!("error: {e}"),
            (_, Some(v)) => format!("{v:.6}"),
            _ => String::new(),
        });
        rows.push(r);
    }
    let widths: Vec<usize> =
        (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = format!(
        "== Status == {} | {} | elapsed {:.2} s | {}\n",
        scheduler,
        counts.join(", "),
        elapsed.as_secs_f64(),
        trials.len()
    );
    for (i, r) in rows.iter().enumerate() {
        let cells: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
        if i == 0 {
            out.push_str(&format!("|{}|\n", widths.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("|")));
        }
    }
    out
}

fn summary(grid: &ResultGrid) -> String {
    let finished = grid.trials.iter().filter(|t| t.status == Status::Terminated).count();
    let errors = grid.errors().len();
    let best = match grid.best_trial() {
        Some(t) => format!(
            "best {}: {} = {} ({})",
            t.name,
            grid.metric,
            t.last_result().get(&grid.metric).copied().unwrap_or(f64::NAN),
            t.config
        ),
        None => "no trial reported the metric".into(),
    };
    format!("{} trials ({finished} terminated, {errors} errored) in {:.3} s; {best}", grid.trials.len(), grid.time_s)
}
