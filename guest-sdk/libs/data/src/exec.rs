//! Execution: the tasks that run a plan's stages, and the streaming executor
//! that drives them from the consuming task (usually the driver).
//!
//! A plan runs as a chain of pull-based streams of [`BlockRef`]s. Each
//! stream of tasks keeps at most `max_tasks_in_flight` tasks running and
//! submits the next one only when its consumer takes a block, so a pipeline
//! over more data than the object store holds runs in bounded memory: about
//! `stages × in-flight × block size`. Blocks come out in input order (the
//! head task is awaited first), which is what makes `take` and `show`
//! deterministic. Dropping a stream cancels the tasks it still has running —
//! `take(10)` over a billion rows stops after the blocks it needs.

use crate::block::{self, BlockRef};
use crate::context::DataContext;
use crate::plan::{Code, CombineFn, Exchange, Node, PartitionFn, Read, Stage, StageCtx};
use crate::stats::{OpId, Stats};
use arrow_array::RecordBatch;
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Instant;
use wray_guest_core::{Error, ObjectRef};

/// What one task hands back: its blocks (already in the object store) and
/// the time and rows of each of its stages.
#[derive(Serialize, Deserialize)]
pub(crate) struct TaskOut {
    pub blocks: Vec<BlockRef>,
    pub stages: Vec<StageStat>,
}

#[derive(Clone, Copy, Default, Serialize, Deserialize)]
pub(crate) struct StageStat {
    pub nanos: u64,
    pub rows: u64,
}

/// Runs `stages` over `batches`, splitting outputs to the block target, and
/// stores the results.
fn run_stages(
    batches: Vec<RecordBatch>,
    stages: &[Stage],
    index: u64,
    read_nanos: u64,
    target: usize,
) -> Result<TaskOut, Error> {
    let ctx = StageCtx { index };
    let mut stats = vec![StageStat::default(); stages.len() + 1];
    stats[0] = StageStat { nanos: read_nanos, rows: batches.iter().map(|b| b.num_rows() as u64).sum() };
    let codes = stages.iter().map(|s| s.code.get()).collect::<Result<Vec<_>, _>>()?;
    let mut blocks = Vec::new();
    for batch in batches {
        let mut batch = batch;
        for (i, (stage, code)) in stages.iter().zip(&codes).enumerate() {
            let start = Instant::now();
            batch = code(batch, &ctx, &stage.arg).map_err(|e| in_stage(&stage.name, e))?;
            stats[i + 1].nanos += start.elapsed().as_nanos() as u64;
            stats[i + 1].rows += batch.num_rows() as u64;
        }
        for piece in block::split_by_size(batch, target) {
            blocks.push(block::put(&piece)?);
        }
    }
    Ok(TaskOut { blocks, stages: stats })
}

fn in_stage(stage: &str, e: Error) -> Error {
    match e {
        Error::InvalidArgument(m) => Error::InvalidArgument(format!("{stage}: {m}")),
        other => Error::InvalidArgument(format!("{stage}: {other}")),
    }
}

/// Runs an actor pool's mapper over one block.
pub(crate) fn run_stages_on(
    block: Vec<u8>,
    batch_size: Option<u64>,
    _index: u64,
    target: u64,
    mapper: &mut crate::pool::Mapper,
) -> Result<TaskOut, Error> {
    let start = Instant::now();
    let batch = block::decode(block)?;
    let rows_in = batch.num_rows() as u64;
    let decoded = start.elapsed().as_nanos() as u64;
    let start = Instant::now();
    let out = crate::ops::in_batches(batch, batch_size.map(|s| s as usize), mapper)?;
    let stages = vec![
        StageStat { nanos: decoded, rows: rows_in },
        StageStat { nanos: start.elapsed().as_nanos() as u64, rows: out.num_rows() as u64 },
    ];
    let blocks = block::split_by_size(out, target as usize).iter().map(block::put).collect::<Result<_, _>>()?;
    Ok(TaskOut { blocks, stages })
}

/// Reads, then runs the stages fused behind the read.
#[wray::remote]
pub(crate) fn read_task(read: Read, stages: Vec<Stage>, index: u64, target: u64) -> Result<TaskOut, Error> {
    let start = Instant::now();
    let batches = (read.code.get()?)(&read.arg)?;
    run_stages(batches, &stages, index, start.elapsed().as_nanos() as u64, target as usize)
}

/// Runs fused stages over one block.
#[wray::remote]
pub(crate) fn map_task(block: Vec<u8>, stages: Vec<Stage>, index: u64, target: u64) -> Result<TaskOut, Error> {
    let start = Instant::now();
    let batch = block::decode(block)?;
    run_stages(vec![batch], &stages, index, start.elapsed().as_nanos() as u64, target as usize)
}

/// The first half of an exchange: one block cut into `parts` blocks.
#[wray::remote]
pub(crate) fn partition_task(
    block: Vec<u8>,
    code: Code<PartitionFn>,
    arg: Vec<u8>,
    index: u64,
    parts: u64,
) -> Result<Vec<BlockRef>, Error> {
    let batch = block::decode(block)?;
    let pieces = (code.get()?)(batch, &StageCtx { index }, &arg, parts as usize)?;
    if pieces.len() != parts as usize {
        return Err(Error::InvalidArgument(format!("a partition gave {} parts for {parts}", pieces.len())));
    }
    pieces.iter().map(block::put).collect()
}

/// The second half: the parts of one output, fetched and joined.
#[wray::remote]
pub(crate) fn combine_task(
    parts: Vec<BlockRef>,
    code: Code<CombineFn>,
    arg: Vec<u8>,
    index: u64,
) -> Result<TaskOut, Error> {
    let start = Instant::now();
    let objects: Vec<_> = parts.iter().map(|p| p.object.clone()).collect();
    let batches = wray_guest_core::get_all(&objects)?.into_iter().map(block::decode).collect::<Result<Vec<_>, _>>()?;
    let out = (code.get()?)(batches, &StageCtx { index }, &arg)?;
    let nanos = start.elapsed().as_nanos() as u64;
    let rows = out.num_rows() as u64;
    Ok(TaskOut { blocks: vec![block::put(&out)?], stages: vec![StageStat { nanos, rows }] })
}

/// A stream of blocks.
pub(crate) type BlockStream = Box<dyn Iterator<Item = Result<BlockRef, Error>>>;

/// Submits the next task of a stream, or says there is none.
pub(crate) type Submit = Box<dyn FnMut(u64) -> Option<Result<ObjectRef<TaskOut>, Error>>>;

/// Tasks in flight, at most `limit`, their blocks handed out in order.
pub(crate) struct TaskStream {
    submit: Submit,
    pub(crate) limit: usize,
    /// Told the number of tasks in flight (an actor pool grows on it).
    pub(crate) in_flight_gauge: Option<Rc<Cell<usize>>>,
    next_index: u64,
    exhausted: bool,
    in_flight: VecDeque<ObjectRef<TaskOut>>,
    ready: VecDeque<BlockRef>,
    stats: Stats,
    /// The stats entries of the task's stages (index 0: its input side).
    ops: Vec<OpId>,
    label: String,
    started: Instant,
}

impl TaskStream {
    pub fn new(submit: Submit, stats: &Stats, ops: Vec<OpId>, label: String) -> TaskStream {
        TaskStream {
            submit,
            limit: DataContext::current().in_flight(),
            in_flight_gauge: None,
            next_index: 0,
            exhausted: false,
            in_flight: VecDeque::new(),
            ready: VecDeque::new(),
            stats: stats.clone(),
            ops,
            label,
            started: Instant::now(),
        }
    }

    fn fill(&mut self) -> Result<(), Error> {
        while !self.exhausted && self.in_flight.len() < self.limit {
            if let Some(g) = &self.in_flight_gauge {
                g.set(self.in_flight.len());
            }
            match (self.submit)(self.next_index) {
                Some(task) => {
                    self.in_flight.push_back(task?);
                    self.next_index += 1;
                }
                None => self.exhausted = true,
            }
        }
        Ok(())
    }
}

impl Iterator for TaskStream {
    type Item = Result<BlockRef, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(b) = self.ready.pop_front() {
                return Some(Ok(b));
            }
            if let Err(e) = self.fill() {
                self.exhausted = true;
                return Some(Err(e));
            }
            let head = self.in_flight.pop_front()?;
            // Keep the pipeline full while waiting on the head.
            if let Err(e) = self.fill() {
                self.exhausted = true;
                return Some(Err(e));
            }
            match wray_guest_core::get(&head) {
                Ok(out) => {
                    self.stats.record_task(&self.ops, &out, self.started);
                    self.ready.extend(out.blocks);
                }
                Err(e) => {
                    self.exhausted = true;
                    return Some(Err(failed(&self.label, e)));
                }
            }
        }
    }
}

impl Drop for TaskStream {
    fn drop(&mut self) {
        for task in &self.in_flight {
            wray_guest_core::cancel(task);
        }
    }
}

/// A failed task's error, naming the operators it ran.
fn failed(label: &str, e: Error) -> Error {
    match e {
        Error::TaskFailed { message, .. } => Error::TaskFailed { function: format!("wray::data {label}"), message },
        other => other,
    }
}

/// The stream of a plan node's blocks.
pub(crate) fn stream(node: &Rc<Node>, stats: &Stats) -> Result<BlockStream, Error> {
    let target = DataContext::current().target_block_bytes as u64;
    Ok(match &**node {
        Node::Stage { .. } | Node::Read { .. } => {
            // Fuse the chain of row-wise stages down to its source.
            let mut stages = Vec::new();
            let mut base = node.clone();
            while let Node::Stage { input, stage } = &*base {
                stages.push(stage.clone());
                base = input.clone();
            }
            stages.reverse();
            let names: Vec<String> = stages.iter().map(|s| s.name.clone()).collect();
            match &*base {
                Node::Read { name, reads } => {
                    let mut ops = vec![stats.op(name)];
                    ops.extend(names.iter().map(|n| stats.op(n)));
                    let label = std::iter::once(name.clone()).chain(names).collect::<Vec<_>>().join("->");
                    let mut reads: VecDeque<Read> = reads.iter().cloned().collect();
                    let submit: Submit = Box::new(move |index| {
                        let read = reads.pop_front()?;
                        Some(Ok(read_task::remote(read, stages.clone(), index, target)))
                    });
                    Box::new(TaskStream::new(submit, stats, ops, label))
                }
                _ => {
                    let mut upstream = stream(&base, stats)?;
                    let mut ops = vec![stats.op("(input)")];
                    ops.extend(names.iter().map(|n| stats.op(n)));
                    let label = names.join("->");
                    let submit: Submit = Box::new(move |index| {
                        let block = match upstream.next()? {
                            Ok(b) => b,
                            Err(e) => return Some(Err(e)),
                        };
                        Some(Ok(map_task::remote(&block.object, stages.clone(), index, target)))
                    });
                    Box::new(TaskStream::new(submit, stats, ops, label))
                }
            }
        }
        Node::Blocks { blocks } => Box::new(blocks.clone().into_iter().map(Ok)),
        Node::Pool { input, pool } => crate::pool::stream(stream(input, stats)?, pool.clone(), stats)?,
        Node::Exchange { input, exchange } => {
            let (input, exchange, stats) = (input.clone(), exchange.clone(), stats.clone());
            lazy(move || {
                let blocks = collect(stream(&input, &stats)?)?;
                run_exchange(blocks, &exchange, &stats)
            })
        }
        Node::Barrier { input, plan, .. } => {
            let (input, plan, stats) = (input.clone(), plan.clone(), stats.clone());
            lazy(move || {
                let blocks = collect(stream(&input, &stats)?)?;
                stream(&plan(blocks)?, &stats)
            })
        }
        Node::Limit { input, rows } => Box::new(LimitStream { input: Some(stream(input, stats)?), left: *rows }),
        Node::Union { inputs } => {
            let (inputs, stats) = (inputs.clone(), stats.clone());
            Box::new(inputs.into_iter().flat_map(move |i| match stream(&i, &stats) {
                Ok(s) => s,
                Err(e) => Box::new(std::iter::once(Err(e))),
            }))
        }
        Node::Repeat { input, times } => {
            let (input, stats) = (input.clone(), stats.clone());
            let epochs: Box<dyn Iterator<Item = u64>> = match times {
                Some(t) => Box::new(0..*t),
                None => Box::new(0..),
            };
            Box::new(epochs.flat_map(move |_| match stream(&input, &stats) {
                Ok(s) => s,
                Err(e) => Box::new(std::iter::once(Err(e))),
            }))
        }
    })
}

/// A stream built on first use (a barrier waits for its whole input only
/// when its consumer asks for the first block).
fn lazy(build: impl FnOnce() -> Result<BlockStream, Error> + 'static) -> BlockStream {
    let mut build = Some(build);
    let mut built: Option<BlockStream> = None;
    Box::new(std::iter::from_fn(move || {
        if let Some(b) = build.take() {
            match b() {
                Ok(s) => built = Some(s),
                Err(e) => return Some(Err(e)),
            }
        }
        built.as_mut()?.next()
    }))
}

/// Runs a stream to its end, keeping the refs.
pub(crate) fn collect(stream: BlockStream) -> Result<Vec<BlockRef>, Error> {
    stream.collect()
}

/// The first `left` rows of a stream; a block that straddles the limit is
/// sliced by a task.
struct LimitStream {
    input: Option<BlockStream>,
    left: u64,
}

impl Iterator for LimitStream {
    type Item = Result<BlockRef, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            // Dropping the input cancels its running tasks.
            self.input = None;
            return None;
        }
        let block = match self.input.as_mut()?.next()? {
            Ok(b) => b,
            Err(e) => return Some(Err(e)),
        };
        if block.rows <= self.left {
            self.left -= block.rows;
            return Some(Ok(block));
        }
        let rows = self.left;
        self.left = 0;
        self.input = None;
        Some(slice(&block, 0, rows))
    }
}

/// Rows `offset..offset + len` of a block, as a new block (made by a task,
/// so the block is not fetched here).
pub(crate) fn slice(block: &BlockRef, offset: u64, len: u64) -> Result<BlockRef, Error> {
    if offset == 0 && len == block.rows {
        return Ok(block.clone());
    }
    let stage = crate::ops::slice_stage(offset, len);
    let out = wray_guest_core::get(&map_task::remote(&block.object, vec![stage], 0, u64::MAX))?;
    out.blocks.into_iter().next().ok_or_else(|| Error::InvalidArgument("slicing a block gave no block".into()))
}

/// Partitions every block, then combines each output's parts.
fn run_exchange(blocks: Vec<BlockRef>, exchange: &Exchange, stats: &Stats) -> Result<BlockStream, Error> {
    let outputs = exchange.outputs.unwrap_or(blocks.len()).max(1);
    let op = stats.op(&exchange.name);
    let limit = DataContext::current().in_flight();
    // Map side, `limit` tasks at a time.
    let mut parts: Vec<Vec<BlockRef>> = Vec::with_capacity(blocks.len());
    let mut pending: VecDeque<ObjectRef<Vec<BlockRef>>> = VecDeque::new();
    let mut next = blocks.iter().enumerate();
    loop {
        while pending.len() < limit {
            let Some((i, b)) = next.next() else { break };
            pending.push_back(partition_task::remote(
                &b.object,
                exchange.partition,
                exchange.arg.clone(),
                i as u64,
                outputs as u64,
            ));
        }
        let Some(head) = pending.pop_front() else { break };
        parts.push(wray_guest_core::get(&head).map_err(|e| failed(&exchange.name, e))?);
    }
    drop(blocks);
    // Reduce side, streamed.
    let mut columns: VecDeque<Vec<BlockRef>> =
        (0..outputs).map(|j| parts.iter().map(|p| p[j].clone()).collect()).collect();
    drop(parts);
    let (code, arg) = (exchange.combine, exchange.arg.clone());
    let submit: Submit = Box::new(move |index| {
        let parts = columns.pop_front()?;
        Some(Ok(combine_task::remote(parts, code, arg.clone(), index)))
    });
    Ok(Box::new(TaskStream::new(submit, stats, vec![op], exchange.name.clone())))
}
