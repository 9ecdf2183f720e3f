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
from fgrad._src.nn.tracing import as_tensor
from fgrad._src.tensor import grad_mode
from fgrad._src.tensor.dispatch import Op, apply
from fgrad._src.tensor.tensor import Tensor
from fgrad._src.tree import tree_flatten, tree_map, tree_unflatten


def call(fn, args):
    """``fn(*args)`` (a ``custom_vjp``) where some leaf of ``args`` is a Tensor."""
    leaves, in_tree = tree_flatten(args)
    was_tensor = [isinstance(x, Tensor) for x in leaves]
    values = [x._value if t else x for x, t in zip(leaves, was_tensor)]
    # NB: only Tensors and traced values are the rule's inputs; Python numbers, NumPy
    # arrays and other objects reach fun/fwd/bwd as they are (ints stay ints), as they
    # would in a torch.autograd.Function.
    dynamic = [i for i, (v, t) in enumerate(zip(values, was_tensor))
               if t or isinstance(v, Tracer)]
    traced = any(isinstance(values[i], Tracer) for i in dynamic)
    if not traced and not (grad_mode.state.enabled and any(
            t and x._requires_grad for x, t in zip(leaves, was_tensor))):
        return fn.fun(*args)  # nothing to differentiate: eager Tensor code
    view = _seenas_tensors(fn, in_tree, values, was_tensor, dynamic)
    if traced:
        return tree_map(as_tensor, view(*[values[i] for i in dynamic]))
    out_tree: dict = {}

    def flat(*dynamic_values):
        outs, out_tree["tree"] = tree_flatten(view(*dynamic_values))
        return tuple(outs)

    outs = apply(Op(f"{fn.__name__}Backward", flat, cache=False),
                 tuple(leaves[i] for i in dynamic))
    return tree_unflatten(out_tree["tree"], list(outs) if isinstance(outs, tuple) else [outs])


def _seenas_tensors(fn, in_tree, values, was_tensor, dynamic):
    """A custom_vjp of the ``dynamic`` leaves doing what ``fn`` does, whose ``fun``,
    ``fwd`` and ``bwd`` get the whole arguments back, with Tensors where the caller
    passed Tensors (holding the traced values), the other leaves as given, and the
    residuals and cotangents as Tensors; their Tensor results are unwrapped."""
    saved: dict = {}

    def arguments(dynamic_values):
        full = list(values)
        for i, v in zip(dynamic, dynamic_values):
            full[i] = Tensor._wrap(v) if was_tensor[i] else v
        return tree_unflatten(in_tree, full)

    def fun(*dynamic_values):
        return _values(fn.fun(*arguments(dynamic_values)))

    def fwd(*dynamic_values):
        result = fn.fwd(*arguments(dynamic_values))
        if not (isinstance(result, tuple) and len(result) == 2):
            return result  # custom_vjp names the mistake
        out, residuals = result
        # NB: array residuals (Tensors among them) go through the rule; anything else
        # (a shape, an index list, a Python number) is kept here as it is
        leaves, saved["tree"] = tree_flatten(residuals)
        saved["leaves"] = leaves
        saved["arrays"] = [i for i, r in enumerate(leaves) if isinstance(r, _ARRAYS)]
        return _values(out), [_values(leaves[i]) for i in saved["arrays"]]

    def bwd(arrays, ct):
        leaves = list(saved["leaves"])
        for i, r in zip(saved["arrays"], arrays):
            leaves[i] = Tensor._wrap(r) if isinstance(leaves[i], Tensor) else r
        residuals = tree_unflatten(saved["tree"], leaves)
        result = fn.bwd(residuals, tree_map(as_tensor, ct))
        per_leaf = custom_derivatives.cotangent_leaves(fn.__name__, in_tree, result)
        return tuple(_values(per_leaf[i]) for i in dynamic)

    view = custom_derivatives.custom_vjp(fun)
    view.defvjp(fwd, bwd)
    view.__name__ = fn.__name__
    return view


_ARRAYS = (Tensor, Tracer, np.ndarray, np.generic)


def _values(tree):
    return tree_map(lambda x: x._value if isinstance(x, Tensor) else x, tree)


custom_derivatives.tensor_call = call
custom_derivatives.tensor_type = Tensor
