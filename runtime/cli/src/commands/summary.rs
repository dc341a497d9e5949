//! `wray summary`: Ray's `ray summary tasks|actors` — the cluster's tasks
//! grouped by function and its actors by class, with how many are in each
//! state.

use super::list::{What, cluster_state, print_table, rows};
use crate::Failure;
use clap::{Args, ValueEnum};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Summarize a cluster's tasks by function, or its actors by class: how
/// many of each are in each state (and, for tasks, how long the finished
/// ones ran on average).
///
/// Built from what `wray list` shows: every task running or waiting, and
/// each node's last 1000 finished ones.
#[derive(Args)]
#[command(after_help = "\
Examples:
  wray summary tasks
  wray summary actors --json
  wray summary tasks --address 127.0.0.1:6380 --token TOKEN")]
pub struct SummaryCommand {
    /// What to summarize.
    what: Summarized,

    /// Print JSON (an array of groups) instead of a table.
    #[arg(long)]
    json: bool,

    /// The head node, HOST:PORT; `auto` or none: the head `wray start
    /// --head` runs on this machine.
    #[arg(long, env = "WRAY_ADDRESS")]
    address: Option<String>,

    /// The cluster's token (printed by `wray start --head`); none: the
    /// local head's.
    #[arg(long, env = "WRAY_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Summarized {
    Tasks,
    Actors,
}

impl SummaryCommand {
    pub fn execute(self) -> Result<(), Failure> {
        let nodes = cluster_state(self.address.clone(), self.token.clone())?;
        let (listed, key, name) = match self.what {
            Summarized::Tasks => (rows(What::Tasks, &nodes), "function", "tasks"),
            Summarized::Actors => (rows(What::Actors, &nodes), "class", "actors"),
        };
        let groups = summarize(&listed, key);
        if self.json {
            println!("{}", serde_json::to_string_pretty(&groups).map_err(anyhow::Error::from)?);
        } else if groups.is_empty() {
            println!("no {name}");
        } else {
            println!("{} {name} in {} groups", listed.len(), groups.len());
            let cols: &[&str] = match self.what {
                Summarized::Tasks => &["function", "total", "states", "mean_ms"],
                Summarized::Actors => &["class", "total", "states"],
            };
            // The table shows the counts as one cell: `FINISHED: 12, FAILED: 1`.
            let shown: Vec<Value> = groups
                .iter()
                .map(|g| {
                    let mut g = g.clone();
                    let states = g["states"]
                        .as_object()
                        .map(|m| m.iter().map(|(s, n)| format!("{s}: {n}")).collect::<Vec<_>>().join(", "));
                    g["states"] = json!(states.unwrap_or_default());
                    g
                })
                .collect();
            print_table(cols, &shown);
        }
        Ok(())
    }
}

/// `listed` grouped by the value of `key`, largest group first (then by
/// name): `{key, total, states: {STATE: n}, mean_ms}`, `mean_ms` being the
/// mean `duration_ms` of the rows that have one (absent if none has).
fn summarize(listed: &[Value], key: &str) -> Vec<Value> {
    #[derive(Default)]
    struct Group {
        total: u64,
        states: BTreeMap<String, u64>,
        ms: (f64, u64),
    }
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for row in listed {
        let group = groups.entry(row[key].as_str().unwrap_or_default().to_string()).or_default();
        group.total += 1;
        *group.states.entry(row["state"].as_str().unwrap_or("UNKNOWN").to_string()).or_default() += 1;
        if let Some(ms) = row["duration_ms"].as_f64() {
            group.ms.0 += ms;
            group.ms.1 += 1;
        }
    }
    let mut out: Vec<(String, Group)> = groups.into_iter().collect();
    out.sort_by(|a, b| b.1.total.cmp(&a.1.total).then_with(|| a.0.cmp(&b.0)));
    out.into_iter()
        .map(|(name, g)| {
            let mut v = json!({ key: name, "total": g.total, "states": g.states });
            if g.ms.1 > 0 {
                v["mean_ms"] = json!((g.ms.0 / g.ms.1 as f64 * 10.0).round() / 10.0);
            }
            v
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_count_states_and_average_durations() {
        let rows = vec![
            json!({"function": "job::f", "state": "FINISHED", "duration_ms": 10}),
            json!({"function": "job::f", "state": "FINISHED", "duration_ms": 20}),
            json!({"function": "job::f", "state": "FAILED", "duration_ms": 3}),
            json!({"function": "job::g", "state": "RUNNING"}),
            json!({"function": "job::h", "state": "FINISHED", "duration_ms": 1}),
        ];
        let groups = summarize(&rows, "function");
        assert_eq!(groups.len(), 3);
        assert_eq!(
            groups[0],
            json!({"function": "job::f", "total": 3, "states": {"FAILED": 1, "FINISHED": 2}, "mean_ms": 11.0})
        );
        // Equal totals: by name; no duration, no mean.
        assert_eq!(groups[1], json!({"function": "job::g", "total": 1, "states": {"RUNNING": 1}}));
        assert_eq!(groups[2]["function"], "job::h");
        assert!(summarize(&[], "function").is_empty());
    }
}
