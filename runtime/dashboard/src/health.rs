//! Health endpoints for whatever supervises a node: Kubernetes' liveness
//! and readiness probes, a load balancer's health check, a systemd watchdog
//! script (`wray start --health-port`).
//!
//! | path | 200 when | 503 when |
//! |---|---|---|
//! | `/livez` | the node's runtime runs a task within [`LIVENESS_TIMEOUT`] | it does not: the process is wedged and should be restarted |
//! | `/readyz` (and `/healthz`) | the node does its job: a head serves, a worker has joined its head | it does not yet, or not any more; the body says why |
//!
//! Liveness deliberately ignores the cluster: a worker whose head is gone
//! keeps trying to join it again by itself, and restarting every worker
//! while the head restarts would only lose their objects. Readiness is
//! where the head's absence shows.
//!
//! The endpoints say nothing about the cluster beyond that one word, so
//! they need no token and may listen on a pod's address for the kubelet.
//! They run on a thread and runtime of their own, like the dashboard, so a
//! node too busy to answer a probe is measured by the probe, not hidden by
//! it; connections are capped at [`MAX_HEALTH_CONNECTIONS`].

use crate::{Response, listen, serve_on_thread, text};
use hyper::{Method, StatusCode};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long the node's runtime may take to run an empty task before the
/// node is reported not live.
pub const LIVENESS_TIMEOUT: Duration = Duration::from_secs(2);

/// Open connections at most (probes are short and few).
pub const MAX_HEALTH_CONNECTIONS: usize = 16;

/// Whether the node is ready, and if not, why: a head once it serves, a
/// worker while it has joined its head.
pub type Readiness = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// The health endpoints of one node. Cloning shares them.
#[derive(Clone)]
pub struct HealthServer {
    addr: SocketAddr,
    stop: Arc<watch::Sender<bool>>,
}

impl HealthServer {
    /// Binds `addr` and answers probes on a thread of its own. Must be
    /// called inside the node's tokio runtime: liveness is measured there.
    pub fn bind(addr: SocketAddr, ready: Readiness) -> std::io::Result<HealthServer> {
        let (listener, addr, node_runtime) = listen(addr, "health endpoints")?;
        let (stop, stopped) = watch::channel(false);
        let handler = move |req: hyper::Request<hyper::body::Incoming>, _peer| {
            let (node_runtime, ready) = (node_runtime.clone(), ready.clone());
            async move { probe(&node_runtime, &ready, req.method(), req.uri().path()).await }
        };
        serve_on_thread(listener, "wray-health", MAX_HEALTH_CONNECTIONS, stopped, handler)?;
        Ok(HealthServer { addr, stop: Arc::new(stop) })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops answering.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }
}

async fn probe(node_runtime: &tokio::runtime::Handle, ready: &Readiness, method: &Method, path: &str) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, format!("{method} {path} is not served"));
    }
    match path {
        "/livez" => match tokio::time::timeout(LIVENESS_TIMEOUT, node_runtime.spawn(async {})).await {
            Ok(Ok(())) => text(StatusCode::OK, "ok"),
            Ok(Err(e)) => text(StatusCode::SERVICE_UNAVAILABLE, format!("the node's runtime is gone: {e}")),
            Err(_) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the node's runtime did not run a task within {LIVENESS_TIMEOUT:?}"),
            ),
        },
        "/readyz" | "/healthz" => match ready() {
            Ok(()) => text(StatusCode::OK, "ok"),
            Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}")),
        },
        _ => text(StatusCode::NOT_FOUND, format!("no such endpoint: {path} (try /livez or /readyz)")),
    }
}
