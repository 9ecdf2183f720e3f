"""Loss modules: thin wrappers over the stable functions in ``fgrad.nn.functional``.

``reduction`` is ``"mean"`` (default), ``"sum"`` or ``"none"``.

>>> import fgrad as fg
>>> from fgrad import nn
>>> logits = fg.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]], requires_grad=True)
>>> loss = nn.CrossEntropyLoss()(logits, fg.tensor([0, 1]))
>>> loss
tensor(0.3606, grad_fn=<NllLossBackward0>)
>>> nn.CrossEntropyLoss(reduction="none")(logits, fg.tensor([0, 1]))
tensor([0.1698, 0.5514], grad_fn=<NllLossBackward0>)
"""

from __future__ import annotations

from fgrad._src.nn.module import Module
from fgrad._src.tensor.tensor import Tensor
from fgrad.nn import functional as F

_REDUCTIONS = ("mean", "sum", "none")


def _legacy(size_average, reduce, reduction):
    if size_average is not None or reduce is not None:
        if reduce is False:
            return "none"
        return "sum" if size_average is False else "mean"
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction!r} is not a valid value for reduction; use 'mean', "
                         "'sum' or 'none'")
    return reduction


class _Loss(Module):
    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        super().__init__()
        self.reduction = _legacy(size_average, reduce, reduction)


class _WeightedLoss(_Loss):
    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        if weight is not None and not isinstance(weight, Tensor):
            raise TypeError(f"weight must be an fgrad Tensor, got {type(weight).__name__}")
        self.register_buffer("weight", weight)


class MSELoss(_Loss):
    """Mean squared error ``(input - target) ** 2``, reduced.

    >>> import fgrad as fg
    >>> fg.nn.MSELoss()(fg.tensor([1.0, 3.0]), fg.tensor([0.0, 0.0]))
    tensor(5.)
    """

    def forward(self, input, target):  # noqa: A002
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    """Mean absolute error ``|input - target|``, reduced."""

    def forward(self, input, target):  # noqa: A002
        return F.l1_loss(input, target, reduction=self.reduction)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of class indices, given log-probabilities.

    >>> import fgrad as fg
    >>> logp = fg.tensor([[-0.5, -1.0], [-2.0, -0.1]])
    >>> fg.nn.NLLLoss()(logp, fg.tensor([0, 1]))
    tensor(0.3000)
    """

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):  # noqa: A002
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class CrossEntropyLoss(_WeightedLoss):
    """``log_softmax`` + ``nll_loss`` in one stable op, on logits and class indices (or
    class probabilities), with ``label_smoothing``."""

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean", label_smoothing=0.0):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input, target):  # noqa: A002
        return F.cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class BCELoss(_WeightedLoss):
    """Binary cross-entropy of probabilities in [0, 1] (log terms clamped at -100).

    >>> import fgrad as fg
    >>> fg.nn.BCELoss()(fg.tensor([0.5, 0.8]), fg.tensor([1.0, 0.0]))
    tensor(1.1513)
    """

    def forward(self, input, target):  # noqa: A002
        return F.binary_cross_entropy(input, target, weight=self.weight,
                                      reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Sigmoid + binary cross-entropy in one stable op (finite for logits of any size).

    >>> import fgrad as fg
    >>> fg.nn.BCEWithLogitsLoss()(fg.tensor([1000.0, -1000.0]), fg.tensor([1.0, 0.0]))
    tensor(0.)
    """

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean",
                 pos_weight=None):
        super().__init__(size_average, reduce, reduction)
        for name, value in (("weight", weight), ("pos_weight", pos_weight)):
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"{name} must be an fgrad Tensor, got {type(value).__name__}")
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input, target):  # noqa: A002
        return F.binary_cross_entropy_with_logits(input, target, self.weight,
                                                  pos_weight=self.pos_weight,
                                                  reduction=self.reduction)
