//! The object store of a node.
//!
//! Objects are immutable byte strings ([`bytes::Bytes`], shared without
//! copying) identified by [`ObjectId`](wray_core::ObjectId). Each has a reference count; the last
//! release frees it. An object may be *pending* (its task has not finished):
//! readers wait for it. Objects may carry the ids of objects nested inside
//! them, which stay alive as long as the outer object does.
//!
//! Memory is bounded by a budget: when the objects in memory exceed it, the
//! least recently used are written to a [`SpillStore`] (sled on disk) and
//! read back transparently on access — nothing is lost to memory pressure.
//! Which objects to spill is decided by the pure [`policy`] module.

#![deny(missing_docs)]

pub mod policy;
mod spill;
mod store;

pub use spill::{LOCK_WAIT, SledSpill, SpillStore, open_waiting, remove_abandoned};
pub use store::{
    Found, Holder, ItemPut, NextItem, Object, ObjectInfo, ObjectState, ObjectStore, StoreStats, TakenItems,
};
