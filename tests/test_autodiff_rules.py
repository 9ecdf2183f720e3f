"""The differentiation spec table: every differentiable primitive, ``fgrad.numpy``
function and ``fg.nn`` function x shapes (0-d, vector, matrix, broadcasting,
size-1 axes) x float32/float64. Each row is one
``check_grads(order=2, modes=("fwd", "rev"))`` call, which also checks that every
derivative keeps its primal's dtype. float32 rows run in float32 with the float32
tolerances of ``check_grads``.

Input domains keep away from kinks and singularities: ``pm`` draws magnitudes
away from 0 with random signs, ``distinct`` draws values no two of which tie,
``frac`` stays away from integers and half-integers.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pytest

import fgrad as fg
import fgrad.numpy as fnp
from fgrad._src.interpreters import ad
from fgrad._src.lax import lax
from fgrad.test_util import check_grads

# --------------------------------------------------------------------------- samplers


def U(lo=-2.0, hi=2.0):
    return lambda rng, shape, dtype: rng.uniform(lo, hi, shape).astype(dtype)


def pm(lo=0.3, hi=2.0):
    """Magnitudes in [lo, hi] with random signs (away from 0)."""
    return lambda rng, shape, dtype: (
        rng.uniform(lo, hi, shape) * rng.choice([-1.0, 1.0], shape)
    ).astype(dtype)


def distinct(lo=-2.0, hi=2.0):
    """Values no two of which are closer than a fraction of (hi - lo) / size (no ties)."""

    def sample(rng, shape, dtype):
        n = int(np.prod(shape, dtype=np.int64))
        grid = np.linspace(lo, hi, n) if n > 1 else np.array([(lo + hi) / 2])
        jitter = rng.uniform(-0.2, 0.2, n) * ((hi - lo) / max(n, 2))
        return rng.permutation(grid + jitter).reshape(shape).astype(dtype)

    return sample


def frac(lo=-3, hi=3):
    """Values at least 0.1 away from every integer and half-integer."""
    return lambda rng, shape, dtype: (
        rng.integers(lo, hi, shape) + rng.choice([0.25, 0.75], shape)
        + rng.uniform(-0.1, 0.1, shape)
    ).astype(dtype)


def const(value):
    """A fixed (e.g. integer) argument, not perturbed by check_grads."""
    return lambda rng, shape, dtype: np.asarray(value)


def pyfloat(lo=-2.0, hi=2.0):
    """A Python float argument (weakly typed: it never promotes a float32 operand)."""
    return lambda rng, shape, dtype: float(rng.uniform(lo, hi))


class Row(NamedTuple):
    name: str
    fun: Callable
    args: tuple  # of (shape, sampler)
    covers: tuple = ()  # names of fgrad.numpy / fg.nn functions this row differentiates

    def sample(self, dtype):
        rng = np.random.default_rng(zlib.crc32(self.name.encode()))
        return tuple(sampler(rng, shape, dtype) for shape, sampler in self.args)


ROWS: list[Row] = []


def row(name, fun, *args, covers=()):
    ROWS.append(Row(name, fun, tuple(args), tuple(covers)))


# --------------------------------------------------------------------------- elementwise

UNARY_SHAPES = {"0d": (), "vec": (3,), "mat": (2, 3), "size1": (1, 3, 1)}
BINARY_SHAPES = {
    "0d": ((), ()),
    "vec": ((3,), (3,)),
    "mat": ((2, 3), (2, 3)),
    "bcast": ((2, 3), (3,)),
    "size1": ((2, 1), (1, 3)),
    "scalar": ((), (2, 3)),
}


def unary(name, fun, sampler=None, covers=None):
    for tag, shape in UNARY_SHAPES.items():
        row(f"{name}-{tag}", fun, (shape, sampler or U()),
            covers=(name,) if covers is None else covers)


def binary(name, fun, s1=None, s2=None, covers=None, shapes=BINARY_SHAPES):
    for tag, (shape1, shape2) in shapes.items():
        row(f"{name}-{tag}", fun, (shape1, s1 or U()), (shape2, s2 or U()),
            covers=(name,) if covers is None else covers)


unary("negative", fnp.negative)
unary("square", fnp.square)
unary("sqrt", fnp.sqrt, U(0.5, 2.0))
unary("reciprocal", fnp.reciprocal, pm(0.5, 2.0))
unary("exp", fnp.exp)
unary("log", fnp.log, U(0.5, 2.0))
unary("log1p", fnp.log1p, U(-0.5, 2.0))
unary("expm1", fnp.expm1)
unary("sin", fnp.sin)
unary("cos", fnp.cos)
unary("tan", fnp.tan, U(-1.2, 1.2))
unary("tanh", fnp.tanh)
unary("sinh", fnp.sinh)
unary("cosh", fnp.cosh)
unary("arcsin", fnp.arcsin, U(-0.8, 0.8))
unary("arccos", fnp.arccos, U(-0.8, 0.8))
unary("arctan", fnp.arctan)
unary("arcsinh", fnp.arcsinh)
unary("arccosh", fnp.arccosh, U(1.2, 3.0))
unary("arctanh", fnp.arctanh, U(-0.8, 0.8))
unary("abs", fnp.abs, pm())
unary("absolute", fnp.absolute, pm())
unary("rsqrt", lax.rsqrt, U(0.5, 2.0), covers=())
unary("logistic", lax.logistic, covers=())
unary("softplus", lax.softplus, U(-30.0, 30.0), covers=())
unary("sign", lambda x: fnp.sign(x) * x, pm())  # sign itself has derivative 0
unary("floor", lambda x: fnp.floor(x) + x, frac())
unary("ceil", lambda x: fnp.ceil(x) * x, frac())
unary("round", lambda x: lax.round(x) * x, frac(), covers=())
unary("power-int3", lambda x: fnp.power(x, 3), covers=("power",))
unary("power-int0", lambda x: fnp.power(x, 0) * x, covers=("power",))
unary("power-neg", lambda x: x ** -2, pm(0.5, 2.0), covers=("power",))
unary("power-half", lambda x: x ** 0.5, U(0.5, 2.0), covers=("power",))
unary("rpow", lambda x: 2.0 ** x, covers=("power",))
unary("op-neg-pos", lambda x: -(+x), covers=())
unary("op-abs", lambda x: abs(x), pm(), covers=())
unary("clip", lambda x: fnp.clip(x, -1.0, 1.0), frac(-2, 2))
unary("clip-method", lambda x: x.clip(None, 0.5), frac(-2, 2), covers=())
unary("where", lambda x: fnp.where(x > 0, fnp.sin(x), x ** 2), pm())
unary("scaled-weak", lambda x: 2.5 * x - 1.0, covers=("multiply", "subtract"))
unary("astype-same", lambda x: fnp.astype(x, x.dtype) * x, covers=("astype",))

binary("add", fnp.add)
binary("subtract", fnp.subtract)
binary("multiply", fnp.multiply)
binary("divide", fnp.divide, U(), pm(0.5, 2.0))
binary("true_divide", fnp.true_divide, U(), pm(0.5, 2.0))
binary("power", fnp.power, U(0.5, 2.0), U())
binary("arctan2", fnp.arctan2, pm(0.5, 2.0), pm(0.5, 2.0))
binary("logaddexp", fnp.logaddexp)
binary("maximum", fnp.maximum, distinct(-2.0, 0.0), distinct(0.1, 2.0))
binary("minimum", fnp.minimum, distinct(-2.0, 0.0), distinct(0.1, 2.0))
binary("maximum-swap", fnp.maximum, distinct(0.1, 2.0), distinct(-2.0, 0.0),
       covers=("maximum",))
binary("op-arith", lambda x, y: (x + y) * (x - y) / (y * y + 1.0), covers=())
binary("op-pow", lambda x, y: x ** y, U(0.5, 2.0), U(), covers=())
binary("where2", lambda x, y: fnp.where(x > y, x * y, x + y), distinct(-2.0, 0.0),
       distinct(0.1, 2.0), covers=("where",))


for tag, shape in UNARY_SHAPES.items():
    # fmod(q * y, y) with q away from integers: both derivatives are defined.
    row(f"fmod-{tag}", lambda q, y: fnp.fmod(q * y, y), (shape, frac(-3, 3)),
        (shape, U(0.7, 1.5)), covers=("fmod",))
    # the same away from the jumps, with divisors of both signs
    row(f"remainder-{tag}", lambda q, y: fnp.remainder(q * y, y) + (q * y) % -y,
        (shape, frac(-3, 3)), (shape, U(0.7, 1.5)), covers=("remainder", "mod"))
    row(f"floor-divide-{tag}", lambda q, y: fnp.floor_divide(q * y, y) * y + q,
        (shape, frac(-3, 3)), (shape, U(0.7, 1.5)), covers=("floor_divide",))

row("where-cond-bcast", lambda c, x, y: fnp.where(c, x, y),
    ((3,), const(np.array([True, False, True]))), ((2, 3), U()), ((), U()), covers=("where",))
row("where-scalar-branch", lambda x: fnp.where(x > 0, x * x, 0.0), ((2, 3), pm()),
    covers=("where",))
row("python-float-arg", lambda x, s: x * s + s * s, ((2, 3), U()), ((), pyfloat()),
    covers=("multiply", "add"))
row("int-arg-constant", lambda x, n: x ** n + x * n, ((3,), U(0.5, 2.0)),
    ((3,), const(np.array([1, 2, 3]))), covers=("power",))

# --------------------------------------------------------------------------- reductions

REDUCTIONS = [
    ("0d", (), None, False),
    ("vec", (4,), None, False),
    ("mat-axis0", (3, 4), 0, False),
    ("mat-axis1-keep", (3, 4), 1, True),
    ("mat-all-keep", (3, 4), None, True),
    ("3d-axes", (2, 3, 4), (0, 2), False),
    ("3d-neg", (2, 3, 4), -1, True),
    ("size1-axis", (3, 1), 1, False),
]


def reduction(name, fun, sampler=None, skip=()):
    for tag, shape, axis, keepdims in REDUCTIONS:
        if tag in skip:
            continue
        row(f"{name}-{tag}", lambda x, a=axis, k=keepdims: fun(x, axis=a, keepdims=k),
            (shape, sampler or U()), covers=(name,))


reduction("sum", fnp.sum)
reduction("mean", fnp.mean)
reduction("max", fnp.max, distinct())
reduction("min", fnp.min, distinct())
reduction("amax", fnp.amax, distinct())
reduction("amin", fnp.amin, distinct())
reduction("prod", fnp.prod, pm(0.5, 1.5))
reduction("var", fnp.var, distinct(), skip=("0d", "size1-axis"))
reduction("std", fnp.std, distinct(), skip=("0d", "size1-axis"))
reduction("nn.logsumexp", fg.nn.logsumexp)
row("var-ddof", lambda x: fnp.var(x, axis=1, ddof=1), ((3, 4), U()), covers=("var",))
row("std-ddof", lambda x: fnp.std(x, ddof=1), ((5,), distinct()), covers=("std",))
row("prod-with-zero", lambda x: fnp.prod(x * np.array([0.0, 1.0, 1.0])), ((3,), pm(0.5, 1.5)),
    covers=("prod",))
row("max-tie", lambda x: fnp.max(fnp.concatenate([x, x])), ((3,), distinct()),
    covers=("max",))
for axis in (None, 0, 1, -1):
    tag = f"axis{axis}"
    row(f"cumsum-{tag}", lambda x, a=axis: fnp.cumsum(x, axis=a), ((3, 4), U()),
        covers=("cumsum",))
row("cumsum-reverse", lambda x: lax.cumsum(x, 1, reverse=True), ((3, 4), U()))
row("method-sum-mean-max", lambda x: x.sum(axis=0) * x.mean() + x.max(axis=1, keepdims=True),
    ((3, 4), distinct()))
row("method-prod-var-std-min", lambda x: x.prod() + x.var(axis=0) + x.std() - x.min(0),
    ((3, 4), pm(0.8, 1.2)))

# --------------------------------------------------------------------------- shape


def shaped(name, fun, *shapes, sampler=None, covers=None):
    row(name, fun, *[(s, sampler or U()) for s in shapes],
        covers=(name.split("-")[0],) if covers is None else covers)


shaped("reshape-mat", lambda x: fnp.reshape(x, (3, 2)), (2, 3))
shaped("reshape-neg1", lambda x: fnp.reshape(x, (-1,)) * 2.0, (2, 1, 3))
shaped("reshape-0d", lambda x: fnp.reshape(x, (1, 1)), ())
shaped("reshape-method", lambda x: x.reshape(3, 2) ** 2, (2, 3), covers=())
shaped("ravel", fnp.ravel, (2, 3))
shaped("ravel-method", lambda x: x.ravel() * x.flatten(), (2, 3), covers=())
shaped("transpose-2d", fnp.transpose, (2, 3))
shaped("transpose-3d", lambda x: fnp.transpose(x, (1, 2, 0)), (2, 3, 4))
shaped("transpose-attr", lambda x: x.T @ x, (2, 3), covers=())
shaped("transpose-method", lambda x: x.transpose(1, 0) * 2.0, (2, 3), covers=())
shaped("swapaxes", lambda x: fnp.swapaxes(x, 0, 2), (2, 3, 4))
shaped("moveaxis", lambda x: fnp.moveaxis(x, 0, -1), (2, 3, 4))
shaped("expand_dims", lambda x: fnp.expand_dims(x, (0, 2)), (2, 3))
shaped("expand_dims-0d", lambda x: fnp.expand_dims(x, 0), ())
shaped("squeeze", fnp.squeeze, (1, 3, 1))
shaped("squeeze-axis", lambda x: fnp.squeeze(x, 1), (2, 1, 3))
shaped("broadcast_to", lambda x: fnp.broadcast_to(x, (2, 3, 4)), (3, 1))
shaped("broadcast_to-0d", lambda x: fnp.broadcast_to(x, (2, 3)), ())
shaped("broadcast_arrays", lambda x, y: fnp.broadcast_arrays(x, y), (3, 1), (4,))
shaped("concatenate", lambda x, y: fnp.concatenate([x, y, x], axis=1), (2, 3), (2, 1))
shaped("concatenate-none", lambda x, y: fnp.concatenate([x, y], axis=None), (2, 3), (4,))
shaped("concatenate-const", lambda x: fnp.concatenate([np.ones((2, 1), x.dtype), x], 1),
       (2, 3), covers=("concatenate",))
shaped("stack", lambda x, y: fnp.stack([x, y], axis=-1), (2, 3), (2, 3))
shaped("stack-0d", lambda x, y: fnp.stack([x, y, x]), (), ())
shaped("hstack", lambda x, y: fnp.hstack([x, y]), (3,), (2,))
shaped("vstack", lambda x, y: fnp.vstack([x, y]), (3,), (2, 3))
shaped("split", lambda x: fnp.split(x, 2, axis=1), (2, 4))
shaped("split-indices", lambda x: fnp.split(x, [1, 3]), (5, 2))
shaped("tile", lambda x: fnp.tile(x, (2, 3)), (2, 2))
shaped("tile-0d", lambda x: fnp.tile(x, 3), ())
shaped("repeat", lambda x: fnp.repeat(x, 2, axis=1), (2, 3))
shaped("repeat-flat", lambda x: fnp.repeat(x, 3), (2, 2))
shaped("repeat-counts", lambda x: fnp.repeat(x, [1, 0, 2], axis=0), (3, 2))
shaped("flip", fnp.flip, (2, 3))
shaped("flip-axis", lambda x: fnp.flip(x, 1), (2, 3))
shaped("atleast_1d", fnp.atleast_1d, ())
shaped("array-of-tracers", lambda x, y: fnp.array([[x, y], [y, x]]), (), (),
       covers=("array", "asarray"))
shaped("full-traced", lambda x: fnp.full((2, 3), x), (), covers=("full",))
shaped("full_like-traced", lambda x, y: fnp.full_like(y, x) * y, (), (2, 3),
       covers=("full_like",))
shaped("zeros_like", lambda x: fnp.zeros_like(x) + fnp.ones_like(x) * x, (2, 3),
       covers=("zeros_like", "ones_like"))
shaped("linspace-traced", lambda a, b: fnp.linspace(a, b, 5), (), (), covers=("linspace",))
row("pad", lambda x, v: lax.pad(x, v, ((1, 2, 1), (0, 1, 0))), ((2, 3), U()), ((), U()))
row("pad-negative-free", lambda x: lax.pad(x, np.zeros((), x.dtype), ((0, 0, 2),)),
    ((3,), U()))

# --------------------------------------------------------------------------- indexing

INDEXES = {
    "int": 1,
    "neg-int": -1,
    "slice": np.s_[1:3],
    "step": np.s_[::2],
    "reverse": np.s_[::-1],
    "reverse-step": np.s_[3:0:-2],
    "none": np.s_[None, :, 1],
    "ellipsis": np.s_[..., 0],
    "mixed": np.s_[1:, -1],
    "int-array-repeat": np.array([0, 2, 2, 3]),
    "int-array-2d": np.array([[0, 1], [3, 3]]),
    "two-arrays": (np.array([0, 1, 3]), np.array([1, 2, 0])),
    "array-slice": np.s_[:, [0, 2, 2]],
    "separated-arrays": np.s_[[0, 3], 1:, [1, 0]],
    "bool-mask": np.array([True, False, True, True]),
}
for tag, index in INDEXES.items():
    shape = (4, 3, 2) if tag == "separated-arrays" else (4, 3)
    row(f"getitem-{tag}", lambda x, i=index: x[i], (shape, U()), covers=("getitem",))
row("getitem-traced-index", lambda x, i: x[i][:, i[1]] * x[1:3, i[0]], ((4, 3), U()),
    ((2,), const(np.array([2, 0]))), covers=("getitem",))
row("getitem-0d-in-1d", lambda x: x[0] * x[-1], ((1,), U()), covers=("getitem",))
row("dynamic_slice", lambda x, i, j: lax.dynamic_slice(x, (i, j), (2, 2)),
    ((4, 3), U()), ((), const(np.int64(1))), ((), const(np.int64(5))))
row("dynamic_update_slice", lambda x, u, i: lax.dynamic_update_slice(x, u, (i, np.int64(0))),
    ((4, 3), U()), ((2, 3), U()), ((), const(np.int64(1))))
row("gather", lambda x, i: lax.gather(x, i, 1), ((3, 4), U()),
    ((2, 2), const(np.array([[0, 3], [3, 1]]))))
row("scatter_add", lambda x, i, u: lax.scatter_add(x, i, u, 0), ((4, 2), U()),
    ((3,), const(np.array([1, 3, 1]))), ((3, 2), U()))

# --------------------------------------------------------------------------- linear algebra

LINALG = {
    "dot-0d": (fnp.dot, (), (3,)),
    "dot-vv": (fnp.dot, (3,), (3,)),
    "dot-mv": (fnp.dot, (2, 3), (3,)),
    "dot-vm": (fnp.dot, (3,), (3, 2)),
    "dot-mm": (fnp.dot, (2, 3), (3, 4)),
    "dot-nd": (fnp.dot, (2, 3, 4), (4, 2)),
    "dot-nd-nd": (fnp.dot, (2, 3), (2, 3, 4)),
    "matmul-mm": (fnp.matmul, (2, 3), (3, 4)),
    "matmul-vm": (fnp.matmul, (3,), (3, 2)),
    "matmul-mv": (fnp.matmul, (2, 3), (3,)),
    "matmul-vv": (fnp.matmul, (3,), (3,)),
    "matmul-batch": (fnp.matmul, (2, 2, 3), (3, 4)),
    "matmul-bcast": (fnp.matmul, (2, 1, 2, 3), (4, 3, 2)),
    "matmul-size1": (fnp.matmul, (1, 3), (3, 1)),
    "matmul-op": (lambda x, y: x @ y, (2, 3), (3,)),
    "outer": (fnp.outer, (3,), (2, 2)),
    "inner-vv": (fnp.inner, (3,), (3,)),
    "inner-mm": (fnp.inner, (2, 3), (4, 3)),
    "inner-0d": (fnp.inner, (), (2, 3)),
    "tensordot-int": (lambda x, y: fnp.tensordot(x, y, axes=1), (2, 3), (3, 4)),
    "tensordot-axes": (lambda x, y: fnp.tensordot(x, y, ([1, 2], [0, 1])), (2, 3, 4), (3, 4, 2)),
    "tensordot-0": (lambda x, y: fnp.tensordot(x, y, 0), (2,), (3,)),
    "einsum-matmul": (lambda x, y: fnp.einsum("ij,jk->ik", x, y), (2, 3), (3, 4)),
    "einsum-implicit": (lambda x, y: fnp.einsum("ij,jk", x, y), (2, 3), (3, 4)),
    "einsum-batch": (lambda x, y: fnp.einsum("bij,bjk->bik", x, y), (2, 2, 3), (2, 3, 2)),
    "einsum-dot": (lambda x, y: fnp.einsum("i,i->", x, y), (3,), (3,)),
    "einsum-outer-sum": (lambda x, y: fnp.einsum("ij,k->k", x, y), (2, 3), (4,)),
    "einsum-diag": (lambda x, y: fnp.einsum("ii,i->i", x, y), (3, 3), (3,)),
    "dot-method": (lambda x, y: x.dot(y), (2, 3), (3, 2)),
}
for name, (fun, s1, s2) in LINALG.items():
    row(name, fun, (s1, U()), (s2, U()), covers=(name.split("-")[0],))
row("einsum-trace", lambda x: fnp.einsum("ii->", x), ((3, 3), U()), covers=("einsum",))
row("einsum-transpose", lambda x: fnp.einsum("ijk->kij", x), ((2, 3, 4), U()),
    covers=("einsum",))
row("dot_general-batch", lambda x, y: lax.dot_general(x, y, (((2,), (1,)), ((0,), (2,)))),
    ((2, 3, 4), U()), ((5, 4, 2), U()))

NORMS = {
    "vec": ((3,), {}),
    "0d": ((), {}),
    "fro": ((2, 3), {}),
    "axis": ((2, 3), {"axis": 1}),
    "axis-keep": ((2, 3), {"axis": 0, "keepdims": True}),
    "ord1": ((4,), {"ord": 1}),
    "ordinf": ((4,), {"ord": np.inf}),
    "ord-inf": ((4,), {"ord": -np.inf}),
    "ord3": ((4,), {"ord": 3}),
    "fro-str": ((2, 2), {"ord": "fro"}),
    "fro-axes": ((2, 3), {"ord": "fro", "axis": (1, 0)}),
}
for tag, (shape, kwargs) in NORMS.items():
    row(f"norm-{tag}", lambda x, k=kwargs: fnp.linalg.norm(x, **k), (shape, distinct(0.3, 2.0)),
        covers=("linalg.norm",))

# --------------------------------------------------------------------------- fg.nn

unary("nn.relu", fg.nn.relu, pm())
unary("nn.sigmoid", fg.nn.sigmoid)
unary("nn.softplus", fg.nn.softplus, U(-4.0, 4.0))
unary("nn.log_sigmoid", fg.nn.log_sigmoid, U(-4.0, 4.0))
for tag, (shape, axis) in {"vec": ((4,), -1), "mat-last": ((3, 4), -1), "mat-0": ((3, 4), 0),
                           "size1": ((3, 1), 1)}.items():
    row(f"nn.softmax-{tag}", lambda x, a=axis: fg.nn.softmax(x, axis=a), (shape, U()),
        covers=("nn.softmax",))
    row(f"nn.log_softmax-{tag}", lambda x, a=axis: fg.nn.log_softmax(x, axis=a), (shape, U()),
        covers=("nn.log_softmax",))
binary("nn.binary_cross_entropy_with_logits", fg.nn.binary_cross_entropy_with_logits,
       U(-4.0, 4.0), U(0.0, 1.0))

# --------------------------------------------------------------------------- primitives only in lax

row("select_n-int", lambda w, a, b, c: lax.select_n(w, a, b, c),
    ((4,), const(np.array([0, 2, 1, 2]))), ((4,), U()), ((4,), U()), ((4,), U()))
# NB: a float64 -> float32 cast makes float32 the precision of the check (an f32 output).
row("astype-f32", lambda x: fnp.astype(x, np.float32) * 2.0, ((3,), U()), covers=("astype",))
row("astype-f64", lambda x: fnp.astype(x, np.float64) ** 2, ((3,), U()), covers=("astype",))
row("astype-method", lambda x: (x.astype(np.float32), x.astype(np.float64) * x), ((3,), U()))
row("astype-int", lambda x: fnp.astype(fnp.astype(x, np.int64), x.dtype) * x, ((3,), frac()),
    covers=("astype",))
row("integer_pow", lambda x: lax.integer_pow(x, 5) + lax.integer_pow(x, -3), ((3,), pm(0.5, 1.5)))
row("iota", lambda x: x * lax.convert_element_type(lax.iota(np.int64, (2, 3), 1), x.dtype),
    ((2, 3), U()))
row("rem", lambda q, y: lax.rem(lax.mul(q, y), y), ((3,), frac()), ((3,), U(0.7, 1.5)))

# --------------------------------------------------------------------------- the tests

DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("r", ROWS, ids=[r.name for r in ROWS])
def test_rule(r, dtype):
    check_grads(r.fun, r.sample(dtype), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("r", ROWS, ids=[r.name for r in ROWS])
def test_rule_under_jit(r, dtype):
    """The gradient programs, staged by jit and run by the backend, match eager vjp/jvp."""
    args = r.sample(dtype)
    rng = np.random.default_rng(0)
    out = r.fun(*args)
    cts = fg.tree_util.tree_map(lambda o: np.asarray(rng.standard_normal(np.shape(o)),
                                                     np.asarray(o).dtype), out)
    tangents = fg.tree_util.tree_map(lambda a: np.asarray(
        rng.standard_normal(np.shape(a)), np.asarray(a).dtype), args)

    def both(args, cts, tangents):
        return fg.vjp(r.fun, *args)[1](cts), fg.jvp(r.fun, args, tangents)[1]

    expected = both(args, cts, tangents)
    actual = fg.jit(both)(args, cts, tangents)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for a, e in zip(fg.tree_util.tree_leaves(actual), fg.tree_util.tree_leaves(expected)):
        assert np.asarray(a).dtype == np.asarray(e).dtype
        np.testing.assert_allclose(a, e, rtol=tol, atol=tol)


def test_row_names_are_unique():
    names = [r.name for r in ROWS]
    assert len(names) == len(set(names))


def _differentiable_primitives():
    """Primitives whose JVP rule is not the zero rule (and are not internal to custom_vjp)."""
    internal = {"custom_vjp_call", "custom_lin", "stop_gradient"}
    return {
        p.name for p, rule in ad.jvp_rules.items()
        if "defjvp_zero" not in rule.__qualname__ and p.name not in internal
    }


def test_every_differentiable_primitive_has_a_row():
    covered = set()
    for r in ROWS:
        for dtype in DTYPES:
            closed = fg.make_jaxpr(r.fun)(*r.sample(dtype))
            covered.update(eqn.primitive.name for eqn in closed.eqns)
    missing = _differentiable_primitives() - covered
    assert not missing, f"primitives without a row in the spec table: {sorted(missing)}"


# fgrad.numpy names that are not differentiable functions of float arrays.
NOT_DIFFERENTIABLE = {
    "all", "any", "arange", "argmax", "argmin", "bool_", "e", "equal", "eye", "float32",
    "float64", "greater", "greater_equal", "identity", "inf", "int32", "int64", "isfinite",
    "isinf", "isnan", "less", "less_equal", "linalg", "logical_and", "logical_not",
    "logical_or", "logical_xor", "nan", "ndarray", "ndim", "newaxis", "nonzero", "not_equal",
    "ones", "pi", "shape", "size", "zeros",
}


def test_every_differentiable_function_has_a_row():
    covered = {name for r in ROWS for name in r.covers}
    public = set(fnp.__all__) | {f"linalg.{n}" for n in fnp.linalg.__all__}
    public |= {f"nn.{n}" for n in fg.nn.__all__  # the array functions, not the Modules
               if getattr(getattr(fg.nn, n), "__module__", None) == "fgrad._src.nn_ops"}
    missing = public - NOT_DIFFERENTIABLE - covered
    assert not missing, f"functions without a row in the spec table: {sorted(missing)}"
