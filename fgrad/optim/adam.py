"""Adam and AdamW with PyTorch's update rule (bias-corrected moments)."""

from __future__ import annotations

import math

import numpy as np

from fgrad._src.tensor.tensor import Tensor
from fgrad.optim.optimizer import Optimizer, _as_value, _buffer


class Adam(Optimizer):
    """Adam (Kingma & Ba), as ``torch.optim.Adam``. Per parameter, at step ``t``::

        g = grad + weight_decay * p              (L2 penalty; AdamW decays p instead)
        m = m + (1 - beta1) * (g - m)
        v = beta2 * v + (1 - beta2) * g * g
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    >>> import fgrad as fg
    >>> from fgrad import optim
    >>> w = fg.tensor([1.0, -2.0], requires_grad=True)
    >>> opt = optim.Adam([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> _ = opt.step()
    >>> w
    tensor([ 0.9000, -1.9000], requires_grad=True)
    """

    _decoupled = False
    _numbers = ("lr", "eps", "weight_decay")
    _pairs = ("betas",)

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, maximize=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize)
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group):
        lr = _as_value(group["lr"])
        if not 0.0 <= lr:  # NB: also rejects nan
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= group["eps"]:
            raise ValueError(f"Invalid epsilon value: {group['eps']}")
        beta1, beta2 = group["betas"]
        if not 0.0 <= beta1 < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {beta1}")
        if not 0.0 <= beta2 < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {beta2}")
        if not 0.0 <= group["weight_decay"]:
            raise ValueError(f"Invalid weight_decay value: {group['weight_decay']}")

    def _update(self, group, param, grad, state):
        p = param._value
        lr = _as_value(group["lr"])
        beta1, beta2 = group["betas"]
        weight_decay = group["weight_decay"]
        if group["maximize"]:
            grad = -grad
        step_t = state.get("step")
        if step_t is None:
            step_t = state["step"] = Tensor._wrap(np.zeros((), np.float32))
        step_t._value += 1
        step = float(step_t._value)
        if weight_decay != 0:
            if self._decoupled:
                p *= 1 - lr * weight_decay
            else:
                grad = grad + weight_decay * p
        m = _buffer(state, "exp_avg", p)
        v = _buffer(state, "exp_avg_sq", p)
        m += (1 - beta1) * (grad - m)
        v *= beta2
        v += (1 - beta2) * (grad * grad)
        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        step_size = lr / bias_correction1
        bias_correction2_sqrt = math.sqrt(bias_correction2)
        if group["amsgrad"]:
            v_max = _buffer(state, "max_exp_avg_sq", p)
            np.maximum(v_max, v, out=v_max)
            denom = np.sqrt(v_max) / bias_correction2_sqrt + group["eps"]
        else:
            denom = np.sqrt(v) / bias_correction2_sqrt + group["eps"]
        p -= step_size * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as ``torch.optim.AdamW``:
    each step first shrinks ``p`` by ``p *= 1 - lr * weight_decay`` (default 0.01),
    then applies the Adam update without an L2 term in the gradient.

    >>> import fgrad as fg
    >>> from fgrad import optim
    >>> w = fg.tensor([1.0], requires_grad=True)
    >>> opt = optim.AdamW([w], lr=0.1, weight_decay=0.5)
    >>> w.grad = fg.tensor([0.0])
    >>> _ = opt.step()
    >>> w
    tensor([0.9500], requires_grad=True)
    """

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
