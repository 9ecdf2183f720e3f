"""Eager recording: run a function on concrete values while recording its equations.

``fg.grad(f)(x)`` without ``jit`` must re-run ``f`` in Python on every call
(its control flow may depend on values), but the *program* it records is
usually the same from call to call. ``record`` evaluates each primitive at
once (so ``if x > 0:`` works) and records it with integer slots; the
recording's ``key`` — primitives, params, wiring and avals, never values — is
what ``value_and_grad`` uses to reuse a gradient program that was staged and
lowered once. Every constant (closed-over arrays, literals) is an input of
that program, never baked in, so a changed closure is always seen.

A recording can also be checked step by step against an ``expected`` one (the
previous call's): while every input, constant and equation repeats the
expected one, output avals are taken from it instead of being recomputed, and
``matches`` then says the two recordings have the same key without building it.
"""

from __future__ import annotations

import numpy as np

from fgrad._src import core
from fgrad._src.core import ClosedJaxpr, Jaxpr, JaxprEqn, Tracer, Var, get_aval, impl_rules


class RecordTracer(Tracer):
    __slots__ = ("_trace", "val", "slot", "aval", "live")

    def __init__(self, trace, val, slot, aval, live=True):
        self._trace = trace
        self.val = val
        self.slot = slot
        self.aval = aval
        self.live = live  # computed from an input, not only from constants and stop_gradient

    def concrete_value(self):
        return self.val

    def carries_gradient(self) -> bool:
        return self.live


# Constants of at most this many bytes are copied when recorded; larger ones are pinned.
PIN_COPY_MAX = 1 << 16


def _params_key(params) -> tuple:
    return tuple(sorted(params.items())) if params else ()


class Recording:
    """The equations recorded so far: slots are ints, constants are remembered by id.

    Slots are numbered in order of creation: the inputs first, then constants and
    equation outputs interleaved as the function ran.
    """

    def __init__(self, expected: Recording | None = None):
        self.avals: list = []  # slot -> aval
        self.eqns: list = []  # (primitive, in_slots, params, first out slot)
        self.eqn_avals: list = []  # the out avals of each equation
        self.const_tracers: dict = {}  # id(value) -> RecordTracer
        self.consts: list = []  # (slot, value), in order of first use
        self.keepalive: list = []
        self.pinned: list = []  # arrays made read-only while recording (see RecordTrace._pin)
        self.in_slots: list = []
        self.in_values: list = []  # the inputs as NumPy values
        # NB: None once anything differed from `expected`; never set back.
        self.expected = expected

    def key(self, out_slots) -> tuple:
        """A hashable summary of the program: structure and avals, never values.

        Avals enter as ``(shape, dtype, weak_type)`` tuples, which hash and compare
        in C and are equal exactly when the avals are.
        """
        return (
            tuple(self.in_slots),
            tuple(slot for slot, _ in self.consts),
            tuple((a.shape, a.dtype, a.weak_type) for a in self.avals),
            tuple((prim, ins, _params_key(params), first, len(outs))
                  for (prim, ins, params, first), outs in zip(self.eqns, self.eqn_avals)),
            tuple(out_slots),
        )

    def matches(self, expected: Recording) -> bool:
        """True when this recording repeated ``expected`` step by step to its end,
        so both have the same ``key`` (for the same output slots)."""
        return (
            self.expected is expected
            and len(self.eqns) == len(expected.eqns)
            and len(self.consts) == len(expected.consts)
            and len(self.in_slots) == len(expected.in_slots)
        )

    def program_inputs(self) -> list:
        """The values to run the program of ``to_closed_jaxpr`` on: constants, then inputs."""
        if not self.consts:
            return self.in_values
        return [value for _, value in self.consts] + self.in_values

    def skeleton(self) -> Recording:
        """A copy that keeps the structure and avals but no values (an ``expected``)."""
        copy = Recording()
        copy.avals = list(self.avals)
        copy.eqns = list(self.eqns)
        copy.eqn_avals = list(self.eqn_avals)
        copy.consts = [(slot, None) for slot, _ in self.consts]
        copy.in_slots = list(self.in_slots)
        return copy

    def to_closed_jaxpr(self, out_slots) -> tuple[ClosedJaxpr, list]:
        """The recorded program with every constant turned into a leading input.

        Returns the jaxpr (constants first, then the recorded inputs) and the
        constant values in order.
        """
        variables = [Var(aval) for aval in self.avals]
        const_vars = [variables[slot] for slot, _ in self.consts]
        in_vars = [variables[slot] for slot in self.in_slots]
        eqns = [
            JaxprEqn(prim, [variables[i] for i in ins], params,
                     variables[first:first + len(outs)])
            for (prim, ins, params, first), outs in zip(self.eqns, self.eqn_avals)
        ]
        jaxpr = Jaxpr([], const_vars + in_vars, eqns, [variables[s] for s in out_slots])
        return ClosedJaxpr(jaxpr, []), [value for _, value in self.consts]


class RecordTrace(core.Trace):
    @property
    def recording(self) -> Recording:
        return self.main.global_data

    def new_input(self, val) -> RecordTracer:
        recording = self.recording
        slot = len(recording.avals)  # NB: inputs come first, so slot == input index
        expected = recording.expected
        aval = None
        if expected is not None and slot < len(expected.in_slots):
            aval = expected.avals[slot]
            # NB: the common case, an array of the expected shape and dtype, skips
            # get_aval (an ndarray's aval is never weak).
            if not (type(val) is np.ndarray and val.shape == aval.shape
                    and val.dtype == aval.dtype and not aval.weak_type):
                aval = aval if get_aval(val) == aval else None
        if aval is None:
            recording.expected = None
            aval = get_aval(val)  # NB: before to_numpy, so a Python scalar input stays weak
        val = core.to_numpy(val)
        recording.avals.append(aval)
        recording.in_slots.append(slot)
        recording.in_values.append(val)
        return RecordTracer(self, val, slot, aval)

    def pure(self, val):
        recording = self.recording
        tracer = recording.const_tracers.get(id(val))
        if tracer is not None and isinstance(val, np.ndarray) and not core.unchanged_since(
                tracer.val, val):
            tracer = None  # NB: written into since its first use: a new constant
        if tracer is None:
            value = core.to_numpy(val)
            if core.mutable_array(val):
                value = self._pin(val)
            aval = get_aval(value)
            slot = len(recording.avals)
            expected = recording.expected
            if expected is not None:
                n = len(recording.consts)
                if (n < len(expected.consts) and expected.consts[n][0] == slot
                        and expected.avals[slot] == aval):
                    aval = expected.avals[slot]
                else:
                    recording.expected = None
            recording.avals.append(aval)
            recording.consts.append((slot, value))
            recording.keepalive.append(val)  # NB: keeps id(val) from being reused
            tracer = RecordTracer(self, value, slot, aval, False)
            recording.const_tracers[id(val)] = tracer
        return tracer

    lift = pure

    def _pin(self, array):
        """A writeable array used as a constant must keep its value until the gradient
        program has run: a small one or a view is copied; a large one that owns its memory
        (copying it on every call costs more than the rest of a small gradient) is made
        read-only until ``record`` returns, so ``f`` writing into it after using it raises
        instead of changing the gradient silently."""
        if (array.nbytes <= PIN_COPY_MAX or array.base is not None
                or type(array) is not np.ndarray or not array.flags.writeable):
            # NB: a view is copied: making it read-only would not stop writes through its
            # base. (A view made earlier of a pinned array can still write into it.)
            return np.array(array)
        array.flags.writeable = False
        self.recording.pinned.append(array)
        return array

    def process_primitive(self, primitive, tracers, params):
        recording = self.main.global_data
        rule = impl_rules.get(primitive)
        if rule is None:
            raise NotImplementedError(f"primitive {primitive.name} has no implementation")
        # NB: unary and binary primitives, nearly all of them, skip two comprehensions.
        if len(tracers) == 1:
            (x,) = tracers
            outs = rule(x.val, **params)
            in_slots = (x.slot,)
            live = x.live
        elif len(tracers) == 2:
            x, y = tracers
            outs = rule(x.val, y.val, **params)
            in_slots = (x.slot, y.slot)
            live = x.live or y.live
        else:
            outs = rule(*[t.val for t in tracers], **params)
            in_slots = tuple([t.slot for t in tracers])
            live = any(t.live for t in tracers)
        if primitive.stops_gradient:
            live = False
        multiple_results = primitive.multiple_results
        avals = recording.avals
        eqns = recording.eqns
        eqn = (primitive, in_slots, params, len(avals))
        n = len(eqns)
        expected = recording.expected
        # NB: an equation equal to the expected one (same primitive and params on the
        # same slots, whose avals were checked or derived alike) has the expected
        # output avals, and as many; an equal first output slot means constants
        # were interleaved alike.
        if expected is not None and n < len(expected.eqns) and expected.eqns[n] == eqn:
            out_avals = expected.eqn_avals[n]
        else:
            recording.expected = None
            out_avals = _out_avals(primitive, tracers, params,
                                   list(outs) if multiple_results else [outs])
        avals.extend(out_avals)
        eqns.append(eqn)
        recording.eqn_avals.append(out_avals)
        first = eqn[3]
        if not multiple_results:
            return [RecordTracer(self, outs, first, out_avals[0], live)]
        return [RecordTracer(self, v, first + i, a, live)
                for i, (v, a) in enumerate(zip(outs, out_avals))]


def _out_avals(primitive, tracers, params, vals) -> tuple:
    if any(t.aval.weak_type for t in tracers):  # concrete values cannot carry weakness
        return tuple(core.abstract_eval(primitive, [t.aval for t in tracers], params))
    return tuple([get_aval(v) for v in vals])


def record(f_flat, args, expected: Recording | None = None):
    """Run ``f_flat`` on concrete ``args``, recording it (checked against ``expected``).

    Returns ``(output tracers, recording)``.

    >>> from fgrad._src.lax import lax
    >>> outs, rec = record(lambda x: [lax.sin(x)], [np.float64(0.0)])
    >>> outs[0].val, len(rec.eqns)
    (np.float64(0.0), 1)
    >>> again = record(lambda x: [lax.sin(x)], [np.float64(1.0)], expected=rec.skeleton())[1]
    >>> again.matches(again.expected)
    True
    """
    recording = Recording(expected)
    try:
        with core.new_main(RecordTrace, recording) as main:
            trace = RecordTrace(main)
            tracers = [trace.new_input(x) for x in args]
            outs = [core.full_raise(trace, out) for out in f_flat(*tracers)]
    except ValueError as e:
        if recording.pinned and "read-only" in str(e):
            raise ValueError(
                f"{e}: the function wrote into a NumPy array after using it in a computation "
                "fg.grad differentiates; the gradient needs the values it was used with. "
                "Write into a copy (arr.copy()) or a new array instead.") from e
        raise
    finally:
        for array in recording.pinned:
            array.flags.writeable = True
    return outs, recording
