//! Detached actors' snapshots in the head's sled database, so that a head
//! restarted on its data directory continues them from their last
//! snapshot: per actor a meta key and one key per 4 KiB block, each change
//! written as one atomic batch and flushed before the result of the call
//! it follows is released.

use wray_core::ActorId;
use wray_host::{CHECKPOINT_BLOCK, Checkpoint, Delta};

/// A key of an actor's snapshot: the actor's id (16 bytes), then `m` (the
/// meta record: base, memory size, length) or `b` and a block's index.
fn snapshot_key(id: ActorId, tag: u8, index: Option<u32>) -> Vec<u8> {
    let mut k = id.0.to_be_bytes().to_vec();
    k.push(tag);
    if let Some(i) = index {
        k.extend(i.to_be_bytes());
    }
    k
}

/// Writes what a snapshot changed to `tree`, atomically, and flushes it.
pub(crate) fn persist_snapshot(tree: &sled::Tree, id: ActorId, delta: &Delta) -> Result<(), String> {
    let key = |tag, index| snapshot_key(id, tag, index);
    let mut batch = sled::Batch::default();
    if delta.full {
        for k in tree.scan_prefix(id.0.to_be_bytes()).keys() {
            batch.remove(k.map_err(|e| e.to_string())?);
        }
    }
    let mut meta = Vec::with_capacity(20);
    meta.extend(delta.base.to_be_bytes());
    meta.extend(delta.memory_size.to_be_bytes());
    meta.extend(delta.len.to_be_bytes());
    batch.insert(key(b'm', None), meta);
    for (index, bytes) in &delta.blocks {
        batch.insert(key(b'b', Some(*index)), bytes.as_ref());
    }
    tree.apply_batch(batch).and_then(|()| tree.flush().map(drop)).map_err(|e| e.to_string())
}

/// Deletes an actor's snapshot.
pub(crate) fn remove_snapshot(tree: &sled::Tree, id: ActorId) -> sled::Result<()> {
    tree.scan_prefix(id.0.to_be_bytes()).keys().try_for_each(|k| tree.remove(k?).map(drop))
}

/// Reads an actor's snapshot back (empty if it has none); blocks past its
/// length are left over from a longer one and skipped.
pub(crate) fn load_snapshot(tree: &sled::Tree, id: ActorId) -> Result<Checkpoint, String> {
    let meta = tree.get(snapshot_key(id, b'm', None)).map_err(|e| e.to_string())?;
    let Some(meta) = meta else { return Ok(Checkpoint::default()) };
    let field = |at: usize, n: usize| meta.get(at..at + n).ok_or("a truncated snapshot record");
    let base = u32::from_be_bytes(field(0, 4)?.try_into().expect("4 bytes"));
    let memory_size = u64::from_be_bytes(field(4, 8)?.try_into().expect("8 bytes"));
    let len = u64::from_be_bytes(field(12, 8)?.try_into().expect("8 bytes"));
    let mut blocks = Vec::new();
    for entry in tree.scan_prefix(snapshot_key(id, b'b', None)) {
        let (k, v) = entry.map_err(|e| e.to_string())?;
        let index = k.get(17..21).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes);
        let Some(index) = index else { return Err("a malformed snapshot key".into()) };
        let start = u64::from(index) * CHECKPOINT_BLOCK as u64;
        if start < len {
            // The image's last block may have been written when it was
            // longer (or shorter) and left alone since, its bytes within
            // the image unchanged: fit it to the image, zeros past its end.
            let size = (len - start).min(CHECKPOINT_BLOCK as u64) as usize;
            let mut block = v.to_vec();
            block.resize(size, 0);
            blocks.push((index, bytes::Bytes::from(block)));
        }
    }
    // `apply` checks the length against the limit and every block.
    let mut image = Checkpoint::default();
    image.apply(&Delta { base, memory_size, len, full: true, blocks })?;
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_written_change_by_change_read_back_whole() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("detached_snapshots").unwrap();
        let (id, other) = (ActorId(7 << 64 | 9), ActorId(8));
        let mut image = Checkpoint::default();
        let mut memory: Vec<u8> = (0..10 * CHECKPOINT_BLOCK).map(|i| (i % 251) as u8 | 1).collect();
        for round in 0..6 {
            let full = image.is_empty();
            let changed = image.record(1 << 20, &memory).unwrap();
            persist_snapshot(&tree, id, &image.delta(&changed, full)).unwrap();
            let loaded = load_snapshot(&tree, id).unwrap();
            assert!(loaded == image, "round {round}: {} bytes read back for {}", loaded.data.len(), image.data.len());
            let at = (round * 3 * CHECKPOINT_BLOCK + 5) % memory.len();
            memory[at] ^= 0xff;
            // Shrinks (blocks past the new end stay on disk, unread), then
            // grows again by less than a block.
            if round % 2 == 0 {
                memory.truncate(memory.len() - CHECKPOINT_BLOCK - 17);
            } else {
                memory.extend([0; 9]);
            }
        }
        // Another actor's snapshot is apart; deleting one leaves the other.
        let full = Checkpoint { base: 0, memory_size: 4096, data: vec![3; 100] };
        persist_snapshot(&tree, other, &full.delta(&[0], true)).unwrap();
        remove_snapshot(&tree, id).unwrap();
        assert!(load_snapshot(&tree, id).unwrap().is_empty());
        assert_eq!(load_snapshot(&tree, other).unwrap(), full);
    }
}
