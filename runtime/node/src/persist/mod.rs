//! What the head keeps on disk, so that a restart on the same data
//! directory loses no job record, component, detached actor or memory of
//! its workers: one sled database with a tree per kind of record, and a log
//! file per detached job.

mod actor_snapshots;
pub(crate) mod job_table;
mod known_nodes;

pub(crate) use actor_snapshots::{load_snapshot, persist_snapshot, remove_snapshot};
pub use job_table::JobTable;
pub(crate) use job_table::{MAX_JOB_LOG, RUNNING, now_ms};
pub(crate) use known_nodes::{forget_node, known_nodes, remember_node};
