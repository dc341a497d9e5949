//! The messages nodes and clients exchange. One request per bidirectional
//! stream; the node answers with a sequence of events.

use crate::NetError;
use rkyv::rancor;

/// What a client asks of a node.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
pub enum Request {
    /// Run a job and stream its output back.
    RunJob(JobRequest),
    /// Describe the cluster.
    Status,
    /// Run a job detached from this connection; answered with
    /// [`Event::Submitted`].
    SubmitJob(JobRequest),
    /// Every job submitted with [`Request::SubmitJob`]; answered with
    /// [`Event::Jobs`].
    ListJobs,
    /// One submitted job; answered with [`Event::Jobs`] holding it.
    JobStatus {
        /// The job's id.
        id: String,
    },
    /// A submitted job's output so far (and, with `follow`, until it ends),
    /// as [`Event::Output`]s, then [`Event::Finished`] with the job's exit
    /// code if it has ended.
    JobLogs {
        /// The job's id.
        id: String,
        /// Keep streaming until the job ends.
        follow: bool,
    },
    /// Cancels a submitted job.
    StopJob {
        /// The job's id.
        id: String,
    },
    /// A worker node joins the head. The worker keeps this stream open for
    /// as long as it is part of the cluster, writes a [`Heartbeat`] on it
    /// every heartbeat period (the head answers each with
    /// [`Event::Cluster`]), and serves the requests the head opens on the
    /// same connection.
    Join {
        /// The worker's node id.
        node_id: String,
        /// Its resources.
        total: Vec<(String, f64)>,
        /// Whether it accepts connections from other nodes on the address
        /// the head sees it connect from (its one UDP socket both connects
        /// and listens), so that they reach it directly instead of through
        /// the head.
        listens: bool,
    },
    /// Run one task of a job running elsewhere (the submitter's node owns
    /// it). The raw bytes of the arguments and objects the request lists
    /// follow the frame, in order. The sender keeps its side open until the
    /// answer, [`Event::TaskDone`], arrives: closing it cancels the task.
    /// Sent to the head, which runs the task or relays the stream to the
    /// node it places the task on; or sent by the head to that node.
    RunTask(TaskRequest),
    /// Host an actor of a job running elsewhere: [`TaskRequest`] with
    /// [`TaskRequest::actor`] set (the constructor's arguments follow, as
    /// for a task). The node answers [`Event::Accepted`] once the actor
    /// exists, then reads [`ActorMsg`]s from the stream and answers each
    /// call with [`Event::TaskDone`], in the order calls finish, and
    /// [`Event::ActorGone`] if the actor dies for good. The owner closing
    /// its side kills the actor.
    RunActor(TaskRequest),
    /// Relay the rest of this stream, both ways, to node `to` (a worker
    /// reaching another worker through the head).
    Forward {
        /// The node id.
        to: String,
    },
    /// A task running away from its job's node asks that node for
    /// something only it knows (the job's actors and their names).
    Upcall(UpcallRequest),
    /// The first stream of a worker's direct connection to another: it
    /// names itself, so that the other uses the same connection to reach it
    /// (a task's upcall to its job's node). No answer.
    Hello {
        /// The connecting worker's node id; at most `MAX_NAME_LEN` bytes.
        node_id: String,
    },
    /// Copies of actors' handle objects this node lent to the sender
    /// ([`WireObject::lender`]), given back: the sender's copy was freed,
    /// or it already had one. An id once per copy, at most
    /// [`MAX_RETURNED_HANDLES`]. No answer.
    ReturnHandles {
        /// The job's id on this node.
        job: u32,
        /// The handle objects.
        ids: Vec<WireId>,
    },
    /// The bytes of an object this node holds for job `job`
    /// ([`TaskDone::held`]): answered with [`Event::TaskDone`] (the
    /// object as `output`, its bytes following) or [`Event::Refused`] when
    /// it holds no such object.
    Fetch {
        /// The owner's job (`owner node/job id`).
        job: String,
        /// The object.
        id: WireId,
    },
    /// Create a placement group (sent to the head): answered with
    /// [`Event::Group`] or [`Event::Refused`].
    CreateGroup {
        /// Each bundle's resources.
        bundles: Vec<Vec<(String, f64)>>,
        /// 0 PACK, 1 SPREAD, 2 STRICT_PACK, 3 STRICT_SPREAD.
        strategy: u8,
    },
    /// Remove a placement group (sent to the head): answered with
    /// [`Event::Accepted`] or [`Event::Refused`].
    RemoveGroup {
        /// The group.
        id: u64,
    },
    /// Reserve one bundle of a group on this node (the head placed it
    /// here): answered with [`Event::Accepted`] or [`Event::Refused`].
    Reserve {
        /// The group.
        group: u64,
        /// The bundle's index.
        index: u32,
        /// What it reserves.
        resources: Vec<(String, f64)>,
    },
    /// Free a bundle reserved with [`Request::Reserve`].
    Unreserve {
        /// The group.
        group: u64,
        /// The bundle's index.
        index: u32,
    },
    /// Create a detached actor (sent to the head, which keeps it and its
    /// record): answered with [`Event::Actor`] or [`Event::Refused`].
    CreateDetached(DetachedActor),
    /// One request to a deployed `wasi:http` component, sent by the head's
    /// proxy to a worker: its body's raw bytes follow; answered with
    /// [`Event::HttpAnswer`] (the response body's bytes follow) or
    /// [`Event::Refused`].
    HttpCall(HttpCall),
    /// The bytes of a component, by hash; answered with
    /// [`Event::Component`] or [`Event::Refused`].
    GetComponent {
        /// Its sha256, hex.
        hash: String,
    },
    /// Part of a node's log (`node.log`): answered with [`Event::Log`] or
    /// [`Event::Refused`]. Sent to the head, which answers for itself or
    /// asks the worker named.
    NodeLog {
        /// The node.
        node: String,
        /// Where to start, in bytes; past the end (`u64::MAX`): the last
        /// `max` bytes.
        offset: u64,
        /// Bytes at most (the node also caps it at
        /// [`MAX_LOG_CHUNK`](crate::state::MAX_LOG_CHUNK)).
        max: u64,
    },
    /// This node's state (jobs, tasks, actors, objects, counters):
    /// answered with [`Event::State`]. Sent to the head, the answer holds
    /// every node's (the head asks its workers).
    State,
}

/// A detached actor as the head records it (and re-creates it from, after
/// a restart).
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
pub struct DetachedActor {
    /// Its name, unique in the cluster.
    pub name: String,
    /// Its class.
    pub class: String,
    /// The component's label.
    pub component_name: String,
    /// The component's content hash.
    pub component_hash: String,
    /// The actor id's high half.
    pub actor_hi: u64,
    /// Its low half.
    pub actor_lo: u64,
    /// The constructor task's id, high half.
    pub task_hi: u64,
    /// Low half.
    pub task_lo: u64,
    /// The constructor's arguments (plain values).
    pub args: Vec<Vec<u8>>,
    /// Resources it holds.
    pub resources: Vec<(String, f64)>,
    /// Memory limit of its instance.
    pub memory_limit: Option<u64>,
    /// Time limit of one call, milliseconds.
    pub time_limit_ms: Option<u64>,
    /// Calls queued and in flight at once.
    pub max_concurrency: u32,
    /// Restarts after a crash.
    pub max_restarts: u32,
    /// Re-runs of a call its crash interrupted.
    pub max_task_retries: u32,
    /// Snapshot its memory after every this many calls (0: never); the
    /// head keeps the snapshots with the record.
    pub checkpoint_every: u32,
    /// Its own environment variables, over its job's.
    pub env: Vec<(String, String)>,
}

/// What a worker sends on its membership stream (after [`Request::Join`])
/// every heartbeat period; the head answers each with
/// [`Event::Cluster`].
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
pub struct Heartbeat {
    /// Resources not held right now, less what placements still on their
    /// way into the node's scheduler will take.
    pub free: Vec<(String, f64)>,
    /// The numbers of the placements (tasks and actors the head sent, each
    /// request carrying its [`TaskRequest::placement`]) that reached the
    /// node since its last heartbeat: `free` counts them, and the head stops
    /// charging them (`wray_sched::ClusterView::heartbeat`). At most
    /// [`MAX_ACKS`]; more wait for the next heartbeat.
    pub arrived: Vec<u64>,
}

/// Placement numbers one heartbeat acknowledges, at most.
pub const MAX_ACKS: usize = 65_536;

/// An object's id on the wire: the creating task's id halves and the
/// output index.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireId {
    /// High half of the task id.
    pub hi: u64,
    /// Low half of the task id.
    pub lo: u64,
    /// Output index.
    pub index: u32,
}

/// An object travelling with a message: its bytes (`len` of them) follow
/// the frame raw.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
pub struct WireObject {
    /// Its id.
    pub id: WireId,
    /// How many bytes follow.
    pub len: u64,
    /// Objects its value refers to (they travel in the same message).
    pub refs: Vec<WireId>,
    /// Set when no bytes follow: the object is ready in this node's store
    /// and the receiver fetches it from there ([`Request::Fetch`]). `len`
    /// is still its size.
    pub at: Option<WireHolder>,
    /// Set on an actor's handle object: the sender keeps its own copy (and
    /// the actor) alive for this one until the receiver gives it back with
    /// [`Request::ReturnHandles`].
    pub lender: Option<WireLender>,
}

/// The node that lent a copy of an actor's handle object, and its job there
/// ([`WireObject::lender`]).
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq, Eq, Hash)]
pub struct WireLender {
    /// Its node id; at most `MAX_NAME_LEN` bytes.
    pub node: String,
    /// The job's id on that node (a stand-in's, on a node running the
    /// job's tasks for another).
    pub job: u32,
}

/// The most handle copies one [`Request::ReturnHandles`] gives back.
pub const MAX_RETURNED_HANDLES: usize = 4096;

/// A node holding an object for its owner ([`TaskDone::held`]).
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
pub struct WireHolder {
    /// Its node id.
    pub node: String,
    /// Where it listens (`ip:port`), for a worker that reaches it directly;
    /// empty when it is reached through the head (or is the head).
    pub addr: String,
}

/// One argument of a task.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
pub enum WireArg {
    /// Passed inline: `len` bytes follow; `refs` are objects the value
    /// mentions.
    Value {
        /// How many bytes follow.
        len: u64,
        /// Objects the value refers to.
        refs: Vec<WireId>,
    },
    /// An object (listed in the request's objects).
    Object(WireId),
}

/// A task sent to another node.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
pub struct TaskRequest {
    /// The owning job, unique in the cluster (the owner's node id and its
    /// job id): tasks of one job share state on the node that runs them.
    pub job: String,
    /// The node the job runs on (its driver's).
    pub owner_node: String,
    /// The job's id there.
    pub owner_job: u32,
    /// The component's label.
    pub name: String,
    /// The component's content hash; a node without it asks the head.
    pub component_hash: String,
    /// Environment granted to the job.
    pub env: Vec<(String, String)>,
    /// The job's default memory limit per instance.
    pub memory_limit: Option<u64>,
    /// The task's time limit, milliseconds.
    pub time_limit_ms: Option<u64>,
    /// The task id's high half.
    pub task_hi: u64,
    /// The task id's low half.
    pub task_lo: u64,
    /// The remote function.
    pub function: String,
    /// Its resource demand.
    pub resources: Vec<(String, f64)>,
    /// Retries left for failures the executing node sees.
    pub max_retries: u32,
    /// Whether a guest error is retried.
    pub retry_exceptions: bool,
    /// Whether the task may run in an instance an earlier task of its job
    /// left (and leave its own).
    pub reuse_instance: bool,
    /// Runs of the function an instance may do before it is dropped (0:
    /// no limit).
    pub max_calls: u32,
    /// A generator's bound on items yielded but not yet read (0: none):
    /// the executing node counts its forwarding of an item to the owner as
    /// the read, and the owner reads the stream no further while its own
    /// reader is that many items behind, so QUIC's flow control pauses the
    /// sender in between.
    pub generator_backpressure: u32,
    /// The task's or actor's own environment variables, over the job's
    /// `env` (checked by the receiver with `Options::check_env`).
    pub task_env: Vec<(String, String)>,
    /// Set when the request creates an actor rather than runs a task.
    pub actor: Option<WireActor>,
    /// True if the submitting node cannot run it at all; false if it only
    /// spills over from a busy node (the head then answers
    /// [`Event::Busy`] when no node has room).
    pub must_move: bool,
    /// How the head chooses its node.
    pub scheduling: WireScheduling,
    /// Arguments, in order.
    pub args: Vec<WireArg>,
    /// Objects the arguments refer to, nested ones first.
    pub objects: Vec<WireObject>,
    /// The head's number for this placement on the receiving node, which
    /// the node's next heartbeat echoes; 0 when the request is not (yet)
    /// placed — a worker's request to the head, which numbers it when it
    /// relays it.
    pub placement: u64,
    /// A worker's request to the head that asks only where to run the
    /// task: the sender waits for [`Event::Placed`] (go to that node
    /// directly, keeping this stream open until the task ends) or
    /// [`Event::Proceed`] (the arguments' bytes now follow on this stream)
    /// before it sends them.
    pub direct: bool,
    /// The sender reached this node directly (not through the head's
    /// relay): a large result may stay here ([`TaskDone::held`]), and the
    /// sender keeps the stream open for as long as it wants it held.
    pub hold: bool,
}

/// How the head places a [`TaskRequest`] (`wray_core::Scheduling`).
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
pub enum WireScheduling {
    /// Where there is room, the sender first.
    Default,
    /// SPREAD: the nodes with room in turn, the sender included (answering
    /// [`Event::Busy`] on the sender's turn: it runs where it is).
    Spread,
    /// Node affinity (`wray_sched::ClusterView::place_on`).
    NodeAffinity {
        /// The node's id; at most `MAX_NAME_LEN` bytes.
        node: String,
        /// Elsewhere when the node has no room, rather than queued there.
        soft: bool,
    },
}

/// The actor a [`Request::RunActor`] creates.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
pub struct WireActor {
    /// The actor id's high half.
    pub hi: u64,
    /// Its low half.
    pub lo: u64,
    /// Calls queued and in flight at once.
    pub max_concurrency: u32,
    /// Restarts after a crash.
    pub max_restarts: u32,
    /// Re-runs of a call a crash interrupted.
    pub max_task_retries: u32,
    /// Snapshot the actor's memory after every this many calls (0: never).
    pub checkpoint_every: u32,
    /// How many [`ActorMsg::Checkpoint`] frames follow the arguments: the
    /// snapshot to start from instead of running the constructor (0: none).
    pub checkpoint_parts: u32,
    /// Its name, if it was created with one (what its methods see in their
    /// context); at most `MAX_NAME_LEN` bytes.
    pub name: Option<String>,
}

/// The most bytes of checkpoint blocks one [`WireDelta`] carries (a whole
/// snapshot travels as several).
pub const MAX_DELTA_BYTES: usize = 32 << 20;

/// Blocks of an actor's memory snapshot that changed (or, sent to a new
/// host, part of the whole snapshot). Checked again when applied.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
pub struct WireDelta {
    /// Where the snapshot starts in linear memory.
    pub base: u32,
    /// The memory size it was taken at.
    pub memory_size: u64,
    /// Its length.
    pub len: u64,
    /// Discard the previous snapshot first.
    pub full: bool,
    /// The indices of the blocks in `data`, in order.
    pub blocks: Vec<u32>,
    /// The blocks' bytes, one after another (each a whole block but the
    /// snapshot's last).
    pub data: Vec<u8>,
}

/// What an actor's owner sends on the actor's stream after the request.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
pub enum ActorMsg {
    /// A method call; its arguments' bytes follow.
    Call(WireCall),
    /// Kill the actor (it restarts unless `no_restart` or out of restarts).
    Kill {
        /// Forbid restarting.
        no_restart: bool,
    },
    /// Part of the snapshot a re-created actor starts from (right after
    /// the request, [`WireActor::checkpoint_parts`] of them).
    Checkpoint(WireDelta),
    /// Nobody reads the items of this call's generator any more (every
    /// holder of its result let it go): its next yield fails, as a dropped
    /// generator's does on its own node, and the actor takes its next call.
    Stop {
        /// The call's task id, high half.
        task_hi: u64,
        /// Low half.
        task_lo: u64,
    },
    /// The caller's window of unread items of this call's generator is
    /// full (`paused`), or has room again: the hosting node stops taking
    /// the call's items to send while paused, so that its own window fills
    /// and the method waits in its yield (`WireCall::generator_backpressure`).
    Pace {
        /// The call's task id, high half.
        task_hi: u64,
        /// Low half.
        task_lo: u64,
        /// Paused, or going on.
        paused: bool,
    },
}

/// A method call on the wire.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
pub struct WireCall {
    /// The call's task id, high half.
    pub task_hi: u64,
    /// Low half.
    pub task_lo: u64,
    /// The method.
    pub method: String,
    /// Arguments, in order.
    pub args: Vec<WireArg>,
    /// Objects the arguments refer to, nested ones first.
    pub objects: Vec<WireObject>,
    /// A generator method's window of unread items on the node running
    /// it (`set_item_window`); 0: none.
    pub generator_backpressure: u32,
}

/// What a task away from home asks its job's node.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
pub struct UpcallRequest {
    /// The job, by its id on the node it belongs to.
    pub job: u32,
    /// What it asks.
    pub upcall: Upcall,
}

/// See [`UpcallRequest`].
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
pub enum Upcall {
    /// Call an actor of the job: answered with [`Event::Accepted`] once the
    /// call is queued (so that one caller's calls keep their order), then
    /// [`Event::TaskDone`]. The arguments' bytes follow.
    Call {
        /// The actor id's high half.
        hi: u64,
        /// Its low half.
        lo: u64,
        /// The call.
        call: WireCall,
    },
    /// Look an actor up by name: answered with [`Event::Actor`].
    Named {
        /// The name.
        name: String,
    },
    /// List the names [`Upcall::Named`] finds: answered with
    /// [`Event::Names`] — the job's named actors (none for a job the node
    /// does not have) and the detached actors the node keeps.
    ListNamed,
    /// Pick the replica of the job's served application's deployment
    /// that a handle's call made elsewhere goes to: answered with
    /// [`Event::Actor`] (the replica, the deployment's class), or refused.
    ServeReplica {
        /// The deployment's name.
        deployment: String,
    },
    /// Create an actor of the job (a task away from the job's node creates
    /// it there, so that every node reaches it as it reaches the job's
    /// other actors): answered with [`Event::Actor`] once it exists, or
    /// refused. The constructor arguments' bytes follow.
    Create(Box<WireCreate>),
    /// Kill an actor of the job.
    Kill {
        /// The actor id's high half.
        hi: u64,
        /// Its low half.
        lo: u64,
        /// Forbid restarting.
        no_restart: bool,
    },
}

/// An actor a task away from its job's node creates ([`Upcall::Create`]):
/// its options as the caller's node validated them, checked again on
/// arrival.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
pub struct WireCreate {
    /// The creating task's id for this actor (its high half): the actor's
    /// id derives from it, so both nodes name it alike.
    pub task_hi: u64,
    /// Its low half.
    pub task_lo: u64,
    /// The class; at most `MAX_NAME_LEN` bytes.
    pub class: String,
    /// Its name, if any; at most `MAX_NAME_LEN` bytes.
    pub name: Option<String>,
    /// What it holds while it lives.
    pub resources: Vec<(String, f64)>,
    /// Its instance's memory limit.
    pub memory_limit: Option<u64>,
    /// Each call's time limit, milliseconds.
    pub time_limit_ms: Option<u64>,
    /// Calls queued and in flight at once.
    pub max_concurrency: u32,
    /// Restarts after a crash.
    pub max_restarts: u32,
    /// Re-runs of a call a crash interrupted.
    pub max_task_retries: u32,
    /// Snapshot its memory after every this many calls (0: never).
    pub checkpoint_every: u32,
    /// The placement-group bundle it runs in: (group, index).
    pub placement: Option<(u64, u32)>,
    /// Where it goes.
    pub scheduling: WireScheduling,
    /// Its own environment variables (checked with `Options::check_env`).
    pub env: Vec<(String, String)>,
    /// Constructor arguments, in order.
    pub args: Vec<WireArg>,
    /// Objects the arguments refer to, nested ones first.
    pub objects: Vec<WireObject>,
}

/// How a task sent with [`Request::RunTask`] ended. On success the
/// result's bytes follow the frame, then the bytes of `objects`.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
pub struct TaskDone {
    /// The node that ran it.
    pub node: String,
    /// The task's output (what the result settles).
    pub output: WireId,
    /// The result (its id is the task's output) or the error.
    pub result: Result<WireObject, wray_core::Error>,
    /// Objects the result refers to, nested ones first.
    pub objects: Vec<WireObject>,
    /// The result's bytes do not follow: the node that ran the task keeps
    /// them in its store, for the owner and the nodes it sends them to
    /// to fetch ([`Request::Fetch`]), for as long as the owner keeps the
    /// task's stream open (it finishes it once it has no more use for the
    /// object; a broken stream frees it too).
    pub held: bool,
}

/// A job submitted with [`Request::SubmitJob`], as the head records it.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq, Default)]
pub struct JobInfo {
    /// Its id (`job-000001`).
    pub id: String,
    /// The label it was submitted with (the file name).
    pub name: String,
    /// `RUNNING`, `SUCCEEDED`, `FAILED` or `STOPPED`.
    pub status: String,
    /// Why it failed or stopped.
    pub message: String,
    /// When it was submitted, milliseconds since the Unix epoch.
    pub submitted_ms: u64,
    /// When it ended (0 while running).
    pub ended_ms: u64,
}

/// A job to run.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
pub struct JobRequest {
    /// A label for messages (the file name on the client).
    pub name: String,
    /// The component's content hash (sha256, hex).
    pub component_hash: String,
    /// The component's bytes, or empty to say "you should have it by its
    /// hash": a node that does not answers [`Event::NeedComponent`] and the
    /// sender repeats the request with the bytes. Components thus cross the
    /// network once per node, not once per job.
    pub component: Vec<u8>,
    /// Arguments for `main`.
    pub args: Vec<String>,
    /// Environment granted to the job.
    pub env: Vec<(String, String)>,
    /// Default memory limit of each instance.
    pub memory_limit: Option<u64>,
    /// Default time limit of each task, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Set by `wray serve deploy` of a standard `wasi:http` component
    /// (which has no `main`): how the head's proxy serves it.
    pub http: Option<HttpServing>,
}

/// How the head's proxy serves a deployed `wasi:http` component.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
pub struct HttpServing {
    /// The route prefix it answers under.
    pub route_prefix: String,
    /// Requests it runs at once, each in a fresh instance.
    pub instances: u32,
    /// Requests that may wait for an instance (then 503).
    pub max_queued: u32,
}

impl JobRequest {
    /// A copy without the component's bytes (named by hash only).
    pub fn clone_without_component(&self) -> JobRequest {
        JobRequest {
            name: self.name.clone(),
            component_hash: self.component_hash.clone(),
            component: Vec::new(),
            args: self.args.clone(),
            env: self.env.clone(),
            memory_limit: self.memory_limit,
            timeout_ms: self.timeout_ms,
            http: self.http.clone(),
        }
    }
}

/// A request to a deployed `wasi:http` component, run on another node.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
pub struct HttpCall {
    /// The component's label (its file name).
    pub name: String,
    /// Its content hash: a node that lacks it asks the head.
    pub component_hash: String,
    /// Environment granted to its instances.
    pub env: Vec<(String, String)>,
    /// Memory limit of each instance.
    pub memory_limit: Option<u64>,
    /// The request's method.
    pub method: String,
    /// Its path and query.
    pub uri: String,
    /// Its headers (at most [`MAX_HTTP_HEADERS`]).
    pub headers: Vec<(String, Vec<u8>)>,
    /// Bytes of body that follow (at most [`MAX_HTTP_BODY`]).
    pub body_len: u64,
}

/// Headers one [`HttpCall`] or [`Event::HttpAnswer`] carries, at most.
pub const MAX_HTTP_HEADERS: usize = 1024;

/// Body bytes one [`HttpCall`] or [`Event::HttpAnswer`] carries, at most
/// (checked before anything is allocated; the proxy's own `--max-body`
/// bounds requests further).
pub const MAX_HTTP_BODY: u64 = 256 << 20;

/// The [`Event::Finished`] code of a job that did not fail but was lost:
/// the node running it died under it. `wray run --max-retries` runs such a
/// job again from the start; without retries `wray run` exits with it.
pub const JOB_LOST: u8 = 3;

/// What a node sends back.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
pub enum Event {
    /// Bytes the job wrote to stdout (or, in a job's stored log, to either
    /// stream).
    Output(Vec<u8>),
    /// The job ended: `code` as `wray run` would exit (0, 1, 2, 130), or
    /// [`JOB_LOST`].
    Finished {
        /// Exit code.
        code: u8,
        /// Why, when not 0.
        message: String,
    },
    /// The job's driver called `exit(status)`, status ≠ 0: `wray run` exits
    /// with it (as a process would).
    Exited {
        /// What the driver passed to `exit`.
        status: i32,
    },
    /// The answer to [`Request::Status`].
    Status(StatusReport),
    /// A job was accepted: its id.
    Submitted {
        /// The new job's id.
        id: String,
    },
    /// Job records.
    Jobs(Vec<JobInfo>),
    /// The request could not be served (unknown job, ...): the reason.
    Refused(String),
    /// The receiver does not have the component the request named by hash
    /// only: send the request again with its bytes.
    NeedComponent {
        /// The hash it lacks.
        hash: String,
    },
    /// The head accepted a worker: its own node id.
    Welcome {
        /// The head's node id.
        head_id: String,
    },
    /// A `wasi:http` component's response to a [`Request::HttpCall`]: its
    /// body's `body_len` raw bytes follow.
    HttpAnswer {
        /// The status code.
        status: u16,
        /// Its headers (at most [`MAX_HTTP_HEADERS`]).
        headers: Vec<(String, Vec<u8>)>,
        /// Bytes of body that follow (at most [`MAX_HTTP_BODY`]).
        body_len: u64,
    },
    /// A component's bytes.
    Component(Vec<u8>),
    /// The answer to [`Request::RunTask`].
    TaskDone(TaskDone),
    /// The request was taken: the actor exists, the call is queued.
    Accepted,
    /// A placement group exists: its id and each bundle's node.
    Group {
        /// The group's id.
        id: u64,
        /// The node of each bundle.
        nodes: Vec<String>,
    },
    /// An actor hosted elsewhere died for good: why.
    ActorGone(String),
    /// An actor hosted elsewhere took a snapshot: what changed (sent
    /// before the result of the call it follows).
    Checkpoint(WireDelta),
    /// An actor hosted elsewhere restarted after a crash: one restart of
    /// its budget is used.
    ActorRestarted,
    /// An actor found by name, or created ([`Upcall::Create`], a detached
    /// one).
    Actor {
        /// The actor id's high half.
        hi: u64,
        /// Its low half.
        lo: u64,
        /// Its class.
        class: String,
        /// The job it belongs to on the answering node: where upcalls
        /// about it go.
        job: u32,
        /// A copy of its handle object lent to the asking node (no bytes
        /// follow): the handle the asking task takes is counted there, and
        /// keeps the actor as one on the answering node does. `None` for an
        /// actor whose handles are not counted (a detached one).
        handle: Option<WireObject>,
    },
    /// The answer to [`Upcall::ListNamed`]: names of named actors, at most
    /// [`MAX_NAMES_LISTED`](wray_core::limits::MAX_NAMES_LISTED).
    Names(Vec<String>),
    /// The answer to [`Request::NodeLog`].
    Log {
        /// Where `data` starts in the file.
        offset: u64,
        /// The file's size when read.
        size: u64,
        /// The bytes.
        data: Vec<u8>,
    },
    /// The answer to [`Request::State`]: one entry per node.
    State(Vec<crate::state::NodeState>),
    /// A task that only spills over ([`TaskRequest::must_move`] false)
    /// found no node with room: run it where it was submitted.
    Busy,
    /// The head's answer to a [`TaskRequest::direct`] request placed on a
    /// worker that listens: send the request there, as placement `number`,
    /// on a connection of the sender's own. The sender keeps the stream to
    /// the head open until the task ends (closing it credits the node in
    /// the head's view); the head resets it if the node dies meanwhile.
    Placed {
        /// The node's id.
        node: String,
        /// Where it listens (`ip:port`).
        addr: String,
        /// The placement's number on that node.
        number: u64,
    },
    /// The head's answer to a [`TaskRequest::direct`] request it runs or
    /// relays itself: the arguments' bytes follow on this stream, and the
    /// task's events come back on it, as for any [`Request::RunTask`].
    Proceed,
    /// The cluster's resources, as the head sees them (its answer to each
    /// [`Heartbeat`]).
    Cluster {
        /// Resources of the live nodes.
        total: Vec<(String, f64)>,
        /// Of which free.
        free: Vec<(String, f64)>,
    },
    /// Bytes the job wrote to stderr (streamed live; [`Event::Output`] is
    /// its stdout).
    ErrorOutput(Vec<u8>),
    /// A task's arguments could not be had: objects it needs were held on
    /// a node that could not give them (it died, or freed them). The
    /// owner makes them again (their tasks run again) and retries the
    /// task.
    ObjectsLost {
        /// The objects.
        ids: Vec<WireId>,
        /// Why.
        why: String,
    },
    /// An item a generator task yielded, sent on its stream before its
    /// [`Event::TaskDone`], as soon as it is yielded: the item's bytes
    /// follow, then those of the objects it refers to.
    Item(ItemYielded),
}

/// One item of a generator task ([`Event::Item`]).
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
pub struct ItemYielded {
    /// The task's output, whose items these are.
    pub output: WireId,
    /// The item's number, from 0 (below
    /// [`MAX_GENERATOR_ITEMS`](wray_core::limits::MAX_GENERATOR_ITEMS)).
    pub index: u32,
    /// The item (its bytes follow).
    pub item: WireObject,
    /// Objects it refers to, nested ones first.
    pub objects: Vec<WireObject>,
}

/// The cluster as one node sees it.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq, Default)]
pub struct StatusReport {
    /// Every known node.
    pub nodes: Vec<NodeReport>,
}

/// One node.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq, Default)]
pub struct NodeReport {
    /// Its id.
    pub id: String,
    /// Where it listens.
    pub address: String,
    /// Whether it answers heartbeats.
    pub alive: bool,
    /// All resources.
    pub total: Vec<(String, f64)>,
    /// Resources not held.
    pub available: Vec<(String, f64)>,
    /// Jobs running.
    pub jobs: u64,
    /// Stand-ins of other nodes' jobs kept after their last task here,
    /// not counted in `jobs` (they end on their own shortly).
    pub idle_jobs: u64,
    /// Tasks queued or running.
    pub tasks: u64,
    /// Live actors.
    pub actors: u64,
    /// Objects in its store.
    pub objects: u64,
    /// Bytes of objects in memory.
    pub object_memory: u64,
    /// Bytes of objects spilled to disk.
    pub object_spilled: u64,
}

/// Encodes a message.
pub fn encode<T>(msg: &T) -> Result<Vec<u8>, NetError>
where
    T: for<'a> rkyv::Serialize<
            rkyv::api::high::HighSerializer<
                rkyv::util::AlignedVec,
                rkyv::ser::allocator::ArenaHandle<'a>,
                rancor::Error,
            >,
        >,
{
    rkyv::to_bytes::<rancor::Error>(msg).map(|v| v.to_vec()).map_err(|e| NetError::Malformed(e.to_string()))
}

/// Validates and decodes a request.
pub fn decode_request(bytes: &[u8]) -> Result<Request, NetError> {
    rkyv::from_bytes::<Request, rancor::Error>(bytes).map_err(|e| NetError::Malformed(e.to_string()))
}

/// Validates and decodes a job record (as the head persists them).
pub fn decode_job_info(bytes: &[u8]) -> Result<JobInfo, NetError> {
    rkyv::from_bytes::<JobInfo, rancor::Error>(bytes).map_err(|e| NetError::Malformed(e.to_string()))
}

/// Validates and decodes a heartbeat.
pub fn decode_heartbeat(bytes: &[u8]) -> Result<Heartbeat, NetError> {
    let beat = rkyv::from_bytes::<Heartbeat, rancor::Error>(bytes).map_err(|e| NetError::Malformed(e.to_string()))?;
    if beat.arrived.len() > MAX_ACKS {
        return Err(NetError::Malformed(format!("a heartbeat acknowledging {} placements", beat.arrived.len())));
    }
    Ok(beat)
}

/// Validates and decodes a message on an actor's stream.
pub fn decode_actor_msg(bytes: &[u8]) -> Result<ActorMsg, NetError> {
    rkyv::from_bytes::<ActorMsg, rancor::Error>(bytes).map_err(|e| NetError::Malformed(e.to_string()))
}

/// Validates and decodes a detached actor's record.
pub fn decode_detached(bytes: &[u8]) -> Result<DetachedActor, NetError> {
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(bytes.len());
    aligned.extend_from_slice(bytes);
    rkyv::from_bytes::<DetachedActor, rancor::Error>(&aligned).map_err(|e| NetError::Malformed(e.to_string()))
}

/// Validates and decodes an event.
pub fn decode_event(bytes: &[u8]) -> Result<Event, NetError> {
    rkyv::from_bytes::<Event, rancor::Error>(bytes).map_err(|e| NetError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rkyv::util::AlignedVec;

    fn aligned(b: &[u8]) -> AlignedVec<16> {
        let mut v = AlignedVec::<16>::new();
        v.extend_from_slice(b);
        v
    }

    #[test]
    fn messages_round_trip() {
        let r = Request::RunJob(JobRequest {
            name: "job.wasm".into(),
            component_hash: "00".repeat(32),
            component: vec![0, 97, 115, 109],
            args: vec!["a".into()],
            env: vec![("K".into(), "V".into())],
            memory_limit: Some(1 << 20),
            timeout_ms: None,
            http: Some(HttpServing { route_prefix: "/".into(), instances: 2, max_queued: 10 }),
        });
        assert_eq!(decode_request(&aligned(&encode(&r).unwrap())).unwrap(), r);
        let e = Event::Finished { code: 1, message: "boom".into() };
        assert_eq!(decode_event(&aligned(&encode(&e).unwrap())).unwrap(), e);
    }

    #[test]
    fn garbage_and_truncated_bytes_are_rejected_not_trusted() {
        let good = encode(&Request::Status).unwrap();
        let mut rng = 0x1234_5678_u64;
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng as u8
                })
                .collect();
            // Must not panic; may occasionally decode to something valid.
            let _ = decode_request(&aligned(&bytes));
            let _ = decode_event(&aligned(&bytes));
        }
        // rkyv keeps the root at the end, so a prefix can itself be a valid
        // (different) archive; what must hold is that decoding never panics
        // and never reads past the buffer (validation), and that frames
        // carry exact lengths so a prefix is never taken for the message.
        let original = Event::Output(vec![1; 100]);
        let full = encode(&original).unwrap();
        for cut in 0..full.len() {
            if let Ok(e) = decode_event(&aligned(&full[..cut])) {
                assert_ne!(e, original, "a prefix of {cut} bytes decoded as the whole message");
            }
        }
        assert!(decode_request(&aligned(&good)).is_ok());
    }

    /// A seeded mutation fuzz of the decoder: valid messages with bits
    /// flipped, bytes overwritten or cut short decode to an error or to some
    /// message, never a panic (validation bounds every read).
    #[test]
    fn mutated_messages_never_panic_the_decoder() {
        let messages = [
            encode(&Request::RunJob(JobRequest {
                name: "job.wasm".into(),
                component_hash: "00".repeat(32),
                component: vec![0, 97, 115, 109, 1, 0, 0, 0],
                args: vec!["a".into(), "bb".into()],
                env: vec![("K".into(), "V".into())],
                memory_limit: Some(1 << 20),
                timeout_ms: Some(5),
                http: None,
            }))
            .unwrap(),
            encode(&Event::Finished { code: 1, message: "boom".into() }).unwrap(),
            encode(&Event::Output(vec![7; 300])).unwrap(),
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        for i in 0..3000 {
            let mut bytes = messages[i % messages.len()].to_vec();
            match next() % 3 {
                0 => {
                    for _ in 0..1 + next() % 4 {
                        let p = (next() as usize) % bytes.len();
                        bytes[p] ^= 1 << (next() % 8);
                    }
                }
                1 => {
                    let p = (next() as usize) % bytes.len();
                    for b in bytes.iter_mut().skip(p).take(4) {
                        *b = next() as u8;
                    }
                }
                _ => {
                    let cut = (next() as usize) % bytes.len();
                    bytes.truncate(cut);
                }
            }
            let _ = decode_request(&aligned(&bytes));
            let _ = decode_event(&aligned(&bytes));
        }
    }
}
