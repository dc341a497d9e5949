//! Every size a guest controls is bounded here, with the reason for the value.
//! Exceeding one fails the guest's call with a guest-visible error (or, for
//! sizes that only a hostile guest reaches, a trap) — never a host OOM.

/// Largest single object (a `put`, a task result or an argument), in bytes.
/// Objects live in host memory (and on disk when spilled); 2 GiB keeps one
/// object addressable by a 32-bit guest with room to spare for the guest's own
/// copy.
pub const MAX_OBJECT_SIZE: usize = 2 << 30;

/// Largest job component (the `.wasm` file), in bytes. A job request
/// carries its component to a cluster in one frame (256 MiB on the wire,
/// `wray_net::frame::MAX_FRAME`) with its arguments and environment, so a
/// larger one could run here and not there; and a file is read into memory
/// whole to be hashed and compiled. A Rust job is hundreds of KiB, a Python
/// job (the interpreter inside) about 20 MiB.
pub const MAX_COMPONENT_SIZE: usize = 224 << 20;

/// Refs one `get`/`wait` call may name: bounds the per-call bookkeeping.
pub const MAX_REFS_PER_CALL: usize = 1 << 20;

/// Arguments one task may take.
pub const MAX_ARGS: usize = 1024;

/// Object refs one value may carry nested inside it.
pub const MAX_NESTED_REFS: usize = 1 << 16;

/// Bytes of a function, class, method or actor name.
pub const MAX_NAME_LEN: usize = 1024;

/// Bytes of a panic message a guest may report; longer ones are cut.
pub const MAX_PANIC_MESSAGE: usize = 16 * 1024;

/// Tasks a single job may have submitted but not finished. Submitting more
/// makes `submit` wait (back-pressure) instead of growing host memory without
/// bound.
pub const MAX_PENDING_TASKS_PER_JOB: usize = 100_000;

/// Handles (object refs, tensors, WASI resources) one instance may hold at
/// once. Each costs the host ~100 bytes, so this bounds a guest's handle
/// memory at ~200 MiB; wasmtime's default (100 000) would stop a driver that
/// keeps the refs of a few hundred thousand tasks, which Ray allows.
pub const MAX_LIVE_HANDLES: usize = 1 << 21;

/// Items one generator task may yield. Each stays pinned by the task's
/// output while the output lives (about 150 bytes of store bookkeeping
/// apart from its bytes), so this bounds a forgotten generator's
/// bookkeeping at ~150 MiB; a longer stream is better split into
/// generators of its parts. Also keeps item ids clear of put ids
/// ([`crate::ObjectId::item_of`]).
pub const MAX_GENERATOR_ITEMS: u32 = 1 << 20;

/// Items one `next-items` call hands a generator's reader at most. Batches
/// are what they happen to be — whatever the generator yielded ahead of the
/// reader — so this only bounds one answer's handles and inline bytes
/// (with [`INLINE_ITEM_BYTES`]: 256 KiB); past a few dozen items a larger
/// batch saves nothing measurable.
pub const MAX_ITEMS_PER_READ: u32 = 256;

/// A generator's item at most this large (encoded), and held in the
/// reader's node's memory, comes with its value in the `next-items` answer,
/// so that reading it costs the guest no second host call (Ray hands small
/// results back inline likewise). Small enough that the copy the SDK keeps
/// until the item's first `get` costs little: a streamed token, a number,
/// a small record.
pub const INLINE_ITEM_BYTES: usize = 1024;

/// Live actors per job: each holds a Wasm instance (and its memory).
pub const MAX_ACTORS_PER_JOB: usize = 10_000;

/// Bundles in one placement group.
pub const MAX_BUNDLES: usize = 1024;

/// Bytes of a topic a job publishes its progress under
/// (`cluster.publish-status`).
pub const MAX_STATUS_TOPIC_BYTES: usize = 128;

/// Bytes of one published progress document. A head's state answer holds
/// every node's documents ([`MAX_PUBLISHED_PER_NODE`] at most), and the
/// dashboard sends them all to every browser once a second: 64 KiB each
/// keeps that within a few MiB while leaving room for a hundred trials'
/// curves.
pub const MAX_STATUS_BYTES: usize = 64 << 10;

/// Progress documents a node keeps (the most recently published; the
/// oldest is dropped when a new topic comes): they outlive their job, so
/// a finished experiment stays on the dashboard until newer ones push it
/// out.
pub const MAX_PUBLISHED_PER_NODE: usize = 32;

/// Environment variables one task or actor may set for itself (Ray's
/// `runtime_env={"env_vars": ...}`), over those its job was granted.
pub const MAX_TASK_ENV_VARS: usize = 64;

/// Bytes of a task's or actor's own environment variables, names and values
/// together: they travel with every submission and every cross-node request.
pub const MAX_TASK_ENV_BYTES: usize = 16 << 10;

/// Names in one listing of named actors (`actors.list-named`): a node
/// lists no more, and refuses a peer's answer with more. Ten jobs' worth of
/// `MAX_ACTORS_PER_JOB`, detached actors counted with them.
pub const MAX_NAMES_LISTED: usize = 100_000;
