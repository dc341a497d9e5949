//! Env runners: copies of an environment stepped by a policy, collecting
//! fragments of experience. [`Sampler`] is the logic (used in the driver
//! when there are no runner actors, as RLlib's local env runner);
//! [`EnvRunner`] is the actor around it that the algorithms start
//! `num_env_runners` of.

use crate::env::{Env, EnvSpec};
use crate::filter::ObsFilter;
use crate::policy::{Actor, Head, Weights};
use crate::spaces::{Action, Space};
use serde::{Deserialize, Serialize};
use wray_guest_core::{Error, ObjectRef, Rng};

/// Most environment copies one runner may step, and most steps per copy
/// in one fragment: what a config can make a runner hold in memory.
pub const MAX_ENVS_PER_RUNNER: u32 = 1024;
/// See [`MAX_ENVS_PER_RUNNER`].
pub const MAX_FRAGMENT_STEPS: u32 = 1 << 20;

/// One finished episode.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    /// The sum of its rewards.
    pub ret: f64,
    /// Its steps.
    pub len: u32,
}

/// What a runner sampled: for each of `num_envs` copies a segment of
/// `steps` consecutive steps (episodes continue across fragments; a copy
/// whose episode ends is reset and goes on). Arrays are segment-major:
/// step `t` of copy `e` is row `e * steps + t`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Fragment {
    /// Elements per observation.
    pub obs_dim: u32,
    /// Elements per action (1 for a discrete action, its index).
    pub act_dim: u32,
    /// Environment copies.
    pub num_envs: u32,
    /// Steps per copy.
    pub steps: u32,
    /// Observations the actions were chosen on (filtered).
    pub obs: Vec<f32>,
    /// The actions as the policy chose them (unclipped).
    pub actions: Vec<f32>,
    /// Their log-probabilities under the sampling policy.
    pub logp: Vec<f32>,
    /// Rewards.
    pub rewards: Vec<f32>,
    /// The step ended its episode in a terminal state.
    pub terminated: Vec<bool>,
    /// The step cut its episode short (time limit).
    pub truncated: Vec<bool>,
    /// Per copy, the observation after its segment's last step (filtered;
    /// the next episode's first when that step ended one).
    pub next_obs: Vec<f32>,
    /// For each truncated step (its row), the observation it ended on
    /// (filtered): a truncated episode's return is bootstrapped from it.
    pub final_obs: Vec<(u32, Vec<f32>)>,
    /// Episodes that ended in this fragment.
    pub episodes: Vec<Episode>,
    /// The raw observations this runner saw, for the learner's filter.
    pub filter_delta: ObsFilter,
    /// The policy network's outputs for each row (`rows × outputs`; empty
    /// when not recorded): the sampling distribution, for PPO's KL term.
    #[serde(default)]
    pub dist_inputs: Vec<f32>,
    /// Segment lengths when they differ (a multi-agent fragment: one
    /// segment per agent trajectory); empty means `num_envs` segments of
    /// `steps` rows each.
    #[serde(default)]
    pub lengths: Vec<u32>,
}

impl Fragment {
    /// Rows (steps over all segments).
    pub fn rows(&self) -> usize {
        if self.lengths.is_empty() {
            (self.num_envs * self.steps) as usize
        } else {
            self.lengths.iter().map(|l| *l as usize).sum()
        }
    }

    /// The last observation of each truncated step, by row.
    pub fn final_of(&self) -> std::collections::HashMap<u32, &Vec<f32>> {
        self.final_obs.iter().map(|(row, obs)| (*row, obs)).collect()
    }

    /// The segments in order, as (first row, rows); segment `i`'s next
    /// observation is `next_obs[i]`.
    pub fn segments(&self) -> Vec<(usize, usize)> {
        if self.lengths.is_empty() {
            let steps = self.steps as usize;
            return (0..self.num_envs as usize).map(|e| (e * steps, steps)).collect();
        }
        let mut start = 0;
        self.lengths
            .iter()
            .map(|l| {
                let segment = (start, *l as usize);
                start += *l as usize;
                segment
            })
            .collect()
    }
}

/// The seed of copy `index` of a runner seeded `seed`.
fn env_seed(seed: u64, index: u32) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(u64::from(index).wrapping_mul(0xBF58_476D_1CE4_E5B9))
}

/// Environment copies and their episodes in progress.
pub struct Sampler {
    spec_name: String,
    envs: Vec<Box<dyn Env>>,
    /// Each copy's current raw observation.
    obs: Vec<Vec<f32>>,
    returns: Vec<f64>,
    lengths: Vec<u32>,
    obs_dim: usize,
    action_space: Space,
    rng: Rng,
}

impl Sampler {
    /// `num_envs` copies of `spec`, reset with seeds derived from `seed`.
    pub fn new(spec: &EnvSpec, num_envs: u32, seed: u64) -> Result<Sampler, Error> {
        if num_envs == 0 || num_envs > MAX_ENVS_PER_RUNNER {
            return Err(Error::InvalidArgument(format!(
                "num_envs_per_env_runner must be in 1..={MAX_ENVS_PER_RUNNER}, got {num_envs}"
            )));
        }
        let mut envs = Vec::new();
        let mut obs = Vec::new();
        for i in 0..num_envs {
            let mut env = spec.make()?;
            obs.push(env.reset(Some(env_seed(seed, i))));
            envs.push(env);
        }
        let obs_dim = envs[0].observation_space().dim();
        let action_space = envs[0].action_space();
        if let Some(bad) = obs.iter().find(|o| o.len() != obs_dim) {
            return Err(Error::InvalidArgument(format!(
                "{}: reset returned {} observation values, its space has {obs_dim}",
                spec.name(),
                bad.len()
            )));
        }
        Ok(Sampler {
            spec_name: spec.name().to_string(),
            returns: vec![0.0; envs.len()],
            lengths: vec![0; envs.len()],
            envs,
            obs,
            obs_dim,
            action_space,
            rng: Rng::new(seed ^ 0xA11CE),
        })
    }

    /// The environment's observation and action spaces.
    pub fn spaces(&self) -> (Space, Space) {
        (self.envs[0].observation_space(), self.action_space.clone())
    }

    fn step_env(&mut self, e: usize, action: &Action) -> Result<crate::env::Step, Error> {
        let step = self.envs[e].step(action)?;
        if step.observation.len() != self.obs_dim {
            return Err(Error::InvalidArgument(format!(
                "{}: step returned {} observation values, its space has {}",
                self.spec_name,
                step.observation.len(),
                self.obs_dim
            )));
        }
        Ok(step)
    }

    /// Steps every copy `steps` times with `actor` (sampling its actions
    /// when `explore`).
    pub fn sample(&mut self, actor: &Actor, steps: u32, explore: bool) -> Result<Fragment, Error> {
        if steps == 0 || steps > MAX_FRAGMENT_STEPS {
            return Err(Error::InvalidArgument(format!(
                "a fragment needs 1..={MAX_FRAGMENT_STEPS} steps, got {steps}"
            )));
        }
        let (n, d) = (self.envs.len(), self.obs_dim);
        let act_dim = self.action_space.dim();
        let rows = n * steps as usize;
        let mut f = Fragment {
            obs_dim: d as u32,
            act_dim: act_dim as u32,
            num_envs: n as u32,
            steps,
            obs: vec![0.0; rows * d],
            actions: vec![0.0; rows * act_dim],
            logp: vec![0.0; rows],
            rewards: vec![0.0; rows],
            terminated: vec![false; rows],
            truncated: vec![false; rows],
            filter_delta: actor.filter().empty_like(),
            ..Fragment::default()
        };
        let mut batch = vec![0.0f32; n * d];
        for t in 0..steps as usize {
            for (e, o) in self.obs.iter().enumerate() {
                f.filter_delta.push(o);
                let row = &mut batch[e * d..(e + 1) * d];
                row.copy_from_slice(o);
                actor.filter().apply(row);
            }
            let (chosen, outputs) = actor.act_with_outputs(&batch, n, explore, &mut self.rng)?;
            // Only a categorical policy's distributions are used (PPO's KL).
            let k = if matches!(actor.head(), Head::Categorical(_)) { outputs.len() / n } else { 0 };
            if f.dist_inputs.is_empty() {
                f.dist_inputs = vec![0.0; rows * k];
            }
            for (e, (action, logp)) in chosen.into_iter().enumerate() {
                let row = e * steps as usize + t;
                f.dist_inputs[row * k..(row + 1) * k].copy_from_slice(&outputs[e * k..(e + 1) * k]);
                f.obs[row * d..(row + 1) * d].copy_from_slice(&batch[e * d..(e + 1) * d]);
                match &action {
                    Action::Discrete(a) => f.actions[row] = *a as f32,
                    Action::Continuous(v) => f.actions[row * act_dim..(row + 1) * act_dim].copy_from_slice(v),
                }
                f.logp[row] = logp;
                let step = self.step_env(e, &actor.env_action(&action))?;
                f.rewards[row] = step.reward as f32;
                self.returns[e] += step.reward;
                self.lengths[e] += 1;
                if step.terminated || step.truncated {
                    f.terminated[row] = step.terminated;
                    f.truncated[row] = step.truncated && !step.terminated;
                    if f.truncated[row] {
                        let mut last = step.observation.clone();
                        actor.filter().apply(&mut last);
                        f.final_obs.push((row as u32, last));
                    }
                    f.episodes.push(Episode { ret: self.returns[e], len: self.lengths[e] });
                    self.returns[e] = 0.0;
                    self.lengths[e] = 0;
                    self.obs[e] = self.envs[e].reset(None);
                } else {
                    self.obs[e] = step.observation;
                }
            }
        }
        for o in &self.obs {
            let mut last = o.clone();
            actor.filter().apply(&mut last);
            f.next_obs.extend(last);
        }
        Ok(f)
    }

    /// Runs `episodes` whole episodes on the first copy (fresh ones,
    /// reseeded from `seed`), greedily unless `explore`; the copy's
    /// training episode starts over afterwards.
    pub fn run_episodes(
        &mut self,
        actor: &Actor,
        episodes: u32,
        seed: u64,
        explore: bool,
        mut on_step: impl FnMut(&dyn Env),
    ) -> Result<Vec<Episode>, Error> {
        let mut done = Vec::new();
        for i in 0..episodes {
            let mut obs = self.envs[0].reset(Some(env_seed(seed, i)));
            on_step(self.envs[0].as_ref());
            let mut episode = Episode { ret: 0.0, len: 0 };
            loop {
                actor.filter().apply(&mut obs);
                let (action, _) = actor.act(&obs, 1, explore, &mut self.rng)?.remove(0);
                let step = self.step_env(0, &actor.env_action(&action))?;
                on_step(self.envs[0].as_ref());
                episode.ret += step.reward;
                episode.len += 1;
                if step.terminated || step.truncated {
                    break;
                }
                obs = step.observation;
            }
            done.push(episode);
        }
        self.obs[0] = self.envs[0].reset(None);
        self.returns[0] = 0.0;
        self.lengths[0] = 0;
        Ok(done)
    }
}

/// An env runner: an actor holding a [`Sampler`], sampling with the
/// weights the learner broadcasts.
#[wray_guest_core::actor]
pub struct EnvRunner {
    spec: EnvSpec,
    num_envs: u32,
    seed: u64,
    sampler: Option<Sampler>,
}

#[wray_guest_core::actor]
impl EnvRunner {
    /// A runner of `num_envs` copies of `spec`, seeded with `seed`. The
    /// copies are built on the first call (an error there is that call's).
    pub fn new(spec: EnvSpec, num_envs: u32, seed: u64) -> EnvRunner {
        EnvRunner { spec, num_envs, seed, sampler: None }
    }

    /// A fragment of `steps` steps per copy, acting with `weights`.
    pub fn sample(&mut self, weights: ObjectRef<Weights>, steps: u32, explore: bool) -> Result<Fragment, Error> {
        let actor = Actor::new(&wray_guest_core::get(&weights)?)?;
        built(&mut self.sampler, &self.spec, self.num_envs, self.seed)?.sample(&actor, steps, explore)
    }

    /// `episodes` whole episodes acting greedily with `weights` (evaluation).
    pub fn evaluate(&mut self, weights: ObjectRef<Weights>, episodes: u32, seed: u64) -> Result<Vec<Episode>, Error> {
        let actor = Actor::new(&wray_guest_core::get(&weights)?)?;
        built(&mut self.sampler, &self.spec, self.num_envs, self.seed)?.run_episodes(
            &actor,
            episodes,
            seed,
            false,
            |_| {},
        )
    }
}

/// The runner's sampler, built on first use.
fn built<'a>(
    sampler: &'a mut Option<Sampler>,
    spec: &EnvSpec,
    num_envs: u32,
    seed: u64,
) -> Result<&'a mut Sampler, Error> {
    let built = match sampler.take() {
        Some(s) => s,
        None => Sampler::new(spec, num_envs, seed)?,
    };
    Ok(sampler.insert(built))
}
