//! The host side of the `wray:runtime` interfaces, one file per interface
//! (`tensors` lives with the tensor store in `crate::tensors`). Each
//! function checks what the guest passed, asks the node through
//! [`Services`](crate::Services), and answers with a value or a
//! guest-visible error; traps are kept for forged handles and hostile sizes.

mod actors;
mod checkpoint;
mod cluster;
pub(crate) mod meeting;
mod serve;
mod tasks;
