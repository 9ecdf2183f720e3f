"""PyTorch's names for graph nodes (``grad_fn``), checked against PyTorch 2.13.

Each name becomes a ``Node`` subclass, so ``type(y.grad_fn).__name__`` is
``MulBackward0`` and the node prints as ``<MulBackward0 object at 0x...>``.
Some names depend on the call: ``x.sum()`` is ``SumBackward0`` and
``x.sum(0)`` is ``SumBackward1``; ``torch.matmul`` names the op it
dispatches to (``MmBackward0``, ``MvBackward0``, ``DotBackward0``, and
``SqueezeBackward4`` for vector @ matrix); indexing names the last step
PyTorch takes (``SelectBackward0``, ``SliceBackward0``, ``UnsqueezeBackward0``,
``IndexBackward0`` for tensor indices, ``AliasBackward0`` for ``x[...]``).

Under ``create_graph=True`` the backward of a node is recorded as one node
named ``<Name>BackwardBackward0`` (``TanhBackwardBackward0`` as in PyTorch;
where PyTorch records the individual ops of a derivative formula, fgrad
records the whole formula as one node).
"""

from __future__ import annotations

from fgrad._src.tensor.graph import Node

_classes: dict = {}


def node_class(name: str) -> type:
    """The ``Node`` subclass called ``name`` (created once)."""
    cls = _classes.get(name)
    if cls is None:
        cls = _classes[name] = type(name, (Node,), {"__slots__": ()})
        cls.__module__ = "fgrad.autograd.graph"
    return cls


def double_backward_name(name: str) -> str:
    """``MulBackward0`` -> ``MulBackwardBackward0``.

    >>> double_backward_name("TanhBackward0")
    'TanhBackwardBackward0'
    """
    stem = name.rstrip("0123456789")
    return f"{stem}Backward0"


def matmul_name(ndim_a: int, ndim_b: int) -> str:
    """The node PyTorch's ``matmul`` leaves for operands of these ranks.

    >>> matmul_name(2, 2), matmul_name(2, 1), matmul_name(1, 1), matmul_name(1, 2)
    ('MmBackward0', 'MvBackward0', 'DotBackward0', 'SqueezeBackward4')
    """
    if ndim_a == 1 and ndim_b == 1:
        return "DotBackward0"
    if ndim_a == 2 and ndim_b == 1:
        return "MvBackward0"
    if ndim_a == 1 and ndim_b == 2:
        return "SqueezeBackward4"
    if ndim_a == 2 and ndim_b == 2:
        return "MmBackward0"
    if ndim_a == 2:
        return "CloneBackward0"  # matrix @ batch: PyTorch folds through a transpose + clone
    return "UnsafeViewBackward0"


def index_name(template: tuple) -> str:
    """The node PyTorch leaves for ``x[index]``; ``template`` is the parsed index
    (ints, ``None``, ``...``, ``("slice", ...)`` and ``("array", k)`` items).

    >>> index_name((0,)), index_name((("slice", 1, None, None),)), index_name((None,))
    ('SelectBackward0', 'SliceBackward0', 'UnsqueezeBackward0')
    """
    name = "AliasBackward0"
    for item in template:
        if isinstance(item, tuple) and item[0] == "array":
            return "IndexBackward0"
        if item is None:
            name = "UnsqueezeBackward0"
        elif isinstance(item, tuple):
            name = "SliceBackward0"
        elif item is not Ellipsis:
            name = "SelectBackward0"
    return name


def reduction_name(stem: str, dim) -> str:
    """``SumBackward0`` for a full reduction, ``SumBackward1`` with ``dim``."""
    return f"{stem}Backward{0 if dim is None else 1}"
