use crate::ObjectRef;
use crate::bindings::wray::runtime::types as wit;
use serde::Serialize;

/// A remote-call argument of type `T`: a value, or a ref to one that the
/// runtime resolves before the call runs. You rarely name this type: any
/// `T`, `ObjectRef<T>` or `&ObjectRef<T>` converts into it, so
/// `f::remote(3)`, `f::remote(r.clone())` and `f::remote(&r)` all work.
pub enum Arg<T> {
    /// Passed by value (encoded now).
    Value(T),
    /// Resolved by the runtime before the call.
    Ref(ObjectRef<T>),
}

impl<T> From<T> for Arg<T> {
    fn from(v: T) -> Arg<T> {
        Arg::Value(v)
    }
}

impl<T> From<ObjectRef<T>> for Arg<T> {
    fn from(r: ObjectRef<T>) -> Arg<T> {
        Arg::Ref(r)
    }
}

impl<T> From<&ObjectRef<T>> for Arg<T> {
    fn from(r: &ObjectRef<T>) -> Arg<T> {
        Arg::Ref(r.clone())
    }
}

/// An argument after encoding.
#[doc(hidden)]
pub enum RawArg {
    Value(wit::Value),
    Ref(std::sync::Arc<crate::object_ref::Handle>),
}

impl RawArg {
    pub fn new<T: Serialize + 'static>(arg: Arg<T>) -> RawArg {
        match arg {
            Arg::Value(v) => RawArg::Value(crate::value::encode(&v)),
            Arg::Ref(r) => RawArg::Ref(r.handle),
        }
    }
}

/// Lends `args` to the host as WIT `arg`s for the duration of `f`.
pub(crate) fn with_wit_args<R>(args: Vec<RawArg>, f: impl FnOnce(&[wit::Arg<'_>]) -> R) -> R {
    let mut refs = Vec::new();
    let mut values = Vec::with_capacity(args.len());
    for a in args {
        match a {
            RawArg::Value(v) => values.push(Some(v)),
            RawArg::Ref(r) => {
                refs.push(r);
                values.push(None);
            }
        }
    }
    let mut next_ref = refs.iter();
    let wit_args: Vec<wit::Arg<'_>> = values
        .into_iter()
        .map(|v| match v {
            Some(v) => wit::Arg::Value(v),
            // One `None` was pushed per ref, in order.
            None => wit::Arg::Object(next_ref.next().expect("one ref per None")),
        })
        .collect();
    f(&wit_args)
}
