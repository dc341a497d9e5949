//! Multi-agent RL (RLlib's `MultiAgentEnv` and `.multi_agent(policies,
//! policy_mapping_fn)`): environments where several agents act at once,
//! each agent's steps trained into the policy its id maps to. Policies are
//! PPO learners of their own ([`MultiAgentPPO`]); runner actors
//! ([`MultiAgentRunner`]) step the environment with every policy's weights.
//!
//! An agent's trajectory is a segment of its policy's fragment; an agent
//! whose episode has ended stops acting until the whole environment ends
//! (`MultiStep::done`, RLlib's `"__all__"`) and is reset.

use crate::Env;
use crate::algorithm::{Counters, message};
use crate::checkpoint;
use crate::config::{EpisodeWindow, TrainResult};
use crate::env::TimeLimit;
use crate::envs::CartPole;
use crate::group::{check_runner_cpus, runner_seed};
use crate::policy::{Actor, Head, Weights};
use crate::ppo::{Learner, PPOConfig};
use crate::runner::{Episode, Fragment};
use crate::spaces::{Action, Space};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use wray_guest_core::{ActorHandle, Code, Error, ObjectRef, Rng};

/// Most agents one environment may have, and most policies.
pub const MAX_AGENTS: usize = 256;

/// What one step of a multi-agent environment gives back, by agent id.
#[derive(Clone, Debug, Default)]
pub struct MultiStep {
    /// Observations of the agents that acted (their next, or for an agent
    /// whose episode ended, its last).
    pub observations: BTreeMap<String, Vec<f32>>,
    /// Their rewards.
    pub rewards: BTreeMap<String, f64>,
    /// Agents whose episode terminated.
    pub terminated: BTreeMap<String, bool>,
    /// Agents whose episode was cut short.
    pub truncated: BTreeMap<String, bool>,
    /// The whole environment's episode ended (RLlib's `"__all__"`).
    pub done: bool,
}

/// An environment with several agents (RLlib's `MultiAgentEnv`).
pub trait MultiAgentEnv {
    /// Every agent id.
    fn agents(&self) -> Vec<String>;
    /// An agent's observation space.
    fn observation_space(&self, agent: &str) -> Space;
    /// An agent's action space.
    fn action_space(&self, agent: &str) -> Space;
    /// Starts an episode: the first observation of every agent that acts.
    fn reset(&mut self, seed: Option<u64>) -> BTreeMap<String, Vec<f32>>;
    /// Applies one action per acting agent.
    fn step(&mut self, actions: &BTreeMap<String, Action>) -> Result<MultiStep, Error>;
}

/// Builds one copy of a multi-agent environment (a plain `fn`, as for
/// single-agent environments).
pub type MakeMultiAgentEnv = fn() -> Box<dyn MultiAgentEnv>;
/// Maps an agent id to the id of the policy that acts and learns for it.
pub type PolicyMapping = fn(&str) -> String;

/// RLlib's `MultiAgentCartPole`: `n` independent CartPole-v1 copies, agents
/// `agent_0`, `agent_1`, …; each agent's episode ends with its pole, the
/// environment's when every pole is down (or truncated at 500 steps).
pub struct MultiAgentCartPole {
    poles: Vec<TimeLimit<CartPole>>,
    active: Vec<bool>,
}

impl MultiAgentCartPole {
    /// `n` poles.
    pub fn new(n: usize) -> MultiAgentCartPole {
        MultiAgentCartPole {
            poles: (0..n).map(|_| TimeLimit::new(CartPole::new(), 500)).collect(),
            active: vec![false; n],
        }
    }

    fn index(agent: &str) -> Option<usize> {
        agent.strip_prefix("agent_")?.parse().ok()
    }
}

impl MultiAgentEnv for MultiAgentCartPole {
    fn agents(&self) -> Vec<String> {
        (0..self.poles.len()).map(|i| format!("agent_{i}")).collect()
    }
    fn observation_space(&self, _agent: &str) -> Space {
        CartPole::new().observation_space()
    }
    fn action_space(&self, _agent: &str) -> Space {
        Space::Discrete(2)
    }
    fn reset(&mut self, seed: Option<u64>) -> BTreeMap<String, Vec<f32>> {
        self.active.iter_mut().for_each(|a| *a = true);
        let agents = self.agents();
        agents
            .into_iter()
            .zip(&mut self.poles)
            .enumerate()
            .map(|(i, (id, pole))| (id, pole.reset(seed.map(|s| s.wrapping_add(i as u64)))))
            .collect()
    }
    fn step(&mut self, actions: &BTreeMap<String, Action>) -> Result<MultiStep, Error> {
        let mut out = MultiStep::default();
        for (agent, action) in actions {
            let i = MultiAgentCartPole::index(agent)
                .filter(|i| *i < self.poles.len() && self.active[*i])
                .ok_or_else(|| Error::InvalidArgument(format!("no acting agent {agent:?}")))?;
            let step = self.poles[i].step(action)?;
            self.active[i] = !(step.terminated || step.truncated);
            out.observations.insert(agent.clone(), step.observation);
            out.rewards.insert(agent.clone(), step.reward);
            out.terminated.insert(agent.clone(), step.terminated);
            out.truncated.insert(agent.clone(), step.truncated);
        }
        out.done = !self.active.iter().any(|a| *a);
        Ok(out)
    }
}

/// One agent's steps since its segment began.
#[derive(Default)]
struct Trajectory {
    obs: Vec<f32>,
    actions: Vec<f32>,
    logp: Vec<f32>,
    rewards: Vec<f32>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
    /// Truncated steps (index in this trajectory) and their last observation.
    finals: Vec<(u32, Vec<f32>)>,
    ret: f64,
    len: u32,
}

/// What a multi-agent runner sampled: a fragment per policy (a segment per
/// agent trajectory) and the environments' finished episodes (their return
/// summed over the agents).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MultiFragment {
    /// By policy id.
    pub fragments: BTreeMap<String, Fragment>,
    /// Whole episodes.
    pub episodes: Vec<Episode>,
}

/// An episode and each policy's share of its return.
pub type EpisodeShares = (Episode, BTreeMap<String, f64>);

/// Copies of a multi-agent environment and their episodes in progress.
pub struct MultiAgentSampler {
    envs: Vec<Box<dyn MultiAgentEnv>>,
    mapping: PolicyMapping,
    obs: Vec<BTreeMap<String, Vec<f32>>>,
    open: Vec<BTreeMap<String, Trajectory>>,
    returns: Vec<f64>,
    lengths: Vec<u32>,
    rng: Rng,
}

impl MultiAgentSampler {
    /// `num_envs` copies from `make`, their agents mapped by `mapping`.
    pub fn new(
        make: MakeMultiAgentEnv,
        mapping: PolicyMapping,
        num_envs: u32,
        seed: u64,
    ) -> Result<MultiAgentSampler, Error> {
        if num_envs == 0 || num_envs > crate::MAX_ENVS_PER_RUNNER {
            return Err(Error::InvalidArgument(format!(
                "num_envs_per_env_runner must be in 1..={}",
                crate::MAX_ENVS_PER_RUNNER
            )));
        }
        let mut envs = Vec::new();
        let mut obs = Vec::new();
        for i in 0..num_envs {
            let mut env = make();
            if env.agents().len() > MAX_AGENTS {
                return Err(Error::InvalidArgument(format!("more than {MAX_AGENTS} agents")));
            }
            obs.push(env.reset(Some(seed.wrapping_mul(7919).wrapping_add(u64::from(i) * 1000))));
            envs.push(env);
        }
        let n = envs.len();
        Ok(MultiAgentSampler {
            envs,
            mapping,
            obs,
            open: (0..n).map(|_| BTreeMap::new()).collect(),
            returns: vec![0.0; n],
            lengths: vec![0; n],
            rng: Rng::new(seed ^ 0x3A6E),
        })
    }

    /// Steps every copy `steps` times, each agent acting with its policy's
    /// actor (`actors` by policy id).
    pub fn sample(
        &mut self,
        actors: &BTreeMap<String, Actor>,
        steps: u32,
        explore: bool,
    ) -> Result<MultiFragment, Error> {
        let mut out = MultiFragment::default();
        for _ in 0..steps {
            // Group the acting agents by policy, act in one batch each.
            let mut by_policy: BTreeMap<String, Vec<(usize, String)>> = BTreeMap::new();
            for (e, obs) in self.obs.iter().enumerate() {
                for agent in obs.keys() {
                    by_policy.entry((self.mapping)(agent)).or_default().push((e, agent.clone()));
                }
            }
            let mut actions: Vec<BTreeMap<String, (Action, f32)>> = vec![BTreeMap::new(); self.envs.len()];
            for (policy, agents) in &by_policy {
                let actor = actors.get(policy).ok_or_else(|| {
                    Error::InvalidArgument(format!("agent {:?} maps to no policy {policy:?}", agents[0].1))
                })?;
                let batch: Vec<f32> = agents.iter().flat_map(|(e, a)| self.obs[*e][a].iter().copied()).collect();
                for ((e, agent), chosen) in
                    agents.iter().zip(actor.act(&batch, agents.len(), explore, &mut self.rng)?)
                {
                    actions[*e].insert(agent.clone(), chosen);
                }
            }
            for (e, chosen) in actions.into_iter().enumerate() {
                let env_actions: BTreeMap<String, Action> = chosen
                    .iter()
                    .map(|(a, (action, _))| {
                        let actor = &actors[&(self.mapping)(a)];
                        (a.clone(), actor.env_action(action))
                    })
                    .collect();
                let step = self.envs[e].step(&env_actions)?;
                self.lengths[e] += 1;
                for (agent, (action, logp)) in chosen {
                    let t = self.open[e].entry(agent.clone()).or_default();
                    t.obs.extend(&self.obs[e][&agent]);
                    match action {
                        Action::Discrete(a) => t.actions.push(a as f32),
                        Action::Continuous(v) => t.actions.extend(v),
                    }
                    t.logp.push(logp);
                    let reward = step.rewards.get(&agent).copied().unwrap_or(0.0);
                    t.rewards.push(reward as f32);
                    t.ret += reward;
                    self.returns[e] += reward;
                    t.len += 1;
                    let terminated = step.terminated.get(&agent).copied().unwrap_or(false);
                    let truncated = !terminated && step.truncated.get(&agent).copied().unwrap_or(false);
                    t.terminated.push(terminated);
                    t.truncated.push(truncated || (step.done && !terminated));
                    let next = step.observations.get(&agent).cloned();
                    if terminated || truncated || step.done {
                        if !terminated {
                            t.finals.push((t.rewards.len() as u32 - 1, next.clone().unwrap_or_default()));
                        }
                        let done = self.open[e].remove(&agent).unwrap_or_default();
                        close(&mut out, (self.mapping)(&agent), done, None);
                        self.obs[e].remove(&agent);
                    } else if let Some(next) = next {
                        self.obs[e].insert(agent, next);
                    }
                }
                if step.done {
                    out.episodes.push(Episode { ret: self.returns[e], len: self.lengths[e] });
                    self.returns[e] = 0.0;
                    self.lengths[e] = 0;
                    for (agent, t) in std::mem::take(&mut self.open[e]) {
                        close(&mut out, (self.mapping)(&agent), t, None);
                    }
                    self.obs[e] = self.envs[e].reset(None);
                }
            }
        }
        // The fragment ends: every open trajectory becomes a segment that
        // continues from its agent's current observation.
        for e in 0..self.envs.len() {
            for (agent, t) in std::mem::take(&mut self.open[e]) {
                let next = self.obs[e].get(&agent).cloned();
                close(&mut out, (self.mapping)(&agent), t, next);
            }
        }
        Ok(out)
    }

    /// Whole greedy episodes on the first copy: each episode's return
    /// summed over the agents, and each policy's share.
    pub fn run_episodes(
        &mut self,
        actors: &BTreeMap<String, Actor>,
        episodes: u32,
        seed: u64,
    ) -> Result<Vec<EpisodeShares>, Error> {
        let mut done = Vec::new();
        for i in 0..episodes {
            let mut obs = self.envs[0].reset(Some(seed.wrapping_add(u64::from(i))));
            let (mut episode, mut shares) = (Episode { ret: 0.0, len: 0 }, BTreeMap::new());
            loop {
                let mut actions = BTreeMap::new();
                for (agent, o) in &obs {
                    let policy = (self.mapping)(agent);
                    let actor =
                        actors.get(&policy).ok_or_else(|| Error::InvalidArgument(format!("no policy {policy:?}")))?;
                    let (action, _) = actor.act(o, 1, false, &mut self.rng)?.remove(0);
                    actions.insert(agent.clone(), actor.env_action(&action));
                }
                let step = self.envs[0].step(&actions)?;
                episode.len += 1;
                for (agent, r) in &step.rewards {
                    episode.ret += r;
                    *shares.entry((self.mapping)(agent)).or_insert(0.0) += r;
                }
                if step.done {
                    break;
                }
                obs = step
                    .observations
                    .into_iter()
                    .filter(|(a, _)| {
                        !step.terminated.get(a).copied().unwrap_or(false)
                            && !step.truncated.get(a).copied().unwrap_or(false)
                    })
                    .collect();
            }
            done.push((episode, shares));
        }
        self.obs[0] = self.envs[0].reset(None);
        self.open[0].clear();
        self.returns[0] = 0.0;
        self.lengths[0] = 0;
        Ok(done)
    }
}

/// Appends a finished (or interrupted) trajectory to its policy's fragment
/// as one segment; `next` is the observation it continues from (none when
/// its episode ended).
fn close(out: &mut MultiFragment, policy: String, t: Trajectory, next: Option<Vec<f32>>) {
    if t.len == 0 {
        return;
    }
    let obs_dim = t.obs.len() / t.len as usize;
    let f = out.fragments.entry(policy).or_insert_with(|| Fragment {
        obs_dim: obs_dim as u32,
        act_dim: (t.actions.len() / t.len as usize) as u32,
        ..Fragment::default()
    });
    let base = f.rows() as u32;
    f.obs.extend(t.obs);
    f.actions.extend(t.actions);
    f.logp.extend(t.logp);
    f.rewards.extend(t.rewards);
    f.terminated.extend(t.terminated);
    f.truncated.extend(t.truncated);
    f.final_obs.extend(t.finals.into_iter().map(|(i, o)| (base + i, o)));
    if next.is_none() {
        // The agent's episode ended here: its return is the policy's.
        f.episodes.push(Episode { ret: t.ret, len: t.len });
    }
    f.next_obs.extend(next.unwrap_or_else(|| vec![0.0; obs_dim]));
    f.lengths.push(t.len);
    f.num_envs = f.lengths.len() as u32;
    f.steps = 0;
}

/// A multi-agent env runner: an actor holding a [`MultiAgentSampler`].
#[wray_guest_core::actor]
pub struct MultiAgentRunner {
    make: Code<MakeMultiAgentEnv>,
    mapping: Code<PolicyMapping>,
    num_envs: u32,
    seed: u64,
    sampler: Option<MultiAgentSampler>,
}

#[wray_guest_core::actor]
impl MultiAgentRunner {
    /// A runner of `num_envs` copies of `make`'s environment.
    pub fn new(
        make: Code<MakeMultiAgentEnv>,
        mapping: Code<PolicyMapping>,
        num_envs: u32,
        seed: u64,
    ) -> MultiAgentRunner {
        MultiAgentRunner { make, mapping, num_envs, seed, sampler: None }
    }

    /// A fragment per policy, `steps` steps per copy, acting with `weights`.
    pub fn sample(
        &mut self,
        weights: ObjectRef<BTreeMap<String, Weights>>,
        steps: u32,
        explore: bool,
    ) -> Result<MultiFragment, Error> {
        let actors = actors(&wray_guest_core::get(&weights)?)?;
        let sampler = match self.sampler.take() {
            Some(s) => s,
            None => MultiAgentSampler::new(self.make.get()?, self.mapping.get()?, self.num_envs, self.seed)?,
        };
        self.sampler.insert(sampler).sample(&actors, steps, explore)
    }
}

fn actors(weights: &BTreeMap<String, Weights>) -> Result<BTreeMap<String, Actor>, Error> {
    weights.iter().map(|(p, w)| Ok((p.clone(), Actor::new(w)?))).collect()
}

/// The multi-agent part of a config: the environment, the policies and
/// which agent each serves.
#[derive(Clone, Serialize, Deserialize)]
pub struct MultiAgentConfig {
    /// The environment's name (results, checkpoints).
    pub env_name: String,
    /// Builds the environment.
    pub make: Code<MakeMultiAgentEnv>,
    /// Policy ids.
    pub policies: Vec<String>,
    /// Maps agent ids to policy ids.
    pub mapping: Code<PolicyMapping>,
}

impl PPOConfig {
    /// PPO over a multi-agent environment: one policy (its own networks)
    /// per id in `policies`, each agent's steps trained into the policy
    /// `mapping` names (RLlib's `.multi_agent(policies=...,
    /// policy_mapping_fn=...)`). Build it with `build_multi_agent`.
    pub fn multi_agent(
        self,
        env_name: &str,
        make: MakeMultiAgentEnv,
        policies: &[&str],
        mapping: PolicyMapping,
    ) -> MultiAgentPPOConfig {
        MultiAgentPPOConfig {
            ppo: self,
            multi_agent: MultiAgentConfig {
                env_name: env_name.to_string(),
                make: Code::of(make),
                policies: policies.iter().map(|p| p.to_string()).collect(),
                mapping: Code::of(mapping),
            },
        }
    }
}

/// PPO's settings with a multi-agent environment and its policies.
#[derive(Clone, Serialize, Deserialize)]
pub struct MultiAgentPPOConfig {
    /// The learning settings, shared by every policy (the common part's
    /// `env` is not used; `observation_filter` must stay off).
    pub ppo: PPOConfig,
    /// The environment and the policies.
    pub multi_agent: MultiAgentConfig,
}

impl MultiAgentPPOConfig {
    /// Starts it.
    pub fn build_multi_agent(self) -> Result<MultiAgentPPO, Error> {
        MultiAgentPPO::new(self)
    }
}

/// What a multi-agent checkpoint holds.
#[derive(Serialize, Deserialize)]
struct State {
    iteration: u64,
    timesteps: u64,
    time_total_s: f64,
    /// Per policy: policy, log-std and value weights.
    policies: BTreeMap<String, crate::ppo::Snapshot>,
}

/// Multi-agent PPO: a PPO learner per policy, runners stepping the
/// environment with all of them.
pub struct MultiAgentPPO {
    config: MultiAgentPPOConfig,
    learners: BTreeMap<String, Learner>,
    local: MultiAgentSampler,
    runners: Vec<ActorHandle<MultiAgentRunner>>,
    episodes: EpisodeWindow,
    policy_episodes: BTreeMap<String, EpisodeWindow>,
    rng: Rng,
    counts: Counters,
}

impl MultiAgentPPO {
    /// Its name in checkpoints.
    pub const NAME: &'static str = "MultiAgentPPO";

    /// Starts it: checks that every agent maps to a listed policy whose
    /// spaces agree, builds a learner per policy and the runners.
    pub fn new(config: MultiAgentPPOConfig) -> Result<MultiAgentPPO, Error> {
        let (c, ma) = (&config.ppo, &config.multi_agent);
        c.common.check()?;
        let bad = |m: String| Err(Error::InvalidArgument(format!("multi-agent PPO: {m}")));
        if ma.policies.is_empty() || ma.policies.len() > MAX_AGENTS {
            return bad(format!("1..={MAX_AGENTS} policies"));
        }
        if c.common.observation_filter {
            return bad("observation_filter is not supported with several policies".into());
        }
        let (make, mapping) = (ma.make.get()?, ma.mapping.get()?);
        let probe = make();
        let mut rng = Rng::new(c.common.seed);
        let mut learners = BTreeMap::new();
        for agent in probe.agents() {
            let policy = mapping(&agent);
            if !ma.policies.contains(&policy) {
                return bad(format!("agent {agent:?} maps to {policy:?}, which is not one of {:?}", ma.policies));
            }
            let (obs_space, action_space) = (probe.observation_space(&agent), probe.action_space(&agent));
            if let Some((dim, head)) = learners.get(&policy).cloned()
                && (dim != obs_space.dim() || head != Head::for_space(&action_space))
            {
                return bad(format!("the agents of policy {policy:?} have different spaces"));
            }
            learners.insert(policy, (obs_space.dim(), Head::for_space(&action_space)));
        }
        if let Some(unused) = ma.policies.iter().find(|p| !learners.contains_key(*p)) {
            return bad(format!("no agent maps to the policy {unused:?}"));
        }
        let learners = learners
            .into_iter()
            .map(|(p, (dim, head))| Ok((p, Learner::new(c, dim, head, &mut rng)?)))
            .collect::<Result<BTreeMap<_, _>, Error>>()?;
        // Evaluation runs in the driver: only the sampling runners hold CPUs.
        check_runner_cpus(c.common.num_env_runners, 0, c.common.num_cpus_per_env_runner)?;
        let envs = c.common.num_envs_per_env_runner;
        let local = MultiAgentSampler::new(make, mapping, envs, c.common.seed)?;
        let runners = (1..=u64::from(c.common.num_env_runners))
            .map(|i| {
                MultiAgentRunner::options().num_cpus(c.common.num_cpus_per_env_runner).try_remote(
                    ma.make,
                    ma.mapping,
                    envs,
                    runner_seed(c.common.seed, i),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MultiAgentPPO {
            config,
            learners,
            local,
            runners,
            episodes: EpisodeWindow::default(),
            policy_episodes: BTreeMap::new(),
            rng,
            counts: Counters::default(),
        })
    }

    /// Every policy's acting weights.
    pub fn weights(&self) -> Result<BTreeMap<String, Weights>, Error> {
        self.learners.iter().map(|(p, l)| Ok((p.clone(), l.weights()?))).collect()
    }

    /// Iterations trained.
    pub fn iteration(&self) -> u64 {
        self.counts.iteration
    }

    /// One iteration: sample with every policy, then train each on its
    /// agents' steps. The result's returns are whole episodes' (summed over
    /// the agents); `learner` holds each policy's statistics as
    /// `<policy>/<name>`, with `<policy>/episode_return_mean`.
    pub fn train(&mut self) -> Result<TrainResult, Error> {
        let start = Instant::now();
        let weights = self.weights()?;
        let c = &self.config.ppo;
        let copies = self.config.ppo.common.num_envs_per_env_runner * (self.runners.len() as u32).max(1);
        let steps = c.common.rollout_fragment_length.unwrap_or_else(|| c.train_batch_size.div_ceil(copies));
        let sampled: Vec<MultiFragment> = if self.runners.is_empty() {
            vec![self.local.sample(&actors(&weights)?, steps, true)?]
        } else {
            let shared = wray_guest_core::put(&weights);
            let calls: Vec<_> = self.runners.iter().map(|r| r.sample(shared.clone(), steps, true)).collect();
            wray_guest_core::get_all(&calls)?
        };
        let mut result = TrainResult { sample_time_s: start.elapsed().as_secs_f64(), ..TrainResult::default() };
        let mut per_policy: BTreeMap<String, Vec<Fragment>> = BTreeMap::new();
        for m in sampled {
            self.episodes.add(&m.episodes, &mut result);
            for (p, f) in m.fragments {
                self.policy_episodes.entry(p.clone()).or_default().extend(&f.episodes);
                result.num_env_steps_trained += f.rows() as u64;
                per_policy.entry(p).or_default().push(f);
            }
        }
        result.num_env_steps_sampled = u64::from(steps) * u64::from(copies);
        let what = format!("multi-agent PPO iteration {}", self.counts.iteration + 1);
        for (p, fragments) in &per_policy {
            let learner = self.learners.get_mut(p).ok_or_else(|| Error::InvalidArgument(format!("no policy {p:?}")))?;
            let stats = learner
                .update(
                    fragments,
                    &self.config.ppo,
                    &mut self.rng,
                    &format!("{what}, policy {p}"),
                    self.counts.iteration,
                )
                .map_err(|e| Error::InvalidArgument(message(&e)))?;
            result.learner.extend(stats.into_iter().map(|(k, v)| (format!("{p}/{k}"), v)));
            let mut own = TrainResult::default();
            self.policy_episodes.entry(p.clone()).or_default().fill(&mut own);
            result.learner.push((format!("{p}/episode_return_mean"), own.episode_return_mean));
        }
        self.counts.finish(&mut result, start, &self.episodes);
        Ok(result)
    }

    /// `episodes` greedy episodes in the driver: their mean return (summed
    /// over the agents), and each policy's mean share.
    pub fn evaluate(&mut self, episodes: u32) -> Result<(f64, BTreeMap<String, f64>), Error> {
        let actors = actors(&self.weights()?)?;
        let done = self.local.run_episodes(&actors, episodes.max(1), self.config.ppo.common.seed ^ 0xE7A1)?;
        let n = done.len() as f64;
        let mean = done.iter().map(|(e, _)| e.ret).sum::<f64>() / n;
        let mut shares: BTreeMap<String, f64> = BTreeMap::new();
        for (_, s) in &done {
            for (p, r) in s {
                *shares.entry(p.clone()).or_insert(0.0) += r / n;
            }
        }
        Ok((mean, shares))
    }

    /// Ends the algorithm and kills its runners, freeing their CPUs
    /// (RLlib's `algo.stop()`); dropping it does the same.
    pub fn stop(self) {
        drop(self)
    }

    /// Writes a checkpoint into `dir`; returns the directory.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<PathBuf, Error> {
        let policies = self
            .learners
            .iter()
            .map(|(p, l)| Ok((p.clone(), l.snapshot()?)))
            .collect::<Result<BTreeMap<_, _>, Error>>()?;
        let c = &self.counts;
        let state = State { iteration: c.iteration, timesteps: c.timesteps, time_total_s: c.time_total_s, policies };
        let bytes = checkpoint::encode(Self::NAME, &self.config.multi_agent.env_name, &state)?;
        checkpoint::write(dir.as_ref(), &bytes)
    }

    /// Loads a checkpoint of the same environment and policies.
    pub fn restore(&mut self, path: impl AsRef<Path>) -> Result<(), Error> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let state: State =
            checkpoint::decode(&checkpoint::read(path)?, &origin, Self::NAME, Some(&self.config.multi_agent.env_name))?;
        for (p, learner) in &mut self.learners {
            let (policy, log_std, value) = state
                .policies
                .get(p)
                .ok_or_else(|| Error::InvalidArgument(format!("checkpoint {origin}: no policy {p:?}")))?;
            learner.load(self.config.ppo.lr, policy, log_std, value)?;
        }
        self.counts =
            Counters { iteration: state.iteration, timesteps: state.timesteps, time_total_s: state.time_total_s };
        Ok(())
    }
}

impl Drop for MultiAgentPPO {
    fn drop(&mut self) {
        for r in &self.runners {
            wray_guest_core::kill(r);
        }
    }
}
