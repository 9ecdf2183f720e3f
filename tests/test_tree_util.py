"""``fg.tree_util``: flatten / unflatten / map / leaves over tuples, lists, dicts
(sorted keys), None, namedtuples and user-registered classes, checked against a
small independent reference flattener.
"""

from __future__ import annotations

import collections
import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fgrad as fg
import fgrad.numpy as fnp
from fgrad.tree_util import (
    PyTreeDef,
    register_dataclass,
    register_pytree_node,
    tree_flatten,
    tree_leaves,
    tree_map,
    tree_structure,
    tree_unflatten,
)

Pair = collections.namedtuple("Pair", "first second")


@dataclasses.dataclass
class Params:
    """A user class registered by hand: ``w`` and ``b`` are children, ``name`` is static."""

    w: object
    b: object
    name: str = "layer"


register_pytree_node(
    Params,
    lambda p: ((p.w, p.b), p.name),
    lambda name, children: Params(*children, name=name),
)


@register_dataclass
@dataclasses.dataclass
class Point:
    x: object
    y: object


# --------------------------------------------------------------------------- reference


def ref_leaves(tree):
    """An independent reference flattener for the node types above."""
    if tree is None:
        return []
    if isinstance(tree, (tuple, list)):  # includes namedtuples
        return [leaf for child in tree for leaf in ref_leaves(child)]
    if isinstance(tree, dict):
        return [leaf for key in sorted(tree) for leaf in ref_leaves(tree[key])]
    if isinstance(tree, Params):
        return ref_leaves(tree.w) + ref_leaves(tree.b)
    if isinstance(tree, Point):
        return ref_leaves(tree.x) + ref_leaves(tree.y)
    return [tree]


def ref_map(f, tree):
    if tree is None:
        return None
    if isinstance(tree, Pair):
        return Pair(*(ref_map(f, c) for c in tree))
    if isinstance(tree, tuple):
        return tuple(ref_map(f, c) for c in tree)
    if isinstance(tree, list):
        return [ref_map(f, c) for c in tree]
    if isinstance(tree, dict):
        return {k: ref_map(f, v) for k, v in tree.items()}
    if isinstance(tree, Params):
        return Params(ref_map(f, tree.w), ref_map(f, tree.b), tree.name)
    if isinstance(tree, Point):
        return Point(ref_map(f, tree.x), ref_map(f, tree.y))
    return f(tree)


def same_tree(a, b):
    """Structural equality that also checks container types exactly (list != tuple)."""
    if isinstance(a, (np.ndarray, np.generic)):  # a 0-d array and a NumPy scalar are alike
        return (isinstance(b, (np.ndarray, np.generic)) and a.dtype == b.dtype
                and a.shape == b.shape and np.array_equal(a, b))
    if type(a) is not type(b):
        return False
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same_tree(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same_tree(a[k], b[k]) for k in a)
    if isinstance(a, Params):
        return a.name == b.name and same_tree(a.w, b.w) and same_tree(a.b, b.b)
    if isinstance(a, Point):
        return same_tree(a.x, b.x) and same_tree(a.y, b.y)
    return a == b


# --------------------------------------------------------------------------- strategies

leaves = st.one_of(
    st.integers(-5, 5),
    st.floats(-2, 2),
    st.integers(0, 3).map(lambda n: np.arange(n, dtype=np.float32)),
)


def _nodes(children):
    return st.one_of(
        st.lists(children, max_size=3),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(st.text("abcxyz", min_size=1, max_size=2), children, max_size=3),
        st.builds(Pair, children, children),
        st.builds(Params, children, children, st.sampled_from(["a", "b"])),
        st.builds(Point, children, children),
        st.just(None),
    )


trees = st.recursive(leaves | st.none(), _nodes, max_leaves=10)


def _sort(tree):
    """``tree`` with every dict's keys in sorted order (how unflatten rebuilds dicts)."""
    if isinstance(tree, dict):
        return {k: _sort(tree[k]) for k in sorted(tree)}
    if isinstance(tree, Pair):
        return Pair(*(_sort(c) for c in tree))
    if isinstance(tree, (tuple, list)):
        return type(tree)(_sort(c) for c in tree)
    if isinstance(tree, Params):
        return Params(_sort(tree.w), _sort(tree.b), tree.name)
    if isinstance(tree, Point):
        return Point(_sort(tree.x), _sort(tree.y))
    return tree


# --------------------------------------------------------------------------- properties


@settings(max_examples=100)
@given(trees)
def test_flatten_matches_reference_and_round_trips(tree):
    leaves_, treedef = tree_flatten(tree)
    expected = ref_leaves(tree)
    assert len(leaves_) == len(expected) == treedef.num_leaves
    assert all(a is b for a, b in zip(leaves_, expected))  # the very same objects, in order
    again = tree_leaves(tree)
    assert len(again) == len(leaves_) and all(a is b for a, b in zip(again, leaves_))
    assert same_tree(tree_unflatten(treedef, leaves_), _sort(tree))
    assert tree_structure(tree) == treedef and hash(tree_structure(tree)) == hash(treedef)


@settings(max_examples=100)
@given(trees)
def test_tree_map_matches_reference(tree):
    def f(x):
        return ("seen", np.asarray(x).sum().item())

    assert same_tree(tree_map(f, tree), _sort(ref_map(f, tree)))
    # Multi-tree map: the second tree's leaves line up with the first's.
    doubled = tree_map(lambda x: x, tree)
    pairs = tree_map(lambda a, b: (a is not None, b is not None), tree, doubled)
    assert tree_leaves(pairs, is_leaf=lambda x: isinstance(x, tuple) and len(x) == 2
                       and isinstance(x[0], bool)) == [(True, True)] * len(ref_leaves(tree))


@settings(max_examples=60)
@given(trees, trees)
def test_treedef_equality_is_structural(a, b):
    same_structure = tree_structure(a) == tree_structure(b)
    leaves_a, def_a = tree_flatten(a)
    if same_structure:
        assert hash(tree_structure(a)) == hash(tree_structure(b))
        # Leaves of one fit the other.
        tree_unflatten(tree_structure(b), leaves_a)
    relabelled = tree_unflatten(def_a, [0] * len(leaves_a))
    assert tree_structure(relabelled) == def_a


# --------------------------------------------------------------------------- specific cases


def test_dict_keys_are_visited_in_sorted_order():
    tree = {"b": 1, "a": 2, "c": {"z": 3, "y": 4}}
    leaves_, treedef = tree_flatten(tree)
    assert leaves_ == [2, 1, 4, 3]
    rebuilt = tree_unflatten(treedef, leaves_)
    assert rebuilt == tree and list(rebuilt) == ["a", "b", "c"]
    assert tree_flatten({"a": 1, "b": 2})[1] == tree_flatten({"b": 0, "a": 0})[1]
    assert tree_structure({"a": 1}) != tree_structure({"b": 1})


def test_none_is_an_empty_node():
    assert tree_leaves(None) == []
    assert tree_leaves([None, 1, (None,)]) == [1]
    assert tree_map(lambda x: x + 1, (None, 1)) == (None, 2)
    leaves_, treedef = tree_flatten(None)
    assert tree_unflatten(treedef, []) is None
    assert tree_structure(None) != tree_structure(())


def test_containers_of_different_types_differ():
    assert tree_structure((1, 2)) != tree_structure([1, 2])
    assert tree_structure(Pair(1, 2)) != tree_structure((1, 2))
    assert tree_structure(Point(1, 2)) != tree_structure(Pair(1, 2))
    with pytest.raises(ValueError, match="structure"):
        tree_map(lambda a, b: a, (1, 2), [1, 2])


def test_namedtuple_round_trip():
    tree = Pair(first=np.ones(2), second={"k": (3, None)})
    leaves_, treedef = tree_flatten(tree)
    assert len(leaves_) == 2
    rebuilt = tree_unflatten(treedef, leaves_)
    assert type(rebuilt) is Pair and rebuilt.second == {"k": (3, None)}
    assert tree_map(lambda x: 2 * x, Pair(1, 2)) == Pair(2, 4)


def test_registered_user_class_keeps_static_data():
    p = Params(w=np.ones((2, 2)), b=[1.0, 2.0], name="dense")
    leaves_, treedef = tree_flatten(p)
    assert [np.shape(x) for x in leaves_] == [(2, 2), (), ()]
    q = tree_unflatten(treedef, [10, 20, 30])
    assert q == Params(w=10, b=[20, 30], name="dense")
    # The static part is part of the structure.
    assert tree_structure(Params(1, 2, "a")) != tree_structure(Params(1, 2, "b"))


def test_registered_dataclass():
    assert tree_leaves(Point(x=1, y=(2, 3))) == [1, 2, 3]
    assert tree_map(str, Point(1, 2)) == Point("1", "2")


def test_is_leaf_stops_descent():
    tree = {"a": (1, 2), "b": [3, (4, 5)]}
    assert tree_leaves(tree, is_leaf=lambda x: isinstance(x, tuple)) == [(1, 2), 3, (4, 5)]
    out = tree_map(lambda x: len(x) if isinstance(x, tuple) else -x, tree,
                   is_leaf=lambda x: isinstance(x, tuple))
    assert out == {"a": 2, "b": [-3, 2]}


def test_unflatten_with_wrong_leaf_count():
    _, treedef = tree_flatten((1, [2, 3]))
    with pytest.raises(ValueError, match="3 leaves"):
        tree_unflatten(treedef, [1, 2])


def test_unsortable_dict_keys():
    with pytest.raises(TypeError, match="sortable"):
        tree_flatten({1: "a", "b": 2})


def test_ordered_and_default_dicts():
    od = collections.OrderedDict([("b", 1), ("a", 2)])
    leaves_, treedef = tree_flatten(od)
    assert leaves_ == [1, 2]  # insertion order, as in JAX
    rebuilt = tree_unflatten(treedef, leaves_)
    assert type(rebuilt) is collections.OrderedDict and list(rebuilt) == ["b", "a"]
    dd = collections.defaultdict(list, {"y": 1, "x": 2})
    leaves_, treedef = tree_flatten(dd)
    assert leaves_ == [2, 1]
    rebuilt = tree_unflatten(treedef, leaves_)
    assert type(rebuilt) is collections.defaultdict and rebuilt.default_factory is list
    assert rebuilt == dd


def test_pytree_treedef_repr():
    assert repr(tree_structure((1, [2], None))) == "PyTreeDef((*, [*], None))"
    assert repr(tree_structure({"b": 1, "a": (2,)})) == "PyTreeDef({'a': (*,), 'b': *})"
    assert repr(tree_structure(Pair(1, [None]))) == "PyTreeDef(Pair(*, [None]))"
    assert repr(tree_structure(1)) == "PyTreeDef(*)"
    assert isinstance(tree_structure(1), PyTreeDef)


# --------------------------------------------------------------------------- with transforms


def test_transforms_take_and_return_pytrees():
    params = {"w": np.array([1.0, 2.0]), "layers": [Pair(np.array(3.0), None)],
              "p": Params(np.array([0.5]), np.array(1.5), "x")}

    def loss(tree):
        return (fnp.sum(tree["w"] ** 2) + tree["layers"][0].first * tree["p"].b
                + fnp.sum(tree["p"].w))

    grads = fg.grad(loss)(params)
    expected = {"w": np.array([2.0, 4.0]), "layers": [Pair(np.array(1.5), None)],
                "p": Params(np.array([1.0]), np.array(3.0), "x")}
    assert same_tree(grads, _sort(expected))  # dicts come back with sorted keys
    out = fg.jit(lambda t: tree_map(lambda x: x * 2, t))(params)
    assert same_tree(out, tree_map(lambda x: x * 2, params))


def test_bad_treedefs_and_cyclic_trees_are_clear_errors():
    with pytest.raises(TypeError, match="treedef must be a PyTreeDef.*got str"):
        fg.tree_util.tree_unflatten("x", [1])  # an AttributeError from inside before
    cyclic = []
    cyclic.append(cyclic)
    for call in (lambda: tree_flatten(cyclic), lambda: fg.jit(lambda t: 1.0)(cyclic)):
        with pytest.raises(ValueError, match="contains itself"):  # a RecursionError before
            call()


def test_register_dataclass_with_meta_fields_keeps_them_in_the_structure():
    @dataclasses.dataclass
    class Named:
        w: np.ndarray
        b: np.ndarray
        name: str = "x"

    register_dataclass(Named, data_fields=["w", "b"], meta_fields=["name"])
    leaves, tree = tree_flatten(Named(np.ones(2), np.zeros(2), "layer"))
    assert len(leaves) == 2 and tree_unflatten(tree, leaves).name == "layer"
    g = fg.grad(lambda d: fnp.sum(d.w * d.b))(Named(np.ones(2), np.full(2, 3.0), "hi"))
    np.testing.assert_array_equal(g.w, [3.0, 3.0])
    assert g.name == "hi"

    @dataclasses.dataclass
    class Other:
        a: float

    with pytest.raises(ValueError, match="must name each of"):
        register_dataclass(Other, data_fields=["a", "zz"], meta_fields=[])
    with pytest.raises(TypeError, match="both data_fields and meta_fields"):
        register_dataclass(Other, data_fields=["a"])


def test_a_type_is_registered_once():
    # A second registration of tuple silently changed how every tuple flattened.
    with pytest.raises(ValueError, match="Duplicate custom PyTreeDef"):
        fg.tree_util.register_pytree_node(tuple, lambda t: (list(t)[::-1], None),
                                          lambda aux, children: tuple(children))
    assert fg.tree_util.tree_leaves((1, 2)) == [1, 2]


def test_custom_nodes_with_a_bad_flatten_or_unhashable_aux_get_clear_errors():
    class NotAPair:
        def __init__(self, x):
            self.x = x

    class ListAux:
        def __init__(self, x):
            self.x = x

    fg.tree_util.register_pytree_node(NotAPair, lambda node: 5,
                                      lambda aux, children: NotAPair(*children))
    fg.tree_util.register_pytree_node(ListAux, lambda node: ([node.x], [1, 2]),
                                      lambda aux, children: ListAux(*children))
    with pytest.raises(TypeError, match="must return a pair"):  # "cannot unpack ... int"
        tree_flatten(NotAPair(1.0))
    with pytest.raises(TypeError, match="aux data of a ListAux pytree node must be hashable"):
        fg.jit(lambda node: node.x * 2)(ListAux(np.ones(2)))  # "unhashable type: 'list'"


def test_register_dataclass_refuses_fields_the_constructor_does_not_take():
    @dataclasses.dataclass
    class WithDerived:
        x: float
        cached: int = dataclasses.field(init=False, default=7)

    with pytest.raises(ValueError, match="init=False"):  # unflattening reset it to 7
        register_dataclass(WithDerived)
