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
use wasmtime_wasi::p2::bindings::CommandPre;
use wray_core::limits::MAX_COMPONENT_SIZE;

/// Why a file is not a runnable job. Each names the problem in words a user
/// can act on.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Reading the file failed.
    // Not a `source`: the message already ends with it, and `{:#}` would
    // print it twice.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// Larger than [`MAX_COMPONENT_SIZE`].
    #[error("{name} is {size} bytes, over the {limit} MiB a job component may be", limit = MAX_COMPONENT_SIZE >> 20)]
    TooLarge {
        /// The file or label.
        name: String,
        /// Its size (at least this many bytes, when read from a stream).
        size: u64,
    },
    /// The bytes do not start with the WebAssembly magic number.
    #[error("{name} is not a WebAssembly file (it does not start with \\0asm)")]
    NotWasm {
        /// The file or label.
        name: String,
    },
    /// WebAssembly text (`.wat`) that does not parse, or is past
    /// [`MAX_TEXT_SIZE`].
    #[error("{name} is WebAssembly text that cannot be read: {message}")]
    Text {
        /// The file.
        name: String,
        /// The parser's error (with its line and column), or the bound.
        message: String,
    },
    /// Source to build, not a component: a Python script, a guest crate's
    /// directory — the likely mistakes of a user who ran `python job.py` or
    /// `cargo run` until now.
    #[error("{name} is {what}, not a component: build it first with `wray build {name}`, then run the .wasm it prints")]
    Source {
        /// The file or directory.
        name: String,
        /// What it is.
        what: &'static str,
    },
    /// A core module that is not a WASI preview-1 command (those are
    /// adapted into components, [`ComponentCache::load`]).
    #[error(
        "{name} is a core WebAssembly module, not a component, and not a WASI preview-1 program either (no `_start` \
         export and `wasi_snapshot_preview1` imports); build a job for the wasm32-wasip2 target (`wray build`)"
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

/// Why a component's imports cannot be linked, in wasmtime's words — and,
/// when what is missing is one of wray's own, the likely cause: a job built
/// with the SDK of another wray, whose WIT has functions this one lacks
/// (a job using `actors.handle` given to a wray from before it).
fn link_failure(e: &wasmtime::Error) -> String {
    let reason = format!("{e:#}");
    match reason.contains("wray:runtime/") {
        true => format!(
            "{reason} (the job was built with the SDK of another wray than this one: \
             rebuild it with this wray's SDK, or run it with the wray it was built for)"
        ),
        false => reason,
    }
}

/// A compiled, validated job component with its pre-linked instance template.
#[derive(Clone)]
pub struct JobComponent {
    pub(crate) pre: Entry,
    hash: Arc<str>,
    name: Arc<str>,
    reuse_task_instances: bool,
}

/// What a job component exports, pre-linked.
#[derive(Clone)]
pub(crate) enum Entry {
    /// The `wray:runtime/job` world: `main`, remote functions, actors.
    Job(JobPre<State>),
    /// A standard `wasi:cli/command` (what `wasmtime run` runs: a Rust
    /// `fn main` built for wasm32-wasip2, a C program from wasi-sdk). Its
    /// driver is its `run`, with the same limits and grants as a job's; it
    /// imports nothing of wray's, so it starts no tasks, and calling into it
    /// for anything but its driver is an error.
    Command(CommandPre<State>),
}

impl Entry {
    pub(crate) fn engine(&self) -> &wasmtime::Engine {
        match self {
            Entry::Job(pre) => pre.engine(),
            Entry::Command(pre) => pre.engine(),
        }
    }
}

/// The custom section by which a component asks for its task instances to
/// be reused ([`JobComponent::reuses_task_instances`]), and its contents.
/// `wray build job.py` writes it: a Python task's instance costs
/// milliseconds to create (an interpreter's worth of tables), and Ray's
/// Python workers run one task after another too.
pub const REUSE_SECTION: (&str, &[u8]) = ("wray:task-instances", b"reuse");

impl JobComponent {
    /// The component's content hash (sha256, hex).
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The file name or label it was loaded from.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it is a plain `wasi:cli/command` rather than a wray job: its
    /// driver takes its arguments from WASI (`std::env::args`), with the
    /// component's name first, as a program's `argv` does.
    pub fn is_command(&self) -> bool {
        matches!(self.pre, Entry::Command(_))
    }

    /// Whether a task's instance, once its task succeeded, may run the
    /// next task of the same job (and memory limit) instead of being
    /// dropped — as a Ray worker process runs one task after another, so
    /// module-level state persists between them. Never across jobs:
    /// instances belong to their job and end with it. Set by the
    /// component's [`REUSE_SECTION`]; without it every task gets a fresh
    /// instance.
    pub fn reuses_task_instances(&self) -> bool {
        self.reuse_task_instances
    }
}

/// Whether the component's top level holds [`REUSE_SECTION`].
fn asks_for_reuse(bytes: &[u8]) -> bool {
    custom_section(bytes, REUSE_SECTION.0) == Some(REUSE_SECTION.1)
}

/// The payload of the top-level custom section named `name`, if there is
/// one. Reads only the top-level section headers (each skipped by its
/// length), so it costs microseconds even for a large component; a
/// malformed header ends the walk (validation reports it).
pub fn custom_section<'a>(bytes: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let mut sections = wasmparser::BinaryReader::new(bytes.get(8..).unwrap_or_default(), 8);
    while !sections.eof() {
        let (Ok(id), Ok(size)) = (sections.read_u8(), sections.read_var_u32()) else { return None };
        let Ok(content) = sections.read_bytes(size as usize) else { return None };
        let mut custom = wasmparser::BinaryReader::new(content, 0);
        if id == 0 && custom.read_string().is_ok_and(|n| n == name) {
            return custom.read_bytes(custom.bytes_remaining()).ok();
        }
    }
    None
}

/// `bytes` (a component) with [`REUSE_SECTION`] appended: what `wray build`
/// writes for a Python job.
pub fn with_reuse_section(bytes: Vec<u8>) -> Vec<u8> {
    with_custom_section(bytes, REUSE_SECTION.0, REUSE_SECTION.1)
}

/// `bytes` (a component or module) with a custom section `name` holding
/// `payload` appended (custom sections may follow any other; the runtime
/// ignores those it does not know).
pub fn with_custom_section(mut bytes: Vec<u8>, name: &str, payload: &[u8]) -> Vec<u8> {
    fn leb(out: &mut Vec<u8>, mut n: usize) {
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            out.push(if n == 0 { b } else { b | 0x80 });
            if n == 0 {
                return;
            }
        }
    }
    let mut content = Vec::new();
    leb(&mut content, name.len());
    content.extend_from_slice(name.as_bytes());
    content.extend_from_slice(payload);
    bytes.push(0);
    leb(&mut bytes, content.len());
    bytes.extend_from_slice(&content);
    bytes
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

/// Bytes of compiled artifacts a cache directory keeps. Every new build of
/// a job is a new content hash and a new artifact (tens of MiB each), so
/// without a bound the directory grows for as long as anyone edits a job;
/// past it the least recently used artifacts go (a load counts as a use).
pub const ARTIFACT_CACHE_BUDGET: u64 = 2 << 30;

/// The extension of compiled artifacts in the cache directory.
const ARTIFACT_EXTENSION: &str = "cwasm";

/// The extension of the lock a process holds while it compiles an artifact
/// (`CompileLock`).
const LOCK_EXTENSION: &str = "lock";

const WASM_MAGIC: &[u8; 4] = b"\0asm";
/// Core modules have version 1 and layer 0 (`01 00 00 00`); components have
/// layer 1 (bytes 6..8 = `01 00`).
const COMPONENT_LAYER: [u8; 2] = [1, 0];

/// Reads the job component at `path`, refusing at once what is not one: the
/// first bytes are read and checked before the rest ([`LoadError::NotWasm`];
/// a core module is read whole, as it may be a WASI preview-1 program that
/// [`ComponentCache::load`] adapts), and no more than [`MAX_COMPONENT_SIZE`] bytes
/// are read ([`LoadError::TooLarge`]) — a mistyped path naming a dataset of
/// gigabytes used to be read whole before its first four bytes were looked
/// at. Whether the component is valid is for [`ComponentCache::load`].
pub fn read_component(path: &Path) -> Result<Vec<u8>, LoadError> {
    use std::io::Read;
    let read_error = |error| LoadError::Read { path: path.to_path_buf(), error };
    let name = || path.display().to_string();
    if let Some(what) = source_kind(path) {
        return Err(LoadError::Source { name: name(), what });
    }
    let file = std::fs::File::open(path).map_err(read_error)?;
    let size = file.metadata().map_err(read_error)?.len();
    // A regular file says its size; a pipe or a device says 0 and is read
    // up to one byte past the limit, to tell that it is past it.
    let limit = MAX_COMPONENT_SIZE as u64 + 1;
    let mut bytes = Vec::with_capacity(size.min(limit) as usize);
    let mut bounded = file.take(limit);
    (&mut bounded).take(8).read_to_end(&mut bytes).map_err(read_error)?;
    // WebAssembly text, as `wasmtime run` takes it: a module or component
    // written by hand, made binary here (so a cluster is sent the binary).
    if looks_like_text(path, &bytes) {
        (&mut bounded)
            .take(MAX_TEXT_SIZE as u64 + 1 - bytes.len() as u64)
            .read_to_end(&mut bytes)
            .map_err(read_error)?;
        if bytes.len() > MAX_TEXT_SIZE {
            let message = format!("over the {} MiB a text file may be", MAX_TEXT_SIZE >> 20);
            return Err(LoadError::Text { name: name(), message });
        }
        let binary = wat::Parser::new()
            .parse_bytes(Some(path), &bytes)
            .map_err(|e| LoadError::Text { name: name(), message: e.to_string() })?;
        check_header(&name(), &binary)?;
        return Ok(binary.into_owned());
    }
    // Refused as not wasm first, if it is not, whatever its size: the
    // likelier mistake.
    check_header(&name(), &bytes)?;
    if size > MAX_COMPONENT_SIZE as u64 {
        return Err(LoadError::TooLarge { name: name(), size });
    }
    bounded.read_to_end(&mut bytes).map_err(read_error)?;
    if bytes.len() > MAX_COMPONENT_SIZE {
        return Err(LoadError::TooLarge { name: name(), size: bytes.len() as u64 });
    }
    Ok(bytes)
}

/// Largest WebAssembly text file read: text is for modules written by hand
/// (a parse of this much takes about a second).
pub const MAX_TEXT_SIZE: usize = 16 << 20;

/// Whether a file is WebAssembly text rather than binary: named `.wat`, or
/// its first bytes (`start`) open an s-expression or a comment after
/// whitespace — what `wasmtime run` accepts. Binary starts with `\0asm`.
fn looks_like_text(path: &Path, start: &[u8]) -> bool {
    if start.starts_with(WASM_MAGIC) {
        return false;
    }
    if path.extension().is_some_and(|e| e == "wat") {
        return true;
    }
    let text = start.trim_ascii_start();
    text.starts_with(b"(") || text.starts_with(b";;")
}

/// Whether the component's own (top-level) imports include one of wray's
/// interfaces (`wray:runtime/...`). Reads the import sections only; a
/// malformed component reads as importing nothing (validation reports it).
fn imports_wray(bytes: &[u8]) -> bool {
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload {
            Ok(wasmparser::Payload::ModuleSection { .. } | wasmparser::Payload::ComponentSection { .. }) => depth += 1,
            Ok(wasmparser::Payload::End(_)) => depth = depth.saturating_sub(1),
            Ok(wasmparser::Payload::ComponentImportSection(imports)) if depth == 0 => {
                if imports.into_iter().flatten().any(|i| i.name.name.starts_with("wray:runtime/")) {
                    return true;
                }
            }
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

/// What `path` is when it is source `wray build` builds: a Python script
/// (by its extension, whatever it holds), or a directory holding a crate or
/// a Python project. Other directories are left to `open`'s own error.
fn source_kind(path: &Path) -> Option<&'static str> {
    if path.extension().is_some_and(|e| e == "py") && path.is_file() {
        return Some("a Python script");
    }
    if !path.is_dir() {
        return None;
    }
    if path.join("Cargo.toml").is_file() {
        Some("a Rust crate")
    } else if path.join("pyproject.toml").is_file() || path.join("main.py").is_file() {
        Some("a Python project")
    } else {
        None
    }
}

/// Whether `bytes` start as a component's do: the WebAssembly magic number,
/// then the component layer.
fn check_header(name: &str, bytes: &[u8]) -> Result<Layer, LoadError> {
    if bytes.len() < 8 || &bytes[..4] != WASM_MAGIC {
        return Err(LoadError::NotWasm { name: name.to_string() });
    }
    Ok(if bytes[6..8] == COMPONENT_LAYER { Layer::Component } else { Layer::Module })
}

/// What a WebAssembly file's header says it is.
#[derive(Clone, Copy)]
enum Layer {
    Component,
    /// A core module: a job only if it is a WASI preview-1 command.
    Module,
}

/// Whether a core module is a WASI preview-1 command — what
/// `wasm32-wasip1` toolchains (Rust's, TinyGo, wasi-sdk, Zig) write and
/// `wasmtime run` runs: it exports `_start` and imports from
/// `wasi_snapshot_preview1`. Reads the import and export sections only.
fn is_preview1_command(bytes: &[u8]) -> bool {
    let (mut start, mut wasi) = (false, false);
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload {
            Ok(wasmparser::Payload::ImportSection(imports)) => {
                wasi |= imports.into_imports().flatten().any(|i| i.module == PREVIEW1);
            }
            Ok(wasmparser::Payload::ExportSection(exports)) => {
                start |= exports.into_iter().flatten().any(|e| e.name == "_start");
            }
            Ok(wasmparser::Payload::CodeSectionStart { .. }) => break,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    start && wasi
}

/// The module name WASI preview-1 functions are imported from.
const PREVIEW1: &str = wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME;

/// A WASI preview-1 command made a `wasi:cli/command` component, as
/// `wasmtime run` does on the fly: wasmtime's own adapter (of the same
/// release as the host) implements the preview-1 calls with preview-2 ones.
fn adapt_preview1(module: &[u8]) -> anyhow::Result<Vec<u8>> {
    use wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER as COMMAND;
    // The module is a user's (or a peer's) bytes, only header-checked so
    // far: should the encoder panic on some of them, that is this file's
    // error, not the host's crash.
    std::panic::catch_unwind(|| {
        wit_component::ComponentEncoder::default().module(module)?.adapter(PREVIEW1, COMMAND)?.validate(true).encode()
    })
    .unwrap_or_else(|_| Err(anyhow::anyhow!("the preview-1 adapter cannot make a component of it")))
}

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
        let bytes = read_component(path)?;
        self.load(&path.display().to_string(), &bytes)
    }

    /// Validates and compiles a job from bytes; `name` labels errors.
    pub fn load(&self, name: &str, bytes: &[u8]) -> Result<JobComponent, LoadError> {
        let name_owned = || name.to_string();
        let layer = check_header(name, bytes)?;
        if bytes.len() > MAX_COMPONENT_SIZE {
            return Err(LoadError::TooLarge { name: name_owned(), size: bytes.len() as u64 });
        }
        let hash = hex(&Sha256::digest(bytes));
        let component = match layer {
            Layer::Component => self.compile_cached(&hash, || Ok(bytes.into())),
            // Adapted only when its artifact is not cached: the key is the
            // module's own hash, marked (the job's hash stays the file's).
            Layer::Module if is_preview1_command(bytes) => self.compile_cached(&format!("{hash}-p1"), || {
                adapt_preview1(bytes)
                    .map(Into::into)
                    .map_err(|e| wasmtime::format_err!("as a WASI preview-1 program: {e:#}"))
            }),
            Layer::Module => return Err(LoadError::CoreModule { name: name_owned() }),
        }
        .map_err(|e| LoadError::Invalid { name: name_owned(), reason: format!("{e:#}") })?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::WrongWorld { name: name_owned(), reason: link_failure(&e) })?;
        // A wray job, else a standard WASI command; the error names what a
        // wray job lacks, the usual mistake being a component of another
        // world entirely (a library, an HTTP handler given to `wray run`).
        let pre = match JobPre::new(pre.clone()) {
            Ok(job) => Entry::Job(job),
            Err(e) => match CommandPre::new(pre) {
                // Half a job: it calls wray but cannot be called by it (no
                // task of it could ever run), so it is not run as a plain
                // program either.
                Ok(_) if imports_wray(bytes) => {
                    return Err(LoadError::WrongWorld {
                        name: name_owned(),
                        reason: format!(
                            "{e:#}; it imports wray's interfaces, so it is not a plain wasi:cli command either \
                             (build a job with the SDK: `#[wray::main]`)"
                        ),
                    });
                }
                Ok(command) => Entry::Command(command),
                Err(_) => {
                    return Err(LoadError::WrongWorld {
                        name: name_owned(),
                        reason: format!("{e:#}, and it is not a wasi:cli command either (no `wasi:cli/run` export)"),
                    });
                }
            },
        };
        Ok(JobComponent { pre, hash: hash.into(), name: name.into(), reuse_task_instances: asks_for_reuse(bytes) })
    }

    fn artifact_path(&self, hash: &str) -> Option<PathBuf> {
        let compat = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            self.engine.wasmtime().precompile_compatibility_hash().hash(&mut h);
            h.finish()
        };
        self.dir.as_ref().map(|d| d.join(format!("{hash}-{compat:016x}.{ARTIFACT_EXTENSION}")))
    }

    /// The component `bytes` makes, from the artifact cache under `key`
    /// when it is there (`bytes` is then never called), else compiled and
    /// cached.
    fn compile_cached<'b>(
        &self,
        key: &str,
        bytes: impl FnOnce() -> wasmtime::Result<std::borrow::Cow<'b, [u8]>>,
    ) -> wasmtime::Result<Component> {
        let engine = self.engine.wasmtime();
        let Some(path) = self.artifact_path(key) else {
            return Component::new(engine, bytes()?);
        };
        if let Some(component) = self.load_artifact(&path) {
            return Ok(component);
        }
        // Several processes sharing a cache often meet a new job at the same
        // moment — the nodes of a cluster started on one machine, parallel
        // runs of a rebuilt job — and compiling a large one costs tens of
        // CPU-seconds (36 for the 25 MB test job), each of them paying it in
        // full. One compiles while the others wait on its lock, then load
        // what it wrote.
        let lock = CompileLock::take(&path);
        if let Some(component) = self.load_artifact(&path) {
            return Ok(component);
        }
        let bytes = bytes()?;
        tracing::debug!("compiling {} bytes of Wasm ({key})", bytes.len());
        let component = Component::new(engine, &bytes)?;
        // A cache write failure costs only the next run's compile time.
        if let Err(e) = write_atomically(&path, &component.serialize()?) {
            tracing::warn!("cannot cache compiled component at {}: {e}", path.display());
        } else if let Some(dir) = path.parent() {
            prune(dir, ARTIFACT_CACHE_BUDGET, &path);
        }
        drop(lock);
        Ok(component)
    }

    /// The artifact at `path`, if there is a usable one.
    fn load_artifact(&self, path: &Path) -> Option<Component> {
        if !path.exists() {
            return None;
        }
        // SAFETY: the artifact was written by `serialize` (in
        // `compile_cached`) into wray's own cache directory, under a name
        // that includes the source's content hash and this engine's
        // compatibility hash; wasmtime checks the header against the engine.
        // A user who can write that directory can already run code as the
        // user.
        match unsafe { Component::deserialize_file(self.engine.wasmtime(), path) } {
            Ok(c) => {
                // A use: the artifact is kept over older ones. Best
                // effort (a read-only cache still works).
                let _ = std::fs::File::options()
                    .append(true)
                    .open(path)
                    .and_then(|f| f.set_modified(std::time::SystemTime::now()));
                Some(c)
            }
            Err(e) => {
                tracing::warn!("ignoring unusable cached artifact {}: {e:#}", path.display());
                None
            }
        }
    }
}

/// An exclusive lock on compiling one artifact, held across processes: an
/// advisory lock (`flock`) on a file beside it, which the OS releases if
/// its holder dies mid-compile. Without one (a read-only or odd file
/// system) every process compiles for itself, as before.
struct CompileLock {
    file: Option<(std::fs::File, PathBuf)>,
}

impl CompileLock {
    fn take(artifact: &Path) -> CompileLock {
        let path = artifact.with_extension(LOCK_EXTENSION);
        let file = std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))
            .and_then(|()| std::fs::File::options().create(true).truncate(false).write(true).open(&path))
            .and_then(|f| f.lock().map(|()| f));
        match file {
            Ok(f) => CompileLock { file: Some((f, path)) },
            Err(e) => {
                tracing::debug!("compiling without a lock ({}): {e}", path.display());
                CompileLock { file: None }
            }
        }
    }
}

impl Drop for CompileLock {
    fn drop(&mut self) {
        // Removed while still held: a process that opens it after this
        // locks a new file, and finds the artifact when it looks again
        // under that lock; one already waiting on this file wakes, and
        // finds it too.
        if let Some((file, path)) = self.file.take() {
            let _ = std::fs::remove_file(&path);
            drop(file);
        }
    }
}

/// Removes the least recently used artifacts in `dir` until the rest fit in
/// `budget` bytes, never `keep` (the one just written). Failures only cost
/// disk space, so they are logged, not returned.
fn prune(dir: &Path, budget: u64, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let artifacts: Vec<(PathBuf, u64, std::time::SystemTime)> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == ARTIFACT_EXTENSION))
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((e.path(), meta.len(), meta.modified().ok()?))
        })
        .collect();
    for victim in evictions(&artifacts, budget, keep) {
        if let Err(e) = std::fs::remove_file(victim) {
            tracing::warn!("cannot remove cached artifact {}: {e}", victim.display());
        }
    }
}

/// Which artifacts (path, size, last use) to remove so that the rest fit in
/// `budget`: the least recently used first, never `keep`.
fn evictions<'a, T: Ord + Copy>(artifacts: &'a [(PathBuf, u64, T)], budget: u64, keep: &Path) -> Vec<&'a Path> {
    let mut total: u64 = artifacts.iter().map(|a| a.1).sum();
    let mut by_age: Vec<&(PathBuf, u64, T)> = artifacts.iter().filter(|a| a.0 != keep).collect();
    by_age.sort_by_key(|a| a.2);
    let mut out = Vec::new();
    for (path, size, _) in by_age {
        if total <= budget {
            break;
        }
        total -= size;
        out.push(path.as_path());
    }
    out
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

#[cfg(test)]
mod cache_budget_tests {
    use super::{evictions, prune};
    use std::path::PathBuf;

    #[test]
    fn the_least_recently_used_go_first_and_the_new_one_stays() {
        let a = |n: &str, size, used| (PathBuf::from(n), size, used);
        let all = [a("old", 40, 1), a("new", 50, 9), a("mid", 30, 5), a("fresh", 60, 0)];
        // 180 bytes in a budget of 100: "old" (40) then "mid" (30) would be
        // next by age, but "fresh" is the one just written and stays.
        let gone = evictions(&all, 100, &PathBuf::from("fresh"));
        assert_eq!(gone, [PathBuf::from("old"), PathBuf::from("mid"), PathBuf::from("new")]);
        assert!(evictions(&all, 180, &PathBuf::from("fresh")).is_empty());
        assert_eq!(evictions(&all, 140, &PathBuf::from("fresh")), [PathBuf::from("old")]);
    }

    #[test]
    fn pruning_a_directory_keeps_other_files_and_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        for (i, name) in ["a.cwasm", "b.cwasm", "c.cwasm"].iter().enumerate() {
            std::fs::write(dir.path().join(name), vec![0u8; 100]).unwrap();
            let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000 + i as u64);
            std::fs::File::options().append(true).open(dir.path().join(name)).unwrap().set_modified(t).unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), vec![0u8; 500]).unwrap();
        prune(dir.path(), 150, &dir.path().join("a.cwasm"));
        let mut left: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
        left.sort();
        assert_eq!(left, ["a.cwasm", "notes.txt"]);
    }
}

#[cfg(test)]
mod reuse_section_tests {
    use super::{asks_for_reuse, with_reuse_section};

    #[test]
    fn the_reuse_section_is_found_at_the_top_level_only_when_written() {
        // A component header, then a custom section named otherwise.
        let mut plain = b"\0asm\x0d\x00\x01\x00".to_vec();
        plain.extend_from_slice(&[0, 4, 3, b'a', b'b', b'c']);
        assert!(!asks_for_reuse(&plain));
        let marked = with_reuse_section(plain.clone());
        assert!(asks_for_reuse(&marked));
        // A truncated section ends the walk without a panic.
        assert!(!asks_for_reuse(&marked[..marked.len() - 1]));
        assert!(!asks_for_reuse(b"\0asm"));
    }
}

#[cfg(test)]
mod import_tests {
    use super::imports_wray;

    /// A component whose one import (an instance) is named `name`: the
    /// import section only, which is all `imports_wray` reads.
    fn importing(name: &str) -> Vec<u8> {
        let mut section = vec![1, 0x00, name.len() as u8];
        section.extend_from_slice(name.as_bytes());
        section.extend_from_slice(&[0x05, 0x00]); // an instance, of type 0
        let mut bytes = b"\0asm\x0d\x00\x01\x00".to_vec();
        bytes.extend_from_slice(&[10, section.len() as u8]);
        bytes.extend(section);
        bytes
    }

    #[test]
    fn wray_imports_are_told_from_wasi_ones() {
        assert!(imports_wray(&importing("wray:runtime/tasks@0.1.0")));
        assert!(!imports_wray(&importing("wasi:cli/stdout@0.2.6")));
        assert!(!imports_wray(b"\0asm\x0d\x00\x01\x00"));
        // Truncated: read as importing nothing.
        let cut = importing("wray:runtime/tasks@0.1.0");
        assert!(!imports_wray(&cut[..cut.len() - 3]));
    }
}
