"""``fgrad.numpy`` equals NumPy — values and dtypes — eagerly, traced and jitted.

One row per function: its NumPy reference, the input dtypes to try and a
hypothesis strategy for its arguments. Each example is run three ways
(eagerly, through ``make_jaxpr`` + ``eval_jaxpr``, and through ``jit``) and
must equal NumPy in value, dtype and shape; where NumPy raises, fgrad must
raise too. Array arguments are traced; everything in ``kwargs`` is static.

Deliberate differences from NumPy are written into the rows (``ref_cast`` and
``note``), never skipped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from core_checks import (
    ALL_DTYPES,
    BOOL,
    F32,
    F64,
    FLOATS,
    I64,
    arrays,
    check_against_numpy,
    elements,
    shapes,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fgrad as fg
import fgrad.numpy as fnp
from fgrad._src.lax import lax

EXAMPLES = 12


@dataclass(repr=False)
class Row:
    """One function of ``fgrad.numpy`` and how to test it against NumPy."""

    name: str  # attribute of fgrad.numpy ("linalg.norm" for submodules)
    ref: object  # the NumPy function
    args: object  # dtypes tuple -> strategy of (traced args tuple, static kwargs dict)
    dtypes: tuple  # each entry: one dtype for every operand, or a tuple per operand
    # Documented deviations: input dtype -> dtype NumPy is given instead, so the
    # reference is computed the way fgrad deliberately computes it.
    ref_cast: dict = field(default_factory=dict)
    note: str = ""
    id: str = ""

    def __repr__(self):
        return f"Row({self.id or self.name})"

    @property
    def fn(self):
        obj = fnp
        for part in self.name.split("."):
            obj = getattr(obj, part)
        return obj


# --------------------------------------------------------------------------- strategies


def _dt(dts, i):
    return dts[i] if isinstance(dts, tuple) else dts


def unary(lo=-4.0, hi=4.0, shape=shapes, special=False):
    """One array argument with elements in ``[lo, hi]`` (plus inf/nan if ``special``)."""

    @st.composite
    def strat(draw, dts):
        dtype = _dt(dts, 0)
        elems = elements(dtype, lo, hi)
        if special and dtype.kind == "f":
            elems = st.one_of(elems, st.sampled_from([np.inf, -np.inf, np.nan]))
        x = draw(hnp.arrays(dtype, draw(shape), elements=elems))
        return (x,), {}

    return strat


def binary(lo=-4.0, hi=4.0, lo2=None, hi2=None, nonzero2=False):
    """Two broadcast-compatible arrays."""

    @st.composite
    def strat(draw, dts):
        bshapes = draw(
            hnp.mutually_broadcastable_shapes(
                num_shapes=2, min_dims=0, max_dims=3, min_side=0, max_side=3
            )
        )
        s1, s2 = bshapes.input_shapes
        x = draw(arrays(_dt(dts, 0), s1, lo, hi))
        y = draw(arrays(_dt(dts, 1), s2, lo if lo2 is None else lo2, hi if hi2 is None else hi2))
        if nonzero2:
            y = np.where(y == 0, np.ones_like(y), y)
        return (x, y), {}

    return strat


def _axis_strategy(ndim, allow_tuple=True):
    options = [st.none()]
    if ndim:
        options.append(st.integers(-ndim, ndim - 1))
        if allow_tuple:
            options.append(
                st.lists(
                    st.integers(-ndim, ndim - 1), unique_by=lambda a: a % ndim, max_size=ndim
                ).map(tuple)
            )
    return st.one_of(*options)


def reduction(shape=shapes, allow_tuple=True, extra=None, lo=-4.0, hi=4.0):
    """One array, ``axis`` (None / int / negative int / tuple) and ``keepdims``."""

    @st.composite
    def strat(draw, dts):
        x = draw(arrays(_dt(dts, 0), draw(shape), lo, hi))
        kwargs = {
            "axis": draw(_axis_strategy(x.ndim, allow_tuple)),
            "keepdims": draw(st.booleans()),
        }
        if extra is not None:
            kwargs.update(draw(extra))
        return (x,), kwargs

    return strat


@st.composite
def _factor_shape(draw, size):
    """A random shape with ``size`` elements, maybe with one -1."""
    dims = []
    remaining = size
    for _ in range(draw(st.integers(0, 3))):
        divisors = [d for d in range(1, remaining + 1) if remaining % d == 0] or [0]
        d = draw(st.sampled_from(divisors))
        dims.append(d)
        remaining = remaining // d if d else remaining
    if size == 0:
        dims.append(0)
    elif remaining != 1 or not dims:
        dims.append(remaining)
    if size and draw(st.booleans()):
        dims[draw(st.integers(0, len(dims) - 1))] = -1
    return tuple(dims)


@st.composite
def reshape_args(draw, dts):
    x = draw(arrays(_dt(dts, 0), draw(shapes)))
    return (x,), {"newshape": draw(_factor_shape(x.size))}


@st.composite
def transpose_args(draw, dts):
    x = draw(arrays(_dt(dts, 0), draw(shapes)))
    perm = draw(st.none() | st.permutations(range(x.ndim)).map(tuple))
    if perm is not None and x.ndim and draw(st.booleans()):
        perm = tuple(p - x.ndim for p in perm)  # negative axes
    return (x,), {"axes": perm}


@st.composite
def two_axes(draw, dts):
    x = draw(arrays(_dt(dts, 0), draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=3))))
    a = draw(st.integers(-x.ndim, x.ndim - 1))
    b = draw(st.integers(-x.ndim, x.ndim - 1))
    return (x,), {"a": a, "b": b}


@st.composite
def moveaxis_args(draw, dts):
    x = draw(arrays(_dt(dts, 0), draw(hnp.array_shapes(min_dims=1, max_dims=4, max_side=3))))
    n = draw(st.integers(1, x.ndim))
    src = draw(st.permutations(range(x.ndim)))[:n]
    dst = draw(st.permutations(range(x.ndim)))[:n]
    if n == 1 and draw(st.booleans()):
        return (x,), {"source": src[0] - x.ndim, "destination": dst[0]}
    return (x,), {"source": tuple(src), "destination": tuple(dst)}


@st.composite
def expand_dims_args(draw, dts):
    x = draw(arrays(_dt(dts, 0), draw(shapes)))
    out_ndim = x.ndim + draw(st.integers(1, 2))
    axes = draw(
        st.lists(
            st.integers(-out_ndim, out_ndim - 1),
            min_size=out_ndim - x.ndim,
            max_size=out_ndim - x.ndim,
            unique_by=lambda a: a % out_ndim,
        )
    )
    return (x,), {"axis": axes[0] if len(axes) == 1 and draw(st.booleans()) else tuple(axes)}


@st.composite
def squeeze_args(draw, dts):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=3))
    shape = tuple(1 if draw(st.booleans()) else s for s in shape)
    x = draw(arrays(_dt(dts, 0), shape))
    ones = [i for i, s in enumerate(shape) if s == 1]
    axis = draw(
        st.none() | st.lists(st.sampled_from(ones), unique=True).map(tuple) if ones else st.none()
    )
    if isinstance(axis, tuple) and len(axis) == 1 and draw(st.booleans()):
        axis = axis[0] - len(shape)
    return (x,), {"axis": axis}


@st.composite
def broadcast_to_args(draw, dts):
    bs = draw(
        hnp.mutually_broadcastable_shapes(
            num_shapes=1, min_dims=0, max_dims=3, min_side=0, max_side=3
        )
    )
    x = draw(arrays(_dt(dts, 0), bs.input_shapes[0]))
    return (x,), {"shape": bs.result_shape}


@st.composite
def concat_args(draw, dts, new_axis=False):
    base = draw(hnp.array_shapes(min_dims=0 if new_axis else 1, max_dims=3, min_side=0, max_side=3))
    n = draw(st.integers(1, 3))
    ndim = len(base) + (1 if new_axis else 0)
    axis = draw(st.integers(-ndim, ndim - 1))
    xs = []
    for i in range(n):
        shape = list(base)
        if not new_axis:
            shape[axis] = draw(st.integers(0, 3))
        xs.append(draw(arrays(_dt(dts, i % 2), tuple(shape))))
    if not new_axis and draw(st.booleans()) and len(base) > 0:
        axis = None
    return (xs,), {"axis": axis}


@st.composite
def split_args(draw, dts):
    x = draw(arrays(_dt(dts, 0), draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=6))))
    axis = draw(st.integers(-x.ndim, x.ndim - 1))
    n = x.shape[axis]
    if draw(st.booleans()):
        sections = draw(st.sampled_from([d for d in range(1, n + 1) if n % d == 0] or [1]))
    else:
        # any order, negative ones counting from the end, some out of range
        sections = draw(st.lists(st.integers(-n - 2, n + 2), max_size=3))
    return (x,), {"indices_or_sections": sections, "axis": axis}


@st.composite
def tile_args(draw, dts):
    x = draw(arrays(_dt(dts, 0), draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))))
    reps = draw(st.integers(0, 3) | st.lists(st.integers(0, 3), max_size=3).map(tuple))
    return (x,), {"reps": reps}


@st.composite
def repeat_args(draw, dts):
    x = draw(arrays(_dt(dts, 0), draw(shapes)))
    axis = draw(st.none() | st.integers(-x.ndim, x.ndim - 1)) if x.ndim else None
    return (x,), {"repeats": draw(st.integers(0, 3)), "axis": axis}


def _norm_kwargs(ndim):
    ords = [None, 1, 2, np.inf, -np.inf, 3, 0.5, 0, -1, -2, -0.5]
    return st.fixed_dictionaries(
        {
            "ord": st.sampled_from(ords),
            "axis": st.integers(-ndim, ndim - 1) if ndim else st.none(),
            "keepdims": st.booleans(),
        }
    )


@st.composite
def norm_args(draw, dts):
    x = draw(arrays(_dt(dts, 0), draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=3))))
    if draw(st.booleans()):
        return (x,), {}  # Frobenius / 2-norm of the flattened array
    if x.ndim == 2 and draw(st.booleans()):
        return (x,), {"ord": "fro", "axis": (0, 1) if draw(st.booleans()) else (-1, -2)}
    return (x,), draw(_norm_kwargs(x.ndim))


@st.composite
def matmul_args(draw, dts):
    n, k, m = (draw(st.integers(0, 3)) for _ in range(3))
    k = draw(st.integers(1, 3)) if draw(st.booleans()) else k
    batch = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, min_side=0, max_side=2)
    )
    a_kind, b_kind = draw(st.sampled_from(["1", "2", "N"])), draw(st.sampled_from(["1", "2", "N"]))
    a_shape = {"1": (k,), "2": (n, k), "N": batch.input_shapes[0] + (n, k)}[a_kind]
    b_shape = {"1": (k,), "2": (k, m), "N": batch.input_shapes[1] + (k, m)}[b_kind]
    return (draw(arrays(_dt(dts, 0), a_shape)), draw(arrays(_dt(dts, 1), b_shape))), {}


@st.composite
def dot_args(draw, dts):
    kind = draw(st.sampled_from(["scalar", "matmul", "nd"]))
    if kind == "matmul":
        (a, b), _ = draw(matmul_args(dts))
        if a.ndim <= 2 and b.ndim <= 2:
            return (a, b), {}
        kind = "nd"
    if kind == "scalar":
        a = draw(arrays(_dt(dts, 0), ()))
        b = draw(arrays(_dt(dts, 1), draw(shapes)))
        return ((a, b) if draw(st.booleans()) else (b, a)), {}
    k = draw(st.integers(0, 3))
    a_shape = draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3)) + (k,)
    b_lead = draw(hnp.array_shapes(min_dims=0, max_dims=1, max_side=3))
    b_shape = (k,) if draw(st.booleans()) else b_lead + (k, draw(st.integers(1, 3)))
    return (draw(arrays(_dt(dts, 0), a_shape)), draw(arrays(_dt(dts, 1), b_shape))), {}


@st.composite
def inner_args(draw, dts):
    if draw(st.booleans()):
        a = draw(arrays(_dt(dts, 0), ()))
        return (a, draw(arrays(_dt(dts, 1), draw(shapes)))), {}
    k = draw(st.integers(0, 3))
    a_shape = draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3)) + (k,)
    b_shape = draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3)) + (k,)
    return (draw(arrays(_dt(dts, 0), a_shape)), draw(arrays(_dt(dts, 1), b_shape))), {}


@st.composite
def outer_args(draw, dts):
    return (draw(arrays(_dt(dts, 0), draw(shapes))), draw(arrays(_dt(dts, 1), draw(shapes)))), {}


@st.composite
def tensordot_args(draw, dts):
    n = draw(st.integers(0, 2))
    shared = draw(hnp.array_shapes(min_dims=n, max_dims=n, min_side=0, max_side=3)) if n else ()
    a_free = draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))
    b_free = draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))
    if draw(st.booleans()):
        a = draw(arrays(_dt(dts, 0), a_free + shared))
        b = draw(arrays(_dt(dts, 1), shared + b_free))
        return (a, b), {"axes": n}
    # Explicit axis pairs, in a scrambled order.
    a_perm = draw(st.permutations(range(len(a_free) + n)))
    b_perm = draw(st.permutations(range(len(b_free) + n)))
    a_shape = [None] * len(a_perm)
    b_shape = [None] * len(b_perm)
    for i, s in enumerate(a_free + shared):
        a_shape[a_perm[i]] = s
    for i, s in enumerate(shared + b_free):
        b_shape[b_perm[i]] = s
    a_axes = [a_perm[len(a_free) + j] for j in range(n)]
    b_axes = [b_perm[j] - len(b_perm) for j in range(n)]  # negative on one side
    a = draw(arrays(_dt(dts, 0), tuple(a_shape)))
    b = draw(arrays(_dt(dts, 1), tuple(b_shape)))
    return (a, b), {"axes": (a_axes, b_axes)}


EINSUM_SPECS = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij,jk", [(2, 3), (3, 0)]),
    ("i,i->", [(3,), (3,)]),
    ("i,j->ij", [(2,), (3,)]),
    ("ii->i", [(3, 3)]),
    ("ii", [(2, 2)]),
    ("ij->ji", [(2, 3)]),
    ("bij,bjk->bik", [(2, 2, 3), (2, 3, 1)]),
    ("ijk->", [(2, 3, 1)]),
    ("ij,ij->i", [(2, 3), (2, 3)]),
    ("ij,jk,kl->il", [(2, 3), (3, 2), (2, 2)]),
    ("i,i,i->i", [(4,), (4,), (4,)]),
    ("...ij,...jk->...ik", [(2, 2, 3), (3, 4)]),
    ("...i,...i", [(2, 3), (1, 3)]),
    ("i...->...", [(3, 2)]),
    ("...", [(2, 3)]),
    ("ij...,j->i...", [(2, 3, 1, 2), (3,)]),
    ("...ii->...i", [(2, 3, 3)]),
    ("ji", [(2, 3)]),
    ("iij->j", [(2, 2, 3)]),
    ("ij,kj->ikj", [(2, 3), (1, 3)]),
    (",i->i", [(), (3,)]),
]


@st.composite
def einsum_args(draw, dts):
    spec, operand_shapes = draw(st.sampled_from(EINSUM_SPECS))
    ops = [draw(arrays(_dt(dts, i % 2), s)) for i, s in enumerate(operand_shapes)]
    return tuple(ops), {"subscripts": spec}


@st.composite
def where_args(draw, dts):
    bs = draw(hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, min_side=0, max_side=3))
    c, xs, ys = bs.input_shapes
    cond = draw(arrays(BOOL, c))
    return (cond, draw(arrays(_dt(dts, 0), xs)), draw(arrays(_dt(dts, 1), ys))), {}


@st.composite
def where_nonbool_cond(draw, dts):
    cond = draw(arrays(_dt(dts, 0), draw(shapes), -1, 1))
    return (cond, draw(arrays(F64, cond.shape)), np.float32(2.0)), {}


@st.composite
def clip_args(draw, dts):
    x = draw(arrays(_dt(dts, 0), draw(shapes)))
    lo = draw(st.none() | st.integers(-3, 0) | st.floats(-3, 0))
    hi = (
        draw(st.integers(0, 3) | st.floats(0, 3))
        if lo is None
        else draw(st.none() | st.integers(0, 3) | st.floats(0, 3))
    )
    return (x,), {"a_min": lo, "a_max": hi}


@st.composite
def clip_array_bounds(draw, dts):
    bs = draw(hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=2, min_side=0, max_side=3))
    xs, ls, hs = bs.input_shapes
    return (
        draw(arrays(_dt(dts, 0), xs)),
        draw(arrays(_dt(dts, 1), ls, -3, 0)),
        draw(arrays(_dt(dts, 1), hs, 0, 3)),
    ), {}


@st.composite
def argreduce_args(draw, dts):
    x = draw(arrays(_dt(dts, 0), draw(shapes)))
    return (x,), {
        "axis": draw(_axis_strategy(x.ndim, allow_tuple=False)),
        "keepdims": draw(st.booleans()),
    }


@st.composite
def cumsum_args(draw, dts):
    x = draw(arrays(_dt(dts, 0), draw(shapes)))
    return (x,), {"axis": draw(_axis_strategy(x.ndim, allow_tuple=False))}


@st.composite
def like_args(draw, dts, fill=False):
    x = draw(arrays(_dt(dts, 0), draw(shapes)))
    kwargs = {"dtype": draw(st.sampled_from([None, F32, F64, I64, BOOL]))}
    if fill:
        kwargs["fill_value"] = draw(st.integers(-3, 3) | st.floats(-3, 3) | st.booleans())
    return (x,), kwargs


@st.composite
def full_like_traced_fill(draw, dts):
    x = draw(arrays(_dt(dts, 0), draw(shapes)))
    v = draw(arrays(_dt(dts, 1), ()))
    return (x, v), {}


@st.composite
def creation_shape(draw, dts, dtype_kw=True):
    shape = draw(
        st.integers(0, 3) | hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)
    )
    kwargs = {"shape": shape}
    if dtype_kw:
        kwargs["dtype"] = draw(st.sampled_from([F32, F64, I64, BOOL, float, int]))
    return (), kwargs


@st.composite
def full_args(draw, dts):
    (), kwargs = draw(creation_shape(dts, dtype_kw=False))
    if draw(st.booleans()):  # traced fill value
        return (draw(arrays(_dt(dts, 0), ())),), kwargs
    kwargs["fill_value"] = draw(st.integers(-3, 3) | st.floats(-3, 3) | st.booleans())
    kwargs["dtype"] = draw(st.sampled_from([None, F32, F64, I64]))
    return (), kwargs


@st.composite
def array_args(draw, dts):
    x = draw(arrays(_dt(dts, 0), draw(shapes)))
    return (x,), {"dtype": draw(st.sampled_from([None, F32, F64, I64, BOOL]))}


@st.composite
def array_of_list_args(draw, dts):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3))
    xs = [draw(arrays(_dt(dts, i % 2), shape)) for i in range(draw(st.integers(1, 3)))]
    return tuple(xs), {}


@st.composite
def arange_args(draw, dts):
    dtype = draw(st.sampled_from([None, F32, F64, I64]))
    kind = draw(st.sampled_from(["stop", "start_stop", "step"]))
    num = st.integers(-3, 5) | st.floats(-3, 5).map(lambda v: round(v, 1))
    if kind == "stop":
        return (), {"args": (draw(num),), "dtype": dtype}
    if kind == "start_stop":
        return (), {"args": (draw(num), draw(num)), "dtype": dtype}
    step = draw(st.sampled_from([1, 2, -1, 0.5, -1.5]))
    return (), {"args": (draw(num), draw(num), step), "dtype": dtype}


@st.composite
def linspace_args(draw, dts):
    start = draw(arrays(_dt(dts, 0), ()))
    stop = draw(arrays(_dt(dts, 1), ()))
    return (start, stop), {"num": draw(st.integers(0, 5)), "endpoint": draw(st.booleans())}


@st.composite
def eye_args(draw, dts):
    return (), {
        "N": draw(st.integers(0, 4)),
        "M": draw(st.none() | st.integers(0, 4)),
        "k": draw(st.integers(-2, 2)),
        "dtype": draw(st.sampled_from([F32, F64, I64, BOOL])),
    }


def identity_args(dts):
    return st.tuples(
        st.just(()),
        st.fixed_dictionaries({"n": st.integers(0, 3), "dtype": st.sampled_from([F32, F64, I64])}),
    )


@st.composite
def astype_args(draw, dts):
    x = draw(arrays(_dt(dts, 0), draw(shapes)))
    return (x,), {"dtype": draw(st.sampled_from([F32, F64, I64, BOOL]))}


@st.composite
def var_extra(draw):
    return {"ddof": draw(st.sampled_from([0, 1]))}


# --------------------------------------------------------------------------- the table

NUM = (F32, F64, I64)  # numeric input dtypes
BOOL_AS_F64 = {BOOL: F64}
BOOL_NOTE = "NumPy computes float functions of bool in float16; fgrad has no float16 and uses f64"
MIXED = ((F32, F64), (I64, F32), (BOOL, I64), (F64, I64))
MIXED_FLOAT = ((F32, F64), (I64, F32), (F64, I64))


def _unary_rows():
    domains = {
        "sqrt": (0.0, 9.0),
        "log": (0.0, 9.0),
        "log1p": (-0.99, 9.0),
        "exp": (-6.0, 6.0),
        "expm1": (-6.0, 6.0),
        "sin": (-6.0, 6.0),
        "cos": (-6.0, 6.0),
        "tan": (-1.5, 1.5),
        "tanh": (-6.0, 6.0),
        "sinh": (-4.0, 4.0),
        "cosh": (-4.0, 4.0),
        "arcsin": (-1.0, 1.0),
        "arccos": (-1.0, 1.0),
        "arctan": (-6.0, 6.0),
        "arctanh": (-1.0, 1.0),
        "arcsinh": (-6.0, 6.0),
        "arccosh": (1.0, 6.0),
    }
    rows = []
    for name, (lo, hi) in domains.items():
        rows.append(
            Row(
                name,
                getattr(np, name),
                unary(lo, hi),
                ALL_DTYPES,
                ref_cast=BOOL_AS_F64,
                note=BOOL_NOTE,
            )
        )
    rows += [
        Row("negative", np.negative, unary(), ALL_DTYPES),  # bool: both raise
        Row("abs", np.abs, unary(), ALL_DTYPES),
        Row("absolute", np.absolute, unary(), ALL_DTYPES),
        Row("sign", np.sign, unary(), ALL_DTYPES),  # bool: both raise
        Row("square", np.square, unary(), ALL_DTYPES),
        Row("reciprocal", np.reciprocal, unary(0.25, 4.0), FLOATS),
        Row(
            "reciprocal",
            np.reciprocal,
            unary(1, 4),
            (I64, BOOL),
            ref_cast={I64: F64, BOOL: F64},
            id="reciprocal-int",
            note="NumPy's integer reciprocal truncates (1/2 -> 0); "
            "fgrad computes a float reciprocal (documented in its docstring)",
        ),
        Row("floor", np.floor, unary(), ALL_DTYPES),
        Row("ceil", np.ceil, unary(), ALL_DTYPES),
        Row("logical_not", np.logical_not, unary(), ALL_DTYPES),
        Row("isfinite", np.isfinite, unary(special=True), ALL_DTYPES),
        Row("isnan", np.isnan, unary(special=True), ALL_DTYPES),
        Row("isinf", np.isinf, unary(special=True), ALL_DTYPES),
        Row("ravel", np.ravel, unary(), ALL_DTYPES),
        Row("atleast_1d", np.atleast_1d, unary(), ALL_DTYPES),
        Row("flip", np.flip, unary(), ALL_DTYPES),
        Row("asarray", lambda x, dtype: np.asarray(x, dtype), array_args, ALL_DTYPES),
        Row("array", lambda x, dtype: np.array(x, dtype), array_args, ALL_DTYPES),
        Row("astype", lambda x, dtype: x.astype(dtype), astype_args, ALL_DTYPES),
    ]
    return rows


def _binary_rows():
    rows = []
    arith = {
        "add": np.add,
        "subtract": np.subtract,
        "multiply": np.multiply,
        "maximum": np.maximum,
        "minimum": np.minimum,
    }
    for name, ref in arith.items():
        rows.append(Row(name, ref, binary(), ALL_DTYPES + MIXED))
    for name in ("divide", "true_divide"):
        rows.append(
            Row(
                name,
                getattr(np, name),
                binary(),
                NUM + MIXED_FLOAT + (BOOL,),
                ref_cast=BOOL_AS_F64,
                note=BOOL_NOTE,
            )
        )
    rows.append(
        Row(
            "arctan2",
            np.arctan2,
            binary(),
            NUM + MIXED_FLOAT + (BOOL,),
            ref_cast=BOOL_AS_F64,
            note=BOOL_NOTE,
        )
    )
    rows.append(Row("fmod", np.fmod, binary(nonzero2=True), NUM + MIXED_FLOAT))
    for name in ("remainder", "mod", "floor_divide"):
        rows.append(Row(name, getattr(np, name), binary(nonzero2=True), NUM + MIXED_FLOAT))
    rows.append(Row("power", np.power, binary(0.25, 3.0, -3.0, 3.0), FLOATS + ((F32, F64),)))
    rows.append(Row("power", np.power, binary(0, 4, 0, 3), (I64, (I64, F32)), id="power-int"))
    rows.append(
        Row(
            "logaddexp",
            np.logaddexp,
            binary(-30.0, 30.0),
            NUM + MIXED_FLOAT + (BOOL,),
            ref_cast=BOOL_AS_F64,
            note=BOOL_NOTE,
        )
    )
    for name in (
        "equal",
        "not_equal",
        "less",
        "less_equal",
        "greater",
        "greater_equal",
        "logical_and",
        "logical_or",
        "logical_xor",
    ):
        rows.append(Row(name, getattr(np, name), binary(-2, 2), ALL_DTYPES + MIXED))
    rows += [
        Row("where", np.where, where_args, ALL_DTYPES + MIXED),
        Row("where", np.where, where_nonbool_cond, ALL_DTYPES, id="where-nonbool-cond"),
        Row("clip", np.clip, clip_args, NUM),
        Row("clip", np.clip, clip_array_bounds, NUM + MIXED_FLOAT, id="clip-array-bounds"),
    ]
    return rows


def _reduction_rows():
    rows = []
    for name in ("sum", "prod", "max", "min", "amax", "amin", "all", "any"):
        rows.append(Row(name, getattr(np, name), reduction(lo=-2, hi=2), ALL_DTYPES))
    rows.append(Row("mean", np.mean, reduction(), ALL_DTYPES))
    for name in ("var", "std"):
        rows.append(Row(name, getattr(np, name), reduction(extra=var_extra()), ALL_DTYPES))
    rows += [
        Row("argmax", np.argmax, argreduce_args, ALL_DTYPES),
        Row("argmin", np.argmin, argreduce_args, ALL_DTYPES),
        Row("cumsum", np.cumsum, cumsum_args, ALL_DTYPES),
    ]
    return rows


def _linalg_rows():
    return [
        Row("matmul", np.matmul, matmul_args, ALL_DTYPES + MIXED),
        Row("dot", np.dot, dot_args, ALL_DTYPES + MIXED),
        Row("outer", np.outer, outer_args, ALL_DTYPES + MIXED),
        Row("inner", np.inner, inner_args, ALL_DTYPES + MIXED),
        Row("tensordot", np.tensordot, tensordot_args, ALL_DTYPES + MIXED),
        Row(
            "einsum",
            lambda *ops, subscripts: np.einsum(subscripts, *ops),
            einsum_args,
            ALL_DTYPES + MIXED,
        ),
        Row("linalg.norm", np.linalg.norm, norm_args, ALL_DTYPES),
    ]


def _shape_rows():
    def _concat(*xs, axis):
        return np.concatenate(*xs, axis=axis)

    return [
        Row("reshape", lambda x, newshape: np.reshape(x, newshape), reshape_args, ALL_DTYPES),
        Row("transpose", np.transpose, transpose_args, ALL_DTYPES),
        Row("swapaxes", lambda x, a, b: np.swapaxes(x, a, b), two_axes, ALL_DTYPES),
        Row("moveaxis", np.moveaxis, moveaxis_args, ALL_DTYPES),
        Row("expand_dims", np.expand_dims, expand_dims_args, ALL_DTYPES),
        Row("squeeze", np.squeeze, squeeze_args, ALL_DTYPES),
        Row("broadcast_to", np.broadcast_to, broadcast_to_args, ALL_DTYPES),
        Row("concatenate", np.concatenate, concat_args, ALL_DTYPES + MIXED),
        Row("stack", np.stack, lambda d: concat_args(d, new_axis=True), ALL_DTYPES + MIXED),
        Row("hstack", lambda xs, axis: np.hstack(xs), concat_args, ALL_DTYPES + MIXED),
        Row("vstack", lambda xs, axis: np.vstack(xs), concat_args, ALL_DTYPES + MIXED),
        Row("split", np.split, split_args, ALL_DTYPES),
        Row("tile", np.tile, tile_args, ALL_DTYPES),
        Row("repeat", np.repeat, repeat_args, ALL_DTYPES),
        Row("broadcast_arrays", np.broadcast_arrays, binary(), ALL_DTYPES + MIXED),
    ]


def _creation_rows():
    return [
        Row("zeros", np.zeros, creation_shape, (F64,)),
        Row("ones", np.ones, creation_shape, (F64,)),
        Row(
            "zeros",
            lambda shape: np.zeros(shape),
            lambda d: creation_shape(d, False),
            (F64,),
            id="zeros-default-dtype",
        ),
        Row(
            "ones",
            lambda shape: np.ones(shape),
            lambda d: creation_shape(d, False),
            (F64,),
            id="ones-default-dtype",
        ),
        Row("full", np.full, full_args, ALL_DTYPES),
        Row("zeros_like", np.zeros_like, like_args, ALL_DTYPES),
        Row("ones_like", np.ones_like, like_args, ALL_DTYPES),
        Row("full_like", np.full_like, lambda d: like_args(d, fill=True), ALL_DTYPES),
        Row(
            "full_like",
            np.full_like,
            full_like_traced_fill,
            ALL_DTYPES + MIXED,
            id="full_like-traced-fill",
        ),
        Row("arange", np.arange, arange_args, (F64,)),
        Row("linspace", np.linspace, linspace_args, ALL_DTYPES + MIXED),
        Row("eye", np.eye, eye_args, (F64,)),
        Row("identity", np.identity, identity_args, (F64,)),
        Row(
            "array",
            lambda *xs: np.array(list(xs)),
            array_of_list_args,
            ALL_DTYPES + MIXED,
            id="array-of-traced-list",
        ),
    ]


ROWS = (
    _unary_rows()
    + _binary_rows()
    + _reduction_rows()
    + _linalg_rows()
    + _shape_rows()
    + (_creation_rows())
)

# Calling conventions that differ from ``fn(*traced, **static)``.
_CALLS = {
    "arange": lambda fn, args, kw: fn(*kw["args"], dtype=kw["dtype"]),
    "swapaxes": lambda fn, args, kw: fn(*args, kw["a"], kw["b"]),
    "einsum": lambda fn, args, kw: fn(kw["subscripts"], *args),
    "concatenate": lambda fn, args, kw: fn(*args, **kw),
    "hstack": lambda fn, args, kw: fn(*args),
    "vstack": lambda fn, args, kw: fn(*args),
    "broadcast_arrays": lambda fn, args, kw: fn(*args),
    "eye": lambda fn, args, kw: fn(kw["N"], kw["M"], kw["k"], dtype=kw["dtype"]),
    "full": lambda fn, args, kw: fn(
        kw["shape"], *(args or (kw["fill_value"],)), dtype=kw.get("dtype")
    ),
    "array-of-traced-list": lambda fn, args, kw: fn(list(args)),
}
_REF_CALLS = {
    "arange": lambda ref, args, kw: np.arange(*kw["args"], dtype=kw["dtype"]),
    "full": lambda ref, args, kw: np.full(
        kw["shape"], *(args or (kw["fill_value"],)), dtype=kw.get("dtype")
    ),
    "eye": lambda ref, args, kw: np.eye(kw["N"], kw["M"], kw["k"], dtype=kw["dtype"]),
}


def _row_id(row):
    return row.id or row.name


def _dtype_id(dts):
    if isinstance(dts, tuple):
        return "-".join(d.name for d in dts)
    return dts.name


CASES = [
    pytest.param(row, dts, id=f"{_row_id(row)}-{_dtype_id(dts)}")
    for row in ROWS
    for dts in row.dtypes
]


def _ref_input(x, row):
    target = row.ref_cast.get(np.asarray(x).dtype) if isinstance(x, np.ndarray) else None
    return x.astype(target) if target is not None else x


def _cast_ref_args(args, row):
    return tuple(
        [_ref_input(a, row) for a in arg] if isinstance(arg, list) else _ref_input(arg, row)
        for arg in args
    )


@pytest.mark.parametrize("row,dts", CASES)
@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_matches_numpy(row, dts, data):
    args, kwargs = data.draw(row.args(dts), label="args, kwargs")
    call = _CALLS.get(row.id) or _CALLS.get(row.name) or (lambda fn, a, kw: fn(*a, **kw))
    ref_call = _REF_CALLS.get(row.name) or (lambda ref, a, kw: ref(*a, **kw))
    fn = row.fn

    def f(*a):
        return call(fn, a, kwargs)

    def ref(*a):
        return ref_call(row.ref, _cast_ref_args(a, row), kwargs)

    check_against_numpy(f, ref, args, what=f"fnp.{row.name}(**{kwargs})")


# --------------------------------------------------------------------------- coverage of SPEC §2

SPEC_NAMES = """
array asarray zeros ones zeros_like ones_like full full_like arange linspace eye
add subtract multiply divide true_divide negative power square sqrt exp log log1p expm1 sin cos
tan tanh sinh cosh arcsin arccos arctan arctanh abs sign maximum minimum clip where logaddexp
reciprocal
equal not_equal less less_equal greater greater_equal logical_and logical_or logical_not isfinite
all any argmax argmin
sum mean max min prod var std
dot matmul outer inner tensordot einsum linalg.norm
reshape transpose swapaxes moveaxis expand_dims squeeze broadcast_to concatenate stack split tile
repeat ravel
""".split()

# Exported names that are not compared through the table, and where they are tested instead.
NOT_IN_TABLE = {
    "getitem": "test_indexing.py",
    "nonzero": "test_nonzero below (concrete only)",
    "shape": "test_shape_queries below",
    "ndim": "test_shape_queries below",
    "size": "test_shape_queries below",
    "linalg": "module; linalg.norm is in the table",
}


def test_table_covers_spec_and_exports():
    assert len(CASES) > 200, "the table produced too few cases"
    tabled = {row.name for row in ROWS}
    missing = [name for name in SPEC_NAMES if name not in tabled]
    assert not missing, f"SPEC §2 functions without a row: {missing}"
    for name in SPEC_NAMES:
        obj = fnp
        for part in name.split("."):
            obj = getattr(obj, part)
        assert callable(obj), name
    exported = [
        n
        for n in fnp.__all__
        if callable(getattr(fnp, n)) and not isinstance(getattr(fnp, n), type)
    ]
    untested = [n for n in exported if n not in tabled and n not in NOT_IN_TABLE]
    assert not untested, f"exported functions with no row: {untested}"


def test_nonzero():
    x = np.array([[0.0, 1.0], [2.0, 0.0]])
    for got, exp in zip(fnp.nonzero(x), np.nonzero(x)):
        np.testing.assert_array_equal(got, exp)
        assert got.dtype == exp.dtype
    for got, exp in zip(fnp.where(x), np.where(x)):
        np.testing.assert_array_equal(got, exp)
    with pytest.raises(fg.errors.ConcretizationError):
        fg.make_jaxpr(fnp.nonzero)(x)


def test_shape_queries():
    x = np.ones((2, 0, 3), np.float32)
    assert fnp.shape(x) == (2, 0, 3) and fnp.ndim(x) == 3 and fnp.size(x) == 0
    assert fnp.shape(2.0) == () and fnp.ndim(2.0) == 0 and fnp.size(2.0) == 1
    seen = {}

    def f(x):
        seen["q"] = (fnp.shape(x), fnp.ndim(x), fnp.size(x))
        return x

    fg.make_jaxpr(f)(np.ones((4, 5)))
    assert seen["q"] == ((4, 5), 2, 20)


# --------------------------------------------------------------------------- NEP 50 scalars

BINARY_FOR_SCALARS = [
    "add",
    "subtract",
    "multiply",
    "divide",
    "power",
    "maximum",
    "minimum",
    "equal",
    "less",
    "greater_equal",
    "logaddexp",
    "arctan2",
]
SCALARS = [2.0, 3, True, -1.5, -0.0, 0.1, 1e300, float("nan")]


@pytest.mark.parametrize("name", BINARY_FOR_SCALARS)
@pytest.mark.parametrize("dtype", [F32, F64, I64, BOOL], ids=lambda d: d.name)
@pytest.mark.parametrize("scalar", SCALARS, ids=repr)
@pytest.mark.parametrize("side", ["left", "right"])
def test_python_scalar_operands_are_weak(name, dtype, scalar, side):
    """NEP 50: ``f32_array * 2.0`` stays f32, whether the scalar is a literal or an argument."""
    x = np.array([0.5, 1.0, 2.0]).astype(dtype)
    fn, ref = getattr(fnp, name), getattr(np, name)
    if dtype == BOOL and name in ("logaddexp", "arctan2", "divide"):
        x_ref = x.astype(F64)  # documented float16 deviation (see BOOL_NOTE)
    else:
        x_ref = x

    def order(a, s):
        return (a, s) if side == "left" else (s, a)

    def ref_fn(a, s):
        return ref(*order(x_ref if a is x else a, s))

    # The scalar closed over (a literal in the jaxpr) ...
    check_against_numpy(
        lambda a: fn(*order(a, scalar)),
        lambda a: ref_fn(a, scalar),
        (x,),
        what=f"{name}{order('x', scalar)} literal",
    )
    # ... and passed as an argument (a weakly-typed input of the jaxpr).
    check_against_numpy(
        lambda a, s: fn(*order(a, s)),
        ref_fn,
        (x, scalar),
        what=f"{name}{order('x', scalar)} argument",
    )


def test_weak_type_examples():
    x32 = np.ones(3, np.float32)
    assert fnp.multiply(x32, 2.0).dtype == np.float32
    assert fg.jit(lambda x, s: x * s)(x32, 2.0).dtype == np.float32
    assert fg.jit(lambda x: 2.0 * x + 1)(x32).dtype == np.float32
    assert fnp.add(np.arange(3), 1.5).dtype == np.float64
    assert fnp.add(np.ones(2, bool), 1).dtype == np.int64
    closed = fg.make_jaxpr(lambda s: fnp.sin(s))(2.0)
    assert closed.in_avals[0].weak_type and closed.in_avals[0].dtype == F64
    # A bare Python float alone is float64, like NumPy.
    assert np.asarray(fg.jit(fnp.sin)(1.0)).dtype == np.float64


WEAK_CONSISTENCY = {
    # Python operators on Python scalars give Python scalars (weak) ...
    "x * (s / 2.0)": lambda x, s: x * (s / 2.0),
    "x + (-s) ** 2": lambda x, s: x + (-s) ** 2,
    "(s > 1.0) * x": lambda x, s: (s > 1.0) * x,
    # ... but NumPy functions of Python scalars give NumPy scalars (strong), as in NumPy 2.
    "x * fnp.sin(s)": lambda x, s: x * fnp.sin(s),
    "x * fnp.where(x > 0, 1.0, s)": lambda x, s: x * fnp.where(x > 0, 1.0, s),
    "x + fnp.maximum(s, 0.5)": lambda x, s: x + fnp.maximum(s, 0.5),
    "x + fnp.sum(s)": lambda x, s: x + fnp.sum(s),
    "x - fnp.asarray(s)": lambda x, s: x - fnp.asarray(s),
    "x * fnp.array([s, s])": lambda x, s: x * fnp.array([s, s]),
    "x * fnp.abs(s)": lambda x, s: x * fnp.abs(s),
}


@pytest.mark.parametrize("name", WEAK_CONSISTENCY)
@pytest.mark.parametrize("s", [2.0, 3], ids=repr)
def test_python_scalar_arguments_promote_like_eager_numpy(name, s):
    """A Python scalar passed to jit/make_jaxpr behaves exactly as it does eagerly."""
    f = WEAK_CONSISTENCY[name]
    x = np.array([0.5, -1.5], np.float32)
    ref = f  # eagerly, fnp on NumPy values *is* the NumPy computation
    expected = np.asarray(f(x, s))
    np_expected = eval(name.replace("fnp.", "np."), {"np": np, "x": x, "s": s})
    assert expected.dtype == np.asarray(np_expected).dtype, "eager fgrad differs from NumPy"
    check_against_numpy(f, ref, (x, s), modes=("jaxpr", "jit"), what=name)


# --------------------------------------------------------------------------- other inputs

LIST_CALLS = {
    "sum": lambda m: m.sum([[1, 2], [3, 4]], axis=0),
    "mean": lambda m: m.mean([1, 2, 4]),
    "exp": lambda m: m.exp([0, 1]),
    "sin(int)": lambda m: m.sin(1),
    "maximum": lambda m: m.maximum([1, -2], 0),
    "add(float, list)": lambda m: m.add(0.5, [1, 2]),
    "multiply(bool, list)": lambda m: m.multiply(True, [1.5, 2]),
    "where": lambda m: m.where([True, False], [1, 2], [3.0, 4.0]),
    "dot": lambda m: m.dot([1.0, 2.0], [3.0, 4.0]),
    "matmul": lambda m: m.matmul([[1, 2]], [[3], [4]]),
    "concatenate": lambda m: m.concatenate([[1, 2], [3.0]]),
    "stack": lambda m: m.stack([[1, 2], [3, 4]], axis=1),
    "reshape": lambda m: m.reshape([1, 2, 3, 4], (2, 2)),
    "transpose": lambda m: m.transpose([[1, 2]]),
    "clip": lambda m: m.clip([-2, 0.5, 3], 0, 1),
    "argmax": lambda m: m.argmax([1, 3, 2]),
    "logaddexp": lambda m: m.logaddexp(1, 2),
    "power(int, int)": lambda m: m.power(2, 3),
    "square(float)": lambda m: m.square(1.5),
    "abs(bool)": lambda m: m.abs(True),
    "var": lambda m: m.var([1, 2, 3, 4]),
    "norm": lambda m: m.linalg.norm([3, 4]),
    "outer": lambda m: m.outer([1, 2], [3, 4, 5]),
    "einsum": lambda m: m.einsum("i,i", [1.0, 2.0], [3.0, 4.0]),
    "all": lambda m: m.all([1, 0]),
    "full_like": lambda m: m.full_like([1, 2], 0.5),
    "array(nested)": lambda m: m.array([[1, 2], [3, 4]], dtype=np.float32),
}


@pytest.mark.parametrize("name", LIST_CALLS)
def test_python_lists_and_scalars(name):
    """Eagerly, lists and Python scalars are accepted wherever NumPy accepts them."""
    call = LIST_CALLS[name]
    check_against_numpy(lambda: call(fnp), lambda: call(np), (), modes=("eager",), what=name)


NUMPY_SCALARS = [np.float32(2.0), np.float64(2.0), np.int64(3), np.bool_(True)]


@pytest.mark.parametrize("name", ["add", "multiply", "maximum", "less", "divide"])
@pytest.mark.parametrize("dtype", [F32, F64, I64], ids=lambda d: d.name)
@pytest.mark.parametrize("scalar", NUMPY_SCALARS, ids=lambda s: f"np.{type(s).__name__}")
def test_numpy_scalars_are_strong(name, dtype, scalar):
    """NEP 50: NumPy scalars take part in promotion (f32 array * np.float64 -> f64)."""
    fn, ref = getattr(fnp, name), getattr(np, name)
    x = np.array([0.5, 1.0, 2.0]).astype(dtype)
    check_against_numpy(lambda a, s: fn(a, s), lambda a, s: ref(a, s), (x, scalar),
                        what=f"{name}(x, {scalar!r})")
    check_against_numpy(lambda a: fn(scalar, a), lambda a: ref(scalar, a), (x,),
                        what=f"{name}({scalar!r}, x) literal")


REDUCTION_DTYPES = [None, F32, F64]


@pytest.mark.parametrize("name", ["sum", "mean", "prod", "var", "std", "cumsum"])
@pytest.mark.parametrize("in_dtype", [F32, F64, I64, BOOL], ids=lambda d: d.name)
@pytest.mark.parametrize("dtype", REDUCTION_DTYPES, ids=lambda d: getattr(d, "name", "None"))
def test_reduction_dtype_argument(name, in_dtype, dtype):
    x = (np.arange(6).reshape(2, 3) % 3 - 0.5).astype(in_dtype)
    fn, ref = getattr(fnp, name), getattr(np, name)
    check_against_numpy(lambda a: fn(a, axis=0, dtype=dtype), lambda a: ref(a, axis=0, dtype=dtype),
                        (x,), what=f"{name}(axis=0, dtype={dtype})")


BAD_AXES = [
    ("sum", (2, 3), {"axis": 2}), ("sum", (2, 3), {"axis": -3}), ("sum", (2, 3), {"axis": (0, 0)}),
    ("sum", (2, 3), {"axis": (0, -2)}), ("mean", (2, 3), {"axis": 5}),
    ("max", (2, 3), {"axis": (1, 3)}), ("argmax", (2, 3), {"axis": 2}),
    ("var", (4,), {"axis": 1}), ("cumsum", (2, 3), {"axis": -3}), ("all", (2,), {"axis": 1}),
    ("squeeze", (2, 1), {"axis": 0}), ("squeeze", (2, 1), {"axis": 2}),
    ("expand_dims", (2,), {"axis": 3}), ("expand_dims", (2,), {"axis": (0, 0)}),
    ("swapaxes", (2, 3), {"axis1": 0, "axis2": 2}), ("moveaxis", (2, 3), {"source": 2,
                                                                          "destination": 0}),
    ("transpose", (2, 3), {"axes": (0, 0)}), ("transpose", (2, 3), {"axes": (0,)}),
    ("concatenate", (2, 3), {"axis": 2}), ("stack", (2, 3), {"axis": 3}),
    ("split", (4,), {"indices_or_sections": 3}), ("split", (4,), {"indices_or_sections": 2,
                                                                    "axis": 1}),
    ("flip", (2, 3), {"axis": 2}), ("repeat", (2,), {"repeats": 2, "axis": 1}),
    ("argmin", (0,), {}), ("max", (2, 0), {"axis": 1}), ("min", (0,), {}),
    ("reshape", (6,), {"newshape": (-1, -1)}), ("broadcast_to", (3,), {"shape": (3, 2)}),
]


@pytest.mark.parametrize("name,shape,kwargs", BAD_AXES,
                         ids=[f"{n}{s}{k}" for n, s, k in BAD_AXES])
def test_invalid_axes_and_sizes_raise_like_numpy(name, shape, kwargs):
    x = np.ones(shape)
    fn, ref = getattr(fnp, name), getattr(np, name)
    if name in ("concatenate", "stack"):
        check_against_numpy(lambda a: fn([a, a], **kwargs), lambda a: ref([a, a], **kwargs), (x,),
                            what=name)
    elif name == "reshape":
        check_against_numpy(lambda a: fn(a, kwargs["newshape"]),
                            lambda a: ref(a, kwargs["newshape"]), (x,), what=name)
    else:
        check_against_numpy(lambda a: fn(a, **kwargs), lambda a: ref(a, **kwargs), (x,), what=name)
    with pytest.raises((ValueError, IndexError, TypeError)):
        ref(x, **kwargs) if name not in ("concatenate", "stack", "reshape") else (
            ref([x, x], **kwargs) if name != "reshape" else ref(x, kwargs["newshape"]))


@pytest.mark.parametrize("spec,operand_shapes", EINSUM_SPECS, ids=[s for s, _ in EINSUM_SPECS])
def test_every_einsum_spec(spec, operand_shapes):
    rng = np.random.default_rng(0)
    ops = tuple(rng.normal(size=s) for s in operand_shapes)
    check_against_numpy(lambda *a: fnp.einsum(spec, *a), lambda *a: np.einsum(spec, *a), ops,
                        what=f"einsum({spec!r})")


@pytest.mark.parametrize("spec,operand_shapes", [
    ("ij,jk->ik", [(2, 3), (4, 2)]), ("ij->k", [(2, 3)]), ("ij->ii", [(2, 2)]),
    ("ijk", [(2, 3)]), ("i,j", [(2,)]), ("...i,...i", [(2, 3), (4, 3)]), ("i.j", [(2, 2)]),
    ("i1", [(2, 2)]),
], ids=lambda v: repr(v))
def test_einsum_errors_like_numpy(spec, operand_shapes):
    ops = tuple(np.ones(s) for s in operand_shapes)
    check_against_numpy(lambda *a: fnp.einsum(spec, *a), lambda *a: np.einsum(spec, *a), ops,
                        what=f"einsum({spec!r})")
    with pytest.raises(ValueError):
        np.einsum(spec, *ops)


@pytest.mark.parametrize("fn", ["sum", "prod"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint32, np.int8, np.bool_])
def test_integer_reductions_accumulate_as_numpy(fn, dtype):
    x = np.array([100, 2, 3], dtype) if dtype != np.bool_ else np.array([True, True, False])
    want = getattr(np, fn)(x)
    for got in (getattr(fnp, fn)(x), fg.jit(getattr(fnp, fn))(x)):
        assert np.asarray(got).dtype == want.dtype and got == want


def test_out_of_range_axes_raise_instead_of_wrapping():
    x = np.arange(6.0).reshape(2, 3)
    with pytest.raises(np.exceptions.AxisError, match="axis 3 is out of bounds"):
        fnp.transpose(x, (0, 3))
    with pytest.raises(np.exceptions.AxisError, match="axis 2 is out of bounds"):
        fnp.tensordot(x, x, ((0,), (2,)))
    with pytest.raises(np.exceptions.AxisError, match="axis1 0 is out of bounds"):
        fnp.swapaxes(np.array(1.5), 0, 0)
    np.testing.assert_array_equal(fnp.transpose(x, (-1, 0)), x.T)
    np.testing.assert_array_equal(fnp.tensordot(x, x, ((-2,), (0,))), x.T @ x)


def test_zero_d_arrays_take_axis_0_as_numpy_does():
    np.testing.assert_array_equal(fnp.cumsum(np.array(1.5), axis=0), [1.5])
    np.testing.assert_array_equal(fnp.repeat(np.array(1.5), 2, axis=-1), [1.5, 1.5])
    assert fnp.repeat(np.zeros(0), [], axis=0).shape == (0,)
    np.testing.assert_array_equal(fnp.hstack([1.0, 2.0]), [1.0, 2.0])
    np.testing.assert_array_equal(fnp.hstack([np.array(1.0), np.ones(2)]), [1.0, 1.0, 1.0])
    assert fg.grad(lambda a: fnp.sum(fnp.cumsum(a, axis=0) * 3.0))(np.float64(2.0)) == 3.0


def test_traced_linspace_matches_numpy():
    # integer samples round toward -inf (NumPy 2); array endpoints add a first axis
    got = fg.jit(lambda a: fnp.linspace(a, 3.0, 4, dtype=np.int64))(-2.5)
    np.testing.assert_array_equal(got, np.linspace(-2.5, 3.0, 4, dtype=np.int64))
    start = np.array([0.0, 1.0])
    np.testing.assert_allclose(fg.jit(lambda a: fnp.linspace(a, 3.0, 3))(start),
                               np.linspace(start, 3.0, 3))
    assert fg.grad(lambda a: fnp.sum(fnp.linspace(a, 3.0, 5) ** 2))(np.float64(1.0)) == 7.5


def test_einsum_takes_optimize_and_checks_repeated_labels():
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(fnp.einsum("ij,jk", x, x.T, optimize=True), x @ x.T)
    with pytest.raises(ValueError, match="repeated in one operand needs equal sizes"):
        fnp.einsum("ii", x)


def test_fmod_of_bools_is_int8_eagerly_and_under_jit():
    b, c = np.array([True, False]), np.array([True, True])
    for f in (fnp.fmod, fg.jit(fnp.fmod)):
        got = f(b, c)
        assert got.dtype == np.int8 and got.tolist() == [0, 0]
    np.testing.assert_array_equal(fnp.fmod(np.array([-3.5, 3.5]), 2.0), [-1.5, 1.5])


def test_integer_power_of_arrays_is_exact_and_wraps_like_numpy():
    # 3 ** 39 needs 62 bits (float64 rounds it); 3 ** 41 and 2 ** 64 wrap around.
    base = np.array([3, 3, 2, -3, 7, 0, 1, -1], dtype=I64)
    exponent = np.array([39, 41, 64, 37, 22, 5, 10**15, 10**15 + 1], dtype=I64)
    for args in [(base, exponent), (base, 39), (3, exponent)]:
        check_against_numpy(fnp.power, np.power, args, what=f"power{tuple(map(type, args))}")
        check_against_numpy(lambda x, y: x ** y, np.power, args, what="x ** y")


def test_a_traced_negative_integer_exponent_truncates():
    # NumPy raises on a negative integer exponent; a traced one cannot, so it gives the
    # truncated 1 / x ** -y: 1 for x == 1, +-1 for x == -1, 0 otherwise.
    base = np.array([1, -1, -1, 2, -5, 0], dtype=I64)
    exponent = np.array([-3, -3, -4, -1, -2, -7], dtype=I64)
    want = np.array([1, -1, 1, 0, 0, 0])
    np.testing.assert_array_equal(fg.jit(fnp.power)(base, exponent), want)
    np.testing.assert_array_equal(lax.pow(base, exponent), want)
    with pytest.raises(ValueError, match="negative integer powers"):
        fnp.power(base, exponent)  # concrete: NumPy's error


def test_remainder_and_floor_divide_edges_match_numpy():
    # zeros of both signs, division by zero, infinities, nan and NumPy's quotient rounding
    x = np.array([1.0, -1.0, 0.0, -0.0, 4.0, -4.0, 5.5, np.inf, np.nan, 1.0, 1.0, 7.0, -7.0])
    y = np.array([0.1, 0.1, 2.0, 2.0, -2.0, 2.0, 0.0, 3.0, 1.0, np.inf, -np.inf, -0.0, 3.0])
    i = np.array([7, -7, 7, -7, 0, 5, -5])
    j = np.array([2, 2, -2, -2, 3, 0, 0])
    for fn, ref in ((fnp.remainder, np.remainder), (fnp.mod, np.mod),
                    (fnp.floor_divide, np.floor_divide),
                    (lambda a, b: a % b, np.remainder), (lambda a, b: a // b, np.floor_divide)):
        check_against_numpy(fn, ref, (x, y), what=f"{ref.__name__} floats")
        check_against_numpy(fn, ref, (i, j), what=f"{ref.__name__} ints")
        check_against_numpy(fn, ref, (x.astype(np.float32), 0.1), what=f"{ref.__name__} f32")
        with np.errstate(all="ignore"):
            want = ref(x, y)
            for got in (fn(x, y), fg.jit(fn)(x, y)):
                np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


def test_remainder_and_floor_divide_gradients():
    x, y = np.array([5.5, -5.5, 0.3]), np.array([2.0, 2.0, -0.2])
    dx, dy = fg.grad(lambda a, b: fnp.sum(a % b), argnums=(0, 1))(x, y)
    np.testing.assert_allclose(dx, np.ones(3))
    np.testing.assert_allclose(dy, -np.floor(x / y))
    dx, dy = fg.jit(fg.grad(lambda a, b: fnp.sum(a // b), argnums=(0, 1)))(x, y)
    np.testing.assert_array_equal(dx, np.zeros(3))
    np.testing.assert_array_equal(dy, np.zeros(3))


def test_integer_division_at_int64_min_and_huge_python_exponents():
    x = np.array([-2**63, -7, 7, 2**63 - 1, -2**63], dtype=I64)
    y = np.array([3, 2, -2, -1, -1], dtype=I64)
    want = np.array([-3074457345618258602, -3, -3, -(2**63 - 1), -2**63], dtype=I64)
    for div in (lax.div, fg.jit(lax.div)):  # truncating; x / -1 negates (and wraps)
        np.testing.assert_array_equal(div(x, y), want)
    check_against_numpy(fnp.floor_divide, np.floor_divide, (x[:1], np.array([3])),
                        what="INT64_MIN // 3")
    v = np.array([0.5, 1.0, 2.0])
    for e in (2**63, -2**100):
        with np.errstate(all="ignore"):
            np.testing.assert_array_equal(fg.jit(lambda a, e=e: a ** e)(v), v ** e)
    # a rule's eq(2.0, 0) of two Python scalars (pow's JVP with a Python-float argument)
    assert fg.jit(fg.grad(lambda s: s ** 2.0))(2.0) == 4.0
    np.testing.assert_allclose(fg.jit(fg.grad(lambda s: 2.0 ** s))(2.0), 4 * np.log(2.0))


def test_a_half_exponent_is_a_square_root_as_in_numpy():
    x = np.array([-0.0, -np.inf, 4.0, -1.0, np.inf])
    with np.errstate(all="ignore"):
        want = x ** 0.5  # NumPy: sqrt, so -0.0 stays -0.0 and -inf gives nan
        for got in (fnp.power(x, 0.5), fg.jit(lambda a: a ** 0.5)(x),
                    fg.vmap(lambda a: a ** 0.5)(x)):
            np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


# --------------------------------------------------------------------------- fuzzing finds


@pytest.mark.parametrize("mode", ["eager", "jit"])
def test_logaddexp_keeps_float32_with_bool_and_small_int_operands(mode):
    a = np.float32([0.5, 1.0])
    f = fnp.logaddexp if mode == "eager" else fg.jit(fnp.logaddexp)
    for other in (np.array([True, False]), np.int8([1, 2]), np.True_, 2, 2.0):
        want = np.logaddexp(a, other)
        got = f(a, other)
        assert got.dtype == want.dtype == np.float32, other
        np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("name", ["equal", "not_equal", "less", "less_equal", "greater",
                                  "greater_equal"])
def test_comparisons_with_python_ints_beyond_the_integer_dtype(name):
    # NumPy 2 compares exactly; converting the int to the array's dtype overflowed.
    for arr in (np.arange(3, dtype=np.int32), np.array([-5, 0, 100], np.int8),
                np.arange(3, dtype=np.uint64), np.arange(3), np.array([0, 255], np.uint8)):
        for big in (2 ** 62, -(2 ** 62), 2 ** 70, -(2 ** 70), 300, -1, -5, 2 ** 64):
            want, want_reflected = getattr(np, name)(arr, big), getattr(np, name)(big, arr)
            np.testing.assert_array_equal(getattr(fnp, name)(arr, big), want)
            np.testing.assert_array_equal(getattr(fnp, name)(big, arr), want_reflected)
            jitted = fg.jit(lambda a, big=big: getattr(fnp, name)(a, big))(arr)
            np.testing.assert_array_equal(jitted, want)


def test_norm_of_empty_and_zero_dimensional_inputs_as_numpy():
    assert float(fnp.linalg.norm(np.zeros(0), np.inf)) == 0.0
    np.testing.assert_array_equal(fnp.linalg.norm(np.zeros((2, 0)), np.inf, axis=1), [0, 0])
    assert float(fnp.linalg.norm(np.array(-2.0))) == 2.0
    for kwargs in ({"axis": 0}, {"ord": 1}, {"ord": np.inf}):
        with pytest.raises(ValueError, match="improper number of dimensions"):
            fnp.linalg.norm(np.array(-2.0), **kwargs)


def test_clip_takes_numpy_21_min_and_max_keywords():
    x = np.array([-2.0, 0.5, 3.0])
    np.testing.assert_array_equal(fnp.clip(x, min=0.0, max=1.0), np.clip(x, 0.0, 1.0))
    np.testing.assert_array_equal(fg.jit(lambda x: fnp.clip(x, max=1.0))(x), [-2.0, 0.5, 1.0])
    with pytest.raises(TypeError, match="not both"):
        fnp.clip(x, 0.0, max=1.0)


def test_a_python_bool_to_an_int_power_stays_weak_under_jit():
    # True ** 2 is a Python int: a float32 array minus it stays float32 (jit gave float64).
    a = np.ones(3, np.float32)

    def f(a, b):
        return a - b ** 2

    for b in (True, np.True_):
        want = a - b ** 2
        got = fg.jit(f)(a, b)
        assert got.dtype == want.dtype, b
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("order", [1, -1, np.inf, -np.inf])
def test_matrix_norms_of_order_one_and_infinity_match_numpy(order):
    m = np.array([[1.0, -2.0, 3.0], [4.0, 5.0, -6.0]])
    np.testing.assert_allclose(fnp.linalg.norm(m, order), np.linalg.norm(m, order))
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    for axis in ((0, 1), (1, 0), (2, 0), (-1, -2)):
        for keepdims in (False, True):
            want = np.linalg.norm(x, order, axis=axis, keepdims=keepdims)
            got = fnp.linalg.norm(x, order, axis=axis, keepdims=keepdims)
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want)
            jitted = fg.jit(fnp.linalg.norm, static_argnums=(1, 2, 3))
            np.testing.assert_allclose(jitted(x, order, axis, keepdims), want)
    # The gradient: sign(m) on the winning column (or row), 0 elsewhere.
    fg.test_util.check_grads(lambda m: fnp.linalg.norm(m, order), (m,), order=1,
                             modes=("rev",))


def test_matrix_norms_of_empty_matrices_as_numpy():
    for x, order, kwargs in ((np.zeros((0, 3)), np.inf, {}), (np.zeros((3, 0)), 1, {}),
                             (np.zeros((0, 1, 1)), np.inf, {"axis": (0, 1)})):
        np.testing.assert_array_equal(fnp.linalg.norm(x, order, **kwargs),
                                      np.linalg.norm(x, order, **kwargs))
    with pytest.raises(ValueError):  # the smallest of no sums: NumPy raises too
        fnp.linalg.norm(np.zeros((0, 3)), -np.inf)


def test_matrix_norms_needing_singular_values_say_so():
    m = np.ones((2, 3))
    for order in (2, -2, "nuc"):
        with pytest.raises(NotImplementedError, match="singular values"):
            fnp.linalg.norm(m, order)
    with pytest.raises(ValueError, match="improper number of dimensions"):
        fnp.linalg.norm(np.ones((2, 2, 2)), 1)


def test_keepdims_takes_ints_as_numpy_does():
    a = np.ones((2, 3))
    for fn in (fnp.sum, fnp.mean, fnp.max):
        assert fn(a, axis=0, keepdims=1).shape == (1, 3)
        assert fn(a, axis=0, keepdims=0).shape == (3,)



def test_einsum_broadcasts_size_one_labels_as_numpy_does():
    a = np.arange(1.0, 4.0).reshape(3, 1)
    b = np.arange(12.0).reshape(3, 4)
    for spec in ("ij,ij->ij", "ij,ij->i", "ij,jk->ik", "i,i->"):
        x, y = (np.ones(1), np.arange(3.0)) if spec == "i,i->" else (a, b)
        np.testing.assert_allclose(fnp.einsum(spec, x, y), np.einsum(spec, x, y))
    fg.test_util.check_grads(lambda x: fnp.einsum("ij,ij->i", x, b), (a,), order=1,
                             modes=("rev",))
    with pytest.raises(ValueError, match="repeated in one operand needs equal sizes"):
        fnp.einsum("ii", np.ones((1, 3)))  # within one operand NumPy refuses it too
