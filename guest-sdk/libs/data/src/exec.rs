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
use crate::plan::{Barrier, Code, CombineFn, Exchange, Node, Outputs, PartitionFn, Read, Stage, StageCtx, StageFn};
use crate::rows::Flow;
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

/// One stage as a task runs it: its name (for errors) and its code.
type Apply<'a> = (&'a str, Box<dyn FnMut(Flow, &StageCtx) -> Result<Flow, Error> + 'a>);

fn coded(stages: &[Stage]) -> Result<Vec<Apply<'_>>, Error> {
    stages
        .iter()
        .map(|s| {
            let apply: Apply<'_> = match s.code {
                StageFn::Batch(code) => {
                    let code = code.get()?;
                    (&s.name, Box::new(move |f: Flow, ctx| Ok(Flow::Batch(code(f.into_batch()?, ctx, &s.arg)?))))
                }
                StageFn::Rows(code) => {
                    let code = code.get()?;
                    (&s.name, Box::new(move |f, ctx| code(f, ctx, &s.arg)))
                }
            };
            Ok(apply)
        })
        .collect()
}

/// Runs `stages` over `batches`, splitting outputs to the block target, and
/// stores the results. Stat 0 is the input side (reading or decoding).
fn run_stages(
    batches: Vec<RecordBatch>,
    mut stages: Vec<Apply<'_>>,
    index: u64,
    input_nanos: u64,
    target: u64,
) -> Result<TaskOut, Error> {
    let mut stats = vec![StageStat::default(); stages.len() + 1];
    stats[0] = StageStat { nanos: input_nanos, rows: batches.iter().map(|b| b.num_rows() as u64).sum() };
    let mut blocks = Vec::new();
    for (part, batch) in batches.into_iter().enumerate() {
        let ctx = StageCtx { index, part: part as u64 };
        let mut flow = Flow::Batch(batch);
        for (i, (name, apply)) in stages.iter_mut().enumerate() {
            let start = Instant::now();
            flow = apply(flow, &ctx).map_err(|e| in_stage(name, e))?;
            stats[i + 1].nanos += start.elapsed().as_nanos() as u64;
            stats[i + 1].rows += flow.num_rows() as u64;
        }
        let batch = match stages.last() {
            Some((name, _)) => flow.into_batch().map_err(|e| in_stage(name, e))?,
            None => flow.into_batch()?,
        };
        for piece in block::split_by_size(batch, target as usize) {
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

fn decoded(block: Vec<u8>) -> Result<(RecordBatch, u64), Error> {
    let start = Instant::now();
    let batch = block::decode(block)?;
    Ok((batch, start.elapsed().as_nanos() as u64))
}

/// Runs an actor pool's mapper over one block.
pub(crate) fn run_mapper(
    block: Vec<u8>,
    name: &str,
    batch_size: Option<u64>,
    index: u64,
    target: u64,
    mapper: &mut crate::pool::Mapper,
) -> Result<TaskOut, Error> {
    let (batch, nanos) = decoded(block)?;
    let size = batch_size.map(|s| s as usize);
    let apply: Apply<'_> =
        (name, Box::new(|f: Flow, _| Ok(Flow::Batch(crate::ops::in_batches(f.into_batch()?, size, &mut *mapper)?))));
    run_stages(vec![batch], vec![apply], index, nanos, target)
}

/// Reads, then runs the stages fused behind the read.
#[wray::remote]
pub(crate) fn read_task(read: Read, stages: Vec<Stage>, index: u64, target: u64) -> Result<TaskOut, Error> {
    let start = Instant::now();
    let batches = (read.code.get()?)(&read.arg, target as usize)?;
    run_stages(batches, coded(&stages)?, index, start.elapsed().as_nanos() as u64, target)
}

/// Runs fused stages over one block.
#[wray::remote]
pub(crate) fn map_task(block: Vec<u8>, stages: Vec<Stage>, index: u64, target: u64) -> Result<TaskOut, Error> {
    let (batch, nanos) = decoded(block)?;
    run_stages(vec![batch], coded(&stages)?, index, nanos, target)
}

/// The first half of an exchange: one block cut into `parts` blocks.
#[wray::remote]
pub(crate) fn partition_task(
    block: Vec<u8>,
    code: Code<PartitionFn>,
    arg: Vec<u8>,
    index: u64,
    parts: u64,
) -> Result<TaskOut, Error> {
    let start = Instant::now();
    let batch = block::decode(block)?;
    let rows = batch.num_rows() as u64;
    let pieces = (code.get()?)(batch, &StageCtx { index, part: 0 }, &arg, parts as usize)?;
    if pieces.len() != parts as usize {
        return Err(Error::InvalidArgument(format!("a partition gave {} parts for {parts}", pieces.len())));
    }
    let blocks = pieces.iter().map(block::put).collect::<Result<_, _>>()?;
    Ok(TaskOut { blocks, stages: vec![StageStat { nanos: start.elapsed().as_nanos() as u64, rows }] })
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
    let out = (code.get()?)(batches, &StageCtx { index, part: 0 }, &arg)?;
    let nanos = start.elapsed().as_nanos() as u64;
    let rows = out.num_rows() as u64;
    Ok(TaskOut { blocks: vec![block::put(&out)?], stages: vec![StageStat { nanos, rows }] })
}

/// A stream of blocks.
pub(crate) type BlockStream = Box<dyn Iterator<Item = Result<BlockRef, Error>>>;

/// Submits the next task of a stream, or says there is none.
pub(crate) type Submit = Box<dyn FnMut(u64) -> Option<Result<ObjectRef<TaskOut>, Error>>>;

/// What one execution of a plan shares: its statistics and its bounds,
/// read from the [`DataContext`] once.
#[derive(Clone)]
pub(crate) struct Exec {
    pub stats: Stats,
    /// Tasks each stream keeps running.
    pub in_flight: usize,
    /// Block size that tasks cut their outputs to.
    pub target: u64,
}

impl Exec {
    pub fn new(stats: Stats) -> Exec {
        let context = DataContext::current();
        Exec { stats, in_flight: context.in_flight(), target: context.target_block_bytes as u64 }
    }
}

/// Tasks in flight, at most `limit`, their blocks handed out in order.
pub(crate) struct TaskStream {
    submit: Submit,
    limit: usize,
    /// Told the number of tasks in flight (an actor pool grows on it).
    pub(crate) in_flight_gauge: Option<Rc<Cell<usize>>>,
    /// Called once every task has been submitted and its result taken
    /// (an actor pool lets its actors go then, not when the stream is
    /// dropped: the stages downstream may need the CPU slots they hold).
    pub(crate) on_done: Option<Box<dyn FnOnce()>>,
    next_index: u64,
    exhausted: bool,
    in_flight: VecDeque<ObjectRef<TaskOut>>,
    ready: VecDeque<BlockRef>,
    stats: Stats,
    /// The stats entries of the task's stages; `None` for an input side
    /// that is not an operator of its own (decoding a block).
    ops: Vec<Option<OpId>>,
    label: String,
    started: Instant,
}

impl TaskStream {
    pub fn new(submit: Submit, exec: &Exec, ops: Vec<Option<OpId>>, label: String) -> TaskStream {
        TaskStream {
            submit,
            limit: exec.in_flight,
            in_flight_gauge: None,
            on_done: None,
            next_index: 0,
            exhausted: false,
            in_flight: VecDeque::new(),
            ready: VecDeque::new(),
            stats: exec.stats.clone(),
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

    /// The head task's result, with the slot it frees refilled at once so
    /// that the pipeline stays full while the head is awaited.
    fn next_result(&mut self) -> Result<Option<TaskOut>, Error> {
        self.fill()?;
        let Some(head) = self.in_flight.pop_front() else { return Ok(None) };
        self.fill()?;
        let out = wray_guest_core::get(&head).map(Some).map_err(|e| failed(&self.label, e));
        if self.exhausted
            && self.in_flight.is_empty()
            && let Some(done) = self.on_done.take()
        {
            done();
        }
        out
    }
}

impl Iterator for TaskStream {
    type Item = Result<BlockRef, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(b) = self.ready.pop_front() {
                return Some(Ok(b));
            }
            match self.next_result() {
                Ok(Some(out)) => {
                    self.stats.record_task(&self.ops, &out, self.started);
                    self.ready.extend(out.blocks);
                }
                Ok(None) => return None,
                Err(e) => {
                    self.exhausted = true;
                    return Some(Err(e));
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

/// Runs one combine task per entry of `jobs` (the parts it joins and its
/// argument), at most `in_flight` at a time, blocks in order.
pub(crate) fn combine(
    jobs: Vec<(Vec<BlockRef>, Vec<u8>)>,
    code: Code<CombineFn>,
    exec: &Exec,
    op: &str,
) -> BlockStream {
    let mut jobs: VecDeque<_> = jobs.into();
    let submit: Submit = Box::new(move |index| {
        let (parts, arg) = jobs.pop_front()?;
        Some(Ok(combine_task::remote(parts, code, arg, index)))
    });
    Box::new(TaskStream::new(submit, exec, vec![Some(exec.stats.op(op))], op.to_string()))
}

/// The stream of a plan node's blocks.
pub(crate) fn stream(node: &Rc<Node>, exec: &Exec) -> Result<BlockStream, Error> {
    let target = exec.target;
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
            let mut names: Vec<String> = stages.iter().map(|s| s.name.clone()).collect();
            let read = match &*base {
                Node::Read { name, reads } => {
                    names.insert(0, name.clone());
                    Some(reads.iter().cloned().collect::<VecDeque<Read>>())
                }
                _ => None,
            };
            let mut ops: Vec<Option<OpId>> = names.iter().map(|n| Some(exec.stats.op(n))).collect();
            let submit: Submit = match read {
                Some(mut reads) => Box::new(move |index| {
                    let read = reads.pop_front()?;
                    Some(Ok(read_task::remote(read, stages.clone(), index, target)))
                }),
                None => {
                    ops.insert(0, None);
                    let mut upstream = stream(&base, exec)?;
                    Box::new(move |index| {
                        let block = match upstream.next()? {
                            Ok(b) => b,
                            Err(e) => return Some(Err(e)),
                        };
                        Some(Ok(map_task::remote(&block.object, stages.clone(), index, target)))
                    })
                }
            };
            Box::new(TaskStream::new(submit, exec, ops, names.join("->")))
        }
        Node::Blocks { blocks } => Box::new(blocks.clone().into_iter().map(Ok)),
        Node::Pool { input, pool } => crate::pool::stream(stream(input, exec)?, pool.clone(), exec)?,
        Node::Exchange { input, exchange } => {
            let (input, exchange, exec) = (input.clone(), exchange.clone(), exec.clone());
            lazy(move || run_exchange(stream(&input, &exec)?, &exchange, &exec))
        }
        Node::Barrier { input, barrier } => {
            let (input, barrier, exec) = (input.clone(), barrier.clone(), exec.clone());
            lazy(move || {
                let blocks = collect(stream(&input, &exec)?)?;
                stream(&replan(&barrier, blocks, &exec)?, &exec)
            })
        }
        Node::Limit { input, rows } => Box::new(LimitStream { input: Some(stream(input, exec)?), left: *rows }),
        Node::Union { inputs } => {
            let (inputs, exec) = (inputs.clone(), exec.clone());
            Box::new(inputs.into_iter().flat_map(move |i| match stream(&i, &exec) {
                Ok(s) => s,
                Err(e) => Box::new(std::iter::once(Err(e))),
            }))
        }
        Node::Repeat { input, times } => {
            let (input, exec) = (input.clone(), exec.clone());
            let epochs: Box<dyn Iterator<Item = u64>> = match times {
                Some(t) => Box::new(0..*t),
                None => Box::new(0..),
            };
            Box::new(epochs.flat_map(move |_| match stream(&input, &exec) {
                Ok(s) => s,
                Err(e) => Box::new(std::iter::once(Err(e))),
            }))
        }
    })
}
/// What a barrier makes of its materialised input: the rest of the plan.
fn replan(barrier: &Barrier, mut blocks: Vec<BlockRef>, exec: &Exec) -> Result<Rc<Node>, Error> {
    Ok(Rc::new(match barrier {
        Barrier::RandomizeBlockOrder { seed } => {
            wray_guest_core::Rng::new(*seed).shuffle(&mut blocks);
            Node::Blocks { blocks }
        }
        Barrier::Repartition { n } => {
            let total: u64 = blocks.iter().map(|b| b.rows).sum();
            let ranges = (0..*n).map(|i| (i * total / n, (i + 1) * total / n)).collect();
            Node::Blocks { blocks: collect(crate::exchange::contiguous(&blocks, ranges, exec))? }
        }
        Barrier::Sort { keys, descending } => {
            let exchange = crate::exchange::sort(&blocks, keys.clone(), *descending, exec)?;
            Node::Exchange { input: Rc::new(Node::Blocks { blocks }), exchange }
        }
    }))
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
fn run_exchange(input: BlockStream, exchange: &Exchange, exec: &Exec) -> Result<BlockStream, Error> {
    let (outputs, mut input): (usize, BlockStream) = match exchange.outputs {
        Outputs::Inputs => {
            let blocks = collect(input)?;
            (blocks.len(), Box::new(blocks.into_iter().map(Ok)))
        }
        Outputs::Fixed(n) => (n, input),
        Outputs::Parallelism => (exec.in_flight, input),
    };
    let outputs = outputs.max(1);
    // Map side, streamed over the input: each task returns exactly
    // `outputs` parts, in order.
    let (code, arg) = (exchange.partition, exchange.arg.clone());
    let submit: Submit = Box::new(move |index| {
        let b = match input.next()? {
            Ok(b) => b,
            Err(e) => return Some(Err(e)),
        };
        Some(Ok(partition_task::remote(&b.object, code, arg.clone(), index, outputs as u64)))
    });
    let op = Some(exec.stats.op(&format!("{} (partition)", exchange.name)));
    let parts = collect(Box::new(TaskStream::new(submit, exec, vec![op], exchange.name.clone())))?;
    // Reduce side, streamed: output j joins part j of every input.
    let jobs = (0..outputs)
        .map(|j| (parts.iter().skip(j).step_by(outputs).cloned().collect(), exchange.arg.clone()))
        .collect();
    Ok(combine(jobs, exchange.combine, exec, &exchange.name))
}
