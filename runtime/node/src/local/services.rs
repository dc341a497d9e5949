//! The node's answers to the `wray:runtime` host functions.

use crate::cluster::link::Link;
use crate::local::actor::{ActorCall, ActorSpec};
use crate::local::actor_loop;
use crate::local::job::{JobState, deadline};
use crate::local::task::TaskSpec;
use crate::{NodeInner, lock};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use wray_core::{ActorId, Error, JobId, ObjectId, Options, Resources, Strategy, TaskId, limits};

/// Why an actor that called `exit_actor` (a kill of itself) is dead, in
/// the errors of the call that made it and of the calls after it.
const EXITED_ITSELF: &str = "it called exit_actor";
use wray_host::BoxFuture;
use wray_host::{ArgSpec, Caller, NextItems, Services, Value};
use wray_store::{ItemPut, Object, TakenItems};

impl NodeInner {
    /// This node's resources, with its object store's memory.
    pub(crate) fn total_with_store(&self) -> Resources {
        let mut r = lock(&self.sched).total().clone();
        r.set("object_store_memory", self.store.stats().budget as f64);
        r
    }

    /// What is free on this node now, with its object store's memory.
    pub(crate) fn free_resources(&self) -> Resources {
        let mut r = lock(&self.sched).available();
        let st = self.store.stats();
        r.set("object_store_memory", st.budget.saturating_sub(st.memory_bytes) as f64);
        r
    }

    fn check_feasible(&self, demand: &Resources) -> Result<(), Error> {
        lock(&self.sched).check_feasible(demand).map_err(|e| Error::InvalidArgument(e.to_string()))
    }

    /// Runs `f` with the caller's CPU given back to the scheduler (the
    /// caller is blocked), and takes it back afterwards.
    async fn blocked<T>(&self, caller: &Caller, f: impl Future<Output = T>) -> T {
        lock(&self.sched).block(&caller.holds);
        self.dispatch();
        let out = f.await;
        lock(&self.sched).unblock(&caller.holds);
        out
    }

    /// Items `index`.. of `generator` for the caller (see
    /// [`wray_store::ObjectStore::take_items_now`]), waiting for item
    /// `index` (at most `timeout`) if it is not there yet. Items already
    /// there — most of a fast generator's — are taken without giving the
    /// CPU back or making a future.
    async fn take_items(
        &self,
        caller: &Caller,
        generator: ObjectId,
        index: u32,
        max: u32,
        inline_up_to: usize,
        timeout: Option<Duration>,
    ) -> Result<TakenItems, Error> {
        if let Some(now) = self.store.take_items_now(caller.job, generator, index, max, inline_up_to) {
            return now;
        }
        self.blocked(caller, async {
            // A generator no worker has started yet (the reader asked right
            // after submitting it) runs here first, until it ends or gives
            // the thread back — it waits, or an epoch tick's yield — and
            // then goes on as a task of its own ([`Inline`]'s drop), as
            // `get` runs the task it waits for (`claim`). Started by the
            // starter instead, it ran on whichever worker took it and its
            // reader on the other, each item's wake-up crossing between the
            // cores: 1.12–1.14 → 1.24–1.25 M items/s read, 0.99 → 0.81 CPU-s
            // a million (alternating runs). The same future either way: the
            // same fresh instance, resources, limits and retries; the
            // reader's time limit counts at most one epoch tick of it.
            //
            // [`Inline`]: crate::local::task::Inline
            if let Some(run) = self.claim(generator) {
                let mut run = std::pin::pin!(run);
                std::future::poll_fn(|cx| {
                    let _ = run.as_mut().poll(cx);
                    std::task::Poll::Ready(())
                })
                .await;
            }
            let wait = self.store.next_item(generator, index);
            match timeout {
                None => wait.await,
                Some(t) => tokio::time::timeout(t, wait).await.unwrap_or(Err(Error::Timeout)),
            }
        })
        .await?;
        // Item `index` (or the end) is there now: the output pins its items,
        // and a freed output is an error here as it was in the wait.
        self.store
            .take_items_now(caller.job, generator, index, max, inline_up_to)
            .unwrap_or_else(|| Err(Error::ObjectLost(format!("generator {generator}: item {index} went away"))))
    }

    /// What a task and an actor call share before they are queued: the
    /// child task id, its pending result (one ref for the caller) and the
    /// pins on the objects its arguments mention.
    /// Where an actor that is not this job's lives: (node, job there).
    fn actor_home(&self, job: &JobState, actor: ActorId) -> Option<(String, u32)> {
        lock(&job.foreign).get(&actor).cloned().or_else(|| job.owner.clone())
    }

    pub(crate) fn new_output(
        &self,
        job: &JobState,
        caller: &Caller,
        seq: u64,
        args: &[ArgSpec],
    ) -> Result<(TaskId, ObjectId, Vec<ObjectId>), Error> {
        let task = caller.task.child(seq);
        let output = ObjectId::returned_by(task);
        let pinned = self.pin_args(job.id, args)?;
        self.store.create_pending(job.id, output);
        Ok((task, output, pinned))
    }

    async fn submit_task(
        self: &Arc<Self>,
        caller: &Caller,
        seq: u64,
        function: String,
        args: Vec<ArgSpec>,
        options: Options,
    ) -> Result<ObjectId, Error> {
        let job = self.job(caller.job)?;
        // A demand this node cannot meet may be met by another.
        if !self.has_cluster() {
            self.check_feasible(&options.resources)?;
        }
        // Back-pressure: a job with too many unfinished tasks waits here.
        let permit = job
            .pending
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::InvalidArgument(format!("{} has ended", job.id)))?;
        let (task, output, pinned) = self.new_output(&job, caller, seq, &args)?;
        self.store.set_item_window(output, options.generator_backpressure);
        let ticket = self.ticket();
        let spec = TaskSpec { task, function: function.into(), args, options, output, pinned, here: false, ticket };
        self.spawn_task(job, spec, permit);
        Ok(output)
    }

    async fn get_values(&self, ids: Vec<ObjectId>) -> Result<Vec<bytes::Bytes>, Error> {
        self.fetch_held_at_once(&ids).await;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.object(id).await?.data);
        }
        Ok(out)
    }

    async fn wait_ready(&self, ids: &[ObjectId], num_returns: usize, timeout: Option<Duration>) -> Vec<bool> {
        let deadline = deadline(timeout);
        let notify = Arc::new(Notify::new());
        // One pass under one lock: enough already settled returns at once;
        // otherwise the notifier watches every pending id, once — a wait
        // over n refs costs O(n) however many of them settle before it
        // returns (re-watching on each wake-up made `wait(refs, 1)` over a
        // shrinking list of 1,000 refs quadratic: 2.5 rounds/s).
        let mut mask = self.store.watch_all(ids, num_returns, &notify);
        while mask.iter().filter(|r| **r).count() < num_returns {
            match deadline {
                Some(d) => {
                    if tokio::time::timeout_at(d, notify.notified()).await.is_err() {
                        return self.store.settled(ids);
                    }
                }
                None => notify.notified().await,
            }
            mask = self.store.settled(ids);
        }
        mask
    }

    async fn create(
        self: &Arc<Self>,
        caller: &Caller,
        seq: u64,
        class: String,
        args: Vec<ArgSpec>,
        options: Options,
    ) -> Result<ActorId, Error> {
        let job = self.job(caller.job)?;
        if options.detached {
            self.admit_actor(&job, &options)?;
            let (id, dest) = self.create_detached(&job, caller, seq, class, &args, &options).await?;
            lock(&job.foreign).insert(id, dest);
            return Ok(id);
        }
        let task = caller.task.child(seq);
        if let Some(owner) = &job.owner {
            // A task away from its job's node: the actor is made on the
            // job's node, as the job's other actors are, so that every node
            // reaches it there (one made in this stand-in would be known
            // here only, and end with the stand-in).
            return self.create_through(&job, owner, task, class, &args, &options).await;
        }
        self.create_here(&job, task, class, args, options)
    }

    /// Whether `job` may have one more actor, and one node could hold it.
    fn admit_actor(&self, job: &JobState, options: &Options) -> Result<(), Error> {
        if !self.has_cluster() {
            self.check_feasible(&options.resources)?;
        }
        if lock(&job.actors).len() >= limits::MAX_ACTORS_PER_JOB {
            return Err(Error::InvalidArgument(format!(
                "a job may have at most {} live actors",
                limits::MAX_ACTORS_PER_JOB
            )));
        }
        Ok(())
    }

    /// Creates a (not detached) actor of `job`, whose id derives from
    /// `task`, on this node: the job's own (for a task here, or elsewhere:
    /// `Upcall::Create`).
    pub(crate) fn create_here(
        self: &Arc<Self>,
        job: &Arc<JobState>,
        task: TaskId,
        class: String,
        args: Vec<ArgSpec>,
        options: Options,
    ) -> Result<ActorId, Error> {
        self.admit_actor(job, &options)?;
        let id = ActorId::created_by(task);
        if let Some(name) = &options.name {
            let mut named = lock(&job.named);
            if named.contains_key(name) {
                return Err(Error::InvalidArgument(format!("an actor named {name:?} already exists in this job")));
            }
            named.insert(name.clone(), id);
        }
        let pinned = match self.pin_args(job.id, &args) {
            Ok(p) => p,
            Err(e) => {
                if let Some(name) = &options.name {
                    lock(&job.named).remove(name);
                }
                return Err(e);
            }
        };
        let spec = ActorSpec {
            task,
            args,
            options,
            pinned,
            here: false,
            image: Default::default(),
            to_owner: None,
            persist: None,
            collectable: true,
        };
        let actor = self.spawn_actor(job.clone(), id, class, spec);
        lock(&job.actors).insert(id, actor);
        Ok(id)
    }

    /// Takes `&self`, not the node's `Arc`: a local call needs none, and
    /// upgrading the node's weak self per call was an atomic on a line
    /// every core writes (only a call to another node upgrades).
    async fn call(
        &self,
        caller: &Caller,
        seq: u64,
        actor: ActorId,
        method: String,
        args: Vec<ArgSpec>,
        generator_backpressure: u32,
    ) -> Result<ObjectId, Error> {
        let job = self.job(caller.job)?;
        let state = lock(&job.actors).get(&actor).cloned();
        let state = match state {
            Some(s) => s,
            None => {
                // A detached actor, or a task away from its job's node: the
                // actor is kept by another job or node.
                let Some(dest) = self.actor_home(&job, actor) else {
                    return Err(Error::ActorDied(format!("{actor} does not exist in this job")));
                };
                if dest.0 != self.id {
                    // Boxed: the path to another node would otherwise size
                    // every local call's future.
                    let me = self.arc()?;
                    let call = async move {
                        me.call_through(&job, &dest, caller, seq, actor, method, args, generator_backpressure).await
                    };
                    return Box::pin(call).await;
                }
                self.actor_in(dest.1, actor).ok_or_else(|| Error::ActorDied(format!("{actor} is gone")))?
            }
        };
        let (task, output, pinned) = self.new_output(&job, caller, seq, &args)?;
        self.store.set_item_window(output, generator_backpressure);
        self.deliver(&state, ActorCall { task, method, args, output, pinned, generator_backpressure, retries: 0 });
        if let Some(run) = state.run.get() {
            actor_loop::note_call(output, run);
        }
        Ok(output)
    }
}

impl Services for NodeInner {
    fn submit<'a>(
        &'a self,
        caller: &'a Caller,
        seq: u64,
        function: String,
        args: Vec<ArgSpec>,
        options: Options,
    ) -> BoxFuture<'a, Result<ObjectId, Error>> {
        Box::pin(async move { self.arc()?.submit_task(caller, seq, function, args, options).await })
    }

    fn get_now(&self, ids: &[ObjectId]) -> Option<Result<Vec<bytes::Bytes>, Error>> {
        // Under one store lock; an object spilled to disk or held on another
        // node is read back or fetched by `get`.
        let mut ready = Vec::with_capacity(ids.len());
        match self.store.read_ready(ids, &mut ready) {
            Err(e) => Some(Err(e)),
            Ok(()) => (ready.len() == ids.len()).then_some(Ok(ready)),
        }
    }

    fn get<'a>(
        &'a self,
        caller: &'a Caller,
        ids: Vec<ObjectId>,
        timeout: Option<Duration>,
    ) -> BoxFuture<'a, Result<Vec<bytes::Bytes>, Error>> {
        // Objects all ready here are answered by `get_now`, which the hot
        // caller (the guest's `get`) asks first; this is the waiting path.
        Box::pin(async move {
            self.blocked(caller, async {
                // The tasks making what it waits for that no worker has
                // started yet, run here (`NodeInner::claim`).
                let helped = async {
                    for id in &ids {
                        // The local actor this thread just gave the call
                        // making it, polled here (`actor_loop.rs`).
                        if let Some(actor) = actor_loop::take_if_calling(*id) {
                            actor.run_inline();
                        }
                        if let Some(run) = self.claim(*id) {
                            run.await;
                        }
                    }
                    self.get_values(ids).await
                };
                match timeout {
                    None => helped.await,
                    Some(t) => tokio::time::timeout(t, helped).await.unwrap_or(Err(Error::Timeout)),
                }
            })
            .await
        })
    }

    fn wait<'a>(
        &'a self,
        caller: &'a Caller,
        ids: Vec<ObjectId>,
        num_returns: usize,
        timeout: Option<Duration>,
    ) -> BoxFuture<'a, Result<Vec<bool>, Error>> {
        Box::pin(async move {
            let n = num_returns.min(ids.len());
            Ok(self.blocked(caller, self.wait_ready(&ids, n, timeout)).await)
        })
    }

    fn put(&self, caller: &Caller, id: ObjectId, value: Value) -> Result<(), Error> {
        self.landing(value.data.len(), || self.store.put(caller.job, id, Object { data: value.data, refs: value.refs }))
    }

    fn yield_item(&self, caller: &Caller, index: u32, value: Value) -> Result<bool, Error> {
        // The item joins the pending result of the running task (an actor
        // method's call is a task as well): here for a task of this node's
        // job, and on a node running the task for another node's job, from
        // where `run_for_owner` sends each item on to the owner.
        let output = ObjectId::returned_by(caller.task);
        let id = ObjectId::item_of(caller.task, index);
        let object = Object { data: value.data, refs: value.refs };
        match self.landing(object.data.len(), || self.store.put_item(None, output, index, id, object))? {
            ItemPut::Kept | ItemPut::Repeated => Ok(false),
            ItemPut::Ahead => Ok(true),
            // Nobody holds the generator any more (a client of a streamed
            // HTTP response went away, a caller dropped it): the task stops
            // at this item instead of making the rest for nobody.
            ItemPut::Unread => Err(Error::Cancelled),
        }
    }

    fn wait_for_reader<'a>(&'a self, caller: &'a Caller) -> BoxFuture<'a, ()> {
        // Paused, the task gives its CPU back as a `get` does: its reader
        // may need that CPU for the work that takes the next item.
        Box::pin(self.blocked(caller, self.store.wait_for_reader(ObjectId::returned_by(caller.task))))
    }

    fn next_item<'a>(
        &'a self,
        caller: &'a Caller,
        generator: ObjectId,
        index: u32,
        timeout: Option<Duration>,
    ) -> BoxFuture<'a, Result<Option<ObjectId>, Error>> {
        Box::pin(async move {
            Ok(match self.take_items(caller, generator, index, 1, 0, timeout).await? {
                TakenItems::Items(items) => items.first().map(|(id, _)| *id),
                TakenItems::Ended { items, failed: true } if index == items => {
                    self.store.add_ref(caller.job, generator)?;
                    Some(generator)
                }
                TakenItems::Ended { .. } => None,
            })
        })
    }

    fn next_items<'a>(
        &'a self,
        caller: &'a Caller,
        generator: ObjectId,
        index: u32,
        max: u32,
        timeout: Option<Duration>,
    ) -> BoxFuture<'a, Result<NextItems, Error>> {
        Box::pin(async move {
            let max = max.min(limits::MAX_ITEMS_PER_READ);
            Ok(match self.take_items(caller, generator, index, max, limits::INLINE_ITEM_BYTES, timeout).await? {
                TakenItems::Items(items) => NextItems::Items(items),
                TakenItems::Ended { items, failed } => NextItems::Ended { failed: failed && index == items },
            })
        })
    }

    fn add_ref(&self, job: JobId, id: ObjectId) -> Result<(), Error> {
        self.store.add_ref(job, id)
    }

    fn release(&self, _job: JobId, id: ObjectId) {
        self.store.release(id);
    }

    fn release_all(&self, ids: &[(JobId, ObjectId)]) {
        self.store.release_all(ids.iter().map(|&(_, id)| id));
    }

    fn cancel(&self, caller: &Caller, id: ObjectId) -> Result<(), Error> {
        let job = self.job(caller.job)?;
        if let Some(token) = lock(&job.tasks).get(&id.task) {
            token.cancel();
        }
        Ok(())
    }

    fn create_actor<'a>(
        &'a self,
        caller: &'a Caller,
        seq: u64,
        class: String,
        args: Vec<ArgSpec>,
        options: Options,
    ) -> BoxFuture<'a, Result<ActorId, Error>> {
        Box::pin(async move { self.arc()?.create(caller, seq, class, args, options).await })
    }

    fn call_actor<'a>(
        &'a self,
        caller: &'a Caller,
        seq: u64,
        actor: ActorId,
        method: String,
        args: Vec<ArgSpec>,
        generator_backpressure: u32,
    ) -> BoxFuture<'a, Result<ObjectId, Error>> {
        Box::pin(async move { self.call(caller, seq, actor, method, args, generator_backpressure).await })
    }

    fn actor_handle(&self, caller: &Caller, actor: ActorId) -> Result<Option<ObjectId>, Error> {
        let job = self.job(caller.job)?;
        self.actor_handle_in(&job, actor)
    }

    fn named_actor<'a>(&'a self, caller: &'a Caller, name: &'a str) -> BoxFuture<'a, Result<(ActorId, String), Error>> {
        Box::pin(async move {
            let job = self.job(caller.job)?;
            let id = lock(&job.named).get(name).copied();
            let Some(id) = id else {
                // The job's node (for a task away from it), then the
                // cluster's detached actors, kept by the head — which the
                // job's node does not have when it is a worker.
                let not_here = match &job.owner {
                    Some(owner) => match self.named_through(&job, owner, name).await {
                        Ok((id, class, home)) => {
                            lock(&job.foreign).insert(id, home);
                            return Ok((id, class));
                        }
                        Err(e @ Error::InvalidArgument(_)) => e,
                        Err(e) => return Err(e),
                    },
                    None => Error::InvalidArgument(format!("no actor named {name:?} in this job")),
                };
                let (id, class, home) = self.detached_anywhere(&job, name).await?.ok_or(not_here)?;
                lock(&job.foreign).insert(id, home);
                return Ok((id, class));
            };
            let class = lock(&job.actors)
                .get(&id)
                .map(|a| a.class.clone())
                .ok_or_else(|| Error::ActorDied(format!("the actor named {name:?} is gone")))?;
            Ok((id, class))
        })
    }

    fn named_actors<'a>(&'a self, caller: &'a Caller) -> BoxFuture<'a, Result<Vec<String>, Error>> {
        Box::pin(async move {
            let job = self.job(caller.job)?;
            // Where `named_actor` looks, all of it: the job's node (this
            // one, or the node a task away from it asks), then the
            // detached actors — this node's own if it is the head (or
            // alone), the head's if it is a worker.
            let mut names = match &job.owner {
                Some(owner) => self.names_through(owner).await?,
                None => job.names(),
            };
            names.extend(self.detached_names());
            if let Some(head) = self.head_unless(&job) {
                names.extend(self.names_through(&head).await?);
            }
            names.sort_unstable();
            names.dedup();
            names.truncate(limits::MAX_NAMES_LISTED);
            Ok(names)
        })
    }

    fn actor_name(&self, caller: &Caller) -> Option<String> {
        let job = self.job(caller.job).ok()?;
        let actor = lock(&job.actors).get(&caller.actor?).cloned()?;
        actor.name.clone()
    }

    fn kill_actor(&self, caller: &Caller, actor: ActorId, no_restart: bool) -> Result<(), Error> {
        let job = self.job(caller.job)?;
        // An actor killing itself is `exit_actor` (the SDKs' only way to do
        // it): its calls' errors say so rather than blame a `wray::kill`.
        let reason = if caller.actor == Some(actor) { EXITED_ITSELF } else { "wray::kill" };
        let state = lock(&job.actors).get(&actor).cloned();
        match (state, self.actor_home(&job, actor)) {
            (Some(state), _) => state.kill(reason, no_restart),
            (None, Some(home)) if home.0 == self.id => {
                if let Some(state) = self.actor_in(home.1, actor) {
                    state.kill(reason, no_restart);
                    if no_restart {
                        self.forget_detached(actor);
                    }
                }
            }
            (None, Some(home)) => self.arc()?.kill_through(home, actor, no_restart),
            (None, None) => return Err(Error::ActorDied(format!("{actor} does not exist in this job"))),
        }
        Ok(())
    }

    fn actor_node(&self, caller: &Caller, actor: ActorId) -> Option<String> {
        let job = self.job(caller.job).ok()?;
        let state = lock(&job.actors).get(&actor).cloned()?;
        state.activity().0
    }

    fn create_placement_group<'a>(
        &'a self,
        caller: &'a Caller,
        bundles: Vec<Resources>,
        strategy: Strategy,
    ) -> BoxFuture<'a, Result<(u64, Vec<String>), Error>> {
        Box::pin(async move {
            let job = self.job(caller.job)?;
            let (id, nodes) = self.create_group(bundles, strategy).await?;
            lock(&job.groups).push(id);
            Ok((id, nodes))
        })
    }

    fn remove_placement_group<'a>(&'a self, caller: &'a Caller, group: u64) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let job = self.job(caller.job)?;
            self.remove_group(group).await?;
            lock(&job.groups).retain(|g| *g != group);
            Ok(())
        })
    }

    fn nodes(&self) -> BoxFuture<'_, Result<Vec<wray_host::NodeInfo>, Error>> {
        Box::pin(self.list_nodes())
    }

    fn cluster_resources(&self) -> Resources {
        match self.link.get() {
            Some(Link::Head(peers)) => peers.cluster().0,
            Some(Link::Worker(w)) => lock(&w.cluster).clone().map_or_else(|| self.total_with_store(), |c| c.0),
            None => self.total_with_store(),
        }
    }

    fn available_resources(&self) -> Resources {
        match self.link.get() {
            Some(Link::Head(peers)) => peers.cluster().1,
            Some(Link::Worker(w)) => lock(&w.cluster).clone().map_or_else(|| self.free_resources(), |c| c.1),
            None => self.free_resources(),
        }
    }

    fn node_id(&self) -> String {
        self.id.clone()
    }

    fn meet<'a>(
        &'a self,
        caller: &'a Caller,
        point: String,
        rank: u32,
        round: u64,
        share: Option<wray_host::MeetingShare>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Option<Vec<bytes::Bytes>>, Error>> {
        Box::pin(async move { self.meetings.meet(caller.job, &point, rank, round, share, timeout).await })
    }

    fn abort_meeting(&self, caller: &Caller, point: &str, reason: &str) {
        self.meetings.abort(caller.job, point, reason);
    }

    fn publish_status(&self, caller: &Caller, topic: String, body: String) {
        // Listed under the job's name, as its tasks are (a stand-in's job
        // is named after its owner).
        let job = match self.job(caller.job) {
            Ok(j) => match &j.owner {
                Some((node, n)) => format!("{node}/{n}"),
                None => j.key.to_string(),
            },
            Err(_) => format!("{}/{}", self.id, caller.job.0),
        };
        lock(&self.published).publish(job, topic, body, crate::persist::now_ms());
    }

    fn device(&self, caller: &Caller) -> wray_host::Device {
        self.devices.for_task(caller.holds.gpus())
    }

    fn serve_run<'a>(&'a self, caller: &'a Caller, app: wray_host::Application) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let serving = self.serving()?;
            let services: Arc<dyn Services> = self.arc()?;
            let mut app = app;
            app.job_label = self.job(caller.job)?.config.label.clone();
            // The driver blocks for the application's whole life: its CPU
            // goes back to the scheduler meanwhile.
            self.blocked(caller, serving.run(services, caller, app)).await
        })
    }

    fn serve_reconfigure<'a>(
        &'a self,
        caller: &'a Caller,
        deployment: String,
        config: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let serving = self.serving()?;
            // The caller (a replica, the driver) waits for every replica.
            self.blocked(caller, serving.reconfigure(caller, deployment, config)).await
        })
    }

    fn serve_call<'a>(
        &'a self,
        caller: &'a Caller,
        seq: u64,
        deployment: String,
        method: String,
        args: Vec<ArgSpec>,
        generator_backpressure: u32,
    ) -> BoxFuture<'a, Result<ObjectId, Error>> {
        Box::pin(async move {
            let Some(serving) = self.serving.get().cloned() else {
                // A replica (or another guest of the application) on a node
                // that does not serve: the application runs on its job's
                // node, which picks the replica; the call then goes to it as
                // any actor's call from here does.
                let job = self.job(caller.job)?;
                let Some(owner) = job.owner.clone() else { return Err(not_serving()) };
                let (replica, _class, home) = self.replica_through(&owner, &deployment).await?;
                lock(&job.foreign).insert(replica, home);
                return self.call(caller, seq, replica, method, args, generator_backpressure).await;
            };
            let services: Arc<dyn Services> = self.arc()?;
            serving.call(services, caller, seq, deployment, method, args, generator_backpressure).await
        })
    }
}

impl NodeInner {
    fn serving(&self) -> Result<Arc<dyn wray_host::Serving>, Error> {
        self.serving.get().cloned().ok_or_else(not_serving)
    }
}

/// What a guest asking to serve, or calling a deployment, is told where
/// nothing serves HTTP.
fn not_serving() -> Error {
    Error::InvalidArgument(
        "this runtime does not serve HTTP: run the application with `wray serve run app.wasm` \
         (or deploy it to a head started with --serve-port)"
            .into(),
    )
}
