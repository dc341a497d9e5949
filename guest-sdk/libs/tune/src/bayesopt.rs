//! Bayesian optimisation with a Gaussian process (as Ray's
//! `BayesOptSearch`, which wraps the `bayes_opt` package): a Matérn-5/2 GP
//! over the unit cube, fitted to the results so far, and the upper
//! confidence bound `μ + κσ` maximised over random candidates.

use super::Metrics;
use super::encode::Observations;
use super::schedulers::Mode;
use super::search::Searcher;
use super::space::{Config, Space};
use wray_guest_core::Error;

/// Candidates scored per suggestion: random ones over the cube, and as many
/// again around the best point so far.
const CANDIDATES: usize = 2000;

/// Length scales tried when fitting the GP (by marginal likelihood).
const LENGTH_SCALES: [f64; 7] = [0.05, 0.1, 0.2, 0.35, 0.5, 0.8, 1.2];

/// The Gaussian-process searcher.
pub struct BayesOptSearch {
    random_search_steps: usize,
    kappa: f64,
    seen: Observations,
}

impl BayesOptSearch {
    /// A searcher that samples `random_search_steps` configs at random
    /// before following the GP (Ray's default: 10), with κ = 2.576.
    pub fn new(random_search_steps: usize) -> BayesOptSearch {
        BayesOptSearch { random_search_steps, kappa: 2.576, seen: Observations::new("BayesOptSearch", false) }
    }

    /// Configs to evaluate first.
    pub fn points_to_evaluate(mut self, points: Vec<Config>) -> BayesOptSearch {
        self.seen.points = points;
        self
    }

    /// The exploration weight of the upper confidence bound.
    pub fn kappa(mut self, kappa: f64) -> BayesOptSearch {
        self.kappa = kappa;
        self
    }
}

/// The point maximising the upper confidence bound `μ + κσ` of a GP fitted
/// to what was seen, after `warmup` random points.
fn next_point(seen: &mut Observations, warmup: usize, kappa: f64) -> Vec<f64> {
    if seen.ys.len() < warmup.max(1) {
        return seen.random_point();
    }
    let gp = Gp::fit(&seen.xs, &seen.ys);
    let best = seen.xs[seen.ys.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i)].clone();
    let mut top = (f64::MIN, seen.random_point());
    for i in 0..2 * CANDIDATES {
        let x = if i < CANDIDATES {
            seen.random_point()
        } else {
            best.iter().map(|b| (b + 0.05 * f64::from(seen.rng.normal())).clamp(0.0, 1.0)).collect()
        };
        let (mu, sigma) = gp.predict(&x);
        let ucb = mu + kappa * sigma;
        if ucb > top.0 {
            top = (ucb, x);
        }
    }
    top.1
}

impl Searcher for BayesOptSearch {
    fn set_search_properties(&mut self, space: &Space, metric: &str, mode: Mode, seed: u64) -> Result<(), Error> {
        self.seen.set(space, metric, mode, seed)
    }

    fn suggest(&mut self, trial: usize) -> Option<Config> {
        let (warmup, kappa) = (self.random_search_steps, self.kappa);
        self.seen.suggest(trial, |seen| next_point(seen, warmup, kappa))
    }

    fn on_trial_complete(&mut self, trial: usize, result: Option<&Metrics>) {
        self.seen.complete(trial, result);
    }
}

/// A zero-mean GP on normalised targets.
struct Gp {
    xs: Vec<Vec<f64>>,
    length: f64,
    /// Cholesky factor of K + noise.
    l: Vec<Vec<f64>>,
    alpha: Vec<f64>,
    mean: f64,
    std: f64,
}

fn matern52(a: &[f64], b: &[f64], length: f64) -> f64 {
    let r = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt() / length;
    let s = 5f64.sqrt() * r;
    (1.0 + s + s * s / 3.0) * (-s).exp()
}

/// Lower Cholesky factor of a symmetric positive-definite matrix.
fn cholesky(k: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = k.len();
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|p| l[i][p] * l[j][p]).sum();
            if i == j {
                let d = k[i][i] - s;
                if d <= 0.0 {
                    return None;
                }
                l[i][j] = d.sqrt();
            } else {
                l[i][j] = (k[i][j] - s) / l[j][j];
            }
        }
    }
    Some(l)
}

/// Solves `L z = b` (forward substitution).
fn forward(l: &[Vec<f64>], b: &[f64]) -> Vec<f64> {
    let mut z = vec![0.0; b.len()];
    for i in 0..b.len() {
        z[i] = (b[i] - (0..i).map(|p| l[i][p] * z[p]).sum::<f64>()) / l[i][i];
    }
    z
}

/// Solves `Lᵀ x = z` (back substitution).
fn backward(l: &[Vec<f64>], z: &[f64]) -> Vec<f64> {
    let n = z.len();
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        x[i] = (z[i] - (i + 1..n).map(|p| l[p][i] * x[p]).sum::<f64>()) / l[i][i];
    }
    x
}

impl Gp {
    /// Fits the GP, choosing the length scale with the best marginal
    /// likelihood.
    fn fit(xs: &[Vec<f64>], ys: &[f64]) -> Gp {
        let n = ys.len() as f64;
        let mean = ys.iter().sum::<f64>() / n;
        let std = (ys.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / n).sqrt();
        let std = if std > 1e-12 { std } else { 1.0 };
        let y: Vec<f64> = ys.iter().map(|v| (v - mean) / std).collect();
        let mut best: Option<(f64, Gp)> = None;
        for &length in &LENGTH_SCALES {
            let k: Vec<Vec<f64>> = xs
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    xs.iter()
                        .enumerate()
                        .map(|(j, b)| matern52(a, b, length) + if i == j { 1e-6 } else { 0.0 })
                        .collect()
                })
                .collect();
            let Some(l) = cholesky(&k) else { continue };
            let alpha = backward(&l, &forward(&l, &y));
            let fit = -0.5 * y.iter().zip(&alpha).map(|(a, b)| a * b).sum::<f64>()
                - (0..l.len()).map(|i| l[i][i].ln()).sum::<f64>();
            if best.as_ref().is_none_or(|(f, _)| fit > *f) {
                best = Some((fit, Gp { xs: xs.to_vec(), length, l, alpha, mean, std }));
            }
        }
        best.map(|(_, g)| g).unwrap_or(Gp { xs: Vec::new(), length: 0.2, l: Vec::new(), alpha: Vec::new(), mean, std })
    }

    /// Mean and standard deviation at `x`, in the targets' units.
    fn predict(&self, x: &[f64]) -> (f64, f64) {
        if self.xs.is_empty() {
            return (self.mean, self.std);
        }
        let k: Vec<f64> = self.xs.iter().map(|a| matern52(a, x, self.length)).collect();
        let mu = k.iter().zip(&self.alpha).map(|(a, b)| a * b).sum::<f64>();
        let v = forward(&self.l, &k);
        let var = (1.0 - v.iter().map(|a| a * a).sum::<f64>()).max(1e-12);
        (self.mean + self.std * mu, self.std * var.sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{metrics, uniform};

    #[test]
    fn the_gp_interpolates_and_the_search_converges() {
        let xs = vec![vec![0.1], vec![0.5], vec![0.9]];
        let gp = Gp::fit(&xs, &[1.0, 3.0, 2.0]);
        let (mu, sigma) = gp.predict(&[0.5]);
        assert!((mu - 3.0).abs() < 1e-3 && sigma < 1e-2, "{mu} {sigma}");
        assert!(gp.predict(&[0.3]).1 > sigma);
        // Maximise -(x - 0.3)² - (y + 0.2)²: near (0.3, -0.2) within 40 trials.
        let space = Space::new().with("x", uniform(-1.0, 1.0)).with("y", uniform(-1.0, 1.0));
        let mut s = BayesOptSearch::new(4);
        s.set_search_properties(&space, "v", Mode::Max, 1).unwrap();
        let mut best = f64::MIN;
        for t in 0..40 {
            let c = s.suggest(t).unwrap();
            let v = -(c.f64("x").unwrap() - 0.3).powi(2) - (c.f64("y").unwrap() + 0.2).powi(2);
            best = best.max(v);
            s.on_trial_complete(t, Some(&metrics(&[("v", v)])));
        }
        assert!(best > -0.01, "best {best}");
    }

    #[test]
    fn only_numeric_spaces() {
        let space = Space::new().with("act", crate::choice(["a", "b"]));
        let e = BayesOptSearch::new(4).set_search_properties(&space, "v", Mode::Max, 0).unwrap_err();
        assert!(e.to_string().contains("\"act\": BayesOptSearch searches numeric ranges only"), "{e}");
    }
}
