//! Loss functions: each returns a scalar [`Var`] (shape `[1]`), the mean
//! over the batch.

use super::autograd::Var;
use wray_guest_core::Error;

/// Probabilities are clamped into `[EPS, 1 - EPS]` before the logarithm of
/// binary cross-entropy, as PyTorch clamps its log at -100.
const EPS: f32 = 1e-7;

/// Mean squared error.
pub fn mse(prediction: &Var, target: &Var) -> Result<Var, Error> {
    check(prediction, target, "mse")?;
    let d = prediction.sub(target)?;
    d.mul(&d)?.mean_all()
}

/// Binary cross-entropy of probabilities (a sigmoid's output) against 0/1
/// targets of the same shape.
pub fn bce(probability: &Var, target: &Var) -> Result<Var, Error> {
    check(probability, target, "bce")?;
    let p = probability.clamp(EPS, 1.0 - EPS)?;
    let pos = target.mul(&p.log()?)?;
    let neg = target.affine(-1.0, 1.0)?.mul(&p.affine(-1.0, 1.0)?.log()?)?;
    pos.add(&neg)?.mean_all()?.affine(-1.0, 0.0)
}

/// Cross-entropy of logits (`[batch, classes]`, no softmax applied)
/// against class indices.
pub fn cross_entropy(logits: &Var, targets: &[u32]) -> Result<Var, Error> {
    logits.cross_entropy_rows(targets)?.mean_all()
}

fn check(a: &Var, b: &Var, what: &str) -> Result<(), Error> {
    if a.shape() != b.shape() {
        return Err(Error::InvalidArgument(format!(
            "{what}: prediction has shape {:?}, target {:?}",
            a.shape(),
            b.shape()
        )));
    }
    Ok(())
}
