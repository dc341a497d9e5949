//! One sandboxed instance of a job component, and the host side of the
//! `wray:runtime` imports it calls.
//!
//! * [`Instance`] (this file): creating an instance and running one call in
//!   it — `main`, a task, an actor's constructor or method, a snapshot or
//!   a restore — and naming why a call failed ([`CallError`]).
//! * `state`: the store's data — what lives as long as the instance, and
//!   the per-call [`state::Call`], replaced whole when a call begins.
//! * `sandbox`: the memory limiter and the execution clock checked on each
//!   epoch tick; `grants`: output, environment and directories (WASI).
//! * `linker` and `imports/`: the bindings, one file per interface;
//!   `convert`: WIT types to wray's, with the checks every guest value
//!   goes through.

mod convert;
mod grants;
mod imports;
mod linker;
mod sandbox;
mod state;

pub(crate) use convert::to_wit_error;
pub use grants::{Chunk, Grants, Output, Stream};
pub(crate) use linker::linker;
pub use sandbox::InstanceLimits;
pub use state::RefGuard;
pub(crate) use state::State;

use crate::bindings::Job;
use crate::bindings::exports::wray::runtime::entry::Guest as JobEntry;
use crate::bindings::wray::runtime::types;
use crate::checkpoint::Checkpoint;
use crate::component::Entry;
use crate::component::JobComponent;
use crate::services::{Caller, Services, Value};
use state::Call;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::Store;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::bindings::Command;
use wray_core::limits;

/// The trap `tasks.exit` raises to stop the guest: it called
/// `exit(status)`.
#[derive(Debug)]
pub(crate) struct GuestExit(pub(crate) i32);

impl std::fmt::Display for GuestExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the guest called exit({})", self.0)
    }
}

impl std::error::Error for GuestExit {}

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
    /// The guest called `exit(status)` (`std::process::exit`); the
    /// instance is unusable.
    #[error("the guest called exit({0})")]
    Exit(i32),
    /// The instance could not be created.
    #[error("cannot instantiate: {0}")]
    Instantiate(String),
}

impl CallError {
    /// Whether the instance must be discarded (it trapped).
    pub fn poisons_instance(&self) -> bool {
        matches!(self, CallError::Panic(_) | CallError::Trap(_) | CallError::Cancelled | CallError::Exit(_))
    }
}

/// What a live instance exports ([`crate::component::Entry`]'s instances).
enum Exports {
    Job(Job),
    Command(Command),
}

/// The `wray:runtime/entry` export every call but a command's driver goes
/// through; a command has none (it cannot have started tasks or actors, as
/// it imports nothing of wray's, so this is reached only by a host bug or an
/// embedder calling a function of a command).
fn entry<'a>(exports: &'a Exports, name: &str) -> Result<&'a JobEntry, CallError> {
    match exports {
        Exports::Job(job) => Ok(job.wray_runtime_entry()),
        Exports::Command(_) => Err(CallError::Guest(format!(
            "{name} is a wasi:cli command: it has a main program only, no remote functions, actors or snapshots"
        ))),
    }
}

/// A live instance of a job component.
pub struct Instance {
    store: Store<State>,
    job: Exports,
    name: Arc<str>,
    /// Tasks run in it so far, by function — counted only for functions
    /// with a `max_calls` ([`Instance::count_run`]).
    runs: Vec<(Box<str>, u32)>,
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
        let wasi = grants::WasiCtxSlot::new(grants).map_err(|e| CallError::Instantiate(format!("{e:#}")))?;
        let memory = limits
            .memory
            .map_or(crate::engine::MAX_MEMORY_SIZE, |m| m.min(crate::engine::MAX_MEMORY_SIZE as u64) as usize);
        let mut table = ResourceTable::new();
        table.set_max_capacity(limits::MAX_LIVE_HANDLES);
        let state = State::new(wasi, table, memory, services, caller);
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limiter);
        // What the guest may hand the host in one call (a task's result, a
        // put): wasmtime's default of 128 MiB would cap objects below what
        // wray promises; the instance's memory limit bounds it anyway.
        store.set_hostcall_fuel(wray_core::limits::MAX_OBJECT_SIZE + (1 << 20));
        store.set_max_component_handles(limits::MAX_LIVE_HANDLES);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(sandbox::on_epoch);
        let instantiate = |e: wasmtime::Error| CallError::Instantiate(format!("{e:#}"));
        let job = match &component.pre {
            Entry::Job(pre) => Exports::Job(pre.instantiate_async(&mut store).await.map_err(instantiate)?),
            Entry::Command(pre) => Exports::Command(pre.instantiate_async(&mut store).await.map_err(instantiate)?),
        };
        Ok(Instance { store, job, name: component.name().into(), runs: Vec::new() })
    }

    /// Makes `caller` the one the next call runs for: a task's instance
    /// taken from its job's idle instances (components that reuse them,
    /// [`JobComponent::reuses_task_instances`]).
    pub fn set_caller(&mut self, caller: Caller) {
        self.store.data_mut().caller = caller;
    }

    /// Counts a task of `function` that ran in this instance and returns
    /// how many have: what `max_calls` (Ray's) is checked against before a
    /// reused instance is kept for another task.
    pub fn count_run(&mut self, function: &str) -> u32 {
        match self.runs.iter_mut().find(|(f, _)| &**f == function) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                self.runs.push((function.into(), 1));
                1
            }
        }
    }

    /// The largest linear memory the instance has grown to, in bytes.
    pub fn memory_peak(&self) -> usize {
        self.store.data().limiter.peak
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

    /// Starts a new call: by `caller`, or by the instance's current caller
    /// (the driver, a task, an actor's creator, or the last method's caller
    /// for a snapshot). The per-call state is replaced whole.
    fn begin(&mut self, caller: Option<Caller>, limit: Option<Duration>) {
        let s = self.store.data_mut();
        if let Some(caller) = caller {
            s.caller = caller;
        }
        s.call = Call::new(limit);
    }

    /// Runs the driver's `main` — a command's `run`, whose arguments were
    /// given to WASI with its grants ([`Grants::args`]); `args` are then
    /// ignored.
    pub async fn run_main(&mut self, args: Vec<String>, time: Option<Duration>) -> Result<(), CallError> {
        self.begin(None, time);
        match &self.job {
            Exports::Job(job) => {
                let r = job.wray_runtime_entry().call_main(&mut self.store, &args).await;
                self.finish(r).and_then(|r| r.map_err(CallError::Guest))
            }
            // `run` returning its error is a failing exit without a status
            // of its own (a C `main` returning non-zero goes through
            // `exit` instead): 1, as `wasmtime run` exits with.
            Exports::Command(command) => {
                let r = command.wasi_cli_run().call_run(&mut self.store).await;
                self.finish(r).and_then(|r| r.map_err(|()| CallError::Exit(1)))
            }
        }
    }

    /// Runs a remote function. The instance is dropped after, unless its
    /// component reuses task instances and the call succeeded.
    pub async fn run_task(
        &mut self,
        function: &str,
        args: Vec<bytes::Bytes>,
        time: Option<Duration>,
    ) -> Result<Value, CallError> {
        self.begin(None, time);
        let args: Vec<Vec<u8>> = args.into_iter().map(Vec::from).collect();
        let r = entry(&self.job, &self.name)?.call_run_task(&mut self.store, function, &args).await;
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
        let r = entry(&self.job, &self.name)?.call_actor_new(&mut self.store, class, &args).await;
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
        let r = entry(&self.job, &self.name)?.call_actor_call(&mut self.store, method, &args).await;
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
        // Refused before `image` is handed to the store, which would keep it.
        entry(&self.job, &self.name)?;
        self.begin(None, time);
        let s = self.store.data_mut();
        s.image = std::mem::take(image);
        s.call.snapshotting = true;
        let r = entry(&self.job, &self.name)?.call_snapshot(&mut self.store).await;
        let s = self.store.data_mut();
        s.call.snapshotting = false;
        let changed = s.call.changed.take();
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
        entry(&self.job, &self.name)?;
        self.begin(None, time);
        self.store.data_mut().image = std::mem::take(image);
        let r = entry(&self.job, &self.name)?.call_restore(&mut self.store).await;
        *image = std::mem::take(&mut self.store.data_mut().image);
        self.finish(r).and_then(|r| r.map_err(CallError::Guest))
    }

    fn take_result(&mut self, v: types::Value) -> Result<Value, CallError> {
        self.store.data_mut().take_value(v).map_err(|e| CallError::Trap(format!("invalid result: {e:#}")))
    }

    /// Turns a wasmtime error into the failure the user should read.
    fn finish<T>(&mut self, r: wasmtime::Result<T>) -> Result<T, CallError> {
        let s = self.store.data_mut();
        s.call.clock.pause();
        s.apply_releases();
        let e = match r {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if s.cancel.load(Ordering::Relaxed) {
            return Err(CallError::Cancelled);
        }
        // `tasks.exit` (the SDK's `std::process::exit`) or WASI's own
        // `exit` (other guests' libcs: success or failure only).
        if let Some(status) = e
            .downcast_ref::<GuestExit>()
            .map(|e| e.0)
            .or_else(|| e.downcast_ref::<wasmtime_wasi::I32Exit>().map(|e| e.0))
        {
            return Err(CallError::Exit(status));
        }
        if let Some(msg) = s.call.panic.take() {
            return Err(CallError::Panic(msg));
        }
        if s.call.timed_out {
            let limit = s.call.clock.limit.unwrap_or_default();
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
