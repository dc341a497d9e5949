//! Actor checkpoints: an instance's linear memory, taken between two calls
//! and put back into a fresh instance of the same component.
//!
//! The host cannot read a component's memory on its own (the component
//! model hides it), so the guest SDK hands it over: its `entry.snapshot`
//! export passes the memory from the end of the shadow stack to the end of
//! memory to `checkpoint.save`, which reads it in place; `entry.restore`
//! pulls it back with `checkpoint.image` / `checkpoint.load` into memory
//! above the fresh instance's and moves it into place in one copy. Between
//! two calls the shadow stack is empty, so that range is the whole state:
//! statics, the heap, and the actor in it.
//!
//! What is not in linear memory cannot be restored: handles of host
//! resources (object refs, tensors, WASI streams and files) live in the
//! instance's tables. An instance holding any is refused a snapshot, so a
//! restored instance never refers to a handle it does not have.
//!
//! A [`Checkpoint`] is kept as one image per actor; each snapshot compares
//! the new memory with it block by block and copies only what changed, and
//! reports those blocks ([`Delta`]) so that a copy kept on another node
//! (the actor's owner) can follow it.

use bytes::Bytes;
use wray_core::{Error, limits};

/// The unit in which snapshots are compared and shipped.
pub const BLOCK: usize = 4096;

/// The largest memory image a snapshot may hold (the object size limit: an
/// image travels between nodes like an object).
pub const MAX_CHECKPOINT: usize = limits::MAX_OBJECT_SIZE;

/// The most the guest may load in one `checkpoint.load` call.
pub const MAX_LOAD_CHUNK: u32 = 16 << 20;

/// An actor's memory as of its last snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// Where the image starts in linear memory (the end of the shadow
    /// stack).
    pub base: u32,
    /// The size of linear memory when the snapshot was taken; a restored
    /// instance has at least this much.
    pub memory_size: u64,
    /// Memory from `base`, without its trailing zero blocks (a fresh
    /// memory is zero there already).
    pub data: Vec<u8>,
}

/// The blocks one snapshot changed: what brings a copy of the previous
/// image up to date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delta {
    /// The image's base.
    pub base: u32,
    /// The memory size at the snapshot.
    pub memory_size: u64,
    /// The image's length after the change.
    pub len: u64,
    /// Whether the previous image is to be discarded first (the first
    /// snapshot, or one after the actor started over).
    pub full: bool,
    /// Changed blocks, by index, with their new bytes (the last block of
    /// the image may be shorter than [`BLOCK`]).
    pub blocks: Vec<(u32, Bytes)>,
}

impl Delta {
    /// The same change in parts of at most `max_bytes` of blocks each,
    /// applied one after another (only the first discards the previous
    /// image); always at least one part.
    pub fn split(&self, max_bytes: usize) -> Vec<Delta> {
        let part = |i: usize, blocks: &[(u32, Bytes)]| Delta {
            base: self.base,
            memory_size: self.memory_size,
            len: self.len,
            full: self.full && i == 0,
            blocks: blocks.to_vec(),
        };
        let per_part = (max_bytes / BLOCK).max(1);
        let mut parts: Vec<Delta> = self.blocks.chunks(per_part).enumerate().map(|(i, b)| part(i, b)).collect();
        if parts.is_empty() {
            parts.push(part(0, &[]));
        }
        parts
    }
}

impl Checkpoint {
    /// Whether a snapshot has been recorded.
    pub fn is_empty(&self) -> bool {
        self.memory_size == 0
    }

    /// Records `memory` (linear memory from `base` to its end) as the new
    /// image; returns the indices of the blocks that changed.
    pub fn record(&mut self, base: u32, memory: &[u8]) -> Result<Vec<u32>, Error> {
        if memory.len() > MAX_CHECKPOINT {
            return Err(Error::InvalidArgument(format!(
                "an actor's memory of {} bytes is too large to checkpoint (the limit is {MAX_CHECKPOINT} bytes)",
                memory.len()
            )));
        }
        let memory_size = u64::from(base) + memory.len() as u64;
        let full = self.is_empty() || self.base != base;
        if full {
            self.data.clear();
        }
        let len = trimmed_len(memory);
        let mut changed = Vec::new();
        let old_len = self.data.len();
        self.data.resize(len, 0);
        for (i, new) in memory[..len].chunks(BLOCK).enumerate() {
            let start = i * BLOCK;
            let old = &mut self.data[start..start + new.len()];
            // Blocks past the old image's end were zero-filled by `resize`,
            // but they count as changed for a copy that never had them.
            if old != new || start >= old_len {
                old.copy_from_slice(new);
                changed.push(i as u32);
            }
        }
        // When the length changed, the block at the old end and the new
        // last block are sent whole even if their bytes inside the image
        // did not change: a copy that keeps whole blocks (the head's disk)
        // may hold stale bytes past the old end there.
        if len != old_len {
            for boundary in [old_len.min(len), len.saturating_sub(1)] {
                let block = (boundary / BLOCK) as u32;
                if boundary < len && !changed.contains(&block) {
                    changed.push(block);
                }
            }
            changed.sort_unstable();
        }
        self.base = base;
        self.memory_size = memory_size;
        Ok(changed)
    }

    /// The delta the last [`record`](Self::record) made, given the blocks
    /// it returned and whether it started from an empty image.
    pub fn delta(&self, changed: &[u32], full: bool) -> Delta {
        let blocks = changed
            .iter()
            .map(|&i| {
                let start = i as usize * BLOCK;
                let end = (start + BLOCK).min(self.data.len());
                (i, Bytes::copy_from_slice(&self.data[start..end]))
            })
            .collect();
        Delta { base: self.base, memory_size: self.memory_size, len: self.data.len() as u64, full, blocks }
    }

    /// The whole image as a delta against nothing (for shipping it to
    /// another node, [`split`](Delta::split) into frames).
    pub fn whole(&self) -> Delta {
        let indices: Vec<u32> = (0..self.data.len().div_ceil(BLOCK) as u32).collect();
        self.delta(&indices, true)
    }

    /// Brings this image up to date with `delta` (from a peer: every index
    /// and length is checked).
    pub fn apply(&mut self, delta: &Delta) -> Result<(), String> {
        let len = usize::try_from(delta.len).ok().filter(|&l| l <= MAX_CHECKPOINT);
        let Some(len) = len else {
            return Err(format!("a checkpoint of {} bytes exceeds the limit of {MAX_CHECKPOINT}", delta.len));
        };
        if delta.memory_size < u64::from(delta.base) + delta.len {
            return Err("a checkpoint longer than its memory".into());
        }
        if delta.full {
            self.data.clear();
        }
        self.data.resize(len, 0);
        for (i, bytes) in &delta.blocks {
            let start = *i as usize * BLOCK;
            let expected = len.saturating_sub(start).min(BLOCK);
            if start >= len || bytes.len() != expected {
                return Err(format!(
                    "checkpoint block {i} ({} bytes) does not fit an image of {len} bytes",
                    bytes.len()
                ));
            }
            self.data[start..start + expected].copy_from_slice(bytes);
        }
        self.base = delta.base;
        self.memory_size = delta.memory_size;
        Ok(())
    }
}

/// The length of `memory` without its trailing zero blocks.
fn trimmed_len(memory: &[u8]) -> usize {
    let mut end = memory.len();
    while end > 0 {
        let start = (end - 1) / BLOCK * BLOCK;
        if memory[start..end].iter().any(|&b| b != 0) {
            break;
        }
        end = start;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory(blocks: usize, fill: impl Fn(usize) -> u8) -> Vec<u8> {
        (0..blocks * BLOCK).map(fill).collect()
    }

    #[test]
    fn a_copy_following_the_deltas_equals_the_image() {
        let mut image = Checkpoint::default();
        let mut copy = Checkpoint::default();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut mem = memory(8, |i| (i % 7) as u8);
        for round in 0..50 {
            // Change a few bytes, sometimes grow, sometimes zero the tail.
            for _ in 0..3 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let at = rng as usize % mem.len();
                mem[at] = mem[at].wrapping_add(1 + round as u8);
            }
            if round % 10 == 9 {
                mem.extend(std::iter::repeat_n(0, 3 * BLOCK + 100));
                let n = mem.len();
                mem[n - 1] = 9;
            }
            if round % 13 == 12 {
                let n = mem.len();
                mem[n - 2 * BLOCK..].fill(0);
            }
            let full = image.is_empty();
            let changed = image.record(1 << 20, &mem).unwrap();
            copy.apply(&image.delta(&changed, full)).unwrap();
            assert_eq!(copy, image, "round {round}");
            assert_eq!(&mem[..image.data.len()], &image.data[..]);
            assert!(mem[image.data.len()..].iter().all(|&b| b == 0));
        }
    }

    #[test]
    fn unchanged_memory_changes_no_block_and_zero_tails_are_trimmed() {
        let mut image = Checkpoint::default();
        let mut mem = memory(4, |i| (i % 3) as u8 + 1);
        mem.extend(vec![0; 10 * BLOCK]);
        assert_eq!(image.record(0, &mem).unwrap().len(), 4);
        assert_eq!(image.data.len(), 4 * BLOCK);
        assert_eq!(image.memory_size, 14 * BLOCK as u64);
        assert!(image.record(0, &mem).unwrap().is_empty());
        mem[BLOCK + 5] = 200;
        assert_eq!(image.record(0, &mem).unwrap(), vec![1]);
    }

    #[test]
    fn a_whole_image_ships_in_parts_that_rebuild_it() {
        let mut image = Checkpoint::default();
        image.record(4096, &memory(10, |i| (i / 100) as u8 | 1)).unwrap();
        let parts = image.whole().split(3 * BLOCK);
        assert_eq!(parts.len(), 4);
        let mut copy = Checkpoint { base: 1, memory_size: 99, data: vec![7; 50] };
        for p in &parts {
            copy.apply(p).unwrap();
        }
        assert_eq!(copy, image);
    }

    #[test]
    fn hostile_deltas_are_refused() {
        let mut copy = Checkpoint::default();
        let delta = |len: u64, blocks: Vec<(u32, Bytes)>| Delta { base: 0, memory_size: len, len, full: true, blocks };
        assert!(copy.apply(&delta(u64::MAX, vec![])).is_err());
        assert!(copy.apply(&delta(100, vec![(1, Bytes::from_static(b"x"))])).is_err());
        assert!(copy.apply(&delta(100, vec![(0, Bytes::from(vec![0; 99]))])).is_err());
        assert!(copy.apply(&Delta { memory_size: 10, ..delta(100, vec![]) }).is_err());
        assert!(copy.apply(&delta(100, vec![(0, Bytes::from(vec![1; 100]))])).is_ok());
    }
}
