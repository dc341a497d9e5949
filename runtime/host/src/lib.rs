//! The wasmtime embedding of wray.
//!
//! * [`Engine`]: one wasmtime engine per node, configured in one place
//!   (async calls, epoch interruption, pooling allocator) so that compiled
//!   artifacts stay compatible with it.
//! * [`JobComponent`]: a validated, compiled job component and its
//!   pre-linked `InstancePre`. Components are compiled once per content hash
//!   and cached on disk ([`ComponentCache`]), so a second run of the same file
//!   skips compilation.
//! * [`Services`]: what the host functions of the `wray:runtime` interfaces
//!   need from the node (submit, get, put, actors, ...). The node implements
//!   it; this crate never knows how tasks are scheduled or where objects live.
//! * [`Instance`]: one sandboxed instance — a fresh one per task, a
//!   long-lived one per actor — with its memory and time limits and its WASI
//!   grants.
//!
//! Errors come in two layers, as the WIT contract says: a guest-visible
//! [`wray_core::Error`] returned through the `error` variant, and traps for
//! host bugs and hostile guests (a forged resource handle, an oversized
//! argument list).

#![deny(missing_docs)]

mod bindings;
pub mod buffers;
mod checkpoint;
mod component;
mod engine;
mod http_component;
mod instance;
mod services;
mod tensors;

pub use checkpoint::{BLOCK as CHECKPOINT_BLOCK, Checkpoint, Delta, MAX_CHECKPOINT};
pub use component::{
    ComponentCache, JobComponent, LoadError, REUSE_SECTION, custom_section, read_component, with_custom_section,
    with_reuse_section,
};
pub use engine::{EPOCH_TICK, Engine, EngineConfig};
pub use http_component::{HttpComponent, HttpGrants, is_http_proxy};
pub use instance::{CallError, Chunk, Grants, Instance, InstanceLimits, Output, Stream};
pub use services::{
    Application, ArgSpec, BoxFuture, Caller, HeldRefs, HttpAnswer, HttpForward, HttpNodes, MAX_MEETING_MEMBERS,
    MeetingShare, NextItems, NodeInfo, Services, Serving, Value,
};
pub use tensors::HostTensor;
/// An in-memory buffer for [`Output::Capture`].
pub use wasmtime_wasi::p2::pipe::MemoryOutputPipe as OutputPipe;
/// The body of a served `wasi:http` component's response.
pub use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
/// Where tensors live; re-exported for [`Services::device`].
pub use wray_gpu::Device;
