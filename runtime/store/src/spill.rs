//! Where spilled objects go.

use std::io;
use std::path::Path;
use wray_core::ObjectId;

/// Durable storage for objects evicted from memory. Implementations must be
/// safe to call from many threads.
pub trait SpillStore: Send + Sync + 'static {
    /// Stores `data` under `id` (overwriting).
    fn write(&self, id: ObjectId, data: &[u8]) -> io::Result<()>;
    /// Reads what was stored under `id`.
    fn read(&self, id: ObjectId) -> io::Result<Option<Vec<u8>>>;
    /// Forgets `id`.
    fn delete(&self, id: ObjectId) -> io::Result<()>;
    /// Bytes on disk, as far as the implementation can tell.
    fn disk_usage(&self) -> u64;
}

/// Spilled objects in a sled database. sled is kept behind the
/// [`SpillStore`] trait so that it can be replaced; spilled objects do not
/// need to survive a restart (the node's objects die with it), so writes are
/// not flushed individually.
pub struct SledSpill {
    /// `None` only while being dropped.
    db: Option<sled::Db>,
    /// Set once a write failed: sled cannot be closed cleanly afterwards.
    broken: std::sync::atomic::AtomicBool,
}

/// sled's page cache for spilled objects. sled's default is 1 GiB, which
/// would keep in memory what was spilled to leave memory: objects are read
/// back whole and once, so a small cache loses nothing.
pub const SPILL_CACHE_BYTES: u64 = 32 << 20;

impl SledSpill {
    /// Opens (creating) the database in `dir`.
    pub fn open(dir: &Path) -> io::Result<SledSpill> {
        let config = sled::Config::new().path(dir).mode(sled::Mode::HighThroughput).cache_capacity(SPILL_CACHE_BYTES);
        let db = open_waiting(&config)?;
        // Leftovers from an earlier process are garbage: objects do not
        // outlive their node.
        db.clear().map_err(to_io)?;
        Ok(SledSpill { db: Some(db), broken: Default::default() })
    }

    fn db(&self) -> &sled::Db {
        self.db.as_ref().expect("only None while dropping")
    }

    fn note<T>(&self, r: sled::Result<T>) -> io::Result<T> {
        r.map_err(|e| {
            self.broken.store(true, std::sync::atomic::Ordering::Relaxed);
            to_io(e)
        })
    }
}

impl Drop for SledSpill {
    fn drop(&mut self) {
        // sled flushes its log when the last handle goes, and after a failed
        // write (ENOSPC) that flush waits forever for a write that never
        // completes. Spilled objects are garbage once the store goes (the
        // next open clears them), so a broken database is abandoned: its
        // threads and memory stay until the process exits, rather than the
        // process never exiting.
        if let Some(db) = self.db.take()
            && self.broken.load(std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!("abandoning the spill database after a write failure");
            std::mem::forget(db);
        }
    }
}

/// How long opening a database waits for a previous owner's lock: a node
/// restarted right after a crash may find the dead process's lock not yet
/// released by the kernel.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens a sled database, waiting up to [`LOCK_WAIT`] while another process
/// still holds its lock; any other failure is returned at once.
pub fn open_waiting(config: &sled::Config) -> io::Result<sled::Db> {
    let start = std::time::Instant::now();
    loop {
        match config.open() {
            Ok(db) => return Ok(db),
            // sled reports a held lock as an `Other` error with this text.
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock") && start.elapsed() < LOCK_WAIT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => return Err(to_io(e)),
        }
    }
}

fn key(id: ObjectId) -> [u8; 20] {
    let mut k = [0u8; 20];
    k[..16].copy_from_slice(&id.task.0.to_be_bytes());
    k[16..].copy_from_slice(&id.index.to_be_bytes());
    k
}

fn to_io(e: sled::Error) -> io::Error {
    match e {
        sled::Error::Io(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

impl SpillStore for SledSpill {
    fn write(&self, id: ObjectId, data: &[u8]) -> io::Result<()> {
        self.note(self.db().insert(key(id), data))?;
        Ok(())
    }

    fn read(&self, id: ObjectId) -> io::Result<Option<Vec<u8>>> {
        Ok(self.note(self.db().get(key(id)))?.map(|v| v.to_vec()))
    }

    fn delete(&self, id: ObjectId) -> io::Result<()> {
        self.note(self.db().remove(key(id)))?;
        Ok(())
    }

    fn disk_usage(&self) -> u64 {
        self.db().size_on_disk().unwrap_or(0)
    }
}
