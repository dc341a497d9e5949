//! When trials, or the whole experiment, stop.

use super::Metrics;

/// Decides when a trial or the experiment is done.
pub trait Stopper {
    /// Whether trial `trial` should stop after `result`.
    fn stop_trial(&mut self, trial: usize, result: &Metrics) -> bool;
    /// Whether every trial should stop now.
    fn stop_all(&mut self) -> bool {
        false
    }
}

/// Ray's dict-style `stop={"training_iteration": 10, "mean_accuracy": 0.95}`:
/// a trial stops once any listed metric reaches its value.
pub struct Criteria(pub Vec<(String, f64)>);

impl Criteria {
    /// Stops at `metric >= value` for each pair.
    pub fn new(pairs: &[(&str, f64)]) -> Criteria {
        Criteria(pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect())
    }
}

impl Stopper for Criteria {
    fn stop_trial(&mut self, _trial: usize, result: &Metrics) -> bool {
        self.0.iter().any(|(k, v)| result.get(k).is_some_and(|x| x >= v))
    }
}

/// A stop function `(trial_id, result) -> bool`.
pub struct StopFn<F: FnMut(usize, &Metrics) -> bool>(pub F);

impl<F: FnMut(usize, &Metrics) -> bool> Stopper for StopFn<F> {
    fn stop_trial(&mut self, trial: usize, result: &Metrics) -> bool {
        (self.0)(trial, result)
    }
}
