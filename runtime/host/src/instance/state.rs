//! The host state of one instance: what lives as long as the instance
//! (its resource table, limiter, device, checkpoint image) and what lives
//! for one call ([`Call`]).

use super::convert::{check_name, check_value, options_from_wit, to_wit_error};
use super::grants::WasiCtxSlot;
use super::sandbox::{Clock, Limiter};
use crate::bindings::wray::runtime::types;
use crate::checkpoint::Checkpoint;
use crate::services::{ArgSpec, Caller, Services, Value};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::{WasiCtxView, WasiView};
use wray_core::{Error, ObjectId, Options, limits};

/// A checked submission: its options, arguments and number.
type Submission = (Options, Vec<ArgSpec>, u64);
/// An object ref as the guest holds it: a handle in the instance's resource
/// table. Dropping the guard — by the guest, or with the whole instance —
/// releases the reference, so a guest that leaks handles or traps still
/// frees its objects.
pub struct RefGuard {
    pub(crate) id: ObjectId,
    pub(super) caller_job: wray_core::JobId,
    /// Whom to release it to; `None` once the release is handed on
    /// ([`RefGuard::into_release`]).
    services: Option<Arc<dyn Services>>,
    /// Whether its object is known to be at most [`BATCHED_RELEASE_BYTES`]
    /// (put so, read so by `tasks.get`, or a generator item handed out with
    /// its value): only then may its release wait for a batch.
    small: bool,
}

impl Drop for RefGuard {
    fn drop(&mut self) {
        if let Some(services) = &self.services {
            services.release(self.caller_job, self.id);
        }
    }
}

impl RefGuard {
    /// The reference it holds, for its holder to release later
    /// ([`State::defer_release`]): the guard no longer does.
    fn into_release(mut self) -> (wray_core::JobId, ObjectId) {
        self.services = None;
        (self.caller_job, self.id)
    }
}

/// References a guest dropped that the host releases together, under one
/// hold of the store's lock, instead of one by one: a reader of a
/// generator drops an item per item read, and a pipelining caller a result
/// per call read, and each release taken alone contended for the lock with
/// the other core storing the next (`wray microbenchmark`: async actor
/// calls and generator items, docs/BENCHMARKS.md).
pub(crate) const RELEASE_BATCH: usize = 64;

/// The largest object whose release may wait for a batch: a dropped ref
/// to anything larger — or to an object of unknown size, one never read —
/// frees it at once, so that a batch holds at most `RELEASE_BATCH` times
/// this (4 MiB) for a short while, and a loop that drops a large object
/// and makes the next reuses its memory.
pub(crate) const BATCHED_RELEASE_BYTES: usize = 64 << 10;

/// Per-instance host state (the wasmtime store's data): what lives as long
/// as the instance, and the [`Call`] running in it.
pub struct State {
    wasi: WasiCtxSlot,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) services: Arc<dyn Services>,
    /// Who runs: the task, the driver, an actor's creator, then each
    /// method's caller (set when an actor call begins; kept otherwise).
    pub(crate) caller: Caller,
    /// The current (or last) call; replaced whole when the next one begins.
    pub(crate) call: Call,
    /// Where this instance's tensors live (asked of the node on first use).
    pub(crate) device: Option<wray_gpu::Device>,
    /// Bytes of live tensors, bounded by the memory limit.
    pub(crate) tensor_bytes: usize,
    pub(super) cancel: Arc<AtomicBool>,
    /// The actor's checkpoint while a snapshot or restore runs.
    pub(super) image: Checkpoint,
    /// How many host resources the instance held when it marked them
    /// standing (`checkpoint.standing`).
    pub(super) standing: usize,
    /// References the guest dropped, not yet released
    /// ([`State::defer_release`]).
    released: Vec<(wray_core::JobId, ObjectId)>,
}

impl Drop for State {
    fn drop(&mut self) {
        self.apply_releases();
    }
}

/// What one call into an instance — `main`, a task, an actor's constructor
/// or method, a snapshot, a restore — counts and records. It is replaced
/// whole at the start of every call, so nothing of one call (a panic
/// message, a timeout, submission numbers) can leak into the next.
pub(crate) struct Call {
    /// Children submitted so far (their ids derive from the count).
    pub(super) submitted: u64,
    /// Objects put so far (their ids derive from the count).
    pub(crate) puts: u32,
    /// Items a generator task yielded so far (`tasks.yield-item`).
    pub(super) yielded: u32,
    /// The guest's panic message, reported just before it aborts.
    pub(super) panic: Option<String>,
    /// Execution time, excluding time blocked in the host.
    pub(crate) clock: Clock,
    /// Whether the epoch callback stopped the call for its time limit.
    pub(super) timed_out: bool,
    /// Whether this call is a snapshot (`checkpoint.save` is valid in it).
    pub(super) snapshotting: bool,
    /// The blocks `checkpoint.save` changed, once it has.
    pub(super) changed: Option<Vec<u32>>,
}

impl Call {
    /// A call whose clock starts now, limited to `limit`.
    pub(super) fn new(limit: Option<Duration>) -> Call {
        Call {
            submitted: 0,
            puts: 0,
            yielded: 0,
            panic: None,
            clock: Clock::started(limit),
            timed_out: false,
            snapshotting: false,
            changed: None,
        }
    }
}

impl State {
    pub(super) fn new(
        wasi: WasiCtxSlot,
        table: ResourceTable,
        memory: usize,
        services: Arc<dyn Services>,
        caller: Caller,
    ) -> State {
        let mut call = Call::new(None);
        call.clock.pause();
        State {
            wasi,
            table,
            limiter: Limiter { memory, exceeded: false, peak: 0 },
            services,
            caller,
            call,
            device: None,
            tensor_bytes: 0,
            cancel: Arc::new(AtomicBool::new(false)),
            image: Checkpoint::default(),
            standing: 0,
            released: Vec::new(),
        }
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: self.wasi.get(), table: &mut self.table }
    }
}

impl State {
    /// Stores encoded bytes that nest no refs as a new object of the caller.
    pub(super) fn put_bytes(
        &mut self,
        data: bytes::Bytes,
    ) -> wasmtime::Result<Result<Resource<RefGuard>, types::Error>> {
        self.call.puts += 1;
        let id = ObjectId::put_by(self.caller.task, self.call.puts);
        let size = data.len();
        match self.services.put(&self.caller, id, Value { data, ..Value::default() }) {
            Ok(()) => Ok(Ok(self.guard_sized(id, Some(size))?)),
            Err(e) => Ok(Err(to_wit_error(e))),
        }
    }

    /// Takes a value the guest handed over, with the refs it carries out of
    /// the guest's table into the value.
    pub(super) fn take_value(&mut self, v: types::Value) -> wasmtime::Result<Value> {
        self.apply_releases();
        let mut refs = Vec::with_capacity(v.refs.len());
        let mut guards = Vec::with_capacity(v.refs.len());
        for r in v.refs {
            let g = self.table.delete(r)?;
            refs.push(g.id);
            guards.push(g);
        }
        Ok(Value { data: bytes::Bytes::from(v.data), refs, held: crate::services::HeldRefs(Arc::new(guards)) })
    }

    /// Releases `guard`'s reference with the next batch: when the guest
    /// next puts, submits or calls, reads a generator's items, waits, looks
    /// an object up by id or ends its call, when [`RELEASE_BATCH`] are
    /// waiting, or at the next epoch tick while it computes — never later
    /// than that, so that memory a guest let go is free by the time it
    /// could notice, and within a tick for others.
    /// A guard not known to be small is released at once.
    pub(crate) fn defer_release(&mut self, guard: RefGuard) {
        if !guard.small {
            return;
        }
        self.released.push(guard.into_release());
        if self.released.len() >= RELEASE_BATCH {
            self.apply_releases();
        }
    }

    /// Releases what [`Self::defer_release`] kept.
    pub(crate) fn apply_releases(&mut self) {
        if !self.released.is_empty() {
            self.services.release_all(&self.released);
            self.released.clear();
        }
    }

    /// A handle for the guest holding a reference to `id` (taken for it
    /// already), of an object of unknown size.
    pub(crate) fn guard(&mut self, id: ObjectId) -> wasmtime::Result<Resource<RefGuard>> {
        self.guard_sized(id, None)
    }

    /// As [`Self::guard`], for an object of `size` bytes when known.
    pub(crate) fn guard_sized(&mut self, id: ObjectId, size: Option<usize>) -> wasmtime::Result<Resource<RefGuard>> {
        let small = size.is_some_and(|n| n <= BATCHED_RELEASE_BYTES);
        let guard = RefGuard { id, caller_job: self.caller.job, services: Some(self.services.clone()), small };
        Ok(self.table.push(guard)?)
    }

    /// Notes the sizes of objects the guest just read through `refs`.
    pub(super) fn note_sizes(&mut self, refs: &[Resource<RefGuard>], values: &[bytes::Bytes]) -> wasmtime::Result<()> {
        for (r, v) in refs.iter().zip(values) {
            self.table.get_mut(r)?.small = v.len() <= BATCHED_RELEASE_BYTES;
        }
        Ok(())
    }

    pub(super) fn args(&mut self, args: Vec<types::Arg>) -> wasmtime::Result<Result<Vec<ArgSpec>, Error>> {
        if args.len() > limits::MAX_ARGS {
            return Ok(Err(Error::InvalidArgument(format!(
                "{} arguments; at most {} are allowed",
                args.len(),
                limits::MAX_ARGS
            ))));
        }
        let mut out = Vec::with_capacity(args.len());
        for a in args {
            out.push(match a {
                types::Arg::Value(v) => {
                    if let Err(e) = check_value(&v) {
                        return Ok(Err(e));
                    }
                    ArgSpec::Value(self.take_value(v)?)
                }
                types::Arg::Object(r) => ArgSpec::Object(self.table.get(&r)?.id),
            });
        }
        Ok(Ok(out))
    }

    /// What submitting a task, creating an actor and calling a method share:
    /// check the name, the options (tasks and actors) and the arguments, and
    /// number the submission (child ids derive from the number).
    pub(super) fn submission(
        &mut self,
        what: &str,
        name: &str,
        options: Option<(types::Options, bool)>,
        args: Vec<types::Arg>,
    ) -> wasmtime::Result<Result<Submission, Error>> {
        self.apply_releases();
        let options = match check_name(what, name).and_then(|()| match options {
            Some((o, is_actor)) => options_from_wit(o, is_actor).and_then(|o| inherit_env(&self.caller.env, o)),
            None => Ok(Options::default()),
        }) {
            Ok(o) => o,
            Err(e) => return Ok(Err(e)),
        };
        let args = match self.args(args)? {
            Ok(a) => a,
            Err(e) => return Ok(Err(e)),
        };
        self.call.submitted += 1;
        Ok(Ok((options, args, self.call.submitted)))
    }

    pub(super) fn ids(&self, refs: &[Resource<RefGuard>]) -> wasmtime::Result<Vec<ObjectId>> {
        if refs.len() > limits::MAX_REFS_PER_CALL {
            wasmtime::bail!("{} refs in one call; at most {} are allowed", refs.len(), limits::MAX_REFS_PER_CALL);
        }
        refs.iter().map(|r| Ok(self.table.get(r)?.id)).collect()
    }
}

impl State {
    /// Whether the instance may hand over a snapshot now: only inside
    /// `entry.snapshot`, and only holding no host resource (a restored
    /// instance would not have it).
    ///
    /// Counting is enough here: which handles those are matters only to
    /// the guest itself (a guest that swapped a standing handle for another
    /// confuses only its own restored instance).
    pub(super) fn check_saveable(&mut self) -> Result<(), Error> {
        if !self.call.snapshotting || self.call.changed.is_some() {
            return Err(Error::InvalidArgument("checkpoint.save is valid once inside entry.snapshot".into()));
        }
        let held = self.table.iter_mut().count();
        if held > self.standing {
            return Err(Error::InvalidArgument(format!(
                "the actor holds {} host resource(s) (object refs, tensors, open files or streams), which a memory snapshot cannot keep",
                held - self.standing
            )));
        }
        Ok(())
    }
}

/// `options` with the submitting task's or actor's own environment
/// variables under its own (a name in both keeps the submission's value),
/// as Ray's `runtime_env` is inherited by what a task submits; checked
/// again, since together they may pass the limits.
fn inherit_env(parent: &[(String, String)], mut options: Options) -> Result<Options, Error> {
    if parent.is_empty() {
        return Ok(options);
    }
    options.env = Options::env_over(parent, std::mem::take(&mut options.env));
    Options::check_env(&options.env)?;
    Ok(options)
}
