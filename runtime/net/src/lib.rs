//! wray's transport: QUIC (quinn) with mutual TLS, size-bounded frames and
//! validated rkyv messages.
//!
//! * [`ClusterIdentity`]: the cluster's certificate authority, derived from
//!   the join token, and the certificates a node or client presents. Every
//!   connection is mutual TLS 1.3 against that CA: a peer without the token
//!   cannot complete a handshake, so no port accepts an unauthenticated
//!   request.
//! * [`frame`]: one message per frame, `u32` little-endian length then the
//!   bytes, at most [`frame::MAX_FRAME`]; the length is checked before
//!   anything is allocated, and frames are read into aligned buffers.
//! * [`proto`]: the messages, rkyv-encoded; every frame from the network is
//!   validated (bytecheck) before use.

#![deny(missing_docs)]

pub mod frame;
// rkyv generates `Archived*` twins of every message, without docs.
#[allow(missing_docs)]
pub mod proto;
mod tls;

pub use tls::{ClusterIdentity, SERVER_NAME, Token};

use std::net::SocketAddr;

/// Why a transport operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// Building certificates or TLS configuration failed.
    #[error("tls setup: {0}")]
    Tls(String),
    /// The token is not a wray token.
    #[error("invalid token: {0}")]
    Token(String),
    /// Binding, connecting or the handshake failed (wrong token, unreachable
    /// address, ...).
    #[error("connection: {0}")]
    Connect(String),
    /// Reading or writing a stream failed.
    #[error("stream: {0}")]
    Stream(String),
    /// A frame longer than the limit was announced.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// Announced length.
        len: u64,
        /// [`frame::MAX_FRAME`].
        max: u64,
    },
    /// A frame's bytes are not a valid message.
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// A QUIC endpoint accepting mutually authenticated connections on `addr`.
pub fn server(addr: SocketAddr, identity: &ClusterIdentity) -> Result<quinn::Endpoint, NetError> {
    let config = identity.quinn_server_config()?;
    quinn::Endpoint::server(config, addr).map_err(|e| NetError::Connect(format!("cannot listen on {addr}: {e}")))
}

/// Connects to a wray node at `addr`, authenticating with `identity`.
/// Returns the client endpoint too: keep it to close the connection cleanly.
pub async fn connect(
    addr: SocketAddr,
    identity: &ClusterIdentity,
) -> Result<(quinn::Endpoint, quinn::Connection), NetError> {
    let bind: SocketAddr = if addr.is_ipv6() { "[::]:0".parse() } else { "0.0.0.0:0".parse() }.expect("literal");
    let mut endpoint = quinn::Endpoint::client(bind).map_err(|e| NetError::Connect(e.to_string()))?;
    endpoint.set_default_client_config(identity.quinn_client_config()?);
    let connecting = endpoint.connect(addr, SERVER_NAME).map_err(|e| NetError::Connect(e.to_string()))?;
    let conn = connecting
        .await
        .map_err(|e| NetError::Connect(format!("{addr}: {e} (is the address right, and the token the cluster's?)")))?;
    Ok((endpoint, conn))
}
