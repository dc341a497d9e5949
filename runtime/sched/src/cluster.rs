//! The head's view of the cluster: which nodes are alive, what each has, and
//! where a task that leaves its node should go.
//!
//! Like [`crate::Scheduler`], a pure state machine: the head feeds it joins,
//! heartbeats (each carrying the node's free resources) and the time, and
//! asks it to place demands. It never reads a clock; `now` is whatever the
//! caller says (milliseconds), so the simulation below drives it with a
//! virtual clock.
//!
//! Decisions:
//! * A node is alive while heartbeats keep arriving: one missing for longer
//!   than the timeout makes it dead until it joins again. Tasks on a dead
//!   node are the submitter's to retry; the view only stops placing there.
//! * Dead nodes are remembered (up to a bound), and so are the nodes a
//!   restarted head knew before: a demand only such a node could meet is a
//!   sign its replacement or return is near, so the head waits longer for
//!   it than for a demand no node ever met.
//! * Free resources are what the last heartbeat said minus the placements
//!   that heartbeat did not include yet, so that a burst of placements
//!   between two heartbeats spreads out instead of piling onto the node
//!   that looked free. Each placement on a node is numbered (the request
//!   carries its number); a heartbeat lists the numbers that arrived since
//!   the one before (the node's figures count them from arrival on), and
//!   the other charges stay. Before this, a heartbeat measured before a
//!   placement reached the node erased its charge, and a burst of
//!   long-lived placements (200 actors for a node with room for 100)
//!   over-filled one node while others stood empty; keeping young charges
//!   by age instead counted placements the node already ran twice (in
//!   `examples/scale.rs`, 14 virtual seconds became 483). Numbers, not a
//!   count of arrivals: a placement that never arrives (its sender was
//!   cancelled first) would shift a count for good, and a node then looked
//!   one placement fuller for ever — which hung a trainer on 1-CPU nodes.
//!   A charge no heartbeat acknowledges within [`UNACKED_TTL_MS`] is taken
//!   as lost and dropped.
//! * Among nodes with room, the one with the largest share of its CPUs free
//!   wins (spreading load); ties go to the node that joined first, so
//!   placement is deterministic. The live nodes are kept sorted in exactly
//!   that order (an index updated on every change to a node's free
//!   resources), so a decision looks at the best node first and stops at
//!   the first that fits: O(log n) when the best node has room, instead of
//!   a pass over all n nodes (1 M tasks over 1,000 simulated nodes: 0.6–1.4 M
//!   decisions/s against 17,500 with the pass, the same decisions;
//!   `examples/scale.rs`). A second index, by free CPUs, answers "no node
//!   has that many CPUs free" without a pass, which is what a saturated
//!   cluster is asked for every task that spills.
//! * A demand for a fraction of a CPU goes first to a node where it breaks
//!   no whole CPU (free CPUs with at least that fraction over a whole
//!   number), so that fractional actors share broken CPUs instead of
//!   leaving a fraction free on every node and a whole CPU on none.
//! * A task that must leave its node (its demand exists only elsewhere) is
//!   queued on the least loaded node that could ever run it when none has
//!   room now; one that merely spills over from a busy node is not moved
//!   unless another node has room ([`Placement::Busy`]).
//! * SPREAD ([`Need::Spread`]) is Ray's round robin: the next node with
//!   room after the one SPREAD chose last, in join order, the asking node
//!   included — not "the freest node", which after a burst of equal demands
//!   is the same node until its heartbeat says otherwise, and which would
//!   put two replicas on one node whenever a third stands busy. One cursor
//!   for the whole cluster, as in Ray: spread demands of different jobs
//!   take turns too. A pass over the nodes per decision (no index): spread
//!   demands are actors and long tasks, not the million-task stream.

/// How long a placement's charge waits for a heartbeat to acknowledge it
/// before the view takes the placement as lost (it never left its sender,
/// or was cancelled on the way) and drops the charge. A placement reaches its
/// node in a round trip; this is many heartbeats.
pub const UNACKED_TTL_MS: u64 = 5_000;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use wray_core::{CPU, Resources, Strategy};

/// Where a demand goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement<N> {
    /// Run it on this node.
    Node(N),
    /// No other node has room now; keep it where it is.
    Busy,
    /// No live node could ever run it.
    Infeasible,
}

/// Whether a task must leave the node asking, or only may.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// The asking node cannot run it at all.
    Elsewhere,
    /// The asking node is busy; move it only to a node with room now.
    Spill,
    /// SPREAD: the next node with room in turn, the asking node included
    /// ([`Placement::Busy`] when its turn comes: it runs where it is). With
    /// no room anywhere it queues where it is if it could ever run there,
    /// else on the next node that could.
    Spread,
}

impl Need {
    /// The need of a demand that SPREADs or not, and must leave its node
    /// or only may.
    pub fn of(spread: bool, must_move: bool) -> Need {
        match (spread, must_move) {
            (true, _) => Need::Spread,
            (false, true) => Need::Elsewhere,
            (false, false) => Need::Spill,
        }
    }
}

struct Member {
    total: Resources,
    free: Resources,
    last_heartbeat: u64,
    alive: bool,
    /// Join order, for deterministic ties.
    order: u64,
    /// Where the member sits in the view's indexes (live members only).
    key: Option<Keys>,
    /// Placements made on the node since it joined (the last one's
    /// number).
    placed: u64,
    /// Charges no heartbeat acknowledged yet, oldest first.
    unacked: VecDeque<Charge>,
}

/// A placement not yet acknowledged by its node.
struct Charge {
    number: u64,
    demand: Resources,
    /// When it was placed (the caller's clock).
    at: u64,
}

/// A live member's place in the indexes: its free-CPU share and its free
/// CPUs, as `f64` bits (both are never negative, so the bits order as the
/// values do), and its join order.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Keys {
    share: u64,
    free_cpu: u64,
    order: u64,
}

impl Member {
    fn new(free: Resources, total: Resources, last_heartbeat: u64, order: u64) -> Member {
        Member { total, free, last_heartbeat, alive: false, order, key: None, placed: 0, unacked: VecDeque::new() }
    }

    /// Whether it is alive and big enough for `demand` (room now or not).
    fn can_run(&self, demand: &Resources) -> bool {
        self.alive && self.total.contains(demand)
    }

    fn cpu_share(&self) -> f64 {
        let total = self.total.get(CPU);
        if total > 0.0 { self.free.get(CPU) / total } else { 0.0 }
    }

    fn keys(&self) -> Keys {
        Keys {
            share: self.cpu_share().max(0.0).to_bits(),
            free_cpu: self.free.get(CPU).max(0.0).to_bits(),
            order: self.order,
        }
    }
}

/// The cluster's nodes, as the head sees them.
pub struct ClusterView<N> {
    members: BTreeMap<N, Member>,
    /// Live members, best placement first: highest free-CPU share, then
    /// earliest joined.
    by_share: BTreeSet<(Reverse<u64>, u64, N)>,
    /// Live members by free CPUs, most first.
    by_free_cpu: BTreeSet<(Reverse<u64>, u64, N)>,
    timeout_ms: u64,
    joins: u64,
    /// The latest time the caller gave (joins, heartbeats, expiries): when
    /// a placement's charge was made.
    clock: u64,
    /// The join order of the node SPREAD chose last (0: none yet).
    spread_last: u64,
}

impl<N: Ord + Clone> ClusterView<N> {
    /// An empty cluster whose nodes die after `timeout_ms` without a
    /// heartbeat.
    pub fn new(timeout_ms: u64) -> ClusterView<N> {
        ClusterView {
            members: BTreeMap::new(),
            by_share: BTreeSet::new(),
            by_free_cpu: BTreeSet::new(),
            timeout_ms,
            joins: 0,
            clock: 0,
            spread_last: 0,
        }
    }

    /// Applies `f` to `node`'s member (if known) and keeps the indexes in
    /// step with its liveness and free resources.
    fn update<R>(&mut self, node: &N, f: impl FnOnce(&mut Member) -> R) -> Option<R> {
        let m = self.members.get_mut(node)?;
        if let Some(k) = m.key.take() {
            self.by_share.remove(&(Reverse(k.share), k.order, node.clone()));
            self.by_free_cpu.remove(&(Reverse(k.free_cpu), k.order, node.clone()));
        }
        let r = f(m);
        if m.alive {
            let k = m.keys();
            m.key = Some(k);
            self.by_share.insert((Reverse(k.share), k.order, node.clone()));
            self.by_free_cpu.insert((Reverse(k.free_cpu), k.order, node.clone()));
        }
        Some(r)
    }

    /// A node joins with `total` resources, all free.
    pub fn join(&mut self, node: N, total: Resources, now: u64) {
        self.clock = self.clock.max(now);
        self.joins += 1;
        let order = self.joins;
        // A node joining again leaves its old place in the indexes first.
        self.update(&node, |m| m.alive = false);
        let member = Member::new(total.clone(), total, now, order);
        self.members.insert(node.clone(), member);
        self.update(&node, |m| m.alive = true);
    }

    /// A node known from before the observer restarted, with `total`
    /// resources: counted as lost (see [`Self::lost_could_meet`]) until it
    /// joins again. Ignored for a node already known.
    pub fn remember(&mut self, node: N, total: Resources) {
        if !self.members.contains_key(&node) {
            self.joins += 1;
            let member = Member::new(Resources::new(), total, 0, self.joins);
            self.members.insert(node, member);
        }
    }

    /// A node says it is alive and has `free` resources, counting the
    /// placements numbered `arrived` (those that reached it since its last
    /// heartbeat) and every earlier one. Ignored for a node already dead or
    /// unknown: it must join again.
    pub fn heartbeat(&mut self, node: &N, free: Resources, arrived: &[u64], now: u64) {
        self.clock = self.clock.max(now);
        if self.is_alive(node) {
            // Looked up by binary search: a busy worker acknowledges
            // thousands of placements per heartbeat while thousands are
            // unacknowledged, and a scan per charge made this quadratic —
            // 2.4% of the head's CPU at 22k tasks/s across nodes, and up to
            // 65,536 × the unacked charges under the view's lock for a
            // heartbeat of `MAX_ACKS` numbers.
            let mut arrived = arrived.to_vec();
            arrived.sort_unstable();
            self.update(node, |m| {
                m.unacked
                    .retain(|c| arrived.binary_search(&c.number).is_err() && now.saturating_sub(c.at) < UNACKED_TTL_MS);
                m.free = free;
                for c in &m.unacked {
                    m.free.subtract(&c.demand);
                }
                m.last_heartbeat = now;
            });
        }
    }

    /// The number of the last placement on `node` (what its request
    /// carries, for the node's heartbeat to acknowledge); 0 if none.
    pub fn last_placement(&self, node: &N) -> u64 {
        self.members.get(node).map_or(0, |m| m.placed)
    }

    /// A node is gone (its connection closed).
    pub fn leave(&mut self, node: &N) {
        self.update(node, |m| m.alive = false);
    }

    /// The observer itself stalled (its clock jumped): every live node gets
    /// a fresh timeout from `now`, since its heartbeats may be sitting
    /// unread rather than missing.
    pub fn pause(&mut self, now: u64) {
        for m in self.members.values_mut().filter(|m| m.alive) {
            m.last_heartbeat = m.last_heartbeat.max(now);
        }
    }

    /// Marks nodes silent for longer than the timeout dead and returns them.
    pub fn expire(&mut self, now: u64) -> Vec<N> {
        self.clock = self.clock.max(now);
        let dead: Vec<N> = self
            .members
            .iter()
            .filter(|(_, m)| m.alive && now.saturating_sub(m.last_heartbeat) > self.timeout_ms)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &dead {
            self.leave(id);
        }
        dead
    }

    /// Whether `node` is alive.
    pub fn is_alive(&self, node: &N) -> bool {
        self.members.get(node).is_some_and(|m| m.alive)
    }

    /// Live nodes.
    pub fn alive(&self) -> impl Iterator<Item = &N> {
        self.members.iter().filter(|(_, m)| m.alive).map(|(id, _)| id)
    }

    /// Forgets dead nodes beyond the newest `keep` (a flapping node must not
    /// grow the view), returning them.
    pub fn forget_dead(&mut self, keep: usize) -> Vec<N> {
        let mut dead: Vec<(u64, N)> =
            self.members.iter().filter(|(_, m)| !m.alive).map(|(id, m)| (m.order, id.clone())).collect();
        dead.sort();
        let extra = dead.len().saturating_sub(keep);
        let forgotten: Vec<N> = dead.into_iter().take(extra).map(|(_, id)| id).collect();
        for id in &forgotten {
            self.members.remove(id);
        }
        forgotten
    }

    /// Whether a node that died (and is still remembered) could have met
    /// `demand` — a sign that a replacement may be on its way.
    pub fn lost_could_meet(&self, demand: &Resources) -> bool {
        self.members.values().any(|m| !m.alive && m.total.contains(demand))
    }

    /// Total resources of the live nodes.
    pub fn total(&self) -> Resources {
        self.sum(|m| &m.total)
    }

    /// Free resources of the live nodes, as last heard.
    pub fn free(&self) -> Resources {
        self.sum(|m| &m.free)
    }

    fn sum(&self, f: impl Fn(&Member) -> &Resources) -> Resources {
        let mut r = Resources::new();
        for m in self.members.values().filter(|m| m.alive) {
            r.add(f(m));
        }
        r
    }

    /// What each live node other than `node` has free, as last heard.
    pub fn rooms_except(&self, node: &N) -> Vec<Resources> {
        self.members.iter().filter(|(id, m)| m.alive && *id != node).map(|(_, m)| m.free.clone()).collect()
    }

    /// Chooses a node for `demand`, other than `from` (the node asking).
    /// The choice is charged to the node's free resources at once.
    pub fn place(&mut self, demand: &Resources, from: Option<&N>, need: Need) -> Placement<N> {
        if need == Need::Spread {
            return self.place_spread(demand, from);
        }
        // The live nodes in placement order (best first), without `from`.
        let order =
            || self.by_share.iter().map(|(.., id)| id).filter(|id| Some(*id) != from).map(|id| (id, &self.members[id]));
        // No node has that many CPUs free: skip the pass that would find
        // no room anywhere.
        let cpu = demand.get(CPU);
        let room_possible = cpu <= 0.0
            || self
                .by_free_cpu
                .iter()
                .map(|(.., id)| id)
                .find(|id| Some(*id) != from)
                .is_some_and(|id| self.members[id].free.get(CPU) >= cpu);
        let fits = |m: &Member| m.total.contains(demand) && m.free.contains(demand);
        let with_room = if !room_possible {
            None
        } else if demand.fraction(CPU) > 0.0 {
            // A fraction of a CPU goes first where it breaks no whole CPU
            // (a node whose free CPUs have at least that fraction over a
            // whole number): half-CPU actors spread one per node would leave
            // half a CPU everywhere and a whole one nowhere, and the 1-CPU
            // tasks that feed them would wait for ever (it hung a data
            // pipeline's actor pool on three 1-CPU nodes). A pass over the
            // nodes, not the index: fractional demands are actors and the
            // odd task, not the stream of millions.
            order()
                .find(|(_, m)| fits(m) && m.free.fraction(CPU) >= demand.fraction(CPU))
                .or_else(|| order().find(|(_, m)| fits(m)))
                .map(|(id, _)| id.clone())
        } else {
            order().find(|(_, m)| fits(m)).map(|(id, _)| id.clone())
        };
        let id = match with_room {
            Some(id) => id,
            // A spilling node can run the task itself, in time.
            None if need == Need::Spill => return Placement::Busy,
            // Queued on the best node that could ever run it.
            None => match order().find(|(_, m)| m.total.contains(demand)) {
                Some((id, _)) => id.clone(),
                None => return Placement::Infeasible,
            },
        };
        self.charge(&id, demand);
        Placement::Node(id)
    }

    /// SPREAD's choice ([`Need::Spread`]).
    fn place_spread(&mut self, demand: &Resources, from: Option<&N>) -> Placement<N> {
        let last = self.spread_last;
        // The first live node after the cursor (wrapping) that `fits`.
        let next = |fits: &dyn Fn(&Member) -> bool| {
            self.members
                .iter()
                .filter(|(_, m)| m.can_run(demand) && fits(m))
                .min_by_key(|(_, m)| (m.order <= last, m.order))
                .map(|(id, m)| (id.clone(), m.order))
        };
        let asking = from.and_then(|f| {
            let m = self.members.get(f)?;
            m.can_run(demand).then(|| (f.clone(), m.order))
        });
        let chosen = next(&|m| m.free.contains(demand)).or(asking).or_else(|| next(&|_| true));
        let Some((id, order)) = chosen else { return Placement::Infeasible };
        self.spread_last = order;
        if Some(&id) == from {
            return Placement::Busy;
        }
        self.charge(&id, demand);
        Placement::Node(id)
    }

    /// Chooses `node` for `demand` — Ray's node affinity. Hard (`soft`
    /// false): `node` whether or not it has room now (the demand queues
    /// there), [`Placement::Busy`] if it is the asking node itself, and
    /// [`Placement::Infeasible`] if it is not a live member or could never
    /// meet the demand. Soft: `node` only while it has room; otherwise as a
    /// spilling demand without affinity ([`Need::Spill`]).
    pub fn place_on(&mut self, demand: &Resources, from: Option<&N>, node: &N, soft: bool) -> Placement<N> {
        if self.members.get(node).is_some_and(|m| m.can_run(demand) && (!soft || m.free.contains(demand))) {
            if Some(node) == from {
                return Placement::Busy;
            }
            self.charge(node, demand);
            return Placement::Node(node.clone());
        }
        if soft { self.place(demand, from, Need::Spill) } else { Placement::Infeasible }
    }

    /// Charges a placement of `demand` on `id` until a heartbeat
    /// acknowledges it.
    fn charge(&mut self, id: &N, demand: &Resources) {
        let now = self.clock;
        self.update(id, |m| {
            m.free.subtract(demand);
            m.placed += 1;
            m.unacked.push_back(Charge { number: m.placed, demand: demand.clone(), at: now });
        });
    }

    /// Chooses a node for each bundle of a placement group, all or nothing,
    /// and charges them. Greedy, in bundle order: PACK fills the nodes it
    /// already chose before opening another (trying one node for all
    /// first), SPREAD opens a new node while one has room; the strict
    /// forms fail rather than bend.
    pub fn place_group(&mut self, bundles: &[Resources], strategy: Strategy) -> Result<Vec<N>, String> {
        let mut free: Vec<(N, Resources, f64, u64)> = self
            .members
            .iter()
            .filter(|(_, m)| m.alive)
            .map(|(id, m)| {
                let total = m.total.get(CPU);
                (id.clone(), m.free.clone(), if total > 0.0 { m.free.get(CPU) / total } else { 0.0 }, m.order)
            })
            .collect();
        // Most free CPU share first, then join order.
        free.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.3.cmp(&b.3)));
        let mut sum = Resources::new();
        for b in bundles {
            sum.add(b);
        }
        let mut chosen: Vec<usize> = Vec::with_capacity(bundles.len());
        let one_node = free.iter().position(|(_, f, ..)| f.contains(&sum));
        match (strategy, one_node) {
            (Strategy::StrictPack | Strategy::Pack, Some(i)) => chosen = vec![i; bundles.len()],
            (Strategy::StrictPack, None) => {
                return Err(format!("no node has room for all {} bundles together ({sum})", bundles.len()));
            }
            _ => {
                for (n, b) in bundles.iter().enumerate() {
                    let used = |i: &usize| chosen.contains(i);
                    let fits = |i: &usize| free[*i].1.contains(b);
                    let pick = match strategy {
                        Strategy::Pack => (0..free.len()).filter(fits).min_by_key(|i| !used(i)),
                        Strategy::Spread => (0..free.len()).filter(fits).min_by_key(|i| used(i)),
                        _ => (0..free.len()).find(|i| fits(i) && !used(i)),
                    };
                    let Some(i) = pick else {
                        let what = if strategy == Strategy::StrictSpread { " on a node of its own" } else { "" };
                        return Err(format!("no node has room for bundle {n} ({b}){what}"));
                    };
                    free[i].1.subtract(b);
                    chosen.push(i);
                }
            }
        }
        let nodes: Vec<N> = chosen.iter().map(|i| free[*i].0.clone()).collect();
        for (node, b) in nodes.iter().zip(bundles) {
            self.update(node, |m| m.free.subtract(b));
        }
        Ok(nodes)
    }

    /// A node's resources changed: a placement-group bundle reserved there
    /// offers `add` (and its reservation is out of the node's free pool
    /// already), or a removed one takes `remove` away.
    pub fn adjust(&mut self, node: &N, add: &Resources, remove: &Resources) {
        self.update(node, |m| {
            m.total.add(add);
            m.free.add(add);
            m.total.subtract(remove);
            m.free.subtract(remove);
            m.total.prune();
            m.free.prune();
        });
    }

    /// Gives back a charge made by [`ClusterView::place`]: the task never
    /// reached the node, or it finished there. Keeps the view current
    /// between heartbeats (which correct it anyway); never makes a node
    /// look freer than its total. A charge no heartbeat included yet is
    /// dropped — the oldest of equal demand: equal charges are
    /// interchangeable, and keeping the newest number acknowledges the
    /// rest no earlier than their placements arrive.
    pub fn unplace(&mut self, node: &N, demand: &Resources) {
        self.update(node, |m| {
            if let Some(i) = m.unacked.iter().position(|c| c.demand == *demand) {
                m.unacked.remove(i);
            }
            m.free.add(demand);
            for (name, total) in m.total.iter() {
                if m.free.get(name) > total {
                    m.free.set(name, total);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_remembered_from_before_a_restart_counts_as_lost_until_it_joins() {
        let spot = |n: f64| Resources::new().with("spot", n);
        let mut v: ClusterView<u32> = ClusterView::new(100);
        v.remember(1, spot(2.0));
        assert!(v.lost_could_meet(&spot(1.0)));
        assert!(matches!(v.place(&spot(1.0), None, Need::Elsewhere), Placement::Infeasible));
        assert_eq!(v.alive().count(), 0);
        v.join(1, spot(2.0), 0);
        v.remember(1, spot(9.0));
        assert!(!v.lost_could_meet(&spot(1.0)));
        assert_eq!(v.place(&spot(1.0), None, Need::Elsewhere), Placement::Node(1));
        v.leave(&1);
        v.remember(2, spot(1.0));
        assert_eq!(v.forget_dead(1), vec![1]);
    }

    #[test]
    fn a_heartbeat_drops_exactly_the_charges_it_acknowledges_in_any_order() {
        let mut v: ClusterView<&str> = ClusterView::new(1000);
        v.join("w", cpus(20_000.0), 0);
        for _ in 0..10_000 {
            assert_eq!(v.place(&cpus(1.0), None, Need::Elsewhere), Placement::Node("w"));
        }
        assert_eq!(v.last_placement(&"w"), 10_000);
        // Every even placement arrived, listed backwards; the node reports
        // all of its CPUs free (the arrived ones already finished).
        let arrived: Vec<u64> = (1..=10_000).rev().filter(|n| n % 2 == 0).collect();
        v.heartbeat(&"w", cpus(20_000.0), &arrived, 1);
        // The 5,000 odd ones are still on their way: still charged.
        assert_eq!(v.free().get(CPU), 15_000.0);
        v.heartbeat(&"w", cpus(20_000.0), &[9_999, 1], 2);
        assert_eq!(v.free().get(CPU), 15_002.0);
    }

    #[test]
    fn a_dead_node_that_met_a_demand_is_remembered() {
        let spot = |n: f64| Resources::new().with("spot", n);
        let mut v: ClusterView<u32> = ClusterView::new(100);
        v.join(1, spot(2.0), 0);
        assert!(!v.lost_could_meet(&spot(1.0)));
        v.leave(&1);
        assert!(v.lost_could_meet(&spot(1.0)) && !v.lost_could_meet(&spot(3.0)));
        assert!(matches!(v.place(&spot(1.0), None, Need::Elsewhere), Placement::Infeasible));
        v.forget_dead(0);
        assert!(!v.lost_could_meet(&spot(1.0)));
    }

    fn cpus(n: f64) -> Resources {
        Resources::new().with(CPU, n)
    }

    #[test]
    fn places_by_resources_and_spreads() {
        let mut v = ClusterView::new(1000);
        v.join("head", cpus(2.0), 0);
        v.join("gpu", cpus(2.0).with("GPU", 1.0), 0);
        let gpu = cpus(1.0).with("GPU", 1.0);
        assert_eq!(v.place(&gpu, Some(&"head"), Need::Elsewhere), Placement::Node("gpu"));
        // The GPU node now has 1 CPU free, the head 2: spread to the head.
        assert_eq!(v.place(&cpus(1.0), None, Need::Spill), Placement::Node("head"));
        assert_eq!(v.place(&cpus(1.0).with("TPU", 1.0), None, Need::Elsewhere), Placement::Infeasible);
        // Spilling with no other node that could take it: stay.
        assert_eq!(v.place(&cpus(2.0).with("GPU", 1.0), Some(&"gpu"), Need::Spill), Placement::Busy);
        // Spilling from the head: the GPU node has 1 CPU left.
        assert_eq!(v.place(&cpus(1.0), Some(&"head"), Need::Spill), Placement::Node("gpu"));
        assert_eq!(v.place(&cpus(1.0), Some(&"head"), Need::Spill), Placement::Busy);
        // Must leave: queued on a feasible node even though it is full.
        assert_eq!(v.place(&gpu, Some(&"head"), Need::Elsewhere), Placement::Node("gpu"));
    }

    #[test]
    fn fractional_demands_fill_broken_cpus_before_breaking_whole_ones() {
        let mut v = ClusterView::new(1000);
        for id in ["head", "b", "c"] {
            v.join(id, cpus(1.0), 0);
        }
        let half = cpus(0.5);
        // Three half-CPU actors leaving a busy head: two share one worker,
        // so the other still has a whole CPU for the 1-CPU tasks.
        assert_eq!(v.place(&half, Some(&"head"), Need::Spill), Placement::Node("b"));
        assert_eq!(v.place(&half, Some(&"head"), Need::Spill), Placement::Node("b"));
        assert_eq!(v.place(&half, Some(&"head"), Need::Spill), Placement::Node("c"));
        assert_eq!(v.place(&cpus(0.25), Some(&"head"), Need::Spill), Placement::Node("c"));
        // 0.25 left on c: a quarter goes there, a half breaks nothing new
        // only where it fits (nowhere but the head now).
        assert_eq!(v.place(&cpus(0.25), None, Need::Spill), Placement::Node("c"));
        assert_eq!(v.place(&half, None, Need::Spill), Placement::Node("head"));
        // Whole-CPU demands keep spreading by free share.
        let mut w = ClusterView::new(1000);
        for id in ["a", "b"] {
            w.join(id, cpus(2.0), 0);
        }
        assert_eq!(w.place(&cpus(1.5), None, Need::Spill), Placement::Node("a"));
        assert_eq!(w.place(&cpus(1.0), None, Need::Spill), Placement::Node("b"));
        // a has 0.5 over a whole 0: a half goes there, not to b's whole one.
        assert_eq!(w.place(&half, None, Need::Spill), Placement::Node("a"));
    }

    #[test]
    fn node_affinity_pins_hard_and_bends_soft() {
        let view3 = || {
            let mut v = ClusterView::new(1000);
            for id in ["a", "b", "c"] {
                v.join(id, cpus(2.0), 0);
            }
            v
        };
        let mut v = view3();
        let one = cpus(1.0);
        // Hard: the named node, room or not; the asking node keeps its own.
        assert_eq!(v.place_on(&one, Some(&"a"), &"b", false), Placement::Node("b"));
        assert_eq!(v.place_on(&one, Some(&"a"), &"b", false), Placement::Node("b"));
        assert_eq!(v.place_on(&one, Some(&"a"), &"b", false), Placement::Node("b"));
        assert_eq!(v.place_on(&one, Some(&"b"), &"b", false), Placement::Busy);
        // Hard, on a node that does not exist, is dead or is too small.
        assert_eq!(v.place_on(&one, Some(&"a"), &"z", false), Placement::Infeasible);
        assert_eq!(v.place_on(&cpus(3.0), Some(&"a"), &"c", false), Placement::Infeasible);
        v.leave(&"c");
        assert_eq!(v.place_on(&one, Some(&"a"), &"c", false), Placement::Infeasible);
        // Soft: "b" is full now (3 of its 2 CPUs charged), so the demand
        // spills as if it had no affinity — to a node with room, or stays.
        let mut w = view3();
        assert_eq!(w.place_on(&one, Some(&"a"), &"b", true), Placement::Node("b"));
        assert_eq!(w.place_on(&one, Some(&"a"), &"b", true), Placement::Node("b"));
        assert_eq!(w.place_on(&one, Some(&"a"), &"b", true), Placement::Node("c"));
        assert_eq!(w.place_on(&one, Some(&"a"), &"z", true), Placement::Node("c"));
        assert_eq!(w.place_on(&one, Some(&"a"), &"z", true), Placement::Busy);
    }

    #[test]
    fn spread_takes_the_nodes_with_room_in_turn() {
        let mut v = ClusterView::new(1000);
        v.join("a", cpus(2.0), 0);
        v.join("b", cpus(2.0), 0);
        v.join("c", cpus(1.0).with("GPU", 1.0), 0);
        // In join order from the start; the asking node's turn is Busy
        // (it runs where it is), and is not charged.
        let turns: Vec<_> = (0..4).map(|_| v.place(&cpus(0.0), Some(&"b"), Need::Spread)).collect();
        assert_eq!(turns, [Placement::Node("a"), Placement::Busy, Placement::Node("c"), Placement::Node("a")]);
        // Nodes without room are skipped: c has 1 CPU (the charges of 0 CPU
        // took nothing), a has 2 — then one more than fits on a and c.
        let one = cpus(1.0);
        let turns: Vec<_> = (0..4).map(|_| v.place(&one, None, Need::Spread)).collect();
        assert_eq!(turns, [Placement::Node("b"), Placement::Node("c"), Placement::Node("a"), Placement::Node("b")]);
        // a has 1 CPU left, b and c none.
        assert_eq!(v.place(&one, Some(&"c"), Need::Spread), Placement::Node("a"));
        // No room anywhere: queued where it is when it could run there…
        assert_eq!(v.place(&one, Some(&"c"), Need::Spread), Placement::Busy);
        // …else on the next node that could ever run it.
        let gpu = cpus(1.0).with("GPU", 1.0);
        assert_eq!(v.place(&gpu, Some(&"a"), Need::Spread), Placement::Node("c"));
        assert_eq!(v.place(&cpus(3.0), Some(&"a"), Need::Spread), Placement::Infeasible);
        // A dead node is never chosen.
        v.leave(&"a");
        v.heartbeat(&"b", cpus(2.0), &[1, 2, 3], 1);
        v.heartbeat(&"c", cpus(1.0).with("GPU", 1.0), &[1, 2, 3, 4, 5], 1);
        let turns: Vec<_> = (0..3).map(|_| v.place(&cpus(0.5), None, Need::Spread)).collect();
        assert_eq!(turns, [Placement::Node("b"), Placement::Node("c"), Placement::Node("b")]);
    }

    /// Random clusters, with spread demands submitted from random nodes:
    /// while every node keeps room, each live node gets its turn — after
    /// n demands on n nodes, every node got one (the asking node's own turn
    /// is its Busy) — and no spread placement goes to a node without room
    /// while another has it.
    #[test]
    fn spread_visits_every_node_once_per_round() {
        let seed = crate::sim::seed(0x5b);
        for round in 0..200u64 {
            let seed = seed.wrapping_add(round);
            let mut rng = Rng::new(seed);
            let mut v: ClusterView<u32> = ClusterView::new(1000);
            let nodes = 1 + rng.below(12) as u32;
            for n in 0..nodes {
                v.join(n, cpus(1000.0), 0);
            }
            for _ in 0..1 + rng.below(4) {
                let mut got = BTreeMap::new();
                for _ in 0..nodes {
                    let from = rng.below(nodes as u64) as u32;
                    let to = match v.place(&cpus(1.0), Some(&from), Need::Spread) {
                        Placement::Node(n) => n,
                        Placement::Busy => from,
                        Placement::Infeasible => panic!("WRAY_SIM_SEED={seed}: infeasible"),
                    };
                    *got.entry(to).or_insert(0) += 1;
                }
                assert!(got.len() == nodes as usize && got.values().all(|c| *c == 1), "WRAY_SIM_SEED={seed}: {got:?}");
            }
            // Fill all but one node: every placement goes to it.
            let open = rng.below(nodes as u64) as u32;
            for n in (0..nodes).filter(|n| *n != open) {
                v.heartbeat(&n, cpus(0.5), &[], 1);
            }
            for _ in 0..5 {
                assert_eq!(v.place(&cpus(1.0), None, Need::Spread), Placement::Node(open), "WRAY_SIM_SEED={seed}");
            }
        }
    }

    #[test]
    fn placement_groups_follow_their_strategy() {
        let mut v = ClusterView::new(1000);
        v.join("a", cpus(4.0), 0);
        v.join("b", cpus(2.0), 0);
        v.join("c", cpus(2.0), 0);
        let two = [cpus(1.0), cpus(1.0)];
        assert_eq!(v.place_group(&two, Strategy::StrictPack), Ok(vec!["a", "a"]));
        // a has half its CPUs free now, b and c all: SPREAD uses new nodes
        // first, the freest first.
        assert_eq!(v.place_group(&[cpus(1.0), cpus(1.0), cpus(1.0)], Strategy::Spread), Ok(vec!["b", "c", "a"]));
        assert!(v.place_group(&vec![cpus(1.0); 4], Strategy::StrictSpread).is_err());
        // 1 free on each: PACK cannot fit 2 on one node, spills over.
        assert_eq!(v.place_group(&two, Strategy::Pack), Ok(vec!["b", "c"]));
        assert!(v.place_group(&two, Strategy::StrictPack).is_err());
        // A failed group charges nothing: a still has its CPU.
        assert_eq!(v.place_group(&[cpus(1.0)], Strategy::StrictSpread), Ok(vec!["a"]));
        assert!(v.place_group(&[cpus(1.0)], Strategy::Pack).is_err());
        // A bundle's offer makes its renamed resources placeable.
        let offer = cpus(1.0).bundle_offer(7, 0);
        v.adjust(&"c", &offer, &Resources::new());
        assert_eq!(v.place(&cpus(1.0).in_bundle(7, 0), None, Need::Elsewhere), Placement::Node("c"));
        v.adjust(&"c", &Resources::new(), &offer);
        assert_eq!(v.place(&cpus(1.0).in_bundle(7, 0), None, Need::Elsewhere), Placement::Infeasible);
    }

    #[test]
    fn silent_nodes_die_and_get_nothing() {
        let mut v = ClusterView::new(100);
        v.join(1, cpus(1.0), 0);
        v.join(2, cpus(1.0), 0);
        v.heartbeat(&1, cpus(1.0), &[], 90);
        assert_eq!(v.expire(150), vec![2]);
        assert!(!v.is_alive(&2));
        v.heartbeat(&2, cpus(1.0), &[], 160); // too late: must join again
        assert!(!v.is_alive(&2));
        assert_eq!(v.place(&cpus(1.0), None, Need::Spill), Placement::Node(1));
        assert_eq!(v.total(), cpus(1.0));
        v.forget_dead(0);
        assert_eq!(v.alive().count(), 1);
        // The observer stalled for longer than the timeout: no verdict.
        v.join(3, cpus(1.0), 160);
        v.pause(1000);
        assert!(v.expire(1050).is_empty());
        assert_eq!(v.expire(1101), vec![1, 3]);
    }

    /// A seeded simulation of the head's view driving a cluster over an
    /// in-memory network with delays: nodes run tasks, heartbeat, and die;
    /// the submitter retries tasks whose node died. Checks that nothing is
    /// placed on a node known dead, nothing is placed where it can never
    /// run, a node's real capacity bounds what it runs, deaths are detected
    /// within the timeout plus one heartbeat period, and every task finishes
    /// exactly once.
    #[test]
    fn simulation_places_every_task_exactly_once_despite_deaths() {
        let seed = crate::sim::seed(0xc1);
        for round in 0..200u64 {
            let seed = seed.wrapping_add(round);
            if let Err(e) = std::panic::catch_unwind(|| simulate(seed)) {
                eprintln!("cluster simulation failed with WRAY_SIM_SEED={seed}");
                std::panic::resume_unwind(e);
            }
        }
    }

    use crate::sim::Rng;

    /// The placement rule written as a plain pass over every node (what
    /// `place` did before it kept an index): the reference the indexed
    /// `place` must agree with.
    fn reference_choice(v: &ClusterView<u32>, demand: &Resources, from: Option<&u32>, need: Need) -> Placement<u32> {
        let candidates = || v.members.iter().filter(|(id, m)| m.alive && Some(*id) != from && m.total.contains(demand));
        let better = |a: &Member, b: &Member| {
            let (sa, sb) = (a.cpu_share(), b.cpu_share());
            sa > sb || (sa == sb && a.order < b.order)
        };
        let mut best: Option<(&u32, &Member)> = None;
        // A fractional CPU demand: first among the nodes it breaks no whole
        // CPU on, then among all with room.
        let fraction = demand.fraction(CPU);
        for whole_cpus_kept in [true, false] {
            if best.is_some() || (whole_cpus_kept && fraction == 0.0) {
                continue;
            }
            for (id, m) in candidates().filter(|(_, m)| m.free.contains(demand)) {
                if whole_cpus_kept && m.free.fraction(CPU) < fraction {
                    continue;
                }
                if best.is_none_or(|(_, b)| better(m, b)) {
                    best = Some((id, m));
                }
            }
        }
        if best.is_none() {
            if need == Need::Spill {
                return Placement::Busy;
            }
            for (id, m) in candidates() {
                if best.is_none_or(|(_, b)| better(m, b)) {
                    best = Some((id, m));
                }
            }
        }
        best.map_or(Placement::Infeasible, |(id, _)| Placement::Node(*id))
    }

    /// Random joins, leaves, heartbeats, expiries, bundle offers, placements
    /// and give-backs: every placement the index makes is the one a pass
    /// over all nodes would make, and the indexes hold exactly the live
    /// nodes.
    #[test]
    fn indexed_placement_matches_a_pass_over_every_node() {
        let seed = crate::sim::seed(0x1d);
        for round in 0..300u64 {
            let seed = seed.wrapping_add(round);
            let mut rng = Rng::new(seed);
            let mut v: ClusterView<u32> = ClusterView::new(50);
            let mut placed: Vec<(u32, Resources)> = Vec::new();
            let mut now = 0;
            for _ in 0..400 {
                now += rng.below(20);
                let node = rng.below(12) as u32;
                let mut d = cpus([0.0, 0.5, 1.0, 2.0][rng.below(4) as usize]);
                if rng.below(4) == 0 {
                    d.set("GPU", 1.0);
                }
                match rng.below(10) {
                    0 => {
                        let mut total = cpus([1.0, 2.0, 4.0, 8.0][rng.below(4) as usize]);
                        if rng.below(3) == 0 {
                            total.set("GPU", 1.0 + rng.below(2) as f64);
                        }
                        v.join(node, total, now);
                    }
                    1 => v.leave(&node),
                    2 => {
                        let free = cpus(rng.below(5) as f64);
                        v.heartbeat(&node, free, &[rng.below(200)], now);
                    }
                    3 => {
                        v.expire(now);
                    }
                    4 => v.adjust(&node, &cpus(1.0).bundle_offer(1, 0), &Resources::new()),
                    5 => {
                        if let Some((n, d)) =
                            (!placed.is_empty()).then(|| placed.swap_remove(rng.below(placed.len() as u64) as usize))
                        {
                            v.unplace(&n, &d);
                        }
                    }
                    _ => {
                        let from = (rng.below(2) == 0).then_some(node);
                        let need = if rng.below(2) == 0 { Need::Spill } else { Need::Elsewhere };
                        let expected = reference_choice(&v, &d, from.as_ref(), need);
                        let got = v.place(&d, from.as_ref(), need);
                        assert_eq!(got, expected, "WRAY_SIM_SEED={seed}: placing {d}");
                        if let Placement::Node(n) = got {
                            placed.push((n, d));
                        }
                    }
                }
                let live: BTreeSet<u32> = v.alive().copied().collect();
                let indexed: BTreeSet<u32> = v.by_share.iter().map(|(.., id)| *id).collect();
                let by_cpu: BTreeSet<u32> = v.by_free_cpu.iter().map(|(.., id)| *id).collect();
                assert!(live == indexed && live == by_cpu, "WRAY_SIM_SEED={seed}: indexes out of step");
                assert_eq!(v.by_share.len(), live.len(), "WRAY_SIM_SEED={seed}: a node indexed twice");
            }
        }
    }

    struct SimNode {
        total: Resources,
        running: Vec<(u64, Resources, u64)>, // (task, demand, finishes at)
        queued: VecDeque<(u64, Resources)>,
        alive: bool,
        died_at: Option<u64>,
        /// Placement numbers received since the last heartbeat.
        arrived: Vec<u64>,
    }

    impl SimNode {
        fn free(&self) -> Resources {
            let mut f = self.total.clone();
            for (_, d, _) in &self.running {
                f.subtract(d);
            }
            f
        }
    }

    const TIMEOUT: u64 = 500;
    const HEARTBEAT: u64 = 100;

    fn simulate(seed: u64) {
        let mut rng = Rng::new(seed);
        let mut view = ClusterView::new(TIMEOUT);
        let n = 2 + rng.below(4) as usize;
        let mut nodes: Vec<SimNode> = (0..n)
            .map(|i| {
                // Node 0 always has 2 CPUs and never dies, so every CPU-only
                // task can finish; others may have a GPU.
                let mut total = cpus(if i == 0 { 2.0 } else { 1.0 + rng.below(4) as f64 });
                if i > 0 && rng.below(2) == 0 {
                    total.set("GPU", 1.0);
                }
                SimNode {
                    total,
                    running: Vec::new(),
                    queued: VecDeque::new(),
                    alive: true,
                    died_at: None,
                    arrived: Vec::new(),
                }
            })
            .collect();
        for (i, node) in nodes.iter().enumerate() {
            view.join(i, node.total.clone(), 0);
        }
        // The network: heartbeats in flight, (arrival time, node, free,
        // placements arrived since the last one).
        let mut network: Vec<(u64, usize, Resources, Vec<u64>)> = Vec::new();
        let tasks = 50 + rng.below(100);
        let mut waiting: VecDeque<(u64, Resources)> = VecDeque::new();
        let mut demands = Vec::new();
        for t in 0..tasks {
            let mut d = cpus([0.5, 1.0, 2.0][rng.below(3) as usize]);
            if rng.below(5) == 0 {
                d.set("GPU", 1.0);
            }
            demands.push(d.clone());
            waiting.push_back((t, d));
        }
        let mut finished = vec![0u32; tasks as usize];
        let mut infeasible = vec![false; tasks as usize];
        let mut now = 0u64;
        while now < 1_000_000 {
            now += 10;
            // Deaths (never node 0).
            if n > 1 && rng.below(400) == 0 {
                let i = 1 + rng.below(n as u64 - 1) as usize;
                if nodes[i].alive {
                    nodes[i].alive = false;
                    nodes[i].died_at = Some(now);
                    // Its tasks are lost: the submitter retries them.
                    let lost: Vec<_> = nodes[i].running.drain(..).map(|(t, d, _)| (t, d)).collect();
                    waiting.extend(lost);
                    waiting.extend(nodes[i].queued.drain(..));
                }
            }
            // Nodes finish tasks, start queued ones, heartbeat.
            for (i, node) in nodes.iter_mut().enumerate().filter(|(_, n)| n.alive) {
                node.running.retain(|(t, _, at)| {
                    if *at <= now {
                        finished[*t as usize] += 1;
                    }
                    *at > now
                });
                while let Some((t, d)) = node.queued.front().cloned() {
                    if !node.free().contains(&d) {
                        break;
                    }
                    node.queued.pop_front();
                    let free_cpu = node.free().get(CPU);
                    assert!(free_cpu >= d.get(CPU), "seed {seed}: node {i} overcommitted");
                    node.running.push((t, d, now + 10 + rng.below(300)));
                }
                if now.is_multiple_of(HEARTBEAT) {
                    let arrived = std::mem::take(&mut node.arrived);
                    network.push((now + rng.below(50), i, node.free(), arrived));
                }
            }
            // Deliver heartbeats that arrived.
            network.sort_by_key(|(at, ..)| *at);
            while network.first().is_some_and(|(at, ..)| *at <= now) {
                let (_, i, free, arrived) = network.remove(0);
                view.heartbeat(&i, free, &arrived, now);
            }
            for dead in view.expire(now) {
                let died = nodes[dead].died_at.expect("only dead nodes expire");
                assert!(now - died <= TIMEOUT + HEARTBEAT + 50 + 10, "seed {seed}: death noticed late");
            }
            // Place what waits.
            for _ in 0..waiting.len() {
                let (t, d) = waiting.pop_front().expect("counted");
                match view.place(&d, None, Need::Elsewhere) {
                    Placement::Node(i) => {
                        assert!(nodes[i].total.contains(&d), "seed {seed}: placed where it can never run");
                        if nodes[i].alive {
                            let number = view.last_placement(&i);
                            nodes[i].arrived.push(number);
                            nodes[i].queued.push_back((t, d));
                        } else {
                            // Not yet noticed dead: the send fails, retry later.
                            assert!(nodes[i].died_at.is_some_and(|at| now - at <= TIMEOUT + HEARTBEAT + 60));
                            view.unplace(&i, &d);
                            waiting.push_back((t, d));
                        }
                    }
                    Placement::Infeasible => infeasible[t as usize] = true,
                    Placement::Busy => unreachable!("Need::Elsewhere never answers Busy"),
                }
            }
            let done = (0..tasks as usize).all(|t| finished[t] > 0 || infeasible[t]);
            if done && nodes.iter().all(|n| n.running.is_empty() && n.queued.is_empty()) {
                break;
            }
        }
        for t in 0..tasks as usize {
            if infeasible[t] {
                // Only when no live node could ever run it.
                let d = &demands[t];
                assert!(nodes.iter().all(|n| !n.alive || !n.total.contains(d)), "seed {seed}: task {t}");
            } else {
                assert_eq!(finished[t], 1, "seed {seed}: task {t} finished {} times", finished[t]);
            }
        }
    }

    /// Long-lived placements (actors) in bursts, each reaching its node
    /// after a random delay and possibly after a later one, while
    /// heartbeats measured before they arrived keep coming in, and one in
    /// twenty lost on the way without a word (its sender cancelled; it is
    /// placed again later): as many actors as the cluster has room for all
    /// end up running, none queued on an over-filled node while another has
    /// room, and no lost placement keeps a node looking fuller than it is.
    #[test]
    fn long_lived_placements_fill_the_cluster_without_overfilling_a_node() {
        let seed = crate::sim::seed(0xac);
        let slot = |n: f64| Resources::new().with("slot", n);
        for round in 0..200u64 {
            let seed = seed.wrapping_add(round);
            let mut rng = Rng::new(seed);
            let n = 2 + rng.below(6) as usize;
            let capacity: Vec<u64> = (0..n).map(|_| 1 + rng.below(20)).collect();
            let mut view = ClusterView::new(u64::MAX);
            for (i, c) in capacity.iter().enumerate() {
                view.join(i, slot(*c as f64), 0);
            }
            // Per node: actors running (each holds one slot), placements
            // received; placements and heartbeats in flight.
            let mut running = vec![0u64; n];
            let mut queued = vec![0u64; n];
            let mut arrived: Vec<Vec<u64>> = vec![Vec::new(); n];
            let mut placements: Vec<(u64, usize, u64)> = Vec::new();
            let mut beats: Vec<(u64, usize, Resources, Vec<u64>)> = Vec::new();
            let mut to_place: u64 = capacity.iter().sum();
            let mut now = 0;
            let mut lost = Vec::new();
            while to_place > 0 || !placements.is_empty() || !lost.is_empty() || now < 2_000 {
                now += 1;
                // A burst of placements now and then.
                if to_place > 0 && rng.below(10) == 0 {
                    for _ in 0..(1 + rng.below(to_place.min(30))) {
                        match view.place(&slot(1.0), None, Need::Elsewhere) {
                            Placement::Node(_) if rng.below(20) == 0 => lost.push(now),
                            Placement::Node(i) => placements.push((now + rng.below(150), i, view.last_placement(&i))),
                            other => panic!("WRAY_SIM_SEED={seed}: {other:?} with room left"),
                        }
                        to_place -= 1;
                    }
                }
                // A lost actor is created again once its charge is gone.
                lost.retain(|at| {
                    if now < at + UNACKED_TTL_MS + 1_000 {
                        return true;
                    }
                    to_place += 1;
                    false
                });
                placements.retain(|(at, i, number)| {
                    if *at > now {
                        return true;
                    }
                    arrived[*i].push(*number);
                    if running[*i] < capacity[*i] {
                        running[*i] += 1
                    } else {
                        queued[*i] += 1
                    }
                    false
                });
                for i in 0..n {
                    if (now + i as u64 * 37).is_multiple_of(100) {
                        let free = slot((capacity[i] - running[i]) as f64);
                        beats.push((now + rng.below(50), i, free, std::mem::take(&mut arrived[i])));
                    }
                }
                beats.retain(|(at, i, free, a)| {
                    if *at > now {
                        return true;
                    }
                    view.heartbeat(i, free.clone(), a, now);
                    false
                });
            }
            assert_eq!(queued, vec![0; n], "WRAY_SIM_SEED={seed}: actors queued on a full node (room: {capacity:?})");
            assert_eq!(running, capacity, "WRAY_SIM_SEED={seed}");
        }
    }
}
