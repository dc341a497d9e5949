//! wray's integration tests: one binary, real components, real processes.
//!
//! Guest programs (`tests/programs/*`, `examples/*`) are built once per run
//! with the real `wray build` into `target/guests`; tests then run them with
//! the real `wray` binary or through the embedding API.

mod bad_input;
mod chaos;
mod cluster;
mod dashboard;
mod data;
mod embed;
mod examples;
mod jobs;
mod kubernetes;
mod learn;
mod macros;
mod nn;
mod python;
mod rl;
mod serve;
mod train;
mod tune;
mod util;
