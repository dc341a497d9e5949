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

/// The statistics of a dataset's execution: one entry per operator, in the
/// order they first ran. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct Stats(Rc<RefCell<Table>>);

#[derive(Default)]
struct Table {
    ops: Vec<OpStats>,
    /// When the live line was last drawn; `None`: no live line (standard
    /// error is not a terminal, or progress is off).
    drawn: Option<Instant>,
}

/// The live line's length at most (one line of a wide terminal).
const LINE_WIDTH: usize = 200;

/// How often the live progress line is redrawn, at most.
const REDRAW: Duration = Duration::from_millis(200);

/// Whether standard error is a terminal: WASI's `terminal-stderr` in a
/// job, the host's own stderr in unit tests.
fn stderr_is_terminal() -> bool {
    #[cfg(target_arch = "wasm32")]
    {
        wasip2::cli::terminal_stderr::get_terminal_stderr().is_some()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::io::IsTerminal::is_terminal(&std::io::stderr())
    }
}

impl Stats {
    /// Statistics for a new run; with `progress`, a live line on standard
    /// error while it runs, if that is a terminal (Ray Data's progress bars).
    pub(crate) fn new(progress: bool) -> Stats {
        let drawn = (progress && stderr_is_terminal()).then(|| Instant::now() - REDRAW);
        Stats(Rc::new(RefCell::new(Table { ops: Vec::new(), drawn })))
    }

    pub(crate) fn op(&self, name: &str) -> OpId {
        let ops = &mut self.0.borrow_mut().ops;
        if let Some(i) = ops.iter().position(|o| o.name == name) {
            return i;
        }
        ops.push(OpStats { name: name.to_string(), ..OpStats::default() });
        ops.len() - 1
    }

    /// Adds a task's figures: `ops[i]` is the entry of `out.stages[i]`
    /// (`None`: not an operator of its own).
    pub(crate) fn record_task(&self, ops: &[Option<OpId>], out: &TaskOut, started: Instant) {
        let mut table = self.0.borrow_mut();
        for (i, (op, stage)) in ops.iter().zip(&out.stages).enumerate() {
            let Some(op) = *op else { continue };
            let o = &mut table.ops[op];
            o.tasks += 1;
            o.rows += stage.rows;
            o.task_time += Duration::from_nanos(stage.nanos);
            o.wall_time = started.elapsed();
            if i + 1 == ops.len() {
                o.blocks += out.blocks.len() as u64;
            }
        }
        Stats::draw(&mut table);
    }

    /// Redraws the live line if it is due.
    fn draw(table: &mut Table) {
        if table.drawn.is_none_or(|t| t.elapsed() < REDRAW) {
            return;
        }
        let line: Vec<String> = table
            .ops
            .iter()
            .filter(|o| o.tasks > 0)
            .map(|o| {
                let rate = o.rows as f64 / o.wall_time.as_secs_f64().max(1e-3);
                match o.blocks {
                    // Stages fused before the last make no blocks of their own.
                    0 => format!("{}: {} rows, {rate:.0} rows/s", o.name, o.rows),
                    b => format!("{}: {b} blocks, {} rows, {rate:.0} rows/s", o.name, o.rows),
                }
            })
            .collect();
        let mut line = line.join(" | ");
        if line.len() > LINE_WIDTH {
            let cut = (0..=LINE_WIDTH).rev().find(|&i| line.is_char_boundary(i)).unwrap_or(0);
            line.truncate(cut);
        }
        // `\r` and erase-line: the line is redrawn in place.
        eprint!("\r\x1b[2K{line}");
        table.drawn = Some(Instant::now());
    }

    /// Ends the live line, if one was drawn.
    pub(crate) fn finish_line(&self) {
        if self.0.borrow().drawn.is_some() {
            eprint!("\r\x1b[2K");
        }
    }

    /// The operators' entries.
    pub fn operators(&self) -> Vec<OpStats> {
        self.0.borrow().ops.clone()
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
