//! Search spaces: configs, the domains their values are drawn from, and
//! the grid a `grid_search` spans.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;
use wray_guest_core::Error;
use wray_guest_core::Rng;

/// A config value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// A float.
    Float(f64),
    /// An integer.
    Int(i64),
    /// A string.
    Str(String),
    /// A boolean.
    Bool(bool),
}

impl Value {
    /// The value as a float (integers convert; others are `None`).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Float(x) => write!(f, "{x:.6}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) => f.write_str(s),
            Value::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl From<f64> for Value {
    fn from(x: f64) -> Value {
        Value::Float(x)
    }
}
impl From<i64> for Value {
    fn from(x: i64) -> Value {
        Value::Int(x)
    }
}
impl From<i32> for Value {
    fn from(x: i32) -> Value {
        Value::Int(x.into())
    }
}
impl From<&str> for Value {
    fn from(x: &str) -> Value {
        Value::Str(x.into())
    }
}
impl From<bool> for Value {
    fn from(x: bool) -> Value {
        Value::Bool(x)
    }
}

/// One trial's configuration: parameter paths (`"model/lr"` for nested
/// configs) and their values.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Config(pub BTreeMap<String, Value>);

impl Config {
    /// The value at `path`.
    pub fn get(&self, path: &str) -> Option<&Value> {
        self.0.get(path)
    }

    /// The value at `path` as a float; an error names a missing or
    /// non-numeric parameter.
    pub fn f64(&self, path: &str) -> Result<f64, Error> {
        self.get(path)
            .and_then(Value::as_f64)
            .ok_or_else(|| Error::InvalidArgument(format!("config has no numeric parameter {path:?}")))
    }

    /// The value at `path` as an integer.
    pub fn i64(&self, path: &str) -> Result<i64, Error> {
        match self.get(path) {
            Some(Value::Int(i)) => Ok(*i),
            Some(Value::Float(f)) if f.fract() == 0.0 => Ok(*f as i64),
            _ => Err(Error::InvalidArgument(format!("config has no integer parameter {path:?}"))),
        }
    }

    /// The value at `path` as a string.
    pub fn str(&self, path: &str) -> Result<&str, Error> {
        match self.get(path) {
            Some(Value::Str(s)) => Ok(s),
            _ => Err(Error::InvalidArgument(format!("config has no string parameter {path:?}"))),
        }
    }

    /// Sets `path`.
    pub fn set(&mut self, path: &str, value: impl Into<Value>) {
        self.0.insert(path.to_string(), value.into());
    }

    /// With `path` set: `Config::default().with("lr", 0.01).with("epochs", 10)`.
    pub fn with(mut self, path: &str, value: impl Into<Value>) -> Config {
        self.set(path, value);
        self
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        f.write_str(&parts.join(", "))
    }
}

type SampleFn = Rc<dyn Fn(&Config, &mut Rng) -> Value>;

/// Where a parameter's values come from.
#[derive(Clone)]
pub enum Domain {
    /// Always this value.
    Const(Value),
    /// Uniform float in `[lo, hi)`.
    Uniform(f64, f64),
    /// Uniform in `[lo, hi)`, rounded to a multiple of `q`.
    QUniform(f64, f64, f64),
    /// Log-uniform float in `[lo, hi)` (both positive).
    LogUniform(f64, f64),
    /// Uniform integer in `[lo, hi)`.
    RandInt(i64, i64),
    /// Normal with mean and standard deviation.
    RandN(f64, f64),
    /// One of the values, uniformly.
    Choice(Vec<Value>),
    /// Every one of the values: the experiment runs each combination of the
    /// grid parameters (× `num_samples`).
    Grid(Vec<Value>),
    /// Computed from the parameters sampled before it (conditional spaces).
    SampleFrom(SampleFn),
}

impl fmt::Debug for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Domain::Const(v) => write!(f, "{v}"),
            Domain::Uniform(a, b) => write!(f, "uniform({a}, {b})"),
            Domain::QUniform(a, b, q) => write!(f, "quniform({a}, {b}, {q})"),
            Domain::LogUniform(a, b) => write!(f, "loguniform({a}, {b})"),
            Domain::RandInt(a, b) => write!(f, "randint({a}, {b})"),
            Domain::RandN(m, s) => write!(f, "randn({m}, {s})"),
            Domain::Choice(v) => write!(f, "choice({v:?})"),
            Domain::Grid(v) => write!(f, "grid_search({v:?})"),
            Domain::SampleFrom(_) => write!(f, "sample_from(..)"),
        }
    }
}

/// `tune.uniform(lo, hi)`
pub fn uniform(lo: f64, hi: f64) -> Domain {
    Domain::Uniform(lo, hi)
}
/// `tune.quniform(lo, hi, q)`
pub fn quniform(lo: f64, hi: f64, q: f64) -> Domain {
    Domain::QUniform(lo, hi, q)
}
/// `tune.loguniform(lo, hi)`
pub fn loguniform(lo: f64, hi: f64) -> Domain {
    Domain::LogUniform(lo, hi)
}
/// `tune.randint(lo, hi)` (`hi` excluded)
pub fn randint(lo: i64, hi: i64) -> Domain {
    Domain::RandInt(lo, hi)
}
/// `tune.randn(mean, sd)`
pub fn randn(mean: f64, sd: f64) -> Domain {
    Domain::RandN(mean, sd)
}
/// `tune.choice([..])`
pub fn choice<V: Into<Value>>(values: impl IntoIterator<Item = V>) -> Domain {
    Domain::Choice(values.into_iter().map(Into::into).collect())
}
/// `tune.grid_search([..])`
pub fn grid_search<V: Into<Value>>(values: impl IntoIterator<Item = V>) -> Domain {
    Domain::Grid(values.into_iter().map(Into::into).collect())
}
/// `tune.sample_from(lambda spec: ..)`: `f` sees the parameters defined
/// before this one.
pub fn sample_from(f: impl Fn(&Config, &mut Rng) -> Value + 'static) -> Domain {
    Domain::SampleFrom(Rc::new(f))
}

/// A search space: parameters in order (a `sample_from` reads the ones
/// before it). Paths with `/` make nested configs.
#[derive(Clone, Debug, Default)]
pub struct Space {
    params: Vec<(String, Domain)>,
}

impl Space {
    /// An empty space.
    pub fn new() -> Space {
        Space::default()
    }

    /// Adds a parameter.
    pub fn with(mut self, path: &str, domain: impl Into<DomainArg>) -> Space {
        self.params.push((path.to_string(), domain.into().0));
        self
    }

    /// The parameters.
    pub fn params(&self) -> &[(String, Domain)] {
        &self.params
    }

    /// Checks every domain; the error names the parameter.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |p: &str, why: String| Err(Error::InvalidArgument(format!("search space parameter {p:?}: {why}")));
        for (i, (p, d)) in self.params.iter().enumerate() {
            if p.is_empty() {
                return bad(p, "an empty name".into());
            }
            if self.params[..i].iter().any(|(q, _)| q == p) {
                return bad(p, "defined twice".into());
            }
            match d {
                Domain::Uniform(a, b) | Domain::LogUniform(a, b) | Domain::QUniform(a, b, _)
                    if !(a.is_finite() && b.is_finite() && a < b) =>
                {
                    return bad(p, format!("needs low < high, got low {a}, high {b}"));
                }
                Domain::LogUniform(a, _) if *a <= 0.0 => {
                    return bad(p, format!("loguniform needs positive bounds, got low {a}"));
                }
                Domain::QUniform(_, _, q) if !(q.is_finite() && *q > 0.0) => {
                    return bad(p, format!("quniform needs a positive q, got {q}"));
                }
                Domain::RandInt(a, b) if a >= b => return bad(p, format!("needs low < high, got low {a}, high {b}")),
                Domain::RandN(m, s) if !(m.is_finite() && s.is_finite() && *s > 0.0) => {
                    return bad(p, format!("randn needs a finite mean and a positive sd, got {m}, {s}"));
                }
                Domain::Choice(v) if v.is_empty() => return bad(p, "choice of nothing (an empty list)".into()),
                Domain::Grid(v) if v.is_empty() => return bad(p, "grid_search of nothing (an empty list)".into()),
                _ => {}
            }
        }
        Ok(())
    }

    /// Every combination of the grid parameters' values (one empty
    /// combination when there are none); the first grid parameter varies
    /// fastest, as in Ray's variant generator.
    pub fn grid(&self) -> Vec<Vec<(String, Value)>> {
        let mut out: Vec<Vec<(String, Value)>> = vec![Vec::new()];
        for (p, d) in self.params.iter().rev() {
            if let Domain::Grid(values) = d {
                let mut next = Vec::with_capacity(out.len() * values.len());
                for combo in &out {
                    for v in values {
                        let mut c = combo.clone();
                        c.push((p.clone(), v.clone()));
                        next.push(c);
                    }
                }
                out = next;
            }
        }
        out.into_iter()
            .map(|mut c| {
                c.reverse();
                c
            })
            .collect()
    }

    /// A config: grid values from `grid`, the rest drawn from `rng`.
    pub fn sample(&self, grid: &[(String, Value)], rng: &mut Rng) -> Config {
        let mut config = Config::default();
        for (p, d) in &self.params {
            let v = match d {
                Domain::Const(v) => v.clone(),
                Domain::Grid(values) => {
                    grid.iter().find(|(q, _)| q == p).map(|(_, v)| v.clone()).unwrap_or_else(|| values[0].clone())
                }
                Domain::Uniform(a, b) => Value::Float(a + (b - a) * f64::from(rng.uniform())),
                Domain::QUniform(a, b, q) => {
                    let x = a + (b - a) * f64::from(rng.uniform());
                    Value::Float(((x / q).round() * q).clamp(*a, *b))
                }
                Domain::LogUniform(a, b) => {
                    let (la, lb) = (a.ln(), b.ln());
                    Value::Float((la + (lb - la) * f64::from(rng.uniform())).exp())
                }
                Domain::RandInt(a, b) => Value::Int(a + rng.below((b - a) as usize) as i64),
                Domain::RandN(m, s) => Value::Float(m + s * f64::from(rng.normal())),
                Domain::Choice(values) => values[rng.below(values.len())].clone(),
                Domain::SampleFrom(f) => f(&config, rng),
            };
            config.0.insert(p.clone(), v);
        }
        config
    }
}

/// Anything a parameter can be given as: a [`Domain`] or a constant.
pub struct DomainArg(Domain);

impl From<Domain> for DomainArg {
    fn from(d: Domain) -> DomainArg {
        DomainArg(d)
    }
}
impl<T: Into<Value>> From<T> for DomainArg {
    fn from(v: T) -> DomainArg {
        DomainArg(Domain::Const(v.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::{BasicVariantGenerator, Searcher};

    fn err(space: Space) -> String {
        space.validate().unwrap_err().to_string()
    }

    #[test]
    fn invalid_spaces_name_the_parameter() {
        assert!(err(Space::new().with("act", choice(Vec::<&str>::new()))).contains("\"act\": choice of nothing"));
        assert!(err(Space::new().with("lr", uniform(0.1, 0.1))).contains("\"lr\": needs low < high"));
        assert!(err(Space::new().with("lr", loguniform(0.0, 1.0))).contains("\"lr\": loguniform needs positive"));
        assert!(err(Space::new().with("n", randint(5, 2))).contains("\"n\": needs low < high"));
        assert!(err(Space::new().with("q", quniform(0.0, 1.0, 0.0))).contains("\"q\": quniform needs a positive q"));
        assert!(err(Space::new().with("g", grid_search(Vec::<i64>::new()))).contains("grid_search of nothing"));
        assert!(err(Space::new().with("a", 1.0).with("a", 2.0)).contains("defined twice"));
    }

    #[test]
    fn samples_are_in_range_reproducible_and_conditional() {
        let space = Space::new()
            .with("lr", loguniform(1e-4, 1e-1))
            .with("m", quniform(0.0, 1.0, 0.25))
            .with("n", randint(2, 5))
            .with("act", choice(["relu", "tanh"]))
            .with("model/width", 16)
            .with("double", sample_from(|c, _| Value::Int(c.i64("n").unwrap() * 2)));
        let mut a = Rng::new(3);
        let mut b = Rng::new(3);
        for _ in 0..200 {
            let c = space.sample(&[], &mut a);
            assert_eq!(c, space.sample(&[], &mut b));
            let lr = c.f64("lr").unwrap();
            assert!((1e-4..1e-1).contains(&lr));
            assert_eq!((c.f64("m").unwrap() * 4.0).fract(), 0.0);
            let n = c.i64("n").unwrap();
            assert!((2..5).contains(&n));
            assert_eq!(c.i64("double").unwrap(), 2 * n);
            assert!(["relu", "tanh"].contains(&c.str("act").unwrap()));
            assert_eq!(c.i64("model/width").unwrap(), 16);
        }
    }

    #[test]
    fn grid_search_covers_every_combination_times_samples() {
        let space = Space::new()
            .with("x", grid_search([1, 2, 3]))
            .with("y", grid_search(["a", "b"]))
            .with("z", uniform(0.0, 1.0));
        let mut g = BasicVariantGenerator::new(space, 2, 0).points_to_evaluate(vec![{
            let mut c = Config::default();
            c.set("x", 9);
            c
        }]);
        assert_eq!(g.total(), 13);
        let configs: Vec<Config> = (0..20).map_while(|i| g.suggest(i)).collect();
        assert_eq!(configs.len(), 13);
        assert_eq!(configs[0].i64("x").unwrap(), 9);
        let mut pairs: Vec<(i64, String)> =
            configs[1..].iter().map(|c| (c.i64("x").unwrap(), c.str("y").unwrap().to_string())).collect();
        // The first grid parameter varies fastest.
        assert_eq!(pairs[..3].iter().map(|p| p.0).collect::<Vec<_>>(), vec![1, 2, 3]);
        pairs.sort();
        pairs.dedup();
        assert_eq!(pairs.len(), 6);
    }
}
