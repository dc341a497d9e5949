//! The head role: serve clients over QUIC with mutual TLS.
//!
//! Each connection carries requests on bidirectional streams (one request
//! per stream). A connection whose handshake fails never reaches this code
//! (wrong token, no certificate); a peer that sends a malformed or oversized
//! frame loses its own connection and nothing else.

use crate::cluster::link::Link;
use crate::cluster::wire::{ask, resources};
use crate::persist::{self, JobTable};
use crate::{Node, NodeInner, lock};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wray_core::Resources;
use wray_net::proto::{self, Event, JobRequest, NodeReport, Request, StatusReport};
use wray_net::{NetError, frame};

/// QUIC application error codes a head closes connections with.
pub(super) mod close {
    /// A frame was malformed or too large.
    pub const PROTOCOL: u32 = 1;
    /// The node missed its heartbeats and is considered dead.
    pub const DEAD: u32 = 2;
}

/// Dead workers kept in the list `wray status` shows.
pub(super) const MAX_DEAD_WORKERS: usize = 64;

/// QUIC send priority of membership streams (others have 0).
pub(super) const MEMBERSHIP_PRIORITY: i32 = 10;

/// How long a demand that no node the head knows can meet waits for one to
/// join before it is refused as infeasible. A restarted head knows no
/// worker until each joins again (within half a second), a killed worker's
/// replacement needs a moment, and a new cluster's workers often start with
/// its head: a job meeting one of those moments must not see its task or
/// actor fail for a node about to be there. A demand nothing will ever meet
/// fails this much later (Ray keeps such work pending for good).
pub(crate) const JOIN_GRACE: Duration = Duration::from_secs(3);

/// How long such a demand waits instead when a node that met it has died
/// (and is still remembered): its replacement — a restarted worker, a
/// supervisor's new process — is likely, and on a loaded machine takes
/// longer than `JOIN_GRACE` to start and join (the chaos soak's seed
/// 1796300659321244508 lost an actor so while both `spot` workers were
/// being replaced). A demand no node ever met keeps the short grace.
pub(crate) const REJOIN_GRACE: Duration = Duration::from_secs(30);

/// How often a worker tells the head it is alive and what it has free.
pub const HEARTBEAT: Duration = Duration::from_millis(200);

/// How long the head waits for a worker's heartbeat before it declares the
/// worker dead (its tasks are then retried elsewhere), unless configured.
pub const DEFAULT_NODE_TIMEOUT: Duration = Duration::from_secs(3);

/// A worker node that joined this head.
pub(crate) struct Worker {
    pub(crate) id: String,
    pub(crate) conn: quinn::Connection,
    /// Where other workers reach it directly (the address its connection
    /// comes from), if it said it listens there.
    pub(crate) listens: Option<String>,
    pub(super) cpus: f64,
    pub(crate) total: Vec<(String, f64)>,
    /// Jobs this head placed on it that are still running.
    pub(super) running: AtomicUsize,
    pub(crate) alive: AtomicBool,
    /// When its last heartbeat arrived ([`Peers::now`]'s clock).
    pub(crate) last_beat: AtomicU64,
}

/// What a serving node shares between its connections.
pub(crate) struct Peers {
    pub(crate) jobs: Arc<JobTable>,
    /// Head only: component bytes by hash (sled, in the data directory).
    pub(super) components: Option<sled::Tree>,
    /// Head only: the workers seen, so that a restarted head remembers them
    /// (`persist/known_nodes.rs`).
    pub(super) known_nodes: Option<sled::Tree>,
    pub(crate) workers: Mutex<Vec<Arc<Worker>>>,
    /// Head only: where it listens, for the node listings.
    pub(super) address: std::sync::OnceLock<String>,
    /// Jobs placed on this node and still running (counted from the moment
    /// of placement, so that jobs arriving together spread out).
    pub(super) local: AtomicUsize,
    /// Whether this node is the head (places tasks) or a worker.
    pub(super) head: bool,
    /// Head only: membership and task placement.
    pub(super) view: Mutex<wray_sched::ClusterView<String>>,
    /// The view's clock starts here.
    pub(super) started: Instant,
    /// Heartbeats received from workers (the metrics export it).
    pub(crate) heartbeats: AtomicU64,
}

impl Peers {
    pub(super) fn new(
        jobs: Arc<JobTable>,
        components: Option<sled::Tree>,
        head: bool,
        node_timeout: Duration,
    ) -> Peers {
        let known_nodes = if head {
            jobs.known_nodes().map_err(|e| tracing::error!("no record of known nodes: {e}")).ok()
        } else {
            None
        };
        Peers {
            jobs,
            components,
            known_nodes,
            workers: Mutex::new(Vec::new()),
            address: std::sync::OnceLock::new(),
            local: AtomicUsize::new(0),
            head,
            view: Mutex::new(wray_sched::ClusterView::new(node_timeout.as_millis() as u64)),
            started: Instant::now(),
            heartbeats: AtomicU64::new(0),
        }
    }

    pub(crate) fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Asks every worker `request` at once, each for at most `timeout`:
    /// each worker (in the order they joined) with its answer, or `None`
    /// when it is dead, silent or the stream failed.
    pub(crate) async fn ask_workers(&self, request: &Request, timeout: Duration) -> Vec<(Arc<Worker>, Option<Event>)> {
        let workers: Vec<_> = lock(&self.workers).clone();
        let mut asks = tokio::task::JoinSet::new();
        for (i, w) in workers.into_iter().enumerate() {
            let request = request.clone();
            asks.spawn(async move {
                let answer = if w.alive.load(Ordering::Relaxed) {
                    tokio::time::timeout(timeout, ask(&w.conn, &request)).await.ok().and_then(Result::ok)
                } else {
                    None
                };
                (i, w, answer)
            });
        }
        let mut answers = asks.join_all().await;
        answers.sort_by_key(|(i, _, _)| *i);
        answers.into_iter().map(|(_, w, answer)| (w, answer)).collect()
    }

    /// Places a task or actor that leaves `from` as its `scheduling` says
    /// (`must_move`: it cannot run on `from` at all; the head's own
    /// resources refreshed first), with the placement's number on its node (what the
    /// request carries; 0 unless placed). A demand no known node can meet
    /// waits up to [`JOIN_GRACE`] for one to join (placed again every
    /// heartbeat), or [`REJOIN_GRACE`] when a node that met it has died.
    pub(crate) async fn place(
        &self,
        head: &NodeInner,
        demand: &Resources,
        from: Option<&String>,
        scheduling: &wray_core::Scheduling,
        must_move: bool,
    ) -> (wray_sched::Placement<String>, u64) {
        let asked = Instant::now();
        loop {
            let (placed, number, grace) = {
                let (free, arrived) = head.measure();
                let mut view = lock(&self.view);
                view.heartbeat(&head.id, free, &arrived, self.now());
                let grace = if view.lost_could_meet(demand) { REJOIN_GRACE } else { JOIN_GRACE };
                let placed = match scheduling {
                    wray_core::Scheduling::NodeAffinity { node, soft } => view.place_on(demand, from, node, *soft),
                    s => view.place(demand, from, wray_sched::Need::of(*s == wray_core::Scheduling::Spread, must_move)),
                };
                let number = match &placed {
                    wray_sched::Placement::Node(id) => view.last_placement(id),
                    _ => 0,
                };
                (placed, number, grace)
            };
            if !matches!(placed, wray_sched::Placement::Infeasible) || asked.elapsed() >= grace {
                return (placed, number);
            }
            tokio::time::sleep(HEARTBEAT).await;
        }
    }

    /// Chooses the nodes of a placement group's bundles.
    pub(crate) fn place_group(
        &self,
        head: &NodeInner,
        bundles: &[Resources],
        strategy: wray_core::Strategy,
    ) -> Result<Vec<String>, String> {
        let (free, arrived) = head.measure();
        let mut view = lock(&self.view);
        view.heartbeat(&head.id, free, &arrived, self.now());
        view.place_group(bundles, strategy)
    }

    /// The first `reserved` bundles of a group are reserved on their nodes
    /// (which now offer them); the charges of the others are given back.
    pub(crate) fn group_reserved(&self, id: u64, nodes: &[String], bundles: &[Resources], reserved: usize) {
        let mut view = lock(&self.view);
        for (i, (node, demand)) in nodes.iter().zip(bundles).enumerate() {
            if i < reserved {
                view.adjust(node, &demand.bundle_offer(id, i as u32), &Resources::new());
            } else {
                view.unplace(node, demand);
            }
        }
    }

    /// A bundle was freed on `node`.
    pub(crate) fn group_released(&self, node: &String, id: u64, index: u32, demand: &Resources) {
        let mut view = lock(&self.view);
        view.adjust(node, &Resources::new(), &demand.bundle_offer(id, index));
        view.unplace(node, demand);
    }

    /// A task placed on `node` ended there.
    pub(crate) fn finished(&self, node: &String, demand: &Resources) {
        lock(&self.view).unplace(node, demand);
    }

    /// Where a live worker listens for other workers, if it does.
    pub(crate) fn direct_address(&self, id: &str) -> Option<String> {
        let workers = lock(&self.workers);
        workers.iter().find(|w| w.id == id && w.alive.load(Ordering::Relaxed)).and_then(|w| w.listens.clone())
    }

    /// The connection to a live worker.
    pub(crate) fn connection(&self, id: &str) -> Option<quinn::Connection> {
        let workers = lock(&self.workers);
        workers.iter().find(|w| w.id == id && w.alive.load(Ordering::Relaxed)).map(|w| w.conn.clone())
    }

    /// A component's bytes from the head's store.
    pub(crate) fn stored_component(&self, hash: &str) -> Result<Vec<u8>, String> {
        let store = self.components.as_ref().ok_or("this node keeps no components")?;
        match store.get(hash.as_bytes()) {
            Ok(Some(bytes)) => Ok(bytes.to_vec()),
            Ok(None) => Err(format!("the head has no component {hash}")),
            Err(e) => Err(format!("reading component {hash}: {e}")),
        }
    }

    /// Marks the live worker `id` dead: nothing more is placed on it, and
    /// its connection is closed so that every stream through it fails now.
    pub(super) fn declare_dead(&self, id: &str, why: &str) {
        self.bury(|w| w.id == id, why);
    }

    /// Marks dead the worker whose connection is `conn`, if it is still
    /// the live one: a node that joined again on a new connection is not
    /// taken for dead when its old one breaks (`Request::Join`).
    pub(super) fn declare_dead_on(&self, conn: &quinn::Connection, why: &str) {
        self.bury(|w| w.conn.stable_id() == conn.stable_id(), why);
    }

    fn bury(&self, which: impl Fn(&Worker) -> bool, why: &str) {
        let dead = {
            let workers = lock(&self.workers);
            workers.iter().find(|w| which(w) && w.alive.swap(false, Ordering::Relaxed)).cloned()
        };
        if let Some(w) = dead {
            tracing::warn!("worker {} is dead: {why}", w.id);
            lock(&self.view).leave(&w.id);
            w.conn.close(close::DEAD.into(), why.as_bytes());
        }
    }

    /// Makes `worker` a member, in place of an earlier entry with its id:
    /// that node joining again (a node id carries 48 random bits, so it is
    /// the same node) on a new connection, before the head saw its old one
    /// break. The old entry goes, and its connection is closed; its
    /// membership ending then finds it gone (`declare_dead_on`). Dead
    /// workers stay listed (status shows them) up to [`MAX_DEAD_WORKERS`],
    /// so that a flapping worker cannot grow the list.
    pub(super) fn enlist(&self, worker: Arc<Worker>) {
        let replaced = {
            let mut workers = lock(&self.workers);
            let replaced = workers.iter().position(|w| w.id == worker.id).map(|i| workers.remove(i));
            let dead = workers.iter().filter(|w| !w.alive.load(Ordering::Relaxed)).count();
            if dead >= MAX_DEAD_WORKERS
                && let Some(i) = workers.iter().position(|w| !w.alive.load(Ordering::Relaxed))
            {
                workers.remove(i);
            }
            workers.push(worker);
            replaced
        };
        if let Some(old) = replaced.filter(|w| w.alive.swap(false, Ordering::Relaxed)) {
            tracing::info!("worker {} joined again: its earlier connection is dropped", old.id);
            old.conn.close(close::DEAD.into(), b"the node joined again");
        }
    }

    /// The live nodes' resources, total and free.
    pub(crate) fn cluster(&self) -> (Resources, Resources) {
        let view = lock(&self.view);
        (view.total(), view.free())
    }

    pub(super) fn worker_on(&self, conn: &quinn::Connection) -> Option<String> {
        let workers = lock(&self.workers);
        workers.iter().find(|w| w.conn.stable_id() == conn.stable_id()).map(|w| w.id.clone())
    }
}

/// Uncounts a placed job (counted by `place`) when it ends.
pub(super) struct Running<'a>(pub(super) &'a AtomicUsize);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Node {
    /// Serves clients on `endpoint` until it is closed. Never returns an
    /// error for one peer's misbehaviour: failed handshakes and bad frames
    /// are logged and only that peer is dropped.
    /// `jobs` records the jobs clients submit detached (`wray job submit`).
    /// A worker silent for `node_timeout` is declared dead.
    pub async fn serve(&self, endpoint: quinn::Endpoint, jobs: Arc<JobTable>, node_timeout: Duration) {
        let components = jobs.components().map_err(|e| tracing::error!("no component store: {e}")).ok();
        let peers = Arc::new(Peers::new(jobs, components, true, node_timeout));
        if let Ok(address) = endpoint.local_addr() {
            let _ = peers.address.set(address.to_string());
        }
        lock(&peers.view).join(self.id().to_string(), self.inner.total_with_store(), 0);
        // The workers of a previous head process on this data directory are
        // lost until they join again (a demand only they meet waits for them).
        if let Some(tree) = &peers.known_nodes {
            let mut view = lock(&peers.view);
            for (id, total) in persist::known_nodes(tree) {
                match resources(&total) {
                    Ok(total) => view.remember(id, total),
                    Err(e) => tracing::warn!("skipping the remembered node {id}: {e}"),
                }
            }
        }
        if self.inner.link.set(Link::Head(peers.clone())).is_err() {
            tracing::error!("this node already serves a cluster");
            return;
        }
        match peers.jobs.detached_actors().and_then(|t| Ok((t, peers.jobs.detached_snapshots()?))) {
            Ok((records, snapshots)) => self.inner.restore_detached(records, snapshots),
            Err(e) => tracing::error!("no record of detached actors: {e}"),
        }
        // Failure detection: workers that stop heartbeating die.
        let watch = Arc::downgrade(&peers);
        let node = self.inner.clone();
        let started = peers.started;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT / 4);
            let mut last = started.elapsed().as_millis() as u64;
            while let Some(peers) = watch.upgrade() {
                tick.tick().await;
                let (free, arrived) = node.measure();
                let now = peers.now();
                let (dead, forgotten, rooms) = {
                    let mut view = lock(&peers.view);
                    view.heartbeat(&node.id, free, &arrived, now);
                    // If this loop itself was held up, heartbeats may be
                    // waiting unread: nobody is judged on that.
                    if now.saturating_sub(last) > HEARTBEAT.as_millis() as u64 {
                        view.pause(now);
                    }
                    last = now;
                    let dead = view.expire(now);
                    let forgotten = view.forget_dead(MAX_DEAD_WORKERS);
                    (dead, forgotten, view.rooms_except(&node.id))
                };
                if let Some(tree) = &peers.known_nodes {
                    for id in forgotten {
                        if let Err(e) = persist::forget_node(tree, &id) {
                            tracing::warn!("could not forget the node {id}: {e}");
                        }
                    }
                }
                node.rebalance(rooms);
                for id in dead {
                    peers.declare_dead(&id, "it missed its heartbeats");
                }
            }
        });
        while let Some(incoming) = endpoint.accept().await {
            let node = self.clone();
            let peers = peers.clone();
            tokio::spawn(async move {
                let remote = incoming.remote_address();
                match incoming.await {
                    Ok(conn) => node.serve_connection(conn, peers).await,
                    // Wrong token, no certificate, garbage datagrams.
                    Err(e) => tracing::warn!("refused connection from {remote}: {e}"),
                }
            });
        }
    }

    /// The head's part in a task that leaves its node: choose a node, then
    /// run it here or relay the stream there, byte for byte, both ways.
    ///
    /// The head holds this future for as long as the task runs, so what
    /// runs once (placing, opening the relay) or on one path only (running
    /// here, a direct placement) is boxed when it runs, and the request
    /// comes boxed (an `async fn` stores each argument twice): 6,448 bytes
    /// before, 856 after.
    pub(super) async fn place_task(
        &self,
        mut task: Box<proto::TaskRequest>,
        mut send: quinn::SendStream,
        mut recv: quinn::RecvStream,
        peers: &Peers,
        conn: &quinn::Connection,
    ) -> Result<(), NetError> {
        let demand = resources(&task.resources)?;
        let from = peers.worker_on(conn);
        let scheduling = crate::cluster::wire::scheduling(task.scheduling.clone())?;
        let (placed, number) =
            Box::pin(peers.place(&self.inner, &demand, from.as_ref(), &scheduling, task.must_move)).await;
        let target = match placed {
            // The task goes nowhere: its handle copies go back to whoever
            // lent them (`lent_handles.rs`).
            wray_sched::Placement::Busy => {
                self.inner.decline(&task.objects);
                return frame::write(&mut send, &proto::encode(&Event::Busy)?).await;
            }
            wray_sched::Placement::Infeasible => {
                self.inner.decline(&task.objects);
                let why = crate::cluster::remote_task::unplaceable_reason(&demand, &scheduling);
                return frame::write(&mut send, &proto::encode(&Event::Refused(why))?).await;
            }
            wray_sched::Placement::Node(id) if id == self.id() => {
                task.placement = number;
                if std::mem::take(&mut task.direct) {
                    frame::write(&mut send, &proto::encode(&Event::Proceed)?).await?;
                }
                if task.actor.is_some() {
                    return Box::pin(self.inner.serve_actor(task, send, recv)).await;
                }
                return Box::pin(self.inner.serve_task(task, &mut send, &mut recv)).await;
            }
            wray_sched::Placement::Node(id) => id,
        };
        if std::mem::take(&mut task.direct) {
            // The sender goes to the node itself when the node listens;
            // otherwise its arguments follow here, to be relayed.
            if let Some(addr) = peers.direct_address(&target) {
                return Box::pin(self.placed_direct(send, recv, peers, target, addr, number, &demand)).await;
            }
            frame::write(&mut send, &proto::encode(&Event::Proceed)?).await?;
        }
        let Some(worker) = peers.connection(&target) else {
            // It died since it was chosen: the submitter retries (lending
            // its handles again).
            self.inner.decline(&task.objects);
            let _ = send.reset(0u32.into());
            return Ok(());
        };
        // The request again, with its placement number for the node to
        // echo (only the message: the arguments' bytes follow it unread).
        let frame = &crate::cluster::remote_task::encode_request(*task, number)?;
        let opened = async {
            let (mut wsend, wrecv) = worker.open_bi().await.map_err(|e| NetError::Stream(e.to_string()))?;
            frame::write(&mut wsend, frame).await?;
            Ok::<_, NetError>((wsend, wrecv))
        };
        let (mut wsend, mut wrecv) = match Box::pin(opened).await {
            Ok(s) => s,
            Err(e) => {
                peers.declare_dead_on(&worker, &e.to_string());
                let _ = send.reset(0u32.into());
                return Ok(());
            }
        };
        // Boxed: each pipe keeps a batch of chunks (2 KiB), which a task
        // placed directly would otherwise hold too.
        let (up, down) =
            Box::pin(async { tokio::join!(frame::pipe(&mut recv, &mut wsend), frame::pipe(&mut wrecv, &mut send)) })
                .await;
        if down.is_err() && worker.close_reason().is_some() {
            peers.declare_dead_on(&worker, "its connection broke");
        }
        let _ = up;
        peers.finished(&target, &demand);
        Ok(())
    }
    /// A task placed on worker `target` goes there from its sender
    /// directly: tell the sender where, then hold the placement until the
    /// sender closes its side (the task ended: the node is credited at
    /// once rather than at its next heartbeat) — or, if the node dies
    /// first, reset the stream, which tells the sender at the moment the
    /// head declares it dead rather than when its own connection to it
    /// times out.
    #[allow(clippy::too_many_arguments)]
    async fn placed_direct(
        &self,
        mut send: quinn::SendStream,
        mut recv: quinn::RecvStream,
        peers: &Peers,
        target: String,
        addr: String,
        number: u64,
        demand: &wray_core::Resources,
    ) -> Result<(), NetError> {
        let placed = Event::Placed { node: target.clone(), addr, number };
        let told = frame::write(&mut send, &proto::encode(&placed)?).await;
        if told.is_ok() {
            let worker = peers.connection(&target);
            let node_died = async {
                if let Some(c) = worker {
                    c.closed().await;
                }
            };
            // The sender writes nothing more: any end of its side is the
            // end of the task (finished, or the sender gone).
            tokio::select! {
                () = crate::cluster::wire::until_ended(&mut recv) => {}
                () = node_died => {
                    let _ = send.reset(0u32.into());
                }
            }
        }
        peers.finished(&target, demand);
        told
    }

    /// Makes sure `job` carries its component's bytes, from the request or
    /// from the head's component store, and keeps new bytes in the store.
    /// False if neither has them (the sender must send them).
    pub(super) fn fill_component(&self, job: &mut JobRequest, peers: &Peers) -> bool {
        let Some(store) = &peers.components else { return true };
        if job.component.is_empty() {
            match store.get(job.component_hash.as_bytes()) {
                Ok(Some(bytes)) => job.component = bytes.to_vec(),
                _ => return false,
            }
        } else if !job.component_hash.is_empty() && store.get(job.component_hash.as_bytes()).ok().flatten().is_none() {
            // Only bytes that really hash to the name are stored under it.
            use sha2::Digest;
            let actual: String = sha2::Sha256::digest(&job.component).iter().map(|b| format!("{b:02x}")).collect();
            if actual == job.component_hash {
                // Flushed at once: a head killed right after must still have
                // the bytes its detached actors are rebuilt from.
                match store.insert(actual.as_bytes(), job.component.as_slice()).and_then(|_| store.flush()) {
                    Ok(_) => tracing::info!("stored component {actual} ({} bytes)", job.component.len()),
                    Err(e) => tracing::warn!("cannot store component {actual}: {e}"),
                }
            }
        }
        true
    }

    /// Where a job's driver goes: this node, or the live worker with the
    /// fewest running jobs per CPU (ties go to the node with more CPUs, then
    /// to this node). Its tasks and actors are placed one by one from there.
    /// The choice is counted at once, under the workers' lock, so that jobs
    /// arriving together see each other and spread out.
    pub(super) fn place(&self, peers: &Peers) -> Option<Arc<Worker>> {
        let workers = lock(&peers.workers);
        let mut best_cpus = self.total_resources().get(wray_core::CPU);
        let mut best_load = peers.local.load(Ordering::Relaxed) as f64 / best_cpus.max(0.25);
        let mut best = None;
        for w in workers.iter().filter(|w| w.alive.load(Ordering::Relaxed)) {
            let load = w.running.load(Ordering::Relaxed) as f64 / w.cpus.max(0.25);
            // Ties go to the bigger node.
            if load < best_load || (load == best_load && w.cpus > best_cpus) {
                (best_load, best_cpus) = (load, w.cpus);
                best = Some(w.clone());
            }
        }
        match &best {
            None => peers.local.fetch_add(1, Ordering::Relaxed),
            Some(w) => w.running.fetch_add(1, Ordering::Relaxed),
        };
        best
    }

    /// Runs a job on a worker: the request goes to the worker unchanged, its
    /// events come back unchanged, and the client closing its side cancels
    /// the job there too.
    /// `Ok(Err(job))` hands the job back when the worker failed before it
    /// answered anything, so that the caller can run it elsewhere.
    pub(super) async fn forward_job(
        &self,
        worker: &Worker,
        job: JobRequest,
        send: &mut quinn::SendStream,
        recv: &mut quinn::RecvStream,
        running: Running<'_>,
    ) -> Result<Result<(), Box<JobRequest>>, NetError> {
        let mut running = Some(running);
        let died = |e: String| Event::Finished {
            code: proto::JOB_LOST,
            message: format!("worker {} failed while running the job: {e}", worker.id),
        };
        // Name the component by hash first; send the bytes only if the
        // worker asks for them.
        let mut request = Request::RunJob(job.clone_without_component());
        let mut full = Some(job);
        let give_back = |full: Option<JobRequest>, request: Request| match (full, request) {
            (Some(job), _) | (None, Request::RunJob(job)) => Ok(Err(Box::new(job))),
            _ => unreachable!("built above as RunJob"),
        };
        let Ok((mut wsend, mut wrecv)) = worker.conn.open_bi().await else { return give_back(full, request) };
        if frame::write(&mut wsend, &proto::encode(&request)?).await.is_err() {
            return give_back(full, request);
        }
        let mut answered = false;
        let mut client_gone = false;
        loop {
            tokio::select! {
                f = frame::read(&mut wrecv) => {
                    let bytes = match f {
                        Ok(Some(b)) => b,
                        _ if !answered => return give_back(full, request),
                        Ok(None) => return frame::write(send, &proto::encode(&died("it closed the stream".into()))?).await.map(Ok),
                        Err(e) => return frame::write(send, &proto::encode(&died(e.to_string()))?).await.map(Ok),
                    };
                    answered = true;
                    // Validated like any frame from the network before it is relayed.
                    let event = proto::decode_event(&bytes)?;
                    if let (Event::NeedComponent { .. }, Some(job)) = (&event, full.take()) {
                        tracing::info!("sending component {} to worker {}", job.component_hash, worker.id);
                        request = Request::RunJob(job);
                        match worker.conn.open_bi().await {
                            Ok((s, r)) => (wsend, wrecv) = (s, r),
                            Err(_) => return give_back(None, request),
                        }
                        if frame::write(&mut wsend, &proto::encode(&request)?).await.is_err() {
                            return give_back(None, request);
                        }
                        continue;
                    }
                    let finished = matches!(event, Event::Finished { .. } | Event::Exited { .. });
                    if finished {
                        running.take();
                    }
                    frame::write(send, &bytes).await?;
                    if finished {
                        let _ = wsend.finish();
                        return Ok(Ok(()));
                    }
                }
                _ = recv.read_to_end(0), if !client_gone => {
                    client_gone = true;
                    // Closing our side tells the worker to cancel.
                    let _ = wsend.reset(0u32.into());
                }
            }
        }
    }

    /// This node's report plus every worker's (asked now; a worker that does
    /// not answer is reported dead).
    pub(super) async fn cluster_report(&self, peers: &Peers) -> StatusReport {
        let mut report = self.status_report();
        if let (Some(me), Some(address)) = (report.nodes.first_mut(), peers.address.get()) {
            me.address = address.clone();
        }
        for (w, answer) in peers.ask_workers(&Request::Status, Duration::from_secs(3)).await {
            // A worker does not know the address others see it at; the head
            // does.
            let address = w.conn.remote_address().to_string();
            match answer {
                Some(Event::Status(s)) => {
                    report.nodes.extend(s.nodes.into_iter().map(|n| NodeReport { address: address.clone(), ..n }))
                }
                _ => report.nodes.push(NodeReport {
                    id: w.id.clone(),
                    address,
                    alive: false,
                    total: w.total.clone(),
                    ..NodeReport::default()
                }),
            }
        }
        report
    }
}
