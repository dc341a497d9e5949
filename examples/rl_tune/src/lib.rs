//! Tune over RL (the seeds' "RLlib and Tune" example, with PPO): PPO's
//! learning rate and clip parameter sampled for a few trials on
//! CartPole-v1, each trial a PPO run in its own actor, ASHA stopping the
//! worse ones early on the mean episode return; then the best config.
//!
//! ```text
//! wray run rl_tune.wasm -- [--samples 6] [--iterations 12]
//! ```

use wray::Error;
use wray::rl::PPOTrial;
use wray::tune::{self, Asha, Space, Tuner};

fn run(samples: usize, iterations: f64) -> Result<(), Error> {
    let space = Space::new()
        .with("lr", tune::loguniform(1e-4, 3e-3))
        .with("clip_param", tune::uniform(0.1, 0.4))
        // Each trial samples in its own actor (no runner actors), on
        // batches of 2000 steps.
        .with("num_env_runners", 0)
        .with("train_batch_size", 2000);
    let results = Tuner::<PPOTrial>::new(space)
        .metric("episode_return_mean", "max")
        .num_samples(samples)
        .scheduler(Asha::with(iterations, 2.0, 2.0, 1))
        .stop(tune::Criteria::new(&[("training_iteration", iterations)]))
        .seed(3)
        .fit()?;
    for t in &results.trials {
        println!(
            "trial lr={:.5} clip_param={:.3}: {} iterations, return {:.1}",
            t.config.f64("lr")?,
            t.config.f64("clip_param")?,
            t.iterations(),
            t.last_result().get("episode_return_mean").copied().unwrap_or(f64::NAN)
        );
    }
    let best = results.best_config().ok_or_else(|| Error::InvalidArgument("no trial finished".into()))?;
    let best_return = results.best_result().and_then(|r| r.get("episode_return_mean").copied()).unwrap_or(f64::NAN);
    println!(
        "best config: lr={:.5} clip_param={:.3}, return {best_return:.1}",
        best.f64("lr")?,
        best.f64("clip_param")?
    );
    Ok(())
}

#[wray::main]
fn main(args: Vec<String>) -> Result<(), String> {
    let flag = |name: &str, default: f64| -> Result<f64, String> {
        match args.iter().position(|a| a == name) {
            Some(i) => args.get(i + 1).and_then(|v| v.parse().ok()).ok_or(format!("{name} needs a number")),
            None => Ok(default),
        }
    };
    run(flag("--samples", 6.0)? as usize, flag("--iterations", 12.0)?).map_err(|e| e.to_string())
}
