//! Data-parallel `wray::nn` (Ray's `prepare_model` and PyTorch's DDP): every
//! worker starts from the same weights and, before each optimizer step,
//! replaces its gradients by their mean over the workers (in rank order, so
//! bit for bit the same on every rank), so the replicas take the same steps
//! and stay identical.

use crate::collective::ReduceOp;
use crate::session;
use wray_guest_core::{Error, Tensor};
use wray_nn::{Module, Optimizer, Var};

/// Checks that every worker's model starts from the same weights, and
/// returns it (the role of Ray's `prepare_model`). Build the model from the
/// same seed on every worker (`Rng::new(seed)`): unlike PyTorch's DDP, which
/// copies rank 0's weights into the others, wray's parameters cannot be
/// overwritten in place yet, so replicas that differ are an error naming the
/// ranks rather than silently different models.
pub fn prepare_model<M: Module>(model: M) -> Result<M, Error> {
    let params = model.parameters();
    let flat = flatten(&params, |p| Some(p.value().clone()))?;
    // FNV-1a over the bits, sent as four exact 16-bit pieces.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for x in &flat {
        for b in x.to_bits().to_le_bytes() {
            hash = (hash ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    let mine: Vec<f32> = (0..4).map(|i| ((hash >> (16 * i)) & 0xffff) as f32).chain([flat.len() as f32]).collect();
    let all = session::with_group(|g| g.allgather(&mine))?;
    let differ: Vec<usize> = (0..all.len()).filter(|r| all[*r] != all[0]).collect();
    if !differ.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "prepare_model: ranks {differ:?} start from other weights than rank 0; build the model from the same \
             seed on every worker"
        )));
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
