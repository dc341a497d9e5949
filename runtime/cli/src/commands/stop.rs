//! `wray stop`: stop the nodes started from this machine.

use super::local_head::alive;
use crate::Failure;
use clap::Args;
use std::time::{Duration, Instant};

/// Stop every wray node started from this machine (by `wray start`, as this
/// user): SIGTERM, then SIGKILL after 10 seconds.
#[derive(Args)]
pub struct StopCommand {}

impl StopCommand {
    pub fn execute(self) -> Result<(), Failure> {
        let mut stopped = 0;
        for super::start::Registered { pid, data_dir, entry } in super::start::registered() {
            if alive(pid) {
                // SAFETY: kill(2) with a pid read from our own registry and a
                // valid signal number; it touches no memory of ours.
                unsafe { libc::kill(pid, libc::SIGTERM) };
                let start = Instant::now();
                while alive(pid) && start.elapsed() < Duration::from_secs(10) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                if alive(pid) {
                    // SAFETY: as above.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
                println!("stopped node {pid} ({})", data_dir.display());
                stopped += 1;
            }
            let _ = std::fs::remove_file(entry);
        }
        if stopped == 0 {
            println!("no nodes running");
        }
        Ok(())
    }
}
