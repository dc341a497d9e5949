//! The subcommands.

mod build;
mod build_python;
mod cluster_bench;
mod dashboard;
mod job;
mod list;
mod local_head;
mod logs;
mod microbenchmark;
mod rl;
mod run;
mod serve;
mod start;
mod status;
mod stop;
mod summary;
mod timeline;

pub use run::Stop;

use crate::Failure;
use clap::{Parser, Subcommand};

/// Run WebAssembly jobs with Ray's programming model: remote functions,
/// actors and object refs, every task in its own sandboxed Wasm instance.
#[derive(Parser)]
#[command(name = "wray", version, about, long_about = None, after_help = "\
Examples:
  wray build examples/pi                 build a guest crate; prints the .wasm path
  wray build job.py                      build a Python job (componentize-py); writes job.wasm
  wray run target/.../pi.wasm            run a job on an embedded single-node runtime
  wray run --cpus 4 --timeout 30s job.wasm -- arg1 arg2
  wray run --dir ./data::/data --env MODE=fast job.wasm
  wray microbenchmark \"$(wray build benches/microbench | tail -n1)\"
  wray start --head                      start a head node; prints its address and token
  wray start --address HOST:PORT --token TOKEN           add a worker node
  wray run --address HOST:PORT --token TOKEN job.wasm    run the same job on it
  wray status --address HOST:PORT --token TOKEN
  wray status                            on the head's machine: its head, no address needed (also list, logs, job)
  wray run --address auto job.wasm       a job to the head started on this machine
  wray list tasks --filter state=FAILED --address HOST:PORT --token TOKEN   nodes|jobs|tasks|actors|objects|placement-groups|experiments
  wray summary tasks                     tasks by function with their states (or actors by class)
  wray timeline                          the tasks as a trace for chrome://tracing or Perfetto
  wray logs --node NODE_ID --follow --address HOST:PORT --token TOKEN       a node's log (or --job JOB_ID)
  wray job submit --address HOST:PORT --token TOKEN job.wasm    run it detached; then wray job list|status|logs|stop
  wray rl train --algo PPO --env CartPole-v1 --stop-reward 450    reinforcement learning, no job to write
  wray serve run app.wasm --port 8000    serve a job's deployments over HTTP
  wray stop")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// One variant per subcommand, one file per variant.
#[derive(Subcommand)]
pub enum Command {
    Run(run::RunCommand),
    Build(build::BuildCommand),
    Microbenchmark(microbenchmark::MicrobenchmarkCommand),
    Start(start::StartCommand),
    Stop(stop::StopCommand),
    Status(status::StatusCommand),
    List(list::ListCommand),
    Summary(summary::SummaryCommand),
    Timeline(timeline::TimelineCommand),
    Logs(logs::LogsCommand),
    Job(job::JobCommand),
    Rl(rl::RlCommand),
    Serve(serve::ServeCommand),
}

impl Command {
    /// Whether this command runs a node (which logs at info level).
    pub fn is_node(&self) -> bool {
        matches!(self, Command::Start(_))
    }

    pub fn execute(self) -> Result<(), Failure> {
        match self {
            Command::Run(c) => c.execute(),
            Command::Build(c) => c.execute(),
            Command::Microbenchmark(c) => c.execute(),
            Command::Start(c) => c.execute(),
            Command::Stop(c) => c.execute(),
            Command::Status(c) => c.execute(),
            Command::List(c) => c.execute(),
            Command::Summary(c) => c.execute(),
            Command::Timeline(c) => c.execute(),
            Command::Logs(c) => c.execute(),
            Command::Job(c) => c.execute(),
            Command::Rl(c) => c.execute(),
            Command::Serve(c) => c.execute(),
        }
    }
}
