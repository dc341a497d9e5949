//! Guest-visible errors: the host-side mirror of the WIT `error` variant.

/// A failure a guest (or an embedding host) can see and handle. Host bugs and
/// hostile guests are not represented here: those trap.
///
/// It travels between nodes as it is (rkyv), so that a peer's error can only
/// be one of these kinds: anything else fails validation.
#[derive(Clone, Debug, PartialEq, thiserror::Error, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum Error {
    /// A task or actor method failed: returned an error, panicked, trapped or
    /// hit a limit.
    #[error("task {function} failed: {message}")]
    TaskFailed {
        /// The function, or `Class.method`.
        function: String,
        /// The cause.
        message: String,
    },
    /// The actor is dead.
    #[error("actor died: {0}")]
    ActorDied(String),
    /// The object is gone and cannot be rebuilt.
    #[error("object lost: {0}")]
    ObjectLost(String),
    /// A `get`/`wait` timed out.
    #[error("timed out")]
    Timeout,
    /// The task was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// The caller passed something unacceptable.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The node's object store cannot take the object: its memory budget is
    /// used up and spilling to disk fails (a full disk, most likely).
    #[error("object store full: {0}")]
    StoreFull(String),
}

impl Error {
    /// Shorthand for [`Error::TaskFailed`].
    pub fn task_failed(function: impl Into<String>, message: impl Into<String>) -> Error {
        Error::TaskFailed { function: function.into(), message: message.into() }
    }
}
