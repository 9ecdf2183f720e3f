"""``fg.custom_vjp`` functions called with Tensors.

The function, its ``fwd`` and its ``bwd`` see Tensors where the caller passed Tensors
(so they may use Tensor methods), while the custom rule works on their values:

* Tensors holding traced values (inside ``fg.nn.functional_call``, or
  ``fg.grad(lambda x: f(fg.tensor(x)))``) pass their values to the rule, so the
  transform that owns them uses it.
* Eager Tensors that require grad run the function as one Tensor op, staged afresh on
  each call (the function may close over values that change) with the same vjp
  machinery as every op, which uses the rule. Its node is named ``<function>Backward``
  (PyTorch names a custom ``autograd.Function``'s node after its class). Without
  gradients the function just runs on the Tensors.

>>> import fgrad as fg
>>> @fg.custom_vjp
... def clip_gradient(x):
...     return x
>>> clip_gradient.defvjp(lambda x: (x, None), lambda res, g: (g.clamp(-1, 1),))
>>> x = fg.tensor([2.0], requires_grad=True)
>>> (5.0 * clip_gradient(x)).sum().backward()
>>> x.grad
tensor([1.])
"""

from __future__ import annotations

import numpy as np

from fgrad._src import custom_derivatives
from fgrad._src.core import Tracer
from fgrad._src.tensor import grad_mode
from fgrad._src.tensor.dispatch import Op, apply
from fgrad._src.tensor.tensor import Tensor
from fgrad._src.tree import tree_flatten, tree_map, tree_unflatten


def call(fn, args):
    """``fn(*args)`` (a ``custom_vjp``) where some leaf of ``args`` is a Tensor."""
    leaves, in_tree = tree_flatten(args)
    was_tensor = [isinstance(x, Tensor) for x in leaves]
    values = [x._value if t else x for x, t in zip(leaves, was_tensor)]
    if any(isinstance(v, Tracer) for v in values):
        return tree_map(_as_tensor, _seen_as_tensors(fn, was_tensor)(
            *tree_unflatten(in_tree, values)))
    if not (grad_mode.state.enabled and any(t and x._requires_grad
                                            for x, t in zip(leaves, was_tensor))):
        return fn.fun(*args)  # nothing to differentiate: eager Tensor code
    positions = [i for i, t in enumerate(was_tensor) if t]
    view = _seen_as_tensors(fn, was_tensor)
    out_tree: dict = {}

    def flat(*tensor_values):
        full = list(values)
        for i, v in zip(positions, tensor_values):
            full[i] = v
        outs, out_tree["tree"] = tree_flatten(view(*tree_unflatten(in_tree, full)))
        return tuple(outs)

    outs = apply(Op(f"{fn.__name__}Backward", flat, cache=False),
                 tuple(leaves[i] for i in positions))
    return tree_unflatten(out_tree["tree"], list(outs) if isinstance(outs, tuple) else [outs])


def _seen_as_tensors(fn, was_tensor):
    """A custom_vjp doing what ``fn`` does on values, whose ``fun``, ``fwd`` and ``bwd``
    get the arguments that were Tensors (and the residuals that were, and the
    cotangents) as Tensors holding those values; their Tensor results are unwrapped."""
    residual_tensors: dict = {}

    def as_called(args):
        leaves, tree = tree_flatten(args)
        return tree_unflatten(tree, [Tensor._wrap(v) if t else v
                                     for v, t in zip(leaves, was_tensor)])

    def fun(*args):
        return _values(fn.fun(*as_called(args)))

    def fwd(*args):
        result = fn.fwd(*as_called(args))
        if not (isinstance(result, tuple) and len(result) == 2):
            return result  # custom_vjp names the mistake
        out, residuals = result
        leaves, tree = tree_flatten(residuals)
        residual_tensors["mask"] = [isinstance(r, Tensor) for r in leaves]
        return _values(out), tree_unflatten(tree, [r._value if isinstance(r, Tensor) else r
                                                   for r in leaves])

    def bwd(residuals, ct):
        leaves, tree = tree_flatten(residuals)
        residuals = tree_unflatten(tree, [Tensor._wrap(r) if t else r for r, t in
                                          zip(leaves, residual_tensors["mask"])])
        cts = fn.bwd(residuals, tree_map(_as_tensor, ct))
        return tuple(_values(c) for c in cts) if isinstance(cts, tuple) else cts

    view = custom_derivatives.custom_vjp(fun)
    view.defvjp(fwd, bwd)
    view.__name__ = fn.__name__
    return view


def _values(tree):
    return tree_map(lambda x: x._value if isinstance(x, Tensor) else x, tree)


def _as_tensor(x):
    return x if isinstance(x, Tensor) else Tensor._wrap(x if isinstance(x, (Tracer, np.ndarray))
                                                         else np.asarray(x))


custom_derivatives.tensor_call = call
custom_derivatives.tensor_type = Tensor
