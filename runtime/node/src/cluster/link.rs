//! How a node reaches the rest of the cluster once it serves as the head
//! or has joined one: the head's [`Peers`], or a worker's connection to the
//! head (replaced when the worker joins a restarted head).

use crate::cluster::head::Peers;
use crate::lock;
use std::sync::{Arc, Mutex};
use wray_core::Resources;

/// How a node reaches the rest of the cluster.
pub(crate) enum Link {
    /// This node is the head: it places tasks itself.
    Head(Arc<Peers>),
    /// A worker: its connection to the head (replaced when it reconnects
    /// to a restarted head), and the cluster's resources as the head last
    /// reported them (total, free).
    Worker(WorkerLink),
}

/// A worker's way to the head.
pub(crate) struct WorkerLink {
    head: Mutex<(quinn::Connection, String)>,
    pub(crate) cluster: Mutex<Option<(Resources, Resources)>>,
}

impl WorkerLink {
    pub(crate) fn new(conn: quinn::Connection, head_id: String) -> WorkerLink {
        WorkerLink { head: Mutex::new((conn, head_id)), cluster: Mutex::new(None) }
    }

    /// The current connection to the head.
    pub(crate) fn head(&self) -> quinn::Connection {
        lock(&self.head).0.clone()
    }

    /// The head's node id.
    pub(crate) fn head_id(&self) -> String {
        lock(&self.head).1.clone()
    }

    /// The worker joined a (restarted) head again.
    pub(crate) fn reconnected(&self, conn: quinn::Connection, head_id: String) {
        *lock(&self.head) = (conn, head_id);
    }
}
