//! When a task runs again: Ray's retry rules as a pure state machine.
//!
//! A task's owner tries to run it — on its own node, or on another — and
//! each attempt ends in one of a few ways ([`Attempt`]). [`TaskRetries`]
//! says what follows. The rules:
//!
//! * One budget, `max_retries`, for every kind of retry: node losses and
//!   failures on a node draw on the same count, so a task never runs more
//!   than `1 + max_retries` times.
//! * The loss of the node running it is always retried (while the budget
//!   lasts), whatever `retry_exceptions` says, as in Ray: the task did not
//!   fail, its node did. Each loss waits a little longer first
//!   ([`Next::RetryElsewhere`]'s backoff), so the head can notice the dead
//!   node before the task is placed again.
//! * A failure of the system (the instance could not be created) is
//!   retried; a failure of the task's own code (an error it returned, a
//!   panic, a trap, a limit, `exit`) only with `retry_exceptions`.
//! * Nothing is retried once the task or its job is cancelled.
//! * "No node has room" ([`Attempt::Busy`]) is not a failure and costs
//!   nothing: the task waits for room at home.

/// How one attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// It ran and its result is stored (success, or a failure not retried).
    Ran,
    /// It was sent away, but no node had room.
    Busy,
    /// The node running it died, or the path to it broke.
    NodeLost,
    /// It failed on a node: `system` when the runtime could not run it at
    /// all (no instance), otherwise the task's own code failed.
    Failed {
        /// Whether the failure was the runtime's rather than the task's.
        system: bool,
    },
}

/// What the owner does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Nothing: the task is done.
    Done,
    /// Wait for room on this node (it may still move if another node
    /// reports room).
    WaitHere,
    /// Run it again, wherever there is room, after `backoff` times the
    /// owner's unit of waiting.
    RetryElsewhere {
        /// The multiple of the backoff unit to wait first (1, 2, 3, ...).
        backoff: u32,
    },
    /// Run it again on the same node, at once.
    RetryHere,
    /// Give up: store the failure.
    Fail,
}

/// The retry state of one task.
#[derive(Clone, Debug)]
pub struct TaskRetries {
    max_retries: u32,
    retry_exceptions: bool,
    used: u32,
    node_losses: u32,
}

impl TaskRetries {
    /// A task that may run again `max_retries` times; `retry_exceptions`
    /// lets failures of its own code count as retriable.
    pub fn new(max_retries: u32, retry_exceptions: bool) -> TaskRetries {
        TaskRetries { max_retries, retry_exceptions, used: 0, node_losses: 0 }
    }

    /// Retries spent so far.
    pub fn used(&self) -> u32 {
        self.used
    }

    /// What follows an attempt that ended as `attempt`; `cancelled` when
    /// the task or its job was cancelled meanwhile.
    pub fn after(&mut self, attempt: Attempt, cancelled: bool) -> Next {
        let retriable = match attempt {
            Attempt::Ran => return Next::Done,
            // Waiting is cancelled like any wait of the task's; nothing to
            // decide here.
            Attempt::Busy => return Next::WaitHere,
            Attempt::NodeLost => true,
            Attempt::Failed { system } => system || self.retry_exceptions,
        };
        if !retriable || cancelled || self.used >= self.max_retries {
            return Next::Fail;
        }
        self.used += 1;
        match attempt {
            Attempt::NodeLost => {
                self.node_losses += 1;
                Next::RetryElsewhere { backoff: self.node_losses }
            }
            _ => Next::RetryHere,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_losses_and_failures_share_one_budget() {
        let mut r = TaskRetries::new(2, true);
        assert_eq!(r.after(Attempt::NodeLost, false), Next::RetryElsewhere { backoff: 1 });
        assert_eq!(r.after(Attempt::Failed { system: false }, false), Next::RetryHere);
        assert_eq!(r.after(Attempt::NodeLost, false), Next::Fail);
        assert_eq!(r.used(), 2);
    }

    #[test]
    fn node_losses_retry_without_retry_exceptions_but_task_errors_do_not() {
        let mut r = TaskRetries::new(3, false);
        assert_eq!(r.after(Attempt::Failed { system: false }, false), Next::Fail);
        let mut r = TaskRetries::new(3, false);
        assert_eq!(r.after(Attempt::NodeLost, false), Next::RetryElsewhere { backoff: 1 });
        assert_eq!(r.after(Attempt::NodeLost, false), Next::RetryElsewhere { backoff: 2 });
        assert_eq!(r.after(Attempt::Failed { system: true }, false), Next::RetryHere);
        assert_eq!(r.after(Attempt::NodeLost, false), Next::Fail);
    }

    #[test]
    fn busy_costs_nothing_and_cancellation_stops_everything() {
        let mut r = TaskRetries::new(1, true);
        for _ in 0..10 {
            assert_eq!(r.after(Attempt::Busy, false), Next::WaitHere);
        }
        assert_eq!(r.used(), 0);
        assert_eq!(r.after(Attempt::NodeLost, true), Next::Fail);
        assert_eq!(r.after(Attempt::Failed { system: true }, true), Next::Fail);
        assert_eq!(r.after(Attempt::Ran, false), Next::Done);
    }

    /// Random outcomes: a task never runs more than `1 + max_retries`
    /// times, and runs again exactly when the rules say.
    #[test]
    fn simulation_never_runs_a_task_more_than_its_budget_allows() {
        let seed = crate::sim::seed(0x7e7);
        let mut rng = crate::sim::Rng::new(seed);
        let mut next = move || rng.next();
        for _ in 0..2_000 {
            let (max, exceptions) = ((next() % 5) as u32, next() % 2 == 0);
            let mut r = TaskRetries::new(max, exceptions);
            let mut runs = 1;
            loop {
                let attempt = match next() % 5 {
                    0 => Attempt::Ran,
                    1 => Attempt::Busy,
                    2 => Attempt::NodeLost,
                    3 => Attempt::Failed { system: true },
                    _ => Attempt::Failed { system: false },
                };
                match r.after(attempt, false) {
                    Next::Done | Next::Fail => break,
                    Next::WaitHere => assert_eq!(attempt, Attempt::Busy, "seed {seed}"),
                    Next::RetryElsewhere { .. } => {
                        assert_eq!(attempt, Attempt::NodeLost, "seed {seed}");
                        runs += 1;
                    }
                    Next::RetryHere => {
                        assert!(exceptions || attempt == Attempt::Failed { system: true }, "seed {seed}");
                        runs += 1;
                    }
                }
            }
            assert!(runs <= 1 + max, "ran {runs} times with max_retries {max} (WRAY_SIM_SEED={seed})");
        }
    }
}
