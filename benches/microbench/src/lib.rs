//! Ray's `ray microbenchmark` workloads, as a wray job. `wray microbenchmark`
//! runs it once per workload (`-- WORKLOAD N`) and reads the `RESULT` line
//! each run prints: a rate per second, or for `chain` and `put_gigabytes` the
//! unit named on the line. A workload named with `_reuse` at the end is
//! the same workload with its tasks submitted with `reuse_instance(true)`.

use std::time::Instant;

#[wray::remote]
fn noop() {}

/// A generator task: `n` small items.
#[wray::remote]
fn items(n: u32) -> impl Iterator<Item = u32> {
    0..n
}

#[wray::remote]
fn inc(x: u64) -> u64 {
    x + 1
}

#[wray::actor]
pub struct Sink {
    calls: u64,
}

#[wray::actor]
impl Sink {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Sink { calls: 0 }
    }
    pub fn noop(&mut self) {
        self.calls += 1;
    }
}

/// An actor with 4 MiB of state, of which each call changes 8 bytes: what
/// a snapshot after every call costs (`checkpoint_every(1)`).
#[wray::actor]
pub struct Table {
    cells: Vec<u64>,
}

#[wray::actor]
impl Table {
    pub fn new(cells: usize) -> Self {
        Table { cells: (0..cells as u64).collect() }
    }
    pub fn touch(&mut self, i: u64) {
        let n = self.cells.len();
        self.cells[i as usize % n] += 1;
    }
}

/// An actor of the scale-out workload: answers with its own number plus
/// what it is given, so that every answer can be checked.
#[wray::actor]
pub struct Counter {
    base: u64,
}

#[wray::actor]
impl Counter {
    pub fn new(base: u64) -> Self {
        Counter { base }
    }
    pub fn add(&mut self, x: u64) -> u64 {
        self.base + x
    }
}

/// One client of the n:n workload: its own actor, `calls` async calls.
#[wray::remote]
fn actor_client(calls: u32) -> Result<u32, wray::Error> {
    let sink = Sink::remote();
    let refs: Vec<_> = (0..calls).map(|_| sink.noop()).collect();
    wray::get_all(&refs)?;
    Ok(calls)
}

/// Touches nothing: what a task costs when its argument only has to arrive.
#[wray::remote]
fn arrive(refs: Vec<wray::ObjectRef<Vec<u8>>>) -> usize {
    refs.len()
}

/// `size` bytes, made where the task runs.
#[wray::remote]
fn make(size: usize) -> Vec<u8> {
    vec![7u8; size]
}

/// How fast `object` (`size` bytes) reaches a task on the node with
/// `remote`, nested in its argument: three tasks, each receiving it anew
/// (the node drops its copy when each task ends), the time of the same
/// task with an empty object taken off; the median, then the runs in order.
/// The first one into a fresh cluster is often the slowest: the receiver's
/// memory for the object is touched for the first time, which on this
/// kind of VM costs 0.6-1.2 s per GiB.
fn time_transfers(object: &wray::ObjectRef<Vec<u8>>, size: usize) -> Result<String, wray::Error> {
    let small = wray::put(&Vec::<u8>::new());
    let task = || arrive::options().resource("remote", 1.0);
    wray::get(&task().remote(vec![small.clone()]))?;
    let mut base = f64::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        wray::get(&task().remote(vec![small.clone()]))?;
        base = base.min(start.elapsed().as_secs_f64());
    }
    let mut rates = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        wray::get(&task().remote(vec![object.clone()]))?;
        let secs = start.elapsed().as_secs_f64() - base;
        rates.push(size as f64 / secs / 1e9);
    }
    let runs: Vec<String> = rates.iter().map(|r| format!("{r:.2}")).collect();
    rates.sort_by(f64::total_cmp);
    Ok(format!("{:.3} GB_per_s (runs in order: {})", rates[1], runs.join(", ")))
}

/// The node a task lands on, where only one node has the resource `remote`.
fn remote() -> noop::Options {
    noop::options().resource("remote", 1.0)
}

/// Tasks or calls in flight at once in the async workloads: ray_perf's
/// batches of 1,000.
const BATCH: u64 = 1_000;

/// Whole rounds of `size` in about `n` (at least one).
fn batches(n: u64, size: u64) -> u64 {
    (n / size).max(1)
}

fn rate(n: u64, start: Instant) {
    println!("RESULT {:.1} per_s", n as f64 / start.elapsed().as_secs_f64());
}

#[wray::main]
fn main(args: Vec<String>) -> Result<(), wray::Error> {
    let named = args.first().map(String::as_str).unwrap_or("tasks_sync");
    let workload = named.strip_suffix("_reuse").unwrap_or(named);
    let reuse = workload != named;
    let noop = || noop::options().reuse_instance(reuse).remote();
    let inc = |x: wray::Arg<u64>| inc::options().reuse_instance(reuse).remote(x);
    let n: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    // Warm up: the first task compiles nothing (the component is cached and
    // pre-instantiated), but touches the allocator and the code pages.
    wray::get(&noop())?;
    match workload {
        "tasks_sync" => {
            let start = Instant::now();
            for _ in 0..n {
                wray::get(&noop())?;
            }
            rate(n, start);
        }
        "tasks_async" => {
            // ray_perf's shape: batches of 1,000 submitted, then got.
            let start = Instant::now();
            let rounds = batches(n, BATCH);
            for _ in 0..rounds {
                let refs: Vec<_> = (0..BATCH).map(|_| noop()).collect();
                wray::get_all(&refs)?;
            }
            rate(rounds * BATCH, start);
        }
        "actor_sync" => {
            let a = Sink::remote();
            wray::get(&a.noop())?;
            let start = Instant::now();
            for _ in 0..n {
                wray::get(&a.noop())?;
            }
            rate(n, start);
        }
        "actor_sync_checkpointed" => {
            let a = Table::options().checkpoint_every(1).remote(4 << 17);
            wray::get(&a.touch(0))?;
            let start = Instant::now();
            for i in 0..n {
                wray::get(&a.touch(i * 4099))?;
            }
            rate(n, start);
        }
        "actor_async" => {
            let a = Sink::remote();
            wray::get(&a.noop())?;
            let start = Instant::now();
            let rounds = batches(n, BATCH);
            for _ in 0..rounds {
                let refs: Vec<_> = (0..BATCH).map(|_| a.noop()).collect();
                wray::get_all(&refs)?;
            }
            rate(rounds * BATCH, start);
        }
        "actor_nn_async" => {
            // As the reference: rounds of 4 clients of 2,500 calls each,
            // every round with fresh actors.
            let (clients, per) = (4u64, 2_500u32);
            let start = Instant::now();
            let mut done = 0u64;
            for _ in 0..batches(n, clients * u64::from(per)) {
                let refs: Vec<_> = (0..clients).map(|_| actor_client::options().num_cpus(0.5).remote(per)).collect();
                done += u64::from(wray::get_all(&refs)?.into_iter().sum::<u32>());
            }
            rate(done, start);
        }
        "wait_1k" => {
            // ray_perf's "single client wait 1k refs": 1,000 tasks, then
            // wait for one at a time until none is left; rounds per second.
            let start = Instant::now();
            for _ in 0..n {
                let mut pending: Vec<_> = (0..1000).map(|_| noop()).collect();
                while !pending.is_empty() {
                    pending = wray::wait(&pending, 1, None).1;
                }
            }
            rate(n, start);
        }
        "put_calls" => {
            let start = Instant::now();
            for i in 0..n {
                drop(wray::put(&i));
            }
            rate(n, start);
        }
        "get_calls" => {
            let r = wray::put(&vec![0u8; 64]);
            let start = Instant::now();
            for _ in 0..n {
                std::hint::black_box(wray::get(&r)?);
            }
            rate(n, start);
        }
        "put_gigabytes" => {
            // n puts of 100 MiB each; the reference is a memcpy of the same
            // buffer inside the guest, measured in the same run.
            let size = 100 << 20;
            let v = vec![7u8; size];
            let mut copy = vec![0u8; size];
            // One untimed round of each, so that neither side pays for
            // first-touch page faults in the timed loop.
            copy.copy_from_slice(&v);
            drop(wray::put(&v));
            let start = Instant::now();
            for _ in 0..n {
                copy.copy_from_slice(std::hint::black_box(&v));
            }
            let memcpy = (n * size as u64) as f64 / start.elapsed().as_secs_f64() / 1e9;
            std::hint::black_box(&copy);
            let start = Instant::now();
            for _ in 0..n {
                drop(wray::put(&v));
            }
            let put = (n * size as u64) as f64 / start.elapsed().as_secs_f64() / 1e9;
            println!("RESULT {put:.2} GB_per_s memcpy {memcpy:.2}");
        }
        "generator_items" => {
            // Generators of 1,000 items each, one after another, every item
            // read with `get` as it comes: items per second.
            let start = Instant::now();
            let mut read = 0;
            for _ in 0..n.div_ceil(1000) {
                for item in items::remote(1000) {
                    std::hint::black_box(wray::get(&item?)?);
                    read += 1;
                }
            }
            rate(read, start);
        }
        "chain" => {
            let start = Instant::now();
            let mut r = inc(wray::Arg::from(0u64));
            for _ in 1..n {
                r = inc(wray::Arg::from(&r));
            }
            let last = wray::get(&r)?;
            assert_eq!(last, n);
            println!("RESULT {:.4} ms_per_link", start.elapsed().as_secs_f64() * 1e3 / n as f64);
        }
        // Cluster workloads: the driver runs on the head, the tasks and the
        // actor on the worker that has the `remote` resource.
        "remote_tasks_sync" => {
            wray::get(&remote().remote())?;
            let start = Instant::now();
            for _ in 0..n {
                wray::get(&remote().remote())?;
            }
            rate(n, start);
        }
        "remote_tasks_async" => {
            wray::get(&remote().remote())?;
            let start = Instant::now();
            let refs: Vec<_> = (0..n).map(|_| remote().remote()).collect();
            wray::get_all(&refs)?;
            rate(n, start);
        }
        "remote_actor_sync" | "remote_actor_async" => {
            let a = Sink::options().resource("remote", 1.0).remote();
            wray::get(&a.noop())?;
            let start = Instant::now();
            if workload == "remote_actor_sync" {
                for _ in 0..n {
                    wray::get(&a.noop())?;
                }
            } else {
                let refs: Vec<_> = (0..n).map(|_| a.noop()).collect();
                wray::get_all(&refs)?;
            }
            rate(n, start);
        }
        // Scale-out workloads (`wray microbenchmark --scale-out`): every
        // task and actor needs the `remote` resource, which only the workers
        // have, so each one is placed by the head.
        "scale_tasks" => {
            let start = Instant::now();
            let refs: Vec<_> = (0..n).map(|i| inc::options().resource("remote", 0.001).remote(i)).collect();
            let results = wray::get_all(&refs)?;
            let wrong = results.iter().enumerate().filter(|(i, r)| **r != *i as u64 + 1).count();
            if wrong > 0 {
                return Err(wray::Error::InvalidArgument(format!("{wrong} of {n} task results were wrong")));
            }
            rate(n, start);
        }
        "scale_actors" => {
            let start = Instant::now();
            // One of the 100 `remote` each worker offers: 1,000 actors fill
            // two thirds of 15 workers, placed in one burst (which once
            // over-filled a worker from a heartbeat older than its last
            // placements, and hung).
            let actors: Vec<_> = (0..n).map(|i| Counter::options().resource("remote", 1.0).remote(i * 1000)).collect();
            let refs: Vec<_> = actors.iter().enumerate().map(|(i, a)| a.add(i as u64)).collect();
            let results = wray::get_all(&refs)?;
            let wrong = results.iter().enumerate().filter(|(i, r)| **r != *i as u64 * 1001).count();
            if wrong > 0 {
                return Err(wray::Error::InvalidArgument(format!("{wrong} of {n} actors answered wrong")));
            }
            rate(n, start);
        }
        "transfer" => {
            // n MiB put on the job's node (the head, or a worker in the
            // between-workers rows), then handed to a task on the node with
            // `remote` (nested in its argument, so the task itself does
            // nothing with it).
            let size = (n as usize) << 20;
            let big = wray::put(&vec![7u8; size]);
            println!("RESULT {}", time_transfers(&big, size)?);
        }
        "handoff" => {
            // n MiB made by a task on the node with `maker`, where it stays
            // (the job's node reached that node directly and the result is
            // large), then handed to a task on the node with `remote`,
            // which fetches it from the maker: the job's node never holds
            // it. Timed as `transfer`.
            let size = (n as usize) << 20;
            let made = make::options().resource("maker", 1.0).remote(size);
            wray::wait(std::slice::from_ref(&made), 1, None);
            println!("RESULT {}", time_transfers(&made, size)?);
        }
        "placement_groups" => {
            let bundle: &[(&str, f64)] = &[("CPU", 0.01)];
            let start = Instant::now();
            for _ in 0..n {
                let g = wray::placement_group(&[bundle], wray::PlacementStrategy::Pack)?;
                wray::remove_placement_group(&g)?;
            }
            rate(n, start);
        }
        "idle" => {
            // The host samples this process's memory while it sleeps.
            println!("RESULT 0 idle");
            std::thread::sleep(std::time::Duration::from_millis(n));
        }
        "first" => {
            wray::get(&inc::remote(1))?;
            println!("RESULT 1 first");
        }
        other => return Err(wray::Error::InvalidArgument(format!("unknown workload {other}"))),
    }
    Ok(())
}
