//! Ray's `streaming_split(equal=True)` rule, as pure logic: blocks are held
//! back and handed to a consumer only while the blocks still held can bring
//! every other consumer level with it; when the stream ends, what is held
//! is cut so that every consumer ends the epoch with the same rows (fewer
//! than `n` rows are dropped). Data-parallel trainers need this: a rank
//! with one batch more than another waits at a collective for ever.

use std::collections::VecDeque;

/// A part of a held block: `len` rows from `offset`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Slice<B> {
    pub block: B,
    pub offset: u64,
    pub len: u64,
    /// Whether it is the whole block (no cut needed).
    pub whole: bool,
}

/// One epoch's bookkeeping.
pub(crate) struct Equalizer<B> {
    /// Rows handed to each consumer.
    taken: Vec<u64>,
    held: VecDeque<(B, u64)>,
    held_rows: u64,
}

impl<B: Clone> Equalizer<B> {
    pub fn new(consumers: usize) -> Equalizer<B> {
        Equalizer { taken: vec![0; consumers], held: VecDeque::new(), held_rows: 0 }
    }

    /// Holds a block of `rows` rows from the stream.
    pub fn hold(&mut self, block: B, rows: u64) {
        self.held.push_back((block, rows));
        self.held_rows += rows;
    }

    /// Whether giving `rows` more to `consumer` leaves enough held to bring
    /// every consumer up to the new largest share (Ray's
    /// `_can_safely_dispatch`).
    fn safe(&self, consumer: usize, rows: u64) -> bool {
        let after = |j: usize| self.taken[j] + if j == consumer { rows } else { 0 };
        let most = (0..self.taken.len()).map(after).max().unwrap_or(0);
        let needed: u64 = (0..self.taken.len()).map(|j| most - after(j)).sum();
        self.held_rows - rows >= needed
    }

    /// The first held block `consumer` may take now, if any.
    pub fn take(&mut self, consumer: usize) -> Option<B> {
        let at = self.held.iter().position(|(_, rows)| self.safe(consumer, *rows))?;
        let (block, rows) = self.held.remove(at)?;
        self.held_rows -= rows;
        self.taken[consumer] += rows;
        Some(block)
    }

    /// The stream ended: what each consumer still gets so that all have the
    /// same rows, and how many rows are dropped (fewer than the consumers).
    pub fn finish(mut self) -> (Vec<VecDeque<Slice<B>>>, u64) {
        let n = self.taken.len() as u64;
        let total = self.held_rows + self.taken.iter().sum::<u64>();
        let share = total / n;
        let mut plan = vec![VecDeque::new(); self.taken.len()];
        let mut front: Option<(B, u64, u64)> = None; // block, rows, next offset
        for (j, slices) in plan.iter_mut().enumerate() {
            let mut need = share - self.taken[j];
            while need > 0 {
                let (block, rows, offset) = match front.take() {
                    Some(f) => f,
                    None => match self.held.pop_front() {
                        Some((b, r)) => (b, r, 0),
                        // Unreachable while every dispatch was safe.
                        None => break,
                    },
                };
                let len = need.min(rows - offset);
                if len > 0 {
                    slices.push_back(Slice { block: block.clone(), offset, len, whole: offset == 0 && len == rows });
                }
                need -= len;
                if offset + len < rows {
                    front = Some((block, rows, offset + len));
                }
            }
        }
        (plan, total - share * n)
    }
}

#[cfg(test)]
mod tests {
    use super::Equalizer;
    use wray_guest_core::Rng;

    /// Consumers asking in a random order for blocks of random sizes (the
    /// stream pulled only when no held block is safe to give): every epoch
    /// ends with equal shares, fewer than `n` rows dropped, and every row
    /// of the stream handed out once or dropped.
    #[test]
    fn every_consumer_ends_with_the_same_rows() {
        for seed in 0..500u64 {
            let mut rng = Rng::new(seed);
            let n = 1 + rng.below(5);
            let blocks: Vec<u64> = (0..rng.below(30)).map(|_| rng.below(100) as u64).collect();
            let mut stream = blocks.iter().enumerate().map(|(id, rows)| (id, *rows));
            let mut eq = Equalizer::new(n);
            let mut got = vec![Vec::<(usize, u64, u64)>::new(); n];
            let finished = loop {
                let i = rng.below(n);
                match eq.take(i) {
                    Some(id) => got[i].push((id, 0, blocks[id])),
                    None => match stream.next() {
                        Some((id, rows)) => eq.hold(id, rows),
                        None => break eq.finish(),
                    },
                }
            };
            let (plan, dropped) = finished;
            for (i, slices) in plan.into_iter().enumerate() {
                for s in slices {
                    assert!(s.len > 0 && s.offset + s.len <= blocks[s.block], "seed {seed}");
                    assert_eq!(s.whole, s.offset == 0 && s.len == blocks[s.block]);
                    got[i].push((s.block, s.offset, s.len));
                }
            }
            let shares: Vec<u64> = got.iter().map(|g| g.iter().map(|(_, _, len)| len).sum()).collect();
            let total: u64 = blocks.iter().sum();
            assert!(shares.iter().all(|s| *s == shares[0]), "seed {seed}: {shares:?}");
            assert!(dropped < n as u64 && shares[0] * n as u64 + dropped == total, "seed {seed}");
            // No row twice: per block, the pieces handed out do not overlap.
            let mut pieces: Vec<(usize, u64, u64)> = got.concat();
            pieces.sort();
            for w in pieces.windows(2) {
                assert!(w[0].0 != w[1].0 || w[0].1 + w[0].2 <= w[1].1, "seed {seed}: {w:?}");
            }
        }
    }

    #[test]
    fn a_consumer_ahead_waits_for_the_others() {
        let mut eq = Equalizer::new(2);
        eq.hold("a", 10);
        // Consumer 0 may not take 10 rows with nothing left to give 1.
        assert_eq!(eq.take(0), None);
        eq.hold("b", 10);
        assert_eq!(eq.take(0), Some("a"));
        assert_eq!(eq.take(0), None);
        assert_eq!(eq.take(1), Some("b"));
        eq.hold("c", 5);
        let (plan, dropped) = eq.finish();
        assert_eq!((plan[0].len(), plan[1].len(), dropped), (1, 1, 1));
        assert_eq!((plan[0][0].offset, plan[0][0].len, plan[1][0].offset, plan[1][0].len), (0, 2, 2, 2));
    }
}
