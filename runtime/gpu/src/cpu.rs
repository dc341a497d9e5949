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
    // A row (the last dimension) at a time: the operands' offsets are
    // worked out once a row, by division, and then stepped (a bias added to
    // a batch spent most of its time in the divisions).
    let last = MAX_RANK - 1;
    let row = dims[last] as usize;
    let (step_a, step_b) = (st_a[last] as usize, st_b[last] as usize);
    for r in 0..n.checked_div(row).unwrap_or(0) {
        let (mut rest, mut ia, mut ib) = (r, 0usize, 0usize);
        for d in (0..last).rev() {
            let coord = rest % dims[d] as usize;
            rest /= dims[d] as usize;
            ia += coord * st_a[d] as usize;
            ib += coord * st_b[d] as usize;
        }
        for j in 0..row {
            result.push(op.apply(a[ia + j * step_a], b[ib + j * step_b]));
        }
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
    // Each output folds its `len` inputs in order, as an iterator's `sum`
    // does (from the same start), so the bits are those of a fold per
    // output; the inputs are read a row of `inner` at a time, contiguously,
    // where a fold per output strided through the whole block.
    let start = match op {
        Reduce::Sum | Reduce::Mean => std::iter::empty::<f32>().sum(),
        Reduce::Max => f32::NEG_INFINITY,
    };
    let mut acc = vec![start; inner];
    // An empty axis still gives `inner` outputs per block, folded from
    // nothing.
    let mut blocks = x.chunks_exact((len * inner).max(1));
    for _ in 0..outer {
        acc.fill(start);
        let block = if len == 0 { &[][..] } else { blocks.next().unwrap_or_default() };
        match op {
            Reduce::Sum | Reduce::Mean => fold_rows(block, &mut acc, |a, b| a + b),
            Reduce::Max => fold_rows(block, &mut acc, f32::max),
        }
        if op == Reduce::Mean {
            out.extend(acc.iter().map(|a| a / len as f32));
        } else {
            out.extend_from_slice(&acc);
        }
    }
    out
}

/// Folds each row of `block` (rows of `acc.len()`) into `acc`, element by
/// element, in row order.
fn fold_rows(block: &[f32], acc: &mut [f32], f: impl Fn(f32, f32) -> f32) {
    for row in block.chunks_exact(acc.len().max(1)) {
        acc.iter_mut().zip(row).for_each(|(a, &v)| *a = f(*a, v));
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::broadcast;

    /// Values with every sign, zeros of both signs and wide magnitudes.
    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n as u32)
            .map(|i| {
                let h = (i ^ seed).wrapping_mul(0x9E37_79B9).rotate_left(7);
                match h % 17 {
                    0 => 0.0,
                    1 => -0.0,
                    k => (h as f32 / u32::MAX as f32 - 0.5) * 10f32.powi(k as i32 % 9 - 4),
                }
            })
            .collect()
    }

    #[test]
    fn broadcasting_a_row_at_a_time_gives_the_element_by_element_bits() {
        let shapes: [(&[usize], &[usize]); 7] = [
            (&[128, 64], &[64]),
            (&[128, 64], &[128, 1]),
            (&[1, 5], &[7, 1]),
            (&[2, 3, 4], &[3, 1]),
            (&[2, 1, 4, 3], &[5, 1, 3]),
            (&[6], &[1]),
            (&[0, 3], &[3]),
        ];
        for (sa, sb) in shapes {
            let out = broadcast(sa, sb).unwrap();
            let (a, b) = (values(sa.iter().product(), 1), values(sb.iter().product(), 2));
            let (dims, st_a, st_b) =
                (padded(&out), crate::ops::broadcast_strides(sa, &out), crate::ops::broadcast_strides(sb, &out));
            for op in [Binary::Add, Binary::Sub, Binary::Mul, Binary::Div, Binary::Maximum, Binary::Minimum] {
                let want: Vec<u32> = (0..out.iter().product::<usize>())
                    .map(|i| {
                        let (mut rest, mut ia, mut ib) = (i, 0, 0);
                        for d in (0..MAX_RANK).rev() {
                            let c = rest % dims[d] as usize;
                            rest /= dims[d] as usize;
                            (ia, ib) = (ia + c * st_a[d] as usize, ib + c * st_b[d] as usize);
                        }
                        op.apply(a[ia], b[ib]).to_bits()
                    })
                    .collect();
                let got: Vec<u32> = binary(op, &a, sa, &b, sb, &out).iter().map(|v| v.to_bits()).collect();
                assert_eq!(got, want, "{op:?} of {sa:?} and {sb:?}");
            }
        }
    }

    #[test]
    fn reducing_a_row_at_a_time_gives_the_fold_per_output_bits() {
        for (shape, axis) in [(&[128usize, 64][..], 0), (&[128, 64], 1), (&[3, 0, 2], 1), (&[2, 3, 4, 5], 2), (&[7], 0)]
        {
            let x = values(shape.iter().product(), 3);
            let (outer, len, inner) = split_at_axis(shape, axis);
            for op in [Reduce::Sum, Reduce::Mean, Reduce::Max] {
                let mut want = Vec::new();
                for o in 0..outer {
                    for i in 0..inner {
                        let at = |j: usize| x[(o * len + j) * inner + i];
                        want.push(match op {
                            Reduce::Sum => (0..len).map(at).sum(),
                            Reduce::Mean => (0..len).map(at).sum::<f32>() / len as f32,
                            Reduce::Max => (0..len).map(at).fold(f32::NEG_INFINITY, f32::max),
                        });
                    }
                }
                let got = reduce(op, &x, shape, axis);
                let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "{op:?} of {shape:?} along {axis}");
            }
        }
    }
}
