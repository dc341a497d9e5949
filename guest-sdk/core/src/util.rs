//! Ray's `ray.util.multiprocessing.Pool` for wray: run one function over
//! many items in parallel tasks, in order ([`Pool::map`], [`Pool::imap`]) or
//! as they finish ([`Pool::imap_unordered`]), pairs of arguments
//! ([`Pool::starmap`]), or one call in the background
//! ([`Pool::apply_async`]).
//!
//! ```no_run
//! use wray::util::Pool;
//!
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! # fn main() -> Result<(), wray::Error> {
//! let pool = Pool::new(4);
//! assert_eq!(pool.map(square, 0..10)?, [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
//! for x in pool.imap_unordered(square, 0..100, 8) {
//!     println!("{}", x?);
//! }
//! # Ok(()) }
//! ```
//!
//! The function is a function pointer (a closure that captures nothing
//! converts to one): it travels to the tasks as a function-table index, like
//! every function a library hands to tasks. Items go to the tasks in chunks
//! (`chunksize`), encoded with the codec: they should be plain values — an
//! `ObjectRef` inside an item is not kept alive on the way. At most
//! `processes` chunks run at once; a chunk whose function panics fails the
//! call (the iterator's next item) with the panic's message.

use crate::{Code, Error, ObjectRef};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, VecDeque};
use std::marker::PhantomData;
use std::time::Duration;

/// Items in one chunk, at most: a chunk is one task's argument.
pub const MAX_CHUNK: usize = 1 << 20;

/// Runs a chunk: decodes the user's function and the items, applies, and
/// encodes the results.
type Entry = fn(&[u8]) -> Result<Vec<u8>, Error>;

fn decode<T: DeserializeOwned + 'static>(bytes: &[u8], what: &str) -> Result<T, Error> {
    crate::value::decode(bytes).map_err(|e| Error::InvalidArgument(format!("wray::util::Pool: {what}: {e}")))
}

fn encode<T: Serialize + 'static>(value: &T, what: &str) -> Result<Vec<u8>, Error> {
    wray_codec::encode(value).map_err(|e| Error::InvalidArgument(format!("wray::util::Pool: {what}: {e}")))
}

/// A chunk of `map`: the function and its items.
type MapChunk<T, R> = (Code<fn(T) -> R>, Vec<T>);

/// A chunk of `starmap`: the function and its pairs.
type StarChunk<A, B, R> = (Code<fn(A, B) -> R>, Vec<(A, B)>);

fn run_map<T, R>(chunk: &[u8]) -> Result<Vec<u8>, Error>
where
    T: Serialize + DeserializeOwned + 'static,
    R: Serialize + DeserializeOwned + 'static,
{
    let (code, items): MapChunk<T, R> = decode(chunk, "a chunk")?;
    let f = code.get()?;
    let out: Vec<R> = items.into_iter().map(f).collect();
    encode(&out, "a chunk's results")
}

fn run_star<A, B, R>(chunk: &[u8]) -> Result<Vec<u8>, Error>
where
    A: Serialize + DeserializeOwned + 'static,
    B: Serialize + DeserializeOwned + 'static,
    R: Serialize + DeserializeOwned + 'static,
{
    let (code, items): StarChunk<A, B, R> = decode(chunk, "a chunk")?;
    let f = code.get()?;
    let out: Vec<R> = items.into_iter().map(|(a, b)| f(a, b)).collect();
    encode(&out, "a chunk's results")
}

/// One chunk as a task. Public only so that the options type the macro
/// makes for it is not dead code; not part of the API.
#[doc(hidden)]
#[crate::remote]
pub fn pool_chunk(entry: Code<Entry>, chunk: Vec<u8>) -> Result<Vec<u8>, Error> {
    (entry.get()?)(&chunk)
}

/// A pool of parallel tasks (Ray's `ray.util.multiprocessing.Pool`).
#[derive(Clone, Debug)]
pub struct Pool {
    processes: usize,
    cpus: f64,
}

impl Pool {
    /// A pool running at most `processes` chunks at once (0: as many as the
    /// cluster has CPUs), each task holding 1 CPU.
    pub fn new(processes: usize) -> Pool {
        let processes = if processes == 0 {
            crate::cluster_resources().get("CPU").map(|c| c.floor() as usize).unwrap_or(1).max(1)
        } else {
            processes
        };
        Pool { processes, cpus: 1.0 }
    }

    /// CPUs each task holds (fractions allowed; 0 for I/O-bound work).
    pub fn num_cpus(mut self, cpus: f64) -> Pool {
        self.cpus = cpus;
        self
    }

    /// Chunks at once.
    pub fn processes(&self) -> usize {
        self.processes
    }

    /// `f` over every item, results in the items' order (Python's
    /// `pool.map`). Chunks of about a quarter of the items per process, as
    /// Python picks them.
    pub fn map<T, R>(&self, f: fn(T) -> R, items: impl IntoIterator<Item = T>) -> Result<Vec<R>, Error>
    where
        T: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        let items: Vec<T> = items.into_iter().collect();
        let chunksize = items.len().div_ceil(4 * self.processes).max(1);
        self.imap(f, items, chunksize).collect()
    }

    /// `f` over the items lazily, `chunksize` per task, results in order
    /// (Python's `pool.imap`): at most `processes` chunks are submitted
    /// ahead of what has been read.
    pub fn imap<T, R>(&self, f: fn(T) -> R, items: impl IntoIterator<Item = T> + 'static, chunksize: usize) -> Imap<R>
    where
        T: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        Imap::new(self, Code::of(run_map::<T, R> as Entry), Code::of(f), items, chunksize, true)
    }

    /// Like [`imap`](Pool::imap), results in the order they finish
    /// (Python's `pool.imap_unordered`).
    pub fn imap_unordered<T, R>(
        &self,
        f: fn(T) -> R,
        items: impl IntoIterator<Item = T> + 'static,
        chunksize: usize,
    ) -> Imap<R>
    where
        T: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        Imap::new(self, Code::of(run_map::<T, R> as Entry), Code::of(f), items, chunksize, false)
    }

    /// `f(a, b)` over pairs, in order (Python's `pool.starmap`).
    pub fn starmap<A, B, R>(&self, f: fn(A, B) -> R, items: impl IntoIterator<Item = (A, B)>) -> Result<Vec<R>, Error>
    where
        A: Serialize + DeserializeOwned + 'static,
        B: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        let items: Vec<(A, B)> = items.into_iter().collect();
        let chunksize = items.len().div_ceil(4 * self.processes).max(1);
        Imap::new(self, Code::of(run_star::<A, B, R> as Entry), Code::of(f), items, chunksize, true).collect()
    }

    /// `f(arg)` in a task, in the background (Python's `pool.apply_async`).
    pub fn apply_async<T, R>(&self, f: fn(T) -> R, arg: T) -> Result<AsyncResult<R>, Error>
    where
        T: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        let chunk = encode(&(Code::of(f), vec![arg]), "the argument")?;
        let entry: Code<Entry> = Code::of(run_map::<T, R> as Entry);
        Ok(AsyncResult { chunk: self.submit(entry, chunk), _r: PhantomData })
    }

    /// `f(arg)` in a task, waiting for it (Python's `pool.apply`).
    pub fn apply<T, R>(&self, f: fn(T) -> R, arg: T) -> Result<R, Error>
    where
        T: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        self.apply_async(f, arg)?.get()
    }

    fn submit(&self, entry: Code<Entry>, chunk: Vec<u8>) -> ObjectRef<Vec<u8>> {
        pool_chunk::options().num_cpus(self.cpus).remote(entry, chunk)
    }
}

/// A call running in the background (Python's `AsyncResult`).
pub struct AsyncResult<R> {
    chunk: ObjectRef<Vec<u8>>,
    _r: PhantomData<fn() -> R>,
}

impl<R: DeserializeOwned + 'static> AsyncResult<R> {
    /// Waits for the result.
    pub fn get(self) -> Result<R, Error> {
        let mut out: Vec<R> = decode(&crate::get(&self.chunk)?, "a result")?;
        out.pop().ok_or_else(|| Error::InvalidArgument("wray::util::Pool: a call returned nothing".into()))
    }

    /// Whether it has finished.
    pub fn ready(&self) -> bool {
        self.wait(Duration::ZERO)
    }

    /// Waits up to `timeout`; whether it has finished.
    pub fn wait(&self, timeout: Duration) -> bool {
        !crate::wait(std::slice::from_ref(&self.chunk), 1, Some(timeout)).0.is_empty()
    }
}

/// Results of [`Pool::imap`] and [`Pool::imap_unordered`], as they come.
/// After an error it ends.
pub struct Imap<R> {
    pool: Pool,
    entry: Code<Entry>,
    /// Encoded chunks, made as they are needed.
    items: Box<dyn Iterator<Item = Result<Vec<u8>, Error>>>,
    ordered: bool,
    /// Chunks in flight, by number.
    running: BTreeMap<usize, ObjectRef<Vec<u8>>>,
    next_chunk: usize,
    /// The chunk whose results come next (ordered).
    next_out: usize,
    /// Finished chunks not yet reached (ordered).
    done: BTreeMap<usize, Vec<R>>,
    ready: VecDeque<R>,
    failed: bool,
}

impl<R: DeserializeOwned + 'static> Imap<R> {
    fn new<T: Serialize + 'static, F: 'static>(
        pool: &Pool,
        entry: Code<Entry>,
        f: Code<F>,
        items: impl IntoIterator<Item = T> + 'static,
        chunksize: usize,
        ordered: bool,
    ) -> Imap<R> {
        let size = chunksize.clamp(1, MAX_CHUNK);
        let mut items = items.into_iter();
        // Each chunk is one task's argument: (the function, its items).
        let chunks = std::iter::from_fn(move || {
            let chunk: Vec<T> = items.by_ref().take(size).collect();
            (!chunk.is_empty()).then(|| encode(&(f, chunk), "the items"))
        });
        Imap {
            pool: pool.clone(),
            entry,
            items: Box::new(chunks),
            ordered,
            running: BTreeMap::new(),
            next_chunk: 0,
            next_out: 0,
            done: BTreeMap::new(),
            ready: VecDeque::new(),
            failed: false,
        }
    }

    /// Submits chunks until `processes` are in flight or the items end.
    fn fill(&mut self) -> Result<(), Error> {
        while self.running.len() + self.done.len() < self.pool.processes {
            let Some(chunk) = self.items.next() else { break };
            self.running.insert(self.next_chunk, self.pool.submit(self.entry, chunk?));
            self.next_chunk += 1;
        }
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<(), Error> {
        let chunk = self.running.remove(&n).expect("a running chunk");
        let out: Vec<R> = decode(&crate::get(&chunk)?, "a chunk's results")?;
        self.done.insert(n, out);
        Ok(())
    }

    fn step(&mut self) -> Result<bool, Error> {
        self.fill()?;
        if self.ordered {
            if let Some(out) = self.done.remove(&self.next_out) {
                self.ready.extend(out);
                self.next_out += 1;
                return Ok(true);
            }
            if self.running.contains_key(&self.next_out) {
                self.take(self.next_out)?;
                return Ok(true);
            }
            return Ok(false);
        }
        if let Some((&n, _)) = self.done.iter().next() {
            let out = self.done.remove(&n).unwrap_or_default();
            self.ready.extend(out);
            return Ok(true);
        }
        let refs: Vec<ObjectRef<Vec<u8>>> = self.running.values().cloned().collect();
        if refs.is_empty() {
            return Ok(false);
        }
        let (first, _) = crate::wait(&refs, 1, None);
        let id = first.first().map(|r| r.id());
        let n = self.running.iter().find(|(_, r)| Some(r.id()) == id).map(|(n, _)| *n);
        if let Some(n) = n {
            self.take(n)?;
        }
        Ok(true)
    }
}

impl<R: DeserializeOwned + 'static> Iterator for Imap<R> {
    type Item = Result<R, Error>;

    fn next(&mut self) -> Option<Result<R, Error>> {
        loop {
            if let Some(r) = self.ready.pop_front() {
                return Some(Ok(r));
            }
            if self.failed {
                return None;
            }
            match self.step() {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => {
                    self.failed = true;
                    for r in self.running.values() {
                        crate::cancel(r);
                    }
                    return Some(Err(e));
                }
            }
        }
    }
}
