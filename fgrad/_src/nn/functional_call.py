"""The bridge between ``nn.Module`` and the functional transforms.

``get_params(model)`` returns the parameters as a pytree (a dict of NumPy
arrays keyed by dotted name); ``functional_call(model, params, x)`` runs
``model(x)`` with those values in place of the module's own. Inside
``fg.grad``/``fg.jit`` the values are tracers: the module's Tensor ops then run
their ``fgrad.numpy`` functions on the tracers (see ``tracing``), so the
transform differentiates and compiles the forward pass like any other NumPy
function.

>>> import numpy as np
>>> import fgrad as fg
>>> from fgrad import nn
>>> _ = fg.manual_seed(0)
>>> model = nn.Linear(3, 1)
>>> params = nn.get_params(model)
>>> sorted(params), params["weight"].dtype
(['bias', 'weight'], dtype('float32'))
>>> x = np.ones((4, 3), np.float32)
>>> def loss(p):
...     return fg.numpy.mean(nn.functional_call(model, p, x) ** 2)
>>> grads = fg.jit(fg.grad(loss))(params)
>>> grads["weight"].shape
(1, 3)
"""

from __future__ import annotations

import warnings

import numpy as np

from fgrad._src.core import Tracer
from fgrad._src.nn.module import Module
from fgrad._src.nn.tracing import state as _traced
from fgrad._src.tensor import grad_mode
from fgrad._src.tensor.tensor import Tensor
from fgrad._src.tree import tree_map


def get_params(module, buffers=False):
    """The module's parameters as a dict ``{dotted_name: NumPy array}`` (copies).

    With ``buffers=True`` persistent buffers are included too. The dict is a
    pytree: pass it to ``fg.grad``/``fg.jit`` functions that call
    ``functional_call``, update it with ``fg.tree_util.tree_map`` and write it
    back with ``set_params``.

    >>> from fgrad import nn
    >>> p = get_params(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)))
    >>> {k: v.shape for k, v in p.items()}
    {'0.weight': (3, 2), '0.bias': (3,), '2.weight': (1, 3), '2.bias': (1,)}
    """
    if not isinstance(module, Module):
        raise TypeError(f"get_params expects an nn.Module, got {type(module).__name__}")
    out = {name: np.array(p._value) for name, p in module.named_parameters()}
    if buffers:
        for name, buf in module.named_buffers():
            owner, _, leaf = name.rpartition(".")
            if leaf not in module.get_submodule(owner)._non_persistent_buffers_set:
                out[name] = np.array(buf._value)
    return out


def set_params(module, params):
    """Copy ``params`` (``{dotted_name: array or Tensor}``) into the module's parameters
    and buffers in place. Names the module does not have are an error; names that
    ``params`` leaves out keep their values. Returns the module.

    >>> import numpy as np
    >>> from fgrad import nn
    >>> layer = set_params(nn.Linear(2, 1), {"bias": np.array([5.0])})
    >>> layer.bias
    Parameter containing:
    tensor([5.], requires_grad=True)
    """
    targets = module._state_targets()
    for name, p in module.named_parameters():
        targets.setdefault(name, p)
    unknown = [k for k in params if k not in targets]
    if unknown:
        raise KeyError(f"set_params: {type(module).__name__} has no parameter or buffer named "
                       f"{unknown}; its names are {list(targets)}")
    module.load_state_dict({k: v for k, v in params.items()}, strict=False)
    return module


def _leaf_tensor(x):
    if isinstance(x, Tracer):
        return Tensor._wrap(x)
    if isinstance(x, (np.ndarray, np.generic)):
        # NB: a copy, so that an in-place op in the forward cannot write into the
        # caller's array (arrays in, arrays out: JAX's contract; under jit the inputs are
        # traced and nothing is copied)
        return Tensor._wrap(np.array(x))
    return x


def _unwrap(x):
    return x._value if isinstance(x, Tensor) else x


def _slots(module, values, given, strict):
    """``[(store, name, new_value)]`` for every registration of the named tensors
    (a parameter tied into several modules is replaced everywhere). ``given`` holds the
    caller's values (before conversion): two different ones for tied names are an error,
    as in PyTorch. A name the module does not have is an error with ``strict``, and
    skipped with a warning (a typo?) without it, as PyTorch's non-strict call skips it."""
    by_id = {}
    keys_by_id: dict = {}
    for key, value in values.items():
        owner_path, _, name = key.rpartition(".")
        try:
            owner = module.get_submodule(owner_path)
        except AttributeError:
            owner = None
        store = None
        if owner is not None:
            if name in owner._parameters and owner._parameters[name] is not None:
                store = owner._parameters
            elif name in owner._buffers and owner._buffers[name] is not None:
                store = owner._buffers
        if store is None:
            known = [n for n, _ in module.named_parameters()] + [
                n for n, _ in module.named_buffers()]
            message = (f"{type(module).__name__} has no parameter or buffer named {key!r}; "
                       f"its names are {known}")
            if strict:
                raise KeyError(f"functional_call(strict=True): {message}")
            warnings.warn(f"functional_call: {message}; the value is not used", UserWarning,
                          stacklevel=3)
            continue
        original = store[name]
        keys = keys_by_id.setdefault(id(original), [])
        keys.append(key)
        if len({id(given[k]) for k in keys}) > 1:
            raise ValueError(f"functional_call got multiple values for keys {sorted(keys)}, "
                             "which are tied (one parameter shared by several modules): "
                             "give one of them")
        shape = getattr(value, "shape", None)
        if shape is not None and tuple(shape) != tuple(original.shape):
            raise ValueError(
                f"functional_call: the value for {key!r} has shape {tuple(shape)}, but the "
                f"module's {key!r} has shape {tuple(original.shape)}")
        by_id[id(original)] = value
    slots = []
    for _, sub in module.named_modules(remove_duplicate=True):
        for store in (sub._parameters, sub._buffers):
            for name, t in store.items():
                if t is not None and id(t) in by_id:
                    slots.append((store, name, by_id[id(t)]))
    return slots


def functional_call(module, parameters_and_buffers, *args, strict=False, **kwargs):
    """Call ``module(*args, **kwargs)`` with the values in ``parameters_and_buffers``
    (``{dotted_name: value}``, or a tuple of such dicts) standing in for the module's
    own parameters and buffers. The module is restored afterwards.

    * Values that are NumPy arrays or tracers (inside ``fg.grad``, ``fg.jit``,
      ...): array inputs are wrapped as Tensors, the forward pass runs without
      recording a Tensor graph, and the outputs come back as arrays (tracers
      under a transform). This is the JAX-style path:
      ``fg.jit(fg.value_and_grad(loss))(params, x, y)``.
    * Values that are Tensors: the call is an ordinary eager forward, recorded as
      usual, and returns Tensors (``torch.func.functional_call``).

    ``strict=True`` requires a value for every parameter and buffer. Inside
    ``fg.jit`` the module's Python state (``training``, dropout masks drawn while
    tracing) is frozen into the compiled program.

    >>> import numpy as np
    >>> from fgrad import nn
    >>> layer = nn.Linear(2, 1)
    >>> params = {"weight": np.array([[1.0, 2.0]], np.float32), "bias": np.zeros(1, np.float32)}
    >>> functional_call(layer, params, np.array([[3.0, 4.0]], np.float32))
    array([[11.]], dtype=float32)
    """
    if not isinstance(module, Module):
        raise TypeError(f"functional_call expects an nn.Module, got {type(module).__name__}")
    values = parameters_and_buffers
    if isinstance(values, (tuple, list)):
        merged = {}
        for d in values:
            for k, v in d.items():
                if k in merged:
                    raise ValueError(f"functional_call: {k!r} appears in more than one dict")
                merged[k] = v
        values = merged
    if not hasattr(values, "items"):
        raise TypeError("functional_call expects a dict {name: value} (or a tuple of dicts), "
                        f"got {type(values).__name__}")
    tensor_mode = any(isinstance(v, Tensor) for v in values.values())
    converted = {k: v if isinstance(v, Tensor) else Tensor._wrap(
        v if isinstance(v, Tracer) else np.asarray(v)) for k, v in values.items()}
    slots = _slots(module, converted, values, strict)  # NB: unknown names first
    if strict:
        known = {n for n, _ in module.named_parameters()} | {
            n for n, _ in module.named_buffers()}
        missing = sorted(known - set(values))
        if missing:
            raise KeyError(f"functional_call(strict=True): missing values for {missing}")
    traced = any(isinstance(v, Tensor) and isinstance(v._value, Tracer)
                 for v in converted.values())
    leaves_in = (args, kwargs)
    if not tensor_mode:
        traced = traced or any(isinstance(x, Tracer) for x in _leaves(leaves_in))
        args, kwargs = tree_map(_leaf_tensor, leaves_in)
    saved = [(store, name, store[name]) for store, name, _ in slots]
    try:
        for store, name, value in slots:
            store[name] = value
        if tensor_mode:
            return module(*args, **kwargs)
        if traced:
            _traced.active += 1
        try:
            with grad_mode.no_grad():
                out = module(*args, **kwargs)
        finally:
            if traced:
                _traced.active -= 1
        return tree_map(_unwrap, out)
    finally:
        for store, name, original in reversed(saved):
            store[name] = original


def _leaves(tree):
    from fgrad._src.tree import tree_leaves

    return tree_leaves(tree)
