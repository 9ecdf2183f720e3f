"""Shared helpers for the core test suite: run a function eagerly, through
``make_jaxpr`` + ``eval_jaxpr``, and through ``jit``, and compare with NumPy.
"""

from __future__ import annotations

import sys
import threading
import warnings

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fgrad as fg
from fgrad._src import core
from fgrad.tree_util import tree_flatten

F32, F64, I64, BOOL = (np.dtype(d) for d in ("float32", "float64", "int64", "bool"))
ALL_DTYPES = (F32, F64, I64, BOOL)
FLOATS = (F32, F64)

MODES = ("eager", "jaxpr", "jit")

# Shapes: hypothesis shrinks towards the first branch, so 0-d, size-1 and empty
# shapes come first and are always among the generated examples.
EDGE_SHAPES = [(), (1,), (0,), (1, 1), (2, 0), (3,), (2, 3), (1, 3, 1)]
shapes = st.one_of(
    st.sampled_from(EDGE_SHAPES),
    hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
)
nonempty_shapes = st.one_of(
    st.sampled_from([s for s in EDGE_SHAPES if 0 not in s]),
    hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4),
)


def elements(dtype, lo=-4.0, hi=4.0):
    """Bounded elements of ``dtype`` in ``[lo, hi]`` (ints rounded inwards)."""
    dtype = np.dtype(dtype)
    if dtype == BOOL:
        return st.booleans()
    if dtype.kind == "i":
        return st.integers(int(np.ceil(lo)), int(np.floor(hi)))
    width = 32 if dtype == F32 else 64
    if width == 32:  # bounds must be float32 values; round them inwards
        lo = (
            float(np.nextafter(np.float32(lo), np.float32(hi)))
            if float(np.float32(lo)) < lo
            else float(np.float32(lo))
        )
        hi = (
            float(np.nextafter(np.float32(hi), np.float32(lo)))
            if float(np.float32(hi)) > hi
            else float(np.float32(hi))
        )
    return st.floats(
        lo, hi, width=width, allow_nan=False, allow_infinity=False, allow_subnormal=False
    )


def arrays(dtype, shape, lo=-4.0, hi=4.0):
    return hnp.arrays(np.dtype(dtype), shape, elements=elements(dtype, lo, hi))


def _tolerances(dtype):
    if dtype == F32:
        return dict(rtol=2e-5, atol=2e-5)
    if dtype == F64:
        return dict(rtol=1e-11, atol=1e-12)
    return dict(rtol=0, atol=0)


def assert_same(actual, expected, what=""):
    """Equal values (NaN == NaN), equal dtype, equal shape; ``actual`` is a NumPy value."""
    expected = np.asarray(expected)
    assert isinstance(actual, (np.ndarray, np.generic)), (
        f"{what}: result is {type(actual).__name__}, not a NumPy array or scalar"
    )
    actual_arr = np.asarray(actual)
    assert actual_arr.dtype == expected.dtype, (
        f"{what}: dtype {actual_arr.dtype} != NumPy's {expected.dtype}"
    )
    assert actual_arr.shape == expected.shape, (
        f"{what}: shape {actual_arr.shape} != NumPy's {expected.shape}"
    )
    np.testing.assert_allclose(
        actual_arr, expected, equal_nan=True, err_msg=what, **_tolerances(expected.dtype)
    )


def flat_results(out):
    leaves, _ = tree_flatten(out)
    return leaves


def run_mode(mode, f, args):
    """Run ``f(*args)`` in ``mode``; returns the flat list of results."""
    if mode == "eager":
        return flat_results(f(*args))
    if mode == "jaxpr":
        closed = fg.make_jaxpr(f)(*args)
        core.typecheck_jaxpr(closed.jaxpr)
        flat_args, _ = tree_flatten(args)
        outs = core.eval_jaxpr(closed.jaxpr, closed.consts, flat_args)
        # The staged types must agree with what the implementation produced.
        for out, aval in zip(outs, closed.out_avals):
            arr = np.asarray(out)
            assert (arr.shape, arr.dtype) == (aval.shape, aval.dtype), (
                f"jaxpr promises {aval.str_short()} but evaluates to {arr.dtype}{arr.shape}"
            )
        return outs
    if mode == "jit":
        return flat_results(fg.jit(f)(*args))
    raise ValueError(mode)


def check_against_numpy(f, ref, args, modes=MODES, what=""):
    """``f(*args)`` equals ``ref(*args)`` in value, dtype and shape in every mode.

    If NumPy raises, fgrad must raise too (TypeError, ValueError or IndexError).
    """
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            expected = flat_results(ref(*args))
        except (TypeError, ValueError, IndexError) as e:
            expected_error = e
        else:
            expected_error = None
        for mode in modes:
            label = f"{what} [{mode}]"
            if expected_error is not None:
                try:
                    got = run_mode(mode, f, args)
                except (TypeError, ValueError, IndexError):
                    continue
                raise AssertionError(
                    f"{label}: NumPy raises {type(expected_error).__name__}: "
                    f"{expected_error}, fgrad returned {got!r}"
                )
            outs = run_mode(mode, f, args)
            assert len(outs) == len(expected), (
                f"{label}: {len(outs)} outputs, expected {len(expected)}"
            )
            for k, (out, exp) in enumerate(zip(outs, expected)):
                assert_same(out, exp, f"{label} output {k}")


def run_in_threads(targets, switch_interval=None):
    """Run each callable of ``targets`` in a thread of its own and join them all. With
    ``switch_interval`` (seconds) the interpreter switches threads that often meanwhile,
    which makes races likely."""
    interval = sys.getswitchinterval()
    if switch_interval is not None:
        sys.setswitchinterval(switch_interval)
    try:
        threads = [threading.Thread(target=target) for target in targets]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
