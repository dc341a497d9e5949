use crate::policy::{self, Resident};
use crate::spill::SpillStore;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;
use wray_core::{Error, JobId, ObjectId};

/// An object's contents: its bytes and the objects nested inside it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Object {
    /// The encoded value.
    pub data: Bytes,
    /// Objects the value refers to.
    pub refs: Vec<ObjectId>,
}

enum State {
    /// The producing task has not finished.
    Pending,
    /// In memory.
    Memory(Bytes),
    /// In memory and being written to the spill store (outside the lock);
    /// readers still get the bytes from memory.
    Spilling(Bytes),
    /// On the spill store; this many bytes.
    Spilled(usize),
    /// The producing task failed; readers get this error.
    Failed(Error),
    /// Ready, but its bytes are in another node's store: its owner fetches
    /// them from there when it needs them.
    Elsewhere(Holder),
}

/// Where an object that is ready but not in this store is: the node
/// holding it, where that node listens (when known: a worker other nodes
/// reach directly), and its size. The store only keeps this; fetching is
/// the node's business.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// The node's id.
    pub node: String,
    /// Where it listens (`ip:port`); empty if only the head reaches it.
    pub addr: String,
    /// The object's size in bytes.
    pub size: usize,
    /// What the holder files it under (its owner's job).
    pub key: String,
}

struct Entry {
    job: JobId,
    state: State,
    refs: u32,
    /// How many of `nested` (its last ones) are items of a generator task
    /// whose output this is ([`ObjectStore::put_item`]): they are pinned
    /// by the output as the value's own refs are, but readers of the
    /// output do not see them among its refs.
    items: u32,
    /// How many of those items readers have taken (one past the highest
    /// index handed to a reader).
    taken: u32,
    /// A generator's bound on items yielded but not taken
    /// ([`ObjectStore::set_item_window`]); 0: none.
    window: u32,
    /// Its generator's items are read nowhere any more
    /// ([`ObjectStore::stop_items`]).
    unread: bool,
    nested: Vec<ObjectId>,
    last_access: u64,
    watchers: Vec<Watcher>,
}

impl Entry {
    /// The refs of the object's value, without a generator's items.
    fn value_refs(&self) -> &[ObjectId] {
        &self.nested[..self.nested.len() - self.items as usize]
    }

    /// Whether the generator whose output this is has its window of items
    /// waiting unread: it should wait for a reader before the next.
    fn ahead(&self) -> bool {
        self.window > 0 && self.items.saturating_sub(self.taken) >= self.window
    }

    /// Wakes the watchers `pick` chooses, keeping the others.
    fn wake(&mut self, pick: fn(&Watcher) -> bool) {
        for w in std::mem::take(&mut self.watchers) {
            if pick(&w) { w.fire() } else { self.watchers.push(w) }
        }
    }

    /// Records that a reader was handed item `index`, and wakes a
    /// generator waiting for one.
    fn took(&mut self, index: u32) {
        if index < self.taken {
            return;
        }
        let was_ahead = self.ahead();
        self.taken = index + 1;
        if was_ahead && !self.ahead() {
            self.wake(|w| matches!(w, Watcher::Reader(_)));
        }
    }
}

/// What became of an item handed to [`ObjectStore::put_item`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemPut {
    /// Stored as the output's next item.
    Kept,
    /// Stored as the output's next item, which makes the generator's window
    /// of unread items full ([`ObjectStore::set_item_window`]): it should
    /// [wait for a reader](ObjectStore::wait_for_reader) before the next.
    Ahead,
    /// The output already has an item at that index (a retried generator
    /// yields again what its first attempt did): dropped, the first stays.
    Repeated,
    /// Nobody can read it: the output was freed (every holder of the
    /// generator let it go) or has settled. Dropped; the generator may as
    /// well stop.
    Unread,
}

/// What [`ObjectStore::next_item`] finds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NextItem {
    /// The item asked for.
    Item(ObjectId),
    /// The generator ended with fewer items; `failed` if its output holds
    /// an error (the task failed after the items it yielded).
    Ended {
        /// Items it yielded.
        items: u32,
        /// Whether its output is an error.
        failed: bool,
    },
}

/// What [`ObjectStore::take_items_now`] hands a reader of a generator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TakenItems {
    /// Items from the index asked for, in order (at least one), each with
    /// a reference held for the reader and its bytes when small and in
    /// memory.
    Items(Vec<(ObjectId, Option<Bytes>)>),
    /// As [`NextItem::Ended`]: the generator ended with fewer items.
    Ended {
        /// Items it yielded.
        items: u32,
        /// Whether its output is an error.
        failed: bool,
    },
}

/// Who is told when an object stops being pending (or, held elsewhere,
/// stops being held there), or is freed.
enum Watcher {
    /// A reader waiting in `get`, `wait` or for a task's arguments.
    Wake(Arc<Notify>),
    /// A task parked until this argument is settled
    /// ([`ObjectStore::on_settled`]).
    Call(Box<dyn FnOnce() + Send>),
    /// A reader of a generator's items ([`ObjectStore::next_item`]):
    /// woken by the next item as well as by settling or freeing.
    Item(Arc<Notify>),
    /// A generator waiting for its reader to take an item
    /// ([`ObjectStore::wait_for_reader`]): woken by a take as well as by
    /// settling or freeing.
    Reader(Arc<Notify>),
    /// Called when the object is freed, and only then
    /// ([`ObjectStore::on_freed`]).
    Freed(Box<dyn FnOnce() + Send>),
}

impl Watcher {
    fn fire(self) {
        match self {
            Watcher::Wake(n) | Watcher::Item(n) | Watcher::Reader(n) => n.notify_one(),
            Watcher::Call(f) | Watcher::Freed(f) => f(),
        }
    }
}

/// The map's hasher. Object ids are already well mixed (`wray_core::ids`:
/// a 128-bit finalizer over parent and counter), so SipHash's strength buys
/// nothing here and cost a tenth of the store's time in a run of async actor
/// calls, where each call looks its result up four times (created,
/// completed, read, released). foldhash is seeded per map.
type Ids = foldhash::fast::RandomState;

/// Slots of the object map below which it is never shrunk: small enough to
/// stay in a core's cache, large enough that an ordinary job's ebb and flow
/// never rebuilds it.
const MIN_SHRUNK_CAPACITY: usize = 4096;

#[derive(Default)]
struct Inner {
    objects: HashMap<ObjectId, Entry, Ids>,
    in_memory: usize,
    spilled_bytes: usize,
    spilled_objects: usize,
    spills: u64,
    restores: u64,
    /// Logical clock for least-recently-used ordering.
    tick: u64,
    /// Removals since the map last was at least an eighth full
    /// (`forget`, which shrinks it after enough of them).
    sparse_removals: usize,
    /// Times `note_removal` rebuilt the map smaller. The map's
    /// `capacity()` cannot tell: it is what it holds plus what it can take
    /// before growing, and a removal that leaves a tombstone (as some do,
    /// depending on the per-map hash seed) takes nothing back.
    shrinks: u64,
    /// Why the last spill failed, while spilling keeps failing (a full or
    /// broken disk): logged once, not once per object.
    spill_failure: Option<String>,
    /// The buffer `ObjectStore::registered` is swapped with (empty).
    registered: Vec<(JobId, ObjectId)>,
}

impl Inner {
    /// Keeps the map's size near what it holds (called as each object is
    /// removed).
    fn note_removal(&mut self) {
        // A map that a burst grew (thousands of results pending at once)
        // keeps its size when they are freed, and every later lookup lands
        // somewhere in megabytes of mostly empty slots: `wray
        // microbenchmark`'s generator row, run after workloads that leave
        // up to 10,000 results pending, read 1.04–1.08 M items/s, and
        // 1.21–1.31 M with the map shrunk (alternating runs). Shrunk to
        // twice what it holds once it has stayed under an eighth full for
        // a quarter of its size in removals: the rebuild is paid for by
        // that many operations, and a job whose bursts come again and
        // again (rounds of 10,000 actor calls) is not rebuilt every round,
        // since each round's removals start from a full map.
        let capacity = self.objects.capacity();
        if capacity > MIN_SHRUNK_CAPACITY && self.objects.len() < capacity / 8 {
            self.sparse_removals += 1;
            if self.sparse_removals >= capacity / 4 {
                let keep = self.objects.len() * 2;
                self.objects.shrink_to(keep);
                self.sparse_removals = 0;
                self.shrinks += 1;
            }
        } else {
            self.sparse_removals = 0;
        }
    }
}

/// Counters describing the store, for `status` and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Live objects (pending ones included).
    pub objects: usize,
    /// Bytes of objects held in memory.
    pub memory_bytes: usize,
    /// Bytes of objects currently spilled.
    pub spilled_bytes: usize,
    /// Objects currently spilled.
    pub spilled_objects: usize,
    /// Objects ever written to the spill store.
    pub spills: u64,
    /// Reads served from the spill store.
    pub restores: u64,
    /// The memory budget.
    pub budget: usize,
}

/// Where an object is, as [`ObjectStore::largest`] lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ObjectState {
    /// Its task has not finished.
    Pending,
    /// In memory.
    InMemory,
    /// On the spill store.
    Spilled,
    /// Its task failed: it holds the error.
    Failed,
    /// Ready in another node's store.
    Elsewhere,
}

/// One object, as [`ObjectStore::largest`] lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its id.
    pub id: ObjectId,
    /// Its job.
    pub job: JobId,
    /// Bytes (0 while pending or failed).
    pub size: usize,
    /// References held.
    pub refs: u32,
    /// Where it is.
    pub state: ObjectState,
}

/// The object store of one node. All methods are safe to call concurrently;
/// none blocks on another object's producer except [`ObjectStore::get`],
/// which is cancellation-safe (dropping the future just stops waiting).
pub struct ObjectStore {
    inner: Mutex<Inner>,
    /// Pending results registered (`create_pending`) but not yet in the
    /// map: moved into it by whoever takes `inner` next, before anything
    /// else ([`ObjectStore::lock`]). A submitter registers each output here,
    /// under a lock held for one push, instead of under `inner` — which an
    /// actor settling a batch of results holds for microseconds, long
    /// enough that the submitter slept on it and the actor's unlock paid a
    /// futex wake (`perf` of pipelined actor calls: `create_pending` 12 %
    /// of the samples, 62 % of it waiting for the lock; `complete_all` 11
    /// %, 62 % of it the wake).
    registered: Mutex<Vec<(JobId, ObjectId)>>,
    /// Whether `registered` may hold any: read before taking its lock, so
    /// that the common lock of `inner` costs no second lock. Relaxed is
    /// enough: an id reaches anyone who could look it up through something
    /// that synchronizes (a lock, a channel), after its registration.
    any_registered: AtomicBool,
    budget: usize,
    spill: Box<dyn SpillStore>,
}

fn lost(id: ObjectId) -> Error {
    Error::ObjectLost(format!("object {id} does not exist (freed, or never created in this job)"))
}

/// What a read of a ready object finds ([`ObjectStore::find`]).
#[derive(Debug)]
pub enum Found {
    /// Its contents, in this store.
    Here(Object),
    /// Where it is held: its bytes are in another node's store.
    Elsewhere(Holder),
}

impl Found {
    /// The contents; an object held elsewhere is an error for a reader that
    /// cannot fetch it.
    fn here(self, id: ObjectId) -> Result<Object, Error> {
        match self {
            Found::Here(o) => Ok(o),
            Found::Elsewhere(h) => {
                Err(Error::ObjectLost(format!("object {id} is held on node {}, not in this store", h.node)))
            }
        }
    }
}

/// A completed object waiting for the spills that make room for it
/// ([`ObjectStore::complete`]).
struct MakingRoom {
    id: ObjectId,
    object: Object,
    size: usize,
    spills: Vec<(ObjectId, Bytes)>,
}

impl ObjectStore {
    /// A store keeping at most `budget` bytes of objects in memory and
    /// spilling the rest to `spill`.
    pub fn new(budget: usize, spill: Box<dyn SpillStore>) -> ObjectStore {
        ObjectStore {
            inner: Mutex::new(Inner::default()),
            registered: Mutex::new(Vec::new()),
            any_registered: AtomicBool::new(false),
            budget,
            spill,
        }
    }

    /// The map, with every result registered so far in it.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock is a bug elsewhere; the map itself
        // stays consistent (every mutation is a single step), so keep going.
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if self.any_registered.load(Ordering::Relaxed) {
            // Swapped with the map's spare buffer: neither side allocates
            // once both have grown to a batch.
            let mut registered = std::mem::take(&mut inner.registered);
            {
                let mut r = self.registered.lock().unwrap_or_else(|p| p.into_inner());
                self.any_registered.store(false, Ordering::Relaxed);
                std::mem::swap(&mut *r, &mut registered);
            }
            let tick = inner.tick;
            for (job, id) in registered.drain(..) {
                inner.objects.entry(id).or_insert(Entry {
                    job,
                    state: State::Pending,
                    refs: 1,
                    items: 0,
                    taken: 0,
                    window: 0,
                    unread: false,
                    nested: Vec::new(),
                    last_access: tick,
                    watchers: Vec::new(),
                });
            }
            inner.registered = registered;
        }
        inner
    }

    /// Registers the future result of a task, with one reference for the
    /// submitter. A no-op if the object already exists (a retried task).
    /// It enters the map when the map is next locked, before anything
    /// there can look for it.
    pub fn create_pending(&self, job: JobId, id: ObjectId) {
        let mut registered = self.registered.lock().unwrap_or_else(|p| p.into_inner());
        registered.push((job, id));
        self.any_registered.store(true, Ordering::Relaxed);
    }

    /// Stores a ready object with one reference for the caller. Nested refs
    /// must be live objects of the same job.
    pub fn put(&self, job: JobId, id: ObjectId, object: Object) -> Result<(), Error> {
        let mut inner = self.lock();
        let spills = self.insert(&mut inner, job, id, object)?;
        drop(inner);
        match self.write_spills(spills) {
            Some(full) => Err(self.refuse(id, full)),
            None => Ok(()),
        }
    }

    /// Inserts a ready object with one reference, under the caller's hold
    /// of the lock, and returns the spills its arrival made due (to be
    /// written outside the lock: [`ObjectStore::write_spills`]).
    fn insert(
        &self,
        inner: &mut Inner,
        job: JobId,
        id: ObjectId,
        object: Object,
    ) -> Result<Vec<(ObjectId, Bytes)>, Error> {
        if inner.objects.contains_key(&id) {
            return Err(Error::InvalidArgument(format!("object {id} already exists")));
        }
        pin_nested(inner, job, &object.refs)?;
        inner.tick += 1;
        let size = object.data.len();
        let tick = inner.tick;
        inner.objects.insert(
            id,
            Entry {
                job,
                state: State::Memory(object.data),
                refs: 1,
                items: 0,
                taken: 0,
                window: 0,
                unread: false,
                nested: object.refs,
                last_access: tick,
                watchers: Vec::new(),
            },
        );
        inner.in_memory += size;
        Ok(self.spill_over_budget(inner))
    }

    /// Takes back an object just inserted whose spills failed with `full`,
    /// and returns `full`: the new object is refused (its bytes are the
    /// caller's to drop) rather than kept — over budget with a disk that
    /// takes nothing, every further object would grow memory without
    /// bound.
    fn refuse(&self, id: ObjectId, full: Error) -> Error {
        let mut inner = self.lock();
        let mut nested = Vec::new();
        if let Some(e) = inner.objects.remove(&id) {
            self.forget(&mut inner, id, e, &mut nested);
        }
        drop(inner);
        for n in nested {
            self.release(n);
        }
        full
    }

    /// Settles a pending object with its task's outcome and wakes its
    /// readers. If nobody holds the object any more, the outcome is dropped.
    pub fn complete(&self, id: ObjectId, outcome: Result<Object, Error>) {
        let mut inner = self.lock();
        if let Some(making_room) = self.complete_locked(&mut inner, id, outcome) {
            drop(inner);
            self.complete_making_room(making_room);
        }
    }

    /// Settles each of `results` as [`Self::complete`] does, under one hold
    /// of the lock while they fit in memory: what an actor's calls run back
    /// to back produced.
    pub fn complete_all(&self, results: impl IntoIterator<Item = (ObjectId, Result<Object, Error>)>) {
        let mut results = results.into_iter();
        let mut inner = self.lock();
        while let Some((id, outcome)) = results.next() {
            if let Some(making_room) = self.complete_locked(&mut inner, id, outcome) {
                drop(inner);
                self.complete_making_room(making_room);
                // The rest one by one: spilling is under way.
                for (id, outcome) in results {
                    self.complete(id, outcome);
                }
                return;
            }
        }
    }

    /// `complete` under the caller's hold of the lock, as far as it can go
    /// there: `None` once settled (or not wanted), or the object with the
    /// spills that must be written before it settles.
    fn complete_locked(&self, inner: &mut Inner, id: ObjectId, outcome: Result<Object, Error>) -> Option<MakingRoom> {
        let entry = inner.objects.get(&id)?;
        if !matches!(entry.state, State::Pending) {
            return None;
        }
        let job = entry.job;
        let object = match outcome.and_then(|o| pin_nested(inner, job, &o.refs).map(|()| o)) {
            Ok(object) => object,
            Err(e) => {
                self.settle(inner, id, State::Failed(e), Vec::new());
                return None;
            }
        };
        // The object stays pending (invisible to readers) until the store
        // knows it can keep it: make room first, then settle, so that every
        // reader sees the same outcome. With room to spare (the common
        // case) it settles under this same lock.
        let size = object.data.len();
        inner.in_memory += size;
        let spills = self.spill_over_budget(inner);
        if spills.is_empty() {
            self.settle(inner, id, State::Memory(object.data), object.refs);
            return None;
        }
        Some(MakingRoom { id, object, size, spills })
    }

    /// The rest of `complete` for an object that needed room: the spills
    /// written outside the lock, then the object settled (or refused).
    fn complete_making_room(&self, MakingRoom { id, object, size, spills }: MakingRoom) {
        let full = self.write_spills(spills);
        let mut inner = self.lock();
        let still_wanted = inner.objects.get(&id).is_some_and(|e| matches!(e.state, State::Pending));
        let unpin = match (still_wanted, full) {
            (true, None) => {
                self.settle(&mut inner, id, State::Memory(object.data), object.refs);
                Vec::new()
            }
            (true, Some(full)) => {
                // As in `put`: the result is replaced by the error rather
                // than kept by a store that would grow without bound.
                inner.in_memory -= size;
                self.settle(&mut inner, id, State::Failed(full), Vec::new());
                object.refs
            }
            // Freed (or cancelled) meanwhile.
            (false, _) => {
                inner.in_memory -= size;
                object.refs
            }
        };
        let spills = self.spill_over_budget(&mut inner);
        drop(inner);
        // A failure here leaves the objects in memory; the next object
        // brought to the store is the one refused.
        self.write_spills(spills);
        for n in unpin {
            self.release(n);
        }
    }

    /// Gives a pending object its final state and wakes its readers.
    fn settle(&self, inner: &mut Inner, id: ObjectId, state: State, nested: Vec<ObjectId>) {
        inner.tick += 1;
        let tick = inner.tick;
        let e = inner.objects.get_mut(&id).expect("the caller checked it is pending");
        e.state = state;
        // A generator's items stay pinned after the value's refs, whatever
        // the outcome: a failed generator's items are still read.
        let items = e.nested.split_off(e.nested.len() - e.items as usize);
        e.nested = nested;
        e.nested.extend(items);
        e.last_access = tick;
        e.wake(|w| !matches!(w, Watcher::Freed(_)));
    }

    /// Settles a pending object as ready on another node (`holder`): the
    /// bytes stay there, readers here are woken and find
    /// [`ObjectStore::holder`] set. It counts as settled for `wait`.
    pub fn complete_elsewhere(&self, id: ObjectId, holder: Holder) {
        let mut inner = self.lock();
        if inner.objects.get(&id).is_some_and(|e| matches!(e.state, State::Pending)) {
            self.settle(&mut inner, id, State::Elsewhere(holder), Vec::new());
        }
    }

    /// Where the object is held, if it is ready on another node.
    pub fn holder(&self, id: ObjectId) -> Option<Holder> {
        match &self.lock().objects.get(&id)?.state {
            State::Elsewhere(h) => Some(h.clone()),
            _ => None,
        }
    }

    /// Those of `ids` held on other nodes, under one lock.
    pub fn held_elsewhere(&self, ids: &[ObjectId]) -> Vec<ObjectId> {
        let inner = self.lock();
        ids.iter()
            .copied()
            .filter(|id| inner.objects.get(id).is_some_and(|e| matches!(e.state, State::Elsewhere(_))))
            .collect()
    }

    /// Brings the bytes of an object held elsewhere into this store (they
    /// were fetched from its holder): it becomes an ordinary object, kept
    /// or spilled like any other. A no-op unless it is still held
    /// elsewhere (freed meanwhile, or filled by another reader).
    pub fn fill(&self, id: ObjectId, object: Object) {
        if !self.reopen(id) {
            return;
        }
        self.complete(id, Ok(object));
    }

    /// Makes an object held elsewhere pending again: its holder is gone
    /// and the task that made it runs again (lineage reconstruction).
    /// Readers wait for it as for any pending object. Returns whether it
    /// was held elsewhere.
    pub fn reopen(&self, id: ObjectId) -> bool {
        let mut inner = self.lock();
        match inner.objects.get_mut(&id) {
            Some(e) if matches!(e.state, State::Elsewhere(_)) => {
                e.state = State::Pending;
                // Only `watch_elsewhere` watches an object held elsewhere.
                e.wake(|w| !matches!(w, Watcher::Freed(_)));
                true
            }
            _ => false,
        }
    }

    /// While the object is held elsewhere: `true`, after arranging for
    /// `notify` to be notified when that ends (it is filled, reopened or
    /// freed). Otherwise `false`.
    pub fn watch_elsewhere(&self, id: ObjectId, notify: &Arc<Notify>) -> bool {
        let mut inner = self.lock();
        match inner.objects.get_mut(&id) {
            Some(e) if matches!(e.state, State::Elsewhere(_)) => {
                e.watchers.push(Watcher::Wake(notify.clone()));
                true
            }
            _ => false,
        }
    }

    /// Adds a reference to an object of `job`.
    pub fn add_ref(&self, job: JobId, id: ObjectId) -> Result<(), Error> {
        let mut inner = self.lock();
        match inner.objects.get_mut(&id) {
            Some(e) if e.job == job => {
                e.refs += 1;
                Ok(())
            }
            _ => Err(lost(id)),
        }
    }

    /// Drops a reference; the last one frees the object (and releases the
    /// objects nested in it).
    pub fn release(&self, id: ObjectId) {
        self.release_all(std::iter::once(id));
    }

    /// Drops a reference to each of `ids` (as [`Self::release`] does)
    /// under one hold of the lock: what a guest dropped in a row.
    pub fn release_all(&self, ids: impl IntoIterator<Item = ObjectId>) {
        let mut inner = self.lock();
        // Objects this frees that nest others (rare: the vector allocates
        // only then, and a release is one of every `get`'s calls).
        let mut work = Vec::new();
        for id in ids {
            let mut next = Some(id);
            while let Some(id) = next.take().or_else(|| work.pop()) {
                let Some(e) = inner.objects.get_mut(&id) else {
                    continue;
                };
                e.refs = e.refs.saturating_sub(1);
                if e.refs > 0 {
                    continue;
                }
                let e = inner.objects.remove(&id).expect("present");
                self.forget(&mut inner, id, e, &mut work);
            }
        }
    }

    fn forget(&self, inner: &mut Inner, id: ObjectId, e: Entry, work: &mut Vec<ObjectId>) {
        inner.note_removal();
        match e.state {
            State::Memory(b) | State::Spilling(b) => inner.in_memory -= b.len(),
            State::Spilled(n) => {
                inner.spilled_bytes -= n;
                inner.spilled_objects -= 1;
                if let Err(err) = self.spill.delete(id) {
                    tracing::warn!("cannot delete spilled object {id}: {err}");
                }
            }
            State::Pending | State::Failed(_) | State::Elsewhere(_) => {}
        }
        for w in e.watchers {
            w.fire();
        }
        work.extend(e.nested);
    }

    /// Frees every object of `job` (the job ended).
    pub fn free_job(&self, job: JobId) {
        let mut inner = self.lock();
        let ids: Vec<ObjectId> = inner.objects.iter().filter(|(_, e)| e.job == job).map(|(id, _)| *id).collect();
        let mut ignored = Vec::new();
        for id in ids {
            if let Some(e) = inner.objects.remove(&id) {
                self.forget(&mut inner, id, e, &mut ignored);
            }
        }
    }

    /// Whether the object is settled (ready or failed): `Some(true)`;
    /// pending: `Some(false)` after arranging for `notify` to be notified
    /// when it settles; unknown: `None`.
    pub fn watch(&self, id: ObjectId, notify: &Arc<Notify>) -> Option<bool> {
        let mut inner = self.lock();
        let e = inner.objects.get_mut(&id)?;
        if let State::Pending = e.state {
            e.watchers.push(Watcher::Wake(notify.clone()));
            Some(false)
        } else {
            Some(true)
        }
    }

    /// Arranges for `then` to be called when the object is freed — its last
    /// reference released, or its job's objects freed — and returns
    /// `true`; for an unknown object, drops `then` and returns `false`.
    /// Settling wakes other watchers, never this one.
    ///
    /// `then` is called with the store's lock held, on the thread that
    /// frees the object: it must not use the store, and should do no more
    /// than hand work on (the node collects an actor whose last handle
    /// went, `local/actor.rs`).
    pub fn on_freed(&self, id: ObjectId, then: Box<dyn FnOnce() + Send>) -> bool {
        let mut inner = self.lock();
        match inner.objects.get_mut(&id) {
            Some(e) => {
                e.watchers.push(Watcher::Freed(then));
                true
            }
            None => false,
        }
    }

    /// Adds a reference to an object whatever its job, and returns the
    /// job; `None` for an unknown object. What a node does to an actor's
    /// handle object when it lends a copy to another node (the reference is
    /// released when the copy is given back): the message carrying it does
    /// not know the job.
    pub fn add_ref_any(&self, id: ObjectId) -> Option<JobId> {
        let mut inner = self.lock();
        let e = inner.objects.get_mut(&id)?;
        // Once per copy lent: saturating, it never wraps back to a count
        // that a release could take to zero.
        e.refs = e.refs.saturating_add(1);
        Some(e.job)
    }

    /// While the object is pending: arranges for `then` to be called once
    /// it is settled (ready, failed, or held elsewhere) or freed, and
    /// returns `true`. Otherwise (settled, or unknown) drops `then` and
    /// returns `false`.
    ///
    /// `then` is called on the thread that settles or frees the object,
    /// with the store's lock held: it must not use the store, and should
    /// do no more than hand work on (the node starts the task that waited
    /// for the object, `local/task.rs`).
    pub fn on_settled(&self, id: ObjectId, then: Box<dyn FnOnce() + Send>) -> bool {
        let mut inner = self.lock();
        match inner.objects.get_mut(&id) {
            Some(e) if matches!(e.state, State::Pending) => {
                e.watchers.push(Watcher::Call(then));
                true
            }
            _ => false,
        }
    }

    /// Stores `object` as item `index` of the generator task whose output
    /// is `output` (still pending): the output pins it, readers of the
    /// items are woken, and it is freed with the output. Says what became
    /// of it ([`ItemPut`]). Items come in order: one past the next is an
    /// error.
    ///
    /// The item belongs to the output's job, the reader's: a method of an
    /// actor of another job (a detached actor, one found by name) yields
    /// into its caller's job, as its result lands there. With `job`, the
    /// output must be that job's (an item from a peer lands only in the
    /// job its stream serves); a running task's own items pass `None`, as
    /// the node makes their output's id from the task's.
    pub fn put_item(
        &self,
        job: Option<JobId>,
        output: ObjectId,
        index: u32,
        id: ObjectId,
        object: Object,
    ) -> Result<ItemPut, Error> {
        let mut inner = self.lock();
        let job = match inner.objects.get(&output) {
            Some(e) if job.is_none_or(|j| j == e.job) && matches!(e.state, State::Pending) && !e.unread => {
                if index < e.items {
                    return Ok(ItemPut::Repeated);
                }
                if index > e.items {
                    return Err(Error::InvalidArgument(format!(
                        "item {index} of {output} comes after only {} items",
                        e.items
                    )));
                }
                e.job
            }
            _ => return Ok(ItemPut::Unread),
        };
        // Its one reference is the output's, once linked to it below.
        let spills = self.insert(&mut inner, job, id, object)?;
        // With room to spare (the common case) the item is stored and
        // linked under this one lock; otherwise it is linked once the
        // spills it caused are on disk, or refused as `put` refuses.
        if spills.is_empty() {
            return Ok(Self::link_item(&mut inner, output, id));
        }
        drop(inner);
        if let Some(full) = self.write_spills(spills) {
            return Err(self.refuse(id, full));
        }
        let mut inner = self.lock();
        let linkable = inner
            .objects
            .get(&output)
            .is_some_and(|e| matches!(e.state, State::Pending) && !e.unread && e.items == index);
        if linkable {
            return Ok(Self::link_item(&mut inner, output, id));
        }
        drop(inner);
        // Its output settled or went meanwhile: nobody reads it.
        self.release(id);
        Ok(ItemPut::Unread)
    }

    /// Makes the stored item `id` the next item of the pending `output`,
    /// which takes over its reference, and wakes the items' readers —
    /// only them: a `get` or `wait` on the output waits for it to settle,
    /// and a parked task for its argument to be ready. `Kept`, or `Ahead`
    /// if that fills the generator's window.
    fn link_item(inner: &mut Inner, output: ObjectId, id: ObjectId) -> ItemPut {
        let e = inner.objects.get_mut(&output).expect("the caller checked it is pending");
        e.nested.push(id);
        e.items += 1;
        e.wake(|w| matches!(w, Watcher::Item(_)));
        if e.ahead() { ItemPut::Ahead } else { ItemPut::Kept }
    }

    /// Bounds how far the generator task whose output is `output` (pending)
    /// runs ahead of its readers: once `window` of its items wait untaken,
    /// `put_item` answers [`ItemPut::Ahead`] and the task should
    /// [wait](Self::wait_for_reader) until a reader takes one (Ray's
    /// `_generator_backpressure_num_objects`). Every reader counts: a
    /// node forwarding the items to their owner is the reader there.
    /// 0: no bound, the default of a pending output — nothing to set, so
    /// the lock is not taken (every task and call passes its window here).
    pub fn set_item_window(&self, output: ObjectId, window: u32) {
        if window == 0 {
            return;
        }
        if let Some(e) = self.lock().objects.get_mut(&output) {
            e.window = window;
        }
    }

    /// Marks the items of the generator whose output is `output` as read
    /// nowhere any more — its owner, on another node, let it go: its next
    /// `put_item` is `Unread`, as if the output had been freed here (where
    /// the node still holds it, to send the call's result back). Only an
    /// output of `job`: a session stops its own calls, no other job's.
    pub fn stop_items(&self, job: JobId, output: ObjectId) {
        if let Some(e) = self.lock().objects.get_mut(&output).filter(|e| e.job == job) {
            e.unread = true;
            e.wake(|w| matches!(w, Watcher::Reader(_)));
        }
    }

    /// Waits until the generator whose output is `output` may yield
    /// again: fewer than its window of items wait unread, or nobody reads
    /// them any more (the output was freed or settled; its next
    /// `put_item` then says so). Cancellation-safe.
    pub async fn wait_for_reader(&self, output: ObjectId) {
        let notify = Arc::new(Notify::new());
        loop {
            {
                let mut inner = self.lock();
                let Some(e) = inner.objects.get_mut(&output) else { return };
                if !matches!(e.state, State::Pending) || e.unread || !e.ahead() {
                    return;
                }
                // A wait dropped with its task (cancelled) left its
                // watcher, which only the entry still holds.
                e.watchers.retain(|w| !matches!(w, Watcher::Reader(n) if Arc::strong_count(n) == 1));
                e.watchers.push(Watcher::Reader(notify.clone()));
            }
            notify.notified().await;
        }
    }

    /// Item `index` of the generator task whose output is `output`, once
    /// the task has yielded it, or how the generator ended if it ended
    /// with fewer. Cancellation-safe. An unknown output is an error.
    pub async fn next_item(&self, output: ObjectId, index: u32) -> Result<NextItem, Error> {
        let notify = Arc::new(Notify::new());
        loop {
            {
                let mut inner = self.lock();
                let Some(e) = inner.objects.get_mut(&output) else {
                    return Err(lost(output));
                };
                if let Some(found) = Self::take_item(e, index) {
                    return Ok(found);
                }
                // Readers that gave up (a timeout: a guest polling with
                // `next_ready`) left their watchers, which only the entry
                // still holds: dropped here, so that the watchers stay as
                // many as the readers waiting.
                e.watchers.retain(|w| !matches!(w, Watcher::Item(n) if Arc::strong_count(n) == 1));
                e.watchers.push(Watcher::Item(notify.clone()));
            }
            notify.notified().await;
        }
    }

    /// Items `index`.. of the generator task whose output is `output`, as a
    /// reader of `job` finds them now — at most `max` (one if the
    /// generator has a window, so that the window counts exactly what its
    /// reader took), each with a reference added for the reader under the
    /// same lock and, if it is at most `inline_up_to` bytes and in memory,
    /// its bytes — or how the generator ended; `None` if item `index` is
    /// not there yet (wait with [`Self::next_item`]). Readers of a fast
    /// generator find most items there, and take them without a future.
    pub fn take_items_now(
        &self,
        job: JobId,
        output: ObjectId,
        index: u32,
        max: u32,
        inline_up_to: usize,
    ) -> Option<Result<TakenItems, Error>> {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let ids: Vec<ObjectId> = match inner.objects.get_mut(&output) {
            Some(e) if e.job == job => match Self::take_item(e, index)? {
                NextItem::Ended { items, failed } => return Some(Ok(TakenItems::Ended { items, failed })),
                NextItem::Item(_) => {
                    let max = if e.window > 0 { 1 } else { max.max(1) };
                    let end = index.saturating_add(max).min(e.items);
                    e.took(end - 1);
                    let base = e.nested.len() - e.items as usize;
                    e.nested[base + index as usize..base + end as usize].to_vec()
                }
            },
            _ => return Some(Err(lost(output))),
        };
        let items = ids
            .into_iter()
            .map(|id| {
                let e = inner.objects.get_mut(&id).expect("the output pins its items");
                e.refs += 1;
                e.last_access = tick;
                let bytes = match &e.state {
                    State::Memory(b) | State::Spilling(b) if b.len() <= inline_up_to => Some(b.clone()),
                    _ => None,
                };
                (id, bytes)
            })
            .collect();
        Some(Ok(TakenItems::Items(items)))
    }

    /// What a reader asking for item `index` of `e` finds now, if
    /// anything; an item found counts as taken (the generator's window).
    fn take_item(e: &mut Entry, index: u32) -> Option<NextItem> {
        if index < e.items {
            let at = e.nested.len() - e.items as usize + index as usize;
            let item = e.nested[at];
            e.took(index);
            return Some(NextItem::Item(item));
        }
        if !matches!(e.state, State::Pending) {
            return Some(NextItem::Ended { items: e.items, failed: matches!(e.state, State::Failed(_)) });
        }
        None
    }

    /// Which of `ids` are settled (ready or failed; an unknown id counts as
    /// settled, for `get` to report), under one lock. If fewer than `need`
    /// are, `notify` is also arranged to be notified when any of the
    /// pending ones settles — once per call, so that a caller waiting on
    /// many ids re-checks with [`Self::settled`] rather than watching again.
    pub fn watch_all(&self, ids: &[ObjectId], need: usize, notify: &Arc<Notify>) -> Vec<bool> {
        let mut inner = self.lock();
        let mask = Self::mask(&inner, ids);
        if mask.iter().filter(|s| **s).count() < need {
            for (id, settled) in ids.iter().zip(&mask) {
                if !settled && let Some(e) = inner.objects.get_mut(id) {
                    e.watchers.push(Watcher::Wake(notify.clone()));
                }
            }
        }
        mask
    }

    /// Which of `ids` are settled (unknown ids count as settled), under one
    /// lock, without watching.
    pub fn settled(&self, ids: &[ObjectId]) -> Vec<bool> {
        Self::mask(&self.lock(), ids)
    }

    fn mask(inner: &Inner, ids: &[ObjectId]) -> Vec<bool> {
        ids.iter().map(|id| inner.objects.get(id).is_none_or(|e| !matches!(e.state, State::Pending))).collect()
    }

    /// The object's size in bytes, if it is ready.
    pub fn size(&self, id: ObjectId) -> Option<usize> {
        match &self.lock().objects.get(&id)?.state {
            State::Memory(b) | State::Spilling(b) => Some(b.len()),
            State::Spilled(n) => Some(*n),
            State::Elsewhere(h) => Some(h.size),
            State::Pending | State::Failed(_) => None,
        }
    }

    /// Appends to `out` the contents of `ids` in order, under one lock, as
    /// far as they are in this store's memory: it stops at the first one
    /// pending, spilled or held elsewhere (read that one by itself,
    /// [`ObjectStore::try_find`]), and fails with the error of the first
    /// one that failed or does not exist. A reader of many results (`get`
    /// of a batch) took and gave back the lock once per object otherwise,
    /// handing its cache lines to and fro with the thread completing them.
    pub fn read_ready(&self, ids: &[ObjectId], out: &mut Vec<Bytes>) -> Result<(), Error> {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        for id in ids {
            let Some(e) = inner.objects.get_mut(id) else {
                return Err(lost(*id));
            };
            e.last_access = tick;
            match &e.state {
                State::Memory(b) | State::Spilling(b) => out.push(b.clone()),
                State::Failed(err) => return Err(err.clone()),
                State::Pending | State::Spilled(_) | State::Elsewhere(_) => break,
            }
        }
        Ok(())
    }

    /// What a read finds, without waiting: the object's contents, where it
    /// is held if it is ready on another node, or the error its task failed
    /// with; `None` while pending. One look under the lock, so that an
    /// object filled or reopened meanwhile cannot read as neither.
    pub fn try_find(&self, id: ObjectId) -> Option<Result<Found, Error>> {
        let spilled_refs;
        {
            let mut inner = self.lock();
            inner.tick += 1;
            let tick = inner.tick;
            let Some(e) = inner.objects.get_mut(&id) else {
                return Some(Err(lost(id)));
            };
            e.last_access = tick;
            match &e.state {
                State::Pending => return None,
                State::Memory(b) | State::Spilling(b) => {
                    return Some(Ok(Found::Here(Object { data: b.clone(), refs: e.value_refs().to_vec() })));
                }
                State::Failed(err) => return Some(Err(err.clone())),
                State::Elsewhere(h) => return Some(Ok(Found::Elsewhere(h.clone()))),
                State::Spilled(_) => spilled_refs = e.value_refs().to_vec(),
            }
            inner.restores += 1;
        }
        // Read outside the lock: the caller holds a reference, so the entry
        // (and its spilled bytes) cannot go away meanwhile.
        Some(match self.spill.read(id) {
            Ok(Some(data)) => Ok(Found::Here(Object { data: Bytes::from(data), refs: spilled_refs })),
            Ok(None) => Err(Error::ObjectLost(format!("object {id} was spilled but is missing from the spill store"))),
            Err(e) => Err(Error::ObjectLost(format!("object {id}: reading it back from disk failed: {e}"))),
        })
    }

    /// The object's contents, or the error its task failed with, without
    /// waiting: `None` while pending. An object held elsewhere is an error
    /// here; a reader that can fetch it uses [`ObjectStore::try_find`].
    pub fn try_get(&self, id: ObjectId) -> Option<Result<Object, Error>> {
        self.try_find(id).map(|found| found.and_then(|f| f.here(id)))
    }

    /// Waits for the object to be made (here or on another node) and says
    /// what a read finds. Cancellation-safe.
    pub async fn find(&self, id: ObjectId) -> Result<Found, Error> {
        // Most lookups find the object settled: no notifier for them.
        if let Some(r) = self.try_find(id) {
            return r;
        }
        let notify = Arc::new(Notify::new());
        loop {
            match self.watch(id, &notify) {
                None => return Err(lost(id)),
                // Settled since the look above.
                Some(true) => {}
                Some(false) => notify.notified().await,
            }
            if let Some(r) = self.try_find(id) {
                return r;
            }
        }
    }

    /// Waits for the object and returns it; one held elsewhere is an error
    /// (see [`ObjectStore::find`]). Cancellation-safe.
    pub async fn get(&self, id: ObjectId) -> Result<Object, Error> {
        self.find(id).await.and_then(|f| f.here(id))
    }

    /// The `limit` largest objects, largest first: what `wray list objects`
    /// and the dashboard show. One pass under the lock with a heap of
    /// `limit` entries, so its cost grows with the store but not with the
    /// square of anything.
    pub fn largest(&self, limit: usize) -> Vec<ObjectInfo> {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        if limit == 0 {
            return Vec::new();
        }
        let inner = self.lock();
        let mut heap = BinaryHeap::with_capacity(limit + 1);
        for (id, e) in &inner.objects {
            let (size, state) = match &e.state {
                State::Pending => (0, ObjectState::Pending),
                State::Memory(b) | State::Spilling(b) => (b.len(), ObjectState::InMemory),
                State::Spilled(n) => (*n, ObjectState::Spilled),
                State::Failed(_) => (0, ObjectState::Failed),
                State::Elsewhere(h) => (h.size, ObjectState::Elsewhere),
            };
            heap.push(Reverse((size, *id, e.job.0, e.refs, state)));
            if heap.len() > limit {
                heap.pop();
            }
        }
        let mut out: Vec<ObjectInfo> = heap
            .into_iter()
            .map(|Reverse((size, id, job, refs, state))| ObjectInfo { id, job: JobId(job), size, refs, state })
            .collect();
        out.sort_by(|a, b| b.size.cmp(&a.size).then(a.id.cmp(&b.id)));
        out
    }

    /// Current counters.
    pub fn stats(&self) -> StoreStats {
        let inner = self.lock();
        StoreStats {
            objects: inner.objects.len(),
            memory_bytes: inner.in_memory,
            spilled_bytes: inner.spilled_bytes,
            spilled_objects: inner.spilled_objects,
            spills: inner.spills,
            restores: inner.restores,
            budget: self.budget,
        }
    }

    /// Chooses least-recently-used objects to spill until memory would be
    /// within budget and marks them as being spilled; the caller writes
    /// them ([`ObjectStore::write_spills`]) after letting go of the lock, so
    /// that writing a large object to disk holds up nobody else.
    fn spill_over_budget(&self, inner: &mut Inner) -> Vec<(ObjectId, Bytes)> {
        if inner.in_memory <= self.budget {
            return Vec::new();
        }
        let resident: Vec<Resident<ObjectId>> = inner
            .objects
            .iter()
            .filter_map(|(id, e)| match &e.state {
                // Spilling an empty object (an actor's handle object) frees
                // nothing.
                State::Memory(b) if !b.is_empty() => {
                    Some(Resident { key: *id, size: b.len(), last_access: e.last_access })
                }
                _ => None,
            })
            .collect();
        // Objects already being spilled count as gone.
        let spilling: usize = inner
            .objects
            .values()
            .filter_map(|e| match &e.state {
                State::Spilling(b) => Some(b.len()),
                _ => None,
            })
            .sum();
        let mut work = Vec::new();
        for id in policy::victims(resident, inner.in_memory.saturating_sub(spilling), self.budget) {
            let e = inner.objects.get_mut(&id).expect("victim is resident");
            let State::Memory(data) = &e.state else {
                continue;
            };
            let data = data.clone();
            e.state = State::Spilling(data.clone());
            work.push((id, data));
        }
        work
    }

    /// Writes objects chosen by [`ObjectStore::spill_over_budget`] to the
    /// spill store, then drops them from memory. An object freed meanwhile
    /// is deleted again; one that cannot be written stays in memory (an
    /// object already stored is never lost). If a write failed and memory is
    /// still over budget, the store is full: the error to give whoever
    /// brought the object that tipped it over.
    fn write_spills(&self, work: Vec<(ObjectId, Bytes)>) -> Option<Error> {
        let mut failure = None;
        for (id, data) in work {
            let written = self.spill.write(id, &data);
            let mut inner = self.lock();
            let size = data.len();
            if let Err(err) = &written {
                let why = err.to_string();
                // Logged when spilling starts failing, not again while it
                // fails: sled words one full disk in more than one way (the
                // OS error, then its own record of it).
                if inner.spill_failure.is_none() {
                    tracing::error!("cannot spill objects to disk: {why}; keeping them in memory, refusing new ones");
                }
                inner.spill_failure = Some(why.clone());
                failure = Some(why);
            } else if inner.spill_failure.take().is_some() {
                tracing::info!("spilling objects to disk works again");
            }
            match (inner.objects.get_mut(&id), written) {
                (Some(e), Ok(())) if matches!(e.state, State::Spilling(_)) => {
                    e.state = State::Spilled(size);
                    inner.in_memory -= size;
                    inner.spilled_bytes += size;
                    inner.spilled_objects += 1;
                    inner.spills += 1;
                }
                (Some(e), Err(_)) if matches!(e.state, State::Spilling(_)) => {
                    e.state = State::Memory(data);
                }
                (None, Ok(())) => {
                    drop(inner);
                    if let Err(err) = self.spill.delete(id) {
                        tracing::warn!("cannot delete spilled object {id}: {err}");
                    }
                }
                _ => {}
            }
        }
        let why = failure?;
        let in_memory = self.lock().in_memory;
        (in_memory > self.budget).then(|| {
            Error::StoreFull(format!(
                "{in_memory} bytes of objects are in memory, over the {} byte budget, and spilling to disk failed: {why}",
                self.budget
            ))
        })
    }
}

/// Adds a reference to each nested object (they must be live objects of
/// `job`); on failure, nothing is pinned.
fn pin_nested(inner: &mut Inner, job: JobId, refs: &[ObjectId]) -> Result<(), Error> {
    for id in refs {
        match inner.objects.get(id) {
            Some(e) if e.job == job => {}
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "the value refers to object {id}, which this job does not hold"
                )));
            }
        }
    }
    for id in refs {
        inner.objects.get_mut(id).expect("checked").refs += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spill::SledSpill;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    use std::collections::BTreeMap;
    use std::time::Duration;
    use wray_core::TaskId;

    fn oid(n: u32) -> ObjectId {
        ObjectId::put_by(TaskId::driver(JobId(1)), n)
    }

    fn obj(n: usize, fill: u8) -> Object {
        Object { data: Bytes::from(vec![fill; n]), refs: Vec::new() }
    }

    /// The pending output of the driver's `child`th task in job 1: what a
    /// generator's items go under in the item tests.
    fn generator_output(s: &ObjectStore, child: u64) -> ObjectId {
        let output = ObjectId::returned_by(TaskId::driver(JobId(1)).child(child));
        s.create_pending(JobId(1), output);
        output
    }

    fn store(budget: usize) -> (tempfile::TempDir, ObjectStore) {
        let dir = tempfile::tempdir().unwrap();
        let spill = SledSpill::open(&dir.path().join("spill")).unwrap();
        (dir, ObjectStore::new(budget, Box::new(spill)))
    }

    #[test]
    fn a_freed_watcher_fires_when_the_last_holder_lets_go_and_not_before() {
        let (_d, s) = store(1 << 20);
        let job = JobId(1);
        let fired = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let count = |fired: &Arc<std::sync::atomic::AtomicU32>| {
            let fired = fired.clone();
            Box::new(move || {
                fired.fetch_add(1, Ordering::Relaxed);
            }) as Box<dyn FnOnce() + Send>
        };
        // A handle object nested in a value: the value pins it.
        s.put(job, oid(1), obj(0, 0)).unwrap();
        assert!(s.on_freed(oid(1), count(&fired)));
        s.put(job, oid(2), Object { data: Bytes::from_static(b"v"), refs: vec![oid(1)] }).unwrap();
        s.add_ref(job, oid(1)).unwrap();
        s.release(oid(1));
        s.release(oid(1));
        assert_eq!(fired.load(Ordering::Relaxed), 0, "the value still holds it");
        s.release(oid(2));
        assert_eq!(fired.load(Ordering::Relaxed), 1);
        assert!(!s.on_freed(oid(1), count(&fired)), "gone: nothing to watch");

        // Settling wakes a pending object's readers, not its freed watcher;
        // a reference added whatever the job (a lent copy) holds it like any
        // other, and the job's end frees it whatever holds it.
        s.create_pending(job, oid(3));
        assert!(s.on_freed(oid(3), count(&fired)));
        s.complete(oid(3), Ok(obj(1, 3)));
        assert_eq!(s.add_ref_any(oid(3)), Some(job));
        assert_eq!(s.add_ref_any(oid(9)), None);
        s.release(oid(3));
        assert_eq!(fired.load(Ordering::Relaxed), 1);
        s.free_job(job);
        assert_eq!(fired.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_batch_is_read_as_far_as_its_objects_are_in_memory() {
        let (_d, s) = store(8);
        let job = JobId(1);
        for n in 0..4 {
            s.create_pending(job, oid(n));
        }
        s.complete(oid(0), Ok(obj(2, 0)));
        s.complete(oid(1), Ok(obj(2, 1)));
        s.complete(oid(3), Ok(obj(2, 3)));
        let ids: Vec<_> = (0..4).map(oid).collect();
        let mut out = Vec::new();
        s.read_ready(&ids, &mut out).unwrap();
        assert_eq!(out, [Bytes::from(vec![0u8; 2]), Bytes::from(vec![1u8; 2])], "stops at the pending one");
        s.complete(oid(2), Ok(obj(2, 2)));
        s.read_ready(&ids[2..], &mut out).unwrap();
        assert_eq!(out.len(), 4);
        assert!(out.iter().enumerate().all(|(i, b)| b[..] == [i as u8; 2]));
        // Past the budget the least recently read object is spilled: the
        // batch stops in front of it, and a read by itself brings it back.
        s.create_pending(job, oid(4));
        s.complete(oid(4), Ok(obj(4, 4)));
        let spilled =
            (0..4).find(|n| s.lock().objects.get(&oid(*n)).is_some_and(|e| matches!(e.state, State::Spilled(_))));
        let spilled = spilled.expect("one object spilled");
        let mut out = Vec::new();
        s.read_ready(&[oid(4), oid(spilled)], &mut out).unwrap();
        assert_eq!(out, [Bytes::from(vec![4u8; 4])]);
        assert!(matches!(s.try_find(oid(spilled)), Some(Ok(Found::Here(_)))));
        // A failed or freed object fails the batch, naming it.
        s.create_pending(job, oid(5));
        s.complete(oid(5), Err(Error::Cancelled));
        assert!(matches!(s.read_ready(&[oid(4), oid(5)], &mut Vec::new()), Err(Error::Cancelled)));
        s.release(oid(4));
        let lost = s.read_ready(&[oid(4)], &mut Vec::new()).unwrap_err();
        assert!(lost.to_string().contains(&oid(4).to_string()), "{lost}");
    }

    #[test]
    fn the_map_shrinks_once_a_burst_is_freed_and_keeps_what_it_holds() {
        let (_d, s) = store(1 << 30);
        let job = JobId(1);
        for n in 0..40_000 {
            s.create_pending(job, oid(n));
        }
        // Nothing removed yet: no tombstones, so this is the map's size.
        let grown = s.lock().objects.capacity();
        assert!(grown >= 40_000);
        // Freed but for the last hundred: the map is not rebuilt yet, as
        // another burst may come.
        for n in 0..39_900 {
            s.release(oid(n));
        }
        assert_eq!(s.lock().shrinks, 0, "rebuilt at once");
        // Objects come and go a few at a time: after a quarter of its slots
        // in removals it is rebuilt, to twice what it holds. (Tombstones
        // only lower `capacity()`, so it bounds the new size from above.)
        for n in 100_000..100_000 + grown as u32 / 4 {
            s.create_pending(job, oid(n));
            s.release(oid(n));
        }
        assert_eq!(s.lock().shrinks, 1, "{grown} slots never rebuilt");
        let shrunk = s.lock().objects.capacity();
        assert!(shrunk <= 2 * MIN_SHRUNK_CAPACITY, "{grown} slots → {shrunk}");
        for n in 39_900..40_000 {
            s.complete(oid(n), Ok(obj(1, 3)));
            assert_eq!(s.try_get(oid(n)).unwrap().unwrap().data, Bytes::from(vec![3u8]));
        }
        // A small map is left alone, however empty.
        for n in 39_900..40_000 {
            s.release(oid(n));
        }
        assert_eq!(s.lock().objects.len(), 0);
        assert_eq!(s.lock().shrinks, 1, "a small map rebuilt");
    }

    #[tokio::test]
    async fn a_generator_s_items_are_read_in_order_and_live_as_long_as_its_output() {
        let (_d, s) = store(1 << 20);
        let job = JobId(1);
        let output = ObjectId::returned_by(TaskId::driver(job).child(7));
        let item = |i: u32| ObjectId { task: output.task, index: 1000 + i };
        s.create_pending(job, output);
        let reader = {
            let s = &s;
            async move { s.next_item(output, 0).await }
        };
        let (read, kept) = tokio::join!(reader, async {
            tokio::task::yield_now().await;
            s.put_item(Some(job), output, 0, item(0), obj(3, 1))
        });
        assert_eq!(read.unwrap(), NextItem::Item(item(0)));
        assert_eq!(kept.unwrap(), ItemPut::Kept);
        // A retry yields item 0 again: dropped, the first one stays.
        assert_eq!(s.put_item(Some(job), output, 0, item(9), obj(3, 9)).unwrap(), ItemPut::Repeated);
        assert!(s.try_get(item(9)).is_some_and(|r| r.is_err()), "the repeat was not stored");
        // Out of order: refused.
        assert!(s.put_item(Some(job), output, 2, item(2), obj(1, 2)).is_err());
        assert_eq!(s.put_item(Some(job), output, 1, item(1), obj(2, 2)).unwrap(), ItemPut::Kept);
        // The output settles with a value of its own refs: readers see
        // those, not the items; the items stay readable.
        s.put(job, oid(50), obj(1, 5)).unwrap();
        s.complete(output, Ok(Object { data: Bytes::from_static(b"done"), refs: vec![oid(50)] }));
        s.release(oid(50));
        assert_eq!(s.try_get(output).unwrap().unwrap().refs, vec![oid(50)]);
        assert_eq!(s.next_item(output, 1).await.unwrap(), NextItem::Item(item(1)));
        assert_eq!(s.next_item(output, 2).await.unwrap(), NextItem::Ended { items: 2, failed: false });
        assert_eq!(s.try_get(item(1)).unwrap().unwrap().data, Bytes::from(vec![2u8; 2]));
        // Items after the end go nowhere.
        assert_eq!(s.put_item(Some(job), output, 2, item(2), obj(1, 2)).unwrap(), ItemPut::Unread);
        // A reader holding an item keeps it; the rest go with the output.
        s.add_ref(job, item(0)).unwrap();
        s.release(output);
        assert!(s.try_get(item(0)).unwrap().is_ok());
        assert!(s.try_get(item(1)).unwrap().is_err(), "freed with its output");
        assert!(s.try_get(oid(50)).unwrap().is_err(), "freed with its output");
        s.release(item(0));
        assert_eq!(s.stats().objects, 0);
        // Once every holder let the output go, its generator's items are
        // unread: the producer hears it and may stop.
        let gone = ObjectId::returned_by(TaskId::driver(job).child(10));
        s.create_pending(job, gone);
        s.release(gone);
        assert_eq!(
            s.put_item(Some(job), gone, 0, ObjectId::item_of(gone.task, 0), obj(1, 1)).unwrap(),
            ItemPut::Unread
        );
        assert_eq!(s.stats().objects, 0);
        // A method of another job's actor (a detached one) yields into its
        // caller's job, where its output is: freed with that job.
        let caller = JobId(2);
        let called = ObjectId::returned_by(TaskId::driver(caller).child(11));
        s.create_pending(caller, called);
        let first = ObjectId::item_of(called.task, 0);
        // A peer's stream for one job reaches no output of another.
        assert_eq!(s.put_item(Some(job), called, 0, first, obj(1, 1)).unwrap(), ItemPut::Unread);
        assert_eq!(s.put_item(None, called, 0, first, obj(1, 1)).unwrap(), ItemPut::Kept);
        s.free_job(job);
        assert_eq!(s.stats().objects, 2, "the caller's output and its item stay");
        s.free_job(caller);
        assert_eq!(s.stats().objects, 0);
    }

    #[tokio::test]
    async fn a_generator_with_a_window_waits_for_its_reader_to_take_an_item() {
        let (_d, s) = store(1 << 20);
        let job = JobId(1);
        let output = generator_output(&s, 11);
        let item = |i: u32| ObjectId::item_of(output.task, i);
        s.set_item_window(output, 2);
        assert_eq!(s.put_item(Some(job), output, 0, item(0), obj(1, 0)).unwrap(), ItemPut::Kept);
        assert_eq!(s.put_item(Some(job), output, 1, item(1), obj(1, 1)).unwrap(), ItemPut::Ahead);
        // Two unread: the producer waits, and its wait leaves one watcher
        // however often it is dropped (a cancelled task) and begun again.
        for _ in 0..100 {
            let wait = s.wait_for_reader(output);
            tokio::pin!(wait);
            assert!(futures_poll(&mut wait).is_none(), "two items wait unread");
        }
        assert!(s.lock().objects[&output].watchers.len() <= 1);
        let wait = s.wait_for_reader(output);
        tokio::pin!(wait);
        assert!(futures_poll(&mut wait).is_none());
        // A reader takes item 0 (without waiting): the producer goes on,
        // and its next item fills the window again.
        // With a window, one item per take however many are asked for.
        assert_eq!(s.take_items_now(job, output, 0, 8, 0), Some(Ok(TakenItems::Items(vec![(item(0), None)]))));
        s.release(item(0));
        wait.await;
        assert_eq!(s.put_item(Some(job), output, 2, item(2), obj(1, 2)).unwrap(), ItemPut::Ahead);
        // Reading an item again does not count twice; a waiting reader
        // counts as it is handed one.
        assert_eq!(s.next_item(output, 0).await.unwrap(), NextItem::Item(item(0)));
        assert!(futures_poll(&mut std::pin::pin!(s.wait_for_reader(output))).is_none());
        assert_eq!(s.next_item(output, 1).await.unwrap(), NextItem::Item(item(1)));
        s.wait_for_reader(output).await;
        // Once nobody holds the output, a waiting producer is let go (its
        // next item is then `Unread`), as it is without a window.
        assert_eq!(s.put_item(Some(job), output, 3, item(3), obj(1, 3)).unwrap(), ItemPut::Ahead);
        let wait = s.wait_for_reader(output);
        tokio::pin!(wait);
        assert!(futures_poll(&mut wait).is_none());
        s.release(output);
        wait.await;
        assert_eq!(s.put_item(Some(job), output, 4, item(4), obj(1, 4)).unwrap(), ItemPut::Unread);
        assert_eq!(s.stats().objects, 0);
    }

    #[test]
    fn a_reader_takes_the_items_already_there_at_once_with_the_small_ones_bytes() {
        let (_d, s) = store(1 << 20);
        let job = JobId(1);
        let output = generator_output(&s, 13);
        let item = |i: u32| ObjectId::item_of(output.task, i);
        assert_eq!(s.take_items_now(job, output, 0, 8, 64), None, "nothing yielded yet");
        for (i, size) in [(0, 10), (1, 100), (2, 20)] {
            s.put_item(Some(job), output, i, item(i), obj(size, i as u8)).unwrap();
        }
        // At most `max`, the bytes of those at most `inline_up_to` long.
        let small = |i: u32, n: usize| Some(Bytes::from(vec![i as u8; n]));
        assert_eq!(
            s.take_items_now(job, output, 0, 2, 64),
            Some(Ok(TakenItems::Items(vec![(item(0), small(0, 10)), (item(1), None)])))
        );
        assert_eq!(s.take_items_now(job, output, 2, 8, 64), Some(Ok(TakenItems::Items(vec![(item(2), small(2, 20))]))));
        assert_eq!(s.take_items_now(job, output, 3, 8, 64), None, "not yielded yet");
        assert_eq!(s.take_items_now(JobId(2), output, 0, 8, 64), Some(Err(lost(output))), "another job's reader");
        s.complete(output, Ok(obj(0, 0)));
        assert_eq!(s.take_items_now(job, output, 3, 8, 64), Some(Ok(TakenItems::Ended { items: 3, failed: false })));
        // Each item taken holds a reference for its reader.
        s.release(output);
        assert_eq!(s.stats().objects, 3);
        for i in 0..3 {
            s.release(item(i));
        }
        assert_eq!(s.stats().objects, 0);
    }

    #[test]
    fn items_stopped_by_their_owner_are_unread_while_the_output_stays() {
        let (_d, s) = store(1 << 20);
        let job = JobId(1);
        let output = generator_output(&s, 12);
        let item = |i: u32| ObjectId::item_of(output.task, i);
        assert_eq!(s.put_item(Some(job), output, 0, item(0), obj(1, 0)).unwrap(), ItemPut::Kept);
        s.stop_items(JobId(2), output);
        assert_eq!(s.put_item(Some(job), output, 1, item(1), obj(1, 1)).unwrap(), ItemPut::Kept, "another job's stop");
        s.stop_items(job, output);
        assert_eq!(s.put_item(Some(job), output, 2, item(2), obj(1, 2)).unwrap(), ItemPut::Unread);
        // The output stays for the call's result, its items with it.
        s.complete(output, Err(Error::Cancelled));
        assert!(s.try_get(output).unwrap().is_err());
        assert!(s.try_get(item(0)).unwrap().is_ok());
        s.release(output);
        assert_eq!(s.stats().objects, 0);
    }

    #[tokio::test]
    async fn readers_of_items_that_gave_up_leave_no_watchers_behind() {
        let (_d, s) = store(1 << 20);
        let output = generator_output(&s, 9);
        for _ in 0..1000 {
            let reader = s.next_item(output, 0);
            tokio::pin!(reader);
            assert!(futures_poll(&mut reader).is_none());
        }
        assert!(s.lock().objects[&output].watchers.len() <= 1, "one per reader still waiting");
    }

    #[tokio::test]
    async fn a_failed_generator_keeps_its_items_and_a_get_of_it_is_not_woken_by_them() {
        let (_d, s) = store(1 << 20);
        let job = JobId(1);
        let output = generator_output(&s, 8);
        let waiter = s.get(output);
        tokio::pin!(waiter);
        assert!(futures_poll(&mut waiter).is_none());
        s.put_item(Some(job), output, 0, oid(1), obj(1, 1)).unwrap();
        assert!(futures_poll(&mut waiter).is_none(), "an item does not settle the output");
        s.complete(output, Err(Error::ObjectLost("x".into())));
        assert!(waiter.await.is_err());
        assert_eq!(s.next_item(output, 0).await.unwrap(), NextItem::Item(oid(1)));
        assert_eq!(s.next_item(output, 1).await.unwrap(), NextItem::Ended { items: 1, failed: true });
        s.release(output);
        assert_eq!(s.stats().objects, 0);
    }

    /// Polls a future once.
    fn futures_poll<F: std::future::Future + Unpin>(f: &mut F) -> Option<F::Output> {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        match std::pin::Pin::new(f).poll(&mut cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        }
    }

    #[test]
    fn last_release_frees_and_nested_refs_live_as_long_as_their_holder() {
        let (_d, s) = store(1 << 20);
        let job = JobId(1);
        s.put(job, oid(1), obj(10, 1)).unwrap();
        s.put(job, oid(2), Object { data: Bytes::from_static(b"x"), refs: vec![oid(1)] }).unwrap();
        s.release(oid(1)); // the holder still pins it
        assert!(s.try_get(oid(1)).unwrap().is_ok());
        s.release(oid(2));
        assert!(matches!(s.try_get(oid(1)), Some(Err(Error::ObjectLost(_)))));
        assert_eq!(s.stats().objects, 0);
        assert_eq!(s.stats().memory_bytes, 0);
    }

    #[test]
    fn a_batch_of_results_settles_each_and_makes_room_as_one_result_does() {
        // A 1000-byte budget: the third result needs room, so it and the
        // ones after it are settled one by one once the spills are written.
        let (_d, s) = store(1000);
        let job = JobId(1);
        for n in 1..=5 {
            s.create_pending(job, oid(n));
        }
        s.complete_all([
            (oid(1), Ok(obj(400, 1))),
            (oid(2), Err(Error::InvalidArgument("boom".into()))),
            (oid(9), Ok(obj(10, 9))), // never registered: dropped
            (oid(3), Ok(obj(400, 3))),
            (oid(4), Ok(obj(400, 4))),
            (oid(5), Ok(obj(100, 5))),
        ]);
        for (n, len, fill) in [(1, 400, 1u8), (3, 400, 3), (4, 400, 4), (5, 100, 5)] {
            let got = s.try_get(oid(n)).unwrap().unwrap();
            assert_eq!(got.data, vec![fill; len], "object {n}");
        }
        assert!(matches!(s.try_get(oid(2)), Some(Err(Error::InvalidArgument(_)))));
        assert!(s.try_get(oid(9)).is_none_or(|r| r.is_err()));
        let st = s.stats();
        assert!(st.spills > 0 && st.memory_bytes <= 1000, "{st:?}");
        assert_eq!(st.objects, 5);
    }

    #[test]
    fn a_registered_result_is_there_for_whoever_looks_next_on_any_thread() {
        // Registrations wait outside the map until it is next locked:
        // every operation must find them, a retried registration must not
        // reset an entry, and a result settled on another thread right
        // after its registration must land.
        let (_d, s) = store(1 << 20);
        let s = Arc::new(s);
        let job = JobId(1);
        s.create_pending(job, oid(1));
        assert!(s.try_get(oid(1)).is_none(), "a registered result reads as pending");
        s.add_ref(job, oid(1)).unwrap();
        s.create_pending(job, oid(1)); // a retry: still two refs
        s.release(oid(1));
        s.complete(oid(1), Ok(obj(10, 1)));
        assert_eq!(s.try_get(oid(1)).unwrap().unwrap().data, vec![1u8; 10]);
        s.release(oid(1));
        assert!(matches!(s.try_get(oid(1)), Some(Err(Error::ObjectLost(_)))), "freed with its last ref");
        // Two threads: one registers ids and hands each over a channel, the
        // other settles them as they come, in batches.
        let (tx, rx) = std::sync::mpsc::channel::<ObjectId>();
        let settler = {
            let s = s.clone();
            std::thread::spawn(move || {
                let mut batch = Vec::new();
                for id in rx {
                    batch.push((id, Ok(obj(8, 7))));
                    if batch.len() == 16 {
                        s.complete_all(std::mem::take(&mut batch));
                    }
                }
                s.complete_all(batch);
            })
        };
        for n in 100..10_100 {
            s.create_pending(job, oid(n));
            tx.send(oid(n)).unwrap();
        }
        drop(tx);
        settler.join().unwrap();
        for n in 100..10_100 {
            assert_eq!(s.try_get(oid(n)).unwrap().unwrap().data, vec![7u8; 8], "object {n}");
        }
        assert_eq!(s.stats().objects, 10_000);
    }

    #[test]
    fn a_batch_of_releases_counts_each_and_frees_what_nests_in_what_it_frees() {
        let (_d, s) = store(1 << 20);
        let job = JobId(1);
        s.put(job, oid(1), obj(10, 1)).unwrap();
        s.add_ref(job, oid(1)).unwrap();
        s.put(job, oid(2), obj(20, 2)).unwrap();
        s.put(job, oid(3), Object { data: Bytes::from_static(b"x"), refs: vec![oid(2)] }).unwrap();
        s.release(oid(2)); // now held only by 3
        // Object 1 twice (both its refs), 3 (which frees 2 with it), and
        // an id never stored (ignored, as `release` ignores it).
        s.release_all([oid(1), oid(3), oid(9), oid(1)]);
        for n in [1, 2, 3] {
            assert!(matches!(s.try_get(oid(n)), Some(Err(Error::ObjectLost(_)))), "object {n} is still there");
        }
        assert_eq!(s.stats(), StoreStats { budget: 1 << 20, ..StoreStats::default() });
        // A batch that leaves a ref frees nothing.
        s.put(job, oid(4), obj(5, 4)).unwrap();
        s.add_ref(job, oid(4)).unwrap();
        s.release_all([oid(4)]);
        assert!(s.try_get(oid(4)).unwrap().is_ok());
    }

    #[test]
    fn largest_lists_the_biggest_objects_first_with_their_state() {
        let (_d, s) = store(1 << 20);
        let job = JobId(1);
        for (n, size) in [(1, 10), (2, 300), (3, 20), (4, 5)] {
            s.put(job, oid(n), obj(size, 0)).unwrap();
        }
        s.create_pending(job, oid(5));
        let top: Vec<_> = s.largest(2).iter().map(|o| (o.id, o.size, o.state)).collect();
        assert_eq!(top, vec![(oid(2), 300, ObjectState::InMemory), (oid(3), 20, ObjectState::InMemory)]);
        let all = s.largest(100);
        assert_eq!(all.len(), 5);
        assert_eq!(all.last().map(|o| o.state), Some(ObjectState::Pending));
        assert!(s.largest(0).is_empty());
    }

    #[test]
    fn other_jobs_cannot_reference_an_object() {
        let (_d, s) = store(1 << 20);
        s.put(JobId(1), oid(1), obj(1, 0)).unwrap();
        assert!(s.add_ref(JobId(2), oid(1)).is_err());
        assert!(s.add_ref(JobId(1), oid(99)).is_err());
        let forged = Object { data: Bytes::new(), refs: vec![oid(1)] };
        assert!(s.put(JobId(2), oid(2), forged).is_err());
    }

    #[test]
    fn a_parked_callback_runs_once_when_its_object_settles_or_is_freed() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let (_d, s) = store(1 << 20);
        let calls = Arc::new(AtomicU32::new(0));
        let count = |c: &Arc<AtomicU32>| -> Box<dyn FnOnce() + Send> {
            let c = c.clone();
            Box::new(move || {
                c.fetch_add(1, Ordering::SeqCst);
            })
        };
        // Ready, failed, held elsewhere, freed while pending: each calls once.
        for (n, settle) in [0u8, 1, 2, 3].into_iter().enumerate() {
            let id = oid(n as u32 + 1);
            s.create_pending(JobId(1), id);
            assert!(s.on_settled(id, count(&calls)));
            assert_eq!(calls.load(Ordering::SeqCst), n as u32, "not before it settles");
            match settle {
                0 => s.complete(id, Ok(obj(2, 1))),
                1 => s.complete(id, Err(Error::Cancelled)),
                2 => {
                    s.complete_elsewhere(id, Holder { node: "a".into(), addr: String::new(), size: 2, key: "k".into() })
                }
                _ => s.free_job(JobId(1)),
            }
            assert_eq!(calls.load(Ordering::SeqCst), n as u32 + 1);
        }
        // Settled already, or unknown: not kept.
        s.put(JobId(1), oid(9), obj(1, 0)).unwrap();
        assert!(!s.on_settled(oid(9), count(&calls)));
        assert!(!s.on_settled(oid(10), count(&calls)));
        s.complete(oid(1), Ok(obj(2, 2)));
        assert_eq!(calls.load(Ordering::SeqCst), 4, "each callback runs once");
    }

    #[tokio::test]
    async fn readers_wait_for_pending_objects() {
        let (_d, s) = store(1 << 20);
        let s = Arc::new(s);
        s.create_pending(JobId(1), oid(1));
        let reader = tokio::spawn({
            let s = s.clone();
            async move { s.get(oid(1)).await }
        });
        tokio::task::yield_now().await;
        s.complete(oid(1), Ok(obj(3, 7)));
        assert_eq!(reader.await.unwrap().unwrap().data, Bytes::from(vec![7u8; 3]));
        s.create_pending(JobId(1), oid(2));
        s.complete(oid(2), Err(Error::Cancelled));
        assert_eq!(s.get(oid(2)).await, Err(Error::Cancelled));
    }

    #[tokio::test]
    async fn an_object_held_elsewhere_is_settled_then_filled_or_reopened() {
        let (_d, s) = store(1 << 20);
        let held = Holder { node: "a".into(), addr: "127.0.0.1:1".into(), size: 3, key: "b/1".into() };
        s.create_pending(JobId(1), oid(1));
        let notify = Arc::new(Notify::new());
        assert!(!s.watch_elsewhere(oid(1), &notify), "pending is not elsewhere");
        s.complete_elsewhere(oid(1), held.clone());
        // Ready for `wait`, sized, located, but not readable here.
        assert_eq!(s.settled(&[oid(1)]), vec![true]);
        assert_eq!(s.size(oid(1)), Some(3));
        assert_eq!(s.holder(oid(1)), Some(held.clone()));
        assert!(matches!(s.try_get(oid(1)), Some(Err(Error::ObjectLost(_)))));
        assert_eq!(s.largest(1)[0].state, ObjectState::Elsewhere);
        assert_eq!(s.stats().memory_bytes, 0);
        // A keeper watching it hears when it is filled.
        assert!(s.watch_elsewhere(oid(1), &notify));
        s.fill(oid(1), obj(3, 9));
        tokio::time::timeout(Duration::from_secs(5), notify.notified()).await.expect("the keeper is woken");
        assert_eq!(s.holder(oid(1)), None);
        assert_eq!(s.get(oid(1)).await.unwrap().data, Bytes::from(vec![9u8; 3]));
        assert_eq!(s.stats().memory_bytes, 3);
        // A second fill (another reader's) changes nothing.
        s.fill(oid(1), obj(3, 1));
        assert_eq!(s.get(oid(1)).await.unwrap().data, Bytes::from(vec![9u8; 3]));
        // Reopened (its holder died): pending again, readers wait for the
        // task that makes it again.
        s.create_pending(JobId(1), oid(2));
        s.complete_elsewhere(oid(2), held);
        assert!(s.reopen(oid(2)));
        assert!(!s.reopen(oid(2)));
        assert_eq!(s.settled(&[oid(2)]), vec![false]);
        let reader = tokio::spawn({
            let s = Arc::new(s);
            async move {
                let got = s.get(oid(2));
                tokio::pin!(got);
                assert!(futures_poll_once(&mut got).await.is_none(), "a reopened object is waited for");
                s.complete(oid(2), Ok(obj(2, 5)));
                got.await
            }
        });
        assert_eq!(reader.await.unwrap().unwrap().data, Bytes::from(vec![5u8; 2]));
    }

    /// Polls `f` once: its output if it was ready.
    async fn futures_poll_once<F: std::future::Future + Unpin>(f: &mut F) -> Option<F::Output> {
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut *f).poll(cx) {
                std::task::Poll::Ready(v) => Some(v),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }

    /// A disk of `capacity` bytes: writes past it fail like ENOSPC.
    struct SmallDisk {
        capacity: usize,
        objects: Mutex<HashMap<ObjectId, Vec<u8>>>,
    }

    impl SpillStore for SmallDisk {
        fn write(&self, id: ObjectId, data: &[u8]) -> std::io::Result<()> {
            let mut objects = self.objects.lock().unwrap();
            if objects.values().map(Vec::len).sum::<usize>() + data.len() > self.capacity {
                return Err(std::io::Error::from_raw_os_error(28));
            }
            objects.insert(id, data.to_vec());
            Ok(())
        }
        fn read(&self, id: ObjectId) -> std::io::Result<Option<Vec<u8>>> {
            Ok(self.objects.lock().unwrap().get(&id).cloned())
        }
        fn delete(&self, id: ObjectId) -> std::io::Result<()> {
            self.objects.lock().unwrap().remove(&id);
            Ok(())
        }
        fn disk_usage(&self) -> u64 {
            0
        }
    }

    #[tokio::test]
    async fn a_full_disk_refuses_new_objects_and_loses_none() {
        let disk = SmallDisk { capacity: 1000, objects: Mutex::default() };
        let s = ObjectStore::new(1000, Box::new(disk));
        let job = JobId(1);
        let mut kept = Vec::new();
        let refusal = loop {
            let n = kept.len() as u32 + 1;
            match s.put(job, oid(n), obj(100, n as u8)) {
                Ok(()) => kept.push(n),
                Err(e) => break e,
            }
            assert!(kept.len() < 100, "never refused");
        };
        assert!(matches!(&refusal, Error::StoreFull(m) if m.contains("os error 28")), "{refusal}");
        // Budget plus disk, give or take the objects in flight.
        assert!((19..=21).contains(&kept.len()), "{}", kept.len());
        assert!(s.try_get(oid(kept.len() as u32 + 1)).unwrap().is_err(), "the refused object is not stored");
        // A task result meets the same store: its readers get the error.
        let result = ObjectId::put_by(TaskId::driver(JobId(1)), 999);
        s.create_pending(job, result);
        s.complete(result, Ok(obj(100, 9)));
        assert!(matches!(s.get(result).await, Err(Error::StoreFull(_))));
        for n in &kept {
            let got = s.try_get(oid(*n)).unwrap().unwrap();
            assert!(got.data.iter().all(|b| *b == *n as u8), "object {n} corrupted");
        }
        // Freeing objects makes room again.
        for n in kept.drain(..5) {
            s.release(oid(n));
        }
        s.put(job, oid(500), obj(100, 5)).unwrap();
        assert!(s.stats().memory_bytes <= 1000 + 100, "{:?}", s.stats());
    }

    /// Model-based test: random puts, gets and releases against a BTreeMap,
    /// with a budget small enough that most objects spill to sled. Nothing
    /// may be lost or corrupted, and memory must stay within budget.
    #[test]
    fn spilling_loses_nothing_against_a_model() {
        let seed: u64 = std::env::var("WRAY_SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(7);
        let mut rng = SmallRng::seed_from_u64(seed);
        let budget = 4096;
        let (_d, s) = store(budget);
        let mut model: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
        let mut next = 1u32;
        for step in 0..3_000 {
            match rng.random_range(0..10) {
                0..=3 => {
                    let len = rng.random_range(0..1500);
                    let fill = rng.random::<u8>();
                    s.put(JobId(1), oid(next), obj(len, fill)).unwrap();
                    model.insert(next, vec![fill; len]);
                    next += 1;
                }
                4..=7 if !model.is_empty() => {
                    let k = *model.keys().nth(rng.random_range(0..model.len())).unwrap();
                    let got = s.try_get(oid(k)).unwrap().unwrap();
                    assert_eq!(
                        got.data.as_ref(),
                        model[&k].as_slice(),
                        "seed {seed} step {step}: object {k} corrupted"
                    );
                }
                _ if !model.is_empty() => {
                    let k = *model.keys().nth(rng.random_range(0..model.len())).unwrap();
                    s.release(oid(k));
                    model.remove(&k);
                }
                _ => {}
            }
            let st = s.stats();
            assert!(st.memory_bytes <= budget, "seed {seed} step {step}: {st:?}");
            assert_eq!(st.objects, model.len(), "seed {seed} step {step}");
        }
        assert!(s.stats().spills > 0, "the budget should have forced spills");
        for (k, v) in &model {
            assert_eq!(s.try_get(oid(*k)).unwrap().unwrap().data.as_ref(), v.as_slice());
        }
    }
}
