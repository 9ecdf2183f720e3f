"""The recorded graph and the backward walk.

A ``Node`` is one recorded Tensor op. It holds the op's cached programs
(``program.Entry``), the residuals its forward program returned (the *saved
values*), the op's arguments (kept only when there are residuals, so that
``create_graph=True`` can record the backward as Tensor ops), and one edge per
differentiable input: ``(node, output_nr)`` for an input made by another op,
``(leaf_tensor, None)`` for a leaf.

``run_backward`` orders the reachable nodes by an iterative depth-first
search (no recursion: a 100k-node chain is fine), then runs each node's
backward program once all its consumers have contributed, accumulating
cotangents per output. Leaves receive the sum of their cotangents at the end.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from heapq import heappop, heappush

import numpy as np

from fgrad._src.tensor import grad_mode

_FREED_MESSAGE = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed "
    "when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
    "backward through the graph a second time or if you need to access saved tensors after "
    "calling backward."
)


# --------------------------------------------------------------------------- in-place writes
# PyTorch's version counters, kept per written array: an in-place write records
# (weakref to the base array, the clock at the write). A node whose saved arrays
# share a base written after the node was made refuses to run its backward.

_writes: dict = {}
_clock = itertools.count(1).__next__
# NB: the clock of the latest write anywhere. A node made after it (the usual training
# loop: ``opt.step()`` writes, then the next forward records) cannot have seen a later
# write, so the backward walk skips its per-array check. The lock keeps it the largest
# clock when threads write at once (a late store of an older clock would hide a write).
_latest_write = [0]
_write_lock = threading.Lock()
# NB: records of dead arrays are dropped when the table outgrows this size, which then
# doubles: a scan on every write, once thousands of written arrays live, cost ~1.5 ms.
_prune_at = [4096]


def base_array(array):
    """The array owning ``array``'s memory (``array`` itself when it is no view).

    >>> x = np.zeros(4)
    >>> base_array(x[1:].reshape(3, 1)) is x
    True
    """
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array



def mark_written(array):
    """Record an in-place write into ``array`` (and so into every view of its base)."""
    if not isinstance(array, np.ndarray):
        return
    base = base_array(array)
    with _write_lock:
        if len(_writes) > _prune_at[0]:
            _prune_dead_writes()
        clock = _latest_write[0] = _clock()
        _writes[id(base)] = (weakref.ref(base), clock)


def _prune_dead_writes():
    """Drop the write records of arrays that died (under ``_write_lock``)."""
    for key, (ref, _) in list(_writes.items()):
        if ref() is None:
            del _writes[key]
    _prune_at[0] = max(4096, 2 * len(_writes))


def _written_after(array, seq) -> bool:
    if not isinstance(array, np.ndarray):
        return False
    base = base_array(array)
    record = _writes.get(id(base))
    return record is not None and record[1] > seq and record[0]() is base


def check_saved(node, create_graph):
    """Raise if a value saved by ``node`` was modified in place after it was saved."""
    arrays = list(node._saved or ())
    if create_graph and node._args is not None:
        arrays += [a._value for a in node._args if hasattr(a, "_value")]
    for array in arrays:
        if _written_after(array, node._seq):
            shape = list(getattr(array, "shape", ()))
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: [{array.dtype} {shape}], saved by {type(node).__name__} "
                "(fgrad: an in-place update such as `w -= lr * w.grad` ran between the forward "
                "pass and backward(); do the update after backward(), or compute with a "
                "copy: w.clone())"
            )


class Node:
    """A recorded op (``tensor.grad_fn``). Subclasses carry PyTorch's names."""

    __slots__ = ("_entry", "_saved", "_args", "_next", "_seq", "__weakref__", "__dict__")
    _retained = None  # [(output_nr, weakref to a retaining tensor or None, hook or None)]
    _hooks = None

    def name(self) -> str:
        return type(self).__name__

    def __repr__(self):
        return f"<{type(self).__name__} object at {hex(id(self))}>"

    @property
    def next_functions(self):
        """``((node_or_AccumulateGrad, output_nr), ...)`` — one per differentiable input."""
        out = []
        for target, nr in self._next:
            if nr is None:
                out.append((AccumulateGrad(target), 0))
            else:
                out.append((target, nr))
        return tuple(out)

    def register_hook(self, hook):
        """``hook(grad_inputs, grad_outputs)`` runs after this node's backward; it may
        return replacement input gradients."""
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(hook)
        return _RemovableHandle(self._hooks, hook)


class AccumulateGrad:
    """The sink PyTorch shows for a leaf in ``next_functions``."""

    def __init__(self, variable):
        self.variable = variable
        self.next_functions = ()

    def name(self):
        return "AccumulateGrad"

    def __repr__(self):
        return f"<AccumulateGrad object at {hex(id(self))}>"

    def __eq__(self, other):
        return isinstance(other, AccumulateGrad) and other.variable is self.variable

    def __hash__(self):
        return id(self.variable)


class _RemovableHandle:
    def __init__(self, hooks, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self):
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def retain(node, output_nr, tensor=None, hook=None):
    """Make ``tensor`` (output ``output_nr`` of ``node``) receive its ``.grad``, or
    register ``hook`` on that output's gradient."""
    if node._retained is None:
        node._retained = []
    ref = weakref.ref(tensor) if tensor is not None else None
    node._retained.append((output_nr, ref, hook))
    return _RemovableHandle(node._retained, node._retained[-1])


# --------------------------------------------------------------------------- ordering


def topological_order(roots):
    """Nodes reachable from ``roots``, every node before the nodes it feeds from."""
    order = []
    visited = set()
    for root in roots:
        if root in visited:
            continue
        visited.add(root)
        stack = [(root, iter(root._next))]
        while stack:
            node, edges = stack[-1]
            for target, nr in edges:
                if nr is not None and target not in visited:
                    visited.add(target)
                    stack.append((target, iter(target._next)))
                    break
            else:
                stack.pop()
                order.append(node)
    order.reverse()
    return order


def _prune(order, input_nodes, input_leaves):
    """``(run, visit)``: nodes whose backward leads to a requested input, and those
    plus the nodes whose outputs are requested inputs."""
    run = set()
    for node in reversed(order):
        for target, nr in node._next:
            if nr is None:
                if id(target) in input_leaves:
                    run.add(node)
                    break
            elif target in run or target in input_nodes:
                run.add(node)
                break
    return run, run | input_nodes


# --------------------------------------------------------------------------- the walk


def _zeros_ct(aval, create_graph):
    zeros = np.zeros(aval.shape, aval.dtype)
    return _tensor_module().Tensor._wrap(zeros) if create_graph else zeros


class _TensorModule:
    Tensor = None  # set by fgrad._src.tensor.tensor (which imports this module)


def _tensor_module():
    return _TensorModule


def run_backward(roots, root_cts, retain_graph, create_graph, inputs=None, accumulate=True):
    """Propagate ``root_cts`` from the edges ``roots`` through the graph.

    With ``accumulate``, leaves (or only ``inputs``, when given) get their
    ``.grad`` accumulated. Returns the cotangents reaching ``inputs`` (None for
    an input no path reaches), which is what ``autograd.grad`` needs.
    """
    state = grad_mode.state
    prev_mode = state.enabled
    state.enabled = bool(create_graph)
    try:
        return _walk(roots, root_cts, retain_graph, create_graph, inputs, accumulate)
    finally:
        state.enabled = prev_mode


def _walk(roots, root_cts, retain_graph, create_graph, inputs, accumulate):
    # Nodes are numbered in creation order, which is a topological order; a max-heap on
    # that number runs each node after every consumer that can reach it (PyTorch's
    # scheduling), with no separate sorting pass and no recursion.
    only_inputs = inputs is not None
    input_leaves: dict = {}
    input_outputs: dict = {}  # (node, output_nr) -> input position
    run = visit = None
    if only_inputs:
        for k, t in enumerate(inputs):
            if t._grad_fn is None:
                input_leaves[id(t)] = k
            else:
                input_outputs[(t._grad_fn, t._output_nr)] = k
        order = topological_order([target for target, nr in roots if nr is not None])
        run, visit = _prune(order, {n for n, _ in input_outputs}, input_leaves)
    captured: list = [None] * (len(inputs) if only_inputs else 0)
    buffers: dict = {}
    leaf_cts: dict = {}  # id(leaf) -> (leaf, cotangent, whether the walk owns its array)
    heap: list = []
    # NB: a leaf may keep a cotangent array as its .grad (no copy) only when nothing else
    # can see that array: a fresh output of a backward program (see program.compile_jaxpr)
    # or a sum made here, never a root cotangent, a hook's result, or what
    # autograd.grad returns to the caller.
    can_own = accumulate and not only_inputs and not create_graph

    def send_leaf(target, ct, owned=False):
        key = id(target)
        if only_inputs and key not in input_leaves:
            return
        prev = leaf_cts.get(key)
        if prev is None:
            leaf_cts[key] = (target, ct, owned and can_own)
        else:
            leaf_cts[key] = (target, prev[1] + ct, can_own)

    for (target, nr), ct in zip(roots, root_cts):
        if nr is None:
            send_leaf(target, ct)
            continue
        if only_inputs and target not in visit:
            continue
        buf = buffers.get(target)
        if buf is None:
            buf = buffers[target] = [None] * target._entry.n_out
            heappush(heap, (-target._seq, target))
        buf[nr] = ct if buf[nr] is None else buf[nr] + ct

    while heap:
        node = heappop(heap)[1]
        cts = buffers.pop(node)
        if node._retained is not None:
            _tensor_hooks(node, cts, create_graph)
        if only_inputs:
            for nr, ct in enumerate(cts):
                k = input_outputs.get((node, nr))
                if k is not None and ct is not None:
                    captured[k] = ct
            if node not in run:
                continue
        entry = node._entry
        if entry.n_res and _latest_write[0] > node._seq:
            check_saved(node, create_graph)
        # NB: inlined _node_backward for the common case (one output, no create_graph).
        if entry.n_out == 1 and not create_graph:
            if entry.n_res:
                saved = node._saved
                if saved is None:
                    _raise_freed(node)
                grads = entry.backward(*saved, cts[0])
                if not retain_graph:
                    node._saved = None
                    node._args = None
            else:
                grads = entry.backward(cts[0])
        else:
            grads = _node_backward(node, entry, cts, create_graph)
            if not retain_graph and entry.n_res:
                node._saved = None
                node._args = None
        fresh = entry.bwd_fresh
        if node._hooks:
            grads = _run_node_hooks(node, grads, cts)
            fresh = _NOT_FRESH
        nxt = node._next
        for slot, g, owned in zip(entry.ct_slots, grads, fresh):
            target, nr = nxt[slot]
            if nr is None:
                send_leaf(target, g, owned)
                continue
            buf = buffers.get(target)
            if buf is None:
                if only_inputs and target not in visit:
                    continue
                buf = buffers[target] = [None] * target._entry.n_out
                heappush(heap, (-target._seq, target))
                buf[nr] = g
            else:
                prev = buf[nr]
                buf[nr] = g if prev is None else prev + g

    for key, (leaf, ct, owned) in leaf_cts.items():
        if leaf._hooks:  # NB: for backward and autograd.grad alike, as PyTorch runs them
            ct, owned = _leaf_hooks(leaf, ct, create_graph), False
        if only_inputs:
            captured[input_leaves[key]] = ct
        if accumulate:
            accumulate_grad(leaf, ct, create_graph, owned)
    return captured


def _leaf_hooks(leaf, ct, create_graph):
    """``ct`` after the hooks registered on ``leaf`` (each may return a replacement of
    the same shape)."""
    Tensor = _tensor_module().Tensor
    for hook in list(leaf._hooks):
        wrapped = ct if isinstance(ct, Tensor) else Tensor._wrap(ct)
        out = _checked_hook_result(hook, hook(wrapped))
        if out is None:
            continue
        if tuple(out.shape) != tuple(np.shape(wrapped._value)):
            raise RuntimeError(
                f"hook '{getattr(hook, '__name__', 'hook')}' has changed the size of value: "
                f"it returned shape {list(out.shape)} for a gradient of shape "
                f"{list(np.shape(wrapped._value))}")
        ct = out if create_graph else out._value
    return ct


def _checked_hook_result(hook, out):
    """A tensor hook returns None or a Tensor (PyTorch's TypeError otherwise)."""
    if out is not None and not isinstance(out, _tensor_module().Tensor):
        raise TypeError(f"expected Tensor, but hook '{getattr(hook, '__name__', 'hook')}' "
                        f"returned '{type(out).__name__}' (return a gradient tensor of the "
                        "same shape, or None to keep the gradient)")
    return out


class _NotFresh:
    """``entry.bwd_fresh`` after a node hook replaced the gradients: nothing is owned."""

    def __iter__(self):
        return itertools.repeat(False)


_NOT_FRESH = _NotFresh()


def _raise_freed(node):
    raise RuntimeError(
        f"{_FREED_MESSAGE} (fgrad: the saved values of {type(node).__name__} were freed by "
        "an earlier backward; pass retain_graph=True to the first backward() or "
        "autograd.grad() call that walks this graph.)"
    )


def _node_backward(node, entry, cts, create_graph):
    if entry.n_res and node._saved is None:
        _raise_freed(node)
    full = []
    for j, d in enumerate(entry.out_diff):
        if d:
            ct = cts[j]
            full.append(_zeros_ct(entry.out_avals[j], create_graph) if ct is None else ct)
    if create_graph:
        from fgrad._src.tensor import dispatch

        return dispatch.apply_backward(node, entry, full)
    return entry.backward(*node._saved, *full) if entry.n_res else entry.backward(*full)


def _run_node_hooks(node, grads, cts):
    for hook in list(node._hooks):
        out = hook(tuple(grads), tuple(cts))
        if out is not None:
            grads = list(out)
    return grads


def _tensor_hooks(node, cts, create_graph):
    """Run hooks registered on the node's output tensors, then fill retained grads."""
    Tensor = _tensor_module().Tensor
    for nr, _, hook in node._retained:
        if hook is None or cts[nr] is None:
            continue
        ct = cts[nr]
        out = _checked_hook_result(hook, hook(ct if create_graph else Tensor._wrap(ct)))
        if out is not None:
            cts[nr] = out if create_graph else out._value
    for nr, ref, hook in node._retained:
        t = ref() if ref is not None else None
        if hook is not None or t is None or cts[nr] is None:
            continue
        ct = cts[nr]
        if t._grad is None:
            t._grad = ct if create_graph else Tensor._wrap(np.array(ct, dtype=t._value.dtype))
        elif create_graph:
            t._grad = t._grad + ct
        else:
            t._grad = Tensor._wrap(t._grad._value + ct)


_accumulate_lock = threading.Lock()


def accumulate_grad(leaf, ct, create_graph, owned=False):
    """Add ``ct`` into ``leaf.grad`` (PyTorch's AccumulateGrad); the leaf's hooks have
    run already (``_leaf_hooks``).

    ``owned``: ``ct`` is an array nothing else refers to, so a first gradient may be
    kept as it is instead of copied (PyTorch steals such a gradient too).
    """
    if not leaf._requires_grad:
        return  # frozen after the forward pass: PyTorch's AccumulateGrad skips it too
    # NB: threads that call backward() on graphs sharing a leaf accumulate in turn, as in
    # PyTorch: two first gradients must not both see ``grad is None``, nor two in-place
    # additions interleave.
    with _accumulate_lock:
        _accumulate(leaf, ct, create_graph, owned)


def _accumulate(leaf, ct, create_graph, owned):
    Tensor = _tensor_module().Tensor
    grad = leaf._grad
    if create_graph:
        leaf._grad = ct if grad is None else grad + ct
        return
    if isinstance(ct, Tensor):
        ct = ct._value
    if grad is None:
        value = leaf._value
        if not (owned and type(ct) is np.ndarray and ct.dtype == value.dtype
                and ct.shape == value.shape and ct.flags.writeable):
            ct = np.array(ct, dtype=value.dtype)
        leaf._grad = Tensor._wrap(ct)
    elif grad._requires_grad or not grad._value.flags.writeable:
        leaf._grad = Tensor._wrap(grad._value + ct)
    else:
        np.add(grad._value, ct, out=grad._value, casting="unsafe")
        mark_written(grad._value)


def reset_grad(param, set_to_none=True):
    """Clear ``param.grad``: drop it (``set_to_none``) or zero it in place, detached.

    Shared by ``Module.zero_grad`` and ``Optimizer.zero_grad``.
    """
    grad = param._grad
    if grad is None:
        return
    if set_to_none:
        param._grad = None
        return
    if grad.grad_fn is not None:
        grad.detach_()
    if not grad._value.flags.writeable:
        grad._value = np.array(grad._value)
    grad._value[...] = 0
    mark_written(grad._value)
