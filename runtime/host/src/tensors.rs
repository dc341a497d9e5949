//! The host side of the `tensors` interface: tensors live in the instance's
//! resource table, their storage on the device the node gives the caller.

use crate::bindings::wray::runtime::{tensors, types};
use crate::instance::{RefGuard, State, to_wit_error};
use crate::services::Value;
use wasmtime::component::Resource;
use wray_core::ObjectId;
use wray_gpu::{Binary, Device, Reduce, Tensor, TensorError, Unary};

/// A tensor as the guest holds it. `None` once freed.
pub struct HostTensor {
    tensor: Option<Tensor>,
}

type Made = wasmtime::Result<Result<Resource<HostTensor>, types::Error>>;

fn invalid(e: TensorError) -> types::Error {
    types::Error::InvalidArgument(e.to_string())
}

fn shape_of(shape: &[u32]) -> Vec<usize> {
    shape.iter().map(|&d| d as usize).collect()
}

/// A tensor object's bytes: the `postcard` encoding of the SDK's
/// `TensorData { shape: Vec<u32>, data: Vec<f32> }` (varint lengths and
/// dimensions, then the f32s little-endian), so a guest can also `get` it.
pub(crate) fn encode_tensor(shape: &[usize], data: &[f32]) -> Vec<u8> {
    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let mut out = Vec::with_capacity(16 + data.len() * 4);
    varint(&mut out, shape.len() as u64);
    for &d in shape {
        varint(&mut out, d as u64);
    }
    varint(&mut out, data.len() as u64);
    for x in data {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// The inverse of [`encode_tensor`]; every length is checked against the
/// bytes and the tensor limits before anything is allocated.
pub(crate) fn decode_tensor(bytes: &[u8]) -> Result<(Vec<usize>, Vec<f32>), String> {
    let mut at = 0usize;
    let mut varint = || -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *bytes.get(at).ok_or("the object ends inside a length")?;
            at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("a length is not a valid varint".into())
    };
    let rank = varint()? as usize;
    if rank > wray_gpu::MAX_RANK {
        return Err(format!("the object's tensor has {rank} dimensions, more than {}", wray_gpu::MAX_RANK));
    }
    let shape = (0..rank).map(|_| varint().map(|d| d as usize)).collect::<Result<Vec<_>, _>>()?;
    let len = varint()? as usize;
    let rest = &bytes[at..];
    let expected = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if expected != Some(len) || rest.len() != len.saturating_mul(4) {
        return Err(format!("the object is not a tensor: shape {shape:?} with {len} values in {} bytes", rest.len()));
    }
    let data = rest.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    Ok((shape, data))
}

/// Multiply-adds above which a CPU-path GEMM counts as long-running.
const HEAVY_GEMM: usize = 1 << 24;

/// Runs tensor work that may take a while (a GPU read waits for the kernels;
/// a large CPU-path GEMM computes for milliseconds) without stalling the
/// other tasks scheduled on this executor thread.
fn heavy<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Whether reading `t` back may wait on a device or copy a lot.
fn heavy_read(t: &Tensor) -> bool {
    t.device_kind() == wray_gpu::DeviceKind::Gpu || t.len() >= 1 << 20
}

impl State {
    /// The caller's device, asked of the node once per instance (an actor
    /// keeps its device across calls).
    fn device(&mut self) -> Device {
        if self.device.is_none() {
            self.device = Some(self.services.device(&self.caller));
        }
        self.device.clone().unwrap_or(Device::Cpu)
    }

    fn tensor(&self, r: &Resource<HostTensor>, op: &str) -> wasmtime::Result<Result<Tensor, types::Error>> {
        Ok(match &self.table.get(r)?.tensor {
            Some(t) => Ok(t.clone()),
            None => Err(types::Error::InvalidArgument(format!("{op}: the tensor was freed"))),
        })
    }

    /// Adds a new tensor to the table if the instance's tensor memory has
    /// room for it.
    fn adopt(&mut self, made: Result<Tensor, TensorError>) -> Made {
        let t = match made {
            Ok(t) => t,
            Err(e) => return Ok(Err(invalid(e))),
        };
        // A reshape shares storage but is counted again: simple, and errs on
        // the side of the limit.
        let bytes = t.bytes();
        if self.tensor_bytes + bytes > self.limiter.memory {
            return Ok(Err(types::Error::InvalidArgument(format!(
                "tensor memory limit exceeded: a {:?} tensor ({bytes} bytes) on top of {} bytes of live tensors would pass the instance's limit of {} bytes (set with memory_limit / --memory-limit)",
                t.shape(),
                self.tensor_bytes,
                self.limiter.memory
            ))));
        }
        self.tensor_bytes += bytes;
        Ok(Ok(self.table.push(HostTensor { tensor: Some(t) })?))
    }

    fn release_tensor(&mut self, t: Option<Tensor>) {
        if let Some(t) = t {
            self.tensor_bytes = self.tensor_bytes.saturating_sub(t.bytes());
        }
    }

    /// Applies `f` to the tensor behind `r` and adopts the result.
    fn derive(
        &mut self,
        r: &Resource<HostTensor>,
        op: &str,
        f: impl FnOnce(&Tensor) -> Result<Tensor, TensorError>,
    ) -> Made {
        match self.tensor(r, op)? {
            Ok(t) => {
                let made = f(&t);
                self.adopt(made)
            }
            Err(e) => Ok(Err(e)),
        }
    }
}

impl tensors::Host for State {
    async fn device_info(&mut self) -> wasmtime::Result<String> {
        Ok(self.device().describe())
    }
}

impl tensors::HostTensor for State {
    async fn from_data(&mut self, shape: Vec<u32>, data: Vec<f32>) -> Made {
        let device = self.device();
        self.adopt(Tensor::from_data(&device, &shape_of(&shape), &data))
    }

    async fn full(&mut self, shape: Vec<u32>, value: f32) -> Made {
        let device = self.device();
        self.adopt(Tensor::full(&device, &shape_of(&shape), value))
    }

    async fn one_hot(&mut self, indices: Vec<u32>, classes: u32) -> Made {
        let device = self.device();
        self.adopt(Tensor::one_hot(&device, &indices, classes as usize))
    }

    async fn from_object(&mut self, obj: Resource<RefGuard>) -> Made {
        let id = self.table.get(&obj)?.id;
        self.apply_releases();
        let work = self.services.get(&self.caller, vec![id], None);
        let got = self.call.clock.off_while_waiting(work).await;
        let bytes = match got {
            Ok(mut v) => v.pop().unwrap_or_default(),
            Err(e) => return Ok(Err(to_wit_error(e))),
        };
        let (shape, data) = match decode_tensor(&bytes) {
            Ok(d) => d,
            Err(e) => {
                return Ok(Err(types::Error::InvalidArgument(format!(
                    "tensor from-object: the object does not hold a tensor ({e})"
                ))));
            }
        };
        let device = self.device();
        self.adopt(Tensor::from_data(&device, &shape, &data))
    }

    async fn to_object(
        &mut self,
        r: Resource<HostTensor>,
    ) -> wasmtime::Result<Result<Resource<RefGuard>, types::Error>> {
        let t = match self.tensor(&r, "to-object")? {
            Ok(t) => t,
            Err(e) => return Ok(Err(e)),
        };
        let data = match if heavy_read(&t) { heavy(|| t.to_vec()) } else { t.to_vec() } {
            Ok(d) => d,
            Err(e) => return Ok(Err(invalid(e))),
        };
        let bytes = bytes::Bytes::from(encode_tensor(t.shape(), &data));
        self.call.puts += 1;
        let id = ObjectId::put_by(self.caller.task, self.call.puts);
        match self.services.put(&self.caller, id, Value { data: bytes, ..Value::default() }) {
            Ok(()) => Ok(Ok(self.guard(id)?)),
            Err(e) => Ok(Err(to_wit_error(e))),
        }
    }

    async fn shape(&mut self, r: Resource<HostTensor>) -> wasmtime::Result<Vec<u32>> {
        Ok(self.table.get(&r)?.tensor.as_ref().map_or(Vec::new(), |t| t.shape().iter().map(|&d| d as u32).collect()))
    }

    async fn device(&mut self, r: Resource<HostTensor>) -> wasmtime::Result<tensors::DeviceKind> {
        Ok(match self.table.get(&r)?.tensor.as_ref().map(Tensor::device_kind) {
            Some(wray_gpu::DeviceKind::Gpu) => tensors::DeviceKind::Gpu,
            _ => tensors::DeviceKind::Cpu,
        })
    }

    async fn read(&mut self, r: Resource<HostTensor>) -> wasmtime::Result<Result<Vec<f32>, types::Error>> {
        Ok(self.tensor(&r, "read")?.and_then(|t| {
            let data = if heavy_read(&t) { heavy(|| t.to_vec()) } else { t.to_vec() };
            data.map_err(invalid)
        }))
    }

    async fn free(&mut self, r: Resource<HostTensor>) -> wasmtime::Result<()> {
        let t = self.table.get_mut(&r)?.tensor.take();
        self.release_tensor(t);
        Ok(())
    }

    async fn reshape(&mut self, r: Resource<HostTensor>, shape: Vec<u32>) -> Made {
        self.derive(&r, "reshape", |t| t.reshape(&shape_of(&shape)))
    }

    async fn unary(&mut self, r: Resource<HostTensor>, op: tensors::UnaryOp) -> Made {
        let op = match op {
            tensors::UnaryOp::Neg => Unary::Neg,
            tensors::UnaryOp::Relu => Unary::Relu,
            tensors::UnaryOp::Sigmoid => Unary::Sigmoid,
            tensors::UnaryOp::Tanh => Unary::Tanh,
            tensors::UnaryOp::Exp => Unary::Exp,
            tensors::UnaryOp::Log => Unary::Log,
            tensors::UnaryOp::Sqrt => Unary::Sqrt,
            tensors::UnaryOp::Abs => Unary::Abs,
        };
        self.derive(&r, "unary", |t| t.unary(op))
    }

    async fn affine(&mut self, r: Resource<HostTensor>, scale: f32, shift: f32) -> Made {
        self.derive(&r, "affine", |t| t.unary(Unary::Affine { scale, shift }))
    }

    async fn clamp(&mut self, r: Resource<HostTensor>, lo: f32, hi: f32) -> Made {
        self.derive(&r, "clamp", |t| t.unary(Unary::Clamp { lo, hi }))
    }

    async fn pow(&mut self, r: Resource<HostTensor>, exponent: f32) -> Made {
        self.derive(&r, "pow", |t| t.unary(Unary::Pow { exponent }))
    }

    async fn binary(&mut self, r: Resource<HostTensor>, op: tensors::BinaryOp, other: Resource<HostTensor>) -> Made {
        let op = match op {
            tensors::BinaryOp::Add => Binary::Add,
            tensors::BinaryOp::Sub => Binary::Sub,
            tensors::BinaryOp::Mul => Binary::Mul,
            tensors::BinaryOp::Div => Binary::Div,
            tensors::BinaryOp::Maximum => Binary::Maximum,
            tensors::BinaryOp::Minimum => Binary::Minimum,
            tensors::BinaryOp::Greater => Binary::Greater,
            tensors::BinaryOp::ReluBackward => Binary::ReluBackward,
        };
        let other = match self.tensor(&other, "binary")? {
            Ok(t) => t,
            Err(e) => return Ok(Err(e)),
        };
        self.derive(&r, "binary", |t| t.binary(op, &other))
    }

    async fn matmul(
        &mut self,
        r: Resource<HostTensor>,
        other: Resource<HostTensor>,
        transpose_self: bool,
        transpose_other: bool,
    ) -> Made {
        let other = match self.tensor(&other, "matmul")? {
            Ok(t) => t,
            Err(e) => return Ok(Err(e)),
        };
        self.derive(&r, "matmul", |t| {
            let work = t.len().saturating_mul(other.shape().iter().copied().max().unwrap_or(0));
            let run = || t.matmul(&other, transpose_self, transpose_other);
            if t.device_kind() == wray_gpu::DeviceKind::Cpu && work >= HEAVY_GEMM { heavy(run) } else { run() }
        })
    }

    async fn reduce(&mut self, r: Resource<HostTensor>, op: tensors::ReduceOp, axis: u32) -> Made {
        let op = match op {
            tensors::ReduceOp::Sum => Reduce::Sum,
            tensors::ReduceOp::Mean => Reduce::Mean,
            tensors::ReduceOp::Max => Reduce::Max,
        };
        self.derive(&r, "reduce", |t| t.reduce(op, axis as usize))
    }

    async fn softmax(&mut self, r: Resource<HostTensor>) -> Made {
        self.derive(&r, "softmax", Tensor::softmax)
    }

    async fn cross_entropy(&mut self, r: Resource<HostTensor>, targets: Vec<u32>) -> Made {
        self.derive(&r, "cross-entropy", |t| t.cross_entropy(&targets))
    }

    async fn gather_rows(&mut self, r: Resource<HostTensor>, indices: Vec<u32>) -> Made {
        self.derive(&r, "gather-rows", |t| t.gather_rows(&indices))
    }

    async fn write(&mut self, r: Resource<HostTensor>, data: Vec<f32>) -> wasmtime::Result<Result<(), types::Error>> {
        let t = self.tensor(&r, "write")?;
        Ok(t.and_then(|t| t.write(&data).map_err(invalid)))
    }

    async fn sgd_step(
        &mut self,
        r: Resource<HostTensor>,
        grad: Resource<HostTensor>,
        velocity: Resource<HostTensor>,
        h: tensors::SgdParams,
    ) -> wasmtime::Result<Result<(), types::Error>> {
        let op = "sgd-step";
        let (p, g, v) = (self.tensor(&r, op)?, self.tensor(&grad, op)?, self.tensor(&velocity, op)?);
        Ok((|| {
            let h = wray_gpu::SgdParams { lr: h.lr, momentum: h.momentum, weight_decay: h.weight_decay };
            p?.sgd_step(&g?, &v?, h).map_err(invalid)
        })())
    }

    async fn adam_step(
        &mut self,
        r: Resource<HostTensor>,
        grad: Resource<HostTensor>,
        m: Resource<HostTensor>,
        v: Resource<HostTensor>,
        h: tensors::AdamParams,
    ) -> wasmtime::Result<Result<(), types::Error>> {
        let op = "adam-step";
        let (p, g, m, v) = (self.tensor(&r, op)?, self.tensor(&grad, op)?, self.tensor(&m, op)?, self.tensor(&v, op)?);
        Ok((|| {
            let h = wray_gpu::AdamParams {
                lr: h.lr,
                beta1: h.beta1,
                beta2: h.beta2,
                eps: h.eps,
                weight_decay: h.weight_decay,
                step: h.step,
            };
            p?.adam_step(&g?, &m?, &v?, h).map_err(invalid)
        })())
    }

    async fn drop(&mut self, r: Resource<HostTensor>) -> wasmtime::Result<()> {
        let t = self.table.delete(r)?.tensor;
        self.release_tensor(t);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_objects_round_trip_and_reject_garbage() {
        let bytes = encode_tensor(&[2, 300], &vec![1.5; 600]);
        let (shape, data) = decode_tensor(&bytes).unwrap();
        assert_eq!(shape, vec![2, 300]);
        assert_eq!(data, vec![1.5; 600]);
        assert!(decode_tensor(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode_tensor(&[]).is_err());
        assert!(decode_tensor(&[9]).unwrap_err().contains("dimensions"));
        assert!(decode_tensor(&[1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0]).is_err());
        // [1 << 40] elements claimed, 0 present: refused before allocating.
        assert!(decode_tensor(&[1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20]).is_err());
    }
}
