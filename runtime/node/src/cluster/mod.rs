//! The cluster protocol: how nodes talk over `wray-net` (QUIC with mutual
//! TLS, validated rkyv frames).
//!
//! * `wire`: wray's types on the wire, and asking for one answer
//!   ([`wire::ask_for`], with a typed [`wire::AskError`]).
//! * `link`: how a node reaches the rest of the cluster (head or worker).
//! * `head`: the head role — accepting connections, membership by
//!   heartbeats, placing jobs and tasks, relaying between workers.
//! * `worker`: the worker role — joining, heartbeating, serving the head.
//! * `requests`: the dispatcher every incoming stream goes through.
//! * `remote_task`, `remote_actor`: tasks and actors that run away from
//!   their job's node, and the stand-in jobs that run them there.
//! * `lent_handles`: copies of actors' handle objects lent to other nodes
//!   and given back, so that actors end with their last handle anywhere.
//! * `groups`: placement groups, reserved across nodes.
//! * `http_calls`: requests to a deployed `wasi:http` component that the
//!   head's proxy sends to workers.

pub(crate) mod groups;
pub(crate) mod head;
#[cfg(test)]
mod head_tests;
pub(crate) mod held;
pub(crate) mod http_calls;
pub(crate) mod lent_handles;
pub(crate) mod link;
pub(crate) mod remote_actor;
pub(crate) mod remote_task;
pub(crate) mod requests;
pub(crate) mod wire;
mod worker;
