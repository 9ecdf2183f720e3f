"""The ``kernel`` decorator shared by every numba function of the interpreter.

Each kernel is ``numba.njit(nogil=True, error_model="numpy")``. Where ``native`` caches
compiled kernels as objects (Linux), numba compiles in memory and ``native`` stores the
result. Elsewhere each one gets numba's on-disk cache, whose freshness stamp is a hash
of *all* the interpreter's source files (``native.source_stamp``): numba's own stamp
only covers the file a function is defined in, so editing an opcode or a callee in
another file would otherwise load stale machine code. When no cache directory is usable
the kernel compiles in memory; nothing here ever raises because of the cache.
"""

from __future__ import annotations

import numba
from numba.core import caching

from fgrad._src.backend import native

STAMP = native.source_stamp()


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
# NB: numba's disk cache only where kernel objects are not cached (``native``): a
# kernel numba loads from its cache has no object code left to store.
CACHE_ENABLED = native.ENABLED and native.cache_dir() is None


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
