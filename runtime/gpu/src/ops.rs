//! The operations, their parameters and the shape rules both paths share.

use crate::MAX_RANK;

/// Element-wise operations on one tensor. The numbering is the shader's
/// (`unary.wgsl`); change both together.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unary {
    /// `-x`
    Neg,
    /// `max(x, 0)`
    Relu,
    /// `1 / (1 + e^-x)`
    Sigmoid,
    /// `tanh(x)`
    Tanh,
    /// `e^x`
    Exp,
    /// `ln(x)` (`-inf` at 0, NaN below, as IEEE says)
    Log,
    /// `sqrt(x)`
    Sqrt,
    /// `|x|`
    Abs,
    /// `x * scale + shift`
    Affine {
        /// Multiplier.
        scale: f32,
        /// Addend.
        shift: f32,
    },
    /// `min(max(x, lo), hi)`
    Clamp {
        /// Lower bound.
        lo: f32,
        /// Upper bound.
        hi: f32,
    },
    /// `x^exponent` (`pow`, NaN for a negative base with a fractional
    /// exponent)
    Pow {
        /// The exponent.
        exponent: f32,
    },
}

impl Unary {
    /// The shader's op code and its two parameters.
    pub(crate) fn code(self) -> (u32, f32, f32) {
        match self {
            Unary::Neg => (0, 0.0, 0.0),
            Unary::Relu => (1, 0.0, 0.0),
            Unary::Sigmoid => (2, 0.0, 0.0),
            Unary::Tanh => (3, 0.0, 0.0),
            Unary::Exp => (4, 0.0, 0.0),
            Unary::Log => (5, 0.0, 0.0),
            Unary::Sqrt => (6, 0.0, 0.0),
            Unary::Abs => (7, 0.0, 0.0),
            Unary::Affine { scale, shift } => (8, scale, shift),
            Unary::Clamp { lo, hi } => (9, lo, hi),
            Unary::Pow { exponent } => (10, exponent, 0.0),
        }
    }

    /// Applies the operation to one value: the CPU path, and the reference
    /// the shader is tested against.
    pub(crate) fn apply(self, x: f32) -> f32 {
        match self {
            Unary::Neg => -x,
            Unary::Relu => x.max(0.0),
            Unary::Sigmoid => sigmoid(x),
            Unary::Tanh => tanh(x),
            Unary::Exp => x.exp(),
            Unary::Log => x.ln(),
            Unary::Sqrt => x.sqrt(),
            Unary::Abs => x.abs(),
            Unary::Affine { scale, shift } => x * scale + shift,
            Unary::Clamp { lo, hi } => x.max(lo).min(hi),
            Unary::Pow { exponent } => x.powf(exponent),
        }
    }
}

/// `tanh` from one double-precision `exp`: the C library's `tanhf` (through
/// `expm1f`) was a quarter of a PPO learner's time. In double precision
/// `1 - 2 / (e^{2|x|} + 1)` is accurate to about 1e-16, so the rounded
/// result is within an ulp of the exact value; below 1e-4, `tanh x = x`
/// to within half an ulp, and from 9.1 on it rounds to ±1.
pub(crate) fn tanh(x: f32) -> f32 {
    let a = x.abs();
    if a < 1e-4 || x.is_nan() {
        return x;
    }
    if a >= 9.1 {
        return 1f32.copysign(x);
    }
    let e = (2.0 * f64::from(a)).exp();
    ((1.0 - 2.0 / (e + 1.0)) as f32).copysign(x)
}

/// A logistic function that does not overflow for large `|x|` (the shader
/// computes it the same way).
pub(crate) fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Element-wise operations on two tensors, broadcasting numpy-style (shapes
/// aligned at the right; a dimension of 1 stretches).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
    /// `max(a, b)`
    Maximum,
    /// `min(a, b)`
    Minimum,
    /// `1` where `a > b`, else `0`
    Greater,
    /// `b` where `a > 0`, else `0`: ReLU's backward pass (`a` is the
    /// forward input, `b` the incoming gradient).
    ReluBackward,
}

impl Binary {
    pub(crate) fn code(self) -> u32 {
        self as u32
    }

    pub(crate) fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            Binary::Add => a + b,
            Binary::Sub => a - b,
            Binary::Mul => a * b,
            Binary::Div => a / b,
            Binary::Maximum => a.max(b),
            Binary::Minimum => a.min(b),
            Binary::Greater => f32::from(u8::from(a > b)),
            Binary::ReluBackward => {
                if a > 0.0 {
                    b
                } else {
                    0.0
                }
            }
        }
    }
}

/// Reductions along one axis (the axis is kept, with length 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    /// Sum.
    Sum,
    /// Arithmetic mean.
    Mean,
    /// Maximum.
    Max,
}

impl Reduce {
    pub(crate) fn code(self) -> u32 {
        self as u32
    }
}

/// SGD with momentum and weight decay, PyTorch's formulation:
/// `v = momentum·v + (g + weight_decay·p); p -= lr·v`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdParams {
    /// Learning rate.
    pub lr: f32,
    /// Momentum (0: plain SGD).
    pub momentum: f32,
    /// L2 penalty.
    pub weight_decay: f32,
}

/// Adam (Kingma & Ba) with bias correction; `step` counts from 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamParams {
    /// Learning rate.
    pub lr: f32,
    /// Decay of the first moment.
    pub beta1: f32,
    /// Decay of the second moment.
    pub beta2: f32,
    /// Added to the denominator.
    pub eps: f32,
    /// L2 penalty added to the gradient.
    pub weight_decay: f32,
    /// The update's number, from 1.
    pub step: u32,
}

/// A shape's element count, or `None` on overflow.
pub(crate) fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// The broadcast shape of `a` and `b`, or `None` if they do not broadcast.
pub(crate) fn broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i < rank - a.len() { 1 } else { a[i - (rank - a.len())] };
        let db = if i < rank - b.len() { 1 } else { b[i - (rank - b.len())] };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// The strides (in elements) with which an operand of shape `shape` is read
/// for each index of the broadcast shape `out`, padded on the left to
/// [`MAX_RANK`]: 0 where the operand is stretched.
pub(crate) fn broadcast_strides(shape: &[usize], out: &[usize]) -> [u32; MAX_RANK] {
    let mut strides = [0u32; MAX_RANK];
    let pad = MAX_RANK - out.len();
    let offset = out.len() - shape.len();
    let mut stride = 1usize;
    for i in (0..shape.len()).rev() {
        if shape[i] != 1 {
            strides[pad + offset + i] = stride as u32;
        }
        stride *= shape[i];
    }
    strides
}

/// `out` padded on the left with 1s to [`MAX_RANK`].
pub(crate) fn padded(out: &[usize]) -> [u32; MAX_RANK] {
    let mut p = [1u32; MAX_RANK];
    let pad = MAX_RANK - out.len();
    for (i, &d) in out.iter().enumerate() {
        p[pad + i] = d as u32;
    }
    p
}

/// A shape seen as `[outer, axis, inner]` around `axis`.
pub(crate) fn split_at_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    let outer = shape[..axis].iter().product();
    let inner = shape[axis + 1..].iter().product();
    (outer, shape[axis], inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tanh_is_within_an_ulp_of_the_exact_value() {
        let ulp = |y: f32| f32::from_bits(y.abs().to_bits() + 1) - y.abs();
        let mut worst = 0.0f64;
        // Every 4,099th bit pattern of the positive and negative floats.
        for bits in (0..=u32::MAX).step_by(4099) {
            let x = f32::from_bits(bits);
            let (got, exact) = (tanh(x), f64::from(x).tanh());
            if x.is_nan() {
                assert!(got.is_nan());
                continue;
            }
            let err = (f64::from(got) - exact).abs() / f64::from(ulp(exact as f32));
            worst = worst.max(err);
        }
        assert!(worst <= 1.0, "worst error {worst} ulp");
        assert_eq!((tanh(0.0).to_bits(), tanh(-0.0).to_bits()), (0.0f32.to_bits(), (-0.0f32).to_bits()));
        assert_eq!((tanh(f32::INFINITY), tanh(f32::NEG_INFINITY)), (1.0, -1.0));
    }

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(broadcast(&[3, 1], &[4]), Some(vec![3, 4]));
        assert_eq!(broadcast(&[2, 3], &[2, 3]), Some(vec![2, 3]));
        assert_eq!(broadcast(&[1], &[5, 1, 2]), Some(vec![5, 1, 2]));
        assert_eq!(broadcast(&[3], &[4]), None);
        assert_eq!(broadcast_strides(&[3, 1], &[3, 4]), [0, 0, 1, 0]);
        assert_eq!(broadcast_strides(&[4], &[3, 4]), [0, 0, 0, 1]);
        assert_eq!(padded(&[3, 4]), [1, 1, 3, 4]);
        assert_eq!(split_at_axis(&[2, 3, 4], 1), (2, 3, 4));
    }
}
