"""Batching (``interpreters/batching.py``) and the batched Jacobians built on it.

* Every primitive: evaluating a one-equation jaxpr with stacked (batched) operands
  equals a Python loop of ordinary evaluations over the batch, for random shapes
  (0-d and size-1 dims, batch sizes 0 and 1), float32/float64 and every combination of
  batched and unbatched operands; also when the batched evaluation is itself staged.
  A test fails when a primitive has no case here.
* jacfwd / jacrev / hessian against the one-basis-vector-at-a-time definitions
  (jvp / vjp per basis vector) and finite differences, under jit too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fgrad as fg
import fgrad.numpy as fnp
from fgrad._src import core, nn_ops
from fgrad._src.core import ShapedArray
from fgrad._src.custom_derivatives import custom_lin_p
from fgrad._src.interpreters import ad
from fgrad._src.interpreters.batching import batch_eval_jaxpr, batch_rules
from fgrad._src.interpreters.partial_eval import trace_to_jaxpr
from fgrad._src.lax import lax
from fgrad.bench.workloads import rosenbrock
from fgrad.tree_util import tree_leaves

F32, F64, I64, BOOL = (np.dtype(d) for d in ("float32", "float64", "int64", "bool"))

# --------------------------------------------------------------------------- cases


@dataclasses.dataclass
class Operand:
    shape: tuple
    dtype: np.dtype
    domain: str = "real"  # how values are sampled, see sample()


@dataclasses.dataclass
class Case:
    fun: Callable  # operands -> list of outputs
    operands: list


def sample(rng, operand, batch_shape):
    shape = batch_shape + tuple(operand.shape)
    domain, dtype = operand.domain, operand.dtype
    if dtype == BOOL:
        return rng.random(shape) < 0.5
    if domain.startswith("index"):  # "index:n" samples [0, n); "start:n" may fall outside
        return rng.integers(0, int(domain.split(":")[1]), shape).astype(dtype)
    if domain.startswith("start"):
        n = int(domain.split(":")[1])
        return rng.integers(-1, n + 2, shape).astype(dtype)
    if dtype.kind in "iu":
        return rng.integers(-4, 5, shape).astype(dtype)
    values = {
        "real": lambda: rng.uniform(-2, 2, shape),
        "ties": lambda: rng.integers(-2, 3, shape).astype(float),  # equal values happen
        "pos": lambda: rng.uniform(0.5, 2, shape),
        "unit": lambda: rng.uniform(-0.9, 0.9, shape),
        "ge1": lambda: rng.uniform(1.1, 3, shape),
        "nonzero": lambda: rng.choice([-1, 1], shape) * rng.uniform(0.5, 2, shape),
    }[domain]()
    return np.asarray(values, dtype)


def shapes(min_dims=0, max_dims=3):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=3)


floats = st.sampled_from([F32, F64])


def bind(prim, **params):
    return lambda *xs: prim.bind_list(*xs, **params)


def unary(prim, domain="real", **params):
    @st.composite
    def case(draw):
        return Case(bind(prim, **params), [Operand(draw(shapes()), draw(floats), domain)])

    return case


def binary(prim, x_domain="real", y_domain="real", dtypes=floats):
    @st.composite
    def case(draw):
        shape, dtype = draw(shapes()), draw(dtypes)
        return Case(bind(prim), [Operand(shape, dtype, x_domain), Operand(shape, dtype, y_domain)])

    return case


@st.composite
def integer_pow_case(draw):
    y = draw(st.integers(-2, 3))
    return Case(bind(lax.integer_pow_p, y=y),
                [Operand(draw(shapes()), draw(floats), "pos" if y < 0 else "real")])


@st.composite
def not_case(draw):
    return Case(bind(lax.not_p), [Operand(draw(shapes()), draw(st.sampled_from([BOOL, I64])))])


@st.composite
def select_n_case(draw):
    shape, dtype = draw(shapes()), draw(floats)
    which_shape = draw(st.sampled_from([(), shape]))
    if draw(st.booleans()):
        which, n = Operand(which_shape, BOOL), 2
    else:
        n = draw(st.integers(1, 3))
        which = Operand(which_shape, I64, f"index:{n}")
    return Case(bind(lax.select_n_p), [which] + [Operand(shape, dtype) for _ in range(n)])


@st.composite
def convert_case(draw):
    new_dtype = draw(st.sampled_from([F32, F64, I64, BOOL]))
    params = dict(new_dtype=new_dtype, weak_type=False)
    return Case(bind(lax.convert_element_type_p, **params),
                [Operand(draw(shapes()), draw(floats))])


@st.composite
def broadcast_in_dim_case(draw):
    out_shape = draw(shapes())
    kept = sorted(draw(st.sets(st.sampled_from(range(len(out_shape))))) if out_shape else [])
    operand_shape = tuple(draw(st.sampled_from([out_shape[d], 1])) for d in kept)
    params = dict(shape=out_shape, broadcast_dimensions=tuple(kept))
    return Case(bind(lax.broadcast_in_dim_p, **params), [Operand(operand_shape, draw(floats))])


@st.composite
def reshape_case(draw):
    shape = draw(shapes())
    size = int(np.prod(shape))
    new_sizes = draw(st.sampled_from([(size,), shape[::-1], (1, *shape), (*shape, 1), ()]))
    if int(np.prod(new_sizes)) != size:
        new_sizes = (size,)
    return Case(bind(lax.reshape_p, new_sizes=tuple(new_sizes)),
                [Operand(shape, draw(floats))])


@st.composite
def transpose_case(draw):
    shape = draw(shapes())
    permutation = tuple(draw(st.permutations(range(len(shape)))))
    return Case(bind(lax.transpose_p, permutation=permutation), [Operand(shape, draw(floats))])


@st.composite
def squeeze_case(draw):
    shape = list(draw(shapes(max_dims=2)))
    dims = sorted(draw(st.sets(st.integers(0, len(shape)), max_size=2)))
    for d in dims:
        shape.insert(d, 1)
    return Case(bind(lax.squeeze_p, dimensions=tuple(dims)), [Operand(tuple(shape), draw(floats))])


@st.composite
def expand_dims_case(draw):
    shape = draw(shapes(max_dims=2))
    dims = sorted(draw(st.sets(st.integers(0, len(shape)), min_size=1, max_size=2)))
    return Case(bind(lax.expand_dims_p, dimensions=tuple(dims)), [Operand(shape, draw(floats))])


@st.composite
def concatenate_case(draw):
    shape, dtype = draw(shapes(min_dims=1)), draw(floats)
    dimension = draw(st.integers(0, len(shape) - 1))
    operands = []
    for _ in range(draw(st.integers(1, 3))):
        own = list(shape)
        own[dimension] = draw(st.integers(1, 3))
        operands.append(Operand(tuple(own), dtype))
    return Case(bind(lax.concatenate_p, dimension=dimension), operands)


@st.composite
def pad_case(draw):
    shape, dtype = draw(shapes()), draw(floats)
    config = tuple(
        (draw(st.integers(0, 2)), draw(st.integers(0, 2)), draw(st.integers(0, 1)))
        for _ in shape
    )
    return Case(bind(lax.pad_p, padding_config=config), [Operand(shape, dtype), Operand((), dtype)])


@st.composite
def slice_case(draw):
    shape = draw(shapes())
    starts, limits, strides = [], [], []
    for n in shape:
        start = draw(st.integers(0, n))
        starts.append(start)
        limits.append(draw(st.integers(start, n)))
        strides.append(draw(st.integers(1, 2)))
    params = dict(start_indices=tuple(starts), limit_indices=tuple(limits), strides=tuple(strides))
    return Case(bind(lax.slice_p, **params), [Operand(shape, draw(floats))])


def axes_case(prim, domain="real", **extra):
    @st.composite
    def case(draw):
        shape = draw(shapes())
        axes = tuple(sorted(draw(st.sets(st.sampled_from(range(len(shape))))) if shape else ()))
        return Case(bind(prim, axes=axes, **extra), [Operand(shape, draw(floats), domain)])

    return case


@st.composite
def rev_case(draw):
    shape = draw(shapes())
    dims = tuple(sorted(draw(st.sets(st.sampled_from(range(len(shape))))) if shape else ()))
    return Case(bind(lax.rev_p, dimensions=dims), [Operand(shape, draw(floats))])


def arg_case(prim):
    @st.composite
    def case(draw):
        shape = draw(shapes(min_dims=1))
        axis = draw(st.integers(0, len(shape) - 1))
        operand = Operand(shape, draw(floats), "ties")
        return Case(bind(prim, axes=(axis,), index_dtype=I64), [operand])

    return case


@st.composite
def cumsum_case(draw):
    shape = draw(shapes(min_dims=1))
    params = dict(axis=draw(st.integers(0, len(shape) - 1)), reverse=draw(st.booleans()))
    return Case(bind(lax.cumsum_p, **params), [Operand(shape, draw(floats))])


@st.composite
def iota_case(draw):
    # iota has no operands (it is never batched): add a batched operand to it.
    shape, dtype = draw(shapes(min_dims=1)), draw(floats)
    dimension = draw(st.integers(0, len(shape) - 1))

    def fun(x):
        return [lax.add(x, lax.iota(dtype, shape, dimension))]

    return Case(fun, [Operand(shape, dtype)])


@st.composite
def dynamic_slice_case(draw):
    shape, dtype = draw(shapes()), draw(floats)
    sizes = tuple(draw(st.integers(0, n)) for n in shape)
    starts = [Operand((), I64, f"start:{n}") for n in shape]
    return Case(bind(lax.dynamic_slice_p, slice_sizes=sizes), [Operand(shape, dtype)] + starts)


@st.composite
def dynamic_update_slice_case(draw):
    shape, dtype = draw(shapes()), draw(floats)
    update = tuple(draw(st.integers(0, n)) for n in shape)
    starts = [Operand((), I64, f"start:{n}") for n in shape]
    return Case(bind(lax.dynamic_update_slice_p),
                [Operand(shape, dtype), Operand(update, dtype)] + starts)


@st.composite
def gather_case(draw):
    shape, dtype = draw(shapes(min_dims=1)), draw(floats)
    axis = draw(st.integers(0, len(shape) - 1))
    indices = draw(shapes(max_dims=2))
    return Case(bind(lax.gather_p, axis=axis),
                [Operand(shape, dtype), Operand(indices, I64, f"index:{shape[axis]}")])


@st.composite
def scatter_add_case(draw):
    shape, dtype = draw(shapes(min_dims=1)), draw(floats)
    axis = draw(st.integers(0, len(shape) - 1))
    indices = draw(shapes(max_dims=2))
    updates = shape[:axis] + indices + shape[axis + 1:]
    return Case(bind(lax.scatter_add_p, axis=axis), [
        Operand(shape, dtype), Operand(indices, I64, f"index:{shape[axis]}"),
        Operand(updates, dtype),
    ])


@st.composite
def dot_general_case(draw):
    dtype = draw(floats)
    kinds = (["b"] * draw(st.integers(0, 1)) + ["c"] * draw(st.integers(0, 2)))
    sizes = {i: draw(st.integers(1, 3)) for i in range(len(kinds))}
    lhs_free, rhs_free = draw(st.integers(0, 1)), draw(st.integers(0, 1))
    # Shared (batch and contracting) dims first, then free dims; then shuffle each side.
    lhs_axes = list(range(len(kinds))) + ["l"] * lhs_free
    rhs_axes = list(range(len(kinds))) + ["r"] * rhs_free
    lhs_axes = draw(st.permutations(lhs_axes))
    rhs_axes = draw(st.permutations(rhs_axes))
    free = draw(st.integers(1, 3))
    lhs_shape = tuple(free if a == "l" else sizes[a] for a in lhs_axes)
    rhs_shape = tuple(free if a == "r" else sizes[a] for a in rhs_axes)

    def dims(kind):
        shared = [i for i, k in enumerate(kinds) if k == kind]
        return tuple(lhs_axes.index(i) for i in shared), tuple(rhs_axes.index(i) for i in shared)

    params = dict(dimension_numbers=(dims("c"), dims("b")))
    operands = [Operand(lhs_shape, dtype), Operand(rhs_shape, dtype)]
    return Case(bind(lax.dot_general_p, **params), operands)


@fg.custom_vjp
def _clip_gradient(x):
    return fnp.sin(x)


_clip_gradient.defvjp(lambda x: (fnp.sin(x), fnp.cos(x)),
                      lambda cos_x, g: (fnp.clip(g * cos_x, -1.0, 1.0),))


@st.composite
def custom_vjp_call_case(draw):
    return Case(lambda x: [_clip_gradient(x)], [Operand(draw(shapes()), draw(floats))])


REAL_UNARY = ["neg", "sign", "floor", "ceil", "round", "abs", "square", "exp", "expm1", "tanh",
              "logistic", "softplus", "sin", "cos", "tan", "atan", "sinh", "cosh", "asinh",
              "is_finite", "stop_gradient"]
DOMAIN_UNARY = {"log": "pos", "log1p": "pos", "sqrt": "pos", "rsqrt": "pos", "asin": "unit",
                "acos": "unit", "atanh": "unit", "acosh": "ge1"}
REAL_BINARY = ["add", "sub", "mul", "max", "min", "atan2"]
COMPARISONS = ["eq", "ne", "lt", "le", "gt", "ge"]
PRIM = {p.name: p for p in core.abstract_eval_rules}

CASES = {
    **{name: unary(PRIM[name]) for name in REAL_UNARY},
    **{name: unary(PRIM[name], domain) for name, domain in DOMAIN_UNARY.items()},
    **{name: binary(PRIM[name]) for name in REAL_BINARY},
    **{name: binary(PRIM[name], "ties", "ties") for name in COMPARISONS},
    **{name: binary(PRIM[name], dtypes=st.sampled_from([BOOL, I64])) for name in
       ("and", "or", "xor")},
    "div": binary(lax.div_p, "real", "nonzero"),
    "rem": binary(lax.rem_p, "real", "nonzero"),
    "pow": binary(lax.pow_p, "pos", "real"),
    "integer_pow": integer_pow_case,
    "not": not_case,
    "select_n": select_n_case,
    "convert_element_type": convert_case,
    "broadcast_in_dim": broadcast_in_dim_case,
    "reshape": reshape_case,
    "transpose": transpose_case,
    "squeeze": squeeze_case,
    "expand_dims": expand_dims_case,
    "concatenate": concatenate_case,
    "pad": pad_case,
    "slice": slice_case,
    "rev": rev_case,
    "iota": iota_case,
    "reduce_sum": axes_case(lax.reduce_sum_p),
    "reduce_max": axes_case(lax.reduce_max_p, "ties"),
    "reduce_min": axes_case(lax.reduce_min_p, "ties"),
    "reduce_prod": axes_case(lax.reduce_prod_p, "unit"),
    "argmax": arg_case(lax.argmax_p),
    "argmin": arg_case(lax.argmin_p),
    "cumsum": cumsum_case,
    "dynamic_slice": dynamic_slice_case,
    "dynamic_update_slice": dynamic_update_slice_case,
    "gather": gather_case,
    "scatter_add": scatter_add_case,
    "dot_general": dot_general_case,
    "custom_vjp_call": custom_vjp_call_case,
}

# custom_lin only exists inside linearized programs and cannot run forward: tested below.
NOT_IN_CASES = {"custom_lin"}


def test_every_primitive_has_a_case_and_a_rule():
    names = {p.name for p in core.abstract_eval_rules}
    assert len(names) >= 60
    assert names - NOT_IN_CASES <= set(CASES), f"no batching case: {names - set(CASES)}"
    assert all(p in batch_rules for p in core.abstract_eval_rules)


def _stack(per_element):
    return np.stack([np.asarray(x) for x in per_element])


def _assert_same(got, want):
    got = np.asarray(got)
    assert got.shape == want.shape and got.dtype == want.dtype, (got, want)
    if want.dtype.kind == "f":
        rtol = 1e-5 if want.dtype == F32 else 1e-12
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)
    else:
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", sorted(CASES))
@given(data=st.data())
def test_batched_evaluation_equals_a_loop(name, data):
    case = data.draw(CASES[name](), label="case")
    n = len(case.operands)
    in_batched = data.draw(st.lists(st.booleans(), min_size=n, max_size=n).filter(any),
                           label="batched")
    size = data.draw(st.integers(0, 3), label="batch size")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    args = [sample(rng, op, (size,) if b else ()) for op, b in zip(case.operands, in_batched)]
    closed = trace_to_jaxpr(case.fun, [ShapedArray(op.shape, op.dtype) for op in case.operands])
    assert any(eqn.primitive.name == name for eqn in closed.eqns)

    per_element = [
        core.eval_jaxpr(closed.jaxpr, closed.consts,
                        [x[k] if b else x for x, b in zip(args, in_batched)])
        for k in range(size)
    ]
    expected = [_stack(outs) for outs in zip(*per_element)]
    if size == 0:
        expected = [np.zeros((0, *v.aval.shape), v.aval.dtype) for v in closed.jaxpr.outs]

    outs, out_batched = batch_eval_jaxpr(closed.jaxpr, closed.consts, args, in_batched,
                                         instantiate=True)
    assert out_batched == [True] * len(expected)
    for got, want in zip(outs, expected):
        _assert_same(got, want)

    # The same batched evaluation staged into a jaxpr (as under jit), then run.
    def batched_fun(*xs):
        return batch_eval_jaxpr(closed.jaxpr, closed.consts, list(xs), in_batched,
                                instantiate=True)[0]

    staged = trace_to_jaxpr(batched_fun, [core.get_aval(x) for x in args])
    for got, want in zip(core.eval_jaxpr(staged.jaxpr, staged.consts, args), expected):
        _assert_same(got, want)


def test_custom_lin_batched_raises_like_the_loop():
    x = np.linspace(0.1, 1.0, 3)
    _, lin = ad.linearize_flat(lambda x: [_clip_gradient(x)], [x])
    assert any(eqn.primitive is custom_lin_p for eqn in lin.eqns)
    with pytest.raises(TypeError, match="forward-mode") as loop_error:
        core.eval_jaxpr(lin.jaxpr, lin.consts, [x])
    with pytest.raises(TypeError, match="forward-mode") as batched_error:
        batch_eval_jaxpr(lin.jaxpr, lin.consts, [np.eye(3)], [True])
    assert str(batched_error.value) == str(loop_error.value)


def test_unbatched_outputs_are_reported_and_instantiated():
    closed = fg.make_jaxpr(lambda x, y: (x * 2.0, y + 1.0))(np.ones(2), np.ones(2))
    args = [np.arange(6.0).reshape(3, 2), np.array([1.0, 2.0])]
    outs, batched = batch_eval_jaxpr(closed.jaxpr, closed.consts, args, [True, False])
    assert batched == [True, False]
    np.testing.assert_array_equal(outs[1], [2.0, 3.0])
    outs, batched = batch_eval_jaxpr(closed.jaxpr, closed.consts, args, [True, False],
                                     instantiate=True)
    assert batched == [True, True]
    np.testing.assert_array_equal(outs[1], [[2.0, 3.0]] * 3)


def test_wrong_number_of_flags_is_an_error():
    closed = fg.make_jaxpr(lambda x: x * 2.0)(np.ones(2))
    with pytest.raises(TypeError, match="batched flags"):
        batch_eval_jaxpr(closed.jaxpr, closed.consts, [np.ones((3, 2))], [True, False])


# --------------------------------------------------------------------------- Jacobians


def loop_jacfwd(f, x):
    """The definition: one jvp per input basis vector (single array input)."""
    x = np.asarray(x)
    out = np.asarray(f(x))
    columns = []
    for k in range(x.size):
        e = np.zeros(x.size, x.dtype)
        e[k] = 1
        columns.append(np.asarray(fg.jvp(f, (x,), (e.reshape(x.shape),))[1]))
    if not columns:
        return np.zeros(out.shape + x.shape, out.dtype)
    return np.stack(columns, axis=-1).reshape(out.shape + x.shape)


def loop_jacrev(f, x):
    """The definition: one vjp per output basis vector (single array input)."""
    x = np.asarray(x)
    out, f_vjp = fg.vjp(f, x)
    out = np.asarray(out)
    rows = []
    for k in range(out.size):
        e = np.zeros(out.size, out.dtype)
        e[k] = 1
        rows.append(np.asarray(f_vjp(e.reshape(out.shape))[0]))
    if not rows:
        return np.zeros(out.shape + x.shape, x.dtype)
    return np.stack(rows).reshape(out.shape + x.shape)


def _mlp(x):
    w = np.linspace(-1.0, 1.0, 3 * x.shape[-1]).reshape(x.shape[-1], 3).astype(x.dtype)
    return fnp.tanh(x @ w + 0.5)


FUNCTIONS = {
    "rosenbrock": lambda x: rosenbrock(fnp.reshape(x, (-1,))) if x.size >= 2 else fnp.sum(x ** 2),
    "mlp": lambda x: _mlp(fnp.reshape(x, (-1, x.shape[-1])) if x.ndim else fnp.reshape(x, (1, 1))),
    "logistic": lambda x: fnp.sum(nn_ops.softplus(-x * 0.7)) + fnp.max(x) * 0.1,
    "shape ops": lambda x: fnp.concatenate([fnp.ravel(x)[::-1], fnp.cumsum(fnp.ravel(x)) ** 2]),
    "indexing": lambda x: fnp.ravel(x)[np.array([0, 0, -1])] * fnp.exp(fnp.ravel(x)[0]),
    "where": lambda x: fnp.where(x > 0, fnp.sin(x), x ** 3) / (1.0 + x ** 2),
    "reductions": lambda x: fnp.stack([fnp.sum(x), fnp.prod(x), fnp.min(x), fnp.mean(x ** 2)]),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@given(shape=hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=4),
       dtype=floats, seed=st.integers(0, 2**32 - 1))
def test_jacobians_equal_one_basis_vector_at_a_time(name, shape, dtype, seed):
    f = FUNCTIONS[name]
    x = np.random.default_rng(seed).uniform(-1.5, 1.5, shape).astype(dtype)
    rtol = 1e-5 if dtype == F32 else 1e-12
    for jac, loop in [(fg.jacfwd, loop_jacfwd), (fg.jacrev, loop_jacrev)]:
        got, want = jac(f)(x), loop(f, x)
        assert np.shape(got) == want.shape and np.asarray(got).dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("name", ["rosenbrock", "mlp", "logistic", "where"])
@given(n=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_hessian_matches_finite_differences_and_jit(name, n, seed):
    f = FUNCTIONS[name]
    x = np.random.default_rng(seed).uniform(-1.5, 1.5, n)
    def scalar_f(x):
        return fnp.sum(f(x))

    h = fg.hessian(scalar_f)(x)
    assert h.shape == (n, n) and h.dtype == np.float64
    g = fg.grad(scalar_f)
    eps = 1e-5
    numerical = np.stack(
        [(g(x + eps * e) - g(x - eps * e)) / (2 * eps) for e in np.eye(n)], axis=-1
    )
    np.testing.assert_allclose(h, numerical, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fg.jit(fg.hessian(scalar_f))(x), h, rtol=1e-12, atol=1e-12)


def test_pytree_jacobians_keep_their_layout_and_dtypes():
    def f(params, scale):
        w, b = params["w"], params["b"]
        return {"y": fnp.tanh(w @ b) * scale, "s": (fnp.sum(w ** 2) + scale).astype(np.float32)}

    params = {"w": np.arange(6.0).reshape(2, 3) / 6, "b": np.linspace(0.1, 0.3, 3)}
    scale = np.float32(1.5)
    fwd = fg.jacfwd(f, argnums=(0, 1))(params, scale)
    rev = fg.jacrev(f, argnums=(0, 1))(params, scale)
    for j in (fwd, rev):
        assert j["y"][0]["w"].shape == (2, 2, 3) and j["y"][0]["b"].shape == (2, 3)
        assert j["y"][1].shape == (2,) and j["s"][1].shape == ()
        assert j["s"][0]["w"].shape == (2, 3) and j["s"][0]["b"].shape == (3,)
        dy_dw = numerical_jacobian(lambda w: f({"w": w, "b": params["b"]}, scale)["y"],
                                   params["w"])
        np.testing.assert_allclose(j["y"][0]["w"], dy_dw.reshape(2, 2, 3), rtol=1e-6)
        dy_ds = numerical_jacobian(lambda s: f(params, s)["y"], np.float64(scale))
        np.testing.assert_allclose(j["y"][1], dy_ds.reshape(2), rtol=1e-6)
    # Forward mode gives the output's dtype, reverse mode the input's (as before batching).
    assert fwd["s"][0]["b"].dtype == np.float32 and rev["s"][0]["b"].dtype == np.float64
    for a, b in zip(tree_leaves(fwd), tree_leaves(rev)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def numerical_jacobian(g, x, eps=1e-6):
    """Central differences of ravel(g(x)) with respect to ravel(x), in float64."""
    x = np.asarray(x, np.float64)
    columns = []
    for k in range(x.size):
        step = np.zeros(x.size)
        step[k] = eps
        plus = np.ravel(np.asarray(g(x + step.reshape(x.shape)), np.float64))
        minus = np.ravel(np.asarray(g(x - step.reshape(x.shape)), np.float64))
        columns.append((plus - minus) / (2 * eps))
    return np.stack(columns, axis=-1)


def test_zero_size_and_independent_outputs():
    x = np.zeros((0, 3))
    for jac in (fg.jacfwd, fg.jacrev):
        j = jac(lambda x: (fnp.sum(x), x * 2.0))(x)
        assert j[0].shape == (0, 3) and j[1].shape == (0, 3, 0, 3)
        # An output that does not depend on the input has a zero Jacobian block.
        j = jac(lambda x: (x * 3.0, fnp.ones(2)))(np.arange(3.0))
        np.testing.assert_array_equal(j[0], 3.0 * np.eye(3))
        np.testing.assert_array_equal(j[1], np.zeros((2, 3)))


def test_jit_hessian_is_one_compact_program():
    # Before batching, jacfwd unrolled one copy of the linear program per input element.
    n = 10
    closed = fg.make_jaxpr(fg.hessian(rosenbrock))(np.ones(n))
    assert len(closed.eqns) < 80
    assert all(len(c.shape) <= 2 and c.size <= n * n for c in closed.consts)
    x = np.random.default_rng(0).standard_normal(n)
    np.testing.assert_allclose(fg.jit(fg.hessian(rosenbrock))(x), loop_hessian(x), rtol=1e-12)


def loop_hessian(x):
    return loop_jacfwd(fg.grad(rosenbrock), x)


def test_jacfwd_of_jacrev_of_a_custom_vjp_function_uses_the_custom_rule():
    # jacrev pulls back through the custom bwd (clipped to [-1, 1]) in one batched pass.
    x = np.array([0.0, 0.5, 1.0])
    j = fg.jacrev(lambda x: 5.0 * _clip_gradient(x))(x)
    np.testing.assert_allclose(j, np.diag(np.clip(5.0 * np.cos(x), -1.0, 1.0)))
    np.testing.assert_allclose(fg.jit(fg.jacrev(lambda x: 5.0 * _clip_gradient(x)))(x), j)
