"""Batching: evaluate a jaxpr on inputs that carry an extra leading batch axis.

``batch_eval_jaxpr`` walks a jaxpr once; each equation with a batched input
runs its primitive's rule from ``batch_rules``, every other equation is bound
as is. Rules bind primitives, so batching works on concrete arrays and under
any trace (inside ``jit``, ``jacfwd``, ...). ``jacfwd``/``jacrev`` use it to push
a whole stacked basis through a linear program in one evaluation.

A rule is ``rule(args, batched, **params) -> (out, out_batched)``: ``batched[i]``
says whether ``args[i]`` has the batch axis (always axis 0); ``out`` and
``out_batched`` are a value and a bool, or lists for multiple-result primitives.
"""

from __future__ import annotations

import contextlib

import numpy as np

from fgrad._src import core
from fgrad._src.core import Literal, Tracer, get_aval

batch_rules: dict = {}


# --------------------------------------------------------------------------- the interpreter


def batch_eval_jaxpr(jaxpr, consts, args, in_batched, instantiate=False):
    """Evaluate ``jaxpr`` where ``args[i]`` has a leading batch axis iff ``in_batched[i]``.

    Returns ``(outs, out_batched)``. With ``instantiate=True`` every output is
    batched (unbatched ones are broadcast along a new leading axis).

    >>> import fgrad as fg
    >>> closed = fg.make_jaxpr(lambda x, y: x * y)(np.ones(2), np.ones(2))
    >>> outs, batched = batch_eval_jaxpr(
    ...     closed.jaxpr, closed.consts, [np.eye(2), np.array([2.0, 3.0])], [True, False])
    >>> outs[0], batched
    (array([[2., 0.],
           [0., 3.]]), [True])
    """
    if len(args) != len(jaxpr.in_binders) or len(in_batched) != len(args):
        raise TypeError(
            f"jaxpr takes {len(jaxpr.in_binders)} arguments, got {len(args)} arguments "
            f"and {len(in_batched)} batched flags"
        )
    env: dict = {}  # Var -> (value, batched)
    for v, val in zip(jaxpr.constvars, consts):
        env[v] = (val, False)
    for v, val, b in zip(jaxpr.in_binders, args, in_batched):
        env[v] = (val, bool(b))

    def read(x):
        return (x.val, False) if isinstance(x, Literal) else env[x]

    for eqn in jaxpr.eqns:
        vals, batched = zip(*[read(x) for x in eqn.inputs]) if eqn.inputs else ((), ())
        # NB: a batched equation of concrete values only (e.g. slicing the one-hot basis)
        # is evaluated at once, even inside jit: its result becomes a constant of the
        # staged program instead of work done on every run. (Unbatched ones stay staged:
        # a broadcast scalar is cheaper in the program than as a materialized constant.)
        concrete = any(batched) and not any(isinstance(v, Tracer) for v in vals)
        with _eval_context() if concrete else contextlib.nullcontext():
            outs, outs_batched = _apply(eqn.primitive, list(vals), list(batched), eqn.params)
        for v, val, b in zip(eqn.out_binders, outs, outs_batched):
            env[v] = (val, b)

    outs, out_batched = [list(t) for t in zip(*[read(x) for x in jaxpr.outs])] or ([], [])
    if instantiate:
        size = axis_size(args, in_batched)
        outs = [x if b else broadcast_batch(x, size) for x, b in zip(outs, out_batched)]
        out_batched = [True] * len(outs)
    return outs, out_batched


def _apply(prim, vals, batched, params):
    """One equation: bind it as is, or through its batching rule if an input is batched."""
    if not any(batched):
        outs = prim.bind_list(*vals, **params)
        return outs, [False] * len(outs)
    rule = batch_rules.get(prim)
    if rule is None:
        raise NotImplementedError(f"primitive {prim.name} has no batching rule")
    outs, outs_batched = rule(vals, batched, **params)
    if not prim.multiple_results:
        return [outs], [outs_batched]
    return outs, outs_batched


@contextlib.contextmanager
def _eval_context():
    """Bind on concrete values at once, even while a ``jit`` is staging (the dynamic trace)."""
    with core.new_dynamic(core.MainTrace(0, core.EvalTrace, None)):
        yield


# --------------------------------------------------------------------------- helpers for rules


def axis_size(args, batched) -> int:
    """The batch size: the leading dimension of the batched arguments."""
    for x, b in zip(args, batched):
        if b:
            return get_aval(x).shape[0]
    raise ValueError("no argument is batched, so the batch size is unknown")


def broadcast_batch(x, size):
    """``x`` repeated ``size`` times along a new leading axis."""
    from fgrad._src.lax import lax

    shape = get_aval(x).shape
    return lax.broadcast_in_dim(x, (size, *shape), tuple(range(1, len(shape) + 1)))


def instantiate_batched(args, batched):
    """All ``args`` with the batch axis: unbatched ones are broadcast to the batch size."""
    size = axis_size(args, batched)
    return [x if b else broadcast_batch(x, size) for x, b in zip(args, batched)]


def move_to_front(x, axis):
    """Move ``axis`` of ``x`` to position 0 (where rules keep the batch axis)."""
    from fgrad._src.lax import lax

    ndim = len(get_aval(x).shape)
    return lax.transpose(x, (axis, *[d for d in range(ndim) if d != axis]))


def shift_axes(axes):
    """Operand axes as seen once a leading batch axis is added."""
    return tuple(a + 1 for a in axes)


def _unstack(x, size):
    from fgrad._src.lax import lax

    shape = get_aval(x).shape
    return [
        lax.squeeze(lax.slice(x, (i,) + (0,) * (len(shape) - 1), (i + 1, *shape[1:])), (0,))
        for i in range(size)
    ]


def _stack(xs):
    from fgrad._src.lax import lax

    return lax.concatenate([lax.expand_dims(x, (0,)) for x in xs], 0)


def _empty_batch(prim, args, batched, params):
    """Outputs with a batch of size 0: zeros of the per-element output shapes."""
    in_avals = [
        get_aval(x).update(shape=get_aval(x).shape[1:]) if b else get_aval(x)
        for x, b in zip(args, batched)
    ]
    out_avals = core.abstract_eval(prim, in_avals, params)
    return [np.zeros((0, *a.shape), a.dtype) for a in out_avals]


def fallback_rule(prim):
    """The generic rule: unstack the batch, apply ``prim`` per element, stack the results.

    Correct for any primitive, but it emits one equation per batch element; primitives
    that appear in derivative programs have specific rules instead.
    """

    def rule(args, batched, **params):
        size = axis_size(args, batched)
        if size == 0:
            outs = _empty_batch(prim, args, batched, params)
        else:
            columns = [_unstack(x, size) if b else [x] * size for x, b in zip(args, batched)]
            results = [prim.bind_list(*element, **params) for element in zip(*columns)]
            outs = [_stack(list(per_out)) for per_out in zip(*results)]
        if prim.multiple_results:
            return outs, [True] * len(outs)
        return outs[0], True

    return rule


def defbatch_fallback(prim):
    """Register the generic unstack-apply-stack rule for ``prim``."""
    batch_rules[prim] = fallback_rule(prim)


# --------------------------------------------------------------------------- rule helpers


def defbatch_unop(prim):
    """A shape-preserving primitive of one operand (any params): apply it to the batch."""

    def rule(args, batched, **params):
        (x,) = args
        return prim.bind(x, **params), True

    batch_rules[prim] = rule


def defbatch_elementwise(prim):
    """An elementwise primitive of equal-shaped operands: broadcast the unbatched ones."""

    def rule(args, batched, **params):
        return prim.bind(*instantiate_batched(args, batched), **params), True

    batch_rules[prim] = rule


def defbatch_axes(prim, param, shift=shift_axes):
    """A one-operand primitive whose param ``param`` names operand axes (reductions,
    squeeze, rev, ...): shift those axes past the batch axis.
    """

    def rule(args, batched, **params):
        (x,) = args
        params = dict(params, **{param: shift(params[param])})
        return prim.bind(x, **params), True

    batch_rules[prim] = rule
