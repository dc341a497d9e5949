//! Remote functions the scenarios call: arithmetic over values and refs,
//! sleepers, failures of every kind (errors, panics, traps, loops, memory
//! hogs, deep recursion, `exit`), and reads of granted files.

use crate::*;

#[wray::remote]
pub(crate) fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// Calls of this function its instance has run: 1 in a fresh instance.
static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Writes a line to each stream (`streams`).
#[wray::remote]
pub(crate) fn to_both_streams() {
    println!("task to stdout");
    eprintln!("task to stderr");
}

/// A variable of the task's environment, as its instance sees it (`env`):
/// a task's WASI context is made on its first WASI call, from the job's
/// grants.
#[wray::remote]
pub(crate) fn env_var(name: String) -> Option<String> {
    std::env::var(name).ok()
}

std::thread_local! {
    /// Refs a task kept in its instance (`keep_in_instance`).
    static KEPT: std::cell::RefCell<Vec<ObjectRef<u64>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Keeps a ref to object `id` in this instance after the task returns:
/// it lives as long as the instance does.
#[wray::remote]
pub(crate) fn keep_in_instance(id: wray::ObjectId) -> Result<(), Error> {
    let r = ObjectRef::<u64>::from_id(id)?;
    KEPT.with(|k| k.borrow_mut().push(r));
    Ok(())
}

#[wray::remote]
pub(crate) fn count_calls() -> u64 {
    CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
}

/// Counts a call, then fails: its instance must not be kept.
#[wray::remote]
pub(crate) fn count_calls_then_fail() -> Result<u64, String> {
    CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Err("planned".into())
}

/// Calls of [`count_calls`] in the driver's own instance.
pub(crate) fn calls_here() -> u64 {
    CALLS.load(std::sync::atomic::Ordering::Relaxed)
}

#[wray::remote]
pub(crate) fn sum_refs(refs: Vec<ObjectRef<i64>>) -> Result<i64, Error> {
    Ok(wray::get_all(&refs)?.into_iter().sum())
}

#[wray::remote]
pub(crate) fn make_refs(n: i64) -> Vec<ObjectRef<i64>> {
    (0..n).map(|i| wray::put(&i)).collect()
}

#[wray::remote]
pub(crate) fn buffer_stats(v: Vec<f32>) -> (usize, f64) {
    (v.len(), v.iter().map(|x| f64::from(*x)).sum())
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
pub struct Point {
    pub(crate) x: f64,
    pub(crate) label: String,
    pub(crate) tags: Vec<u8>,
}

/// Squares `i` after `ms` of sleep, and says which node ran it.
#[wray::remote]
pub(crate) fn square_where(i: u64, ms: u64) -> (u64, String) {
    std::thread::sleep(Duration::from_millis(ms));
    (i * i, wray::runtime_context().node_id)
}

/// Sleeps `ms` with `data` at hand; says how much and where.
#[wray::remote]
pub(crate) fn where_with(data: Vec<u8>, ms: u64) -> (usize, String) {
    std::thread::sleep(Duration::from_millis(ms));
    (data.len(), wray::runtime_context().node_id)
}

/// `mib` MiB of a pattern, made on whichever node runs it.
#[wray::remote]
pub(crate) fn produce(mib: usize) -> Vec<u8> {
    (0..mib << 20).map(|i| (i % 251) as u8).collect()
}

/// Checks the pattern `produce` made; returns its length and the node.
#[wray::remote]
pub(crate) fn consume(data: Vec<u8>) -> (usize, bool, String) {
    let intact = data.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8);
    (data.len(), intact, wray::runtime_context().node_id)
}

#[wray::remote]
pub(crate) fn scale(p: Point, k: f64) -> Point {
    Point { x: p.x * k, ..p }
}

#[wray::remote]
pub(crate) fn fail(msg: String) -> Result<u32, String> {
    Err(msg)
}

#[wray::remote]
pub(crate) fn explode(code: u32) -> u32 {
    if code > 0 {
        panic!("exploded with code {code}");
    }
    code
}

#[wray::remote]
pub(crate) fn spin() -> u64 {
    // Tests that interrupt it wait for this line.
    println!("spinning");
    let mut x = 0u64;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

#[wray::remote]
pub(crate) fn hog() -> usize {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    loop {
        chunks.push(vec![1u8; 16 << 20]);
        std::hint::black_box(&chunks);
    }
}

pub(crate) fn depth(n: u64) -> u64 {
    if n == u64::MAX {
        return 0;
    }
    1 + std::hint::black_box(depth(n + 1))
}

#[wray::remote]
pub(crate) fn recurse() -> u64 {
    depth(0)
}

#[wray::remote]
pub(crate) fn exit_with(status: i32) {
    std::process::exit(status)
}

/// Sleeps `ms` and returns when it started and ended (µs of the wall
/// clock, which all of a node's instances share).
#[wray::remote]
pub(crate) fn timed_sleep(ms: u64) -> (u64, u64) {
    let start = micros_now();
    std::thread::sleep(Duration::from_millis(ms));
    (start, micros_now())
}

#[wray::remote]
pub(crate) fn sleepy(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// Blocks in `get` for a task that sleeps `ms`: time blocked in the host
/// does not count against this task's own time limit.
#[wray::remote]
pub(crate) fn waits_for(ms: u64) -> Result<u64, Error> {
    wray::get(&sleepy::remote(ms))
}

#[wray::remote]
pub(crate) fn nested(level: u32) -> Result<u64, Error> {
    if level == 0 {
        return Ok(1);
    }
    let kids: Vec<_> = (0..2).map(|_| nested::remote(level - 1)).collect();
    Ok(wray::get_all(&kids)?.into_iter().sum())
}

#[wray::remote]
pub(crate) fn read_file(path: String) -> String {
    match std::fs::read_to_string(&path) {
        Ok(s) => format!("read {} bytes", s.len()),
        Err(e) => format!("cannot read {path}: {e}"),
    }
}

/// Where `n` SPREAD tasks (no CPU) submitted from here run: this task's
/// node, then theirs.
#[wray::remote]
pub(crate) fn spread_from_here(n: usize) -> Result<(String, Vec<String>), wray::Error> {
    let spread = wray::SchedulingStrategy::Spread;
    let refs: Vec<_> = (0..n)
        .map(|_| where_with::options().num_cpus(0.0).scheduling_strategy(spread.clone()).remote(Vec::new(), 0))
        .collect();
    let nodes = wray::get_all(&refs)?.into_iter().map(|(_, node)| node).collect();
    Ok((wray::runtime_context().node_id, nodes))
}

/// Where a task pinned (hard) to `node` runs, submitted from this task's
/// node: (this node, that task's node).
#[wray::remote]
pub(crate) fn pinned_from_here(node: String) -> Result<(String, String), wray::Error> {
    let pin = wray::SchedulingStrategy::NodeAffinity { node_id: node, soft: false };
    let (_, ran) = wray::get(&where_with::options().num_cpus(0.0).scheduling_strategy(pin).remote(Vec::new(), 0))?;
    Ok((wray::runtime_context().node_id, ran))
}

/// The cluster as `wray::nodes()` lists it, one word per node (role, id
/// for workers, CPUs, whether it has an address), for tests to compare.
pub(crate) fn nodes_line() -> String {
    match wray::nodes() {
        Ok(nodes) => nodes
            .iter()
            .map(|n| {
                let role = if n.is_head { "head".to_string() } else { format!("worker {}", n.node_id) };
                let cpus = n.resources.get("CPU").copied().unwrap_or(0.0);
                let free = n.available.get("CPU").is_some_and(|&c| c <= cpus);
                let reached = if n.address.is_empty() { "no address" } else { "address" };
                format!("[{role} {cpus}cpu {reached} alive={} free<=total={free}]", n.alive)
            })
            .collect::<Vec<_>>()
            .join(" "),
        Err(e) => format!("error: {e}"),
    }
}

/// `nodes_line` as a task sees it: (this task's node, the line).
#[wray::remote]
pub(crate) fn nodes_from_task() -> (String, String) {
    (wray::runtime_context().node_id, nodes_line())
}

/// A generator task: `from`, `from - 1`, ..., 0.
#[wray::remote]
pub(crate) fn countdown(from: u32) -> impl Iterator<Item = u32> {
    (0..=from).rev()
}

/// Yields `n` items `ms` apart, each with the node it was made on.
#[wray::remote]
pub(crate) fn slow_items(n: u32, ms: u64) -> impl Iterator<Item = (u32, String)> {
    (0..n).map(move |i| {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(ms));
        }
        (i, wray::runtime_context().node_id)
    })
}

/// Yields `n` items of `bytes` bytes, each with the time it was made
/// (microseconds since the Unix epoch: the nodes of a test share a clock).
#[wray::remote]
pub(crate) fn stamped_items(n: u32, bytes: u32) -> impl Iterator<Item = (u64, Vec<u8>)> {
    (0..n).map(move |_| (micros_now(), vec![7u8; bytes as usize]))
}

/// Yields `n` items, item `i` being `sizes[i % sizes.len()]` bytes of `i`.
#[wray::remote]
pub(crate) fn sized_items(n: u32, sizes: Vec<u32>) -> impl Iterator<Item = Vec<u8>> {
    (0..n).map(move |i| vec![i as u8; sizes[i as usize % sizes.len()] as usize])
}

/// Collects the refs of `n` items of 1,000 bytes before reading any, then
/// reads them all: whether every value was right. The SDK keeps the values
/// handed out with the refs only up to a bound (16 MiB), so a task with a
/// smaller memory limit than the stream can do this.
#[wray::remote]
pub(crate) fn collect_then_read(n: u32) -> Result<bool, Error> {
    let refs: Vec<ObjectRef<Vec<u8>>> = sized_items::remote(n, vec![1000]).collect::<Result<_, _>>()?;
    let mut right = true;
    for (i, r) in refs.iter().enumerate() {
        right &= wray::get(r)? == vec![i as u8; 1000];
    }
    Ok(right)
}

pub(crate) fn micros_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// Yields `good` items, then panics.
#[wray::remote]
pub(crate) fn fails_after(good: u32) -> impl Iterator<Item = u32> {
    (0..=good).map(move |i| if i == good { panic!("no item {i}") } else { i })
}

/// A generator that can fail before its first item.
#[wray::remote]
pub(crate) fn checked_items(n: i32) -> Result<impl Iterator<Item = i32>, String> {
    if n < 0 { Err(format!("cannot count to {n}")) } else { Ok(0..n) }
}

/// Yields refs to objects it puts: items nesting refs.
#[wray::remote]
pub(crate) fn put_items(n: i64) -> impl Iterator<Item = Vec<ObjectRef<i64>>> {
    (0..n).map(|i| vec![wray::put(&(i * 10)), wray::put(&(i * 10 + 1))])
}

/// Yields 0..4, but its first attempt (as `attempts` counts them) fails
/// after two items: the retry's first two items repeat them.
#[wray::remote]
pub(crate) fn flaky_items(attempts: ActorHandle<Counter>) -> impl Iterator<Item = u32> {
    let attempt = wray::get(&attempts.incr(1)).unwrap_or(0);
    (0..4).inspect(move |&i| {
        if attempt == 1 && i == 2 {
            panic!("first attempt fails after two items");
        }
    })
}

/// Reads a generator inside a task and sums its items.
#[wray::remote]
pub(crate) fn sum_countdown(from: u32) -> u32 {
    countdown::remote(from).map(|r| wray::get(&r.expect("an item")).expect("its value")).sum()
}

/// Takes one item of a generator method of `counter` from inside a task
/// and drops the rest: whether the actor's next call is answered within
/// 5 s (the method stopped) rather than after its other 99 items 100 ms
/// apart.
#[wray::remote]
pub(crate) fn drop_counts(counter: ActorHandle<Counter>) -> Result<bool, wray::Error> {
    let mut counts = counter.count_up(100, 100);
    drop(counts.next().expect("an item")?);
    drop(counts);
    let dropped = std::time::Instant::now();
    wray::get(&counter.get())?;
    Ok(dropped.elapsed() < std::time::Duration::from_secs(5))
}

/// How many items of `counter`'s `stamped` method a slow reader in a task
/// finds made ahead at most, through a handle with a window of `window`
/// (0: a handle without one).
#[wray::remote]
pub(crate) fn method_ahead(
    counter: ActorHandle<Counter>,
    window: u32,
    count: u32,
    size: u32,
) -> Result<usize, wray::Error> {
    let counter = if window > 0 { counter.with_generator_backpressure(window) } else { counter };
    crate::scenarios::most_ahead(counter.stamped(count, size))
}

/// Reads a generator method of `counter` from inside a task.
#[wray::remote]
pub(crate) fn sum_counts(counter: ActorHandle<Counter>, steps: i64) -> i64 {
    counter.count_up(steps, 0).map(|r| wray::get(&r.expect("an item")).expect("its value")).sum()
}
