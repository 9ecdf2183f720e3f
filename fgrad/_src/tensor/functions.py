"""PyTorch-namespace functions on Tensors: ``fg.matmul``, ``fg.exp``, ``fg.cat``, ...

Each forwards to the Tensor method of the same name after turning its first
argument into a Tensor, so ``fg.exp(x)`` and ``x.exp()`` record the same node.
"""

from __future__ import annotations

import numpy as np

from fgrad._src.tensor import ops
from fgrad._src.tensor.dispatch import apply
from fgrad._src.tensor.tensor import Tensor, _as_array, _operand, check_bool_condition


def _tensor(x):
    """``x`` as a Tensor; a Python number becomes a 0-d tensor of PyTorch's dtype for it
    (float32 for a float), as ``fg.tensor(x)`` would, so ``fg.pow(2.0, t)`` keeps ``t``'s
    float32 and turns an int ``t`` into float32, not float64."""
    x = _operand(x)
    return x if isinstance(x, Tensor) else Tensor._wrap(_as_array(x))


def _forward(method):
    unbound = getattr(Tensor, method)

    def fn(input, *args, **kwargs):  # noqa: A002  (PyTorch's argument name)
        return unbound(input if isinstance(input, Tensor) else _tensor(input), *args, **kwargs)

    fn.__name__ = fn.__qualname__ = method
    fn.__doc__ = f"``fg.{method}(x, ...)`` is ``x.{method}(...)``."
    return fn


_METHODS = (
    "exp log log1p expm1 log2 log10 sin cos tan tanh sinh cosh asin acos atan asinh acosh "
    "atanh arcsin arccos arctan sqrt rsqrt reciprocal sigmoid floor ceil round trunc neg "
    "negative abs absolute sign square relu sum mean prod var std norm logsumexp cumsum "
    "argmax argmin amax amin all any reshape flatten squeeze unsqueeze transpose permute t "
    "flip narrow split chunk unbind clamp clip pow add sub subtract mul multiply div divide "
    "true_divide remainder fmod atan2 maximum minimum lerp eq ne lt le gt ge greater less "
    "greater_equal less_equal not_equal equal allclose isclose logical_and logical_or "
    "logical_xor logical_not isnan isinf isfinite matmul mm mv dot bmm outer masked_fill "
    "max min softmax log_softmax clone detach numel gather index_select masked_select "
    "inner logaddexp tile broadcast_to ravel movedim moveaxis"
).split()

for _name in _METHODS:
    globals()[_name] = _forward(_name)


def tensordot(a, b, dims=2):
    """Contract ``dims`` (an int: the last dims of ``a`` with the first of ``b``; or two
    lists of dims) as ``torch.tensordot``.

    >>> import fgrad as fg
    >>> tensordot(fg.ones(2, 3), fg.ones(3, 4), dims=1).shape
    fgrad.Size([2, 4])
    """
    if not isinstance(dims, (int, np.integer)):
        dims = tuple(tuple(int(d) for d in side) for side in dims)
    return apply(ops.tensordot, (_tensor(a), _tensor(b)), (dims,))


def einsum(equation, *operands):
    """``torch.einsum``: the operands may also be given as one list.

    >>> import fgrad as fg
    >>> einsum("ij,kj->ik", fg.ones(2, 3), fg.ones(4, 3)).shape
    fgrad.Size([2, 4])
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    return apply(ops.einsum, tuple(_tensor(x) for x in operands), (str(equation),))


def cat(tensors, dim=0):
    """Concatenate along ``dim`` (``CatBackward0``)."""
    tensors = [_tensor(t) for t in tensors]
    if not tensors:
        raise RuntimeError("cat(): expected a non-empty list of Tensors")
    return apply(ops.cat, tuple(tensors), (int(dim),))


concat = concatenate = cat


def stack(tensors, dim=0):
    """Stack along a new ``dim`` (``StackBackward0``)."""
    tensors = [_tensor(t) for t in tensors]
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    return apply(ops.stack, tuple(tensors), (int(dim),))


def where(condition, input=None, other=None):  # noqa: A002
    """``input`` where ``condition`` holds, else ``other`` (``WhereBackward0``)."""
    condition = _tensor(condition)
    if input is None and other is None:
        return tuple(Tensor._wrap(i) for i in np.nonzero(condition._value))
    check_bool_condition(condition)
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        # NB: two Python numbers take PyTorch's default dtypes (a float is float32)
        from fgrad._src.tensor import creation

        input, other = creation.tensor(input), creation.tensor(other)
    return apply(ops.where, (condition, _operand(input), _operand(other)))


def is_tensor(obj):
    return isinstance(obj, Tensor)


def is_floating_point(t):
    return t.is_floating_point()


__all__ = [*_METHODS, "tensordot", "einsum", "cat", "concat", "concatenate", "stack",
           "where", "is_tensor", "is_floating_point"]
