//! The head against hostile authenticated peers: real QUIC on loopback.

use crate::{Node, NodeConfig};
use wray_net::proto::{self, Event, Request};
use wray_net::{ClusterIdentity, Token, frame};

async fn head() -> (tempfile::TempDir, Token, std::net::SocketAddr) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::new(dir.path().to_path_buf());
    config.cpus = 1.0;
    config.max_instances = 16;
    config.cache_dir = None;
    let node = Node::new(config).unwrap();
    let token = Token::generate().unwrap();
    let endpoint =
        wray_net::server("127.0.0.1:0".parse().unwrap(), &ClusterIdentity::new(&token, "head").unwrap()).unwrap();
    let addr = endpoint.local_addr().unwrap();
    let jobs = crate::JobTable::open(dir.path()).unwrap();
    tokio::spawn(async move { node.serve(endpoint, jobs, crate::cluster::head::DEFAULT_NODE_TIMEOUT).await });
    (dir, token, addr)
}

async fn status(token: &Token, addr: std::net::SocketAddr) -> Result<Event, wray_net::NetError> {
    let (_ep, conn) = wray_net::connect(addr, &ClusterIdentity::new(token, "client").unwrap()).await?;
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| wray_net::NetError::Stream(e.to_string()))?;
    frame::write(&mut send, &proto::encode(&Request::Status)?).await?;
    let bytes = frame::read(&mut recv).await?.expect("a reply");
    proto::decode_event(&bytes)
}

/// Sends `raw` on a fresh authenticated connection and returns whether the
/// head closed that connection with the protocol-error code.
async fn send_raw(token: &Token, addr: std::net::SocketAddr, raw: &[u8]) -> bool {
    let (_ep, conn) = wray_net::connect(addr, &ClusterIdentity::new(token, "client").unwrap()).await.unwrap();
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    send.write_all(raw).await.unwrap();
    match tokio::time::timeout(std::time::Duration::from_secs(10), conn.closed()).await {
        Ok(quinn::ConnectionError::ApplicationClosed(close)) => close.error_code == quinn::VarInt::from_u32(1),
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_close_only_the_offending_connection() {
    let (_dir, token, addr) = head().await;
    // An oversized length prefix: refused before anything is allocated.
    assert!(send_raw(&token, addr, &u32::MAX.to_le_bytes()).await, "oversized frame not refused");
    // A well-sized frame of garbage: fails validation.
    let mut garbage = 64u32.to_le_bytes().to_vec();
    garbage.extend((0..64u8).map(|i| i.wrapping_mul(37)));
    assert!(send_raw(&token, addr, &garbage).await, "garbage frame not refused");
    // Everyone else is still served.
    assert!(matches!(status(&token, addr).await.unwrap(), Event::Status(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_the_token_cannot_connect() {
    let (_dir, token, addr) = head().await;
    let other = Token::generate().unwrap();
    let err = status(&other, addr).await.unwrap_err();
    assert!(err.to_string().contains("handshake"), "{err}");
    assert!(matches!(status(&token, addr).await.unwrap(), Event::Status(_)));
}

fn task_request(component_hash: &str, args: Vec<proto::WireArg>) -> proto::TaskRequest {
    proto::TaskRequest {
        job: "node-x/1".into(),
        owner_node: "node-x".into(),
        owner_job: 1,
        name: "job.wasm".into(),
        component_hash: component_hash.into(),
        env: Vec::new(),
        memory_limit: None,
        time_limit_ms: None,
        task_hi: 1,
        task_lo: 2,
        function: "f".into(),
        resources: vec![("CPU".into(), 1.0)],
        max_retries: 0,
        retry_exceptions: false,
        reuse_instance: false,
        max_calls: 0,
        generator_backpressure: 0,
        task_env: Vec::new(),
        actor: None,
        must_move: true,
        scheduling: proto::WireScheduling::Default,
        args,
        objects: Vec::new(),
        placement: 0,
        direct: false,
        hold: false,
    }
}

/// Sends one request (and `raw` bytes after it) and returns the first event.
async fn ask(token: &Token, addr: std::net::SocketAddr, request: &Request, raw: &[u8]) -> Event {
    let (_ep, conn) = wray_net::connect(addr, &ClusterIdentity::new(token, "client").unwrap()).await.unwrap();
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    frame::write(&mut send, &proto::encode(request).unwrap()).await.unwrap();
    send.write_all(raw).await.unwrap();
    let _ = send.finish();
    proto::decode_event(&frame::read(&mut recv).await.unwrap().expect("an answer")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_task_and_group_requests_get_clear_answers() {
    let (_dir, token, addr) = head().await;
    // A task whose component nobody has: refused by name, not run.
    let req = Request::RunTask(task_request(&"ab".repeat(32), Vec::new()));
    match ask(&token, addr, &req, &[]).await {
        Event::Refused(why) => assert!(why.contains("no component"), "{why}"),
        other => panic!("{other:?}"),
    }
    // A demand no node has.
    let mut t = task_request(&"ab".repeat(32), Vec::new());
    t.resources = vec![("GPU".into(), 8.0)];
    match ask(&token, addr, &Request::RunTask(t), &[]).await {
        Event::Refused(why) => assert!(why.contains("no node in the cluster has"), "{why}"),
        other => panic!("{other:?}"),
    }
    // Negative and non-finite amounts are refused as malformed: the
    // connection is closed, the head goes on.
    let mut t = task_request(&"ab".repeat(32), Vec::new());
    t.resources = vec![("CPU".into(), f64::NAN)];
    let mut raw = Vec::new();
    let bytes = proto::encode(&Request::RunTask(t)).unwrap();
    raw.extend((bytes.len() as u32).to_le_bytes());
    raw.extend(bytes);
    assert!(send_raw(&token, addr, &raw).await, "a NaN demand was not refused");
    // Placement groups: an impossible strategy code, an impossible group.
    let bad = Request::CreateGroup { bundles: vec![vec![("CPU".into(), 1.0)]], strategy: 9 };
    let bytes = proto::encode(&bad).unwrap();
    let mut raw = (bytes.len() as u32).to_le_bytes().to_vec();
    raw.extend(bytes);
    assert!(send_raw(&token, addr, &raw).await, "a bad strategy was not refused");
    let big = Request::CreateGroup { bundles: vec![vec![("CPU".into(), 64.0)]], strategy: 0 };
    match ask(&token, addr, &big, &[]).await {
        Event::Refused(why) => assert!(why.contains("no node has room"), "{why}"),
        other => panic!("{other:?}"),
    }
    let none = Request::CreateGroup { bundles: Vec::new(), strategy: 0 };
    assert!(matches!(ask(&token, addr, &none, &[]).await, Event::Refused(_)));
    // Fetching an object the node does not hold for that job: refused by
    // name (a peer cannot read objects by guessing ids).
    let fetch = Request::Fetch { job: "node-x/1".into(), id: proto::WireId { hi: 1, lo: 2, index: 0 } };
    match ask(&token, addr, &fetch, &[]).await {
        Event::Refused(why) => assert!(why.contains("holds no object") && why.contains("node-x/1"), "{why}"),
        other => panic!("{other:?}"),
    }
    // Upcalls about jobs that do not exist.
    let up = Request::Upcall(proto::UpcallRequest { job: 77, upcall: proto::Upcall::Named { name: "x".into() } });
    assert!(matches!(ask(&token, addr, &up, &[]).await, Event::Refused(_)));
    // Listing names for a job it does not have: the detached actors only
    // (none here), not an error.
    let list = Request::Upcall(proto::UpcallRequest { job: 77, upcall: proto::Upcall::ListNamed });
    assert_eq!(ask(&token, addr, &list, &[]).await, Event::Names(Vec::new()));
    // Still serving everyone.
    assert!(matches!(status(&token, addr).await.unwrap(), Event::Status(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_actor_creations_and_handle_returns_change_nothing() {
    let (_dir, token, addr) = head().await;
    // Creating an actor of a job the node does not have: refused.
    let create = proto::WireCreate {
        task_hi: 1,
        task_lo: 2,
        class: "C".into(),
        name: None,
        resources: Vec::new(),
        memory_limit: None,
        time_limit_ms: None,
        max_concurrency: 1,
        max_restarts: 0,
        max_task_retries: 0,
        checkpoint_every: 0,
        placement: None,
        scheduling: proto::WireScheduling::Default,
        env: Vec::new(),
        args: Vec::new(),
        objects: Vec::new(),
    };
    let up = Request::Upcall(proto::UpcallRequest { job: 77, upcall: proto::Upcall::Create(Box::new(create)) });
    assert!(matches!(ask(&token, addr, &up, &[]).await, Event::Refused(_)));
    // Giving back handle copies the node never lent: ignored (a peer cannot
    // free references it was not given), and no answer.
    let ids = (0..3).map(|i| proto::WireId { hi: i, lo: i, index: u32::MAX }).collect();
    let (_ep, conn) = wray_net::connect(addr, &ClusterIdentity::new(&token, "client").unwrap()).await.unwrap();
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    frame::write(&mut send, &proto::encode(&Request::ReturnHandles { job: 1, ids }).unwrap()).await.unwrap();
    send.finish().unwrap();
    assert!(frame::read(&mut recv).await.unwrap().is_none(), "an answer to a return");
    assert!(conn.close_reason().is_none(), "a harmless return closed the connection");
    // Too many in one message: a protocol error, that connection only.
    let ids = vec![proto::WireId { hi: 1, lo: 1, index: u32::MAX }; proto::MAX_RETURNED_HANDLES + 1];
    let back = proto::encode(&Request::ReturnHandles { job: 1, ids }).unwrap();
    let mut raw = (back.len() as u32).to_le_bytes().to_vec();
    raw.extend_from_slice(&back);
    assert!(send_raw(&token, addr, &raw).await, "too many handles given back were not refused");
    assert!(matches!(status(&token, addr).await.unwrap(), Event::Status(_)));
}

/// Every stream a peer opens holds the dispatcher's future for as long as
/// it lasts — a task or an actor session for as long as it runs — and the
/// head holds `place_task`'s for each task a worker sends it. One `match`
/// over every request was as large as its largest handler: 8,640 bytes a
/// stream; `place_task` kept its relay's buffers on every path, 6,448.
#[test]
fn a_stream_s_futures_stay_small() {
    use crate::future_size;
    let stream = future_size(
        |n: &Node,
         s: quinn::SendStream,
         r: quinn::RecvStream,
         p: &std::sync::Arc<crate::cluster::head::Peers>,
         c: &quinn::Connection| { n.serve_stream(s, r, p, c) },
    );
    let place = future_size(
        |n: &Node,
         t: Box<proto::TaskRequest>,
         s: quinn::SendStream,
         r: quinn::RecvStream,
         p: (&crate::cluster::head::Peers, &quinn::Connection)| { n.place_task(t, s, r, p.0, p.1) },
    );
    assert!(stream <= 512, "serve_stream's future is {stream} bytes");
    assert!(place <= 1024, "place_task's future is {place} bytes");
}

/// Joins as worker `id` offering two CPUs on a fresh connection; returns
/// the connection, its membership stream and the answer.
async fn join(
    token: &Token,
    addr: std::net::SocketAddr,
    id: &str,
) -> (quinn::Endpoint, quinn::Connection, (quinn::SendStream, quinn::RecvStream), Event) {
    let (ep, conn) = wray_net::connect(addr, &ClusterIdentity::new(token, "worker").unwrap()).await.unwrap();
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let request = Request::Join { node_id: id.into(), total: vec![("CPU".into(), 2.0)], listens: false };
    frame::write(&mut send, &proto::encode(&request).unwrap()).await.unwrap();
    let answer = proto::decode_event(&frame::read(&mut recv).await.unwrap().expect("an answer")).unwrap();
    (ep, conn, (send, recv), answer)
}

/// The cluster's CPUs, as the head answers a heartbeat on `membership`.
async fn beat(membership: &mut (quinn::SendStream, quinn::RecvStream)) -> f64 {
    let beat = proto::Heartbeat { free: vec![("CPU".into(), 2.0)], arrived: Vec::new() };
    let why = "no answer to a heartbeat (was the node taken for dead?)";
    frame::write(&mut membership.0, &proto::encode(&beat).unwrap()).await.expect(why);
    let answer = frame::read(&mut membership.1).await.expect(why).expect(why);
    match proto::decode_event(&answer).unwrap() {
        Event::Cluster { total, .. } => total.iter().find(|(k, _)| k == "CPU").map_or(0.0, |(_, v)| *v),
        other => panic!("{other:?}"),
    }
}

/// A node id names one node. Joining as the head is refused. The same id
/// joining again on a new connection is that node come back before the
/// head saw its old connection break: the new membership replaces the old
/// one, whose connection is closed — and whose end does not take the node
/// for dead (it did: the old membership ending declared the id dead,
/// closing the new connection and leaving the view).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_id_names_one_node() {
    let (_dir, token, addr) = head().await;
    let Event::Status(report) = status(&token, addr).await.unwrap() else { panic!("no status") };
    let head_id = report.nodes[0].id.clone();
    assert!(head_id.starts_with(&format!("node-{:x}-", std::process::id())), "{head_id}");
    let (_ep, _conn, _m, answer) = join(&token, addr, &head_id).await;
    match answer {
        Event::Refused(why) => assert!(why.contains(&head_id) && why.contains("head's own id"), "{why}"),
        other => panic!("{other:?}"),
    }

    let (_ep1, first, mut old, answer) = join(&token, addr, "node-x").await;
    assert!(matches!(answer, Event::Welcome { .. }), "{answer:?}");
    assert_eq!(beat(&mut old).await, 3.0);
    let (_ep2, second, mut new, answer) = join(&token, addr, "node-x").await;
    assert!(matches!(answer, Event::Welcome { .. }), "{answer:?}");
    match tokio::time::timeout(std::time::Duration::from_secs(10), first.closed()).await {
        Ok(quinn::ConnectionError::ApplicationClosed(close)) => {
            assert_eq!(&close.reason[..], b"the node joined again")
        }
        other => panic!("the old connection was not closed: {other:?}"),
    }
    // The old membership's end has had its chance to bury the node: the
    // new one still counts, for heartbeat after heartbeat.
    for _ in 0..5 {
        tokio::time::sleep(crate::HEARTBEAT / 4).await;
        assert_eq!(beat(&mut new).await, 3.0, "the node left the view");
    }
    assert!(second.close_reason().is_none(), "{:?}", second.close_reason());
}

#[test]
fn nodes_made_in_one_process_have_ids_of_their_own() {
    let ids: std::collections::HashSet<String> = (0..1000).map(|_| crate::new_node_id()).collect();
    assert_eq!(ids.len(), 1000);
    let pid = format!("node-{:x}-", std::process::id());
    assert!(ids.iter().all(|id| id.starts_with(&pid) && id.len() == pid.len() + 12), "{ids:?}");
}
