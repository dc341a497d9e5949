//! The CPU path: every kernel over plain slices, with the semantics the
//! shaders must match. Single-threaded on purpose: a task holds the CPUs it
//! asked for, and parallelism comes from running tasks side by side (Ray sets
//! `OMP_NUM_THREADS` to a task's CPUs for the same reason).

use crate::MAX_RANK;
use crate::ops::{AdamParams, Binary, Reduce, SgdParams, Unary, padded, split_at_axis};

pub(crate) fn unary(op: Unary, x: &[f32]) -> Vec<f32> {
    x.iter().map(|&v| op.apply(v)).collect()
}

/// Element-wise `op` of `a` (shape `sa`) and `b` (shape `sb`) broadcast to
/// `out`.
pub(crate) fn binary(op: Binary, a: &[f32], sa: &[usize], b: &[f32], sb: &[usize], out: &[usize]) -> Vec<f32> {
    if sa == sb {
        return a.iter().zip(b).map(|(&x, &y)| op.apply(x, y)).collect();
    }
    let n: usize = out.iter().product();
    let dims = padded(out);
    let st_a = crate::ops::broadcast_strides(sa, out);
    let st_b = crate::ops::broadcast_strides(sb, out);
    let mut result = Vec::with_capacity(n);
    for i in 0..n {
        let (mut rest, mut ia, mut ib) = (i, 0usize, 0usize);
        for d in (0..MAX_RANK).rev() {
            let coord = rest % dims[d] as usize;
            rest /= dims[d] as usize;
            ia += coord * st_a[d] as usize;
            ib += coord * st_b[d] as usize;
        }
        result.push(op.apply(a[ia], b[ib]));
    }
    result
}

/// `op(A)·op(B)` for row-major `A` and `B`, where `op` transposes when its
/// flag is set; the logical shapes are `[m, k]` and `[k, n]`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize, ta: bool, tb: bool) -> Vec<f32> {
    let mut c = vec![0.0f32; m * n];
    if m == 0 || n == 0 {
        return c;
    }
    // Strides in elements: a transposed operand is read column-wise.
    let (rsa, csa) = if ta { (1, m as isize) } else { (k as isize, 1) };
    let (rsb, csb) = if tb { (1, k as isize) } else { (n as isize, 1) };
    // SAFETY: `a` holds m·k and `b` k·n elements (checked by the caller),
    // the strides stay inside them, and `c` holds m·n elements written with
    // row stride n.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
    c
}

pub(crate) fn reduce(op: Reduce, x: &[f32], shape: &[usize], axis: usize) -> Vec<f32> {
    let (outer, len, inner) = split_at_axis(shape, axis);
    let mut out = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| x[(o * len + j) * inner + i];
            let v = match op {
                Reduce::Sum => (0..len).map(at).sum(),
                Reduce::Mean => (0..len).map(at).sum::<f32>() / len as f32,
                Reduce::Max => (0..len).map(at).fold(f32::NEG_INFINITY, f32::max),
            };
            out.push(v);
        }
    }
    out
}

/// Softmax of each row of a `[rows, cols]` matrix.
pub(crate) fn softmax(x: &[f32], cols: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(cols.max(1)) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = row.iter().map(|&v| (v - max).exp()).sum();
        out.extend(row.iter().map(|&v| (v - max).exp() / sum));
    }
    out
}

/// Per-row cross-entropy of logits against class indices:
/// `logsumexp(row) - row[target]`.
pub(crate) fn cross_entropy(x: &[f32], cols: usize, targets: &[u32]) -> Vec<f32> {
    x.chunks(cols.max(1))
        .zip(targets)
        .map(|(row, &t)| {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = row.iter().map(|&v| (v - max).exp()).sum();
            max + sum.ln() - row[t as usize]
        })
        .collect()
}

pub(crate) fn gather_rows(x: &[f32], row_len: usize, indices: &[u32]) -> Vec<f32> {
    let mut out = Vec::with_capacity(indices.len() * row_len);
    for &i in indices {
        let start = i as usize * row_len;
        out.extend_from_slice(&x[start..start + row_len]);
    }
    out
}

pub(crate) fn sgd_step(p: &mut [f32], g: &[f32], v: &mut [f32], h: SgdParams) {
    for ((p, &g), v) in p.iter_mut().zip(g).zip(v.iter_mut()) {
        *v = h.momentum * *v + (g + h.weight_decay * *p);
        *p -= h.lr * *v;
    }
}

pub(crate) fn adam_step(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], h: AdamParams) {
    let (bc1, bc2) = adam_corrections(h);
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let g = g + h.weight_decay * *p;
        *m = h.beta1 * *m + (1.0 - h.beta1) * g;
        *v = h.beta2 * *v + (1.0 - h.beta2) * g * g;
        let m_hat = *m / bc1;
        let v_hat = *v / bc2;
        *p -= h.lr * m_hat / (v_hat.sqrt() + h.eps);
    }
}

/// Adam's bias corrections `1 - β^t`, computed once per step on the host
/// for both paths.
pub(crate) fn adam_corrections(h: AdamParams) -> (f32, f32) {
    let t = h.step.max(1) as i32;
    (1.0 - h.beta1.powi(t), 1.0 - h.beta2.powi(t))
}
