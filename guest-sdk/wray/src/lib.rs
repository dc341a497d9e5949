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
//!   `.retry_exceptions(true)`, `.scheduling_strategy(SchedulingStrategy::Spread)`,
//!   `.placement_group(&group, i)`, `.reuse_instance(true)`, then `.remote(a, b)`.
//!
//! Every task runs in a fresh Wasm instance: nothing one task leaves in
//! memory is seen by the next. `.reuse_instance(true)` trades that for
//! speed, as Ray's worker processes do: the task may run in an instance an
//! earlier task of the same job (also asking for reuse, same memory limit)
//! succeeded in, and leaves its own for a later one — statics, the heap and
//! kept refs carry over between them. Instances are never shared between
//! jobs, never kept after a failed task, never kept once they grew past
//! 256 MiB, and a job keeps at most 8 idle. A short task is then three to
//! four times as fast (`wray microbenchmark`: 312k sync round trips a
//! second against 88k, 371k tasks a second in batches against 122k).
//!
//! If `R` is `Result<T, E>` (with `E: Display`), the ref is an `ObjectRef<T>`
//! and an `Err` fails the task: [`get`] returns [`Error::TaskFailed`] naming
//! the function and `E`'s message. A panic or a trap (out of memory, time
//! limit, stack overflow) fails the task the same way and nothing else.
//! Where the error type must be [`Error`] itself (a `train` loop, a `data`
//! closure), raise your own with [`Error::msg`] or `?` on a `String` or a
//! `std::io::Error` ([`Error::Other`]).
//! Parameters and results are any `serde` types; they must be owned
//! (no references) and the function must not be generic or `async`.
//!
//! A function returning `impl Iterator<Item = T>` is a generator task:
//! `f::remote(..)` returns an [`ObjectRefGenerator<T>`], an iterator of
//! `Result<ObjectRef<T>, Error>` that hands over each item as soon as the
//! task yields it, and ends when the task does (a failure after some items
//! comes as one `Err` after them). Actor methods may be generators too.
//! Dropping the generator stops the task at its next yield;
//! `f::options().generator_backpressure(n)` pauses it while `n` items wait
//! unread (Ray's `_generator_backpressure_num_objects`; see
//! [`CallOptions::generator_backpressure`]), and
//! `handle.with_generator_backpressure(n)` does the same for the calls of
//! an actor's generator methods made through that handle
//! ([`ActorHandle::with_generator_backpressure`]).
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
//!   `.memory_limit(bytes)`, `.time_limit(d)`, `.scheduling_strategy(s)`,
//!   then `.remote(..)` or
//!   `.try_remote(..)`;
//! * on the handle, `handle.method(args) -> ObjectRef<R>` for each method.
//!
//! Each actor is one long-lived Wasm instance; its calls run one at a time in
//! submission order. [`get_actor`] finds a named actor, [`list_named_actors`]
//! lists their names, [`kill`] stops one. As in Ray, an actor lives while a
//! handle to it does: once the last [`ActorHandle`] (clones, handles passed to
//! tasks or nested in values included) is dropped, it runs the calls already
//! queued and ends, freeing its resources and name — on a cluster too, wherever
//! its handles went (detached actors live until killed).
//!
//! **Other languages.** A method that takes and returns [`Value`] (plain
//! data: none, bool, i64, f64, string, bytes, list, dict, numeric arrays)
//! can be called by a Python job; [`get_actor_dyn`] finds a Python job's
//! actor and [`DynActor::call`] calls it by method name with `Value`s. The
//! encoding is specified in the `wray-codec` crate (`wray_codec::value`) and
//! in docs/PYTHON.md.
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
//! other nodes when theirs is busy. `.scheduling_strategy(`[`SchedulingStrategy::Spread`]`)`
//! on a task's or actor's options spreads them instead: each asks the head,
//! which takes the nodes with room in turn (Ray's `"SPREAD"`), the
//! submitting node included — for actors that should not share a node's
//! CPUs or its failure; [`SchedulingStrategy::NodeAffinity`] sends one to
//! the node with a given id ([`runtime_context`]'s `node_id`), hard (only
//! there) or soft (there while it has room). [`placement_group`] reserves bundles of resources
//! together (PACK, SPREAD, STRICT_PACK, STRICT_SPREAD);
//! `.placement_group(&group, index)` on a task's or actor's options runs it
//! in a bundle.
//!
//! Objects move only where they are needed. A task's arguments travel with
//! it; its result comes back to the job's node — except a large one (1 MiB
//! or more, holding no refs), which stays on the node that made it: a task
//! on a third node fetches it from there, the job's node only when the job
//! [`get`]s it, and a task taking 16 MiB or more of such results goes to
//! their node when it has room. If that node dies, the task that made the
//! result runs again (up to its `max_retries`) and its readers wait for it,
//! as Ray rebuilds a lost object from its lineage.
//!
//! ## A pool of tasks
//!
//! [`util::Pool`] is Ray's `ray.util.multiprocessing.Pool`: `map`, `imap`,
//! `imap_unordered`, `starmap`, `apply` and `apply_async` of a plain function
//! over items, in chunks, one task per chunk, at most `processes` at once —
//! no remote function to write.
//!
//! ## Libraries
//!
//! Ray's libraries are crates of their own, picked with Cargo features of
//! this one dependency, so that a job compiles only what it uses:
//!
//! ```toml
//! wray = { path = "../wray/guest-sdk/wray", features = ["nn", "tune"] }
//! ```
//!
//! | feature | module | what it holds |
//! |---|---|---|
//! | `nn` | `wray::nn` | autograd over host tensors, layers, losses, optimizers, data loading |
//! | `tune` | `wray::tune` | hyperparameter search: spaces, searchers, schedulers, trials as actors |
//! | `data` | `wray::data` | datasets of Arrow blocks: readers, lazy transforms streamed through tasks and actor pools, writers |
//! | `learn` | `wray::learn` | gradient-boosted trees (XGBoost's `hist` method and parameter names: `XGBClassifier`, `XGBRegressor`, models saved as JSON), scikit-learn's decision trees, random forests, linear and logistic regression, `GridSearchCV` / `RandomizedSearchCV` with every fit a task, metrics |
//! | `train` | `wray::train` | distributed training: a trainer running your loop on worker actors, `report`, checkpoints, collectives (`allreduce`, ...), data-parallel `nn`, preprocessors, loggers, Tune over trainers, boosted trees on workers (`GbdtTrainer`) (turns on `nn`, `data`, `tune` and `learn`) |
//! | `rl` | `wray::rl` | reinforcement learning: Gymnasium's classic-control environments, your own `Env`, PPO, DQN and behaviour cloning with env runners as actors, multi-agent PPO, offline data, checkpoints, algorithms as Tune trials (turns on `nn` and `tune`) |
//! | `serve` | `wray::serve` | HTTP serving (Ray Serve): deployments of actor replicas behind the host's proxy, run by `wray serve run`; replicas or autoscaling, request caps and queues, batching, composition through handles, health checks (see `docs/SERVE.md`) |
//!
//! The core alone has [`Tensor`], a handle to a tensor stored by the host —
//! on a GPU for tasks and actors with `.num_gpus(..)`, on the CPU path
//! otherwise — and [`Rng`], the seeded generator every library draws from.
//!
//! ## Values and limits
//!
//! Values are encoded with the codec described in the `wray-codec` crate:
//! `Vec<u8>`, `Vec<f32>` and the other numeric vectors are moved with one
//! `memcpy`; everything else uses postcard. A job sees no files, network or
//! environment unless `wray run` grants them (`--dir`, `--env`).

#![deny(missing_docs)]

pub use wray_guest_core::*;

#[cfg(feature = "nn")]
#[doc(inline)]
pub use wray_nn as nn;

#[cfg(feature = "tune")]
#[doc(inline)]
pub use wray_tune as tune;

#[cfg(feature = "learn")]
#[doc(inline)]
pub use wray_learn as learn;

#[cfg(feature = "train")]
#[doc(inline)]
pub use wray_train as train;

#[cfg(feature = "data")]
#[doc(inline)]
pub use wray_data as data;

#[cfg(feature = "rl")]
#[doc(inline)]
pub use wray_rl as rl;

#[cfg(feature = "serve")]
#[doc(inline)]
pub use wray_serve as serve;

// `wray::tune::function!` and `wray::tune::trainable!` were the macros' names before
// Tune became a crate of its own; kept so that such jobs still compile.
#[cfg(feature = "tune")]
#[doc(hidden)]
pub use wray_tune::{function, trainable};
