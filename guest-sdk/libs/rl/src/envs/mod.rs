//! Gymnasium's classic-control environments, step for step: the same
//! constants, the same integrators, the same order of floating-point
//! operations (in `f64`, with observations cast to `f32` as Gymnasium
//! does), the same termination rules. Checked transition by transition
//! against Gymnasium's own (`tests/reference/gym_transitions.py`).
//!
//! Each keeps its state public through `state`/`set_state`, so that a test
//! can put it where Gymnasium was and compare one step.

mod acrobot;
mod cartpole;
mod mountain_car;
mod pendulum;

pub use acrobot::Acrobot;
pub use cartpole::CartPole;
pub use mountain_car::MountainCar;
pub use pendulum::Pendulum;

/// The seed an environment starts from when `reset(None)` is its first.
const DEFAULT_SEED: u64 = 0x5EED;

/// The index of a discrete `action` of `n`, or the error naming both.
fn discrete(action: &crate::Action, n: u32) -> Result<u32, wray_guest_core::Error> {
    match action {
        crate::Action::Discrete(a) if *a < n => Ok(*a),
        other => Err(crate::Space::Discrete(n).outside(other)),
    }
}

#[cfg(test)]
mod tests {
    //! Every environment against Gymnasium's own transitions
    //! (`tests/reference/gym_transitions.py`): each step from Gymnasium's
    //! state before it, and each whole episode from its first state, with
    //! the time limit `make` adds.

    use super::*;
    use crate::env::{Env, TimeLimit};
    use crate::spaces::Action;
    use serde_json::Value;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1.0)
    }

    fn floats(v: &Value) -> Vec<f64> {
        v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
    }

    /// An environment whose state can be set, by its id.
    enum Any {
        CartPole(TimeLimit<CartPole>),
        Acrobot(TimeLimit<Acrobot>),
        MountainCar(TimeLimit<MountainCar>),
        Pendulum(TimeLimit<Pendulum>),
    }

    impl Any {
        fn new(id: &str) -> Any {
            match id {
                "CartPole-v1" => Any::CartPole(TimeLimit::new(CartPole::new(), 500)),
                "Acrobot-v1" => Any::Acrobot(TimeLimit::new(Acrobot::new(), 500)),
                "MountainCar-v0" => Any::MountainCar(TimeLimit::new(MountainCar::new(), 200)),
                "Pendulum-v1" => Any::Pendulum(TimeLimit::new(Pendulum::new(), 200)),
                other => panic!("no environment {other}"),
            }
        }
        fn env(&mut self) -> &mut dyn Env {
            match self {
                Any::CartPole(e) => e,
                Any::Acrobot(e) => e,
                Any::MountainCar(e) => e,
                Any::Pendulum(e) => e,
            }
        }
        fn set(&mut self, s: &[f64]) {
            match self {
                Any::CartPole(e) => e.inner_mut().set_state([s[0], s[1], s[2], s[3]]),
                Any::Acrobot(e) => e.inner_mut().set_state([s[0], s[1], s[2], s[3]]),
                Any::MountainCar(e) => e.inner_mut().set_state([s[0], s[1]]),
                Any::Pendulum(e) => e.inner_mut().set_state([s[0], s[1]]),
            }
        }
        fn state(&self) -> Vec<f64> {
            match self {
                Any::CartPole(e) => e.inner().state().to_vec(),
                Any::Acrobot(e) => e.inner().state().to_vec(),
                Any::MountainCar(e) => e.inner().state().to_vec(),
                Any::Pendulum(e) => e.inner().state().to_vec(),
            }
        }
    }

    fn action(id: &str, a: &Value) -> Action {
        if id == "Pendulum-v1" {
            Action::Continuous(vec![floats(a)[0] as f32])
        } else {
            Action::Discrete(a.as_u64().unwrap() as u32)
        }
    }

    #[test]
    fn every_transition_is_gymnasiums() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../tests/data/gym_transitions.jsonl");
        let text = std::fs::read_to_string(path).unwrap();
        let mut checked = 0;
        for line in text.lines() {
            let episode: Value = serde_json::from_str(line).unwrap();
            let id = episode["env"].as_str().unwrap();
            let steps = episode["steps"].as_array().unwrap();
            // Each step from Gymnasium's state before it.
            let mut one = Any::new(id);
            for (i, s) in steps.iter().enumerate() {
                one.set(&floats(&s["before"]));
                let step = one.env().step(&action(id, &s["action"])).unwrap();
                let what = format!("{id} seed {} step {i}", episode["seed"]);
                for (a, b) in one.state().iter().zip(floats(&s["after"])) {
                    assert!(close(*a, b, 1e-12), "{what}: state {:?} vs {:?}", one.state(), s["after"]);
                }
                for (a, b) in step.observation.iter().zip(floats(&s["obs"])) {
                    assert!(
                        close(f64::from(*a), b, 1e-6),
                        "{what}: observation {:?} vs {}",
                        step.observation,
                        s["obs"]
                    );
                }
                assert!(close(step.reward, s["reward"].as_f64().unwrap(), 1e-9), "{what}: reward {}", step.reward);
                assert_eq!(step.terminated, s["terminated"].as_bool().unwrap(), "{what}: terminated");
                checked += 1;
            }
            // The whole episode from its first state: the same end, by
            // termination or by the time limit.
            let mut run = Any::new(id);
            run.env().reset(Some(0));
            run.set(&floats(&steps[0]["before"]));
            for (i, s) in steps.iter().enumerate() {
                let step = run.env().step(&action(id, &s["action"])).unwrap();
                let what = format!("{id} seed {} episode step {i}", episode["seed"]);
                for (a, b) in step.observation.iter().zip(floats(&s["obs"])) {
                    assert!(
                        close(f64::from(*a), b, 1e-4),
                        "{what}: observation {:?} vs {}",
                        step.observation,
                        s["obs"]
                    );
                }
                assert_eq!(step.terminated, s["terminated"].as_bool().unwrap(), "{what}: terminated");
                assert_eq!(step.truncated, s["truncated"].as_bool().unwrap(), "{what}: truncated");
            }
        }
        assert!(checked > 1500, "{checked} transitions");
    }

    #[test]
    fn resets_draw_gymnasiums_ranges_and_repeat_with_their_seed() {
        for id in crate::ENVIRONMENTS {
            let mut env = crate::make(id).unwrap();
            let first = env.reset(Some(7));
            assert_eq!(env.reset(Some(7)), first, "{id}");
            assert_ne!(env.reset(Some(8)), first, "{id}");
        }
        let mut cart = CartPole::new();
        for seed in 0..200 {
            cart.reset(Some(seed));
            assert!(cart.state().iter().all(|x| (-0.05..0.05).contains(x)));
        }
        let mut car = MountainCar::new();
        car.reset(Some(3));
        assert!((-0.6..-0.4).contains(&car.state()[0]) && car.state()[1] == 0.0);
    }

    #[test]
    fn actions_outside_the_space_are_errors_naming_it() {
        let mut cart = crate::make("CartPole-v1").unwrap();
        cart.reset(Some(0));
        let e = cart.step(&Action::Discrete(2)).unwrap_err().to_string();
        assert!(e.contains("the action Discrete(2) is outside the action space Discrete(2)"), "{e}");
        let mut pendulum = crate::make("Pendulum-v1").unwrap();
        pendulum.reset(Some(0));
        let e = pendulum.step(&Action::Continuous(vec![2.5])).unwrap_err().to_string();
        assert!(e.contains("2.5") && e.contains("outside the action space"), "{e}");
        assert!(pendulum.step(&Action::Discrete(0)).is_err());
        let e = crate::make("Pong-v5").err().unwrap().to_string();
        assert!(e.contains("CartPole-v1, Acrobot-v1, MountainCar-v0, Pendulum-v1"), "{e}");
    }
}
