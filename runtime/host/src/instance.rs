//! One sandboxed instance and the host side of the `wray:runtime` imports.

use crate::bindings::Job;
use crate::bindings::wray::runtime::{actors, checkpoint, cluster, tasks, types};
use crate::checkpoint::{Checkpoint, MAX_LOAD_CHUNK};
use crate::component::JobComponent;
use crate::engine::Engine;
use crate::services::{ArgSpec, Caller, Services, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};
use wasmtime::{AsContext, Store, StoreContextMut, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wray_core::{ActorId, Error, ObjectId, Options, Resources, TaskId, limits};

/// A checked submission: its options, arguments and number.
type Submission = (Options, Vec<ArgSpec>, u64);

/// Table elements an instance may grow to (function references; a Rust
/// guest needs a few hundred).
pub const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// Where an instance's stdout and stderr go.
#[derive(Clone, Debug, Default)]
pub enum Output {
    /// To the host process's own stdout/stderr, as the guest writes (what
    /// `wray run` uses: output streams live).
    #[default]
    Inherit,
    /// Discarded.
    Null,
    /// Into a shared in-memory buffer (for embedders and tests); both streams
    /// go to the same buffer.
    Capture(MemoryOutputPipe),
    /// Sent, chunk by chunk as the guest writes, into a channel (a head node
    /// streams a remote job's output back this way); both streams.
    Channel(tokio::sync::mpsc::UnboundedSender<Vec<u8>>),
}

impl Output {
    /// Writes bytes a guest printed elsewhere (a task that ran on another
    /// node) where this output goes.
    pub fn write(&self, bytes: &[u8]) {
        match self {
            Output::Inherit => {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(bytes).and_then(|()| out.flush());
            }
            Output::Null => {}
            Output::Capture(pipe) => {
                use wasmtime_wasi::p2::OutputStream;
                // Full: the rest is dropped, as for the guest's own writes.
                let _ = pipe.clone().write(bytes::Bytes::copy_from_slice(bytes));
            }
            Output::Channel(tx) => {
                let _ = tx.send(bytes.to_vec());
            }
        }
    }
}

/// Writes into an output channel; never blocks (the channel is unbounded, as
/// the guest's own writes are bounded by its time limit and the peer reads
/// continuously).
struct ChannelWriter(tokio::sync::mpsc::UnboundedSender<Vec<u8>>);

impl tokio::io::AsyncWrite for ChannelWriter {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        // A closed channel means nobody listens any more: drop the output.
        let _ = self.0.send(buf.to_vec());
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// Bytes a guest may have in flight to an output channel before its write
/// waits.
const OUTPUT_BUDGET: usize = 64 * 1024;

/// Capabilities a job grants its instances. Nothing by default: no files,
/// no environment, no network.
#[derive(Clone, Debug, Default)]
pub struct Grants {
    /// Host directories made visible: `(host path, guest path)`.
    pub dirs: Vec<(PathBuf, String)>,
    /// Environment variables.
    pub env: Vec<(String, String)>,
    /// Where output goes.
    pub output: Output,
}

/// Limits of one instance.
#[derive(Clone, Copy, Debug, Default)]
pub struct InstanceLimits {
    /// Linear memory, in bytes (none: the 4 GiB of wasm32).
    pub memory: Option<u64>,
    /// Execution time of one call (none: unlimited). Time blocked in
    /// `get`/`wait` does not count.
    pub time: Option<Duration>,
}

/// Why a call into an instance failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CallError {
    /// The guest returned an error (a `Result::Err`, a missing function).
    #[error("{0}")]
    Guest(String),
    /// The guest panicked; the message is the panic's.
    #[error("{0}")]
    Panic(String),
    /// The guest trapped or ran past a limit; the instance is unusable.
    #[error("{0}")]
    Trap(String),
    /// The call was cancelled while it ran.
    #[error("cancelled")]
    Cancelled,
    /// The instance could not be created.
    #[error("cannot instantiate: {0}")]
    Instantiate(String),
}

impl CallError {
    /// Whether the instance must be discarded (it trapped).
    pub fn poisons_instance(&self) -> bool {
        matches!(self, CallError::Panic(_) | CallError::Trap(_) | CallError::Cancelled)
    }
}

/// An object ref as the guest holds it: a handle in the instance's resource
/// table. Dropping the guard — by the guest, or with the whole instance —
/// releases the reference, so a guest that leaks handles or traps still
/// frees its objects.
pub struct RefGuard {
    pub(crate) id: ObjectId,
    caller_job: wray_core::JobId,
    services: Arc<dyn Services>,
}

impl Drop for RefGuard {
    fn drop(&mut self) {
        self.services.release(self.caller_job, self.id);
    }
}

/// Enforces the memory limit and remembers that it did, so the failure can
/// be named.
pub(crate) struct Limiter {
    pub(crate) memory: usize,
    exceeded: bool,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory {
            self.exceeded = true;
            wasmtime::bail!(
                "memory limit exceeded: the instance tried to grow its memory from {current} to {desired} bytes, over its limit of {} bytes",
                self.memory
            );
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// Execution time of the current call, excluding time blocked in the host.
#[derive(Default)]
pub(crate) struct Clock {
    used: Duration,
    running_since: Option<Instant>,
    limit: Option<Duration>,
}

impl Clock {
    fn start(&mut self, limit: Option<Duration>) {
        *self = Clock { used: Duration::ZERO, running_since: Some(Instant::now()), limit };
    }
    pub(crate) fn pause(&mut self) {
        if let Some(t) = self.running_since.take() {
            self.used += t.elapsed();
        }
    }
    pub(crate) fn resume(&mut self) {
        self.running_since = Some(Instant::now());
    }
    fn used(&self) -> Duration {
        self.used + self.running_since.map_or(Duration::ZERO, |t| t.elapsed())
    }
}

/// Per-instance host state (the wasmtime store's data).
pub struct State {
    wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) services: Arc<dyn Services>,
    pub(crate) caller: Caller,
    /// Children submitted so far by the current task (ids derive from it).
    submitted: u64,
    /// Objects put so far by the current task.
    pub(crate) puts: u32,
    panic: Option<String>,
    pub(crate) clock: Clock,
    /// Where this instance's tensors live (asked of the node on first use).
    pub(crate) device: Option<wray_gpu::Device>,
    /// Bytes of live tensors, bounded by the memory limit.
    pub(crate) tensor_bytes: usize,
    timed_out: bool,
    cancel: Arc<AtomicBool>,
    /// The actor's checkpoint while a snapshot or restore runs.
    image: Checkpoint,
    /// Whether a snapshot is running (`checkpoint.save` is valid).
    snapshotting: bool,
    /// How many host resources the instance held when it marked them
    /// standing (`checkpoint.standing`).
    standing: usize,
    /// The blocks `checkpoint.save` changed, once it has.
    changed: Option<Vec<u32>>,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Builds the linker every job component is linked against: WASI p2 (what
/// the Rust standard library imports) and the `wray:runtime` interfaces.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<State>> {
    let mut linker = Linker::new(engine.wasmtime());
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    Job::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)?;
    // `put-buffer` replaces the generated binding with one that reads the
    // guest's bytes in place (a `WasmList` view) and copies them once, into
    // a recycled buffer, instead of into a fresh `Vec` first.
    linker.allow_shadowing(true);
    linker.instance("wray:runtime/tasks@0.1.0")?.func_wrap_async("put-buffer", put_buffer_in_place)?;
    // Likewise a snapshot is compared with the last one where it lies.
    linker.instance("wray:runtime/checkpoint@0.1.0")?.func_wrap_async("save", save_in_place)?;
    linker.allow_shadowing(false);
    Ok(linker)
}

type PutResult = wasmtime::Result<(Result<Resource<RefGuard>, types::Error>,)>;

fn put_buffer_in_place(
    mut store: StoreContextMut<'_, State>,
    (data,): (wasmtime::component::WasmList<u8>,),
) -> Box<dyn std::future::Future<Output = PutResult> + Send + '_> {
    Box::new(async move {
        let bytes = {
            let slice = data.as_le_slice(store.as_context());
            if let Err(e) = check_size(slice.len()) {
                return Ok((Err(to_wit_error(e)),));
            }
            crate::buffers::copy_to_bytes(slice)
        };
        Ok((store.data_mut().put_bytes(bytes)?,))
    })
}

type SaveResult = wasmtime::Result<(Result<(), types::Error>,)>;

fn save_in_place(
    mut store: StoreContextMut<'_, State>,
    (base, memory): (u32, wasmtime::component::WasmList<u8>),
) -> Box<dyn std::future::Future<Output = SaveResult> + Send + '_> {
    Box::new(async move {
        // The image is taken out of the state while the guest's memory is
        // borrowed for reading.
        if let Err(e) = store.data_mut().check_saveable() {
            return Ok((Err(to_wit_error(e)),));
        }
        let mut image = std::mem::take(&mut store.data_mut().image);
        let recorded = image.record(base, memory.as_le_slice(store.as_context()));
        let s = store.data_mut();
        s.image = image;
        Ok((recorded.map(|changed| s.changed = Some(changed)).map_err(to_wit_error),))
    })
}

/// A live instance of a job component.
pub struct Instance {
    store: Store<State>,
    job: Job,
    name: Arc<str>,
}

impl Instance {
    /// Instantiates `component` for `caller`. A fresh instance costs
    /// microseconds (pooling allocator, copy-on-write memory images).
    pub async fn new(
        component: &JobComponent,
        services: Arc<dyn Services>,
        caller: Caller,
        limits: InstanceLimits,
        grants: &Grants,
    ) -> Result<Instance, CallError> {
        let engine = component.pre.engine();
        let wasi = wasi_ctx(grants).map_err(|e| CallError::Instantiate(format!("{e:#}")))?;
        let memory = limits
            .memory
            .map_or(crate::engine::MAX_MEMORY_SIZE, |m| m.min(crate::engine::MAX_MEMORY_SIZE as u64) as usize);
        let mut table = ResourceTable::new();
        table.set_max_capacity(limits::MAX_LIVE_HANDLES);
        let state = State {
            wasi,
            table,
            limiter: Limiter { memory, exceeded: false },
            services,
            caller,
            submitted: 0,
            puts: 0,
            panic: None,
            clock: Clock::default(),
            device: None,
            tensor_bytes: 0,
            timed_out: false,
            cancel: Arc::new(AtomicBool::new(false)),
            image: Checkpoint::default(),
            snapshotting: false,
            standing: 0,
            changed: None,
        };
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limiter);
        // What the guest may hand the host in one call (a task's result, a
        // put): wasmtime's default of 128 MiB would cap objects below what
        // wray promises; the instance's memory limit bounds it anyway.
        store.set_hostcall_fuel(wray_core::limits::MAX_OBJECT_SIZE + (1 << 20));
        store.set_max_component_handles(limits::MAX_LIVE_HANDLES);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(on_epoch);
        let job =
            component.pre.instantiate_async(&mut store).await.map_err(|e| CallError::Instantiate(format!("{e:#}")))?;
        Ok(Instance { store, job, name: component.name().into() })
    }

    /// A flag that, once set, interrupts the running call within one epoch
    /// tick (`wray::cancel`, Ctrl-C).
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.store.data().cancel.clone()
    }

    /// Makes `flag` the one that interrupts this instance (shared with the
    /// task's or job's canceller).
    pub fn set_cancel_flag(&mut self, flag: Arc<AtomicBool>) {
        self.store.data_mut().cancel = flag;
    }

    /// Prepares the state for a new call by `caller`.
    fn begin(&mut self, caller: Option<Caller>, limit: Option<Duration>) {
        let s = self.store.data_mut();
        if let Some(c) = caller {
            s.caller = c;
            s.submitted = 0;
            s.puts = 0;
        }
        s.panic = None;
        s.timed_out = false;
        s.clock.start(limit);
    }

    /// Runs the driver's `main`.
    pub async fn run_main(&mut self, args: Vec<String>, time: Option<Duration>) -> Result<(), CallError> {
        self.begin(None, time);
        let r = self.job.wray_runtime_entry().call_main(&mut self.store, &args).await;
        self.finish(r).and_then(|r| r.map_err(CallError::Guest))
    }

    /// Runs a remote function; the instance is meant to be dropped after.
    pub async fn run_task(
        &mut self,
        function: &str,
        args: Vec<bytes::Bytes>,
        time: Option<Duration>,
    ) -> Result<Value, CallError> {
        self.begin(None, time);
        let args: Vec<Vec<u8>> = args.into_iter().map(Vec::from).collect();
        let r = self.job.wray_runtime_entry().call_run_task(&mut self.store, function, &args).await;
        let v = self.finish(r)?.map_err(CallError::Guest)?;
        self.take_result(v)
    }

    /// Runs the actor constructor of `class`.
    pub async fn actor_new(
        &mut self,
        class: &str,
        args: Vec<bytes::Bytes>,
        time: Option<Duration>,
    ) -> Result<(), CallError> {
        self.begin(None, time);
        let args: Vec<Vec<u8>> = args.into_iter().map(Vec::from).collect();
        let r = self.job.wray_runtime_entry().call_actor_new(&mut self.store, class, &args).await;
        self.finish(r).and_then(|r| r.map_err(CallError::Guest))
    }

    /// Calls a method of the instance's actor as task `caller`.
    pub async fn actor_call(
        &mut self,
        caller: Caller,
        method: &str,
        args: Vec<bytes::Bytes>,
        time: Option<Duration>,
    ) -> Result<Value, CallError> {
        self.begin(Some(caller), time);
        let args: Vec<Vec<u8>> = args.into_iter().map(Vec::from).collect();
        let r = self.job.wray_runtime_entry().call_actor_call(&mut self.store, method, &args).await;
        let v = self.finish(r)?.map_err(CallError::Guest)?;
        self.take_result(v)
    }

    /// Snapshots the actor's memory into `image` (the previous snapshot,
    /// or an empty one) between two calls; returns the blocks that
    /// changed. A refused snapshot (the instance holds host resources)
    /// leaves `image` as it was and the instance usable; if the guest
    /// failed after handing its memory over, `image` is emptied, as it may
    /// no longer match what a copy elsewhere has.
    pub async fn snapshot(&mut self, image: &mut Checkpoint, time: Option<Duration>) -> Result<Vec<u32>, CallError> {
        self.begin(None, time);
        let s = self.store.data_mut();
        s.image = std::mem::take(image);
        s.snapshotting = true;
        let r = self.job.wray_runtime_entry().call_snapshot(&mut self.store).await;
        let s = self.store.data_mut();
        s.snapshotting = false;
        let changed = s.changed.take();
        *image = std::mem::take(&mut s.image);
        match (self.finish(r).and_then(|r| r.map_err(CallError::Guest)), changed) {
            (Ok(()), Some(changed)) => Ok(changed),
            (Ok(()), None) => Err(CallError::Guest("the snapshot handed over no memory".into())),
            (Err(e), saved) => {
                if saved.is_some() {
                    *image = Checkpoint::default();
                }
                Err(e)
            }
        }
    }

    /// Replaces this fresh instance's memory with `image`: the actor goes on
    /// from the snapshot, without its constructor running.
    pub async fn restore(&mut self, image: &mut Checkpoint, time: Option<Duration>) -> Result<(), CallError> {
        self.begin(None, time);
        self.store.data_mut().image = std::mem::take(image);
        let r = self.job.wray_runtime_entry().call_restore(&mut self.store).await;
        *image = std::mem::take(&mut self.store.data_mut().image);
        self.finish(r).and_then(|r| r.map_err(CallError::Guest))
    }

    fn take_result(&mut self, v: types::Value) -> Result<Value, CallError> {
        self.store.data_mut().take_value(v).map_err(|e| CallError::Trap(format!("invalid result: {e:#}")))
    }

    /// Turns a wasmtime error into the failure the user should read.
    fn finish<T>(&mut self, r: wasmtime::Result<T>) -> Result<T, CallError> {
        let s = self.store.data_mut();
        s.clock.pause();
        let e = match r {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if s.cancel.load(Ordering::Relaxed) {
            return Err(CallError::Cancelled);
        }
        if let Some(msg) = s.panic.take() {
            return Err(CallError::Panic(msg));
        }
        if s.timed_out {
            let limit = s.clock.limit.unwrap_or_default();
            return Err(CallError::Trap(format!(
                "time limit exceeded: ran for more than {limit:?} (set with time_limit / --timeout)"
            )));
        }
        if s.limiter.exceeded {
            return Err(CallError::Trap(format!(
                "memory limit exceeded: the instance needed more than its limit of {} bytes (set with memory_limit / --memory-limit)",
                s.limiter.memory
            )));
        }
        let what = match e.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::StackOverflow) => {
                "stack overflow: the guest's call stack exhausted its limit (unbounded recursion?)".to_string()
            }
            Some(t) => format!("trapped in {}: {t}", self.name),
            None if ["store handle limit exceeded", "resource table has no free keys"]
                .iter()
                .any(|m| format!("{e:#}").contains(m)) =>
            {
                format!(
                    "too many live handles: the instance held {} object refs, tensors and other handles at once (drop the ones you no longer need)",
                    limits::MAX_LIVE_HANDLES
                )
            }
            None => format!("{e:#}"),
        };
        Err(CallError::Trap(what))
    }
}

fn on_epoch(mut ctx: StoreContextMut<'_, State>) -> wasmtime::Result<UpdateDeadline> {
    let s = ctx.data_mut();
    if s.cancel.load(Ordering::Relaxed) {
        return Ok(UpdateDeadline::Interrupt);
    }
    if let Some(limit) = s.clock.limit
        && s.clock.used() > limit
    {
        s.timed_out = true;
        return Ok(UpdateDeadline::Interrupt);
    }
    // Yield so other tasks on this thread make progress: a busy guest costs
    // its neighbours at most one tick of latency.
    Ok(UpdateDeadline::Yield(1))
}

fn wasi_ctx(grants: &Grants) -> wasmtime::Result<WasiCtx> {
    let mut b = WasiCtxBuilder::new();
    match &grants.output {
        Output::Inherit => {
            b.inherit_stdout().inherit_stderr();
        }
        Output::Null => {}
        Output::Capture(pipe) => {
            b.stdout(pipe.clone()).stderr(pipe.clone());
        }
        Output::Channel(tx) => {
            use wasmtime_wasi::cli::AsyncStdoutStream;
            b.stdout(AsyncStdoutStream::new(OUTPUT_BUDGET, ChannelWriter(tx.clone())));
            b.stderr(AsyncStdoutStream::new(OUTPUT_BUDGET, ChannelWriter(tx.clone())));
        }
    }
    for (k, v) in &grants.env {
        b.env(k, v);
    }
    for (host, guest) in &grants.dirs {
        b.preopened_dir(host, guest, FsPerms::ReadWrite)
            .map_err(|e| wasmtime::format_err!("cannot grant directory {}: {e:#}", host.display()))?;
    }
    Ok(b.build())
}

fn from_wit_id(id: types::ObjectId) -> ObjectId {
    ObjectId { task: TaskId::from_halves(id.task_hi, id.task_lo), index: id.index }
}

fn to_wit_id(id: ObjectId) -> types::ObjectId {
    let (task_hi, task_lo) = id.task.halves();
    types::ObjectId { task_hi, task_lo, index: id.index }
}

fn from_wit_actor(a: types::ActorId) -> ActorId {
    ActorId::from_halves(a.hi, a.lo)
}

fn to_wit_actor(a: ActorId) -> types::ActorId {
    let (hi, lo) = a.halves();
    types::ActorId { hi, lo }
}

pub(crate) fn to_wit_error(e: Error) -> types::Error {
    match e {
        Error::TaskFailed { function, message } => types::Error::TaskFailed(types::TaskFailure { function, message }),
        Error::ActorDied(m) => types::Error::ActorDied(m),
        Error::ObjectLost(m) => types::Error::ObjectLost(m),
        Error::Timeout => types::Error::Timeout,
        Error::Cancelled => types::Error::Cancelled,
        Error::InvalidArgument(m) => types::Error::InvalidArgument(m),
        Error::StoreFull(m) => types::Error::StoreFull(m),
    }
}

fn resources_to_wit(r: Resources) -> Vec<types::ResourceAmount> {
    r.iter().map(|(name, amount)| types::ResourceAmount { name: name.to_string(), amount }).collect()
}

/// Checks a placement group's bundles: each a non-empty set of valid
/// amounts, at most [`limits::MAX_BUNDLES`] of them.
fn bundles_from_wit(bundles: Vec<Vec<types::ResourceAmount>>) -> Result<Vec<Resources>, Error> {
    if bundles.is_empty() || bundles.len() > limits::MAX_BUNDLES {
        return Err(Error::InvalidArgument(format!("a placement group has 1 to {} bundles", limits::MAX_BUNDLES)));
    }
    let mut out = Vec::with_capacity(bundles.len());
    for b in bundles {
        let mut r = Resources::new();
        for a in b {
            check_name("resource name", &a.name)?;
            let amount = Options::check_amount(&format!("resource {:?}", a.name), a.amount)?;
            r.set(&a.name, r.get(&a.name) + amount);
        }
        if r.is_empty() {
            return Err(Error::InvalidArgument("a bundle must reserve some resource".into()));
        }
        out.push(r);
    }
    Ok(out)
}

/// Converts and checks the options a guest passed.
fn options_from_wit(o: types::Options, is_actor: bool) -> Result<Options, Error> {
    let mut resources = Resources::new();
    // Ray's defaults: a task holds one CPU while it runs; an actor holds
    // none between calls (so idle actors do not starve tasks).
    let default_cpus = if is_actor { 0.0 } else { 1.0 };
    let cpus = Options::check_amount("num_cpus", o.num_cpus.unwrap_or(default_cpus))?;
    resources.set(wray_core::CPU, cpus);
    for r in o.resources {
        check_name("resource name", &r.name)?;
        let amount = Options::check_amount(&format!("resource {:?}", r.name), r.amount)?;
        resources.set(&r.name, resources.get(&r.name) + amount);
    }
    if let Some(name) = &o.name {
        check_name("actor name", name)?;
    }
    if o.max_concurrency == Some(0) {
        return Err(Error::InvalidArgument("max_concurrency must be at least 1".into()));
    }
    if o.memory_limit == Some(0) {
        return Err(Error::InvalidArgument("memory_limit must be more than 0 bytes".into()));
    }
    if o.detached && !(is_actor && o.name.is_some()) {
        return Err(Error::InvalidArgument("only a named actor can be detached".into()));
    }
    let placement = o.placement.map(|b| (b.group, b.index));
    if let Some((group, index)) = placement {
        resources = resources.in_bundle(group, index);
    }
    Ok(Options {
        resources,
        placement,
        detached: o.detached,
        memory_limit: o.memory_limit,
        time_limit: o.time_limit_ms.map(Duration::from_millis),
        max_retries: o.max_retries.unwrap_or(wray_core::DEFAULT_MAX_RETRIES),
        retry_exceptions: o.retry_exceptions,
        name: o.name,
        max_concurrency: o.max_concurrency.unwrap_or(1),
        max_restarts: o.max_restarts.unwrap_or(0),
        max_task_retries: o.max_task_retries.unwrap_or(0),
        checkpoint_every: o.checkpoint_every.unwrap_or(0),
    })
}

fn check_name(what: &str, name: &str) -> Result<(), Error> {
    if name.is_empty() || name.len() > limits::MAX_NAME_LEN {
        return Err(Error::InvalidArgument(format!("{what} must be 1 to {} bytes long", limits::MAX_NAME_LEN)));
    }
    Ok(())
}

impl State {
    /// Stores encoded bytes that nest no refs as a new object of the caller.
    fn put_bytes(&mut self, data: bytes::Bytes) -> wasmtime::Result<Result<Resource<RefGuard>, types::Error>> {
        self.puts += 1;
        let id = ObjectId::put_by(self.caller.task, self.puts);
        match self.services.put(&self.caller, id, Value { data, ..Value::default() }) {
            Ok(()) => Ok(Ok(self.guard(id)?)),
            Err(e) => Ok(Err(to_wit_error(e))),
        }
    }

    /// Takes a value the guest handed over, with the refs it carries out of
    /// the guest's table into the value.
    fn take_value(&mut self, v: types::Value) -> wasmtime::Result<Value> {
        let mut refs = Vec::with_capacity(v.refs.len());
        let mut guards = Vec::with_capacity(v.refs.len());
        for r in v.refs {
            let g = self.table.delete(r)?;
            refs.push(g.id);
            guards.push(g);
        }
        Ok(Value { data: bytes::Bytes::from(v.data), refs, held: crate::services::HeldRefs(Arc::new(guards)) })
    }

    pub(crate) fn guard(&mut self, id: ObjectId) -> wasmtime::Result<Resource<RefGuard>> {
        let guard = RefGuard { id, caller_job: self.caller.job, services: self.services.clone() };
        Ok(self.table.push(guard)?)
    }

    fn args(&mut self, args: Vec<types::Arg>) -> wasmtime::Result<Result<Vec<ArgSpec>, Error>> {
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
    fn submission(
        &mut self,
        what: &str,
        name: &str,
        options: Option<(types::Options, bool)>,
        args: Vec<types::Arg>,
    ) -> wasmtime::Result<Result<Submission, Error>> {
        let options = match check_name(what, name).and_then(|()| match options {
            Some((o, is_actor)) => options_from_wit(o, is_actor),
            None => Ok(Options::default()),
        }) {
            Ok(o) => o,
            Err(e) => return Ok(Err(e)),
        };
        let args = match self.args(args)? {
            Ok(a) => a,
            Err(e) => return Ok(Err(e)),
        };
        self.submitted += 1;
        Ok(Ok((options, args, self.submitted)))
    }

    fn ids(&self, refs: &[Resource<RefGuard>]) -> wasmtime::Result<Vec<ObjectId>> {
        if refs.len() > limits::MAX_REFS_PER_CALL {
            wasmtime::bail!("{} refs in one call; at most {} are allowed", refs.len(), limits::MAX_REFS_PER_CALL);
        }
        refs.iter().map(|r| Ok(self.table.get(r)?.id)).collect()
    }
}

fn check_size(len: usize) -> Result<(), Error> {
    if len > limits::MAX_OBJECT_SIZE {
        return Err(Error::InvalidArgument(format!(
            "a value of {len} bytes exceeds the object size limit of {} bytes",
            limits::MAX_OBJECT_SIZE
        )));
    }
    Ok(())
}

fn check_value(v: &types::Value) -> Result<(), Error> {
    check_size(v.data.len())?;
    if v.refs.len() > limits::MAX_NESTED_REFS {
        return Err(Error::InvalidArgument(format!(
            "a value nesting {} refs exceeds the limit of {}",
            v.refs.len(),
            limits::MAX_NESTED_REFS
        )));
    }
    Ok(())
}

impl types::Host for State {}

impl State {
    /// Whether the instance may hand over a snapshot now: only inside
    /// `entry.snapshot`, and only holding no host resource (a restored
    /// instance would not have it).
    ///
    /// Counting is enough here: which handles those are matters only to
    /// the guest itself (a guest that swapped a standing handle for another
    /// confuses only its own restored instance).
    fn check_saveable(&mut self) -> Result<(), Error> {
        if !self.snapshotting || self.changed.is_some() {
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

impl checkpoint::Host for State {
    async fn standing(&mut self) -> wasmtime::Result<()> {
        self.standing = self.table.iter_mut().count();
        Ok(())
    }

    async fn save(&mut self, base: u32, memory: Vec<u8>) -> wasmtime::Result<Result<(), types::Error>> {
        // The linker serves `save` with `save_in_place`; this binding is
        // what a linker without that override would use.
        let saved = self.check_saveable().and_then(|()| self.image.record(base, &memory));
        Ok(saved.map(|changed| self.changed = Some(changed)).map_err(to_wit_error))
    }

    async fn image(&mut self) -> wasmtime::Result<Result<(u32, u64, u64), types::Error>> {
        let image = &self.image;
        if image.is_empty() {
            return Ok(Err(types::Error::InvalidArgument("there is no checkpoint to restore".into())));
        }
        Ok(Ok((image.base, image.memory_size, image.data.len() as u64)))
    }

    async fn load(&mut self, offset: u64, len: u32) -> wasmtime::Result<Result<Vec<u8>, types::Error>> {
        let data = &self.image.data;
        let range = usize::try_from(offset)
            .ok()
            .and_then(|start| Some(start..start.checked_add(len as usize)?))
            .filter(|r| len <= MAX_LOAD_CHUNK && r.end <= data.len());
        Ok(match range {
            Some(r) => Ok(data[r].to_vec()),
            None => Err(types::Error::InvalidArgument(format!(
                "cannot load {len} bytes at {offset} of a checkpoint of {} bytes (at most {MAX_LOAD_CHUNK} per call)",
                data.len()
            ))),
        })
    }
}

impl types::HostObjectRef for State {
    async fn id(&mut self, r: Resource<RefGuard>) -> wasmtime::Result<types::ObjectId> {
        Ok(to_wit_id(self.table.get(&r)?.id))
    }

    async fn clone_ref(&mut self, r: Resource<RefGuard>) -> wasmtime::Result<Resource<RefGuard>> {
        let id = self.table.get(&r)?.id;
        // The caller holds a ref, so the object exists and is this job's.
        self.services.add_ref(self.caller.job, id).map_err(|e| wasmtime::format_err!("clone-ref: {e}"))?;
        self.guard(id)
    }

    async fn from_id(&mut self, id: types::ObjectId) -> wasmtime::Result<Result<Resource<RefGuard>, types::Error>> {
        let id = from_wit_id(id);
        match self.services.add_ref(self.caller.job, id) {
            Ok(()) => Ok(Ok(self.guard(id)?)),
            Err(e) => Ok(Err(to_wit_error(e))),
        }
    }

    async fn drop(&mut self, r: Resource<RefGuard>) -> wasmtime::Result<()> {
        // Dropping the guard releases the reference.
        self.table.delete(r)?;
        Ok(())
    }
}

impl tasks::Host for State {
    async fn submit(
        &mut self,
        function: String,
        args: Vec<types::Arg>,
        options: types::Options,
    ) -> wasmtime::Result<Result<Resource<RefGuard>, types::Error>> {
        let (options, args, seq) = match self.submission("function name", &function, Some((options, false)), args)? {
            Ok(s) => s,
            Err(e) => return Ok(Err(to_wit_error(e))),
        };
        self.clock.pause();
        let r = self.services.submit(&self.caller, seq, function, args, options).await;
        self.clock.resume();
        match r {
            Ok(id) => Ok(Ok(self.guard(id)?)),
            Err(e) => Ok(Err(to_wit_error(e))),
        }
    }

    async fn get(
        &mut self,
        refs: Vec<Resource<RefGuard>>,
        timeout_ms: Option<u64>,
    ) -> wasmtime::Result<Result<Vec<Vec<u8>>, types::Error>> {
        let ids = self.ids(&refs)?;
        self.clock.pause();
        let r = self.services.get(&self.caller, ids, timeout_ms.map(Duration::from_millis)).await;
        self.clock.resume();
        Ok(r.map(|vs| vs.into_iter().map(|v| v.to_vec()).collect()).map_err(to_wit_error))
    }

    async fn wait(
        &mut self,
        refs: Vec<Resource<RefGuard>>,
        num_returns: u32,
        timeout_ms: Option<u64>,
    ) -> wasmtime::Result<Result<Vec<bool>, types::Error>> {
        let ids = self.ids(&refs)?;
        self.clock.pause();
        let r =
            self.services.wait(&self.caller, ids, num_returns as usize, timeout_ms.map(Duration::from_millis)).await;
        self.clock.resume();
        Ok(r.map_err(to_wit_error))
    }

    async fn put(&mut self, value: types::Value) -> wasmtime::Result<Result<Resource<RefGuard>, types::Error>> {
        if let Err(e) = check_value(&value) {
            return Ok(Err(to_wit_error(e)));
        }
        self.puts += 1;
        let id = ObjectId::put_by(self.caller.task, self.puts);
        let value = self.take_value(value)?;
        match self.services.put(&self.caller, id, value) {
            Ok(()) => Ok(Ok(self.guard(id)?)),
            Err(e) => Ok(Err(to_wit_error(e))),
        }
    }

    /// Not reached at run time: `linker` shadows it with
    /// `put_buffer_in_place`. Kept correct for completeness.
    async fn put_buffer(&mut self, data: Vec<u8>) -> wasmtime::Result<Result<Resource<RefGuard>, types::Error>> {
        if let Err(e) = check_size(data.len()) {
            return Ok(Err(to_wit_error(e)));
        }
        self.put_bytes(bytes::Bytes::from(data))
    }

    async fn cancel(&mut self, r: Resource<RefGuard>) -> wasmtime::Result<Result<(), types::Error>> {
        let id = self.table.get(&r)?.id;
        Ok(self.services.cancel(&self.caller, id).map_err(to_wit_error))
    }

    async fn report_panic(&mut self, message: String) -> wasmtime::Result<()> {
        let mut message = message;
        if message.len() > limits::MAX_PANIC_MESSAGE {
            let mut cut = limits::MAX_PANIC_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str("...");
        }
        self.panic = Some(message);
        Ok(())
    }
}

impl actors::Host for State {
    async fn create(
        &mut self,
        class: String,
        args: Vec<types::Arg>,
        options: types::Options,
    ) -> wasmtime::Result<Result<types::ActorId, types::Error>> {
        let (options, args, seq) = match self.submission("class name", &class, Some((options, true)), args)? {
            Ok(s) => s,
            Err(e) => return Ok(Err(to_wit_error(e))),
        };
        let r = self.services.create_actor(&self.caller, seq, class, args, options).await;
        Ok(r.map(to_wit_actor).map_err(to_wit_error))
    }

    async fn call(
        &mut self,
        actor: types::ActorId,
        method: String,
        args: Vec<types::Arg>,
    ) -> wasmtime::Result<Result<Resource<RefGuard>, types::Error>> {
        let (_, args, seq) = match self.submission("method name", &method, None, args)? {
            Ok(s) => s,
            Err(e) => return Ok(Err(to_wit_error(e))),
        };
        self.clock.pause();
        let r = self.services.call_actor(&self.caller, seq, from_wit_actor(actor), method, args).await;
        self.clock.resume();
        match r {
            Ok(id) => Ok(Ok(self.guard(id)?)),
            Err(e) => Ok(Err(to_wit_error(e))),
        }
    }

    async fn get_named(&mut self, name: String) -> wasmtime::Result<Result<(types::ActorId, String), types::Error>> {
        Ok(self
            .services
            .named_actor(&self.caller, &name)
            .await
            .map(|(id, class)| (to_wit_actor(id), class))
            .map_err(to_wit_error))
    }

    async fn kill(&mut self, actor: types::ActorId, no_restart: bool) -> wasmtime::Result<Result<(), types::Error>> {
        Ok(self.services.kill_actor(&self.caller, from_wit_actor(actor), no_restart).map_err(to_wit_error))
    }
}

impl cluster::Host for State {
    async fn cluster_resources(&mut self) -> wasmtime::Result<Vec<types::ResourceAmount>> {
        Ok(resources_to_wit(self.services.cluster_resources()))
    }

    async fn available_resources(&mut self) -> wasmtime::Result<Vec<types::ResourceAmount>> {
        Ok(resources_to_wit(self.services.available_resources()))
    }

    async fn create_placement_group(
        &mut self,
        bundles: Vec<Vec<types::ResourceAmount>>,
        strategy: cluster::PlacementStrategy,
    ) -> wasmtime::Result<Result<cluster::PlacementGroup, types::Error>> {
        let strategy = match strategy {
            cluster::PlacementStrategy::Pack => wray_core::Strategy::Pack,
            cluster::PlacementStrategy::Spread => wray_core::Strategy::Spread,
            cluster::PlacementStrategy::StrictPack => wray_core::Strategy::StrictPack,
            cluster::PlacementStrategy::StrictSpread => wray_core::Strategy::StrictSpread,
        };
        let bundles = match bundles_from_wit(bundles) {
            Ok(b) => b,
            Err(e) => return Ok(Err(to_wit_error(e))),
        };
        Ok(self
            .services
            .create_placement_group(&self.caller, bundles, strategy)
            .await
            .map(|(id, nodes)| cluster::PlacementGroup { id, nodes })
            .map_err(to_wit_error))
    }

    async fn remove_placement_group(&mut self, id: u64) -> wasmtime::Result<Result<(), types::Error>> {
        Ok(self.services.remove_placement_group(&self.caller, id).await.map_err(to_wit_error))
    }

    async fn context(&mut self) -> wasmtime::Result<cluster::RuntimeContext> {
        let driver = self.caller.actor.is_none() && &*self.caller.function == "main";
        Ok(cluster::RuntimeContext {
            job_id: self.caller.job.0,
            node_id: self.services.node_id(),
            task_id: if driver { String::new() } else { self.caller.task.to_string() },
            actor_id: self.caller.actor.map(to_wit_actor),
        })
    }
}
