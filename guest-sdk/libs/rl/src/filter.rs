//! RLlib's `MeanStdFilter`: observations standardized by a running mean
//! and standard deviation that every runner updates with what it sees and
//! the learner merges, in runner order, once per iteration.

use serde::{Deserialize, Serialize};

/// Standardized observations are clipped to ±this (RLlib's default).
const CLIP: f64 = 10.0;

/// A running mean and variance per observation element (Welford's
/// algorithm; merged with Chan et al.'s parallel formula). `enabled: false`
/// is the identity (RLlib's `NoFilter`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ObsFilter {
    /// Whether observations are standardized.
    pub enabled: bool,
    /// Observations seen.
    pub count: u64,
    /// Their mean.
    pub mean: Vec<f64>,
    /// Sum of squared deviations from the mean.
    pub m2: Vec<f64>,
}

impl ObsFilter {
    /// A filter over `dim` elements that has seen nothing.
    pub fn new(enabled: bool, dim: usize) -> ObsFilter {
        ObsFilter { enabled, count: 0, mean: vec![0.0; dim], m2: vec![0.0; dim] }
    }

    /// An empty filter of the same shape (to collect a runner's new
    /// observations in).
    pub fn empty_like(&self) -> ObsFilter {
        ObsFilter::new(self.enabled, self.mean.len())
    }

    /// Counts `obs`.
    pub fn push(&mut self, obs: &[f32]) {
        if !self.enabled || obs.len() != self.mean.len() {
            return;
        }
        self.count += 1;
        let n = self.count as f64;
        for ((m, m2), x) in self.mean.iter_mut().zip(&mut self.m2).zip(obs) {
            let x = f64::from(*x);
            let delta = x - *m;
            *m += delta / n;
            *m2 += delta * (x - *m);
        }
    }

    /// Adds what `other` counted.
    pub fn merge(&mut self, other: &ObsFilter) {
        if other.count == 0 || other.mean.len() != self.mean.len() {
            return;
        }
        let (na, nb) = (self.count as f64, other.count as f64);
        let n = na + nb;
        for i in 0..self.mean.len() {
            let delta = other.mean[i] - self.mean[i];
            self.mean[i] += delta * nb / n;
            self.m2[i] += other.m2[i] + delta * delta * na * nb / n;
        }
        self.count += other.count;
    }

    /// `obs` standardized (in place).
    pub fn apply(&self, obs: &mut [f32]) {
        if !self.enabled || self.count < 2 || obs.len() != self.mean.len() {
            return;
        }
        let n = self.count as f64;
        for ((x, m), m2) in obs.iter_mut().zip(&self.mean).zip(&self.m2) {
            let std = (m2 / (n - 1.0)).sqrt();
            let z = if std > 1e-8 { (f64::from(*x) - m) / std } else { f64::from(*x) - m };
            *x = z.clamp(-CLIP, CLIP) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_filters_equal_one_that_saw_everything() {
        let rows: Vec<[f32; 2]> = (0..50).map(|i| [i as f32 * 0.3, (i * i % 7) as f32]).collect();
        let mut whole = ObsFilter::new(true, 2);
        rows.iter().for_each(|r| whole.push(r));
        let (mut a, mut b) = (ObsFilter::new(true, 2), ObsFilter::new(true, 2));
        rows[..17].iter().for_each(|r| a.push(r));
        rows[17..].iter().for_each(|r| b.push(r));
        a.merge(&b);
        assert_eq!(a.count, whole.count);
        for i in 0..2 {
            assert!((a.mean[i] - whole.mean[i]).abs() < 1e-9 && (a.m2[i] - whole.m2[i]).abs() < 1e-6);
        }
        let mut x = [3.0, 3.0];
        whole.apply(&mut x);
        let var0 = whole.m2[0] / 49.0;
        assert!((f64::from(x[0]) - (3.0 - whole.mean[0]) / var0.sqrt()).abs() < 1e-5);
        // Off, it is the identity.
        let mut y = [3.0, 3.0];
        ObsFilter::new(false, 2).apply(&mut y);
        assert_eq!(y, [3.0, 3.0]);
    }
}
