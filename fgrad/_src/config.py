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
    """The current value of every flag, read as attributes."""

    def __init__(self):
        self.debug_nans = False
        self.log_compiles = False
        self.backend = os.environ.get("FGRAD_BACKEND", "numba")
        self.jit_cache_size = 256


flags = Flags()

_CHOICES = {"backend": ("numba", "reference")}


def update(name: str, value):
    """Set flag ``name`` to ``value``.

    >>> update("log_compiles", False)
    """
    if not hasattr(flags, name):
        known = ", ".join(sorted(vars(flags)))
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
