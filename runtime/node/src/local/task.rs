//! Running one remote function: wait for arguments, then resources, then run
//! it in a fresh instance, retrying as its options allow.

use crate::cluster::held::Keeper;
use crate::cluster::remote_task::Remote;
use crate::local::job::{JobState, MakerStep, SpareMaker};
use crate::persist::now_ms;
use crate::state::{Live, Place};
use crate::{Held, NodeInner, lock};
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use tokio::sync::{Notify, OwnedSemaphorePermit};
use wray_core::{Error, ObjectId, Options, Resources, Scheduling, TaskId};
use wray_host::{ArgSpec, CallError, Caller, Instance, InstanceLimits, Services};
use wray_sched::task_retry::{Attempt, Next, TaskRetries};
use wray_store::Object;

/// How long a task waits before its next try after the node running it
/// failed, times the number of such failures.
const LOST_BACKOFF: std::time::Duration = std::time::Duration::from_millis(200);

/// A task's whole run on this node, from waiting for its arguments to
/// releasing its permit.
pub(crate) type TaskFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A submitted task's future until the starter or its caller takes it.
pub(crate) type Claimable = Mutex<Option<TaskFuture>>;

/// Tasks submitted on this node that have not started yet
/// ([`NodeInner::claim`]).
#[derive(Default)]
pub(crate) struct Unstarted {
    /// In submission order, for the starter.
    order: Vec<Arc<Claimable>>,
    /// By output, for a caller about to block on one.
    by_output: HashMap<ObjectId, Arc<Claimable>, crate::ById>,
    /// A starter is spawned and has not run yet.
    starter: bool,
    /// ... and was moved where another worker can take it.
    kicked: bool,
}

/// A task its caller runs while it waits for the task's result
/// ([`NodeInner::claim`]). Dropped before the task ended — the caller
/// stopped waiting: a timeout, a cancelled job, a `wait` satisfied by
/// another ref — the task goes on as a tokio task of its own, so that
/// nothing else waiting for its result waits for ever.
pub(crate) struct Inline(Option<TaskFuture>);

impl Future for Inline {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(run) = self.0.as_mut() else { return Poll::Ready(()) };
        let mut unblocked = Vec::new();
        let done = poll_collecting(run, cx, &mut unblocked);
        // The caller goes back to its own work: what the task unblocked
        // runs on its own.
        for slot in unblocked {
            start_slot(&slot);
        }
        if done.is_ready() {
            self.0 = None;
        }
        done
    }
}

impl Drop for Inline {
    fn drop(&mut self) {
        if let Some(run) = self.0.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(Drive::new(run));
                }
                // Only while the process shuts its runtime down.
                Err(_) => tracing::warn!("a task its caller ran was dropped with the runtime"),
            }
        }
    }
}

thread_local! {
    /// Tasks a completion on this thread unblocked, collected while a
    /// task's future is polled ([`poll_collecting`]); `None` outside.
    static UNBLOCKED: RefCell<Option<Vec<Arc<Claimable>>>> = const { RefCell::new(None) };
}

/// Restores the collection of an enclosing poll (a task its caller runs
/// inline polls inside another's), also when the poll panics.
struct Collecting(Option<Vec<Arc<Claimable>>>);

impl Drop for Collecting {
    fn drop(&mut self) {
        let outer = self.0.take();
        UNBLOCKED.with(|u| *u.borrow_mut() = outer);
    }
}

/// Polls a task's future, adding to `unblocked` the parked tasks whose
/// argument a completion during this poll settled (its own result, mostly).
fn poll_collecting(run: &mut TaskFuture, cx: &mut Context<'_>, unblocked: &mut Vec<Arc<Claimable>>) -> Poll<()> {
    let restore = Collecting(UNBLOCKED.with(|u| u.borrow_mut().replace(Vec::new())));
    let done = run.as_mut().poll(cx);
    unblocked.extend(UNBLOCKED.with(|u| u.borrow_mut().take()).unwrap_or_default());
    drop(restore);
    done
}

/// Called, with the store's lock held, when the argument a parked task
/// waited for is settled or freed: collected by the task future being
/// polled on this thread, if any (it runs the task next, [`Drive`]);
/// otherwise spawned.
fn unblock(slot: Arc<Claimable>, runtime: &tokio::runtime::Handle) {
    let collected = UNBLOCKED.with(|u| match u.borrow_mut().as_mut() {
        Some(list) => {
            list.push(slot.clone());
            true
        }
        None => false,
    });
    if !collected {
        start_on(runtime, &slot);
    }
}

/// Spawns a parked or unstarted task on `runtime`, unless someone took it
/// already.
fn start_on(runtime: &tokio::runtime::Handle, slot: &Claimable) {
    if let Some(run) = lock(slot).take() {
        runtime.spawn(Drive::new(run));
    }
}

/// [`start_on`] the runtime this thread runs.
fn start_slot(slot: &Claimable) {
    start_on(&tokio::runtime::Handle::current(), slot);
}

/// Tasks one [`Drive`] runs one after the other before it lets the worker
/// run others (a long chain would otherwise hold its worker for its whole
/// length when no guest yields).
const RUN_IN_A_ROW: u32 = 64;

/// A tokio task running a task's future, then the task its completion
/// unblocked, and so on: a chain of dependent tasks runs on one worker
/// without a wake-up between links (`NodeInner::park`).
///
/// Of several tasks a completion unblocks, the first runs next here and
/// the others are spawned, for the other workers to take. Unblocked while
/// the future waits (settled by something the task did before it
/// finished), they are spawned at once: a task never waits for one that
/// waits for it.
pub(crate) struct Drive {
    run: TaskFuture,
    in_a_row: u32,
}

impl Drive {
    pub(crate) fn new(run: TaskFuture) -> Drive {
        Drive { run, in_a_row: 0 }
    }
}

impl Future for Drive {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let mut unblocked = Vec::new();
            let done = poll_collecting(&mut self.run, cx, &mut unblocked);
            let mut next = None;
            for slot in unblocked {
                if done.is_ready() && next.is_none() {
                    next = lock(&slot).take();
                } else {
                    start_slot(&slot);
                }
            }
            if done.is_pending() {
                return Poll::Pending;
            }
            let Some(run) = next else { return Poll::Ready(()) };
            self.run = run;
            self.in_a_row += 1;
            if self.in_a_row.is_multiple_of(RUN_IN_A_ROW) {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }
}

/// A submitted task.
pub(crate) struct TaskSpec {
    pub(crate) task: TaskId,
    /// Shared with every attempt's `Caller` and the task log.
    pub(crate) function: Arc<str>,
    pub(crate) args: Vec<ArgSpec>,
    pub(crate) options: Options,
    pub(crate) output: ObjectId,
    /// Objects pinned for the task's arguments; released when it ends.
    pub(crate) pinned: Vec<ObjectId>,
    /// Runs on this node whatever the load (another node sent it here).
    pub(crate) here: bool,
    /// Its place in this node's submission order ([`NodeInner::ticket`]).
    pub(crate) ticket: u64,
}

/// A task between its submission and its end, as its job keeps it
/// (`JobState::tasks`): how to cancel it — the flag interrupts a running
/// instance within one epoch tick; the notification wakes a task still
/// waiting for arguments or resources — and what listings show of it.
#[derive(Default)]
pub(crate) struct LiveTask {
    flag: Arc<AtomicBool>,
    notify: Notify,
    /// A parked task, started when it is cancelled: it then ends at once
    /// (cancelled) instead of when its argument is settled. With the
    /// runtime to start it on: a job may be torn down from any thread.
    parked: Mutex<Option<(Weak<Claimable>, tokio::runtime::Handle)>>,
    /// What listings show of it (`state.rs`): `None` for a task a
    /// stand-in runs for another node (that node lists it), and once the
    /// task ended and its record went to the node's [`TaskLog`].
    ///
    /// [`TaskLog`]: crate::state::TaskLog
    listed: Mutex<Option<Live>>,
}

impl LiveTask {
    fn new(listed: Option<Live>) -> LiveTask {
        LiveTask { listed: Mutex::new(listed), ..LiveTask::default() }
    }

    /// Updates what is listed of the task, if it is listed.
    pub(crate) fn note(&self, update: impl FnOnce(&mut Live)) {
        if let Some(live) = lock(&self.listed).as_mut() {
            update(live);
        }
    }

    /// What is listed of the task now, if it is listed.
    pub(crate) fn listed(&self) -> Option<Live> {
        lock(&self.listed).clone()
    }

    /// Whether it is listed and started: `None` if it is not listed.
    pub(crate) fn running(&self) -> Option<bool> {
        lock(&self.listed).as_ref().map(Live::running)
    }

    pub(crate) fn cancel(&self) {
        self.flag.store(true, Ordering::Relaxed);
        self.notify.notify_waiters();
        let parked = lock(&self.parked).take();
        if let Some((slot, runtime)) = parked
            && let Some(slot) = slot.upgrade()
        {
            start_on(&runtime, &slot);
        }
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    pub(crate) fn flag(&self) -> Arc<AtomicBool> {
        self.flag.clone()
    }

    /// Resolves once cancelled. Cancellation-safe.
    pub(crate) async fn cancelled(&self) {
        loop {
            let notified = self.notify.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

impl NodeInner {
    pub(crate) fn spawn_task(self: &Arc<Self>, job: Arc<JobState>, spec: TaskSpec, permit: OwnedSemaphorePermit) {
        // Tasks are listed by the node owning their job; a stand-in's are
        // its owner's to list.
        let listed = job.owner.is_none().then(|| Live::submitted(spec.function.clone(), now_ms()));
        let cancel = Arc::new(LiveTask::new(listed));
        lock(&job.tasks).insert(spec.task, cancel.clone());
        let node = self.clone();
        let output = spec.output;
        let objects: Vec<ObjectId> =
            spec.args.iter().filter_map(|a| if let ArgSpec::Object(id) = a { Some(*id) } else { None }).collect();
        let token = cancel.clone();
        let run: TaskFuture = Box::pin(async move {
            // Boxed apart: the run is most of this future by size (2.2 KiB
            // of 2.6), which would otherwise be copied into its box on
            // submission and read by whichever worker runs the task; boxed
            // when it first runs, it is made where it runs. Async tasks with
            // reused instances 324–342k → 347–369k/s, the reused chain
            // 3.7–3.9 → 3.3–3.4 µs a link (alternating runs).
            let outcome = Box::pin(node.run_task(&job, &spec, &cancel)).await;
            if job.owner.is_none() {
                node.log_end(&job, &spec, &cancel, outcome.as_ref().map(|_| ()));
            }
            lock(&job.tasks).remove(&spec.task);
            drop(permit);
            match outcome {
                Ok(None) => {}
                Err(e) => node.store.complete(spec.output, Err(e)),
                // Kept apart from this future, which a caller blocked on
                // the result may be running (`claim`).
                Ok(Some(keeper)) => {
                    tokio::spawn(node.clone().keep_result(job, spec, cancel, keeper));
                    return;
                }
            }
            node.unpin(&spec.pinned);
        });
        let slot = Arc::new(Mutex::new(Some(run)));
        if self.park(&objects, &slot, &token) {
            return;
        }
        // Whoever comes first runs it: the starter (below), or a caller
        // that blocks on its result before the starter ran (`claim`).
        let (start, kick) = {
            let mut unstarted = lock(&self.unstarted);
            unstarted.order.push(slot.clone());
            unstarted.by_output.insert(output, slot);
            if !unstarted.starter {
                unstarted.starter = true;
                (true, false)
            } else {
                // Tasks pile up behind a starter no worker has run: the
                // caller is not waiting for them one by one.
                let kick = !unstarted.kicked && unstarted.by_output.len() >= 2;
                unstarted.kicked |= kick;
                (false, kick)
            }
        };
        if start {
            let node = self.clone();
            tokio::spawn(async move { node.start_unclaimed() });
        }
        if kick {
            // The starter sits in this worker's LIFO slot, which no other
            // worker may steal, and nobody woke the idle one: a no-op
            // spawned now takes the slot, moves the starter to the
            // stealable queue and wakes an idle worker (as for an actor's
            // loop, `let_another_worker_take_it`).
            tokio::spawn(async {});
        }
    }

    /// Moves what is listed of a task that ended to the node's task log —
    /// under the log's lock, which a listing holds while it collects the
    /// unfinished tasks: a task is listed once, unfinished or ended.
    fn log_end(&self, job: &JobState, spec: &TaskSpec, task: &LiveTask, outcome: Result<(), &Error>) {
        let mut log = lock(&self.task_log);
        if let Some(live) = lock(&task.listed).take() {
            log.end(spec.task, job.key.clone(), live, outcome, now_ms());
        }
    }

    /// Parks a task until `objects`, its arguments, are settled — if one
    /// is still pending here — instead of starting it to wait for them:
    /// the completion that settles the argument starts it, on the thread
    /// that made the argument and right after (a [`Drive`]), as Ray's
    /// dependency manager queues a task only once its arguments are local.
    /// Started as a tokio task that waits, a chain of dependent tasks went
    /// from one worker to the other at every link: each completion woke the
    /// next through tokio's scheduler, which after three turns in its LIFO
    /// slot wakes the other, parked worker (a futex wake and two context
    /// switches a link: a quarter of a chain's time in `perf`).
    ///
    /// Parked on one pending argument at a time: started, the task waits
    /// for any other as before. Cancelled while parked, it starts at once
    /// and ends cancelled. Returns whether it parked.
    fn park(&self, objects: &[ObjectId], slot: &Arc<Claimable>, cancel: &LiveTask) -> bool {
        if objects.is_empty() {
            return false;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return false };
        for id in objects {
            let waiting = slot.clone();
            let on = runtime.clone();
            if self.store.on_settled(*id, Box::new(move || unblock(waiting, &on))) {
                *lock(&cancel.parked) = Some((Arc::downgrade(slot), runtime));
                // Cancelled before the hook was in place: nobody else starts it.
                if cancel.is_cancelled() {
                    start_slot(slot);
                }
                return true;
            }
        }
        false
    }

    /// Keeps a task's result left on the node that made it
    /// (`cluster/held.rs`), with the task's arguments pinned: if it is
    /// lost, the task runs again, up to `max_retries` times.
    async fn keep_result(
        self: Arc<Self>,
        job: Arc<JobState>,
        spec: TaskSpec,
        cancel: Arc<LiveTask>,
        mut keeper: Box<Keeper>,
    ) {
        let mut remade = 0;
        loop {
            let Some(why) = self.keep(spec.output, *keeper).await else { break };
            remade += 1;
            if remade > spec.options.max_retries {
                let why = format!("the result of {} was lost ({why}) and its task ran {remade} times", spec.function);
                self.store.complete(spec.output, Err(Error::ObjectLost(why)));
                break;
            }
            tracing::info!("the result of {} was lost ({why}): running it again", spec.function);
            // Cancellable again while it runs.
            lock(&job.tasks).insert(spec.task, cancel.clone());
            let again = self.run_task(&job, &spec, &cancel).await;
            lock(&job.tasks).remove(&spec.task);
            match again {
                Ok(Some(k)) => keeper = k,
                Ok(None) => break,
                Err(e) => {
                    self.store.complete(spec.output, Err(e));
                    break;
                }
            }
        }
        self.unpin(&spec.pinned);
    }

    /// Spawns every task no caller claimed, each a tokio task of its own,
    /// oldest first.
    ///
    /// Those that find no room queue in submission order whatever order
    /// they first run in (their tickets, [`NodeInner::ticket`]); which of a
    /// burst take the room there is goes by who runs first. A task spawned
    /// from a worker goes to the worker's LIFO slot and pushes the one
    /// before it to the back of the run queue, so spawned in order the
    /// newest of a burst ran first and took a free CPU ahead of the oldest.
    /// A no-op spawned after them takes the slot instead: the oldest run
    /// first, but for what the other worker steals meanwhile.
    fn start_unclaimed(&self) {
        let order = {
            let mut unstarted = lock(&self.unstarted);
            unstarted.starter = false;
            unstarted.kicked = false;
            unstarted.by_output.clear();
            std::mem::take(&mut unstarted.order)
        };
        let runtime = tokio::runtime::Handle::current();
        let burst = order.len() > 1;
        for slot in order {
            start_on(&runtime, &slot);
        }
        if burst {
            runtime.spawn(async {});
        }
    }

    /// The task making `output`, if it has not started yet: the caller
    /// about to block on `output` runs it itself ([`Inline`]).
    ///
    /// Why: a caller that submits a task and then waits for it (the sync
    /// round trip) otherwise hands it to a tokio worker and is woken back by
    /// it. Tokio runs such a ping-pong on one worker through its LIFO slot
    /// for three turns per scheduler tick, then through its run queue,
    /// which wakes the other, parked worker (an eventfd write: an eighth of
    /// the round trip in `perf`) — and that worker steals the caller, so the
    /// pair changes cores every few tasks. Run by its caller, the task
    /// needs no hand-off and no wake-up. It is the same future either way:
    /// the same fresh instance, resources, limits and retries. (The caller's
    /// own time-limit clock stops once its `get` first waits — here, when
    /// the task first yields or waits: its instantiation and at most one
    /// epoch tick of its run count as the caller's time in the host.)
    ///
    /// Tasks start through one starter per node, scheduled when the first
    /// of them is submitted (a tokio task per task left the one before it
    /// in the LIFO slot, and the next spawn pushed it out and woke the
    /// other worker anyway): a caller that claims each task it submits
    /// never wakes a worker; a caller that submits several before waiting
    /// gets the starter moved to where the idle worker takes it.
    pub(crate) fn claim(&self, output: ObjectId) -> Option<Inline> {
        let slot = lock(&self.unstarted).by_output.remove(&output)?;
        let run = lock(&slot).take()?;
        Some(Inline(Some(run)))
    }

    /// Runs the task to completion, here or on another node. `Ok` means the
    /// result is in the store — or held on the node that made it, for the
    /// keeper returned to keep; `Err` is the failure to store.
    async fn run_task(
        self: &Arc<Self>,
        job: &Arc<JobState>,
        spec: &TaskSpec,
        cancel: &LiveTask,
    ) -> Result<Option<Box<Keeper>>, Error> {
        // Its arguments exist before it goes anywhere; their bytes are
        // read where it runs (one held on another node is fetched only if
        // it runs here: sent elsewhere, it is named on its holder).
        // The work first, and the cancellation polled only if the work
        // waits: a `select!` in random order polled `cancelled` first every
        // other time, which joins the token's list of waiters and leaves
        // it again — two locks — for a task whose arguments are there. A
        // task cancelled already still ends here. With the two `select!`s
        // below alike: async reused tasks 366–378k → 375–390k/s, sync
        // reused 288–296k → 300–304k/s (alternating runs).
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        tokio::select! {
            biased;
            ready = self.await_args(&spec.args) => ready?,
            () = cancel.cancelled() => return Err(Error::Cancelled),
        };
        // Arguments held on another node draw a task with the default
        // scheduling there, while it has room (`cluster/held.rs`) — one this
        // node could run, which would otherwise run here and fetch them (one
        // it cannot is placed by its resources, as before).
        let located;
        let could_run_here = || {
            !spec.here
                && spec.options.scheduling == Scheduling::Default
                && lock(&self.sched).check_feasible(&spec.options.resources).is_ok()
        };
        // (The scheduler's lock only for a task that has such arguments.)
        let options = match self.held_locality(&spec.args).filter(|_| could_run_here()) {
            Some(node) => {
                located = Options { scheduling: Scheduling::NodeAffinity { node, soft: true }, ..spec.options.clone() };
                &located
            }
            None => &spec.options,
        };
        // The retry rules (one budget for node losses and failures, node
        // losses retried whatever `retry_exceptions` says) are
        // `wray_sched::task_retry`'s.
        let mut retries = TaskRetries::new(spec.options.max_retries, spec.options.retry_exceptions);
        if let Some(e) = self.unmet_affinity(&spec.options, spec.here) {
            return Err(e);
        }
        // SPREAD and a soft node affinity to another node ask the head
        // first, room here or not; once (a task it keeps here and that
        // moves later is placed as any other). A hard affinity to another
        // node asks it every time: the task never runs here.
        let pinned_elsewhere = self.pinned_elsewhere(&spec.options, spec.here);
        let mut ask_head = self.asks_head(options, spec.here);
        let held = loop {
            // Here if there is room now; else elsewhere if another node has
            // room (or this one can never run it); else queued here, until
            // resources free up or another node reports room.
            if ask_head.is_none()
                && let Some(held) = self.try_acquire_now(&spec.options.resources)
            {
                break held;
            }
            let mut movable = false;
            // Pinned elsewhere, `ask_head` stays set: it asks every time.
            let first = if pinned_elsewhere { ask_head } else { ask_head.take() };
            if let Some(must_move) = first.or_else(|| self.should_move(spec)) {
                let outcome = tokio::select! {
                    // Boxed: the path to another node is most of the
                    // task's future by size (7 KiB with it inline, 2.8
                    // without), and every task's future is moved into its
                    // box on submission, run here or not.
                    r = Box::pin(self.run_remote(job, spec, options, must_move)) => r,
                    () = cancel.cancelled() => return Err(Error::Cancelled),
                };
                let (attempt, why) = match outcome {
                    Remote::Held(keeper) => return Ok(Some(keeper)),
                    Remote::Ran => (Attempt::Ran, String::new()),
                    Remote::Abandoned => return Err(Error::Cancelled),
                    Remote::Busy => (Attempt::Busy, String::new()),
                    Remote::Lost(why) => (Attempt::NodeLost, why),
                };
                match retries.after(attempt, job.cancelled()) {
                    Next::Done => return Ok(None),
                    Next::WaitHere if pinned_elsewhere => {
                        // Only its node may run it: ask again.
                        tokio::time::sleep(LOST_BACKOFF).await;
                        continue;
                    }
                    Next::WaitHere => movable = true,
                    Next::RetryElsewhere { backoff } => {
                        tracing::info!("retrying {} elsewhere (attempt {}): {why}", spec.function, retries.used());
                        // Give the head a moment to notice the dead node.
                        tokio::time::sleep(LOST_BACKOFF * backoff).await;
                        continue;
                    }
                    Next::Fail | Next::RetryHere => {
                        return Err(Error::task_failed(&*spec.function, format!("the node running it failed: {why}")));
                    }
                }
            }
            let granted = tokio::select! {
                held = self.acquire(spec.task, spec.options.resources.clone(), movable, spec.ticket) => held,
                () = cancel.cancelled() => return Err(Error::Cancelled),
            };
            if let Some(resources) = granted {
                break Held::new(self.clone(), resources);
            }
        };
        // Boxed: running here is most of this future by size (1,536 bytes
        // of 1,936), and every task queued for a CPU or out on another
        // node holds this future, not yet or never needing that state.
        Box::pin(self.run_here(job, spec, cancel, retries, held)).await.map(|()| None)
    }

    /// At the end of a task that took a fresh instance: hands its instance
    /// (`spent`, if not kept) to the job's spare maker and starts one if
    /// none runs (see [`Spares`](crate::local::job::Spares)) — on the
    /// other core if it idles: a caller running one task at a time leaves
    /// it idle, and that is where instances are dropped and made.
    fn after_fresh_task(
        self: &Arc<Self>,
        job: &Arc<JobState>,
        limits: InstanceLimits,
        env: &[(String, String)],
        spent: Option<Instance>,
    ) {
        // Tasks queued for a CPU mean no core idles: each makes its own
        // instance when it runs, and spares would only move that work
        // between the cores (2–3 % slower batches of tasks, measured).
        if lock(&self.sched).queued() > 0 {
            drop(spent);
            return;
        }
        let spent = match job.hand_spent(spent) {
            SpareMaker::Done => return,
            SpareMaker::DropHere(instance) => return drop(instance),
            SpareMaker::Start(spent) => spent,
        };
        let (node, job, env) = (self.clone(), job.clone(), env.to_vec());
        tokio::spawn(async move {
            drop(spent);
            node.make_spares(&job, limits, &env).await;
        });
        // The spawn sits in this worker's LIFO slot, which no other worker
        // may steal: a no-op moves it to the stealable queue and wakes the
        // idle worker (as for the starter in `spawn_task`).
        tokio::spawn(async {});
    }

    /// The job's one spare maker: drops what ended tasks left and makes
    /// spares until the job has enough, then stops.
    async fn make_spares(self: &Arc<Self>, job: &Arc<JobState>, limits: InstanceLimits, env: &[(String, String)]) {
        let grants = job.config.grants.with_env(env);
        // A failed making stops the maker (once it dropped what is left):
        // the failure is the next task's to report, which makes its own
        // instance and meets the same error; its end starts another maker.
        let mut failed = false;
        loop {
            let stop = failed || lock(&self.sched).queued() > 0;
            match job.next_for_maker(stop) {
                MakerStep::Stop => return,
                MakerStep::Drop(spent) => drop(spent),
                MakerStep::Make => {
                    // A placeholder: the task that takes the spare sets its own.
                    let caller = Caller {
                        job: job.id,
                        task: TaskId(0),
                        actor: None,
                        function: "".into(),
                        holds: Resources::default(),
                        env: Vec::new(),
                    };
                    let services: Arc<dyn Services> = self.clone();
                    match Instance::new(&job.component, services, caller, limits, &grants).await {
                        Ok(made) => drop(job.keep_spare(limits.memory, env, made)),
                        Err(_) => failed = true,
                    }
                }
            }
        }
    }

    /// Runs the task on this node with `held` resources, retrying as its
    /// options allow (`retries` counts those spent already).
    async fn run_here(
        self: &Arc<Self>,
        job: &Arc<JobState>,
        spec: &TaskSpec,
        cancel: &LiveTask,
        mut retries: TaskRetries,
        held: Held,
    ) -> Result<(), Error> {
        // (The work first, as in `run_task`.)
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let args = tokio::select! {
            biased;
            args = self.resolve_args(&spec.args) => args?,
            () = cancel.cancelled() => return Err(Error::Cancelled),
        };
        if spec.here {
            // Placed here by the head: its heartbeats count it as held now.
            self.arrived(spec.task);
        }
        let limits = job.limits(&spec.options);
        loop {
            cancel.note(|live| live.start(Place::Here, now_ms()));
            let caller = Caller {
                job: job.id,
                task: spec.task,
                actor: None,
                function: spec.function.clone(),
                holds: held.resources.clone(),
                env: spec.options.env.clone(),
            };
            // A fresh instance for every task unless the component (a
            // Python job's) or the call (`reuse_instance`) asks otherwise;
            // an idle instance only ever serves its own job's tasks.
            let reuse = job.component.reuses_task_instances() || spec.options.reuse_instance;
            // Fresh instances of this node's own job come from its spares,
            // and go back to its spare maker to be dropped.
            let spares = !reuse && job.owner.is_none();
            // An instance's tensors stay on the device its first task had.
            let gpu = held.resources.gpus() > 0.0;
            let ready = if reuse {
                job.take_idle(limits.memory, &spec.options.env, gpu)
            } else if spares {
                job.take_spare(limits.memory, &spec.options.env)
            } else {
                // Another node's job (a stand-in) takes no spares: its tasks
                // come a network round trip apart, several times an
                // instantiation, and with nodes sharing a machine's cores
                // the spare's core is the other node's — sync tasks across
                // nodes measured 10 % slower with them (on loopback, two
                // processes on two cores).
                None
            };
            let instance = match ready {
                Some(mut instance) => {
                    instance.set_caller(caller);
                    Ok(instance)
                }
                None => {
                    let services: Arc<dyn Services> = self.clone();
                    // Boxed: instantiating is most of this future by size
                    // (1.5 KiB, counted about twice over in the layouts of
                    // the futures above it: a task's future, moved into its
                    // box at every submission, instance reused or not, was
                    // 8.1 KiB with it inline and is 3.3 without), and a
                    // fresh instance allocates dozens of times anyway.
                    let grants = job.config.grants.with_env(&spec.options.env);
                    Box::pin(Instance::new(&job.component, services, caller, limits, &grants)).await
                }
            };
            let e = match instance {
                Ok(mut instance) => {
                    instance.set_cancel_flag(cancel.flag());
                    // The flag interrupts running wasm within a tick; racing
                    // the call also stops a task blocked in the host (a WASI
                    // sleep, a `get`).
                    // The call first: one that never waits in the host
                    // never joins the token's waiters (as in `run_task`).
                    let run = if cancel.is_cancelled() {
                        Err(CallError::Cancelled)
                    } else {
                        tokio::select! {
                            biased;
                            r = instance.run_task(&spec.function, args.clone(), limits.time) => r,
                            () = cancel.cancelled() => Err(CallError::Cancelled),
                        }
                    };
                    match run {
                        Ok(v) => {
                            // An instance kept for the job's next task is
                            // kept before the result is released, so that a
                            // caller's next task finds it.
                            let max = spec.options.max_calls;
                            let spent = max > 0 && instance.count_run(&spec.function) >= max;
                            let unkept = if reuse && !spent {
                                job.keep_idle(limits.memory, &spec.options.env, gpu, instance)
                            } else {
                                Some(instance)
                            };
                            // Settle while the instance still holds the refs
                            // of objects nested in the result.
                            let size = v.data.len();
                            self.landing(size, || {
                                self.store.complete(spec.output, Ok(Object { data: v.data, refs: v.refs }))
                            });
                            if spares {
                                self.after_fresh_task(job, limits, &spec.options.env, unkept);
                            } else {
                                drop(unkept);
                            }
                            return Ok(());
                        }
                        Err(e) => e,
                    }
                }
                Err(e) => e,
            };
            if spares {
                self.after_fresh_task(job, limits, &spec.options.env, None);
            }
            let cancelled = matches!(e, CallError::Cancelled) || job.cancelled() || cancel.is_cancelled();
            let attempt = Attempt::Failed { system: matches!(e, CallError::Instantiate(_)) };
            if retries.after(attempt, cancelled) == Next::RetryHere {
                tracing::info!(
                    "retrying {} (attempt {} of {}): {e}",
                    spec.function,
                    retries.used(),
                    spec.options.max_retries
                );
                continue;
            }
            return Err(match e {
                CallError::Cancelled => Error::Cancelled,
                other => Error::task_failed(&*spec.function, other.to_string()),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::future_size;
    use wray_net::proto::TaskRequest;

    /// Every task queued for a CPU or out on another node holds these
    /// futures for as long as it waits: a head with 100,000 tasks out held
    /// 8.9 KiB of them per task (1,936 + 6,960 bytes), and each worker 5
    /// KiB for each task sent to it, most of it states of running here or
    /// of handling an answer that a waiting task never is in. An `await`
    /// added inline on one of those paths shows here before it shows on a
    /// node's memory.
    #[test]
    fn a_waiting_task_s_futures_stay_small() {
        const MAX: usize = 1024;
        let run_task =
            future_size(|n: &Arc<NodeInner>, j: &Arc<JobState>, s: &TaskSpec, c: &LiveTask, _: ()| n.run_task(j, s, c));
        let run_remote = future_size(|n: &Arc<NodeInner>, j: &Arc<JobState>, s: &TaskSpec, o: &Options, m: bool| {
            n.run_remote(j, s, o, m)
        });
        assert!(run_task <= MAX, "run_task's future is {run_task} bytes");
        assert!(run_remote <= MAX, "run_remote's future is {run_remote} bytes");
        // On the node a task was sent to, the stream it came on.
        let serve_task = future_size(
            |n: &Arc<NodeInner>, r: Box<TaskRequest>, s: &mut quinn::SendStream, v: &mut quinn::RecvStream, _: ()| {
                n.serve_task(r, s, v)
            },
        );
        assert!(serve_task <= 2 * MAX, "serve_task's future is {serve_task} bytes");
        // An actor's session there, for as long as the actor lives.
        let serve_actor = future_size(
            |n: &Arc<NodeInner>, r: Box<TaskRequest>, s: quinn::SendStream, v: quinn::RecvStream, _: ()| {
                n.serve_actor(r, s, v)
            },
        );
        assert!(serve_actor <= 3 * MAX, "serve_actor's future is {serve_actor} bytes");
    }
}
