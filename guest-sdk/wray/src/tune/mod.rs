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
//! wray::function!(Objective, objective);
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
//! Class-style trainables implement [`Trainable`] (`setup`, `step`,
//! `save_checkpoint`, `load_checkpoint`) and become trial actors with
//! [`trainable!`](crate::trainable).

mod bayesopt;
mod callbacks;
mod encode;
mod results;
mod schedulers;
mod search;
mod space;
mod stop;
mod tpe;
mod tuner;

pub use bayesopt::BayesOptSearch;
pub use callbacks::{Callback, FileLogger, TensorBoardLogger};
pub use results::{ResultGrid, Status, Trial};
pub use schedulers::{Asha, Decision, Fifo, HyperBand, MedianStopping, Mode, Pbt, TrialScheduler};
pub use search::{BasicVariantGenerator, Searcher};
pub use space::{
    Config, Domain, DomainArg, Space, Value, choice, grid_search, loguniform, quniform, randint, randn, sample_from,
    uniform,
};
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

/// Makes a [`Trainable`] type runnable as trials: `wray::trainable!(Name,
/// MyTrainable);` defines the actor class `Name` to pass to
/// [`Tuner::<Name>`](Tuner).
#[macro_export]
macro_rules! trainable {
    ($trial:ident, $ty:ty) => {
        /// A trial actor (made by `wray::trainable!`).
        #[$crate::actor]
        pub struct $trial {
            inner: $ty,
        }

        #[$crate::actor]
        impl $trial {
            pub fn new(
                config: $crate::tune::Config,
                checkpoint: ::core::option::Option<::std::vec::Vec<u8>>,
            ) -> ::core::result::Result<Self, $crate::Error> {
                let mut inner = <$ty as $crate::tune::Trainable>::setup(&config)?;
                if let ::core::option::Option::Some(c) = checkpoint {
                    $crate::tune::Trainable::load_checkpoint(&mut inner, &c)?;
                }
                ::core::result::Result::Ok($trial { inner })
            }
            pub fn step(&mut self) -> ::core::result::Result<$crate::tune::Metrics, $crate::Error> {
                $crate::tune::Trainable::step(&mut self.inner)
            }
            pub fn save(&self) -> ::core::result::Result<::std::vec::Vec<u8>, $crate::Error> {
                $crate::tune::Trainable::save_checkpoint(&self.inner)
            }
        }

        impl $crate::tune::TrialActor for $trial {
            fn start(
                config: &$crate::tune::Config,
                checkpoint: ::core::option::Option<::std::vec::Vec<u8>>,
                cpus: f64,
                gpus: f64,
            ) -> ::core::result::Result<$crate::ActorHandle<Self>, $crate::Error> {
                let mut options = $trial::options().num_cpus(cpus);
                if gpus > 0.0 {
                    options = options.num_gpus(gpus);
                }
                options.try_remote(config.clone(), checkpoint)
            }
            fn step(handle: &$crate::ActorHandle<Self>) -> $crate::ObjectRef<$crate::tune::Metrics> {
                handle.step()
            }
            fn save(handle: &$crate::ActorHandle<Self>) -> $crate::ObjectRef<::std::vec::Vec<u8>> {
                handle.save()
            }
        }
    };
}

/// Makes a function `fn(&Config, iteration: usize) -> Result<Metrics,
/// Error>` runnable as trials (Ray's function trainable): it is called with
/// iterations 1, 2, ... until it returns a result with `done`
/// ([`done`]) or the scheduler or a stopper ends the trial.
/// `wray::function!(Name, f);` defines the actor class `Name`.
#[macro_export]
macro_rules! function {
    ($trial:ident, $f:path) => {
        #[doc(hidden)]
        pub struct __WrayTuneFn {
            config: $crate::tune::Config,
            iteration: usize,
        }

        impl $crate::tune::Trainable for __WrayTuneFn {
            fn setup(config: &$crate::tune::Config) -> ::core::result::Result<Self, $crate::Error> {
                ::core::result::Result::Ok(__WrayTuneFn { config: config.clone(), iteration: 0 })
            }
            fn step(&mut self) -> ::core::result::Result<$crate::tune::Metrics, $crate::Error> {
                self.iteration += 1;
                $f(&self.config, self.iteration)
            }
            fn save_checkpoint(&self) -> ::core::result::Result<::std::vec::Vec<u8>, $crate::Error> {
                ::core::result::Result::Ok((self.iteration as u64).to_le_bytes().to_vec())
            }
            fn load_checkpoint(&mut self, c: &[u8]) -> ::core::result::Result<(), $crate::Error> {
                if let ::core::result::Result::Ok(b) = <[u8; 8]>::try_from(c) {
                    self.iteration = u64::from_le_bytes(b) as usize;
                }
                ::core::result::Result::Ok(())
            }
        }

        $crate::trainable!($trial, __WrayTuneFn);
    };
}
