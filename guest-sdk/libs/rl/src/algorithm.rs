//! What PPO and DQN share: the [`Algorithm`] trait (how the CLI job and
//! Tune drive either) and [`Core`], the runners, counters and episode
//! statistics every algorithm keeps.

use crate::config::{CommonConfig, EpisodeWindow, TrainResult};
use crate::env::Env;
use crate::group::Runners;
use crate::policy::{Actor, Weights};
use crate::runner::Episode;
use crate::spaces::Action;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use std::time::Instant;
use wray_guest_core::{Error, Rng};

/// An RL algorithm (RLlib's `Algorithm`): built from its config, trained an
/// iteration at a time, evaluated, saved and restored.
pub trait Algorithm: Sized {
    /// Its name in checkpoints and messages (`"PPO"`).
    const NAME: &'static str;
    /// Its config.
    type Config: Clone + Default + Serialize + DeserializeOwned;
    /// Starts it (its runners, its networks).
    fn build(config: Self::Config) -> Result<Self, Error>;
    /// One iteration.
    fn train(&mut self) -> Result<TrainResult, Error>;
    /// Greedy episodes on the evaluation runners (or in the driver): their
    /// mean return and the episodes.
    fn evaluate(&mut self) -> Result<(f64, Vec<Episode>), Error>;
    /// Writes a checkpoint into `dir`; returns the directory.
    fn save(&self, dir: &Path) -> Result<PathBuf, Error>;
    /// Loads a checkpoint of this algorithm on the same environment.
    fn restore(&mut self, path: &Path) -> Result<(), Error>;
    /// A checkpoint as bytes (what `save` writes to its file).
    fn checkpoint_bytes(&self) -> Result<Vec<u8>, Error>;
    /// Loads checkpoint bytes (`origin` names them in errors).
    fn restore_bytes(&mut self, bytes: &[u8], origin: &str) -> Result<(), Error>;
    /// The algorithm as a checkpoint left it, its saved config changed by
    /// `adjust` first (the environment and the networks' shapes must stay).
    fn from_checkpoint_with(path: &Path, adjust: impl FnOnce(Self::Config) -> Self::Config) -> Result<Self, Error>;
    /// The config it runs with.
    fn config(&self) -> &Self::Config;
    /// The part of a config every algorithm has.
    fn common(config: &Self::Config) -> &CommonConfig;
    /// The same, to change.
    fn common_mut(config: &mut Self::Config) -> &mut CommonConfig;
    /// Iterations trained.
    fn iteration(&self) -> u64;
    /// Greedy episodes in the driver (see the algorithms' `rollout`).
    fn rollout(&mut self, episodes: u32, seed: u64, on_step: &mut dyn FnMut(&dyn Env)) -> Result<Vec<Episode>, Error>;

    /// `config` with fields replaced from a JSON object (see
    /// `PPOConfig::update_from_json`).
    fn update_config(config: Self::Config, json: &str) -> Result<Self::Config, Error> {
        crate::config::update_from_json(config, json)
    }
}

/// An error's message without the kind its `Display` starts with, for
/// wrapping it in a message of the same kind.
pub(crate) fn message(e: &Error) -> String {
    match e {
        Error::InvalidArgument(m) => m.clone(),
        other => other.to_string(),
    }
}

/// Iterations, environment steps and seconds so far.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) iteration: u64,
    pub(crate) timesteps: u64,
    pub(crate) time_total_s: f64,
}

impl Counters {
    /// Counts an iteration that began at `start` into `result` (whose
    /// `num_env_steps_sampled` and `sample_time_s` are set), with the
    /// returns of `episodes`.
    pub(crate) fn finish(&mut self, result: &mut TrainResult, start: Instant, episodes: &EpisodeWindow) {
        self.iteration += 1;
        self.timesteps += result.num_env_steps_sampled;
        let secs = start.elapsed().as_secs_f64();
        self.time_total_s += secs;
        result.training_iteration = self.iteration;
        result.num_env_steps_sampled_lifetime = self.timesteps;
        result.time_this_iter_s = secs;
        result.learn_time_s = secs - result.sample_time_s;
        result.time_total_s = self.time_total_s;
        episodes.fill(result);
    }
}

/// The runners, counters and recent episodes of an algorithm.
pub(crate) struct Core {
    pub(crate) runners: Runners,
    pub(crate) episodes: EpisodeWindow,
    pub(crate) rng: Rng,
    pub(crate) obs_dim: usize,
    pub(crate) counts: Counters,
    /// Where sampled steps are written (`CommonConfig::output`).
    output: Option<PathBuf>,
}

impl Core {
    pub(crate) fn start(common: &CommonConfig, algorithm: &str) -> Result<Core, Error> {
        let runners = Runners::start(common)?;
        let obs_dim = runners.spaces().0.dim();
        // One file per run, named so that a second run beside it does not
        // append to the first's.
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let output = common.output.as_ref().map(|dir| Path::new(dir).join(format!("{algorithm}-{stamp}.jsonl")));
        Ok(Core {
            runners,
            episodes: EpisodeWindow::default(),
            rng: Rng::new(common.seed),
            obs_dim,
            counts: Counters::default(),
            output,
        })
    }

    /// Writes sampled fragments to the run's output file, if any.
    pub(crate) fn record(&self, fragments: &[crate::Fragment]) -> Result<(), Error> {
        match &self.output {
            Some(file) => crate::offline::write_steps(file, fragments),
            None => Ok(()),
        }
    }

    /// Counts an iteration that began at `start` into `result`.
    pub(crate) fn finish(&mut self, result: &mut TrainResult, start: Instant) {
        self.counts.finish(result, start, &self.episodes);
    }

    pub(crate) fn evaluate(&mut self, weights: &Weights, common: &CommonConfig) -> Result<(f64, Vec<Episode>), Error> {
        let seed = common.seed ^ 0xE7A1 ^ self.counts.iteration;
        let episodes = self.runners.evaluate(weights, common.evaluation_duration, seed)?;
        let mean = episodes.iter().map(|e| e.ret).sum::<f64>() / episodes.len().max(1) as f64;
        Ok((mean, episodes))
    }

    pub(crate) fn compute_single_action(
        &mut self,
        weights: &Weights,
        observation: &[f32],
        explore: bool,
    ) -> Result<Action, Error> {
        if observation.len() != self.obs_dim {
            return Err(Error::InvalidArgument(format!(
                "an observation of {} values for a space of {}",
                observation.len(),
                self.obs_dim
            )));
        }
        let actor = Actor::new(weights)?;
        let mut obs = observation.to_vec();
        actor.filter().apply(&mut obs);
        let (action, _) = actor.act(&obs, 1, explore, &mut self.rng)?.remove(0);
        Ok(actor.env_action(&action))
    }
}

/// The methods every algorithm has beyond [`Algorithm`], written once.
macro_rules! algorithm_methods {
    ($t:ty, $config:ty) => {
        impl $t {
            /// Iterations trained.
            pub fn iteration(&self) -> u64 {
                self.core.counts.iteration
            }

            /// Greedy episodes on the evaluation runners (or in the
            /// driver): their mean return and the episodes.
            pub fn evaluate(&mut self) -> Result<(f64, Vec<crate::Episode>), wray_guest_core::Error> {
                let weights = self.weights()?;
                self.core.evaluate(&weights, &self.config.common)
            }

            /// Runs `episodes` greedy episodes in the driver, their
            /// environments reset with seeds derived from `seed`, calling
            /// `on_step` with the environment after each reset and step
            /// (for rendering).
            pub fn rollout(
                &mut self,
                episodes: u32,
                seed: u64,
                on_step: impl FnMut(&dyn crate::Env),
            ) -> Result<Vec<crate::Episode>, wray_guest_core::Error> {
                let weights = self.weights()?;
                self.core.runners.rollout(&weights, episodes, seed, on_step)
            }

            /// The action the policy takes for one raw observation: the
            /// best (or, with `explore`, as the runners sample), clipped to
            /// a box's bounds.
            pub fn compute_single_action(
                &mut self,
                observation: &[f32],
                explore: bool,
            ) -> Result<crate::Action, wray_guest_core::Error> {
                let weights = self.weights()?;
                self.core.compute_single_action(&weights, observation, explore)
            }

            /// Samples `steps` steps on every environment copy of the
            /// runners with the current policy (as `train` does, without
            /// learning from them): for offline data, say
            /// (`wray::rl::offline::write_steps`).
            pub fn sample(
                &mut self,
                steps: u32,
                explore: bool,
            ) -> Result<Vec<crate::Fragment>, wray_guest_core::Error> {
                let weights = self.weights()?;
                self.core.runners.sample(&weights, steps, explore)
            }

            /// The environment's action space.
            pub fn action_space(&self) -> crate::Space {
                self.core.runners.spaces().1
            }

            /// The environment's observation space.
            pub fn observation_space(&self) -> crate::Space {
                self.core.runners.spaces().0
            }

            /// Ends the algorithm and kills its env runners, freeing the
            /// CPUs they hold for the next algorithm (RLlib's
            /// `algo.stop()`); dropping it does the same. Runners live as
            /// long as their algorithm: a second one built while the first
            /// lives waits for CPUs the first one's runners hold.
            pub fn stop(self) {
                drop(self)
            }

            /// Writes a checkpoint (`checkpoint_bytes`) into `dir`,
            /// created if missing; returns the directory.
            pub fn save(&self, dir: impl AsRef<std::path::Path>) -> Result<std::path::PathBuf, wray_guest_core::Error> {
                crate::checkpoint::write(dir.as_ref(), &self.checkpoint_bytes()?)
            }

            /// Loads a checkpoint (the directory or its file) of this
            /// algorithm on the same environment; one of another algorithm
            /// or environment is an error naming it.
            pub fn restore(&mut self, path: impl AsRef<std::path::Path>) -> Result<(), wray_guest_core::Error> {
                let path = path.as_ref();
                self.restore_bytes(&crate::checkpoint::read(path)?, &path.display().to_string())
            }

            /// The algorithm as a checkpoint left it: its config, weights
            /// and counters.
            pub fn from_checkpoint(path: impl AsRef<std::path::Path>) -> Result<Self, wray_guest_core::Error> {
                Self::from_checkpoint_with(path, |config| config)
            }

            /// [`Self::from_checkpoint`] with the saved config changed by
            /// `adjust` first (fewer runners to evaluate, say); the
            /// environment and the networks' shapes must stay the
            /// checkpoint's.
            pub fn from_checkpoint_with(
                path: impl AsRef<std::path::Path>,
                adjust: impl FnOnce($config) -> $config,
            ) -> Result<Self, wray_guest_core::Error> {
                let path = path.as_ref();
                let (bytes, origin) = (crate::checkpoint::read(path)?, path.display().to_string());
                let saved: crate::checkpoint::SavedConfig<$config> =
                    crate::checkpoint::decode(&bytes, &origin, Self::NAME, None)?;
                let mut algo = Self::new(adjust(saved.config))?;
                algo.restore_bytes(&bytes, &origin)?;
                Ok(algo)
            }
        }

        impl crate::algorithm::Algorithm for $t {
            const NAME: &'static str = <$t>::NAME;
            type Config = $config;
            fn build(config: Self::Config) -> Result<Self, wray_guest_core::Error> {
                <$t>::new(config)
            }
            fn train(&mut self) -> Result<crate::TrainResult, wray_guest_core::Error> {
                <$t>::train(self)
            }
            fn evaluate(&mut self) -> Result<(f64, Vec<crate::Episode>), wray_guest_core::Error> {
                <$t>::evaluate(self)
            }
            fn save(&self, dir: &std::path::Path) -> Result<std::path::PathBuf, wray_guest_core::Error> {
                <$t>::save(self, dir)
            }
            fn restore(&mut self, path: &std::path::Path) -> Result<(), wray_guest_core::Error> {
                <$t>::restore(self, path)
            }
            fn checkpoint_bytes(&self) -> Result<Vec<u8>, wray_guest_core::Error> {
                <$t>::checkpoint_bytes(self)
            }
            fn restore_bytes(&mut self, bytes: &[u8], origin: &str) -> Result<(), wray_guest_core::Error> {
                <$t>::restore_bytes(self, bytes, origin)
            }
            fn from_checkpoint_with(
                path: &std::path::Path,
                adjust: impl FnOnce($config) -> $config,
            ) -> Result<Self, wray_guest_core::Error> {
                <$t>::from_checkpoint_with(path, adjust)
            }
            fn config(&self) -> &$config {
                &self.config
            }
            fn common(config: &$config) -> &crate::CommonConfig {
                &config.common
            }
            fn common_mut(config: &mut $config) -> &mut crate::CommonConfig {
                &mut config.common
            }
            fn iteration(&self) -> u64 {
                self.core.counts.iteration
            }
            fn rollout(
                &mut self,
                episodes: u32,
                seed: u64,
                on_step: &mut dyn FnMut(&dyn crate::Env),
            ) -> Result<Vec<crate::Episode>, wray_guest_core::Error> {
                <$t>::rollout(self, episodes, seed, |e| on_step(e))
            }
        }
    };
}
pub(crate) use algorithm_methods;
