use crate::bindings::wray::runtime::types as wit;
use std::fmt;

/// Why a remote operation failed. Returned by [`get`](crate::get) and friends;
/// mirrors the WIT `error` variant plus decoding failures on the guest side.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// The task (or actor method) returned `Err`, panicked, trapped, or ran
    /// past its memory or time limit.
    TaskFailed {
        /// The remote function (`crate::path::name`) or `Class.method`.
        function: String,
        /// The cause, as the host saw it.
        message: String,
    },
    /// The actor is dead: killed, its constructor failed, or its restarts are
    /// used up.
    ActorDied(String),
    /// The object is gone and cannot be rebuilt.
    ObjectLost(String),
    /// A `get` or `wait` timed out.
    Timeout,
    /// The task was cancelled with [`cancel`](crate::cancel).
    Cancelled,
    /// The runtime refused an argument (unknown name, bad option, name taken...).
    InvalidArgument(String),
    /// The node's object store cannot take the object: its memory budget is
    /// used up and spilling to disk fails (a full disk, most likely). Freeing
    /// objects (dropping their refs) or freeing disk space makes room again.
    StoreFull(String),
    /// The object's bytes do not decode as the requested type (the `T` of
    /// `ObjectRef<T>` does not match what the task produced).
    Decode(String),
    /// An error the job raised itself — Python's `raise ValueError(...)` in a
    /// Ray job. Made with [`Error::msg`], or by `?` on a `String`, a `&str` or
    /// a `std::io::Error`; for functions whose error type is `wray::Error`
    /// (a `wray::train` loop, a `wray::data` closure, a `BatchMapper`, a
    /// `main` or task that also calls `wray::get`). It never comes from the
    /// runtime; when it fails a task, the caller's `get` sees
    /// [`Error::TaskFailed`] with this message.
    Other(String),
}

impl Error {
    /// An error with this message, raised by the job itself
    /// ([`Error::Other`]): `return Err(wray::Error::msg(format!("loss is {loss}")))`.
    pub fn msg(message: impl fmt::Display) -> Error {
        Error::Other(message.to_string())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TaskFailed { function, message } => {
                write!(f, "task {function} failed: {message}")
            }
            Error::ActorDied(m) => write!(f, "actor died: {m}"),
            Error::ObjectLost(m) => write!(f, "object lost: {m}"),
            Error::Timeout => f.write_str("timed out"),
            Error::Cancelled => f.write_str("task cancelled"),
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Error::StoreFull(m) => write!(f, "object store full: {m}"),
            Error::Decode(m) => write!(f, "decode error: {m}"),
            Error::Other(m) => f.write_str(m),
        }
    }
}

/// `Debug` prints the same words as `Display` (as `anyhow::Error` does), so
/// that a `main` returning `Result<(), wray::Error>` and `.unwrap()` show a
/// readable message.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {}

impl From<wit::Error> for Error {
    fn from(e: wit::Error) -> Error {
        match e {
            wit::Error::TaskFailed(t) => Error::TaskFailed { function: t.function, message: t.message },
            wit::Error::ActorDied(m) => Error::ActorDied(m),
            wit::Error::ObjectLost(m) => Error::ObjectLost(m),
            wit::Error::Timeout => Error::Timeout,
            wit::Error::Cancelled => Error::Cancelled,
            wit::Error::InvalidArgument(m) => Error::InvalidArgument(m),
            wit::Error::StoreFull(m) => Error::StoreFull(m),
        }
    }
}

impl From<String> for Error {
    fn from(message: String) -> Error {
        Error::Other(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Error {
        Error::Other(message.to_owned())
    }
}

/// A file the job reads or writes through WASI (`std::fs` on a directory
/// granted with `--dir`) fails with the OS's words, e.g. `No such file or
/// directory (os error 44)`.
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Other(e.to_string())
    }
}

impl From<wray_codec::DecodeError> for Error {
    fn from(e: wray_codec::DecodeError) -> Error {
        Error::Decode(e.to_string())
    }
}
