//! # wray: Ray's programming model for WebAssembly components
//!
//! Write a job as ordinary Rust: turn functions into remote tasks with
//! [`#[wray::remote]`](remote), types into actors with
//! [`#[wray::actor]`](actor), pass [`ObjectRef`]s around, and read results
//! with [`get`]. The crate compiles to a `wasm32-wasip2` component that
//! `wray run` executes — every task in its own sandboxed Wasm instance.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! #[wray::remote]
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! #[wray::actor]
//! pub struct Counter {
//!     n: u64,
//! }
//!
//! #[wray::actor]
//! impl Counter {
//!     pub fn new(start: u64) -> Self {
//!         Counter { n: start }
//!     }
//!     pub fn add(&mut self, x: u64) -> u64 {
//!         self.n += x;
//!         self.n
//!     }
//! }
//!
//! #[wray::main]
//! fn main() -> Result<(), wray::Error> {
//!     // Four tasks run in parallel; `get_all` waits for them.
//!     let refs: Vec<_> = (0..4).map(square::remote).collect();
//!     println!("{:?}", wray::get_all(&refs)?); // [0, 1, 4, 9]
//!
//!     // An actor keeps state between calls; calls run in order.
//!     let counter = Counter::remote(10);
//!     counter.add(5);
//!     println!("{}", wray::get(&counter.add(1))?); // 16
//!
//!     // Refs are accepted wherever a value is: resolved before the task runs.
//!     let r = wray::put(&3u64);
//!     println!("{}", wray::get(&square::remote(&r))?); // 9
//!     Ok(())
//! }
//! ```
//!
//! ## Building and running
//!
//! A job is a library crate of type `cdylib` that depends on `wray` and
//! `serde`:
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! wray = { path = "../wray/guest-sdk/wray" }
//! serde = { version = "1", features = ["derive"] }
//! ```
//!
//! `wray build` compiles it (release, `wasm32-wasip2`) and prints the
//! component's path; `wray run job.wasm` runs it. See `docs/GUIDE.md` in the
//! repository for the whole tour.
//!
//! ## Remote functions
//!
//! `#[wray::remote]` on a free function `fn f(a: A, b: B) -> R` keeps `f`
//! callable locally and adds a module `f` with:
//!
//! * `f::remote(a, b) -> ObjectRef<R>` — submit a task. Each argument may be
//!   an `A`, an `ObjectRef<A>` or a `&ObjectRef<A>`; refs are resolved before
//!   the task starts.
//! * `f::options()` — a builder: `.num_cpus(2.0)`, `.resource("name", 1.0)`,
//!   `.memory_limit(bytes)`, `.time_limit(duration)`, `.max_retries(n)`,
//!   `.retry_exceptions(true)`, then `.remote(a, b)`.
//!
//! If `R` is `Result<T, E>` (with `E: Display`), the ref is an `ObjectRef<T>`
//! and an `Err` fails the task: [`get`] returns [`Error::TaskFailed`] naming
//! the function and `E`'s message. A panic or a trap (out of memory, time
//! limit, stack overflow) fails the task the same way and nothing else.
//! Parameters and results are any `serde` types; they must be owned
//! (no references) and the function must not be generic or `async`.
//!
//! ## Actors
//!
//! `#[wray::actor]` on an `impl` block makes the type an actor class (put it
//! on the struct too, for readers). The associated function `new` returning
//! `Self` (or, without a `new`, the only one returning `Self`) is the
//! constructor; every method taking `&self` or `&mut self` is callable
//! remotely. It adds:
//!
//! * `Type::remote(ctor args) -> ActorHandle<Type>` and `Type::options()` with
//!   `.name("n")`, `.max_concurrency(n)`, `.max_restarts(n)`,
//!   `.max_task_retries(n)`, `.checkpoint_every(n)`, `.num_cpus(x)`,
//!   `.memory_limit(bytes)`, `.time_limit(d)`, then `.remote(..)` or
//!   `.try_remote(..)`;
//! * on the handle, `handle.method(args) -> ObjectRef<R>` for each method.
//!
//! Each actor is one long-lived Wasm instance; its calls run one at a time in
//! submission order. [`get_actor`] finds a named actor, [`kill`] stops one.
//!
//! A crashed actor is rebuilt while `max_restarts` allows: by re-running its
//! constructor (the state starts over, as in Ray), or, with
//! `.checkpoint_every(n)`, from a snapshot of its linear memory taken after
//! every n-th call — also on another node when its node died. An actor
//! qualifies for snapshots while it holds no object refs, tensors or open
//! files between calls (printing is fine); a snapshot that finds one is
//! skipped with a warning, and a restart uses the last one taken.
//!
//! ## Clusters and placement groups
//!
//! The same job runs on a cluster (`wray run --address`): tasks and actors
//! go to the nodes that have the resources they ask for, and spill over to
//! other nodes when theirs is busy. [`placement_group`] reserves bundles of
//! resources together (PACK, SPREAD, STRICT_PACK, STRICT_SPREAD);
//! `.placement_group(&group, index)` on a task's or actor's options runs it
//! in a bundle.
//!
//! ## Tensors and neural networks
//!
//! [`nn`] holds tensors stored by the host — on a GPU for tasks and actors
//! with `.num_gpus(..)`, on the CPU path otherwise — with autograd, layers,
//! losses, optimizers and data loading. See the [`nn`] module docs.
//!
//! ## Values and limits
//!
//! Values are encoded with the codec described in the `wray-codec` crate:
//! `Vec<u8>`, `Vec<f32>` and the other numeric vectors are moved with one
//! `memcpy`; everything else uses postcard. A job sees no files, network or
//! environment unless `wray run` grants them (`--dir`, `--env`).

#![deny(missing_docs)]

mod actor;
mod api;
mod arg;
mod bindings;
mod checkpoint;
mod dispatch;
mod error;
pub mod nn;
mod object_ref;
mod options;
mod placement;
pub mod tune;
mod value;

pub use actor::{Actor, ActorHandle, get_actor, kill};
pub use api::{
    RuntimeContext, available_resources, cancel, cluster_resources, get, get_all, get_timeout, put, runtime_context,
    try_put, wait,
};
pub use arg::Arg;
pub use error::Error;
pub use object_ref::{ObjectId, ObjectRef};
pub use options::CallOptions;
pub use placement::{PlacementGroup, PlacementStrategy, placement_group, remove_placement_group};

/// Makes a free function remote. See the [crate docs](crate#remote-functions).
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

/// Makes a type an actor class. See the [crate docs](crate#actors).
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
