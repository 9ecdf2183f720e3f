"""Staging: a trace that records every primitive into a jaxpr instead of running it.

``trace_to_jaxpr`` stages a flat function (used by ``make_jaxpr`` and ``jit``);
``ad.linearize`` stages only the tangent half of a JVP into the same builder.
Values from outside the staged function become constvars, Python scalars
become literals: nothing closed over is ever silently dropped.
"""

from __future__ import annotations

import numpy as np

from fgrad._src import core
from fgrad._src.core import (
    ClosedJaxpr,
    Jaxpr,
    JaxprEqn,
    Literal,
    ShapedArray,
    Tracer,
    Var,
    abstract_eval,
)
from fgrad._src.errors import UnexpectedTracerError


class JaxprBuilder:
    """Accumulates equations, constants and the tracer -> Var map of one jaxpr."""

    def __init__(self):
        self.eqns: list = []
        self.tracer_to_var: dict = {}  # id(tracer) -> Var
        self.tracers: list = []  # keeps tracers alive so ids stay unique
        self.const_tracers: dict = {}  # id(value) -> (tracer, its snapshot)
        self.constvals: dict = {}  # Var -> value
        self.literals: dict = {}  # id(tracer) -> Literal
        self.literal_eqns: dict = {}  # (primitive, literal, params) -> its out tracers

    def new_var(self, tracer) -> Var:
        var = self.tracer_to_var[id(tracer)] = Var(tracer.aval)
        self.tracers.append(tracer)
        return var

    def atom(self, tracer):
        literal = self.literals.get(id(tracer))
        if literal is not None:
            return literal
        try:
            return self.tracer_to_var[id(tracer)]
        except KeyError:
            raise UnexpectedTracerError(
                f"{tracer!r} does not belong to the function being traced: a traced value "
                "escaped from an earlier transform (for example it was stored in a global "
                "or a closure). Pass it as an argument instead."
            ) from None

    def to_jaxpr(self, in_tracers, out_tracers) -> tuple[Jaxpr, list]:
        """Build the jaxpr with inputs ``in_tracers`` and outputs ``out_tracers``.

        Equations that do not contribute to an output are dropped (DCE).
        """
        in_binders = [self.atom(t) for t in in_tracers]
        outs = [self.atom(t) for t in out_tracers]
        eqns = dead_code_elimination(self.eqns, outs)
        used = {x for eqn in eqns for x in eqn.inputs if isinstance(x, Var)}
        used.update(x for x in outs if isinstance(x, Var))
        constvars = [v for v in self.constvals if v in used]
        consts = [self.constvals[v] for v in constvars]
        return Jaxpr(constvars, in_binders, eqns, outs), consts


def dead_code_elimination(eqns, outs) -> list:
    """Keep only equations whose outputs are (transitively) needed by ``outs``."""
    live = {x for x in outs if isinstance(x, Var)}
    kept = []
    for eqn in reversed(eqns):
        if any(v in live for v in eqn.out_binders):
            kept.append(eqn)
            live.update(x for x in eqn.inputs if isinstance(x, Var))
    kept.reverse()
    return kept


class DynamicJaxprTracer(Tracer):
    __slots__ = ("_trace", "aval")

    def __init__(self, trace, aval: ShapedArray):
        self._trace = trace
        self.aval = aval


def _is_literal_value(val) -> bool:
    return isinstance(val, (bool, int, float, np.generic)) or (
        isinstance(val, np.ndarray) and val.ndim == 0
    )


class DynamicJaxprTrace(core.Trace):
    """Records each primitive application as an equation in ``main.global_data``."""

    @property
    def builder(self) -> JaxprBuilder:
        return self.main.global_data

    def new_arg(self, aval: ShapedArray) -> DynamicJaxprTracer:
        tracer = DynamicJaxprTracer(self, aval)
        self.builder.new_var(tracer)
        return tracer

    def pure(self, val):
        builder = self.builder
        seen = builder.const_tracers.get(id(val))
        if seen is not None and core.unchanged_since(seen[1], val):
            return seen[0]  # NB: else written into since its first use: a new constant
        value = core.snapshot(val)
        tracer = DynamicJaxprTracer(self, core.get_aval(value))
        if _is_literal_value(value) and not isinstance(value, Tracer):
            builder.literals[id(tracer)] = Literal(value)
            builder.tracers.append(tracer)
        else:
            var = builder.new_var(tracer)
            builder.constvals[var] = value
        builder.const_tracers[id(val)] = (tracer, value)
        builder.tracers.append(val)  # keep the value alive so its id is not reused
        return tracer

    lift = pure

    def process_primitive(self, primitive, tracers, params):
        # NB: the hottest function of tracing, so JaxprBuilder.atom/new_var are inlined.
        builder = self.main.global_data
        literals, tracer_to_var = builder.literals, builder.tracer_to_var
        try:
            inputs = [literals.get(id(t)) or tracer_to_var[id(t)] for t in tracers]
        except KeyError:
            inputs = [builder.atom(t) for t in tracers]  # raises, naming the escaped tracer
        key = None
        if primitive.stage_once_per_literal and type(inputs[0]) is Literal:
            key = _literal_eqn_key(primitive, inputs[0], params)
            outs = builder.literal_eqns.get(key)
            if outs is not None:
                return outs
        avals_out = abstract_eval(primitive, [t.aval for t in tracers], params)
        out_tracers = [DynamicJaxprTracer(self, aval) for aval in avals_out]
        outvars = []
        for tracer in out_tracers:
            var = tracer_to_var[id(tracer)] = Var(tracer.aval)
            outvars.append(var)
        builder.tracers.extend(out_tracers)
        builder.eqns.append(JaxprEqn(primitive, inputs, params, outvars))
        if key is not None:
            builder.literal_eqns[key] = out_tracers
        return out_tracers


def _literal_eqn_key(primitive, literal, params):
    """What makes an equation of one literal operand the same as an earlier one: its
    primitive, params and the literal's dtype, weak type and bits (0.0 and -0.0 differ)."""
    aval = literal.aval
    bits = np.asarray(literal.val, aval.dtype).tobytes()
    return primitive, aval.dtype, aval.weak_type, bits, tuple(params.items())


def trace_to_jaxpr(f_flat, in_avals) -> ClosedJaxpr:
    """Stage ``f_flat`` (flat list of arrays -> flat list of arrays) into a ``ClosedJaxpr``.

    >>> from fgrad._src.lax import lax
    >>> closed = trace_to_jaxpr(lambda x: [lax.neg(x)], [ShapedArray((2,), np.float64)])
    >>> print(closed)
    { lambda ; a:f64[2]. let
        b:f64[2] = neg a
      in (b,) }
    """
    builder = JaxprBuilder()
    with core.new_main(DynamicJaxprTrace, builder) as main:
        with core.new_dynamic(main):
            trace = DynamicJaxprTrace(main)
            in_tracers = [trace.new_arg(aval) for aval in in_avals]
            outs = f_flat(*in_tracers)
            out_tracers = [core.full_raise(trace, out) for out in outs]
            jaxpr, consts = builder.to_jaxpr(in_tracers, out_tracers)
    return ClosedJaxpr(jaxpr, consts)
