//! `wray::rl`: PPO learns CartPole with env runner actors, evaluates and
//! saves; a seeded run repeats exactly. (The environments' transitions are
//! checked against Gymnasium's in the crate's unit tests.)

use crate::util::*;

/// The seeds' RLlib example: PPO with two env runners reaches a mean
/// return of 450 (RLlib's CartPole budget is 300k steps; wray needs about
/// 100k), and the greedy policy keeps the pole up in evaluation.
#[test]
fn ppo_with_two_runners_balances_the_pole() {
    let out_dir = tempfile::tempdir().unwrap();
    let grant = format!("{}::/out", out_dir.path().display());
    let (out, _) = run_ok(
        &guests().rl_cartpole,
        &["--dir", &grant],
        &["--runners", "2", "--save", "/out/ppo", "--max-iterations", "75"],
        &[],
    );
    let reached = number_after(&out, "reached");
    assert!(reached >= 450.0, "{out}");
    let line = out.lines().find(|l| l.starts_with("reached")).unwrap();
    let steps: u64 = line.split("after ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(steps <= 300_000, "{steps} env steps: {out}");
    assert!(number_after(&out, "evaluation return mean:") >= 400.0, "{out}");
    assert_eq!(out.lines().filter(|l| l.starts_with("Episode #")).count(), 10, "{out}");
    assert!(out.contains("checkpoint: /out/ppo"), "{out}");
    let saved = std::fs::read_to_string(out_dir.path().join("ppo/rl_checkpoint.json")).unwrap();
    assert!(
        saved.starts_with(r#"{"format":"wray-rl","version":1,"algorithm":"PPO","env":"CartPole-v1""#),
        "{}",
        &saved[..200]
    );
}

/// One runner (and none), seeded: the same returns every time.
#[test]
fn a_seeded_ppo_run_repeats_exactly() {
    let returns = |runners: &str| {
        let (out, _) =
            run_ok(&guests().rl_cartpole, &[], &["--runners", runners, "--max-iterations", "3", "--seed", "7"], &[]);
        out.lines()
            .filter(|l| l.starts_with("iteration") || l.starts_with("Episode"))
            .map(|l| l.split(", time").next().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let first = returns("1");
    assert_eq!(first.len(), 13, "{first:?}");
    assert_eq!(returns("1"), first);
    let local = returns("0");
    assert_eq!(returns("0"), local);
}

/// `wray rl train` and `wray rl evaluate` run the job built into wray: a
/// line per iteration, a checkpoint (under ~/wray_results unless told),
/// then evaluation of that checkpoint, rendered as text if asked.
#[test]
fn the_rl_command_trains_saves_and_evaluates_without_a_job_of_the_users() {
    let home = tempfile::tempdir().unwrap();
    let home_env = [("HOME", home.path().to_str().unwrap())];
    let run = |args: &[&str]| wray_with(args, &home_env, std::time::Duration::from_secs(300));
    let out = run(&["rl", "train", "--algo", "PPO", "--env", "CartPole-v1", "--stop-reward", "100", "--seed", "3"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("training PPO on CartPole-v1 with 2 env runners"), "{text}");
    assert!(text.lines().filter(|l| l.starts_with("iter ")).count() >= 2, "{text}");
    assert!(text.contains("reached the stop reward: return mean 1"), "{text}");
    let dir = text.lines().find_map(|l| l.strip_prefix("checkpoint: ")).expect("a checkpoint line").to_string();
    assert!(dir.starts_with(home.path().join("wray_results/PPO_CartPole-v1_").to_str().unwrap()), "{dir}");

    let out = run(&["rl", "evaluate", &dir, "--episodes", "3"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert_eq!(text.lines().filter(|l| l.starts_with("Episode #")).count(), 3, "{text}");
    assert!(number_after(&text, "mean reward over 3 episodes:") >= 50.0, "{text}");
    // The checkpoint file itself, rendered: the track with the cart, each step.
    let file = format!("{dir}/rl_checkpoint.json");
    let out = run(&["rl", "evaluate", &file, "--episodes", "1", "--render", "text"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    let steps = text.lines().filter(|l| l.contains(" x=") && l.contains(" θ=")).count();
    let reward = number_after(&text, "Episode #0: reward:");
    assert_eq!(steps as f64, reward + 1.0, "a line per step after the reset:\n{text}");

    // Config overrides reach the algorithm; --stop-iters stops it.
    let ck = home.path().join("ck");
    let out = run(&[
        "rl",
        "train",
        "--algo",
        "ppo",
        "--env",
        "Acrobot-v1",
        "--stop-iters",
        "1",
        "--num-env-runners",
        "1",
        "--checkpoint-dir",
        ck.to_str().unwrap(),
        "--config",
        r#"{"train_batch_size": 500, "num_epochs": 1}"#,
    ]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("with 1 env runners") && text.contains("env steps      500"), "{text}");
    let saved = std::fs::read_to_string(ck.join("rl_checkpoint.json")).unwrap();
    assert!(
        saved.contains(r#""env":"Acrobot-v1""#) && saved.contains(r#""train_batch_size":500"#),
        "{}",
        &saved[..300]
    );
}

/// Bad input to `wray rl` names the problem: unknown algorithms and
/// environments list the available ones, config fields are checked, and
/// only checkpoints are evaluated.
#[test]
fn bad_rl_input_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| wray_with(args, &[], std::time::Duration::from_secs(120));
    let out = run(&["rl", "train", "--algo", "A3C"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("[possible values: PPO, DQN]"), "{}", stderr(&out));
    let out = run(&["rl", "train", "--algo", "PPO", "--env", "Pong-v5"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("CartPole-v1, Acrobot-v1, MountainCar-v0, Pendulum-v1"), "{}", stderr(&out));
    let ck = dir.path().join("ck");
    let train_with = |config: &str| {
        run(&[
            "rl",
            "train",
            "--algo",
            "PPO",
            "--stop-iters",
            "1",
            "--checkpoint-dir",
            ck.to_str().unwrap(),
            "--config",
            config,
        ])
    };
    let out = train_with(r#"{"learning_rate": 0.1}"#);
    assert_code(&out, 1);
    assert!(!ck.exists(), "a failed run leaves no empty checkpoint directory");
    assert!(stderr(&out).contains(r#"unknown config field "learning_rate"; the fields are "#), "{}", stderr(&out));
    assert!(stderr(&out).contains("lr,") && stderr(&out).contains("num_env_runners"), "{}", stderr(&out));
    let out = train_with(r#"{"lr": "fast"}"#);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("--config: invalid type: string \"fast\""), "{}", stderr(&out));
    let out = train_with(r#"{"gamma": 1.5}"#);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("gamma must be in [0, 1], got 1.5"), "{}", stderr(&out));
    let out = train_with("[1, 2]");
    assert_code(&out, 1);
    assert!(stderr(&out).contains("--config must be a JSON object"), "{}", stderr(&out));
    let out = train_with(r#"{"num_env_runners": 64}"#);
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("64 env runners (64 sampling, 0 evaluating) at 1 CPU each need 64 CPUs"),
        "{}",
        stderr(&out)
    );

    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{}").unwrap();
    let out = run(&["rl", "evaluate", junk.to_str().unwrap()]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("not a wray-rl checkpoint"), "{}", stderr(&out));
    let out = run(&["rl", "evaluate", dir.path().join("nothing").to_str().unwrap()]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("nothing"), "{}", stderr(&out));
    let out = run(&["rl", "evaluate", junk.to_str().unwrap(), "--render", "human"]);
    assert_code(&out, 2);
    let out =
        run(&["rl", "train", "--algo", "PPO", "--address", "127.0.0.1:9", "--token", "x", "--checkpoint-dir", "y"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("--checkpoint-dir cannot be used with --address"), "{}", stderr(&out));
}

/// DQN from code: learning starts after 1000 steps, and the ε-greedy
/// runner's returns climb past 150; a seeded run with one runner repeats.
#[test]
fn dqn_learns_cartpole_and_repeats_with_its_seed() {
    let (out, _) = run_ok(
        &guests().rl_cartpole,
        &[],
        &["--algo", "DQN", "--runners", "1", "--stop-reward", "150", "--max-iterations", "80", "--seed", "1"],
        &[],
    );
    assert!(number_after(&out, "reached") >= 150.0, "{out}");
    assert!(number_after(&out, "evaluation return mean:") >= 100.0, "{out}");
    let lines = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| l.starts_with("iteration"))
            .map(|l| l.split(", time").next().unwrap().to_string())
            .collect()
    };
    let short = ["--algo", "DQN", "--runners", "1", "--max-iterations", "3", "--seed", "4"];
    let (a, _) = run_ok(&guests().rl_cartpole, &[], &short, &[]);
    let (b, _) = run_ok(&guests().rl_cartpole, &[], &short, &[]);
    assert_eq!(lines(&a), lines(&b));
    assert_eq!(lines(&a).len(), 3, "{a}");
}

/// Tune over PPO: ASHA stops some of six trials early, and the best one
/// learns.
#[test]
fn tune_runs_ppo_trials_under_asha() {
    let (out, _) = run_ok(&guests().rl_tune, &[], &[], &[]);
    let trials: Vec<&str> = out.lines().filter(|l| l.starts_with("trial lr=")).collect();
    assert_eq!(trials.len(), 6, "{out}");
    let iterations = |l: &str| -> u32 { l.split(": ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap() };
    assert!(trials.iter().any(|l| iterations(l) == 12), "{out}");
    // ASHA is asynchronous: which trials it stops depends on the order their
    // results arrive in (two or three of these six, by the machine's load);
    // some always stop at its first rung.
    assert!(trials.iter().any(|l| iterations(l) == 2), "ASHA stopped none:\n{out}");
    let best = out.lines().find(|l| l.starts_with("best config:")).unwrap();
    let ret: f64 = best.rsplit("return ").next().unwrap().parse().unwrap();
    assert!(ret >= 100.0, "{out}");
}

/// A user's own environment (a Rust type implementing `Env`, built in the
/// runner actors by a plain `fn`): PPO finds the shortest path through the
/// maze, 8 steps.
#[test]
fn ppo_learns_a_users_own_environment() {
    let (out, _) = run_ok(&guests().rl_maze, &[], &["--iterations", "12"], &[]);
    assert_eq!(number_after(&out, "steps to the goal:"), 8.0, "{out}");
    assert_eq!(out.matches('*').count(), 9, "the path's cells:\n{out}");
}

/// Offline RL: an expert's steps written as JSON lines, then cloned by BC
/// from the file alone to a policy that balances the pole.
#[test]
fn behaviour_cloning_learns_from_written_experiences() {
    let out_dir = tempfile::tempdir().unwrap();
    let grant = format!("{}::/out", out_dir.path().display());
    let (out, _) = run_ok(&guests().rl_offline, &["--dir", &grant], &["--steps", "6000"], &[]);
    assert!(number_after(&out, "expert: PPO reached") >= 450.0, "{out}");
    assert!(out.contains("wrote 6000 steps to /out/cartpole-expert.jsonl"), "{out}");
    assert!(number_after(&out, "behaviour cloning: evaluation return mean") >= 400.0, "{out}");
    assert!(out.contains("offline DQN (plain, not conservative): evaluation return mean"), "{out}");
    let text = std::fs::read_to_string(out_dir.path().join("cartpole-expert.jsonl")).unwrap();
    assert_eq!(text.lines().count(), 6000);
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with(r#"{"obs":["#) && first.contains(r#""action":["#) && first.contains(r#""terminated":"#),
        "{first}"
    );
}

/// A loss that turns NaN (a user's environment returning NaN rewards after
/// 600 steps) fails `train()` with an error naming the iteration, and the
/// weights stay those of the iteration before; a checkpoint taken before
/// restores.
#[test]
fn a_nan_loss_names_its_iteration_and_keeps_the_last_good_weights() {
    let out = scenario(&[], &["rl-nan"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("iteration 1: return"), "{text}");
    assert!(
        text.contains("failed: invalid argument: PPO iteration 2: the loss is NaN at epoch 0, minibatch 0"),
        "{text}"
    );
    assert!(text.contains("the weights are those of iteration 1"), "{text}");
    assert!(text.contains("weights kept: true") && text.contains("iteration after the failure: 1"), "{text}");
    assert!(text.contains("restored iteration: 1"), "{text}");
}

/// Continuous actions: PPO's Gaussian head on Pendulum-v1 trains, acts
/// inside the box and evaluates whole (200-step) episodes on an evaluation
/// runner actor; `stop()` then frees its runners' CPUs for a DQN.
#[test]
fn ppo_acts_in_a_continuous_action_space() {
    let out = scenario(&["--cpus", "2"], &["rl-pendulum"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("iteration 2: return -"), "{text}");
    assert!(text.contains("pendulum action inside the box: true (true)"), "{text}");
    // On the evaluation runner actor.
    assert!(text.contains("4 episodes of 200 steps"), "{text}");
    // `stop()` freed both runners' CPUs: no wait, no warning.
    assert!(text.contains("after stop, the next algorithm trains: iteration 1"), "{text}");
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
}

/// Bad input through the SDK names the problem.
#[test]
fn bad_rl_input_through_the_sdk_is_named() {
    let out = scenario(&[], &["rl-errors"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    for expected in [
        "unknown env: invalid argument: unknown environment \"Pong-v5\"; the available ones are CartPole-v1, Acrobot-v1, MountainCar-v0, Pendulum-v1",
        "batch 0: invalid argument: PPOConfig: train_batch_size must be in 1..=",
        "dqn on a box: invalid argument: DQN needs a discrete action space; Pendulum-v1 has Box",
        "bc without input: invalid argument: BCConfig: input (the offline data to clone) is not set",
        "bc missing input: invalid argument: offline input /nowhere/data.jsonl:",
        "ppo checkpoint into dqn: invalid argument: checkpoint ppo: a PPO checkpoint cannot be restored into DQN",
        "cartpole checkpoint into acrobot: invalid argument: checkpoint ppo: trained on CartPole-v1, not on Acrobot-v1",
        "damaged checkpoint: invalid argument: checkpoint bytes: not a wray-rl checkpoint",
        "short observation: invalid argument: an observation of 2 values for a space of 4",
        "runners beyond the cluster: invalid argument: 200 env runners (200 sampling, 0 evaluating)",
        "config field: invalid argument: unknown config field \"clip\"; the fields are clip_param,",
        "action outside: invalid argument: the action Continuous([1.0]) is outside the action space Discrete(2)",
        "dqn iteration: 1",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

/// Multi-agent: two CartPoles in one environment, each agent learning with
/// its own policy; both improve, and a checkpoint restores into a new run
/// that evaluates the same.
#[test]
fn two_agents_learn_with_two_policies() {
    let out_dir = tempfile::tempdir().unwrap();
    let grant = format!("{}::/out", out_dir.path().display());
    let (out, _) =
        run_ok(&guests().rl_multi_agent, &["--dir", &grant], &["--iterations", "12", "--save", "/out/ma"], &[]);
    let last = out.lines().rfind(|l| l.starts_with("iteration")).expect("iterations");
    let value =
        |key: &str| -> f64 { last.split(key).nth(1).unwrap().split(',').next().unwrap().trim().parse().unwrap() };
    assert!(value("p0 ") >= 100.0 && value("p1 ") >= 100.0, "{out}");
    let eval_line = out.lines().find(|l| l.starts_with("evaluation: return ")).expect(&out);
    let evaluated: f64 = eval_line["evaluation: return ".len()..].split(',').next().unwrap().parse().unwrap();
    let line = out.lines().find(|l| l.starts_with("restored from /out/ma at iteration 12: return")).expect(&out);
    let restored: f64 = line.rsplit("return ").next().unwrap().parse().unwrap();
    assert_eq!(restored, evaluated, "{out}");
    assert!(
        std::fs::read_to_string(out_dir.path().join("ma/rl_checkpoint.json"))
            .unwrap()
            .contains(r#""algorithm":"MultiAgentPPO""#)
    );
}
