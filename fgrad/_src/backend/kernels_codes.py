"""The opcode table shared by lowering (``lower.py``) and the numba kernels.

Kept apart from ``lower.py`` so that editing the lowering does not invalidate the
kernels' on-disk cache (whose stamp hashes the ``kernels_*.py`` files). No numba here.
"""

import numpy as np

# Arena classes: one arena per class, indexed by these numbers.
CLS_F64, CLS_F32, CLS_I, CLS_B = 0, 1, 2, 3
CLS_DTYPES = (np.dtype(np.float64), np.dtype(np.float32), np.dtype(np.int64), np.dtype(np.uint8))
FLOAT_CLASSES = (CLS_F64, CLS_F32)

FAM_UNARY_F = 1  # [op, xo, zo, n, ipar]
FAM_BINARY_F = 2  # [op, xo, yo, zo, n, mode]
FAM_UNARY_I = 3  # [op, xo, zo, n, ipar]
FAM_BINARY_I = 4  # [op, xo, yo, zo, n, mode]
FAM_BOOL = 5  # [op, xo, yo, zo, n, mode]
FAM_COMPARE = 6  # [op, cls, xo, yo, zo, n, mode]
FAM_SELECT = 7  # [wcls, cls, wo, wscalar, zo, n, ncases, (co, cscalar) * ncases]
FAM_CONVERT = 8  # [scls, dcls, xo, zo, n, to_bool]
FAM_MOVE = 9  # [op, cls, ...]
FAM_REDUCE = 10  # [op, cls, ...]
# FAM_DOT: z = alpha * x @ y (+ z when accumulate); alpha is read at offset ``ao``
FAM_DOT = 11  # [cls, xo, yo, zo, b, m, k, n, trans_x, trans_y, ao, accumulate]

# unary (SINCOS: sin and cos of one operand in one pass, two outputs; CHECK: validate)
NEG, SIGN, FLOOR, CEIL, ROUND, ABS, SQUARE, EXP, LOG, LOG1P = range(1, 11)
EXPM1, TANH, LOGISTIC, SIN, COS, TAN, ASIN, ACOS, ATAN, SINH = range(11, 21)
COSH, ASINH, ACOSH, ATANH, SQRT, RSQRT, IPOW, NOT, ISFINITE, CHECK, SINCOS = range(21, 32)
SOFTPLUS = 32
# binary
ADD, SUB, MUL, DIV, REM, MAX, MIN, POW, ATAN2, AND, OR, XOR = range(40, 52)
EQ, NE, LT, LE, GT, GE = range(52, 58)
# data movement (FAM_MOVE; IOTA and SCATTER_ADD compute, so they are FAM_REDUCE records)
COPY, FILL, IOTA, GATHER, SCATTER_ADD, DSLICE, DUS = range(60, 67)
# reductions (FAM_REDUCE)
RSUM, RPROD, RMAX, RMIN, ARGMAX, ARGMIN, CUMSUM = range(70, 77)

VV, SV, VS = 0, 1, 2  # binary modes: both arrays / x is a scalar / y is a scalar

# Kernel slots: a record's second word is the index of its compiled kernel in the table
# the interpreter passes in. Float kernels come in two blocks (float64, then float32) of
# ``N_FLOAT_KINDS``; the int/bool kernels follow. Each slot is compiled on first use.
(K_UNARY, K_BINARY, K_COMPARE, K_SELECT, K_CONVERT_FI, K_CONVERT_FB, K_CONVERT_IF,
 K_CONVERT_BF, K_MOVE, K_REDUCE, K_DOT) = range(11)
N_FLOAT_KINDS = 11
FLOAT_BASE = {CLS_F64: 0, CLS_F32: N_FLOAT_KINDS}
SLOT_CONVERT_F64_F32 = 2 * N_FLOAT_KINDS
SLOT_CONVERT_F32_F64 = SLOT_CONVERT_F64_F32 + 1
(SLOT_UNARY_I, SLOT_BINARY_I, SLOT_BOOL, SLOT_COMPARE_I, SLOT_SELECT_I, SLOT_SELECT_B,
 SLOT_CONVERT_IB, SLOT_CONVERT_BI, SLOT_MOVE_I, SLOT_MOVE_B, SLOT_REDUCE_I,
 SLOT_DOT_I) = range(SLOT_CONVERT_F32_F64 + 1, SLOT_CONVERT_F32_F64 + 13)
N_SLOTS = SLOT_DOT_I + 1
INT_SLOTS = {
    (FAM_UNARY_I,): SLOT_UNARY_I, (FAM_BINARY_I,): SLOT_BINARY_I, (FAM_BOOL,): SLOT_BOOL,
    (FAM_COMPARE, CLS_I): SLOT_COMPARE_I, (FAM_SELECT, CLS_I): SLOT_SELECT_I,
    (FAM_SELECT, CLS_B): SLOT_SELECT_B, (FAM_CONVERT, CLS_I, CLS_B): SLOT_CONVERT_IB,
    (FAM_CONVERT, CLS_B, CLS_I): SLOT_CONVERT_BI, (FAM_MOVE, CLS_I): SLOT_MOVE_I,
    (FAM_MOVE, CLS_B): SLOT_MOVE_B, (FAM_REDUCE, CLS_I): SLOT_REDUCE_I,
    (FAM_DOT, CLS_I): SLOT_DOT_I,
    (FAM_CONVERT, CLS_F64, CLS_F32): SLOT_CONVERT_F64_F32,
    (FAM_CONVERT, CLS_F32, CLS_F64): SLOT_CONVERT_F32_F64,
}


SLOT_GROUP = N_SLOTS  # a fused group, run by the dispatcher itself

ST_OK, ST_INDEX, ST_CHOICE = 0, 1, 2  # status codes written to ia[0] (op index in ia[1])

# The int arena starts with a status block, an odometer scratch for the kernels,
# room for the dispatcher to patch one record of a fused group, and the stacks of
# pairwise sums.
STATUS_SIZE = 8
# ia[IA_GEMM] and ia[IA_GEMM + 1]: addresses of NumPy's cblas_dgemm and cblas_sgemm, or 0
# (then products use numba's np.dot); ia[IA_GEMV], ia[IA_GEMV + 1]: its cblas_dgemv and
# cblas_sgemv, or 0. Set by the interpreter in this order; see ``blas.py``.
IA_GEMM = 4
IA_GEMV = 6
CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, CBLAS_TRANS = 101, 111, 112
SCRATCH = STATUS_SIZE
MAX_NDIM = 32
RECORD_SCRATCH = SCRATCH + MAX_NDIM
PAIRWISE_SCRATCH = RECORD_SCRATCH + 32  # task stack of pairwise sums
I_VALS = PAIRWISE_SCRATCH + 256  # partial-sum stack of integer sums
I_RESERVED = I_VALS + 64
F_SCRATCH = 64  # a float arena with reductions starts with their partial-sum stack
# Float offsets in a running program's code are absolute: element counts from this
# address (the kernels see float "arenas" starting there), so inputs and outputs can
# be used where they lie. See ``lower.ArenaSet``.
FLAT_BASE = 64
FLAT_LEN = 1 << 56
