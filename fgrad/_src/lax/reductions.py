"""Reduction primitives: reduce_sum, reduce_max, reduce_min, reduce_prod, argmax, argmin,
and cumsum. ``axes`` are sorted, non-negative, and removed from the output shape.
"""

import numpy as np

from fgrad._src import core
from fgrad._src.core import ShapedArray
from fgrad._src.interpreters import ad, batching
from fgrad._src.lax import lax
from fgrad._src.lax.utils import primitive


def _reduced_abstract(name, accepted_bool=True):
    def abstract(x, *, axes):
        for a in axes:
            if not 0 <= a < x.ndim:
                raise ValueError(f"{name}: axis {a} is out of range for {x}")
        if not accepted_bool and x.dtype == bool:
            raise TypeError(f"{name} does not accept boolean operands")
        shape = tuple(s for i, s in enumerate(x.shape) if i not in axes)
        return ShapedArray(shape, x.dtype, x.weak_type)

    return abstract


def _keep_dims_shape(shape, axes):
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def _broadcast_back(ct, operand_shape, axes):
    """Broadcast a reduced value back to the operand's shape."""
    kept = tuple(i for i in range(len(operand_shape)) if i not in axes)
    return lax.broadcast_in_dim(ct, operand_shape, kept)


def _reduction(name, ufunc, accepted_bool=True):
    def impl(x, *, axes):
        # NB: ufunc.reduce is what np.sum/np.max/... call (same pairwise sums, same
        # bits), without their wrappers; a full reduction gives a NumPy scalar, as
        # NumPy does. Small integers are summed in int64 by NumPy: cast back.
        out = ufunc.reduce(x, axis=axes)
        return out if out.dtype == x.dtype else np.asarray(out, x.dtype)[()]

    return primitive(name, _reduced_abstract(name, accepted_bool), impl)


def _canonical_axes(axes):
    return tuple(sorted(int(a) for a in axes))


# --------------------------------------------------------------------------- reduce_sum

reduce_sum_p = _reduction("reduce_sum", np.add, accepted_bool=False)


def reduce_sum(x, axes):
    axes = _canonical_axes(axes)
    return reduce_sum_p.bind(x, axes=axes) if axes else x


ad.deflinear(
    reduce_sum_p, lambda ct, x, *, axes: [_broadcast_back(ct, x.aval.shape, axes)]
)
batching.defbatch_axes(reduce_sum_p, "axes")

# --------------------------------------------------------------------------- reduce_max / min


def _minmax_jvp(prim):
    # Ties share the gradient equally: the minimum-norm subgradient (docs/kinks.md).
    def jvp(g, ans, x, *, axes):
        shape = core.get_aval(x).shape
        location = lax.convert_element_type(
            lax.eq(x, _broadcast_back(ans, shape, axes)), core.get_aval(g).dtype
        )
        counts = reduce_sum(location, axes)
        return lax.div(reduce_sum(lax.mul(g, location), axes), counts)

    ad.defjvp2(prim, jvp)


reduce_max_p = _reduction("reduce_max", np.maximum)
reduce_min_p = _reduction("reduce_min", np.minimum)
_minmax_jvp(reduce_max_p)
_minmax_jvp(reduce_min_p)
batching.defbatch_axes(reduce_max_p, "axes")
batching.defbatch_axes(reduce_min_p, "axes")


def reduce_max(x, axes):
    axes = _canonical_axes(axes)
    return reduce_max_p.bind(x, axes=axes) if axes else x


def reduce_min(x, axes):
    axes = _canonical_axes(axes)
    return reduce_min_p.bind(x, axes=axes) if axes else x


# --------------------------------------------------------------------------- reduce_prod

reduce_prod_p = _reduction("reduce_prod", np.multiply, accepted_bool=False)


def reduce_prod(x, axes):
    axes = _canonical_axes(axes)
    return reduce_prod_p.bind(x, axes=axes) if axes else x


def _reduce_prod_jvp(g, x, *, axes):
    # d prod / d x_i = the product of the others, exactly, at zeros too.
    return reduce_sum(lax.mul(g, _products_of_the_others(x, axes)), axes)


def _products_of_the_others(x, axes):
    """Each element's product of the other elements of its group (the ``axes``).

    NB: exclusive prefix and suffix products (by doubling), multiplied: no division by
    an element and no select on zeros, so every derivative of this is exact too (the
    Hessian of a product with zeros in it, for one).
    """
    aval = core.get_aval(x)
    shape = aval.shape
    kept = [d for d in range(len(shape)) if d not in axes]
    perm = kept + sorted(axes)
    lead = tuple(shape[d] for d in kept)
    n = int(np.prod([shape[d] for d in axes], dtype=np.int64))
    if n <= 1:
        return lax.full_like(x, 1)
    flat = lax.reshape(lax.transpose(x, perm), lead + (n,))
    one, last = np.ones((), aval.dtype), len(lead)

    def shifted(v, k):  # v moved k places along the last axis, ones coming in
        cut = lax.slice(v, (0,) * (last + 1), lead + (n - k,))
        return lax.pad(cut, one, [(0, 0, 0)] * last + [(k, 0, 0)])

    def exclusive_prefix(v):
        k = 1
        while k < n:
            v = lax.mul(v, shifted(v, k))
            k *= 2
        return shifted(v, 1)

    others = lax.mul(exclusive_prefix(flat),
                     lax.rev(exclusive_prefix(lax.rev(flat, (last,))), (last,)))
    others = lax.reshape(others, tuple(shape[d] for d in perm))
    return lax.transpose(others, tuple(int(i) for i in np.argsort(perm)))


ad.defjvp(reduce_prod_p, _reduce_prod_jvp)
batching.defbatch_axes(reduce_prod_p, "axes")

# --------------------------------------------------------------------------- argmax / argmin


def _arg_abstract(x, *, axes, index_dtype):
    if len(axes) != 1 or not 0 <= axes[0] < x.ndim:
        raise ValueError(f"arg reductions take exactly one valid axis, got {axes} for {x}")
    if x.shape[axes[0]] == 0:
        raise ValueError("attempt to get argmax/argmin of an empty sequence")
    shape = tuple(s for i, s in enumerate(x.shape) if i != axes[0])
    return ShapedArray(shape, index_dtype)


def _arg_impl(numpy_fn):
    def impl(x, *, axes, index_dtype):
        return np.asarray(numpy_fn(x, axis=axes[0]), dtype=index_dtype)[()]

    return impl


argmax_p = primitive("argmax", _arg_abstract, _arg_impl(np.argmax))
argmin_p = primitive("argmin", _arg_abstract, _arg_impl(np.argmin))
ad.defjvp_zero(argmax_p)
ad.defjvp_zero(argmin_p)
batching.defbatch_axes(argmax_p, "axes")
batching.defbatch_axes(argmin_p, "axes")


def argmax(x, axis, index_dtype=np.int64):
    return argmax_p.bind(x, axes=(int(axis),), index_dtype=np.dtype(index_dtype))


def argmin(x, axis, index_dtype=np.int64):
    return argmin_p.bind(x, axes=(int(axis),), index_dtype=np.dtype(index_dtype))


# --------------------------------------------------------------------------- cumsum


def _cumsum_abstract(x, *, axis, reverse):
    if not 0 <= axis < x.ndim:
        raise ValueError(f"cumsum: axis {axis} is out of range for {x}")
    return x


def _cumsum_impl(x, *, axis, reverse):
    x = np.asarray(x)
    if reverse:
        return np.flip(np.cumsum(np.flip(x, axis), axis=axis, dtype=x.dtype), axis)
    return np.cumsum(x, axis=axis, dtype=x.dtype)


cumsum_p = primitive("cumsum", _cumsum_abstract, _cumsum_impl)


def cumsum(x, axis, reverse=False):
    return cumsum_p.bind(x, axis=int(axis), reverse=bool(reverse))


ad.deflinear(
    cumsum_p, lambda ct, x, *, axis, reverse: [cumsum(ct, axis, not reverse)]
)
batching.defbatch_axes(cumsum_p, "axis", lambda axis: axis + 1)
