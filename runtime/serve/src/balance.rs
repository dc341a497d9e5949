//! Which replica a request goes to, and what waits when all are busy.
//!
//! A pure state machine (no clocks, no I/O), one per deployment: replicas
//! with their ongoing request counts, a cap per replica
//! (`max_ongoing_requests`) and a FIFO queue of tickets
//! (`max_queued_requests`) for requests that found every replica at its
//! cap. A request goes to the least loaded replica, ties broken by
//! rotation so equal replicas share the load; a replica that finishes a
//! request hands its slot straight to the oldest waiting ticket, so a
//! queued request never loses its turn to one that arrived later.

use std::collections::VecDeque;

/// A replica's key in its deployment (never reused).
pub type ReplicaKey = u64;
/// A queued request's ticket.
pub type Ticket = u64;

/// What becomes of a request that asks for a replica.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    /// Run it on this replica now.
    Run(ReplicaKey),
    /// Every replica is at its cap: wait for this ticket to be served.
    Wait(Ticket),
    /// The queue is full too (or there are no replicas and no queue):
    /// refuse it (503).
    Reject,
}

#[derive(Debug)]
struct Slot {
    key: ReplicaKey,
    ongoing: u32,
    /// Stopping: takes no new requests, finishes what it has.
    draining: bool,
}

/// One deployment's replicas and queue.
#[derive(Debug)]
pub struct Balancer {
    max_ongoing: u32,
    max_queued: u32,
    slots: Vec<Slot>,
    waiting: VecDeque<Ticket>,
    next_ticket: Ticket,
    /// Where the next tie-break starts.
    turn: usize,
}

impl Balancer {
    /// No replicas yet.
    pub fn new(max_ongoing: u32, max_queued: u32) -> Balancer {
        Balancer { max_ongoing, max_queued, slots: Vec::new(), waiting: VecDeque::new(), next_ticket: 0, turn: 0 }
    }

    /// The least loaded replica taking requests, if any is below `cap`.
    fn least_loaded(&mut self, cap: u32) -> Option<usize> {
        let n = self.slots.len();
        let mut best: Option<usize> = None;
        for k in 0..n {
            let i = (self.turn + k) % n;
            let s = &self.slots[i];
            if s.draining || s.ongoing >= cap {
                continue;
            }
            if best.is_none_or(|b| s.ongoing < self.slots[b].ongoing) {
                best = Some(i);
            }
        }
        if best.is_some() {
            self.turn = (self.turn + 1) % n.max(1);
        }
        best
    }

    /// A request asks for a replica.
    pub fn admit(&mut self) -> Admit {
        // Waiting tickets go first: a new request may not overtake them.
        if self.waiting.is_empty()
            && let Some(i) = self.least_loaded(self.max_ongoing)
        {
            self.slots[i].ongoing += 1;
            return Admit::Run(self.slots[i].key);
        }
        if self.waiting.len() < self.max_queued as usize {
            let t = self.next_ticket;
            self.next_ticket += 1;
            self.waiting.push_back(t);
            return Admit::Wait(t);
        }
        Admit::Reject
    }

    /// A call that is not an HTTP request (a handle's call from another
    /// deployment): the least loaded replica whatever its load, as the
    /// caller cannot be made to wait inside the host. `None` without
    /// replicas.
    pub fn pick_any(&mut self) -> Option<ReplicaKey> {
        let i = self.least_loaded(u32::MAX)?;
        self.slots[i].ongoing += 1;
        Some(self.slots[i].key)
    }

    /// A handle's call made on another node than the application's: the
    /// least loaded replica, taking turns among equals, its load not
    /// counted — the call is made from that node, which tells nobody here
    /// when it ends. `None` without replicas.
    pub fn pick_uncounted(&mut self) -> Option<ReplicaKey> {
        let i = self.least_loaded(u32::MAX)?;
        Some(self.slots[i].key)
    }

    /// A request on `key` finished. If a ticket waits and the replica takes
    /// requests, the slot passes to it: the caller must hand `key` to that
    /// ticket (or, if it has gone, call `finish` again).
    pub fn finish(&mut self, key: ReplicaKey) -> Option<(Ticket, ReplicaKey)> {
        let i = self.slots.iter().position(|s| s.key == key)?;
        let s = &mut self.slots[i];
        s.ongoing = s.ongoing.saturating_sub(1);
        if s.draining || s.ongoing >= self.max_ongoing {
            return None;
        }
        let t = self.waiting.pop_front()?;
        s.ongoing += 1;
        Some((t, key))
    }

    /// A waiting request gave up (timeout, client gone).
    pub fn cancel(&mut self, ticket: Ticket) {
        self.waiting.retain(|t| *t != ticket);
    }

    /// A replica is ready. Returns the tickets it takes at once.
    pub fn add(&mut self, key: ReplicaKey) -> Vec<(Ticket, ReplicaKey)> {
        let mut slot = Slot { key, ongoing: 0, draining: false };
        let mut served = Vec::new();
        while slot.ongoing < self.max_ongoing
            && let Some(t) = self.waiting.pop_front()
        {
            slot.ongoing += 1;
            served.push((t, key));
        }
        self.slots.push(slot);
        served
    }

    /// A replica stops taking requests; those it has finish. Returns
    /// whether it was known.
    pub fn drain(&mut self, key: ReplicaKey) -> bool {
        match self.slots.iter_mut().find(|s| s.key == key) {
            Some(s) => {
                s.draining = true;
                true
            }
            None => false,
        }
    }

    /// Forgets a replica (stopped, or died).
    pub fn remove(&mut self, key: ReplicaKey) {
        self.slots.retain(|s| s.key != key);
    }

    /// Requests on `key` now (none if unknown).
    pub fn ongoing(&self, key: ReplicaKey) -> u32 {
        self.slots.iter().find(|s| s.key == key).map_or(0, |s| s.ongoing)
    }

    /// Requests running on every replica plus those queued: the load the
    /// autoscaler sees.
    pub fn load(&self) -> u64 {
        self.slots.iter().map(|s| u64::from(s.ongoing)).sum::<u64>() + self.waiting.len() as u64
    }

    /// Tickets waiting.
    pub fn queued(&self) -> usize {
        self.waiting.len()
    }

    /// Replicas taking requests.
    pub fn active(&self) -> usize {
        self.slots.iter().filter(|s| !s.draining).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn requests_spread_then_queue_then_are_refused() {
        let mut b = Balancer::new(2, 1);
        assert!(b.add(10).is_empty());
        assert!(b.add(11).is_empty());
        let mut on = [0, 0];
        for _ in 0..4 {
            match b.admit() {
                Admit::Run(k) => on[(k - 10) as usize] += 1,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(on, [2, 2], "least loaded first");
        assert_eq!(b.admit(), Admit::Wait(0));
        assert_eq!(b.admit(), Admit::Reject, "queue of 1 is full");
        // A finished request hands its slot to the waiting ticket.
        assert_eq!(b.finish(11), Some((0, 11)));
        assert_eq!(b.ongoing(11), 2);
        assert_eq!(b.finish(11), None);
        assert_eq!(b.load(), 3);
    }

    #[test]
    fn a_new_replica_takes_waiting_tickets_and_a_draining_one_takes_none() {
        let mut b = Balancer::new(1, 10);
        b.add(1);
        assert_eq!(b.admit(), Admit::Run(1));
        assert_eq!(b.admit(), Admit::Wait(0));
        assert_eq!(b.admit(), Admit::Wait(1));
        b.cancel(0);
        assert_eq!(b.add(2), vec![(1, 2)], "the cancelled ticket is skipped");
        assert!(b.drain(1));
        assert_eq!(b.finish(1), None, "a draining replica takes no new work");
        assert_eq!(b.admit(), Admit::Wait(2));
        assert_eq!(b.pick_any(), Some(2), "handle calls ignore the cap");
        assert_eq!(b.active(), 1);
    }

    /// Seeded simulation: random admits, finishes, cancels, adds and
    /// drains. Invariants: no replica exceeds its cap through `admit` /
    /// `finish`; tickets are served in FIFO order; the queue never exceeds
    /// its bound; no request is served twice.
    #[test]
    fn simulated_traffic_keeps_caps_fifo_and_bounds() {
        let seed = std::env::var("WRAY_SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(7u64);
        for run in 0..200 {
            let mut rng = rand::rngs::SmallRng::seed_from_u64(seed.wrapping_add(run));
            let (cap, queue) = (rng.random_range(1..4), rng.random_range(0..6));
            let mut b = Balancer::new(cap, queue);
            let mut next_key = 0;
            let mut running: Vec<ReplicaKey> = Vec::new();
            let mut waiting: Vec<Ticket> = Vec::new();
            let mut served_order: Vec<Ticket> = Vec::new();
            for _ in 0..300 {
                match rng.random_range(0..10) {
                    0 => {
                        for (t, k) in b.add(next_key) {
                            served_order.push(t);
                            waiting.retain(|w| *w != t);
                            running.push(k);
                        }
                        next_key += 1;
                    }
                    1 if !waiting.is_empty() => {
                        let t = waiting.remove(rng.random_range(0..waiting.len()));
                        b.cancel(t);
                    }
                    2 if next_key > 0 => {
                        b.drain(rng.random_range(0..next_key));
                    }
                    3..=5 if !running.is_empty() => {
                        let k = running.remove(rng.random_range(0..running.len()));
                        if let Some((t, k2)) = b.finish(k) {
                            assert_eq!(k, k2);
                            served_order.push(t);
                            waiting.retain(|w| *w != t);
                            running.push(k2);
                        }
                    }
                    _ => match b.admit() {
                        Admit::Run(k) => running.push(k),
                        Admit::Wait(t) => waiting.push(t),
                        Admit::Reject => assert!(b.queued() >= queue as usize, "seed {seed} run {run}"),
                    },
                }
                assert!(b.queued() <= queue as usize, "seed {seed} run {run}");
                for k in 0..next_key {
                    assert!(b.ongoing(k) <= cap, "seed {seed} run {run}: replica {k} over its cap");
                }
            }
            let mut sorted = served_order.clone();
            sorted.sort_unstable();
            assert_eq!(served_order, sorted, "seed {seed} run {run}: tickets served out of order");
            sorted.dedup();
            assert_eq!(sorted.len(), served_order.len(), "seed {seed} run {run}: a ticket served twice");
        }
    }
}
