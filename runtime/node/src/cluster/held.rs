//! Results that stay on the node that made them.
//!
//! A task's result of at least [`HOLD_RESULT_BYTES`], made on a node its
//! owner reached directly (the head placing it on a worker, or a worker
//! sending it to another over their own connection), stays in that node's
//! store: [`TaskDone::held`](wray_net::proto::TaskDone::held) tells the
//! owner where it is instead of carrying its bytes, and the owner's store
//! records the location ([`wray_store::Holder`]). The owner fetches the
//! bytes only when one of its own readers needs them; a task it sends to a
//! third node names the holder instead of carrying them
//! ([`WireObject::at`]), and that node fetches them from the holder itself
//! — an object made on worker A for a task on worker B goes from A to B,
//! not through the job's node. A task placed on the holder itself finds it
//! in its store.
//!
//! **Lifetime.** The holder keeps the object while the owner keeps the
//! task's stream open: the owner's *keeper* ([`NodeInner::keep`], the
//! task's own future, which also keeps the task's arguments pinned) finishes
//! its side once the object is freed (or its bytes were fetched home), and
//! a stream that breaks — the owner's node died — frees it too. Nothing
//! needs a message of its own, and nothing outlives both ends.
//!
//! **Loss.** When the holder dies, the stream breaks; when a reader (here
//! or on a node the owner sent a task to) cannot fetch the object, it tells
//! the keeper ([`NodeInner::suspect`]). Either way the keeper makes the
//! object pending again and the task that made it runs again (lineage
//! reconstruction, as in Ray): its id is the same, its readers wait for it
//! as for any pending object, and a task that could not have its arguments
//! is retried once they exist again. It runs again at most `max_retries`
//! times for losses; past that the object fails with `ObjectLost`.
//!
//! Results that refer to other objects, actors' results and those sent
//! through the head's relay still travel whole to their owner.

use crate::cluster::wire::{object_id, read_event, until_ended, wire_id, write_with};
use crate::local::job::JobState;
use crate::{NodeInner, lock};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use wray_core::{Error, ObjectId};
use wray_host::ArgSpec;
use wray_net::proto::{self, Event, Request, TaskDone, WireHolder, WireId, WireObject};
use wray_net::{NetError, frame};
use wray_store::{Found, Holder, Object};

/// A task's result at least this large stays on the node that made it
/// (when its owner reached that node directly). Below it the bytes cost
/// less than a second trip to fetch them: Ray's bound for returning results
/// inline is 100 KiB; above a mebibyte a copy to the owner is wasted
/// bandwidth whenever the consumer is a third node.
pub(crate) const HOLD_RESULT_BYTES: usize = 1 << 20;

/// The most results a node holds for other nodes at once, whoever owns
/// them; past it, results travel to their owner. Each holds a stream of its
/// owner's connection open (at most `MAX_STREAMS_PER_CONNECTION` = 4,096,
/// shared with everything else on it), and a connection out of streams
/// would stall every new task on it; a bound per node keeps every
/// connection to it well under that, whichever owners share one.
pub(crate) const MAX_HELD: usize = 1024;

/// How many times a reader tries to fetch an object held elsewhere (each
/// failure has its task make it again) before it gives up.
const MAX_FETCH_ATTEMPTS: usize = 4;

/// How long a reader whose fetch failed waits for the object's keeper to
/// take it back (it does so at once; this only bounds a keeper that is
/// gone).
const KEEPER_GRACE: Duration = Duration::from_secs(10);

/// A task whose arguments held on one other node add up to this many bytes
/// goes to that node if it has room (a soft node affinity), rather than
/// take its own node's CPU and fetch them: moving the task to the data
/// beats moving the data, as for arguments on the task's own node
/// ([`LOCALITY_BYTES`](crate::cluster::remote_task::LOCALITY_BYTES), the
/// same bound). Ray's locality-aware leasing does the same.
pub(crate) const HELD_LOCALITY_BYTES: usize = crate::cluster::remote_task::LOCALITY_BYTES;

/// The owner's end of a held result: the task's stream, open for as long as
/// the holder should keep the object.
pub(crate) struct Keeper {
    pub(crate) send: quinn::SendStream,
    pub(crate) recv: quinn::RecvStream,
    /// The holder's node id, for the log.
    pub(crate) node: String,
}

/// How a task's objects held on other nodes travel with it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeldObjects {
    /// Named by their holder ([`WireObject::at`]): the receiver fetches
    /// them. For tasks, whose receiver reports a failed fetch
    /// ([`Event::ObjectsLost`]) and whose owner retries.
    Named,
    /// Fetched here first and sent whole: actors' arguments and results
    /// sent back to their owner.
    Fetched,
}

/// The name an owner's job goes by on other nodes (`owner node/job id`):
/// its stand-ins' key, and what a holder files its objects under.
pub(crate) fn owner_key(node: &NodeInner, job: &JobState) -> String {
    match &job.owner {
        Some((n, j)) => format!("{n}/{j}"),
        None => format!("{}/{}", node.id, job.id.0),
    }
}

impl NodeInner {
    /// On the node that ran a task of job `key`: whether its result `id`
    /// may stay here (within [`MAX_HELD`]); if so it is recorded as held,
    /// for [`NodeInner::serve_fetch`].
    pub(crate) fn start_holding(&self, key: &str, id: ObjectId) -> bool {
        let mut jobs = lock(&self.remote_jobs);
        // A sum over the stand-ins: a handful, and this runs once per
        // large result.
        if jobs.values().map(|r| r.held.len()).sum::<usize>() >= MAX_HELD {
            return false;
        }
        jobs.get_mut(key).is_some_and(|r| r.held.insert(id))
    }

    /// The owner let go of a held result.
    pub(crate) fn stop_holding(&self, key: &str, id: ObjectId) {
        if let Some(r) = lock(&self.remote_jobs).get_mut(key) {
            r.held.remove(&id);
        }
    }

    /// Answers a [`Request::Fetch`]: the bytes of an object held here for
    /// job `job`, or a refusal naming what is missing. Only objects held
    /// for that job are given: a peer cannot read another job's objects by
    /// naming them.
    pub(crate) async fn serve_fetch(
        &self,
        job: String,
        id: WireId,
        send: &mut quinn::SendStream,
    ) -> Result<(), NetError> {
        let object = object_id(&id);
        let held = lock(&self.remote_jobs).get(&job).is_some_and(|r| r.held.contains(&object));
        let (event, blobs) = match held.then(|| self.store.try_get(object)).flatten() {
            Some(Ok(o)) => {
                let head = WireObject { id, len: o.data.len() as u64, refs: Vec::new(), at: None, lender: None };
                let done = TaskDone {
                    node: self.id.clone(),
                    output: head.id,
                    result: Ok(head),
                    objects: Vec::new(),
                    held: false,
                };
                (Event::TaskDone(done), vec![o.data])
            }
            Some(Err(e)) => (Event::Refused(format!("object {object}: {e}")), Vec::new()),
            None => (Event::Refused(format!("node {} holds no object {object} for job {job}", self.id)), Vec::new()),
        };
        write_with(send, &event, blobs).await?;
        let _ = send.finish();
        Ok(())
    }

    /// On the owner: a task's result is held on node `node` (listening at
    /// `addr`, or empty): its store records where, and its readers wake.
    pub(crate) fn held_result(&self, job: &JobState, done: &TaskDone, addr: &str) -> Result<(), String> {
        let output = object_id(&done.output);
        match &done.result {
            Ok(o)
                if o.refs.is_empty()
                    && done.objects.is_empty()
                    && o.len <= wray_core::limits::MAX_OBJECT_SIZE as u64 =>
            {
                let key = owner_key(self, job);
                let holder = Holder { node: done.node.clone(), addr: addr.to_string(), size: o.len as usize, key };
                self.store.complete_elsewhere(output, holder);
                Ok(())
            }
            _ => Err(format!("node {} said it holds a result it cannot hold", done.node)),
        }
    }

    /// Keeps `output`, held on another node, held there until it is freed
    /// here (the job's end frees it too) or fetched home — then the
    /// holder's copy goes and this returns `None` — or until it is lost:
    /// then it is pending again, and this returns why, for its task to run
    /// again. Cancelling a task that has finished changes nothing, as in
    /// Ray.
    pub(crate) async fn keep(&self, output: ObjectId, mut k: Keeper) -> Option<String> {
        let suspect = Arc::new(Notify::new());
        lock(&self.keepers).insert(output, suspect.clone());
        let notify = Arc::new(Notify::new());
        let lost = loop {
            if !self.store.watch_elsewhere(output, &notify) {
                break None;
            }
            tokio::select! {
                () = notify.notified() => {}
                () = until_ended(&mut k.recv) => break Some(format!("node {} holding it went away", k.node)),
                () = suspect.notified() => break Some(format!("it could not be fetched from node {}", k.node)),
            }
        };
        lock(&self.keepers).remove(&output);
        // The holder's copy goes (if the holder is still there).
        let _ = k.send.finish();
        // Filled or freed meanwhile: nothing to make again.
        lost.filter(|_| self.store.reopen(output))
    }

    /// The node holding most of the bytes of `args` among objects held on
    /// other nodes, if they reach [`HELD_LOCALITY_BYTES`]: where a task
    /// with the default scheduling should go first. (The arguments exist by
    /// now: their holders are known.)
    pub(crate) fn held_locality(&self, args: &[ArgSpec]) -> Option<String> {
        // Nothing is held elsewhere without a cluster.
        self.link.get()?;
        let mut by_node: Vec<(String, usize)> = Vec::new();
        let mut count = |id: &ObjectId| {
            if let Some(h) = self.store.holder(*id) {
                match by_node.iter_mut().find(|(n, _)| *n == h.node) {
                    Some((_, bytes)) => *bytes += h.size,
                    None => by_node.push((h.node, h.size)),
                }
            }
        };
        for a in args {
            match a {
                ArgSpec::Object(id) => count(id),
                ArgSpec::Value(v) => v.refs.iter().for_each(&mut count),
            }
        }
        by_node
            .into_iter()
            .filter(|(_, bytes)| *bytes >= HELD_LOCALITY_BYTES)
            .max_by_key(|(_, bytes)| *bytes)
            .map(|(n, _)| n)
    }

    /// A reader could not fetch `id` from its holder: its keeper takes it
    /// back to make it again. Returns whether it has a keeper.
    pub(crate) fn suspect(&self, id: ObjectId) -> bool {
        match lock(&self.keepers).get(&id) {
            Some(k) => {
                k.notify_one();
                true
            }
            None => false,
        }
    }

    /// An object's contents, waiting for it if it is being made and
    /// fetching it home if it is held on another node. What every reader
    /// on this node uses.
    pub(crate) async fn object(&self, id: ObjectId) -> Result<Object, Error> {
        let mut failures = 0;
        loop {
            let holder = match self.store.find(id).await? {
                Found::Here(object) => return Ok(object),
                Found::Elsewhere(holder) => holder,
            };
            // One fetch per object at a time: the others find it filled.
            let turn = lock(&self.fetching).entry(id).or_default().clone();
            let fetched = {
                let _turn = turn.lock().await;
                if self.store.holder(id).as_ref() == Some(&holder) {
                    // Boxed: the fetch is most of this future by size, and
                    // every read of an argument or a `get` that waits makes
                    // one, on one node or not.
                    Some(Box::pin(self.fetch_held(id, &holder)).await)
                } else {
                    None
                }
            };
            {
                let mut fetching = lock(&self.fetching);
                if Arc::strong_count(&turn) <= 2 {
                    fetching.remove(&id);
                }
            }
            let why = match fetched {
                None => continue,
                Some(Ok(object)) => {
                    self.store.fill(id, object.clone());
                    return Ok(object);
                }
                Some(Err(why)) => why,
            };
            tracing::info!("object {id} could not be fetched from node {}: {why}", holder.node);
            failures += 1;
            if failures >= MAX_FETCH_ATTEMPTS || !self.suspect(id) {
                return Err(Error::ObjectLost(format!("object {id} was held on node {}: {why}", holder.node)));
            }
            // Its keeper reopens it at once (its task runs again); wait
            // for that, then for the object as for any pending one.
            let notify = Arc::new(Notify::new());
            if self.store.watch_elsewhere(id, &notify) {
                let _ = tokio::time::timeout(KEEPER_GRACE, notify.notified()).await;
            }
        }
    }

    /// Fetches home, all at once, those of `ids` held on other nodes (a
    /// `get` of several: one after another they would each wait for the
    /// last; each holder sends at its own pace). Errors are left for the
    /// reader, who finds the ones that failed still held elsewhere.
    pub(crate) async fn fetch_held_at_once(&self, ids: &[ObjectId]) {
        if ids.len() < 2 || self.link.get().is_none() {
            return;
        }
        let held = self.store.held_elsewhere(ids);
        if held.len() < 2 {
            return;
        }
        let Ok(me) = self.arc() else { return };
        let mut fetches = tokio::task::JoinSet::new();
        for id in held {
            let me = me.clone();
            fetches.spawn(async move {
                let _ = me.object(id).await;
            });
        }
        fetches.join_all().await;
    }

    /// The bytes of `id` from the node holding it: over a direct connection
    /// where there is one, else through the head.
    pub(crate) async fn fetch_held(&self, id: ObjectId, holder: &Holder) -> Result<Object, String> {
        let request = Request::Fetch { job: holder.key.clone(), id: wire_id(id) };
        let frame_bytes = proto::encode(&request).map_err(|e| e.to_string())?;
        let (mut send, mut recv) = self.open_to(&holder.node, &holder.addr).await.map_err(|e| e.to_string())?;
        frame::write(&mut send, &frame_bytes).await.map_err(|e| e.to_string())?;
        let _ = send.finish();
        let done = match read_event(&mut recv).await.map_err(|e| e.to_string())? {
            Event::TaskDone(done) => done,
            Event::Refused(why) => return Err(why),
            other => return Err(format!("unexpected answer {other:?}")),
        };
        match done.result {
            Ok(o) if o.len as usize == holder.size && o.refs.is_empty() && object_id(&done.output) == id => {
                let data =
                    crate::cluster::remote_task::read_bytes(&mut recv, o.len).await.map_err(|e| e.to_string())?;
                Ok(Object { data, refs: Vec::new() })
            }
            Ok(_) => Err(format!("node {} answered with another object", holder.node)),
            Err(e) => Err(e.to_string()),
        }
    }

    /// On a node receiving a task: the bytes of an object it names on
    /// `at`, into the store under `job` with a reference for the caller —
    /// found here (the holder is this node, or another task brought it) or
    /// fetched from the holder.
    pub(crate) async fn import_held(
        &self,
        job: &JobState,
        o: &WireObject,
        at: &WireHolder,
    ) -> Result<ObjectId, NetError> {
        let id = object_id(&o.id);
        if self.store.add_ref(job.id, id).is_ok() {
            return Ok(id);
        }
        let holder =
            Holder { node: at.node.clone(), addr: at.addr.clone(), size: o.len as usize, key: owner_key(self, job) };
        let lost = |why: String| NetError::ObjectsLost { ids: vec![o.id], why };
        let object = self.fetch_held(id, &holder).await.map_err(lost)?;
        match self.landing(object.data.len(), || self.store.put(job.id, id, object)) {
            Ok(()) => Ok(id),
            Err(full @ Error::StoreFull(_)) => Err(NetError::Stream(full.to_string())),
            // Brought by another task meanwhile.
            Err(_) => self.store.add_ref(job.id, id).map(|()| id).map_err(|e| lost(e.to_string())),
        }
    }
}
