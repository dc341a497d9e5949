//! Data-parallel `wray::nn` (Ray's `prepare_model` and PyTorch's DDP): every
//! worker starts from rank 0's weights and, before each optimizer step,
//! replaces its gradients by their mean over the workers (in rank order, so
//! bit for bit the same on every rank), so the replicas take the same steps
//! and stay identical.

use crate::collective::ReduceOp;
use crate::session;
use wray_guest_core::{Error, Tensor};
use wray_nn::{Module, Optimizer, Var};

/// Makes every worker's model start from rank 0's weights, and returns it
/// (Ray's `prepare_model`, PyTorch's DDP): rank 0's parameters are
/// broadcast and written in place into every other rank's (so the
/// optimizer, built over the same parameters, steps the copied weights).
/// Replicas may be built from different seeds, or none.
pub fn prepare_model<M: Module>(model: M) -> Result<M, Error> {
    let params = model.parameters();
    let mut flat = flatten(&params, |p| Some(p.value().clone()))?;
    let len = flat.len();
    session::with_group(|g| g.broadcast(&mut flat, 0))?;
    if flat.len() != len {
        // Models of different sizes cannot be replicas of each other.
        let rank = session::with_group(|g| Ok(g.rank()))?;
        return Err(Error::InvalidArgument(format!(
            "prepare_model: rank 0's model has {} parameters, rank {rank}'s {len}; every worker must build the \
             same model",
            flat.len()
        )));
    }
    let mut at = 0;
    for p in &params {
        let n: usize = p.shape().iter().product();
        p.value().write(&flat[at..at + n])?;
        at += n;
    }
    Ok(model)
}

/// An optimizer whose `step` first averages the gradients over the
/// trainer's workers (one allreduce of all gradients, concatenated), then
/// steps the wrapped optimizer.
pub struct DistributedOptimizer<O> {
    inner: O,
    params: Vec<Var>,
}

/// Wraps `optimizer` (built over `params`, the model's parameters) so that
/// its steps are data-parallel.
pub fn prepare_optimizer<O: Optimizer>(optimizer: O, params: Vec<Var>) -> DistributedOptimizer<O> {
    DistributedOptimizer { inner: optimizer, params }
}

impl<O> DistributedOptimizer<O> {
    /// The wrapped optimizer (to change its learning rate, say).
    pub fn inner(&mut self) -> &mut O {
        &mut self.inner
    }
}

impl<O: Optimizer> Optimizer for DistributedOptimizer<O> {
    fn step(&mut self) -> Result<(), Error> {
        // A parameter without a gradient on this rank contributes zeros, so
        // every rank sends a buffer of the same length.
        let mut flat = flatten(&self.params, Var::grad)?;
        session::allreduce(&mut flat, ReduceOp::Mean)?;
        let mut at = 0;
        for p in &self.params {
            let shape = p.shape();
            let len: usize = shape.iter().product();
            p.set_grad(Some(Tensor::from_vec(&shape, &flat[at..at + len])?));
            at += len;
        }
        self.inner.step()
    }

    fn zero_grad(&self) {
        self.inner.zero_grad()
    }
}

/// The parameters' tensors (`pick`), concatenated; zeros where `pick` gives
/// none.
fn flatten(params: &[Var], pick: impl Fn(&Var) -> Option<Tensor>) -> Result<Vec<f32>, Error> {
    let mut flat = Vec::new();
    for p in params {
        match pick(p) {
            Some(t) => flat.extend(t.to_vec()?),
            None => flat.extend(std::iter::repeat_n(0.0, p.shape().iter().product())),
        }
    }
    Ok(flat)
}
