//! Actor handles on other nodes: copies lent, and given back.
//!
//! An actor ends when its last handle is gone (`local/actor_handles.rs`):
//! when its *handle object* is freed from its job's node's store. A handle
//! that travels to another node — in a task's or call's arguments, a
//! result, an item — arrives there as a copy of that object in the other
//! node's store, counted by that store. The two counts are joined by
//! lending, as in Ray's borrowers:
//!
//! * **Lending.** A node sending a handle object (`closure`, through which
//!   every outgoing object goes) adds a reference to its own copy for the
//!   copy it sends, and counts it in [`Lends`]; the object travels marked
//!   with the lender ([`WireObject::lender`](wray_net::proto::WireObject)).
//! * **Borrowing.** The receiving node (`import`) stores the copy. If it
//!   had none, the new copy's freeing — its last holder there letting go,
//!   or its job's end — gives it back to the lender
//!   ([`Request::ReturnHandles`]). If it already had one, it gives the copy
//!   back at once: its own copy, already kept alive by its own lender, now
//!   counts the new holders too. So every copy anywhere keeps its lender's
//!   copy alive, and so on back to the job's node, and no two copies keep
//!   each other alive (a handle sent back to the node it came from is given
//!   back at once).
//! * **Returning.** The lender drops the reference it added; the last one
//!   frees its copy, which gives that back to its own lender in turn, or,
//!   on the job's node, ends the actor.
//! * **Handing.** A task away from the job's node that looks an actor up by
//!   name, or creates one (made on the job's node), gets a copy lent with
//!   the answer ([`Event::Actor`](wray_net::proto::Event)`::handle`); its
//!   stand-in keeps it for the guest's `actors.handle` that follows
//!   ([`JobState::handed`]).
//!
//! A node running tasks for another's job keeps that job's stand-in while
//! it has copies lent out (its copies would otherwise go with it, given back
//! while their borrowers still hold them), up to [`LENT_LINGER`]. A copy
//! that is never given back — its borrower died, or the message carrying it
//! was lost on a broken stream — keeps the lender's copy until its job ends:
//! the actor then lives until it is killed, fails or its job ends, never
//! less long than a handle to it exists. A stand-in that ends with copies
//! still lent (past `LENT_LINGER`) gives nothing back for them, for the same
//! reason.

use crate::cluster::wire::{object_id, wire_id};
use crate::local::job::JobState;
use crate::{NodeInner, lock};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use wray_core::{ActorId, Error, JobId, ObjectId};
use wray_net::frame;
use wray_net::proto::{self, MAX_RETURNED_HANDLES, Request, WireId, WireLender, WireObject};

/// How long a node running tasks for another's job keeps the job's idle
/// stand-in while copies of handle objects it lent are still out (a task
/// here passed a handle on, or returned one). Past it the stand-in ends
/// anyway, and the actors those copies name live until their job's end.
pub(crate) const LENT_LINGER: Duration = Duration::from_secs(600);

/// The copies of handle objects this node lent to others and that are not
/// back yet, by job and object. Each holds a reference in the store.
#[derive(Default)]
pub(crate) struct Lends {
    out: Mutex<HashMap<(JobId, ObjectId), u32>>,
}

impl Lends {
    /// Whether job `job` has copies lent out.
    pub(crate) fn any_for(&self, job: JobId) -> bool {
        lock(&self.out).keys().any(|(j, _)| *j == job)
    }

    /// Forgets job `job`'s lends: it ended, and its store references with it.
    pub(crate) fn forget_job(&self, job: JobId) {
        lock(&self.out).retain(|(j, _), _| *j != job);
    }

    fn outstanding(&self, job: JobId, id: ObjectId) -> u32 {
        lock(&self.out).get(&(job, id)).copied().unwrap_or(0)
    }
}

/// A copy to give back: to `lender`, handle object `id`.
pub(crate) struct Return {
    lender: WireLender,
    id: ObjectId,
}

impl NodeInner {
    /// Lends a copy of handle object `id` to another node (from `closure`):
    /// the copy sent keeps this one alive until it is given back. `None`
    /// when this node has no such object.
    pub(crate) fn lend(&self, id: ObjectId) -> Option<WireLender> {
        let job = self.store.add_ref_any(id)?;
        *lock(&self.lends.out).entry((job, id)).or_default() += 1;
        tracing::trace!("lent a copy of handle object {id} of {job}");
        Some(WireLender { node: self.id.clone(), job: job.0 })
    }

    /// A copy of handle object `id` that `lender` lent arrived in job
    /// `job`'s store here: `created` if it made the store's copy (which
    /// then gives it back when freed), else it is given back at once.
    pub(crate) fn borrowed(&self, job: JobId, id: ObjectId, lender: WireLender, created: bool) {
        let Some(returner) = self.returner() else { return };
        tracing::trace!("borrowed a copy of handle object {id} from node {} ({created})", lender.node);
        if !created {
            let _ = returner.send(Return { lender, id });
            return;
        }
        let lends = self.lends.clone();
        // Under the store's lock: reads the lends and hands the copy on.
        let watching = self.store.on_freed(
            id,
            Box::new(move || {
                // Freed while its own copies are still out: only the job's
                // end does that (each copy lent holds a reference). Those
                // borrowers still hold handles, so the lender keeps its copy.
                if lends.outstanding(job, id) == 0 {
                    let _ = returner.send(Return { lender, id });
                }
            }),
        );
        if !watching {
            tracing::debug!("handle object {id} was freed as it arrived");
        }
    }

    /// On the job's node: a copy of `actor`'s handle object lent to another
    /// node that asked for the actor by name or created it (the task there
    /// takes a handle next, `JobState::handed`), for the answer to carry.
    /// `None` for an actor whose handles are not counted; an error for one
    /// ending because its last handle went.
    pub(crate) fn lend_handle(&self, job: &JobState, actor: ActorId) -> Result<Option<WireObject>, Error> {
        let Some(id) = self.actor_handle_in(job, actor)? else { return Ok(None) };
        let lender = self.lend(id);
        // The reference `actor_handle_in` took for a guest here: the copy
        // lent holds the object now.
        self.store.release(id);
        Ok(lender.map(|l| WireObject { id: wire_id(id), len: 0, refs: Vec::new(), at: None, lender: Some(l) }))
    }

    /// On a stand-in: stores the copy of `actor`'s handle object an answer
    /// lent (no bytes follow it on `recv`) for the guest's `actors.handle`.
    /// A copy that cannot be stored is not kept: the lender then keeps its
    /// own until its job ends.
    pub(crate) async fn take_lent_handle(
        &self,
        job: &JobState,
        actor: ActorId,
        handle: Option<WireObject>,
        recv: &mut quinn::RecvStream,
    ) {
        let Some(handle) = handle else { return };
        let id = object_id(&handle.id);
        if !id.is_actor_handle() || handle.len != 0 || !handle.refs.is_empty() || handle.at.is_some() {
            tracing::warn!("ignoring a lent handle object {id} that is not one");
            return;
        }
        match self.import(job, std::slice::from_ref(&handle), recv).await {
            Ok(ids) => ids.into_iter().for_each(|id| job.hand(actor, id)),
            Err(e) => tracing::debug!("cannot store the lent handle object {id}: {e}"),
        }
    }

    /// Gives back the copies lent in `objects`, of a task's message that no
    /// node will act on: the sender found no node for it, or the head,
    /// which read it, found none (their lenders would otherwise keep theirs
    /// until their job ends). A message that reached a node is that node's
    /// to give back, once it has stored the copies or not.
    pub(crate) fn decline(&self, objects: &[WireObject]) {
        let Some(returner) = self.returner() else { return };
        for o in objects {
            let id = object_id(&o.id);
            if let Some(lender) = o.lender.as_ref().filter(|_| id.is_actor_handle()) {
                let _ = returner.send(Return { lender: lender.clone(), id });
            }
        }
    }

    /// Copies this node lent to a peer, given back (`Request::ReturnHandles`).
    /// A copy this node did not lend is ignored: a peer cannot free
    /// references it was not given.
    pub(crate) fn handles_returned(&self, job: u32, ids: &[WireId]) {
        let job = JobId(job);
        let mut release = Vec::with_capacity(ids.len());
        {
            let mut out = lock(&self.lends.out);
            for w in ids {
                let id = object_id(w);
                tracing::trace!("a copy of handle object {id} of {job} given back");
                let Some(n) = out.get_mut(&(job, id)) else { continue };
                *n -= 1;
                if *n == 0 {
                    out.remove(&(job, id));
                }
                release.push(id);
            }
        }
        // Outside the lends' lock: a release may free a copy, whose watcher
        // reads them.
        self.store.release_all(release);
    }

    /// Where copies to give back go; the task that sends them starts with
    /// the first. `None` outside a tokio runtime (nothing is given back:
    /// the lenders keep their copies).
    fn returner(&self) -> Option<mpsc::UnboundedSender<Return>> {
        if let Some(tx) = self.returner.get() {
            return Some(tx.clone());
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let tx = self.returner.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel::<Return>();
            // Holds the node weakly: the channel closes, and the task ends,
            // when the node is dropped (its store holds the senders).
            runtime.spawn(give_back(self.me.clone(), rx));
            tx
        });
        Some(tx.clone())
    }
}

/// Sends the copies given back, those queued together in one message per
/// lender and job.
async fn give_back(node: std::sync::Weak<NodeInner>, mut rx: mpsc::UnboundedReceiver<Return>) {
    while let Some(first) = rx.recv().await {
        let mut batch: HashMap<WireLender, Vec<WireId>> = HashMap::new();
        let mut next = Some(first);
        while let Some(Return { lender, id }) = next {
            batch.entry(lender).or_default().push(wire_id(id));
            next = rx.try_recv().ok();
        }
        let Some(node) = node.upgrade() else { return };
        for (lender, ids) in batch {
            if lender.node == node.id {
                node.handles_returned(lender.job, &ids);
                continue;
            }
            for chunk in ids.chunks(MAX_RETURNED_HANDLES) {
                let request = Request::ReturnHandles { job: lender.job, ids: chunk.to_vec() };
                let (node, to) = (node.clone(), lender.node.clone());
                tokio::spawn(async move {
                    // Not given back (the lender is gone, or unreachable):
                    // its copy stays until its job ends there.
                    if let Err(e) = send(&node, &to, &request).await {
                        tracing::debug!("cannot give handles back to node {to}: {e}");
                    }
                });
            }
        }
    }
}

async fn send(node: &Arc<NodeInner>, to: &str, request: &Request) -> Result<(), wray_net::NetError> {
    let (mut send, _recv) = node.open_to(to, "").await?;
    frame::write(&mut send, &proto::encode(request)?).await?;
    let _ = send.finish();
    // Wait for the peer to have read it: a stream dropped at once may be
    // reset before its bytes leave.
    let _ = send.stopped().await;
    Ok(())
}
