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
    if op.view and isinstance(args[0], Tensor):
        note_family(args[0], outs)
    return outs if isinstance(out, (tuple, list)) else outs[0]


def note_family(x, views):
    """Tensors made by view ops share their values with their input in PyTorch. Traced
    values cannot be shared, so such tensors join ``x``'s family (weak references, in a
    list they all hold): an in-place op on one of them while another lives is refused
    (``tensor._rebind_traced``) rather than lost on the others."""
    import weakref

    family = x.__dict__.get("_traced_family")
    if family is None:
        family = x.__dict__["_traced_family"] = [weakref.ref(x)]
    elif len(family) > 64:
        family[:] = [ref for ref in family if ref() is not None]
    for v in views:
        v.__dict__["_traced_family"] = family
        family.append(weakref.ref(v))
