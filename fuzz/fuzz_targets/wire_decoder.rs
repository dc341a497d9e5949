//! Every message decoder a peer's bytes reach, on arbitrary bytes: each
//! must return an error or a valid message, never panic, hang or read out
//! of bounds. Frames arrive 16-byte aligned (`frame::read`), as here.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wray_net::proto;

fuzz_target!(|data: &[u8]| {
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(data.len());
    aligned.extend_from_slice(data);
    let bytes: &[u8] = &aligned;
    let _ = proto::decode_request(bytes);
    let _ = proto::decode_event(bytes);
    let _ = proto::decode_actor_msg(bytes);
    let _ = proto::decode_heartbeat(bytes);
    let _ = proto::decode_job_info(bytes);
    let _ = proto::decode_detached(data);
});
