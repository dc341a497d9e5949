//! Quantile bins (XGBoost's `hist` method): each feature's values are cut
//! into at most [`MAX_BIN`] bins once, and trees are grown on bin indices.
//!
//! A feature with at most `max_bin` distinct values gets one bin per value
//! — the cuts are the values themselves, so splits are the exact greedy
//! ones, as XGBoost's sketch gives for such features. Otherwise the cuts are
//! quantiles of its values. Value `v` falls in the first bin whose cut is
//! greater than `v` (cuts end above the maximum), so a split after bin `b`
//! sends `v < cuts[b]` left — the threshold the trees keep.

use super::super::Matrix;
use serde::{Deserialize, Serialize};

/// Bins per feature, at most: bin indices are bytes, and byte 0 marks a
/// missing value, so real bins are 1..=255. (XGBoost's default `max_bin` is
/// 256; a larger request is treated as 255.)
pub const MAX_BIN: usize = 255;

/// Every feature's cuts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Cuts {
    /// Per feature, ascending: bin `b` (from 0) holds values below
    /// `cuts[f][b]` and at or above `cuts[f][b - 1]`.
    pub cuts: Vec<Vec<f32>>,
}

impl Cuts {
    /// Cuts from the non-missing values of each column of `x` (rows in
    /// `rows` only).
    pub fn fit(x: &Matrix, rows: &[usize], max_bin: usize) -> Cuts {
        let max_bin = max_bin.clamp(1, MAX_BIN);
        let cuts = (0..x.cols())
            .map(|f| {
                let mut v: Vec<f32> = rows.iter().map(|&r| x.get(r, f)).filter(|v| !v.is_nan()).collect();
                v.sort_by(f32::total_cmp);
                cuts_of(&v, max_bin)
            })
            .collect();
        Cuts { cuts }
    }

    /// Bins of feature `f` (real ones; a missing value has its own).
    pub fn bins(&self, f: usize) -> usize {
        self.cuts[f].len()
    }

    /// The bin byte of `v` in feature `f`: 0 when missing, else 1 + its bin.
    pub fn bin(&self, f: usize, v: f32) -> u8 {
        if v.is_nan() {
            return 0;
        }
        let c = &self.cuts[f];
        // First cut greater than v; values above every cut join the last bin.
        let b = c.partition_point(|cut| *cut <= v).min(c.len().saturating_sub(1));
        (b + 1) as u8
    }

    /// `x` as bin bytes, row-major.
    pub fn apply(&self, x: &Matrix) -> Vec<u8> {
        let mut out = Vec::with_capacity(x.rows() * x.cols());
        for r in 0..x.rows() {
            for (f, v) in x.row(r).iter().enumerate() {
                out.push(self.bin(f, *v));
            }
        }
        out
    }
}

/// Cuts of one feature's sorted values.
fn cuts_of(sorted: &[f32], max_bin: usize) -> Vec<f32> {
    let Some(&max) = sorted.last() else {
        // No value at all: one bin, which only missing values reach.
        return vec![0.0];
    };
    let mut unique: Vec<f32> = Vec::new();
    for &v in sorted {
        if unique.last() != Some(&v) {
            unique.push(v);
        }
    }
    let mut cuts: Vec<f32> = if unique.len() <= max_bin {
        unique[1..].to_vec()
    } else {
        // Quantiles: the value at each j/max_bin of the rows, deduplicated.
        let n = sorted.len();
        let mut c: Vec<f32> = (1..max_bin).map(|j| sorted[j * n / max_bin]).collect();
        c.dedup();
        c.retain(|v| *v > sorted[0]);
        c
    };
    // The last cut lies above the maximum, so the maximum has a bin below it.
    cuts.push(max + max.abs() * 1e-5 + 1e-5);
    cuts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_distinct_values_get_a_bin_each() {
        let x = Matrix::new(vec![3.0, 1.0, 2.0, 2.0, f32::NAN], 1).unwrap();
        let cuts = Cuts::fit(&x, &[0, 1, 2, 3, 4], 256);
        assert_eq!(cuts.bins(0), 3);
        let bins: Vec<u8> = [1.0, 2.0, 3.0, f32::NAN, 0.5, 9.0].iter().map(|v| cuts.bin(0, *v)).collect();
        // Below the minimum joins the first bin, above the maximum the last.
        assert_eq!(bins, [1, 2, 3, 0, 1, 3]);
    }

    #[test]
    fn many_values_get_quantile_bins() {
        let v: Vec<f32> = (0..10_000).map(|i| i as f32).collect();
        let x = Matrix::new(v, 1).unwrap();
        let rows: Vec<usize> = (0..10_000).collect();
        let cuts = Cuts::fit(&x, &rows, 100);
        assert_eq!(cuts.bins(0), 100);
        let counts = x_counts(&cuts, &x);
        assert!(counts.iter().all(|c| *c == 100), "{counts:?}");
    }

    fn x_counts(cuts: &Cuts, x: &Matrix) -> Vec<usize> {
        let mut counts = vec![0; cuts.bins(0)];
        for b in cuts.apply(x) {
            counts[b as usize - 1] += 1;
        }
        counts
    }
}
