"""Run a closed jaxpr on concrete arrays with the configured backend.

``reference`` evaluates equation by equation with the NumPy implementations;
``numba`` lowers the jaxpr to a ``Program`` and runs it in the interpreter.
"""

import functools

from fgrad._src import config, core


def interpreter_on() -> bool:
    """True when programs should run in the numba interpreter."""
    # NB: debug_nans checks every primitive's output, so it runs the reference.
    return config.flags.interpreter


def run_closed_jaxpr(closed, args):
    """Evaluate ``closed`` on concrete ``args``; returns a list of arrays."""
    if interpreter_on():
        from fgrad._src.backend import interp

        if interp.AVAILABLE:
            return interp.run(closed, args)
    return core.eval_jaxpr(closed.jaxpr, closed.consts, list(args))


def fast_runner(closed):
    """``run(args)`` for ``closed``'s compiled interpreter program, skipping the shape
    checks (the caller guarantees the traced shapes), or None when it runs elsewhere
    (reference backend, numba missing, or a jaxpr the interpreter cannot lower).
    Callers must still check ``config.flags.interpreter`` before each use."""
    if not interpreter_on():
        return None
    from fgrad._src.backend import interp

    prog = interp.ready_program(closed) if interp.AVAILABLE else None
    return None if prog is None else functools.partial(interp.execute_trusted, prog)


def warmup(background=False, dtypes=("float32", "float64"), processes=1):
    """Compile (or link from the on-disk cache) the interpreter's kernels now,
    instead of on first use; ``background=True`` does it in a daemon thread (returned),
    ``processes=N`` compiles into the on-disk cache from N worker processes first.

    >>> thread = warmup(background=True)  # compiles while the program goes on
    >>> thread.join()  # (a program run meanwhile waits only for kernels it needs)
    """
    from fgrad._src.backend import interp

    return interp.warmup(background=background, dtypes=dtypes, processes=processes)
