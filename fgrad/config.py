"""Global flags: ``fg.config.update("debug_nans", True)``, ``"backend"``, ``"log_compiles"``."""

from fgrad._src.config import flags, read, update

__all__ = ["flags", "read", "update"]
