//! Running jobs submitted with `wray job submit`: on the head, detached
//! from any client, their output written to their log and their end to
//! their record (`persist/job_table.rs`); `wray job stop` cancels them.

use crate::persist::job_table::Live;
use crate::persist::{JobTable, MAX_JOB_LOG, RUNNING, now_ms};
use crate::{JobError, Node, lock};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use wray_host::JobComponent;
use wray_net::proto::{JobInfo, JobRequest};

impl JobTable {
    /// Starts `req` on `node`; returns its id.
    pub fn submit(self: &Arc<Self>, node: &Node, component: JobComponent, req: JobRequest) -> std::io::Result<String> {
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
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
        let mut config = crate::cluster::requests::remote_job_config(&node.inner, &req, tx, cancel);
        config.label = Some(id.clone());
        let table = self.clone();
        let node = node.clone();
        tokio::spawn(async move {
            let run = node.run_job(component, req.args, config);
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
                    Some(chunk) = rx.recv() => write(&chunk, &table),
                    r = &mut run => break r,
                }
            };
            while let Ok(chunk) = rx.try_recv() {
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
