"""``fgrad.nn``: numerically stable array functions (JAX's ``jax.nn``) and PyTorch-style
modules (``Module``, ``Linear``, ``Sequential``, losses; ``functional_call`` to use them
with ``fg.grad``/``fg.jit``).

>>> import fgrad as fg
>>> float(fg.nn.softplus(0.0))
0.6931471805599453
"""

# The module API (PyTorch's torch.nn), alongside the array functions below.
from fgrad._src.nn.containers import ModuleDict, ModuleList, Sequential
from fgrad._src.nn.functional_call import functional_call, get_params, set_params
from fgrad._src.nn.layers import (
    Dropout,
    Embedding,
    Flatten,
    Identity,
    LeakyReLU,
    Linear,
    LogSoftmax,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from fgrad._src.nn.losses import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
)
from fgrad._src.nn.module import Module, Parameter
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
from fgrad.nn import (
    functional,  # Tensor-level, PyTorch's torch.nn.functional
    init,
)

__all__ = [
    "binary_cross_entropy_with_logits", "log_sigmoid", "log_softmax", "logsumexp", "relu",
    "sigmoid", "softmax", "softplus",
]
__all__ += [
    "Module", "Parameter", "ModuleDict", "ModuleList", "Sequential", "Dropout", "Embedding",
    "Flatten", "Identity", "LeakyReLU", "Linear", "LogSoftmax", "ReLU", "Sigmoid", "Softmax",
    "Tanh", "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "L1Loss", "MSELoss", "NLLLoss",
    "functional_call", "get_params", "set_params", "functional", "init",
]
