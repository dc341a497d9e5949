//! Deep Q-Networks (Mnih et al. 2015) with RLlib's DQN extensions: a
//! replay buffer (prioritized, Schaul et al. 2016), a target network,
//! double Q-learning (van Hasselt et al. 2016), a dueling head (Wang et al.
//! 2016), n-step returns and a linear ε schedule. Runners act ε-greedily
//! with the Q-network's weights; the learner in the driver keeps the
//! buffer and takes `training_intensity`-scaled minibatch steps on the
//! Huber loss of the TD error.

use crate::algorithm::{Core, algorithm_methods};
use crate::checkpoint;
use crate::config::{CommonConfig, EpisodeWindow, TrainResult, common_builders};
use crate::filter::ObsFilter;
use crate::policy::{Head, Mlp, Weights};
use crate::ppo::clip_grad_norm;
use crate::replay::{MAX_REPLAY_CAPACITY, ReplayBuffer, Sampled};
use crate::spaces::Space;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;
use wray_guest_core::{Error, Tensor};
use wray_nn::{Adam, Optimizer, Var};

/// DQN's settings (RLlib's `DQNConfig`, with its field names).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DQNConfig {
    /// Environment, runners, model, evaluation, seed.
    pub common: CommonConfig,
    /// Environment steps sampled per iteration (over all runners).
    pub steps_per_iteration: u32,
    /// Transitions per minibatch.
    pub train_batch_size: u32,
    /// Transitions trained on per transition sampled: an iteration takes
    /// `steps_per_iteration × training_intensity / train_batch_size`
    /// minibatch steps.
    pub training_intensity: f32,
    /// Adam's learning rate.
    pub lr: f32,
    /// Discount.
    pub gamma: f32,
    /// Transitions the replay buffer keeps.
    pub replay_buffer_capacity: u32,
    /// Sample transitions by priority (|TD error|) instead of uniformly.
    pub prioritized_replay: bool,
    /// Priority exponent α.
    pub prioritized_replay_alpha: f32,
    /// Importance-weight exponent β.
    pub prioritized_replay_beta: f32,
    /// Added to every priority.
    pub prioritized_replay_eps: f32,
    /// Choose the next action with the online network, value it with the
    /// target network.
    pub double_q: bool,
    /// Separate advantage and value streams.
    pub dueling: bool,
    /// Steps summed into each return.
    pub n_step: u32,
    /// Environment steps between copies of the online network into the
    /// target network.
    pub target_network_update_freq: u32,
    /// Environment steps sampled before the first minibatch step.
    pub num_steps_sampled_before_learning_starts: u32,
    /// ε at the start.
    pub epsilon_initial: f32,
    /// ε after `epsilon_timesteps` (and from then on).
    pub epsilon_final: f32,
    /// Environment steps over which ε falls linearly.
    pub epsilon_timesteps: u32,
    /// Gradients are scaled down to this global norm (`None`: never).
    pub grad_clip: Option<f32>,
    /// Train from offline data instead of sampling: a `.jsonl` file or a
    /// directory of them (RLlib's `input`; see `wray::rl::offline`).
    pub input: Option<String>,
}

impl Default for DQNConfig {
    fn default() -> Self {
        DQNConfig {
            common: CommonConfig { fcnet_hiddens: vec![256], num_env_runners: 1, ..CommonConfig::default() },
            steps_per_iteration: 1000,
            train_batch_size: 32,
            training_intensity: 8.0,
            lr: 5e-4,
            gamma: 0.99,
            replay_buffer_capacity: 50_000,
            prioritized_replay: true,
            prioritized_replay_alpha: 0.6,
            prioritized_replay_beta: 0.4,
            prioritized_replay_eps: 1e-6,
            double_q: true,
            dueling: true,
            n_step: 3,
            target_network_update_freq: 500,
            num_steps_sampled_before_learning_starts: 1000,
            epsilon_initial: 1.0,
            epsilon_final: 0.02,
            epsilon_timesteps: 10_000,
            grad_clip: Some(40.0),
            input: None,
        }
    }
}

common_builders!(DQNConfig);

macro_rules! setters {
    ($($name:ident: $ty:ty, $doc:literal;)*) => {
        impl DQNConfig {
            $(
                #[doc = $doc]
                pub fn $name(mut self, value: $ty) -> Self {
                    self.$name = value;
                    self
                }
            )*
        }
    };
}

setters! {
    steps_per_iteration: u32, "Environment steps sampled per iteration.";
    train_batch_size: u32, "Transitions per minibatch.";
    training_intensity: f32, "Transitions trained on per transition sampled.";
    lr: f32, "Learning rate.";
    gamma: f32, "Discount.";
    replay_buffer_capacity: u32, "Transitions the replay buffer keeps.";
    prioritized_replay: bool, "Sample by priority.";
    double_q: bool, "Double Q-learning.";
    dueling: bool, "A dueling head.";
    n_step: u32, "Steps summed into each return.";
    target_network_update_freq: u32, "Environment steps between target network updates.";
    num_steps_sampled_before_learning_starts: u32, "Environment steps before learning starts.";
    epsilon_timesteps: u32, "Environment steps over which ε falls.";
    epsilon_final: f32, "The final ε.";
    grad_clip: Option<f32>, "Global gradient norm clip (`None`: off).";
}

impl DQNConfig {
    /// The defaults (CartPole-v1, one runner).
    pub fn new() -> DQNConfig {
        DQNConfig::default()
    }

    /// Trains from offline data (a `.jsonl` file or a directory of them)
    /// instead of sampling.
    pub fn input(mut self, path: &str) -> Self {
        self.input = Some(path.to_string());
        self
    }

    fn check(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::InvalidArgument(format!("DQNConfig: {m}")));
        if self.steps_per_iteration == 0 || self.train_batch_size == 0 {
            return bad("steps_per_iteration and train_batch_size must be positive".into());
        }
        if self.replay_buffer_capacity == 0 || self.replay_buffer_capacity as usize > MAX_REPLAY_CAPACITY {
            return bad(format!("replay_buffer_capacity must be in 1..={MAX_REPLAY_CAPACITY}"));
        }
        if self.n_step == 0 || self.n_step > 100 {
            return bad(format!("n_step must be in 1..=100, got {}", self.n_step));
        }
        let rates_ok = self.lr.is_finite() && self.lr > 0.0 && self.training_intensity.is_finite();
        if !(rates_ok && self.training_intensity >= 0.0) {
            return bad("lr must be positive and training_intensity non-negative".into());
        }
        for (name, v) in [
            ("gamma", self.gamma),
            ("epsilon_initial", self.epsilon_initial),
            ("epsilon_final", self.epsilon_final),
            ("prioritized_replay_alpha", self.prioritized_replay_alpha),
            ("prioritized_replay_beta", self.prioritized_replay_beta),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(format!("{name} must be in [0, 1], got {v}"));
            }
        }
        if self.grad_clip.is_some_and(|c| !(c.is_finite() && c > 0.0)) {
            return bad("grad_clip must be positive".into());
        }
        Ok(())
    }

    /// Starts the algorithm.
    pub fn build(self) -> Result<DQN, Error> {
        DQN::new(self)
    }

    /// ε after `steps` environment steps.
    pub fn epsilon(&self, steps: u64) -> f32 {
        let t = (steps as f64 / f64::from(self.epsilon_timesteps.max(1))).min(1.0) as f32;
        self.epsilon_initial + (self.epsilon_final - self.epsilon_initial) * t
    }
}

/// What a checkpoint holds (not the replay buffer: a restored run refills
/// it).
#[derive(Serialize, Deserialize)]
struct State {
    config: DQNConfig,
    iteration: u64,
    timesteps: u64,
    time_total_s: f64,
    q: Vec<Vec<f32>>,
    target: Vec<Vec<f32>>,
    filter: ObsFilter,
    episodes: EpisodeWindow,
    last_target_update: u64,
}

/// A DQN run: `train()` one iteration at a time.
pub struct DQN {
    config: DQNConfig,
    core: Core,
    actions: u32,
    sizes: Vec<usize>,
    q: Mlp,
    target: Mlp,
    optimizer: Adam,
    buffer: ReplayBuffer,
    filter: ObsFilter,
    last_target_update: u64,
    /// A dueling network's column selectors, made once: `[n+1, n]` picks
    /// the advantages, `[n+1, 1]` the value.
    dueling_pick: Option<(Tensor, Tensor)>,
}

algorithm_methods!(DQN, DQNConfig);

/// The selectors of [`DQN::dueling_pick`] for `n` actions.
fn dueling_selectors(n: usize) -> Result<(Tensor, Tensor), Error> {
    let mut pick_a = vec![0.0f32; (n + 1) * n];
    for i in 0..n {
        pick_a[i * n + i] = 1.0;
    }
    let mut pick_v = vec![0.0f32; n + 1];
    pick_v[n] = 1.0;
    Ok((Tensor::from_vec(&[n + 1, n], &pick_a)?, Tensor::from_vec(&[n + 1, 1], &pick_v)?))
}

impl DQN {
    /// Its name in checkpoints.
    pub const NAME: &'static str = "DQN";

    /// Starts DQN with `config`. Its action space must be discrete.
    pub fn new(config: DQNConfig) -> Result<DQN, Error> {
        config.check()?;
        let mut core = Core::start(&config.common, Self::NAME)?;
        let Space::Discrete(actions) = core.runners.spaces().1 else {
            return Err(Error::InvalidArgument(format!(
                "DQN needs a discrete action space; {} has {:?} (use PPO)",
                config.common.env_name(),
                core.runners.spaces().1
            )));
        };
        let mut sizes = vec![core.obs_dim];
        sizes.extend(&config.common.fcnet_hiddens);
        sizes.push(actions as usize + usize::from(config.dueling));
        let q = Mlp::new(&sizes, 1.0, &mut core.rng)?;
        let target = Mlp::from_weights(&sizes, &q.weights()?)?;
        let optimizer = Adam::new(q.parameters(), config.lr)?;
        let mut buffer = ReplayBuffer::new(
            config.replay_buffer_capacity as usize,
            config.prioritized_replay,
            f64::from(config.prioritized_replay_alpha),
        );
        if let Some(input) = &config.input {
            let steps = crate::offline::read_steps(Path::new(input), core.obs_dim, 1)?;
            if let Some(bad) = steps.iter().find(|s| !(s.action[0] >= 0.0 && (s.action[0] as u32) < actions)) {
                return Err(Error::InvalidArgument(format!(
                    "offline input {input}: the action {:?} is outside Discrete({actions})",
                    bad.action
                )));
            }
            for t in crate::offline::transitions(&steps, config.gamma) {
                buffer.push(t);
            }
        }
        let filter = ObsFilter::new(config.common.observation_filter, core.obs_dim);
        let dueling_pick = if config.dueling { Some(dueling_selectors(actions as usize)?) } else { None };
        Ok(DQN {
            config,
            core,
            actions,
            sizes,
            q,
            target,
            optimizer,
            buffer,
            filter,
            last_target_update: 0,
            dueling_pick,
        })
    }

    /// The config it runs with.
    pub fn config(&self) -> &DQNConfig {
        &self.config
    }

    /// The acting weights: the Q-network, ε-greedy at the current ε (the
    /// greedy action when not exploring).
    pub fn weights(&self) -> Result<Weights, Error> {
        Ok(Weights {
            sizes: self.sizes.clone(),
            policy: self.q.weights()?,
            log_std: Vec::new(),
            head: Head::QValues {
                n: self.actions,
                dueling: self.config.dueling,
                epsilon: self.config.epsilon(self.core.counts.timesteps),
            },
            filter: self.filter.clone(),
        })
    }

    /// Q-values `[rows, actions]` of `net` on `x` (combining a dueling
    /// network's streams: `V + A − mean(A)`).
    fn q_values(&self, net: &Mlp, x: &Var) -> Result<Var, Error> {
        let out = net.forward(x)?;
        let Some((pick_a, pick_v)) = &self.dueling_pick else { return Ok(out) };
        let a = out.matmul(&Var::constant(pick_a.clone()))?;
        let v = out.matmul(&Var::constant(pick_v.clone()))?;
        a.sub(&a.mean(1)?)?.add(&v)
    }

    /// One iteration: sample `steps_per_iteration` steps ε-greedily into
    /// the buffer, then the minibatch steps the training intensity asks
    /// for (once enough steps were sampled).
    pub fn train(&mut self) -> Result<TrainResult, Error> {
        let start = Instant::now();
        let weights = self.weights()?;
        let per_env = self.config.steps_per_iteration.div_ceil(self.core.runners.total_envs()).max(1);
        // Offline, the buffer holds the data: nothing is sampled, and an
        // iteration trains as much as one that sampled would.
        let fragments =
            if self.config.input.is_some() { Vec::new() } else { self.core.runners.sample(&weights, per_env, true)? };
        self.core.record(&fragments)?;
        let mut result = TrainResult { sample_time_s: start.elapsed().as_secs_f64(), ..TrainResult::default() };
        for f in &fragments {
            self.filter.merge(&f.filter_delta);
            self.core.episodes.add(&f.episodes, &mut result);
            self.buffer.add_fragment(f, self.config.n_step, self.config.gamma);
            result.num_env_steps_sampled += f.rows() as u64;
        }
        let sampled = self.core.counts.timesteps + result.num_env_steps_sampled;
        let iteration = self.core.counts.iteration + 1;
        let mut stats = [0.0f64; 3];
        let mut updates = 0u64;
        let offline = self.config.input.is_some();
        let steps_worth =
            if offline { f64::from(self.config.steps_per_iteration) } else { result.num_env_steps_sampled as f64 };
        if !self.buffer.is_empty()
            && (offline || sampled >= u64::from(self.config.num_steps_sampled_before_learning_starts))
        {
            let wanted = (steps_worth * f64::from(self.config.training_intensity)
                / f64::from(self.config.train_batch_size))
            .round() as u64;
            for _ in 0..wanted {
                let batch = self.buffer.sample(
                    self.config.train_batch_size as usize,
                    f64::from(self.config.prioritized_replay_beta),
                    &mut self.core.rng,
                );
                let (loss, mean_q, td) = self.update(&batch).map_err(|e| {
                    Error::InvalidArgument(format!("DQN iteration {iteration}: {}", crate::algorithm::message(&e)))
                })?;
                self.buffer.update_priorities(&batch.indices, &td, f64::from(self.config.prioritized_replay_eps));
                stats[0] += f64::from(loss);
                stats[1] += f64::from(mean_q);
                stats[2] += td.iter().map(|t| f64::from(t.abs())).sum::<f64>() / td.len().max(1) as f64;
                updates += 1;
            }
            result.num_env_steps_trained = updates * u64::from(self.config.train_batch_size);
        }
        // Offline, the target follows the steps trained on instead.
        let clock = if offline { iteration * u64::from(self.config.steps_per_iteration) } else { sampled };
        if clock - self.last_target_update >= u64::from(self.config.target_network_update_freq) {
            self.target = Mlp::from_weights(&self.sizes, &self.q.weights()?)?;
            self.last_target_update = clock;
        }
        let n = updates.max(1) as f64;
        result.learner = vec![
            ("td_loss".into(), stats[0] / n),
            ("mean_q".into(), stats[1] / n),
            ("mean_abs_td_error".into(), stats[2] / n),
            ("epsilon".into(), f64::from(self.config.epsilon(sampled))),
            ("replay_buffer_size".into(), self.buffer.len() as f64),
            ("num_updates".into(), updates as f64),
        ];
        self.core.finish(&mut result, start);
        Ok(result)
    }

    /// One minibatch step; the loss, the mean Q of the taken actions and
    /// the TD errors (new priorities).
    fn update(&mut self, batch: &Sampled) -> Result<(f32, f32, Vec<f32>), Error> {
        let m = batch.transitions.len();
        let d = self.core.obs_dim;
        let n = self.actions as usize;
        let flat = |f: &dyn Fn(&crate::replay::Transition) -> &[f32]| -> Vec<f32> {
            batch.transitions.iter().flat_map(|t| f(t).iter().copied()).collect()
        };
        let obs = Var::constant(Tensor::from_vec(&[m, d], &flat(&|t| &t.obs))?);
        let next = Var::constant(Tensor::from_vec(&[m, d], &flat(&|t| &t.next_obs))?);
        // The next states' values: the target network's Q of the action the
        // online network (double Q) or the target network picks.
        let target_q = self.q_values(&self.target, &next)?.value().to_vec()?;
        let choose_q =
            if self.config.double_q { self.q_values(&self.q, &next)?.value().to_vec()? } else { target_q.clone() };
        let mut y = Vec::with_capacity(m);
        for (i, t) in batch.transitions.iter().enumerate() {
            let row = &choose_q[i * n..(i + 1) * n];
            let best = crate::policy::argmax(row);
            y.push(t.reward + t.discount * target_q[i * n + best]);
        }
        let mut one_hot = vec![0.0f32; m * n];
        for (i, t) in batch.transitions.iter().enumerate() {
            one_hot[i * n + t.action as usize] = 1.0;
        }
        let q = self.q_values(&self.q, &obs)?;
        let q_taken = q.mul(&Var::constant(Tensor::from_vec(&[m, n], &one_hot)?))?.sum(1)?;
        let td = q_taken.sub(&Var::constant(Tensor::from_vec(&[m, 1], &y)?))?;
        // Huber: q·(δ − q/2) with q = clamp(δ, −1, 1) — δ²/2 inside, |δ| − ½
        // outside, and the right gradient everywhere.
        let clipped = td.clamp(-1.0, 1.0)?;
        let huber = clipped.mul(&td.sub(&clipped.affine(0.5, 0.0)?)?)?;
        let loss = huber.mul(&Var::constant(Tensor::from_vec(&[m, 1], &batch.weights)?))?.mean_all()?;
        let value = loss.value().item()?;
        if !value.is_finite() {
            return Err(Error::InvalidArgument(format!("the loss is {value} (try a lower lr or a grad_clip)")));
        }
        self.optimizer.zero_grad();
        loss.backward()?;
        if let Some(max_norm) = self.config.grad_clip {
            clip_grad_norm(&self.q.parameters(), max_norm)?;
        }
        self.optimizer.step()?;
        let td_errors = td.value().to_vec()?;
        let mean_q = q_taken.value().mean_all()?.item()?;
        Ok((value, mean_q, td_errors))
    }

    /// The checkpoint's bytes (what [`DQN::save`] writes). Neither the
    /// replay buffer nor the optimizer's moments are kept: a restored run
    /// refills the one and starts the other afresh.
    pub fn checkpoint_bytes(&self) -> Result<Vec<u8>, Error> {
        let state = State {
            config: self.config.clone(),
            iteration: self.core.counts.iteration,
            timesteps: self.core.counts.timesteps,
            time_total_s: self.core.counts.time_total_s,
            q: self.q.weights()?,
            target: self.target.weights()?,
            filter: self.filter.clone(),
            episodes: self.core.episodes.clone(),
            last_target_update: self.last_target_update,
        };
        checkpoint::encode(Self::NAME, self.config.common.env_name(), &state)
    }

    /// Loads checkpoint bytes of DQN on the same environment.
    pub fn restore_bytes(&mut self, bytes: &[u8], origin: &str) -> Result<(), Error> {
        let state: State = checkpoint::decode(bytes, origin, Self::NAME, Some(self.config.common.env_name()))?;
        if state.config.dueling != self.config.dueling
            || state.config.common.fcnet_hiddens != self.config.common.fcnet_hiddens
        {
            return Err(Error::InvalidArgument(
                "the checkpoint's Q-network has another shape than the config's".into(),
            ));
        }
        if state.filter.mean.len() != self.core.obs_dim {
            return Err(Error::InvalidArgument("the checkpoint's observation filter has another shape".into()));
        }
        self.q = Mlp::from_weights(&self.sizes, &state.q)?;
        self.target = Mlp::from_weights(&self.sizes, &state.target)?;
        self.optimizer = Adam::new(self.q.parameters(), self.config.lr)?;
        self.filter = state.filter;
        self.core.episodes = state.episodes;
        self.last_target_update = state.last_target_update;
        (self.core.counts.iteration, self.core.counts.timesteps, self.core.counts.time_total_s) =
            (state.iteration, state.timesteps, state.time_total_s);
        Ok(())
    }
}
