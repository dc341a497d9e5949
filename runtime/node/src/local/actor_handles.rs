//! Actors that end when their last handle goes, as Ray's do.
//!
//! A handle is a reference to the actor's *handle object*
//! (`ObjectId::actor_handle` of its creation task): an empty object in the
//! store, made by the first `actors.handle` call and counted like any other
//! — by the guests holding it, by values it is nested in, by the arguments
//! of tasks and calls on their way. So the store's reference counting, which
//! already follows refs into values and across instances, decides when the
//! last handle is gone; nothing here counts anything. Its freeing
//! (`ObjectStore::on_freed`) sends the actor to a collector task, which
//! closes the actor's mailbox: the calls already queued run, and the loop
//! ends, freeing the actor's resources and its name. An actor never placed
//! and never called is killed instead (it would otherwise wait for room only
//! to end at once).
//!
//! Handles on other nodes are copies of the handle object there, each
//! keeping a copy on the node it came from alive until it is freed, back to
//! this one (`cluster/lent_handles.rs`): a handle sent to a task elsewhere,
//! kept in an actor's state there or returned from there, one a task there
//! got by name or by creating the actor (the answer lends a copy, which the
//! task's `actors.handle` takes: [`JobState::handed`]) keeps the actor as a
//! handle here does. Not counted, so never collected: an actor nobody took
//! a handle on (created by an older guest, or by the host: Serve's
//! replicas), and a detached one. Those live until they are killed, fail or
//! their job ends.

use crate::local::actor::ActorState;
use crate::local::job::JobState;
use crate::{NodeInner, lock};
use std::sync::Mutex;
use tokio::sync::mpsc;
use wray_core::{ActorId, Error, JobId, ObjectId, TaskId};
use wray_store::Object;

/// The reason a collected actor's end gives.
pub(crate) const ALL_HANDLES_DROPPED: &str = "all its handles were dropped";

/// What the node knows of an actor's handles ([`ActorState::handles`]).
pub(crate) struct Handles {
    /// The handle object's id.
    object: ObjectId,
    /// Whether this node collects the actor when its handles go: one its
    /// job created here (`actors.create`), not detached, not hosted here
    /// for another node.
    collectable: bool,
    state: Mutex<HandleObject>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum HandleObject {
    /// No handle taken yet.
    NotYet,
    /// In the store; its freeing collects the actor.
    Live,
    /// Freed: the actor is ending.
    Gone,
}

impl Handles {
    /// The handles of the actor that task `creator` created; `collectable`
    /// as above.
    pub(crate) fn new(creator: TaskId, collectable: bool) -> Handles {
        Handles { object: ObjectId::actor_handle(creator), collectable, state: Mutex::new(HandleObject::NotYet) }
    }

    /// Whether the actor ends because its handles went.
    pub(crate) fn collected(&self) -> bool {
        *lock(&self.state) == HandleObject::Gone
    }
}

impl NodeInner {
    /// A reference to `actor`'s handle object for a guest of `job`, made
    /// with the first (`actors.handle`); on a stand-in, the copy the job's
    /// node lent with the answer that named the actor here. `None` for an
    /// actor whose handles are not counted.
    pub(crate) fn actor_handle_in(&self, job: &JobState, actor: ActorId) -> Result<Option<ObjectId>, Error> {
        // First, on a stand-in (the job's node never has copies handed): the
        // actor may be hosted here too, and listed among the job's actors as
        // one whose handles are not counted.
        if job.owner.is_some()
            && let Some(id) = job.take_handed(actor)
        {
            return Ok(Some(id));
        }
        let Some(state) = lock(&job.actors).get(&actor).cloned() else { return Ok(None) };
        let handles = &state.handles;
        if !handles.collectable || state.dead_reason().is_some() {
            return Ok(None);
        }
        let ending = || Error::ActorDied(format!("{} is ending: {ALL_HANDLES_DROPPED}", state.class));
        let mut object = lock(&handles.state);
        match *object {
            HandleObject::Gone => Err(ending()),
            // Freed a moment ago, its collection on its way: as good as gone.
            HandleObject::Live => {
                self.store.add_ref(job.id, handles.object).map(|()| Some(handles.object)).map_err(|_| ending())
            }
            HandleObject::NotYet => {
                let Some(collector) = self.collector() else { return Ok(None) };
                self.store.put(job.id, handles.object, Object::default())?;
                let (job, actor) = (job.id, state.id);
                // Under the store's lock: only hands the actor on.
                self.store.on_freed(
                    handles.object,
                    Box::new(move || {
                        let _ = collector.send((job, actor));
                    }),
                );
                *object = HandleObject::Live;
                Ok(Some(handles.object))
            }
        }
    }

    /// Where freed handle objects send their actors; the collector task is
    /// started with the first. `None` outside a tokio runtime (an actor is
    /// then not collected).
    fn collector(&self) -> Option<mpsc::UnboundedSender<(JobId, ActorId)>> {
        if let Some(tx) = self.collector.get() {
            return Some(tx.clone());
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let tx = self.collector.get_or_init(|| {
            let (tx, mut rx) = mpsc::unbounded_channel::<(JobId, ActorId)>();
            // Holds the node weakly: the channel closes, and the task ends,
            // when the node is dropped (its store holds the senders).
            let node = self.me.clone();
            runtime.spawn(async move {
                while let Some((job, actor)) = rx.recv().await {
                    let Some(node) = node.upgrade() else { return };
                    node.collect_actor(job, actor);
                }
            });
            tx
        });
        Some(tx.clone())
    }

    /// Ends an actor whose last handle went: the calls queued to it run
    /// first.
    fn collect_actor(&self, job: JobId, actor: ActorId) {
        // Its job ended (which frees every object): the actor ended with it.
        let Ok(job) = self.job(job) else { return };
        let Some(state) = lock(&job.actors).get(&actor).cloned() else { return };
        *lock(&state.handles.state) = HandleObject::Gone;
        tracing::debug!("actor {} ({}) ends: {ALL_HANDLES_DROPPED}", state.id, state.class);
        // Nobody can call it any more (a name lookup would hand out a
        // handle to an actor that is going).
        job.free_name(&state);
        end_when_drained(&state);
    }
}

/// Closes the actor's mailbox, so that its loop ends after the calls
/// queued; one never placed and never called is killed.
fn end_when_drained(state: &ActorState) {
    let (host, calls, _, _) = state.activity();
    if host.is_none() && calls == 0 {
        state.kill(ALL_HANDLES_DROPPED, true);
    }
    state.close_mailbox();
}

impl JobState {
    /// A copy of `actor`'s handle object lent to this stand-in with an
    /// answer (`handed`), its reference now the caller's.
    fn take_handed(&self, actor: ActorId) -> Option<ObjectId> {
        let mut handed = lock(&self.handed);
        let (id, waiting) = handed.get_mut(&actor)?;
        let id = *id;
        *waiting -= 1;
        if *waiting == 0 {
            handed.remove(&actor);
        }
        Some(id)
    }

    /// Keeps a copy of `actor`'s handle object (with one reference) for
    /// the guest's `actors.handle` that follows the answer that lent it.
    pub(crate) fn hand(&self, actor: ActorId, id: ObjectId) {
        lock(&self.handed).entry(actor).or_insert((id, 0)).1 += 1;
    }
}
