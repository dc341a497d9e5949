//! The server side of the protocol: every stream a peer opens — a client,
//! a worker, or the head on a worker's connection — is read here, its
//! request validated and dispatched to the role or module that serves it.
//! A bad frame closes only that peer's connection.

use crate::cluster::head::{MEMBERSHIP_PRIORITY, Peers, Running, Worker, close};
use crate::cluster::link::Link;
use crate::cluster::wire::{ask_for, output_event, pairs, resources};
use crate::{JobConfig, JobError, Node, lock, persist};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use wray_host::{Chunk, Grants, InstanceLimits, Output};
use wray_net::proto::{self, Event, JobRequest, NodeReport, Request, StatusReport, TaskRequest};
use wray_net::{NetError, frame};

impl Node {
    pub(super) async fn serve_connection(&self, conn: quinn::Connection, peers: Arc<Peers>) {
        loop {
            let (send, recv) = match conn.accept_bi().await {
                Ok(s) => s,
                // A peer that went silent is worth a line in the log (the
                // others closed on purpose, or were closed by this node).
                Err(quinn::ConnectionError::TimedOut) => {
                    tracing::info!("connection from {} timed out: the peer went silent", conn.remote_address());
                    return;
                }
                Err(_) => return, // the peer went away
            };
            let node = self.clone();
            let conn = conn.clone();
            let peers = peers.clone();
            tokio::spawn(async move {
                match node.serve_stream(send, recv, &peers, &conn).await {
                    Ok(()) => {}
                    // A broken stream (the peer cancelled, a relay broke) is
                    // that stream's business; a bad message is the peer's.
                    Err(NetError::Stream(e)) => tracing::debug!("stream from {} ended: {e}", conn.remote_address()),
                    Err(e) => {
                        tracing::warn!("closing connection from {}: {e}", conn.remote_address());
                        conn.close(close::PROTOCOL.into(), e.to_string().as_bytes());
                    }
                }
            });
        }
    }

    /// Serves one stream: reads its request and answers it.
    ///
    /// Every stream a peer opens is a tokio task holding this future for as
    /// long as it lasts — a task or an actor session sent here, for as long
    /// as it is queued and runs. A future is as large as its largest state,
    /// and one `match` over every request was as large as its largest
    /// handler's, whatever the request: 8,640 bytes a stream. Work (tasks
    /// and actors, the streams that last) is served apart from the rest,
    /// and each handler is boxed when it runs: 336 bytes a stream, and the
    /// handler's own on top.
    pub(super) async fn serve_stream(
        &self,
        send: quinn::SendStream,
        mut recv: quinn::RecvStream,
        peers: &Arc<Peers>,
        conn: &quinn::Connection,
    ) -> Result<(), NetError> {
        let Some(frame) = frame::read(&mut recv).await? else { return Ok(()) };
        // The decoded request (424 bytes) is boxed before any await, or it
        // would stay in this future while the handler runs; a task's is
        // boxed alone, the one allocation it needs.
        let request = match proto::decode_request(&frame)? {
            Request::RunTask(task) | Request::RunActor(task) => Ok(Box::new(task)),
            request => Err(Box::new(request)),
        };
        drop(frame);
        match request {
            Ok(task) => Box::pin(self.serve_work(task, send, recv, peers, conn)).await,
            Err(request) => Box::pin(self.serve_request(*request, send, recv, peers, conn)).await,
        }
    }

    /// A task or an actor another node sends here: the head places it
    /// (here or elsewhere), a worker runs it.
    async fn serve_work(
        &self,
        task: Box<TaskRequest>,
        mut send: quinn::SendStream,
        mut recv: quinn::RecvStream,
        peers: &Arc<Peers>,
        conn: &quinn::Connection,
    ) -> Result<(), NetError> {
        if peers.head {
            Box::pin(self.place_task(task, send, recv, peers, conn)).await
        } else if task.actor.is_some() {
            Box::pin(self.inner.serve_actor(task, send, recv)).await
        } else {
            Box::pin(self.inner.serve_task(task, &mut send, &mut recv)).await
        }
    }

    /// Any other request: status, jobs, membership, relays, upcalls,
    /// fetches, placement groups, HTTP calls.
    async fn serve_request(
        &self,
        request: Request,
        mut send: quinn::SendStream,
        mut recv: quinn::RecvStream,
        peers: &Arc<Peers>,
        conn: &quinn::Connection,
    ) -> Result<(), NetError> {
        let jobs = &peers.jobs;
        let reply = |e: Event| proto::encode(&e);
        let storage = |e: std::io::Error| NetError::Stream(format!("job records: {e}"));
        match request {
            Request::Status => {
                let report = Box::pin(self.cluster_report(peers)).await;
                frame::write(&mut send, &reply(Event::Status(report))?).await?;
            }
            Request::NodeLog { node, offset, max } => {
                let event = match Box::pin(self.node_log(&node, offset, max)).await {
                    Ok(c) => Event::Log { offset: c.offset, size: c.size, data: c.data },
                    Err(why) => Event::Refused(why),
                };
                frame::write(&mut send, &reply(event)?).await?;
            }
            Request::State => {
                let states = Box::pin(self.cluster_state()).await;
                frame::write(&mut send, &reply(Event::State(states))?).await?;
            }
            Request::RunJob(mut job) => {
                if !self.fill_component(&mut job, peers) {
                    let hash = job.component_hash;
                    return frame::write(&mut send, &reply(Event::NeedComponent { hash })?).await;
                }
                match self.place(peers) {
                    None => Box::pin(self.serve_job(job, &mut send, recv, Running(&peers.local))).await?,
                    Some(worker) => {
                        let running = Running(&worker.running);
                        if let Err(job) =
                            Box::pin(self.forward_job(&worker, job, &mut send, &mut recv, running)).await?
                        {
                            // The worker failed before the job started there:
                            // run it here instead.
                            worker.alive.store(false, Ordering::Relaxed);
                            tracing::warn!("worker {} did not take a job; running it on the head", worker.id);
                            peers.local.fetch_add(1, Ordering::Relaxed);
                            Box::pin(self.serve_job(*job, &mut send, recv, Running(&peers.local))).await?
                        }
                    }
                }
            }
            Request::Join { .. } if !peers.head => {
                frame::write(&mut send, &reply(Event::Refused("this node is not a head".into()))?).await?;
            }
            Request::Join { node_id, .. } if node_id.len() > wray_core::limits::MAX_NAME_LEN => {
                let why = format!("a node id of {} bytes (at most {})", node_id.len(), wray_core::limits::MAX_NAME_LEN);
                frame::write(&mut send, &reply(Event::Refused(why))?).await?;
            }
            Request::Join { node_id, .. } if node_id == self.id() => {
                let why = format!("a node cannot join as {node_id}: that is the head's own id");
                frame::write(&mut send, &reply(Event::Refused(why))?).await?;
            }
            Request::Join { node_id, total, listens } => {
                let cpus = total.iter().find(|(k, _)| k == wray_core::CPU).map_or(0.0, |(_, v)| *v);
                let worker = Arc::new(Worker {
                    id: node_id,
                    conn: conn.clone(),
                    listens: listens.then(|| conn.remote_address().to_string()),
                    cpus,
                    total,
                    running: AtomicUsize::new(0),
                    alive: AtomicBool::new(true),
                    last_beat: AtomicU64::new(peers.now()),
                });
                peers.enlist(worker.clone());
                tracing::info!("worker {} joined from {}", worker.id, conn.remote_address());
                let _ = send.set_priority(MEMBERSHIP_PRIORITY);
                let total = resources(&worker.total)?;
                lock(&peers.view).join(worker.id.clone(), total, peers.now());
                if let Some(tree) = &peers.known_nodes
                    && let Err(e) = persist::remember_node(tree, &worker.id, &worker.total)
                {
                    tracing::warn!("could not record the worker {}: {e}", worker.id);
                }
                frame::write(&mut send, &reply(Event::Welcome { head_id: self.id().to_string() })?).await?;
                // Membership lasts as long as the heartbeats (or the
                // connection: keep-alives notice a vanished peer too).
                // Answers go out from a writer of their own, latest first:
                // a write waiting behind a large transfer on the same
                // connection must not keep the next heartbeat unread.
                let (latest, mut changed) = tokio::sync::watch::channel(None);
                let answers = Box::pin(async move {
                    while changed.changed().await.is_ok() {
                        let Some((total, free)) = changed.borrow_and_update().clone() else { continue };
                        let Ok(bytes) = reply(Event::Cluster { total, free }) else { return };
                        if frame::write(&mut send, &bytes).await.is_err() {
                            return;
                        }
                    }
                });
                let beats = Box::pin(async {
                    loop {
                        let bytes = tokio::select! {
                            f = frame::read(&mut recv) => match f {
                                Ok(Some(b)) => b,
                                Ok(None) => return Ok("it left".to_string()),
                                Err(e) => return Ok(e.to_string()),
                            },
                            e = conn.closed() => return Ok(e.to_string()),
                        };
                        let beat = proto::decode_heartbeat(&bytes)?;
                        peers.heartbeats.fetch_add(1, Ordering::Relaxed);
                        worker.last_beat.store(peers.now(), Ordering::Relaxed);
                        let cluster = {
                            let mut view = lock(&peers.view);
                            view.heartbeat(&worker.id, resources(&beat.free)?, &beat.arrived, peers.now());
                            (pairs(&view.total()), pairs(&view.free()))
                        };
                        latest.send_replace(Some(cluster));
                    }
                });
                let why: Result<String, NetError> = tokio::select! {
                    why = beats => why,
                    () = answers => Ok("its membership stream broke".to_string()),
                };
                let why = why?;
                peers.declare_dead_on(&worker.conn, &why);
                return Ok(());
            }
            // (`serve_stream` sends these to `serve_work` first.)
            Request::RunTask(task) | Request::RunActor(task) => {
                return Box::pin(self.serve_work(Box::new(task), send, recv, peers, conn)).await;
            }
            Request::Forward { to } => {
                // Workers reach each other through the head.
                let Some(target) = peers.connection(&to).filter(|_| peers.head) else {
                    return frame::write(&mut send, &reply(Event::Refused(format!("no live node {to}")))?).await;
                };
                let (mut wsend, mut wrecv) = target.open_bi().await.map_err(|e| NetError::Stream(e.to_string()))?;
                let _ = Box::pin(async {
                    tokio::join!(frame::pipe(&mut recv, &mut wsend), frame::pipe(&mut wrecv, &mut send))
                })
                .await;
                return Ok(());
            }
            Request::Hello { node_id } => {
                if node_id.len() > wray_core::limits::MAX_NAME_LEN {
                    return Err(NetError::Malformed(format!("a node id of {} bytes", node_id.len())));
                }
                if let Some(Link::Worker(w)) = self.inner.link.get() {
                    w.introduced(&node_id, conn.clone());
                }
                return Ok(());
            }
            Request::ReturnHandles { job, ids } => {
                if ids.len() > proto::MAX_RETURNED_HANDLES {
                    return Err(NetError::Malformed(format!("{} handles given back in one message", ids.len())));
                }
                self.inner.handles_returned(job, &ids);
                return Ok(());
            }
            Request::Upcall(req) => {
                Box::pin(self.inner.serve_upcall(req, &mut send, &mut recv)).await?;
                return Ok(());
            }
            Request::Fetch { job, id } => {
                Box::pin(self.inner.serve_fetch(job, id, &mut send)).await?;
                return Ok(());
            }
            request @ (Request::CreateGroup { .. } | Request::RemoveGroup { .. }) if !peers.head => {
                let _ = request;
                frame::write(&mut send, &reply(Event::Refused("this node is not a head".into()))?).await?;
            }
            request @ (Request::CreateGroup { .. }
            | Request::RemoveGroup { .. }
            | Request::Reserve { .. }
            | Request::Unreserve { .. }) => {
                let event = Box::pin(self.inner.serve_group_request(request)).await?;
                frame::write(&mut send, &reply(event)?).await?;
            }
            Request::CreateDetached(record) => {
                let event = if peers.head {
                    self.inner.serve_create_detached(record)
                } else {
                    Event::Refused("this node is not a head".into())
                };
                frame::write(&mut send, &reply(event)?).await?;
            }
            Request::HttpCall(call) => Box::pin(self.serve_http_call(call, &mut send, &mut recv)).await?,
            Request::GetComponent { hash } => {
                let event = match peers.stored_component(&hash) {
                    Ok(bytes) => Event::Component(bytes),
                    Err(why) => Event::Refused(why),
                };
                frame::write(&mut send, &reply(event)?).await?;
            }
            Request::SubmitJob(mut job) => {
                if !self.fill_component(&mut job, peers) {
                    let hash = job.component_hash;
                    return frame::write(&mut send, &reply(Event::NeedComponent { hash })?).await;
                }
                let bytes = std::mem::take(&mut job.component);
                let event = if wray_host::is_http_proxy(&bytes) {
                    match Box::pin(self.serve_component(jobs, bytes, job)).await {
                        Ok(Ok(id)) => Event::Submitted { id },
                        Ok(Err(why)) => Event::Refused(why),
                        Err(e) => return Err(storage(e)),
                    }
                } else {
                    let loaded = self.inner.load_component_async(&job.name, None, async { Ok(bytes) });
                    match Box::pin(loaded).await {
                        Err(e) => Event::Refused(e),
                        Ok(component) => Event::Submitted { id: jobs.submit(self, component, job).map_err(storage)? },
                    }
                };
                frame::write(&mut send, &reply(event)?).await?;
            }
            Request::ListJobs => {
                frame::write(&mut send, &reply(Event::Jobs(jobs.list().map_err(storage)?))?).await?;
            }
            Request::JobStatus { id } => {
                let event = match jobs.get(&id).map_err(storage)? {
                    Some(info) => Event::Jobs(vec![info]),
                    None => Event::Refused(format!("no job {id:?}")),
                };
                frame::write(&mut send, &reply(event)?).await?;
            }
            Request::StopJob { id } => {
                let event = if jobs.stop_gracefully(self, &id) {
                    Event::Finished { code: 0, message: format!("stopping {id}") }
                } else {
                    match jobs.get(&id).map_err(storage)? {
                        Some(info) => Event::Refused(format!("{id:?} is not running: it is {}", info.status)),
                        None => Event::Refused(format!("no job {id:?}")),
                    }
                };
                frame::write(&mut send, &reply(event)?).await?;
            }
            Request::JobLogs { id, follow } => {
                let send = tokio::sync::Mutex::new(&mut send);
                let streamed = Box::pin(jobs.stream_log(&id, follow, |chunk| async {
                    let bytes = reply(Event::Output(chunk)).map_err(|e| std::io::Error::other(e.to_string()))?;
                    frame::write(*send.lock().await, &bytes).await.map_err(|e| std::io::Error::other(e.to_string()))
                }))
                .await
                .map_err(storage)?;
                let event = match streamed {
                    None => Event::Refused(format!("no job {id:?}")),
                    Some(info) => Event::Jobs(vec![info]),
                };
                frame::write(*send.lock().await, &reply(event)?).await?;
            }
        }
        let _ = send.finish();
        Ok(())
    }

    /// `running` counts the job as placed here until it ends (uncounted
    /// before its result goes out, so that the client's next job sees this
    /// node free).
    pub(super) async fn serve_job(
        &self,
        mut req: JobRequest,
        send: &mut quinn::SendStream,
        mut recv: quinn::RecvStream,
        running: Running<'_>,
    ) -> Result<(), NetError> {
        let finished = |code: u8, message: String| Event::Finished { code, message };
        let loaded = if req.component.is_empty() {
            match self.component(&req.component_hash) {
                Some(c) => Ok(c),
                None => {
                    let hash = req.component_hash;
                    return frame::write(send, &proto::encode(&Event::NeedComponent { hash })?).await;
                }
            }
        } else {
            let bytes = std::mem::take(&mut req.component);
            self.inner.load_component_async(&req.name, None, async { Ok(bytes) }).await
        };
        let component = match loaded {
            Ok(c) => c,
            Err(e) => {
                return frame::write(send, &proto::encode(&finished(2, e))?).await;
            }
        };
        tracing::info!("running job {} for a client", req.name);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let config = remote_job_config(&self.inner, &req, tx, cancel.clone());
        let node = self.clone();
        let mut job = tokio::spawn(async move { node.run_job(component, req.args, config).await });
        // Stream output until the job ends; the client closing its side (Ctrl-C,
        // a dropped connection) cancels the job.
        let mut client_gone = false;
        let outcome = loop {
            tokio::select! {
                Some(chunk) = rx.recv() => frame::write(send, &proto::encode(&output_event(chunk))?).await?,
                r = &mut job => break r,
                _ = recv.read_to_end(0), if !client_gone => {
                    client_gone = true;
                    cancel.store(true, Ordering::Relaxed);
                }
            }
        };
        while let Ok(chunk) = rx.try_recv() {
            frame::write(send, &proto::encode(&output_event(chunk))?).await?;
        }
        let event = match outcome {
            Ok(Ok(())) => finished(0, String::new()),
            Ok(Err(JobError::Cancelled { .. })) => finished(130, "cancelled".into()),
            Ok(Err(JobError::Exited { status, .. })) => Event::Exited { status },
            Ok(Err(e)) => finished(1, e.to_string()),
            Err(e) => finished(1, format!("the job's task failed: {e}")),
        };
        drop(running);
        frame::write(send, &proto::encode(&event)?).await
    }

    pub(super) fn status_report(&self) -> StatusReport {
        let st = self.store_stats();
        let (tasks, actors) = self.task_and_actor_counts();
        StatusReport {
            nodes: vec![NodeReport {
                id: self.id().to_string(),
                address: String::new(),
                alive: true,
                total: pairs(&self.total_resources()),
                available: pairs(&self.available_resources()),
                jobs: self.running_jobs() as u64,
                idle_jobs: self.idle_jobs() as u64,
                tasks: tasks as u64,
                actors: actors as u64,
                objects: st.objects as u64,
                object_memory: st.memory_bytes as u64,
                object_spilled: st.spilled_bytes as u64,
            }],
        }
    }
}

impl Node {
    /// A submitted `wasi:http` component (`wray serve deploy` of one):
    /// compiled and served by the head's proxy as a job. The outer error is
    /// the job table's storage; the inner one, why it is refused.
    async fn serve_component(
        &self,
        jobs: &Arc<crate::persist::JobTable>,
        bytes: Vec<u8>,
        job: JobRequest,
    ) -> std::io::Result<Result<String, String>> {
        let name = job.name.clone();
        let Some(serving) = self.inner.serving.get().cloned() else {
            return Ok(Err(format!(
                "{name} is a wasi:http component and this head serves no HTTP: start it with `wray start --head --serve-port PORT`"
            )));
        };
        if job.http.is_none() {
            return Ok(Err(format!(
                "{name} is a wasi:http component, not a wray job: deploy it with `wray serve deploy`"
            )));
        }
        let grants = wray_host::HttpGrants { env: job.env.clone(), dirs: Vec::new(), memory: job.memory_limit };
        match self.load_http_component(&name, bytes, grants).await {
            Ok(component) => jobs.submit_component(self, serving, component, job).map(Ok),
            Err(why) => Ok(Err(why)),
        }
    }
}

/// How a job sent over the network runs: the environment and limits it asked
/// for, the node's shared directories (the sender's files are not here),
/// output into `tx`, cancelled through `cancel`.
pub(crate) fn remote_job_config(
    node: &crate::NodeInner,
    req: &JobRequest,
    tx: tokio::sync::mpsc::UnboundedSender<Chunk>,
    cancel: Arc<AtomicBool>,
) -> JobConfig {
    JobConfig {
        grants: Grants {
            dirs: node.shared_dirs.clone(),
            env: req.env.clone(),
            output: Output::Channel(tx),
            ..Grants::default()
        },
        limits: InstanceLimits { memory: req.memory_limit, time: req.timeout_ms.map(std::time::Duration::from_millis) },
        cancel: Some(cancel),
        label: None,
        command_stdin: false,
    }
}

impl crate::NodeInner {
    /// What a job's `nodes()` lists, the head first: the head's report of
    /// the cluster (asked for from a worker), or this node alone.
    pub(crate) async fn list_nodes(&self) -> Result<Vec<wray_host::NodeInfo>, wray_core::Error> {
        use wray_core::Error;
        let node = Node {
            inner: self.me.upgrade().ok_or_else(|| Error::InvalidArgument("nodes: the node is stopping".into()))?,
        };
        let report = match self.link.get() {
            Some(Link::Head(peers)) => node.cluster_report(peers).await,
            Some(Link::Worker(w)) => ask_for(&w.head(), &Request::Status, |answer| match answer {
                Event::Status(report) => Ok(report),
                other => Err(other.into()),
            })
            .await
            .map_err(|e| Error::InvalidArgument(format!("nodes: {}", e.message("the head"))))?,
            None => node.status_report(),
        };
        let amounts = |r: &[(String, f64)]| resources(r).map_err(|e| Error::InvalidArgument(format!("nodes: {e}")));
        let nodes = report.nodes.into_iter().enumerate().map(|(i, n)| {
            Ok(wray_host::NodeInfo {
                total: amounts(&n.total)?,
                available: amounts(&n.available)?,
                id: n.id,
                address: n.address,
                alive: n.alive,
                head: i == 0,
            })
        });
        nodes.collect()
    }
}
