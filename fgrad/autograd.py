"""``fgrad.autograd``: PyTorch's ``torch.autograd`` functions for the Tensor facade.

>>> import fgrad as fg
>>> x = fg.tensor([1.0, 2.0], requires_grad=True)
>>> fg.autograd.grad((x ** 2).sum(), x)
(tensor([2., 4.]),)
"""

from fgrad._src.tensor.autograd import backward, grad
from fgrad._src.tensor.grad_mode import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from fgrad._src.tensor.graph import Node

__all__ = [
    "backward", "grad", "enable_grad", "inference_mode", "is_grad_enabled", "no_grad",
    "set_grad_enabled", "Node",
]
