//! Functions of the job passed as values.
//!
//! Ray pickles a Python function to run it elsewhere; a Wasm job cannot
//! serialize code. But every task and actor of a job runs an instance of
//! the *same component*, whose function table is laid out once at compile
//! time, so a function pointer taken in one instance names the same
//! function in any other instance, on any node. [`Code`] carries that
//! index: libraries use it to send a user's function (a dataset's map, a
//! trainer's loop) to the tasks and actors that run it.
//!
//! An index that was forged or corrupted can only make the job call the
//! wrong function of its own component, or trap (Wasm checks the signature
//! of every indirect call); the sandbox is unaffected.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::marker::PhantomData;

/// A function pointer of type `F` (`fn(..) -> ..`) of this job's component,
/// by its function-table index: serializable, and valid in every instance
/// of the same component.
///
/// ```no_run
/// use wray::Code;
///
/// fn double(x: u64) -> u64 { x * 2 }
///
/// #[wray::remote]
/// fn apply(f: Code<fn(u64) -> u64>, x: u64) -> Result<u64, wray::Error> {
///     Ok((f.get()?)(x))
/// }
///
/// # fn main() -> Result<(), wray::Error> {
/// let r = apply::remote(Code::of(double as fn(u64) -> u64), 21);
/// assert_eq!(wray::get(&r)?, 42);
/// # Ok(()) }
/// ```
pub struct Code<F> {
    index: u64,
    _f: PhantomData<F>,
}

impl<F> Clone for Code<F> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<F> Copy for Code<F> {}

impl<F: Copy> Code<F> {
    /// `f` must be a function pointer (`fn(..) -> ..`); anything else of
    /// another size fails to compile.
    pub fn of(f: F) -> Code<F> {
        const { assert!(size_of::<F>() == size_of::<usize>(), "Code::of takes a function pointer") };
        // SAFETY: F is a pointer-sized Copy type; for a function pointer, as
        // documented, its bits are its table index.
        let index = unsafe { std::mem::transmute_copy::<F, usize>(&f) } as u64;
        Code { index, _f: PhantomData }
    }

    /// The function again, in this or another instance of the component.
    pub fn get(self) -> Result<F, crate::Error> {
        let index = usize::try_from(self.index)
            .ok()
            .filter(|i| *i != 0)
            .ok_or_else(|| crate::Error::InvalidArgument(format!("{} is not a function of this job", self.index)))?;
        // SAFETY: the index came from `Code::of` with the same F in an
        // instance of the same component (module docs); it is non-null.
        Ok(unsafe { std::mem::transmute_copy::<usize, F>(&index) })
    }
}

impl<F> Serialize for Code<F> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.index.serialize(s)
    }
}

impl<'de, F> Deserialize<'de> for Code<F> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Code { index: u64::deserialize(d)?, _f: PhantomData })
    }
}
