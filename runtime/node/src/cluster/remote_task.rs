//! Tasks that leave their node.
//!
//! The node that submits a task owns it: its result lands in that node's
//! store whatever node runs it (a large one may stay where it was made, the
//! owner's store keeping where: `cluster/held.rs`). A task leaves its node when the node cannot
//! run it at all (it asks for resources only other nodes have) or when the
//! node is busy and another has room (spillback). The head decides where it
//! goes ([`wray_sched::ClusterView`]); a worker asks the head, which runs
//! the task itself, relays the stream byte for byte to the node it chose, or
//! — when that node is a worker that listens — tells the asking worker to go
//! there directly ([`Event::Placed`]), keeping the head out of the data's
//! path.
//!
//! One stream carries one task: the request frame, then the raw bytes of the
//! arguments and of every object they refer to (the owner ships the
//! transitive closure, so the task never has to ask back — except for
//! objects held on another node, which it names and the receiver fetches); the answer is the
//! task's output, then [`TaskDone`] with the result and the objects it refers
//! to. The owner closing its side cancels the task; the stream breaking
//! (the executing node died) makes the owner retry the task elsewhere, as
//! many times as its `max_retries` allow.
//!
//! On the executing node the task runs in a stand-in for the owner's job
//! (one per owner job, alive while any of its tasks runs there): what the
//! task submits in turn runs there too, and is torn down when the last of the
//! job's tasks on that node ends.

use crate::cluster::head::Peers;
use crate::cluster::held::{HOLD_RESULT_BYTES, HeldObjects, Keeper, owner_key};
use crate::cluster::lent_handles::LENT_LINGER;
use crate::cluster::link::{Link, WorkerLink};
use crate::cluster::wire::{
    ask_for, object_id, open_relayed, open_with, output_event, pairs, read_event, resources, until_ended, wire_args,
    wire_id, wire_scheduling, write_blobs, write_with,
};
use crate::local::job::JobState;
use crate::local::task::TaskSpec;
use crate::{JobConfig, NodeInner, lock};
use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wray_core::{Error, ObjectId, Options, Resources, Scheduling, TaskId, limits};
use wray_host::{ArgSpec, Chunk, Grants, InstanceLimits, JobComponent, Output, Stream, Value};
use wray_net::proto::{self, Event, ItemYielded, Request, TaskDone, TaskRequest, WireActor, WireArg, WireObject};
use wray_net::{NetError, frame};
use wray_store::{Found, ItemPut, NextItem, Object};

/// A task whose arguments add up to this many bytes stays on its node
/// when it is busy (locality) instead of spilling over to another.
pub(crate) const LOCALITY_BYTES: usize = 16 << 20;

/// Bytes one task's arguments and objects may add up to on the wire.
pub(crate) const MAX_TASK_TRANSFER: u64 = 8 << 30;

/// A task made ready to leave its node ([`NodeInner::send_remote`]).
struct Sending<'a> {
    /// Where its stream opens.
    conn: quinn::Connection,
    /// The head's placement, credited back when the task ends.
    placed: Option<Placed<'a>>,
    /// The node's address, when it may keep a large result for others to
    /// fetch (`cluster/held.rs`).
    holder_addr: Option<String>,
    /// The request, encoded.
    frame_bytes: Vec<u8>,
    /// A worker's task the head only places: the request again for the
    /// node it is placed on (`send_direct`).
    direct: Option<(&'a WorkerLink, Box<TaskRequest>)>,
    /// The raw bytes that follow the frame.
    blobs: Vec<Bytes>,
}

/// How sending a task away went.
pub(crate) enum Remote {
    /// It ran (or failed for good) elsewhere; the result is in the store.
    Ran,
    /// No node has room: run it here.
    Busy,
    /// The path to the node running it broke (that node died): retriable.
    Lost(String),
    /// It ran; its result stays on the node that made it for as long as
    /// the keeper holds the stream (`cluster/held.rs`).
    Held(Box<Keeper>),
    /// A generator whose result nobody holds any more: stopped.
    Abandoned,
}

/// Where a generator's items go on their way to its owner.
pub(crate) enum ItemSink<'a> {
    /// A task's stream (`run_for_owner`).
    Task(&'a mut quinn::SendStream),
    /// An actor call's own stream (an upcall), and for a call with a
    /// `generator_backpressure` the caller's pace, as a session's.
    Call(&'a mut quinn::SendStream, Option<Pace>),
    /// An actor session's queue of answers, by output, and for a call with
    /// a `generator_backpressure` the owner's pace ([`ActorMsg::Pace`]):
    /// while it says paused, no item is taken.
    ///
    /// [`ActorMsg::Pace`]: wray_net::proto::ActorMsg::Pace
    Session(&'a tokio::sync::mpsc::UnboundedSender<(ObjectId, Event, Vec<Bytes>)>, Option<Pace>),
}

/// Whether the owner of a generator call hosted here has asked to pause
/// it (`true`): its window of unread items there is full.
pub(crate) type Pace = tokio::sync::watch::Receiver<bool>;

/// A task running here for another node whose stream to the owner broke
/// before its result went back: dropped armed, it cancels the task and
/// lets go of the result (`run_for_owner`).
struct Abandon {
    node: Arc<NodeInner>,
    job: Arc<JobState>,
    task: TaskId,
    output: ObjectId,
}

impl Abandon {
    /// The result went back (or is held for the owner): nothing to undo.
    fn disarm(self) {
        std::mem::forget(self);
    }
}

impl Drop for Abandon {
    fn drop(&mut self) {
        if let Some(token) = lock(&self.job.tasks).get(&self.task) {
            token.cancel();
        }
        self.node.store.release(self.output);
    }
}

/// Open task streams of a remote job, by a number of their own.
pub(crate) type Sinks = Arc<Mutex<Vec<(u64, tokio::sync::mpsc::UnboundedSender<Chunk>)>>>;

/// The stand-in for a job owned by another node, on a node running some of
/// its tasks.
pub(crate) struct RemoteJob {
    state: Arc<JobState>,
    /// Its tasks running here.
    running: usize,
    /// Output of the job's instances here goes back over one of the
    /// streams of its running tasks (any: they all lead to the owner).
    sinks: Sinks,
    /// Results of its tasks held here for the owner (`cluster/held.rs`);
    /// each also counts in `running` while held.
    pub(crate) held: HashSet<ObjectId>,
    /// Since when nothing of it runs here ([`STAND_IN_LINGER`]).
    idle_since: Option<Instant>,
}

/// How long a stand-in outlives its last task here before it ends.
///
/// Ended with its last task, a stand-in was made and ended again for each
/// task of an owner that runs one at a time: a job's state, its output
/// forwarder (a tokio task), and at its end a scan of the whole store for
/// the job's objects (`ObjectStore::free_job`) — per task, however many
/// objects other jobs keep here. Kept this long, the next task finds it:
/// sync tasks across nodes 10.5–10.8k → 11.8–12.3k/s on loopback. An ended
/// owner's stand-ins end this long after their last task; what they hold
/// meanwhile is what their tasks left in the store (their results are
/// released once sent), no instance runs.
pub(crate) const STAND_IN_LINGER: Duration = Duration::from_millis(500);

/// What a refusal on a task's (or an actor session's) stream means.
pub(crate) enum Refusal {
    /// The task cannot run: the refusal is its result.
    Final,
    /// The head's relay found the chosen node gone: retriable.
    Lost,
}

impl Refusal {
    /// Only the head's relay refuses for the chosen node's sake ("no live
    /// node"); the node's own refusal, on a direct stream, is final.
    fn on(direct: bool) -> Refusal {
        if direct { Refusal::Final } else { Refusal::Lost }
    }
}

/// Opens the stream of a request the head placed on worker `node`
/// (listening at `addr`): on this worker's own connection to it, or through
/// the head's relay when it cannot be reached directly (a node that died
/// meanwhile is refused there, which is a lost path too). Returns the
/// stream, the direct connection if one was used, and what a refusal on the
/// stream means.
pub(crate) async fn open_placed(
    link: &WorkerLink,
    me: &str,
    head: &quinn::Connection,
    (node, addr): (&str, &str),
    frame_bytes: &[u8],
    blobs: Vec<Bytes>,
) -> (Result<(quinn::SendStream, quinn::RecvStream), NetError>, Option<quinn::Connection>, Refusal) {
    let direct = link.direct(me, node, addr).await;
    let opened = match &direct {
        Some(conn) => open_with(conn, frame_bytes, blobs).await,
        None => open_relayed(head, node, frame_bytes, blobs).await,
    };
    let refusal = Refusal::on(direct.is_some());
    (opened, direct, refusal)
}

fn lost(e: impl std::fmt::Display) -> Remote {
    Remote::Lost(e.to_string())
}

impl NodeInner {
    /// Whether `spec`, which found no room here just now, should leave
    /// this node, and if so whether it must (`Some(true)`: no resources
    /// for it here) or only may (`Some(false)`: this node is busy).
    /// `None`: queue it here.
    pub(crate) fn should_move(&self, spec: &TaskSpec) -> Option<bool> {
        // Pinned here by a hard node affinity: it waits here for room.
        if spec.here || self.link.get().is_none() || spec.options.scheduling.pinned_to().is_some() {
            return None;
        }
        let demand = &spec.options.resources;
        if lock(&self.sched).check_feasible(demand).is_err() {
            return Some(true);
        }
        // This node had no room a moment ago; the task may spill over to
        // another, unless its arguments are large: they are here (a job's
        // objects live on its node), and moving the task to the data beats
        // moving the data to an idle CPU.
        (self.argument_bytes(&spec.args) < LOCALITY_BYTES).then_some(false)
    }

    /// Bytes of a task's arguments, objects included (those ready).
    fn argument_bytes(&self, args: &[ArgSpec]) -> usize {
        // An object held on another node is not here either.
        let object = |id: &ObjectId| match self.store.holder(*id) {
            Some(_) => 0,
            None => self.store.size(*id).unwrap_or(0),
        };
        args.iter()
            .map(|a| match a {
                ArgSpec::Value(v) => v.data.len() + v.refs.iter().map(object).sum::<usize>(),
                ArgSpec::Object(id) => object(id),
            })
            .sum()
    }

    /// Whether a demand this node cannot meet may still be met elsewhere.
    pub(crate) fn has_cluster(&self) -> bool {
        self.link.get().is_some()
    }

    /// Arguments on the wire: their descriptions, the objects they refer
    /// to (waiting for any still being made), and the bytes that follow.
    /// Objects held on other nodes go as `held` says.
    pub(crate) async fn wire_parts(
        &self,
        args: &[ArgSpec],
        held: HeldObjects,
    ) -> Result<(Vec<WireArg>, Vec<WireObject>, Vec<Bytes>), Error> {
        let (args, mut blobs, roots) = wire_args(args);
        let objects = self.closure(roots, held).await?;
        Ok((args, wire_objects(objects, &mut blobs), blobs))
    }

    /// A task (or, with `actor`, an actor's constructor) of `job` as
    /// another node receives it, with the bytes that follow.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn task_request(
        &self,
        job: &JobState,
        task: TaskId,
        function: &str,
        args: &[ArgSpec],
        options: &Options,
        must_move: bool,
        actor: Option<WireActor>,
    ) -> Result<(TaskRequest, Vec<Bytes>), Error> {
        let limits = job.limits(options);
        // An actor's session does not report objects it could not fetch
        // (`Event::ObjectsLost`), so its arguments travel whole.
        let held = if actor.is_some() { HeldObjects::Fetched } else { HeldObjects::Named };
        let (args, objects, blobs) = self.wire_parts(args, held).await?;
        let (hi, lo) = task.halves();
        let (owner_node, owner_job) = job.owner.clone().unwrap_or_else(|| (self.id.clone(), job.id.0));
        let request = TaskRequest {
            job: owner_key(self, job),
            owner_node,
            owner_job,
            name: job.component.name().to_string(),
            component_hash: job.component.hash().to_string(),
            env: job.config.grants.env.clone(),
            memory_limit: limits.memory,
            time_limit_ms: limits.time.map(|t| t.as_millis() as u64),
            task_hi: hi,
            task_lo: lo,
            function: function.to_string(),
            resources: pairs(&options.resources),
            max_retries: options.max_retries,
            retry_exceptions: options.retry_exceptions,
            reuse_instance: options.reuse_instance,
            max_calls: options.max_calls,
            generator_backpressure: options.generator_backpressure,
            task_env: options.env.clone(),
            actor: actor.clone(),
            must_move,
            scheduling: wire_scheduling(&options.scheduling),
            args,
            objects,
            placement: 0,
            direct: false,
            hold: false,
        };
        Ok((request, blobs))
    }

    /// Whether a task or actor with `options`, not placed here by the head,
    /// asks the head where to go before it looks for room here: SPREAD, or
    /// a node affinity to another node, on a cluster. `Some(must_move)` as
    /// [`Self::should_move`] says it.
    pub(crate) fn asks_head(&self, options: &Options, here: bool) -> Option<bool> {
        if here || self.link.get().is_none() {
            return None;
        }
        match &options.scheduling {
            Scheduling::Spread => Some(lock(&self.sched).check_feasible(&options.resources).is_err()),
            Scheduling::NodeAffinity { node, soft } if *node != self.id => Some(!soft),
            _ => None,
        }
    }

    /// Whether a hard node affinity pins the task or actor to another node
    /// (then only the head places it, however often it is retried).
    pub(crate) fn pinned_elsewhere(&self, options: &Options, here: bool) -> bool {
        !here && options.scheduling.pinned_to().is_some_and(|node| node != self.id)
    }

    /// The error of a hard node affinity this node can tell is never met:
    /// to this node, which can never meet the demand, or to another node
    /// when there is no cluster.
    pub(crate) fn unmet_affinity(&self, options: &Options, here: bool) -> Option<Error> {
        let node = options.scheduling.pinned_to().filter(|_| !here)?;
        let never = if node == self.id {
            lock(&self.sched).check_feasible(&options.resources).is_err()
        } else {
            self.link.get().is_none()
        };
        never.then(|| Error::InvalidArgument(unplaceable_reason(&options.resources, &options.scheduling)))
    }

    /// Where a task or actor that leaves this node goes: a stream to the
    /// head (which chooses), or, on the head, to the chosen node — or
    /// `Busy` (stay) when SPREAD's turn is this node's.
    /// On the head, a demand no node meets waits a moment for one to join
    /// ([`JOIN_GRACE`](crate::cluster::head::JOIN_GRACE)).
    pub(crate) async fn choose(&self, options: &Options, must_move: bool) -> Chosen<'_> {
        let demand = &options.resources;
        match self.link.get() {
            None => Chosen::Busy,
            Some(Link::Worker(w)) => Chosen::Conn(w.head(), None),
            Some(Link::Head(peers)) => {
                match peers.place(self, demand, Some(&self.id), &options.scheduling, must_move).await {
                    (wray_sched::Placement::Busy, _) => Chosen::Busy,
                    (wray_sched::Placement::Infeasible, _) => Chosen::Infeasible,
                    (wray_sched::Placement::Node(id), number) => match peers.connection(&id) {
                        Some(c) => Chosen::Conn(c, Some(Placed { peers, node: id, number })),
                        None => {
                            peers.finished(&id, demand);
                            Chosen::Lost(format!("node {id} is gone"))
                        }
                    },
                }
            }
        }
    }

    /// Sends `spec` to another node and waits for its result, which is
    /// stored as the task's output. `options` are the task's, but for a
    /// scheduling its arguments' locality may have set.
    ///
    /// Its future is what a task waiting on another node holds for as long
    /// as it runs there — on a head with 100,000 tasks out at once, 100,000
    /// of them. A future is as large as its largest state, so everything
    /// but the wait itself is boxed: the request made and placed
    /// ([`NodeInner::send_remote`], whose `TaskRequest`s and placement were
    /// otherwise kept in the wait's state), a worker's way through the head
    /// (`send_direct`), opening the stream and each event's handling
    /// (`task_events`). 6,960 bytes before, 656 after; with `run_task`'s
    /// own (1,936 → 752), a head with 100,000 tasks out on 15 workers
    /// peaked at 964–1,051 MiB before and 437–441 after (alternating runs;
    /// `local::task`'s tests hold both futures under 1 KiB).
    pub(crate) async fn run_remote(
        self: &Arc<Self>,
        job: &Arc<JobState>,
        spec: &TaskSpec,
        options: &Options,
        must_move: bool,
    ) -> Remote {
        let Sending { conn, placed, holder_addr, frame_bytes, direct, blobs } =
            match Box::pin(self.send_remote(job, spec, options, must_move)).await {
                Ok(sending) => sending,
                Err(outcome) => return outcome,
            };
        let outcome = match direct {
            Some((w, request)) => Box::pin(self.send_direct(job, spec, w, &conn, &frame_bytes, *request, blobs)).await,
            None => {
                let opened = Box::pin(open_with(&conn, &frame_bytes, blobs)).await;
                match opened {
                    Ok((send, recv)) => {
                        let held_at = holder_addr.as_deref().unwrap_or_default();
                        self.task_events(job, spec, send, recv, Refusal::Final, held_at).await
                    }
                    Err(e) => lost(e),
                }
            }
        };
        if let Some(p) = placed {
            p.finished(&spec.options.resources);
        }
        outcome
    }

    /// What [`NodeInner::run_remote`] sends, and where: the request made,
    /// placed and encoded. `Err` is how the task ended without leaving.
    async fn send_remote<'a>(
        self: &'a Arc<Self>,
        job: &Arc<JobState>,
        spec: &TaskSpec,
        options: &Options,
        must_move: bool,
    ) -> Result<Sending<'a>, Remote> {
        let request = self.task_request(job, spec.task, &spec.function, &spec.args, options, must_move, None).await;
        let (request, blobs) = match request {
            Ok(r) => r,
            Err(e) => {
                self.store.complete(spec.output, Err(e));
                return Err(Remote::Ran);
            }
        };
        let (conn, placed) = match self.choose(options, must_move).await {
            Chosen::Conn(c, placed) => (c, placed),
            Chosen::Busy => {
                self.decline(&request.objects);
                return Err(Remote::Busy);
            }
            Chosen::Lost(why) => {
                self.decline(&request.objects);
                return Err(Remote::Lost(why));
            }
            Chosen::Infeasible => {
                self.decline(&request.objects);
                let why = unplaceable_reason(&spec.options.resources, &spec.options.scheduling);
                self.store.complete(spec.output, Err(Error::InvalidArgument(why)));
                return Err(Remote::Ran);
            }
        };
        // The head reaches the node it placed the task on directly: a
        // large result may stay there (`cluster/held.rs`), where the other
        // workers reach it too.
        let holder_addr = match (&placed, self.link.get()) {
            (Some(p), Some(Link::Head(peers))) => Some(peers.direct_address(&p.node).unwrap_or_default()),
            _ => None,
        };
        // A worker that reaches others directly asks the head only where
        // the task goes, and takes it there itself. The request is kept
        // only for that second leg; otherwise it is encoded as it is,
        // without a copy.
        let (asked, direct) = match self.link.get() {
            Some(Link::Worker(w)) if w.goes_direct() && request.actor.is_none() => {
                (TaskRequest { direct: true, ..request.clone() }, Some((&**w, Box::new(request))))
            }
            _ => (TaskRequest { hold: holder_addr.is_some(), ..request }, None),
        };
        let frame_bytes = match encode_request(asked, placed.as_ref().map_or(0, |p| p.number)) {
            Ok(f) => f,
            Err(e) => {
                if let Some(p) = placed {
                    p.finished(&spec.options.resources);
                }
                self.store.complete(spec.output, Err(Error::InvalidArgument(e.to_string())));
                return Err(Remote::Ran);
            }
        };
        let place = crate::state::Place::Elsewhere(placed.as_ref().map(|p| p.node.clone()));
        job.note_task(spec.task, |live| live.start(place, crate::persist::now_ms()));
        Ok(Sending { conn, placed, holder_addr, frame_bytes, direct, blobs })
    }

    /// A worker's task that leaves it: the head (on `head`) answers where
    /// it goes — to another worker, which this one then reaches directly
    /// (or, if it cannot, through the head's relay), or to the head itself
    /// or a worker it relays to, with the arguments following on the same
    /// stream.
    #[allow(clippy::too_many_arguments)]
    async fn send_direct(
        &self,
        job: &JobState,
        spec: &TaskSpec,
        link: &WorkerLink,
        head: &quinn::Connection,
        frame_bytes: &[u8],
        request: TaskRequest,
        blobs: Vec<Bytes>,
    ) -> Remote {
        let (mut head_send, mut head_recv) = match open_with(head, frame_bytes, Vec::new()).await {
            Ok(s) => s,
            Err(e) => return lost(e),
        };
        let (node, addr, number) = match read_event(&mut head_recv).await {
            Ok(Event::Placed { node, addr, number }) => (node, addr, number),
            Ok(Event::Proceed) => {
                if let Err(e) = write_blobs(&mut head_send, blobs).await {
                    return lost(e);
                }
                return self.task_events(job, spec, head_send, head_recv, Refusal::Final, "").await;
            }
            Ok(first) => match self.answer(job, spec, first, &mut head_recv).await {
                Some(outcome) => return outcome,
                None => return self.task_events(job, spec, head_send, head_recv, Refusal::Final, "").await,
            },
            Err(e) => return lost(e),
        };
        // Reached directly, the node may keep a large result for this one
        // and the others to fetch (`cluster/held.rs`); through the head's
        // relay it comes back whole. (The connection is made here, or
        // found made; `open_placed` then takes it.)
        let hold = link.direct(&self.id, &node, &addr).await.is_some();
        let frame_bytes = match encode_request(TaskRequest { hold, ..request }, number) {
            Ok(f) => f,
            Err(e) => return lost(e),
        };
        let (opened, _, refusal) = open_placed(link, &self.id, head, (&node, &addr), &frame_bytes, blobs).await;
        let (send, recv) = match opened {
            Ok(s) => s,
            Err(e) => return lost(e),
        };
        // The head's stream stays open while the task runs: the head
        // resets it if the node dies, and closing it when done credits
        // the node in the head's view.
        let outcome = tokio::select! {
            outcome = self.task_events(job, spec, send, recv, refusal, &addr) => outcome,
            () = until_ended(&mut head_recv) => lost(format!("the head lost node {node}")),
        };
        let _ = head_send.finish();
        outcome
    }

    /// Reads a task's events from its stream until its result: output,
    /// then [`TaskDone`]. `refusal` says what a refusal means: that the
    /// task cannot run (the result is that error), or, from the head's
    /// relay to a chosen node, that the node is gone (retriable). A result
    /// the node keeps (`cluster/held.rs`) is recorded as held there,
    /// listening at `addr` (empty: reached through the head), and the
    /// stream goes on to its keeper.
    async fn task_events(
        &self,
        job: &JobState,
        spec: &TaskSpec,
        mut send: quinn::SendStream,
        mut recv: quinn::RecvStream,
        refusal: Refusal,
        addr: &str,
    ) -> Remote {
        // Our side stays open: closing it (dropping this future) cancels.
        loop {
            let event = match read_event(&mut recv).await {
                Ok(e) => e,
                Err(e) => return lost(e),
            };
            if let (Event::Refused(why), Refusal::Lost) = (&event, &refusal) {
                return lost(why);
            }
            if let Event::TaskDone(done) = &event
                && done.held
            {
                job.note_task(spec.task, |live| live.ran_elsewhere(&done.node, None));
                return match self.held_result(job, done, addr) {
                    Ok(()) => Remote::Held(Box::new(Keeper { send, recv, node: done.node.clone() })),
                    Err(why) => lost(why),
                };
            }
            // Boxed: most of this future by size (see `run_remote`), and
            // needed once an event has come, not while waiting for it.
            if let Some(outcome) = Box::pin(self.answer(job, spec, event, &mut recv)).await {
                let _ = send.finish();
                return outcome;
            }
        }
    }

    /// What one event of a task's stream means: `None` for output (more
    /// follows), else how the task ended.
    async fn answer(
        &self,
        job: &JobState,
        spec: &TaskSpec,
        event: Event,
        recv: &mut quinn::RecvStream,
    ) -> Option<Remote> {
        match event {
            Event::Output(chunk) => job.config.grants.output.write(Stream::Stdout, &chunk),
            Event::ErrorOutput(chunk) => job.config.grants.output.write(Stream::Stderr, &chunk),
            Event::Busy => return Some(Remote::Busy),
            Event::ObjectsLost { ids, why } => {
                // Their keepers make them again; the retry waits for them.
                for id in &ids {
                    self.suspect(object_id(id));
                }
                return Some(lost(format!("its arguments could not be fetched: {why}")));
            }
            Event::Refused(why) => {
                self.store.complete(spec.output, Err(Error::InvalidArgument(why)));
                return Some(Remote::Ran);
            }
            Event::Item(item) => {
                let output = object_id(&item.output);
                match self.receive_item(job, item, recv).await {
                    // Nobody holds the generator any more: closing the
                    // stream (returning) cancels the task on its node.
                    Ok(ItemPut::Unread) => return Some(Remote::Abandoned),
                    // Its window of unread items is full: the stream is
                    // read no further until the reader here takes one, and
                    // QUIC's flow control pauses the node that sends them
                    // (where the task's own window then pauses the task).
                    Ok(ItemPut::Ahead) => self.store.wait_for_reader(output).await,
                    Ok(ItemPut::Kept | ItemPut::Repeated) => {}
                    Err(e) => return Some(lost(e)),
                }
            }
            Event::TaskDone(done) => {
                job.note_task(spec.task, |live| live.ran_elsewhere(&done.node, done.result.as_ref().err()));
                return Some(match self.receive_result(job, done, recv).await {
                    Ok(_) => Remote::Ran,
                    Err(e) => lost(e),
                });
            }
            other => return Some(lost(format!("unexpected answer {other:?}"))),
        }
        None
    }

    /// Stores a remote result (the output `done` names) and the objects it
    /// refers to. Returns the output.
    pub(crate) async fn receive_result(
        &self,
        job: &JobState,
        done: TaskDone,
        recv: &mut quinn::RecvStream,
    ) -> Result<ObjectId, NetError> {
        let result = self.read_result(job, done, recv).await?;
        Ok(self.release_result(result))
    }

    /// Reads a remote result whole — its bytes and the objects it refers
    /// to — without releasing it to readers yet.
    pub(crate) async fn read_result(
        &self,
        job: &JobState,
        done: TaskDone,
        recv: &mut quinn::RecvStream,
    ) -> Result<ArrivedResult, NetError> {
        let output = object_id(&done.output);
        let value = match done.result {
            Err(e) => return Ok(ArrivedResult { output, result: Err(e), imported: Vec::new() }),
            Ok(v) => v,
        };
        let data = read_bytes(recv, value.len).await?;
        let imported = self.import(job, &done.objects, recv).await?;
        let refs = value.refs.iter().map(object_id).collect();
        Ok(ArrivedResult { output, result: Ok(Object { data, refs }), imported })
    }

    /// Releases a result [`NodeInner::read_result`] read: readers see it.
    pub(crate) fn release_result(&self, arrived: ArrivedResult) -> ObjectId {
        let ArrivedResult { output, result, imported } = arrived;
        match result {
            Ok(object) => self.landing(object.data.len(), || self.store.complete(output, Ok(object))),
            Err(e) => self.store.complete(output, Err(e)),
        }
        // The result now holds what it refers to.
        self.unpin(&imported);
        output
    }

    /// Reads objects listed in a message into the store under `job`, nested
    /// ones first. Returns those added or already here (each holding one
    /// reference for the caller to release).
    pub(crate) async fn import(
        &self,
        job: &JobState,
        objects: &[WireObject],
        recv: &mut quinn::RecvStream,
    ) -> Result<Vec<ObjectId>, NetError> {
        if objects.len() > limits::MAX_NESTED_REFS {
            return Err(NetError::Malformed(format!("{} objects in one message", objects.len())));
        }
        let mut total = 0u64;
        let mut imported = Vec::new();
        // Objects named on their holder first (they refer to nothing; the
        // others may refer to them): their bytes come from there, not
        // from this stream.
        for o in objects {
            let Some(at) = &o.at else { continue };
            total = total.saturating_add(o.len);
            let fetched = match total <= MAX_TASK_TRANSFER && o.refs.is_empty() {
                true => self.import_held(job, o, at).await,
                false => Err(NetError::Malformed("an object named on its holder refers to others".into())),
            };
            match fetched {
                Ok(id) => imported.push(id),
                Err(e) => {
                    self.unpin(&imported);
                    return Err(e);
                }
            }
        }
        for o in objects.iter().filter(|o| o.at.is_none()) {
            total = total.saturating_add(o.len);
            if total > MAX_TASK_TRANSFER {
                self.unpin(&imported);
                return Err(NetError::FrameTooLarge { len: total, max: MAX_TASK_TRANSFER });
            }
            let data = match read_bytes(recv, o.len).await {
                Ok(d) => d,
                Err(e) => {
                    self.unpin(&imported);
                    return Err(e);
                }
            };
            let id = object_id(&o.id);
            let refs = o.refs.iter().map(object_id).collect();
            let size = data.len();
            // A copy of a handle object another node lent (`lent_handles.rs`).
            let lender = match &o.lender {
                Some(l) if l.node.len() > limits::MAX_NAME_LEN => {
                    self.unpin(&imported);
                    return Err(NetError::Malformed("too long a node id in a handle's lender".into()));
                }
                Some(l) if id.is_actor_handle() => Some(l.clone()),
                _ => None,
            };
            let created = match self.landing(size, || self.store.put(job.id, id, Object { data, refs })) {
                Ok(()) => {
                    imported.push(id);
                    true
                }
                Err(full @ Error::StoreFull(_)) => {
                    self.unpin(&imported);
                    return Err(NetError::Stream(full.to_string()));
                }
                // Already here (a retried transfer, or an object another
                // task on this node also holds): keep the one we have, with a
                // reference of our own — without it, its other holder's
                // release frees it while this caller still needs it (a
                // `wray::data` combine task once lost a block so).
                Err(_) => {
                    if self.store.add_ref(job.id, id).is_ok() {
                        imported.push(id);
                    }
                    false
                }
            };
            if let Some(lender) = lender {
                self.borrowed(job.id, id, lender, created);
            }
        }
        Ok(imported)
    }

    /// The objects reachable from `roots`, nested ones before those that
    /// refer to them, waiting for any still being made. Those held on
    /// other nodes are named there or fetched, as `held` says.
    async fn closure(&self, roots: Vec<ObjectId>, held: HeldObjects) -> Result<Vec<(ObjectId, Carried)>, Error> {
        let mut seen = HashSet::new();
        let mut fetched: HashMap<ObjectId, Carried> = HashMap::new();
        let mut out = Vec::new();
        let mut stack: Vec<(ObjectId, bool)> = roots.into_iter().rev().map(|id| (id, false)).collect();
        while let Some((id, expanded)) = stack.pop() {
            if expanded {
                out.push((id, fetched.remove(&id).expect("fetched before expanded")));
                continue;
            }
            if !seen.insert(id) {
                continue;
            }
            if seen.len() > limits::MAX_NESTED_REFS {
                return Err(Error::InvalidArgument(format!(
                    "a task's arguments refer to more than {} objects",
                    limits::MAX_NESTED_REFS
                )));
            }
            // A handle leaving for another node: a copy lent, which keeps
            // this one until it is given back (`lent_handles.rs`). Empty,
            // it refers to nothing.
            if id.is_actor_handle()
                && let Some(lender) = self.lend(id)
            {
                out.push((id, Carried::Lent(lender)));
                continue;
            }
            let object = match held {
                HeldObjects::Fetched => self.object(id).await?,
                // Waited for, but not fetched if it is held elsewhere.
                HeldObjects::Named => match self.store.find(id).await? {
                    Found::Here(object) => object,
                    Found::Elsewhere(holder) => {
                        // Held objects refer to nothing.
                        stack.push((id, true));
                        fetched.insert(id, Carried::At(holder));
                        continue;
                    }
                },
            };
            stack.push((id, true));
            stack.extend(object.refs.iter().rev().map(|r| (*r, false)));
            fetched.insert(id, Carried::Bytes(object));
        }
        Ok(out)
    }

    /// Runs a task another node sent (the head placed it here) and answers
    /// on its stream.
    ///
    /// Its future is what a task sent here holds for as long as it is
    /// queued or runs, so it is kept small as `run_remote`'s is: the
    /// request comes boxed (an `async fn` keeps each argument twice, as
    /// passed and as bound), starting the task is a plain function, and the
    /// steps that run once — finding the component, reading the arguments,
    /// sending items and the result — are boxed when they run: 1,744 bytes
    /// instead of 5,088 (`local::task`'s tests hold it under 2 KiB). The
    /// 100,000 tasks of `wray microbenchmark --scale-out`: the busiest of
    /// the 15 workers peaked at 112–118 MiB instead of 197–207.
    pub(crate) async fn serve_task(
        self: &Arc<Self>,
        req: Box<TaskRequest>,
        send: &mut quinn::SendStream,
        recv: &mut quinn::RecvStream,
    ) -> Result<(), NetError> {
        if req.args.len() > limits::MAX_ARGS || req.function.len() > limits::MAX_NAME_LEN {
            return Err(NetError::Malformed("too many arguments or too long a name".into()));
        }
        let resources = resources(&req.resources)?;
        Options::check_env(&req.task_env).map_err(|e| NetError::Malformed(e.to_string()))?;
        let _arrival = self.arriving(TaskId::from_halves(req.task_hi, req.task_lo), &resources, req.placement);
        let component = match Box::pin(self.component_for(&req)).await {
            Ok(c) => c,
            Err(why) => return frame::write(send, &proto::encode(&Event::Refused(why))?).await,
        };
        let (job, sinks, key) = self.remote_job(&req, component);
        let (tx, mut output) = tokio::sync::mpsc::unbounded_channel();
        let sink_id = {
            let mut sinks = lock(&sinks);
            let id = sinks.last().map_or(0, |(i, _)| i + 1);
            sinks.push((id, tx));
            id
        };
        let outcome = match self.run_for_owner(&job, &key, req, resources, send, recv, &mut output).await {
            // Arguments held on a node that could not give them: the owner
            // makes them again and retries.
            Err(NetError::ObjectsLost { ids, why }) => {
                let written = Box::pin(write_with(send, &Event::ObjectsLost { ids, why }, Vec::new())).await;
                let _ = send.finish();
                written
            }
            other => other,
        };
        lock(&sinks).retain(|(i, _)| *i != sink_id);
        self.leave_remote_job(&key);
        outcome
    }

    /// Reads the bytes of arguments and their objects that follow a
    /// message, into the store under `job`. Returns the arguments and the
    /// objects imported (each holding a reference for the caller to drop).
    pub(crate) async fn read_args(
        &self,
        job: &JobState,
        args: &[WireArg],
        objects: &[WireObject],
        recv: &mut quinn::RecvStream,
    ) -> Result<(Vec<ArgSpec>, Vec<ObjectId>), NetError> {
        if args.len() > limits::MAX_ARGS {
            return Err(NetError::Malformed(format!("{} arguments", args.len())));
        }
        let mut values = Vec::with_capacity(args.len());
        let mut total = 0u64;
        for a in args {
            if let WireArg::Value { len, .. } = a {
                total = total.saturating_add(*len);
                if total > MAX_TASK_TRANSFER {
                    return Err(NetError::FrameTooLarge { len: total, max: MAX_TASK_TRANSFER });
                }
                values.push(read_bytes(recv, *len).await?);
            }
        }
        let imported = self.import(job, objects, recv).await?;
        let mut values = values.into_iter();
        let args = args
            .iter()
            .map(|a| match a {
                WireArg::Value { refs, .. } => ArgSpec::Value(Value {
                    data: values.next().expect("one value per Value argument"),
                    refs: refs.iter().map(object_id).collect(),
                    ..Value::default()
                }),
                WireArg::Object(id) => ArgSpec::Object(object_id(id)),
            })
            .collect();
        Ok((args, imported))
    }

    /// The answer for a finished task or call, with the bytes that follow.
    pub(crate) async fn done_event(&self, output: ObjectId, result: Result<Object, Error>) -> (Event, Vec<Bytes>) {
        // The owner gets every object whole: nothing here keeps them for it
        // once the task's stand-in ends.
        let (result, objects, blobs) = match result {
            Ok(value) => match self.whole(output, &value).await {
                Ok((head, objects, blobs)) => (Ok(head), objects, blobs),
                Err(e) => (Err(e), Vec::new(), Vec::new()),
            },
            Err(e) => (Err(e), Vec::new(), Vec::new()),
        };
        let done = TaskDone { node: self.id.clone(), output: wire_id(output), result, objects, held: false };
        (Event::TaskDone(done), blobs)
    }

    /// Object `id` holding `value`, ready to send whole: its head, the
    /// objects it refers to (fetched here first, nested ones first) and the
    /// bytes that follow — the value's, then theirs.
    async fn whole(&self, id: ObjectId, value: &Object) -> Result<(WireObject, Vec<WireObject>, Vec<Bytes>), Error> {
        let objects = self.closure(value.refs.clone(), HeldObjects::Fetched).await?;
        let mut blobs = vec![value.data.clone()];
        let objects = wire_objects(objects, &mut blobs);
        let head = WireObject {
            id: wire_id(id),
            len: value.data.len() as u64,
            refs: value.refs.iter().copied().map(wire_id).collect(),
            at: None,
            lender: None,
        };
        Ok((head, objects, blobs))
    }

    /// Item `index` of the generator whose output is `output`, as an
    /// [`Event::Item`] for its owner, with the bytes that follow: the
    /// item and, whole, every object it refers to.
    async fn item_event(&self, output: ObjectId, index: u32, item: ObjectId) -> Result<(Event, Vec<Bytes>), Error> {
        let value = self.store.get(item).await?;
        let (item, objects, blobs) = self.whole(item, &value).await?;
        Ok((Event::Item(ItemYielded { output: wire_id(output), index, item, objects }), blobs))
    }

    /// Stores an item that arrived on a generator task's stream
    /// ([`Event::Item`]) under its output here, with the objects it
    /// refers to. An item the output already has (from an earlier attempt
    /// of the task) is read and dropped. Returns what became of it:
    /// `Unread` once its output was freed or has settled, when the task
    /// may as well stop; `Ahead` when the generator's window of unread
    /// items is full.
    pub(crate) async fn receive_item(
        &self,
        job: &JobState,
        item: ItemYielded,
        recv: &mut quinn::RecvStream,
    ) -> Result<ItemPut, NetError> {
        if item.index >= limits::MAX_GENERATOR_ITEMS {
            return Err(NetError::Malformed(format!("generator item {}", item.index)));
        }
        let output = object_id(&item.output);
        let id = object_id(&item.item.id);
        if output.index != 0 || id != ObjectId::item_of(output.task, item.index) {
            return Err(NetError::Malformed(format!("{id} is not item {} of {output}", item.index)));
        }
        let data = read_bytes(recv, item.item.len).await?;
        let imported = self.import(job, &item.objects, recv).await?;
        let refs = item.item.refs.iter().map(object_id).collect();
        let stored = self
            .landing(data.len(), || self.store.put_item(Some(job.id), output, item.index, id, Object { data, refs }));
        // The item holds what it refers to now (or was dropped with it).
        self.unpin(&imported);
        match stored {
            Ok(put) => Ok(put),
            Err(e) => {
                tracing::warn!("dropping item {} of {output}: {e}", item.index);
                Ok(ItemPut::Kept)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_for_owner(
        self: &Arc<Self>,
        job: &Arc<JobState>,
        key: &str,
        req: Box<TaskRequest>,
        resources: Resources,
        send: &mut quinn::SendStream,
        recv: &mut quinn::RecvStream,
        output: &mut tokio::sync::mpsc::UnboundedReceiver<Chunk>,
    ) -> Result<(), NetError> {
        let (args, imported) = Box::pin(self.read_args(job, &req.args, &req.objects, recv)).await?;
        // A task sent here only to spill over (its own node could run it in
        // time) that finds no room goes back `Busy`: the head chose this
        // node from a heartbeat older than the actor that took the CPU
        // since, and queued here the task could wait behind work that
        // waits for it while another node stands idle (seen: an actor
        // pool's tasks on a three-node cluster). At home it waits movable,
        // and the head's rebalance sends it where there is room.
        if !req.must_move {
            match self.try_acquire_now(&resources) {
                Some(room) => drop(room),
                None => {
                    self.unpin(&imported);
                    return frame::write(send, &proto::encode(&Event::Busy)?).await;
                }
            }
        }
        let task = TaskId::from_halves(req.task_hi, req.task_lo);
        let result_id = ObjectId::returned_by(task);
        let hold = req.hold;
        let started = self.start_for_owner(job, &req, task, args, resources);
        // The task's arguments hold what they need now.
        self.unpin(&imported);
        // Should the stream to the owner break before the result is sent
        // (the owner went away, or let go of a generator), the task stops
        // and its result here goes: a generator paused for a reader that
        // is gone would otherwise wait for ever.
        let mut abandon =
            started.is_ok().then(|| Abandon { node: self.clone(), job: job.clone(), task, output: result_id });
        let mut owner_gone = false;
        let mut items_sent = 0;
        // One wait for the next item across the loop's turns (a new one
        // per item, not per output chunk); over once the generator ended.
        let mut next = std::pin::pin!(self.store.next_item(result_id, 0));
        let mut items_over = false;
        let result = match started {
            Err(e) => Err(e),
            Ok(()) => {
                loop {
                    tokio::select! {
                        r = self.store.get(result_id) => break r,
                        Some(chunk) = output.recv() => frame::write(send, &proto::encode(&output_event(chunk))?).await?,
                        // A generator's items go to the owner as they come.
                        found = &mut next, if !items_over => match found {
                            Ok(NextItem::Item(item)) => {
                                Box::pin(self.forward_item(&mut ItemSink::Task(send), result_id, items_sent, item)).await?;
                                items_sent += 1;
                                next.set(self.store.next_item(result_id, items_sent));
                            }
                            _ => items_over = true,
                        },
                        _ = recv.read_to_end(0), if !owner_gone => {
                            // The owner cancelled the task or went away.
                            owner_gone = true;
                            if let Some(token) = lock(&job.tasks).get(&task) {
                                token.cancel();
                            }
                        }
                    }
                }
            }
        };
        while let Ok(chunk) = output.try_recv() {
            frame::write(send, &proto::encode(&output_event(chunk))?).await?;
        }
        // Items yielded just before the end: all of them precede the
        // result on the stream.
        Box::pin(self.forward_rest(&mut ItemSink::Task(send), result_id, items_sent)).await?;
        // A large result the owner asked to leave here stays, for as long
        // as the owner keeps its side of the stream open
        // (`cluster/held.rs`).
        let large = matches!(&result, Ok(o) if o.refs.is_empty() && o.data.len() >= HOLD_RESULT_BYTES);
        if hold && large && !owner_gone && self.start_holding(key, result_id) {
            let len = result.as_ref().map_or(0, |o| o.data.len() as u64);
            let head = WireObject { id: wire_id(result_id), len, refs: Vec::new(), at: None, lender: None };
            let done =
                TaskDone { node: self.id.clone(), output: head.id, result: Ok(head), objects: Vec::new(), held: true };
            let written = Box::pin(write_with(send, &Event::TaskDone(done), Vec::new())).await;
            if written.is_ok() {
                // `read_to_end`, as above: once a stream was read unordered
                // (`read_to_end` does), an ordered read fails at once.
                let _ = recv.read_to_end(0).await;
            }
            self.stop_holding(key, result_id);
            if let Some(a) = abandon.take() {
                a.disarm();
            }
            self.store.release(result_id);
            let _ = send.finish();
            return written;
        }
        let (done, blobs) = Box::pin(self.done_event(result_id, result)).await;
        if let Some(a) = abandon.take() {
            a.disarm();
        }
        self.store.release(result_id);
        Box::pin(write_with(send, &done, blobs)).await?;
        let _ = send.finish();
        Ok(())
    }

    /// Starts `task`, which another node sent, as `run_for_owner` read it:
    /// its output pending here, the task spawned with its arguments pinned.
    fn start_for_owner(
        self: &Arc<Self>,
        job: &Arc<JobState>,
        req: &TaskRequest,
        task: TaskId,
        args: Vec<ArgSpec>,
        resources: Resources,
    ) -> Result<(), Error> {
        let result_id = ObjectId::returned_by(task);
        let options = Options {
            resources,
            memory_limit: req.memory_limit,
            time_limit: req.time_limit_ms.map(Duration::from_millis),
            max_retries: req.max_retries,
            retry_exceptions: req.retry_exceptions,
            reuse_instance: req.reuse_instance,
            max_calls: req.max_calls,
            generator_backpressure: req.generator_backpressure,
            env: req.task_env.clone(),
            ..Options::default()
        };
        let pinned = self.pin_args(job.id, &args)?;
        let Ok(permit) = job.pending.clone().try_acquire_owned() else {
            self.unpin(&pinned);
            return Err(Error::InvalidArgument(format!("{} has too many tasks here", req.job)));
        };
        self.store.create_pending(job.id, result_id);
        self.store.set_item_window(result_id, req.generator_backpressure);
        let function = req.function.as_str().into();
        let ticket = self.ticket();
        let spec = TaskSpec { task, function, args, options, output: result_id, pinned, here: true, ticket };
        self.spawn_task(job.clone(), spec, permit);
        Ok(())
    }

    /// Waits for the result of a call running here for another node (an
    /// actor's method), handing `forward` each item a generator method
    /// yields as it comes, and those left when the result is ready, before
    /// it.
    pub(crate) async fn result_forwarding_items(
        &self,
        output: ObjectId,
        mut forward: ItemSink<'_>,
    ) -> Result<Result<Object, Error>, NetError> {
        let mut sent = 0;
        let mut next = std::pin::pin!(self.store.next_item(output, 0));
        let mut items_over = false;
        let mut pace = match &forward {
            ItemSink::Session(_, pace) | ItemSink::Call(_, pace) => pace.clone(),
            _ => None,
        };
        let result = loop {
            // Paused while the owner says so and can still say otherwise
            // (a pace whose sender is gone pauses nothing).
            let paused = pace.as_ref().is_some_and(|p| *p.borrow() && p.has_changed().is_ok());
            tokio::select! {
                r = self.store.get(output) => break r,
                _ = async { pace.as_mut().expect("checked").changed().await }, if paused => {}
                found = &mut next, if !items_over && !paused => match found {
                    Ok(NextItem::Item(item)) => {
                        self.forward_item(&mut forward, output, sent, item).await?;
                        sent += 1;
                        next.set(self.store.next_item(output, sent));
                    }
                    _ => items_over = true,
                },
            }
        };
        self.forward_rest(&mut forward, output, sent).await?;
        Ok(result)
    }

    /// Forwards the items of the settled `output` from number `from` on.
    async fn forward_rest(&self, forward: &mut ItemSink<'_>, output: ObjectId, from: u32) -> Result<(), NetError> {
        let mut index = from;
        while let Ok(NextItem::Item(item)) = self.store.next_item(output, index).await {
            self.forward_item(forward, output, index, item).await?;
            index += 1;
        }
        Ok(())
    }

    /// Sends item `index` of a generator running here towards its owner.
    /// An item that cannot be sent whole (an object it refers to could not
    /// be fetched) breaks a task's stream rather than leave a gap in the
    /// items: the owner runs the task again and keeps the items it has. An
    /// actor's call is not run again, so its item is logged and skipped
    /// (the owner's later items then wait behind the gap and are dropped,
    /// with a warning there).
    async fn forward_item(
        &self,
        forward: &mut ItemSink<'_>,
        output: ObjectId,
        index: u32,
        item: ObjectId,
    ) -> Result<(), NetError> {
        let (event, blobs) = match self.item_event(output, index, item).await {
            Ok(sent) => sent,
            Err(e) if matches!(forward, ItemSink::Task(_)) => {
                return Err(NetError::Stream(format!("item {index} of {output} cannot be sent: {e}")));
            }
            Err(e) => {
                tracing::warn!("cannot send item {index} of {output}: {e}");
                return Ok(());
            }
        };
        match forward {
            ItemSink::Task(send) | ItemSink::Call(send, _) => write_with(send, &event, blobs).await,
            ItemSink::Session(tx, _) => {
                let _ = tx.send((output, event, blobs));
                Ok(())
            }
        }
    }

    /// The stand-in for the owner's job, created on its first task here.
    pub(crate) fn remote_job(
        self: &Arc<Self>,
        req: &TaskRequest,
        component: JobComponent,
    ) -> (Arc<JobState>, Sinks, String) {
        let mut jobs = lock(&self.remote_jobs);
        // The key names the owner's process and job, never reused: a
        // stand-in kept idle can only be the same job's.
        if let Some(r) = jobs.get_mut(&req.job) {
            r.running += 1;
            r.idle_since = None;
            return (r.state.clone(), r.sinks.clone(), req.job.clone());
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Chunk>();
        let sinks: Sinks = Arc::default();
        // Output of the job's instances here, to whichever of its task
        // streams is open.
        let forward = sinks.clone();
        tokio::spawn(async move {
            while let Some(chunk) = rx.recv().await {
                let sinks = lock(&forward);
                if let Some((_, sink)) = sinks.iter().find(|(_, s)| !s.is_closed()) {
                    let _ = sink.send(chunk);
                }
            }
        });
        let config = JobConfig {
            grants: Grants {
                dirs: self.shared_dirs.clone(),
                env: req.env.clone(),
                output: Output::Channel(tx),
                ..Grants::default()
            },
            limits: InstanceLimits { memory: req.memory_limit, time: None },
            cancel: None,
            label: None,
            command_stdin: false,
        };
        let state = self.start_job(component, config, Some((req.owner_node.clone(), req.owner_job)));
        // Debug, not info: a stand-in ends with its last running task, so a
        // stream of short tasks from one job starts one per task (41k for
        // 100k tasks over 15 workers in `wray microbenchmark --scale-out`)
        // and filled the node's log with this line.
        tracing::debug!("running tasks of {} as {}", req.job, state.id);
        let remote = RemoteJob {
            state: state.clone(),
            running: 1,
            sinks: sinks.clone(),
            held: HashSet::new(),
            idle_since: None,
        };
        jobs.insert(req.job.clone(), remote);
        (state, sinks, req.job.clone())
    }

    /// One task of a remote job ended here; after the last one the
    /// stand-in ends once it has stayed idle for [`STAND_IN_LINGER`].
    pub(crate) fn leave_remote_job(&self, key: &str) {
        let mut jobs = lock(&self.remote_jobs);
        let Some(r) = jobs.get_mut(key) else { return };
        r.running = r.running.saturating_sub(1);
        if r.running > 0 {
            return;
        }
        r.idle_since = Some(Instant::now());
        // One sweeper per node while any stand-in is idle; the flag is
        // read and written under the stand-ins' lock, so an idle one is
        // never left without it.
        if !self.sweeping_stand_ins.swap(true, Ordering::AcqRel)
            && let Ok(node) = self.arc()
        {
            tokio::spawn(async move { node.sweep_stand_ins().await });
        }
    }

    /// Stand-ins kept after their last task, not yet ended.
    pub(crate) fn idle_stand_ins(&self) -> usize {
        lock(&self.remote_jobs).values().filter(|r| r.idle_since.is_some()).count()
    }

    /// Ends the stand-ins idle for [`STAND_IN_LINGER`], every
    /// `STAND_IN_LINGER`, until none is idle.
    async fn sweep_stand_ins(&self) {
        loop {
            tokio::time::sleep(STAND_IN_LINGER).await;
            let (ended, none_idle) = {
                let mut jobs = lock(&self.remote_jobs);
                // One whose tasks lent handles stays while they are out
                // (`lent_handles.rs`), within `LENT_LINGER`.
                let done = |r: &RemoteJob, idle: Duration| {
                    idle >= STAND_IN_LINGER && (idle >= LENT_LINGER || !self.lends.any_for(r.state.id))
                };
                let ended: Vec<RemoteJob> = jobs
                    .extract_if(|_, r| r.idle_since.is_some_and(|t| done(r, t.elapsed())))
                    .map(|(_, r)| r)
                    .collect();
                let none_idle = !jobs.values().any(|r| r.idle_since.is_some());
                if none_idle {
                    self.sweeping_stand_ins.store(false, Ordering::Release);
                }
                (ended, none_idle)
            };
            for r in ended {
                self.end_job(&r.state);
            }
            if none_idle {
                return;
            }
        }
    }

    /// The component a task names, loaded here: remembered, or fetched from
    /// the head by hash (once per node; compiled artifacts are cached on
    /// disk across runs).
    pub(crate) async fn component_for(&self, req: &TaskRequest) -> Result<JobComponent, String> {
        if let Some(c) = self.component(&req.component_hash) {
            return Ok(c);
        }
        let bytes = async {
            match self.link.get() {
                Some(Link::Head(peers)) => peers.stored_component(&req.component_hash),
                Some(Link::Worker(w)) => fetch_component(&w.head(), &req.component_hash).await,
                None => Err("this node is not part of a cluster".to_string()),
            }
        };
        let me = self.arc().map_err(|e| e.to_string())?;
        me.load_component_async(&req.name, Some(&req.component_hash), bytes).await
    }
}

/// An object a task's message carries: its bytes, where it is held, or (an
/// actor's handle object, empty) the lend that counts the copy.
pub(crate) enum Carried {
    Bytes(Object),
    At(wray_store::Holder),
    Lent(proto::WireLender),
}

/// The objects of a message on the wire, the bytes of those carried whole
/// appended to `blobs` in the same order.
fn wire_objects(objects: Vec<(ObjectId, Carried)>, blobs: &mut Vec<Bytes>) -> Vec<WireObject> {
    objects
        .into_iter()
        .map(|(id, carried)| match carried {
            Carried::Bytes(o) => {
                let w = WireObject {
                    id: wire_id(id),
                    len: o.data.len() as u64,
                    refs: o.refs.iter().copied().map(wire_id).collect(),
                    at: None,
                    lender: None,
                };
                blobs.push(o.data);
                w
            }
            Carried::At(h) => WireObject {
                id: wire_id(id),
                len: h.size as u64,
                refs: Vec::new(),
                at: Some(proto::WireHolder { node: h.node, addr: h.addr }),
                lender: None,
            },
            Carried::Lent(lender) => {
                WireObject { id: wire_id(id), len: 0, refs: Vec::new(), at: None, lender: Some(lender) }
            }
        })
        .collect()
}

/// A remote result read whole, not yet released to its readers.
pub(crate) struct ArrivedResult {
    /// The object it completes.
    pub(crate) output: ObjectId,
    result: Result<Object, Error>,
    /// Objects it refers to, read into the store and pinned until then.
    imported: Vec<ObjectId>,
}

/// Reads an object's `len` raw bytes (at most `MAX_OBJECT_SIZE`, checked
/// before anything is allocated) into a recycled buffer where one is free:
/// memory already mapped (see `wray_host::buffers::buffer`).
pub(crate) async fn read_bytes(recv: &mut quinn::RecvStream, len: u64) -> Result<Bytes, NetError> {
    let max = limits::MAX_OBJECT_SIZE as u64;
    if len > max {
        return Err(NetError::FrameTooLarge { len, max });
    }
    let mut buf = wray_host::buffers::buffer(len as usize);
    frame::read_raw_into(recv, &mut buf, len, max).await?;
    Ok(wray_host::buffers::share(buf))
}

/// A placement this node (the head) made: the view to credit when it ends,
/// the node, and the placement's number there.
pub(crate) struct Placed<'a> {
    pub(crate) peers: &'a Peers,
    pub(crate) node: String,
    pub(crate) number: u64,
}

impl Placed<'_> {
    /// The task or actor ended (or never started) on its node.
    pub(crate) fn finished(self, demand: &Resources) {
        self.peers.finished(&self.node, demand);
    }
}

/// `request` on the wire as placement `number` on its node (0: unplaced, a
/// worker's request to the head, which numbers it when it relays it).
pub(crate) fn encode_request(mut request: TaskRequest, number: u64) -> Result<Vec<u8>, NetError> {
    request.placement = number;
    let request = if request.actor.is_some() { Request::RunActor(request) } else { Request::RunTask(request) };
    proto::encode(&request)
}

/// Where a task or actor leaving its node goes.
pub(crate) enum Chosen<'a> {
    /// Open a stream on this connection, sending the request as
    /// [`Chosen::request`] encodes it; if the head placed it, which node to
    /// credit when it ends.
    Conn(quinn::Connection, Option<Placed<'a>>),
    /// Stay: no other node has room.
    Busy,
    /// No node can ever run it.
    Infeasible,
    /// The chosen node is gone.
    Lost(String),
}

/// Asks the head for a component's bytes.
pub(crate) async fn fetch_component(head: &quinn::Connection, hash: &str) -> Result<Vec<u8>, String> {
    let request = Request::GetComponent { hash: hash.to_string() };
    let bytes = ask_for(head, &request, |answer| match answer {
        Event::Component(bytes) => Ok(bytes),
        other => Err(other.into()),
    });
    bytes.await.map_err(|e| format!("fetching component {hash}: {}", e.message("the head")))
}

pub(crate) fn infeasible_reason(demand: &Resources) -> String {
    format!("no node in the cluster has {demand}")
}

/// Why a task or actor with `scheduling` cannot be placed anywhere.
pub(crate) fn unplaceable_reason(demand: &Resources, scheduling: &Scheduling) -> String {
    match scheduling {
        Scheduling::NodeAffinity { node, .. } => {
            format!(
                "its node affinity names node {node:?}, which is not a live node of the cluster or never has {demand}"
            )
        }
        _ => infeasible_reason(demand),
    }
}
