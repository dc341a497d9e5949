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
    /// Task: an instance runs at most this many tasks of its function
    /// before it is dropped instead of kept for the next (Ray's
    /// `max_calls`); 0: no limit.
    pub max_calls: u32,
    /// Task: a generator pauses while this many of its items wait unread
    /// (Ray's `_generator_backpressure_num_objects`); 0: no bound.
    pub generator_backpressure: u32,
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
    /// Environment variables its instance sees over the job's granted ones
    /// (a name in both takes this value): Ray's `runtime_env` `env_vars`.
    /// Checked by [`Options::check_env`].
    pub env: Vec<(String, String)>,
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

    /// Environment variables `over` set on top of `under`: `under`'s
    /// without the names `over` sets, then `over`'s — a task's own over its
    /// job's grants, a submission's over its submitter's.
    pub fn env_over(under: &[(String, String)], mut over: Vec<(String, String)>) -> Vec<(String, String)> {
        if under.is_empty() {
            return over;
        }
        let mut env: Vec<_> = under.iter().filter(|(name, _)| !over.iter().any(|(n, _)| n == name)).cloned().collect();
        env.append(&mut over);
        env
    }

    /// Checks a task's or actor's own environment variables: at most
    /// [`MAX_TASK_ENV_VARS`](crate::limits::MAX_TASK_ENV_VARS) of them and
    /// [`MAX_TASK_ENV_BYTES`](crate::limits::MAX_TASK_ENV_BYTES) in all,
    /// each name non-empty and without `=` or NUL, each value without NUL,
    /// no name twice.
    pub fn check_env(env: &[(String, String)]) -> Result<(), Error> {
        use crate::limits::{MAX_TASK_ENV_BYTES, MAX_TASK_ENV_VARS};
        let bad = |why: String| Err(Error::InvalidArgument(format!("env vars: {why}")));
        if env.len() > MAX_TASK_ENV_VARS {
            return bad(format!("{} of them, over the limit of {MAX_TASK_ENV_VARS}", env.len()));
        }
        let bytes: usize = env.iter().map(|(k, v)| k.len() + v.len()).sum();
        if bytes > MAX_TASK_ENV_BYTES {
            return bad(format!("{bytes} bytes of names and values, over the limit of {MAX_TASK_ENV_BYTES}"));
        }
        for (i, (name, value)) in env.iter().enumerate() {
            if name.is_empty() || name.contains(['=', '\0']) {
                return bad(format!("{name:?} is not a variable name (empty, or with '=' or NUL)"));
            }
            if value.contains('\0') {
                return bad(format!("the value of {name} contains NUL"));
            }
            if env[..i].iter().any(|(earlier, _)| earlier == name) {
                return bad(format!("{name} is set twice"));
            }
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::Options;
    use crate::limits::{MAX_TASK_ENV_BYTES, MAX_TASK_ENV_VARS};

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn variables_set_over_others_replace_them_by_name() {
        let under = env(&[("A", "1"), ("B", "2")]);
        assert_eq!(
            Options::env_over(&under, env(&[("B", "x"), ("C", "3")])),
            env(&[("A", "1"), ("B", "x"), ("C", "3")])
        );
        assert_eq!(Options::env_over(&[], env(&[("C", "3")])), env(&[("C", "3")]));
        assert_eq!(Options::env_over(&under, Vec::new()), under);
    }

    #[test]
    fn a_tasks_env_vars_are_checked_by_name_count_and_size() {
        assert!(Options::check_env(&[]).is_ok());
        assert!(Options::check_env(&env(&[("A", "1"), ("B_2", "x=y"), ("C", "")])).is_ok());
        let err = |e: Vec<(String, String)>| Options::check_env(&e).unwrap_err().to_string();
        assert!(err(env(&[("", "1")])).contains("not a variable name"));
        assert!(err(env(&[("A=B", "1")])).contains("not a variable name"));
        assert!(err(env(&[("A\0", "1")])).contains("not a variable name"));
        assert!(err(env(&[("A", "1\0")])).contains("contains NUL"));
        assert!(err(env(&[("A", "1"), ("A", "2")])).contains("A is set twice"));
        let many: Vec<_> = (0..=MAX_TASK_ENV_VARS).map(|i| (format!("V{i}"), String::new())).collect();
        assert!(err(many).contains("over the limit of 64"));
        let big = vec![("BIG".to_string(), "x".repeat(MAX_TASK_ENV_BYTES))];
        assert!(err(big).contains("bytes of names and values"));
    }
}
