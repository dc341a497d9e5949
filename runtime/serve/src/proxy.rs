//! The HTTP side: listening, connections, limits, routing to applications,
//! the access log and graceful shutdown; and [`Server`] as the node's
//! [`Serving`].

use crate::app::{Answer, App, Failure};
use crate::routes::Routes;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{StatusCode, header};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, watch};
use wray_codec::http::{Request, Response};
use wray_core::{ActorId, Error, JobId, ObjectId};
use wray_host::{Application, ArgSpec, BoxFuture, Caller, HttpAnswer, HttpForward, HttpNodes, Services, Serving};

/// Limits and behaviour of the proxy.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Largest request head.
    pub max_header_bytes: usize,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Default end-to-end limit of a request.
    pub request_timeout: Duration,
    /// Time to send a request's headers.
    pub header_timeout: Duration,
    /// How long shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
    /// Write one line per request to standard error.
    pub access_log: bool,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            max_header_bytes: crate::DEFAULT_MAX_HEADER_BYTES,
            max_body_bytes: crate::DEFAULT_MAX_BODY_BYTES,
            request_timeout: crate::DEFAULT_REQUEST_TIMEOUT,
            header_timeout: crate::DEFAULT_HEADER_TIMEOUT,
            shutdown_grace: crate::DEFAULT_SHUTDOWN_GRACE,
            access_log: true,
        }
    }
}

/// Where a route goes: a deployment of an application (its index), or a
/// standard `wasi:http` component.
#[derive(Clone)]
enum Target {
    Deployment { app: Arc<App>, deployment: usize },
    Component(Arc<ComponentRoute>),
}

impl Target {
    fn app_name(&self) -> &str {
        match self {
            Target::Deployment { app, .. } => &app.name,
            Target::Component(c) => c.component.name(),
        }
    }

    /// A deployment of (some version of) the application called `name`.
    fn of_app_named(&self, name: &str) -> bool {
        matches!(self, Target::Deployment { app, .. } if app.name == name)
    }

    fn is_app(&self, app: &Arc<App>) -> bool {
        matches!(self, Target::Deployment { app: a, .. } if Arc::ptr_eq(a, app))
    }

    fn is_component(&self, route: &Arc<ComponentRoute>) -> bool {
        matches!(self, Target::Component(c) if Arc::ptr_eq(c, route))
    }
}

/// A served `wasi:http` component: each request runs in a fresh instance;
/// `slots` bounds how many run at once (its "replicas"), and at most
/// `max_queued` wait for a slot.
pub(crate) struct ComponentRoute {
    component: wray_host::HttpComponent,
    /// The `wray serve deploy` job serving it (none: `wray serve run`).
    job: Option<String>,
    /// Told to stop (a deployed component): its job is stopped, a newer
    /// version takes its prefix, or the server shuts down.
    stop: Notify,
    prefix: String,
    /// A deployed component's other nodes (a head's workers): requests
    /// take them and this node in turn.
    elsewhere: Option<Arc<dyn HttpNodes>>,
    /// The next request's turn.
    turn: AtomicUsize,
    /// Requests answered on other nodes, by node (the rest were answered
    /// here).
    answered_elsewhere: Mutex<std::collections::BTreeMap<String, u64>>,
    slots: Arc<Semaphore>,
    concurrency: u32,
    max_queued: usize,
    queued: AtomicUsize,
    handled: std::sync::atomic::AtomicU64,
    started: Instant,
}

/// A running application as the server tracks it.
struct Entry {
    app: Arc<App>,
    /// Told to stop: the server shuts down, or a newer version of the same
    /// application took its routes.
    stop: Arc<Notify>,
    in_flight: Arc<AtomicUsize>,
}

struct Shared {
    config: ServerConfig,
    routes: RwLock<Routes<Target>>,
    apps: Mutex<Vec<Entry>>,
    shutdown: watch::Sender<bool>,
    /// Open connections.
    connections: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The HTTP proxy and the applications it serves. Cheap to clone.
#[derive(Clone)]
pub struct Server {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl Server {
    /// Binds `addr` and starts accepting. Fails naming the address when it
    /// cannot be bound (in use, not local, no permission).
    pub async fn bind(addr: SocketAddr, config: ServerConfig) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen for HTTP on {addr}: {e}")))?;
        let addr = listener.local_addr()?;
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            config,
            routes: RwLock::new(Routes::default()),
            apps: Mutex::new(Vec::new()),
            shutdown,
            connections: AtomicUsize::new(0),
        });
        tokio::spawn(accept(listener, shared.clone()));
        Ok(Server { shared, addr })
    }

    /// The address it listens on (the port, when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections and tells every application to stop:
    /// each `serve.run` returns once its requests in flight are done (at
    /// most the configured grace). Idempotent.
    pub fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
        for e in lock(&self.shared.apps).iter() {
            e.stop.notify_one();
        }
        for (_, t) in self.shared.routes.read().unwrap_or_else(|p| p.into_inner()).iter() {
            if let Target::Component(c) = t {
                c.stop.notify_one();
            }
        }
    }

    /// Waits until every connection has closed after [`Server::shutdown`]
    /// (each finishes its requests in flight, within the grace).
    pub async fn drained(&self) {
        while self.shared.connections.load(Ordering::Relaxed) > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Serves a standard `wasi:http/proxy` component under `prefix`: every
    /// request in a fresh instance, at most `concurrency` at once, at most
    /// `max_queued` waiting (then 503). Fails if the prefix is taken.
    pub fn serve_component(
        &self,
        component: wray_host::HttpComponent,
        prefix: &str,
        concurrency: u32,
        max_queued: u32,
    ) -> Result<(), String> {
        let route = component_route(component, None, None, prefix, concurrency, max_queued)?;
        let mut routes = self.shared.routes.write().unwrap_or_else(|p| p.into_inner());
        routes
            .insert(prefix, Target::Component(route))
            .map_err(|held| format!("route prefix {prefix:?} is served by {:?}", held.app_name()))
    }

    /// Applications, deployments and replicas, as `/-/status` shows them.
    pub fn status(&self) -> serde_json::Value {
        Server::status_of(&self.shared)
    }
}

impl Serving for Server {
    fn replica_for_elsewhere(&self, job: JobId, deployment: &str) -> Result<(ActorId, String), Error> {
        let app = lock(&self.shared.apps).iter().find(|e| e.app.job == job).map(|e| e.app.clone());
        match app {
            Some(app) => app.replica_for_elsewhere(deployment),
            None => Err(Error::InvalidArgument(format!(
                "deployment {deployment:?}: {job} serves no application (a handle works inside a running application)"
            ))),
        }
    }

    fn run<'a>(
        &'a self,
        services: Arc<dyn Services>,
        caller: &'a Caller,
        app: Application,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            if *self.shared.shutdown.borrow() {
                return Err(Error::InvalidArgument("the server is shutting down".into()));
            }
            if lock(&self.shared.apps).iter().any(|e| e.app.job == caller.job) {
                return Err(Error::InvalidArgument("this job already serves an application".into()));
            }
            let app = App::new(services, caller, app);
            app.start().await?;
            let stop = Arc::new(Notify::new());
            let in_flight = Arc::new(AtomicUsize::new(0));
            // Take the routes: a previous version of the same application
            // gives its up (and drains); anyone else's are a conflict.
            let replaced = {
                let mut routes = self.shared.routes.write().unwrap_or_else(|p| p.into_inner());
                let prefixes =
                    app.deployments.iter().enumerate().filter_map(|(i, d)| Some((i, d.spec.route_prefix.as_ref()?)));
                // Check every prefix before changing anything.
                for (_, prefix) in prefixes.clone() {
                    if let Some(t) = routes.find_exact(prefix)
                        && !t.of_app_named(&app.name)
                    {
                        return Err(Error::InvalidArgument(format!(
                            "route prefix {prefix:?} is served by application {:?}",
                            t.app_name()
                        )));
                    }
                }
                // The swap, under one lock: the older version's routes out, ours in.
                routes.remove_where(|t| t.of_app_named(&app.name));
                for (i, prefix) in prefixes {
                    let _ = routes.insert(prefix, Target::Deployment { app: app.clone(), deployment: i });
                }
                let mut apps = lock(&self.shared.apps);
                let old: Vec<Arc<Notify>> =
                    apps.iter().filter(|e| e.app.name == app.name).map(|e| e.stop.clone()).collect();
                apps.push(Entry { app: app.clone(), stop: stop.clone(), in_flight: in_flight.clone() });
                old
            };
            for s in replaced {
                s.notify_one();
            }
            tracing::info!(app = %app.name, "serving");
            let _unregister = Unregister { shared: &self.shared, app: &app };
            let control = tokio::spawn(app.clone().control());
            if !*self.shared.shutdown.borrow() {
                stop.notified().await;
            }
            // Stop routing here, then let what is in flight finish.
            self.shared.routes.write().unwrap_or_else(|p| p.into_inner()).remove_where(|t| t.is_app(&app));
            drain(self.shared.config.shutdown_grace, || in_flight.load(Ordering::Acquire) > 0).await;
            app.stop();
            control.abort();
            tracing::info!(app = %app.name, "stopped serving");
            Ok(())
        })
    }

    fn reconfigure<'a>(
        &'a self,
        caller: &'a Caller,
        deployment: String,
        config: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let app = lock(&self.shared.apps).iter().find(|e| e.app.job == caller.job).map(|e| e.app.clone());
            let Some(app) = app else {
                return Err(Error::InvalidArgument(format!(
                    "deployment {deployment:?}: this job serves no application"
                )));
            };
            app.reconfigure(caller, &deployment, config).await
        })
    }

    fn stop_job(&self, label: &str) -> Option<Duration> {
        let apps = lock(&self.shared.apps);
        if let Some(entry) = apps.iter().find(|e| e.app.job_label.as_deref() == Some(label)) {
            entry.stop.notify_one();
            return Some(self.shared.config.shutdown_grace);
        }
        let routes = self.shared.routes.read().unwrap_or_else(|p| p.into_inner());
        let component = routes.iter().find_map(|(_, t)| match t {
            Target::Component(c) if c.job.as_deref() == Some(label) => Some(c.clone()),
            _ => None,
        })?;
        component.stop.notify_one();
        Some(self.shared.config.shutdown_grace)
    }

    fn serve_component<'a>(
        &'a self,
        label: &'a str,
        component: wray_host::HttpComponent,
        prefix: &'a str,
        instances: u32,
        max_queued: u32,
        elsewhere: Option<Arc<dyn HttpNodes>>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if *self.shared.shutdown.borrow() {
                return Err("the server is shutting down".into());
            }
            let route = component_route(component, Some(label.to_string()), elsewhere, prefix, instances, max_queued)?;
            // Take the prefix: from an earlier deployed version of the same
            // component (which then drains and stops), or free.
            let replaced = {
                let mut routes = self.shared.routes.write().unwrap_or_else(|p| p.into_inner());
                let replaced = match routes.find_exact(prefix) {
                    Some(Target::Component(old))
                        if old.job.is_some() && old.component.name() == route.component.name() =>
                    {
                        Some(old.clone())
                    }
                    Some(held) => return Err(format!("route prefix {prefix:?} is served by {:?}", held.app_name())),
                    None => None,
                };
                if let Some(old) = &replaced {
                    routes.remove_where(|t| t.is_component(old));
                }
                let _ = routes.insert(prefix, Target::Component(route.clone()));
                replaced
            };
            if let Some(old) = replaced {
                old.stop.notify_one();
            }
            tracing::info!(component = %route.component.name(), prefix, "serving");
            let unroute = Unroute { shared: &self.shared, route: &route };
            if !*self.shared.shutdown.borrow() {
                route.stop.notified().await;
            }
            // Stop routing here, then let what is in flight finish: every
            // instance's slot back and nobody queued.
            drop(unroute);
            drain(self.shared.config.shutdown_grace, || {
                route.slots.available_permits() < route.concurrency as usize || route.queued.load(Ordering::Acquire) > 0
            })
            .await;
            tracing::info!(component = %route.component.name(), prefix, "stopped serving");
            Ok(())
        })
    }

    fn call<'a>(
        &'a self,
        _services: Arc<dyn Services>,
        caller: &'a Caller,
        seq: u64,
        deployment: String,
        method: String,
        args: Vec<ArgSpec>,
        generator_backpressure: u32,
    ) -> BoxFuture<'a, Result<ObjectId, Error>> {
        Box::pin(async move {
            let app = lock(&self.shared.apps).iter().find(|e| e.app.job == caller.job).map(|e| e.app.clone());
            let Some(app) = app else {
                return Err(Error::InvalidArgument(format!(
                    "deployment {deployment:?}: this job serves no application (a handle works inside a running application)"
                )));
            };
            app.call_from(caller, seq, &deployment, method, args, generator_backpressure).await
        })
    }
}

/// Waits while `busy` holds (requests in flight), at most `grace`.
async fn drain(grace: Duration, busy: impl Fn() -> bool) {
    let deadline = Instant::now() + grace;
    while busy() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A checked component route.
fn component_route(
    component: wray_host::HttpComponent,
    job: Option<String>,
    elsewhere: Option<Arc<dyn HttpNodes>>,
    prefix: &str,
    concurrency: u32,
    max_queued: u32,
) -> Result<Arc<ComponentRoute>, String> {
    wray_core::serve::check_route_prefix(prefix)?;
    if concurrency == 0 || concurrency > wray_core::serve::MAX_REPLICAS {
        return Err(format!("concurrency must be 1 to {}, got {concurrency}", wray_core::serve::MAX_REPLICAS));
    }
    Ok(Arc::new(ComponentRoute {
        component,
        job,
        stop: Notify::new(),
        prefix: prefix.to_string(),
        elsewhere,
        turn: AtomicUsize::new(0),
        answered_elsewhere: Mutex::new(Default::default()),
        slots: Arc::new(Semaphore::new(concurrency as usize)),
        concurrency,
        max_queued: max_queued as usize,
        queued: AtomicUsize::new(0),
        handled: Default::default(),
        started: Instant::now(),
    }))
}

/// Removes a deployed component's route when dropped: when it is told to
/// stop, or when its serving ends otherwise (a stopped job drops the
/// future).
struct Unroute<'a> {
    shared: &'a Shared,
    route: &'a Arc<ComponentRoute>,
}

impl Drop for Unroute<'_> {
    fn drop(&mut self) {
        self.shared.routes.write().unwrap_or_else(|p| p.into_inner()).remove_where(|t| t.is_component(self.route));
    }
}

/// Removes an application from the server when its `run` ends, however
/// it ends (a cancelled driver drops the future).
struct Unregister<'a> {
    shared: &'a Shared,
    app: &'a Arc<App>,
}

impl Drop for Unregister<'_> {
    fn drop(&mut self) {
        self.shared.routes.write().unwrap_or_else(|p| p.into_inner()).remove_where(|t| t.is_app(self.app));
        lock(&self.shared.apps).retain(|e| !Arc::ptr_eq(&e.app, self.app));
        self.app.stop();
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.config.header_timeout)
        // hyper's read buffer bounds the head of a request; it cannot be
        // set below 8 KiB.
        .max_buf_size(shared.config.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(shared.config.max_header_bytes.min(u32::MAX as usize) as u32)
        .keep_alive_interval(Some(Duration::from_secs(20)));
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(crate::MAX_CONNECTIONS));
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = shutdown.changed() => return,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!("accepting an HTTP connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let _ = stream.set_nodelay(true);
        let (shared, builder, mut shutdown) = (shared.clone(), builder.clone(), shared.shutdown.subscribe());
        tokio::spawn(async move {
            let _permit = permit;
            shared.connections.fetch_add(1, Ordering::Relaxed);
            let svc = {
                let shared = shared.clone();
                hyper::service::service_fn(move |req| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(handle(&shared, req, peer).await) }
                })
            };
            let conn = builder.serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            let done = tokio::select! {
                r = conn.as_mut() => Some(r),
                _ = shutdown.wait_for(|s| *s) => None,
            };
            if done.is_none() {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(shared.config.shutdown_grace, conn.as_mut()).await;
            }
            shared.connections.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// A response: made whole by the proxy, streamed from a `wasi:http`
/// component's instance, or streamed from a deployment's generator.
type Body = http_body_util::Either<Full<Bytes>, http_body_util::Either<wray_host::HyperOutgoingBody, Chunks>>;
type HttpResponse = hyper::Response<Body>;

async fn handle(shared: &Shared, req: hyper::Request<Incoming>, peer: SocketAddr) -> HttpResponse {
    let start = Instant::now();
    let (method, path, version) = (req.method().clone(), req.uri().path().to_string(), req.version());
    let resp = route(shared, req).await;
    if shared.config.access_log {
        use hyper::body::Body;
        let len = resp.body().size_hint().exact().map_or_else(|| "-".to_string(), |n| n.to_string());
        // One write per line: lines from concurrent requests do not mix.
        let line = format!(
            "{peer} \"{method} {path} {version:?}\" {} {len} {:.3}ms\n",
            resp.status().as_u16(),
            start.elapsed().as_secs_f64() * 1e3
        );
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
    resp
}

fn plain(status: StatusCode, message: impl Into<String>) -> HttpResponse {
    let mut body = message.into();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    let mut r = whole(Bytes::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

fn whole(body: Bytes) -> HttpResponse {
    hyper::Response::new(http_body_util::Either::Left(Full::new(body)))
}

/// The rest of a deployment's streamed response, chunk by chunk as the
/// controller reads them from the replica's generator ([`Answer::Streamed`]).
/// Dropped — the client went away — it tells the controller to stop.
pub(crate) struct Chunks {
    /// The head's body, sent first.
    first: Option<Bytes>,
    rest: tokio::sync::mpsc::Receiver<Result<Bytes, String>>,
}

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        if let Some(first) = self.first.take() {
            return std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(first))));
        }
        self.rest.poll_recv(cx).map(|next| match next? {
            Ok(data) => Some(Ok(hyper::body::Frame::data(data))),
            // hyper breaks the response off: the client sees it incomplete.
            Err(why) => Some(Err(why.into())),
        })
    }
}

fn json(value: &serde_json::Value) -> HttpResponse {
    let mut r = whole(Bytes::from(value.to_string()));
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    r
}

async fn route(shared: &Shared, req: hyper::Request<Incoming>) -> HttpResponse {
    let path = req.uri().path();
    // The proxy's own endpoints (Ray Serve's `/-/healthz`, `/-/routes`).
    if let Some(what) = path.strip_prefix("/-/") {
        return match what {
            "healthz" => plain(StatusCode::OK, "success"),
            "routes" => {
                let routes = shared.routes.read().unwrap_or_else(|p| p.into_inner());
                let map: serde_json::Map<String, serde_json::Value> =
                    routes.iter().map(|(p, t)| (p.to_string(), t.app_name().to_string().into())).collect();
                json(&serde_json::Value::Object(map))
            }
            "status" => json(&Server::status_of(shared)),
            _ => plain(StatusCode::NOT_FOUND, format!("no proxy endpoint {path}")),
        };
    }
    let target = shared.routes.read().unwrap_or_else(|p| p.into_inner()).find(path).cloned();
    let (app, deployment) = match target {
        None => return plain(StatusCode::NOT_FOUND, format!("no route for {path}")),
        Some(Target::Component(c)) => return serve_component(shared, &c, req).await,
        Some(Target::Deployment { app, deployment }) => (app, deployment),
    };
    let entry_flight = {
        let apps = lock(&shared.apps);
        apps.iter().find(|e| Arc::ptr_eq(&e.app, &app)).map(|e| e.in_flight.clone())
    };
    let Some(in_flight) = entry_flight else {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "the application is stopping");
    };
    in_flight.fetch_add(1, Ordering::AcqRel);
    let _flight = Flight(&in_flight);
    let d = app.deployments[deployment].clone();
    let started = Instant::now();
    let resp = deployment_response(shared, &app, &d, req).await;
    lock(&d.requests).record(resp.status().as_u16(), started.elapsed());
    resp
}

/// A deployment's answer to one request, within its timeout.
async fn deployment_response(
    shared: &Shared,
    app: &Arc<App>,
    d: &Arc<crate::app::DeploymentRt>,
    req: hyper::Request<Incoming>,
) -> HttpResponse {
    let timeout = d.spec.request_timeout.unwrap_or(shared.config.request_timeout);
    let deadline = tokio::time::Instant::now() + timeout;
    let request = match read_request(shared, req, deadline).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    match tokio::time::timeout_at(deadline, app.handle(d, request, timeout)).await {
        Ok(Ok(Answer::Whole(resp))) => to_http(resp),
        Ok(Ok(Answer::Streamed { head, rest })) => respond(head, |first| {
            let chunks = Chunks { first: Some(first).filter(|b| !b.is_empty()), rest };
            hyper::Response::new(http_body_util::Either::Right(http_body_util::Either::Right(chunks)))
        }),
        Ok(Err(Failure { status, message, retry_after })) => {
            let mut r = plain(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), message);
            if let Some(s) = retry_after {
                r.headers_mut().insert(header::RETRY_AFTER, s.into());
            }
            r
        }
        Err(_) => plain(
            StatusCode::GATEWAY_TIMEOUT,
            format!("deployment {:?} did not answer within {} ms", d.spec.name, timeout.as_millis()),
        ),
    }
}

impl Server {
    fn status_of(shared: &Shared) -> serde_json::Value {
        let mut apps: Vec<serde_json::Value> = lock(&shared.apps).iter().map(|e| e.app.status()).collect();
        let routes = shared.routes.read().unwrap_or_else(|p| p.into_inner());
        for (_, t) in routes.iter() {
            if let Target::Component(c) = t {
                apps.push(c.status());
            }
        }
        serde_json::json!({ "applications": apps })
    }
}

impl ComponentRoute {
    fn status(&self) -> serde_json::Value {
        let running = self.concurrency as usize - self.slots.available_permits();
        let replicas: Vec<serde_json::Value> = (0..self.concurrency as usize)
            .map(|i| {
                serde_json::json!({
                    "replica": i,
                    "actor": null,
                    "node": null,
                    "state": "RUNNING",
                    "ongoing_requests": u32::from(i < running),
                    "handled": null,
                    "uptime_s": self.started.elapsed().as_secs_f64(),
                })
            })
            .collect();
        serde_json::json!({
            "name": self.component.name(),
            "job": self.job,
            "kind": "wasi:http component",
            "nodes": self.elsewhere.as_ref().map_or(1, |n| n.nodes().len() + 1),
            "answered_elsewhere": *lock(&self.answered_elsewhere),
            "deployments": [{
                "name": self.component.name(),
                "status": "HEALTHY",
                "route_prefix": self.prefix,
                "target_replicas": self.concurrency,
                "handled": self.handled.load(Ordering::Relaxed),
                "starting": 0,
                "queued_requests": self.queued.load(Ordering::Relaxed),
                "last_error": null,
                "replicas": replicas,
            }],
        })
    }
}

/// A request to a `wasi:http` component: its body read whole, a slot (or a
/// place in the queue, or 503), then a fresh instance whose response
/// streams back.
async fn serve_component(shared: &Shared, c: &Arc<ComponentRoute>, req: hyper::Request<Incoming>) -> HttpResponse {
    let timeout = shared.config.request_timeout;
    let deadline = tokio::time::Instant::now() + timeout;
    let (parts, body) = match read_body(shared, req, deadline).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let permit = match c.slots.clone().try_acquire_owned() {
        Ok(p) => p,
        Err(_) => {
            if c.queued.fetch_add(1, Ordering::AcqRel) >= c.max_queued {
                c.queued.fetch_sub(1, Ordering::AcqRel);
                let mut r = plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "{} is at capacity ({} at once, {} queued)",
                        c.component.name(),
                        c.concurrency,
                        c.max_queued
                    ),
                );
                r.headers_mut().insert(header::RETRY_AFTER, 1.into());
                return r;
            }
            let p = tokio::time::timeout_at(deadline, c.slots.clone().acquire_owned()).await;
            c.queued.fetch_sub(1, Ordering::AcqRel);
            match p {
                Ok(Ok(p)) => p,
                Ok(Err(_)) => return plain(StatusCode::SERVICE_UNAVAILABLE, "the component is stopping"),
                Err(_) => return timed_out(c.component.name(), timeout),
            }
        }
    };
    if let Some(nodes) = &c.elsewhere {
        // This node and the others in turn; a node's turn that fails
        // (it died, or could not load the component) is this node's for
        // a method that may safely run twice, else a 502.
        let others = nodes.nodes();
        let turn = c.turn.fetch_add(1, Ordering::Relaxed) % (others.len() + 1);
        if let Some(node) = turn.checked_sub(1).map(|i| others[i].clone()) {
            let forward = HttpForward {
                method: parts.method.as_str().to_string(),
                uri: parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string(),
                headers: parts.headers.iter().map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec())).collect(),
                body: body.clone(),
            };
            match tokio::time::timeout_at(deadline, nodes.call(node.clone(), forward)).await {
                Ok(Ok(answer)) => {
                    c.handled.fetch_add(1, Ordering::Relaxed);
                    *lock(&c.answered_elsewhere).entry(node).or_default() += 1;
                    drop(permit);
                    return from_answer(answer);
                }
                Ok(Err(why)) if parts.method.is_idempotent() => {
                    tracing::info!("{} on {node} failed ({why}); answering here", c.component.name());
                }
                Ok(Err(why)) => {
                    let message = format!("{} on {node} failed: {why}", c.component.name());
                    return plain(StatusCode::BAD_GATEWAY, message);
                }
                Err(_) => return timed_out(c.component.name(), timeout),
            }
        }
    }
    let answer = tokio::time::timeout_at(deadline, c.component.handle(parts, body)).await;
    c.handled.fetch_add(1, Ordering::Relaxed);
    match answer {
        Ok(Ok(resp)) => {
            // The slot is held until the instance has written its body.
            let (parts, body) = resp.into_parts();
            let body = HoldSlot { body, _permit: permit };
            let body = http_body_util::Either::Left(BodyExt::boxed_unsync(body));
            hyper::Response::from_parts(parts, http_body_util::Either::Right(body))
        }
        Ok(Err(why)) => plain(StatusCode::INTERNAL_SERVER_ERROR, why),
        Err(_) => timed_out(c.component.name(), timeout),
    }
}

/// A component's whole response from another node, as the proxy answers
/// it (hop-by-hop headers are the proxy's own).
fn from_answer(answer: HttpAnswer) -> HttpResponse {
    let Ok(status) = StatusCode::from_u16(answer.status) else {
        return plain(StatusCode::BAD_GATEWAY, format!("the component answered status {}", answer.status));
    };
    let mut r = whole(answer.body);
    *r.status_mut() = status;
    for (name, value) in answer.headers {
        if HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            continue;
        }
        if let (Ok(n), Ok(v)) = (header::HeaderName::try_from(name.as_str()), header::HeaderValue::from_bytes(&value)) {
            r.headers_mut().append(n, v);
        }
    }
    r
}

fn timed_out(name: &str, timeout: Duration) -> HttpResponse {
    plain(StatusCode::GATEWAY_TIMEOUT, format!("{name} did not answer within {} ms", timeout.as_millis()))
}

/// A component's streamed body, holding its instance's slot until done.
struct HoldSlot {
    body: wray_host::HyperOutgoingBody,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl hyper::body::Body for HoldSlot {
    type Data = Bytes;
    type Error = <wray_host::HyperOutgoingBody as hyper::body::Body>::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

struct Flight<'a>(&'a AtomicUsize);

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The request as a deployment sees it, its body read whole (bounded in
/// size and by the request's deadline).
async fn read_request(
    shared: &Shared,
    req: hyper::Request<Incoming>,
    deadline: tokio::time::Instant,
) -> Result<Request, HttpResponse> {
    let (parts, body) = read_body(shared, req, deadline).await?;
    let headers = parts
        .headers
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    Ok(Request {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers,
        body: body.to_vec(),
    })
}

/// A request's head and its body read whole: at most `--max-body` bytes
/// (refused at once from `Content-Length`, or when a chunked body passes
/// the limit) and before `deadline`. Whatever route it is for, a request
/// reaches a replica or an instance only after this, so a slow client holds
/// nothing but its connection.
async fn read_body(
    shared: &Shared,
    req: hyper::Request<Incoming>,
    deadline: tokio::time::Instant,
) -> Result<(hyper::http::request::Parts, Bytes), HttpResponse> {
    let max = shared.config.max_body_bytes;
    let too_large = || plain(StatusCode::PAYLOAD_TOO_LARGE, format!("the request body exceeds {max} bytes"));
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let (parts, body) = req.into_parts();
    match tokio::time::timeout_at(deadline, Limited::new(body, max).collect()).await {
        Ok(Ok(b)) => Ok((parts, b.to_bytes())),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(e)) => Err(plain(StatusCode::BAD_REQUEST, format!("reading the request body failed: {e}"))),
        Err(_) => Err(plain(StatusCode::REQUEST_TIMEOUT, "the request body did not arrive in time")),
    }
}

/// Headers a deployment may not set: they describe the connection, which
/// is the proxy's.
const HOP_BY_HOP: [&str; 8] =
    ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer", "content-length"];

fn to_http(resp: Response) -> HttpResponse {
    respond(resp, whole)
}

/// `resp`'s status and headers on the response `body` makes of its body —
/// or a 500 naming a status or header that cannot be sent.
fn respond(resp: Response, body: impl FnOnce(Bytes) -> HttpResponse) -> HttpResponse {
    let Ok(status) = StatusCode::from_u16(resp.status) else {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, format!("the deployment answered status {}", resp.status));
    };
    let mut r = body(Bytes::from(resp.body));
    *r.status_mut() = status;
    for (name, value) in resp.headers {
        if HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            continue;
        }
        let (Ok(n), Ok(v)) =
            (header::HeaderName::try_from(name.as_str()), header::HeaderValue::try_from(value.as_str()))
        else {
            return plain(StatusCode::INTERNAL_SERVER_ERROR, format!("the deployment answered a bad header {name:?}"));
        };
        r.headers_mut().append(n, v);
    }
    r
}
