//! The seeds' RLlib example (their Example 10-13, on CartPole-v1): PPO (or
//! DQN) with env runners sampling in parallel, trained iteration by
//! iteration until the mean return reaches the stop reward, then evaluated
//! greedily with the episodes rendered to the shell, and saved.
//!
//! ```text
//! wray run rl_cartpole.wasm -- [--algo PPO|DQN] [--runners 2] [--stop-reward 450]
//!                              [--max-iterations 100] [--seed 0] [--save /out/ppo] [--render]
//! ```
//! (`--save` needs a granted directory: `wray run --dir out::/out ...`.)

use wray::Error;
use wray::rl::{Algorithm, CommonConfig, DQN, DQNConfig, PPO, PPOConfig};

struct Args {
    algo: String,
    runners: u32,
    stop_reward: f64,
    max_iterations: u64,
    seed: u64,
    save: Option<String>,
    render: bool,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut a = Args {
        algo: "PPO".into(),
        runners: 2,
        stop_reward: 450.0,
        max_iterations: 100,
        seed: 0,
        save: None,
        render: false,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let bad = |v: &str| format!("{flag}: {v:?} is not a number");
        match flag.as_str() {
            "--algo" => a.algo = value()?.to_uppercase(),
            "--runners" => a.runners = value()?.parse().map_err(|_| bad(flag))?,
            "--stop-reward" => a.stop_reward = value()?.parse().map_err(|_| bad(flag))?,
            "--max-iterations" => a.max_iterations = value()?.parse().map_err(|_| bad(flag))?,
            "--seed" => a.seed = value()?.parse().map_err(|_| bad(flag))?,
            "--save" => a.save = Some(value()?.clone()),
            "--render" => a.render = true,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(a)
}

fn run(args: Args) -> Result<(), Error> {
    match args.algo.as_str() {
        "PPO" => train::<PPO>(PPOConfig::new(), &args),
        "DQN" => train::<DQN>(DQNConfig::new(), &args),
        other => Err(Error::InvalidArgument(format!("--algo {other}: PPO or DQN"))),
    }
}

/// The example's settings over `A`'s defaults: CartPole-v1, the runners,
/// evaluation in the driver (10 episodes), the seed.
fn configure(common: &mut CommonConfig, args: &Args) {
    common.env = wray::rl::EnvSpec::Named("CartPole-v1".into());
    common.num_env_runners = args.runners;
    (common.evaluation_num_env_runners, common.evaluation_duration) = (0, 10);
    common.seed = args.seed;
}

fn train<A: Algorithm>(mut config: A::Config, args: &Args) -> Result<(), Error> {
    configure(A::common_mut(&mut config), args);
    let mut algo = A::build(config)?;
    let mut last = None;
    for _ in 0..args.max_iterations {
        let r = algo.train()?;
        println!(
            "iteration {}: env steps {}, episode return mean {:.1} (min {:.0}, max {:.0}), time {:.2} s \
             (sampling {:.2} s, learning {:.2} s)",
            r.training_iteration,
            r.num_env_steps_sampled_lifetime,
            r.episode_return_mean,
            r.episode_return_min,
            r.episode_return_max,
            r.time_total_s,
            r.sample_time_s,
            r.learn_time_s
        );
        let done = r.episode_return_mean >= args.stop_reward;
        last = Some(r);
        if done {
            break;
        }
    }
    if let Some(r) = &last {
        println!(
            "{} {:.1} after {} env steps in {:.2} s",
            if r.episode_return_mean >= args.stop_reward { "reached" } else { "stopped at" },
            r.episode_return_mean,
            r.num_env_steps_sampled_lifetime,
            r.time_total_s
        );
    }
    let (mean, episodes) = algo.evaluate()?;
    for (i, e) in episodes.iter().enumerate() {
        println!("Episode #{i}: reward: {:.1}", e.ret);
    }
    println!("evaluation return mean: {mean:.1}");
    if args.render {
        algo.rollout(1, args.seed, &mut |env| println!("{}", env.render()))?;
    }
    if let Some(dir) = &args.save {
        println!("checkpoint: {}", algo.save(std::path::Path::new(dir))?.display());
    }
    Ok(())
}

#[wray::main]
fn main(args: Vec<String>) -> Result<(), String> {
    run(parse(&args)?).map_err(|e| e.to_string())
}
