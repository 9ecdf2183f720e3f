"""``fgrad.numpy``: NumPy's API over fgrad primitives.

Every function accepts NumPy arrays, Python scalars and tracers. Binary
functions promote dtypes as NumPy 2 does (NEP 50: Python scalars are weak)
and insert ``broadcast_in_dim`` explicitly, so primitives never broadcast.
Shape errors name the user-level function and the user's shapes.
"""

from __future__ import annotations

import builtins
import functools
import inspect
import math
import operator

import numpy as np

from fgrad._src import core, dtypes
from fgrad._src.core import Tracer, get_aval
from fgrad._src.lax import lax

ndarray = np.ndarray
float32, float64, int32, int64, bool_ = (
    np.float32, np.float64, np.int32, np.int64, np.bool_,
)
inf, nan, pi, e, newaxis = np.inf, np.nan, np.pi, np.e, None

# --------------------------------------------------------------------------- conversion


def _is_traced(*xs) -> bool:
    return builtins.any(isinstance(x, Tracer) for x in xs)


def asarray(x, dtype=None):
    """Like ``np.asarray``; tracers pass through (converted to ``dtype`` if given).

    >>> asarray([1.0, 2.0])
    array([1., 2.])
    """
    if isinstance(x, Tracer):
        return x if dtype is None else lax.convert_element_type(x, np.dtype(dtype))
    if isinstance(x, (list, tuple)) and _contains_tracer(x):
        return stack([asarray(item, dtype) for item in x])
    traced = _traced_value(x)
    if traced is not None:
        return asarray(traced, dtype)
    out = np.asarray(x, dtype=dtype)
    dtypes.check_supported(out.dtype)
    return out


def array(x, dtype=None, copy=True):
    """Like ``np.array``; lists of tracers are stacked.

    >>> array([[1, 2], [3, 4]]).shape
    (2, 2)
    """
    if isinstance(x, Tracer) or (isinstance(x, (list, tuple)) and _contains_tracer(x)) or (
            _traced_value(x) is not None):
        return asarray(x, dtype)
    out = np.array(x, dtype=dtype, copy=copy)
    dtypes.check_supported(out.dtype)
    return out


def _traced_value(x):
    """The tracer inside a Tensor that holds one (made from a traced value under a
    transform: ``fnp.sum(fg.tensor(w) * x)`` in ``fg.grad``), else None."""
    get = getattr(type(x), "__fgrad_array__", None)
    if get is None:
        return None
    value = get(x)
    return value if isinstance(value, Tracer) else None


def _contains_tracer(seq) -> bool:
    for item in seq:
        if isinstance(item, Tracer):
            return True
        if isinstance(item, (list, tuple)) and _contains_tracer(item):
            return True
    return False


def _operand(x):
    """Accept arrays, scalars, tracers; turn lists into arrays."""
    if isinstance(x, (Tracer, np.ndarray, np.generic, bool, int, float)):
        return x
    return asarray(x)


def _promote(*args):
    """Convert operands to their NumPy 2 result dtype (Python scalars are weak).

    When every operand is weak (Python scalars, or traced Python-scalar arguments)
    the result stays weak, so ``jit(lambda x, s: x * (s / 2))(f32_array, 2.0)`` is
    float32 exactly like the eager computation.
    """
    args = [_operand(a) for a in args]
    avals = [get_aval(a) for a in args]
    first = avals[0]
    if not first.weak_type and builtins.all(
        a.dtype == first.dtype and not a.weak_type for a in avals
    ):
        return args  # NB: the common case, one strong dtype, needs no conversion
    dtype, weak = dtypes.result_type(*[(a.dtype, a.weak_type) for a in avals])
    return [_cast(a, dtype, weak) for a in args]


_PY_TYPES = {"b": bool, "i": int, "u": int, "f": float}
# NB: ndarrays of these dtypes may skip conversion and promotion on the fast paths
# below (``check_supported`` accepts them all).
_FLOAT_DTYPES = frozenset(np.dtype(t) for t in (np.float64, np.float32))
_FAST_DTYPES = _FLOAT_DTYPES | {np.dtype(np.int64), np.dtype(np.int32)}


def _cast(x, dtype, weak=False):
    dtype = np.dtype(dtype)
    if isinstance(x, Tracer):
        return lax.convert_element_type(x, dtype, weak_type=weak)
    if weak and _is_python_scalar(x):
        return _PY_TYPES[dtype.kind](x)
    return np.asarray(x, dtype=dtype)


def _is_python_scalar(x) -> bool:
    return isinstance(x, (bool, int, float)) and not isinstance(x, np.generic)


def _to_float(x):
    """Integer and bool operands of float functions become float64, as in NumPy."""
    if isinstance(x, Tracer) and x.aval.dtype.kind == "f":
        return x  # NB: the common case, checked first: a float tracer passes as is
    if type(x) is np.ndarray and x.dtype in _FLOAT_DTYPES:
        return x  # NB: and the common eager case, a float array
    x = _operand(x)
    aval = get_aval(x)
    if dtypes.is_float(aval.dtype):
        return x
    return _cast(x, np.float64, aval.weak_type)


def _broadcast_shapes(name, *shapes):
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        listed = " and ".join(str(tuple(s)) for s in shapes)
        raise ValueError(
            f"{name}: operands could not be broadcast together with shapes {listed}"
        ) from None


def _broadcast_to(x, shape):
    aval = get_aval(x)
    if aval.shape == tuple(shape):
        return x
    lead = len(shape) - aval.ndim
    dims = tuple(range(lead, len(shape)))
    return lax.broadcast_in_dim(x, tuple(shape), dims)


def _same_strong_aval(x, y):
    """The dtype of two operands when they share one strong shape and dtype, else None.

    Operands are tracers or NumPy arrays. Such operands need no promotion, no
    broadcasting and no scalar matching, so the hot arithmetic of eager ``grad`` (and
    of eager ``fgrad.numpy`` on arrays) binds their primitive directly.
    """
    sx, sy = _strong_shape_dtype(x), _strong_shape_dtype(y)
    if sx is None or sy is None or sx != sy:
        return None
    return sx[1]


def _strong_shape_dtype(x):
    if isinstance(x, Tracer):
        aval = x.aval
        return None if aval.weak_type else (aval.shape, aval.dtype)
    if type(x) is np.ndarray and x.dtype in _FAST_DTYPES:
        return x.shape, x.dtype
    return None


def _promote_broadcast(name, *args):
    if len(args) == 2:
        pair = _float_tracer_and_python_scalar(*args)
        if pair is not None:
            return pair
    args = _promote(*args)
    shapes = [get_aval(a).shape for a in args]
    if builtins.all(s == shapes[0] for s in shapes):
        return args
    shape = _broadcast_shapes(name, *shapes)
    return [_broadcast_to(a, shape) for a in args]


def _float_tracer_and_python_scalar(x, y):
    """``[x, y]`` promoted and broadcast when one is a strongly typed float tracer and the
    other a Python float or int (``x * 0.5``, ``1 - y``): by NEP 50 the scalar takes the
    tracer's dtype. None otherwise. NB: the commonest operand pair of traced code, so it
    skips ``_promote``'s general path (same result, a fifth of the time)."""
    if isinstance(x, Tracer) and type(y) in _INT_OR_FLOAT:
        tracer, scalar, tracer_first = x, y, True
    elif isinstance(y, Tracer) and type(x) in _INT_OR_FLOAT:
        tracer, scalar, tracer_first = y, x, False
    else:
        return None
    aval = tracer.aval
    if aval.weak_type or aval.dtype not in _FLOAT_DTYPES:
        return None
    const = lax.scalar_constant(scalar, aval.dtype)
    if aval.shape:
        const = lax.broadcast_in_dim(const, aval.shape, ())
    return [tracer, const] if tracer_first else [const, tracer]


_INT_OR_FLOAT = (int, float)
# --------------------------------------------------------------------------- elementwise


def _binary(name, lax_fn, to_float=False):
    def fn(x, y):
        if to_float:
            x, y = _promote(x, y)
            x, y = _to_float(x), _to_float(y)
        x, y = _promote_broadcast(name, x, y)
        return lax_fn(x, y)

    fn.__name__ = name
    fn.__qualname__ = name
    fn.__doc__ = f"Elementwise ``{name}`` with NumPy broadcasting and promotion (``np.{name}``)."
    return fn


def _unary(name, lax_fn, to_float=True):
    def fn(x):
        x = _to_float(x) if to_float else _operand(x)
        return lax_fn(x)

    fn.__name__ = name
    fn.__qualname__ = name
    fn.__doc__ = f"Elementwise ``{name}`` (``np.{name}``)."
    return fn


def add(x, y):
    """Elementwise ``x + y`` with NumPy broadcasting and promotion; ``or`` for bools.

    >>> add(np.array([1.0, 2.0]), 3.0)
    array([4., 5.])
    """
    dtype = _same_strong_aval(x, y)
    if dtype is not None and dtype.kind != "b":
        return lax.add_p.bind(x, y)
    x, y = _promote_broadcast("add", x, y)
    return lax.bitwise_or(x, y) if get_aval(x).dtype == bool else lax.add(x, y)


def subtract(x, y):
    """Elementwise ``x - y`` with NumPy broadcasting and promotion (not for two bools).

    >>> subtract(np.array([1.0, 2.0]), 3.0)
    array([-2., -1.])
    """
    dtype = _same_strong_aval(x, y)
    if dtype is not None and dtype.kind != "b":
        return lax.sub_p.bind(x, y)
    x, y = _promote_broadcast("subtract", x, y)
    if get_aval(x).dtype == bool:
        raise TypeError(
            "numpy boolean subtract, the `-` operator, is not supported; "
            "use logical_xor, or cast to an integer type first"
        )
    return lax.sub(x, y)


def multiply(x, y):
    """Elementwise ``x * y`` with NumPy broadcasting and promotion; ``and`` for bools.

    >>> multiply(np.array([1.0, 2.0]), 3.0)
    array([3., 6.])
    """
    dtype = _same_strong_aval(x, y)
    if dtype is not None and dtype.kind != "b":
        return lax.mul_p.bind(x, y)
    x, y = _promote_broadcast("multiply", x, y)
    return lax.bitwise_and(x, y) if get_aval(x).dtype == bool else lax.mul(x, y)
divide = true_divide = _binary("divide", lax.div, to_float=True)
maximum = _binary("maximum", lax.max)
minimum = _binary("minimum", lax.min)
arctan2 = _binary("arctan2", lax.atan2, to_float=True)


def fmod(x, y):
    """Elementwise C remainder (the sign of ``x``), ``np.fmod``; bools count as int8.

    >>> fmod(np.array([-3, 3]), 2)
    array([-1,  1])
    """
    x, y = _promote_broadcast("fmod", x, y)
    if get_aval(x).dtype == bool:  # NumPy computes it in int8
        x, y = _cast(x, np.int8), _cast(y, np.int8)
    return lax.rem(x, y)


def _divmod_operands(name, x, y):
    x, y = _promote_broadcast(name, x, y)
    if get_aval(x).dtype == bool:  # NumPy computes it in int8
        x, y = _cast(x, np.int8), _cast(y, np.int8)
    return x, y


def _signs_differ(r, y):
    """Where the C remainder ``r`` is nonzero and its sign differs from the divisor's."""
    zero = lax.full_like(r, 0)
    return lax.bitwise_and(lax.ne(r, zero), lax.ne(lax.lt(r, zero), lax.lt(y, zero)))


def remainder(x, y):
    """Elementwise ``x % y`` with the sign of ``y`` (``np.remainder``, ``np.mod``, Python's
    ``%``); a zero result takes the sign of ``y``, and ``x % 0`` is 0 for integers, nan for
    floats, as in NumPy. Its derivative is 1 in ``x`` and ``-floor(x / y)`` in ``y``, and
    0 in ``x`` where ``x`` is an exact multiple of ``y`` (a jump).

    >>> remainder(np.array([-3, 3, -4]), 2), remainder(np.array([5.5, -5.5]), -2.0)
    (array([1, 1, 0]), array([-0.5, -1.5]))
    """
    x, y = _divmod_operands("remainder", x, y)
    r = lax.rem(x, y)
    r = lax.select_n(_signs_differ(r, y), r, lax.add(r, y))
    if get_aval(r).dtype.kind != "f":
        return r
    signed_zero = lax.mul(lax.full_like(r, 0), lax.sign(y))  # NB: a zero takes y's sign
    return lax.select_n(lax.eq(r, lax.full_like(r, 0)), r, signed_zero)


mod = remainder


def floor_divide(x, y):
    """Elementwise ``x // y`` rounded toward -inf (``np.floor_divide``, Python's ``//``),
    computed as NumPy does: integers divided by 0 give 0, floats ``x / 0``; for floats the
    quotient comes from ``(x - fmod(x, y)) / y`` (so ``1.0 // 0.1`` is 9, as in NumPy and
    Python). It is piecewise constant: its derivative is 0.

    >>> floor_divide(np.array([-3, 3, 7]), 2), floor_divide(np.array([1.0, -1.0]), 0.1)
    (array([-2,  1,  3]), array([  9., -10.]))
    """
    x, y = _divmod_operands("floor_divide", x, y)
    r = lax.rem(x, y)
    adjust = _signs_differ(r, y)
    if get_aval(x).dtype.kind != "f":
        q = lax.div(x, y)  # truncates; x / 0 is 0
        return lax.select_n(adjust, q, lax.sub(q, lax.full_like(q, 1)))
    x, y, r = lax.stop_gradient(x), lax.stop_gradient(y), lax.stop_gradient(r)
    one, zero = lax.full_like(x, 1), lax.full_like(x, 0)
    div = lax.div(lax.sub(x, r), y)
    div = lax.select_n(adjust, div, lax.sub(div, one))
    floored = lax.floor(div)
    floored = lax.select_n(lax.gt(lax.sub(div, floored), lax.full_like(x, 0.5)), floored,
                           lax.add(floored, one))
    # NB: a zero quotient keeps the sign of x / y (finite there: |x| < |y|, y != 0)
    signed_zero = lax.mul(zero, lax.div(x, y))
    floored = lax.select_n(lax.eq(div, zero), floored, signed_zero)
    return lax.select_n(lax.eq(y, zero), floored, lax.div(x, y))


def _comparison(name, lax_fn, python_op):
    """A comparison; as NumPy 2 does, an integer array against a Python int outside its
    dtype's range compares exactly instead of overflowing (int32 == 2**62 is False)."""
    compare = _binary(name, lax_fn)

    def fn(x, y):
        for array, number in ((x, y), (y, x)):
            if type(number) is int and not isinstance(array, (bool, int, float)):
                aval = get_aval(_operand(array))
                if aval.dtype.kind in "iu":
                    info = np.iinfo(aval.dtype)
                    if not info.min <= number <= info.max:
                        return _compare_out_of_range(x, y, array, number, info, aval.shape,
                                                     compare, python_op)
        return compare(x, y)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = compare.__doc__
    return fn


def _compare_out_of_range(x, y, array, number, info, shape, compare, python_op):
    """``array`` (``x`` or ``y``, integers described by ``info``) against a Python int
    ``number`` outside their range."""
    if -2**63 <= number < 2**63 and info.dtype != np.uint64:
        wide = astype(array, np.int64)  # exact: every int dtype but uint64 fits int64
        return compare(wide, y) if array is x else compare(x, wide)
    # Beyond every value of the array's dtype: the same answer for each element, the one
    # its nearest value gives.
    inside = int(info.max) if number > info.max else int(info.min)
    answer = python_op(inside, number) if array is x else python_op(number, inside)
    return full(shape, answer, np.bool_)


equal = _comparison("equal", lax.eq, operator.eq)
not_equal = _comparison("not_equal", lax.ne, operator.ne)
less = _comparison("less", lax.lt, operator.lt)
less_equal = _comparison("less_equal", lax.le, operator.le)
greater = _comparison("greater", lax.gt, operator.gt)
greater_equal = _comparison("greater_equal", lax.ge, operator.ge)

exp = _unary("exp", lax.exp)
log = _unary("log", lax.log)
log1p = _unary("log1p", lax.log1p)
expm1 = _unary("expm1", lax.expm1)
sin = _unary("sin", lax.sin)
cos = _unary("cos", lax.cos)
tan = _unary("tan", lax.tan)
tanh = _unary("tanh", lax.tanh)
sinh = _unary("sinh", lax.sinh)
cosh = _unary("cosh", lax.cosh)
arcsin = _unary("arcsin", lax.asin)
arccos = _unary("arccos", lax.acos)
arctan = _unary("arctan", lax.atan)
arcsinh = _unary("arcsinh", lax.asinh)
arccosh = _unary("arccosh", lax.acosh)
arctanh = _unary("arctanh", lax.atanh)
sqrt = _unary("sqrt", lax.sqrt)
_floor = _unary("floor", lax.floor)
_ceil = _unary("ceil", lax.ceil)


def floor(x):
    """Round down (``np.floor``); integers and bools are returned unchanged, as in NumPy 2.

    >>> floor(np.array([-1.5, 2.5])), floor(np.array([3]))
    (array([-2.,  2.]), array([3]))
    """
    x = _operand(x)
    return _floor(x) if dtypes.is_float(get_aval(x).dtype) else x


def ceil(x):
    """Round up (``np.ceil``); integers and bools are returned unchanged, as in NumPy 2.

    >>> ceil(np.array([-1.5, 2.5])), ceil(np.array([3]))
    (array([-1.,  3.]), array([3]))
    """
    x = _operand(x)
    return _ceil(x) if dtypes.is_float(get_aval(x).dtype) else x


def negative(x):
    """``-x`` (``np.negative``).

    >>> negative(np.array([1, -2]))
    array([-1,  2])
    """
    x = _operand(x)
    if get_aval(x).dtype == bool:
        raise TypeError("negative is not supported for boolean arrays; use logical_not")
    return lax.neg(x)


def abs(x):  # noqa: A001  (NumPy name)
    """Absolute value; its gradient at 0 is 0 (see docs/kinks.md).

    >>> abs(np.array([-1.5, 2.0]))
    array([1.5, 2. ])
    """
    x = _operand(x)
    return x if get_aval(x).dtype == bool else lax.abs(x)


absolute = abs


def sign(x):
    """Sign of each element (``np.sign``); 0 at 0.

    >>> sign(np.array([-2.0, 0.0, 3.0]))
    array([-1.,  0.,  1.])
    """
    x = _operand(x)
    if get_aval(x).dtype == bool:
        raise TypeError("sign is not supported for boolean arrays")
    return lax.sign(x)


def square(x):
    """``x * x`` (``np.square``).

    >>> square(np.array([3]))
    array([9])
    """
    x = _operand(x)
    if get_aval(x).dtype == bool:
        return _cast(x, np.int8)  # as NumPy: bool squares in int8
    return lax.square(x)


def reciprocal(x):
    """``1 / x`` (``np.reciprocal``; floats only here, as integer reciprocals truncate).

    >>> reciprocal(np.array([2.0, 4.0]))
    array([0.5 , 0.25])
    """
    x = _to_float(x)
    return lax.div(lax.full_like(x, 1), x)


_INT_POW_MAX = 2 ** 31  # integer_pow's exponent is a static int64 of the program


def power(x, y):
    """``x ** y`` with NumPy promotion; integer powers of arrays use ``integer_pow``.

    >>> power(np.array([2.0, 3.0]), 2)
    array([4., 9.])
    """
    if y.__class__ is int and y == 2 and isinstance(x, Tracer) and x.aval.dtype.kind == "f":
        return lax.square(x)  # NB: the common `x ** 2` of a float tracer, checked first
    if y.__class__ is float and y == 0.5:
        x = _operand(x)
        if get_aval(x).dtype.kind == "f":
            # NB: NumPy computes a scalar 0.5 exponent as sqrt: (-0.0) ** 0.5 is -0.0 and
            # (-inf) ** 0.5 is nan there, where pow() gives 0.0 and inf.
            return lax.sqrt(x)
    if (isinstance(y, int) and not isinstance(y, bool) and not isinstance(x, (int, float))
            and -_INT_POW_MAX <= y <= _INT_POW_MAX):  # NB: larger ones go the general way
        x = _operand(x)
        kind = get_aval(x).dtype.kind
        if kind == "b":  # bool ** Python int is int64 in NumPy; a Python bool's a Python int
            x, kind = _cast(x, np.int64, get_aval(x).weak_type), "i"
        if kind in "iu" and y < 0:
            raise ValueError("Integers to negative integer powers are not allowed.")
        if y == 2:
            return lax.square(x)
        return lax.integer_pow(x, y)
    x, y = _promote_broadcast("power", x, y)
    dtype = get_aval(x).dtype
    if dtype.kind != "f":
        y_val = core.concrete_value_of(y)
        if y_val is not None and np.any(np.asarray(y_val) < 0):
            raise ValueError("Integers to negative integer powers are not allowed.")
        if dtype.kind == "b":
            # NumPy computes bool ** bool in int8: x or not y, as 0/1.
            return _cast(logical_or(x, logical_not(y)), np.int8)
        # NB: exact, wrapping on overflow, as NumPy's. A traced negative exponent cannot
        # raise as NumPy does: it gives the truncated 1 / x ** -y (0 unless x is 1 or -1).
    return lax.pow(x, y)


def where(condition, x=None, y=None):
    """Choose ``x`` where ``condition`` holds, else ``y`` (``np.where``).

    >>> where(np.array([True, False]), 1.0, np.array([5.0, 6.0]))
    array([1., 6.])
    """
    if x is None and y is None:
        return nonzero(condition)
    if x is None or y is None:
        raise ValueError("where takes either one argument or three")
    condition = _operand(condition)
    if get_aval(condition).dtype != bool:
        condition = lax.ne(condition, 0)
    x, y = _promote(x, y)
    shapes = [get_aval(a).shape for a in (condition, x, y)]
    if shapes[0] == shapes[1] == shapes[2]:  # NB: the common case needs no broadcasting
        return lax.select_n(condition, y, x)
    shape = _broadcast_shapes("where", *shapes)
    condition, x, y = (_broadcast_to(a, shape) for a in (condition, x, y))
    return lax.select_n(condition, y, x)


def nonzero(x):
    """Indices of non-zero elements; needs a concrete array (the output shape depends on it).

    >>> nonzero(np.array([0, 3, 4]))
    (array([1, 2]),)
    """
    return np.nonzero(np.asarray(core.concrete_or_error(_operand(x), "nonzero()")))


def clip(x, a_min=None, a_max=None, *, min=None, max=None):  # noqa: A002
    """Clip to ``[a_min, a_max]`` (or NumPy 2.1's ``min=``/``max=``); gradient 0 outside
    and at the bounds (docs/kinks.md).

    >>> clip(np.array([-2.0, 0.5, 3.0]), 0.0, 1.0)
    array([0. , 0.5, 1. ])
    >>> clip(np.array([-2.0, 3.0]), max=1.0)
    array([-2.,  1.])
    """
    if min is not None or max is not None:
        if a_min is not None or a_max is not None:
            raise TypeError("clip: give the bounds as a_min/a_max or as min/max, not both")
        a_min, a_max = min, max
    if a_min is not None:
        x = maximum(x, a_min)
    if a_max is not None:
        x = minimum(x, a_max)
    return x


def logaddexp(x, y):
    """``log(exp(x) + exp(y))`` computed stably; finite for inputs of any magnitude.

    >>> float(logaddexp(1000.0, 1000.0))
    1000.6931471805599
    """
    x, y = _promote(x, y)  # NB: first, so float32 with a bool or int8 stays float32
    x, y = _promote_broadcast("logaddexp", _to_float(x), _to_float(y))
    x_wins = lax.ge(x, y)
    high = lax.select_n(x_wins, y, x)
    # t = -|x - y| <= 0, chosen branch-wise so the gradient at x == y is 1/2 each.
    t = lax.select_n(x_wins, lax.sub(x, y), lax.sub(y, x))
    # NB: both infinite (and equal) makes t NaN: 0 instead. A NaN input stays NaN.
    both_infinite = lax.bitwise_and(lax.ne(t, t), lax.eq(x, y))
    t = lax.select_n(both_infinite, t, lax.full_like(t, 0))
    return lax.add(high, lax.log1p(lax.exp(t)))


def logical_and(x, y):
    """Elementwise logical and (``np.logical_and``).

    >>> logical_and(np.array([True, False]), True)
    array([ True, False])
    """
    x, y = _promote_broadcast("logical_and", _to_bool(x), _to_bool(y))
    return lax.bitwise_and(x, y)


def logical_or(x, y):
    """Elementwise logical or (``np.logical_or``).

    >>> logical_or(np.array([True, False]), False)
    array([ True, False])
    """
    x, y = _promote_broadcast("logical_or", _to_bool(x), _to_bool(y))
    return lax.bitwise_or(x, y)


def logical_xor(x, y):
    """Elementwise logical xor (``np.logical_xor``).

    >>> logical_xor(np.array([True, False]), True)
    array([False,  True])
    """
    x, y = _promote_broadcast("logical_xor", _to_bool(x), _to_bool(y))
    return lax.bitwise_xor(x, y)


def logical_not(x):
    """Elementwise logical not (``np.logical_not``).

    >>> logical_not(np.array([True, False]))
    array([False,  True])
    """
    return lax.bitwise_not(_to_bool(x))


def _to_bool(x):
    x = _operand(x)
    if get_aval(x).dtype == bool:
        return x if isinstance(x, Tracer) else np.asarray(x)
    return lax.ne(x, 0) if isinstance(x, Tracer) else np.asarray(x).astype(bool)


def isfinite(x):
    """True where ``x`` is neither infinite nor NaN (``np.isfinite``).

    >>> isfinite(np.array([1.0, np.inf, np.nan]))
    array([ True, False, False])
    """
    x = _operand(x)
    if not dtypes.is_float(get_aval(x).dtype):
        return full_like(x, True, dtype=bool)
    return lax.is_finite(x)


def isnan(x):
    """True where ``x`` is NaN (``np.isnan``).

    >>> isnan(np.array([1.0, np.nan]))
    array([False,  True])
    """
    x = _operand(x)
    return not_equal(x, x)


def isinf(x):
    """True where ``x`` is ±inf (``np.isinf``).

    >>> isinf(np.array([1.0, -np.inf]))
    array([False,  True])
    """
    x = _operand(x)
    return logical_and(logical_not(isfinite(x)), logical_not(isnan(x)))


# --------------------------------------------------------------------------- creation


def zeros(shape, dtype=float):
    """``np.zeros``.

    >>> zeros(2)
    array([0., 0.])
    """
    return np.zeros(shape, dtype)


def ones(shape, dtype=float):
    """``np.ones``.

    >>> ones((1, 2), dtype=np.float32)
    array([[1., 1.]], dtype=float32)
    """
    return np.ones(shape, dtype)


def full(shape, fill_value, dtype=None):
    """``np.full``; a traced fill value is broadcast.

    >>> full(2, 7.0)
    array([7., 7.])
    """
    if isinstance(fill_value, Tracer):
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        value = fill_value if dtype is None else _cast(fill_value, dtype)
        return _broadcast_to(value, shape)
    return np.full(shape, fill_value, dtype)


def zeros_like(x, dtype=None):
    """Zeros with the shape and dtype of ``x``.

    >>> zeros_like(np.ones(2, np.float32))
    array([0., 0.], dtype=float32)
    """
    return full_like(x, 0, dtype)


def ones_like(x, dtype=None):
    """Ones with the shape and dtype of ``x``.

    >>> ones_like(np.zeros(2))
    array([1., 1.])
    """
    return full_like(x, 1, dtype)


def full_like(x, fill_value, dtype=None):
    """An array shaped like ``x`` filled with ``fill_value``.

    >>> full_like(np.zeros(2), 3.0)
    array([3., 3.])
    """
    aval = get_aval(_operand(x))
    dtype = aval.dtype if dtype is None else np.dtype(dtype)
    if isinstance(x, Tracer) or isinstance(fill_value, Tracer):
        return full(aval.shape, _cast(fill_value, dtype), dtype)
    return np.full(aval.shape, fill_value, dtype)


def arange(start, stop=None, step=None, dtype=None):
    """``np.arange`` (concrete bounds only).

    >>> arange(3)
    array([0, 1, 2])
    """
    args = [core.concrete_or_error(a, "arange()") for a in (start, stop, step) if a is not None]
    return np.arange(*args, dtype=dtype)


def linspace(start, stop, num=50, endpoint=True, dtype=None):
    """``np.linspace``; traced endpoints are supported.

    >>> linspace(0.0, 1.0, 3)
    array([0. , 0.5, 1. ])
    """
    if not _is_traced(start, stop):
        return np.linspace(start, stop, num, endpoint=endpoint, dtype=dtype)
    # NumPy's result dtype: start and stop promoted with a (weak) Python float.
    start, stop, _ = _promote(start, stop, 1.0)
    # Array endpoints: the samples run along a new first axis, as in NumPy.
    ndim = len(np.broadcast_shapes(get_aval(start).shape, get_aval(stop).shape))
    steps = np.linspace(0.0, 1.0, num, endpoint=endpoint).astype(get_aval(start).dtype)
    out = add(start, multiply(subtract(stop, start), steps.reshape((num,) + (1,) * ndim)))
    if dtype is not None and np.dtype(dtype).kind in "iu":
        out = floor(out)  # NumPy 2 rounds integer samples toward -inf
    return out if dtype is None else asarray(out, dtype)


def eye(n, m=None, k=0, dtype=float):
    """``np.eye``.

    >>> eye(2)
    array([[1., 0.],
           [0., 1.]])
    """
    return np.eye(n, m, k, dtype=dtype)


def identity(n, dtype=float):
    """``np.identity``.

    >>> identity(1)
    array([[1.]])
    """
    return np.identity(n, dtype=dtype)


# --------------------------------------------------------------------------- reductions


def _canonical_axis(axis, ndim, name="axis"):
    """Normalize ``axis`` (None, int, negative, tuple) to a sorted tuple of dims."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axes = (axis,)
    elif isinstance(axis, (tuple, list)):
        axes = tuple(axis)
    else:
        raise TypeError(f"{name} must be an int, a tuple of ints or None, got {axis!r}")
    out = []
    for a in axes:
        if ndim:
            a = _one_axis(a, ndim, name)
        elif operator.index(a) not in (0, -1):  # a 0-d array has the one axis 0 (or -1)
            raise np.exceptions.AxisError(
                f"{name} {operator.index(a)} is out of bounds for array of dimension 0")
        else:
            a = 0
        if a in out:
            raise ValueError("duplicate value in 'axis'")
        out.append(a)
    return tuple(sorted(out)) if ndim else ()


def _one_axis(axis, ndim, name="axis"):
    """One axis of an array with ``ndim`` dims, made non-negative; AxisError if out of range.

    >>> _one_axis(-1, 3)
    2
    """
    a = operator.index(axis)
    if not -ndim <= a < ndim:
        raise np.exceptions.AxisError(f"{name} {a} is out of bounds for array of dimension "
                                      f"{ndim}")
    return a % ndim


def _keepdims(out, shape, axes):
    kept = tuple(1 if i in axes else s for i, s in enumerate(shape))
    return lax.reshape(out, kept)


def _sum_dtype(dtype):
    """NumPy's accumulator: bools and signed ints sum as int64, unsigned ints as uint64."""
    if dtype.kind == "u":
        return np.dtype(np.uint64)
    return np.dtype(np.int64) if dtype.kind in "bi" else dtype


def _reduce(x, axis, keepdims, lax_fn, dtype=None):
    if not isinstance(keepdims, (bool, np.bool_, int, np.integer)):
        raise TypeError(f"keepdims must be True or False, got {keepdims!r:.40}")
    x = _operand(x)
    aval = get_aval(x)
    axes = _canonical_axis(axis, aval.ndim)
    # NB: an operand already of a strong `dtype` would be returned as is by the cast.
    if dtype is not None and (aval.dtype != dtype or aval.weak_type):
        x = _cast(x, dtype)
    out = lax_fn(x, axes)
    return _keepdims(out, aval.shape, axes) if keepdims else out


def sum(x, axis=None, dtype=None, keepdims=False):  # noqa: A001
    """Sum over ``axis`` (``np.sum``); bools and ints sum as int64 (unsigned: uint64).

    >>> sum(np.array([[1.0, 2.0], [3.0, 4.0]]), axis=0)
    array([4., 6.])
    """
    if isinstance(x, Tracer) and axis is None and dtype is None and not keepdims:
        aval = x.aval
        if aval.dtype.kind == "f" and not aval.weak_type and aval.shape:
            # NB: the common full sum of a strong float tracer has nothing to cast or
            # normalise: its axes are already canonical.
            return lax.reduce_sum_p.bind(x, axes=tuple(range(len(aval.shape))))
    x = _operand(x)
    dtype = _sum_dtype(get_aval(x).dtype) if dtype is None else np.dtype(dtype)
    return _reduce(x, axis, keepdims, lax.reduce_sum, dtype)


def prod(x, axis=None, dtype=None, keepdims=False):
    """Product over ``axis`` (``np.prod``).

    >>> prod(np.array([2.0, 3.0]))
    np.float64(6.0)
    """
    x = _operand(x)
    dtype = _sum_dtype(get_aval(x).dtype) if dtype is None else np.dtype(dtype)
    return _reduce(x, axis, keepdims, lax.reduce_prod, dtype)


def max(x, axis=None, keepdims=False):  # noqa: A001
    """Maximum over ``axis``; ties share the gradient (docs/kinks.md).

    >>> max(np.array([1.0, 3.0]))
    np.float64(3.0)
    """
    _check_nonempty(x, axis, "max")
    return _reduce(x, axis, keepdims, lax.reduce_max)


def min(x, axis=None, keepdims=False):  # noqa: A001
    """Minimum over ``axis``; ties share the gradient.

    >>> min(np.array([1.0, 3.0]))
    np.float64(1.0)
    """
    _check_nonempty(x, axis, "min")
    return _reduce(x, axis, keepdims, lax.reduce_min)


amax, amin = max, min


def _check_nonempty(x, axis, name):
    aval = get_aval(_operand(x))
    axes = _canonical_axis(axis, aval.ndim)
    if builtins.any(aval.shape[a] == 0 for a in axes):
        raise ValueError(
            f"zero-size array to reduction operation {name} which has no identity "
            f"(shape {aval.shape}, axis={axis})"
        )


def mean(x, axis=None, dtype=None, keepdims=False):
    """Mean over ``axis`` (``np.mean``); integers average as float64.

    >>> mean(np.array([1, 2]))
    np.float64(1.5)
    """
    x = _operand(x)
    aval = get_aval(x)
    axes = _canonical_axis(axis, aval.ndim)
    if dtype is None:
        dtype = aval.dtype if dtypes.is_float(aval.dtype) else np.dtype(np.float64)
    total = sum(_cast(x, dtype), axis=axes, keepdims=keepdims)
    count = math.prod(aval.shape[a] for a in axes)
    return lax.div(total, lax.full_like(total, count))


def var(x, axis=None, dtype=None, ddof=0, keepdims=False):
    """Variance over ``axis`` (``np.var``; ``ddof`` as in NumPy).

    >>> var(np.array([1.0, 3.0]))
    np.float64(1.0)
    """
    x = _operand(x)
    aval = get_aval(x)
    axes = _canonical_axis(axis, aval.ndim)
    if dtype is None:
        dtype = aval.dtype if dtypes.is_float(aval.dtype) else np.dtype(np.float64)
    x = _cast(x, dtype)
    centered = subtract(x, mean(x, axis=axes, keepdims=True))
    total = sum(lax.square(centered), axis=axes, keepdims=keepdims)
    count = math.prod(aval.shape[a] for a in axes) - ddof
    return lax.div(total, lax.full_like(total, builtins.max(count, 0)))


def std(x, axis=None, dtype=None, ddof=0, keepdims=False):
    """Standard deviation over ``axis`` (``np.std``).

    >>> std(np.array([1.0, 3.0]))
    np.float64(1.0)
    """
    return sqrt(var(x, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims))


def all(x, axis=None, keepdims=False):  # noqa: A001
    """True where all elements along ``axis`` are true (``np.all``).

    >>> all(np.array([True, False]))
    np.False_
    """
    # NB: counted, not reduce_min, so an empty reduction is True as in NumPy.
    falses = sum(logical_not(x), axis=axis, keepdims=keepdims)
    return lax.eq(falses, lax.full_like(falses, 0))


def any(x, axis=None, keepdims=False):  # noqa: A001
    """True where any element along ``axis`` is true (``np.any``).

    >>> any(np.array([True, False]))
    np.True_
    """
    trues = sum(_to_bool(x), axis=axis, keepdims=keepdims)
    return lax.ne(trues, lax.full_like(trues, 0))


def argmax(x, axis=None, keepdims=False):
    """Index of the maximum along ``axis`` (flattened when None).

    >>> argmax(np.array([1.0, 5.0, 2.0]))
    np.int64(1)
    """
    return _arg_reduce(x, axis, keepdims, lax.argmax, "argmax")


def argmin(x, axis=None, keepdims=False):
    """Index of the minimum along ``axis`` (flattened when None).

    >>> argmin(np.array([1.0, 5.0, 2.0]))
    np.int64(0)
    """
    return _arg_reduce(x, axis, keepdims, lax.argmin, "argmin")


def _arg_reduce(x, axis, keepdims, lax_fn, name):
    x = _operand(x)
    aval = get_aval(x)
    if axis is not None and not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{name}: axis must be an int or None (one axis), got {axis!r}")
    axes = _canonical_axis(axis, aval.ndim) if axis is not None else None
    if aval.size == 0 and (axis is None or aval.shape[axes[0]] == 0):
        raise ValueError(f"attempt to get {name} of an empty sequence")
    if axis is None:
        out = lax_fn(ravel(x), 0)
        return lax.reshape(out, (1,) * aval.ndim) if keepdims else out
    (a,) = _canonical_axis(axis, aval.ndim) or (0,)
    if aval.ndim == 0:
        return lax_fn(ravel(x), 0)
    out = lax_fn(x, a)
    return _keepdims(out, aval.shape, (a,)) if keepdims else out


def cumsum(x, axis=None, dtype=None):
    """Cumulative sum along ``axis`` (flattened when None).

    >>> cumsum(np.array([1.0, 2.0, 3.0]))
    array([1., 3., 6.])
    """
    x = _operand(x)
    if axis is None or get_aval(x).ndim == 0:  # NumPy takes a 0-d array as 1-d here
        x, axis = ravel(x), 0 if axis is None else axis
    aval = get_aval(x)
    (a,) = _canonical_axis(axis, aval.ndim)
    dtype = _sum_dtype(aval.dtype) if dtype is None else np.dtype(dtype)
    return lax.cumsum(_cast(x, dtype), a)


# --------------------------------------------------------------------------- shape


def reshape(x, newshape, order="C"):
    """``np.reshape`` (C order; one ``-1`` allowed).

    >>> reshape(np.arange(6), (2, -1)).shape
    (2, 3)
    """
    if order != "C":
        raise NotImplementedError("reshape supports order='C' only")
    x = _operand(x)
    aval = get_aval(x)
    shape = (newshape,) if isinstance(newshape, (int, np.integer)) else tuple(newshape)
    shape = tuple(operator.index(d) for d in shape)
    if shape.count(-1) > 1:
        raise ValueError("reshape: can only specify one unknown dimension (-1)")
    if -1 in shape:
        known = math.prod(d for d in shape if d != -1)
        if known == 0 or aval.size % known:
            raise ValueError(f"reshape: cannot reshape array of shape {aval.shape} into {newshape}")
        shape = tuple(aval.size // known if d == -1 else d for d in shape)
    if math.prod(shape) != aval.size:
        raise ValueError(
            f"reshape: cannot reshape array of shape {aval.shape} (size {aval.size}) "
            f"into shape {tuple(newshape) if not isinstance(newshape, int) else (newshape,)}"
        )
    return lax.reshape(x, shape)


def ravel(x):
    """Flatten to 1-D (``np.ravel``).

    >>> ravel(np.ones((2, 2))).shape
    (4,)
    """
    return reshape(x, (-1,))


def transpose(x, axes=None):
    """Permute axes (reverse them when ``axes`` is None).

    >>> transpose(np.ones((2, 3))).shape
    (3, 2)
    """
    x = _operand(x)
    ndim = get_aval(x).ndim
    if axes is None:
        axes = tuple(reversed(range(ndim)))
    axes = tuple(_one_axis(a, ndim) for a in axes)
    if sorted(axes) != list(range(ndim)):
        raise ValueError(f"transpose: axes {axes} don't match array of dimension {ndim}")
    return lax.transpose(x, axes)


def swapaxes(x, axis1, axis2):
    """Swap two axes (``np.swapaxes``).

    >>> swapaxes(np.ones((2, 3)), 0, 1).shape
    (3, 2)
    """
    x = _operand(x)
    ndim = get_aval(x).ndim
    perm = list(range(ndim))
    a, b = _one_axis(axis1, ndim, "axis1"), _one_axis(axis2, ndim, "axis2")
    perm[a], perm[b] = perm[b], perm[a]
    return lax.transpose(x, perm)


def moveaxis(x, source, destination):
    """Move axes to new positions (``np.moveaxis``).

    >>> moveaxis(np.ones((2, 3, 4)), 0, -1).shape
    (3, 4, 2)
    """
    x = _operand(x)
    ndim = get_aval(x).ndim
    src = [_canonical_axis(int(s), ndim, "source")[0] for s in np.atleast_1d(source)]
    dst = [_canonical_axis(int(d), ndim, "destination")[0] for d in np.atleast_1d(destination)]
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise ValueError("moveaxis: repeated axis in `source` or `destination`")
    if len(src) != len(dst):
        raise ValueError("moveaxis: source and destination must have the same length")
    order = [n for n in range(ndim) if n not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return lax.transpose(x, order)


def expand_dims(x, axis):
    """Insert size-1 axes at ``axis`` (``np.expand_dims``).

    >>> expand_dims(np.ones(3), 0).shape
    (1, 3)
    """
    x = _operand(x)
    out_ndim = get_aval(x).ndim + (1 if isinstance(axis, (int, np.integer)) else len(axis))
    axes = _canonical_axis(axis, out_ndim)
    return lax.expand_dims(x, axes)


def squeeze(x, axis=None):
    """Remove size-1 axes (``np.squeeze``).

    >>> squeeze(np.ones((1, 3, 1))).shape
    (3,)
    """
    x = _operand(x)
    aval = get_aval(x)
    if axis is None:
        axes = tuple(i for i, s in enumerate(aval.shape) if s == 1)
    else:
        axes = _canonical_axis(axis, aval.ndim)
        for a in axes:
            if aval.shape[a] != 1:
                raise ValueError(
                    f"squeeze: cannot select an axis to squeeze out which has size not equal "
                    f"to one (axis {a} of shape {aval.shape})"
                )
    return lax.squeeze(x, axes)


def broadcast_to(x, shape):
    """Broadcast ``x`` to ``shape`` (``np.broadcast_to``).

    >>> broadcast_to(np.ones(3), (2, 3)).shape
    (2, 3)
    """
    x = _operand(x)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    source = get_aval(x).shape
    try:
        compatible = tuple(np.broadcast_shapes(source, shape)) == shape
    except ValueError:
        compatible = False
    if not compatible:
        raise ValueError(f"broadcast_to: cannot broadcast an array of shape {source} to {shape}")
    return _broadcast_to(x, shape)


def broadcast_arrays(*args):
    """Broadcast arrays against each other (``np.broadcast_arrays``).

    >>> [a.shape for a in broadcast_arrays(np.ones(3), np.ones((2, 1)))]
    [(2, 3), (2, 3)]
    """
    args = [_operand(a) for a in args]
    shape = _broadcast_shapes("broadcast_arrays", *[get_aval(a).shape for a in args])
    return [_broadcast_to(a, shape) for a in args]


def concatenate(arrays, axis=0):
    """Join arrays along an existing axis (``np.concatenate``; ``axis=None`` flattens).

    >>> concatenate([np.ones(2), np.zeros(1)])
    array([1., 1., 0.])
    """
    arrays = list(arrays)
    if not arrays:
        raise ValueError("need at least one array to concatenate")
    if axis is None:
        arrays, axis = [ravel(a) for a in arrays], 0
    arrays = _promote(*arrays)
    avals = [get_aval(a) for a in arrays]
    ndim = avals[0].ndim
    if ndim == 0:
        raise ValueError("zero-dimensional arrays cannot be concatenated")
    (a,) = _canonical_axis(axis, ndim)
    for aval in avals[1:]:
        if aval.ndim != ndim or builtins.any(
            s != t for i, (s, t) in enumerate(zip(aval.shape, avals[0].shape)) if i != a
        ):
            raise ValueError(
                f"concatenate: all the input array dimensions except for the concatenation "
                f"axis must match exactly, got shapes {avals[0].shape} and {aval.shape}"
            )
    return lax.concatenate(arrays, a)


def stack(arrays, axis=0):
    """Join arrays along a new axis (``np.stack``).

    >>> stack([np.ones(2), np.zeros(2)]).shape
    (2, 2)
    """
    arrays = [_operand(a) for a in arrays]
    if not arrays:
        raise ValueError("need at least one array to stack")
    shapes = {get_aval(a).shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"stack: all input arrays must have the same shape, got {sorted(shapes)}")
    ndim = get_aval(arrays[0]).ndim + 1
    (a,) = _canonical_axis(axis, ndim)
    return concatenate([lax.expand_dims(x, (a,)) for x in _promote(*arrays)], axis=a)


def hstack(arrays):
    """Stack horizontally (``np.hstack``).

    >>> hstack([np.ones(2), np.ones(1)]).shape
    (3,)
    """
    arrays = [atleast_1d(a) for a in arrays]
    axis = 0 if get_aval(arrays[0]).ndim == 1 else 1
    return concatenate(arrays, axis)


def vstack(arrays):
    """Stack vertically (``np.vstack``).

    >>> vstack([np.ones(2), np.ones(2)]).shape
    (2, 2)
    """
    arrays = [_operand(a) for a in arrays]
    arrays = [reshape(a, (1, -1)) if get_aval(a).ndim <= 1 else a for a in arrays]
    return concatenate(arrays, 0)


def split(x, indices_or_sections, axis=0):
    """Split into sub-arrays along ``axis`` (``np.split``).

    >>> [p.shape for p in split(np.arange(6), 3)]
    [(2,), (2,), (2,)]
    """
    x = _operand(x)
    aval = get_aval(x)
    (a,) = _canonical_axis(axis, aval.ndim)
    n = aval.shape[a]
    if isinstance(indices_or_sections, (int, np.integer)):
        sections = int(indices_or_sections)
        if sections <= 0 or n % sections:
            raise ValueError("array split does not result in an equal division")
        bounds = [i * (n // sections) for i in range(sections + 1)]
    else:
        # NB: each index bounds a slice, so a negative one counts from the end.
        bounds = [0] + [builtins.min(builtins.max(int(i) + n if int(i) < 0 else int(i), 0), n)
                        for i in indices_or_sections]
        bounds.append(n)
    pieces = []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        starts = [0] * aval.ndim
        limits = list(aval.shape)
        starts[a], limits[a] = start, builtins.max(start, stop)
        pieces.append(lax.slice(x, starts, limits))
    return pieces


def tile(x, reps):
    """Repeat the whole array ``reps`` times (``np.tile``).

    >>> tile(np.array([1, 2]), 2)
    array([1, 2, 1, 2])
    """
    x = _operand(x)
    if isinstance(reps, (int, np.integer)):
        reps = (reps,)
    elif isinstance(reps, (tuple, list, np.ndarray)):
        reps = tuple(np.ravel(reps)) if isinstance(reps, np.ndarray) else tuple(reps)
    if not isinstance(reps, tuple) or not builtins.all(
            isinstance(r, (int, np.integer)) for r in reps):
        raise TypeError(f"tile: reps must be an int or a tuple of ints, got {reps!r}")
    if builtins.any(r < 0 for r in reps):
        raise ValueError(f"tile: negative dimensions are not allowed (reps {reps})")
    aval = get_aval(x)
    ndim = builtins.max(aval.ndim, len(reps))
    reps = (1,) * (ndim - len(reps)) + reps
    x = reshape(x, (1,) * (ndim - aval.ndim) + aval.shape)
    shape = get_aval(x).shape
    # Broadcast to (r0, s0, r1, s1, ...) then merge each pair.
    interleaved = tuple(v for r, s in zip(reps, shape) for v in (r, s))
    dims = tuple(range(1, 2 * ndim, 2))
    out = lax.broadcast_in_dim(x, interleaved, dims)
    return lax.reshape(out, tuple(r * s for r, s in zip(reps, shape)))


def repeat(x, repeats, axis=None):
    """Repeat each element ``repeats`` times (``np.repeat``; int ``repeats``).

    >>> repeat(np.array([1, 2]), 2)
    array([1, 1, 2, 2])
    """
    x = _operand(x)
    if axis is None or get_aval(x).ndim == 0:  # NumPy takes a 0-d array as 1-d here
        x, axis = ravel(x), 0 if axis is None else axis
    aval = get_aval(x)
    (a,) = _canonical_axis(axis, aval.ndim)
    if not isinstance(repeats, (int, np.integer)):
        counts = np.asarray(core.concrete_or_error(repeats, "repeat()"))
        if counts.size == 0:  # [] is float64 to NumPy; as counts it is int64
            counts = counts.astype(np.int64)
        index = np.repeat(np.arange(aval.shape[a]), counts)
        return lax.gather(x, index, a)
    repeats = int(repeats)
    if repeats < 0:
        raise ValueError(f"repeat: negative dimensions are not allowed (repeats {repeats})")
    shape = aval.shape[: a + 1] + (repeats,) + aval.shape[a + 1:]
    dims = tuple(range(a + 1)) + tuple(range(a + 2, aval.ndim + 1))
    out = lax.broadcast_in_dim(x, shape, dims)
    new = aval.shape[:a] + (aval.shape[a] * repeats,) + aval.shape[a + 1:]
    return lax.reshape(out, new)


def flip(x, axis=None):
    """Reverse the order of elements along ``axis`` (``np.flip``).

    >>> flip(np.array([1, 2, 3]))
    array([3, 2, 1])
    """
    x = _operand(x)
    return lax.rev(x, _canonical_axis(axis, get_aval(x).ndim))


def atleast_1d(x):
    """``np.atleast_1d`` for one array.

    >>> atleast_1d(1.0).shape
    (1,)
    """
    x = _operand(x)
    return reshape(x, (1,)) if get_aval(x).ndim == 0 else x


def shape(x):
    """``np.shape``.

    >>> shape(np.ones((2, 3)))
    (2, 3)
    """
    return get_aval(_operand(x)).shape


def ndim(x):
    """``np.ndim``.

    >>> ndim(np.ones((2, 3)))
    2
    """
    return get_aval(_operand(x)).ndim


def size(x):
    """``np.size``.

    >>> size(np.ones((2, 3)))
    6
    """
    return get_aval(_operand(x)).size


def astype(x, dtype):
    """Cast to ``dtype``.

    >>> astype(np.array([1.5]), np.int64)
    array([1])
    """
    return _cast(_operand(x), dtypes.check_supported(dtype))


# --------------------------------------------------------------------------- strong results


def _strong(out):
    """NumPy functions return NumPy values, never Python scalars: their results are
    strongly typed. (Operators on Python scalars stay weak, see tracer_methods.)"""
    if isinstance(out, Tracer):
        if out.aval.weak_type:
            return lax.convert_element_type(out, out.aval.dtype, weak_type=False)
        return out
    if _is_python_scalar(out):
        return np.asarray(out)[()]
    if isinstance(out, (list, tuple)) and not isinstance(out, np.ndarray):
        return type(out)(_strong(o) for o in out)
    return out


def strong_result(fn):
    """Decorate a public ``fgrad.numpy`` function so its results are strongly typed,
    as NumPy's are: ``jit(lambda x, s: x * fnp.sin(s))(f32_array, 2.0)`` is float64,
    exactly like the eager ``x * np.sin(2.0)``. The undecorated function stays
    available as ``fn.__wrapped__`` (Python operators use it).

    >>> strong_result(lambda x: x)(2.0)
    np.float64(2.0)
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        out = fn(*args, **kwargs)
        if isinstance(out, Tracer) and not out.aval.weak_type:
            return out  # NB: the common case, already strong, without a call to _strong
        return _strong(out)

    return wrapper


_NOT_ARRAY_VALUED = {"shape", "ndim", "size", "strong_result"}
for _name, _fn in list(globals().items()):
    if (
        not _name.startswith("_")
        and _name not in _NOT_ARRAY_VALUED
        and inspect.isfunction(_fn)
        and _fn.__module__ == __name__
    ):
        globals()[_name] = strong_result(_fn)
del _name, _fn
