"""wray's cross-language value encoding: plain data a Rust job reads too.

The same bytes as the Rust SDK's ``wray::Value`` (``wray_codec::value``,
where the encoding is specified): a 4-byte magic, then a tagged item —

    00 None  01 False  02 True  03 int (i64 LE)  04 float (f64 LE)
    05 str (u32 LE length, UTF-8)  06 bytes (u32 LE length, bytes)
    07 list (u32 LE count, items)  08 dict (u32 LE count, key/value items)
    09 array('d')  0A array('f')  0B array('q')  0C array('i')
       (u32 LE count, then the elements little-endian)

Plain data is exactly what round-trips: ``None``, ``bool``, ``int`` within
64 bits, ``float``, ``str``, ``bytes``, ``list``, ``dict`` (with plain keys)
and ``array.array`` of those four type codes, nested at most ``MAX_DEPTH``
deep. Anything else (tuples, sets, objects) is Python's own and travels
pickled between Python tasks; sending it to another language is a
``TypeError`` naming where it was found.
"""

import array
import struct
import sys

MAGIC = b"\xf5wv\x01"

# Nesting read at most (the Rust reader's bound too).
MAX_DEPTH = 128

_ARRAYS = {"d": 0x09, "f": 0x0A, "q": 0x0B, "i": 0x0C}
_CODES = {v: k for k, v in _ARRAYS.items()}
_SIZES = {"d": 8, "f": 4, "q": 8, "i": 4}
_I64 = (-(1 << 63), (1 << 63) - 1)


def is_value(data):
    """Whether ``data`` is an encoded value (rather than a pickle)."""
    return bytes(data[:4]) == MAGIC


def dumps(obj):
    """``obj`` encoded; ``TypeError`` if it is not plain data."""
    out = bytearray(MAGIC)
    _write(obj, out, "value", 0)
    return bytes(out)


def _len(out, n):
    if n > 0xFFFFFFFF:
        raise ValueError("a value holds at most 2**32 - 1 items or bytes per list, string or array")
    out += struct.pack("<I", n)


def _write(obj, out, where, depth):
    if depth > MAX_DEPTH:
        raise ValueError(f"{where}: lists and dicts nest deeper than {MAX_DEPTH}")
    t = type(obj)
    if obj is None:
        out.append(0x00)
    elif t is bool:
        out.append(0x02 if obj else 0x01)
    elif t is int:
        if not _I64[0] <= obj <= _I64[1]:
            raise TypeError(f"{where}: the int {obj} does not fit in 64 bits, so it is not plain data")
        out.append(0x03)
        out += struct.pack("<q", obj)
    elif t is float:
        out.append(0x04)
        out += struct.pack("<d", obj)
    elif t is str:
        b = obj.encode("utf-8")
        out.append(0x05)
        _len(out, len(b))
        out += b
    elif t is bytes:
        out.append(0x06)
        _len(out, len(obj))
        out += obj
    elif t is list:
        out.append(0x07)
        _len(out, len(obj))
        for i, item in enumerate(obj):
            _write(item, out, f"{where}[{i}]", depth + 1)
    elif t is dict:
        out.append(0x08)
        _len(out, len(obj))
        for k, v in obj.items():
            _write(k, out, f"{where} key {k!r}", depth + 1)
            _write(v, out, f"{where}[{k!r}]", depth + 1)
    elif t is array.array and obj.typecode in _ARRAYS:
        out.append(_ARRAYS[obj.typecode])
        _len(out, len(obj))
        if sys.byteorder == "little":
            out += obj.tobytes()
        else:
            swapped = array.array(obj.typecode, obj)
            swapped.byteswap()
            out += swapped.tobytes()
    else:
        raise TypeError(
            f"{where} is a {t.__name__}, which only Python reads: values that cross to another "
            "language are None, bool, int, float, str, bytes, list, dict and array.array('d', 'f', 'q', 'i')"
        )


def loads(data):
    """Decodes an encoded value (all of ``data``); ``ValueError`` if the
    bytes are not one."""
    data = memoryview(data)
    if bytes(data[:4]) != MAGIC:
        raise ValueError("these bytes are not a wray value (no magic)")
    value, at = _read(data, 4, 0)
    if at != len(data):
        raise ValueError(f"{len(data) - at} trailing bytes after the value")
    return value


def _take(data, at, n):
    if at + n > len(data):
        raise ValueError(f"the value ends early: {n} more bytes needed at offset {at - 4}")
    return at + n


def _count(data, at, min_size):
    end = _take(data, at, 4)
    (n,) = struct.unpack_from("<I", data, at)
    if n * min_size > len(data) - end:
        raise ValueError(f"a length of {n} at offset {at - 4} runs past the value's end")
    return n, end


def _read(data, at, depth):
    if depth > MAX_DEPTH:
        raise ValueError(f"lists and dicts nest deeper than {MAX_DEPTH}")
    end = _take(data, at, 1)
    t = data[at]
    at = end
    if t == 0x00:
        return None, at
    if t == 0x01:
        return False, at
    if t == 0x02:
        return True, at
    if t == 0x03:
        end = _take(data, at, 8)
        return struct.unpack_from("<q", data, at)[0], end
    if t == 0x04:
        end = _take(data, at, 8)
        return struct.unpack_from("<d", data, at)[0], end
    if t in (0x05, 0x06):
        n, at = _count(data, at, 1)
        end = _take(data, at, n)
        raw = bytes(data[at:end])
        if t == 0x06:
            return raw, end
        try:
            return raw.decode("utf-8"), end
        except UnicodeDecodeError as e:
            raise ValueError(f"a string at offset {at - 4} is not UTF-8: {e}") from None
    if t == 0x07:
        n, at = _count(data, at, 1)
        items = []
        for _ in range(n):
            item, at = _read(data, at, depth + 1)
            items.append(item)
        return items, at
    if t == 0x08:
        n, at = _count(data, at, 2)
        out = {}
        for _ in range(n):
            k, at = _read(data, at, depth + 1)
            v, at = _read(data, at, depth + 1)
            try:
                out[k] = v
            except TypeError:
                raise ValueError(f"a dict key of type {type(k).__name__} cannot be a Python dict key") from None
        return out, at
    if t in _CODES:
        code = _CODES[t]
        n, at = _count(data, at, _SIZES[code])
        end = _take(data, at, n * _SIZES[code])
        a = array.array(code)
        a.frombytes(bytes(data[at:end]))
        if sys.byteorder != "little":
            a.byteswap()
        return a, end
    raise ValueError(f"unknown tag {t:#04x} at offset {at - 5}")
