"""Lowering: a ``ClosedJaxpr`` becomes a ``Program`` the numba interpreter runs.

A ``Program`` is data only. ``code`` is one int64 array: ``code[0]`` is the number of
ops and ``code[1]`` the offset of the first record; each record is ``[length, kernel
slot, ...fields]``, whose fields are opcodes, element offsets into the arenas, sizes,
shapes and strides. Values live in four arenas, one per *class*: float64, float32,
int64 and bool (stored as uint8); a float32 program never touches the float64 arena.
Each arena starts with the constant pool (constvars and literals in their dtype; a
``convert_element_type`` of a constant is folded here), then the inputs, then the
temporaries, whose offsets are planned from liveness so buffers are reused. Float
constants of ``DIRECT_MIN`` elements or more stay out of the arenas: the program keeps
one copy (``shared_consts``) that every arena set's code points at.

Lowering also simplifies: reshapes, squeezes and same-class casts are free (the
output shares the input's buffer); a broadcast of a scalar is *lazy* (binary ops
read the scalar directly) and is only filled in memory if something needs it; a
multiplication by a constant 1 is dropped; an equation that repeats an earlier one
(same primitive, params and operands) reuses its outputs. Anything this module
cannot lower raises ``Unsupported`` and the caller falls back to the reference
evaluator.

This module must not import numba: its opcode table is shared with the kernels.
"""

from __future__ import annotations

import math

import numpy as np

from fgrad._src import core
from fgrad._src.backend.kernels_codes import (  # the opcode table
    ABS,
    ACOS,
    ACOSH,
    ADD,
    AND,
    ARGMAX,
    ARGMIN,
    ASIN,
    ASINH,
    ATAN,
    ATAN2,
    ATANH,
    CEIL,
    CHECK,
    CLS_B,
    CLS_DTYPES,
    CLS_F32,
    CLS_F64,
    CLS_I,
    COPY,
    COS,
    COSH,
    CUMSUM,
    DIV,
    DSLICE,
    DUS,
    EQ,
    EXP,
    EXPM1,
    F_SCRATCH,
    FAM_BINARY_F,
    FAM_BINARY_I,
    FAM_BOOL,
    FAM_COMPARE,
    FAM_CONVERT,
    FAM_DOT,
    FAM_MOVE,
    FAM_REDUCE,
    FAM_SELECT,
    FAM_UNARY_F,
    FAM_UNARY_I,
    FILL,
    FLAT_BASE,
    FLAT_LEN,
    FLOAT_BASE,
    FLOAT_CLASSES,
    FLOOR,
    GATHER,
    GE,
    GT,
    I_RESERVED,
    I_VALS,
    INT_SLOTS,
    IOTA,
    IPOW,
    ISFINITE,
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
    LE,
    LOG,
    LOG1P,
    LOGISTIC,
    LT,
    MAX,
    MAX_NDIM,
    MIN,
    MUL,
    NE,
    NEG,
    NOT,
    OR,
    POW,
    REM,
    RMAX,
    RMIN,
    ROUND,
    RPROD,
    RSQRT,
    RSUM,
    SCATTER_ADD,
    SIGN,
    SIN,
    SINCOS,
    SINH,
    SLOT_GROUP,
    SOFTPLUS,
    SQRT,
    SQUARE,
    SUB,
    SV,
    TAN,
    TANH,
    VS,
    VV,
    XOR,
)


def _slot(fields):
    """The kernel slot of a record (``fields[0]`` is its family, before encoding)."""
    fam = fields[0]
    if fam in (FAM_UNARY_F, FAM_BINARY_F):
        return FLOAT_BASE[fields[2].cls] + (K_UNARY if fam == FAM_UNARY_F else K_BINARY)
    if fam in (FAM_UNARY_I, FAM_BINARY_I, FAM_BOOL):
        return INT_SLOTS[(fam,)]
    if fam == FAM_CONVERT:
        s, d = fields[1], fields[2]
        if s in FLOAT_CLASSES and d not in FLOAT_CLASSES:
            return FLOAT_BASE[s] + (K_CONVERT_FI if d == CLS_I else K_CONVERT_FB)
        if d in FLOAT_CLASSES and s not in FLOAT_CLASSES:
            return FLOAT_BASE[d] + (K_CONVERT_IF if s == CLS_I else K_CONVERT_BF)
        return INT_SLOTS[(fam, s, d)]
    cls = fields[1] if fam == FAM_DOT else fields[2]
    if cls in FLOAT_CLASSES:
        kind = {FAM_COMPARE: K_COMPARE, FAM_SELECT: K_SELECT, FAM_MOVE: K_MOVE,
                FAM_REDUCE: K_REDUCE, FAM_DOT: K_DOT}[fam]
        return FLOAT_BASE[cls] + kind
    return INT_SLOTS[(fam, cls)]


# Fusion: consecutive elementwise ops over the same (large) number of elements run as
# one GROUP record, block by block, so intermediates stay in cache (see _group).
BLOCK = 2048
FUSE_MIN = 2 * BLOCK
# Position of the element count in each elementwise family's fields.
_EW_NPOS = {FAM_UNARY_F: 4, FAM_UNARY_I: 4, FAM_BINARY_F: 5, FAM_BINARY_I: 5, FAM_BOOL: 5,
            FAM_COMPARE: 6, FAM_SELECT: 6, FAM_CONVERT: 5}

_ALIGN_BYTES = 64
# (address, length) of the code, of each arena and of the kernel table
_N_PTRS = 2 * (1 + len(CLS_DTYPES) + 1)
# Positions in a FAM_DOT record's fields (kernels_codes.FAM_DOT) that a fold rewrites.
_DOT_OUT, _DOT_ALPHA, _DOT_ACCUMULATE = 4, 11, 12


class Unsupported(Exception):
    """This jaxpr cannot be lowered; the reference evaluator runs it instead."""


# --------------------------------------------------------------------------- the Program


class Program:
    """A lowered jaxpr: opcode records, arena sizes, constant images, I/O plans.

    ``in_plan`` holds ``(arg index, class, start, stop)`` for each input copied in;
    ``out_plan`` holds ``(class, start, stop, shape, dtype)`` for each output;
    ``slots`` are the kernels the program uses (compiled before its first run);
    ``aliased`` maps an output to the donated argument whose memory it took over.
    """

    def __init__(self, code, sizes, images, in_plan, out_plan, op_names, n_in, in_shapes,
                 slots, float_refs, in_refs, out_refs, shared_consts, aliased=None):
        self.code = code
        self.sizes = sizes
        self.images = images
        self.in_plan = in_plan
        self.out_plan = out_plan
        self.op_names = op_names
        self.n_in = n_in
        self.in_shapes = in_shapes
        self.slots = slots
        self.float_refs = float_refs
        self.in_refs = in_refs
        self.out_refs = out_refs
        self.shared_consts = shared_consts
        self.aliased = aliased or {}
        self.n_ops = len(op_names)
        self.ready = False  # set once every kernel in ``slots`` is compiled
        self.pool: list = []  # idle arena sets, reused by later runs

    def new_arenas(self, table) -> ArenaSet:
        """Fresh arenas holding the constant pool; ``table`` is the kernel address table."""
        return ArenaSet(self, table)

    def __repr__(self):
        sizes = "/".join(str(s) for s in self.sizes)
        return f"Program({self.n_ops} ops, arenas f64/f32/i64/bool = {sizes} elements)"


def _aligned_block(parts):
    """Empty arrays of ``(size, dtype)`` ``parts``, each starting on a 64-byte boundary,
    and their addresses. NB: they are slices of one allocation, whose address is asked
    once: an array's ``ctypes.data`` costs ~1.5 us, and NumPy's ``empty`` ~0.5 us."""
    starts, nbytes = [], 0
    for size, dtype in parts:
        starts.append(nbytes)
        nbytes += -(-size * dtype.itemsize // _ALIGN_BYTES) * _ALIGN_BYTES
    try:
        raw = np.empty(nbytes + _ALIGN_BYTES, np.uint8)
    except (ValueError, MemoryError):  # NB: NumPy's ValueError: "Maximum allowed dimension"
        raise MemoryError(
            f"fgrad: a compiled program needs {nbytes / 2 ** 30:.3g} GiB for its intermediate "
            "arrays, more than this machine can allocate; make the arrays smaller (a "
            "broadcast to a huge shape inside the function, say), or run it in pieces"
        ) from None
    address = raw.ctypes.data
    skip = -address % _ALIGN_BYTES
    arrays = [np.frombuffer(raw, dtype, size, skip + start)
              for start, (size, dtype) in zip(starts, parts)]
    return arrays, [address + skip + start for start in starts]


class ArenaSet:
    """The arenas of one run of a ``Program``, with everything a run needs ready.

    ``code`` is this set's own copy of the program's code, with every float offset made
    absolute (counted in elements from ``FLAT_BASE``; the dispatcher sees float arenas
    that start there). So a large float input or output (``Program.in_refs`` and
    ``out_refs``) is used where it lies: each run points the code at it instead of
    copying it (``direct_inputs``, ``direct_outputs``). ``copied_inputs`` pairs the
    other arguments with views of their arena slices shaped like them, ``copied_outputs``
    the other outputs with views and the dtype to convert to (None: the arena's own);
    ``only_output`` is the view of a lone output copied as is; ``in_place_outputs`` the
    outputs written into large donated arguments (``Program.aliased``).
    ``ptrs`` packs the code's and the arenas' addresses and lengths, then the kernel
    table's, so a run passes the dispatcher one address (``ptrs_address``). ``run`` is
    the interpreter's function running the program once on this set. The arenas (in
    ``arrays``), ``code`` and ``ptrs`` are aligned slices of one allocation.
    """

    __slots__ = ("arrays", "code", "copied_inputs", "direct_inputs", "copied_outputs",
                 "direct_outputs", "in_place_outputs", "only_output", "n_out", "ptrs",
                 "ptrs_address", "ia", "run")

    def __init__(self, prog, table):
        int64 = CLS_DTYPES[CLS_I]
        parts = [*zip(prog.sizes, CLS_DTYPES), (prog.code.size, int64), (_N_PTRS, int64)]
        views, addresses = _aligned_block(parts)
        *arrays, code, ptrs = views
        *arena_addresses, code_address, ptrs_address = addresses
        for arena, image in zip(arrays, prog.images):
            if image.size:
                arena[: image.size] = image
        self.arrays = arrays
        self.ia = arrays[CLS_I]
        origin = [(arena_addresses[c] - FLAT_BASE) // CLS_DTYPES[c].itemsize
                  for c in FLOAT_CLASSES]
        code[:] = prog.code
        positions, classes, offsets = prog.float_refs
        code[positions] = offsets + np.asarray(origin, np.int64)[classes]
        for flat, positions, deltas in prog.shared_consts:
            code[positions] = (flat.ctypes.data - FLAT_BASE) // flat.itemsize + deltas
        self.code = code

        in_views = {k: (c, lo, arrays[c][lo:hi].reshape(prog.in_shapes[k]))
                    for k, c, lo, hi in prog.in_plan}
        self.copied_inputs = tuple((k, view) for k, (_, _, view) in in_views.items()
                                   if k not in prog.in_refs)
        # (arg index, dtype, CodeRefs, view, the offsets when copied to the view)
        self.direct_inputs = tuple(
            (k, CLS_DTYPES[c], CodeRefs(positions, deltas), view, origin[c] + lo + deltas)
            for k, (c, lo, view) in in_views.items() if k in prog.in_refs
            for positions, deltas in [prog.in_refs[k]])
        copied, direct, in_place = [], [], []
        for j, (c, lo, hi, shape, dtype) in enumerate(prog.out_plan):
            if j in prog.out_refs:  # (output index, shape, dtype, CodeRefs)
                direct.append((j, shape, dtype, CodeRefs(*prog.out_refs[j])))
                continue
            view = arrays[c][lo:hi].reshape(shape)
            if prog.aliased.get(j) in prog.in_refs:
                # (output index, donated arg index, shape, the arena's copy when not direct)
                in_place.append((j, prog.aliased[j], shape, view))
            elif view.dtype == dtype:
                copied.append((j, view, None))
            elif dtype == np.bool_:  # bool lives in the uint8 arena: reinterpret, no cast
                copied.append((j, view.view(np.bool_), None))
            else:
                copied.append((j, view, dtype))
        self.copied_outputs = tuple(copied)
        self.direct_outputs = tuple(direct)
        self.in_place_outputs = tuple(in_place)
        # The view of a program's single output when it is copied out as is (a shortcut).
        single = len(copied) == 1 and not direct and copied[0][2] is None
        self.only_output = copied[0][1] if single else None
        self.n_out = len(prog.out_plan)

        packed = [code_address, code.size]
        for c, array in enumerate(arrays):
            if c in FLOAT_CLASSES:
                packed += [FLAT_BASE, FLAT_LEN]
            else:
                packed += [arena_addresses[c], array.size]
        packed += [table.ctypes.data, table.size]
        # NB: the addresses stay valid while this object (holding the arrays and the
        # code) lives; the kernel table is a module global only ever written in place.
        ptrs[:] = packed
        self.ptrs = ptrs
        self.ptrs_address = ptrs_address
        self.run = None  # ``run(args) -> outputs``, set by the interpreter


class CodeRefs:
    """Where a run patches the code for one buffer that lives outside the arenas: the
    code positions that hold its offset and, per position, the delta from its start.

    ``point(code, base)`` writes ``base + delta`` at each position. A few positions are
    written one by one from Python ints (~0.1 us each), more with one NumPy fancy
    assignment (~2 us whatever the count).
    """

    __slots__ = ("positions", "deltas", "pairs")
    FEW = 8

    def __init__(self, positions, deltas):
        self.positions, self.deltas = positions, deltas
        few = positions.size <= self.FEW
        self.pairs = tuple(zip(positions.tolist(), deltas.tolist())) if few else None

    def point(self, code, base):
        pairs = self.pairs
        if pairs is None:
            code[self.positions] = self.deltas + base
            return
        for position, delta in pairs:
            code[position] = base + delta


class Buffer:
    __slots__ = ("cls", "size", "kind", "offset", "cap", "local")

    def __init__(self, cls, size, kind):
        self.cls = cls
        self.size = int(size)
        self.kind = kind  # "temp", "const" or "input"
        self.offset = None
        self.cap = 0
        self.local = False  # a per-block scratch inside a fused group


class Ref:
    """An arena offset into a buffer, resolved after allocation: ``buf.offset + delta``.
    In an op's fields a ``Buffer`` stands for its own offset: Refs are made where the
    offset may lie inside the buffer (copies) and where a field is rewritten."""

    __slots__ = ("buf", "delta")

    def __init__(self, buf, delta=0):
        self.buf = buf
        self.delta = int(delta)


class Val:
    """How a jaxpr value is held: a contiguous C-order buffer, or a lazy broadcast of
    the size-1 value ``scalar`` (then ``buf`` is None until something needs memory)."""

    __slots__ = ("aval", "cls", "buf", "scalar", "value")

    def __init__(self, aval, cls, buf=None, scalar=None, value=None):
        self.aval = aval
        self.cls = cls
        self.buf = buf
        self.scalar = scalar
        self.value = value  # the Python value of a known size-1 constant


class Op:
    """One record before encoding: ``fields`` holds numbers and arena offsets (each a
    ``Buffer`` or a ``Ref``; an elementwise op's operands are always Buffers). ``inplace``
    lists read buffers whose storage the output may take over when they die here
    (dynamic_update_slice, scatter_add and cumsum; never elementwise ops, see ``unary``)."""

    __slots__ = ("fields", "reads", "writes", "inplace", "name")

    def __init__(self, fields, reads, writes, inplace, name):
        self.fields = fields
        self.reads = reads
        self.writes = writes
        self.inplace = inplace
        self.name = name


def _contiguous_strides(shape):
    strides, acc = [], 1
    for n in reversed(shape):
        strides.append(acc)
        acc *= n
    return strides[::-1]


def _prod(xs):
    out = 1
    for x in xs:
        out *= int(x)
    return out


def _size(aval):
    # NB: faster than ShapedArray.size (np.prod), which lowering calls thousands of times.
    return math.prod(aval.shape)


def _normalize_copy(shape, ss, ds):
    """Drop size-1 dims and merge dims that are contiguous in both source and destination."""
    dims = [(n, s, d) for n, s, d in zip(shape, ss, ds) if n != 1]
    merged: list = []
    for n, s, d in dims:
        if merged:
            pn, ps, pd = merged[-1]
            if ps == s * n and pd == d * n:
                merged[-1] = (pn * n, s, d)
                continue
        merged.append((n, s, d))
    return [m[0] for m in merged], [m[1] for m in merged], [m[2] for m in merged]


def _split3(shape, axis):
    return _prod(shape[:axis]), int(shape[axis]), _prod(shape[axis + 1:])


_UNARY_F = {
    "neg": NEG, "sign": SIGN, "floor": FLOOR, "ceil": CEIL, "round": ROUND, "abs": ABS,
    "square": SQUARE, "exp": EXP, "log": LOG, "log1p": LOG1P, "expm1": EXPM1, "tanh": TANH,
    "logistic": LOGISTIC, "softplus": SOFTPLUS, "sin": SIN, "cos": COS, "tan": TAN,
    "asin": ASIN, "acos": ACOS, "atan": ATAN, "sinh": SINH, "cosh": COSH, "asinh": ASINH,
    "acosh": ACOSH, "atanh": ATANH, "sqrt": SQRT, "rsqrt": RSQRT,
}
_UNARY_I = {"neg": NEG, "sign": SIGN, "abs": ABS, "square": SQUARE, "not": NOT}
_BINARY = {  # name -> (float op, int op, bool op)
    "add": (ADD, ADD, None), "sub": (SUB, SUB, None), "mul": (MUL, MUL, None),
    "div": (DIV, DIV, None), "rem": (REM, REM, None), "max": (MAX, MAX, OR),
    "min": (MIN, MIN, AND), "pow": (POW, POW, None), "atan2": (ATAN2, None, None),
    "and": (None, AND, AND), "or": (None, OR, OR), "xor": (None, XOR, XOR),
}
_COMPARE = {"eq": EQ, "ne": NE, "lt": LT, "le": LE, "gt": GT, "ge": GE}
_COMMUTATIVE = {ADD, MUL, MAX, MIN, AND, OR, XOR, EQ, NE}
_FLIPPED = {LT: GT, GT: LT, LE: GE, GE: LE}
_REDUCE = {"reduce_sum": RSUM, "reduce_prod": RPROD, "reduce_max": RMAX, "reduce_min": RMIN}
_INT64 = np.iinfo(np.int64)


# --------------------------------------------------------------------------- lowering


# The dtypes computed in their own class, looked up before ``cls_of``'s full check.
_COMPUTED_CLASSES = {np.dtype(np.float64): CLS_F64, np.dtype(np.float32): CLS_F32,
                     np.dtype(np.int64): CLS_I, np.dtype(np.bool_): CLS_B}


def _cse_key(eqn, ins):
    """What makes ``eqn`` the same computation as an earlier one (every primitive is pure):
    its primitive, params and operands — values by identity (their ``Val``; it has no
    ``__eq__``), literals by their constant buffer, which equal bits share
    (``_Lowerer.const``: 0.0 and -0.0 stay apart), and their type. Unhashable when a
    param is (looking it up raises TypeError)."""
    operands = tuple(ins)
    for atom in eqn.inputs:
        if atom.__class__ is core.Literal:  # NB: rare: most equations have none
            operands = tuple([
                val if x.__class__ is not core.Literal
                else (val.buf, x.aval.dtype, x.aval.weak_type)
                for x, val in zip(eqn.inputs, ins)
            ])
            break
    params = eqn.params
    if not params:
        return eqn.primitive, operands
    return eqn.primitive, operands, tuple(sorted(params.items()))


class _Lowerer:
    def __init__(self):
        self.cls_dtypes = CLS_DTYPES
        self.const_values: dict = {}  # const Buffer -> its flat values
        self.ops: list = []
        self.consts: list = []  # (Buffer, flat array)
        self.small_consts: dict = {}
        self.scalars: dict = {}  # (class, value, sign) -> its Val (see scalar_const)
        self.scratch: dict = {}  # float class -> the reductions' partial-sum stack
        self.name = ""
        # Epilogue folding (see _fold_into_dot): how many reads each buffer's jaxpr
        # variables have, the float products whose record may still change, and for a
        # buffer a fold rewrote, the one value it now holds.
        self.uses: dict = {}
        self.dots: dict = {}  # output Buffer -> its dot Op
        self.holder: dict = {}  # Buffer -> the Val whose value it holds after a fold

    # ---- classes and values

    def cls_of(self, dtype, strict=True):
        cls = _COMPUTED_CLASSES.get(dtype)
        if cls is not None:
            return cls
        dtype = np.dtype(dtype)
        if dtype.kind == "f":
            if dtype == np.float64:
                return CLS_F64
            if dtype == np.float32:
                return CLS_F32
            raise Unsupported(f"dtype {dtype}")
        if dtype.kind == "b":
            return CLS_B
        if dtype.kind in "iu":
            if strict and dtype != np.int64:
                raise Unsupported(f"integer dtype {dtype} (only int64 is computed)")
            if dtype.kind == "u" and dtype.itemsize == 8:
                raise Unsupported("uint64 values")
            return CLS_I
        raise Unsupported(f"dtype {dtype}")

    def new_val(self, aval):
        # NB: the start of cls_of inlined: every op's output comes here.
        cls = _COMPUTED_CLASSES.get(aval.dtype)
        if cls is None:
            cls = self.cls_of(aval.dtype)
        return Val(aval, cls, Buffer(cls, _size(aval), "temp"))

    def const(self, value, aval):
        cls = self.cls_of(aval.dtype, strict=False)
        flat = np.asarray(value).astype(self.cls_dtypes[cls]).ravel()
        known = flat.item(0) if flat.size == 1 else None
        key = None
        if flat.size <= 16:
            key = (cls, flat.size, flat.tobytes())
            buf = self.small_consts.get(key)
            if buf is not None:
                return Val(aval, cls, buf, None, known)
        buf = Buffer(cls, flat.size, "const")
        self.consts.append((buf, flat))
        self.const_values[buf] = flat
        if key is not None:
            self.small_consts[key] = buf
        return Val(aval, cls, buf, None, known)

    def scalar_const(self, value, cls):
        """The constant ``value`` of class ``cls``, a shared Val (never changed: lazy values
        wrap it, ops read its buffer).
        NB: cached because reductions and products ask for the same few (0, 1, the
        identities) again and again, and ``const`` costs several NumPy calls. The sign is
        in the key: 0.0 == -0.0."""
        key = (cls, value, math.copysign(1, value))
        val = self.scalars.get(key)
        if val is None:
            dtype = self.cls_dtypes[cls]
            val = self.const(np.asarray(value, dtype), core.ShapedArray.trusted((), dtype))
            self.scalars[key] = val
        return val

    @staticmethod
    def lazy(aval, scalar):
        return Val(aval, scalar.cls, None, scalar, scalar.value)

    @staticmethod
    def alias(x, aval):
        return Val(aval, x.cls, x.buf, x.scalar, x.value)

    def materialize(self, x):
        if x.buf is None:
            buf = Buffer(x.cls, _size(x.aval), "temp")
            if _size(x.aval):
                self.fill(x.cls, x.scalar.buf, buf, _size(x.aval))
            x.buf = buf
            # NB: the reads of the variables bound to ``x`` while it was lazy were never
            # counted (``bind`` counts buffers): a fold must not take this one over.
            self.uses[buf] = math.inf
        return x.buf

    def fill(self, cls, scalar_buf, buf, n):
        """Write the one value in ``scalar_buf`` to all ``n`` elements of ``buf``."""
        self.emit([FAM_MOVE, FILL, cls, scalar_buf, buf, n], [scalar_buf], [buf])

    @staticmethod
    def sref(x):
        """The buffer holding the value of a size-1 ``x``."""
        return x.buf if x.buf is not None else x.scalar.buf

    def emit(self, fields, reads, writes, inplace=()):
        """Append the op; it takes the lists passed over (every caller builds fresh ones)."""
        self.ops.append(Op(fields, reads, writes, inplace, self.name))

    # ---- the walk

    def lower_jaxpr(self, jaxpr, const_vals, in_vals):
        # jaxpr variable -> how many times equations and outputs read it (literals are
        # counted too, and never looked up)
        reads_of: dict = {}
        for eqn in jaxpr.eqns:
            for atom in eqn.inputs:
                reads_of[atom] = reads_of.get(atom, 0) + 1
        for atom in jaxpr.outs:
            reads_of[atom] = reads_of.get(atom, 0) + 1
        env: dict = {}  # jaxpr variable -> its Val; a literal -> its Val, once read
        uses = self.uses

        def bind(v, x):
            env[v] = x
            if x.buf is not None:
                uses[x.buf] = uses.get(x.buf, 0) + reads_of.get(v, 0)

        for v, c in zip(jaxpr.constvars, const_vals):
            bind(v, c)
        for v, x in zip(jaxpr.in_binders, in_vals):
            bind(v, x)

        def read(atom):
            if atom.__class__ is core.Literal and atom not in env:
                # NB: a literal becomes a constant when first read (the jaxpr keeps it
                # alive, so it stays a valid key): the constant pool follows the equations.
                env[atom] = self.const(atom.val, atom.aval)
            return env[atom]

        computed: dict = {}  # common subexpressions: _cse_key -> the outputs
        for eqn in jaxpr.eqns:
            name = eqn.primitive.name
            handler = _HANDLERS.get(name)
            if handler is None:
                raise Unsupported(f"primitive {name}")
            self.name = name
            try:
                ins = [env[x] for x in eqn.inputs]  # NB: read() inlined: the common case
            except KeyError:  # a literal not read yet
                ins = [read(x) for x in eqn.inputs]
            key = _cse_key(eqn, ins)
            try:
                outs = computed.get(key)
            except TypeError:  # an unhashable param: never merged
                key = outs = None
            if outs is not None and any(self.holder.get(x.buf, x) is not x for x in outs):
                outs = None  # a fold has since overwritten that value's buffer
            if outs is None:
                binders = eqn.out_binders
                # NB: nearly every equation has one output: no list comprehension for it.
                avals = [binders[0].aval] if len(binders) == 1 else [v.aval for v in binders]
                outs = handler(self, ins, eqn.params, avals)
                if key is not None:
                    computed[key] = outs
            for v, out in zip(eqn.out_binders, outs):
                # NB: bind() inlined: this loop runs for every equation.
                env[v] = out
                if out.buf is not None:
                    uses[out.buf] = uses.get(out.buf, 0) + reads_of.get(v, 0)
        return [read(x) for x in jaxpr.outs]

    # ---- elementwise

    def unary(self, x, aval, fam, op, ipar=0):
        if x.buf is None:
            s = self.unary(x.scalar, x.scalar.aval.update(dtype=aval.dtype), fam, op, ipar)
            return self.lazy(aval, s)
        out = self.new_val(aval)
        n = out.buf.size
        if n:
            if fam == FAM_BOOL:
                fields = [FAM_BOOL, op, x.buf, x.buf, out.buf, n, VV]
            else:
                fields = [fam, op, x.buf, out.buf, n, ipar]
            # NB: elementwise outputs never reuse their input's buffer: LLVM's runtime
            # alias check sees the overlap and runs the scalar loop (measured 4x slower
            # for log). Liveness still recycles buffers from one op to the next.
            self.emit(fields, [x.buf], [out.buf])
        return out

    def _unary_prim(self, ins, params, avals):
        (x,), (aval,) = ins, avals
        if x.cls in FLOAT_CLASSES:
            return [self.unary(x, aval, FAM_UNARY_F, _UNARY_F[self.name])]
        if x.cls == CLS_I and self.name in _UNARY_I:
            return [self.unary(x, aval, FAM_UNARY_I, _UNARY_I[self.name])]
        if x.cls == CLS_B and self.name == "not":
            return [self.unary(x, aval, FAM_BOOL, NOT)]
        raise Unsupported(f"{self.name} on {x.aval.dtype}")

    def p_is_finite(self, ins, params, avals):
        x = ins[0]
        if x.cls not in FLOAT_CLASSES:
            raise Unsupported("is_finite on a non-float")
        return [self.unary(x, avals[0], FAM_UNARY_F, ISFINITE)]

    def p_integer_pow(self, ins, params, avals):
        x, y = ins[0], int(params["y"])
        if y == 1:
            return [self.alias(x, avals[0])]
        if x.cls in FLOAT_CLASSES:
            return [self.unary(x, avals[0], FAM_UNARY_F, IPOW, y)]
        if x.cls == CLS_I and y >= 0:
            return [self.unary(x, avals[0], FAM_UNARY_I, IPOW, y)]
        raise Unsupported(f"integer_pow on {x.aval.dtype}")

    def p_stop_gradient(self, ins, params, avals):
        return [self.alias(ins[0], avals[0])]

    def binary(self, x, y, aval, fam, op):
        if x.buf is None and y.buf is None:
            s_aval = core.ShapedArray((), aval.dtype)
            return self.lazy(aval, self.binary(x.scalar, y.scalar, s_aval, fam, op))
        if fam == FAM_COMPARE and x.cls == CLS_B:
            x, y = self.to_int(x), self.to_int(y)
        if fam in (FAM_BINARY_F, FAM_BINARY_I):
            if op in (MUL, DIV) and y.value is not None and y.value == 1:
                return self.alias(x, aval)
            if op == MUL and x.value is not None and x.value == 1:
                return self.alias(y, aval)
        if x.buf is None and fam == FAM_BINARY_F and op in (MAX, MIN):
            # NB: not swapped: on a tie of 0.0 and -0.0 NumPy returns the second operand.
            self.materialize(x)
        if x.buf is None and (op in _COMMUTATIVE or op in _FLIPPED):
            # Kernels have scalar-first loops only for non-commutative ops.
            x, y, op = y, x, _FLIPPED.get(op, op)
        mode, xb, yb = VV, x.buf, y.buf
        if x.buf is None:
            mode, xb = SV, x.scalar.buf
        elif y.buf is None:
            mode, yb = VS, y.scalar.buf
        if mode != VV and _size(x.aval) == 1 and _size(y.aval) == 1:
            mode = VV
        out = self.new_val(aval)
        n = out.buf.size
        if n:
            if fam == FAM_COMPARE:
                fields = [FAM_COMPARE, op, x.cls, xb, yb, out.buf, n, mode]
            else:
                fields = [fam, op, xb, yb, out.buf, n, mode]
            self.emit(fields, [xb, yb], [out.buf])
        return out

    def convert(self, x, cls):
        """``x`` cast to class ``cls`` (a new value; lazy stays lazy)."""
        aval = x.aval.update(dtype=self.cls_dtypes[cls], weak_type=False)
        if x.cls == cls:
            return self.alias(x, aval)
        if x.buf is None:
            return self.lazy(aval, self.convert(x.scalar, cls))
        if x.buf.kind == "const":  # fold: constants stay in their consumers' dtype
            flat = self.const_values[x.buf]
            return self.const(flat.astype(bool) if cls == CLS_B else flat, aval)
        out = Val(aval, cls, Buffer(cls, _size(aval), "temp"))
        if _size(aval):
            self.emit([FAM_CONVERT, x.cls, cls, x.buf, out.buf, _size(aval),
                       int(cls == CLS_B)], [x.buf], [out.buf])
        return out

    def to_int(self, x):
        return self.convert(x, CLS_I)

    def _binary_prim(self, ins, params, avals):
        x, y = ins
        ops = _BINARY[self.name]
        kind = 0 if x.cls in FLOAT_CLASSES else (1 if x.cls == CLS_I else 2)
        op = ops[kind]
        if op is None:
            raise Unsupported(f"{self.name} on {x.aval.dtype}")
        fam = (FAM_BINARY_F, FAM_BINARY_I, FAM_BOOL)[kind]
        # NB: no product in the program (yet) is the common case: then nothing can fold.
        if kind == 0 and self.dots and op in (ADD, SUB, MUL):
            folded = self._fold_into_dot(op, x, y, avals[0])
            if folded is not None:
                return [folded]
        return [self.binary(x, y, avals[0], fam, op)]

    def _compare_prim(self, ins, params, avals):
        x, y = ins
        return [self.binary(x, y, avals[0], FAM_COMPARE, _COMPARE[self.name])]

    def p_select_n(self, ins, params, avals):
        which, *cases = ins
        (aval,) = avals
        if which.cls in FLOAT_CLASSES:
            raise Unsupported("float select_n predicate")
        if len(cases) == 1:
            return [self.alias(cases[0], aval)]
        if which.cls == CLS_I:
            # NB: np.choose semantics: every entry must name a case.
            if _size(which.aval):
                wb = self.sref(which) if which.buf is None else which.buf
                n = 1 if which.buf is None else _size(which.aval)
                self.emit([FAM_UNARY_I, CHECK, wb, wb, n, len(cases)], [wb], [])
            if len(cases) == 2:
                return [self.select2(self.convert(which, CLS_B), cases[0], cases[1], aval)]
            out = cases[0]
            for k in range(1, len(cases)):
                b_aval = which.aval.update(dtype=np.dtype(bool), weak_type=False)
                k_val = self.lazy(which.aval, self.scalar_const(k, CLS_I))
                is_k = self.binary(which, k_val, b_aval, FAM_COMPARE, EQ)
                out = self.select2(is_k, out, cases[k], aval)
            return [out]
        return [self.select2(which, cases[0], cases[1], aval)]

    def select2(self, which, c0, c1, aval):
        """``c1`` where ``which`` (bool) else ``c0``."""
        n = _size(aval)
        if which.buf is None and c0.buf is None and c1.buf is None:
            s_aval = core.ShapedArray((), aval.dtype)
            return self.lazy(aval, self.select2(which.scalar, c0.scalar, c1.scalar, s_aval))
        out = self.new_val(aval)
        if not n:
            return out
        wscalar = int(which.buf is None or (_size(which.aval) == 1 and n != 1))
        wb = self.sref(which) if wscalar else which.buf
        fields = [FAM_SELECT, CLS_B, out.cls, wb, wscalar, out.buf, n, 2]
        reads = [wb]
        for c in (c0, c1):
            scalar = c.buf is None
            cb = c.scalar.buf if scalar else c.buf
            fields += [cb, int(scalar)]
            reads.append(cb)
        self.emit(fields, reads, [out.buf])
        return out

    def p_convert_element_type(self, ins, params, avals):
        (x,), (aval,) = ins, avals
        return [self.alias(self.convert(x, self.cls_of(aval.dtype)), aval)]

    # ---- shapes

    def copy(self, src, so, dst, do, shape, ss, ds):
        if any(int(n) == 0 for n in shape):
            return
        shape, ss, ds = _normalize_copy([int(n) for n in shape], ss, ds)
        if len(shape) > MAX_NDIM:
            raise Unsupported("too many dimensions")
        self.emit([FAM_MOVE, COPY, src.cls, Ref(src, so), Ref(dst, do), len(shape),
                   *shape, *ss, *ds], [src], [dst])

    def p_broadcast_in_dim(self, ins, params, avals):
        (x,), (aval,) = ins, avals
        if x.buf is None:
            return [self.lazy(aval, x.scalar)]
        if _size(aval) == _size(x.aval):
            return [self.alias(x, aval)]
        if _size(x.aval) == 1:
            return [self.lazy(aval, x)]
        out = self.new_val(aval)
        xs = _contiguous_strides(x.aval.shape)
        ss = [0] * len(aval.shape)
        for i, d in enumerate(params["broadcast_dimensions"]):
            if x.aval.shape[i] == aval.shape[d]:
                ss[d] = xs[i]
        self.copy(x.buf, 0, out.buf, 0, aval.shape, ss, _contiguous_strides(aval.shape))
        return [out]

    def _alias_prim(self, ins, params, avals):
        return [self.alias(ins[0], avals[0])]

    p_reshape = p_squeeze = p_expand_dims = _alias_prim

    def p_transpose(self, ins, params, avals):
        (x,), (aval,) = ins, avals
        perm = params["permutation"]
        if x.buf is None:
            return [self.lazy(aval, x.scalar)]
        moved = [p for p in perm if x.aval.shape[p] != 1]
        if moved == sorted(moved):
            return [self.alias(x, aval)]
        out = self.new_val(aval)
        xs = _contiguous_strides(x.aval.shape)
        self.copy(x.buf, 0, out.buf, 0, aval.shape, [xs[p] for p in perm],
                  _contiguous_strides(aval.shape))
        return [out]

    def p_slice(self, ins, params, avals):
        (x,), (aval,) = ins, avals
        if x.buf is None:
            return [self.lazy(aval, x.scalar)]
        if aval.shape == x.aval.shape:
            return [self.alias(x, aval)]
        out = self.new_val(aval)
        xs = _contiguous_strides(x.aval.shape)
        so = sum(s * st for s, st in zip(params["start_indices"], xs))
        ss = [st * step for st, step in zip(xs, params["strides"])]
        self.copy(x.buf, so, out.buf, 0, aval.shape, ss, _contiguous_strides(aval.shape))
        return [out]

    def p_rev(self, ins, params, avals):
        (x,), (aval,) = ins, avals
        dims = params["dimensions"]
        if x.buf is None or all(x.aval.shape[d] <= 1 for d in dims):
            return [self.alias(x, aval)]
        out = self.new_val(aval)
        xs = _contiguous_strides(x.aval.shape)
        so = sum((x.aval.shape[d] - 1) * xs[d] for d in dims)
        ss = [-st if d in dims else st for d, st in enumerate(xs)]
        self.copy(x.buf, so, out.buf, 0, aval.shape, ss, _contiguous_strides(aval.shape))
        return [out]

    def p_pad(self, ins, params, avals):
        (x, value), (aval,) = ins, avals
        if _size(aval) == _size(x.aval):
            return [self.alias(x, aval)]
        out = self.new_val(aval)
        if _size(aval):
            vb = self.sref(value)
            self.fill(out.cls, vb, out.buf, _size(aval))
        if _size(x.aval):
            xb = self.materialize(x)
            os_ = _contiguous_strides(aval.shape)
            config = params["padding_config"]
            do = sum(lo * st for (lo, _, _), st in zip(config, os_))
            ds = [st * (interior + 1) for (_, _, interior), st in zip(config, os_)]
            self.copy(xb, 0, out.buf, do, x.aval.shape, _contiguous_strides(x.aval.shape), ds)
        return [out]

    def p_concatenate(self, ins, params, avals):
        (aval,) = avals
        dim = params["dimension"]
        out = self.new_val(aval)
        os_ = _contiguous_strides(aval.shape)
        start = 0
        for x in ins:
            if _size(x.aval):
                xb = self.materialize(x)
                self.copy(xb, 0, out.buf, start * os_[dim], x.aval.shape,
                          _contiguous_strides(x.aval.shape), os_)
            start += x.aval.shape[dim]
        return [out]

    def p_iota(self, ins, params, avals):
        (aval,) = avals
        out = self.new_val(aval)
        if out.cls == CLS_B:
            raise Unsupported("bool iota")
        if _size(aval):
            a, n, b = _split3(aval.shape, params["dimension"])
            self.emit([FAM_REDUCE, IOTA, out.cls, out.buf, a, n, b], [], [out.buf])
        return [out]

    # ---- indexing

    def p_dynamic_slice(self, ins, params, avals):
        x, *starts = ins
        (aval,) = avals
        out = self.new_val(aval)
        if not _size(aval):
            return [out]
        if any(s.cls != CLS_I for s in starts):
            raise Unsupported("non-integer start indices")
        xb = self.materialize(x)
        sizes = list(aval.shape)
        if len(sizes) > MAX_NDIM:
            raise Unsupported("too many dimensions")
        sbufs = [self.sref(s) for s in starts]
        self.emit([FAM_MOVE, DSLICE, x.cls, xb, out.buf, len(sizes), *sizes,
                   *_contiguous_strides(x.aval.shape), *_contiguous_strides(sizes),
                   *x.aval.shape, *sbufs], [xb, *sbufs], [out.buf])
        return [out]

    def p_dynamic_update_slice(self, ins, params, avals):
        x, update, *starts = ins
        (aval,) = avals
        if any(s.cls != CLS_I for s in starts):
            raise Unsupported("non-integer start indices")
        out = self.new_val(aval)
        if not _size(aval):
            return [out]
        xb = self.materialize(x)
        ub = self.materialize(update)
        sbufs = [self.sref(s) for s in starts]
        sizes = list(update.aval.shape)
        if len(sizes) > MAX_NDIM:
            raise Unsupported("too many dimensions")
        reads = [xb, ub, *sbufs]
        inplace = [xb] if reads.count(xb) == 1 else []
        self.emit([FAM_MOVE, DUS, x.cls, xb, ub, out.buf, _size(aval), len(sizes),
                   *sizes, *_contiguous_strides(sizes), *_contiguous_strides(aval.shape),
                   *aval.shape, *sbufs], reads, [out.buf], inplace)
        return [out]

    def p_gather(self, ins, params, avals):
        (x, idx), (aval,) = ins, avals
        if idx.cls != CLS_I:
            raise Unsupported("non-integer indices")
        out = self.new_val(aval)
        xb, ib = self.materialize(x), self.materialize(idx)
        a, n, b = _split3(x.aval.shape, params["axis"])
        # NB: indices are validated even when the output is empty (a == 0 or b == 0).
        self.emit([FAM_MOVE, GATHER, x.cls, xb, ib, out.buf, a, n, b,
                   _size(idx.aval)], [xb, ib], [out.buf])
        return [out]

    def p_scatter_add(self, ins, params, avals):
        (x, idx, upd), (aval,) = ins, avals
        if idx.cls != CLS_I or x.cls == CLS_B:
            raise Unsupported("scatter_add of bools or with non-integer indices")
        out = self.new_val(aval)
        xb, ib, ub = self.materialize(x), self.materialize(idx), self.materialize(upd)
        a, n, b = _split3(x.aval.shape, params["axis"])
        reads = [xb, ib, ub]
        inplace = [xb] if reads.count(xb) == 1 else []
        self.emit([FAM_REDUCE, SCATTER_ADD, x.cls, xb, ib, ub, out.buf, a, n,
                   b, _size(idx.aval)], reads, [out.buf], inplace)
        return [out]

    # ---- reductions

    def _reduce_prim(self, ins, params, avals):
        (x,), (aval,) = ins, avals
        op = _REDUCE[self.name]
        axes = params["axes"]
        shape = x.aval.shape
        if all(shape[a] == 1 for a in axes):
            if op == RSUM and axes and x.cls in FLOAT_CLASSES:
                # NB: NumPy's sums start from +0.0, so the sum of one -0.0 is 0.0.
                zero = self.lazy(aval, self.scalar_const(0, x.cls))
                return [self.binary(self.alias(x, aval), zero, aval, FAM_BINARY_F, ADD)]
            return [self.alias(x, aval)]
        if x.cls == CLS_B:
            if op in (RSUM, RPROD):
                raise Unsupported("sum/prod of bools")
            # any/all: reduce 0/1 as int64 (no bool reduction kernel to compile).
            i_aval = aval.update(dtype=np.dtype(np.int64), weak_type=False)
            reduced = self._reduce_prim([self.to_int(x)], params, [i_aval])[0]
            return [self.alias(self.convert(reduced, CLS_B), aval)]
        out = self.new_val(aval)
        if not _size(aval):
            return [out]
        identity = self._identity(op, x.cls)
        if _prod(shape[a] for a in axes) == 0:
            if op in (RMAX, RMIN):
                raise Unsupported("max/min over an empty axis")
            self.fill(out.cls, identity.buf, out.buf, _size(aval))
            return [out]
        xb = self.materialize(x)
        dims: list = []
        for d, n in enumerate(shape):
            if n == 1:
                continue
            red = d in axes
            if dims and dims[-1][1] == red:
                dims[-1][0] *= n
            else:
                dims.append([n, red])
        if len(dims) > MAX_NDIM:
            raise Unsupported("too many dimensions")
        ostrides, acc = [0] * len(dims), 1
        for i in range(len(dims) - 1, -1, -1):
            if not dims[i][1]:
                ostrides[i] = acc
                acc *= dims[i][0]
        if x.cls == CLS_I:
            scratch = I_VALS
        else:  # NB: a buffer's offset, so the stack moves with the arena (see ``ArenaSet``)
            scratch = self.scratch.setdefault(x.cls, Buffer(x.cls, F_SCRATCH, "scratch"))
        self.emit([FAM_REDUCE, op, x.cls, xb, out.buf, _size(aval), identity.buf,
                   scratch, len(dims), *[d[0] for d in dims], *ostrides],
                  [xb, identity.buf], [out.buf])
        return [out]

    p_reduce_sum = p_reduce_prod = p_reduce_max = p_reduce_min = _reduce_prim

    def _identity(self, op, cls):
        if op == RSUM:
            return self.scalar_const(0, cls)
        if op == RPROD:
            return self.scalar_const(1, cls)
        big = _INT64.max if cls == CLS_I else np.inf
        small = _INT64.min if cls == CLS_I else -np.inf
        return self.scalar_const(small if op == RMAX else big, cls)

    def _arg_prim(self, ins, params, avals):
        (x,), (aval,) = ins, avals
        if x.cls == CLS_B:
            x = self.to_int(x)
        out = self.new_val(aval)
        if not _size(aval):
            return [out]
        xb = self.materialize(x)
        a, k, b = _split3(x.aval.shape, params["axes"][0])
        op = ARGMAX if self.name == "argmax" else ARGMIN
        self.emit([FAM_REDUCE, op, x.cls, xb, out.buf, a, k, b], [xb], [out.buf])
        return [out]

    p_argmax = p_argmin = _arg_prim

    def p_cumsum(self, ins, params, avals):
        (x,), (aval,) = ins, avals
        if x.cls == CLS_B:
            raise Unsupported("cumsum of bools")
        out = self.new_val(aval)
        if not _size(aval):
            return [out]
        xb = self.materialize(x)
        a, k, b = _split3(x.aval.shape, params["axis"])
        self.emit([FAM_REDUCE, CUMSUM, x.cls, xb, out.buf, a, k, b,
                   int(params["reverse"])], [xb], [out.buf], [xb])
        return [out]

    # ---- dot_general

    def _dot_operand(self, x, batch, first, second):
        """The buffer of ``x`` laid out as (batch, first, second), and whether it is
        stored transposed, as (batch, second, first), instead."""
        shape = x.aval.shape
        xb = self.materialize(x)

        def in_order(dims):
            kept = [d for d in dims if shape[d] != 1]
            return kept == sorted(kept)

        if in_order(batch + first + second):
            return xb, 0
        if in_order(batch + second + first):
            return xb, 1
        perm = batch + first + second
        tmp = Buffer(x.cls, _size(x.aval), "temp")
        new_shape = [shape[p] for p in perm]
        xs = _contiguous_strides(shape)
        self.copy(xb, 0, tmp, 0, new_shape, [xs[p] for p in perm],
                  _contiguous_strides(new_shape))
        return tmp, 0

    def p_dot_general(self, ins, params, avals):
        (x, y), (aval,) = ins, avals
        (lc, rc), (lb, rb) = params["dimension_numbers"]
        lc, rc, lb, rb = list(lc), list(rc), list(lb), list(rb)
        if x.cls == CLS_B:  # or of ands: an int64 product, nonzero
            i_aval = aval.update(dtype=np.dtype(np.int64), weak_type=False)
            prod = self.p_dot_general([self.to_int(x), self.to_int(y)], params, [i_aval])[0]
            return [self.alias(self.convert(prod, CLS_B), aval)]
        out = self.new_val(aval)
        if not _size(aval):
            return [out]
        x_free = [d for d in range(x.aval.ndim) if d not in lc and d not in lb]
        y_free = [d for d in range(y.aval.ndim) if d not in rc and d not in rb]
        b = _prod(x.aval.shape[d] for d in lb)
        m = _prod(x.aval.shape[d] for d in x_free)
        k = _prod(x.aval.shape[d] for d in lc)
        n = _prod(y.aval.shape[d] for d in y_free)
        if k == 0:
            zero = self.scalar_const(0, out.cls)
            self.fill(out.cls, zero.buf, out.buf, _size(aval))
            return [out]
        xb, tx = self._dot_operand(x, lb, x_free, lc)  # (batch, m, k)
        yb, ty = self._dot_operand(y, rb, rc, y_free)  # (batch, k, n)
        alpha = self.scalar_const(1, out.cls).buf
        self.emit([FAM_DOT, out.cls, xb, yb, out.buf, b, m, k, n, tx, ty,
                   alpha, 0], [xb, yb, alpha], [out.buf])
        if out.cls in FLOAT_CLASSES:
            self.dots[out.buf] = self.ops[-1]
        return [out]

    def _fold_into_dot(self, op, x, y, aval):
        """Fold ``c * D``, ``Y + D`` and ``Y - D`` into the record of the product ``D``
        (BLAS's ``z = alpha * x @ y + beta * z``), when nothing else reads ``D``: a scale
        by a known nonzero constant becomes ``alpha``; an addend ``Y`` of the same shape
        is put in the output first (``Y``'s own buffer when nothing else reads it, e.g. a
        broadcast bias) and the product accumulates into it. ``p - lr * (a.T @ b)`` (an
        SGD step) and ``x @ w + b`` then cost no pass of their own. None when nothing
        folds."""
        if op == MUL:
            for d, c in ((x, y), (y, x)):
                dot = self._foldable_dot(d, aval)
                if dot is not None and c.value is not None and self._scales(dot, c.value):
                    return self._rescale_dot(d, dot, c.value, aval)
            return None
        pairs = ((y, x, 1), (x, y, 1)) if op == ADD else ((y, x, -1),)
        for d, addend, sign in pairs:
            dot = self._foldable_dot(d, aval)
            if dot is not None and addend.cls == d.cls and addend.aval.shape == aval.shape:
                return self._accumulate_dot(d, dot, addend, sign, aval)
        return None

    def _foldable_dot(self, d, aval):
        """The record of the product ``d`` if a fold may change it: a float product not
        yet accumulating, of ``aval``'s shape, that only the equation at hand reads."""
        if d.buf is None or self.uses.get(d.buf) != 1 or d.aval.shape != aval.shape:
            return None
        return self.dots.get(d.buf)

    def _scales(self, dot, factor):
        """Whether ``factor * (x @ y)`` may become the product's ``alpha``: only a positive
        finite factor of an unscaled product. Not 0, inf or nan: BLAS skips the product
        when alpha is 0, so 0 * inf would not give nan. Not a second scale: ``b * (a * P)``
        as one ``alpha`` could overflow or underflow where the two steps do not (or the
        reverse). Not a negative one: some OpenBLAS kernels compute ``0 + alpha * P``,
        which turns the reference's ``-3 * (+0.0)`` into ``+0.0`` (a negative alpha
        still comes with an addend, ``y - c * P``: there the addend's sign rules)."""
        if not (0 < factor < math.inf):
            return False
        return self.const_values[dot.fields[_DOT_ALPHA]][0] == 1

    def _rescale_dot(self, d, dot, factor, aval):
        alpha = self.const_values[dot.fields[_DOT_ALPHA]][0] * factor
        alpha_buf = self.scalar_const(alpha, d.cls).buf
        dot.fields[_DOT_ALPHA] = alpha_buf
        dot.reads[2] = alpha_buf  # reads: x, y, alpha
        self.uses[d.buf] = 0  # its one reader is this fold; the new value's come next
        return self._new_holder(d.buf, aval, d.cls)

    def _accumulate_dot(self, d, dot, addend, sign, aval):
        if addend.buf is not None and addend.buf.kind == "temp" \
                and self.uses.get(addend.buf) == 1:
            target = addend.buf  # nothing else reads the addend: take its buffer over
            # NB: if the addend is itself a product, its buffer now holds more than its
            # product: no later fold may rescale or move that record.
            self.dots.pop(target, None)
        else:
            target = Buffer(d.cls, _size(aval), "temp")
            if addend.buf is None:
                self.fill(d.cls, addend.scalar.buf, target, _size(aval))
            else:
                strides = _contiguous_strides(aval.shape)
                self.copy(addend.buf, 0, target, 0, aval.shape, strides, strides)
        if sign < 0:
            self._rescale_dot(d, dot, -1, aval)
        # NB: moving the product after the addend's ops is safe: its operands are never
        # written again, and nothing between read its output (``uses`` was 1).
        self.ops.remove(dot)
        dot.fields[_DOT_OUT] = target
        dot.fields[_DOT_ACCUMULATE] = 1
        dot.reads.append(target)
        dot.writes = [target]
        self.ops.append(dot)
        del self.dots[d.buf]
        self.uses[d.buf] = 0
        self.uses[target] = 0
        self.holder[d.buf] = None  # nothing writes it any more
        return self._new_holder(target, aval, d.cls)

    def _new_holder(self, buf, aval, cls):
        """The value ``buf`` holds after a fold; earlier values in it are stale (CSE)."""
        val = Val(aval, cls, buf)
        self.holder[buf] = val
        return val

    # ---- calls

    def p_custom_vjp_call(self, ins, params, avals):
        closed = params["call_jaxpr"]
        consts = [self.const(c, v.aval) for c, v in zip(closed.consts, closed.jaxpr.constvars)]
        name = self.name
        outs = self.lower_jaxpr(closed.jaxpr, consts, ins)
        self.name = name
        return outs


for _name in _UNARY_F:
    setattr(_Lowerer, "p_" + _name, _Lowerer._unary_prim)
_Lowerer.p_not = _Lowerer._unary_prim
for _name in _BINARY:
    setattr(_Lowerer, "p_" + _name, _Lowerer._binary_prim)
for _name in _COMPARE:
    setattr(_Lowerer, "p_" + _name, _Lowerer._compare_prim)
# primitive name -> the _Lowerer method that lowers it
_HANDLERS = {name[2:]: method for name, method in vars(_Lowerer).items()
             if name.startswith("p_")}


# --------------------------------------------------------------------------- memory planning


class _Allocator:
    """Best-fit allocation of aligned blocks in one arena, with coalescing frees."""

    def __init__(self, base, align):
        self.top = self.high = base
        self.align = align
        self.free: list = []  # sorted [offset, size]

    def alloc(self, size):
        cap = -(-size // self.align) * self.align
        free = self.free
        best = None
        for i, block in enumerate(free):
            sz = block[1]
            if sz == cap:  # NB: the first exact fit is the best fit: stop looking
                best = i
                break
            if sz > cap and (best is None or sz < free[best][1]):
                best = i
        if best is not None:
            off, sz = free[best]
            if sz == cap:
                del free[best]
            else:
                free[best] = [off + cap, sz - cap]
            return off, cap
        off = self.top
        self.top += cap
        if self.top > self.high:
            self.high = self.top
        return off, cap

    def release(self, off, cap):
        if not cap:
            return
        free = self.free
        i = 0
        while i < len(free) and free[i][0] < off:
            i += 1
        free.insert(i, [off, cap])
        if i + 1 < len(free) and free[i][0] + free[i][1] == free[i + 1][0]:
            free[i][1] += free[i + 1][1]
            del free[i + 1]
        if i > 0 and free[i - 1][0] + free[i - 1][1] == free[i][0]:
            free[i - 1][1] += free[i][1]
            del free[i]
            i -= 1
        if free[i][0] + free[i][1] == self.top:
            self.top = free[i][0]
            del free[i]


def _pair_sin_cos(ops):
    """Merge ``sin x`` and ``cos x`` of the same buffer into one SINCOS op (at the
    earlier position): the argument reduction and both polynomials are shared, and the
    derivative of sin (or cos) always brings the other one in."""
    sin_at: dict = {}  # (buffer, n) -> the position of the first sin of it in ``ops``
    cos_at: dict = {}
    for i, op in enumerate(ops):
        f = op.fields
        if f[0] == FAM_UNARY_F and f[1] in (SIN, COS):
            (sin_at if f[1] == SIN else cos_at).setdefault((f[2], f[4]), i)
    pairs = [(i, cos_at[key], key) for key, i in sin_at.items() if key in cos_at]
    if not pairs:
        return ops
    ops = list(ops)
    dropped = []
    for i, j, (x, n) in pairs:
        s, c = ops[i], ops[j]
        ops[min(i, j)] = Op([FAM_UNARY_F, SINCOS, x, s.fields[3], n, c.fields[3]],
                            [x], [s.writes[0], c.writes[0]], [], "sincos")
        dropped.append(max(i, j))
    for i in sorted(dropped, reverse=True):
        del ops[i]
    return ops


def _group(ops, pinned):
    """Split ``ops`` into units: single ops, and runs of elementwise ops over the same
    ``n >= FUSE_MIN`` elements, which the dispatcher runs ``BLOCK`` elements at a time.
    Buffers a run both produces and consumes (and nothing else reads) shrink to one
    block of scratch."""
    units, run = [], []
    groups = []  # the indices in ``units`` of the runs

    def close():
        if len(run) > 1:
            groups.append(len(units))
            units.append(list(run))
        else:
            units.extend([op] for op in run)
        run.clear()

    for op in ops:
        fields = op.fields
        npos = _EW_NPOS.get(fields[0])
        n = fields[npos] if npos is not None else 0
        if n >= FUSE_MIN and (not run or run[0].fields[_EW_NPOS[run[0].fields[0]]] == n):
            run.append(op)
            continue
        if run:
            close()
        if n >= FUSE_MIN:
            run.append(op)
        else:
            units.append([op])
    close()
    if not groups:
        return units
    first: dict = {}  # buffer -> the first and the last unit that touch it
    last: dict = {}
    for u, unit in enumerate(units):
        for op in unit:
            for b in op.reads + op.writes:
                first.setdefault(b, u)
                last[b] = u
    for u in groups:
        for op in units[u]:
            for w in op.writes:
                if w.kind == "temp" and first[w] == last[w] == u and w not in pinned:
                    w.size, w.local = BLOCK, True
    return units


def _plan(units, pinned, allocs):
    """Assign arena offsets. A buffer lives from the unit that first writes it to the
    last unit that touches it (a fused group counts as one step: its ops interleave)."""
    last: dict = {}
    for i, unit in enumerate(units):
        for op in unit:
            for b in op.reads + op.writes:
                last[b] = i
    for b in pinned:
        last[b] = len(units)
    dying: dict = {}  # unit index -> the buffers it touches last
    for b, i in last.items():
        dying.setdefault(i, []).append(b)
    for i, unit in enumerate(units):
        for op in unit:
            taken = []
            for w in op.writes:
                if w.offset is not None:
                    continue
                for cand in op.inplace if len(unit) == 1 else ():
                    if (cand.kind == "temp" and cand.cls == w.cls and cand.size == w.size
                            and last.get(cand) == i and cand not in taken and cand.cap
                            and cand not in op.writes):
                        w.offset, w.cap = cand.offset, cand.cap
                        cand.cap = 0  # ownership moves to w
                        taken.append(cand)
                        break
                else:
                    if w.size:
                        w.offset, w.cap = allocs[w.cls].alloc(w.size)
                    else:
                        w.offset, w.cap = 0, 0
        # NB: in no particular order: freed blocks coalesce, so the allocator's state after
        # a unit does not depend on the order of its releases.
        for b in dying.get(i, ()):
            if b.kind == "temp" and b.cap:
                allocs[b.cls].release(b.offset, b.cap)
                b.cap = 0


class _FloatRefs:
    """Where the code holds float arena offsets, filled in by ``_encode``: ``positions``
    and ``classes``, parallel lists; and ``large``, ``{buffer: [(position, delta), ...]}``
    for the float buffers of ``DIRECT_MIN`` elements or more, the only ones a run may
    point elsewhere (direct inputs and outputs, shared constants)."""

    __slots__ = ("positions", "classes", "large")

    def __init__(self):
        self.positions: list = []
        self.classes: list = []
        self.large: dict = {}

    def table(self, code):
        """``(positions, classes, offsets)`` int64 arrays (``Program.float_refs``); the
        offsets (``buf.offset + delta``) are what ``code`` holds at those positions."""
        positions = np.asarray(self.positions, np.int64)
        return positions, np.asarray(self.classes, np.int64), code[positions]


def _encode(op, code, float_refs):
    """Append the record of ``op`` to ``code``: ``[length, slot, fields...]`` with offsets
    resolved; every float arena offset in it goes to ``float_refs`` (a ``_FloatRefs``).
    Returns the record's kernel slot."""
    fields = op.fields
    slot = _slot(fields)
    start = len(code)
    code += (0, slot)
    for f in fields[1:]:
        kind = f.__class__
        if kind is int:
            code.append(f)
            continue
        if kind is Buffer:
            buf, delta = f, 0
        elif kind is Ref:
            buf, delta = f.buf, f.delta
        else:  # a NumPy integer or a bool
            code.append(int(f))
            continue
        if buf.offset is None:
            if buf.size:
                raise AssertionError(f"unplanned buffer in {op.name}")
            buf.offset = 0  # an empty value nothing writes
        if buf.cls in FLOAT_CLASSES:
            pos = len(code)
            float_refs.positions.append(pos)
            float_refs.classes.append(buf.cls)
            if buf.size >= DIRECT_MIN:
                float_refs.large.setdefault(buf, []).append((pos, delta))
        code.append(buf.offset + delta)
    code[start] = len(code) - start
    return slot


def _encode_group(unit, code, float_refs):
    """Append ``[length, SLOT_GROUP, n, BLOCK, count, entries...]`` to ``code``; each entry
    is ``[entry length, position of n, number of patches, patch positions..., record...]``,
    the patches being the record positions of the op's per-element operands (moved on
    block by block). Float offsets go to ``float_refs`` as in ``_encode``; returns the
    slots of the unit's records."""
    fam = unit[0].fields[0]
    start = len(code)
    code += (0, SLOT_GROUP, unit[0].fields[_EW_NPOS[fam]], BLOCK, len(unit))
    slots = []
    for op in unit:
        fields = op.fields
        # Field i is at position i + 1 of the record (after its length and slot).
        blocked = [i + 1 for i, f in enumerate(fields)
                   if f.__class__ is Buffer and f.size > 1 and not f.local]
        record_length = 1 + len(fields)
        code += (3 + len(blocked) + record_length, _EW_NPOS[fields[0]] + 1, len(blocked))
        code += blocked
        slots.append(_encode(op, code, float_refs))
    code[start] = len(code) - start
    return slots


# --------------------------------------------------------------------------- entry point


def lower(closed) -> Program:
    """Lower ``closed`` (a ``ClosedJaxpr``) to a ``Program``; raises ``Unsupported``."""
    jaxpr = closed.jaxpr
    lw = _Lowerer()
    const_vals = [lw.const(c, v.aval) for c, v in zip(closed.consts, jaxpr.constvars)]
    in_vals = []
    for v in jaxpr.in_binders:
        cls = lw.cls_of(v.aval.dtype, strict=False)
        in_vals.append(Val(v.aval, cls, Buffer(cls, _size(v.aval), "input")))
    outs = lw.lower_jaxpr(jaxpr, const_vals, in_vals)
    lw.name = "output"
    out_bufs = [lw.materialize(x) for x in outs]
    # NB: sin/cos pairs merge first: a merged op moves a write earlier, which donation
    # must see (its output may take over an input that op's partner still reads).
    ops = _pair_sin_cos(lw.ops)
    aliased = _donate(ops, in_vals, out_bufs, closed.donated) if closed.donated else {}

    # Layout: [reserved | constants | inputs | temporaries] in each arena.
    aligns = [max(1, _ALIGN_BYTES // d.itemsize) for d in CLS_DTYPES]
    tops = [0, 0, I_RESERVED, 0]
    for buf in lw.scratch.values():  # float arenas with reductions start with their stack
        buf.offset = 0
        tops[buf.cls] = F_SCRATCH

    def place(buf):
        c = buf.cls
        buf.offset = tops[c]
        buf.cap = 0  # constants and inputs are never freed
        tops[c] += -(-buf.size // aligns[c]) * aligns[c]

    read_bufs = {b for op in ops for b in op.reads} | set(out_bufs)
    consts, shared = [], []
    for buf, flat in lw.consts:
        if buf not in read_bufs:
            continue
        if buf.cls in FLOAT_CLASSES and buf.size >= DIRECT_MIN and buf not in out_bufs:
            buf.offset = 0  # NB: never in an arena: each ArenaSet points the code at ``flat``
            shared.append((buf, flat))
        else:
            consts.append((buf, flat))
            place(buf)
    image_ends = list(tops)
    in_plan = []
    for k, x in enumerate(in_vals):
        if x.buf in read_bufs and x.buf.size:
            place(x.buf)
            in_plan.append((k, x.cls, x.buf.offset, x.buf.offset + x.buf.size))
        else:
            x.buf.offset = 0
    allocs = [_Allocator(t, a) for t, a in zip(tops, aligns)]
    pinned = {b for b in out_bufs if b.kind == "temp"}
    units = _group(ops, pinned)
    _plan(units, pinned, allocs)
    for b in out_bufs:
        if b.offset is None:  # an empty output nothing writes
            b.offset = 0
    sizes = tuple(a.high for a in allocs)

    images = []
    for c, dtype in enumerate(CLS_DTYPES):
        image = np.zeros(image_ends[c], dtype)
        for buf, flat in consts:
            if buf.cls == c:
                image[buf.offset: buf.offset + buf.size] = flat
        images.append(image)

    code = [len(units), 2]
    slots, names = set(), []
    float_refs = _FloatRefs()
    for unit in units:
        if len(unit) == 1:
            slots.add(_encode(unit[0], code, float_refs))
            names.append(unit[0].name)
        else:
            slots.update(_encode_group(unit, code, float_refs))
            names.append("fused(" + ", ".join(op.name for op in unit) + ")")
    out_plan = []
    for x, b in zip(outs, out_bufs):
        out_plan.append((x.cls, b.offset, b.offset + b.size, tuple(x.aval.shape),
                         np.dtype(x.aval.dtype)))
    large = float_refs.large
    in_refs, out_refs = _direct_io(large, in_vals, out_bufs, aliased)
    shared_consts = tuple((flat, *_positions(large[buf])) for buf, flat in shared
                          if buf in large)
    code_array = np.asarray(code, np.int64)
    return Program(
        code=code_array,
        sizes=sizes,
        images=images,
        in_plan=tuple(in_plan),
        out_plan=tuple(out_plan),
        op_names=names,
        n_in=len(in_vals),
        in_shapes=tuple(tuple(v.aval.shape) for v in jaxpr.in_binders),
        slots=tuple(sorted(slots)),
        float_refs=float_refs.table(code_array),
        in_refs=in_refs,
        out_refs=out_refs,
        shared_consts=shared_consts,
        aliased=aliased,
    )


def _donate(ops, in_vals, out_bufs, donated):
    """Give outputs the buffers of donated inputs; returns ``{output index: arg index}``.

    An output takes over a donated input of its class and size when the program is
    done reading the input before it first writes the output, so no op sees a half
    written value. The one op allowed to read the input at that point is a plain copy
    of it into the output (how a folded ``p - lr * (a @ b)`` starts): it becomes a copy
    onto itself and is dropped. ``ops`` and ``out_bufs`` are rewritten in place.
    """
    aliased = {}
    for j, ob in enumerate(out_bufs):
        if ob.kind != "temp" or not ob.size or out_bufs.count(ob) != 1:
            continue
        first = next(i for i, op in enumerate(ops) if ob in op.writes)
        for k in sorted(donated):
            ib = in_vals[k].buf
            if (k in aliased.values() or ib.cls != ob.cls or ib.size != ob.size
                    or ib in out_bufs):
                continue
            if any(ib in op.reads for op in ops[first + 1:]):
                continue
            head = ops[first]
            self_copy = ib in head.reads and _is_plain_copy(head, ib, ob)
            if ib in head.reads and not self_copy:
                continue
            for op in ops:
                op.fields = [_replaced(f, ob, ib) for f in op.fields]
                op.reads = [ib if b is ob else b for b in op.reads]
                op.writes = [ib if b is ob else b for b in op.writes]
            if self_copy:
                ops.remove(head)
            out_bufs[j] = ib
            aliased[j] = k
            break
    return aliased


def _replaced(field, old, new):
    """An op's ``field`` with buffer ``old`` replaced by ``new``."""
    if field is old:
        return new
    if field.__class__ is Ref and field.buf is old:
        return Ref(new, field.delta)
    return field


def _is_plain_copy(op, src, dst):
    """Whether ``op`` copies all of ``src`` to ``dst`` element for element."""
    f = op.fields
    if f[0] != FAM_MOVE or f[1] != COPY or f[3].buf is not src or f[4].buf is not dst:
        return False
    ndim = f[5]
    return f[3].delta == f[4].delta == 0 and f[6 + ndim:6 + 2 * ndim] == f[6 + 2 * ndim:]


DIRECT_MIN = 2048  # float inputs and outputs this large are used in place, not copied


def _positions(refs):
    """``(positions, deltas)`` int64 arrays for one buffer's ``(position, delta)`` list.
    NB: made only for the buffers a run patches (direct I/O, shared constants): two
    arrays per buffer of a large program cost ~0.2 ms of lowering."""
    return (np.asarray([pos for pos, _ in refs], np.int64),
            np.asarray([delta for _, delta in refs], np.int64))


def _direct_io(large, in_vals, out_bufs, aliased):
    """Which large float inputs and outputs can live outside the arenas, and where the
    code refers to them (``large``, see ``_FloatRefs``): ``{arg index: (positions,
    deltas)}`` and ``{output index: (positions, deltas)}``.

    An output qualifies when it is a temporary no other output shares (not an input or a
    constant); an input when no output shares its buffer (a reshape of an input
    returned as is reads the arena), unless that output took the donated input over
    (``aliased``): then the run writes the result into the argument itself.
    """
    out_set = set(out_bufs) - {out_bufs[j] for j in aliased}
    in_refs = {}
    for k, x in enumerate(in_vals):
        buf = x.buf
        if buf.cls in FLOAT_CLASSES and buf.size >= DIRECT_MIN and buf not in out_set \
                and buf.offset is not None and buf in large:
            in_refs[k] = _positions(large[buf])
    out_refs = {}
    for j, buf in enumerate(out_bufs):
        # NB: a buffer returned twice stays in the arena: both outputs copy it out.
        if (buf.cls in FLOAT_CLASSES and buf.kind == "temp" and buf.size >= DIRECT_MIN
                and out_bufs.count(buf) == 1 and buf in large):
            out_refs[j] = _positions(large[buf])
    return in_refs, out_refs
