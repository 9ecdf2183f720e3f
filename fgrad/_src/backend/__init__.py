"""fgrad internals: backend."""
