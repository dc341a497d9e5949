//! Blocks: the unit a dataset is made of. A block is one Arrow record batch,
//! stored in the object store as an Arrow IPC stream (`Vec<u8>`, which the
//! codec moves with one `memcpy`), and referred to by the driver through a
//! [`BlockRef`] that carries its row count and size, so that counting rows
//! and budgeting memory never fetch the block itself.

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::reader::StreamDecoder;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::SchemaRef;
use serde::{Deserialize, Serialize};
use wray_guest_core::{Error, ObjectRef};

/// The size readers aim for when they cut a file into blocks, and that
/// `repartition`-free transforms leave alone. Ray's default is 128 MiB; a
/// smaller block keeps more tasks busy on a small node and keeps a stream's
/// in-flight memory (a few blocks per stage) well inside a 256 MiB store.
pub const TARGET_BLOCK_BYTES: usize = 32 << 20;

/// Rows per block of `range` and `from_items`, when the dataset is small
/// enough that the byte target would make one block: enough blocks to keep
/// every core busy, few enough that a task's start-up cost stays small.
pub const DEFAULT_ROWS_PER_BLOCK: usize = 64 * 1024;

/// The buffer between a reader or writer and its file. Every refill or
/// flush is a round of WASI calls into the host (at most 64 KiB each); with
/// std's 8 KiB buffers a conversion made eight times as many, and when the
/// host still handed each to a blocking thread they cost the CSV → Parquet
/// benchmark about a sixth of its time. 1 MiB makes them rare while a task
/// reading and writing two files holds 2 MiB.
pub(crate) const FILE_BUFFER_BYTES: usize = 1 << 20;

/// A block in the object store, as the executor sees it.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct BlockRef {
    /// The block's IPC bytes.
    pub object: ObjectRef<Vec<u8>>,
    /// Rows in the block.
    pub rows: u64,
    /// The Arrow buffers' size in memory.
    pub bytes: u64,
}

/// Encodes a batch as an Arrow IPC stream (schema, one batch, end marker).
pub(crate) fn encode(batch: &RecordBatch) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(batch.get_array_memory_size() + 1024);
    let mut writer =
        StreamWriter::try_new(&mut out, &batch.schema()).map_err(|e| invalid(format!("encoding a block: {e}")))?;
    writer.write(batch).map_err(|e| invalid(format!("encoding a block: {e}")))?;
    writer.finish().map_err(|e| invalid(format!("encoding a block: {e}")))?;
    drop(writer);
    Ok(out)
}

/// Decodes what [`encode`] wrote. The batch's buffers point into `bytes`
/// (no copy) where they are aligned, which they are when the bytes came
/// from the allocator whole.
pub(crate) fn decode(bytes: Vec<u8>) -> Result<RecordBatch, Error> {
    let mut buffer = Buffer::from(bytes);
    let mut decoder = StreamDecoder::new();
    let mut batch = None;
    while !buffer.is_empty() {
        match decoder.decode(&mut buffer) {
            Ok(Some(b)) if batch.is_none() => batch = Some(b),
            Ok(Some(_)) => return Err(invalid("a block holds more than one record batch".into())),
            Ok(None) => {}
            Err(e) => return Err(invalid(format!("decoding a block: {e}"))),
        }
    }
    decoder.finish().map_err(|e| invalid(format!("decoding a block: {e}")))?;
    match (batch, decoder.schema()) {
        (Some(b), _) => Ok(b),
        // A stream with a schema and no batch is an empty block.
        (None, Some(schema)) => Ok(RecordBatch::new_empty(schema)),
        (None, None) => Err(invalid("a block holds no schema".into())),
    }
}

/// Stores a batch as a block.
pub(crate) fn put(batch: &RecordBatch) -> Result<BlockRef, Error> {
    let bytes = encode(batch)?;
    let object = wray_guest_core::try_put(&bytes)?;
    Ok(BlockRef { object, rows: batch.num_rows() as u64, bytes: batch.get_array_memory_size() as u64 })
}

/// Fetches and decodes a block.
pub(crate) fn fetch(block: &BlockRef) -> Result<RecordBatch, Error> {
    decode(wray_guest_core::get(&block.object)?)
}

/// Joins batches of one schema into one.
pub(crate) fn concat(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<RecordBatch, Error> {
    match batches {
        [one] => Ok(one.clone()),
        _ => arrow_select::concat::concat_batches(schema, batches)
            .map_err(|e| invalid(format!("joining blocks: {e} (do their schemas differ?)"))),
    }
}

/// Cuts a batch into pieces of at most `target` bytes (by rows, evenly).
pub(crate) fn split_by_size(batch: RecordBatch, target: usize) -> Vec<RecordBatch> {
    let bytes = batch.get_array_memory_size();
    let rows = batch.num_rows();
    if bytes <= target || rows <= 1 {
        return vec![batch];
    }
    let pieces = bytes.div_ceil(target).min(rows);
    let per = rows.div_ceil(pieces);
    (0..rows).step_by(per).map(|start| batch.slice(start, per.min(rows - start))).collect()
}

pub(crate) fn invalid(message: String) -> Error {
    Error::InvalidArgument(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Float32Array, Int64Array, StringArray};
    use std::sync::Arc;

    fn sample(n: i64) -> RecordBatch {
        RecordBatch::try_from_iter([
            ("id", Arc::new(Int64Array::from_iter_values(0..n)) as _),
            ("x", Arc::new(Float32Array::from_iter_values((0..n).map(|i| i as f32 / 2.0))) as _),
            ("s", Arc::new(StringArray::from_iter_values((0..n).map(|i| format!("row {i}")))) as _),
        ])
        .unwrap()
    }

    #[test]
    fn blocks_round_trip_through_ipc() {
        let batch = sample(1000);
        assert_eq!(decode(encode(&batch).unwrap()).unwrap(), batch);
        let empty = RecordBatch::new_empty(batch.schema());
        assert_eq!(decode(encode(&empty).unwrap()).unwrap(), empty);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [vec![], vec![0xff; 3], vec![0xff, 0xff, 0xff, 0xff, 200, 0, 0, 0, 1, 2, 3]] {
            assert!(decode(bytes).is_err());
        }
        let mut cut = encode(&sample(10)).unwrap();
        cut.truncate(cut.len() / 2);
        assert!(decode(cut).is_err());
    }

    #[test]
    fn splitting_keeps_every_row_in_order() {
        let batch = sample(1001);
        let pieces = split_by_size(batch.clone(), batch.get_array_memory_size() / 4);
        assert!(pieces.len() >= 4, "{}", pieces.len());
        assert_eq!(concat(&batch.schema(), &pieces).unwrap(), batch);
    }
}
