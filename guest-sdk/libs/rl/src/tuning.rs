//! Algorithms as Tune trainables (RLlib's algorithms passed to
//! `tune.Tuner`): [`PPOTrial`] and [`DQNTrial`] are trial actors for
//! `Tuner::<PPOTrial>::new(space)`. A trial's config is the algorithm's
//! default config with the sampled parameters set by name (`lr`,
//! `clip_param`, `num_env_runners`, `env`, …, as in `--config`); each
//! iteration reports [`TrainResult::metrics`](crate::TrainResult::metrics)
//! (`episode_return_mean`, …; a metric that is still NaN — no episode has
//! ended yet — is left out); checkpoints are the algorithm's, so PBT and
//! paused trials continue from them.

use crate::algorithm::Algorithm;
use crate::{DQN, PPO};
use wray_guest_core::Error;
use wray_tune::{Config, Metrics, Trainable, Value};

/// An algorithm driven by Tune.
pub struct RlTrainable<A>(A);

/// A Tune config as the JSON object `update_from_json` takes.
fn to_json(config: &Config) -> String {
    let fields: serde_json::Map<String, serde_json::Value> = config
        .0
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::Float(x) => serde_json::json!(x),
                Value::Int(i) => serde_json::json!(i),
                Value::Str(s) => serde_json::json!(s),
                Value::Bool(b) => serde_json::json!(b),
            };
            (k.clone(), v)
        })
        .collect();
    serde_json::Value::Object(fields).to_string()
}

impl<A: Algorithm> Trainable for RlTrainable<A> {
    fn setup(config: &Config) -> Result<Self, Error> {
        let config = A::update_config(A::Config::default(), &to_json(config))?;
        Ok(RlTrainable(A::build(config)?))
    }

    fn step(&mut self) -> Result<Metrics, Error> {
        let result = self.0.train()?;
        Ok(result.metrics().into_iter().filter(|(_, v)| !v.is_nan()).collect())
    }

    fn save_checkpoint(&self) -> Result<Vec<u8>, Error> {
        self.0.checkpoint_bytes()
    }

    fn load_checkpoint(&mut self, checkpoint: &[u8]) -> Result<(), Error> {
        self.0.restore_bytes(checkpoint, "from Tune")
    }
}

wray_tune::trainable!(PPOTrial, RlTrainable<PPO>);
wray_tune::trainable!(DQNTrial, RlTrainable<DQN>);
