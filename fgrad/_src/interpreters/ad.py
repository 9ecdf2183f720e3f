"""Automatic differentiation: forward mode (JVP), linearize, and transposition.

* ``jvp_flat`` pushes a ``JVPTrace``; each primitive's JVP rule maps
  (primals, tangents) to (primals_out, tangents_out). ``Zero`` is a symbolic
  zero tangent, handled only inside the rule helpers below.
* ``linearize_flat`` runs the JVP with primals concrete (so Python control flow
  on values works) while the tangent half is staged into a linear jaxpr whose
  constvars are the residuals.
* ``backward_pass`` transposes a linear jaxpr: reverse-mode is linearize +
  transpose. Only linear primitives have transpose rules.
"""

from __future__ import annotations

from functools import reduce

import numpy as np

from fgrad._src import core
from fgrad._src.core import ShapedArray, Tracer, get_aval
from fgrad._src.interpreters.partial_eval import DynamicJaxprTrace, JaxprBuilder

jvp_rules: dict = {}
transpose_rules: dict = {}


# --------------------------------------------------------------------------- symbolic zeros


class Zero:
    """A symbolic zero tangent or cotangent of abstract value ``aval``."""

    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray):
        self.aval = aval

    def __repr__(self):
        return f"Zero({self.aval.str_short()})"


class UndefPrimal:
    """Marks a linear input of an equation being transposed."""

    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray):
        self.aval = aval

    def __repr__(self):
        return f"UndefPrimal({self.aval.str_short()})"


def tangent_aval(aval: ShapedArray) -> ShapedArray:
    """The aval of a tangent for a primal of ``aval`` (weak type dropped)."""
    # NB: avals are never mutated, so a strong one is its own tangent aval.
    return ShapedArray.trusted(aval.shape, aval.dtype) if aval.weak_type else aval


def zeros_like_aval(aval: ShapedArray):
    from fgrad._src.lax import lax

    return lax.full(aval.shape, 0, aval.dtype)


def instantiate_zeros(t):
    return zeros_like_aval(t.aval) if isinstance(t, Zero) else t


def add_tangents(x, y):
    """Sum of two tangents, either of which may be a symbolic ``Zero``."""
    from fgrad._src.lax import lax

    if isinstance(x, Zero):
        return y
    if isinstance(y, Zero):
        return x
    return lax.add(x, y)


# --------------------------------------------------------------------------- JVP trace


class JVPTracer(Tracer):
    __slots__ = ("_trace", "primal", "tangent", "_aval")

    def carries_gradient(self) -> bool:
        return not isinstance(self.tangent, Zero)

    def __init__(self, trace, primal, tangent, aval=None):
        self._trace = trace
        self.primal = primal
        self.tangent = tangent
        self._aval = aval  # given only to keep a concrete primal weakly typed

    @property
    def aval(self):
        aval = self._aval
        if aval is None:  # NB: the primal never changes, so its aval is computed once
            aval = self._aval = get_aval(self.primal)
        return aval

    def concrete_value(self):
        return core.concrete_value_of(self.primal)


class JVPTrace(core.Trace):
    def pure(self, val):
        return JVPTracer(self, val, Zero(tangent_aval(get_aval(val))))

    lift = pure

    def process_primitive(self, primitive, tracers, params):
        primals = [t.primal for t in tracers]
        tangents = [t.tangent for t in tracers]
        rule = jvp_rules.get(primitive)
        if rule is None:
            raise NotImplementedError(f"primitive {primitive.name} has no JVP rule")
        primals_out, tangents_out = rule(primals, tangents, **params)
        avals = [None] * len(primals_out)
        if any(t.aval.weak_type for t in tracers):
            # NB: concrete NumPy results cannot carry NEP 50 weakness (Python scalars do).
            avals = core.abstract_eval(primitive, [t.aval for t in tracers], params)
            avals = [a if a.weak_type and not isinstance(p, Tracer) else None
                     for a, p in zip(avals, primals_out)]
        return [JVPTracer(self, p, t, a) for p, t, a in zip(primals_out, tangents_out, avals)]


def jvp_flat(f, primals, tangents):
    """Forward mode on a flat function; tangents out may be symbolic ``Zero``."""
    with core.new_main(JVPTrace) as main:
        trace = JVPTrace(main)
        tracers_in = [JVPTracer(trace, x, t) for x, t in zip(primals, tangents)]
        outs = f(*tracers_in)
        tracers_out = [core.full_raise(trace, out) for out in outs]
        primals_out = [t.primal for t in tracers_out]
        tangents_out = [t.tangent for t in tracers_out]
    return primals_out, tangents_out


def linearize_flat(f, primals):
    """Return ``(primals_out, linear)``: ``linear`` is a ClosedJaxpr mapping tangents in
    to tangents out, with the residuals it needs as constants.

    >>> from fgrad._src.lax import lax
    >>> outs, lin = linearize_flat(lambda x: [lax.sin(x)], [np.zeros(2)])
    >>> print(lin)  # a = cos(x) is the residual
    { lambda a:f64[2]; b:f64[2]. let
        c:f64[2] = mul b a
      in (c,) }
    """
    builder = JaxprBuilder()
    with core.new_main(DynamicJaxprTrace, builder) as stage_main:
        stage = DynamicJaxprTrace(stage_main)
        tangents_in = [stage.new_arg(tangent_aval(get_aval(x))) for x in primals]
        primals_out, tangents_out = jvp_flat(f, primals, tangents_in)
        tangents_out = [core.full_raise(stage, instantiate_zeros(t)) for t in tangents_out]
        jaxpr, consts = builder.to_jaxpr(tangents_in, tangents_out)
    return primals_out, core.ClosedJaxpr(jaxpr, consts)


# --------------------------------------------------------------------------- transposition


def backward_pass(jaxpr, consts, cts_out) -> list:
    """Transpose the linear ``jaxpr``: cotangents of outputs -> cotangents of inputs.

    Cotangents of inputs that received nothing are ``Zero``.
    """
    primal_env: dict = dict(zip(jaxpr.constvars, consts))
    # NB: a set of Vars; a Literal (hashed by identity) is never in it.
    linear_vars = set(jaxpr.in_binders)

    def read_primal(x):
        return x.val if isinstance(x, core.Literal) else primal_env[x]

    def is_linear(x):
        return x in linear_vars

    linear_eqns = []
    for eqn in jaxpr.eqns:
        if not linear_vars.isdisjoint(eqn.inputs):
            linear_vars.update(eqn.out_binders)
            linear_eqns.append(eqn)
        else:
            outs = eqn.primitive.bind_list(*[read_primal(x) for x in eqn.inputs], **eqn.params)
            primal_env.update(zip(eqn.out_binders, outs))

    ct_env: dict = {}

    def write_ct(var, ct):
        if ct is None or isinstance(ct, Zero):
            return
        ct_env[var] = add_tangents(ct_env[var], ct) if var in ct_env else ct

    for var, ct in zip(jaxpr.outs, cts_out):
        if is_linear(var):
            write_ct(var, ct)

    for eqn in reversed(linear_eqns):
        if eqn.primitive.multiple_results:
            cts = [ct_env.pop(v, None) for v in eqn.out_binders]
            if all(ct is None for ct in cts):
                continue
            ct = [Zero(v.aval) if ct is None else ct for v, ct in zip(eqn.out_binders, cts)]
        else:
            ct = ct_env.pop(eqn.out_binders[0], None)
            if ct is None:
                continue
        invals = [UndefPrimal(x.aval) if is_linear(x) else read_primal(x) for x in eqn.inputs]
        rule = transpose_rules.get(eqn.primitive)
        if rule is None:
            raise NotImplementedError(
                f"primitive {eqn.primitive.name} is not linear: it has no transpose rule"
            )
        cts_in = rule(ct, *invals, **eqn.params)
        for x, ct_in in zip(eqn.inputs, cts_in):
            if is_linear(x):
                write_ct(x, ct_in)
    return [ct_env.get(v, Zero(v.aval)) for v in jaxpr.in_binders]


# --------------------------------------------------------------------------- rule helpers
# NB: symbolic zeros are handled here and only here; rules never see a Zero.


def _zero_tangents_for(primals_out):
    return [Zero(tangent_aval(get_aval(p))) for p in primals_out]


def _sum_contributions(out, contributions):
    contributions = [c for c in contributions if c is not None]
    if not contributions:
        return [out], _zero_tangents_for([out])
    return [out], [reduce(add_tangents, contributions)]


def defjvp(prim, *jvp_fns):
    """Register a JVP built from one function per input: ``fn(g, *primals, **params)``
    returns that input's contribution to the output tangent. A ``None`` function, or a
    function returning ``None`` (e.g. for a non-float dtype), contributes nothing.
    """

    def rule(primals, tangents, **params):
        out = prim.bind(*primals, **params)
        return _sum_contributions(out, [
            fn(t, *primals, **params)
            for fn, t in zip(jvp_fns, tangents)
            if fn is not None and not isinstance(t, Zero)
        ])

    jvp_rules[prim] = rule


def defjvp2(prim, *jvp_fns):
    """Like ``defjvp`` but each function also receives the primal output:
    ``fn(g, ans, *primals, **params)`` (for ``exp``, ``tanh``, ``sqrt``, ...).
    """

    def rule(primals, tangents, **params):
        out = prim.bind(*primals, **params)
        return _sum_contributions(out, [
            fn(t, out, *primals, **params)
            for fn, t in zip(jvp_fns, tangents)
            if fn is not None and not isinstance(t, Zero)
        ])

    jvp_rules[prim] = rule


def defjvp_zero(prim):
    """Register a JVP for a primitive whose outputs carry no gradient."""

    def rule(primals, tangents, **params):
        outs = prim.bind_list(*primals, **params)
        return outs, _zero_tangents_for(outs)

    jvp_rules[prim] = rule


def defjvp_instantiated(prim, jvp_rule):
    """Register a whole-primitive JVP rule that needs every tangent as an array
    (``custom_vjp_call``): ``jvp_rule(primals, tangents, **params)`` returns
    ``(primals_out, tangents_out)``. When no input carries a tangent, the primitive
    is applied and its outputs get zero tangents without calling the rule.
    """

    def rule(primals, tangents, **params):
        if all(isinstance(t, Zero) for t in tangents):
            outs = prim.bind_list(*primals, **params)
            return outs, _zero_tangents_for(outs)
        return jvp_rule(primals, [instantiate_zeros(t) for t in tangents], **params)

    jvp_rules[prim] = rule


def deflinear(prim, transpose_rule, linear_argnums=None, nonlinear_argnums=()):
    """Register a primitive that is linear in its array inputs (all of them, those in
    ``linear_argnums``, or all but ``nonlinear_argnums``; the others, such as indices
    or a predicate, are held fixed).

    Its JVP applies the primitive to the tangents; ``transpose_rule(ct, *invals,
    **params)`` returns one cotangent per input (None for non-linear inputs).
    """

    def rule(primals, tangents, **params):
        outs = prim.bind_list(*primals, **params)
        linear = linear_argnums
        if linear is None:
            linear = [i for i in range(len(primals)) if i not in nonlinear_argnums]
        if all(isinstance(tangents[i], Zero) for i in linear):
            return outs, _zero_tangents_for(outs)
        args = list(primals)
        for i in linear:
            args[i] = instantiate_zeros(tangents[i])
        return outs, prim.bind_list(*args, **params)

    jvp_rules[prim] = rule
    deftranspose(prim, transpose_rule)


def deftranspose(prim, transpose_rule):
    """Register the transpose rule of a primitive that is linear in some inputs."""

    def rule(ct, *invals, **params):
        if isinstance(ct, Zero):
            return [None] * len(invals)
        return transpose_rule(ct, *invals, **params)

    transpose_rules[prim] = rule


def defbilinear(prim, lhs_transpose, rhs_transpose):
    """Register a primitive linear in each of its two inputs separately (mul, dot).

    ``lhs_transpose(ct, x, y, **params)`` is the cotangent of ``x`` (an
    ``UndefPrimal``) given ``y``; ``rhs_transpose`` likewise for ``y``.
    """

    def jvp(primals, tangents, **params):
        x, y = primals
        tx, ty = tangents
        out = prim.bind(x, y, **params)
        tangent = Zero(tangent_aval(get_aval(out)))
        if not isinstance(tx, Zero):
            tangent = add_tangents(tangent, prim.bind(tx, y, **params))
        if not isinstance(ty, Zero):
            tangent = add_tangents(tangent, prim.bind(x, ty, **params))
        return [out], [tangent]

    def transpose(ct, x, y, **params):
        if isinstance(x, UndefPrimal):
            return [lhs_transpose(ct, x, y, **params), None]
        return [None, rhs_transpose(ct, x, y, **params)]

    jvp_rules[prim] = jvp
    deftranspose(prim, transpose)


def defjvp_minmax(prim, wins):
    """JVP of ``max``/``min`` following the minimum-norm subgradient rule (docs/kinks.md).

    ``wins(x, y)`` is the boolean array where ``x`` strictly wins. Away from
    ties the winner's tangent passes. At a tie, if both inputs are being
    differentiated each gets half (the minimum-norm element of {(t, 1-t)});
    if only one is, it gets zero (the minimum-norm element of [0, 1]) — so
    ``maximum(x, 0)`` has gradient 0 at 0, like ``relu``.
    """
    from fgrad._src.lax import lax

    def weight(mask, dtype):
        return lax.convert_element_type(mask, dtype)

    def rule(primals, tangents, **params):
        x, y = primals
        tx, ty = tangents
        out = prim.bind(x, y, **params)
        if isinstance(tx, Zero) and isinstance(ty, Zero):
            return [out], _zero_tangents_for([out])
        if isinstance(ty, Zero):
            return [out], [lax.mul(tx, weight(wins(x, y), tx.dtype))]
        if isinstance(tx, Zero):
            return [out], [lax.mul(ty, weight(wins(y, x), ty.dtype))]
        dtype = tx.dtype
        half = np.asarray(0.5, dtype)
        wx = lax.add(weight(wins(x, y), dtype), lax.mul(weight(lax.eq(x, y), dtype), half))
        wy = lax.add(weight(wins(y, x), dtype), lax.mul(weight(lax.eq(x, y), dtype), half))
        return [out], [lax.add(lax.mul(tx, wx), lax.mul(ty, wy))]

    jvp_rules[prim] = rule
