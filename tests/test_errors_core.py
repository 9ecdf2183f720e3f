"""SPEC §4 errors of the core: shape mismatches name the user-level op and both
user shapes; concretizing a tracer under jit/make_jaxpr raises ConcretizationError
naming the operation and the user's line; non-array pytree leaves are a TypeError.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import fgrad as fg
import fgrad.numpy as fnp
from fgrad.errors import ConcretizationError


def _modes(f, *args):
    """Ways to call ``f``: eagerly, staged with make_jaxpr, and jitted."""
    return {
        "eager": lambda: f(*args),
        "make_jaxpr": lambda: fg.make_jaxpr(f)(*args),
        "jit": lambda: fg.jit(f)(*args),
    }


PRIMITIVE_NAMES = ["mul", "sub", "dot_general", "broadcast_in_dim", "reshape[", "div", "pow"]

SHAPE_ERRORS = [
    # (what the user called, the function, operands, the op name the message must use)
    ("x + y", lambda x, y: x + y, (np.ones((2, 3)), np.ones(4)), "add"),
    ("fnp.add", fnp.add, (np.ones((2, 3)), np.ones(4)), "add"),
    ("x * y", lambda x, y: x * y, (np.ones((3, 1, 2)), np.ones((4, 3))), "multiply"),
    ("fnp.multiply", fnp.multiply, (np.ones(5, np.float32), np.ones(2, np.float32)), "multiply"),
    ("x - y", lambda x, y: x - y, (np.ones((2, 3)), np.ones((3, 2))), "subtract"),
    ("x / y", lambda x, y: x / y, (np.ones(3), np.ones(2)), "divide"),
    ("x ** y", lambda x, y: x ** y, (np.ones(3), np.ones(2)), "power"),
    ("fnp.maximum", fnp.maximum, (np.ones(3), np.ones(2)), "maximum"),
    ("x < y", lambda x, y: x < y, (np.ones(3), np.ones(2)), "less"),
    ("fnp.where", lambda c, x: fnp.where(c, x, 0.0), (np.ones(2) > 0, np.ones(3)), "where"),
    ("x @ y", lambda x, y: x @ y, (np.ones((2, 3)), np.ones((4, 5))), "matmul"),
    ("fnp.matmul vectors", fnp.matmul, (np.ones(3), np.ones(4)), "matmul"),
    ("x @ y batched", lambda x, y: x @ y, (np.ones((2, 3, 4)), np.ones((5, 4, 6))), "matmul"),
    ("fnp.dot", fnp.dot, (np.ones((2, 3)), np.ones(4)), "dot"),
    ("fnp.inner", fnp.inner, (np.ones((2, 3)), np.ones(4)), "inner"),
    ("fnp.tensordot", lambda x, y: fnp.tensordot(x, y, 1), (np.ones((2, 3)), np.ones(4)),
     "tensordot"),
    ("fnp.concatenate", lambda x, y: fnp.concatenate([x, y]), (np.ones((2, 3)), np.ones((2, 4))),
     "concatenate"),
    ("fnp.broadcast_to", lambda x: fnp.broadcast_to(x, (2, 4)), (np.ones(3),), "broadcast_to"),
]


# Operators on NumPy arrays are NumPy's business: they are checked on tracers only.
SHAPE_CASES = [
    pytest.param(case, mode, id=f"{case[0]}-{mode}")
    for case in SHAPE_ERRORS
    for mode in ("eager", "make_jaxpr", "jit")
    if mode != "eager" or case[0].startswith("fnp.")
]


@pytest.mark.parametrize("case,mode", SHAPE_CASES)
def test_shape_mismatch_names_user_op_and_both_shapes(case, mode):
    _, f, args, op = case
    with pytest.raises(ValueError) as info:
        _modes(f, *args)[mode]()
    msg = str(info.value)
    assert re.match(rf"{op}\b", msg), f"message does not start with {op!r}: {msg}"
    for arg in args:
        assert str(np.shape(arg)) in msg, f"shape {np.shape(arg)} missing from: {msg}"
    rest = msg[len(op):]
    for prim in PRIMITIVE_NAMES:
        if prim not in op:
            assert not re.search(rf"\b{re.escape(prim)}", rest), f"names {prim}: {msg}"


def test_matmul_message_shows_user_shapes_not_padded_ones():
    with pytest.raises(ValueError) as info:
        fg.jit(lambda x, y: x @ y)(np.ones(3), np.ones((2, 4, 5)))
    msg = str(info.value)
    assert "(3,)" in msg and "(2, 4, 5)" in msg
    assert "(1, 3)" not in msg and "(3, 1)" not in msg


RESHAPES = [((6,), (4, 2)), ((6,), (4, -1)), ((2, 3), (5,)), ((0, 3), (-1, 0)),
            ((6,), (-1, -1))]


@pytest.mark.parametrize("mode", ["eager", "make_jaxpr", "jit"])
@pytest.mark.parametrize("shape,new", RESHAPES, ids=[f"{s}->{n}" for s, n in RESHAPES])
def test_reshape_mismatch(shape, new, mode):
    x = np.ones(shape)
    calls = _modes(lambda a: fnp.reshape(a, new), x)
    if mode != "eager":
        calls = _modes(lambda a: a.reshape(new), x)  # the tracer method
    with pytest.raises(ValueError) as info:
        calls[mode]()
    msg = str(info.value)
    assert msg.startswith("reshape")
    if new.count(-1) < 2:
        assert str(shape) in msg and str(new) in msg, msg
    with pytest.raises(ValueError):
        np.reshape(x, new)  # NumPy agrees


# --------------------------------------------------------------------------- concretization


def _branchy(x):
    if x > 0:  # the offending line
        return x
    return -x


def _to_int(x):
    return np.ones(3)[: int(x)]  # the offending line


def _to_float(x):
    return x * float(x)  # the offending line


def _item(x):
    return x.item()  # the offending line


def _while(x):
    while x < 10:  # the offending line
        x = x * 2
    return x


CONCRETE = [
    (_branchy, "bool()", "if x > 0:"),
    (_to_int, "int()", "int(x)"),
    (_to_float, "float()", "float(x)"),
    (_item, ".item()", "x.item()"),
    (_while, "bool()", "while x < 10:"),
]


@pytest.mark.parametrize("transform", ["jit", "make_jaxpr"])
@pytest.mark.parametrize("case", CONCRETE, ids=[c[1] for c in CONCRETE])
def test_concretization_error_names_operation_and_line(case, transform):
    f, what, line = case
    call = fg.jit(f) if transform == "jit" else fg.make_jaxpr(f)
    with pytest.raises(ConcretizationError) as info:
        call(np.float64(2.0))
    assert isinstance(info.value, TypeError)
    msg = str(info.value)
    assert what in msg
    assert __file__ in msg or "test_errors_core.py" in msg, msg
    assert line in msg, f"the user's source line {line!r} is not in: {msg}"
    assert "fnp.where" in msg and "static_argnums" in msg


def test_concretization_error_reports_the_line_number():
    with pytest.raises(ConcretizationError) as info:
        fg.jit(_branchy)(1.0)
    lineno = _branchy.__code__.co_firstlineno + 1
    assert f"test_errors_core.py:{lineno}:" in str(info.value)


def test_static_argnums_and_where_are_the_fixes():
    def f(x, n):
        if n > 0:
            return x * n
        return -x

    assert float(fg.jit(f, static_argnums=1)(2.0, 3)) == 6.0
    assert float(fg.jit(f, static_argnums=(1,))(2.0, -1)) == -2.0
    g = fg.jit(lambda x: fnp.where(x > 0, x, -x))
    assert float(g(-3.0)) == 3.0
    # grad runs on concrete values: Python control flow works there.
    assert float(fg.grad(_branchy)(-2.0)) == -1.0


def test_concretization_under_grad_of_jit():
    with pytest.raises(ConcretizationError):
        fg.grad(fg.jit(_branchy))(1.0)


def _numpy_copy(x):
    return fnp.sum(np.asarray(x) * x)  # the offending line


@pytest.mark.parametrize("transform", [
    lambda f: fg.grad(f),
    lambda f: fg.value_and_grad(f),
    lambda f: lambda x: fg.vjp(f, x),
    lambda f: lambda x: fg.jvp(f, (x,), (np.ones_like(x),)),
    lambda f: fg.jacrev(f),
    lambda f: fg.hessian(f),
], ids=["grad", "value_and_grad", "vjp", "jvp", "jacrev", "hessian"])
def test_numpy_copy_of_a_differentiated_value_is_an_error_not_a_lost_gradient(transform):
    # NumPy would get a constant copy: the gradient through it would be lost silently.
    with pytest.raises(fg.errors.TracerArrayConversionError) as info:
        transform(_numpy_copy)(np.array([0.5, 1.0, 2.0]))
    assert isinstance(info.value, TypeError)
    msg = str(info.value)
    assert "np.asarray(x) * x" in msg and "fnp" in msg and "fg.stop_gradient" in msg, msg
    with pytest.raises(fg.errors.TracerArrayConversionError):
        fg.grad(lambda x: fnp.sum(np.array(x) ** 2))(np.ones(3, np.float32))


def test_numpy_functions_and_integer_copies_still_work_under_grad():
    x = np.array([0.5, 1.0, 2.0])
    # NumPy functions dispatch to fgrad, so they differentiate.
    np.testing.assert_allclose(fg.grad(lambda x: np.sum(np.sin(x)))(x), np.cos(x))
    # Integer values carry no gradient: NumPy may copy them (indices, sizes).
    index = fg.grad(lambda x: fnp.sum(x[np.asarray(fnp.argmax(x))]))(x)
    np.testing.assert_array_equal(index, [0.0, 0.0, 1.0])
    # float(x) is a constant, as PyTorch's .item() (docs/kinks.md).
    assert float(fg.grad(lambda x: x * float(x))(3.0)) == 3.0


# --------------------------------------------------------------------------- non-array leaves

BAD_LEAVES = [("abc", "str"), (object(), "object"), ({"a": [1.0, "x"]}, "str"),
              ((np.ones(2), None, len), "builtin_function_or_method")]


@pytest.mark.parametrize("value,type_name", BAD_LEAVES, ids=[b[1] for b in BAD_LEAVES])
def test_non_array_leaves_are_a_clear_type_error(value, type_name):
    calls = {
        "jit": lambda: fg.jit(lambda t: 1.0)(value),
        "make_jaxpr": lambda: fg.make_jaxpr(lambda t: 1.0)(value),
        "grad": lambda: fg.grad(lambda t: 1.0)(value),
        "vjp": lambda: fg.vjp(lambda t: 1.0, value),
        "jvp": lambda: fg.jvp(lambda t: 1.0, (value,), (value,)),
    }
    for name, call in calls.items():
        with pytest.raises(TypeError) as info:
            call()
        msg = str(info.value)
        assert type_name in msg, f"{name}: {msg}"
        assert "array" in msg, f"{name}: {msg}"


def test_non_array_outputs_are_a_clear_type_error():
    for call in (lambda: fg.jit(lambda x: (x, "s"))(1.0),
                 lambda: fg.make_jaxpr(lambda x: {"a": x, "b": object()})(1.0)):
        with pytest.raises(TypeError, match="str|object") as info:
            call()
        assert "output" in str(info.value)


def test_unsupported_dtypes_are_a_clear_type_error():
    for bad in (np.array(["a", "b"]), np.ones(2, np.complex128), np.ones(2, np.float16)):
        with pytest.raises(TypeError, match=str(bad.dtype)):
            fnp.sin(bad)
        with pytest.raises(TypeError, match=str(bad.dtype)):
            fg.jit(lambda x: x)(bad)


@pytest.mark.parametrize("make", [
    fg.grad, fg.value_and_grad, fg.jit, fg.vmap, fg.make_jaxpr, fg.jacfwd, fg.jacrev,
    fg.hessian, fg.custom_vjp, lambda f: fg.vjp(f, 1.0), lambda f: fg.jvp(f, (1.0,), (1.0,)),
    lambda f: fg.custom_vjp(lambda x: x).defvjp(f, f),
], ids=["grad", "value_and_grad", "jit", "vmap", "make_jaxpr", "jacfwd", "jacrev", "hessian",
        "custom_vjp", "vjp", "jvp", "defvjp"])
def test_a_transform_of_a_non_callable_is_an_error_when_made(make):
    with pytest.raises(TypeError, match="expected a callable.*got int 3"):
        make(3)


def test_negative_repetitions_and_bad_axes_are_clear_errors():
    a = np.arange(6.0).reshape(2, 3)
    for call in (lambda: fnp.tile(a, -1), lambda: fg.jit(lambda a: fnp.tile(a, (2, -1)))(a)):
        with pytest.raises(ValueError, match="tile: negative dimensions are not allowed"):
            call()  # under jit it used to give an empty array
    for call in (lambda: fnp.repeat(a, -1), lambda: fg.jit(lambda a: fnp.repeat(a, -2))(a)):
        with pytest.raises(ValueError, match="repeat: negative dimensions are not allowed"):
            call()
    with pytest.raises(ValueError, match="negative dimensions are not allowed"):
        fg.jit(lambda a: a.sum() + fnp.ones((2, -1)))(a)
    with pytest.raises(TypeError, match="tile: reps must be an int or a tuple of ints"):
        fnp.tile(a, 1.5)
    assert fnp.tile(a, np.array([2, 1])).shape == (4, 3)  # an array of reps, as NumPy takes
    with pytest.raises(TypeError, match="argmax: axis must be an int or None"):
        fnp.argmax(a, axis=(0, 1))
    with pytest.raises(TypeError, match="axis must be an int, a tuple of ints or None"):
        fnp.sum(a, axis=1.0)
    with pytest.raises(ValueError, match="'fro' for vectors"):
        fnp.linalg.norm(np.ones(3), ord="fro")
    with pytest.raises(ValueError, match="improper number of dimensions"):
        fnp.linalg.norm(np.ones((2, 2, 2)), axis=(0, 1, 2))


def test_index_errors_name_the_index_as_written():
    a = np.arange(6.0).reshape(2, 3)
    with pytest.raises(IndexError, match="index -3 is out of bounds for axis of size 2"):
        fnp.getitem(a, np.array([0, -3]))  # reported -1 (wrapped) before
    with pytest.raises(IndexError, match="got a traced f64\\[\\] value"):
        fg.jit(lambda a, i: a[i])(a, 1.0)  # named an internal tracer class before



def test_jacrev_of_integer_outputs_and_bad_keepdims_are_type_errors():
    for f in (lambda x: 3, lambda x: fnp.argmax(x)):
        with pytest.raises(TypeError, match="jacrev requires float outputs, got i64"):
            fg.jacrev(f)(np.ones(2))  # float zeros before; fg.grad raises too
    with pytest.raises(TypeError, match="keepdims must be True or False"):
        fnp.sum(np.ones(2), keepdims="yes")


def test_regression_losses_warn_when_the_target_broadcasts():
    import warnings

    F = fg.nn.functional
    for loss in (F.mse_loss, F.l1_loss):
        with pytest.warns(UserWarning, match="target size .* different to the input size"):
            loss(fg.ones(2, 1), fg.zeros(2))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            loss(fg.ones(2), fg.zeros(2))


def test_numpy_indexing_with_a_traced_value_names_the_fgrad_way():
    c = np.arange(4.0)
    with pytest.raises(ConcretizationError, match=r"fnp.getitem\(a, i\)"):
        fg.vmap(lambda i: c[i])(np.array([0, 3]))
    np.testing.assert_array_equal(fg.vmap(lambda i: fnp.getitem(c, i))(np.array([0, 3])),
                                  [0.0, 3.0])


def test_numpy_copies_of_stopped_values_are_constants_not_errors():
    # The error's advice: fg.stop_gradient(x) when a constant is what you want.
    x = np.array([1.0, 2.0])
    np.testing.assert_array_equal(
        fg.grad(lambda x: fnp.sum(np.asarray(fg.stop_gradient(x)) * x))(x), x)
    np.testing.assert_array_equal(
        fg.grad(lambda x: fnp.sum(np.asarray(fg.stop_gradient(x) * 2.0) * x))(x), 2 * x)
    np.testing.assert_array_equal(
        fg.jacfwd(lambda x: np.asarray(fg.stop_gradient(x)) * x)(x), np.diag(x))
    with pytest.raises(fg.errors.TracerArrayConversionError):
        fg.grad(lambda x: fnp.sum(np.asarray(x * 2.0) * x))(x)
    with pytest.raises(TypeError, match="got one f64\\[\\] value"):
        fg.jvp(lambda x: x * 3.0, (2.0,), (1.0,), has_aux=True)



@pytest.mark.parametrize("use", [
    lambda a: fnp.sum(a),
    lambda a: fnp.add(a, 1.0),
    lambda a: fg.jit(lambda x: x + 1)(a),
    lambda a: fg.grad(lambda x: fnp.sum(x ** 2))(a),
    lambda a: fg.vmap(lambda x: x * 2)(a),
    lambda a: fg.jvp(lambda x: x * 2, (a,), (np.ones(3),)),
    lambda a: fg.grad(lambda x: fnp.sum(x * a))(np.ones(3)),  # closed over
    lambda a: fg.jit(lambda x: fnp.sum(x * a))(np.ones(3)),
])
def test_masked_arrays_are_refused_not_computed_without_their_mask(use):
    # As JAX: the data under the mask would be used silently (sum 103 instead of 3).
    a = np.ma.array([1.0, 2.0, 100.0], mask=[0, 0, 1])
    with pytest.raises(ValueError, match=r"masked arrays.*arr\.filled"):
        use(a)
