//! Telling a job that its task or actor waits for resources only the end of
//! an actor (or of a placement group) can free.
//!
//! Running tasks end by themselves; actors hold their resources until
//! someone ends them. A program that keeps every CPU in actors and then
//! asks for one more — a second algorithm's env runners while the first
//! one's live on, a task an actor waits for — waits for good, silently.
//! Ray prints a warning then ("... cannot be scheduled right now ... all
//! cluster resources being claimed by actors"); so does wray, on the job's
//! standard error, once per waiter, after [`STUCK_WARNING`]. The waiter
//! still waits: the program may end an actor later and mean to.
//!
//! Which demands are stuck is the scheduler's pure decision
//! ([`wray_sched::Scheduler::stuck`]); this is the watch that asks it. It
//! runs only while something is queued, so an idle node has no timer, and
//! a queued task costs one relaxed load ([`NodeInner::watch_stuck`]).

use crate::{NodeInner, lock};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use wray_core::{ActorId, Resources, TaskId};
use wray_host::Stream;

/// How long a demand waits on actors or placement groups before its job is
/// warned: long enough that an actor being killed, a group being removed
/// or an actor restarting elsewhere has freed its share, short enough to
/// be read before one gives up on a silent program.
pub(crate) const STUCK_WARNING: Duration = Duration::from_secs(10);

/// How often the watch looks while something is queued.
const STUCK_CHECK: Duration = Duration::from_secs(1);

/// Waiters named in one warning, at most; the rest are counted.
const NAMED_IN_WARNING: usize = 3;

impl NodeInner {
    /// Starts the watch after a demand was queued, unless it runs. It
    /// stops itself once nothing is queued.
    pub(crate) fn watch_stuck(self: &Arc<Self>) {
        if self.watching_stuck.load(Ordering::Relaxed) || self.watching_stuck.swap(true, Ordering::SeqCst) {
            return;
        }
        tokio::spawn(watch(Arc::downgrade(self)));
    }

    /// Writes one warning per job to that job's standard error (and the
    /// node's log) for `waiters`, stuck since at least [`STUCK_WARNING`].
    fn warn_stuck(&self, waiters: &[(TaskId, Resources)], total: &Resources, lasting: &Resources) {
        let jobs: Vec<_> = lock(&self.jobs).values().cloned().collect();
        for job in jobs {
            // (what, demand, how many), in the order they queued.
            let mut groups: Vec<(String, &Resources, usize)> = Vec::new();
            for (id, demand) in waiters {
                let what = if let Some(task) = lock(&job.tasks).get(id) {
                    task.listed().map_or_else(|| "a task".to_string(), |l| format!("task {}", l.function()))
                } else if let Some(actor) = lock(&job.actors).get(&ActorId::created_by(*id)) {
                    format!("actor {}", actor.class)
                } else {
                    continue;
                };
                match groups.iter_mut().find(|(w, d, _)| *w == what && *d == demand) {
                    Some(g) => g.2 += 1,
                    None => groups.push((what, demand, 1)),
                }
            }
            if groups.is_empty() {
                continue;
            }
            let several = groups.len() > 1 || groups[0].2 > 1;
            let mut named: Vec<String> = groups
                .iter()
                .take(NAMED_IN_WARNING)
                .map(|(what, demand, n)| match n {
                    1 => format!("{what} (asking {demand})"),
                    n => format!("{what} ×{n} (asking {demand} each)"),
                })
                .collect();
            if groups.len() > NAMED_IN_WARNING {
                named.push(format!("{} more", groups.len() - NAMED_IN_WARNING));
            }
            let line = format!(
                "wray: warning: {} {} waited {}s on node {}, which cannot give {} before an actor or a \
                 placement group ends: of the node's {total}, actors and placement groups hold {lasting}. \
                 {} once one of them ends (drop the handles of an actor no longer needed, or \
                 `wray::kill` it; `wray::remove_placement_group` a group), or on another node with room.\n",
                named.join(", "),
                if several { "have" } else { "has" },
                STUCK_WARNING.as_secs(),
                self.id,
                if several { "them that" } else { "it that" },
                if several { "They start" } else { "It starts" },
            );
            // And in the node's log (`wray logs --node`), at info: a
            // cluster node logs it, `wray run` (warnings only) does not
            // print it twice.
            tracing::info!(job = %job.key, "{}", line.trim_end());
            job.config.grants.output.write(Stream::Stderr, line.as_bytes());
        }
    }
}

/// The watch: every [`STUCK_CHECK`], the scheduler's stuck demands; each
/// is warned about once, when it has been stuck for [`STUCK_WARNING`].
async fn watch(node: Weak<NodeInner>) {
    // Since when each stuck demand has been stuck, and whether its job
    // was told.
    let mut seen: HashMap<TaskId, (Instant, bool)> = HashMap::new();
    // Ticks at a fixed rate, not a sleep after each look: a busy node's late
    // wake-ups do not add up to a warning much later than `STUCK_WARNING`.
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + STUCK_CHECK, STUCK_CHECK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(node) = node.upgrade() else { return };
        let (stuck, queued, total, lasting) = {
            let s = lock(&node.sched);
            (s.stuck(), s.queued(), s.total().clone(), s.lasting().clone())
        };
        if queued == 0 {
            node.watching_stuck.store(false, Ordering::SeqCst);
            // A demand queued since, whose caller still saw the flag set,
            // would be watched by no one: look again before leaving.
            if lock(&node.sched).queued() == 0 || node.watching_stuck.swap(true, Ordering::SeqCst) {
                return;
            }
            continue;
        }
        let now = Instant::now();
        let ids: HashSet<TaskId> = stuck.iter().map(|(id, _)| *id).collect();
        seen.retain(|id, _| ids.contains(id));
        let due: Vec<(TaskId, Resources)> = stuck
            .into_iter()
            .filter(|(id, _)| {
                let (since, told) = seen.entry(*id).or_insert((now, false));
                let due = !*told && now.duration_since(*since) >= STUCK_WARNING;
                *told |= due;
                due
            })
            .collect();
        if !due.is_empty() {
            node.warn_stuck(&due, &total, &lasting);
        }
    }
}
