"""fg.jit's keyword arguments, ``static_argnames`` and ``donate_argnums``.

Donation is checked against the same function jitted without it: the results must be
equal whatever the program reads and writes, the donated array may hold the result
(and does, for a large folded update), and every other argument stays untouched.
"""

import functools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fgrad as fg
import fgrad.numpy as fnp
from fgrad._src.backend import interp
from fgrad._src.backend.lower import DIRECT_MIN


def counting(f):
    calls = {"n": 0}

    @functools.wraps(f)  # so fg.jit sees f's parameters (as JAX's jit would)
    def wrapped(*args, **kwargs):
        calls["n"] += 1
        return f(*args, **kwargs)

    return wrapped, calls


# --------------------------------------------------------------------------- keywords


def test_keyword_arguments_are_traced():
    f, calls = counting(lambda x, y=1.0, *, scale: (x * y) * scale)
    jf = fg.jit(f)
    x = np.arange(3.0)
    np.testing.assert_allclose(jf(x, y=np.float64(2.0), scale=np.ones(3)), x * 2.0)
    np.testing.assert_allclose(jf(x, y=np.float64(5.0), scale=np.ones(3)), x * 5.0)
    assert calls["n"] == 1  # a new value of a traced keyword does not retrace
    np.testing.assert_allclose(jf(x, y=np.ones(3), scale=np.ones(3)), x)
    assert calls["n"] == 2  # a new shape does
    np.testing.assert_allclose(jf(x=x, scale=np.float64(3.0)), x * 3.0)


def test_keyword_pytrees_and_grad():
    def loss(params, *, data):
        return fnp.sum((data["x"] @ params["w"] - data["y"]) ** 2)

    params = {"w": np.array([1.0, -1.0])}
    data = {"x": np.array([[1.0, 2.0], [3.0, 4.0]]), "y": np.array([0.5, 1.5])}
    want = fg.grad(loss)(params, data=data)
    got = fg.jit(fg.grad(loss))(params, data=data)
    np.testing.assert_allclose(got["w"], want["w"])
    # grad through a jitted function called with keywords
    inner = fg.jit(loss)
    np.testing.assert_allclose(fg.grad(lambda p: inner(p, data=data))(params)["w"], want["w"])


def test_static_argnames_hash_by_value_by_name_or_position():
    f, calls = counting(lambda x, power=2: x ** power)
    jf = fg.jit(f, static_argnames="power")
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(jf(x, power=3), x ** 3)
    np.testing.assert_allclose(jf(x, 3), x ** 3)  # the same parameter, passed by position
    np.testing.assert_allclose(jf(x), x ** 2)  # the default, which Python fills in
    assert calls["n"] == 3
    jf(x, power=3)
    assert calls["n"] == 3
    with pytest.raises(ValueError, match="'power' has unhashable type list"):
        jf(x, power=[3])


def test_static_values_that_compare_equal_but_compute_differently_are_kept_apart():
    # 0.0 == -0.0 and (1,) == (1.0,): each reused the other's program before.
    divide = fg.jit(lambda x, s: x / s, static_argnums=1)
    with np.errstate(divide="ignore"):
        assert divide(np.ones(2), 0.0).tolist() == [np.inf, np.inf]
        assert divide(np.ones(2), -0.0).tolist() == [-np.inf, -np.inf]
    first = fg.jit(lambda x, s: x + s[0], static_argnums=1)
    x = np.ones(2, np.int32)
    assert first(x, (1,)).dtype == np.int32 and first(x, (1.0,)).dtype == np.float64
    f, calls = counting(lambda x, s: x * s)
    scaled = fg.jit(f, static_argnums=1)
    for _ in range(2):
        assert np.isnan(scaled(np.ones(1), float("nan"))).all()
    assert calls["n"] == 1  # a nan static is found again (nan != nan)


def test_static_argnums_also_apply_by_name():
    f, calls = counting(lambda x, shape: fnp.reshape(x, shape))
    jf = fg.jit(f, static_argnums=1)
    x = np.arange(6.0)
    assert jf(x, shape=(2, 3)).shape == (2, 3)
    assert jf(x, (3, 2)).shape == (3, 2)
    assert calls["n"] == 2


# --------------------------------------------------------------------------- donation

BIG = DIRECT_MIN  # elements: arrays this large are used in place


def sgd(params, a, g, lr=0.1):
    return {k: params[k] - lr * (a.T @ g) for k in params}


def test_donated_parameters_are_updated_in_place():
    rng = np.random.default_rng(0)
    a, g = rng.standard_normal((16, 64)), rng.standard_normal((16, 48))
    p0 = rng.standard_normal((64, 48))
    assert p0.size >= BIG
    want = sgd({"w": p0}, a, g)["w"]
    step = fg.jit(sgd, donate_argnums=0)
    for _ in range(2):  # the first call traces, the second takes the hot path
        params = {"w": p0.copy()}
        a_before, g_before = a.copy(), g.copy()
        out = step(params, a, g)
        np.testing.assert_allclose(out["w"], want, rtol=1e-12)
        assert out["w"] is params["w"]  # the donated array holds the result
        np.testing.assert_array_equal(a, a_before)
        np.testing.assert_array_equal(g, g_before)
    closed = step.lower({"w": p0}, a, g)[0][0]
    prog = interp.program_for(closed)
    assert prog.aliased == {0: 0}
    assert "sub" not in prog.op_names  # no copy of p into a new output


def test_without_donation_arguments_are_untouched():
    rng = np.random.default_rng(1)
    a, g = rng.standard_normal((16, 64)), rng.standard_normal((16, 48))
    params = {"w": rng.standard_normal((64, 48))}
    before = params["w"].copy()
    out = fg.jit(sgd)(params, a, g)
    assert out["w"] is not params["w"]
    np.testing.assert_array_equal(params["w"], before)


def test_donated_array_that_cannot_be_written_still_gives_the_result():
    rng = np.random.default_rng(2)
    a, g = rng.standard_normal((16, 64)), rng.standard_normal((16, 48))
    p = rng.standard_normal((64, 48))
    want = sgd({"w": p}, a, g)["w"]
    step = fg.jit(sgd, donate_argnums=0)
    frozen = p.copy()
    frozen.flags.writeable = False
    np.testing.assert_allclose(step({"w": frozen}, a, g)["w"], want, rtol=1e-12)
    np.testing.assert_array_equal(frozen, p)
    strided = np.asfortranarray(p)  # not C-contiguous: copied in, result copied out
    np.testing.assert_allclose(step({"w": strided}, a, g)["w"], want, rtol=1e-12)


def test_donated_array_shared_with_another_argument_is_not_overwritten_early():
    # ``a`` is read by the product that writes the result: writing into the donated
    # array while ``a`` is the same memory would corrupt the product.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 64))

    def f(p, a):
        return p - 0.5 * (a.T @ a)

    want = f(x, x)
    step = fg.jit(f, donate_argnums=0)
    same = x.copy()
    np.testing.assert_allclose(step(same, same), want, rtol=1e-12)
    view = x.copy()
    np.testing.assert_allclose(step(view, view[:, :]), want, rtol=1e-12)


PROGRAMS = {
    # the donated input is read again after the output is first written
    "read after": lambda p, q: (p * 2.0, p + q),
    "elementwise in place": lambda p, q: fnp.exp(p) - q,
    "read first, written later": lambda p, q: fnp.sum(p) * q + 1.0,
    "fused group": lambda p, q: (fnp.sin(q) * 2.0 + 1.0, p * 3.0),
    "returned as is": lambda p, q: (p, q * 2.0),
    "product then reuse": lambda p, q: (q - 0.1 * (q @ p.T) @ p, p @ p.T),
    "two outputs, one input": lambda p, q: (fnp.tanh(q), fnp.cos(q) + 1.0),
    "transpose of the input": lambda p, q: (q @ q.T, fnp.transpose(p) * 1.0),
    # sin and cos of one value become one op at the earlier one's place: the later
    # one's write moves ahead of reads of the donated input
    "sin and cos paired": lambda p, q: (fnp.sin(q) * p, fnp.cos(q)),
    "cos and sin paired": lambda p, q: (fnp.cos(q) * p, fnp.sin(q)),
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
@pytest.mark.parametrize("n", [3, 64], ids=["small", "large"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_donation_never_changes_results(name, n, dtype):
    f = PROGRAMS[name]
    rng = np.random.default_rng(4)
    p = rng.standard_normal((n, n)).astype(dtype)
    q = rng.standard_normal((n, n)).astype(dtype)
    want = fg.jit(f)(p, q)
    donated_p, donated_q = p.copy(), q.copy()
    got = fg.jit(f, donate_argnums=(0, 1))(donated_p, donated_q)
    for w, o in zip(fg.tree_util.tree_leaves(want), fg.tree_util.tree_leaves(got)):
        np.testing.assert_array_equal(o, w)


@given(
    ops=st.lists(st.sampled_from(["add", "mul", "matmul", "fold", "sin", "sum"]),
                 min_size=1, max_size=6),
    n=st.sampled_from([2, 48]),
)
def test_donation_matches_the_undonated_program(ops, n):
    def f(p, q):
        x, outs = q, []
        for op in ops:
            if op == "add":
                x = x + p
            elif op == "mul":
                x = x * 0.5
            elif op == "matmul":
                x = x @ p
            elif op == "fold":
                x = p - 0.25 * (x.T @ q)
            elif op == "sin":
                x = fnp.sin(x)
            else:
                outs.append(fnp.sum(x))
        return (x, *outs)

    rng = np.random.default_rng(n)
    p, q = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    want = fg.jit(f)(p, q)
    got = fg.jit(f, donate_argnums=(0, 1))(p.copy(), q.copy())
    for w, o in zip(want, got):
        np.testing.assert_allclose(o, w, rtol=1e-12, atol=1e-12)


def test_donation_composes_and_is_ignored_under_transforms():
    def loss(p, a):
        return fnp.sum((a @ p) ** 2)

    rng = np.random.default_rng(5)
    p, a = rng.standard_normal((48, 48)), rng.standard_normal((48, 48))
    jloss = fg.jit(loss, donate_argnums=0)
    before = p.copy()
    np.testing.assert_allclose(fg.grad(jloss)(p, a), 2 * a.T @ (a @ p), rtol=1e-10)
    np.testing.assert_array_equal(p, before)  # under grad nothing runs in place
    previous = fg.config.read("backend")
    fg.config.update("backend", "reference")
    try:
        np.testing.assert_allclose(fg.jit(sgd, donate_argnums=0)({"w": p}, a, a)["w"],
                                   sgd({"w": before}, a, a)["w"], rtol=1e-12)
    finally:
        fg.config.update("backend", previous)


def test_bad_argnums_are_clear_errors():
    with pytest.raises(ValueError, match="both static and donated"):
        fg.jit(lambda x, n: x, static_argnums=1, donate_argnums=(0, 1))
    with pytest.raises(TypeError, match="donate_argnums must be an int or a tuple"):
        fg.jit(lambda x: x, donate_argnums=1.5)
    with pytest.raises(ValueError, match="must be ints"):
        fg.jit(lambda x: x, static_argnums=("x",))
    with pytest.raises(ValueError, match=r"static_argnums=\(3,\) names argument 3, but "
                                         r"<lambda> takes 1 positional"):
        fg.jit(lambda x: x, static_argnums=3)
    with pytest.raises(ValueError, match="donate_argnums"):
        fg.jit(lambda x, y=1: x, donate_argnums=(0, 2))
    fg.jit(lambda *xs: xs[0], static_argnums=3)  # any position may exist
    with pytest.raises(ValueError, match=r"static_argnames \['y'\] are not parameters"):
        fg.jit(lambda x: x, static_argnames="y")
    with pytest.raises(TypeError, match="static_argnames must be a str or a tuple of str"):
        fg.jit(lambda x: x, static_argnames=0)
    fg.jit(lambda x, **options: x, static_argnames="y")  # any keyword may exist


def test_negative_static_and_donated_argnums_count_from_the_end():
    scale = fg.jit(lambda x, n: x * n, static_argnums=-1)
    np.testing.assert_array_equal(scale(np.ones(2), 3), [3.0, 3.0])
    step = fg.jit(lambda p, g: p - g, donate_argnums=-2)
    np.testing.assert_array_equal(step(np.ones(2), np.ones(2)), [0.0, 0.0])
    with pytest.raises(ValueError, match="not known"):
        fg.jit(lambda *a: a[0], static_argnums=-1)
    with pytest.raises(ValueError, match="out of range"):
        fg.jit(lambda x: x, static_argnums=-2)


def test_log_compiles_shows_changed_static_values_as_written(caplog):
    import logging

    jitted = fg.jit(lambda x, s: x * s[0], static_argnums=1)
    fg.config.update("log_compiles", True)
    try:
        with caplog.at_level(logging.WARNING, logger="fgrad"):
            jitted(np.ones(2), (1.5, 2))
            jitted(np.ones(2), (-0.0, 3))
    finally:
        fg.config.update("log_compiles", False)
    assert "static arguments changed to ((-0.0, 3))" in caplog.text  # not the key's bytes



@pytest.mark.parametrize("backend", ["numba", "reference"])
@pytest.mark.parametrize("n", [3, DIRECT_MIN])
def test_big_endian_arrays_compute_in_native_dtypes(backend, n):
    # An array read from a file may be big-endian (">f8"): its values are float64 ones,
    # and every result is a native array, as NumPy's own results are.
    previous = fg.config.read("backend")
    fg.config.update("backend", backend)
    try:
        _check_big_endian_arguments(n)
    finally:
        fg.config.update("backend", previous)


def _check_big_endian_arguments(n):
    x = np.linspace(-1.0, 2.0, n).astype(">f8")
    y = np.linspace(0.5, 1.5, n).astype(">f4")
    native = x.astype(np.float64)
    results = {
        "jit one output": (fg.jit(lambda x: -x * 2.0 + 1.0)(x), -native * 2.0 + 1.0),
        "jit two outputs": (fg.jit(lambda x, y: (x * y, x - y))(x, x)[0], native * native),
        "jit mixed": (fg.jit(lambda x, y: x + y)(x, y), native + y.astype(np.float32)),
        "grad": (fg.grad(lambda x: fnp.sum(x * x))(x), 2 * native),
        "eager": (fnp.sin(x), np.sin(native)),
        "vmap": (fg.vmap(lambda v: v * 2.0)(x), native * 2.0),
        "closure": (fg.jit(lambda z: z * x)(np.ones(n)), native),
    }
    for name, (got, want) in results.items():
        assert got.dtype.isnative, name
        assert got.dtype == np.result_type(want), name
        np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=name)
