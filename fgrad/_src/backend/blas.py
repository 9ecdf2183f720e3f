"""NumPy's own CBLAS ``gemm`` and ``gemv``, so the interpreter's products share NumPy's BLAS.

numba's ``np.dot`` calls SciPy's bundled OpenBLAS, while NumPy's ``@`` calls NumPy's
own copy. With several BLAS threads, two OpenBLAS thread pools used in turn (a NumPy
product, then an ``fg.jit`` program, then NumPy again) leave each pool's idle threads
spinning against the other's; on a 2-core machine a training step got 2-3x slower.
So when NumPy bundles the ILP64 ``scipy-openblas`` (the PyPI wheels), the kernels call
its ``cblas_?gemm`` through their addresses instead, and its ``cblas_?gemv`` for
matrix-vector products (OpenBLAS's gemm with one column packs the matrix first: 3-4x
slower than its gemv for a 1024x100 matrix, which NumPy's ``@`` uses). Elsewhere (other
NumPy builds, other platforms) ``addresses()`` returns zeros and the kernels keep using
``np.dot``.

Each address is checked once with a small product through ``ctypes`` before use.

>>> len(addresses())
4
"""

from __future__ import annotations

import ctypes
import glob
import os

import numpy as np

from fgrad._src.backend.kernels_codes import CBLAS_NO_TRANS, CBLAS_ROW_MAJOR, CBLAS_TRANS

_GEMM_SYMBOLS = (("scipy_cblas_dgemm64_", ctypes.c_double, np.float64),
                 ("scipy_cblas_sgemm64_", ctypes.c_float, np.float32))
_GEMV_SYMBOLS = (("scipy_cblas_dgemv64_", ctypes.c_double, np.float64),
                 ("scipy_cblas_sgemv64_", ctypes.c_float, np.float32))
_AXPY_SYMBOLS = {np.dtype(np.float64): ("scipy_cblas_daxpy64_", ctypes.c_double),
                 np.dtype(np.float32): ("scipy_cblas_saxpy64_", ctypes.c_float)}
_found: list = []
_axpys: dict = {}


def addresses() -> tuple:
    """``(cblas_dgemm, cblas_sgemm, cblas_dgemv, cblas_sgemv)``: the addresses of these
    routines in NumPy's BLAS, each 0 when unavailable (the kernels then use ``np.dot``)."""
    if not _found:
        _found.append(_find())
    return _found[0]


def _find():
    library = _numpy_openblas()
    if library is None:
        return (0, 0, 0, 0)
    gemms = tuple(_checked_gemm(library, *symbol) for symbol in _GEMM_SYMBOLS)
    gemvs = tuple(_checked_gemv(library, *symbol) for symbol in _GEMV_SYMBOLS)
    return gemms + gemvs


def _numpy_openblas():
    root = os.path.dirname(os.path.dirname(os.path.abspath(np.__file__)))
    for path in sorted(glob.glob(os.path.join(root, "numpy.libs", "libscipy_openblas64_*"))):
        try:
            return ctypes.CDLL(path)  # already loaded by NumPy: the same handle
        except OSError:
            continue
    return None


def _function(library, name, argtypes):
    """``library.name`` as a ctypes function returning nothing, or None if it is absent."""
    try:
        fn = getattr(library, name)
    except AttributeError:
        return None
    fn.restype = None
    fn.argtypes = argtypes
    return fn


def _checked_gemm(library, name, c_scalar, dtype):
    """The address of ``name`` if a 2x3 @ 3x2 product through it is right, else 0."""
    i64, i32, ptr = ctypes.c_int64, ctypes.c_int, ctypes.c_void_p
    fn = _function(library, name, [i32, i32, i32, i64, i64, i64, c_scalar, ptr, i64, ptr, i64,
                                   c_scalar, ptr, i64])
    if fn is None:
        return 0
    a = np.arange(6, dtype=dtype).reshape(2, 3)
    b = np.arange(6, dtype=dtype).reshape(3, 2) - 2
    c = np.zeros((2, 2), dtype)
    fn(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, CBLAS_NO_TRANS, 2, 2, 3, 1.0, a.ctypes.data, 3,
       b.ctypes.data, 2, 0.0, c.ctypes.data, 2)
    return _address(fn) if np.array_equal(c, a @ b) else 0


def _checked_gemv(library, name, c_scalar, dtype):
    """The address of ``name`` if a transposed 2x3 matrix times a 2-vector through it is
    right, else 0."""
    i64, i32, ptr = ctypes.c_int64, ctypes.c_int, ctypes.c_void_p
    fn = _function(library, name, [i32, i32, i64, i64, c_scalar, ptr, i64, ptr, i64,
                                   c_scalar, ptr, i64])
    if fn is None:
        return 0
    a = np.arange(6, dtype=dtype).reshape(2, 3)
    x = np.array([1, -2], dtype)
    y = np.ones(3, dtype)
    fn(CBLAS_ROW_MAJOR, CBLAS_TRANS, 2, 3, 2.0, a.ctypes.data, 3, x.ctypes.data, 1, 1.0,
       y.ctypes.data, 1)
    return _address(fn) if np.array_equal(y, 1 + 2 * (a.T @ x)) else 0


def _address(fn):
    return ctypes.cast(fn, ctypes.c_void_p).value or 0


def axpy(dtype):
    """NumPy's own CBLAS ``?axpy`` for ``dtype`` as a ctypes function
    ``fn(n, a, x_address, 1, y_address, 1)`` doing ``y += a * x`` in one pass, or None
    (no such routine in NumPy's BLAS, or another dtype). Checked once per dtype.

    >>> import numpy as np
    >>> y, x = np.ones(3), np.arange(3.0)
    >>> fn = axpy(y.dtype)
    >>> if fn is not None:
    ...     fn(3, 2.0, x.ctypes.data, 1, y.ctypes.data, 1)
    ...     print(y)
    [1. 3. 5.]
    """
    dtype = np.dtype(dtype)
    if dtype not in _axpys:
        _axpys[dtype] = _checked_axpy(dtype)
    return _axpys[dtype]


def _checked_axpy(dtype):
    symbol = _AXPY_SYMBOLS.get(dtype)
    library = _numpy_openblas() if symbol is not None else None
    if library is None:
        return None
    name, c_scalar = symbol
    fn = _function(library, name, [ctypes.c_int64, c_scalar, ctypes.c_void_p, ctypes.c_int64,
                                   ctypes.c_void_p, ctypes.c_int64])
    if fn is None:
        return None
    x = np.arange(5, dtype=dtype)
    y = np.ones(5, dtype)
    fn(5, -2.0, x.ctypes.data, 1, y.ctypes.data, 1)
    return fn if np.array_equal(y, 1 - 2 * np.arange(5, dtype=dtype)) else None
