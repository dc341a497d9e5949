//! The `wray` command-line tool. One subcommand per file in `commands/`;
//! exit codes are decided here and only here:
//!
//! * 0 — success;
//! * 1 — the job ran and failed (its driver returned an error or trapped);
//! * 2 — usage errors and bad input (unreadable or invalid files, bad flags);
//! * 3 — the cluster lost the job: the node running it (or the head) died;
//!   the job itself did not fail (`wray run --max-retries` runs it again);
//! * 130 — interrupted (Ctrl-C).

/// jemalloc, not glibc's allocator: a task's future and its result are
/// allocated on one thread and freed on another (the submitter's, a worker's),
/// and glibc frees such a chunk under its owner arena's lock, which the
/// submitting thread holds as it allocates the next — about one futex call
/// per task in a dependency chain (`strace -c`). jemalloc's per-thread caches
/// return them to their arena in batches. Alternating runs (docs/BENCHMARKS.md):
/// async tasks +12 %, reused +40 %, wait +20 %, sync rows +3-5 %; idle RSS
/// +1.1 MiB and process start +0.8 ms. mimalloc was tried twice before and
/// lost on sync tasks and idle memory.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod commands;
mod parse;
mod progress;

use clap::Parser;
use std::process::ExitCode;

/// How a command ended, when not with success.
#[derive(Debug)]
pub enum Failure {
    /// The job failed (exit 1).
    Job(anyhow::Error),
    /// Bad input or usage (exit 2).
    Usage(anyhow::Error),
    /// The cluster lost the job with a node (exit 3).
    Lost(anyhow::Error),
    /// Stopped by a signal before the job ended: Ctrl-C (SIGINT, exit 130)
    /// or SIGTERM (exit 143), as a process killed by it would report.
    Stopped(commands::Stop),
    /// The job's driver called `exit(status)`: `wray run` exits with that
    /// status, as the process would have (the low 8 bits, as on Unix).
    Exit(i32),
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure::Usage(e.into())
    }
}

/// Mesa's Vulkan drivers complain on stderr, once per process, when
/// `XDG_RUNTIME_DIR` is unset (as under cron, ssh without a login session,
/// CI); wray never draws, so a private empty directory satisfies them.
fn quiet_vulkan_loader() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_some() {
        return;
    }
    let dir = std::env::temp_dir().join("wray-xdg-runtime-dir");
    use std::os::unix::fs::DirBuilderExt;
    let made = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    if made.is_ok() || dir.is_dir() {
        // SAFETY: called first thing in main, before any other thread exists.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
    }
}

fn main() -> ExitCode {
    quiet_vulkan_loader();
    let cli = commands::Cli::parse();
    // Nodes log what happens to them (joins, refusals); commands only warnings.
    init_logging(if cli.command.is_node() { "warn,wray=info,wray_node=info" } else { "warn" });
    match cli.command.execute() {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Job(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
        Err(Failure::Lost(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(3)
        }
        Err(Failure::Stopped(stop)) => {
            eprintln!("{}", stop.describe());
            ExitCode::from(stop.exit_code())
        }
        Err(Failure::Exit(status)) => {
            // One line, no backtrace: the job chose to end this way.
            eprintln!("wray: the job called exit({status})");
            ExitCode::from(status as u8)
        }
    }
}

fn init_logging(default: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("WRAY_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
