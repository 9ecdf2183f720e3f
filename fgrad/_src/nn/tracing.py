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
    import numpy as np

    from fgrad._src.core import Tracer
    from fgrad._src.tensor.tensor import Tensor

    vals = [a._value if isinstance(a, Tensor) else a for a in args]
    out = op.fn(*vals, *params)

    def wrap(v):
        return Tensor._wrap(v if isinstance(v, (Tracer, np.ndarray)) else np.asarray(v))

    outs = tuple(wrap(v) for v in out) if isinstance(out, (tuple, list)) else (wrap(out),)
    result = outs if isinstance(out, (tuple, list)) else outs[0]
    if op.view and isinstance(args[0], Tensor):
        from fgrad._src.tensor import dispatch

        dispatch.note_traced_views(op, args, params, result)
    return result
