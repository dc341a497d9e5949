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
