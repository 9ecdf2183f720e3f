"""Entry points: one C-callable per (kernel family, arena classes), and the dispatcher.

Every kernel is compiled as a numba ``cfunc`` with one uniform C signature, and the
dispatcher ``run_program`` calls them through a table of function addresses passed
in at run time (``_call`` below emits the indirect call). That keeps each kernel in
its own small compilation unit: if the dispatcher called the kernels directly, numba
would link all of them into the dispatcher's module and optimize and generate the
machine code of everything a second time (measured: doubles the cold compile). The
dispatcher itself is tiny and holds no addresses, so it caches like any function.

The float-specific kernels are compiled once per float dtype, the int/bool ones once.
"""

import numpy as np
from llvmlite import ir
from numba import carray, types
from numba.core.ccallback import CFunc
from numba.extending import intrinsic

from fgrad._src.backend import kernels_common
from fgrad._src.backend.kernels_common import kernel
from fgrad._src.backend.kernels_data import move
from fgrad._src.backend.kernels_elementwise import (
    binary_f,
    binary_i,
    bool_ops,
    compare,
    convert,
    select,
    unary_f,
    unary_i,
)
from fgrad._src.backend.kernels_reduce import dot_f, dot_i, reduce
from fgrad._src.backend.lower import (
    N_SLOTS,
    SLOT_BINARY_F,
    SLOT_BINARY_I,
    SLOT_BOOL,
    SLOT_COMPARE_F,
    SLOT_COMPARE_I,
    SLOT_CONVERT_BF,
    SLOT_CONVERT_BI,
    SLOT_CONVERT_FB,
    SLOT_CONVERT_FI,
    SLOT_CONVERT_IB,
    SLOT_CONVERT_IF,
    SLOT_DOT_F,
    SLOT_DOT_I,
    SLOT_MOVE_B,
    SLOT_MOVE_F,
    SLOT_MOVE_I,
    SLOT_REDUCE_F,
    SLOT_REDUCE_I,
    SLOT_SELECT_B,
    SLOT_SELECT_F,
    SLOT_SELECT_I,
    SLOT_UNARY_F,
    SLOT_UNARY_I,
)

# int64 kernel(int64* code, int64 ncode, int64 r, void* fa, int64 nf,
#              int64* ia, int64 ni, uint8* ba, int64 nb)
_P64 = types.CPointer(types.int64)
_P8 = types.CPointer(types.uint8)
SIGNATURE = types.int64(_P64, types.int64, types.int64, types.voidptr, types.int64,
                        _P64, types.int64, _P8, types.int64)

# --------------------------------------------------------------------------- int/bool kernels


def k_unary_i(cp, nc, r, fp, nf, ip, ni, bp, nb):
    return unary_i(carray(cp, nc), r, carray(ip, ni))


def k_binary_i(cp, nc, r, fp, nf, ip, ni, bp, nb):
    return binary_i(carray(cp, nc), r, carray(ip, ni))


def k_bool(cp, nc, r, fp, nf, ip, ni, bp, nb):
    return bool_ops(carray(cp, nc), r, carray(bp, nb))


def k_compare_i(cp, nc, r, fp, nf, ip, ni, bp, nb):
    return compare(carray(cp, nc), r, carray(ip, ni), carray(bp, nb))


def k_select_i(cp, nc, r, fp, nf, ip, ni, bp, nb):
    return select(carray(cp, nc), r, carray(bp, nb), carray(ip, ni))


def k_select_b(cp, nc, r, fp, nf, ip, ni, bp, nb):
    b = carray(bp, nb)
    return select(carray(cp, nc), r, b, b)


def k_convert_ib(cp, nc, r, fp, nf, ip, ni, bp, nb):
    return convert(carray(cp, nc), r, carray(ip, ni), carray(bp, nb))


def k_convert_bi(cp, nc, r, fp, nf, ip, ni, bp, nb):
    return convert(carray(cp, nc), r, carray(bp, nb), carray(ip, ni))


def k_move_i(cp, nc, r, fp, nf, ip, ni, bp, nb):
    ia = carray(ip, ni)
    return move(carray(cp, nc), r, ia, ia)


def k_move_b(cp, nc, r, fp, nf, ip, ni, bp, nb):
    return move(carray(cp, nc), r, carray(bp, nb), carray(ip, ni))


def k_reduce_i(cp, nc, r, fp, nf, ip, ni, bp, nb):
    ia = carray(ip, ni)
    return reduce(carray(cp, nc), r, ia, ia)


def k_dot_i(cp, nc, r, fp, nf, ip, ni, bp, nb):
    return dot_i(carray(cp, nc), r, carray(ip, ni))


SHARED = (
    (SLOT_UNARY_I, k_unary_i), (SLOT_BINARY_I, k_binary_i), (SLOT_BOOL, k_bool),
    (SLOT_COMPARE_I, k_compare_i), (SLOT_SELECT_I, k_select_i), (SLOT_SELECT_B, k_select_b),
    (SLOT_CONVERT_IB, k_convert_ib), (SLOT_CONVERT_BI, k_convert_bi), (SLOT_MOVE_I, k_move_i),
    (SLOT_MOVE_B, k_move_b), (SLOT_REDUCE_I, k_reduce_i), (SLOT_DOT_I, k_dot_i),
)

# --------------------------------------------------------------------------- float kernels


def float_kernels(dt):
    """The float-specific entry points for float dtype ``dt`` (np.float32 or np.float64)."""

    def kf_unary(cp, nc, r, fp, nf, ip, ni, bp, nb):
        return unary_f(carray(cp, nc), r, carray(fp, nf, dt), carray(bp, nb))

    def kf_binary(cp, nc, r, fp, nf, ip, ni, bp, nb):
        return binary_f(carray(cp, nc), r, carray(fp, nf, dt))

    def kf_compare(cp, nc, r, fp, nf, ip, ni, bp, nb):
        return compare(carray(cp, nc), r, carray(fp, nf, dt), carray(bp, nb))

    def kf_select(cp, nc, r, fp, nf, ip, ni, bp, nb):
        return select(carray(cp, nc), r, carray(bp, nb), carray(fp, nf, dt))

    def kf_convert_fi(cp, nc, r, fp, nf, ip, ni, bp, nb):
        return convert(carray(cp, nc), r, carray(fp, nf, dt), carray(ip, ni))

    def kf_convert_fb(cp, nc, r, fp, nf, ip, ni, bp, nb):
        return convert(carray(cp, nc), r, carray(fp, nf, dt), carray(bp, nb))

    def kf_convert_if(cp, nc, r, fp, nf, ip, ni, bp, nb):
        return convert(carray(cp, nc), r, carray(ip, ni), carray(fp, nf, dt))

    def kf_convert_bf(cp, nc, r, fp, nf, ip, ni, bp, nb):
        return convert(carray(cp, nc), r, carray(bp, nb), carray(fp, nf, dt))

    def kf_move(cp, nc, r, fp, nf, ip, ni, bp, nb):
        return move(carray(cp, nc), r, carray(fp, nf, dt), carray(ip, ni))

    def kf_reduce(cp, nc, r, fp, nf, ip, ni, bp, nb):
        return reduce(carray(cp, nc), r, carray(fp, nf, dt), carray(ip, ni))

    def kf_dot(cp, nc, r, fp, nf, ip, ni, bp, nb):
        return dot_f(carray(cp, nc), r, carray(fp, nf, dt))

    return (
        (SLOT_UNARY_F, kf_unary), (SLOT_BINARY_F, kf_binary), (SLOT_COMPARE_F, kf_compare),
        (SLOT_SELECT_F, kf_select), (SLOT_CONVERT_FI, kf_convert_fi),
        (SLOT_CONVERT_FB, kf_convert_fb), (SLOT_CONVERT_IF, kf_convert_if),
        (SLOT_CONVERT_BF, kf_convert_bf), (SLOT_MOVE_F, kf_move), (SLOT_REDUCE_F, kf_reduce),
        (SLOT_DOT_F, kf_dot),
    )


# --------------------------------------------------------------------------- compilation

_cfuncs: dict = {}  # (python function's qualname, dtype name) -> CFunc


def compile_cfunc(fn, key):
    cf = _cfuncs.get(key)
    if cf is None:
        cf = CFunc(fn, (SIGNATURE.args, SIGNATURE.return_type), locals={},
                   options={"error_model": "numpy"})
        kernels_common.attach_cache(cf, fn)
        cf.compile()
        _cfuncs[key] = cf
    return cf


def kernel_table(fdtype):
    """Compile (or load from the cache) every kernel for ``fdtype``; return their addresses."""
    name = np.dtype(fdtype).name
    table = np.zeros(N_SLOTS, np.int64)
    for slot, fn in float_kernels(np.dtype(fdtype).type):
        table[slot] = compile_cfunc(fn, (fn.__name__, name)).address
    for slot, fn in SHARED:
        table[slot] = compile_cfunc(fn, (fn.__name__, "")).address
    assert table.all(), "a kernel slot has no entry point"
    return table


# --------------------------------------------------------------------------- the dispatcher


@intrinsic
def _call(typingctx, fn, code, r, fa, ia, ba):
    """Call the kernel at address ``fn`` with the arenas' data pointers and lengths."""
    sig = types.int64(fn, code, r, fa, ia, ba)

    def codegen(context, builder, signature, args):
        fnv, codev, rv, fav, iav, bav = args
        i64 = ir.IntType(64)
        i8p = ir.IntType(8).as_pointer()
        c = context.make_array(signature.args[1])(context, builder, codev)
        f = context.make_array(signature.args[3])(context, builder, fav)
        i = context.make_array(signature.args[4])(context, builder, iav)
        b = context.make_array(signature.args[5])(context, builder, bav)
        fnty = ir.FunctionType(i64, [i64.as_pointer(), i64, i64, i8p, i64, i64.as_pointer(),
                                     i64, i8p, i64])
        ptr = builder.inttoptr(fnv, fnty.as_pointer())
        return builder.call(ptr, [c.data, c.nitems, rv, builder.bitcast(f.data, i8p), f.nitems,
                                  i.data, i.nitems, builder.bitcast(b.data, i8p), b.nitems])

    return sig, codegen


@kernel
def run_program(code, fa, ia, ba, table):
    """Run every record of ``code``; 0, or a status code with the op index in ``ia[1]``."""
    nops = code[0]
    r = code[1]
    for k in range(nops):
        st = _call(table[code[r + 1]], code, r, fa, ia, ba)
        if st != 0:
            ia[0] = st
            ia[1] = k
            return st
        r += code[r]
    return 0
