//! The RL benchmark's wray side (benches/rl.sh): CartPole-v1 stepping
//! speed, bare and with a policy choosing the actions, and PPO's time to
//! a mean return of 450.
//!
//! ```text
//! wray run rl_bench.wasm -- env STEPS            random actions, one copy
//! wray run rl_bench.wasm -- sample STEPS ENVS    PPO's initial policy acting, ENVS copies
//! wray run rl_bench.wasm -- ppo RUNNERS SEED     PPO until a mean return of 450 over 100 episodes (or 300k steps)
//! wray run rl_bench.wasm -- dqn RUNNERS SEED     DQN likewise
//! (ppo and dqn take config fields as JSON after the seed)
//! ```

use std::time::Instant;
use wray::Error;
use wray::rl::{self, Action, Algorithm, DQN, DQNConfig, EnvSpec, PPO, PPOConfig, Sampler};

fn number<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> Result<T, Error> {
    args.get(i)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::InvalidArgument(format!("argument {i}: {what} (a number)")))
}

fn env_steps(steps: u64) -> Result<(), Error> {
    let mut env = rl::make("CartPole-v1")?;
    let mut rng = wray::Rng::new(0);
    env.reset(Some(0));
    let start = Instant::now();
    let mut episodes = 0u64;
    for _ in 0..steps {
        let step = env.step(&Action::Discrete(rng.below(2) as u32))?;
        if step.terminated || step.truncated {
            env.reset(None);
            episodes += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "wray CartPole-v1, random actions: {:.0} steps/s ({steps} steps, {episodes} episodes, {secs:.3} s)",
        steps as f64 / secs
    );
    Ok(())
}

fn sample(steps: u32, envs: u32) -> Result<(), Error> {
    let algo = PPOConfig::new().env_runners(0).build()?;
    let actor = rl::Actor::new(&algo.weights()?)?;
    let mut sampler = Sampler::new(&EnvSpec::Named("CartPole-v1".into()), envs, 0)?;
    let per_env = steps / envs;
    let start = Instant::now();
    let fragment = sampler.sample(&actor, per_env, true)?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "wray CartPole-v1, PPO's policy acting on {envs} copies (64x64 tanh MLP): {:.0} steps/s ({} steps, {secs:.3} s)",
        fragment.rows() as f64 / secs,
        fragment.rows()
    );
    Ok(())
}

/// The mean of an iteration's last (at most 100) episode returns: what
/// RLlib 2.60 reports as `episode_return_mean` (its env runners clear their
/// window of 100 each iteration). NaN when no episode ended.
fn iteration_mean(returns: &[f64]) -> f64 {
    let last = &returns[returns.len().saturating_sub(rl::SMOOTHING_EPISODES)..];
    last.iter().sum::<f64>() / last.len() as f64
}

/// Trains `A` until the mean return of the last 100 episodes reaches 450
/// (or 300k env steps), printing when each of the two criteria was first
/// met: RLlib 2.60's (the mean over one iteration's episodes) and the
/// 100-episode window's (`TrainResult::episode_return_mean`).
fn reach<A: Algorithm>(config: A::Config, runners: u32, seed: u64) -> Result<(), Error> {
    let wall = Instant::now();
    let mut algo = A::build(config)?;
    let mut iteration_criterion = None;
    loop {
        let r = algo.train()?;
        if iteration_criterion.is_none() && iteration_mean(&r.episode_returns) >= 450.0 {
            iteration_criterion = Some((r.num_env_steps_sampled_lifetime, r.time_total_s));
        }
        let reached = r.episode_return_mean >= 450.0;
        if reached || r.num_env_steps_sampled_lifetime >= 300_000 {
            let first = match iteration_criterion {
                Some((steps, secs)) => {
                    format!("one iteration's episodes >= 450 after {steps} env steps, {secs:.2} s; ")
                }
                None => "one iteration's episodes never >= 450; ".into(),
            };
            println!(
                "wray {}, {runners} env runners, seed {seed}: {first}100-episode mean {} {:.1} after {} env steps, {:.2} s training ({:.2} s with startup)",
                A::NAME,
                if reached { "reached" } else { "did not reach 450, at" },
                r.episode_return_mean,
                r.num_env_steps_sampled_lifetime,
                r.time_total_s,
                wall.elapsed().as_secs_f64()
            );
            return Ok(());
        }
    }
}

#[wray::main]
fn main(args: Vec<String>) -> Result<(), String> {
    let result = match args.first().map(String::as_str) {
        Some("env") => number(&args, 1, "steps").and_then(env_steps),
        Some("sample") => number(&args, 1, "steps").and_then(|s| sample(s, number(&args, 2, "envs")?)),
        Some("ppo") => number(&args, 1, "runners").and_then(|r| {
            let seed = number(&args, 2, "seed")?;
            let config = PPOConfig::new().env_runners(r).seed(seed);
            reach::<PPO>(
                match args.get(3) {
                    Some(json) => config.update_from_json(json)?,
                    None => config,
                },
                r,
                seed,
            )
        }),
        Some("dqn") => number(&args, 1, "runners").and_then(|r| {
            let seed = number(&args, 2, "seed")?;
            let config = DQNConfig::new().env_runners(r).seed(seed);
            reach::<DQN>(
                match args.get(3) {
                    Some(json) => config.update_from_json(json)?,
                    None => config,
                },
                r,
                seed,
            )
        }),
        _ => Err(Error::InvalidArgument("the first argument is env, sample, ppo or dqn".into())),
    };
    result.map_err(|e| e.to_string())
}
