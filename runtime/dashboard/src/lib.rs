//! The dashboard: a web page that shows a node or a cluster live, the JSON
//! it reads, and the Prometheus metrics; and a node's health endpoints for
//! its supervisor ([`health`]).
//!
//! [`Dashboard::bind`] serves, on one HTTP port:
//!
//! | path | what |
//! |---|---|
//! | `/` (and `/app.js`, `/style.css`) | the page: HTML, CSS and JavaScript compiled into the binary, no build step |
//! | `/api/state` | every node's [`NodeState`] plus the Serve applications, as JSON |
//! | `/api/session` | what this client may do (read, act) |
//! | `/api/jobs/<id>/logs?offset=N` | up to [`MAX_LOG_CHUNK`] bytes of a submitted job's output |
//! | `POST /api/jobs/<id>/stop` | stops a submitted job (token needed) |
//! | `/api/nodes/<id>/log?offset=N` (or `?tail=BYTES`) | up to [`MAX_LOG_CHUNK`] bytes of a node's log |
//! | `/metrics` | OpenMetrics text for Prometheus (`metrics.rs`) |
//! | `/login`, `POST /login`, `POST /logout` | the token form and the session cookie |
//!
//! **Access.** Reading is open to loopback clients; from any other address
//! it needs the cluster token, as `Authorization: Bearer <token>` or the
//! session cookie the login form sets. Changing state (stopping a job)
//! needs the token from every address. A token that is presented and wrong
//! is 401 even from loopback, so a script with a stale token hears about it.
//!
//! **Bounded work.** The dashboard runs on a thread and runtime of its own,
//! so however many requests arrive they are served by one thread and never
//! take the node's runtime threads from its scheduling. The cluster's
//! state is gathered at most once per [`STATE_MAX_AGE`] whatever the
//! number of clients (one gather at a time; everyone else gets the latest
//! snapshot), and every gather is itself bounded (`wray_net::state`'s row
//! limits, `wray_node::state::STATE_TIMEOUT` per worker). Connections are
//! capped at [`MAX_CONNECTIONS`], request heads must arrive within
//! [`HEADER_TIMEOUT`], and the one request body read (the login form) is
//! cut at [`MAX_FORM_BYTES`].

#![deny(missing_docs)]

mod assets;
mod auth;
pub mod health;
mod metrics;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, watch};
use wray_net::state::NodeState;
use wray_node::{JobTable, Node};

/// The port Ray's dashboard uses, and so ours.
pub const DEFAULT_PORT: u16 = 8265;

/// How old a state snapshot may be before a request gathers a new one.
pub const STATE_MAX_AGE: Duration = Duration::from_millis(500);

/// Open connections at most; more wait to be accepted.
pub const MAX_CONNECTIONS: usize = 256;

/// Bytes of a job's log one request returns at most (the page asks again
/// from the next offset).
pub const MAX_LOG_CHUNK: usize = 256 << 10;

/// Bytes of the login form read at most.
pub const MAX_FORM_BYTES: usize = 4096;

/// A request's head must arrive within this (slow clients hold a slot).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// What the dashboard shows besides the node.
#[derive(Clone, Default)]
pub struct DashboardConfig {
    /// The cluster token: what remote readers and every action need. None
    /// (a node of its own): loopback readers only, no actions.
    pub token: Option<String>,
    /// The head's job records: submitted jobs' logs and stopping them.
    pub jobs: Option<Arc<JobTable>>,
    /// The node's HTTP proxy, for the Serve view.
    pub serve: Option<wray_serve_host::Server>,
}

/// A running dashboard. Cloning shares it.
#[derive(Clone)]
pub struct Dashboard {
    addr: SocketAddr,
    stop: Arc<watch::Sender<bool>>,
}

impl Dashboard {
    /// Binds `addr` and starts serving on a thread of its own. Must be
    /// called inside the node's tokio runtime: state is gathered there.
    pub fn bind(addr: SocketAddr, node: Node, config: DashboardConfig) -> std::io::Result<Dashboard> {
        let (listener, addr, node_runtime) = listen(addr, "dashboard")?;
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            node,
            node_runtime,
            auth: auth::Auth::new(config.token.clone()),
            config,
            snapshot: tokio::sync::Mutex::new(None),
            gathers: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        });
        let handler = move |req, peer| {
            let shared = shared.clone();
            async move { handle(&shared, req, peer).await }
        };
        serve_on_thread(listener, "wray-dashboard", MAX_CONNECTIONS, stopped, handler)?;
        Ok(Dashboard { addr, stop: Arc::new(stop) })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The page's URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting and closes connections.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }
}

struct Shared {
    node: Node,
    node_runtime: tokio::runtime::Handle,
    auth: auth::Auth,
    config: DashboardConfig,
    /// The last snapshot; the lock is held by the one request gathering
    /// a new one, so concurrent requests wait for it instead of gathering.
    snapshot: tokio::sync::Mutex<Option<Arc<Snapshot>>>,
    gathers: AtomicU64,
    requests: AtomicU64,
}

/// The cluster at one moment, in the forms the API serves.
struct Snapshot {
    at: Instant,
    nodes: Vec<NodeState>,
    serve: Option<serde_json::Value>,
    json: Bytes,
}

impl Shared {
    /// A snapshot at most [`STATE_MAX_AGE`] old.
    async fn snapshot(&self) -> Arc<Snapshot> {
        let mut slot = self.snapshot.lock().await;
        if let Some(s) = slot.as_ref()
            && s.at.elapsed() < STATE_MAX_AGE
        {
            return s.clone();
        }
        let node = self.node.clone();
        let nodes = match self.node_runtime.spawn(async move { node.cluster_state().await }).await {
            Ok(nodes) => nodes,
            Err(e) => {
                tracing::error!("dashboard: gathering the cluster's state failed: {e}");
                Vec::new()
            }
        };
        self.gathers.fetch_add(1, Ordering::Relaxed);
        let serve = self.config.serve.as_ref().map(|s| s.status());
        let json = serde_json::json!({
            "generated_ms": std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            "nodes": nodes,
            "serve": serve,
        });
        let snapshot = Arc::new(Snapshot { at: Instant::now(), nodes, serve, json: Bytes::from(json.to_string()) });
        *slot = Some(snapshot.clone());
        snapshot
    }
}

/// Binds `addr` for the server called `what` (named in its errors), and
/// the node runtime the caller is inside, where the server's work on the
/// node runs.
pub(crate) fn listen(
    addr: SocketAddr,
    what: &str,
) -> std::io::Result<(std::net::TcpListener, SocketAddr, tokio::runtime::Handle)> {
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{what}: cannot listen on {addr}: {e}")))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let node_runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| std::io::Error::other(format!("{what}: bind must be called inside the node's runtime")))?;
    Ok((listener, addr, node_runtime))
}

/// Serves HTTP/1.1 from `listener` on a thread and current-thread runtime
/// of its own (named `name`), answering every request with `handler`,
/// until `stopped` turns true. At most `max_connections` are open at once
/// (more wait to be accepted); a request head must arrive within
/// [`HEADER_TIMEOUT`]. The dashboard and the health endpoints both run here.
pub(crate) fn serve_on_thread<H, F>(
    listener: std::net::TcpListener,
    name: &str,
    max_connections: usize,
    stopped: watch::Receiver<bool>,
    handler: H,
) -> std::io::Result<()>
where
    H: Fn(hyper::Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let label = name.to_string();
    std::thread::Builder::new().name(name.into()).spawn(move || {
        runtime.block_on(async move {
            match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => accept(listener, max_connections, stopped, handler).await,
                Err(e) => tracing::error!("{label}: {e}"),
            }
        });
    })?;
    Ok(())
}

async fn accept<H, F>(
    listener: tokio::net::TcpListener,
    max_connections: usize,
    mut stopped: watch::Receiver<bool>,
    handler: H,
) where
    H: Fn(hyper::Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response> + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT).max_buf_size(16 << 10);
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(max_connections));
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = stopped.wait_for(|s| *s) => return,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("accepting an HTTP connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped.wait_for(|s| *s) => return,
        };
        let (handler, builder, mut stopped) = (handler.clone(), builder.clone(), stopped.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let svc = hyper::service::service_fn(move |req| {
                let response = handler(req, peer);
                async move { Ok::<_, Infallible>(response.await) }
            });
            let conn = builder.serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stopped.wait_for(|s| *s) => {}
            }
        });
    }
}

type Response = hyper::Response<Full<Bytes>>;

fn respond(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response {
    let mut resp = hyper::Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The page loads only its own script and style, and is never framed.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    resp
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut body = body.into();
    body.push('\n');
    respond(status, "text/plain; charset=utf-8", body)
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    respond(status, "application/json", value.to_string())
}

async fn handle(shared: &Shared, req: hyper::Request<Incoming>, peer: SocketAddr) -> Response {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let access = shared.auth.access(req.headers(), peer);
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    // The login page and form are for those who cannot read yet.
    match (&method, path.as_str()) {
        (&Method::GET, "/login") => return respond(StatusCode::OK, "text/html; charset=utf-8", assets::LOGIN),
        (&Method::GET, "/style.css") => return respond(StatusCode::OK, "text/css; charset=utf-8", assets::STYLE),
        (&Method::POST, "/login") => return login(shared, req).await,
        (&Method::POST, "/logout") => return logout(),
        _ => {}
    }
    match access {
        auth::Access::WrongToken => return text(StatusCode::UNAUTHORIZED, "wrong token"),
        auth::Access::None => {
            // A browser is sent to the form; a script gets the status.
            let wants_html = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|a| a.contains("text/html"));
            if wants_html && method == Method::GET {
                let mut resp = respond(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "log in\n");
                resp.headers_mut().insert(header::LOCATION, HeaderValue::from_static("/login"));
                return resp;
            }
            return text(
                StatusCode::UNAUTHORIZED,
                "this dashboard needs the cluster token from a remote address: \
                 Authorization: Bearer <token>, or log in at /login",
            );
        }
        auth::Access::Read | auth::Access::Act => {}
    }
    match (&method, path.as_str()) {
        (&Method::GET, "/") | (&Method::GET, "/index.html") => {
            respond(StatusCode::OK, "text/html; charset=utf-8", assets::INDEX)
        }
        (&Method::GET, "/app.js") => respond(StatusCode::OK, "text/javascript; charset=utf-8", assets::SCRIPT),
        (&Method::GET, "/api/state") => {
            let s = shared.snapshot().await;
            respond(StatusCode::OK, "application/json", s.json.clone())
        }
        (&Method::GET, "/api/session") => json(
            StatusCode::OK,
            &serde_json::json!({
                "can_act": access == auth::Access::Act,
                "has_token": shared.auth.has_token(),
                "job_logs": shared.config.jobs.is_some(),
            }),
        ),
        (&Method::GET, "/metrics") => {
            let s = shared.snapshot().await;
            let counters = metrics::Dashboard {
                gathers: shared.gathers.load(Ordering::Relaxed),
                requests: shared.requests.load(Ordering::Relaxed),
            };
            match metrics::encode(&s.nodes, s.serve.as_ref(), &counters) {
                Ok(body) => respond(StatusCode::OK, metrics::CONTENT_TYPE, body),
                Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("encoding the metrics failed: {e}")),
            }
        }
        (m, p) if p.starts_with("/api/jobs/") => job_action(shared, m, p, req.uri().query(), access).await,
        (&Method::GET, p) if p.starts_with("/api/nodes/") && p.ends_with("/log") => {
            node_log(shared, &p["/api/nodes/".len()..p.len() - "/log".len()], req.uri().query()).await
        }
        (&Method::GET, _) => text(StatusCode::NOT_FOUND, format!("no such page: {path}")),
        _ => text(StatusCode::METHOD_NOT_ALLOWED, format!("{method} {path} is not served")),
    }
}

/// Whether `id` can name a job or a node (`job-000001`, `node-1a2b-5c0e93d1f27a`):
/// anything else is refused before it reaches a file name or a lookup.
fn plain_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A number from the query string (`key=N`), if given; the error says
/// which key is not a number.
fn query_number(query: Option<&str>, key: &str) -> Result<Option<u64>, String> {
    let raw = query.and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')));
    match raw.map(str::parse::<u64>) {
        None => Ok(None),
        Some(Ok(n)) => Ok(Some(n)),
        Some(Err(_)) => Err(format!("{key} must be a number")),
    }
}

/// `GET /api/nodes/<id>/log?offset=N` (or `?tail=BYTES`: the end of it):
/// up to [`MAX_LOG_CHUNK`] bytes of a node's log, through the head.
async fn node_log(shared: &Shared, id: &str, query: Option<&str>) -> Response {
    if !plain_id(id) {
        return text(StatusCode::NOT_FOUND, format!("no such node: {id:?}"));
    }
    let (offset, tail) = match (query_number(query, "offset"), query_number(query, "tail")) {
        (Ok(o), Ok(t)) => (o, t),
        (Err(why), _) | (_, Err(why)) => return text(StatusCode::BAD_REQUEST, why),
    };
    // Past the end asks for the last `max` bytes.
    let (offset, max) = match (offset, tail) {
        (Some(o), _) => (o, MAX_LOG_CHUNK as u64),
        (None, t) => (u64::MAX, t.unwrap_or(64 << 10).min(MAX_LOG_CHUNK as u64)),
    };
    let node = shared.node.clone();
    let id = id.to_string();
    let read = shared.node_runtime.spawn(async move { node.node_log(&id, offset, max).await }).await;
    match read {
        Ok(Ok(chunk)) => {
            let next = chunk.offset + chunk.data.len() as u64;
            let mut resp = respond(StatusCode::OK, "text/plain; charset=utf-8", chunk.data);
            resp.headers_mut().insert("x-next-offset", HeaderValue::from(next));
            resp.headers_mut().insert("x-size", HeaderValue::from(chunk.size));
            resp
        }
        Ok(Err(why)) => text(StatusCode::NOT_FOUND, why),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("reading the log: {e}")),
    }
}

/// `GET /api/jobs/<id>/logs?offset=N` and `POST /api/jobs/<id>/stop`.
async fn job_action(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: Option<&str>,
    access: auth::Access,
) -> Response {
    let rest = &path["/api/jobs/".len()..];
    let Some((id, action)) = rest.split_once('/') else {
        return text(StatusCode::NOT_FOUND, format!("no such page: {path}"));
    };
    if !plain_id(id) {
        return text(StatusCode::NOT_FOUND, format!("no such job: {id:?}"));
    }
    let Some(jobs) = shared.config.jobs.clone() else {
        return text(StatusCode::NOT_FOUND, "this node keeps no job records (it is not a head)");
    };
    match (method, action) {
        (&Method::GET, "logs") => {
            let offset = match query_number(query, "offset") {
                Ok(o) => o.unwrap_or(0),
                Err(why) => return text(StatusCode::BAD_REQUEST, why),
            };
            let id = id.to_string();
            // File reads: off the dashboard's one thread.
            let read = tokio::task::spawn_blocking(move || jobs.read_log(&id, offset, MAX_LOG_CHUNK)).await;
            match read {
                Ok(Ok(Some((info, chunk)))) => {
                    let mut resp = respond(StatusCode::OK, "text/plain; charset=utf-8", chunk.clone());
                    let h = resp.headers_mut();
                    let next = offset + chunk.len() as u64;
                    h.insert("x-next-offset", HeaderValue::from(next));
                    if let Ok(v) = HeaderValue::from_str(&info.status) {
                        h.insert("x-job-status", v);
                    }
                    resp
                }
                Ok(Ok(None)) => text(StatusCode::NOT_FOUND, format!("no such job: {path}")),
                Ok(Err(e)) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("reading the log: {e}")),
                Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("reading the log: {e}")),
            }
        }
        (&Method::POST, "stop") => {
            if access != auth::Access::Act {
                return text(StatusCode::UNAUTHORIZED, "stopping a job needs the cluster token: log in at /login");
            }
            let node = shared.node.clone();
            let id = id.to_string();
            let stopped = shared
                .node_runtime
                .spawn(async move { jobs.stop_gracefully(&node, &id).then_some(id) })
                .await
                .ok()
                .flatten();
            match stopped {
                Some(id) => json(StatusCode::OK, &serde_json::json!({ "stopping": id })),
                None => text(StatusCode::CONFLICT, format!("{path}: the job is not running")),
            }
        }
        _ => text(StatusCode::NOT_FOUND, format!("no such page: {path}")),
    }
}

async fn login(shared: &Shared, req: hyper::Request<Incoming>) -> Response {
    let body = match Limited::new(req.into_body(), MAX_FORM_BYTES).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return text(StatusCode::PAYLOAD_TOO_LARGE, format!("the form is over {MAX_FORM_BYTES} bytes")),
    };
    let token = auth::form_value(&body, "token").unwrap_or_default();
    match shared.auth.session_for(&token) {
        Some(cookie) => {
            let mut resp = respond(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "logged in\n");
            let h = resp.headers_mut();
            h.insert(header::LOCATION, HeaderValue::from_static("/"));
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                h.insert(header::SET_COOKIE, v);
            }
            resp
        }
        None => {
            let mut resp = respond(StatusCode::UNAUTHORIZED, "text/html; charset=utf-8", assets::login_failed());
            resp.headers_mut().insert("x-reason", HeaderValue::from_static("wrong token"));
            resp
        }
    }
}

fn logout() -> Response {
    let mut resp = respond(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "logged out\n");
    let h = resp.headers_mut();
    h.insert(header::LOCATION, HeaderValue::from_static("/"));
    h.insert(header::SET_COOKIE, HeaderValue::from_static(auth::CLEAR_COOKIE));
    resp
}
