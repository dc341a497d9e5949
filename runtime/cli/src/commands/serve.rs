//! `wray serve`: run an HTTP application (`serve run`), look at one
//! (`serve status`).

use crate::Failure;
use crate::commands::run::RunCommand;
use crate::parse;
use anyhow::Context;
use clap::{Args, Subcommand};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;
use wray_serve_host::ServerConfig;

/// Serve HTTP with a job's deployments (Ray Serve), or a standard
/// `wasi:http/proxy` component.
///
/// The job's `#[wray::main]` declares an application with `wray::serve`
/// and calls `serve::run`; its deployments' replicas are actors, and the
/// proxy on --host:--port sends each request to the least loaded replica.
/// A component exporting `wasi:http/incoming-handler` (what `wasmtime
/// serve` and Spin run) is served as is: each request in a fresh instance,
/// --instances at once.
/// HTTP/1.1 and HTTP/2 (cleartext) on one port. The proxy answers
/// `/-/healthz`, `/-/routes` and `/-/status` itself.
#[derive(Args)]
#[command(after_help = "\
Examples:
  wray serve run app.wasm                         serve on http://127.0.0.1:8000
  wray serve run --port 9000 --dir ./models::/models app.wasm
  wray serve status                               applications, deployments, replicas
  curl -d '{\"x\": 1}' http://127.0.0.1:8000/predict")]
pub struct ServeCommand {
    #[command(subcommand)]
    command: ServeSub,
}

#[derive(Subcommand)]
enum ServeSub {
    Run(Box<ServeRun>),
    Deploy(ServeDeploy),
    Status(ServeStatus),
    Shutdown(ServeShutdown),
}

/// Deploy an application to a cluster whose head serves HTTP (`wray start
/// --head --serve-port PORT`): the job runs detached on the head (as `wray
/// job submit`), its replicas are actors placed over the cluster, and the
/// head's proxy routes to them. Returns once the application serves
/// (printing its job id), or fails with the job's error. Deploying an
/// application under a name already served replaces it without dropping a
/// request: the new version starts, takes the routes, and the old one
/// finishes its requests and stops.
///
/// A standard `wasi:http/proxy` component is served by the head's proxy
/// itself, as a job of its own: each request in a fresh instance on the
/// head, --instances at once, under --route-prefix. Deploying a component
/// of the same file name at the same prefix replaces it the same way.
#[derive(Args)]
#[command(after_help = "\
Examples:
  wray start --head --serve-port 8000
  wray serve deploy --address 127.0.0.1:6380 --token TOKEN app.wasm -- --model /models/wine.json
  wray serve deploy --address 127.0.0.1:6380 --token TOKEN --instances 4 --route-prefix /api proxy.wasm
  wray serve status --server 127.0.0.1:8000
  wray serve shutdown --address 127.0.0.1:6380 --token TOKEN")]
struct ServeDeploy {
    /// The application's job component (.wasm).
    job: std::path::PathBuf,

    /// Arguments for the job's main (after `--`).
    #[arg(last = true)]
    args: Vec<String>,

    #[command(flatten)]
    cluster: ClusterArgs,

    /// Set an environment variable in the job: KEY=VALUE, or KEY to pass
    /// this process's value (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse::env_pair)]
    envs: Vec<(String, String)>,

    /// Memory limit of every instance, e.g. 256MiB.
    #[arg(long, value_name = "SIZE", value_parser = parse::size)]
    memory_limit: Option<u64>,

    /// How long to wait for the application to serve.
    #[arg(long, value_name = "DUR", value_parser = parse::duration, default_value = "120s")]
    wait: Duration,

    /// A `wasi:http` component: requests it runs at once, each in a fresh
    /// instance [default: 8].
    #[arg(long, value_name = "N")]
    instances: Option<u32>,

    /// A `wasi:http` component: requests that may wait for an instance;
    /// past it, 503 with Retry-After [default: 1000].
    #[arg(long, value_name = "N")]
    max_queued: Option<u32>,

    /// A `wasi:http` component: the route prefix it serves [default: /].
    #[arg(long, value_name = "PREFIX")]
    route_prefix: Option<String>,
}

/// Requests a `wasi:http` component runs at once unless told.
const DEFAULT_INSTANCES: u32 = 8;
/// Requests that may wait for one of its instances unless told.
const DEFAULT_MAX_QUEUED: u32 = 1000;

/// Stop every application the cluster's head serves: each stops taking
/// requests, finishes those in flight, and its job ends as STOPPED.
#[derive(Args)]
struct ServeShutdown {
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// Where the cluster and its HTTP proxy are.
#[derive(Args)]
struct ClusterArgs {
    /// The head node, HOST:PORT; `auto` or none: the head `wray start
    /// --head` runs on this machine.
    #[arg(long, env = "WRAY_ADDRESS")]
    address: Option<String>,

    /// The cluster's token (printed by `wray start --head`); none: the
    /// local head's.
    #[arg(long, env = "WRAY_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// The head's HTTP proxy, HOST:PORT (default: where a head on this
    /// machine says its proxy listens, else the head's host, port 8000).
    #[arg(long, value_name = "HOST:PORT")]
    server: Option<String>,
}

impl ClusterArgs {
    /// (address, token, server).
    fn resolve(&self) -> Result<(String, String, String), Failure> {
        let super::local_head::Target { address, token, local } =
            super::local_head::resolve(self.address.clone(), self.token.clone())?;
        // A head on this machine wrote where its proxy listens, as the URL
        // it printed (`http://HOST:PORT`).
        let written = local
            .and_then(|dir| std::fs::read_to_string(dir.join("serve")).ok())
            .and_then(|url| url.trim().strip_prefix("http://").map(str::to_string))
            .filter(|s| !s.is_empty());
        let server = match (&self.server, written) {
            (Some(s), _) => s.clone(),
            (None, Some(s)) => s,
            (None, _) => {
                let host = address.rsplit_once(':').map_or(address.as_str(), |(h, _)| h);
                format!("{host}:8000")
            }
        };
        Ok((address, token, server))
    }
}

/// The job ids of the applications a server's `/-/status` lists.
fn served_jobs(server: &str) -> anyhow::Result<Vec<(String, String)>> {
    let v: serde_json::Value =
        serde_json::from_str(&http_get(server, "/-/status")?).context("the server's /-/status is not JSON")?;
    Ok(v["applications"]
        .as_array()
        .map(|apps| {
            apps.iter()
                .map(|a| {
                    let job = match &a["job"] {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (a["name"].as_str().unwrap_or("?").to_string(), job)
                })
                .collect()
        })
        .unwrap_or_default())
}

impl ServeDeploy {
    fn execute(mut self) -> Result<(), Failure> {
        let (address, token, server) = self.cluster.resolve()?;
        // The proxy must be there before the job is sent.
        http_get(&server, "/-/healthz").with_context(|| {
            format!("the head serves no HTTP at {server}: start it with `wray start --head --serve-port PORT`, or give --server")
        })?;
        // An application written in Python is built first, as by `wray run`.
        self.job = super::build_python::job_file(&self.job)?;
        let mut req = wray_runtime::cluster::job_request(&self.job, self.args, self.envs, self.memory_limit, None)?;
        let component_flags = self.instances.is_some() || self.max_queued.is_some() || self.route_prefix.is_some();
        if req.is_http_component() {
            if !req.args().is_empty() {
                return Err(Failure::Usage(anyhow::anyhow!(
                    "{} is a wasi:http component: it takes no arguments after --",
                    self.job.display()
                )));
            }
            req = req.served_over_http(
                self.route_prefix.as_deref().unwrap_or("/"),
                self.instances.unwrap_or(DEFAULT_INSTANCES),
                self.max_queued.unwrap_or(DEFAULT_MAX_QUEUED),
            );
        } else if component_flags {
            return Err(Failure::Usage(anyhow::anyhow!(
                "--instances, --max-queued and --route-prefix are for wasi:http components; {} is a wray job (its deployments set their own)",
                self.job.display()
            )));
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let client =
            rt.block_on(wray_runtime::cluster::ClusterClient::connect(&address, &token)).map_err(Failure::Usage)?;
        let id = rt.block_on(client.submit_job(req)).map_err(Failure::Usage)?;
        let deadline = std::time::Instant::now() + self.wait;
        let outcome = loop {
            if let Some((name, _)) = served_jobs(&server)?.into_iter().find(|(_, job)| *job == id) {
                println!("{id}");
                eprintln!("wray: application {name:?} serves at http://{server} (job {id})");
                break Ok(());
            }
            let record = rt.block_on(client.job_status(&id)).map_err(Failure::Usage)?;
            if record.status != "RUNNING" {
                break Err(Failure::Job(anyhow::anyhow!(
                    "{id} {}: {} (see `wray job logs {id}`)",
                    record.status,
                    record.message
                )));
            }
            if std::time::Instant::now() > deadline {
                break Err(Failure::Job(anyhow::anyhow!(
                    "{id} did not start serving within {} s; it still runs (see `wray job logs {id}`)",
                    self.wait.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        rt.block_on(client.close());
        outcome
    }
}

impl ServeShutdown {
    fn execute(self) -> Result<(), Failure> {
        let (address, token, server) = self.cluster.resolve()?;
        let jobs = served_jobs(&server)?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let client =
            rt.block_on(wray_runtime::cluster::ClusterClient::connect(&address, &token)).map_err(Failure::Usage)?;
        for (name, job) in &jobs {
            match rt.block_on(client.stop_job(job)) {
                Ok(()) => eprintln!("wray: stopping application {name:?} (job {job})"),
                Err(e) => eprintln!("wray: application {name:?} (job {job}): {e:#}"),
            }
        }
        rt.block_on(client.close());
        // Each finishes its requests in flight first.
        let deadline = std::time::Instant::now() + wray_serve_host::DEFAULT_SHUTDOWN_GRACE + Duration::from_secs(5);
        while !served_jobs(&server)?.is_empty() {
            if std::time::Instant::now() > deadline {
                return Err(Failure::Job(anyhow::anyhow!("applications still serve at {server}")));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        println!("stopped {} application(s)", jobs.len());
        Ok(())
    }
}

/// Run an application on the embedded runtime until Ctrl-C (or SIGTERM),
/// which stops taking connections, finishes the requests in flight, and
/// exits 0. A second Ctrl-C stops at once.
#[derive(Args)]
#[command(after_help = "\
Examples:
  wray serve run app.wasm
  wray serve run --host 0.0.0.0 --port 8080 --request-timeout 5s app.wasm -- --model /models/wine.json")]
struct ServeRun {
    /// The address to listen on. The HTTP port is wray's only plaintext
    /// port: it binds the loopback interface unless told otherwise.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,

    /// The port (0: any free port, printed at start).
    #[arg(long, default_value_t = 8000)]
    port: u16,

    /// A request not answered within this long gets 504 (unless its
    /// deployment sets its own timeout).
    #[arg(long, value_name = "DUR", value_parser = parse::duration, default_value = "60s")]
    request_timeout: Duration,

    /// Largest request body; a larger one gets 413.
    #[arg(long, value_name = "SIZE", value_parser = parse::size, default_value = "16MiB")]
    max_body: u64,

    /// Largest request head (request line and headers; at least 8KiB).
    #[arg(long, value_name = "SIZE", value_parser = parse::size, default_value = "16KiB")]
    max_header: u64,

    /// How long shutdown waits for requests in flight.
    #[arg(long, value_name = "DUR", value_parser = parse::duration, default_value = "30s")]
    shutdown_grace: Duration,

    /// Do not write the access log (one line per request on stderr).
    #[arg(long)]
    no_access_log: bool,

    /// A standard `wasi:http/proxy` component (what `wasmtime serve` and
    /// Spin run): requests it runs at once, each in a fresh instance (its
    /// replicas).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_INSTANCES)]
    instances: u32,

    /// A `wasi:http` component: requests that may wait for an instance;
    /// past it, 503 with Retry-After.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_QUEUED)]
    max_queued: u32,

    /// A `wasi:http` component: the route prefix it serves.
    #[arg(long, value_name = "PREFIX", default_value = "/")]
    route_prefix: String,

    #[command(flatten)]
    run: RunCommand,
}

/// Show the applications a running server serves: deployments, replicas,
/// their states and load (from its `/-/status`).
#[derive(Args)]
struct ServeStatus {
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:8000", value_name = "HOST:PORT")]
    server: String,

    /// Print the JSON as the server gave it.
    #[arg(long)]
    json: bool,
}

/// What `wray run` needs to serve: where to listen and the proxy's limits.
pub(crate) struct ServeOptions {
    pub(crate) addr: SocketAddr,
    pub(crate) config: ServerConfig,
    /// For a `wasi:http` component: instances at once, queue, route prefix.
    pub(crate) instances: u32,
    pub(crate) max_queued: u32,
    pub(crate) route_prefix: String,
}

impl ServeCommand {
    pub fn execute(self) -> Result<(), Failure> {
        match self.command {
            ServeSub::Run(r) => r.execute(),
            ServeSub::Deploy(d) => d.execute(),
            ServeSub::Status(s) => s.execute(),
            ServeSub::Shutdown(s) => s.execute(),
        }
    }
}

impl ServeRun {
    fn execute(self) -> Result<(), Failure> {
        if self.run.has_address() {
            return Err(Failure::Usage(anyhow::anyhow!(
                "wray serve run serves on the embedded runtime; to serve on a cluster use `wray serve deploy --address`"
            )));
        }
        if self.request_timeout.is_zero() || self.shutdown_grace > Duration::from_secs(3600) {
            return Err(Failure::Usage(anyhow::anyhow!(
                "--request-timeout must be more than 0 and --shutdown-grace at most 1h"
            )));
        }
        let config = ServerConfig {
            max_header_bytes: usize::try_from(self.max_header).unwrap_or(usize::MAX).clamp(8192, 1 << 20),
            max_body_bytes: usize::try_from(self.max_body)
                .unwrap_or(usize::MAX)
                .min(wray_core::limits::MAX_OBJECT_SIZE),
            request_timeout: self.request_timeout,
            header_timeout: wray_serve_host::DEFAULT_HEADER_TIMEOUT,
            shutdown_grace: self.shutdown_grace,
            access_log: !self.no_access_log,
        };
        let options = ServeOptions {
            addr: SocketAddr::new(self.host, self.port),
            config,
            instances: self.instances,
            max_queued: self.max_queued,
            route_prefix: self.route_prefix,
        };
        self.run.serving(options).execute()
    }
}

impl ServeStatus {
    fn execute(self) -> Result<(), Failure> {
        let body = http_get(&self.server, "/-/status")?;
        if self.json {
            println!("{body}");
            return Ok(());
        }
        let v: serde_json::Value = serde_json::from_str(&body).context("the server's /-/status is not JSON")?;
        let apps = v["applications"].as_array().cloned().unwrap_or_default();
        if apps.is_empty() {
            println!("no applications");
        }
        for app in apps {
            println!("application {} (job {})", app["name"].as_str().unwrap_or("?"), app["job"]);
            for d in app["deployments"].as_array().cloned().unwrap_or_default() {
                let route = d["route_prefix"].as_str().map(|p| format!(" at {p}")).unwrap_or_default();
                println!(
                    "  deployment {}{route}: {}, {} of {} replicas running, {} queued",
                    d["name"].as_str().unwrap_or("?"),
                    d["status"].as_str().unwrap_or("?"),
                    d["replicas"].as_array().map_or(0, |r| r.len()),
                    d["target_replicas"],
                    d["queued_requests"]
                );
                if let Some(e) = d["last_error"].as_str() {
                    println!("    last error: {e}");
                }
                for r in d["replicas"].as_array().cloned().unwrap_or_default() {
                    let node = r["node"].as_str().map(|n| format!(" on {n}")).unwrap_or_default();
                    println!(
                        "    replica {} {}{node}: {} ongoing, {} handled, up {:.0} s",
                        r["replica"],
                        r["state"].as_str().unwrap_or("?"),
                        r["ongoing_requests"],
                        r["handled"].as_u64().map_or_else(|| "-".to_string(), |n| n.to_string()),
                        r["uptime_s"].as_f64().unwrap_or(0.0)
                    );
                }
            }
        }
        Ok(())
    }
}

/// Largest answer `serve status` reads.
const MAX_STATUS_BYTES: u64 = 16 << 20;

/// A plain HTTP/1.1 GET (the proxy's endpoints are small JSON documents;
/// no client library needed). Returns the body of a 200.
fn http_get(server: &str, path: &str) -> anyhow::Result<String> {
    let addr = server
        .to_socket_addrs()
        .with_context(|| format!("{server:?} is not HOST:PORT"))?
        .next()
        .with_context(|| format!("{server:?} resolves to no address"))?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("no wray serve at {server} (is `wray serve run` running?)"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    s.take(MAX_STATUS_BYTES).read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").context("the server's answer is not HTTP")?;
    let status = head.split_whitespace().nth(1).unwrap_or("?");
    if status != "200" {
        anyhow::bail!("{server}{path} answered {status}: {}", body.trim());
    }
    Ok(body.to_string())
}
