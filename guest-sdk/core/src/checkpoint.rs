//! The guest's half of actor checkpoints (`entry.snapshot` and
//! `entry.restore`): hands the host the instance's memory above the shadow
//! stack, and puts a snapshot back into a fresh instance.
//!
//! Rust's wasm targets link the shadow stack first (`--stack-first`): the
//! stack occupies the bottom of memory up to `__stack_high`, and statics and
//! the heap lie above it. Between two calls the stack is empty, so memory
//! from `__stack_high` to its end is the instance's whole state.
//!
//! Restoring cannot copy the snapshot straight into place: the heap being
//! overwritten is the one this code (and the bindings' allocations) use
//! while loading. So the snapshot is loaded into fresh pages above all of
//! memory, then moved into place with one `memmove`, after which nothing
//! allocated before it is touched again; memory past the snapshot is
//! zeroed, as it was when the snapshot was taken.

use crate::bindings::wray::runtime::checkpoint;

const PAGE: usize = 65536;

/// How much is loaded per `checkpoint.load` call.
const LOAD_CHUNK: u32 = 1 << 20;

/// The top of the shadow stack, where statics begin (a symbol wasm-ld
/// defines; only its address is taken, never its value).
#[cfg(target_arch = "wasm32")]
fn stack_high() -> usize {
    unsafe extern "C" {
        static __stack_high: u8;
    }
    core::ptr::addr_of!(__stack_high) as usize
}

#[cfg(target_arch = "wasm32")]
fn memory_end() -> usize {
    core::arch::wasm32::memory_size(0) * PAGE
}

/// Grows memory by `pages`; false if it cannot.
#[cfg(target_arch = "wasm32")]
fn memory_grow(pages: usize) -> bool {
    core::arch::wasm32::memory_grow(0, pages) != usize::MAX
}

// The SDK also compiles for the host (documentation, unit tests of its
// pure parts); there is no linear memory to snapshot there.
#[cfg(not(target_arch = "wasm32"))]
fn memory_end() -> usize {
    0
}

#[cfg(not(target_arch = "wasm32"))]
fn stack_high() -> usize {
    0
}

#[cfg(not(target_arch = "wasm32"))]
fn memory_grow(_pages: usize) -> bool {
    false
}

/// Where the state starts: the end of the stack, after checking that the
/// stack really is below the statics.
fn base() -> Result<usize, String> {
    static PROBE: u8 = 0;
    let high = stack_high();
    let probe = core::ptr::addr_of!(PROBE) as usize;
    let local = 0u8;
    let sp = core::ptr::addr_of!(local) as usize;
    if !(sp < high && high <= probe) {
        return Err("this component's shadow stack is not linked below its data (link with --stack-first)".into());
    }
    Ok(high)
}

/// Opens the standard streams the way every actor instance does before
/// anything else runs, and marks them standing. The C library opens all
/// three on first use of any and keeps their handles in its memory; doing
/// it first, on an empty handle table, gives them the same handles in the
/// instance that took a snapshot and in the one that restores it.
pub(crate) fn open_standard_streams() {
    unsafe extern "C" {
        fn write(fd: i32, buf: *const u8, count: usize) -> isize;
    }
    // SAFETY: a zero-byte write reads nothing from `buf`.
    unsafe {
        write(1, [0u8].as_ptr(), 0);
    }
    checkpoint::standing();
}

/// `entry.snapshot`: hands memory from the stack's end to the host.
pub(crate) fn snapshot() -> Result<(), String> {
    let base = base()?;
    let end = memory_end();
    // SAFETY: `base..end` is linear memory the instance owns; the host only
    // reads it, during this call, while nothing here writes to it.
    let memory = unsafe { core::slice::from_raw_parts(base as *const u8, end - base) };
    checkpoint::save(base as u32, memory).map_err(|e| crate::Error::from(e).to_string())
}

/// `entry.restore`: replaces this instance's memory above the stack with the
/// host's snapshot.
pub(crate) fn restore() -> Result<(), String> {
    let fail = |e| crate::Error::from(e).to_string();
    let base = base()?;
    open_standard_streams();
    let (image_base, image_memory, len) = checkpoint::image().map_err(fail)?;
    if image_base as usize != base {
        return Err(format!(
            "the snapshot starts at {image_base:#x}, this instance's data at {base:#x}: not the same component"
        ));
    }
    let (image_memory, len) = match (usize::try_from(image_memory), usize::try_from(len)) {
        (Ok(m), Ok(l)) if base + l <= m => (m, l),
        _ => return Err(format!("a snapshot of {len} bytes in {image_memory} does not fit wasm32")),
    };
    // Scratch pages above everything: this instance's memory and the
    // snapshot's.
    let scratch = memory_end().max(image_memory).next_multiple_of(PAGE);
    grow_to(scratch + len)?;
    let mut offset = 0;
    while offset < len {
        let n = (len - offset).min(LOAD_CHUNK as usize);
        let chunk = checkpoint::load(offset as u64, n as u32).map_err(fail)?;
        if chunk.len() != n {
            return Err(format!("the host returned {} bytes of the snapshot for {n}", chunk.len()));
        }
        // SAFETY: `scratch + offset .. + n` lies in the pages grown above,
        // which nothing else uses.
        unsafe { core::ptr::copy_nonoverlapping(chunk.as_ptr(), (scratch + offset) as *mut u8, n) };
        offset += n;
    }
    // From here on the heap is the snapshot's: nothing allocated before
    // this point may be used or freed.
    let end = memory_end();
    // SAFETY: both ranges are linear memory of this instance; `copy`
    // allows them to overlap. Nothing below reads the old heap.
    unsafe {
        core::ptr::copy(scratch as *const u8, base as *mut u8, len);
        core::ptr::write_bytes((base + len) as *mut u8, 0, end - (base + len));
    }
    Ok(())
}

/// Grows memory to at least `bytes`.
fn grow_to(bytes: usize) -> Result<(), String> {
    let have = memory_end();
    if bytes > have {
        let pages = (bytes - have).div_ceil(PAGE);
        if !memory_grow(pages) {
            return Err(format!(
                "restoring a snapshot needs {bytes} bytes of memory (twice the snapshot), over the memory limit"
            ));
        }
    }
    Ok(())
}
