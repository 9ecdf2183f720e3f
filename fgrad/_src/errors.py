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
        super().__init__(
            f"{what} needs a concrete value, but got an abstract tracer of type "
            f"{aval.str_short()} inside a traced function (jit, vmap or make_jaxpr).{where}\n"
            "Python control flow cannot depend on traced values: use fnp.where(cond, a, b) "
            "for value-dependent choices, or mark the argument static with "
            "fg.jit(f, static_argnums=...)."
        )


class UnexpectedTracerError(Exception):
    """A tracer escaped the transform that created it."""


def user_frame_summary():
    """The innermost stack frame that lies outside the fgrad package, or None."""
    for frame in reversed(traceback.extract_stack()):
        if not os.path.abspath(frame.filename).startswith(_FGRAD_DIR):
            return frame
    return None
