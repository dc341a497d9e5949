//! Tensors: shape checks, then the CPU path or the GPU path.

use crate::gpu::{GpuBuffer, GpuDevice};
use crate::ops::{self, AdamParams, Binary, Reduce, SgdParams, Unary};
use crate::{MAX_ELEMENTS, MAX_RANK, cpu};
use std::sync::{Arc, RwLock};

/// A failed tensor operation, for the guest: the operation's name and what
/// was wrong, shapes included.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{op}: {message}")]
pub struct TensorError {
    /// The operation, as the guest called it (`matmul`, `binary add`, ...).
    pub op: &'static str,
    /// What went wrong.
    pub message: String,
}

impl TensorError {
    pub(crate) fn new(op: &'static str, message: impl Into<String>) -> TensorError {
        TensorError { op, message: message.into() }
    }
}

/// Where tensors live.
#[derive(Clone, Debug)]
pub enum Device {
    /// Host memory; kernels run on the calling thread.
    Cpu,
    /// A GPU's memory; kernels are WGSL compute shaders.
    Gpu(Arc<GpuDevice>),
}

impl Device {
    /// Which kind of device this is.
    pub fn kind(&self) -> DeviceKind {
        match self {
            Device::Cpu => DeviceKind::Cpu,
            Device::Gpu(_) => DeviceKind::Gpu,
        }
    }

    /// A one-line description (`cpu`, `gpu 0: llvmpipe (LLVM 15.0.6, 256 bits)`).
    pub fn describe(&self) -> String {
        match self {
            Device::Cpu => "cpu".into(),
            Device::Gpu(g) => format!("gpu {}: {}", g.index(), g.name()),
        }
    }
}

/// [`Device`] without the handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    /// The CPU path.
    Cpu,
    /// A GPU.
    Gpu,
}

#[derive(Clone, Debug)]
enum Storage {
    Cpu(Arc<RwLock<Vec<f32>>>),
    Gpu(Arc<GpuBuffer>),
}

/// An f32 tensor. Cloning shares the storage (as does [`Tensor::reshape`]);
/// operations create new tensors, except the optimizer steps, which update
/// their parameter and state tensors in place.
#[derive(Clone, Debug)]
pub struct Tensor {
    shape: Vec<usize>,
    storage: Storage,
}

/// Checks a shape against the limits and returns its element count.
fn checked_len(op: &'static str, shape: &[usize]) -> Result<usize, TensorError> {
    if shape.len() > MAX_RANK {
        return Err(TensorError::new(op, format!("shape {shape:?} has more than {MAX_RANK} dimensions")));
    }
    match ops::element_count(shape) {
        Some(n) if n <= MAX_ELEMENTS => Ok(n),
        _ => Err(TensorError::new(op, format!("shape {shape:?} has more than {MAX_ELEMENTS} elements"))),
    }
}

fn read(lock: &RwLock<Vec<f32>>) -> std::sync::RwLockReadGuard<'_, Vec<f32>> {
    // A panic while holding the lock cannot leave a Vec<f32> half-valid.
    lock.read().unwrap_or_else(|e| e.into_inner())
}

/// Reads two operands, taking the lock once when they are the same storage
/// (`x.mul(&x)`): a second read lock could deadlock behind a waiting writer.
fn read_both<T>(a: &RwLock<Vec<f32>>, b: &RwLock<Vec<f32>>, f: impl FnOnce(&[f32], &[f32]) -> T) -> T {
    if std::ptr::eq(a, b) {
        let a = read(a);
        f(&a, &a)
    } else {
        f(&read(a), &read(b))
    }
}

fn write(lock: &RwLock<Vec<f32>>) -> std::sync::RwLockWriteGuard<'_, Vec<f32>> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

impl Tensor {
    /// A tensor of `shape` holding `data` (row-major) on `device`.
    pub fn from_data(device: &Device, shape: &[usize], data: &[f32]) -> Result<Tensor, TensorError> {
        let n = checked_len("tensor from data", shape)?;
        if n != data.len() {
            return Err(TensorError::new(
                "tensor from data",
                format!("shape {shape:?} needs {n} values, got {}", data.len()),
            ));
        }
        Tensor::on(device, shape.to_vec(), data.to_vec())
    }

    /// A tensor of `shape` with every element `value`.
    pub fn full(device: &Device, shape: &[usize], value: f32) -> Result<Tensor, TensorError> {
        let n = checked_len("tensor full", shape)?;
        Tensor::on(device, shape.to_vec(), vec![value; n])
    }

    /// One-hot rows: `[indices.len(), classes]`, 1 at each index.
    pub fn one_hot(device: &Device, indices: &[u32], classes: usize) -> Result<Tensor, TensorError> {
        let shape = [indices.len(), classes];
        let n = checked_len("one-hot", &shape)?;
        let mut data = vec![0.0; n];
        for (row, &i) in indices.iter().enumerate() {
            if i as usize >= classes {
                return Err(TensorError::new(
                    "one-hot",
                    format!("index {i} at position {row} is out of range for {classes} classes"),
                ));
            }
            data[row * classes + i as usize] = 1.0;
        }
        Tensor::on(device, shape.to_vec(), data)
    }

    fn on(device: &Device, shape: Vec<usize>, data: Vec<f32>) -> Result<Tensor, TensorError> {
        let storage = match device {
            Device::Cpu => Storage::Cpu(Arc::new(RwLock::new(data))),
            Device::Gpu(g) => Storage::Gpu(Arc::new(g.upload(&data)?)),
        };
        Ok(Tensor { shape, storage })
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of storage the tensor holds.
    pub fn bytes(&self) -> usize {
        self.len() * 4
    }

    /// Where the tensor lives.
    pub fn device_kind(&self) -> DeviceKind {
        match self.storage {
            Storage::Cpu(_) => DeviceKind::Cpu,
            Storage::Gpu(_) => DeviceKind::Gpu,
        }
    }

    /// Copies the elements out (row-major). On a GPU this waits for every
    /// kernel writing the tensor to finish, at most [`crate::KERNEL_TIMEOUT`].
    pub fn to_vec(&self) -> Result<Vec<f32>, TensorError> {
        match &self.storage {
            Storage::Cpu(d) => Ok(read(d).clone()),
            Storage::Gpu(b) => b.download("read"),
        }
    }

    /// Overwrites the elements in place with `data` (exactly as many).
    /// Views of the same storage see the new values; on a GPU the copy is
    /// queued after the kernels already queued, so they read the old ones.
    pub fn write(&self, data: &[f32]) -> Result<(), TensorError> {
        if data.len() != self.len() {
            return Err(TensorError::new(
                "write",
                format!("the tensor of shape {:?} holds {} values, got {}", self.shape, self.len(), data.len()),
            ));
        }
        match &self.storage {
            Storage::Cpu(d) => {
                write(d).copy_from_slice(data);
                Ok(())
            }
            Storage::Gpu(b) => b.device().overwrite(b, data),
        }
    }

    /// The same elements under another shape with as many elements. Shares
    /// the storage.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor, TensorError> {
        let n = checked_len("reshape", shape)?;
        if n != self.len() {
            return Err(TensorError::new(
                "reshape",
                format!("cannot reshape {:?} ({} elements) to {shape:?} ({n} elements)", self.shape, self.len()),
            ));
        }
        Ok(Tensor { shape: shape.to_vec(), storage: self.storage.clone() })
    }

    /// A copy on `device`.
    pub fn to_device(&self, device: &Device) -> Result<Tensor, TensorError> {
        Tensor::on(device, self.shape.clone(), self.to_vec()?)
    }

    /// An element-wise operation.
    pub fn unary(&self, op: Unary) -> Result<Tensor, TensorError> {
        let storage = match &self.storage {
            Storage::Cpu(d) => Storage::Cpu(Arc::new(RwLock::new(cpu::unary(op, &read(d))))),
            Storage::Gpu(b) => Storage::Gpu(Arc::new(b.device().unary(op, b, self.len())?)),
        };
        Ok(Tensor { shape: self.shape.clone(), storage })
    }

    /// An element-wise operation of two tensors, broadcasting.
    pub fn binary(&self, op: Binary, other: &Tensor) -> Result<Tensor, TensorError> {
        let name = binary_name(op);
        let out = ops::broadcast(&self.shape, &other.shape).ok_or_else(|| {
            TensorError::new(name, format!("shapes {:?} and {:?} do not broadcast", self.shape, other.shape))
        })?;
        checked_len(name, &out)?;
        let storage = match (&self.storage, &other.storage) {
            (Storage::Cpu(a), Storage::Cpu(b)) => {
                let r = read_both(a, b, |a, b| cpu::binary(op, a, &self.shape, b, &other.shape, &out));
                Storage::Cpu(Arc::new(RwLock::new(r)))
            }
            (Storage::Gpu(a), Storage::Gpu(b)) => {
                same_device(name, a, b)?;
                Storage::Gpu(Arc::new(a.device().binary(op, a, &self.shape, b, &other.shape, &out)?))
            }
            _ => return Err(mixed(name)),
        };
        Ok(Tensor { shape: out, storage })
    }

    /// Matrix product `op(self)·op(other)` of two matrices, where `op`
    /// transposes when `transpose_self` / `transpose_other` is set.
    pub fn matmul(&self, other: &Tensor, transpose_self: bool, transpose_other: bool) -> Result<Tensor, TensorError> {
        let (sa, sb) = (&self.shape, &other.shape);
        if sa.len() != 2 || sb.len() != 2 {
            return Err(TensorError::new("matmul", format!("needs two matrices, got shapes {sa:?} and {sb:?}")));
        }
        let (m, k) = if transpose_self { (sa[1], sa[0]) } else { (sa[0], sa[1]) };
        let (k2, n) = if transpose_other { (sb[1], sb[0]) } else { (sb[0], sb[1]) };
        if k != k2 {
            return Err(TensorError::new(
                "matmul",
                format!(
                    "shapes {sa:?}{} and {sb:?}{} do not fit: inner dimensions {k} and {k2} differ",
                    if transpose_self { "ᵀ" } else { "" },
                    if transpose_other { "ᵀ" } else { "" }
                ),
            ));
        }
        checked_len("matmul", &[m, n])?;
        let storage = match (&self.storage, &other.storage) {
            (Storage::Cpu(a), Storage::Cpu(b)) => {
                let r = read_both(a, b, |a, b| cpu::matmul(a, b, m, k, n, transpose_self, transpose_other));
                Storage::Cpu(Arc::new(RwLock::new(r)))
            }
            (Storage::Gpu(a), Storage::Gpu(b)) => {
                same_device("matmul", a, b)?;
                Storage::Gpu(Arc::new(a.device().matmul(a, b, m, k, n, transpose_self, transpose_other)?))
            }
            _ => return Err(mixed("matmul")),
        };
        Ok(Tensor { shape: vec![m, n], storage })
    }

    /// Reduces along `axis`, which is kept with length 1.
    pub fn reduce(&self, op: Reduce, axis: usize) -> Result<Tensor, TensorError> {
        let name = match op {
            Reduce::Sum => "sum",
            Reduce::Mean => "mean",
            Reduce::Max => "max",
        };
        if axis >= self.shape.len() {
            return Err(TensorError::new(name, format!("axis {axis} is out of range for shape {:?}", self.shape)));
        }
        if self.shape[axis] == 0 && op != Reduce::Sum {
            return Err(TensorError::new(name, format!("axis {axis} of shape {:?} is empty", self.shape)));
        }
        let mut out = self.shape.clone();
        out[axis] = 1;
        let storage = match &self.storage {
            Storage::Cpu(d) => Storage::Cpu(Arc::new(RwLock::new(cpu::reduce(op, &read(d), &self.shape, axis)))),
            Storage::Gpu(b) => Storage::Gpu(Arc::new(b.device().reduce(op, b, &self.shape, axis)?)),
        };
        Ok(Tensor { shape: out, storage })
    }

    fn rows_cols(&self, op: &'static str) -> Result<(usize, usize), TensorError> {
        match self.shape[..] {
            [rows, cols] if cols > 0 => Ok((rows, cols)),
            _ => Err(TensorError::new(op, format!("needs a [rows, classes] matrix, got shape {:?}", self.shape))),
        }
    }

    /// Softmax of each row of a matrix.
    pub fn softmax(&self) -> Result<Tensor, TensorError> {
        let (rows, cols) = self.rows_cols("softmax")?;
        let storage = match &self.storage {
            Storage::Cpu(d) => Storage::Cpu(Arc::new(RwLock::new(cpu::softmax(&read(d), cols)))),
            Storage::Gpu(b) => Storage::Gpu(Arc::new(b.device().softmax(b, rows, cols)?)),
        };
        Ok(Tensor { shape: self.shape.clone(), storage })
    }

    /// Cross-entropy of each row of logits against its class index:
    /// `[rows, 1]` of `logsumexp(row) - row[target]`.
    pub fn cross_entropy(&self, targets: &[u32]) -> Result<Tensor, TensorError> {
        let (rows, cols) = self.rows_cols("cross-entropy")?;
        if targets.len() != rows {
            return Err(TensorError::new(
                "cross-entropy",
                format!("{} targets for logits of shape {:?}", targets.len(), self.shape),
            ));
        }
        if let Some((row, t)) = targets.iter().enumerate().find(|(_, t)| **t as usize >= cols) {
            return Err(TensorError::new(
                "cross-entropy",
                format!("target {t} at row {row} is out of range for logits of shape {:?}", self.shape),
            ));
        }
        let storage = match &self.storage {
            Storage::Cpu(d) => Storage::Cpu(Arc::new(RwLock::new(cpu::cross_entropy(&read(d), cols, targets)))),
            Storage::Gpu(b) => Storage::Gpu(Arc::new(b.device().cross_entropy(b, rows, cols, targets)?)),
        };
        Ok(Tensor { shape: vec![rows, 1], storage })
    }

    /// The rows (first-axis slices) at `indices`, in that order.
    pub fn gather_rows(&self, indices: &[u32]) -> Result<Tensor, TensorError> {
        let Some((&rows, rest)) = self.shape.split_first() else {
            return Err(TensorError::new("gather-rows", "needs at least one dimension, got a scalar shape []"));
        };
        if let Some((pos, i)) = indices.iter().enumerate().find(|(_, i)| **i as usize >= rows) {
            return Err(TensorError::new(
                "gather-rows",
                format!("index {i} at position {pos} is out of range for shape {:?}", self.shape),
            ));
        }
        let mut out = vec![indices.len()];
        out.extend_from_slice(rest);
        checked_len("gather-rows", &out)?;
        let row_len: usize = rest.iter().product();
        let storage = match &self.storage {
            Storage::Cpu(d) => Storage::Cpu(Arc::new(RwLock::new(cpu::gather_rows(&read(d), row_len, indices)))),
            Storage::Gpu(b) => Storage::Gpu(Arc::new(b.device().gather_rows(b, row_len, indices)?)),
        };
        Ok(Tensor { shape: out, storage })
    }

    /// One SGD update of `self` (a parameter) in place, with its gradient
    /// and momentum buffer (same shape; the buffer is updated too).
    pub fn sgd_step(&self, grad: &Tensor, velocity: &Tensor, h: SgdParams) -> Result<(), TensorError> {
        let op = "sgd-step";
        self.check_state(op, &[("grad", grad, false), ("velocity", velocity, true)])?;
        match (&self.storage, &grad.storage, &velocity.storage) {
            (Storage::Cpu(p), Storage::Cpu(g), Storage::Cpu(v)) => {
                cpu::sgd_step(&mut write(p), &read(g), &mut write(v), h);
                Ok(())
            }
            (Storage::Gpu(p), Storage::Gpu(g), Storage::Gpu(v)) => {
                same_device(op, p, g)?;
                same_device(op, p, v)?;
                p.device().sgd_step(p, g, v, self.len(), h)
            }
            _ => Err(mixed(op)),
        }
    }

    /// One Adam update of `self` in place, with its gradient and moment
    /// buffers (same shape; the moments are updated too).
    pub fn adam_step(&self, grad: &Tensor, m: &Tensor, v: &Tensor, h: AdamParams) -> Result<(), TensorError> {
        let op = "adam-step";
        self.check_state(op, &[("grad", grad, false), ("m", m, true), ("v", v, true)])?;
        if h.step == 0 {
            return Err(TensorError::new(op, "step counts from 1"));
        }
        match (&self.storage, &grad.storage, &m.storage, &v.storage) {
            (Storage::Cpu(p), Storage::Cpu(g), Storage::Cpu(m), Storage::Cpu(v)) => {
                cpu::adam_step(&mut write(p), &read(g), &mut write(m), &mut write(v), h);
                Ok(())
            }
            (Storage::Gpu(p), Storage::Gpu(g), Storage::Gpu(m), Storage::Gpu(v)) => {
                for other in [g, m, v] {
                    same_device(op, p, other)?;
                }
                p.device().adam_step(p, g, m, v, self.len(), h)
            }
            _ => Err(mixed(op)),
        }
    }

    /// Checks an optimizer's operands: same shape as the parameter, and no
    /// tensor that is written shares storage with another operand (an
    /// in-place update of aliased buffers would be a data race on a GPU and
    /// a deadlock on the CPU path).
    fn check_state(&self, op: &'static str, others: &[(&str, &Tensor, bool)]) -> Result<(), TensorError> {
        for (name, t, _) in others {
            if t.shape != self.shape {
                return Err(TensorError::new(
                    op,
                    format!("{name} has shape {:?}, the parameter {:?}", t.shape, self.shape),
                ));
            }
        }
        let all: Vec<(&str, &Tensor, bool)> =
            std::iter::once(("parameter", self, true)).chain(others.iter().copied()).collect();
        for (i, (n1, t1, w1)) in all.iter().enumerate() {
            for (n2, t2, w2) in &all[i + 1..] {
                if (*w1 || *w2) && t1.shares_storage(t2) {
                    return Err(TensorError::new(op, format!("{n1} and {n2} are the same tensor")));
                }
            }
        }
        Ok(())
    }

    /// Whether two tensors are views of the same storage.
    pub fn shares_storage(&self, other: &Tensor) -> bool {
        match (&self.storage, &other.storage) {
            (Storage::Cpu(a), Storage::Cpu(b)) => Arc::ptr_eq(a, b),
            (Storage::Gpu(a), Storage::Gpu(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

fn binary_name(op: Binary) -> &'static str {
    match op {
        Binary::Add => "add",
        Binary::Sub => "sub",
        Binary::Mul => "mul",
        Binary::Div => "div",
        Binary::Maximum => "maximum",
        Binary::Minimum => "minimum",
        Binary::Greater => "greater",
        Binary::ReluBackward => "relu-backward",
    }
}

fn mixed(op: &'static str) -> TensorError {
    TensorError::new(op, "operands live on different devices (one on the CPU path, one on a GPU)")
}

fn same_device(op: &'static str, a: &GpuBuffer, b: &GpuBuffer) -> Result<(), TensorError> {
    if Arc::ptr_eq(a.device(), b.device()) {
        Ok(())
    } else {
        Err(TensorError::new(op, "operands live on different GPUs"))
    }
}
