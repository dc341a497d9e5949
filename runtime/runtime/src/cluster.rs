//! A client of a wray cluster: submit jobs to a head node over QUIC with
//! mutual TLS, stream their output back, ask for the cluster's status.

use anyhow::{Context, anyhow};
use std::net::SocketAddr;
use wray_host::Stream;
use wray_net::proto::{self, Event, JobInfo, JobRequest, Request};
use wray_net::state::NodeState;
use wray_net::{ClusterIdentity, Token, frame};

/// The [`RemoteOutcome::code`] of a job that did not fail but was lost:
/// the node running it died under it (`wray run --max-retries` runs such a
/// job again).
pub const JOB_LOST: u8 = proto::JOB_LOST;

/// A job to run on a cluster: the component (named by hash; its bytes go
/// only to a head that lacks them), its arguments, environment and limits.
/// Made by [`job_request`].
#[derive(Clone, Debug)]
pub struct JobSpec(JobRequest);

impl JobSpec {
    /// The label the job runs under (the component's file name).
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The arguments for the job's `main`.
    pub fn args(&self) -> &[String] {
        &self.0.args
    }

    /// Whether the component is a standard `wasi:http` component (served by
    /// `wray serve deploy`, not run).
    pub fn is_http_component(&self) -> bool {
        wray_host::is_http_proxy(&self.0.component)
    }

    /// Marks the job as a `wasi:http` component for the head's proxy to
    /// serve under `route_prefix`, `instances` requests at once and
    /// `max_queued` waiting. It is named by its file name (not the path it
    /// was given): a component deployed again under that name replaces it.
    pub fn served_over_http(mut self, route_prefix: &str, instances: u32, max_queued: u32) -> JobSpec {
        if let Some(file) = std::path::Path::new(&self.0.name).file_name() {
            self.0.name = file.to_string_lossy().into_owned();
        }
        self.0.http =
            Some(wray_net::proto::HttpServing { route_prefix: route_prefix.to_string(), instances, max_queued });
        self
    }
}

/// A cluster's nodes, as `wray status` shows them.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterStatus {
    /// Every node the head knows, the dead ones last seen included.
    pub nodes: Vec<NodeStatus>,
}

/// One node of a [`ClusterStatus`].
#[derive(Clone, Debug, PartialEq)]
pub struct NodeStatus {
    /// Its id.
    pub id: String,
    /// Where it listens (workers: where the head sees them).
    pub address: String,
    /// Whether it answers heartbeats.
    pub alive: bool,
    /// All its resources.
    pub total: Vec<(String, f64)>,
    /// Resources not held by anything running.
    pub available: Vec<(String, f64)>,
    /// Jobs whose driver or tasks run there.
    pub jobs: u64,
    /// Other nodes' jobs kept there a moment after their last task (not
    /// in `jobs`).
    pub idle_jobs: u64,
    /// Tasks queued or running there.
    pub tasks: u64,
    /// Live actors there.
    pub actors: u64,
    /// Objects in its store.
    pub objects: u64,
    /// Bytes of objects in memory.
    pub object_memory: u64,
    /// Bytes of objects spilled to disk.
    pub object_spilled: u64,
}

impl From<proto::NodeReport> for NodeStatus {
    fn from(n: proto::NodeReport) -> NodeStatus {
        NodeStatus {
            id: n.id,
            address: n.address,
            alive: n.alive,
            total: n.total,
            available: n.available,
            jobs: n.jobs,
            idle_jobs: n.idle_jobs,
            tasks: n.tasks,
            actors: n.actors,
            objects: n.objects,
            object_memory: n.object_memory,
            object_spilled: n.object_spilled,
        }
    }
}

/// A job submitted to run detached (`wray job submit`), as the head records
/// it.
#[derive(Clone, Debug, PartialEq)]
pub struct JobRecord {
    /// Its id (`job-000001`).
    pub id: String,
    /// The label it was submitted with (the file name).
    pub name: String,
    /// `RUNNING`, `SUCCEEDED`, `FAILED` or `STOPPED`.
    pub status: String,
    /// Why it failed or stopped.
    pub message: String,
    /// When it was submitted, milliseconds since the Unix epoch.
    pub submitted_ms: u64,
    /// When it ended (0 while running).
    pub ended_ms: u64,
}

impl From<JobInfo> for JobRecord {
    fn from(j: JobInfo) -> JobRecord {
        JobRecord {
            id: j.id,
            name: j.name,
            status: j.status,
            message: j.message,
            submitted_ms: j.submitted_ms,
            ended_ms: j.ended_ms,
        }
    }
}

/// A QUIC endpoint accepting mutually authenticated connections (what a
/// head node serves on).
pub use quinn::Endpoint;
pub use wray_net::server as listen;

/// A connection to a cluster's head node.
pub struct ClusterClient {
    endpoint: quinn::Endpoint,
    conn: quinn::Connection,
    address: String,
    /// Whether `endpoint` accepts connections too.
    listening: bool,
}

/// A transport failure while a job runs: the job is lost, not failed.
#[derive(Debug)]
struct Lost(String);

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Lost {}

/// `map_err` for the transport calls of a running job.
fn lost(e: impl std::fmt::Display) -> anyhow::Error {
    Lost(e.to_string()).into()
}

/// How a remote job ended: the exit code `wray run` uses and the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteOutcome {
    /// 0 success, 1 the job failed, 2 bad input, 130 cancelled,
    /// [`proto::JOB_LOST`] lost with the node running it.
    pub code: u8,
    /// Why, when not 0.
    pub message: String,
    /// The status the job's driver passed to `exit`, when it called it
    /// (`code` is then 1).
    pub exit_status: Option<i32>,
}

/// The address to send to for `addr`: a head started with `--host
/// 0.0.0.0` prints (and records for `--address auto`) `0.0.0.0:PORT`, to
/// which QUIC cannot send ("invalid remote address"); on the machine that
/// printed it, the head is reached on loopback, as a TCP connect to 0.0.0.0
/// reaches it. Any other address is left as it is.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, addr.port()))
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}

impl ClusterClient {
    /// Connects to the head at `address` (`HOST:PORT`) with the cluster's
    /// `token`. Fails (during the TLS handshake) if the token is not the
    /// cluster's.
    pub async fn connect(address: &str, token: &str) -> anyhow::Result<ClusterClient> {
        let (addr, identity) = Self::resolve(address, token, "client").await?;
        let (endpoint, conn) = wray_net::connect(addr, &identity).await?;
        Ok(ClusterClient { endpoint, conn, address: address.to_string(), listening: false })
    }

    /// As [`connect`](Self::connect), from an endpoint that also accepts
    /// connections from the cluster's other nodes (what a worker joins
    /// with: they reach it directly at the address the head sees;
    /// [`endpoint`](Self::endpoint) is where they arrive).
    pub async fn connect_listening(address: &str, token: &str) -> anyhow::Result<ClusterClient> {
        let (addr, identity) = Self::resolve(address, token, "worker").await?;
        let (endpoint, conn) = wray_net::connect_listening(addr, &identity).await?;
        Ok(ClusterClient { endpoint, conn, address: address.to_string(), listening: true })
    }

    async fn resolve(address: &str, token: &str, name: &str) -> anyhow::Result<(SocketAddr, ClusterIdentity)> {
        let token = Token::parse(token).context("--token")?;
        let addr: SocketAddr = tokio::net::lookup_host(address)
            .await
            .with_context(|| format!("cannot resolve {address}"))?
            .next()
            .ok_or_else(|| anyhow!("{address} resolves to no address"))?;
        Ok((reachable(addr), ClusterIdentity::new(&token, name)?))
    }

    /// The client's endpoint (one that accepts connections, if made by
    /// [`connect_listening`](Self::connect_listening)).
    pub fn endpoint(&self) -> &quinn::Endpoint {
        &self.endpoint
    }

    /// Closes the connection and waits (briefly) until the head has been
    /// told, so that a job this client ran is cancelled at once.
    pub async fn close(&self) {
        self.conn.close(0u32.into(), b"client closing");
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), self.endpoint.wait_idle()).await;
    }

    /// Runs a job on the cluster, calling `on_output` with its output as it
    /// arrives, each chunk with the stream the job wrote it to. Dropping the future (Ctrl-C) closes the stream, which
    /// cancels the job on the cluster.
    ///
    /// The component is named by hash first and sent only if the head does
    /// not have it yet. Losing the connection while the job runs (the head
    /// died, or the network between) is an outcome, not an error: code
    /// [`proto::JOB_LOST`], as when the node running the job dies.
    ///
    /// Takes the request by reference, so that running a lost job again
    /// does not copy its component; the bytes are copied only for a head
    /// that asks for them.
    pub async fn run_job(&self, job: &JobSpec, on_output: impl FnMut(Stream, &[u8])) -> anyhow::Result<RemoteOutcome> {
        match self.run_job_stream(&job.0, on_output).await {
            Err(e) if e.is::<Lost>() => Ok(RemoteOutcome {
                code: proto::JOB_LOST,
                message: format!("lost contact with {}: {e:#}", self.address),
                exit_status: None,
            }),
            r => r,
        }
    }

    async fn run_job_stream(
        &self,
        job: &JobRequest,
        mut on_output: impl FnMut(Stream, &[u8]),
    ) -> anyhow::Result<RemoteOutcome> {
        let mut named = job.clone_without_component();
        if named.component_hash.is_empty() {
            named.component_hash = content_hash(&job.component);
        }
        let (mut send, mut recv) = self.conn.open_bi().await.map_err(lost)?;
        frame::write(&mut send, &proto::encode(&Request::RunJob(named.clone()))?).await.map_err(lost)?;
        let mut sent_component = false;
        // The send side stays open: closing it tells the head to cancel.
        loop {
            let Some(bytes) = frame::read(&mut recv).await.map_err(lost)? else {
                return Err(lost("the job's stream ended without a result"));
            };
            match proto::decode_event(&bytes)? {
                Event::NeedComponent { .. } if !sent_component => {
                    sent_component = true;
                    let full = JobRequest { component: job.component.clone(), ..named.clone() };
                    let _ = send.finish();
                    (send, recv) = self.conn.open_bi().await.map_err(lost)?;
                    frame::write(&mut send, &proto::encode(&Request::RunJob(full))?).await.map_err(lost)?;
                }
                Event::Output(chunk) => on_output(Stream::Stdout, &chunk),
                Event::ErrorOutput(chunk) => on_output(Stream::Stderr, &chunk),
                Event::Finished { code, message } => {
                    let _ = send.finish();
                    return Ok(RemoteOutcome { code, message, exit_status: None });
                }
                Event::Exited { status } => {
                    let _ = send.finish();
                    let message = format!("the job called exit({status})");
                    return Ok(RemoteOutcome { code: 1, message, exit_status: Some(status) });
                }
                Event::Refused(why) => return Err(anyhow!(why)),
                other => return Err(anyhow!("{} answered a job with {other:?}", self.address)),
            }
        }
    }

    /// Sends `req` on a new stream and returns the stream's receiving side.
    async fn request(&self, req: &Request) -> anyhow::Result<quinn::RecvStream> {
        let (mut send, recv) = self.conn.open_bi().await.with_context(|| format!("talking to {}", self.address))?;
        frame::write(&mut send, &proto::encode(req)?).await?;
        let _ = send.finish();
        Ok(recv)
    }

    /// The next event on `recv`.
    async fn event(&self, recv: &mut quinn::RecvStream) -> anyhow::Result<Event> {
        let bytes =
            frame::read(recv).await?.ok_or_else(|| anyhow!("{} closed the stream without an answer", self.address))?;
        match proto::decode_event(&bytes)? {
            Event::Refused(why) => Err(anyhow!(why)),
            e => Ok(e),
        }
    }

    /// The cluster's nodes and their resources.
    pub async fn status(&self) -> anyhow::Result<ClusterStatus> {
        let mut recv = self.request(&Request::Status).await?;
        match self.event(&mut recv).await? {
            Event::Status(s) => Ok(ClusterStatus { nodes: s.nodes.into_iter().map(NodeStatus::from).collect() }),
            other => Err(anyhow!("{} answered status with {other:?}", self.address)),
        }
    }

    /// Every node's state: jobs, tasks, actors, objects, placement groups,
    /// counters (`wray list`, the dashboard's data). Each list is cut to
    /// its bound in `wray_net::state`; the counts are exact.
    pub async fn state(&self) -> anyhow::Result<Vec<NodeState>> {
        let mut recv = self.request(&Request::State).await?;
        match self.event(&mut recv).await? {
            Event::State(nodes) if nodes.iter().all(NodeState::within_bounds) => Ok(nodes),
            Event::State(_) => Err(anyhow!("{} answered state with lists longer than their bounds", self.address)),
            other => Err(anyhow!("{} answered state with {other:?}", self.address)),
        }
    }

    /// Part of a node's log (`node.log`): `(offset, file size, bytes)`;
    /// `offset` past the end asks for the last `max` bytes. The head
    /// answers for any live node of its cluster.
    pub async fn node_log(&self, node: &str, offset: u64, max: u64) -> anyhow::Result<(u64, u64, Vec<u8>)> {
        let mut recv = self.request(&Request::NodeLog { node: node.into(), offset, max }).await?;
        match self.event(&mut recv).await? {
            Event::Log { offset, size, data } => Ok((offset, size, data)),
            Event::Refused(why) => Err(anyhow!(why)),
            other => Err(anyhow!("{} answered a log request with {other:?}", self.address)),
        }
    }

    /// Submits a job that runs detached from this connection; returns its id.
    pub async fn submit_job(&self, job: JobSpec) -> anyhow::Result<String> {
        let job = with_hash(job.0);
        let mut recv = self.request(&Request::SubmitJob(job.clone_without_component())).await?;
        let mut event = self.event(&mut recv).await?;
        if let Event::NeedComponent { .. } = event {
            let mut recv = self.request(&Request::SubmitJob(job)).await?;
            event = self.event(&mut recv).await?;
        }
        match event {
            Event::Submitted { id } => Ok(id),
            other => Err(anyhow!("{} answered a submission with {other:?}", self.address)),
        }
    }

    /// Every submitted job.
    pub async fn list_jobs(&self) -> anyhow::Result<Vec<JobRecord>> {
        let mut recv = self.request(&Request::ListJobs).await?;
        match self.event(&mut recv).await? {
            Event::Jobs(jobs) => Ok(jobs.into_iter().map(JobRecord::from).collect()),
            other => Err(anyhow!("{} answered a job list with {other:?}", self.address)),
        }
    }

    /// One submitted job.
    pub async fn job_status(&self, id: &str) -> anyhow::Result<JobRecord> {
        let mut recv = self.request(&Request::JobStatus { id: id.into() }).await?;
        match self.event(&mut recv).await? {
            Event::Jobs(mut jobs) if jobs.len() == 1 => Ok(jobs.remove(0).into()),
            other => Err(anyhow!("{} answered a job status with {other:?}", self.address)),
        }
    }

    /// A submitted job's output (with `follow`, until it ends); returns its
    /// record as of the end of the stream.
    pub async fn job_logs(
        &self,
        id: &str,
        follow: bool,
        mut on_output: impl FnMut(&[u8]),
    ) -> anyhow::Result<JobRecord> {
        let mut recv = self.request(&Request::JobLogs { id: id.into(), follow }).await?;
        loop {
            match self.event(&mut recv).await? {
                Event::Output(chunk) => on_output(&chunk),
                Event::Jobs(mut jobs) if jobs.len() == 1 => return Ok(jobs.remove(0).into()),
                other => return Err(anyhow!("{} answered a log request with {other:?}", self.address)),
            }
        }
    }

    /// Joins the cluster as worker `node_id` with `total` resources. The
    /// returned stream is the membership: keep it (dropping it leaves the
    /// cluster); the head then sends requests on this connection, which the
    /// worker serves (`Node::serve_head`), and the worker heartbeats on the
    /// stream. Returns the head's node id too.
    pub async fn join(
        &self,
        node_id: &str,
        total: Vec<(String, f64)>,
    ) -> anyhow::Result<((quinn::SendStream, quinn::RecvStream), String)> {
        let (mut send, mut recv) = self.conn.open_bi().await.with_context(|| format!("talking to {}", self.address))?;
        let listens = self.listening;
        frame::write(&mut send, &proto::encode(&Request::Join { node_id: node_id.into(), total, listens })?).await?;
        match self.event(&mut recv).await? {
            Event::Welcome { head_id } => Ok(((send, recv), head_id)),
            other => Err(anyhow!("{} answered a join with {other:?}", self.address)),
        }
    }

    /// The underlying connection.
    pub fn connection(&self) -> &quinn::Connection {
        &self.conn
    }

    /// Stops a submitted job.
    pub async fn stop_job(&self, id: &str) -> anyhow::Result<()> {
        let mut recv = self.request(&Request::StopJob { id: id.into() }).await?;
        self.event(&mut recv).await.map(|_| ())
    }
}

/// A job request for the component at `path`, as `wray run --address` and
/// `wray job submit` send it, its component's hash filled in.
pub fn job_request(
    path: &std::path::Path,
    args: Vec<String>,
    env: Vec<(String, String)>,
    memory_limit: Option<u64>,
    timeout: Option<std::time::Duration>,
) -> anyhow::Result<JobSpec> {
    let component = wray_host::read_component(path)?;
    Ok(JobSpec(JobRequest {
        name: path.display().to_string(),
        component_hash: content_hash(&component),
        component,
        args,
        env,
        memory_limit,
        timeout_ms: timeout.map(|t| t.as_millis().min(u128::from(u64::MAX)) as u64),
        http: None,
    }))
}

/// Fills in the component's content hash unless the request has it.
fn with_hash(mut job: JobRequest) -> JobRequest {
    if job.component_hash.is_empty() {
        job.component_hash = content_hash(&job.component);
    }
    job
}

/// A component's content hash (sha256, hex): how nodes name components.
fn content_hash(component: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(component).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::reachable;
    use std::net::SocketAddr;

    #[test]
    fn an_unspecified_address_is_reached_on_loopback() {
        let parse = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(reachable(parse("0.0.0.0:6380")), parse("127.0.0.1:6380"));
        assert_eq!(reachable(parse("[::]:6380")), parse("[::1]:6380"));
        for kept in ["127.0.0.1:6380", "10.0.0.5:6380", "[::1]:9", "[fe80::1]:9"] {
            assert_eq!(reachable(parse(kept)), parse(kept));
        }
    }
}
