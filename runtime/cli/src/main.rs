//! The `wray` command-line tool. One subcommand per file in `commands/`;
//! exit codes are decided here and only here:
//!
//! * 0 — success;
//! * 1 — the job ran and failed (its driver returned an error or trapped);
//! * 2 — usage errors and bad input (unreadable or invalid files, bad flags);
//! * 130 — interrupted (Ctrl-C).

mod commands;
mod parse;

use clap::Parser;
use std::process::ExitCode;

/// How a command ended, when not with success.
#[derive(Debug)]
pub enum Failure {
    /// The job failed (exit 1).
    Job(anyhow::Error),
    /// Bad input or usage (exit 2).
    Usage(anyhow::Error),
    /// Interrupted (exit 130).
    Interrupted,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure::Usage(e.into())
    }
}

fn main() -> ExitCode {
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
        Err(Failure::Interrupted) => {
            eprintln!("interrupted");
            ExitCode::from(130)
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
