"""Data-movement kernels (``FAM_MOVE``): strided copies, fills, gather, dynamic_slice and
dynamic_update_slice, which only copy bits; and iota and scatter_add, which compute.

Strided copies cover broadcast_in_dim, transpose, slice, rev, pad and concatenate:
lowering turns each into ``(shape, source strides, destination strides)`` with
size-1 dimensions dropped and contiguous ones merged. Runtime indices (gather and
scatter indices, dynamic start indices) are validated or clamped before any use.
"""

from fgrad._src.backend.kernels_codes import COPY, DSLICE, FILL, GATHER, IOTA, SCRATCH, ST_INDEX
from fgrad._src.backend.kernels_common import kernel


@kernel(inline="always")
def copy_nd(src, so, dst, do, code, p, nd, ia):
    """``dst[do + idx . ds] = src[so + idx . ss]`` over ``shape``; ``code[p:]`` holds
    ``shape, ss, ds`` (``nd`` each). ``ia[SCRATCH:]`` is the odometer."""
    if nd == 0:
        dst[do] = src[so]
        return
    for d in range(nd):
        if code[p + d] == 0:
            return
    n = code[p + nd - 1]
    s1 = code[p + 2 * nd - 1]
    d1 = code[p + 3 * nd - 1]
    outer = 1
    for d in range(nd - 1):
        outer *= code[p + d]
        ia[SCRATCH + d] = 0
    for _ in range(outer):
        if s1 == 1 and d1 == 1:
            x = src[so:so + n]
            z = dst[do:do + n]
            for i in range(n):
                z[i] = x[i]
        elif s1 == 0 and d1 == 1:
            # NB: a broadcast along the last axis (``v[:, None]`` to a matrix) is a fill;
            # through the strided load below it ran 2-3x slower, unvectorized.
            v = src[so]
            z = dst[do:do + n]
            for i in range(n):
                z[i] = v
        elif d1 == 1:
            z = dst[do:do + n]
            for i in range(n):
                z[i] = src[so + i * s1]
        else:
            for i in range(n):
                dst[do + i * d1] = src[so + i * s1]
        d = nd - 2
        while d >= 0:
            ia[SCRATCH + d] += 1
            so += code[p + nd + d]
            do += code[p + 2 * nd + d]
            if ia[SCRATCH + d] < code[p + d]:
                break
            so -= code[p + nd + d] * code[p + d]
            do -= code[p + 2 * nd + d] * code[p + d]
            ia[SCRATCH + d] = 0
            d -= 1


@kernel(inline="always")
def _check_indices(ia, io, count, size):
    idx = ia[io:io + count]
    for i in range(count):
        v = idx[i]
        if v < 0 or v >= size:
            ia[2] = v
            ia[3] = size
            return ST_INDEX
    return 0


@kernel(inline="always")
def _clamped_offset(code, p, nd, ia, strides):
    """Element offset of the clamped start of a window. ``code[p:]`` holds five blocks
    of ``nd``: window sizes, source strides, destination strides, the shape of the
    sliced operand, and arena offsets of the start indices; ``strides`` (1 or 2)
    picks the block of the sliced operand's strides."""
    off = 0
    for d in range(nd):
        size = code[p + d]
        n = code[p + 3 * nd + d]
        s = ia[code[p + 4 * nd + d]]
        s = min(max(s, 0), n - size)  # as in XLA: the window stays inside the operand
        off += s * code[p + strides * nd + d]
    return off


@kernel(inline="always")
def move(code, r, a, ia):
    """Data movement; ``a`` may be any arena viewed as integers of the element size (the
    kernels only copy bits, so float64 shares the int64 kernel)."""
    op = code[r + 2]
    if op == FILL:
        v = a[code[r + 4]]
        zo = code[r + 5]
        n = code[r + 6]
        z = a[zo:zo + n]
        for i in range(n):
            z[i] = v
        return 0
    if op == GATHER:
        xo = code[r + 4]
        io = code[r + 5]
        zo = code[r + 6]
        na = code[r + 7]
        nn = code[r + 8]
        nb = code[r + 9]
        count = code[r + 10]
        st = _check_indices(ia, io, count, nn)
        if st:
            return st
        idx = ia[io:io + count]
        if nb == 1:
            # NB: one element per index (x[i] of a vector, a row's own element): read it
            # directly. The general loop below builds two one-element slices per index,
            # which cost 5-7x the copy itself (64k indices: ~50 against ~350 us).
            for i in range(na):
                src = xo + i * nn
                z = a[zo + i * count:zo + i * count + count]
                for j in range(count):
                    z[j] = a[src + idx[j]]
            return 0
        for i in range(na):
            for j in range(count):
                s = xo + (i * nn + idx[j]) * nb
                x = a[s:s + nb]
                d = zo + (i * count + j) * nb
                z = a[d:d + nb]
                for t in range(nb):
                    z[t] = x[t]
        return 0
    # COPY, DSLICE and DUS end in one strided copy (a single inlined copy of copy_nd).
    if op == COPY:
        so = code[r + 4]
        do = code[r + 5]
        nd = code[r + 6]
        p = r + 7
    elif op == DSLICE:
        # record: xo, zo, nd, then sizes, x strides, z strides, x shape, start offsets
        nd = code[r + 6]
        p = r + 7
        so = code[r + 4] + _clamped_offset(code, p, nd, ia, 1)
        do = code[r + 5]
    else:  # DUS
        xo = code[r + 4]
        so = code[r + 5]
        zo = code[r + 6]
        total = code[r + 7]
        nd = code[r + 8]
        p = r + 9
        if xo != zo:
            x = a[xo:xo + total]
            z = a[zo:zo + total]
            for i in range(total):
                z[i] = x[i]
        # record tail: sizes, update strides, z strides, z shape, start offsets
        do = zo + _clamped_offset(code, p, nd, ia, 2)
    copy_nd(a, so, a, do, code, p, nd, ia)
    return 0


@kernel
def index_arith(code, r, a, ia):
    """IOTA and SCATTER_ADD: the data movement that needs the arena's real dtype."""
    if code[r + 2] == IOTA:
        zo = code[r + 4]
        na = code[r + 5]
        nk = code[r + 6]
        nb = code[r + 7]
        z = a[zo:zo + na * nk * nb]
        j = 0
        for _ in range(na):
            for k in range(nk):
                v = a.dtype.type(k)
                for _ in range(nb):
                    z[j] = v
                    j += 1
        return 0
    xo = code[r + 4]
    io = code[r + 5]
    uo = code[r + 6]
    zo = code[r + 7]
    na = code[r + 8]
    nn = code[r + 9]
    nb = code[r + 10]
    count = code[r + 11]
    st = _check_indices(ia, io, count, nn)
    if st:
        return st
    total = na * nn * nb
    if xo != zo:
        x = a[xo:xo + total]
        z = a[zo:zo + total]
        for i in range(total):
            z[i] = x[i]
    idx = ia[io:io + count]
    if nb == 1:  # NB: as in gather, one element per index is added without slices
        for i in range(na):
            u = a[uo + i * count:uo + i * count + count]
            z = a[zo + i * nn:zo + i * nn + nn]
            for j in range(count):
                z[idx[j]] += u[j]
        return 0
    for i in range(na):
        for j in range(count):
            s = uo + (i * count + j) * nb
            u = a[s:s + nb]
            d = zo + (i * nn + idx[j]) * nb
            z = a[d:d + nb]
            for t in range(nb):
                z[t] += u[t]
    return 0
