//! Quantile bins (XGBoost's `hist` method): each feature's values are cut
//! into at most [`MAX_BIN`] bins once, and trees are grown on bin indices.
//!
//! A feature with at most `max_bin` distinct values gets one bin per value
//! — the cuts are the values themselves, so splits are the exact greedy
//! ones, as XGBoost's sketch gives for such features. Otherwise the cuts are
//! quantiles of its values. Value `v` falls in the first bin whose cut is
//! greater than `v` (cuts end above the maximum), so a split after bin `b`
//! sends `v < cuts[b]` left — the threshold the trees keep.
//!
//! The cuts come from a [`Sketch`]: every row's values up to
//! [`SKETCH_ROWS`] rows, a sample of about that many beyond — so that
//! workers that each hold some of the rows sketch their own and the driver
//! merges the sketches into the cuts one process would compute.

use super::super::Matrix;
use serde::{Deserialize, Serialize};
use wray_guest_core::Error;

/// Rows the cuts are computed from, at most about: past it, a sample of
/// this many (LightGBM's `bin_construct_sample_cnt`, 200,000). Quantiles of
/// 200,000 values put 255 cuts within a fraction of a bin of the rows'
/// own, and sorting them costs a fifth of sorting a million.
pub const SKETCH_ROWS: u64 = 200_000;

/// Seeds the sample of a [`Sketch`] (fixed: the cuts do not depend on a
/// model's `random_state`).
const SKETCH_SEED: u64 = 0x5EED_0F5E_ED0F_C075;

/// What a feature's cuts are computed from: each feature's non-missing
/// values in the sampled rows. Whether a row is sampled is a hash of its
/// global number ([`sampled`]), so sketches of disjoint parts of the rows,
/// merged, hold exactly the values one sketch of all the rows holds — and,
/// since quantiles depend on the values and not their order, give the same
/// cuts, bit for bit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sketch {
    /// Per feature, the sampled rows' non-missing values: one ascending
    /// run per part merged in (by [`f32::total_cmp`]).
    pub values: Vec<Vec<f32>>,
}

impl Sketch {
    /// The sketch of `x`, global rows `first_row..` of a training set of
    /// `total_rows`.
    pub fn of(x: &Matrix, first_row: u64, total_rows: u64) -> Sketch {
        let share = SKETCH_ROWS as f64 / total_rows.max(1) as f64;
        let rows: Vec<usize> =
            (0..x.rows()).filter(|&r| share >= 1.0 || sampled(SKETCH_SEED, 0, first_row + r as u64, share)).collect();
        let values = (0..x.cols())
            .map(|f| {
                let mut v: Vec<f32> = rows.iter().map(|&r| x.get(r, f)).filter(|v| !v.is_nan()).collect();
                // Sorted where the rows are (each worker its own, at once);
                // merging sorted runs is then linear. Values equal under
                // `total_cmp` have the same bits, so an unstable sort
                // (faster) orders them as a stable one would.
                v.sort_unstable_by(f32::total_cmp);
                v
            })
            .collect();
        Sketch { values }
    }

    /// Adds the values of another part of the rows (sketched against the
    /// same total).
    pub fn merge(&mut self, other: Sketch) -> Result<(), Error> {
        if self.values.is_empty() {
            *self = other;
            return Ok(());
        }
        if other.values.len() != self.values.len() {
            return Err(Error::InvalidArgument(format!(
                "sketches of {} and {} features do not merge",
                self.values.len(),
                other.values.len()
            )));
        }
        for (mine, theirs) in self.values.iter_mut().zip(other.values) {
            mine.extend(theirs);
        }
        Ok(())
    }

    /// Every feature's cuts, at most `max_bin` bins each.
    pub fn cuts(mut self, max_bin: usize) -> Cuts {
        let max_bin = max_bin.clamp(1, MAX_BIN);
        let cuts = self
            .values
            .iter_mut()
            .map(|v| {
                // One sorted run per merged part: the stable sort finds the
                // runs and merges them in linear time.
                v.sort_by(f32::total_cmp);
                cuts_of(v, max_bin)
            })
            .collect();
        Cuts { cuts }
    }
}

/// Whether global row `row` is in the sample of `share` of the rows drawn
/// for `round` with `seed`: a hash of the row's number, not a draw from a
/// stream, so that the sample is the same however the rows are split
/// between workers.
pub(crate) fn sampled(seed: u64, round: usize, row: u64, share: f64) -> bool {
    let mut z = seed ^ (round as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ row.wrapping_mul(0xD1B5_4A32_D192_ED03);
    // splitmix64's finaliser.
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    ((z >> 11) as f64 / (1u64 << 53) as f64) < share
}

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
        let values =
            (0..x.cols()).map(|f| rows.iter().map(|&r| x.get(r, f)).filter(|v| !v.is_nan()).collect()).collect();
        Sketch { values }.cuts(max_bin)
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

    /// `x` as bin bytes, column-major: feature `f` of row `r` at
    /// `f * rows + r`.
    pub fn apply_by_column(&self, x: &Matrix) -> Vec<u8> {
        let rows = x.rows();
        let mut out = vec![0; rows * x.cols()];
        for r in 0..rows {
            for (f, v) in x.row(r).iter().enumerate() {
                out[f * rows + r] = self.bin(f, *v);
            }
        }
        out
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
    fn sketches_of_parts_merge_into_the_sketch_of_the_whole() {
        // More rows than SKETCH_ROWS, so that both sample.
        let rows = 450_000usize;
        let v: Vec<f32> = (0..rows * 2).map(|i| ((i * 7919) % 100_003) as f32 * 0.5).collect();
        let x = Matrix::new(v, 2).unwrap();
        let whole = Sketch::of(&x, 0, rows as u64);
        let n = whole.values[0].len() as f64;
        assert!((n - SKETCH_ROWS as f64).abs() < 0.01 * SKETCH_ROWS as f64, "{n} sampled rows");
        let mut merged = Sketch::default();
        for (start, end) in [(0, 100_000), (100_000, 333_333), (333_333, rows)] {
            let part: Vec<usize> = (start..end).collect();
            merged.merge(Sketch::of(&x.select(&part), start as u64, rows as u64)).unwrap();
        }
        let sorted = |s: &Sketch| {
            let mut s = s.clone();
            s.values.iter_mut().for_each(|v| v.sort_by(f32::total_cmp));
            s
        };
        assert_eq!(sorted(&merged), whole, "the same values");
        assert_eq!(merged.clone().cuts(256), whole.clone().cuts(256));
        let all: Vec<usize> = (0..rows).collect();
        let exact = Cuts::fit(&x, &all, 256);
        // The sample's quantiles fall near the exact ones.
        let approx = whole.cuts(256);
        assert_eq!(approx.bins(0), exact.bins(0));
        let span = 100_003.0 * 0.5;
        for (a, e) in approx.cuts[0].iter().zip(&exact.cuts[0]) {
            assert!((a - e).abs() < 0.01 * span, "{a} against {e}");
        }
        let odd = Sketch { values: vec![vec![1.0]] };
        assert!(merged.merge(odd).unwrap_err().to_string().contains("sketches of 2 and 1 features"));
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
