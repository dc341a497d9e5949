//! `wray run`: run a job component on an embedded single-node runtime.

use crate::{Failure, parse};
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wray_runtime::cluster::{ClusterClient, JOB_LOST, RemoteOutcome};
use wray_runtime::{Grants, InstanceLimits, JobConfig, JobError, Output, Runtime};

/// Run a job (a wasm32-wasip2 component built with the wray SDK).
///
/// The job's `#[wray::main]` runs in a sandbox; its tasks and actors run in
/// sandboxes of their own, in parallel up to --cpus. The job sees no files,
/// environment or network unless granted with --dir and --env. A plain
/// WASI program (a `wasi:cli/command` component, what `wasmtime run` runs)
/// runs the same way, its arguments after its name; a Python script
/// (`job.py`) is built first, as `wray build job.py` does, unless the
/// `job.wasm` beside it was built from the same files (a Python project's
/// directory likewise, into `DIR/NAME.wasm`). Output
/// streams as the job writes it. Exit status: 0 success, 1 the job failed,
/// 2 bad input, 3 the cluster lost the job (--address: the node running it
/// died), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
#[derive(Args)]
#[command(after_help = "\
Examples:
  wray run job.wasm
  wray run --cpus 2 --memory-limit 256MiB --timeout 10s job.wasm -- --iterations 5
  wray run --dir ./data::/data --env LOG=debug job.wasm
  wray run --address 10.0.0.5:6380 --token $TOKEN --max-retries 3 job.wasm")]
pub struct RunCommand {
    /// The job component (.wasm).
    job: PathBuf,

    /// Arguments for the job's main (after `--`).
    #[arg(last = true)]
    args: Vec<String>,

    /// CPU slots: tasks running at once with the default 1 CPU each
    /// (fractional allowed). Default: one per core.
    #[arg(long, value_name = "N")]
    cpus: Option<f64>,

    /// GPUs offered as the `GPU` resource; tasks and actors that ask for
    /// `num_gpus` get their tensors on a GPU. Default: one per GPU found
    /// (Vulkan adapters; software ones such as lavapipe only with
    /// WRAY_ALLOW_SOFTWARE_GPU=1). With none found, tensors use the CPU path.
    /// `--gpus 0` does not look for GPUs at all (no Vulkan driver is loaded).
    #[arg(long, value_name = "N")]
    gpus: Option<f64>,

    /// Memory limit of every instance (driver, task, actor) unless a task's
    /// options set one, e.g. 256MiB.
    #[arg(long, value_name = "SIZE", value_parser = parse::size)]
    memory_limit: Option<u64>,

    /// Execution-time limit of every task and actor call (and of the
    /// driver), unless options set one; time blocked waiting for results
    /// does not count. E.g. 30s, 500ms.
    #[arg(long, value_name = "DUR", value_parser = parse::duration)]
    timeout: Option<Duration>,

    /// Object memory before objects spill to disk, e.g. 2GiB.
    #[arg(long, value_name = "SIZE", value_parser = parse::size, default_value = "1GiB")]
    object_store_memory: u64,

    /// Directory for spilled objects (default: a temporary directory). One
    /// process at a time: another one using it is waited for up to 5 s.
    #[arg(long, value_name = "DIR")]
    spill_dir: Option<PathBuf>,

    /// Grant the job a host directory: HOST_DIR::GUEST_DIR (repeatable).
    #[arg(long = "dir", value_name = "HOST::GUEST", value_parser = parse::dir_grant)]
    dirs: Vec<(PathBuf, String)>,

    /// Set an environment variable in the job: KEY=VALUE, or KEY to pass
    /// this process's value (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse::env_pair)]
    envs: Vec<(String, String)>,

    /// Compile without reading or writing the component cache.
    #[arg(long)]
    no_cache: bool,

    /// Run on the cluster whose head is at HOST:PORT instead of in this
    /// process (see `wray start`); `auto`: the head `wray start --head` runs
    /// on this machine, with its token.
    #[arg(long, env = "WRAY_ADDRESS", value_name = "HOST:PORT")]
    address: Option<String>,

    /// The cluster's token, with --address (with `--address auto`: the
    /// local head's unless given).
    #[arg(long, env = "WRAY_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// With --address: run the job again from the start, up to N times, when
    /// the cluster loses it — the node running it or the head died (exit
    /// code 3 without retries). A job that fails is not retried. Output of
    /// a lost attempt has already been printed; each retry waits up to 60 s
    /// for the head to be reachable again.
    #[arg(long, value_name = "N", default_value_t = 0)]
    max_retries: u32,

    /// Serve the dashboard (web page, JSON API, /metrics) of the embedded
    /// runtime while the job runs; its URL is printed. A cluster's head
    /// serves its own (`wray start --head`).
    #[arg(long, conflicts_with = "address")]
    dashboard: bool,

    /// With --dashboard: where it listens.
    #[command(flatten)]
    dashboard_addr: super::dashboard::DashboardAddr,

    /// No live line of task progress on a terminal, and no summary line
    /// (printed to stderr after a job of 100 tasks or more).
    #[arg(long)]
    no_progress: bool,

    /// A job the CLI carries (name for messages, bytes), run in place of
    /// the file on the embedded runtime.
    #[arg(skip)]
    builtin: Option<(&'static str, &'static [u8])>,

    /// Serve HTTP while the job runs (`wray serve run`).
    #[arg(skip)]
    serve: Option<crate::commands::serve::ServeOptions>,
}

/// A job the CLI carries: its name in messages, its bytes, and a file
/// holding them (what a cluster is sent).
pub(crate) struct BuiltinJob {
    pub(crate) name: &'static str,
    pub(crate) bytes: &'static [u8],
    pub(crate) file: PathBuf,
}

/// How long a retry of a lost job waits for the head to answer again (a
/// restarted head is back within seconds).
const RECONNECT_WINDOW: Duration = Duration::from_secs(60);

impl RunCommand {
    /// A run of a job the CLI carries (`wray rl`), with the defaults of
    /// every flag not given here.
    pub(crate) fn builtin(
        job: BuiltinJob,
        args: Vec<String>,
        dirs: Vec<(PathBuf, String)>,
        cpus: Option<f64>,
        address: Option<String>,
        token: Option<String>,
    ) -> RunCommand {
        RunCommand {
            job: job.file,
            args,
            cpus,
            gpus: None,
            memory_limit: None,
            timeout: None,
            // The flag's default, 1GiB.
            object_store_memory: 1 << 30,
            spill_dir: None,
            dirs,
            envs: Vec::new(),
            no_cache: false,
            address,
            token,
            max_retries: 0,
            dashboard: false,
            no_progress: false,
            dashboard_addr: super::dashboard::DashboardAddr {
                dashboard_host: [127, 0, 0, 1].into(),
                dashboard_port: None,
            },
            builtin: Some((job.name, job.bytes)),
            serve: None,
        }
    }

    /// Whether --address was given.
    pub(crate) fn has_address(&self) -> bool {
        self.address.is_some()
    }

    /// The same run, serving HTTP for the job's application.
    pub(crate) fn serving(mut self, options: crate::commands::serve::ServeOptions) -> RunCommand {
        self.serve = Some(options);
        self
    }

    pub fn execute(mut self) -> Result<(), Failure> {
        if !self.dashboard && self.dashboard_addr.dashboard_port.is_some() {
            return Err(Failure::Usage(anyhow::anyhow!("--dashboard-port needs --dashboard")));
        }
        // `wray run job.py`, as `python job.py`: built first, or the build
        // beside it taken when nothing it came from has changed.
        self.job = super::build_python::job_file(&self.job)?;
        if self.address.is_some() {
            return self.execute_remote();
        }
        if self.max_retries > 0 {
            return Err(Failure::Usage(anyhow::anyhow!(
                "--max-retries needs --address: a job on the embedded runtime lives and dies with this process"
            )));
        }
        let mut builder = Runtime::builder().object_store_memory(self.object_store_memory as usize);
        if let Some(c) = self.cpus {
            if !(c.is_finite() && c >= 0.0) {
                return Err(Failure::Usage(anyhow::anyhow!("--cpus must be a non-negative number, got {c}")));
            }
            builder = builder.cpus(c);
        }
        if let Some(g) = self.gpus {
            if !(g.is_finite() && g >= 0.0) {
                return Err(Failure::Usage(anyhow::anyhow!("--gpus must be a non-negative number, got {g}")));
            }
            builder = builder.gpus(g);
        }
        if let Some(d) = &self.spill_dir {
            builder = builder.spill_dir(d.clone());
        }
        if self.no_cache {
            builder = builder.cache_dir(None);
        }
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let _guard = rt.enter();
        // Listening from before the runtime exists: a SIGTERM while the
        // job is compiled is then a cancellation that lets the runtime
        // clean up (its spill directory), not an outright kill.
        let mut stop = StopSignal::new()?;
        let runtime = builder.build().context("starting the runtime")?;
        if self.gpus.is_some_and(|g| g > 0.0)
            && let Some(notice) = runtime.node().devices().notice()
        {
            eprintln!("wray: {notice}");
        }
        let server = match &self.serve {
            Some(options) => {
                let server = rt
                    .block_on(wray_serve_host::Server::bind(options.addr, options.config.clone()))
                    .map_err(|e| Failure::Usage(e.into()))?;
                runtime.node().set_serving(Arc::new(server.clone()));
                Some(server)
            }
            None => None,
        };
        let dashboard = if self.dashboard {
            let config = wray_dashboard::DashboardConfig { serve: server.clone(), ..Default::default() };
            let d = self.dashboard_addr.start(runtime.node(), config)?;
            if let Some(d) = &d {
                eprintln!("wray: dashboard at {}", d.url());
            }
            d
        } else {
            None
        };
        // The file is read once: to tell a `wasi:http` component from a job
        // (only when serving, or once loading it as a job has failed) and
        // to load it.
        let (name, bytes) = match self.builtin {
            Some((name, bytes)) => (name.to_string(), std::borrow::Cow::Borrowed(bytes)),
            None => {
                let bytes = wray_runtime::read_component(&self.job).map_err(|e| Failure::Usage(e.into()))?;
                (self.job.display().to_string(), std::borrow::Cow::Owned(bytes))
            }
        };
        // A standard `wasi:http` component is served as it is, with no job.
        if let (Some(server), Some(options)) = (&server, &self.serve)
            && self.is_http_component(&bytes)
        {
            return self.serve_component(&rt, &runtime, server, options, &bytes, stop);
        }
        // Compiling a component not in the cache takes seconds (a Python
        // job's 18 MB about 15): it runs on a blocking thread, so that
        // Ctrl-C or SIGTERM meanwhile ends the run at once, before the job
        // starts, instead of once it is compiled. (The runtime's drop still
        // removes its spill directory; the compile is abandoned with the
        // process, and the cache writes whole files only.)
        let node = runtime.node().clone();
        let label = name.clone();
        let loading = rt.spawn_blocking(move || (node.load(&label, &bytes), bytes));
        let loaded = rt.block_on(async {
            tokio::select! {
                loaded = loading => Ok(loaded),
                signal = stop.recv() => Err(signal),
            }
        });
        let job = match loaded {
            Ok(Ok((Ok(job), _))) => job,
            Ok(Ok((Err(e), bytes))) => {
                return Err(Failure::Usage(if self.serve.is_none() && self.is_http_component(&bytes) {
                    anyhow::anyhow!("{name} is a wasi:http component, not a wray job: serve it with `wray serve run`")
                } else {
                    e.into()
                }));
            }
            Ok(Err(panicked)) => return Err(Failure::Job(anyhow::anyhow!("compiling {name} failed: {panicked}"))),
            Err(signal) => {
                rt.shutdown_timeout(Duration::from_millis(100));
                return Err(Failure::Stopped(signal));
            }
        };
        if let Some(server) = &server {
            eprintln!("wray: serving HTTP on http://{}", server.local_addr());
        }
        let cancel = Arc::new(AtomicBool::new(false));
        // On a terminal (both streams), the job's output goes through the
        // progress printer so that the live line stays below it; it writes
        // each chunk to the stream the job wrote it to.
        use std::io::IsTerminal;
        let live =
            !self.no_progress && server.is_none() && std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
        let (output, printer) = if live {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let (done, finished) = tokio::sync::oneshot::channel();
            let printer = rt.spawn(crate::progress::terminal(runtime.node().clone(), rx, finished));
            (Output::Terminal(tx), Some((done, printer)))
        } else {
            (Output::Inherit, None)
        };
        let started = std::time::Instant::now();
        let config = JobConfig {
            grants: Grants { dirs: self.dirs, env: self.envs, output, ..Grants::default() },
            command_stdin: true,
            limits: InstanceLimits { memory: self.memory_limit, time: self.timeout },
            cancel: Some(cancel.clone()),
            label: None,
        };
        let mut stopped_by = None;
        let result = rt.block_on(async {
            let run = runtime.run_job(&job, self.args, config);
            tokio::pin!(run);
            tokio::select! {
                r = &mut run => r,
                signal = stop.recv() => {
                    stopped_by = Some(signal);
                    if let Some(server) = &server {
                        // Serving: stop taking connections and let the
                        // application finish its requests; `serve::run`
                        // then returns and the job ends by itself.
                        eprintln!("wray: shutting down; finishing requests in flight (Ctrl-C again to stop now)");
                        server.shutdown();
                        tokio::select! {
                            r = &mut run => return r,
                            _ = stop.recv() => {}
                        }
                    }
                    cancel.store(true, Ordering::Relaxed);
                    // The driver stops within one epoch tick; a second
                    // Ctrl-C is not needed.
                    run.await
                }
            }
        });
        if let Some((done, printer)) = printer {
            let _ = done.send(());
            let _ = rt.block_on(printer);
        }
        if !self.no_progress
            && let Some(line) = crate::progress::summary(&crate::progress::settled(runtime.node()), started.elapsed())
        {
            eprintln!("{line}");
        }
        if let Some(d) = &dashboard {
            d.shutdown();
        }
        // Instances still unwinding must not hold up the exit.
        rt.shutdown_timeout(Duration::from_millis(100));
        match result {
            Ok(()) => Ok(()),
            Err(JobError::Cancelled { .. }) => Err(Failure::Stopped(stopped_by.unwrap_or(Stop::Interrupt))),
            Err(JobError::Exited { status, .. }) => Err(Failure::Exit(status)),
            // Serving, stopped before the application took its routes (its
            // constructors still running, say): `serve::run` then finds the
            // server shutting down and fails. The run ends as the signal
            // asked; what the job said is still shown.
            Err(e) if server.is_some() && stopped_by.is_some() => {
                eprintln!("wray: stopped while the application started; the job ended with: {e}");
                Err(Failure::Stopped(stopped_by.unwrap_or(Stop::Interrupt)))
            }
            Err(e) => Err(Failure::Job(e.into())),
        }
    }

    /// Whether the job file is a standard `wasi:http` component (never a
    /// job built into `wray`). Parsed only when serving, or once loading
    /// it as a job has failed.
    fn is_http_component(&self, bytes: &[u8]) -> bool {
        self.builtin.is_none() && wray_serve_host::is_http_proxy(bytes)
    }

    /// Serves a `wasi:http/proxy` component until Ctrl-C or SIGTERM, then
    /// lets the requests in flight finish.
    fn serve_component(
        &self,
        rt: &tokio::runtime::Runtime,
        runtime: &Runtime,
        server: &wray_serve_host::Server,
        options: &crate::commands::serve::ServeOptions,
        bytes: &[u8],
        mut stop: StopSignal,
    ) -> Result<(), Failure> {
        if !self.args.is_empty() {
            return Err(Failure::Usage(anyhow::anyhow!(
                "{} is a wasi:http component: it takes no arguments after --",
                self.job.display()
            )));
        }
        let name = self.job.file_name().map_or_else(|| "component".to_string(), |n| n.to_string_lossy().into_owned());
        let grants =
            wray_serve_host::HttpGrants { env: self.envs.clone(), dirs: self.dirs.clone(), memory: self.memory_limit };
        let component = {
            let _guard = rt.enter();
            wray_serve_host::HttpComponent::load(runtime.node().engine(), &name, bytes, grants)
                .map_err(|e| Failure::Usage(e.into()))?
        };
        server
            .serve_component(component, &options.route_prefix, options.instances, options.max_queued)
            .map_err(|e| Failure::Usage(anyhow::anyhow!(e)))?;
        eprintln!("wray: serving HTTP on http://{} ({name}, a wasi:http component)", server.local_addr());
        rt.block_on(async {
            stop.recv().await;
            eprintln!("wray: shutting down; finishing requests in flight (Ctrl-C again to stop now)");
            server.shutdown();
            tokio::select! {
                () = server.drained() => {}
                _ = stop.recv() => {}
            }
        });
        Ok(())
    }

    /// Sends the job to a cluster and streams its output back; Ctrl-C or
    /// SIGTERM closes the connection, which cancels the job there.
    fn execute_remote(self) -> Result<(), Failure> {
        // `--address auto`: the head running on this machine.
        let super::local_head::Target { address, token, .. } =
            super::local_head::resolve(self.address.clone(), self.token.clone())?;
        if !self.dirs.is_empty() {
            return Err(anyhow::anyhow!(
                "--dir cannot be used with --address: the job runs on another machine, which has its own files"
            )
            .into());
        }
        let local_only = [
            ("--cpus", self.cpus.is_some()),
            ("--gpus", self.gpus.is_some()),
            ("--spill-dir", self.spill_dir.is_some()),
            ("--no-cache", self.no_cache),
        ];
        if let Some((flag, _)) = local_only.iter().find(|(_, set)| *set) {
            return Err(anyhow::anyhow!(
                "{flag} configures the local runtime; a cluster's nodes are configured by `wray start`"
            )
            .into());
        }
        let job = wray_runtime::cluster::job_request(&self.job, self.args, self.envs, self.memory_limit, self.timeout)?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let mut stop = {
            let _guard = rt.enter();
            StopSignal::new()?
        };
        let mut stopped_by = None;
        let max_retries = self.max_retries;
        let outcome = rt.block_on(async {
            // A signal while connecting (an unreachable head takes seconds
            // to time out) stops the run there too.
            let mut client = tokio::select! {
                c = ClusterClient::connect(&address, &token) => c?,
                signal = stop.recv() => {
                    stopped_by = Some(signal);
                    return Ok(None);
                }
            };
            let mut retries = 0;
            loop {
                // Each stream where the job wrote it, as a local run.
                let run = client.run_job(&job, |stream, chunk| {
                    let _ = stream.write_here(chunk);
                });
                let outcome = tokio::select! {
                    r = run => r.map(Some),
                    signal = stop.recv() => {
                        stopped_by = Some(signal);
                        Ok(None)
                    }
                };
                // Closing tells the head at once; on Ctrl-C that cancels the job.
                client.close().await;
                match outcome {
                    Ok(Some(o)) if o.code == JOB_LOST && retries < max_retries => {
                        retries += 1;
                        eprintln!(
                            "wray: the job was lost ({}); running it again (retry {retries} of {max_retries})",
                            o.message
                        );
                        tokio::select! {
                            c = reconnect(&address, &token) => client = c?,
                            signal = stop.recv() => {
                                stopped_by = Some(signal);
                                return Ok(None);
                            }
                        }
                    }
                    other => return other,
                }
            }
        });
        match outcome {
            Err(e) => Err(Failure::Usage(e)),
            Ok(None) => Err(Failure::Stopped(stopped_by.unwrap_or(Stop::Interrupt))),
            Ok(Some(RemoteOutcome { exit_status: Some(status), .. })) => Err(Failure::Exit(status)),
            Ok(Some(o)) => match o.code {
                0 => Ok(()),
                130 => Err(Failure::Stopped(Stop::Interrupt)),
                2 => Err(Failure::Usage(anyhow::anyhow!(o.message))),
                JOB_LOST => Err(Failure::Lost(anyhow::anyhow!(o.message))),
                _ => Err(Failure::Job(anyhow::anyhow!(o.message))),
            },
        }
    }
}

/// The signal that stopped a run before its job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGINT: Ctrl-C at the terminal.
    Interrupt,
    /// SIGTERM: what `kill`, `timeout`, a process manager or Kubernetes
    /// sends.
    Terminate,
}

impl Stop {
    /// What `wray` prints last.
    pub fn describe(self) -> &'static str {
        match self {
            Stop::Interrupt => "interrupted",
            Stop::Terminate => "terminated",
        }
    }

    /// 128 plus the signal's number, as the shell reports a process the
    /// signal killed.
    pub fn exit_code(self) -> u8 {
        match self {
            Stop::Interrupt => 128 + 2,
            Stop::Terminate => 128 + 15,
        }
    }
}

/// Ctrl-C or SIGTERM. Either stops a run the same way — the job is
/// cancelled, or a server finishes the requests in flight — so that the
/// runtime is dropped and cleans up after itself: left to the default
/// action, SIGTERM killed `wray run` outright and its spill directory, with
/// whatever it had spilled, stayed in the temporary directory. Listening
/// starts when it is made, before the job starts: a handler installed only
/// when first polled left a moment in which a Ctrl-C killed the process
/// outright (seen under load: the job's first output came before the
/// handler).
struct StopSignal {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl StopSignal {
    /// Must be called inside the runtime.
    fn new() -> std::io::Result<StopSignal> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignal { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
    }

    /// The next Ctrl-C or SIGTERM.
    async fn recv(&mut self) -> Stop {
        tokio::select! {
            _ = self.interrupt.recv() => Stop::Interrupt,
            _ = self.terminate.recv() => Stop::Terminate,
        }
    }
}

/// Connects to the head again after a lost job, trying every half second
/// for [`RECONNECT_WINDOW`].
async fn reconnect(address: &str, token: &str) -> anyhow::Result<ClusterClient> {
    let deadline = tokio::time::Instant::now() + RECONNECT_WINDOW;
    loop {
        let attempt = tokio::time::timeout(Duration::from_secs(5), ClusterClient::connect(address, token)).await;
        match attempt {
            Ok(Ok(client)) => return Ok(client),
            Ok(Err(e)) if tokio::time::Instant::now() >= deadline => return Err(e),
            Err(_) if tokio::time::Instant::now() >= deadline => {
                anyhow::bail!("{address} did not answer for {} s", RECONNECT_WINDOW.as_secs())
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}
