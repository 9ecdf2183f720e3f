"""Indexing primitives: dynamic_slice, dynamic_update_slice, gather, scatter_add.

``gather(x, indices, axis)`` is ``np.take``: it replaces ``axis`` of ``x`` by
the shape of the integer array ``indices``; ``scatter_add`` is its transpose.
Indices are checked before use: out-of-range indices raise ``IndexError``.
"""

import numpy as np

from fgrad._src.core import ShapedArray, get_aval
from fgrad._src.interpreters import ad, batching
from fgrad._src.interpreters.ad import UndefPrimal
from fgrad._src.lax import lax
from fgrad._src.lax.utils import primitive


def _check_index_avals(name, indices):
    for index in indices:
        if index.dtype.kind not in "iu":
            raise TypeError(f"{name}: indices must be integers, got {index}")


# --------------------------------------------------------------------------- dynamic_slice


def _dynamic_slice_abstract(x, *starts, slice_sizes):
    _check_index_avals("dynamic_slice", starts)
    if len(starts) != x.ndim or len(slice_sizes) != x.ndim:
        raise ValueError(f"dynamic_slice: {x} needs {x.ndim} start indices and sizes")
    if any(s.shape != () for s in starts):
        raise TypeError("dynamic_slice: start indices must be scalars")
    if any(not 0 <= size <= n for size, n in zip(slice_sizes, x.shape)):
        raise ValueError(f"dynamic_slice: sizes {slice_sizes} do not fit in {x}")
    return ShapedArray(slice_sizes, x.dtype, x.weak_type)


def _clamped_starts(shape, starts, sizes):
    # As in XLA, start indices are clamped so the slice stays inside the operand.
    return [int(np.clip(int(s), 0, n - size)) for s, n, size in zip(starts, shape, sizes)]


def _dynamic_slice_impl(x, *starts, slice_sizes):
    x = np.asarray(x)
    starts = _clamped_starts(x.shape, starts, slice_sizes)
    return x[tuple(np.s_[s: s + size] for s, size in zip(starts, slice_sizes))]


dynamic_slice_p = primitive("dynamic_slice", _dynamic_slice_abstract, _dynamic_slice_impl)


def dynamic_slice(x, starts, slice_sizes):
    return dynamic_slice_p.bind(x, *starts, slice_sizes=tuple(int(s) for s in slice_sizes))


def _dynamic_slice_transpose(ct, x, *starts, slice_sizes):
    zeros = lax.full(x.aval.shape, 0, x.aval.dtype)
    return [dynamic_update_slice(zeros, ct, starts)] + [None] * len(starts)


ad.deflinear(dynamic_slice_p, _dynamic_slice_transpose, linear_argnums=(0,))


def _dynamic_slice_batch(args, batched, *, slice_sizes):
    x, *starts = args
    if any(batched[1:]):
        # Start indices per batch element: never in derivative programs.
        return batching.fallback_rule(dynamic_slice_p)(args, batched, slice_sizes=slice_sizes)
    size = get_aval(x).shape[0]
    return dynamic_slice(x, [np.int64(0), *starts], (size, *slice_sizes)), True


batching.batch_rules[dynamic_slice_p] = _dynamic_slice_batch

# --------------------------------------------------------------------------- dynamic_update_slice


def _dynamic_update_slice_abstract(x, update, *starts):
    _check_index_avals("dynamic_update_slice", starts)
    if update.ndim != x.ndim or any(u > n for u, n in zip(update.shape, x.shape)):
        raise ValueError(f"dynamic_update_slice: update {update} does not fit in {x}")
    if update.dtype != x.dtype:
        raise TypeError(f"dynamic_update_slice: dtypes differ: {x} and {update}")
    return x


def _dynamic_update_slice_impl(x, update, *starts):
    out = np.array(x, copy=True)
    update = np.asarray(update)
    starts = _clamped_starts(out.shape, starts, update.shape)
    out[tuple(np.s_[s: s + n] for s, n in zip(starts, update.shape))] = update
    return out


dynamic_update_slice_p = primitive(
    "dynamic_update_slice", _dynamic_update_slice_abstract, _dynamic_update_slice_impl
)


def dynamic_update_slice(x, update, starts):
    return dynamic_update_slice_p.bind(x, update, *starts)


def _dynamic_update_slice_transpose(ct, x, update, *starts):
    update_shape = update.aval.shape if isinstance(update, UndefPrimal) else np.shape(update)
    ct_x = None
    if isinstance(x, UndefPrimal):
        ct_x = dynamic_update_slice(ct, lax.full(update_shape, 0, ct.dtype), starts)
    ct_update = dynamic_slice(ct, starts, update_shape) if isinstance(update, UndefPrimal) else None
    return [ct_x, ct_update] + [None] * len(starts)


ad.deflinear(
    dynamic_update_slice_p, _dynamic_update_slice_transpose, linear_argnums=(0, 1)
)


def _dynamic_update_slice_batch(args, batched):
    x, update, *starts = args
    if any(batched[2:]):
        return batching.fallback_rule(dynamic_update_slice_p)(args, batched)
    x, update = batching.instantiate_batched([x, update], batched[:2])
    return dynamic_update_slice(x, update, [np.int64(0), *starts]), True


batching.batch_rules[dynamic_update_slice_p] = _dynamic_update_slice_batch

# --------------------------------------------------------------------------- gather


def _gather_abstract(x, indices, *, axis):
    _check_index_avals("gather", [indices])
    if not 0 <= axis < x.ndim:
        raise ValueError(f"gather: axis {axis} is out of range for {x}")
    shape = x.shape[:axis] + indices.shape + x.shape[axis + 1:]
    return ShapedArray(shape, x.dtype, x.weak_type)


def check_indices_in_range(indices, size, what="index", negative=False):
    """Raise ``IndexError`` unless every index lies in ``[0, size)`` (``[-size, size)``
    with ``negative``: indices as the user wrote them, reported unwrapped)."""
    indices = np.asarray(indices)
    low = -size if negative else 0
    if indices.size and (indices.min() < low or indices.max() >= size):
        bad = indices[(indices < low) | (indices >= size)].flat[0]
        raise IndexError(f"{what} {bad} is out of bounds for axis of size {size}")


def _gather_impl(x, indices, *, axis):
    x = np.asarray(x)
    check_indices_in_range(indices, x.shape[axis])
    return np.take(x, indices, axis=axis)


gather_p = primitive("gather", _gather_abstract, _gather_impl)


def gather(x, indices, axis):
    return gather_p.bind(x, indices, axis=int(axis))


def _gather_transpose(ct, x, indices, *, axis):
    zeros = lax.full(x.aval.shape, 0, x.aval.dtype)
    return [scatter_add(zeros, indices, ct, axis), None]


ad.deflinear(gather_p, _gather_transpose, linear_argnums=(0,))


def _gather_batch(args, batched, *, axis):
    x, indices = args
    if batched == [True, False]:
        return gather(x, indices, axis + 1), True
    if batched == [False, True]:
        # The batched indices replace ``axis``, so the batch axis lands there.
        return batching.move_to_front(gather(x, indices, axis), axis), True
    return batching.fallback_rule(gather_p)(args, batched, axis=axis)


batching.batch_rules[gather_p] = _gather_batch

# --------------------------------------------------------------------------- scatter_add


def _scatter_add_abstract(x, indices, updates, *, axis):
    expected = _gather_abstract(x, indices, axis=axis)
    if updates.shape != expected.shape or updates.dtype != x.dtype:
        raise ValueError(f"scatter_add: updates {updates} should be {expected.str_short()}")
    return x


def _scatter_add_impl(x, indices, updates, *, axis):
    out = np.array(x, copy=True)
    check_indices_in_range(indices, out.shape[axis])
    moved = np.moveaxis(out, axis, 0)
    upd = np.asarray(updates)
    index_ndim = np.ndim(indices)
    upd = np.moveaxis(upd, tuple(range(axis, axis + index_ndim)), tuple(range(index_ndim)))
    np.add.at(moved, np.asarray(indices), upd)
    return out


scatter_add_p = primitive("scatter_add", _scatter_add_abstract, _scatter_add_impl)


def scatter_add(x, indices, updates, axis):
    return scatter_add_p.bind(x, indices, updates, axis=int(axis))


def _scatter_add_transpose(ct, x, indices, updates, *, axis):
    ct_x = ct if isinstance(x, UndefPrimal) else None
    ct_updates = gather(ct, indices, axis) if isinstance(updates, UndefPrimal) else None
    return [ct_x, None, ct_updates]


ad.deflinear(scatter_add_p, _scatter_add_transpose, linear_argnums=(0, 2))


def _scatter_add_batch(args, batched, *, axis):
    x, indices, updates = args
    if batched[1]:
        return batching.fallback_rule(scatter_add_p)(args, batched, axis=axis)
    x, updates = batching.instantiate_batched([x, updates], [batched[0], batched[2]])
    return scatter_add(x, indices, updates, axis + 1), True


batching.batch_rules[scatter_add_p] = _scatter_add_batch

