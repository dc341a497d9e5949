//! An actor's loop as a future that runs where it is woken — or in the
//! caller that waits for what it makes.
//!
//! Spawned as a tokio task, an actor's loop and a caller making one sync
//! call after another ping-pong through tokio's scheduler: the call wakes
//! the actor, the result wakes the caller, and after three such turns in a
//! row on one worker tokio wakes the other, idle worker to share them — a
//! futex wake and two context switches every few calls (23,287 context
//! switches for 100,000 sync calls, the kernel's scheduler a third of the
//! row's CPU in `perf`). [`ActorLoop`] keeps the loop's future itself: whoever
//! wakes it schedules a runner, as tokio would, but a caller that is about
//! to wait for the result of a call it just made polls the loop right
//! there ([`ActorLoop::run_inline`]), on its own thread, as a caller already
//! runs a task it waits for that no worker has started (`Inline`).
//!
//! Nothing of the actor's isolation changes: its calls run in its own
//! instance, one at a time, in mailbox order; only the thread that polls
//! the loop does.

use crate::lock;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Wake, Waker};
use tokio::sync::Notify;
use wray_core::ObjectId;

/// An actor's whole life on this node.
pub(crate) type LoopFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Waiting to be woken.
const IDLE: u8 = 0;
/// Woken: a runner is spawned to poll it, unless a caller polls it first.
const SCHEDULED: u8 = 1;
/// Being polled.
const RUNNING: u8 = 2;
/// Woken while being polled: polled again once this poll ends.
const NOTIFIED: u8 = 3;
/// Ended (or panicked): its future is dropped.
const DONE: u8 = 4;

/// How many loops a caller may poll inside each other (an actor's call
/// waiting on another actor's): each level adds host frames to the
/// caller's fiber stack; deeper, callers wait as before.
const MAX_INLINE_DEPTH: u32 = 4;

/// An actor's loop and who polls it.
pub(crate) struct ActorLoop {
    state: AtomicU8,
    /// A runner is spawned and has not started: waking again need not
    /// spawn another (the one spawned polls whatever woke it last).
    runner_spawned: AtomicBool,
    future: Mutex<Option<LoopFuture>>,
    runtime: tokio::runtime::Handle,
    /// Tells the owner task the loop ended ([`ActorLoop::spawn`]).
    ended: Notify,
}

impl ActorLoop {
    /// Starts `future` on the current runtime. A tokio task owns it for as
    /// long as it lives — it only waits, and drops the loop if the runtime
    /// shuts down first (the loop's waker, held by its own mailbox, would
    /// otherwise keep it alive for ever).
    pub(crate) fn spawn(future: LoopFuture) -> Arc<ActorLoop> {
        let runtime = tokio::runtime::Handle::current();
        let run = Arc::new(ActorLoop {
            state: AtomicU8::new(SCHEDULED),
            runner_spawned: AtomicBool::new(false),
            future: Mutex::new(Some(future)),
            runtime: runtime.clone(),
            ended: Notify::new(),
        });
        let owner = Owner(run.clone());
        runtime.spawn(async move {
            // `notify_one` leaves a permit if the loop ends first.
            owner.0.ended.notified().await;
            drop(owner);
        });
        run.spawn_runner(false);
        run
    }

    /// Spawns a task that polls the loop, unless one is spawned already.
    /// `yield_first`: the loop asked to be polled again at once (an
    /// instance yielding at an epoch tick), so the runner lets the worker's
    /// other tasks go first, as a tokio task yielding would.
    fn spawn_runner(self: &Arc<Self>, yield_first: bool) {
        if self.runner_spawned.swap(true, Ordering::AcqRel) {
            return;
        }
        let run = self.clone();
        self.runtime.spawn(async move {
            if yield_first {
                tokio::task::yield_now().await;
            }
            // Cleared before the state is read: a wake after this spawns a
            // runner of its own, so none is lost.
            run.runner_spawned.store(false, Ordering::Release);
            run.poll_if_scheduled();
        });
    }

    /// Polls the loop now, on this thread, if it is woken and nobody polls
    /// it: what a caller does right before it waits for a call's result.
    /// Returns once the loop waits again (its mailbox is empty, or a call
    /// waits on something), or ends.
    pub(crate) fn run_inline(self: &Arc<Self>) {
        let depth = INLINE_DEPTH.get();
        if depth >= MAX_INLINE_DEPTH {
            return;
        }
        INLINE_DEPTH.set(depth + 1);
        self.poll_if_scheduled();
        INLINE_DEPTH.set(depth);
    }

    fn poll_if_scheduled(self: &Arc<Self>) {
        if self.state.compare_exchange(SCHEDULED, RUNNING, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return;
        }
        let waker = Waker::from(self.clone());
        let mut cx = Context::from_waker(&waker);
        let ended = {
            let mut future = lock(&self.future);
            match future.as_mut() {
                None => true,
                Some(run) => {
                    // A panic ends this actor's loop, not the caller that
                    // polled it (a tokio task's panic is caught likewise).
                    let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run.as_mut().poll(&mut cx)));
                    match polled {
                        Ok(Poll::Pending) => false,
                        Ok(Poll::Ready(())) => true,
                        Err(_) => {
                            tracing::error!("an actor's loop panicked; its calls are left unanswered");
                            true
                        }
                    }
                }
            }
        };
        if ended {
            self.end();
            return;
        }
        if self.state.compare_exchange(RUNNING, IDLE, Ordering::AcqRel, Ordering::Acquire).is_err() {
            // Woken while polled (NOTIFIED): another turn, from a runner,
            // so that a caller goes back to its own work.
            self.state.store(SCHEDULED, Ordering::Release);
            self.spawn_runner(true);
        }
    }

    /// Drops the loop's future and lets its owner task end.
    fn end(&self) {
        self.state.store(DONE, Ordering::Release);
        let future = lock(&self.future).take();
        drop(future);
        self.ended.notify_one();
    }
}

impl Wake for ActorLoop {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            let next = match state {
                IDLE => SCHEDULED,
                RUNNING => NOTIFIED,
                // Scheduled or notified already, or ended.
                _ => return,
            };
            match self.state.compare_exchange(state, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(now) => state = now,
            }
        }
        if state == IDLE {
            self.spawn_runner(false);
        }
    }
}

/// Drops the loop when the runtime drops its owner task first.
struct Owner(Arc<ActorLoop>);

impl Drop for Owner {
    fn drop(&mut self) {
        if self.0.state.load(Ordering::Acquire) != DONE {
            self.0.end();
        }
    }
}

thread_local! {
    /// Loops this thread is polling inline, nested.
    static INLINE_DEPTH: Cell<u32> = const { Cell::new(0) };
    /// The last call this thread delivered to a local actor: its result,
    /// and the actor's loop. A caller that then waits for that result
    /// polls the loop itself ([`take_if_calling`]). On another thread (the
    /// caller's task moved between workers) it is simply not found.
    static LAST_CALL: RefCell<Option<(ObjectId, Weak<ActorLoop>)>> = const { RefCell::new(None) };
}

/// Notes that this thread just delivered a call to the actor `run` loops,
/// whose result will be `output`.
pub(crate) fn note_call(output: ObjectId, run: Weak<ActorLoop>) {
    LAST_CALL.with(|c| *c.borrow_mut() = Some((output, run)));
}

/// The loop of the actor making `output`, if this thread just delivered
/// that call.
pub(crate) fn take_if_calling(output: ObjectId) -> Option<Arc<ActorLoop>> {
    LAST_CALL.with(|c| {
        let mut c = c.borrow_mut();
        if c.as_ref().is_some_and(|(id, _)| *id == output) { c.take().and_then(|(_, run)| run.upgrade()) } else { None }
    })
}
