//! A dataset's plan: where its rows come from and the operators applied to
//! them, and how the code of an operator travels to the task that runs it.
//!
//! **Code travels as a function-table index.** Ray pickles a Python lambda;
//! a Wasm job cannot serialize a closure. But every task of a job runs an
//! instance of the *same component*, whose function table is laid out once
//! at compile time, so a function pointer taken in the driver names the same
//! function in any other instance on any node. A stage therefore carries the
//! index of a monomorphised function (`apply_map::<F, T, U>`, say), which
//! knows the user's closure type `F` statically: the closure itself must be
//! zero-sized — capture nothing — and is conjured in the task from its type
//! (checked at compile time). State a function needs travels beside it as
//! serialized bytes (`map_with` and friends). An index that was forged or
//! corrupted can only make the job's own task call the wrong function of its
//! own component or trap (Wasm checks the signature of every indirect call);
//! the sandbox is unaffected.

use crate::block::BlockRef;
use arrow_array::RecordBatch;
use serde::{Deserialize, Serialize};
use std::rc::Rc;
use wray_guest_core::Error;

pub(crate) use wray_guest_core::Code;

/// Conjures the value of a zero-sized closure type from its type alone.
pub(crate) fn conjure<F: Copy + 'static>() -> F {
    const {
        assert!(
            size_of::<F>() == 0,
            "wray::data: a function passed to a dataset must not capture variables (it runs in other \
             instances of the job); pass what it needs with the `_with` variant (map_with, \
             map_batches_with, ...)"
        )
    };
    // SAFETY: F is zero-sized and Copy (a non-capturing closure or a fn
    // item), so it has exactly one value and no invariants to break.
    unsafe { std::mem::transmute_copy::<(), F>(&()) }
}

/// Where a stage runs and which block it is.
pub(crate) struct StageCtx {
    /// The task's position in the stream feeding the stage.
    pub index: u64,
    /// Which of the task's batches (a read can make several).
    pub part: u64,
}

/// One block in, one block out.
pub(crate) type BlockFn = fn(RecordBatch, &StageCtx, &[u8]) -> Result<RecordBatch, Error>;
/// A row function's stage: takes rows as they come (see `rows::Flow`).
pub(crate) type RowsFn = fn(crate::rows::Flow, &StageCtx, &[u8]) -> Result<crate::rows::Flow, Error>;

/// A stage's code: on Arrow batches, or on rows.
#[derive(Clone, Copy, Serialize, Deserialize)]
pub(crate) enum StageFn {
    Batch(Code<BlockFn>),
    Rows(Code<RowsFn>),
}
/// A read: arguments and the block target in, batches out.
pub(crate) type ReadFn = fn(&[u8], usize) -> Result<Vec<RecordBatch>, Error>;
/// Cuts a block into `n` parts for an exchange.
pub(crate) type PartitionFn = fn(RecordBatch, &StageCtx, &[u8], usize) -> Result<Vec<RecordBatch>, Error>;
/// Joins the parts of one exchange output.
pub(crate) type CombineFn = fn(Vec<RecordBatch>, &StageCtx, &[u8]) -> Result<RecordBatch, Error>;

/// A row-wise operator: fused with its neighbours into one task per block.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Stage {
    pub name: String,
    pub code: StageFn,
    pub arg: Vec<u8>,
    /// One row out per row in (`map`, column edits): `count` stays known.
    pub keeps_rows: bool,
}

/// A read task: what one task reads.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Read {
    pub code: Code<ReadFn>,
    pub arg: Vec<u8>,
    /// Rows, when known before reading (for `count`).
    pub rows: Option<u64>,
}

/// How many blocks an exchange makes.
#[derive(Clone, Copy, Serialize, Deserialize)]
pub(crate) enum Outputs {
    /// As many as its input has: the input is materialised first, to count
    /// them (a shuffle keeps the blocks' number and size).
    Inputs,
    /// This many; the partition tasks stream over the input.
    Fixed(usize),
    /// As many as tasks run at once; streamed (a groupby, whose partition
    /// tasks send partial aggregates, not rows).
    Parallelism,
}

/// An all-to-all operator's halves.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Exchange {
    pub name: String,
    pub partition: Code<PartitionFn>,
    pub combine: Code<CombineFn>,
    pub arg: Vec<u8>,
    pub outputs: Outputs,
    /// Every input row comes out once (a shuffle or a sort; not a groupby).
    pub keeps_rows: bool,
}

/// An operator planned from its whole materialised input.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) enum Barrier {
    /// The blocks in a seeded random order.
    RandomizeBlockOrder { seed: u64 },
    /// `n` blocks of (nearly) equal row counts.
    Repartition { n: u64 },
    /// Sampled keys pick the boundaries of a range exchange.
    Sort { keys: Vec<String>, descending: bool },
}

impl Barrier {
    pub fn name(&self) -> String {
        match self {
            Barrier::RandomizeBlockOrder { .. } => "RandomizeBlockOrder".into(),
            Barrier::Repartition { n } => format!("Repartition({n})"),
            Barrier::Sort { keys, .. } => format!("Sort({})", keys.join(", ")),
        }
    }
}

/// A node of the plan. Plans are immutable and shared: every transform
/// returns a new dataset whose plan points at its input's. A plan is a
/// value (serde): a dataset can be sent to a task or an actor, which runs
/// it there.
#[derive(Serialize, Deserialize)]
pub(crate) enum Node {
    /// Reads, one task each (fused with the row-wise stages after them).
    Read { name: String, reads: Vec<Read> },
    /// Blocks already in the object store.
    Blocks { blocks: Vec<BlockRef> },
    /// A row-wise stage.
    Stage { input: Rc<Node>, stage: Stage },
    /// `map_batches` on an actor pool.
    Pool { input: Rc<Node>, pool: crate::pool::PoolSpec },
    /// An all-to-all exchange (a barrier: its input is materialised first).
    Exchange { input: Rc<Node>, exchange: Exchange },
    /// Planned from the whole input once it is materialised.
    Barrier { input: Rc<Node>, barrier: Barrier },
    /// The first `n` rows.
    Limit { input: Rc<Node>, rows: u64 },
    /// The inputs one after another.
    Union { inputs: Vec<Rc<Node>> },
    /// The input, `times` times over (`None`: forever).
    Repeat { input: Rc<Node>, times: Option<u64> },
}

impl Node {
    /// Rows, if known without running anything.
    pub fn known_rows(&self) -> Option<u64> {
        match self {
            Node::Read { reads, .. } => reads.iter().map(|r| r.rows).sum(),
            Node::Blocks { blocks } => Some(blocks.iter().map(|b| b.rows).sum()),
            Node::Stage { input, stage } if stage.keeps_rows => input.known_rows(),
            Node::Pool { .. } | Node::Stage { .. } | Node::Barrier { .. } => None,
            Node::Exchange { input, exchange } => exchange.keeps_rows.then(|| input.known_rows()).flatten(),
            Node::Limit { input, rows } => input.known_rows().map(|n| n.min(*rows)),
            Node::Union { inputs } => inputs.iter().map(|i| i.known_rows()).sum(),
            Node::Repeat { input, times } => times.and_then(|t| input.known_rows().map(|n| n * t)),
        }
    }

    /// Operator names from the source to here (for progress and stats).
    pub fn describe(&self) -> String {
        match self {
            Node::Read { name, .. } => name.clone(),
            Node::Blocks { .. } => "FromBlocks".into(),
            Node::Stage { input, stage } => format!("{} -> {}", input.describe(), stage.name),
            Node::Pool { input, pool } => format!("{} -> {}", input.describe(), pool.name),
            Node::Exchange { input, exchange } => format!("{} -> {}", input.describe(), exchange.name),
            Node::Barrier { input, barrier } => format!("{} -> {}", input.describe(), barrier.name()),
            Node::Limit { input, rows } => format!("{} -> Limit({rows})", input.describe()),
            Node::Union { inputs } => {
                format!("Union({})", inputs.iter().map(|i| i.describe()).collect::<Vec<_>>().join(", "))
            }
            Node::Repeat { input, times } => match times {
                Some(t) => format!("{} -> Repeat({t})", input.describe()),
                None => format!("{} -> Repeat", input.describe()),
            },
        }
    }
}
