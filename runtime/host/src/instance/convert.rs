//! Between the WIT types a guest hands over and wray's own, with the checks
//! every value from a guest goes through (names, sizes, options, bundles):
//! a failed check is a guest-visible `invalid-argument`, never a trap.

use crate::bindings::wray::runtime::types;
use std::time::Duration;
use wray_core::{ActorId, Error, ObjectId, Options, Resources, TaskId, limits};

pub(super) fn from_wit_id(id: types::ObjectId) -> ObjectId {
    ObjectId { task: TaskId::from_halves(id.task_hi, id.task_lo), index: id.index }
}

pub(super) fn to_wit_id(id: ObjectId) -> types::ObjectId {
    let (task_hi, task_lo) = id.task.halves();
    types::ObjectId { task_hi, task_lo, index: id.index }
}

pub(super) fn from_wit_actor(a: types::ActorId) -> ActorId {
    ActorId::from_halves(a.hi, a.lo)
}

pub(super) fn to_wit_actor(a: ActorId) -> types::ActorId {
    let (hi, lo) = a.halves();
    types::ActorId { hi, lo }
}

pub(crate) fn to_wit_error(e: Error) -> types::Error {
    match e {
        Error::TaskFailed { function, message } => types::Error::TaskFailed(types::TaskFailure { function, message }),
        Error::ActorDied(m) => types::Error::ActorDied(m),
        Error::ObjectLost(m) => types::Error::ObjectLost(m),
        Error::Timeout => types::Error::Timeout,
        Error::Cancelled => types::Error::Cancelled,
        Error::InvalidArgument(m) => types::Error::InvalidArgument(m),
        Error::StoreFull(m) => types::Error::StoreFull(m),
    }
}

pub(super) fn resources_to_wit(r: Resources) -> Vec<types::ResourceAmount> {
    r.iter().map(|(name, amount)| types::ResourceAmount { name: name.to_string(), amount }).collect()
}

/// Checks a placement group's bundles: each a non-empty set of valid
/// amounts, at most [`limits::MAX_BUNDLES`] of them.
pub(super) fn bundles_from_wit(bundles: Vec<Vec<types::ResourceAmount>>) -> Result<Vec<Resources>, Error> {
    if bundles.is_empty() || bundles.len() > limits::MAX_BUNDLES {
        return Err(Error::InvalidArgument(format!("a placement group has 1 to {} bundles", limits::MAX_BUNDLES)));
    }
    let mut out = Vec::with_capacity(bundles.len());
    for b in bundles {
        let mut r = Resources::new();
        for a in b {
            check_name("resource name", &a.name)?;
            let amount = Options::check_amount(&format!("resource {:?}", a.name), a.amount)?;
            r.set(&a.name, r.get(&a.name) + amount);
        }
        if r.is_empty() {
            return Err(Error::InvalidArgument("a bundle must reserve some resource".into()));
        }
        out.push(r);
    }
    Ok(out)
}

/// Converts and checks the options a guest passed.
pub(super) fn options_from_wit(o: types::Options, is_actor: bool) -> Result<Options, Error> {
    let mut resources = Resources::new();
    // Ray's defaults: a task holds one CPU while it runs; an actor holds
    // none between calls (so idle actors do not starve tasks).
    let default_cpus = if is_actor { 0.0 } else { 1.0 };
    let cpus = Options::check_amount("num_cpus", o.num_cpus.unwrap_or(default_cpus))?;
    resources.set(wray_core::CPU, cpus);
    for r in o.resources {
        check_name("resource name", &r.name)?;
        let amount = Options::check_amount(&format!("resource {:?}", r.name), r.amount)?;
        resources.set(&r.name, resources.get(&r.name) + amount);
    }
    if let Some(name) = &o.name {
        check_name("actor name", name)?;
    }
    if o.max_concurrency == Some(0) {
        return Err(Error::InvalidArgument("max_concurrency must be at least 1".into()));
    }
    if o.max_calls == Some(0) {
        return Err(Error::InvalidArgument("max_calls must be at least 1".into()));
    }
    if is_actor && o.max_calls.is_some() {
        return Err(Error::InvalidArgument("max_calls is for remote functions, not actors".into()));
    }
    if o.generator_backpressure == Some(0) {
        return Err(Error::InvalidArgument("generator_backpressure must be at least 1".into()));
    }
    if is_actor && o.generator_backpressure.is_some() {
        return Err(Error::InvalidArgument(
            "generator_backpressure is for remote functions and method calls (a handle's with_generator_backpressure), not for an actor"
                .into(),
        ));
    }
    if o.memory_limit == Some(0) {
        return Err(Error::InvalidArgument("memory_limit must be more than 0 bytes".into()));
    }
    if o.detached && !(is_actor && o.name.is_some()) {
        return Err(Error::InvalidArgument("only a named actor can be detached".into()));
    }
    let placement = o.placement.map(|b| (b.group, b.index));
    if let Some((group, index)) = placement {
        resources = resources.in_bundle(group, index);
    }
    let scheduling = match o.scheduling {
        types::SchedulingStrategy::Default => wray_core::Scheduling::Default,
        types::SchedulingStrategy::Spread => wray_core::Scheduling::Spread,
        types::SchedulingStrategy::NodeAffinity(a) => {
            check_name("a node affinity's node id", &a.node_id)?;
            wray_core::Scheduling::NodeAffinity { node: a.node_id, soft: a.soft }
        }
    };
    if placement.is_some() && scheduling != wray_core::Scheduling::Default {
        return Err(Error::InvalidArgument(
            "a task or actor in a placement group goes where its bundle is: leave the scheduling strategy default"
                .into(),
        ));
    }
    Options::check_env(&o.env)?;
    Ok(Options {
        env: o.env,
        resources,
        placement,
        detached: o.detached,
        memory_limit: o.memory_limit,
        time_limit: o.time_limit_ms.map(Duration::from_millis),
        max_retries: o.max_retries.unwrap_or(wray_core::DEFAULT_MAX_RETRIES),
        retry_exceptions: o.retry_exceptions,
        reuse_instance: o.reuse_instance,
        max_calls: o.max_calls.unwrap_or(0),
        generator_backpressure: o.generator_backpressure.unwrap_or(0),
        name: o.name,
        max_concurrency: o.max_concurrency.unwrap_or(1),
        max_restarts: o.max_restarts.unwrap_or(0),
        max_task_retries: o.max_task_retries.unwrap_or(0),
        checkpoint_every: o.checkpoint_every.unwrap_or(0),
        scheduling,
    })
}

pub(super) fn check_name(what: &str, name: &str) -> Result<(), Error> {
    if name.is_empty() || name.len() > limits::MAX_NAME_LEN {
        return Err(Error::InvalidArgument(format!("{what} must be 1 to {} bytes long", limits::MAX_NAME_LEN)));
    }
    Ok(())
}

pub(super) fn check_size(len: usize) -> Result<(), Error> {
    if len > limits::MAX_OBJECT_SIZE {
        return Err(Error::InvalidArgument(format!(
            "a value of {len} bytes exceeds the object size limit of {} bytes",
            limits::MAX_OBJECT_SIZE
        )));
    }
    Ok(())
}

pub(super) fn check_value(v: &types::Value) -> Result<(), Error> {
    check_size(v.data.len())?;
    if v.refs.len() > limits::MAX_NESTED_REFS {
        return Err(Error::InvalidArgument(format!(
            "a value nesting {} refs exceeds the limit of {}",
            v.refs.len(),
            limits::MAX_NESTED_REFS
        )));
    }
    Ok(())
}
