//! Actors hosted on another node than their job's, and what tasks running
//! away from their job's node ask that node (upcalls).
//!
//! The job's node keeps every actor's entry (its mailbox, its name); an
//! actor placed elsewhere has a session: one stream to the hosting node
//! carrying the constructor, then the calls in submission order (so the
//! host runs them in that order), with results coming back as they finish.
//! Closing the stream kills the actor. If the hosting node dies, the actor
//! is re-created elsewhere while it has restarts left (its constructor runs
//! again, as after a crash — or, for an actor taking snapshots, it
//! continues from its last one) and the calls in flight go back to the
//! front of its mailbox while they have `max_task_retries` left; the others
//! fail with `ActorDied`.
//!
//! Snapshots are kept by the owner: the hosting node sends what each one
//! changed on the session's stream right before the result of the call it
//! follows (results of such calls go out in call order), and the owner
//! applies it only once that result has arrived. So the owner's snapshot
//! holds exactly the calls whose results it has: if the node dies in
//! between, the call is neither in the snapshot nor answered, and runs
//! again (with `max_task_retries`) on the restored actor — its effect
//! lands once. The owner sends the whole snapshot to the next node that
//! hosts the actor, after the request.
//!
//! A task running on another node reaches its job's actors through an
//! upcall to the job's node (through the head if both are workers): calls
//! are answered `Accepted` once queued, so one caller's calls keep their
//! order, then with the result.

use crate::cluster::held::HeldObjects;
use crate::cluster::link::Link;
use crate::cluster::remote_task::{Chosen, ItemSink, Refusal, open_placed};
use crate::cluster::wire::{
    AskError, accepted, answer, object_id, open_with, output_event, pairs, read_event, resources, scheduling,
    until_ended, wire_scheduling, write_blobs, write_parts, write_with,
};
use crate::local::actor::{ActorCall, ActorSpec, ActorState, Mailbox, ToOwner};
use crate::local::job::JobState;
use crate::{NodeInner, lock};
use bytes::Bytes;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use wray_core::{ActorId, Error, JobId, ObjectId, Options, Scheduling, TaskId, limits};
use wray_host::{ArgSpec, CHECKPOINT_BLOCK, Caller, Checkpoint, Chunk, Delta, MAX_CHECKPOINT, Stream};
use wray_net::proto::{
    self, ActorMsg, Event, MAX_DELTA_BYTES, Request, TaskDone, TaskRequest, Upcall, UpcallRequest, WireActor, WireCall,
    WireCreate, WireDelta, WireScheduling,
};
use wray_net::{NetError, frame};
use wray_sched::actor_session::{ActorSession, InFlight};
use wray_store::ItemPut;

/// How an actor's life on another node ended.
pub(crate) enum Hosted {
    /// No node had room: host it here.
    Busy,
    /// It is dead, or its mailbox closed: nothing more to do.
    Ended,
    /// The hosting node died (or the path to it broke).
    Lost(String),
}

/// What the session's reader hands the session.
enum FromHost {
    /// A call's result is stored.
    Done(ObjectId),
    /// The actor died for good there.
    Gone(String),
    /// Nobody here reads the items of this call's generator any more.
    Unread(ObjectId),
    /// The window of unread items of this call's generator is full here
    /// (the call has a `generator_backpressure`): the host should pause.
    Ahead(ObjectId),
}

/// [`ActorMsg::Pace`] for the call `task`.
fn pace(task: TaskId, paused: bool) -> Vec<u8> {
    let (task_hi, task_lo) = task.halves();
    proto::encode(&ActorMsg::Pace { task_hi, task_lo, paused }).expect("a small message encodes")
}

/// [`ActorMsg::Stop`] for the call `task`.
fn stop(task: TaskId) -> Vec<u8> {
    let (task_hi, task_lo) = task.halves();
    proto::encode(&ActorMsg::Stop { task_hi, task_lo }).expect("a small message encodes")
}

/// How often a hosting node checks whether its actor died for good.
const DEATH_WATCH: Duration = Duration::from_millis(100);

/// The most [`ActorMsg::Checkpoint`] frames a whole snapshot takes.
const MAX_CHECKPOINT_PARTS: u32 = (MAX_CHECKPOINT / MAX_DELTA_BYTES) as u32 + 1;

/// A snapshot's change as frames of at most [`MAX_DELTA_BYTES`] of blocks.
fn to_wire(delta: &Delta) -> Vec<WireDelta> {
    delta
        .split(MAX_DELTA_BYTES)
        .into_iter()
        .map(|part| WireDelta {
            base: part.base,
            memory_size: part.memory_size,
            len: part.len,
            full: part.full,
            blocks: part.blocks.iter().map(|(index, _)| *index).collect(),
            data: part.blocks.iter().flat_map(|(_, bytes)| bytes.iter().copied()).collect(),
        })
        .collect()
}

/// Cuts a peer's frame back into blocks; [`Checkpoint::apply`] checks
/// that each fits.
fn from_wire(w: WireDelta) -> Result<Delta, String> {
    let mut blocks = Vec::with_capacity(w.blocks.len().min(MAX_DELTA_BYTES / CHECKPOINT_BLOCK));
    let data = Bytes::from(w.data);
    let mut at = 0usize;
    for index in w.blocks {
        let start = u64::from(index) * CHECKPOINT_BLOCK as u64;
        let size = w.len.saturating_sub(start).min(CHECKPOINT_BLOCK as u64) as usize;
        if size == 0 || at + size > data.len() {
            return Err(format!("checkpoint block {index} is missing or outside the snapshot"));
        }
        blocks.push((index, data.slice(at..at + size)));
        at += size;
    }
    if at != data.len() {
        return Err("a checkpoint frame carries bytes beyond its blocks".into());
    }
    Ok(Delta { base: w.base, memory_size: w.memory_size, len: w.len, full: w.full, blocks })
}

/// Applies a peer's frame to `image` and returns it; a bad one empties the
/// image (the actor then starts over if it is re-created) and is reported.
fn apply_wire(image: &mut Checkpoint, w: WireDelta) -> Result<Delta, String> {
    let applied = from_wire(w).and_then(|d| image.apply(&d).map(|()| d));
    if applied.is_err() {
        *image = Checkpoint::default();
    }
    applied
}

/// Applies the frames of one snapshot to the owner's copy, and writes the
/// change to disk if the actor's snapshots are kept there.
async fn apply_snapshot(actor: &ActorState, frames: Vec<WireDelta>) -> Result<(), String> {
    for frame in frames {
        let delta = apply_wire(&mut lock(&actor.checkpoint), frame)?;
        actor.persist(delta).await;
    }
    Ok(())
}

/// Writes a snapshot's frames and right after them the result of the call
/// it follows.
async fn write_snapshot_then(
    send: &mut quinn::SendStream,
    frames: Vec<WireDelta>,
    result: &Event,
    blobs: Vec<Bytes>,
) -> Result<(), NetError> {
    for frame in frames {
        write_with(send, &Event::Checkpoint(frame), Vec::new()).await?;
    }
    write_with(send, result, blobs).await
}

/// Reads the `parts` frames of the snapshot an owner sends after an actor's
/// request.
async fn read_image(recv: &mut quinn::RecvStream, parts: u32) -> Result<Checkpoint, NetError> {
    if parts > MAX_CHECKPOINT_PARTS {
        return Err(NetError::Malformed(format!("a snapshot in {parts} parts (at most {MAX_CHECKPOINT_PARTS})")));
    }
    let mut image = Checkpoint::default();
    for _ in 0..parts {
        let msg = match frame::read(recv).await? {
            Some(bytes) => proto::decode_actor_msg(&bytes)?,
            None => return Err(NetError::Malformed("the stream ended inside a snapshot".into())),
        };
        let ActorMsg::Checkpoint(delta) = msg else {
            return Err(NetError::Malformed("expected part of a snapshot".into()));
        };
        apply_wire(&mut image, delta).map_err(NetError::Malformed)?;
    }
    Ok(image)
}

impl NodeInner {
    /// Whether an actor that found no room here should be hosted elsewhere:
    /// `Some(must_move)`, or `None` to queue here.
    pub(crate) fn actor_should_move(&self, spec: &ActorSpec) -> Option<bool> {
        // Pinned here by a hard node affinity: it waits here for room.
        if spec.here || self.link.get().is_none() || spec.options.scheduling.pinned_to().is_some() {
            return None;
        }
        Some(lock(&self.sched).check_feasible(&spec.options.resources).is_err())
    }

    /// Hosts the actor on another node for as long as it lives there.
    pub(crate) async fn host_elsewhere(
        self: &Arc<Self>,
        job: &Arc<JobState>,
        actor: &Arc<ActorState>,
        spec: &ActorSpec,
        rx: &mut Mailbox,
        must_move: bool,
    ) -> Hosted {
        let (hi, lo) = actor.id.halves();
        let image = {
            let image = lock(&actor.checkpoint);
            if image.is_empty() { Vec::new() } else { to_wire(&image.whole()) }
        };
        let wire = WireActor {
            hi,
            lo,
            max_concurrency: spec.options.max_concurrency,
            // What is left of the budget: restarts used on other nodes
            // count.
            max_restarts: actor.restarts_left(),
            max_task_retries: spec.options.max_task_retries,
            checkpoint_every: spec.options.checkpoint_every,
            checkpoint_parts: image.len() as u32,
            name: actor.name.clone(),
        };
        let request =
            self.task_request(job, spec.task, &actor.class, &spec.args, &spec.options, must_move, Some(wire)).await;
        let (request, blobs) = match request {
            Ok(r) => r,
            Err(e) => {
                self.mark_dead(job, actor, format!("{}: a constructor argument failed: {e}", actor.class));
                return Hosted::Ended;
            }
        };
        let (conn, placed) = match self.choose(&spec.options, must_move).await {
            Chosen::Conn(c, placed) => (c, placed),
            Chosen::Busy => return Hosted::Busy,
            Chosen::Lost(why) => return Hosted::Lost(why),
            Chosen::Infeasible => {
                let why =
                    crate::cluster::remote_task::unplaceable_reason(&spec.options.resources, &spec.options.scheduling);
                self.mark_dead(job, actor, format!("{} cannot be placed: {why}", actor.class));
                return Hosted::Ended;
            }
        };
        // A worker that reaches others directly asks the head only where
        // the actor goes, and opens its session there itself.
        if let Some(Link::Worker(w)) = self.link.get()
            && w.goes_direct()
        {
            return self.host_direct(job, actor, rx, w, &conn, request, blobs, image).await;
        }
        let frame_bytes =
            match crate::cluster::remote_task::encode_request(request, placed.as_ref().map_or(0, |p| p.number)) {
                Ok(f) => f,
                Err(e) => {
                    if let Some(p) = placed {
                        p.finished(&spec.options.resources);
                    }
                    self.mark_dead(job, actor, format!("{}: {e}", actor.class));
                    return Hosted::Ended;
                }
            };
        if let Some(p) = &placed {
            actor.hosted_on(&p.node);
        }
        let opened = open_with(&conn, &frame_bytes, blobs).await;
        let outcome = self.actor_session(job, actor, rx, opened, image, Refusal::Final).await;
        if let Some(p) = placed {
            p.finished(&spec.options.resources);
        }
        outcome
    }

    /// As for a worker's task (`remote_task.rs`, `send_direct`): the head
    /// answers where the actor goes; placed on a worker that listens, the
    /// session runs on this worker's own connection to it (or through the
    /// head's relay if it cannot be reached), while a watcher holds the
    /// stream to the head — closing it when the session ends credits the
    /// node, and the head resetting it (the node died) closes the direct
    /// connection, which breaks the session as a dead node's relayed
    /// stream would.
    #[allow(clippy::too_many_arguments)]
    async fn host_direct(
        self: &Arc<Self>,
        job: &Arc<JobState>,
        actor: &Arc<ActorState>,
        rx: &mut Mailbox,
        link: &crate::cluster::link::WorkerLink,
        head: &quinn::Connection,
        request: TaskRequest,
        blobs: Vec<Bytes>,
        image: Vec<WireDelta>,
    ) -> Hosted {
        let asked = crate::cluster::remote_task::encode_request(TaskRequest { direct: true, ..request.clone() }, 0);
        let opened = match asked {
            Ok(frame) => open_with(head, &frame, Vec::new()).await,
            Err(e) => Err(e),
        };
        let (mut head_send, mut head_recv) = match opened {
            Ok(s) => s,
            Err(e) => return Hosted::Lost(e.to_string()),
        };
        let (node, addr, number) = match read_event(&mut head_recv).await {
            Ok(Event::Placed { node, addr, number }) => (node, addr, number),
            Ok(Event::Proceed) => {
                let written = write_blobs(&mut head_send, blobs).await.map(|()| (head_send, head_recv));
                return self.actor_session(job, actor, rx, written, image, Refusal::Final).await;
            }
            Ok(Event::Busy) => return Hosted::Busy,
            Ok(Event::Refused(why)) => {
                self.mark_dead(job, actor, format!("{}: {why}", actor.class));
                return Hosted::Ended;
            }
            Ok(other) => return Hosted::Lost(format!("unexpected answer {other:?}")),
            Err(e) => return Hosted::Lost(e.to_string()),
        };
        actor.hosted_on(&node);
        let frame_bytes = match crate::cluster::remote_task::encode_request(request, number) {
            Ok(f) => f,
            Err(e) => return Hosted::Lost(e.to_string()),
        };
        let (opened, direct, refusal) = open_placed(link, &self.id, head, (&node, &addr), &frame_bytes, blobs).await;
        let (ended, session_over) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            tokio::select! {
                _ = session_over => {
                    let _ = head_send.finish();
                }
                () = until_ended(&mut head_recv) => {
                    if let Some(conn) = direct {
                        conn.close(0u32.into(), b"the head declared this node dead");
                    }
                }
            }
        });
        let outcome = self.actor_session(job, actor, rx, opened, image, refusal).await;
        let _ = ended.send(());
        outcome
    }

    #[allow(clippy::too_many_arguments)]
    /// An actor's session on the stream `opened` (its request and
    /// constructor arguments sent). `refusal` says what a refusal as first
    /// answer means: the actor cannot be hosted, or — from the head's
    /// relay to a node it chose — that the node is gone (restart it).
    async fn actor_session(
        self: &Arc<Self>,
        job: &Arc<JobState>,
        actor: &Arc<ActorState>,
        rx: &mut Mailbox,
        opened: Result<(quinn::SendStream, quinn::RecvStream), NetError>,
        image: Vec<WireDelta>,
        refusal: Refusal,
    ) -> Hosted {
        let (mut send, mut recv) = match opened {
            Ok(s) => s,
            Err(e) => return Hosted::Lost(e.to_string()),
        };
        for part in image {
            let sent = match proto::encode(&ActorMsg::Checkpoint(part)) {
                Ok(bytes) => frame::write(&mut send, &bytes).await,
                Err(e) => Err(e),
            };
            if let Err(e) = sent {
                return Hosted::Lost(e.to_string());
            }
        }
        match read_event(&mut recv).await {
            Ok(Event::Accepted) => {}
            Ok(Event::Busy) => return Hosted::Busy,
            Ok(Event::Refused(why)) if matches!(refusal, Refusal::Lost) => return Hosted::Lost(why),
            Ok(Event::Refused(why) | Event::ActorGone(why)) => {
                self.mark_dead(job, actor, format!("{}: {why}", actor.class));
                return Hosted::Ended;
            }
            Ok(other) => return Hosted::Lost(format!("unexpected answer {other:?}")),
            Err(e) => return Hosted::Lost(e.to_string()),
        }
        // The session's rules — calls in flight, snapshots applied only with
        // their call's result, what happens to the calls in flight when the
        // node dies — are `wray_sched::actor_session`'s; this loop and its
        // reader feed it what the stream brings and do what it says.
        let session = Arc::new(Mutex::new(ActorSession::<ObjectId, WireDelta>::new(
            rx.max_task_retries,
            MAX_CHECKPOINT_PARTS as usize,
        )));
        // Results are read by a task of their own: a frame read must not be
        // abandoned halfway, which a `select!` branch would do.
        let (tx, mut results) = mpsc::unbounded_channel::<Result<FromHost, String>>();
        let reader = {
            let (node, job, actor, session) = (self.clone(), job.clone(), actor.clone(), session.clone());
            tokio::spawn(async move {
                // Generator calls whose actor's node was told to stop them.
                let mut stopped = std::collections::HashSet::new();
                loop {
                    let msg = match read_event(&mut recv).await {
                        Ok(Event::Output(chunk)) => {
                            job.config.grants.output.write(Stream::Stdout, &chunk);
                            continue;
                        }
                        Ok(Event::ErrorOutput(chunk)) => {
                            job.config.grants.output.write(Stream::Stderr, &chunk);
                            continue;
                        }
                        Ok(Event::ActorRestarted) => {
                            actor.restarted_elsewhere();
                            continue;
                        }
                        Ok(Event::Checkpoint(delta)) => match lock(&session).frame(delta) {
                            Ok(()) => continue,
                            Err(e) => Err(e.to_string()),
                        },
                        // An item nobody reads any more is dropped, and the
                        // actor's node told once, so that the generator
                        // stops at its next yield.
                        Ok(Event::Item(item)) => {
                            let output = object_id(&item.output);
                            match node.receive_item(&job, item, &mut recv).await {
                                Ok(ItemPut::Unread) if stopped.insert(output) => Ok(FromHost::Unread(output)),
                                Ok(ItemPut::Ahead) => Ok(FromHost::Ahead(output)),
                                Ok(_) => continue,
                                Err(e) => Err(e.to_string()),
                            }
                        }
                        Ok(Event::TaskDone(done)) => {
                            actor.hosted_on(&done.node);
                            node.result_from_host(&job, &actor, &session, done, &mut recv).await
                        }
                        Ok(Event::ActorGone(why)) => Ok(FromHost::Gone(why)),
                        Ok(other) => Err(format!("unexpected answer {other:?}")),
                        Err(e) => Err(e.to_string()),
                    };
                    if let Ok(FromHost::Done(output)) = &msg {
                        stopped.remove(output);
                    }
                    let last = !matches!(msg, Ok(FromHost::Done(_) | FromHost::Unread(_) | FromHost::Ahead(_)));
                    if tx.send(msg).is_err() || last {
                        return;
                    }
                }
            })
        };
        // The calls in flight, by output (the session tracks their order).
        let mut calls: std::collections::HashMap<ObjectId, ActorCall> = Default::default();
        // Generator calls the host was told to pause: each is told to go on
        // once its reader here has taken an item (`resumes`).
        let mut paused: std::collections::HashSet<ObjectId> = Default::default();
        let (resume, mut resumes) = mpsc::unbounded_channel::<ObjectId>();
        let outcome = loop {
            if lock(&session).is_finished() {
                break Hosted::Ended;
            }
            let open = lock(&session).is_open();
            tokio::select! {
                biased;
                () = actor.control.notified() => {
                    let Some((reason, no_restart)) = lock(&actor.kill_request).take() else { continue };
                    let msg = proto::encode(&ActorMsg::Kill { no_restart }).expect("a small message encodes");
                    if no_restart {
                        self.mark_dead(job, actor, format!("{} was killed: {reason}", actor.class));
                    }
                    if let Err(e) = frame::write(&mut send, &msg).await {
                        break Hosted::Lost(e.to_string());
                    }
                }
                msg = results.recv() => match msg {
                    Some(Ok(FromHost::Done(output))) => {
                        paused.remove(&output);
                        if let Some(call) = calls.remove(&output) {
                            self.unpin(&call.pinned);
                        }
                    }
                    Some(Ok(FromHost::Ahead(output))) => {
                        let Some(call) = calls.get(&output) else { continue };
                        if !paused.insert(output) {
                            continue;
                        }
                        if let Err(e) = frame::write(&mut send, &pace(call.task, true)).await {
                            break Hosted::Lost(e.to_string());
                        }
                        let (node, resume) = (self.clone(), resume.clone());
                        tokio::spawn(async move {
                            node.store.wait_for_reader(output).await;
                            let _ = resume.send(output);
                        });
                    }
                    Some(Ok(FromHost::Unread(output))) => {
                        if let Some(call) = calls.get(&output)
                            && let Err(e) = frame::write(&mut send, &stop(call.task)).await
                        {
                            break Hosted::Lost(e.to_string());
                        }
                    }
                    Some(Ok(FromHost::Gone(why))) => {
                        self.mark_dead(job, actor, format!("{}: {why}", actor.class));
                        // Results of calls still in flight are on their way.
                        lock(&session).close();
                    }
                    Some(Err(e)) => break Hosted::Lost(e),
                    None => break Hosted::Lost("the host stopped answering".into()),
                },
                Some(output) = resumes.recv() => {
                    if paused.remove(&output)
                        && let Some(call) = calls.get(&output)
                        && let Err(e) = frame::write(&mut send, &pace(call.task, false)).await
                    {
                        break Hosted::Lost(e.to_string());
                    }
                }
                call = rx.recv(), if open => match call {
                    None => {
                        // Every handle is gone (or the job ended): the host
                        // kills the actor when we close our side.
                        lock(&session).close();
                        let _ = send.finish();
                    }
                    Some(call) => match self.wire_parts(&call.args, HeldObjects::Fetched).await {
                        Err(e) => {
                            self.store.complete(call.output, Err(e));
                            self.unpin(&call.pinned);
                        }
                        Ok((args, objects, blobs)) => {
                            let (task_hi, task_lo) = call.task.halves();
                            let msg = ActorMsg::Call(WireCall {
                                task_hi,
                                task_lo,
                                method: call.method.clone(),
                                args,
                                objects,
                                generator_backpressure: call.generator_backpressure,
                            });
                            // In flight before it is written, so that its
                            // result is never unknown to the reader.
                            lock(&session).sent(call.output, call.retries);
                            calls.insert(call.output, call);
                            let sent = match proto::encode(&msg) {
                                Ok(bytes) => write_parts(&mut send, &bytes, blobs).await,
                                Err(e) => Err(e),
                            };
                            if let Err(e) = sent {
                                break Hosted::Lost(e.to_string());
                            }
                        }
                    },
                },
            }
        };
        reader.abort();
        // Calls in flight when the node was lost run again on the restarted
        // actor while they have retries left (`max_task_retries`, as in
        // Ray); the others fail. Calls of an actor that ended normally have
        // all been answered.
        let ending = lock(&session).end(matches!(outcome, Hosted::Lost(_)));
        let mut again = Vec::with_capacity(ending.again.len());
        for InFlight { call: output, retries } in ending.again {
            if let Some(mut call) = calls.remove(&output) {
                call.retries = retries;
                again.push(call);
            }
        }
        for output in ending.failed {
            if let Some(call) = calls.remove(&output) {
                let why = format!("{} was lost with the node hosting it while running {}", actor.class, call.method);
                self.store.complete(call.output, Err(Error::ActorDied(why)));
                self.unpin(&call.pinned);
            }
        }
        rx.run_again(again);
        outcome
    }

    /// A call's result arriving on an actor's session: read it whole, apply
    /// the snapshot that preceded it, then release it — in that order, so
    /// that a node dying halfway leaves neither taking effect.
    async fn result_from_host(
        &self,
        job: &Arc<JobState>,
        actor: &ActorState,
        session: &Mutex<ActorSession<ObjectId, WireDelta>>,
        done: TaskDone,
        recv: &mut quinn::RecvStream,
    ) -> Result<FromHost, String> {
        let output = object_id(&done.output);
        let frames = lock(session).result(&output).map_err(|e| e.to_string())?;
        let arrived = self.read_result(job, done, recv).await.map_err(|e| e.to_string())?;
        apply_snapshot(actor, frames).await.map_err(|e| format!("a bad snapshot from the actor's host: {e}"))?;
        self.release_result(arrived);
        lock(session).released(&output);
        Ok(FromHost::Done(output))
    }

    /// Hosts an actor of a job running elsewhere (the head placed it here),
    /// serving its session until the owner closes it.
    ///
    /// The session holds this future for as long as the actor lives, so
    /// what runs once — finding the component, reading the arguments and
    /// the memory image — is boxed when it runs, and the request comes boxed
    /// (an `async fn` stores each argument twice): 2,864 bytes, 5,200
    /// before (`local::task`'s tests hold it under 3 KiB).
    pub(crate) async fn serve_actor(
        self: &Arc<Self>,
        req: Box<TaskRequest>,
        mut send: quinn::SendStream,
        recv: quinn::RecvStream,
    ) -> Result<(), NetError> {
        let Some(wire) = req.actor.clone() else {
            return Err(NetError::Malformed("an actor request without its actor".into()));
        };
        let demand = resources(&req.resources)?;
        Options::check_env(&req.task_env).map_err(|e| NetError::Malformed(e.to_string()))?;
        let _arrival = self.arriving(TaskId::from_halves(req.task_hi, req.task_lo), &demand, req.placement);
        let component = match Box::pin(self.component_for(&req)).await {
            Ok(c) => c,
            Err(why) => return frame::write(&mut send, &proto::encode(&Event::Refused(why))?).await,
        };
        let (job, sinks, key) = self.remote_job(&req, component);
        let outcome = self.host_actor(&job, &sinks, &req, wire, demand, send, recv).await;
        self.leave_remote_job(&key);
        outcome
    }

    #[allow(clippy::too_many_arguments)]
    async fn host_actor(
        self: &Arc<Self>,
        job: &Arc<JobState>,
        sinks: &crate::cluster::remote_task::Sinks,
        req: &TaskRequest,
        wire: WireActor,
        demand: wray_core::Resources,
        mut send: quinn::SendStream,
        mut recv: quinn::RecvStream,
    ) -> Result<(), NetError> {
        if wire.name.as_ref().is_some_and(|n| n.len() > limits::MAX_NAME_LEN) {
            let why = format!("an actor name over {} bytes", limits::MAX_NAME_LEN);
            return frame::write(&mut send, &proto::encode(&Event::Refused(why))?).await;
        }
        let (args, imported) = Box::pin(self.read_args(job, &req.args, &req.objects, &mut recv)).await?;
        let image = Box::pin(read_image(&mut recv, wire.checkpoint_parts)).await;
        let pinned = self.pin_args(job.id, &args);
        self.unpin(&imported);
        let image = match image {
            Ok(i) => i,
            Err(e) => {
                self.unpin(pinned.as_deref().unwrap_or_default());
                return Err(e);
            }
        };
        let pinned = match pinned {
            Ok(p) => p,
            Err(e) => return frame::write(&mut send, &proto::encode(&Event::Refused(e.to_string()))?).await,
        };
        let id = ActorId::from_halves(wire.hi, wire.lo);
        let options = Options {
            resources: demand,
            memory_limit: req.memory_limit,
            time_limit: req.time_limit_ms.map(Duration::from_millis),
            max_concurrency: wire.max_concurrency,
            max_restarts: wire.max_restarts,
            max_task_retries: wire.max_task_retries,
            checkpoint_every: wire.checkpoint_every,
            env: req.task_env.clone(),
            // For the actor's context only: the name is registered with its
            // owner's job, not with this stand-in.
            name: wire.name.clone(),
            ..Options::default()
        };
        let task = TaskId::from_halves(req.task_hi, req.task_lo);
        let (to_owner, mut to_owner_rx) = mpsc::unbounded_channel::<ToOwner>();
        let spec = ActorSpec {
            task,
            args,
            options,
            pinned,
            here: true,
            image,
            to_owner: Some(to_owner),
            persist: None,
            collectable: false,
        };
        let state = self.spawn_actor(job.clone(), id, req.function.clone(), spec);
        lock(&job.actors).insert(id, state.clone());
        // Output of the job's instances here may come back this way.
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Chunk>();
        let sink = {
            let mut sinks = lock(sinks);
            let n = sinks.last().map_or(0, |(i, _)| i + 1);
            sinks.push((n, out_tx));
            n
        };
        frame::write(&mut send, &proto::encode(&Event::Accepted)?).await?;
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(ObjectId, Event, Vec<Bytes>)>();
        // Snapshots waiting for the result of the call each follows, in call
        // order, and results that wait for an earlier call's.
        let mut held: std::collections::VecDeque<(ObjectId, Vec<WireDelta>)> = Default::default();
        let mut ready: std::collections::HashMap<ObjectId, (Event, Vec<Bytes>)> = Default::default();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let mut reader = {
            let (node, job, state, in_flight) = (self.clone(), job.clone(), state.clone(), in_flight.clone());
            tokio::spawn(async move { node.read_calls(&job, &state, &mut recv, done_tx, &in_flight).await })
        };
        let mut watch = tokio::time::interval(DEATH_WATCH);
        let (mut reader_done, mut gone_sent) = (false, false);
        let outcome = loop {
            tokio::select! {
                // A snapshot goes out before the result of the call it
                // follows (it was queued first).
                biased;
                Some(news) = to_owner_rx.recv() => match news {
                    ToOwner::Snapshot(delta, after) => held.push_back((ObjectId::returned_by(after), to_wire(&delta))),
                    ToOwner::Restarted => {
                        if let Err(e) = write_with(&mut send, &Event::ActorRestarted, Vec::new()).await {
                            break Err(e);
                        }
                    }
                },
                Some((output, event, blobs)) = done_rx.recv() => {
                    // An item goes out at once: only a call's result waits
                    // for the snapshot taken before it.
                    if matches!(event, Event::Item(_)) || !held.iter().any(|(o, _)| *o == output) {
                        if let Err(e) = write_with(&mut send, &event, blobs).await {
                            break Err(e);
                        }
                        continue;
                    }
                    ready.insert(output, (event, blobs));
                    let mut sent = Ok(());
                    while sent.is_ok() && let Some((front, _)) = held.front() && ready.contains_key(front) {
                        let (front, frames) = held.pop_front().expect("checked above");
                        let (event, blobs) = ready.remove(&front).expect("checked above");
                        sent = write_snapshot_then(&mut send, frames, &event, blobs).await;
                    }
                    if let Err(e) = sent {
                        break Err(e);
                    }
                }
                Some(chunk) = out_rx.recv() => {
                    if let Err(e) = frame::write(&mut send, &proto::encode(&output_event(chunk))?).await {
                        break Err(e);
                    }
                }
                // The owner closed its side: the actor's life here ends once
                // the answers in flight are out (as in Ray, an actor whose
                // handles are gone finishes the calls it was given).
                _ = &mut reader, if !reader_done => reader_done = true,
                _ = watch.tick() => {
                    if reader_done && in_flight.load(Ordering::Acquire) == 0 && done_rx.is_empty() && ready.is_empty() {
                        break Ok(());
                    }
                    if !gone_sent && let Some(why) = state.dead_reason() {
                        gone_sent = true;
                        if let Err(e) = write_with(&mut send, &Event::ActorGone(why), Vec::new()).await {
                            break Err(e);
                        }
                    }
                }
            }
        };
        reader.abort();
        state.kill("its session ended", true);
        lock(&job.actors).remove(&id);
        lock(sinks).retain(|(i, _)| *i != sink);
        let _ = send.finish();
        outcome
    }

    /// Reads the calls an owner sends an actor hosted here, queues them, and
    /// hands each answer to `done` when it is ready.
    async fn read_calls(
        self: &Arc<Self>,
        job: &Arc<JobState>,
        state: &Arc<ActorState>,
        recv: &mut quinn::RecvStream,
        done: mpsc::UnboundedSender<(ObjectId, Event, Vec<Bytes>)>,
        in_flight: &Arc<AtomicUsize>,
    ) {
        // The pace of each generator call in flight with a window, which
        // the owner sets with `Pace` (bounded by the calls in flight).
        let paces: Arc<Mutex<std::collections::HashMap<ObjectId, tokio::sync::watch::Sender<bool>>>> = Arc::default();
        loop {
            let msg = match frame::read(recv).await {
                Ok(Some(bytes)) => proto::decode_actor_msg(&bytes),
                Ok(None) => return,
                Err(e) => Err(e),
            };
            let call = match msg {
                Ok(ActorMsg::Kill { no_restart }) => {
                    state.kill("wray::kill", no_restart);
                    continue;
                }
                Ok(ActorMsg::Call(call)) => call,
                Ok(ActorMsg::Stop { task_hi, task_lo }) => {
                    self.store.stop_items(job.id, ObjectId::returned_by(TaskId::from_halves(task_hi, task_lo)));
                    continue;
                }
                Ok(ActorMsg::Pace { task_hi, task_lo, paused }) => {
                    let output = ObjectId::returned_by(TaskId::from_halves(task_hi, task_lo));
                    if let Some(pace) = lock(&paces).get(&output) {
                        pace.send_replace(paused);
                    }
                    continue;
                }
                Ok(ActorMsg::Checkpoint(_)) => {
                    tracing::warn!("dropping an actor session: a snapshot after the actor started");
                    return;
                }
                Err(e) => {
                    tracing::warn!("dropping an actor session: {e}");
                    return;
                }
            };
            let task = TaskId::from_halves(call.task_hi, call.task_lo);
            let output = ObjectId::returned_by(task);
            let (args, imported) = match self.read_args(job, &call.args, &call.objects, recv).await {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("dropping an actor session: {e}");
                    return;
                }
            };
            let queued = self.queue_call(job, state, task, call.method, args, call.generator_backpressure);
            self.unpin(&imported);
            let pace = (call.generator_backpressure > 0).then(|| {
                let (tx, rx) = tokio::sync::watch::channel(false);
                lock(&paces).insert(output, tx);
                rx
            });
            let (node, done, in_flight, paces) = (self.clone(), done.clone(), in_flight.clone(), paces.clone());
            in_flight.fetch_add(1, Ordering::AcqRel);
            tokio::spawn(async move {
                let result = match queued {
                    Ok(()) => {
                        // A generator method's items go out as they come,
                        // at the owner's pace if it set a window.
                        let forwarded = node.result_forwarding_items(output, ItemSink::Session(&done, pace)).await;
                        forwarded.unwrap_or_else(|e| Err(Error::ObjectLost(e.to_string())))
                    }
                    Err(e) => Err(e),
                };
                lock(&paces).remove(&output);
                let (event, blobs) = node.done_event(output, result).await;
                node.store.release(output);
                let _ = done.send((output, event, blobs));
                in_flight.fetch_sub(1, Ordering::AcqRel);
            });
        }
    }

    /// Queues a call on an actor of this node: its result is pending under
    /// the call's task's output, with one reference for the caller.
    fn queue_call(
        &self,
        job: &JobState,
        state: &ActorState,
        task: TaskId,
        method: String,
        args: Vec<ArgSpec>,
        generator_backpressure: u32,
    ) -> Result<(), Error> {
        let output = ObjectId::returned_by(task);
        let pinned = self.pin_args(job.id, &args)?;
        // The output may be here already: the call's caller runs on this
        // node too (a task of the job next to the actor it calls through
        // the job's node), and its own pending result has the same id. The
        // call then holds a reference of its own, which it drops once its
        // result is sent, rather than the caller's (the result the call
        // settles it with is the one the caller waits for).
        if self.store.add_ref(job.id, output).is_err() {
            self.store.create_pending(job.id, output);
        }
        self.store.set_item_window(output, generator_backpressure);
        self.deliver(state, ActorCall { task, method, args, output, pinned, generator_backpressure, retries: 0 });
        Ok(())
    }

    /// Hands a call to an actor's mailbox; if the actor is dead, the call
    /// fails at once with the reason.
    pub(crate) fn deliver(&self, state: &ActorState, call: ActorCall) {
        if let Err(call) = state.send(call) {
            let reason = state.dead_reason().unwrap_or_else(|| format!("{} is dead", state.class));
            self.store.complete(call.output, Err(Error::ActorDied(reason)));
            self.unpin(&call.pinned);
        }
    }

    /// The actor `actor` of this node's job `job`, if both exist.
    pub(crate) fn actor_in(&self, job: u32, actor: ActorId) -> Option<Arc<ActorState>> {
        self.job(JobId(job)).ok().and_then(|j| lock(&j.actors).get(&actor).cloned())
    }

    /// A stream to node `node`, listening at `addr` (empty if unknown):
    /// directly, or through the head.
    pub(crate) async fn open_to(
        &self,
        node: &str,
        addr: &str,
    ) -> Result<(quinn::SendStream, quinn::RecvStream), NetError> {
        let stream = |e: quinn::ConnectionError| NetError::Stream(e.to_string());
        match self.link.get() {
            Some(Link::Head(peers)) => {
                let conn = peers.connection(node).ok_or_else(|| NetError::Stream(format!("node {node} is gone")))?;
                conn.open_bi().await.map_err(stream)
            }
            Some(Link::Worker(w)) => {
                // Directly to a worker this one already has a connection
                // to (it sent tasks there) or can make one to, else through
                // the head.
                let direct = if addr.is_empty() { w.connected(node) } else { w.direct(&self.id, node, addr).await };
                if let Some(conn) = direct {
                    return conn.open_bi().await.map_err(stream);
                }
                let (mut send, recv) = w.head().open_bi().await.map_err(stream)?;
                if node != w.head_id() {
                    frame::write(&mut send, &proto::encode(&Request::Forward { to: node.to_string() })?).await?;
                }
                Ok((send, recv))
            }
            None => Err(NetError::Stream("this node is not part of a cluster".into())),
        }
    }

    /// Sends an upcall to the job's node; returns the stream after the
    /// first answer.
    async fn upcall(
        &self,
        dest: &(String, u32),
        upcall: Upcall,
        blobs: Vec<Bytes>,
    ) -> Result<(Event, quinn::SendStream, quinn::RecvStream), Error> {
        let (owner, owner_job) = dest.clone();
        let unreachable = |e: NetError| Error::ActorDied(format!("cannot reach the job's node {owner}: {e}"));
        let (mut send, mut recv) = self.open_to(&owner, "").await.map_err(unreachable)?;
        let request = Request::Upcall(UpcallRequest { job: owner_job, upcall });
        let sent = async {
            write_parts(&mut send, &proto::encode(&request)?, blobs).await?;
            read_event(&mut recv).await
        };
        let event = sent.await.map_err(unreachable)?;
        Ok((event, send, recv))
    }

    /// A call on an actor of job `dest.1` of node `dest.0` (the job's own
    /// node, or the head for a detached actor): through an upcall.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn call_through(
        self: &Arc<Self>,
        job: &Arc<JobState>,
        dest: &(String, u32),
        caller: &Caller,
        seq: u64,
        actor: ActorId,
        method: String,
        args: Vec<ArgSpec>,
        generator_backpressure: u32,
    ) -> Result<ObjectId, Error> {
        let (task, output, pinned) = self.new_output(job, caller, seq, &args)?;
        self.store.set_item_window(output, generator_backpressure);
        let fail = |e: Error| {
            self.store.complete(output, Err(e));
            self.unpin(&pinned);
            Ok(output)
        };
        let (args, objects, blobs) = match self.wire_parts(&args, HeldObjects::Fetched).await {
            Ok(p) => p,
            Err(e) => return fail(e),
        };
        let (hi, lo) = actor.halves();
        let (task_hi, task_lo) = task.halves();
        let call = WireCall { task_hi, task_lo, method, args, objects, generator_backpressure };
        let (mut send, mut recv) = match self.upcall(dest, Upcall::Call { hi, lo, call }, blobs).await {
            Ok((event, send, recv)) => match answer(event, accepted) {
                Ok(()) => (send, recv),
                Err(e) => return fail(Error::ActorDied(e.to_string())),
            },
            Err(e) => return fail(e),
        };
        let (node, job) = (self.clone(), job.clone());
        tokio::spawn(async move {
            let mut stopped = false;
            let done = loop {
                // A generator method's items come first. The call's own
                // stream carries the caller's word back, as an actor
                // session does for its calls: stop once nobody here reads
                // the items any more (the method's next yield fails there),
                // and pause while the call's window of unread items here is
                // full (the method waits in its yield there). A word that
                // cannot be sent is not an error: the call may have ended
                // there, its answer still on its way here.
                let event = match read_event(&mut recv).await {
                    Ok(Event::Item(item)) => match node.receive_item(&job, item, &mut recv).await {
                        Ok(ItemPut::Unread) if !stopped => {
                            stopped = true;
                            let _ = frame::write(&mut send, &stop(task)).await;
                            continue;
                        }
                        Ok(ItemPut::Ahead) => {
                            if frame::write(&mut send, &pace(task, true)).await.is_ok() {
                                node.store.wait_for_reader(output).await;
                                let _ = frame::write(&mut send, &pace(task, false)).await;
                            }
                            continue;
                        }
                        Ok(_) => continue,
                        Err(e) => break Err(AskError::from(e)),
                    },
                    other => other,
                };
                break event.map_err(AskError::from).and_then(|event| {
                    answer(event, |answer| match answer {
                        Event::TaskDone(done) => Ok(done),
                        other => Err(other.into()),
                    })
                });
            };
            let received = match done {
                Ok(done) => node.receive_result(&job, done, &mut recv).await.map(|_| ()).map_err(AskError::from),
                Err(e) => Err(e),
            };
            if let Err(e) = received {
                node.store.complete(output, Err(Error::ActorDied(format!("the call's answer was lost: {e}"))));
            }
            node.unpin(&pinned);
            let _ = send.finish();
        });
        Ok(output)
    }

    /// Creates an actor of a job running on another node (`owner`: its
    /// node, its id there) for a task of the job running here: through an
    /// upcall, once the arguments' objects are sent. The actor exists there
    /// when this returns, so the task's first call finds it.
    pub(crate) async fn create_through(
        &self,
        job: &JobState,
        owner: &(String, u32),
        task: TaskId,
        class: String,
        args: &[ArgSpec],
        options: &Options,
    ) -> Result<ActorId, Error> {
        let (args, objects, blobs) = self.wire_parts(args, HeldObjects::Fetched).await?;
        let (task_hi, task_lo) = task.halves();
        // By default next to the task that creates it while this node has
        // room, as it was when such an actor lived here (and as Ray places
        // an actor near its owner): the job's node would otherwise be
        // preferred.
        let scheduling = match (&options.scheduling, options.placement) {
            (Scheduling::Default, None) => WireScheduling::NodeAffinity { node: self.id.clone(), soft: true },
            (s, _) => wire_scheduling(s),
        };
        let create = WireCreate {
            task_hi,
            task_lo,
            class,
            name: options.name.clone(),
            resources: pairs(&options.resources),
            memory_limit: options.memory_limit,
            time_limit_ms: options.time_limit.map(|t| t.as_millis() as u64),
            max_concurrency: options.max_concurrency,
            max_restarts: options.max_restarts,
            max_task_retries: options.max_task_retries,
            checkpoint_every: options.checkpoint_every,
            placement: options.placement,
            scheduling,
            env: options.env.clone(),
            args,
            objects,
        };
        let (event, mut send, mut recv) = self.upcall(owner, Upcall::Create(Box::new(create)), blobs).await?;
        let _ = send.finish();
        let handle = answer(event, |answer| match answer {
            Event::Actor { handle, .. } => Ok(handle),
            other => Err(other.into()),
        });
        let handle = handle.map_err(|e| Error::InvalidArgument(e.message("the job's node")))?;
        let id = ActorId::created_by(task);
        self.take_lent_handle(job, id, handle, &mut recv).await;
        Ok(id)
    }

    /// Looks a name up on another node (job `dest.1` there, or 0 for the
    /// head's detached actors): the actor, its class, and where upcalls
    /// about it go.
    pub(crate) async fn named_through(
        &self,
        job: &JobState,
        dest: &(String, u32),
        name: &str,
    ) -> Result<(ActorId, String, (String, u32)), Error> {
        let (event, mut send, mut recv) =
            self.upcall(dest, Upcall::Named { name: name.to_string() }, Vec::new()).await?;
        let _ = send.finish();
        let found = answer(event, |answer| match answer {
            Event::Actor { hi, lo, class, job, handle } => {
                Ok((ActorId::from_halves(hi, lo), class, (dest.0.clone(), job), handle))
            }
            other => Err(other.into()),
        });
        let (id, class, home, handle) = found.map_err(|e| Error::InvalidArgument(e.to_string()))?;
        self.take_lent_handle(job, id, handle, &mut recv).await;
        Ok((id, class, home))
    }

    /// Asks the node running the caller's job (`dest`) which replica of its
    /// application's `deployment` a handle's call made here goes to: the
    /// replica, its class, and where upcalls about it go.
    pub(crate) async fn replica_through(
        &self,
        dest: &(String, u32),
        deployment: &str,
    ) -> Result<(ActorId, String, (String, u32)), Error> {
        let upcall = Upcall::ServeReplica { deployment: deployment.to_string() };
        let (event, mut send, _) = self.upcall(dest, upcall, Vec::new()).await?;
        let _ = send.finish();
        let found = answer(event, |answer| match answer {
            Event::Actor { hi, lo, class, job, .. } => Ok((ActorId::from_halves(hi, lo), class, (dest.0.clone(), job))),
            other => Err(other.into()),
        });
        found.map_err(|e| Error::ActorDied(e.to_string()))
    }

    /// The names of named actors node `dest.0` lists for its job `dest.1`
    /// (with the detached actors it keeps), checked against the bounds.
    pub(crate) async fn names_through(&self, dest: &(String, u32)) -> Result<Vec<String>, Error> {
        let (event, mut send, _) = self.upcall(dest, Upcall::ListNamed, Vec::new()).await?;
        let _ = send.finish();
        let names = answer(event, |answer| match answer {
            Event::Names(names) => Ok(names),
            other => Err(other.into()),
        })
        .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        if names.len() > limits::MAX_NAMES_LISTED || names.iter().any(|n| n.len() > limits::MAX_NAME_LEN) {
            return Err(Error::InvalidArgument(format!(
                "node {} listed {} actor names, more than {} or one longer than {} bytes",
                dest.0,
                names.len(),
                limits::MAX_NAMES_LISTED,
                limits::MAX_NAME_LEN
            )));
        }
        Ok(names)
    }

    /// Kills an actor through the node that keeps it.
    pub(crate) fn kill_through(self: &Arc<Self>, dest: (String, u32), actor: ActorId, no_restart: bool) {
        let node = self.clone();
        let (hi, lo) = actor.halves();
        tokio::spawn(async move {
            if let Err(e) = node.upcall(&dest, Upcall::Kill { hi, lo, no_restart }, Vec::new()).await {
                tracing::warn!("could not kill {actor}: {e}");
            }
        });
    }

    /// Answers an upcall from a task of one of this node's jobs running
    /// elsewhere.
    pub(crate) async fn serve_upcall(
        self: &Arc<Self>,
        req: UpcallRequest,
        send: &mut quinn::SendStream,
        recv: &mut quinn::RecvStream,
    ) -> Result<(), NetError> {
        let refuse = |why: String| proto::encode(&Event::Refused(why));
        if let Upcall::Named { name } = &req.upcall {
            // The job's own names first, then the detached actors kept here
            // (job 0 asks for those only).
            let own = self.job(JobId(req.job)).ok().and_then(|job| {
                let id = lock(&job.named).get(name).copied()?;
                let class = lock(&job.actors).get(&id).map(|a| a.class.clone())?;
                // The task there takes a handle: a copy lent from here.
                let handle = self.lend_handle(&job, id).ok()?;
                Some((id, class, req.job, handle))
            });
            let detached = || self.detached_named(name).map(|(id, class, job)| (id, class, job.0, None));
            let event = match own.or_else(detached) {
                Some((id, class, job, handle)) => {
                    let (hi, lo) = id.halves();
                    Event::Actor { hi, lo, class, job, handle }
                }
                None => Event::Refused(format!("no actor named {name:?}")),
            };
            return frame::write(send, &proto::encode(&event)?).await;
        }
        if let Upcall::ServeReplica { deployment } = &req.upcall {
            let picked = match self.serving.get() {
                Some(serving) => serving.replica_for_elsewhere(JobId(req.job), deployment),
                None => Err(Error::InvalidArgument("the application's node does not serve HTTP".into())),
            };
            let event = match picked {
                Ok((id, class)) => {
                    let (hi, lo) = id.halves();
                    Event::Actor { hi, lo, class, job: req.job, handle: None }
                }
                Err(e) => Event::Refused(e.to_string()),
            };
            return frame::write(send, &proto::encode(&event)?).await;
        }
        if let Upcall::ListNamed = &req.upcall {
            let mut names = self.job(JobId(req.job)).map(|job| job.names()).unwrap_or_default();
            names.extend(self.detached_names());
            names.truncate(limits::MAX_NAMES_LISTED);
            return frame::write(send, &proto::encode(&Event::Names(names))?).await;
        }
        let Ok(job) = self.job(JobId(req.job)) else {
            return frame::write(send, &refuse(format!("job {} has ended", req.job))?).await;
        };
        match req.upcall {
            Upcall::Named { .. } | Upcall::ListNamed | Upcall::ServeReplica { .. } => {
                unreachable!("answered above")
            }
            Upcall::Kill { hi, lo, no_restart } => {
                let id = ActorId::from_halves(hi, lo);
                if let Some(state) = lock(&job.actors).get(&id).cloned() {
                    state.kill("wray::kill", no_restart);
                    if no_restart {
                        self.forget_detached(id);
                    }
                }
                frame::write(send, &proto::encode(&Event::Accepted)?).await
            }
            Upcall::Create(create) => {
                let (args, imported) = self.read_args(&job, &create.args, &create.objects, recv).await?;
                let task = TaskId::from_halves(create.task_hi, create.task_lo);
                let created = create_options(&create)
                    .and_then(|options| self.create_here(&job, task, create.class, args, options))
                    .and_then(|id| {
                        let class = lock(&job.actors).get(&id).map(|a| a.class.clone());
                        let class = class.ok_or_else(|| Error::ActorDied(format!("{id} ended as it started")))?;
                        let handle = self.lend_handle(&job, id)?;
                        let (hi, lo) = id.halves();
                        Ok(Event::Actor { hi, lo, class, job: req.job, handle })
                    });
                self.unpin(&imported);
                let event = match created {
                    Ok(event) => event,
                    Err(Error::InvalidArgument(why)) => Event::Refused(why),
                    Err(e) => Event::Refused(e.to_string()),
                };
                frame::write(send, &proto::encode(&event)?).await
            }
            Upcall::Call { hi, lo, call } => {
                let (args, imported) = self.read_args(&job, &call.args, &call.objects, recv).await?;
                let state = lock(&job.actors).get(&ActorId::from_halves(hi, lo)).cloned();
                let task = TaskId::from_halves(call.task_hi, call.task_lo);
                let queued = match state {
                    None => {
                        Err(Error::ActorDied(format!("{} does not exist in this job", ActorId::from_halves(hi, lo))))
                    }
                    Some(state) => self.queue_call(&job, &state, task, call.method, args, call.generator_backpressure),
                };
                self.unpin(&imported);
                if let Err(e) = queued {
                    return frame::write(send, &refuse(e.to_string())?).await;
                }
                frame::write(send, &proto::encode(&Event::Accepted)?).await?;
                let output = ObjectId::returned_by(task);
                // The caller's word on this call's generator comes back on
                // its stream (`call_through`): `Pace` pauses the forwarder,
                // so that the call's window here fills and the method waits
                // in its yield; `Stop` fails its next yield. Once the
                // caller's half ends or breaks, nothing pauses it any more.
                let (pace_tx, pace_rx) = tokio::sync::watch::channel(false);
                let listen = async {
                    while let Ok(Some(bytes)) = frame::read(recv).await {
                        match proto::decode_actor_msg(&bytes) {
                            Ok(ActorMsg::Pace { task_hi, task_lo, paused })
                                if TaskId::from_halves(task_hi, task_lo) == task =>
                            {
                                pace_tx.send_replace(paused);
                            }
                            Ok(ActorMsg::Stop { task_hi, task_lo })
                                if TaskId::from_halves(task_hi, task_lo) == task =>
                            {
                                self.store.stop_items(job.id, output);
                            }
                            _ => break,
                        }
                    }
                    drop(pace_tx);
                    std::future::pending::<()>().await
                };
                let forwarded = tokio::select! {
                    r = self.result_forwarding_items(output, ItemSink::Call(send, Some(pace_rx))) => r,
                    () = listen => unreachable!("listening never ends"),
                };
                let result = match forwarded {
                    Ok(r) => r,
                    Err(e) => {
                        // The caller is gone: the method stops at its next
                        // yield, as a dropped generator's does.
                        self.store.release(output);
                        return Err(e);
                    }
                };
                let (event, blobs) = self.done_event(output, result).await;
                self.store.release(output);
                write_with(send, &event, blobs).await?;
                let _ = send.finish();
                Ok(())
            }
        }
    }
}

/// The options of an actor created through [`Upcall::Create`], checked as
/// the host checks a guest's (`wray_host`'s `options_from_wit`): the peer
/// is another node of the cluster, but what it sends is still input.
fn create_options(c: &WireCreate) -> Result<Options, Error> {
    let bad = |why: String| Err(Error::InvalidArgument(why));
    let name_ok = |n: &str| !n.is_empty() && n.len() <= limits::MAX_NAME_LEN;
    if !name_ok(&c.class) || c.name.as_deref().is_some_and(|n| !name_ok(n)) {
        return bad(format!("an actor's class and name must be 1 to {} bytes long", limits::MAX_NAME_LEN));
    }
    if c.max_concurrency == 0 || c.memory_limit == Some(0) {
        return bad("max_concurrency and memory_limit must be more than 0".into());
    }
    Options::check_env(&c.env)?;
    let net = |e: NetError| Error::InvalidArgument(e.to_string());
    Ok(Options {
        resources: resources(&c.resources).map_err(net)?,
        memory_limit: c.memory_limit,
        time_limit: c.time_limit_ms.map(Duration::from_millis),
        name: c.name.clone(),
        max_concurrency: c.max_concurrency,
        max_restarts: c.max_restarts,
        max_task_retries: c.max_task_retries,
        placement: c.placement,
        checkpoint_every: c.checkpoint_every,
        scheduling: scheduling(c.scheduling.clone()).map_err(net)?,
        env: c.env.clone(),
        ..Options::default()
    })
}
