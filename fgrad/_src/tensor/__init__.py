"""fgrad internals: tensor."""
