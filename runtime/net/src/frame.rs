//! Length-prefixed frames on QUIC streams.

use crate::NetError;
use rkyv::util::AlignedVec;

/// Largest frame a peer may send: a job component plus its arguments.
/// Components are a few MiB; 256 MiB leaves room while bounding what a
/// peer can make a node allocate with one length prefix.
pub const MAX_FRAME: usize = 256 << 20;

/// Writes one frame.
pub async fn write(send: &mut quinn::SendStream, payload: &[u8]) -> Result<(), NetError> {
    if payload.len() > MAX_FRAME {
        return Err(NetError::FrameTooLarge { len: payload.len() as u64, max: MAX_FRAME as u64 });
    }
    let len = (payload.len() as u32).to_le_bytes();
    send.write_all(&len).await.map_err(|e| NetError::Stream(e.to_string()))?;
    send.write_all(payload).await.map_err(|e| NetError::Stream(e.to_string()))
}

/// Reads one frame into an aligned buffer (rkyv validation rejects
/// misaligned input). `Ok(None)` at a clean end of stream.
pub async fn read(recv: &mut quinn::RecvStream) -> Result<Option<AlignedVec<16>>, NetError> {
    let mut len = [0u8; 4];
    match recv.read_exact(&mut len).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(e) => return Err(NetError::Stream(e.to_string())),
    }
    let len = u32::from_le_bytes(len) as usize;
    // Checked before allocating: a hostile length costs nothing.
    if len > MAX_FRAME {
        return Err(NetError::FrameTooLarge { len: len as u64, max: MAX_FRAME as u64 });
    }
    let mut buf = AlignedVec::<16>::with_capacity(len);
    buf.resize(len, 0);
    recv.read_exact(&mut buf).await.map_err(|e| NetError::Stream(e.to_string()))?;
    Ok(Some(buf))
}

/// Raw bytes are read in pieces of at most this much, so that what a peer
/// makes a node allocate grows with what it really sends, not with what it
/// announces.
pub const CHUNK: usize = 8 << 20;

/// Writes raw bytes that follow a message (which announced their length).
/// The buffer is handed to QUIC without a copy.
pub async fn write_raw(send: &mut quinn::SendStream, bytes: bytes::Bytes) -> Result<(), NetError> {
    send.write_chunk(bytes).await.map_err(|e| NetError::Stream(e.to_string()))
}

/// Reads `len` raw bytes that follow a message into `buf` (emptied first),
/// refusing more than `max` before anything is allocated. The bytes are
/// copied once, from QUIC's buffers; give `buf` room for `len` — a recycled
/// buffer that is already mapped (`wray_host::buffers::buffer`), or one
/// whose memory is only paged in as bytes arrive, so that a peer that
/// announces much and sends little costs address space, not memory.
pub async fn read_raw_into(
    recv: &mut quinn::RecvStream,
    buf: &mut Vec<u8>,
    len: u64,
    max: u64,
) -> Result<(), NetError> {
    if len > max {
        return Err(NetError::FrameTooLarge { len, max });
    }
    let len = len as usize;
    buf.clear();
    buf.reserve_exact(len);
    // Chunks as QUIC reassembled them, never past this object's end (what
    // follows it on the stream is the next object's).
    while buf.len() < len {
        match recv.read_chunk(len - buf.len(), true).await.map_err(|e| NetError::Stream(e.to_string()))? {
            Some(chunk) => buf.extend_from_slice(&chunk.bytes),
            None => return Err(NetError::Stream(format!("stream ended {} bytes short", len - buf.len()))),
        }
    }
    Ok(())
}

/// Pieces a relay moves per step.
const PIPE_BATCH: usize = 64;

/// Copies everything `from` sends to `to` until `from` finishes (then
/// finishes `to`), without copying the bytes: a relay. An error on either
/// side resets or stops the other, so that both ends learn the path broke.
pub async fn pipe(from: &mut quinn::RecvStream, to: &mut quinn::SendStream) -> Result<(), NetError> {
    let mut chunks: [bytes::Bytes; PIPE_BATCH] = std::array::from_fn(|_| bytes::Bytes::new());
    loop {
        match from.read_chunks(&mut chunks).await {
            Ok(Some(n)) => {
                if let Err(e) = to.write_all_chunks(&mut chunks[..n]).await {
                    let _ = from.stop(0u32.into());
                    return Err(NetError::Stream(e.to_string()));
                }
            }
            Ok(None) => {
                let _ = to.finish();
                return Ok(());
            }
            Err(e) => {
                let _ = to.reset(0u32.into());
                return Err(NetError::Stream(e.to_string()));
            }
        }
    }
}
