"""Un-jitted ``grad`` at top level: record the function eagerly, reuse a compiled
gradient program keyed by the recording's structure.

Each call still runs the user's Python (so control flow on values and changed
closures are honoured), but only as a cheap recording; the gradient itself
runs as one staged program, built once per distinct structure and executed by
the backend with every constant passed as an input.

Two levels of reuse:

- each ``grad``-wrapped function has a ``Site`` remembering its last recording
  (values stripped) and program; the next recording is checked against it step
  by step and, when it repeats it, the program is reused without building a key;
- otherwise the recording's ``key`` is looked up in a global LRU of programs.
"""

from __future__ import annotations

from collections import OrderedDict

from fgrad._src import config, core, lru
from fgrad._src.backend import execute
from fgrad._src.core import Tracer
from fgrad._src.interpreters.partial_eval import trace_to_jaxpr
from fgrad._src.interpreters.record import record

_programs: OrderedDict = OrderedDict()


def applicable(leaves) -> bool:
    """True at top level (no transform active) with concrete inputs."""
    return at_top_level() and not any(isinstance(x, Tracer) for x in leaves)


def at_top_level() -> bool:
    """True when no transform is active (and debug_nans does not ask for the traced path)."""
    return core.current_level() == 0 and not config.flags.debug_nans


class Site:
    """The last cacheable recording of one ``grad``-wrapped function, and its program.

    ``last`` is ``(skeleton, value_slot, program)`` or None; it is replaced as a
    whole, so concurrent callers each see a consistent tuple.
    """

    __slots__ = ("last",)

    def __init__(self):
        self.last = None


class _Program:
    """A staged value-and-grad program and, once known, its trusted fast runner."""

    __slots__ = ("closed", "_runner")

    def __init__(self, closed):
        self.closed = closed
        self._runner = False  # NB: False = not looked up yet; None = no fast runner

    def run(self, inputs):
        # NB: the caller passes inputs whose avals equal the program's (the recording's
        # key, or its match with the expected recording, covers every input and
        # constant aval), so the interpreter's shape checks can be skipped.
        if execute.interpreter_on():
            runner = self._runner
            if runner is False:
                runner = self._runner = execute.fast_runner(self.closed)
            if runner is not None:
                return runner(inputs)
        return execute.run_closed_jaxpr(self.closed, inputs)


def _cacheable(recording) -> bool:
    # NB: params holding Python callables (custom_vjp's fwd/bwd closures) are
    # new objects on every call, and may close over values, so such recordings
    # are never looked up.
    return not any(
        callable(value) for _, _, params, _ in recording.eqns for value in params.values()
    )


def _build_program(recording, value_slot) -> _Program:
    """Stage ``(consts, inputs) -> (value, *grads)`` for the recorded function."""
    from fgrad._src.api import value_and_grad

    forward, consts = recording.to_closed_jaxpr([value_slot])
    n_consts, n_inputs = len(consts), len(recording.in_slots)

    def value_and_grads(*inputs):
        const_args = list(inputs[:n_consts])

        def f(*xs):
            return core.eval_jaxpr(forward.jaxpr, [], const_args + list(xs))[0]

        value, grads = value_and_grad(f, argnums=tuple(range(n_inputs)))(*inputs[n_consts:])
        return [value, *grads]

    in_avals = [v.aval for v in forward.jaxpr.in_binders]
    return _Program(trace_to_jaxpr(value_and_grads, in_avals))


def _lookup(recording, value_slot):
    """The program for ``recording`` from the global LRU (built on a miss), and
    whether it may be reused by later recordings of the same structure."""
    if not _cacheable(recording):
        return _build_program(recording, value_slot), False
    key = recording.key([value_slot])
    try:
        program = _programs.get(key)
    except TypeError:  # NB: an unhashable param: correct, just never cached
        return _build_program(recording, value_slot), False
    if program is None:
        program = _build_program(recording, value_slot)
        _programs[key] = program
        lru.evict_oldest(_programs, config.flags.jit_cache_size)
    else:
        lru.touch(_programs, key)
    return program, True


def _program_for(site, recording, value_slot):
    last = site.last
    if last is not None and last[1] == value_slot and recording.matches(last[0]):
        return last[2]
    program, reusable = _lookup(recording, value_slot)
    if reusable:
        site.last = (recording.skeleton(), value_slot, program)
    return program


def value_and_grad_recorded(site, f_flat, diff_flat, check_outputs):
    """Record ``f_flat`` on the concrete ``diff_flat`` and run the gradient program
    of its first output; ``check_outputs(out_tracers)`` validates the outputs first
    (it raises when they are not a single float scalar plus aux leaves).

    Returns ``(out_tracers, grads_flat)``: each output tracer's ``val`` is its value.
    """
    last = site.last
    outs, recording = record(f_flat, diff_flat, None if last is None else last[0])
    check_outputs(outs)
    program = _program_for(site, recording, outs[0].slot)
    return outs, program.run(recording.program_inputs())[1:]
