//! Numeric parameters mapped to the unit interval, for model-based
//! searchers.

use super::space::{Config, Domain, Space, Value};
use wray_guest_core::Error;
use wray_guest_core::Rng;

/// How one parameter maps to `[0, 1]`.
#[derive(Clone, Debug)]
pub(crate) enum Axis {
    Linear {
        lo: f64,
        hi: f64,
        q: Option<f64>,
    },
    Log {
        lo: f64,
        hi: f64,
    },
    Int {
        lo: i64,
        hi: i64,
    },
    /// randn: mean ± 3 sd.
    Normal {
        mean: f64,
        sd: f64,
    },
    /// One of `n` values (TPE only).
    Categorical(Vec<Value>),
}

/// The searchable parameters of a space, in order, and how to rebuild a
/// whole config from a point.
#[derive(Clone)]
pub(crate) struct Encoder {
    pub(crate) axes: Vec<(String, Axis)>,
    space: Space,
}

impl Encoder {
    /// `categorical`: whether `choice` parameters are allowed.
    pub(crate) fn new(space: &Space, searcher: &str, categorical: bool) -> Result<Encoder, Error> {
        space.validate()?;
        let mut axes = Vec::new();
        for (p, d) in space.params() {
            let axis = match d {
                Domain::Uniform(lo, hi) => Axis::Linear { lo: *lo, hi: *hi, q: None },
                Domain::QUniform(lo, hi, q) => Axis::Linear { lo: *lo, hi: *hi, q: Some(*q) },
                Domain::LogUniform(lo, hi) => Axis::Log { lo: *lo, hi: *hi },
                Domain::RandInt(lo, hi) => Axis::Int { lo: *lo, hi: *hi },
                Domain::RandN(mean, sd) => Axis::Normal { mean: *mean, sd: *sd },
                Domain::Choice(v) if categorical => Axis::Categorical(v.clone()),
                Domain::Choice(_) | Domain::Grid(_) => {
                    return Err(Error::InvalidArgument(format!(
                        "search space parameter {p:?}: {searcher} searches numeric ranges only (uniform, quniform, loguniform, randint, randn){}",
                        if categorical { "" } else { " and choice" }
                    )));
                }
                Domain::Const(_) | Domain::SampleFrom(_) => continue,
            };
            axes.push((p.clone(), axis));
        }
        if axes.is_empty() {
            return Err(Error::InvalidArgument(format!("{searcher}: the search space has no parameter to search")));
        }
        Ok(Encoder { axes, space: space.clone() })
    }

    /// A config's point (categoricals as their index / count).
    pub(crate) fn encode(&self, config: &Config) -> Vec<f64> {
        self.axes
            .iter()
            .map(|(p, axis)| {
                let v = config.get(p);
                let x = v.and_then(Value::as_f64).unwrap_or(0.0);
                match axis {
                    Axis::Linear { lo, hi, .. } => (x - lo) / (hi - lo),
                    Axis::Log { lo, hi } => (x.max(*lo).ln() - lo.ln()) / (hi.ln() - lo.ln()),
                    Axis::Int { lo, hi } => (x - *lo as f64 + 0.5) / (hi - lo) as f64,
                    Axis::Normal { mean, sd } => ((x - mean) / (6.0 * sd) + 0.5).clamp(0.0, 1.0),
                    Axis::Categorical(values) => {
                        let i = values.iter().position(|c| Some(c) == v).unwrap_or(0);
                        (i as f64 + 0.5) / values.len() as f64
                    }
                }
                .clamp(0.0, 1.0)
            })
            .collect()
    }

    /// The config at a point; parameters that are not searched are drawn
    /// as the space says (constants, `sample_from`).
    pub(crate) fn decode(&self, point: &[f64], rng: &mut Rng) -> Config {
        let mut config = self.space.sample(&[], rng);
        for ((p, axis), &u) in self.axes.iter().zip(point) {
            let u = u.clamp(0.0, 1.0);
            let v = match axis {
                Axis::Linear { lo, hi, q } => {
                    let x = lo + u * (hi - lo);
                    Value::Float(match q {
                        Some(q) => ((x / q).round() * q).clamp(*lo, *hi),
                        None => x,
                    })
                }
                Axis::Log { lo, hi } => Value::Float((lo.ln() + u * (hi.ln() - lo.ln())).exp()),
                Axis::Int { lo, hi } => Value::Int((lo + (u * (hi - lo) as f64).floor() as i64).min(hi - 1)),
                Axis::Normal { mean, sd } => Value::Float(mean + (u - 0.5) * 6.0 * sd),
                Axis::Categorical(values) => values[((u * values.len() as f64) as usize).min(values.len() - 1)].clone(),
            };
            config.0.insert(p.clone(), v);
        }
        // A sample_from may depend on the searched values: evaluate again.
        for (p, d) in self.space.params() {
            if let Domain::SampleFrom(f) = d {
                let v = f(&config, rng);
                config.0.insert(p.clone(), v);
            }
        }
        config
    }
}

/// What every model-based searcher keeps: the space's encoding, the
/// configs to try first, the points it suggested, and the (point, signed
/// metric) pairs observed so far. The searcher supplies only how to choose
/// the next point.
pub(crate) struct Observations {
    name: &'static str,
    categorical: bool,
    pub(crate) points: Vec<Config>,
    pub(crate) encoder: Option<Encoder>,
    metric: String,
    mode: super::schedulers::Mode,
    pub(crate) rng: Rng,
    suggested: std::collections::HashMap<usize, Vec<f64>>,
    pub(crate) xs: Vec<Vec<f64>>,
    pub(crate) ys: Vec<f64>,
    made: usize,
}

impl Observations {
    /// For the searcher `name`; `categorical`: whether `choice` is allowed.
    pub(crate) fn new(name: &'static str, categorical: bool) -> Observations {
        Observations {
            name,
            categorical,
            points: Vec::new(),
            encoder: None,
            metric: String::new(),
            mode: super::schedulers::Mode::Max,
            rng: Rng::new(0),
            suggested: std::collections::HashMap::new(),
            xs: Vec::new(),
            ys: Vec::new(),
            made: 0,
        }
    }

    /// The searched dimensions (0 before the space is known).
    pub(crate) fn dims(&self) -> usize {
        self.encoder.as_ref().map_or(0, |e| e.axes.len())
    }

    /// A uniformly random point.
    pub(crate) fn random_point(&mut self) -> Vec<f64> {
        (0..self.dims()).map(|_| f64::from(self.rng.uniform())).collect()
    }

    pub(crate) fn set(
        &mut self,
        space: &Space,
        metric: &str,
        mode: super::schedulers::Mode,
        seed: u64,
    ) -> Result<(), Error> {
        self.encoder = Some(Encoder::new(space, self.name, self.categorical)?);
        self.metric = metric.into();
        self.mode = mode;
        self.rng = Rng::new(seed);
        Ok(())
    }

    /// The next config: a point to evaluate first, else `choose(self)`.
    pub(crate) fn suggest(
        &mut self,
        trial: usize,
        choose: impl FnOnce(&mut Observations) -> Vec<f64>,
    ) -> Option<Config> {
        let encoder = self.encoder.clone()?;
        let config = if self.made < self.points.len() {
            let mut c = encoder.decode(&vec![0.5; encoder.axes.len()], &mut self.rng);
            c.0.extend(self.points[self.made].0.clone());
            c
        } else {
            let x = choose(self);
            encoder.decode(&x, &mut self.rng)
        };
        self.made += 1;
        self.suggested.insert(trial, encoder.encode(&config));
        Some(config)
    }

    /// Records a finished trial's metric (failed trials teach nothing).
    pub(crate) fn complete(&mut self, trial: usize, result: Option<&super::Metrics>) {
        let Some(x) = self.suggested.remove(&trial) else { return };
        if let Some(y) = result.and_then(|r| r.get(&self.metric)).filter(|y| y.is_finite()) {
            self.xs.push(x);
            self.ys.push(self.mode.signed(*y));
        }
    }
}
