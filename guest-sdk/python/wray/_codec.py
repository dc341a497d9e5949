"""How Python values cross the host: pickled, object refs by id.

A value is ``cloudpickle`` of the object (pickle protocol 5), so that
functions and classes defined in the job's script travel by value as they do
in Ray. An ``ObjectRef`` nested anywhere inside is written as its object id
(a pickle persistent id) and listed in the WIT ``value``'s ``refs`` — the host
then keeps that object alive for as long as the value lives — and read back
as a new reference to the same object (``object-ref.from-id``).

These bytes are the job's own: the host never reads them. Values that cross
to or from a Rust job use wray's cross-language encoding instead
(``_value``: plain data only); ``loads`` reads both, telling them apart by
their first bytes.
"""

import io
import pickle

import cloudpickle

from wit_world.imports import types

from . import _value

# The tag of an object ref's persistent id.
_REF = "wray.ref"


class _Pickler(cloudpickle.Pickler):
    def __init__(self, file):
        super().__init__(file, protocol=5)
        self.refs = []

    def persistent_id(self, obj):
        from . import ObjectRef

        if type(obj) is ObjectRef:
            oid = obj._handle.id()
            # The host takes ownership of the refs in a value: hand it
            # clones, keeping the caller's.
            self.refs.append(obj._handle.clone_ref())
            return (_REF, oid.task_hi, oid.task_lo, oid.index)
        return None


class _Unpickler(pickle.Unpickler):
    def persistent_load(self, pid):
        from . import ObjectRef

        if isinstance(pid, tuple) and len(pid) == 4 and pid[0] == _REF:
            oid = types.ObjectId(task_hi=pid[1], task_lo=pid[2], index=pid[3])
            return ObjectRef(types.ObjectRef.from_id(oid))
        raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")


def dumps(obj):
    """Encodes ``obj``: its bytes and the refs nested in it (owned clones)."""
    buf = io.BytesIO()
    p = _Pickler(buf)
    p.dump(obj)
    return buf.getvalue(), p.refs


def to_value(obj):
    """``obj`` as the WIT ``value`` the host stores."""
    data, refs = dumps(obj)
    return types.Value(data=data, refs=refs)


def loads(data):
    """Decodes bytes made by ``dumps``, or a value in the cross-language
    encoding (from a Rust job)."""
    if _value.is_value(data):
        return _value.loads(data)
    return _Unpickler(io.BytesIO(data)).load()


def to_plain_value(obj):
    """``obj`` as a WIT ``value`` in the cross-language encoding, for a
    caller or callee in another language (``TypeError`` unless plain
    data)."""
    return types.Value(data=_value.dumps(obj), refs=[])
