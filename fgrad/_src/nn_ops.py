"""Numerically stable neural-network functions on arrays (``fg.nn.softplus`` ...).

Each is written so values and gradients stay finite for inputs of magnitude
1e3, and gradients at kinks follow docs/kinks.md.
"""

import numpy as np

from fgrad._src.core import get_aval
from fgrad._src.lax import lax
from fgrad._src.numpy import lax_numpy as fnp


def relu(x):
    """``max(x, 0)`` with gradient 0 at 0 (docs/kinks.md); NaN stays NaN, as in PyTorch.

    >>> relu(np.array([-1.0, 0.0, 2.0]))
    array([0., 0., 2.])
    """
    x = fnp._to_float(x)
    # NB: a scalar zero, not zeros_like(x): under fg.jit that would be an array constant
    # of x's shape, copied into the program on every call.
    return fnp.maximum(x, np.zeros((), get_aval(x).dtype))


def sigmoid(x):
    """The logistic function, stable for large ``|x|``.

    >>> float(sigmoid(0.0))
    0.5
    """
    return lax.logistic(fnp._to_float(x))


def softplus(x):
    """``log(1 + exp(x))``, finite for any input; gradient ``sigmoid(x)``.

    >>> float(softplus(1000.0))
    1000.0
    """
    # A primitive: its gradient is one sigmoid(x) (0.5 at 0, where a formula built from
    # abs and max would follow their kink rules instead).
    return lax.softplus(fnp._to_float(x))


def log_sigmoid(x):
    """``log(sigmoid(x)) = -softplus(-x)``.

    >>> float(log_sigmoid(-1000.0))
    -1000.0
    """
    return lax.neg(softplus(lax.neg(fnp._to_float(x))))


def logsumexp(x, axis=None, keepdims=False):
    """``log(sum(exp(x)))`` over ``axis``; ``-inf`` (gradient 0) when all inputs are ``-inf``.

    >>> float(logsumexp(np.array([1000.0, 1000.0])))
    1000.6931471805599
    """
    x = fnp._to_float(x)
    shape = get_aval(x).shape
    axes = fnp._canonical_axis(axis, len(shape))
    if any(shape[a] == 0 for a in axes):  # an empty sum: log(0) = -inf, as PyTorch gives
        kept = tuple(1 if d in axes else n for d, n in enumerate(shape))
        out = fnp.full(kept, -np.inf, get_aval(x).dtype)
        return out if keepdims else fnp.squeeze(out, axes)
    high = lax.stop_gradient(fnp.max(x, axis=axes, keepdims=True))
    high = fnp.where(fnp.isfinite(high), high, fnp.zeros_like(high))
    total = fnp.sum(fnp.exp(fnp.subtract(x, high)), axis=axes, keepdims=True)
    empty = lax.eq(total, fnp.zeros_like(total))
    safe_total = lax.select_n(empty, total, fnp.ones_like(total))
    log_total = lax.select_n(empty, lax.log(safe_total), fnp.full_like(total, -np.inf))
    out = lax.add(log_total, high)
    return out if keepdims else fnp.squeeze(out, axes)


def log_softmax(x, axis=-1):
    """``x - logsumexp(x)`` along ``axis``.

    >>> log_softmax(np.array([0.0, 0.0]))
    array([-0.69314718, -0.69314718])
    """
    x = fnp._to_float(x)
    return fnp.subtract(x, logsumexp(x, axis=axis, keepdims=True))


def softmax(x, axis=-1):
    """``exp(x) / sum(exp(x))`` along ``axis``, computed stably.

    >>> softmax(np.array([0.0, 0.0]))
    array([0.5, 0.5])
    """
    return fnp.exp(log_softmax(x, axis))


def binary_cross_entropy_with_logits(logits, targets):
    """Elementwise ``-(y log sigmoid(z) + (1 - y) log(1 - sigmoid(z)))``, stable.

    >>> float(binary_cross_entropy_with_logits(0.0, 1.0))
    0.6931471805599453
    """
    logits, targets = fnp._promote_broadcast(
        "binary_cross_entropy_with_logits", fnp._to_float(logits), fnp._to_float(targets)
    )
    return fnp.subtract(softplus(logits), fnp.multiply(logits, targets))
