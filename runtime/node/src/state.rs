//! What a node reports of itself: the rows behind `wray list`, the
//! dashboard and the metrics (`wray_net::state`).
//!
//! Tasks are recorded by the node that owns them (where their job runs),
//! once, whichever node runs them: a task a stand-in job runs for another
//! node is that node's to report. [`TaskLog`] is the bookkeeping — pure,
//! with a bounded window of finished tasks — and the rest of this module
//! reads the node's own structures (jobs, actors, the store, the head's
//! records) into a [`NodeState`] when asked, so nothing is kept twice and a
//! listing costs nothing until someone asks.

use crate::cluster::link::Link;
use crate::cluster::wire::{ask, pairs};
use crate::{Node, NodeInner, lock};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use wray_core::limits::MAX_PUBLISHED_PER_NODE;
use wray_core::{Error, TaskId};
use wray_net::proto::{Event, Request};
use wray_net::state::{
    self, ActorRow, GroupRow, JobRow, MAX_ACTOR_ROWS, MAX_GROUP_ROWS, MAX_JOB_ROWS, MAX_LOG_CHUNK, MAX_OBJECT_ROWS,
    MAX_TASK_ROWS, NetState, NodeState, ObjectRow, PublishedRow, StoreState, TaskCounts, TaskRow,
};

/// How long the head waits for a worker's state before it lists the worker
/// as not answering: a listing must not hang on one stuck node.
pub const STATE_TIMEOUT: Duration = Duration::from_secs(2);

/// Where a task runs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Place {
    /// On this node.
    Here,
    /// Sent to another node: its id once known (the head names it when it
    /// places the task; a worker learns it from the result).
    Elsewhere(Option<String>),
}

/// What listings show of a task between its submission and its end. It is
/// kept with the task itself — its entry in its job's `tasks`
/// (`local::task::LiveTask`), which submitting and ending a task touch
/// anyway — not in a node-wide table: a task submitted on one worker thread
/// and run on the other is submitted and marked started without the
/// node-wide lock, whose cache line moved between the cores with every
/// task: async tasks with reused instances 313–328k → 340–354k/s, `wait`
/// over 1,000 of them 240–248 → 258–263 rounds/s (alternating runs of the
/// builds before and after). Only the end takes the [`TaskLog`]'s lock.
#[derive(Clone, Debug)]
pub(crate) struct Live {
    function: Arc<str>,
    place: Option<Place>,
    submitted_ms: u64,
    started_ms: u64,
    attempts: u32,
    /// Set when the task failed on another node (its error arrives with
    /// the result, which the owner stores without looking at it).
    error: Option<String>,
}

impl Live {
    /// A task submitted at `now`.
    pub(crate) fn submitted(function: Arc<str>, now: u64) -> Live {
        Live { function, place: None, submitted_ms: now, started_ms: 0, attempts: 0, error: None }
    }

    /// An attempt of the task started at `place`.
    pub(crate) fn start(&mut self, place: Place, now: u64) {
        self.place = Some(place);
        self.started_ms = now;
        self.attempts += 1;
    }

    /// The node that ran the task elsewhere answered: its id, and the
    /// task's error if it failed.
    pub(crate) fn ran_elsewhere(&mut self, node: &str, error: Option<&Error>) {
        self.place = Some(Place::Elsewhere(Some(node.to_string())));
        self.error = error.map(|e| state::cut_error(&e.to_string()));
    }

    /// The function it runs.
    pub(crate) fn function(&self) -> &str {
        &self.function
    }

    /// Started, here or elsewhere.
    pub(crate) fn running(&self) -> bool {
        self.attempts > 0
    }
}

/// A task as listed: while it runs, or ended.
#[derive(Debug)]
struct Record {
    id: TaskId,
    job: Arc<str>,
    live: Live,
    ended_ms: u64,
    state: &'static str,
}

/// The tasks a node's jobs submitted that ended: the last
/// [`MAX_TASK_ROWS`], and counts since the node started. The unfinished
/// ones are kept with their tasks ([`Live`]) and handed to
/// [`TaskLog::snapshot`] by whoever lists them.
#[derive(Default)]
pub(crate) struct TaskLog {
    done: VecDeque<Record>,
    finished: u64,
    failed: u64,
    cancelled: u64,
}

impl TaskLog {
    /// Task `id` of `job` ended at `now`: `Err` is the failure the owner
    /// stored.
    pub(crate) fn end(&mut self, id: TaskId, job: Arc<str>, live: Live, outcome: Result<(), &Error>, now: u64) {
        let mut r = Record { id, job, live, ended_ms: now, state: "FINISHED" };
        match outcome {
            Err(Error::Cancelled) => {
                r.state = "CANCELLED";
                self.cancelled += 1;
            }
            Err(e) => {
                r.state = "FAILED";
                r.live.error = Some(state::cut_error(&e.to_string()));
                self.failed += 1;
            }
            Ok(()) if r.live.error.is_some() => {
                r.state = "FAILED";
                self.failed += 1;
            }
            Ok(()) => self.finished += 1,
        }
        self.done.push_front(r);
        self.done.truncate(MAX_TASK_ROWS);
    }

    /// Counts by state, with those of the unfinished tasks.
    pub(crate) fn counts(&self, pending: u64, running: u64) -> TaskCounts {
        TaskCounts { pending, running, finished: self.finished, failed: self.failed, cancelled: self.cancelled }
    }

    /// Counts by state, and up to `limit` rows, newest first: the
    /// unfinished tasks `live` (each with its id and job) ahead of the
    /// finished ones.
    pub(crate) fn snapshot(
        &self,
        here: &str,
        mut live: Vec<(TaskId, Arc<str>, Live)>,
        limit: usize,
    ) -> (TaskCounts, Vec<TaskRow>) {
        let running = live.iter().filter(|(_, _, l)| l.running()).count() as u64;
        let counts = self.counts(live.len() as u64 - running, running);
        live.sort_by(|a, b| b.2.submitted_ms.cmp(&a.2.submitted_ms).then(b.0.cmp(&a.0)));
        let live = live.into_iter().map(|(id, job, live)| {
            let state = if live.running() { "RUNNING" } else { "PENDING" };
            row(&Record { id, job, live, ended_ms: 0, state }, here)
        });
        let rows = live.chain(self.done.iter().map(|r| row(r, here))).take(limit).collect();
        (counts, rows)
    }
}

fn row(r: &Record, here: &str) -> TaskRow {
    let node = match &r.live.place {
        None => String::new(),
        Some(Place::Here) => here.to_string(),
        Some(Place::Elsewhere(Some(n))) => n.clone(),
        Some(Place::Elsewhere(None)) => "(another node)".to_string(),
    };
    TaskRow {
        id: r.id.to_string(),
        job: r.job.to_string(),
        function: r.live.function.to_string(),
        state: r.state.to_string(),
        node,
        submitted_ms: r.live.submitted_ms,
        started_ms: r.live.started_ms,
        ended_ms: r.ended_ms,
        attempts: r.live.attempts,
        error: r.live.error.clone().unwrap_or_default(),
    }
}

/// The progress documents jobs published, most recent first, at most
/// `MAX_PUBLISHED_PER_NODE`: republishing a topic moves it to the front,
/// a new topic past the bound drops the oldest.
#[derive(Default)]
pub(crate) struct Published {
    rows: VecDeque<PublishedRow>,
}

impl Published {
    pub(crate) fn publish(&mut self, job: String, topic: String, body: String, now: u64) {
        if let Some(i) = self.rows.iter().position(|r| r.job == job && r.topic == topic) {
            self.rows.remove(i);
        }
        self.rows.push_front(PublishedRow { job, topic, updated_ms: now, body });
        self.rows.truncate(MAX_PUBLISHED_PER_NODE);
    }

    fn rows(&self) -> Vec<PublishedRow> {
        self.rows.iter().cloned().collect()
    }
}

/// Resident memory of this process (Linux `/proc/self/statm`), or 0.
fn resident_bytes() -> u64 {
    let Ok(statm) = std::fs::read_to_string("/proc/self/statm") else { return 0 };
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

impl NodeInner {
    /// This node's state, as [`Request::State`] answers it.
    pub(crate) fn local_state(&self) -> NodeState {
        let (role, peers) = match self.link.get() {
            Some(Link::Head(p)) => ("head", Some(p)),
            Some(Link::Worker(_)) => ("worker", None),
            None => ("local", None),
        };
        let st = self.store.stats();
        let jobs: Vec<_> = lock(&self.jobs).values().cloned().collect();
        let (task_counts, tasks) = {
            // The unfinished tasks are collected under the log's lock, which
            // a task's end takes to move its record there: each is listed
            // once.
            let listed = self.listed_jobs();
            let log = lock(&self.task_log);
            let mut live = Vec::new();
            for job in listed.iter().filter(|j| j.owner.is_none()) {
                job.listed_tasks(&mut live);
            }
            log.snapshot(&self.id, live, MAX_TASK_ROWS)
        };
        let mut actors = Vec::new();
        let mut job_rows = Vec::new();
        for job in &jobs {
            // A stand-in's tasks and actors are its owner node's to list.
            if job.owner.is_some() {
                continue;
            }
            let detached = job.hosts_detached.load(Ordering::Relaxed);
            if !detached && job_rows.len() < MAX_JOB_ROWS {
                job_rows.push(JobRow {
                    id: job.key.to_string(),
                    name: job.component.name().to_string(),
                    status: "RUNNING".into(),
                    node: self.id.clone(),
                    submitted: job.config.label.is_some(),
                    start_ms: job.started_ms,
                    ..JobRow::default()
                });
            }
            let collected: Vec<_> = lock(&job.collected).iter().rev().cloned().collect();
            for a in lock(&job.actors).values().chain(&collected) {
                if actors.len() >= MAX_ACTOR_ROWS {
                    break;
                }
                let (host, calls, pending_calls, restarts) = a.activity();
                let death = a.dead_reason();
                let state = match (&death, &host) {
                    (Some(_), _) => "DEAD",
                    (None, None) => "PENDING",
                    (None, Some(_)) => "ALIVE",
                };
                actors.push(ActorRow {
                    id: a.id.to_string(),
                    class: a.class.clone(),
                    name: a.name.clone().unwrap_or_default(),
                    job: job.key.to_string(),
                    state: state.into(),
                    node: host.unwrap_or_default(),
                    restarts,
                    pending_calls,
                    calls,
                    death: death.unwrap_or_default(),
                    detached,
                });
            }
        }
        if let Some(peers) = peers {
            // The head's records of submitted jobs: running ones are already
            // listed (with the node running them), so only their status
            // and times are taken from the record.
            match peers.jobs.list() {
                Ok(mut records) => {
                    records.sort_by_key(|r| std::cmp::Reverse(r.submitted_ms));
                    for info in records {
                        if let Some(row) = job_rows.iter_mut().find(|r| r.id == info.id) {
                            row.start_ms = info.submitted_ms;
                            continue;
                        }
                        if job_rows.len() >= MAX_JOB_ROWS {
                            break;
                        }
                        job_rows.push(JobRow {
                            id: info.id,
                            name: info.name,
                            status: info.status,
                            message: info.message,
                            node: self.id.clone(),
                            submitted: true,
                            start_ms: info.submitted_ms,
                            end_ms: info.ended_ms,
                        });
                    }
                }
                Err(e) => tracing::warn!("listing the job records: {e}"),
            }
        }
        let groups = lock(&self.groups)
            .iter()
            .take(MAX_GROUP_ROWS)
            .map(|(id, record)| GroupRow {
                id: *id,
                bundles: record.iter().map(|(node, r)| (node.clone(), pairs(r))).collect(),
            })
            .collect();
        let objects = self
            .store
            .largest(MAX_OBJECT_ROWS)
            .into_iter()
            .map(|o| ObjectRow {
                id: o.id.to_string(),
                job: o.job.0,
                size: o.size as u64,
                refs: o.refs,
                state: match o.state {
                    wray_store::ObjectState::Pending => "PENDING",
                    wray_store::ObjectState::InMemory => "IN_MEMORY",
                    wray_store::ObjectState::Spilled => "SPILLED",
                    wray_store::ObjectState::Failed => "FAILED",
                    wray_store::ObjectState::Elsewhere => "ON_ANOTHER_NODE",
                }
                .into(),
            })
            .collect();
        NodeState {
            id: self.id.clone(),
            role: role.into(),
            alive: true,
            uptime_ms: self.started.elapsed().as_millis() as u64,
            total: pairs(&self.total_with_store()),
            available: pairs(&self.free_resources()),
            gpus: self.devices.gpus().iter().map(|g| g.name().to_string()).collect(),
            memory_rss: resident_bytes(),
            queued: lock(&self.sched).queued() as u64,
            store: StoreState {
                objects: st.objects as u64,
                memory_bytes: st.memory_bytes as u64,
                budget_bytes: st.budget as u64,
                spilled_bytes: st.spilled_bytes as u64,
                spilled_objects: st.spilled_objects as u64,
                spills: st.spills,
                restores: st.restores,
            },
            task_counts,
            tasks,
            actors,
            jobs: job_rows,
            groups,
            objects,
            net: self.net_state(),
            published: lock(&self.published).rows(),
        }
    }

    /// QUIC traffic over this node's cluster connections, and on the head
    /// the heartbeats it has received.
    fn net_state(&self) -> NetState {
        let mut net = NetState::default();
        let conns: Vec<quinn::Connection> = match self.link.get() {
            Some(Link::Head(peers)) => {
                net.heartbeats = peers.heartbeats.load(Ordering::Relaxed);
                lock(&peers.workers)
                    .iter()
                    .filter(|w| w.alive.load(Ordering::Relaxed))
                    .map(|w| w.conn.clone())
                    .collect()
            }
            Some(Link::Worker(w)) => {
                let mut conns = w.direct_connections();
                conns.push(w.head());
                conns
            }
            None => Vec::new(),
        };
        for c in conns {
            let s = c.stats();
            net.bytes_sent += s.udp_tx.bytes;
            net.bytes_received += s.udp_rx.bytes;
        }
        net
    }
}

impl NodeInner {
    /// Every node's state: on the head, its own and each worker's (asked
    /// now, at most [`STATE_TIMEOUT`] each, all at once; a worker that is
    /// dead or does not answer is listed as not alive with its last known
    /// resources); elsewhere, this node's.
    pub(crate) async fn cluster_state(&self) -> Vec<NodeState> {
        let mut out = vec![self.local_state()];
        let Some(Link::Head(peers)) = self.link.get() else { return out };
        let now = peers.now();
        for (w, answer) in peers.ask_workers(&Request::State, STATE_TIMEOUT).await {
            let last_heartbeat_ms = now.saturating_sub(w.last_beat.load(Ordering::Relaxed));
            let state = match answer {
                Some(Event::State(mut states)) if states.len() == 1 && states[0].within_bounds() => {
                    let mut s = states.remove(0);
                    s.net.last_heartbeat_ms = last_heartbeat_ms;
                    Some(s)
                }
                Some(Event::State(_)) => {
                    tracing::warn!("node {}: its state answer is out of bounds", w.id);
                    None
                }
                _ => None,
            };
            // A dead or silent worker: what the head last knew of it.
            out.push(state.unwrap_or_else(|| NodeState {
                id: w.id.clone(),
                role: "worker".into(),
                alive: false,
                total: w.total.clone(),
                net: NetState { last_heartbeat_ms, ..NetState::default() },
                ..NodeState::default()
            }));
        }
        out
    }
}

/// Part of a node's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogChunk {
    /// Where `data` starts in the file.
    pub offset: u64,
    /// The file's size when read: the next offset once `data` is taken.
    pub size: u64,
    /// The bytes (at most [`MAX_LOG_CHUNK`]).
    pub data: Vec<u8>,
}

impl NodeInner {
    /// Up to `max` bytes of this node's log from `offset` (past the end:
    /// the last `max` bytes).
    fn own_log(&self, offset: u64, max: u64) -> Result<LogChunk, String> {
        use std::io::{Read, Seek, SeekFrom};
        let Some(path) = &self.log_file else {
            return Err(format!(
                "node {} keeps no log file (a node started with --block logs to its standard error)",
                self.id
            ));
        };
        let max = max.min(MAX_LOG_CHUNK as u64);
        let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let size = f.metadata().map_err(|e| format!("{}: {e}", path.display()))?.len();
        let offset = if offset > size { size.saturating_sub(max) } else { offset };
        f.seek(SeekFrom::Start(offset)).map_err(|e| e.to_string())?;
        let mut data = Vec::new();
        f.take(max).read_to_end(&mut data).map_err(|e| e.to_string())?;
        Ok(LogChunk { offset, size, data })
    }

    /// Part of node `node`'s log: this node's own, or on the head a
    /// worker's (asked now, at most [`STATE_TIMEOUT`]).
    pub(crate) async fn node_log(&self, node: &str, offset: u64, max: u64) -> Result<LogChunk, String> {
        if node == self.id {
            return self.own_log(offset, max);
        }
        let Some(Link::Head(peers)) = self.link.get() else {
            return Err(format!("no node {node:?} here (this node is {})", self.id));
        };
        let worker = lock(&peers.workers).iter().find(|w| w.id == node).cloned();
        let Some(w) = worker else { return Err(format!("no node {node:?} in this cluster")) };
        if !w.alive.load(Ordering::Relaxed) {
            return Err(format!("node {node} is dead"));
        }
        let request = Request::NodeLog { node: node.to_string(), offset, max };
        match tokio::time::timeout(STATE_TIMEOUT, ask(&w.conn, &request)).await {
            Ok(Ok(Event::Log { offset, size, data })) if data.len() <= MAX_LOG_CHUNK => {
                Ok(LogChunk { offset, size, data })
            }
            Ok(Ok(Event::Refused(why))) => Err(why),
            Ok(Ok(other)) => Err(format!("node {node} answered a log request with {other:?}")),
            Ok(Err(e)) => Err(format!("node {node}: {e}")),
            Err(_) => Err(format!("node {node} did not answer within {STATE_TIMEOUT:?}")),
        }
    }
}

impl Node {
    /// Part of a node's log (see [`LogChunk`]): `offset` past the end asks
    /// for the last `max` bytes.
    pub async fn node_log(&self, node: &str, offset: u64, max: u64) -> Result<LogChunk, String> {
        self.inner.node_log(node, offset, max).await
    }

    /// How many tasks this node's jobs have pending, running and ended:
    /// what a progress line shows, without building a whole state.
    pub fn task_counts(&self) -> TaskCounts {
        let jobs = self.inner.listed_jobs();
        let log = lock(&self.inner.task_log);
        let (pending, running) = jobs
            .iter()
            .filter(|j| j.owner.is_none())
            .map(|j| j.listed_counts())
            .fold((0, 0), |(p, r), (jp, jr)| (p + jp, r + jr));
        log.counts(pending, running)
    }

    /// This node's state alone.
    pub fn local_state(&self) -> NodeState {
        self.inner.local_state()
    }

    /// Every node's state: on the head, its own and each worker's (asked
    /// at once, at most [`STATE_TIMEOUT`] each); elsewhere, this node's.
    pub async fn cluster_state(&self) -> Vec<NodeState> {
        self.inner.cluster_state().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wray_core::JobId;

    fn id(n: u32) -> TaskId {
        TaskId::driver(JobId(n))
    }

    #[test]
    fn a_task_is_pending_then_running_then_finished() {
        let mut log = TaskLog::default();
        let job: Arc<str> = "n/1".into();
        let (mut f, mut g) = (Live::submitted("f".into(), 10), Live::submitted("g".into(), 11));
        let live = |f: &Live, g: &Live| vec![(id(1), job.clone(), f.clone()), (id(2), job.clone(), g.clone())];
        let (c, rows) = log.snapshot("me", live(&f, &g), 10);
        assert_eq!((c.pending, c.running), (2, 0));
        assert_eq!(rows[0].function, "g", "newest first");
        f.start(Place::Here, 12);
        g.start(Place::Elsewhere(None), 12);
        let (c, rows) = log.snapshot("me", live(&f, &g), 10);
        assert_eq!((c.pending, c.running), (0, 2));
        assert_eq!((rows[0].state.as_str(), rows[0].node.as_str()), ("RUNNING", "(another node)"));
        g.ran_elsewhere("w1", Some(&Error::task_failed("g", "boom")));
        log.end(id(1), job.clone(), f, Ok(()), 20);
        log.end(id(2), job.clone(), g, Ok(()), 21);
        let (c, rows) = log.snapshot("me", Vec::new(), 10);
        assert_eq!((c.pending, c.running, c.finished, c.failed), (0, 0, 1, 1));
        assert_eq!((rows[0].state.as_str(), rows[0].node.as_str()), ("FAILED", "w1"));
        assert!(rows[0].error.contains("boom"));
        assert_eq!((rows[1].state.as_str(), rows[1].node.as_str(), rows[1].attempts), ("FINISHED", "me", 1));
    }

    #[test]
    fn unfinished_tasks_come_first_newest_first_within_the_limit() {
        let mut log = TaskLog::default();
        log.end(id(9), "j".into(), Live::submitted("old".into(), 1), Err(&Error::Cancelled), 2);
        let live = (3..6).map(|n| (id(n), "j".into(), Live::submitted(format!("f{n}").into(), u64::from(n)))).collect();
        let (c, rows) = log.snapshot("me", live, 3);
        assert_eq!((c.pending, c.cancelled), (3, 1));
        let functions: Vec<_> = rows.iter().map(|r| r.function.as_str()).collect();
        assert_eq!(functions, ["f5", "f4", "f3"], "the ended task is past the limit");
    }

    #[test]
    fn published_documents_are_replaced_by_topic_and_bounded() {
        let mut p = Published::default();
        p.publish("j".into(), "tune/a".into(), "1".into(), 1);
        p.publish("j".into(), "tune/b".into(), "2".into(), 2);
        p.publish("j".into(), "tune/a".into(), "3".into(), 3);
        let rows = p.rows();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].topic.as_str(), rows[0].body.as_str()), ("tune/a", "3"));
        for i in 0..100 {
            p.publish("k".into(), format!("t{i}"), String::new(), 4);
        }
        let rows = p.rows();
        assert_eq!(rows.len(), MAX_PUBLISHED_PER_NODE);
        assert_eq!(rows[0].topic, "t99", "the newest is kept");
    }

    #[test]
    fn cancelled_tasks_are_counted_apart() {
        let mut log = TaskLog::default();
        log.end(id(1), "j".into(), Live::submitted("f".into(), 1), Err(&Error::Cancelled), 2);
        let (c, rows) = log.snapshot("me", Vec::new(), 10);
        assert_eq!((c.cancelled, c.finished, c.failed, rows.len()), (1, 0, 0, 1));
        assert_eq!(rows[0].state, "CANCELLED");
    }

    #[test]
    fn the_window_of_finished_tasks_is_bounded_but_counts_are_not() {
        let mut log = TaskLog::default();
        let n = MAX_TASK_ROWS as u32 + 50;
        for i in 0..n {
            log.end(id(i), "j".into(), Live::submitted("f".into(), u64::from(i)), Ok(()), u64::from(i));
        }
        let (c, rows) = log.snapshot("me", Vec::new(), usize::MAX);
        assert_eq!(c.finished, u64::from(n));
        assert_eq!(rows.len(), MAX_TASK_ROWS);
        assert_eq!(rows[0].id, id(n - 1).to_string(), "the newest is kept");
        let long = "x".repeat(5000);
        log.end(id(0), "j".into(), Live::submitted("f".into(), 0), Err(&Error::task_failed("f", long)), 1);
        assert!(log.snapshot("me", Vec::new(), 1).1[0].error.len() <= state::MAX_ERROR_BYTES);
    }
}
