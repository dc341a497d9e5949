//! Meeting points: the host primitive under `wray::train`'s collectives
//! (`meeting` in `wit/runtime.wit`). Members of one job on one node meet at
//! a named point in numbered rounds; each hands the host its parts and
//! waits inside the host (not polling) until every member has come, then
//! gets what each member sent it. Members on different nodes do not meet
//! here — `wray::train::collective` falls back to an actor for them — so
//! most programs use the collectives, not this module.

use crate::Error;
use crate::bindings::wray::runtime::meeting as wit;
use std::time::Duration;

/// One member's share of one round.
#[derive(Clone, Debug)]
pub struct Contribution<'a> {
    /// The point's name, the same for every member (1 to 256 bytes).
    pub point: &'a str,
    /// How many members meet there (1 to 1024), the same for every member.
    pub size: u32,
    /// This member, `0..size`.
    pub rank: u32,
    /// The round, from 1; every member contributes to rounds in order.
    pub round: u64,
    /// What the member does, e.g. "allreduce of 217 elements": members that
    /// say different things fail the round in all of them, naming both.
    pub what: &'a str,
    /// The member's parts, back to back: the host reads them where they
    /// lie, so a buffer the member holds goes as it is.
    pub parts: &'a [u8],
    /// The parts' lengths in bytes, adding up to `parts.len()`: none for no
    /// part, one for a part every member gets, or `size` (part k for rank
    /// k; the member's part for itself is never read and may be empty).
    pub lengths: &'a [u64],
}

fn millis(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

/// Contributes to a round and waits up to `timeout` for the other members.
/// `Ok(Some(by_rank))`: what each member sent this one (its one part or its
/// part for this rank; empty for a member that sent none, and for this
/// member itself). `Ok(None)`: the time passed first; the contribution
/// stays, and [`wait_round`] waits again.
pub fn exchange(c: Contribution<'_>, timeout: Duration) -> Result<Option<Vec<Vec<u8>>>, Error> {
    Ok(wit::exchange(c.point, c.size, c.rank, c.round, c.what, c.parts, c.lengths, millis(timeout))?)
}

/// Waits again, up to `timeout`, for a round this member contributed to.
pub fn wait_round(point: &str, rank: u32, round: u64, timeout: Duration) -> Result<Option<Vec<Vec<u8>>>, Error> {
    Ok(wit::wait_round(point, rank, round, millis(timeout))?)
}

/// Fails every round of `point` on this node, open and to come, in every
/// member, with `reason`.
pub fn abort(point: &str, reason: &str) {
    wit::abort(point, reason)
}
