//! Search algorithms: what config the next trial gets.

use super::Metrics;
use super::schedulers::Mode;
use super::space::{Config, Space};
use wray_guest_core::Error;
use wray_guest_core::Rng;

/// Suggests configs and learns from results. `suggest` returning `None`
/// means the search is over.
pub trait Searcher {
    /// The experiment's space, metric, mode and seed, before any
    /// suggestion; a searcher that cannot search the space says why here.
    fn set_search_properties(&mut self, _space: &Space, _metric: &str, _mode: Mode, _seed: u64) -> Result<(), Error> {
        Ok(())
    }
    /// The config for trial `trial` (numbered from 0), or `None` when no
    /// more trials should start.
    fn suggest(&mut self, trial: usize) -> Option<Config>;
    /// A trial finished with its last result (`None`: it failed).
    fn on_trial_complete(&mut self, _trial: usize, _result: Option<&Metrics>) {}
}

/// Random search and grid search (Ray's `BasicVariantGenerator`): every
/// combination of the `grid_search` parameters, `num_samples` times, the
/// other parameters drawn at random; `points_to_evaluate` first.
pub struct BasicVariantGenerator {
    space: Space,
    grid: Vec<Vec<(String, super::space::Value)>>,
    points: Vec<Config>,
    total: usize,
    made: usize,
    rng: Rng,
}

impl BasicVariantGenerator {
    /// `num_samples` passes over the grid of `space`, drawn from `seed`.
    pub fn new(space: Space, num_samples: usize, seed: u64) -> BasicVariantGenerator {
        let grid = space.grid();
        let total = grid.len() * num_samples;
        BasicVariantGenerator { space, grid, points: Vec::new(), total, made: 0, rng: Rng::new(seed) }
    }

    /// Configs to try first (each counts as a trial).
    pub fn points_to_evaluate(mut self, points: Vec<Config>) -> BasicVariantGenerator {
        self.total += points.len();
        self.points = points;
        self
    }

    /// How many trials the search makes.
    pub fn total(&self) -> usize {
        self.total
    }
}

impl Searcher for BasicVariantGenerator {
    fn suggest(&mut self, _trial: usize) -> Option<Config> {
        if self.made >= self.total {
            return None;
        }
        let i = self.made;
        self.made += 1;
        if i < self.points.len() {
            // A point may fix only some parameters: the rest are sampled.
            let mut c = self.space.sample(&[], &mut self.rng);
            c.0.extend(self.points[i].0.clone());
            return Some(c);
        }
        let k = i - self.points.len();
        let combo = &self.grid[k % self.grid.len()];
        Some(self.space.sample(combo, &mut self.rng))
    }
}
