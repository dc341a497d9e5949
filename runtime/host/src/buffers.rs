//! Reusable host buffers for large objects.
//!
//! A large `put` copies the guest's bytes into host memory. Copying into a
//! freshly allocated buffer costs a page fault per 4 KiB page plus the
//! kernel zeroing it — measured at 5–8× the cost of the copy itself. So
//! buffers of large objects are recycled: when an object is freed its buffer
//! returns here, and the next large `put` copies into memory that is already
//! mapped (Ray's object store gets the same effect from a preallocated
//! arena). A buffer nobody takes again within [`MAX_IDLE`] goes back to the
//! allocator: a node that once moved a large object does not keep its
//! memory while idle.

use bytes::Bytes;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Objects smaller than this are copied into ordinary allocations: the
/// allocator already reuses small blocks well.
pub const MIN_POOLED: usize = 1 << 20;

/// Idle buffer memory kept for reuse, at most. Beyond it, freed buffers go
/// back to the allocator (and the OS).
pub const MAX_POOLED_BYTES: usize = 1 << 30;

/// How long a freed buffer waits to be taken again before it is let go.
/// Long enough for the next block of a pipeline or the next of a series of
/// transfers (they come within milliseconds to seconds); short enough that
/// a node holding a gibibyte of freed buffers after one large transfer
/// gives it back soon after (it kept it for ever before: 1.07 GiB of RSS
/// on an idle head and its worker after `wray microbenchmark`'s transfer).
/// Aged by [`release_idle`], which the engine's epoch ticker calls every
/// [`RELEASE_IDLE_EVERY`].
pub const MAX_IDLE: Duration = Duration::from_secs(10);

/// How often idle buffers are looked for (see [`MAX_IDLE`]).
pub const RELEASE_IDLE_EVERY: Duration = Duration::from_secs(1);

/// Freed buffers waiting to be taken again, with when each was freed.
struct Pool {
    free: Vec<(Vec<u8>, Instant)>,
    bytes: usize,
}

impl Pool {
    const fn new() -> Pool {
        Pool { free: Vec::new(), bytes: 0 }
    }

    /// Keeps a freed buffer if the pool has room; hands it back otherwise
    /// (to be freed by the caller, outside the pool's lock).
    fn give(&mut self, buf: Vec<u8>, now: Instant) -> Option<Vec<u8>> {
        if self.bytes + buf.capacity() > MAX_POOLED_BYTES {
            return Some(buf);
        }
        self.bytes += buf.capacity();
        self.free.push((buf, now));
        None
    }

    /// The smallest free buffer that holds `len` bytes without wasting
    /// more than half of it, if there is one.
    fn take(&mut self, len: usize) -> Option<Vec<u8>> {
        let i = self
            .free
            .iter()
            .enumerate()
            .filter(|(_, (b, _))| b.capacity() >= len && b.capacity() / 2 <= len)
            .min_by_key(|(_, (b, _))| b.capacity())
            .map(|(i, _)| i)?;
        let (mut buf, _) = self.free.swap_remove(i);
        self.bytes -= buf.capacity();
        buf.clear();
        Some(buf)
    }

    /// Takes out the buffers freed more than [`MAX_IDLE`] before `now`.
    fn take_idle(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let idle: Vec<Vec<u8>> = self
            .free
            .extract_if(.., |(_, freed)| now.saturating_duration_since(*freed) > MAX_IDLE)
            .map(|(buf, _)| buf)
            .collect();
        self.bytes -= idle.iter().map(Vec::capacity).sum::<usize>();
        idle
    }
}

static POOL: Mutex<Pool> = Mutex::new(Pool::new());

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    POOL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Frees the buffers nobody took within [`MAX_IDLE`] of their return
/// (outside the pool's lock: freeing a gibibyte unmaps it).
pub fn release_idle() {
    let idle = pool().take_idle(Instant::now());
    drop(idle);
}

/// A buffer that returns to the pool when the last `Bytes` over it drops.
struct Pooled(Vec<u8>);

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.0);
        let refused = pool().give(buf, Instant::now());
        drop(refused);
    }
}

/// Takes a free buffer that holds `len` bytes ([`Pool::take`]), or
/// allocates one.
fn take(len: usize) -> Vec<u8> {
    let recycled = pool().take(len);
    recycled.unwrap_or_else(|| Vec::with_capacity(len))
}

/// An empty buffer with room for `len` bytes, recycled when one is free
/// (fill it, then hand it to [`share`]): what a node receiving an object
/// from another node reads it into, so that the bytes land in memory that is
/// already mapped — the first touch of fresh memory costs 0.6–1.2 s per GiB
/// on the VMs the benchmarks run on, as long as QUIC takes to carry it.
pub fn buffer(len: usize) -> Vec<u8> {
    if len < MIN_POOLED {
        return Vec::with_capacity(len);
    }
    let mut buf = take(len);
    huge_pages(&mut buf);
    buf
}

/// Asks for huge pages behind a large buffer's capacity: a fresh 1 GiB
/// buffer then takes 512 page faults instead of 262,144 (a recycled one is
/// mapped already, and the advice changes nothing in it).
fn huge_pages(buf: &mut Vec<u8>) {
    const HUGE: usize = 2 << 20;
    if buf.capacity() < 2 * HUGE {
        return;
    }
    let start = buf.as_mut_ptr() as usize;
    let aligned = start.next_multiple_of(HUGE);
    let end = (start + buf.capacity()) / HUGE * HUGE;
    if end > aligned {
        // SAFETY: the range lies inside the vector's own allocation, and
        // MADV_HUGEPAGE changes how pages are backed, never their contents.
        unsafe {
            libc::madvise(aligned as *mut libc::c_void, end - aligned, libc::MADV_HUGEPAGE);
        }
    }
}

/// A filled buffer as shareable bytes; a large one returns to the pool when
/// the last `Bytes` over it drops.
pub fn share(buf: Vec<u8>) -> Bytes {
    if buf.capacity() < MIN_POOLED { Bytes::from(buf) } else { Bytes::from_owner(Pooled(buf)) }
}

/// Copies `src` into an owned, shareable buffer.
pub fn copy_to_bytes(src: &[u8]) -> Bytes {
    if src.len() < MIN_POOLED {
        return Bytes::copy_from_slice(src);
    }
    let mut buf = take(src.len());
    buf.extend_from_slice(src);
    Bytes::from_owner(Pooled(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_buffers_are_reused_and_contents_are_exact() {
        let a: Vec<u8> = (0..(3 << 20)).map(|i| i as u8).collect();
        let b1 = copy_to_bytes(&a);
        assert_eq!(b1.as_ref(), a.as_slice());
        let ptr = b1.as_ptr();
        drop(b1);
        let c: Vec<u8> = vec![9; (3 << 20) - 5];
        let b2 = copy_to_bytes(&c);
        assert_eq!(b2.as_ref(), c.as_slice());
        assert_eq!(b2.as_ptr(), ptr, "the freed buffer should be reused");
        let small = copy_to_bytes(b"tiny");
        assert_eq!(small.as_ref(), b"tiny");
    }

    /// The pool's bookkeeping on a pool of its own (the global one is
    /// shared by every test of the process): idle buffers go after
    /// `MAX_IDLE`, recent ones stay, the byte count follows, and a buffer
    /// taken is not aged any more.
    #[test]
    fn buffers_idle_longer_than_max_idle_are_let_go() {
        let mut p = Pool::new();
        let t0 = Instant::now();
        assert!(p.give(Vec::with_capacity(4 << 20), t0).is_none());
        assert!(p.give(Vec::with_capacity(2 << 20), t0 + Duration::from_secs(5)).is_none());
        assert!(p.give(Vec::with_capacity(8 << 20), t0 + Duration::from_secs(6)).is_none());
        assert_eq!(p.bytes, 14 << 20);
        // One is taken before it ages: it is the caller's now.
        let taken = p.take(7 << 20).expect("the 8 MiB buffer fits 7");
        assert_eq!(taken.capacity(), 8 << 20);
        assert!(p.take_idle(t0 + MAX_IDLE).is_empty(), "none is older than MAX_IDLE yet");
        let idle = p.take_idle(t0 + MAX_IDLE + Duration::from_secs(1));
        assert_eq!(idle.iter().map(Vec::capacity).collect::<Vec<_>>(), [4 << 20]);
        assert_eq!(p.bytes, 2 << 20);
        let idle = p.take_idle(t0 + Duration::from_secs(60));
        assert_eq!(idle.len(), 1);
        assert_eq!((p.bytes, p.free.len()), (0, 0));
    }

    #[test]
    fn a_full_pool_hands_buffers_back() {
        let mut p = Pool::new();
        let now = Instant::now();
        assert!(p.give(Vec::with_capacity(MAX_POOLED_BYTES - (1 << 20)), now).is_none());
        let refused = p.give(Vec::with_capacity(2 << 20), now).expect("over MAX_POOLED_BYTES");
        assert_eq!(refused.capacity(), 2 << 20);
        assert_eq!(p.bytes, MAX_POOLED_BYTES - (1 << 20));
    }

    #[test]
    fn buffers_filled_by_the_caller_are_recycled_too() {
        let mut a = buffer(5 << 20);
        a.resize(5 << 20, 3);
        let ptr = a.as_ptr();
        let shared = share(a);
        assert!(shared.iter().all(|b| *b == 3));
        drop(shared);
        let b = buffer((5 << 20) - 1);
        assert_eq!(b.as_ptr(), ptr, "the freed buffer should be reused");
        assert!(b.is_empty());
        assert_eq!(share(buffer(10)).len(), 0);
    }
}
