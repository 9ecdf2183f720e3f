"""``fgrad.nn.functional``: PyTorch's ``torch.nn.functional`` on fgrad Tensors.

Each function is one recorded op with PyTorch's node name, e.g.
``binary_cross_entropy_with_logits`` records ``BinaryCrossEntropyWithLogitsBackward0``
(reduction included). The numerics come from the stable array functions in
``fg.nn`` (``softplus``, ``log_softmax``, ...).

>>> import fgrad as fg
>>> z = fg.tensor([0.0, 2.0], requires_grad=True)
>>> fg.nn.functional.binary_cross_entropy_with_logits(z, fg.tensor([1.0, 0.0]))
tensor(1.4100, grad_fn=<BinaryCrossEntropyWithLogitsBackward0>)
"""

import warnings

import numpy as np

from fgrad._src.nn.ops import embedding  # noqa: F401  (defined with the nn layers)
from fgrad._src.tensor import creation, ops
from fgrad._src.tensor.dispatch import apply
from fgrad._src.tensor.functions import _tensor
from fgrad._src.tensor.tensor import _operand

_REDUCTIONS = ("mean", "sum", "none")


def _reduction(reduction, size_average=None, reduce=None):
    if size_average is not None or reduce is not None:
        if reduce is False:
            return "none"
        return "sum" if size_average is False else "mean"
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction "
                         f"(use 'mean', 'sum' or 'none')")
    return reduction


def _check_same_size(input, target, name):  # noqa: A002
    if input.shape != target.shape:
        raise ValueError(
            f"Target size ({target.shape}) must be the same as input size ({input.shape}) "
            f"in {name}")


def _warn_if_broadcast(input, target):  # noqa: A002
    """PyTorch's warning for a regression loss whose target broadcasts against the input
    (a (N, 1) prediction against an (N,) target makes an (N, N) loss)."""
    if input.shape != target.shape:
        warnings.warn(f"Using a target size ({target.shape}) that is different to the input "
                      f"size ({input.shape}). This will likely lead to incorrect results due "
                      "to broadcasting. Please ensure they have the same size.",
                      UserWarning, stacklevel=3)


def _result(x, out, inplace):
    """``out``, or with ``inplace`` written into ``x`` (``copy_``), which is returned."""
    return x.copy_(out) if inplace else out


def relu(input, inplace=False):  # noqa: A002
    x = _tensor(input)
    return _result(x, x.relu(), inplace)


def sigmoid(input):  # noqa: A002
    return _tensor(input).sigmoid()


def tanh(input):  # noqa: A002
    return _tensor(input).tanh()


def softplus(input, beta=1.0, threshold=20.0):  # noqa: A002
    return apply(ops.softplus_beta, (_tensor(input),), (float(beta), float(threshold)))


def logsigmoid(input):  # noqa: A002
    return apply(ops.logsigmoid, (_tensor(input),))


def silu(input, inplace=False):  # noqa: A002
    x = _tensor(input)
    return _result(x, apply(ops.silu, (x,)), inplace)


def leaky_relu(input, negative_slope=0.01, inplace=False):  # noqa: A002
    x = _tensor(input)
    return _result(x, apply(ops.leaky_relu, (x, float(negative_slope))), inplace)


def elu(input, alpha=1.0, inplace=False):  # noqa: A002
    x = _tensor(input)
    return _result(x, apply(ops.elu, (x, float(alpha))), inplace)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):  # noqa: A002
    x = _tensor(input)
    return _result(x, apply(ops.hardtanh, (x,), (float(min_val), float(max_val))), inplace)


def _softmax_dim(x, dim):
    if dim is None:
        return 0 if x.ndim in (0, 1, 3) else 1
    return int(dim)


def softmax(input, dim=None, dtype=None):  # noqa: A002
    x = _tensor(input)
    if dtype is not None:
        x = x.to(dtype)
    return apply(ops.softmax, (x,), (_softmax_dim(x, dim),))


def log_softmax(input, dim=None, dtype=None):  # noqa: A002
    x = _tensor(input)
    if dtype is not None:
        x = x.to(dtype)
    return apply(ops.log_softmax, (x,), (_softmax_dim(x, dim),))


def logsumexp(input, dim, keepdim=False):  # noqa: A002
    return _tensor(input).logsumexp(dim, keepdim)


def linear(input, weight, bias=None):  # noqa: A002
    """``input @ weight.T + bias``."""
    args = (_tensor(input), _tensor(weight)) + (() if bias is None else (_tensor(bias),))
    return apply(ops.linear, args, (bias is not None,))


def dropout(input, p=0.5, training=True, inplace=False):  # noqa: A002
    """Zero each element with probability ``p`` and scale the rest by ``1/(1-p)``."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    x = _tensor(input)
    if not training or p == 0.0:
        return x
    _check_not_vmapped(x)
    keep = creation.generator().random(x.shape) >= p
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    return _result(x, apply(ops.dropout, (x, creation.Tensor._wrap(keep), scale)), inplace)


def _check_not_vmapped(x):
    """Random masks are drawn when fg.vmap traces the function: one for every example."""
    from fgrad._src import vmap

    if vmap.tracing.depth and not hasattr(x._value, "flags"):
        raise RuntimeError(
            "dropout under fg.vmap would draw one mask shared by every example (the mask is "
            "drawn once, when vmap traces the function); draw the masks outside vmap and "
            "pass them in as a batched argument, or call module.eval() (torch.func.vmap "
            "refuses random ops by default too)")


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,  # noqa: A002
                                     reduce=None, reduction="mean", pos_weight=None):
    """Sigmoid + binary cross-entropy as one stable op
    (``BinaryCrossEntropyWithLogitsBackward0``)."""
    x, y = _tensor(input), _tensor(target)
    _check_same_size(x, y, "binary_cross_entropy_with_logits")
    extra = tuple(_operand(w) for w in (weight, pos_weight) if w is not None)
    params = (_reduction(reduction, size_average, reduce), weight is not None,
              pos_weight is not None)
    return apply(ops.binary_cross_entropy_with_logits, (x, y) + extra, params)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,  # noqa: A002
                         reduction="mean"):
    """Binary cross-entropy of probabilities (log terms clamped at -100, as PyTorch)."""
    x, y = _tensor(input), _tensor(target)
    _check_same_size(x, y, "binary_cross_entropy")
    value = x._value
    if isinstance(value, np.ndarray) and not ((value >= 0) & (value <= 1)).all():
        raise RuntimeError("all elements of input should be between 0 and 1 (binary_cross_"
                           "entropy takes probabilities; for logits use "
                           "binary_cross_entropy_with_logits)")
    extra = () if weight is None else (_operand(weight),)
    return apply(ops.binary_cross_entropy, (x, y) + extra,
                 (_reduction(reduction, size_average, reduce),))


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean"):  # noqa: A002
    x, y = _tensor(input), _tensor(target)
    _warn_if_broadcast(x, y)
    return apply(ops.mse_loss, (x, y), (_reduction(reduction, size_average, reduce),))


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean"):  # noqa: A002
    x, y = _tensor(input), _tensor(target)
    _warn_if_broadcast(x, y)
    return apply(ops.l1_loss, (x, y), (_reduction(reduction, size_average, reduce),))


def _class_args(input, target, weight, ignore_index):  # noqa: A002
    """The op's arguments and its ``ignore_index``: None when no target is ignored (a
    smaller program). Every other target must be a class, as PyTorch checks."""
    x, t = _tensor(input), _tensor(target)
    if t._value.dtype.kind not in "iu":
        raise NotImplementedError(
            "fgrad's cross_entropy/nll_loss take class indices (an integer target); "
            f"got a {t.dtype} target")
    _check_class_shapes(tuple(x.shape), tuple(t.shape), weight)
    n_classes = x.shape[1] if x.ndim > 1 else x.shape[0]
    ignore_index = _ignore_index(ignore_index)
    if hasattr(t._value, "flags"):  # an array, not a tracer (fg.nn.functional_call)
        values = t._value
        low, high = (values.min(), values.max()) if values.size else (0, -1)
        # NB: an ignore_index outside [low, high] (the default -100) matches no target.
        if low <= ignore_index <= high and (values == ignore_index).any():
            values = values[values != ignore_index]
            low, high = (values.min(), values.max()) if values.size else (0, -1)
        else:
            ignore_index = None
        if low < 0 or high >= n_classes:
            bad = values[(values < 0) | (values >= n_classes)].flat[0]
            raise IndexError(f"Target {bad} is out of bounds.")
    extra = () if weight is None else (_tensor(weight),)
    return (x, t) + extra, ignore_index


def _ignore_index(value):
    """``ignore_index`` as an int: PyTorch refuses a float (it would be truncated)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"ignore_index must be an int, not {type(value).__name__} "
                        f"{value!r:.40} (it names a class index to skip)")
    return int(value)


def _check_class_shapes(x_shape, t_shape, weight):
    """PyTorch's checks: input (C,), (N, C) or (N, C, d1, ...) against target (), (N,) or
    (N, d1, ...); a class weight of C entries."""
    if len(x_shape) == 0:
        raise ValueError("cross_entropy/nll_loss: the input has no class dimension (got a 0-d "
                         "input)")
    if len(x_shape) <= 2:
        if len(t_shape) > 1:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported "
                               f"(got target shape {list(t_shape)}; flatten a column of "
                               "class indices with target.view(-1))")
        batch = x_shape[0] if len(x_shape) == 2 else None
        got = t_shape[0] if t_shape else None
        if batch != got:
            def describe(n, what):
                return f"{what} batch_size ({n})" if n is not None else f"an unbatched {what}"
            raise ValueError(f"Expected {describe(batch, 'input')} to match "
                             f"{describe(got, 'target')}: input shape {list(x_shape)}, target "
                             f"shape {list(t_shape)}.")
    elif t_shape != (x_shape[0],) + x_shape[2:]:
        raise RuntimeError(f"Expected target size {[x_shape[0], *x_shape[2:]]}, got "
                           f"{list(t_shape)}")
    n_classes = x_shape[1] if len(x_shape) > 1 else x_shape[0]
    if weight is not None and tuple(_tensor(weight).shape) != (n_classes,):
        raise RuntimeError(f"weight tensor should be defined either for all {n_classes} "
                           "classes or no classes but got weight tensor of shape: "
                           f"{list(_tensor(weight).shape)}")


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100,  # noqa: A002
             reduce=None, reduction="mean"):
    args, ignore_index = _class_args(input, target, weight, ignore_index)
    return apply(ops.nll_loss, args, (_reduction(reduction, size_average, reduce),
                                      ignore_index))


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,  # noqa: A002
                  reduce=None, reduction="mean", label_smoothing=0.0):
    """Cross-entropy of logits against class indices (an integer target) or class
    probabilities (a float target shaped like the input), with PyTorch's ``weight``,
    ``ignore_index`` (class indices only), ``reduction`` and ``label_smoothing``.

    >>> import fgrad as fg
    >>> logits = fg.tensor([[2.0, 0.0, -1.0]])
    >>> cross_entropy(logits, fg.tensor([0]), label_smoothing=0.1)
    tensor(0.3365)
    >>> cross_entropy(logits, fg.tensor([[0.9, 0.1, 0.0]]))
    tensor(0.3698)
    """
    reduction = _reduction(reduction, size_average, reduce)
    smoothing = float(label_smoothing)
    if not 0.0 <= smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {smoothing}")
    x, t = _tensor(input), _tensor(target)
    if t.dtype.is_floating_point:
        if _ignore_index(ignore_index) != -100:
            raise RuntimeError("ignore_index is not supported for floating point target "
                               "(class-probability targets weight every class; give a zero "
                               "probability to the class to ignore)")
        return _probability_cross_entropy(x, t, weight, reduction, smoothing)
    args, ignore_index = _class_args(x, t, weight, ignore_index)
    if smoothing:
        return apply(ops.smoothed_cross_entropy, args, (reduction, ignore_index, smoothing))
    return apply(ops.cross_entropy, args, (reduction, ignore_index))


def _probability_cross_entropy(x, t, weight, reduction, smoothing):
    if tuple(t.shape) != tuple(x.shape):
        raise ValueError(
            f"cross_entropy: class-probability targets must have the input's shape "
            f"{list(x.shape)}, got {list(t.shape)}")
    if x.ndim == 0:
        raise ValueError("cross_entropy/nll_loss: the input has no class dimension (got a 0-d "
                         "input)")
    extra = ()
    if weight is not None:
        w = _tensor(weight)
        n_classes = x.shape[1] if x.ndim > 1 else x.shape[0]
        if tuple(w.shape) != (n_classes,):
            raise ValueError(f"cross_entropy: weight should have {n_classes} entries (one per "
                             f"class), got shape {list(w.shape)}")
        extra = (w,)
    return apply(ops.soft_cross_entropy, (x, t) + extra, (reduction, smoothing))


__all__ = [name for name in dir() if not name.startswith("_") and name not in ("np", "warnings")]
