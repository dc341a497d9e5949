//! The records of jobs submitted with `wray job submit` (they run on the
//! head detached from any client connection; running them is
//! `local/detached_jobs.rs`): persisted in sled, so a head restart loses no
//! job record, with their output in one log file each.

use crate::lock;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;
use wray_net::proto::{self, JobInfo};

/// Output kept per job on disk; past it, further output is dropped (and the
/// log says so) rather than filling the head's disk.
pub const MAX_JOB_LOG: u64 = 256 << 20;

pub(crate) const RUNNING: &str = "RUNNING";

/// A running job's handles.
pub(crate) struct Live {
    pub(crate) cancel: Arc<AtomicBool>,
    /// A stop was asked while the job was serving HTTP: it is finishing its
    /// requests before it ends, and ends as stopped.
    pub(crate) stopping: Arc<AtomicBool>,
}

/// The head's table of submitted jobs.
pub struct JobTable {
    db: sled::Db,
    logs: PathBuf,
    pub(crate) live: Mutex<HashMap<String, Live>>,
    /// Notified whenever any job writes output or ends (followers re-check).
    pub(crate) changed: Notify,
    next: Mutex<u64>,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl JobTable {
    /// Opens (or creates) the table in `dir`. Jobs recorded as running by a
    /// previous head process are marked failed: their process is gone.
    pub fn open(dir: &Path) -> std::io::Result<Arc<JobTable>> {
        let db = wray_store::open_waiting(&sled::Config::new().path(dir.join("jobs.sled")))?;
        let logs = dir.join("job-logs");
        std::fs::create_dir_all(&logs)?;
        let mut max = 0;
        for item in db.iter() {
            let (_, v) = item.map_err(io)?;
            let mut info = decode(&v)?;
            max = max.max(info.id.trim_start_matches("job-").parse::<u64>().unwrap_or(0));
            if info.status == RUNNING {
                info.status = "FAILED".into();
                info.message = "the head stopped while the job ran".into();
                info.ended_ms = now_ms();
                db.insert(info.id.as_bytes(), encode(&info)?).map_err(io)?;
            }
        }
        db.flush().map_err(io)?;
        Ok(Arc::new(JobTable {
            db,
            logs,
            live: Mutex::new(HashMap::new()),
            changed: Notify::new(),
            next: Mutex::new(max + 1),
        }))
    }

    pub(crate) fn put(&self, info: &JobInfo) -> std::io::Result<()> {
        self.db.insert(info.id.as_bytes(), encode(info)?).map_err(io)?;
        // Records must survive a crash of the head: flush at each change.
        self.db.flush().map_err(io)?;
        Ok(())
    }

    /// The head's store of component bytes by hash (in the same sled
    /// database), so that clients and workers can name components by hash.
    pub fn components(&self) -> std::io::Result<sled::Tree> {
        self.db.open_tree("components").map_err(io)
    }

    /// The head's records of detached actors (in the same sled database).
    pub fn detached_actors(&self) -> std::io::Result<sled::Tree> {
        self.db.open_tree("detached_actors").map_err(io)
    }

    /// The worker nodes the head has seen (`persist/known_nodes.rs`).
    pub fn known_nodes(&self) -> std::io::Result<sled::Tree> {
        self.db.open_tree("nodes").map_err(io)
    }

    /// The memory snapshots of detached actors that take them.
    pub fn detached_snapshots(&self) -> std::io::Result<sled::Tree> {
        self.db.open_tree("detached_snapshots").map_err(io)
    }

    /// A new job id (`job-000001`, ...), never handed out before.
    pub(crate) fn new_id(&self) -> String {
        let mut next = lock(&self.next);
        let id = format!("job-{:06}", *next);
        *next += 1;
        id
    }

    /// One job's record.
    pub fn get(&self, id: &str) -> std::io::Result<Option<JobInfo>> {
        self.db.get(id.as_bytes()).map_err(io)?.map(|v| decode(&v)).transpose()
    }

    /// Every record, oldest first.
    pub fn list(&self) -> std::io::Result<Vec<JobInfo>> {
        self.db.iter().map(|r| r.map_err(io).and_then(|(_, v)| decode(&v))).collect()
    }

    pub(crate) fn log_path(&self, id: &str) -> PathBuf {
        self.logs.join(format!("{id}.log"))
    }

    /// Up to `max` bytes of a job's log from `offset`, with its record
    /// (`None`: no such job). What the dashboard polls to follow a log.
    pub fn read_log(&self, id: &str, offset: u64, max: usize) -> std::io::Result<Option<(JobInfo, Vec<u8>)>> {
        let Some(info) = self.get(id)? else { return Ok(None) };
        let mut chunk = Vec::new();
        match std::fs::File::open(self.log_path(id)) {
            Ok(mut f) => {
                f.seek(SeekFrom::Start(offset))?;
                f.take(max as u64).read_to_end(&mut chunk)?;
            }
            // A job that wrote nothing yet may have no file.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(Some((info, chunk)))
    }

    /// Streams a job's log from `offset` through `sink`; with `follow`, until
    /// the job ends. Returns the record as it was when streaming stopped.
    pub async fn stream_log<F, Fut>(&self, id: &str, follow: bool, mut sink: F) -> std::io::Result<Option<JobInfo>>
    where
        F: FnMut(Vec<u8>) -> Fut,
        Fut: std::future::Future<Output = std::io::Result<()>>,
    {
        let mut offset = 0u64;
        loop {
            // Register before reading, so output written meanwhile wakes us.
            let changed = self.changed.notified();
            // The record before the log: output written before the job ended
            // is in the file by the time its record says so.
            let Some((info, chunk)) = self.read_log(id, offset, usize::MAX)? else { return Ok(None) };
            offset += chunk.len() as u64;
            if !chunk.is_empty() {
                sink(chunk).await?;
            }
            if !follow || info.status != RUNNING {
                return Ok(Some(info));
            }
            // A timeout too: a missed wake-up costs a second, not a hang.
            let _ = tokio::time::timeout(Duration::from_secs(1), changed).await;
        }
    }
}

fn encode(info: &JobInfo) -> std::io::Result<Vec<u8>> {
    proto::encode(info).map_err(io)
}

fn decode(bytes: &[u8]) -> std::io::Result<JobInfo> {
    // sled hands out unaligned bytes; rkyv validation needs alignment.
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(bytes.len());
    aligned.extend_from_slice(bytes);
    proto::decode_job_info(&aligned).map_err(io)
}
