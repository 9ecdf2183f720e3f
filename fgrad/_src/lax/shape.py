"""Shape primitives: broadcast_in_dim, reshape, transpose, squeeze, expand_dims,
concatenate, pad, slice, rev, iota — all linear, so each has a transpose rule.
"""

import math

import numpy as np

from fgrad._src import core
from fgrad._src.core import ShapedArray
from fgrad._src.interpreters import ad, batching
from fgrad._src.interpreters.ad import UndefPrimal
from fgrad._src.lax import lax
from fgrad._src.lax.utils import primitive


def full(shape, fill_value, dtype):
    """An array of ``shape`` filled with ``fill_value`` (staged as one broadcast)."""
    dtype = np.dtype(dtype)
    if isinstance(fill_value, core.Tracer):
        fill_value = lax.convert_element_type(fill_value, dtype)
    else:
        fill_value = np.asarray(fill_value, dtype)
    return broadcast_in_dim(fill_value, tuple(shape), ())


def full_like(x, fill_value, dtype=None):
    aval = core.get_aval(x)
    return full(aval.shape, fill_value, aval.dtype if dtype is None else dtype)


# --------------------------------------------------------------------------- broadcast_in_dim


def _broadcast_in_dim_abstract(x, *, shape, broadcast_dimensions):
    if len(broadcast_dimensions) != x.ndim:
        raise ValueError(f"broadcast_in_dim: {x} needs {x.ndim} broadcast dimensions")
    if any(n < 0 for n in shape):
        raise ValueError(f"negative dimensions are not allowed (broadcast_in_dim to shape "
                         f"{tuple(shape)})")
    for i, d in enumerate(broadcast_dimensions):
        if not 0 <= d < len(shape) or x.shape[i] not in (1, shape[d]):
            raise ValueError(f"broadcast_in_dim: cannot broadcast {x} to shape {shape}")
    if list(broadcast_dimensions) != sorted(broadcast_dimensions):
        raise ValueError("broadcast_in_dim: broadcast_dimensions must be increasing")
    return ShapedArray(shape, x.dtype, x.weak_type)


def _broadcast_in_dim_impl(x, *, shape, broadcast_dimensions):
    x = np.asarray(x)
    expanded = [1] * len(shape)
    for i, d in enumerate(broadcast_dimensions):
        expanded[d] = x.shape[i]
    return np.broadcast_to(x.reshape(expanded), shape)


broadcast_in_dim_p = primitive(
    "broadcast_in_dim", _broadcast_in_dim_abstract, _broadcast_in_dim_impl
)
broadcast_in_dim_p.stage_once_per_literal = True


def broadcast_in_dim(x, shape, broadcast_dimensions):
    shape, broadcast_dimensions = tuple(shape), tuple(broadcast_dimensions)
    if core.get_aval(x).shape == shape and broadcast_dimensions == tuple(range(len(shape))):
        return x
    return broadcast_in_dim_p.bind(x, shape=shape, broadcast_dimensions=broadcast_dimensions)


def _broadcast_in_dim_transpose(ct, x, *, shape, broadcast_dimensions):
    # Sum over the new dimensions and over the ones that were stretched from 1.
    new_dims = tuple(d for d in range(len(shape)) if d not in broadcast_dimensions)
    stretched = tuple(
        d for i, d in enumerate(broadcast_dimensions) if x.aval.shape[i] == 1 and shape[d] != 1
    )
    summed = lax.reduce_sum(ct, tuple(sorted(new_dims + stretched)))
    return [reshape(summed, x.aval.shape)]


ad.deflinear(broadcast_in_dim_p, _broadcast_in_dim_transpose)


def _broadcast_in_dim_batch(args, batched, *, shape, broadcast_dimensions):
    (x,) = args
    size = core.get_aval(x).shape[0]
    dims = (0, *batching.shift_axes(broadcast_dimensions))
    return broadcast_in_dim(x, (size, *shape), dims), True


batching.batch_rules[broadcast_in_dim_p] = _broadcast_in_dim_batch

# --------------------------------------------------------------------------- reshape


def _reshape_abstract(x, *, new_sizes):
    if math.prod(new_sizes) != x.size:
        raise ValueError(f"cannot reshape {x} to {new_sizes}")
    return ShapedArray(new_sizes, x.dtype, x.weak_type)


reshape_p = primitive(
    "reshape", _reshape_abstract, lambda x, *, new_sizes: np.reshape(x, new_sizes)
)


def reshape(x, new_sizes):
    new_sizes = tuple(int(d) for d in new_sizes)
    if core.get_aval(x).shape == new_sizes:
        return x
    return reshape_p.bind(x, new_sizes=new_sizes)


ad.deflinear(reshape_p, lambda ct, x, *, new_sizes: [reshape(ct, x.aval.shape)])


def _reshape_batch(args, batched, *, new_sizes):
    (x,) = args
    return reshape(x, (core.get_aval(x).shape[0], *new_sizes)), True


batching.batch_rules[reshape_p] = _reshape_batch

# --------------------------------------------------------------------------- transpose


def _transpose_abstract(x, *, permutation):
    if sorted(permutation) != list(range(x.ndim)):
        raise ValueError(f"transpose: {permutation} is not a permutation of {x.ndim} axes")
    return ShapedArray(tuple(x.shape[p] for p in permutation), x.dtype, x.weak_type)


transpose_p = primitive(
    "transpose", _transpose_abstract, lambda x, *, permutation: np.transpose(x, permutation)
)


def transpose(x, permutation):
    permutation = tuple(int(p) for p in permutation)
    if permutation == tuple(range(len(permutation))):
        return x
    return transpose_p.bind(x, permutation=permutation)


ad.deflinear(
    transpose_p,
    lambda ct, x, *, permutation: [transpose(ct, tuple(np.argsort(permutation)))],
)
batching.defbatch_axes(transpose_p, "permutation", lambda p: (0, *batching.shift_axes(p)))

# --------------------------------------------------------------------------- squeeze / expand_dims


def _squeeze_abstract(x, *, dimensions):
    for d in dimensions:
        if x.shape[d] != 1:
            raise ValueError(f"squeeze: dimension {d} of {x} is not of size 1")
    shape = tuple(s for i, s in enumerate(x.shape) if i not in dimensions)
    return ShapedArray(shape, x.dtype, x.weak_type)


squeeze_p = primitive(
    "squeeze", _squeeze_abstract, lambda x, *, dimensions: np.squeeze(x, dimensions)
)


def squeeze(x, dimensions):
    dimensions = tuple(sorted(int(d) for d in dimensions))
    return squeeze_p.bind(x, dimensions=dimensions) if dimensions else x


ad.deflinear(squeeze_p, lambda ct, x, *, dimensions: [expand_dims(ct, dimensions)])
batching.defbatch_axes(squeeze_p, "dimensions")


def _expand_dims_abstract(x, *, dimensions):
    shape = list(x.shape)
    for d in dimensions:
        shape.insert(d, 1)
    return ShapedArray(shape, x.dtype, x.weak_type)


expand_dims_p = primitive(
    "expand_dims", _expand_dims_abstract, lambda x, *, dimensions: np.expand_dims(x, dimensions)
)


def expand_dims(x, dimensions):
    dimensions = tuple(sorted(int(d) for d in dimensions))
    return expand_dims_p.bind(x, dimensions=dimensions) if dimensions else x


ad.deflinear(expand_dims_p, lambda ct, x, *, dimensions: [squeeze(ct, dimensions)])
batching.defbatch_axes(expand_dims_p, "dimensions")

# --------------------------------------------------------------------------- concatenate


def _concatenate_abstract(*xs, dimension):
    first = xs[0]
    for x in xs[1:]:
        same_other_dims = all(
            a == b for i, (a, b) in enumerate(zip(x.shape, first.shape)) if i != dimension
        )
        if x.ndim != first.ndim or x.dtype != first.dtype or not same_other_dims:
            raise ValueError(f"concatenate: operands {first} and {x} do not agree")
    shape = list(first.shape)
    shape[dimension] = sum(x.shape[dimension] for x in xs)
    return ShapedArray(shape, first.dtype, all(x.weak_type for x in xs))


concatenate_p = primitive(
    "concatenate", _concatenate_abstract, lambda *xs, dimension: np.concatenate(xs, dimension)
)


def concatenate(xs, dimension):
    xs = list(xs)
    return xs[0] if len(xs) == 1 else concatenate_p.bind(*xs, dimension=int(dimension))


def _concatenate_transpose(ct, *xs, dimension):
    cts, start = [], 0
    for x in xs:
        size = x.aval.shape[dimension] if isinstance(x, UndefPrimal) else np.shape(x)[dimension]
        if isinstance(x, UndefPrimal):
            starts = [0] * len(x.aval.shape)
            starts[dimension] = start
            limits = list(x.aval.shape)
            limits[dimension] = start + size
            cts.append(slice(ct, starts, limits))
        else:
            cts.append(None)
        start += size
    return cts


ad.deflinear(concatenate_p, _concatenate_transpose)


def _concatenate_batch(args, batched, *, dimension):
    return concatenate(batching.instantiate_batched(args, batched), dimension + 1), True


batching.batch_rules[concatenate_p] = _concatenate_batch

# --------------------------------------------------------------------------- pad


def _pad_abstract(x, padding_value, *, padding_config):
    if padding_value.shape != () or padding_value.dtype != x.dtype:
        raise TypeError(f"pad: padding value must be a {x.dtype} scalar, got {padding_value}")
    if len(padding_config) != x.ndim:
        raise ValueError(f"pad: {x} needs {x.ndim} (low, high, interior) triples")
    shape = []
    for n, (lo, hi, interior) in zip(x.shape, padding_config):
        if lo < 0 or hi < 0 or interior < 0:
            raise ValueError("pad: padding amounts must be non-negative")
        shape.append(lo + hi + n + max(n - 1, 0) * interior)
    return ShapedArray(shape, x.dtype, x.weak_type)


def _pad_impl(x, padding_value, *, padding_config):
    x = np.asarray(x)
    shape = _pad_abstract(core.get_aval(x), core.get_aval(padding_value),
                          padding_config=padding_config).shape
    out = np.full(shape, padding_value, dtype=x.dtype)
    index = tuple(
        np.s_[lo: lo + max(n - 1, 0) * (interior + 1) + 1: interior + 1] if n else np.s_[lo:lo]
        for n, (lo, hi, interior) in zip(x.shape, padding_config)
    )
    out[index] = x
    return out


pad_p = primitive("pad", _pad_abstract, _pad_impl)


def pad(x, padding_value, padding_config):
    config = tuple(tuple(int(v) for v in triple) for triple in padding_config)
    return pad_p.bind(x, padding_value, padding_config=config)


def _pad_transpose(ct, x, padding_value, *, padding_config):
    starts = [lo for lo, _, _ in padding_config]
    limits = [s - hi for s, (_, hi, _) in zip(ct.shape, padding_config)]
    strides = [interior + 1 for _, _, interior in padding_config]
    ct_x = slice(ct, starts, limits, strides)
    ct_x_shaped = ct_x if isinstance(x, UndefPrimal) else None
    ct_value = None
    if isinstance(padding_value, UndefPrimal):
        total = lax.reduce_sum(ct, tuple(range(len(ct.shape))))
        inner = lax.reduce_sum(ct_x, tuple(range(len(ct.shape))))
        ct_value = lax.sub(total, inner)
    return [ct_x_shaped, ct_value]


ad.deflinear(pad_p, _pad_transpose)


def _pad_batch(args, batched, *, padding_config):
    x, padding_value = args
    if batched[1]:
        # A padding value per batch element: rare (never in derivative programs).
        return batching.fallback_rule(pad_p)(args, batched, padding_config=padding_config)
    return pad(x, padding_value, ((0, 0, 0), *padding_config)), True


batching.batch_rules[pad_p] = _pad_batch

# --------------------------------------------------------------------------- slice


def _slice_abstract(x, *, start_indices, limit_indices, strides):
    shape = []
    for n, start, limit, stride in zip(x.shape, start_indices, limit_indices, strides):
        if not (0 <= start <= limit <= n) or stride < 1:
            raise IndexError(f"slice [{start}:{limit}:{stride}] is out of range for {x}")
        shape.append(-(-(limit - start) // stride))
    if len(start_indices) != x.ndim:
        raise ValueError(f"slice: {x} needs {x.ndim} start indices")
    return ShapedArray(shape, x.dtype, x.weak_type)


def _slice_impl(x, *, start_indices, limit_indices, strides):
    index = tuple(np.s_[a:b:s] for a, b, s in zip(start_indices, limit_indices, strides))
    return np.asarray(x)[index]


slice_p = primitive("slice", _slice_abstract, _slice_impl)


def slice(x, start_indices, limit_indices, strides=None):  # noqa: A001  (lax vocabulary)
    start_indices = tuple(int(i) for i in start_indices)
    limit_indices = tuple(int(i) for i in limit_indices)
    strides = (1,) * len(start_indices) if strides is None else tuple(int(s) for s in strides)
    return slice_p.bind(
        x, start_indices=start_indices, limit_indices=limit_indices, strides=strides
    )


def _slice_transpose(ct, x, *, start_indices, limit_indices, strides):
    config = []
    for n, start, m, stride in zip(x.aval.shape, start_indices, ct.shape, strides):
        if m == 0:
            config.append((start, n - start, 0))
        else:
            config.append((start, n - (start + (m - 1) * stride + 1), stride - 1))
    return [pad(ct, np.zeros((), ct.dtype), config)]


ad.deflinear(slice_p, _slice_transpose)


def _slice_batch(args, batched, *, start_indices, limit_indices, strides):
    (x,) = args
    size = core.get_aval(x).shape[0]
    return slice(x, (0, *start_indices), (size, *limit_indices), (1, *strides)), True


batching.batch_rules[slice_p] = _slice_batch

# --------------------------------------------------------------------------- rev

rev_p = primitive(
    "rev", lambda x, *, dimensions: x, lambda x, *, dimensions: np.flip(x, dimensions)
)


def rev(x, dimensions):
    dimensions = tuple(sorted(int(d) for d in dimensions))
    return rev_p.bind(x, dimensions=dimensions) if dimensions else x


ad.deflinear(rev_p, lambda ct, x, *, dimensions: [rev(ct, dimensions)])
batching.defbatch_axes(rev_p, "dimensions")

# --------------------------------------------------------------------------- iota


def _iota_abstract(*, dtype, shape, dimension):
    if not 0 <= dimension < len(shape):
        raise ValueError(f"iota: dimension {dimension} out of range for shape {shape}")
    return ShapedArray(shape, dtype)


def _iota_impl(*, dtype, shape, dimension):
    ramp = np.arange(shape[dimension], dtype=dtype)
    expanded = [1] * len(shape)
    expanded[dimension] = shape[dimension]
    return np.broadcast_to(ramp.reshape(expanded), shape).copy()


iota_p = primitive("iota", _iota_abstract, _iota_impl)


def iota(dtype, shape, dimension=0):
    return iota_p.bind(dtype=np.dtype(dtype), shape=tuple(shape), dimension=int(dimension))


ad.defjvp_zero(iota_p)
# NB: iota has no operands, so it is never batched; the generic rule keeps the table full.
batching.defbatch_fallback(iota_p)
