use crate::bindings::wray::runtime::types as wit;
use crate::value::note_nested_ref;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A reference to a value of type `T` that exists, or will exist, in the
/// object store — Ray's `ObjectRef`.
///
/// Returned by [`put`](crate::put), by `f::remote(..)` of a
/// [`#[remote]`](crate::remote) function and by actor method calls. Read the
/// value with [`get`](crate::get). Cloning is cheap: clones share one host
/// handle through a reference count inside the guest, so cloning and
/// dropping clones never call the host (what made `wait` over many refs
/// slow: it clones every ref it is given). When the last reference in the
/// job is dropped the object is freed.
///
/// An `ObjectRef` can be passed as an argument wherever a `T` is expected (the
/// runtime resolves it before the task starts) and can be nested inside other
/// values (a `Vec<ObjectRef<T>>` argument or return value): the runtime keeps
/// nested objects alive while the value holding them lives.
pub struct ObjectRef<T> {
    pub(crate) handle: Arc<Handle>,
    _type: PhantomData<fn() -> T>,
}

/// The host handle every clone of one ref shares, and whether the guest
/// already knows the object is ready: a [`wait`](crate::wait) saw it
/// settled. An object never becomes pending again, so a later `wait` counts
/// it without asking the host — what keeps the usual `wait(pending, 1)`
/// loop from sending every still-pending ref across the boundary once per
/// ready one (1,000 refs: half a million handle lifts).
///
/// A generator's small item also comes with its encoded value
/// (`tasks.next-items`), kept here until its first `get`, which then asks
/// the host nothing: reading a streamed item costs one host call per batch
/// of items instead of two per item. Only the first `get` uses it, so an
/// item kept after it is read keeps no copy, and the copies kept at once
/// are bounded (`MAX_KEPT_VALUE_BYTES`).
#[doc(hidden)]
pub struct Handle {
    wit: wit::ObjectRef,
    ready: AtomicBool,
    value: Mutex<Option<Vec<u8>>>,
}

impl Handle {
    #[inline]
    pub(crate) fn known_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    #[inline]
    pub(crate) fn mark_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    /// The value the host handed out with the ref, if it did and nobody
    /// took it yet.
    #[inline]
    pub(crate) fn take_value(&self) -> Option<Vec<u8>> {
        uncounted(self.value.lock().unwrap_or_else(|e| e.into_inner()).take())
    }
}

/// `value`, which stops counting against `MAX_KEPT_VALUE_BYTES`.
fn uncounted(value: Option<Vec<u8>>) -> Option<Vec<u8>> {
    if let Some(v) = &value {
        KEPT_VALUE_BYTES.fetch_sub(v.len(), Ordering::Relaxed);
    }
    value
}

/// Bytes of values handed out with refs that the guest may keep unread at
/// once. The copies are a convenience — the object store holds every value
/// anyway — so past this a value is not kept and its `get` asks the host:
/// a reader that collects a long stream's refs before reading any (a
/// million items of 1 KiB) keeps no second copy of the stream in its own
/// memory, where it would count against the guest's memory limit.
pub(crate) const MAX_KEPT_VALUE_BYTES: usize = 16 << 20;

static KEPT_VALUE_BYTES: AtomicUsize = AtomicUsize::new(0);

impl Drop for Handle {
    fn drop(&mut self) {
        // An unread copy stops counting against the bound (no lock: the
        // handle is going away).
        uncounted(self.value.get_mut().unwrap_or_else(|e| e.into_inner()).take());
    }
}

impl Deref for Handle {
    type Target = wit::ObjectRef;
    fn deref(&self) -> &wit::ObjectRef {
        &self.wit
    }
}

/// An object's id: the task that created it and its index among that task's
/// outputs. Printable; useful in logs. Serializable, so a task can be
/// handed an id and make a ref of it with [`ObjectRef::from_id`] — but
/// unlike a ref, an id does not keep its object alive.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectId {
    pub(crate) task: u128,
    pub(crate) index: u32,
}

impl ObjectId {
    pub(crate) fn from_wit(id: wit::ObjectId) -> ObjectId {
        ObjectId { task: (u128::from(id.task_hi) << 64) | u128::from(id.task_lo), index: id.index }
    }

    pub(crate) fn to_wit(self) -> wit::ObjectId {
        wit::ObjectId { task_hi: (self.task >> 64) as u64, task_lo: self.task as u64, index: self.index }
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}.{}", self.task, self.index)
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<T> ObjectRef<T> {
    pub(crate) fn from_handle(handle: wit::ObjectRef) -> ObjectRef<T> {
        ObjectRef::with_value(handle, None)
    }

    /// A ref the host handed out with its (ready) object's encoded value.
    pub(crate) fn with_value(handle: wit::ObjectRef, value: Option<Vec<u8>>) -> ObjectRef<T> {
        // (The host hands out values only of ready objects.)
        let ready = AtomicBool::new(value.is_some());
        let value = value.filter(|v| {
            let kept = KEPT_VALUE_BYTES.fetch_add(v.len(), Ordering::Relaxed) + v.len();
            if kept > MAX_KEPT_VALUE_BYTES {
                KEPT_VALUE_BYTES.fetch_sub(v.len(), Ordering::Relaxed);
                return false;
            }
            true
        });
        ObjectRef { handle: Arc::new(Handle { wit: handle, ready, value: Mutex::new(value) }), _type: PhantomData }
    }

    /// The object's id.
    pub fn id(&self) -> ObjectId {
        ObjectId::from_wit(self.handle.id())
    }

    /// The same object, typed `()`: for keeping objects of different types
    /// alive in one list, or handing them on where the type is not known.
    pub fn untyped(&self) -> ObjectRef<()> {
        ObjectRef { handle: self.handle.clone(), _type: PhantomData }
    }

    /// Recreates a reference from an id this job knows about (for example one
    /// logged earlier). Fails with [`Error::InvalidArgument`](crate::Error)
    /// if the runtime holds no such object for this job.
    pub fn from_id(id: ObjectId) -> Result<ObjectRef<T>, crate::Error> {
        Ok(ObjectRef::from_handle(wit::ObjectRef::from_id(id.to_wit())?))
    }
}

impl<T> Clone for ObjectRef<T> {
    fn clone(&self) -> Self {
        ObjectRef { handle: self.handle.clone(), _type: PhantomData }
    }
}

impl<T> fmt::Debug for ObjectRef<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectRef({})", self.id())
    }
}

impl<T> PartialEq for ObjectRef<T> {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

impl<T> Serialize for ObjectRef<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let id = self.handle.id();
        note_nested_ref(&self.handle);
        (id.task_hi, id.task_lo, id.index).serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for ObjectRef<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (task_hi, task_lo, index) = <(u64, u64, u32)>::deserialize(d)?;
        let id = wit::ObjectId { task_hi, task_lo, index };
        wit::ObjectRef::from_id(id).map(ObjectRef::from_handle).map_err(|e| {
            let e = crate::Error::from(e);
            let message = e.to_string();
            crate::value::note_refused_ref(e);
            serde::de::Error::custom(message)
        })
    }
}
