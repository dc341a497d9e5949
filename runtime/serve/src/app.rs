//! A running application: its deployments' replicas (actors of the job that
//! declared it), the requests routed to them, scaling and health.
//!
//! The controller reaches the node only through [`Services`], as a guest
//! does: it creates replicas with `create_actor`, sends each request as a
//! method call and reads the result with `get`. It acts as a task of its
//! own inside the application's job (`Caller` derived from the driver's),
//! so the replicas and every object it makes belong to that job and go
//! away with it.

use crate::autoscale::Scaler;
use crate::balance::{Admit, Balancer, ReplicaKey, Ticket};
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc, oneshot};
use wray_codec::http::{Chunk, Request, Response};
use wray_core::serve::Deployment;
use wray_core::{ActorId, Error, JobId, ObjectId};
use wray_host::{ArgSpec, Caller, Services, Value};

/// The method every actor answers once its constructor has run (the SDK's
/// `dispatch::READY_METHOD`; the WIT's `entry.actor-call` documents it).
pub const READY_METHOD: &str = "__wray_ready";
/// The method that receives `user_config` (Ray Serve's `reconfigure`).
pub const RECONFIGURE_METHOD: &str = "reconfigure";
/// The method the health check calls (Ray Serve's `check_health`).
pub const HEALTH_METHOD: &str = "check_health";

/// How often the controller looks at each deployment (scaling, dead
/// replicas, health checks due).
pub const CONTROL_TICK: Duration = Duration::from_millis(100);
/// A replica that failed to start waits this long before the next attempt,
/// doubled per failure in a row up to [`MAX_START_BACKOFF`]: a constructor
/// that always fails must not spin.
const START_BACKOFF: Duration = Duration::from_millis(500);
const MAX_START_BACKOFF: Duration = Duration::from_secs(30);
/// Chunks of a streamed response the proxy reads ahead of a slow client.
pub const STREAM_CHUNKS_AHEAD: usize = 16;
/// Chunks of a streamed response that wait unread in the object store
/// before the replica's generator pauses in its yield (the call's
/// `generator_backpressure`): with [`STREAM_CHUNKS_AHEAD`], a slow client
/// has at most 32 chunks made ahead of it (and, for a replica on another
/// node, what is on its way between the two), not the whole answer.
pub const STREAM_CHUNKS_UNREAD: u32 = 16;

/// How long a new application waits for its first replicas before `run`
/// fails (a constructor that loads a model may take a while).
pub const READY_TIMEOUT: Duration = Duration::from_secs(120);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Why a request got no response from a replica: what the proxy answers.
#[derive(Debug)]
pub struct Failure {
    /// 500, 503 or 504.
    pub status: u16,
    pub message: String,
    /// Seconds for a `Retry-After` header (503s).
    pub retry_after: Option<u32>,
}

impl Failure {
    fn new(status: u16, message: impl Into<String>) -> Failure {
        Failure { status, message: message.into(), retry_after: None }
    }
}

/// What the controller knows about one replica.
#[derive(Debug)]
struct Replica {
    actor: ActorId,
    started: Instant,
    /// Requests it completed.
    handled: u64,
    /// Stopping: finishes its requests, then is killed.
    draining: bool,
    last_health: Instant,
}

struct DepState {
    balancer: Balancer,
    tickets: HashMap<Ticket, oneshot::Sender<ReplicaKey>>,
    replicas: BTreeMap<ReplicaKey, Replica>,
    next_key: ReplicaKey,
    /// Replicas being created now.
    starting: u32,
    scaler: Option<Scaler>,
    /// The replica count aimed for now.
    target: u32,
    /// Start failures in a row, and when the next attempt may begin.
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<String>,
}

/// A deployment's answer to one request.
pub enum Answer {
    /// Its method returned a [`Response`].
    Whole(Response),
    /// Its method is a generator of [`Chunk`]s: the response's head (status,
    /// headers, the first bytes of its body), then the rest of the body as
    /// the replica yields it. An `Err` is why the response stops short: the
    /// proxy then breaks off the response (no final chunk in HTTP/1.1, a
    /// reset stream in HTTP/2), so the client sees it incomplete.
    Streamed { head: Response, rest: mpsc::Receiver<Result<Bytes, String>> },
}

/// One try of a request on a replica.
enum Attempt {
    Answered(Answer),
    /// The replica died first (an idempotent request may try another).
    Died(String),
}

/// A request waiting for its batch, and where its response goes.
type Batched = (Request, oneshot::Sender<Result<Response, Failure>>);

/// One deployment of a running application.
pub struct DeploymentRt {
    pub spec: Deployment,
    /// The user config new replicas get (`spec.user_config` until
    /// `serve.reconfigure` replaces it).
    user_config: Mutex<Option<Vec<u8>>>,
    init_args: Vec<ArgSpec>,
    state: Mutex<DepState>,
    /// Batched deployments: requests go to the batcher.
    batcher: Option<mpsc::Sender<Batched>>,
    /// What its requests through the proxy did (status, latency).
    pub requests: Mutex<crate::stats::RequestStats>,
}

/// A running application.
pub struct App {
    pub name: String,
    pub job: JobId,
    /// The job's `wray job submit` id, if it has one.
    pub job_label: Option<String>,
    services: Arc<dyn Services>,
    caller: Caller,
    seq: AtomicU64,
    pub deployments: Vec<Arc<DeploymentRt>>,
    started: Instant,
    /// Set when the application stops: the control loop ends.
    stopping: Notify,
}

/// The sequence number the controller's task takes among the driver's
/// children (far from the driver's own count, which starts at 1).
const CONTROLLER_SEQ: u64 = u64::MAX - 0x5e_7e;

impl App {
    /// Builds the application's state; replicas start with [`App::start`].
    pub fn new(services: Arc<dyn Services>, driver: &Caller, app: wray_host::Application) -> Arc<App> {
        let caller = Caller {
            job: driver.job,
            task: driver.task.child(CONTROLLER_SEQ),
            actor: None,
            function: format!("serve:{}", app.name).into(),
            holds: Default::default(),
            env: Vec::new(),
        };
        let started = Instant::now();
        Arc::new_cyclic(|me: &std::sync::Weak<App>| {
            let deployments = app
                .deployments
                .into_iter()
                .map(|(spec, init_args)| {
                    let batcher = spec.batching.as_ref().map(|b| {
                        let (tx, rx) = mpsc::channel(spec.max_queued_requests.max(1) as usize);
                        let (size, wait) = (b.max_batch_size as usize, b.batch_wait_timeout);
                        let me = me.clone();
                        let name = spec.name.clone();
                        tokio::spawn(async move { batcher(me, name, size, wait, rx).await });
                        tx
                    });
                    let target = spec.initial_replicas();
                    Arc::new(DeploymentRt {
                        user_config: Mutex::new(spec.user_config.clone()),
                        state: Mutex::new(DepState {
                            balancer: Balancer::new(spec.max_ongoing_requests, spec.max_queued_requests),
                            tickets: HashMap::new(),
                            replicas: BTreeMap::new(),
                            next_key: 0,
                            starting: 0,
                            scaler: spec.autoscaling.clone().map(Scaler::new),
                            target,
                            failures: 0,
                            retry_at: None,
                            last_error: None,
                        }),
                        spec,
                        init_args,
                        batcher,
                        requests: Mutex::new(Default::default()),
                    })
                })
                .collect();
            App {
                name: app.name,
                job: driver.job,
                job_label: app.job_label,
                services,
                caller,
                seq: AtomicU64::new(1),
                deployments,
                started,
                stopping: Notify::new(),
            }
        })
    }

    /// The deployment named `name`.
    pub fn deployment(&self, name: &str) -> Option<&Arc<DeploymentRt>> {
        self.deployments.iter().find(|d| d.spec.name == name)
    }

    /// Starts every deployment's first replicas and waits until each
    /// deployment that asked for any has one ready; fails with the first
    /// replica's error otherwise.
    pub async fn start(self: &Arc<Self>) -> Result<(), Error> {
        for d in &self.deployments {
            let n = lock(&d.state).target;
            for _ in 0..n {
                self.spawn_replica(d.clone());
            }
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let mut waiting = false;
            for d in &self.deployments {
                let st = lock(&d.state);
                if st.target > 0 && st.balancer.active() == 0 {
                    if st.failures > 0 {
                        return Err(Error::InvalidArgument(format!(
                            "deployment {:?} of application {:?}: its replica failed to start: {}",
                            d.spec.name,
                            self.name,
                            st.last_error.clone().unwrap_or_default()
                        )));
                    }
                    waiting = true;
                }
            }
            if !waiting {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::InvalidArgument(format!(
                    "application {:?}: its replicas did not start within {} s",
                    self.name,
                    READY_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The control loop: scaling, replacing dead replicas, health checks.
    /// Returns when [`App::stop`] is called.
    pub async fn control(self: Arc<Self>) {
        loop {
            tokio::select! {
                () = self.stopping.notified() => return,
                () = tokio::time::sleep(CONTROL_TICK) => {}
            }
            let now = Instant::now();
            for d in &self.deployments {
                self.control_one(d, now);
            }
        }
    }

    /// Ends the control loop (the replicas go when the job ends).
    pub fn stop(&self) {
        self.stopping.notify_one();
    }

    fn control_one(self: &Arc<Self>, d: &Arc<DeploymentRt>, now: Instant) {
        let mut guard = lock(&d.state);
        let st = &mut *guard;
        let live = st.replicas.values().filter(|r| !r.draining).count() as u32;
        if let Some(scaler) = st.scaler.as_mut() {
            let load = st.balancer.load() as f64;
            st.target = scaler.decide(now - self.started, live + st.starting, load);
        }
        // Start what is missing (after a back-off if starts are failing).
        let have = live + st.starting;
        if have < st.target && st.retry_at.is_none_or(|t| now >= t) {
            for _ in have..st.target {
                st.starting += 1;
                self.spawn_replica_locked(d.clone());
            }
        }
        // Drain the newest extras; kill drained replicas once idle.
        if have > st.target && st.starting == 0 {
            let extra = (have - st.target) as usize;
            let keys: Vec<ReplicaKey> =
                st.replicas.iter().rev().filter(|(_, r)| !r.draining).take(extra).map(|(k, _)| *k).collect();
            for k in keys {
                st.balancer.drain(k);
                if let Some(r) = st.replicas.get_mut(&k) {
                    r.draining = true;
                }
            }
        }
        let idle: Vec<(ReplicaKey, ActorId)> = st
            .replicas
            .iter()
            .filter(|(k, r)| r.draining && st.balancer.ongoing(**k) == 0)
            .map(|(k, r)| (*k, r.actor))
            .collect();
        for (k, actor) in idle {
            st.replicas.remove(&k);
            st.balancer.remove(k);
            let _ = self.services.kill_actor(&self.caller, actor, true);
        }
        // Health checks that are due.
        if let Some(period) = d.spec.health_check_period {
            for (k, r) in st.replicas.iter_mut() {
                if !r.draining && now.duration_since(r.last_health) >= period {
                    r.last_health = now;
                    let (me, d, key, actor) = (self.clone(), d.clone(), *k, r.actor);
                    tokio::spawn(async move {
                        let timeout = period.max(Duration::from_secs(1));
                        let r = tokio::time::timeout(timeout, me.call(actor, HEALTH_METHOD, Vec::new())).await;
                        let why = match r {
                            Ok(Ok(_)) => return,
                            Ok(Err(e)) => e.to_string(),
                            Err(_) => format!("no answer in {} ms", timeout.as_millis()),
                        };
                        tracing::warn!(app = %me.name, deployment = %d.spec.name, "replica {key} failed its health check: {why}; replacing it");
                        me.replica_died(&d, key, &why);
                    });
                }
            }
        }
    }

    fn spawn_replica(self: &Arc<Self>, d: Arc<DeploymentRt>) {
        lock(&d.state).starting += 1;
        self.spawn_replica_locked(d);
    }

    /// Starts one replica in the background; `starting` is already counted.
    fn spawn_replica_locked(self: &Arc<Self>, d: Arc<DeploymentRt>) {
        let me = self.clone();
        tokio::spawn(async move {
            let r = me.create_replica(&d).await;
            let mut st = lock(&d.state);
            st.starting -= 1;
            match r {
                Ok(actor) => {
                    st.failures = 0;
                    st.retry_at = None;
                    let key = st.next_key;
                    st.next_key += 1;
                    let now = Instant::now();
                    st.replicas
                        .insert(key, Replica { actor, started: now, handled: 0, draining: false, last_health: now });
                    let served = st.balancer.add(key);
                    for (t, k) in served {
                        hand_over(&mut st, t, k);
                    }
                }
                Err(e) => {
                    st.failures += 1;
                    let backoff = START_BACKOFF.saturating_mul(1 << (st.failures - 1).min(8)).min(MAX_START_BACKOFF);
                    st.retry_at = Some(Instant::now() + backoff);
                    tracing::warn!(app = %me.name, deployment = %d.spec.name, "a replica failed to start: {e}");
                    st.last_error = Some(e.to_string());
                }
            }
        });
    }

    async fn create_replica(&self, d: &DeploymentRt) -> Result<ActorId, Error> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let actor = self
            .services
            .create_actor(&self.caller, seq, d.spec.class.clone(), d.init_args.clone(), d.spec.options.clone())
            .await?;
        let ready = async {
            // Waits for the constructor, and checks that the methods the
            // controller will call exist. The request method only if HTTP
            // reaches the deployment: one without a route prefix is called
            // through handles alone (Ray Serve's model behind an ingress
            // need not have `__call__`).
            let config = lock(&d.user_config).clone();
            let mut methods = Vec::new();
            if d.spec.route_prefix.is_some() {
                methods.push(d.spec.method.as_str());
            }
            if config.is_some() {
                methods.push(RECONFIGURE_METHOD);
            }
            if d.spec.health_check_period.is_some() {
                methods.push(HEALTH_METHOD);
            }
            let names =
                methods.iter().map(|m| Bytes::from(wray_codec::encode(&m.to_string()).unwrap_or_default())).collect();
            self.call(actor, READY_METHOD, names).await?;
            if let Some(config) = config {
                self.call(actor, RECONFIGURE_METHOD, vec![Bytes::from(config)]).await?;
            }
            Ok::<(), Error>(())
        };
        if let Err(e) = ready.await {
            let _ = self.services.kill_actor(&self.caller, actor, true);
            return Err(e);
        }
        Ok(actor)
    }

    /// Calls `method` on `actor` with encoded arguments and returns the
    /// encoded result.
    async fn call(&self, actor: ActorId, method: &str, args: Vec<Bytes>) -> Result<Bytes, Error> {
        self.send(actor, method, args).await?.result().await
    }

    /// Queues a call of `method` on `actor`; its result is read with
    /// [`Sent::result`]. Calls sent to several actors before any result is
    /// read run at the same time.
    async fn send(&self, actor: ActorId, method: &str, args: Vec<Bytes>) -> Result<Sent<'_>, Error> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let args = args.into_iter().map(|data| ArgSpec::Value(Value { data, ..Value::default() })).collect();
        let id =
            self.services.call_actor(&self.caller, seq, actor, method.to_string(), args, STREAM_CHUNKS_UNREAD).await?;
        Ok(Sent { app: self, release: Release { services: self.services.clone(), job: self.job, id } })
    }

    /// Gives every running replica of `deployment` a new user config in
    /// place (its `reconfigure` method), and keeps it for replicas started
    /// later.
    pub async fn reconfigure(&self, caller: &Caller, deployment: &str, config: Vec<u8>) -> Result<(), Error> {
        let d = self.deployment(deployment).cloned().ok_or_else(|| {
            Error::InvalidArgument(format!("application {:?} has no deployment {deployment:?}", self.name))
        })?;
        // A replica runs one call at a time: one of `deployment`'s own
        // replicas would wait for itself.
        if caller.actor.is_some_and(|a| lock(&d.state).replicas.values().any(|r| r.actor == a)) {
            return Err(Error::InvalidArgument(format!(
                "a replica of {deployment:?} cannot reconfigure its own deployment (it would wait for itself); \
                 call serve::reconfigure from another deployment or a task"
            )));
        }
        *lock(&d.user_config) = Some(config.clone());
        let actors: Vec<(ReplicaKey, ActorId)> =
            lock(&d.state).replicas.iter().filter(|(_, r)| !r.draining).map(|(k, r)| (*k, r.actor)).collect();
        let arg = Bytes::from(config);
        let failed = |key: ReplicaKey, e: Error| {
            Error::InvalidArgument(format!("deployment {deployment:?}: replica {key} did not take the new config: {e}"))
        };
        // Every replica's call is queued first, so they run at once.
        let mut sent = Vec::with_capacity(actors.len());
        for (key, actor) in &actors {
            sent.push((
                *key,
                self.send(*actor, RECONFIGURE_METHOD, vec![arg.clone()]).await.map_err(|e| failed(*key, e))?,
            ));
        }
        for (key, call) in sent {
            call.result().await.map_err(|e| failed(key, e))?;
        }
        Ok(())
    }

    /// A replica died or failed its health check: forget it (the control
    /// loop starts another) and kill it if it still runs.
    fn replica_died(&self, d: &DeploymentRt, key: ReplicaKey, why: &str) {
        let mut st = lock(&d.state);
        if let Some(r) = st.replicas.remove(&key) {
            st.balancer.remove(key);
            st.last_error = Some(why.to_string());
            let _ = self.services.kill_actor(&self.caller, r.actor, true);
        }
    }

    /// Serves one HTTP request on deployment `d`. A streamed answer stops
    /// short if the replica yields no chunk for `idle`.
    pub async fn handle(
        self: &Arc<Self>,
        d: &Arc<DeploymentRt>,
        req: Request,
        idle: Duration,
    ) -> Result<Answer, Failure> {
        if let Some(batcher) = &d.batcher {
            let (tx, rx) = oneshot::channel();
            if batcher.try_send((req, tx)).is_err() {
                return Err(busy(d));
            }
            let whole = rx.await.unwrap_or_else(|_| Err(Failure::new(503, "the application is shutting down")));
            return whole.map(Answer::Whole);
        }
        let arg = Bytes::from(wray_codec::encode(&req).map_err(|e| Failure::new(500, e.to_string()))?);
        let attempts = if d.spec.idempotent { 2 } else { 1 };
        for attempt in 1..=attempts {
            let lease = self.acquire(d).await?;
            let key = lease.key;
            match self.answer(d, lease, arg.clone(), idle).await? {
                Attempt::Answered(answer) => return Ok(answer),
                Attempt::Died(why) => {
                    self.replica_died(d, key, &why);
                    if attempt == attempts {
                        return Err(Failure::new(500, format!("the replica died: {why}")));
                    }
                }
            }
        }
        unreachable!("the loop returns on its last attempt")
    }

    /// Calls `d`'s method on the leased replica. A method that returns a
    /// `Response` answers with it; a generator (a method that returns
    /// `impl Iterator<Item = Chunk>`) answers once its first chunk is
    /// there, and [`App::pump`] reads the rest, holding the lease until the
    /// call ends. The proxy tells the two apart by what the call does — it
    /// yields items or it does not — as Ray Serve's proxy does.
    async fn answer(
        self: &Arc<Self>,
        d: &Arc<DeploymentRt>,
        lease: Lease,
        arg: Bytes,
        idle: Duration,
    ) -> Result<Attempt, Failure> {
        let failed = |e: Error| match e {
            Error::ActorDied(why) => Ok(Attempt::Died(why)),
            e => Err(Failure::new(500, e.to_string())),
        };
        let sent = match self.send(lease.actor, &d.spec.method, vec![arg]).await {
            Ok(sent) => sent,
            Err(e) => return failed(e),
        };
        let output = sent.release;
        let first = match self.services.next_item(&self.caller, output.id, 0, None).await {
            Ok(first) => first,
            Err(e) => return failed(e),
        };
        let item = match first {
            // Not a generator (or one that yielded nothing): its result.
            None => {
                let bytes = match self.get_one(output.id).await {
                    Ok(b) => b,
                    Err(e) => return failed(e),
                };
                lease.done();
                // A generator's result is `()`, which encodes as no bytes;
                // a `Response` never does.
                if bytes.is_empty() {
                    return Ok(Attempt::Answered(Answer::Whole(Response::new(200))));
                }
                let response = wray_codec::decode::<Response>(&bytes).map_err(|e| {
                    Failure::new(500, format!("{}.{} did not return a Response: {e}", d.spec.name, d.spec.method))
                })?;
                return Ok(Attempt::Answered(Answer::Whole(response)));
            }
            // A generator that failed before its first chunk.
            Some(item) if item == output.id => return failed(self.failure_of(item).await),
            Some(item) => item,
        };
        let head = match self.read_chunk(d, item).await.map_err(|why| Failure::new(500, why))? {
            Chunk::Head(head) => head,
            Chunk::Body(body) => {
                Response::new(200).with_header("content-type", "application/octet-stream").with_body(body)
            }
        };
        let (tx, rest) = mpsc::channel(STREAM_CHUNKS_AHEAD);
        tokio::spawn(self.clone().pump(d.clone(), lease, output, tx, idle));
        Ok(Attempt::Answered(Answer::Streamed { head, rest }))
    }

    /// Sends a streamed answer's chunks after the first to the proxy as
    /// the replica yields them, then gives the replica's slot back. The
    /// stream stops short, with why, when the generator fails, yields a
    /// second head, or yields nothing for `idle`. When the client goes
    /// away (the proxy drops `tx`'s receiver) the call's result is let go,
    /// and a replica on this node stops at its next chunk (its
    /// `yield-item` answers `cancelled`).
    async fn pump(
        self: Arc<Self>,
        d: Arc<DeploymentRt>,
        lease: Lease,
        output: Release,
        tx: mpsc::Sender<Result<Bytes, String>>,
        idle: Duration,
    ) {
        let mut index = 1;
        let cut = loop {
            let next = tokio::select! {
                next = self.services.next_item(&self.caller, output.id, index, Some(idle)) => next,
                () = tx.closed() => break None,
            };
            let item = match next {
                Ok(None) => break None,
                Ok(Some(item)) if item == output.id => {
                    break Some(match self.failure_of(item).await {
                        Error::ActorDied(why) => {
                            self.replica_died(&d, lease.key, &why);
                            format!("the replica died: {why}")
                        }
                        e => e.to_string(),
                    });
                }
                Ok(Some(item)) => item,
                Err(Error::Timeout) => break Some(format!("no chunk for {} ms", idle.as_millis())),
                Err(e) => break Some(e.to_string()),
            };
            match self.read_chunk(&d, item).await {
                Ok(Chunk::Body(body)) => {
                    if tx.send(Ok(Bytes::from(body))).await.is_err() {
                        break None;
                    }
                }
                Ok(Chunk::Head(_)) => {
                    break Some(format!(
                        "{}.{} yielded a Chunk::Head as chunk {index}; only the first chunk may be one",
                        d.spec.name, d.spec.method
                    ));
                }
                Err(why) => break Some(why),
            }
            index += 1;
        };
        if let Some(why) = cut {
            tracing::warn!("deployment {:?}: a streamed response stopped short: {why}", d.spec.name);
            let _ = tx.send(Err(why)).await;
        }
        // Letting the result go before the slot tells a generator still
        // running on this node to stop (above); one on another node runs
        // to its end.
        drop(output);
        lease.done();
    }

    /// The value of one object the controller holds.
    async fn get_one(&self, id: ObjectId) -> Result<Bytes, Error> {
        Ok(self.services.get(&self.caller, vec![id], None).await?.pop().unwrap_or_default())
    }

    /// Why a generator failed, when `next_item` answered with its result
    /// `output` itself (the reference that answer took is let go).
    async fn failure_of(&self, output: ObjectId) -> Error {
        let got = self.get_one(output).await;
        self.services.release(self.job, output);
        got.err().unwrap_or_else(|| Error::InvalidArgument("the generator's result is not a failure".into()))
    }

    /// Item `item` of a streamed answer (the controller's reference to it
    /// is let go) as a chunk, or why not.
    async fn read_chunk(&self, d: &DeploymentRt, item: ObjectId) -> Result<Chunk, String> {
        let got = self.get_one(item).await;
        self.services.release(self.job, item);
        let bytes = got.map_err(|e| e.to_string())?;
        wray_codec::decode::<Chunk>(&bytes).map_err(|e| {
            format!("{}.{} is a generator, so it must yield wray::serve::Chunk: {e}", d.spec.name, d.spec.method)
        })
    }

    /// A replica for one request: at once, after waiting in the queue, or
    /// a 503.
    async fn acquire(self: &Arc<Self>, d: &Arc<DeploymentRt>) -> Result<Lease, Failure> {
        let admit = {
            let mut st = lock(&d.state);
            match st.balancer.admit() {
                Admit::Wait(t) => {
                    let (tx, rx) = oneshot::channel();
                    st.tickets.insert(t, tx);
                    Err((t, rx))
                }
                other => Ok(other),
            }
        };
        let key = match admit {
            Ok(Admit::Run(k)) => k,
            Ok(_) => return Err(busy(d)),
            Err((ticket, rx)) => {
                let mut wait = Waiting { d, ticket, rx: Some(rx) };
                match wait.rx.as_mut().expect("set above").await {
                    Ok(k) => {
                        wait.rx = None;
                        k
                    }
                    Err(_) => return Err(Failure::new(503, "the deployment stopped")),
                }
            }
        };
        let actor = lock(&d.state).replicas.get(&key).map(|r| r.actor);
        match actor {
            Some(actor) => Ok(Lease { d: d.clone(), key, actor, done: false }),
            None => {
                finish(&mut lock(&d.state), key);
                Err(Failure::new(503, "the replica chosen stopped; try again"))
            }
        }
    }

    /// A handle's call (`serve.call`) from a guest of this application:
    /// the least loaded replica, whatever its load; the slot is given back
    /// when the result is ready (a generator's: when it has ended). A
    /// generator method pauses while `generator_backpressure` of its items
    /// wait unread by the handle's caller (0: it runs ahead without bound).
    pub async fn call_from(
        self: &Arc<Self>,
        caller: &Caller,
        seq: u64,
        deployment: &str,
        method: String,
        args: Vec<ArgSpec>,
        generator_backpressure: u32,
    ) -> Result<ObjectId, Error> {
        let d = self.handled(deployment)?.clone();
        let (key, actor) = {
            let mut st = lock(&d.state);
            let key = st.balancer.pick_any().ok_or_else(|| no_replica(deployment, &st))?;
            (key, st.replicas[&key].actor)
        };
        let r = self.services.call_actor(caller, seq, actor, method, args, generator_backpressure).await;
        let me = self.clone();
        match r {
            Ok(id) => {
                tokio::spawn(async move {
                    let _ = me.services.wait(&me.caller, vec![id], 1, None).await;
                    finish(&mut lock(&d.state), key);
                });
                Ok(id)
            }
            Err(e) => {
                finish(&mut lock(&d.state), key);
                Err(e)
            }
        }
    }

    /// The replica a handle's call from a guest of this application on
    /// another node goes to (`Upcall::ServeReplica`), and the replicas'
    /// class: the least loaded, its load not counted
    /// ([`Balancer::pick_uncounted`]).
    pub fn replica_for_elsewhere(&self, deployment: &str) -> Result<(ActorId, String), Error> {
        let d = self.handled(deployment)?;
        let mut st = lock(&d.state);
        let key = st.balancer.pick_uncounted().ok_or_else(|| no_replica(deployment, &st))?;
        Ok((st.replicas[&key].actor, d.spec.class.clone()))
    }

    /// The deployment a handle names, or the error saying there is none.
    fn handled(&self, deployment: &str) -> Result<&Arc<DeploymentRt>, Error> {
        self.deployment(deployment).ok_or_else(|| {
            Error::InvalidArgument(format!("application {:?} has no deployment {deployment:?}", self.name))
        })
    }

    /// What `/-/status` shows.
    pub fn status(&self) -> serde_json::Value {
        let deployments: Vec<serde_json::Value> = self
            .deployments
            .iter()
            .map(|d| {
                let st = lock(&d.state);
                let replicas: Vec<serde_json::Value> = st
                    .replicas
                    .iter()
                    .map(|(k, r)| {
                        serde_json::json!({
                            "replica": k,
                            "actor": r.actor.to_string(),
                            "node": self.services.actor_node(&self.caller, r.actor),
                            "state": if r.draining { "STOPPING" } else { "RUNNING" },
                            "ongoing_requests": st.balancer.ongoing(*k),
                            "handled": r.handled,
                            "uptime_s": r.started.elapsed().as_secs_f64(),
                        })
                    })
                    .collect();
                let status = if st.balancer.active() > 0 {
                    "HEALTHY"
                } else if st.target == 0 {
                    "IDLE"
                } else if st.failures > 0 {
                    "UNHEALTHY"
                } else {
                    "UPDATING"
                };
                serde_json::json!({
                    "name": d.spec.name,
                    "status": status,
                    "route_prefix": d.spec.route_prefix,
                    "target_replicas": st.target,
                    "starting": st.starting,
                    "queued_requests": st.balancer.queued(),
                    "last_error": st.last_error,
                    "replicas": replicas,
                    "requests": lock(&d.requests).to_json(),
                })
            })
            .collect();
        let job = match &self.job_label {
            Some(label) => serde_json::json!(label),
            None => serde_json::json!(self.job.0),
        };
        serde_json::json!({ "name": self.name, "job": job, "deployments": deployments })
    }
}

fn busy(d: &DeploymentRt) -> Failure {
    Failure {
        status: 503,
        message: format!(
            "deployment {:?} is at capacity ({} ongoing per replica, {} queued)",
            d.spec.name, d.spec.max_ongoing_requests, d.spec.max_queued_requests
        ),
        retry_after: Some(1),
    }
}

/// Gives a finished request's slot back, handing it to the oldest waiting
/// ticket whose request is still there.
/// A handle's call to a deployment without a running replica.
fn no_replica(deployment: &str, st: &DepState) -> Error {
    Error::ActorDied(format!(
        "deployment {deployment:?} has no running replica{}",
        st.last_error.as_ref().map(|e| format!(" (last error: {e})")).unwrap_or_default()
    ))
}

fn finish(st: &mut DepState, key: ReplicaKey) {
    if let Some(r) = st.replicas.get_mut(&key) {
        r.handled += 1;
    }
    if let Some((t, k)) = st.balancer.finish(key) {
        hand_over(st, t, k);
    }
}

/// Gives ticket `t` the slot on `k`; if its request has gone, the slot
/// passes on.
fn hand_over(st: &mut DepState, mut t: Ticket, k: ReplicaKey) {
    loop {
        let sent = st.tickets.remove(&t).map(|tx| tx.send(k).is_ok()).unwrap_or(false);
        if sent {
            return;
        }
        match st.balancer.finish(k) {
            Some((next, _)) => t = next,
            None => return,
        }
    }
}

/// A request's hold on a replica slot; given back when dropped (also when
/// the request is abandoned: a timeout, the client gone).
struct Lease {
    d: Arc<DeploymentRt>,
    key: ReplicaKey,
    actor: ActorId,
    done: bool,
}

impl Lease {
    fn done(mut self) {
        self.done = true;
        finish(&mut lock(&self.d.state), self.key);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.done {
            finish(&mut lock(&self.d.state), self.key);
        }
    }
}

/// A queued request. Dropped before its turn came, it leaves the queue;
/// dropped after the slot was sent but before it was taken, it gives the
/// slot back.
struct Waiting<'a> {
    d: &'a Arc<DeploymentRt>,
    ticket: Ticket,
    rx: Option<oneshot::Receiver<ReplicaKey>>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let Some(mut rx) = self.rx.take() else { return };
        let mut st = lock(&self.d.state);
        if st.tickets.remove(&self.ticket).is_some() {
            st.balancer.cancel(self.ticket);
        } else if let Ok(k) = rx.try_recv() {
            finish(&mut st, k);
        }
    }
}

/// A call the controller queued; its result is released when this goes.
struct Sent<'a> {
    app: &'a App,
    release: Release,
}

impl Sent<'_> {
    /// Waits for the call's encoded result.
    async fn result(self) -> Result<Bytes, Error> {
        self.app.get_one(self.release.id).await
    }
}

/// Releases the controller's reference to a call's result.
struct Release {
    services: Arc<dyn Services>,
    job: JobId,
    id: ObjectId,
}

impl Drop for Release {
    fn drop(&mut self) {
        self.services.release(self.job, self.id);
    }
}

/// Gathers a batched deployment's requests: up to `size` per call, the
/// first waiting at most `wait` for the rest. Each batch runs as one call
/// of the deployment's method with a `Vec<Request>`, which must return one
/// `Response` per request, in order.
async fn batcher(
    app: std::sync::Weak<App>,
    name: String,
    size: usize,
    wait: Duration,
    mut rx: mpsc::Receiver<Batched>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + wait;
        while batch.len() < size {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(item)) => batch.push(item),
                _ => break,
            }
        }
        let Some(app) = app.upgrade() else { return };
        let Some(d) = app.deployment(&name).cloned() else { return };
        tokio::spawn(async move {
            let (requests, replies): (Vec<Request>, Vec<_>) = batch.into_iter().unzip();
            let out = run_batch(&app, &d, &requests).await;
            match out {
                Ok(responses) => {
                    for (reply, r) in replies.into_iter().zip(responses) {
                        let _ = reply.send(Ok(r));
                    }
                }
                Err(f) => {
                    for reply in replies {
                        let _ = reply.send(Err(Failure {
                            status: f.status,
                            message: f.message.clone(),
                            retry_after: f.retry_after,
                        }));
                    }
                }
            }
        });
    }
}

async fn run_batch(app: &Arc<App>, d: &Arc<DeploymentRt>, requests: &[Request]) -> Result<Vec<Response>, Failure> {
    let arg = Bytes::from(wray_codec::encode(&requests.to_vec()).map_err(|e| Failure::new(500, e.to_string()))?);
    let lease = app.acquire(d).await?;
    let bytes = match app.call(lease.actor, &d.spec.method, vec![arg]).await {
        Ok(b) => b,
        Err(Error::ActorDied(why)) => {
            app.replica_died(d, lease.key, &why);
            return Err(Failure::new(500, format!("the replica died: {why}")));
        }
        Err(e) => return Err(Failure::new(500, e.to_string())),
    };
    lease.done();
    let responses = wray_codec::decode::<Vec<Response>>(&bytes).map_err(|e| {
        Failure::new(500, format!("{}.{} did not return a Vec<Response>: {e}", d.spec.name, d.spec.method))
    })?;
    if responses.len() != requests.len() {
        return Err(Failure::new(
            500,
            format!(
                "{}.{} returned {} responses for a batch of {} requests",
                d.spec.name,
                d.spec.method,
                responses.len(),
                requests.len()
            ),
        ));
    }
    Ok(responses)
}
