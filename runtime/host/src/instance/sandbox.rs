//! The limits an instance runs under: linear memory and tables (the
//! [`Limiter`]), execution time per call (the [`Clock`], checked on every
//! epoch tick, which also delivers cancellation).

use super::state::State;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::{Duration, Instant};
use wasmtime::{StoreContextMut, UpdateDeadline};

/// Limits of one instance.
#[derive(Clone, Copy, Debug, Default)]
pub struct InstanceLimits {
    /// Linear memory, in bytes (none: the 4 GiB of wasm32).
    pub memory: Option<u64>,
    /// Execution time of one call (none: unlimited). Time blocked in
    /// `get`/`wait` does not count.
    pub time: Option<Duration>,
}

/// Table elements an instance may grow to (function references; a Rust
/// guest needs a few hundred).
pub const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// Enforces the memory limit and remembers that it did, so the failure can
/// be named.
pub(crate) struct Limiter {
    pub(crate) memory: usize,
    pub(super) exceeded: bool,
    /// The largest linear memory the instance has grown to, in bytes.
    pub(super) peak: usize,
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
        self.peak = self.peak.max(desired);
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
    pub(super) limit: Option<Duration>,
}

impl Clock {
    /// A clock running from now, for a call that may run for `limit`.
    pub(super) fn started(limit: Option<Duration>) -> Clock {
        Clock { used: Duration::ZERO, running_since: Some(Instant::now()), limit }
    }
    pub(crate) fn pause(&mut self) {
        if let Some(t) = self.running_since.take() {
            self.used += t.elapsed();
        }
    }
    pub(crate) fn resume(&mut self) {
        self.running_since = Some(Instant::now());
    }
    /// Awaits `work`, a host call that may block (a `get` of a pending
    /// object, a submission waiting for room), with the clock stopped only
    /// while it actually waits. It is polled once first: most such calls
    /// are answered at once, and pausing and resuming read the time twice —
    /// a twentieth of a `get` of a ready object. A call answered at once
    /// counts its microsecond against the limit, as any host call does.
    pub(crate) async fn off_while_waiting<F: Future>(&mut self, work: F) -> F::Output {
        let mut work = std::pin::pin!(work);
        let first = std::future::poll_fn(|cx| Poll::Ready(work.as_mut().poll(cx))).await;
        match first {
            Poll::Ready(out) => out,
            Poll::Pending => {
                self.pause();
                let out = work.await;
                self.resume();
                out
            }
        }
    }
    fn used(&self) -> Duration {
        self.used + self.running_since.map_or(Duration::ZERO, |t| t.elapsed())
    }
}

pub(super) fn on_epoch(mut ctx: StoreContextMut<'_, State>) -> wasmtime::Result<UpdateDeadline> {
    let s = ctx.data_mut();
    s.apply_releases();
    if s.cancel.load(Ordering::Relaxed) {
        return Ok(UpdateDeadline::Interrupt);
    }
    if let Some(limit) = s.call.clock.limit
        && s.call.clock.used() > limit
    {
        s.call.timed_out = true;
        return Ok(UpdateDeadline::Interrupt);
    }
    // Yield so other tasks on this thread make progress: a busy guest costs
    // its neighbours at most one tick of latency.
    Ok(UpdateDeadline::Yield(1))
}
