"""Tensors held by the host, from Python: the kernels ``wray::nn`` runs
(the GPU path where the task holds ``GPU`` and the node has one, else the
CPU path — the same operations, the same results), behind a small
numpy-like surface::

    from wray.tensor import tensor

    x = tensor([[1.0, 2.0], [3.0, 4.0]])
    y = (x @ x).relu() * 0.5 + 1.0
    print(y.shape, y.tolist(), y.sum(axis=1).tolist())

Elements are float32; at most 4 dimensions and 2^25 elements. Every
operation returns a new tensor (except ``sgd_step``/``adam_step``, which
update in place); a failed one (shapes that do not fit, a freed tensor)
raises ``wray.exceptions.InvalidArgumentError`` (a ``ValueError``) naming
the operation and the shapes. A tensor's data stays on the host until
``tolist``/``to_bytes`` reads it back.
"""

import array as _array
import sys as _sys

from componentize_py_types import Err as _Err
from wit_world.imports import tensors as _t

__all__ = ["Tensor", "tensor", "zeros", "ones", "full", "one_hot", "from_bytes", "from_object", "device_info"]


def _call(f, *args):
    try:
        return f(*args)
    except _Err as err:
        import wray

        wray._raise(err)


def _flatten(data):
    """Row-major elements and shape of a nested list of numbers."""
    if isinstance(data, (int, float)):
        return [float(data)], []
    if not isinstance(data, (list, tuple)):
        raise TypeError(f"tensor data must be numbers or nested lists of them, not {type(data).__name__}")
    if not data:
        return [], [0]
    parts = [_flatten(d) for d in data]
    inner = parts[0][1]
    if any(p[1] != inner for p in parts):
        raise ValueError("tensor data is ragged: every row must have the same shape")
    return [x for p in parts for x in p[0]], [len(data)] + inner


def _f32le(values):
    a = _array.array("f", values)
    if _sys.byteorder != "little":
        a.byteswap()
    return a


class Tensor:
    """A float32 tensor stored by the host (see the module's documentation)."""

    __slots__ = ("_h", "__weakref__")

    def __init__(self, handle):
        self._h = handle

    # What it is.

    @property
    def shape(self):
        return tuple(self._h.shape())

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def device(self):
        """``"cpu"`` or ``"gpu"``."""
        return "gpu" if self._h.device() == _t.DeviceKind.GPU else "cpu"

    def __repr__(self):
        return f"Tensor(shape={self.shape}, device={self.device})"

    # Reading it back.

    def tolist(self):
        """The elements as nested lists (a float for a 0-d tensor)."""
        flat = _call(self._h.read)
        shape = self.shape

        def build(offset, dims):
            if not dims:
                return flat[offset]
            step = 1
            for d in dims[1:]:
                step *= d
            return [build(offset + i * step, dims[1:]) for i in range(dims[0])]

        return build(0, list(shape)) if shape else (flat[0] if flat else 0.0)

    def item(self):
        """The one element of a one-element tensor."""
        flat = _call(self._h.read)
        if len(flat) != 1:
            raise ValueError(f"item() needs one element, the tensor has {len(flat)}")
        return flat[0]

    def to_bytes(self):
        """The elements as little-endian float32 bytes, row-major."""
        return _f32le(_call(self._h.read)).tobytes()

    def to_object(self):
        """Stores the tensor in the object store; returns its ref (pass it to
        tasks; ``from_object`` makes a tensor of it without a guest copy)."""
        import wray

        return wray.ObjectRef(_call(self._h.to_object))

    def free(self):
        """Frees the host's storage now (later uses raise)."""
        self._h.free()

    def __reduce__(self):
        raise TypeError("a Tensor lives on the host: pass t.to_object() to tasks instead")

    # Shape.

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
            shape = shape[0]
        return Tensor(_call(self._h.reshape, list(shape)))

    # Element-wise.

    def _binary(self, op, other):
        if isinstance(other, Tensor):
            return Tensor(_call(self._h.binary, op, other._h))
        raise TypeError(f"expected a Tensor, got {type(other).__name__}")

    def _unary(self, op):
        return Tensor(_call(self._h.unary, op))

    def affine(self, scale, shift):
        """``self * scale + shift``."""
        return Tensor(_call(self._h.affine, float(scale), float(shift)))

    def __add__(self, other):
        if isinstance(other, (int, float)):
            return self.affine(1.0, other)
        return self._binary(_t.BinaryOp.ADD, other)

    __radd__ = __add__

    def __sub__(self, other):
        if isinstance(other, (int, float)):
            return self.affine(1.0, -other)
        return self._binary(_t.BinaryOp.SUB, other)

    def __rsub__(self, other):
        return self.affine(-1.0, other)

    def __mul__(self, other):
        if isinstance(other, (int, float)):
            return self.affine(other, 0.0)
        return self._binary(_t.BinaryOp.MUL, other)

    __rmul__ = __mul__

    def __truediv__(self, other):
        if isinstance(other, (int, float)):
            return self.affine(1.0 / other, 0.0)
        return self._binary(_t.BinaryOp.DIV, other)

    def __rtruediv__(self, other):
        return self.pow(-1.0).affine(other, 0.0)

    def __neg__(self):
        return self._unary(_t.UnaryOp.NEG)

    def __pow__(self, exponent):
        return self.pow(exponent)

    def __matmul__(self, other):
        return self.matmul(other)

    def pow(self, exponent):
        return Tensor(_call(self._h.pow, float(exponent)))

    def maximum(self, other):
        return self._binary(_t.BinaryOp.MAXIMUM, other)

    def minimum(self, other):
        return self._binary(_t.BinaryOp.MINIMUM, other)

    def greater(self, other):
        """1 where ``self > other``, else 0."""
        return self._binary(_t.BinaryOp.GREATER, other)

    def relu_backward(self, grad):
        """``grad`` where ``self > 0``, else 0 (ReLU's backward pass)."""
        return self._binary(_t.BinaryOp.RELU_BACKWARD, grad)

    def relu(self):
        return self._unary(_t.UnaryOp.RELU)

    def sigmoid(self):
        return self._unary(_t.UnaryOp.SIGMOID)

    def tanh(self):
        return self._unary(_t.UnaryOp.TANH)

    def exp(self):
        return self._unary(_t.UnaryOp.EXP)

    def log(self):
        return self._unary(_t.UnaryOp.LOG)

    def sqrt(self):
        return self._unary(_t.UnaryOp.SQRT)

    def abs(self):
        return self._unary(_t.UnaryOp.ABS)

    def clamp(self, lo, hi):
        return Tensor(_call(self._h.clamp, float(lo), float(hi)))

    # Linear algebra and reductions.

    def matmul(self, other, transpose_a=False, transpose_b=False):
        """``op(self) @ op(other)`` of two matrices, each transposed when its
        flag is set."""
        if not isinstance(other, Tensor):
            raise TypeError(f"expected a Tensor, got {type(other).__name__}")
        return Tensor(_call(self._h.matmul, other._h, transpose_a, transpose_b))

    def sum(self, axis=0):
        """Sum along ``axis``, kept with length 1."""
        return Tensor(_call(self._h.reduce, _t.ReduceOp.SUM, axis))

    def mean(self, axis=0):
        return Tensor(_call(self._h.reduce, _t.ReduceOp.MEAN, axis))

    def max(self, axis=0):
        return Tensor(_call(self._h.reduce, _t.ReduceOp.MAX, axis))

    def softmax(self):
        """Softmax of each row of a matrix."""
        return Tensor(_call(self._h.softmax))

    def cross_entropy(self, targets):
        """``[rows, 1]``: each row's cross-entropy (of logits) against its
        class index."""
        return Tensor(_call(self._h.cross_entropy, [int(t) for t in targets]))

    def gather_rows(self, indices):
        return Tensor(_call(self._h.gather_rows, [int(i) for i in indices]))

    # Optimizer steps, in place.

    def sgd_step(self, grad, velocity, lr, momentum=0.0, weight_decay=0.0):
        """``self`` (a parameter) and ``velocity`` updated in place by SGD
        with momentum (PyTorch's formulation)."""
        params = _t.SgdParams(lr=float(lr), momentum=float(momentum), weight_decay=float(weight_decay))
        _call(self._h.sgd_step, grad._h, velocity._h, params)

    def adam_step(self, grad, m, v, step, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
        """``self``, ``m`` and ``v`` updated in place by Adam; ``step``
        counts from 1."""
        params = _t.AdamParams(
            lr=float(lr), beta1=float(beta1), beta2=float(beta2), eps=float(eps),
            weight_decay=float(weight_decay), step=int(step),
        )
        _call(self._h.adam_step, grad._h, m._h, v._h, params)


def tensor(data, shape=None):
    """A tensor of nested lists of numbers (or a flat list with ``shape``)."""
    flat, inferred = _flatten(data)
    shape = list(shape) if shape is not None else inferred
    return Tensor(_call(_t.Tensor.from_data, shape, flat))


def full(shape, value):
    return Tensor(_call(_t.Tensor.full, list(shape), float(value)))


def zeros(shape):
    return full(shape, 0.0)


def ones(shape):
    return full(shape, 1.0)


def one_hot(indices, classes):
    """``[len(indices), classes]`` one-hot rows."""
    return Tensor(_call(_t.Tensor.one_hot, [int(i) for i in indices], int(classes)))


def from_bytes(data, shape):
    """A tensor of little-endian float32 bytes, row-major."""
    a = _array.array("f")
    a.frombytes(bytes(data))
    if _sys.byteorder != "little":
        a.byteswap()
    return Tensor(_call(_t.Tensor.from_data, list(shape), a.tolist()))


def from_object(ref):
    """The tensor an object holds (made by ``Tensor.to_object``)."""
    return Tensor(_call(_t.Tensor.from_object, ref._handle))


def device_info():
    """Where this instance's tensors live: ``cpu``, or ``gpu N: adapter``."""
    return _t.device_info()
