//! `wray rl`: train and evaluate RL algorithms without writing a job — the
//! command runs a job built into wray (`rl-job/`, embedded by `build.rs`)
//! on the embedded runtime or, with `--address`, on a cluster.

use super::run::{BuiltinJob, RunCommand};
use crate::Failure;
use anyhow::anyhow;
use clap::{Args, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};

/// The component `rl-job/` builds to.
const RL_JOB: &[u8] = include_bytes!(env!("WRAY_RL_JOB"));

/// The environments the job has built in (`wray_rl::ENVIRONMENTS`; the
/// CLI lists them so that a wrong name is a usage error naming them).
const ENVIRONMENTS: &[&str] = &["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "Pendulum-v1"];

/// Where the job sees the checkpoint directory.
const GUEST_CHECKPOINT: &str = "/checkpoint";

/// Train reinforcement-learning algorithms on built-in environments, and
/// evaluate their checkpoints (RLlib's `rllib train` / `rllib evaluate`).
#[derive(Args)]
#[command(after_help = "\
Examples:
  wray rl train --algo PPO --env CartPole-v1 --stop-reward 450
  wray rl train --algo PPO --env CartPole-v1 --num-env-runners 2 --checkpoint-dir ppo --config '{\"lr\": 0.001}'
  wray rl train --algo DQN --env CartPole-v1 --stop-reward 450 --config '{\"n_step\": 1, \"dueling\": false}'
  wray rl evaluate ppo --episodes 5 --render text")]
pub struct RlCommand {
    #[command(subcommand)]
    action: RlAction,
}

#[derive(Clone, Copy, ValueEnum)]
enum Algo {
    #[value(name = "PPO")]
    Ppo,
    #[value(name = "DQN")]
    Dqn,
}

#[derive(Subcommand)]
enum RlAction {
    /// Train until a stop condition (default: 100 iterations); prints one
    /// line per iteration and the checkpoint's directory at the end.
    Train {
        /// The algorithm.
        #[arg(long, value_enum, ignore_case = true)]
        algo: Algo,
        /// The environment (a Gymnasium id).
        #[arg(long, default_value = "CartPole-v1", value_parser = clap::builder::PossibleValuesParser::new(ENVIRONMENTS))]
        env: String,
        /// Env runner actors sampling in parallel (default: PPO 2, DQN 1; 0
        /// samples in the driver).
        #[arg(long, value_name = "N")]
        num_env_runners: Option<u32>,
        /// Stop once the mean return of the last 100 episodes reaches R.
        #[arg(long, value_name = "R", allow_negative_numbers = true)]
        stop_reward: Option<f64>,
        /// Stop after T environment steps.
        #[arg(long, value_name = "T")]
        stop_timesteps: Option<u64>,
        /// Stop after I iterations.
        #[arg(long, value_name = "I")]
        stop_iters: Option<u64>,
        /// Where to save the checkpoint (default: ~/wray_results/ALGO_ENV_TIME).
        #[arg(long, value_name = "DIR")]
        checkpoint_dir: Option<PathBuf>,
        /// Config fields as a JSON object, e.g. '{"lr": 0.001, "train_batch_size": 2000}'.
        #[arg(long, value_name = "JSON")]
        config: Option<String>,
        /// The run's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// CPU slots of the embedded runtime (default: one per core).
        #[arg(long, value_name = "N")]
        cpus: Option<f64>,
        /// Train on the cluster whose head is at HOST:PORT (no checkpoint is
        /// written: the job's files are the cluster's).
        #[arg(long, env = "WRAY_ADDRESS", value_name = "HOST:PORT")]
        address: Option<String>,
        /// The cluster's token, with --address.
        #[arg(long, env = "WRAY_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Run a checkpoint's greedy policy for some episodes, printing each
    /// episode's reward (and, with --render text, every step).
    Evaluate {
        /// The checkpoint: the directory `train` printed, or its
        /// rl_checkpoint.json.
        checkpoint: PathBuf,
        /// Episodes to run.
        #[arg(long, default_value_t = 10, value_name = "N")]
        episodes: u32,
        /// Print each step of the environment (the only mode is text).
        #[arg(long, value_name = "MODE", value_parser = ["text"])]
        render: Option<String>,
        /// Seeds the episodes' environments (default: the run's seed).
        #[arg(long)]
        seed: Option<u64>,
    },
}

/// A fresh directory under ~/wray_results for a run's checkpoint.
fn default_checkpoint_dir(algo: &str, env: &str) -> Result<PathBuf, Failure> {
    let home = std::env::var_os("HOME").map(PathBuf::from).ok_or_else(|| anyhow!("no HOME: give --checkpoint-dir"))?;
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let base = home.join("wray_results");
    // A second run in the same second must not share the first's directory.
    let mut n = 0;
    loop {
        let name = if n == 0 { format!("{algo}_{env}_{secs}") } else { format!("{algo}_{env}_{secs}_{n}") };
        let dir = base.join(name);
        if !dir.exists() {
            return Ok(dir);
        }
        n += 1;
    }
}

/// Writes the embedded job to a temporary file (the runtime caches its
/// compilation by content, so this costs a file write, not a compile).
fn job_file() -> Result<tempfile::NamedTempFile, Failure> {
    let mut file = tempfile::Builder::new().prefix("wray-rl-job").suffix(".wasm").tempfile()?;
    std::io::Write::write_all(&mut file, RL_JOB)?;
    Ok(file)
}

fn builtin(file: &tempfile::NamedTempFile) -> BuiltinJob {
    BuiltinJob { name: "wray rl", bytes: RL_JOB, file: file.path().to_path_buf() }
}

impl RlCommand {
    pub fn execute(self) -> Result<(), Failure> {
        let job = job_file()?;
        match self.action {
            RlAction::Train {
                algo,
                env,
                num_env_runners,
                stop_reward,
                stop_timesteps,
                stop_iters,
                checkpoint_dir,
                config,
                seed,
                cpus,
                address,
                token,
            } => {
                let algo = match algo {
                    Algo::Ppo => "PPO",
                    Algo::Dqn => "DQN",
                };
                let mut args = vec!["train".to_string(), "--algo".into(), algo.into(), "--env".into(), env.clone()];
                let mut push = |flag: &str, value: Option<String>| {
                    if let Some(v) = value {
                        args.extend([flag.to_string(), v]);
                    }
                };
                push("--num-env-runners", num_env_runners.map(|v| v.to_string()));
                push("--stop-reward", stop_reward.map(|v| v.to_string()));
                push("--stop-timesteps", stop_timesteps.map(|v| v.to_string()));
                push("--stop-iters", stop_iters.map(|v| v.to_string()));
                push("--seed", seed.map(|v| v.to_string()));
                push("--config", config);
                let mut dirs = Vec::new();
                let mut created = false;
                let checkpoint = if address.is_some() {
                    if checkpoint_dir.is_some() {
                        return Err(Failure::Usage(anyhow!(
                            "--checkpoint-dir cannot be used with --address: the job runs on the cluster, whose files are \
                             its own"
                        )));
                    }
                    None
                } else {
                    let dir = match checkpoint_dir {
                        Some(d) => d,
                        None => default_checkpoint_dir(algo, &env)?,
                    };
                    created = !dir.exists();
                    std::fs::create_dir_all(&dir)
                        .map_err(|e| Failure::Usage(anyhow!("cannot create {}: {e}", dir.display())))?;
                    args.extend(["--checkpoint-dir".to_string(), GUEST_CHECKPOINT.into()]);
                    dirs.push((dir.clone(), GUEST_CHECKPOINT.to_string()));
                    Some(dir)
                };
                let run = RunCommand::builtin(builtin(&job), args, dirs, cpus, address, token).execute();
                if let Some(dir) = checkpoint {
                    if run.is_ok() {
                        println!("checkpoint: {}", dir.display());
                    } else if created {
                        // A run that failed before saving leaves no empty
                        // directory behind (`remove_dir` refuses a full one).
                        let _ = std::fs::remove_dir(&dir);
                    }
                }
                run
            }
            RlAction::Evaluate { checkpoint, episodes, render, seed } => {
                let (dir, inside) = locate(&checkpoint)?;
                let mut args = vec!["evaluate".to_string(), inside, "--episodes".into(), episodes.to_string()];
                if let Some(mode) = render {
                    args.extend(["--render".to_string(), mode]);
                }
                if let Some(s) = seed {
                    args.extend(["--seed".to_string(), s.to_string()]);
                }
                let dirs = vec![(dir, GUEST_CHECKPOINT.to_string())];
                RunCommand::builtin(builtin(&job), args, dirs, None, None, None).execute()
            }
        }
    }
}

/// The directory to grant for a checkpoint path and the path the job sees.
fn locate(checkpoint: &Path) -> Result<(PathBuf, String), Failure> {
    let meta = std::fs::metadata(checkpoint)
        .map_err(|e| Failure::Usage(anyhow!("checkpoint {}: {e}", checkpoint.display())))?;
    if meta.is_dir() {
        return Ok((checkpoint.to_path_buf(), GUEST_CHECKPOINT.to_string()));
    }
    let parent = checkpoint.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = checkpoint
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| anyhow!("a checkpoint file needs a UTF-8 name"))?;
    Ok((parent.to_path_buf(), format!("{GUEST_CHECKPOINT}/{name}")))
}
