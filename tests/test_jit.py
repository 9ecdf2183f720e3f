"""fg.jit: cache keys, retracing, static arguments, composition, errors, threads."""

import functools
import logging
import threading

import numpy as np
import pytest
from core_checks import run_in_threads

import fgrad as fg
import fgrad.numpy as fnp


def counting(f):
    """Wrap ``f`` so the number of Python traces is observable."""
    calls = {"n": 0}

    def wrapped(*args):
        calls["n"] += 1
        return f(*args)

    return wrapped, calls


def test_same_signature_traces_once():
    f, calls = counting(lambda x: fnp.sum(fnp.tanh(x) * x))
    jf = fg.jit(f)
    x = np.linspace(-1, 1, 5)
    np.testing.assert_allclose(jf(x), np.sum(np.tanh(x) * x))
    jf(x + 1.0)
    jf(np.zeros(5))
    assert calls["n"] == 1


@pytest.mark.parametrize(
    "second",
    [np.ones(4), np.ones(3, np.float32), np.ones((3, 1))],
    ids=["new shape", "new dtype", "new rank"],
)
def test_new_shape_or_dtype_retraces(second):
    f, calls = counting(lambda x: x * 2)
    jf = fg.jit(f)
    jf(np.ones(3))
    out = jf(second)
    assert calls["n"] == 2
    assert out.dtype == second.dtype and out.shape == second.shape


def test_new_structure_retraces():
    f, calls = counting(lambda p: sum(fnp.sum(v) for v in fg.tree_util.tree_leaves(p)))
    jf = fg.jit(f)
    jf({"a": np.ones(2)})
    jf({"a": np.ones(2), "b": np.ones(2)})
    jf([np.ones(2)])
    assert calls["n"] == 3


def test_python_scalars_do_not_retrace_on_value():
    f, calls = counting(lambda x, s: x * s)
    jf = fg.jit(f)
    jf(np.ones(2), 2.0)
    np.testing.assert_allclose(jf(np.ones(2), 3.0), [3.0, 3.0])
    assert calls["n"] == 1


def test_python_scalars_take_the_hot_path_apart_from_numpy_scalars():
    # A Python float is weakly typed, a NumPy float64 is not; both are hot-path keys, and
    # NumPy's dtype('float64') == float must not let one signature take the other's
    # program.
    f, calls = counting(lambda x, s: x * s)
    jf = fg.jit(f)
    x = np.ones(2, np.float32)
    assert jf(x, 2.0).dtype == np.float32
    assert jf(x, np.float64(2.0)).dtype == np.float64
    assert jf(x, 2.0).dtype == np.float32
    assert jf(x, 3).dtype == np.float32
    np.testing.assert_array_equal(jf(x, True), [1.0, 1.0])
    np.testing.assert_array_equal(jf(x, 0.5), [0.5, 0.5])
    assert calls["n"] == 4
    assert len(jf._state._fast) == 4  # each signature was remembered on the hot path


def test_static_args_are_hashed_by_value():
    f, calls = counting(lambda x, n: x * n if n > 0 else -x)
    jf = fg.jit(f, static_argnums=1)
    np.testing.assert_allclose(jf(np.ones(2), 3), [3.0, 3.0])
    np.testing.assert_allclose(jf(np.ones(2), 3), [3.0, 3.0])
    np.testing.assert_allclose(jf(np.ones(2), -1), [-1.0, -1.0])
    assert calls["n"] == 2


def test_unhashable_static_arg_is_a_clear_error():
    jf = fg.jit(lambda x, shape: x, static_argnums=1)
    with pytest.raises(ValueError, match="unhashable.*tuple instead of a list"):
        jf(np.ones(2), [1, 2])


def test_concretization_error_names_line_and_fix():
    def f(x):
        if x > 0:  # the offending line
            return x
        return -x

    with pytest.raises(fg.errors.ConcretizationError) as info:
        fg.jit(f)(1.0)
    message = str(info.value)
    assert "if x > 0:  # the offending line" in message
    assert "fnp.where" in message and "static_argnums" in message
    assert isinstance(info.value, TypeError)


def test_cache_is_bounded():
    fg.config.update("jit_cache_size", 4)
    try:
        jf = fg.jit(lambda x: x + 1)
        for n in range(10):
            jf(np.ones(n))
        assert len(jf._state._cache) == 4
    finally:
        fg.config.update("jit_cache_size", 256)


def test_log_compiles_reports_the_reason(caplog):
    fg.config.update("log_compiles", True)
    try:
        jf = fg.jit(lambda x: x + 1)
        with caplog.at_level(logging.WARNING, logger="fgrad"):
            jf(np.ones(2))
            jf(np.ones(3))
            jf(np.ones(3))
    finally:
        fg.config.update("log_compiles", False)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "first call" in messages[0]
    assert "f64[2] -> f64[3]" in messages[1]


def f_compose(x):
    return fnp.sum(fnp.sin(x) * x ** 2)


@pytest.mark.parametrize(
    "transform",
    [
        lambda f: fg.jit(fg.grad(f)),
        lambda f: fg.grad(fg.jit(f)),
        lambda f: fg.jit(fg.jit(fg.grad(f))),
        lambda f: fg.grad(fg.jit(fg.jit(f))),
        lambda f: fg.jit(fg.grad(fg.jit(f))),
    ],
    ids=["jit(grad)", "grad(jit)", "jit(jit(grad))", "grad(jit(jit))", "jit(grad(jit))"],
)
def test_jit_composes_with_grad(transform):
    x = np.linspace(-2, 2, 7)
    expected = np.cos(x) * x ** 2 + 2 * x * np.sin(x)
    np.testing.assert_allclose(transform(f_compose)(x), expected, rtol=1e-12)


def test_hessian_of_jit_and_jit_of_hessian_agree():
    x = np.array([0.3, -0.7, 1.1])
    h1 = fg.jit(fg.hessian(f_compose))(x)
    h2 = fg.hessian(fg.jit(f_compose))(x)
    np.testing.assert_allclose(h1, h2, rtol=1e-12)


def test_jit_keeps_dtype_and_pytree_outputs():
    jf = fg.jit(lambda p: {"y": p["x"] * 2, "z": (p["x"].sum(),)})
    out = jf({"x": np.ones(3, np.float32)})
    assert out["y"].dtype == np.float32 and out["z"][0].dtype == np.float32


def test_closure_change_is_seen_by_ungjitted_grad():
    scale = {"value": 2.0}

    def f(x):
        return fnp.sum(x * scale["value"])

    g = fg.grad(f)
    np.testing.assert_allclose(g(np.ones(2)), [2.0, 2.0])
    scale["value"] = 5.0
    np.testing.assert_allclose(g(np.ones(2)), [5.0, 5.0])


@pytest.mark.parametrize("n", [9, 5000], ids=["copied", "in place"])
def test_threads_share_one_jitted_program(n):
    jf = fg.jit(fg.grad(f_compose))
    xs = [np.linspace(-1, 1, n) * (k + 1) for k in range(4)]
    expected = [np.cos(x) * x ** 2 + 2 * x * np.sin(x) for x in xs]
    errors = []

    def worker(k):
        try:
            for _ in range(50):
                np.testing.assert_allclose(jf(xs[k]), expected[k], rtol=1e-12)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_threads_evicting_the_caches_get_results_not_key_errors():
    import doctest

    from fgrad._src import lru

    assert doctest.testmod(lru).failed == 0
    grad = fg.grad(lambda x: fnp.sum(fnp.sin(x) * x))
    jitted = fg.jit(lambda x, y: fnp.sin(x) * y)
    errors = []

    def worker(seed):
        rng = np.random.default_rng(seed)
        for _ in range(150):
            x = rng.normal(size=int(rng.integers(1, 8)))
            try:
                np.testing.assert_allclose(grad(x), np.cos(x) * x + np.sin(x), rtol=1e-12)
                np.testing.assert_allclose(jitted(x, x), np.sin(x) * x, rtol=1e-12)
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

    # NB: a tiny cache and frequent thread switches make evictions race with lookups.
    fg.config.update("jit_cache_size", 2)
    try:
        run_in_threads([functools.partial(worker, k) for k in range(6)], switch_interval=1e-6)
    finally:
        fg.config.update("jit_cache_size", 256)
    assert not errors, errors[0]


def test_reference_backend_switch_gives_same_result():
    x = np.linspace(-1, 1, 4)
    jf = fg.jit(fg.grad(f_compose))
    fast = jf(x)
    previous = fg.config.read("backend")
    fg.config.update("backend", "reference")
    try:
        np.testing.assert_allclose(jf(x), fast, rtol=1e-12)
    finally:
        fg.config.update("backend", previous)
    with pytest.raises(ValueError, match="backend"):
        fg.config.update("backend", "gpu")


def test_hot_path_follows_signature_and_config():
    f, calls = counting(lambda x: fnp.sin(x) * 2.0)
    jf = fg.jit(f)
    a, b = np.linspace(0, 1, 3), np.linspace(0, 1, 4)
    c = a.astype(np.float32)
    for x in [a, a, a, b, a, c, c, a, a[::-1], a.reshape(3, 1), a.reshape(3, 1)]:
        out = jf(x)
        np.testing.assert_allclose(out, np.sin(x) * 2.0, rtol=1e-6)
        assert out.dtype == x.dtype and out.shape == x.shape
    assert calls["n"] == 4  # (3,) f64, (4,) f64, (3,) f32, (3, 1) f64
    # A config change reaches a signature that is already on the hot path.
    bad = np.array([np.inf, 0.0, 1.0])
    jf(bad)
    fg.config.update("debug_nans", True)
    try:
        with pytest.raises(FloatingPointError), np.errstate(invalid="ignore"):
            jf(bad)
    finally:
        fg.config.update("debug_nans", False)
    assert np.isnan(jf(bad)[0])


def test_a_python_int_beyond_int64_is_a_named_error_on_every_backend():
    f = fg.jit(lambda x, y: y * x)
    for backend in ("numba", "reference"):
        fg.config.update("backend", backend)
        try:
            with pytest.raises(OverflowError, match="does not fit in int64.*static_argnums"):
                f(2 ** 70, np.ones(2))
            assert f(2 ** 62, np.ones(2)).tolist() == [2.0 ** 62] * 2
        finally:
            fg.config.update("backend", "numba")


def test_jit_captures_closed_over_arrays_when_it_traces():
    weights = np.array([1.0, 2.0])
    jf = fg.jit(lambda x: fnp.sum(x * weights))
    assert jf(np.ones(2)) == 3.0
    weights[:] = [5.0, 7.0]  # as in JAX: the traced program keeps the values it saw
    assert jf(np.ones(2)) == 3.0
    assert fg.jit(lambda x: fnp.sum(x * weights))(np.ones(2)) == 12.0


def test_a_trace_closing_over_an_enclosing_transforms_tracer_is_not_reused():
    # A jitted function reading a value another transform is tracing (through a global)
    # holds that tracer as a constant: valid for that call only, so it is not cached.
    seen = {}

    @fg.jit
    def scaled(z):
        return z * seen["y"]

    def under_vmap(y):
        seen["y"] = y
        return scaled(np.ones(()))

    np.testing.assert_array_equal(fg.vmap(under_vmap)(np.arange(3.0)), [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(fg.vmap(under_vmap)(np.arange(3.0) * 10), [0.0, 10.0, 20.0])
    assert float(fg.grad(lambda y: under_vmap(y) * 3.0)(5.0)) == 3.0
    seen["y"] = 2.0
    assert float(scaled(np.ones(()))) == 2.0


def test_a_tracer_of_a_finished_transform_is_an_escaped_tracer_when_lifted():
    saved = []
    fg.vmap(lambda y: saved.append(y) or y)(np.arange(3.0))

    def outer(x):  # the inner trace would take the saved vmap tracer as a constant
        return fg.make_jaxpr(lambda z: z * saved[0])(x)

    with pytest.raises(fg.errors.UnexpectedTracerError, match="Escaped tracer"):
        fg.make_jaxpr(outer)(1.0)
