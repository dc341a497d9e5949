//! `wray start`: start a cluster node.

use crate::{Failure, parse};
use anyhow::{Context, anyhow};
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wray_runtime::{ClusterIdentity, Runtime, Token};

/// Start a head node (`--head`): it accepts jobs from `wray run --address`
/// over QUIC with mutual TLS, authenticated by the token it prints, and
/// places jobs, tasks, actors and placement groups on the cluster's nodes.
/// Or start a worker node (`--address HEAD --token TOKEN`) that joins a
/// head, offers its CPUs, GPUs and custom resources, and runs what the head
/// places on it; a worker that loses its head joins it again when it is
/// back.
///
/// Without --block the node runs in the background, with its log
/// (`node.log`), token, address and node id (`node`) in its data directory;
/// `wray stop` stops it. A node's id is `node-`, its pid in hex and 48 random
/// bits, as `wray status` lists it. The token is kept in the data directory, so a head restarted on the
/// same directory keeps its token; a head given `--token` (or WRAY_TOKEN,
/// from a Kubernetes Secret say) uses that one instead.
///
/// Under a supervisor (Kubernetes, systemd) run it with --block, and
/// --health-port for its probes; --dry-run prints what a command line
/// would start without starting it.
#[derive(Args)]
#[command(after_help = "\
Examples:
  wray start --head                          prints `address: HOST:PORT`, `node: ID` and `token: TOKEN`
  wray start --head --port 0 --data-dir /tmp/head --block
  wray start --address 127.0.0.1:6380 --token TOKEN --cpus 4     a worker joining that head
  wray start --address 127.0.0.1:6380 --token TOKEN --gpus 1 --resources '{\"ssd\": 2}'
  wray start --address auto --cpus 2         a worker joining the head started on this machine
  wray run --address 127.0.0.1:6380 --token TOKEN job.wasm
  WRAY_TOKEN=TOKEN wray start --block --address wray-head:6380 --cpus 1500m --memory 4Gi --health-port 8080
  wray start --head --dry-run                print the node this would start, as JSON
  wray stop")]
pub struct StartCommand {
    /// Start a head node.
    #[arg(long, conflicts_with = "address")]
    head: bool,

    /// Start a worker node that joins the head at HOST:PORT; `auto`: the
    /// head `wray start --head` runs on this machine, with its token.
    #[arg(long, value_name = "HOST:PORT", required_unless_present = "head")]
    address: Option<String>,

    /// The cluster's token: for a worker, the one its head printed; for a
    /// head, the token to use instead of the one in its data directory (or
    /// a new one) — 64 hex digits, e.g. `openssl rand -hex 32`. Read from
    /// WRAY_TOKEN when not given, so it need not appear on a command line.
    #[arg(long, env = "WRAY_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// Address to listen on. 127.0.0.1 keeps the cluster on this machine;
    /// use 0.0.0.0 to accept other machines.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,

    /// UDP port (QUIC); 0 picks a free one.
    #[arg(long, default_value_t = 6380)]
    port: u16,

    /// Where the node keeps its token, log, spilled objects and compiled
    /// components (default: ~/.wray/head-PORT, or ~/.wray/worker-PID).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Where compiled components are kept (default: DATA_DIR/components).
    /// Nodes on one machine may share one: artifacts are written atomically
    /// and keyed by content and engine, so each component compiles once.
    #[arg(long, value_name = "DIR", env = "WRAY_CACHE_DIR")]
    cache_dir: Option<PathBuf>,

    /// CPU slots (default: one per core). A number, or millicores as
    /// Kubernetes writes them (`1500m` is 1.5).
    #[arg(long, value_name = "N", value_parser = parse_cpus)]
    cpus: Option<f64>,

    /// GPUs this node offers as the `GPU` resource (fractional demands
    /// allowed). Default: one per GPU found (Vulkan adapters; software ones
    /// such as lavapipe only with WRAY_ALLOW_SOFTWARE_GPU=1). `--gpus 0`
    /// does not look for GPUs at all (no Vulkan driver is loaded).
    #[arg(long, value_name = "N")]
    gpus: Option<f64>,

    /// Custom resources as JSON, e.g. '{"accelerator": 2, "ssd": 1}'.
    #[arg(long, value_name = "JSON", value_parser = parse_resources)]
    resources: Option<ResourceList>,

    /// Memory this node offers to tasks and actors, as the `memory`
    /// resource (Ray's): what demands of `memory` are placed against, and
    /// what `wray status` shows. Bytes, or a size such as 4GiB or 4Gi (give
    /// a pod's memory request here). Not offered unless given.
    #[arg(long, value_name = "SIZE", value_parser = parse::size)]
    memory: Option<u64>,

    /// Object memory before objects spill to disk.
    #[arg(long, value_name = "SIZE", value_parser = parse::size, default_value = "1GiB")]
    object_store_memory: u64,

    /// Head: seconds a worker may go without a heartbeat (sent every 0.2 s)
    /// before it is declared dead and its tasks are retried elsewhere.
    #[arg(long, value_name = "SECS", default_value_t = 3.0, value_parser = parse_timeout)]
    node_timeout: f64,

    /// Seconds a silent peer (a client, a worker, the head) is given before
    /// its connection is closed as dead. Peers ping every second; this is
    /// the backstop behind the heartbeat timeout.
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = parse_peer_timeout)]
    peer_timeout: f64,

    /// Worker: accept no connections from other workers and reach them
    /// only through the head. By default a worker listens on the UDP
    /// socket it joins with, and the others reach it there, at the address
    /// the head sees: set this where that address is not reachable from
    /// the other workers (a NAT between them). A worker that cannot reach
    /// another goes through the head anyway.
    #[arg(long, conflicts_with = "head")]
    no_direct: bool,

    /// Share a host directory with every job and task that runs on this
    /// node: HOST_DIR::GUEST_DIR (repeatable). Give each node the same
    /// GUEST_DIR over the same data (a shared or copied volume) for
    /// `wray::data` readers and writers on a cluster.
    #[arg(long = "dir", value_name = "HOST::GUEST", value_parser = parse::dir_grant)]
    dirs: Vec<(PathBuf, String)>,

    /// Stay in the foreground (logs to stderr) instead of running in the
    /// background.
    #[arg(long)]
    block: bool,

    /// Head: serve HTTP for applications deployed with `wray serve deploy`
    /// on this port (0: any free port; printed as `serve: http://...`).
    #[arg(long, value_name = "PORT", requires = "head")]
    serve_port: Option<u16>,

    /// Head: the address the HTTP proxy listens on. HTTP is wray's only
    /// plaintext port: it binds the loopback interface unless told otherwise.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1", requires = "serve_port")]
    serve_host: std::net::IpAddr,

    /// Head: where the dashboard (web page, JSON API, /metrics) listens.
    #[command(flatten)]
    dashboard: super::dashboard::DashboardAddr,

    /// Head: start no dashboard.
    #[arg(long, requires = "head", conflicts_with = "dashboard_port")]
    no_dashboard: bool,

    /// Serve health endpoints on this TCP port for a supervisor's probes:
    /// `/livez` (the node's runtime answers) and `/readyz` (a head serves,
    /// a worker has joined its head). Plain HTTP, one word of answer, no
    /// token. None unless given.
    #[arg(long, value_name = "PORT")]
    health_port: Option<u16>,

    /// The address the health endpoints listen on (a pod's own address, or
    /// 0.0.0.0, for the kubelet).
    #[arg(long, value_name = "IP", default_value = "127.0.0.1", requires = "health_port")]
    health_host: std::net::IpAddr,

    /// Check the flags and print the node this command would start, as
    /// JSON, without starting it (nothing is created or contacted).
    #[arg(long)]
    dry_run: bool,
}

/// `2`, `1.5`, or Kubernetes' millicores, `1500m`.
fn parse_cpus(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (num, scale) = match t.strip_suffix('m') {
        Some(milli) => (milli, 1000.0),
        None => (t, 1.0),
    };
    match num.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v / scale),
        _ => Err(format!("{s:?} is not a number of CPUs (e.g. 2, 0.5 or 500m)")),
    }
}

/// Seconds in `lo..=hi`, or a message naming the range.
fn seconds_between(s: &str, lo: f64, hi: f64) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (lo..=hi).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds between {lo} and {hi}")),
    }
}

fn parse_timeout(s: &str) -> Result<f64, String> {
    seconds_between(s, 0.5, 3600.0)
}

fn parse_peer_timeout(s: &str) -> Result<f64, String> {
    seconds_between(s, wray_net::MIN_PEER_TIMEOUT.as_secs_f64(), wray_net::MAX_PEER_TIMEOUT.as_secs_f64())
}

/// Where `wray stop` finds the nodes started from this machine.
pub fn registry_dir() -> PathBuf {
    home().join(".wray").join("running")
}

fn home() -> PathBuf {
    std::env::var_os("HOME").filter(|h| !h.is_empty()).map_or_else(std::env::temp_dir, PathBuf::from)
}

impl StartCommand {
    pub fn execute(mut self) -> Result<(), Failure> {
        if !self.head {
            // `--address auto`: another node on the head's machine.
            if self.address.as_deref() == Some(super::local_head::AUTO) {
                let head = super::local_head::the_local_head(true)?;
                self.address = Some(head.address);
                self.token = self.token.or(Some(head.token));
            }
            if self.token.is_none() {
                return Err(Failure::Usage(anyhow!(
                    "--address needs --token (or WRAY_TOKEN): the token `wray start --head` printed"
                )));
            }
        }
        for (flag, v) in [("--cpus", self.cpus), ("--gpus", self.gpus)] {
            if let Some(x) = v.filter(|x| !(x.is_finite() && *x >= 0.0)) {
                return Err(anyhow!("{flag} must be a non-negative number, got {x}").into());
            }
        }
        if !self.head && self.dashboard.dashboard_port.is_some() {
            return Err(Failure::Usage(anyhow!("--dashboard-port is for a head (--head): workers serve no dashboard")));
        }
        if self.memory.is_some() && self.resources.iter().flat_map(|r| &r.0).any(|(k, _)| k == wray_core::MEMORY) {
            return Err(Failure::Usage(anyhow!("give the node's memory once: --memory, or \"memory\" in --resources")));
        }
        // A bad token is refused here, before anything starts, rather than
        // by the head's first handshake.
        let token = self
            .token
            .as_deref()
            .map(Token::parse)
            .transpose()
            .map_err(|e| Failure::Usage(anyhow!("--token (or WRAY_TOKEN): {e}")))?;
        if self.dry_run {
            return self.dry_run(token.is_some());
        }
        let data_dir = self.data_dir();
        std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let data_dir = data_dir.canonicalize()?;
        match (self.block, self.head) {
            (true, true) => self.run_blocking(&data_dir, token),
            (true, false) => self.run_worker(&data_dir),
            (false, _) => self.spawn_background(&data_dir),
        }
    }

    fn data_dir(&self) -> PathBuf {
        let default = if self.head { format!("head-{}", self.port) } else { format!("worker-{}", std::process::id()) };
        self.data_dir.clone().unwrap_or_else(|| home().join(".wray").join(default))
    }

    /// `--dry-run`: the node as JSON, every default resolved, nothing
    /// started. The token is never printed, only where it would come from.
    fn dry_run(&self, token_given: bool) -> Result<(), Failure> {
        let data_dir = self.data_dir();
        let listen = self.head.then(|| format!("{}:{}", self.host, self.port));
        let cpus = self.cpus.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()) as f64);
        let mut resources = serde_json::Map::new();
        for (k, v) in self.resources.iter().flat_map(|r| &r.0) {
            resources.insert(k.clone(), serde_json::json!(v));
        }
        if let Some(m) = self.memory {
            resources.insert(wray_core::MEMORY.into(), serde_json::json!(m));
        }
        let token = match (token_given, self.head, data_dir.join("token").is_file()) {
            (true, _, _) => "given",
            (false, true, true) => "data directory",
            (false, true, false) => "new",
            (false, false, _) => "none",
        };
        let dashboard = (self.head && !self.no_dashboard).then(|| {
            format!(
                "{}:{}",
                self.dashboard.dashboard_host,
                self.dashboard.dashboard_port.unwrap_or(wray_dashboard::DEFAULT_PORT)
            )
        });
        let node = serde_json::json!({
            "role": if self.head { "head" } else { "worker" },
            "listen": listen,
            "head": self.address,
            "token": token,
            "data_dir": data_dir,
            "cache_dir": self.cache_dir.clone().unwrap_or_else(|| data_dir.join("components")),
            "cpus": cpus,
            "gpus": self.gpus,
            "memory": self.memory,
            "resources": resources,
            "object_store_memory": self.object_store_memory,
            "node_timeout_s": self.node_timeout,
            "peer_timeout_s": self.peer_timeout,
            "direct": !self.head && !self.no_direct,
            "dirs": self.dirs.iter().map(|(h, g)| format!("{}::{g}", h.display())).collect::<Vec<_>>(),
            "dashboard": dashboard,
            "serve": self.serve_port.map(|p| format!("{}:{p}", self.serve_host)),
            "health": self.health_port.map(|p| format!("{}:{p}", self.health_host)),
            "block": self.block,
        });
        println!("{}", serde_json::to_string_pretty(&node).map_err(anyhow::Error::from)?);
        Ok(())
    }

    fn spawn_background(&self, data_dir: &Path) -> Result<(), Failure> {
        use std::os::unix::process::CommandExt;
        let address_file = data_dir.join("address");
        let _ = std::fs::remove_file(&address_file);
        // Appended to: a node restarted on its directory (after a crash, say)
        // keeps the log of the run before.
        let log = std::fs::OpenOptions::new().create(true).append(true).open(data_dir.join("node.log"))?;
        let mut cmd = std::process::Command::new(std::env::current_exe()?);
        cmd.arg("start");
        // The token goes through the environment: a command line is
        // readable by every user of the machine (`ps`).
        if let Some(t) = &self.token {
            cmd.env("WRAY_TOKEN", t);
        }
        match &self.address {
            Some(a) if !self.head => {
                cmd.args(["--address", a]);
                if self.no_direct {
                    cmd.arg("--no-direct");
                }
            }
            _ => {
                cmd.args(["--head", "--host", &self.host, "--port", &self.port.to_string()]);
                if let Some(p) = self.serve_port {
                    cmd.args(["--serve-port", &p.to_string(), "--serve-host", &self.serve_host.to_string()]);
                }
                if self.no_dashboard {
                    cmd.arg("--no-dashboard");
                } else {
                    cmd.args(self.dashboard.to_args());
                }
            }
        }
        cmd.arg("--block").arg("--data-dir").arg(data_dir);
        if let Some(dir) = &self.cache_dir {
            cmd.arg("--cache-dir").arg(dir);
        }
        cmd.args(["--object-store-memory", &self.object_store_memory.to_string()])
            .args(["--node-timeout", &self.node_timeout.to_string()])
            .args(["--peer-timeout", &self.peer_timeout.to_string()])
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group: a Ctrl-C in this terminal must not stop it.
            .process_group(0);
        if let Some(c) = self.cpus {
            cmd.args(["--cpus", &c.to_string()]);
        }
        if let Some(m) = self.memory {
            cmd.args(["--memory", &m.to_string()]);
        }
        if let Some(p) = self.health_port {
            cmd.args(["--health-port", &p.to_string(), "--health-host", &self.health_host.to_string()]);
        }
        for (host, guest) in &self.dirs {
            // Absolute: the background node outlives this shell's directory.
            let host = std::path::absolute(host)?;
            cmd.arg("--dir").arg(format!("{}::{guest}", host.display()));
        }
        if let Some(g) = self.gpus {
            cmd.args(["--gpus", &g.to_string()]);
        }
        if let Some(r) = &self.resources {
            let json: serde_json::Map<String, serde_json::Value> =
                r.0.iter().map(|(k, v)| (k.clone(), serde_json::json!(v))).collect();
            cmd.args(["--resources", &serde_json::Value::Object(json).to_string()]);
        }
        let mut child = cmd.spawn().context("starting the node process")?;
        let start = Instant::now();
        loop {
            if let Some(address) = std::fs::read_to_string(&address_file).ok().filter(|a| !a.trim().is_empty()) {
                let id = std::fs::read_to_string(data_dir.join("node")).unwrap_or_default();
                if !self.head {
                    println!("joined: {}", address.trim());
                    println!("node: {}", id.trim());
                    eprintln!(
                        "worker node started in the background (pid {}); logs in {}",
                        child.id(),
                        data_dir.join("node.log").display()
                    );
                    return Ok(());
                }
                let token = std::fs::read_to_string(data_dir.join("token"))?;
                println!("address: {}", address.trim());
                println!("node: {}", id.trim());
                println!("token: {}", token.trim());
                if let Ok(serve) = std::fs::read_to_string(data_dir.join("serve")) {
                    println!("serve: {}", serve.trim());
                }
                if let Ok(url) = std::fs::read_to_string(data_dir.join("dashboard")) {
                    println!("dashboard: {}", url.trim());
                }
                eprintln!(
                    "head node started in the background (pid {}); logs in {}",
                    child.id(),
                    data_dir.join("node.log").display()
                );
                eprintln!("run a job:  wray run --address {} --token {} job.wasm", address.trim(), token.trim());
                eprintln!("stop it:    wray stop");
                return Ok(());
            }
            if let Some(status) = child.try_wait()? {
                let log = std::fs::read_to_string(data_dir.join("node.log")).unwrap_or_default();
                return Err(anyhow!("the node exited at start ({status}):\n{}", log.trim()).into());
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                return Err(
                    anyhow!("the node did not start within 30 s; see {}", data_dir.join("node.log").display()).into()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn run_blocking(&self, data_dir: &Path, given: Option<Token>) -> Result<(), Failure> {
        let token = match given {
            Some(t) => use_token(&data_dir.join("token"), t)?,
            None => load_or_create_token(&data_dir.join("token"))?,
        };
        let bind: std::net::SocketAddr = format!("{}:{}", self.host, self.port)
            .parse()
            .map_err(|e| anyhow!("--host {} --port {}: {e}", self.host, self.port))?;
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        let _guard = rt.enter();
        let runtime = self.runtime(data_dir)?;
        let jobs = wray_runtime::JobTable::open(data_dir)
            .with_context(|| format!("opening the job records in {}", data_dir.display()))?;
        let identity =
            ClusterIdentity::new(&token, "head")?.with_peer_timeout(Duration::from_secs_f64(self.peer_timeout))?;
        let endpoint = wray_runtime::cluster::listen(bind, &identity)?;
        let local = endpoint.local_addr()?;
        let server = match self.serve_port {
            Some(port) => {
                let addr = std::net::SocketAddr::new(self.serve_host, port);
                let server = rt
                    .block_on(wray_serve_host::Server::bind(addr, wray_serve_host::ServerConfig::default()))
                    .map_err(|e| Failure::Usage(e.into()))?;
                runtime.node().set_serving(std::sync::Arc::new(server.clone()));
                Some(server)
            }
            None => None,
        };
        let _ = std::fs::remove_file(data_dir.join("serve"));
        let _ = std::fs::remove_file(data_dir.join("dashboard"));
        let dashboard = if self.no_dashboard {
            None
        } else {
            let config = wray_dashboard::DashboardConfig {
                token: Some(token.to_string()),
                jobs: Some(jobs.clone()),
                serve: server.clone(),
            };
            self.dashboard.start(runtime.node(), config)?
        };
        // A head is ready once it serves: its endpoint is bound by now.
        let health = self.start_health(std::sync::Arc::new(|| Ok(())))?;
        let entry = register(data_dir)?;
        say(format_args!("address: {local}"));
        say(format_args!("node: {}", runtime.node().id()));
        if self.token.is_some() {
            // Given (from a Secret, say): whoever gave it has it, and a
            // supervisor's log of this output must not.
            say(format_args!("token: as given (not shown)"));
        } else {
            say(format_args!("token: {token}"));
        }
        if let Some(server) = &server {
            let url = format!("http://{}", server.local_addr());
            say(format_args!("serve: {url}"));
            std::fs::write(data_dir.join("serve"), &url)?;
        }
        if let Some(d) = &dashboard {
            say(format_args!("dashboard: {}", d.url()));
            std::fs::write(data_dir.join("dashboard"), d.url())?;
        }
        mark_ready(data_dir, runtime.node().id(), &local.to_string())?;
        tracing::info!("head node {} serving on {local}", runtime.node().id());
        rt.block_on(async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            let node = runtime.node().clone();
            let (listener, timeout) = (endpoint.clone(), Duration::from_secs_f64(self.node_timeout));
            let mut serving = OnWorker::spawn(async move { node.serve(listener, jobs, timeout).await });
            tokio::select! {
                () = serving.finished() => {}
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            serving.stop().await;
            if let Some(server) = &server {
                server.shutdown();
            }
            if let Some(d) = &dashboard {
                d.shutdown();
            }
            if let Some(h) = &health {
                h.shutdown();
            }
            endpoint.close(0u32.into(), b"node stopping");
            anyhow::Ok(())
        })?;
        let _ = std::fs::remove_file(&entry);
        let _ = std::fs::remove_file(data_dir.join("address"));
        let _ = std::fs::remove_file(data_dir.join("node"));
        let _ = std::fs::remove_file(data_dir.join("serve"));
        let _ = std::fs::remove_file(data_dir.join("dashboard"));
        rt.shutdown_timeout(Duration::from_millis(200));
        Ok(())
    }
}

impl StartCommand {
    /// A worker: joins the head, then serves what the head sends on that
    /// connection until the head goes away or the node is stopped.
    fn run_worker(&self, data_dir: &Path) -> Result<(), Failure> {
        let head = self.address.clone().expect("clap requires --address without --head");
        let token = self.token.clone().unwrap_or_default();
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        let _guard = rt.enter();
        let runtime = self.runtime(data_dir)?;
        let jobs = wray_runtime::JobTable::open(data_dir)?;
        let node = runtime.node().clone();
        // Ready while joined: the probe reads what the loop below sets.
        let joined = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let health = {
            let (joined, head) = (joined.clone(), head.clone());
            self.start_health(std::sync::Arc::new(move || {
                if joined.load(std::sync::atomic::Ordering::Relaxed) {
                    Ok(())
                } else {
                    Err(format!("not joined to the head at {head}"))
                }
            }))?
        };
        let entry = register(data_dir)?;

        let result = rt.block_on(async {
            let total: Vec<(String, f64)> = node.offered_resources().iter().map(|(k, v)| (k.to_string(), v)).collect();
            let join = || async {
                let client = if self.no_direct {
                    wray_runtime::cluster::ClusterClient::connect(&head, &token).await?
                } else {
                    wray_runtime::cluster::ClusterClient::connect_listening(&head, &token).await?
                };
                let (membership, head_id) = client.join(node.id(), total.clone()).await?;
                anyhow::Ok((client, membership, head_id))
            };
            let (mut client, mut membership, mut head_id) = join().await?;
            joined.store(true, std::sync::atomic::Ordering::Relaxed);
            say(format_args!("joined: {head} (head {head_id}) as {}", node.id()));
            mark_ready(data_dir, node.id(), &head)?;
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            loop {
                let conn = client.connection().clone();
                let listening = (!self.no_direct).then(|| client.endpoint().clone());
                let mut serving = {
                    let (node, conn, head_id, jobs) = (node.clone(), conn.clone(), head_id.clone(), jobs.clone());
                    OnWorker::spawn(async move { node.serve_head(conn, listening, membership, head_id, jobs).await })
                };
                let stop = tokio::select! {
                    () = serving.finished() => false,
                    e = conn.closed() => {
                        tracing::warn!("lost the head at {head}: {e}");
                        false
                    }
                    _ = tokio::signal::ctrl_c() => true,
                    _ = term.recv() => true,
                };
                serving.stop().await;
                if stop {
                    break;
                }
                // The head went away (crashed, restarted): keep trying to
                // join it again; a head restarted on its data directory
                // keeps its address and token. (The address is resolved
                // again at each try: a restarted head behind a Kubernetes
                // Service or a DNS name may have moved.)
                joined.store(false, std::sync::atomic::Ordering::Relaxed);
                client.close().await;
                tracing::info!("reconnecting to the head at {head} every {RECONNECT:?}");
                loop {
                    tokio::select! {
                        () = tokio::time::sleep(RECONNECT) => {}
                        _ = tokio::signal::ctrl_c() => return anyhow::Ok(()),
                        _ = term.recv() => return anyhow::Ok(()),
                    }
                    match join().await {
                        Ok(again) => {
                            (client, membership, head_id) = again;
                            joined.store(true, std::sync::atomic::Ordering::Relaxed);
                            tracing::info!("joined the head {head_id} at {head} again");
                            break;
                        }
                        Err(e) => tracing::debug!("the head is not back yet: {e:#}"),
                    }
                }
            }
            client.close().await;
            anyhow::Ok(())
        });
        if let Some(h) = &health {
            h.shutdown();
        }
        let _ = std::fs::remove_file(&entry);
        let _ = std::fs::remove_file(data_dir.join("address"));
        let _ = std::fs::remove_file(data_dir.join("node"));
        rt.shutdown_timeout(Duration::from_millis(200));
        result.map_err(Failure::Usage)
    }
}

/// How often a worker that lost its head tries to join it again.
const RECONNECT: Duration = Duration::from_millis(500);

/// A node's serving loop, run as a task of the runtime rather than on the
/// thread that blocks on it (the process's main thread, outside the
/// runtime's workers). There, every request that reached the node woke the
/// main thread from a worker and then a worker from the main thread: on a
/// worker, what the loop starts for a request runs on the same thread, as
/// a job's driver does (`wray run`).
struct OnWorker(Option<tokio::task::JoinHandle<()>>);

impl OnWorker {
    fn spawn(serve: impl std::future::Future<Output = ()> + Send + 'static) -> OnWorker {
        OnWorker(Some(tokio::spawn(serve)))
    }

    /// Resolves when the loop ends by itself (a panic in it is logged).
    /// Cancel-safe: dropped unfinished, the loop runs on.
    async fn finished(&mut self) {
        let Some(handle) = self.0.as_mut() else { return };
        if let Err(e) = handle.await
            && e.is_panic()
        {
            tracing::error!("the node's serving loop panicked: {e}");
        }
        self.0 = None;
    }

    /// Ends the loop and waits until it is dropped, as leaving a `select!`
    /// would drop it in place.
    async fn stop(self) {
        if let Some(handle) = self.0 {
            handle.abort();
            let _ = handle.await;
        }
    }
}

/// Parsed `--resources` (a named type: clap would take a bare `Vec` as a
/// list of repeated values).
#[derive(Clone, Debug)]
pub struct ResourceList(Vec<(String, f64)>);

/// `{"name": amount, ...}` with finite, non-negative amounts.
fn parse_resources(s: &str) -> Result<ResourceList, String> {
    let v: serde_json::Value =
        serde_json::from_str(s).map_err(|e| format!("--resources must be a JSON object of names to amounts: {e}"))?;
    let obj = v.as_object().ok_or("--resources must be a JSON object, e.g. '{\"accelerator\": 2}'")?;
    obj.iter()
        .map(|(k, v)| match v.as_f64() {
            Some(x) if x.is_finite() && x >= 0.0 && !k.is_empty() => Ok((k.clone(), x)),
            _ => Err(format!("--resources: {k:?} must map to a non-negative number, got {v}")),
        })
        .collect::<Result<_, _>>()
        .map(ResourceList)
}

impl StartCommand {
    /// The node's runtime, keeping spilled objects and compiled components
    /// in its data directory.
    /// Builds the node's runtime and says how its tensors will run.
    fn runtime(&self, data_dir: &Path) -> anyhow::Result<Runtime> {
        let runtime = self.build_runtime(data_dir)?;
        match runtime.node().devices().notice() {
            Some(notice) => eprintln!("wray: {notice}"),
            None => {
                for g in runtime.node().devices().gpus() {
                    eprintln!("wray: GPU {}: {}", g.index(), g.name());
                }
            }
        }
        Ok(runtime)
    }

    /// The health endpoints, if `--health-port` asks for them (inside the
    /// node's runtime). A port that is taken is an error: a supervisor
    /// probing it would otherwise restart a healthy node for ever.
    fn start_health(
        &self,
        ready: wray_dashboard::health::Readiness,
    ) -> Result<Option<wray_dashboard::health::HealthServer>, Failure> {
        let Some(port) = self.health_port else { return Ok(None) };
        let server =
            wray_dashboard::health::HealthServer::bind(std::net::SocketAddr::new(self.health_host, port), ready)
                .map_err(|e| Failure::Usage(e.into()))?;
        tracing::info!("health endpoints on http://{}/livez and /readyz", server.local_addr());
        Ok(Some(server))
    }

    fn build_runtime(&self, data_dir: &Path) -> anyhow::Result<Runtime> {
        let mut builder = Runtime::builder()
            .object_store_memory(self.object_store_memory as usize)
            .spill_dir(data_dir.join("spill"))
            .cache_dir(Some(self.cache_dir.clone().unwrap_or_else(|| data_dir.join("components"))));
        // A node started in the background writes to `node.log` (the
        // parent opened it); one started with --block by hand logs to its
        // stderr, and a `node.log` left in its directory is an older run's.
        let log = data_dir.join("node.log");
        if log.is_file() {
            builder = builder.log_file(log);
        }
        if let Some(c) = self.cpus {
            builder = builder.cpus(c);
        }
        if let Some(g) = self.gpus {
            builder = builder.gpus(g);
        }
        if let Some(m) = self.memory {
            builder = builder.resource(wray_core::MEMORY, m as f64);
        }
        for (k, v) in self.resources.iter().flat_map(|r| &r.0) {
            builder = builder.resource(k, *v);
        }
        for (host, guest) in &self.dirs {
            builder = builder.shared_dir(host, guest);
        }
        builder.build()
    }
}

/// Records this process in the registry `wray stop` reads; returns the entry.
fn register(data_dir: &Path) -> std::io::Result<PathBuf> {
    let registry = registry_dir();
    std::fs::create_dir_all(&registry)?;
    let entry = registry.join(std::process::id().to_string());
    std::fs::write(&entry, data_dir.to_string_lossy().as_bytes())?;
    Ok(entry)
}

/// One entry of the registry [`register`] writes: a node process started
/// from this machine, alive or not (an entry stays until `wray stop` if its
/// process was killed outright).
pub(crate) struct Registered {
    pub pid: i32,
    pub data_dir: PathBuf,
    /// The entry's file.
    pub entry: PathBuf,
}

/// The registry's entries; none if there is no registry.
pub(crate) fn registered() -> Vec<Registered> {
    let Ok(entries) = std::fs::read_dir(registry_dir()) else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().parse::<i32>().ok()?;
            let data_dir = PathBuf::from(std::fs::read_to_string(e.path()).unwrap_or_default());
            Some(Registered { pid, data_dir, entry: e.path() })
        })
        .collect()
}

/// Writes `path` with permissions `mode` so that nobody ever reads it
/// half-written (temporary file, then rename).
fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    // A stale temporary file would keep its old permissions.
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp)?;
    f.write_all(contents)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Writes the data directory's `node` file (the node's id) and then its
/// `address` file, last: its appearance tells a background `wray start`
/// that the node is ready. The `node` file is whole by then, so it needs
/// neither a rename nor a sync of its own.
fn mark_ready(data_dir: &Path, id: &str, address: &str) -> std::io::Result<()> {
    std::fs::write(data_dir.join("node"), id)?;
    write_atomically(&data_dir.join("address"), address.as_bytes(), 0o644)
}

/// A head given its token (`--token`, WRAY_TOKEN): the data directory
/// keeps a copy, so that `wray start` in the background and whoever reads
/// the directory find the cluster's current token. One that differs from
/// the copy replaces it, with a line in the log — a Secret rotated under a
/// restarted head pod must take effect.
fn use_token(path: &Path, token: Token) -> anyhow::Result<Token> {
    match std::fs::read_to_string(path).ok().map(|s| Token::parse(&s)) {
        Some(Ok(old)) if old == token => return Ok(token),
        Some(_) => tracing::warn!("{} held another token: replaced by the one given", path.display()),
        None => {}
    }
    write_atomically(path, token.to_string().as_bytes(), 0o600)?;
    Ok(token)
}

fn load_or_create_token(path: &Path) -> anyhow::Result<Token> {
    if let Ok(s) = std::fs::read_to_string(path) {
        return Token::parse(&s).with_context(|| format!("{} holds no valid token", path.display()));
    }
    let token = Token::generate()?;
    // 0600 from its creation: it is the cluster's secret.
    write_atomically(path, token.to_string().as_bytes(), 0o600)?;
    Ok(token)
}

/// Prints a line of a running node's startup report. A node outlives
/// whoever reads its first lines (`wray start --block | head -1`, a
/// supervisor that stops reading once it has the token): a closed stdout
/// must not stop it, so write errors are ignored — `println!` panicked on
/// the broken pipe and took the head down.
fn say(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

#[cfg(test)]
mod tests {
    use super::parse_cpus;

    #[test]
    fn cpus_are_numbers_or_kubernetes_millicores() {
        assert_eq!(parse_cpus("2"), Ok(2.0));
        assert_eq!(parse_cpus("0.5"), Ok(0.5));
        assert_eq!(parse_cpus("1500m"), Ok(1.5));
        assert_eq!(parse_cpus("250m"), Ok(0.25));
        for bad in ["", "m", "-1", "two", "1.5 cores", "NaN", "infm"] {
            assert!(parse_cpus(bad).is_err(), "{bad}");
        }
    }
}
