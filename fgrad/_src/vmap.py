"""``fg.vmap``: map a function over an axis of its arguments in one batched evaluation.

``vmap(f, in_axes, out_axes)(*args)`` traces ``f`` once on one example (the mapped axes
removed from the argument avals; unmapped concrete arguments passed as they are), then
evaluates that jaxpr with ``batching.batch_eval_jaxpr`` on the arguments with their
mapped axes moved to the front: every primitive runs once, through its batching rule,
for the whole batch.
The rules bind primitives, so ``vmap`` composes with ``grad``, ``jit``, ``jacfwd``
and itself.
"""

from __future__ import annotations

import functools
import threading

from fgrad._src.api import _check_leaves, flatten_fun
from fgrad._src.core import Tracer, get_aval
from fgrad._src.errors import check_callable
from fgrad._src.interpreters import batching
from fgrad._src.interpreters.partial_eval import trace_to_jaxpr
from fgrad._src.tree import tree_flatten, tree_unflatten


class _Tracing(threading.local):
    depth = 0  # > 0 while a vmap traces its function (random draws would be shared)


tracing = _Tracing()


def vmap(f, in_axes=0, out_axes=0):
    """Vectorize ``f`` over an axis of its arguments: ``vmap(f)(xs)[i] == f(xs[i])``.

    ``in_axes`` is an int (every argument mapped along that axis), None (not mapped),
    or a tuple with one entry per positional argument, each an int, None or a pytree
    prefix of that argument. ``out_axes`` is an int, None or a pytree prefix of the
    output: where each output gets the batch axis (None: the output must not depend
    on the mapped axis).

    >>> import numpy as np
    >>> import fgrad as fg
    >>> import fgrad.numpy as fnp
    >>> fg.vmap(fnp.dot)(np.ones((3, 2)), np.arange(6.0).reshape(3, 2))
    array([1., 5., 9.])
    >>> fg.vmap(lambda w, x: w * x, in_axes=(None, 1), out_axes=1)(2.0, np.ones((2, 3)))
    array([[2., 2., 2.],
           [2., 2., 2.]])
    """
    check_callable(f, "vmap")
    _check_spec(in_axes, "in_axes")
    _check_spec(out_axes, "out_axes")
    if isinstance(in_axes, list):
        raise TypeError(
            "vmap in_axes must be an int, None or a tuple with one entry per positional "
            f"argument, got the list {in_axes!r}: write it as a tuple"
        )

    @functools.wraps(f)
    def vmapped(*args, **kwargs):
        if kwargs:
            raise TypeError(
                f"vmap: keyword arguments ({', '.join(sorted(kwargs))}) are not supported; "
                "pass them positionally, with an in_axes entry each, or close over them"
            )
        if not args:
            raise TypeError("vmap: the function was called with no positional arguments "
                            "to map over")
        if isinstance(in_axes, tuple) and len(in_axes) != len(args):
            raise ValueError(
                f"vmap in_axes has {len(in_axes)} entries but the function was called with "
                f"{len(args)} positional arguments; give one entry per argument"
            )
        spec = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
        leaves, in_tree = tree_flatten(args)
        _check_leaves(leaves, "vmap arguments")
        axes = _axes_per_leaf(spec, args, "in_axes", "arguments")
        moved, size = _move_mapped_axes(leaves, axes)
        batched = [axis is not None for axis in axes]
        f_flat, store = flatten_fun(f, in_tree, "vmap function output")
        # NB: as in JAX, an unmapped concrete argument reaches f as it is (Python control
        # flow and static arguments may use it); only the rest is traced.
        traced = [k for k, x in enumerate(moved) if batched[k] or isinstance(x, Tracer)]

        def f_traced(*values):
            full = list(moved)
            for k, v in zip(traced, values):
                full[k] = v
            return f_flat(*full)

        tracing.depth += 1
        try:
            closed = trace_to_jaxpr(f_traced, [_unmapped_aval(moved[k], batched[k])
                                               for k in traced])
        finally:
            tracing.depth -= 1
        outs, out_batched = batching.batch_eval_jaxpr(
            closed.jaxpr, closed.consts, [moved[k] for k in traced],
            [batched[k] for k in traced])
        out_tree = store["tree"]
        out_spec = _axes_per_leaf(out_axes, tree_unflatten(out_tree, outs), "out_axes",
                                  "output")
        results = [_place_batch_axis(x, b, axis, size)
                   for x, b, axis in zip(outs, out_batched, out_spec)]
        return tree_unflatten(out_tree, results)

    return vmapped


def _check_spec(spec, name):
    leaves, _ = tree_flatten(spec, is_leaf=lambda s: s is None)
    for axis in leaves:
        if axis is not None and (isinstance(axis, bool) or not isinstance(axis, int)):
            raise TypeError(f"vmap {name} entries must be ints or None, got {axis!r}")


def _axes_per_leaf(spec, value, name, what):
    """The axis of every leaf of ``value`` (flattening order), ``spec`` being a pytree
    prefix of ``value`` whose leaves are ints or None."""
    spec_leaves, spec_def = tree_flatten(spec, is_leaf=lambda s: s is None)
    _, value_def = tree_flatten(value)
    axes: list = []

    def walk(s_def, v_def, spec_iter):
        if s_def.node_type is None:  # a leaf of the spec covers the whole subtree
            axes.extend([next(spec_iter)] * v_def.num_leaves)
            return
        if (s_def.node_type is not v_def.node_type or s_def.aux != v_def.aux
                or len(s_def.children) != len(v_def.children)):
            raise ValueError(
                f"vmap {name} must be a pytree prefix of the {what}: got {name} structure "
                f"{s_def} for {what} structure {v_def}"
            )
        for s_child, v_child in zip(s_def.children, v_def.children):
            walk(s_child, v_child, spec_iter)

    walk(spec_def, value_def, iter(spec_leaves))
    return axes


def _move_mapped_axes(leaves, axes):
    """Each mapped leaf with its mapped axis moved to the front, and the batch size."""
    moved, sizes = [], []
    for k, (x, axis) in enumerate(zip(leaves, axes)):
        if axis is None:
            moved.append(x)
            continue
        shape = get_aval(x).shape
        if not -len(shape) <= axis < len(shape):
            raise ValueError(
                f"vmap was asked to map argument leaf {k} (shape {shape}) along axis {axis}, "
                f"which needs a rank of at least {axis + 1 if axis >= 0 else -axis}; pass "
                "in_axes=None for arguments that are not mapped"
            )
        axis %= len(shape)
        sizes.append((k, shape[axis], axis))
        moved.append(batching.move_to_front(x, axis) if axis else x)
    if not sizes:
        raise ValueError("vmap needs at least one argument mapped along an axis, but in_axes "
                         "maps none (all None)")
    if len({n for _, n, _ in sizes}) > 1:
        listed = "; ".join(f"argument leaf {k} has size {n} along axis {a}"
                           for k, n, a in sizes)
        raise ValueError(f"vmap got inconsistent sizes for the mapped axes: {listed}")
    return moved, sizes[0][1]


def _unmapped_aval(x, batched):
    aval = get_aval(x)
    return aval.update(shape=aval.shape[1:]) if batched else aval


def _place_batch_axis(x, batched, axis, size):
    """An output with its batch axis at ``axis`` (None: it must have none)."""
    from fgrad._src.lax import lax

    if axis is None:
        if batched:
            raise ValueError("vmap: an output depends on the mapped axis but its out_axes "
                             "entry is None; give it an axis to put the batch in")
        return x
    if not batched:
        x = batching.broadcast_batch(x, size)
    ndim = len(get_aval(x).shape)
    if not -ndim <= axis < ndim:
        raise ValueError(f"vmap out_axes {axis} is out of range for an output of "
                         f"{ndim - 1} dimensions (plus the batch axis)")
    axis %= ndim
    if axis == 0:
        return x
    perm = list(range(1, ndim))
    perm.insert(axis, 0)
    return lax.transpose(x, tuple(perm))
