"""``fgrad.nn``: numerically stable array functions (JAX's ``jax.nn``).

>>> import fgrad as fg
>>> float(fg.nn.softplus(0.0))
0.6931471805599453
"""

from fgrad._src.nn_ops import (
    binary_cross_entropy_with_logits,
    log_sigmoid,
    log_softmax,
    logsumexp,
    relu,
    sigmoid,
    softmax,
    softplus,
)
from fgrad.nn import functional  # Tensor-level, PyTorch's torch.nn.functional

__all__ = [
    "binary_cross_entropy_with_logits", "log_sigmoid", "log_softmax", "logsumexp", "relu",
    "sigmoid", "softmax", "softplus",
]
