//! Layers: modules with parameters, composed with [`Sequential`].

use super::autograd::Var;
use std::cell::{Cell, RefCell};
use wray_guest_core::Error;
use wray_guest_core::Rng;
use wray_guest_core::Tensor;

/// A layer or a model: maps a batch to a batch, owns parameters.
pub trait Module {
    /// Runs the module on a batch (`[batch, features]`).
    fn forward(&self, x: &Var) -> Result<Var, Error>;
    /// Its trainable parameters (for an optimizer).
    fn parameters(&self) -> Vec<Var> {
        Vec::new()
    }
    /// Switches training behaviour (dropout) on or off.
    fn set_training(&self, _training: bool) {}
}

/// How a [`Linear`] layer's weights are drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// He et al.: uniform in ±sqrt(6 / fan_in) — for ReLU layers.
    KaimingUniform,
    /// He et al.: normal with std sqrt(2 / fan_in).
    KaimingNormal,
    /// Glorot & Bengio: uniform in ±sqrt(6 / (fan_in + fan_out)) — for
    /// sigmoid and tanh layers.
    XavierUniform,
    /// Glorot & Bengio: normal with std sqrt(2 / (fan_in + fan_out)).
    XavierNormal,
}

impl Init {
    /// `fan_in × fan_out` weights.
    pub fn sample(self, fan_in: usize, fan_out: usize, rng: &mut Rng) -> Vec<f32> {
        let n = fan_in * fan_out;
        let (fi, fo) = (fan_in.max(1) as f32, fan_out.max(1) as f32);
        match self {
            Init::KaimingUniform => {
                let b = (6.0 / fi).sqrt();
                (0..n).map(|_| rng.uniform_in(-b, b)).collect()
            }
            Init::KaimingNormal => {
                let s = (2.0 / fi).sqrt();
                (0..n).map(|_| rng.normal() * s).collect()
            }
            Init::XavierUniform => {
                let b = (6.0 / (fi + fo)).sqrt();
                (0..n).map(|_| rng.uniform_in(-b, b)).collect()
            }
            Init::XavierNormal => {
                let s = (2.0 / (fi + fo)).sqrt();
                (0..n).map(|_| rng.normal() * s).collect()
            }
        }
    }
}

/// `y = x·W + b`, with `W` of shape `[in, out]` and `b` of shape `[1, out]`
/// (zeros at start).
pub struct Linear {
    /// The weights.
    pub weight: Var,
    /// The bias.
    pub bias: Var,
}

impl Linear {
    /// A layer from `inputs` to `outputs` features, initialised by `init`.
    pub fn new(inputs: usize, outputs: usize, init: Init, rng: &mut Rng) -> Result<Linear, Error> {
        let w = Tensor::from_vec(&[inputs, outputs], &init.sample(inputs, outputs, rng))?;
        Ok(Linear { weight: Var::parameter(w), bias: Var::parameter(Tensor::zeros(&[1, outputs])?) })
    }
}

impl Module for Linear {
    fn forward(&self, x: &Var) -> Result<Var, Error> {
        x.matmul(&self.weight)?.add(&self.bias)
    }
    fn parameters(&self) -> Vec<Var> {
        vec![self.weight.clone(), self.bias.clone()]
    }
}

/// `max(x, 0)`.
pub struct ReLU;
impl Module for ReLU {
    fn forward(&self, x: &Var) -> Result<Var, Error> {
        x.relu()
    }
}

/// The logistic function.
pub struct Sigmoid;
impl Module for Sigmoid {
    fn forward(&self, x: &Var) -> Result<Var, Error> {
        x.sigmoid()
    }
}

/// `tanh(x)`.
pub struct Tanh;
impl Module for Tanh {
    fn forward(&self, x: &Var) -> Result<Var, Error> {
        x.tanh()
    }
}

/// Zeroes each element with probability `p` while training and scales the
/// rest by `1 / (1 - p)` (inverted dropout); the identity in evaluation.
pub struct Dropout {
    p: f32,
    rng: RefCell<Rng>,
    training: Cell<bool>,
}

impl Dropout {
    /// Dropout with probability `p` (0 ≤ p < 1), masks drawn from `seed`.
    pub fn new(p: f32, seed: u64) -> Result<Dropout, Error> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::InvalidArgument(format!("dropout probability must be in [0, 1), got {p}")));
        }
        Ok(Dropout { p, rng: RefCell::new(Rng::new(seed)), training: Cell::new(true) })
    }
}

impl Module for Dropout {
    fn forward(&self, x: &Var) -> Result<Var, Error> {
        if !self.training.get() || self.p == 0.0 {
            return Ok(x.clone());
        }
        let shape = x.shape();
        let keep = 1.0 / (1.0 - self.p);
        let mut rng = self.rng.borrow_mut();
        let mask: Vec<f32> =
            (0..shape.iter().product::<usize>()).map(|_| if rng.uniform() < self.p { 0.0 } else { keep }).collect();
        x.mul(&Var::constant(Tensor::from_vec(&shape, &mask)?))
    }
    fn set_training(&self, training: bool) {
        self.training.set(training);
    }
}

/// Modules applied in order.
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Module>>,
}

impl Sequential {
    /// An empty model.
    pub fn new() -> Sequential {
        Sequential::default()
    }

    /// Appends a layer.
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, layer: impl Module + 'static) -> Sequential {
        self.layers.push(Box::new(layer));
        self
    }
}

impl Module for Sequential {
    fn forward(&self, x: &Var) -> Result<Var, Error> {
        let mut y = x.clone();
        for l in &self.layers {
            y = l.forward(&y)?;
        }
        Ok(y)
    }
    fn parameters(&self) -> Vec<Var> {
        self.layers.iter().flat_map(|l| l.parameters()).collect()
    }
    fn set_training(&self, training: bool) {
        for l in &self.layers {
            l.set_training(training);
        }
    }
}
