//! HTTP serving for wray: Ray Serve's deployments, on actors.
//!
//! A guest declares an application (`wray::serve`): deployments, each an
//! actor class with replica counts or autoscaling, a request cap per
//! replica, a queue, batching, a route prefix. When its driver calls
//! `serve.run`, the node hands the application to the [`Server`] it was
//! given (as [`wray_host::Serving`]); the server's controller (`app.rs`)
//! creates the replicas as actors of that job, and its proxy (`proxy.rs`,
//! hyper: HTTP/1.1 and HTTP/2 on one port) sends each request to the least
//! loaded replica as one method call. `serve.run` returns when the server
//! shuts down, after requests in flight have finished; the job then ends
//! and its replicas with it.
//!
//! The pure parts — which replica takes a request and what waits
//! (`balance`), how many replicas the load asks for (`autoscale`), which
//! deployment a path goes to (`routes`) — do no I/O and are tested alone.
//!
//! Limits a client controls are named constants in [`ServerConfig`]'s
//! defaults: header bytes, body bytes, the time to send headers (slow
//! clients cannot hold a connection's slot, and never hold a replica: a
//! request reaches a replica only once its body has arrived whole), the
//! time a request may take.

#![deny(missing_docs)]

mod app;
pub mod autoscale;
pub mod balance;
mod proxy;
pub mod routes;
pub mod stats;

pub use app::{CONTROL_TICK, READY_TIMEOUT};
pub use proxy::{Server, ServerConfig};
pub use wray_host::{HttpComponent, HttpGrants, is_http_proxy};

/// Largest request head (request line and headers) accepted; a larger one
/// gets 431 (HTTP/1.1) or a stream reset (HTTP/2).
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 << 10;
/// Largest request body accepted; a larger one gets 413.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 << 20;
/// A request must be answered within this long (unless its deployment says
/// otherwise), or the proxy answers 504.
pub const DEFAULT_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// A client must send a request's headers within this long of connecting
/// (or of its previous response, on a kept-alive connection).
pub const DEFAULT_HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Graceful shutdown waits this long for requests in flight.
pub const DEFAULT_SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(30);
/// Open connections at most; more wait to be accepted.
pub const MAX_CONNECTIONS: usize = 10_000;
