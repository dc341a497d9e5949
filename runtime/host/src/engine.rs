//! The node's wasmtime engine, configured in exactly one place: a compiled
//! artifact only loads into an engine with a compatible configuration, so
//! every engine wray builds comes from [`Engine::new`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often the epoch advances. Each running guest is interrupted once per
/// tick to yield to other tasks and to check its time limit, so this is both
/// the scheduling quantum and the time-limit resolution.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Largest linear memory any instance may have: the whole 32-bit address
/// space, so that any per-task limit up to 4 GiB can be honoured. Limits are
/// enforced per store; this only sizes the pool's address-space reservation.
pub const MAX_MEMORY_SIZE: usize = 4 << 30;

/// Wasm stack a guest may use before it traps with "call stack exhausted"
/// (unbounded recursion fails only its own task).
pub const MAX_WASM_STACK: usize = 1 << 20;

/// Bytes of each instance slot's linear memory kept resident between uses
/// (reset with memset rather than madvise): covers the stack and heap a
/// typical Rust guest touches.
const KEEP_RESIDENT: usize = 4 << 20;

/// Instance slot regions whose memory is decommitted together (see
/// `wasmtime_config`): one, each as its instance ends. A batch is flushed
/// only once full, so with four a node that ran one large task kept that
/// instance's memory while it idled (1.07 GiB on a worker after a task
/// that made a 512 MiB result, for as long as no other instance ended); the
/// fresh-task rows measured the same with one as with four.
const DECOMMIT_BATCH: usize = 1;

/// Engine settings a node chooses.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Instances that may exist at once (tasks running + live actors +
    /// drivers). Sizes the pooling allocator.
    pub max_instances: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig { max_instances: 1000 }
    }
}

/// A wasmtime engine plus the thread that advances its epoch.
#[derive(Clone)]
pub struct Engine {
    inner: wasmtime::Engine,
    _ticker: Arc<Ticker>,
}

struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Engine {
    /// Builds the engine and starts its epoch ticker.
    pub fn new(config: &EngineConfig) -> anyhow::Result<Engine> {
        let inner = wasmtime::Engine::new(&wasmtime_config(config))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (engine, flag) = (inner.clone(), stop.clone());
        std::thread::Builder::new().name("wray-epoch".into()).spawn(move || {
            // The ticker also ages the pool of large-object buffers: it is
            // the one thread that runs while a node is idle, which is when
            // the pool's memory should go back (`buffers::MAX_IDLE`).
            let release_every = (crate::buffers::RELEASE_IDLE_EVERY.as_millis() / EPOCH_TICK.as_millis()).max(1);
            let mut ticks: u128 = 0;
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
                ticks += 1;
                if ticks.is_multiple_of(release_every) {
                    crate::buffers::release_idle();
                }
            }
        })?;
        Ok(Engine { inner, _ticker: Arc::new(Ticker { stop }) })
    }

    /// The wasmtime engine.
    pub fn wasmtime(&self) -> &wasmtime::Engine {
        &self.inner
    }
}

/// Environment variable that turns on wasmtime's `perf` map: with
/// `WRAY_PROFILER=perfmap`, every compiled guest function is listed in
/// `/tmp/perf-PID.map`, so `perf record`/`perf report` name guest frames
/// (a guest's own symbols, the interpreter's for a Python job) instead of
/// `[unknown]`. Off by default: the map grows with every component loaded.
pub const PROFILER_ENV: &str = "WRAY_PROFILER";

fn wasmtime_config(config: &EngineConfig) -> wasmtime::Config {
    let mut c = wasmtime::Config::new();
    if std::env::var_os(PROFILER_ENV).is_some_and(|v| v == "perfmap") {
        c.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    c.wasm_component_model(true);
    c.epoch_interruption(true);
    c.max_wasm_stack(MAX_WASM_STACK);
    // The async fiber must hold the wasm stack plus the host frames below it.
    c.async_stack_size(MAX_WASM_STACK + (1 << 20));
    c.memory_init_cow(true);
    let n = config.max_instances;
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    pool.total_component_instances(n);
    // A Rust wasip2 component instantiates a few core modules (the program
    // plus small shims), each with tables; one linear memory.
    pool.total_core_instances(n.saturating_mul(4));
    pool.total_memories(n);
    pool.total_tables(n.saturating_mul(4));
    pool.total_stacks(n);
    pool.max_memory_size(MAX_MEMORY_SIZE);
    pool.max_memories_per_component(2);
    pool.max_tables_per_component(8);
    // Instance slots are reused for every task. Resetting them with madvise
    // costs page faults and cross-core TLB shootdowns on the next use (the
    // biggest cost of a short task, measured with perf); instead keep the
    // first MiBs resident and reset only the dirty pages, found with the
    // PAGEMAP_SCAN ioctl where the kernel has it (Linux >= 6.7).
    pool.linear_memory_keep_resident(KEEP_RESIDENT);
    pool.table_keep_resident(1 << 20);
    pool.pagemap_scan(wasmtime::Enabled::Auto);
    // Decommits are not batched (DECOMMIT_BATCH): a finished instance's
    // dirty pages beyond KEEP_RESIDENT stay resident until its batch is
    // flushed, and a data task can dirty tens of MiB (32 a batch kept a
    // streaming pipeline at 1.2 GiB of RSS, 4 at 0.75, 1 at 0.8) — and an
    // idle node never fills a batch.
    pool.decommit_batch_size(DECOMMIT_BATCH);
    c.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    c
}
