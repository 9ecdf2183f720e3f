"""Global configuration flags: ``fg.config.update(name, value)``.

>>> import fgrad as fg
>>> fg.config.update("debug_nans", False)
>>> fg.config.flags.debug_nans
False
"""

import logging
import os

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


def update(name: str, value):
    """Set flag ``name`` to ``value``.

    >>> update("log_compiles", False)
    """
    if not hasattr(flags, name) or name == "interpreter":
        known = ", ".join(sorted(set(vars(flags)) - {"interpreter"}))
        raise ValueError(f"unknown config flag {name!r}; known flags: {known}")
    if name in _CHOICES and value not in _CHOICES[name]:
        raise ValueError(f"config flag {name!r} must be one of {_CHOICES[name]}, got {value!r}")
    setattr(flags, name, value)


def read(name: str):
    """The current value of flag ``name``.

    >>> read("debug_nans")
    False
    """
    return getattr(flags, name)
