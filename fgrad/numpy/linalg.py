"""``fgrad.numpy.linalg``: norms (more to come)."""

from fgrad._src.numpy.linalg import norm

__all__ = ["norm"]
