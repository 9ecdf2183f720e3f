"""The numba interpreter against the NumPy reference: differential tests over every
primitive (random shapes including 0-d, size-1 and empty; float32, float64, int64
and bool), random multi-op programs, index errors, fallbacks, caching and threads.
"""

import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fgrad as fg
from fgrad._src import core
from fgrad._src.backend import interp, lower
from fgrad._src.backend.kernels_codes import IA_GEMM, IA_GEMV
from fgrad._src.core import ShapedArray
from fgrad._src.interpreters.partial_eval import trace_to_jaxpr
from fgrad._src.lax import lax

pytestmark = pytest.mark.skipif(not interp.HAVE_NUMBA, reason="numba is not installed")

F32, F64, I64, BOOL = (np.dtype(t) for t in (np.float32, np.float64, np.int64, np.bool_))
FLOATS = [F32, F64]
TOL = {F32: (2e-6, 2e-6), F64: (1e-13, 1e-13)}
SPECIALS = [0.0, -0.0, 1.0, -1.0, 0.5, np.inf, -np.inf, np.nan]


# --------------------------------------------------------------------------- harness


def stage(f, args):
    """Trace ``f`` (arrays -> array or tuple of arrays) into a ClosedJaxpr."""

    def f_flat(*xs):
        out = f(*xs)
        return list(out) if isinstance(out, (tuple, list)) else [out]

    avals = [ShapedArray(np.shape(a), np.asarray(a).dtype) for a in args]
    return trace_to_jaxpr(f_flat, avals)


def reference(closed, args):
    with np.errstate(all="ignore"):
        return [np.asarray(x) for x in core.eval_jaxpr(closed.jaxpr, closed.consts, list(args))]


def assert_same(got, want, tol=None, scale=False):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert isinstance(g, np.ndarray)
        assert g.shape == w.shape, (g.shape, w.shape)
        assert g.dtype == w.dtype, (g.dtype, w.dtype)
        if w.dtype.kind == "f":
            rtol, atol = tol or TOL[w.dtype]
            if scale and w.size:
                finite = np.abs(w[np.isfinite(w)])
                atol *= max(1.0, float(finite.max())) if finite.size else 1.0
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, equal_nan=True)
        else:
            np.testing.assert_array_equal(g, w)


def check(f, *args, tol=None, scale=False, lowered=True):
    """Run ``f`` on ``args`` with the interpreter and the reference; compare."""
    args = [np.asarray(a) for a in args]
    closed = stage(f, args)
    prog = interp.program_for(closed)
    if lowered:
        assert isinstance(prog, lower.Program), prog
    want = reference(closed, args)
    with np.errstate(all="ignore"):
        got = interp.run(closed, args)
    assert_same(got, want, tol, scale)
    return closed


shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
nonempty = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)


def float_elements(dtype, lo=-3.0, hi=3.0, specials=True):
    width = 32 if dtype == F32 else 64
    base = st.floats(lo, hi, width=width)
    return st.one_of(base, st.sampled_from(SPECIALS)) if specials else base


def arrays(dtype, shape, lo=-3.0, hi=3.0, specials=True):
    if dtype.kind == "f":
        elements = float_elements(dtype, lo, hi, specials)
    elif dtype == BOOL:
        elements = st.booleans()
    else:
        elements = st.integers(int(lo) * 3, int(hi) * 3)
    return hnp.arrays(dtype, shape, elements=elements)


def axes_of(data, ndim):
    return tuple(sorted(data.draw(st.sets(st.integers(0, ndim - 1)) if ndim else st.just(set()))))


# --------------------------------------------------------------------------- elementwise

UNARY_FLOAT = [
    "neg", "sign", "floor", "ceil", "round", "abs", "square", "exp", "log", "log1p", "expm1",
    "tanh", "logistic", "softplus", "sin", "cos", "tan", "asin", "acos", "atan", "sinh",
    "cosh", "asinh", "acosh", "atanh", "sqrt", "rsqrt", "is_finite", "stop_gradient",
]
UNARY_INT = ["neg", "sign", "abs", "square", "bitwise_not", "stop_gradient"]


@pytest.mark.parametrize("name", UNARY_FLOAT)
@settings(max_examples=12)
@given(data=st.data())
def test_unary_float(name, data):
    dtype = data.draw(st.sampled_from(FLOATS))
    x = data.draw(arrays(dtype, shapes))
    check(getattr(lax, name), x)


@pytest.mark.parametrize("name", UNARY_INT)
@settings(max_examples=8)
@given(data=st.data())
def test_unary_int_bool(name, data):
    dtype = data.draw(st.sampled_from([I64, BOOL] if name in ("bitwise_not",) else [I64]))
    check(getattr(lax, name), data.draw(arrays(dtype, shapes)))


@settings(max_examples=25)
@given(data=st.data())
def test_integer_pow(data):
    dtype = data.draw(st.sampled_from([F32, F64, I64]))
    y = data.draw(st.integers(-3, 6) if dtype.kind == "f" else st.integers(0, 6))
    x = data.draw(arrays(dtype, shapes))
    check(lambda x: lax.integer_pow(x, y), x, tol=(1e-5, 1e-6) if dtype == F32 else None)


BINARY = {
    "add": "fi", "sub": "fi", "mul": "fi", "div": "fi", "rem": "fi", "max": "fib", "min": "fib",
    "pow": "fi", "atan2": "f", "bitwise_and": "ib", "bitwise_or": "ib", "bitwise_xor": "ib",
    "eq": "fib", "ne": "fib", "lt": "fib", "le": "fib", "gt": "fib", "ge": "fib",
}
KINDS = {"f": FLOATS, "i": [I64], "b": [BOOL]}


@pytest.mark.parametrize("name", sorted(BINARY))
@settings(max_examples=15)
@given(data=st.data())
def test_binary(name, data):
    dtype = data.draw(st.sampled_from([d for k in BINARY[name] for d in KINDS[k]]))
    shape = data.draw(shapes)
    x = data.draw(arrays(dtype, shape))
    if name == "pow":  # NB: NumPy's 0-d float power gives nan for (-inf) ** 0.5, arrays inf
        x = np.where(x == -np.inf, np.asarray(-2, dtype), x)
    fn = getattr(lax, name)
    # The second operand: an array, a 0-d array broadcast by the wrapper, or a Python scalar
    # (which becomes a literal): the interpreter reads lazy broadcasts as scalars.
    how = data.draw(st.sampled_from(["array", "0d", "scalar", "scalar-first"]))
    if how == "array":
        check(fn, x, data.draw(arrays(dtype, shape)))
    elif how == "0d":
        check(fn, x, data.draw(arrays(dtype, ())))
    else:
        v = data.draw(arrays(dtype, ())).item()
        check((lambda x: fn(v, x)) if how == "scalar-first" else (lambda x: fn(x, v)), x)


@settings(max_examples=30)
@given(data=st.data())
def test_select_n(data):
    dtype = data.draw(st.sampled_from([F32, F64, I64, BOOL]))
    shape = data.draw(shapes)
    n_cases = data.draw(st.integers(1, 3))
    if n_cases == 2 and data.draw(st.booleans()):
        which = data.draw(arrays(BOOL, data.draw(st.sampled_from([shape, ()]))))
    else:
        wshape = data.draw(st.sampled_from([shape, ()]))
        which = data.draw(hnp.arrays(I64, wshape, elements=st.integers(0, n_cases - 1)))
    cases = [data.draw(arrays(dtype, shape)) for _ in range(n_cases)]
    scalar_case = data.draw(st.integers(-1, n_cases - 1))

    def f(w, *cs):
        cs = list(cs)
        if scalar_case >= 0:  # one case is a broadcast scalar
            cs[scalar_case] = lax.broadcast_in_dim(np.asarray(cases[0].flat[0] if cases[0].size
                                                              else 0, dtype), shape, ())
        return lax.select_n(w, *cs)

    check(f, which, *cases)


def test_select_n_int_predicate_out_of_range():
    closed = stage(lambda w, a, b: lax.select_n(w, a, b), [np.array([0, 2]), np.zeros(2),
                                                            np.ones(2)])
    args = [np.array([0, 2]), np.zeros(2), np.ones(2)]
    with pytest.raises(ValueError):
        reference(closed, args)
    with pytest.raises(ValueError):
        interp.run(closed, args)


CASTS = [F32, F64, I64, BOOL]


@settings(max_examples=40)
@given(data=st.data())
def test_convert_element_type(data):
    src = data.draw(st.sampled_from(CASTS))
    dst = data.draw(st.sampled_from(CASTS))
    # float -> int of NaN/inf/out-of-range values is undefined: keep values finite.
    x = data.draw(arrays(src, shapes, specials=dst.kind != "i"))
    check(lambda x: lax.convert_element_type(x, dst), x)


# --------------------------------------------------------------------------- shapes


@settings(max_examples=40)
@given(data=st.data())
def test_broadcast_in_dim(data):
    dtype = data.draw(st.sampled_from(CASTS))
    out_shape = data.draw(shapes)
    keep = sorted(data.draw(st.sets(st.integers(0, len(out_shape) - 1))) if out_shape else [])
    in_shape = tuple(data.draw(st.sampled_from([out_shape[d], 1])) for d in keep)
    x = data.draw(arrays(dtype, in_shape))
    check(lambda x: lax.broadcast_in_dim(x, out_shape, keep), x)


@settings(max_examples=30)
@given(data=st.data())
def test_reshape_squeeze_expand_dims(data):
    dtype = data.draw(st.sampled_from(CASTS))
    x = data.draw(arrays(dtype, shapes))
    flat = (x.size,)
    ones = tuple(d for d, n in enumerate(x.shape) if n == 1)
    new_dims = data.draw(st.sets(st.integers(0, x.ndim), max_size=2))

    def f(x):
        y = lax.neg(x) if dtype.kind in "fi" else lax.bitwise_not(x)
        return (lax.reshape(y, flat), lax.squeeze(y, ones), lax.expand_dims(x, tuple(new_dims)),
                lax.reshape(lax.reshape(y, flat), x.shape))

    check(f, x)


@settings(max_examples=30)
@given(data=st.data())
def test_transpose(data):
    dtype = data.draw(st.sampled_from(CASTS))
    x = data.draw(arrays(dtype, shapes))
    perm = data.draw(st.permutations(range(x.ndim)))
    check(lambda x: lax.transpose(x, perm), x)


REDUCTIONS = {"reduce_sum": "fi", "reduce_prod": "fi", "reduce_max": "fib", "reduce_min": "fib"}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@settings(max_examples=25)
@given(data=st.data())
def test_reductions(name, data):
    dtype = data.draw(st.sampled_from([d for k in REDUCTIONS[name] for d in KINDS[k]]))
    shape = data.draw(shapes if name in ("reduce_sum", "reduce_prod") else nonempty)
    x = data.draw(arrays(dtype, shape))
    axes = axes_of(data, x.ndim)
    check(lambda x: getattr(lax, name)(x, axes), x, tol=(1e-5, 1e-5) if dtype == F32 else None,
          scale=True)


def test_reduce_sum_long_rows_match_numpy_pairwise():
    rng = np.random.default_rng(0)
    for dtype in FLOATS:
        for shape, axes in [((1000,), (0,)), ((3, 517), (1,)), ((300, 7), (0,)),
                            ((4, 260, 3), (0, 2))]:
            x = rng.standard_normal(shape).astype(dtype)
            closed = stage(lambda x: lax.reduce_sum(x, axes), [x])  # noqa: B023
            got = interp.run(closed, [x])[0]
            np.testing.assert_allclose(got, np.sum(x, axis=axes), rtol=TOL[dtype][0] * 10,
                                       atol=TOL[dtype][1] * 10)


@settings(max_examples=30)
@given(data=st.data())
def test_argmax_argmin(data):
    dtype = data.draw(st.sampled_from(CASTS))
    x = data.draw(arrays(dtype, nonempty.filter(lambda s: len(s) > 0)))
    axis = data.draw(st.integers(0, x.ndim - 1))
    check(lambda x: (lax.argmax(x, axis), lax.argmin(x, axis)), x)


@settings(max_examples=30)
@given(data=st.data())
def test_cumsum(data):
    dtype = data.draw(st.sampled_from([F32, F64, I64]))
    x = data.draw(arrays(dtype, shapes.filter(lambda s: len(s) > 0)))
    axis = data.draw(st.integers(0, x.ndim - 1))
    reverse = data.draw(st.booleans())
    check(lambda x: lax.cumsum(x, axis, reverse), x)


@st.composite
def dot_problem(draw):
    """Random dimension numbers: shared batch and contracting dims, free dims anywhere."""
    nb, nc = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    nfx, nfy = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    sizes = st.integers(0, 3)
    batch = [draw(sizes) for _ in range(nb)]
    contract = [draw(sizes) for _ in range(nc)]
    roles_x = [("b", i) for i in range(nb)] + [("c", i) for i in range(nc)] + \
        [("f", draw(sizes)) for _ in range(nfx)]
    roles_y = [("b", i) for i in range(nb)] + [("c", i) for i in range(nc)] + \
        [("f", draw(sizes)) for _ in range(nfy)]
    roles_x = draw(st.permutations(roles_x))
    roles_y = draw(st.permutations(roles_y))

    def layout(roles):
        shape, b, c = [], {}, {}
        for d, (role, v) in enumerate(roles):
            if role == "b":
                shape.append(batch[v])
                b[v] = d
            elif role == "c":
                shape.append(contract[v])
                c[v] = d
            else:
                shape.append(v)
        return tuple(shape), b, c

    sx, bx, cx = layout(roles_x)
    sy, by, cy = layout(roles_y)
    dims = ((tuple(cx[i] for i in range(nc)), tuple(cy[i] for i in range(nc))),
            (tuple(bx[i] for i in range(nb)), tuple(by[i] for i in range(nb))))
    return sx, sy, dims


@settings(max_examples=60)
@given(data=st.data(), problem=dot_problem())
def test_dot_general(data, problem):
    sx, sy, dims = problem
    dtype = data.draw(st.sampled_from([F32, F64, I64]))
    x = data.draw(arrays(dtype, sx, specials=False))
    y = data.draw(arrays(dtype, sy, specials=False))
    check(lambda x, y: lax.dot_general(x, y, dims), x, y,
          tol=(1e-5, 1e-5) if dtype == F32 else (1e-12, 1e-12), scale=True)


@pytest.mark.parametrize("gemm", ["numpy cblas", "numba np.dot"])
def test_dot_general_large_uses_blas_layouts(gemm, monkeypatch):
    from fgrad._src.backend import blas

    addresses = blas.addresses()
    if gemm == "numpy cblas":
        # NumPy's PyPI wheels bundle scipy-openblas (ILP64): its gemm and gemv must be found.
        assert all(addresses) or blas._numpy_openblas() is None
    else:
        monkeypatch.setattr(blas, "addresses", lambda: (0, 0, 0, 0))
    rng = np.random.default_rng(1)
    for dtype in FLOATS:
        x = rng.standard_normal((3, 40, 50)).astype(dtype)
        y = rng.standard_normal((3, 60, 50)).astype(dtype)
        for dims in [(((2,), (2,)), ((0,), (0,))),  # y transposed in memory
                     (((1,), (1,)), ((0,), (0,)))]:  # x transposed in memory
            yy = y if dims[0][1] == (2,) else rng.standard_normal((3, 40, 60)).astype(dtype)
            closed = check(lambda a, b: lax.dot_general(a, b, dims), x, yy,  # noqa: B023
                           tol=(1e-4, 1e-4) if dtype == F32 else (1e-11, 1e-11), scale=True)
            (arenas,) = interp.program_for(closed).pool
            got = tuple(arenas.ia[IA_GEMM:IA_GEMV + 2])
            assert got == (addresses if gemm == "numpy cblas" else (0, 0, 0, 0))


# Matrix-vector products large enough for BLAS, in every stored layout: either side the
# vector, the matrix transposed in memory or not, batched or not.
MATVEC = {
    "matrix @ vector": ((300, 40), (40,), (((1,), (0,)), ((), ()))),
    "matrix.T @ vector": ((40, 300), (40,), (((0,), (0,)), ((), ()))),
    "vector @ matrix": ((40,), (40, 300), (((0,), (0,)), ((), ()))),
    "vector @ matrix.T": ((40,), (300, 40), (((0,), (1,)), ((), ()))),
    "row @ matrix": ((1, 40), (40, 300), (((1,), (0,)), ((), ()))),
    "matrix @ column": ((300, 40), (40, 1), (((1,), (0,)), ((), ()))),
    "batched matrix @ vector": ((3, 300, 40), (3, 40), (((2,), (1,)), ((0,), (0,)))),
    "batched vector @ matrix.T": ((3, 40), (3, 300, 40), (((1,), (2,)), ((0,), (0,)))),
}


@pytest.mark.parametrize("path", ["numpy cblas gemv", "numpy cblas gemm", "numba np.dot"])
@pytest.mark.parametrize("case", list(MATVEC))
def test_matrix_vector_products_in_every_layout(case, path, monkeypatch):
    from fgrad._src.backend import blas

    found = blas.addresses()
    if path == "numpy cblas gemm":
        monkeypatch.setattr(blas, "addresses", lambda: found[:2] + (0, 0))
    elif path == "numba np.dot":
        monkeypatch.setattr(blas, "addresses", lambda: (0, 0, 0, 0))
    sx, sy, dims = MATVEC[case]
    rng = np.random.default_rng(2)
    for dtype in FLOATS:
        x = rng.standard_normal(sx).astype(dtype)
        y = rng.standard_normal(sy).astype(dtype)
        tol = (1e-4, 1e-4) if dtype == F32 else (1e-11, 1e-11)
        out_shape = lax.dot_general(x, y, dims).shape
        c = rng.standard_normal(out_shape).astype(dtype)
        check(lambda a, b: lax.dot_general(a, b, dims), x, y, tol=tol, scale=True)
        # Scaled and accumulated into an addend (lower._fold_into_dot): alpha and beta.
        check(lambda a, b, c: c - 0.5 * lax.dot_general(a, b, dims), x, y, c, tol=tol,
              scale=True)


def test_matrix_vector_product_overwrites_a_nan_left_in_its_buffer():
    # The arenas are reused between runs: a NaN result of one run must not leak into the
    # next (gemv with beta = 0 ignores the output's old contents).
    f = fg.jit(lambda a, b: a @ b)
    x = np.ones((300, 40))
    assert np.isnan(f(x, np.full(40, np.nan))).all()
    np.testing.assert_array_equal(f(x, np.ones(40)), np.full(300, 40.0))


@settings(max_examples=40)
@given(data=st.data())
def test_slice_rev(data):
    dtype = data.draw(st.sampled_from(CASTS))
    x = data.draw(arrays(dtype, shapes))
    starts, limits, strides = [], [], []
    for n in x.shape:
        a = data.draw(st.integers(0, n))
        b = data.draw(st.integers(a, n))
        starts.append(a)
        limits.append(b)
        strides.append(data.draw(st.integers(1, 3)))
    dims = axes_of(data, x.ndim)
    check(lambda x: (lax.slice(x, starts, limits, strides), lax.rev(x, dims)), x)


@settings(max_examples=40)
@given(data=st.data())
def test_pad(data):
    dtype = data.draw(st.sampled_from(CASTS))
    x = data.draw(arrays(dtype, shapes))
    config = [tuple(data.draw(st.integers(0, 2)) for _ in range(3)) for _ in range(x.ndim)]
    value = data.draw(arrays(dtype, ()))
    check(lambda x, v: lax.pad(x, v, config), x, value)


@settings(max_examples=40)
@given(data=st.data())
def test_concatenate(data):
    dtype = data.draw(st.sampled_from(CASTS))
    shape = data.draw(shapes.filter(lambda s: len(s) > 0))
    dim = data.draw(st.integers(0, len(shape) - 1))
    parts = []
    for _ in range(data.draw(st.integers(1, 3))):
        s = list(shape)
        s[dim] = data.draw(st.integers(0, 3))
        parts.append(data.draw(arrays(dtype, tuple(s))))
    check(lambda *xs: lax.concatenate(xs, dim), *parts)


@settings(max_examples=25)
@given(data=st.data())
def test_iota(data):
    dtype = data.draw(st.sampled_from([F32, F64, I64]))
    shape = data.draw(shapes.filter(lambda s: len(s) > 0))
    dim = data.draw(st.integers(0, len(shape) - 1))
    x = data.draw(arrays(dtype, ()))
    check(lambda x: lax.add(lax.iota(dtype, shape, dim), x), x)


# --------------------------------------------------------------------------- indexing


@settings(max_examples=40)
@given(data=st.data())
def test_dynamic_slice_and_update(data):
    dtype = data.draw(st.sampled_from(CASTS))
    x = data.draw(arrays(dtype, shapes))
    sizes = [data.draw(st.integers(0, n)) for n in x.shape]
    # Start indices out of range are clamped (as in XLA).
    starts = [np.asarray(data.draw(st.integers(-3, n + 3)), np.int64) for n in x.shape]
    update = data.draw(arrays(dtype, tuple(sizes)))

    def f(x, u, *s):
        return lax.dynamic_slice(x, s, sizes), lax.dynamic_update_slice(x, u, s)

    check(f, x, update, *starts)


@settings(max_examples=40)
@given(data=st.data())
def test_gather_scatter_add(data):
    dtype = data.draw(st.sampled_from([F32, F64, I64]))
    x = data.draw(arrays(dtype, nonempty.filter(lambda s: len(s) > 0)))
    axis = data.draw(st.integers(0, x.ndim - 1))
    ishape = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=4))
    idx = data.draw(hnp.arrays(I64, ishape, elements=st.integers(0, x.shape[axis] - 1)))
    ushape = x.shape[:axis] + ishape + x.shape[axis + 1:]
    upd = data.draw(arrays(dtype, ushape))
    check(lambda x, i, u: (lax.gather(x, i, axis), lax.scatter_add(x, i, u, axis)), x, idx, upd)


@pytest.mark.parametrize("bad", [3, -1, 100])
def test_out_of_range_indices_raise_index_error(bad):
    x = np.arange(6.0).reshape(2, 3)
    idx = np.array([0, bad, 1])
    for f in (lambda x, i: lax.gather(x, i, 1),
              lambda x, i: lax.scatter_add(x, i, lax.full((2, 3), 1.0, x.dtype), 1)):
        closed = stage(f, [x, idx])
        assert isinstance(interp.program_for(closed), lower.Program)
        with pytest.raises(IndexError, match=f"index {bad} is out of bounds"):
            reference(closed, [x, idx])
        with pytest.raises(IndexError, match=f"index {bad} is out of bounds for axis of size 3"):
            interp.run(closed, [x, idx])
        # The arena is still usable afterwards.
        good = [x, np.array([2, 0, 1])]
        assert_same(interp.run(closed, good), reference(closed, good))


def test_custom_vjp_call_is_inlined():
    @fg.custom_vjp
    def f(x):
        return lax.mul(lax.sin(x), 2.0)

    f.defvjp(lambda x: (f(x), x), lambda x, g: (g,))
    x = np.linspace(-1, 1, 5)
    closed = check(lambda x: lax.add(f(x), x), x)
    assert "custom_vjp_call" in str(closed)


def _ulps(got, want):
    spacing = np.spacing(np.abs(want)).astype(np.float64)
    got, want = got.astype(np.float64), want.astype(np.float64)
    both_nan = np.isnan(got) & np.isnan(want)
    with np.errstate(invalid="ignore"):
        d = np.abs(got - want) / spacing
    d[(got == want) | both_nan] = 0.0
    return d


@pytest.mark.parametrize("name", ["exp", "expm1", "log", "log1p", "tanh", "sin", "cos",
                                  "logistic", "softplus"])
@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
def test_vectorized_math_is_within_a_few_ulp_of_numpy(name, dtype):
    """The polynomial exp/log/tanh/sin/cos against NumPy over wide ranges and edge values."""
    rng = np.random.default_rng(42)
    big = 700.0 if dtype == F64 else 88.0
    parts = [rng.uniform(-4, 4, 4000), rng.uniform(-big, big, 4000),
             rng.uniform(-1e-4, 1e-4, 1000), rng.uniform(-3e4, 3e4, 1000),
             [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e-300, -1e-300, 1e6, -3e5]]
    if name in ("log", "log1p"):
        parts.append(np.exp(rng.uniform(-big, big, 4000)))
        parts.append([5e-324, 1e-310, 1e-40, 1e-45, -0.5, -1.0, -2.0])
    with np.errstate(all="ignore"):
        x = np.concatenate([np.asarray(p, np.float64) for p in parts]).astype(dtype)
    closed = stage(getattr(lax, name), [x])
    (got,) = interp.run(closed, [x])
    (want,) = reference(closed, [x])
    assert got.dtype == want.dtype == dtype
    ulps = _ulps(got, want)
    assert ulps.max() <= 4, (x[np.argmax(ulps)], got[np.argmax(ulps)], want[np.argmax(ulps)])


@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
@pytest.mark.parametrize("n", [5, 3 * lower.BLOCK + 1])
def test_sin_and_cos_of_one_operand_share_a_pass(dtype, n):
    x = np.linspace(-20, 20, n).astype(dtype)
    x[:3] = [np.nan, np.inf, 3e5]  # the libm path
    closed = stage(lambda x: (lax.sin(x), lax.mul(lax.cos(x), 2.0), lax.sin(x)), [x])
    assert any("sincos" in name for name in interp.program_for(closed).op_names)
    got, want = interp.run(closed, [x]), reference(closed, [x])
    for g, w in zip(got, want):
        assert _ulps(g, w).max() <= 4


# --------------------------------------------------------------------------- random programs


def _base(x):
    return x.aval.shape


def _same_shape_ops():
    """Ops ``(data, x, y, mask) -> value of x's shape`` covering every primitive family."""

    def reduce_back(data, x, y, m):
        name = data.draw(st.sampled_from(["reduce_sum", "reduce_max", "reduce_min",
                                          "reduce_prod"]))
        axes = axes_of(data, len(_base(x)))
        if name != "reduce_sum" and any(_base(x)[a] == 0 for a in axes):
            name = "reduce_sum"
        r = getattr(lax, name)(lax.tanh(x) if name == "reduce_prod" else x, axes)
        kept = tuple(d for d in range(len(_base(x))) if d not in axes)
        return lax.broadcast_in_dim(r, _base(x), kept)

    def transpose_back(data, x, y, m):
        perm = data.draw(st.permutations(range(len(_base(x)))))
        inv = tuple(np.argsort(perm))
        return lax.transpose(lax.sin(lax.transpose(x, perm)), inv)

    def slice_pad(data, x, y, m):
        if not _base(x) or min(_base(x)) == 0:
            return lax.rev(x, tuple(range(len(_base(x)))))
        d = data.draw(st.integers(0, len(_base(x)) - 1))
        starts = [0] * len(_base(x))
        starts[d] = 1
        s = lax.slice(x, starts, _base(x))
        config = [(0, 0, 0)] * len(_base(x))
        config[d] = (1, 0, 0)
        return lax.pad(s, np.zeros((), x.dtype), config)

    def dot(data, x, y, m):
        nd = len(_base(x))
        if nd == 0:
            return lax.mul(x, y)
        if nd == 1:
            r = lax.dot_general(x, y, (((0,), (0,)), ((), ())))
            return lax.broadcast_in_dim(r, _base(x), ())
        b = tuple(range(nd - 2))
        xy = lax.dot_general(x, y, (((nd - 1,), (nd - 1,)), (b, b)))  # (..., m, m)
        return lax.dot_general(xy, y, (((nd - 1,), (nd - 2,)), (b, b)))  # (..., m, k)

    def concat_slice(data, x, y, m):
        if not _base(x):
            return lax.add(x, y)
        d = data.draw(st.integers(0, len(_base(x)) - 1))
        c = lax.concatenate([x, y], d)
        starts = [0] * len(_base(x))
        starts[d] = _base(x)[d] if data.draw(st.booleans()) else 0
        limits = list(_base(x))
        limits[d] += starts[d]
        return lax.slice(c, starts, limits)

    def gather_scatter(data, x, y, m):
        if not _base(x) or _base(x)[0] == 0:
            return lax.neg(x)
        n = _base(x)[0]
        idx = np.random.default_rng(data.draw(st.integers(0, 99))).integers(0, n, n)
        g = lax.gather(x, idx, 0)
        return lax.scatter_add(g, idx, y, 0)

    def dynamic(data, x, y, m):
        shape = _base(x)
        sizes = [data.draw(st.integers(0, n)) for n in shape]
        starts = [np.asarray(data.draw(st.integers(-1, n)), np.int64) for n in shape]
        starts2 = [np.asarray(data.draw(st.integers(-1, n)), np.int64) for n in shape]
        return lax.dynamic_update_slice(x, lax.dynamic_slice(y, starts, sizes), starts2)

    def unary(data, x, y, m):
        name = data.draw(st.sampled_from(["neg", "sin", "cos", "tanh", "logistic", "atan",
                                          "abs", "square", "stop_gradient", "asinh",
                                          "softplus"]))
        return getattr(lax, name)(x)

    def binary(data, x, y, m):
        name = data.draw(st.sampled_from(["add", "sub", "mul", "max", "min"]))
        other = data.draw(st.sampled_from(["array", "scalar"]))
        if other == "scalar":
            return getattr(lax, name)(x, data.draw(st.sampled_from([1.0, 2.0, -0.5])))
        return getattr(lax, name)(x, y)

    def smooth(data, x, y, m):
        safe = lax.add(lax.abs(y), 1.0)
        return data.draw(st.sampled_from([
            lambda: lax.div(x, safe), lambda: lax.pow(safe, lax.tanh(x)),
            lambda: lax.integer_pow(x, data.draw(st.integers(0, 3))),
            lambda: lax.sqrt(safe), lambda: lax.log(safe), lambda: lax.exp(lax.tanh(x)),
        ]))()

    def select(data, x, y, m):
        return lax.select_n(m, x, y)

    def masks(data, x, y, m):
        # Masks only ever come from the inputs, so every comparison below is exact.
        m2 = lax.bitwise_and(m, lax.bitwise_not(lax.is_finite(lax.div(x, 0.0))))
        which = lax.convert_element_type(m2, np.int64)
        return lax.select_n(which, x, lax.convert_element_type(m, x.dtype))

    def cumsum(data, x, y, m):
        if not _base(x):
            return x
        return lax.cumsum(x, data.draw(st.integers(0, len(_base(x)) - 1)),
                          data.draw(st.booleans()))

    def iota(data, x, y, m):
        if not _base(x):
            return x
        d = data.draw(st.integers(0, len(_base(x)) - 1))
        return lax.add(x, lax.iota(x.dtype, _base(x), d))

    def flatten(data, x, y, m):
        return lax.reshape(lax.cos(lax.reshape(x, (int(np.prod(_base(x))),))), _base(x))

    return [reduce_back, transpose_back, slice_pad, dot, concat_slice, gather_scatter, dynamic,
            unary, binary, smooth, select, masks, cumsum, iota, flatten]


OPS = _same_shape_ops()


@settings(max_examples=60)
@given(data=st.data())
def test_random_programs(data):
    check_random_program(data)


@settings(max_examples=30)
@given(data=st.data())
def test_random_programs_with_every_float_io_in_place(data):
    """The same programs with every float input read, and output written, where it lies."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(lower, "DIRECT_MIN", 1)
        check_random_program(data)


def check_random_program(data):
    dtype = data.draw(st.sampled_from(FLOATS))
    shape = data.draw(shapes)
    n_in = data.draw(st.integers(1, 3))
    args = [data.draw(arrays(dtype, shape, -1.0, 1.0, specials=False)) for _ in range(n_in)]
    args.append(data.draw(arrays(dtype, shape, -1.0, 1.0, specials=False)))  # mask source
    n_steps = data.draw(st.integers(1, 8))

    def f(*xs):
        *pool, mask_src = xs
        mask = lax.gt(mask_src, 0.0)
        pool = list(pool)
        for _ in range(n_steps):
            x = data.draw(st.sampled_from(pool))
            y = data.draw(st.sampled_from(pool))
            op = data.draw(st.sampled_from(OPS))
            pool.append(op(data, x, y, mask))
        k = data.draw(st.integers(1, min(3, len(pool))))
        return pool[-k:]

    tol = (1e-4, 1e-4) if dtype == F32 else (1e-10, 1e-10)
    check(f, *args, tol=tol, scale=True)


@settings(max_examples=12)
@given(data=st.data())
def test_random_programs_on_large_arrays_fuse(data):
    """Elementwise runs over >= 2 blocks run fused, block by block (lower.BLOCK)."""
    dtype = data.draw(st.sampled_from(FLOATS))
    shape = data.draw(st.sampled_from([(2 * lower.BLOCK + 3,), (70, 61), (2, 3, 1400),
                                       (3 * lower.BLOCK,)]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    args = [rng.uniform(-1, 1, shape).astype(dtype) for _ in range(3)]
    n_steps = data.draw(st.integers(3, 10))

    def f(*xs):
        *pool, mask_src = xs
        mask = lax.gt(mask_src, 0.0)
        pool = list(pool)
        for _ in range(n_steps):
            x = data.draw(st.sampled_from(pool))
            y = data.draw(st.sampled_from(pool))
            # Mostly elementwise. NB: in float32, sums over thousands of elements (dot,
            # reductions, cumsum) are too ill-conditioned to compare at a fixed tolerance.
            ops = OPS[7:] + OPS[7:] + (OPS[:7] if dtype == F64 else [OPS[1], OPS[2], OPS[6]])
            op = data.draw(st.sampled_from([o for o in ops if dtype == F64 or o is not
                                            OPS[12]]))
            pool.append(op(data, x, y, mask))
        return pool[-data.draw(st.integers(1, 3)):]

    check(f, *args, tol=(1e-4, 1e-4) if dtype == F32 else (1e-10, 1e-10), scale=True)


def test_gradient_of_an_elementwise_function_is_one_fused_op():
    def w1(x):
        return lax.reduce_sum(lax.add(lax.mul(lax.tanh(x), x), lax.integer_pow(lax.sin(x), 2)),
                              (0,))

    for dtype in FLOATS:
        x = np.linspace(-3, 3, 10_001).astype(dtype)
        closed = fg.make_jaxpr(fg.grad(w1))(x)
        prog = interp.program_for(closed)
        assert prog.n_ops == 1 and prog.op_names[0].startswith("fused(")
        # Its intermediates live in per-block scratch: the arena is the input, one output
        # and a few blocks, not ten arrays.
        cls = lower.CLS_F32 if dtype == F32 else lower.CLS_F64
        assert prog.sizes[cls] < 2 * x.size + 10 * lower.BLOCK
        (got,) = interp.run(closed, [x])
        t = np.tanh(x.astype(np.float64))
        want = (1 - t * t) * x + t + 2 * np.sin(x.astype(np.float64)) * np.cos(x)
        np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == F32 else 1e-12, atol=1e-5)


def test_fused_group_reports_errors_and_keeps_outputs():
    x = np.linspace(-1, 1, 3 * lower.BLOCK + 5)
    w = np.zeros(x.size, np.int64)
    w[-1] = 2  # out of range for two cases: np.choose raises, so does the fused group

    def f(x, w):
        y = lax.sin(lax.mul(x, 2.0))
        return lax.select_n(w, y, lax.cos(y)), y

    closed = stage(f, [x, w])
    assert any(n.startswith("fused(") for n in interp.program_for(closed).op_names)
    with pytest.raises(ValueError):
        interp.run(closed, [x, w])
    w[-1] = 1
    assert_same(interp.run(closed, [x, w]), reference(closed, [x, w]))


# --------------------------------------------------------------------------- machinery


def test_program_is_cached_on_the_closed_jaxpr():
    x = np.linspace(0, 1, 4)
    closed = stage(lambda x: lax.sin(x), [x])
    prog = interp.program_for(closed)
    interp.run(closed, [x])
    assert interp.program_for(closed) is prog
    assert closed._fgrad_program is prog


def test_outputs_are_fresh_arrays():
    x = np.linspace(0, 1, 4)
    closed = stage(lambda x: (lax.sin(x), x), [x])
    a, b = interp.run(closed, [x])
    a[:] = 7.0
    b[:] = 7.0
    c, d = interp.run(closed, [x])
    np.testing.assert_allclose(c, np.sin(x))
    np.testing.assert_allclose(d, x)
    assert not np.shares_memory(b, x)


def test_large_float_io_is_used_in_place():
    n = lower.DIRECT_MIN + 5
    closed = stage(lambda x, y: (lax.sin(x), lax.add(x, y), lax.reduce_sum(y, (0,))),
                   [np.zeros(n), np.zeros(n)])
    prog = interp.program_for(closed)
    assert sorted(prog.in_refs) == [0, 1] and sorted(prog.out_refs) == [0, 1]
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(n), rng.standard_normal(n)
    raw = np.zeros(8 * n + 1, np.uint8)
    misaligned = np.frombuffer(raw.data, np.float64, n, offset=1)
    misaligned[...] = x
    # Alternate in-place and copied arguments through the same pooled arena set.
    for a, b in [(x, y), (x[::-1], y), (misaligned, y), (x.astype(np.float32), y), (x, y),
                 (x, y[::-1].copy())]:
        outs = interp.run(closed, [a, b])
        want = [np.sin(np.asarray(a, np.float64)), a + b, np.sum(b)]
        assert_same(outs, want, tol=(1e-13, 1e-10))
        assert not any(np.shares_memory(o, v) for o in outs for v in (a, b))
        assert not np.shares_memory(outs[0], outs[1])
    first = interp.run(closed, [x, y])
    kept = first[0].copy()
    interp.run(closed, [y, x])
    np.testing.assert_array_equal(first[0], kept)  # not overwritten by the next run


def test_large_io_read_at_many_and_few_code_positions():
    # A large input read by more ops than CodeRefs writes one by one (NumPy patches its
    # positions), and a large output written by one op (patched from Python ints).
    n = lower.DIRECT_MIN
    readers = lower.CodeRefs.FEW + 3

    def many_reads(x):
        y = lax.neg(x)
        for i in range(readers):
            y = lax.add(y, lax.mul(x, float(i + 2)))  # each product reads x afresh
        return y, lax.sin(x)

    closed = stage(many_reads, [np.zeros(n)])
    prog = interp.program_for(closed)
    assert prog.in_refs[0][0].size > lower.CodeRefs.FEW
    assert 0 < prog.out_refs[1][0].size <= lower.CodeRefs.FEW
    rng = np.random.default_rng(1)
    for _ in range(3):  # a new input and new outputs each run, through one arena set
        x = rng.standard_normal(n)
        total, sine = interp.run(closed, [x])
        np.testing.assert_allclose(total, -x + x * sum(range(2, readers + 2)), rtol=1e-12)
        np.testing.assert_allclose(sine, np.sin(x), rtol=1e-13, atol=1e-15)


def test_data_address_is_numpy_data_pointer():
    base = np.zeros((6, 8), np.float32)
    for x in [np.empty(5), base, base[1:, 2::3], np.arange(10.0)[::-3], np.empty(0),
              np.array(2.5), np.frombuffer(bytes(17), np.uint8, 8, offset=3)]:
        assert interp._data_address(x) == x.__array_interface__["data"][0]


def test_large_constants_are_shared_by_every_arena_set():
    n = lower.DIRECT_MIN + 1
    table = np.linspace(-1, 1, n)
    closed = stage(lambda x: lax.mul(lax.sin(x), table), [np.zeros(n)])
    prog = interp.program_for(closed)
    table[:] = 7.0  # the program keeps its own copy, taken when it was lowered
    assert prog.sizes[lower.CLS_F64] < 4 * n  # x, sin(x) and the output: not the table
    assert len(prog.shared_consts) == 1
    x = np.linspace(0, 3, n)
    want = np.sin(x) * np.linspace(-1, 1, n)
    results = []

    def worker():
        for _ in range(20):
            results.append(interp.run(closed, [x])[0])

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 60
    for got in results:
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
    # A constant that is also an output stays in the arena and is copied out.
    both = stage(lambda x: (lax.add(x, table), table), [np.zeros(n)])
    assert not interp.program_for(both).shared_consts
    np.testing.assert_array_equal(interp.run(both, [x])[1], table)


def test_in_place_io_keeps_aliased_outputs_apart():
    n = lower.DIRECT_MIN
    x = np.linspace(0, 1, n)
    # An output that is the input (or a reshape of it), and one value returned twice.
    closed = stage(lambda x: (x, lax.reshape(x, (n // 2, 2)), lax.exp(x), lax.exp(x)), [x])
    outs = interp.run(closed, [x])
    assert_same(outs, [x, x.reshape(n // 2, 2), np.exp(x), np.exp(x)])
    assert not np.shares_memory(outs[0], x) and not np.shares_memory(outs[2], outs[3])


def test_common_subexpressions_are_computed_once():
    x = np.linspace(-1, 1, 7)

    def twice(x):
        a = lax.add(lax.sin(x), 2.0)
        b = lax.add(lax.sin(x), 2.0)  # the same again: reused
        c = lax.add(lax.sin(x), 3.0)  # another literal: computed
        return lax.mul(a, b), c, lax.reduce_sum(a, (0,)), lax.reduce_sum(b, (0,))

    closed = check(twice, x)
    assert [e.primitive.name for e in closed.jaxpr.eqns].count("sin") == 3
    # Literals equal as numbers but not as bits are different operands.
    signed = check(lambda x: (lax.mul(x, 0.0), lax.mul(x, -0.0)), x)
    assert interp.program_for(signed).op_names.count("mul") == 2
    assert interp.program_for(closed).op_names.count("sin") == 1
    assert interp.program_for(closed).op_names.count("reduce_sum") == 1


def test_float32_programs_stay_float32():
    x = np.linspace(0, 1, 5, dtype=np.float32)
    closed = stage(lambda x: lax.add(lax.mul(lax.exp(x), 0.1), lax.reduce_sum(x, (0,))), [x])
    prog = interp.program_for(closed)
    assert prog.sizes[lower.CLS_F64] == 0 and prog.images[lower.CLS_F64].size == 0
    (out,) = interp.run(closed, [x])
    assert out.dtype == F32


def test_buffers_are_reused():
    x = np.linspace(0, 1, 1000)

    def f(x):
        for _ in range(20):
            x = lax.sin(lax.add(x, 1.0))
        return x

    closed = stage(f, [x])
    prog = interp.program_for(closed)
    assert prog.sizes[lower.CLS_F64] < 4 * 1000  # an input and a few temporaries, not 40
    check(f, x)


def test_unsupported_programs_fall_back_to_the_reference():
    x = np.linspace(0, 1, 3, dtype=np.float32)
    closed = check(lambda x: lax.add(lax.convert_element_type(x, np.int8), np.int8(1)), x,
                   lowered=False)
    assert isinstance(interp.program_for(closed), interp.Fallback)
    # custom_lin cannot run forward: both executors raise the same error.
    @fg.custom_vjp
    def g(x):
        return lax.sin(x)

    g.defvjp(lambda x: (g(x), x), lambda x, ct: (ct,))
    with pytest.raises(TypeError, match="forward-mode"):
        fg.jvp(fg.jit(g), (np.ones(2),), (np.ones(2),))


@pytest.mark.parametrize("n", [257, 3 * lower.BLOCK + 7], ids=["small", "fused"])
def test_threads_share_one_program(n):
    closed = stage(lambda x: (lax.reduce_sum(lax.mul(lax.tanh(x), x), (0,)), lax.sin(x)),
                   [np.zeros(n)])
    errors = []

    def worker(seed):
        rng = np.random.default_rng(seed)
        try:
            for _ in range(200 if n < 1000 else 40):
                x = rng.standard_normal(n)
                total, s = interp.run(closed, [x])
                np.testing.assert_allclose(total, np.sum(np.tanh(x) * x), rtol=1e-12)
                np.testing.assert_allclose(s, np.sin(x), rtol=1e-14, atol=1e-15)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_arguments_are_checked():
    closed = stage(lambda x: lax.neg(x), [np.zeros(3)])
    with pytest.raises(TypeError, match="shape"):
        interp.run(closed, [np.zeros(4)])
    with pytest.raises(TypeError, match="1 arguments"):
        interp.run(closed, [np.zeros(3), np.zeros(3)])


def test_cache_failure_falls_back_to_memory(monkeypatch):
    from fgrad._src.backend import kernels_common

    def broken(py_func):
        raise OSError("read-only file system")

    monkeypatch.setattr(kernels_common, "_FunctionCache", broken)
    monkeypatch.setattr(kernels_common, "KERNELS", [])

    @kernel_for_test
    def twice(x):
        return 2 * x

    assert twice(21) == 42
    assert kernels_common.cache_dir() is None


def test_a_broken_cache_is_turned_off_and_compilation_retried(monkeypatch):
    from fgrad._src.backend import kernels_common

    disabled = []
    monkeypatch.setattr(kernels_common, "CACHE_ENABLED", True)
    monkeypatch.setattr(kernels_common, "disable_cache", lambda: disabled.append(True))
    calls = []

    def compile_once():
        calls.append(1)
        if len(calls) == 1:
            raise OSError("disk full")
        return "compiled"

    assert interp._with_cache_fallback(compile_once, "test kernel") == "compiled"
    assert disabled and len(calls) == 2


def kernel_for_test(f):
    from fgrad._src.backend.kernels_common import kernel

    return kernel(f)


def test_warmup_and_cache_dir():
    assert interp.warmup(dtypes=(), processes=2) is None  # int/bool kernels via 2 workers
    assert interp.warmup() is None
    thread = interp.warmup(background=True)
    thread.join()
    assert "dispatcher" in interp.COMPILE_SECONDS
    assert interp._table.all()


def test_background_warmup_lets_a_program_compile_first_and_stops_no_finished_wait(
        monkeypatch):
    # A lock is not fair: the warmup thread took it again right after each kernel, so a
    # program needing one kernel could wait for all of them; and a program needing the
    # kernel being compiled waited for the lock after that kernel was ready.
    table = np.zeros_like(interp._table)
    monkeypatch.setattr(interp, "_table", table)
    monkeypatch.setitem(interp._state, "dispatch", object())  # as if compiled already
    compiled, release = [], threading.Event()

    def fake_compile(name, compile_one):
        compiled.append(name)
        if name == "slot1":
            assert release.wait(10)
        return 1

    monkeypatch.setattr(interp, "_load_or_compile", fake_compile)
    warmup = threading.Thread(target=interp._compile_slots, args=([1, 2, 3],),
                              kwargs={"yielding": True})
    warmup.start()
    deadline = time.monotonic() + 10
    while not compiled and time.monotonic() < deadline:  # warmup compiles slot 1, locked
        time.sleep(0.001)
    users = [threading.Thread(target=interp._compile_slots, args=([slot],))
             for slot in (4, 1)]
    for user in users:
        user.start()
    while interp._waiting[0] < 2 and time.monotonic() < deadline:  # both wait for the lock
        time.sleep(0.001)
    release.set()
    for t in (warmup, *users):
        t.join(10)
    assert compiled == ["slot1", "slot4", "slot2", "slot3"]
    assert table[1:5].all()


def test_integer_remainder_at_the_int64_limits():
    # C's fmod: the sign of the dividend; abs() of INT64_MIN wraps, and INT64_MIN % -1
    # traps in hardware, so neither may be computed that way
    low, high = np.iinfo(np.int64).min, np.iinfo(np.int64).max
    x = np.array([1, low, 7, low, -7, 7, low, high, low, 5, -5])
    y = np.array([low, 3, low, -1, 3, -3, low, low, high, 0, 0])
    closed = check(lambda x, y: lax.rem(x, y), x, y)
    with np.errstate(all="ignore"):
        want = np.fmod(x[:9], y[:9])
    np.testing.assert_array_equal(interp.run(closed, [x, y])[0][:9], want)


@pytest.mark.parametrize("name", ["sin", "tanh", "expm1", "exp", "cos", "log1p"])
@pytest.mark.parametrize("n", [3, 5000], ids=["loop", "fused"])
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_transcendentals_keep_signed_zeros(name, n, dtype):
    # sin, tanh, expm1 and log1p of -0.0 are -0.0; the polynomial paths added +0.0
    x = np.full(n, 0.5, dtype)
    x[0], x[1] = -0.0, 0.0
    closed = check(lambda x: getattr(lax, name)(x) * 1.0, x)
    got, want = interp.run(closed, [x])[0][:2], reference(closed, [x])[0][:2]
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_max_and_min_with_a_scalar_first_break_ties_as_numpy(dtype):
    # on a tie of 0.0 and -0.0 NumPy returns the second operand: swapping the operands
    # to reach a vector-first loop would return the other zero
    x = np.array([-0.0, 0.0, 1.0, -1.0], dtype)
    for f in (lambda x: lax.max(0.0, x), lambda x: lax.min(-0.0, x),
              lambda x: lax.max(-0.0, x), lambda x: lax.min(0.0, x)):
        closed = check(f, x)
        got, want = interp.run(closed, [x])[0], reference(closed, [x])[0]
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_sum_over_size_one_axes_starts_from_plus_zero(dtype):
    x = np.array([[-0.0], [2.0], [np.nan]], dtype)
    closed = check(lambda x: lax.reduce_sum(x, (1,)), x)
    got = interp.run(closed, [x])[0]
    assert not np.signbit(got[0]) and got[1] == 2.0 and np.isnan(got[2])
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(np.signbit(got), np.signbit(np.sum(x, axis=1)))


def test_a_program_too_large_to_allocate_raises_memory_error_naming_it():
    # NumPy's own refusal read "Maximum allowed dimension exceeded", naming nothing.
    huge = fg.jit(lambda x: fg.numpy.sum(fg.numpy.broadcast_to(x[0], (2 ** 31, 2 ** 31))))
    with pytest.raises(MemoryError, match="GiB for its intermediate arrays"):
        huge(np.ones(3))
