//! `wray status`: what a cluster holds.

use crate::Failure;
use clap::Args;
use wray_runtime::cluster::ClusterClient;

/// Show a cluster's nodes, their resources and object-store use.
#[derive(Args)]
#[command(after_help = "\
Examples:
  wray status --address 127.0.0.1:6380 --token TOKEN
  WRAY_ADDRESS=127.0.0.1:6380 WRAY_TOKEN=TOKEN wray status --json")]
pub struct StatusCommand {
    /// The head node, HOST:PORT; `auto` or none: the head `wray start
    /// --head` runs on this machine.
    #[arg(long, env = "WRAY_ADDRESS")]
    address: Option<String>,

    /// The cluster's token (printed by `wray start --head`); none: the
    /// local head's.
    #[arg(long, env = "WRAY_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// Print JSON: `{"nodes": [...]}`, one object per node with the fields
    /// the text shows.
    #[arg(long)]
    json: bool,
}

impl StatusCommand {
    pub fn execute(self) -> Result<(), Failure> {
        let target = super::local_head::resolve(self.address.clone(), self.token.clone())?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let report = rt.block_on(async {
            let client = ClusterClient::connect(&target.address, &target.token).await?;
            client.status().await
        })?;
        if self.json {
            let nodes: Vec<serde_json::Value> = report
                .nodes
                .iter()
                .map(|n| {
                    let map = |r: &[(String, f64)]| {
                        r.iter().map(|(k, v)| (k.clone(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>()
                    };
                    serde_json::json!({
                        "id": n.id, "address": n.address, "alive": n.alive,
                        "resources": map(&n.total), "available": map(&n.available),
                        "jobs": n.jobs, "idle_jobs": n.idle_jobs, "tasks": n.tasks, "actors": n.actors,
                        "objects": n.objects, "object_memory": n.object_memory, "object_spilled": n.object_spilled,
                    })
                })
                .collect();
            println!("{}", serde_json::json!({ "nodes": nodes }));
            return Ok(());
        }
        for n in report.nodes {
            let list = |r: &[(String, f64)]| r.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ");
            println!("node {} ({})", n.id, if n.alive { "alive" } else { "dead" });
            if !n.address.is_empty() {
                println!("  address: {}", n.address);
            }
            println!("  resources: {}", list(&n.total));
            println!("  available: {}", list(&n.available));
            if n.idle_jobs > 0 {
                println!(
                    "  jobs running: {} (and {} of other nodes kept idle after their last task)",
                    n.jobs, n.idle_jobs
                );
            } else {
                println!("  jobs running: {}", n.jobs);
            }
            println!("  tasks queued or running: {}, live actors: {}", n.tasks, n.actors);
            println!("  objects: {} ({} bytes in memory, {} spilled)", n.objects, n.object_memory, n.object_spilled);
        }
        Ok(())
    }
}
