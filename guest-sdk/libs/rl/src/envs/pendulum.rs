//! Pendulum-v1 (`gymnasium/envs/classic_control/pendulum.py`, g = 10).

use crate::env::{Env, EnvRng, Step};
use crate::spaces::{Action, Space};
use std::f64::consts::PI;
use wray_guest_core::Error;

const MAX_SPEED: f64 = 8.0;
const MAX_TORQUE: f32 = 2.0;
const DT: f64 = 0.05;
const G: f64 = 10.0;
const M: f64 = 1.0;
const L: f64 = 1.0;

/// A pendulum to swing up and hold upright with a torque in [-2, 2]. The
/// reward is minus `θ² + 0.1·θ̇² + 0.001·u²` (θ normalized to [-π, π)).
/// Never terminates; the time limit truncates it.
pub struct Pendulum {
    /// `[θ, θ̇]`.
    state: [f64; 2],
    rng: EnvRng,
}

impl Default for Pendulum {
    fn default() -> Self {
        Pendulum::new()
    }
}

impl Pendulum {
    /// A pendulum (call `reset` before stepping it).
    pub fn new() -> Pendulum {
        Pendulum { state: [0.0; 2], rng: EnvRng::new(super::DEFAULT_SEED) }
    }

    /// The state `[θ, θ̇]`.
    pub fn state(&self) -> [f64; 2] {
        self.state
    }

    /// Puts the pendulum in `state`.
    pub fn set_state(&mut self, state: [f64; 2]) {
        self.state = state;
    }

    fn observation(&self) -> Vec<f32> {
        let [theta, theta_dot] = self.state;
        vec![theta.cos() as f32, theta.sin() as f32, theta_dot as f32]
    }
}

/// Python's `((x + π) % 2π) - π` (a floored modulo).
fn angle_normalize(x: f64) -> f64 {
    (x + PI).rem_euclid(2.0 * PI) - PI
}

impl Env for Pendulum {
    fn observation_space(&self) -> Space {
        let high = [1.0, 1.0, MAX_SPEED as f32];
        Space::Box { low: high.iter().map(|h| -h).collect(), high: high.to_vec() }
    }

    fn action_space(&self) -> Space {
        Space::uniform_box(1, -MAX_TORQUE, MAX_TORQUE)
    }

    fn reset(&mut self, seed: Option<u64>) -> Vec<f32> {
        if let Some(seed) = seed {
            self.rng = EnvRng::new(seed);
        }
        self.state = [self.rng.uniform(-PI, PI), self.rng.uniform(-1.0, 1.0)];
        self.observation()
    }

    fn step(&mut self, action: &Action) -> Result<Step, Error> {
        // Gymnasium clips a torque beyond ±2; wray refuses it (a policy's
        // sampled actions are clipped before they get here, as RLlib does).
        let space = self.action_space();
        let u = match action {
            Action::Continuous(v) if space.contains(action) => v[0],
            _ => return Err(space.outside(action)),
        };
        let [theta, theta_dot] = self.state;
        // NumPy 2 keeps `u` in f32 through `0.001 * u**2` and `3.0 * u`.
        let costs = angle_normalize(theta).powi(2) + 0.1 * theta_dot.powi(2) + f64::from(0.001f32 * (u * u));
        let mut new_theta_dot =
            theta_dot + (3.0 * G / (2.0 * L) * theta.sin() + f64::from(3.0f32 / (M * L * L) as f32 * u)) * DT;
        new_theta_dot = new_theta_dot.clamp(-MAX_SPEED, MAX_SPEED);
        let new_theta = theta + new_theta_dot * DT;
        self.state = [new_theta, new_theta_dot];
        Ok(Step { observation: self.observation(), reward: -costs, terminated: false, truncated: false })
    }
}
