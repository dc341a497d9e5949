"""Pickles of single scalars, written without a Pickler.

Most task results, actor answers and small arguments are one scalar — a
``bytes``, a ``str``, an ``int``, ``None``. ``pickle.dumps`` spends about
2 µs on one in a Wasm instance (it builds a Pickler and looks up its hooks
each time); writing the few opcodes here costs under 1 µs. The bytes are
ordinary pickle protocol 5 (without the optional frame and memo opcodes),
so ``pickle.loads`` reads them like any other pickle and nothing else in
wray needs to know this module exists.
"""

import struct

_FLOAT = struct.Struct(">d").pack  # BINFLOAT: big-endian IEEE 754 double
_LEN4 = struct.Struct("<I").pack  # BINBYTES/BINUNICODE: 4-byte length
_INT4 = struct.Struct("<i").pack  # BININT: signed 32-bit

_NONE = b"\x80\x05N."
_TRUE = b"\x80\x05\x88."
_FALSE = b"\x80\x05\x89."

# Past this many bytes a str or bytes is joined rather than concatenated
# (one copy of the payload instead of two).
_SHORT = 256


def dumps(obj):
    """The pickle of ``obj`` when it is ``None``, a ``bool``, an ``int``
    that fits 32 bits, a ``float``, or ``bytes``/``str`` under 4 GiB —
    exactly those types, not subclasses; ``None`` for anything else (the
    caller pickles it the usual way)."""
    t = type(obj)
    if t is bytes:
        return _sized(obj, b"\x80\x05C", b"\x80\x05B")  # SHORT_BINBYTES, BINBYTES
    if t is str:
        # SHORT_BINUNICODE, BINUNICODE: UTF-8 with lone surrogates kept, as
        # pickle writes them.
        return _sized(obj.encode("utf-8", "surrogatepass"), b"\x80\x05\x8c", b"\x80\x05X")
    if t is int:
        if 0 <= obj < 256:  # BININT1, else BININT
            return b"\x80\x05K" + bytes((obj,)) + b"."
        if -(1 << 31) <= obj < 1 << 31:
            return b"\x80\x05J" + _INT4(obj) + b"."
        return None
    if t is float:  # BINFLOAT
        return b"\x80\x05G" + _FLOAT(obj) + b"."
    if obj is None:
        return _NONE
    if t is bool:
        return _TRUE if obj else _FALSE
    return None


def _sized(data, short, long):
    """``data`` after the opcode for its size (1-byte or 4-byte length)."""
    n = len(data)
    if n < _SHORT:
        return short + bytes((n,)) + data + b"."
    if n < 1 << 32:
        return b"".join((long, _LEN4(n), data, b"."))
    return None
