"""Folding scales and addends into matrix products (``lower._fold_into_dot``).

``c * (x @ y)``, ``b + x @ y`` and ``p - c * (x @ y)`` run as one BLAS call
(``z = alpha * x @ y + beta * z``). Each pattern is checked against the NumPy reference
through NumPy's CBLAS, numba's ``np.dot`` fallback and the small-product loop, along with
the cases that must not fold (a product or addend read twice, a scale by 0) and common
subexpressions that meet a folded buffer.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_interpreter import F32, F64, check, reference

import fgrad as fg
import fgrad.numpy as fnp
from fgrad._src.backend import blas, interp, lower
from fgrad._src.backend.kernels_codes import FLOAT_BASE, FLOAT_CLASSES, K_DOT
from fgrad._src.lax import lax

pytestmark = pytest.mark.skipif(not interp.HAVE_NUMBA, reason="numba is not installed")

TOL = {F32: (1e-4, 1e-4), F64: (1e-11, 1e-11)}


def bias_relu(x, w, b):
    return lax.max(x @ w + lax.broadcast_in_dim(b, (x.shape[0], w.shape[1]), (1,)), 0.0)


def sgd_step(x, w, b):
    g = lax.broadcast_in_dim(b, (x.shape[0], w.shape[1]), (1,))
    return w - 0.01 * lax.dot_general(x, g, (((0,), (0,)), ((), ())))


def sgd_scale_right(x, w, b):
    g = lax.broadcast_in_dim(b, (x.shape[0], w.shape[1]), (1,))
    return w - lax.dot_general(x, g, (((0,), (0,)), ((), ()))) * 0.5


def addend_left(x, w, b):
    return lax.broadcast_in_dim(b, (x.shape[0], w.shape[1]), (1,)) + x @ w


def scalar_minus(x, w, b):
    return 1.5 - x @ w


def twice_scaled(x, w, b):
    return 2.0 * ((x @ w) * -3.0)


def scaled_then_added(x, w, b):
    return (x @ w) * 0.25 + lax.broadcast_in_dim(b, (x.shape[0], w.shape[1]), (1,)) + 1.0


def sum_of_products_scaled(x, w, b):
    # the second product accumulates into the first's buffer; the scale must then apply
    # to both, so it may not fold into the first product's record
    return (x @ w + (x * 2.0) @ w) * 3.0


def sum_of_products_added(x, w, b):
    return lax.broadcast_in_dim(b, (x.shape[0], w.shape[1]), (1,)) - (x @ w + x @ (w * w))


def addend_read_twice(x, w, b):
    bias = lax.broadcast_in_dim(b, (x.shape[0], w.shape[1]), (1,))
    return x @ w + bias, bias * 2.0


def product_read_twice(x, w, b):
    d = x @ w
    return d + 1.0, d


def common_product(x, w, b):
    # The second x @ w is the same equation as the first, which was folded away.
    first = x @ w + 1.0
    second = x @ w
    return first, second


def common_addend(x, w, b):
    shape = (x.shape[0], w.shape[1])
    out = x @ w + lax.broadcast_in_dim(b, shape, (1,))
    again = lax.broadcast_in_dim(b, shape, (1,))  # the same equation as the folded addend
    return out, again


def batched(x, w, b):
    xs = lax.broadcast_in_dim(x, (2,) + x.shape, (1, 2))
    ws = lax.broadcast_in_dim(w, (2,) + w.shape, (1, 2))
    prod = lax.dot_general(xs, ws, (((2,), (1,)), ((0,), (0,))))
    return lax.broadcast_in_dim(b, prod.shape, (2,)) - 2.0 * prod


def broadcast_scalar_operand_and_addend(x, w, b):
    # ``s`` broadcast is lazy until the product needs it in memory; the implicit
    # broadcast of ``+ s`` is the same equation, so it reuses that buffer, whose earlier
    # reads were never counted: the product must not accumulate into its own operand.
    s = fnp.sum(b)
    return fnp.broadcast_to(s, x.shape) @ w + s


def broadcast_scalar_returned(x, w, b):
    s = fnp.sum(b)
    g = fnp.broadcast_to(s, (x.shape[0], w.shape[0]))
    return g @ w, x @ w + s, g


PATTERNS = [bias_relu, sgd_step, sgd_scale_right, addend_left, scalar_minus, twice_scaled,
            scaled_then_added, sum_of_products_scaled, sum_of_products_added,
            addend_read_twice, product_read_twice, common_product, common_addend, batched,
            broadcast_scalar_operand_and_addend, broadcast_scalar_returned]


@pytest.fixture(params=["numpy cblas", "numpy cblas without gemv", "numba np.dot"])
def gemm_path(request, monkeypatch):
    found = blas.addresses()
    if request.param == "numpy cblas without gemv":
        monkeypatch.setattr(blas, "addresses", lambda: found[:2] + (0, 0))
    elif request.param == "numba np.dot":
        monkeypatch.setattr(blas, "addresses", lambda: (0, 0, 0, 0))
    return request.param


def operands(dtype, m, k, n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, k)).astype(dtype)
    w = rng.standard_normal((k, n)).astype(dtype)
    b = rng.standard_normal(n).astype(dtype)
    return x, w, b


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("size", [(3, 4, 5), (40, 60, 30)], ids=["loop", "blas"])
def test_folded_products_match_the_reference(pattern, dtype, size, gemm_path):
    x, w, b = operands(dtype, *size)
    check(pattern, x, w, b, tol=TOL[dtype], scale=True)


def op_names(f, *args):
    from test_interpreter import stage

    return interp.program_for(stage(f, [np.asarray(a) for a in args])).op_names


def test_sgd_step_is_one_copy_and_one_product():
    x, w, b = operands(F64, 40, 60, 30)
    # the bias broadcast (the "gradient" here), the copy of w into the output, the product
    assert op_names(sgd_step, x, w, b) == ["broadcast_in_dim", "sub", "dot_general"]


def test_bias_accumulates_in_the_broadcast_buffer():
    x, w, b = operands(F32, 40, 60, 30)
    assert op_names(bias_relu, x, w, b) == ["broadcast_in_dim", "dot_general", "max"]
    assert op_names(batched, x, w, b)[-2:] == ["broadcast_in_dim", "dot_general"]


def test_reads_elsewhere_block_the_fold():
    x, w, b = operands(F64, 40, 60, 30)
    # the product is returned too: it keeps its own buffer and the add runs on its own
    assert "add" in op_names(product_read_twice, x, w, b)
    # the addend is read twice: it is copied, not overwritten
    names = op_names(addend_read_twice, x, w, b)
    assert names.count("add") == 1 and names.index("add") < names.index("dot_general")


@pytest.mark.parametrize("dtype, big", [(F64, 1e200), (F32, 1e30)], ids=str)
def test_two_scales_do_not_overflow_or_underflow_as_one(dtype, big):
    # as one alpha, big * big is inf (0 * inf is nan) and 1/big * 1/big is 0 (BLAS would
    # skip the product): the second scale stays a multiplication of its own
    x, w, _ = operands(dtype, 40, 60, 30)
    w = np.abs(w)  # so a row of infs times w is inf, not inf - inf
    zeros, infs = np.zeros_like(x), np.full_like(x, np.inf)
    up = check(lambda x, w, b: big * ((x @ w) * big), zeros, w, w[0], tol=TOL[dtype])
    assert (interp.run(up, [zeros, w, w[0]])[0] == 0).all()
    small = 1 / big
    down = check(lambda x, w, b: small * ((x @ w) * small), infs, w, w[0], tol=TOL[dtype])
    assert np.isinf(interp.run(down, [infs, w, w[0]])[0]).all()
    # neither does a sign (BLAS kernels differ on the sign of alpha * 0: see
    # test_signed_zeros_match_the_reference); a lone positive scale folds
    assert op_names(lambda x, w, b: ((x @ w) * 0.5) * -1.0, x, w, w[0]) == ["dot_general",
                                                                              "mul"]
    assert op_names(lambda x, w, b: (x @ w) * 0.5, x, w, w[0]) == ["dot_general"]


def test_scale_by_zero_keeps_nan_from_inf():
    x, w, b = operands(F64, 40, 60, 30)
    x[3, 5] = np.inf
    assert "mul" in op_names(lambda x, w, b: (x @ w) * 0.0, x, w, b)
    closed = check(lambda x, w, b: (x @ w) * 0.0, x, w, b, tol=TOL[F64])
    out = interp.run(closed, [x, w, b])[0]
    assert np.isnan(out[3]).all() and not np.isnan(out[4]).any()


def test_fold_runs_in_place_on_large_inputs_and_outputs(monkeypatch):
    # The SGD step's input parameter and its output are both used where they lie.
    monkeypatch.setattr(lower, "DIRECT_MIN", 1)
    for dtype in (F32, F64):
        x, w, b = operands(dtype, 40, 60, 30, seed=3)
        w_before = w.copy()
        check(sgd_step, x, w, b, tol=TOL[dtype], scale=True)
        np.testing.assert_array_equal(w, w_before)  # the input is not overwritten


# --------------------------------------------------------------------------- random chains

STEPS = ["scale", "add input", "sub input", "add bias", "rsub scalar", "add product",
         "sub product", "keep"]


def chain_program(steps, factors):
    """A program applying ``steps`` to ``x @ w``; "keep" also returns the value so far
    (a second reader, which must block folds into it)."""

    def f(x, w, b, y):
        shape = (x.shape[0], w.shape[1])
        value, kept = x @ w, []
        for step, factor in zip(steps, factors):
            if step == "scale":
                value = value * factor
            elif step == "add input":
                value = y + value
            elif step == "sub input":
                value = y - value
            elif step == "add bias":
                value = value + lax.broadcast_in_dim(b, shape, (1,))
            elif step == "rsub scalar":
                value = factor - value
            elif step == "add product":
                value = value + (x * factor) @ w
            elif step == "sub product":
                value = value - x @ (w * factor)
            else:
                kept.append(value)
        return (value, *kept)

    return f


@settings(max_examples=60)
@given(data=st.data())
def test_random_chains_of_folds_match_the_reference(data):
    dtype = data.draw(st.sampled_from([F32, F64]))
    m, k, n = (data.draw(st.sampled_from([1, 3, 20])) for _ in range(3))
    steps = data.draw(st.lists(st.sampled_from(STEPS), min_size=1, max_size=6))
    factors = data.draw(st.lists(st.sampled_from([2.5, -1.0, 0.0, 0.5]), min_size=len(steps),
                                 max_size=len(steps)))
    x, w, b = operands(dtype, m, k, n, seed=data.draw(st.integers(0, 3)))
    y = np.random.default_rng(5).standard_normal((m, n)).astype(dtype)
    check(chain_program(steps, factors), x, w, b, y, tol=TOL[dtype], scale=True)


# --------------------------------------------------------------------------- end to end


def accumulating_products(prog):
    """How many of ``prog``'s product records add into their output (beta = 1)."""
    dot_slots = {FLOAT_BASE[c] + K_DOT for c in FLOAT_CLASSES}
    code, r, count = prog.code, int(prog.code[1]), 0
    for _ in range(int(code[0])):
        if code[r + 1] in dot_slots and code[r + 13] == 1:
            count += 1
        r += int(code[r])
    return count


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_jitted_training_step_folds_biases_and_updates(dtype):
    rng = np.random.default_rng(0)
    params = {"w0": rng.standard_normal((30, 20)).astype(dtype) / 5,
              "b0": rng.standard_normal(20).astype(dtype),
              "w1": rng.standard_normal((20, 5)).astype(dtype) / 4,
              "b1": rng.standard_normal(5).astype(dtype)}
    x = rng.standard_normal((16, 30)).astype(dtype)
    t = rng.standard_normal((16, 5)).astype(dtype)
    lr = dtype.type(0.1)

    def loss(p, x, t):
        h = fnp.maximum(x @ p["w0"] + p["b0"], 0)
        return fnp.mean((h @ p["w1"] + p["b1"] - t) ** 2)

    def step(p, x, t):
        grads = fg.grad(loss)(p, x, t)
        return {k: p[k] - lr * grads[k] for k in p}

    got = fg.jit(step)(params, x, t)
    fg.config.update("backend", "reference")
    try:
        want = step(params, x, t)
    finally:
        fg.config.update("backend", "numba")
    rtol, atol = TOL[dtype]
    for k in params:
        np.testing.assert_allclose(got[k], want[k], rtol=rtol, atol=atol)
    # Both forward products take their bias, both weight updates their product.
    prog = interp.program_for(fg.make_jaxpr(step)(params, x, t))
    assert accumulating_products(prog) == 4


@pytest.mark.parametrize("direct_min", [1, 1 << 30], ids=["shared", "in the arena"])
def test_constant_addend_is_copied_not_overwritten(direct_min, monkeypatch):
    # A closed-over array is a constant of the program (shared by every arena set when
    # large): the product accumulates into a copy of it, run after run.
    monkeypatch.setattr(lower, "DIRECT_MIN", direct_min)
    x, w, b = operands(F64, 40, 60, 30, seed=4)
    offset = np.random.default_rng(9).standard_normal((40, 30))
    kept = offset.copy()
    closed = check(lambda x, w, b: (x @ w) * 0.5 + offset, x, w, b, tol=TOL[F64], scale=True)
    again = interp.run(closed, [x, w, b])[0]
    np.testing.assert_allclose(again, 0.5 * (x @ w) + kept, rtol=1e-12)
    np.testing.assert_array_equal(offset, kept)


@pytest.mark.parametrize("size", [(3, 4, 5), (40, 60, 30), (300, 40, 1), (1, 40, 300)],
                         ids=["loop", "blas", "matrix @ vector", "vector @ matrix"])
def test_signed_zeros_match_the_reference(size, gemm_path):
    # A zero product scaled by a negative constant is -0.0 in the reference, and so is
    # -0.0 minus a zero product: the folded forms must give the same signs.
    x, w, b = operands(F64, *size)
    x[...] = 0.0
    minus_zero = np.full((size[0], size[2]), -0.0)
    cases = [lambda x, w, y: (x @ w) * -3.0, lambda x, w, y: (x @ w) * 3.0,
             lambda x, w, y: y - 2.0 * (x @ w), lambda x, w, y: y + x @ w]
    for f in cases:
        closed = check(f, x, w, minus_zero)
        got = interp.run(closed, [x, w, minus_zero])[0]
        want = np.asarray(reference(closed, [x, w, minus_zero])[0])
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


def test_lowering_merges_repeated_computations_but_not_different_literals():
    from fgrad._src.core import ShapedArray
    from fgrad._src.interpreters.partial_eval import trace_to_jaxpr

    def n_ops(f):
        closed = trace_to_jaxpr(lambda x: [f(x)], [ShapedArray((50, 50), np.float64)])
        return lower.lower(closed).n_ops

    def twice(a, b):
        return lambda x: (x @ (x * a)) + (x @ (x * b))

    same, different = n_ops(twice(2.0, 2.0)), n_ops(twice(2.0, 3.0))
    assert same < different  # x * 2.0 and its product computed once
    assert n_ops(twice(0.0, -0.0)) == different  # 0.0 and -0.0 are different constants
    x = np.random.default_rng(0).standard_normal((50, 50))
    for a, b in ((2.0, 2.0), (0.0, -0.0), (np.float32(2.0), 2.0)):
        want = x @ (x * a) + x @ (x * b)
        np.testing.assert_allclose(fg.jit(twice(a, b))(x), want, rtol=1e-12, atol=1e-12)
