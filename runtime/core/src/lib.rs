//! The vocabulary every wray host crate shares: identifiers ([`JobId`],
//! [`TaskId`], [`ObjectId`], [`ActorId`]), resource sets ([`Resources`]),
//! task and actor options ([`Options`]), guest-visible errors ([`Error`]) and
//! the limits a guest may not exceed.
//!
//! Nothing here does I/O or knows about wasmtime, QUIC or GPUs; it is the
//! language the scheduler, the object store and the host speak to each other.

#![deny(missing_docs)]

mod error;
mod ids;
pub mod limits;
mod options;
mod resources;
pub mod serve;

pub use error::Error;
pub use ids::{ActorId, JobId, ObjectId, TaskId};
pub use options::{DEFAULT_MAX_RETRIES, Options, Scheduling, Strategy};
pub use resources::{BUNDLE_MARKER_CAPACITY, BUNDLE_MARKER_DEMAND, CPU, GPU, MEMORY, Resources, is_cpu, is_gpu};
