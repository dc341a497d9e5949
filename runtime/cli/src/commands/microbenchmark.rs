//! `wray microbenchmark`: Ray's `ray microbenchmark` workloads on wray.

use crate::Failure;
use anyhow::{Context, anyhow};
use clap::Args;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use wray_runtime::{Grants, JobConfig, Output, OutputPipe, Runtime};

/// Run Ray's microbenchmark workloads (same names, same shapes) on an
/// embedded runtime and print a table of them — beside Ray's figures for the
/// same workloads when `--ray` names a file of them measured in the same run
/// (`benches/core.sh` does both).
///
/// The workloads live in a guest job: build it with
/// `wray build benches/microbench`. Build wray itself with --release for
/// meaningful numbers.
#[derive(Args)]
#[command(after_help = "\
Examples:
  wray microbenchmark \"$(wray build benches/microbench | tail -n1)\"
  wray microbenchmark --markdown --scale 0.2 microbench.wasm
  wray microbenchmark --ray ray.jsonl microbench.wasm   (what benches/core.sh runs)")]
pub struct MicrobenchmarkCommand {
    /// The microbenchmark job (benches/microbench built with `wray build`).
    job: PathBuf,

    /// Multiply every workload's size by this (smaller: faster, noisier).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,

    /// Print a Markdown table (for docs/BENCHMARKS.md).
    #[arg(long)]
    markdown: bool,

    /// Ray's figures for the same workloads, measured in the same run: one
    /// JSON object per line, `{"guest": WORKLOAD, "value": V, "unit": U,
    /// "note": N}`, as `benches/reference/core_bench.py` prints them. Rows
    /// whose workload and unit match get Ray's figure and the ratio.
    #[arg(long, value_name = "FILE")]
    ray: Option<PathBuf>,

    /// CPU slots of the runtime.
    #[arg(long, default_value_t = 2.0)]
    cpus: f64,

    /// Run the cluster workloads instead: a head and a worker node started
    /// as processes on 127.0.0.1, tasks and actor calls across them, object
    /// transfer between them next to raw QUIC on the same loopback.
    #[arg(long)]
    cluster: bool,

    /// Run the scale-out workloads instead: a head and 15 workers (1 CPU
    /// each) as processes on 127.0.0.1, 100,000 tasks and 1,000 actors
    /// (times --scale) placed over them by the head, every result checked,
    /// with the head's CPU time and memory.
    #[arg(long, conflicts_with = "cluster")]
    scale_out: bool,

    /// Only measure raw QUIC on 127.0.0.1 — one stream of MIB MiB within
    /// this process and to a second process, then MIB MiB each way at once
    /// between two processes — print them and exit: the references other
    /// benchmarks (benches/train.sh) set beside their cross-node figures in
    /// the same run.
    #[arg(long, value_name = "MIB", conflicts_with = "cluster")]
    raw_quic: Option<u64>,

    /// Internal to --cluster: receive one QUIC stream from ADDR and exit.
    #[arg(long, hide = true, value_name = "ADDR", requires = "quic_token")]
    quic_receive: Option<std::net::SocketAddr>,

    /// Internal to --cluster: answer the QUIC round trips from ADDR (echo
    /// each stream) and exit.
    #[arg(long, hide = true, value_name = "ADDR", requires = "quic_token", conflicts_with = "quic_receive")]
    quic_echo: Option<std::net::SocketAddr>,

    /// Internal to --cluster: the token for --quic-receive or --quic-echo.
    #[arg(long, hide = true)]
    quic_token: Option<String>,

    /// Internal to --raw-quic: with --quic-receive, send BYTES back at the
    /// same time.
    #[arg(long, hide = true, value_name = "BYTES", requires = "quic_receive")]
    quic_send_back: Option<usize>,
}

/// A workload: Ray's name, the guest's name, its size, its unit and whether
/// larger is better.
struct Workload {
    name: &'static str,
    guest: &'static str,
    n: u64,
    unit: &'static str,
    higher_is_better: bool,
}

const WORKLOADS: &[Workload] = &[
    Workload { name: "single client tasks sync", guest: "tasks_sync", n: 20_000, unit: "/s", higher_is_better: true },
    Workload { name: "single client tasks async", guest: "tasks_async", n: 50_000, unit: "/s", higher_is_better: true },
    Workload { name: "1:1 actor calls sync", guest: "actor_sync", n: 20_000, unit: "/s", higher_is_better: true },
    Workload {
        name: "1:1 actor calls sync, snapshot after each (4 MiB state)",
        guest: "actor_sync_checkpointed",
        n: 5_000,
        unit: "/s",
        higher_is_better: true,
    },
    Workload { name: "1:1 actor calls async", guest: "actor_async", n: 50_000, unit: "/s", higher_is_better: true },
    Workload { name: "n:n actor calls async", guest: "actor_nn_async", n: 100_000, unit: "/s", higher_is_better: true },
    Workload { name: "single client wait 1k refs", guest: "wait_1k", n: 20, unit: "/s", higher_is_better: true },
    Workload { name: "single client put calls", guest: "put_calls", n: 50_000, unit: "/s", higher_is_better: true },
    Workload { name: "single client get calls", guest: "get_calls", n: 100_000, unit: "/s", higher_is_better: true },
    Workload {
        name: "single client put gigabytes",
        guest: "put_gigabytes",
        n: 50,
        unit: "GB/s",
        higher_is_better: true,
    },
    Workload {
        name: "placement group create+remove",
        guest: "placement_groups",
        n: 20_000,
        unit: "/s",
        higher_is_better: true,
    },
    Workload { name: "1000-task dependency chain", guest: "chain", n: 1000, unit: "ms/link", higher_is_better: false },
    Workload {
        name: "generator items (1,000 per task), streamed",
        guest: "generator_items",
        n: 50_000,
        unit: "/s",
        higher_is_better: true,
    },
];

/// Workloads also run with their tasks submitted with `reuse_instance(true)`
/// (the guest's `<workload>_reuse`): a task may run in an instance an
/// earlier task of the job left, as Ray's workers run task after task. The
/// row is compared with the same Ray figure (its workers always do).
const ALSO_REUSED: &[&str] = &["tasks_sync", "tasks_async", "wait_1k", "chain"];

pub(crate) struct Row {
    pub(crate) name: String,
    /// The workload's name in the guest (or `first`, `head_start`, `idle`):
    /// what Ray's figure for the same workload is filed under.
    pub(crate) key: String,
    pub(crate) value: f64,
    pub(crate) unit: String,
    pub(crate) higher_is_better: bool,
    pub(crate) note: String,
}

impl MicrobenchmarkCommand {
    pub fn execute(self) -> Result<(), Failure> {
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Err(anyhow!("--scale must be positive").into());
        }
        let ray = match &self.ray {
            Some(path) => RayFigures::read(path).map_err(Failure::Usage)?,
            None => RayFigures::default(),
        };
        if let (Some(addr), Some(token)) = (self.quic_receive, &self.quic_token) {
            let token = wray_runtime::Token::parse(token).map_err(|e| Failure::Usage(e.into()))?;
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            let back = self.quic_send_back.unwrap_or(0);
            super::cluster_bench::on_workers(
                &rt,
                async move { Ok(wray_net::receive_and_send(addr, &token, back).await?) },
            )?;
            return Ok(());
        }
        if let (Some(addr), Some(token)) = (self.quic_echo, &self.quic_token) {
            let token = wray_runtime::Token::parse(token).map_err(|e| Failure::Usage(e.into()))?;
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            super::cluster_bench::on_workers(&rt, async move { Ok(wray_net::echo(addr, &token).await?) })?;
            return Ok(());
        }
        if let Some(mib) = self.raw_quic {
            if mib == 0 || mib > 64 << 10 {
                return Err(Failure::Usage(anyhow!("--raw-quic takes 1 to 65536 MiB, got {mib}")));
            }
            let (within, between) = super::cluster_bench::raw_quic(&self.job, (mib as usize) << 20)?;
            println!(
                "raw QUIC, one stream of {mib} MiB on 127.0.0.1: {within:.2} GB/s within one process, {between:.2} GB/s between two processes"
            );
            let both = super::cluster_bench::raw_quic_both_ways(&self.job, (mib as usize) << 20)?;
            println!(
                "raw QUIC, {mib} MiB each way at once between two processes on 127.0.0.1: {both:.2} GB/s in each direction"
            );
            return Ok(());
        }
        if self.scale_out {
            let n = |base: f64| ((base * self.scale).ceil() as u64).max(1);
            let (rows, failures) = super::cluster_bench::scale_out(&self.job, n(100_000.0), n(1_000.0))?;
            print_rows(&rows, self.markdown, &ray);
            if !failures.is_empty() {
                return Err(anyhow!("did not finish:\n  {}", failures.join("\n  ")).into());
            }
            return Ok(());
        }
        if self.cluster {
            let rows = super::cluster_bench::run(&self.job, self.scale)?;
            print_rows(&rows, self.markdown, &ray);
            return Ok(());
        }
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let _guard = rt.enter();
        let cache = tempfile::tempdir()?;
        let runtime = Runtime::builder()
            .cpus(self.cpus)
            .object_store_memory(2 << 30)
            .cache_dir(Some(cache.path().to_path_buf()))
            .build()?;
        let job = runtime.load_file(&self.job).map_err(|e| Failure::Usage(e.into()))?;
        let mut rows = Vec::new();
        let runs = WORKLOADS.iter().flat_map(|w| {
            let reused = ALSO_REUSED
                .contains(&w.guest)
                .then(|| (format!("{}, instances reused", w.name), format!("{}_reuse", w.guest), w));
            std::iter::once((w.name.to_string(), w.guest.to_string(), w)).chain(reused)
        });
        for (name, guest, w) in runs {
            let n = ((w.n as f64 * self.scale).ceil() as u64).max(1);
            eprintln!("running {name} ({n}) ...");
            let line = rt.block_on(run_workload(&runtime, &job, &guest, n))?;
            let mut words = line.split_whitespace();
            let value: f64 =
                words.next().and_then(|v| v.parse().ok()).ok_or_else(|| anyhow!("bad result line {line:?}"))?;
            let note = match (w.guest, words.nth(1), words.next()) {
                ("put_gigabytes", Some("memcpy"), Some(m)) => {
                    let m: f64 = m.parse().unwrap_or(f64::NAN);
                    format!(
                        "guest memcpy of the same buffer, same run: {m:.2} GB/s (put = {:.0}% of it); host memcpy: {:.2} GB/s",
                        100.0 * value / m,
                        host_memcpy_gbps()
                    )
                }
                _ => format!("n = {n}"),
            };
            rows.push(Row {
                name,
                // Filed under the workload's own name, where Ray's figure is.
                key: w.guest.into(),
                value,
                unit: w.unit.into(),
                higher_is_better: w.higher_is_better,
                note,
            });
        }
        drop(_guard);
        rt.shutdown_timeout(Duration::from_millis(100));

        eprintln!("running process start -> first task result ...");
        let first = first_result_secs(&self.job, cache.path())?;
        rows.push(Row {
            name: "process start -> first task result".into(),
            key: "first".into(),
            value: first * 1e3,
            unit: "ms".into(),
            higher_is_better: false,
            note: "a whole `wray run` process, compile cache warm".into(),
        });
        eprintln!("running wray start --head ...");
        let (head, join) = head_start_and_join_secs()?;
        rows.push(Row {
            name: "`wray start --head` to ready".into(),
            key: "head_start".into(),
            value: head * 1e3,
            unit: "ms".into(),
            higher_is_better: false,
            note: "process start until it prints its token (Ray: `ray start --head` until it returns)".into(),
        });
        rows.push(Row {
            name: "worker node join".into(),
            key: "join".into(),
            value: join * 1e3,
            unit: "ms".into(),
            higher_is_better: false,
            note: "`wray start --address` process start until the head has accepted it".into(),
        });
        rows.push(Row {
            name: "idle runtime RSS".into(),
            key: "idle".into(),
            value: idle_rss_bytes(&self.job, cache.path())? as f64 / (1 << 20) as f64,
            unit: "MiB".into(),
            higher_is_better: false,
            note: "a `wray run` process with its job loaded, idle in main".into(),
        });
        print_rows(&rows, self.markdown, &ray);
        Ok(())
    }
}

async fn run_workload(
    runtime: &Runtime,
    job: &wray_runtime::JobComponent,
    name: &str,
    n: u64,
) -> anyhow::Result<String> {
    let pipe = OutputPipe::new(1 << 20);
    let config = JobConfig {
        grants: Grants { output: Output::Capture(pipe.clone()), ..Grants::default() },
        ..JobConfig::default()
    };
    runtime
        .run_job(job, vec![name.to_string(), n.to_string()], config)
        .await
        .with_context(|| format!("workload {name}"))?;
    let out = String::from_utf8_lossy(&pipe.contents()).into_owned();
    out.lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .map(str::to_string)
        .ok_or_else(|| anyhow!("workload {name} printed no RESULT line:\n{out}"))
}

/// Wall time of a whole `wray run` process that runs one task, after one
/// untimed run that fills the compile cache (as a user's second run would).
fn first_result_secs(job: &std::path::Path, cache: &std::path::Path) -> anyhow::Result<f64> {
    let exe = std::env::current_exe()?;
    let run = || -> anyhow::Result<f64> {
        let start = Instant::now();
        let out = std::process::Command::new(&exe)
            .arg("run")
            .arg(job)
            .args(["--", "first", "1"])
            .env("XDG_CACHE_HOME", cache)
            .output()?;
        let secs = start.elapsed().as_secs_f64();
        if !out.status.success() || !String::from_utf8_lossy(&out.stdout).contains("RESULT") {
            return Err(anyhow!("the first-result run failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(secs)
    };
    run()?;
    let mut best = f64::MAX;
    for _ in 0..5 {
        best = best.min(run()?);
    }
    Ok(best)
}

/// Time from spawning `wray start --head --block` until it prints its
/// token (listening, ready for jobs), and from spawning a worker until the
/// head has accepted it; best of three each.
fn head_start_and_join_secs() -> anyhow::Result<(f64, f64)> {
    use super::cluster_bench::start;
    let (mut best_head, mut best_join) = (f64::MAX, f64::MAX);
    for _ in 0..3 {
        let dir = tempfile::tempdir()?;
        let begun = Instant::now();
        let (_head, lines) = start(&["--head", "--port", "0"], &dir.path().join("head"), "token: ")?;
        best_head = best_head.min(begun.elapsed().as_secs_f64());
        let field = |p: &str| lines.iter().find_map(|l| l.strip_prefix(p)).unwrap_or_default().to_string();
        let (address, token) = (field("address: "), field("token: "));
        let begun = Instant::now();
        let (_worker, _) = start(&["--address", &address, "--token", &token], &dir.path().join("worker"), "joined: ")?;
        best_join = best_join.min(begun.elapsed().as_secs_f64());
    }
    Ok((best_head, best_join))
}

/// Resident memory of a `wray run` process whose driver sleeps (compile
/// cache warm), sampled while it sleeps.
fn idle_rss_bytes(job: &std::path::Path, cache: &std::path::Path) -> anyhow::Result<u64> {
    let exe = std::env::current_exe()?;
    let mut child = std::process::Command::new(exe)
        .arg("run")
        .arg(job)
        .args(["--", "idle", "1500"])
        .env("XDG_CACHE_HOME", cache)
        .stdout(std::process::Stdio::null())
        .spawn()?;
    std::thread::sleep(Duration::from_millis(1000));
    let rss = status_bytes(&format!("/proc/{}/status", child.id()), "VmRSS:");
    child.wait()?;
    rss.ok_or_else(|| anyhow!("could not read the child's memory use"))
}

fn host_memcpy_gbps() -> f64 {
    let size = 100 << 20;
    let src = vec![7u8; size];
    let mut dst = vec![0u8; size];
    let reps = 10;
    // Touch the destination first: the guest's reference copies into a
    // buffer it already owns, and so should this one.
    dst.copy_from_slice(&src);
    let start = Instant::now();
    for _ in 0..reps {
        dst.copy_from_slice(std::hint::black_box(&src));
    }
    std::hint::black_box(&dst);
    (reps * size) as f64 / start.elapsed().as_secs_f64() / 1e9
}

/// A memory figure (`VmRSS:`, `VmHWM:`) of a `/proc/PID/status` file, in
/// bytes.
pub(crate) fn status_bytes(status: &str, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(status).ok()?;
    let kib: u64 = s.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Ray's figures, by workload, from `--ray`.
#[derive(Default)]
pub(crate) struct RayFigures {
    rows: std::collections::HashMap<String, RayFigure>,
}

struct RayFigure {
    value: f64,
    unit: String,
    note: String,
}

/// Largest `--ray` file read: a few dozen short lines are expected.
const MAX_RAY_FILE_BYTES: u64 = 1 << 20;

impl RayFigures {
    fn read(path: &std::path::Path) -> anyhow::Result<Self> {
        let len = std::fs::metadata(path).with_context(|| format!("--ray {}", path.display()))?.len();
        if len > MAX_RAY_FILE_BYTES {
            return Err(anyhow!("--ray {}: {len} bytes, more than the {MAX_RAY_FILE_BYTES} expected", path.display()));
        }
        let text = std::fs::read_to_string(path).with_context(|| format!("--ray {}", path.display()))?;
        let mut rows = std::collections::HashMap::new();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let bad = || {
                anyhow!("--ray {} line {}: not a figure {{guest, value, unit, note}}: {line}", path.display(), i + 1)
            };
            let v: serde_json::Value = serde_json::from_str(line).map_err(|_| bad())?;
            let text = |field: &str| v.get(field).and_then(|f| f.as_str()).map(str::to_string);
            let (Some(guest), Some(value), Some(unit)) =
                (text("guest"), v.get("value").and_then(|f| f.as_f64()), text("unit"))
            else {
                return Err(bad());
            };
            if !(value.is_finite() && value > 0.0) {
                return Err(anyhow!("--ray {} line {}: value must be positive", path.display(), i + 1));
            }
            rows.insert(guest, RayFigure { value, unit, note: text("note").unwrap_or_default() });
        }
        Ok(RayFigures { rows })
    }

    /// Ray's figure for a row, if measured in the same unit.
    fn get(&self, row: &Row) -> Option<&RayFigure> {
        self.rows.get(&row.key).filter(|f| f.unit == row.unit)
    }

    fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

fn print_rows(rows: &[Row], markdown: bool, ray: &RayFigures) {
    let ratio = |r: &Row, ray: &RayFigure| if r.higher_is_better { r.value / ray.value } else { ray.value / r.value };
    let with_ray = !ray.is_empty();
    if markdown {
        if with_ray {
            println!("| benchmark | wray | Ray 2.60, same run | wray vs Ray | notes |");
            println!("|---|---:|---:|---:|---|");
        } else {
            println!("| benchmark | wray | notes |");
            println!("|---|---:|---|");
        }
        for r in rows {
            if !with_ray {
                println!("| {} | {} {} | {} |", r.name, fmt(r.value), r.unit, r.note);
                continue;
            }
            let (figure, x, note) = match ray.get(r) {
                Some(f) => (
                    format!("{} {}", fmt(f.value), r.unit),
                    times(ratio(r, f), "×"),
                    format!("{}; Ray: {}", r.note, f.note),
                ),
                None => ("—".to_string(), "—".to_string(), r.note.clone()),
            };
            println!("| {} | {} {} | {figure} | {x} | {note} |", r.name, fmt(r.value), r.unit);
        }
    } else {
        // The name column as wide as the longest name.
        let w = rows.iter().map(|r| r.name.chars().count()).max().unwrap_or(0).max(40);
        if with_ray {
            println!("{:<w$} {:>16} {:>18} {:>8}", "benchmark", "wray", "Ray (same run)", "vs Ray");
        } else {
            println!("{:<w$} {:>16}", "benchmark", "wray");
        }
        for r in rows {
            let wray = format!("{} {}", fmt(r.value), r.unit);
            if !with_ray {
                println!("{:<w$} {:>16}", r.name, wray);
                continue;
            }
            let (figure, x) = match ray.get(r) {
                Some(f) => (format!("{} {}", fmt(f.value), r.unit), times(ratio(r, f), "x")),
                None => ("-".to_string(), "-".to_string()),
            };
            println!("{:<w$} {:>16} {:>18} {:>8}", r.name, wray, figure, x);
        }
    }
}

/// A ratio: whole numbers from 10 up, one decimal below.
fn times(x: f64, sign: &str) -> String {
    if x >= 10.0 { format!("{x:.0}{sign}") } else { format!("{x:.1}{sign}") }
}

pub(crate) fn fmt(v: f64) -> String {
    if v >= 100.0 {
        let s = format!("{v:.0}");
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}
