//! `wray list`: Ray's state CLI (`ray list tasks|actors|...`) for a wray
//! cluster.

use crate::Failure;
use anyhow::anyhow;
use clap::{Args, ValueEnum};
use serde_json::{Value, json};
use wray_runtime::cluster::ClusterClient;
use wray_runtime::state::NodeState;

/// List what a cluster holds: its nodes, jobs, recent tasks, actors,
/// largest objects, placement groups, or the experiments its jobs published
/// (Tune, Train).
///
/// Each node keeps its last 1000 finished tasks and reports its 500 largest
/// objects; counts (`wray status`, the dashboard) stay exact beyond that.
#[derive(Args)]
#[command(after_help = "\
Examples:
  wray list nodes
  wray list tasks --filter state=FAILED
  wray list actors --filter class=Counter --filter state=ALIVE --json
  wray list jobs --filter status!=SUCCEEDED
  wray list objects --limit 10
  wray list experiments --json")]
pub struct ListCommand {
    /// What to list.
    what: What,

    /// Keep rows whose FIELD equals (or with != differs from) VALUE, case
    /// aside; FIELD is a column's name as --json prints it (repeatable: all
    /// must hold).
    #[arg(long = "filter", value_name = "FIELD=VALUE", value_parser = parse_filter)]
    filters: Vec<Filter>,

    /// Print JSON (an array of rows) instead of a table.
    #[arg(long)]
    json: bool,

    /// Rows at most.
    #[arg(long, value_name = "N", default_value_t = 100)]
    limit: usize,

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
pub(crate) enum What {
    Nodes,
    Jobs,
    Tasks,
    Actors,
    Objects,
    PlacementGroups,
    /// What jobs published: Tune experiments, Train runs.
    Experiments,
}

#[derive(Clone, Debug)]
struct Filter {
    field: String,
    value: String,
    equal: bool,
}

fn parse_filter(s: &str) -> Result<Filter, String> {
    let (field, value, equal) = match s.split_once("!=") {
        Some((f, v)) => (f, v, false),
        None => match s.split_once('=') {
            Some((f, v)) => (f, v, true),
            None => return Err(format!("{s:?} is not FIELD=VALUE or FIELD!=VALUE")),
        },
    };
    let field = field.trim();
    if field.is_empty() {
        return Err(format!("{s:?} names no field"));
    }
    Ok(Filter { field: field.to_string(), value: value.trim().to_string(), equal })
}

impl Filter {
    fn keeps(&self, row: &Value) -> bool {
        let text = match &row[&self.field] {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        text.eq_ignore_ascii_case(&self.value) == self.equal
    }
}

/// The columns a table shows for each kind (every field is in --json).
fn columns(what: What) -> &'static [&'static str] {
    match what {
        What::Nodes => {
            &["id", "role", "alive", "cpus", "cpus_available", "tasks_running", "actors", "objects", "object_memory"]
        }
        What::Jobs => &["id", "name", "status", "node", "start", "end", "message"],
        What::Tasks => &["id", "function", "state", "node", "job", "duration_ms", "attempts", "error"],
        What::Actors => &["id", "class", "name", "state", "node", "restarts", "pending_calls", "job", "death"],
        What::Objects => &["id", "node", "job", "size", "refs", "state"],
        What::PlacementGroups => &["id", "bundles", "nodes"],
        What::Experiments => &["topic", "job", "state", "trials", "best", "updated"],
    }
}

fn iso(ms: u64) -> String {
    if ms == 0 {
        return String::new();
    }
    // Seconds since the epoch as UTC date and time, without a date crate.
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Howard Hinnant's days-to-civil conversion.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn resource(pairs: &[(String, f64)], key: &str) -> f64 {
    pairs.iter().find(|(k, _)| k == key).map_or(0.0, |(_, v)| *v)
}

/// The rows of `what`, newest or largest first, as JSON objects.
pub(crate) fn rows(what: What, nodes: &[NodeState]) -> Vec<Value> {
    let alive = || nodes.iter().filter(|n| n.alive);
    match what {
        What::Nodes => nodes
            .iter()
            .map(|n| {
                json!({
                    "id": n.id, "role": n.role, "alive": n.alive,
                    "cpus": resource(&n.total, "CPU"), "cpus_available": resource(&n.available, "CPU"),
                    "gpus": resource(&n.total, "GPU"), "resources": n.total, "available": n.available,
                    "memory_rss": n.memory_rss, "queued": n.queued,
                    "tasks_pending": n.task_counts.pending, "tasks_running": n.task_counts.running,
                    "tasks_finished": n.task_counts.finished, "tasks_failed": n.task_counts.failed,
                    "actors": n.actors.iter().filter(|a| a.state != "DEAD").count(),
                    "objects": n.store.objects, "object_memory": n.store.memory_bytes,
                    "object_spilled": n.store.spilled_bytes, "uptime_ms": n.uptime_ms,
                    "last_heartbeat_ms": n.net.last_heartbeat_ms,
                })
            })
            .collect(),
        What::Jobs => {
            // A submitted job is in the head's records and, while it runs,
            // on the node running it: one row each, the running node's.
            let mut jobs: Vec<&wray_runtime::state::JobRow> = Vec::new();
            for j in alive().flat_map(|n| &n.jobs) {
                match jobs.iter_mut().find(|seen| seen.id == j.id) {
                    Some(seen) if seen.status != "RUNNING" && j.status == "RUNNING" => *seen = j,
                    Some(_) => {}
                    None => jobs.push(j),
                }
            }
            jobs.sort_by_key(|j| std::cmp::Reverse(j.start_ms));
            jobs.into_iter()
                .map(|j| {
                    let mut v = serde_json::to_value(j).unwrap_or_default();
                    v["start"] = json!(iso(j.start_ms));
                    v["end"] = json!(iso(j.end_ms));
                    v
                })
                .collect()
        }
        What::Tasks => {
            let mut tasks: Vec<_> = alive().flat_map(|n| &n.tasks).collect();
            tasks.sort_by_key(|t| std::cmp::Reverse(t.submitted_ms));
            tasks
                .into_iter()
                .map(|t| {
                    let mut v = serde_json::to_value(t).unwrap_or_default();
                    if t.started_ms > 0 && t.ended_ms >= t.started_ms {
                        v["duration_ms"] = json!(t.ended_ms - t.started_ms);
                    }
                    v
                })
                .collect()
        }
        What::Actors => alive().flat_map(|n| &n.actors).map(|a| serde_json::to_value(a).unwrap_or_default()).collect(),
        What::Objects => {
            let mut objects: Vec<Value> = alive()
                .flat_map(|n| {
                    n.objects.iter().map(|o| {
                        let mut v = serde_json::to_value(o).unwrap_or_default();
                        v["node"] = json!(n.id);
                        v
                    })
                })
                .collect();
            objects.sort_by_key(|o| std::cmp::Reverse(o["size"].as_u64().unwrap_or(0)));
            objects
        }
        What::Experiments => {
            let mut rows: Vec<_> = alive().flat_map(|n| &n.published).collect();
            rows.sort_by_key(|p| std::cmp::Reverse(p.updated_ms));
            rows.into_iter()
                .map(|p| {
                    // A library's document has these fields; anyone else's
                    // is shown as it is.
                    let doc: Value = serde_json::from_str(&p.body).unwrap_or(Value::Null);
                    let best = match (&doc["best"], doc["metric"].as_str()) {
                        (Value::Object(b), Some(m)) => format!("{m}={} ({})", cell(&b["value"]), cell(&b["name"])),
                        _ => String::new(),
                    };
                    json!({
                        "topic": p.topic, "job": p.job, "updated": iso(p.updated_ms), "updated_ms": p.updated_ms,
                        "kind": doc["kind"], "state": doc["state"], "trials": doc["trial_count"], "best": best,
                        "document": if doc.is_null() { json!(p.body) } else { doc },
                    })
                })
                .collect()
        }
        What::PlacementGroups => alive()
            .flat_map(|n| &n.groups)
            .map(|g| {
                let nodes: Vec<&str> = g.bundles.iter().map(|(n, _)| n.as_str()).collect();
                json!({ "id": g.id, "bundles": g.bundles.len(), "nodes": nodes.join(","), "placement": g.bundles })
            })
            .collect(),
    }
}

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.replace('\n', " "),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Prints rows as a table with aligned columns; long cells are cut.
pub(crate) fn print_table(cols: &[&str], rows: &[Value]) {
    const MAX_CELL: usize = 60;
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            cols.iter()
                .map(|c| {
                    let s = cell(&r[*c]);
                    if s.chars().count() > MAX_CELL {
                        format!("{}…", s.chars().take(MAX_CELL - 1).collect::<String>())
                    } else {
                        s
                    }
                })
                .collect()
        })
        .collect();
    let widths: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| cells.iter().map(|r| r[i].chars().count()).chain([c.len()]).max().unwrap_or(0))
        .collect();
    let line = |items: Vec<String>| {
        let padded: Vec<String> = items.iter().zip(&widths).map(|(s, w)| format!("{s:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(cols.iter().map(|c| c.to_uppercase()).collect());
    for r in cells {
        line(r);
    }
}

/// Every node's state, asked of the cluster `--address`/`--token` name (or
/// the head on this machine): what `list` and `summary` show.
pub(crate) fn cluster_state(address: Option<String>, token: Option<String>) -> Result<Vec<NodeState>, Failure> {
    let target = super::local_head::resolve(address, token)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    Ok(rt.block_on(async {
        let client = ClusterClient::connect(&target.address, &target.token).await?;
        client.state().await
    })?)
}

impl ListCommand {
    pub fn execute(self) -> Result<(), Failure> {
        let nodes = cluster_state(self.address.clone(), self.token.clone())?;
        let all = rows(self.what, &nodes);
        if let Some(first) = all.first()
            && let Some(f) = self.filters.iter().find(|f| first.get(&f.field).is_none())
        {
            let fields: Vec<&String> = first.as_object().map(|o| o.keys().collect()).unwrap_or_default();
            let fields: Vec<&str> = fields.iter().map(|s| s.as_str()).collect();
            return Err(Failure::Usage(anyhow!("no field {:?} to filter on; fields: {}", f.field, fields.join(", "))));
        }
        let kept: Vec<Value> = all.into_iter().filter(|r| self.filters.iter().all(|f| f.keeps(r))).collect();
        let shown = &kept[..kept.len().min(self.limit)];
        if self.json {
            println!("{}", serde_json::to_string_pretty(shown).map_err(anyhow::Error::from)?);
        } else if shown.is_empty() {
            let name = match self.what {
                What::Nodes => "nodes",
                What::Jobs => "jobs",
                What::Tasks => "tasks",
                What::Actors => "actors",
                What::Objects => "objects",
                What::PlacementGroups => "placement groups",
                What::Experiments => "experiments",
            };
            println!("no {name} match");
        } else {
            print_table(columns(self.what), shown);
        }
        if kept.len() > shown.len() && !self.json {
            eprintln!("(showing {} of {}; --limit to see more)", shown.len(), kept.len());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_match_case_aside() {
        let f = parse_filter("state=failed").unwrap();
        assert!(f.keeps(&json!({ "state": "FAILED" })));
        assert!(!f.keeps(&json!({ "state": "FINISHED" })));
        let f = parse_filter("status!=SUCCEEDED").unwrap();
        assert!(f.keeps(&json!({ "status": "RUNNING" })));
        assert!(parse_filter("state").is_err());
        assert!(parse_filter("=x").is_err());
        let n = parse_filter("restarts=2").unwrap();
        assert!(n.keeps(&json!({ "restarts": 2 })));
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(iso(0), "");
        assert_eq!(iso(1_764_763_200_000), "2025-12-03 12:00:00");
        assert_eq!(iso(951_782_400_000), "2000-02-29 00:00:00");
    }
}
