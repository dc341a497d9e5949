//! Collective communication among the members of a group — tasks or actors
//! that each hold one [`Group`] value — as Ray's `ray.util.collective`:
//! `allreduce`, `broadcast`, `allgather`, `reduce_scatter`, `barrier`.
//!
//! **How members meet.** The first operation of a group goes through a
//! small [`Rendezvous`] actor, holding no CPU: every rank deposits its
//! buffers — as refs to objects (so they cross nodes like any object, over
//! QUIC) or, up to [`INLINE_BYTES`], the elements themselves — and says
//! where it runs; a rank that deposits last gets them all back at once,
//! the others ask again until everyone has come (a few immediate retries,
//! then sleeps that double up to [`POLL_MAX`]). wray actors run one call at
//! a time, so the actor cannot park a caller inside a call; asking again is
//! the price, paid only by ranks that arrive early.
//!
//! When every member runs in one job on one node — the usual case on one
//! machine — the rest of the group's operations meet in the host instead
//! (`wray::meeting`): each rank hands the host its buffers and waits there,
//! woken by the rank that completes the round, with no actor call, no
//! object and no polling. An allreduce of a small model's gradients went
//! from ~0.2 ms to microseconds this way. Members on several nodes keep
//! meeting through the actor.
//!
//! **Algorithms.** A buffer of up to [`ONE_ROUND_BYTES`] is reduced in one
//! round: every rank puts its whole buffer and reads everyone else's
//! (latency first). A larger one is cut into one chunk per rank and reduced
//! in two rounds — reduce-scatter (rank *k* reads chunk *k* of every rank and
//! reduces it), then allgather (every rank reads the reduced chunks) — so
//! each rank sends and receives 2·(n−1)/n of the buffer, what a ring
//! allreduce moves, in 2 rounds instead of 2·(n−1).
//!
//! **Same bits everywhere.** Every rank folds the contributions in rank
//! order 0, 1, …, n−1, so all ranks compute bit-identical results (no
//! rank's own contribution is added first just because it is at hand).
//!
//! **Failures.** An operation waits at most the group's timeout
//! ([`DEFAULT_TIMEOUT`]), then fails naming the ranks that never came. A
//! member's failure that someone notices — the trainer does, when a
//! worker's call fails — is told to the group with [`Group::abort`]; every
//! member waiting in, or later starting, an operation then fails with that
//! message instead of waiting (members waiting in the host of the aborting
//! node at once, others within [`LOCAL_WAIT_SLICE`] or their next ask).
//! Operations whose sizes disagree between ranks fail in every rank, naming
//! both ranks and sizes.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use wray_guest_core::{ActorHandle, Error, ObjectRef, Tensor, get};

/// Members one group may have.
pub const MAX_GROUP_SIZE: usize = 1024;

/// Buffers up to this size are reduced in one round (every rank reads every
/// other rank's whole buffer); larger ones in two rounds of chunks.
pub const ONE_ROUND_BYTES: usize = 256 << 10;

/// How long an operation waits for the other ranks before it fails, unless
/// the group says otherwise ([`Group::with_timeout`]). Ray's collective
/// calls wait 30 minutes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Rounds the rendezvous keeps at once: a member that runs this far ahead of
/// another (it cannot, in a correct program: each operation waits for all)
/// is refused rather than growing the rendezvous without bound.
const MAX_ROUNDS_IN_FLIGHT: usize = 64;

/// A rank that arrived early asks again this many times at once before it
/// starts sleeping: the others are usually microseconds behind.
const POLL_SPINS: u32 = 16;

/// The longest sleep between two asks.
pub const POLL_MAX: Duration = Duration::from_millis(5);

/// Members meeting in the host wait this long at a time, then ask the
/// group's actor whether someone (a trainer on another node) aborted the
/// group: an abort from elsewhere reaches them within about this much.
pub const LOCAL_WAIT_SLICE: Duration = Duration::from_millis(100);

/// How contributions combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReduceOp {
    /// The element-wise sum.
    Sum,
    /// The sum divided by the group's size.
    Mean,
    /// The element-wise maximum.
    Max,
    /// The element-wise minimum.
    Min,
}

/// Buffers up to this size travel inside the rendezvous' messages instead
/// of as objects: one actor round trip instead of a put, a round trip and
/// a get per other rank.
pub const INLINE_BYTES: usize = 64 << 10;

/// One buffer of a deposit.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) enum Part {
    /// Small: the elements themselves.
    Inline(Vec<f32>),
    /// Large: an object holding them.
    Stored(ObjectRef<Vec<f32>>),
}

impl Part {
    /// `data` as a part: inline when small, else stored.
    fn of(data: &[f32]) -> Result<Part, Error> {
        if data.len() * 4 <= INLINE_BYTES {
            Ok(Part::Inline(data.to_vec()))
        } else {
            Ok(Part::Stored(wray_guest_core::try_put(&data.to_vec())?))
        }
    }

    fn load(&self) -> Result<Vec<f32>, Error> {
        match self {
            Part::Inline(v) => Ok(v.clone()),
            Part::Stored(r) => get(r),
        }
    }
}

type Parts = Vec<Part>;

/// What a rank deposits: the operation, the size it expects every rank to
/// share (`None`: sizes may differ), and its buffers.
#[derive(Serialize, Deserialize)]
pub(crate) struct Deposit {
    what: String,
    len: Option<u64>,
    parts: Parts,
    /// Where the rank runs ([`place`]), in a group's first operation
    /// (empty after): members that all run in one place meet in the host
    /// from the next operation on.
    place: String,
}

/// The answer to a deposit or an ask.
#[derive(Serialize, Deserialize)]
pub(crate) enum Round {
    /// Every rank's parts and place, by rank.
    Ready(Vec<Parts>, Vec<String>),
    /// Still missing these ranks.
    Waiting(Vec<u32>),
}

struct Slot {
    what: String,
    len: Option<u64>,
    /// The first rank that deposited (for a size mismatch's message).
    first: u32,
    parts: Vec<Option<Parts>>,
    places: Vec<String>,
    /// Ranks that have taken the full round; the slot goes when all have.
    taken: Vec<bool>,
    /// Set when ranks disagree: every rank gets this error.
    mismatch: Option<String>,
}

/// Where a group's members meet (module docs). One per group; holds no CPU.
#[wray_guest_core::actor]
pub struct Rendezvous {
    name: String,
    size: u32,
    slots: BTreeMap<u64, Slot>,
    aborted: Option<String>,
}

#[wray_guest_core::actor]
impl Rendezvous {
    pub(crate) fn new(name: String, size: u32) -> Rendezvous {
        Rendezvous { name, size, slots: BTreeMap::new(), aborted: None }
    }

    /// Rank `rank` deposits its parts for operation number `seq`.
    pub(crate) fn deposit(&mut self, seq: u64, rank: u32, deposit: Deposit) -> Result<Round, Error> {
        self.check(seq, rank)?;
        let size = self.size as usize;
        if !self.slots.contains_key(&seq) && self.slots.len() >= MAX_ROUNDS_IN_FLIGHT {
            return Err(self.error(format!(
                "rank {rank} started operation #{seq} while {MAX_ROUNDS_IN_FLIGHT} earlier ones are unfinished"
            )));
        }
        let slot = self.slots.entry(seq).or_insert_with(|| Slot {
            what: deposit.what.clone(),
            len: deposit.len,
            first: rank,
            parts: (0..size).map(|_| None).collect(),
            places: vec![String::new(); size],
            taken: vec![false; size],
            mismatch: None,
        });
        if slot.parts[rank as usize].is_some() {
            return Err(Error::InvalidArgument(format!(
                "collective group '{}': rank {rank} joined operation #{seq} twice (two members share a rank?)",
                self.name
            )));
        }
        if slot.mismatch.is_none() && (slot.what != deposit.what || slot.len != deposit.len) {
            let show = |what: &str, len: Option<u64>| match len {
                Some(n) => format!("{what} of {n} elements"),
                None => what.to_string(),
            };
            // Name the lower rank first, so the message does not depend on
            // which rank happened to arrive first.
            let mut two = [(slot.first, show(&slot.what, slot.len)), (rank, show(&deposit.what, deposit.len))];
            two.sort_by_key(|(r, _)| *r);
            let [(r0, call0), (r1, call1)] = two;
            slot.mismatch = Some(format!(
                "collective group '{}', operation #{seq}: rank {r0} called {call0} but rank {r1} called {call1}",
                self.name
            ));
        }
        slot.parts[rank as usize] = Some(deposit.parts);
        slot.places[rank as usize] = deposit.place;
        self.ask(seq, rank)
    }

    /// Rank `rank` asks whether operation `seq` is complete.
    pub(crate) fn ask(&mut self, seq: u64, rank: u32) -> Result<Round, Error> {
        self.check(seq, rank)?;
        let name = self.name.clone();
        let Some(slot) = self.slots.get_mut(&seq) else {
            return Err(Error::InvalidArgument(format!(
                "collective group '{name}': rank {rank} asked for operation #{seq}, which it never joined"
            )));
        };
        let missing: Vec<u32> = (0..slot.parts.len() as u32).filter(|r| slot.parts[*r as usize].is_none()).collect();
        if !missing.is_empty() {
            return Ok(Round::Waiting(missing));
        }
        slot.taken[rank as usize] = true;
        let mismatch = slot.mismatch.clone();
        let parts: Vec<Parts> = slot.parts.iter().map(|p| p.clone().unwrap_or_default()).collect();
        let places = slot.places.clone();
        if slot.taken.iter().all(|t| *t) {
            self.slots.remove(&seq);
        }
        match mismatch {
            Some(m) => Err(Error::InvalidArgument(m)),
            None => Ok(Round::Ready(parts, places)),
        }
    }

    /// Why the group was aborted, if it was: what members meeting in the
    /// host ask between two waits.
    pub(crate) fn aborted(&self) -> Option<String> {
        self.aborted.clone()
    }

    /// Fails every operation of the group from now on with `reason`.
    pub(crate) fn abort(&mut self, reason: String) {
        if self.aborted.is_none() {
            self.aborted = Some(reason);
        }
        self.slots.clear();
    }
}

impl Rendezvous {
    fn check(&self, seq: u64, rank: u32) -> Result<(), Error> {
        if let Some(reason) = &self.aborted {
            return Err(self.error(format!("aborted: {reason}")));
        }
        if rank >= self.size {
            return Err(Error::InvalidArgument(format!(
                "collective group '{}': rank {rank} in a group of {}",
                self.name, self.size
            )));
        }
        if seq == 0 {
            return Err(self.error("operation #0 (numbers start at 1)".into()));
        }
        Ok(())
    }

    fn error(&self, what: String) -> Error {
        Error::TaskFailed { function: format!("collective group '{}'", self.name), message: what }
    }
}

/// One member's handle on a collective group: its rank, the group's size,
/// and how many operations it has run. A value: hand each member its own
/// (from [`create_group`]) as a task or actor argument. Every member must
/// run the same operations in the same order, as with Ray's collectives.
#[derive(Clone, Serialize, Deserialize)]
pub struct Group {
    name: String,
    rendezvous: ActorHandle<Rendezvous>,
    rank: u32,
    size: u32,
    seq: u64,
    timeout_ms: u64,
    /// Every member runs in one job on one node: learned in the first
    /// operation (through the actor, where each member says where it runs);
    /// from the second on, the members meet in the host.
    #[serde(default)]
    local: bool,
}

/// Creates a group of `size` members named `name` (for messages) and returns
/// one handle per rank, rank 0 first.
pub fn create_group(name: &str, size: usize) -> Result<Vec<Group>, Error> {
    if size == 0 || size > MAX_GROUP_SIZE {
        return Err(Error::InvalidArgument(format!(
            "collective group '{name}': {size} members (1 to {MAX_GROUP_SIZE})"
        )));
    }
    // The rendezvous only passes refs around: it holds no CPU slot, which
    // the members need.
    let rendezvous = Rendezvous::options().num_cpus(0.0).try_remote(name.to_string(), size as u32)?;
    Ok((0..size as u32)
        .map(|rank| Group {
            name: name.to_string(),
            rendezvous: rendezvous.clone(),
            rank,
            size: size as u32,
            seq: 0,
            timeout_ms: DEFAULT_TIMEOUT.as_millis() as u64,
            local: false,
        })
        .collect())
}

// SIMD for the element-wise loops of a reduction: wasmtime, which runs
// every wray guest, has it, and a large allreduce folds hundreds of MiB.
// Every rank runs the same code on the same positions, so every rank gets
// the same bits.
#[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
fn combine(op: ReduceOp, acc: &mut [f32], other: &[f32]) {
    match op {
        ReduceOp::Sum | ReduceOp::Mean => acc.iter_mut().zip(other).for_each(|(a, b)| *a += *b),
        ReduceOp::Max => acc.iter_mut().zip(other).for_each(|(a, b)| *a = a.max(*b)),
        ReduceOp::Min => acc.iter_mut().zip(other).for_each(|(a, b)| *a = a.min(*b)),
    }
}

/// Divides every element by `by` (a group's size). By a power of two it
/// multiplies by the inverse instead, several times faster and the same
/// bits: the inverse is exact, so both round the same exact quotient.
#[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
fn divide(acc: &mut [f32], by: u32) {
    if by.is_power_of_two() {
        let inverse = 1.0 / by as f32;
        acc.iter_mut().for_each(|x| *x *= inverse);
    } else {
        let by = by as f32;
        acc.iter_mut().for_each(|x| *x /= by);
    }
}

/// Where the caller runs, as members compare it: one job on one node.
fn place() -> String {
    let ctx = wray_guest_core::runtime_context();
    format!("job {} on {}", ctx.job_id, ctx.node_id)
}

/// What one operation sends: nothing, one buffer every rank gets, or one
/// per rank — always views of one slice of the caller's buffer, so that on
/// one node the host reads it where it lies instead of a copy of it.
#[derive(Clone, Copy)]
enum Outgoing<'a> {
    Nothing,
    ToAll(&'a [f32]),
    /// Rank k's part is `data[bounds[k]..bounds[k + 1]]` (see [`chunks`]).
    PerRank(&'a [f32], &'a [usize]),
}

/// What one rank sent another.
enum Incoming {
    Floats(Vec<f32>),
    /// The bytes the host lowered into this instance, read in place as
    /// floats (wasm is little-endian, so an f32's bytes in memory are its
    /// `to_le_bytes`, the encoding the host passes on). Only ever holds
    /// bytes aligned for f32 ([`Incoming::from_bytes`]).
    Bytes(Vec<u8>),
}

impl Incoming {
    fn from_bytes(group: &str, rank: usize, bytes: Vec<u8>) -> Result<Incoming, Error> {
        if !bytes.len().is_multiple_of(4) {
            return Err(Error::InvalidArgument(format!(
                "collective group '{group}': rank {rank} sent {} bytes, not a whole number of f32s",
                bytes.len()
            )));
        }
        Ok(match bytemuck::try_cast_slice::<u8, f32>(&bytes) {
            // The usual case: the allocator aligned the list.
            Ok(_) => Incoming::Bytes(bytes),
            Err(_) => {
                Incoming::Floats(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
            }
        })
    }

    fn as_slice(&self) -> &[f32] {
        match self {
            Incoming::Floats(v) => v,
            // Aligned: checked when it was made.
            Incoming::Bytes(b) => bytemuck::cast_slice(b),
        }
    }

    fn into_vec(self) -> Vec<f32> {
        match self {
            Incoming::Floats(v) => v,
            Incoming::Bytes(b) => bytemuck::cast_slice(&b).to_vec(),
        }
    }
}

/// What one operation's members receive: by rank, the part that rank sent
/// this one (`None` from this rank itself and from ranks that sent none).
type Received = Vec<Option<Incoming>>;

/// Elements combined at a time by [`Group::fold_into`]: a block of every
/// rank's part stays in cache while it is folded.
const FOLD_BLOCK: usize = 1024;

impl Group {
    /// This member's rank, `0..size`.
    pub fn rank(&self) -> usize {
        self.rank as usize
    }

    /// How many members the group has.
    pub fn size(&self) -> usize {
        self.size as usize
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The same handle with another timeout for each operation.
    pub fn with_timeout(mut self, timeout: Duration) -> Group {
        self.timeout_ms = timeout.as_millis().min(u64::MAX as u128) as u64;
        self
    }

    /// Fails the group's operations, now and later, in every member, with
    /// `reason` (e.g. "rank 1 died: ..."). Any holder may call it.
    pub fn abort(&self, reason: &str) {
        // Both ways members meet: the host's meeting point (members on
        // this node wake at once) and the actor (members elsewhere, and
        // members on this node that wait in slices and ask it). Fire and
        // forget: the rendezvous may be gone already, and an abort has
        // nothing to report back.
        wray_guest_core::meeting::abort(&self.point(), reason);
        drop(self.rendezvous.abort(reason.to_string()));
    }

    /// The group's meeting point in the host: unique per group, since it
    /// names the group's actor.
    fn point(&self) -> String {
        // The group's name for messages, cut to 128 bytes at a character
        // boundary: with the actor's id the point stays within the host's
        // bound on names (256 bytes).
        let mut name = self.name[..self.name.floor_char_boundary(128)].to_string();
        name.push('@');
        name.push_str(&self.rendezvous.actor_id());
        name
    }

    fn failed(&self, message: String) -> Error {
        Error::TaskFailed { function: format!("collective group '{}'", self.name), message }
    }

    /// Runs the next operation: sends `out` and returns what each rank
    /// sent this one. `len`, when given, is the size every rank must agree
    /// on. `out` has been read (copied out) by the time this returns.
    fn exchange(&mut self, what: &str, len: Option<u64>, out: Outgoing<'_>) -> Result<Received, Error> {
        self.seq += 1;
        if self.local { self.meet_here(what, len, out) } else { self.meet_through_actor(what, len, out) }
    }

    /// An operation among members of one node: they wait in the host,
    /// woken by the last to come. Waits in slices of [`LOCAL_WAIT_SLICE`],
    /// asking the actor between two whether someone aborted the group from
    /// another node.
    fn meet_here(&self, what: &str, len: Option<u64>, out: Outgoing<'_>) -> Result<Received, Error> {
        use wray_guest_core::meeting;
        let seq = self.seq;
        let point = self.point();
        let signature = match len {
            Some(n) => format!("{what} of {n} elements"),
            None => what.to_string(),
        };
        let timeout = Duration::from_millis(self.timeout_ms);
        let started = Instant::now();
        let slice = || LOCAL_WAIT_SLICE.min(timeout.saturating_sub(started.elapsed()));
        let local_error = |e: Error| match e {
            Error::InvalidArgument(m) => self.failed(format!("operation #{seq}: {m}")),
            other => other,
        };
        let bytes = |d: &[f32]| d.len() as u64 * 4;
        let (parts, lengths): (&[f32], Vec<u64>) = match out {
            Outgoing::Nothing => (&[], Vec::new()),
            Outgoing::ToAll(d) => (d, vec![bytes(d)]),
            Outgoing::PerRank(d, b) => (d, b.windows(2).map(|w| bytes(&d[w[0]..w[1]])).collect()),
        };
        let contribution = meeting::Contribution {
            point: &point,
            size: self.size,
            rank: self.rank,
            round: seq,
            what: &signature,
            parts: bytemuck::cast_slice(parts),
            lengths: &lengths,
        };
        let mut got = meeting::exchange(contribution, slice()).map_err(local_error)?;
        loop {
            if let Some(by_rank) = got {
                return by_rank
                    .into_iter()
                    .enumerate()
                    .map(|(r, bytes)| {
                        // An empty part from another rank is an empty
                        // buffer only where one was expected.
                        if r == self.rank as usize || bytes.is_empty() {
                            Ok(None)
                        } else {
                            Incoming::from_bytes(&self.name, r, bytes).map(Some)
                        }
                    })
                    .collect();
            }
            if started.elapsed() >= timeout {
                return Err(self.failed(format!(
                    "{what} (operation #{seq}) on rank {} waited {timeout:?} for ranks of this node, which never joined",
                    self.rank
                )));
            }
            if let Some(reason) = get(&self.rendezvous.aborted())? {
                return Err(self.failed(format!("aborted: {reason}")));
            }
            got = meeting::wait_round(&point, self.rank, seq, slice()).map_err(local_error)?;
        }
    }

    /// An operation through the group's actor: members deposit refs (or
    /// small buffers) and ask again until every rank has come.
    fn meet_through_actor(&mut self, what: &str, len: Option<u64>, out: Outgoing<'_>) -> Result<Received, Error> {
        let seq = self.seq;
        let me = self.rank as usize;
        let parts = match out {
            Outgoing::Nothing => Vec::new(),
            Outgoing::ToAll(d) => vec![Part::of(d)?],
            // This rank's part for itself is never read: none is stored.
            Outgoing::PerRank(d, b) => (0..b.len() - 1)
                .map(|k| if k == me { Ok(Part::Inline(Vec::new())) } else { Part::of(&d[b[k]..b[k + 1]]) })
                .collect::<Result<Parts, Error>>()?,
        };
        // Only the first operation decides where members meet.
        let place = if seq == 1 { place() } else { String::new() };
        let deposit = Deposit { what: what.to_string(), len, parts, place };
        let mut round = get(&self.rendezvous.deposit(seq, self.rank, deposit))?;
        let started = Instant::now();
        let timeout = Duration::from_millis(self.timeout_ms);
        let mut asks = 0u32;
        let mut pause = Duration::from_micros(500);
        let (all, places) = loop {
            match round {
                Round::Ready(all, places) => break (all, places),
                Round::Waiting(missing) => {
                    if started.elapsed() >= timeout {
                        return Err(self.failed(format!(
                            "{what} (operation #{seq}) on rank {} waited {timeout:?} for ranks {missing:?}, \
                             which never joined",
                            self.rank
                        )));
                    }
                    asks += 1;
                    if asks > POLL_SPINS {
                        std::thread::sleep(pause);
                        pause = (pause * 2).min(POLL_MAX);
                    }
                }
            }
            round = get(&self.rendezvous.ask(seq, self.rank))?;
        };
        // Every rank sees the same places, so every rank makes the same
        // choice, from the next operation on.
        if seq == 1 && !places.is_empty() && places.iter().all(|p| *p == places[0]) {
            self.local = true;
        }
        all.iter()
            .enumerate()
            .map(|(r, parts)| match parts.len() {
                _ if r == me => Ok(None),
                0 => Ok(None),
                1 => parts[0].load().map(|v| Some(Incoming::Floats(v))),
                n if n == self.size as usize => parts[me].load().map(|v| Some(Incoming::Floats(v))),
                n => Err(Error::InvalidArgument(format!(
                    "collective group '{}': rank {r} sent {n} parts to a group of {}",
                    self.name, self.size
                ))),
            })
            .collect()
    }

    /// What rank `rank` sent this one (empty if nothing: the length checks
    /// that follow name a rank that sent too little).
    fn part<'a>(&self, got: &'a Received, rank: usize) -> &'a [f32] {
        got.get(rank).and_then(|p| p.as_ref()).map_or(&[], Incoming::as_slice)
    }

    /// Combines what every rank sent this one with this rank's own part,
    /// `own`, into `own`: in rank order, so that every rank computes the
    /// same bits, a block at a time; `Mean` divides by the group's size in
    /// the same pass.
    fn fold_into(&self, got: &Received, own: &mut [f32], what: &str, op: ReduceOp) -> Result<(), Error> {
        let (n, me) = (self.size as usize, self.rank as usize);
        for r in (0..n).filter(|&r| r != me) {
            check_len(&self.name, what, r, self.part(got, r).len(), own.len())?;
        }
        let mut block = [0f32; FOLD_BLOCK];
        for start in (0..own.len()).step_by(FOLD_BLOCK) {
            let end = (start + FOLD_BLOCK).min(own.len());
            let acc = &mut block[..end - start];
            for r in 0..n {
                let part = if r == me { &own[start..end] } else { &self.part(got, r)[start..end] };
                if r == 0 {
                    acc.copy_from_slice(part);
                } else {
                    combine(op, acc, part);
                }
            }
            if op == ReduceOp::Mean {
                divide(acc, self.size);
            }
            own[start..end].copy_from_slice(acc);
        }
        Ok(())
    }

    /// Reduces `data` across the group in place: afterwards every rank holds
    /// the same (bit-identical) result.
    pub fn allreduce(&mut self, data: &mut [f32], op: ReduceOp) -> Result<(), Error> {
        let n = self.size as usize;
        if n == 1 {
            // A mean over one rank is the value itself.
            return Ok(());
        }
        let len = Some(data.len() as u64);
        if data.len() * 4 <= ONE_ROUND_BYTES {
            let got = self.exchange("allreduce", len, Outgoing::ToAll(data))?;
            return self.fold_into(&got, data, "allreduce", op);
        }
        // Reduce-scatter: this rank reduces its chunk of everyone's buffer
        // (in place: every part has been sent), then allgather.
        let bounds = chunks(data.len(), n);
        let got = self.exchange("allreduce", len, Outgoing::PerRank(data, &bounds))?;
        let me = self.rank as usize;
        let (lo, hi) = (bounds[me], bounds[me + 1]);
        self.fold_into(&got, &mut data[lo..hi], "allreduce", op)?;
        drop(got);
        let reduced = self.exchange("allreduce (gather)", len, Outgoing::ToAll(&data[lo..hi]))?;
        for k in (0..n).filter(|&k| k != me) {
            let (lo, hi) = (bounds[k], bounds[k + 1]);
            let chunk = self.part(&reduced, k);
            check_len(&self.name, "allreduce", k, chunk.len(), hi - lo)?;
            data[lo..hi].copy_from_slice(chunk);
        }
        Ok(())
    }

    /// [`allreduce`](Group::allreduce) of a tensor: a new tensor of the same
    /// shape holding the result.
    pub fn allreduce_tensor(&mut self, tensor: &Tensor, op: ReduceOp) -> Result<Tensor, Error> {
        let mut data = tensor.to_vec()?;
        self.allreduce(&mut data, op)?;
        Tensor::from_vec(&tensor.shape(), &data)
    }

    /// Makes every rank's `data` a copy of rank `root`'s (resized to its
    /// length).
    pub fn broadcast(&mut self, data: &mut Vec<f32>, root: usize) -> Result<(), Error> {
        if root >= self.size as usize {
            return Err(Error::InvalidArgument(format!(
                "collective group '{}': broadcast from rank {root} in a group of {}",
                self.name, self.size
            )));
        }
        let out = if root == self.rank as usize { Outgoing::ToAll(data) } else { Outgoing::Nothing };
        let mut got = self.exchange(&format!("broadcast from rank {root}"), None, out)?;
        if root != self.rank as usize {
            // A root with an empty buffer sends an empty part.
            *data = got[root].take().map(Incoming::into_vec).unwrap_or_default();
        }
        Ok(())
    }

    /// Every rank's `data`, by rank (lengths may differ).
    pub fn allgather(&mut self, data: &[f32]) -> Result<Vec<Vec<f32>>, Error> {
        if self.size == 1 {
            return Ok(vec![data.to_vec()]);
        }
        let got = self.exchange("allgather", None, Outgoing::ToAll(data))?;
        Ok(got
            .into_iter()
            .enumerate()
            .map(
                |(r, part)| {
                    if r == self.rank as usize {
                        data.to_vec()
                    } else {
                        part.map(Incoming::into_vec).unwrap_or_default()
                    }
                },
            )
            .collect())
    }

    /// Reduces `data` across the group and returns this rank's share of the
    /// result: of `size` nearly equal chunks, chunk `k` spans elements
    /// `k*len/size .. (k+1)*len/size`.
    pub fn reduce_scatter(&mut self, data: &[f32], op: ReduceOp) -> Result<Vec<f32>, Error> {
        let n = self.size as usize;
        let bounds = chunks(data.len(), n);
        let me = self.rank as usize;
        let mut mine = data[bounds[me]..bounds[me + 1]].to_vec();
        if n > 1 {
            let got = self.exchange("reduce_scatter", Some(data.len() as u64), Outgoing::PerRank(data, &bounds))?;
            self.fold_into(&got, &mut mine, "reduce_scatter", op)?;
        }
        Ok(mine)
    }

    /// Waits until every rank has reached this point.
    pub fn barrier(&mut self) -> Result<(), Error> {
        if self.size > 1 {
            self.exchange("barrier", None, Outgoing::Nothing)?;
        }
        Ok(())
    }
}

/// Chunk `k` of `n` of a buffer of `len` spans `bounds[k]..bounds[k + 1]`.
fn chunks(len: usize, n: usize) -> Vec<usize> {
    (0..=n).map(|k| k * len / n).collect()
}

fn check_len(group: &str, what: &str, rank: usize, got: usize, want: usize) -> Result<(), Error> {
    if got == want {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "collective group '{group}': {what}: rank {rank} sent {got} elements where {want} were expected"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_buffer_in_order() {
        for len in [0, 1, 5, 64, 1001] {
            for n in 1..9 {
                let b = chunks(len, n);
                assert_eq!((b[0], b[n]), (0, len));
                assert!(b.windows(2).all(|w| w[0] <= w[1] && w[1] - w[0] <= len / n + 1));
            }
        }
    }

    #[test]
    fn combining_in_rank_order_is_the_same_everywhere() {
        let parts = [vec![1.0e8f32, -3.5], vec![1.0, 2.0], vec![-1.0e8, 0.25]];
        let fold = |op| {
            let mut acc = parts[0].clone();
            for p in &parts[1..] {
                combine(op, &mut acc, p);
            }
            acc
        };
        assert_eq!(fold(ReduceOp::Sum), vec![0.0, -1.25]);
        assert_eq!(fold(ReduceOp::Max), vec![1.0e8, 2.0]);
        assert_eq!(fold(ReduceOp::Min), vec![-1.0e8, -3.5]);
    }

    #[test]
    fn a_mean_divides_to_the_same_bits_whatever_the_group_size() {
        // Every 65,537th bit pattern: normals, subnormals, zeros of both
        // signs, infinities and NaNs.
        let values: Vec<f32> = (0..=u32::MAX).step_by(65_537).map(f32::from_bits).collect();
        for by in [1u32, 2, 3, 4, 6, 8, 64, 1000, 1024] {
            let mut got = values.clone();
            divide(&mut got, by);
            for (x, y) in values.iter().zip(&got) {
                let want = x / by as f32;
                assert!(
                    want.to_bits() == y.to_bits() || (want.is_nan() && y.is_nan()),
                    "{x:e} / {by}: {y:e}, not {want:e}"
                );
            }
        }
    }
}
