"""Tensor ops needed by ``fgrad.nn`` layers that the core op table does not have.

They use the facade's ``Op``/``apply`` machinery, so they record PyTorch's node
names and run on tracers inside ``functional_call`` like every other op.
"""

from __future__ import annotations

import numpy as np

from fgrad._src.core import Tracer, get_aval
from fgrad._src.lax.elementwise import stop_gradient
from fgrad._src.numpy import indexing
from fgrad._src.numpy import lax_numpy as fnp
from fgrad._src.tensor.dispatch import Op, apply
from fgrad._src.tensor.tensor import Tensor, _operand


def _embedding(weight, indices, padding_idx):
    rows = indexing.getitem(weight, (indices,))
    if padding_idx is None:
        return rows
    # The padding row gets no gradient (PyTorch's padding_idx).
    pad = fnp.expand_dims(fnp.equal(indices, padding_idx), -1)
    return fnp.where(pad, stop_gradient(rows), rows)


embedding_op = Op("EmbeddingBackward0", _embedding)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,  # noqa: A002
              scale_grad_by_freq=False, sparse=False):
    """Rows of ``weight`` picked by the integer tensor ``input`` (``EmbeddingBackward0``).

    >>> import fgrad as fg
    >>> w = fg.arange(6.0).reshape(3, 2).requires_grad_()
    >>> fg.nn.functional.embedding(fg.tensor([2, 0]), w)
    tensor([[4., 5.],
            [0., 1.]], grad_fn=<EmbeddingBackward0>)
    """
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: max_norm, scale_grad_by_freq and sparse are not "
                                  "supported")
    idx = _operand(input)
    if not isinstance(idx, Tensor):
        idx = Tensor._wrap(np.asarray(idx))
    n = weight.shape[0]
    value = idx._value
    if not isinstance(value, Tracer):
        if value.dtype.kind not in "iu":
            raise RuntimeError(
                "Expected tensor for argument #1 'indices' to have one of the following scalar "
                f"types: Long, Int; but got {idx.dtype} instead (call .long() on the indices)")
        if value.size and (value.min() < 0 or value.max() >= n):
            raise IndexError(f"index out of range in self (indices must be in [0, {n}), got "
                             f"min {value.min()} max {value.max()})")
    elif get_aval(value).dtype.kind not in "iu":
        raise RuntimeError("embedding indices must be an integer tensor")
    if padding_idx is not None:
        if not -n <= int(padding_idx) < n:
            raise ValueError(f"padding_idx must be within the number of embeddings ({n}), got "
                             f"{padding_idx}")
        padding_idx = int(padding_idx) % n
    return apply(embedding_op, (weight, idx), (padding_idx,))
