"""NumPy-style indexing (``x[idx]``) over slice, rev, reshape and gather primitives.

Supported: ints (negative too), slices with any step, ``None``, ``...``,
integer arrays (NumPy or traced) and constant boolean masks. Advanced indices
follow NumPy's placement rule (adjacent ones stay in place, else go first).
Gradients flow through the transposes: pad for slices, scatter-add for gathers.
"""

from __future__ import annotations

import operator

import numpy as np

from fgrad._src import core
from fgrad._src.core import Tracer, get_aval
from fgrad._src.lax import lax
from fgrad._src.lax.indexing import check_indices_in_range


def _is_int_array(idx) -> bool:
    if isinstance(idx, Tracer):
        return get_aval(idx).dtype.kind in "iu"
    if isinstance(idx, (list, np.ndarray)):
        arr = np.asarray(idx)
        return arr.dtype.kind in "iu" or (arr.size == 0 and arr.dtype.kind == "f")
    return False


def _is_bool_array(idx) -> bool:
    if isinstance(idx, Tracer):
        return get_aval(idx).dtype == bool
    if isinstance(idx, (list, np.ndarray, np.bool_)) or isinstance(idx, bool):
        return np.asarray(idx).dtype == bool
    return False


class _Mask:
    """A constant boolean mask in an index, until its axes are known."""

    __slots__ = ("mask",)

    def __init__(self, mask):
        self.mask = mask


def _expand_index(idx, shape):
    """Normalize ``idx`` to a list without Ellipsis; boolean masks become int arrays.

    Also returns whether an Ellipsis that stands for no axis separates two advanced
    indices: NumPy then moves the indexed axes to the front, as for any separator.
    """
    if not isinstance(idx, tuple):
        idx = (idx,)
    ndim = len(shape)
    entries, consumed, has_ellipsis = [], 0, False
    for item in idx:
        if _is_bool_array(item):
            mask = np.asarray(core.concrete_or_error(item, "boolean mask indexing"))
            if mask.ndim == 0:
                raise IndexError("0-d boolean indices are not supported")
            entries.append(_Mask(mask))
            consumed += mask.ndim
        elif item is Ellipsis:
            if has_ellipsis:
                raise IndexError("an index can only have a single ellipsis ('...')")
            has_ellipsis = True
            entries.append(item)
        else:
            entries.append(item)
            consumed += item is not None
    if consumed > ndim:
        raise IndexError(
            f"too many indices for array: array is {ndim}-dimensional, but {consumed} "
            "were indexed"
        )
    fill = [slice(None)] * (ndim - consumed)
    separated = False
    if has_ellipsis:
        pos = next(k for k, e in enumerate(entries) if e is Ellipsis)
        if not fill:
            has_array = any(isinstance(e, _Mask) or _is_int_array(e) for e in entries)

            def advanced(e):
                return isinstance(e, _Mask) or _is_int_array(e) or (
                    has_array and _is_integer(e))

            separated = (any(advanced(e) for e in entries[:pos])
                         and any(advanced(e) for e in entries[pos + 1:]))
        entries = entries[:pos] + fill + entries[pos + 1:]
    else:
        entries = entries + fill
    items, dim = [], 0
    for e in entries:
        if isinstance(e, _Mask):
            _check_mask(e.mask, shape, dim)
            items.extend(np.nonzero(e.mask))
            dim += e.mask.ndim
        else:
            items.append(e)
            dim += e is not None
    return items, separated


def _check_mask(mask, shape, first):
    for k, size in enumerate(mask.shape):
        if size != shape[first + k]:
            raise IndexError(
                f"boolean index did not match indexed array along axis {first + k}; size "
                f"of axis is {shape[first + k]} but size of corresponding boolean axis is "
                f"{size}")


def getitem(x, idx):
    """``x[idx]`` with NumPy semantics.

    >>> getitem(np.arange(6.0).reshape(2, 3), (slice(None), -1))
    array([2., 5.])
    """
    aval = get_aval(x)
    items, separated = _expand_index(idx, aval.shape)

    # 1. None: insert size-1 axes into x, so each None becomes a full slice.
    new_axes = [k for k, item in enumerate(items) if item is None]
    if new_axes:
        x = lax.expand_dims(x, new_axes)
        items = [slice(None) if item is None else item for item in items]
    shape = get_aval(x).shape

    has_array = any(_is_int_array(item) for item in items)
    # 2. Basic indices: slices (and ints, when there is no advanced index).
    starts, limits, strides, flips, squeeze_dims = [], [], [], [], []
    advanced = []  # (dim, index array)
    for dim, (item, n) in enumerate(zip(items, shape)):
        if isinstance(item, slice):
            start, stop, step = item.indices(n)
            if step > 0:
                starts.append(start)
                limits.append(max(start, stop))
                strides.append(step)
            else:
                # Reverse, then take a forward slice of the reversed axis.
                length = len(range(start, stop, step))
                rstart = n - 1 - start
                starts.append(rstart)
                limits.append(rstart + (length - 1) * (-step) + 1 if length else rstart)
                strides.append(-step)
                flips.append(dim)
            continue
        starts.append(0)
        limits.append(n)
        strides.append(1)
        if _is_int_array(item) or (has_array and _is_integer(item)):
            advanced.append((dim, item))
        elif _is_integer(item):
            i = operator.index(item)
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of bounds for axis {dim} with size {n}")
            starts[-1], limits[-1] = i % n, i % n + 1
            squeeze_dims.append(dim)
        else:
            raise IndexError(
                f"only integers, slices (`:`), ellipsis (`...`), None and integer or boolean "
                f"arrays are valid indices, got {_index_kind(item)}"
            )
    if flips:
        x = lax.rev(x, flips)
    if any(s != 0 for s in starts) or list(limits) != list(shape) or any(s != 1 for s in strides):
        x = lax.slice(x, starts, limits, strides)
    if advanced:
        return _advanced(x, advanced, separated)
    return lax.squeeze(x, squeeze_dims)


def _index_kind(item) -> str:
    """What an invalid index is, for the error: a traced value by its type, e.g. 'a traced
    f64[] value'."""
    if isinstance(item, Tracer):
        return f"a traced {get_aval(item).str_short()} value"
    return type(item).__name__


def _is_integer(item) -> bool:
    if isinstance(item, Tracer):
        aval = get_aval(item)
        return aval.shape == () and aval.dtype.kind in "iu"
    return isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_))


def _normalize_index_array(index, n):
    if isinstance(index, Tracer):
        index = lax.convert_element_type(index, np.int64)
        wrapped = lax.add(index, n)
        # NB: only indices in [-n, 0) wrap; one below -n stays as written, so the range
        # check of gather or scatter-add names the user's index (-6, not -1, for n = 5).
        wraps = lax.bitwise_and(lax.lt(index, 0), lax.ge(wrapped, 0))
        return lax.select_n(wraps, index, wrapped)
    index = np.asarray(index, dtype=np.int64)
    check_indices_in_range(index, n, negative=True)
    return np.where(index < 0, index + n, index)


def _advanced(x, advanced, separated=False):
    """Gather with integer arrays at ``advanced`` dims (after basic slicing); the result's
    index axes go first unless those dims are adjacent and not ``separated``."""
    shape = get_aval(x).shape
    dims = [d for d, _ in advanced]
    index_arrays = [_normalize_index_array(idx, shape[d]) for d, idx in advanced]
    if len(index_arrays) > 1:
        # NB: the gather below checks only the combined flat index; a traced index past
        # its own axis (x[0, 5] of a 3x4 x) would read another element. Gathering each
        # index from iota(axis size) gives the same values, checked against that axis.
        index_arrays = [lax.gather(lax.iota(np.int64, (shape[d],)), i, 0)
                        if isinstance(i, Tracer) else i
                        for d, i in zip(dims, index_arrays)]
    index_shape = tuple(np.broadcast_shapes(*[get_aval(i).shape for i in index_arrays]))
    from fgrad._src.numpy.lax_numpy import _broadcast_to

    index_arrays = [_broadcast_to(i, index_shape) for i in index_arrays]
    # Flat index over the advanced dims: sum(i_k * stride_k).
    flat_index = None
    stride = 1
    for d, index in reversed(list(zip(dims, index_arrays))):
        term = index if stride == 1 else lax.mul(index, np.int64(stride))
        flat_index = term if flat_index is None else lax.add(flat_index, term)
        stride *= shape[d]
    rest = [d for d in range(len(shape)) if d not in dims]
    moved = lax.transpose(x, dims + rest)
    flat = lax.reshape(moved, (stride,) + tuple(shape[d] for d in rest))
    out = lax.gather(flat, flat_index, 0)
    # out: index_shape + rest dims. Adjacent advanced dims stay in place (NumPy rule).
    adjacent = dims == list(range(dims[0], dims[0] + len(dims))) and not separated
    n_index = len(index_shape)
    if adjacent and dims[0] > 0:
        n_before = len([d for d in rest if d < dims[0]])
        perm = (
            list(range(n_index, n_index + n_before))
            + list(range(n_index))
            + list(range(n_index + n_before, n_index + len(rest)))
        )
        out = lax.transpose(out, perm)
    return out
