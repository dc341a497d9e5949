//! A wray node: the scheduler, the object store and the Wasm host glued
//! together.
//!
//! [`Node`] runs jobs: it instantiates a job's driver, and serves the
//! driver's (and every task's) calls to the `wray:runtime` interfaces by
//! implementing [`wray_host::Services`]. Tasks wait for their arguments,
//! then for resources from the [`wray_sched::Scheduler`], then run in a fresh
//! instance; their results land in the [`wray_store::ObjectStore`]. Actors
//! are long-lived instances fed by a mailbox.
//!
//! A node runs in-process for `wray run` and embedders; [`Node::serve`] is
//! the head role, answering clients and workers over `wray-net` (QUIC with
//! mutual TLS), tracking membership by heartbeats and placing jobs, tasks,
//! actors and placement-group bundles on nodes; [`Node::serve_head`] is the
//! worker role; [`JobTable`] keeps the head's records (detached jobs,
//! components, detached actors). Tasks and actors that cannot run on their
//! node, or find it busy, go to another (`remote`, `remote_actor`), with
//! the objects they need; their results come back to their job's node.

#![deny(missing_docs)]

mod cluster;
mod local;
mod persist;
pub mod state;
mod stuck;

/// The size of the future `f` returns, from its type alone: no node, job
/// or stream needed (the futures a waiting task or stream holds are held
/// small by tests in `local::task` and `cluster::head_tests`).
#[cfg(test)]
fn future_size<A, B, C, D, E, F: std::future::Future>(_: impl Fn(A, B, C, D, E) -> F) -> usize {
    std::mem::size_of::<F>()
}

pub use cluster::head::{DEFAULT_NODE_TIMEOUT, HEARTBEAT};
pub use local::job::{JobConfig, JobError};
pub use persist::JobTable;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;
use wray_core::{JobId, ObjectId, Resources, TaskId};
use wray_host::{ComponentCache, Engine, EngineConfig, JobComponent, LoadError};
use wray_sched::Scheduler;
use wray_store::{ObjectStore, SledSpill, StoreStats};

/// The hasher of the maps every task passes through (keyed by task or
/// object id). Ids are already mixed (`wray_core::ids`), so SipHash's
/// strength buys nothing on these paths; foldhash is seeded per map.
pub(crate) type ById = foldhash::fast::RandomState;

/// How a node is set up.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// CPU slots (tasks running at once with the default 1 CPU each).
    pub cpus: f64,
    /// Custom resources, e.g. `{"accelerator": 2}`.
    pub resources: Resources,
    /// Bytes of objects kept in memory before spilling to disk.
    pub object_store_memory: usize,
    /// Where spilled objects go (a sled database is created inside).
    pub spill_dir: PathBuf,
    /// Where compiled components are cached (none: no disk cache).
    pub cache_dir: Option<PathBuf>,
    /// Instances that may exist at once.
    pub max_instances: u32,
    /// The `GPU` resource offered (none: one per GPU found).
    pub gpus: Option<f64>,
    /// Which GPUs to look for at start (none: no GPU, every tensor on the
    /// CPU path).
    pub devices: Option<wray_gpu::DeviceConfig>,
    /// Host directories granted to every job and task that reaches this
    /// node over the network, `(host path, guest path)`: the node's shared
    /// data (a volume every node mounts, as Ray Data reads a shared file
    /// system). A `--dir` of `wray run` cannot cross the network.
    pub shared_dirs: Vec<(PathBuf, String)>,
    /// The file the node's process logs to (`wray start` writes
    /// `node.log` in its data directory), served to `wray logs --node` and
    /// the dashboard.
    pub log_file: Option<PathBuf>,
}

impl NodeConfig {
    /// Defaults: one CPU slot per core, 1 GiB of object memory, spill and
    /// cache under `dir`.
    pub fn new(dir: PathBuf) -> NodeConfig {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        NodeConfig {
            cpus: cores as f64,
            resources: Resources::new(),
            object_store_memory: 1 << 30,
            spill_dir: dir.join("spill"),
            cache_dir: Some(dir.join("components")),
            max_instances: 1000,
            gpus: None,
            devices: Some(wray_gpu::DeviceConfig::from_env()),
            shared_dirs: Vec::new(),
            log_file: None,
        }
    }
}

/// A node. Cheap to clone (shared).
#[derive(Clone)]
pub struct Node {
    inner: Arc<NodeInner>,
}

pub(crate) struct NodeInner {
    /// The GPUs found at start; tasks holding `GPU` get their tensors there.
    devices: wray_gpu::Devices,
    /// Itself, for handing `Arc`s to spawned tasks from `&self` methods.
    me: std::sync::Weak<NodeInner>,
    id: String,
    cache: ComponentCache,
    store: ObjectStore,
    sched: Mutex<Scheduler<TaskId>>,
    /// Tasks waiting for their resource grant, and whether they may be
    /// moved to another node instead.
    grants: Mutex<HashMap<TaskId, (oneshot::Sender<Grant>, bool), ById>>,
    /// Numbers tasks as they are submitted here (and actors as they ask
    /// for room): their place in the scheduler's queue ([`NodeInner::ticket`]).
    tickets: AtomicU64,
    jobs: Mutex<HashMap<JobId, Arc<local::job::JobState>>>,
    /// Jobs that ended while some of their tasks were still finishing
    /// (cancelled by the end, or done but not yet counted — a task's result
    /// reaches the job a moment before the task records its end). Their
    /// unfinished tasks are listed and counted until they end, so a job's
    /// summary counts every task it ran; each entry is dropped once its
    /// tasks are gone ([`NodeInner::listed_jobs`]).
    ended_jobs: Mutex<Vec<std::sync::Weak<local::job::JobState>>>,
    next_job: AtomicU32,
    /// Components this node has loaded, by content hash: what lets a peer
    /// name a component by hash instead of sending it again.
    components: Mutex<HashMap<String, JobComponent>>,
    /// Held while a component is fetched and compiled for a peer's request
    /// (see [`NodeInner::load_component_async`]).
    loading: tokio::sync::Mutex<()>,
    /// Deployed `wasi:http` components this worker has compiled for the
    /// head's proxy, by hash and grants (at most
    /// [`cluster::http_calls::MAX_HTTP_COMPONENTS`]).
    http_components: Mutex<HashMap<String, Arc<wray_host::HttpComponent>>>,
    /// Random per node: makes its job's task ids unique in the cluster.
    salt: u64,
    /// The rest of the cluster, once this node serves as head or joined one.
    link: std::sync::OnceLock<cluster::link::Link>,
    /// Directories granted to jobs that arrive over the network.
    shared_dirs: Vec<(PathBuf, String)>,
    /// Where the node's process logs (`NodeConfig::log_file`).
    log_file: Option<PathBuf>,
    /// Stand-ins for jobs of other nodes whose tasks run here, by owner job.
    remote_jobs: Mutex<HashMap<String, cluster::remote_task::RemoteJob>>,
    /// Placement groups this node created (the head, or a lone node).
    groups: Mutex<HashMap<u64, cluster::groups::GroupRecord>>,
    /// Placement-group bundles reserved on this node.
    bundles: Mutex<HashMap<(u64, u32), Resources>>,
    next_group: std::sync::atomic::AtomicU64,
    /// Detached actors kept here (the head's, or a lone node's).
    detached: Mutex<local::detached_actors::Detached>,
    /// What serves applications over HTTP, if this node was given one
    /// (`wray serve run`, a head with a serve port).
    serving: std::sync::OnceLock<Arc<dyn wray_host::Serving>>,
    /// The tasks this node's jobs submitted (`state.rs`).
    task_log: Mutex<state::TaskLog>,
    /// Submitted tasks not started yet: a caller that blocks on one runs
    /// it itself (`local/task.rs`, `claim`).
    unstarted: Mutex<local::task::Unstarted>,
    /// Progress documents jobs published (`state.rs`).
    published: Mutex<state::Published>,
    /// Where members of collective groups on this node meet
    /// (`local/meeting.rs`).
    meetings: local::meeting::Meetings,
    /// Placements received from the head, for its accounting (`Arrivals`).
    arrivals: Mutex<Arrivals>,
    /// This node's jobs' results held on other nodes, each with what tells
    /// its keeper a reader could not fetch it (`cluster/held.rs`).
    keepers: Mutex<HashMap<ObjectId, Arc<tokio::sync::Notify>>>,
    /// One fetch at a time per object held elsewhere (`cluster/held.rs`).
    fetching: Mutex<HashMap<ObjectId, Arc<tokio::sync::Mutex<()>>>>,
    /// When the node started.
    started: std::time::Instant,
    /// A task ends the stand-ins that stayed idle (`cluster/remote_task.rs`,
    /// `STAND_IN_LINGER`); set while it runs, under `remote_jobs`' lock.
    sweeping_stand_ins: std::sync::atomic::AtomicBool,
    /// Set while a task watches for demands stuck behind actors
    /// (`stuck.rs`).
    watching_stuck: std::sync::atomic::AtomicBool,
    /// Where a freed actor handle object sends its actor to be ended
    /// (`local/actor_handles.rs`); set with the first handle.
    collector: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<(JobId, wray_core::ActorId)>>,
    /// Copies of actors' handle objects lent to other nodes and not yet
    /// given back (`cluster/lent_handles.rs`).
    lends: Arc<cluster::lent_handles::Lends>,
    /// Where copies of handle objects this node borrowed go to be given
    /// back; set with the first.
    returner: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<cluster::lent_handles::Return>>,
}

/// Tasks and actors the head placed on this node, as the head needs to hear
/// of them: the numbers of those that arrived since the last heartbeat, and
/// the demands of those not yet holding their resources. A heartbeat reports
/// free resources less those demands, with the numbers, so that the head
/// knows which of its placements the figure includes — a placement is in
/// the figure from its arrival on, either as pending here or as held in the
/// scheduler.
#[derive(Default)]
struct Arrivals {
    numbers: Vec<u64>,
    pending: HashMap<TaskId, Resources>,
}

/// Placement numbers kept for heartbeats not yet sent, at most (four
/// heartbeats' worth): past it a node whose heartbeats stalled stops
/// recording, and the head's time limit on unacknowledged charges covers the
/// rest.
const MAX_UNREPORTED_ARRIVALS: usize = 4 * wray_net::proto::MAX_ACKS;

/// A placement on its way into the scheduler; dropping it (the request
/// ended, however) takes its demand out of the pending ones if
/// [`NodeInner::arrived`] did not already.
pub(crate) struct Arrival {
    node: Arc<NodeInner>,
    task: TaskId,
}

impl Drop for Arrival {
    fn drop(&mut self) {
        self.node.arrived(self.task);
    }
}

/// Objects from this size on are stored with [`NodeInner::landing`]'s care.
const LARGE_OBJECT: usize = 16 << 20;

/// Components remembered by hash, at most; past it the memory is dropped
/// (the compiled artifacts stay in the disk cache, so a re-send is cheap).
const MAX_REMEMBERED_COMPONENTS: usize = 256;

/// A new node's id: `node-`, its pid in hex, and 48 random bits.
///
/// The pid tells which process a node is on its machine (`ps`, `kill`);
/// alone it does not tell nodes apart, because pids repeat across machines
/// and containers: every container's first process is pid 1, so a cluster
/// of Kubernetes pods was a head and workers all named `node-00000001`,
/// which the head took for itself. The random part comes from the
/// standard library's per-process random hash keys (seeded by the OS, and
/// different for each `RandomState` made in one process), mixed with the
/// clock: the chance that two of 1,000 nodes sharing a pid draw the same
/// 48 bits is about 2 in a billion. The head refuses a node whose id is
/// taken anyway (`Request::Join`).
fn new_node_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    h.write_u128(now.as_nanos());
    format!("node-{:x}-{:012x}", std::process::id(), h.finish() & 0xffff_ffff_ffff)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its data consistent, so a panic elsewhere
    // does not make the state unusable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Node {
    /// Starts a node: engine, component cache, object store.
    pub fn new(config: NodeConfig) -> anyhow::Result<Node> {
        if !(config.cpus.is_finite() && config.cpus >= 0.0) {
            anyhow::bail!("cpus must be a non-negative number, got {}", config.cpus);
        }
        if let Some(g) = config.gpus
            && !(g.is_finite() && g >= 0.0)
        {
            anyhow::bail!("gpus must be a non-negative number, got {g}");
        }
        // Opening a GPU takes tens to hundreds of milliseconds (driver
        // start-up): it overlaps with the engine and the spill store. A node
        // told to offer no GPU does not look: loading the Vulkan drivers
        // costs memory for the process's life (lavapipe alone maps 44 MiB
        // of LLVM).
        let discovery = config
            .devices
            .clone()
            .filter(|_| config.gpus != Some(0.0))
            .map(|c| std::thread::spawn(move || wray_gpu::Devices::discover(&c)));
        let engine = Engine::new(&EngineConfig { max_instances: config.max_instances })?;
        let cache = ComponentCache::new(engine, config.cache_dir.clone())?;
        std::fs::create_dir_all(&config.spill_dir)?;
        let spill = SledSpill::open(&config.spill_dir)
            .map_err(|e| anyhow::anyhow!("cannot open the spill store in {}: {e}", config.spill_dir.display()))?;
        let devices = match discovery.map(|d| d.join()) {
            Some(Ok(d)) => d,
            Some(Err(_)) => {
                tracing::warn!("looking for GPUs failed (the driver panicked): tensors run on the CPU path");
                wray_gpu::Devices::cpu_only()
            }
            None => wray_gpu::Devices::cpu_only(),
        };
        let mut total = config.resources.clone();
        total.set(wray_core::CPU, config.cpus);
        // An explicit amount wins (as `ray start --num-gpus` does); else one
        // per GPU found, unless the custom resources name GPUs already.
        match config.gpus {
            Some(g) => total.set(wray_core::GPU, g),
            None if total.get(wray_core::GPU) == 0.0 && devices.usable() > 0 => {
                total.set(wray_core::GPU, devices.usable() as f64)
            }
            None => {}
        }
        Ok(Node {
            inner: Arc::new_cyclic(|me| NodeInner {
                me: me.clone(),
                id: new_node_id(),
                cache,
                store: ObjectStore::new(config.object_store_memory, Box::new(spill)),
                sched: Mutex::new(Scheduler::new(total)),
                grants: Mutex::new(HashMap::default()),
                tickets: AtomicU64::new(0),
                jobs: Mutex::new(HashMap::new()),
                ended_jobs: Mutex::new(Vec::new()),
                next_job: AtomicU32::new(1),
                components: Mutex::new(HashMap::new()),
                loading: tokio::sync::Mutex::new(()),
                http_components: Mutex::new(HashMap::new()),
                salt: {
                    use std::hash::{BuildHasher, Hasher};
                    std::collections::hash_map::RandomState::new().build_hasher().finish()
                },
                link: std::sync::OnceLock::new(),
                shared_dirs: config.shared_dirs.clone(),
                log_file: config.log_file.clone(),
                remote_jobs: Mutex::new(HashMap::new()),
                sweeping_stand_ins: std::sync::atomic::AtomicBool::new(false),
                watching_stuck: std::sync::atomic::AtomicBool::new(false),
                collector: std::sync::OnceLock::new(),
                lends: Arc::default(),
                returner: std::sync::OnceLock::new(),
                keepers: Mutex::new(HashMap::new()),
                fetching: Mutex::new(HashMap::new()),
                groups: Mutex::new(HashMap::new()),
                bundles: Mutex::new(HashMap::new()),
                next_group: std::sync::atomic::AtomicU64::new(1),
                detached: Mutex::new(local::detached_actors::Detached::default()),
                serving: std::sync::OnceLock::new(),
                task_log: Mutex::new(state::TaskLog::default()),
                unstarted: Mutex::new(local::task::Unstarted::default()),
                published: Mutex::new(state::Published::default()),
                meetings: local::meeting::Meetings::default(),
                arrivals: Mutex::new(Arrivals::default()),
                started: std::time::Instant::now(),
                devices,
            }),
        })
    }

    /// Gives the node what serves applications over HTTP; jobs that call
    /// `serve.run` hand their application to it. Set once: false if one was
    /// set already.
    pub fn set_serving(&self, serving: Arc<dyn wray_host::Serving>) -> bool {
        self.inner.serving.set(serving).is_ok()
    }

    /// The node's wasmtime engine (for components served beside jobs, such
    /// as `wasi:http` proxies).
    pub fn engine(&self) -> &wray_host::Engine {
        self.inner.cache.engine()
    }

    /// Validates and compiles a job file (cached by content hash).
    pub fn load_file(&self, path: &std::path::Path) -> Result<JobComponent, LoadError> {
        self.inner.cache.load_file(path)
    }

    /// Validates and compiles a job from bytes; `name` labels errors. The
    /// node remembers it by hash ([`Node::component`]).
    pub fn load(&self, name: &str, bytes: &[u8]) -> Result<JobComponent, LoadError> {
        self.inner.load_component(name, bytes)
    }

    /// A component this node has loaded, by content hash.
    pub fn component(&self, hash: &str) -> Option<JobComponent> {
        self.inner.component(hash)
    }

    /// Object store counters.
    pub fn store_stats(&self) -> StoreStats {
        self.inner.store.stats()
    }

    /// The node's total resources.
    pub fn total_resources(&self) -> Resources {
        lock(&self.inner.sched).total().clone()
    }

    /// What the node offers a cluster: its resources and its object
    /// store's memory (`object_store_memory`), as a worker joins with them.
    pub fn offered_resources(&self) -> Resources {
        self.inner.total_with_store()
    }

    /// Resources not held right now.
    pub fn available_resources(&self) -> Resources {
        lock(&self.inner.sched).available()
    }

    /// The GPUs this node found, and why there are none if so.
    pub fn devices(&self) -> &wray_gpu::Devices {
        &self.inner.devices
    }

    /// This node's id.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// Jobs running now.
    pub fn running_jobs(&self) -> usize {
        // Not the stand-ins of other nodes' jobs kept after their last
        // task (`STAND_IN_LINGER`): nothing of those runs.
        let idle = self.inner.idle_stand_ins();
        lock(&self.inner.jobs).len().saturating_sub(idle)
    }

    /// Stand-ins of other nodes' jobs kept after their last task here
    /// (`STAND_IN_LINGER`), which [`Node::running_jobs`] leaves out.
    pub fn idle_jobs(&self) -> usize {
        self.inner.idle_stand_ins()
    }

    /// Tasks queued or running, and live actors, across all jobs.
    pub fn task_and_actor_counts(&self) -> (usize, usize) {
        let jobs: Vec<_> = lock(&self.inner.jobs).values().cloned().collect();
        jobs.iter().fold((0, 0), |(t, a), j| (t + lock(&j.tasks).len(), a + lock(&j.actors).len()))
    }
}

impl NodeInner {
    fn load_component(&self, name: &str, bytes: &[u8]) -> Result<JobComponent, LoadError> {
        let component = self.cache.load(name, bytes)?;
        let mut known = lock(&self.components);
        if known.len() >= MAX_REMEMBERED_COMPONENTS {
            known.clear();
        }
        known.insert(component.hash().to_string(), component.clone());
        Ok(component)
    }

    /// [`NodeInner::load_component`] for async callers: `bytes()` (which may
    /// fetch them from the head) and the compile run one at a time per node,
    /// on a blocking thread. Compiling takes seconds and every core; done on
    /// the async threads it stalled this node's heartbeats long enough to be
    /// declared dead under load, and tasks arriving together each compiled
    /// the same component. A caller that names the component by `known`
    /// hash finds it remembered if someone loaded it while it waited (bytes
    /// a peer sent are always loaded: they may not be what it says).
    pub(crate) async fn load_component_async<F>(
        self: &Arc<Self>,
        name: &str,
        known: Option<&str>,
        bytes: F,
    ) -> Result<JobComponent, String>
    where
        F: std::future::Future<Output = Result<Vec<u8>, String>>,
    {
        let _one_at_a_time = self.loading.lock().await;
        if let Some(c) = known.and_then(|hash| self.component(hash)) {
            return Ok(c);
        }
        let bytes = bytes.await?;
        let (node, label) = (self.clone(), name.to_string());
        tokio::task::spawn_blocking(move || node.load_component(&label, &bytes).map_err(|e| e.to_string()))
            .await
            .unwrap_or_else(|e| Err(format!("compiling {name} failed: {e}")))
    }

    fn component(&self, hash: &str) -> Option<JobComponent> {
        lock(&self.components).get(hash).cloned()
    }

    pub(crate) fn arc(&self) -> Result<Arc<NodeInner>, wray_core::Error> {
        self.me.upgrade().ok_or_else(|| wray_core::Error::InvalidArgument("the node is shutting down".into()))
    }

    /// The next number in this node's submission order. A task takes its
    /// number when it is submitted and queues for resources at that place
    /// (`acquire`): a burst's tasks first run on whichever tokio worker
    /// takes them, in no set order, and queued in that order, the newest
    /// of a burst could run before the oldest (a `wait` for the first
    /// waited for the last).
    pub(crate) fn ticket(&self) -> u64 {
        self.tickets.fetch_add(1, Ordering::Relaxed)
    }

    /// Waits until the scheduler grants `demand` to `task`, queued at its
    /// `ticket`'s place; `None` if the task was taken out of the queue to
    /// run on another node (only if `movable`). Cancellation-safe: if the
    /// future is dropped before the grant, the task is dequeued (or a grant
    /// that raced in is given back).
    async fn acquire(
        self: &Arc<Self>,
        task: TaskId,
        demand: Resources,
        movable: bool,
        ticket: u64,
    ) -> Option<Resources> {
        let (tx, rx) = oneshot::channel();
        lock(&self.grants).insert(task, (tx, movable));
        lock(&self.sched).enqueue_at(task, demand, ticket);
        self.dispatch();
        self.watch_stuck();
        let mut guard = AcquireGuard { node: self, task, armed: true };
        let grant = rx.await.expect("grant senders are only dropped after sending");
        guard.armed = false;
        match grant {
            Grant::Held(held) => Some(held),
            Grant::Move => None,
        }
    }

    /// Hands queued movable tasks to other nodes with room (`rooms`: what
    /// each has free, as last heard): spillback for tasks that found this
    /// node busy and queued here.
    pub(crate) fn rebalance(&self, mut rooms: Vec<Resources>) {
        if lock(&self.sched).queued() == 0 || rooms.is_empty() {
            return;
        }
        let mut grants = lock(&self.grants);
        let stolen = lock(&self.sched).steal(&mut rooms, |task| grants.get(task).is_some_and(|(_, movable)| *movable));
        for (task, _) in stolen {
            if let Some((tx, _)) = grants.remove(&task) {
                let _ = tx.send(Grant::Move);
            }
        }
    }

    /// Hands out whatever the scheduler can grant now. A grant whose task
    /// stopped waiting (cancelled) is given back and scheduling goes on.
    fn dispatch(&self) {
        loop {
            let granted = lock(&self.sched).schedule();
            if granted.is_empty() {
                return;
            }
            let mut given_back = false;
            for (task, held) in granted {
                let tx = lock(&self.grants).remove(&task);
                let undelivered = match tx {
                    Some((tx, _)) => tx.send(Grant::Held(held)).err().map(|g| match g {
                        Grant::Held(r) => r,
                        Grant::Move => unreachable!("sent Held"),
                    }),
                    None => Some(held),
                };
                if let Some(held) = undelivered {
                    lock(&self.sched).release(&held);
                    given_back = true;
                }
            }
            if !given_back {
                return;
            }
        }
    }

    /// Runs a store operation that lands an object of `size` bytes. A large
    /// one may push others out to disk, synchronously; on a multi-threaded
    /// runtime that happens off the async workers' hands, so that heartbeats,
    /// QUIC and other tasks keep going meanwhile.
    pub(crate) fn landing<R>(&self, size: usize, f: impl FnOnce() -> R) -> R {
        use tokio::runtime::{Handle, RuntimeFlavor};
        // The size first: asking for the runtime's handle clones it, an
        // atomic on a count every worker shares, for every result and item.
        let multi = || Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
        if size >= LARGE_OBJECT && multi() { tokio::task::block_in_place(f) } else { f() }
    }

    /// A task or actor the head placed here (as its `placement`-th on this
    /// node; 0 if unnumbered) arrived, asking for `demand`.
    pub(crate) fn arriving(self: &Arc<Self>, task: TaskId, demand: &Resources, placement: u64) -> Arrival {
        let mut a = lock(&self.arrivals);
        if placement != 0 && a.numbers.len() < MAX_UNREPORTED_ARRIVALS {
            a.numbers.push(placement);
        }
        a.pending.insert(task, demand.clone());
        Arrival { node: self.clone(), task }
    }

    /// A placed task or actor holds its resources now (or its request
    /// ended): the scheduler's figures include it.
    pub(crate) fn arrived(&self, task: TaskId) {
        lock(&self.arrivals).pending.remove(&task);
    }

    /// What a heartbeat says: free resources less the demands of placements
    /// still arriving, and the numbers of the placements that arrived since
    /// the last one (taken: each is reported once). The arrivals are read
    /// first: a placement that moves into the scheduler in between is then
    /// subtracted twice (for one heartbeat), never missed.
    pub(crate) fn measure(&self) -> (Resources, Vec<u64>) {
        let (numbers, arriving) = {
            let mut a = lock(&self.arrivals);
            let mut sum = Resources::new();
            for d in a.pending.values() {
                sum.add(d);
            }
            let take = a.numbers.len().min(wray_net::proto::MAX_ACKS);
            (a.numbers.drain(..take).collect(), sum)
        };
        let mut free = self.free_resources();
        free.subtract(&arriving);
        (free, numbers)
    }

    /// Takes `demand` now if it is free and nobody waits.
    fn try_acquire_now(self: &Arc<Self>, demand: &Resources) -> Option<Held> {
        lock(&self.sched).try_take(demand).then(|| Held::new(self.clone(), demand.clone()))
    }

    fn release(&self, held: &Resources) {
        lock(&self.sched).release(held);
        self.dispatch();
    }
}

/// What a queued task is told.
enum Grant {
    /// Run: these resources are yours.
    Held(Resources),
    /// Leave: another node has room.
    Move,
}

/// Dequeues a task whose acquire future was dropped before its grant.
struct AcquireGuard<'a> {
    node: &'a Arc<NodeInner>,
    task: TaskId,
    armed: bool,
}

impl Drop for AcquireGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let removed = lock(&self.node.grants).remove(&self.task).is_some();
            if removed {
                lock(&self.node.sched).dequeue(&self.task);
            }
        }
    }
}

/// Releases what a task or actor holds when dropped.
pub(crate) struct Held {
    node: Arc<NodeInner>,
    pub(crate) resources: Resources,
    /// Held by an actor: counted as lasting ([`Scheduler::hold_lasting`]).
    lasting: bool,
}

impl Held {
    pub(crate) fn new(node: Arc<NodeInner>, resources: Resources) -> Held {
        Held { node, resources, lasting: false }
    }

    /// Marks these resources as an actor's: held until it is ended, which
    /// is what tells a demand stuck behind actors (`stuck.rs`) from one
    /// that waits for tasks to finish.
    pub(crate) fn for_actor(mut self) -> Held {
        if !self.lasting {
            lock(&self.node.sched).hold_lasting(&self.resources);
            self.lasting = true;
        }
        self
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.lasting {
            lock(&self.node.sched).end_lasting(&self.resources);
        }
        self.node.release(&self.resources);
    }
}
