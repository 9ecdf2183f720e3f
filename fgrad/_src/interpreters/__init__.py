"""fgrad internals: interpreters."""
