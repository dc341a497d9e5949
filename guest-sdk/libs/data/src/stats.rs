//! Per-operator statistics — Ray's `ds.stats()` — and the summary printed
//! when a dataset finishes.

use crate::exec::TaskOut;
use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// An operator's entry in a [`Stats`] table.
pub(crate) type OpId = usize;

/// What one operator of an executed dataset did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpStats {
    /// The operator, e.g. `ReadCSV` or `Map(my_job::double)`.
    pub name: String,
    /// Tasks (or actor calls) that ran it; fused operators share their tasks.
    pub tasks: u64,
    /// Blocks it produced.
    pub blocks: u64,
    /// Rows it produced.
    pub rows: u64,
    /// Time spent in it inside tasks, summed over tasks.
    pub task_time: Duration,
    /// Wall-clock time from its first task's submission to its last result.
    pub wall_time: Duration,
}

/// The statistics of a dataset's executions so far: one entry per operator,
/// in the order they first ran. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct Stats(Rc<RefCell<Vec<OpStats>>>);

impl Stats {
    pub(crate) fn op(&self, name: &str) -> OpId {
        let mut ops = self.0.borrow_mut();
        if let Some(i) = ops.iter().position(|o| o.name == name) {
            return i;
        }
        ops.push(OpStats { name: name.to_string(), ..OpStats::default() });
        ops.len() - 1
    }

    /// Adds a task's figures: `ops[i]` is the entry of `out.stages[i]`
    /// (`None`: not an operator of its own).
    pub(crate) fn record_task(&self, ops: &[Option<OpId>], out: &TaskOut, started: Instant) {
        let mut all = self.0.borrow_mut();
        for (i, (op, stage)) in ops.iter().zip(&out.stages).enumerate() {
            let Some(op) = *op else { continue };
            let o = &mut all[op];
            o.tasks += 1;
            o.rows += stage.rows;
            o.task_time += Duration::from_nanos(stage.nanos);
            o.wall_time = started.elapsed();
            if i + 1 == ops.len() {
                o.blocks += out.blocks.len() as u64;
            }
        }
    }

    /// The operators' entries.
    pub fn operators(&self) -> Vec<OpStats> {
        self.0.borrow().clone()
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, o) in self.operators().iter().enumerate() {
            writeln!(
                f,
                "Operator {} {}: {} tasks, {} blocks, {} rows; {:.3} s in tasks, {:.3} s wall",
                i + 1,
                o.name,
                o.tasks,
                o.blocks,
                o.rows,
                o.task_time.as_secs_f64(),
                o.wall_time.as_secs_f64()
            )?;
        }
        Ok(())
    }
}

impl fmt::Debug for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
