"""Entry points: one C-callable per (kernel family, arena classes), and the dispatcher.

Every kernel is compiled as a numba ``cfunc`` with one uniform C signature, and the
dispatcher ``run_program`` calls them through a table of function addresses passed
in at run time (``_call`` below emits the indirect call). That keeps each kernel in
its own small compilation unit, compiled only when a program first needs it: if the
dispatcher called the kernels directly, numba would link all of them into the
dispatcher's module and optimize and generate all their machine code a second time
(measured: it doubled the cold compile). The dispatcher itself is tiny and holds no
addresses, so it caches like any function.

The float kernels exist once per float dtype, the int/bool kernels once.
"""

import numpy as np
from llvmlite import ir
from numba import carray, types
from numba.core.ccallback import CFunc
from numba.extending import intrinsic

from fgrad._src.backend import kernels_common
from fgrad._src.backend.kernels_codes import (
    CLS_F32,
    CLS_F64,
    CLS_I,
    FLOAT_BASE,
    IA_GEMM,
    IA_GEMV,
    K_BINARY,
    K_COMPARE,
    K_CONVERT_BF,
    K_CONVERT_FB,
    K_CONVERT_FI,
    K_CONVERT_IF,
    K_DOT,
    K_MOVE,
    K_REDUCE,
    K_SELECT,
    K_UNARY,
    N_SLOTS,
    RECORD_SCRATCH,
    SLOT_BINARY_I,
    SLOT_BOOL,
    SLOT_COMPARE_I,
    SLOT_CONVERT_BI,
    SLOT_CONVERT_F32_F64,
    SLOT_CONVERT_F64_F32,
    SLOT_CONVERT_IB,
    SLOT_DOT_I,
    SLOT_GROUP,
    SLOT_MOVE_B,
    SLOT_MOVE_I,
    SLOT_REDUCE_I,
    SLOT_SELECT_B,
    SLOT_SELECT_I,
    SLOT_UNARY_I,
)
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

# int64 kernel(int64* code, int64 ncode, int64 r, void* f64, int64 n64, void* f32, int64 n32,
#              int64* ia, int64 ni, uint8* ba, int64 nb)
_P64 = types.CPointer(types.int64)
_P8 = types.CPointer(types.uint8)
SIGNATURE = types.int64(_P64, types.int64, types.int64, types.voidptr, types.int64,
                        types.voidptr, types.int64, _P64, types.int64, _P8, types.int64)

# --------------------------------------------------------------------------- int/bool kernels


def k_unary_i(cp, nc, r, dp, nd, sp, ns, ip, ni, bp, nb):
    return unary_i(carray(cp, nc), r, carray(ip, ni))


def k_binary_i(cp, nc, r, dp, nd, sp, ns, ip, ni, bp, nb):
    return binary_i(carray(cp, nc), r, carray(ip, ni))


def k_bool(cp, nc, r, dp, nd, sp, ns, ip, ni, bp, nb):
    return bool_ops(carray(cp, nc), r, carray(bp, nb))


def k_compare_i(cp, nc, r, dp, nd, sp, ns, ip, ni, bp, nb):
    return compare(carray(cp, nc), r, carray(ip, ni), carray(bp, nb))


def k_select_8(cp, nc, r, dp, nd, sp, ns, ip, ni, bp, nb):
    # Selecting only copies bits: float64 arenas are viewed as int64 (one compilation).
    code = carray(cp, nc)
    a = carray(ip, ni) if code[r + 3] == CLS_I else carray(dp, nd, np.int64)
    return select(code, r, carray(bp, nb), a)


def k_select_b(cp, nc, r, dp, nd, sp, ns, ip, ni, bp, nb):
    b = carray(bp, nb)
    return select(carray(cp, nc), r, b, b)


def k_convert_ib(cp, nc, r, dp, nd, sp, ns, ip, ni, bp, nb):
    return convert(carray(cp, nc), r, carray(ip, ni), carray(bp, nb))


def k_convert_bi(cp, nc, r, dp, nd, sp, ns, ip, ni, bp, nb):
    return convert(carray(cp, nc), r, carray(bp, nb), carray(ip, ni))


def k_move_8(cp, nc, r, dp, nd, sp, ns, ip, ni, bp, nb):
    # Data movement only copies bits: float64 arenas are viewed as int64.
    code = carray(cp, nc)
    ia = carray(ip, ni)
    a = ia if code[r + 3] == CLS_I else carray(dp, nd, np.int64)
    return move(code, r, a, ia)


def k_move_b(cp, nc, r, dp, nd, sp, ns, ip, ni, bp, nb):
    return move(carray(cp, nc), r, carray(bp, nb), carray(ip, ni))


def k_reduce_i(cp, nc, r, dp, nd, sp, ns, ip, ni, bp, nb):
    ia = carray(ip, ni)
    return reduce(carray(cp, nc), r, ia, ia)


def k_dot_i(cp, nc, r, dp, nd, sp, ns, ip, ni, bp, nb):
    return dot_i(carray(cp, nc), r, carray(ip, ni))


SHARED = (
    (SLOT_UNARY_I, k_unary_i), (SLOT_BINARY_I, k_binary_i), (SLOT_BOOL, k_bool),
    (SLOT_COMPARE_I, k_compare_i), (SLOT_SELECT_I, k_select_8), (SLOT_SELECT_B, k_select_b),
    (SLOT_CONVERT_IB, k_convert_ib), (SLOT_CONVERT_BI, k_convert_bi), (SLOT_MOVE_I, k_move_8),
    (SLOT_MOVE_B, k_move_b), (SLOT_REDUCE_I, k_reduce_i), (SLOT_DOT_I, k_dot_i),
)

# --------------------------------------------------------------------------- float kernels


def k_convert_f64_f32(cp, nc, r, dp, nd, sp, ns, ip, ni, bp, nb):
    return convert(carray(cp, nc), r, carray(dp, nd, np.float64), carray(sp, ns, np.float32))


def k_convert_f32_f64(cp, nc, r, dp, nd, sp, ns, ip, ni, bp, nb):
    return convert(carray(cp, nc), r, carray(sp, ns, np.float32), carray(dp, nd, np.float64))


SHARED += ((SLOT_CONVERT_F64_F32, k_convert_f64_f32), (SLOT_CONVERT_F32_F64, k_convert_f32_f64))


def float_kernels(cls):
    """The float-specific entry points for ``cls`` (CLS_F64 or CLS_F32), by slot."""
    dt = np.float64 if cls == CLS_F64 else np.float32
    k = 0 if cls == CLS_F64 else 1  # picks the float64 or the float32 arena pointer

    def kf_unary(cp, nc, r, dp, nd, sp, ns, ip, ni, bp, nb):
        fa = carray((dp, sp)[k], (nd, ns)[k], dt)
        return unary_f(carray(cp, nc), r, fa, carray(bp, nb))

    def kf_binary(cp, nc, r, dp, nd, sp, ns, ip, ni, bp, nb):
        return binary_f(carray(cp, nc), r, carray((dp, sp)[k], (nd, ns)[k], dt))

    def kf_compare(cp, nc, r, dp, nd, sp, ns, ip, ni, bp, nb):
        fa = carray((dp, sp)[k], (nd, ns)[k], dt)
        return compare(carray(cp, nc), r, fa, carray(bp, nb))

    def kf_select(cp, nc, r, dp, nd, sp, ns, ip, ni, bp, nb):
        fa = carray((dp, sp)[k], (nd, ns)[k], dt)
        return select(carray(cp, nc), r, carray(bp, nb), fa)

    def kf_convert_fi(cp, nc, r, dp, nd, sp, ns, ip, ni, bp, nb):
        fa = carray((dp, sp)[k], (nd, ns)[k], dt)
        return convert(carray(cp, nc), r, fa, carray(ip, ni))

    def kf_convert_fb(cp, nc, r, dp, nd, sp, ns, ip, ni, bp, nb):
        fa = carray((dp, sp)[k], (nd, ns)[k], dt)
        return convert(carray(cp, nc), r, fa, carray(bp, nb))

    def kf_convert_if(cp, nc, r, dp, nd, sp, ns, ip, ni, bp, nb):
        fa = carray((dp, sp)[k], (nd, ns)[k], dt)
        return convert(carray(cp, nc), r, carray(ip, ni), fa)

    def kf_convert_bf(cp, nc, r, dp, nd, sp, ns, ip, ni, bp, nb):
        fa = carray((dp, sp)[k], (nd, ns)[k], dt)
        return convert(carray(cp, nc), r, carray(bp, nb), fa)

    def kf_move(cp, nc, r, dp, nd, sp, ns, ip, ni, bp, nb):
        # float32 moves as int32 bits (float64 uses k_move_8)
        return move(carray(cp, nc), r, carray(sp, ns, np.int32), carray(ip, ni))

    def kf_reduce(cp, nc, r, dp, nd, sp, ns, ip, ni, bp, nb):
        fa = carray((dp, sp)[k], (nd, ns)[k], dt)
        return reduce(carray(cp, nc), r, fa, carray(ip, ni))

    def kf_dot(cp, nc, r, dp, nd, sp, ns, ip, ni, bp, nb):
        ia = carray(ip, ni)
        return dot_f(carray(cp, nc), r, carray((dp, sp)[k], (nd, ns)[k], dt),
                     ia[IA_GEMM + k], ia[IA_GEMV + k])

    base = FLOAT_BASE[cls]
    if cls == CLS_F64:
        kf_select, kf_move = k_select_8, k_move_8  # noqa: F811  (bit copies: shared)
    return (
        (base + K_UNARY, kf_unary), (base + K_BINARY, kf_binary),
        (base + K_COMPARE, kf_compare), (base + K_SELECT, kf_select),
        (base + K_CONVERT_FI, kf_convert_fi), (base + K_CONVERT_FB, kf_convert_fb),
        (base + K_CONVERT_IF, kf_convert_if), (base + K_CONVERT_BF, kf_convert_bf),
        (base + K_MOVE, kf_move), (base + K_REDUCE, kf_reduce), (base + K_DOT, kf_dot),
    )


def all_kernels():
    """``{slot: (python function, cache key)}`` for every kernel slot."""
    table = {}
    for cls, name in ((CLS_F64, "float64"), (CLS_F32, "float32")):
        for slot, fn in float_kernels(cls):
            table[slot] = (fn, (fn.__name__, name))
    for slot, fn in SHARED:
        table[slot] = (fn, (fn.__name__, ""))
    assert sorted(table) == list(range(N_SLOTS))
    return table


# --------------------------------------------------------------------------- compilation

_cfuncs: dict = {}  # (python function's qualname, dtype name) -> CFunc


def compile_cfunc(fn, key, signature=SIGNATURE):
    cf = _cfuncs.get(key)
    if cf is None:
        cf = CFunc(fn, (signature.args, signature.return_type), locals={},
                   options={"error_model": "numpy"})
        kernels_common.attach_cache(cf, fn)
        cf.compile()
        _cfuncs[key] = cf
    return cf


# --------------------------------------------------------------------------- the dispatcher


@intrinsic
def _call(typingctx, fn, code, r, fd, fs, ia, ba):
    """Call the kernel at address ``fn`` with the arenas' data pointers and lengths."""
    sig = types.int64(fn, code, r, fd, fs, ia, ba)

    def codegen(context, builder, signature, args):
        fnv, rv = args[0], args[2]
        i64 = ir.IntType(64)
        i8p = ir.IntType(8).as_pointer()
        c, d, s, i, b = (context.make_array(t)(context, builder, v)
                         for t, v in zip(signature.args[1:2] + signature.args[3:],
                                         args[1:2] + args[3:]))
        fnty = ir.FunctionType(i64, [i64.as_pointer(), i64, i64, i8p, i64, i8p, i64,
                                     i64.as_pointer(), i64, i8p, i64])
        ptr = builder.inttoptr(fnv, fnty.as_pointer())
        return builder.call(ptr, [c.data, c.nitems, rv, builder.bitcast(d.data, i8p), d.nitems,
                                  builder.bitcast(s.data, i8p), s.nitems, i.data, i.nitems,
                                  builder.bitcast(b.data, i8p), b.nitems])

    return sig, codegen


@kernel
def run_program(code, fd, fs, ia, ba, table):
    """Run every record of ``code``; 0, or a status code with the record index in ``ia[1]``.

    A ``SLOT_GROUP`` record holds the records of a fused elementwise run: each block of
    ``BLOCK`` elements runs all of them in turn, each one patched (offsets advanced to
    the block, element count set) into the record scratch of the int arena first.
    """
    nops = code[0]
    r = code[1]
    for k in range(nops):
        slot = code[r + 1]
        if slot == SLOT_GROUP:
            st = _run_group(code, r, fd, fs, ia, ba, table)
        else:
            st = _call(table[slot], code, r, fd, fs, ia, ba)
        if st != 0:
            ia[0] = st
            ia[1] = k
            return st
        r += code[r]
    return 0


def _pointer_from_int(dtype):
    @intrinsic
    def as_pointer(typingctx, address):
        sig = types.CPointer(dtype)(types.int64)

        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

        return sig, codegen

    return as_pointer


_as_p64 = _pointer_from_int(types.float64)
_as_p32 = _pointer_from_int(types.float32)
_as_pi = _pointer_from_int(types.int64)
_as_pb = _pointer_from_int(types.uint8)


def run_packed(ptrs):
    """``run_program`` on arrays given as (address, length) pairs at ``ptrs``: code, the
    f64, f32, int64 and bool arenas, then the kernel table (see ``lower.ArenaSet``).

    Compiled as a ``cfunc`` (``DISPATCH_SIGNATURE``) and called from Python with the
    address of that one array (``native.python_entry``), so running a program needs no
    numba import.
    """
    p = carray(ptrs, 12)
    code = carray(_as_pi(p[0]), p[1])
    fd = carray(_as_p64(p[2]), p[3])
    fs = carray(_as_p32(p[4]), p[5])
    ia = carray(_as_pi(p[6]), p[7])
    ba = carray(_as_pb(p[8]), p[9])
    table = carray(_as_pi(p[10]), p[11])
    return run_program(code, fd, fs, ia, ba, table)


DISPATCH_SIGNATURE = types.int64(types.CPointer(types.int64))


@kernel
def _run_group(code, r, fd, fs, ia, ba, table):
    n = code[r + 2]
    block = code[r + 3]
    count = code[r + 4]
    for start in range(0, n, block):
        m = min(block, n - start)
        q = r + 5
        for _ in range(count):
            npatch = code[q + 2]
            t = q + 3 + npatch
            for i in range(code[t]):
                ia[RECORD_SCRATCH + i] = code[t + i]
            for i in range(npatch):
                ia[RECORD_SCRATCH + code[q + 3 + i]] += start
            ia[RECORD_SCRATCH + code[q + 1]] = m
            st = _call(table[ia[RECORD_SCRATCH + 1]], ia, RECORD_SCRATCH, fd, fs, ia, ba)
            if st != 0:
                return st
            q += code[q]
    return 0
