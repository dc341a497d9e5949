//! Loading job components: validation with clear errors, compilation once per
//! content hash, and the on-disk artifact cache.

use crate::bindings::JobPre;
use crate::engine::Engine;
use crate::instance::State;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasmtime::component::{Component, Linker};

/// Why a file is not a runnable job. Each names the problem in words a user
/// can act on.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Reading the file failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The bytes do not start with the WebAssembly magic number.
    #[error("{name} is not a WebAssembly file (it does not start with \\0asm)")]
    NotWasm {
        /// The file or label.
        name: String,
    },
    /// A core module, not a component.
    #[error(
        "{name} is a core WebAssembly module, not a component; build the job for the wasm32-wasip2 target (`wray build`)"
    )]
    CoreModule {
        /// The file or label.
        name: String,
    },
    /// wasmtime could not parse or compile it (truncated, corrupt, unsupported
    /// features).
    #[error("{name} is not a valid component: {reason}")]
    Invalid {
        /// The file or label.
        name: String,
        /// wasmtime's explanation.
        reason: String,
    },
    /// A component, but not of the `wray:runtime/job` world.
    #[error("{name} is not a wray job: {reason}")]
    WrongWorld {
        /// The file or label.
        name: String,
        /// What is missing or unexpected.
        reason: String,
    },
}

/// A compiled, validated job component with its pre-linked instance template.
#[derive(Clone)]
pub struct JobComponent {
    pub(crate) pre: JobPre<State>,
    hash: Arc<str>,
    name: Arc<str>,
}

impl JobComponent {
    /// The component's content hash (sha256, hex).
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The file name or label it was loaded from.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Compiles components once per content hash and keeps the compiled artifact
/// on disk. Artifacts are keyed by the content hash *and* the engine's
/// compatibility hash, so a different wasmtime or configuration never loads a
/// stale artifact.
#[derive(Clone)]
pub struct ComponentCache {
    engine: Engine,
    dir: Option<PathBuf>,
    linker: Arc<Linker<State>>,
}

const WASM_MAGIC: &[u8; 4] = b"\0asm";
/// Core modules have version 1 and layer 0 (`01 00 00 00`); components have
/// layer 1 (bytes 6..8 = `01 00`).
const COMPONENT_LAYER: [u8; 2] = [1, 0];

impl ComponentCache {
    /// A cache compiling with `engine`, storing artifacts under `dir` (none:
    /// memory only).
    pub fn new(engine: Engine, dir: Option<PathBuf>) -> anyhow::Result<ComponentCache> {
        let linker = crate::instance::linker(&engine)?;
        Ok(ComponentCache { engine, dir, linker: Arc::new(linker) })
    }

    /// The engine components are compiled for.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Reads, validates and compiles the job at `path`.
    pub fn load_file(&self, path: &Path) -> Result<JobComponent, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read { path: path.to_path_buf(), source })?;
        self.load(&path.display().to_string(), &bytes)
    }

    /// Validates and compiles a job from bytes; `name` labels errors.
    pub fn load(&self, name: &str, bytes: &[u8]) -> Result<JobComponent, LoadError> {
        let name_owned = || name.to_string();
        if bytes.len() < 8 || &bytes[..4] != WASM_MAGIC {
            return Err(LoadError::NotWasm { name: name_owned() });
        }
        if bytes[6..8] != COMPONENT_LAYER {
            return Err(LoadError::CoreModule { name: name_owned() });
        }
        let hash = hex(&Sha256::digest(bytes));
        let component = self
            .compile_cached(&hash, bytes)
            .map_err(|e| LoadError::Invalid { name: name_owned(), reason: format!("{e:#}") })?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::WrongWorld { name: name_owned(), reason: format!("{e:#}") })?;
        let pre =
            JobPre::new(pre).map_err(|e| LoadError::WrongWorld { name: name_owned(), reason: format!("{e:#}") })?;
        Ok(JobComponent { pre, hash: hash.into(), name: name.into() })
    }

    fn artifact_path(&self, hash: &str) -> Option<PathBuf> {
        let compat = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            self.engine.wasmtime().precompile_compatibility_hash().hash(&mut h);
            h.finish()
        };
        self.dir.as_ref().map(|d| d.join(format!("{hash}-{compat:016x}.cwasm")))
    }

    fn compile_cached(&self, hash: &str, bytes: &[u8]) -> wasmtime::Result<Component> {
        let engine = self.engine.wasmtime();
        let Some(path) = self.artifact_path(hash) else {
            return Component::new(engine, bytes);
        };
        if path.exists() {
            // SAFETY: the artifact was written by `serialize` below into
            // wray's own cache directory, under a name that includes the
            // source's content hash and this engine's compatibility hash;
            // wasmtime checks the header against the engine. A user who can
            // write that directory can already run code as the user.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => return Ok(c),
                Err(e) => tracing::warn!("ignoring unusable cached artifact {}: {e:#}", path.display()),
            }
        }
        let component = Component::new(engine, bytes)?;
        // A cache write failure costs only the next run's compile time.
        if let Err(e) = write_atomically(&path, &component.serialize()?) {
            tracing::warn!("cannot cache compiled component at {}: {e}", path.display());
        }
        Ok(component)
    }
}

fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".tmp-{}-{:?}", std::process::id(), std::thread::current().id()));
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}
