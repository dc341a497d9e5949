//! `wray::rl` scenarios: a loss turning NaN (the error names the iteration
//! and the weights stay those before it), continuous actions (PPO on
//! Pendulum-v1), and each kind of bad input.

use wray::Error;
use wray::rl::{self, Action, Algorithm, BCConfig, DQN, DQNConfig, Env, PPOConfig, Step, TimeLimit};

pub fn run(scenario: &str) -> Result<(), Error> {
    match scenario {
        "rl-nan" => nan(),
        "rl-pendulum" => pendulum(),
        "rl-errors" => errors(),
        other => Err(Error::InvalidArgument(format!("unknown scenario {other}"))),
    }
}

/// CartPole whose rewards turn NaN after 600 steps.
struct Poisoned {
    inner: Box<dyn Env>,
    steps: u32,
}

impl Env for Poisoned {
    fn observation_space(&self) -> rl::Space {
        self.inner.observation_space()
    }
    fn action_space(&self) -> rl::Space {
        self.inner.action_space()
    }
    fn reset(&mut self, seed: Option<u64>) -> Vec<f32> {
        self.inner.reset(seed)
    }
    fn step(&mut self, action: &Action) -> Result<Step, Error> {
        let mut step = self.inner.step(action)?;
        self.steps += 1;
        if self.steps > 600 {
            step.reward = f64::NAN;
        }
        Ok(step)
    }
}

fn make_poisoned() -> Box<dyn Env> {
    Box::new(Poisoned { inner: rl::make("CartPole-v1").expect("built in"), steps: 0 })
}

fn nan() -> Result<(), Error> {
    let mut algo =
        PPOConfig::new().environment_fn("Poisoned", make_poisoned).env_runners(0).train_batch_size(500).build()?;
    let first = algo.train()?;
    println!("iteration {}: return {:.1}", first.training_iteration, first.episode_return_mean);
    let before = algo.weights()?;
    let bytes = algo.checkpoint_bytes()?;
    match algo.train() {
        Ok(r) => println!("iteration {} did not fail", r.training_iteration),
        Err(e) => println!("failed: {e}"),
    }
    println!("weights kept: {}", algo.weights()?.policy == before.policy);
    println!("iteration after the failure: {}", algo.iteration());
    // The checkpoint taken before still restores.
    let mut again = PPOConfig::new().environment_fn("Poisoned", make_poisoned).env_runners(0).build()?;
    again.restore_bytes(&bytes, "memory")?;
    println!("restored iteration: {}", again.iteration());
    Ok(())
}

fn pendulum() -> Result<(), Error> {
    // One sampling runner and one evaluation runner, both actors.
    let mut algo = PPOConfig::new()
        .environment("Pendulum-v1")
        .env_runners(1)
        .evaluation(1, 4)
        .train_batch_size(1000)
        .seed(2)
        .build()?;
    for _ in 0..2 {
        let r = algo.train()?;
        let entropy = r.learner.iter().find(|(k, _)| k == "entropy").map_or(f64::NAN, |(_, v)| *v);
        println!("iteration {}: return {:.1}, entropy {entropy:.3}", r.training_iteration, r.episode_return_mean);
    }
    let action = algo.compute_single_action(&[1.0, 0.0, 0.0], true)?;
    let inside = algo.action_space().contains(&action);
    println!(
        "pendulum action inside the box: {inside} ({})",
        matches!(action, Action::Continuous(ref v) if v.len() == 1)
    );
    let (mean, episodes) = algo.evaluate()?;
    println!("pendulum evaluation: {} episodes of {} steps, mean {mean:.1}", episodes.len(), episodes[0].len);
    // Its two runners hold both CPUs (`--cpus 2`): stopping it frees them
    // for the next algorithm's runner, which would otherwise wait.
    algo.stop();
    let mut next = DQNConfig::new().environment("CartPole-v1").env_runners(1).seed(2).build()?;
    println!("after stop, the next algorithm trains: iteration {}", next.train()?.training_iteration);
    Ok(())
}

fn errors() -> Result<(), Error> {
    let show = |what: &str, r: Result<(), Error>| match r {
        Ok(()) => println!("{what}: accepted"),
        Err(e) => println!("{what}: {e}"),
    };
    show("unknown env", PPOConfig::new().environment("Pong-v5").env_runners(0).build().map(drop));
    show("batch 0", PPOConfig::new().env_runners(0).train_batch_size(0).build().map(drop));
    show("dqn on a box", DQNConfig::new().environment("Pendulum-v1").env_runners(0).build().map(drop));
    show("bc without input", BCConfig::new().build().map(drop));
    show("bc missing input", BCConfig::new().input("/nowhere/data.jsonl").build().map(drop));
    let ppo = PPOConfig::new().env_runners(0).build()?;
    let bytes = ppo.checkpoint_bytes()?;
    let mut dqn = DQNConfig::new().env_runners(0).build()?;
    show("ppo checkpoint into dqn", dqn.restore_bytes(&bytes, "ppo"));
    let mut acrobot = PPOConfig::new().environment("Acrobot-v1").env_runners(0).build()?;
    show("cartpole checkpoint into acrobot", acrobot.restore_bytes(&bytes, "ppo"));
    show("damaged checkpoint", acrobot.restore_bytes(b"{\"format\":\"wray-rl\"", "bytes"));
    let mut ppo = ppo;
    show("short observation", ppo.compute_single_action(&[0.0, 1.0], false).map(drop));
    show("runners beyond the cluster", PPOConfig::new().env_runners(200).build().map(drop));
    show("config field", PPOConfig::new().update_from_json(r#"{"clip": 0.2}"#).map(drop));
    let mut env = TimeLimit::new(rl::envs::CartPole::new(), 5);
    env.reset(Some(1));
    show("action outside", env.step(&Action::Continuous(vec![1.0])).map(drop));
    // Algorithms are generic too: DQN through the trait.
    let mut d = <DQN as Algorithm>::build(DQNConfig::new().env_runners(0).steps_per_iteration(200))?;
    println!("dqn iteration: {}", d.train()?.training_iteration);
    Ok(())
}
