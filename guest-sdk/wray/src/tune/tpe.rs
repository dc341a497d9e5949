//! The tree-structured Parzen estimator (Bergstra et al.; HyperOpt's
//! `tpe.suggest`, which Ray's `HyperOptSearch` wraps): after some random
//! trials, split the results into the best few and the rest, model each
//! parameter's good and bad values with Parzen densities, and suggest the
//! candidate (drawn from the good density) with the best ratio good / bad.

use super::Metrics;
use super::encode::{Axis, Encoder};
use super::schedulers::Mode;
use super::search::Searcher;
use super::space::{Config, Space};
use crate::error::Error;
use crate::nn::Rng;
use std::collections::HashMap;

/// HyperOpt's defaults.
const GAMMA: f64 = 0.25;
const GAMMA_CAP: usize = 25;
const EI_CANDIDATES: usize = 24;

/// The TPE searcher.
pub struct TpeSearch {
    n_initial_points: usize,
    points: Vec<Config>,
    encoder: Option<Encoder>,
    metric: String,
    mode: Mode,
    rng: Rng,
    suggested: HashMap<usize, Vec<f64>>,
    xs: Vec<Vec<f64>>,
    ys: Vec<f64>,
    made: usize,
}

impl TpeSearch {
    /// TPE after `n_initial_points` random trials (Ray's default: 20).
    pub fn new(n_initial_points: usize) -> TpeSearch {
        TpeSearch {
            n_initial_points,
            points: Vec::new(),
            encoder: None,
            metric: String::new(),
            mode: Mode::Max,
            rng: Rng::new(0),
            suggested: HashMap::new(),
            xs: Vec::new(),
            ys: Vec::new(),
            made: 0,
        }
    }

    /// Configs to evaluate first.
    pub fn points_to_evaluate(mut self, points: Vec<Config>) -> TpeSearch {
        self.points = points;
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

impl TpeSearch {
    fn next_point(&mut self) -> Vec<f64> {
        let Some(encoder) = &self.encoder else { return Vec::new() };
        let d = encoder.axes.len();
        if self.ys.len() < self.n_initial_points.max(1) {
            return (0..d).map(|_| f64::from(self.rng.uniform())).collect();
        }
        let mut order: Vec<usize> = (0..self.ys.len()).collect();
        order.sort_by(|a, b| self.ys[*b].total_cmp(&self.ys[*a]));
        let n_good = ((GAMMA * (self.ys.len() as f64).sqrt()).ceil() as usize).clamp(1, GAMMA_CAP);
        let (good, bad) = order.split_at(n_good);
        let mut point = Vec::with_capacity(d);
        for (axis_i, (_, axis)) in encoder.axes.iter().enumerate() {
            let column = |ids: &[usize]| ids.iter().map(|&i| self.xs[i][axis_i]).collect::<Vec<f64>>();
            let (g, b) = (column(good), column(bad));
            let best = if let Axis::Categorical(values) = axis {
                let (pg, pb) = (categorical(&g, values.len()), categorical(&b, values.len()));
                let k = (0..values.len()).max_by(|i, j| (pg[*i] / pb[*i]).total_cmp(&(pg[*j] / pb[*j]))).unwrap_or(0);
                (k as f64 + 0.5) / values.len() as f64
            } else {
                let (lg, lb) = (Parzen::new(&g), Parzen::new(&b));
                let mut top = (f64::MIN, 0.5);
                for _ in 0..EI_CANDIDATES {
                    let x = lg.sample(&mut self.rng);
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
}

impl Searcher for TpeSearch {
    fn set_search_properties(&mut self, space: &Space, metric: &str, mode: Mode, seed: u64) -> Result<(), Error> {
        self.encoder = Some(Encoder::new(space, "TpeSearch", true)?);
        self.metric = metric.into();
        self.mode = mode;
        self.rng = Rng::new(seed);
        Ok(())
    }

    fn suggest(&mut self, trial: usize) -> Option<Config> {
        let encoder = self.encoder.clone()?;
        let config = if self.made < self.points.len() {
            let mut c = encoder.decode(&vec![0.5; encoder.axes.len()], &mut self.rng);
            c.0.extend(self.points[self.made].0.clone());
            c
        } else {
            let x = self.next_point();
            encoder.decode(&x, &mut self.rng)
        };
        self.made += 1;
        self.suggested.insert(trial, encoder.encode(&config));
        Some(config)
    }

    fn on_trial_complete(&mut self, trial: usize, result: Option<&Metrics>) {
        let Some(x) = self.suggested.remove(&trial) else { return };
        if let Some(y) = result.and_then(|r| r.get(&self.metric)).filter(|y| y.is_finite()) {
            self.xs.push(x);
            self.ys.push(self.mode.signed(*y));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::{choice, loguniform, metrics, uniform};

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
