//! A job that exercises the SDK; the integration tests run it with a
//! scenario name as its first argument and check what it prints.

use serde::{Deserialize, Serialize};
use std::time::Duration;
use wray::{ActorHandle, Error, ObjectRef};

#[wray::remote]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[wray::remote]
fn sum_refs(refs: Vec<ObjectRef<i64>>) -> Result<i64, Error> {
    Ok(wray::get_all(&refs)?.into_iter().sum())
}

#[wray::remote]
fn make_refs(n: i64) -> Vec<ObjectRef<i64>> {
    (0..n).map(|i| wray::put(&i)).collect()
}

#[wray::remote]
fn buffer_stats(v: Vec<f32>) -> (usize, f64) {
    (v.len(), v.iter().map(|x| f64::from(*x)).sum())
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
pub struct Point {
    x: f64,
    label: String,
    tags: Vec<u8>,
}

/// Squares `i` after `ms` of sleep, and says which node ran it.
#[wray::remote]
fn square_where(i: u64, ms: u64) -> (u64, String) {
    std::thread::sleep(Duration::from_millis(ms));
    (i * i, wray::runtime_context().node_id)
}

/// Sleeps `ms` with `data` at hand; says how much and where.
#[wray::remote]
fn where_with(data: Vec<u8>, ms: u64) -> (usize, String) {
    std::thread::sleep(Duration::from_millis(ms));
    (data.len(), wray::runtime_context().node_id)
}

/// `mib` MiB of a pattern, made on whichever node runs it.
#[wray::remote]
fn produce(mib: usize) -> Vec<u8> {
    (0..mib << 20).map(|i| (i % 251) as u8).collect()
}

/// Checks the pattern `produce` made; returns its length and the node.
#[wray::remote]
fn consume(data: Vec<u8>) -> (usize, bool, String) {
    let intact = data.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8);
    (data.len(), intact, wray::runtime_context().node_id)
}

#[wray::remote]
fn scale(p: Point, k: f64) -> Point {
    Point { x: p.x * k, ..p }
}

#[wray::remote]
fn fail(msg: String) -> Result<u32, String> {
    Err(msg)
}

#[wray::remote]
fn explode(code: u32) -> u32 {
    if code > 0 {
        panic!("exploded with code {code}");
    }
    code
}

#[wray::remote]
fn spin() -> u64 {
    let mut x = 0u64;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

#[wray::remote]
fn hog() -> usize {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    loop {
        chunks.push(vec![1u8; 16 << 20]);
        std::hint::black_box(&chunks);
    }
}

fn depth(n: u64) -> u64 {
    if n == u64::MAX {
        return 0;
    }
    1 + std::hint::black_box(depth(n + 1))
}

#[wray::remote]
fn recurse() -> u64 {
    depth(0)
}

#[wray::remote]
fn sleepy(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[wray::remote]
fn nested(level: u32) -> Result<u64, Error> {
    if level == 0 {
        return Ok(1);
    }
    let kids: Vec<_> = (0..2).map(|_| nested::remote(level - 1)).collect();
    Ok(wray::get_all(&kids)?.into_iter().sum())
}

#[wray::remote]
fn read_file(path: String) -> String {
    match std::fs::read_to_string(&path) {
        Ok(s) => format!("read {} bytes", s.len()),
        Err(e) => format!("cannot read {path}: {e}"),
    }
}

#[wray::actor]
pub struct Counter {
    n: i64,
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
    pub fn crash(&mut self) -> i64 {
        panic!("counter crashed at {}", self.n)
    }
    /// The node hosting the actor.
    pub fn node(&self) -> String {
        wray::runtime_context().node_id
    }
    pub fn slow(&self, ms: u64) -> u64 {
        std::thread::sleep(Duration::from_millis(ms));
        ms
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

fn checkpoints() -> Result<(), Error> {
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
fn bump(counter: ActorHandle<Counter>, by: i64) -> Result<i64, Error> {
    wray::get(&counter.incr(by))
}

#[wray::remote]
fn bump_named(name: String) -> Result<i64, Error> {
    let c = wray::get_actor::<Counter>(&name)?;
    wray::get(&c.incr(100))
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

fn basics() -> Result<(), Error> {
    let r = add::remote(1, 2);
    println!("add: {}", wray::get(&r)?);
    println!("ref arg: {}", wray::get(&add::options().num_cpus(0.5).remote(&r, 10))?);
    let puts: Vec<ObjectRef<i64>> = (1..=4).map(|i| wray::put(&i)).collect();
    println!("nested refs in arg: {}", wray::get(&sum_refs::remote(puts))?);
    let made = wray::get(&make_refs::remote(5))?;
    println!("refs returned by a task: {}", wray::get_all(&made)?.iter().sum::<i64>());
    let buf: Vec<f32> = (0..1_000_000).map(|i| (i % 7) as f32).collect();
    let b = wray::put(&buf);
    println!("buffer round trip: {}", wray::get(&b)? == buf);
    let (len, sum) = wray::get(&buffer_stats::remote(&b))?;
    println!("buffer in task: {len} {sum}");
    let p = Point { x: 1.5, label: "p".into(), tags: vec![1, 2] };
    println!("struct: {:?}", wray::get(&scale::remote(p, 2.0))?);
    let c = Counter::remote(5);
    c.incr(2);
    println!("counter: {}", wray::get(&c.get())?);
    println!("actor id: {} hex digits", c.actor_id().len());
    println!("local helper: {}", Counter::doubled(2).n);
    let bumps: Vec<_> = (0..10).map(|_| bump::remote(c.clone(), 1)).collect();
    wray::get_all(&bumps)?;
    println!("counter after tasks: {}", wray::get(&c.get())?);
    let many: Vec<_> = (0..2000).map(|i| add::remote(i, 1)).collect();
    println!("many: {}", wray::get_all(&many)?.into_iter().sum::<i64>());
    let res = wray::cluster_resources();
    println!("cluster CPU: {}", res.get("CPU").copied().unwrap_or(0.0));
    println!("context task empty in driver: {}", wray::runtime_context().task_id.is_empty());
    Ok(())
}

fn errors() -> Result<(), Error> {
    println!("err: {}", wray::get(&fail::remote("boom".to_string())).unwrap_err());
    println!("panic: {}", wray::get(&explode::remote(7)).unwrap_err());
    let failed = explode::remote(9);
    println!(
        "dependent: {}",
        wray::get(&add::remote(wray::ObjectRef::from_id(failed.id())?, 1))
            .map_err(|e| e.to_string())
            .unwrap_err_or_default()
    );
    println!("still fine: {}", wray::get(&explode::remote(0))?);
    println!("decode: {}", wray::get(&ObjectRef::<String>::from_id(add::remote(1, 1).id())?).unwrap_err());
    Ok(())
}

trait UnwrapErrOrDefault {
    fn unwrap_err_or_default(self) -> String;
}
impl<T, E: std::fmt::Display> UnwrapErrOrDefault for Result<T, E> {
    fn unwrap_err_or_default(self) -> String {
        match self {
            Ok(_) => "unexpected success".into(),
            Err(e) => e.to_string(),
        }
    }
}

fn limits() -> Result<(), Error> {
    let t = spin::options().time_limit(Duration::from_millis(300)).remote();
    println!("loop: {}", wray::get(&t).unwrap_err());
    let m = hog::options().memory_limit(64 << 20).remote();
    println!("memory: {}", wray::get(&m).unwrap_err());
    println!("recursion: {}", wray::get(&recurse::remote()).unwrap_err());
    println!("after limits: {}", wray::get(&add::remote(2, 2))?);
    Ok(())
}

fn actors() -> Result<(), Error> {
    let c = Counter::options().name("main-counter").remote(0);
    println!("named via task: {}", wray::get(&bump_named::remote("main-counter".to_string()))?);
    let again = wray::get_actor::<Counter>("main-counter")?;
    println!("get_actor: {}", wray::get(&again.get())?);
    println!("missing name: {}", wray::get_actor::<Counter>("nobody").unwrap_err());
    let dup = Counter::options().name("main-counter").try_remote(1);
    println!("duplicate name: {}", dup.unwrap_err());
    let order: Vec<_> = (1..=50).map(|i| c.incr(i)).collect();
    let seen = wray::get_all(&order)?;
    println!("in order: {}", seen.windows(2).all(|w| w[0] < w[1]));

    let restarting = Counter::options().max_restarts(1).remote(10);
    restarting.incr(5);
    println!("crash: {}", wray::get(&restarting.crash()).unwrap_err());
    println!("after restart: {}", wray::get(&restarting.get())?);
    println!("second crash: {}", wray::get(&restarting.crash()).unwrap_err());
    println!("after restarts used up: {}", wray::get(&restarting.get()).unwrap_err());

    // With max_concurrency > 1 a call whose argument is ready runs before an
    // earlier call still waiting for its argument; by default order is strict.
    for (label, limit) in [("strict", 1), ("concurrent", 4)] {
        let a = Counter::options().max_concurrency(limit).remote(0);
        let first = a.slow(sleepy::options().num_cpus(0.1).remote(300));
        let second = a.slow(1);
        let (ready, _) = wray::wait(&[first.clone(), second.clone()], 1, None);
        println!("{label} actor: later call finished first = {}", ready[0] == second);
    }

    let sleeper = Counter::remote(0);
    let nap = sleeper.slow(30_000);
    std::thread::sleep(Duration::from_millis(100));
    let start = std::time::Instant::now();
    wray::kill(&sleeper);
    println!("killed while sleeping: {}", wray::get(&nap).unwrap_err());
    println!("kill took under a second: {}", start.elapsed() < Duration::from_secs(1));

    let k = Counter::remote(1);
    wray::get(&k.get())?;
    wray::kill(&k);
    println!("killed: {}", wray::get(&k.get()).unwrap_err());
    let bad = Fragile::remote(false);
    println!("constructor error: {}", wray::get(&bad.ping()).unwrap_err());
    println!("constructor ok: {}", wray::get(&Fragile::remote(true).ping())?);
    Ok(())
}

fn cancel() -> Result<(), Error> {
    let long = sleepy::remote(30_000);
    std::thread::sleep(Duration::from_millis(100));
    let start = std::time::Instant::now();
    wray::cancel(&long);
    println!("cancelled: {}", wray::get(&long).unwrap_err());
    println!("cancel took under a second: {}", start.elapsed() < Duration::from_secs(1));
    let spinning = spin::remote();
    std::thread::sleep(Duration::from_millis(100));
    wray::cancel(&spinning);
    println!("cancelled spin: {}", wray::get(&spinning).unwrap_err());
    let (ready, pending) = wray::wait(&[sleepy::remote(5_000)], 1, Some(Duration::from_millis(50)));
    println!("wait timeout: {} {}", ready.len(), pending.len());
    println!("get timeout: {}", wray::get_timeout(&sleepy::remote(5_000), Duration::from_millis(50)).unwrap_err());
    Ok(())
}

/// Puts 1 MiB objects until the store refuses one (its disk is full), then
/// checks that every object it took is intact, frees half of them and puts
/// again: a full store is an error, never a loss, and recovers when room is
/// made.
fn store_full() -> Result<(), Error> {
    let mut kept: Vec<(u8, ObjectRef<Vec<u8>>)> = Vec::new();
    let refusal = loop {
        let fill = kept.len() as u8;
        match wray::try_put(&vec![fill; 1 << 20]) {
            Ok(r) => kept.push((fill, r)),
            Err(e) => break e,
        }
        if kept.len() == 256 {
            println!("store full: never refused");
            return Ok(());
        }
    };
    println!("refused after {} objects: {refusal}", kept.len());
    // A task's result meets the same full store.
    println!("task result: {}", wray::get(&make_buffer::remote(1 << 20)).map(|v| v.len()).unwrap_err());
    let intact = kept.iter().filter(|(fill, r)| wray::get(r).is_ok_and(|v| v.iter().all(|b| b == fill))).count();
    println!("intact: {intact} of {}", kept.len());
    kept.truncate(kept.len() / 2);
    println!("after freeing half: {}", wray::try_put(&vec![7u8; 1 << 20]).is_ok());
    Ok(())
}

#[wray::remote]
fn make_buffer(len: usize) -> Vec<u8> {
    vec![3; len]
}

/// Puts `n` objects of `mib` MiB each, then reads every one back.
fn spill(n: usize, mib: usize) -> Result<(), Error> {
    let refs: Vec<ObjectRef<Vec<u8>>> = (0..n).map(|i| wray::put(&vec![i as u8; mib << 20])).collect();
    let mut ok = 0;
    for (i, r) in refs.iter().enumerate() {
        let v = wray::get(r)?;
        if v.len() == mib << 20 && v.iter().all(|b| *b == i as u8) {
            ok += 1;
        }
    }
    println!("spill: {ok} of {n} objects intact");
    Ok(())
}

/// Bytes a value of type `T` decodes from when its wire form is `fake`'s:
/// how a hostile guest forges an `ObjectRef` or `ActorHandle` without the
/// SDK's help (ids are plain numbers on the wire).
fn forge<T: serde::de::DeserializeOwned + 'static>(fake: &(impl Serialize + 'static)) -> Result<T, String> {
    let Ok(value) = wray::__private::encode_ok(fake) else { unreachable!("tuples encode") };
    wray::__private::decode_arg("forge", "fake", &value.data)
}

#[link(wasm_import_module = "wray:runtime/types@0.1.0")]
unsafe extern "C" {
    /// The raw canonical-ABI import behind `ObjectRef::id`: a handle index
    /// and where to write the record.
    #[link_name = "[method]object-ref.id"]
    fn raw_object_ref_id(handle: i32, ret: *mut u8);
}

/// Calls a host method on a resource handle that was never issued.
#[wray::remote]
fn forged_handle() -> u32 {
    let mut ret = [0u8; 24];
    // SAFETY: deliberately unsound towards the host: the handle is made up.
    // The component model checks it and traps this instance.
    unsafe { raw_object_ref_id(0x7fff_fff0, ret.as_mut_ptr()) };
    ret[0].into()
}

/// Calls a method of an actor id that was never issued.
#[wray::remote]
fn call_forged_actor() -> Result<String, String> {
    let fake = forge::<ActorHandle<Counter>>(&(0xdead_u64, 0xbeef_u64))?;
    Ok(wray::get(&fake.get()).map_or_else(|e| format!("error: {e}"), |v| v.to_string()))
}

#[link(wasm_import_module = "wray:runtime/tasks@0.1.0")]
unsafe extern "C" {
    /// The raw import behind `put` of a buffer: the list's address and
    /// length, and where to write the `result<object-ref, error>`.
    #[link_name = "put-buffer"]
    fn raw_put_buffer(ptr: *const u8, len: usize, ret: *mut u32);
}

/// Puts a list one byte over the object size limit (2 GiB). The SDK cannot
/// build one (a wasm32 `Vec` stops at 2 GiB - 1), so this goes around it:
/// the list is untouched fresh memory, handed over with the raw import.
#[wray::remote]
fn huge_put() -> String {
    let len = (2usize << 30) + 1;
    let pages = len.div_ceil(65536);
    let Some(base) = core::arch::wasm32::memory_grow(0, pages).checked_mul(65536) else {
        return "memory.grow failed".into();
    };
    // result<own<object-ref>, error>: the case at 0, the error's case at 4,
    // its message (address, length) at 8 and 12.
    let mut ret = [0u32; 6];
    // SAFETY: [base, base + len) was just grown, so it lies inside memory.
    unsafe { raw_put_buffer(base as *const u8, len, ret.as_mut_ptr()) };
    match (ret[0] & 0xff, ret[1] & 0xff) {
        (0, _) => "stored".into(),
        (1, 5) => {
            // SAFETY: the host wrote an error message of this length there.
            let message = unsafe { std::slice::from_raw_parts(ret[2] as *const u8, ret[3] as usize) };
            format!("invalid argument: {}", String::from_utf8_lossy(message))
        }
        (_, case) => format!("an error of case {case}"),
    }
}

/// Forged and stale handles, and a put over the size limit: each a clear
/// error for the guest that tries it, and nothing else.
fn forged() -> Result<(), Error> {
    let show = |r: Result<String, Error>| r.unwrap_or_else(|e| format!("error: {e}"));
    // A ref to an object this job freed.
    let r = wray::put(&5i64);
    let id = r.id();
    drop(r);
    println!("stale ref: {}", show(ObjectRef::<i64>::from_id(id).map(|_| "accepted".into())));
    // A ref to an id the job never had.
    let forged = forge::<ObjectRef<i64>>(&(u64::MAX, 7u64, 3u32)).map(|_| "accepted".into());
    println!("forged ref: {}", forged.unwrap_or_else(|e| format!("error: {e}")));
    // An actor that does not exist, and one that was killed.
    // Calling it panics the caller (as any refused submission does), so the
    // call runs in a task of its own.
    println!("forged actor: {}", show(wray::get(&call_forged_actor::remote())));
    let c = Counter::remote(1);
    wray::get(&c.get())?;
    wray::kill(&c);
    println!("killed actor: {}", show(wray::get(&c.get()).map(|v| v.to_string())));
    // A made-up resource handle: traps its own task only.
    println!("forged handle: {}", show(wray::get(&forged_handle::remote()).map(|v| v.to_string())));
    println!("huge put: {}", show(wray::get(&huge_put::remote())));
    println!("after forgeries: {}", wray::get(&add::remote(2, 2))?);
    Ok(())
}

/// FNV-1a: the soak's checksum of a buffer.
fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// `len` bytes of a pattern chosen by `seed`.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Checksums `data` after `ms` of sleep (so a soak's kills land mid-task).
#[wray::remote]
fn digest_after(data: Vec<u8>, ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    fnv(&data)
}

/// Folds results of other tasks, passed as refs nested in the argument.
#[wray::remote]
fn fold_digests(parts: Vec<ObjectRef<u64>>) -> Result<u64, Error> {
    Ok(wray::get_all(&parts)?.into_iter().fold(0, |acc, d| acc.rotate_left(5) ^ d))
}

/// The soak's actor: its answers depend only on its constructor's argument,
/// so a restarted one gives the same.
pub struct Mixer {
    k: u64,
}

#[wray::actor]
impl Mixer {
    pub fn new(k: u64) -> Self {
        Mixer { k }
    }
    pub fn mix(&self, x: u64, ms: u64) -> u64 {
        std::thread::sleep(Duration::from_millis(ms));
        x.wrapping_mul(self.k | 1) ^ (x >> 3)
    }
}

/// The soak's stateful actor, taking a snapshot after every call: each
/// answer depends on every earlier call, in order, so a call lost or
/// applied twice across a node's death shows in the total.
#[wray::actor]
pub struct Tally {
    total: u64,
    seen: Vec<u64>,
}

#[wray::actor]
impl Tally {
    pub fn new(seed: u64) -> Self {
        Tally { total: seed, seen: Vec::new() }
    }
    pub fn add(&mut self, x: u64, ms: u64) -> u64 {
        std::thread::sleep(Duration::from_millis(ms));
        self.seen.push(x);
        self.total = self.total.wrapping_mul(31).wrapping_add(x) ^ self.seen.len() as u64;
        self.total
    }
}

/// One chaos-soak job: objects the driver puts and tasks elsewhere read,
/// results that feed another task by reference, nested tasks, an actor.
/// Every value is checked here against what the driver computes itself;
/// the total printed must equal a fault-free run's. With `on` the actor is
/// placed where that resource is (the soak's killable workers).
fn soak(seed: u64, ms: u64, on: Option<&str>) -> Result<(), Error> {
    let wrong = |what: String| Err(Error::InvalidArgument(format!("soak: wrong result: {what}")));
    // Made first, so that it lives through the whole job.
    let mut options = Mixer::options().max_restarts(20).max_task_retries(20);
    if let Some(resource) = on {
        options = options.resource(resource, 1.0);
    }
    let mixer = options.remote(seed);
    let mut options = Tally::options().checkpoint_every(1).max_restarts(20).max_task_retries(20);
    if let Some(resource) = on {
        options = options.resource(resource, 0.5);
    }
    let tally = options.remote(seed);
    let blobs: Vec<(ObjectRef<Vec<u8>>, u64)> = (0..8)
        .map(|i| {
            let data = pattern(seed * 31 + i, 128 << 10);
            (wray::put(&data), fnv(&data))
        })
        .collect();
    let digests: Vec<ObjectRef<u64>> =
        (0..24).map(|i| digest_after::options().max_retries(10).remote(&blobs[i % 8].0, ms)).collect();
    let mut expected = 0u64;
    for (i, d) in digests.iter().enumerate() {
        let got = wray::get(d)?;
        if got != blobs[i % 8].1 {
            return wrong(format!("digest {i}: {got:x} != {:x}", blobs[i % 8].1));
        }
        expected = expected.rotate_left(5) ^ got;
    }
    let folded = wray::get(&fold_digests::options().max_retries(10).remote(digests))?;
    if folded != expected {
        return wrong(format!("fold: {folded:x} != {expected:x}"));
    }
    let calls: Vec<_> = (0..12).map(|x| mixer.mix(x, ms)).collect();
    let mut total = folded;
    for (x, call) in (0u64..).zip(&calls) {
        let got = wray::get(call)?;
        if got != x.wrapping_mul(seed | 1) ^ (x >> 3) {
            return wrong(format!("mix({x}): {got}"));
        }
        total = total.rotate_left(7) ^ got;
    }
    // The stateful actor: its node may die between calls or inside one;
    // continuing from its snapshot, every call counts exactly once.
    let adds: Vec<_> = (0..12).map(|x| tally.add(x, ms)).collect();
    let mut expected = seed;
    for (x, call) in (0u64..).zip(&adds) {
        expected = expected.wrapping_mul(31).wrapping_add(x) ^ (x + 1);
        let got = wray::get(call)?;
        if got != expected {
            return wrong(format!("tally after add({x}): {got} != {expected}"));
        }
        total = total.rotate_left(3) ^ got;
    }
    let leaves = wray::get(&nested::options().max_retries(10).remote(3))?;
    if leaves != 8 {
        return wrong(format!("nested: {leaves} leaves"));
    }
    wray::kill(&mixer);
    wray::kill(&tally);
    println!("soak ok: {total:016x}");
    Ok(())
}

#[wray::main]
fn main(args: Vec<String>) -> Result<(), Error> {
    let scenario = args.first().map(String::as_str).unwrap_or("basics");
    match scenario {
        "basics" => basics()?,
        "spread" => {
            // N tasks of `ms` each: on a cluster they spread over the nodes.
            let n: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20);
            let ms: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100);
            let refs: Vec<_> = (0..n).map(|i| square_where::remote(i, ms)).collect();
            let mut nodes = std::collections::BTreeMap::<String, u32>::new();
            for (i, r) in refs.iter().enumerate() {
                let (sq, node) = wray::get(r)?;
                assert_eq!(sq, (i * i) as u64, "task {i} returned a wrong result");
                *nodes.entry(node).or_default() += 1;
            }
            println!("spread ok: {n}");
            println!("nodes: {}", nodes.len());
            for (node, count) in nodes {
                println!("ran {count} on {node}");
            }
        }
        "special" => {
            // A task asking for a resource only some node has.
            let amount: f64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1.0);
            let r = square_where::options().num_cpus(0.5).resource("special", amount).remote(7, 0);
            match wray::get(&r) {
                Ok((sq, node)) => println!("special: {sq} on {node}"),
                Err(e) => println!("special failed: {e}"),
            }
            println!("cluster CPU: {}", wray::cluster_resources().get("CPU").copied().unwrap_or(0.0));
            println!("cluster special: {}", wray::cluster_resources().get("special").copied().unwrap_or(0.0));
        }
        "actors-cluster" => {
            // An actor placed where its resource is; a task on a third node
            // calls it through a handle and by name; calls keep their order.
            let c = Counter::options().resource("special", 0.5).name("shared").remote(10);
            println!("actor on: {}", wray::get(&c.node())?);
            for _ in 0..5 {
                c.incr(1);
            }
            println!("after incr: {}", wray::get(&c.get())?);
            let by_handle = bump::options().resource("elsewhere", 1.0).remote(c.clone(), 10);
            println!("bump: {}", wray::get(&by_handle)?);
            let by_name = bump_named::options().resource("elsewhere", 1.0).remote("shared".to_string());
            println!("bump_named: {}", wray::get(&by_name)?);
            let near = bump_named::options().resource("special", 0.5).remote("shared".to_string());
            println!("bump_named on its node: {}", wray::get(&near)?);
            println!("final: {}", wray::get(&c.get())?);
            wray::kill(&c);
            println!("after kill: {}", wray::get(&c.get()).map_or_else(|e| format!("{e}"), |v| v.to_string()));
        }
        "actor-restart" => {
            // An actor on a node that dies is re-created on another one.
            let c = Counter::options().resource("spot", 1.0).max_restarts(1).remote(0);
            let first = wray::get(&c.node())?;
            println!("actor on: {first}");
            let start = std::time::Instant::now();
            while start.elapsed() < Duration::from_secs(60) {
                std::thread::sleep(Duration::from_millis(100));
                if let Err(e) = wray::get(&c.incr(1)) {
                    println!("call failed: {e}");
                }
                match wray::get(&c.node()) {
                    Ok(n) if n != first => {
                        println!("restarted on: {n}");
                        println!("count after restart: {}", wray::get(&c.incr(1))?);
                        break;
                    }
                    Ok(_) => {}
                    Err(e) => println!("call failed: {e}"),
                }
            }
        }
        "restart-budget" => {
            // One restart in all: a crash on the hosting node uses it, so
            // the loss of that node is final.
            let c = Counter::options().resource("spot", 1.0).max_restarts(1).remote(0);
            let first = wray::get(&c.node())?;
            wray::get(&c.crash()).ok();
            println!("after a crash: {}", wray::get(&c.incr(1))?);
            println!("kill: {first}");
            let start = std::time::Instant::now();
            let mut lost = false;
            while start.elapsed() < Duration::from_secs(60) {
                std::thread::sleep(Duration::from_millis(100));
                match wray::get(&c.incr(1)) {
                    // The call in flight when the node died fails first;
                    // then the actor is either dead or (wrongly) back.
                    Err(e) if e.to_string().contains("no restarts left") => {
                        println!("after the node's loss: {e}");
                        break;
                    }
                    Err(_) => lost = true,
                    Ok(n) if lost => {
                        println!("restarted again: {n}");
                        break;
                    }
                    Ok(_) => {}
                }
            }
        }
        "actor-node-retry" => {
            // Calls in flight when the node hosting their actor dies: run
            // again on the restarted actor with max_task_retries, failed
            // without. The test kills the node named by each `kill:` line.
            for retries in [1u32, 0] {
                let c = Counter::options().resource("spot", 1.0).max_restarts(1).max_task_retries(retries).remote(0);
                let first = wray::get(&c.node())?;
                wray::get(&c.incr(5))?;
                let slow = c.slow(4000);
                let after = c.incr(1);
                std::thread::sleep(Duration::from_millis(300));
                println!("kill: {first}");
                let show = |r: Result<String, Error>| r.unwrap_or_else(|e| format!("error: {e}"));
                println!("retries {retries}: slow: {}", show(wray::get(&slow).map(|v| v.to_string())));
                println!("retries {retries}: after: {}", show(wray::get(&after).map(|v| v.to_string())));
                println!("retries {retries}: moved: {}", wray::get(&c.node())? != first);
                // Frees its `spot` for the next round's restart.
                wray::kill(&c);
            }
        }
        "groups" => {
            // A placement group; tasks and an actor in its bundles run on
            // the bundles' nodes.
            let strategy = match args.get(1).map(String::as_str).unwrap_or("pack") {
                "spread" => wray::PlacementStrategy::Spread,
                "strict-pack" => wray::PlacementStrategy::StrictPack,
                "strict-spread" => wray::PlacementStrategy::StrictSpread,
                _ => wray::PlacementStrategy::Pack,
            };
            let n: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(2);
            let cpus_before = wray::available_resources().get("CPU").copied().unwrap_or(0.0);
            let bundle: &[(&str, f64)] = &[("CPU", 1.0)];
            let group = match wray::placement_group(&vec![bundle; n], strategy) {
                Ok(g) => g,
                Err(e) => {
                    println!("group failed: {e}");
                    return Ok(());
                }
            };
            let nodes: std::collections::BTreeSet<_> = (0..n).filter_map(|i| group.bundle_node(i)).collect();
            println!("group nodes: {}", nodes.len());
            println!("cpu reserved: {}", cpus_before - wray::available_resources().get("CPU").copied().unwrap_or(0.0));
            for i in 0..n {
                let r = square_where::options().placement_group(&group, i as u32).remote(i as u64, 0);
                let (sq, node) = wray::get(&r)?;
                assert_eq!(sq, (i * i) as u64);
                assert_eq!(Some(node.as_str()), group.bundle_node(i), "task of bundle {i} ran elsewhere");
            }
            println!("tasks ran in their bundles: {n}");
            let c = Counter::options().num_cpus(1.0).placement_group(&group, 0).remote(1);
            assert_eq!(Some(wray::get(&c.node())?.as_str()), group.bundle_node(0));
            println!("actor ran in its bundle");
            wray::kill(&c);
            wray::remove_placement_group(&group)?;
            println!("removed");
        }
        "locality" => {
            // Tasks whose arguments are large stay with their data (on the
            // job's node) even when it is busy.
            let data = wray::put(&vec![1u8; 32 << 20]);
            let refs: Vec<_> = (0..6).map(|_| where_with::remote(&data, 200)).collect();
            let nodes: std::collections::BTreeSet<String> = wray::get_all(&refs)?
                .into_iter()
                .map(|(len, node)| {
                    assert_eq!(len, 32 << 20);
                    node
                })
                .collect();
            println!("locality nodes: {}", nodes.len());
            println!("ran on job node: {}", nodes.contains(&wray::runtime_context().node_id));
        }
        "detached-create" => {
            // A named actor that outlives this job.
            let c = Counter::options().name("keeper").detached().remote(100);
            for _ in 0..5 {
                c.incr(1);
            }
            println!("keeper: {}", wray::get(&c.get())?);
        }
        "detached-use" => {
            let c = wray::get_actor::<Counter>("keeper")?;
            println!("keeper: {}", wray::get(&c.incr(1))?);
        }
        "vault-fill" => {
            // Hands a detached actor refs to objects this job owns: a put
            // and a task's result. The test then kills this job's node.
            let vault = Vault::options().name("vault").detached().remote(0);
            let refs = vec![wray::put(&40i64), add::remote(1, 1)];
            println!("vault holds: {}", wray::get(&vault.keep(refs))?);
            println!("node: {}", wray::runtime_context().node_id);
            std::thread::sleep(Duration::from_secs(600));
        }
        "vault-read" => {
            let vault = wray::get_actor::<Vault>("vault")?;
            println!("vault total: {}", wray::get(&vault.total())?);
        }
        "detached-ledger" => {
            // A detached actor taking snapshots: created on first use,
            // then one entry per run; prints its state.
            let l = match wray::get_actor::<Ledger>("ledger") {
                Ok(l) => l,
                Err(_) => Ledger::options().name("ledger").detached().checkpoint_every(1).max_restarts(1).remote(1),
            };
            wray::get(&l.add(args.get(1).cloned().unwrap_or_default(), 10))?;
            println!("ledger: {}", wray::get(&l.summary())?);
        }
        "detached-kill" => {
            let c = wray::get_actor::<Counter>("keeper")?;
            wray::kill(&c);
            println!("killed");
        }
        "big" => {
            // `mib` MiB made on the node with `producer`, checked on the one
            // with `consumer`.
            let mib: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(64);
            let made = produce::options().resource("producer", 1.0).remote(mib);
            let r = consume::options().resource("consumer", 1.0).remote(&made);
            let (len, intact, node) = wray::get(&r)?;
            println!("big: {len} bytes intact={intact} consumed on {node}");
        }
        "soak" => soak(
            args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1),
            args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100),
            args.get(3).map(String::as_str),
        )?,
        "forged" => forged()?,
        "checkpoints" => checkpoints()?,
        "checkpoint-node" => {
            // An actor whose node dies continues from its snapshot on
            // another node. The test kills the node named by `kill:`.
            let l = Ledger::options().resource("spot", 1.0).checkpoint_every(1).max_restarts(1).remote(3);
            let first = wray::get(&l.node())?;
            for i in 0..50u64 {
                wray::get(&l.add(format!("k{}", i % 4), i))?;
            }
            wray::get(&l.grow(args.get(1).map_or(500_000, |n| n.parse().unwrap_or(500_000))))?;
            let before = wray::get(&l.summary())?;
            println!("before: {before}");
            println!("kill: {first}");
            let start = std::time::Instant::now();
            while start.elapsed() < Duration::from_secs(60) {
                std::thread::sleep(Duration::from_millis(100));
                match wray::get(&l.node()) {
                    Ok(n) if n != first => {
                        println!("moved: true");
                        let after = wray::get(&l.summary())?;
                        println!("after: {after}");
                        println!("state kept: {}", after == before);
                        break;
                    }
                    Ok(_) => {}
                    Err(e) => println!("call failed: {e}"),
                }
            }
        }
        "errors" => errors()?,
        "limits" => limits()?,
        "actors" => actors()?,
        "cancel" => cancel()?,
        "spill" => spill(32, 1)?,
        "store-full" => store_full()?,
        "parallel" => {
            // Four tasks of 300 ms holding one CPU each: how long they take
            // shows how many ran at once.
            let start = std::time::Instant::now();
            let refs: Vec<_> = (0..4).map(|_| sleepy::remote(300)).collect();
            wray::get_all(&refs)?;
            println!("parallel: {:.2}", start.elapsed().as_secs_f64());
        }
        "whereami" => {
            // Which node runs the driver (and its tasks), and for how long:
            // concurrent jobs overlap while they sleep.
            let ctx = wray::runtime_context();
            let cpus = wray::cluster_resources().get("CPU").copied().unwrap_or(0.0);
            std::thread::sleep(Duration::from_millis(1500));
            println!("node: {} cpus: {cpus}", ctx.node_id);
        }
        "churn" => {
            // 256 MiB through the store, 1 MiB at a time, each ref dropped
            // after use: with a small budget, nothing should ever spill.
            for i in 0..256u32 {
                let r = wray::put(&vec![i as u8; 1 << 20]);
                let task = add::remote(i64::from(i), 1);
                assert_eq!(wray::get(&r)?.len(), 1 << 20);
                assert_eq!(wray::get(&task)?, i64::from(i) + 1);
            }
            println!("churn: done");
        }
        "nested" => println!("nested: {}", wray::get(&nested::remote(4))?),
        "read" => println!("{}", wray::get(&read_file::remote(args.get(1).cloned().unwrap_or_default()))?),
        "env" => println!("env: {:?}", std::env::var(args.get(1).map(String::as_str).unwrap_or("HOME"))),
        "read-main" => println!(
            "{}",
            std::fs::read_to_string(args.get(1).map(String::as_str).unwrap_or("/etc/passwd"))
                .map_or_else(|e| format!("main cannot read: {e}"), |s| format!("main read {} bytes", s.len()))
        ),
        "panic-main" => panic!("the driver gave up"),
        "spin-main" => {
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        "hog-task" => println!("{}", wray::get(&hog::remote())?),
        "spin-task" => println!("{}", wray::get(&spin::remote())?),
        "recurse-task" => println!("{}", wray::get(&recurse::remote())?),
        "print" => {
            for i in 0..3 {
                println!("line {i}");
            }
            eprintln!("to stderr");
        }
        "fail-main" => return Err(Error::InvalidArgument("the driver returned an error".into())),
        "nn-gradcheck" => nn_gradcheck()?,
        "nn-errors" => nn_errors()?,
        "nn-objects" => nn_objects()?,
        "gpu-share" => {
            // Four tasks of 0.25 GPU each run at once on one GPU.
            let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(4);
            let refs: Vec<_> = (0..n).map(|i| gpu_task::options().num_gpus(0.25).remote(i as u32, 300)).collect();
            let mut out = wray::get_all(&refs)?;
            out.sort();
            for line in out {
                println!("{line}");
            }
            println!("cpu task: {}", wray::get(&gpu_task::remote(9, 0))?);
        }
        "gpu-infeasible" => match wray::get(&gpu_task::options().num_gpus(2.0).remote(0, 0)) {
            Ok(v) => println!("unexpected success: {v}"),
            Err(e) => println!("too many gpus: {e}"),
        },
        "tune-errors" => tune_errors()?,
        "tune-pbt" => tune_pbt()?,
        "tune-stoppers" => tune_stoppers()?,
        "tune-resume" => tune_resume(
            args.get(1).map(String::as_str).unwrap_or("/store"),
            args.get(2).is_some_and(|a| a == "resume"),
        )?,
        "flood" => {
            // N submissions at once, every ref held: the runtime makes the
            // driver wait when too many are unfinished (back-pressure).
            let n: i64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
            let start = std::time::Instant::now();
            let refs: Vec<_> = (0..n).map(|i| add::remote(i, 1)).collect();
            let mut sum = 0i64;
            for chunk in refs.chunks(10_000) {
                sum += wray::get_all(chunk)?.iter().sum::<i64>();
            }
            println!(
                "flood: {n} tasks, sum {sum} (expected {}), {:.1} s",
                n * (n + 1) / 2,
                start.elapsed().as_secs_f64()
            );
        }
        "task-retries" => {
            // Crashes until a separate tally reaches 3: with retries the
            // call survives two crashes; without, the first crash fails it.
            let tally = Counter::remote(0);
            let flaky = Flaky::options().max_restarts(5).max_task_retries(3).remote(tally.clone());
            println!("retried: {:?}", wray::get(&flaky.work()).map_err(|e| e.to_string()));
            let tally = Counter::remote(0);
            let plain = Flaky::options().max_restarts(5).remote(tally);
            println!("not retried: {:?}", wray::get(&plain.work()).map_err(|e| e.to_string()));
            let tally = Counter::remote(0);
            let short = Flaky::options().max_restarts(1).max_task_retries(5).remote(tally);
            println!("restarts used up: {:?}", wray::get(&short.work()).map_err(|e| e.to_string()));
        }
        "isatty" => {
            use std::io::IsTerminal;
            println!("stdout is a terminal: {}", std::io::stdout().is_terminal());
        }
        "perm" => println!("perm10: {:?}", wray::nn::numpy_permutation(10, 0)),
        other => panic!("unknown scenario {other}"),
    }
    Ok(())
}

/// Reports where its tensors live and when it ran, so the test can see the
/// tasks overlap on one GPU.
#[wray::remote]
fn gpu_task(i: u32, ms: u64) -> Result<String, Error> {
    use wray::nn::Tensor;
    let t = Tensor::from_vec(&[2, 2], &[1.0, 2.0, 3.0, 4.0])?;
    let sq = t.matmul(&t)?.to_vec()?;
    let start = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    std::thread::sleep(Duration::from_millis(ms));
    let node = wray::runtime_context().node_id;
    Ok(format!("task {i}: gpu={} device={} matmul={sq:?} node={node} start={start}", t.on_gpu(), wray::nn::device()))
}

/// Every differentiable operation's gradient against central finite
/// differences, on small random inputs.
fn nn_gradcheck() -> Result<(), Error> {
    use wray::nn::{Rng, Tensor, Var, loss};
    let mut rng = Rng::new(7);
    let mut rand = |shape: &[usize], lo: f32, hi: f32| -> Result<Vec<f32>, Error> {
        Ok((0..shape.iter().product::<usize>()).map(|_| rng.uniform_in(lo, hi)).collect())
    };
    type F = Box<dyn Fn(&Var) -> Result<Var, Error>>;
    let other = Var::constant(Tensor::from_vec(&[3, 4], &rand(&[3, 4], 0.5, 1.5)?)?);
    let row = Var::constant(Tensor::from_vec(&[1, 4], &rand(&[1, 4], 0.5, 1.5)?)?);
    let mat = Var::constant(Tensor::from_vec(&[4, 2], &rand(&[4, 2], -1.0, 1.0)?)?);
    let target = Var::constant(Tensor::from_vec(&[3, 4], &rand(&[3, 4], 0.0, 1.0)?)?);
    let labels = Var::constant(Tensor::from_vec(&[3, 4], &[1., 0., 1., 1., 0., 0., 1., 0., 1., 1., 0., 0.])?);
    let cases: Vec<(&str, F)> = vec![
        (
            "add",
            Box::new({
                let o = row.clone();
                move |x| x.add(&o)?.mul(x)?.sum_all()
            }),
        ),
        (
            "sub",
            Box::new({
                let o = other.clone();
                move |x| o.sub(x)?.mul(x)?.sum_all()
            }),
        ),
        (
            "mul-broadcast",
            Box::new({
                let o = row.clone();
                move |x| x.mul(&o)?.sum_all()
            }),
        ),
        (
            "div",
            Box::new({
                let o = other.clone();
                move |x| o.div(&x.affine(1.0, 3.0)?)?.sum_all()
            }),
        ),
        (
            "matmul",
            Box::new({
                let m = mat.clone();
                move |x| x.matmul(&m)?.pow(2.0)?.sum_all()
            }),
        ),
        ("relu", Box::new(|x| x.relu()?.mul(x)?.sum_all())),
        ("sigmoid", Box::new(|x| x.sigmoid()?.sum_all())),
        ("tanh", Box::new(|x| x.tanh()?.mul(x)?.sum_all())),
        ("exp", Box::new(|x| x.exp()?.mean_all())),
        ("log", Box::new(|x| x.affine(1.0, 3.0)?.log()?.sum_all())),
        ("pow", Box::new(|x| x.affine(1.0, 3.0)?.pow(1.5)?.sum_all())),
        ("sum-axis", Box::new(|x| x.sum(0)?.pow(2.0)?.sum_all())),
        ("mean-axis", Box::new(|x| x.mean(1)?.pow(2.0)?.sum_all())),
        (
            "mse",
            Box::new({
                let t = target.clone();
                move |x| loss::mse(x, &t)
            }),
        ),
        (
            "bce",
            Box::new({
                let t = labels.clone();
                move |x| loss::bce(&x.sigmoid()?, &t)
            }),
        ),
        ("cross-entropy", Box::new(|x| loss::cross_entropy(x, &[3, 0, 2]))),
    ];
    let x0 = rand(&[3, 4], -1.0, 1.0)?;
    let mut worst = 0f32;
    for (name, f) in &cases {
        let x = Var::parameter(Tensor::from_vec(&[3, 4], &x0)?);
        f(&x)?.backward()?;
        let analytic = x.grad().expect("a gradient").to_vec()?;
        let h = 1e-2f32;
        for i in 0..x0.len() {
            let at = |d: f32| -> Result<f32, Error> {
                let mut v = x0.clone();
                v[i] += d;
                f(&Var::constant(Tensor::from_vec(&[3, 4], &v)?))?.value().item()
            };
            let numeric = (at(h)? - at(-h)?) / (2.0 * h);
            let err = (numeric - analytic[i]).abs() / numeric.abs().max(1.0);
            worst = worst.max(err);
            if err > 2e-2 {
                println!("gradcheck {name}: element {i}: analytic {} numeric {numeric}", analytic[i]);
            }
        }
    }
    println!("gradcheck: {} operations, worst relative error {worst:.2e}", cases.len());
    {
        use wray::nn::{Dropout, Module};
        let d = Dropout::new(0.25, 3)?;
        let x = Var::constant(Tensor::ones(&[10, 100])?);
        let y = d.forward(&x)?.value().to_vec()?;
        let kept = y.iter().filter(|v| **v != 0.0).count();
        let scaled = y.iter().all(|v| *v == 0.0 || (*v - 1.0 / 0.75).abs() < 1e-6);
        d.set_training(false);
        let same = d.forward(&x)?.value().to_vec()? == vec![1.0; 1000];
        println!("dropout: kept {kept} of 1000, scaled {scaled}, identity when evaluating {same}");
        println!(
            "dropout p=1: {}",
            Dropout::new(1.0, 0).map(|_| "accepted".to_string()).unwrap_or_else(|e| e.to_string())
        );
    }
    // A tiny network learns XOR end to end (autograd + SGD + Adam).
    for adam in [false, true] {
        use wray::nn::{Init, Linear, Module, Optimizer, Sequential, Sigmoid, Tanh};
        let mut rng = Rng::new(1);
        let model = Sequential::new()
            .add(Linear::new(2, 8, Init::XavierUniform, &mut rng)?)
            .add(Tanh)
            .add(Linear::new(8, 1, Init::XavierUniform, &mut rng)?)
            .add(Sigmoid);
        let x = Var::constant(Tensor::from_vec(&[4, 2], &[0., 0., 0., 1., 1., 0., 1., 1.])?);
        let y = Var::constant(Tensor::from_vec(&[4, 1], &[0., 1., 1., 0.])?);
        let mut opt: Box<dyn Optimizer> = if adam {
            Box::new(wray::nn::Adam::new(model.parameters(), 0.05)?)
        } else {
            Box::new(wray::nn::Sgd::new(model.parameters(), 0.5, 0.9)?)
        };
        for _ in 0..300 {
            opt.zero_grad();
            loss::bce(&model.forward(&x)?, &y)?.backward()?;
            opt.step()?;
        }
        let p = model.forward(&x)?.value().to_vec()?;
        println!(
            "xor {}: {:?}",
            if adam { "adam" } else { "sgd" },
            p.iter().map(|v| (v * 100.0).round() / 100.0).collect::<Vec<_>>()
        );
    }
    Ok(())
}

/// Bad tensor input comes back as errors naming the operation and shapes.
fn nn_errors() -> Result<(), Error> {
    use wray::nn::Tensor;
    let a = Tensor::zeros(&[2, 3])?;
    let b = Tensor::zeros(&[4, 5])?;
    let show = |r: Result<Tensor, Error>| match r {
        Ok(t) => format!("unexpected success: {t:?}"),
        Err(e) => e.to_string(),
    };
    println!("matmul: {}", show(a.matmul(&b)));
    println!("add: {}", show(a.add(&b)));
    println!("gather: {}", show(a.gather_rows(&[0, 7])));
    println!("xent: {}", show(a.cross_entropy(&[0, 9])));
    println!("from_vec: {}", show(Tensor::from_vec(&[2, 2], &[1.0])));
    println!("rank: {}", show(Tensor::zeros(&[1, 1, 1, 1, 1])));
    println!("huge: {}", show(Tensor::zeros(&[1 << 30, 1 << 30])));
    let c = a.clone();
    a.free();
    println!("freed: {}", show(c.relu()));
    println!(
        "sgd: {}",
        match b.sgd_step(&b, &Tensor::zeros(&[4, 5])?, 0.1, 0.9, 0.0) {
            Ok(()) => "unexpected success".into(),
            Err(e) => e.to_string(),
        }
    );
    // The memory limit covers tensors: 64 MiB tensors until it says no.
    let mut kept = Vec::new();
    let limit = loop {
        match Tensor::zeros(&[4096, 4096]) {
            Ok(t) => kept.push(t),
            Err(e) => break e.to_string(),
        }
        if kept.len() > 100 {
            break "no limit".into();
        }
    };
    println!("limit after {} tensors: {limit}", kept.len());
    drop(kept);
    println!("after dropping: {}", Tensor::zeros(&[4096, 4096]).is_ok());
    Ok(())
}

/// Tensors go into the object store and come back, and tasks pass them on.
fn nn_objects() -> Result<(), Error> {
    use wray::nn::{Tensor, TensorData};
    let t = Tensor::from_vec(&[2, 3], &[1., 2., 3., 4., 5., 6.])?;
    let r = t.to_object()?;
    let back = Tensor::from_object(&r)?;
    println!("round trip: {:?} {:?}", back.shape(), back.to_vec()?);
    let data: TensorData = wray::get(&r)?;
    println!("as value: {:?} {:?}", data.shape, data.data);
    let doubled = wray::get(&double_tensor::remote(r.clone()))?;
    println!("task: {:?}", Tensor::from_object(&doubled)?.to_vec()?);
    let not_tensor = wray::put(&String::from("hello"));
    // The same object under the wrong type: the host checks the bytes.
    let wrong: ObjectRef<TensorData> = ObjectRef::from_id(not_tensor.id())?;
    println!(
        "not a tensor: {}",
        Tensor::from_object(&wrong).map(|_| "unexpected success".to_string()).unwrap_or_else(|e| e.to_string())
    );
    Ok(())
}

#[wray::remote]
fn double_tensor(r: ObjectRef<wray::nn::TensorData>) -> Result<ObjectRef<wray::nn::TensorData>, Error> {
    let t = wray::nn::Tensor::from_object(&r)?;
    t.affine(2.0, 0.0)?.to_object()
}

/// A trainable for the tune tests: `x` decides how it behaves.
pub struct Probe {
    x: i64,
    count: u64,
    restored: bool,
    slow_ms: u64,
}

impl wray::tune::Trainable for Probe {
    fn setup(config: &wray::tune::Config) -> Result<Self, Error> {
        let x = config.i64("x")?;
        if let Ok(dir) = config.str("log") {
            use std::io::Write;
            let mut f =
                std::fs::OpenOptions::new().create(true).append(true).open(format!("{dir}/starts.log")).unwrap();
            writeln!(f, "start x={x}").unwrap();
        }
        Ok(Probe { x, count: 0, restored: false, slow_ms: config.i64("slow_ms").unwrap_or(0) as u64 })
    }
    fn step(&mut self) -> Result<wray::tune::Metrics, Error> {
        self.count += 1;
        std::thread::sleep(Duration::from_millis(self.slow_ms));
        match self.x {
            1 if self.count == 2 => return Err(Error::InvalidArgument("probe 1 gives up at step 2".into())),
            2 if self.count == 2 => panic!("probe 2 panics at step 2"),
            3 if self.count == 3 && !self.restored => {
                return Err(Error::InvalidArgument("probe 3 fails once at step 3".into()));
            }
            _ => {}
        }
        let m = wray::tune::metrics(&[("score", self.x as f64 * 10.0 + self.count as f64)]);
        Ok(if self.count >= 5 { wray::tune::done(m) } else { m })
    }
    fn save_checkpoint(&self) -> Result<Vec<u8>, Error> {
        Ok(self.count.to_le_bytes().to_vec())
    }
    fn load_checkpoint(&mut self, c: &[u8]) -> Result<(), Error> {
        self.count = u64::from_le_bytes(c.try_into().map_err(|_| Error::InvalidArgument("bad checkpoint".into()))?);
        self.restored = true;
        Ok(())
    }
}
wray::trainable!(ProbeTrial, Probe);

fn tune_errors() -> Result<(), Error> {
    use wray::tune::{self, Space, Tuner, Verbosity};
    let show = |r: Result<tune::ResultGrid, Error>| match r {
        Ok(g) => format!("unexpected success: {} trials", g.trials.len()),
        Err(e) => e.to_string(),
    };
    let ok = || Space::new().with("x", tune::grid_search([0, 4]));
    println!(
        "empty choice: {}",
        show(
            Tuner::<ProbeTrial>::new(Space::new().with("x", tune::choice(Vec::<i64>::new())))
                .metric("score", "max")
                .fit()
        )
    );
    println!(
        "low >= high: {}",
        show(Tuner::<ProbeTrial>::new(Space::new().with("lr", tune::uniform(1.0, 0.5))).metric("score", "max").fit())
    );
    println!(
        "loguniform: {}",
        show(
            Tuner::<ProbeTrial>::new(Space::new().with("lr", tune::loguniform(-1.0, 1.0))).metric("score", "max").fit()
        )
    );
    println!("mode: {}", show(Tuner::<ProbeTrial>::new(ok()).metric("score", "maximum").fit()));
    println!("no metric: {}", show(Tuner::<ProbeTrial>::new(ok()).fit()));
    println!(
        "unknown metric: {}",
        show(Tuner::<ProbeTrial>::new(ok()).metric("accuracy", "max").verbose(Verbosity::Quiet).fit())
    );
    // Trials that fail, panic, or fail once and recover from a checkpoint.
    let space = Space::new().with("x", tune::grid_search([0, 1, 2, 3, 4]));
    let counts = std::rc::Rc::new(std::cell::RefCell::new(std::collections::BTreeMap::<&'static str, usize>::new()));
    let grid = Tuner::<ProbeTrial>::new(space)
        .metric("score", "max")
        .max_failures(1)
        .checkpoint_freq(1)
        .callback(CallbackCounter(counts.clone()))
        .verbose(Verbosity::Table)
        .fit()?;
    println!("callbacks: {:?}", counts.borrow());
    for t in &grid.trials {
        println!(
            "trial x={}: {} after {} iterations, {} failures, last iteration {}{}",
            t.config.i64("x")?,
            t.status,
            t.iterations(),
            t.failures,
            t.last_result().get("training_iteration").copied().unwrap_or(0.0),
            t.error.as_ref().map(|e| format!(", error: {e}")).unwrap_or_default()
        );
    }
    println!("best x: {}", grid.best_config().unwrap().i64("x")?);
    println!("csv header: {}", grid.to_csv().lines().next().unwrap_or(""));
    Ok(())
}

/// Counts callback invocations.
struct CallbackCounter(std::rc::Rc<std::cell::RefCell<std::collections::BTreeMap<&'static str, usize>>>);

impl CallbackCounter {
    fn bump(&self, what: &'static str) {
        *self.0.borrow_mut().entry(what).or_default() += 1;
    }
}

impl wray::tune::Callback for CallbackCounter {
    fn on_trial_start(&mut self, _: &wray::tune::Trial) {
        self.bump("start");
    }
    fn on_trial_result(&mut self, _: &wray::tune::Trial, _: &wray::tune::Metrics) {
        self.bump("result");
    }
    fn on_trial_complete(&mut self, _: &wray::tune::Trial) {
        self.bump("complete");
    }
    fn on_trial_error(&mut self, _: &wray::tune::Trial) {
        self.bump("error");
    }
    fn on_checkpoint(&mut self, _: &wray::tune::Trial) {
        self.bump("checkpoint");
    }
    fn on_experiment_end(&mut self, _: &[wray::tune::Trial]) {
        self.bump("end");
    }
}

fn tune_stoppers() -> Result<(), Error> {
    use wray::tune::{self, Criteria, Space, StopFn, Tuner, Verbosity};
    let space = || Space::new().with("x", tune::grid_search([0, 4, 5])).with("slow_ms", 0);
    let its = |g: &tune::ResultGrid| g.trials.iter().map(|t| t.iterations()).collect::<Vec<_>>();
    let g = Tuner::<ProbeTrial>::new(space())
        .metric("score", "max")
        .stop(Criteria::new(&[("training_iteration", 2.0)]))
        .verbose(Verbosity::Quiet)
        .fit()?;
    println!("criteria iterations: {:?}", its(&g));
    let g = Tuner::<ProbeTrial>::new(space())
        .metric("score", "max")
        .stop(StopFn(|_, r: &tune::Metrics| r["score"] >= 43.0))
        .verbose(Verbosity::Quiet)
        .fit()?;
    println!("stop fn iterations: {:?}", its(&g));
    let slow = Space::new().with("x", tune::grid_search([0, 4, 5, 6, 7, 8])).with("slow_ms", 100);
    let start = std::time::Instant::now();
    let g = Tuner::<ProbeTrial>::new(slow)
        .metric("score", "max")
        .time_budget(Duration::from_millis(250))
        .verbose(Verbosity::Quiet)
        .fit()?;
    println!(
        "time budget: stopped after {:.1} s, {} trials terminated, {} iterations in all",
        start.elapsed().as_secs_f64(),
        g.trials.iter().filter(|t| t.status == tune::Status::Terminated).count(),
        g.trials.iter().map(|t| t.iterations()).sum::<usize>()
    );
    Ok(())
}

/// 12 slow trials with checkpoints under `dir`; run twice (the second time
/// with `resume`) by the resume test, which kills the first run midway.
fn tune_resume(dir: &str, resume: bool) -> Result<(), Error> {
    use wray::tune::{self, Space, Tuner, Verbosity};
    let space = Space::new()
        .with("x", tune::grid_search([0, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]))
        .with("slow_ms", 60)
        .with("log", dir);
    let grid = Tuner::<ProbeTrial>::new(space)
        .metric("score", "max")
        .name("resumable")
        .storage_path(dir)
        .checkpoint_freq(1)
        .max_concurrent_trials(2)
        .resume(resume)
        .verbose(Verbosity::Summary)
        .fit()?;
    let done = grid.trials.iter().filter(|t| t.status == wray::tune::Status::Terminated && t.iterations() == 5).count();
    println!("finished with 5 iterations: {done} of {}", grid.trials.len());
    Ok(())
}

/// Grows its score by `lr` each step; its checkpoint is the score, so a
/// trial that exploits another continues from that trial's score.
pub struct Grower {
    lr: f64,
    score: f64,
}

impl wray::tune::Trainable for Grower {
    fn setup(config: &wray::tune::Config) -> Result<Self, Error> {
        Ok(Grower { lr: config.f64("lr")?, score: 0.0 })
    }
    fn step(&mut self) -> Result<wray::tune::Metrics, Error> {
        self.score += self.lr;
        // Steps mostly wait, so the eight trials advance side by side.
        std::thread::sleep(Duration::from_millis(10));
        Ok(wray::tune::metrics(&[("score", self.score)]))
    }
    fn save_checkpoint(&self) -> Result<Vec<u8>, Error> {
        Ok(self.score.to_le_bytes().to_vec())
    }
    fn load_checkpoint(&mut self, c: &[u8]) -> Result<(), Error> {
        self.score = f64::from_le_bytes(c.try_into().map_err(|_| Error::InvalidArgument("bad checkpoint".into()))?);
        Ok(())
    }
}
wray::trainable!(GrowerTrial, Grower);

fn tune_pbt() -> Result<(), Error> {
    use wray::tune::{self, Criteria, Pbt, Space, Tuner, Verbosity};
    let space = Space::new().with("lr", tune::grid_search([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]));
    let grid = Tuner::<GrowerTrial>::new(space.clone())
        .metric("score", "max")
        .scheduler(Pbt::new(4.0, Space::new().with("lr", tune::uniform(0.1, 1.0)), 3))
        .stop(Criteria::new(&[("training_iteration", 20.0)]))
        .max_concurrent_trials(8)
        .verbose(Verbosity::Quiet)
        .fit()?;
    let lrs: Vec<f64> = grid.trials.iter().map(|t| t.config.f64("lr").unwrap()).collect();
    let scores: Vec<f64> = grid.trials.iter().map(|t| t.last_result()["score"]).collect();
    let mean_lr = lrs.iter().sum::<f64>() / lrs.len() as f64;
    let min_score = scores.iter().copied().fold(f64::MAX, f64::min);
    println!(
        "pbt: {} trials, mean final lr {mean_lr:.3} (started at 0.450), min final score {min_score:.2}",
        grid.trials.len()
    );
    println!("pbt: iterations {:?}", grid.trials.iter().map(|t| t.iterations()).collect::<Vec<_>>());
    Ok(())
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
