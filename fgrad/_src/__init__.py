"""fgrad internals; the public API lives in the modules one level up."""
