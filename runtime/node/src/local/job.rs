//! Jobs: one run of a component's driver, and everything it starts.

use crate::local::actor::ActorState;
use crate::state::Live;
use crate::{Node, NodeInner, lock};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use wray_core::{ActorId, JobId, ObjectId, Options, Resources, TaskId, limits};
use wray_host::{ArgSpec, CallError, Caller, Grants, Instance, InstanceLimits, JobComponent, Services, Value};

/// Per-job settings.
#[derive(Clone, Debug, Default)]
pub struct JobConfig {
    /// Capabilities every instance of the job gets (none by default).
    pub grants: Grants,
    /// Default limits of every task and actor (options override them).
    pub limits: InstanceLimits,
    /// Set to cancel the job (Ctrl-C): the driver and every task are
    /// interrupted within one epoch tick.
    pub cancel: Option<Arc<AtomicBool>>,
    /// What the job is called outside this node: the id of a `wray job
    /// submit` job (`job-000003`), shown by `serve status`.
    pub label: Option<String>,
    /// Whether the driver of a `wasi:cli/command` job reads this process's
    /// standard input (`wray run` on its embedded runtime, as `wasmtime run`
    /// does); a wray job's instances never do, nor does a job sent to a
    /// cluster.
    pub command_stdin: bool,
}

/// How a job ended, if not well.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The driver returned an error or trapped.
    #[error("job {name} failed: {message}")]
    Failed {
        /// The component.
        name: String,
        /// The cause.
        message: String,
    },
    /// The driver could not start.
    #[error("job {name} could not start: {message}")]
    Start {
        /// The component.
        name: String,
        /// The cause.
        message: String,
    },
    /// The driver called `exit(status)` with a status other than 0.
    #[error("job {name} called exit({status})")]
    Exited {
        /// The component.
        name: String,
        /// What the driver passed to `exit`.
        status: i32,
    },
    /// The job was cancelled.
    #[error("job {name} was cancelled")]
    Cancelled {
        /// The component.
        name: String,
    },
}

/// Collected actors a job's listings keep ([`JobState::collected`]): a job
/// may go through any number of them.
pub(crate) const ENDED_ACTORS_LISTED: usize = 1000;

/// What a running job holds.
pub(crate) struct JobState {
    pub(crate) id: JobId,
    pub(crate) component: JobComponent,
    pub(crate) config: JobConfig,
    /// The job's queued and running tasks: how to cancel each, and what
    /// listings show of it.
    pub(crate) tasks: Mutex<HashMap<TaskId, Arc<crate::local::task::LiveTask>, crate::ById>>,
    pub(crate) actors: Mutex<HashMap<ActorId, Arc<ActorState>>>,
    /// Actors that ended with their last handle, no longer in `actors`: the
    /// last [`ENDED_ACTORS_LISTED`], for state listings (as Ray lists dead
    /// actors with why they died).
    pub(crate) collected: Mutex<std::collections::VecDeque<Arc<ActorState>>>,
    pub(crate) named: Mutex<HashMap<String, ActorId>>,
    /// Bounds unfinished tasks: submitting past it waits (back-pressure).
    pub(crate) pending: Arc<Semaphore>,
    pub(crate) ended: AtomicBool,
    /// For a stand-in of a job running elsewhere: that node and the job's
    /// id there (what upcalls address).
    pub(crate) owner: Option<(String, u32)>,
    /// Placement groups the job created: removed when it ends.
    pub(crate) groups: Mutex<Vec<u64>>,
    /// Actors of other jobs (detached ones) this job found or created, and
    /// where calls to them go: (node, job there).
    pub(crate) foreign: Mutex<HashMap<ActorId, (String, u32)>>,
    /// On a stand-in: the copies of actors' handle objects that the job's
    /// node lent with answers (a name looked up, an actor created), and how
    /// many references to each wait for the guest's `actors.handle` that
    /// follows to take one (`cluster/lent_handles.rs`).
    pub(crate) handed: Mutex<HashMap<ActorId, (ObjectId, u32)>>,
    /// How the job is named in state listings: a submitted job's id, else
    /// `<node>/<number>`.
    pub(crate) key: Arc<str>,
    /// When it started, milliseconds since the Unix epoch.
    pub(crate) started_ms: u64,
    /// It is the never-ending job that hosts a component's detached actors.
    pub(crate) hosts_detached: AtomicBool,
    /// Instances whose task succeeded, waiting for the job's next task —
    /// only for components that reuse task instances
    /// (`JobComponent::reuses_task_instances`) and tasks submitted with
    /// `reuse_instance`, each with the memory limit and the task's own
    /// environment variables it was made with (a guest reads its
    /// environment once and keeps it, so an instance serves only tasks that
    /// set the same); at most [`MAX_IDLE_TASK_INSTANCES`], dropped when the
    /// job ends.
    pub(crate) idle: Mutex<Vec<IdleInstance>>,
    /// Fresh instances made ahead for the job's tasks that take a fresh
    /// one (the default), see [`Spares`].
    pub(crate) spares: Mutex<Spares>,
}

/// Fresh task instances a job keeps made ahead, so that making one — with
/// its drop, about 10 µs of the 13 an empty task's round trip takes in
/// `wray microbenchmark` — is done on a core that would otherwise idle, not
/// between a task's submission and its run.
///
/// A spare is instantiated from the job's component and has run no guest
/// code: a task that takes one starts from the same state as one whose
/// instance is made for it, so the sandbox promise (a clean instance for
/// every task that does not opt into reuse) holds. Spares are made with
/// the memory limit and environment of the task whose end asked for them
/// and serve only tasks with the same; the rest of a task's state (its
/// caller, cancellation flag, time limit) is set when it takes one.
///
/// One maker at a time (a tokio task, `NodeInner::make_spares`) makes them
/// one after another until [`SPARE_TASK_INSTANCES`] are ready, and first
/// drops the instances of tasks that ended meanwhile (`spent`): dropping
/// one resets its memory and tables, the other half of the 10 µs, and the
/// pooling allocator prefers the freed slot (its affinity for the module it
/// last held) for the spare made right after.
#[derive(Default)]
pub(crate) struct Spares {
    ready: Vec<Spare>,
    /// Whether a maker is running; it clears this itself, under the lock,
    /// only once `spent` is empty.
    maker: bool,
    /// Instances of ended tasks left for the running maker to drop: at
    /// most [`SPENT_TASK_INSTANCES`] (a task ending past that drops its
    /// own), so that few pool slots and no objects wait on a slow maker.
    spent: Vec<Instance>,
}

struct Spare {
    memory: Option<u64>,
    env: Vec<(String, String)>,
    instance: Instance,
}

/// Spares a job keeps ready: two, so that a caller running one task at a
/// time finds one made while its previous task ran, and a batch of tasks,
/// which keeps every core busy, adds few instances beyond those its tasks
/// need.
pub(crate) const SPARE_TASK_INSTANCES: usize = 2;

/// Ended tasks' instances that may wait for the maker to drop them.
pub(crate) const SPENT_TASK_INSTANCES: usize = 2;

/// What a task's end asks of the job's spare maker ([`JobState::hand_spent`]).
pub(crate) enum SpareMaker {
    /// Nothing left to do here: none is needed, or the running one took
    /// the instance.
    Done,
    /// Start one; it drops this instance first.
    Start(Option<Instance>),
    /// Drop this instance here (no maker will run, or its queue is full).
    DropHere(Instance),
}

/// The running maker's next step ([`JobState::next_for_maker`]).
pub(crate) enum MakerStep {
    Drop(Vec<Instance>),
    Make,
    Stop,
}

/// An instance waiting in [`JobState::idle`] and what it was made with.
pub(crate) struct IdleInstance {
    memory: Option<u64>,
    env: Vec<(String, String)>,
    /// Made for a task holding a GPU: its tensors live on that GPU, so it
    /// serves only tasks holding one (and the others only tasks without).
    gpu: bool,
    instance: Instance,
}

/// Idle task instances a job keeps at most (a Python instance holds tens of
/// MiB once it has run): more than a node's CPUs would rarely be taken.
pub(crate) const MAX_IDLE_TASK_INSTANCES: usize = 8;

/// An instance that grew its memory past this is not kept for the next
/// task: one large task must not pin its memory for the job's life.
pub(crate) const MAX_IDLE_INSTANCE_MEMORY: usize = 256 << 20;

impl JobState {
    /// Frees `actor`'s name, if it has one and it still names it.
    pub(crate) fn free_name(&self, actor: &ActorState) {
        if let Some(name) = &actor.name {
            let mut named = lock(&self.named);
            if named.get(name) == Some(&actor.id) {
                named.remove(name);
            }
        }
    }

    /// Takes an actor that ended with its last handle out of the job's
    /// actors — those that may still be called, which
    /// `MAX_ACTORS_PER_JOB` counts — into the last [`ENDED_ACTORS_LISTED`]
    /// that listings show; its snapshot image goes.
    pub(crate) fn retire_collected(&self, actor: &Arc<ActorState>) {
        lock(&self.actors).remove(&actor.id);
        *lock(&actor.checkpoint) = wray_host::Checkpoint::default();
        let mut collected = lock(&self.collected);
        if collected.len() == ENDED_ACTORS_LISTED {
            collected.pop_front();
        }
        collected.push_back(actor.clone());
    }

    /// Updates what is listed of task `id`, if it is live and listed.
    pub(crate) fn note_task(&self, id: TaskId, update: impl FnOnce(&mut Live)) {
        let task = lock(&self.tasks).get(&id).cloned();
        if let Some(task) = task {
            task.note(update);
        }
    }

    /// Whether any of the job's tasks has not ended.
    pub(crate) fn has_tasks(&self) -> bool {
        !lock(&self.tasks).is_empty()
    }

    /// Counts of the job's listed tasks: (pending, running).
    pub(crate) fn listed_counts(&self) -> (u64, u64) {
        let (mut pending, mut running) = (0, 0);
        for task in lock(&self.tasks).values() {
            match task.running() {
                Some(true) => running += 1,
                Some(false) => pending += 1,
                None => {}
            }
        }
        (pending, running)
    }

    /// What is listed of the job's unfinished tasks, each with its id and
    /// its job's key.
    pub(crate) fn listed_tasks(&self, into: &mut Vec<(TaskId, Arc<str>, Live)>) {
        for (id, task) in lock(&self.tasks).iter() {
            if let Some(live) = task.listed() {
                into.push((*id, self.key.clone(), live));
            }
        }
    }

    /// The names of the job's live named actors (a dead actor's name is
    /// dropped when it dies, `mark_dead`).
    pub(crate) fn names(&self) -> Vec<String> {
        lock(&self.named).keys().cloned().collect()
    }

    /// Limits of a task or actor with `options`.
    pub(crate) fn limits(&self, options: &Options) -> InstanceLimits {
        InstanceLimits {
            memory: options.memory_limit.or(self.config.limits.memory),
            time: options.time_limit.or(self.config.limits.time),
        }
    }

    /// An idle instance made with memory limit `memory` and environment
    /// variables `env`, if the job keeps one.
    pub(crate) fn take_idle(&self, memory: Option<u64>, env: &[(String, String)], gpu: bool) -> Option<Instance> {
        let mut idle = lock(&self.idle);
        let i = idle.iter().rposition(|i| i.memory == memory && i.env == env && i.gpu == gpu)?;
        Some(idle.swap_remove(i).instance)
    }

    /// Keeps `instance` for the job's next task with the same memory limit
    /// and environment variables, holding a GPU or not as its task did, if
    /// there is room and it stayed small; otherwise hands it back, for the
    /// caller to drop.
    pub(crate) fn keep_idle(
        &self,
        memory: Option<u64>,
        env: &[(String, String)],
        gpu: bool,
        instance: Instance,
    ) -> Option<Instance> {
        if self.ended.load(Ordering::Relaxed) || instance.memory_peak() > MAX_IDLE_INSTANCE_MEMORY {
            return Some(instance);
        }
        let mut idle = lock(&self.idle);
        if idle.len() >= MAX_IDLE_TASK_INSTANCES {
            return Some(instance);
        }
        idle.push(IdleInstance { memory, env: env.to_vec(), gpu, instance });
        None
    }

    /// A spare made with memory limit `memory` and environment `env`, if
    /// the job has one. On a miss, spares made for other settings are
    /// dropped: the job's tasks have moved on to these.
    pub(crate) fn take_spare(&self, memory: Option<u64>, env: &[(String, String)]) -> Option<Instance> {
        let mut spares = lock(&self.spares);
        match spares.ready.iter().position(|s| s.memory == memory && s.env == env) {
            Some(i) => Some(spares.ready.swap_remove(i).instance),
            None => {
                let stale = std::mem::take(&mut spares.ready);
                drop(spares);
                drop(stale);
                None
            }
        }
    }

    /// Hands the spare maker the instance of a task that ended (`spent`,
    /// if it is not kept) and says whether to start a maker.
    pub(crate) fn hand_spent(&self, spent: Option<Instance>) -> SpareMaker {
        let mut spares = lock(&self.spares);
        if self.ended.load(Ordering::Relaxed) {
            return spent.map_or(SpareMaker::Done, SpareMaker::DropHere);
        }
        if spares.maker {
            return match spent {
                Some(i) if spares.spent.len() >= SPENT_TASK_INSTANCES => SpareMaker::DropHere(i),
                Some(i) => {
                    spares.spent.push(i);
                    SpareMaker::Done
                }
                None => SpareMaker::Done,
            };
        }
        if spares.ready.len() >= SPARE_TASK_INSTANCES {
            // Nothing to make: waking another core only to drop the
            // instance would cost about what dropping it does.
            return spent.map_or(SpareMaker::Done, SpareMaker::DropHere);
        }
        spares.maker = true;
        SpareMaker::Start(spent)
    }

    /// What the running maker does next: drop what ended tasks left, make
    /// a spare, or stop (clearing [`Spares::maker`] under the same lock as
    /// [`hand_spent`](Self::hand_spent) reads it, so no instance is left
    /// behind). `stop`: make no more — tasks wait for a CPU (every core is
    /// busy, and a spare would only move instantiation between cores), or
    /// making one failed.
    pub(crate) fn next_for_maker(&self, stop: bool) -> MakerStep {
        let mut spares = lock(&self.spares);
        if !spares.spent.is_empty() {
            return MakerStep::Drop(std::mem::take(&mut spares.spent));
        }
        if stop || self.ended.load(Ordering::Relaxed) || spares.ready.len() >= SPARE_TASK_INSTANCES {
            spares.maker = false;
            return MakerStep::Stop;
        }
        MakerStep::Make
    }

    /// Keeps a spare the maker made; hands it back, to be dropped, if the
    /// job ended meanwhile.
    pub(crate) fn keep_spare(
        &self,
        memory: Option<u64>,
        env: &[(String, String)],
        instance: Instance,
    ) -> Option<Instance> {
        let mut spares = lock(&self.spares);
        // Read under the lock, which `end_job` takes after setting it.
        if self.ended.load(Ordering::Relaxed) {
            return Some(instance);
        }
        spares.ready.push(Spare { memory, env: env.to_vec(), instance });
        None
    }

    pub(crate) fn cancelled(&self) -> bool {
        self.ended.load(Ordering::Relaxed) || self.config.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed))
    }
}

impl NodeInner {
    pub(crate) fn start_job(
        &self,
        component: JobComponent,
        config: JobConfig,
        owner: Option<(String, u32)>,
    ) -> Arc<JobState> {
        let id = JobId(self.next_job.fetch_add(1, Ordering::Relaxed));
        let key: Arc<str> = match &config.label {
            Some(label) => label.as_str().into(),
            None => format!("{}/{}", self.id, id.0).into(),
        };
        let job = Arc::new(JobState {
            id,
            component,
            config,
            tasks: Mutex::new(HashMap::default()),
            actors: Mutex::new(HashMap::new()),
            collected: Mutex::new(Default::default()),
            named: Mutex::new(HashMap::new()),
            pending: Arc::new(Semaphore::new(limits::MAX_PENDING_TASKS_PER_JOB)),
            ended: AtomicBool::new(false),
            owner,
            groups: Mutex::new(Vec::new()),
            foreign: Mutex::new(HashMap::new()),
            handed: Mutex::new(HashMap::new()),
            key,
            started_ms: crate::persist::now_ms(),
            hosts_detached: AtomicBool::new(false),
            idle: Mutex::new(Vec::new()),
            spares: Mutex::new(Spares::default()),
        });
        lock(&self.jobs).insert(id, job.clone());
        job
    }
}

impl Node {
    fn start_job(&self, component: JobComponent, config: JobConfig) -> Arc<JobState> {
        self.inner.start_job(component, config, None)
    }

    fn driver(&self, job: &JobState) -> Caller {
        Caller {
            job: job.id,
            task: TaskId::root(self.inner.salt, job.id),
            actor: None,
            function: "main".into(),
            holds: Resources::new(),
            env: Vec::new(),
        }
    }

    /// Runs a job: its `#[wray::main]` with `args`, then tears down whatever
    /// it left running (tasks are cancelled, actors killed, objects freed).
    ///
    /// The driver runs as a task of the runtime's worker threads, whatever
    /// thread awaits this: its tasks and actor calls are spawned onto the
    /// worker it runs on, so that a task submitted and then waited for
    /// (`get`) runs on that same thread when the driver blocks, and its
    /// result wakes the driver there — no futex wake-up or context switch
    /// per round trip, which is what a driver on `block_on`'s thread paid
    /// (measured: see docs/BENCHMARKS.md, "Core at 100× Ray"). Dropping
    /// the returned future stops the driver, as before.
    pub async fn run_job(&self, component: JobComponent, args: Vec<String>, config: JobConfig) -> Result<(), JobError> {
        let name = component.name().to_string();
        let node = self.clone();
        let mut driver = AbortOnDrop(tokio::spawn(async move { node.run_driver(component, args, config).await }));
        match (&mut driver.0).await {
            Ok(outcome) => outcome,
            Err(e) => Err(JobError::Failed { name, message: format!("the driver's host task failed: {e}") }),
        }
    }

    async fn run_driver(&self, component: JobComponent, args: Vec<String>, config: JobConfig) -> Result<(), JobError> {
        let name = component.name().to_string();
        let job = self.start_job(component, config);
        let services: Arc<dyn Services> = self.inner.clone();
        // A wasi:cli command reads its arguments from WASI, after its name
        // (`argv[0]`), as under `wasmtime run`.
        let grants = match job.component.is_command() {
            false => std::borrow::Cow::Borrowed(&job.config.grants),
            true => std::borrow::Cow::Owned(wray_host::Grants {
                args: std::iter::once(name.clone()).chain(args.iter().cloned()).collect(),
                stdin: job.config.command_stdin,
                ..job.config.grants.clone()
            }),
        };
        let outcome = match Instance::new(&job.component, services, self.driver(&job), job.config.limits, &grants).await
        {
            Err(e) => Err(JobError::Start { name: name.clone(), message: e.to_string() }),
            Ok(mut driver) => {
                if let Some(flag) = &job.config.cancel {
                    driver.set_cancel_flag(flag.clone());
                }
                // Cancellation must also stop a driver that is blocked in
                // `get` (its epoch callback only runs while it runs), so race
                // the call against the flag and drop the call if it loses.
                let r = match job.config.cancel.clone() {
                    None => driver.run_main(args, job.config.limits.time).await,
                    Some(flag) => tokio::select! {
                        r = driver.run_main(args, job.config.limits.time) => r,
                        () = wait_flag(&flag) => Err(CallError::Cancelled),
                    },
                };
                drop(driver);
                match r {
                    Ok(()) | Err(CallError::Exit(0)) => Ok(()),
                    Err(CallError::Cancelled) => Err(JobError::Cancelled { name: name.clone() }),
                    Err(CallError::Exit(status)) => Err(JobError::Exited { name: name.clone(), status }),
                    Err(e) => Err(JobError::Failed {
                        name: name.clone(),
                        message: match e {
                            CallError::Guest(m) => format!("main returned an error: {m}"),
                            other => other.to_string(),
                        },
                    }),
                }
            }
        };
        self.inner.end_job(&job);
        outcome
    }

    /// Calls one remote function of `component` directly, as a task of a
    /// fresh job, with encoded arguments; returns the encoded result. What an
    /// embedding host uses to treat a component as a library of functions.
    pub async fn call(
        &self,
        component: JobComponent,
        function: &str,
        args: Vec<bytes::Bytes>,
        config: JobConfig,
    ) -> Result<bytes::Bytes, wray_core::Error> {
        let job = self.start_job(component, config);
        let caller = self.driver(&job);
        let args = args.into_iter().map(|data| ArgSpec::Value(Value { data, ..Value::default() })).collect();
        let mut options = Options::default();
        options.resources.set(wray_core::CPU, 1.0);
        options.max_retries = wray_core::DEFAULT_MAX_RETRIES;
        let r = match self.inner.submit(&caller, 1, function.to_string(), args, options).await {
            Ok(id) => self.inner.object(id).await.map(|o| o.data),
            Err(e) => Err(e),
        };
        self.inner.end_job(&job);
        r
    }
}

impl NodeInner {
    pub(crate) fn job(&self, id: JobId) -> Result<Arc<JobState>, wray_core::Error> {
        lock(&self.jobs).get(&id).cloned().ok_or_else(|| wray_core::Error::InvalidArgument(format!("{id} has ended")))
    }

    /// The jobs whose tasks are listed: the running ones and those ended
    /// with tasks still finishing (`ended_jobs`, pruned here).
    pub(crate) fn listed_jobs(&self) -> Vec<Arc<JobState>> {
        let mut jobs = Vec::new();
        // Jobs no longer listed are dropped after the locks are let go:
        // the last reference to one may be here.
        let mut gone = Vec::new();
        {
            let running = lock(&self.jobs);
            jobs.extend(running.values().cloned());
            lock(&self.ended_jobs).retain(|j| match j.upgrade() {
                Some(j) if j.has_tasks() => {
                    jobs.push(j);
                    true
                }
                j => {
                    gone.extend(j);
                    false
                }
            });
        }
        drop(gone);
        jobs
    }

    /// Tears a job down: interrupt its tasks, kill its actors, free its
    /// objects.
    pub(crate) fn end_job(&self, job: &Arc<JobState>) {
        job.ended.store(true, Ordering::Relaxed);
        lock(&job.idle).clear();
        let spares = {
            let mut spares = lock(&job.spares);
            (std::mem::take(&mut spares.ready), std::mem::take(&mut spares.spent))
        };
        drop(spares);
        for token in lock(&job.tasks).values() {
            token.cancel();
        }
        let actors: Vec<_> = lock(&job.actors).drain().map(|(_, a)| a).collect();
        for a in actors {
            a.kill("the job ended", true);
        }
        {
            // Moved under the jobs' lock, which a listing holds while it
            // reads both: listed once, never missed between the two.
            let mut jobs = lock(&self.jobs);
            jobs.remove(&job.id);
            let mut ended = lock(&self.ended_jobs);
            // Only pruned of jobs already dropped, whose drop cannot come
            // here under the locks; the rest is pruned by listings.
            ended.retain(|j| j.strong_count() > 0);
            if job.has_tasks() {
                ended.push(Arc::downgrade(job));
            }
        }
        self.store.free_job(job.id);
        // After the store: a copy freed with lends still out gives nothing
        // back (`cluster/lent_handles.rs`).
        self.lends.forget_job(job.id);
        self.meetings.end_job(job.id);
        let groups = std::mem::take(&mut *lock(&job.groups));
        if !groups.is_empty()
            && let Ok(node) = self.arc()
        {
            tokio::spawn(async move {
                for id in groups {
                    if let Err(e) = node.remove_group(id).await {
                        tracing::warn!("removing placement group {id:016x} of an ended job: {e}");
                    }
                }
            });
        }
    }

    /// Adds a reference to every object `args` mention, so they outlive the
    /// task that uses them. On error nothing stays pinned.
    pub(crate) fn pin_args(&self, job: JobId, args: &[ArgSpec]) -> Result<Vec<ObjectId>, wray_core::Error> {
        let mut pinned = Vec::new();
        for a in args {
            let ids: &[ObjectId] = match a {
                ArgSpec::Object(id) => std::slice::from_ref(id),
                ArgSpec::Value(v) => &v.refs,
            };
            for id in ids {
                if let Err(e) = self.store.add_ref(job, *id) {
                    self.unpin(&pinned);
                    return Err(e);
                }
                pinned.push(*id);
            }
        }
        Ok(pinned)
    }

    pub(crate) fn unpin(&self, pinned: &[ObjectId]) {
        for id in pinned {
            self.store.release(*id);
        }
    }

    /// Waits for the objects among arguments to be made (here or on
    /// another node) without reading them. A failed dependency fails the
    /// dependent with the same error, as in Ray.
    pub(crate) async fn await_args(&self, args: &[ArgSpec]) -> Result<(), wray_core::Error> {
        for a in args {
            if let ArgSpec::Object(id) = a {
                self.store.find(*id).await?;
            }
        }
        Ok(())
    }

    /// Resolves arguments to bytes, waiting for objects still being made.
    /// A failed dependency fails the dependent with the same error, as in
    /// Ray.
    pub(crate) async fn resolve_args(&self, args: &[ArgSpec]) -> Result<Vec<bytes::Bytes>, wray_core::Error> {
        let mut out = Vec::with_capacity(args.len());
        for a in args {
            out.push(match a {
                ArgSpec::Value(v) => v.data.clone(),
                ArgSpec::Object(id) => self.object(*id).await?.data,
            });
        }
        Ok(out)
    }
}

/// Resolves once `flag` is set. Polls every epoch tick: there is one such
/// future per job, and a tick is the latency cancellation promises anyway.
pub(crate) async fn wait_flag(flag: &AtomicBool) {
    while !flag.load(Ordering::Relaxed) {
        tokio::time::sleep(wray_host::EPOCH_TICK).await;
    }
}

/// How long `get`/`wait` may wait, as a deadline.
pub(crate) fn deadline(timeout: Option<Duration>) -> Option<tokio::time::Instant> {
    timeout.map(|t| tokio::time::Instant::now() + t)
}

/// Aborts a spawned task when dropped: the driver of a job whose caller
/// stopped waiting must not run on unobserved.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
