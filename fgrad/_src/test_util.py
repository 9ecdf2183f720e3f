"""Numerical gradient checking: ``fg.test_util.check_grads``.

Forward mode is compared with central finite differences along a random
direction; reverse mode with the inner-product identity
``<vjp(u), v> == <u, J v>``, where ``J v`` is again a finite difference, so a
reverse-mode rule is never checked against the forward-mode one. Higher orders
recurse: the functions ``(x, v) -> jvp(f, x, v)`` and ``(x, u) -> vjp(f, x)(u)``
are checked in turn.
"""

from __future__ import annotations

import numpy as np

from fgrad._src import dtypes
from fgrad._src.core import get_aval
from fgrad._src.tree import tree_flatten, tree_leaves, tree_unflatten

# Step sizes and tolerances by the lowest floating-point precision involved.
_EPS = {np.dtype(np.float32): 2e-3, np.dtype(np.float64): 1e-5}
_TOL = {np.dtype(np.float32): 1e-2, np.dtype(np.float64): 1e-5}
_MODES = ("fwd", "rev")


def check_grads(f, args, order=2, modes=("fwd", "rev"), atol=None, rtol=None, eps=None):
    """Check the derivatives of ``f`` at ``args`` against finite differences.

    ``args`` is a tuple of positional arguments: arrays, Python scalars or pytrees
    of them. Only floating-point leaves are perturbed; integer and boolean leaves
    are held fixed, as ``grad`` treats them as constants.

    - ``"fwd"``: ``jvp(f, args, v)`` for a random direction ``v`` must match
      ``(f(args + eps v) - f(args - eps v)) / (2 eps)``.
    - ``"rev"``: ``vjp`` with a random cotangent ``u`` must satisfy
      ``<vjp(u), v> == <u, J v>`` with ``J v`` from finite differences.
    - ``order`` > 1 recurses into the derivative functions
      ``(x, v) -> jvp(f, x, v)`` and ``(x, u) -> vjp(f, x)(u)`` with both modes,
      so ``order=2`` also checks ``jvp`` of ``vjp``, ``vjp`` of ``vjp`` and so on.

    Derivatives must also keep dtypes: each tangent has its output's dtype and
    each cotangent its input's dtype (float32 in, float32 out).

    Defaults follow the lowest precision among the float inputs and outputs:
    ``eps=1e-5, atol=rtol=1e-5`` in float64 and ``eps=2e-3, atol=rtol=1e-2`` in
    float32; errors are measured in float64. Directions are drawn from a fixed
    seed, so a check is reproducible. Raises ``AssertionError`` naming the check
    that failed (e.g. ``"JVP of VJP"``) and the size of the error.

    >>> import numpy as np
    >>> import fgrad as fg
    >>> import fgrad.numpy as fnp
    >>> def f(x, y):
    ...     return fnp.sum(fnp.sin(x) * y ** 2)
    >>> fg.test_util.check_grads(f, (np.array([0.5, 1.0]), np.array([2.0, 3.0])), order=2)
    >>> @fg.custom_vjp
    ... def bad_square(x):
    ...     return x * x
    >>> bad_square.defvjp(lambda x: (x * x, x), lambda x, g: (g * x,))  # should be 2 * g * x
    >>> try:
    ...     fg.test_util.check_grads(bad_square, (np.array([1.0, 2.0]),), order=1, modes=["rev"])
    ... except AssertionError as e:
    ...     print(str(e).splitlines()[0])
    VJP check failed (float64): inner products differ
    """
    modes = (modes,) if isinstance(modes, str) else tuple(modes)
    for mode in modes:
        if mode not in _MODES:
            raise ValueError(f"check_grads: unknown mode {mode!r}; use 'fwd' and/or 'rev'")
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise ValueError(f"check_grads: order must be a positive integer, got {order!r}")
    if not isinstance(args, (tuple, list)):
        raise TypeError("check_grads: args must be a tuple of positional arguments")
    if not any(np.issubdtype(np.result_type(leaf), np.floating)
               for leaf in tree_leaves(tuple(args))):
        raise TypeError("check_grads: no argument is floating point, so there is no gradient "
                        "to check (pass float arrays, e.g. x.astype(float))")
    rng = np.random.default_rng(0)
    _check_grads(f, tuple(args), order, modes, (atol, rtol, eps), rng, "")


def _check_grads(f, args, order, modes, tols, rng, what):
    if "fwd" in modes:
        name = f"JVP of {what}" if what else "JVP"
        _check_jvp(f, args, tols, rng, name)
        if order > 1:
            tangents = _random_tangents(args, rng)
            _check_grads(_jvp_fun(f), (args, tangents), order - 1, modes, tols, rng, name)
    if "rev" in modes:
        name = f"VJP of {what}" if what else "VJP"
        _check_vjp(f, args, tols, rng, name)
        if order > 1:
            cts = _random_cotangents(f(*args), rng)
            _check_grads(_vjp_fun(f), (args, cts), order - 1, modes, tols, rng, name)


def _jvp_fun(f):
    from fgrad._src.api import jvp

    return lambda primals, tangents: jvp(f, tuple(primals), tuple(tangents))


def _vjp_fun(f):
    from fgrad._src.api import vjp

    def f_vjp(primals, cts):
        _, vjp_fn = vjp(f, *primals)
        return vjp_fn(cts)

    return f_vjp


# --------------------------------------------------------------------------- the two checks


def _check_jvp(f, args, tols, rng, name):
    from fgrad._src.api import jvp

    tangents = _random_tangents(args, rng)
    numeric, tangents, out = _numerical_jvp(f, args, tangents, tols, name)
    atol, rtol, _ = _tolerances(tols, args, out)
    out_primal, out_tangent = jvp(f, args, tangents)
    _check_structure(name, "output", out, out_primal)
    dtype = _precision(args, out)
    primals_f = _float_pairs(out_primal, out_primal)
    tangents_f = _float_pairs(out_primal, out_tangent)
    numeric_f = _float_pairs(out_primal, numeric)
    for i, (p, t, n) in enumerate(zip(primals_f, tangents_f, numeric_f)):
        _check_dtype(name, f"tangent of float output {i}", t, p)
        _assert_close(name, f"float output {i}", t, n, atol, rtol, dtype)


def _check_vjp(f, args, tols, rng, name):
    from fgrad._src.api import vjp

    tangents = _random_tangents(args, rng)
    numeric, tangents, out = _numerical_jvp(f, args, tangents, tols, name)
    atol, rtol, _ = _tolerances(tols, args, out)
    out_primal, vjp_fn = vjp(f, *args)
    _check_structure(name, "output", out, out_primal)
    cts = _random_cotangents(out_primal, rng)
    cts_in = vjp_fn(cts)
    _check_structure(name, "cotangent", tuple(args), cts_in)
    args_f = _float_pairs(tuple(args), tuple(args))
    for i, (ct, primal) in enumerate(zip(_float_pairs(tuple(args), cts_in), args_f)):
        _check_dtype(name, f"cotangent of float input {i}", ct, primal)
    lhs = _inner(_float_pairs(tuple(args), cts_in), _float_pairs(tuple(args), tangents))
    rhs = _inner(_float_pairs(out_primal, cts), _float_pairs(out_primal, numeric))
    dtype = _precision(args, out)
    _assert_close(name, "inner products", np.float64(lhs), np.float64(rhs), atol, rtol, dtype)


# --------------------------------------------------------------------------- helpers


def _is_float_leaf(x) -> bool:
    return dtypes.is_float(get_aval(x).dtype)


def _float_pairs(reference_tree, tree):
    """The leaves of ``tree`` at the positions of ``reference_tree``'s float leaves."""
    ref_leaves, _ = tree_flatten(reference_tree)
    leaves, _ = tree_flatten(tree)
    return [x for r, x in zip(ref_leaves, leaves) if _is_float_leaf(r)]


def _random_like(x, rng):
    aval = get_aval(x)
    if not dtypes.is_float(aval.dtype):
        return x  # held fixed; jvp ignores the tangent of a non-float input
    return rng.standard_normal(aval.shape).astype(aval.dtype)


def _random_tangents(args, rng):
    leaves, tree = tree_flatten(tuple(args))
    return tree_unflatten(tree, [_random_like(x, rng) for x in leaves])


def _random_cotangents(out, rng):
    leaves, tree = tree_flatten(out)
    cts = [
        _random_like(x, rng) if _is_float_leaf(x) else np.zeros(np.shape(x), get_aval(x).dtype)
        for x in leaves
    ]
    return tree_unflatten(tree, cts)


def _perturb(x, t, step):
    """``x + step * t`` in the dtype of ``x`` (Python floats stay Python floats)."""
    if not _is_float_leaf(x):
        return x
    value = np.asarray(x, np.float64) + step * np.asarray(t, np.float64)
    if type(x) is float:
        return float(value)
    return value.astype(get_aval(x).dtype)


def _numerical_jvp(f, args, tangents, tols, name):
    """Central differences along ``tangents``.

    Returns the difference quotients (float64), the tangents actually used (the
    rounded step ``(x+ - x-) / (2 eps)`` in each input's dtype, so rounding of the
    perturbed inputs does not count as an error) and ``f(*args)``.
    """
    out = f(*args)
    _, _, eps = _tolerances(tols, args, out)
    leaves, tree = tree_flatten(tuple(args))
    t_leaves, _ = tree_flatten(tangents)
    plus = [_perturb(x, t, eps) for x, t in zip(leaves, t_leaves)]
    minus = [_perturb(x, t, -eps) for x, t in zip(leaves, t_leaves)]
    used = []
    for x, p, m, t in zip(leaves, plus, minus, t_leaves):
        if _is_float_leaf(x):
            step = (np.asarray(p, np.float64) - np.asarray(m, np.float64)) / (2 * eps)
            used.append(step.astype(get_aval(x).dtype))
        else:
            used.append(t)
    out_plus = f(*tree_unflatten(tree, plus))
    out_minus = f(*tree_unflatten(tree, minus))
    _check_structure(name, "output", out, out_plus)
    out_leaves, out_tree = tree_flatten(out)
    numeric = [
        (np.asarray(a, np.float64) - np.asarray(b, np.float64)) / (2 * eps)
        if _is_float_leaf(o) else np.zeros(np.shape(o))
        for o, a, b in zip(out_leaves, tree_flatten(out_plus)[0], tree_flatten(out_minus)[0])
    ]
    return tree_unflatten(out_tree, numeric), tree_unflatten(tree, used), out


def _precision(*trees):
    """float32 if any float leaf is float32 (or lower), else float64."""
    for tree in trees:
        for leaf in tree_flatten(tree)[0]:
            dtype = get_aval(leaf).dtype
            if dtypes.is_float(dtype) and dtype.itemsize < 8:
                return np.dtype(np.float32)
    return np.dtype(np.float64)


def _tolerances(tols, args, out):
    atol, rtol, eps = tols
    precision = _precision(args, out)
    return (
        _TOL[precision] if atol is None else atol,
        _TOL[precision] if rtol is None else rtol,
        _EPS[precision] if eps is None else eps,
    )


def _inner(xs, ys) -> float:
    return float(sum(np.vdot(np.asarray(x, np.float64), np.asarray(y, np.float64))
                     for x, y in zip(xs, ys)))


def _check_structure(name, what, expected, actual):
    expected_tree, actual_tree = tree_flatten(expected)[1], tree_flatten(actual)[1]
    if expected_tree != actual_tree:
        raise AssertionError(
            f"{name} check failed: {what} structure {actual_tree} != expected {expected_tree}"
        )


def _check_dtype(name, what, value, primal):
    got, want = get_aval(value).dtype, get_aval(primal).dtype
    if got != want:
        raise AssertionError(
            f"{name} check failed: the {what} has dtype {got}, but its primal has dtype "
            f"{want} (a derivative must keep its primal's dtype)"
        )


def _assert_close(name, what, actual, expected, atol, rtol, precision):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if actual.shape != expected.shape:
        raise AssertionError(
            f"{name} check failed: {what} has shape {actual.shape}, expected {expected.shape}"
        )
    err = np.abs(actual - expected)
    bound = atol + rtol * np.abs(expected)
    bad = ~(err <= bound)  # NB: NaN counts as a failure
    if np.any(bad):
        worst = np.unravel_index(np.argmax(np.where(bad, err, -1.0)), err.shape) if err.ndim else ()
        raise AssertionError(
            f"{name} check failed ({precision.name}): {what} differ\n"
            f"  analytic  {actual[worst]!r}\n  numerical {expected[worst]!r}\n"
            f"  error {err[worst]:.3g} > atol {atol:g} + rtol {rtol:g} * |numerical| "
            f"at index {worst} ({int(bad.sum())} of {bad.size} elements)"
        )
