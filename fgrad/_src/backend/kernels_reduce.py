"""Reduction kernels (``FAM_REDUCE``: sums, products, max/min, argmax/argmin, cumsum)
and ``dot_general`` (``FAM_DOT``: batched matmul of pre-arranged operands).

Sums follow NumPy's pairwise summation over each contiguous row (8 accumulators
in blocks of 128, split in halves above that), so results match NumPy to the last
bit in the common cases and the error grows like log(n), not n.
"""

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from fgrad._src.backend.kernels_codes import (
    ARGMAX,
    ARGMIN,
    CBLAS_NO_TRANS,
    CBLAS_ROW_MAJOR,
    CBLAS_TRANS,
    CUMSUM,
    IOTA,
    PAIRWISE_SCRATCH,
    RMAX,
    RPROD,
    RSUM,
    SCATTER_ADD,
    SCRATCH,
)
from fgrad._src.backend.kernels_common import kernel
from fgrad._src.backend.kernels_data import index_arith

_BLOCK = 128
_SMALL_DOT = 4096  # below this many multiply-adds a plain loop beats a BLAS call


@kernel(inline="always")
def _lanes8(xs, m, combine):
    """``xs[:m]`` (``m >= 8``) folded by ``combine`` in eight interleaved running values,
    which are then combined pairwise, ((0, 1), (2, 3)), ((4, 5), (6, 7)), and then the
    tail in order: the block of NumPy's pairwise sum, with ``+``.

    NB: indexed from the slice's start in steps counted by j, the eight values become one
    vector register, as in NumPy's build of the same loop. Indexed as ``x[s + i]`` with i
    stepping by 8, LLVM kept them scalar: sums ran 2-3x slower (same result)."""
    r0 = xs[0]
    r1 = xs[1]
    r2 = xs[2]
    r3 = xs[3]
    r4 = xs[4]
    r5 = xs[5]
    r6 = xs[6]
    r7 = xs[7]
    end = m - m % 8
    for j in range(1, end // 8):
        i = 8 * j
        r0 = combine(r0, xs[i])
        r1 = combine(r1, xs[i + 1])
        r2 = combine(r2, xs[i + 2])
        r3 = combine(r3, xs[i + 3])
        r4 = combine(r4, xs[i + 4])
        r5 = combine(r5, xs[i + 5])
        r6 = combine(r6, xs[i + 6])
        r7 = combine(r7, xs[i + 7])
    res = combine(combine(combine(r0, r1), combine(r2, r3)),
                  combine(combine(r4, r5), combine(r6, r7)))
    for i in range(end, m):
        res = combine(res, xs[i])
    return res


@kernel(inline="always")
def _add(u, v):
    return u + v


@kernel(inline="always")
def _max_of(acc, v):
    """NumPy's ``maximum(acc, v)``: ``acc`` if larger or NaN, else ``v`` (so a NaN
    stays, and of two equal values, -0.0 and +0.0, the later wins)."""
    return acc if (acc > v or acc != acc) else v


@kernel(inline="always")
def _min_of(acc, v):
    return acc if (acc < v or acc != acc) else v


@kernel(inline="always")
def _block_sum(x, s, m):
    xs = x[s:s + m]
    if m >= 8:
        return _lanes8(xs, m, _add)
    res = x.dtype.type(0)
    for i in range(m):
        res += xs[i]
    return res


@kernel(inline="always")
def pairwise_sum(x, vals, tasks):
    """NumPy's pairwise sum of the 1-d array ``x`` without recursion: ``tasks`` (int64)
    and ``vals`` (x's dtype) are scratch stacks in the arenas (depth ~ log2(n))."""
    nt = 1
    tasks[0] = 0
    tasks[1] = x.size
    nv = 0
    while nt > 0:
        nt -= 1
        s = tasks[2 * nt]
        m = tasks[2 * nt + 1]
        if m < 0:  # combine the two most recent partial sums, left + right
            nv -= 1
            vals[nv - 1] = vals[nv - 1] + vals[nv]
        elif m <= _BLOCK:
            vals[nv] = _block_sum(x, s, m)
            nv += 1
        else:
            m2 = m // 2
            m2 -= m2 % 8
            tasks[2 * nt + 1] = -1
            tasks[2 * nt + 2] = s + m2
            tasks[2 * nt + 3] = m - m2
            tasks[2 * nt + 4] = s
            tasks[2 * nt + 5] = m2
            nt += 3
    return vals[0]


@kernel(inline="always")
def _row_reduce(op, x, vals, ia):
    if op == RSUM:
        return pairwise_sum(x, vals, ia[PAIRWISE_SCRATCH:PAIRWISE_SCRATCH + 256])
    n = x.size
    # NB: a max or min in eight running values (_lanes8) is ~30 % faster than in one;
    # between -0.0 and +0.0 either may then win, as in NumPy's vector loops.
    if op == RMAX and n >= 16:
        return _lanes8(x, n, _max_of)
    if op != RMAX and op != RPROD and n >= 16:
        return _lanes8(x, n, _min_of)
    acc = x[0]
    if op == RPROD:
        for i in range(1, n):
            acc *= x[i]
    elif op == RMAX:
        for i in range(1, n):
            acc = _max_of(acc, x[i])
    else:
        for i in range(1, n):
            acc = _min_of(acc, x[i])
    return acc


@kernel(inline="always")
def _combine(op, u, v):
    if op == RSUM:
        return u + v
    if op == RPROD:
        return u * v
    if op == RMAX:
        return _max_of(u, v)
    return _min_of(u, v)


@kernel
def _reduce_axes(code, r, a, ia):
    # record: op, cls, xo, zo, nout, identity offset, scratch offset, nd, shape[nd],
    # out strides[nd]
    op = code[r + 2]
    xo = code[r + 4]
    zo = code[r + 5]
    nout = code[r + 6]
    so = code[r + 8]
    nd = code[r + 9]
    p = r + 10
    ident = a[code[r + 7]]
    z = a[zo:zo + nout]
    for i in range(nout):
        z[i] = ident
    n = code[p + nd - 1]
    last_reduced = code[p + 2 * nd - 1] == 0
    outer = 1
    for d in range(nd - 1):
        outer *= code[p + d]
        ia[SCRATCH + d] = 0
    oo = 0
    for it in range(outer):
        row = a[xo + it * n:xo + it * n + n]
        if last_reduced:
            z[oo] = _combine(op, z[oo], _row_reduce(op, row, a[so:so + 64], ia))
        else:
            zz = z[oo:oo + n]
            if op == RSUM:
                for i in range(n):
                    zz[i] = zz[i] + row[i]
            elif op == RPROD:
                for i in range(n):
                    zz[i] = zz[i] * row[i]
            elif op == RMAX:
                for i in range(n):
                    zz[i] = _max_of(zz[i], row[i])
            else:
                for i in range(n):
                    zz[i] = _min_of(zz[i], row[i])
        d = nd - 2
        while d >= 0:
            ia[SCRATCH + d] += 1
            oo += code[p + nd + d]
            if ia[SCRATCH + d] < code[p + d]:
                break
            oo -= code[p + nd + d] * code[p + d]
            ia[SCRATCH + d] = 0
            d -= 1
    return 0


@kernel
def _arg_reduce(code, r, a, ia):
    # record: op, cls, xo, zo (int arena), A, K, B
    is_max = code[r + 2] == ARGMAX
    xo = code[r + 4]
    zo = code[r + 5]
    na = code[r + 6]
    nk = code[r + 7]
    nb = code[r + 8]
    z = ia[zo:zo + na * nb]
    for i in range(na):
        for j in range(nb):
            base = xo + i * nk * nb + j
            best = a[base]
            bi = 0
            if best == best:
                for k in range(1, nk):
                    v = a[base + k * nb]
                    if v != v:
                        bi = k
                        break
                    if (v > best) if is_max else (v < best):
                        best = v
                        bi = k
            z[i * nb + j] = bi
    return 0


@kernel
def _cumsum(code, r, a):
    # record: op, cls, xo, zo, A, K, B, reverse
    xo = code[r + 4]
    zo = code[r + 5]
    na = code[r + 6]
    nk = code[r + 7]
    nb = code[r + 8]
    rev = code[r + 9]
    for i in range(na):
        base = i * nk * nb
        prev = -1
        for kk in range(nk):
            k = nk - 1 - kk if rev else kk
            o = base + k * nb
            x = a[xo + o:xo + o + nb]
            z = a[zo + o:zo + o + nb]
            if prev < 0:
                for t in range(nb):
                    z[t] = x[t]
            else:
                zp = a[zo + prev:zo + prev + nb]
                for t in range(nb):
                    z[t] = zp[t] + x[t]
            prev = o
    return 0


@kernel(inline="always")
def reduce(code, r, a, ia):
    op = code[r + 2]
    if op == IOTA or op == SCATTER_ADD:
        return index_arith(code, r, a, ia)
    if op == ARGMAX or op == ARGMIN:
        return _arg_reduce(code, r, a, ia)
    if op == CUMSUM:
        return _cumsum(code, r, a)
    return _reduce_axes(code, r, a, ia)


@kernel(inline="always")
def _dot_loop(a, xo, yo, zo, nb, m, k, n, tx, ty, alpha, accumulate):
    """``z[b] = alpha * x[b] @ y[b]`` (plus ``z[b]`` when ``accumulate``) with plain loops
    (x is (m, k), or (k, m) if ``tx``; y is (k, n), or (n, k) if ``ty``)."""
    zero = a.dtype.type(0)
    # NB: a scaled or accumulated product sums each output row apart first, then adds
    # alpha * row to z, as BLAS rounds it (summing the terms straight into z would, for
    # one, turn z = -0.0 plus a zero product into 0.0).
    plain = alpha == 1 and not accumulate
    row = a[zo:zo] if plain else np.empty(n, a.dtype)  # NB: no allocation when plain
    for bb in range(nb):
        xb = xo + bb * m * k
        yb = yo + bb * k * n
        zb = zo + bb * m * n
        for i in range(m):
            zr = a[zb + i * n:zb + i * n + n]
            acc = zr if plain else row
            for j in range(n):
                acc[j] = zero
            for kk in range(k):
                u = a[xb + kk * m + i] if tx else a[xb + i * k + kk]
                if ty:
                    for j in range(n):
                        acc[j] += u * a[yb + j * k + kk]
                else:
                    yr = a[yb + kk * n:yb + kk * n + n]
                    for j in range(n):
                        acc[j] += u * yr[j]
            if accumulate:
                for j in range(n):
                    zr[j] += alpha * row[j]
            elif not plain:
                for j in range(n):
                    zr[j] = alpha * row[j]
    return 0


@kernel(inline="always")
def dot_i(code, r, a):
    # Integer products are never scaled or accumulated (lower.py folds float ones only).
    return _dot_loop(a, code[r + 3], code[r + 4], code[r + 5], code[r + 6], code[r + 7],
                     code[r + 8], code[r + 9], code[r + 10], code[r + 11], a.dtype.type(1),
                     False)


@intrinsic
def _cblas_gemm(typingctx, fn, trans_x, trans_y, m, n, k, alpha, x, ldx, y, ldy, beta, z, ldz):
    """Call the row-major CBLAS ``?gemm`` at address ``fn`` (ILP64: int64 sizes) on the
    addresses ``x``, ``y``, ``z``: ``z = alpha * op(x) @ op(y) + beta * z``."""
    sig = types.void(fn, trans_x, trans_y, m, n, k, alpha, x, ldx, y, ldy, beta, z, ldz)

    def codegen(context, builder, signature, args):
        i32, i64 = ir.IntType(32), ir.IntType(64)
        scalar = context.get_value_type(signature.args[6])
        pointer = scalar.as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, i64, i64, i64, scalar, pointer,
                                               i64, pointer, i64, scalar, pointer, i64])
        (fnv, tx, ty, mv, nv, kv, av, xv, ldxv, yv, ldyv, bv, zv, ldzv) = args
        builder.call(builder.inttoptr(fnv, fnty.as_pointer()), [
            ir.Constant(i32, CBLAS_ROW_MAJOR), builder.trunc(tx, i32), builder.trunc(ty, i32),
            mv, nv, kv, av, builder.inttoptr(xv, pointer), ldxv, builder.inttoptr(yv, pointer),
            ldyv, bv, builder.inttoptr(zv, pointer), ldzv])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _cblas_gemv(typingctx, fn, trans, rows, cols, alpha, matrix, ld, x, beta, z):
    """Call the row-major CBLAS ``?gemv`` at address ``fn`` (ILP64: int64 sizes) on the
    addresses ``matrix``, ``x``, ``z`` (both vectors contiguous):
    ``z = alpha * op(matrix) @ x + beta * z`` for a ``rows`` x ``cols`` matrix."""
    sig = types.void(fn, trans, rows, cols, alpha, matrix, ld, x, beta, z)

    def codegen(context, builder, signature, args):
        i32, i64 = ir.IntType(32), ir.IntType(64)
        scalar = context.get_value_type(signature.args[4])
        pointer = scalar.as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i64, i64, scalar, pointer, i64,
                                               pointer, i64, scalar, pointer, i64])
        (fnv, tv, rv, cv, av, mv, ldv, xv, bv, zv) = args
        one = ir.Constant(i64, 1)
        builder.call(builder.inttoptr(fnv, fnty.as_pointer()), [
            ir.Constant(i32, CBLAS_ROW_MAJOR), builder.trunc(tv, i32), rv, cv, av,
            builder.inttoptr(mv, pointer), ldv, builder.inttoptr(xv, pointer), one, bv,
            builder.inttoptr(zv, pointer), one])
        return context.get_dummy_value()

    return sig, codegen


@kernel(inline="always")
def _dot_gemv(gemv, a, xo, yo, zo, nb, m, k, n, tx, ty, alpha, accumulate):
    """``z[b] = alpha * x[b] @ y[b]`` (plus ``z[b]`` when ``accumulate``) through ``?gemv``
    when one side is a vector (``m == 1`` or ``n == 1``; layouts as in ``_dot_loop``)."""
    size = np.int64(a.itemsize)
    base = np.int64(a.ctypes.data)
    one, zero = a.dtype.type(1.0), a.dtype.type(0.0)
    # NB: a scaled or accumulated product is computed apart, then added as the reference
    # rounds it: gemv's own alpha and beta give zeros other signs in some kernels (one
    # multiplies alpha into each term). The output is a vector: one more pass over it.
    plain = alpha == 1 and not accumulate
    product = a[zo:zo] if plain else np.empty(m * n, a.dtype)  # NB: no allocation if plain
    for bb in range(nb):
        zb = zo + bb * m * n
        if n == 1:  # z = op(x) @ y: x is the matrix, as stored (m, k) or (k, m)
            trans, rows, cols = (CBLAS_TRANS, k, m) if tx else (CBLAS_NO_TRANS, m, k)
            matrix, vector = xo + bb * m * k, yo + bb * k * n
        else:  # z = x @ op(y), i.e. z = op(y)^T @ x: y is the matrix, (k, n) or (n, k)
            trans, rows, cols = (CBLAS_NO_TRANS, n, k) if ty else (CBLAS_TRANS, k, n)
            matrix, vector = yo + bb * k * n, xo + bb * m * k
        # NB: with beta = 0 gemv ignores the output's old contents (NaN included): NumPy's
        # own matmul relies on that, calling it on uninitialised outputs.
        out = base + zb * size if plain else np.int64(product.ctypes.data)
        _cblas_gemv(gemv, trans, rows, cols, one, base + matrix * size, cols,
                    base + vector * size, zero, out)
        if accumulate:
            for j in range(m * n):
                a[zb + j] += alpha * product[j]
        elif not plain:
            for j in range(m * n):
                a[zb + j] = alpha * product[j]
    return 0


@kernel(inline="always")
def dot_f(code, r, a, gemm, gemv):
    # record: cls, xo, yo, zo, batch, m, k, n, x transposed, y transposed, alpha offset,
    # accumulate: z = alpha * x @ y, plus z's old value when accumulate is 1. ``gemm`` and
    # ``gemv`` are the addresses of NumPy's CBLAS routines for this dtype, or 0 (then
    # numba's np.dot runs the product; see blas.py).
    xo = code[r + 3]
    yo = code[r + 4]
    zo = code[r + 5]
    nb = code[r + 6]
    m = code[r + 7]
    k = code[r + 8]
    n = code[r + 9]
    tx = code[r + 10]
    ty = code[r + 11]
    alpha = a[code[r + 12]]
    accumulate = code[r + 13] != 0
    if m * n * k <= _SMALL_DOT:
        return _dot_loop(a, xo, yo, zo, nb, m, k, n, tx, ty, alpha, accumulate)
    if gemv != 0 and (m == 1 or n == 1):
        return _dot_gemv(gemv, a, xo, yo, zo, nb, m, k, n, tx, ty, alpha, accumulate)
    if gemm != 0:
        size = np.int64(a.itemsize)
        base = np.int64(a.ctypes.data)
        trans_x = CBLAS_TRANS if tx else CBLAS_NO_TRANS
        trans_y = CBLAS_TRANS if ty else CBLAS_NO_TRANS
        beta = a.dtype.type(1.0) if accumulate else a.dtype.type(0.0)
        for bb in range(nb):
            _cblas_gemm(gemm, trans_x, trans_y, m, n, k, alpha,
                        base + (xo + bb * m * k) * size, m if tx else k,
                        base + (yo + bb * k * n) * size, k if ty else n,
                        beta, base + (zo + bb * m * n) * size, n)
        return 0
    plain = alpha == 1 and not accumulate
    for bb in range(nb):
        xs = a[xo + bb * m * k:xo + (bb + 1) * m * k]
        ys = a[yo + bb * k * n:yo + (bb + 1) * k * n]
        zs = a[zo + bb * m * n:zo + (bb + 1) * m * n].reshape((m, n))
        # NB: np.dot's ``out`` is overwritten, so a scaled or accumulated product goes
        # through a temporary (this fallback runs only without NumPy's CBLAS).
        product = zs if plain else np.empty((m, n), a.dtype)
        if tx == 0 and ty == 0:
            np.dot(xs.reshape((m, k)), ys.reshape((k, n)), product)
        elif tx == 0:
            np.dot(xs.reshape((m, k)), ys.reshape((n, k)).T, product)
        elif ty == 0:
            np.dot(xs.reshape((k, m)).T, ys.reshape((k, n)), product)
        else:
            np.dot(xs.reshape((k, m)).T, ys.reshape((n, k)).T, product)
        # NB: loops, not array expressions, which take seconds longer to compile.
        if accumulate:
            for i in range(m):
                for j in range(n):
                    zs[i, j] += alpha * product[i, j]
        elif not plain:
            for i in range(m):
                for j in range(n):
                    zs[i, j] = alpha * product[i, j]
    return 0
