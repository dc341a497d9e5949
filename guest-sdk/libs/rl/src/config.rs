//! What every algorithm's config shares: the environment, the env runners,
//! the model, evaluation and the seed — and results.

use crate::env::{EnvSpec, MakeEnv};
use crate::runner::{Episode, MAX_ENVS_PER_RUNNER};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use wray_guest_core::{Code, Error};

/// Most env runner actors an algorithm may start.
pub const MAX_ENV_RUNNERS: u32 = 256;

/// Episodes the reported returns are averaged over (RLlib's
/// `metrics_num_episodes_for_smoothing`).
pub const SMOOTHING_EPISODES: usize = 100;

/// Most returns one [`TrainResult::episode_returns`] lists: an iteration of
/// many short episodes (a batch of 4 M steps may end a million) keeps only
/// its last ones, so a result stays small enough to send and print.
pub const MAX_ITERATION_RETURNS: usize = 10_000;

/// The environment, runners, model, evaluation and seed of an algorithm.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommonConfig {
    /// The environment.
    pub env: EnvSpec,
    /// Runner actors sampling in parallel; 0 samples in the driver.
    pub num_env_runners: u32,
    /// Environment copies each runner steps together.
    pub num_envs_per_env_runner: u32,
    /// CPUs each runner actor holds.
    pub num_cpus_per_env_runner: f64,
    /// Steps per copy per fragment; `None` picks it from the batch size.
    pub rollout_fragment_length: Option<u32>,
    /// Hidden layer sizes of the policy and value networks (RLlib's
    /// `fcnet_hiddens`).
    pub fcnet_hiddens: Vec<usize>,
    /// Standardize observations by running statistics (RLlib's
    /// `observation_filter="MeanStdFilter"`).
    pub observation_filter: bool,
    /// Evaluation runner actors; 0 evaluates in the driver.
    pub evaluation_num_env_runners: u32,
    /// Episodes per evaluation.
    pub evaluation_duration: u32,
    /// Seeds the networks, the environments and the sampling.
    pub seed: u64,
    /// A directory (granted to the job) to write every sampled step to, as
    /// JSON lines (RLlib's `output`; see `wray::rl::offline`).
    pub output: Option<String>,
}

impl Default for CommonConfig {
    fn default() -> Self {
        CommonConfig {
            env: EnvSpec::Named("CartPole-v1".into()),
            num_env_runners: 2,
            num_envs_per_env_runner: 1,
            num_cpus_per_env_runner: 1.0,
            rollout_fragment_length: None,
            fcnet_hiddens: vec![64, 64],
            observation_filter: false,
            evaluation_num_env_runners: 0,
            evaluation_duration: 10,
            seed: 0,
            output: None,
        }
    }
}

impl CommonConfig {
    pub(crate) fn check(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        if self.num_env_runners > MAX_ENV_RUNNERS || self.evaluation_num_env_runners > MAX_ENV_RUNNERS {
            return bad(format!("at most {MAX_ENV_RUNNERS} env runners"));
        }
        if self.num_envs_per_env_runner == 0 || self.num_envs_per_env_runner > MAX_ENVS_PER_RUNNER {
            return bad(format!("num_envs_per_env_runner must be in 1..={MAX_ENVS_PER_RUNNER}"));
        }
        if !(self.num_cpus_per_env_runner.is_finite() && self.num_cpus_per_env_runner >= 0.0) {
            return bad(format!("num_cpus_per_env_runner must be ≥ 0, got {}", self.num_cpus_per_env_runner));
        }
        if self.evaluation_duration == 0 {
            return bad("evaluation_duration must be at least one episode".into());
        }
        Ok(())
    }

    /// The environment's name.
    pub fn env_name(&self) -> &str {
        self.env.name()
    }
}

/// Builder methods every algorithm config has, named as RLlib's.
macro_rules! common_builders {
    ($t:ty) => {
        impl $t {
            /// Trains on a built-in environment (see [`crate::ENVIRONMENTS`]).
            pub fn environment(mut self, id: &str) -> Self {
                self.common.env = crate::env::EnvSpec::Named(id.to_string());
                self
            }

            /// Trains on your own environment: `make` builds one copy (a
            /// plain `fn`, so that every runner can call it).
            pub fn environment_fn(mut self, name: &str, make: crate::env::MakeEnv) -> Self {
                self.common.env = crate::config::custom_env(name, make);
                self
            }

            /// Runner actors sampling in parallel (0: the driver samples).
            pub fn env_runners(mut self, num_env_runners: u32) -> Self {
                self.common.num_env_runners = num_env_runners;
                self
            }

            /// Environment copies per runner.
            pub fn num_envs_per_env_runner(mut self, n: u32) -> Self {
                self.common.num_envs_per_env_runner = n;
                self
            }

            /// CPUs each runner actor holds (default 1).
            pub fn num_cpus_per_env_runner(mut self, cpus: f64) -> Self {
                self.common.num_cpus_per_env_runner = cpus;
                self
            }

            /// Steps per environment copy per fragment (default: the batch
            /// size split over all copies).
            pub fn rollout_fragment_length(mut self, steps: u32) -> Self {
                self.common.rollout_fragment_length = Some(steps);
                self
            }

            /// Hidden layer sizes of the networks (default `[64, 64]`).
            pub fn fcnet_hiddens(mut self, hiddens: &[usize]) -> Self {
                self.common.fcnet_hiddens = hiddens.to_vec();
                self
            }

            /// Standardize observations by running mean and deviation.
            pub fn observation_filter(mut self, on: bool) -> Self {
                self.common.observation_filter = on;
                self
            }

            /// Evaluation: runner actors (0: the driver) and episodes.
            pub fn evaluation(mut self, num_env_runners: u32, episodes: u32) -> Self {
                self.common.evaluation_num_env_runners = num_env_runners;
                self.common.evaluation_duration = episodes;
                self
            }

            /// The seed of everything random in a run.
            pub fn seed(mut self, seed: u64) -> Self {
                self.common.seed = seed;
                self
            }

            /// Writes every sampled step to a `.jsonl` file in `dir` (a
            /// directory the job was granted), one per run.
            pub fn output(mut self, dir: &str) -> Self {
                self.common.output = Some(dir.to_string());
                self
            }

            /// Overrides fields from a JSON object of the config's field
            /// names (`{"lr": 0.001, "num_env_runners": 1}`), as `--config`
            /// does; an unknown field or a wrong type is an error naming it.
            pub fn update_from_json(self, json: &str) -> Result<Self, wray_guest_core::Error> {
                crate::config::update_from_json(self, json)
            }
        }
    };
}
pub(crate) use common_builders;

pub(crate) fn custom_env(name: &str, make: MakeEnv) -> EnvSpec {
    EnvSpec::Custom { name: name.to_string(), make: Code::of(make) }
}

/// `config` with the fields of the JSON object `json` replaced. Fields of
/// the common part may be given at the top level or under `"common"`.
pub(crate) fn update_from_json<C>(config: C, json: &str) -> Result<C, Error>
where
    C: Serialize + for<'de> Deserialize<'de>,
{
    let invalid = |m: String| Error::InvalidArgument(m);
    let overrides: serde_json::Value =
        serde_json::from_str(json).map_err(|e| invalid(format!("--config is not JSON: {e}")))?;
    let serde_json::Value::Object(overrides) = overrides else {
        return Err(invalid("--config must be a JSON object of config fields".into()));
    };
    let mut value = serde_json::to_value(&config).map_err(|e| invalid(e.to_string()))?;
    let fields = value.as_object_mut().ok_or_else(|| invalid("a config is an object".into()))?;
    for (key, v) in overrides {
        if key == "env" {
            let id = v.as_str().ok_or_else(|| invalid("\"env\" must be an environment id".into()))?;
            crate::env::make(id)?;
            fields["common"]["env"] = serde_json::json!({ "Named": id });
        } else if fields.contains_key(&key) && key != "common" {
            fields.insert(key, v);
        } else if fields["common"].get(&key).is_some() {
            fields["common"][&key] = v;
        } else {
            let mut known: Vec<String> = fields.keys().filter(|k| *k != "common").cloned().collect();
            known.extend(fields["common"].as_object().into_iter().flat_map(|c| c.keys().cloned()));
            known.sort();
            return Err(invalid(format!("unknown config field {key:?}; the fields are {}", known.join(", "))));
        }
    }
    serde_json::from_value(value).map_err(|e| invalid(format!("--config: {e}")))
}

/// One training iteration's result.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainResult {
    /// Iterations so far (this one included).
    pub training_iteration: u64,
    /// Mean return of the last [`SMOOTHING_EPISODES`] episodes, across
    /// iterations (NaN before the first ends) — a window that moves slowly
    /// once episodes are long: at a return of 450 on CartPole a 4000-step
    /// iteration ends about 9 episodes, so the mean spans about 11
    /// iterations. RLlib 2.60 averages only the episodes that ended in the
    /// iteration (it clears its window each iteration); that figure is the
    /// mean of [`TrainResult::episode_returns`].
    pub episode_return_mean: f64,
    /// Their smallest return.
    pub episode_return_min: f64,
    /// Their largest return.
    pub episode_return_max: f64,
    /// Their mean length.
    pub episode_len_mean: f64,
    /// Episodes that ended in this iteration.
    pub num_episodes: u64,
    /// Their returns, in the order they were gathered (at most
    /// [`MAX_ITERATION_RETURNS`], the last ones; RLlib's
    /// `hist_stats/episode_reward`).
    pub episode_returns: Vec<f64>,
    /// Environment steps sampled in this iteration.
    pub num_env_steps_sampled: u64,
    /// Environment steps sampled so far.
    pub num_env_steps_sampled_lifetime: u64,
    /// Steps the learner trained on in this iteration.
    pub num_env_steps_trained: u64,
    /// Seconds this iteration took.
    pub time_this_iter_s: f64,
    /// Seconds of all iterations so far.
    pub time_total_s: f64,
    /// Seconds this iteration spent sampling (runners stepping their
    /// environments, fragments gathered).
    pub sample_time_s: f64,
    /// Seconds this iteration spent learning (advantages and SGD).
    pub learn_time_s: f64,
    /// The learner's statistics (loss terms and the like), by name.
    pub learner: Vec<(String, f64)>,
}

impl TrainResult {
    /// The result as Tune metrics (`episode_return_mean`, …, and each
    /// learner statistic as `learner/<name>`).
    pub fn metrics(&self) -> Vec<(String, f64)> {
        let mut m = vec![
            ("training_iteration".to_string(), self.training_iteration as f64),
            ("episode_return_mean".to_string(), self.episode_return_mean),
            ("episode_return_min".to_string(), self.episode_return_min),
            ("episode_return_max".to_string(), self.episode_return_max),
            ("episode_len_mean".to_string(), self.episode_len_mean),
            ("num_episodes".to_string(), self.num_episodes as f64),
            ("num_env_steps_sampled".to_string(), self.num_env_steps_sampled as f64),
            ("num_env_steps_sampled_lifetime".to_string(), self.num_env_steps_sampled_lifetime as f64),
            ("num_env_steps_trained".to_string(), self.num_env_steps_trained as f64),
            ("time_this_iter_s".to_string(), self.time_this_iter_s),
            ("time_total_s".to_string(), self.time_total_s),
            ("sample_time_s".to_string(), self.sample_time_s),
            ("learn_time_s".to_string(), self.learn_time_s),
        ];
        m.extend(self.learner.iter().map(|(k, v)| (format!("learner/{k}"), *v)));
        m
    }
}

/// The last [`SMOOTHING_EPISODES`] episodes' statistics.
#[derive(Clone, Default, Serialize, Deserialize)]
pub(crate) struct EpisodeWindow(VecDeque<Episode>);

impl EpisodeWindow {
    /// Adds the episodes a fragment ended to the window and counts them
    /// into this iteration's `result`.
    pub(crate) fn add(&mut self, episodes: &[Episode], result: &mut TrainResult) {
        self.extend(episodes);
        result.num_episodes += episodes.len() as u64;
        let returns = &mut result.episode_returns;
        returns.extend(episodes.iter().map(|e| e.ret));
        if returns.len() > MAX_ITERATION_RETURNS {
            returns.drain(..returns.len() - MAX_ITERATION_RETURNS);
        }
    }

    pub(crate) fn extend(&mut self, episodes: &[Episode]) {
        for e in episodes {
            if self.0.len() == SMOOTHING_EPISODES {
                self.0.pop_front();
            }
            self.0.push_back(*e);
        }
    }

    /// Fills the return and length fields of `r`.
    pub(crate) fn fill(&self, r: &mut TrainResult) {
        let n = self.0.len() as f64;
        if self.0.is_empty() {
            (r.episode_return_mean, r.episode_return_min, r.episode_return_max, r.episode_len_mean) =
                (f64::NAN, f64::NAN, f64::NAN, f64::NAN);
            return;
        }
        r.episode_return_mean = self.0.iter().map(|e| e.ret).sum::<f64>() / n;
        r.episode_return_min = self.0.iter().map(|e| e.ret).fold(f64::INFINITY, f64::min);
        r.episode_return_max = self.0.iter().map(|e| e.ret).fold(f64::NEG_INFINITY, f64::max);
        r.episode_len_mean = self.0.iter().map(|e| f64::from(e.len)).sum::<f64>() / n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn episodes(returns: impl IntoIterator<Item = u32>) -> Vec<Episode> {
        returns.into_iter().map(|r| Episode { ret: f64::from(r), len: r }).collect()
    }

    #[test]
    fn the_window_spans_iterations_and_each_result_lists_only_its_own_episodes() {
        let mut window = EpisodeWindow::default();
        let mut first = TrainResult::default();
        window.add(&episodes(1..=60), &mut first);
        window.fill(&mut first);
        assert_eq!((first.num_episodes, first.episode_returns.len()), (60, 60));
        assert_eq!(first.episode_return_mean, 30.5);

        // The second iteration's 60 episodes push the first 20 out of the
        // window of 100; its result lists its own 60 alone.
        let mut second = TrainResult::default();
        window.add(&episodes(101..=130), &mut second);
        window.add(&episodes(131..=160), &mut second);
        window.fill(&mut second);
        assert_eq!(second.num_episodes, 60);
        assert_eq!(second.episode_returns, (101..=160).map(f64::from).collect::<Vec<_>>());
        let expected = ((21..=60).sum::<u32>() + (101..=160).sum::<u32>()) as f64 / 100.0;
        assert_eq!(second.episode_return_mean, expected);
        assert_eq!((second.episode_return_min, second.episode_return_max), (21.0, 160.0));

        // An iteration of very many episodes keeps the last returns only.
        let mut many = TrainResult::default();
        let n = MAX_ITERATION_RETURNS as u32 + 5;
        window.add(&episodes(0..n), &mut many);
        assert_eq!(many.num_episodes, u64::from(n));
        assert_eq!(many.episode_returns.len(), MAX_ITERATION_RETURNS);
        assert_eq!(many.episode_returns[0], 5.0);
    }
}
