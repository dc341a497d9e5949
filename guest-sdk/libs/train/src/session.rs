//! The worker's side: what the user's training loop can ask while it runs
//! inside a trainer's worker actor — its context, its dataset shards, the
//! checkpoint to resume from, the group's collectives — and `report`.

use crate::checkpoint::Checkpoint;
use crate::collective::{Group, ReduceOp};
use crate::controller::Controller;
use crate::{Metrics, invalid};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::BTreeMap;
use wray_data::Dataset;
use wray_guest_core::{ActorHandle, Error, ObjectRef};

/// Where a worker runs within its group (Ray's `train.get_context()`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainContext {
    /// This worker's rank, `0..world_size`.
    pub world_rank: usize,
    /// How many workers the group has.
    pub world_size: usize,
    /// This worker's rank among the group's workers on its node.
    pub local_rank: usize,
    /// How many of the group's workers share its node.
    pub local_world_size: usize,
    /// The index of its node among the group's nodes (in rank order).
    pub node_rank: usize,
    /// Its node's id.
    pub node_id: String,
    /// The run's name ([`RunConfig::name`](crate::RunConfig)).
    pub experiment_name: String,
    /// 0 on the first attempt, then one more after each restart of the group.
    pub attempt: u32,
}

/// What a worker is given when its group starts.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Setup {
    pub context: TrainContext,
    pub controller: ActorHandle<Controller>,
    pub datasets: BTreeMap<String, Dataset>,
    pub checkpoint: Option<ObjectRef<Checkpoint>>,
    pub group: Group,
}

struct Session {
    context: TrainContext,
    controller: ActorHandle<Controller>,
    datasets: BTreeMap<String, Dataset>,
    checkpoint: Option<ObjectRef<Checkpoint>>,
    group: Group,
    reports: u64,
}

thread_local! {
    static SESSION: RefCell<Option<Session>> = const { RefCell::new(None) };
}

pub(crate) fn install(setup: Setup) {
    SESSION.with(|s| {
        *s.borrow_mut() = Some(Session {
            context: setup.context,
            controller: setup.controller,
            datasets: setup.datasets,
            checkpoint: setup.checkpoint,
            group: setup.group,
            reports: 0,
        })
    });
}

fn with<R>(what: &str, f: impl FnOnce(&mut Session) -> Result<R, Error>) -> Result<R, Error> {
    SESSION.with(|s| match s.borrow_mut().as_mut() {
        Some(session) => f(session),
        None => Err(invalid(format!(
            "wray::train::{what} is only available inside a training loop run by a trainer's workers"
        ))),
    })
}

/// This worker's [`TrainContext`].
pub fn get_context() -> Result<TrainContext, Error> {
    with("get_context", |s| Ok(s.context.clone()))
}

/// This worker's shard of the dataset the trainer was given under `name`
/// (Ray's `train.get_dataset_shard`): shards have equal row counts (±1), so
/// every worker takes the same number of steps per epoch.
pub fn get_dataset_shard(name: &str) -> Result<Dataset, Error> {
    with("get_dataset_shard", |s| {
        s.datasets.get(name).cloned().ok_or_else(|| {
            let known: Vec<&String> = s.datasets.keys().collect();
            invalid(format!("get_dataset_shard: the trainer has no dataset named '{name}' (it has {known:?})"))
        })
    })
}

/// The checkpoint to resume from: the latest one reported before the group
/// was restarted after a failure, or the trainer's `resume_from_checkpoint`
/// (Ray's `train.get_checkpoint()`). `None` on a fresh start.
pub fn get_checkpoint() -> Result<Option<Checkpoint>, Error> {
    let r = with("get_checkpoint", |s| Ok(s.checkpoint.clone()))?;
    r.map(|r| wray_guest_core::get(&r)).transpose()
}

/// Reports one iteration's metrics (and, optionally, a checkpoint) from
/// inside the training loop (Ray's `train.report`). The call returns once
/// the trainer has recorded it. Every worker should report as often as the
/// others: an iteration's result is complete when every rank has reported
/// it; the metrics shown and returned are rank 0's, the checkpoint the
/// lowest rank's that sent one.
pub fn report(metrics: Metrics, checkpoint: Option<Checkpoint>) -> Result<(), Error> {
    with("report", |s| {
        let checkpoint = checkpoint.map(|c| wray_guest_core::try_put(&c)).transpose()?;
        s.reports += 1;
        wray_guest_core::get(&s.controller.report(s.context.world_rank as u32, s.reports, metrics, checkpoint))
    })
}

/// Runs `f` on this worker's collective group (all workers of the trainer).
pub fn with_group<R>(f: impl FnOnce(&mut Group) -> Result<R, Error>) -> Result<R, Error> {
    with("with_group", |s| f(&mut s.group))
}

/// [`Group::allreduce`] over the trainer's workers.
pub fn allreduce(data: &mut [f32], op: ReduceOp) -> Result<(), Error> {
    with_group(|g| g.allreduce(data, op))
}

/// [`Group::barrier`] over the trainer's workers.
pub fn barrier() -> Result<(), Error> {
    with_group(|g| g.barrier())
}

/// [`Group::broadcast`] over the trainer's workers.
pub fn broadcast(data: &mut Vec<f32>, root: usize) -> Result<(), Error> {
    with_group(|g| g.broadcast(data, root))
}
