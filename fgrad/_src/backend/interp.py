"""The numba interpreter: run a lowered ``Program`` with one call into compiled code.

``run(closed, args)`` lowers ``closed`` once (the ``Program`` is cached on the
``ClosedJaxpr`` object), checks the arguments and calls ``execute_trusted``, which
``fg.jit``'s hot path calls directly: take an arena set (``lower.ArenaSet``) from the
program's pool, copy small inputs in (large float ones are read where they lie, large
float outputs written straight into fresh arrays), make one call into the compiled
dispatcher ``kernels_entry.run_packed`` (a builtin made by ``native.python_entry``) and
copy small outputs out.

Arenas come from a per-program pool: a call pops a free arena set (or makes a new
one) and pushes it back when done, so concurrent calls of one program never share
memory and sequential calls reuse it. Kernels report runtime errors (an index out
of range) as a status code and op index; the message is formatted here. Jaxprs
that cannot be lowered run on the reference evaluator instead.

Nothing is compiled at import. Each kernel is linked from its cached object
(``native``, no numba import) or compiled with numba the first time a program needs
it; ``warmup()`` does all of them ahead of time. See docs/performance.md.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import logging
import os
import threading
import time
import warnings

import numpy as np

from fgrad._src import core
from fgrad._src.backend import blas, lower, native
from fgrad._src.backend import kernels_codes as codes
from fgrad._src.backend.kernels_codes import (
    FLAT_BASE,
    IA_GEMM,
    IA_GEMV,
    N_SLOTS,
    ST_CHOICE,
    ST_INDEX,
)
from fgrad._src.backend.lower import Unsupported

logger = logging.getLogger("fgrad")

# NB: numba itself is imported only to compile a kernel that is not cached as an object
# (``native``): a warm process runs programs without it.
HAVE_NUMBA = importlib.util.find_spec("numba") is not None
# NB: ``NUMBA_DISABLE_JIT=1`` (numba runs Python instead) leaves programs to the reference.
_JIT_DISABLED = os.environ.get("NUMBA_DISABLE_JIT", "0").strip() not in ("", "0")
AVAILABLE = HAVE_NUMBA and not _JIT_DISABLED  # execute.py routes programs here when true


# --------------------------------------------------------------------------- compilation

_compile_lock = threading.RLock()
_table = np.zeros(N_SLOTS, np.int64)  # kernel slot -> address of its compiled entry point
_failed: set = set()  # slots that could not be compiled (their programs use the reference)
_state: dict = {"dispatch": None}
# NB: threads waiting for ``_compile_lock``. A lock is not fair: the warmup thread, which
# takes it again right after each kernel, could keep a program waiting for all of them.
_waiting = [0]
_waiting_count_lock = threading.Lock()
COMPILE_SECONDS: dict = {}  # kernel name (or "dispatcher") -> seconds compiling or loading
# NB: a fork while another thread (a background warmup) compiles would leave the child a
# lock nobody releases: forks wait for the kernel in progress, then both sides go on.
os.register_at_fork(before=lambda: _compile_lock.acquire(),
                    after_in_parent=lambda: _compile_lock.release(),
                    after_in_child=lambda: _compile_lock.release())
MAX_IDLE_ARENAS = 4  # arena sets a program keeps for reuse (more only while threads run it)
# NB: the dispatcher is called with the GIL released, as a builtin (``native.python_entry``)
# or, where that cannot be made, through ctypes.
_DISPATCH_TYPE = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p)


def _link_cached(name):
    """The address of kernel ``name`` linked from its stored object, or None."""
    start = time.perf_counter()
    loaded = native.load(name)
    if loaded is None:
        return None
    address, label = loaded
    COMPILE_SECONDS[label] = time.perf_counter() - start
    return address


def _load_or_compile(name, compile_one):
    """The address of kernel ``name``: linked from its stored object, or compiled with
    numba (``compile_one() -> (cfunc, label)``) and stored for the next process."""
    address = _link_cached(name)
    if address is None:
        start = time.perf_counter()
        cfunc, label = compile_one()
        native.store(name, label, cfunc)
        COMPILE_SECONDS[label] = time.perf_counter() - start
        address = cfunc.address
    return address


def _with_cache_fallback(compile_one, what):
    from fgrad._src.backend import kernels_common

    try:
        return _quietly(compile_one)
    except Exception as first:  # a broken cache directory or file: compile in memory
        if not kernels_common.CACHE_ENABLED:
            raise
        logger.warning("fgrad: compiling %s with the on-disk cache failed (%s); caching is "
                       "off for this process", what, first)
        kernels_common.disable_cache()
        return _quietly(compile_one)


def _quietly(compile_one):
    # NB: numba's pedantic IR check warns (NumbaIRAssumptionWarning) about the nested
    # inlined selects of kernels_math; the generated code is correct (tested).
    from numba.core.errors import NumbaIRAssumptionWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumbaIRAssumptionWarning)
        return compile_one()


def _compile_dispatcher():
    from fgrad._src.backend import kernels_entry as entry

    compile_one = lambda: entry.compile_cfunc(  # noqa: E731
        entry.run_packed, ("run_packed", ""), entry.DISPATCH_SIGNATURE)
    return _with_cache_fallback(compile_one, "dispatcher"), "dispatcher"


def _compile_kernel(slot):
    from fgrad._src.backend import kernels_entry

    fn, key = _all_kernels()[slot]
    label = "/".join(filter(None, key))
    return _with_cache_fallback(lambda: kernels_entry.compile_cfunc(fn, key), label), label


def _dispatcher():
    dispatch = _state["dispatch"]
    if dispatch is None:
        address = _load_or_compile("dispatcher", _compile_dispatcher)
        dispatch = native.python_entry(address) or _DISPATCH_TYPE(address)
        _state["dispatch"] = dispatch
    return dispatch


def _compile_slots(slots, yielding=False) -> bool:
    """Make sure every kernel in ``slots`` is compiled; False if one cannot be.

    The lock is taken per kernel, so a program that needs only kernels already compiled
    does not wait for a background ``warmup`` to finish the others. ``yielding`` (the
    warmup thread) lets threads that wait for a kernel take the lock first.
    """
    for slot in slots:
        if _table[slot] or slot in _failed:
            continue
        if yielding:
            while _waiting[0]:
                time.sleep(0.005)
        with _waiting_for_lock(lambda: _table[slot] or slot in _failed) as held:  # noqa: B023
            if not held or _table[slot] or slot in _failed:
                continue
            try:
                _table[slot] = _load_or_compile(f"slot{slot}",
                                                lambda: _compile_kernel(slot))  # noqa: B023
            except Exception:  # never fail a user's program because of the backend
                logger.exception("fgrad: numba kernel %d failed to compile; programs that "
                                 "use it run on the reference evaluator", slot)
                _failed.add(slot)
    if _state["dispatch"] is None:
        with _waiting_for_lock(lambda: _state["dispatch"] is not None) as held:
            try:
                if held:
                    _dispatcher()
            except Exception:
                logger.exception("fgrad: the numba dispatcher failed to compile")
                return False
    return not any(slot in _failed for slot in slots)


@contextlib.contextmanager
def _waiting_for_lock(done):
    """Hold ``_compile_lock`` (yields True), or stop waiting for it once ``done()`` (yields
    False: another thread made what was wanted). Counted in ``_waiting`` while waiting."""
    with _waiting_count_lock:
        _waiting[0] += 1
    try:
        held = _compile_lock.acquire(timeout=0.01)
        while not held and not done():
            held = _compile_lock.acquire(timeout=0.01)
    finally:
        with _waiting_count_lock:
            _waiting[0] -= 1
    try:
        yield held
    finally:
        if held:
            _compile_lock.release()


def _all_kernels():
    kernels = _state.get("kernels")
    if kernels is None:
        from fgrad._src.backend import kernels_entry

        kernels = _state["kernels"] = kernels_entry.all_kernels()
    return kernels


def warmup(background=False, dtypes=(np.float32, np.float64), processes=1):
    """Compile (or load from the on-disk cache) every kernel for ``dtypes`` now.

    Without this, each kernel is compiled the first time a program needs it. With
    ``background=True`` the work happens in a daemon thread, which is returned; a
    program run meanwhile waits only for kernels it needs that are not compiled yet.
    ``processes=N`` (N > 1) first compiles into the on-disk cache from N worker
    processes in parallel (numba compiles one function at a time per process), then
    loads the results; without a usable cache it compiles in this process as usual.
    """
    if not AVAILABLE:
        return None
    wanted = set(range(N_SLOTS)) - set(range(2 * codes.N_FLOAT_KINDS))
    for dt in dtypes:
        base = codes.FLOAT_BASE[codes.CLS_F64 if np.dtype(dt) == np.float64 else codes.CLS_F32]
        wanted |= set(range(base, base + codes.N_FLOAT_KINDS))
    slots = sorted(wanted)

    def work():
        if processes > 1 and cache_dir() is not None:
            for slot in slots:  # NB: what is cached already needs no worker (nor numba)
                with _compile_lock:
                    if not _table[slot]:
                        _table[slot] = _link_cached(f"slot{slot}") or 0
            missing = [s for s in slots if not _table[s]]
            if missing:
                _compile_in_workers(missing, processes)
        # NB: the dispatcher first: a program whose kernels are ready needs only it.
        _compile_slots([], yielding=True)
        _compile_slots(slots, yielding=True)

    if background:
        thread = threading.Thread(target=work, name="fgrad-warmup", daemon=True)
        thread.start()
        return thread
    work()
    return None


_COST = {"kf_unary": 5.0, "kf_reduce": 2.8, "k_reduce_i": 3.0, "k_binary_i": 2.2,
         "kf_binary": 1.6, "kf_dot": 1.5, "kf_move": 1.6, "k_move_8": 1.6, "k_move_b": 1.9,
         "kf_compare": 0.8, "k_compare_i": 0.7, "kf_select": 0.5, "k_select_8": 0.5,
         "k_select_b": 0.5, "k_dot_i": 0.6, "k_unary_i": 0.5, "k_bool": 0.4}


def _compile_in_workers(slots, processes):
    """Compile ``slots`` into the on-disk cache from ``processes`` subprocesses."""
    import subprocess
    import sys

    # Both float variants of one entry point share a cache index file: keep them together.
    groups: dict = {}
    for slot in slots:
        groups.setdefault(_all_kernels()[slot][0].__name__, []).append(slot)
    # Longest first onto the least loaded worker, with rough measured costs in seconds.
    loads = [0.0] * processes
    shares: list = [[] for _ in range(processes)]
    for name in sorted(groups, key=lambda k: -_COST.get(k, 0.3) * len(groups[k])):
        w = loads.index(min(loads))
        loads[w] += _COST.get(name, 0.3) * len(groups[name])
        shares[w].extend(groups[name])
    import fgrad

    root = os.path.dirname(os.path.dirname(os.path.abspath(fgrad.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [root, os.environ.get("PYTHONPATH")])))
    code = "from fgrad._src.backend import interp; interp._compile_slots({})"
    # NB: a worker that fails only costs time: this process compiles what is missing.
    workers = [subprocess.Popen([sys.executable, "-c", code.format(share)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for share in shares if share]
    for w in workers:
        w.wait()


def cache_dir():
    """Where compiled kernels are cached on disk (None when compiling in memory)."""
    if not HAVE_NUMBA:
        return None
    directory = native.cache_dir()
    if directory is None and native.ENABLED:  # numba's own cache (not on Linux)
        from fgrad._src.backend import kernels_common

        _all_kernels()  # NB: defining the kernels gives them their caches
        directory = kernels_common.cache_dir()
    return directory


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
            prog = lower.lower(closed)
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
    if type(prog) is Fallback or (not prog.ready and not _prepare(prog)):
        return core.eval_jaxpr(closed.jaxpr, closed.consts, list(args))
    return execute(prog, args)


def ready_program(closed):
    """The ``Program`` for ``closed`` with its kernels compiled, or None (a ``Fallback``)."""
    prog = program_for(closed)
    if type(prog) is Fallback or (not prog.ready and not _prepare(prog)):
        return None
    return prog


def _prepare(prog) -> bool:
    if not AVAILABLE or not _compile_slots(prog.slots):
        return False
    prog.ready = True
    return True


def execute(prog, args):
    """Run a ready ``Program`` on ``args``, checking their number and shapes."""
    if len(args) != prog.n_in:
        raise TypeError(f"program takes {prog.n_in} arguments, got {len(args)}")
    for k, (x, shape) in enumerate(zip(args, prog.in_shapes)):
        if np.shape(x) != shape:
            raise TypeError(f"argument {k} has shape {np.shape(x)}, the program expects {shape}")
    return execute_trusted(prog, args)


def execute_trusted(prog, args):
    """Run a ready ``Program`` on ``args`` already known to have the program's shapes
    (``fg.jit``'s cache key guarantees it); returns a list of fresh arrays."""
    pool = prog.pool
    try:
        arenas = pool.pop()
    except IndexError:
        arenas = _new_arena_set(prog)
    try:
        return arenas.run(args)
    finally:
        if len(pool) < MAX_IDLE_ARENAS:
            pool.append(arenas)


def _new_arena_set(prog):
    arenas = prog.new_arenas(_table)
    arenas.ia[IA_GEMM:IA_GEMV + 2] = blas.addresses()  # NumPy's BLAS, or 0: np.dot
    arenas.run = _make_run(prog, arenas)
    return arenas


def _make_run(prog, arenas):
    """``run(args) -> outputs``: one run of ``prog`` on ``arenas``, as short as the
    program allows (most small programs take one array and return one)."""
    dispatch, ptrs, ia = _state["dispatch"], arenas.ptrs_address, arenas.ia
    if arenas.direct_inputs or arenas.direct_outputs:
        return lambda args: _run_direct(prog, arenas, args)
    inputs, outputs = arenas.copied_inputs, arenas.copied_outputs
    if len(inputs) == 1 and arenas.only_output is not None:
        (k, in_view), out_view = inputs[0], arenas.only_output

        def run_one(args):
            in_view[...] = args[k]
            status = dispatch(ptrs)
            if status:
                raise _error(prog, status, ia)
            return [out_view.copy()]

        return run_one

    def run(args):
        for k, view in inputs:
            view[...] = args[k]
        status = dispatch(ptrs)
        if status:
            raise _error(prog, status, ia)
        return [view.copy() if dtype is None else view.astype(dtype)
                for _, view, dtype in outputs]

    return run


def _run_direct(prog, arenas, args):
    """One run when some inputs or outputs are used in place (``ArenaSet``)."""
    for k, view in arenas.copied_inputs:
        view[...] = args[k]
    code = arenas.code
    keep = []  # NB: arrays the code points at must outlive the run
    donated, in_place = prog.aliased.values(), set()
    for k, dtype, refs, view, copied_offsets in arenas.direct_inputs:
        x = args[k]
        # NB: C-contiguous: its data is the flat array the code reads, from its start.
        if type(x) is np.ndarray and x.dtype == dtype and x.flags.c_contiguous and (
                k not in donated or _writable_alone(x, k, args)):
            if _point_code_at(code, refs, x):
                keep.append(x)
                if k in donated:
                    in_place.add(k)
                continue
        view[...] = x
        code[refs.positions] = copied_offsets
    outs = [None] * arenas.n_out
    for j, shape, dtype, refs in arenas.direct_outputs:
        out = np.empty(shape, dtype)
        if not _point_code_at(code, refs, out):  # pragma: no cover
            raise RuntimeError("fgrad interpreter: NumPy returned a misaligned array")
        outs[j] = out
    status = _state["dispatch"](arenas.ptrs_address)
    if status:
        raise _error(prog, status, arenas.ia)
    for j, view, dtype in arenas.copied_outputs:
        outs[j] = view.copy() if dtype is None else view.astype(dtype)
    for j, k, shape, view in arenas.in_place_outputs:
        if k in in_place:  # the run wrote the result into the argument itself
            x = args[k]
            outs[j] = x if x.shape == shape else x.reshape(shape)
        else:
            outs[j] = view.copy()
    return outs


def _point_code_at(code, refs, array):
    """Point the code positions of ``refs`` (``lower.CodeRefs``) at the C-contiguous
    float ``array``: its offset in elements from ``FLAT_BASE`` plus each position's
    delta. False (nothing written) if ``array`` is misaligned."""
    address = _data_address(array) - FLAT_BASE
    itemsize = array.itemsize
    if address % itemsize:
        return False
    refs.point(code, address // itemsize)
    return True


def _data_address_reader():
    """``address(array)``: where an ndarray's data starts.

    ``__array_interface__`` builds a dict for it (~2 us here, twice per run of a program
    with a large input and output). NumPy's array object starts with the Python object
    header, then the data pointer (``PyArray_DATA``), which ctypes reads in ~0.2 us. The
    reader is checked against ``__array_interface__`` once; on any disagreement (another
    layout) that slower, documented form is used.
    """
    def documented(array):
        return array.__array_interface__["data"][0]

    read_pointer = ctypes.c_void_p.from_address
    offset = object.__basicsize__  # NB: sizeof(PyObject): where the array's fields begin

    def direct(array):
        return read_pointer(id(array) + offset).value

    samples = [np.empty(3), np.zeros((4, 5), np.float32)[1:, 2:], np.arange(6)[::-1]]
    if all(direct(x) == documented(x) for x in samples):
        return direct
    return documented  # pragma: no cover - an array layout this build does not have


_data_address = _data_address_reader()


def _writable_alone(x, k, args):
    """Whether the program may write its result into the donated argument ``x``: it is
    writable and shares no memory with another argument (which the program may still
    read after writing)."""
    if not x.flags.writeable:
        return False
    for m, other in enumerate(args):
        if m != k and type(other) is np.ndarray and np.may_share_memory(x, other):
            return False
    return True


def _error(prog, status, ia):
    name = prog.op_names[int(ia[1])]
    if status == ST_INDEX:
        return IndexError(f"index {int(ia[2])} is out of bounds for axis of size {int(ia[3])}")
    if status == ST_CHOICE:
        return ValueError("invalid entry in choice array")
    return RuntimeError(f"fgrad interpreter: op {int(ia[1])} ({name}) failed with status "
                        f"{status}")
