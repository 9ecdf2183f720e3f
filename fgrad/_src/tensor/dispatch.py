"""Running a Tensor op: look up (or stage) its programs, compute, record a node.

``apply(op, args, params)`` is the single entry point of every Tensor op.
``args`` holds Tensors and Python scalars; ``params`` (a hashable tuple) holds
static arguments such as ``dim``. The cache key is the op, its params, each
argument's shape and dtype (or Python type) and which inputs require grad, so
a cached call costs one dict lookup plus the NumPy calls of its program.
"""

from __future__ import annotations

import weakref

import numpy as np

from fgrad._src import config
from fgrad._src.core import Tracer as _Tracer
from fgrad._src.nn.tracing import apply_traced as _apply_traced  # fg.nn.functional_call
from fgrad._src.nn.tracing import state as _traced
from fgrad._src.tensor import grad_mode, graph, names, program

Tensor = None  # set by fgrad._src.tensor.tensor once the class exists
_cache: dict = {}
# NB: programs are compiled with or without NaN checks (program.compile_jaxpr).
config.on_update("debug_nans", _cache.clear)
_state = grad_mode.state
_flags = config.flags
_ndarray = np.ndarray
_asarray = np.asarray


class Op:
    """A Tensor op: ``fn(*arrays, *params)`` over ``fgrad.numpy``, and its node name.

    ``name`` is a string or a function of ``(avals, params)``; ``view`` marks
    ops whose result may share memory with an input (``view``, ``t``, ...).
    ``exact`` (a node's backward under ``create_graph``) records only the inputs the
    outputs depend on, and an output that depends on none requires no grad, as in
    PyTorch's backward formulas (``d(3 x)/dx`` is a constant). Without ``cache`` the
    op is staged on every call (its function may close over values that change).
    """

    __slots__ = ("name", "fn", "view", "exact", "cache")

    def __init__(self, name, fn, view=False, exact=False, cache=True):
        self.name, self.fn, self.view, self.exact, self.cache = name, fn, view, exact, cache

    def __repr__(self):
        return f"Op({self.name if isinstance(self.name, str) else self.fn.__name__})"


def _stage(op, params, args, diff):
    avals = [program.arg_aval(a._value if isinstance(a, Tensor) else a) for a in args]
    fn = op.fn
    if params:
        def fn(*xs, _fn=op.fn, _params=params):
            return _fn(*xs, *_params)

    name = op.name if isinstance(op.name, str) else op.name(avals, params)
    if diff:
        entry = program.stage_vjp(fn, avals, diff, name, op.view, op.exact)
        if op.exact:
            used = tuple(i for i in diff if i in entry.used_inputs)
            if used and used != tuple(diff):  # record only the inputs that matter
                entry = program.stage_vjp(fn, avals, used, name, op.view, True)
            diff = used
        if diff and any(entry.out_diff):
            entry.node_class = names.node_class(name)
            return entry
        entry = program.stage_primal(fn, avals, name, op.view)
        entry.diff = ()  # no float output: nothing to record
        return entry
    entry = program.stage_primal(fn, avals, name, op.view)
    entry.diff = ()
    return entry


def apply(op, args, params=()):
    """Run ``op`` on ``args``; return a Tensor (or a tuple for multi-output ops)."""
    # NB: this is the hot path of every Tensor op; keep it flat.
    # NB: Tensors holding tracers (inside fg.nn.functional_call, or made from a tracer
    # under fg.grad/fg.jit: ``F.mse_loss(x, y)`` of a traced x) run their ops on the
    # tracers: the transform differentiates or compiles them, no node is recorded.
    if _traced.active:
        return _apply_traced(op, args, params)
    enabled = _state.enabled
    grad = False
    # NB: 2 == 2.0 == True and they hash alike: the params' types keep ``x ** 2`` (an int
    # tensor) and ``x ** 2.0`` (a float one) apart.
    params_key = (params, *map(type, params)) if params else params
    if len(args) == 1 and isinstance(args[0], Tensor):
        a = args[0]
        v = a._value
        if v.__class__ is not _ndarray and isinstance(v, _Tracer):
            return _apply_traced(op, args, params)
        vals = (v,)
        if a._requires_grad and enabled:
            grad = True
            key = (op, params_key, v.shape, v.dtype, _DIFF_0)
        else:
            key = (op, params_key, v.shape, v.dtype)
    elif len(args) == 2:
        a, b = args
        if isinstance(a, Tensor):
            va = a._value
            ka, kb = va.shape, va.dtype
            ga = a._requires_grad
        else:
            va = a
            ka = kb = type(a)
            ga = False
        if isinstance(b, Tensor):
            vb = b._value
            kc, kd = vb.shape, vb.dtype
            gb = b._requires_grad
        else:
            vb = b
            kc = kd = type(b)
            gb = False
        if (va.__class__ is not _ndarray and isinstance(va, _Tracer)) or (
                vb.__class__ is not _ndarray and isinstance(vb, _Tracer)):
            return _apply_traced(op, args, params)
        vals = (va, vb)
        if (ga or gb) and enabled:
            grad = True
            key = (op, params_key, ka, kb, kc, kd, _DIFF_2[ga, gb])
        else:
            key = (op, params_key, ka, kb, kc, kd)
    else:
        sig = [op, params_key]
        vals = []
        for a in args:
            if isinstance(a, Tensor):
                v = a._value
                vals.append(v)
                sig.append(v.shape)
                sig.append(v.dtype)
                if a._requires_grad:
                    grad = True
            else:
                vals.append(a)
                sig.append(type(a))
        if grad and enabled:
            sig.append(tuple(
                i for i, a in enumerate(args) if isinstance(a, Tensor) and a._requires_grad))
        else:
            grad = False
        if any(isinstance(v, _Tracer) for v in vals):
            return _apply_traced(op, args, params)
        key = tuple(sig)
    entry = _cache.get(key)
    if entry is None:
        if len(_cache) > _CACHE_LIMIT:
            _cache.clear()
        diff = key[-1] if grad else ()
        nans_checked = _flags.debug_nans
        entry = _stage(op, params, args, diff)
        if op.cache:
            _cache[key] = entry
            # NB: another thread may have switched debug_nans while this op was staged,
            # and cleared the cache before the store above: then the entry is not kept.
            if _flags.debug_nans != nans_checked:
                _cache.pop(key, None)
    outs = entry.forward(*vals)
    if not entry.diff:
        if not entry.multi:
            v = outs[0]
            out = _wrap(v if type(v) is _ndarray else _asarray(v), None, False, 0)
        else:
            out = tuple(_wrap(v if type(v) is _ndarray else _asarray(v), None, False, 0)
                        for v in outs)
        if op.view:
            _note_views(op, args, params, out)
        return out
    # Record the node.
    node = _new(entry.node_class)
    node._entry = entry
    node._seq = _next_seq()
    if entry.n_res:
        node._saved = outs[entry.n_out:]
        node._args = args
    else:
        node._saved = ()
        node._args = None
    edges = []
    for i in entry.diff:
        a = args[i]
        fn = a._grad_fn
        edges.append((a, None) if fn is None else (fn, a._output_nr))
    node._next = edges
    if not entry.multi:
        v = outs[0]
        out = _wrap(v if type(v) is _ndarray else _asarray(v), node, True, 0)
    else:
        results = []
        for j in range(entry.n_out):
            v = outs[j]
            v = v if type(v) is _ndarray else _asarray(v)
            d = entry.out_diff[j]
            results.append(_wrap(v, node if d else None, d, j))
        out = tuple(results)
    if op.view:
        _note_views(op, args, params, out)
    return out


def _note_views(op, args, params, out, traced=False):
    """Remember which outputs of a view op share memory with its input (with ``traced``,
    every output: traced values have no memory, and PyTorch's view ops share it): each gets
    ``_view_of = (base, recipe)``, from which ``make_view`` makes the view afresh from
    the base (PyTorch's ``_base``), and joins the base's weakly held ``_views``. An
    in-place op recorded on either then updates the other (``tensor._take_over``)."""
    x = args[0]
    if not isinstance(x, Tensor):
        return
    root = None if traced else graph.base_array(x._value)
    base, parent_recipe, views = _base_of(x)
    multi = type(out) is tuple
    for j, t in enumerate(out if multi else (out,)):
        # NB: else a copy (advanced indexing, a reshape of a non-contiguous input)
        if traced or graph.base_array(t._value) is root:
            t._view_of = (base, (op, args[1:], params, j if multi else None, parent_recipe))
            views.append(weakref.ref(t))
            if not _state.enabled and base._requires_grad:
                t._no_grad_view = True  # in-place with grad on is refused (PyTorch's rule)


def note_detached(x, out):
    """Remember that ``out`` (``x.detach()`` or ``x.data``) shares ``x``'s values, so an
    in-place op recorded on ``x`` later, which rebinds ``x`` to a new array, rebinds
    ``out`` to it too (a recipe without an op: no history)."""
    base, parent_recipe, views = _base_of(x)
    out._view_of = (base, (None, (), (), None, parent_recipe))
    views.append(weakref.ref(out))
    return out


def _base_of(x):
    """``(base, recipe of x from it or None, the base's list of weak refs to its views)``
    for a new view of ``x``; the list drops its dead refs as it grows."""
    parent = x.__dict__.get("_view_of")
    base, parent_recipe = (x, None) if parent is None else parent
    views = base.__dict__.get("_views")
    if views is None:
        views = base._views = []
    elif len(views) > 64:
        views[:] = [ref for ref in views if ref() is not None]
    return base, parent_recipe, views


def make_view(base, recipe):
    """The view that ``recipe`` (from ``_note_views``) describes, made from ``base``."""
    op, rest, params, index, parent_recipe = recipe
    x = base if parent_recipe is None else make_view(base, parent_recipe)
    if op is None:  # detach() / .data
        return _wrap(detached(x._value))
    out = apply(op, (x, *rest), params)
    return out if index is None else out[index]


def concrete_view(shape, recipe):
    """The view ``recipe`` describes, made from ``arange`` of ``shape`` in eager NumPy,
    whatever transform is active: its values are the base's flat positions the view
    covers, and its strides the ones the view has in eager mode."""
    saved, _traced.active = _traced.active, 0  # NB: else apply would trace it too
    try:
        with grad_mode.no_grad():
            size = int(np.prod(shape, dtype=np.int64))
            everywhere = _wrap(np.arange(size, dtype=np.int64).reshape(shape))
            return make_view(everywhere, recipe)._value
    finally:
        _traced.active = saved


def recipe_detaches(recipe):
    """The recipe passes through a ``detach()``: writes through it are not recorded."""
    while recipe is not None:
        if recipe[0] is None:
            return True
        recipe = recipe[4]
    return False


def detached(value):
    """``value`` as ``detach()`` gives it: the same array, or a traced value with its
    gradient stopped (traced values cannot share memory; torch.func stops it too)."""
    if not isinstance(value, _Tracer) or value.dtype.kind != "f":
        return value
    from fgrad._src.lax import lax

    return lax.stop_gradient(value)


def note_traced_views(op, args, params, out):
    """``_note_views`` for an op on traced values: every output of a view op is a view,
    except advanced indexing, which copies in PyTorch."""
    if op is getitem_op and names.index_name(params[0]) == "IndexBackward0":
        return
    _note_views(op, args, params, out, traced=True)


getitem_op = None  # set by fgrad._src.tensor.ops
_DIFF_0 = (0,)
_DIFF_2 = {(True, True): (0, 1), (True, False): (0,), (False, True): (1,)}
_CACHE_LIMIT = 20000
_new = object.__new__
_next_seq = graph._clock  # shared with in-place write clocks
_wrap = None  # set by fgrad._src.tensor.tensor


# --------------------------------------------------------------------------- create_graph


_backward_ops: dict = {}


def apply_backward(node, entry, cts):
    """A node's backward as a recorded Tensor op (for ``create_graph=True``)."""
    op = _backward_ops.get(entry)
    if op is None:
        n_args = entry.n_in if entry.n_res else 0

        def backward_fn(*vals):
            return tuple(program.run_vjp_traceable(entry, vals[:n_args], vals[n_args:]))

        op = _backward_ops[entry] = Op(names.double_backward_name(entry.name), backward_fn,
                                       exact=True)
    args = tuple(node._args) if entry.n_res else ()
    cts = tuple(c if isinstance(c, Tensor) else _wrap(np.asarray(c)) for c in cts)
    out = apply(op, args + cts)
    return out if isinstance(out, tuple) else (out,)
