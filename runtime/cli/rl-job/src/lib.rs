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
use wray::rl::{self, Algorithm, DQN, DQNConfig, PPO, PPOConfig, TrainResult};

/// The algorithms `wray rl` trains.
const ALGORITHMS: &[&str] = &["PPO", "DQN"];

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
    match t.algo.as_str() {
        "DQN" => run_training::<DQN>(&t, configure::<DQN>(DQNConfig::new(), &t)?),
        _ => run_training::<PPO>(&t, configure::<PPO>(PPOConfig::new(), &t)?),
    }
}

/// `config` for the command: its environment, `--config`, then the flags.
fn configure<A: Algorithm>(mut config: A::Config, t: &Train) -> Result<A::Config, Error> {
    A::common_mut(&mut config).env = rl::EnvSpec::Named(t.env.clone());
    if let Some(json) = &t.config {
        config = A::update_config(config, json)?;
    }
    let common = A::common_mut(&mut config);
    if let Some(n) = t.runners {
        common.num_env_runners = n;
    }
    if let Some(s) = t.seed {
        common.seed = s;
    }
    Ok(config)
}

fn run_training<A: Algorithm>(t: &Train, config: A::Config) -> Result<(), Error> {
    // Without a stop, 100 iterations.
    let stop_reward = t.stop_reward;
    let (stop_timesteps, stop_iters) = match (t.stop_reward, t.stop_timesteps, t.stop_iters) {
        (None, None, None) => (None, Some(100)),
        (_, ts, it) => (ts, it),
    };
    let runners = A::common(&config).num_env_runners;
    let mut algo = A::build(config)?;
    println!("training {} on {} with {runners} env runners", A::NAME, t.env);
    let r: TrainResult = loop {
        let r = algo.train()?;
        println!(
            "iter {:>4}  env steps {:>8}  return mean {:>8.2}  time {:>7.2} s",
            r.training_iteration, r.num_env_steps_sampled_lifetime, r.episode_return_mean, r.time_total_s
        );
        let done = stop_reward.is_some_and(|s| r.episode_return_mean >= s)
            || stop_timesteps.is_some_and(|s| r.num_env_steps_sampled_lifetime >= s)
            || stop_iters.is_some_and(|s| r.training_iteration >= s);
        if done {
            break r;
        }
    };
    let why =
        if stop_reward.is_some_and(|s| r.episode_return_mean >= s) { "reached the stop reward" } else { "stopped" };
    println!(
        "{why}: return mean {:.2} after {} iterations, {} env steps, {:.2} s",
        r.episode_return_mean, r.training_iteration, r.num_env_steps_sampled_lifetime, r.time_total_s
    );
    if let Some(dir) = &t.checkpoint_dir {
        algo.save(std::path::Path::new(dir))?;
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
    match algo_name.as_str() {
        "DQN" => play::<DQN>(&path, &env, episodes, seed, render),
        _ => play::<PPO>(&path, &env, episodes, seed, render),
    }
}

/// Runs `episodes` greedy episodes of a checkpoint's policy in the driver,
/// a line each (and each step, rendered, with `render`).
fn play<A: Algorithm>(path: &str, env: &str, episodes: u32, seed: Option<u64>, render: bool) -> Result<(), Error> {
    let mut algo = A::from_checkpoint_with(std::path::Path::new(path), |mut c| {
        let common = A::common_mut(&mut c);
        common.num_env_runners = 0;
        common.evaluation_num_env_runners = 0;
        c
    })?;
    let seed = seed.unwrap_or(A::common(algo.config()).seed);
    println!("evaluating {} on {env} (trained {} iterations)", A::NAME, algo.iteration());
    let mut returns = Vec::new();
    let mut show = |e: &dyn rl::Env| {
        if render {
            println!("{}", e.render());
        }
    };
    for i in 0..episodes {
        for e in algo.rollout(1, seed.wrapping_add(u64::from(i)), &mut show)? {
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
