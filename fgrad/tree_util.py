"""Pytree utilities: flatten nested tuples, lists, dicts, namedtuples and registered classes."""

from fgrad._src.tree import (
    PyTreeDef,
    register_dataclass,
    register_pytree_node,
    tree_flatten,
    tree_leaves,
    tree_map,
    tree_structure,
    tree_unflatten,
)

__all__ = [
    "PyTreeDef", "register_dataclass", "register_pytree_node", "tree_flatten",
    "tree_leaves", "tree_map", "tree_structure", "tree_unflatten",
]
