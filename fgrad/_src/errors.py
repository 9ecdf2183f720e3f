"""fgrad's exception types and the helper that finds the user's source line."""

import os
import traceback

_FGRAD_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ConcretizationError(TypeError):
    """A traced (abstract) value was used where a concrete Python value is needed.

    >>> import fgrad as fg
    >>> try:
    ...     fg.jit(lambda x: 1.0 if x > 0 else 0.0)(1.0)
    ... except fg.errors.ConcretizationError as e:
    ...     print("bool()" in str(e))
    True
    """

    def __init__(self, what, aval, frame=None):
        where = f"\n  at {frame.filename}:{frame.lineno}: {frame.line}" if frame else ""
        numpy_hint = (
            " NumPy itself cannot take a traced value either: index a NumPy array `a` with "
            "fnp.getitem(a, i) instead of a[i], and use fgrad.numpy functions "
            "for the computation."
            if what in ("np.asarray()", "__index__()") else "")
        super().__init__(
            f"{what} needs a concrete value, but got an abstract tracer of type "
            f"{aval.str_short()} inside a traced function (jit, vmap or make_jaxpr).{where}\n"
            "Python control flow cannot depend on traced values: use fnp.where(cond, a, b) "
            "for value-dependent choices, or mark the argument static with "
            f"fg.jit(f, static_argnums=...).{numpy_hint}"
        )


class TracerArrayConversionError(TypeError):
    """``np.asarray``/``np.array`` of a float value being differentiated: NumPy would
    get a constant copy and the gradient through it would silently be lost.

    >>> import numpy as np, fgrad as fg
    >>> try:
    ...     fg.grad(lambda x: (np.asarray(x) * x).sum())(np.ones(2))
    ... except fg.errors.TracerArrayConversionError as e:
    ...     print("fg.stop_gradient" in str(e))
    True
    """

    def __init__(self, aval, frame=None):
        where = f"\n  at {frame.filename}:{frame.lineno}: {frame.line}" if frame else ""
        super().__init__(
            f"np.asarray()/np.array() of a value being differentiated ({aval.str_short()})"
            f" would make a NumPy constant of it and drop its gradient.{where}\n"
            "Use fgrad.numpy (import fgrad.numpy as fnp) for the computation, or "
            "fg.stop_gradient(x) if a constant is what you want."
        )


class UnexpectedTracerError(Exception):
    """A tracer escaped the transform that created it."""


def user_frame_summary():
    """The innermost stack frame that lies outside the fgrad package, or None."""
    for frame in reversed(traceback.extract_stack()):
        if not os.path.abspath(frame.filename).startswith(_FGRAD_DIR):
            return frame
    return None


def check_callable(fun, what):
    """Raise a ``TypeError`` naming ``what`` (``"grad"``, ``"jit"``, ...) unless ``fun`` is
    callable, when the transform is made rather than at its first call.

    >>> check_callable(len, "grad")
    """
    if not callable(fun):
        raise TypeError(f"{what}: expected a callable (the function to transform), got "
                        f"{type(fun).__name__} {fun!r:.60}")
