//! Embed wray in a host program.
//!
//! A [`Runtime`] is a single-node wray runtime living in your process: it
//! loads job components, runs their drivers, and calls their remote
//! functions directly — every task in its own sandboxed Wasm instance.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use wray_runtime::{JobConfig, Runtime};
//!
//! let runtime = Runtime::builder().cpus(4.0).object_store_memory(256 << 20).build()?;
//! let job = runtime.load_file("pi.wasm".as_ref())?;
//!
//! // Run the job's #[wray::main] ...
//! runtime.run_job(&job, vec![], JobConfig::default()).await?;
//!
//! // ... or call one of its #[wray::remote] functions with typed arguments.
//! let inside: u64 = runtime.call(&job, "sample", (1_000_000u64, 42u64), JobConfig::default()).await?;
//! # Ok(()) }
//! ```
//!
//! Arguments and results use the same codec as the guest SDK
//! ([`wray_codec`]), so a guest function `fn sample(n: u64, seed: u64) -> u64`
//! is called with a `(u64, u64)` tuple and returns a `u64`.

#![deny(missing_docs)]

pub mod cluster;

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub use wray_core::{Error, GPU, Resources};
pub use wray_gpu::{DeviceConfig, Devices, SOFTWARE_GPU_ENV};
pub use wray_host::{
    Chunk, Grants, InstanceLimits, JobComponent, LoadError, Output, OutputPipe, Stream, custom_section, read_component,
    with_custom_section, with_reuse_section,
};
pub use wray_net::{ClusterIdentity, Token, state};
pub use wray_node::{JobConfig, JobError, JobTable, Node, NodeConfig};
pub use wray_store::StoreStats;

/// Configures a [`Runtime`].
#[derive(Clone, Debug)]
pub struct RuntimeBuilder {
    cpus: Option<f64>,
    resources: Resources,
    object_store_memory: usize,
    spill_dir: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    max_instances: u32,
    gpus: Option<f64>,
    devices: Option<DeviceConfig>,
    shared_dirs: Vec<(PathBuf, String)>,
    log_file: Option<PathBuf>,
}

/// The default compiled-component cache: `$XDG_CACHE_HOME/wray` or
/// `~/.cache/wray`; none if neither is known.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return Some(PathBuf::from(x).join("wray"));
    }
    std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".cache").join("wray"))
}

impl RuntimeBuilder {
    /// CPU slots (default: one per core).
    pub fn cpus(mut self, cpus: f64) -> Self {
        self.cpus = Some(cpus);
        self
    }

    /// Adds a custom resource, e.g. `("accelerator", 2.0)`.
    pub fn resource(mut self, name: &str, amount: f64) -> Self {
        self.resources.set(name, amount);
        self
    }

    /// Bytes of objects kept in memory before spilling to disk (default 1 GiB).
    pub fn object_store_memory(mut self, bytes: usize) -> Self {
        self.object_store_memory = bytes;
        self
    }

    /// Where spilled objects go (default: a fresh directory under the
    /// system temp dir, removed when the runtime is dropped — or, if the
    /// process is killed outright, by the next runtime: [`TEMP_SPILL_PREFIX`]).
    pub fn spill_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spill_dir = Some(dir.into());
        self
    }

    /// Where compiled components are cached (default:
    /// [`default_cache_dir`]); `None` disables the disk cache.
    pub fn cache_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.cache_dir = dir;
        self
    }

    /// The `GPU` resource offered (default: one per GPU found).
    pub fn gpus(mut self, gpus: f64) -> Self {
        self.gpus = Some(gpus);
        self
    }

    /// Which GPUs to open for tensors (default: every hardware adapter, and
    /// software ones only with `WRAY_ALLOW_SOFTWARE_GPU=1`); `None` opens
    /// none, so tensors use the CPU path.
    pub fn gpu_devices(mut self, devices: Option<DeviceConfig>) -> Self {
        self.devices = devices;
        self
    }

    /// Grants a host directory, at `guest` path, to every job and task that
    /// reaches this node over the network (a cluster's shared data). Jobs
    /// run in this process get only what their own config grants.
    pub fn shared_dir(mut self, host: impl Into<PathBuf>, guest: &str) -> Self {
        self.shared_dirs.push((host.into(), guest.to_string()));
        self
    }

    /// The file this node's process logs to, served to `wray logs --node`
    /// and the dashboard (default: none).
    pub fn log_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.log_file = Some(path.into());
        self
    }

    /// Instances that may exist at once (default 1000).
    pub fn max_instances(mut self, n: u32) -> Self {
        self.max_instances = n;
        self
    }

    /// Starts the runtime.
    pub fn build(self) -> anyhow::Result<Runtime> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let (spill_dir, owned) = match self.spill_dir {
            Some(d) => (d, None),
            None => {
                // Runtimes of processes killed outright left theirs behind.
                let tmp = std::env::temp_dir();
                wray_store::remove_abandoned(&tmp, TEMP_SPILL_PREFIX);
                let d = tmp.join(format!(
                    "{TEMP_SPILL_PREFIX}{}-{}",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::Relaxed)
                ));
                (d.clone(), Some(d))
            }
        };
        let mut config = NodeConfig::new(spill_dir.clone());
        if let Some(cpus) = self.cpus {
            config.cpus = cpus;
        }
        config.resources = self.resources;
        config.object_store_memory = self.object_store_memory;
        config.spill_dir = spill_dir;
        config.cache_dir = self.cache_dir;
        config.max_instances = self.max_instances;
        config.gpus = self.gpus;
        config.devices = self.devices;
        config.shared_dirs = self.shared_dirs;
        config.log_file = self.log_file;
        Ok(Runtime { node: wray_node::Node::new(config)?, owned_spill_dir: owned })
    }
}

/// How the spill directories a runtime makes for itself in the temporary
/// directory (no [`RuntimeBuilder::spill_dir`] given) are named: this, the
/// process id, and a count. The runtime removes its own when dropped; those
/// of processes killed outright (SIGKILL, the OOM killer) are removed by
/// the next runtime built in the same temporary directory, once no process
/// holds their lock ([`wray_store::remove_abandoned`]).
pub const TEMP_SPILL_PREFIX: &str = "wray-spill-";

/// A single-node wray runtime in this process.
pub struct Runtime {
    node: wray_node::Node,
    owned_spill_dir: Option<PathBuf>,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(d) = &self.owned_spill_dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Arguments of a direct call: a tuple of serde values, each becoming one
/// parameter of the remote function.
pub trait IntoArgs {
    /// Encodes each element.
    fn into_args(self) -> Result<Vec<bytes::Bytes>, Error>;
}

fn encode_one<T: Serialize + 'static>(v: &T) -> Result<bytes::Bytes, Error> {
    wray_codec::encode(v).map(bytes::Bytes::from).map_err(|e| Error::InvalidArgument(e.to_string()))
}

macro_rules! tuple_args {
    ($($t:ident),*) => {
        impl<$($t: Serialize + 'static),*> IntoArgs for ($($t,)*) {
            #[allow(non_snake_case)]
            fn into_args(self) -> Result<Vec<bytes::Bytes>, Error> {
                let ($($t,)*) = self;
                Ok(vec![$(encode_one(&$t)?),*])
            }
        }
    };
}
tuple_args!();
tuple_args!(A);
tuple_args!(A, B);
tuple_args!(A, B, C);
tuple_args!(A, B, C, D);
tuple_args!(A, B, C, D, E);
tuple_args!(A, B, C, D, E, F);

impl Runtime {
    /// Configure a runtime.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder {
            cpus: None,
            resources: Resources::new(),
            object_store_memory: 1 << 30,
            spill_dir: None,
            cache_dir: default_cache_dir(),
            max_instances: 1000,
            gpus: None,
            devices: Some(DeviceConfig::from_env()),
            shared_dirs: Vec::new(),
            log_file: None,
        }
    }

    /// Validates and compiles a job component (compiled once per content
    /// hash; cached on disk).
    pub fn load_file(&self, path: &Path) -> Result<JobComponent, LoadError> {
        self.node.load_file(path)
    }

    /// Like [`Runtime::load_file`], from bytes; `name` labels errors.
    pub fn load(&self, name: &str, bytes: &[u8]) -> Result<JobComponent, LoadError> {
        self.node.load(name, bytes)
    }

    /// Runs the job's `#[wray::main]` with `args`; returns when it ends.
    /// Tasks and actors it leaves running are stopped.
    pub async fn run_job(&self, job: &JobComponent, args: Vec<String>, config: JobConfig) -> Result<(), JobError> {
        self.node.run_job(job.clone(), args, config).await
    }

    /// Calls the remote function `function` of `job` (its full path
    /// `crate::module::f`, or just `f` if unambiguous) with `args`, as a task,
    /// and returns its decoded result.
    pub async fn call<R: DeserializeOwned + 'static>(
        &self,
        job: &JobComponent,
        function: &str,
        args: impl IntoArgs,
        config: JobConfig,
    ) -> Result<R, Error> {
        let bytes = self.call_raw(job, function, args.into_args()?, config).await?;
        wray_codec::decode(&bytes).map_err(|e| Error::InvalidArgument(format!("the result of {function}: {e}")))
    }

    /// [`Runtime::call`] with arguments and result in the codec's bytes.
    pub async fn call_raw(
        &self,
        job: &JobComponent,
        function: &str,
        args: Vec<bytes::Bytes>,
        config: JobConfig,
    ) -> Result<bytes::Bytes, Error> {
        self.node.call(job.clone(), function, args, config).await
    }

    /// Object store counters.
    pub fn store_stats(&self) -> StoreStats {
        self.node.store_stats()
    }

    /// The node underneath, for serving it as a head (`wray start`).
    pub fn node(&self) -> &wray_node::Node {
        &self.node
    }

    /// Total resources.
    pub fn total_resources(&self) -> Resources {
        self.node.total_resources()
    }

    /// Resources not held right now.
    pub fn available_resources(&self) -> Resources {
        self.node.available_resources()
    }
}
