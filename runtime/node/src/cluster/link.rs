//! How a node reaches the rest of the cluster once it serves as the head
//! or has joined one: the head's [`Peers`], or a worker's connection to the
//! head (replaced when the worker joins a restarted head) and its direct
//! connections to other workers, made when the head first sends it to one
//! (an address the head saw that worker connect from) and kept while they
//! last.

use crate::cluster::head::Peers;
use crate::lock;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wray_core::Resources;

/// How a node reaches the rest of the cluster.
pub(crate) enum Link {
    /// This node is the head: it places tasks itself.
    Head(Arc<Peers>),
    /// A worker: its connection to the head (replaced when it reconnects
    /// to a restarted head), and the cluster's resources as the head last
    /// reported them (total, free).
    Worker(Box<WorkerLink>),
}

/// How long a worker tries to reach another directly before it goes
/// through the head instead. A handshake on a working path takes a round
/// trip or two; an unreachable address (a NAT between the workers, a
/// firewall) never answers.
pub(crate) const DIRECT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a worker that could not reach another directly goes through
/// the head to it before trying again.
pub(crate) const UNREACHABLE_FOR: Duration = Duration::from_secs(30);

/// The most other workers a worker keeps direct connections to (and
/// remembers as unreachable); past it, the oldest entry goes. A bound on
/// what a large cluster costs one worker, far above what a job's tasks
/// usually touch.
pub(crate) const MAX_DIRECT_PEERS: usize = 1024;

/// A worker's way to the head, and to the other workers directly.
pub(crate) struct WorkerLink {
    head: Mutex<(quinn::Connection, String)>,
    pub(crate) cluster: Mutex<Option<(Resources, Resources)>>,
    /// The endpoint the worker joined from, which accepts other workers'
    /// connections and makes its own to them, and what serves the requests
    /// the other side opens on a connection made from it (the other side
    /// uses it too, once this worker named itself); `None` with
    /// `--no-direct`.
    listening: Mutex<Option<(quinn::Endpoint, Serve)>>,
    /// Other workers by node id: a connection to them, or when the last
    /// attempt failed.
    direct: Mutex<HashMap<String, Direct>>,
    /// Connections other workers made to this one (for the traffic
    /// figures; at most [`MAX_DIRECT_PEERS`], the newest).
    accepted: Mutex<Vec<quinn::Connection>>,
    /// One gate per worker being dialed now: the tasks a burst sends to a
    /// worker not yet reached all ask for the connection at once, and each
    /// dialing would leave a connection of its own open (served for good by
    /// both sides). An entry lives while someone holds or waits for it.
    dialing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Names this node (`me`) on a new direct connection, in the background:
/// nothing waits for it, and a failure only leaves the other side to reach
/// this one through the head.
fn introduce(conn: &quinn::Connection, me: &str) {
    let (conn, hello) = (conn.clone(), wray_net::proto::Request::Hello { node_id: me.to_string() });
    tokio::spawn(async move {
        let Ok(bytes) = wray_net::proto::encode(&hello) else { return };
        if let Ok((mut send, _recv)) = conn.open_bi().await
            && wray_net::frame::write(&mut send, &bytes).await.is_ok()
        {
            let _ = send.finish();
        }
    });
}

/// Serves the requests a peer opens on a connection (`Node::serve_connection`
/// with the worker's `Peers`).
pub(crate) type Serve = Arc<dyn Fn(quinn::Connection) + Send + Sync>;

/// A turn at dialing one worker ([`WorkerLink::direct`]); the last one out
/// (finished, or dropped mid-dial with its task) removes the gate.
struct Gate<'a> {
    link: &'a WorkerLink,
    node: &'a str,
    turn: Arc<tokio::sync::Mutex<()>>,
}

impl Drop for Gate<'_> {
    fn drop(&mut self) {
        let mut dialing = lock(&self.link.dialing);
        // Only the map's handle and this one left: nobody waits for it.
        if Arc::strong_count(&self.turn) <= 2 {
            dialing.remove(self.node);
        }
    }
}

/// Another worker as this one reaches it.
enum Direct {
    Connected(quinn::Connection),
    Unreachable(Instant),
}

impl WorkerLink {
    pub(crate) fn new(
        conn: quinn::Connection,
        head_id: String,
        listening: Option<(quinn::Endpoint, Serve)>,
    ) -> WorkerLink {
        WorkerLink {
            head: Mutex::new((conn, head_id)),
            cluster: Mutex::new(None),
            listening: Mutex::new(listening),
            direct: Mutex::new(HashMap::new()),
            dialing: Mutex::new(HashMap::new()),
            accepted: Mutex::new(Vec::new()),
        }
    }

    /// Whether this worker reaches others directly (it listens, so the
    /// head may send it their addresses).
    pub(crate) fn goes_direct(&self) -> bool {
        lock(&self.listening).is_some()
    }

    /// A connection to worker `node`, listening at `addr`: the one kept
    /// from before, or a new one. `None` if it cannot be reached directly
    /// (now, or when last tried within [`UNREACHABLE_FOR`]): the caller
    /// goes through the head.
    pub(crate) async fn direct(&self, me: &str, node: &str, addr: &str) -> Option<quinn::Connection> {
        let (endpoint, serve) = lock(&self.listening).clone()?;
        if let Some(known) = self.known(node) {
            return known;
        }
        let gate = Gate { link: self, node, turn: lock(&self.dialing).entry(node.to_string()).or_default().clone() };
        let _turn = gate.turn.lock().await;
        // Whoever held the gate before may have settled it.
        match self.known(node) {
            Some(known) => known,
            None => self.dial(&endpoint, &serve, me, node, addr).await,
        }
    }

    /// What is known of worker `node`: `Some(Some(_))` an open connection,
    /// `Some(None)` unreachable when last tried (within
    /// [`UNREACHABLE_FOR`]), `None` nothing (never tried, closed, or tried
    /// long ago).
    fn known(&self, node: &str) -> Option<Option<quinn::Connection>> {
        match lock(&self.direct).get(node) {
            Some(Direct::Connected(c)) if c.close_reason().is_none() => Some(Some(c.clone())),
            Some(Direct::Unreachable(at)) if at.elapsed() < UNREACHABLE_FOR => Some(None),
            _ => None,
        }
    }

    /// Dials worker `node` at `addr` from `endpoint`, serves and names
    /// this node on the new connection, and remembers the outcome.
    async fn dial(
        &self,
        endpoint: &quinn::Endpoint,
        serve: &Serve,
        me: &str,
        node: &str,
        addr: &str,
    ) -> Option<quinn::Connection> {
        let dialed = match addr.parse::<SocketAddr>() {
            Ok(a) => tokio::time::timeout(DIRECT_CONNECT_TIMEOUT, wray_net::dial(endpoint, a))
                .await
                .map_err(|_| format!("no answer in {DIRECT_CONNECT_TIMEOUT:?}"))
                .and_then(|r| r.map_err(|e| e.to_string())),
            Err(e) => Err(format!("{addr:?} is not an address: {e}")),
        };
        let entry = match &dialed {
            Ok(c) => {
                tracing::info!("reached node {node} directly at {addr}");
                serve(c.clone());
                introduce(c, me);
                Direct::Connected(c.clone())
            }
            Err(why) => {
                tracing::info!("cannot reach node {node} at {addr} directly ({why}): going through the head");
                Direct::Unreachable(Instant::now())
            }
        };
        self.remember(node, entry);
        dialed.ok()
    }

    /// Worker `node` connected to this one and named itself
    /// ([`Request::Hello`](wray_net::proto::Request::Hello)): its connection
    /// is the way to it too, unless one is kept already.
    pub(crate) fn introduced(&self, node: &str, conn: quinn::Connection) {
        if self.connected(node).is_none() {
            tracing::info!("node {node} connected directly from {}", conn.remote_address());
            self.remember(node, Direct::Connected(conn));
        }
    }

    /// Keeps `entry` for `node`, within [`MAX_DIRECT_PEERS`].
    fn remember(&self, node: &str, entry: Direct) {
        let mut direct = lock(&self.direct);
        if direct.len() >= MAX_DIRECT_PEERS && !direct.contains_key(node) {
            // Closed connections first, then any: a bound, not a cache
            // policy worth more (a dropped entry is only dialed again).
            let victim = direct
                .iter()
                .find(|(_, d)| matches!(d, Direct::Connected(c) if c.close_reason().is_some()))
                .or_else(|| direct.iter().next())
                .map(|(k, _)| k.clone());
            if let Some(k) = victim {
                direct.remove(&k);
            }
        }
        direct.insert(node.to_string(), entry);
    }

    /// The direct connection to `node` kept from before, if it is open.
    pub(crate) fn connected(&self, node: &str) -> Option<quinn::Connection> {
        self.known(node).flatten()
    }

    /// Another worker connected to this one.
    pub(crate) fn accepted(&self, conn: quinn::Connection) {
        let mut accepted = lock(&self.accepted);
        accepted.retain(|c| c.close_reason().is_none());
        if accepted.len() >= MAX_DIRECT_PEERS {
            accepted.remove(0);
        }
        accepted.push(conn);
    }

    /// Open direct connections, made or accepted (for the node's traffic
    /// figures).
    pub(crate) fn direct_connections(&self) -> Vec<quinn::Connection> {
        let mut conns: Vec<quinn::Connection> = lock(&self.direct)
            .values()
            .filter_map(|d| match d {
                Direct::Connected(c) => Some(c.clone()),
                Direct::Unreachable(_) => None,
            })
            .collect();
        // An accepted connection its dialer named is in both lists.
        let known: std::collections::HashSet<usize> = conns.iter().map(quinn::Connection::stable_id).collect();
        conns.extend(
            lock(&self.accepted)
                .iter()
                .filter(|c| c.close_reason().is_none() && !known.contains(&c.stable_id()))
                .cloned(),
        );
        conns
    }

    /// The current connection to the head.
    pub(crate) fn head(&self) -> quinn::Connection {
        lock(&self.head).0.clone()
    }

    /// The head's node id.
    pub(crate) fn head_id(&self) -> String {
        lock(&self.head).1.clone()
    }

    /// The worker joined a (restarted) head again, from `listening`.
    /// Direct connections made from the old endpoint keep working until
    /// they close; new ones are made from the new one.
    pub(crate) fn reconnected(
        &self,
        conn: quinn::Connection,
        head_id: String,
        listening: Option<(quinn::Endpoint, Serve)>,
    ) {
        *lock(&self.head) = (conn, head_id);
        *lock(&self.listening) = listening;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use wray_net::{ClusterIdentity, Token};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_of_tasks_to_a_worker_not_yet_reached_dials_it_once() {
        let token = Token::generate().unwrap();
        let identity = |name: &str| ClusterIdentity::new(&token, name).unwrap();
        // The other worker (also standing in for the head): counts the
        // connections it accepts and keeps them open.
        let other = wray_net::server("127.0.0.1:0".parse().unwrap(), &identity("other")).unwrap();
        let addr = other.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counting = accepted.clone();
        tokio::spawn(async move {
            let mut kept = Vec::new();
            while let Some(incoming) = other.accept().await {
                if let Ok(conn) = incoming.await {
                    counting.fetch_add(1, Ordering::SeqCst);
                    kept.push(conn);
                }
            }
        });
        let (endpoint, head) = wray_net::connect_listening(addr, &identity("me")).await.unwrap();
        let served = Arc::new(AtomicUsize::new(0));
        let serving = served.clone();
        let serve: Serve = Arc::new(move |_| {
            serving.fetch_add(1, Ordering::SeqCst);
        });
        let link = Arc::new(WorkerLink::new(head, "head".into(), Some((endpoint, serve))));
        let mut burst = tokio::task::JoinSet::new();
        for _ in 0..32 {
            let (link, addr) = (link.clone(), addr.to_string());
            burst.spawn(async move { link.direct("me", "other", &addr).await.map(|c| c.stable_id()) });
        }
        let ids: Vec<_> = burst.join_all().await;
        assert!(ids.iter().all(|id| id.is_some() && *id == ids[0]), "{ids:?}");
        // The head's connection and one direct connection (the other side
        // may count the last a moment after this side has it).
        let deadline = Instant::now() + Duration::from_secs(5);
        while accepted.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        assert_eq!(served.load(Ordering::SeqCst), 1);
        assert!(lock(&link.dialing).is_empty());
        // A dial dropped before it ends (its task cancelled) leaves no gate.
        // (A socket that never answers: the handshake waits.)
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let unreachable = silent.local_addr().unwrap().to_string();
        let abandoned = tokio::time::timeout(Duration::from_millis(50), link.direct("me", "nobody", &unreachable));
        assert!(abandoned.await.is_err());
        assert!(lock(&link.dialing).is_empty());
        // Known now: no gate, no dial.
        assert_eq!(link.direct("me", "other", &addr.to_string()).await.map(|c| c.stable_id()), ids[0]);
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }
}
