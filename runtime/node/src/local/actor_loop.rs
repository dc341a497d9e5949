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
        if self.state.compare_exchange(RUNNING, IDLE, Ordering::AcqRel, Ordering::Acquire).is_err()
            // Woken while polled (NOTIFIED): another turn, from a runner, so
            // that a caller goes back to its own work. The other way to fail
            // is DONE: the owner task ended the loop while this poll ran (the
            // runtime is shutting down), and DONE must stay.
            && self.state.compare_exchange(NOTIFIED, SCHEDULED, Ordering::AcqRel, Ordering::Acquire).is_ok()
        {
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
pub(crate) fn note_call(output: ObjectId, run: &Weak<ActorLoop>) {
    LAST_CALL.with(|c| match &mut *c.borrow_mut() {
        // The same actor as the last call (a caller pipelining calls to
        // it): only the output changes. Cloning the handle again would
        // count it up (and the old one down) on a line its loop's thread
        // writes too, every call.
        Some((last, known)) if Weak::ptr_eq(known, run) => *last = output,
        c => *c = Some((output, run.clone())),
    });
}

/// The loop of the actor making `output`, if this thread just delivered
/// that call.
pub(crate) fn take_if_calling(output: ObjectId) -> Option<Arc<ActorLoop>> {
    LAST_CALL.with(|c| {
        let mut c = c.borrow_mut();
        if c.as_ref().is_some_and(|(id, _)| *id == output) { c.take().and_then(|(_, run)| run.upgrade()) } else { None }
    })
}

#[cfg(test)]
mod tests {
    //! The loop's state machine with plain futures in place of an actor:
    //! every wake-up is served, whoever polls, and the loop ends cleanly.
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;
    use tokio::sync::mpsc;

    /// A loop that counts the messages it takes until its channel closes,
    /// and sets `dropped` when its future is dropped.
    fn counting(
        mut rx: mpsc::UnboundedReceiver<u32>,
        seen: Arc<AtomicUsize>,
        dropped: Arc<AtomicBool>,
    ) -> Arc<ActorLoop> {
        struct SetOnDrop(Arc<AtomicBool>);
        impl Drop for SetOnDrop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        ActorLoop::spawn(Box::pin(async move {
            let _guard = SetOnDrop(dropped);
            while rx.recv().await.is_some() {
                seen.fetch_add(1, Ordering::SeqCst);
            }
        }))
    }

    async fn eventually(what: &str, done: impl Fn() -> bool) {
        // Ten seconds: far beyond what any step here takes on a busy machine.
        for _ in 0..2_000 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("timed out waiting until {what}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_wake_is_lost_when_callers_poll_beside_its_runners() {
        // A lost wake-up shows as messages nobody takes; it needs an
        // unlucky interleaving, so the race runs several times.
        for _ in 0..20 {
            let (seen, dropped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
            let (tx, rx) = mpsc::unbounded_channel();
            let run = counting(rx, seen.clone(), dropped.clone());
            // Four threads send and poll inline, racing each other and the
            // runners the sends spawn; the second half only wakes, so a
            // wake lost there leaves messages no caller's poll would take.
            let (threads, per) = (4u32, 5_000u32);
            let senders: Vec<_> = (0..threads)
                .map(|_| {
                    let (tx, run) = (tx.clone(), run.clone());
                    std::thread::spawn(move || {
                        for i in 0..per {
                            tx.send(i).unwrap();
                            if i % 3 == 0 && i < per / 2 {
                                run.run_inline();
                            }
                        }
                    })
                })
                .collect();
            for s in senders {
                s.join().unwrap();
            }
            let total = (threads * per) as usize;
            eventually("every message is taken", || seen.load(Ordering::SeqCst) == total).await;
            drop(tx);
            eventually("the loop ends", || run.state.load(Ordering::SeqCst) == DONE).await;
            assert!(dropped.load(Ordering::SeqCst), "an ended loop drops its future");
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_loop_woken_while_polled_gets_another_turn() {
        // As an instance yielding at an epoch tick: the loop wakes itself
        // and returns Pending, three times, then ends. Nothing else wakes
        // it, so it ends only if each wake during a poll schedules a turn.
        let polls = Arc::new(AtomicUsize::new(0));
        let counted = polls.clone();
        let run = ActorLoop::spawn(Box::pin(std::future::poll_fn(move |cx| {
            if counted.fetch_add(1, Ordering::SeqCst) < 3 {
                cx.waker().wake_by_ref();
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })));
        // The first poll is this thread's own, inline: the turns after it
        // come from runners.
        run.run_inline();
        assert_eq!(polls.load(Ordering::SeqCst), 1);
        assert_eq!(run.state.load(Ordering::SeqCst), SCHEDULED);
        eventually("the loop ends", || run.state.load(Ordering::SeqCst) == DONE).await;
        assert_eq!(polls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_loop_ends_without_failing_its_caller() {
        let (tx, mut rx) = mpsc::unbounded_channel::<u32>();
        let run = ActorLoop::spawn(Box::pin(async move {
            let _ = rx.recv().await;
            panic!("the actor's loop fails");
        }));
        // Let the first poll (by the spawned runner) reach the channel.
        eventually("the loop waits", || run.state.load(Ordering::SeqCst) == IDLE).await;
        tx.send(1).unwrap();
        // This thread polls it now, unless the runner the send spawned
        // already did: either way the panic stays inside the loop.
        run.run_inline();
        eventually("the loop ends", || run.state.load(Ordering::SeqCst) == DONE).await;
        // Waking an ended loop does nothing.
        Waker::from(run.clone()).wake_by_ref();
        assert_eq!(run.state.load(Ordering::SeqCst), DONE);
        assert!(lock(&run.future).is_none());
    }

    #[test]
    fn a_runtime_shutting_down_drops_a_waiting_loop() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let (seen, dropped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let (tx, rx) = mpsc::unbounded_channel::<u32>();
        let run = rt.block_on(async {
            let run = counting(rx, seen.clone(), dropped.clone());
            tx.send(7).unwrap();
            eventually("the message is taken", || seen.load(Ordering::SeqCst) == 1).await;
            run
        });
        // The channel stays open: only the runtime's end can stop the loop.
        assert!(!dropped.load(Ordering::SeqCst));
        drop(rt);
        assert!(dropped.load(Ordering::SeqCst), "the owner task dropped the loop");
        assert_eq!(run.state.load(Ordering::SeqCst), DONE);
        drop(tx);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn callers_poll_inline_no_deeper_than_the_bound() {
        // Each loop, when polled, polls the next one inline, as an actor's
        // call waiting for another actor's result does, and records how
        // deep it was polled. On a single-threaded runtime no runner can
        // run until this test awaits, so the chain is polled by the caller.
        let n = MAX_INLINE_DEPTH as usize + 2;
        let depths: Arc<Vec<AtomicUsize>> = Arc::new((0..n).map(|_| AtomicUsize::new(usize::MAX)).collect());
        let mut next: Option<Arc<ActorLoop>> = None;
        let mut senders = Vec::new();
        for level in (0..n).rev() {
            let (inner, depths) = (next.clone(), depths.clone());
            let (tx, mut rx) = mpsc::unbounded_channel::<()>();
            let run = ActorLoop::spawn(Box::pin(async move {
                while rx.recv().await.is_some() {
                    depths[level].store(INLINE_DEPTH.get() as usize, Ordering::SeqCst);
                    if let Some(inner) = &inner {
                        inner.run_inline();
                    }
                }
            }));
            eventually("the loop waits", || run.state.load(Ordering::SeqCst) == IDLE).await;
            senders.push(tx);
            next = Some(run);
        }
        for tx in &senders {
            tx.send(()).unwrap();
        }
        next.unwrap().run_inline();
        // Level k was polled at depth k + 1, up to the bound.
        let bound = MAX_INLINE_DEPTH as usize;
        for (level, depth) in depths.iter().enumerate().take(bound) {
            assert_eq!(depth.load(Ordering::SeqCst), level + 1, "level {level} polled inline");
        }
        assert_eq!(depths[bound].load(Ordering::SeqCst), usize::MAX, "past the bound, nothing is polled inline");
        // Their runners poll the rest once the caller lets them.
        eventually("every loop ran", || depths.iter().all(|d| d.load(Ordering::SeqCst) != usize::MAX)).await;
        assert!(depths[bound].load(Ordering::SeqCst) < bound);
    }
}
