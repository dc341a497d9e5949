//! `wray job`: run jobs on a cluster without holding a terminal.

use crate::{Failure, parse};
use anyhow::anyhow;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::time::Duration;
use wray_runtime::cluster::ClusterClient;
use wray_runtime::cluster::JobRecord;

/// Submit jobs to a cluster's head and manage them later: the job keeps
/// running when this command exits.
#[derive(Args)]
#[command(after_help = "\
Examples:
  wray job submit --address 127.0.0.1:6380 --token TOKEN job.wasm -- arg
  export WRAY_ADDRESS=127.0.0.1:6380 WRAY_TOKEN=TOKEN
  wray job list
  wray job status job-000001
  wray job logs --follow job-000001
  wray job stop job-000001")]
pub struct JobCommand {
    /// The head node, HOST:PORT; `auto` or none: the head `wray start
    /// --head` runs on this machine.
    #[arg(long, env = "WRAY_ADDRESS", global = true)]
    address: Option<String>,

    /// The cluster's token (printed by `wray start --head`); none: the
    /// local head's.
    #[arg(long, env = "WRAY_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,

    #[command(subcommand)]
    action: JobAction,
}

#[derive(Subcommand)]
enum JobAction {
    /// Submit a job; prints its id.
    Submit {
        /// The job component (.wasm).
        job: PathBuf,
        /// Arguments for the job's main (after `--`).
        #[arg(last = true)]
        args: Vec<String>,
        /// Set an environment variable in the job: KEY=VALUE, or KEY to pass
        /// this process's value (repeatable).
        #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse::env_pair)]
        envs: Vec<(String, String)>,
        /// Memory limit of every instance, e.g. 256MiB.
        #[arg(long, value_name = "SIZE", value_parser = parse::size)]
        memory_limit: Option<u64>,
        /// Execution-time limit of every task, e.g. 30s.
        #[arg(long, value_name = "DUR", value_parser = parse::duration)]
        timeout: Option<Duration>,
    },
    /// List submitted jobs.
    List,
    /// Show one job's status; exits 0 if it succeeded or still runs, 1 if it
    /// failed or was stopped.
    Status {
        /// The job's id.
        id: String,
    },
    /// Print a job's output.
    Logs {
        /// The job's id.
        id: String,
        /// Keep printing until the job ends.
        #[arg(long, short)]
        follow: bool,
    },
    /// Stop a running job.
    Stop {
        /// The job's id.
        id: String,
    },
}

fn show(j: &JobRecord) {
    let message = if j.message.is_empty() { String::new() } else { format!("  {}", j.message) };
    println!("{:<12} {:<10} {}{message}", j.id, j.status, j.name);
}

impl JobCommand {
    pub fn execute(self) -> Result<(), Failure> {
        let super::local_head::Target { address, token, .. } = super::local_head::resolve(self.address, self.token)?;
        // The job file is read (and refused, if it is no component) before
        // the cluster is dialled: a bad file must not wait for a connection
        // to fail first.
        let request = match &self.action {
            JobAction::Submit { job, args, envs, memory_limit, timeout } => {
                // A Python script is built first, as `wray run job.py` does.
                let job = super::build_python::job_file(job)?;
                Some(
                    wray_runtime::cluster::job_request(&job, args.clone(), envs.clone(), *memory_limit, *timeout)
                        .map_err(Failure::Usage)?,
                )
            }
            _ => None,
        };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async {
            let client = ClusterClient::connect(&address, &token).await.map_err(Failure::Usage)?;
            let r = match (self.action, request) {
                (JobAction::Submit { .. }, Some(req)) => {
                    let id = client.submit_job(req).await.map_err(Failure::Usage)?;
                    println!("{id}");
                    eprintln!("follow it with: wray job logs --follow {id}");
                    Ok(())
                }
                (JobAction::Submit { .. }, None) => unreachable!("a submit's request is made above"),
                (JobAction::List, _) => {
                    for j in client.list_jobs().await.map_err(Failure::Usage)? {
                        show(&j);
                    }
                    Ok(())
                }
                (JobAction::Status { id }, _) => {
                    let j = client.job_status(&id).await.map_err(Failure::Usage)?;
                    show(&j);
                    if matches!(j.status.as_str(), "FAILED" | "STOPPED") {
                        Err(Failure::Job(anyhow!("{} {}", j.id, j.status)))
                    } else {
                        Ok(())
                    }
                }
                (JobAction::Logs { id, follow }, _) => {
                    client
                        .job_logs(&id, follow, |chunk| {
                            use std::io::Write;
                            let mut out = std::io::stdout().lock();
                            let _ = out.write_all(chunk);
                            let _ = out.flush();
                        })
                        .await
                        .map_err(Failure::Usage)?;
                    Ok(())
                }
                (JobAction::Stop { id }, _) => {
                    client.stop_job(&id).await.map_err(Failure::Usage)?;
                    println!("stopping {id}");
                    Ok(())
                }
            };
            client.close().await;
            r
        })
    }
}
