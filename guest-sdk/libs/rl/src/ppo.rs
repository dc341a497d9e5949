//! Proximal Policy Optimization (Schulman et al. 2017), as RLlib's PPO:
//! runners sample fragments with the current policy; the learner computes
//! generalized advantage estimates (truncated episodes bootstrapped from
//! the value function), then takes `num_epochs` passes of minibatch Adam
//! steps on the clipped surrogate, the (clipped) value loss and the
//! entropy bonus.

use crate::algorithm::{Core, algorithm_methods};
use crate::checkpoint;
use crate::config::{CommonConfig, EpisodeWindow, TrainResult, common_builders};
use crate::filter::ObsFilter;
use crate::policy::{Head, Mlp, Weights};
use crate::runner::Fragment;
use serde::{Deserialize, Serialize};
use std::time::Instant;
use wray_guest_core::{Error, Rng, Tensor};
use wray_nn::{Adam, Optimizer, Var};

/// Largest train batch a config may ask for (steps per iteration).
pub const MAX_TRAIN_BATCH: u32 = 1 << 22;

/// PPO's settings (RLlib's `PPOConfig`, with its field names). The
/// defaults are RLlib's (`clip_param` 0.3, `lambda_` 1.0, batches of 4000
/// in minibatches of 128) with its tuned CartPole example's learning rate
/// and epochs (3e-4, 6), plus a gradient clip of 0.5, which on CartPole
/// reaches a return of 450 in about 76k steps against 104–124k without.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PPOConfig {
    /// Environment, runners, model, evaluation, seed.
    pub common: CommonConfig,
    /// Environment steps per iteration.
    pub train_batch_size: u32,
    /// Steps per Adam step.
    pub minibatch_size: u32,
    /// Passes over each batch.
    pub num_epochs: u32,
    /// Adam's learning rate.
    pub lr: f32,
    /// Discount.
    pub gamma: f32,
    /// GAE's λ.
    pub lambda_: f32,
    /// The surrogate's ratio is clipped to `1 ± clip_param`.
    pub clip_param: f32,
    /// Each step's squared value error is clipped to this (RLlib's
    /// `vf_clip_param`: a bound on the loss, in squared reward units).
    pub vf_clip_param: f32,
    /// Weight of the value loss.
    pub vf_loss_coeff: f32,
    /// Weight of the entropy bonus.
    pub entropy_coeff: f32,
    /// Gradients are scaled down to this global norm (`None`: never).
    pub grad_clip: Option<f32>,
    /// Add `kl_coeff ×` the KL divergence of the new policy from the
    /// sampling one to the loss (categorical policies), the coefficient
    /// adapted toward `kl_target` after each iteration. RLlib turns it on
    /// by default; here it is off: on CartPole it took 104–116 k steps to
    /// a return of 450 against 76 k without.
    pub use_kl_loss: bool,
    /// The KL term's starting coefficient.
    pub kl_coeff: f32,
    /// The KL divergence the coefficient steers toward.
    pub kl_target: f32,
}

impl Default for PPOConfig {
    fn default() -> Self {
        PPOConfig {
            common: CommonConfig::default(),
            train_batch_size: 4000,
            minibatch_size: 128,
            num_epochs: 6,
            lr: 3e-4,
            gamma: 0.99,
            lambda_: 1.0,
            clip_param: 0.3,
            vf_clip_param: 10.0,
            vf_loss_coeff: 0.5,
            entropy_coeff: 0.0,
            grad_clip: Some(0.5),
            use_kl_loss: false,
            kl_coeff: 0.2,
            kl_target: 0.01,
        }
    }
}

common_builders!(PPOConfig);

impl PPOConfig {
    /// The defaults (CartPole-v1, 2 runners).
    pub fn new() -> PPOConfig {
        PPOConfig::default()
    }

    /// Environment steps per iteration.
    pub fn train_batch_size(mut self, steps: u32) -> Self {
        self.train_batch_size = steps;
        self
    }
    /// Steps per Adam step.
    pub fn minibatch_size(mut self, steps: u32) -> Self {
        self.minibatch_size = steps;
        self
    }
    /// Passes over each batch.
    pub fn num_epochs(mut self, epochs: u32) -> Self {
        self.num_epochs = epochs;
        self
    }
    /// Learning rate.
    pub fn lr(mut self, lr: f32) -> Self {
        self.lr = lr;
        self
    }
    /// Discount.
    pub fn gamma(mut self, gamma: f32) -> Self {
        self.gamma = gamma;
        self
    }
    /// GAE's λ.
    pub fn lambda(mut self, lambda: f32) -> Self {
        self.lambda_ = lambda;
        self
    }
    /// The surrogate's clip.
    pub fn clip_param(mut self, clip: f32) -> Self {
        self.clip_param = clip;
        self
    }
    /// The value loss's clip.
    pub fn vf_clip_param(mut self, clip: f32) -> Self {
        self.vf_clip_param = clip;
        self
    }
    /// Weight of the value loss.
    pub fn vf_loss_coeff(mut self, coeff: f32) -> Self {
        self.vf_loss_coeff = coeff;
        self
    }
    /// Weight of the entropy bonus.
    pub fn entropy_coeff(mut self, coeff: f32) -> Self {
        self.entropy_coeff = coeff;
        self
    }
    /// Global gradient norm clip (`None`: off).
    pub fn grad_clip(mut self, clip: Option<f32>) -> Self {
        self.grad_clip = clip;
        self
    }
    /// RLlib's KL penalty: on or off, its starting coefficient and target.
    pub fn kl_loss(mut self, on: bool, coeff: f32, target: f32) -> Self {
        (self.use_kl_loss, self.kl_coeff, self.kl_target) = (on, coeff, target);
        self
    }

    fn check(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::InvalidArgument(format!("PPOConfig: {m}")));
        if self.train_batch_size == 0 || self.train_batch_size > MAX_TRAIN_BATCH {
            return bad(format!("train_batch_size must be in 1..={MAX_TRAIN_BATCH}"));
        }
        if self.minibatch_size == 0 || self.num_epochs == 0 {
            return bad("minibatch_size and num_epochs must be positive".into());
        }
        for (name, v) in [("lr", self.lr), ("clip_param", self.clip_param), ("vf_clip_param", self.vf_clip_param)] {
            if !(v.is_finite() && v > 0.0) {
                return bad(format!("{name} must be positive, got {v}"));
            }
        }
        for (name, v) in [("gamma", self.gamma), ("lambda_", self.lambda_)] {
            if !(0.0..=1.0).contains(&v) {
                return bad(format!("{name} must be in [0, 1], got {v}"));
            }
        }
        if !(self.vf_loss_coeff.is_finite() && self.entropy_coeff.is_finite()) {
            return bad("the loss coefficients must be finite".into());
        }
        if self.grad_clip.is_some_and(|c| !(c.is_finite() && c > 0.0)) {
            return bad("grad_clip must be positive".into());
        }
        if !(self.kl_coeff.is_finite() && self.kl_coeff >= 0.0 && self.kl_target.is_finite() && self.kl_target > 0.0) {
            return bad("kl_coeff must be ≥ 0 and kl_target positive".into());
        }
        Ok(())
    }

    /// Starts the algorithm: its runners, its networks.
    pub fn build(self) -> Result<PPO, Error> {
        PPO::new(self)
    }
}

/// The networks PPO trains.
struct Nets {
    policy: Mlp,
    /// A Gaussian head's log standard deviations, `[1, k]`.
    log_std: Option<Var>,
    value: Mlp,
    optimizer: Adam,
}

/// What a checkpoint holds.
#[derive(Serialize, Deserialize)]
struct State {
    config: PPOConfig,
    iteration: u64,
    timesteps: u64,
    time_total_s: f64,
    policy: Vec<Vec<f32>>,
    log_std: Vec<f32>,
    value: Vec<Vec<f32>>,
    filter: ObsFilter,
    episodes: EpisodeWindow,
}

/// A PPO run: `train()` one iteration at a time.
pub struct PPO {
    config: PPOConfig,
    core: Core,
    learner: Learner,
}

/// A learner's weights: policy, log standard deviations, value.
pub(crate) type Snapshot = (Vec<Vec<f32>>, Vec<f32>, Vec<Vec<f32>>);

/// One policy's learner: its networks, head and observation filter (PPO
/// has one; multi-agent PPO one per policy).
pub(crate) struct Learner {
    /// The KL term's coefficient, adapted every iteration.
    kl_coeff: f32,
    nets: Nets,
    head: Head,
    filter: ObsFilter,
    obs_dim: usize,
    hiddens: Vec<usize>,
}

algorithm_methods!(PPO, PPOConfig);

impl Learner {
    pub(crate) fn new(config: &PPOConfig, obs_dim: usize, head: Head, rng: &mut Rng) -> Result<Learner, Error> {
        let hiddens = config.common.fcnet_hiddens.clone();
        let (pi, vf) = sizes(&hiddens, obs_dim, &head);
        let nets = Nets::new(&pi, &vf, &head, config.lr, rng)?;
        let filter = ObsFilter::new(config.common.observation_filter, obs_dim);
        Ok(Learner { kl_coeff: config.kl_coeff, nets, head, filter, obs_dim, hiddens })
    }
}

impl Nets {
    fn new(sizes_pi: &[usize], sizes_vf: &[usize], head: &Head, lr: f32, rng: &mut Rng) -> Result<Nets, Error> {
        let policy = Mlp::new(sizes_pi, 0.01, rng)?;
        let value = Mlp::new(sizes_vf, 1.0, rng)?;
        let log_std = match head {
            Head::Gaussian { low, .. } => Some(Var::parameter(Tensor::zeros(&[1, low.len()])?)),
            Head::Categorical(_) | Head::QValues { .. } => None,
        };
        Nets::assemble(policy, log_std, value, lr)
    }

    fn assemble(policy: Mlp, log_std: Option<Var>, value: Mlp, lr: f32) -> Result<Nets, Error> {
        let mut params = policy.parameters();
        params.extend(log_std.clone());
        params.extend(value.parameters());
        Ok(Nets { optimizer: Adam::new(params, lr)?, policy, log_std, value })
    }

    fn params(&self) -> Vec<Var> {
        let mut p = self.policy.parameters();
        p.extend(self.log_std.clone());
        p.extend(self.value.parameters());
        p
    }

    fn log_std(&self) -> Result<Vec<f32>, Error> {
        self.log_std.as_ref().map_or(Ok(Vec::new()), |v| v.value().to_vec())
    }
}

/// The training batch of one iteration, advantages computed.
struct Batch {
    rows: usize,
    obs: Tensor,
    /// Discrete actions (categorical head).
    action_index: Vec<u32>,
    /// Continuous actions, `[rows, k]` (Gaussian head).
    action_values: Option<Tensor>,
    logp: Tensor,
    advantages: Tensor,
    returns: Tensor,
    /// The sampling policy's log-probabilities of every action, `[rows, k]`
    /// (categorical policies whose fragments recorded them).
    old_log_probs: Option<Tensor>,
}

impl PPO {
    /// Its name in checkpoints.
    pub const NAME: &'static str = "PPO";

    /// Starts PPO with `config` (its runners, its networks).
    pub fn new(config: PPOConfig) -> Result<PPO, Error> {
        config.check()?;
        let mut core = Core::start(&config.common, Self::NAME)?;
        let head = Head::for_space(&core.runners.spaces().1);
        let learner = Learner::new(&config, core.obs_dim, head, &mut core.rng)?;
        Ok(PPO { config, core, learner })
    }

    /// The config it runs with.
    pub fn config(&self) -> &PPOConfig {
        &self.config
    }

    /// The current policy's weights (what runners act with).
    pub fn weights(&self) -> Result<Weights, Error> {
        self.learner.weights()
    }

    /// Steps per copy per fragment: the configured length, or the batch
    /// split over every copy sampling (rounded up).
    fn fragment_length(&self) -> u32 {
        self.config
            .common
            .rollout_fragment_length
            .unwrap_or_else(|| self.config.train_batch_size.div_ceil(self.core.runners.total_envs()))
    }

    /// One iteration: sample a batch with the runners, then learn from it.
    /// A loss that turns NaN or infinite is an error naming the iteration;
    /// the weights are then those the iteration started from.
    pub fn train(&mut self) -> Result<TrainResult, Error> {
        let start = Instant::now();
        let weights = self.weights()?;
        let fragments = self.core.runners.sample(&weights, self.fragment_length(), true)?;
        self.core.record(&fragments)?;
        let mut result = TrainResult { sample_time_s: start.elapsed().as_secs_f64(), ..TrainResult::default() };
        for f in &fragments {
            self.core.episodes.add(&f.episodes, &mut result);
            result.num_env_steps_sampled += f.rows() as u64;
        }
        let what = format!("PPO iteration {}", self.core.counts.iteration + 1);
        result.learner =
            self.learner.update(&fragments, &self.config, &mut self.core.rng, &what, self.core.counts.iteration)?;
        result.num_env_steps_trained = result.num_env_steps_sampled;
        self.core.finish(&mut result, start);
        Ok(result)
    }
}

/// Layer sizes of the policy and value networks.
fn sizes(hiddens: &[usize], obs_dim: usize, head: &Head) -> (Vec<usize>, Vec<usize>) {
    let mut pi = vec![obs_dim];
    pi.extend(hiddens);
    let mut vf = pi.clone();
    pi.push(head.outputs());
    vf.push(1);
    (pi, vf)
}

/// `values` as a `[rows, 1]` tensor.
fn column(values: &[f32]) -> Result<Tensor, Error> {
    Tensor::from_vec(&[values.len(), 1], values)
}

impl Learner {
    fn nets_from(&self, lr: f32, policy: &[Vec<f32>], log_std: &[f32], value: &[Vec<f32>]) -> Result<Nets, Error> {
        let (pi, vf) = sizes(&self.hiddens, self.obs_dim, &self.head);
        let log_std = match &self.head {
            Head::Gaussian { low, .. } => {
                if log_std.len() != low.len() {
                    return Err(Error::InvalidArgument(format!(
                        "{} log standard deviations for {} actions",
                        log_std.len(),
                        low.len()
                    )));
                }
                Some(Var::parameter(Tensor::from_vec(&[1, low.len()], log_std)?))
            }
            Head::Categorical(_) | Head::QValues { .. } => None,
        };
        Nets::assemble(Mlp::from_weights(&pi, policy)?, log_std, Mlp::from_weights(&vf, value)?, lr)
    }

    /// The value function on `rows` observations.
    fn values(&self, obs: &[f32], rows: usize) -> Result<Vec<f32>, Error> {
        if rows == 0 {
            return Ok(Vec::new());
        }
        let x = Var::constant(Tensor::from_vec(&[rows, self.obs_dim], obs)?);
        self.nets.value.forward(&x)?.value().to_vec()
    }

    /// The fragments as one batch, with GAE advantages (standardized) and
    /// value targets.
    fn batch(&self, fragments: &[Fragment], config: &PPOConfig) -> Result<Batch, Error> {
        let (gamma, lambda) = (config.gamma, config.lambda_);
        let d = self.obs_dim;
        let rows: usize = fragments.iter().map(Fragment::rows).sum();
        let mut obs = Vec::with_capacity(rows * d);
        let (mut actions, mut logp, mut advantages, mut returns) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for f in fragments {
            let values = self.values(&f.obs, f.rows())?;
            let segments = f.segments();
            let next = self.values(&f.next_obs, segments.len())?;
            let finals: Vec<f32> = f.final_obs.iter().flat_map(|(_, o)| o.iter().copied()).collect();
            let final_values = self.values(&finals, f.final_obs.len())?;
            let final_of: std::collections::HashMap<u32, f32> =
                f.final_obs.iter().map(|(row, _)| *row).zip(final_values).collect();
            let mut adv = vec![0.0f32; f.rows()];
            for ((start, len), next_of_segment) in segments.into_iter().zip(&next) {
                let mut next_adv = 0.0f32;
                for t in (0..len).rev() {
                    let row = start + t;
                    let ended = f.terminated[row] || f.truncated[row];
                    let next_value = if f.terminated[row] {
                        0.0
                    } else if f.truncated[row] {
                        final_of.get(&(row as u32)).copied().unwrap_or(0.0)
                    } else if t + 1 == len {
                        *next_of_segment
                    } else {
                        values[row + 1]
                    };
                    let delta = f.rewards[row] + gamma * next_value - values[row];
                    let carry = if ended || t + 1 == len { 0.0 } else { next_adv };
                    adv[row] = delta + gamma * lambda * carry;
                    next_adv = adv[row];
                }
            }
            returns.extend(adv.iter().zip(&values).map(|(a, v)| a + v));
            advantages.extend(adv);
            obs.extend_from_slice(&f.obs);
            actions.extend_from_slice(&f.actions);
            logp.extend_from_slice(&f.logp);
        }
        let n = advantages.len().max(1) as f32;
        let mean = advantages.iter().sum::<f32>() / n;
        let std = (advantages.iter().map(|a| (a - mean).powi(2)).sum::<f32>() / n).sqrt().max(1e-8);
        advantages.iter_mut().for_each(|a| *a = (*a - mean) / std);
        let (action_index, action_values) = match &self.head {
            Head::Categorical(_) | Head::QValues { .. } => (actions.iter().map(|a| *a as u32).collect(), None),
            Head::Gaussian { low, .. } => (Vec::new(), Some(Tensor::from_vec(&[rows, low.len()], &actions)?)),
        };
        // The sampling distributions, as log-probabilities, when every
        // fragment recorded them (a categorical head).
        let old_log_probs = match &self.head {
            Head::Categorical(k) if fragments.iter().all(|f| f.dist_inputs.len() == f.rows() * *k as usize) => {
                let k = *k as usize;
                let mut all = Vec::with_capacity(rows * k);
                for f in fragments {
                    for logits in f.dist_inputs.chunks(k) {
                        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                        let lse = max + logits.iter().map(|l| (l - max).exp()).sum::<f32>().ln();
                        all.extend(logits.iter().map(|l| l - lse));
                    }
                }
                Some(Tensor::from_vec(&[rows, k], &all)?)
            }
            _ => None,
        };
        Ok(Batch {
            rows,
            obs: Tensor::from_vec(&[rows, d], &obs)?,
            action_index,
            action_values,
            logp: column(&logp)?,
            advantages: column(&advantages)?,
            returns: column(&returns)?,
            old_log_probs,
        })
    }

    /// Log-probabilities (`[m, 1]`) and entropies (`[m, 1]`) of the
    /// minibatch's actions under the current policy.
    fn log_probs(&self, x: &Var, batch: &Batch, idx: &[u32]) -> Result<(Var, Var, Option<Var>), Error> {
        let out = self.nets.policy.forward(x)?;
        match (&self.head, &self.nets.log_std) {
            (Head::Gaussian { .. }, Some(log_std)) => {
                let values = batch.action_values.as_ref().ok_or_else(|| Error::InvalidArgument("no actions".into()))?;
                let a = Var::constant(values.gather_rows(idx)?);
                let z = a.sub(&out)?.div(&log_std.exp()?)?;
                // log N(a; μ, σ) = -z²/2 - log σ - log √(2π), summed over
                // the action's elements.
                let logp = z.pow(2.0)?.affine(-0.5, -0.918_938_5)?.sub(log_std)?.sum(1)?;
                let entropy = log_std.affine(1.0, 1.418_938_5)?.sum(1)?;
                Ok((logp, entropy, None))
            }
            _ => {
                let actions: Vec<u32> = idx.iter().map(|i| batch.action_index[*i as usize]).collect();
                let logp = out.cross_entropy_rows(&actions)?.affine(-1.0, 0.0)?;
                let log_all = out.log_softmax_rows()?;
                let entropy = log_all.exp()?.mul(&log_all)?.sum(1)?.affine(-1.0, 0.0)?;
                Ok((logp, entropy, Some(log_all)))
            }
        }
    }

    /// `num_epochs` passes of minibatch steps; the mean of each loss term.
    fn learn(&mut self, batch: &Batch, c: &PPOConfig, rng: &mut Rng) -> Result<Vec<(String, f64)>, Error> {
        let (clip, vf_clip, vf_coeff, ent_coeff) = (c.clip_param, c.vf_clip_param, c.vf_loss_coeff, c.entropy_coeff);
        let mut order: Vec<u32> = (0..batch.rows as u32).collect();
        let mut sums = [0.0f64; 5];
        let mut steps = 0u32;
        for epoch in 0..c.num_epochs {
            rng.shuffle(&mut order);
            for (m, idx) in order.chunks(c.minibatch_size as usize).enumerate() {
                let x = Var::constant(batch.obs.gather_rows(idx)?);
                let advantages = Var::constant(batch.advantages.gather_rows(idx)?);
                let old_logp = Var::constant(batch.logp.gather_rows(idx)?);
                let returns = Var::constant(batch.returns.gather_rows(idx)?);
                let (logp, entropy, log_all) = self.log_probs(&x, batch, idx)?;
                let ratio = logp.sub(&old_logp)?.exp()?;
                let surrogate =
                    ratio.mul(&advantages)?.minimum(&ratio.clamp(1.0 - clip, 1.0 + clip)?.mul(&advantages)?)?;
                let policy_loss = surrogate.mean_all()?.affine(-1.0, 0.0)?;
                let vf_loss = self.nets.value.forward(&x)?.sub(&returns)?.pow(2.0)?.clamp(0.0, vf_clip)?.mean_all()?;
                let entropy = entropy.mean_all()?;
                let mut total =
                    policy_loss.add(&vf_loss.affine(vf_coeff, 0.0)?)?.sub(&entropy.affine(ent_coeff, 0.0)?)?;
                // KL(sampling policy ‖ current policy), exactly, from the
                // recorded distributions; else the sampled estimate.
                let kl = match (&batch.old_log_probs, log_all) {
                    (Some(old), Some(new)) => {
                        let old = old.gather_rows(idx)?;
                        let kl = Var::constant(old.exp()?).mul(&Var::constant(old).sub(&new)?)?.sum(1)?.mean_all()?;
                        if c.use_kl_loss {
                            total = total.add(&kl.affine(self.kl_coeff, 0.0)?)?;
                        }
                        kl.value().item()?
                    }
                    _ => old_logp.value().sub(logp.value())?.mean_all()?.item()?,
                };
                let loss = total.value().item()?;
                if !loss.is_finite() {
                    return Err(Error::InvalidArgument(format!(
                        "the loss is {loss} at epoch {epoch}, minibatch {m} (try a lower lr or a grad_clip)"
                    )));
                }
                self.nets.optimizer.zero_grad();
                total.backward()?;
                if let Some(max_norm) = c.grad_clip {
                    clip_grad_norm(&self.nets.params(), max_norm)?;
                }
                self.nets.optimizer.step()?;
                let terms = [loss, policy_loss.value().item()?, vf_loss.value().item()?, entropy.value().item()?, kl];
                for (s, t) in sums.iter_mut().zip(terms) {
                    *s += f64::from(t);
                }
                steps += 1;
            }
        }
        let names = ["total_loss", "policy_loss", "vf_loss", "entropy", "mean_kl"];
        let mut stats: Vec<(String, f64)> =
            names.iter().zip(sums).map(|(n, s)| (n.to_string(), s / f64::from(steps.max(1)))).collect();
        if c.use_kl_loss && batch.old_log_probs.is_some() {
            // RLlib's adaptive coefficient: up by half when the policy moved
            // too far, halved when it hardly moved.
            let mean_kl = stats[4].1 as f32;
            if mean_kl > 2.0 * c.kl_target {
                self.kl_coeff *= 1.5;
            } else if mean_kl < 0.5 * c.kl_target {
                self.kl_coeff *= 0.5;
            }
            stats.push(("kl_coeff".into(), f64::from(self.kl_coeff)));
        }
        Ok(stats)
    }

    /// The networks' weights: policy, log standard deviations, value.
    pub(crate) fn snapshot(&self) -> Result<Snapshot, Error> {
        Ok((self.nets.policy.weights()?, self.nets.log_std()?, self.nets.value.weights()?))
    }

    /// Replaces the networks' weights (a fresh optimizer).
    pub(crate) fn load(
        &mut self,
        lr: f32,
        policy: &[Vec<f32>],
        log_std: &[f32],
        value: &[Vec<f32>],
    ) -> Result<(), Error> {
        self.nets = self.nets_from(lr, policy, log_std, value)?;
        Ok(())
    }

    /// The acting weights.
    pub(crate) fn weights(&self) -> Result<Weights, Error> {
        let (pi, _) = sizes(&self.hiddens, self.obs_dim, &self.head);
        Ok(Weights {
            sizes: pi,
            policy: self.nets.policy.weights()?,
            log_std: self.nets.log_std()?,
            head: self.head.clone(),
            filter: self.filter.clone(),
        })
    }

    /// Learns from `fragments` (their filter statistics merged first). A
    /// loss that turns NaN or infinite is an error naming `what` (the
    /// iteration); the networks are then those from before.
    pub(crate) fn update(
        &mut self,
        fragments: &[Fragment],
        c: &PPOConfig,
        rng: &mut Rng,
        what: &str,
        before: u64,
    ) -> Result<Vec<(String, f64)>, Error> {
        let (policy_before, log_std_before, value_before) = self.snapshot()?;
        for f in fragments {
            self.filter.merge(&f.filter_delta);
        }
        let batch = self.batch(fragments, c)?;
        match self.learn(&batch, c, rng) {
            Ok(stats) => Ok(stats),
            Err(e) => {
                self.nets = self.nets_from(c.lr, &policy_before, &log_std_before, &value_before)?;
                Err(Error::InvalidArgument(format!(
                    "{what}: {}; the weights are those of iteration {before}",
                    crate::algorithm::message(&e)
                )))
            }
        }
    }
}

impl PPO {
    /// The checkpoint's bytes (what [`PPO::save`] writes). The optimizer's
    /// moments are not kept: a restored run starts Adam afresh.
    pub fn checkpoint_bytes(&self) -> Result<Vec<u8>, Error> {
        let state = State {
            config: self.config.clone(),
            iteration: self.core.counts.iteration,
            timesteps: self.core.counts.timesteps,
            time_total_s: self.core.counts.time_total_s,
            policy: self.learner.nets.policy.weights()?,
            log_std: self.learner.nets.log_std()?,
            value: self.learner.nets.value.weights()?,
            filter: self.learner.filter.clone(),
            episodes: self.core.episodes.clone(),
        };
        checkpoint::encode(Self::NAME, self.config.common.env_name(), &state)
    }

    /// Loads the weights and counters of checkpoint bytes of PPO on the
    /// same environment (`origin` names them in errors).
    pub fn restore_bytes(&mut self, bytes: &[u8], origin: &str) -> Result<(), Error> {
        let state: State = checkpoint::decode(bytes, origin, Self::NAME, Some(self.config.common.env_name()))?;
        if state.config.common.fcnet_hiddens != self.config.common.fcnet_hiddens {
            return Err(Error::InvalidArgument(format!(
                "the checkpoint's networks have hidden layers {:?}, the config asks for {:?}",
                state.config.common.fcnet_hiddens, self.config.common.fcnet_hiddens
            )));
        }
        if state.filter.mean.len() != self.core.obs_dim {
            return Err(Error::InvalidArgument("the checkpoint's observation filter has another shape".into()));
        }
        self.learner.nets = self.learner.nets_from(self.config.lr, &state.policy, &state.log_std, &state.value)?;
        self.learner.filter = state.filter;
        self.core.episodes = state.episodes;
        (self.core.counts.iteration, self.core.counts.timesteps, self.core.counts.time_total_s) =
            (state.iteration, state.timesteps, state.time_total_s);
        Ok(())
    }
}

/// Scales the gradients of `params` down to a global norm of `max_norm`.
pub(crate) fn clip_grad_norm(params: &[Var], max_norm: f32) -> Result<(), Error> {
    let mut total = 0.0f32;
    let grads: Vec<Option<Tensor>> = params.iter().map(Var::grad).collect();
    for g in grads.iter().flatten() {
        total += g.mul(g)?.sum_all()?.item()?;
    }
    let norm = total.sqrt();
    if norm > max_norm {
        let scale = max_norm / norm;
        for (p, g) in params.iter().zip(grads) {
            if let Some(g) = g {
                p.set_grad(Some(g.affine(scale, 0.0)?));
            }
        }
    }
    Ok(())
}
