//! Running work on this node: a job's driver, its tasks (each in a fresh
//! instance, once its arguments are ready and the scheduler grants its
//! resources), its actors (a long-lived instance fed by a mailbox), and the
//! node's answers to the `wray:runtime` host functions. What leaves the
//! node goes through `crate::cluster`.

pub(crate) mod actor;
mod actor_handles;
pub(crate) mod actor_loop;
pub(crate) mod detached_actors;
mod detached_jobs;
pub(crate) mod job;
pub(crate) mod meeting;
mod services;
pub(crate) mod task;
