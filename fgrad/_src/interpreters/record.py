"""Eager recording: run a function on concrete values while recording its equations.

``fg.grad(f)(x)`` without ``jit`` must re-run ``f`` in Python on every call
(its control flow may depend on values), but the *program* it records is
usually the same from call to call. ``record`` evaluates each primitive at
once (so ``if x > 0:`` works) and records it with integer slots; the
recording's ``key`` — primitives, params, wiring and avals, never values — is
what ``value_and_grad`` uses to reuse a gradient program that was staged and
lowered once. Every constant (closed-over arrays, literals) is an input of
that program, never baked in, so a changed closure is always seen.
"""

from __future__ import annotations

import numpy as np  # noqa: F401  (used by the doctest)

from fgrad._src import core
from fgrad._src.core import ClosedJaxpr, Jaxpr, JaxprEqn, Tracer, Var, apply_impl, get_aval


class RecordTracer(Tracer):
    __slots__ = ("_trace", "val", "slot", "aval")

    def __init__(self, trace, val, slot, aval):
        self._trace = trace
        self.val = val
        self.slot = slot
        self.aval = aval

    def concrete_value(self):
        return self.val


class Recording:
    """The equations recorded so far: slots are ints, constants are remembered by id."""

    def __init__(self):
        self.avals: list = []  # slot -> aval
        self.eqns: list = []  # (primitive, in_slots, params, out_slots)
        self.const_slots: dict = {}  # id(value) -> slot
        self.consts: list = []  # (slot, value), in order of first use
        self.const_values: dict = {}  # slot -> value
        self.keepalive: list = []
        self.in_slots: list = []

    def new_slot(self, aval) -> int:
        self.avals.append(aval)
        return len(self.avals) - 1

    def key(self, out_slots):
        """A hashable summary of the program: structure and avals, never values."""
        return (
            tuple(self.in_slots),
            tuple(slot for slot, _ in self.consts),
            tuple(self.avals),
            tuple((prim, ins, tuple(sorted(params.items())), outs)
                  for prim, ins, params, outs in self.eqns),
            tuple(out_slots),
        )

    def to_closed_jaxpr(self, out_slots) -> tuple[ClosedJaxpr, list]:
        """The recorded program with every constant turned into a leading input.

        Returns the jaxpr (constants first, then the recorded inputs) and the
        constant values in order.
        """
        variables = [Var(aval) for aval in self.avals]
        const_vars = [variables[slot] for slot, _ in self.consts]
        in_vars = [variables[slot] for slot in self.in_slots]
        eqns = [
            JaxprEqn(prim, [variables[i] for i in ins], params, [variables[o] for o in outs])
            for prim, ins, params, outs in self.eqns
        ]
        jaxpr = Jaxpr([], const_vars + in_vars, eqns, [variables[s] for s in out_slots])
        return ClosedJaxpr(jaxpr, []), [value for _, value in self.consts]


class RecordTrace(core.Trace):
    @property
    def recording(self) -> Recording:
        return self.main.global_data

    def new_input(self, val) -> RecordTracer:
        recording = self.recording
        aval = get_aval(val)  # NB: before to_numpy, so a Python scalar input stays weak
        val = core.to_numpy(val)
        slot = recording.new_slot(aval)
        recording.in_slots.append(slot)
        return RecordTracer(self, val, slot, aval)

    def pure(self, val):
        recording = self.recording
        slot = recording.const_slots.get(id(val))
        if slot is None:
            value = core.to_numpy(val)
            slot = recording.new_slot(get_aval(value))
            recording.const_slots[id(val)] = slot
            recording.consts.append((slot, value))
            recording.const_values[slot] = value
            recording.keepalive.append(val)  # NB: keeps id(val) from being reused
        return RecordTracer(self, recording.const_values[slot], slot, recording.avals[slot])

    lift = pure

    def process_primitive(self, primitive, tracers, params):
        recording = self.recording
        in_avals = [t.aval for t in tracers]
        vals = apply_impl(primitive, [t.val for t in tracers], params)
        if any(a.weak_type for a in in_avals):  # concrete values cannot carry weakness
            avals = core.abstract_eval(primitive, in_avals, params)
        else:
            avals = [get_aval(v) for v in vals]
        all_avals = recording.avals
        first_slot = len(all_avals)
        all_avals.extend(avals)
        out_slots = tuple(range(first_slot, len(all_avals)))
        recording.eqns.append((primitive, tuple(t.slot for t in tracers), params, out_slots))
        return [RecordTracer(self, v, s, a) for v, s, a in zip(vals, out_slots, avals)]


def record(f_flat, args):
    """Run ``f_flat`` on concrete ``args``, recording it.

    Returns ``(output values, recording, output slots)``.

    >>> from fgrad._src.lax import lax
    >>> outs, rec, slots = record(lambda x: [lax.sin(x)], [np.float64(0.0)])
    >>> outs, len(rec.eqns)
    ([np.float64(0.0)], 1)
    """
    recording = Recording()
    with core.new_main(RecordTrace, recording) as main:
        trace = RecordTrace(main)
        tracers = [trace.new_input(x) for x in args]
        outs = [core.full_raise(trace, out) for out in f_flat(*tracers)]
    return [out.val for out in outs], recording, [out.slot for out in outs]

