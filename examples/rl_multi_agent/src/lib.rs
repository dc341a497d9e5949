//! Multi-agent RL (RLlib's multi-agent CartPole example): two CartPoles
//! stepped as one environment, agent `agent_0` acting and learning with
//! policy `p0`, `agent_1` with `p1` — two PPO learners, one set of env
//! runner actors. Prints each policy's mean return per iteration, then a
//! greedy evaluation.
//!
//! ```text
//! wray run rl_multi_agent.wasm -- [--iterations 20] [--runners 2] [--save /out/ma]
//! ```
//! (`--save` writes a checkpoint, restores it into a new run and evaluates
//! that too; it needs a granted directory.)

use wray::Error;
use wray::rl::{MultiAgentCartPole, MultiAgentEnv, PPOConfig};

fn two_cartpoles() -> Box<dyn MultiAgentEnv> {
    Box::new(MultiAgentCartPole::new(2))
}

/// `agent_0` → `p0`, `agent_1` → `p1`.
fn policy_of(agent: &str) -> String {
    agent.replace("agent_", "p")
}

fn config(runners: u32) -> wray::rl::MultiAgentPPOConfig {
    PPOConfig::new().env_runners(runners).seed(0).multi_agent(
        "MultiAgentCartPole-2",
        two_cartpoles,
        &["p0", "p1"],
        policy_of,
    )
}

fn run(iterations: u64, runners: u32, save: Option<&str>) -> Result<(), Error> {
    let mut algo = config(runners).build_multi_agent()?;
    for _ in 0..iterations {
        let r = algo.train()?;
        let of = |name: &str| r.learner.iter().find(|(k, _)| k == name).map_or(f64::NAN, |(_, v)| *v);
        println!(
            "iteration {}: env steps {}, return (both poles) {:.1}, p0 {:.1}, p1 {:.1}",
            r.training_iteration,
            r.num_env_steps_sampled_lifetime,
            r.episode_return_mean,
            of("p0/episode_return_mean"),
            of("p1/episode_return_mean")
        );
    }
    let (mean, shares) = algo.evaluate(5)?;
    println!("evaluation: return {mean:.1}, p0 {:.1}, p1 {:.1}", shares["p0"], shares["p1"]);
    if let Some(dir) = save {
        algo.save(dir)?;
        let mut again = config(0).build_multi_agent()?;
        again.restore(dir)?;
        let (restored, _) = again.evaluate(5)?;
        println!("restored from {dir} at iteration {}: return {restored:.1}", again.iteration());
    }
    Ok(())
}

#[wray::main]
fn main(args: Vec<String>) -> Result<(), String> {
    let flag = |name: &str, default: u64| -> Result<u64, String> {
        match args.iter().position(|a| a == name) {
            Some(i) => args.get(i + 1).and_then(|v| v.parse().ok()).ok_or(format!("{name} needs a number")),
            None => Ok(default),
        }
    };
    let save = args.iter().position(|a| a == "--save").and_then(|i| args.get(i + 1)).map(String::as_str);
    run(flag("--iterations", 20)?, flag("--runners", 2)? as u32, save).map_err(|e| e.to_string())
}
