"""Elementwise kernels: one function per family, one loop per opcode.

The loops are deliberately repetitive: each is a plain counted loop over slices of
the arena, which LLVM vectorizes (a switch inside the loop would block that).
Every kernel takes ``(code, r, arena...)``: ``code[r:]`` is the op's record (see
``lower.py``); it slices its operands out of the arena and returns a status code.
"""

import numpy as np

from fgrad._src.backend.kernels_codes import (  # noqa: F401
    ABS,
    ACOS,
    ACOSH,
    ADD,
    AND,
    ASIN,
    ASINH,
    ATAN,
    ATAN2,
    ATANH,
    CEIL,
    CHECK,
    COS,
    COSH,
    DIV,
    EQ,
    EXP,
    EXPM1,
    FLOOR,
    GE,
    GT,
    IPOW,
    ISFINITE,
    LE,
    LOG,
    LOG1P,
    LOGISTIC,
    LT,
    MAX,
    MIN,
    MUL,
    NE,
    NEG,
    NOT,
    OR,
    POW,
    REM,
    ROUND,
    RSQRT,
    SIGN,
    SIN,
    SINCOS,
    SINH,
    SOFTPLUS,
    SQRT,
    SQUARE,
    ST_CHOICE,
    SUB,
    SV,
    TAN,
    TANH,
    VS,
    VV,
    XOR,
)
from fgrad._src.backend.kernels_common import kernel
from fgrad._src.backend.kernels_math import (
    sincos_limit,
    tanh_cap,
    vexpx_in_place,
    vlog,
    vsin_and_cos,
    vsincos,
)


@kernel(inline="always")
def unary_f(code, r, a, b):
    """Float -> float unary ops (and is_finite -> the bool arena)."""
    op = code[r + 2]
    xo = code[r + 3]
    zo = code[r + 4]
    n = code[r + 5]
    x = a[xo:xo + n]
    one = a.dtype.type(1.0)
    zero = a.dtype.type(0.0)
    if op == ISFINITE:
        zb = b[zo:zo + n]
        for i in range(n):
            zb[i] = np.isfinite(x[i])
        return 0
    z = a[zo:zo + n]
    if op == IPOW:
        _ipow_f(x, z, n, code[r + 6], one, a.dtype.type(code[r + 6]))
        return 0
    if op == SIN or op == COS:
        _sincos(op == SIN, x, z, n)
        return 0
    if op == SINCOS:
        z2o = code[r + 6]
        _sin_and_cos(x, z, a[z2o:z2o + n], n)
        return 0
    if (op == EXP or op == LOGISTIC or op == EXPM1 or op == TANH or op == LOG or op == LOG1P
            or op == SOFTPLUS):
        _transcendental(op, x, z, n, one, zero)
        return 0
    if op == NEG:
        for i in range(n):
            v = x[i]
            z[i] = -v
    elif op == SIGN:
        for i in range(n):
            v = x[i]
            z[i] = one if v > zero else (-one if v < zero else (zero if v == zero else v))
    elif op == FLOOR:
        for i in range(n):
            v = x[i]
            z[i] = np.floor(v)
    elif op == CEIL:
        for i in range(n):
            v = x[i]
            z[i] = np.ceil(v)
    elif op == ROUND:
        for i in range(n):
            v = x[i]
            z[i] = np.rint(v)
    elif op == ABS:
        for i in range(n):
            v = x[i]
            z[i] = np.abs(v)
    elif op == SQUARE:
        for i in range(n):
            v = x[i]
            z[i] = v * v
    elif op == TAN:
        for i in range(n):
            v = x[i]
            z[i] = np.tan(v)
    elif op == ASIN:
        for i in range(n):
            v = x[i]
            z[i] = np.arcsin(v)
    elif op == ACOS:
        for i in range(n):
            v = x[i]
            z[i] = np.arccos(v)
    elif op == ATAN:
        for i in range(n):
            v = x[i]
            z[i] = np.arctan(v)
    elif op == SINH:
        for i in range(n):
            v = x[i]
            z[i] = np.sinh(v)
    elif op == COSH:
        for i in range(n):
            v = x[i]
            z[i] = np.cosh(v)
    elif op == ASINH:
        for i in range(n):
            v = x[i]
            z[i] = np.arcsinh(v)
    elif op == ACOSH:
        for i in range(n):
            v = x[i]
            z[i] = np.arccosh(v)
    elif op == ATANH:
        for i in range(n):
            v = x[i]
            z[i] = np.arctanh(v)
    elif op == SQRT:
        for i in range(n):
            v = x[i]
            z[i] = np.sqrt(v)
    elif op == RSQRT:
        for i in range(n):
            v = x[i]
            z[i] = one / np.sqrt(v)
    return 0


# NB: the polynomial math may fuse a multiply and an add into one FMA ("contract", the
# only fast-math flag used): one rounding instead of two, so the argument reductions are
# at least as exact, NaN/Inf handling is untouched, and the loops run ~1.3-1.5x faster.
POLYNOMIAL_MATH = {"contract"}


@kernel(fastmath=POLYNOMIAL_MATH)
def _sincos(is_sin, x, z, n):
    # The fast path reduces |x| <= sincos_limit accurately; beyond it (and for inf and
    # nan) the whole op uses libm. One loop serves sin and cos (compile time).
    if n == 0:
        return
    lim = sincos_limit(x[0])
    slow = False
    for i in range(n):
        slow |= not (np.abs(x[i]) <= lim)
    if slow:
        for i in range(n):
            z[i] = np.sin(x[i]) if is_sin else np.cos(x[i])
    else:
        shift = 0 if is_sin else 1
        for i in range(n):
            z[i] = vsincos(x[i], shift)


@kernel(fastmath=POLYNOMIAL_MATH)
def _sin_and_cos(x, zs, zc, n):
    if n == 0:
        return
    lim = sincos_limit(x[0])
    slow = False
    for i in range(n):
        slow |= not (np.abs(x[i]) <= lim)
    if slow:
        for i in range(n):
            zs[i] = np.sin(x[i])
            zc[i] = np.cos(x[i])
    else:
        for i in range(n):
            zs[i], zc[i] = vsin_and_cos(x[i])


@kernel(fastmath=POLYNOMIAL_MATH)
def _transcendental(op, x, z, n, one, zero):
    # The polynomials dominate compile time, so each appears in one loop per dtype: the
    # argument is prepared in z, transformed in place (one array: no alias check, the
    # loop vectorizes), then finished. softplus(x) = max(x, 0) + log1p(exp(-|x|)) runs
    # the exp loop, then the log1p loop.
    if op == EXP or op == LOGISTIC or op == EXPM1 or op == TANH or op == SOFTPLUS:
        cap = tanh_cap(one)
        if op == EXP or op == EXPM1:
            for i in range(n):
                z[i] = x[i]
        elif op == LOGISTIC or op == SOFTPLUS:
            for i in range(n):
                z[i] = -np.abs(x[i])
        else:
            for i in range(n):
                z[i] = (one + one) * min(np.abs(x[i]), cap)
        vexpx_in_place(z, n, op == EXPM1 or op == TANH)
        if op == LOGISTIC:  # exp(-|x|) never overflows; the stable form on each side of 0
            for i in range(n):
                e = z[i]
                z[i] = one / (one + e) if x[i] >= zero else e / (one + e)
        elif op == TANH:  # tanh |x| = t / (t + 2) with t = expm1(2 |x|)
            for i in range(n):
                v = x[i]
                t = z[i]
                y = one if np.abs(v) > cap else t / (t + one + one)
                y = -y if v < zero else y
                z[i] = v if v != v or v == zero else y  # nan, and +-0 with its sign
    if op == LOG or op == LOG1P or op == SOFTPLUS:
        if op != SOFTPLUS:
            for i in range(n):
                z[i] = x[i]
        shift = zero if op == LOG else one
        for i in range(n):
            v = z[i]
            u = shift + v
            y = vlog(u)
            # log1p: log(u) v / (u - 1) corrects the rounding of u = 1 + v
            w = v if u == one else y * (v / (u - one))
            w = w if (u - u == zero or u < zero) else u  # +inf stays inf
            z[i] = y if op == LOG else w
        if op == SOFTPLUS:
            for i in range(n):
                v = x[i]
                z[i] = (v if v > zero else zero) + z[i]  # a NaN x made z NaN already


@kernel
def _ipow_f(x, z, n, y, one, fy):
    if y == 0:
        for i in range(n):
            z[i] = one
    elif y == 1:
        for i in range(n):
            z[i] = x[i]
    elif y == 2:
        for i in range(n):
            z[i] = x[i] * x[i]
    elif y == 3:
        for i in range(n):
            z[i] = x[i] * x[i] * x[i]
    elif y == -1:
        for i in range(n):
            z[i] = one / x[i]
    elif y == -2:
        for i in range(n):
            z[i] = one / (x[i] * x[i])
    else:
        for i in range(n):
            z[i] = x[i] ** fy


@kernel(inline="always")
def binary_f(code, r, a):
    """Float x float -> float ops; ``mode`` says which operand (if any) is a scalar."""
    op = code[r + 2]
    xo = code[r + 3]
    yo = code[r + 4]
    zo = code[r + 5]
    n = code[r + 6]
    mode = code[r + 7]
    x = a[xo:xo + (1 if mode == SV else n)]
    y = a[yo:yo + (1 if mode == VS else n)]
    z = a[zo:zo + n]
    if op == ADD:
        if mode == VV:
            for i in range(n):
                u = x[i]
                v = y[i]
                z[i] = u + v
        else:
            v = y[0]
            for i in range(n):
                u = x[i]
                z[i] = u + v
    elif op == SUB:
        if mode == VV:
            for i in range(n):
                u = x[i]
                v = y[i]
                z[i] = u - v
        elif mode == SV:
            u = x[0]
            for i in range(n):
                v = y[i]
                z[i] = u - v
        else:
            v = y[0]
            for i in range(n):
                u = x[i]
                z[i] = u - v
    elif op == MUL:
        if mode == VV:
            for i in range(n):
                u = x[i]
                v = y[i]
                z[i] = u * v
        else:
            v = y[0]
            for i in range(n):
                u = x[i]
                z[i] = u * v
    elif op == DIV:
        if mode == VV:
            for i in range(n):
                u = x[i]
                v = y[i]
                z[i] = u / v
        elif mode == SV:
            u = x[0]
            for i in range(n):
                v = y[i]
                z[i] = u / v
        else:
            v = y[0]
            for i in range(n):
                u = x[i]
                z[i] = u / v
    elif op == REM:
        if mode == VV:
            for i in range(n):
                u = x[i]
                v = y[i]
                z[i] = np.fmod(u, v)
        elif mode == SV:
            u = x[0]
            for i in range(n):
                v = y[i]
                z[i] = np.fmod(u, v)
        else:
            v = y[0]
            for i in range(n):
                u = x[i]
                z[i] = np.fmod(u, v)
    elif op == MAX:
        if mode == VV:
            for i in range(n):
                u = x[i]
                v = y[i]
                z[i] = u if (u > v or u != u) else v
        else:
            v = y[0]
            for i in range(n):
                u = x[i]
                z[i] = u if (u > v or u != u) else v
    elif op == MIN:
        if mode == VV:
            for i in range(n):
                u = x[i]
                v = y[i]
                z[i] = u if (u < v or u != u) else v
        else:
            v = y[0]
            for i in range(n):
                u = x[i]
                z[i] = u if (u < v or u != u) else v
    elif op == POW:
        if mode == VV:
            for i in range(n):
                u = x[i]
                v = y[i]
                z[i] = u ** v
        elif mode == SV:
            u = x[0]
            for i in range(n):
                v = y[i]
                z[i] = u ** v
        else:
            v = y[0]
            for i in range(n):
                u = x[i]
                z[i] = u ** v
    elif op == ATAN2:
        if mode == VV:
            for i in range(n):
                u = x[i]
                v = y[i]
                z[i] = np.arctan2(u, v)
        elif mode == SV:
            u = x[0]
            for i in range(n):
                v = y[i]
                z[i] = np.arctan2(u, v)
        else:
            v = y[0]
            for i in range(n):
                u = x[i]
                z[i] = np.arctan2(u, v)
    return 0


@kernel(inline="always")
def unary_i(code, r, a):
    """int64 unary ops."""
    op = code[r + 2]
    xo = code[r + 3]
    zo = code[r + 4]
    n = code[r + 5]
    x = a[xo:xo + n]
    z = a[zo:zo + n]
    if op == CHECK:  # select_n's integer predicate must lie in [0, ncases)
        nc = code[r + 6]
        for i in range(n):
            if x[i] < 0 or x[i] >= nc:
                return ST_CHOICE
        return 0
    if op == IPOW:
        y = code[r + 6]
        for i in range(n):
            base = x[i]
            acc = base - base + 1
            e = y
            while e > 0:
                if e & 1:
                    acc *= base
                base *= base
                e >>= 1
            z[i] = acc
        return 0
    elif op == NEG:
        for i in range(n):
            v = x[i]
            z[i] = -v
    elif op == SIGN:
        for i in range(n):
            v = x[i]
            z[i] = (v > 0) - (v < 0)
    elif op == ABS:
        for i in range(n):
            v = x[i]
            z[i] = abs(v)
    elif op == SQUARE:
        for i in range(n):
            v = x[i]
            z[i] = v * v
    elif op == NOT:
        for i in range(n):
            v = x[i]
            z[i] = ~v
    return 0


@kernel(inline="always")
def _idiv(u, v):
    # Truncating division; x / 0 is 0 (the reference's convention). NB: no abs(), which
    # wraps at INT64_MIN; x / -1 negates without dividing (INT64_MIN // -1 traps).
    if v == 0:
        return u - u
    if v == -1:
        return -u
    q = u // v  # Python's floor division: round toward zero instead
    if q * v != u and (u < 0) != (v < 0):
        q += 1
    return q


@kernel(inline="always")
def _irem(u, v):
    # C fmod: the sign of the dividend; x % 0 is 0. NB: no abs(), which wraps at
    # INT64_MIN; x % -1 is 0 without dividing (INT64_MIN % -1 traps in hardware).
    if v == 0 or v == -1:
        return u - u
    m = u % v  # Python's remainder: the sign of the divisor
    if m != 0 and (m < 0) != (u < 0):
        m -= v
    return m


@kernel(inline="always")
def _ipow(u, v):
    # u ** v by squaring, wrapping on overflow as NumPy's int64 power does. A negative
    # exponent gives the truncated 1 / u ** -v (the reference's convention; NumPy raises):
    # 1 for u == 1, +-1 for u == -1, else 0.
    if v < 0:
        if u == 1:
            return u
        if u == -1:
            return u if v % 2 != 0 else -u
        return u - u
    acc = u - u + 1
    while v > 0:
        if v & 1:
            acc *= u
        u *= u
        v >>= 1
    return acc


@kernel(inline="always")
def _int_div_rem_pow(op, u, v):
    if op == DIV:
        return _idiv(u, v)
    if op == REM:
        return _irem(u, v)
    return _ipow(u, v)


@kernel(inline="always")
def binary_i(code, r, a):
    """int64 x int64 -> int64 ops."""
    op = code[r + 2]
    xo = code[r + 3]
    yo = code[r + 4]
    zo = code[r + 5]
    n = code[r + 6]
    mode = code[r + 7]
    x = a[xo:xo + (1 if mode == SV else n)]
    y = a[yo:yo + (1 if mode == VS else n)]
    z = a[zo:zo + n]
    if op == ADD:
        if mode == VV:
            for i in range(n):
                u = x[i]
                v = y[i]
                z[i] = u + v
        else:
            v = y[0]
            for i in range(n):
                u = x[i]
                z[i] = u + v
    elif op == SUB:
        if mode == VV:
            for i in range(n):
                u = x[i]
                v = y[i]
                z[i] = u - v
        elif mode == SV:
            u = x[0]
            for i in range(n):
                v = y[i]
                z[i] = u - v
        else:
            v = y[0]
            for i in range(n):
                u = x[i]
                z[i] = u - v
    elif op == MUL:
        if mode == VV:
            for i in range(n):
                u = x[i]
                v = y[i]
                z[i] = u * v
        else:
            v = y[0]
            for i in range(n):
                u = x[i]
                z[i] = u * v
    elif op == DIV or op == REM or op == POW:
        # NB: one loop for the three calls; op is loop-invariant, so LLVM unswitches it.
        if mode == VV:
            for i in range(n):
                u = x[i]
                v = y[i]
                z[i] = _int_div_rem_pow(op, u, v)
        elif mode == SV:
            u = x[0]
            for i in range(n):
                v = y[i]
                z[i] = _int_div_rem_pow(op, u, v)
        else:
            v = y[0]
            for i in range(n):
                u = x[i]
                z[i] = _int_div_rem_pow(op, u, v)
    elif op == MAX:
        if mode == VV:
            for i in range(n):
                u = x[i]
                v = y[i]
                z[i] = max(u, v)
        else:
            v = y[0]
            for i in range(n):
                u = x[i]
                z[i] = max(u, v)
    elif op == MIN:
        if mode == VV:
            for i in range(n):
                u = x[i]
                v = y[i]
                z[i] = min(u, v)
        else:
            v = y[0]
            for i in range(n):
                u = x[i]
                z[i] = min(u, v)
    elif op == AND:
        if mode == VV:
            for i in range(n):
                u = x[i]
                v = y[i]
                z[i] = u & v
        else:
            v = y[0]
            for i in range(n):
                u = x[i]
                z[i] = u & v
    elif op == OR:
        if mode == VV:
            for i in range(n):
                u = x[i]
                v = y[i]
                z[i] = u | v
        else:
            v = y[0]
            for i in range(n):
                u = x[i]
                z[i] = u | v
    elif op == XOR:
        if mode == VV:
            for i in range(n):
                u = x[i]
                v = y[i]
                z[i] = u ^ v
        else:
            v = y[0]
            for i in range(n):
                u = x[i]
                z[i] = u ^ v
    return 0


@kernel(inline="always")
def bool_ops(code, r, a):
    """Logic on the bool arena (uint8 holding 0 or 1)."""
    op = code[r + 2]
    xo = code[r + 3]
    yo = code[r + 4]
    zo = code[r + 5]
    n = code[r + 6]
    mode = code[r + 7]
    z = a[zo:zo + n]
    if op == NOT:
        x = a[xo:xo + n]
        for i in range(n):
            z[i] = x[i] ^ 1
        return 0
    x = a[xo:xo + (1 if mode == SV else n)]
    y = a[yo:yo + (1 if mode == VS else n)]
    if op == AND:
        if mode == VV:
            for i in range(n):
                u = x[i]
                v = y[i]
                z[i] = u & v
        else:
            v = y[0]
            for i in range(n):
                u = x[i]
                z[i] = u & v
    elif op == OR:
        if mode == VV:
            for i in range(n):
                u = x[i]
                v = y[i]
                z[i] = u | v
        else:
            v = y[0]
            for i in range(n):
                u = x[i]
                z[i] = u | v
    elif op == XOR:
        if mode == VV:
            for i in range(n):
                u = x[i]
                v = y[i]
                z[i] = u ^ v
        else:
            v = y[0]
            for i in range(n):
                u = x[i]
                z[i] = u ^ v
    return 0


@kernel(inline="always")
def compare(code, r, a, b):
    """Comparisons of any class into the bool arena ``b``."""
    op = code[r + 2]
    xo = code[r + 4]
    yo = code[r + 5]
    zo = code[r + 6]
    n = code[r + 7]
    mode = code[r + 8]
    x = a[xo:xo + (1 if mode == SV else n)]
    y = a[yo:yo + (1 if mode == VS else n)]
    z = b[zo:zo + n]
    if op == EQ:
        if mode == VV:
            for i in range(n):
                u = x[i]
                v = y[i]
                z[i] = u == v
        else:
            v = y[0]
            for i in range(n):
                u = x[i]
                z[i] = u == v
    elif op == NE:
        if mode == VV:
            for i in range(n):
                u = x[i]
                v = y[i]
                z[i] = u != v
        else:
            v = y[0]
            for i in range(n):
                u = x[i]
                z[i] = u != v
    elif op == LT:
        if mode == VV:
            for i in range(n):
                u = x[i]
                v = y[i]
                z[i] = u < v
        else:
            v = y[0]
            for i in range(n):
                u = x[i]
                z[i] = u < v
    elif op == LE:
        if mode == VV:
            for i in range(n):
                u = x[i]
                v = y[i]
                z[i] = u <= v
        else:
            v = y[0]
            for i in range(n):
                u = x[i]
                z[i] = u <= v
    elif op == GT:
        if mode == VV:
            for i in range(n):
                u = x[i]
                v = y[i]
                z[i] = u > v
        else:
            v = y[0]
            for i in range(n):
                u = x[i]
                z[i] = u > v
    elif op == GE:
        if mode == VV:
            for i in range(n):
                u = x[i]
                v = y[i]
                z[i] = u >= v
        else:
            v = y[0]
            for i in range(n):
                u = x[i]
                z[i] = u >= v
    return 0


@kernel(inline="always")
def select(code, r, w, a):
    """``select_n`` with a bool predicate from ``w`` and two cases from ``a``
    (lowering turns integer predicates into bool ones)."""
    wo = code[r + 4]
    wscalar = code[r + 5]
    zo = code[r + 6]
    n = code[r + 7]
    c0o = code[r + 9]
    s0 = code[r + 10]
    c1o = code[r + 11]
    s1 = code[r + 12]
    z = a[zo:zo + n]
    if wscalar:
        co, sc = (c1o, s1) if w[wo] != 0 else (c0o, s0)
        if sc:
            v = a[co]
            for i in range(n):
                z[i] = v
        else:
            c = a[co:co + n]
            for i in range(n):
                z[i] = c[i]
        return 0
    ww = w[wo:wo + n]
    if s0 == 0 and s1 == 0:
        c0 = a[c0o:c0o + n]
        c1 = a[c1o:c1o + n]
        for i in range(n):
            # NB: both cases are loaded before the choice. A load inside the conditional
            # expression stays a branch, which a random predicate mispredicts half the
            # time (14x slower at 64k float32 elements); two loads make it a vector select.
            u = c0[i]
            v = c1[i]
            z[i] = v if ww[i] != 0 else u
    elif s0 == 0:
        c0 = a[c0o:c0o + n]
        v1 = a[c1o]
        for i in range(n):
            z[i] = v1 if ww[i] != 0 else c0[i]
    elif s1 == 0:
        v0 = a[c0o]
        c1 = a[c1o:c1o + n]
        for i in range(n):
            z[i] = c1[i] if ww[i] != 0 else v0
    else:
        v0 = a[c0o]
        v1 = a[c1o]
        for i in range(n):
            z[i] = v1 if ww[i] != 0 else v0
    return 0


@kernel(inline="always")
def convert(code, r, s, d):
    """``convert_element_type`` between arenas; to bool means ``!= 0``."""
    xo = code[r + 4]
    zo = code[r + 5]
    n = code[r + 6]
    to_bool = code[r + 7]
    x = s[xo:xo + n]
    z = d[zo:zo + n]
    if to_bool:
        for i in range(n):
            z[i] = x[i] != 0
    else:
        for i in range(n):
            z[i] = x[i]
    return 0
