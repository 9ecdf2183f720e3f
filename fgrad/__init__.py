"""fgrad: automatic differentiation for NumPy users.

JAX-style transforms (``grad``, ``vjp``, ``jvp``, ``jit``, ``make_jaxpr`` ...) over a
jaxpr-like IR, and a PyTorch-like ``Tensor`` on the same machinery.

>>> import fgrad as fg
>>> float(fg.grad(lambda x: x ** 2)(4.0))
8.0
"""

from fgrad import autograd, config, errors, nn, numpy, optim, test_util, tree_util
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
from fgrad._src.backend.execute import warmup
from fgrad._src.checkpoint import load, save  # state dicts as .npz, never pickles
from fgrad._src.custom_derivatives import custom_vjp
from fgrad._src.jit import jit
from fgrad._src.lax import lax as _lax  # noqa: F401  (registers every primitive)
from fgrad._src.tensor import custom as _custom  # noqa: F401  (custom_vjp of Tensors)
from fgrad._src.tensor.creation import (
    BoolTensor,
    DoubleTensor,
    FloatTensor,
    LongTensor,
    arange,
    as_tensor,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    manual_seed,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    seed,
    tensor,
    zeros,
    zeros_like,
)
from fgrad._src.tensor.dtype import bool_ as bool  # noqa: A001  (PyTorch's names)
from fgrad._src.tensor.dtype import dtype, float32, float64, int8, int16, int32, int64, uint8
from fgrad._src.tensor.functions import *  # noqa: F403  (fg.exp, fg.matmul, fg.cat, ...)
from fgrad._src.tensor.functions import cat, concat, is_tensor, stack, where
from fgrad._src.tensor.grad_mode import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from fgrad._src.tensor.tensor import Size, Tensor
from fgrad._src.vmap import vmap

float = float32  # noqa: A001  (PyTorch's default dtype; the builtin float is float64)
double, long, int, short = float64, int64, int32, int16  # noqa: A001

__version__ = "0.1.0"

__all__ = [
    "config", "errors", "nn", "numpy", "tree_util", "grad", "hessian", "jacfwd", "jacrev", "jvp",
    "make_jaxpr", "stop_gradient", "value_and_grad", "vjp", "custom_vjp", "jit", "vmap",
    "warmup",
]
__all__ += [  # the Tensor facade (PyTorch's names)
    "Tensor", "Size", "tensor", "autograd", "dtype", "no_grad", "enable_grad",
    "set_grad_enabled", "is_grad_enabled", "inference_mode", "manual_seed",
]
__all__ += ["optim", "save", "load"]  # fg.nn modules, optimizers, checkpoints
