//! `wray timeline`: Ray's `ray timeline` — the cluster's tasks as a trace
//! in the Chrome trace-event format, for `chrome://tracing` or
//! <https://ui.perfetto.dev>.

use super::list::cluster_state;
use crate::Failure;
use anyhow::Context;
use clap::Args;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use wray_runtime::state::{NodeState, TaskRow};

/// Write the cluster's tasks as a trace (Chrome's trace-event JSON): one
/// process per node, one row per task running there at once, each task a
/// bar from its start to its end, named by its function. Open the file in
/// chrome://tracing or https://ui.perfetto.dev.
///
/// Built from what `wray list tasks` sees: every task running, and each
/// node's last 1000 finished ones; times have millisecond resolution.
#[derive(Args)]
#[command(after_help = "\
Examples:
  wray timeline                                  writes wray-timeline.json here
  wray timeline --output /tmp/trace.json
  wray timeline --output - | gzip > trace.json.gz")]
pub struct TimelineCommand {
    /// Where to write the trace (`-`: standard output).
    #[arg(long, short, default_value = "wray-timeline.json")]
    output: PathBuf,

    /// The head node, HOST:PORT; `auto` or none: the head `wray start
    /// --head` runs on this machine.
    #[arg(long, env = "WRAY_ADDRESS")]
    address: Option<String>,

    /// The cluster's token (printed by `wray start --head`); none: the
    /// local head's.
    #[arg(long, env = "WRAY_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

impl TimelineCommand {
    pub fn execute(self) -> Result<(), Failure> {
        let nodes = cluster_state(self.address.clone(), self.token.clone())?;
        let now_ms =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let (trace, tasks) = trace(&nodes, now_ms);
        let text = serde_json::to_string(&trace).map_err(anyhow::Error::from)?;
        if self.output.as_os_str() == "-" {
            println!("{text}");
        } else {
            std::fs::write(&self.output, text).with_context(|| format!("writing {}", self.output.display()))?;
            println!(
                "{tasks} tasks written to {}: open it in chrome://tracing or https://ui.perfetto.dev",
                self.output.display()
            );
        }
        Ok(())
    }
}

/// The trace of `nodes`' tasks that have started (a running one ends at
/// `now_ms`), and how many tasks it shows. Each node that ran a task is a
/// process (`pid`, named by a metadata event) — a task is listed by the
/// node of the job that submitted it and names the node that ran it; each
/// of a node's tasks goes on the lowest row (`tid`) free when it starts, so
/// tasks that overlapped sit on rows of their own.
fn trace(nodes: &[NodeState], now_ms: u64) -> (Value, usize) {
    let mut by_node: BTreeMap<&str, BTreeMap<&str, &TaskRow>> = BTreeMap::new();
    for t in nodes.iter().filter(|n| n.alive).flat_map(|n| &n.tasks).filter(|t| t.started_ms > 0) {
        by_node.entry(t.node.as_str()).or_default().insert(t.id.as_str(), t);
    }
    // The cluster's order (the head first), then nodes it no longer lists.
    let mut order: Vec<&str> = nodes.iter().map(|n| n.id.as_str()).filter(|id| by_node.contains_key(id)).collect();
    order.extend(by_node.keys().copied().filter(|id| !nodes.iter().any(|n| n.id == *id)));
    let mut events = Vec::new();
    let mut shown = 0;
    for (pid, node) in order.into_iter().enumerate() {
        events.push(json!({"name": "process_name", "ph": "M", "pid": pid, "args": {"name": node}}));
        let mut tasks: Vec<&TaskRow> = by_node[node].values().copied().collect();
        tasks.sort_by_key(|t| (t.started_ms, t.ended_ms));
        // When each row's last task ends.
        let mut rows: Vec<u64> = Vec::new();
        for t in tasks {
            let end = if t.ended_ms >= t.started_ms { t.ended_ms } else { now_ms.max(t.started_ms) };
            let row = match rows.iter().position(|free_at| *free_at <= t.started_ms) {
                Some(r) => r,
                None => {
                    rows.push(0);
                    rows.len() - 1
                }
            };
            rows[row] = end;
            events.push(json!({
                "name": t.function, "cat": "task", "ph": "X", "pid": pid, "tid": row,
                "ts": t.started_ms * 1000, "dur": (end - t.started_ms) * 1000,
                "args": {"id": t.id, "job": t.job, "state": t.state, "attempts": t.attempts, "error": t.error},
            }));
            shown += 1;
        }
        for row in 0..rows.len() {
            events.push(json!({"name": "thread_name", "ph": "M", "pid": pid, "tid": row, "args": {"name": format!("slot {row}")}}));
        }
    }
    (json!({"traceEvents": events, "displayTimeUnit": "ms"}), shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(function: &str, node: &str, started_ms: u64, ended_ms: u64) -> TaskRow {
        TaskRow {
            id: function.into(),
            function: function.into(),
            node: node.into(),
            started_ms,
            ended_ms,
            ..TaskRow::default()
        }
    }

    #[test]
    fn overlapping_tasks_get_rows_of_their_own_and_pending_ones_none() {
        let head = NodeState {
            id: "node-1".into(),
            alive: true,
            tasks: vec![
                task("f", "node-1", 1_000, 1_010),
                task("g", "node-1", 1_005, 1_020),
                task("h", "node-1", 1_010, 1_012),
                task("running", "node-1", 1_030, 0),
                task("pending", "", 0, 0),
                // Submitted here, run on the worker.
                task("away", "node-2", 1_000, 1_001),
            ],
            ..NodeState::default()
        };
        // The worker lists the same task again (its stand-in ran it).
        let worker = NodeState {
            id: "node-2".into(),
            alive: true,
            tasks: vec![task("away", "node-2", 1_000, 1_001)],
            ..NodeState::default()
        };
        let (trace, shown) = trace(&[head, worker], 1_050);
        assert_eq!(shown, 5);
        let events = trace["traceEvents"].as_array().unwrap();
        let bar = |name: &str| events.iter().find(|e| e["ph"] == "X" && e["name"] == name).unwrap();
        // f and g overlap: two rows; h starts as f ends and takes its row.
        assert_eq!(
            (bar("f")["tid"].as_u64(), bar("g")["tid"].as_u64(), bar("h")["tid"].as_u64()),
            (Some(0), Some(1), Some(0))
        );
        assert_eq!((bar("g")["ts"].as_u64(), bar("g")["dur"].as_u64()), (Some(1_005_000), Some(15_000)));
        // A running task ends now; a task is drawn where it ran.
        assert_eq!(bar("running")["dur"].as_u64(), Some(20_000));
        assert_eq!((bar("f")["pid"].as_u64(), bar("away")["pid"].as_u64()), (Some(0), Some(1)));
        let names: Vec<&Value> =
            events.iter().filter(|e| e["name"] == "process_name").map(|e| &e["args"]["name"]).collect();
        assert_eq!(names, [&json!("node-1"), &json!("node-2")]);
    }
}
