"""Grad mode: whether Tensor ops record the graph. Thread-local, like PyTorch's.

``no_grad``, ``enable_grad`` and ``set_grad_enabled`` are context managers and
decorators; ``no_grad``/``enable_grad`` also work as bare decorators.
"""

from __future__ import annotations

import functools
import inspect
import threading


class _GradState(threading.local):
    enabled = True


state = _GradState()


def is_grad_enabled() -> bool:
    """True when Tensor ops record the graph in this thread.

    >>> is_grad_enabled()
    True
    """
    return state.enabled


class _GradModeContext:
    """Base: a context manager that sets grad mode, and a decorator that runs the
    function under a fresh instance of itself."""

    _mode: bool

    def __new__(cls, func=None):
        self = super().__new__(cls)
        if func is not None and callable(func):
            self.__init__()
            return self(func)
        return self

    def __init__(self, func=None):
        self._prev = []

    def __enter__(self):
        self._prev.append(state.enabled)
        state.enabled = self._mode
        return None

    def __exit__(self, *exc):
        state.enabled = self._prev.pop()
        return False

    def clone(self):
        return type(self)()

    def __call__(self, func):
        if inspect.isgeneratorfunction(func):
            return _generator_in(self.clone, func)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self.clone():
                return func(*args, **kwargs)

        return wrapper


def _generator_in(make_context, func):
    """``func`` (a generator function) with each of its steps run inside a fresh
    ``make_context()``, as PyTorch's decorators do: the caller's mode holds between
    steps."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        gen = func(*args, **kwargs)
        sent = None
        while True:
            try:
                with make_context():
                    value = gen.send(sent)
            except StopIteration as stop:  # NB: returned, not raised (PEP 479)
                return stop.value
            try:
                sent = yield value
            except GeneratorExit:
                gen.close()
                raise

    return wrapper


class no_grad(_GradModeContext):  # noqa: N801
    """Disable graph recording: ``with fg.no_grad():`` or ``@fg.no_grad()``.

    >>> with no_grad():
    ...     is_grad_enabled()
    False
    """

    _mode = False


class enable_grad(_GradModeContext):  # noqa: N801
    """Enable graph recording inside a ``no_grad`` region.

    >>> with no_grad(), enable_grad():
    ...     is_grad_enabled()
    True
    """

    _mode = True


class set_grad_enabled(_GradModeContext):  # noqa: N801
    """Set grad mode now; as a context manager, restore the previous mode on exit.

    >>> with set_grad_enabled(False):
    ...     is_grad_enabled()
    False
    >>> is_grad_enabled()
    True
    """

    def __new__(cls, mode):
        return object.__new__(cls)

    def __init__(self, mode):
        if not isinstance(mode, bool):
            raise TypeError(f"set_grad_enabled(mode) expects a bool, got {type(mode).__name__}")
        self._mode = mode
        self._prev = [state.enabled]
        self._entered = False
        state.enabled = mode

    def __enter__(self):
        # NB: the mode was already set by the constructor, as in PyTorch.
        self._entered = True
        state.enabled = self._mode
        return None

    def __exit__(self, *exc):
        state.enabled = self._prev[0]
        return False

    def clone(self):
        clone = object.__new__(type(self))
        clone._mode = self._mode
        clone._prev = [state.enabled]
        clone._entered = False
        return clone

    def __call__(self, func):
        # Used as a decorator the constructor's immediate effect is undone.
        state.enabled = self._prev[0]
        mode = self._mode

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            prev = state.enabled
            state.enabled = mode
            try:
                return func(*args, **kwargs)
            finally:
                state.enabled = prev

        return wrapper


class inference_mode(no_grad):  # noqa: N801
    """Same as ``no_grad`` here (fgrad has no separate inference tensors)."""

    def __init__(self, mode=True, func=None):
        super().__init__()
        self._mode = not mode

    def __new__(cls, mode=True):
        if callable(mode) and not isinstance(mode, bool):
            self = object.__new__(cls)
            self.__init__()
            return self(mode)
        return object.__new__(cls)

    def clone(self):
        return type(self)(not self._mode)
