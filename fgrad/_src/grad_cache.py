"""Un-jitted ``grad`` at top level: record the function eagerly, reuse a compiled
gradient program keyed by the recording's structure.

Each call still runs the user's Python (so control flow on values and changed
closures are honoured), but only as a cheap recording; the gradient itself
runs as one staged program, built once per distinct structure and executed by
the backend with every constant passed as an input.
"""

from __future__ import annotations

from collections import OrderedDict

from fgrad._src import config, core
from fgrad._src.backend import execute
from fgrad._src.core import Tracer
from fgrad._src.interpreters.partial_eval import trace_to_jaxpr
from fgrad._src.interpreters.record import record
from fgrad._src.tree import tree_flatten, tree_unflatten

_programs: OrderedDict = OrderedDict()


def applicable(leaves) -> bool:
    """True at top level (no transform active) with concrete inputs."""
    return (
        core.current_level() == 0
        and not config.flags.debug_nans
        and not any(isinstance(x, Tracer) for x in leaves)
    )


def _cacheable(recording) -> bool:
    # NB: params holding Python callables (custom_vjp's fwd/bwd closures) are
    # new objects on every call, so such recordings are never looked up.
    return not any(
        callable(value) for _, _, params, _ in recording.eqns for value in params.values()
    )


def _build_program(recording, value_slot):
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
    return trace_to_jaxpr(value_and_grads, in_avals)


def _program_for(recording, value_slot):
    if not _cacheable(recording):
        return _build_program(recording, value_slot)
    key = recording.key([value_slot])
    program = _programs.get(key)
    if program is None:
        program = _build_program(recording, value_slot)
        _programs[key] = program
        while len(_programs) > config.flags.jit_cache_size:
            _programs.popitem(last=False)
    else:
        _programs.move_to_end(key)
    return program


def value_and_grad_recorded(f_aux, diff_flat, in_tree, check_output):
    """``(value, aux, grads_flat)`` of ``f_aux`` (which returns ``(out, aux)``).

    ``check_output(out_leaves, out_tree)`` validates the output (scalar float).
    """
    store: dict = {}

    def f_flat(*leaves):
        out, aux = f_aux(*tree_unflatten(in_tree, leaves))
        out_leaves, store["tree"] = tree_flatten(out)
        aux_leaves, store["aux_tree"] = tree_flatten(aux)
        return out_leaves + aux_leaves

    outs, recording, out_slots = record(f_flat, diff_flat)
    n_out = store["tree"].num_leaves
    check_output(outs[:n_out], store["tree"])
    aux = tree_unflatten(store["aux_tree"], outs[n_out:])
    program = _program_for(recording, out_slots[0])
    inputs = [value for _, value in recording.consts] + [core.to_numpy(x) for x in diff_flat]
    results = execute.run_closed_jaxpr(program, inputs)
    return outs[0], aux, results[1:]
