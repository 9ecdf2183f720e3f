"""Operators and array methods of tracers, forwarding to ``fgrad.numpy``.

>>> import fgrad as fg
>>> print(fg.make_jaxpr(lambda x: (x * 2.0).sum())(np.ones(2)).jaxpr.eqns[0].primitive)
broadcast_in_dim
"""

import numpy as np

from fgrad._src.core import Tracer
from fgrad._src.lax import lax
from fgrad._src.numpy import indexing, linalg
from fgrad._src.numpy import lax_numpy as fnp


def _swap(fn):
    return lambda self, other: fn(other, self)


def _bitwise(name, lax_fn):
    # NumPy's & | ^ are bitwise: on bools that is logical, on integers bitwise,
    # and floats are rejected.
    def fn(x, y):
        x, y = fnp._promote_broadcast(name, x, y)
        dtype = fnp.get_aval(x).dtype
        if dtype.kind not in "biu":
            raise TypeError(
                f"{name} is only defined for integer and boolean arrays, got {dtype}; "
                "use fnp.logical_and / logical_or / logical_xor on comparisons"
            )
        return lax_fn(x, y)

    fn.__name__ = name
    return fn


def _invert(x):
    dtype = fnp.get_aval(x).dtype
    if dtype.kind not in "biu":
        raise TypeError(
            f"bitwise not (~) is only defined for integer and boolean arrays, got {dtype}"
        )
    return lax.bitwise_not(x)


def _pos(x):
    if fnp.get_aval(x).dtype.kind == "b":
        raise TypeError("unary + is not supported for boolean arrays (as in NumPy)")
    return x


_and = _bitwise("bitwise_and", lax.bitwise_and)
_or = _bitwise("bitwise_or", lax.bitwise_or)
_xor = _bitwise("bitwise_xor", lax.bitwise_xor)

def _raw(fn):
    # NB: operators skip the strong-result wrapper of fgrad.numpy functions: an
    # operator on traced Python scalars stays weak, as `2.0 * s` is a Python float.
    return getattr(fn, "__wrapped__", fn)


_add, _sub, _mul, _div, _pow = (
    _raw(f) for f in (fnp.add, fnp.subtract, fnp.multiply, fnp.divide, fnp.power)
)
_lt, _le, _gt, _ge, _eq, _ne = (
    _raw(f) for f in (fnp.less, fnp.less_equal, fnp.greater, fnp.greater_equal, fnp.equal,
                      fnp.not_equal)
)

_OPERATORS = {
    "__add__": _add, "__radd__": _swap(_add),
    "__sub__": _sub, "__rsub__": _swap(_sub),
    "__mul__": _mul, "__rmul__": _swap(_mul),
    "__truediv__": _div, "__rtruediv__": _swap(_div),
    "__floordiv__": _raw(fnp.floor_divide), "__rfloordiv__": _swap(_raw(fnp.floor_divide)),
    "__mod__": _raw(fnp.remainder), "__rmod__": _swap(_raw(fnp.remainder)),
    "__pow__": _pow, "__rpow__": _swap(_pow),
    "__matmul__": linalg.matmul, "__rmatmul__": _swap(linalg.matmul),
    "__lt__": _lt, "__le__": _le, "__gt__": _gt, "__ge__": _ge, "__eq__": _eq, "__ne__": _ne,
    "__and__": _and, "__or__": _or, "__xor__": _xor,
    "__rand__": _swap(_and), "__ror__": _swap(_or), "__rxor__": _swap(_xor),
    "__neg__": _raw(fnp.negative), "__pos__": _pos, "__abs__": _raw(fnp.abs),
    "__invert__": _invert,
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


def _public(name, module_name="numpy"):
    """The ``fgrad.numpy`` (or ``fgrad.numpy.linalg``) function called ``name``, or None."""
    import fgrad.numpy as public

    if module_name not in ("numpy", "numpy.linalg"):
        return None
    if module_name == "numpy.linalg":
        public = public.linalg
    fn = getattr(public, {"true_divide": "divide"}.get(name, name), None)
    return fn if callable(fn) and not isinstance(fn, type) else None


def _array_ufunc(self, ufunc, method, *inputs, **kwargs):
    # NEP 13: np.sin(tracer), ndarray * tracer ... run the fgrad.numpy function, so
    # they trace and differentiate instead of silently dropping to concrete values.
    fn = None
    if method == "__call__" and not kwargs:
        fn = _UFUNC_OPERATORS.get(ufunc.__name__) or _public(ufunc.__name__)
    if fn is None:
        call = f"np.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
        extra = f" with {sorted(kwargs)}" if kwargs else ""
        if _public(ufunc.__name__) is None:  # NB: np.hypot, np.exp2...: no fnp.<name>
            fix = "fgrad.numpy has no equivalent; express it with fgrad.numpy functions."
        else:
            fix = "use the fgrad.numpy function (import fgrad.numpy as fnp) instead."
        raise TypeError(f"{call}{extra} is not supported on traced arrays; {fix}")
    return fn(*inputs)


def _array_function(self, func, types, args, kwargs):
    # NEP 18: np.sum(tracer), np.dot(tracer, w) ... dispatch to fgrad.numpy.
    module = func.__module__ or "numpy"
    fn = _public(func.__name__, module)
    if fn is None:
        name = f"{module.replace('numpy', 'np', 1)}.{func.__name__}"
        raise TypeError(
            f"{name} is not supported on traced arrays (fgrad.numpy has no equivalent); "
            "express it with fgrad.numpy functions."
        )
    return fn(*args, **kwargs)


_UFUNC_OPERATORS = {
    "bitwise_and": _and, "bitwise_or": _or, "bitwise_xor": _xor, "invert": _invert,
    "floor_divide": _raw(fnp.floor_divide), "remainder": _raw(fnp.remainder), "positive": _pos,
}


def install():
    for name, fn in _OPERATORS.items():
        setattr(Tracer, name, fn)
    for name, fn in _METHODS.items():
        setattr(Tracer, name, fn)
    Tracer.reshape = _reshape
    Tracer.transpose = _transpose
    Tracer.__setitem__ = _setitem
    Tracer.__array_ufunc__ = _array_ufunc
    Tracer.__array_function__ = _array_function
    Tracer.T = property(lambda self: fnp.transpose(self))


install()
