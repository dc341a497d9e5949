//! What a node reports of its state: the rows of `wray list`, the
//! dashboard's views and the metrics the head exports. One node answers
//! [`Request::State`](crate::proto::Request::State) with its
//! [`NodeState`]; the head gathers every node's.
//!
//! Every list here is cut to a named bound by the node that builds it (a
//! peer's answer is also checked against them when it is decoded: see
//! [`NodeState::within_bounds`]), so a state answer stays small whatever a
//! cluster runs: the counts stay exact, the rows are the most recent ones.

use serde::{Deserialize, Serialize};

/// Finished tasks a node remembers, newest first (Ray's state API keeps a
/// similar window of task events per job).
pub const MAX_TASK_ROWS: usize = 1000;

/// Actors listed per node.
pub const MAX_ACTOR_ROWS: usize = 1000;

/// Objects listed per node (the largest first); the totals count them all.
pub const MAX_OBJECT_ROWS: usize = 500;

/// Jobs listed per node (running ones first, then the newest).
pub const MAX_JOB_ROWS: usize = 500;

/// Placement groups listed per node.
pub const MAX_GROUP_ROWS: usize = 500;

/// Progress documents listed per node (`wray_core::limits::
/// MAX_PUBLISHED_PER_NODE`, the number a node keeps).
pub const MAX_PUBLISHED_ROWS: usize = 32;

/// Bytes of one progress document (`wray_core::limits::MAX_STATUS_BYTES`).
pub const MAX_PUBLISHED_BYTES: usize = 64 << 10;

/// Bytes of a node's log one answer carries at most.
pub const MAX_LOG_CHUNK: usize = 256 << 10;

/// Bytes of a task's error message kept in its row.
pub const MAX_ERROR_BYTES: usize = 500;

/// `message` cut to [`MAX_ERROR_BYTES`] at a character boundary, with an
/// ellipsis when something was cut.
pub fn cut_error(message: &str) -> String {
    if message.len() <= MAX_ERROR_BYTES {
        return message.to_string();
    }
    let mut end = MAX_ERROR_BYTES - '…'.len_utf8();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

/// One node's state.
#[derive(
    rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Serialize, Deserialize, Debug, Clone, PartialEq, Default,
)]
pub struct NodeState {
    /// Its id.
    pub id: String,
    /// `head`, `worker` or `local` (a node of its own, `wray run`).
    pub role: String,
    /// Whether it answered (a dead or silent worker is listed with its last
    /// known resources and nothing else).
    pub alive: bool,
    /// Milliseconds since it started.
    pub uptime_ms: u64,
    /// All resources.
    pub total: Vec<(String, f64)>,
    /// Resources not held.
    pub available: Vec<(String, f64)>,
    /// GPUs it found (names).
    pub gpus: Vec<String>,
    /// Resident memory of the node's process, bytes (0 where unknown).
    pub memory_rss: u64,
    /// Tasks waiting in its scheduler's queue for resources.
    pub queued: u64,
    /// Object store counters.
    pub store: StoreState,
    /// Task counts by state: every task this node's jobs submitted.
    pub task_counts: TaskCounts,
    /// Recent tasks of this node's jobs, newest first.
    pub tasks: Vec<TaskRow>,
    /// Actors of this node's jobs.
    pub actors: Vec<ActorRow>,
    /// Jobs on this node: running ones, and the head's submitted jobs.
    pub jobs: Vec<JobRow>,
    /// Placement groups this node created (the head's).
    pub groups: Vec<GroupRow>,
    /// Objects in its store, largest first.
    pub objects: Vec<ObjectRow>,
    /// QUIC traffic and the head's heartbeats.
    pub net: NetState,
    /// Progress its jobs published (Tune experiments, Train runs), newest
    /// first.
    pub published: Vec<PublishedRow>,
}

impl NodeState {
    /// Whether every list is within its bound: what a decoded peer answer
    /// must satisfy before it is shown or exported.
    pub fn within_bounds(&self) -> bool {
        self.tasks.len() <= MAX_TASK_ROWS
            && self.actors.len() <= MAX_ACTOR_ROWS
            && self.objects.len() <= MAX_OBJECT_ROWS
            && self.jobs.len() <= MAX_JOB_ROWS
            && self.groups.len() <= MAX_GROUP_ROWS
            && self.tasks.iter().all(|t| t.error.len() <= MAX_ERROR_BYTES)
            && self.published.len() <= MAX_PUBLISHED_ROWS
            && self.published.iter().all(|p| p.body.len() <= MAX_PUBLISHED_BYTES)
    }
}

/// Object store counters of one node.
#[derive(
    rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Serialize, Deserialize, Debug, Clone, PartialEq, Default,
)]
pub struct StoreState {
    /// Live objects.
    pub objects: u64,
    /// Bytes held in memory.
    pub memory_bytes: u64,
    /// The memory budget before spilling.
    pub budget_bytes: u64,
    /// Bytes spilled to disk now.
    pub spilled_bytes: u64,
    /// Objects spilled now.
    pub spilled_objects: u64,
    /// Objects ever written to the spill store.
    pub spills: u64,
    /// Reads served from the spill store.
    pub restores: u64,
}

/// Tasks by state. `pending` and `running` are now; the rest are totals
/// since the node started.
#[derive(
    rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Serialize, Deserialize, Debug, Clone, PartialEq, Default,
)]
pub struct TaskCounts {
    /// Waiting for arguments or resources.
    pub pending: u64,
    /// Running (here or on another node).
    pub running: u64,
    /// Finished with a result.
    pub finished: u64,
    /// Failed for good (retries used up).
    pub failed: u64,
    /// Cancelled, or ended with their job.
    pub cancelled: u64,
}

/// One task.
#[derive(
    rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Serialize, Deserialize, Debug, Clone, PartialEq, Default,
)]
pub struct TaskRow {
    /// Its id (hex).
    pub id: String,
    /// The job that submitted it (`<node>/<job>`).
    pub job: String,
    /// The remote function.
    pub function: String,
    /// `PENDING`, `RUNNING`, `FINISHED`, `FAILED` or `CANCELLED`.
    pub state: String,
    /// The node running or that ran it (empty while pending).
    pub node: String,
    /// Submitted, milliseconds since the Unix epoch.
    pub submitted_ms: u64,
    /// Started running (0: not yet).
    pub started_ms: u64,
    /// Ended (0: not yet).
    pub ended_ms: u64,
    /// Attempts made (retries + 1).
    pub attempts: u32,
    /// Why it failed (cut to [`MAX_ERROR_BYTES`]).
    pub error: String,
}

/// One actor.
#[derive(
    rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Serialize, Deserialize, Debug, Clone, PartialEq, Default,
)]
pub struct ActorRow {
    /// Its id (hex).
    pub id: String,
    /// Its class.
    pub class: String,
    /// Its name, if it has one.
    pub name: String,
    /// The job that owns it (`<node>/<job>`).
    pub job: String,
    /// `PENDING` (not placed yet), `ALIVE` or `DEAD`.
    pub state: String,
    /// The node hosting it (empty while pending).
    pub node: String,
    /// Restarts used.
    pub restarts: u32,
    /// Calls submitted and not yet started.
    pub pending_calls: u64,
    /// Calls submitted in all.
    pub calls: u64,
    /// Why it died.
    pub death: String,
    /// Whether it outlives its job (detached).
    pub detached: bool,
}

/// One job.
#[derive(
    rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Serialize, Deserialize, Debug, Clone, PartialEq, Default,
)]
pub struct JobRow {
    /// Its id: `job-000001` for a submitted job, `<node>/<n>` for one
    /// attached to a client.
    pub id: String,
    /// Its label (the component's file name).
    pub name: String,
    /// `RUNNING`, `SUCCEEDED`, `FAILED` or `STOPPED`.
    pub status: String,
    /// Why it failed or stopped.
    pub message: String,
    /// The node running it.
    pub node: String,
    /// Whether it was submitted (detached; its output is kept in a log).
    pub submitted: bool,
    /// Started, milliseconds since the Unix epoch.
    pub start_ms: u64,
    /// Ended (0 while running).
    pub end_ms: u64,
}

/// One placement group.
#[derive(
    rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Serialize, Deserialize, Debug, Clone, PartialEq, Default,
)]
pub struct GroupRow {
    /// Its id.
    pub id: u64,
    /// Each bundle: the node holding it and its resources.
    pub bundles: Vec<(String, Vec<(String, f64)>)>,
}

/// One object.
#[derive(
    rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Serialize, Deserialize, Debug, Clone, PartialEq, Default,
)]
pub struct ObjectRow {
    /// Its id (hex).
    pub id: String,
    /// The job it belongs to.
    pub job: u32,
    /// Bytes.
    pub size: u64,
    /// References held.
    pub refs: u32,
    /// `PENDING`, `IN_MEMORY`, `SPILLED`, `FAILED` or `ON_ANOTHER_NODE` (ready
    /// in the store of the node that made it; its size is the object's).
    pub state: String,
}

/// A node's traffic.
#[derive(
    rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Serialize, Deserialize, Debug, Clone, PartialEq, Default,
)]
pub struct NetState {
    /// UDP bytes sent over its cluster connections (open ones).
    pub bytes_sent: u64,
    /// UDP bytes received.
    pub bytes_received: u64,
    /// Head only: heartbeats received from workers since it started.
    pub heartbeats: u64,
    /// Head only, for a worker: milliseconds since its last heartbeat.
    pub last_heartbeat_ms: u64,
}

/// A progress document a job published (`cluster.publish-status`).
#[derive(
    rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Serialize, Deserialize, Debug, Clone, PartialEq, Default,
)]
pub struct PublishedRow {
    /// The job (`<node>/<job>` or a submitted job's id).
    pub job: String,
    /// Its topic: `tune/<experiment>`, `train/<run>`, or the job's own.
    pub topic: String,
    /// When it was last published, milliseconds since the Unix epoch.
    pub updated_ms: u64,
    /// The document (JSON, as the job wrote it).
    pub body: String,
}
