//! The tree-structured Parzen estimator (Bergstra et al.; HyperOpt's
//! `tpe.suggest`, which Ray's `HyperOptSearch` wraps): after some random
//! trials, split the results into the best few and the rest, model each
//! parameter's good and bad values with Parzen densities, and suggest the
//! candidate (drawn from the good density) with the best ratio good / bad.

use super::Metrics;
use super::encode::{Axis, Observations};
use super::schedulers::Mode;
use super::search::Searcher;
use super::space::{Config, Space};
use wray_guest_core::Error;
use wray_guest_core::Rng;

/// HyperOpt's defaults.
const GAMMA: f64 = 0.25;
const GAMMA_CAP: usize = 25;
const EI_CANDIDATES: usize = 24;

/// The TPE searcher.
pub struct TpeSearch {
    n_initial_points: usize,
    seen: Observations,
}

impl TpeSearch {
    /// TPE after `n_initial_points` random trials (Ray's default: 20).
    pub fn new(n_initial_points: usize) -> TpeSearch {
        TpeSearch { n_initial_points, seen: Observations::new("TpeSearch", true) }
    }

    /// Configs to evaluate first.
    pub fn points_to_evaluate(mut self, points: Vec<Config>) -> TpeSearch {
        self.seen.points = points;
        self
    }
}

/// A Parzen density over [0, 1]: a uniform prior plus a Gaussian at each
/// observation, its width the larger gap to its neighbours.
struct Parzen {
    mus: Vec<f64>,
    sigmas: Vec<f64>,
}

impl Parzen {
    fn new(values: &[f64]) -> Parzen {
        let mut mus = values.to_vec();
        mus.sort_by(f64::total_cmp);
        let n = mus.len();
        let min_sigma = 1.0 / (n as f64 + 1.0).min(100.0);
        let sigmas = (0..n)
            .map(|i| {
                let left = if i > 0 { mus[i] - mus[i - 1] } else { mus[i] };
                let right = if i + 1 < n { mus[i + 1] - mus[i] } else { 1.0 - mus[i] };
                left.max(right).clamp(min_sigma, 1.0)
            })
            .collect();
        Parzen { mus, sigmas }
    }

    fn weight(&self) -> f64 {
        1.0 / (self.mus.len() as f64 + 1.0)
    }

    fn pdf(&self, x: f64) -> f64 {
        let w = self.weight();
        let gauss: f64 = self
            .mus
            .iter()
            .zip(&self.sigmas)
            .map(|(m, s)| (-0.5 * ((x - m) / s).powi(2)).exp() / (s * (2.0 * std::f64::consts::PI).sqrt()))
            .sum();
        w * (1.0 + gauss)
    }

    fn sample(&self, rng: &mut Rng) -> f64 {
        let k = rng.below(self.mus.len() + 1);
        if k == self.mus.len() {
            return f64::from(rng.uniform());
        }
        (self.mus[k] + self.sigmas[k] * f64::from(rng.normal())).clamp(0.0, 1.0)
    }
}

/// Category frequencies with a pseudo-count of one each.
fn categorical(values: &[f64], k: usize) -> Vec<f64> {
    let mut counts = vec![1.0; k];
    for v in values {
        counts[((v * k as f64) as usize).min(k - 1)] += 1.0;
    }
    let total: f64 = counts.iter().sum();
    counts.iter().map(|c| c / total).collect()
}

/// Per parameter, the candidate (drawn from the good density) with the best
/// ratio good / bad, after `warmup` random points.
fn next_point(seen: &mut Observations, warmup: usize) -> Vec<f64> {
    if seen.ys.len() < warmup.max(1) {
        return seen.random_point();
    }
    let Some(encoder) = seen.encoder.clone() else { return Vec::new() };
    let mut order: Vec<usize> = (0..seen.ys.len()).collect();
    order.sort_by(|a, b| seen.ys[*b].total_cmp(&seen.ys[*a]));
    let n_good = ((GAMMA * (seen.ys.len() as f64).sqrt()).ceil() as usize).clamp(1, GAMMA_CAP);
    let (good, bad) = order.split_at(n_good);
    let mut point = Vec::with_capacity(encoder.axes.len());
    for (axis_i, (_, axis)) in encoder.axes.iter().enumerate() {
        let column = |ids: &[usize]| ids.iter().map(|&i| seen.xs[i][axis_i]).collect::<Vec<f64>>();
        let (g, b) = (column(good), column(bad));
        let best = if let Axis::Categorical(values) = axis {
            let (pg, pb) = (categorical(&g, values.len()), categorical(&b, values.len()));
            let k = (0..values.len()).max_by(|i, j| (pg[*i] / pb[*i]).total_cmp(&(pg[*j] / pb[*j]))).unwrap_or(0);
            (k as f64 + 0.5) / values.len() as f64
        } else {
            let (lg, lb) = (Parzen::new(&g), Parzen::new(&b));
            let mut top = (f64::MIN, 0.5);
            for _ in 0..EI_CANDIDATES {
                let x = lg.sample(&mut seen.rng);
                let score = lg.pdf(x).ln() - lb.pdf(x).ln();
                if score > top.0 {
                    top = (score, x);
                }
            }
            top.1
        };
        point.push(best);
    }
    point
}

impl Searcher for TpeSearch {
    fn set_search_properties(&mut self, space: &Space, metric: &str, mode: Mode, seed: u64) -> Result<(), Error> {
        self.seen.set(space, metric, mode, seed)
    }

    fn suggest(&mut self, trial: usize) -> Option<Config> {
        let warmup = self.n_initial_points;
        self.seen.suggest(trial, |seen| next_point(seen, warmup))
    }

    fn on_trial_complete(&mut self, trial: usize, result: Option<&Metrics>) {
        self.seen.complete(trial, result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{choice, loguniform, metrics, uniform};

    #[test]
    fn tpe_beats_random_search_on_a_bowl() {
        // Minimise (log10(lr) + 2)² + (m - 0.7)², plus a penalty unless act = "b".
        let space = Space::new()
            .with("lr", loguniform(1e-5, 1.0))
            .with("m", uniform(0.0, 1.0))
            .with("act", choice(["a", "b", "c"]));
        let f = |c: &Config| {
            (c.f64("lr").unwrap().log10() + 2.0).powi(2)
                + (c.f64("m").unwrap() - 0.7).powi(2)
                + if c.str("act").unwrap() == "b" { 0.0 } else { 1.0 }
        };
        let run = |n_initial: usize| {
            let mut s = TpeSearch::new(n_initial);
            s.set_search_properties(&space, "loss", Mode::Min, 5).unwrap();
            let mut best = f64::MAX;
            for t in 0..60 {
                let c = s.suggest(t).unwrap();
                let v = f(&c);
                best = best.min(v);
                s.on_trial_complete(t, Some(&metrics(&[("loss", v)])));
            }
            best
        };
        let (tpe, random) = (run(10), run(1000));
        assert!(tpe < 0.1, "tpe best {tpe}");
        assert!(tpe <= random, "tpe {tpe} vs random {random}");
    }
}
