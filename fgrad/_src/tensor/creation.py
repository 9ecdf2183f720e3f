"""Tensor constructors: ``fg.tensor``, ``fg.ones``, ``fg.randn``, ... (PyTorch's signatures).

Python floats become float32 (PyTorch's default dtype), Python ints int64,
bools bool; NumPy arrays keep their dtype. ``fg.manual_seed(s)`` reseeds the
generator behind ``randn``/``rand``/``randint``/``normal_``/``uniform_``.
"""

from __future__ import annotations

import builtins

import numpy as np

from fgrad._src.core import Tracer
from fgrad._src.dtypes import native_byte_order
from fgrad._src.tensor.dtype import DEFAULT_FLOAT, as_dtype
from fgrad._src.tensor.tensor import Tensor, _dims, check_device

_rng = [np.random.default_rng()]


def generator() -> np.random.Generator:
    return _rng[0]


def manual_seed(seed):
    """Seed the random generator of ``randn``/``rand``/``randint`` (returns it)."""
    _rng[0] = np.random.default_rng(int(seed))
    return _rng[0]


seed = manual_seed


def _finish(value, dtype, requires_grad, device=None):
    check_device(device, "create a tensor")
    if dtype is not None:
        value = value.astype(as_dtype(dtype).dtype, copy=False)
    as_dtype(value.dtype)  # rejects dtypes Tensors do not support
    t = Tensor._wrap(value)
    if requires_grad is not False:
        t.requires_grad_(requires_grad)  # NB: checks that it is a bool
    return t


def _infer(data, dtype=None):
    """A NumPy array for ``data`` with PyTorch's dtype inference. Python floats become
    float32, unless ``dtype`` is given: then they go to it straight from float64 (never
    rounded through float32 first)."""
    if isinstance(data, Tensor):
        return np.array(data._value)
    if isinstance(data, (np.ndarray, np.generic)):
        # NB: a big-endian array (read from a file) becomes a native one, as in PyTorch.
        return np.array(data, dtype=native_byte_order(data.dtype))
    if isinstance(data, (list, tuple)):
        data = [_unwrap(item) for item in data]
    arr = np.array(data)
    if arr.dtype == np.float64 and dtype is None and not _has_numpy_float64(data):
        arr = arr.astype(DEFAULT_FLOAT)
    elif arr.dtype.kind in "iu" and arr.dtype != np.int64 and not _has_numpy_scalar(data):
        arr = arr.astype(np.int64)
    elif arr.dtype == object or arr.dtype.kind not in "biuf":
        for item in arr.flat if arr.dtype == object else ():
            if isinstance(item, int) and not -2**63 <= item < 2**63:
                raise OverflowError(f"fgrad.tensor: the integer {item} does not fit in int64 "
                                    "(give it as a float to keep it approximately)")
        raise TypeError(f"fgrad.tensor cannot build a tensor from {type(data).__name__} data "
                        f"(NumPy dtype {arr.dtype})")
    return arr


def is_traced(data):
    """Whether tensor data is a tracer, or nested lists/tuples holding one (bare or in a
    Tensor)."""
    if isinstance(data, Tensor):
        data = data._value
    if isinstance(data, Tracer):
        return True
    return isinstance(data, (list, tuple)) and any(is_traced(item) for item in data)


def _unwrap(item):
    if isinstance(item, Tensor):
        return item._value
    if isinstance(item, (list, tuple)):
        return [_unwrap(i) for i in item]
    return item


def _has_numpy_float64(data):
    if isinstance(data, np.ndarray):
        return data.dtype == np.float64
    if isinstance(data, np.float64):
        return True
    if isinstance(data, (list, tuple)):
        return builtins.any(_has_numpy_float64(d) for d in data)
    return False


def _has_numpy_scalar(data):
    if isinstance(data, (np.ndarray, np.generic)):
        return True
    if isinstance(data, (list, tuple)):
        return builtins.any(_has_numpy_scalar(d) for d in data)
    return False


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new tensor holding a copy of ``data`` (nested lists, scalars, arrays).

    >>> import fgrad as fg
    >>> fg.tensor([[1, 2], [3, 4]], dtype=fg.float32, requires_grad=True)
    tensor([[1., 2.],
            [3., 4.]], requires_grad=True)
    """
    if is_traced(data):  # under fg.grad / fg.jit: a Tensor holding the traced values
        if not isinstance(data, Tracer):  # [a[0], a[1]] of a tracer
            from fgrad._src.numpy import lax_numpy as fnp

            data = fnp.array(_unwrap(data))
        return _traced_tensor(data, dtype, requires_grad)
    return _finish(_infer(data, dtype), dtype, requires_grad, device)


def _traced_tensor(tracer, dtype, requires_grad):
    if requires_grad:
        raise TypeError(
            "fgrad.tensor: a traced value (inside fg.grad, fg.jit or fg.vmap) cannot require "
            "grad: the transform differentiates it; leave requires_grad=False")
    if dtype is not None:
        tracer = tracer.astype(as_dtype(dtype).dtype)
    as_dtype(tracer.dtype)
    return Tensor._wrap(tracer)


def as_tensor(data, dtype=None, device=None):
    check_device(device, "create a tensor")
    if isinstance(data, Tensor) and (dtype is None or as_dtype(dtype).dtype == data._value.dtype):
        return data
    if isinstance(data, np.ndarray) and (dtype is None or as_dtype(dtype).dtype == data.dtype):
        return from_numpy(data)
    return tensor(data, dtype)


def from_numpy(array):
    """A tensor sharing memory with the NumPy ``array``."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(array).__name__})")
    if not array.dtype.isnative:
        raise ValueError(
            f"from_numpy: the array's byte order ({array.dtype.str}) is not this machine's, "
            "so a tensor cannot share its memory; use fg.tensor(array), which converts it, "
            "or convert it first with array.astype(array.dtype.newbyteorder('='))")
    as_dtype(array.dtype)
    return Tensor._wrap(array)


def FloatTensor(*args):  # noqa: N802  (PyTorch's name)
    """``fg.FloatTensor([1.0, 2.0])`` (data) or ``fg.FloatTensor(2, 3)`` (a shape)."""
    return Tensor(*args, dtype=np.float32)


def DoubleTensor(*args):  # noqa: N802
    return Tensor(*args, dtype=np.float64)


def LongTensor(*args):  # noqa: N802
    return Tensor(*args, dtype=np.int64)


def BoolTensor(*args):  # noqa: N802
    return Tensor(*args, dtype=np.bool_)


def _dtype_or(dtype, default):
    return as_dtype(dtype).dtype if dtype is not None else np.dtype(default)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    """A tensor of zeros, float32 unless ``dtype`` is given."""
    value = np.zeros(_dims(size), _dtype_or(dtype, DEFAULT_FLOAT))
    return _finish(value, None, requires_grad, device)


def ones(*size, dtype=None, device=None, requires_grad=False):
    """A tensor of ones, float32 unless ``dtype`` is given.

    >>> ones(2, 2, requires_grad=True)
    tensor([[1., 1.],
            [1., 1.]], requires_grad=True)
    """
    value = np.ones(_dims(size), _dtype_or(dtype, DEFAULT_FLOAT))
    return _finish(value, None, requires_grad, device)


empty = zeros


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    if dtype is None:
        fill = fill_value.item() if isinstance(fill_value, Tensor) else fill_value
        dtype = (np.bool_ if isinstance(fill, (bool, np.bool_)) else
                 np.int64 if isinstance(fill, (int, np.integer)) else DEFAULT_FLOAT)
    value = np.full(_dims((size,)), fill_value, _dtype_or(dtype, DEFAULT_FLOAT))
    return _finish(value, None, requires_grad, device)


def _like(t, dtype):
    return as_dtype(dtype).dtype if dtype is not None else t._value.dtype


def zeros_like(t, dtype=None, device=None, requires_grad=False):
    return _finish(np.zeros(t.shape, _like(t, dtype)), None, requires_grad, device)


def ones_like(t, dtype=None, device=None, requires_grad=False):
    return _finish(np.ones(t.shape, _like(t, dtype)), None, requires_grad, device)


empty_like = zeros_like


def full_like(t, fill_value, dtype=None, device=None, requires_grad=False):
    return _finish(np.full(t.shape, fill_value, _like(t, dtype)), None, requires_grad, device)


def randn(*size, dtype=None, device=None, requires_grad=False, generator=None):
    """Standard normal samples, float32 unless ``dtype`` is given."""
    gen = generator or _rng[0]
    value = gen.standard_normal(_dims(size)).astype(_dtype_or(dtype, DEFAULT_FLOAT))
    return _finish(value, None, requires_grad, device)


def rand(*size, dtype=None, device=None, requires_grad=False, generator=None):
    """Uniform samples in [0, 1), float32 unless ``dtype`` is given."""
    gen = generator or _rng[0]
    value = gen.random(_dims(size)).astype(_dtype_or(dtype, DEFAULT_FLOAT))
    return _finish(value, None, requires_grad, device)


def randn_like(t, dtype=None, requires_grad=False):
    return randn(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def rand_like(t, dtype=None, requires_grad=False):
    return rand(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def randint(low, high=None, size=None, dtype=None, device=None, requires_grad=False):
    """Random integers in ``[low, high)`` (``randint(high, size)`` also works)."""
    if size is None:
        low, high, size = 0, low, high
    if size is None:
        raise TypeError("randint() missing required argument 'size'")
    value = _rng[0].integers(low, high, _dims((size,)))
    return _finish(value.astype(_dtype_or(dtype, np.int64)), None, requires_grad, device)


def randperm(n, dtype=None, device=None, requires_grad=False):
    return _finish(_rng[0].permutation(n).astype(_dtype_or(dtype, np.int64)), None,
                   requires_grad, device)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    """``[start, end)`` by ``step``: int64 for integer arguments, else float32."""
    if end is None:
        start, end = 0, start
    args = [a.item() if isinstance(a, Tensor) else a for a in (start, end, step)]
    if args[2] == 0:
        raise RuntimeError("arange: step must be nonzero")
    is_int = all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in args)
    default = np.int64 if is_int else DEFAULT_FLOAT
    if is_int:
        value = np.arange(*args, dtype=np.int64)
    else:
        n = max(0, int(np.ceil((args[1] - args[0]) / args[2])))
        value = args[0] + np.arange(n, dtype=np.float64) * args[2]
    return _finish(value.astype(_dtype_or(dtype, default)), None, requires_grad, device)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    value = np.linspace(start, end, int(steps), dtype=np.float64)
    return _finish(value.astype(_dtype_or(dtype, DEFAULT_FLOAT)), None, requires_grad, device)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    return _finish(np.eye(n, m, dtype=_dtype_or(dtype, DEFAULT_FLOAT)), None, requires_grad, device)
