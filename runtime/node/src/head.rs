//! The head role: serve clients over QUIC with mutual TLS.
//!
//! Each connection carries requests on bidirectional streams (one request
//! per stream). A connection whose handshake fails never reaches this code
//! (wrong token, no certificate); a peer that sends a malformed or oversized
//! frame loses its own connection and nothing else.

use crate::{JobConfig, JobError, JobTable, Node};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use wray_host::{Grants, InstanceLimits, Output};
use wray_net::proto::{self, Event, JobRequest, NodeReport, Request, StatusReport};
use wray_net::{NetError, frame};

/// QUIC application error codes a head closes connections with.
mod close {
    /// A frame was malformed or too large.
    pub const PROTOCOL: u32 = 1;
}

impl Node {
    /// Serves clients on `endpoint` until it is closed. Never returns an
    /// error for one peer's misbehaviour: failed handshakes and bad frames
    /// are logged and only that peer is dropped.
    /// `jobs` records the jobs clients submit detached (`wray job submit`).
    pub async fn serve(&self, endpoint: quinn::Endpoint, jobs: Arc<JobTable>) {
        while let Some(incoming) = endpoint.accept().await {
            let node = self.clone();
            let jobs = jobs.clone();
            tokio::spawn(async move {
                let remote = incoming.remote_address();
                match incoming.await {
                    Ok(conn) => node.serve_connection(conn, jobs).await,
                    // Wrong token, no certificate, garbage datagrams.
                    Err(e) => tracing::warn!("refused connection from {remote}: {e}"),
                }
            });
        }
    }

    async fn serve_connection(&self, conn: quinn::Connection, jobs: Arc<JobTable>) {
        loop {
            let (send, recv) = match conn.accept_bi().await {
                Ok(s) => s,
                Err(_) => return, // the peer went away
            };
            let node = self.clone();
            let conn = conn.clone();
            let jobs = jobs.clone();
            tokio::spawn(async move {
                if let Err(e) = node.serve_stream(send, recv, &jobs).await {
                    tracing::warn!("closing connection from {}: {e}", conn.remote_address());
                    conn.close(close::PROTOCOL.into(), e.to_string().as_bytes());
                }
            });
        }
    }

    async fn serve_stream(
        &self,
        mut send: quinn::SendStream,
        mut recv: quinn::RecvStream,
        jobs: &Arc<JobTable>,
    ) -> Result<(), NetError> {
        let Some(frame) = frame::read(&mut recv).await? else { return Ok(()) };
        let reply = |e: Event| proto::encode(&e);
        let storage = |e: std::io::Error| NetError::Stream(format!("job records: {e}"));
        match proto::decode_request(&frame)? {
            Request::Status => {
                let report = self.status_report();
                frame::write(&mut send, &reply(Event::Status(report))?).await?;
            }
            Request::RunJob(job) => self.serve_job(job, &mut send, recv).await?,
            Request::SubmitJob(job) => {
                let event = match self.load(&job.name, &job.component) {
                    Err(e) => Event::Refused(e.to_string()),
                    Ok(component) => Event::Submitted { id: jobs.submit(self, component, job).map_err(storage)? },
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
                let event = if jobs.stop(&id) {
                    Event::Finished { code: 0, message: format!("stopping {id}") }
                } else {
                    Event::Refused(format!("{id:?} is not running"))
                };
                frame::write(&mut send, &reply(event)?).await?;
            }
            Request::JobLogs { id, follow } => {
                let send = tokio::sync::Mutex::new(&mut send);
                let streamed = jobs
                    .stream_log(&id, follow, |chunk| async {
                        let bytes = reply(Event::Output(chunk)).map_err(|e| std::io::Error::other(e.to_string()))?;
                        frame::write(*send.lock().await, &bytes).await.map_err(|e| std::io::Error::other(e.to_string()))
                    })
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

    async fn serve_job(
        &self,
        req: JobRequest,
        send: &mut quinn::SendStream,
        mut recv: quinn::RecvStream,
    ) -> Result<(), NetError> {
        let finished = |code: u8, message: String| Event::Finished { code, message };
        let component = match self.load(&req.name, &req.component) {
            Ok(c) => c,
            Err(e) => {
                return frame::write(send, &proto::encode(&finished(2, e.to_string()))?).await;
            }
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let config = JobConfig {
            grants: Grants { dirs: Vec::new(), env: req.env, output: Output::Channel(tx) },
            limits: InstanceLimits {
                memory: req.memory_limit,
                time: req.timeout_ms.map(std::time::Duration::from_millis),
            },
            cancel: Some(cancel.clone()),
        };
        let node = self.clone();
        let mut job = tokio::spawn(async move { node.run_job(component, req.args, config).await });
        // Stream output until the job ends; the client closing its side (Ctrl-C,
        // a dropped connection) cancels the job.
        let mut client_gone = false;
        let outcome = loop {
            tokio::select! {
                Some(chunk) = rx.recv() => frame::write(send, &proto::encode(&Event::Output(chunk))?).await?,
                r = &mut job => break r,
                _ = recv.read_to_end(0), if !client_gone => {
                    client_gone = true;
                    cancel.store(true, Ordering::Relaxed);
                }
            }
        };
        while let Ok(chunk) = rx.try_recv() {
            frame::write(send, &proto::encode(&Event::Output(chunk))?).await?;
        }
        let event = match outcome {
            Ok(Ok(())) => finished(0, String::new()),
            Ok(Err(JobError::Cancelled { .. })) => finished(130, "cancelled".into()),
            Ok(Err(e)) => finished(1, e.to_string()),
            Err(e) => finished(1, format!("the job's task failed: {e}")),
        };
        frame::write(send, &proto::encode(&event)?).await
    }

    fn status_report(&self) -> StatusReport {
        let pairs = |r: wray_core::Resources| r.iter().map(|(k, v)| (k.to_string(), v)).collect();
        let st = self.store_stats();
        let (tasks, actors) = self.task_and_actor_counts();
        StatusReport {
            nodes: vec![NodeReport {
                id: self.id().to_string(),
                address: String::new(),
                alive: true,
                total: pairs(self.total_resources()),
                available: pairs(self.available_resources()),
                jobs: self.running_jobs() as u64,
                tasks: tasks as u64,
                actors: actors as u64,
                objects: st.objects as u64,
                object_memory: st.memory_bytes as u64,
                object_spilled: st.spilled_bytes as u64,
            }],
        }
    }
}
