"""Stochastic gradient descent with PyTorch's update rule."""

from __future__ import annotations

import numpy as np

from fgrad._src.tensor.tensor import Tensor
from fgrad.optim.optimizer import Optimizer, _as_value, sub_scaled_


class SGD(Optimizer):
    """SGD with optional momentum, dampening, Nesterov momentum and weight decay.

    Per parameter, exactly as ``torch.optim.SGD``::

        g = grad + weight_decay * p
        if momentum:
            buf = g                                   (first step)
            buf = momentum * buf + (1 - dampening) * g  (later steps)
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g

    >>> import fgrad as fg
    >>> from fgrad import optim
    >>> w = fg.tensor([1.0, 2.0], requires_grad=True)
    >>> opt = optim.SGD([w], lr=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     opt.zero_grad()
    ...     (w * w).sum().backward()
    ...     _ = opt.step()
    >>> w
    tensor([0.4600, 0.9200], requires_grad=True)
    """

    _numbers = ("lr", "momentum", "dampening", "weight_decay")

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group):
        lr = _as_value(group["lr"])
        if not 0.0 <= lr:  # NB: also rejects nan
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= group["momentum"]:
            raise ValueError(f"Invalid momentum value: {group['momentum']}")
        if not 0.0 <= group["weight_decay"]:
            raise ValueError(f"Invalid weight_decay value: {group['weight_decay']}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def _update(self, group, param, grad, state):
        p = param._value
        lr = _as_value(group["lr"])
        momentum, weight_decay = group["momentum"], group["weight_decay"]
        if group["maximize"]:
            grad = -grad
        if weight_decay != 0:
            grad = grad + weight_decay * p
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = Tensor._wrap(np.array(grad, dtype=p.dtype))
            else:
                b = buf._value
                b *= momentum
                b += (1 - group["dampening"]) * grad
            if group["nesterov"]:
                grad = grad + momentum * buf._value
            else:
                grad = buf._value
        sub_scaled_(p, lr, grad)
