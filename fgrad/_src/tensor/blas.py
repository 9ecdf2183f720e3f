"""SciPy's BLAS routines, for the Tensor updates where they beat NumPy's.

``axpy`` updates a parameter in one pass where NumPy needs two and a temporary (the
optimizers' ``p -= lr * g``). Products stay with NumPy: SciPy's ``gemm`` ran
``nn.Linear``'s ``x @ w.T`` 8% faster than NumPy on an Intel machine but 12% slower on
an AMD one, so there is no general winner. NumPy and SciPy each bundle their own
OpenBLAS, each with its own thread pool: with several threads per pool, calling
both libraries in turn leaves each pool's idle threads spinning against the
other's, and a training step gets 2-3x slower on a 2-core machine. So the SciPy
routines are handed out only when BLAS runs single-threaded (e.g. under
``OPENBLAS_NUM_THREADS=1``); otherwise every product stays with NumPy.

The check runs once, on first use, on the environment variables OpenBLAS reads
(thread limits set later at run time, e.g. with ``threadpoolctl``, are not seen).

>>> routine("gemm", "float16") is None
True
"""

from __future__ import annotations

import os

import numpy as np

_PREFIX = {np.dtype(np.float32): "s", np.dtype(np.float64): "d"}
_enabled = None


_routines: dict = {}


def routine(name, dtype):
    """SciPy's BLAS ``name`` (``"gemm"``, ``"axpy"``) for ``dtype``, or None when the
    dtype has none or BLAS is multi-threaded."""
    key = (name, dtype)
    try:
        return _routines[key]
    except KeyError:
        pass
    prefix = _PREFIX.get(np.dtype(dtype))
    fn = None
    if prefix is not None and enabled():
        from scipy.linalg import blas

        fn = getattr(blas, prefix + name)
    _routines[key] = fn
    return fn


def enabled():
    global _enabled
    if _enabled is None:
        _enabled = _single_threaded()
    return _enabled


def _single_threaded():
    # NB: from the environment only. Asking the libraries (threadpoolctl) would start
    # other runtimes' thread pools, e.g. torch's OpenMP, which then spin and slow
    # everything down. OpenBLAS takes its thread count from the first of these set.
    for var in ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "").strip()
        if value:
            return value == "1"
    return os.cpu_count() == 1
