//! Where spilled objects go.

use std::fs::TryLockError;
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
///
/// The database is opened on the first write, not with the node: most
/// nodes never spill, and an open sled database is eight threads (its log
/// flusher and I/O pool, waking on their timers for the process's life),
/// files on disk, and ~1 MiB of the process's memory. What opening it
/// checked at start still is: the directory is taken with a lock file, so a
/// second process given the same directory is refused when it starts, not
/// at its first spill; and what a previous process left there is removed.
pub struct SledSpill {
    config: sled::Config,
    /// Set by the first write.
    db: std::sync::OnceLock<sled::Db>,
    /// Serializes the first open.
    opening: std::sync::Mutex<()>,
    /// Held for the store's life: the directory is this process's.
    _lock: std::fs::File,
    /// Set once a write failed: sled cannot be closed cleanly afterwards.
    broken: std::sync::atomic::AtomicBool,
}

/// sled's page cache for spilled objects. sled's default is 1 GiB, which
/// would keep in memory what was spilled to leave memory: objects are read
/// back whole and once, so a small cache loses nothing.
pub const SPILL_CACHE_BYTES: u64 = 32 << 20;

/// The lock file a spill directory is taken with.
pub const LOCK_FILE: &str = "wray-spill.lock";

impl SledSpill {
    /// Takes `dir` (creating it) for this process's spilled objects,
    /// waiting up to [`LOCK_WAIT`] while another process holds it. The
    /// database inside is opened on the first write.
    pub fn open(dir: &Path) -> io::Result<SledSpill> {
        SledSpill::open_waiting_for(dir, LOCK_WAIT)
    }

    fn open_waiting_for(dir: &Path, wait: std::time::Duration) -> io::Result<SledSpill> {
        let lock = take(dir, wait)?;
        // Leftovers from an earlier process are garbage (objects do not
        // outlive their node), and are removed now rather than at a first
        // spill that may never come: sled's files, by the names sled 0.34
        // gives them, in a directory this process now holds.
        remove_sled_files(dir)?;
        let config = sled::Config::new().path(dir).mode(sled::Mode::HighThroughput).cache_capacity(SPILL_CACHE_BYTES);
        Ok(SledSpill {
            config,
            db: std::sync::OnceLock::new(),
            opening: Default::default(),
            _lock: lock,
            broken: Default::default(),
        })
    }

    /// The database if a write opened it.
    fn opened(&self) -> Option<&sled::Db> {
        self.db.get()
    }

    /// The database, opened now if this is the first write.
    fn db(&self) -> io::Result<&sled::Db> {
        if let Some(db) = self.opened() {
            return Ok(db);
        }
        let _opening = self.opening.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(db) = self.opened() {
            return Ok(db);
        }
        let db = open_waiting(&self.config)?;
        Ok(self.db.get_or_init(|| db))
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
        // next open removes them), so a broken database is abandoned: its
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

/// Creates `dir` if need be and takes its lock file, waiting up to `wait`
/// while another process holds it.
///
/// [`remove_abandoned`] may remove the directory of a store that has
/// opened its lock file but not yet locked it: the lock taken is then on a
/// file no longer in the directory (or a directory no longer there). So
/// once locked, the file at the path must still be the one locked;
/// otherwise the directory is made and taken again, up to
/// [`TAKE_ATTEMPTS`] times.
fn take(dir: &Path, wait: std::time::Duration) -> io::Result<std::fs::File> {
    use std::os::unix::fs::MetadataExt;
    for _ in 0..TAKE_ATTEMPTS {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(LOCK_FILE);
        let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
        match retry_while_held(wait, || lock.try_lock(), |e| matches!(e, TryLockError::WouldBlock)) {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let why = format!("another process is using {} as its spill directory", dir.display());
                return Err(io::Error::new(io::ErrorKind::WouldBlock, why));
            }
            Err(TryLockError::Error(e)) => return Err(e),
        }
        let (held, there) = (lock.metadata()?, std::fs::metadata(&path));
        if there.is_ok_and(|there| (there.dev(), there.ino()) == (held.dev(), held.ino())) {
            return Ok(lock);
        }
    }
    let why = format!("{} was removed each time it was taken (by another process's clean-up)", dir.display());
    Err(io::Error::other(why))
}

/// How many times [`take`] makes and locks a spill directory that another
/// process's [`remove_abandoned`] keeps removing under it.
const TAKE_ATTEMPTS: usize = 3;

/// Removes the directories in `parent` whose names start with `prefix`
/// that hold a spill lock file no process holds any more, with everything
/// in them; returns how many it removed.
///
/// A process killed outright (SIGKILL, the OOM killer) cannot remove the
/// spill directory it made for itself, and what it spilled — gigabytes,
/// perhaps — would stay in the temporary directory for good. Whether a
/// directory is abandoned is read from its lock: a store holds its lock
/// file for its life ([`SledSpill::open`]) and the kernel lets go of it when
/// the process dies, however it dies. The lock is held while the directory
/// is removed; a store that opened the lock file just before finds out
/// when it has locked it ([`SledSpill::open`] checks that the file it
/// locked is still the one at the path, and takes the directory again). A
/// directory without a lock file, or whose lock file cannot be opened (the
/// directory of another user), is left alone. Best effort: what cannot be
/// read or removed is skipped.
pub fn remove_abandoned(parent: &Path, prefix: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(parent) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        // Not through a symlink: only directories that are there.
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if !is_dir || !entry.file_name().to_string_lossy().starts_with(prefix) {
            continue;
        }
        let dir = entry.path();
        let Ok(lock) = std::fs::OpenOptions::new().write(true).open(dir.join(LOCK_FILE)) else { continue };
        if lock.try_lock().is_ok() && std::fs::remove_dir_all(&dir).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// How long opening a database waits for a previous owner's lock: a node
/// restarted right after a crash may find the dead process's lock not yet
/// released by the kernel.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens a sled database, waiting up to [`LOCK_WAIT`] while another process
/// still holds its lock; any other failure is returned at once.
pub fn open_waiting(config: &sled::Config) -> io::Result<sled::Db> {
    // sled reports a held lock as an `Other` error with this text.
    let held = |e: &sled::Error| matches!(e, sled::Error::Io(e) if e.to_string().contains("could not acquire lock"));
    retry_while_held(LOCK_WAIT, || config.open(), held).map_err(to_io)
}

/// Runs `attempt` until it succeeds, fails otherwise than `held`, or has
/// failed `held` for `wait`, looking again every 50 ms; its last result.
fn retry_while_held<T, E>(
    wait: std::time::Duration,
    mut attempt: impl FnMut() -> Result<T, E>,
    held: impl Fn(&E) -> bool,
) -> Result<T, E> {
    let start = std::time::Instant::now();
    loop {
        match attempt() {
            Err(e) if held(&e) && start.elapsed() < wait => std::thread::sleep(std::time::Duration::from_millis(50)),
            done => return done,
        }
    }
}

/// Removes a sled database's files from `dir`: `conf`, `db`, `blobs/` and
/// `snap.*` (sled 0.34's layout, `sled::Config`'s paths); nothing else.
fn remove_sled_files(dir: &Path) -> io::Result<()> {
    let gone = |r: io::Result<()>| match r {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    };
    gone(std::fs::remove_file(dir.join("conf")))?;
    gone(std::fs::remove_file(dir.join("db")))?;
    gone(std::fs::remove_dir_all(dir.join("blobs")))?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with("snap.") {
            gone(std::fs::remove_file(entry.path()))?;
        }
    }
    Ok(())
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
        let db = self.db()?;
        self.note(db.insert(key(id), data))?;
        Ok(())
    }

    // Before the first write nothing is stored: reads find nothing and
    // deletes have nothing to do, without opening the database.

    fn read(&self, id: ObjectId) -> io::Result<Option<Vec<u8>>> {
        let Some(db) = self.opened() else { return Ok(None) };
        Ok(self.note(db.get(key(id)))?.map(|v| v.to_vec()))
    }

    fn delete(&self, id: ObjectId) -> io::Result<()> {
        let Some(db) = self.opened() else { return Ok(()) };
        self.note(db.remove(key(id)))?;
        Ok(())
    }

    fn disk_usage(&self) -> u64 {
        self.opened().map_or(0, |db| db.size_on_disk().unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wray_core::TaskId;

    fn id(i: u32) -> ObjectId {
        ObjectId { task: TaskId(7), index: i }
    }

    /// The names in `dir`, sorted.
    fn names(dir: &Path) -> Vec<std::ffi::OsString> {
        let mut names: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        names
    }

    #[test]
    fn abandoned_spill_directories_are_removed_and_held_ones_kept() {
        let parent = tempfile::tempdir().unwrap();
        let at = |name: &str| parent.path().join(name);
        // A store that is running: its lock is held.
        let held = SledSpill::open(&at("wray-spill-1-0")).unwrap();
        held.write(id(1), b"in use").unwrap();
        // What a killed process left: its lock file, free, and what it spilled.
        std::fs::create_dir_all(at("wray-spill-2-0/blobs")).unwrap();
        std::fs::write(at("wray-spill-2-0").join(LOCK_FILE), b"").unwrap();
        std::fs::write(at("wray-spill-2-0/db"), vec![7u8; 4096]).unwrap();
        // Not a spill store's: no lock file, another name, a plain file.
        std::fs::create_dir_all(at("wray-spill-3-0")).unwrap();
        std::fs::create_dir_all(at("other")).unwrap();
        std::fs::write(at("other").join(LOCK_FILE), b"").unwrap();
        std::fs::write(at("wray-spill-file"), b"").unwrap();

        assert_eq!(remove_abandoned(parent.path(), "wray-spill-"), 1);
        let left = names(parent.path());
        assert_eq!(left, ["other", "wray-spill-1-0", "wray-spill-3-0", "wray-spill-file"]);
        assert_eq!(held.read(id(1)).unwrap().as_deref(), Some(&b"in use"[..]), "the held store is untouched");
        drop(held);
        // Once its process lets go, the first store's directory is garbage too.
        assert_eq!(remove_abandoned(parent.path(), "wray-spill-"), 1);
        assert!(!at("wray-spill-1-0").exists());
        assert_eq!(remove_abandoned(&at("not-there"), "wray-spill-"), 0);
    }

    #[test]
    fn the_database_is_made_by_the_first_write() {
        let dir = tempfile::tempdir().unwrap();
        let spill = SledSpill::open(dir.path()).unwrap();
        assert_eq!(spill.read(id(1)).unwrap(), None);
        spill.delete(id(1)).unwrap();
        assert_eq!(spill.disk_usage(), 0);
        assert_eq!(names(dir.path()), [LOCK_FILE], "nothing but the lock before a write");
        spill.write(id(1), b"spilled").unwrap();
        assert_eq!(spill.read(id(1)).unwrap().as_deref(), Some(&b"spilled"[..]));
        assert!(names(dir.path()).len() > 1, "sled's files after it");
        spill.delete(id(1)).unwrap();
        assert_eq!(spill.read(id(1)).unwrap(), None);
    }

    #[test]
    fn leftovers_of_an_earlier_process_are_removed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mine.txt"), b"not sled's").unwrap();
        {
            let spill = SledSpill::open(dir.path()).unwrap();
            // Large enough for sled to keep it as a blob file of its own.
            spill.write(id(1), &vec![7u8; 1 << 20]).unwrap();
            spill.write(id(3), b"old").unwrap();
        }
        assert!(dir.path().join("blobs").read_dir().unwrap().next().is_some());
        let spill = SledSpill::open(dir.path()).unwrap();
        assert_eq!(names(dir.path()), ["mine.txt", LOCK_FILE], "sled's files gone at open, nothing else");
        spill.write(id(2), b"new").unwrap();
        assert_eq!(spill.read(id(1)).unwrap(), None);
        assert_eq!(spill.read(id(3)).unwrap(), None);
        assert_eq!(spill.read(id(2)).unwrap().as_deref(), Some(&b"new"[..]));
    }

    #[test]
    fn a_directory_in_use_is_refused_at_open_and_free_once_released() {
        let dir = tempfile::tempdir().unwrap();
        let first = SledSpill::open(dir.path()).unwrap();
        let wait = std::time::Duration::from_millis(120);
        let started = std::time::Instant::now();
        let err = SledSpill::open_waiting_for(dir.path(), wait).err().expect("the directory is taken");
        assert!(started.elapsed() >= wait, "waited for the holder first");
        assert!(err.to_string().contains("another process is using"), "{err}");
        assert!(err.to_string().contains(&dir.path().display().to_string()), "{err}");
        drop(first);
        SledSpill::open_waiting_for(dir.path(), wait).unwrap();
    }
}
