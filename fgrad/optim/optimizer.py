"""``Optimizer``: parameter groups, per-parameter state, ``zero_grad``, ``state_dict``.

Subclasses implement ``_update(group, param, grad, state)`` on NumPy arrays:
updates write into the parameters' arrays in place and never record a graph
(the same objects stay registered in the model, as in PyTorch). Parameters
whose ``grad`` is None or that do not require grad (frozen) are skipped.
"""

from __future__ import annotations

import copy
import numbers
from collections import defaultdict

import numpy as np

from fgrad._src.backend import blas as numpy_blas
from fgrad._src.tensor import blas, grad_mode
from fgrad._src.tensor.graph import mark_written, reset_grad
from fgrad._src.tensor.tensor import Tensor


class _Required:
    def __repr__(self):
        return "<required parameter>"


required = _Required()


def _param_names(params):
    """The names of ``(name, Tensor)`` pairs (from ``named_parameters()``), or None when
    the params are plain Tensors; a mix of both is PyTorch's ValueError."""
    named = [isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in params]
    if not any(named):
        return None
    if not all(named):
        raise ValueError("all optimizer params should be with or without names: give "
                         "model.parameters() or model.named_parameters(), not a mix")
    return [name for name, _ in params]


def _as_value(x):
    return x.item() if isinstance(x, Tensor) else x


def _check_number(name, value):
    """A numeric hyperparameter must be a real number (or a 0-d float Tensor, as PyTorch
    allows for ``lr``), not a string or None that fails later inside ``step()``."""
    if isinstance(value, Tensor):
        if value.ndim == 0 and value.dtype.is_floating_point:
            return
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        return
    raise TypeError(f"optimizer hyperparameter {name} must be a number, got "
                    f"{type(value).__name__} {value!r:.40}")


class Optimizer:
    """Base class of ``SGD``, ``Adam`` and ``AdamW``.

    ``params`` is an iterable of Tensors, or of ``(name, Tensor)`` pairs (e.g.
    ``model.named_parameters()``: each group then lists them in ``"param_names"``), or of
    dicts (parameter groups) each with a ``"params"`` entry and optional per-group
    hyperparameters that override the optimizer's defaults.

    >>> import fgrad as fg
    >>> from fgrad import nn, optim
    >>> model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    >>> opt = optim.SGD([{"params": model[0].parameters()},
    ...                  {"params": model[1].parameters(), "lr": 0.5}], lr=0.1)
    >>> [g["lr"] for g in opt.param_groups]
    [0.1, 0.5]
    """

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = defaultdict(dict)
        self.param_groups = []
        if isinstance(params, (Tensor, np.ndarray)):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or "
                f"dicts, but got {Tensor.type(params) if isinstance(params, Tensor) else 'ndarray'}"
                " (pass model.parameters() or [tensor])")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group):
        """Add a group ``{"params": [...], **hyperparameters}`` (e.g. for a new layer)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        group = dict(param_group)
        if "params" not in group:
            raise ValueError(f"a parameter group needs a 'params' entry (the tensors to "
                             f"optimize); got the keys {sorted(map(str, group))}")
        params = group.get("params")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, "
                            "but the ordering of tensors in sets will change between runs. "
                            "Please use a list instead.")
        else:
            params = list(params)
        names = _param_names(params)
        if names is not None:
            group["param_names"] = names
            params = [p for _, p in params]
        if self.param_groups and (names is None) != ("param_names" not in self.param_groups[0]):
            raise ValueError("all optimizer param groups should be with or without names: "
                             "give every group named_parameters(), or none")
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is "
                                f"{type(p).__name__}")
            if p.grad_fn is not None:
                raise ValueError("can't optimize a non-leaf Tensor")
            if p._value.dtype.kind != "f":
                raise TypeError(f"optimizer can only optimize floating point Tensors, got "
                                f"{p.dtype}")
        if len({id(p) for p in params}) != len(params):
            raise ValueError("optimizer contains a parameter group with duplicate parameters")
        group["params"] = params
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            group.setdefault(name, default)
        for name in self._numbers:
            _check_number(name, group[name])
        for name in self._pairs:
            value = group[name]
            if not (isinstance(value, (tuple, list)) and len(value) == 2):
                raise TypeError(f"optimizer hyperparameter {name} must be a pair of numbers, "
                                f"got {value!r:.40}")
            for v in value:
                _check_number(name, v)
            group[name] = tuple(value)
        self._check_hyperparameters(group)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    # Hyperparameters that must be numbers, and pairs of numbers (per subclass).
    _numbers: tuple = ()
    _pairs: tuple = ()

    def _check_hyperparameters(self, group):
        pass

    # ------------------------------------------------------------------ gradients

    def zero_grad(self, set_to_none=True):
        """Reset the gradients of every parameter (to None by default, as PyTorch)."""
        for group in self.param_groups:
            for p in group["params"]:
                reset_grad(p, set_to_none)

    def step(self, closure=None):
        """Update every parameter that has a gradient. ``closure`` (optional) re-evaluates
        the model and returns the loss, which ``step`` returns."""
        loss = None
        if closure is not None:
            with grad_mode.enable_grad():
                loss = closure()
        with grad_mode.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    grad = p._grad
                    if grad is None or not p._requires_grad:
                        continue  # frozen, or not reached by backward()
                    if not p._value.flags.writeable:
                        p._value = np.array(p._value)
                    self._update(group, p, grad._value, self.state[p])
                    # NB: a graph that saved p's values (p * p) must not backward through
                    # the new ones: it raises PyTorch's in-place error instead.
                    mark_written(p._value)
        return loss

    def _update(self, group, param, grad, state):
        raise NotImplementedError

    # ------------------------------------------------------------------ state dict

    def state_dict(self):
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [index, ...]}]}``,
        parameters numbered in group order, as PyTorch's."""
        index = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                packed["params"].append(index[id(p)])
            groups.append(packed)
        state = {index[id(p)]: dict(s) for p, s in self.state.items() if id(p) in index and s}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore hyperparameters and state saved by ``state_dict`` (e.g. via
        ``fg.save``/``fg.load``) into an optimizer over the same parameters."""
        if not isinstance(state_dict, dict) or "param_groups" not in state_dict:
            raise ValueError("optimizer state_dict must be a dict with 'state' and "
                             "'param_groups' entries (from optimizer.state_dict())")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups "
                             f"({len(saved_groups)} vs {len(self.param_groups)})")
        for mine, saved in zip(self.param_groups, saved_groups):
            if len(mine["params"]) != len(saved["params"]):
                raise ValueError(
                    "loaded state dict contains a parameter group that doesn't match the size "
                    f"of optimizer's group ({len(saved['params'])} vs {len(mine['params'])})")
        id_map = {}
        for mine, saved in zip(self.param_groups, saved_groups):
            for p, i in zip(mine["params"], saved["params"]):
                id_map[int(i)] = p
        new_state = defaultdict(dict)
        for key, value in state_dict.get("state", {}).items():
            p = id_map.get(int(key))
            if p is None:
                continue
            new_state[p] = {k: self._cast_state(p, k, v) for k, v in value.items()}
        for mine, saved in zip(self.param_groups, saved_groups):
            for k, v in saved.items():
                if k != "params":
                    mine[k] = tuple(v) if isinstance(v, list) and k == "betas" else copy.deepcopy(
                        v)
        self.state = new_state

    @staticmethod
    def _cast_state(param, key, value):
        if isinstance(value, np.ndarray):
            value = Tensor._wrap(value)
        if not isinstance(value, Tensor):
            return copy.deepcopy(value)
        array = np.array(value._value)
        if key != "step":
            if array.shape != param._value.shape:
                raise ValueError(f"optimizer state {key!r} has shape {array.shape}, but its "
                                 f"parameter has shape {param._value.shape}")
            if array.dtype.kind == "f":
                array = array.astype(param._value.dtype)
        return Tensor._wrap(array)

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    def __getstate__(self):
        return self.__dict__

    def __setstate__(self, state):
        self.__dict__.update(state)


# Arrays from this many elements on are updated by BLAS axpy (one pass, no temporary).
_AXPY_MIN = 1 << 14


def sub_scaled_(param, scale, update):
    """``param -= scale * update`` in place on NumPy arrays.

    Large contiguous float32/float64 arrays go to BLAS ``axpy`` (``y += a * x``, as
    PyTorch's ``param.add_(update, alpha=-lr)``): one pass over memory instead of
    NumPy's two plus a temporary the size of the parameter. NumPy's own BLAS is used
    when it has ``axpy`` (``fgrad._src.backend.blas``, any thread count), else SciPy's
    when BLAS runs single-threaded (see ``fgrad._src.tensor.blas``).

    >>> p = np.ones(3)
    >>> sub_scaled_(p, 0.5, np.array([1.0, 2.0, 4.0]))
    >>> p
    array([ 0.5,  0. , -1. ])
    """
    # NB: not for a zero scale: BLAS skips axpy with a == 0, so an infinite or NaN update
    # would not turn the parameter into NaN as ``param - 0 * update`` does (and PyTorch).
    # Read-only or overlapping arrays take NumPy's path, which raises or handles them.
    if (scale != 0 and param.size >= _AXPY_MIN and type(update) is np.ndarray
            and update.dtype == param.dtype and update.shape == param.shape
            and param.flags.c_contiguous and update.flags.c_contiguous
            and param.flags.writeable and not np.may_share_memory(param, update)):
        numpy_axpy = numpy_blas.axpy(param.dtype)
        if numpy_axpy is not None:
            numpy_axpy(param.size, -float(scale), update.ctypes.data, 1, param.ctypes.data, 1)
            return
        axpy = blas.routine("axpy", param.dtype)
        if axpy is not None:
            flat = param.reshape(-1)
            out = axpy(update.reshape(-1), flat, a=-float(scale))
            if not np.may_share_memory(out, flat):  # NB: f2py copied instead of updating
                flat[...] = out
            return
    param -= scale * update


def _buffer(state, key, like):
    t = state.get(key)
    if t is None:
        t = state[key] = Tensor._wrap(np.zeros_like(like))
    return t._value
