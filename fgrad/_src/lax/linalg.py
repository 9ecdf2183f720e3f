"""``dot_general``: contraction over paired dimensions with optional batch dimensions.

Output layout (as in XLA): batch dims, then lhs free dims, then rhs free dims.
"""

import math

import numpy as np

from fgrad._src.core import ShapedArray, get_aval
from fgrad._src.interpreters import ad, batching
from fgrad._src.lax import lax
from fgrad._src.lax.utils import primitive


def _free_dims(ndim, contract, batch):
    return [d for d in range(ndim) if d not in contract and d not in batch]


def _dot_general_abstract(x, y, *, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    if x.dtype != y.dtype:
        raise TypeError(f"dot_general requires equal dtypes, got {x} and {y}")
    if len(lc) != len(rc) or len(lb) != len(rb):
        raise ValueError(f"dot_general: unpaired dimension numbers {dimension_numbers}")
    for a, b in [*zip(lc, rc), *zip(lb, rb)]:
        if x.shape[a] != y.shape[b]:
            raise ValueError(
                f"dot_general: dimension {a} of {x.str_short()} does not match "
                f"dimension {b} of {y.str_short()}"
            )
    shape = (
        [x.shape[d] for d in lb]
        + [x.shape[d] for d in _free_dims(x.ndim, lc, lb)]
        + [y.shape[d] for d in _free_dims(y.ndim, rc, rb)]
    )
    return ShapedArray(shape, x.dtype, x.weak_type and y.weak_type)


def _dot_general_impl(x, y, *, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    x, y = np.asarray(x), np.asarray(y)
    x_free, y_free = _free_dims(x.ndim, lc, lb), _free_dims(y.ndim, rc, rb)
    batch_shape = [x.shape[d] for d in lb]
    # NB: math.prod on Python ints: np.prod costs ~5 us a call, four per eager product.
    m = math.prod(x.shape[d] for d in x_free)
    n = math.prod(y.shape[d] for d in y_free)
    k = math.prod(x.shape[d] for d in lc)
    b = math.prod(batch_shape)
    x3 = np.transpose(x, [*lb, *x_free, *lc]).reshape(b, m, k)
    y3 = np.transpose(y, [*rb, *rc, *y_free]).reshape(b, k, n)
    out = np.matmul(x3, y3)
    shape = batch_shape + [x.shape[d] for d in x_free] + [y.shape[d] for d in y_free]
    return out.reshape(shape)[()]  # a NumPy scalar for 0-d results, as np.dot gives


dot_general_p = primitive("dot_general", _dot_general_abstract, _dot_general_impl)


def dot_general(x, y, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    dims = ((tuple(lc), tuple(rc)), (tuple(lb), tuple(rb)))
    return dot_general_p.bind(x, y, dimension_numbers=dims)


def _transpose_operand(ct, other, own_ndim, other_ndim, own_dims, other_dims, own_first):
    """Cotangent of one operand of dot_general given the other (shared by lhs and rhs)."""
    own_c, own_b = own_dims
    other_c, other_b = other_dims
    nb = len(own_b)
    own_free = _free_dims(own_ndim, own_c, own_b)
    other_free = _free_dims(other_ndim, other_c, other_b)
    # ct's layout: batch, lhs free, rhs free.
    n_lhs_free = len(own_free) if own_first else len(other_free)
    if own_first:
        ct_other_free = tuple(range(nb + n_lhs_free, nb + n_lhs_free + len(other_free)))
    else:
        ct_other_free = tuple(range(nb, nb + n_lhs_free))
    ct_batch = tuple(range(nb))
    # Contracting ``other`` over its free dims leaves its contracting dims, in order;
    # each corresponds to one of our own contracting dims.
    own_rest = [own_c[list(other_c).index(d)] for d in sorted(other_c)]
    # Either operand order gives the cotangent; the layouts differ:
    #   ct first:    batch, own free, own contracting dims
    #   other first: batch, own contracting dims, own free
    # NB: pick the order whose layout already matches the operand, so the common
    # matmul cases need no transpose (a full copy of a weight-sized array).
    ct_first_axes = list(own_b) + own_free + own_rest
    other_first_axes = list(own_b) + own_rest + own_free
    if other_first_axes == list(range(own_ndim)) != ct_first_axes:
        dims = ((tuple(other_free), ct_other_free), (tuple(other_b), ct_batch))
        return dot_general(other, ct, dims)
    dims = ((ct_other_free, tuple(other_free)), (ct_batch, tuple(other_b)))
    out = dot_general(ct, other, dims)
    permutation = [ct_first_axes.index(axis) for axis in range(own_ndim)]
    return lax.transpose(out, permutation)


def _dot_lhs_transpose(ct, x, y, *, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    y_ndim = np.ndim(y) if not hasattr(y, "aval") else len(y.aval.shape)
    return _transpose_operand(ct, y, x.aval.ndim, y_ndim, (lc, lb), (rc, rb), own_first=True)


def _dot_rhs_transpose(ct, x, y, *, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    x_ndim = np.ndim(x) if not hasattr(x, "aval") else len(x.aval.shape)
    return _transpose_operand(ct, x, y.aval.ndim, x_ndim, (rc, rb), (lc, lb), own_first=False)


ad.defbilinear(dot_general_p, _dot_lhs_transpose, _dot_rhs_transpose)


def _dot_general_batch(args, batched, *, dimension_numbers):
    x, y = args
    (lc, rc), (lb, rb) = dimension_numbers
    shift = batching.shift_axes
    if batched[0]:
        lc, lb = shift(lc), shift(lb)
    if batched[1]:
        rc, rb = shift(rc), shift(rb)
    if all(batched):
        # Both batched: the batch axis becomes the first dot batch dimension (output axis 0).
        return dot_general(x, y, ((lc, rc), ((0, *lb), (0, *rb)))), True
    out = dot_general(x, y, ((lc, rc), (lb, rb)))
    # One side batched: its batch axis is a free dimension; outputs are laid out as
    # (dot batch dims, lhs free dims, rhs free dims), and lhs axis 0 is its first free one.
    if batched[0]:
        position = len(lb)
    else:
        position = len(lb) + len(_free_dims(get_aval(x).ndim, lc, lb))
    return batching.move_to_front(out, position), True


batching.batch_rules[dot_general_p] = _dot_general_batch
