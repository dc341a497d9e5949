//! The job behind `wray rl`: the CLI embeds this component and runs it
//! with the command's arguments (already checked by the CLI's parser; they
//! are checked again here, since anyone can run the component).
//!
//! ```text
//! train --algo PPO --env CartPole-v1 [--num-env-runners N] [--stop-reward R]
//!       [--stop-timesteps T] [--stop-iters I] [--seed S] [--config JSON] [--checkpoint-dir /checkpoint]
//! evaluate /checkpoint [--episodes N] [--render text] [--seed S]
//! ```

use wray::Error;
use wray::rl::{self, PPO, PPOConfig, TrainResult};

/// The algorithms `wray rl` trains.
const ALGORITHMS: &[&str] = &["PPO"];

struct Train {
    algo: String,
    env: String,
    runners: Option<u32>,
    stop_reward: Option<f64>,
    stop_timesteps: Option<u64>,
    stop_iters: Option<u64>,
    seed: Option<u64>,
    config: Option<String>,
    checkpoint_dir: Option<String>,
}

fn invalid(m: String) -> Error {
    Error::InvalidArgument(m)
}

fn value<'a>(it: &mut std::slice::Iter<'a, String>, flag: &str) -> Result<&'a String, Error> {
    it.next().ok_or_else(|| invalid(format!("{flag} needs a value")))
}

fn number<T: std::str::FromStr>(it: &mut std::slice::Iter<'_, String>, flag: &str) -> Result<T, Error> {
    let v = value(it, flag)?;
    v.parse().map_err(|_| invalid(format!("{flag}: {v:?} is not a number")))
}

fn train(args: &[String]) -> Result<(), Error> {
    let mut t = Train {
        algo: String::new(),
        env: String::new(),
        runners: None,
        stop_reward: None,
        stop_timesteps: None,
        stop_iters: None,
        seed: None,
        config: None,
        checkpoint_dir: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--algo" => t.algo = value(&mut it, flag)?.clone(),
            "--env" => t.env = value(&mut it, flag)?.clone(),
            "--num-env-runners" => t.runners = Some(number(&mut it, flag)?),
            "--stop-reward" => t.stop_reward = Some(number(&mut it, flag)?),
            "--stop-timesteps" => t.stop_timesteps = Some(number(&mut it, flag)?),
            "--stop-iters" => t.stop_iters = Some(number(&mut it, flag)?),
            "--seed" => t.seed = Some(number(&mut it, flag)?),
            "--config" => t.config = Some(value(&mut it, flag)?.clone()),
            "--checkpoint-dir" => t.checkpoint_dir = Some(value(&mut it, flag)?.clone()),
            other => return Err(invalid(format!("unknown flag {other}"))),
        }
    }
    if !ALGORITHMS.contains(&t.algo.as_str()) {
        return Err(invalid(format!(
            "unknown algorithm {:?}; the available ones are {}",
            t.algo,
            ALGORITHMS.join(", ")
        )));
    }
    rl::make(&t.env)?;
    let mut config = PPOConfig::new().environment(&t.env);
    if let Some(json) = &t.config {
        config = config.update_from_json(json)?;
    }
    if let Some(n) = t.runners {
        config = config.env_runners(n);
    }
    if let Some(s) = t.seed {
        config = config.seed(s);
    }
    // Without a stop, RLlib's defaults for CartPole examples.
    let stop_reward = t.stop_reward;
    let (stop_timesteps, stop_iters) = match (t.stop_reward, t.stop_timesteps, t.stop_iters) {
        (None, None, None) => (None, Some(100)),
        (_, ts, it) => (ts, it),
    };
    let mut algo = config.build()?;
    println!("training {} on {} with {} env runners", t.algo, t.env, algo.config().common.num_env_runners);
    let mut last: Option<TrainResult> = None;
    loop {
        let r = algo.train()?;
        println!(
            "iter {:>4}  env steps {:>8}  return mean {:>8.2}  time {:>7.2} s",
            r.training_iteration, r.num_env_steps_sampled_lifetime, r.episode_return_mean, r.time_total_s
        );
        let done = stop_reward.is_some_and(|s| r.episode_return_mean >= s)
            || stop_timesteps.is_some_and(|s| r.num_env_steps_sampled_lifetime >= s)
            || stop_iters.is_some_and(|s| r.training_iteration >= s);
        last = Some(r);
        if done {
            break;
        }
    }
    if let Some(r) = &last {
        let why =
            if stop_reward.is_some_and(|s| r.episode_return_mean >= s) { "reached the stop reward" } else { "stopped" };
        println!(
            "{why}: return mean {:.2} after {} iterations, {} env steps, {:.2} s",
            r.episode_return_mean, r.training_iteration, r.num_env_steps_sampled_lifetime, r.time_total_s
        );
    }
    if let Some(dir) = &t.checkpoint_dir {
        algo.save(dir)?;
        println!("checkpoint saved");
    }
    Ok(())
}

fn evaluate(args: &[String]) -> Result<(), Error> {
    let mut it = args.iter();
    let path = value(&mut it, "evaluate")?.clone();
    let (mut episodes, mut render, mut seed) = (10u32, false, None::<u64>);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--episodes" => episodes = number(&mut it, flag)?,
            "--render" => {
                let mode = value(&mut it, flag)?;
                if mode != "text" {
                    return Err(invalid(format!("--render {mode}: the only mode is text")));
                }
                render = true;
            }
            "--seed" => seed = Some(number(&mut it, flag)?),
            other => return Err(invalid(format!("unknown flag {other}"))),
        }
    }
    let (algo_name, env) = rl::describe_checkpoint(std::path::Path::new(&path))?;
    if !ALGORITHMS.contains(&algo_name.as_str()) {
        return Err(invalid(format!("a {algo_name} checkpoint: `wray rl` evaluates {}", ALGORITHMS.join(", "))));
    }
    let mut algo = PPO::from_checkpoint_with(&path, |c| c.env_runners(0).evaluation(0, episodes.max(1)))?;
    let seed = seed.unwrap_or(algo.config().common.seed);
    println!("evaluating {algo_name} on {env} (trained {} iterations)", algo.iteration());
    let mut returns = Vec::new();
    for i in 0..episodes {
        let done = algo.rollout(1, seed.wrapping_add(u64::from(i)), |e| {
            if render {
                println!("{}", e.render());
            }
        })?;
        for e in done {
            println!("Episode #{i}: reward: {:.1}", e.ret);
            returns.push(e.ret);
        }
    }
    let mean = returns.iter().sum::<f64>() / returns.len().max(1) as f64;
    println!("mean reward over {} episodes: {mean:.2}", returns.len());
    Ok(())
}

/// An error printed as its message (`main`'s errors are printed with
/// `Debug`, which would quote it).
struct Failed(String);

impl std::fmt::Debug for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[wray::main]
fn main(args: Vec<String>) -> Result<(), Failed> {
    let result = match args.first().map(String::as_str) {
        Some("train") => train(&args[1..]),
        Some("evaluate") => evaluate(&args[1..]),
        _ => Err(invalid("the first argument is train or evaluate".into())),
    };
    result.map_err(|e| Failed(e.to_string()))
}
