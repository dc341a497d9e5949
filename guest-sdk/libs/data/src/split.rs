//! `streaming_split`: one run of a dataset shared by `n` consumers in other
//! tasks or actors. A coordinator actor runs the stream and hands each
//! consumer the next block when it asks — the fastest consumer takes the
//! most (Ray's `streaming_split(equal=False)`), or, with
//! [`StreamingSplit::equal`], blocks are held back so that every consumer
//! ends each epoch with the same rows ([`crate::equal`]). Blocks move from
//! the node that made them to the consumer that takes them, never through
//! the coordinator — except the few an equal split cuts at the end of an
//! epoch, which the coordinator reads, cuts and stores again.

use crate::batch::Batch;
use crate::block::{self, BlockRef, invalid};
use crate::dataset::{Dataset, IterBatches, batches};
use crate::equal::{Equalizer, Slice};
use crate::exec::{self, BlockStream, Exec};
use crate::ops::Row;
use crate::stats::Stats;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::time::Duration;
use wray_guest_core::{ActorHandle, Error};

/// How long a consumer that finished an epoch waits before asking again
/// whether every other consumer has finished it too.
const EPOCH_POLL: Duration = Duration::from_millis(10);

/// Consumers one split may have.
pub const MAX_SPLITS: usize = 1024;

/// How [`Dataset::streaming_split_with`] shares the stream (Ray's
/// `streaming_split` keyword arguments).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct StreamingSplit {
    /// Every consumer gets the same number of rows each epoch (Ray's
    /// `equal=True`): blocks are held back while handing one out could
    /// leave too little for the others, and at the end of the epoch what
    /// is held is cut to even the shares; fewer rows than consumers are
    /// dropped. Data-parallel training needs it — a rank with a batch more
    /// than the others waits at a collective for ever. Off: the consumer
    /// that asks gets the next block (the fastest takes the most).
    pub equal: bool,
}

/// An equal split's epoch: the blocks held back, then, once the stream has
/// ended, what each consumer still gets.
struct EqualEpoch {
    held: Equalizer<BlockRef>,
    rest: Option<Vec<VecDeque<Slice<BlockRef>>>>,
}

/// What a consumer's `next` gets.
#[derive(Serialize, Deserialize)]
pub(crate) enum Next {
    Block(BlockRef),
    /// This consumer's epoch is over.
    End,
    /// The next epoch waits for other consumers to finish this one.
    Wait,
}

/// Runs the shared stream.
#[wray::actor]
pub(crate) struct SplitCoordinator {
    dataset: Dataset,
    consumers: u32,
    /// The epoch running (0: none yet).
    epoch: u64,
    stream: Option<BlockStream>,
    /// Consumers that finished the epoch running.
    done: Vec<bool>,
    equal: bool,
    /// The epoch running, for an equal split.
    equal_epoch: Option<EqualEpoch>,
}

#[wray::actor]
impl SplitCoordinator {
    pub(crate) fn new(dataset: Dataset, consumers: u32, options: StreamingSplit) -> SplitCoordinator {
        SplitCoordinator {
            dataset,
            consumers,
            epoch: 0,
            stream: None,
            done: vec![true; consumers as usize],
            equal: options.equal,
            equal_epoch: None,
        }
    }

    pub(crate) fn next(&mut self, consumer: u32, epoch: u64) -> Result<Next, Error> {
        let i = consumer as usize;
        if i >= self.done.len() {
            return Err(invalid(format!("streaming_split: consumer {consumer} of {}", self.consumers)));
        }
        if epoch > self.epoch {
            if epoch != self.epoch + 1 {
                return Err(invalid(format!("streaming_split: epoch {epoch} asked while {} runs", self.epoch)));
            }
            if !self.done.iter().all(|d| *d) {
                return Ok(Next::Wait);
            }
            let run = Exec::new(Stats::new(false));
            self.stream = Some(exec::stream(self.dataset.node(), &run)?);
            self.epoch = epoch;
            self.done = vec![false; self.done.len()];
            if self.equal {
                self.equal_epoch = Some(EqualEpoch { held: Equalizer::new(self.done.len()), rest: None });
            }
        }
        if epoch < self.epoch || self.done[i] {
            return Ok(Next::End);
        }
        if self.equal {
            return self.next_equal(i);
        }
        match self.stream.as_mut().and_then(Iterator::next) {
            Some(Ok(b)) => Ok(Next::Block(b)),
            Some(Err(e)) => Err(e),
            None => {
                self.stream = None;
                self.done[i] = true;
                Ok(Next::End)
            }
        }
    }
}

impl SplitCoordinator {
    /// An equal split's `next` for consumer `i`: a held block it may take,
    /// else the next block of the stream held and tried again; once the
    /// stream has ended, its part of what was held.
    fn next_equal(&mut self, i: usize) -> Result<Next, Error> {
        let Some(run) = self.equal_epoch.as_mut() else {
            return Err(invalid("streaming_split: no epoch is running".into()));
        };
        loop {
            if let Some(rest) = run.rest.as_mut() {
                return match rest[i].pop_front() {
                    Some(slice) => Ok(Next::Block(cut(slice)?)),
                    None => {
                        self.done[i] = true;
                        Ok(Next::End)
                    }
                };
            }
            if let Some(block) = run.held.take(i) {
                return Ok(Next::Block(block));
            }
            match self.stream.as_mut().and_then(Iterator::next) {
                Some(Ok(b)) => {
                    let rows = b.rows;
                    run.held.hold(b, rows);
                }
                Some(Err(e)) => return Err(e),
                None => {
                    self.stream = None;
                    let held = std::mem::replace(&mut run.held, Equalizer::new(0));
                    run.rest = Some(held.finish().0);
                }
            }
        }
    }
}

/// A slice of a held block as a block of its own (the block itself when
/// the slice is whole).
fn cut(slice: Slice<BlockRef>) -> Result<BlockRef, Error> {
    if slice.whole {
        return Ok(slice.block);
    }
    let batch = block::fetch(&slice.block)?;
    block::put(&batch.slice(slice.offset as usize, slice.len as usize))
}

/// One consumer's share of a [`Dataset::streaming_split`]: iterate it once
/// per epoch.
#[derive(Clone, Serialize, Deserialize)]
pub struct DataIterator {
    coordinator: ActorHandle<SplitCoordinator>,
    index: u32,
    /// The last epoch this consumer started.
    epoch: u64,
}

impl DataIterator {
    /// This consumer's number, `0..n`.
    pub fn index(&self) -> usize {
        self.index as usize
    }

    /// The blocks of the next epoch, as this consumer takes them.
    pub fn iter_blocks(&mut self) -> impl Iterator<Item = Result<Batch, Error>> + use<> {
        self.epoch += 1;
        let (coordinator, index, epoch) = (self.coordinator.clone(), self.index, self.epoch);
        let mut over = false;
        std::iter::from_fn(move || {
            while !over {
                match wray_guest_core::get(&coordinator.next(index, epoch)) {
                    Ok(Next::Block(b)) => return Some(block::fetch(&b).map(Batch)),
                    Ok(Next::Wait) => std::thread::sleep(EPOCH_POLL),
                    Ok(Next::End) => over = true,
                    Err(e) => {
                        over = true;
                        return Some(Err(e));
                    }
                }
            }
            None
        })
    }

    /// Batches of at most `batch_size` rows of the next epoch, as
    /// [`Dataset::iter_batches`] cuts them.
    pub fn iter_batches(&mut self, batch_size: usize) -> impl Iterator<Item = Result<Batch, Error>> + use<> {
        self.iter_batches_with(IterBatches::new(batch_size))
    }

    /// Batches of the next epoch, cut and shuffled as `options` say (as
    /// [`Dataset::iter_batches_with`]).
    pub fn iter_batches_with(&mut self, options: IterBatches) -> impl Iterator<Item = Result<Batch, Error>> + use<> {
        batches(self.iter_blocks(), options)
    }

    /// Rows of the next epoch, as `T`.
    pub fn iter_rows<T: Row>(&mut self) -> impl Iterator<Item = Result<T, Error>> + use<T> {
        self.iter_blocks().flat_map(|b| {
            let rows: Vec<Result<T, Error>> = match b.and_then(|b| b.rows::<T>()) {
                Ok(rows) => rows.into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            };
            rows
        })
    }
}

pub(crate) fn streaming_split(
    dataset: &Dataset,
    n: usize,
    options: StreamingSplit,
) -> Result<Vec<DataIterator>, Error> {
    if n == 0 || n > MAX_SPLITS {
        return Err(invalid(format!("streaming_split: {n} consumers (1 to {MAX_SPLITS})")));
    }
    // The coordinator only hands out refs: it holds no CPU slot, which the
    // stream's tasks need.
    let coordinator = SplitCoordinator::options().num_cpus(0.0).try_remote(dataset.clone(), n as u32, options)?;
    Ok((0..n as u32).map(|index| DataIterator { coordinator: coordinator.clone(), index, epoch: 0 }).collect())
}
