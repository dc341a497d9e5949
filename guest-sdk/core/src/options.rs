use crate::bindings::wray::runtime::types as wit;
use std::time::Duration;

/// Options of one remote function call or actor creation: what
/// `f::options()` and `Type::options()` build. Unset fields take the job's
/// defaults (set with `wray run` flags).
#[derive(Clone, Debug, Default)]
pub struct CallOptions {
    pub(crate) num_cpus: Option<f64>,
    pub(crate) resources: Vec<(String, f64)>,
    pub(crate) memory_limit: Option<u64>,
    pub(crate) time_limit: Option<Duration>,
    pub(crate) max_retries: Option<u32>,
    pub(crate) retry_exceptions: bool,
    pub(crate) reuse_instance: bool,
    pub(crate) max_calls: Option<u32>,
    pub(crate) generator_backpressure: Option<u32>,
    pub(crate) name: Option<String>,
    pub(crate) max_concurrency: Option<u32>,
    pub(crate) max_restarts: Option<u32>,
    pub(crate) max_task_retries: Option<u32>,
    pub(crate) placement: Option<(u64, u32)>,
    pub(crate) detached: bool,
    pub(crate) checkpoint_every: Option<u32>,
    pub(crate) scheduling: SchedulingStrategy,
    pub(crate) env: Vec<(String, String)>,
}

/// Which node a task or actor goes to, among those that could run it
/// (Ray's `scheduling_strategy`; a placement group's bundle, the third
/// kind, is set with `.placement_group(..)`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SchedulingStrategy {
    /// The submitting node while it has room, else the node with the
    /// largest share of its CPUs free: a job's work stays next to its
    /// objects.
    #[default]
    Default,
    /// The cluster's nodes with room in turn (Ray's `"SPREAD"`: round
    /// robin, the submitting node included): actors that should not share
    /// a node's CPUs or its failure — replicas, workers, runners. On a
    /// single node it is the same as `Default`.
    Spread,
    /// The node whose id is `node_id` ([`crate::runtime_context`]'s
    /// `node_id`; Ray's `NodeAffinitySchedulingStrategy`). Hard (`soft:
    /// false`): that node only, queued there until it has room; a node
    /// that is not in the cluster, or can never meet the demand, fails the
    /// task with `InvalidArgument` (an actor dies). Soft: that node while
    /// it has room, else where `Default` would go.
    NodeAffinity {
        /// The node's id.
        node_id: String,
        /// Elsewhere rather than queued or failed.
        soft: bool,
    },
}

impl CallOptions {
    /// CPU slots to hold while running (fractional allowed; default 1).
    pub fn num_cpus(mut self, cpus: f64) -> Self {
        self.num_cpus = Some(cpus);
        self
    }
    /// Holds `amount` of the custom resource `name` while running.
    pub fn resource(mut self, name: &str, amount: f64) -> Self {
        self.resources.push((name.to_string(), amount));
        self
    }
    /// GPUs to hold while running (fractional allowed: four tasks of 0.25
    /// share one GPU). Tensors ([`crate::Tensor`]) made by a task holding a GPU
    /// live on it.
    pub fn num_gpus(self, gpus: f64) -> Self {
        self.resource("GPU", gpus)
    }
    /// Limits the instance's linear memory to `bytes`.
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.memory_limit = Some(bytes);
        self
    }
    /// Limits the execution time of one run (time blocked in `get`/`wait`
    /// does not count).
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = Some(limit);
        self
    }
    /// Tasks: retries after a system failure (default 3); with
    /// `retry_exceptions(true)`, after errors and panics too.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = Some(retries);
        self
    }
    /// Tasks: whether returned errors (and panics) are retried.
    pub fn retry_exceptions(mut self, retry: bool) -> Self {
        self.retry_exceptions = retry;
        self
    }
    /// Tasks: with `true`, the task may run in an instance that an earlier
    /// task of this job (of any function, also asking for reuse, with the
    /// same memory limit) succeeded in, and leaves its own instance for a
    /// later one — as Ray's worker processes run one task after another.
    /// What a task leaves in its instance (statics, `thread_local!`s, the
    /// heap, refs it kept) is then seen by later tasks of the job; an
    /// instance is never shared between jobs, never kept after a failed
    /// task, and never runs two tasks at once. Default `false`: every task
    /// starts from a fresh instance. Worth it for many short tasks: a
    /// fresh instance costs about 10 µs of CPU to make and drop (a node
    /// with an idle core makes the next one ahead of a task submitted one
    /// at a time, but a batch of tasks pays it in full).
    pub fn reuse_instance(mut self, reuse: bool) -> Self {
        self.reuse_instance = reuse;
        self
    }
    /// Tasks: an instance runs at most `n` tasks of this function, then is
    /// dropped rather than kept for a later task (Ray's `max_calls`) — only
    /// meaningful with [`reuse_instance`](Self::reuse_instance), since
    /// without it every task has a fresh instance anyway. At least 1 (the
    /// submission is refused with `InvalidArgument` otherwise).
    pub fn max_calls(mut self, n: u32) -> Self {
        self.max_calls = Some(n);
        self
    }
    /// Tasks that are generators: the task pauses in its `yield` while `n`
    /// of its items wait unread — yielded, but not yet handed out by the
    /// caller's [`ObjectRefGenerator`](crate::ObjectRefGenerator) — and
    /// goes on as the caller takes one (Ray's
    /// `_generator_backpressure_num_objects`). While paused it gives its
    /// CPU back, as a task blocked in `get` does. Default: no bound — a
    /// generator runs ahead of a slow reader, its items waiting in the
    /// object store. When the task runs on another node than its caller,
    /// the items on their way between the two come on top of `n`. At least
    /// 1; not for actors (the submission is refused with
    /// `InvalidArgument`).
    pub fn generator_backpressure(mut self, n: u32) -> Self {
        self.generator_backpressure = Some(n);
        self
    }
    /// Actors: registers the actor under `name`, for `wray::get_actor`.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }
    /// Actors: with `n > 1`, up to `n` calls wait for their arguments at once
    /// and each runs as soon as its arguments are ready, instead of strictly
    /// in submission order. Calls never run simultaneously inside one Wasm
    /// instance. Default 1.
    pub fn max_concurrency(mut self, calls: u32) -> Self {
        self.max_concurrency = Some(calls);
        self
    }
    /// Actors: how often the actor is rebuilt (constructor re-run) after its
    /// instance crashes.
    pub fn max_restarts(mut self, restarts: u32) -> Self {
        self.max_restarts = Some(restarts);
        self
    }
    /// Actors: how often a call that the actor's crash interrupted runs
    /// again on the restarted actor (Ray's `max_task_retries`; needs
    /// `max_restarts`). Default 0.
    pub fn max_task_retries(mut self, retries: u32) -> Self {
        self.max_task_retries = Some(retries);
        self
    }
    /// Runs in bundle `index` of `group`: on the bundle's node, out of the
    /// resources the bundle reserved (the demand must fit in the bundle).
    pub fn placement_group(mut self, group: &crate::PlacementGroup, index: u32) -> Self {
        self.placement = Some((group.id(), index));
        self
    }
    /// Actors: outlives the job that creates it, until [`kill`](crate::kill)ed;
    /// any later job of the cluster finds it with
    /// [`get_actor`](crate::get_actor). Needs a [`name`](Self::name); its
    /// constructor arguments must be plain values (no refs).
    pub fn detached(mut self) -> Self {
        self.detached = true;
        self
    }
    /// Actors: snapshots the actor's memory after every `calls`-th call,
    /// so that a restart (after a crash, or on another node after its node
    /// died) continues from the last snapshot instead of re-running the
    /// constructor. Actors qualify while they hold no object refs, tensors
    /// or open files between calls (see the crate's *Actors* section).
    pub fn checkpoint_every(mut self, calls: u32) -> Self {
        self.checkpoint_every = Some(calls);
        self
    }
    /// Which node it goes to among those that could run it (default:
    /// [`SchedulingStrategy::Default`]). Not with a placement group, whose
    /// bundle decides that (the call fails with `InvalidArgument`).
    pub fn scheduling_strategy(mut self, strategy: SchedulingStrategy) -> Self {
        self.scheduling = strategy;
        self
    }
    /// Sets the environment variable `name` to `value` for this task or
    /// actor (its instance's `std::env::var`), over the variables the job
    /// was granted with `wray run --env` — Ray's `runtime_env={"env_vars":
    /// {...}}`. Call it once per variable; setting a name again replaces
    /// its value. At most 64 variables and 16 KiB in all, names without
    /// `=` or NUL: otherwise the submission is refused with
    /// `InvalidArgument` (`f::remote` panics with its message, an actor's
    /// `try_remote` returns it). What the task or actor submits inherits
    /// its variables under its own, as Ray's `runtime_env` is inherited.
    /// Tasks asking for [`reuse_instance`](Self::reuse_instance) share
    /// instances only with tasks that set the same variables.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        match self.env.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.env.push((name.to_string(), value.to_string())),
        }
        self
    }
    pub(crate) fn to_wit(&self) -> wit::Options {
        wit::Options {
            num_cpus: self.num_cpus,
            resources: self
                .resources
                .iter()
                .map(|(name, amount)| wit::ResourceAmount { name: name.clone(), amount: *amount })
                .collect(),
            memory_limit: self.memory_limit,
            time_limit_ms: self.time_limit.map(|d| d.as_millis().min(u128::from(u64::MAX)) as u64),
            max_retries: self.max_retries,
            retry_exceptions: self.retry_exceptions,
            reuse_instance: self.reuse_instance,
            max_calls: self.max_calls,
            generator_backpressure: self.generator_backpressure,
            name: self.name.clone(),
            max_concurrency: self.max_concurrency,
            max_restarts: self.max_restarts,
            max_task_retries: self.max_task_retries,
            placement: self.placement.map(|(group, index)| wit::BundleRef { group, index }),
            detached: self.detached,
            checkpoint_every: self.checkpoint_every,
            env: self.env.clone(),
            scheduling: match &self.scheduling {
                SchedulingStrategy::Default => wit::SchedulingStrategy::Default,
                SchedulingStrategy::Spread => wit::SchedulingStrategy::Spread,
                SchedulingStrategy::NodeAffinity { node_id, soft } => {
                    wit::SchedulingStrategy::NodeAffinity(wit::NodeAffinity { node_id: node_id.clone(), soft: *soft })
                }
            },
        }
    }
}

/// Builder methods of the generated option types, forwarding to
/// [`CallOptions`]. Expanded inside the generated `impl` blocks so that the
/// methods are inherent: no trait to import.
#[doc(hidden)]
#[macro_export]
macro_rules! __forward_options {
    ($($(#[$doc:meta])* $name:ident($arg:ident: $ty:ty);)*) => { $(
        $(#[$doc])*
        pub fn $name(self, $arg: $ty) -> Self {
            Self(self.0.$name($arg))
        }
    )* };
}

/// Builder methods of `f::Options` (remote functions).
#[doc(hidden)]
#[macro_export]
macro_rules! __task_options_methods {
    () => {
        $crate::__forward_options! {
            /// CPU slots to hold while running (fractional allowed; default 1).
            num_cpus(cpus: f64);
            /// Limits the instance's linear memory to `bytes`.
            memory_limit(bytes: u64);
            /// Limits the execution time of one run (time blocked in
            /// `get`/`wait` does not count).
            time_limit(limit: ::std::time::Duration);
            /// Retries after a system failure (default 3); with
            /// `retry_exceptions(true)`, after errors and panics too.
            max_retries(retries: u32);
            /// Whether returned errors (and panics) are retried.
            retry_exceptions(retry: bool);
            /// Whether the task may run in an instance an earlier task of
            /// the job succeeded in, and leave its own for a later one
            /// (state carries over between them; default: a fresh instance
            /// every time). See `CallOptions::reuse_instance`.
            reuse_instance(reuse: bool);
            /// Runs of this function an instance may do before it is
            /// dropped (Ray's `max_calls`). See `CallOptions::max_calls`.
            max_calls(n: u32);
            /// A generator pauses while `n` of its items wait unread (Ray's
            /// `_generator_backpressure_num_objects`). See
            /// `CallOptions::generator_backpressure`.
            generator_backpressure(n: u32);
            /// Which node it runs on among those that could
            /// (`SchedulingStrategy::Spread`: the nodes with room in turn).
            scheduling_strategy(strategy: $crate::SchedulingStrategy);
        }
        /// Holds `amount` of the custom resource `name` while running.
        pub fn resource(self, name: &str, amount: f64) -> Self {
            Self(self.0.resource(name, amount))
        }
        /// GPUs to hold while running (fractional allowed); the task's
        /// tensors live on the GPU.
        pub fn num_gpus(self, gpus: f64) -> Self {
            Self(self.0.num_gpus(gpus))
        }
        /// Runs in bundle `index` of a placement group.
        pub fn placement_group(self, group: &$crate::PlacementGroup, index: u32) -> Self {
            Self(self.0.placement_group(group, index))
        }
        /// Sets the environment variable `name` for this task, over the
        /// job's (Ray's `runtime_env` `env_vars`). See `CallOptions::env`.
        pub fn env(self, name: &str, value: &str) -> Self {
            Self(self.0.env(name, value))
        }
    };
}

/// Builder methods of `TypeOptions` (actors).
#[doc(hidden)]
#[macro_export]
macro_rules! __actor_options_methods {
    () => {
        $crate::__forward_options! {
            /// CPU slots the actor holds while it lives (fractional allowed;
            /// default 0, as in Ray).
            num_cpus(cpus: f64);
            /// Limits the instance's linear memory to `bytes`.
            memory_limit(bytes: u64);
            /// Limits the execution time of one method call.
            time_limit(limit: ::std::time::Duration);
            /// With `n > 1`, up to `n` calls wait for their arguments at once
            /// and each runs as soon as its arguments are ready, instead of
            /// strictly in submission order. Calls never run simultaneously
            /// inside one Wasm instance. Default 1.
            max_concurrency(calls: u32);
            /// How often the actor is rebuilt (constructor re-run) after its
            /// instance crashes.
            max_restarts(restarts: u32);
            /// How often a call that the actor's crash interrupted runs again
            /// on the restarted actor (Ray's `max_task_retries`).
            max_task_retries(retries: u32);
            /// Snapshots the actor's memory after every `calls`-th call; a
            /// restarted actor (after a crash, or on another node after its
            /// node died) continues from the last snapshot instead of
            /// re-running its constructor. Only an actor holding no object
            /// refs, tensors or open files between calls qualifies.
            checkpoint_every(calls: u32);
            /// Which node it lives on among those that could
            /// (`SchedulingStrategy::Spread`: the nodes with room in turn —
            /// actors that should not share a node).
            scheduling_strategy(strategy: $crate::SchedulingStrategy);
        }
        /// Registers the actor under `name`, for `wray::get_actor`.
        pub fn name(self, name: &str) -> Self {
            Self(self.0.name(name))
        }
        /// Holds `amount` of the custom resource `name` while the actor lives.
        pub fn resource(self, name: &str, amount: f64) -> Self {
            Self(self.0.resource(name, amount))
        }
        /// GPUs the actor holds while it lives (fractional allowed); its
        /// tensors live on the GPU.
        pub fn num_gpus(self, gpus: f64) -> Self {
            Self(self.0.num_gpus(gpus))
        }
        /// Outlives the job that creates it, until killed; any later job
        /// of the cluster finds it by name. Needs `.name(..)`; constructor
        /// arguments must be plain values. On a cluster it is kept by the
        /// head, which re-creates it after a restart: from its last
        /// snapshot with `checkpoint_every`, else by re-running its
        /// constructor.
        pub fn detached(self) -> Self {
            Self(self.0.detached())
        }
        /// Sets the environment variable `name` for the actor's instance,
        /// over the job's (Ray's `runtime_env` `env_vars`). See
        /// `CallOptions::env`.
        pub fn env(self, name: &str, value: &str) -> Self {
            Self(self.0.env(name, value))
        }
        /// Lives in bundle `index` of a placement group.
        pub fn placement_group(self, group: &$crate::PlacementGroup, index: u32) -> Self {
            Self(self.0.placement_group(group, index))
        }
    };
}
