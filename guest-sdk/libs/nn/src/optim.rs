//! Optimizers: fused updates that run where the parameters live.

use super::autograd::Var;
use wray_guest_core::Error;
use wray_guest_core::Tensor;

/// Updates parameters from their gradients.
pub trait Optimizer {
    /// Applies one update from the current gradients (parameters without a
    /// gradient are left alone).
    fn step(&mut self) -> Result<(), Error>;
    /// Forgets every parameter's gradient (call before each backward pass).
    fn zero_grad(&self);
}

/// Stochastic gradient descent with momentum and weight decay (PyTorch's
/// `torch.optim.SGD`).
pub struct Sgd {
    params: Vec<Var>,
    velocity: Vec<Tensor>,
    /// Learning rate.
    pub lr: f32,
    /// Momentum (0: plain SGD).
    pub momentum: f32,
    /// L2 penalty.
    pub weight_decay: f32,
}

impl Sgd {
    /// SGD over `params`.
    pub fn new(params: Vec<Var>, lr: f32, momentum: f32) -> Result<Sgd, Error> {
        let velocity = params.iter().map(|p| Tensor::zeros(&p.shape())).collect::<Result<_, _>>()?;
        Ok(Sgd { params, velocity, lr, momentum, weight_decay: 0.0 })
    }

    /// Sets the L2 penalty.
    pub fn weight_decay(mut self, weight_decay: f32) -> Sgd {
        self.weight_decay = weight_decay;
        self
    }
}

impl Optimizer for Sgd {
    fn step(&mut self) -> Result<(), Error> {
        for (p, v) in self.params.iter().zip(&self.velocity) {
            if let Some(g) = p.grad() {
                p.value().sgd_step(&g, v, self.lr, self.momentum, self.weight_decay)?;
            }
        }
        Ok(())
    }
    fn zero_grad(&self) {
        self.params.iter().for_each(Var::zero_grad);
    }
}

/// Adam (Kingma & Ba) with bias correction (`torch.optim.Adam`).
pub struct Adam {
    params: Vec<Var>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    step: u32,
    /// Learning rate.
    pub lr: f32,
    /// Moment decays.
    pub betas: (f32, f32),
    /// Added to the denominator.
    pub eps: f32,
    /// L2 penalty.
    pub weight_decay: f32,
}

impl Adam {
    /// Adam over `params` with PyTorch's defaults (betas 0.9/0.999, eps 1e-8).
    pub fn new(params: Vec<Var>, lr: f32) -> Result<Adam, Error> {
        let zeros = |p: &Var| Tensor::zeros(&p.shape());
        let m = params.iter().map(zeros).collect::<Result<_, _>>()?;
        let v = params.iter().map(zeros).collect::<Result<_, _>>()?;
        Ok(Adam { params, m, v, step: 0, lr, betas: (0.9, 0.999), eps: 1e-8, weight_decay: 0.0 })
    }
}

impl Optimizer for Adam {
    fn step(&mut self) -> Result<(), Error> {
        self.step += 1;
        for ((p, m), v) in self.params.iter().zip(&self.m).zip(&self.v) {
            if let Some(g) = p.grad() {
                p.value().adam_step(&g, m, v, self.lr, self.betas, self.eps, self.weight_decay, self.step)?;
            }
        }
        Ok(())
    }
    fn zero_grad(&self) {
        self.params.iter().for_each(Var::zero_grad);
    }
}
