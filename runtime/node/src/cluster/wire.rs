//! What the cluster's messages are made of, and how one is asked and
//! answered: conversions between wray's types and the wire's
//! ([`wray_net::proto`]), writing a frame with the raw bytes that follow it,
//! reading one validated answer, and [`ask_for`], the one helper that turns
//! a refusal or an unexpected answer into a typed [`AskError`].

use bytes::Bytes;
use wray_core::{ObjectId, Resources, Scheduling, TaskId, limits};
use wray_host::{ArgSpec, Chunk, Stream};
use wray_net::proto::{self, Event, Request, WireArg, WireId, WireScheduling};
use wray_net::{NetError, frame};

pub(crate) fn wire_id(id: ObjectId) -> WireId {
    let (hi, lo) = id.task.halves();
    WireId { hi, lo, index: id.index }
}

pub(crate) fn object_id(w: &WireId) -> ObjectId {
    ObjectId { task: TaskId::from_halves(w.hi, w.lo), index: w.index }
}

/// A chunk of a guest's output as the event that carries it: stdout as
/// [`Event::Output`], stderr as [`Event::ErrorOutput`].
pub(crate) fn output_event((stream, bytes): Chunk) -> Event {
    match stream {
        Stream::Stdout => Event::Output(bytes),
        Stream::Stderr => Event::ErrorOutput(bytes),
    }
}

pub(crate) fn pairs(r: &Resources) -> Vec<(String, f64)> {
    r.iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Resources from the wire; amounts that are not finite and non-negative
/// are refused.
pub(crate) fn wire_scheduling(s: &Scheduling) -> WireScheduling {
    match s {
        Scheduling::Default => WireScheduling::Default,
        Scheduling::Spread => WireScheduling::Spread,
        Scheduling::NodeAffinity { node, soft } => WireScheduling::NodeAffinity { node: node.clone(), soft: *soft },
    }
}

/// A peer's scheduling choice, its node id bounded.
pub(crate) fn scheduling(w: WireScheduling) -> Result<Scheduling, NetError> {
    Ok(match w {
        WireScheduling::Default => Scheduling::Default,
        WireScheduling::Spread => Scheduling::Spread,
        WireScheduling::NodeAffinity { node, .. } if node.len() > limits::MAX_NAME_LEN => {
            return Err(NetError::Malformed("too long a node id in a node affinity".into()));
        }
        WireScheduling::NodeAffinity { node, soft } => Scheduling::NodeAffinity { node, soft },
    })
}

pub(crate) fn resources(pairs: &[(String, f64)]) -> Result<Resources, NetError> {
    let mut r = Resources::new();
    for (k, v) in pairs {
        if !(v.is_finite() && *v >= 0.0) || k.len() > limits::MAX_NAME_LEN {
            return Err(NetError::Malformed(format!("bad resource amount {k}={v}")));
        }
        r.set(k, *v);
    }
    Ok(r)
}

/// The arguments on the wire, the bytes that follow them, and the objects
/// they refer to.
pub(crate) fn wire_args(args: &[ArgSpec]) -> (Vec<WireArg>, Vec<Bytes>, Vec<ObjectId>) {
    let mut wire = Vec::with_capacity(args.len());
    let mut blobs = Vec::new();
    let mut roots = Vec::new();
    for a in args {
        match a {
            ArgSpec::Value(v) => {
                wire.push(WireArg::Value {
                    len: v.data.len() as u64,
                    refs: v.refs.iter().copied().map(wire_id).collect(),
                });
                blobs.push(v.data.clone());
                roots.extend(v.refs.iter().copied());
            }
            ArgSpec::Object(id) => {
                wire.push(WireArg::Object(wire_id(*id)));
                roots.push(*id);
            }
        }
    }
    (wire, blobs, roots)
}

/// Writes an encoded message and the raw bytes that follow it.
pub(crate) async fn write_parts(
    send: &mut quinn::SendStream,
    frame_bytes: &[u8],
    blobs: Vec<Bytes>,
) -> Result<(), NetError> {
    frame::write(send, frame_bytes).await?;
    write_blobs(send, blobs).await
}

/// Writes the raw bytes that follow a message already sent.
pub(crate) async fn write_blobs(send: &mut quinn::SendStream, blobs: Vec<Bytes>) -> Result<(), NetError> {
    for b in blobs {
        frame::write_raw(send, b).await?;
    }
    Ok(())
}

/// Opens a stream on `conn` and sends a request with the bytes that follow.
pub(crate) async fn open_with(
    conn: &quinn::Connection,
    frame_bytes: &[u8],
    blobs: Vec<Bytes>,
) -> Result<(quinn::SendStream, quinn::RecvStream), NetError> {
    let (mut send, recv) = conn.open_bi().await.map_err(|e| NetError::Stream(e.to_string()))?;
    write_parts(&mut send, frame_bytes, blobs).await?;
    Ok((send, recv))
}

/// Opens a stream to node `node` through the head's relay on `head` and
/// sends a request with the bytes that follow: the way to a worker this one
/// cannot reach directly.
pub(crate) async fn open_relayed(
    head: &quinn::Connection,
    node: &str,
    frame_bytes: &[u8],
    blobs: Vec<Bytes>,
) -> Result<(quinn::SendStream, quinn::RecvStream), NetError> {
    let (mut send, recv) = head.open_bi().await.map_err(|e| NetError::Stream(e.to_string()))?;
    frame::write(&mut send, &proto::encode(&Request::Forward { to: node.to_string() })?).await?;
    write_parts(&mut send, frame_bytes, blobs).await?;
    Ok((send, recv))
}

/// Resolves when the other side of `recv` ends or resets it; reads and
/// drops whatever it sends meanwhile (a placement's stream to the head,
/// which sends nothing more).
pub(crate) async fn until_ended(recv: &mut quinn::RecvStream) {
    let mut scratch = [0u8; 64];
    while let Ok(Some(_)) = recv.read(&mut scratch).await {}
}

/// Writes an event with the bytes that follow it.
pub(crate) async fn write_with(send: &mut quinn::SendStream, event: &Event, blobs: Vec<Bytes>) -> Result<(), NetError> {
    write_parts(send, &proto::encode(event)?, blobs).await
}

/// Reads and validates the next event; the stream ending is an error.
pub(crate) async fn read_event(recv: &mut quinn::RecvStream) -> Result<Event, NetError> {
    match frame::read(recv).await? {
        Some(bytes) => proto::decode_event(&bytes),
        None => Err(NetError::Stream("the stream ended without an answer".into())),
    }
}

/// Sends one request on a new stream of `conn` and reads the answer.
pub(crate) async fn ask(conn: &quinn::Connection, request: &Request) -> Result<Event, NetError> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| NetError::Stream(e.to_string()))?;
    frame::write(&mut send, &proto::encode(request)?).await?;
    let _ = send.finish();
    read_event(&mut recv).await
}

/// Why a request to another node got no answer it could use.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AskError {
    /// The path to the node broke (it died, or the connection closed), or
    /// its answer did not validate.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The node refused the request, saying why.
    #[error("{0}")]
    Refused(String),
    /// The node answered with an event this request does not expect.
    #[error("unexpected answer {0}")]
    Unexpected(String),
}

impl AskError {
    /// What to tell a guest or a log: a refusal in the peer's own words, a
    /// broken path naming `peer` (what was asked of it goes in the
    /// caller's context).
    pub(crate) fn message(&self, peer: &str) -> String {
        match self {
            AskError::Net(e) => format!("cannot reach {peer}: {e}"),
            other => other.to_string(),
        }
    }
}

/// An answer an `expect` closure does not take, handed back (boxed: it is
/// the rare path, and events are large).
pub(crate) struct Other(Box<Event>);

impl From<Event> for Other {
    fn from(event: Event) -> Other {
        Other(Box::new(event))
    }
}

/// Sends `request` on a new stream of `conn` and keeps the answer that
/// `expect` takes (it hands any other back): the one place that turns a
/// refusal, an answer of the wrong kind or a broken stream into an
/// [`AskError`].
pub(crate) async fn ask_for<T>(
    conn: &quinn::Connection,
    request: &Request,
    expect: impl FnOnce(Event) -> Result<T, Other>,
) -> Result<T, AskError> {
    answer(ask(conn, request).await?, expect)
}

/// Sorts an answer already read: what `expect` takes, or an [`AskError`].
pub(crate) fn answer<T>(event: Event, expect: impl FnOnce(Event) -> Result<T, Other>) -> Result<T, AskError> {
    match expect(event) {
        Ok(t) => Ok(t),
        Err(Other(other)) => match *other {
            Event::Refused(why) => Err(AskError::Refused(why)),
            other => Err(AskError::Unexpected(format!("{other:?}"))),
        },
    }
}

/// `expect` for requests answered with a bare [`Event::Accepted`].
pub(crate) fn accepted(event: Event) -> Result<(), Other> {
    match event {
        Event::Accepted => Ok(()),
        other => Err(other.into()),
    }
}
