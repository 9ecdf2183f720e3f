"""The public transforms: grad, value_and_grad, vjp, jvp, jacfwd, jacrev, hessian,
make_jaxpr. Each flattens pytrees, runs the flat machinery in ``interpreters``,
and unflattens the result.
"""

from __future__ import annotations

import functools

import numpy as np

from fgrad._src import core, dtypes, grad_cache
from fgrad._src.core import Tracer, get_aval
from fgrad._src.interpreters import ad
from fgrad._src.interpreters.partial_eval import trace_to_jaxpr
from fgrad._src.tree import tree_flatten, tree_unflatten

# --------------------------------------------------------------------------- helpers


def _check_leaves(leaves, what):
    for leaf in leaves:
        if not core.is_array_like(leaf):
            raise TypeError(
                f"{what} contains a value of type {type(leaf).__name__}, which is not an "
                "array; pytree leaves must be NumPy arrays or Python scalars (use a "
                "tuple, list or dict to group them)."
            )
        if not isinstance(leaf, Tracer):
            get_aval(leaf)  # rejects unsupported dtypes with a clear message


def flatten_fun(f, in_tree, what="function output"):
    """A flat version of ``f`` and a dict that receives the output tree when it runs."""
    store: dict = {}

    def f_flat(*leaves):
        out = f(*tree_unflatten(in_tree, leaves))
        out_leaves, store["tree"] = tree_flatten(out)
        _check_leaves(out_leaves, what)
        return out_leaves

    return f_flat, store


def _split_aux(f, has_aux, name):
    """Wrap ``f`` so it returns ``(out, aux)``; aux is None when ``has_aux`` is False."""
    if not has_aux:
        return lambda *args: (f(*args), None)

    def f_aux(*args):
        result = f(*args)
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            raise TypeError(
                f"{name} with has_aux=True requires the function to return a pair "
                f"(output, aux), got {type(result).__name__}"
            )
        return tuple(result)

    return f_aux


def _lower_to_primal(x):
    """Strip JVP tracers left by a finished transform from auxiliary outputs."""
    while isinstance(x, ad.JVPTracer) and x._trace.main.level > core.current_level():
        x = x.primal
    return x


def _ct_like(aval):
    return np.zeros(aval.shape, aval.dtype)


def _instantiate(x, aval):
    if isinstance(x, ad.Zero):
        return _ct_like(aval)
    return x


# --------------------------------------------------------------------------- vjp


def vjp(f, *primals, has_aux=False):
    """Return ``(f(*primals), vjp_fn)``; ``vjp_fn(ct)`` returns one cotangent per primal.

    >>> import fgrad.numpy as fnp
    >>> out, f_vjp = vjp(fnp.sin, 0.0)
    >>> [float(g) for g in f_vjp(np.float64(1.0))]
    [1.0]
    """
    primals_flat, in_tree = tree_flatten(primals)
    _check_leaves(primals_flat, "vjp primals")
    f_aux = _split_aux(f, has_aux, "vjp")
    out_flat, lin, out_tree, aux, n_out = _linearize_with_aux(f_aux, primals_flat, in_tree)
    out = tree_unflatten(out_tree, out_flat)
    in_avals = [get_aval(x) for x in primals_flat]
    out_avals = [get_aval(x) for x in out_flat]

    def vjp_fn(ct):
        ct_flat, ct_tree = tree_flatten(ct)
        if ct_tree != out_tree:
            raise ValueError(
                f"vjp cotangent has structure {ct_tree}, but the function's output has "
                f"structure {out_tree}"
            )
        checked = [_check_cotangent(c, aval) for c, aval in zip(ct_flat, out_avals)]
        cts_in = _transpose_linear(lin, checked, n_out)
        grads = [
            _cast_ct(_instantiate(g, aval), aval) for g, aval in zip(cts_in, in_avals)
        ]
        return tree_unflatten(in_tree, grads)

    return (out, vjp_fn, aux) if has_aux else (out, vjp_fn)


def _linearize_with_aux(f_aux, primals_flat, in_tree):
    store: dict = {}

    def f_flat(*leaves):
        out, aux = f_aux(*tree_unflatten(in_tree, leaves))
        out_leaves, store["tree"] = tree_flatten(out)
        _check_leaves(out_leaves, "function output")
        aux_leaves, store["aux_tree"] = tree_flatten(aux)
        store["n_out"] = len(out_leaves)
        return out_leaves + aux_leaves

    outs, lin = linearize(f_flat, primals_flat)
    n_out = store["n_out"]
    aux = tree_unflatten(store["aux_tree"], [_lower_to_primal(x) for x in outs[n_out:]])
    return outs[:n_out], lin, store["tree"], aux, n_out


def linearize(f_flat, primals_flat):
    """Linearize a flat function; only float inputs get tangent inputs.

    Returns ``(primals_out, (linear ClosedJaxpr, float input positions))``.
    """
    float_positions = [i for i, x in enumerate(primals_flat) if dtypes.is_float(get_aval(x).dtype)]

    def f_float(*float_args):
        args = list(primals_flat)
        for i, x in zip(float_positions, float_args):
            args[i] = x
        return f_flat(*args)

    outs, lin = ad.linearize_flat(f_float, [primals_flat[i] for i in float_positions])
    return outs, (lin, float_positions, len(primals_flat))


def _transpose_linear(lin_and_positions, cts_out, n_out):
    lin, float_positions, n_in = lin_and_positions
    n_lin_outs = len(lin.jaxpr.outs)
    # Auxiliary outputs (beyond n_out) get zero cotangents.
    cts = list(cts_out) + [ad.Zero(x.aval) for x in lin.jaxpr.outs[n_out:n_lin_outs]]
    cts_float = ad.backward_pass(lin.jaxpr, lin.consts, cts)
    result: list = [ad.Zero(None)] * n_in
    for i, ct in zip(float_positions, cts_float):
        result[i] = ct
    return result


def _check_cotangent(ct, aval):
    if not core.is_array_like(ct):
        raise TypeError(f"vjp cotangent leaves must be arrays, got {type(ct).__name__}")
    ct_aval = get_aval(ct)
    if ct_aval.shape != aval.shape:
        raise ValueError(
            f"vjp cotangent has shape {ct_aval.shape}, but the output it pairs with has "
            f"shape {aval.shape}"
        )
    if dtypes.is_float(aval.dtype) and ct_aval.dtype != aval.dtype and not ct_aval.weak_type:
        raise TypeError(
            f"vjp cotangent has dtype {ct_aval.dtype}, but the output it pairs with has "
            f"dtype {aval.dtype}; cast it with .astype({aval.dtype.name})"
        )
    return _as_dtype(ct, aval.dtype)


def _cast_ct(ct, aval):
    """Gradients have the dtype of their primal (float32 in, float32 out)."""
    ct_aval = get_aval(ct)
    if ct_aval.dtype == aval.dtype:
        return ct
    from fgrad._src.lax import lax

    return lax.convert_element_type(ct, aval.dtype)


# --------------------------------------------------------------------------- grad


def _normalize_argnums(argnums, nargs, name):
    single = isinstance(argnums, int)
    is_int = lambda n: isinstance(n, int) and not isinstance(n, bool)  # noqa: E731
    if not (is_int(argnums) or (isinstance(argnums, (tuple, list))
                                and all(is_int(n) for n in argnums))):
        raise TypeError(f"{name}: argnums must be an int or a tuple of ints, got {argnums!r}")
    nums = (argnums,) if single else tuple(argnums)
    if not nums:
        raise ValueError(f"{name}: argnums must not be empty")
    for n in nums:
        if not isinstance(n, int) or not -nargs <= n < nargs:
            raise ValueError(
                f"{name}: argnums={argnums!r} is out of range for a function called with "
                f"{nargs} positional argument{'s' if nargs != 1 else ''}"
            )
    return single, tuple(n % nargs for n in nums)


def _check_differentiable(args, argnums, name):
    for n in argnums:
        for leaf in tree_flatten(args[n])[0]:
            _check_leaves([leaf], f"argument {n}")
            dtype = get_aval(leaf).dtype
            if not dtypes.is_float(dtype):
                raise TypeError(
                    f"{name} requires floating-point inputs, but argument {n} (argnums) has "
                    f"dtype {dtype}. Convert it with .astype(float), or leave it out of argnums "
                    "to treat it as a constant."
                )


def value_and_grad(f, argnums=0, has_aux=False):
    """Return a function computing ``(f(*args), grad f(*args))`` in one pass.

    >>> import fgrad.numpy as fnp
    >>> value, g = value_and_grad(lambda x: fnp.sum(x ** 2))(np.array([1.0, 2.0]))
    >>> float(value), g
    (5.0, array([2., 4.]))
    """

    @functools.wraps(f)
    def value_and_grad_f(*args, **kwargs):
        single, nums = _normalize_argnums(argnums, len(args), "grad")
        _check_differentiable(args, nums, "grad")

        def f_partial(*diff_args):
            full = list(args)
            for n, a in zip(nums, diff_args):
                full[n] = a
            return f(*full, **kwargs)

        f_aux = _split_aux(f_partial, has_aux, "grad")
        diff_flat, in_tree = tree_flatten(tuple(args[n] for n in nums))
        if grad_cache.applicable(diff_flat):
            out, aux, grads_flat = grad_cache.value_and_grad_recorded(
                f_aux, diff_flat, in_tree, _check_scalar_output
            )
        else:
            out, aux, grads_flat = _value_and_grad_traced(f_aux, diff_flat, in_tree)
        grads = tree_unflatten(in_tree, grads_flat)
        grads = grads[0] if single else grads
        value = (out, aux) if has_aux else out
        return value, grads

    return value_and_grad_f


def _value_and_grad_traced(f_aux, diff_flat, in_tree):
    """Linearize and transpose at the current trace (under other transforms)."""
    out_flat, lin, out_tree, aux, n_out = _linearize_with_aux(f_aux, diff_flat, in_tree)
    _check_scalar_output(out_flat, out_tree)
    (out,) = out_flat
    ct = np.ones((), get_aval(out).dtype)
    cts_in = _transpose_linear(lin, [ct], n_out)
    in_avals = [get_aval(x) for x in diff_flat]
    grads_flat = [_cast_ct(_instantiate(g, a), a) for g, a in zip(cts_in, in_avals)]
    return out, aux, grads_flat


def _check_scalar_output(out_flat, out_tree):
    if len(out_flat) != 1 or out_tree.node_type is not None:
        raise TypeError(
            f"grad requires a function returning a single scalar, got a pytree {out_tree}; "
            "use fg.vjp or fg.jacrev for structured outputs."
        )
    aval = get_aval(out_flat[0])
    if aval.shape != ():
        raise TypeError(
            f"grad requires a scalar output, but the function returned shape {aval.shape} "
            f"({aval.str_short()}). Use fg.vjp or fg.jacrev for non-scalar outputs, or "
            "reduce it first, e.g. with .sum()."
        )
    if not dtypes.is_float(aval.dtype):
        raise TypeError(
            f"grad requires a floating-point output, got {aval.str_short()}; "
            "the function's result does not depend differentiably on its inputs."
        )


def grad(f, argnums=0, has_aux=False):
    """Return a function computing the gradient of scalar-valued ``f``.

    >>> float(grad(lambda x: x ** 2)(4.0))
    8.0
    """
    value_and_grad_f = value_and_grad(f, argnums, has_aux)

    @functools.wraps(f)
    def grad_f(*args, **kwargs):
        value, grads = value_and_grad_f(*args, **kwargs)
        return (grads, value[1]) if has_aux else grads

    return grad_f


# --------------------------------------------------------------------------- jvp


def jvp(f, primals, tangents):
    """Forward mode: return ``(f(*primals), J @ tangents)``.

    >>> import fgrad.numpy as fnp
    >>> [float(v) for v in jvp(fnp.sin, (0.0,), (1.0,))]
    [0.0, 1.0]
    """
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError("jvp: primals and tangents must be tuples (one entry per argument)")
    primals_flat, in_tree = tree_flatten(tuple(primals))
    tangents_flat, tangent_tree = tree_flatten(tuple(tangents))
    if in_tree != tangent_tree:
        raise ValueError(
            f"jvp: primals have structure {in_tree} but tangents have structure {tangent_tree}"
        )
    _check_leaves(primals_flat, "jvp primals")
    _check_leaves(tangents_flat, "jvp tangents")
    tangents_in = [_check_tangent(t, get_aval(p)) for p, t in zip(primals_flat, tangents_flat)]
    f_flat, store = flatten_fun(f, in_tree)
    outs, tangents_out = ad.jvp_flat(f_flat, primals_flat, tangents_in)
    tangents_out = [
        _instantiate(t, ad.tangent_aval(get_aval(o))) for o, t in zip(outs, tangents_out)
    ]
    return tree_unflatten(store["tree"], outs), tree_unflatten(store["tree"], tangents_out)


def _check_tangent(t, aval):
    t_aval = get_aval(t)
    if t_aval.shape != aval.shape:
        raise ValueError(
            f"jvp: tangent shape {t_aval.shape} does not match primal shape {aval.shape}"
        )
    if not dtypes.is_float(aval.dtype):
        return ad.Zero(ad.tangent_aval(aval))
    if t_aval.dtype != aval.dtype and not t_aval.weak_type:
        raise TypeError(
            f"jvp: tangent dtype {t_aval.dtype} does not match primal dtype {aval.dtype}"
        )
    return _as_dtype(t, aval.dtype)


def _as_dtype(x, dtype):
    """A concrete or traced value in ``dtype`` (weak Python-scalar types resolved)."""
    if isinstance(x, Tracer):
        from fgrad._src.lax import lax

        return lax.convert_element_type(x, dtype)
    return np.asarray(x, dtype)


# --------------------------------------------------------------------------- jacobians


def _std_basis(aval):
    n = aval.size
    eye = np.eye(n, dtype=aval.dtype)
    return [eye[k].reshape(aval.shape) for k in range(n)]


def _stack_columns(columns, out_aval, in_shape):
    """Stack Jacobian columns (one per input element) into ``out_shape + in_shape``."""
    import fgrad._src.numpy.lax_numpy as fnp

    out_shape = out_aval.shape
    n_in = int(np.prod(in_shape, dtype=np.int64))
    if n_in == 0:
        return np.zeros(tuple(out_shape) + tuple(in_shape), out_aval.dtype)
    stacked = fnp.stack(columns, axis=-1)
    return fnp.reshape(stacked, tuple(out_shape) + tuple(in_shape))


def _jacobian_setup(f, argnums, args, kwargs, name):
    """Validate ``argnums`` and flatten the differentiated arguments for jacfwd/jacrev.

    Returns ``(single, diff_flat, in_tree, f_flat, store)``; ``f_flat`` maps the
    flat differentiated leaves to flat outputs and leaves the output tree in
    ``store["tree"]``.
    """
    single, nums = _normalize_argnums(argnums, len(args), name)
    _check_differentiable(args, nums, name)
    diff_flat, in_tree = tree_flatten(tuple(args[n] for n in nums))
    store: dict = {}

    def f_flat(*leaves):
        full = list(args)
        for n, a in zip(nums, tree_unflatten(in_tree, leaves)):
            full[n] = a
        out_leaves, store["tree"] = tree_flatten(f(*full, **kwargs))
        return out_leaves

    return single, diff_flat, in_tree, f_flat, store


def jacfwd(f, argnums=0):
    """Dense Jacobian by forward mode (one JVP of the linearized function per input element).

    >>> import fgrad.numpy as fnp
    >>> jacfwd(lambda x: x * 2.0)(np.ones(2))
    array([[2., 0.],
           [0., 2.]])
    """

    @functools.wraps(f)
    def jacfun(*args, **kwargs):
        single, diff_flat, in_tree, f_flat, store = _jacobian_setup(
            f, argnums, args, kwargs, "jacfwd"
        )
        outs, (lin, _, _) = linearize(f_flat, diff_flat)
        in_avals = [get_aval(x) for x in diff_flat]
        columns_per_out = [[] for _ in outs]
        for i, aval in enumerate(in_avals):
            for basis in _std_basis(aval):
                tangents = [np.zeros(a.shape, a.dtype) for a in in_avals]
                tangents[i] = basis
                col = core.eval_jaxpr(lin.jaxpr, lin.consts, tangents)
                for j, c in enumerate(col):
                    columns_per_out[j].append((i, c))
        return _assemble(outs, store["tree"], in_avals, in_tree, columns_per_out, single)

    return jacfun


def _assemble(outs, out_tree, in_avals, in_tree, columns_per_out, single):
    out_leaves = []
    for j, out in enumerate(outs):
        per_input = []
        for i, aval in enumerate(in_avals):
            cols = [c for k, c in columns_per_out[j] if k == i]
            per_input.append(_stack_columns(cols, ad.tangent_aval(get_aval(out)), aval.shape))
        jac_tree = tree_unflatten(in_tree, per_input)
        out_leaves.append(jac_tree[0] if single else jac_tree)
    return tree_unflatten(out_tree, out_leaves)


def jacrev(f, argnums=0):
    """Dense Jacobian by reverse mode (one VJP per output element).

    >>> import fgrad.numpy as fnp
    >>> jacrev(lambda x: fnp.sum(x ** 2))(np.array([1.0, 2.0]))
    array([2., 4.])
    """

    @functools.wraps(f)
    def jacfun(*args, **kwargs):
        single, diff_flat, in_tree, f_flat, store = _jacobian_setup(
            f, argnums, args, kwargs, "jacrev"
        )
        outs, lin = linearize(f_flat, diff_flat)
        out_avals = [get_aval(o) for o in outs]
        in_avals = [get_aval(x) for x in diff_flat]
        rows_per_out = []
        for j, aval in enumerate(out_avals):
            rows = []
            for basis in _std_basis(aval):
                cts = [np.zeros(a.shape, a.dtype) for a in out_avals]
                cts[j] = basis
                grads = _transpose_linear(lin, cts, len(outs))
                rows.append([_cast_ct(_instantiate(g, a), a) for g, a in zip(grads, in_avals)])
            rows_per_out.append(rows)
        return _assemble_rows(outs, store["tree"], in_avals, in_tree, rows_per_out, single)

    return jacfun


def _assemble_rows(outs, out_tree, in_avals, in_tree, rows_per_out, single):
    import fgrad._src.numpy.lax_numpy as fnp

    out_leaves = []
    for out, rows in zip(outs, rows_per_out):
        out_shape = get_aval(out).shape
        per_input = []
        for i, aval in enumerate(in_avals):
            if not rows:
                per_input.append(np.zeros(tuple(out_shape) + aval.shape, aval.dtype))
                continue
            stacked = fnp.stack([row[i] for row in rows], axis=0)
            per_input.append(fnp.reshape(stacked, tuple(out_shape) + aval.shape))
        jac_tree = tree_unflatten(in_tree, per_input)
        out_leaves.append(jac_tree[0] if single else jac_tree)
    return tree_unflatten(out_tree, out_leaves)


def hessian(f, argnums=0):
    """Dense Hessian: ``jacfwd(jacrev(f))``.

    >>> import fgrad.numpy as fnp
    >>> hessian(lambda x: fnp.sum(x ** 3))(np.array([1.0, 2.0]))
    array([[ 6.,  0.],
           [ 0., 12.]])
    """
    return jacfwd(jacrev(f, argnums), argnums)


# --------------------------------------------------------------------------- make_jaxpr


def make_jaxpr(f, static_argnums=()):
    """Return a function that traces ``f`` and returns its ``ClosedJaxpr``.

    >>> import fgrad.numpy as fnp
    >>> print(make_jaxpr(lambda x: fnp.sum(fnp.tanh(x) * x))(np.ones(3)))
    { lambda ; a:f64[3]. let
        b:f64[3] = tanh a
        c:f64[3] = mul b a
        d:f64[] = reduce_sum[axes=(0,)] c
      in (d,) }
    """
    static = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)

    @functools.wraps(f)
    def make_jaxpr_f(*args):
        dynamic_args = tuple(a for i, a in enumerate(args) if i not in static)
        leaves, in_tree = tree_flatten(dynamic_args)
        _check_leaves(leaves, "make_jaxpr arguments")

        def f_dynamic(*dyn):
            it = iter(dyn)
            full = [args[i] if i in static else next(it) for i in range(len(args))]
            return f(*full)

        f_flat, _ = flatten_fun(f_dynamic, in_tree)
        return trace_to_jaxpr(f_flat, [get_aval(x) for x in leaves])

    return make_jaxpr_f


def stop_gradient(x):
    """Identity on values; zero gradient (also under nested ``grad``).

    >>> float(grad(lambda x: x * stop_gradient(x))(3.0))
    3.0
    """
    from fgrad._src.lax import lax
    from fgrad._src.tree import tree_map

    def stop(leaf):
        if dtypes.is_float(get_aval(leaf).dtype):
            return lax.stop_gradient(core.to_numpy(leaf) if not isinstance(leaf, Tracer) else leaf)
        return leaf

    return tree_map(stop, x)
