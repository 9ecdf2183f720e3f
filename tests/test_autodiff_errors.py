"""Every autodiff error of SPEC section 4: the exception type, and a message that
names the cause and the fix."""

from __future__ import annotations

import numpy as np
import pytest

import fgrad as fg
import fgrad.numpy as fnp

# --------------------------------------------------------------------------- grad of non-scalars


@pytest.mark.parametrize("transform", [fg.grad, fg.value_and_grad])
def test_grad_of_non_scalar_output(transform):
    with pytest.raises(TypeError) as info:
        transform(lambda x: x * 2.0)(np.ones((2, 3)))
    message = str(info.value)
    assert "(2, 3)" in message
    assert "vjp" in message and "jacrev" in message and ".sum()" in message


def test_grad_of_pytree_output():
    with pytest.raises(TypeError, match="vjp.*jacrev"):
        fg.grad(lambda x: (x, x))(1.0)


def test_grad_of_non_scalar_output_under_jit_and_nested_grad():
    with pytest.raises(TypeError, match=r"\(3,\)"):
        fg.jit(fg.grad(lambda x: fnp.sin(x)))(np.ones(3))
    with pytest.raises(TypeError, match=r"\(2,\)"):
        fg.grad(lambda x: fnp.sum(fg.grad(lambda y: y * x)(np.ones(2))))(1.0)


def test_grad_of_integer_output():
    with pytest.raises(TypeError, match="floating-point output"):
        fg.grad(lambda x: fnp.argmax(x))(np.array([1.0, 3.0]))


# --------------------------------------------------------------------------- integer inputs


@pytest.mark.parametrize("value, dtype", [
    (3, "int64"), (np.arange(3), "int64"), (True, "bool"), (np.array([True]), "bool"),
    (np.int32(2), "int32"),
])
def test_grad_with_respect_to_integer_or_bool(value, dtype):
    with pytest.raises(TypeError) as info:
        fg.grad(lambda x, y: fnp.sum(y * 2.0), argnums=(1,))(1.0, value)
    message = str(info.value)
    assert "argument 1" in message and dtype in message
    assert "astype(float)" in message


@pytest.mark.parametrize("transform", [fg.grad, fg.value_and_grad, fg.jacfwd, fg.jacrev,
                                       fg.hessian])
def test_every_transform_rejects_integer_inputs(transform):
    with pytest.raises(TypeError, match="argument 0"):
        transform(lambda x: x * 2.0)(np.arange(3))


def test_integer_leaf_inside_a_pytree_argument():
    with pytest.raises(TypeError, match="argument 0.*int64"):
        fg.grad(lambda p: p["x"] * p["n"])({"x": 1.0, "n": 3})


def test_integer_inputs_not_differentiated_are_constants():
    g = fg.grad(lambda x, n: fnp.sum(x[:n] ** 2) * n)(np.ones(3), 2)
    np.testing.assert_array_equal(g, [4.0, 4.0, 0.0])
    gx, = fg.vjp(lambda x, n: x * n, np.ones(2), np.array([2, 3]))[1](np.ones(2))[:1]
    np.testing.assert_array_equal(gx, [2.0, 3.0])


# --------------------------------------------------------------------------- argnums


@pytest.mark.parametrize("transform", [fg.grad, fg.value_and_grad, fg.jacfwd, fg.jacrev,
                                       fg.hessian])
@pytest.mark.parametrize("argnums", [1, -2, (0, 1), (2,)])
def test_argnums_out_of_range(transform, argnums):
    with pytest.raises(ValueError) as info:
        transform(lambda x: x ** 2, argnums=argnums)(1.0)
    message = str(info.value)
    assert "argnums" in message and "out of range" in message and "1 positional" in message


@pytest.mark.parametrize("argnums", [0.5, "0", None, (0, 1.0), True])
def test_argnums_of_the_wrong_type(argnums):
    with pytest.raises(TypeError, match="argnums must be an int or a tuple of ints"):
        fg.grad(lambda x, y: x * y, argnums=argnums)(1.0, 2.0)


def test_empty_argnums():
    with pytest.raises(ValueError, match="argnums must not be empty"):
        fg.grad(lambda x: x, argnums=())(1.0)


# --------------------------------------------------------------------------- vjp cotangents


def _vjp_fn():
    return fg.vjp(lambda x: x * 2.0, np.ones(3))[1]


def test_vjp_cotangent_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"shape \(2,\).*shape \(3,\)"):
        _vjp_fn()(np.ones(2))
    with pytest.raises(ValueError, match=r"shape \(\)"):
        _vjp_fn()(1.0)


@pytest.mark.parametrize("ct, dtype", [(np.ones(3, np.float32), "float32"),
                                       (np.ones(3, np.int64), "int64")])
def test_vjp_cotangent_of_the_wrong_dtype(ct, dtype):
    with pytest.raises(TypeError, match=f"dtype {dtype}.*float64.*astype"):
        _vjp_fn()(ct)


def test_vjp_cotangent_of_the_wrong_structure():
    with pytest.raises(ValueError, match="structure"):
        _vjp_fn()((np.ones(3),))
    out, vjp_fn = fg.vjp(lambda x: {"a": x, "b": x}, np.ones(2))
    with pytest.raises(ValueError, match="structure"):
        vjp_fn({"a": np.ones(2)})


def test_vjp_cotangent_that_is_not_an_array():
    with pytest.raises(TypeError, match="arrays"):
        _vjp_fn()("abc")


def test_vjp_function_can_be_called_again_after_an_error():
    vjp_fn = _vjp_fn()
    with pytest.raises(ValueError):
        vjp_fn(np.ones(4))
    np.testing.assert_array_equal(vjp_fn(np.ones(3))[0], [2.0, 2.0, 2.0])


def test_jvp_tangent_mismatches():
    with pytest.raises(ValueError, match=r"tangent shape \(3,\).*\(2,\)"):
        fg.jvp(lambda x: x, (np.ones(2),), (np.ones(3),))
    with pytest.raises(TypeError, match="float32.*float64"):
        fg.jvp(lambda x: x, (np.ones(2),), (np.ones(2, np.float32),))
    with pytest.raises(ValueError, match="structure"):
        fg.jvp(lambda x, y: x, (1.0, 2.0), (1.0,))
    with pytest.raises(TypeError, match="tuples"):
        fg.jvp(lambda x: x, 1.0, 1.0)


# --------------------------------------------------------------------------- has_aux, leaves


def test_has_aux_requires_a_pair():
    with pytest.raises(TypeError, match=r"has_aux=True.*pair \(output, aux\)"):
        fg.grad(lambda x: x, has_aux=True)(1.0)
    with pytest.raises(TypeError, match="pair"):
        fg.vjp(lambda x: (x, x, x), 1.0, has_aux=True)


def test_non_array_leaves():
    with pytest.raises(TypeError, match="str"):
        fg.grad(lambda x: x)("abc")
    with pytest.raises(TypeError, match="object"):
        fg.vjp(lambda x: x, object())
    with pytest.raises(TypeError, match="str"):
        fg.grad(lambda x: "abc")(1.0)


# --------------------------------------------------------------------------- custom_vjp


def _make(bwd, fwd=None):
    @fg.custom_vjp
    def f(x, y):
        return x * y

    f.defvjp(fwd or (lambda x, y: (x * y, (x, y))), bwd)
    return f


@pytest.mark.parametrize("bwd, error, pattern", [
    (lambda r, g: (g * r[1],), TypeError, r"one cotangent per argument \(2\).*length 1"),
    (lambda r, g: [g * r[1], g * r[0]], TypeError, "tuple.*got list"),
    (lambda r, g: g, TypeError, "tuple"),
    (lambda r, g: (g * r[1], np.ones(3)), ValueError, r"shape \(3,\) for input 1.*shape \(\)"),
    (lambda r, g: (g * r[1], (g, g)), TypeError, "structure"),
], ids=["too-few", "list", "not-a-tuple", "wrong-shape", "wrong-structure"])
def test_custom_vjp_bwd_returning_the_wrong_thing(bwd, error, pattern):
    f = _make(bwd)
    with pytest.raises(error, match=pattern) as info:
        fg.grad(f)(2.0, 3.0)
    assert "bwd of f" in str(info.value)


def test_custom_vjp_bwd_with_the_wrong_pytree_keys():
    @fg.custom_vjp
    def h(p):
        return p["a"] * p["b"]

    h.defvjp(lambda p: (h(p), p), lambda r, g: ({"a": g * r["b"], "c": g * r["a"]},))
    with pytest.raises(TypeError, match=r"structure.*'c'.*'b'"):
        fg.grad(h)({"a": 2.0, "b": 3.0})
    h.defvjp(lambda p: (h(p), p), lambda r, g: ({"a": g * r["b"], "b": None},))
    g = fg.grad(h)({"a": 2.0, "b": 3.0})  # None stands for a zero cotangent
    assert float(g["a"]) == 3.0 and float(g["b"]) == 0.0
    h.defvjp(lambda p: (h(p), p), lambda r, g: (None,))
    assert float(fg.grad(h)({"a": 2.0, "b": 3.0})["a"]) == 0.0


def test_custom_vjp_fwd_returning_the_wrong_thing():
    with pytest.raises(TypeError, match=r"fwd of f must return a pair \(output, residuals\)"):
        fg.grad(_make(lambda r, g: (g, g), fwd=lambda x, y: x * y))(2.0, 3.0)
    with pytest.raises(TypeError, match="fwd of f returned output structure"):
        fg.grad(_make(lambda r, g: (g, g), fwd=lambda x, y: ((x, y), None)))(2.0, 3.0)


def test_custom_vjp_fwd_output_must_match_the_function():
    @fg.custom_vjp
    def f(x):
        return x * 2.0

    f.defvjp(lambda x: (fnp.sum(x), None), lambda r, g: (g,))
    with pytest.raises(TypeError, match=r"fwd of f returned output 0 of type f64\[\].*f64\[2\]"):
        fg.grad(lambda x: fnp.sum(f(x)))(np.ones(2))
    f.defvjp(lambda x: (fnp.astype(x, np.float32), None), lambda r, g: (g,))
    with pytest.raises(TypeError, match=r"f32\[2\], but the function returns f64\[2\]"):
        fg.vjp(f, np.ones(2))


def test_custom_vjp_errors_also_under_jit():
    f = _make(lambda r, g: (g * r[1],))
    with pytest.raises(TypeError, match="one cotangent per argument"):
        fg.jit(fg.grad(f))(2.0, 3.0)


def test_custom_vjp_without_defvjp():
    @fg.custom_vjp
    def f(x):
        return x

    with pytest.raises(TypeError, match=r"defvjp\(fwd, bwd\)"):
        fg.grad(f)(1.0)


@pytest.mark.parametrize("forward", [
    lambda f: fg.jvp(f, (np.array([1.0, 2.0]),), (np.ones(2),)),
    lambda f: fg.jacfwd(f)(np.array([1.0, 2.0])),
    lambda f: fg.jvp(fg.jacfwd(f), (np.array([1.0, 2.0]),), (np.ones(2),)),
    lambda f: fg.jit(lambda x: fg.jvp(f, (x,), (x,)))(np.array([1.0, 2.0])),
], ids=["jvp", "jacfwd", "jvp-of-jacfwd", "jit-of-jvp"])
def test_forward_mode_of_custom_vjp(forward):
    @fg.custom_vjp
    def f(x):
        return fnp.sin(x)

    f.defvjp(lambda x: (fnp.sin(x), x), lambda x, g: (g * fnp.cos(x),))
    with pytest.raises(TypeError) as info:
        forward(f)
    message = str(info.value)
    assert "forward-mode" in message and "custom_vjp" in message
    assert "fg.grad" in message and "fg.vjp" in message and "jacrev" in message


# --------------------------------------------------------------------------- check_grads


def test_check_grads_reports_a_wrong_rule():
    @fg.custom_vjp
    def bad(x):
        return x ** 2

    bad.defvjp(lambda x: (x ** 2, x), lambda x, g: (g * x,))  # should be 2 g x
    with pytest.raises(AssertionError, match="VJP check failed"):
        fg.test_util.check_grads(bad, (np.array([1.0, 2.0]),), order=1, modes=["rev"])


def test_custom_vjp_bwd_cotangent_is_cast_to_the_primal_dtype():
    @fg.custom_vjp
    def f(x):
        return x * 1.0

    f.defvjp(lambda x: (f(x), x), lambda x, g: (fnp.astype(g, np.float64) * 3.0,))
    g = fg.grad(lambda x: fnp.sum(f(x)))(np.ones(2, np.float32))
    assert g.dtype == np.float32
    np.testing.assert_array_equal(g, [3.0, 3.0])


def test_check_grads_argument_errors():
    with pytest.raises(ValueError, match="mode"):
        fg.test_util.check_grads(fnp.sin, (1.0,), modes=("backward",))
    with pytest.raises(ValueError, match="order"):
        fg.test_util.check_grads(fnp.sin, (1.0,), order=0)
    with pytest.raises(TypeError, match="tuple"):
        fg.test_util.check_grads(fnp.sin, 1.0)


def test_docstring_examples_of_the_autodiff_modules():
    import doctest

    from fgrad import test_util
    from fgrad._src import api, custom_derivatives, errors
    from fgrad._src import test_util as test_util_impl
    from fgrad._src.interpreters import ad

    for module in (test_util, test_util_impl, api, custom_derivatives, ad, errors):
        failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert tried > 0 and failures == 0, module.__name__


@pytest.mark.parametrize("argnums", [(0, 0), (0, -2)])
def test_repeated_argnums_are_an_error(argnums):
    for transform in (fg.grad, fg.value_and_grad, fg.jacfwd, fg.jacrev):
        with pytest.raises(ValueError, match="names an argument more than once"):
            transform(lambda x, y: x * x * y, argnums=argnums)(3.0, 2.0)


def test_a_tracer_kept_from_a_finished_grad_is_a_clear_error_under_jit():
    kept = []
    fg.grad(lambda s: (kept.append(s), s * 2.0)[1])(1.0)
    with pytest.raises(fg.errors.UnexpectedTracerError,
                       match="transform that has returned.*Return it"):
        fg.jit(lambda x: x + kept[0])(1.0)


def test_a_tracer_kept_from_a_finished_grad_is_a_clear_error_at_top_level():
    kept = []
    fg.grad(lambda s: (kept.append(s), s * 2.0)[1])(1.0)
    with pytest.raises(fg.errors.UnexpectedTracerError, match="transform that has returned"):
        kept[0] + 1.0
    with pytest.raises(fg.errors.UnexpectedTracerError, match="transform that has returned"):
        fnp.sin(kept[0])


def test_check_grads_takes_one_mode_as_a_string_and_refuses_integer_arguments():
    fg.test_util.check_grads(fnp.sin, (np.array([1.0, 2.0]),), order=1, modes="rev")
    with pytest.raises(TypeError, match="no argument is floating point"):
        fg.test_util.check_grads(lambda n: n * 2, (np.array([1, 2]),))  # checked nothing
    with pytest.raises(ValueError, match="positive integer"):
        fg.test_util.check_grads(fnp.sin, (np.ones(2),), order=True)
