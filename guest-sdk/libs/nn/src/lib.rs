//! Neural networks on host tensors: wray's counterpart of `torch.nn`.
//!
//! Tensors ([`Tensor`]) live on the host — on the GPU a task or actor
//! holds (`.num_gpus(..)` on its options), otherwise on the CPU path — and
//! every operation runs there as a kernel; guest memory sees only what you
//! create from guest data or read back. On top of them:
//!
//! * [`Var`]: reverse-mode autograd (`backward`, `grad`).
//! * layers ([`Linear`], [`ReLU`], [`Sigmoid`], [`Tanh`], [`Dropout`],
//!   [`Sequential`]) behind the [`Module`] trait, initialised by [`Init`]
//!   (Kaiming, Xavier) from a seeded [`Rng`];
//! * losses ([`loss::mse`], [`loss::bce`], [`loss::cross_entropy`]);
//! * optimizers ([`Sgd`] with momentum, [`Adam`]) as fused kernels;
//! * data: [`Table::from_csv`], [`train_test_split`], [`StandardScaler`],
//!   [`DataLoader`].
//!
//! ```no_run
//! use wray::nn::{self, Init, Linear, Module, Optimizer, ReLU, Rng, Sequential, Sigmoid, Var};
//!
//! # fn main() -> Result<(), wray::Error> {
//! let mut rng = Rng::new(0);
//! let model = Sequential::new()
//!     .add(Linear::new(2, 8, Init::KaimingUniform, &mut rng)?)
//!     .add(ReLU)
//!     .add(Linear::new(8, 1, Init::XavierUniform, &mut rng)?)
//!     .add(Sigmoid);
//! let mut opt = nn::Sgd::new(model.parameters(), 0.1, 0.9)?;
//! let x = Var::constant(nn::Tensor::from_vec(&[4, 2], &[0., 0., 0., 1., 1., 0., 1., 1.])?);
//! let y = Var::constant(nn::Tensor::from_vec(&[4, 1], &[0., 1., 1., 0.])?);
//! for _ in 0..500 {
//!     opt.zero_grad();
//!     let loss = nn::loss::bce(&model.forward(&x)?, &y)?;
//!     loss.backward()?;
//!     opt.step()?;
//! }
//! println!("{:?}", model.forward(&x)?.value().to_vec()?);
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

mod autograd;
mod data;
mod layers;
pub mod loss;
mod optim;

pub use autograd::Var;
pub use data::{
    Batch, DataLoader, Split, StandardScaler, Table, numpy_permutation, select, to_tensor, train_test_split,
};
pub use layers::{Dropout, Init, Linear, Module, ReLU, Sequential, Sigmoid, Tanh};
pub use optim::{Adam, Optimizer, Sgd};
pub use wray_guest_core::Rng;
pub use wray_guest_core::tensor::{Tensor, TensorData, device};

/// The share of predictions equal to their targets, for 0/1 targets and
/// probabilities cut at 0.5.
pub fn binary_accuracy(probabilities: &[f32], targets: &[f32]) -> f32 {
    let right = probabilities.iter().zip(targets).filter(|(p, t)| (**p >= 0.5) == (**t >= 0.5)).count();
    right as f32 / targets.len().max(1) as f32
}
