//! Behaviour cloning (RLlib's `BC`): a policy trained by supervised
//! learning to choose the actions recorded in offline data
//! (`wray::rl::offline`), then run on the environment like any other.
//! Clones discrete actions (a categorical policy, cross-entropy loss).

use crate::algorithm::{Core, algorithm_methods};
use crate::checkpoint;
use crate::config::{CommonConfig, EpisodeWindow, TrainResult, common_builders};
use crate::filter::ObsFilter;
use crate::policy::{Head, Mlp, Weights};
use crate::spaces::Space;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;
use wray_guest_core::{Error, Tensor};
use wray_nn::{Adam, Optimizer, Var};

/// BC's settings.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BCConfig {
    /// Environment (for evaluation and the spaces), model, evaluation,
    /// seed. No runner samples: `num_env_runners` defaults to 0.
    pub common: CommonConfig,
    /// The offline data: a `.jsonl` file or a directory of them.
    pub input: String,
    /// Adam's learning rate.
    pub lr: f32,
    /// Steps per minibatch.
    pub train_batch_size: u32,
    /// Minibatch steps per iteration.
    pub updates_per_iteration: u32,
}

impl Default for BCConfig {
    fn default() -> Self {
        BCConfig {
            common: CommonConfig { num_env_runners: 0, ..CommonConfig::default() },
            input: String::new(),
            lr: 1e-3,
            train_batch_size: 256,
            updates_per_iteration: 100,
        }
    }
}

common_builders!(BCConfig);

impl BCConfig {
    /// The defaults (CartPole-v1); set `input`.
    pub fn new() -> BCConfig {
        BCConfig::default()
    }
    /// The offline data to clone.
    pub fn input(mut self, path: &str) -> Self {
        self.input = path.to_string();
        self
    }
    /// Learning rate.
    pub fn lr(mut self, lr: f32) -> Self {
        self.lr = lr;
        self
    }
    /// Minibatch steps per iteration.
    pub fn updates_per_iteration(mut self, n: u32) -> Self {
        self.updates_per_iteration = n;
        self
    }
    /// Starts the algorithm.
    pub fn build(self) -> Result<BC, Error> {
        BC::new(self)
    }
}

#[derive(Serialize, Deserialize)]
struct State {
    config: BCConfig,
    iteration: u64,
    time_total_s: f64,
    policy: Vec<Vec<f32>>,
    episodes: EpisodeWindow,
}

/// A behaviour-cloning run.
pub struct BC {
    config: BCConfig,
    core: Core,
    actions: u32,
    sizes: Vec<usize>,
    policy: Mlp,
    optimizer: Adam,
    obs: Tensor,
    labels: Vec<u32>,
}

algorithm_methods!(BC, BCConfig);

impl BC {
    /// Its name in checkpoints.
    pub const NAME: &'static str = "BC";

    /// Reads the offline data and starts BC.
    pub fn new(config: BCConfig) -> Result<BC, Error> {
        if config.input.is_empty() {
            return Err(Error::InvalidArgument("BCConfig: input (the offline data to clone) is not set".into()));
        }
        if !(config.lr.is_finite() && config.lr > 0.0) || config.train_batch_size == 0 {
            return Err(Error::InvalidArgument("BCConfig: lr and train_batch_size must be positive".into()));
        }
        let mut core = Core::start(&config.common, Self::NAME)?;
        let Space::Discrete(actions) = core.runners.spaces().1 else {
            return Err(Error::InvalidArgument(format!(
                "BC clones discrete actions; {} has {:?}",
                config.common.env_name(),
                core.runners.spaces().1
            )));
        };
        let steps = crate::offline::read_steps(Path::new(&config.input), core.obs_dim, 1)?;
        if steps.is_empty() {
            return Err(Error::InvalidArgument(format!("offline input {}: no steps", config.input)));
        }
        let mut labels = Vec::with_capacity(steps.len());
        for s in &steps {
            let a = s.action[0];
            if !(a >= 0.0 && (a as u32) < actions) {
                return Err(Error::InvalidArgument(format!(
                    "offline input {}: the action {a} is outside Discrete({actions})",
                    config.input
                )));
            }
            labels.push(a as u32);
        }
        let flat: Vec<f32> = steps.iter().flat_map(|s| s.obs.iter().copied()).collect();
        let obs = Tensor::from_vec(&[steps.len(), core.obs_dim], &flat)?;
        let mut sizes = vec![core.obs_dim];
        sizes.extend(&config.common.fcnet_hiddens);
        sizes.push(actions as usize);
        let policy = Mlp::new(&sizes, 0.01, &mut core.rng)?;
        let optimizer = Adam::new(policy.parameters(), config.lr)?;
        Ok(BC { config, core, actions, sizes, policy, optimizer, obs, labels })
    }

    /// The config it runs with.
    pub fn config(&self) -> &BCConfig {
        &self.config
    }

    /// The cloned policy's weights (acting greedily in evaluation).
    pub fn weights(&self) -> Result<Weights, Error> {
        Ok(Weights {
            sizes: self.sizes.clone(),
            policy: self.policy.weights()?,
            log_std: Vec::new(),
            head: Head::Categorical(self.actions),
            filter: ObsFilter::new(false, self.core.obs_dim),
        })
    }

    /// One iteration: `updates_per_iteration` minibatch steps on the
    /// cross-entropy of the recorded actions. Reports the loss and the
    /// share of the last minibatch's actions the policy picks itself.
    pub fn train(&mut self) -> Result<TrainResult, Error> {
        let start = Instant::now();
        let n = self.labels.len();
        let (mut loss_sum, mut accuracy) = (0.0f64, 0.0f64);
        for update in 0..self.config.updates_per_iteration {
            let idx: Vec<u32> = (0..self.config.train_batch_size).map(|_| self.core.rng.below(n) as u32).collect();
            let labels: Vec<u32> = idx.iter().map(|i| self.labels[*i as usize]).collect();
            let logits = self.policy.forward(&Var::constant(self.obs.gather_rows(&idx)?))?;
            let loss = logits.cross_entropy_rows(&labels)?.mean_all()?;
            let value = loss.value().item()?;
            if !value.is_finite() {
                return Err(Error::InvalidArgument(format!(
                    "BC iteration {}: the loss is {value}",
                    self.core.counts.iteration + 1
                )));
            }
            self.optimizer.zero_grad();
            loss.backward()?;
            self.optimizer.step()?;
            loss_sum += f64::from(value);
            if update + 1 == self.config.updates_per_iteration {
                // Only the last minibatch's is reported: read it back once.
                let out = logits.value().to_vec()?;
                let right = out
                    .chunks(self.actions as usize)
                    .zip(&labels)
                    .filter(|(row, l)| crate::policy::argmax(row) == **l as usize)
                    .count();
                accuracy = right as f64 / labels.len() as f64;
            }
        }
        let mut result = TrainResult {
            num_env_steps_trained: u64::from(self.config.updates_per_iteration * self.config.train_batch_size),
            learner: vec![
                ("loss".into(), loss_sum / f64::from(self.config.updates_per_iteration.max(1))),
                ("action_accuracy".into(), accuracy),
            ],
            ..TrainResult::default()
        };
        self.core.finish(&mut result, start);
        Ok(result)
    }

    /// The checkpoint's bytes (the policy; the offline data is read
    /// again from `input` when a checkpoint is loaded).
    pub fn checkpoint_bytes(&self) -> Result<Vec<u8>, Error> {
        let state = State {
            config: self.config.clone(),
            iteration: self.core.counts.iteration,
            time_total_s: self.core.counts.time_total_s,
            policy: self.policy.weights()?,
            episodes: self.core.episodes.clone(),
        };
        checkpoint::encode(Self::NAME, self.config.common.env_name(), &state)
    }

    /// Loads checkpoint bytes of BC on the same environment.
    pub fn restore_bytes(&mut self, bytes: &[u8], origin: &str) -> Result<(), Error> {
        let state: State = checkpoint::decode(bytes, origin, Self::NAME, Some(self.config.common.env_name()))?;
        self.policy = Mlp::from_weights(&self.sizes, &state.policy)?;
        self.optimizer = Adam::new(self.policy.parameters(), self.config.lr)?;
        self.core.episodes = state.episodes;
        (self.core.counts.iteration, self.core.counts.time_total_s) = (state.iteration, state.time_total_s);
        Ok(())
    }
}
