"""Operators and array methods of tracers, forwarding to ``fgrad.numpy``.

>>> import fgrad as fg
>>> print(fg.make_jaxpr(lambda x: (x * 2.0).sum())(np.ones(2)).jaxpr.eqns[0].primitive)
broadcast_in_dim
"""

import numpy as np

from fgrad._src.core import Tracer
from fgrad._src.numpy import indexing, linalg
from fgrad._src.numpy import lax_numpy as fnp


def _swap(fn):
    return lambda self, other: fn(other, self)


def _floordiv(x, y):
    x, y = fnp._promote_broadcast("floor_divide", x, y)
    if fnp.get_aval(x).dtype.kind == "f":
        return fnp.floor(fnp.divide(x, y))
    raise TypeError("floor division of integer tracers is not supported; cast to float")


_OPERATORS = {
    "__add__": fnp.add, "__radd__": _swap(fnp.add),
    "__sub__": fnp.subtract, "__rsub__": _swap(fnp.subtract),
    "__mul__": fnp.multiply, "__rmul__": _swap(fnp.multiply),
    "__truediv__": fnp.divide, "__rtruediv__": _swap(fnp.divide),
    "__floordiv__": _floordiv, "__rfloordiv__": _swap(_floordiv),
    "__pow__": fnp.power, "__rpow__": _swap(fnp.power),
    "__matmul__": linalg.matmul, "__rmatmul__": _swap(linalg.matmul),
    "__lt__": fnp.less, "__le__": fnp.less_equal,
    "__gt__": fnp.greater, "__ge__": fnp.greater_equal,
    "__eq__": fnp.equal, "__ne__": fnp.not_equal,
    "__and__": fnp.logical_and, "__or__": fnp.logical_or, "__xor__": fnp.logical_xor,
    "__rand__": _swap(fnp.logical_and), "__ror__": _swap(fnp.logical_or),
    "__neg__": fnp.negative, "__pos__": lambda x: x, "__abs__": fnp.abs,
    "__invert__": fnp.logical_not,
    "__getitem__": indexing.getitem,
}

_METHODS = {
    "sum": fnp.sum, "mean": fnp.mean, "max": fnp.max, "min": fnp.min, "prod": fnp.prod,
    "var": fnp.var, "std": fnp.std, "all": fnp.all, "any": fnp.any,
    "argmax": fnp.argmax, "argmin": fnp.argmin, "cumsum": fnp.cumsum,
    "ravel": fnp.ravel, "flatten": fnp.ravel, "squeeze": fnp.squeeze,
    "swapaxes": fnp.swapaxes, "clip": fnp.clip, "astype": fnp.astype,
    "dot": linalg.dot, "repeat": fnp.repeat,
}


def _reshape(self, *shape, order="C"):
    if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
        shape = shape[0]
    return fnp.reshape(self, shape, order=order)


def _transpose(self, *axes):
    if len(axes) == 1 and not isinstance(axes[0], (int, np.integer)):
        axes = axes[0]
    return fnp.transpose(self, axes or None)


def _setitem(self, idx, value):
    raise TypeError(
        "traced arrays are immutable: x[idx] = value is not supported inside fgrad "
        "transforms. Build a new array instead, e.g. with fnp.where(mask, value, x) or "
        "fnp.concatenate."
    )


def install():
    for name, fn in _OPERATORS.items():
        setattr(Tracer, name, fn)
    for name, fn in _METHODS.items():
        setattr(Tracer, name, fn)
    Tracer.reshape = _reshape
    Tracer.transpose = _transpose
    Tracer.__setitem__ = _setitem
    Tracer.T = property(lambda self: fnp.transpose(self))


install()
