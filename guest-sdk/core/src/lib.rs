//! The core of wray's guest SDK: what every job links, whichever libraries
//! it uses — object refs, remote functions and actors, `get`/`put`/`wait`,
//! placement groups, actor checkpoints, the handle of a host tensor and a
//! seeded random number generator — and the job's `entry` export.
//!
//! Jobs do not name this crate: they depend on `wray`, which re-exports it
//! whole and adds the libraries (`wray::nn`, `wray::tune`, ...) as Cargo
//! features. The libraries are crates of their own built on this crate's
//! public API only; nothing here knows them. The macros expand to `::wray`
//! paths, which is why the user-facing name is the facade's.

#![deny(missing_docs)]

// The macros expand to `::wray` paths; inside this crate that is the crate
// itself (for the remote function behind `util::Pool`).
extern crate self as wray;

mod actor;
mod api;
mod arg;
mod bindings;
mod checkpoint;
mod code;
mod dispatch;
mod error;
mod exit;
mod generator;
pub mod meeting;
mod object_ref;
mod options;
mod placement;
mod rng;
mod serve;
pub mod tensor;
pub mod util;
mod value;

pub use actor::{Actor, ActorHandle, DynActor, exit_actor, get_actor, get_actor_dyn, kill, list_named_actors};
pub use api::{
    MAX_STATUS_BYTES, NodeInfo, RuntimeContext, available_resources, cancel, cluster_resources, get, get_all,
    get_timeout, nodes, publish_status, put, runtime_context, try_put, wait,
};
pub use arg::Arg;
pub use code::Code;
pub use error::Error;
pub use generator::ObjectRefGenerator;
pub use object_ref::{ObjectId, ObjectRef};
pub use options::{CallOptions, SchedulingStrategy};
pub use placement::{PlacementGroup, PlacementStrategy, placement_group, remove_placement_group};
pub use rng::{Rng, numpy_permutation};
pub use tensor::{Tensor, TensorData, get_gpu_ids};
/// Plain data that crosses between languages (a Python job's values): see
/// [`wray_codec::value`] for the encoding.
pub use wray_codec::Value;

/// Makes a free function remote. See the `wray` crate's docs, section *Remote functions*.
///
/// ```no_run
/// #[wray::remote]
/// fn add(a: i64, b: i64) -> i64 { a + b }
///
/// # fn main() -> Result<(), wray::Error> {
/// let sum = add::options().num_cpus(0.5).remote(1, 2);
/// assert_eq!(wray::get(&sum)?, 3);
/// # Ok(()) }
/// ```
pub use wray_macros::remote;

/// Makes a type an actor class. See the `wray` crate's docs, section *Actors*.
pub use wray_macros::actor;

/// Marks the job's driver: the function `wray run` calls. It may take
/// `args: Vec<String>` (what follows `--` on the command line) and return
/// `()` or `Result<(), E>` with `E: Debug`.
pub use wray_macros::main;

/// Items the macros expand to. Not part of the API.
#[doc(hidden)]
#[allow(missing_docs)]
pub mod __private {
    pub use crate::actor::{ActorMethods, RawActor, create_actor};
    pub use crate::arg::RawArg;
    pub use crate::dispatch::{ActorCtor, ActorMethod, MainFn, Outcome, RemoteFn};
    pub use crate::generator::yield_item;
    pub use crate::serve::{RawDeployment, reconfigure as serve_reconfigure, run as serve_run};
    pub use inventory;
    pub use serde;

    use crate::arg::with_wit_args;
    use crate::bindings::wray::runtime::tasks;
    use crate::{CallOptions, Error, ObjectRef};
    use std::fmt;

    /// Submits a task; used by the generated `f::remote`.
    pub fn submit<R>(function: &str, args: Vec<RawArg>, options: &CallOptions) -> ObjectRef<R> {
        let opts = options.to_wit();
        match with_wit_args(args, |a| tasks::submit(function, a, &opts)) {
            Ok(h) => ObjectRef::from_handle(h),
            Err(e) => panic!("submitting {function}: {}", Error::from(e)),
        }
    }

    /// Submits a generator task; used by the generated `f::remote` of a
    /// function returning `impl Iterator`.
    pub fn submit_generator<T>(
        function: &str,
        args: Vec<RawArg>,
        options: &CallOptions,
    ) -> crate::ObjectRefGenerator<T> {
        crate::ObjectRefGenerator::new(submit(function, args, options))
    }

    /// The generator of a generator method's call (its result's ref).
    pub fn generator_of<T>(result: ObjectRef<()>) -> crate::ObjectRefGenerator<T> {
        crate::ObjectRefGenerator::new(result)
    }

    /// Decodes argument `name` of `function`.
    pub fn decode_arg<T: serde::de::DeserializeOwned + 'static>(
        function: &str,
        name: &str,
        bytes: &[u8],
    ) -> Result<T, String> {
        crate::value::decode(bytes).map_err(|e| format!("{function}: argument `{name}`: {e}"))
    }

    /// Takes the `N` arguments a function expects.
    pub fn take_args<const N: usize>(function: &str, args: Vec<Vec<u8>>) -> Result<[Vec<u8>; N], String> {
        let got = args.len();
        <[Vec<u8>; N]>::try_from(args).map_err(|_| format!("{function} takes {N} arguments, got {got}"))
    }

    /// Encodes a successful result.
    pub fn encode_ok<T: serde::Serialize + 'static>(v: &T) -> Outcome {
        Ok(crate::value::encode(v))
    }

    /// What `#[remote]` functions returning `Result` may return.
    pub trait TaskResult {
        /// The success type: what `get` returns.
        type Ok;
        /// `Ok(value)` or the error's message.
        fn into_task_result(self) -> Result<Self::Ok, String>;
    }

    impl<T, E: fmt::Display> TaskResult for Result<T, E> {
        type Ok = T;
        fn into_task_result(self) -> Result<T, String> {
            self.map_err(|e| e.to_string())
        }
    }

    /// What `#[main]` may return.
    pub trait MainResult {
        /// `Ok` or the error, as `Debug` formats it (like Rust's own `main`).
        fn into_main_result(self) -> Result<(), String>;
    }

    impl MainResult for () {
        fn into_main_result(self) -> Result<(), String> {
            Ok(())
        }
    }

    impl<E: fmt::Debug> MainResult for Result<(), E> {
        fn into_main_result(self) -> Result<(), String> {
            self.map_err(|e| format!("{e:?}"))
        }
    }
}
