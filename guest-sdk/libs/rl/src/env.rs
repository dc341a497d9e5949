//! The environment interface (Gymnasium's `Env`), the time limit that
//! `gymnasium.make` wraps around the built-in ones, and how an environment
//! is named so that every env runner — a Wasm instance of its own — can
//! build its copies.

use crate::envs;
use crate::spaces::{Action, Space};
use serde::{Deserialize, Serialize};
use wray_guest_core::{Code, Error, Rng};

/// What one step of an environment gives back.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The observation after the step.
    pub observation: Vec<f32>,
    /// The step's reward.
    pub reward: f64,
    /// The episode ended in a terminal state (no value after it).
    pub terminated: bool,
    /// The episode was cut short (a time limit): the state still has a
    /// value, which PPO bootstraps from.
    pub truncated: bool,
}

/// An environment, as Gymnasium's `Env`: reset it, then step it with
/// actions from its action space until an episode terminates or is
/// truncated, then reset it again.
///
/// Implement it for your own type to train on it; hand the runners a
/// function that builds one (`PPOConfig::environment_fn`).
pub trait Env {
    /// The space of observations.
    fn observation_space(&self) -> Space;
    /// The space of actions.
    fn action_space(&self) -> Space;
    /// Starts an episode and returns its first observation. `Some(seed)`
    /// reseeds the environment's randomness; `None` continues it.
    fn reset(&mut self, seed: Option<u64>) -> Vec<f32>;
    /// Applies `action`. An action outside the action space is an error.
    fn step(&mut self, action: &Action) -> Result<Step, Error>;
    /// The state as text (`wray rl evaluate --render text`); empty if the
    /// environment has no text form.
    fn render(&self) -> String {
        String::new()
    }
}

impl<E: Env + ?Sized> Env for Box<E> {
    fn observation_space(&self) -> Space {
        (**self).observation_space()
    }
    fn action_space(&self) -> Space {
        (**self).action_space()
    }
    fn reset(&mut self, seed: Option<u64>) -> Vec<f32> {
        (**self).reset(seed)
    }
    fn step(&mut self, action: &Action) -> Result<Step, Error> {
        (**self).step(action)
    }
    fn render(&self) -> String {
        (**self).render()
    }
}

/// Truncates episodes after `max_steps` steps (Gymnasium's `TimeLimit`,
/// which `gymnasium.make` adds from the environment's registration).
pub struct TimeLimit<E> {
    env: E,
    max_steps: u32,
    elapsed: u32,
}

impl<E: Env> TimeLimit<E> {
    /// `env`, truncated after `max_steps` steps.
    pub fn new(env: E, max_steps: u32) -> TimeLimit<E> {
        TimeLimit { env, max_steps, elapsed: 0 }
    }

    /// The wrapped environment.
    pub fn inner(&self) -> &E {
        &self.env
    }

    /// The wrapped environment, mutably.
    pub fn inner_mut(&mut self) -> &mut E {
        &mut self.env
    }
}

impl<E: Env> Env for TimeLimit<E> {
    fn observation_space(&self) -> Space {
        self.env.observation_space()
    }
    fn action_space(&self) -> Space {
        self.env.action_space()
    }
    fn reset(&mut self, seed: Option<u64>) -> Vec<f32> {
        self.elapsed = 0;
        self.env.reset(seed)
    }
    fn step(&mut self, action: &Action) -> Result<Step, Error> {
        let mut step = self.env.step(action)?;
        self.elapsed += 1;
        if self.elapsed >= self.max_steps {
            step.truncated = true;
        }
        Ok(step)
    }
    fn render(&self) -> String {
        self.env.render()
    }
}

/// The built-in environments, by their Gymnasium ids.
pub const ENVIRONMENTS: &[&str] = &["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "Pendulum-v1"];

/// A built-in environment by its Gymnasium id, with its registered time
/// limit, as `gymnasium.make(id)`. An unknown id is an error listing the
/// available ones.
pub fn make(id: &str) -> Result<Box<dyn Env>, Error> {
    Ok(match id {
        "CartPole-v1" => Box::new(TimeLimit::new(envs::CartPole::new(), 500)),
        "Acrobot-v1" => Box::new(TimeLimit::new(envs::Acrobot::new(), 500)),
        "MountainCar-v0" => Box::new(TimeLimit::new(envs::MountainCar::new(), 200)),
        "Pendulum-v1" => Box::new(TimeLimit::new(envs::Pendulum::new(), 200)),
        _ => {
            return Err(Error::InvalidArgument(format!(
                "unknown environment {id:?}; the available ones are {} (or pass your own with environment_fn)",
                ENVIRONMENTS.join(", ")
            )));
        }
    })
}

/// A function building one copy of a user's environment. It must be a
/// plain `fn` (not a closure): runners are other instances of the job's
/// component and find it by its index in the component's function table.
pub type MakeEnv = fn() -> Box<dyn Env>;

/// How the runners build their environments.
#[derive(Clone, Serialize, Deserialize)]
pub enum EnvSpec {
    /// A built-in environment by id.
    Named(String),
    /// The user's environment: a name (for results and checkpoints) and the
    /// function that builds it.
    Custom {
        /// Its name.
        name: String,
        /// Builds one copy.
        make: Code<MakeEnv>,
    },
}

impl EnvSpec {
    /// The environment's name.
    pub fn name(&self) -> &str {
        match self {
            EnvSpec::Named(id) => id,
            EnvSpec::Custom { name, .. } => name,
        }
    }

    /// Builds one copy.
    pub fn make(&self) -> Result<Box<dyn Env>, Error> {
        match self {
            EnvSpec::Named(id) => make(id),
            EnvSpec::Custom { make, .. } => Ok((make.get()?)()),
        }
    }
}

/// An environment's random numbers: uniform `f64`s from the SDK's seeded
/// generator (Gymnasium draws from NumPy's; the distributions are the
/// same, the streams are not).
pub struct EnvRng(Rng);

impl EnvRng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> EnvRng {
        EnvRng(Rng::new(seed))
    }

    /// Uniform in `[low, high)`.
    pub fn uniform(&mut self, low: f64, high: f64) -> f64 {
        let unit = (self.0.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        low + (high - low) * unit
    }
}
