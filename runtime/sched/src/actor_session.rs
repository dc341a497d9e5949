//! The owner's side of an actor hosted on another node, as a pure state
//! machine: which calls are in flight, which snapshot goes with which
//! result, and what becomes of each call when the hosting node dies.
//!
//! The job's node owns every actor of the job. An actor placed on another
//! node has a *session* there: one ordered stream carrying its calls in
//! submission order and bringing back, for an actor taking snapshots, each
//! snapshot's frames right before the result of the call it follows. The
//! rules kept here:
//!
//! * **A snapshot takes effect only with its call's result.** Frames are
//!   held until the result they precede arrives ([`ActorSession::result`]
//!   hands them over to be applied first). If the node dies in between,
//!   the frames are dropped with it: the owner's image then holds exactly
//!   the calls whose results it has, so a call lost with the node is
//!   neither in the restored state nor answered, and running it again
//!   applies it once.
//! * **Calls in flight when the node is lost run again, in order**, ahead
//!   of calls submitted later, while each has `max_task_retries` left; the
//!   others fail ([`Ending`]). A session that ended normally (the actor
//!   died for good, or every handle is gone) answers or fails every call.
//! * **One restart budget** ([`RestartBudget`], Ray's `max_restarts`):
//!   crash restarts reported by a hosting node and re-creations after a
//!   node loss draw on the same count.
//!
//! The async code in `wray-node` feeds this machine what the stream brings
//! and does what it answers; the simulation below drives it against a
//! model of a hosting node that dies at random points.

use std::collections::VecDeque;

/// The most snapshot frames one snapshot may take; more is a protocol
/// error (the peer is broken or hostile).
pub type MaxFrames = usize;

/// Why a session's input was refused: the peer broke the protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionError {
    /// A snapshot arrived in more frames than it can take.
    TooManyFrames(usize),
    /// A result for a call that is not in flight.
    UnknownCall,
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionError::TooManyFrames(n) => write!(f, "a snapshot in more than {n} parts"),
            SessionError::UnknownCall => f.write_str("a result for a call that is not in flight"),
        }
    }
}

/// A call in flight: what identifies it, and how often it ran again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InFlight<C> {
    /// The caller's handle on the call (its output object, in the node).
    pub call: C,
    /// Times it was run again after losing its node.
    pub retries: u32,
}

/// What becomes of the calls still in flight when a session ends.
#[derive(Debug, PartialEq, Eq)]
pub struct Ending<C> {
    /// To run again on the re-created actor, oldest first, ahead of every
    /// call not yet sent (each with its retry count raised).
    pub again: Vec<InFlight<C>>,
    /// To fail: the actor died with them.
    pub failed: Vec<C>,
}

/// The owner's view of one session of an actor on another node.
#[derive(Debug)]
pub struct ActorSession<C, F> {
    in_flight: VecDeque<InFlight<C>>,
    frames: Vec<F>,
    max_frames: MaxFrames,
    max_task_retries: u32,
    /// No more calls will be sent: the mailbox closed, or the host said
    /// the actor is gone.
    closed: bool,
}

impl<C: PartialEq, F> ActorSession<C, F> {
    /// A session whose calls may each run again `max_task_retries` times
    /// and whose snapshots take at most `max_frames` frames.
    pub fn new(max_task_retries: u32, max_frames: MaxFrames) -> Self {
        ActorSession { in_flight: VecDeque::new(), frames: Vec::new(), max_frames, max_task_retries, closed: false }
    }

    /// A call went out on the stream.
    pub fn sent(&mut self, call: C, retries: u32) {
        self.in_flight.push_back(InFlight { call, retries });
    }

    /// A snapshot frame arrived: it waits for the result it precedes.
    pub fn frame(&mut self, frame: F) -> Result<(), SessionError> {
        if self.frames.len() >= self.max_frames {
            return Err(SessionError::TooManyFrames(self.max_frames));
        }
        self.frames.push(frame);
        Ok(())
    }

    /// The result of a call began to arrive. Returns the frames of the
    /// snapshot taken after it: once the result has arrived whole, apply
    /// them, *then* release the result and report it
    /// ([`ActorSession::released`]). Until then the call stays in flight,
    /// so that a node dying halfway through the result leaves neither the
    /// snapshot applied nor the call answered.
    pub fn result(&mut self, call: &C) -> Result<Vec<F>, SessionError> {
        if !self.in_flight.iter().any(|c| c.call == *call) {
            return Err(SessionError::UnknownCall);
        }
        Ok(std::mem::take(&mut self.frames))
    }

    /// A call's result was released to its caller: the call is done.
    pub fn released(&mut self, call: &C) {
        // Results come mostly in order: the search from the front is short.
        if let Some(at) = self.in_flight.iter().position(|c| c.call == *call) {
            self.in_flight.remove(at);
        }
    }

    /// No call will be sent any more (every handle is gone, the job ended,
    /// or the host reported the actor dead): the session ends once the
    /// calls in flight are answered.
    pub fn close(&mut self) {
        self.closed = true;
    }

    /// Whether new calls may still be sent.
    pub fn is_open(&self) -> bool {
        !self.closed
    }

    /// Whether the session is over: closed, and nothing in flight.
    pub fn is_finished(&self) -> bool {
        self.closed && self.in_flight.is_empty()
    }

    /// Calls in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The session ended. With `node_lost`, calls in flight run again while
    /// they have retries left (frames without their result are dropped);
    /// otherwise, or past their retries, they fail.
    pub fn end(&mut self, node_lost: bool) -> Ending<C> {
        self.closed = true;
        self.frames.clear();
        let mut ending = Ending { again: Vec::new(), failed: Vec::new() };
        for mut c in self.in_flight.drain(..) {
            if node_lost && c.retries < self.max_task_retries {
                c.retries += 1;
                ending.again.push(c);
            } else {
                ending.failed.push(c.call);
            }
        }
        ending
    }
}

/// An actor's restarts, Ray's `max_restarts`: one count for every cause.
#[derive(Clone, Debug)]
pub struct RestartBudget {
    max: u32,
    used: u32,
}

impl RestartBudget {
    /// A budget of `max` restarts.
    pub fn new(max: u32) -> RestartBudget {
        RestartBudget { max, used: 0 }
    }

    /// Takes one restart if any is left.
    pub fn take(&mut self) -> bool {
        let ok = self.used < self.max;
        self.used += u32::from(ok);
        ok
    }

    /// A hosting node restarted the actor after a crash (it was handed
    /// [`RestartBudget::left`] and spent one of them).
    pub fn spent_elsewhere(&mut self) {
        self.used = (self.used + 1).min(self.max);
    }

    /// Restarts left: what a node newly hosting the actor may spend.
    pub fn left(&self) -> u32 {
        self.max - self.used
    }

    /// Restarts used so far.
    pub fn used(&self) -> u32 {
        self.used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_goes_with_the_result_it_precedes() {
        let mut s: ActorSession<u32, &str> = ActorSession::new(0, 4);
        s.sent(1, 0);
        s.sent(2, 0);
        s.frame("after 1").unwrap();
        assert_eq!(s.result(&1).unwrap(), vec!["after 1"]);
        s.released(&1);
        s.frame("after 2, part 1").unwrap();
        // The node dies before the result of call 2: its snapshot is dropped
        // and the call, out of retries, fails.
        let ending = s.end(true);
        assert_eq!(ending, Ending { again: vec![], failed: vec![2] });
    }

    #[test]
    fn calls_lost_with_the_node_run_again_in_order_while_retries_last() {
        let mut s: ActorSession<u32, ()> = ActorSession::new(1, 4);
        s.sent(1, 0);
        s.sent(2, 1);
        s.sent(3, 0);
        let ending = s.end(true);
        assert_eq!(ending.again, vec![InFlight { call: 1, retries: 1 }, InFlight { call: 3, retries: 1 }]);
        assert_eq!(ending.failed, vec![2]);
    }

    #[test]
    fn a_peer_breaking_the_protocol_is_refused() {
        let mut s: ActorSession<u32, ()> = ActorSession::new(0, 2);
        s.frame(()).unwrap();
        s.frame(()).unwrap();
        assert_eq!(s.frame(()), Err(SessionError::TooManyFrames(2)));
        assert_eq!(s.result(&9), Err(SessionError::UnknownCall));
    }

    #[test]
    fn one_budget_for_crashes_and_node_losses() {
        let mut b = RestartBudget::new(2);
        b.spent_elsewhere();
        assert_eq!(b.left(), 1);
        assert!(b.take());
        assert!(!b.take());
        b.spent_elsewhere();
        assert_eq!(b.left(), 0);
    }

    use crate::sim::Rng;

    /// What a hosting node sends on the session's stream.
    #[derive(Clone, Debug)]
    enum Msg {
        /// A snapshot frame: the actor's whole state after a call (the
        /// calls applied so far, in order), cut in `parts`.
        Frame { state: Vec<u32>, part: u32, parts: u32 },
        /// A call's result: the state the call saw after applying itself.
        Result { call: u32, seen: Vec<u32> },
        /// The actor crashed and was restarted there from its last
        /// snapshot (a restart spent).
        Restarted,
    }

    /// A hosting node: applies calls to its copy of the state, sends the
    /// snapshot after each call (`checkpoint_every = 1`) and then the
    /// result. A crash loses the calls since the last snapshot — there are
    /// none, with a snapshot after each — so it only costs a restart.
    ///
    /// Without snapshots the host models `max_concurrency > 1` instead:
    /// it finishes any of its first few queued calls, so results come back
    /// out of submission order.
    struct Host {
        state: Vec<u32>,
        queue: VecDeque<u32>,
        out: VecDeque<Msg>,
        restarts_left: u32,
        snapshots: bool,
    }

    impl Host {
        fn step(&mut self, rng: &mut Rng) {
            if rng.below(20) == 0 && self.restarts_left > 0 {
                self.restarts_left -= 1;
                self.out.push_back(Msg::Restarted);
            }
            if self.queue.is_empty() {
                return;
            }
            let at = if self.snapshots { 0 } else { rng.below(self.queue.len().min(3) as u64) as usize };
            let call = self.queue.remove(at).expect("in range");
            self.state.push(call);
            if self.snapshots {
                let parts = 1 + rng.below(3) as u32;
                for part in 0..parts {
                    self.out.push_back(Msg::Frame { state: self.state.clone(), part, parts });
                }
            }
            self.out.push_back(Msg::Result { call, seen: self.state.clone() });
        }
    }

    /// One actor with `calls` calls, hosted on nodes that die at random:
    /// every call is answered at most once, an answered call's effect is in
    /// the owner's image exactly once and in call order, calls lost with a
    /// node run again in order, and no more restarts are spent than the
    /// budget holds.
    fn simulate(seed: u64, snapshots: bool) {
        let mut rng = Rng::new(seed);
        let calls = 1 + rng.below(30) as u32;
        let max_task_retries = rng.below(4) as u32;
        let mut budget = RestartBudget::new(rng.below(5) as u32);
        // The owner: its mailbox (calls not yet sent, oldest first), its
        // image of the actor (from snapshots), what callers saw.
        let mut mailbox: VecDeque<InFlight<u32>> = (0..calls).map(|call| InFlight { call, retries: 0 }).collect();
        let mut image: Vec<u32> = Vec::new();
        let mut answered: Vec<(u32, Vec<u32>)> = Vec::new();
        let mut failed: Vec<u32> = Vec::new();
        let mut dead = false;
        let mut sends = vec![0u32; calls as usize];
        while !dead && !mailbox.is_empty() {
            // Calls lost with a node went back ahead of the later ones: the
            // mailbox is in submission order.
            let ids: Vec<u32> = mailbox.iter().map(|c| c.call).collect();
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "mailbox out of order: {ids:?} (seed {seed})");
            // A new session on a new node, from the owner's image (or from
            // the constructor, without snapshots).
            let start = if snapshots { image.clone() } else { Vec::new() };
            let mut host = Host {
                state: start,
                queue: VecDeque::new(),
                out: VecDeque::new(),
                restarts_left: budget.left(),
                snapshots,
            };
            let mut session: ActorSession<u32, (Vec<u32>, u32, u32)> = ActorSession::new(max_task_retries, 3);
            let mut frames_ok = true;
            let node_lost = loop {
                match rng.below(10) {
                    // The node dies: what it had not sent is gone.
                    0 => break true,
                    1..=3 if session.is_open() => match mailbox.pop_front() {
                        Some(c) => {
                            sends[c.call as usize] += 1;
                            assert!(
                                sends[c.call as usize] <= 1 + max_task_retries,
                                "call {} sent past its retries (seed {seed})",
                                c.call
                            );
                            host.queue.push_back(c.call);
                            session.sent(c.call, c.retries);
                        }
                        None => session.close(),
                    },
                    4..=5 => host.step(&mut rng),
                    _ => match host.out.pop_front() {
                        Some(Msg::Frame { state, part, parts }) => session.frame((state, part, parts)).unwrap(),
                        Some(Msg::Restarted) => budget.spent_elsewhere(),
                        Some(Msg::Result { call, seen }) => {
                            let frames = session.result(&call).expect("a result for a call in flight");
                            // The node may die while the result's bytes are
                            // on their way: nothing of it takes effect.
                            if rng.below(10) == 0 {
                                break true;
                            }
                            // The snapshot is applied before the result is released.
                            let parts: Vec<u32> = frames.iter().map(|f| f.1).collect();
                            frames_ok &= parts == (0..frames.first().map_or(0, |f| f.2)).collect::<Vec<_>>();
                            if let Some((state, ..)) = frames.into_iter().last() {
                                image = state;
                            }
                            assert!(
                                !answered.iter().any(|(c, _)| *c == call),
                                "call {call} answered twice (seed {seed})"
                            );
                            answered.push((call, seen));
                            session.released(&call);
                        }
                        None if session.is_finished() => break false,
                        None => {}
                    },
                }
            };
            assert!(frames_ok, "a snapshot was applied with frames of another (seed {seed})");
            let ending = session.end(node_lost);
            assert!(session.is_finished());
            failed.extend(ending.failed);
            for c in ending.again.into_iter().rev() {
                mailbox.push_front(c);
            }
            if node_lost && !mailbox.is_empty() && !budget.take() {
                dead = true;
            }
        }
        failed.extend(mailbox.into_iter().map(|c| c.call));
        // Every call is answered or failed, never both, never twice.
        let mut all: Vec<u32> = answered.iter().map(|(c, _)| *c).chain(failed.iter().copied()).collect();
        all.sort_unstable();
        assert_eq!(all, (0..calls).collect::<Vec<_>>(), "calls lost or doubled (seed {seed})");
        if !snapshots {
            return;
        }
        // The image holds exactly the answered calls, each once, in the
        // order they were answered; each answer saw the image up to itself.
        let order: Vec<u32> = answered.iter().map(|(c, _)| *c).collect();
        assert_eq!(image, order, "the image and the answers disagree (seed {seed})");
        for (i, (_, seen)) in answered.iter().enumerate() {
            assert_eq!(seen[..], order[..=i], "an answer saw another history (seed {seed})");
        }
        // Calls keep their submission order across retries.
        assert!(order.windows(2).all(|w| w[0] < w[1]), "calls ran out of order: {order:?} (seed {seed})");
    }

    #[test]
    fn simulation_applies_every_answered_call_exactly_once_across_node_deaths() {
        let seed = crate::sim::seed(0xac7);
        for round in 0..2_000u64 {
            let seed = seed.wrapping_mul(31).wrapping_add(round);
            if let Err(e) = std::panic::catch_unwind(|| simulate(seed, round % 2 == 0)) {
                eprintln!("actor session simulation failed with WRAY_SIM_SEED={seed}");
                std::panic::resume_unwind(e);
            }
        }
    }
}
