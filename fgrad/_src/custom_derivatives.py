"""``fg.custom_vjp``: user-defined reverse-mode rules.

A call under a transform binds ``custom_vjp_call`` (its body staged as a
jaxpr). Its JVP rule runs the user's ``fwd`` on the primals and emits the
linear primitive ``custom_lin``, whose transpose calls the user's ``bwd``.
So ``grad``, ``jit`` and higher-order reverse mode all see the custom rule.
"""

from __future__ import annotations

import functools
import inspect

import numpy as np

from fgrad._src import core
from fgrad._src.core import Tracer, get_aval
from fgrad._src.errors import check_callable
from fgrad._src.interpreters import ad, batching
from fgrad._src.interpreters.partial_eval import trace_to_jaxpr
from fgrad._src.lax.utils import primitive
from fgrad._src.tree import tree_flatten, tree_unflatten

# --------------------------------------------------------------------------- custom_vjp_call


def _custom_vjp_call_impl(*args, call_jaxpr, fwd, bwd, name, num_consts=0):
    return core.eval_jaxpr(call_jaxpr.jaxpr, call_jaxpr.consts, list(args))


def _custom_vjp_call_abstract(*avals, call_jaxpr, fwd, bwd, name, num_consts=0):
    return call_jaxpr.out_avals


custom_vjp_call_p = primitive(
    "custom_vjp_call",
    _custom_vjp_call_abstract,
    _custom_vjp_call_impl,
    multiple_results=True,
    pp=lambda params: {"name": params["name"]},
)


def _custom_vjp_call_jvp(primals, tangents, *, call_jaxpr, fwd, bwd, name, num_consts=0):
    outs, residuals = fwd(*primals)
    out_avals = tuple(ad.tangent_aval(get_aval(x)) for x in outs)
    tangents_out = custom_lin_p.bind(
        *residuals, *tangents, num_res=len(residuals), bwd=bwd, out_avals=out_avals
    )
    return outs, tangents_out


ad.defjvp_instantiated(custom_vjp_call_p, _custom_vjp_call_jvp)
_instantiated_jvp = ad.jvp_rules[custom_vjp_call_p]


def _closure_checked_jvp(primals, tangents, **params):
    if any(not isinstance(t, ad.Zero) for t in tangents[:params.get("num_consts", 0)]):
        raise TypeError(
            f"custom_vjp function {params['name']} closes over a value that is being "
            "differentiated; its custom rule cannot give that value a gradient. Pass the "
            "value to the function as an argument (and return its cotangent from bwd).")
    return _instantiated_jvp(primals, tangents, **params)


ad.jvp_rules[custom_vjp_call_p] = _closure_checked_jvp
# NB: the generic rule calls the primitive per batch element, keeping the custom rules.
batching.defbatch_fallback(custom_vjp_call_p)

# --------------------------------------------------------------------------- custom_lin


def _custom_lin_impl(*args, num_res, bwd, out_avals):
    raise TypeError(
        "can't apply forward-mode autodiff (jvp, jacfwd) to a custom_vjp function: it only "
        "defines a reverse-mode rule. Use fg.grad, fg.vjp or fg.jacrev instead."
    )


def _custom_lin_abstract(*avals, num_res, bwd, out_avals):
    return list(out_avals)


custom_lin_p = primitive(
    "custom_lin",
    _custom_lin_abstract,
    _custom_lin_impl,
    multiple_results=True,
    pp=lambda params: {"num_res": params["num_res"]},
)


def _custom_lin_transpose(cts, *args, num_res, bwd, out_avals):
    residuals = args[:num_res]
    cts = [ad.instantiate_zeros(ct) for ct in cts]
    return [None] * num_res + list(bwd(residuals, cts))


ad.deftranspose(custom_lin_p, _custom_lin_transpose)
ad.jvp_rules[custom_lin_p] = lambda primals, tangents, **params: _custom_lin_impl(**params)
batching.defbatch_fallback(custom_lin_p)

def _closure_convert(closed):
    """``closed`` with its constants that are tracers (values the function closed over
    from an enclosing jit, vmap or grad) turned into leading inputs, and those values.

    NB: left as constants they would be evaluated later, outside the trace they belong
    to; as inputs the enclosing transform sees (batches, stages) them like any operand.
    """
    jaxpr = closed.jaxpr
    lifted = [i for i, c in enumerate(closed.consts) if isinstance(c, Tracer)]
    if not lifted:
        return closed, []
    keep = [i for i in range(len(closed.consts)) if i not in lifted]
    converted = core.Jaxpr([jaxpr.constvars[i] for i in keep],
                           [jaxpr.constvars[i] for i in lifted] + jaxpr.in_binders,
                           jaxpr.eqns, jaxpr.outs)
    return (core.ClosedJaxpr(converted, [closed.consts[i] for i in keep]),
            [closed.consts[i] for i in lifted])


# --------------------------------------------------------------------------- the decorator

# Set by fgrad._src.tensor.custom when the Tensor facade loads: calls with Tensor
# arguments go there (this module does not import the facade).
tensor_type = None
tensor_call = None


class custom_vjp:
    """Give a function a custom vector-Jacobian product.

    >>> import fgrad as fg
    >>> @fg.custom_vjp
    ... def clip_gradient(x):
    ...     return x
    >>> def fwd(x):
    ...     return x, None
    >>> def bwd(res, g):
    ...     return (fg.numpy.clip(g, -1.0, 1.0),)
    >>> clip_gradient.defvjp(fwd, bwd)
    >>> float(fg.grad(lambda x: 5.0 * clip_gradient(x))(2.0))
    1.0
    """

    def __init__(self, fun):
        check_callable(fun, "custom_vjp")
        functools.update_wrapper(self, fun)
        if "__name__" not in self.__dict__:  # a functools.partial or a callable object
            self.__name__ = type(fun).__name__
        self.fun = fun
        self.fwd = None
        self.bwd = None

    def defvjp(self, fwd, bwd):
        """Set ``fwd(*args) -> (out, residuals)`` and ``bwd(residuals, ct) -> tuple``."""
        check_callable(fwd, "custom_vjp.defvjp fwd")
        check_callable(bwd, "custom_vjp.defvjp bwd")
        self.fwd, self.bwd = fwd, bwd

    def __call__(self, *args, **kwargs):
        if self.fwd is None:
            raise TypeError(
                f"no VJP defined for custom_vjp function {self.__name__}; "
                "call .defvjp(fwd, bwd) first."
            )
        if kwargs or len(args) < self._n_positional():
            args = self._positional(args, kwargs)
        leaves, in_tree = tree_flatten(args)
        if tensor_type is not None and any(isinstance(x, tensor_type) for x in leaves):
            return tensor_call(self, args)  # NB: Tensors would hide their values from the rule
        if not any(isinstance(x, Tracer) for x in leaves):
            return self.fun(*args)
        in_avals = [get_aval(x) for x in leaves]
        call_jaxpr, out_tree = self._trace(in_tree, in_avals)
        call_jaxpr, closed_over = _closure_convert(call_jaxpr)
        fwd_flat, bwd_flat = self._flat_rules(in_tree, in_avals, out_tree, call_jaxpr.out_avals,
                                              len(closed_over))
        outs = custom_vjp_call_p.bind(
            *closed_over, *leaves, call_jaxpr=call_jaxpr, fwd=fwd_flat, bwd=bwd_flat,
            name=self.__name__, num_consts=len(closed_over)
        )
        return tree_unflatten(out_tree, outs)

    def _signature(self):
        if "_sig" not in self.__dict__:
            try:
                self._sig = inspect.signature(self.fun)
            except (TypeError, ValueError):  # a callable without a signature
                self._sig = None
            self._n_pos = 0 if self._sig is None else sum(
                p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                for p in self._sig.parameters.values())
        return self._sig

    def _n_positional(self):
        self._signature()
        return self._n_pos

    def _positional(self, args, kwargs):
        """Keyword arguments and defaults bound by ``fun``'s signature into positions (as
        JAX does): ``fwd`` and ``bwd`` see every argument positionally."""
        sig = self._signature()
        if sig is None:
            raise TypeError(f"{self.__name__}: keyword arguments need a function with a "
                            "signature")
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"{self.__name__}: {e}") from None
        bound.apply_defaults()
        if bound.kwargs:
            raise TypeError(f"{self.__name__}: custom_vjp functions take no keyword-only or "
                            f"**kwargs arguments (got {sorted(bound.kwargs)})")
        return bound.args

    def _trace(self, in_tree, in_avals):
        # NB: traced on every call, never cached by avals: the function may close over
        # values (Python numbers become literals of the jaxpr) that change between calls.
        store = {}

        def fun_flat(*leaves):
            out = self.fun(*tree_unflatten(in_tree, leaves))
            out_leaves, store["tree"] = tree_flatten(out)
            return out_leaves

        call_jaxpr = trace_to_jaxpr(fun_flat, in_avals)
        return call_jaxpr, store["tree"]

    def _flat_rules(self, in_tree, in_avals, out_tree, out_avals, num_consts):
        res_tree_cell = {}
        name = self.__name__

        def fwd_flat(*args):
            leaves = args[num_consts:]  # the closed-over values come first (see __call__)
            result = self.fwd(*tree_unflatten(in_tree, leaves))
            if not (isinstance(result, tuple) and len(result) == 2):
                raise TypeError(
                    f"custom_vjp fwd of {name} must return a pair (output, residuals), "
                    f"got {type(result).__name__}"
                )
            out, residuals = result
            out_leaves, fwd_out_tree = tree_flatten(out)
            if fwd_out_tree != out_tree:
                raise TypeError(
                    f"custom_vjp fwd of {name} returned output structure {fwd_out_tree}, "
                    f"but the function returns {out_tree}"
                )
            for i, (leaf, aval) in enumerate(zip(out_leaves, out_avals)):
                got = get_aval(leaf)
                if got.shape != aval.shape or got.dtype != aval.dtype:
                    raise TypeError(
                        f"custom_vjp fwd of {name} returned output {i} of type "
                        f"{got.str_short()}, but the function returns {aval.str_short()}"
                    )
            res_leaves, res_tree_cell["tree"] = tree_flatten(residuals)
            return out_leaves, res_leaves

        def bwd_flat(res_leaves, cts):
            residuals = tree_unflatten(res_tree_cell["tree"], res_leaves)
            result = self.bwd(residuals, tree_unflatten(out_tree, cts))
            ct_leaves = cotangent_leaves(name, in_tree, result)
            return [None] * num_consts + [_check_ct(name, i, ct, aval) for i, (ct, aval) in
                                          enumerate(zip(ct_leaves, in_avals))]

        return fwd_flat, bwd_flat


def cotangent_leaves(name, in_tree, result):
    """The cotangents ``bwd`` returned (one per argument of structure ``in_tree``), one
    per argument leaf (None for a zero); a TypeError naming the mistake otherwise."""
    n_args = len(in_tree.children)
    if not isinstance(result, tuple) or len(result) != n_args:
        raise TypeError(
            f"custom_vjp bwd of {name} must return a tuple with one cotangent per "
            f"argument ({n_args}), got {type(result).__name__}"
            + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else "")
        )
    ct_leaves = _leaves_like(in_tree, result)
    if ct_leaves is None:
        ct_tree = tree_flatten(result, is_leaf=lambda x: x is None)[1]
        raise TypeError(
            f"custom_vjp bwd of {name} returned structure {ct_tree}, which does not match "
            f"the arguments' structure {in_tree} (None may stand for a zero cotangent of "
            "any subtree)"
        )
    return ct_leaves


def _leaves_like(treedef, value):
    """The leaves of ``value`` laid out as ``treedef``'s, a ``None`` in ``value``
    standing for a whole subtree of zeros; None if the structures differ."""
    leaves, value_tree = tree_flatten(value, is_leaf=lambda x: x is None)
    out: list = []
    it = iter(leaves)

    def match(expected, actual):
        if actual.node_type is None:  # an array leaf, or None
            leaf = next(it)
            if leaf is None:
                out.extend([None] * expected.num_leaves)
                return True
            out.append(leaf)
            return expected.node_type is None
        same_node = (actual.node_type, actual.aux) == (expected.node_type, expected.aux)
        return (same_node and len(actual.children) == len(expected.children)
                and all(match(e, a) for e, a in zip(expected.children, actual.children)))

    return out if match(treedef, value_tree) else None


def _check_ct(name, i, ct, aval):
    if ct is None:
        return ad.Zero(ad.tangent_aval(aval))
    ct_aval = get_aval(ct)
    if ct_aval.shape != aval.shape:
        raise ValueError(
            f"custom_vjp bwd of {name} returned a cotangent of shape {ct_aval.shape} for "
            f"input {i}, which has shape {aval.shape}"
        )
    if not isinstance(ct, Tracer):
        ct = np.asarray(ct, dtype=aval.dtype)
    elif ct_aval.dtype != aval.dtype:
        from fgrad._src.lax import lax

        ct = lax.convert_element_type(ct, aval.dtype)
    return ct
