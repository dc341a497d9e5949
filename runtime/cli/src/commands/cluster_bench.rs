//! `wray microbenchmark --cluster`: the workloads that cross nodes.
//!
//! Starts a head (which runs the driver) and one worker (the only node with
//! the `remote` resource, so the benchmark's tasks and actor run there) as
//! `wray start --block` processes on 127.0.0.1, runs the guest's cluster
//! workloads through them, and measures raw QUIC over the same loopback in
//! the same run as the reference for object transfer.

use super::microbenchmark::{Row, fmt, status_bytes};
use anyhow::{Context, anyhow};
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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

/// Exchanges of the raw QUIC round-trip reference.
const ROUND_TRIPS: u64 = 5_000;

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
/// The node's stderr goes to `DIR.stderr`, quoted if it fails to start.
pub(crate) fn start(args: &[&str], dir: &Path, ready: &str) -> anyhow::Result<(NodeProcess, Vec<String>)> {
    let log = dir.with_extension("stderr");
    let mut child = Command::new(std::env::current_exe()?)
        .arg("start")
        .args(args)
        .args(["--block", "--data-dir"])
        .arg(dir)
        .env("HOME", dir)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?)
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
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    let tail: Vec<&str> = stderr.lines().rev().take(10).collect::<Vec<_>>().into_iter().rev().collect();
    Err(anyhow!("wray start {args:?} exited before printing `{ready}`; its stderr ended:\n{}", tail.join("\n")))
}

/// Runs `measure` on an endpoint of this process while a second `wray`
/// process (`wray microbenchmark ROLE ADDR --quic-token T ... JOB`) connects
/// to it and plays the other end, as between two nodes; `what` names the
/// measurement in errors. The other process is killed if the measurement
/// fails, so that it cannot wait forever.
async fn with_peer_process<T>(
    job: &Path,
    role: &[String],
    what: &str,
    measure: impl AsyncFnOnce(&wray_runtime::cluster::Endpoint) -> Result<T, wray_net::NetError>,
) -> anyhow::Result<T> {
    let token = wray_runtime::Token::generate()?;
    let identity = wray_runtime::ClusterIdentity::new(&token, "bench-server")?;
    let endpoint = wray_runtime::cluster::listen("127.0.0.1:0".parse().expect("literal"), &identity)?;
    let addr = endpoint.local_addr()?;
    let mut child = Command::new(std::env::current_exe()?)
        .arg("microbenchmark")
        .arg(&role[0])
        .arg(addr.to_string())
        .args(["--quic-token", &token.to_string()])
        .args(&role[1..])
        .arg(job)
        .stdout(Stdio::null())
        .spawn()?;
    let measured = measure(&endpoint).await;
    if measured.is_err() {
        let _ = child.kill();
    }
    let status = tokio::task::spawn_blocking(move || child.wait()).await??;
    let measured = measured.with_context(|| format!("measuring {what} between two processes"))?;
    if !status.success() {
        return Err(anyhow!("the other process measuring {what} failed ({status})"));
    }
    Ok(measured)
}

/// Raw QUIC from this process to another `wray` process (the receiving end
/// of `wray_net::receive_all`), as between two nodes: bytes per second. With
/// `both_ways`, the other process sends as many bytes back at the same time
/// (`wray_net::send_both_ways`), and the rate is each direction's.
async fn raw_between_processes(job: &Path, bytes: usize, both_ways: bool) -> anyhow::Result<f64> {
    let mut role = vec!["--quic-receive".to_string()];
    if both_ways {
        role.extend(["--quic-send-back".to_string(), bytes.to_string()]);
    }
    with_peer_process(job, &role, "raw QUIC throughput", async |endpoint| {
        if both_ways {
            wray_net::send_both_ways(endpoint, bytes).await
        } else {
            wray_net::send_throughput(endpoint, bytes).await
        }
    })
    .await
}

/// Raw QUIC round trips per second from this process to another `wray`
/// process answering them (`wray_net::echo`), as the head's task streams to
/// a worker.
async fn round_trips_between_processes(job: &Path, n: usize) -> anyhow::Result<f64> {
    let role = ["--quic-echo".to_string()];
    with_peer_process(job, &role, "raw QUIC round trips", async |endpoint| wray_net::round_trips(endpoint, n).await)
        .await
}

/// Runs `measure` as a task of `rt`'s worker threads and waits for it.
///
/// Why not `block_on(measure)`: that polls it on the calling thread, outside
/// the workers, while quinn's endpoint and connection drivers are tasks on
/// the workers, so every wake-up between the two crosses threads. A node
/// serves its connections from tasks on its workers; measured the
/// `block_on` way, raw QUIC round trips within one process came to 13,000 /s
/// against 44,000 /s as a task (2026-12-05), and the reference sat far
/// below what the nodes' own paths can reach. Throughput is the same
/// either way.
pub(crate) fn on_workers<T: Send + 'static>(
    rt: &tokio::runtime::Runtime,
    measure: impl Future<Output = anyhow::Result<T>> + Send + 'static,
) -> anyhow::Result<T> {
    rt.block_on(async { tokio::spawn(measure).await.context("the measuring task failed")? })
}

/// Raw QUIC throughput in GB/s for one stream of `bytes`: within this
/// process, and to a second process.
pub(crate) fn raw_quic(job: &Path, bytes: usize) -> anyhow::Result<(f64, f64)> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let within =
        on_workers(
            &rt,
            async move { wray_net::loopback_throughput(bytes).await.context("measuring raw QUIC throughput") },
        )? / 1e9;
    let job = job.to_path_buf();
    let between = on_workers(&rt, async move { raw_between_processes(&job, bytes, false).await })? / 1e9;
    Ok((within, between))
}

/// Raw QUIC in GB/s per direction when two processes send each other
/// `bytes` at once: the traffic of an allreduce between two nodes.
pub(crate) fn raw_quic_both_ways(job: &Path, bytes: usize) -> anyhow::Result<f64> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let job = job.to_path_buf();
    Ok(on_workers(&rt, async move { raw_between_processes(&job, bytes, true).await })? / 1e9)
}

/// A head and `workers` worker processes on 127.0.0.1, each started with
/// `node_args` (a worker also with `worker_args`), and a client of the head;
/// killed when dropped.
struct LocalCluster {
    head: NodeProcess,
    workers: Vec<NodeProcess>,
    rt: tokio::runtime::Runtime,
    client: wray_runtime::cluster::ClusterClient,
    _dir: tempfile::TempDir,
}

impl LocalCluster {
    fn start(node_args: &[&str], workers: usize, worker_args: &[&str]) -> anyhow::Result<LocalCluster> {
        let each = vec![[node_args, worker_args].concat(); workers];
        let each: Vec<&[&str]> = each.iter().map(Vec::as_slice).collect();
        LocalCluster::start_each(node_args, &each)
    }

    /// A head started with `head_args` and one worker per entry of
    /// `workers`, each with its own flags.
    fn start_each(head_args: &[&str], workers: &[&[&str]]) -> anyhow::Result<LocalCluster> {
        let dir = tempfile::tempdir()?;
        let head_args = [&["--head", "--port", "0", "--no-dashboard"][..], head_args].concat();
        let (head, lines) = start(&head_args, &dir.path().join("head"), "token: ")?;
        let field = |p: &str| lines.iter().find_map(|l| l.strip_prefix(p)).unwrap_or_default().to_string();
        let (address, token) = (field("address: "), field("token: "));
        let mut started = Vec::new();
        for (i, args) in workers.iter().enumerate() {
            if workers.len() > 1 {
                eprintln!("starting worker {} of {} ...", i + 1, workers.len());
            }
            let join = [&["--address", &address, "--token", &token][..], args].concat();
            started.push(start(&join, &dir.path().join(format!("worker{i}")), "joined: ")?.0);
        }
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let client = rt.block_on(wray_runtime::cluster::ClusterClient::connect(&address, &token))?;
        Ok(LocalCluster { head, workers: started, rt, client, _dir: dir })
    }

    /// Runs the guest's workload `name` of size `n` as a job on the
    /// cluster, within `deadline`; returns what follows `RESULT` on the line
    /// it printed.
    fn run(&self, job: &Path, name: &str, n: u64, deadline: Duration) -> anyhow::Result<String> {
        let request =
            wray_runtime::cluster::job_request(job, vec![name.into(), n.to_string()], Vec::new(), None, None)?;
        let mut out = Vec::new();
        let outcome = self
            .rt
            .block_on(async {
                tokio::time::timeout(deadline, self.client.run_job(&request, |_, b| out.extend_from_slice(b))).await
            })
            .map_err(|_| anyhow!("workload {name} did not finish within {deadline:?}: it hung"))??;
        let text = String::from_utf8_lossy(&out).into_owned();
        if outcome.code != 0 {
            return Err(anyhow!("workload {name} failed: {}\n{text}", outcome.message));
        }
        text.lines()
            .find_map(|l| l.strip_prefix("RESULT "))
            .map(str::to_string)
            .ok_or_else(|| anyhow!("workload {name} printed no RESULT line:\n{text}"))
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.rt.block_on(self.client.close());
    }
}

/// The figure at the start of a `RESULT` line.
fn value(line: &str) -> anyhow::Result<f64> {
    line.split_whitespace().next().and_then(|v| v.parse().ok()).ok_or_else(|| anyhow!("bad result line {line:?}"))
}

/// Longest a cluster workload may take before it counts as hung.
const WORKLOAD_DEADLINE: Duration = Duration::from_secs(180);

pub(crate) fn run(job: &Path, scale: f64) -> anyhow::Result<Vec<Row>> {
    // Room for the transfer's object on both sides: the benchmark measures
    // moving it, not spilling it. The worker is the only node with
    // `remote`, where the workloads send their tasks and actor.
    let cluster = LocalCluster::start(
        &["--cpus", "2", "--object-store-memory", "4GiB"],
        1,
        &["--resources", r#"{"remote": 1000000}"#],
    )?;
    let run_workload = |name: &str, n: u64| cluster.run(job, name, n, WORKLOAD_DEADLINE);
    let rt = &cluster.rt;

    let mut rows = Vec::new();
    for w in WORKLOADS {
        let n = ((w.n as f64 * scale).ceil() as u64).max(1);
        eprintln!("running {} ({n}) ...", w.name);
        let v = value(&run_workload(w.guest, n)?)?;
        rows.push(Row {
            name: w.name.into(),
            key: w.guest.into(),
            value: v,
            unit: w.unit.into(),
            higher_is_better: w.higher_is_better,
            note: format!("n = {n}; head + 1 worker, 127.0.0.1"),
        });
    }

    let mib = ((TRANSFER_MIB as f64 * scale).ceil() as u64).max(16);
    eprintln!("running object transfer ({mib} MiB) ...");
    let transfer_line = run_workload("transfer", mib)?;
    let transfer = value(&transfer_line)?;
    let runs = runs_in_order(&transfer_line);
    eprintln!("running raw QUIC within one process and between two ({mib} MiB) ...");
    let (raw, raw_processes) = raw_quic(job, (mib as usize) << 20)?;
    eprintln!("running a plain TCP stream ({mib} MiB) ...");
    let tcp = on_workers(rt, async move {
        wray_net::tcp_loopback_throughput((mib as usize) << 20).await.context("measuring TCP throughput")
    })? / 1e9;
    rows.push(Row {
        name: "object transfer between nodes".into(),
        key: "transfer".into(),
        value: transfer,
        unit: "GB/s".into(),
        higher_is_better: true,
        note: format!(
            "{mib} MiB head → worker, median of three (GB/s in order: {runs}). Raw QUIC, same settings, same \
             direction, same run: {raw:.2} GB/s within one process (transfer = {:.0}% of it), {raw_processes:.2} GB/s \
             between two processes (transfer = {:.0}% of it)",
            100.0 * transfer / raw,
            100.0 * transfer / raw_processes
        ),
    });
    rows.extend(between_workers(job, mib, raw_processes)?);
    rows.push(handoff(job, mib, raw_processes)?);
    let exchanges = ((ROUND_TRIPS as f64 * scale).ceil() as usize).max(100);
    eprintln!("running raw QUIC round trips within one process and between two ({exchanges}) ...");
    let within = on_workers(rt, async move {
        wray_net::loopback_round_trips(exchanges).await.context("measuring raw QUIC round trips")
    })?;
    let owned = job.to_path_buf();
    let between = on_workers(rt, async move { round_trips_between_processes(&owned, exchanges).await })?;
    rows.push(Row {
        name: "raw QUIC round trips, a stream each".into(),
        key: "raw_quic_round_trips".into(),
        value: between,
        unit: "/s".into(),
        higher_is_better: true,
        note: format!(
            "n = {exchanges}; between two processes (as the head and its worker), wray's transport settings: a new \
             stream, {} bytes each way, one exchange at a time — the floor under the sync rows above. Within one \
             process, same run: {} /s",
            wray_net::ROUND_TRIP_BYTES,
            fmt(within)
        ),
    });
    rows.push(Row {
        name: "raw QUIC, one stream".into(),
        key: "raw_quic".into(),
        value: raw,
        unit: "GB/s".into(),
        higher_is_better: true,
        note: format!(
            "{mib} MiB within one process, wray's transport settings. A plain TCP stream over the same loopback, same \
             chunks, same run: {tcp:.2} GB/s (raw QUIC = {:.0}% of it)",
            100.0 * raw / tcp
        ),
    });
    Ok(rows)
}

/// The transfer workload's figures in the order measured, from its result
/// line (`... (runs in order: 0.33, 1.54, 1.60)`).
fn runs_in_order(line: &str) -> &str {
    line.split_once("runs in order: ").map_or("", |(_, r)| r.trim_end_matches(')'))
}

/// The transfer workload between two workers, the job on one of them and
/// its task on the other: over their direct connection, and with both
/// started `--no-direct` (through the head's relay), each on a cluster of
/// its own. `raw` is raw QUIC between two processes in the same run.
fn between_workers(job: &Path, mib: u64, raw: f64) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (name, key, flags) in [
        ("object transfer between workers", "transfer_workers", &[][..]),
        ("object transfer between workers, through the head", "transfer_workers_relayed", &["--no-direct"][..]),
    ] {
        // The head offers no CPU, so the job goes to the first worker (the
        // bigger of equals); only the second has `remote`, where the
        // workload's tasks go.
        let store = ["--object-store-memory", "4GiB"];
        let home = [&["--cpus", "2"][..], &store, flags].concat();
        let remote = [&["--cpus", "2", "--resources", r#"{"remote": 1000000}"#][..], &store, flags].concat();
        let cluster = LocalCluster::start_each(&["--cpus", "0"], &[&home, &remote])?;
        eprintln!("running {name} ({mib} MiB) ...");
        let line = cluster.run(job, "transfer", mib, WORKLOAD_DEADLINE)?;
        let rate = value(&line)?;
        let runs = runs_in_order(&line);
        rows.push(Row {
            name: name.into(),
            key: key.into(),
            value: rate,
            unit: "GB/s".into(),
            higher_is_better: true,
            note: format!(
                "{mib} MiB from the job's worker to the other, the head placing the task, median of three (GB/s in \
                 order: {runs}); {:.0}% of raw QUIC between two processes in this run",
                100.0 * rate / raw
            ),
        });
    }
    Ok(rows)
}

/// An object made by a task on one worker and consumed by a task on
/// another, the job on the head: the result stays where it was made and
/// the consumer fetches it from there (`cluster/held.rs`), so its bytes
/// cross one link — not two through the job's node.
fn handoff(job: &Path, mib: u64, raw: f64) -> anyhow::Result<Row> {
    // Ties go to the bigger node, and the head comes first: the job stays
    // on the head, with as many CPUs as each worker.
    let node = ["--cpus", "2", "--object-store-memory", "4GiB"];
    let maker = [&node[..], &["--resources", r#"{"maker": 1}"#]].concat();
    let consumer = [&node[..], &["--resources", r#"{"remote": 1000000}"#]].concat();
    let cluster = LocalCluster::start_each(&node, &[&maker, &consumer])?;
    eprintln!("running an object made on one worker for a task on another ({mib} MiB) ...");
    let line = cluster.run(job, "handoff", mib, WORKLOAD_DEADLINE)?;
    let rate = value(&line)?;
    Ok(Row {
        name: "object made on one worker, consumed on another".into(),
        key: "handoff".into(),
        value: rate,
        unit: "GB/s".into(),
        higher_is_better: true,
        note: format!(
            "{mib} MiB made by a task on worker A and left there, fetched by a task on worker B; the job on the head \
             (which never holds it); median of three (GB/s in order: {}); {:.0}% of raw QUIC between two processes \
             in this run",
            runs_in_order(&line),
            100.0 * rate / raw
        ),
    })
}

/// Workers of `--scale-out`: a head and this many worker processes.
pub(crate) const SCALE_OUT_WORKERS: usize = 15;

/// `wray microbenchmark --scale-out`: a head and [`SCALE_OUT_WORKERS`]
/// workers (1 CPU each, 100 of the `remote` resource each) as processes on
/// 127.0.0.1; `tasks` tasks and `actors` actors, each placed by the head on
/// a worker and its result checked by the guest. Reports each workload's
/// rate with the head's CPU time and memory.
///
/// ```text
/// wray microbenchmark --scale-out --scale 0.1 microbench.wasm
/// ```
pub(crate) fn scale_out(job: &Path, tasks: u64, actors: u64) -> anyhow::Result<(Vec<Row>, Vec<String>)> {
    let (mut rows, mut failures) = (Vec::new(), Vec::new());
    // Each workload on a cluster of its own, and a failed or hung one
    // reported beside the others' figures rather than hanging the run.
    for (name, guest, n) in
        [("tasks over 15 workers", "scale_tasks", tasks), ("actors over 15 workers", "scale_actors", actors)]
    {
        match scale_out_workload(job, name, guest, n) {
            Ok(row) => rows.push(row),
            Err(e) => failures.push(format!("{name} (n = {n}): {e:#}")),
        }
    }
    Ok((rows, failures))
}

fn scale_out_workload(job: &Path, name: &str, guest: &str, n: u64) -> anyhow::Result<Row> {
    let cluster = LocalCluster::start(
        &["--cpus", "1", "--object-store-memory", "512MiB"],
        SCALE_OUT_WORKERS,
        &["--resources", r#"{"remote": 100}"#],
    )?;
    let head_pid = cluster.head.0.id();
    eprintln!("running {name} ({n}) ...");
    let cpu_before = cpu_seconds(head_pid)?;
    let rate = value(&cluster.run(job, guest, n, WORKLOAD_DEADLINE)?)?;
    let cpu = cpu_seconds(head_pid)? - cpu_before;
    let status = format!("/proc/{head_pid}/status");
    let (rss, peak) = match (status_bytes(&status, "VmRSS:"), status_bytes(&status, "VmHWM:")) {
        (Some(rss), Some(peak)) => (rss, peak),
        _ => return Err(anyhow!("no memory figures in {status}")),
    };
    // The workers hold what the head sent them while it waits there: the
    // largest peak among them (the one given the most) and their sum.
    let mut workers_peak = Vec::new();
    for w in &cluster.workers {
        let status = format!("/proc/{}/status", w.0.id());
        workers_peak.push(status_bytes(&status, "VmHWM:").ok_or_else(|| anyhow!("no memory figures in {status}"))?);
    }
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    Ok(Row {
        name: name.into(),
        key: guest.into(),
        value: rate,
        unit: "/s".into(),
        higher_is_better: true,
        note: format!(
            "n = {n}, every result checked; head + {SCALE_OUT_WORKERS} workers of 1 CPU, 127.0.0.1; the head used \
             {cpu:.2} s of CPU ({:.1} µs per {}), RSS {:.0} MiB (peak {:.0} MiB); the workers' peaks {:.0} MiB at \
             most, {:.0} MiB together",
            cpu * 1e6 / n as f64,
            if guest == "scale_tasks" { "task" } else { "actor" },
            mib(rss),
            mib(peak),
            mib(workers_peak.iter().copied().max().unwrap_or(0)),
            mib(workers_peak.iter().sum()),
        ),
    })
}

/// User plus system CPU time of process `pid`, in seconds.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may contain spaces): utime and
    // stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or_else(|| anyhow!("unreadable /proc/{pid}/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).ok_or_else(|| anyhow!("no field {i}"));
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok((ticks(11)? + ticks(12)?) / hz)
}
