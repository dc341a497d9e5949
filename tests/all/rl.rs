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
        &guests().ppo_cartpole,
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
            run_ok(&guests().ppo_cartpole, &[], &["--runners", runners, "--max-iterations", "3", "--seed", "7"], &[]);
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
