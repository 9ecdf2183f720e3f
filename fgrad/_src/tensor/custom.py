"""``fg.custom_vjp`` functions called with Tensors.

Eager Tensors run the function as one Tensor op: its programs are staged with the
same vjp machinery as every op, which uses the custom rule, and the op records one
node named ``<function>Backward`` (PyTorch names a custom ``autograd.Function``'s node
after its class). Tensors holding traced values (inside ``fg.nn.functional_call`` or
``fg.grad(lambda x: f(fg.tensor(x)))``) pass their values to the function, so the
transform that owns them sees the custom rule; the results come back as Tensors.

>>> import fgrad as fg
>>> @fg.custom_vjp
... def clip_gradient(x):
...     return x
>>> clip_gradient.defvjp(lambda x: (x, None), lambda res, g: (fg.numpy.clip(g, -1, 1),))
>>> x = fg.tensor([2.0], requires_grad=True)
>>> (5.0 * clip_gradient(x)).sum().backward()
>>> x.grad
tensor([1.])
"""

from __future__ import annotations

import numpy as np

from fgrad._src import custom_derivatives
from fgrad._src.core import Tracer
from fgrad._src.tensor.dispatch import Op, apply
from fgrad._src.tensor.tensor import Tensor
from fgrad._src.tree import tree_flatten, tree_map, tree_unflatten


def call(fn, args):
    """``fn(*args)`` (a ``custom_vjp``) where some leaf of ``args`` is a Tensor."""
    leaves, in_tree = tree_flatten(args)
    if any(isinstance(x, Tensor) and isinstance(x._value, Tracer) for x in leaves):
        values = [x._value if isinstance(x, Tensor) else x for x in leaves]
        out = fn(*tree_unflatten(in_tree, values))
        return tree_map(_as_tensor, out)
    operands = tuple(x if isinstance(x, (Tensor, bool, int, float)) else
                     Tensor._wrap(np.asarray(x)) for x in leaves)
    op, out_tree = _op(fn, in_tree)
    outs = apply(op, operands)
    return tree_unflatten(out_tree["tree"], list(outs) if isinstance(outs, tuple) else [outs])


def _as_tensor(x):
    return x if isinstance(x, Tensor) else Tensor._wrap(x if isinstance(x, (Tracer, np.ndarray))
                                                         else np.asarray(x))


def _op(fn, in_tree):
    """The Tensor op running ``fn`` on flat leaves of structure ``in_tree`` (one per
    function and input structure; ``out_tree`` is filled when the op is first staged)."""
    ops = fn.__dict__.setdefault("_tensor_ops", {})
    found = ops.get(in_tree)
    if found is None:
        out_tree: dict = {}

        def flat(*leaves):
            outs, out_tree["tree"] = tree_flatten(fn(*tree_unflatten(in_tree, list(leaves))))
            return tuple(outs)

        found = ops[in_tree] = (Op(f"{fn.__name__}Backward", flat), out_tree)
    return found


custom_derivatives.tensor_call = call
custom_derivatives.tensor_type = Tensor
