"""The transforms composed: a matrix of ~20 functions (closures, pytrees, Python
control flow, stop_gradient, custom_vjp, jit inside) x {grad, jvp, vjp,
grad-of-grad, jacfwd vs jacrev, hessian}, each checked against finite
differences; then jit compositions, argnums, has_aux, value_and_grad and the
seeds' arithmetic.
"""

from __future__ import annotations

import dataclasses
from collections import namedtuple
from typing import NamedTuple

import numpy as np
import pytest

import fgrad as fg
import fgrad.numpy as fnp
from fgrad._src.core import Tracer
from fgrad.extend import eval_jaxpr
from fgrad.tree_util import register_dataclass, tree_flatten, tree_leaves, tree_unflatten

# --------------------------------------------------------------------------- pytree helpers


def ravel(tree) -> np.ndarray:
    """The float leaves of ``tree`` as one float64 vector."""
    return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in tree_leaves(tree)])


def unravel_like(tree, flat):
    leaves, treedef = tree_flatten(tree)
    out, start = [], 0
    for leaf in leaves:
        size = int(np.size(leaf))
        piece = np.asarray(flat[start:start + size]).reshape(np.shape(leaf))
        out.append(float(piece) if type(leaf) is float else piece.astype(np.asarray(leaf).dtype))
        start += size
    return tree_unflatten(treedef, out)


def numerical_jacobian(fun, tree, eps=1e-6):
    """d ravel(fun(tree)) / d ravel(tree) by central differences (float64)."""
    x = ravel(tree)
    columns = []
    for i in range(x.size):
        step = np.zeros_like(x)
        step[i] = eps
        plus, minus = fun(unravel_like(tree, x + step)), fun(unravel_like(tree, x - step))
        columns.append((ravel(plus) - ravel(minus)) / (2 * eps))
    return np.stack(columns, axis=-1)


def dense_hessian(h, tree) -> np.ndarray:
    """Assemble ``hessian``'s pytree-of-pytrees output into an (n, n) matrix."""
    sizes = [int(np.size(x)) for x in tree_leaves(tree)]
    blocks = iter(tree_leaves(h))
    rows = [np.hstack([np.reshape(next(blocks), (m, n)) for n in sizes]) for m in sizes]
    return np.vstack(rows)


def assert_tree_close(actual, expected_flat, like, rtol=1e-6, atol=1e-6):
    """``actual`` has ``like``'s structure and dtypes, and ravels to ``expected_flat``."""
    assert tree_flatten(actual)[1] == tree_flatten(like)[1]
    for a, x in zip(tree_leaves(actual), tree_leaves(like)):
        assert np.asarray(a).dtype == np.asarray(x).dtype
        assert np.shape(a) == np.shape(x)
    np.testing.assert_allclose(ravel(actual), expected_flat, rtol=rtol, atol=atol)


# --------------------------------------------------------------------------- the functions

Pair = namedtuple("Pair", "w b")


@register_dataclass
@dataclasses.dataclass
class Linear:
    weight: np.ndarray
    bias: np.ndarray


class Point(NamedTuple):
    x: float
    y: float


@fg.custom_vjp
def softclip(x):
    """tanh with a hand-written VJP (correct, so it matches finite differences)."""
    return fnp.tanh(x)


def _softclip_fwd(x):
    y = fnp.tanh(x)
    return y, y


def _softclip_bwd(y, g):
    return (g * (1.0 - y * y),)


softclip.defvjp(_softclip_fwd, _softclip_bwd)

W = np.array([[0.5, -1.0, 0.3], [0.2, 0.4, -0.7]])


def mlp(params):
    h = fnp.tanh(params["w1"] @ params["x"] + params["b1"])
    logits = params["w2"] @ h
    return fg.nn.logsumexp(logits) - logits[0]


def branchy(x):
    if fnp.sum(x) > 0:  # Python control flow on a value
        return fnp.sum(x ** 3)
    return fnp.sum(fnp.sin(x))


def loopy(x):
    while fnp.sum(x * x) < 10.0:
        x = x * 1.5 + 0.1
    return fnp.sum(fnp.log1p(x * x))


def accumulate(xs):
    total = 0.0
    for i, x in enumerate(xs):
        total = total + (i + 1) * fnp.sum(fnp.cos(x) * x)
    return total


@fg.jit
def _jitted_inner(x):
    return fnp.sum(fnp.exp(0.5 * x) * x)


FUNCTIONS = {
    "poly-scalar": (lambda x: x ** 3 - 2.0 * x + 1.0, (1.3,)),
    "closure-array": (lambda x: fnp.sum(fnp.tanh(W @ x)), (np.array([0.1, -0.4, 0.8]),)),
    "dict": (lambda p: fnp.sum(fnp.sin(p["w"] @ p["x"] + p["b"])),
             ({"w": W, "x": np.array([0.3, -0.2, 0.5]), "b": np.array([0.1, -0.1])},)),
    "list": (lambda xs: fnp.sum(xs[0] * xs[1]) + xs[2] ** 2,
             ([np.array([1.0, 2.0]), np.array([0.5, -0.3]), 0.7],)),
    "nested-tuple": (lambda t: fnp.sum(t[0] * fnp.exp(t[1][0])) * t[1][1],
                     ((np.array([0.2, 0.4]), (np.array([0.1, -0.2]), np.array(1.5))),)),
    "namedtuple": (lambda p: fnp.sum(fnp.tanh(p.w * p.b)), (Pair(np.array([1.0, -2.0]), 0.3),)),
    "typed-namedtuple": (lambda p: p.x ** 2 * fnp.sin(p.y), (Point(0.7, 1.1),)),
    "dataclass": (lambda m: fnp.sum(fnp.tanh(m.weight @ np.array([1.0, -1.0, 0.5]) + m.bias)),
                  (Linear(W.copy(), np.array([0.1, 0.2])),)),
    "dict-with-none": (lambda d: fnp.sum(d["a"] ** 2) if d["b"] is None else 0.0,
                       ({"a": np.array([0.5, -1.5]), "b": None},)),
    "multiple-args": (lambda x, y, z: fnp.sum(x * y) * z, (np.array([1.0, 2.0]),
                                                          np.array([3.0, -1.0]), 0.5)),
    "if-positive": (branchy, (np.array([0.5, 1.0, -0.2]),)),
    "if-negative": (branchy, (np.array([-0.5, -1.0, 0.2]),)),
    "while": (loopy, (np.array([0.5, 0.8]),)),
    "for-accumulate": (accumulate, ([np.array([0.1, 0.2]), np.array([0.3]), np.array(0.4)],)),
    # Finite differences cannot see stop_gradient: the reference freezes s at the point.
    "stop_gradient": (lambda x: fnp.sum(x ** 2 * fg.stop_gradient(x) + fnp.sin(x)),
                      (np.array([0.3, -0.6]),),
                      lambda s: (lambda x: fnp.sum(x ** 2 * s + fnp.sin(x)))),
    "custom_vjp": (lambda x: fnp.sum(softclip(x) * x), (np.array([0.3, -0.6, 1.2]),)),
    "jit-inside": (lambda x: _jitted_inner(x) * 2.0, (np.array([0.3, -0.6]),)),
    "mlp": (mlp, ({"w1": W, "b1": np.array([0.1, -0.2]), "w2": np.array([[1.0, 0.5],
                   [-0.3, 0.8], [0.2, 0.1]]), "x": np.array([0.4, -0.1, 0.9])},)),
    "indexing": (lambda x: fnp.sum(x[np.array([0, 2, 2])] ** 2) + x[1:, 0].prod(),
                 (np.array([[0.5, 1.0], [1.5, -2.0], [0.3, 0.7]]),)),
    "reshape-concat": (lambda x, y: fnp.sum(fnp.concatenate([x.reshape(-1), y]) ** 3),
                       (np.array([[0.1, 0.2], [0.3, 0.4]]), np.array([0.5, -0.6]))),
    "max-where": (lambda x: fnp.max(x) + fnp.sum(fnp.where(x > 0, x, 0.1 * x)),
                  (np.array([0.5, -1.0, 2.0]),)),
    "nn-losses": (lambda z: fnp.sum(fg.nn.binary_cross_entropy_with_logits(
        z, np.array([1.0, 0.0, 1.0])) + fg.nn.softplus(z)), (np.array([0.3, -2.0, 4.0]),)),
}
FORWARD_MODE_UNSUPPORTED = {"custom_vjp"}  # custom_vjp defines reverse mode only (as JAX)
IDS = list(FUNCTIONS)


def _case(name):
    """``(F, args, reference)``: F takes the argument tuple; finite differences of
    ``reference`` give the derivatives F must have."""
    f, args, *frozen = FUNCTIONS[name]
    reference = frozen[0](*args) if frozen else f
    return (lambda a: f(*a)), tuple(args), (lambda a: reference(*a))


def _numerical_grad(F, args):
    return numerical_jacobian(F, args)[0]


@pytest.mark.parametrize("name", IDS)
def test_grad(name):
    F, args, ref = _case(name)
    assert_tree_close(fg.grad(F)(args), _numerical_grad(ref, args), args)


@pytest.mark.parametrize("name", IDS)
def test_value_and_grad(name):
    F, args, ref = _case(name)
    value, g = fg.value_and_grad(F)(args)
    np.testing.assert_allclose(value, ref(args), rtol=1e-12)
    assert_tree_close(g, _numerical_grad(ref, args), args)


@pytest.mark.parametrize("name", IDS)
def test_jvp(name):
    F, args, ref = _case(name)
    rng = np.random.default_rng(0)
    tangent = unravel_like(args, rng.standard_normal(ravel(args).size))
    if name in FORWARD_MODE_UNSUPPORTED:
        with pytest.raises(TypeError, match="forward-mode"):
            fg.jvp(F, (args,), (tangent,))
        return
    out, t_out = fg.jvp(F, (args,), (tangent,))
    np.testing.assert_allclose(out, F(args), rtol=1e-12)
    np.testing.assert_allclose(t_out, _numerical_grad(ref, args) @ ravel(tangent), rtol=1e-6,
                               atol=1e-6)


@pytest.mark.parametrize("name", IDS)
def test_vjp(name):
    F, args, ref = _case(name)
    out, vjp_fn = fg.vjp(F, args)
    np.testing.assert_allclose(out, F(args), rtol=1e-12)
    (ct,) = vjp_fn(np.asarray(2.0, np.asarray(out).dtype))
    assert_tree_close(ct, 2.0 * _numerical_grad(ref, args), args)


@pytest.mark.parametrize("name", IDS)
def test_grad_of_grad(name):
    F, args, ref = _case(name)
    rng = np.random.default_rng(1)
    v = rng.standard_normal(ravel(args).size)

    def grad_dot_v(a):
        return fnp.sum(fnp.stack([fnp.sum(g) for g in _scaled_leaves(fg.grad(F)(a), v)]))

    hvp = fg.grad(grad_dot_v)(args)
    expected = numerical_jacobian(fg.grad(ref), args) @ v
    assert_tree_close(hvp, expected, args, rtol=1e-5, atol=1e-6)


def _scaled_leaves(tree, v):
    """Leaves of ``tree`` multiplied elementwise by the matching pieces of ``v``."""
    start, out = 0, []
    for leaf in tree_leaves(tree):
        size = int(np.size(leaf))
        out.append(leaf * v[start:start + size].reshape(np.shape(leaf)))
        start += size
    return out


@pytest.mark.parametrize("name", IDS)
def test_jacfwd_vs_jacrev(name):
    F, args, ref = _case(name)
    rev = fg.jacrev(F)(args)
    assert_tree_close(rev, _numerical_grad(ref, args), args)
    if name in FORWARD_MODE_UNSUPPORTED:
        with pytest.raises(TypeError, match="forward-mode"):
            fg.jacfwd(F)(args)
        return
    fwd = fg.jacfwd(F)(args)
    assert_tree_close(fwd, ravel(rev), args, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", IDS)
def test_hessian(name):
    F, args, ref = _case(name)
    h = dense_hessian(fg.hessian(F)(args), args)
    expected = numerical_jacobian(fg.grad(ref), args)
    np.testing.assert_allclose(h, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h, h.T, rtol=1e-10, atol=1e-12)
    if name not in FORWARD_MODE_UNSUPPORTED:
        np.testing.assert_allclose(dense_hessian(fg.jacrev(fg.jacfwd(F))(args), args), h,
                                   rtol=1e-10, atol=1e-12)


def test_the_matrix_is_large_enough():
    assert len(FUNCTIONS) >= 20


# --------------------------------------------------------------------------- float32


def test_float32_gradients_stay_float32_under_every_transform():
    x = np.array([0.3, -0.7, 1.1], np.float32)
    f = lambda x: fnp.sum(fnp.tanh(x) * x ** 2) * 0.5  # noqa: E731
    results = {
        "grad": fg.grad(f)(x),
        "grad-grad": fg.grad(lambda x: fnp.sum(fg.grad(f)(x)))(x),
        "vjp": fg.vjp(f, x)[1](np.float32(1.0))[0],
        "jvp": fg.jvp(f, (x,), (np.ones(3, np.float32),))[1],
        "jacfwd": fg.jacfwd(f)(x),
        "jacrev": fg.jacrev(f)(x),
        "hessian": fg.hessian(f)(x),
        "jit-grad": fg.jit(fg.grad(f))(x),
        "grad-jit": fg.grad(fg.jit(f))(x),
    }
    for name, value in results.items():
        assert np.asarray(value).dtype == np.float32, name
    g64 = fg.grad(f)(x.astype(np.float64))
    np.testing.assert_allclose(results["grad"], g64, rtol=1e-5)
    np.testing.assert_allclose(results["jit-grad"], g64, rtol=1e-5)


def test_mixed_precision_gradients_follow_each_input():
    x32, y64 = np.array([1.0, 2.0], np.float32), np.array([0.5, 0.25])
    gx, gy = fg.grad(lambda x, y: fnp.sum(x * y), argnums=(0, 1))(x32, y64)
    assert gx.dtype == np.float32 and gy.dtype == np.float64
    np.testing.assert_allclose(gx, y64)
    np.testing.assert_allclose(gy, x32)


# --------------------------------------------------------------------------- jit compositions


def _f(x):
    return fnp.sum(fnp.sin(x) * x ** 2)


def _df(x):
    return np.cos(x) * x ** 2 + 2 * x * np.sin(x)


def _d2f(x):
    return -np.sin(x) * x ** 2 + 4 * x * np.cos(x) + 2 * np.sin(x)


X = np.array([0.3, -1.2, 2.0])


@pytest.mark.parametrize("compose", [
    lambda f: fg.jit(fg.grad(f)),
    lambda f: fg.grad(fg.jit(f)),
    lambda f: fg.jit(fg.jit(fg.grad(f))),
    lambda f: fg.grad(fg.jit(fg.jit(f))),
    lambda f: fg.jit(fg.grad(fg.jit(f))),
    lambda f: (lambda x: fg.vjp(fg.jit(f), x)[1](1.0)[0]),
    lambda f: fg.jit(lambda x: fg.vjp(f, x)[1](1.0)[0]),
    lambda f: fg.jacrev(fg.jit(f)),
    lambda f: fg.jit(fg.jacfwd(f)),
], ids=["jit(grad)", "grad(jit)", "jit(jit(grad))", "grad(jit(jit))", "jit(grad(jit))",
        "vjp(jit)", "jit(vjp)", "jacrev(jit)", "jit(jacfwd)"])
def test_jit_compositions_first_order(compose):
    g = compose(_f)
    np.testing.assert_allclose(g(X), _df(X), rtol=1e-12)
    np.testing.assert_allclose(g(X + 1.0), _df(X + 1.0), rtol=1e-12)  # cached: new values


@pytest.mark.parametrize("compose", [
    lambda f: fg.jit(fg.hessian(f)),
    lambda f: fg.hessian(fg.jit(f)),
    lambda f: fg.jacfwd(fg.jit(fg.grad(f))),
    lambda f: fg.jit(fg.jacrev(fg.jit(fg.grad(f)))),
], ids=["jit(hessian)", "hessian(jit)", "jacfwd(jit(grad))", "jit(jacrev(jit(grad)))"])
def test_jit_compositions_second_order(compose):
    np.testing.assert_allclose(compose(_f)(X), np.diag(_d2f(X)), rtol=1e-12, atol=1e-14)


def test_jit_of_jit_and_jvp_of_jit():
    np.testing.assert_allclose(fg.jit(fg.jit(_f))(X), np.sum(np.sin(X) * X ** 2), rtol=1e-12)
    out, t = fg.jvp(fg.jit(_f), (X,), (np.ones(3),))
    np.testing.assert_allclose(t, np.sum(_df(X)), rtol=1e-12)
    out, t = fg.jit(lambda x, v: fg.jvp(_f, (x,), (v,)))(X, np.ones(3))
    np.testing.assert_allclose(t, np.sum(_df(X)), rtol=1e-12)


def test_grad_of_grad_of_grad_and_jvp_of_grad():
    f = lambda x: x ** 4 * fnp.sin(x)  # noqa: E731
    x = 0.7
    d3 = (24 * x * np.sin(x) + 36 * x ** 2 * np.cos(x) - 12 * x ** 3 * np.sin(x)
          - x ** 4 * np.cos(x))
    np.testing.assert_allclose(fg.grad(fg.grad(fg.grad(f)))(x), d3, rtol=1e-12)
    d2 = 12 * x ** 2 * np.sin(x) + 8 * x ** 3 * np.cos(x) - x ** 4 * np.sin(x)
    np.testing.assert_allclose(fg.jvp(fg.grad(f), (x,), (1.0,))[1], d2, rtol=1e-12)
    np.testing.assert_allclose(fg.jit(fg.grad(fg.grad(fg.grad(f))))(x), d3, rtol=1e-12)


# --------------------------------------------------------------------------- argnums, has_aux


def _g(x, y, z):
    return fnp.sum(x * y ** 2) + z ** 3


ARGS = (np.array([1.0, 2.0]), np.array([3.0, -1.0]), 0.5)


@pytest.mark.parametrize("argnums, expected", [
    (0, ARGS[1] ** 2),
    (1, 2 * ARGS[0] * ARGS[1]),
    (2, 3 * 0.5 ** 2),
    (-1, 3 * 0.5 ** 2),
    ((0,), (ARGS[1] ** 2,)),
    ((2, 0), (3 * 0.5 ** 2, ARGS[1] ** 2)),
    ((0, 1, 2), (ARGS[1] ** 2, 2 * ARGS[0] * ARGS[1], 3 * 0.5 ** 2)),
])
def test_argnums(argnums, expected):
    for transform in (fg.grad, fg.jacrev, fg.jacfwd):
        result = transform(_g, argnums=argnums)(*ARGS)
        assert isinstance(result, tuple) == isinstance(argnums, tuple), transform
        for r, e in zip(*((result, expected) if isinstance(argnums, tuple)
                          else ((result,), (expected,)))):
            np.testing.assert_allclose(r, e, rtol=1e-12)


def test_hessian_argnums_tuple_is_nested():
    h = fg.hessian(lambda x, y: x ** 2 * y ** 3, argnums=(0, 1))(2.0, 3.0)
    np.testing.assert_allclose(np.array(h, dtype=float),
                               [[2 * 27, 6 * 2 * 9], [6 * 2 * 9, 4 * 6 * 3]])


def test_has_aux_grad_value_and_grad_vjp():
    def f(x):
        y = fnp.sin(x)
        return fnp.sum(y), {"y": y, "n": 3}

    x = np.array([0.1, 0.2])
    g, aux = fg.grad(f, has_aux=True)(x)
    np.testing.assert_allclose(g, np.cos(x))
    np.testing.assert_allclose(aux["y"], np.sin(x))
    assert aux["n"] == 3
    (value, aux2), g2 = fg.value_and_grad(f, has_aux=True)(x)
    np.testing.assert_allclose(value, np.sum(np.sin(x)))
    np.testing.assert_allclose(g2, g)
    assert not isinstance(aux2["y"], Tracer)
    out, vjp_fn, aux3 = fg.vjp(f, x, has_aux=True)
    np.testing.assert_allclose(vjp_fn(1.0)[0], np.cos(x))
    np.testing.assert_allclose(aux3["y"], np.sin(x))
    assert type(np.asarray(aux3["y"])) is np.ndarray


def test_has_aux_under_nested_grad_returns_plain_values():
    def inner(x):
        return x ** 3, x ** 2

    def outer(x):
        g, aux = fg.grad(inner, has_aux=True)(x)
        return g + aux

    np.testing.assert_allclose(fg.grad(outer)(2.0), 6 * 2.0 + 2 * 2.0)
    g, aux = fg.jit(fg.grad(inner, has_aux=True))(2.0)
    np.testing.assert_allclose((g, aux), (12.0, 4.0))


def test_value_and_grad_argnums_and_pytree_output_of_vjp():
    value, (gx, gz) = fg.value_and_grad(_g, argnums=(0, 2))(*ARGS)
    np.testing.assert_allclose(value, _g(*ARGS))
    np.testing.assert_allclose(gx, ARGS[1] ** 2)
    np.testing.assert_allclose(gz, 0.75)
    out, vjp_fn = fg.vjp(lambda x: {"a": x * 2.0, "b": (fnp.sum(x),)}, np.array([1.0, 2.0]))
    (ct,) = vjp_fn({"a": np.array([1.0, 10.0]), "b": (np.array(100.0),)})
    np.testing.assert_allclose(ct, [102.0, 120.0])


def test_integer_arguments_not_differentiated_are_constants():
    f = lambda x, n, mask: fnp.sum(fnp.where(mask, x ** n, 0.0))  # noqa: E731
    x, n, mask = np.array([1.0, 2.0, 3.0]), np.array([1, 2, 3]), np.array([True, False, True])
    np.testing.assert_allclose(fg.grad(f)(x, n, mask), [1.0, 0.0, 27.0])
    np.testing.assert_allclose(fg.jacrev(f)(x, n, mask), [1.0, 0.0, 27.0])
    np.testing.assert_allclose(fg.jacfwd(f)(x, n, mask), [1.0, 0.0, 27.0])
    out, t = fg.jvp(f, (x, n, mask), (np.ones(3), n, mask))  # integer tangents are ignored
    np.testing.assert_allclose(t, 28.0)
    _, vjp_fn = fg.vjp(f, x, n, mask)
    gx, gn, gmask = vjp_fn(1.0)
    np.testing.assert_allclose(gx, [1.0, 0.0, 27.0])
    assert not np.any(gn) and not np.any(gmask)


def test_python_scalars_and_int_steps():
    assert float(fg.grad(lambda x: x * 3)(2.0)) == 3.0
    assert float(fg.grad(lambda x, k: x ** k)(2.0, 3)) == 12.0
    np.testing.assert_allclose(fg.grad(lambda x: fnp.sum(x[::2]))(np.ones(5)), [1, 0, 1, 0, 1])


# --------------------------------------------------------------------------- stop_gradient


def test_stop_gradient_holds_under_nested_grad():
    f = lambda x: x ** 2 * fg.stop_gradient(x ** 2)  # noqa: E731
    # d/dx = 2x * s where s = x**2 is constant; d2/dx2 = 2 s.
    assert float(fg.grad(f)(3.0)) == 2 * 3.0 * 9.0
    assert float(fg.grad(fg.grad(f))(3.0)) == 2 * 9.0
    assert float(fg.grad(fg.grad(fg.grad(f)))(3.0)) == 0.0
    assert float(fg.jit(fg.grad(fg.grad(f)))(3.0)) == 2 * 9.0
    assert float(fg.jvp(fg.grad(f), (3.0,), (1.0,))[1]) == 2 * 9.0
    np.testing.assert_allclose(fg.hessian(lambda x: fnp.sum(f(x)))(np.array([3.0])), [[18.0]])


def test_stop_gradient_inside_an_inner_grad_also_stops_the_outer_one():
    # As in JAX: stop_gradient(y) is a constant for every level of differentiation,
    # so d/dx [2 x sg(x)] = 2 sg(x) and d/dy [2 a sg(y)] = 0.
    def inner_grad(x, y):
        return fg.grad(lambda a: a * fg.stop_gradient(y) * a)(x)

    assert float(inner_grad(2.0, 5.0)) == 20.0
    assert float(fg.grad(lambda x: inner_grad(x, x))(2.0)) == 4.0
    assert float(fg.grad(lambda y: inner_grad(2.0, y))(5.0)) == 0.0
    assert float(fg.grad(lambda y: inner_grad(2.0, y) + y)(5.0)) == 1.0


def test_stop_gradient_on_pytrees_and_integers():
    tree = {"a": np.array([1.0, 2.0]), "n": np.array([1, 2])}
    out = fg.stop_gradient(tree)
    np.testing.assert_array_equal(out["a"], tree["a"])
    assert out["n"].dtype == np.int64
    g = fg.grad(lambda t: fnp.sum(fg.stop_gradient(t)["a"] * t["a"]))({"a": np.array([3.0])})
    np.testing.assert_allclose(g["a"], [3.0])


# --------------------------------------------------------------------------- custom_vjp


@fg.custom_vjp
def clip_gradient(x, lo, hi):
    return x


def _clip_fwd(x, lo, hi):
    return x, (lo, hi)


def _clip_bwd(res, g):
    lo, hi = res
    return (fnp.clip(g, lo, hi), None, None)


clip_gradient.defvjp(_clip_fwd, _clip_bwd)


@fg.custom_vjp
def cube(x):
    return x ** 3


cube.defvjp(lambda x: (x ** 3, x), lambda x, g: (3.0 * g * x ** 2,))


def test_custom_vjp_rule_is_used():
    f = lambda x: 10.0 * clip_gradient(x, -1.0, 1.0)  # noqa: E731
    assert float(fg.grad(f)(2.0)) == 1.0
    assert float(fg.jit(fg.grad(f))(2.0)) == 1.0
    assert float(fg.grad(fg.jit(f))(2.0)) == 1.0
    assert float(fg.jit(f)(2.0)) == 20.0
    np.testing.assert_allclose(fg.jacrev(lambda x: 3.0 * clip_gradient(x, -2.0, 2.0))(
        np.array([1.0, 2.0])), np.diag([2.0, 2.0]))


def test_custom_vjp_higher_order_differentiates_bwd():
    x = 1.5
    assert float(fg.grad(cube)(x)) == pytest.approx(3 * x ** 2)
    assert float(fg.grad(fg.grad(cube))(x)) == pytest.approx(6 * x)
    assert float(fg.grad(fg.grad(fg.grad(cube)))(x)) == pytest.approx(6.0)
    assert float(fg.jit(fg.grad(fg.grad(cube)))(x)) == pytest.approx(6 * x)
    xs = np.array([1.0, 2.0])
    np.testing.assert_allclose(fg.jacfwd(fg.jacrev(lambda v: fnp.sum(cube(v))))(xs),
                               np.diag(6 * xs))
    third = fg.jacfwd(fg.jacrev(cube))(xs)  # d2 cube_i / dx_j dx_k = 6 x_i [i == j == k]
    np.testing.assert_allclose(third, np.einsum("i,ij,ik->ijk", 6 * xs, np.eye(2), np.eye(2)))
    np.testing.assert_allclose(fg.hessian(lambda v: fnp.sum(cube(v)))(xs), np.diag(6 * xs))
    np.testing.assert_allclose(fg.jit(fg.hessian(lambda v: fnp.sum(cube(v))))(xs),
                               np.diag(6 * xs))


def test_custom_vjp_with_pytree_arguments_and_outputs():
    @fg.custom_vjp
    def f(p):
        return {"s": p["a"] * p["b"], "d": p["a"] - p["b"]}

    def fwd(p):
        return f(p), (p["a"], p["b"])

    def bwd(res, g):
        a, b = res
        return ({"a": g["s"] * b + g["d"], "b": g["s"] * a - g["d"]},)

    f.defvjp(fwd, bwd)
    p = {"a": np.array([1.0, 2.0]), "b": np.array([3.0, 4.0])}
    g = fg.grad(lambda p: fnp.sum(f(p)["s"]) + 2.0 * fnp.sum(f(p)["d"]))(p)
    np.testing.assert_allclose(g["a"], p["b"] + 2.0)
    np.testing.assert_allclose(g["b"], p["a"] - 2.0)


def test_custom_vjp_without_transform_calls_the_function():
    assert float(cube(2.0)) == 8.0
    np.testing.assert_allclose(fg.jit(cube)(np.array([1.0, 2.0])), [1.0, 8.0])


# --------------------------------------------------------------------------- make_jaxpr of grad


def test_make_jaxpr_of_grad_prints_the_gradient_program():
    text = str(fg.make_jaxpr(fg.grad(lambda x: fnp.sum(fnp.sin(x))))(np.ones(3)))
    assert text.startswith("{ lambda ")
    assert "cos" in text and "sin" not in text.split("in (")[-1]
    closed = fg.make_jaxpr(fg.grad(lambda x: fnp.sum(fnp.sin(x))))(np.ones(3))
    np.testing.assert_allclose(
        eval_jaxpr(closed.jaxpr, closed.consts, [np.zeros(3)])[0], np.ones(3))


# --------------------------------------------------------------------------- the seeds' arithmetic


def test_seed_square():
    assert float(fg.grad(lambda x: x ** 2)(4.0)) == 8.0


def test_seed_sum_of_squares():
    gx, gy = fg.grad(lambda x, y: x ** 2 + y ** 2, argnums=(0, 1))(4.0, 2.0)
    assert (float(gx), float(gy)) == (8.0, 4.0)


def test_seed_chain_rule():
    def z(x):
        y = 2 * x ** 2
        return y ** 2

    assert float(fg.grad(z)(4.0)) == 1024.0  # dz/dx = 2y * 4x = 2 * 32 * 16


def test_seed_q():
    a, b = np.array([2.0, 3.0]), np.array([6.0, 4.0])
    ga, gb = fg.grad(lambda a, b: fnp.sum(3 * a ** 3 - b ** 2), argnums=(0, 1))(a, b)
    np.testing.assert_array_equal(ga, 9 * a ** 2)
    np.testing.assert_array_equal(gb, -2 * b)
    _, vjp_fn = fg.vjp(lambda a, b: 3 * a ** 3 - b ** 2, a, b)
    ga2, gb2 = vjp_fn(np.ones(2))
    np.testing.assert_array_equal(ga2, [36.0, 81.0])
    np.testing.assert_array_equal(gb2, [-12.0, -8.0])


def test_seed_mean_of_squares():
    out = lambda x: fnp.mean(3 * (x + 2) ** 2)  # noqa: E731
    x = np.ones((2, 2))
    assert float(out(x)) == 27.0
    np.testing.assert_allclose(fg.grad(out)(x), np.full((2, 2), 4.5))
    x32 = np.ones((2, 2), np.float32)
    g32 = fg.grad(out)(x32)
    assert g32.dtype == np.float32
    np.testing.assert_allclose(g32, np.full((2, 2), 4.5))


def test_seed_vjp_doubling():
    def f(x):
        y = x * 2
        while fnp.linalg.norm(y) < 1000:  # the number of doublings depends on x
            y = y * 2
        return y

    x = np.array([0.3, -1.2, 0.5])  # |x| = 1.33: 2 ** 10 * 1.33 > 1000 > 2 ** 9 * 1.33
    y, vjp_fn = fg.vjp(f, x)
    np.testing.assert_allclose(y, x * 1024)
    v = np.array([0.1, 1.0, 0.0001])
    (g,) = vjp_fn(v)
    np.testing.assert_allclose(g, [102.4, 1024.0, 0.1024])
    np.testing.assert_allclose(fg.jacrev(f)(x).T @ v, g)
    (g_small,) = fg.vjp(f, x / 8)[1](v)  # three more doublings
    np.testing.assert_allclose(g_small, 8 * g)


# --------------------------------------------------------------------------- dtypes at the edges


def test_python_scalar_arguments_stay_weak_under_every_transform():
    x32 = np.ones(2, np.float32)
    f = lambda s: fnp.sum(x32 * s)  # noqa: E731  (s is weak: the sum stays float32)
    assert f(2.0).dtype == np.float32
    values = [fg.value_and_grad(f)(2.0)[0], fg.jit(fg.value_and_grad(f))(2.0)[0],
              fg.vjp(f, 2.0)[0], fg.jvp(f, (2.0,), (1.0,))[0], fg.jit(f)(2.0)]
    assert [np.asarray(v).dtype for v in values] == [np.float32] * 5
    assert float(fg.grad(f)(2.0)) == 2.0
    # a cotangent given as a Python float under an outer grad
    assert float(fg.grad(lambda c: fg.vjp(lambda x: x * 2, np.float32(1.0))[1](c)[0])(1.0)) == 2


def test_jacobians_of_empty_arrays_keep_dtype():
    for dtype in (np.float32, np.float64):
        for jac in (fg.jacfwd, fg.jacrev):
            j = jac(lambda x: x * 2)(np.ones((2, 0), dtype))
            assert j.shape == (2, 0, 2, 0) and j.dtype == dtype
    assert fg.grad(lambda x: fnp.sum(x))(np.ones(0, np.float32)).dtype == np.float32


def test_traced_tangents_and_cotangents_are_checked_and_cast():
    with pytest.raises(TypeError, match="tangent dtype float32 does not match primal dtype"):
        fg.jit(lambda x, t: fg.jvp(lambda x: x * 2, (x,), (t,)))(np.ones(2),
                                                               np.ones(2, np.float32))
    out = fg.jit(lambda x, c: fg.vjp(lambda x: x * 2, x)[1](c))(np.ones((), np.float32), 1.0)
    assert out[0].dtype == np.float32 and float(out[0]) == 2.0


def test_keyword_arguments_are_constants():
    f = lambda x, scale=1.0: fnp.sum(x ** 2) * scale  # noqa: E731
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(fg.grad(f)(x, scale=3.0), 6 * x)
    np.testing.assert_allclose(fg.value_and_grad(f)(x, scale=3.0)[0], 15.0)
    np.testing.assert_allclose(fg.jacrev(f)(x, scale=3.0), 6 * x)
    np.testing.assert_allclose(fg.jacfwd(f)(x, scale=3.0), 6 * x)
    np.testing.assert_allclose(fg.hessian(f)(x, scale=3.0), 6 * np.eye(2))


def test_custom_vjp_sees_changed_closures_under_every_transform():
    scale = {"k": 2.0}
    f = fg.custom_vjp(lambda x: x * scale["k"])
    f.defvjp(lambda x: (x * scale["k"], None), lambda res, g: (g * scale["k"],))
    x = np.ones(2)
    np.testing.assert_allclose(fg.jit(lambda x: f(x))(x), [2.0, 2.0])
    scale["k"] = 5.0
    np.testing.assert_allclose(f(x), [5.0, 5.0])
    np.testing.assert_allclose(fg.jit(lambda x: f(x))(x), [5.0, 5.0])
    np.testing.assert_allclose(fg.vmap(f)(x), [5.0, 5.0])
    np.testing.assert_allclose(fg.grad(lambda x: fnp.sum(f(x)))(x), [5.0, 5.0])


def _closing_over(a, x):
    g = fg.custom_vjp(lambda x: x * a)
    g.defvjp(lambda x: (x * a, None), lambda res, ct: (ct * a,))
    return g(x)


def test_custom_vjp_closing_over_traced_values():
    # the closed-over value becomes an input of custom_vjp_call, so the enclosing vmap or
    # jit batches or stages it instead of leaking its tracer
    a, x = np.array([2.0, 3.0]), np.array([1.0, 1.0])
    np.testing.assert_allclose(fg.vmap(_closing_over)(a, x), [2.0, 3.0])
    assert float(fg.jit(_closing_over)(2.0, 1.0)) == 2.0
    assert float(fg.jit(fg.grad(_closing_over, argnums=1))(2.0, 1.0)) == 2.0
    np.testing.assert_allclose(fg.vmap(fg.grad(_closing_over, argnums=1))(a, x), [2.0, 3.0])
    with pytest.raises(TypeError, match="closes over a value that is being differentiated"):
        fg.grad(_closing_over, argnums=(0, 1))(2.0, 1.0)


def test_custom_vjp_rules_may_branch_on_values_under_plain_grad():
    # as in JAX: under grad (no jit) fwd and bwd see concrete values
    f = fg.custom_vjp(lambda x: x * 2)
    f.defvjp(lambda x: (x * 2, x), lambda x, g: ((g * 2,) if x > 0 else (-g * 2,)))
    assert float(fg.grad(f)(1.0)) == 2.0 and float(fg.grad(f)(-1.0)) == -2.0
    value, grad = fg.value_and_grad(lambda x: f(x) * 3)(np.float64(2.0))
    assert float(value) == 12.0 and float(grad) == 6.0
    g = fg.custom_vjp(lambda x: x * 2)
    g.defvjp(lambda x: (x * 2, x if fnp.sum(x) > 0 else -x), lambda r, c: (c * r,))
    np.testing.assert_allclose(fg.grad(lambda x: fnp.sum(g(x)))(np.array([-2.0])), [2.0])
    with pytest.raises(fg.errors.ConcretizationError):
        fg.jit(fg.grad(f))(1.0)  # under jit they are traced, as in JAX


def test_custom_vjp_binds_keyword_arguments_and_defaults_by_its_signature():
    @fg.custom_vjp
    def scaled(x, y=2.0):
        return x * y

    scaled.defvjp(lambda x, y: (x * y, (x, y)), lambda res, g: (10.0 * g * res[1], g * res[0]))
    assert fg.grad(lambda x: scaled(x, y=3.0))(1.0) == 30.0  # fwd/bwd see y positionally
    assert fg.grad(lambda x: scaled(x))(1.0) == 20.0  # the default too
    assert fg.jit(fg.grad(lambda x: scaled(y=x, x=2.0)))(1.0) == 2.0
    with pytest.raises(TypeError, match="unexpected keyword argument 'z'"):
        scaled(1.0, z=2.0)


def test_grad_with_respect_to_empty_pytrees_gives_them_back():
    v = np.ones(2)
    assert fg.grad(lambda a, b: fnp.sum(a), argnums=1)(v, {}) == {}
    value, (ga, gb) = fg.value_and_grad(lambda a, b: fnp.sum(a), argnums=(0, 1))(v, [])
    assert value == 2.0 and gb == [] and np.array_equal(ga, [1.0, 1.0])
    assert fg.jit(fg.grad(lambda a, b: fnp.sum(a), argnums=1))(v, ()) == ()


def test_jvp_has_aux_returns_the_aux_output_as_jax_does():
    x = np.array([1.0, 2.0])

    def f(d):
        return d["a"] ** 2, {"aux": d["a"] * 10.0}

    out, tangent, aux = fg.jvp(f, ({"a": x},), ({"a": np.ones(2)},), has_aux=True)
    np.testing.assert_array_equal(out, x ** 2)
    np.testing.assert_array_equal(tangent, 2 * x)
    np.testing.assert_array_equal(aux["aux"], x * 10.0)
    jitted = fg.jit(lambda x: fg.jvp(lambda y: (y ** 2, y.sum()), (x,), (x,), has_aux=True))
    out, tangent, aux = jitted(x)
    np.testing.assert_array_equal(tangent, 2 * x * x)
    assert float(aux) == 3.0
    with pytest.raises(TypeError, match="has_aux=True requires the function to return a pair"):
        fg.jvp(lambda y: y * 2.0, (x,), (x,), has_aux=True)
