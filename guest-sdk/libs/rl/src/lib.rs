//! Reinforcement learning on actors: wray's counterpart of RLlib.
//!
//! * Environments: the [`Env`] trait (Gymnasium's `reset`/`step`, with
//!   [`Space::Discrete`] and [`Space::Box`] spaces) and Gymnasium's
//!   classic-control environments built in, transition for transition —
//!   `CartPole-v1`, `Acrobot-v1`, `MountainCar-v0`, `Pendulum-v1` ([`make`]).
//!   Your own environment is a type implementing [`Env`], handed to the
//!   algorithm as a plain `fn` that builds one.
//! * [`PPO`]: runners ([`EnvRunner`] actors, `num_env_runners` of them,
//!   each stepping `num_envs_per_env_runner` copies) sample with the
//!   policy's weights, broadcast through the object store every iteration;
//!   the learner in the driver trains policy and value networks of
//!   `wray::nn` on the batch. `train()` returns one iteration's
//!   [`TrainResult`]; `evaluate()`, `compute_single_action()`,
//!   `save()`/`restore()`/`from_checkpoint()`.
//! * [`DQN`]: a replay buffer in the driver ([`replay`]: prioritized,
//!   n-step), double Q, a dueling head, a target network, ε-greedy runners.
//! * [`BC`] and [`offline`]: steps written as JSON lines while sampling
//!   (`output`), cloned by behaviour cloning or trained on by DQN (`input`).
//! * [`MultiAgentPPO`]: a [`MultiAgentEnv`] (several agents acting at
//!   once, e.g. [`MultiAgentCartPole`]), a PPO learner per policy, agents
//!   mapped to policies by a plain `fn`.
//! * [`Algorithm`]: what the three share (build, train, evaluate, save,
//!   restore), for code generic over them; [`PPOTrial`] and [`DQNTrial`]
//!   make them Tune trials.
//!
//! ```no_run
//! use wray::rl::PPOConfig;
//!
//! # fn main() -> Result<(), wray::Error> {
//! let mut algo = PPOConfig::new().environment("CartPole-v1").env_runners(2).seed(1).build()?;
//! for _ in 0..100 {
//!     let result = algo.train()?;
//!     println!("iteration {}: return {:.1}", result.training_iteration, result.episode_return_mean);
//!     if result.episode_return_mean >= 450.0 {
//!         break;
//!     }
//! }
//! let dir = algo.save("/data/ppo-cartpole")?;
//! let (mean, _) = algo.evaluate()?;
//! println!("saved to {}; evaluation return {mean}", dir.display());
//! # Ok(()) }
//! ```
//!
//! A seeded run gives the same returns every time, with one runner or
//! several: the runners' environments, the sampling and the minibatch order
//! all draw from the seed, and fragments are gathered in runner order.
//!
//! The guide is `docs/RL.md`; `wray rl train` runs these algorithms with no
//! crate of the user's.

#![deny(missing_docs)]

// The actor macro names the SDK as `wray`.
extern crate wray_guest_core as wray;

mod algorithm;
mod bc;
mod checkpoint;
mod config;
mod dqn;
mod env;
pub mod envs;
mod filter;
mod group;
pub mod multi_agent;
pub mod offline;
mod policy;
mod ppo;
pub mod replay;
mod runner;
mod spaces;
mod tuning;

pub use algorithm::Algorithm;
pub use bc::{BC, BCConfig};
pub use checkpoint::{CHECKPOINT_FILE, MAX_CHECKPOINT_BYTES, describe as describe_checkpoint};
pub use config::{CommonConfig, MAX_ENV_RUNNERS, MAX_ITERATION_RETURNS, SMOOTHING_EPISODES, TrainResult};
pub use dqn::{DQN, DQNConfig};
pub use env::{ENVIRONMENTS, Env, EnvRng, EnvSpec, MakeEnv, Step, TimeLimit, make};
pub use filter::ObsFilter;
pub use multi_agent::{MultiAgentCartPole, MultiAgentEnv, MultiAgentPPO, MultiAgentPPOConfig, MultiStep};
pub use policy::{Actor, Head, MAX_HIDDEN, MAX_LAYERS, Mlp, Weights};
pub use ppo::{MAX_TRAIN_BATCH, PPO, PPOConfig};
pub use runner::{EnvRunner, Episode, Fragment, MAX_ENVS_PER_RUNNER, MAX_FRAGMENT_STEPS, Sampler};
pub use spaces::{Action, Space};
pub use tuning::{DQNTrial, PPOTrial, RlTrainable};
