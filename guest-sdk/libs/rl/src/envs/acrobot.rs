//! Acrobot-v1 (`gymnasium/envs/classic_control/acrobot.py`, the "book"
//! dynamics, no torque noise).

use crate::env::{Env, EnvRng, Step};
use crate::spaces::{Action, Space};
use std::f64::consts::PI;
use wray_guest_core::Error;

/// Integration time step, seconds.
const DT: f64 = 0.2;
const LINK_LENGTH_1: f64 = 1.0;
const LINK_MASS_1: f64 = 1.0;
const LINK_MASS_2: f64 = 1.0;
const LINK_COM_POS_1: f64 = 0.5;
const LINK_COM_POS_2: f64 = 0.5;
const LINK_MOI: f64 = 1.0;
const MAX_VEL_1: f64 = 4.0 * PI;
const MAX_VEL_2: f64 = 9.0 * PI;
const AVAIL_TORQUE: [f64; 3] = [-1.0, 0.0, 1.0];

/// Two links hanging from a joint: torque the middle joint (-1, 0, +1) to
/// swing the tip above the bar. Reward -1 per step until it is there.
pub struct Acrobot {
    /// `[θ1, θ2, θ̇1, θ̇2]`.
    state: [f64; 4],
    rng: EnvRng,
}

impl Default for Acrobot {
    fn default() -> Self {
        Acrobot::new()
    }
}

impl Acrobot {
    /// An acrobot (call `reset` before stepping it).
    pub fn new() -> Acrobot {
        Acrobot { state: [0.0; 4], rng: EnvRng::new(super::DEFAULT_SEED) }
    }

    /// The state `[θ1, θ2, θ̇1, θ̇2]`.
    pub fn state(&self) -> [f64; 4] {
        self.state
    }

    /// Puts the links in `state`.
    pub fn set_state(&mut self, state: [f64; 4]) {
        self.state = state;
    }

    fn observation(&self) -> Vec<f32> {
        let s = self.state;
        [s[0].cos(), s[0].sin(), s[1].cos(), s[1].sin(), s[2], s[3]].iter().map(|v| *v as f32).collect()
    }
}

/// The derivative of `[θ1, θ2, θ̇1, θ̇2, torque]`.
fn dsdt(s: [f64; 5]) -> [f64; 5] {
    let (m1, m2, l1, lc1, lc2, i1, i2, g) =
        (LINK_MASS_1, LINK_MASS_2, LINK_LENGTH_1, LINK_COM_POS_1, LINK_COM_POS_2, LINK_MOI, LINK_MOI, 9.8);
    let [theta1, theta2, dtheta1, dtheta2, a] = s;
    let d1 = m1 * lc1.powi(2) + m2 * (l1.powi(2) + lc2.powi(2) + 2.0 * l1 * lc2 * theta2.cos()) + i1 + i2;
    let d2 = m2 * (lc2.powi(2) + l1 * lc2 * theta2.cos()) + i2;
    let phi2 = m2 * lc2 * g * (theta1 + theta2 - PI / 2.0).cos();
    let phi1 = -m2 * l1 * lc2 * dtheta2.powi(2) * theta2.sin() - 2.0 * m2 * l1 * lc2 * dtheta2 * dtheta1 * theta2.sin()
        + (m1 * lc1 + m2 * l1) * g * (theta1 - PI / 2.0).cos()
        + phi2;
    let ddtheta2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * dtheta1.powi(2) * theta2.sin() - phi2)
        / (m2 * lc2.powi(2) + i2 - d2.powi(2) / d1);
    let ddtheta1 = -(d2 * ddtheta2 + phi1) / d1;
    [dtheta1, dtheta2, ddtheta1, ddtheta2, 0.0]
}

/// One classic Runge-Kutta step of `dt` (Gymnasium's `rk4` over `[0, dt]`).
fn rk4(y0: [f64; 5], dt: f64) -> [f64; 5] {
    let dt2 = dt / 2.0;
    let add = |y: [f64; 5], h: f64, k: [f64; 5]| std::array::from_fn(|i| y[i] + h * k[i]);
    let k1 = dsdt(y0);
    let k2 = dsdt(add(y0, dt2, k1));
    let k3 = dsdt(add(y0, dt2, k2));
    let k4 = dsdt(add(y0, dt, k3));
    std::array::from_fn(|i| y0[i] + dt / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]))
}

/// `x` moved into `[lo, hi]` by whole periods.
fn wrap(mut x: f64, lo: f64, hi: f64) -> f64 {
    let diff = hi - lo;
    while x > hi {
        x -= diff;
    }
    while x < lo {
        x += diff;
    }
    x
}

impl Env for Acrobot {
    fn observation_space(&self) -> Space {
        let high = [1.0, 1.0, 1.0, 1.0, MAX_VEL_1 as f32, MAX_VEL_2 as f32];
        Space::Box { low: high.iter().map(|h| -h).collect(), high: high.to_vec() }
    }

    fn action_space(&self) -> Space {
        Space::Discrete(3)
    }

    fn reset(&mut self, seed: Option<u64>) -> Vec<f32> {
        if let Some(seed) = seed {
            self.rng = EnvRng::new(seed);
        }
        // Gymnasium draws the state in f64 and keeps it as f32.
        self.state = std::array::from_fn(|_| self.rng.uniform(-0.1, 0.1) as f32 as f64);
        self.observation()
    }

    fn step(&mut self, action: &Action) -> Result<Step, Error> {
        let torque = AVAIL_TORQUE[super::discrete(action, 3)? as usize];
        let s = self.state;
        let ns = rk4([s[0], s[1], s[2], s[3], torque], DT);
        self.state = [
            wrap(ns[0], -PI, PI),
            wrap(ns[1], -PI, PI),
            ns[2].clamp(-MAX_VEL_1, MAX_VEL_1),
            ns[3].clamp(-MAX_VEL_2, MAX_VEL_2),
        ];
        let s = self.state;
        let terminated = -s[0].cos() - (s[1] + s[0]).cos() > 1.0;
        Ok(Step {
            observation: self.observation(),
            reward: if terminated { 0.0 } else { -1.0 },
            terminated,
            truncated: false,
        })
    }
}
