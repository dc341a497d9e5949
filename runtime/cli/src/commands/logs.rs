//! `wray logs`: a node's log or a submitted job's output, from the head.

use crate::Failure;
use anyhow::anyhow;
use clap::Args;
use std::io::Write;
use std::time::Duration;
use wray_runtime::cluster::ClusterClient;

/// Print a node's log (`node.log` in its data directory) or a submitted
/// job's output, from any node of the cluster, through the head. Without
/// --node or --job, lists what there is.
#[derive(Args)]
#[command(after_help = "\
Examples:
  wray logs                                  the nodes and submitted jobs
  wray logs --node node-1a2b-5c0e93d1f27a --tail 4096
  wray logs --node node-1a2b-5c0e93d1f27a --follow
  wray logs --job job-000001 --follow")]
pub struct LogsCommand {
    /// A node's id (as `wray list nodes` shows it).
    #[arg(long, conflicts_with = "job")]
    node: Option<String>,

    /// A submitted job's id (as `wray job list` shows it).
    #[arg(long)]
    job: Option<String>,

    /// Keep printing what is appended (a job: until it ends).
    #[arg(long)]
    follow: bool,

    /// With --node: start this many bytes before the end (default 64 KiB).
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 10, requires = "node")]
    tail: u64,

    /// The head node, HOST:PORT; `auto` or none: the head `wray start
    /// --head` runs on this machine.
    #[arg(long, env = "WRAY_ADDRESS")]
    address: Option<String>,

    /// The cluster's token (printed by `wray start --head`); none: the
    /// local head's.
    #[arg(long, env = "WRAY_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// How often `--follow` asks a node for more of its log.
const FOLLOW_EVERY: Duration = Duration::from_millis(500);

impl LogsCommand {
    pub fn execute(self) -> Result<(), Failure> {
        let target = super::local_head::resolve(self.address.clone(), self.token.clone())?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async {
            let client = ClusterClient::connect(&target.address, &target.token).await?;
            match (&self.node, &self.job) {
                (Some(node), _) => self.node_log(&client, node).await,
                (None, Some(job)) => {
                    let record = client
                        .job_logs(job, self.follow, |chunk| {
                            let mut out = std::io::stdout().lock();
                            let _ = out.write_all(chunk).and_then(|()| out.flush());
                        })
                        .await
                        .map_err(Failure::Usage)?;
                    if matches!(record.status.as_str(), "FAILED" | "STOPPED") {
                        eprintln!("wray: {job} {}: {}", record.status, record.message);
                    }
                    Ok(())
                }
                (None, None) => {
                    let nodes = client.state().await?;
                    println!("nodes (wray logs --node ID):");
                    for n in &nodes {
                        println!("  {}  {}{}", n.id, n.role, if n.alive { "" } else { " (dead)" });
                    }
                    println!("submitted jobs (wray logs --job ID):");
                    for j in client.list_jobs().await.map_err(Failure::Usage)? {
                        println!("  {}  {}", j.id, j.status);
                    }
                    Ok(())
                }
            }
        })
    }

    async fn node_log(&self, client: &ClusterClient, node: &str) -> Result<(), Failure> {
        let max = wray_runtime::state::MAX_LOG_CHUNK as u64;
        // The tail first: the file's size, then from `size - tail`.
        let (_, size, _) = client.node_log(node, u64::MAX, 0).await.map_err(Failure::Usage)?;
        let mut offset = size.saturating_sub(self.tail);
        loop {
            let (at, size, data) = client.node_log(node, offset, max).await.map_err(Failure::Usage)?;
            if size < offset {
                // The file was truncated or replaced: start over.
                eprintln!("wray: {node}'s log restarted");
                offset = 0;
                continue;
            }
            {
                let mut out = std::io::stdout().lock();
                out.write_all(&data).and_then(|()| out.flush()).map_err(|e| anyhow!(e))?;
            }
            offset = at + data.len() as u64;
            if offset < size {
                continue;
            }
            if !self.follow {
                return Ok(());
            }
            tokio::time::sleep(FOLLOW_EVERY).await;
        }
    }
}
