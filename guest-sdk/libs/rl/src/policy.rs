//! Policies and value functions on `wray::nn`: fully connected networks
//! with `tanh` hidden layers (RLlib's default `fcnet`), a categorical head
//! for discrete actions and a diagonal Gaussian with a learned,
//! state-independent log standard deviation for boxes.
//!
//! Weights travel as plain vectors ([`Weights`]): the learner puts them in
//! the object store once per iteration and every runner builds its copy of
//! the policy from them (wray's tensors cannot be overwritten in place, and
//! a runner's network is small).

use crate::filter::ObsFilter;
use crate::spaces::{Action, Space};
use serde::{Deserialize, Serialize};
use wray_guest_core::{Error, Rng, Tensor};
use wray_nn::{Init, Linear, Var};

/// Largest hidden layer and most hidden layers a model may ask for: a
/// checkpoint or a config from elsewhere must not make a runner allocate
/// without bound.
pub const MAX_HIDDEN: usize = 4096;
/// See [`MAX_HIDDEN`].
pub const MAX_LAYERS: usize = 8;

/// A fully connected network: `tanh` between layers, linear output.
pub struct Mlp {
    layers: Vec<Linear>,
}

fn invalid(message: String) -> Error {
    Error::InvalidArgument(message)
}

impl Mlp {
    /// A network through `sizes` (`[inputs, hidden…, outputs]`), Xavier
    /// uniform weights scaled by `out_gain` on the last layer (a small
    /// gain starts a policy near uniform), zero biases.
    pub fn new(sizes: &[usize], out_gain: f32, rng: &mut Rng) -> Result<Mlp, Error> {
        check_sizes(sizes)?;
        let mut layers = Vec::new();
        for (i, pair) in sizes.windows(2).enumerate() {
            let mut layer = Linear::new(pair[0], pair[1], Init::XavierUniform, rng)?;
            if i + 2 == sizes.len() && out_gain != 1.0 {
                let w: Vec<f32> = layer.weight.value().to_vec()?.iter().map(|w| w * out_gain).collect();
                layer.weight = Var::parameter(Tensor::from_vec(&[pair[0], pair[1]], &w)?);
            }
            layers.push(layer);
        }
        Ok(Mlp { layers })
    }

    /// A network through `sizes` with the given weights (as
    /// [`Mlp::weights`] lists them).
    pub fn from_weights(sizes: &[usize], weights: &[Vec<f32>]) -> Result<Mlp, Error> {
        check_sizes(sizes)?;
        if weights.len() != 2 * (sizes.len() - 1) {
            return Err(invalid(format!(
                "a network of {} layers needs {} weight arrays, got {}",
                sizes.len() - 1,
                2 * (sizes.len() - 1),
                weights.len()
            )));
        }
        let mut layers = Vec::new();
        for (pair, wb) in sizes.windows(2).zip(weights.chunks(2)) {
            let (w, b) = (&wb[0], &wb[1]);
            if w.len() != pair[0] * pair[1] || b.len() != pair[1] {
                return Err(invalid(format!(
                    "a {}→{} layer needs {} weights and {} biases, got {} and {}",
                    pair[0],
                    pair[1],
                    pair[0] * pair[1],
                    pair[1],
                    w.len(),
                    b.len()
                )));
            }
            layers.push(Linear {
                weight: Var::parameter(Tensor::from_vec(&[pair[0], pair[1]], w)?),
                bias: Var::parameter(Tensor::from_vec(&[1, pair[1]], b)?),
            });
        }
        Ok(Mlp { layers })
    }

    /// `[rows, outputs]` for `[rows, inputs]`.
    pub fn forward(&self, x: &Var) -> Result<Var, Error> {
        let mut y = x.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            y = y.matmul(&layer.weight)?.add(&layer.bias)?;
            if i + 1 < self.layers.len() {
                y = y.tanh()?;
            }
        }
        Ok(y)
    }

    /// The trainable parameters, weight then bias per layer.
    pub fn parameters(&self) -> Vec<Var> {
        self.layers.iter().flat_map(|l| [l.weight.clone(), l.bias.clone()]).collect()
    }

    /// The parameters' values, in [`Mlp::parameters`]' order.
    pub fn weights(&self) -> Result<Vec<Vec<f32>>, Error> {
        self.parameters().iter().map(|p| p.value().to_vec()).collect()
    }
}

fn check_sizes(sizes: &[usize]) -> Result<(), Error> {
    if sizes.len() < 2 || sizes.len() > MAX_LAYERS + 2 {
        return Err(invalid(format!(
            "a network needs inputs, at most {MAX_LAYERS} hidden layers and outputs: {sizes:?}"
        )));
    }
    if sizes.iter().any(|s| *s == 0 || *s > MAX_HIDDEN) {
        return Err(invalid(format!("layer sizes must be in 1..={MAX_HIDDEN}: {sizes:?}")));
    }
    Ok(())
}

/// What kind of action distribution a policy has.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Head {
    /// Logits over `n` actions.
    Categorical(u32),
    /// A Gaussian per dimension, clipped to the box's bounds in the
    /// environment.
    Gaussian {
        /// Lower bounds.
        low: Vec<f32>,
        /// Upper bounds.
        high: Vec<f32>,
    },
    /// Q-values of `n` actions (DQN), acted on ε-greedily: the best action,
    /// or with probability `epsilon` (when exploring) a uniform one. A
    /// dueling network has one more output, the state's value, which does
    /// not change which action is best.
    QValues {
        /// Actions.
        n: u32,
        /// Whether the network ends in advantage and value streams.
        dueling: bool,
        /// The exploration probability.
        epsilon: f32,
    },
}

impl Head {
    /// The head for an action space.
    pub fn for_space(space: &Space) -> Head {
        match space {
            Space::Discrete(n) => Head::Categorical(*n),
            Space::Box { low, high } => Head::Gaussian { low: low.clone(), high: high.clone() },
        }
    }

    /// Outputs of the policy network.
    pub fn outputs(&self) -> usize {
        match self {
            Head::Categorical(n) => *n as usize,
            Head::Gaussian { low, .. } => low.len(),
            Head::QValues { n, dueling, .. } => *n as usize + usize::from(*dueling),
        }
    }
}

/// A policy's weights and what a runner needs to act with them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Weights {
    /// Layer sizes of the policy network.
    pub sizes: Vec<usize>,
    /// Its parameters.
    pub policy: Vec<Vec<f32>>,
    /// The Gaussian head's log standard deviations (empty for a
    /// categorical head).
    pub log_std: Vec<f32>,
    /// The head.
    pub head: Head,
    /// The observation filter to apply (identity when off).
    pub filter: ObsFilter,
}

/// Actions with their log-probabilities, and the network's outputs.
pub type Acted = (Vec<(Action, f32)>, Vec<f32>);

/// A policy built from [`Weights`], for acting (no gradients kept).
pub struct Actor {
    net: Mlp,
    log_std: Vec<f32>,
    head: Head,
    filter: ObsFilter,
}

impl Actor {
    /// The policy of `weights`.
    pub fn new(weights: &Weights) -> Result<Actor, Error> {
        if weights.sizes.last() != Some(&weights.head.outputs()) {
            return Err(invalid(format!(
                "the policy network's outputs {:?} do not fit its head {:?}",
                weights.sizes, weights.head
            )));
        }
        if matches!(weights.head, Head::Gaussian { .. }) && weights.log_std.len() != weights.head.outputs() {
            return Err(invalid("a Gaussian policy needs one log standard deviation per action".into()));
        }
        Ok(Actor {
            net: Mlp::from_weights(&weights.sizes, &weights.policy)?,
            log_std: weights.log_std.clone(),
            head: weights.head.clone(),
            filter: weights.filter.clone(),
        })
    }

    /// The policy's action head.
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// The filter observations go through.
    pub fn filter(&self) -> &ObsFilter {
        &self.filter
    }

    /// Actions for `rows` filtered observations (row-major), with their
    /// log-probabilities: sampled when `explore`, else the most likely.
    /// Gaussian actions are returned unclipped (their log-probability is
    /// of the sample); [`Actor::env_action`] clips them.
    pub fn act(&self, obs: &[f32], rows: usize, explore: bool, rng: &mut Rng) -> Result<Vec<(Action, f32)>, Error> {
        Ok(self.act_with_outputs(obs, rows, explore, rng)?.0)
    }

    /// [`Actor::act`], with the network's outputs (`rows × outputs`, the
    /// distribution's inputs: PPO's KL term compares against them).
    pub fn act_with_outputs(&self, obs: &[f32], rows: usize, explore: bool, rng: &mut Rng) -> Result<Acted, Error> {
        let inputs = self.net.layers.first().map_or(0, |l| l.weight.shape()[0]);
        if obs.len() != rows * inputs {
            return Err(invalid(format!("{} observation values for {rows} rows of {inputs}", obs.len())));
        }
        let x = Var::constant(Tensor::from_vec(&[rows, inputs], obs)?);
        let out = self.net.forward(&x)?.value().to_vec()?;
        let k = self.head.outputs();
        let mut actions = Vec::with_capacity(rows);
        for row in out.chunks(k) {
            actions.push(match &self.head {
                Head::Categorical(_) => categorical(row, explore, rng),
                Head::Gaussian { .. } => gaussian(row, &self.log_std, explore, rng),
                Head::QValues { n, epsilon, .. } => epsilon_greedy(&row[..*n as usize], explore, *epsilon, rng),
            });
        }
        Ok((actions, out))
    }

    /// The action to hand the environment: Gaussian samples clipped to the
    /// box (RLlib's `clip_actions`).
    pub fn env_action(&self, action: &Action) -> Action {
        match (&self.head, action) {
            (Head::Gaussian { low, high }, Action::Continuous(v)) => {
                Action::Continuous(v.iter().zip(low.iter().zip(high)).map(|(x, (l, h))| x.clamp(*l, *h)).collect())
            }
            _ => action.clone(),
        }
    }
}

/// Samples (or picks the largest of) `logits`; returns the action and its
/// log-probability.
fn categorical(logits: &[f32], explore: bool, rng: &mut Rng) -> (Action, f32) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let total: f32 = exps.iter().sum();
    let pick = if explore {
        let mut u = rng.uniform() * total;
        let mut pick = exps.len() - 1;
        for (i, e) in exps.iter().enumerate() {
            if u < *e {
                pick = i;
                break;
            }
            u -= e;
        }
        pick
    } else {
        argmax(logits)
    };
    (Action::Discrete(pick as u32), (exps[pick] / total).ln())
}

/// The index of the first largest value.
pub(crate) fn argmax(values: &[f32]) -> usize {
    values.iter().enumerate().fold(0, |best, (i, v)| if *v > values[best] { i } else { best })
}

/// The best action, or (exploring) with probability `epsilon` a uniform
/// one; the log-probability is not used by DQN and is 0.
fn epsilon_greedy(q: &[f32], explore: bool, epsilon: f32, rng: &mut Rng) -> (Action, f32) {
    let pick = if explore && rng.uniform() < epsilon { rng.below(q.len()) } else { argmax(q) };
    (Action::Discrete(pick as u32), 0.0)
}

const LOG_SQRT_2PI: f32 = 0.918_938_5;

fn gaussian(mean: &[f32], log_std: &[f32], explore: bool, rng: &mut Rng) -> (Action, f32) {
    let mut action = Vec::with_capacity(mean.len());
    let mut logp = 0.0;
    for (m, s) in mean.iter().zip(log_std) {
        let z = if explore { rng.normal() } else { 0.0 };
        action.push(m + s.exp() * z);
        logp += -0.5 * z * z - s - LOG_SQRT_2PI;
    }
    (Action::Continuous(action), logp)
}
