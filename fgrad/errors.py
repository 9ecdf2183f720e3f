"""Exceptions raised by fgrad."""

from fgrad._src.core import JaxprTypeError
from fgrad._src.errors import (
    ConcretizationError,
    TracerArrayConversionError,
    UnexpectedTracerError,
)

__all__ = [
    "ConcretizationError", "JaxprTypeError", "TracerArrayConversionError",
    "UnexpectedTracerError",
]
