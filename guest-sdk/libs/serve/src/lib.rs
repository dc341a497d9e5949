//! HTTP serving — Ray Serve for wray, used as `wray::serve` (feature
//! `serve`).
//!
//! A **deployment** is an actor class (`#[wray::actor]`) whose replicas the
//! host creates, sends HTTP requests to, scales and replaces. Its request
//! method takes a [`Request`] and returns a [`Response`]:
//!
//! ```ignore
//! use wray::serve::{self, Request, Response};
//!
//! pub struct Hello { greeting: String }
//!
//! #[wray::actor]
//! impl Hello {
//!     pub fn new(greeting: String) -> Hello { Hello { greeting } }
//!     pub fn call(&mut self, req: Request) -> Response {
//!         let name = req.query_param("name").unwrap_or_else(|| "world".into());
//!         Response::json(&serde_json::json!({ "message": format!("{}, {name}!", self.greeting) }))
//!     }
//! }
//!
//! #[wray::main]
//! fn main() -> Result<(), wray::Error> {
//!     let hello = serve::deployment::<Hello>().num_replicas(2).route_prefix("/hello").bind(("Hello".to_string(),));
//!     serve::run("hello", hello)   // serves until Ctrl-C / shutdown
//! }
//! ```
//!
//! `wray serve run app.wasm --port 8000` runs it; `curl
//! localhost:8000/hello?name=wray` answers `{"message":"Hello, wray!"}`.
//!
//! * **Options** (Ray Serve's `@serve.deployment` arguments): replicas
//!   ([`Deployment::num_replicas`]) or [`Deployment::autoscaling`];
//!   [`Deployment::max_ongoing_requests`] per replica (more wait in a queue
//!   of [`Deployment::max_queued_requests`]; past it the proxy answers 503
//!   with `Retry-After`); per-replica resources and limits
//!   ([`Deployment::num_cpus`], [`Deployment::num_gpus`],
//!   [`Deployment::memory_limit`], ...); a route prefix; a request timeout
//!   (504 past it). On a cluster the replicas spread over the nodes
//!   ([`Deployment::scheduling_strategy`]).
//! * **Composition**: [`Bound::handle`] gives a [`DeploymentHandle`] to pass
//!   to another deployment's constructor; it has the actor's methods
//!   (`handle.predict(x)` returns an `ObjectRef`), each call going to the
//!   least loaded replica. Put every deployment in the application with
//!   [`Bound::with`].
//! * **Streaming**: a method that returns `impl Iterator<Item = Chunk>` (a
//!   generator method) streams its answer — each [`Chunk`] reaches the
//!   client as the replica yields it (Ray Serve's `StreamingResponse`;
//!   [`Chunk::event`] for server-sent events). The first chunk may be a
//!   head ([`Chunk::Head`]: status and headers); a failure midway breaks the
//!   response off, and a client that goes away stops the generator.
//! * **Batching**: [`Deployment::batch`] gathers requests; the method then
//!   takes `Vec<Request>` and returns one `Response` per request, in order.
//! * **Configuration and health**: [`Deployment::user_config`] is passed to
//!   each replica's `reconfigure(config)` method when it starts;
//!   [`Deployment::health_check_period`] calls its `check_health()` method
//!   (an error or panic replaces the replica).
//!
//! A replica is an actor of the job: it crashes and restarts like one (its
//! in-flight request fails with 500; with [`Deployment::idempotent`] a
//! request whose replica died is sent to another). See `docs/SERVE.md`.

#![deny(missing_docs)]

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::marker::PhantomData;
use std::ops::Deref;
use std::time::Duration;
use wray_guest_core::__private::{ActorMethods, RawActor, RawArg, RawDeployment};
use wray_guest_core::{Actor, Arg, CallOptions, Error, SchedulingStrategy};

pub use wray_codec::http::{Chunk, Request, Response};

/// Ray Serve's default `max_ongoing_requests`.
pub const DEFAULT_MAX_ONGOING_REQUESTS: u32 = 5;
/// Requests a deployment queues by default while its replicas are busy
/// (Ray's default is unbounded; a bound turns overload into 503s instead of
/// memory growth).
pub const DEFAULT_MAX_QUEUED_REQUESTS: u32 = 1000;
/// The method HTTP requests call unless [`Deployment::method`] says
/// otherwise.
pub const DEFAULT_METHOD: &str = "call";

/// How a deployment's replica count follows its load (Ray Serve's
/// `autoscaling_config`). The scaler aims for `ceil(load / target)`
/// replicas, load being requests running plus queued; it scales up after
/// the load has asked for more for `upscale_delay`, down after
/// `downscale_delay`. A deployment at 0 replicas starts one for the first
/// request at once.
#[derive(Clone, Debug)]
pub struct Autoscaling {
    /// Fewest replicas (0: scale to zero when idle).
    pub min_replicas: u32,
    /// Most replicas.
    pub max_replicas: u32,
    /// Replicas at start (default: `min_replicas`).
    pub initial_replicas: Option<u32>,
    /// Ongoing requests per replica aimed for (Ray's default 2).
    pub target_ongoing_requests: f64,
    /// Ray's default 30 s.
    pub upscale_delay: Duration,
    /// Ray's default 600 s.
    pub downscale_delay: Duration,
}

impl Default for Autoscaling {
    fn default() -> Autoscaling {
        Autoscaling {
            min_replicas: 1,
            max_replicas: 1,
            initial_replicas: None,
            target_ongoing_requests: 2.0,
            upscale_delay: Duration::from_secs(30),
            downscale_delay: Duration::from_secs(600),
        }
    }
}

/// A deployment of actor class `A` being configured — Ray's
/// `@serve.deployment(...)`. Finish with [`Deployment::bind`].
pub struct Deployment<A: Actor> {
    raw: RawDeployment,
    _class: PhantomData<fn() -> A>,
}

/// Starts configuring a deployment of `A`, named after the type (its last
/// path segment), with one replica, method `call` and no route prefix (the
/// application's ingress gets `/` if no deployment has one).
pub fn deployment<A: Actor>() -> Deployment<A> {
    let name = A::CLASS.rsplit("::").next().unwrap_or(A::CLASS).to_string();
    Deployment {
        raw: RawDeployment {
            name,
            class: A::CLASS,
            init_args: Vec::new(),
            method: DEFAULT_METHOD.to_string(),
            route_prefix: None,
            num_replicas: 1,
            autoscaling: None,
            max_ongoing_requests: DEFAULT_MAX_ONGOING_REQUESTS,
            max_queued_requests: DEFAULT_MAX_QUEUED_REQUESTS,
            batching: None,
            request_timeout: None,
            user_config: None,
            health_check_period: None,
            idempotent: false,
            // Ray Serve spreads replicas over the nodes by default.
            options: CallOptions::default().scheduling_strategy(SchedulingStrategy::Spread),
        },
        _class: PhantomData,
    }
}

impl<A: Actor> Deployment<A> {
    /// Its name in the application (handles find it by this name).
    pub fn name(mut self, name: &str) -> Self {
        self.raw.name = name.to_string();
        self
    }
    /// The method HTTP requests call (default `call`).
    pub fn method(mut self, method: &str) -> Self {
        self.raw.method = method.to_string();
        self
    }
    /// Requests whose path is this prefix or below it (`/predict`,
    /// `/predict/x`) come here.
    pub fn route_prefix(mut self, prefix: &str) -> Self {
        self.raw.route_prefix = Some(prefix.to_string());
        self
    }
    /// A fixed number of replicas (default 1).
    pub fn num_replicas(mut self, n: u32) -> Self {
        self.raw.num_replicas = n;
        self
    }
    /// Replicas follow the load.
    pub fn autoscaling(mut self, a: Autoscaling) -> Self {
        self.raw.autoscaling = Some((
            a.min_replicas,
            a.max_replicas,
            a.initial_replicas,
            a.target_ongoing_requests,
            a.upscale_delay,
            a.downscale_delay,
        ));
        self
    }
    /// Requests one replica handles at once (default 5); the replica runs
    /// them one after another (a Wasm instance runs one call at a time),
    /// so this is how many it has queued in its mailbox.
    pub fn max_ongoing_requests(mut self, n: u32) -> Self {
        self.raw.max_ongoing_requests = n;
        self
    }
    /// Requests that wait when every replica has `max_ongoing_requests`
    /// (default 1000); past it the proxy answers 503 with `Retry-After`.
    pub fn max_queued_requests(mut self, n: u32) -> Self {
        self.raw.max_queued_requests = n;
        self
    }
    /// Gathers up to `max_batch_size` requests, waiting at most `wait` after
    /// the first, into one call of the method, which then takes
    /// `Vec<Request>` and returns `Vec<Response>` (one per request, in
    /// order) — Ray Serve's `@serve.batch`.
    pub fn batch(mut self, max_batch_size: u32, wait: Duration) -> Self {
        self.raw.batching = Some((max_batch_size, wait));
        self
    }
    /// A request not answered within `timeout` gets 504 (default: the
    /// server's, 60 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.raw.request_timeout = Some(timeout);
        self
    }
    /// Passed to each replica's `reconfigure(config)` method once its
    /// constructor has run (Ray Serve's `user_config`).
    pub fn user_config<T: Serialize + 'static>(mut self, config: &T) -> Self {
        self.raw.user_config = wray_codec::encode(config).ok();
        self
    }
    /// Calls each replica's `check_health()` method this often; a replica
    /// whose check fails (an error, a panic, no answer within the period
    /// or 1 s) is replaced.
    pub fn health_check_period(mut self, period: Duration) -> Self {
        self.raw.health_check_period = Some(period);
        self
    }
    /// Requests whose replica died are sent once to another replica (only
    /// for methods with no effect that must happen once).
    pub fn idempotent(mut self) -> Self {
        self.raw.idempotent = true;
        self
    }
    /// CPUs each replica holds for its life (default 0, as actors).
    pub fn num_cpus(mut self, cpus: f64) -> Self {
        self.raw.options = self.raw.options.num_cpus(cpus);
        self
    }
    /// GPUs each replica holds (its tensors live on one).
    pub fn num_gpus(mut self, gpus: f64) -> Self {
        self.raw.options = self.raw.options.num_gpus(gpus);
        self
    }
    /// A custom resource each replica holds.
    pub fn resource(mut self, name: &str, amount: f64) -> Self {
        self.raw.options = self.raw.options.resource(name, amount);
        self
    }
    /// Each replica's linear-memory limit.
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.raw.options = self.raw.options.memory_limit(bytes);
        self
    }
    /// Execution-time limit of one request in a replica (a request past it
    /// fails with 500 and the replica restarts).
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.raw.options = self.raw.options.time_limit(limit);
        self
    }
    /// Which nodes the replicas go to: by default
    /// [`SchedulingStrategy::Spread`] (Ray Serve's default), the nodes with
    /// room in turn, so that one node's death takes as few replicas as
    /// possible; [`SchedulingStrategy::Default`] packs them on the node
    /// running the application while it has room.
    pub fn scheduling_strategy(mut self, strategy: SchedulingStrategy) -> Self {
        self.raw.options = self.raw.options.scheduling_strategy(strategy);
        self
    }
    /// How often a crashed replica is rebuilt in place (default 100; once
    /// spent, the controller replaces it).
    pub fn max_restarts(mut self, n: u32) -> Self {
        self.raw.options = self.raw.options.max_restarts(n);
        self
    }

    /// Gives the constructor's arguments — Ray's `.bind(...)`: a tuple, one
    /// element per parameter (`()` for none, `(x,)` for one).
    pub fn bind(mut self, args: impl InitArgs) -> Bound<A> {
        self.raw.init_args = args.into_raw();
        Bound { raw: self.raw, _class: PhantomData }
    }
}

/// Constructor arguments: tuples of serde values.
pub trait InitArgs {
    /// Each element, encoded.
    fn into_raw(self) -> Vec<RawArg>;
}

macro_rules! init_args {
    ($($t:ident),*) => {
        impl<$($t: Serialize + 'static),*> InitArgs for ($($t,)*) {
            #[allow(non_snake_case)]
            fn into_raw(self) -> Vec<RawArg> {
                let ($($t,)*) = self;
                vec![$(RawArg::new(Arg::Value($t))),*]
            }
        }
    };
}
init_args!();
init_args!(A);
init_args!(A, B);
init_args!(A, B, C);
init_args!(A, B, C, D);
init_args!(A, B, C, D, E);
init_args!(A, B, C, D, E, F);

/// A deployment with its constructor's arguments: ready to be part of an
/// application.
pub struct Bound<A: Actor> {
    raw: RawDeployment,
    _class: PhantomData<fn() -> A>,
}

impl<A: Actor> Bound<A> {
    /// A handle for calling this deployment from another one (pass it to
    /// that one's constructor).
    pub fn handle(&self) -> DeploymentHandle<A> {
        DeploymentHandle::named(&self.raw.name)
    }

    /// An application of this deployment (the ingress) and `other`.
    pub fn with<B: Actor>(self, other: Bound<B>) -> Application {
        Application::from(self).with(other)
    }
}

/// Deployments served together: the first added is the ingress.
pub struct Application {
    deployments: Vec<RawDeployment>,
}

impl Application {
    /// Adds a deployment.
    pub fn with<B: Actor>(mut self, other: Bound<B>) -> Application {
        self.deployments.push(other.raw);
        self
    }
}

impl<A: Actor> From<Bound<A>> for Application {
    fn from(b: Bound<A>) -> Application {
        Application { deployments: vec![b.raw] }
    }
}

/// Serves `app` under the name `name` until the server shuts down (Ctrl-C
/// on `wray serve run`, `wray serve shutdown`), then returns `Ok` once the
/// requests in flight have finished — Ray's `serve.run`, blocking. Fails at
/// once if a deployment is invalid (naming it and the bound), a
/// constructor fails (with its error), a route prefix is taken, or the job
/// does not run under `wray serve` ("this runtime does not serve HTTP").
///
/// Running an application with a name already served replaces it: the new
/// version's replicas start first, then take over the routes, and the old
/// version finishes its requests and stops — no request is dropped.
pub fn run(name: &str, app: impl Into<Application>) -> Result<(), Error> {
    let mut app = app.into();
    if app.deployments.iter().all(|d| d.route_prefix.is_none())
        && let Some(ingress) = app.deployments.first_mut()
    {
        ingress.route_prefix = Some("/".to_string());
    }
    wray_guest_core::__private::serve_run(name, app.deployments)
}

/// Gives every running replica of the application's deployment `name` a new
/// user config — its `reconfigure(config)` method runs in place, no replica
/// restarts — and keeps it for replicas started later (Ray Serve's
/// lightweight config update). Callable from inside the running
/// application: a replica (an admin route, say) or a task it started.
/// Returns once every replica has taken it; fails naming a replica whose
/// `reconfigure` failed, or an unknown deployment.
pub fn reconfigure<T: Serialize + 'static>(name: &str, config: &T) -> Result<(), Error> {
    let bytes = wray_codec::encode(config).map_err(|e| Error::InvalidArgument(e.to_string()))?;
    wray_guest_core::__private::serve_reconfigure(name, &bytes)
}

/// Calls another deployment of the same application — Ray's
/// `DeploymentHandle`. It has `A`'s methods (through `Deref`), each call
/// returning an [`ObjectRef`](wray_guest_core::ObjectRef) and going to the
/// least loaded replica of the deployment. Serializable: pass it to a
/// constructor with `bind`.
pub struct DeploymentHandle<A: Actor> {
    name: String,
    methods: A::Methods,
}

impl<A: Actor> DeploymentHandle<A> {
    /// A handle on the deployment called `name` in the caller's
    /// application.
    pub fn named(name: &str) -> DeploymentHandle<A> {
        DeploymentHandle { name: name.to_string(), methods: A::Methods::from_raw(RawActor::deployment(name)) }
    }

    /// The deployment's name.
    pub fn deployment_name(&self) -> &str {
        &self.name
    }

    /// A handle on the same deployment whose calls of generator methods
    /// pause while `n` of their items wait unread by this caller, and go
    /// on as it takes one — as
    /// [`ActorHandle::with_generator_backpressure`](wray_guest_core::ActorHandle::with_generator_backpressure)
    /// for an actor. Paused, the call keeps its slot on its replica
    /// (`max_ongoing_requests`). The setting stays with this handle and its
    /// clones; one passed to a constructor with `bind` arrives without it.
    /// Panics if `n` is 0. For example
    /// `self.tokens.with_generator_backpressure(8).stream(prompt)`.
    pub fn with_generator_backpressure(&self, n: u32) -> DeploymentHandle<A> {
        DeploymentHandle {
            name: self.name.clone(),
            methods: A::Methods::from_raw(self.methods.raw().with_generator_backpressure(n)),
        }
    }
}

impl<A: Actor> Deref for DeploymentHandle<A> {
    type Target = A::Methods;
    fn deref(&self) -> &A::Methods {
        &self.methods
    }
}

impl<A: Actor> Clone for DeploymentHandle<A> {
    fn clone(&self) -> Self {
        DeploymentHandle { name: self.name.clone(), methods: A::Methods::from_raw(self.methods.raw().clone()) }
    }
}

impl<A: Actor> std::fmt::Debug for DeploymentHandle<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeploymentHandle<{}>({:?})", A::CLASS, self.name)
    }
}

impl<A: Actor> Serialize for DeploymentHandle<A> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.name.serialize(s)
    }
}

impl<'de, A: Actor> Deserialize<'de> for DeploymentHandle<A> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(DeploymentHandle::named(&String::deserialize(d)?))
    }
}
