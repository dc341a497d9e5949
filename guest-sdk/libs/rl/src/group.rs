//! The runners an algorithm samples and evaluates with: `num_env_runners`
//! actors (or, with none, a sampler in the driver, as RLlib's local env
//! runner), and the evaluation runners.

use crate::config::CommonConfig;
use crate::policy::{Actor, Weights};
use crate::runner::{EnvRunner, Episode, Fragment, Sampler};
use crate::spaces::Space;
use wray_guest_core::{ActorHandle, Error};

pub(crate) struct Runners {
    /// The driver's own sampler: the spaces, sampling without runner
    /// actors, evaluating without evaluation runners.
    local: Sampler,
    remote: Vec<ActorHandle<EnvRunner>>,
    evaluation: Vec<ActorHandle<EnvRunner>>,
    /// Copies per runner (the local sampler's when there are no actors).
    envs_per_runner: u32,
}

/// Runners hold their CPUs for the algorithm's life: more than the cluster
/// has would leave some waiting for good (Ray warns and waits; a job that
/// can never start is better told so).
pub(crate) fn check_runner_cpus(sampling: u32, evaluating: u32, cpus_each: f64) -> Result<(), Error> {
    let runners = sampling + evaluating;
    let needed = f64::from(runners) * cpus_each;
    let total = wray_guest_core::cluster_resources().get("CPU").copied().unwrap_or(0.0);
    if needed > total + 1e-9 {
        return Err(Error::InvalidArgument(format!(
            "{runners} env runners ({sampling} sampling, {evaluating} evaluating) at {cpus_each} CPU each need \
             {needed} CPUs; the cluster has {total}: lower num_env_runners, the evaluation runners or \
             num_cpus_per_env_runner"
        )));
    }
    Ok(())
}

/// Seeds of runner `i` (the local sampler is 0) and of evaluation runners.
pub(crate) fn runner_seed(seed: u64, i: u64) -> u64 {
    seed.wrapping_add(i.wrapping_mul(0x2545_F491_4F6C_DD1D))
}

impl Runners {
    pub(crate) fn start(common: &CommonConfig) -> Result<Runners, Error> {
        common.check()?;
        check_runner_cpus(common.num_env_runners, common.evaluation_num_env_runners, common.num_cpus_per_env_runner)?;
        let envs = common.num_envs_per_env_runner;
        let local = Sampler::new(&common.env, envs, runner_seed(common.seed, 0))?;
        let start = |i: u64| {
            EnvRunner::options().num_cpus(common.num_cpus_per_env_runner).try_remote(
                common.env.clone(),
                envs,
                runner_seed(common.seed, i),
            )
        };
        let remote = (1..=u64::from(common.num_env_runners)).map(start).collect::<Result<Vec<_>, _>>()?;
        let evaluation = (0..u64::from(common.evaluation_num_env_runners))
            .map(|i| start(1_000_000 + i))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Runners { local, remote, evaluation, envs_per_runner: envs })
    }

    pub(crate) fn spaces(&self) -> (Space, Space) {
        self.local.spaces()
    }

    /// Environment copies sampling in parallel.
    pub(crate) fn total_envs(&self) -> u32 {
        self.envs_per_runner * (self.remote.len() as u32).max(1)
    }

    /// One fragment per runner (in runner order, so that a seeded run is
    /// repeatable), all acting with `weights`, put in the store once.
    pub(crate) fn sample(&mut self, weights: &Weights, steps: u32, explore: bool) -> Result<Vec<Fragment>, Error> {
        if self.remote.is_empty() {
            return Ok(vec![self.local.sample(&Actor::new(weights)?, steps, explore)?]);
        }
        let shared = wray_guest_core::put(weights);
        let calls: Vec<_> = self.remote.iter().map(|r| r.sample(shared.clone(), steps, explore)).collect();
        wray_guest_core::get_all(&calls)
    }

    /// `episodes` greedy episodes, split over the evaluation runners.
    pub(crate) fn evaluate(&mut self, weights: &Weights, episodes: u32, seed: u64) -> Result<Vec<Episode>, Error> {
        if self.evaluation.is_empty() {
            return self.local.run_episodes(&Actor::new(weights)?, episodes, seed, false, |_| {});
        }
        let shared = wray_guest_core::put(weights);
        let n = self.evaluation.len() as u32;
        let calls: Vec<_> = self
            .evaluation
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let share = episodes / n + u32::from((i as u32) < episodes % n);
                r.evaluate(shared.clone(), share, runner_seed(seed, i as u64))
            })
            .collect();
        Ok(wray_guest_core::get_all(&calls)?.into_iter().flatten().collect())
    }

    /// Runs whole episodes in the driver, calling `on_step` with the
    /// environment after the reset and after each step (rendering).
    pub(crate) fn rollout(
        &mut self,
        weights: &Weights,
        episodes: u32,
        seed: u64,
        on_step: impl FnMut(&dyn crate::Env),
    ) -> Result<Vec<Episode>, Error> {
        self.local.run_episodes(&Actor::new(weights)?, episodes, seed, false, on_step)
    }
}

impl Drop for Runners {
    fn drop(&mut self) {
        for r in self.remote.iter().chain(&self.evaluation) {
            wray_guest_core::kill(r);
        }
    }
}
