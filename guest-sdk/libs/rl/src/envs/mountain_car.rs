//! MountainCar-v0 (`gymnasium/envs/classic_control/mountain_car.py`).

use crate::env::{Env, EnvRng, Step};
use crate::spaces::{Action, Space};
use wray_guest_core::Error;

const MIN_POSITION: f64 = -1.2;
const MAX_POSITION: f64 = 0.6;
const MAX_SPEED: f64 = 0.07;
const GOAL_POSITION: f64 = 0.5;
const GOAL_VELOCITY: f64 = 0.0;
const FORCE: f64 = 0.001;
const GRAVITY: f64 = 0.0025;

/// A car in a valley: accelerate left (0), not at all (1) or right (2) to
/// rock up to the flag at 0.5. Reward -1 per step.
pub struct MountainCar {
    /// `[position, velocity]`.
    state: [f64; 2],
    rng: EnvRng,
}

impl Default for MountainCar {
    fn default() -> Self {
        MountainCar::new()
    }
}

impl MountainCar {
    /// A car (call `reset` before stepping it).
    pub fn new() -> MountainCar {
        MountainCar { state: [0.0; 2], rng: EnvRng::new(super::DEFAULT_SEED) }
    }

    /// The state `[position, velocity]`.
    pub fn state(&self) -> [f64; 2] {
        self.state
    }

    /// Puts the car in `state`.
    pub fn set_state(&mut self, state: [f64; 2]) {
        self.state = state;
    }
}

impl Env for MountainCar {
    fn observation_space(&self) -> Space {
        Space::Box {
            low: vec![MIN_POSITION as f32, -MAX_SPEED as f32],
            high: vec![MAX_POSITION as f32, MAX_SPEED as f32],
        }
    }

    fn action_space(&self) -> Space {
        Space::Discrete(3)
    }

    fn reset(&mut self, seed: Option<u64>) -> Vec<f32> {
        if let Some(seed) = seed {
            self.rng = EnvRng::new(seed);
        }
        self.state = [self.rng.uniform(-0.6, -0.4), 0.0];
        self.state.iter().map(|v| *v as f32).collect()
    }

    fn step(&mut self, action: &Action) -> Result<Step, Error> {
        let action = super::discrete(action, 3)?;
        let [mut position, mut velocity] = self.state;
        velocity += (action as f64 - 1.0) * FORCE + (3.0 * position).cos() * (-GRAVITY);
        velocity = velocity.clamp(-MAX_SPEED, MAX_SPEED);
        position += velocity;
        position = position.clamp(MIN_POSITION, MAX_POSITION);
        if position == MIN_POSITION && velocity < 0.0 {
            velocity = 0.0;
        }
        let terminated = position >= GOAL_POSITION && velocity >= GOAL_VELOCITY;
        self.state = [position, velocity];
        Ok(Step {
            observation: self.state.iter().map(|v| *v as f32).collect(),
            reward: -1.0,
            terminated,
            truncated: false,
        })
    }
}
