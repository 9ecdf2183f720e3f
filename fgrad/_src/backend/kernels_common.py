"""The ``kernel`` decorator shared by every numba function of the interpreter.

Each kernel is ``numba.njit(nogil=True, error_model="numpy")`` with an on-disk cache
whose freshness stamp is a hash of *all* the interpreter's source files (kernels,
dispatcher and the opcode table in ``lower.py``). numba's own stamp only covers the
file a function is defined in, so editing an opcode or a callee in another file
would otherwise load stale machine code. When no cache directory is usable the
kernel compiles in memory instead; nothing here ever raises because of the cache.
"""

from __future__ import annotations

import hashlib
import os

import numba
from numba.core import caching

_HERE = os.path.dirname(os.path.abspath(__file__))
_SOURCES = ("kernels_codes.py", "kernels_common.py", "kernels_entry.py", "kernels_elementwise.py",
            "kernels_data.py", "kernels_reduce.py", "kernels_math.py")


def _source_stamp() -> str:
    h = hashlib.sha256(numba.__version__.encode())
    for name in _SOURCES:
        try:
            with open(os.path.join(_HERE, name), "rb") as f:
                h.update(f.read())
        except OSError:
            h.update(name.encode())
    return h.hexdigest()


STAMP = _source_stamp()


def _stamped(locator):
    class Locator(locator):
        def get_source_stamp(self):
            return STAMP

    Locator.__name__ = "Fgrad" + locator.__name__
    return Locator


class _CacheImpl(caching.CompileResultCacheImpl):
    _locator_classes = [
        _stamped(caching.UserProvidedCacheLocator),
        _stamped(caching.InTreeCacheLocator),
        _stamped(caching.UserWideCacheLocator),
    ]


class _FunctionCache(caching.FunctionCache):
    _impl_class = _CacheImpl


KERNELS: list = []  # every dispatcher and cfunc with a cache, for ``disable_cache``
CACHE_ENABLED = os.environ.get("FGRAD_NUMBA_CACHE", "1") != "0"


def attach_cache(obj, py_func) -> None:
    """Give a numba dispatcher or ``CFunc`` the stamped on-disk cache, if one is usable."""
    if not CACHE_ENABLED:
        return
    try:
        obj._cache = _FunctionCache(py_func)
    except Exception:  # no usable cache directory (or numba internals moved): in memory
        obj._cache = caching.NullCache()
    KERNELS.append(obj)


def kernel(fn=None, **options):
    """``numba.njit`` with fgrad's options and cache; usable bare or with options."""

    def wrap(f):
        disp = numba.njit(nogil=True, error_model="numpy", **options)(f)
        if options.get("inline") != "always":  # inlined ones are never compiled alone
            attach_cache(disp, disp.py_func)
        return disp

    return wrap if fn is None else wrap(fn)


def disable_cache() -> None:
    """Compile in memory from now on (used when reading or writing the cache failed)."""
    global CACHE_ENABLED
    CACHE_ENABLED = False
    for obj in KERNELS:
        obj._cache = caching.NullCache()


def cache_dir() -> str | None:
    """The directory the kernels' compiled code is cached in, or None when in memory."""
    for obj in KERNELS:
        cache = obj._cache
        if not isinstance(cache, caching.NullCache):
            return cache._cache_path
    return None
