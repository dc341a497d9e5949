//! `meeting`: members of a collective group on this node hand each other
//! buffers through the node (`wray-node`'s `local/meeting.rs` keeps the
//! points and checks every bound).
//!
//! The buffers can be large (an allreduce of a model's gradients), so the
//! linker replaces the generated bindings of `exchange` and `wait-round`
//! (`instance/linker.rs`): a member's parts are read where they lie in its
//! memory and copied once, into recycled host buffers, and what it receives
//! is lowered into its memory straight from the buffers the other members
//! filled. The generated trait below serves the same calls through owned
//! vectors; both go through [`share_of`] and [`State::meet`].

use crate::bindings::wray::runtime::{meeting, types};
use crate::instance::convert::to_wit_error;
use crate::instance::state::State;
use crate::services::{MAX_MEETING_MEMBERS, MeetingShare};
use bytes::Bytes;
use std::time::Duration;
use wray_core::Error;

/// By rank, what each member sent the caller; `None` when the time passed
/// first.
pub(crate) type Received = Result<Option<Vec<Bytes>>, types::Error>;

/// The part of `parts` at each of `lengths` (back to back), each copied
/// once into a host buffer — except the member's part for itself, which
/// nobody reads and is not copied. Refuses a count of lengths the node
/// would refuse anyway before allocating one entry per length, and lengths
/// that do not add up to the buffer.
pub(crate) fn share_of(
    size: u32,
    rank: u32,
    what: String,
    parts: &[u8],
    lengths: &[u64],
) -> Result<MeetingShare, Error> {
    let n = lengths.len();
    if n > 1 && (n != size as usize || size > MAX_MEETING_MEMBERS) {
        return Err(Error::InvalidArgument(format!(
            "a meeting contribution of {n} parts for {size} members (no part, one for all, or one per member, \
             at most {MAX_MEETING_MEMBERS})"
        )));
    }
    let total = lengths.iter().try_fold(0u64, |sum, &l| sum.checked_add(l));
    if total != Some(parts.len() as u64) {
        return Err(Error::InvalidArgument(format!(
            "a meeting contribution's part lengths add up to {} bytes, but its parts hold {}",
            total.map_or_else(|| "more than 2^64".to_string(), |t| t.to_string()),
            parts.len()
        )));
    }
    let mut start = 0;
    let parts = lengths
        .iter()
        .enumerate()
        .map(|(k, &len)| {
            // Each length fits: together they add up to `parts.len()`.
            let part = &parts[start..start + len as usize];
            start += len as usize;
            if n > 1 && k == rank as usize { Bytes::new() } else { crate::buffers::copy_to_bytes(part) }
        })
        .collect();
    Ok(MeetingShare { size, what, parts })
}

impl State {
    pub(crate) async fn meet(
        &mut self,
        point: String,
        rank: u32,
        round: u64,
        share: Option<MeetingShare>,
        timeout_ms: u64,
    ) -> Received {
        // Waiting for the other members is not running: as in `get`, the
        // time does not count against the call's limit. The CPU stays held
        // (the members are about to compute again).
        self.apply_releases();
        let work = self.services.meet(&self.caller, point, rank, round, share, Duration::from_millis(timeout_ms));
        let r = self.call.clock.off_while_waiting(work).await;
        r.map_err(to_wit_error)
    }
}

/// Owned vectors for the generated bindings (the linker's versions lower
/// the buffers without this copy).
fn to_vecs(r: Received) -> wasmtime::Result<Result<Option<Vec<Vec<u8>>>, types::Error>> {
    Ok(r.map(|got| got.map(|parts| parts.into_iter().map(Vec::from).collect())))
}

impl meeting::Host for State {
    async fn exchange(
        &mut self,
        point: String,
        size: u32,
        rank: u32,
        round: u64,
        what: String,
        parts: Vec<u8>,
        part_lengths: Vec<u64>,
        timeout_ms: u64,
    ) -> wasmtime::Result<Result<Option<Vec<Vec<u8>>>, types::Error>> {
        let share = match share_of(size, rank, what, &parts, &part_lengths) {
            Ok(share) => share,
            Err(e) => return Ok(Err(to_wit_error(e))),
        };
        to_vecs(self.meet(point, rank, round, Some(share), timeout_ms).await)
    }

    async fn wait_round(
        &mut self,
        point: String,
        rank: u32,
        round: u64,
        timeout_ms: u64,
    ) -> wasmtime::Result<Result<Option<Vec<Vec<u8>>>, types::Error>> {
        to_vecs(self.meet(point, rank, round, None, timeout_ms).await)
    }

    async fn abort(&mut self, point: String, reason: String) -> wasmtime::Result<()> {
        self.services.abort_meeting(&self.caller, &point, &reason);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_is_cut_into_parts_at_its_lengths() {
        let buf: Vec<u8> = (0..10).collect();
        let share = share_of(3, 1, "allreduce".into(), &buf, &[4, 4, 2]).unwrap();
        // Rank 1's part for itself is never read: it is not copied.
        let parts: Vec<&[u8]> = share.parts.iter().map(|p| p.as_ref()).collect();
        assert_eq!(parts, [&[0, 1, 2, 3][..], &[], &[8, 9]]);
        let one = share_of(3, 1, "broadcast".into(), &buf, &[10]).unwrap();
        assert_eq!(one.parts.len(), 1);
        assert_eq!(one.parts[0].as_ref(), buf.as_slice(), "one part for all goes whole, even to its sender's rank");
        assert!(share_of(3, 1, "barrier".into(), &[], &[]).unwrap().parts.is_empty());
    }

    #[test]
    fn lengths_that_do_not_fit_the_buffer_or_the_group_are_refused() {
        let buf = [0u8; 10];
        let err = |size, lengths: &[u64]| share_of(size, 0, "x".into(), &buf, lengths).unwrap_err().to_string();
        assert!(err(3, &[4, 4, 4]).contains("add up to 12 bytes, but its parts hold 10"), "{}", err(3, &[4, 4, 4]));
        assert!(err(3, &[u64::MAX, 2, 0]).contains("more than 2^64"));
        assert!(err(3, &[5, 5]).contains("2 parts for 3 members"));
        let many = vec![0u64; 2000];
        assert!(err(2000, &many).contains("at most 1024"));
    }
}
