"""Tracer operators and array methods (SPEC §2, last bullet) equal NumPy's under
``make_jaxpr`` and ``jit``; tracers print as ``Traced<f64[3]>``.
"""

from __future__ import annotations

import operator

import numpy as np
import pytest
from core_checks import ALL_DTYPES, BOOL, F32, F64, FLOATS, I64, arrays, check_against_numpy, shapes
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fgrad as fg

TRACED = ("jaxpr", "jit")

BINARY_OPS = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "**": operator.pow,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "&": operator.and_,
    "|": operator.or_,
    "^": operator.xor,
}
# Operators NumPy defines for these dtypes; where NumPy raises, fgrad must raise too
# (checked by check_against_numpy), e.g. bool - bool, float & float.
OP_DTYPES = [F32, F64, I64, BOOL, (F32, F64), (I64, F32), (BOOL, I64)]


def _dtypes(d):
    return d if isinstance(d, tuple) else (d, d)


@pytest.mark.parametrize("op", BINARY_OPS, ids=list(BINARY_OPS))
@pytest.mark.parametrize("dts", OP_DTYPES, ids=lambda d: "-".join(x.name for x in _dtypes(d)))
@settings(max_examples=8)
@given(data=st.data())
def test_binary_operators(op, dts, data):
    fn = BINARY_OPS[op]
    d1, d2 = _dtypes(dts)
    bs = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3))
    s1, s2 = bs.input_shapes
    lo, hi = (0.5, 2.0) if op == "**" else (-3.0, 3.0)
    x = data.draw(arrays(d1, s1, lo, hi))
    y = data.draw(arrays(d2, s2, 0, 2) if op == "**" else arrays(d2, s2, lo, hi))
    ref = fn
    if op == "/" and d1 == BOOL == d2:
        # Documented deviation (test_numpy_api.BOOL_NOTE): NumPy divides bools in
        # float16, fgrad in float64.
        def ref(a, b):
            return fn(np.asarray(a, F64), np.asarray(b, F64))

    check_against_numpy(fn, ref, (x, y), modes=TRACED, what=f"x {op} y")
    # A NumPy array on the other side: the tracer's __array_ufunc__ / reflected method.
    check_against_numpy(lambda a: fn(x, a), lambda a: ref(x, a), (y,), modes=TRACED,
                        what=f"ndarray {op} tracer")
    check_against_numpy(lambda a: fn(a, y), lambda a: ref(a, y), (x,), modes=TRACED,
                        what=f"tracer {op} ndarray")


@pytest.mark.parametrize("op", ["+", "-", "*", "/", "**", "<", "==", ">="])
@pytest.mark.parametrize("scalar", [2.0, 3, True], ids=repr)
@pytest.mark.parametrize("dtype", [F32, F64, I64], ids=lambda d: d.name)
def test_operators_with_python_scalars(op, scalar, dtype):
    fn = BINARY_OPS[op]
    x = np.array([0.5, 1.0, 2.0]).astype(dtype)
    check_against_numpy(
        lambda a: fn(a, scalar),
        lambda a: fn(a, scalar),
        (x,),
        modes=TRACED,
        what=f"x {op} {scalar!r}",
    )
    check_against_numpy(
        lambda a: fn(scalar, a),
        lambda a: fn(scalar, a),
        (x,),
        modes=TRACED,
        what=f"{scalar!r} {op} x",
    )


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: d.name)
@settings(max_examples=10)
@given(data=st.data())
def test_matmul_operator(dtype, data):
    n, k, m = (data.draw(st.integers(1, 3)) for _ in range(3))
    batch = data.draw(st.sampled_from([(), (2,), (1, 2)]))
    a = data.draw(arrays(dtype, batch + (n, k)))
    b = data.draw(arrays(dtype, (k, m) if data.draw(st.booleans()) else (k,)))
    check_against_numpy(operator.matmul, operator.matmul, (a, b), modes=TRACED, what="a @ b")
    check_against_numpy(
        lambda t: a @ t, lambda t: a @ t, (b,), modes=TRACED, what="ndarray @ tracer"
    )


UNARY_OPS = {"-x": operator.neg, "+x": operator.pos, "abs(x)": operator.abs, "~x": operator.inv}


@pytest.mark.parametrize("op", UNARY_OPS, ids=list(UNARY_OPS))
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: d.name)
@settings(max_examples=8)
@given(data=st.data())
def test_unary_operators(op, dtype, data):
    x = data.draw(arrays(dtype, data.draw(shapes)))
    check_against_numpy(UNARY_OPS[op], UNARY_OPS[op], (x,), modes=TRACED, what=op)


METHODS = {
    "sum()": lambda x: x.sum(),
    "sum(axis=0)": lambda x: x.sum(axis=0),
    "sum(-1, keepdims)": lambda x: x.sum(-1, keepdims=True),
    "mean()": lambda x: x.mean(),
    "mean(axis=(0, 1))": lambda x: x.mean(axis=(0, 1)),
    "max()": lambda x: x.max(),
    "max(axis=1)": lambda x: x.max(axis=1),
    "min(0)": lambda x: x.min(0),
    "prod()": lambda x: x.prod(),
    "var()": lambda x: x.var(),
    "std(1)": lambda x: x.std(1),
    "argmax()": lambda x: x.argmax(),
    "argmin(1)": lambda x: x.argmin(1),
    "all()": lambda x: x.all(),
    "any(0)": lambda x: x.any(0),
    "reshape(6, 2)": lambda x: x.reshape(6, 2),
    "reshape((-1,))": lambda x: x.reshape((-1,)),
    "reshape([3, 1, 4])": lambda x: x.reshape([3, 1, 4]),
    ".T": lambda x: x.T,
    "transpose()": lambda x: x.transpose(),
    "transpose(1, 0)": lambda x: x.transpose(1, 0),
    "transpose((1, 0))": lambda x: x.transpose((1, 0)),
    "ravel()": lambda x: x.ravel(),
    "flatten()": lambda x: x.flatten(),
    "squeeze()": lambda x: x[None].squeeze(),
    "swapaxes(0, 1)": lambda x: x.swapaxes(0, 1),
    "clip(0, 1)": lambda x: x.clip(0, 1),
    "cumsum(0)": lambda x: x.cumsum(0),
    "repeat(2)": lambda x: x.repeat(2),
    "astype(float32)": lambda x: x.astype(np.float32),
    "astype(int64)": lambda x: x.astype(np.int64),
    "astype(bool)": lambda x: x.astype(bool),
    "dot(x.T)": lambda x: x.dot(x.T),
    "x[1]": lambda x: x[1],
    "x[:, -1]": lambda x: x[:, -1],
    "x[::-1, ::2]": lambda x: x[::-1, ::2],
}


@pytest.mark.parametrize("method", METHODS, ids=list(METHODS))
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: d.name)
def test_methods(method, dtype):
    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, (3, 4)).astype(dtype)
    fn = METHODS[method]
    check_against_numpy(fn, fn, (x,), modes=TRACED, what=f"x.{method}")


def test_attributes():
    seen = {}

    def f(x):
        seen.update(
            shape=x.shape,
            ndim=x.ndim,
            dtype=x.dtype,
            size=x.size,
            len=len(x),
            T=x.T.shape,
            weak=x.weak_type,
        )
        return x

    fg.make_jaxpr(f)(np.ones((2, 3), np.float32))
    assert seen == dict(
        shape=(2, 3), ndim=2, dtype=np.dtype(np.float32), size=6, len=2, T=(3, 2), weak=False
    )
    fg.jit(f)(np.ones((0, 5), np.int64))
    assert (seen["shape"], seen["size"], seen["dtype"], seen["T"]) == ((0, 5), 0, np.int64, (5, 0))
    fg.make_jaxpr(f)(np.ones((4,)))
    assert seen["T"] == (4,)
    with pytest.raises(TypeError, match="0-d"):
        fg.make_jaxpr(lambda x: len(x))(1.0)
    # Iterating over a tracer unpacks its first axis.
    closed = fg.make_jaxpr(lambda x: [r.sum() for r in x])(np.ones((3, 2)))
    assert len(closed.out_avals) == 3


@pytest.mark.parametrize(
    "shape,dtype,text",
    [
        ((3,), F64, "Traced<f64[3]>"),
        ((), F32, "Traced<f32[]>"),
        ((2, 0), I64, "Traced<i64[2,0]>"),
        ((1,), BOOL, "Traced<bool[1]>"),
    ],
)
def test_tracer_str_and_repr(shape, dtype, text):
    seen = []

    def f(x):
        seen.append((str(x), repr(x), f"{x}"))
        return x

    x = np.zeros(shape, dtype)
    fg.make_jaxpr(f)(x)
    fg.jit(f)(x)
    if dtype in FLOATS:
        fg.grad(lambda x: f(x).sum())(x)
        fg.jvp(f, (x,), (x,))
    for s, r, formatted in seen:
        assert s == text, s
        assert formatted == text, formatted
        assert r.startswith(text), r
    assert len(seen) == (4 if dtype in FLOATS else 2)


def test_tracers_are_unhashable_and_immutable():
    def f(x):
        with pytest.raises(TypeError, match="unhashable"):
            hash(x)
        with pytest.raises(TypeError, match="immutable"):
            x[0] = 1.0
        return x

    fg.make_jaxpr(f)(np.ones(2))


def test_concrete_tracers_under_grad_allow_python_control_flow():
    def f(x):
        if x > 0:  # concrete under grad: allowed
            return x * 2.0
        return -x * int(x > -10) * float(x)  # float(x) is a constant: no gradient through it

    assert float(fg.grad(f)(3.0)) == 2.0
    assert float(fg.grad(f)(-3.0)) == 3.0
    g = fg.grad(lambda x: x.sum() * x.item() if x.ndim else x)(np.full(1, 5.0))
    np.testing.assert_array_equal(g, [5.0])


# --------------------------------------------------------------------------- NumPy on tracers

NUMPY_ON_TRACERS = {
    "np.sin(x)": lambda x: np.sin(x),
    "np.exp(x) * np.ones(3)": lambda x: np.exp(x) * np.ones(3),
    "np.maximum(x, 0.5)": lambda x: np.maximum(x, 0.5),
    "np.ones(3) - x": lambda x: np.ones(3) - x,
    "np.arange(3.0) ** x": lambda x: np.arange(3.0) ** x,
    "np.ones((2, 3)) @ x": lambda x: np.ones((2, 3)) @ x,
    "np.sum(x * x)": lambda x: np.sum(x * x),
    "np.mean(x, axis=0, keepdims=True)": lambda x: np.mean(x, axis=0, keepdims=True),
    "np.dot(x, x)": lambda x: np.dot(x, x),
    "np.where(x > 1, x, 0.0)": lambda x: np.where(x > 1, x, 0.0),
    "np.concatenate([x, x])": lambda x: np.concatenate([x, x]),
    "np.reshape(x, (3, 1))": lambda x: np.reshape(x, (3, 1)),
    "np.linalg.norm(x)": lambda x: np.linalg.norm(x),
    "np.shape(x)[0] * x": lambda x: np.shape(x)[0] * x,
}


@pytest.mark.parametrize("name", NUMPY_ON_TRACERS)
def test_numpy_functions_on_tracers_dispatch_to_fgrad(name):
    """NEP 13/18: np.sin(tracer) & co. run the fgrad.numpy function (traced, differentiable)."""
    f = NUMPY_ON_TRACERS[name]
    x = np.array([0.3, 1.4, 2.2])  # away from kinks (maximum at 0.5, where at 1)
    check_against_numpy(f, f, (x,), modes=TRACED, what=name)
    # The gradient flows through NumPy calls instead of being silently zero.
    g = fg.grad(lambda a: fg.numpy.sum(f(a)))(x)
    eps = 1e-6
    fd = [(np.sum(f(x + eps * e)) - np.sum(f(x - eps * e))) / (2 * eps) for e in np.eye(3)]
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("call", [
    lambda x: np.add.reduce(x), lambda x: np.sin(x, out=np.empty(3)), lambda x: np.fft.fft(x),
    lambda x: np.cumprod(x), lambda x: np.sort(x),
], ids=["ufunc.reduce", "ufunc out=", "np.fft.fft", "np.cumprod", "np.sort"])
def test_unsupported_numpy_calls_on_tracers_raise_clearly(call):
    for transform in (fg.jit, lambda f: fg.grad(lambda a: fg.numpy.sum(f(a)))):
        with pytest.raises(TypeError, match="not supported on traced arrays"):
            transform(call)(np.ones(3))


def test_a_numpy_ufunc_fgrad_lacks_is_not_sent_to_a_missing_fgrad_function():
    # "use the fgrad.numpy function" sent users looking for fnp.hypot, which does not exist
    for call in (lambda x: np.hypot(x, 1.0), lambda x: np.exp2(x)):
        with pytest.raises(TypeError, match="fgrad.numpy has no equivalent"):
            fg.jit(call)(np.ones(3))
    with pytest.raises(TypeError, match=r"use the fgrad.numpy function \(import"):
        fg.jit(lambda x: np.sin(x, out=np.empty(3)))(np.ones(3))  # fnp.sin exists
