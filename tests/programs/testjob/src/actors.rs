//! Actor classes: a counter, actors whose state lives in the heap (for
//! checkpoints), ones holding refs, a detached vault, a fragile one that
//! refuses to start, a flaky one that crashes until a tally says enough;
//! and the checkpoint scenario.

use crate::*;

#[wray::actor]
pub struct Counter {
    pub(crate) n: i64,
}

#[wray::actor]
impl Counter {
    pub fn new(start: i64) -> Self {
        Counter { n: start }
    }
    /// Another function returning Self: `new` stays the constructor.
    pub fn doubled(start: i64) -> Self {
        Counter::new(start * 2)
    }
    pub fn incr(&mut self, by: i64) -> i64 {
        self.n += by;
        self.n
    }
    pub fn get(&self) -> i64 {
        self.n
    }
    /// A generator method: counts up `steps` times, yielding each count,
    /// `ms` apart.
    pub fn count_up(&mut self, steps: i64, ms: u64) -> impl Iterator<Item = i64> + '_ {
        (0..steps).map(move |i| {
            if i > 0 {
                std::thread::sleep(Duration::from_millis(ms));
            }
            self.n += 1;
            self.n
        })
    }
    /// As the `stamped_items` task: `n` items of `bytes` bytes, each with
    /// the time it was made.
    pub fn stamped(&mut self, n: u32, bytes: u32) -> impl Iterator<Item = (u64, Vec<u8>)> + '_ {
        (0..n).map(move |_| (micros_now(), vec![7u8; bytes as usize]))
    }
    pub fn quit(&mut self) -> i64 {
        wray::exit_actor()
    }
    pub fn crash(&mut self) -> i64 {
        panic!("counter crashed at {}", self.n)
    }
    /// The node hosting the actor.
    pub fn node(&self) -> String {
        wray::runtime_context().node_id
    }
    /// The name it was created with, as its context says.
    pub fn name(&self) -> Option<String> {
        wray::runtime_context().actor_name
    }
    pub fn slow(&self, ms: u64) -> u64 {
        std::thread::sleep(Duration::from_millis(ms));
        ms
    }
    /// Reads the object `id` — in the tests, the result of an earlier call
    /// to this same actor — and adds it to the count.
    pub fn add_result_of(&mut self, id: wray::ObjectId) -> Result<i64, wray::Error> {
        let earlier: ObjectRef<u64> = ObjectRef::from_id(id)?;
        self.n += wray::get(&earlier)? as i64;
        Ok(self.n)
    }
}

/// An actor whose state lives in the heap in several shapes (a vector, a
/// map, a string), for the checkpoint tests.
#[wray::actor]
pub struct Ledger {
    entries: Vec<u64>,
    totals: std::collections::BTreeMap<String, u64>,
    log: String,
}

#[wray::actor]
impl Ledger {
    pub fn new(seed: u64) -> Self {
        println!("ledger: constructor ran");
        Ledger { entries: vec![seed], totals: Default::default(), log: String::new() }
    }
    pub fn add(&mut self, name: String, amount: u64) -> u64 {
        // Printing fetches a WASI stream; it must not disqualify the actor.
        println!("ledger: {name} += {amount}");
        self.entries.push(amount);
        *self.totals.entry(name.clone()).or_default() += amount;
        self.log.push_str(&format!("{name}:{amount};"));
        self.entries.iter().sum()
    }
    /// Adds `n` entries: megabytes of heap.
    pub fn grow(&mut self, n: u64) -> usize {
        self.entries.extend((0..n).map(|i| i.wrapping_mul(0x9e37_79b9) % 1000));
        self.entries.len()
    }
    pub fn summary(&self) -> String {
        let sum: u64 = self.entries.iter().sum();
        let hash =
            self.log.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        format!("{} entries, sum {sum}, totals {:?}, log {hash:016x}", self.entries.len(), self.totals)
    }
    pub fn crash(&mut self) -> u64 {
        panic!("the ledger crashed with {} entries", self.entries.len())
    }
    pub fn node(&self) -> String {
        wray::runtime_context().node_id
    }
}

/// An actor holding object refs between calls: not snapshotable.
#[wray::actor]
pub struct Keeper {
    held: Vec<ObjectRef<i64>>,
    calls: u64,
}

#[wray::actor]
impl Keeper {
    pub fn new(calls: u64) -> Self {
        Keeper { held: Vec::new(), calls }
    }
    pub fn keep(&mut self, value: i64) -> u64 {
        self.held.push(wray::put(&value));
        self.calls += 1;
        self.calls
    }
    pub fn calls(&self) -> u64 {
        self.calls
    }
    pub fn crash(&mut self) -> u64 {
        panic!("the keeper crashed")
    }
}

/// A detached actor that keeps refs another job made.
#[wray::actor]
pub struct Vault {
    held: Vec<ObjectRef<i64>>,
}

#[wray::actor]
impl Vault {
    pub fn new(_seed: i64) -> Self {
        Vault { held: Vec::new() }
    }
    pub fn keep(&mut self, refs: Vec<ObjectRef<i64>>) -> usize {
        self.held.extend(refs);
        self.held.len()
    }
    /// The values behind every ref it holds.
    pub fn total(&self) -> Result<i64, Error> {
        Ok(wray::get_all(&self.held)?.into_iter().sum())
    }
}

pub(crate) fn checkpoints() -> Result<(), Error> {
    let show = |r: Result<u64, Error>| r.map_or_else(|e| format!("error: {e}"), |v| v.to_string());
    // Every call: a crash loses nothing, twice over.
    let l = Ledger::options().checkpoint_every(1).max_restarts(3).remote(7);
    for i in 0..20u64 {
        wray::get(&l.add(format!("k{}", i % 3), i))?;
    }
    wray::get(&l.grow(300_000))?;
    let before = wray::get(&l.summary())?;
    println!("before: {before}");
    println!("crash: {}", show(wray::get(&l.crash())));
    let after = wray::get(&l.summary())?;
    println!("after crash: {after}");
    println!("state kept: {}", after == before);
    println!("add after restore: {}", wray::get(&l.add("k0".to_string(), 1000))?);
    let before = wray::get(&l.summary())?;
    println!("crash again: {}", show(wray::get(&l.crash())));
    println!("state kept again: {}", wray::get(&l.summary())? == before);

    // Every third call: a crash goes back to the last snapshot.
    let e = Ledger::options().checkpoint_every(3).max_restarts(1).remote(0);
    for i in 1..=5u64 {
        wray::get(&e.add("x".to_string(), i))?;
    }
    wray::get(&e.crash()).ok();
    println!("every 3, after 5 adds and a crash: {}", wray::get(&e.summary())?);

    // Holding object refs disqualifies: the constructor runs again.
    let k = Keeper::options().checkpoint_every(1).max_restarts(1).remote(0);
    wray::get(&k.keep(1))?;
    wray::get(&k.keep(2))?;
    wray::get(&k.crash()).ok();
    println!("keeper calls after a crash: {}", wray::get(&k.calls())?);

    // Without checkpoints a restart starts over (Ray's behaviour).
    let plain = Ledger::options().max_restarts(1).remote(0);
    wray::get(&plain.add("y".to_string(), 5))?;
    wray::get(&plain.crash()).ok();
    println!("without checkpoints: {}", wray::get(&plain.summary())?);
    Ok(())
}

#[wray::remote]
pub(crate) fn bump(counter: ActorHandle<Counter>, by: i64) -> Result<i64, Error> {
    wray::get(&counter.incr(by))
}

/// Bumps the counter once `gate` has counted to 1: a task that holds a
/// handle while it runs, for as long as its caller wants.
#[wray::remote]
pub(crate) fn bump_after(counter: ActorHandle<Counter>, gate: ActorHandle<Counter>) -> Result<i64, Error> {
    while wray::get(&gate.get())? < 1 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    wray::get(&counter.incr(1))
}

/// Creates a named counter on node `node`, calls it once and returns its
/// handle: an actor a task makes, used after the task ended.
#[wray::remote]
pub(crate) fn make_counter(name: String, start: i64, node: String) -> Result<ActorHandle<Counter>, Error> {
    let there = wray::SchedulingStrategy::NodeAffinity { node_id: node, soft: false };
    let c = Counter::options().name(&name).scheduling_strategy(there).remote(start);
    wray::get(&c.incr(1))?;
    Ok(c)
}

/// Hands back the handle it was given (from wherever it ran).
#[wray::remote]
pub(crate) fn echo_handle(c: ActorHandle<Counter>) -> ActorHandle<Counter> {
    c
}

/// Creates the link of a relay chain before `next`: its constructor's
/// arguments hold a handle.
#[wray::remote]
pub(crate) fn relay_before(me: i64, next: ActorHandle<Relay>) -> ActorHandle<Relay> {
    Relay::remote(me, Some(next))
}

#[wray::remote]
pub(crate) fn bump_named(name: String) -> Result<i64, Error> {
    let c = wray::get_actor::<Counter>(&name)?;
    wray::get(&c.incr(100))
}

#[wray::remote]
pub(crate) fn named_actors() -> Result<Vec<String>, Error> {
    wray::list_named_actors()
}

/// One link of a chain of actors, each calling the next and waiting for
/// it: a caller runs the actor it waits for on its own thread, to a bounded
/// depth (`actor_loop.rs`), and a chain longer than that bound must still
/// answer.
#[wray::actor]
pub struct Relay {
    me: i64,
    next: Option<ActorHandle<Relay>>,
}

#[wray::actor]
impl Relay {
    pub fn new(me: i64, next: Option<ActorHandle<Relay>>) -> Self {
        Relay { me, next }
    }
    pub fn pass(&mut self, sum: i64) -> Result<i64, Error> {
        match &self.next {
            Some(next) => wray::get(&next.pass(sum + self.me)),
            None => Ok(sum + self.me),
        }
    }
}

#[wray::actor]
pub struct Fragile {}

#[wray::actor]
impl Fragile {
    pub fn new(ok: bool) -> Result<Self, String> {
        if ok { Ok(Fragile {}) } else { Err("refusing to start".to_string()) }
    }
    pub fn ping(&self) -> String {
        "pong".to_string()
    }
}

/// An actor that keeps a handle to a counter in its state.
#[wray::actor]
pub struct Holder {
    held: Option<ActorHandle<Counter>>,
}

#[wray::actor]
impl Holder {
    pub fn new() -> Self {
        Holder { held: None }
    }
    pub fn hold(&mut self, counter: ActorHandle<Counter>) {
        self.held = Some(counter);
    }
    pub fn bump(&self) -> Result<i64, Error> {
        let held = self.held.as_ref().ok_or_else(|| Error::InvalidArgument("holds nothing".into()))?;
        wray::get(&held.incr(1))
    }
    /// Creates a counter and hands its handle out (an actor made by an
    /// actor's method, wherever the holder runs).
    pub fn make(&self, start: i64) -> ActorHandle<Counter> {
        Counter::remote(start)
    }
}

/// An actor whose `work` panics (killing its instance) until a tally kept by
/// another actor reaches 3.
#[wray::actor]
pub struct Flaky {
    tally: ActorHandle<Counter>,
}

#[wray::actor]
impl Flaky {
    pub fn new(tally: ActorHandle<Counter>) -> Self {
        Flaky { tally }
    }
    pub fn work(&mut self) -> Result<i64, Error> {
        let n = wray::get(&self.tally.incr(1))?;
        if n < 3 {
            panic!("flaky crash {n}");
        }
        Ok(n)
    }
}
