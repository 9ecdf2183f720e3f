"""Un-jitted grad at top level records the function and reuses gradient programs."""

import numpy as np
import pytest

import fgrad as fg
import fgrad.numpy as fnp
from fgrad._src import grad_cache


def fresh_cache():
    grad_cache._programs.clear()


def test_same_structure_reuses_one_program():
    fresh_cache()
    g = fg.grad(lambda x: fnp.sum(fnp.tanh(x) * x))
    for k in range(5):
        x = np.linspace(-1, 1, 4) * k
        np.testing.assert_allclose(g(x), (1 - np.tanh(x) ** 2) * x + np.tanh(x))
    assert len(grad_cache._programs) == 1


def test_control_flow_on_values_picks_the_right_program():
    fresh_cache()

    def f(x):
        if x > 0:
            return x ** 3
        return fnp.sin(x)

    g = fg.grad(f)
    assert g(2.0) == 12.0
    assert g(-1.0) == np.cos(-1.0)
    assert g(3.0) == 27.0
    assert len(grad_cache._programs) == 2


def test_loop_count_depends_on_value():
    def f(x):
        y = x
        while fnp.abs(y) < 100:
            y = y * 2
        return y

    g = fg.grad(f)
    assert g(3.0) == 64.0  # 3 * 2**6 = 192
    assert g(30.0) == 4.0  # 30 * 2**2 = 120


def test_changed_closure_constant_is_seen():
    weights = np.array([1.0, 2.0])
    g = fg.grad(lambda x: fnp.sum(x * weights))
    np.testing.assert_allclose(g(np.ones(2)), [1.0, 2.0])
    weights[:] = [5.0, 7.0]
    np.testing.assert_allclose(g(np.ones(2)), [5.0, 7.0])


def test_literals_are_inputs_not_baked_in():
    fresh_cache()
    for c in (2.0, 3.0):
        g = fg.grad(lambda x, c=c: x * c)
        assert g(1.0) == c


def test_has_aux_and_pytrees_on_the_recorded_path():
    def loss(params, x):
        pred = params["w"] * x + params["b"]
        return fnp.sum(pred ** 2), {"pred": pred}

    params = {"w": np.float32(2.0), "b": np.float32(0.5)}
    x = np.arange(3, dtype=np.float32)
    (value, aux), grads = fg.value_and_grad(loss, has_aux=True)(params, x)
    pred = 2.0 * x + 0.5
    np.testing.assert_allclose(value, np.sum(pred ** 2), rtol=1e-6)
    np.testing.assert_allclose(aux["pred"], pred)
    np.testing.assert_allclose(grads["w"], np.sum(2 * pred * x), rtol=1e-6)
    assert grads["w"].dtype == np.float32 and grads["b"].dtype == np.float32


def test_custom_vjp_on_the_recorded_path():
    @fg.custom_vjp
    def scaled(x):
        return x * 1.0

    scaled.defvjp(lambda x: (x * 1.0, None), lambda res, g: (g * 10.0,))
    assert fg.grad(lambda x: scaled(x) * 2.0)(3.0) == 20.0
    assert fg.grad(lambda x: scaled(x) * 2.0)(4.0) == 20.0


def test_recorded_and_traced_paths_agree():
    def f(x):
        return fnp.sum(fnp.logaddexp(x, 2 * x) * fnp.cos(x[::-1]))

    x = np.linspace(-2, 2, 6)
    recorded = fg.grad(f)(x)
    fg.config.update("debug_nans", True)  # debug mode takes the traced path
    try:
        traced = fg.grad(f)(x)
    finally:
        fg.config.update("debug_nans", False)
    np.testing.assert_allclose(recorded, traced, rtol=1e-12)


def test_debug_nans_names_the_primitive_eagerly_and_under_jit():
    import pytest

    fg.config.update("debug_nans", True)
    try:
        for fn in (fg.grad(lambda x: fnp.sum(fnp.log(x))), fg.jit(lambda x: fnp.log(x))):
            with pytest.raises(FloatingPointError, match="'log' produced a NaN"):
                fn(np.array([-1.0, 1.0]))
    finally:
        fg.config.update("debug_nans", False)


def test_debug_nans_covers_the_tensor_facade_forward_and_backward():
    import pytest

    x = fg.tensor([4.0, -1.0], requires_grad=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        fg.log(x)  # a program cached before the flag is set must not skip the check
        fg.config.update("debug_nans", True)
        try:
            with pytest.raises(FloatingPointError, match="'log' produced a NaN"):
                fg.log(x)
            with pytest.raises(FloatingPointError, match="'div' produced a NaN"):
                fg.tensor([0.0]) / fg.tensor([0.0])
            y = fg.tensor([0.0, 4.0], requires_grad=True)
            with pytest.raises(FloatingPointError, match="produced a NaN"):
                (fg.sqrt(y) * 0.0).sum().backward()  # 0 * inf in the backward
        finally:
            fg.config.update("debug_nans", False)
        assert np.isnan(fg.log(x).detach().numpy()[1])  # off again: NaN, no error


def test_config_flags_refuse_bad_values_when_set():
    import pytest

    for name, value in [("debug_nans", "no"), ("log_compiles", 1), ("jit_cache_size", -1),
                        ("jit_cache_size", 0), ("jit_cache_size", "big"),
                        ("jit_cache_size", True), ("backend", "gpu")]:
        with pytest.raises(ValueError, match=name):
            fg.config.update(name, value)
    assert fg.config.read("jit_cache_size") == 256 and fg.config.read("debug_nans") is False
    fg.config.update("debug_nans", np.False_)  # NumPy scalars are taken, as Python's
    fg.config.update("jit_cache_size", np.int64(256))
    assert fg.config.read("debug_nans") is False and type(fg.config.read("jit_cache_size")) is int
    for name in (3, "foo", "interpreter"):
        with pytest.raises(ValueError, match="unknown config flag.*known flags"):
            fg.config.update(name, 1)
        with pytest.raises(ValueError, match="unknown config flag.*known flags"):
            fg.config.read(name)


def test_repeated_structure_reuses_the_functions_program_without_a_lookup():
    fresh_cache()
    g = fg.grad(lambda x: fnp.sum(fnp.tanh(x) * x + fnp.sin(x) ** 2))
    g(np.ones(3))
    fresh_cache()  # the function's own last recording still holds the program
    for k in range(3):
        x = np.linspace(-1, 1, 3) * (k + 1)
        expected = np.tanh(x) + x * (1 - np.tanh(x) ** 2) + 2 * np.sin(x) * np.cos(x)
        np.testing.assert_allclose(g(x), expected)
    assert len(grad_cache._programs) == 0


def test_alternating_control_flow_on_array_values():
    fresh_cache()

    def f(x):
        if fnp.sum(x) > 0:
            return fnp.sum(x ** 3)
        return fnp.sum(fnp.sin(x))

    g = fg.grad(f)
    for sign in (1.0, -1.0, 1.0, -1.0):
        x = sign * np.array([0.5, 1.5])
        want = 3 * x ** 2 if sign > 0 else np.cos(x)
        np.testing.assert_allclose(g(x), want)
    assert len(grad_cache._programs) == 2


def test_changed_input_dtype_or_weakness_is_seen():
    g = fg.grad(lambda x: fnp.sum(x * x))
    assert g(np.ones(2)).dtype == np.float64
    out = g(np.ones(2, np.float32))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [2.0, 2.0])
    h = fg.grad(lambda x: x * 3.0)
    assert h(2.0) == 3.0
    assert h(np.float32(2.0)).dtype == np.float32
    assert h(2.0) == 3.0


def test_changed_closure_constant_shape_is_seen():
    weights = [np.array([1.0, 2.0, 3.0])]
    g = fg.grad(lambda x: fnp.sum(x * weights[0]))
    np.testing.assert_allclose(g(np.ones(3)), [1.0, 2.0, 3.0])
    weights[0] = np.array(4.0)  # now broadcast: another program
    np.testing.assert_allclose(g(np.ones(3)), [4.0, 4.0, 4.0])
    weights[0] = np.array([5.0, 6.0, 7.0], np.float32)  # promoted to float64
    np.testing.assert_allclose(g(np.ones(3)), [5.0, 6.0, 7.0])


def test_a_recording_matches_its_expected_one_only_step_for_step():
    from fgrad._src.interpreters.record import record
    from fgrad._src.lax import lax

    w = np.float64(2.0)
    _, first = record(lambda x: [lax.mul(lax.sin(x), w)], [np.float64(1.0)])
    _, same = record(lambda x: [lax.mul(lax.sin(x), w)], [np.float64(3.0)], first.skeleton())
    assert same.matches(same.expected)
    assert same.key([3]) == first.key([3])
    variants = [
        lambda x: [lax.mul(w, lax.sin(x))],  # the constant enters before sin
        lambda x: [lax.mul(lax.cos(x), w)],  # another primitive
        lambda x: [lax.mul(lax.sin(x), np.float32(2.0))],  # another constant aval
        lambda x: [lax.mul(lax.sin(x), w), lax.sin(x)],  # one equation more
        lambda x: [lax.sin(x)],  # one equation fewer
    ]
    for f in variants:
        expected = first.skeleton()
        _, other = record(f, [np.float64(1.0)], expected)
        assert not other.matches(expected)
    _, other = record(lambda x: [lax.mul(lax.sin(x), w)], [np.float32(1.0)], first.skeleton())
    assert other.expected is None  # another input aval


def test_value_and_grad_with_aux_on_the_one_array_path():
    def loss(x):
        y = fnp.tanh(x)
        return fnp.sum(y * y), (y, {"n": 2})

    vg = fg.value_and_grad(loss, has_aux=True)
    for k in range(2):
        x = np.linspace(-1, 1, 4) + k
        (value, (y, extra)), grad = vg(x)
        np.testing.assert_allclose(value, np.sum(np.tanh(x) ** 2))
        np.testing.assert_allclose(y, np.tanh(x))
        assert extra == {"n": 2}
        np.testing.assert_allclose(grad, 2 * np.tanh(x) * (1 - np.tanh(x) ** 2))


def test_errors_on_the_one_array_path():
    import pytest

    with pytest.raises(TypeError, match="scalar output"):
        fg.grad(lambda x: x * 2.0)(np.ones(3))
    with pytest.raises(TypeError, match="single scalar"):
        fg.grad(lambda x: (fnp.sum(x), fnp.sum(x)))(np.ones(3))
    with pytest.raises(TypeError, match="requires the function to return a pair"):
        fg.grad(lambda x: fnp.sum(x), has_aux=True)(np.ones(3))
    with pytest.raises(TypeError, match="floating-point inputs"):
        fg.grad(lambda x: fnp.sum(x))(np.ones(3, np.int64))


def _uses_a_buffer_twice(x):
    # A scratch array written into between its uses: each use must see the values it
    # had then (HIPS autograd's answer), not the last ones.
    total = 0.0
    buf = np.zeros(3)
    for i in range(3):
        buf[:] = 0.0
        buf[i] = 1.0
        total = total + fnp.sum(x * buf) ** (i + 1)
    return total


def test_a_constant_written_into_after_its_use_keeps_the_value_it_was_used_with():
    x = np.array([1.0, 2.0, 3.0])
    want = np.array([1.0, 2 * 2.0, 3 * 3.0 ** 2])  # x0 + x1**2 + x2**3
    np.testing.assert_allclose(fg.grad(_uses_a_buffer_twice)(x), want)
    np.testing.assert_allclose(fg.jit(fg.grad(_uses_a_buffer_twice))(x), want)
    np.testing.assert_allclose(np.diag(fg.hessian(_uses_a_buffer_twice)(x)), [0.0, 2.0, 18.0])
    np.testing.assert_allclose(fg.vmap(_uses_a_buffer_twice)(np.stack([x, 2 * x])),
                               [32.0, 2.0 + 16.0 + 216.0])
    assert fg.jit(_uses_a_buffer_twice)(x) == 32.0


class _Subclass(np.ndarray):
    pass


@pytest.mark.parametrize("kind", ["read-only view", "subclass"])
def test_read_only_views_and_subclasses_keep_the_values_they_were_used_with(kind):
    # Only plain writeable arrays were copied: these still changed under the program.
    x = np.array([1.0, 2.0, 3.0])
    buf = np.ones(3)
    const = np.broadcast_to(buf, (3,)) if kind == "read-only view" else buf.view(_Subclass)

    def f(x):
        first = fnp.sum(x * const)
        buf[:] = 2.0
        return first + fnp.sum(x * const)

    for gradient in (fg.grad(f), fg.jit(fg.grad(f)), lambda x: fg.value_and_grad(f)(x)[1]):
        buf[:] = 1.0
        np.testing.assert_allclose(gradient(x), [3.0, 3.0, 3.0])
    buf[:] = 1.0
    assert float(fg.jit(f)(x)) == 6.0 + 12.0


def test_a_large_constant_is_read_only_while_grad_records_it():
    data = np.ones(100_000)  # too large to copy on every call: pinned instead

    def writes_after_use(x):
        y = fnp.sum(x * data)
        data[0] = 2.0
        return y

    with pytest.raises(ValueError, match="wrote into a NumPy array after using it"):
        fg.grad(writes_after_use)(np.ones(100_000))
    assert data.flags.writeable and data[0] == 1.0  # released after the call
    np.testing.assert_array_equal(fg.grad(lambda x: fnp.sum(x * data))(np.ones(100_000)), data)
    assert data.flags.writeable


def test_a_large_view_written_through_its_base_keeps_the_value_it_was_used_with():
    base = np.zeros(20_000)
    view = base[:10_000]  # 80 kB: a view is copied, since its base could still be written

    def f(x):
        base[:] = 2.0
        first = fnp.sum(x * view)
        base[:] = 3.0
        return first * fnp.sum(x * view)

    np.testing.assert_allclose(fg.grad(f)(np.ones(10_000))[:3], [120_000.0] * 3)


def test_tensor_op_staged_while_debug_nans_switches_on_is_not_kept(monkeypatch):
    # Another thread may switch debug_nans on while an op is being staged without checks,
    # its cache clear landing before the op is stored: that op must not stay cached.
    import pytest

    from fgrad._src.tensor import dispatch

    stage = dispatch._stage

    def stage_then_switch(*args):
        entry = stage(*args)
        fg.config.update("debug_nans", True)  # what the other thread does meanwhile
        return entry

    dispatch._cache.clear()  # so the op below is staged anew
    monkeypatch.setattr(dispatch, "_stage", stage_then_switch)
    try:
        with np.errstate(invalid="ignore"):
            fg.ones(11).sqrt()  # an op of a new shape, staged before the switch
            monkeypatch.undo()
            with pytest.raises(FloatingPointError, match="'sqrt' produced a NaN"):
                fg.full((11,), -1.0).sqrt()
    finally:
        monkeypatch.undo()
        fg.config.update("debug_nans", False)
