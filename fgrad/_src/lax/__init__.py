"""Primitives, one block per primitive with all its rules (see ``lax.py``)."""
