"""The kink rule of docs/kinks.md (minimum-norm subgradient with respect to the
inputs being differentiated) and the numerically stable functions."""

from __future__ import annotations

import numpy as np
import pytest

import fgrad as fg
import fgrad.numpy as fnp

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])

# --------------------------------------------------------------------------- relu-like forms

RELU_FORMS = {
    "relu": fg.nn.relu,
    "maximum(x, 0)": lambda x: fnp.maximum(x, 0.0),
    "maximum(0, x)": lambda x: fnp.maximum(0.0, x),
    "maximum(x, zeros)": lambda x: fnp.maximum(x, fnp.zeros_like(x)),
    "where(x > 0, x, 0)": lambda x: fnp.where(x > 0, x, 0.0),
    "clip(x, 0, None)": lambda x: fnp.clip(x, 0.0, None),
    "clip(x, 0, 10)": lambda x: fnp.clip(x, 0, 10),
    "-minimum(-x, 0)": lambda x: -fnp.minimum(-x, 0.0),
}
POINTS = np.array([-1.5, -0.0, 0.0, 1e-30, 2.0])
EXPECTED = np.array([0.0, 0.0, 0.0, 1.0, 1.0])

TRANSFORMS = {
    "grad": lambda f, x: fg.grad(lambda x: fnp.sum(f(x)))(x),
    "jit(grad)": lambda f, x: fg.jit(fg.grad(lambda x: fnp.sum(f(x))))(x),
    "vjp": lambda f, x: fg.vjp(f, x)[1](np.ones_like(x))[0],
    "jvp": lambda f, x: fg.jvp(f, (x,), (np.ones_like(x),))[1],
    "jacfwd": lambda f, x: np.diag(fg.jacfwd(f)(x)),
    "jacrev": lambda f, x: np.diag(fg.jacrev(f)(x)),
}


@DTYPES
@pytest.mark.parametrize("transform", list(TRANSFORMS))
@pytest.mark.parametrize("form", list(RELU_FORMS))
def test_relu_forms_have_equal_gradients(form, transform, dtype):
    x = POINTS.astype(dtype)
    g = TRANSFORMS[transform](RELU_FORMS[form], x)
    assert np.asarray(g).dtype == dtype
    np.testing.assert_array_equal(g, EXPECTED.astype(dtype))


@pytest.mark.parametrize("form", list(RELU_FORMS))
def test_relu_forms_have_zero_second_derivatives(form):
    f = RELU_FORMS[form]
    h = fg.hessian(lambda x: fnp.sum(f(x)))(POINTS)
    np.testing.assert_array_equal(h, np.zeros((5, 5)))
    assert float(fg.grad(fg.grad(f))(0.0)) == 0.0


def test_clip_at_both_bounds_and_inside():
    x = np.array([-1.0, -0.5, 0.0, 0.5, 1.0, 2.0])
    g = fg.grad(lambda x: fnp.sum(fnp.clip(x, -0.5, 1.0)))(x)
    np.testing.assert_array_equal(g, [0.0, 0.0, 1.0, 1.0, 0.0, 0.0])
    g = fg.grad(lambda x: fnp.sum(x.clip(-0.5, 1.0)))(x)
    np.testing.assert_array_equal(g, [0.0, 0.0, 1.0, 1.0, 0.0, 0.0])


# --------------------------------------------------------------------------- abs and norm


@DTYPES
def test_abs_at_zero(dtype):
    x = np.array([-2.0, 0.0, 3.0], dtype)
    g = fg.grad(lambda x: fnp.sum(fnp.abs(x)))(x)
    assert g.dtype == dtype
    np.testing.assert_array_equal(g, [-1.0, 0.0, 1.0])
    assert float(fg.grad(abs)(0.0)) == 0.0
    assert float(fg.grad(fg.grad(fnp.abs))(0.0)) == 0.0


NORMS = {
    "vector": ((3,), {}),
    "matrix": ((2, 3), {}),
    "fro": ((2, 2), {"ord": "fro"}),
    "axis": ((2, 3), {"axis": 1}),
    "ord1": ((3,), {"ord": 1}),
    "ord2": ((3,), {"ord": 2}),
    "ordinf": ((3,), {"ord": np.inf}),
    "ord3": ((3,), {"ord": 3}),
}


@DTYPES
@pytest.mark.parametrize("name", list(NORMS))
def test_norm_at_zero(name, dtype):
    shape, kwargs = NORMS[name]
    x = np.zeros(shape, dtype)
    f = lambda x: fnp.sum(fnp.linalg.norm(x, **kwargs))  # noqa: E731
    assert float(f(x)) == 0.0
    for g in (fg.grad(f)(x), fg.jacfwd(f)(x), fg.jit(fg.grad(f))(x)):
        assert np.asarray(g).dtype == dtype
        np.testing.assert_array_equal(g, np.zeros(shape, dtype))
    h = fg.hessian(f)(x)
    assert np.all(np.isfinite(h))


def test_norm_is_differentiable_elsewhere_and_zero_rows_get_zero():
    x = np.array([[3.0, 4.0], [0.0, 0.0]])
    g = fg.grad(lambda x: fnp.sum(fnp.linalg.norm(x, axis=1)))(x)
    np.testing.assert_allclose(g, [[0.6, 0.8], [0.0, 0.0]])


# --------------------------------------------------------------------------- ties


@pytest.mark.parametrize("fn", [fnp.maximum, fnp.minimum])
def test_binary_max_min_ties_share_when_both_are_differentiated(fn):
    gx, gy = fg.grad(lambda x, y: fn(x, y), argnums=(0, 1))(1.0, 1.0)
    assert (float(gx), float(gy)) == (0.5, 0.5)
    # only one differentiated: the minimum-norm element of [0, 1] is 0
    assert float(fg.grad(lambda x, y: fn(x, y))(1.0, 1.0)) == 0.0
    assert float(fg.grad(lambda x: fn(x, x))(1.0)) == 1.0
    gx, gy = fg.grad(lambda x, y: fn(x, y), argnums=(0, 1))(1.0, 2.0)
    assert (float(gx), float(gy)) == ((0.0, 1.0) if fn is fnp.maximum else (1.0, 0.0))


def test_clip_with_a_differentiated_bound_shares_at_the_tie():
    gx, glo = fg.grad(lambda x, lo: fnp.clip(x, lo, 2.0), argnums=(0, 1))(1.0, 1.0)
    assert (float(gx), float(glo)) == (0.5, 0.5)


@DTYPES
def test_reduction_ties_share_equally(dtype):
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], dtype)
    g = fg.grad(lambda x: fnp.sum(fnp.max(x, axis=1)))(x)
    np.testing.assert_allclose(g, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)
    assert g.dtype == dtype
    g = fg.grad(fnp.min)(np.array([1.0, 0.0, 0.0, 0.0], dtype))
    np.testing.assert_allclose(g, [0, 1 / 3, 1 / 3, 1 / 3], rtol=1e-6)
    x = np.array([[1.0, 3.0, 2.0], [2.0, 3.0, 2.0]], dtype)
    g = fg.jacfwd(lambda x: fnp.max(x, axis=0))(x)
    np.testing.assert_allclose(g[1], [[0, 0.5, 0], [0, 0.5, 0]], rtol=1e-6)
    np.testing.assert_allclose(g[0], [[0, 0, 0], [1, 0, 0]], rtol=1e-6)


def test_where_follows_the_predicate_as_written():
    assert float(fg.grad(lambda x: fnp.where(x > 0, x, 0.0))(0.0)) == 0.0
    assert float(fg.grad(lambda x: fnp.where(x >= 0, x, 0.0))(0.0)) == 1.0
    # The branch not taken contributes exactly 0, even when it is not finite there.
    assert float(fg.grad(lambda x: fnp.where(x > 0, fnp.log(x), 0.0))(-1.0)) == 0.0


@pytest.mark.parametrize("fn", [fnp.sign, fnp.floor, fnp.ceil])
def test_piecewise_constant_functions_have_zero_gradient(fn):
    x = np.array([-1.0, 0.0, 0.5, 1.0])
    np.testing.assert_array_equal(fg.grad(lambda x: fnp.sum(fn(x)))(x), np.zeros(4))


def test_safe_power_and_product_at_zero():
    gx, gy = fg.grad(lambda x, y: x ** y, argnums=(0, 1))(0.0, 2.0)
    assert (float(gx), float(gy)) == (0.0, 0.0)
    gx, gy = fg.grad(lambda x, y: x ** y, argnums=(0, 1))(0.0, 0.0)
    assert (float(gx), float(gy)) == (0.0, 0.0)
    np.testing.assert_array_equal(fg.grad(fnp.prod)(np.array([0.0, 2.0, 3.0])), [6.0, 0, 0])
    np.testing.assert_array_equal(fg.grad(fnp.prod)(np.array([0.0, 2.0, 0.0])), [0, 0, 0])


# --------------------------------------------------------------------------- stable functions

BIG = np.array([-1e3, -1.0, 0.0, 1.0, 1e3])

STABLE = {
    "logaddexp(x, -x)": (lambda x: fnp.logaddexp(x, -x), None, None),
    "logaddexp(x, x)": (lambda x: fnp.logaddexp(x, x), BIG + np.log(2.0), np.ones(5)),
    "logaddexp(x, 0)": (lambda x: fnp.logaddexp(x, 0.0), None, None),
    "softplus": (fg.nn.softplus, None, None),
    "log_sigmoid": (fg.nn.log_sigmoid, None, None),
    "sigmoid": (fg.nn.sigmoid, None, None),
    "bce(x, 1)": (lambda x: fg.nn.binary_cross_entropy_with_logits(x, 1.0), None, None),
    "bce(x, 0)": (lambda x: fg.nn.binary_cross_entropy_with_logits(x, fnp.zeros_like(x)),
                  None, None),
    "bce(x, 0.3)": (lambda x: fg.nn.binary_cross_entropy_with_logits(x, 0.3), None, None),
    "logsumexp": (lambda x: fg.nn.logsumexp(x), np.float64(1e3), np.eye(5)[4]),
    "logsumexp(x - 1e3)": (lambda x: fg.nn.logsumexp(x - 1e3), np.float64(0.0), np.eye(5)[4]),
    "log_softmax": (fg.nn.log_softmax, BIG - 1e3, None),
    "softmax": (fg.nn.softmax, np.eye(5)[4], None),
}


def _reference(name, x):
    """float64 closed forms (written independently of fgrad's implementation)."""
    x = np.asarray(x, np.float64)
    softplus = np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))
    sigmoid = np.exp(-np.logaddexp(0.0, -x))
    table = {
        "logaddexp(x, -x)": (np.abs(x) + np.log1p(np.exp(-2 * np.abs(x))), np.tanh(x)),
        "logaddexp(x, 0)": (softplus, sigmoid),
        "softplus": (softplus, sigmoid),
        "log_sigmoid": (-np.logaddexp(0.0, -x), 1 - sigmoid),
        "sigmoid": (sigmoid, sigmoid * (1 - sigmoid)),
        "bce(x, 1)": (softplus - x, sigmoid - 1),
        "bce(x, 0)": (softplus, sigmoid),
        "bce(x, 0.3)": (softplus - 0.3 * x, sigmoid - 0.3),
    }
    return table.get(name)


@DTYPES
@pytest.mark.parametrize("name", list(STABLE))
def test_stable_functions_at_large_inputs(name, dtype):
    f, value, gradient = STABLE[name]
    x = BIG.astype(dtype)
    out = f(x)
    g = fg.grad(lambda x: fnp.sum(f(x)))(x)
    g_jit = fg.jit(fg.grad(lambda x: fnp.sum(f(x))))(x)
    for v in (out, g, g_jit):
        assert np.asarray(v).dtype == dtype
        assert np.all(np.isfinite(v)), (name, v)
    h = fg.hessian(lambda x: fnp.sum(f(x)))(x)
    assert np.all(np.isfinite(h))
    reference = _reference(name, BIG)
    if reference is not None:
        value, gradient = reference
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    if value is not None:
        np.testing.assert_allclose(out, value, rtol=rtol, atol=rtol)
    if gradient is not None:
        np.testing.assert_allclose(g, gradient, rtol=rtol, atol=rtol)
        np.testing.assert_allclose(g_jit, gradient, rtol=rtol, atol=rtol)


@DTYPES
def test_log_softmax_gradient_at_large_inputs(dtype):
    x = BIG.astype(dtype)
    jac = fg.jacrev(fg.nn.log_softmax)(x)
    p = np.eye(5)[4]
    np.testing.assert_allclose(jac, np.eye(5) - p[None, :], atol=1e-6)


@DTYPES
def test_logsumexp_of_all_minus_infinity(dtype):
    x = np.full(3, -np.inf, dtype)
    out = fg.nn.logsumexp(x)
    assert out == -np.inf and np.asarray(out).dtype == dtype
    for g in (fg.grad(fg.nn.logsumexp)(x), fg.jit(fg.grad(fg.nn.logsumexp))(x),
              fg.jacfwd(fg.nn.logsumexp)(x)):
        assert np.asarray(g).dtype == dtype
        np.testing.assert_array_equal(g, np.zeros(3))
    rows = np.array([[-np.inf, -np.inf], [0.0, np.log(3.0)]], dtype)
    np.testing.assert_allclose(fg.nn.logsumexp(rows, axis=1), [-np.inf, np.log(4.0)], rtol=1e-6)
    g = fg.grad(lambda x: fnp.sum(fg.nn.logsumexp(x, axis=1, keepdims=True)))(rows)
    np.testing.assert_allclose(g, [[0.0, 0.0], [0.25, 0.75]], rtol=1e-6)
    g = fg.grad(fg.nn.logsumexp)(np.array([-np.inf, 0.0], dtype))
    np.testing.assert_array_equal(g, [0.0, 1.0])


def test_logaddexp_of_minus_infinities_is_finite():
    assert float(fnp.logaddexp(-np.inf, -np.inf)) == -np.inf
    gx, gy = fg.grad(fnp.logaddexp, argnums=(0, 1))(-np.inf, -np.inf)
    assert np.isfinite(gx) and np.isfinite(gy)
    gx, gy = fg.grad(fnp.logaddexp, argnums=(0, 1))(-np.inf, 0.0)
    assert (float(gx), float(gy)) == (0.0, 1.0)


def test_double_where_keeps_the_unselected_branch_finite():
    naive = fg.grad(lambda x: fnp.where(x > 0, fnp.sqrt(x), 0.0))
    safe = fg.grad(lambda x: fnp.where(x > 0, fnp.sqrt(fnp.where(x > 0, x, 1.0)), 0.0))
    with np.errstate(invalid="ignore"):
        assert np.isnan(naive(-1.0))  # 0 * (derivative of sqrt at -1), as in JAX and PyTorch
    assert float(safe(-1.0)) == 0.0
    assert float(safe(4.0)) == 0.25


@pytest.mark.parametrize("x", [[2.0, 0.0, 3.0], [2.0, 0.0, 0.0, 5.0], [0.0, 0.0, 0.0],
                               [1.5, -2.0, 3.0]], ids=["one zero", "two zeros",
                                                       "all zeros", "no zero"])
def test_prod_is_exact_at_zeros_to_second_order(x):
    # the Hessian entry (i, j) is the product of the others than i and j
    x = np.array(x)
    n = len(x)
    want = np.array([[0.0 if i == j else np.prod(np.delete(x, [i, j])) for j in range(n)]
                     for i in range(n)])
    np.testing.assert_allclose(fg.hessian(fnp.prod)(x), want, rtol=1e-12)
    np.testing.assert_allclose(fg.jit(fg.hessian(fnp.prod))(x), want, rtol=1e-12)
    fg.test_util.check_grads(fnp.prod, (x,), order=2, modes=("fwd", "rev"))


def test_prod_over_axes_is_exact_at_zeros():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 2))
    x[1, 2, 0] = 0.0
    x[0, :, 1] = 0.0
    for axis in [1, (0, 2), None]:
        f = lambda a: fnp.sum(fnp.sin(fnp.prod(a, axis=axis)))  # noqa: B023, E731
        fg.test_util.check_grads(f, (x,), order=2, modes=("rev",))


def test_logaddexp_keeps_nan_and_handles_equal_infinities():
    inf, nan = np.inf, np.nan
    got = fnp.logaddexp(np.array([nan, 1.0, nan, inf, -inf]), np.array([1.0, nan, inf, inf, -inf]))
    np.testing.assert_array_equal(got[:3], [nan, nan, nan])
    assert got[3] == inf and got[4] == -inf
    np.testing.assert_array_equal(fg.jit(fnp.logaddexp)(np.array([nan]), np.array([2.0])), [nan])
    assert [float(g) for g in fg.grad(fnp.logaddexp, argnums=(0, 1))(2.0, 2.0)] == [0.5, 0.5]
