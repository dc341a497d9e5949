//! Reusable host buffers for large objects.
//!
//! A large `put` copies the guest's bytes into host memory. Copying into a
//! freshly allocated buffer costs a page fault per 4 KiB page plus the
//! kernel zeroing it — measured at 5–8× the cost of the copy itself. So
//! buffers of large objects are recycled: when an object is freed its buffer
//! returns here, and the next large `put` copies into memory that is already
//! mapped (Ray's object store gets the same effect from a preallocated
//! arena).

use bytes::Bytes;
use std::sync::Mutex;

/// Objects smaller than this are copied into ordinary allocations: the
/// allocator already reuses small blocks well.
pub const MIN_POOLED: usize = 1 << 20;

/// Idle buffer memory kept for reuse, at most. Beyond it, freed buffers go
/// back to the allocator (and the OS).
pub const MAX_POOLED_BYTES: usize = 1 << 30;

struct Pool {
    free: Vec<Vec<u8>>,
    bytes: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool { free: Vec::new(), bytes: 0 });

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    POOL.lock().unwrap_or_else(|p| p.into_inner())
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
        let mut p = pool();
        if p.bytes + buf.capacity() <= MAX_POOLED_BYTES {
            p.bytes += buf.capacity();
            p.free.push(buf);
        }
    }
}

/// Takes the smallest free buffer that holds `len` bytes without wasting
/// more than half of it, or allocates one.
fn take(len: usize) -> Vec<u8> {
    let mut p = pool();
    let best = p
        .free
        .iter()
        .enumerate()
        .filter(|(_, b)| b.capacity() >= len && b.capacity() / 2 <= len)
        .min_by_key(|(_, b)| b.capacity())
        .map(|(i, _)| i);
    match best {
        Some(i) => {
            let mut buf = p.free.swap_remove(i);
            p.bytes -= buf.capacity();
            buf.clear();
            buf
        }
        None => Vec::with_capacity(len),
    }
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
