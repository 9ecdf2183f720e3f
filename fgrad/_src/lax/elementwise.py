"""Elementwise primitives: arithmetic, transcendental, comparison, logic, select, casts.

Binary primitives take equal shapes and dtypes; the wrappers here only
broadcast 0-d operands and Python scalars (``fgrad.numpy`` does the rest).
Each block defines one primitive with its wrapper, JVP and transpose rules.
"""

import numpy as np

from fgrad._src import core
from fgrad._src.core import ShapedArray
from fgrad._src.interpreters import ad, batching
from fgrad._src.interpreters.ad import UndefPrimal
from fgrad._src.lax import lax
from fgrad._src.lax.utils import ANY, FLOAT, NUMERIC, binop, primitive, unop

_SCALAR_CONSTANTS: dict = {}  # (dtype, repr of a Python scalar) -> its 0-d array


def scalar_constant(scalar, dtype):
    """``np.asarray(scalar, dtype)`` for a Python scalar, one read-only array per value:
    staging recognises an array it has seen (by identity) and reuses its literal, and with
    it the staged broadcast (``1 - y``, ``x * 0.5`` in user code and in rules).

    >>> scalar_constant(0.5, np.dtype("float32")) is scalar_constant(0.5, np.dtype("float32"))
    True
    """
    if type(scalar) not in (bool, int, float):
        return np.asarray(scalar, dtype)
    key = (dtype, repr(scalar))  # NB: repr keeps 0.0 and -0.0 (equal, same hash) apart
    const = _SCALAR_CONSTANTS.get(key)
    if const is None:
        if len(_SCALAR_CONSTANTS) >= 1024:
            _SCALAR_CONSTANTS.clear()
        const = np.asarray(scalar, dtype)
        if const.item() != scalar:
            return const  # NB: rounded, overflowed or nan: cast (and warn) every time
        const.flags.writeable = False  # shared by every trace that uses this value
        _SCALAR_CONSTANTS[key] = const
    return const


def _scalar_like(scalar, other):
    aval = core.get_aval(other)
    # NB: next to a weakly-typed tracer of its own dtype a Python scalar stays a
    # Python scalar (a weak literal), so the result keeps the weak type.
    if aval.weak_type and isinstance(other, core.Tracer) and (
        np.asarray(scalar).dtype == aval.dtype
    ):
        return scalar
    return scalar_constant(scalar, aval.dtype)


def _match(x, y):
    """Turn Python scalars into arrays of the other operand's dtype; broadcast 0-d."""
    if isinstance(x, core.Tracer) and isinstance(y, core.Tracer) and x.aval.shape == y.aval.shape:
        return x, y  # NB: the common case in rules, two traced operands of one shape
    x_scalar = not isinstance(x, (core.Tracer, np.ndarray, np.generic))
    y_scalar = not isinstance(y, (core.Tracer, np.ndarray, np.generic))
    if x_scalar and not y_scalar:
        x = _scalar_like(x, y)
    elif y_scalar and not x_scalar:
        y = _scalar_like(y, x)
    elif x_scalar and y_scalar:
        x, y = core.to_numpy(x), core.to_numpy(y)
        if x.dtype != y.dtype:  # e.g. a rule's eq(2.0, 0): both in their common dtype
            dtype = np.result_type(x, y)
            x, y = np.asarray(x, dtype), np.asarray(y, dtype)
    x_shape, y_shape = core.get_aval(x).shape, core.get_aval(y).shape
    if x_shape != y_shape:
        if x_shape == ():
            x = lax.broadcast_in_dim(x, y_shape, ())
        elif y_shape == ():
            y = lax.broadcast_in_dim(y, x_shape, ())
    return x, y


# --------------------------------------------------------------------------- arithmetic

add_p = binop("add", np.add)


def add(x, y):
    return add_p.bind(*_match(x, y))


ad.defjvp(add_p, lambda g, x, y: g, lambda g, x, y: g)
ad.deftranspose(add_p, lambda ct, x, y: [ct, ct])
batching.defbatch_elementwise(add_p)

sub_p = binop("sub", np.subtract)


def sub(x, y):
    return sub_p.bind(*_match(x, y))


ad.defjvp(sub_p, lambda g, x, y: g, lambda g, x, y: neg(g))
ad.deftranspose(sub_p, lambda ct, x, y: [ct, neg(ct)])
batching.defbatch_elementwise(sub_p)

mul_p = binop("mul", np.multiply)


def mul(x, y):
    return mul_p.bind(*_match(x, y))


ad.defbilinear(mul_p, lambda ct, x, y: mul(ct, y), lambda ct, x, y: mul(x, ct))
batching.defbatch_elementwise(mul_p)


def _div_impl(x, y):
    if np.asarray(x).dtype.kind in "iu":
        # Truncating division, x / 0 = 0. NB: no abs(), which wraps at INT64_MIN: floor
        # division rounded toward zero; x / -1 negates (INT64_MIN // -1 would overflow).
        safe = np.where((y == 0) | (y == -1), 1, y)
        q = x // safe
        q = q + ((q * safe != x) & ((x < 0) != (safe < 0)))
        return np.where(y == 0, 0, np.where(y == -1, np.negative(x), q)).astype(q.dtype)
    return np.divide(x, y)


div_p = binop("div", _div_impl)


def div(x, y):
    return div_p.bind(*_match(x, y))


ad.defjvp(div_p, lambda g, x, y: div(g, y), lambda g, x, y: mul(neg(g), div(div(x, y), y)))
ad.deftranspose(div_p, lambda ct, x, y: [div(ct, y), None])
# NB: div is linear in its numerator only; transpose is used when y is a residual.
batching.defbatch_elementwise(div_p)

rem_p = binop("rem", np.fmod)


def rem(x, y):
    return rem_p.bind(*_match(x, y))


ad.defjvp(
    rem_p,
    lambda g, x, y: g,
    lambda g, x, y: mul(neg(g), mul(sign(div(x, y)), floor(abs(div(x, y))))),
)
batching.defbatch_elementwise(rem_p)

neg_p = unop("neg", np.negative, accepted=NUMERIC)


def neg(x):
    return neg_p.bind(x)


ad.deflinear(neg_p, lambda ct, x: [neg(ct)])
batching.defbatch_unop(neg_p)

sign_p = unop("sign", np.sign, accepted=NUMERIC)


def sign(x):
    return sign_p.bind(x)


ad.defjvp_zero(sign_p)
batching.defbatch_unop(sign_p)

floor_p = unop("floor", np.floor)


def floor(x):
    return floor_p.bind(x)


ad.defjvp_zero(floor_p)
batching.defbatch_unop(floor_p)

ceil_p = unop("ceil", np.ceil)


def ceil(x):
    return ceil_p.bind(x)


ad.defjvp_zero(ceil_p)
batching.defbatch_unop(ceil_p)

round_p = unop("round", np.round)


def round(x):  # noqa: A001  (lax vocabulary)
    return round_p.bind(x)


ad.defjvp_zero(round_p)
batching.defbatch_unop(round_p)

abs_p = unop("abs", np.abs, accepted=NUMERIC)


def abs(x):  # noqa: A001
    return abs_p.bind(x)


# Kink rule: sign(0) = 0 is the minimum-norm subgradient of |x| at 0.
ad.defjvp(abs_p, lambda g, x: mul(g, sign(x)))
batching.defbatch_unop(abs_p)

max_p = binop("max", np.maximum, accepted=ANY)


def max(x, y):  # noqa: A001
    return max_p.bind(*_match(x, y))


ad.defjvp_minmax(max_p, lambda x, y: gt(x, y))
batching.defbatch_elementwise(max_p)

min_p = binop("min", np.minimum, accepted=ANY)


def min(x, y):  # noqa: A001
    return min_p.bind(*_match(x, y))


ad.defjvp_minmax(min_p, lambda x, y: lt(x, y))
batching.defbatch_elementwise(min_p)

square_p = unop("square", np.square, accepted=NUMERIC)


def square(x):
    return square_p.bind(x)


ad.defjvp(square_p, lambda g, x: mul(g, mul(x, 2)))
batching.defbatch_unop(square_p)


def _integer_pow_impl(x, *, y):
    x = np.asarray(x)  # NB: a Python float primal (under jvp) reaches here as is
    return np.power(x, y) if y >= 0 else np.power(x.astype(np.result_type(x, 1.0)), y)


def _integer_pow_abstract(x, *, y):
    if y < 0 and x.dtype.kind != "f":
        raise TypeError(f"integer_pow with a negative exponent needs a float operand, got {x}")
    return x


integer_pow_p = primitive("integer_pow", _integer_pow_abstract, _integer_pow_impl)


def integer_pow(x, y: int):
    return integer_pow_p.bind(x, y=int(y))


def _integer_pow_jvp(g, x, *, y):
    return None if y == 0 else mul(g, mul(integer_pow(x, y - 1), y))


ad.defjvp(integer_pow_p, _integer_pow_jvp)
batching.defbatch_unop(integer_pow_p)

def _pow_impl(x, y):
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype.kind not in "iu":
        return np.power(x, y)
    # Integers: exact, wrapping on overflow (NumPy's); a negative exponent, which NumPy
    # refuses, gives the truncated 1 / x ** -y: 1 for x == 1, +-1 for x == -1, else 0.
    negative = y < 0
    out = np.power(x, np.where(negative, 0, y))
    if not negative.any():
        return out
    truncated = np.where(x == 1, 1, np.where(x == -1, np.where(y % 2 == 0, 1, -1), 0))
    return np.where(negative, truncated, out).astype(out.dtype)


pow_p = binop("pow", _pow_impl)  # float or integer operands (integer: no gradient)


def pow(x, y):  # noqa: A001
    return pow_p.bind(*_match(x, y))


def _pow_jvp_y(g, x, y):
    # d/dy x**y = log(x) x**y; at x == 0 we use log(1) so the result stays finite.
    safe_x = select_n(eq(x, 0), x, lax.full_like(x, 1))
    return mul(g, mul(log(safe_x), pow(x, y)))


def _pow_jvp_x(g, x, y):
    # d/dx x**y = y x**(y-1); where y == 0 it is 0, also at x == 0 (computed without 0 * inf).
    both_zero = bitwise_and(eq(x, 0), eq(y, 0))
    safe_x = select_n(both_zero, x, lax.full_like(x, 1))
    return mul(g, mul(y, pow(safe_x, sub(y, 1))))


ad.defjvp(pow_p, _pow_jvp_x, _pow_jvp_y)
batching.defbatch_elementwise(pow_p)

# --------------------------------------------------------------------------- transcendental

exp_p = unop("exp", np.exp)


def exp(x):
    return exp_p.bind(x)


ad.defjvp2(exp_p, lambda g, ans, x: mul(g, ans))
batching.defbatch_unop(exp_p)

log_p = unop("log", np.log)


def log(x):
    return log_p.bind(x)


ad.defjvp(log_p, lambda g, x: div(g, x))
batching.defbatch_unop(log_p)

log1p_p = unop("log1p", np.log1p)


def log1p(x):
    return log1p_p.bind(x)


ad.defjvp(log1p_p, lambda g, x: div(g, add(x, 1)))
batching.defbatch_unop(log1p_p)

expm1_p = unop("expm1", np.expm1)


def expm1(x):
    return expm1_p.bind(x)


ad.defjvp2(expm1_p, lambda g, ans, x: mul(g, add(ans, 1)))
batching.defbatch_unop(expm1_p)

tanh_p = unop("tanh", np.tanh)


def tanh(x):
    return tanh_p.bind(x)


ad.defjvp2(tanh_p, lambda g, ans, x: mul(g, sub(1, square(ans))))
batching.defbatch_unop(tanh_p)


def _logistic_impl(x):
    # exp(-|x|) never overflows; pick the stable form on each side of 0.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(np.asarray(x).dtype)


logistic_p = unop("logistic", _logistic_impl)


def logistic(x):
    return logistic_p.bind(x)


ad.defjvp2(logistic_p, lambda g, ans, x: mul(g, mul(ans, sub(1, ans))))
batching.defbatch_unop(logistic_p)

def _softplus_impl(x):
    # max(x, 0) + log1p(exp(-|x|)): exp never overflows, and log1p keeps the tiny values
    # of softplus at very negative x (softplus(-50) = 1.9e-22, not 0).
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


softplus_p = unop("softplus", _softplus_impl)


def softplus(x):
    """``log(1 + exp(x))``, finite for any finite input; its derivative is ``logistic``.

    A primitive (JAX writes it as ``logaddexp(x, 0)`` with a custom JVP) so gradients
    come out as one ``logistic`` rather than the selects of a stable formula.

    >>> float(softplus(np.float64(0.0)))
    0.6931471805599453
    """
    return softplus_p.bind(x)


ad.defjvp(softplus_p, lambda g, x: mul(g, logistic(x)))
batching.defbatch_unop(softplus_p)


sin_p = unop("sin", np.sin)


def sin(x):
    return sin_p.bind(x)


ad.defjvp(sin_p, lambda g, x: mul(g, cos(x)))
batching.defbatch_unop(sin_p)

cos_p = unop("cos", np.cos)


def cos(x):
    return cos_p.bind(x)


ad.defjvp(cos_p, lambda g, x: mul(g, neg(sin(x))))
batching.defbatch_unop(cos_p)

tan_p = unop("tan", np.tan)


def tan(x):
    return tan_p.bind(x)


ad.defjvp2(tan_p, lambda g, ans, x: mul(g, add(1, square(ans))))
batching.defbatch_unop(tan_p)

asin_p = unop("asin", np.arcsin)


def asin(x):
    return asin_p.bind(x)


ad.defjvp(asin_p, lambda g, x: div(g, sqrt(sub(1, square(x)))))
batching.defbatch_unop(asin_p)

acos_p = unop("acos", np.arccos)


def acos(x):
    return acos_p.bind(x)


ad.defjvp(acos_p, lambda g, x: neg(div(g, sqrt(sub(1, square(x))))))
batching.defbatch_unop(acos_p)

atan_p = unop("atan", np.arctan)


def atan(x):
    return atan_p.bind(x)


ad.defjvp(atan_p, lambda g, x: div(g, add(1, square(x))))
batching.defbatch_unop(atan_p)

atan2_p = binop("atan2", np.arctan2, accepted=FLOAT)


def atan2(x, y):
    return atan2_p.bind(*_match(x, y))


ad.defjvp(
    atan2_p,
    lambda g, x, y: mul(g, div(y, add(square(x), square(y)))),
    lambda g, x, y: mul(g, div(neg(x), add(square(x), square(y)))),
)
batching.defbatch_elementwise(atan2_p)

sinh_p = unop("sinh", np.sinh)


def sinh(x):
    return sinh_p.bind(x)


ad.defjvp(sinh_p, lambda g, x: mul(g, cosh(x)))
batching.defbatch_unop(sinh_p)

cosh_p = unop("cosh", np.cosh)


def cosh(x):
    return cosh_p.bind(x)


ad.defjvp(cosh_p, lambda g, x: mul(g, sinh(x)))
batching.defbatch_unop(cosh_p)

asinh_p = unop("asinh", np.arcsinh)


def asinh(x):
    return asinh_p.bind(x)


ad.defjvp(asinh_p, lambda g, x: div(g, sqrt(add(square(x), 1))))
batching.defbatch_unop(asinh_p)

acosh_p = unop("acosh", np.arccosh)


def acosh(x):
    return acosh_p.bind(x)


ad.defjvp(acosh_p, lambda g, x: div(g, sqrt(sub(square(x), 1))))
batching.defbatch_unop(acosh_p)

atanh_p = unop("atanh", np.arctanh)


def atanh(x):
    return atanh_p.bind(x)


ad.defjvp(atanh_p, lambda g, x: div(g, sub(1, square(x))))
batching.defbatch_unop(atanh_p)

sqrt_p = unop("sqrt", np.sqrt)


def sqrt(x):
    return sqrt_p.bind(x)


ad.defjvp2(sqrt_p, lambda g, ans, x: div(g, mul(ans, 2)))
batching.defbatch_unop(sqrt_p)

rsqrt_p = unop("rsqrt", lambda x: 1 / np.sqrt(x))


def rsqrt(x):
    return rsqrt_p.bind(x)


ad.defjvp2(rsqrt_p, lambda g, ans, x: mul(g, mul(div(ans, x), -0.5)))
batching.defbatch_unop(rsqrt_p)

# --------------------------------------------------------------------------- comparisons

eq_p = binop("eq", np.equal, accepted=ANY, result_dtype=np.dtype(bool))
ne_p = binop("ne", np.not_equal, accepted=ANY, result_dtype=np.dtype(bool))
lt_p = binop("lt", np.less, accepted=ANY, result_dtype=np.dtype(bool))
le_p = binop("le", np.less_equal, accepted=ANY, result_dtype=np.dtype(bool))
gt_p = binop("gt", np.greater, accepted=ANY, result_dtype=np.dtype(bool))
ge_p = binop("ge", np.greater_equal, accepted=ANY, result_dtype=np.dtype(bool))
for _p in (eq_p, ne_p, lt_p, le_p, gt_p, ge_p):
    ad.defjvp_zero(_p)
    batching.defbatch_elementwise(_p)


def eq(x, y):
    return eq_p.bind(*_match(x, y))


def ne(x, y):
    return ne_p.bind(*_match(x, y))


def lt(x, y):
    return lt_p.bind(*_match(x, y))


def le(x, y):
    return le_p.bind(*_match(x, y))


def gt(x, y):
    return gt_p.bind(*_match(x, y))


def ge(x, y):
    return ge_p.bind(*_match(x, y))


is_finite_p = unop("is_finite", np.isfinite, result_dtype=np.dtype(bool))


def is_finite(x):
    return is_finite_p.bind(x)


ad.defjvp_zero(is_finite_p)
batching.defbatch_unop(is_finite_p)

# --------------------------------------------------------------------------- logic (bool or int)

and_p = binop("and", np.bitwise_and, accepted=ANY)
or_p = binop("or", np.bitwise_or, accepted=ANY)
xor_p = binop("xor", np.bitwise_xor, accepted=ANY)
not_p = unop("not", lambda x: np.logical_not(x) if x.dtype == bool else np.invert(x), ANY)
for _p in (and_p, or_p, xor_p):
    ad.defjvp_zero(_p)
    batching.defbatch_elementwise(_p)
ad.defjvp_zero(not_p)
batching.defbatch_unop(not_p)


def bitwise_and(x, y):
    return and_p.bind(*_match(x, y))


def bitwise_or(x, y):
    return or_p.bind(*_match(x, y))


def bitwise_xor(x, y):
    return xor_p.bind(*_match(x, y))


def bitwise_not(x):
    return not_p.bind(x)


# --------------------------------------------------------------------------- select_n


def _select_n_abstract(which, *cases):
    if not cases:
        raise TypeError("select_n needs at least one case")
    first = cases[0]
    for case in cases[1:]:
        if case.shape != first.shape or case.dtype != first.dtype:
            raise TypeError(f"select_n cases must agree, got {first} and {case}")
    if which.shape not in ((), first.shape):
        raise ValueError(f"select_n predicate shape {which.shape} must be () or {first.shape}")
    if which.dtype.kind not in "bi":
        raise TypeError(f"select_n predicate must be bool or int, got {which.dtype}")
    if which.dtype == bool and len(cases) > 2:
        raise TypeError("a boolean select_n predicate selects between exactly two cases")
    return ShapedArray(first.shape, first.dtype, all(c.weak_type for c in cases))


def _select_n_impl(which, *cases):
    which = np.asarray(which)
    if which.dtype == bool:
        return np.where(which, cases[-1], cases[0])
    return np.choose(which, cases)


select_n_p = primitive("select_n", _select_n_abstract, _select_n_impl)


def select_n(which, *cases):
    """``cases[which]`` elementwise; a bool ``which`` picks ``cases[1]`` where True."""
    return select_n_p.bind(which, *cases)


def _select_n_transpose(ct, which, *cases):
    zeros = lax.full_like(ct, 0)
    return [None] + [
        select_n(which, *[ct if j == i else zeros for j in range(len(cases))])
        if isinstance(case, UndefPrimal)
        else None
        for i, case in enumerate(cases)
    ]


# Linear in the cases, with the predicate held fixed.
ad.deflinear(select_n_p, _select_n_transpose, nonlinear_argnums=(0,))


def _select_n_batch(args, batched):
    which, *cases = args
    size = batching.axis_size(args, batched)
    # The cases all get the batch axis (select_n needs equal case shapes).
    cases = [c if b else batching.broadcast_batch(c, size) for c, b in zip(cases, batched[1:])]
    shape = core.get_aval(cases[0]).shape
    which_shape = core.get_aval(which).shape
    if batched[0] and which_shape != shape:
        # NB: a batched 0-d predicate picks a whole case per batch element; the primitive
        # takes a () or a full-shape predicate, so it is broadcast to the cases' shape.
        which = lax.broadcast_in_dim(which, shape, (0,))
    elif not batched[0] and which_shape != ():
        which = batching.broadcast_batch(which, size)
    return select_n(which, *cases), True


batching.batch_rules[select_n_p] = _select_n_batch

# --------------------------------------------------------------------------- convert_element_type


def _convert_abstract(x, *, new_dtype, weak_type):
    return ShapedArray(x.shape, new_dtype, weak_type)


def _convert_impl(x, *, new_dtype, weak_type):
    return np.asarray(x).astype(new_dtype)


convert_element_type_p = primitive(
    "convert_element_type",
    _convert_abstract,
    _convert_impl,
    pp=lambda p: {"new_dtype": p["new_dtype"]},
)


def convert_element_type(x, new_dtype, weak_type=False):
    new_dtype = np.dtype(new_dtype)
    aval = core.get_aval(x)
    if aval.dtype == new_dtype and aval.weak_type == weak_type:
        return x
    if not isinstance(x, core.Tracer):
        return np.asarray(x).astype(new_dtype)
    return convert_element_type_p.bind(x, new_dtype=new_dtype, weak_type=bool(weak_type))


def _convert_jvp(g, x, *, new_dtype, weak_type):
    # Only float -> float casts carry a tangent (casts to or from integers are constants).
    if core.get_aval(x).dtype.kind != "f" or new_dtype.kind != "f":
        return None
    return convert_element_type_p.bind(g, new_dtype=new_dtype, weak_type=False)


def _convert_transpose(ct, x, *, new_dtype, weak_type):
    return [convert_element_type(ct, x.aval.dtype)]


ad.defjvp(convert_element_type_p, _convert_jvp)
ad.deftranspose(convert_element_type_p, _convert_transpose)
batching.defbatch_unop(convert_element_type_p)

# --------------------------------------------------------------------------- stop_gradient

stop_gradient_p = unop("stop_gradient", lambda x: x, accepted=ANY)
stop_gradient_p.stops_gradient = True


def stop_gradient(x):
    return stop_gradient_p.bind(x)


# NB: the zero rule binds stop_gradient on the primal again, so the primal stays stopped
# for every outer transform (nested grad).
ad.defjvp_zero(stop_gradient_p)
batching.defbatch_unop(stop_gradient_p)
