"""fgrad: automatic differentiation for NumPy users.

JAX-style transforms (``grad``, ``vjp``, ``jvp``, ``jit``, ``make_jaxpr`` ...) over a
jaxpr-like IR, and a PyTorch-like ``Tensor`` on the same machinery.

>>> import fgrad as fg
>>> float(fg.grad(lambda x: x ** 2)(4.0))
8.0
"""

from fgrad import config, errors, nn, numpy, test_util, tree_util
from fgrad._src.api import (
    grad,
    hessian,
    jacfwd,
    jacrev,
    jvp,
    make_jaxpr,
    stop_gradient,
    value_and_grad,
    vjp,
)
from fgrad._src.custom_derivatives import custom_vjp
from fgrad._src.jit import jit
from fgrad._src.lax import lax as _lax  # noqa: F401  (registers every primitive)

__version__ = "0.1.0"

__all__ = [
    "config", "errors", "nn", "numpy", "tree_util", "grad", "hessian", "jacfwd", "jacrev", "jvp",
    "make_jaxpr", "stop_gradient", "value_and_grad", "vjp", "custom_vjp", "jit",
]
