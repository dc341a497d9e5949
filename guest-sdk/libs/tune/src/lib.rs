//! Hyperparameter search: wray's counterpart of Ray Tune.
//!
//! An experiment samples configs from a [`Space`], runs each as a **trial —
//! an actor** holding `resources_per_trial` — steps the trials in parallel,
//! and after every result asks a [`TrialScheduler`] (FIFO, [`Asha`],
//! [`HyperBand`], [`MedianStopping`]) and the [`Stopper`]s whether it goes
//! on. Results come back as a [`ResultGrid`].
//!
//! ```no_run
//! use wray::tune::{self, Config, Metrics, Space, Tuner};
//!
//! // A trainable function, called once per iteration.
//! fn objective(config: &Config, iteration: usize) -> Result<Metrics, wray::Error> {
//!     let (w, b) = (config.f64("weight")?, config.f64("bias")?);
//!     Ok(tune::metrics(&[("score", w * (iteration as f64).sqrt() + b)]))
//! }
//! wray::tune::function!(Objective, objective);
//!
//! #[wray::main]
//! fn main() -> Result<(), wray::Error> {
//!     let space = Space::new().with("weight", tune::uniform(0.0, 1.0)).with("bias", tune::grid_search([0.0, 1.0]));
//!     let results = Tuner::<Objective>::new(space)
//!         .metric("score", "max")
//!         .num_samples(10)
//!         .scheduler(tune::Asha::with(30.0, 1.0, 3.0, 1))
//!         .fit()?;
//!     println!("best config: {}", results.best_config().unwrap());
//!     Ok(())
//! }
//! ```
//!
//! A trainable may instead be a **loop that calls [`report`]** as it goes,
//! as in Ray (`Tuner(train_fn, param_space=...)` with `tune.report` inside):
//! [`Tuner::function`]`(train_fn, space)`. Each `report` returns when the
//! tuner asks for the next result, and [`Error::Cancelled`] once the
//! scheduler has stopped the trial; a checkpoint passed to it is what
//! [`get_checkpoint`] returns when the trial restarts (after a failure, a
//! pause, or PBT's exploit). `wray::train`'s trainers become such trials with
//! `DataParallelTrainer::tuner`.
//!
//! Class-style trainables implement [`Trainable`] (`setup`, `step`,
//! `save_checkpoint`, `load_checkpoint`) and become trial actors with
//! [`trainable!`](crate::trainable).

#![deny(missing_docs)]

// The actor and remote macros name the SDK as `wray`.
extern crate wray_guest_core as wray;

mod bayesopt;
mod callbacks;
mod encode;
mod results;
mod schedulers;
mod search;
mod session;
mod space;
mod status;
mod stop;
mod tpe;
mod tuner;

use wray_guest_core::Error;

pub use bayesopt::BayesOptSearch;
pub use callbacks::{Callback, FileLogger, MlflowLogger, TensorBoardLogger};
pub use results::{ResultGrid, Status, Trial};
pub use schedulers::{Asha, Decision, Fifo, HyperBand, MedianStopping, Mode, Pbt, TrialScheduler};
pub use search::{BasicVariantGenerator, Searcher};
pub use session::{LoopHandle, LoopTrial, POLL_MAX, STOP_GRACE, TrialFn, get_checkpoint, report};
pub use space::{
    Config, Domain, DomainArg, Space, Value, choice, grid_search, loguniform, quniform, randint, randn, sample_from,
    uniform,
};
pub use status::StatusPublisher;
pub use stop::{Criteria, StopFn, Stopper};
pub use tpe::TpeSearch;
pub use tuner::{Trainable, TrialActor, Tuner, Verbosity, status_table};

/// A result: metric names and values.
pub type Metrics = std::collections::BTreeMap<String, f64>;

/// Builds [`Metrics`] from pairs.
pub fn metrics(pairs: &[(&str, f64)]) -> Metrics {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// `metrics` marked as the trial's last result (`done = 1`).
pub fn done(mut metrics: Metrics) -> Metrics {
    metrics.insert("done".into(), 1.0);
    metrics
}

/// Makes a [`Trainable`] type runnable as trials: `wray::tune::trainable!(Name,
/// MyTrainable);` defines the actor class `Name` to pass to
/// [`Tuner::<Name>`](Tuner). It defines nothing else, so a module may hold
/// any number of them.
#[macro_export]
macro_rules! trainable {
    ($trial:ident, $ty:ty) => {
        /// A trial actor (made by `wray::tune::trainable!`).
        #[$crate::__private::actor]
        pub struct $trial {
            inner: $ty,
        }

        #[$crate::__private::actor]
        impl $trial {
            /// Sets the trainable up from a trial's config, restored from a
            /// checkpoint if given.
            pub fn new(
                config: $crate::Config,
                checkpoint: ::core::option::Option<::std::vec::Vec<u8>>,
            ) -> ::core::result::Result<Self, $crate::__private::Error> {
                let mut inner = <$ty as $crate::Trainable>::setup(&config)?;
                if let ::core::option::Option::Some(c) = checkpoint {
                    $crate::Trainable::load_checkpoint(&mut inner, &c)?;
                }
                ::core::result::Result::Ok($trial { inner })
            }
            /// One iteration's metrics.
            pub fn step(&mut self) -> ::core::result::Result<$crate::Metrics, $crate::__private::Error> {
                $crate::Trainable::step(&mut self.inner)
            }
            /// The trainable's checkpoint.
            pub fn save(&self) -> ::core::result::Result<::std::vec::Vec<u8>, $crate::__private::Error> {
                $crate::Trainable::save_checkpoint(&self.inner)
            }
        }

        impl $crate::TrialActor for $trial {
            type Handle = $crate::__private::ActorHandle<Self>;
            fn start(
                config: &$crate::Config,
                checkpoint: ::core::option::Option<::std::vec::Vec<u8>>,
                cpus: f64,
                gpus: f64,
                _payload: &[u8],
            ) -> ::core::result::Result<Self::Handle, $crate::__private::Error> {
                let mut options = $trial::options().num_cpus(cpus);
                if gpus > 0.0 {
                    options = options.num_gpus(gpus);
                }
                options.try_remote(config.clone(), checkpoint)
            }
            fn step(handle: &mut Self::Handle) -> $crate::__private::ObjectRef<$crate::Metrics> {
                handle.step()
            }
            fn save(handle: &Self::Handle) -> ::core::result::Result<::std::vec::Vec<u8>, $crate::__private::Error> {
                $crate::__private::get(&handle.save())
            }
            fn stop(handles: ::std::vec::Vec<Self::Handle>) {
                for h in &handles {
                    $crate::__private::kill(h);
                }
            }
        }
    };
}

/// Makes a function `fn(&Config, iteration: usize) -> Result<Metrics,
/// Error>` runnable as trials (Ray's function trainable): it is called with
/// iterations 1, 2, ... until it returns a result with `done`
/// ([`done`]) or the scheduler or a stopper ends the trial.
/// `wray::tune::function!(Name, f);` defines the actor class `Name` and
/// nothing else, so a module may hold any number of them.
///
/// A checkpoint of such a trial is its iteration count: a restored trial
/// goes on counting from there.
#[macro_export]
macro_rules! function {
    ($trial:ident, $f:path) => {
        $crate::trainable!($trial, $crate::FunctionTrial<$trial>);

        impl $crate::TrialFunction for $trial {
            fn call(
                config: &$crate::Config,
                iteration: usize,
            ) -> ::core::result::Result<$crate::Metrics, $crate::__private::Error> {
                $f(config, iteration)
            }
        }
    };
}

/// The function behind a trial actor made by [`function!`], named by the
/// actor type itself so that the macro needs no second type name.
pub trait TrialFunction {
    /// Runs iteration `iteration` (from 1).
    fn call(config: &Config, iteration: usize) -> Result<Metrics, Error>;
}

/// The [`Trainable`] state of a [`function!`] trial: its config and how
/// many iterations have run.
pub struct FunctionTrial<F> {
    config: Config,
    iteration: usize,
    function: std::marker::PhantomData<fn() -> F>,
}

impl<F: TrialFunction> Trainable for FunctionTrial<F> {
    fn setup(config: &Config) -> Result<Self, Error> {
        Ok(FunctionTrial { config: config.clone(), iteration: 0, function: std::marker::PhantomData })
    }
    fn step(&mut self) -> Result<Metrics, Error> {
        self.iteration += 1;
        F::call(&self.config, self.iteration)
    }
    fn save_checkpoint(&self) -> Result<Vec<u8>, Error> {
        Ok((self.iteration as u64).to_le_bytes().to_vec())
    }
    fn load_checkpoint(&mut self, checkpoint: &[u8]) -> Result<(), Error> {
        let bytes = <[u8; 8]>::try_from(checkpoint).map_err(|_| {
            Error::InvalidArgument(format!("a function trial's checkpoint is 8 bytes, got {}", checkpoint.len()))
        })?;
        self.iteration = u64::from_le_bytes(bytes) as usize;
        Ok(())
    }
}

/// Items the macros expand to. Not part of the API.
#[doc(hidden)]
#[allow(missing_docs)]
pub mod __private {
    pub use crate::callbacks::json_string;
    pub use crate::session::check_stopped;
    pub use wray_guest_core::{ActorHandle, Error, ObjectRef, actor, get, kill};
}
