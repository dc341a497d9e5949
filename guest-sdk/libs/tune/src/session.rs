//! Trials that run the user's own loop and call [`report`] inside it (Ray's
//! function API: `def train_fn(config): for ...: tune.report(...)`).
//!
//! The loop runs in one long call on a *runner* actor. A Wasm instance runs
//! one call at a time, so the runner cannot also answer the tuner; the two
//! meet in a small *mailbox* actor (no CPU):
//!
//! ```text
//!  runner:  report(n) ──► mailbox ◄── take(n)   : the tuner's step, a task
//!           waits for resumed(n)  ◄── resume(n) : the tuner's next step
//!           or Cancelled          ◄── stop()    : the scheduler stopped it
//! ```
//!
//! `report` returns only when the tuner asks for the next result, as Ray's
//! does: a trial never runs ahead of its scheduler's decision, so a paused
//! trial's checkpoint is the one it reported with its last result. The
//! tuner's step is a task (no CPU) that polls the mailbox, so the tuner's
//! loop waits on object refs for every kind of trial alike. Both polls back
//! off from spinning to [`POLL_MAX`]; a trial whose iterations take
//! milliseconds or more barely notices.

use crate::space::Config;
use crate::tuner::{TrialActor, Tuner};
use crate::{Metrics, Space};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::time::{Duration, Instant};
use wray_guest_core::{ActorHandle, Code, Error, ObjectRef};

/// A result key the tuner's step adds when the report carried a
/// checkpoint (removed before anyone sees the result).
pub(crate) const CHECKPOINTED: &str = "__checkpointed__";

/// A result key meaning "the loop returned after its last report": the
/// trial ends, and no iteration is recorded.
pub(crate) const FINISHED: &str = "__finished__";

/// A result key meaning "the loop failed": the tuner asks the trial for
/// its error ([`TrialActor::failure`]), which then reads as the loop's own
/// rather than as the step task's.
pub(crate) const FAILED: &str = "__failed__";

/// Polls without sleeping before backing off.
const POLL_SPINS: u32 = 16;
/// The first sleep between polls; it doubles up to [`POLL_MAX`].
const POLL_MIN: Duration = Duration::from_micros(500);
/// The longest sleep between polls.
pub const POLL_MAX: Duration = Duration::from_millis(10);

/// How long a stopped loop has to return (and free what it holds, such as a
/// trainer's workers) before its runner is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// Sleeps between polls: none at first, then doubling.
struct Backoff {
    polls: u32,
    sleep: Duration,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff { polls: 0, sleep: POLL_MIN }
    }
    fn next(&mut self) -> Option<Duration> {
        self.polls += 1;
        if self.polls <= POLL_SPINS {
            return None;
        }
        let d = self.sleep;
        self.sleep = (self.sleep * 2).min(POLL_MAX);
        Some(d)
    }
}

/// Where a loop trial's runner and the tuner meet.
#[wray_guest_core::actor]
pub struct TrialMailbox {
    /// Results reported and not yet taken, by number (from 1).
    reports: std::collections::BTreeMap<u64, (Metrics, bool)>,
    /// The tuner has asked for the result after this one.
    resumed: u64,
    stopped: bool,
    checkpoint: Option<ObjectRef<Vec<u8>>>,
}

#[wray_guest_core::actor]
impl TrialMailbox {
    pub(crate) fn new() -> TrialMailbox {
        TrialMailbox { reports: Default::default(), resumed: 0, stopped: false, checkpoint: None }
    }

    /// The runner's report number `n`; false once the trial is stopped.
    /// (Plain values, not errors: an actor call's error reaches the caller
    /// wrapped as the call's failure, and `report` must return `Cancelled`
    /// itself.)
    pub(crate) fn report(&mut self, n: u64, metrics: Metrics, checkpoint: Option<ObjectRef<Vec<u8>>>) -> bool {
        if self.stopped {
            return false;
        }
        let has = checkpoint.is_some();
        if checkpoint.is_some() {
            self.checkpoint = checkpoint;
        }
        self.reports.insert(n, (metrics, has));
        true
    }

    /// Result `n`, once reported.
    pub(crate) fn take(&mut self, n: u64) -> Option<(Metrics, bool)> {
        self.reports.remove(&n)
    }

    /// The tuner wants the result after `n`.
    pub(crate) fn resume(&mut self, n: u64) {
        self.resumed = self.resumed.max(n);
    }

    /// Whether the runner may go on after report `n`; `None` once the trial
    /// is stopped.
    pub(crate) fn resumed(&self, n: u64) -> Option<bool> {
        if self.stopped { None } else { Some(self.resumed >= n) }
    }

    pub(crate) fn stop(&mut self) {
        self.stopped = true;
    }

    /// The latest checkpoint reported.
    pub(crate) fn checkpoint(&self) -> Option<ObjectRef<Vec<u8>>> {
        self.checkpoint.clone()
    }
}

/// A loop: `entry(payload, config)`.
type Entry = fn(&[u8], &Config) -> Result<(), Error>;

/// A trial's loop as [`Tuner::function`] takes it.
pub type TrialFn = fn(&Config) -> Result<(), Error>;

/// The runner's session: what `report` and `get_checkpoint` use.
struct Session {
    mailbox: ActorHandle<TrialMailbox>,
    reports: u64,
    checkpoint: Option<ObjectRef<Vec<u8>>>,
}

thread_local! {
    static SESSION: RefCell<Option<Session>> = const { RefCell::new(None) };
}

/// Runs one trial's loop.
#[wray_guest_core::actor]
pub struct TrialRunner {}

#[wray_guest_core::actor]
impl TrialRunner {
    pub(crate) fn new() -> TrialRunner {
        TrialRunner {}
    }

    pub(crate) fn run(
        &mut self,
        entry: Code<Entry>,
        payload: Vec<u8>,
        pins: Vec<ObjectRef<()>>,
        config: Config,
        checkpoint: Option<ObjectRef<Vec<u8>>>,
        mailbox: ActorHandle<TrialMailbox>,
    ) -> Result<(), Error> {
        SESSION.with(|s| *s.borrow_mut() = Some(Session { mailbox, reports: 0, checkpoint }));
        let out = (entry.get()?)(&payload, &config);
        drop(pins);
        SESSION.with(|s| *s.borrow_mut() = None);
        out
    }
}

fn with<R>(what: &str, f: impl FnOnce(&mut Session) -> Result<R, Error>) -> Result<R, Error> {
    SESSION.with(|s| match s.borrow_mut().as_mut() {
        Some(session) => f(session),
        None => Err(Error::InvalidArgument(format!(
            "wray::tune::{what} is only available inside a trial's loop (Tuner::function)"
        ))),
    })
}

/// Reports one result from inside a trial's loop (Ray's `tune.report`), with
/// the trial's state to restore from if you like: a failed, paused or
/// exploited (PBT) trial restarts its loop with the latest one, found by
/// [`get_checkpoint`].
///
/// The call returns when the tuner asks for the trial's next result. It
/// returns [`Error::Cancelled`] once the scheduler, a stopper or the
/// experiment's end has stopped the trial: pass it on with `?` so that the
/// loop returns (a loop that goes on is killed after [`STOP_GRACE`]).
pub fn report(metrics: Metrics, checkpoint: Option<Vec<u8>>) -> Result<(), Error> {
    let (mailbox, n) = with("report", |s| {
        s.reports += 1;
        Ok((s.mailbox.clone(), s.reports))
    })?;
    let checkpoint = checkpoint.map(|c| wray_guest_core::try_put(&c)).transpose()?;
    if !wray_guest_core::get(&mailbox.report(n, metrics, checkpoint))? {
        return Err(Error::Cancelled);
    }
    let mut backoff = Backoff::new();
    loop {
        match wray_guest_core::get(&mailbox.resumed(n))? {
            Some(true) => return Ok(()),
            Some(false) => {}
            None => return Err(Error::Cancelled),
        }
        if let Some(d) = backoff.next() {
            std::thread::sleep(d);
        }
    }
}

/// The checkpoint the trial's loop restarts from: the latest one it reported
/// before it failed or was paused, or the donor's under PBT. `None` on a
/// trial's first start.
pub fn get_checkpoint() -> Result<Option<Vec<u8>>, Error> {
    let r = with("get_checkpoint", |s| Ok(s.checkpoint.clone()))?;
    r.map(|r| wray_guest_core::get(&r)).transpose()
}

/// `Err(Cancelled)` once the trial has been stopped. For a loop that runs a
/// while between reports and can end early (a trainer's driver).
#[doc(hidden)]
pub fn check_stopped() -> Result<(), Error> {
    let mailbox = with("check_stopped", |s| Ok(s.mailbox.clone()))?;
    match wray_guest_core::get(&mailbox.resumed(0))? {
        Some(_) => Ok(()),
        None => Err(Error::Cancelled),
    }
}

/// What the tuner's step waits on: the runner and its run.
#[derive(Clone, Serialize, Deserialize)]
struct Watch {
    mailbox: ActorHandle<TrialMailbox>,
    run: ObjectRef<()>,
}

/// The tuner's step: result `n`, once reported; [`FAILED`] if the run failed
/// first, [`FINISHED`] if its loop returned.
#[wray_guest_core::remote]
fn next_result(watch: Watch, n: u64) -> Result<Metrics, Error> {
    let mut backoff = Backoff::new();
    loop {
        if let Some((mut metrics, checkpointed)) = wray_guest_core::get(&watch.mailbox.take(n))? {
            if checkpointed {
                metrics.insert(CHECKPOINTED.into(), 1.0);
            }
            return Ok(metrics);
        }
        let wait = backoff.next().unwrap_or(Duration::ZERO);
        let (done, _) = wray_guest_core::wait(std::slice::from_ref(&watch.run), 1, Some(wait));
        if !done.is_empty() {
            // A report that raced the loop's return is still taken.
            if let Some((metrics, _)) = wray_guest_core::get(&watch.mailbox.take(n))? {
                return Ok(metrics);
            }
            let end = if wray_guest_core::get(&watch.run).is_ok() { FINISHED } else { FAILED };
            return Ok(crate::metrics(&[(end, 1.0)]));
        }
    }
}

/// What a loop trial runs: an entry point and its payload, and whether the
/// runner holds the trial's resources (a function's loop does; a trainer's
/// driver does not — its workers do).
#[derive(Clone, Serialize, Deserialize)]
#[doc(hidden)]
pub struct LoopSpec {
    entry: Code<Entry>,
    payload: Vec<u8>,
    holds_resources: bool,
    /// Objects the payload names by id (a trainer's datasets): handed to
    /// every runner as refs, so that its instance holds them when it
    /// decodes the payload. The tuner keeps them alive meanwhile.
    pins: Vec<ObjectRef<()>>,
}

/// Trials that run a loop calling [`report`]: made by [`Tuner::function`]
/// (and by `wray::train`'s `DataParallelTrainer::tuner`).
pub struct LoopTrial;

/// A running loop trial.
pub struct LoopHandle {
    runner: ActorHandle<TrialRunner>,
    mailbox: ActorHandle<TrialMailbox>,
    run: ObjectRef<()>,
    /// Results asked for so far.
    asked: u64,
}

impl TrialActor for LoopTrial {
    type Handle = LoopHandle;

    fn start(
        config: &Config,
        checkpoint: Option<Vec<u8>>,
        cpus: f64,
        gpus: f64,
        payload: &[u8],
    ) -> Result<LoopHandle, Error> {
        let spec: LoopSpec = wray_codec::decode(payload)
            .map_err(|e| Error::InvalidArgument(format!("tune: a loop trial's spec does not decode: {e}")))?;
        let mut options = TrialRunner::options();
        options = if spec.holds_resources {
            let o = options.num_cpus(cpus);
            if gpus > 0.0 { o.num_gpus(gpus) } else { o }
        } else {
            options.num_cpus(0.0)
        };
        let checkpoint = checkpoint.filter(|c| !c.is_empty()).map(|c| wray_guest_core::try_put(&c)).transpose()?;
        let mailbox = TrialMailbox::options().num_cpus(0.0).try_remote()?;
        let runner = match options.try_remote() {
            Ok(r) => r,
            Err(e) => {
                wray_guest_core::kill(&mailbox);
                return Err(e);
            }
        };
        let run = runner.run(spec.entry, spec.payload, spec.pins, config.clone(), checkpoint, mailbox.clone());
        Ok(LoopHandle { runner, mailbox, run, asked: 0 })
    }

    fn step(handle: &mut LoopHandle) -> ObjectRef<Metrics> {
        if handle.asked > 0 {
            // Let the loop go on past its last report.
            drop(handle.mailbox.resume(handle.asked));
        }
        handle.asked += 1;
        let watch = Watch { mailbox: handle.mailbox.clone(), run: handle.run.clone() };
        next_result::options().num_cpus(0.0).remote(watch, handle.asked)
    }

    fn save(handle: &LoopHandle) -> Result<Vec<u8>, Error> {
        match wray_guest_core::get(&handle.mailbox.checkpoint())? {
            Some(c) => wray_guest_core::get(&c),
            None => Ok(Vec::new()),
        }
    }

    fn failure(handle: &LoopHandle) -> Error {
        match wray_guest_core::get(&handle.run) {
            Err(e) => e,
            Ok(()) => Error::InvalidArgument("tune: the trial's loop returned".into()),
        }
    }

    fn stop(handles: Vec<LoopHandle>) {
        for h in &handles {
            drop(h.mailbox.stop());
        }
        // Loops blocked in `report` return at once; give the others (and a
        // trainer's cleanup of its workers) a grace period.
        let runs: Vec<ObjectRef<()>> = handles.iter().map(|h| h.run.clone()).collect();
        let started = Instant::now();
        let mut pending = runs;
        while !pending.is_empty() && started.elapsed() < STOP_GRACE {
            let (_, rest) = wray_guest_core::wait(&pending, pending.len(), Some(STOP_GRACE - started.elapsed()));
            pending = rest;
        }
        for h in &handles {
            wray_guest_core::kill(&h.runner);
            wray_guest_core::kill(&h.mailbox);
        }
    }
}

impl Tuner<LoopTrial> {
    /// An experiment whose trials each run `train_fn(&config)`, a loop that
    /// calls [`report`] as it goes (Ray's `Tuner(train_fn, param_space=...)`):
    ///
    /// ```no_run
    /// use wray::tune::{self, Config, Space, Tuner};
    ///
    /// fn train_fn(config: &Config) -> Result<(), wray::Error> {
    ///     let lr = config.f64("lr")?;
    ///     // Resume where a paused or failed run of this trial left off.
    ///     let mut step = match tune::get_checkpoint()? {
    ///         Some(c) => u64::from_le_bytes(c.try_into().unwrap_or_default()),
    ///         None => 0,
    ///     };
    ///     while step < 100 {
    ///         step += 1;
    ///         let loss = 1.0 / (lr * step as f64);
    ///         tune::report(tune::metrics(&[("loss", loss)]), Some(step.to_le_bytes().to_vec()))?;
    ///     }
    ///     Ok(())
    /// }
    ///
    /// # fn main() -> Result<(), wray::Error> {
    /// let space = Space::new().with("lr", tune::loguniform(1e-3, 1e-1));
    /// let results = Tuner::function(train_fn, space).metric("loss", "min").num_samples(8).fit()?;
    /// # Ok(()) }
    /// ```
    ///
    /// The trial ends when the loop returns, when its result has `done`, or
    /// when the scheduler or a stopper ends it (its `report` then returns
    /// [`Error::Cancelled`]). Each trial's runner holds
    /// `resources_per_trial`.
    pub fn function(train_fn: TrialFn, space: Space) -> Tuner<LoopTrial> {
        let payload = wray_codec::encode(&Code::of(train_fn)).expect("a function's code encodes");
        Tuner::loop_trials(space, Code::of(run_function as Entry), payload, true, Vec::new())
    }

    /// Trials that run `entry(payload, config)`; `holds_resources`: whether
    /// the runner holds `resources_per_trial` itself; `pins`: the objects
    /// `payload` names by id. How other libraries (Train) make their runs
    /// trials.
    #[doc(hidden)]
    pub fn loop_trials(
        space: Space,
        entry: Code<Entry>,
        payload: Vec<u8>,
        holds_resources: bool,
        pins: Vec<ObjectRef<()>>,
    ) -> Tuner<LoopTrial> {
        let spec = LoopSpec { entry, payload, holds_resources, pins: pins.clone() };
        Tuner::new(space).payload(wray_codec::encode(&spec).expect("a loop spec encodes"), pins)
    }
}

/// The entry of [`Tuner::function`]'s trials: the payload is the function.
fn run_function(payload: &[u8], config: &Config) -> Result<(), Error> {
    let code: Code<TrialFn> = wray_codec::decode(payload)
        .map_err(|e| Error::InvalidArgument(format!("tune: a trial's function does not decode: {e}")))?;
    (code.get()?)(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_spins_then_doubles_up_to_its_cap() {
        let mut b = Backoff::new();
        let sleeps: Vec<Option<Duration>> = (0..POLL_SPINS + 8).map(|_| b.next()).collect();
        assert!(sleeps[..POLL_SPINS as usize].iter().all(Option::is_none));
        assert_eq!(sleeps[POLL_SPINS as usize], Some(POLL_MIN));
        assert_eq!(sleeps[POLL_SPINS as usize + 1], Some(POLL_MIN * 2));
        assert_eq!(*sleeps.last().unwrap(), Some(POLL_MAX));
    }
}
