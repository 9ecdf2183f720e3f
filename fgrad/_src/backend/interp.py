"""The numba interpreter: run a lowered ``Program`` with one call into compiled code.

``run(closed, args)`` lowers ``closed`` once (the ``Program`` is cached on the
``ClosedJaxpr`` object), copies the inputs into arenas, calls ``run_program`` (the
dispatcher loop, compiled once per float dtype) and copies the outputs out.

Arenas come from a per-program pool: a call pops a free arena triple (or makes a
new one) and pushes it back when done, so concurrent calls of one program never
share memory and sequential calls reuse it. Kernels report runtime errors (an
index out of range) as a status code and op index; the message is formatted here.
Jaxprs that cannot be lowered run on the reference evaluator instead.

Nothing is compiled at import: the first run of a float32 or float64 program
compiles (or loads from the on-disk cache) the kernels for that dtype.
``warmup()`` does it ahead of time. See docs/performance.md.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from fgrad._src import core
from fgrad._src.backend import lower as _lower_mod
from fgrad._src.backend.lower import ST_CHOICE, ST_INDEX, Unsupported

logger = logging.getLogger("fgrad")

try:
    import numba  # noqa: F401
except ImportError:  # pragma: no cover - numba is a dependency
    HAVE_NUMBA = False
else:
    HAVE_NUMBA = True
# TEMPORARY while the interpreter is being validated: execute.py only routes programs here
# when this is true. run() works regardless.
AVAILABLE = HAVE_NUMBA and __import__("os").environ.get("FGRAD_INTERP") == "1"

if HAVE_NUMBA:
    from fgrad._src.backend import kernels_common, kernels_entry


# --------------------------------------------------------------------------- compilation

_compile_lock = threading.Lock()
_entries: dict = {}  # float dtype -> compiled entry point (or None when compilation failed)
COMPILE_SECONDS: dict = {}  # float dtype name -> seconds spent compiling or loading


def _signature(fdtype):
    from numba import types

    arr = lambda t: types.Array(t, 1, "C")  # noqa: E731
    return (arr(types.int64), arr(types.float32 if fdtype == np.float32 else types.float64),
            arr(types.int64), arr(types.uint8), arr(types.int64))


class _Entry:
    """The compiled dispatcher for one float dtype and its kernel table."""

    __slots__ = ("call", "table")

    def __init__(self, call, table):
        self.call = call
        self.table = table


def _build(fdtype):
    sig = _signature(fdtype)
    table = kernels_entry.kernel_table(fdtype)
    kernels_entry.run_program.compile(sig)
    return _Entry(kernels_entry.run_program.overloads[sig].entry_point, table)


def _compile(fdtype):
    start = time.perf_counter()
    try:
        entry = _build(fdtype)
    except Exception as first:  # a broken cache directory or file: compile in memory
        logger.warning("fgrad: compiling the numba kernels with the cache failed (%s); "
                       "retrying in memory", first)
        kernels_common.disable_cache()
        kernels_entry._cfuncs.clear()
        entry = _build(fdtype)
    COMPILE_SECONDS[np.dtype(fdtype).name] = time.perf_counter() - start
    return entry


def entry_point(fdtype):
    """The compiled dispatcher for programs of float dtype ``fdtype`` (or None)."""
    fdtype = np.dtype(fdtype)
    entry = _entries.get(fdtype, False)
    if entry is not False:
        return entry
    with _compile_lock:
        entry = _entries.get(fdtype, False)
        if entry is False:
            try:
                entry = _compile(fdtype)
            except Exception:  # never fail a user's program because of the backend
                logger.exception("fgrad: numba kernels failed to compile; using the "
                                 "reference evaluator")
                entry = None
            _entries[fdtype] = entry
    return entry


def warmup(background=False, dtypes=(np.float32, np.float64)):
    """Compile (or load from the cache) the kernels for ``dtypes`` now.

    With ``background=True`` this happens in a daemon thread, which is returned;
    a program run meanwhile waits for its dtype's compilation to finish.
    """
    if not HAVE_NUMBA:
        return None

    def work():
        for dt in dtypes:
            entry_point(dt)

    if background:
        thread = threading.Thread(target=work, name="fgrad-warmup", daemon=True)
        thread.start()
        return thread
    work()
    return None


def cache_dir():
    """Where compiled kernels are cached on disk (None when compiling in memory)."""
    return kernels_common.cache_dir() if HAVE_NUMBA else None


# --------------------------------------------------------------------------- running


class Fallback:
    """Stored on a ``ClosedJaxpr`` that cannot be lowered: why, for introspection."""

    def __init__(self, reason):
        self.reason = reason

    def __repr__(self):
        return f"Fallback({self.reason!r})"


def program_for(closed):
    """The ``Program`` for ``closed`` (lowered once, cached on the object), or a ``Fallback``."""
    prog = getattr(closed, "_fgrad_program", None)
    if prog is None:
        try:
            prog = _lower_mod.lower(closed)
        except Unsupported as e:
            prog = Fallback(str(e))
            logger.debug("fgrad: running a jaxpr on the reference evaluator: %s", e)
        try:
            closed._fgrad_program = prog
        except AttributeError:  # pragma: no cover - a foreign object without a __dict__
            pass
    return prog


def run(closed, args):
    """Evaluate ``closed`` on ``args``; returns a list of fresh NumPy arrays."""
    prog = getattr(closed, "_fgrad_program", None)
    if prog is None:
        prog = program_for(closed)
    if type(prog) is Fallback:
        return core.eval_jaxpr(closed.jaxpr, closed.consts, list(args))
    entry = _entries.get(prog.fdtype) or entry_point(prog.fdtype)
    if entry is None:
        return core.eval_jaxpr(closed.jaxpr, closed.consts, list(args))
    return execute(prog, entry, args)


def execute(prog, entry, args):
    if len(args) != prog.n_in:
        raise TypeError(f"program takes {prog.n_in} arguments, got {len(args)}")
    pool = prog.pool
    try:
        arenas = pool.pop()
    except IndexError:
        arenas = prog.new_arenas()
    try:
        for k, c, lo, hi in prog.in_plan:
            x = args[k]
            if np.shape(x) != prog.in_shapes[k]:
                raise TypeError(f"argument {k} has shape {np.shape(x)}, "
                                f"the program expects {prog.in_shapes[k]}")
            arenas[c][lo:hi] = np.ravel(x)
        fa, ia, ba = arenas
        status = entry.call(prog.code, fa, ia, ba, entry.table)
        if status:
            raise _error(prog, status, ia)
        return [arenas[c][lo:hi].astype(dtype).reshape(shape)
                for c, lo, hi, shape, dtype in prog.out_plan]
    finally:
        pool.append(arenas)


def _error(prog, status, ia):
    name = prog.op_names[int(ia[1])]
    if status == ST_INDEX:
        return IndexError(f"index {int(ia[2])} is out of bounds for axis of size {int(ia[3])}")
    if status == ST_CHOICE:
        return ValueError("invalid entry in choice array")
    return RuntimeError(f"fgrad interpreter: op {int(ia[1])} ({name}) failed with status "
                        f"{status}")



