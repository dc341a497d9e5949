//! The actor that receives `report`s from a trainer's workers and hands
//! them, iteration by iteration, to the driver.

use crate::checkpoint::Checkpoint;
use crate::{Metrics, invalid};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use wray_guest_core::{Error, ObjectRef};

/// Iterations a rank may report ahead of the slowest rank before its
/// reports are refused (a loop where one rank reports in a loop and another
/// never does would otherwise grow the controller without bound).
pub const MAX_REPORTS_AHEAD: u64 = 100_000;

/// One iteration, reported by every rank.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Reported {
    pub iteration: u64,
    /// Rank 0's metrics.
    pub metrics: Metrics,
    /// The lowest rank's checkpoint, if any rank sent one.
    pub checkpoint: Option<ObjectRef<Checkpoint>>,
}

struct Pending {
    metrics: Vec<Option<Metrics>>,
    checkpoint: Option<(u32, ObjectRef<Checkpoint>)>,
}

/// Collects reports (holds no CPU; lives as long as one attempt of a fit).
#[wray_guest_core::actor]
pub struct Controller {
    world: u32,
    /// Reports received per rank.
    counts: Vec<u64>,
    pending: BTreeMap<u64, Pending>,
    ready: Vec<Reported>,
}

#[wray_guest_core::actor]
impl Controller {
    pub(crate) fn new(world: u32) -> Controller {
        Controller { world, counts: vec![0; world as usize], pending: BTreeMap::new(), ready: Vec::new() }
    }

    /// Rank `rank`'s report number `n` (from 1).
    pub(crate) fn report(
        &mut self,
        rank: u32,
        n: u64,
        metrics: Metrics,
        checkpoint: Option<ObjectRef<Checkpoint>>,
    ) -> Result<(), Error> {
        let r = rank as usize;
        if r >= self.counts.len() || n != self.counts[r] + 1 {
            return Err(invalid(format!("train::report: report {n} of rank {rank} out of order")));
        }
        let slowest = self.counts.iter().copied().min().unwrap_or(0);
        if n > slowest + MAX_REPORTS_AHEAD {
            let behind: Vec<usize> = (0..self.counts.len()).filter(|i| self.counts[*i] == slowest).collect();
            return Err(invalid(format!(
                "train::report: rank {rank} reported {n} times while ranks {behind:?} reported {slowest} times; \
                 every worker must call report as often as the others"
            )));
        }
        self.counts[r] = n;
        let world = self.world as usize;
        let entry = self.pending.entry(n).or_insert_with(|| Pending { metrics: vec![None; world], checkpoint: None });
        entry.metrics[r] = Some(metrics);
        if let Some(c) = checkpoint
            && entry.checkpoint.as_ref().is_none_or(|(have, _)| *have > rank)
        {
            entry.checkpoint = Some((rank, c));
        }
        // Iterations complete in order: every rank reports 1, 2, 3, ...
        while let Some(first) = self.pending.first_entry() {
            if first.get().metrics.iter().any(Option::is_none) {
                break;
            }
            let (iteration, p) = first.remove_entry();
            let mut metrics = p.metrics;
            self.ready.push(Reported {
                iteration,
                metrics: metrics.swap_remove(0).unwrap_or_default(),
                checkpoint: p.checkpoint.map(|(_, c)| c),
            });
        }
        Ok(())
    }

    /// The iterations completed since the last call.
    pub(crate) fn drain(&mut self) -> Vec<Reported> {
        std::mem::take(&mut self.ready)
    }

    /// Reports received from each rank.
    pub(crate) fn counts(&self) -> Vec<u64> {
        self.counts.clone()
    }
}
