//! Reverse-mode automatic differentiation over host tensors.
//!
//! A [`Var`] is a tensor plus how it was computed. Operations on `Var`s
//! record their inputs and a backward rule; [`Var::backward`] walks the
//! graph from a scalar in reverse topological order and accumulates each
//! input's gradient (summed over broadcast dimensions). The graph is freed
//! with the last `Var` that refers to it, so a training step's intermediate
//! tensors go away at the end of the step.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use wray_guest_core::Error;
use wray_guest_core::Tensor;

type Backward = Box<dyn Fn(&Tensor) -> Result<Vec<Tensor>, Error>>;

struct Node {
    value: Tensor,
    grad: RefCell<Option<Tensor>>,
    requires_grad: bool,
    parents: Vec<Var>,
    /// Gradients of the parents, in order, from the output's gradient.
    backward: Option<Backward>,
}

/// A tensor in a computation graph. Cheap to clone.
#[derive(Clone)]
pub struct Var(Rc<Node>);

impl std::fmt::Debug for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Var({:?}, requires_grad: {})", self.0.value.shape(), self.0.requires_grad)
    }
}

/// Sums `g` over the dimensions that broadcasting stretched, so that it has
/// `shape` again.
fn sum_to(g: &Tensor, shape: &[usize]) -> Result<Tensor, Error> {
    let gs = g.shape();
    if gs == shape {
        return Ok(g.clone());
    }
    let mut padded = vec![1; gs.len().saturating_sub(shape.len())];
    padded.extend_from_slice(shape);
    let mut out = g.clone();
    for (axis, (&want, &have)) in padded.iter().zip(&gs).enumerate() {
        if want == 1 && have != 1 {
            out = out.sum(axis)?;
        }
    }
    out.reshape(shape)
}

impl Var {
    /// A trainable leaf (a parameter): gradients accumulate in it.
    pub fn parameter(value: Tensor) -> Var {
        Var(Rc::new(Node { value, grad: RefCell::new(None), requires_grad: true, parents: Vec::new(), backward: None }))
    }

    /// A constant leaf (inputs, targets): no gradient.
    pub fn constant(value: Tensor) -> Var {
        Var(Rc::new(Node {
            value,
            grad: RefCell::new(None),
            requires_grad: false,
            parents: Vec::new(),
            backward: None,
        }))
    }

    fn from_op(value: Tensor, parents: Vec<Var>, backward: Backward) -> Var {
        let requires_grad = parents.iter().any(|p| p.0.requires_grad);
        Var(Rc::new(Node {
            value,
            grad: RefCell::new(None),
            requires_grad,
            backward: requires_grad.then_some(backward),
            parents: if requires_grad { parents } else { Vec::new() },
        }))
    }

    /// The value.
    pub fn value(&self) -> &Tensor {
        &self.0.value
    }

    /// The shape.
    pub fn shape(&self) -> Vec<usize> {
        self.0.value.shape()
    }

    /// The gradient accumulated by [`Var::backward`], if any.
    pub fn grad(&self) -> Option<Tensor> {
        self.0.grad.borrow().clone()
    }

    /// Replaces the gradient (e.g. with one averaged over data-parallel
    /// workers before an optimizer step).
    pub fn set_grad(&self, grad: Option<Tensor>) {
        *self.0.grad.borrow_mut() = grad;
    }

    /// Forgets the accumulated gradient.
    pub fn zero_grad(&self) {
        *self.0.grad.borrow_mut() = None;
    }

    /// Whether gradients flow into this variable.
    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad
    }

    /// Computes the gradient of this scalar (one element) with respect to
    /// every parameter it depends on, adding it to their [`Var::grad`].
    pub fn backward(&self) -> Result<(), Error> {
        if self.0.value.len() != 1 {
            return Err(Error::InvalidArgument(format!(
                "backward: needs a scalar, got shape {:?} (reduce it with sum/mean first)",
                self.shape()
            )));
        }
        // Reverse topological order by an explicit depth-first search (no
        // recursion: deep graphs must not overflow the guest's stack).
        let mut order: Vec<Var> = Vec::new();
        let mut seen: HashSet<*const Node> = HashSet::new();
        let mut stack: Vec<(Var, bool)> = vec![(self.clone(), false)];
        while let Some((v, expanded)) = stack.pop() {
            if expanded {
                order.push(v);
                continue;
            }
            if !v.0.requires_grad || !seen.insert(Rc::as_ptr(&v.0)) {
                continue;
            }
            stack.push((v.clone(), true));
            for p in &v.0.parents {
                stack.push((p.clone(), false));
            }
        }
        let mut grads: std::collections::HashMap<*const Node, Tensor> = std::collections::HashMap::new();
        grads.insert(Rc::as_ptr(&self.0), Tensor::ones(&self.shape())?);
        for v in order.iter().rev() {
            let Some(g) = grads.remove(&Rc::as_ptr(&v.0)) else { continue };
            match &v.0.backward {
                None => {
                    // A leaf parameter: accumulate.
                    let mut slot = v.0.grad.borrow_mut();
                    *slot = Some(match slot.take() {
                        Some(old) => old.add(&g)?,
                        None => g,
                    });
                }
                Some(rule) => {
                    let parent_grads = rule(&g)?;
                    for (p, pg) in v.0.parents.iter().zip(parent_grads) {
                        if !p.0.requires_grad {
                            continue;
                        }
                        let pg = sum_to(&pg, &p.shape())?;
                        let key = Rc::as_ptr(&p.0);
                        let acc = match grads.remove(&key) {
                            Some(old) => old.add(&pg)?,
                            None => pg,
                        };
                        grads.insert(key, acc);
                    }
                }
            }
        }
        Ok(())
    }

    /// `self + other` (broadcasting).
    pub fn add(&self, other: &Var) -> Result<Var, Error> {
        let value = self.value().add(other.value())?;
        Ok(Var::from_op(value, vec![self.clone(), other.clone()], Box::new(|g| Ok(vec![g.clone(), g.clone()]))))
    }

    /// `self - other` (broadcasting).
    pub fn sub(&self, other: &Var) -> Result<Var, Error> {
        let value = self.value().sub(other.value())?;
        Ok(Var::from_op(value, vec![self.clone(), other.clone()], Box::new(|g| Ok(vec![g.clone(), g.neg()?]))))
    }

    /// `self * other` (element-wise, broadcasting).
    pub fn mul(&self, other: &Var) -> Result<Var, Error> {
        let (a, b) = (self.value().clone(), other.value().clone());
        let value = a.mul(&b)?;
        Ok(Var::from_op(value, vec![self.clone(), other.clone()], Box::new(move |g| Ok(vec![g.mul(&b)?, g.mul(&a)?]))))
    }

    /// `self / other` (element-wise, broadcasting).
    pub fn div(&self, other: &Var) -> Result<Var, Error> {
        let (a, b) = (self.value().clone(), other.value().clone());
        let value = a.div(&b)?;
        Ok(Var::from_op(
            value,
            vec![self.clone(), other.clone()],
            Box::new(move |g| Ok(vec![g.div(&b)?, g.mul(&a)?.div(&b.mul(&b)?)?.neg()?])),
        ))
    }

    /// Matrix product `self · other`.
    pub fn matmul(&self, other: &Var) -> Result<Var, Error> {
        let (a, b) = (self.value().clone(), other.value().clone());
        let value = a.matmul(&b)?;
        Ok(Var::from_op(
            value,
            vec![self.clone(), other.clone()],
            Box::new(move |g| Ok(vec![g.matmul_t(&b, false, true)?, a.matmul_t(g, true, false)?])),
        ))
    }

    /// `max(x, 0)`.
    pub fn relu(&self) -> Result<Var, Error> {
        let x = self.value().clone();
        let value = x.relu()?;
        Ok(Var::from_op(value, vec![self.clone()], Box::new(move |g| Ok(vec![x.relu_backward(g)?]))))
    }

    /// The logistic function.
    pub fn sigmoid(&self) -> Result<Var, Error> {
        let y = self.value().sigmoid()?;
        let out = y.clone();
        // dσ/dx = σ(1 - σ)
        Ok(Var::from_op(out, vec![self.clone()], Box::new(move |g| Ok(vec![g.mul(&y)?.mul(&y.affine(-1.0, 1.0)?)?]))))
    }

    /// `tanh(x)`.
    pub fn tanh(&self) -> Result<Var, Error> {
        let y = self.value().tanh()?;
        let out = y.clone();
        Ok(Var::from_op(out, vec![self.clone()], Box::new(move |g| Ok(vec![g.mul(&y.mul(&y)?.affine(-1.0, 1.0)?)?]))))
    }

    /// `e^x`.
    pub fn exp(&self) -> Result<Var, Error> {
        let y = self.value().exp()?;
        let out = y.clone();
        Ok(Var::from_op(out, vec![self.clone()], Box::new(move |g| Ok(vec![g.mul(&y)?]))))
    }

    /// `ln(x)`.
    pub fn log(&self) -> Result<Var, Error> {
        let x = self.value().clone();
        let value = x.log()?;
        Ok(Var::from_op(value, vec![self.clone()], Box::new(move |g| Ok(vec![g.div(&x)?]))))
    }

    /// `x * scale + shift`.
    pub fn affine(&self, scale: f32, shift: f32) -> Result<Var, Error> {
        let value = self.value().affine(scale, shift)?;
        Ok(Var::from_op(value, vec![self.clone()], Box::new(move |g| Ok(vec![g.affine(scale, 0.0)?]))))
    }

    /// `x ^ exponent`.
    pub fn pow(&self, exponent: f32) -> Result<Var, Error> {
        let x = self.value().clone();
        let value = x.pow(exponent)?;
        Ok(Var::from_op(
            value,
            vec![self.clone()],
            Box::new(move |g| Ok(vec![g.mul(&x.pow(exponent - 1.0)?.affine(exponent, 0.0)?)?])),
        ))
    }

    /// `min(max(x, lo), hi)`; the gradient flows where `lo < x < hi`.
    pub fn clamp(&self, lo: f32, hi: f32) -> Result<Var, Error> {
        let x = self.value().clone();
        let value = x.clamp(lo, hi)?;
        Ok(Var::from_op(
            value,
            vec![self.clone()],
            Box::new(move |g| {
                let inside = x.greater(&Tensor::scalar(lo)?)?.mul(&Tensor::scalar(hi)?.greater(&x)?)?;
                Ok(vec![g.mul(&inside)?])
            }),
        ))
    }

    /// Element-wise `min(self, other)` (broadcasting); the gradient goes to
    /// the smaller one (to `self` on ties), as PPO's clipped surrogate needs.
    pub fn minimum(&self, other: &Var) -> Result<Var, Error> {
        let (a, b) = (self.value().clone(), other.value().clone());
        let value = a.minimum(&b)?;
        Ok(Var::from_op(
            value,
            vec![self.clone(), other.clone()],
            Box::new(move |g| {
                let to_b = a.greater(&b)?;
                let to_a = to_b.affine(-1.0, 1.0)?;
                Ok(vec![g.mul(&to_a)?, g.mul(&to_b)?])
            }),
        ))
    }

    /// Each row's log-softmax, `x - logsumexp(x)` (shifted by the row's
    /// maximum, which cancels out of the gradient, so that `exp` cannot
    /// overflow).
    pub fn log_softmax_rows(&self) -> Result<Var, Error> {
        let shift = Var::constant(self.value().max(1)?);
        let shifted = self.sub(&shift)?;
        shifted.sub(&shifted.exp()?.sum(1)?.log()?)
    }

    /// Sum along `axis` (kept with length 1).
    pub fn sum(&self, axis: usize) -> Result<Var, Error> {
        let shape = self.shape();
        let value = self.value().sum(axis)?;
        Ok(Var::from_op(value, vec![self.clone()], Box::new(move |g| Ok(vec![g.add(&Tensor::zeros(&shape)?)?]))))
    }

    /// Mean along `axis` (kept with length 1).
    pub fn mean(&self, axis: usize) -> Result<Var, Error> {
        let shape = self.shape();
        let n = shape.get(axis).copied().unwrap_or(1).max(1) as f32;
        let value = self.value().mean(axis)?;
        Ok(Var::from_op(
            value,
            vec![self.clone()],
            Box::new(move |g| Ok(vec![g.affine(1.0 / n, 0.0)?.add(&Tensor::zeros(&shape)?)?])),
        ))
    }

    /// The same elements under another shape.
    pub fn reshape(&self, shape: &[usize]) -> Result<Var, Error> {
        let old = self.shape();
        let value = self.value().reshape(shape)?;
        Ok(Var::from_op(value, vec![self.clone()], Box::new(move |g| Ok(vec![g.reshape(&old)?]))))
    }

    /// Sum of every element, shape `[1]`.
    pub fn sum_all(&self) -> Result<Var, Error> {
        let n = self.value().len();
        self.reshape(&[1, n])?.sum(1)?.reshape(&[1])
    }

    /// Mean of every element, shape `[1]`.
    pub fn mean_all(&self) -> Result<Var, Error> {
        let n = self.value().len();
        self.reshape(&[1, n])?.mean(1)?.reshape(&[1])
    }

    /// `[rows, 1]` cross-entropy of each row of logits against its class
    /// index; backward is `softmax(logits) - one_hot(targets)`.
    pub fn cross_entropy_rows(&self, targets: &[u32]) -> Result<Var, Error> {
        let x = self.value().clone();
        let value = x.cross_entropy(targets)?;
        let targets = targets.to_vec();
        Ok(Var::from_op(
            value,
            vec![self.clone()],
            Box::new(move |g| {
                let classes = x.shape().get(1).copied().unwrap_or(1);
                let d = x.softmax()?.sub(&Tensor::one_hot(&targets, classes)?)?;
                Ok(vec![d.mul(g)?])
            }),
        ))
    }
}
