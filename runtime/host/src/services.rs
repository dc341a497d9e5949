//! The seam between the Wasm host and the node.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use wray_core::{ActorId, Error, JobId, ObjectId, Options, Resources, Strategy, TaskId};

/// An encoded value and the objects nested inside it.
#[derive(Clone, Debug, Default)]
pub struct Value {
    /// The codec's bytes (shared: objects are handed out without copying).
    pub data: bytes::Bytes,
    /// Objects the value refers to.
    pub refs: Vec<ObjectId>,
    /// The references the guest handed over with the value: they keep the
    /// nested objects alive until the node has pinned them (when it stores
    /// the value or starts the task), even if the guest drops its own refs
    /// first.
    pub held: HeldRefs,
}

/// References a guest handed to the host; released when the last clone is
/// dropped.
#[derive(Clone, Default)]
pub struct HeldRefs(pub(crate) Arc<Vec<crate::instance::RefGuard>>);

impl std::fmt::Debug for HeldRefs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HeldRefs({})", self.0.len())
    }
}

/// A task argument as the node receives it.
#[derive(Clone, Debug)]
pub enum ArgSpec {
    /// Passed inline.
    Value(Value),
    /// Resolved by the node before the task runs.
    Object(ObjectId),
}

/// One node of the cluster, as a job's `nodes()` lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeInfo {
    /// Its id.
    pub id: String,
    /// Where it is reached (`IP:port`); empty for an embedded runtime.
    pub address: String,
    /// Whether it answers.
    pub alive: bool,
    /// Whether it is the head (an embedded runtime is its own).
    pub head: bool,
    /// All its resources.
    pub total: Resources,
    /// Its resources not held right now.
    pub available: Resources,
}

/// Who is calling a host function: the running task (or driver, or actor
/// method) of a job.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The job.
    pub job: JobId,
    /// The running task; children derive their ids from it.
    pub task: TaskId,
    /// Set for actor constructors and methods.
    pub actor: Option<ActorId>,
    /// What runs, for messages: `crate::f`, `Class.method` or `main`.
    pub function: Arc<str>,
    /// CPU and resources the task holds while it runs (given back while it
    /// blocks in `get`/`wait`).
    pub holds: Resources,
    /// The environment variables the task or actor set for itself
    /// (`Options::env`): what it submits inherits them, under its own, as
    /// Ray's `runtime_env` is inherited. Empty for most callers (no
    /// allocation).
    pub env: Vec<(String, String)>,
}

/// Members one meeting point may have (a collective group's bound). The
/// host checks it before it allocates one entry per part a guest names;
/// the node checks it again for every share.
pub const MAX_MEETING_MEMBERS: u32 = 1024;

/// A member's share of one round at a meeting point (`meeting.exchange`).
#[derive(Debug)]
pub struct MeetingShare {
    /// How many members meet there.
    pub size: u32,
    /// What the member is doing; every member of a round must say the same.
    pub what: String,
    /// None, one part for every member, or one per member (by rank).
    pub parts: Vec<bytes::Bytes>,
}

/// What [`Services::next_items`] hands a reader of a generator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NextItems {
    /// Items from the index asked for, in the order yielded (at least
    /// one), each with a reference held for the caller and its encoded
    /// value when it is small (`INLINE_ITEM_BYTES`) and in this node's
    /// memory.
    Items(Vec<(ObjectId, Option<bytes::Bytes>)>),
    /// The generator ended before the index asked for; `failed` if it
    /// failed after yielding exactly that many items.
    Ended {
        /// Whether the reader should take the generator's failure now.
        failed: bool,
    },
}

/// A boxed future: the node's async services are called through `dyn`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the `wray:runtime` host functions ask of the node. Every method
/// takes the [`Caller`] so the node can check that ids belong to the caller's
/// job and derive new ids from the caller's task.
pub trait Services: Send + Sync + 'static {
    /// Schedules a remote function. May wait (back-pressure) when the job
    /// has too many unfinished tasks. Returns the result's id, with one
    /// reference held for the caller.
    fn submit<'a>(
        &'a self,
        caller: &'a Caller,
        seq: u64,
        function: String,
        args: Vec<ArgSpec>,
        options: Options,
    ) -> BoxFuture<'a, Result<ObjectId, Error>>;
    /// The objects' encoded values in order if every one is ready on this
    /// node now, or the error one of them settled with; `None` if any must
    /// be waited for or fetched (then [`Services::get`]). Most reads find
    /// their objects ready, and answering them here costs no future.
    fn get_now(&self, ids: &[ObjectId]) -> Option<Result<Vec<bytes::Bytes>, Error>>;
    /// Waits for the objects and returns their encoded values in order
    /// (a caller that expects them ready asks [`Services::get_now`] first).
    fn get<'a>(
        &'a self,
        caller: &'a Caller,
        ids: Vec<ObjectId>,
        timeout: Option<Duration>,
    ) -> BoxFuture<'a, Result<Vec<bytes::Bytes>, Error>>;
    /// Waits until `num_returns` objects are ready or the timeout passes;
    /// returns a readiness mask.
    fn wait<'a>(
        &'a self,
        caller: &'a Caller,
        ids: Vec<ObjectId>,
        num_returns: usize,
        timeout: Option<Duration>,
    ) -> BoxFuture<'a, Result<Vec<bool>, Error>>;
    /// Stores a value as object `id` (derived from the caller), with one
    /// reference held for the caller.
    fn put(&self, caller: &Caller, id: ObjectId, value: Value) -> Result<(), Error>;
    /// Stores `value` as item `index` of the generator task the caller
    /// runs (its result's readers get it before the task ends) under
    /// `ObjectId::item_of(caller.task, index)`. An item the result already
    /// has (a retried generator) is dropped; `Cancelled` when nobody holds
    /// the result any more (the task should stop). `Ok(true)` when the
    /// task's window of unread items is full (its `generator_backpressure`):
    /// it should [`wait_for_reader`](Services::wait_for_reader) before it
    /// goes on.
    fn yield_item(&self, caller: &Caller, index: u32, value: Value) -> Result<bool, Error>;
    /// Waits until the generator task the caller runs may yield again:
    /// its reader took an item, or nobody reads its items any more.
    fn wait_for_reader<'a>(&'a self, caller: &'a Caller) -> BoxFuture<'a, ()>;
    /// Item `index` of the generator task whose result is `generator`,
    /// with one reference held for the caller, once the task yields it;
    /// `None` when it ended with fewer items — or `generator` itself, with
    /// a reference, at the index after the last item of a generator that
    /// failed.
    fn next_item<'a>(
        &'a self,
        caller: &'a Caller,
        generator: ObjectId,
        index: u32,
        timeout: Option<Duration>,
    ) -> BoxFuture<'a, Result<Option<ObjectId>, Error>>;
    /// Items `index`.. of the generator task whose result is `generator`,
    /// as many as it has yielded ahead of the reader up to `max` (capped
    /// at `MAX_ITEMS_PER_READ`; one if it has a window), once it yields
    /// item `index` — or how it ended before that index.
    fn next_items<'a>(
        &'a self,
        caller: &'a Caller,
        generator: ObjectId,
        index: u32,
        max: u32,
        timeout: Option<Duration>,
    ) -> BoxFuture<'a, Result<NextItems, Error>>;
    /// Adds a reference to `id`, which must belong to the caller's job.
    fn add_ref(&self, job: JobId, id: ObjectId) -> Result<(), Error>;
    /// Drops a reference taken by `submit`, `put`, `call_actor` or `add_ref`.
    fn release(&self, job: JobId, id: ObjectId);
    /// Drops one reference to each of `ids` (each with its job), as
    /// `release` does one by one — in one go where the node can (one hold
    /// of its store's lock).
    fn release_all(&self, ids: &[(JobId, ObjectId)]) {
        for &(job, id) in ids {
            self.release(job, id);
        }
    }
    /// Cancels the task producing `id`.
    fn cancel(&self, caller: &Caller, id: ObjectId) -> Result<(), Error>;
    /// Creates an actor; returns its id at once (the constructor runs
    /// asynchronously).
    fn create_actor<'a>(
        &'a self,
        caller: &'a Caller,
        seq: u64,
        class: String,
        args: Vec<ArgSpec>,
        options: Options,
    ) -> BoxFuture<'a, Result<ActorId, Error>>;
    /// Queues a method call; returns the result's id with one reference held
    /// for the caller. May wait when the actor's queue is full. A generator
    /// method pauses while `generator_backpressure` of its items wait
    /// unread, as a task's does ([`Services::yield_item`]); 0: no bound.
    fn call_actor<'a>(
        &'a self,
        caller: &'a Caller,
        seq: u64,
        actor: ActorId,
        method: String,
        args: Vec<ArgSpec>,
        generator_backpressure: u32,
    ) -> BoxFuture<'a, Result<ObjectId, Error>>;
    /// A reference to the actor's handle object
    /// ([`ObjectId::actor_handle`](wray_core::ObjectId::actor_handle)) for
    /// the caller, made with the first: the actor ends once every
    /// reference to it is gone. `None` for an actor this node does not
    /// collect so (detached, kept by another node, or one whose handle
    /// went to another node); `ActorDied` once it is ending.
    fn actor_handle(&self, caller: &Caller, actor: ActorId) -> Result<Option<ObjectId>, Error>;
    /// Finds a named actor of the caller's job: its id and class.
    fn named_actor<'a>(&'a self, caller: &'a Caller, name: &'a str) -> BoxFuture<'a, Result<(ActorId, String), Error>>;
    /// The names [`Services::named_actor`] finds for the caller: its job's
    /// live named actors and the cluster's detached ones, sorted, at most
    /// [`limits::MAX_NAMES_LISTED`](wray_core::limits::MAX_NAMES_LISTED).
    fn named_actors<'a>(&'a self, caller: &'a Caller) -> BoxFuture<'a, Result<Vec<String>, Error>>;
    /// The name of the caller's actor, if it was created with one.
    fn actor_name(&self, caller: &Caller) -> Option<String>;
    /// Kills an actor.
    fn kill_actor(&self, caller: &Caller, actor: ActorId, no_restart: bool) -> Result<(), Error>;
    /// The node hosting an actor the caller's job created here, once
    /// placed (`None` before, or for an actor this node does not keep).
    fn actor_node(&self, caller: &Caller, actor: ActorId) -> Option<String>;
    /// Reserves a placement group's bundles; returns its id and the node
    /// of each bundle.
    fn create_placement_group<'a>(
        &'a self,
        caller: &'a Caller,
        bundles: Vec<Resources>,
        strategy: Strategy,
    ) -> BoxFuture<'a, Result<(u64, Vec<String>), Error>>;
    /// Frees a placement group's reservations.
    fn remove_placement_group<'a>(&'a self, caller: &'a Caller, group: u64) -> BoxFuture<'a, Result<(), Error>>;
    /// Every node of the cluster, the head first (asking the head from a
    /// worker).
    fn nodes(&self) -> BoxFuture<'_, Result<Vec<NodeInfo>, Error>>;
    /// All resources of the cluster.
    fn cluster_resources(&self) -> Resources;
    /// Resources not held right now.
    fn available_resources(&self) -> Resources;
    /// This node's id.
    fn node_id(&self) -> String;
    /// Keeps the caller's progress document under `topic` (checked against
    /// the limits already) for state listings.
    fn publish_status(&self, caller: &Caller, topic: String, body: String);
    /// Member `rank` of the caller's job's meeting point `point` on this
    /// node contributes `share` to `round` (`meeting.exchange`), or with
    /// `None` waits again for a round it contributed to
    /// (`meeting.wait-round`), up to `timeout`. Returns by rank what each
    /// member sent this one, or `None` when the time passed first.
    fn meet<'a>(
        &'a self,
        caller: &'a Caller,
        point: String,
        rank: u32,
        round: u64,
        share: Option<MeetingShare>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Option<Vec<bytes::Bytes>>, Error>>;
    /// Fails every round of the caller's job's meeting point `point` on
    /// this node, open and to come (`meeting.abort`).
    fn abort_meeting(&self, caller: &Caller, point: &str, reason: &str);
    /// Where the caller's tensors live: a GPU of the node if the caller
    /// holds some of the `GPU` resource and one works, else the CPU path.
    fn device(&self, caller: &Caller) -> wray_gpu::Device;
    /// Reconfigures the replicas of a deployment of the caller's
    /// application in place (`serve.reconfigure`).
    fn serve_reconfigure<'a>(
        &'a self,
        caller: &'a Caller,
        deployment: String,
        config: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), Error>>;
    /// Serves the caller's application until the server shuts down
    /// (`serve.run`).
    fn serve_run<'a>(&'a self, caller: &'a Caller, app: Application) -> BoxFuture<'a, Result<(), Error>>;
    /// Calls a method on a replica of a deployment of the caller's
    /// application (`serve.call`); returns the result's id with one
    /// reference held for the caller. A generator method pauses while
    /// `generator_backpressure` of its items wait unread (0: no bound), as
    /// with [`call_actor`](Services::call_actor).
    #[allow(clippy::too_many_arguments)]
    fn serve_call<'a>(
        &'a self,
        caller: &'a Caller,
        seq: u64,
        deployment: String,
        method: String,
        args: Vec<ArgSpec>,
        generator_backpressure: u32,
    ) -> BoxFuture<'a, Result<ObjectId, Error>>;
}

/// An application as its guest declared it (`serve.run`), validated.
#[derive(Clone, Debug)]
pub struct Application {
    /// Its name.
    pub name: String,
    /// The job's id outside its node (`wray job submit`'s), if it has one;
    /// the node fills it in.
    pub job_label: Option<String>,
    /// Each deployment with its replicas' constructor arguments.
    pub deployments: Vec<(wray_core::serve::Deployment, Vec<ArgSpec>)>,
}

/// One request to a deployed `wasi:http` component, its body read whole, on
/// its way to another node.
#[derive(Clone, Debug)]
pub struct HttpForward {
    /// The method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// Headers, values as bytes.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: bytes::Bytes,
}

/// A component's response from another node, its body whole.
#[derive(Clone, Debug)]
pub struct HttpAnswer {
    /// The status code.
    pub status: u16,
    /// Headers, values as bytes.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: bytes::Bytes,
}

/// The other nodes of a cluster that run a deployed `wasi:http`
/// component's requests: a head's workers, over which its proxy spreads
/// them. The node implements it; the proxy only chooses.
pub trait HttpNodes: Send + Sync + 'static {
    /// The live nodes other than the serving one, in a stable order.
    fn nodes(&self) -> Vec<String>;
    /// Runs one request on `node`, in a fresh instance of the component
    /// there. An error names what failed (the node, the component).
    fn call(&self, node: String, request: HttpForward) -> BoxFuture<'static, Result<HttpAnswer, String>>;
}

/// What serves applications over HTTP: the proxy and controller of
/// `wray-serve-host`, which a node is given by whoever starts it (`wray
/// serve run`, a head with a serve port). It reaches the node back through
/// the [`Services`] it is handed, as a guest would.
pub trait Serving: Send + Sync + 'static {
    /// Runs `app` for the caller's job until the server shuts down.
    fn run<'a>(
        &'a self,
        services: Arc<dyn Services>,
        caller: &'a Caller,
        app: Application,
    ) -> BoxFuture<'a, Result<(), Error>>;
    /// Serves a standard `wasi:http` component for the job labelled
    /// `label` (`wray serve deploy` of one) under `route_prefix`, at most
    /// `instances` requests at once and `max_queued` waiting, until that job
    /// is stopped, a newer version (the same component name) takes the
    /// prefix, or the server shuts down; returns then, once the requests in
    /// flight have finished. Fails at once when the prefix is someone
    /// else's or a number is out of bounds.
    /// With `elsewhere` (a head's workers), requests take the nodes in
    /// turn, this one included.
    #[allow(clippy::too_many_arguments)]
    fn serve_component<'a>(
        &'a self,
        label: &'a str,
        component: crate::HttpComponent,
        route_prefix: &'a str,
        instances: u32,
        max_queued: u32,
        elsewhere: Option<Arc<dyn HttpNodes>>,
    ) -> BoxFuture<'a, Result<(), String>>;
    /// Tells the application or component of the job labelled `label` (a
    /// `wray job submit` id) to stop as a shutdown would: no new requests;
    /// those in flight finish, then its `run` returns. Returns how long
    /// that may take, or `None` if that job serves nothing.
    fn stop_job(&self, label: &str) -> Option<std::time::Duration>;
    /// Gives the replicas of `deployment` of the caller's job's application
    /// a new user config in place.
    fn reconfigure<'a>(
        &'a self,
        caller: &'a Caller,
        deployment: String,
        config: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), Error>>;
    /// The replica that a handle's call to `deployment` of job `job`'s
    /// application, made on another node, goes to, and the replicas'
    /// class (the node answers that call's `Upcall::ServeReplica`).
    fn replica_for_elsewhere(&self, job: JobId, deployment: &str) -> Result<(ActorId, String), Error>;
    /// Routes a handle's call to a replica of `deployment` of the caller's
    /// job's application, paced by `generator_backpressure` as
    /// [`Services::serve_call`].
    #[allow(clippy::too_many_arguments)]
    fn call<'a>(
        &'a self,
        services: Arc<dyn Services>,
        caller: &'a Caller,
        seq: u64,
        deployment: String,
        method: String,
        args: Vec<ArgSpec>,
        generator_backpressure: u32,
    ) -> BoxFuture<'a, Result<ObjectId, Error>>;
}
