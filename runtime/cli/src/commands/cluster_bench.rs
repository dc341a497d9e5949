//! `wray microbenchmark --cluster`: the workloads that cross nodes.
//!
//! Starts a head (which runs the driver) and one worker (the only node with
//! the `remote` resource, so the benchmark's tasks and actor run there) as
//! `wray start --block` processes on 127.0.0.1, runs the guest's cluster
//! workloads through them, and measures raw QUIC over the same loopback in
//! the same run as the reference for object transfer.

use super::microbenchmark::Row;
use anyhow::{Context, anyhow};
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// One cluster workload: its label, the guest's name, its size, Ray's
/// figure if one was quoted, the unit, and whether larger is better.
struct Workload {
    name: &'static str,
    guest: &'static str,
    n: u64,
    unit: &'static str,
    higher_is_better: bool,
}

const WORKLOADS: &[Workload] = &[
    Workload {
        name: "tasks across nodes, sync",
        guest: "remote_tasks_sync",
        n: 2_000,
        unit: "/s",
        higher_is_better: true,
    },
    Workload {
        name: "tasks across nodes, async",
        guest: "remote_tasks_async",
        n: 10_000,
        unit: "/s",
        higher_is_better: true,
    },
    Workload {
        name: "actor calls across nodes, sync",
        guest: "remote_actor_sync",
        n: 5_000,
        unit: "/s",
        higher_is_better: true,
    },
    Workload {
        name: "actor calls across nodes, async",
        guest: "remote_actor_async",
        n: 50_000,
        unit: "/s",
        higher_is_better: true,
    },
    Workload {
        name: "placement group create+remove (on the head)",
        guest: "placement_groups",
        n: 5_000,
        unit: "/s",
        higher_is_better: true,
    },
];

/// MiB moved by the transfer workload.
const TRANSFER_MIB: u64 = 1024;

/// A node started for the benchmark; killed when dropped.
pub(crate) struct NodeProcess(Child);

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `wray start ARGS --block` and waits for the line starting with
/// `ready`; returns the process and the lines it printed.
pub(crate) fn start(args: &[&str], dir: &Path, ready: &str) -> anyhow::Result<(NodeProcess, Vec<String>)> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg("start")
        .args(args)
        .args(["--block", "--data-dir"])
        .arg(dir)
        .env("HOME", dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().expect("piped");
    let node = NodeProcess(child);
    let mut lines = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line?;
        let done = line.starts_with(ready);
        lines.push(line);
        if done {
            return Ok((node, lines));
        }
    }
    Err(anyhow!("wray start {args:?} exited before printing `{ready}`"))
}

/// Raw QUIC from this process to another `wray` process (the receiving end
/// of `wray_net::receive_all`), as between two nodes: bytes per second.
async fn raw_between_processes(job: &Path, bytes: usize) -> anyhow::Result<f64> {
    let token = wray_runtime::Token::generate()?;
    let identity = wray_runtime::ClusterIdentity::new(&token, "bench-server")?;
    let endpoint = wray_runtime::cluster::listen("127.0.0.1:0".parse().expect("literal"), &identity)?;
    let addr = endpoint.local_addr()?;
    let mut child = Command::new(std::env::current_exe()?)
        .args(["microbenchmark", "--quic-receive", &addr.to_string(), "--quic-token", &token.to_string()])
        .arg(job)
        .stdout(Stdio::null())
        .spawn()?;
    let rate = wray_net::send_throughput(&endpoint, bytes).await;
    let status = tokio::task::spawn_blocking(move || child.wait()).await??;
    let rate = rate?;
    if !status.success() {
        return Err(anyhow!("the receiving process failed ({status})"));
    }
    Ok(rate)
}

/// Raw QUIC throughput in GB/s for one stream of `bytes`: within this
/// process, and to a second process.
pub(crate) fn raw_quic(job: &Path, bytes: usize) -> anyhow::Result<(f64, f64)> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let within = rt.block_on(wray_net::loopback_throughput(bytes)).context("measuring raw QUIC throughput")? / 1e9;
    let between = rt.block_on(raw_between_processes(job, bytes))? / 1e9;
    Ok((within, between))
}

pub(crate) fn run(job: &Path, scale: f64) -> anyhow::Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    // Room for the transfer's object on both sides: the benchmark measures
    // moving it, not spilling it.
    let memory = ["--object-store-memory", "4GiB"];
    let head_args = [&["--head", "--port", "0", "--cpus", "2"][..], &memory].concat();
    let (_head, lines) = start(&head_args, &dir.path().join("head"), "token: ")?;
    let field = |p: &str| lines.iter().find_map(|l| l.strip_prefix(p)).unwrap_or_default().to_string();
    let (address, token) = (field("address: "), field("token: "));
    let worker_args = [
        &["--address", &address, "--token", &token, "--cpus", "2", "--resources", r#"{"remote": 1000000}"#][..],
        &memory,
    ]
    .concat();
    let (_worker, _) = start(&worker_args, &dir.path().join("worker"), "joined: ")?;

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let client = rt.block_on(wray_runtime::cluster::ClusterClient::connect(&address, &token))?;
    let run_workload = |name: &str, n: u64| -> anyhow::Result<String> {
        let request =
            wray_runtime::cluster::job_request(job, vec![name.into(), n.to_string()], Vec::new(), None, None)?;
        let mut out = Vec::new();
        let outcome = rt.block_on(client.run_job(&request, |b| out.extend_from_slice(b)))?;
        let text = String::from_utf8_lossy(&out).into_owned();
        if outcome.code != 0 {
            return Err(anyhow!("workload {name} failed: {}\n{text}", outcome.message));
        }
        text.lines()
            .find_map(|l| l.strip_prefix("RESULT "))
            .map(str::to_string)
            .ok_or_else(|| anyhow!("workload {name} printed no RESULT line:\n{text}"))
    };
    let value = |line: &str| -> anyhow::Result<f64> {
        line.split_whitespace().next().and_then(|v| v.parse().ok()).ok_or_else(|| anyhow!("bad result line {line:?}"))
    };

    let mut rows = Vec::new();
    for w in WORKLOADS {
        let n = ((w.n as f64 * scale).ceil() as u64).max(1);
        eprintln!("running {} ({n}) ...", w.name);
        let v = value(&run_workload(w.guest, n)?)?;
        let ray = (w.guest == "placement_groups").then_some(424.0);
        rows.push(Row {
            name: w.name.into(),
            value: v,
            unit: w.unit.into(),
            ray,
            higher_is_better: w.higher_is_better,
            note: format!("n = {n}; head + 1 worker, 127.0.0.1"),
        });
    }

    let mib = ((TRANSFER_MIB as f64 * scale).ceil() as u64).max(16);
    eprintln!("running object transfer ({mib} MiB) ...");
    let transfer = value(&run_workload("transfer", mib)?)?;
    eprintln!("running raw QUIC loopback ({mib} MiB) ...");
    let raw =
        rt.block_on(wray_net::loopback_throughput((mib as usize) << 20)).context("measuring raw QUIC throughput")?
            / 1e9;
    eprintln!("running raw QUIC between two processes ({mib} MiB) ...");
    let raw_processes = rt.block_on(raw_between_processes(job, (mib as usize) << 20))? / 1e9;
    rows.push(Row {
        name: "object transfer between nodes".into(),
        value: transfer,
        unit: "GB/s".into(),
        ray: None,
        higher_is_better: true,
        note: format!(
            "{mib} MiB head → worker. Raw QUIC, same settings, same direction, same run: {raw:.2} GB/s within one \
             process (transfer = {:.0}% of it), {raw_processes:.2} GB/s between two processes (transfer = {:.0}% of it)",
            100.0 * transfer / raw,
            100.0 * transfer / raw_processes
        ),
    });
    rt.block_on(client.close());
    Ok(rows)
}
