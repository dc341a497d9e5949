//! Distributed training: wray's counterpart of Ray Train.
//!
//! A [`DataParallelTrainer`] runs the user's training loop on a group of
//! worker actors (its [`ScalingConfig`]: how many, with which resources).
//! Inside the loop a worker learns where it runs ([`get_context`]), reads
//! its shard of each dataset it was given ([`get_dataset_shard`]), averages
//! gradients with the other workers ([`prepare_optimizer`], or the
//! collectives [`allreduce`], [`broadcast`], [`barrier`]), and calls
//! [`report`] with its metrics and, when it likes, a [`Checkpoint`]. The
//! call returns once the driver has recorded it, as in Ray. `fit()` returns
//! the last metrics, the history, the checkpoints kept and any error; a
//! worker that fails restarts the group from the latest checkpoint, up to
//! [`FailureConfig::max_failures`] times.
//!
//! ```no_run
//! use wray::Error;
//! use wray::train::{self, DataParallelTrainer, ScalingConfig};
//!
//! fn train_loop(epochs: u32) -> Result<(), Error> {
//!     let ctx = train::get_context()?;
//!     for epoch in 0..epochs {
//!         // ... a step on this worker's data ...
//!         let mut loss = [1.0 / (epoch as f32 + 1.0) + ctx.world_rank as f32];
//!         train::allreduce(&mut loss, train::ReduceOp::Mean)?;
//!         train::report(train::metrics(&[("loss", loss[0] as f64)]), None)?;
//!     }
//!     Ok(())
//! }
//!
//! #[wray::main]
//! fn main() -> Result<(), Error> {
//!     let result = DataParallelTrainer::new(train_loop)
//!         .train_loop_config(5)
//!         .scaling_config(ScalingConfig::new(2))
//!         .fit()?;
//!     println!("final metrics: {:?}", result.metrics);
//!     Ok(())
//! }
//! ```
//!
//! Collectives are also usable on their own, between any tasks or actors:
//! [`collective::create_group`] returns one [`Group`] per rank to hand out.

#![deny(missing_docs)]

// The actor macro names the SDK as `wray`.
extern crate wray_guest_core as wray;

mod checkpoint;
pub mod collective;
mod controller;
mod ddp;
mod gbdt;
pub mod preprocessors;
mod session;
mod trainer;
mod tuning;

use wray_guest_core::Error;

pub use checkpoint::{Checkpoint, MAX_FILES, METADATA_FILE};
pub use collective::{Group, ReduceOp};
pub use controller::MAX_REPORTS_AHEAD;
pub use ddp::{DistributedOptimizer, prepare_model, prepare_optimizer};
pub use gbdt::{GbdtTrainer, MAX_GBDT_WORKERS, matrix_of};
pub use preprocessors::Preprocessor;
pub use session::{
    TrainContext, allreduce, barrier, broadcast, get_checkpoint, get_context, get_dataset_shard, report, with_group,
};
pub use trainer::{
    CheckpointConfig, DataParallelTrainer, FEASIBLE_GRACE, FailureConfig, MAX_WORKERS, Order, RunConfig, ScalingConfig,
    TrainLoop, TrainResult,
};
pub use tuning::TRAIN_LOOP_CONFIG;
/// Loggers and callbacks: Tune's, which see a training run as one trial.
pub use wray_tune::{Callback, FileLogger, MlflowLogger, TensorBoardLogger};

/// A result: metric names and values (the same type as `wray::tune::Metrics`).
pub type Metrics = std::collections::BTreeMap<String, f64>;

/// Builds [`Metrics`] from pairs.
pub fn metrics(pairs: &[(&str, f64)]) -> Metrics {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

pub(crate) fn invalid(what: String) -> Error {
    Error::InvalidArgument(what)
}
