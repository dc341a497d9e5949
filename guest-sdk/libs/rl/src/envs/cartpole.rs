//! CartPole-v1 (`gymnasium/envs/classic_control/cartpole.py`).

use crate::env::{Env, EnvRng, Step};
use crate::spaces::{Action, Space};
use wray_guest_core::Error;

const GRAVITY: f64 = 9.8;
const MASS_CART: f64 = 1.0;
const MASS_POLE: f64 = 0.1;
const TOTAL_MASS: f64 = MASS_POLE + MASS_CART;
/// Half the pole's length.
const LENGTH: f64 = 0.5;
const POLE_MASS_LENGTH: f64 = MASS_POLE * LENGTH;
const FORCE_MAG: f64 = 10.0;
/// Seconds between state updates.
const TAU: f64 = 0.02;
const THETA_THRESHOLD: f64 = 12.0 * 2.0 * std::f64::consts::PI / 360.0;
const X_THRESHOLD: f64 = 2.4;

/// A pole on a cart: push the cart left (0) or right (1) to keep the pole
/// up. Reward 1 per step (the terminating one included); the episode ends
/// when |x| > 2.4 or |θ| > 12°. Explicit Euler integration, as Gymnasium's
/// default `kinematics_integrator`.
pub struct CartPole {
    /// `[x, ẋ, θ, θ̇]`.
    state: [f64; 4],
    rng: EnvRng,
}

impl Default for CartPole {
    fn default() -> Self {
        CartPole::new()
    }
}

impl CartPole {
    /// A cart pole (call `reset` before stepping it).
    pub fn new() -> CartPole {
        CartPole { state: [0.0; 4], rng: EnvRng::new(super::DEFAULT_SEED) }
    }

    /// The state `[x, ẋ, θ, θ̇]`.
    pub fn state(&self) -> [f64; 4] {
        self.state
    }

    /// Puts the cart and pole in `state`.
    pub fn set_state(&mut self, state: [f64; 4]) {
        self.state = state;
    }
}

impl Env for CartPole {
    fn observation_space(&self) -> Space {
        let high = [X_THRESHOLD as f32 * 2.0, f32::INFINITY, THETA_THRESHOLD as f32 * 2.0, f32::INFINITY];
        Space::Box { low: high.iter().map(|h| -h).collect(), high: high.to_vec() }
    }

    fn action_space(&self) -> Space {
        Space::Discrete(2)
    }

    fn reset(&mut self, seed: Option<u64>) -> Vec<f32> {
        if let Some(seed) = seed {
            self.rng = EnvRng::new(seed);
        }
        self.state = std::array::from_fn(|_| self.rng.uniform(-0.05, 0.05));
        self.state.iter().map(|x| *x as f32).collect()
    }

    fn step(&mut self, action: &Action) -> Result<Step, Error> {
        let action = super::discrete(action, 2)?;
        let [mut x, mut x_dot, mut theta, mut theta_dot] = self.state;
        let force = if action == 1 { FORCE_MAG } else { -FORCE_MAG };
        let (sin, cos) = (theta.sin(), theta.cos());
        let temp = (force + POLE_MASS_LENGTH * (theta_dot * theta_dot) * sin) / TOTAL_MASS;
        let theta_acc = (GRAVITY * sin - cos * temp) / (LENGTH * (4.0 / 3.0 - MASS_POLE * (cos * cos) / TOTAL_MASS));
        let x_acc = temp - POLE_MASS_LENGTH * theta_acc * cos / TOTAL_MASS;
        x += TAU * x_dot;
        x_dot += TAU * x_acc;
        theta += TAU * theta_dot;
        theta_dot += TAU * theta_acc;
        self.state = [x, x_dot, theta, theta_dot];
        let terminated =
            !(-X_THRESHOLD..=X_THRESHOLD).contains(&x) || !(-THETA_THRESHOLD..=THETA_THRESHOLD).contains(&theta);
        Ok(Step {
            observation: self.state.iter().map(|v| *v as f32).collect(),
            reward: 1.0,
            terminated,
            truncated: false,
        })
    }

    fn render(&self) -> String {
        // The track from -2.4 to 2.4 in 49 cells, the cart at x, the pole's
        // lean as a character.
        let cell = ((self.state[0] + X_THRESHOLD) / (2.0 * X_THRESHOLD) * 48.0).round().clamp(0.0, 48.0) as usize;
        let lean = match self.state[2] {
            t if t < -0.05 => '\\',
            t if t > 0.05 => '/',
            _ => '|',
        };
        let mut track: Vec<char> = vec!['-'; 49];
        track[cell] = lean;
        format!("{}  x={:+.3} θ={:+.3}", track.into_iter().collect::<String>(), self.state[0], self.state[2])
    }
}
