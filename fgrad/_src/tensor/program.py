"""Staged programs for Tensor ops: one trace per (op, params, input avals, grad mask).

A Tensor op is an ``fgrad.numpy`` function. The first time it meets a new
signature it is staged with the same machinery as ``fg.vjp`` — linearize
(JVP over partial evaluation) and transpose (``ad.backward_pass``) — into two
jaxprs:

* ``fwd``: inputs -> outputs + residuals (the node's *saved values*);
* ``bwd``: residuals + output cotangents -> input cotangents.

Each jaxpr is then turned into a plain Python function that calls the NumPy
implementation of every primitive in order (``core.impl_rules``), so a cached
op costs a handful of NumPy calls and no tracing. No derivative rule lives
here: every cotangent comes from the primitives' JVP and transpose rules.
"""

from __future__ import annotations

import itertools
import re

import numpy as np

from fgrad._src import config, core, dtypes
from fgrad._src.core import ShapedArray, get_aval
from fgrad._src.interpreters import ad
from fgrad._src.interpreters.partial_eval import trace_to_jaxpr

_counter = itertools.count()
_IDENTIFIER = re.compile(r"\W")
# Primitives whose NumPy implementation may return a view of (or the same) input.
_VIEW_PRIMITIVES = frozenset(
    {"reshape", "transpose", "squeeze", "expand_dims", "slice", "rev", "stop_gradient",
     "dynamic_slice"}
)


def _fast_impl(eqn, impl):
    """A faster NumPy form of ``eqn`` when it gives exactly what the jaxpr promises:
    the bare ufunc when operands already share the output dtype, ``ufunc.reduce`` for
    float reductions, a materialized broadcast for small outputs. Else the checked impl.
    """
    special = _SPECIAL.get(eqn.primitive.name)
    if special is not None:
        return special(eqn) or impl
    raw = getattr(impl, "unchecked", None)
    if not isinstance(raw, np.ufunc) or eqn.params:
        return impl
    out = eqn.out_binders[0].aval.dtype
    for x in eqn.inputs:
        if isinstance(x, core.Literal) and not isinstance(x.val, (np.ndarray, np.generic)):
            return impl
        dtype = x.aval.dtype
        if dtype != out and not (out == np.bool_ and len(eqn.inputs) == 2):
            return impl
    return raw


def _fast_reduce(ufunc):
    def build(eqn):
        if eqn.inputs[0].aval.dtype.kind != "f":
            return None
        reduce = ufunc.reduce

        def fast(x, *, axes):
            return reduce(x, axis=axes)

        return fast

    return build


def _fast_broadcast(eqn):
    aval = eqn.out_binders[0].aval
    if aval.size > 4096:
        return None  # a broadcast view is cheaper than a copy
    dtype = aval.dtype
    empty = np.empty

    def fast(x, *, shape, broadcast_dimensions):
        out = empty(shape, dtype)
        if broadcast_dimensions == tuple(range(len(shape) - len(broadcast_dimensions),
                                                len(shape))):
            out[...] = x
        else:
            expanded = [1] * len(shape)
            for i, d in enumerate(broadcast_dimensions):
                expanded[d] = x.shape[i]
            out[...] = np.reshape(x, expanded)
        return out

    return fast


def _fast_dot(eqn):
    """``dot_general`` without batch dims as one 2-D/1-D ``np.dot`` (BLAS gemm/gemv)."""
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    x, y = (v.aval for v in eqn.inputs)
    if lb or rb or x.dtype != y.dtype or x.dtype.kind != "f":
        return None
    x_free = [d for d in range(x.ndim) if d not in lc]
    y_free = [d for d in range(y.ndim) if d not in rc]
    perm_x, perm_y = (*x_free, *lc), (*rc, *y_free)
    k = int(np.prod([x.shape[d] for d in lc], dtype=np.int64))
    m = int(np.prod([x.shape[d] for d in x_free], dtype=np.int64))
    n = int(np.prod([y.shape[d] for d in y_free], dtype=np.int64))
    shape_x = (m, k) if x_free else (k,)
    shape_y = (k, n) if y_free else (k,)
    out_shape = eqn.out_binders[0].aval.shape
    same_x, same_y = perm_x == tuple(range(x.ndim)), perm_y == tuple(range(y.ndim))
    return _generic_dot(perm_x, perm_y, shape_x, shape_y, same_x, same_y, out_shape)


def _generic_dot(perm_x, perm_y, shape_x, shape_y, same_x, same_y, out_shape):
    dot = np.dot

    def fast(a, b, *, dimension_numbers):
        a = (a if same_x else a.transpose(perm_x)).reshape(shape_x)
        b = (b if same_y else b.transpose(perm_y)).reshape(shape_y)
        out = dot(a, b)
        return out.reshape(out_shape) if out_shape else out

    return fast


def _typed_operands(eqn):
    """Every input is an array or NumPy scalar at run time (no weak Python number)."""
    for x in eqn.inputs:
        if isinstance(x, core.Literal):
            if not isinstance(x.val, (np.ndarray, np.generic)):
                return False
        elif x.aval.weak_type:
            return False
    return True


def _fast_select(eqn):
    which, *cases = eqn.inputs
    out = eqn.out_binders[0].aval.dtype
    if (len(cases) != 2 or which.aval.dtype != np.bool_ or not _typed_operands(eqn)
            or any(c.aval.dtype != out for c in cases)):
        return None
    where = np.where

    def fast(which, on_false, on_true):
        return where(which, on_true, on_false)

    return fast


def _fast_divide(eqn):
    out = eqn.out_binders[0].aval.dtype
    if out.kind != "f" or not _typed_operands(eqn) or any(
            x.aval.dtype != out for x in eqn.inputs):
        return None
    return np.true_divide


def _fast_reshape(eqn):
    if not _typed_operands(eqn):
        return None

    def fast(x, *, new_sizes):
        return x.reshape(new_sizes)

    return fast


def _fast_expand_dims(eqn):
    """A reshape: ``np.expand_dims`` normalizes its axes in Python on every call."""
    if not _typed_operands(eqn):
        return None
    shape = eqn.out_binders[0].aval.shape

    def fast(x, *, dimensions):
        return x.reshape(shape)

    return fast


def _fast_convert(eqn):
    if not _typed_operands(eqn):
        return None

    def fast(x, *, new_dtype, weak_type):
        return x.astype(new_dtype)

    return fast


def _fast_scatter_add(eqn):
    if eqn.params["axis"] != 0:
        return None
    # NB: at axis 0 the impl's moveaxis calls are identities; the range check stays.
    from fgrad._src.lax.indexing import check_indices_in_range

    add_at = np.add.at

    def fast(x, indices, updates, *, axis):
        out = np.array(x, copy=True)
        check_indices_in_range(indices, out.shape[0])
        add_at(out, indices, updates)
        return out

    return fast


_SPECIAL = {
    "scatter_add": _fast_scatter_add,
    "select_n": _fast_select,
    "div": _fast_divide,
    "reshape": _fast_reshape,
    "expand_dims": _fast_expand_dims,
    "convert_element_type": _fast_convert,
    "dot_general": _fast_dot,
    "reduce_sum": _fast_reduce(np.add),
    "reduce_max": _fast_reduce(np.maximum),
    "reduce_min": _fast_reduce(np.minimum),
    "broadcast_in_dim": _fast_broadcast,
}


def compile_jaxpr(closed, name, copy_outputs=0, view=False):
    """A Python function running ``closed`` with the NumPy implementations (each checked
    for NaNs, as eager code is, when ``debug_nans`` is on as it is made).

    With ``view`` (a view op's forward, like ``expand``) broadcasts stay NumPy views, so
    the result shares memory with its input as PyTorch's does.

    Equations whose inputs are all constants are evaluated once, here. The first
    ``copy_outputs`` outputs (an op's results, not its residuals) are copied when
    they alias an input, a constant or a read-only broadcast, so an op that is not
    a view never returns memory it does not own.

    The function's ``fresh_outputs`` attribute tells, per output, whether every call
    returns a new array that no other output, input or constant shares memory with:
    the backward walk hands such a gradient to a leaf's ``.grad`` without a copy.
    """
    jaxpr = closed.jaxpr
    check_nans = config.flags.debug_nans
    env: dict = {"_np_array": np.array}
    names: dict = {}
    constants: dict = dict(zip(jaxpr.constvars, closed.consts))
    for i, var in enumerate(jaxpr.constvars):
        names[var] = f"c{i}"
        env[f"c{i}"] = constants[var]
    args = []
    for i, var in enumerate(jaxpr.in_binders):
        names[var] = f"a{i}"
        args.append(f"a{i}")
    borrowed = set(jaxpr.in_binders) | set(jaxpr.constvars)
    root: dict = {}  # a view's var -> the var whose memory it shares (for fresh_outputs)
    lines = []

    def atom(x):
        if isinstance(x, core.Literal):
            key = f"l{len(env)}"
            env[key] = x.val
            return key
        return names[x]

    def is_constant(x):
        return isinstance(x, core.Literal) or x in constants

    # In-place results (see _dying_temporary): arrays this function made itself, fresh
    # and writable, and those some view (reshape, broadcast, ...) shares memory with.
    last_read = _last_reads(jaxpr)
    owned, viewed = set(), set()
    for k, eqn in enumerate(jaxpr.eqns):
        impl = core.impl_rules[eqn.primitive]
        if all(is_constant(x) for x in eqn.inputs):
            vals = [x.val if isinstance(x, core.Literal) else constants[x] for x in eqn.inputs]
            outs = impl(*vals, **eqn.params)
            outs = outs if eqn.primitive.multiple_results else [outs]
            for j, (var, val) in enumerate(zip(eqn.out_binders, outs)):
                names[var] = f"k{k}_{j}"
                env[names[var]] = constants[var] = val
                borrowed.add(var)
            continue
        if eqn.primitive.name in _DENSE_OPERAND_PRIMITIVES:
            _densify_constant_operands(eqn, constants, env, names)
        fn = f"f{k}"
        if view and eqn.primitive.name == "broadcast_in_dim":
            env[fn] = fast = impl  # np.broadcast_to: a view, never a copy
        else:
            env[fn] = fast = _fast_impl(eqn, impl)
        if check_nans:
            env[fn] = _nan_checked(fast, eqn.primitive)
        call = [atom(x) for x in eqn.inputs]
        for pname, pval in eqn.params.items():
            env[f"p{k}_{pname}"] = pval
            call.append(f"{pname}=p{k}_{pname}")
        makes_array = eqn.out_binders[0].aval.ndim > 0 and not check_nans
        if isinstance(fast, np.ufunc) and fast.nout == 1 and makes_array:
            dying = _dying_temporary(eqn, k, last_read, owned, viewed)
            if dying is not None:
                call.append(f"out={names[dying]}")
            owned.add(eqn.out_binders[0])
        elif _is_numpy_product(eqn, fast, impl) and makes_array:
            owned.add(eqn.out_binders[0])
        outs = []
        prim = eqn.primitive.name
        aliases = (prim == "broadcast_in_dim" and fast is impl) or (
            prim in _VIEW_PRIMITIVES and any(x in borrowed for x in eqn.inputs)
        )
        if aliases or prim in _VIEW_PRIMITIVES:
            viewed.update(x for x in eqn.inputs if not isinstance(x, core.Literal))
        for j, var in enumerate(eqn.out_binders):
            names[var] = f"v{k}_{j}"
            outs.append(names[var])
            if aliases:
                borrowed.add(var)
            if prim in _VIEW_PRIMITIVES and not isinstance(eqn.inputs[0], core.Literal):
                root[var] = root.get(eqn.inputs[0], eqn.inputs[0])
        target = ", ".join(outs) + ("," if eqn.primitive.multiple_results else "")
        lines.append(f"    {target} = {fn}({', '.join(call)})")
    results = []
    for i, x in enumerate(jaxpr.outs):
        text = atom(x)
        if i < copy_outputs and (isinstance(x, core.Literal) or x in borrowed):
            text = f"_np_array({text})"
        results.append(text)
    fname = f"_fgrad_{_IDENTIFIER.sub('_', name)}_{next(_counter)}"  # "<lambda>Backward"
    src = f"def {fname}({', '.join(args)}):\n" + "\n".join(lines) + (
        f"\n    return ({', '.join(results)}{',' if results else ''})\n"
    )
    exec(compile(src, f"<fgrad tensor op {name}>", "exec"), env)
    fn = env[fname]
    fn.fresh_outputs = _fresh_outputs(jaxpr.outs, borrowed, root)
    return fn


def _last_reads(jaxpr):
    """Var -> the index of the last equation reading it (past the end: an output)."""
    last = {}
    for k, eqn in enumerate(jaxpr.eqns):
        for x in eqn.inputs:
            if not isinstance(x, core.Literal):
                last[x] = k
    for x in jaxpr.outs:
        if not isinstance(x, core.Literal):
            last[x] = len(jaxpr.eqns)
    return last


def _dying_temporary(eqn, k, last_read, owned, viewed):
    """An input of the ufunc equation ``eqn`` (number ``k``) that its result may overwrite
    (NumPy's ``out=``), or None: an array made by an earlier ufunc or product of this
    function (``owned``: fresh, writable, nobody else's), with the result's shape and
    dtype, that no view shares and nothing reads afterwards. NumPy does the same for
    ``x @ w + b`` (the product is a temporary, so the sum is computed in place); here
    every value is named, so NumPy cannot see that a value dies.
    """
    aval = eqn.out_binders[0].aval
    for x in eqn.inputs:
        if (not isinstance(x, core.Literal) and x in owned and x not in viewed
                and last_read[x] == k
                and x.aval.shape == aval.shape and x.aval.dtype == aval.dtype):
            return x
    return None


def _is_numpy_product(eqn, fast, impl):
    """Whether ``eqn`` is a ``dot_general`` run by ``np.dot`` (a fresh array)."""
    return eqn.primitive.name == "dot_general" and fast is not impl


def _nan_checked(fn, primitive):
    """``fn`` raising as eager fgrad.numpy does under ``debug_nans`` when it makes a NaN."""
    def checked(*args, **params):
        out = fn(*args, **params)
        core.check_nans(primitive, out if primitive.multiple_results else [out])
        return out

    return checked


# NB: NumPy's maximum/minimum run ~3x slower when an operand is a broadcast scalar
# (stride 0, as relu's zero is) than against a dense array of the output's shape.
_DENSE_OPERAND_PRIMITIVES = frozenset({"max", "min"})
_DENSE_CONSTANT_LIMIT = 1 << 22  # bytes: a larger zero stays a broadcast view


def _densify_constant_operands(eqn, constants, env, names):
    """Give ``eqn`` its constant operands (a broadcast view or a 0-d scalar) as dense,
    read-only arrays of the output's shape, made once, when that is what NumPy runs
    fastest: the same values, so the same results."""
    aval = eqn.out_binders[0].aval
    if aval.ndim == 0 or aval.size * aval.dtype.itemsize > _DENSE_CONSTANT_LIMIT:
        return
    for x in eqn.inputs:
        if isinstance(x, core.Literal) or x not in constants:
            continue
        val = constants[x]
        if not isinstance(val, np.ndarray) or val.dtype != aval.dtype or (
                val.shape == aval.shape and 0 not in val.strides):
            continue
        dense = np.array(np.broadcast_to(val, aval.shape), copy=True)
        dense.flags.writeable = False
        constants[x] = env[names[x]] = dense


def _fresh_outputs(outs, borrowed, root):
    """Per output: made by this program and sharing memory with no other output."""
    def owner(x):
        return None if isinstance(x, core.Literal) else root.get(x, x)

    owners = [owner(x) for x in outs]
    return tuple(
        o is not None and x not in borrowed and o not in borrowed and owners.count(o) == 1
        for x, o in zip(outs, owners)
    )


def arg_aval(value):
    """The aval of a runtime argument: arrays are strong, Python scalars weak."""
    if isinstance(value, (bool, int, float)) and not isinstance(value, np.generic):
        return ShapedArray((), dtypes.python_scalar_dtype(value), weak_type=True)
    return ShapedArray(value.shape, value.dtype)


def _as_list(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


class Entry:
    """The cached programs of one op signature."""

    __slots__ = (
        "name", "fn", "n_in", "n_out", "out_diff", "multi", "forward", "n_res",
        "backward", "bwd_jaxpr", "fwd_jaxpr", "ct_slots", "diff", "out_avals", "node_class",
        "bwd_fresh", "used_inputs",
    )


def stage_primal(fn, avals, name, view):
    """The program of ``fn`` alone (no gradient is recorded)."""
    store: dict = {}

    def flat(*xs):
        out = fn(*xs)
        store["multi"] = isinstance(out, (tuple, list))
        return _as_list(out)

    closed = trace_to_jaxpr(flat, avals)
    entry = Entry()
    entry.name, entry.fn, entry.n_in = name, fn, len(avals)
    entry.multi = store["multi"]
    entry.out_avals = closed.out_avals
    entry.n_out = len(entry.out_avals)
    entry.forward = compile_jaxpr(closed, name, copy_outputs=0 if view else entry.n_out,
                                  view=view)
    entry.n_res = 0
    entry.backward = None
    return entry


def stage_vjp(fn, avals, diff, name, view, exact=False):
    """Stage the vjp of ``fn`` with respect to the inputs at positions ``diff``.

    The forward program returns ``outputs + residuals``; the backward program
    maps ``residuals + cotangents of the float outputs`` to the cotangents of
    the inputs in ``ct_slots`` (positions into ``diff``, all of them: a
    symbolically zero cotangent becomes zeros, as PyTorch's formulas give).
    With ``exact``, a float output that depends on no input of ``diff`` counts as
    not differentiable, and ``entry.used_inputs`` holds the positions in ``diff`` that
    the differentiable outputs depend on (empty without ``exact``). Dependence is by
    the forward program's data flow, as PyTorch's graph records it: relu's gradient
    ``ct * (x > 0)`` depends on ``x`` (its derivative is zero, but it is a function of
    ``x``).
    """
    store: dict = {}

    def forward(*xs):
        def f_diff(*diff_xs):
            args = list(xs)
            for i, x in zip(diff, diff_xs):
                args[i] = x
            out = fn(*args)
            store["multi"] = isinstance(out, (tuple, list))
            return _as_list(out)

        outs, lin = ad.linearize_flat(f_diff, [xs[i] for i in diff])
        store["lin"] = lin.jaxpr
        return list(outs) + list(lin.consts)

    fwd = trace_to_jaxpr(forward, avals)
    lin = store["lin"]
    res_avals = [v.aval for v in lin.constvars]
    out_avals = fwd.out_avals[: len(lin.outs)]
    out_diff = [dtypes.is_float(a.dtype) for a in out_avals]
    depends = []  # NB: only an exact op needs the data-flow pass
    if exact:
        depends = [{k for k, i in enumerate(diff) if i in d}
                   for d in _input_dependence(fwd.jaxpr, len(out_avals))]
        out_diff = [on and bool(d) for on, d in zip(out_diff, depends)]
    ct_avals = [ad.tangent_aval(a) for a, d in zip(out_avals, out_diff) if d]
    slots: list = []

    def backward(*args):
        res, cts = args[: len(res_avals)], list(args[len(res_avals):])
        full = [
            cts.pop(0) if d else ad.Zero(ad.tangent_aval(a)) for a, d in zip(out_avals, out_diff)
        ]
        grads = ad.backward_pass(lin, list(res), full)
        outs = []
        for k, (g, i) in enumerate(zip(grads, diff)):
            if isinstance(g, ad.Zero):
                # PyTorch gives zeros, not "no gradient" (sign, floor, round, ...).
                g = np.zeros(avals[i].shape, avals[i].dtype)
            want = avals[i].dtype
            if get_aval(g).dtype != want:
                from fgrad._src.lax import lax

                g = lax.convert_element_type(g, want)
            slots.append(k)
            outs.append(g)
        return outs

    bwd = trace_to_jaxpr(backward, res_avals + ct_avals)
    entry = Entry()
    entry.name, entry.fn, entry.n_in, entry.diff = name, fn, len(avals), tuple(diff)
    entry.multi = store["multi"]
    entry.out_avals = out_avals
    entry.n_out = len(out_avals)
    entry.out_diff = tuple(out_diff)
    entry.n_res = len(res_avals)
    entry.fwd_jaxpr, entry.bwd_jaxpr = fwd, bwd
    entry.forward = compile_jaxpr(fwd, name, copy_outputs=0 if view else entry.n_out,
                                  view=view)
    entry.backward = compile_jaxpr(bwd, name + "_bwd")
    entry.bwd_fresh = entry.backward.fresh_outputs
    entry.ct_slots = tuple(slots)
    entry.used_inputs = {diff[k] for d, on in zip(depends, out_diff) if on for k in d}
    return entry


def _input_dependence(jaxpr, n_out):
    """Per one of the first ``n_out`` outputs of ``jaxpr``, the positions of the inputs
    it is computed from (through any equation, comparisons included)."""
    depends = {var: {k} for k, var in enumerate(jaxpr.in_binders)}
    for eqn in jaxpr.eqns:
        found = set()
        for x in eqn.inputs:
            if not isinstance(x, core.Literal):
                found |= depends.get(x, set())
        for var in eqn.out_binders:
            depends[var] = found
    return [set() if isinstance(x, core.Literal) else depends.get(x, set())
            for x in jaxpr.outs[:n_out]]


def run_vjp_traceable(entry, args, cts):
    """The node's backward as a function of its inputs and cotangents, by ``bind``:
    used under ``create_graph=True`` so that the backward is itself recorded.
    """
    fwd = entry.fwd_jaxpr
    res = []
    if entry.n_res:
        outs = core.eval_jaxpr(fwd.jaxpr, fwd.consts, list(args))
        res = outs[entry.n_out:]
    bwd = entry.bwd_jaxpr
    return core.eval_jaxpr(bwd.jaxpr, bwd.consts, res + list(cts))
