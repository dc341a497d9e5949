//! Host tensors, as the guest holds them: the handle every library that
//! computes on tensors (`wray::nn`, ...) builds on.

use crate::Error;
use crate::ObjectRef;
use crate::bindings::wray::runtime::tensors as wit;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::rc::Rc;

/// A tensor's contents as a plain value: what [`Tensor::to_object`] stores
/// and [`Tensor::from_object`] reads, and what `wray::get` returns for such
/// an object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorData {
    /// Dimensions, outermost first.
    pub shape: Vec<u32>,
    /// Elements, row-major.
    pub data: Vec<f32>,
}

/// An f32 tensor stored by the host: on the GPU the task holds (see
/// `num_gpus` on task and actor options), or on the CPU path. Cloning is
/// cheap (another handle to the same storage); the storage is freed when
/// the last handle is dropped.
///
/// Operations return new tensors; shapes follow numpy (element-wise
/// operations broadcast). Every failure — shapes that do not fit, an index
/// out of range, the memory limit — is an [`Error::InvalidArgument`] naming
/// the operation and the shapes.
///
/// At most 4 dimensions and 2^25 elements per tensor.
#[derive(Clone)]
pub struct Tensor(pub(crate) Rc<wit::Tensor>);

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor({:?})", self.shape())
    }
}

fn dims(shape: &[usize]) -> Vec<u32> {
    shape.iter().map(|&d| d.min(u32::MAX as usize) as u32).collect()
}

fn wrap(r: Result<wit::Tensor, crate::bindings::wray::runtime::types::Error>) -> Result<Tensor, Error> {
    Ok(Tensor(Rc::new(r?)))
}

/// Where this task's tensors live: `cpu`, or `gpu N: <adapter name>`.
pub fn device() -> String {
    wit::device_info()
}

/// The GPUs the caller's tensors run on, by index on its node (Ray's
/// `ray.get_gpu_ids()`): `[n]` in a task or actor holding `GPU`
/// (`.num_gpus(..)`) on a node that has one, empty otherwise — in the
/// driver, and on the CPU path.
pub fn get_gpu_ids() -> Vec<u32> {
    gpu_ids(&device())
}

/// `[n]` from a device description `gpu n: adapter`; empty for `cpu`.
fn gpu_ids(device: &str) -> Vec<u32> {
    device.strip_prefix("gpu ").and_then(|rest| rest.split(':').next()?.parse().ok()).into_iter().collect()
}

impl Tensor {
    /// A tensor of `shape` holding `data` (row-major).
    pub fn from_vec(shape: &[usize], data: &[f32]) -> Result<Tensor, Error> {
        wrap(wit::Tensor::from_data(&dims(shape), data))
    }

    /// A tensor of `shape` with every element `value`.
    pub fn full(shape: &[usize], value: f32) -> Result<Tensor, Error> {
        wrap(wit::Tensor::full(&dims(shape), value))
    }

    /// Zeros.
    pub fn zeros(shape: &[usize]) -> Result<Tensor, Error> {
        Tensor::full(shape, 0.0)
    }

    /// Ones.
    pub fn ones(shape: &[usize]) -> Result<Tensor, Error> {
        Tensor::full(shape, 1.0)
    }

    /// A scalar (shape `[1]`).
    pub fn scalar(value: f32) -> Result<Tensor, Error> {
        Tensor::full(&[1], value)
    }

    /// `[indices.len(), classes]` rows with a 1 at each index.
    pub fn one_hot(indices: &[u32], classes: usize) -> Result<Tensor, Error> {
        wrap(wit::Tensor::one_hot(indices, classes.min(u32::MAX as usize) as u32))
    }

    /// Reads a tensor from an object (made by [`Tensor::to_object`] or
    /// `wray::put(&TensorData {..})`) without copying it through guest
    /// memory.
    pub fn from_object(r: &ObjectRef<TensorData>) -> Result<Tensor, Error> {
        wrap(wit::Tensor::from_object(&r.handle))
    }

    /// Stores the tensor in the object store, straight from its device.
    pub fn to_object(&self) -> Result<ObjectRef<TensorData>, Error> {
        Ok(ObjectRef::from_handle(self.0.to_object()?))
    }

    /// The shape (empty once freed).
    pub fn shape(&self) -> Vec<usize> {
        self.0.shape().into_iter().map(|d| d as usize).collect()
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the tensor lives on a GPU.
    pub fn on_gpu(&self) -> bool {
        self.0.device() == wit::DeviceKind::Gpu
    }

    /// Copies the elements into guest memory (row-major).
    pub fn to_vec(&self) -> Result<Vec<f32>, Error> {
        Ok(self.0.read()?)
    }

    /// Overwrites the elements in place with `data` (row-major, exactly as
    /// many as the tensor has). Every handle on this tensor — a model's
    /// parameter and its optimizer's copy of it — and every `reshape` of it
    /// sees the new values: how `wray::train::prepare_model` copies rank
    /// 0's weights into the other replicas.
    pub fn write(&self, data: &[f32]) -> Result<(), Error> {
        Ok(self.0.write(data)?)
    }

    /// The first element (the value of a one-element tensor).
    pub fn item(&self) -> Result<f32, Error> {
        self.to_vec()?.first().copied().ok_or_else(|| Error::InvalidArgument("item: the tensor is empty".into()))
    }

    /// Frees the storage now, for every handle; later uses fail.
    pub fn free(&self) {
        self.0.free()
    }

    /// The same elements under another shape (shares storage).
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor, Error> {
        wrap(self.0.reshape(&dims(shape)))
    }

    fn unary(&self, op: wit::UnaryOp) -> Result<Tensor, Error> {
        wrap(self.0.unary(op))
    }

    fn binary(&self, op: wit::BinaryOp, other: &Tensor) -> Result<Tensor, Error> {
        wrap(self.0.binary(op, &other.0))
    }

    /// `-x`
    pub fn neg(&self) -> Result<Tensor, Error> {
        self.unary(wit::UnaryOp::Neg)
    }
    /// `max(x, 0)`
    pub fn relu(&self) -> Result<Tensor, Error> {
        self.unary(wit::UnaryOp::Relu)
    }
    /// `1 / (1 + e^-x)`
    pub fn sigmoid(&self) -> Result<Tensor, Error> {
        self.unary(wit::UnaryOp::Sigmoid)
    }
    /// `tanh(x)`
    pub fn tanh(&self) -> Result<Tensor, Error> {
        self.unary(wit::UnaryOp::Tanh)
    }
    /// `e^x`
    pub fn exp(&self) -> Result<Tensor, Error> {
        self.unary(wit::UnaryOp::Exp)
    }
    /// `ln(x)`
    pub fn log(&self) -> Result<Tensor, Error> {
        self.unary(wit::UnaryOp::Log)
    }
    /// `sqrt(x)`
    pub fn sqrt(&self) -> Result<Tensor, Error> {
        self.unary(wit::UnaryOp::Sqrt)
    }
    /// `|x|`
    pub fn abs(&self) -> Result<Tensor, Error> {
        self.unary(wit::UnaryOp::Abs)
    }
    /// `x * scale + shift`
    pub fn affine(&self, scale: f32, shift: f32) -> Result<Tensor, Error> {
        wrap(self.0.affine(scale, shift))
    }
    /// `min(max(x, lo), hi)`
    pub fn clamp(&self, lo: f32, hi: f32) -> Result<Tensor, Error> {
        wrap(self.0.clamp(lo, hi))
    }
    /// `x ^ exponent`
    pub fn pow(&self, exponent: f32) -> Result<Tensor, Error> {
        wrap(self.0.pow(exponent))
    }
    /// `a + b` (broadcasting)
    pub fn add(&self, other: &Tensor) -> Result<Tensor, Error> {
        self.binary(wit::BinaryOp::Add, other)
    }
    /// `a - b` (broadcasting)
    pub fn sub(&self, other: &Tensor) -> Result<Tensor, Error> {
        self.binary(wit::BinaryOp::Sub, other)
    }
    /// `a * b` (broadcasting)
    pub fn mul(&self, other: &Tensor) -> Result<Tensor, Error> {
        self.binary(wit::BinaryOp::Mul, other)
    }
    /// `a / b` (broadcasting)
    pub fn div(&self, other: &Tensor) -> Result<Tensor, Error> {
        self.binary(wit::BinaryOp::Div, other)
    }
    /// `max(a, b)` (broadcasting)
    pub fn maximum(&self, other: &Tensor) -> Result<Tensor, Error> {
        self.binary(wit::BinaryOp::Maximum, other)
    }
    /// `min(a, b)` (broadcasting)
    pub fn minimum(&self, other: &Tensor) -> Result<Tensor, Error> {
        self.binary(wit::BinaryOp::Minimum, other)
    }
    /// 1 where `a > b`, else 0 (broadcasting)
    pub fn greater(&self, other: &Tensor) -> Result<Tensor, Error> {
        self.binary(wit::BinaryOp::Greater, other)
    }
    /// `grad` where `self > 0`, else 0: ReLU's backward pass.
    pub fn relu_backward(&self, grad: &Tensor) -> Result<Tensor, Error> {
        self.binary(wit::BinaryOp::ReluBackward, grad)
    }

    /// Matrix product `op(self) · op(other)`; `op` transposes when the flag
    /// is set (no copy is made).
    pub fn matmul_t(&self, other: &Tensor, transpose_self: bool, transpose_other: bool) -> Result<Tensor, Error> {
        wrap(self.0.matmul(&other.0, transpose_self, transpose_other))
    }

    /// Matrix product `self · other`.
    pub fn matmul(&self, other: &Tensor) -> Result<Tensor, Error> {
        self.matmul_t(other, false, false)
    }

    fn reduce(&self, op: wit::ReduceOp, axis: usize) -> Result<Tensor, Error> {
        wrap(self.0.reduce(op, axis.min(u32::MAX as usize) as u32))
    }
    /// Sum along `axis` (kept with length 1).
    pub fn sum(&self, axis: usize) -> Result<Tensor, Error> {
        self.reduce(wit::ReduceOp::Sum, axis)
    }
    /// Mean along `axis` (kept with length 1).
    pub fn mean(&self, axis: usize) -> Result<Tensor, Error> {
        self.reduce(wit::ReduceOp::Mean, axis)
    }
    /// Maximum along `axis` (kept with length 1).
    pub fn max(&self, axis: usize) -> Result<Tensor, Error> {
        self.reduce(wit::ReduceOp::Max, axis)
    }
    /// Sum of every element, shape `[1]`.
    pub fn sum_all(&self) -> Result<Tensor, Error> {
        self.reshape(&[1, self.len()])?.sum(1)?.reshape(&[1])
    }
    /// Mean of every element, shape `[1]`.
    pub fn mean_all(&self) -> Result<Tensor, Error> {
        self.reshape(&[1, self.len()])?.mean(1)?.reshape(&[1])
    }

    /// Softmax of each row of a matrix.
    pub fn softmax(&self) -> Result<Tensor, Error> {
        wrap(self.0.softmax())
    }

    /// `[rows, 1]`: each row's cross-entropy (`logsumexp(row) -
    /// row[target]`) against its class index.
    pub fn cross_entropy(&self, targets: &[u32]) -> Result<Tensor, Error> {
        wrap(self.0.cross_entropy(targets))
    }

    /// The rows (first-axis slices) at `indices`, in order: how
    /// `wray::nn::DataLoader` makes batches without copying
    /// through guest memory.
    pub fn gather_rows(&self, indices: &[u32]) -> Result<Tensor, Error> {
        wrap(self.0.gather_rows(indices))
    }

    /// One fused SGD update of `self` (a parameter) and `velocity`, in place.
    pub fn sgd_step(
        &self,
        grad: &Tensor,
        velocity: &Tensor,
        lr: f32,
        momentum: f32,
        weight_decay: f32,
    ) -> Result<(), Error> {
        let params = wit::SgdParams { lr, momentum, weight_decay };
        Ok(self.0.sgd_step(&grad.0, &velocity.0, params)?)
    }

    /// One fused Adam update of `self`, `m` and `v`, in place.
    #[allow(clippy::too_many_arguments)]
    pub fn adam_step(
        &self,
        grad: &Tensor,
        m: &Tensor,
        v: &Tensor,
        lr: f32,
        betas: (f32, f32),
        eps: f32,
        weight_decay: f32,
        step: u32,
    ) -> Result<(), Error> {
        let params = wit::AdamParams { lr, beta1: betas.0, beta2: betas.1, eps, weight_decay, step };
        Ok(self.0.adam_step(&grad.0, &m.0, &v.0, params)?)
    }
}
