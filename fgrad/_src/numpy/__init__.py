"""fgrad internals: numpy."""
