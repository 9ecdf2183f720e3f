"""The public transforms: grad, value_and_grad, vjp, jvp, jacfwd, jacrev, hessian,
make_jaxpr. Each flattens pytrees, runs the flat machinery in ``interpreters``,
and unflattens the result.
"""

from __future__ import annotations

import functools
import operator

import numpy as np

from fgrad._src import core, dtypes, grad_cache
from fgrad._src.core import Tracer, get_aval
from fgrad._src.errors import ConcretizationError, check_callable
from fgrad._src.interpreters import ad, batching
from fgrad._src.interpreters.partial_eval import trace_to_jaxpr
from fgrad._src.tree import LEAF, tree_flatten, tree_unflatten

# --------------------------------------------------------------------------- helpers


def _check_leaves(leaves, what):
    for leaf in leaves:
        if not core.is_array_like(leaf):
            if isinstance(leaf, np.ndarray):
                get_aval(leaf)  # a masked array: raises naming it
            raise TypeError(
                f"{what} contains a value of type {type(leaf).__name__}, which is not an "
                "array; pytree leaves must be NumPy arrays or Python scalars (use a "
                "tuple, list or dict to group them)."
            )
        if not isinstance(leaf, Tracer):
            get_aval(leaf)  # rejects unsupported dtypes with a clear message


def _flatten_output(out):
    """``tree_flatten(out)``, each Tensor of the facade (``F.mse_loss`` of a traced input)
    replaced by its value (``__fgrad_array__``)."""
    leaves, tree = tree_flatten(out)
    return [_array_of(leaf) for leaf in leaves], tree


def _array_of(leaf):
    to_array = getattr(type(leaf), "__fgrad_array__", None)
    return leaf if to_array is None else to_array(leaf)


def flatten_fun(f, in_tree, what="function output"):
    """A flat version of ``f`` and a dict that receives the output tree when it runs."""
    store: dict = {}

    def f_flat(*leaves):
        out = f(*tree_unflatten(in_tree, leaves))
        out_leaves, store["tree"] = _flatten_output(out)
        _check_leaves(out_leaves, what)
        return out_leaves

    return f_flat, store


def _split_aux(f, has_aux, name):
    """Wrap ``f`` so it returns ``(out, aux)``; aux is None when ``has_aux`` is False."""
    if not has_aux:
        return lambda *args: (f(*args), None)

    return lambda *args: _check_aux_pair(f(*args), name)


def _check_aux_pair(result, name):
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        got = (f"one {get_aval(result).str_short()} value" if isinstance(result, Tracer)
               else type(result).__name__)
        raise TypeError(
            f"{name} with has_aux=True requires the function to return a pair "
            f"(output, aux), got {got}"
        )
    return tuple(result)


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
    check_callable(f, "vjp")
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
        out_leaves, store["tree"] = _flatten_output(out)
        _check_leaves(out_leaves, "function output")
        aux_leaves, store["aux_tree"] = _flatten_output(aux)
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
    normalized = tuple(n % nargs for n in nums)
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"{name}: argnums={argnums!r} names an argument more than once; "
                         "list each argument once")
    return single, normalized


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


# NB: the array dtypes of the one-argument fast path of value_and_grad; each is
# supported and floating, so such an argument passes _check_differentiable.
_FAST_DTYPES = frozenset({np.dtype(np.float32), np.dtype(np.float64)})


def _argnums_normalizer(argnums):
    """``nargs -> (single, nums)``, memoized per ``nargs`` when ``argnums`` is immutable."""
    if not isinstance(argnums, (int, tuple)):
        return lambda nargs: _normalize_argnums(argnums, nargs, "grad")
    memo: dict = {}

    def normalize(nargs):
        result = memo.get(nargs)
        if result is None:
            result = memo[nargs] = _normalize_argnums(argnums, nargs, "grad")
        return result

    return normalize


def value_and_grad(f, argnums=0, has_aux=False):
    """Return a function computing ``(f(*args), grad f(*args))`` in one pass.

    >>> import fgrad.numpy as fnp
    >>> value, g = value_and_grad(lambda x: fnp.sum(x ** 2))(np.array([1.0, 2.0]))
    >>> float(value), g
    (5.0, array([2., 4.]))
    """
    check_callable(f, "value_and_grad")
    normalize = _argnums_normalizer(argnums)
    site = grad_cache.Site()  # this function's last recording and program

    @functools.wraps(f)
    def value_and_grad_f(*args, **kwargs):
        single, nums = normalize(len(args))
        leaf = args[nums[0]]
        # NB: the common case, one float ndarray (or Python float) differentiated at top
        # level, skips the pytree machinery (in_tree None); all else takes the general path.
        if (single and ((type(leaf) is np.ndarray and leaf.dtype in _FAST_DTYPES)
                        or type(leaf) is float) and grad_cache.at_top_level()):
            in_tree, diff_flat = None, [leaf]
        else:
            _check_differentiable(args, nums, "grad")
            diff_flat, in_tree = tree_flatten(tuple(args[n] for n in nums))
            # NB: nothing to differentiate (argnums name empty pytrees): the traced path
            # returns the empty structures, as JAX does.
            if not diff_flat or not grad_cache.applicable(diff_flat):
                return _value_and_grad_traced(f, args, kwargs, nums, single, has_aux,
                                              diff_flat, in_tree)
        trees: list = []  # the output's and the aux's tree, filled by f_flat

        def f_flat(*leaves):
            full = list(args)
            if in_tree is None:
                full[nums[0]] = leaves[0]
            else:
                for n, a in zip(nums, tree_unflatten(in_tree, leaves)):
                    full[n] = a
            return _flat_outputs(f(*full, **kwargs), has_aux, trees)

        try:
            outs, grads_flat = grad_cache.value_and_grad_recorded(
                site, f_flat, diff_flat, lambda outs: _check_recorded_output(outs, trees[0])
            )
        except ConcretizationError:
            outs = None  # NB: handled below, outside this block (no chained traceback)
        if outs is None:
            # NB: staging the recording traces custom_vjp rules abstractly; one that
            # branches on values runs the traced way instead, where its fwd and bwd see
            # concrete values (f runs a second time).
            diff_flat, in_tree = tree_flatten(tuple(args[n] for n in nums))
            return _value_and_grad_traced(f, args, kwargs, nums, single, has_aux,
                                          diff_flat, in_tree)
        if in_tree is None:
            grads = grads_flat[0]
        else:
            grads = tree_unflatten(in_tree, grads_flat)
            grads = grads[0] if single else grads
        if not has_aux:
            return outs[0].val, grads
        aux = tree_unflatten(trees[1], [t.val for t in outs[trees[0].num_leaves:]])
        return (outs[0].val, aux), grads

    return value_and_grad_f


def _flat_outputs(result, has_aux, trees):
    """The leaves of ``f``'s output, then of its aux; their trees are appended to ``trees``."""
    out, aux = _check_aux_pair(result, "grad") if has_aux else (result, None)
    # NB: a tracer output is one leaf: no need to flatten it.
    out_leaves, out_tree = ([out], LEAF) if isinstance(out, Tracer) else _flatten_output(out)
    trees.append(out_tree)
    if not has_aux:
        return out_leaves
    aux_leaves, aux_tree = _flatten_output(aux)
    trees.append(aux_tree)
    return out_leaves + aux_leaves


def _check_recorded_output(out_tracers, out_tree):
    if out_tree is LEAF:
        aval = out_tracers[0].aval
        if aval.shape == () and aval.dtype.kind == "f":
            return  # NB: the common case, a float scalar, without building the error path
    _check_scalar_output([t.val for t in out_tracers[:out_tree.num_leaves]], out_tree)


def _value_and_grad_traced(f, args, kwargs, nums, single, has_aux, diff_flat, in_tree):
    """Linearize and transpose at the current trace (under other transforms)."""

    def f_partial(*diff_args):
        full = list(args)
        for n, a in zip(nums, diff_args):
            full[n] = a
        return f(*full, **kwargs)

    f_aux = _split_aux(f_partial, has_aux, "grad")
    out_flat, lin, out_tree, aux, n_out = _linearize_with_aux(f_aux, diff_flat, in_tree)
    _check_scalar_output(out_flat, out_tree)
    (out,) = out_flat
    ct = np.ones((), get_aval(out).dtype)
    cts_in = _transpose_linear(lin, [ct], n_out)
    in_avals = [get_aval(x) for x in diff_flat]
    grads_flat = [_cast_ct(_instantiate(g, a), a) for g, a in zip(cts_in, in_avals)]
    grads = tree_unflatten(in_tree, grads_flat)
    grads = grads[0] if single else grads
    return ((out, aux) if has_aux else out), grads


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
    check_callable(f, "grad")
    value_and_grad_f = value_and_grad(f, argnums, has_aux)

    @functools.wraps(f)
    def grad_f(*args, **kwargs):
        value, grads = value_and_grad_f(*args, **kwargs)
        return (grads, value[1]) if has_aux else grads

    return grad_f


# --------------------------------------------------------------------------- jvp


def jvp(f, primals, tangents, has_aux=False):
    """Forward mode: return ``(f(*primals), J @ tangents)``; with ``has_aux``, ``f``
    returns ``(output, aux)`` and ``jvp`` returns ``(output, J @ tangents, aux)``.

    >>> import fgrad.numpy as fnp
    >>> [float(v) for v in jvp(fnp.sin, (0.0,), (1.0,))]
    [0.0, 1.0]
    >>> out, tangent, aux = jvp(lambda x: (x * 3.0, x + 1.0), (2.0,), (1.0,), has_aux=True)
    >>> float(out), float(tangent), float(aux)
    (6.0, 3.0, 3.0)
    """
    check_callable(f, "jvp")
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
    f_flat, store = flatten_fun(_split_aux(f, has_aux, "jvp"), in_tree)
    outs, tangents_out = ad.jvp_flat(f_flat, primals_flat, tangents_in)
    tangents_out = [
        _instantiate(t, ad.tangent_aval(get_aval(o))) for o, t in zip(outs, tangents_out)
    ]
    out, aux = tree_unflatten(store["tree"], outs)
    tangent_out, _ = tree_unflatten(store["tree"], tangents_out)
    return (out, tangent_out, aux) if has_aux else (out, tangent_out)


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


def _std_basis(avals):
    """The standard basis of the flattened, concatenated ``avals``, one stack per aval.

    With ``B`` elements in all, aval ``i`` gets a ``(B, *shape_i)`` array whose row ``k``
    is the ``k``-th one-hot vector restricted to that aval (the identity, reshaped).
    """
    sizes = [aval.size for aval in avals]
    offsets = np.cumsum([0, *sizes])
    total = int(offsets[-1])
    return [
        np.eye(total, dtype=aval.dtype)[:, offsets[i]: offsets[i + 1]].reshape(total, *aval.shape)
        for i, aval in enumerate(avals)
    ]


def _map_basis(fun, unbatched, basis, out_avals):
    """``fun(*unbatched, *row)`` for every row of the stacked ``basis``, in one batched
    evaluation; returns one ``(B, *out_aval.shape)`` array per output.

    NB: a basis of one row is evaluated unbatched and given its axis back, so a
    ``grad``-sized Jacobian (jacrev of a scalar) stages what one VJP would.
    """
    from fgrad._src.lax import lax

    size = basis[0].shape[0] if basis else 0
    if size == 0:
        return [np.zeros((0, *aval.shape), aval.dtype) for aval in out_avals]
    if size == 1:
        outs = fun(*unbatched, *[b[0] for b in basis])
        return [lax.expand_dims(out, (0,)) for out in outs]
    in_avals = [get_aval(x) for x in unbatched]
    in_avals += [core.ShapedArray(b.shape[1:], b.dtype) for b in basis]
    program = trace_to_jaxpr(fun, in_avals)
    in_batched = [False] * len(unbatched) + [True] * len(basis)
    outs, _ = batching.batch_eval_jaxpr(
        program.jaxpr, program.consts, [*unbatched, *basis], in_batched, instantiate=True
    )
    return outs


def _row_blocks(stacked, avals):
    """Split the rows of a ``(B, ...)`` stack into one block per aval of the basis."""
    from fgrad._src.lax import lax

    if len(avals) == 1:
        return [stacked]
    shape = get_aval(stacked).shape
    blocks, start = [], 0
    for aval in avals:
        zeros = (0,) * (len(shape) - 1)
        blocks.append(lax.slice(stacked, (start, *zeros), (start + aval.size, *shape[1:])))
        start += aval.size
    return blocks


def _jacobian_block(stacked, out_shape, in_shape, dtype, stacked_over_inputs):
    """One Jacobian block of shape ``out_shape + in_shape``.

    ``stacked`` holds one column per input element, ``(n_in, *out_shape)``, when
    ``stacked_over_inputs`` (jacfwd), else one row per output element, ``(n_out,
    *in_shape)`` (jacrev).
    """
    import fgrad._src.numpy.lax_numpy as fnp

    shape = tuple(out_shape) + tuple(in_shape)
    if 0 in shape:
        return np.zeros(shape, dtype)
    if stacked_over_inputs and out_shape and int(np.prod(in_shape, dtype=np.int64)) > 1:
        stacked = fnp.moveaxis(stacked, 0, -1)
    return fnp.reshape(stacked, shape)


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
        out_leaves, store["tree"] = _flatten_output(f(*full, **kwargs))
        return out_leaves

    return single, diff_flat, in_tree, f_flat, store


def _assemble(blocks, out_tree, in_tree, single):
    """Nest ``blocks[j][i]`` (output j, input i) as the output tree of input trees."""
    out_leaves = []
    for per_input in blocks:
        jac_tree = tree_unflatten(in_tree, per_input)
        out_leaves.append(jac_tree[0] if single else jac_tree)
    return tree_unflatten(out_tree, out_leaves)


def jacfwd(f, argnums=0):
    """Dense Jacobian by forward mode: the linearized function pushes the whole stacked
    input basis forward in one batched evaluation.

    >>> import fgrad.numpy as fnp
    >>> jacfwd(lambda x: x * 2.0)(np.ones(2))
    array([[2., 0.],
           [0., 2.]])
    """
    check_callable(f, "jacfwd")

    @functools.wraps(f)
    def jacfun(*args, **kwargs):
        single, diff_flat, in_tree, f_flat, store = _jacobian_setup(
            f, argnums, args, kwargs, "jacfwd"
        )
        outs, (lin, _, _) = linearize(f_flat, diff_flat)
        in_avals = [get_aval(x) for x in diff_flat]
        n_res = len(lin.consts)

        def push(*args):  # (residuals..., tangents...) -> output tangents
            return core.eval_jaxpr(lin.jaxpr, args[:n_res], args[n_res:])

        out_avals = [ad.tangent_aval(get_aval(out)) for out in outs]
        columns = _map_basis(push, lin.consts, _std_basis(in_avals), out_avals)
        blocks = [
            [
                _jacobian_block(block, out_aval.shape, in_aval.shape, out_aval.dtype, True)
                for block, in_aval in zip(_row_blocks(stacked, in_avals), in_avals)
            ]
            for stacked, out_aval in zip(columns, out_avals)
        ]
        return _assemble(blocks, store["tree"], in_tree, single)

    return jacfun


def jacrev(f, argnums=0):
    """Dense Jacobian by reverse mode: the transposed linear function pulls the whole
    stacked output basis back in one batched evaluation.

    >>> import fgrad.numpy as fnp
    >>> jacrev(lambda x: fnp.sum(x ** 2))(np.array([1.0, 2.0]))
    array([2., 4.])
    """
    check_callable(f, "jacrev")

    @functools.wraps(f)
    def jacfun(*args, **kwargs):
        single, diff_flat, in_tree, f_flat, store = _jacobian_setup(
            f, argnums, args, kwargs, "jacrev"
        )
        outs, lin = linearize(f_flat, diff_flat)
        out_avals = [get_aval(o) for o in outs]
        for aval in out_avals:
            if not dtypes.is_float(aval.dtype):
                raise TypeError(f"jacrev requires float outputs, got {aval.str_short()} (an "
                                "integer or bool output has no gradient; return floats, or "
                                "use fg.vjp directly)")
        in_avals = [get_aval(x) for x in diff_flat]
        closed, float_positions, n_in = lin
        n_res = len(closed.consts)

        def pull(*args):  # (residuals..., output cotangents...) -> input cotangents
            linear = (core.ClosedJaxpr(closed.jaxpr, args[:n_res]), float_positions, n_in)
            grads = _transpose_linear(linear, list(args[n_res:]), len(outs))
            return [_cast_ct(_instantiate(g, a), a) for g, a in zip(grads, in_avals)]

        rows = _map_basis(pull, closed.consts, _std_basis(out_avals), in_avals)
        rows_per_out = list(zip(*[_row_blocks(stacked, out_avals) for stacked in rows]))
        if not in_avals:
            rows_per_out = [()] * len(out_avals)
        blocks = [
            [
                _jacobian_block(block, out_aval.shape, in_aval.shape, in_aval.dtype, False)
                for block, in_aval in zip(per_input, in_avals)
            ]
            for per_input, out_aval in zip(rows_per_out, out_avals)
        ]
        return _assemble(blocks, store["tree"], in_tree, single)

    return jacfun


def hessian(f, argnums=0):
    """Dense Hessian: ``jacfwd(jacrev(f))``.

    >>> import fgrad.numpy as fnp
    >>> hessian(lambda x: fnp.sum(x ** 3))(np.array([1.0, 2.0]))
    array([[ 6.,  0.],
           [ 0., 12.]])
    """
    check_callable(f, "hessian")
    return jacfwd(jacrev(f, argnums), argnums)


# --------------------------------------------------------------------------- make_jaxpr


def make_jaxpr(f, static_argnums=()):
    """Return a function that traces ``f`` and returns its ``ClosedJaxpr``; keyword
    arguments are traced like positional ones.

    >>> import fgrad.numpy as fnp
    >>> print(make_jaxpr(lambda x: fnp.sum(fnp.tanh(x) * x))(np.ones(3)))
    { lambda ; a:f64[3]. let
        b:f64[3] = tanh a
        c:f64[3] = mul b a
        d:f64[] = reduce_sum[axes=(0,)] c
      in (d,) }
    """
    check_callable(f, "make_jaxpr")
    given = (static_argnums,) if isinstance(static_argnums, (int, np.integer)) else tuple(
        static_argnums)
    given = tuple(operator.index(i) for i in given)

    @functools.wraps(f)
    def make_jaxpr_f(*args, **kwargs):
        static = set()
        for i in given:  # NB: negative positions count from the end, as in JAX
            if not -len(args) <= i < len(args):
                raise ValueError(f"make_jaxpr: static_argnums={given!r} is out of range for "
                                 f"a call with {len(args)} positional arguments")
            static.add(i % len(args))
        dynamic_args = tuple(a for i, a in enumerate(args) if i not in static)
        leaves, in_tree = tree_flatten((dynamic_args, kwargs))
        _check_leaves(leaves, "make_jaxpr arguments")

        def f_dynamic(dyn, dyn_kwargs):
            it = iter(dyn)
            full = [args[i] if i in static else next(it) for i in range(len(args))]
            return f(*full, **dyn_kwargs)

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
