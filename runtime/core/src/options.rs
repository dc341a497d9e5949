//! Options a task or actor is submitted with, after validation.

use crate::{CPU, Error, Resources};
use std::time::Duration;

/// Validated per-task / per-actor options. Limits left `None` take the job's
/// defaults when the task is placed.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// What the task holds while it runs.
    pub resources: Resources,
    /// Linear-memory limit of the instance.
    pub memory_limit: Option<u64>,
    /// Execution-time limit of one run.
    pub time_limit: Option<Duration>,
    /// Retries after a failure.
    pub max_retries: u32,
    /// Retry guest errors and panics too.
    pub retry_exceptions: bool,
    /// Task: may run in an instance an earlier task of its job succeeded
    /// in, and leave its own for a later one (WIT `reuse-instance`).
    pub reuse_instance: bool,
    /// Actor name.
    pub name: Option<String>,
    /// Actor: calls queued and in flight at once.
    pub max_concurrency: u32,
    /// Actor: restarts after a crash.
    pub max_restarts: u32,
    /// Actor: re-runs of a call its crash interrupted, on the restarted
    /// actor.
    pub max_task_retries: u32,
    /// The placement-group bundle to run in: (group, index). `resources`
    /// is already renamed to the bundle's ([`Resources::in_bundle`]).
    pub placement: Option<(u64, u32)>,
    /// Actor: outlives its job, until killed (needs a name).
    pub detached: bool,
    /// Actor: snapshot its memory after every this many calls (0: never).
    pub checkpoint_every: u32,
    /// Which node, among those that could run it, it goes to.
    pub scheduling: Scheduling,
}

/// Which node a task or actor goes to, among those that could run it: Ray's
/// `scheduling_strategy` (a placement group's bundle is the third kind, kept
/// in [`Options::placement`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Scheduling {
    /// The submitting node while it has room; else the node with the
    /// largest share of its CPUs free (spillback). Keeps a job's work next
    /// to its objects.
    #[default]
    Default,
    /// Every task or actor asks the head, which takes the nodes with room
    /// in turn, the submitting one included: replicas and workers that
    /// should not share a node's failure or its CPUs.
    Spread,
    /// Ray's node affinity: the node with this id (`runtime_context`'s
    /// `node_id`). Hard (`soft` false): there and nowhere else, queued
    /// until it has room; a node that is not in the cluster, or could
    /// never meet the demand, fails the task or actor. Soft: there while
    /// it has room, else wherever the default would put it.
    NodeAffinity {
        /// The node's id.
        node: String,
        /// Elsewhere when the node has no room (or is gone), rather than
        /// queued there (or failed).
        soft: bool,
    },
}

impl Scheduling {
    /// The node a hard node affinity pins to.
    pub fn pinned_to(&self) -> Option<&str> {
        match self {
            Scheduling::NodeAffinity { node, soft: false } => Some(node),
            _ => None,
        }
    }
}

/// Ray's default for tasks: a failed run is retried three times when the
/// failure was the system's, not the task's.
pub const DEFAULT_MAX_RETRIES: u32 = 3;

impl Options {
    /// Checks a CPU demand the guest supplied: finite and non-negative.
    pub fn check_amount(what: &str, amount: f64) -> Result<f64, Error> {
        if amount.is_finite() && amount >= 0.0 {
            Ok(amount)
        } else {
            Err(Error::InvalidArgument(format!("{what} must be a finite, non-negative number, got {amount}")))
        }
    }

    /// The CPU demand (1 for tasks unless set, as in Ray).
    pub fn num_cpus(&self) -> f64 {
        self.resources.get(CPU)
    }
}

/// How a placement group's bundles spread over nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// As few nodes as possible, more if needed.
    Pack,
    /// As many nodes as possible, fewer if needed.
    Spread,
    /// All on one node, or fail.
    StrictPack,
    /// Each on a different node, or fail.
    StrictSpread,
}
