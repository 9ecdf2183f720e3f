"""Run a closed jaxpr on concrete arrays with the configured backend.

``reference`` evaluates equation by equation with the NumPy implementations;
``numba`` lowers the jaxpr to a ``Program`` and runs it in the interpreter.
"""

from fgrad._src import config, core


def run_closed_jaxpr(closed, args):
    """Evaluate ``closed`` on concrete ``args``; returns a list of arrays."""
    # NB: debug_nans checks every primitive's output, so it runs the reference.
    if config.flags.backend == "numba" and not config.flags.debug_nans:
        from fgrad._src.backend import interp

        if interp.AVAILABLE:
            return interp.run(closed, args)
    return core.eval_jaxpr(closed.jaxpr, closed.consts, list(args))


def warmup(background=False, dtypes=("float32", "float64"), processes=1):
    """Compile (or load from numba's on-disk cache) the interpreter's kernels now,
    instead of on first use; ``background=True`` does it in a daemon thread (returned),
    ``processes=N`` compiles into the on-disk cache from N worker processes first.

    >>> thread = warmup(background=True)  # compiles while the program goes on
    """
    from fgrad._src.backend import interp

    return interp.warmup(background=background, dtypes=dtypes, processes=processes)
