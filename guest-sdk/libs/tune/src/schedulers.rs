//! Trial schedulers: after each result, whether a trial goes on, pauses or
//! stops. Pure bookkeeping, no I/O.

use super::Metrics;
use std::collections::{BTreeMap, HashMap};

/// What a scheduler decides about a trial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Run another step.
    Continue,
    /// Stop for now (checkpointed, actor released) until the scheduler
    /// resumes it.
    Pause,
    /// Stop for good.
    Stop,
    /// Restart from another trial's checkpoint with a new config (Population
    /// Based Training's exploit/explore); the tuner asks
    /// [`TrialScheduler::take_exploit`] for both.
    Exploit,
}

/// Whether larger or smaller is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Larger is better.
    Max,
    /// Smaller is better.
    Min,
}

impl Mode {
    /// Parses `"max"` or `"min"`.
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "max" => Some(Mode::Max),
            "min" => Some(Mode::Min),
            _ => None,
        }
    }

    /// `x` with the sign that makes larger better.
    pub fn signed(self, x: f64) -> f64 {
        match self {
            Mode::Max => x,
            Mode::Min => -x,
        }
    }
}

/// Decides, result by result, which trials go on.
pub trait TrialScheduler {
    /// The metric and mode of the experiment (set by the tuner when the
    /// scheduler was built without them).
    fn set_objective(&mut self, _metric: &str, _mode: Mode) {}
    /// A trial was added with its config.
    fn on_trial_add(&mut self, _trial: usize, _config: &super::Config) {}
    /// A trial reported `result`.
    fn on_result(&mut self, trial: usize, result: &Metrics) -> Decision;
    /// A trial ended (finished, stopped or failed).
    fn on_trial_complete(&mut self, _trial: usize) {}
    /// No more trials will be added.
    fn on_no_more_trials(&mut self) {}
    /// Paused trials to resume or stop now.
    fn take_actions(&mut self) -> Vec<(usize, Decision)> {
        Vec::new()
    }
    /// After [`Decision::Exploit`]: the trial whose checkpoint to start
    /// from and the new config.
    fn take_exploit(&mut self, _trial: usize) -> Option<(usize, super::Config)> {
        None
    }
    /// A name for the status table.
    fn name(&self) -> &'static str;
}

/// Runs every trial to its end (Ray's `FIFOScheduler`).
#[derive(Default)]
pub struct Fifo;

impl TrialScheduler for Fifo {
    fn on_result(&mut self, _trial: usize, _result: &Metrics) -> Decision {
        Decision::Continue
    }
    fn name(&self) -> &'static str {
        "FIFO"
    }
}

/// numpy's `percentile` with linear interpolation.
fn percentile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (values.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    Some(values[lo] + (values[hi] - values[lo]) * (pos - lo as f64))
}

/// Asynchronous successive halving (Ray's `ASHAScheduler` /
/// `AsyncHyperBandScheduler`): at each rung (`grace_period ·
/// reduction_factor^k` iterations) a trial continues only if its result is in
/// the top `1 / reduction_factor` of the results recorded at that rung so far.
pub struct Asha {
    time_attr: String,
    metric: Option<String>,
    mode: Mode,
    max_t: f64,
    reduction_factor: f64,
    /// Per bracket: rungs from the highest milestone down, each with the
    /// results recorded there.
    brackets: Vec<Vec<(f64, HashMap<usize, f64>)>>,
    bracket_of: HashMap<usize, usize>,
    next_bracket: usize,
}

impl Asha {
    /// ASHA over `training_iteration` with Ray's defaults: `max_t` 100,
    /// grace period 1, reduction factor 4, one bracket.
    pub fn new() -> Asha {
        Asha::with(100.0, 1.0, 4.0, 1)
    }

    /// ASHA with its parameters; `brackets > 1` is asynchronous HyperBand.
    pub fn with(max_t: f64, grace_period: f64, reduction_factor: f64, brackets: usize) -> Asha {
        let rf = reduction_factor.max(1.000_001);
        let brackets = (0..brackets.max(1))
            .map(|s| {
                let mut rungs = Vec::new();
                let mut k = 0;
                loop {
                    let milestone = grace_period.max(1e-9) * rf.powi(k + s as i32);
                    if milestone >= max_t {
                        break;
                    }
                    rungs.push((milestone, HashMap::new()));
                    k += 1;
                }
                rungs.reverse();
                rungs
            })
            .collect();
        Asha {
            time_attr: "training_iteration".into(),
            metric: None,
            mode: Mode::Max,
            max_t,
            reduction_factor: rf,
            brackets,
            bracket_of: HashMap::new(),
            next_bracket: 0,
        }
    }

    /// The metric and mode (else the experiment's).
    pub fn objective(mut self, metric: &str, mode: Mode) -> Asha {
        self.metric = Some(metric.into());
        self.mode = mode;
        self
    }

    /// Counts time in this result attribute instead of `training_iteration`.
    pub fn time_attr(mut self, attr: &str) -> Asha {
        self.time_attr = attr.into();
        self
    }

    /// The rungs' milestones of bracket 0, lowest first.
    pub fn milestones(&self) -> Vec<f64> {
        self.brackets[0].iter().rev().map(|(m, _)| *m).collect()
    }
}

impl Default for Asha {
    fn default() -> Asha {
        Asha::new()
    }
}

impl TrialScheduler for Asha {
    fn set_objective(&mut self, metric: &str, mode: Mode) {
        if self.metric.is_none() {
            self.metric = Some(metric.into());
            self.mode = mode;
        }
    }

    fn on_trial_add(&mut self, trial: usize, _config: &super::Config) {
        self.bracket_of.insert(trial, self.next_bracket);
        self.next_bracket = (self.next_bracket + 1) % self.brackets.len();
    }

    fn on_result(&mut self, trial: usize, result: &Metrics) -> Decision {
        let Some(t) = result.get(&self.time_attr).copied() else { return Decision::Continue };
        if t >= self.max_t {
            return Decision::Stop;
        }
        let Some(value) = self.metric.as_ref().and_then(|m| result.get(m)).copied() else {
            return Decision::Continue;
        };
        let value = self.mode.signed(value);
        let q = 1.0 - 1.0 / self.reduction_factor;
        let bracket = *self.bracket_of.entry(trial).or_insert(0);
        for (milestone, recorded) in &mut self.brackets[bracket] {
            if t < *milestone || recorded.contains_key(&trial) {
                continue;
            }
            let mut seen: Vec<f64> = recorded.values().copied().collect();
            let cutoff = percentile(&mut seen, q);
            recorded.insert(trial, value);
            if cutoff.is_some_and(|c| value < c) {
                return Decision::Stop;
            }
            break;
        }
        Decision::Continue
    }

    fn name(&self) -> &'static str {
        if self.brackets.len() > 1 { "AsyncHyperBand" } else { "ASHA" }
    }
}

/// Synchronous HyperBand (Li et al.; Ray's `HyperBandScheduler`): trials
/// fill brackets of decreasing size; in a bracket every trial runs to the
/// rung's milestone and pauses; when all have arrived, the top
/// `1 / eta` resume to the next milestone and the rest stop.
pub struct HyperBand {
    metric: Option<String>,
    mode: Mode,
    max_t: f64,
    eta: f64,
    s_max: u32,
    brackets: Vec<Bracket>,
    bracket_of: HashMap<usize, usize>,
    actions: Vec<(usize, Decision)>,
}

struct Bracket {
    capacity: usize,
    /// The current rung's milestone.
    milestone: f64,
    /// Trials still in the bracket, with their result at the milestone once
    /// they have reached it.
    live: BTreeMap<usize, Option<f64>>,
    added: usize,
    full: bool,
}

impl HyperBand {
    /// HyperBand over `training_iteration` up to `max_t` with reduction
    /// factor `eta` (Ray's default 3).
    pub fn new(max_t: f64, eta: f64) -> HyperBand {
        let eta = eta.max(2.0);
        let s_max = (max_t.max(1.0).ln() / eta.ln()).floor() as u32;
        HyperBand {
            metric: None,
            mode: Mode::Max,
            max_t,
            eta,
            s_max,
            brackets: Vec::new(),
            bracket_of: HashMap::new(),
            actions: Vec::new(),
        }
    }

    fn open_bracket(&mut self) -> usize {
        let s = self.s_max - (self.brackets.len() as u32 % (self.s_max + 1));
        let n = ((f64::from(self.s_max + 1) / f64::from(s + 1)) * self.eta.powi(s as i32)).ceil() as usize;
        let r = (self.max_t * self.eta.powi(-(s as i32))).max(1.0);
        self.brackets.push(Bracket {
            capacity: n.max(1),
            milestone: r.round(),
            live: BTreeMap::new(),
            added: 0,
            full: false,
        });
        self.brackets.len() - 1
    }

    /// Halves a bracket whose live trials have all reached its milestone.
    fn advance(&mut self, b: usize) {
        let eta = self.eta;
        let max_t = self.max_t;
        let bracket = &mut self.brackets[b];
        if !bracket.full || bracket.live.is_empty() || bracket.live.values().any(Option::is_none) {
            return;
        }
        let mut ranked: Vec<(usize, f64)> = bracket.live.iter().map(|(t, v)| (*t, v.unwrap_or(f64::MIN))).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let keep = ((ranked.len() as f64) / eta).floor().max(1.0) as usize;
        for (i, (trial, _)) in ranked.iter().enumerate() {
            if i < keep && bracket.milestone < max_t {
                self.actions.push((*trial, Decision::Continue));
            } else {
                self.actions.push((*trial, Decision::Stop));
                bracket.live.remove(trial);
            }
        }
        for v in bracket.live.values_mut() {
            *v = None;
        }
        bracket.milestone = (bracket.milestone * eta).min(max_t).round();
    }
}

impl TrialScheduler for HyperBand {
    fn set_objective(&mut self, metric: &str, mode: Mode) {
        if self.metric.is_none() {
            self.metric = Some(metric.into());
            self.mode = mode;
        }
    }

    fn on_trial_add(&mut self, trial: usize, _config: &super::Config) {
        let b = match self.brackets.iter().rposition(|b| !b.full) {
            Some(b) => b,
            None => self.open_bracket(),
        };
        let bracket = &mut self.brackets[b];
        bracket.live.insert(trial, None);
        // Counted by trials added, not live: early ones may be gone already.
        bracket.added += 1;
        bracket.full = bracket.added >= bracket.capacity;
        self.bracket_of.insert(trial, b);
    }

    fn on_result(&mut self, trial: usize, result: &Metrics) -> Decision {
        let Some(&b) = self.bracket_of.get(&trial) else { return Decision::Continue };
        let t = result.get("training_iteration").copied().unwrap_or(0.0);
        if t >= self.max_t {
            return Decision::Stop;
        }
        let value = self.metric.as_ref().and_then(|m| result.get(m)).map_or(f64::MIN, |v| self.mode.signed(*v));
        let milestone = self.brackets[b].milestone;
        if t < milestone {
            return Decision::Continue;
        }
        self.brackets[b].live.insert(trial, Some(value));
        self.advance(b);
        // If the halving decided this trial's fate already, act on it now.
        if let Some(i) = self.actions.iter().position(|(t, _)| *t == trial) {
            return self.actions.remove(i).1;
        }
        Decision::Pause
    }

    fn on_trial_complete(&mut self, trial: usize) {
        if let Some(&b) = self.bracket_of.get(&trial) {
            self.brackets[b].live.remove(&trial);
            self.advance(b);
        }
    }

    fn on_no_more_trials(&mut self) {
        for b in 0..self.brackets.len() {
            if !self.brackets[b].full {
                self.brackets[b].full = true;
                self.advance(b);
            }
        }
    }

    fn take_actions(&mut self) -> Vec<(usize, Decision)> {
        std::mem::take(&mut self.actions)
    }

    fn name(&self) -> &'static str {
        "HyperBand"
    }
}

/// Ray's `MedianStoppingRule`: after `grace_period` iterations, stop a trial
/// whose best result so far is worse than the median of the other trials'
/// running means at the same point.
pub struct MedianStopping {
    metric: Option<String>,
    mode: Mode,
    grace_period: f64,
    min_samples: usize,
    /// Per trial: (iteration, signed value) in order.
    history: HashMap<usize, Vec<(f64, f64)>>,
}

impl MedianStopping {
    /// With Ray's defaults: grace period 60 iterations, 3 other trials.
    pub fn new(grace_period: f64, min_samples: usize) -> MedianStopping {
        MedianStopping { metric: None, mode: Mode::Max, grace_period, min_samples, history: HashMap::new() }
    }
}

impl TrialScheduler for MedianStopping {
    fn set_objective(&mut self, metric: &str, mode: Mode) {
        if self.metric.is_none() {
            self.metric = Some(metric.into());
            self.mode = mode;
        }
    }

    fn on_result(&mut self, trial: usize, result: &Metrics) -> Decision {
        let t = result.get("training_iteration").copied().unwrap_or(0.0);
        let Some(v) = self.metric.as_ref().and_then(|m| result.get(m)).copied() else { return Decision::Continue };
        let v = self.mode.signed(v);
        self.history.entry(trial).or_default().push((t, v));
        if t < self.grace_period {
            return Decision::Continue;
        }
        let best = self.history[&trial].iter().map(|(_, v)| *v).fold(f64::MIN, f64::max);
        let mut means: Vec<f64> = self
            .history
            .iter()
            .filter(|(k, _)| **k != trial)
            .filter_map(|(_, h)| {
                let upto: Vec<f64> = h.iter().filter(|(i, _)| *i <= t).map(|(_, v)| *v).collect();
                (!upto.is_empty()).then(|| upto.iter().sum::<f64>() / upto.len() as f64)
            })
            .collect();
        if means.len() < self.min_samples {
            return Decision::Continue;
        }
        let median = percentile(&mut means, 0.5).unwrap_or(f64::MIN);
        if best < median { Decision::Stop } else { Decision::Continue }
    }

    fn name(&self) -> &'static str {
        "MedianStopping"
    }
}

/// Population Based Training (Jaderberg et al.; Ray's `PopulationBasedTraining`):
/// every `perturbation_interval` iterations, a trial in the bottom quantile
/// takes the checkpoint of a trial in the top quantile (exploit) and a
/// perturbed copy of its config (explore: each mutated parameter resampled
/// with `resample_probability`, else scaled by 0.8 or 1.2, or moved to a
/// neighbouring choice).
pub struct Pbt {
    metric: Option<String>,
    mode: Mode,
    interval: f64,
    mutations: super::Space,
    quantile: f64,
    resample_probability: f64,
    rng: wray_guest_core::Rng,
    configs: HashMap<usize, super::Config>,
    last: HashMap<usize, f64>,
    exploits: HashMap<usize, (usize, super::Config)>,
    /// Exploits so far.
    pub exploits_made: usize,
}

impl Pbt {
    /// PBT perturbing the parameters of `mutations` every
    /// `perturbation_interval` iterations (Ray's defaults: quantile 0.25,
    /// resample probability 0.25).
    pub fn new(perturbation_interval: f64, mutations: super::Space, seed: u64) -> Pbt {
        Pbt {
            metric: None,
            mode: Mode::Max,
            interval: perturbation_interval.max(1.0),
            mutations,
            quantile: 0.25,
            resample_probability: 0.25,
            rng: wray_guest_core::Rng::new(seed),
            configs: HashMap::new(),
            last: HashMap::new(),
            exploits: HashMap::new(),
            exploits_made: 0,
        }
    }

    /// The share of trials in the bottom (and top) group (default 0.25).
    pub fn quantile_fraction(mut self, q: f64) -> Pbt {
        self.quantile = q.clamp(0.0, 0.5);
        self
    }

    /// How often a mutated parameter is drawn anew rather than perturbed
    /// (default 0.25).
    pub fn resample_probability(mut self, p: f64) -> Pbt {
        self.resample_probability = p.clamp(0.0, 1.0);
        self
    }

    fn explore(&mut self, config: &super::Config) -> super::Config {
        use super::space::{Domain, Value};
        let mut out = config.clone();
        let fresh = self.mutations.sample(&[], &mut self.rng);
        for (p, d) in self.mutations.params() {
            let resample = f64::from(self.rng.uniform()) < self.resample_probability;
            let old = out.get(p).cloned();
            let v = match (d, old) {
                (_, None) => fresh.get(p).cloned(),
                _ if resample => fresh.get(p).cloned(),
                (Domain::Choice(values) | Domain::Grid(values), Some(v)) => {
                    let i = values.iter().position(|x| *x == v).unwrap_or(0) as i64;
                    let j = (i + if self.rng.uniform() < 0.5 { -1 } else { 1 }).clamp(0, values.len() as i64 - 1);
                    Some(values[j as usize].clone())
                }
                (_, Some(Value::Float(x))) => Some(Value::Float(x * if self.rng.uniform() < 0.5 { 0.8 } else { 1.2 })),
                (_, Some(Value::Int(x))) => {
                    Some(Value::Int((x as f64 * if self.rng.uniform() < 0.5 { 0.8 } else { 1.2 }).round() as i64))
                }
                (_, Some(v)) => Some(v),
            };
            if let Some(v) = v {
                out.0.insert(p.clone(), v);
            }
        }
        out
    }
}

impl TrialScheduler for Pbt {
    fn set_objective(&mut self, metric: &str, mode: Mode) {
        if self.metric.is_none() {
            self.metric = Some(metric.into());
            self.mode = mode;
        }
    }

    fn on_trial_add(&mut self, trial: usize, config: &super::Config) {
        self.configs.insert(trial, config.clone());
    }

    fn on_result(&mut self, trial: usize, result: &Metrics) -> Decision {
        let t = result.get("training_iteration").copied().unwrap_or(0.0);
        let Some(v) = self.metric.as_ref().and_then(|m| result.get(m)).copied() else { return Decision::Continue };
        self.last.insert(trial, self.mode.signed(v));
        if t < self.interval || (t % self.interval) != 0.0 || self.last.len() < 2 {
            return Decision::Continue;
        }
        let mut ranked: Vec<(usize, f64)> = self.last.iter().map(|(k, v)| (*k, *v)).collect();
        ranked.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        let n = ((ranked.len() as f64) * self.quantile).ceil().max(1.0) as usize;
        let n = n.min(ranked.len() / 2).max(1);
        let bottom: Vec<usize> = ranked[..n].iter().map(|(k, _)| *k).collect();
        let top: Vec<usize> = ranked[ranked.len() - n..].iter().map(|(k, _)| *k).collect();
        if !bottom.contains(&trial) || top.contains(&trial) {
            return Decision::Continue;
        }
        let donor = top[self.rng.below(top.len())];
        let base = self.configs.get(&donor).cloned().unwrap_or_default();
        let config = self.explore(&base);
        self.configs.insert(trial, config.clone());
        self.exploits.insert(trial, (donor, config));
        self.exploits_made += 1;
        Decision::Exploit
    }

    fn on_trial_complete(&mut self, trial: usize) {
        self.last.remove(&trial);
    }

    fn take_exploit(&mut self, trial: usize) -> Option<(usize, super::Config)> {
        self.exploits.remove(&trial)
    }

    fn name(&self) -> &'static str {
        "PopulationBasedTraining"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics;

    /// Drives a scheduler as the tuner does — `concurrency` trials at a
    /// time, paused trials resumed when the scheduler says so — over
    /// `n` trials whose score at step t is `w·sqrt(t) + b`; returns each
    /// trial's iterations.
    fn simulate(s: &mut dyn TrialScheduler, n: usize, concurrency: usize, max_t: usize) -> Vec<usize> {
        s.set_objective("score", Mode::Min);
        let value = |i: usize, t: usize| ((i * 7919) % 101) as f64 / 100.0 * (t as f64).sqrt() + ((i * 31) % 17) as f64;
        let mut iters = vec![0usize; n];
        let mut state = vec![Status::Pending; n];
        let mut added = 0;
        let mut running: Vec<usize> = Vec::new();
        #[derive(Clone, Copy, PartialEq)]
        enum Status {
            Pending,
            Running,
            Paused,
            Done,
        }
        for _round in 0..100_000 {
            for (id, d) in s.take_actions() {
                if state[id] == Status::Paused {
                    state[id] = if d == Decision::Continue { Status::Pending } else { Status::Done };
                }
            }
            while running.len() < concurrency {
                if let Some(i) = (0..added).find(|&i| state[i] == Status::Pending) {
                    state[i] = Status::Running;
                    running.push(i);
                } else if added < n {
                    s.on_trial_add(added, &crate::Config::default());
                    state[added] = Status::Running;
                    running.push(added);
                    added += 1;
                    if added == n {
                        s.on_no_more_trials();
                    }
                } else {
                    break;
                }
            }
            if running.is_empty() {
                if state.iter().all(|s| *s == Status::Done) {
                    return iters;
                }
                s.on_no_more_trials();
                continue;
            }
            let i = running.remove(0);
            iters[i] += 1;
            let r = metrics(&[("score", value(i, iters[i])), ("training_iteration", iters[i] as f64)]);
            let d = if iters[i] >= max_t { Decision::Stop } else { s.on_result(i, &r) };
            match d {
                Decision::Continue => running.push(i),
                Decision::Pause | Decision::Exploit => state[i] = Status::Paused,
                Decision::Stop => {
                    state[i] = Status::Done;
                    s.on_trial_complete(i);
                }
            }
        }
        panic!("the simulation did not finish: {state_count} trials left", state_count = state.len());
    }

    #[test]
    fn hyperband_halves_each_bracket() {
        let mut hb = HyperBand::new(30.0, 3.0);
        let iters = simulate(&mut hb, 200, 2, 30);
        let full = iters.iter().filter(|&&i| i >= 30).count();
        let total: usize = iters.iter().sum();
        // Cycles of 49 trials (brackets of 27, 12, 6 and 4), ~8 run to the
        // end per cycle.
        assert!(full <= 40, "{full} of 200 ran to the end: {iters:?}");
        assert!(total < 200 * 30 / 3, "{total} iterations: {iters:?}");
    }

    #[test]
    fn asha_stops_most_trials_at_the_first_rung() {
        let mut asha = Asha::with(30.0, 1.0, 3.0, 1);
        assert_eq!(asha.milestones(), vec![1.0, 3.0, 9.0, 27.0]);
        let iters = simulate(&mut asha, 200, 2, 30);
        let first_rung = iters.iter().filter(|&&i| i == 1).count();
        assert!(first_rung > 100, "{first_rung} stopped at the first rung: {iters:?}");
    }

    #[test]
    fn median_stopping_and_fifo() {
        let iters = simulate(&mut Fifo, 20, 2, 30);
        assert!(iters.iter().all(|&i| i == 30));
        let iters = simulate(&mut MedianStopping::new(5.0, 3), 20, 4, 30);
        assert!(iters.iter().any(|&i| i < 30) && iters.contains(&30), "{iters:?}");
    }

    #[test]
    fn percentile_is_numpys() {
        assert_eq!(percentile(&mut [1.0, 2.0, 3.0, 4.0], 0.5), Some(2.5));
        assert!((percentile(&mut [3.0, 1.0, 2.0], 2.0 / 3.0).unwrap() - (2.0 + 1.0 / 3.0)).abs() < 1e-12);
        assert_eq!(percentile(&mut [], 0.5), None);
    }
}

#[cfg(test)]
mod pbt_tests {
    use super::*;
    use crate::{Config, Space, metrics, uniform};

    #[test]
    fn pbt_copies_the_best_and_perturbs_it() {
        let mut pbt = Pbt::new(2.0, Space::new().with("lr", uniform(0.0, 1.0)), 1).resample_probability(0.0);
        pbt.set_objective("score", Mode::Max);
        for i in 0..4 {
            let mut c = Config::default();
            c.set("lr", 0.1 * (i + 1) as f64);
            pbt.on_trial_add(i, &c);
        }
        let r = |t: f64, v: f64| metrics(&[("training_iteration", t), ("score", v)]);
        for i in 0..4 {
            assert_eq!(pbt.on_result(i, &r(1.0, i as f64)), Decision::Continue);
        }
        // At the interval, the worst trial exploits the best.
        assert_eq!(pbt.on_result(3, &r(2.0, 3.0)), Decision::Continue);
        assert_eq!(pbt.on_result(0, &r(2.0, 0.0)), Decision::Exploit);
        let (donor, config) = pbt.take_exploit(0).unwrap();
        assert_eq!(donor, 3);
        let lr = config.f64("lr").unwrap();
        // The donor's lr (0.4), perturbed by 0.8 or 1.2.
        assert!((lr - 0.32).abs() < 1e-9 || (lr - 0.48).abs() < 1e-9, "{lr}");
        assert_eq!(pbt.exploits_made, 1);
    }
}
