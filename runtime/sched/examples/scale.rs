//! The head's placement at scale, in simulation: 1,000,000 tasks over
//! 1,000 simulated nodes, driven through the same `ClusterView` the head
//! uses, on a virtual clock. Reports the head's decisions per second (wall
//! time spent inside the view's calls only) and the head's memory per node
//! (bytes the view allocates per joined node, counted by the allocator).
//!
//! ```sh
//! cargo run --release -p wray-sched --example scale            # 1 M tasks, 1,000 nodes
//! cargo run --release -p wray-sched --example scale -- 200000 100
//! ```
//!
//! The model: every node has 4 CPUs (every tenth also a GPU); tasks arrive
//! at random nodes, 70 per virtual millisecond, need 1 CPU (one in fifty
//! also a GPU) and run 10–90 ms: the cluster is 88 % busy on average, so
//! a task often arrives at a full node and spills, and GPU tasks queue. A node runs a
//! task itself when it has room; otherwise it asks the head, as wray's
//! nodes do: `Need::Elsewhere` if it can never run it, `Need::Spill` if
//! only busy. Each node heartbeats its free resources every 100 ms. The run
//! checks that no node ever runs more than it has and that every task
//! finishes exactly once.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use wray_core::{CPU, Resources};
use wray_sched::{ClusterView, Need, Placement};

/// Counts live heap bytes, to measure what the view keeps per node.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const CPUS_PER_NODE: u32 = 4;
const ARRIVALS_PER_MS: u64 = 70;
const HEARTBEAT_MS: u64 = 100;

struct Node {
    gpu: bool,
    free_cpu: u32,
    free_gpu: u32,
    queue: VecDeque<Task>,
    /// Numbers of the placements the head sent here since the node's last
    /// heartbeat (they arrive at once in this model).
    arrived: Vec<u64>,
}

#[derive(Clone, Copy)]
struct Task {
    id: u32,
    gpu: bool,
    duration: u64,
    /// Placed by the head: its charge is given back when it ends.
    placed: bool,
}

/// A running task's end: (finish time, node, task, gpu, placed by the head),
/// ordered by finish time first.
type Ending = (u64, u32, u32, bool, bool);

fn demand(t: &Task) -> Resources {
    let mut d = Resources::new().with(CPU, 1.0);
    if t.gpu {
        d.set("GPU", 1.0);
    }
    d
}

impl Node {
    fn fits(&self, t: &Task) -> bool {
        self.free_cpu >= 1 && (!t.gpu || self.free_gpu >= 1)
    }
    fn free(&self) -> Resources {
        let mut r = Resources::new().with(CPU, f64::from(self.free_cpu));
        if self.gpu {
            r.set("GPU", f64::from(self.free_gpu));
        }
        r
    }
}

/// xorshift64*: the simulation's only randomness, seeded.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// The head's view, and the wall time spent inside it: deciding where a
/// task goes, and everything else (heartbeats, give-backs).
struct Head {
    view: ClusterView<u32>,
    decisions: u64,
    in_place: Duration,
    in_upkeep: Duration,
}

impl Head {
    /// Where `t` goes, which the node `from` (with or without a GPU) has no
    /// room for now: `Need::Elsewhere` if it can never run it there.
    /// The request reaches the chosen node at once in this model: its
    /// number joins the node's next heartbeat.
    fn place(&mut self, t: &Task, from: usize, nodes: &mut [Node]) -> Placement<u32> {
        let need = if t.gpu && !nodes[from].gpu { Need::Elsewhere } else { Need::Spill };
        let t0 = Instant::now();
        let placed = self.view.place(&demand(t), Some(&(from as u32)), need);
        self.in_place += t0.elapsed();
        self.decisions += 1;
        if let Placement::Node(to) = placed {
            nodes[to as usize].arrived.push(self.view.last_placement(&to));
        }
        placed
    }

    fn unplace(&mut self, node: u32, t: &Task) {
        let t0 = Instant::now();
        self.view.unplace(&node, &demand(t));
        self.in_upkeep += t0.elapsed();
    }

    fn heartbeat(&mut self, node: u32, free: Resources, arrived: &[u64], now: u64) {
        let t0 = Instant::now();
        self.view.heartbeat(&node, free, arrived, now);
        self.in_upkeep += t0.elapsed();
    }
}

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>());
    let tasks = args.next().transpose().expect("tasks: a number").unwrap_or(1_000_000);
    let n = args.next().transpose().expect("nodes: a number").unwrap_or(1_000) as usize;
    assert!(n > 0 && tasks > 0 && tasks <= u64::from(u32::MAX), "tasks and nodes must be positive");
    let mut rng = Rng(0x5ca1e | 1);

    let totals: Vec<Resources> = (0..n)
        .map(|i| {
            let mut r = Resources::new().with(CPU, f64::from(CPUS_PER_NODE));
            if i % 10 == 0 {
                r.set("GPU", 1.0);
            }
            r
        })
        .collect();
    let before = LIVE.load(Ordering::Relaxed);
    let mut view: ClusterView<u32> = ClusterView::new(10 * HEARTBEAT_MS);
    for (i, total) in totals.iter().enumerate() {
        view.join(i as u32, total.clone(), 0);
    }
    let mut head = Head { view, decisions: 0, in_place: Duration::ZERO, in_upkeep: Duration::ZERO };
    let per_node = (LIVE.load(Ordering::Relaxed) - before) as f64 / n as f64;

    let mut nodes: Vec<Node> = (0..n)
        .map(|i| Node {
            gpu: i % 10 == 0,
            free_cpu: CPUS_PER_NODE,
            free_gpu: u32::from(i % 10 == 0),
            queue: VecDeque::new(),
            arrived: Vec::new(),
        })
        .collect();
    let mut running: BinaryHeap<Reverse<Ending>> = BinaryHeap::new();
    let mut finished = vec![false; tasks as usize];
    let (mut submitted, mut done) = (0u64, 0u64);
    let (mut busy, mut heartbeats) = (0u64, 0u64);
    let wall = Instant::now();
    let mut now = 0u64;

    let start = |nodes: &mut [Node], running: &mut BinaryHeap<_>, at: usize, t: Task, now: u64| {
        let node = &mut nodes[at];
        node.free_cpu -= 1;
        if t.gpu {
            node.free_gpu -= 1;
        }
        running.push(Reverse((now + t.duration, at as u32, t.id, t.gpu, t.placed)));
    };

    while done < tasks {
        now += 1;
        // Tasks that end free their node, which starts what it queued.
        while running.peek().is_some_and(|Reverse((at, ..))| *at <= now) {
            let Reverse((_, at, id, gpu, placed)) = running.pop().expect("peeked");
            if placed {
                head.unplace(at, &Task { id, gpu, duration: 0, placed });
            }
            assert!(!std::mem::replace(&mut finished[id as usize], true), "task {id} finished twice");
            done += 1;
            let node = &mut nodes[at as usize];
            node.free_cpu += 1;
            if gpu {
                node.free_gpu += 1;
            }
            assert!(node.free_cpu <= CPUS_PER_NODE && node.free_gpu <= 1, "node {at} ran more than it has");
            while let Some(t) = nodes[at as usize].queue.front().copied().filter(|t| nodes[at as usize].fits(t)) {
                nodes[at as usize].queue.pop_front();
                start(&mut nodes, &mut running, at as usize, t, now);
            }
        }
        // Heartbeats: a hundredth of the nodes each millisecond. A node
        // with a queue asks again for the task at its head, as a wray node
        // does when heartbeats show room elsewhere.
        for i in (0..n).filter(|i| (now + *i as u64).is_multiple_of(HEARTBEAT_MS)) {
            let arrived = std::mem::take(&mut nodes[i].arrived);
            head.heartbeat(i as u32, nodes[i].free(), &arrived, now);
            heartbeats += 1;
            if let Some(t) = nodes[i].queue.front().copied() {
                match head.place(&t, i, &mut nodes) {
                    Placement::Node(to) if nodes[to as usize].fits(&t) => {
                        nodes[i].queue.pop_front();
                        start(&mut nodes, &mut running, to as usize, Task { placed: true, ..t }, now);
                    }
                    // Not there after all (the view was optimistic).
                    Placement::Node(to) => head.unplace(to, &t),
                    _ => busy += 1,
                }
            }
        }
        // Arrivals.
        for _ in 0..ARRIVALS_PER_MS.min(tasks - submitted) {
            let t = Task { id: submitted as u32, gpu: rng.below(50) == 0, duration: 10 + rng.below(81), placed: false };
            submitted += 1;
            let from = rng.below(n as u64) as usize;
            if nodes[from].fits(&t) {
                start(&mut nodes, &mut running, from, t, now);
                continue;
            }
            match head.place(&t, from, &mut nodes) {
                Placement::Node(to) if nodes[to as usize].fits(&t) => {
                    start(&mut nodes, &mut running, to as usize, Task { placed: true, ..t }, now)
                }
                // Queued there: it will start there, charge and all.
                Placement::Node(to) => nodes[to as usize].queue.push_back(Task { placed: true, ..t }),
                Placement::Busy => {
                    busy += 1;
                    nodes[from].queue.push_back(t);
                }
                Placement::Infeasible => panic!("every task fits some node"),
            }
        }
    }
    assert!(finished.iter().all(|f| *f), "every task finished");
    let decisions = head.decisions;
    println!(
        "RESULT {tasks} tasks over {n} nodes: {decisions} placement decisions ({busy} Busy) in {:.3} s: {:.0} decisions/s; \
         {heartbeats} heartbeats and give-backs in {:.3} s: {:.0}/s; {:.0} B of head memory per node; {} virtual s, {:.1} s wall",
        head.in_place.as_secs_f64(),
        decisions as f64 / head.in_place.as_secs_f64(),
        head.in_upkeep.as_secs_f64(),
        (heartbeats + decisions - busy) as f64 / head.in_upkeep.as_secs_f64(),
        per_node,
        now / 1000,
        wall.elapsed().as_secs_f64()
    );
}
