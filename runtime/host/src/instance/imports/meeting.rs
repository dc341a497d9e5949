//! `meeting`: members of a collective group on this node hand each other
//! buffers through the node (`wray-node`'s `local/meeting.rs` keeps the
//! points and checks every bound).

use crate::bindings::wray::runtime::{meeting, types};
use crate::instance::convert::to_wit_error;
use crate::instance::state::State;
use crate::services::MeetingShare;
use std::time::Duration;

type Answer = wasmtime::Result<Result<Option<Vec<Vec<u8>>>, types::Error>>;

impl State {
    async fn meet(
        &mut self,
        point: String,
        rank: u32,
        round: u64,
        share: Option<MeetingShare>,
        timeout_ms: u64,
    ) -> Answer {
        // Waiting for the other members is not running: as in `get`, the
        // time does not count against the call's limit. The CPU stays held
        // (the members are about to compute again).
        self.call.clock.pause();
        let r = self.services.meet(&self.caller, point, rank, round, share, Duration::from_millis(timeout_ms)).await;
        self.call.clock.resume();
        // `Vec::from` reuses a part's buffer when this member holds the only
        // reference to it (a part addressed to it alone).
        Ok(r.map(|got| got.map(|parts| parts.into_iter().map(Vec::from).collect())).map_err(to_wit_error))
    }
}

impl meeting::Host for State {
    async fn exchange(&mut self, c: meeting::Contribution, timeout_ms: u64) -> Answer {
        let share =
            MeetingShare { size: c.size, what: c.what, parts: c.parts.into_iter().map(bytes::Bytes::from).collect() };
        self.meet(c.point, c.rank, c.round, Some(share), timeout_ms).await
    }

    async fn wait_round(&mut self, point: String, rank: u32, round: u64, timeout_ms: u64) -> Answer {
        self.meet(point, rank, round, None, timeout_ms).await
    }

    async fn abort(&mut self, point: String, reason: String) -> wasmtime::Result<()> {
        self.services.abort_meeting(&self.caller, &point, &reason);
        Ok(())
    }
}
