//! The worker role: a node that joined a head runs what the head places on
//! it. It keeps one connection to the head, heartbeats on the stream it
//! joined with, hears the cluster's resources back on it, and serves the
//! requests the head opens (the same dispatcher as the head's,
//! `requests.rs`). Unless told not to (`wray start --no-direct`) it also
//! accepts connections from other workers on the socket it joined from
//! (`link.rs` has the other side): tasks then go from worker to worker
//! without the head in the path.

use crate::cluster::head::{DEFAULT_NODE_TIMEOUT, HEARTBEAT, MEMBERSHIP_PRIORITY, Peers};
use crate::cluster::link::{Link, Serve, WorkerLink};
use crate::cluster::wire::{pairs, resources};
use crate::persist::JobTable;
use crate::{Node, lock};
use std::sync::Arc;
use wray_net::frame;
use wray_net::proto::{self, Event};

impl Node {
    /// Serves the requests a head opens on a worker's connection to it (the
    /// worker role: it runs the jobs and tasks the head places on it), and
    /// heartbeats on `membership` (the stream it joined with) until the head
    /// goes away.
    /// `head_id` is the head's node id (what the join answered).
    /// `listening`, if given, is the endpoint `conn` was made from, which
    /// also accepts other workers' connections (the join said so): this
    /// serves them too, and connects to other workers from it.
    pub async fn serve_head(
        &self,
        conn: quinn::Connection,
        listening: Option<quinn::Endpoint>,
        membership: (quinn::SendStream, quinn::RecvStream),
        head_id: String,
        jobs: Arc<JobTable>,
    ) {
        // A worker keeps no component store: it remembers loaded components
        // and asks the head for the bytes of any other.
        let peers = Arc::new(Peers::new(jobs, None, false, DEFAULT_NODE_TIMEOUT));
        // Connections this worker makes to others are served as accepted
        // ones are: once it names itself, the other side opens requests on
        // them too. The closure lives in the node's own link, so it holds
        // the node weakly (a strong handle would keep it alive forever).
        let serve: Serve = {
            let (node, peers) = (Arc::downgrade(&self.inner), peers.clone());
            Arc::new(move |conn| {
                let Some(inner) = node.upgrade() else { return };
                let (node, peers) = (Node { inner }, peers.clone());
                tokio::spawn(async move { node.serve_connection(conn, peers).await });
            })
        };
        let direct = listening.clone().map(|endpoint| (endpoint, serve.clone()));
        match self.inner.link.get() {
            Some(Link::Worker(w)) => w.reconnected(conn.clone(), head_id, direct),
            Some(Link::Head(_)) => {
                tracing::error!("this node is a head");
                return;
            }
            None => {
                let _ = self.inner.link.set(Link::Worker(Box::new(WorkerLink::new(conn.clone(), head_id, direct))));
            }
        }
        let (mut send, mut recv) = membership;
        // Heartbeats go ahead of bulk data on the same connection: a node
        // moving a large object must not look dead.
        let _ = send.set_priority(MEMBERSHIP_PRIORITY);
        let node = self.inner.clone();
        // The head numbers its placements here from this join on: numbers
        // heard under an earlier head mean nothing to this one.
        let _ = node.measure();
        let heartbeat = async move {
            let mut tick = tokio::time::interval(HEARTBEAT);
            loop {
                tick.tick().await;
                let (free, arrived) = node.measure();
                let beat = proto::Heartbeat { free: pairs(&free), arrived };
                let Ok(bytes) = proto::encode(&beat) else { return };
                if frame::write(&mut send, &bytes).await.is_err() {
                    return;
                }
            }
        };
        let node = self.inner.clone();
        let cluster = async move {
            while let Ok(Some(bytes)) = frame::read(&mut recv).await {
                if let Ok(Event::Cluster { total, free }) = proto::decode_event(&bytes)
                    && let (Ok(total), Ok(free)) = (resources(&total), resources(&free))
                    && let Some(Link::Worker(w)) = node.link.get()
                {
                    // What the other nodes have free, roughly (the head
                    // knows which node; this node only needs to know
                    // whether asking is worth it).
                    let mut elsewhere = free.clone();
                    elsewhere.subtract(&node.free_resources());
                    *lock(&w.cluster) = Some((total, free));
                    node.rebalance(vec![elsewhere]);
                }
            }
        };
        // Other workers' connections: served as the head's are (a task, an
        // upcall), each on its own task, for as long as it lasts.
        let node = self.clone();
        let accept = async move {
            let Some(endpoint) = listening else { return std::future::pending().await };
            while let Some(incoming) = endpoint.accept().await {
                let (node, serve) = (node.clone(), serve.clone());
                tokio::spawn(async move {
                    let remote = incoming.remote_address();
                    match incoming.await {
                        Ok(conn) => {
                            if let Some(Link::Worker(w)) = node.inner.link.get() {
                                w.accepted(conn.clone());
                            }
                            serve(conn);
                        }
                        Err(e) => tracing::warn!("refused connection from {remote}: {e}"),
                    }
                });
            }
        };
        tokio::select! {
            () = accept => tracing::warn!("stopped accepting connections from other workers"),
            () = self.serve_connection(conn, peers) => {}
            () = heartbeat => tracing::warn!("cannot heartbeat to the head any more"),
            () = cluster => tracing::warn!("the head closed the membership stream"),
        }
    }
}
