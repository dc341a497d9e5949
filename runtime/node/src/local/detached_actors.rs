//! Detached actors: named actors that outlive the job creating them.
//!
//! The head keeps them (a lone node keeps its own): each lives in a job of
//! its component's that never ends, is found by name from any job of the
//! cluster, and is recorded in the head's sled database. A head restarted
//! on its data directory re-creates every recorded actor by running its
//! constructor again with the recorded arguments: the actor is reachable
//! under the same name and id, with its state rebuilt from the constructor
//! — or, for an actor taking snapshots (`checkpoint_every`), from its last
//! snapshot, which the head writes to the same database (flushed) before
//! the result of the call it follows is released.

use crate::cluster::link::Link;
use crate::cluster::wire::ask_for;
use crate::cluster::wire::{pairs, resources};
use crate::local::job::JobState;
use crate::persist::{load_snapshot, persist_snapshot, remove_snapshot};
use crate::{JobConfig, NodeInner, lock};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use wray_core::{ActorId, Error, JobId, Options, TaskId};
use wray_host::{ArgSpec, Caller, Checkpoint, Delta, Grants, Value};
use wray_net::proto::{self, DetachedActor, Event, Request};

/// The detached actors this node keeps.
#[derive(Default)]
pub(crate) struct Detached {
    by_name: HashMap<String, ActorId>,
    /// Each actor's name, class and job.
    actors: HashMap<ActorId, (String, String, JobId)>,
    /// One never-ending job per component.
    jobs: HashMap<String, Arc<JobState>>,
    /// The records (the head's sled tree).
    records: Option<sled::Tree>,
    /// Their snapshots (another tree of the same database).
    snapshots: Option<sled::Tree>,
}

impl NodeInner {
    /// Creates a detached actor for a job of this node (through the head
    /// on a worker). Returns its id and where upcalls about it go.
    pub(crate) async fn create_detached(
        &self,
        job: &JobState,
        caller: &Caller,
        seq: u64,
        class: String,
        args: &[ArgSpec],
        options: &Options,
    ) -> Result<(ActorId, (String, u32)), Error> {
        let name =
            options.name.clone().ok_or_else(|| Error::InvalidArgument("a detached actor needs a name".into()))?;
        let mut values = Vec::with_capacity(args.len());
        for a in args {
            match a {
                ArgSpec::Value(v) if v.refs.is_empty() => values.push(v.data.to_vec()),
                _ => {
                    return Err(Error::InvalidArgument(
                        "a detached actor's constructor arguments must be plain values (no object refs)".into(),
                    ));
                }
            }
        }
        let task = caller.task.child(seq);
        let id = ActorId::created_by(task);
        let (task_hi, task_lo) = task.halves();
        let record = DetachedActor {
            name,
            class,
            component_name: job.component.name().to_string(),
            component_hash: job.component.hash().to_string(),
            actor_hi: (id.0 >> 64) as u64,
            actor_lo: id.0 as u64,
            task_hi,
            task_lo,
            args: values,
            resources: pairs(&options.resources),
            memory_limit: options.memory_limit,
            time_limit_ms: options.time_limit.map(|t| t.as_millis() as u64),
            max_concurrency: options.max_concurrency,
            max_restarts: options.max_restarts,
            max_task_retries: options.max_task_retries,
            checkpoint_every: options.checkpoint_every,
            env: options.env.clone(),
        };
        if let Some(Link::Worker(w)) = self.link.get() {
            let job = ask_for(&w.head(), &Request::CreateDetached(record), |answer| match answer {
                Event::Actor { job, .. } => Ok(job),
                other => Err(other.into()),
            })
            .await;
            return match job {
                Ok(job) => Ok((id, (w.head_id(), job))),
                Err(e) => Err(Error::InvalidArgument(e.message("the head"))),
            };
        }
        let detached_job =
            self.keep_detached(record, true, Some(job.component.clone())).map_err(Error::InvalidArgument)?;
        Ok((id, (self.id.clone(), detached_job)))
    }

    /// Starts a detached actor from its record (and, with `write`, keeps
    /// the record). Returns the id of the job it lives in.
    pub(crate) fn keep_detached(
        &self,
        record: DetachedActor,
        write: bool,
        component: Option<wray_host::JobComponent>,
    ) -> Result<u32, String> {
        let id = ActorId((u128::from(record.actor_hi) << 64) | u128::from(record.actor_lo));
        {
            let detached = lock(&self.detached);
            if let Some(existing) = detached.by_name.get(&record.name)
                && let Some((_, _, job)) = detached.actors.get(existing)
                && self
                    .job(*job)
                    .is_ok_and(|j| lock(&j.actors).get(existing).is_some_and(|a| a.dead_reason().is_none()))
            {
                return Err(format!("a detached actor named {:?} already exists", record.name));
            }
        }
        let component = match component.or_else(|| self.component(&record.component_hash)) {
            Some(c) => c,
            None => {
                let bytes = match self.link.get() {
                    Some(Link::Head(peers)) => peers.stored_component(&record.component_hash)?,
                    _ => return Err(format!("component {} is not loaded here", record.component_hash)),
                };
                self.load_component(&record.component_name, &bytes).map_err(|e| e.to_string())?
            }
        };
        let job = {
            let mut detached = lock(&self.detached);
            match detached.jobs.get(&record.component_hash) {
                Some(j) => j.clone(),
                None => {
                    // Output of detached actors goes to the node's log.
                    let config = JobConfig { grants: Grants::default(), ..JobConfig::default() };
                    let j = self.start_job(component, config, None);
                    j.hosts_detached.store(true, std::sync::atomic::Ordering::Relaxed);
                    detached.jobs.insert(record.component_hash.clone(), j.clone());
                    j
                }
            }
        };
        // A re-created actor continues from its snapshot; a new one starts
        // clean (a killed actor's snapshot went with its record).
        let snapshots = lock(&self.detached).snapshots.clone().filter(|_| record.checkpoint_every > 0);
        let image = match &snapshots {
            Some(tree) if !write => load_snapshot(tree, id).unwrap_or_else(|e| {
                tracing::warn!("detached actor {:?}: its snapshot is unreadable ({e}); it starts over", record.name);
                Checkpoint::default()
            }),
            Some(tree) => {
                // A snapshot left under this id by an earlier life (an id
                // comes back when its job runs again) is not this actor's.
                if let Err(e) = remove_snapshot(tree, id) {
                    tracing::warn!("detached actor {:?}: cannot clear an old snapshot: {e}", record.name);
                }
                Checkpoint::default()
            }
            None => Checkpoint::default(),
        };
        let persist: Option<crate::local::actor::Persist> = snapshots.map(|tree| {
            Arc::new(move |delta: &Delta| persist_snapshot(&tree, id, delta)) as crate::local::actor::Persist
        });
        Options::check_env(&record.env).map_err(|e| e.to_string())?;
        let options = Options {
            resources: resources(&record.resources).map_err(|e| e.to_string())?,
            memory_limit: record.memory_limit,
            time_limit: record.time_limit_ms.map(Duration::from_millis),
            max_concurrency: record.max_concurrency.max(1),
            max_restarts: record.max_restarts,
            max_task_retries: record.max_task_retries,
            checkpoint_every: record.checkpoint_every,
            name: Some(record.name.clone()),
            detached: true,
            env: record.env.clone(),
            ..Options::default()
        };
        let args = record
            .args
            .iter()
            .map(|a| ArgSpec::Value(Value { data: bytes::Bytes::from(a.clone()), ..Value::default() }))
            .collect();
        let spec = crate::local::actor::ActorSpec {
            task: TaskId::from_halves(record.task_hi, record.task_lo),
            args,
            options,
            pinned: Vec::new(),
            here: false,
            image,
            to_owner: None,
            persist,
            collectable: false,
        };
        let arc = self.arc().map_err(|e| e.to_string())?;
        let state = arc.spawn_actor(job.clone(), id, record.class.clone(), spec);
        lock(&job.actors).insert(id, state);
        lock(&job.named).insert(record.name.clone(), id);
        let mut detached = lock(&self.detached);
        if write && let Some(tree) = &detached.records {
            // Flushed at once: the record must survive the head being killed.
            let written = proto::encode(&record).map_err(|e| e.to_string()).and_then(|b| {
                tree.insert(record.name.as_bytes(), b).and_then(|_| tree.flush()).map_err(|e| e.to_string())
            });
            if let Err(e) = written {
                tracing::warn!("cannot record detached actor {:?}: {e}", record.name);
            }
        }
        detached.by_name.insert(record.name.clone(), id);
        detached.actors.insert(id, (record.name.clone(), record.class, job.id));
        Ok(job.id.0)
    }

    /// A detached actor kept here, by name: its id, class and job.
    pub(crate) fn detached_named(&self, name: &str) -> Option<(ActorId, String, JobId)> {
        let detached = lock(&self.detached);
        let id = *detached.by_name.get(name)?;
        let (_, class, job) = detached.actors.get(&id)?.clone();
        Some((id, class, job))
    }

    /// The detached actor named `name`, wherever the cluster keeps it:
    /// here (the head, a lone node), or asked of the head (a worker, unless
    /// `job`'s node is the head and has just been asked). Its id, class and
    /// where upcalls about it go; `None` if there is none.
    pub(crate) async fn detached_anywhere(
        &self,
        job: &JobState,
        name: &str,
    ) -> Result<Option<(ActorId, String, (String, u32))>, Error> {
        if let Some((id, class, home)) = self.detached_named(name) {
            return Ok(Some((id, class, (self.id.clone(), home.0))));
        }
        let Some(head) = self.head_unless(job) else { return Ok(None) };
        match self.named_through(job, &head, name).await {
            Ok(found) => Ok(Some(found)),
            Err(Error::InvalidArgument(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The head's address for an upcall about detached actors (job 0: no
    /// job of its own) when this node is a worker and `job`'s own node,
    /// which answers for its detached actors too, is not the head.
    pub(crate) fn head_unless(&self, job: &JobState) -> Option<(String, u32)> {
        let Some(Link::Worker(w)) = self.link.get() else { return None };
        let head = w.head_id();
        job.owner.as_ref().is_none_or(|owner| owner.0 != head).then_some((head, 0))
    }

    /// The names of the detached actors this node keeps.
    pub(crate) fn detached_names(&self) -> Vec<String> {
        lock(&self.detached).by_name.keys().cloned().collect()
    }

    /// A detached actor was killed for good: forget it and its record.
    pub(crate) fn forget_detached(&self, id: ActorId) {
        let mut detached = lock(&self.detached);
        let Some((name, ..)) = detached.actors.remove(&id) else { return };
        detached.by_name.remove(&name);
        if let Some(tree) = &detached.records
            && let Err(e) = tree.remove(name.as_bytes()).and_then(|_| tree.flush())
        {
            tracing::warn!("cannot delete the record of detached actor {name:?}: {e}");
        }
        if let Some(tree) = &detached.snapshots
            && let Err(e) = remove_snapshot(tree, id)
        {
            tracing::warn!("cannot delete the snapshot of detached actor {name:?}: {e}");
        }
    }

    /// The head: keeps detached actors' records in `tree` and re-creates
    /// those recorded before (a restart).
    pub(crate) fn restore_detached(&self, tree: sled::Tree, snapshots: sled::Tree) {
        let records: Vec<_> = tree.iter().filter_map(Result::ok).collect();
        {
            let mut detached = lock(&self.detached);
            detached.records = Some(tree);
            detached.snapshots = Some(snapshots);
        }
        for (key, bytes) in records {
            let name = String::from_utf8_lossy(&key).into_owned();
            match proto::decode_detached(&bytes)
                .map_err(|e| e.to_string())
                .and_then(|r| self.keep_detached(r, false, None))
            {
                Ok(_) => tracing::info!("re-created detached actor {name:?}"),
                Err(e) => tracing::warn!("cannot re-create detached actor {name:?}: {e}"),
            }
        }
    }

    /// Serves a worker's request to create a detached actor at the head.
    pub(crate) fn serve_create_detached(&self, record: DetachedActor) -> Event {
        let (hi, lo, class) = (record.actor_hi, record.actor_lo, record.class.clone());
        match self.keep_detached(record, true, None) {
            Ok(job) => Event::Actor { hi, lo, class, job, handle: None },
            Err(why) => Event::Refused(why),
        }
    }
}
