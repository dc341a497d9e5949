//! Generator tasks: a remote function that returns `impl Iterator<Item = T>`
//! hands its caller each item as it is made — Ray's generator tasks
//! (`ObjectRefGenerator`).
//!
//! The task side is the macro's: it iterates the function's iterator and
//! passes each item to the host (`tasks.yield-item`), which stores it as an
//! object of the caller and wakes a reader at once. The caller's side is
//! [`ObjectRefGenerator`], which asks the host for the items the task has
//! yielded so far (`tasks.next-items`: waiting for the first, then taking
//! those already there, small ones with their values) until the task has
//! ended. The items are kept alive
//! by the task's result, which the generator holds: dropping the generator
//! frees the items nobody else holds.

use crate::bindings::wray::runtime::tasks::{self, GeneratorRead};
use crate::{Error, ObjectRef};
use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

/// The items of a generator task, in the order it yields them — Ray's
/// `ObjectRefGenerator`. Returned by `f::remote(..)` of a
/// [`#[remote]`](crate::remote) function that returns
/// `impl Iterator<Item = T>`.
///
/// Iterating gives `Ok(ref)` for each item as soon as the task has yielded
/// it (while the task goes on making the next), and ends when the task
/// ends. If the task fails — panics, traps, runs past a limit, or a
/// `Result`-returning generator returns `Err` — the items it yielded
/// before come first, then one `Err` with the failure, then the end.
///
/// ```no_run
/// #[wray::remote]
/// fn countdown(from: u32) -> impl Iterator<Item = u32> {
///     (0..=from).rev()
/// }
///
/// # fn main() -> Result<(), wray::Error> {
/// for item in countdown::remote(3) {
///     println!("{}", wray::get(&item?)?); // 3, 2, 1, 0
/// }
/// # Ok(()) }
/// ```
///
/// The items are objects like any other: pass them to tasks, `wait` on
/// them, keep them after the generator is dropped. A generator is read
/// where it was called; it cannot be sent to another task.
pub struct ObjectRefGenerator<T> {
    result: ObjectRef<()>,
    /// Items the host handed out that the iterator has not given yet.
    ahead: VecDeque<ObjectRef<T>>,
    /// Items the iterator gave.
    read: u32,
    ended: bool,
}

/// Items one host call may hand out ahead of the one asked for. The host
/// never waits for a batch to fill — it hands out what the task has already
/// yielded — so this bounds only the handles (and small values) one call
/// brings in; 64 makes the call a sixty-fourth of a fast reader's cost per
/// item.
const READ_AHEAD: u32 = 64;

impl<T> ObjectRefGenerator<T> {
    pub(crate) fn new(result: ObjectRef<()>) -> ObjectRefGenerator<T> {
        ObjectRefGenerator { result, ahead: VecDeque::new(), read: 0, ended: false }
    }

    /// The task's own result: ready once the task has ended (`get` gives
    /// `()`, or the task's failure). `wait` on it to learn that without
    /// reading the items.
    pub fn result(&self) -> &ObjectRef<()> {
        &self.result
    }

    /// How many items were read so far.
    pub fn items_read(&self) -> u32 {
        self.read
    }

    /// The next item, waiting at most `timeout` for the task to yield it:
    /// `Some(Err(Error::Timeout))` if it has not by then (ask again), and
    /// otherwise what [`Iterator::next`] gives.
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<Result<ObjectRef<T>, Error>> {
        let ms = timeout.as_millis().min(u128::from(u64::MAX)) as u64;
        self.advance(Some(ms))
    }

    fn advance(&mut self, timeout_ms: Option<u64>) -> Option<Result<ObjectRef<T>, Error>> {
        if self.ahead.is_empty() && !self.ended {
            // Nothing handed out is left, so the next item to ask for is
            // the next one to give.
            match tasks::next_items(&self.result.handle, self.read, READ_AHEAD, timeout_ms) {
                Ok(GeneratorRead::Items(items)) => {
                    self.ahead.extend(items.into_iter().map(|i| ObjectRef::with_value(i.item, i.value)));
                }
                Ok(GeneratorRead::Ended) => self.ended = true,
                Ok(GeneratorRead::Failed) => {
                    self.ended = true;
                    return Some(Err(crate::get(&self.result)
                        .err()
                        .unwrap_or_else(|| Error::InvalidArgument("the generator's result is not a failure".into()))));
                }
                Err(e) => {
                    let e = Error::from(e);
                    // A timeout can be asked again; anything else ends it.
                    if !matches!(e, Error::Timeout) {
                        self.ended = true;
                    }
                    return Some(Err(e));
                }
            }
        }
        let item = self.ahead.pop_front()?;
        self.read += 1;
        Some(Ok(item))
    }
}

impl<T> Iterator for ObjectRefGenerator<T> {
    type Item = Result<ObjectRef<T>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.advance(None)
    }
}

impl<T> fmt::Debug for ObjectRefGenerator<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectRefGenerator").field("result", &self.result.id()).field("items_read", &self.read).finish()
    }
}

/// Hands the caller of the running generator task its next item; used by
/// the code `#[remote]` generates for a generator.
pub fn yield_item<T: serde::Serialize + 'static>(function: &str, item: &T) -> Result<(), String> {
    let value = crate::value::encode(item);
    tasks::yield_item(value).map_err(|e| match Error::from(e) {
        Error::Cancelled => format!("{function}: stopped: nobody holds this generator any more"),
        e => format!("{function}: yielding an item: {e}"),
    })
}
