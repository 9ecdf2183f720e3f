"""``fg.vmap``: against a Python loop over the batch, for in_axes / out_axes of every
form (ints, negative ints, None, tuples, pytree prefixes), composed with jit, grad and
itself, and with a clear error for each misuse. (Each primitive's batching rule is
tested against a loop in test_batching.py.)
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fgrad as fg
import fgrad.numpy as fnp

RNG = np.random.default_rng(0)
W = RNG.standard_normal((4, 3))


def loop(f, in_axes, out_axis, *args):
    """``vmap``'s meaning: ``f`` on each slice along the mapped axes, stacked at
    ``out_axis`` (arrays only, one array output)."""
    axes = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
    size = next(np.shape(a)[ax] for a, ax in zip(args, axes) if ax is not None)
    outs = []
    for i in range(size):
        sliced = [a if ax is None else np.take(a, i, axis=ax) for a, ax in zip(args, axes)]
        outs.append(np.asarray(f(*sliced)))
    return np.stack(outs, axis=out_axis)


FUNCTIONS = {
    "elementwise": lambda x: fnp.sin(x) * x + 1.0,
    "reduction": lambda x: fnp.sum(x ** 2, axis=-1),
    "matvec with a closure": lambda x: fnp.tanh(W @ x),
    "softmax": lambda x: fg.nn.softmax(x, axis=-1),
    "indexing": lambda x: x[::2] - x[-1],
    "reshape and transpose": lambda x: fnp.reshape(x, (3, 1)).T,
    "where": lambda x: fnp.where(x > 0, x, 0.1 * x),
    "cumsum and max": lambda x: fnp.cumsum(x) + fnp.max(x),
}


@settings(max_examples=20)
@given(name=st.sampled_from(sorted(FUNCTIONS)), batch=st.integers(0, 4),
       dtype=st.sampled_from([np.float32, np.float64]), data=st.data())
def test_vmap_equals_a_loop(name, batch, dtype, data):
    f = FUNCTIONS[name]
    xs = data.draw(hnp.arrays(dtype, (batch, 3), elements=st.floats(-2, 2, width=32)))
    got = fg.vmap(f)(xs)
    if batch:
        want = loop(f, 0, 0, xs)
    else:  # an empty batch: the per-example shape from one example
        want = np.zeros((0, *np.shape(f(np.ones(3, dtype)))), dtype)
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("in_axes, out_axes", [
    (0, 0), (1, 0), (-1, 1), ((None, 0), 0), ((1, None), -1), ((0, 1), 1),
])
def test_axes_variants(in_axes, out_axes):
    a = RNG.standard_normal((3, 3))
    b = RNG.standard_normal((3, 3))

    def f(x, y):
        return fnp.sin(x) * y + x

    got = fg.vmap(f, in_axes=in_axes, out_axes=out_axes)(a, b)
    np.testing.assert_allclose(got, loop(f, in_axes, out_axes, a, b), rtol=1e-12)


def test_pytree_arguments_and_outputs():
    params = {"w": RNG.standard_normal(3), "b": 0.5}
    xs = RNG.standard_normal((5, 3))

    def f(p, x):
        z = fnp.dot(p["w"], x) + p["b"]
        return {"z": z, "const": p["b"] * 2.0}, (x * 2.0,)

    out, (doubled,) = fg.vmap(f, in_axes=(None, 0), out_axes=({"z": 0, "const": None}, 1))(
        params, xs)
    np.testing.assert_allclose(out["z"], xs @ params["w"] + 0.5)
    assert np.shape(out["const"]) == () and float(out["const"]) == 1.0  # unmapped output
    np.testing.assert_allclose(doubled, (xs * 2.0).T)  # batch axis placed at 1
    # a prefix: one axis for every leaf of a dict argument
    summed = fg.vmap(lambda d: d["a"] + d["b"], in_axes=({"a": 0, "b": None},))(
        {"a": np.arange(3.0), "b": 10.0})
    np.testing.assert_array_equal(summed, [10.0, 11.0, 12.0])


def test_unmapped_outputs_are_broadcast_to_the_batch():
    out = fg.vmap(lambda x, c: c * 2.0, in_axes=(0, None))(np.ones((4, 2)), np.arange(2.0))
    np.testing.assert_array_equal(out, np.tile([0.0, 2.0], (4, 1)))


def test_per_example_gradients():
    w = RNG.standard_normal(3)
    xs = RNG.standard_normal((6, 3))
    ys = RNG.standard_normal(6)

    def loss(w, x, y):
        return (fnp.tanh(fnp.dot(x, w)) - y) ** 2

    got = fg.vmap(fg.grad(loss), in_axes=(None, 0, 0))(w, xs, ys)
    want = np.stack([fg.grad(loss)(w, x, y) for x, y in zip(xs, ys)])
    np.testing.assert_allclose(got, want, rtol=1e-12)
    jitted = fg.jit(fg.vmap(fg.grad(loss), in_axes=(None, 0, 0)))
    np.testing.assert_allclose(jitted(w, xs, ys), want, rtol=1e-12)


def test_grad_through_vmap_sees_closed_over_values():
    xs = RNG.standard_normal((4, 2))

    def total(w):
        return fnp.sum(fg.vmap(lambda x: fnp.tanh(w * x))(xs))

    np.testing.assert_allclose(fg.grad(total)(1.5), np.sum((1 - np.tanh(1.5 * xs) ** 2) * xs),
                               rtol=1e-12)
    fg.test_util.check_grads(total, (1.5,), order=2)


def test_nested_vmap_is_an_outer_product_of_loops():
    a, b = RNG.standard_normal(3), RNG.standard_normal(4)
    table = fg.vmap(fg.vmap(lambda x, y: x * y + fnp.sin(x), in_axes=(None, 0)),
                    in_axes=(0, None))(a, b)
    np.testing.assert_allclose(table, a[:, None] * b[None, :] + np.sin(a)[:, None])


def test_vmap_under_jit_is_one_program():
    f = fg.jit(fg.vmap(lambda x: fnp.sum(fnp.sin(x) ** 2)))
    xs = RNG.standard_normal((5, 7))
    np.testing.assert_allclose(f(xs), np.sum(np.sin(xs) ** 2, axis=1), rtol=1e-12)
    jaxpr = fg.make_jaxpr(fg.vmap(lambda x: fnp.sum(fnp.sin(x) ** 2)))(xs)
    assert [e.primitive.name for e in jaxpr.jaxpr.eqns] == ["sin", "square", "reduce_sum"]


@pytest.mark.parametrize("call, error, match", [
    (lambda: fg.vmap(lambda a, b: a + b)(np.ones(3), np.ones(4)), ValueError,
     "inconsistent sizes"),
    (lambda: fg.vmap(fnp.sin, in_axes=None)(np.ones(3)), ValueError, "maps none"),
    (lambda: fg.vmap(fnp.sin)(1.0), ValueError, "along axis 0"),
    (lambda: fg.vmap(fnp.sin, in_axes=2)(np.ones(3)), ValueError, "along axis 2"),
    (lambda: fg.vmap(fnp.sin, in_axes=[0]), TypeError, "as a tuple"),
    (lambda: fg.vmap(fnp.sin, in_axes="x"), TypeError, "ints or None"),
    (lambda: fg.vmap(fnp.sin, out_axes=1.5), TypeError, "ints or None"),
    (lambda: fg.vmap(fnp.sin, in_axes=(0, 0))(np.ones(3)), ValueError, "2 entries"),
    (lambda: fg.vmap(lambda x: x, out_axes=None)(np.ones(3)), ValueError, "out_axes entry"),
    (lambda: fg.vmap(lambda x: x, out_axes=2)(np.ones(3)), ValueError, "out of range"),
    (lambda: fg.vmap(lambda d: d, in_axes=({"a": 0},))({"b": np.ones(2)}), ValueError,
     "pytree prefix"),
    (lambda: fg.vmap(lambda: 1.0)(), TypeError, "no positional arguments"),
    (lambda: fg.vmap(lambda x, scale=1.0: x * scale)(np.ones(3), scale=2.0), TypeError,
     "keyword arguments \\(scale\\)"),
    (lambda: fg.vmap(lambda x: "text")(np.ones(2)), TypeError, "not an array"),
])
def test_misuse_is_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_docstring_examples():
    import doctest

    from fgrad._src import vmap as vmap_module

    failures, tried = doctest.testmod(vmap_module)
    assert tried > 0 and failures == 0


def test_unmapped_concrete_arguments_reach_the_function_as_they_are():
    # as in JAX: Python control flow and static arguments may use an unmapped argument
    xs = np.arange(3.0)
    power = fg.vmap(lambda x, n: x ** n if n > 2 else x, in_axes=(0, None))
    np.testing.assert_allclose(power(xs, 3), xs ** 3)
    np.testing.assert_allclose(power(xs, 1), xs)
    scaled = fg.vmap(fg.jit(lambda x, n: x * n, static_argnums=1), in_axes=(0, None))
    np.testing.assert_allclose(scaled(xs, 3), xs * 3)


def test_unmapped_traced_arguments_are_still_differentiated():
    w, xs = np.array([1.0, 2.0]), np.arange(6.0).reshape(3, 2)

    def loss(w):
        return fnp.sum(fg.vmap(lambda w, x: fnp.dot(w, x) ** 2, in_axes=(None, 0))(w, xs))

    np.testing.assert_allclose(fg.grad(loss)(w), 2 * xs.T @ (xs @ w))
    np.testing.assert_allclose(fg.jit(fg.grad(loss))(w), 2 * xs.T @ (xs @ w))
