"""Global configuration flags: ``fg.config.update(name, value)``.

>>> import fgrad as fg
>>> fg.config.update("debug_nans", False)
>>> fg.config.flags.debug_nans
False
"""

import logging
import os

import numpy as np

logger = logging.getLogger("fgrad")


class Flags:
    """The current value of every flag, read as attributes.

    ``interpreter`` is derived, not a flag: True when programs run in the numba
    interpreter (backend "numba" and no ``debug_nans``, which checks every primitive's
    output on the reference). It is kept up to date on every assignment, so the hot
    path reads one attribute.
    """

    def __init__(self):
        self.debug_nans = False
        self.log_compiles = False
        self.backend = os.environ.get("FGRAD_BACKEND", "numba")
        self.jit_cache_size = 256

    def __setattr__(self, name, value):
        super().__setattr__(name, value)
        backend, debug_nans = getattr(self, "backend", None), getattr(self, "debug_nans", False)
        super().__setattr__("interpreter", backend == "numba" and not debug_nans)


flags = Flags()

_CHOICES = {"backend": ("numba", "reference")}
_BOOLEANS = ("debug_nans", "log_compiles")
_listeners: dict = {}  # flag name -> callbacks run after it changes


def update(name: str, value):
    """Set flag ``name`` to ``value``.

    >>> update("log_compiles", False)
    """
    _check_name(name)
    if name in _CHOICES and value not in _CHOICES[name]:
        raise ValueError(f"config flag {name!r} must be one of {_CHOICES[name]}, got {value!r}")
    if name in _BOOLEANS:
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"config flag {name!r} must be True or False, got {value!r}")
        value = bool(value)
    if name == "jit_cache_size":
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or (
                value < 1):
            raise ValueError(f"config flag 'jit_cache_size' must be a positive int (programs "
                             f"kept per cache), got {value!r}")
        value = int(value)
    setattr(flags, name, value)
    for callback in _listeners.get(name, ()):
        callback()


def on_update(name: str, callback):
    """Call ``callback()`` after every ``update(name, ...)`` (caches that depend on a flag).

    >>> on_update("log_compiles", lambda: None)
    """
    _check_name(name)
    _listeners.setdefault(name, []).append(callback)


def read(name: str):
    """The current value of flag ``name``.

    >>> read("debug_nans")
    False
    """
    _check_name(name)
    return getattr(flags, name)


def _check_name(name):
    if not isinstance(name, str) or not hasattr(flags, name) or name == "interpreter":
        known = ", ".join(sorted(set(vars(flags)) - {"interpreter"}))
        raise ValueError(f"unknown config flag {name!r}; known flags: {known}")
