"""Linear algebra for ``fgrad.numpy``: dot, matmul, outer, inner, tensordot, einsum, norm.

Everything lowers to ``dot_general`` (plus reshapes/transposes), whose
transpose rule gives the gradients.
"""

from __future__ import annotations

import builtins
import string

import numpy as np

from fgrad._src.core import get_aval
from fgrad._src.lax import lax
from fgrad._src.numpy import lax_numpy as fnp


def _shape_error(name, a, b, detail):
    return ValueError(
        f"{name}: shapes {get_aval(a).shape} and {get_aval(b).shape} are not aligned: {detail}"
    )


def matmul(a, b):
    """Matrix product with NumPy's broadcasting of batch dimensions (``a @ b``).

    >>> matmul(np.ones((2, 3)), np.ones((3, 4))).shape
    (2, 4)
    """
    return _matmul(a, b, "matmul")


def _matmul(a, b, name):
    a, b = fnp._promote(fnp._operand(a), fnp._operand(b))
    a_aval, b_aval = get_aval(a), get_aval(b)
    if a_aval.ndim == 0 or b_aval.ndim == 0:
        raise ValueError(
            f"{name}: input operand does not have enough dimensions (scalars are not "
            f"allowed; got shapes {a_aval.shape} and {b_aval.shape}); use multiply or *"
        )
    a_shape = a_aval.shape if a_aval.ndim > 1 else (1,) + a_aval.shape
    b_shape = b_aval.shape if b_aval.ndim > 1 else b_aval.shape + (1,)
    if a_shape[-1] != b_shape[-2]:
        raise _shape_error(
            name, a, b,
            f"size {a_shape[-1]} ({'length' if a_aval.ndim == 1 else 'last dim'} of the "
            f"first) != size {b_shape[-2]} "
            f"({'length' if b_aval.ndim == 1 else 'second-to-last dim'} of the second)",
        )
    if a_aval.ndim == 1 or b_aval.ndim <= 2:
        # A vector or matrix operand needs no batch broadcasting: contract directly
        # (the output order of dot_general, a's free dims then b's, is matmul's).
        a_axis = a_aval.ndim - 1
        b_axis = 0 if b_aval.ndim == 1 else b_aval.ndim - 2
        return lax.dot_general(a, b, (((a_axis,), (b_axis,)), ((), ())))
    try:
        batch = tuple(np.broadcast_shapes(a_shape[:-2], b_shape[:-2]))
    except ValueError:
        raise _shape_error(name, a, b, "batch dimensions do not broadcast") from None
    a3 = fnp._broadcast_to(a, batch + a_shape[-2:])
    b3 = fnp._broadcast_to(b, batch + b_shape[-2:])
    nb = len(batch)
    dims = (((nb + 1,), (nb,)), (tuple(range(nb)), tuple(range(nb))))
    return lax.dot_general(a3, b3, dims)


def dot(a, b):
    """``np.dot``: products for scalars, inner for vectors, matmul for matrices,
    and for N-D a sum over the last axis of ``a`` and the second-to-last of ``b``.

    >>> dot(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    np.float64(11.0)
    """
    a, b = fnp._operand(a), fnp._operand(b)
    a_ndim, b_ndim = get_aval(a).ndim, get_aval(b).ndim
    if a_ndim == 0 or b_ndim == 0:
        return fnp.multiply(a, b)
    if b_ndim <= 2 and a_ndim <= 2:
        return _matmul(a, b, "dot")
    b_axis = 0 if b_ndim == 1 else b_ndim - 2
    return tensordot(a, b, ((a_ndim - 1,), (b_axis,)), name="dot")


def outer(a, b):
    """Outer product of the flattened inputs (``np.outer``).

    >>> outer(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    array([[3., 4.],
           [6., 8.]])
    """
    a, b = fnp.ravel(a), fnp.ravel(b)
    return fnp.multiply(fnp.reshape(a, (-1, 1)), fnp.reshape(b, (1, -1)))


def inner(a, b):
    """Sum product over the last axes (``np.inner``).

    >>> inner(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    np.float64(11.0)
    """
    a, b = fnp._operand(a), fnp._operand(b)
    if get_aval(a).ndim == 0 or get_aval(b).ndim == 0:
        return fnp.multiply(a, b)
    return tensordot(a, b, ((-1,), (-1,)), name="inner")


def tensordot(a, b, axes=2, name="tensordot"):
    """Sum products over the given axes (``np.tensordot``).

    >>> tensordot(np.ones((2, 3)), np.ones((3, 4)), axes=1).shape
    (2, 4)
    """
    a, b = fnp._promote(fnp._operand(a), fnp._operand(b))
    a_aval, b_aval = get_aval(a), get_aval(b)
    if isinstance(axes, (int, np.integer)):
        n = int(axes)
        a_axes = tuple(range(a_aval.ndim - n, a_aval.ndim))
        b_axes = tuple(range(n))
    else:
        a_axes, b_axes = axes
        a_axes = (a_axes,) if isinstance(a_axes, (int, np.integer)) else tuple(a_axes)
        b_axes = (b_axes,) if isinstance(b_axes, (int, np.integer)) else tuple(b_axes)
    if (a_axes and not a_aval.ndim) or (b_axes and not b_aval.ndim):
        raise _shape_error(name, a, b, "cannot contract a 0-d array")
    a_axes = tuple(fnp._one_axis(x, a_aval.ndim) for x in a_axes)
    b_axes = tuple(fnp._one_axis(x, b_aval.ndim) for x in b_axes)
    if len(a_axes) != len(b_axes) or builtins.any(
        a_aval.shape[i] != b_aval.shape[j] for i, j in zip(a_axes, b_axes)
    ):
        sizes_a = [a_aval.shape[i] for i in a_axes]
        sizes_b = [b_aval.shape[j] for j in b_axes]
        raise _shape_error(name, a, b, f"contracted sizes {sizes_a} != {sizes_b}")
    return lax.dot_general(a, b, ((a_axes, b_axes), ((), ())))


def norm(x, ord=None, axis=None, keepdims=False):
    """Vector norms, and matrix norms of ``ord`` None/'fro', 1, -1, inf and -inf
    (``np.linalg.norm``; the 2-norm and nuclear norm of a matrix need singular values,
    which fgrad does not compute); gradient 0 at 0 (docs/kinks.md).

    >>> float(norm(np.array([3.0, 4.0])))
    5.0
    >>> float(norm(np.array([[1.0, -2.0], [3.0, 4.0]]), 1))  # the largest column sum
    6.0
    """
    x = fnp._to_float(x)
    aval = get_aval(x)
    if aval.ndim == 0 and (axis is not None or ord is not None):
        raise ValueError("norm: improper number of dimensions to norm (a 0-d array has no "
                         "axis; NumPy takes it only without ord and axis)")
    if axis is None and ord not in (None, "fro") and aval.ndim > 2:
        raise ValueError("norm: improper number of dimensions to norm (with ord, an x of "
                         f"{aval.ndim} dimensions needs axis=: one for a vector norm, two "
                         "for a matrix norm)")
    axes = fnp._canonical_axis(axis, aval.ndim)
    if len(axes) == 2 and ord in (1, -1, np.inf, -np.inf):
        pair = (0, 1) if axis is None else tuple(fnp._one_axis(a, aval.ndim) for a in axis)
        return _matrix_norm(x, ord, pair, keepdims)
    if len(axes) > 2 and (axis is not None or ord == "fro"):
        raise ValueError(f"norm: improper number of dimensions to norm ({len(axes)}: a "
                         "vector norm takes one axis, a matrix norm two)")
    if ord == "fro" and len(axes) < 2:
        raise ValueError("norm: invalid norm order 'fro' for vectors (it is a matrix norm: "
                         "give a 2-D x or two axes)")
    if len(axes) == 2 and ord not in (None, "fro"):
        raise NotImplementedError(f"norm: the matrix norm ord={ord!r} needs singular values, "
                                  "which fgrad does not compute (ord may be None, 'fro', 1, -1, "
                                  "inf or -inf for two axes)")
    if ord is None or ord == 2 or ord == "fro":
        squares = fnp.sum(lax.square(x), axis=axes, keepdims=keepdims)
        # NB: the double select keeps the gradient at 0 finite (and equal to 0).
        is_zero = lax.eq(squares, 0)
        safe = lax.select_n(is_zero, squares, lax.full_like(squares, 1))
        return lax.select_n(is_zero, lax.sqrt(safe), lax.full_like(squares, 0))
    if ord == 1:
        return fnp.sum(fnp.abs(x), axis=axes, keepdims=keepdims)
    if ord == np.inf:
        if any(aval.shape[a] == 0 for a in axes):  # NumPy's max of no |x| is 0 here
            return fnp.sum(fnp.abs(x), axis=axes, keepdims=keepdims)
        return fnp.max(fnp.abs(x), axis=axes, keepdims=keepdims)
    if ord == -np.inf:
        return fnp.min(fnp.abs(x), axis=axes, keepdims=keepdims)
    if isinstance(ord, (int, float)) and ord > 0:
        total = fnp.sum(fnp.power(fnp.abs(x), float(ord)), axis=axes, keepdims=keepdims)
        is_zero = lax.eq(total, 0)  # NB: double select, as above: gradient 0 at 0
        safe = lax.select_n(is_zero, total, lax.full_like(total, 1))
        return lax.select_n(is_zero, fnp.power(safe, 1.0 / ord), lax.full_like(total, 0))
    if isinstance(ord, (int, float)) and ord == 0:
        # The number of non-zero entries (no gradient), in x's float dtype, as NumPy.
        nonzero = fnp.astype(fnp.not_equal(x, 0), aval.dtype)
        return fnp.sum(nonzero, axis=axes, keepdims=keepdims)
    if isinstance(ord, (int, float)) and ord < 0:
        # (sum |x|^p)^(1/p) for p < 0: a zero entry makes it 0, as in NumPy.
        total = fnp.sum(fnp.power(fnp.abs(x), float(ord)), axis=axes, keepdims=keepdims)
        return fnp.power(total, 1.0 / ord)
    raise ValueError(f"norm: unsupported ord={ord!r}")


def _matrix_norm(x, ord, pair, keepdims):  # noqa: A002
    """NumPy's matrix norms of ``ord`` 1 and -1 (largest and smallest column sum of
    ``|x|``) and inf and -inf (the same over rows), ``pair`` = (row axis, column axis)."""
    row, col = pair  # NB: distinct: _canonical_axis refused a repeated axis
    pick = fnp.max if ord > 0 else fnp.min
    summed, picked = (row, col) if ord in (1, -1) else (col, row)
    sums = fnp.sum(fnp.abs(x), axis=summed)
    picked = picked - 1 if picked > summed else picked
    if ord > 0 and get_aval(sums).shape[picked] == 0:
        pick = fnp.sum  # NumPy's largest of no sums is 0 (the smallest raises, as here)
    out = pick(sums, axis=picked)
    if keepdims:
        shape = list(get_aval(x).shape)
        shape[row] = shape[col] = 1
        out = fnp.reshape(out, tuple(shape))
    return out


# --------------------------------------------------------------------------- einsum


def _parse_einsum(subscripts, shapes):
    """Split ``subscripts`` into per-operand labels and output labels.

    ``...`` becomes fresh letters for the broadcast dimensions (right-aligned across
    operands, as in NumPy); implicit output is ``...`` then the labels used once.
    """
    subscripts = subscripts.replace(" ", "")
    if "->" in subscripts:
        inputs, output = subscripts.split("->")
    else:
        inputs, output = subscripts, None
    inputs = inputs.split(",")
    if len(inputs) != len(shapes):
        raise ValueError(
            f"einsum: {len(inputs)} subscript groups for {len(shapes)} operands in {subscripts!r}"
        )
    for term in [*inputs, output or ""]:
        if term.count("...") > 1 or not all(c.isalpha() for c in term.replace("...", "")):
            raise ValueError(f"einsum: invalid subscripts {subscripts!r}")
    counts = [len(t) - 3 if "..." in t else None for t in inputs]
    n_ell = max([ndim - c for c, ndim in zip(counts, map(len, shapes)) if c is not None],
                default=0)
    unused = [c for c in string.ascii_letters if c not in subscripts]
    ell = "".join(unused[:n_ell])
    expanded = []
    for term, count, shape in zip(inputs, counts, shapes):
        if count is not None:
            k = len(shape) - count
            if k < 0:
                raise ValueError(
                    f"einsum: subscripts {term!r} have more labels than operand of shape {shape}"
                )
            term = term.replace("...", ell[n_ell - k:])
        expanded.append(term)
    if output is None:
        letters = "".join(expanded)
        output = ell + "".join(
            sorted(c for c in set(letters) if letters.count(c) == 1 and c not in ell)
        )
    else:
        output = output.replace("...", ell)
    if len(set(output)) != len(output) or any(c not in "".join(expanded) for c in output):
        raise ValueError(f"einsum: invalid output subscripts in {subscripts!r}")
    return expanded, output, set(ell)


def _broadcast_labels(operands, inputs, labels):
    """Broadcast size-1 dimensions of ``labels`` to the size other operands give them."""
    sizes: dict = {}
    for op, term in zip(operands, inputs):
        for c, n in zip(term, get_aval(op).shape):
            if c in labels and n != 1:
                sizes[c] = n
    out = []
    for op, term in zip(operands, inputs):
        shape = get_aval(op).shape
        target = tuple(sizes.get(c, n) if c in labels and n == 1 else n
                       for c, n in zip(term, shape))
        out.append(fnp._broadcast_to(op, target) if target != shape else op)
    return out


def _take_diagonals(x, labels):
    """Collapse repeated labels within one operand to their diagonal."""
    while True:
        repeated = next((c for c in labels if labels.count(c) > 1), None)
        if repeated is None:
            return x, labels
        i = labels.index(repeated)
        j = labels.index(repeated, i + 1)
        x = _diagonal(x, i, j)
        labels = labels[:i] + labels[i + 1: j] + labels[j + 1:] + repeated


def _diagonal(x, axis1, axis2):
    """Diagonal over two axes, moved to the end."""
    shape = get_aval(x).shape
    n = shape[axis1]  # NB: shape[axis2] is equal: einsum checked its repeated labels
    rest = [d for d in range(len(shape)) if d not in (axis1, axis2)]
    moved = lax.transpose(x, rest + [axis1, axis2])
    flat = lax.reshape(moved, tuple(shape[d] for d in rest) + (n * n,))
    return lax.gather(flat, np.arange(n) * (n + 1), len(rest))


def einsum(subscripts, *operands, optimize=False):
    """Einstein summation (``np.einsum``): explicit or implicit subscripts, ``...``.
    ``optimize`` is accepted for NumPy's signature; the contraction order is fgrad's own.

    >>> einsum("ij,jk->ik", np.ones((2, 3)), np.ones((3, 4))).shape
    (2, 4)
    """
    operands = fnp._promote(*[fnp._operand(op) for op in operands])
    inputs, output, ell = _parse_einsum(subscripts, [get_aval(op).shape for op in operands])
    if operands and get_aval(operands[0]).dtype == bool:
        # Bool einsum is an "or" of "and"s, as in NumPy: count in int64, test != 0.
        out = einsum(subscripts, *[fnp._cast(op, np.int64) for op in operands])
        return lax.ne(out, 0)
    terms: list = []
    for op, labels in zip(operands, inputs):
        shape = get_aval(op).shape
        if len(labels) != len(shape):
            raise ValueError(
                f"einsum: subscripts {labels!r} do not match operand of shape {shape}"
            )
        for c in set(labels):
            sizes = [n for d, n in zip(labels, shape) if d == c]
            other = next((n for n in sizes if n != sizes[0]), None)
            if other is not None:  # NB: checked before size-1 labels broadcast below
                raise ValueError(f"einsum: a label repeated in one operand needs equal "
                                 f"sizes, got {sizes[0]} and {other}")
        terms.append(labels)
    # NB: as NumPy's, a label of size 1 in one operand broadcasts to its size in another.
    operands = _broadcast_labels(operands, terms, set(ell) | set("".join(terms)))
    terms = [_take_diagonals(op, labels) for op, labels in zip(operands, terms)]
    sizes: dict = {}
    for op, labels in terms:
        for c, s in zip(labels, get_aval(op).shape):
            if sizes.setdefault(c, s) != s:
                raise ValueError(f"einsum: label {c!r} has sizes {sizes[c]} and {s}")
    x, x_labels = terms[0]
    for k, (y, y_labels) in enumerate(terms[1:], start=1):
        later = set(output) | {c for _, lab in terms[k + 1:] for c in lab}
        x, x_labels = _sum_unneeded(x, x_labels, later | set(y_labels))
        y, y_labels = _sum_unneeded(y, y_labels, later | set(x_labels))
        x, x_labels = _contract_pair(x, x_labels, y, y_labels, later)
    x, x_labels = _sum_unneeded(x, x_labels, set(output))
    return lax.transpose(x, [x_labels.index(c) for c in output])


def _sum_unneeded(x, labels, keep):
    axes = [i for i, c in enumerate(labels) if c not in keep]
    if not axes:
        return x, labels
    return lax.reduce_sum(x, axes), "".join(c for c in labels if c in keep)


def _contract_pair(x, x_labels, y, y_labels, keep):
    shared = [c for c in x_labels if c in y_labels]
    batch = [c for c in shared if c in keep]
    contract = [c for c in shared if c not in keep]
    dims = (
        (tuple(x_labels.index(c) for c in contract), tuple(y_labels.index(c) for c in contract)),
        (tuple(x_labels.index(c) for c in batch), tuple(y_labels.index(c) for c in batch)),
    )
    out = lax.dot_general(x, y, dims)
    x_free = [c for c in x_labels if c not in shared]
    y_free = [c for c in y_labels if c not in shared]
    return out, "".join(batch + x_free + y_free)



# NumPy functions return strongly typed results (see lax_numpy.strong_result).
matmul, dot, outer, inner, tensordot, norm, einsum = (
    fnp.strong_result(f) for f in (matmul, dot, outer, inner, tensordot, norm, einsum)
)
