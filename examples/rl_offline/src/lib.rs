//! Offline RL (RLlib's offline example): PPO learns CartPole-v1, its
//! policy then plays 10 000 steps that are written as JSON lines
//! (`wray::rl::offline`), and behaviour cloning — and, for comparison, DQN
//! — learn from that file alone, without stepping the environment, before
//! being evaluated on it. Cloning the expert's actions balances the pole;
//! offline DQN on data of one good policy does not (it overestimates the
//! actions the data never shows — the known failure conservative methods
//! such as CQL address), which the example shows rather than hides.
//!
//! ```text
//! wray run --dir out::/out rl_offline.wasm -- [--steps 10000]
//! ```

use wray::Error;
use wray::rl::{BCConfig, DQNConfig, PPOConfig, offline};

fn run(steps: u32) -> Result<(), Error> {
    let mut expert = PPOConfig::new().env_runners(2).evaluation(0, 10).seed(0).build()?;
    let mut reached = 0.0;
    while reached < 450.0 && expert.iteration() < 75 {
        reached = expert.train()?.episode_return_mean;
    }
    println!("expert: PPO reached {reached:.1} in {} iterations", expert.iteration());
    // The expert plays (sampling its actions, as in training) and the
    // steps go to a file.
    let file = std::path::Path::new("/out/cartpole-expert.jsonl");
    let _ = std::fs::remove_file(file);
    let fragments = expert.sample(steps / 2, true)?;
    offline::write_steps(file, &fragments)?;
    let written: usize = fragments.iter().map(|f| f.rows()).sum();
    println!("wrote {written} steps to {}", file.display());

    let mut bc = BCConfig::new().input("/out/cartpole-expert.jsonl").evaluation(0, 10).seed(1).build()?;
    for _ in 0..10 {
        bc.train()?;
    }
    let (bc_return, _) = bc.evaluate()?;
    println!("behaviour cloning: evaluation return mean {bc_return:.1}");

    let mut dqn = DQNConfig::new()
        .input("/out/cartpole-expert.jsonl")
        .env_runners(0)
        .prioritized_replay(false)
        .evaluation(0, 10)
        .seed(1)
        .build()?;
    for _ in 0..10 {
        dqn.train()?;
    }
    let (dqn_return, _) = dqn.evaluate()?;
    println!("offline DQN (plain, not conservative): evaluation return mean {dqn_return:.1}");
    Ok(())
}

#[wray::main]
fn main(args: Vec<String>) -> Result<(), String> {
    let steps = match args.iter().position(|a| a == "--steps") {
        Some(i) => args.get(i + 1).and_then(|v| v.parse().ok()).ok_or("--steps needs a number")?,
        None => 10_000,
    };
    run(steps).map_err(|e| e.to_string())
}
