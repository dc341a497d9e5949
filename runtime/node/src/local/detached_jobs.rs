//! Running jobs submitted with `wray job submit`: on the head, detached
//! from any client, their output written to their log and their end to
//! their record (`persist/job_table.rs`); `wray job stop` cancels them.

use crate::cluster::http_calls::ClusterHttp;
use crate::cluster::link::Link;
use crate::persist::job_table::Live;
use crate::persist::{JobTable, MAX_JOB_LOG, RUNNING, now_ms};
use crate::{JobConfig, JobError, Node, lock};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use wray_host::{BoxFuture, HttpComponent, HttpNodes, JobComponent, Serving};
use wray_net::proto::{JobInfo, JobRequest};

/// Where a job's output goes: its log.
type Output = tokio::sync::mpsc::UnboundedSender<wray_host::Chunk>;

impl JobTable {
    /// Starts `req` on `node`; returns its id.
    pub fn submit(self: &Arc<Self>, node: &Node, component: JobComponent, req: JobRequest) -> std::io::Result<String> {
        let node = node.clone();
        self.start(&node.inner.clone(), req, move |req, config, _| {
            Box::pin(async move { node.run_job(component, req.args, config).await })
        })
    }

    /// Starts serving a `wasi:http` component deployed with `wray serve
    /// deploy` (`req.http` says how) on `serving`, the head's proxy, as a
    /// job: listed, logged, stopped and recorded like any other. Returns
    /// its id.
    pub fn submit_component(
        self: &Arc<Self>,
        node: &Node,
        serving: Arc<dyn Serving>,
        component: HttpComponent,
        req: JobRequest,
    ) -> std::io::Result<String> {
        // On a head, the workers answer requests too, in turn with it.
        let elsewhere: Option<Arc<dyn HttpNodes>> = match node.inner.link.get() {
            Some(Link::Head(peers)) => Some(Arc::new(ClusterHttp {
                peers: peers.clone(),
                name: req.name.clone(),
                hash: req.component_hash.clone(),
                env: req.env.clone(),
                memory_limit: req.memory_limit,
            })),
            _ => None,
        };
        self.start(&node.inner.clone(), req, move |req, config, out| {
            Box::pin(async move {
                let name = req.name.clone();
                let Some(http) = req.http else {
                    return Err(JobError::Start { name, message: "no serving options".into() });
                };
                let Some(label) = config.label.clone() else {
                    return Err(JobError::Start { name, message: "no job id".into() });
                };
                let line = format!(
                    "serving {name} (a wasi:http component) at {}, {} request(s) at once, each in a fresh instance{}\n",
                    http.route_prefix,
                    http.instances,
                    if elsewhere.is_some() { ", on the head and its workers in turn" } else { "" }
                );
                let _ = out.send((wray_host::Stream::Stdout, line.into_bytes()));
                let serve = serving.serve_component(
                    &label,
                    component,
                    &http.route_prefix,
                    http.instances,
                    http.max_queued,
                    elsewhere,
                );
                // `wray job stop` drains it through the server; the cancel
                // flag (set when that takes longer than the grace) ends it.
                let cancel = config.cancel.clone().unwrap_or_default();
                tokio::select! {
                    r = serve => r.map_err(|message| JobError::Start { name, message }),
                    () = crate::local::job::wait_flag(&cancel) => Err(JobError::Cancelled { name }),
                }
            })
        })
    }

    /// Records a new running job whose run `run` makes from its request and
    /// config, runs it, writes its output to its log and its end to its
    /// record. Returns its id.
    fn start(
        self: &Arc<Self>,
        node: &Arc<crate::NodeInner>,
        req: JobRequest,
        run: impl FnOnce(JobRequest, JobConfig, Output) -> BoxFuture<'static, Result<(), JobError>> + Send + 'static,
    ) -> std::io::Result<String> {
        let id = self.new_id();
        let info = JobInfo {
            id: id.clone(),
            name: req.name.clone(),
            status: RUNNING.into(),
            submitted_ms: now_ms(),
            ..JobInfo::default()
        };
        self.put(&info)?;
        let mut log = std::fs::File::create(self.log_path(&id))?;
        let cancel = Arc::new(AtomicBool::new(false));
        let stopping = Arc::new(AtomicBool::new(false));
        lock(&self.live).insert(id.clone(), Live { cancel: cancel.clone(), stopping: stopping.clone() });
        // The log holds both streams, interleaved as written.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<wray_host::Chunk>();
        let mut config = crate::cluster::requests::remote_job_config(node, &req, tx.clone(), cancel);
        config.label = Some(id.clone());
        let table = self.clone();
        tokio::spawn(async move {
            let run = run(req, config, tx);
            tokio::pin!(run);
            let mut written = 0u64;
            let mut write = |chunk: &[u8], table: &JobTable| {
                if written < MAX_JOB_LOG {
                    let room = (MAX_JOB_LOG - written) as usize;
                    let part = &chunk[..chunk.len().min(room)];
                    let _ = log.write_all(part);
                    written += part.len() as u64;
                    if part.len() < chunk.len() {
                        let _ = log.write_all(b"\n[wray: log limit reached; further output dropped]\n");
                    }
                }
                table.changed.notify_waiters();
            };
            let outcome = loop {
                tokio::select! {
                    Some((_, chunk)) = rx.recv() => write(&chunk, &table),
                    r = &mut run => break r,
                }
            };
            while let Ok((_, chunk)) = rx.try_recv() {
                write(&chunk, &table);
            }
            let (status, message) = match outcome {
                Ok(()) if stopping.load(Ordering::Relaxed) => {
                    ("STOPPED", "stopped with wray job stop after finishing its requests".to_string())
                }
                Ok(()) => ("SUCCEEDED", String::new()),
                Err(JobError::Cancelled { .. }) => ("STOPPED", "stopped with wray job stop".to_string()),
                Err(e) => ("FAILED", e.to_string()),
            };
            let mut info = info;
            info.status = status.into();
            info.message = message;
            info.ended_ms = now_ms();
            if let Err(e) = table.put(&info) {
                tracing::error!("cannot record the end of {}: {e}", info.id);
            }
            lock(&table.live).remove(&info.id);
            table.changed.notify_waiters();
        });
        Ok(id)
    }

    /// Cancels a running job. Returns false if it is not running.
    pub fn stop(&self, id: &str) -> bool {
        match lock(&self.live).get(id) {
            Some(live) => {
                live.cancel.store(true, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Stops a running job: one that serves HTTP on `node` first stops
    /// taking requests and finishes those in flight (cancelled only if that
    /// takes longer than the server's grace); any other is cancelled at
    /// once. Returns false if it is not running.
    pub fn stop_gracefully(self: &Arc<Self>, node: &Node, id: &str) -> bool {
        let Some(stopping) = lock(&self.live).get(id).map(|l| l.stopping.clone()) else {
            return false;
        };
        // Marked first: the application may stop, and its job end, before
        // `stop_job` even returns.
        stopping.store(true, Ordering::Relaxed);
        match node.inner.serving.get().and_then(|s| s.stop_job(id)) {
            Some(grace) => {
                let (table, id) = (self.clone(), id.to_string());
                tokio::spawn(async move {
                    tokio::time::sleep(grace + std::time::Duration::from_secs(1)).await;
                    table.stop(&id);
                });
                true
            }
            None => {
                stopping.store(false, Ordering::Relaxed);
                self.stop(id)
            }
        }
    }
}
