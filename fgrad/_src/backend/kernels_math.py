"""Vectorizable exp, expm1, log, tanh, sin and cos for float32 and float64.

numba lowers ``np.exp`` and friends to scalar libm calls (no SIMD math library
here), which is ~5-10x slower than NumPy's SIMD loops. These versions use only
arithmetic, bit casts and selects, so LLVM vectorizes the loops that call them.
Each has the classic shape: reduce the argument exactly (Cody-Waite), evaluate a
polynomial, rebuild the result by writing exponent bits; out-of-range inputs are
fixed by selects (exp, expm1, tanh, log) or by a scalar libm pass over the few
elements the fast path cannot reduce accurately (sin and cos of huge arguments).
Accuracy is within a few ulp of NumPy's (tests/test_interpreter.py measures it).

Use them through the generic stubs (``vexp(x)`` etc.): an ``overload`` picks the
float32 or float64 implementation at compile time.
"""

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

from fgrad._src.backend.kernels_common import kernel

# --------------------------------------------------------------------------- bit casts


@intrinsic
def _f64_bits(typingctx, x):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def _f64_from_bits(typingctx, b):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@intrinsic
def _f32_bits(typingctx, x):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.int32(types.float32), codegen


@intrinsic
def _f32_from_bits(typingctx, b):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


# --------------------------------------------------------------------------- float64

_SHIFT64 = 6755399441055744.0  # 1.5 * 2**52: x + S - S rounds x to an integer
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10


@kernel(inline="always")
def _pow2_64(k):
    """2.0 ** k for integer-valued int64 ``k`` in [-1022, 1023]."""
    return _f64_from_bits((k + 1023) << 52)


@kernel(inline="always")
def _reduce_ln2_64(x):
    t = x * _LOG2E + _SHIFT64
    kf = t - _SHIFT64
    k = _f64_bits(t) - _f64_bits(_SHIFT64)  # the integer in the low mantissa bits
    r = (x - kf * _LN2_HI) - kf * _LN2_LO
    return r, k


@kernel(inline="always")
def _expm1_poly64(r):
    # Taylor series of exp(r) - 1 on |r| <= ln(2)/2 to degree 13 (error < 1e-17).
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    return r + (r * r) * p


@kernel(inline="always")
def exp64(x):
    xc = min(max(x, -745.2), 709.8)
    r, k = _reduce_ln2_64(xc)
    p = _expm1_poly64(r) + 1.0
    k1 = k >> 1  # two factors keep each power of two normal (subnormal results)
    y = p * _pow2_64(k1) * _pow2_64(k - k1)
    y = np.inf if x > 709.782712893384 else y
    y = 0.0 if x < -745.1332191019412 else y
    return x if x != x else y


@kernel(inline="always")
def expm1_64(x):
    xc = min(max(x, -40.0), 709.8)
    r, k = _reduce_ln2_64(xc)
    p = _expm1_poly64(r)
    k1 = k >> 1
    s1 = _pow2_64(k1)
    s2 = _pow2_64(k - k1)
    s = s1 * s2  # 2**k (inf for k = 1024: the second form covers large k)
    y = s * p + (s - 1.0) if k < 60 else ((p + 1.0) * s1) * s2 - 1.0
    y = np.inf if x > 709.782712893384 else y
    y = -1.0 if x < -40.0 else y
    return x if x != x or x == 0.0 else y  # nan, and +-0 with its sign


_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01


@kernel(inline="always")
def log64(x):
    # fdlibm's log: x = 2**e * m with m in [sqrt(2)/2, sqrt(2)), f = m - 1, s = f / (2 + f).
    sub = x < 2.2250738585072014e-308
    xs = x * 18014398509481984.0 if sub else x  # 2**54 lifts subnormals
    bits = _f64_bits(xs)
    hx = (bits >> 32) & 0xFFFFFFFF
    hx = hx + (0x3FF00000 - 0x3FE6A09E)  # so that the exponent field rounds m into range
    e = (hx >> 20) - 1023
    e = e - 54 if sub else e
    hm = (hx & 0x000FFFFF) + 0x3FE6A09E
    m = _f64_from_bits((hm << 32) | (bits & 0xFFFFFFFF))
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    hfsq = 0.5 * f * f
    ef = np.float64(e)
    y = ef * _LN2_HI - ((hfsq - (s * (hfsq + t1 + t2) + ef * _LN2_LO)) - f)
    y = x if x == np.inf else y
    y = -np.inf if x == 0.0 else y
    return np.nan if x < 0.0 else (x if x != x else y)


@kernel(inline="always")
def log1p64(x):
    # log1p(x) = log(u) * x / (u - 1) with u = 1 + x rounded: the factor corrects the
    # rounding of u (Goldberg's trick); exact x when u == 1.
    u = 1.0 + x
    y = log64(u)
    y = x if u == 1.0 else y * (x / (u - 1.0))
    return y if u != np.inf else u


@kernel(inline="always")
def tanh64(x):
    a = abs(x)
    t = expm1_64(2.0 * min(a, 22.0))
    y = t / (t + 2.0)
    y = 1.0 if a > 22.0 else y
    y = -y if x < 0.0 else y
    return x if x != x or x == 0.0 else y  # nan, and +-0 with its sign


_PIO2_1 = 1.57079632673412561417e+00  # first 33 bits of pi/2
_PIO2_2 = 6.07710050630396597660e-11  # next 33 bits
_PIO2_3 = 2.02226624879595063154e-21  # the rest
_INVPIO2 = 6.36619772367581382433e-01
SINCOS_LIMIT64 = 1.0e5  # |x| above this goes to libm (argument reduction needs more bits)


@kernel(inline="always")
def _sincos64(x):
    xc = x if abs(x) <= SINCOS_LIMIT64 else 0.0
    t = xc * _INVPIO2 + _SHIFT64
    kf = t - _SHIFT64
    n = _f64_bits(t) - _f64_bits(_SHIFT64)
    r = ((xc - kf * _PIO2_1) - kf * _PIO2_2) - kf * _PIO2_3
    z = r * r
    s = r + r * z * (-1.66666666666666324348e-01 + z * (8.33333333332248946124e-03 + z * (
        -1.98412698298579493134e-04 + z * (2.75573137070700676789e-06 + z * (
            -2.50507602534068634195e-08 + z * 1.58969099521155010221e-10)))))
    s = r if r == 0.0 else s  # sin(-0.0) is -0.0; r * z * (...) would add +0.0
    cp = z * (4.16666666666666019037e-02 + z * (-1.38888888888741095749e-03 + z * (
        2.48015872894767294178e-05 + z * (-2.75573143513906633035e-07 + z * (
            2.08757232129817482790e-09 + z * -1.13596475577881948265e-11)))))
    hz = 0.5 * z
    w = 1.0 - hz
    c = w + (((1.0 - w) - hz) + z * cp)
    return s, c, n


@kernel(inline="always")
def sin64(x):
    s, c, n = _sincos64(x)
    y = c if n & 1 else s
    return -y if n & 2 else y


@kernel(inline="always")
def cos64(x):
    s, c, n = _sincos64(x)
    y = s if n & 1 else c
    return -y if (n + 1) & 2 else y


@kernel(inline="always")
def expx64(x, m1):
    """exp(x), or expm1(x) when ``m1``: one body, so a loop serving both compiles once."""
    lo = -40.0 if m1 else -745.2
    xc = min(max(x, lo), 709.8)
    r, k = _reduce_ln2_64(xc)
    p = _expm1_poly64(r)
    k1 = k >> 1  # two factors keep each power of two normal (subnormal results)
    s1 = _pow2_64(k1)
    s2 = _pow2_64(k - k1)
    if m1:
        s = s1 * s2
        y = s * p + (s - 1.0) if k < 60 else ((p + 1.0) * s1) * s2 - 1.0
    else:
        y = (p + 1.0) * s1 * s2
    y = np.inf if x > 709.782712893384 else y
    if m1:
        y = -1.0 if x < -40.0 else y
        y = x if x == 0.0 else y  # expm1 keeps the sign of a zero
    else:
        y = 0.0 if x < -745.1332191019412 else y
    return x if x != x else y


@kernel(inline="always")
def sincos64(x, shift):
    """sin(x), or cos(x) = sin(x + pi/2) when ``shift`` is 1: one body for both."""
    s, c, n = _sincos64(x)
    q = n + shift
    y = c if q & 1 else s
    return -y if q & 2 else y


@kernel(inline="always")
def sin_and_cos64(x):
    s, c, n = _sincos64(x)
    sv = c if n & 1 else s
    cv = s if n & 1 else c
    return (-sv if n & 2 else sv), (-cv if (n + 1) & 2 else cv)


# --------------------------------------------------------------------------- float32

_SHIFT32 = np.float32(12582912.0)  # 1.5 * 2**23
_LOG2E32 = np.float32(1.44269504)
_LN2_HI32 = np.float32(6.9314575195e-01)
_LN2_LO32 = np.float32(1.4286067653e-06)


@kernel(inline="always")
def _reduce_ln2_32(x):
    t = x * _LOG2E32 + _SHIFT32
    kf = t - _SHIFT32
    k = _f32_bits(t) - _f32_bits(_SHIFT32)
    r = (x - kf * _LN2_HI32) - kf * _LN2_LO32
    return r, k


@kernel(inline="always")
def _pow2_32(k):
    return _f32_from_bits(np.int32((k + 127) << 23))


@kernel(inline="always")
def _expm1_poly32(r):
    # Taylor series of exp(r) - 1 on |r| <= ln(2)/2 to degree 8 (error < 2e-10).
    p = np.float32(1.0 / 40320.0)
    p = p * r + np.float32(1.0 / 5040.0)
    p = p * r + np.float32(1.0 / 720.0)
    p = p * r + np.float32(1.0 / 120.0)
    p = p * r + np.float32(1.0 / 24.0)
    p = p * r + np.float32(1.0 / 6.0)
    p = p * r + np.float32(0.5)
    return r + (r * r) * p


@kernel(inline="always")
def exp32(x):
    xc = min(max(x, np.float32(-104.0)), np.float32(88.8))
    r, k = _reduce_ln2_32(xc)
    p = _expm1_poly32(r) + np.float32(1.0)
    k1 = k >> 1
    y = p * _pow2_32(k1) * _pow2_32(k - k1)
    y = np.float32(np.inf) if x > np.float32(88.72283) else y
    y = np.float32(0.0) if x < np.float32(-103.97208) else y
    return x if x != x else y


@kernel(inline="always")
def expm1_32(x):
    xc = min(max(x, np.float32(-20.0)), np.float32(88.8))
    r, k = _reduce_ln2_32(xc)
    p = _expm1_poly32(r)
    k1 = k >> 1
    s1 = _pow2_32(k1)
    s2 = _pow2_32(k - k1)
    s = s1 * s2
    y = s * p + (s - np.float32(1.0)) if k < 30 else ((p + np.float32(1.0)) * s1) * s2 \
        - np.float32(1.0)
    y = np.float32(np.inf) if x > np.float32(88.72283) else y
    y = np.float32(-1.0) if x < np.float32(-20.0) else y
    return x if x != x or x == np.float32(0.0) else y  # nan, and +-0 with its sign


@kernel(inline="always")
def log32(x):
    sub = x < np.float32(1.17549435e-38)
    xs = x * np.float32(33554432.0) if sub else x  # 2**25
    ix = _f32_bits(xs) + np.int32(0x3F800000 - 0x3F3504F3)
    e = (ix >> 23) - np.int32(127)
    e = e - np.int32(25) if sub else e
    m = _f32_from_bits((ix & np.int32(0x007FFFFF)) + np.int32(0x3F3504F3))
    f = m - np.float32(1.0)
    s = f / (np.float32(2.0) + f)
    z = s * s
    w = z * z
    t1 = w * (np.float32(0.40000972152) + w * np.float32(0.24279078841))
    t2 = z * (np.float32(0.66666662693) + w * np.float32(0.28498786688))
    hfsq = np.float32(0.5) * f * f
    ef = np.float32(e)
    y = ef * np.float32(6.9313812256e-01) - (
        (hfsq - (s * (hfsq + t1 + t2) + ef * np.float32(9.0580006145e-06))) - f)
    y = x if x == np.float32(np.inf) else y
    y = np.float32(-np.inf) if x == np.float32(0.0) else y
    return np.float32(np.nan) if x < np.float32(0.0) else (x if x != x else y)


@kernel(inline="always")
def log1p32(x):
    u = np.float32(1.0) + x
    y = log32(u)
    y = x if u == np.float32(1.0) else y * (x / (u - np.float32(1.0)))
    return y if u != np.float32(np.inf) else u


@kernel(inline="always")
def tanh32(x):
    a = abs(x)
    t = expm1_32(np.float32(2.0) * min(a, np.float32(10.0)))
    y = t / (t + np.float32(2.0))
    y = np.float32(1.0) if a > np.float32(10.0) else y
    y = -y if x < np.float32(0.0) else y
    return x if x != x or x == np.float32(0.0) else y  # nan, and +-0 with its sign


SINCOS_LIMIT32 = np.float32(8192.0)


@kernel(inline="always")
def _sincos32(x):
    xc = x if abs(x) <= SINCOS_LIMIT32 else np.float32(0.0)
    t = xc * np.float32(0.63661977236) + _SHIFT32
    kf = t - _SHIFT32
    n = _f32_bits(t) - _f32_bits(_SHIFT32)
    # pi/2 in four pieces, the first three of 11 bits so k * piece is exact for |k| < 2**13.
    r = ((xc - kf * np.float32(1.5703125)) - kf * np.float32(4.837512969970703e-4)) \
        - kf * np.float32(7.549533620476723e-08)
    r = r - kf * np.float32(2.5633440682570896e-12)
    z = r * r
    s = r + r * z * (np.float32(-1.6666654611e-1) + z * (np.float32(8.3321608736e-3)
                                                          + z * np.float32(-1.9515295891e-4)))
    s = r if r == np.float32(0.0) else s  # sin(-0.0) is -0.0
    c = np.float32(1.0) - np.float32(0.5) * z + z * z * (
        np.float32(4.166664568298827e-2) + z * (np.float32(-1.388731625493765e-3)
                                                + z * np.float32(2.443315711809948e-5)))
    return s, c, n


@kernel(inline="always")
def sin32(x):
    s, c, n = _sincos32(x)
    y = c if n & 1 else s
    return -y if n & 2 else y


@kernel(inline="always")
def cos32(x):
    s, c, n = _sincos32(x)
    y = s if n & 1 else c
    return -y if (n + 1) & 2 else y


@kernel(inline="always")
def expx32(x, m1):
    lo = np.float32(-20.0) if m1 else np.float32(-104.0)
    xc = min(max(x, lo), np.float32(88.8))
    r, k = _reduce_ln2_32(xc)
    p = _expm1_poly32(r)
    k1 = k >> 1
    s1 = _pow2_32(k1)
    s2 = _pow2_32(k - k1)
    one = np.float32(1.0)
    if m1:
        s = s1 * s2
        y = s * p + (s - one) if k < 30 else ((p + one) * s1) * s2 - one
    else:
        y = (p + one) * s1 * s2
    y = np.float32(np.inf) if x > np.float32(88.72283) else y
    if m1:
        y = np.float32(-1.0) if x < np.float32(-20.0) else y
        y = x if x == np.float32(0.0) else y  # expm1 keeps the sign of a zero
    else:
        y = np.float32(0.0) if x < np.float32(-103.97208) else y
    return x if x != x else y


@kernel(inline="always")
def sincos32(x, shift):
    s, c, n = _sincos32(x)
    q = n + shift
    y = c if q & 1 else s
    return -y if q & 2 else y


@kernel(inline="always")
def sin_and_cos32(x):
    s, c, n = _sincos32(x)
    sv = c if n & 1 else s
    cv = s if n & 1 else c
    return (-sv if n & 2 else sv), (-cv if (n + 1) & 2 else cv)


# --------------------------------------------------------------------------- generic stubs


def _generic(f64, f32):
    def stub(x):
        raise NotImplementedError

    def pick(x):
        if x == types.float64:
            return lambda x: f64(x)
        if x == types.float32:
            return lambda x: f32(x)
        return None

    overload(stub, inline="always")(pick)
    return stub


def _generic2(f64, f32):
    def stub(x, flag):
        raise NotImplementedError

    def pick(x, flag):
        if x == types.float64:
            return lambda x, flag: f64(x, flag)
        if x == types.float32:
            return lambda x, flag: f32(x, flag)
        return None

    overload(stub, inline="always")(pick)
    return stub


vexpx = _generic2(expx64, expx32)  # vexpx(x, False) = exp(x), vexpx(x, True) = expm1(x)


@kernel(inline="always")
def vexpx_in_place(z, n, m1):
    """``z[i] = vexpx(z[i], m1)`` for ``i < n``."""
    # NB: a loop per form. With ``m1`` unknown inside the loop LLVM computes both forms for
    # every element and selects: float64 exp ran 1.6x slower (5.7 vs 3.5 ns per element).
    if m1:
        for i in range(n):
            z[i] = vexpx(z[i], True)
    else:
        for i in range(n):
            z[i] = vexpx(z[i], False)


vsincos = _generic2(sincos64, sincos32)  # vsincos(x, 0) = sin(x), vsincos(x, 1) = cos(x)


vexp = _generic(exp64, exp32)
vexpm1 = _generic(expm1_64, expm1_32)
vlog = _generic(log64, log32)
vlog1p = _generic(log1p64, log1p32)
vtanh = _generic(tanh64, tanh32)
vsin = _generic(sin64, sin32)
vcos = _generic(cos64, cos32)


@kernel(inline="always")
def _limit64(x):
    return SINCOS_LIMIT64


@kernel(inline="always")
def _limit32(x):
    return SINCOS_LIMIT32


vsin_and_cos = _generic(sin_and_cos64, sin_and_cos32)  # (sin(x), cos(x))
sincos_limit = _generic(_limit64, _limit32)  # |x| up to which vsin/vcos are accurate


@kernel(inline="always")
def _cap64(x):
    return 22.0


@kernel(inline="always")
def _cap32(x):
    return np.float32(10.0)


tanh_cap = _generic(_cap64, _cap32)  # tanh(x) rounds to +-1 beyond this
