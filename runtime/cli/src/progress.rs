//! Progress of a job's tasks for `wray run` on the embedded runtime: a
//! live line under the job's output on a terminal, and a one-line summary
//! at the end of a job of [`SUMMARY_MIN_TASKS`] tasks or more.
//!
//! The line lives on the terminal's last row. The job's output reaches the
//! terminal through here (the job writes into a channel), so the line can
//! be cleared before each chunk of output and drawn again after it; it is
//! only drawn when the output stands at the start of a line, so a prompt or
//! a partial line the job printed is never overwritten.

use std::io::Write;
use std::time::{Duration, Instant};
use wray_runtime::state::TaskCounts;

/// Jobs with fewer tasks get no summary line: a script running a small
/// job sees only the job's output.
pub const SUMMARY_MIN_TASKS: u64 = 100;

/// How often the live line is redrawn.
pub const REDRAW: Duration = Duration::from_millis(250);

/// The live line does not appear for jobs shorter than this.
pub const SHOW_AFTER: Duration = Duration::from_secs(1);

/// Clears the terminal's current row.
const CLEAR: &str = "\r\x1b[K";

/// The live line: `tasks 120/500 done · 4 running · 376 pending · 3 failed · 12.3 s`.
pub fn line(c: &TaskCounts, elapsed: Duration) -> String {
    let done = c.finished + c.failed + c.cancelled;
    let total = done + c.running + c.pending;
    let mut s = format!("tasks {done}/{total} done · {} running · {} pending", c.running, c.pending);
    if c.failed > 0 {
        s.push_str(&format!(" · {} failed", c.failed));
    }
    if c.cancelled > 0 {
        s.push_str(&format!(" · {} cancelled", c.cancelled));
    }
    s.push_str(&format!(" · {:.1} s", elapsed.as_secs_f64()));
    s
}

/// The summary printed at the end of a job with at least
/// [`SUMMARY_MIN_TASKS`] tasks.
pub fn summary(c: &TaskCounts, elapsed: Duration) -> Option<String> {
    let total = c.finished + c.failed + c.cancelled + c.running + c.pending;
    (total >= SUMMARY_MIN_TASKS).then(|| {
        format!(
            "wray: {total} tasks: {} finished, {} failed, {} cancelled in {:.1} s",
            c.finished,
            c.failed,
            c.cancelled,
            elapsed.as_secs_f64()
        )
    })
}

/// How long [`settled`] waits for the last tasks to be counted.
const SETTLE: Duration = Duration::from_millis(500);

/// The counts once every task has ended or `SETTLE` has passed: a task's
/// result reaches the job a moment before the task is counted as ended,
/// and a job's unfinished tasks are cancelled as it ends.
pub fn settled(node: &wray_runtime::Node) -> TaskCounts {
    let start = Instant::now();
    loop {
        let c = node.task_counts();
        if c.pending + c.running == 0 || start.elapsed() >= SETTLE {
            return c;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Prints the job's output and the live line until `done` fires, then
/// prints what output is left and clears the line.
pub async fn terminal(
    node: wray_runtime::Node,
    mut output: tokio::sync::mpsc::UnboundedReceiver<wray_runtime::Chunk>,
    done: tokio::sync::oneshot::Receiver<()>,
) {
    let start = Instant::now();
    let mut shown = false;
    let mut at_line_start = true;
    let mut tick = tokio::time::interval(REDRAW);
    tokio::pin!(done);
    let write = |(stream, bytes): wray_runtime::Chunk, shown: &mut bool, at_line_start: &mut bool| {
        if *shown {
            eprint!("{CLEAR}");
            *shown = false;
        }
        let _ = stream.write_here(&bytes);
        if let Some(last) = bytes.last() {
            *at_line_start = *last == b'\n';
        }
    };
    loop {
        tokio::select! {
            chunk = output.recv() => match chunk {
                Some(chunk) => write(chunk, &mut shown, &mut at_line_start),
                None => break,
            },
            _ = tick.tick() => {
                let c = node.task_counts();
                let any = c.finished + c.failed + c.cancelled + c.running + c.pending > 0;
                if any && at_line_start && start.elapsed() >= SHOW_AFTER {
                    eprint!("{CLEAR}{}", line(&c, start.elapsed()));
                    let _ = std::io::stderr().flush();
                    shown = true;
                }
            }
            _ = &mut done => break,
        }
    }
    while let Ok(chunk) = output.try_recv() {
        write(chunk, &mut shown, &mut at_line_start);
    }
    if shown {
        eprint!("{CLEAR}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_counts_what_is_done_out_of_all() {
        let c = TaskCounts { pending: 376, running: 4, finished: 117, failed: 3, cancelled: 0 };
        assert_eq!(
            line(&c, Duration::from_millis(12_340)),
            "tasks 120/500 done · 4 running · 376 pending · 3 failed · 12.3 s"
        );
    }

    #[test]
    fn small_jobs_get_no_summary() {
        let small = TaskCounts { finished: SUMMARY_MIN_TASKS - 1, ..TaskCounts::default() };
        assert!(summary(&small, Duration::ZERO).is_none());
        let big = TaskCounts { finished: 5000, failed: 2, ..TaskCounts::default() };
        assert_eq!(
            summary(&big, Duration::from_secs(3)).unwrap(),
            "wray: 5002 tasks: 5000 finished, 2 failed, 0 cancelled in 3.0 s"
        );
    }
}
