"""Tensor ops on tracers, for ``fg.nn.functional_call`` under ``fg.grad``/``fg.jit``.

While ``state.active`` is set (only inside ``functional_call`` when some
parameter or input is a tracer), ``dispatch.apply`` hands every Tensor op to
``apply_traced``: the op's ``fgrad.numpy`` function runs directly on the
values (tracers or arrays) and the result is wrapped in a Tensor without
recording a node. The transform that owns the tracers differentiates or
compiles the computation instead. The flag is thread-local, so eager Tensor
code in other threads keeps recording as usual.

This module imports nothing at import time, so the Tensor core can import it.
"""

from __future__ import annotations

import threading


class _State(threading.local):
    active = 0


state = _State()


def apply_traced(op, args, params):
    from fgrad._src.tensor.tensor import Tensor

    vals = [a._value if isinstance(a, Tensor) else a for a in args]
    out = op.fn(*vals, *params)
    if isinstance(out, (tuple, list)):
        result = tuple(as_tensor(v) for v in out)
    else:
        result = as_tensor(out)
    if op.view and isinstance(args[0], Tensor):
        from fgrad._src.tensor import dispatch

        dispatch.note_traced_views(op, args, params, result)
    return result


def as_tensor(value):
    """``value`` as a Tensor (a Tensor as it is): a traced value or an array wrapped as it
    is, anything else (a Python number) through ``np.asarray``."""
    import numpy as np

    from fgrad._src.core import Tracer
    from fgrad._src.tensor.tensor import Tensor

    if isinstance(value, Tensor):
        return value
    return Tensor._wrap(value if isinstance(value, (Tracer, np.ndarray)) else np.asarray(value))
