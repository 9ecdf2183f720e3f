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
    """Accumulates the equations and constants of one jaxpr. Each of its tracers holds its
    own atom (a ``Var``, or a ``Literal`` for a Python scalar or 0-d constant)."""

    def __init__(self):
        self.eqns: list = []
        self.const_tracers: dict = {}  # id(value) -> (tracer, its snapshot)
        self.const_values: list = []  # keeps those values alive so their ids are not reused
        self.constvals: dict = {}  # Var -> value
        self.literal_eqns: dict = {}  # (primitive, literal, params) -> its out tracers

    def atom(self, tracer):
        if isinstance(tracer, DynamicJaxprTracer) and tracer._builder is self:
            return tracer._atom
        raise UnexpectedTracerError(
            f"{tracer!r} does not belong to the function being traced: a traced value "
            "escaped from an earlier transform (for example it was stored in a global "
            "or a closure). Pass it as an argument instead."
        )

    def to_jaxpr(self, in_tracers, out_tracers) -> tuple[Jaxpr, list]:
        """Build the jaxpr with inputs ``in_tracers`` and outputs ``out_tracers``.

        Equations that do not contribute to an output are dropped (DCE). This ends the
        builder: it lets go of the tracers it maps constants to.
        """
        in_binders = [self.atom(t) for t in in_tracers]
        outs = [self.atom(t) for t in out_tracers]
        eqns, live = dead_code_elimination(self.eqns, outs)
        constvars = [v for v in self.constvals if v in live]
        consts = [self.constvals[v] for v in constvars]
        # NB: those tracers refer back to this builder; without the cycle, the trace's
        # garbage is freed at once instead of by the garbage collector (~380 objects a
        # jit(grad) call), which otherwise promotes it to older generations first.
        self.const_tracers.clear()
        self.const_values.clear()
        self.literal_eqns.clear()
        return Jaxpr(constvars, in_binders, eqns, outs), consts


def dead_code_elimination(eqns, outs) -> tuple[list, set]:
    """Keep only equations whose outputs are (transitively) needed by ``outs``; also
    returns the atoms they read (with ``outs``)."""
    live = set(outs)
    kept = []
    for eqn in reversed(eqns):
        if not live.isdisjoint(eqn.out_binders):
            kept.append(eqn)
            # NB: literals go in too (hashed by identity); only Vars are ever looked up.
            live.update(eqn.inputs)
    kept.reverse()
    return kept, live


class DynamicJaxprTracer(Tracer):
    # NB: ``_atom`` is the tracer's Var or Literal in the jaxpr ``_builder`` builds; a
    # tracer bound at a trace always belongs to that trace's builder (``core.bind`` refuses
    # tracers of a finished trace), so equations read it without a lookup.
    __slots__ = ("_trace", "aval", "_atom", "_builder")

    def __init__(self, trace, aval: ShapedArray, atom, builder):
        self._trace = trace
        self.aval = aval
        self._atom = atom
        self._builder = builder


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
        return DynamicJaxprTracer(self, aval, Var(aval), self.builder)

    def pure(self, val):
        builder = self.builder
        seen = builder.const_tracers.get(id(val))
        if seen is not None and core.unchanged_since(seen[1], val):
            return seen[0]  # NB: else written into since its first use: a new constant
        value = core.snapshot(val)
        aval = core.get_aval(value)
        if _is_literal_value(value) and not isinstance(value, Tracer):
            tracer = DynamicJaxprTracer(self, aval, Literal(value), builder)
        else:
            tracer = DynamicJaxprTracer(self, aval, Var(aval), builder)
            builder.constvals[tracer._atom] = value
        builder.const_tracers[id(val)] = (tracer, value)
        builder.const_values.append(val)
        return tracer

    lift = pure

    def process_primitive(self, primitive, tracers, params):
        builder = self.main.global_data
        inputs = [t._atom for t in tracers]
        key = None
        if primitive.stage_once_per_literal and type(inputs[0]) is Literal:
            key = _literal_eqn_key(primitive, inputs[0], params)
            outs = builder.literal_eqns.get(key)
            if outs is not None:
                return outs
        avals_out = abstract_eval(primitive, [t.aval for t in tracers], params)
        outvars = [Var(aval) for aval in avals_out]
        out_tracers = [DynamicJaxprTracer(self, v.aval, v, builder) for v in outvars]
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
