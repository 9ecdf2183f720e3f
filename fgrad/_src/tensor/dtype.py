"""Tensor dtypes (``fg.float32`` ...) and PyTorch's type-promotion rules.

A ``dtype`` wraps a NumPy dtype and prints as ``fgrad.float32`` (PyTorch
prints ``torch.float32``). NumPy accepts it wherever it takes a dtype, because
it has a ``.dtype`` attribute.

Promotion follows PyTorch, not NumPy: operands are ranked as tensors with
dimensions > zero-dimensional tensors > Python scalars; a lower rank only
matters when it brings a higher *category* (bool < integer < float); Python
floats then give the default dtype float32, and integer + float gives the float
type (``int64 + float32 -> float32``).
"""

from __future__ import annotations

import builtins

import numpy as np


class dtype:  # noqa: N801  (PyTorch's spelling)
    """A Tensor element type, e.g. ``fg.float32``.

    >>> float32
    fgrad.float32
    >>> np.dtype(float32)
    dtype('float32')
    """

    __slots__ = ("dtype", "name", "is_floating_point", "itemsize", "is_signed")

    def __init__(self, name):
        self.dtype = np.dtype(name)
        self.name = name
        self.is_floating_point = self.dtype.kind == "f"
        self.is_signed = self.dtype.kind in "fi"
        self.itemsize = self.dtype.itemsize

    def __repr__(self):
        return f"fgrad.{self.name}"

    def __eq__(self, other):
        if isinstance(other, dtype):
            return other is self
        if other is None or isinstance(other, str) and other not in np.sctypeDict:
            return False
        try:
            return np.dtype(other) == self.dtype
        except TypeError:
            return NotImplemented

    def __hash__(self):
        return hash(self.dtype)

    def __reduce__(self):
        return (as_dtype, (self.name,))


float32 = dtype("float32")
float64 = dtype("float64")
int8 = dtype("int8")
int16 = dtype("int16")
int32 = dtype("int32")
int64 = dtype("int64")
uint8 = dtype("uint8")
bool_ = dtype("bool")

_BY_NUMPY = {d.dtype: d for d in (float32, float64, int8, int16, int32, int64, uint8, bool_)}
DEFAULT_FLOAT = np.dtype(np.float32)


def as_dtype(value) -> dtype:
    """Turn ``fg.float32``, a NumPy dtype, a name or a Python type into a ``dtype``.

    Python's ``float`` is float64 and ``int`` is int64, as in PyTorch.

    >>> as_dtype("float64"), as_dtype(int), as_dtype(np.float32)
    (fgrad.float64, fgrad.int64, fgrad.float32)
    """
    if isinstance(value, dtype):
        return value
    if value is builtins.float:
        return float64
    if value is builtins.int:
        return int64
    if value is builtins.bool:
        return bool_
    try:
        np_dtype = np.dtype(value)
    except TypeError:
        raise TypeError(f"{value!r} is not a dtype fgrad Tensors support") from None
    found = _BY_NUMPY.get(np_dtype)
    if found is None:
        raise TypeError(
            f"fgrad Tensors do not support dtype {np_dtype}; use one of "
            + ", ".join(repr(d) for d in _BY_NUMPY.values())
        )
    return found


def from_numpy_dtype(np_dtype) -> dtype:
    return _BY_NUMPY[np_dtype]


def _category(np_dtype) -> int:
    kind = np_dtype.kind
    return 0 if kind == "b" else 2 if kind == "f" else 1


def promote_types(a: np.dtype, b: np.dtype) -> np.dtype:
    """PyTorch's ``promote_types`` on NumPy dtypes: integer + float is the float.

    >>> promote_types(np.dtype("int64"), np.dtype("float32"))
    dtype('float32')
    """
    if a == b:
        return a
    ca, cb = _category(a), _category(b)
    if ca != cb:
        return a if ca > cb else b
    return np.promote_types(a, b)


def _combine(higher, lower):
    if higher is None:
        return lower
    if lower is None or higher.kind == "f":
        return higher
    if higher.kind == "b" or lower.kind == "f":
        return promote_types(higher, lower)
    return higher


def result_type(avals) -> np.dtype:
    """The PyTorch result dtype of operands given by their avals (weak = Python scalar).

    >>> from fgrad._src.core import ShapedArray
    >>> result_type([ShapedArray((3,), np.int64), ShapedArray((), np.float64, True)])
    dtype('float32')
    """
    dim = zero = wrapped = None
    for aval in avals:
        d = aval.dtype
        if aval.weak_type:
            if d.kind == "f":
                d = DEFAULT_FLOAT
            wrapped = d if wrapped is None else promote_types(wrapped, d)
        elif aval.shape:
            dim = d if dim is None else promote_types(dim, d)
        else:
            zero = d if zero is None else promote_types(zero, d)
    return _combine(dim, _combine(zero, wrapped))
