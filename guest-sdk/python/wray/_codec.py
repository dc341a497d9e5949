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

from . import _scalar
from . import _value

# The first bytes of a value in the cross-language encoding (`loads` tests
# them in place of `_value.is_value`: it runs for every value).
_VALUE_MAGIC = _value.MAGIC

# The tag of an object ref's persistent id.
_REF = "wray.ref"


class _Pickler(cloudpickle.Pickler):
    def __init__(self, file):
        super().__init__(file, protocol=5)
        self.refs = []

    def persistent_id(self, obj):
        from . import ObjectRef

        if isinstance(obj, ObjectRef):
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


# Types whose values hold no ref and no code: the C pickler writes them
# (about a microsecond) where cloudpickle's Python-level pickler costs tens
# of microseconds — most arguments and results of small calls.
_SCALARS = (type(None), bool, int, float, str, bytes)


def _is_plain(obj, depth=0):
    t = type(obj)
    if t in _SCALARS:
        return True
    if depth < 2 and t in (list, tuple) and len(obj) <= 16:
        return all(_is_plain(x, depth + 1) for x in obj)
    if depth < 2 and t is dict and len(obj) <= 16:
        return all(_is_plain(k, depth + 1) and _is_plain(v, depth + 1) for k, v in obj.items())
    return False


def dumps(obj):
    """Encodes ``obj``: its bytes and the refs nested in it (owned clones)."""
    if _is_plain(obj):
        return pickle.dumps(obj, protocol=5), []
    buf = io.BytesIO()
    p = _Pickler(buf)
    p.dump(obj)
    return buf.getvalue(), p.refs


# The keyword names of a call without keywords, encoded once: most calls
# have none.
NO_KEYWORDS = pickle.dumps([], protocol=5)


def to_value(obj):
    """``obj`` as the WIT ``value`` the host stores."""
    # Positional: a dataclass built with keywords costs twice as much in
    # an instance, and this runs for every result and argument.
    if type(obj) in _SCALARS:
        data = _scalar.dumps(obj)
        if data is not None:
            return types.Value(data, [])
    data, refs = dumps(obj)
    return types.Value(data, refs)


def loads(data):
    """Decodes bytes made by ``dumps``, or a value in the cross-language
    encoding (from a Rust job)."""
    if data[:4] == _VALUE_MAGIC:
        return _value.loads(data)
    try:
        # The C unpickler, for the common value without refs in it; a
        # value with refs stops it at the first persistent id.
        return pickle.loads(data)
    except pickle.UnpicklingError:
        return _Unpickler(io.BytesIO(data)).load()


def to_plain_value(obj):
    """``obj`` as a WIT ``value`` in the cross-language encoding, for a
    caller or callee in another language (``TypeError`` unless plain
    data)."""
    return types.Value(data=_value.dumps(obj), refs=[])
