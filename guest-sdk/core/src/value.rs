//! Encoding values for the host: the codec plus the ids of object refs nested
//! inside the value, which the host keeps alive for the value's lifetime.

use crate::bindings::wray::runtime::types as wit;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::cell::RefCell;

thread_local! {
    /// Set while a value is being encoded: the object refs met on the way.
    /// Holds a clone of each, handed to the host with the value.
    static NESTED: RefCell<Option<Vec<wit::ObjectRef>>> = const { RefCell::new(None) };
    /// Why the runtime refused to re-create a ref met while decoding a value
    /// (an id the job does not hold): reported instead of the codec's
    /// generic "deserialization error", which cannot carry it.
    static REF_REFUSED: RefCell<Option<crate::Error>> = const { RefCell::new(None) };
}

pub(crate) fn note_refused_ref(e: crate::Error) {
    REF_REFUSED.with(|r| *r.borrow_mut() = Some(e));
}

pub(crate) fn note_nested_ref(handle: &wit::ObjectRef) {
    NESTED.with(|n| {
        if let Some(refs) = n.borrow_mut().as_mut() {
            refs.push(handle.clone_ref());
        }
    });
}

/// Encodes `v` for the host. Panics (failing the current task with the
/// message) if the type's `Serialize` impl fails — a bug in that impl.
pub(crate) fn encode<T: Serialize + 'static>(v: &T) -> wit::Value {
    let outer = NESTED.with(|n| n.borrow_mut().replace(Vec::new()));
    let data = wray_codec::encode(v);
    let refs = NESTED.with(|n| std::mem::replace(&mut *n.borrow_mut(), outer)).unwrap_or_default();
    match data {
        Ok(data) => wit::Value { data, refs },
        Err(e) => panic!("{e}"),
    }
}

pub(crate) fn decode<T: DeserializeOwned + 'static>(bytes: &[u8]) -> Result<T, crate::Error> {
    REF_REFUSED.with(|r| r.borrow_mut().take());
    wray_codec::decode(bytes).map_err(|e| REF_REFUSED.with(|r| r.borrow_mut().take()).unwrap_or_else(|| e.into()))
}
