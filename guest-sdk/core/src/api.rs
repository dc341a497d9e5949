use crate::bindings::wray::runtime::{cluster, tasks};
use crate::{Error, ObjectRef};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::time::Duration;

fn millis(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

/// Waits for the object and returns its value — Ray's `ray.get`.
///
/// While waiting, the calling task gives its CPU slot back to the runtime,
/// so a task that waits on its own sub-tasks never deadlocks a node.
///
/// ```no_run
/// #[wray::remote]
/// fn square(x: u64) -> u64 { x * x }
///
/// # fn main() -> Result<(), wray::Error> {
/// let r = square::remote(7);
/// assert_eq!(wray::get(&r)?, 49);
/// # Ok(()) }
/// ```
pub fn get<T: DeserializeOwned + 'static>(r: &ObjectRef<T>) -> Result<T, Error> {
    get_impl(r, None)
}

/// Like [`get`], but gives up with [`Error::Timeout`] after `timeout`.
pub fn get_timeout<T: DeserializeOwned + 'static>(r: &ObjectRef<T>, timeout: Duration) -> Result<T, Error> {
    get_impl(r, Some(millis(timeout)))
}

fn get_impl<T: DeserializeOwned + 'static>(r: &ObjectRef<T>, timeout_ms: Option<u64>) -> Result<T, Error> {
    if let Some(value) = r.handle.take_value() {
        return crate::value::decode(&value);
    }
    crate::value::decode(&tasks::get_one(&r.handle, timeout_ms)?)
}

/// Waits for all objects and returns their values in order. Fails with the
/// first error among them.
pub fn get_all<T: DeserializeOwned + 'static>(refs: &[ObjectRef<T>]) -> Result<Vec<T>, Error> {
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    // Values handed out with their refs (a generator's small items) are
    // decoded here; the host is asked for the others only.
    let mut values: Vec<Option<Vec<u8>>> = refs.iter().map(|r| r.handle.take_value()).collect();
    let missing: Vec<_> = refs.iter().zip(&values).filter(|(_, v)| v.is_none()).map(|(r, _)| &**r.handle).collect();
    if !missing.is_empty() {
        let fetched = tasks::get(&missing, None)?;
        for (slot, v) in values.iter_mut().filter(|v| v.is_none()).zip(fetched) {
            *slot = Some(v);
        }
    }
    values
        .into_iter()
        .map(|v| v.ok_or_else(|| Error::InvalidArgument("host returned too few values".into())))
        .map(|v| v.and_then(|v| crate::value::decode(&v)))
        .collect()
}

/// Waits until `num_returns` of `refs` are ready, or `timeout` passes — Ray's
/// `ray.wait`. Returns `(ready, pending)`, each in the order of `refs`;
/// `ready` holds at most `num_returns` refs. A ref whose task failed counts as
/// ready (its `get` returns the error).
///
/// ```no_run
/// # #[wray::remote] fn work(i: u32) -> u32 { i }
/// # fn main() -> Result<(), wray::Error> {
/// let mut pending: Vec<_> = (0..4).map(work::remote).collect();
/// while !pending.is_empty() {
///     let (ready, rest) = wray::wait(&pending, 1, None);
///     for r in &ready {
///         println!("finished: {}", wray::get(r)?);
///     }
///     pending = rest;
/// }
/// # Ok(()) }
/// ```
pub fn wait<T>(
    refs: &[ObjectRef<T>],
    num_returns: usize,
    timeout: Option<Duration>,
) -> (Vec<ObjectRef<T>>, Vec<ObjectRef<T>>) {
    if refs.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let wanted = num_returns.min(refs.len());
    // Refs an earlier `wait` saw ready are ready still; the host is asked
    // about the others only, and only if those known do not suffice.
    // In the usual `wait(pending, 1)` loop this runs once per ready ref over
    // every pending one, so the common case (enough known) is one pass that
    // splits the refs without asking or allocating more than the answer.
    let known = refs.iter().filter(|r| r.handle.known_ready()).take(wanted).count();
    if known < wanted {
        let unknown: Vec<&ObjectRef<T>> = refs.iter().filter(|r| !r.handle.known_ready()).collect();
        let handles: Vec<_> = unknown.iter().map(|r| &**r.handle).collect();
        let need = u32::try_from(wanted - known).unwrap_or(u32::MAX);
        let answer = match tasks::wait(&handles, need, timeout.map(millis)) {
            Ok(answer) => answer,
            Err(e) => panic!("wray::wait: {}", Error::from(e)),
        };
        for (r, is_ready) in unknown.into_iter().zip(answer) {
            if is_ready {
                r.handle.mark_ready();
            }
        }
    }
    let mut ready = Vec::with_capacity(wanted);
    let mut pending = Vec::with_capacity(refs.len().saturating_sub(wanted));
    let mut rest = refs.iter();
    while ready.len() < num_returns {
        let Some(r) = rest.next() else { break };
        if r.handle.known_ready() {
            ready.push(r.clone());
        } else {
            pending.push(r.clone());
        }
    }
    // Once enough are ready the rest is pending as it stands: copied
    // without looking at each (the loop's hot path, a call per ready ref).
    pending.extend(rest.cloned());
    (ready, pending)
}

/// Stores `value` in the object store and returns a ref to it — Ray's
/// `ray.put`. Numeric vectors (`Vec<f32>`, `Vec<u8>`, ...) are copied in one
/// `memcpy`.
///
/// Panics (failing the current task with the message) if the runtime refuses
/// the object, e.g. because it exceeds the object size limit.
pub fn put<T: Serialize + 'static>(value: &T) -> ObjectRef<T> {
    match try_put(value) {
        Ok(r) => r,
        Err(e) => panic!("wray::put: {e}"),
    }
}

/// Like [`put`], returning the runtime's refusal as an error.
pub fn try_put<T: Serialize + 'static>(value: &T) -> Result<ObjectRef<T>, Error> {
    if let Some(bytes) = wray_codec::buffer_bytes(value) {
        // A numeric buffer is its own encoding: hand the host a view of it.
        return Ok(ObjectRef::from_handle(tasks::put_buffer(bytes)?));
    }
    let v = crate::value::encode(value);
    Ok(ObjectRef::from_handle(tasks::put(v)?))
}

/// Cancels the task that produces `r`, if it has not finished: a queued task
/// never runs, a running one is interrupted. `get` then returns
/// [`Error::Cancelled`]. Cancelled tasks are not retried.
pub fn cancel<T>(r: &ObjectRef<T>) {
    // Cancelling a finished or unknown task is not an error worth surfacing,
    // as in Ray.
    let _ = tasks::cancel(&r.handle);
}

fn to_map(list: Vec<crate::bindings::wray::runtime::types::ResourceAmount>) -> BTreeMap<String, f64> {
    list.into_iter().map(|r| (r.name, r.amount)).collect()
}

/// Bytes of a published progress document at most (the host refuses
/// larger ones with `InvalidArgument`).
pub const MAX_STATUS_BYTES: usize = 64 << 10;

/// Publishes this job's progress for the dashboard (its Experiments view)
/// and `wray list experiments`: `json` replaces what the job published under
/// `topic` before. Tune and Train publish their experiments and runs this
/// way (`tune/<name>`, `train/<name>`); a job may publish its own. A topic is
/// 1 to 128 bytes, a document at most [`MAX_STATUS_BYTES`]; the node keeps
/// the 32 most recent topics, after the job has ended too.
///
/// ```no_run
/// wray::publish_status("etl/progress", r#"{"rows": 1200, "of": 5000}"#)?;
/// # Ok::<(), wray::Error>(())
/// ```
pub fn publish_status(topic: &str, json: &str) -> Result<(), Error> {
    Ok(cluster::publish_status(topic, json)?)
}

/// Total resources of the cluster, e.g. `{"CPU": 8.0, "memory": ...}`.
pub fn cluster_resources() -> BTreeMap<String, f64> {
    to_map(cluster::cluster_resources())
}

/// Resources not held by running tasks and actors right now.
pub fn available_resources() -> BTreeMap<String, f64> {
    to_map(cluster::available_resources())
}

/// One node of the cluster, as [`nodes`] lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeInfo {
    /// Its id (what [`RuntimeContext::node_id`] and placement groups name).
    pub node_id: String,
    /// Where it is reached (`IP:port`): a worker's as the head sees it, the
    /// head's where it listens; empty on an embedded runtime.
    pub address: String,
    /// Whether it answers: a node that stopped is listed, not alive, until
    /// the head forgets it.
    pub alive: bool,
    /// Whether it is the head (an embedded runtime is its own).
    pub is_head: bool,
    /// All its resources, e.g. `{"CPU": 4.0, "memory": ...}`.
    pub resources: BTreeMap<String, f64>,
    /// Its resources not held by running tasks and actors right now.
    pub available: BTreeMap<String, f64>,
}

/// Every node of the cluster, the head first — Ray's `ray.nodes()`. On an
/// embedded runtime (`wray run` without `--address`) that is one node; on a
/// worker the head is asked. Fails with [`Error::InvalidArgument`] when the
/// head cannot be reached.
///
/// ```no_run
/// for node in wray::nodes()? {
///     println!("{} {} alive={} CPUs={}", node.node_id, node.address, node.alive, node.resources["CPU"]);
/// }
/// # Ok::<(), wray::Error>(())
/// ```
pub fn nodes() -> Result<Vec<NodeInfo>, Error> {
    Ok(cluster::nodes()?
        .into_iter()
        .map(|n| NodeInfo {
            node_id: n.node_id,
            address: n.address,
            alive: n.alive,
            is_head: n.is_head,
            resources: to_map(n.resources),
            available: to_map(n.available),
        })
        .collect())
}

/// Where the caller runs.
#[derive(Clone, Debug)]
pub struct RuntimeContext {
    /// The job's number within the runtime.
    pub job_id: u32,
    /// The node the caller runs on.
    pub node_id: String,
    /// The current task's id in hex; empty in the driver.
    pub task_id: String,
    /// Set when the caller is an actor method.
    pub actor_id: Option<String>,
    /// The actor's name, when the caller is a method of an actor created
    /// with one (`.name("n")`; Ray's `get_actor_name()`).
    pub actor_name: Option<String>,
    /// What the caller holds (Ray's `get_assigned_resources()`): a task's
    /// demand while it runs (`{"CPU": 1.0}` by default), an actor's for its
    /// life, nothing in the driver. In a placement group, the bundle's
    /// resource names (`CPU_group_0_<id>`, ...).
    pub assigned_resources: BTreeMap<String, f64>,
}

/// Describes where the caller runs.
pub fn runtime_context() -> RuntimeContext {
    let c = cluster::context();
    RuntimeContext {
        job_id: c.job_id,
        node_id: c.node_id,
        task_id: c.task_id,
        actor_id: c.actor_id.map(|a| format!("{:016x}{:016x}", a.hi, a.lo)),
        actor_name: c.actor_name,
        assigned_resources: to_map(c.resources),
    }
}
