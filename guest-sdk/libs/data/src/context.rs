//! [`DataContext`]: the knobs of dataset execution, per job — Ray's
//! `DataContext.get_current()`.

use std::cell::RefCell;

/// How datasets run. Read with [`DataContext::current`], change with
/// [`DataContext::set`]; applies to datasets executed afterwards.
#[derive(Clone, Debug)]
pub struct DataContext {
    /// Tasks (or actor calls) each stage of a stream keeps running at once;
    /// `None`: the cluster's CPUs, at least two. With the block size, this is
    /// what bounds a stream's memory: a stage holds at most this many blocks
    /// in flight plus the ones its consumer has not taken yet.
    pub max_tasks_in_flight: Option<usize>,
    /// Readers cut files into blocks of about this many bytes.
    pub target_block_bytes: usize,
    /// Rows per block of `range` and `from_items`.
    pub rows_per_block: usize,
    /// Show progress on standard error: while a dataset runs, a live line
    /// per running operator (blocks, rows, rows/s) if standard error is a
    /// terminal; when it finishes, a summary per operator (Ray Data prints
    /// its progress bars there too).
    pub progress: bool,
}

impl Default for DataContext {
    fn default() -> DataContext {
        DataContext {
            max_tasks_in_flight: None,
            target_block_bytes: crate::block::TARGET_BLOCK_BYTES,
            rows_per_block: crate::block::DEFAULT_ROWS_PER_BLOCK,
            progress: true,
        }
    }
}

thread_local! {
    static CURRENT: RefCell<DataContext> = RefCell::new(DataContext::default());
}

impl DataContext {
    /// The settings in force.
    pub fn current() -> DataContext {
        CURRENT.with(|c| c.borrow().clone())
    }

    /// Replaces the settings.
    pub fn set(context: DataContext) {
        CURRENT.with(|c| *c.borrow_mut() = context);
    }

    /// The in-flight bound in force.
    pub(crate) fn in_flight(&self) -> usize {
        self.max_tasks_in_flight.unwrap_or_else(|| {
            let cpus = wray_guest_core::cluster_resources().get("CPU").copied().unwrap_or(2.0);
            (cpus as usize).clamp(2, 64)
        })
    }
}
