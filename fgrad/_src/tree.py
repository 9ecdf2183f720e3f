"""Pytrees: nested containers (tuple, list, dict, None, namedtuple, registered classes).

``tree_flatten`` turns a pytree into its leaves and a ``PyTreeDef``;
``tree_unflatten`` rebuilds it. Dict keys are visited in sorted order.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import NamedTuple


class _NodeType(NamedTuple):
    to_iterable: Callable
    from_iterable: Callable


_registry: dict = {}


def register_pytree_node(nodetype: type, flatten: Callable, unflatten: Callable):
    """Teach fgrad to look inside ``nodetype``.

    ``flatten(x) -> (children, aux)``; ``unflatten(aux, children) -> x``.

    >>> import dataclasses
    >>> @dataclasses.dataclass
    ... class Point:
    ...     x: float
    ...     y: float
    >>> register_pytree_node(Point, lambda p: ((p.x, p.y), None),
    ...                      lambda aux, ch: Point(*ch))
    >>> tree_leaves(Point(1.0, 2.0))
    [1.0, 2.0]

    A type is registered once: a second registration (which would change how every
    value of the type flattens, built-in containers included) is a ValueError.
    """
    if nodetype in _registry:
        raise ValueError(f"Duplicate custom PyTreeDef type registration for {nodetype!r}: "
                         "it is registered already (once per type and process)")
    _registry[nodetype] = _NodeType(flatten, unflatten)


def register_dataclass(cls, data_fields=None, meta_fields=None):
    """Register a dataclass as a pytree node: its ``data_fields`` are children and its
    ``meta_fields`` (hashable, static: e.g. names, flags) are kept in the tree
    structure, as JAX's; give both or neither (then every field is a child).

    >>> import dataclasses
    >>> @register_dataclass
    ... @dataclasses.dataclass
    ... class Pair:
    ...     a: float
    ...     b: float
    >>> tree_leaves(Pair(1.0, 2.0))
    [1.0, 2.0]
    """
    import dataclasses

    not_init = [f.name for f in dataclasses.fields(cls) if not f.init]
    if not_init:  # NB: unflattening calls the constructor, which would reset them
        raise ValueError(f"register_dataclass: {cls.__name__}'s fields {not_init} are not "
                         "constructor arguments (init=False), so unflattening would lose "
                         "them; register the class with register_pytree_node instead")
    fields = [f.name for f in dataclasses.fields(cls)]
    if (data_fields is None) != (meta_fields is None):
        raise TypeError("register_dataclass: give both data_fields and meta_fields, or "
                        "neither (then every field is data)")
    data = fields if data_fields is None else list(data_fields)
    meta = [] if meta_fields is None else list(meta_fields)
    if sorted(data + meta) != sorted(fields):
        raise ValueError(f"register_dataclass: data_fields {data} and meta_fields {meta} "
                         f"must name each of {cls.__name__}'s fields {fields} once")
    register_pytree_node(
        cls,
        lambda obj: ([getattr(obj, n) for n in data], tuple(getattr(obj, n) for n in meta)),
        lambda aux, children: cls(**dict(zip(data, children)), **dict(zip(meta, aux))),
    )
    return cls


def _sorted_keys(d: dict):
    try:
        return sorted(d)
    except TypeError as e:
        raise TypeError(f"pytree dict keys must be sortable, got keys {list(d)!r}") from e


register_pytree_node(tuple, lambda t: (t, None), lambda _, children: tuple(children))
register_pytree_node(list, lambda lst: (lst, None), lambda _, children: list(children))
register_pytree_node(
    dict,
    lambda d: ([d[k] for k in _sorted_keys(d)], tuple(_sorted_keys(d))),
    lambda keys, children: dict(zip(keys, children)),
)
register_pytree_node(type(None), lambda _: ((), None), lambda _, __: None)
# As in JAX: an OrderedDict keeps its insertion order; a defaultdict sorts its keys
# and remembers its default_factory.
register_pytree_node(
    collections.OrderedDict,
    lambda d: (list(d.values()), tuple(d)),
    lambda keys, children: collections.OrderedDict(zip(keys, children)),
)
register_pytree_node(
    collections.defaultdict,
    lambda d: ([d[k] for k in _sorted_keys(d)], (d.default_factory, tuple(_sorted_keys(d)))),
    lambda aux, children: collections.defaultdict(aux[0], zip(aux[1], children)),
)


def _node_type(x):
    t = type(x)
    if t in _registry:
        return t, _registry[t]
    if isinstance(x, tuple) and hasattr(x, "_fields"):  # namedtuple
        return t, _NodeType(lambda nt: (tuple(nt), None), lambda _, ch, t=t: t(*ch))
    return t, None


class PyTreeDef:
    """The structure of a pytree, without its leaves. Hashable and comparable."""

    __slots__ = ("node_type", "aux", "children", "num_leaves")

    def __init__(self, node_type, aux, children):
        self.node_type = node_type
        self.aux = aux
        self.children = tuple(children)
        self.num_leaves = (
            1 if node_type is None else sum(c.num_leaves for c in self.children)
        )

    def _key(self):
        return (self.node_type, self.aux, self.children)

    def __eq__(self, other):
        return isinstance(other, PyTreeDef) and self._key() == other._key()

    def __hash__(self):
        try:
            return hash(self._key())
        except TypeError:
            node = self._unhashable_node()
            if node is None:
                raise
            raise TypeError(
                f"the aux data of a {node.node_type.__name__} pytree node must be hashable "
                f"(it is part of the tree structure, e.g. a jit cache key), got "
                f"{type(node.aux).__name__} {node.aux!r:.60}; return a tuple instead of a "
                "list from its flatten function") from None

    def _unhashable_node(self):
        try:
            hash(self.aux)
        except TypeError:
            return self
        for child in self.children:
            found = child._unhashable_node()
            if found is not None:
                return found
        return None

    def __repr__(self):
        return f"PyTreeDef({self._body()})"

    def _body(self) -> str:
        """JAX's notation: ``*`` leaves, ``(*,)`` tuples, ``[*]`` lists, ``{'a': *}`` dicts."""
        if self.node_type is None:
            return "*"
        if self.node_type is type(None):
            return "None"
        parts = [c._body() for c in self.children]
        if self.node_type is dict:
            return "{" + ", ".join(f"{k!r}: {p}" for k, p in zip(self.aux, parts)) + "}"
        if self.node_type is tuple:
            return f"({parts[0]},)" if len(parts) == 1 else "(" + ", ".join(parts) + ")"
        if self.node_type is list:
            return "[" + ", ".join(parts) + "]"
        return f"{self.node_type.__name__}(" + ", ".join(parts) + ")"


LEAF = PyTreeDef(None, None, ())


def tree_flatten(tree, is_leaf: Callable | None = None):
    """Return ``(leaves, treedef)``.

    >>> tree_flatten({"b": 2, "a": (1, None)})
    ([1, 2], PyTreeDef({'a': (*, None), 'b': *}))
    """
    leaves: list = []
    try:
        treedef = _flatten(tree, leaves, is_leaf)
    except RecursionError:
        raise ValueError("tree_flatten: the pytree contains itself (a list, tuple or dict "
                         "that is its own element) or is nested too deeply to flatten"
                         ) from None
    return leaves, treedef


def _flatten(tree, leaves, is_leaf):
    if is_leaf is not None and is_leaf(tree):
        leaves.append(tree)
        return LEAF
    node_type, handler = _node_type(tree)
    if handler is None:
        leaves.append(tree)
        return LEAF
    flat = handler.to_iterable(tree)
    try:
        children, aux = flat
    except (TypeError, ValueError):
        raise TypeError(f"the flatten function registered for {node_type.__name__} must "
                        f"return a pair (children, aux_data), got {type(flat).__name__} "
                        f"{flat!r:.60}") from None
    return PyTreeDef(node_type, aux, [_flatten(c, leaves, is_leaf) for c in children])


def tree_unflatten(treedef: PyTreeDef, leaves):
    """Rebuild a pytree of structure ``treedef`` from ``leaves``.

    >>> leaves, treedef = tree_flatten((1, [2, 3]))
    >>> tree_unflatten(treedef, [10, 20, 30])
    (10, [20, 30])
    """
    if not isinstance(treedef, PyTreeDef):
        raise TypeError(f"tree_unflatten: treedef must be a PyTreeDef (from tree_flatten or "
                        f"tree_structure), got {type(treedef).__name__} {treedef!r:.40}")
    leaves = list(leaves)
    if len(leaves) != treedef.num_leaves:
        raise ValueError(
            f"tree_unflatten: structure {treedef} has {treedef.num_leaves} leaves, "
            f"got {len(leaves)}"
        )
    it = iter(leaves)
    return _unflatten(treedef, it)


def _unflatten(treedef, it):
    if treedef.node_type is None:
        return next(it)
    children = [_unflatten(c, it) for c in treedef.children]
    if treedef.node_type in _registry:
        return _registry[treedef.node_type].from_iterable(treedef.aux, children)
    return treedef.node_type(*children)  # namedtuple


def tree_leaves(tree, is_leaf: Callable | None = None) -> list:
    """The leaves of ``tree`` in flattening order.

    >>> tree_leaves([1, {"x": 2}])
    [1, 2]
    """
    return tree_flatten(tree, is_leaf)[0]


def tree_structure(tree, is_leaf: Callable | None = None) -> PyTreeDef:
    """The ``PyTreeDef`` of ``tree``.

    >>> tree_structure((1, 2))
    PyTreeDef((*, *))
    """
    return tree_flatten(tree, is_leaf)[1]


def tree_map(f: Callable, tree, *rest, is_leaf: Callable | None = None):
    """Apply ``f`` to every leaf (and the matching leaves of ``rest``).

    >>> tree_map(lambda x: x * 2, {"a": 1, "b": (2, 3)})
    {'a': 2, 'b': (4, 6)}
    """
    leaves, treedef = tree_flatten(tree, is_leaf)
    all_leaves = [leaves]
    for other in rest:
        other_leaves, other_def = tree_flatten(other, is_leaf)
        if other_def != treedef:
            raise ValueError(f"tree_map: structures differ: {treedef} vs {other_def}")
        all_leaves.append(other_leaves)
    return tree_unflatten(treedef, [f(*xs) for xs in zip(*all_leaves)])


