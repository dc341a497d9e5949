//! Resource-aware scheduling as pure state machines.
//!
//! [`ClusterView`] is the head's view of the nodes (membership by heartbeat,
//! placement of tasks that leave their node). [`task_retry`] decides when a
//! task runs again; [`actor_session`] keeps the rules of an actor hosted on
//! another node (calls in flight, snapshots applied with their results,
//! one restart budget) across that node's death. The [`Scheduler`] holds a node's resources and a queue of tasks waiting
//! for them. Its inputs are events (a task is queued, a task finished, a task
//! blocked in `get`, ...) and its outputs are grants; it does no I/O and never
//! looks at a clock, so it is tested by driving it step by step with seeded
//! random events.
//!
//! Decisions:
//! * Tasks with the same demand are granted in submission order. Across
//!   different demands, the oldest task that *fits* goes first, so a large
//!   demand does not block small ones behind it (no head-of-line blocking),
//!   at the cost of possibly delaying the large one while small ones keep
//!   arriving.
//! * A task blocked in `get`/`wait` gives its CPU back (not its other
//!   resources) so that nested tasks can run; when it unblocks it takes the
//!   CPU back at once, even if that oversubscribes the node for a while.
//!   Waiting instead could deadlock: the tasks holding the CPU may be waiting
//!   on it.
//! * What actors and placement-group bundles hold is also counted apart
//!   ([`Scheduler::hold_lasting`]): a task ends by itself, they do not, so a
//!   queued demand that does not fit beside them alone waits for someone to
//!   end one — often for good (every CPU taken by actors that wait for
//!   it). [`Scheduler::stuck`] names those, for the node to warn about, as
//!   Ray warns that "all cluster resources [are] claimed by actors".

#![deny(missing_docs)]

pub mod actor_session;
mod cluster;
#[cfg(test)]
mod sim;
pub mod task_retry;

pub use cluster::{ClusterView, Need, Placement};

use std::collections::{BTreeMap, VecDeque};
use wray_core::Resources;

/// Why a demand can never be granted on this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Infeasible {
    /// What was asked for.
    pub demand: String,
    /// What the node has in total.
    pub total: String,
}

impl std::fmt::Display for Infeasible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "demand {} can never be met: the node has {} in total", self.demand, self.total)
    }
}

/// A queued task: submission order and demand.
struct Waiting<K> {
    seq: u64,
    key: K,
}

/// The scheduler of one node.
pub struct Scheduler<K> {
    total: Resources,
    in_use: Resources,
    /// The part of `in_use` held by actors and bundles, which keep it
    /// until someone ends them.
    lasting: Resources,
    /// Queues by demand: tasks with equal demands share one.
    queues: BTreeMap<Resources, VecDeque<Waiting<K>>>,
    next_seq: u64,
    queued: usize,
}

impl<K: PartialEq> Scheduler<K> {
    /// A node with `total` resources, all free.
    pub fn new(total: Resources) -> Scheduler<K> {
        Scheduler {
            total,
            in_use: Resources::new(),
            lasting: Resources::new(),
            queues: BTreeMap::new(),
            next_seq: 0,
            queued: 0,
        }
    }

    /// Whether `demand` could ever be granted here.
    pub fn check_feasible(&self, demand: &Resources) -> Result<(), Infeasible> {
        if self.total.contains(demand) {
            Ok(())
        } else {
            Err(Infeasible { demand: demand.to_string(), total: self.total.to_string() })
        }
    }

    /// Queues `key` until `demand` fits, after everything queued before.
    /// Call [`Scheduler::schedule`] after.
    pub fn enqueue(&mut self, key: K, demand: Resources) {
        self.enqueue_at(key, demand, self.next_seq);
    }

    /// Queues `key` until `demand` fits, at its place by `seq` among those
    /// queued: the order the caller numbered its tasks in (a node numbers
    /// them as they are submitted, and they reach the queue in whatever
    /// order its threads first run them). Call [`Scheduler::schedule`] after.
    pub fn enqueue_at(&mut self, key: K, demand: Resources, seq: u64) {
        self.next_seq = self.next_seq.max(seq + 1);
        self.queued += 1;
        let q = self.queues.entry(demand).or_default();
        // The queue is sorted by number (ties in arrival order); most
        // arrive in order, and an insert near the back moves little.
        let at = q.partition_point(|w| w.seq <= seq);
        q.insert(at, Waiting { seq, key });
    }

    /// Removes a queued task (cancelled before it ran). Returns whether it
    /// was queued.
    pub fn dequeue(&mut self, key: &K) -> bool {
        for q in self.queues.values_mut() {
            if let Some(pos) = q.iter().position(|w| &w.key == key) {
                q.remove(pos);
                self.queued -= 1;
                return true;
            }
        }
        false
    }

    /// Grants resources to as many queued tasks as fit, oldest first among
    /// those that fit. The granted tasks now hold their demand.
    pub fn schedule(&mut self) -> Vec<(K, Resources)> {
        let mut granted = Vec::new();
        // Called whenever resources come back, queue or no queue.
        if self.queued == 0 {
            self.queues.clear();
            return granted;
        }
        loop {
            // The oldest head among queues whose demand fits.
            let next = self
                .queues
                .iter()
                .filter(|(demand, q)| !q.is_empty() && self.fits(demand))
                .min_by_key(|(_, q)| q.front().map_or(u64::MAX, |w| w.seq))
                .map(|(demand, _)| demand.clone());
            let Some(demand) = next else { break };
            let q = self.queues.get_mut(&demand).expect("queue just found");
            let w = q.pop_front().expect("non-empty queue");
            self.queued -= 1;
            self.in_use.add(&demand);
            granted.push((w.key, demand));
        }
        self.queues.retain(|_, q| !q.is_empty());
        granted
    }

    /// Grants `demand` at once if nothing is queued and it fits (what lets
    /// a node decide atomically between running a task now and sending it
    /// elsewhere). The caller holds the demand if this returns true.
    pub fn try_take(&mut self, demand: &Resources) -> bool {
        if self.queued == 0 && self.fits(demand) {
            self.in_use.add(demand);
            true
        } else {
            false
        }
    }

    /// Takes queued tasks out, oldest first, that `movable` allows and that
    /// fit in one of `rooms` (free resources elsewhere, charged as tasks
    /// are taken): what a busy node hands to idle ones.
    pub fn steal(&mut self, rooms: &mut [Resources], mut movable: impl FnMut(&K) -> bool) -> Vec<(K, Resources)> {
        let mut order: Vec<(u64, Resources)> =
            self.queues.iter().flat_map(|(demand, q)| q.iter().map(move |w| (w.seq, demand.clone()))).collect();
        order.sort();
        let mut stolen = Vec::new();
        for (seq, demand) in order {
            let q = self.queues.get_mut(&demand).expect("listed above");
            let Some(room) = rooms.iter_mut().find(|r| r.contains(&demand)) else { continue };
            let pos = q.iter().position(|w| w.seq == seq).expect("listed above");
            if !movable(&q[pos].key) {
                continue;
            }
            room.subtract(&demand);
            let w = q.remove(pos).expect("position found");
            self.queued -= 1;
            stolen.push((w.key, demand));
        }
        self.queues.retain(|_, q| !q.is_empty());
        stolen
    }

    /// Takes `demand` out of the free pool if it fits, queue or not (a
    /// placement-group reservation).
    pub fn reserve(&mut self, demand: &Resources) -> bool {
        if self.fits(demand) {
            self.in_use.add(demand);
            true
        } else {
            false
        }
    }

    /// The node offers more (a placement-group bundle's own resources).
    pub fn grow(&mut self, add: &Resources) {
        self.total.add(add);
    }

    /// The node offers less (a bundle was removed). Tasks still holding
    /// the removed resources keep them until they end.
    pub fn shrink(&mut self, remove: &Resources) {
        self.total.subtract(remove);
        self.total.prune();
    }

    /// Gives back what a finished task held.
    pub fn release(&mut self, held: &Resources) {
        self.in_use.subtract(held);
        self.in_use.prune();
    }

    /// Marks `held`, already granted (or reserved), as held by an actor or a
    /// placement-group bundle: kept until its holder is ended, not given
    /// back when some work finishes. Undone by [`Scheduler::end_lasting`].
    pub fn hold_lasting(&mut self, held: &Resources) {
        self.lasting.add(held);
    }

    /// The actor or bundle holding `held` ended; [`Scheduler::release`]
    /// gives the resources back.
    pub fn end_lasting(&mut self, held: &Resources) {
        self.lasting.subtract(held);
        self.lasting.prune();
    }

    /// Queued demands that cannot be granted before an actor or a bundle
    /// ends: they do not fit in the node beside what those hold, however
    /// many running tasks finish. Oldest first.
    pub fn stuck(&self) -> Vec<(K, Resources)>
    where
        K: Clone,
    {
        let mut stuck: Vec<(u64, K, Resources)> = self
            .queues
            .iter()
            .filter(|(demand, _)| !self.total.contains_beyond(&self.lasting, demand))
            .flat_map(|(demand, q)| q.iter().map(move |w| (w.seq, w.key.clone(), demand.clone())))
            .collect();
        stuck.sort_by_key(|(seq, _, _)| *seq);
        stuck.into_iter().map(|(_, k, d)| (k, d)).collect()
    }

    /// What actors and placement-group bundles hold.
    pub fn lasting(&self) -> &Resources {
        &self.lasting
    }

    /// A running task blocked in `get`/`wait`: its CPU becomes free.
    pub fn block(&mut self, held: &Resources) {
        self.in_use.subtract(&cpu_part(held));
    }

    /// The task unblocked: it takes its CPU back at once.
    pub fn unblock(&mut self, held: &Resources) {
        self.in_use.add(&cpu_part(held));
    }

    /// Whether `demand` fits in what no one holds, without making that set
    /// (asked for every task).
    fn fits(&self, demand: &Resources) -> bool {
        self.total.contains_beyond(&self.in_use, demand)
    }

    /// Resources not held by anyone.
    pub fn available(&self) -> Resources {
        let mut free = self.total.clone();
        free.subtract(&self.in_use);
        free
    }

    /// All resources of the node.
    pub fn total(&self) -> &Resources {
        &self.total
    }

    /// Tasks waiting for resources.
    pub fn queued(&self) -> usize {
        self.queued
    }
}

/// The CPUs in what a task holds: `CPU`, or a placement-group bundle's own
/// CPUs (`CPU_group_<i>_<id>`) for a task in a bundle.
fn cpu_part(held: &Resources) -> Resources {
    let mut cpus = Resources::new();
    for (name, amount) in held.iter() {
        if wray_core::is_cpu(name) {
            cpus.set(name, amount);
        }
    }
    cpus
}

#[cfg(test)]
mod tests {
    use super::*;
    use wray_core::CPU;

    fn cpus(n: f64) -> Resources {
        Resources::new().with(CPU, n)
    }

    #[test]
    fn only_demands_that_wait_on_actors_or_bundles_are_stuck() {
        let mut s = Scheduler::new(cpus(2.0).with("GPU", 1.0));
        // Two actors take both CPUs; a running task holds the GPU.
        for _ in 0..2 {
            assert!(s.try_take(&cpus(1.0)));
            s.hold_lasting(&cpus(1.0));
        }
        assert!(s.try_take(&Resources::new().with("GPU", 1.0)));
        s.enqueue("task", cpus(1.0));
        s.enqueue("gpu task", Resources::new().with("GPU", 1.0));
        s.enqueue("actor", cpus(0.5));
        assert!(s.schedule().is_empty());
        let stuck: Vec<_> = s.stuck().into_iter().map(|(k, _)| k).collect();
        // The GPU task waits for a task, which ends by itself.
        assert_eq!(stuck, ["task", "actor"]);
        // One actor ends: its CPU goes to the oldest, the rest fits beside
        // the other actor.
        s.end_lasting(&cpus(1.0));
        s.release(&cpus(1.0));
        assert_eq!(s.schedule().into_iter().map(|(k, _)| k).collect::<Vec<_>>(), ["task"]);
        assert!(s.stuck().is_empty(), "{:?}", s.stuck());
        assert_eq!(s.lasting(), &cpus(1.0));
        // A bundle reserving the last CPU is lasting too.
        let mut s = Scheduler::new(cpus(1.0));
        assert!(s.reserve(&cpus(1.0)));
        s.hold_lasting(&cpus(1.0));
        s.enqueue(1, cpus(1.0));
        assert_eq!(s.stuck().len(), 1);
        s.end_lasting(&cpus(1.0));
        s.release(&cpus(1.0));
        assert!(s.stuck().is_empty());
        assert_eq!(s.schedule().len(), 1);
    }

    #[test]
    fn grants_in_order_up_to_capacity() {
        let mut s = Scheduler::new(cpus(2.0));
        for k in 0..5 {
            s.enqueue(k, cpus(1.0));
        }
        let g: Vec<_> = s.schedule().into_iter().map(|(k, _)| k).collect();
        assert_eq!(g, vec![0, 1]);
        s.release(&cpus(1.0));
        assert_eq!(s.schedule().into_iter().map(|(k, _)| k).collect::<Vec<_>>(), vec![2]);
        assert_eq!(s.queued(), 2);
    }

    #[test]
    fn tasks_numbered_out_of_order_are_granted_by_their_numbers() {
        // A burst submitted as 1..=4 that reached the queue as 4, 1, 3, 2,
        // with the oldest of a second demand's queue older than all.
        let mut s = Scheduler::new(cpus(1.0));
        s.enqueue_at("gpu", cpus(1.0).with("GPU", 1.0), 0);
        for n in [4u64, 1, 3, 2] {
            s.enqueue_at(["", "one", "two", "three", "four"][n as usize], cpus(1.0), n);
        }
        let mut granted = Vec::new();
        for _ in 0..4 {
            granted.extend(s.schedule().into_iter().map(|(k, _)| k));
            s.release(&cpus(1.0));
        }
        assert_eq!(granted, ["one", "two", "three", "four"]);
        // `enqueue` numbers after the highest so far.
        s.enqueue("later", cpus(1.0));
        s.enqueue_at("older", cpus(1.0), 3);
        assert_eq!(s.schedule().into_iter().map(|(k, _)| k).collect::<Vec<_>>(), ["older"]);
    }

    #[test]
    fn a_blocked_task_in_a_bundle_gives_its_bundle_cpu_back() {
        let bundle = cpus(1.0).bundle_offer(7, 0);
        let mut s = Scheduler::new(bundle.clone());
        let demand = cpus(1.0).in_bundle(7, 0);
        s.enqueue(1u32, demand.clone());
        s.enqueue(2u32, demand.clone());
        let granted = s.schedule();
        assert_eq!(granted.len(), 1);
        s.block(&granted[0].1);
        assert_eq!(s.schedule().len(), 1, "the bundle's CPU was not given back");
    }

    #[test]
    fn steal_takes_the_oldest_movable_tasks_that_fit_elsewhere() {
        let mut s = Scheduler::new(cpus(1.0));
        for k in 0..5u32 {
            s.enqueue(k, cpus(1.0));
        }
        s.enqueue(9, cpus(4.0));
        assert_eq!(s.schedule().len(), 1); // task 0 runs here
        let mut rooms = [cpus(2.0), cpus(0.5)];
        let stolen = s.steal(&mut rooms, |k| *k != 1);
        assert_eq!(stolen.iter().map(|(k, _)| *k).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(s.queued(), 3);
        assert!(rooms[0].is_empty() || rooms[0].get(CPU) == 0.0);
    }

    #[test]
    fn large_demand_does_not_block_small_ones() {
        let mut s = Scheduler::new(cpus(2.0).with("GPU", 1.0));
        s.enqueue("a", cpus(1.0));
        s.schedule();
        s.enqueue("big", cpus(2.0));
        s.enqueue("small", cpus(1.0));
        let g: Vec<_> = s.schedule().into_iter().map(|(k, _)| k).collect();
        assert_eq!(g, vec!["small"]);
    }

    #[test]
    fn blocking_frees_cpu_for_nested_tasks() {
        let mut s = Scheduler::new(cpus(1.0));
        s.enqueue("parent", cpus(1.0));
        assert_eq!(s.schedule().len(), 1);
        s.enqueue("child", cpus(1.0));
        assert!(s.schedule().is_empty());
        s.block(&cpus(1.0));
        assert_eq!(s.schedule().len(), 1);
        s.unblock(&cpus(1.0)); // oversubscribed until the child finishes
        s.release(&cpus(1.0));
        s.release(&cpus(1.0));
        assert_eq!(s.available().get(CPU), 1.0);
    }

    #[test]
    fn infeasible_demands_are_reported() {
        let s: Scheduler<u32> = Scheduler::new(cpus(2.0));
        let e = s.check_feasible(&cpus(1.0).with("GPU", 1.0)).unwrap_err();
        assert!(e.to_string().contains("GPU"), "{e}");
        assert!(s.check_feasible(&cpus(2.0)).is_ok());
    }

    /// Seeded simulation: random arrivals, completions, blocks and cancels.
    /// Invariants: never more than the total is granted to non-blocked
    /// tasks, every task is granted exactly once unless cancelled, and when
    /// nothing runs the queue is empty (no task starves on a free node).
    #[test]
    fn simulation_never_overcommits_or_loses_tasks() {
        let seed = crate::sim::seed(0x5eed);
        for run in 0..50u64 {
            let mut rng = crate::sim::Rng::new(seed ^ run.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let total = cpus(1.0 + (rng.next() % 4) as f64).with("GPU", (rng.next() % 3) as f64);
            let mut s = Scheduler::new(total.clone());
            let mut running: Vec<(u64, Resources, bool)> = Vec::new();
            let mut queued: Vec<u64> = Vec::new();
            let mut granted_ever = std::collections::HashSet::new();
            for step in 0..2_000u64 {
                match rng.next() % 5 {
                    0 | 1 => {
                        let d = cpus([0.25, 0.5, 1.0, 2.0][(rng.next() % 4) as usize])
                            .with("GPU", [0.0, 0.5, 1.0][(rng.next() % 3) as usize]);
                        if s.check_feasible(&d).is_ok() {
                            s.enqueue(step, d);
                            queued.push(step);
                        }
                    }
                    2 if !running.is_empty() => {
                        let i = (rng.next() as usize) % running.len();
                        let (_, held, blocked) = running.swap_remove(i);
                        if blocked {
                            s.unblock(&held);
                        }
                        s.release(&held);
                    }
                    3 if !running.is_empty() => {
                        let i = (rng.next() as usize) % running.len();
                        let r = &mut running[i];
                        if r.2 {
                            s.unblock(&r.1)
                        } else {
                            s.block(&r.1)
                        }
                        r.2 = !r.2;
                    }
                    4 if !queued.is_empty() => {
                        let i = (rng.next() as usize) % queued.len();
                        let k = queued.swap_remove(i);
                        assert!(s.dequeue(&k), "seed {seed} run {run}: queued task {k} not found");
                    }
                    _ => {}
                }
                let grants = s.schedule();
                let granted_now = !grants.is_empty();
                for (k, d) in grants {
                    assert!(granted_ever.insert(k), "seed {seed} run {run}: task {k} granted twice");
                    queued.retain(|q| *q != k);
                    running.push((k, d, false));
                }
                // Held by running, non-blocked tasks (blocked ones gave their
                // CPU back). Unblocking may oversubscribe the CPU, but a
                // grant never does, and GPUs are never oversubscribed.
                let mut held = Resources::new();
                for (_, d, blocked) in &running {
                    if *blocked { held.add(&Resources::new().with("GPU", d.get("GPU"))) } else { held.add(d) }
                }
                assert!(
                    held.get("GPU") <= total.get("GPU"),
                    "seed {seed} run {run}: GPUs overcommitted: {held} of {total}"
                );
                if granted_now {
                    assert!(total.contains(&held), "seed {seed} run {run}: a grant overcommitted: {held} of {total}");
                }
                if running.is_empty() {
                    assert_eq!(s.queued(), 0, "seed {seed} run {run}: tasks starve on an idle node");
                }
                assert_eq!(s.queued(), queued.len(), "seed {seed} run {run}: queue count drifted");
            }
        }
    }
}
