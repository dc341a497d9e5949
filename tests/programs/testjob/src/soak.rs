//! The chaos soak's job: tasks, nested refs and two actors (one taking a
//! snapshot after every call) whose every answer the driver checks.

use crate::*;

/// FNV-1a: the soak's checksum of a buffer.
pub(crate) fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// `len` bytes of a pattern chosen by `seed`.
pub(crate) fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = wray::Rng::new(seed);
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

/// Checksums `data` after `ms` of sleep (so a soak's kills land mid-task).
#[wray::remote]
pub(crate) fn digest_after(data: Vec<u8>, ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    fnv(&data)
}

/// Folds results of other tasks, passed as refs nested in the argument.
#[wray::remote]
pub(crate) fn fold_digests(parts: Vec<ObjectRef<u64>>) -> Result<u64, Error> {
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

/// `n` items derived from `seed`, `ms` apart: a generator whose node may
/// die mid-stream.
#[wray::remote]
pub(crate) fn soak_items(seed: u64, n: u64, ms: u64) -> impl Iterator<Item = u64> {
    (0..n).map(move |i| {
        std::thread::sleep(Duration::from_millis(ms));
        soak_item(seed, i)
    })
}

fn soak_item(seed: u64, i: u64) -> u64 {
    (seed ^ 0x9e37_79b9_7f4a_7c15).wrapping_mul(i + 1).rotate_left(i as u32 % 64)
}

/// One chaos-soak job: objects the driver puts and tasks elsewhere read,
/// results that feed another task by reference, nested tasks, actors, a
/// generator.
/// Every value is checked here against what the driver computes itself;
/// the total printed must equal a fault-free run's. With `on` the actor is
/// placed where that resource is (the soak's killable workers).
pub(crate) fn soak(seed: u64, ms: u64, on: Option<&str>) -> Result<(), Error> {
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
    // A generator on the killable workers: its node may die mid-stream;
    // run again, it goes on where it was, every item read once, in order.
    let mut options = soak_items::options().max_retries(10);
    if let Some(resource) = on {
        options = options.resource(resource, 0.5);
    }
    let mut items = 0;
    for (i, item) in (0u64..).zip(options.remote(seed, 12, ms)) {
        let got = wray::get(&item?)?;
        if got != soak_item(seed, i) {
            return wrong(format!("item {i}: {got:x} != {:x}", soak_item(seed, i)));
        }
        total = total.rotate_left(11) ^ got;
        items += 1;
    }
    if items != 12 {
        return wrong(format!("{items} items of 12"));
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
