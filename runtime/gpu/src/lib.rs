//! Tensors and their kernels for wray's `tensor` interface.
//!
//! A [`Tensor`] is an f32 array with a shape, stored either in host memory
//! (the CPU path) or in a wgpu buffer on a GPU. Every operation exists twice
//! with identical semantics: as a WGSL compute shader (`src/shaders/`) and as
//! a CPU function (`cpu.rs`, GEMM through `matrixmultiply`). The tests run
//! both on random inputs, odd shapes included, and compare them.
//!
//! * [`Devices`]: the GPUs a node found at start ([`Devices::discover`]); a
//!   software adapter (Mesa's lavapipe) counts only when
//!   [`DeviceConfig::allow_software`] says so. No adapter is not an error:
//!   tensors then live on the CPU path.
//! * [`Device`]: where one task's tensors live — [`Device::Cpu`] or a GPU.
//! * [`TensorError`]: every failure names the operation and the shapes, and
//!   is meant for the guest (wrong shapes, bad indices, a freed tensor, a
//!   lost device), never a panic.
//!
//! Sizes a guest controls are bounded: [`MAX_RANK`] dimensions and
//! [`MAX_ELEMENTS`] elements per tensor.

#![deny(missing_docs)]

mod cpu;
mod devices;
mod gpu;
mod ops;
mod tensor;

pub use devices::{DeviceConfig, Devices, SOFTWARE_GPU_ENV};
pub use gpu::{GpuDevice, KERNEL_TIMEOUT};
pub use ops::{AdamParams, Binary, Reduce, SgdParams, Unary};
pub use tensor::{Device, DeviceKind, Tensor, TensorError};

/// Dimensions a tensor may have (broadcasting kernels index up to this many).
pub const MAX_RANK: usize = 4;

/// Elements one tensor may hold: 2^25 f32 = 128 MiB, the storage-buffer
/// binding size every wgpu adapter supports by default.
pub const MAX_ELEMENTS: usize = 1 << 25;

#[cfg(test)]
mod tests;
