//! Actors: one long-lived instance each, fed by a mailbox.
//!
//! Calls execute one at a time on the instance. With `max_concurrency` 1
//! (the default) they also *start* in submission order: a call whose
//! arguments are still being computed holds back the calls behind it. With
//! `max_concurrency` N > 1, up to N calls wait for their arguments at once
//! and each runs as soon as its arguments are ready, so a slow argument does
//! not block later calls (Ray's ordering for concurrent actors). A Wasm
//! instance cannot run two calls at the same time, so N never means
//! parallel execution inside one actor.

use crate::cluster::remote_actor::Hosted;
use crate::local::actor_handles::{ALL_HANDLES_DROPPED, Handles};
use crate::local::actor_loop::ActorLoop;
use crate::local::job::JobState;
use crate::{Held, NodeInner, lock};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::Poll;
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use wray_core::{ActorId, Error, ObjectId, Options, TaskId};
use wray_host::{ArgSpec, CallError, Caller, Checkpoint, Delta, Instance, Services};
use wray_sched::actor_session::RestartBudget;
use wray_store::Object;

/// A queued method call.
pub(crate) struct ActorCall {
    pub(crate) task: TaskId,
    pub(crate) method: String,
    pub(crate) args: Vec<ArgSpec>,
    pub(crate) output: ObjectId,
    pub(crate) pinned: Vec<ObjectId>,
    /// A generator method's window of unread items (`set_item_window`),
    /// set on the output where the call is made and sent on with the call
    /// to the node hosting the actor, which sets it on its own; 0: none.
    pub(crate) generator_backpressure: u32,
    /// Times the call was run again after a crash or the loss of the node
    /// hosting the actor interrupted it (bounded by `max_task_retries`).
    pub(crate) retries: u32,
}

/// An actor's calls in submission order: calls interrupted by the loss of
/// the node hosting the actor come back here to run again, ahead of the
/// calls submitted after them.
pub(crate) struct Mailbox {
    again: std::collections::VecDeque<ActorCall>,
    rx: mpsc::UnboundedReceiver<ActorCall>,
    /// How many times an interrupted call may run again.
    pub(crate) max_task_retries: u32,
    /// Calls taken out so far, shared with [`ActorState::calls`]'s reader
    /// (the difference is what is still queued).
    taken: Arc<AtomicU64>,
}

impl Mailbox {
    /// The next call, or `None` once every handle is gone. Cancel-safe.
    pub(crate) async fn recv(&mut self) -> Option<ActorCall> {
        let call = match self.again.pop_front() {
            Some(call) => Some(call),
            None => self.rx.recv().await,
        };
        if call.is_some() {
            self.taken.fetch_add(1, Ordering::Relaxed);
        }
        call
    }

    /// The next call if one is queued now: `Ready(Some)`; `Ready(None)`
    /// once every handle is gone; `Pending` if none is queued.
    pub(crate) fn try_recv(&mut self) -> Poll<Option<ActorCall>> {
        let call = match self.again.pop_front() {
            Some(call) => call,
            None => match self.rx.try_recv() {
                Ok(call) => call,
                Err(mpsc::error::TryRecvError::Empty) => return Poll::Pending,
                Err(mpsc::error::TryRecvError::Disconnected) => return Poll::Ready(None),
            },
        };
        self.taken.fetch_add(1, Ordering::Relaxed);
        Poll::Ready(Some(call))
    }

    /// Queues interrupted calls (oldest first) to run before any other.
    pub(crate) fn run_again(&mut self, calls: Vec<ActorCall>) {
        self.taken.fetch_sub(calls.len() as u64, Ordering::Relaxed);
        for call in calls.into_iter().rev() {
            self.again.push_front(call);
        }
    }
}

/// What an actor's loop does next: run a call whose arguments a helper
/// task resolved (or find that task panicked), or take the next call from
/// the mailbox (`None`: it closed).
enum Next {
    Resolved(Result<(ActorCall, Result<Vec<bytes::Bytes>, Error>), tokio::task::JoinError>),
    Call(Option<ActorCall>),
}

/// How a movable wait for this node's room ended.
enum Waited {
    Held(Held),
    /// Spillback found room elsewhere: place the actor again.
    Moved,
    /// Killed while it waited.
    Killed,
}

struct Life<'a> {
    job: &'a Arc<JobState>,
    actor: &'a Arc<ActorState>,
    spec: &'a ActorSpec,
    ctor_args: Vec<bytes::Bytes>,
    /// The actor's resources, held for its whole life.
    held: Held,
    instance: Option<Instance>,
    time: Option<std::time::Duration>,
    /// Calls completed since the last snapshot.
    calls_since_snapshot: u32,
    /// Whether the last snapshot was refused (logged once per refusal run).
    refused: bool,
    /// `Class.method` of the methods called last, as every call's `Caller`
    /// and messages name them: made once, not per call (two allocations
    /// of a call's dozen). Bounded: a method name is the caller's to choose.
    names: Vec<(String, Arc<str>)>,
    /// Small results of calls run back to back, settled together
    /// ([`NodeInner::settle_results`]).
    settled: Vec<Settled>,
}

/// A call's result waiting to be settled with the next batch, and what
/// must live until it is: the refs its value nests, held by the method's
/// handles, and the call's pinned arguments.
struct Settled {
    output: ObjectId,
    outcome: Result<Object, Error>,
    held: Option<wray_host::HeldRefs>,
    pinned: Vec<ObjectId>,
}

/// Results an actor settles under one hold of the store's lock: while
/// calls are queued and run back to back (a caller pipelining them), each
/// result settled alone took the store's lock against the caller's core
/// registering the next call's output (`ObjectStore::create_pending`). The
/// batch goes when no call is waiting to run, when the next call waits
/// for anything (it may wait for one of these results), before a restart,
/// and at this many.
const RESULT_BATCH: usize = 32;

/// The largest result that waits for a batch; larger ones are settled at
/// once (after the batch), as the node lands large objects off the
/// runtime's worker threads (`NodeInner::landing`).
const BATCHED_RESULT_BYTES: usize = 64 << 10;

/// Method names an actor keeps `Class.method` strings for ([`Life`]).
const METHOD_NAMES_KEPT: usize = 16;

impl Life<'_> {
    /// `Class.method` for `method`.
    fn function_name(&mut self, method: &str) -> Arc<str> {
        if let Some((_, name)) = self.names.iter().find(|(m, _)| m == method) {
            return name.clone();
        }
        let name: Arc<str> = format!("{}.{}", self.actor.short_class(), method).into();
        if self.names.len() == METHOD_NAMES_KEPT {
            self.names.remove(0);
        }
        self.names.push((method.to_string(), name.clone()));
        name
    }
}

/// What the constructor needs.
pub(crate) struct ActorSpec {
    pub(crate) task: TaskId,
    pub(crate) args: Vec<ArgSpec>,
    pub(crate) options: Options,
    pub(crate) pinned: Vec<ObjectId>,
    /// Hosted on this node whatever the load (another node sent it here).
    pub(crate) here: bool,
    /// The snapshot to start from instead of running the constructor
    /// (the owner's copy, for an actor re-created after its node died).
    pub(crate) image: Checkpoint,
    /// Where each snapshot's changes and each restart are reported (to the
    /// owner, for an actor hosted for another node).
    pub(crate) to_owner: Option<mpsc::UnboundedSender<ToOwner>>,
    /// Writes each change of the owner's snapshot to disk (a detached
    /// actor's, at the head).
    pub(crate) persist: Option<Persist>,
    /// Ends once its last handle is gone (`actor_handles.rs`): an actor
    /// its job created on this node, not detached.
    pub(crate) collectable: bool,
}

/// What a node hosting another node's actor tells the owner between
/// results.
pub(crate) enum ToOwner {
    /// The snapshot taken after the call of this task changed these blocks.
    Snapshot(Delta, TaskId),
    /// The actor restarted after a crash (one of its `max_restarts`).
    Restarted,
}

/// Makes a snapshot's change durable; runs on a blocking thread.
pub(crate) type Persist = Arc<dyn Fn(&Delta) -> Result<(), String> + Send + Sync>;

/// The shared view of an actor: its mailbox and whether it lives.
pub(crate) struct ActorState {
    pub(crate) id: ActorId,
    pub(crate) class: String,
    pub(crate) name: Option<String>,
    /// `None` once the actor is dead for good: its loop then drains what is
    /// queued and ends.
    mailbox: Mutex<Option<mpsc::UnboundedSender<ActorCall>>>,
    dead: Mutex<Option<String>>,
    /// A pending kill: the reason, and whether restarting is forbidden.
    pub(crate) kill_request: Mutex<Option<(String, bool)>>,
    pub(crate) control: Notify,
    /// Interrupts the call running right now.
    interrupt: Mutex<Arc<AtomicBool>>,
    /// The actor's last memory snapshot (empty: none), kept where the actor
    /// is owned so that it survives the node hosting it.
    pub(crate) checkpoint: Mutex<Checkpoint>,
    /// Makes the snapshot's changes durable (detached actors).
    pub(crate) persist: Option<Persist>,
    /// Restarts used, whatever their cause (a crash here, a crash on a
    /// node hosting it, the loss of that node): one budget,
    /// `max_restarts`, as in Ray (`wray_sched::actor_session`).
    restarts: Mutex<RestartBudget>,
    /// The node hosting it (`None` until placed).
    host: Mutex<Option<String>>,
    /// Calls submitted, and taken out of the mailbox (to run or to fail).
    calls: AtomicU64,
    taken: Arc<AtomicU64>,
    /// Its loop, for a caller about to wait for a call's result to poll
    /// (`actor_loop.rs`); set once the loop is spawned.
    pub(crate) run: OnceLock<Weak<ActorLoop>>,
    /// Its handles, whose end ends it (`actor_handles.rs`).
    pub(crate) handles: Handles,
}

impl ActorState {
    /// Records the node hosting the actor.
    pub(crate) fn hosted_on(&self, node: &str) {
        let mut host = lock(&self.host);
        if host.as_deref() != Some(node) {
            *host = Some(node.to_string());
        }
    }

    /// What state listings show of it: (host, calls submitted, calls still
    /// queued, restarts used).
    pub(crate) fn activity(&self) -> (Option<String>, u64, u64, u32) {
        let calls = self.calls.load(Ordering::Relaxed);
        let queued = calls.saturating_sub(self.taken.load(Ordering::Relaxed));
        (lock(&self.host).clone(), calls, queued, lock(&self.restarts).used())
    }

    /// Takes one restart from the budget; false once it is used up.
    pub(crate) fn take_restart(&self) -> bool {
        lock(&self.restarts).take()
    }

    /// Restarts still allowed.
    pub(crate) fn restarts_left(&self) -> u32 {
        lock(&self.restarts).left()
    }

    /// The node hosting the actor restarted it after a crash, spending one
    /// of the restarts it was given.
    pub(crate) fn restarted_elsewhere(&self) {
        lock(&self.restarts).spent_elsewhere();
    }

    /// Writes a change of the owner's snapshot to disk, if this actor's
    /// snapshots are kept there; waits until it is.
    pub(crate) async fn persist(&self, delta: Delta) {
        let Some(persist) = self.persist.clone() else { return };
        let written = tokio::task::spawn_blocking(move || persist(&delta)).await;
        if let Err(e) = written.map_err(|e| e.to_string()).and_then(|r| r) {
            tracing::warn!("actor {} ({}): cannot write its snapshot: {e}", self.id, self.class);
        }
    }
}

impl ActorState {
    /// Why the actor is dead, if it is.
    pub(crate) fn dead_reason(&self) -> Option<String> {
        lock(&self.dead).clone()
    }

    /// Kills the actor: interrupts the running call; the actor restarts if
    /// allowed and it has restarts left, else it dies and its calls fail.
    pub(crate) fn kill(&self, reason: &str, no_restart: bool) {
        *lock(&self.kill_request) = Some((reason.to_string(), no_restart));
        lock(&self.interrupt).store(true, std::sync::atomic::Ordering::Relaxed);
        self.control.notify_one();
    }

    /// Takes no more calls: the loop runs those queued, then ends.
    pub(crate) fn close_mailbox(&self) {
        lock(&self.mailbox).take();
    }

    /// Queues a call, or hands it back if the actor's loop has ended.
    pub(crate) fn send(&self, call: ActorCall) -> Result<(), Box<ActorCall>> {
        match lock(&self.mailbox).as_ref() {
            Some(tx) => {
                tx.send(call).map_err(|e| Box::new(e.0))?;
                let sent = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
                if sent.saturating_sub(self.taken.load(Ordering::Relaxed)) == 2 {
                    let_another_worker_take_it();
                }
                Ok(())
            }
            None => Err(Box::new(call)),
        }
    }

    fn short_class(&self) -> &str {
        self.class.rsplit("::").next().unwrap_or(&self.class)
    }
}

/// Called when a caller queues a second call behind one the actor's loop
/// has not taken yet: the caller is pipelining, not waiting.
///
/// Waking the loop from a caller on a tokio worker puts it in that
/// worker's LIFO slot, which no other worker may steal, and wakes no idle
/// worker: the loop then runs only once the caller blocks, on the caller's
/// thread — right for a call and a `get` (one thread, no hand-off), wrong
/// for a batch of async calls, which then ran submission and execution one
/// after the other on one core while the other idled. A spawned no-op
/// takes the slot instead, which moves the loop to the worker's stealable
/// queue and wakes an idle worker to take it. Once per idle-to-busy turn of
/// a pipelined actor, not per call.
fn let_another_worker_take_it() {
    if tokio::runtime::Handle::try_current().is_ok() {
        drop(tokio::spawn(async {}));
    }
}

impl NodeInner {
    /// Creates the actor's state and starts its loop.
    pub(crate) fn spawn_actor(
        self: &Arc<Self>,
        job: Arc<JobState>,
        id: ActorId,
        class: String,
        mut spec: ActorSpec,
    ) -> Arc<ActorState> {
        let (tx, rx) = mpsc::unbounded_channel();
        let taken = Arc::new(AtomicU64::new(0));
        let actor = Arc::new(ActorState {
            id,
            class,
            name: spec.options.name.clone(),
            mailbox: Mutex::new(Some(tx)),
            dead: Mutex::new(None),
            kill_request: Mutex::new(None),
            control: Notify::new(),
            interrupt: Mutex::new(Arc::new(AtomicBool::new(false))),
            checkpoint: Mutex::new(std::mem::take(&mut spec.image)),
            persist: spec.persist.take(),
            restarts: Mutex::new(RestartBudget::new(spec.options.max_restarts)),
            host: Mutex::new(None),
            calls: AtomicU64::new(0),
            taken: taken.clone(),
            run: OnceLock::new(),
            handles: Handles::new(spec.task, spec.collectable),
        });
        let node = self.clone();
        let state = actor.clone();
        let run = ActorLoop::spawn(Box::pin(async move {
            let mailbox =
                Mailbox { again: Default::default(), rx, max_task_retries: spec.options.max_task_retries, taken };
            node.actor_loop(&job, &state, &spec, mailbox).await;
            node.unpin(&spec.pinned);
            if state.handles.collected() {
                // Nobody holds its id any more.
                job.retire_collected(&state);
            }
        }));
        let _ = actor.run.set(Arc::downgrade(&run));
        actor
    }

    /// A fresh instance for the actor, with its interrupt flag installed.
    async fn fresh_instance(
        self: &Arc<Self>,
        job: &JobState,
        actor: &ActorState,
        spec: &ActorSpec,
        held: &Held,
    ) -> Result<Instance, String> {
        let caller = Caller {
            job: job.id,
            task: spec.task,
            actor: Some(actor.id),
            function: format!("{}.<constructor>", actor.short_class()).into(),
            holds: held.resources.clone(),
            env: spec.options.env.clone(),
        };
        let services: Arc<dyn Services> = self.clone();
        let grants = job.config.grants.with_env(&spec.options.env);
        let mut instance = Instance::new(&job.component, services, caller, job.limits(&spec.options), &grants)
            .await
            .map_err(|e| e.to_string())?;
        let flag = Arc::new(AtomicBool::new(false));
        *lock(&actor.interrupt) = flag.clone();
        instance.set_cancel_flag(flag);
        Ok(instance)
    }

    /// Builds the actor's instance: from its last snapshot if it has one,
    /// else (or if the snapshot cannot be put back) by running its
    /// constructor.
    async fn construct(
        self: &Arc<Self>,
        job: &JobState,
        actor: &ActorState,
        spec: &ActorSpec,
        args: &[bytes::Bytes],
        held: &Held,
    ) -> Result<Instance, String> {
        let time = job.limits(&spec.options).time;
        let mut instance = self.fresh_instance(job, actor, spec, held).await?;
        let mut image = std::mem::take(&mut *lock(&actor.checkpoint));
        if !image.is_empty() {
            let restored = instance.restore(&mut image, time).await;
            *lock(&actor.checkpoint) = image;
            match restored {
                Ok(()) => {
                    tracing::info!("actor {} ({}) continues from its snapshot", actor.id, actor.class);
                    return Ok(instance);
                }
                Err(e) => {
                    tracing::warn!(
                        "actor {} ({}) cannot continue from its snapshot, so its constructor runs again: {e}",
                        actor.id,
                        actor.class
                    );
                    // The next snapshot starts a new image.
                    *lock(&actor.checkpoint) = Checkpoint::default();
                    instance = self.fresh_instance(job, actor, spec, held).await?;
                }
            }
        }
        instance
            .actor_new(&actor.class, args.to_vec(), time)
            .await
            .map_err(|e| format!("its constructor failed: {e}"))?;
        Ok(instance)
    }

    pub(crate) fn mark_dead(&self, job: &JobState, actor: &ActorState, reason: String) {
        tracing::debug!("actor {} ({}) died: {reason}", actor.id, actor.class);
        *lock(&actor.dead) = Some(reason);
        lock(&actor.mailbox).take();
        job.free_name(actor);
    }

    /// Places the actor (here if there is room now; on another node if it
    /// cannot run here or another node has room; else here once resources
    /// free up), then runs it until it dies or its mailbox closes.
    async fn actor_loop(
        self: &Arc<Self>,
        job: &Arc<JobState>,
        actor: &Arc<ActorState>,
        spec: &ActorSpec,
        mut rx: Mailbox,
    ) {
        let mut node_losses = 0u32;
        if let Some(e) = self.unmet_affinity(&spec.options, spec.here) {
            self.mark_dead(job, actor, format!("{} cannot be placed: {e}", actor.class));
            return self.drain_dead(actor, rx).await;
        }
        let held = loop {
            // SPREAD and a node affinity to another node ask the head
            // first, room here or not (again after a node loss: its
            // replacement spreads, or goes to its node, too).
            let spread = self.asks_head(&spec.options, spec.here);
            if spread.is_none()
                && let Some(held) = self.try_acquire_now(&spec.options.resources)
            {
                break Some(held);
            }
            let Some(must_move) = spread.or_else(|| self.actor_should_move(spec)) else { break None };
            match self.host_elsewhere(job, actor, spec, &mut rx, must_move).await {
                // No node has room now. Wait here, but movable: when the
                // head's view shows room elsewhere first (the heartbeat
                // after a killed actor's resources come free, say), the
                // wait ends and the head is asked again. Waiting here for
                // good could deadlock: this node's room may be held by the
                // very actors that wait for this one (a worker group whose
                // members wait for each other in a collective).
                Hosted::Busy => match self.wait_here_movable(actor, spec).await {
                    Waited::Held(held) => break Some(held),
                    Waited::Moved => continue,
                    Waited::Killed => return self.killed_before_start(job, actor, rx).await,
                },
                Hosted::Ended => return self.drain_dead(actor, rx).await,
                Hosted::Lost(why) => {
                    // Its node died: re-create it while restarts are left.
                    if job.cancelled() || actor.dead_reason().is_some() || !actor.take_restart() {
                        let what = format!("{} was lost with its node ({why}) and has no restarts left", actor.class);
                        self.mark_dead(job, actor, what);
                        return self.drain_dead(actor, rx).await;
                    }
                    node_losses += 1;
                    tracing::info!("restarting actor {} elsewhere: its node failed ({why})", actor.class);
                    tokio::time::sleep(Duration::from_millis(200) * node_losses).await;
                }
            }
        };
        self.host_here(job, actor, spec, rx, held).await
    }

    /// Waits for this node's room as a movable demand: spillback
    /// (`NodeInner::rebalance`) may hand it to another node instead.
    async fn wait_here_movable(self: &Arc<Self>, actor: &ActorState, spec: &ActorSpec) -> Waited {
        tokio::select! {
            granted = self.acquire(spec.task, spec.options.resources.clone(), true, self.ticket()) => match granted {
                Some(resources) => Waited::Held(Held::new(self.clone(), resources)),
                None => Waited::Moved,
            },
            () = actor.control.notified() => Waited::Killed,
        }
    }

    /// An actor killed while it waited for room: dead, its calls failed.
    async fn killed_before_start(&self, job: &JobState, actor: &ActorState, rx: Mailbox) {
        let reason = lock(&actor.kill_request).take().map_or_else(|| "killed".to_string(), |k| k.0);
        self.mark_dead(job, actor, format!("{} was killed before it started: {reason}", actor.class));
        self.drain_dead(actor, rx).await
    }

    async fn host_here(
        self: &Arc<Self>,
        job: &Arc<JobState>,
        actor: &Arc<ActorState>,
        spec: &ActorSpec,
        mut rx: Mailbox,
        held: Option<Held>,
    ) {
        let acquire = async {
            match held {
                Some(h) => h,
                None => {
                    let granted = self.acquire(spec.task, spec.options.resources.clone(), false, self.ticket()).await;
                    Held::new(self.clone(), granted.expect("actors are never moved"))
                }
            }
        };
        let held = tokio::select! {
            held = acquire => {
                if spec.here {
                    // Placed here by the head: its heartbeats count it as
                    // held now.
                    self.arrived(spec.task);
                }
                held
            }
            () = actor.control.notified() => return self.killed_before_start(job, actor, rx).await,
        };
        let held = held.for_actor();
        actor.hosted_on(&self.id);
        let ctor_args = match self.resolve_args(&spec.args).await {
            Ok(a) => a,
            Err(e) => {
                self.mark_dead(job, actor, format!("{}: a constructor argument failed: {e}", actor.class));
                return self.drain_dead(actor, rx).await;
            }
        };
        let instance = match self.construct(job, actor, spec, &ctor_args, &held).await {
            Ok(i) => Some(i),
            Err(e) => {
                self.mark_dead(job, actor, format!("{}: {e}", actor.class));
                None
            }
        };
        let mut life = Life {
            job,
            actor,
            spec,
            ctor_args,
            held,
            instance,
            time: job.limits(&spec.options).time,
            calls_since_snapshot: 0,
            refused: false,
            names: Vec::new(),
            settled: Vec::new(),
        };
        let limit = spec.options.max_concurrency.max(1) as usize;
        let mut resolving: JoinSet<(ActorCall, Result<Vec<bytes::Bytes>, Error>)> = JoinSet::new();
        let mut closed = false;
        loop {
            let kill = lock(&actor.kill_request).take();
            if let Some((reason, no_restart)) = kill {
                self.settle_results(&mut life.settled);
                life.instance = None;
                if !no_restart {
                    self.restart(&mut life, &format!("was killed ({reason})")).await;
                } else {
                    self.mark_dead(job, actor, format!("{} was killed: {reason}", actor.class));
                }
            }
            if closed && resolving.is_empty() {
                break;
            }
            // A call already queued while none waits for its arguments is
            // taken without the select below, whose watch for a kill joins
            // the actor's `control` waiters and leaves them again: two locks
            // per call, most of a pipelined call's share of the loop. A kill
            // is not missed: the check above runs before every call.
            let queued = if !closed && resolving.is_empty() { rx.try_recv() } else { Poll::Pending };
            let next = match queued {
                Poll::Ready(msg) => {
                    // `try_recv` spends none of the task's cooperative budget,
                    // as `recv` does: without this, a stream of short calls
                    // would keep the worker from its other tasks (and its
                    // I/O) until an epoch tick, not for 128 calls at most.
                    tokio::task::coop::consume_budget().await;
                    Next::Call(msg)
                }
                Poll::Pending => {
                    // Nothing to run now: the results so far go.
                    self.settle_results(&mut life.settled);
                    tokio::select! {
                        biased;
                        () = actor.control.notified() => continue,
                        Some(done) = resolving.join_next() => Next::Resolved(done),
                        msg = rx.recv(), if !closed && resolving.len() < limit => Next::Call(msg),
                    }
                }
            };
            match next {
                Next::Resolved(Ok((call, args))) => self.run_call(&mut life, call, args).await,
                // The task resolving them panicked; its call was dropped.
                Next::Resolved(Err(_)) => {}
                Next::Call(None) => closed = true,
                // Nothing ahead of it and no ref to wait for: run it now,
                // without a hop through another task (the common case, and
                // what sync actor calls are measured by).
                Next::Call(Some(call))
                    if resolving.is_empty() && call.args.iter().all(|a| matches!(a, ArgSpec::Value(_))) =>
                {
                    let args = self.resolve_args(&call.args).await;
                    self.run_call(&mut life, call, args).await;
                }
                Next::Call(Some(call)) => {
                    let node = self.clone();
                    resolving.spawn(async move {
                        let args = node.resolve_args(&call.args).await;
                        (call, args)
                    });
                }
            }
        }
        self.settle_results(&mut life.settled);
        drop(life);
        let ended = match actor.handles.collected() {
            true => format!("{} ended: {ALL_HANDLES_DROPPED}", actor.class),
            false => format!("{} ended with its job", actor.class),
        };
        self.mark_dead(job, actor, actor.dead_reason().unwrap_or(ended));
    }

    /// Runs one call on the live instance and settles its result; a call
    /// that poisons the instance triggers a restart (or the actor's death).
    async fn run_call(self: &Arc<Self>, life: &mut Life<'_>, call: ActorCall, args: Result<Vec<bytes::Bytes>, Error>) {
        let actor = life.actor;
        // The references the method handed over with its result keep the
        // objects it nests alive until the store has pinned them.
        let mut held = None;
        let dead = |actor: &ActorState| {
            Error::ActorDied(actor.dead_reason().unwrap_or_else(|| format!("{} is not running", actor.class)))
        };
        let outcome = match (life.instance.is_some(), args) {
            (false, _) => Err(dead(actor)),
            (true, Err(e)) => Err(e),
            (true, Ok(args)) => {
                let function = life.function_name(&call.method);
                // A call its actor's crash interrupted runs again on the
                // restarted actor while it has retries left.
                let mut retries_left = life.spec.options.max_task_retries.saturating_sub(call.retries);
                loop {
                    let Some(inst) = life.instance.as_mut() else { break Err(dead(actor)) };
                    let caller = Caller {
                        job: life.job.id,
                        task: call.task,
                        actor: Some(actor.id),
                        function: function.clone(),
                        holds: life.held.resources.clone(),
                        env: life.spec.options.env.clone(),
                    };
                    // A kill interrupts running wasm through the instance's
                    // flag; racing the call also stops a method blocked in
                    // the host. The call is polled first: one that never
                    // waits in the host never joins `control`'s waiters (a
                    // lock to join, one to leave), and a kill meanwhile
                    // leaves its permit for the loop, which checks for kills
                    // before every call.
                    //
                    // A call that waits — for an object, a reader, an epoch
                    // tick — first lets the batched results before it go:
                    // it may be waiting for one of them.
                    let run = {
                        let mut running =
                            std::pin::pin!(inst.actor_call(caller, &call.method, args.clone(), life.time));
                        match std::future::poll_fn(|cx| Poll::Ready(running.as_mut().poll(cx))).await {
                            Poll::Ready(r) => r,
                            Poll::Pending => {
                                self.settle_results(&mut life.settled);
                                tokio::select! {
                                    biased;
                                    r = running => r,
                                    () = actor.control.notified() => Err(CallError::Cancelled),
                                }
                            }
                        }
                    };
                    match run {
                        Ok(v) => {
                            held = Some(v.held);
                            break Ok(Object { data: v.data, refs: v.refs });
                        }
                        Err(CallError::Cancelled) => {
                            // The request stays for the loop, which acts on it
                            // before the next call; here it only names why.
                            let why = lock(&actor.kill_request).as_ref().map(|k| format!(": {}", k.0));
                            break Err(Error::ActorDied(format!(
                                "{} was killed while running {}{}",
                                actor.class,
                                call.method,
                                why.unwrap_or_default()
                            )));
                        }
                        Err(e) => {
                            if e.poisons_instance() {
                                // The instance is unusable: restart or die.
                                self.settle_results(&mut life.settled);
                                life.instance = None;
                                self.restart(life, &format!("crashed in {}: {e}", call.method)).await;
                                if retries_left > 0 && life.instance.is_some() {
                                    retries_left -= 1;
                                    continue;
                                }
                            }
                            break Err(Error::task_failed(&*function, e.to_string()));
                        }
                    }
                }
            }
        };
        // The snapshot is taken before the result is released, so a caller
        // that saw the result finds its effect in the actor's state after
        // any restart.
        self.snapshot_after_call(life, call.task).await;
        let size = outcome.as_ref().map_or(0, |o| o.data.len());
        // Only for callers on this node: an actor hosted for an owner on
        // another node has each result forwarded by a task of its own, and
        // batched there, async calls across nodes fell into their slow mode
        // (73–145k/s against 129–158k) more often.
        if size <= BATCHED_RESULT_BYTES && life.spec.to_owner.is_none() {
            life.settled.push(Settled { output: call.output, outcome, held, pinned: call.pinned });
            if life.settled.len() >= RESULT_BATCH {
                self.settle_results(&mut life.settled);
            }
            return;
        }
        self.settle_results(&mut life.settled);
        self.landing(size, || self.store.complete(call.output, outcome));
        drop(held);
        self.unpin(&call.pinned);
    }

    /// Settles the batched results of an actor's calls ([`RESULT_BATCH`]),
    /// then lets go of what they held.
    fn settle_results(&self, settled: &mut Vec<Settled>) {
        if settled.is_empty() {
            return;
        }
        let taken = |s: &mut Settled| (s.output, std::mem::replace(&mut s.outcome, Ok(Object::default())));
        self.store.complete_all(settled.iter_mut().map(taken));
        for s in settled.drain(..) {
            drop(s.held);
            self.unpin(&s.pinned);
        }
    }

    /// Takes a snapshot of the actor's memory if it asked for one after
    /// every `checkpoint_every` calls and this call completes such a run.
    async fn snapshot_after_call(self: &Arc<Self>, life: &mut Life<'_>, after: TaskId) {
        let every = life.spec.options.checkpoint_every;
        let actor = life.actor;
        let Some(instance) = life.instance.as_mut() else { return };
        if every == 0 {
            return;
        }
        life.calls_since_snapshot += 1;
        if life.calls_since_snapshot < every {
            return;
        }
        life.calls_since_snapshot = 0;
        let mut image = std::mem::take(&mut *lock(&actor.checkpoint));
        let full = image.is_empty();
        let taken = instance.snapshot(&mut image, life.time).await;
        let wanted = life.spec.to_owner.is_some() || actor.persist.is_some();
        let delta = match &taken {
            Ok(changed) if wanted => Some(image.delta(changed, full)),
            _ => None,
        };
        *lock(&actor.checkpoint) = image;
        match taken {
            Ok(_) => {
                // A hosted actor's owner keeps (and persists) the snapshot;
                // an owned one persists its own if it is detached.
                if let Some(delta) = delta {
                    match &life.spec.to_owner {
                        Some(to_owner) => drop(to_owner.send(ToOwner::Snapshot(delta, after))),
                        None => actor.persist(delta).await,
                    }
                }
                life.refused = false;
            }
            Err(e) => {
                // Refused (it holds host resources): the last snapshot
                // stays; a restart continues from it.
                if !life.refused {
                    tracing::warn!("actor {} ({}): no snapshot taken: {e}", actor.id, actor.class);
                }
                life.refused = true;
                if e.poisons_instance() {
                    life.instance = None;
                    self.restart(life, &format!("crashed while taking a snapshot: {e}")).await;
                }
            }
        }
    }

    /// Rebuilds the actor's instance (from its snapshot, or by re-running
    /// its constructor), if it has restarts left; otherwise marks it dead.
    /// `what` says what happened.
    async fn restart(self: &Arc<Self>, life: &mut Life<'_>, what: &str) {
        let (job, actor) = (life.job, life.actor);
        if job.cancelled() || !actor.take_restart() {
            self.mark_dead(job, actor, format!("{} {what} (no restarts left)", actor.class));
            return;
        }
        if let Some(to_owner) = &life.spec.to_owner {
            let _ = to_owner.send(ToOwner::Restarted);
        }
        match self.construct(job, actor, life.spec, &life.ctor_args, &life.held).await {
            Ok(i) => life.instance = Some(i),
            Err(err) => self.mark_dead(job, actor, format!("{} {what} and could not restart: {err}", actor.class)),
        }
    }

    /// Fails every call of a dead actor until its mailbox closes.
    async fn drain_dead(&self, actor: &ActorState, mut rx: Mailbox) {
        while let Some(call) = rx.recv().await {
            let reason = actor.dead_reason().unwrap_or_else(|| format!("{} is dead", actor.class));
            self.store.complete(call.output, Err(Error::ActorDied(reason)));
            self.unpin(&call.pinned);
        }
    }
}
