"""``nn.Module`` and ``nn.Parameter``, with PyTorch's registration rules.

Assigning a ``Parameter`` to a module attribute registers it in ``_parameters``,
assigning a ``Module`` registers it in ``_modules``, and ``register_buffer``
adds non-trainable state to ``_buffers``. Everything else (``parameters()``,
``state_dict()``, ``zero_grad()``, ``to(dtype)``, the ``repr``) walks those
three ordered dicts, so replacing ``model.fc = nn.Linear(...)`` swaps the layer
in every one of them.
"""

from __future__ import annotations

import copy
import itertools
from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from fgrad._src.tensor import grad_mode, graph
from fgrad._src.tensor.dtype import as_dtype
from fgrad._src.tensor.graph import reset_grad
from fgrad._src.tensor.tensor import Size, Tensor, _as_array, check_device


class Parameter(Tensor):
    """A Tensor that a ``Module`` registers as a parameter when assigned to an attribute.

    It shares memory with ``data`` and requires grad by default.

    >>> import fgrad as fg
    >>> p = fg.nn.Parameter(fg.ones(2))
    >>> p
    Parameter containing:
    tensor([1., 1.], requires_grad=True)
    >>> (p * 3).sum().backward()
    >>> p.grad
    tensor([3., 3.])
    """

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            value = np.zeros((0,), np.float32)
        elif isinstance(data, Tensor):
            value = data._value
        elif isinstance(data, np.ndarray):
            value = data
        else:
            value = _as_array(data)
        self._init(value, None, False, 0)
        if requires_grad is not False:
            self.requires_grad_(requires_grad)  # NB: checks that it is a bool

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        out = Parameter(np.array(self._value), self._requires_grad)
        if self._grad is not None:
            out._grad = Tensor._wrap(np.array(self._grad._value))
        memo[id(self)] = out
        return out

    def __reduce_ex__(self, protocol):
        return (Parameter, (np.array(self._value), self._requires_grad))


class _IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(strict=False)`` did not match."""

    missing_keys: list
    unexpected_keys: list

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return (f"_IncompatibleKeys(missing_keys={self.missing_keys}, "
                f"unexpected_keys={self.unexpected_keys})")

    __str__ = __repr__


def _addindent(text, spaces):
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    first = lines.pop(0)
    return first + "\n" + "\n".join(" " * spaces + line for line in lines)


class _RemovableHandle:
    _ids = itertools.count()

    def __init__(self, hooks):
        self._hooks = hooks
        self.id = next(self._ids)

    def remove(self):
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _type_name(value):
    if isinstance(value, Tensor):
        return Tensor.type(value)
    return type(value).__name__


class Module:
    """Base class of every layer and model.

    Subclasses call ``super().__init__()``, assign parameters and submodules as
    attributes, and define ``forward``; calling the module runs ``forward``.

    >>> import fgrad as fg
    >>> from fgrad import nn
    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.hidden = nn.Linear(4, 3)
    ...         self.out = nn.Linear(3, 2)
    ...     def forward(self, x):
    ...         return self.out(self.hidden(x).relu())
    >>> net = Net()
    >>> [name for name, _ in net.named_parameters()]
    ['hidden.weight', 'hidden.bias', 'out.weight', 'out.bias']
    >>> net(fg.ones(5, 4)).shape
    fgrad.Size([5, 2])
    >>> net
    Net(
      (hidden): Linear(in_features=4, out_features=3, bias=True)
      (out): Linear(in_features=3, out_features=2, bias=True)
    )
    """

    training: bool

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise TypeError(
                f"{type(self).__name__}.__init__() got unexpected arguments; Module.__init__ "
                "takes none")
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers_set", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())

    # ------------------------------------------------------------------ registration

    def _check_init(self, what):
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {what} before Module.__init__() call (call super().__init__() "
                f"first in {type(self).__name__}.__init__)")

    def register_parameter(self, name, param):
        """Add ``param`` (a ``Parameter`` or None) under ``name``."""
        self._check_init("parameter")
        _check_name(self, name, "parameter", self._parameters)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign '{_type_name(param)}' object to parameter '{name}' "
                "(fgrad.nn.Parameter or None required)")
        if param is not None and param.grad_fn is not None:
            raise ValueError(
                f"Cannot assign non-leaf Tensor to parameter '{name}'. Model parameters must "
                f"be created explicitly; to express '{name}' as a function of another Tensor, "
                "compute the value in the forward() method.")
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """Add non-trainable state (saved in ``state_dict`` when ``persistent``).

        >>> from fgrad import nn
        >>> import fgrad as fg
        >>> m = nn.Module()
        >>> m.register_buffer("running_mean", fg.zeros(3))
        >>> list(m.state_dict())
        ['running_mean']
        """
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        _check_name(self, name, "buffer", self._buffers)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"cannot assign '{_type_name(tensor)}' object to buffer '{name}' "
                "(fgrad Tensor or None required)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name, module):
        """Add a child module under ``name`` (same as attribute assignment)."""
        if not isinstance(module, Module) and module is not None:
            raise TypeError(f"{_type_name(module)} is not a Module subclass")
        if not isinstance(name, str):
            raise TypeError(f"module name should be a string. Got {type(name).__name__}")
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        if "." in name or name == "":
            raise KeyError(f'module name can\'t contain ".", got: {name!r}'
                           if name else 'module name can\'t be empty string ""')
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name, value):
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            self._check_init("parameters")
            _remove_from(self, name, "__dict__", "_buffers", "_modules")
            self.register_parameter(name, value)
            return
        if params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{_type_name(value)}' as parameter '{name}' "
                    "(fgrad.nn.Parameter or None expected)")
            self.register_parameter(name, value)
            return
        if isinstance(value, Module):
            self._check_init("child module")
            _remove_from(self, name, "__dict__", "_parameters", "_buffers")
            self._modules[name] = value
            return
        modules = self.__dict__.get("_modules")
        if modules is not None and name in modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{_type_name(value)}' as child module '{name}' "
                    "(fgrad.nn.Module or None expected)")
            modules[name] = value
            return
        buffers = self.__dict__.get("_buffers")
        if buffers is not None and name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"cannot assign '{_type_name(value)}' as buffer '{name}' "
                    "(fgrad.Tensor or None expected)")
            buffers[name] = value
            return
        object.__setattr__(self, name, value)

    def __getattr__(self, name):
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            members = d.get(store)
            if members is not None and name in members:
                return members[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for store in ("_parameters", "_buffers", "_modules"):
            members = self.__dict__.get(store)
            if members is not None and name in members:
                del members[name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        keys = set(super().__dir__())
        for store in ("_parameters", "_buffers", "_modules"):
            keys.update(self.__dict__.get(store, ()))
        return sorted(keys)

    def __setstate__(self, state):
        self.__dict__.update(state)

    # ------------------------------------------------------------------ traversal

    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """``(name, module)`` for this module and every descendant (depth first)."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            sub = prefix + ("." if prefix else "") + name
            yield from module.named_modules(memo, sub, remove_duplicate)

    def modules(self):
        """This module and every descendant, each once."""
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        """``(name, module)`` for the direct children."""
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def _named_members(self, store, prefix, recurse, remove_duplicate):
        seen = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if (
            recurse) else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in getattr(module, store).items():
                if value is None:
                    continue
                if remove_duplicate:
                    if id(value) in seen:
                        continue
                    seen.add(id(value))
                yield module_prefix + ("." if module_prefix else "") + name, value

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """``(dotted_name, Parameter)`` pairs; a shared parameter appears once."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        """Every parameter (each once), e.g. for an optimizer."""
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, buf in self.named_buffers(recurse=recurse):
            yield buf

    def get_submodule(self, target):
        """The submodule at a dotted path such as ``"encoder.0"`` (``""`` is ``self``)."""
        if target == "":
            return self
        module = self
        for i, item in enumerate(target.split(".")):
            child = module._modules.get(item) if isinstance(module, Module) else None
            if child is None:
                where = ".".join(target.split(".")[:i]) or type(self).__name__
                raise AttributeError(f"{where} has no submodule `{item}` (looking up "
                                     f"{target!r})")
            module = child
        return module

    def get_parameter(self, target):
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if name not in module._parameters:
            raise AttributeError(f"`{target}` is not a parameter")
        return module._parameters[name]

    def get_buffer(self, target):
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if name not in module._buffers:
            raise AttributeError(f"`{target}` is not a buffer")
        return module._buffers[name]

    def apply(self, fn):
        """Call ``fn(m)`` on every submodule (children first) and on ``self``; return self."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ modes and grads

    def train(self, mode=True):
        """Set training mode (``Dropout`` is active) on this module and its descendants."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        object.__setattr__(self, "training", mode)
        for child in self.children():  # NB: each child's own train(), which may be overridden
            child.train(mode)
        return self

    def eval(self):
        """Evaluation mode: same as ``train(False)``. Returns ``self``."""
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        """Set ``requires_grad`` on every parameter (``False`` freezes the module)."""
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Reset the gradients of every parameter (to None by default, as PyTorch)."""
        for param in self.parameters():
            reset_grad(param, set_to_none)

    # ------------------------------------------------------------------ dtype

    def to(self, *args, dtype=None, **kwargs):
        """Cast floating-point parameters and buffers to ``dtype`` in place (the
        Parameter objects stay the same, so optimizers keep working). Devices other
        than ``"cpu"`` are not available."""
        for a in args:
            if isinstance(a, Tensor):
                dtype = a.dtype
            elif a is None or isinstance(a, str) or hasattr(a, "type") and not isinstance(
                    a, type):
                check_device(a, "put a module")
            else:
                dtype = a
        check_device(kwargs.get("device"), "put a module")
        for key in ("device", "non_blocking", "memory_format"):
            kwargs.pop(key, None)
        if kwargs:
            raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
        if dtype is None:
            return self
        target = as_dtype(dtype).dtype
        if target.kind != "f":
            raise TypeError(
                f"nn.Module.to only accepts floating point dtypes, but got desired dtype="
                f"{as_dtype(dtype)}")
        for module in self.modules():
            for store in (module._parameters, module._buffers):
                for t in store.values():
                    if t is None or t._value.dtype.kind != "f" or t._value.dtype == target:
                        continue
                    t._value = t._value.astype(target)
                    if t._grad is not None:
                        t._grad = Tensor._wrap(t._grad._value.astype(target))
        return self

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    def cpu(self):
        return self

    def type(self, dst_type):
        return self.to(dst_type)

    # ------------------------------------------------------------------ state dict

    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """An ``OrderedDict`` of every parameter and persistent buffer, keyed by dotted
        name. Values are detached (they share memory with the module but do not
        require grad), unless ``keep_vars=True``.

        >>> from fgrad import nn
        >>> sd = nn.Linear(3, 2).state_dict()
        >>> list(sd), sd["weight"].requires_grad
        (['weight', 'bias'], False)
        """
        if destination is None:
            destination = OrderedDict()
        for name, param in self._parameters.items():
            if param is not None:
                destination[prefix + name] = param if keep_vars else param.detach()
        for name, buf in self._buffers.items():
            if buf is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = buf if keep_vars else buf.detach()
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination, prefix + name + ".", keep_vars)
        return destination

    def _state_targets(self):
        """``{dotted_name: tensor}`` of everything ``state_dict`` would contain."""
        return dict(self.state_dict(keep_vars=True))

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """Copy values from ``state_dict`` into this module's parameters and buffers.

        With ``strict`` (the default) missing and unexpected keys are errors; a
        shape mismatch is always an error. With ``assign=True`` each parameter and buffer
        takes the loaded array itself (its dtype, its memory) instead of a copy into its
        own; the Parameter objects stay the same, so optimizers keep working. Everything
        is checked before anything is copied, so a failed load leaves the module
        unchanged. Returns the ``(missing_keys, unexpected_keys)`` named tuple.

        >>> from fgrad import nn
        >>> a, b = nn.Linear(3, 2), nn.Linear(3, 2)
        >>> b.load_state_dict(a.state_dict())
        <All keys matched successfully>
        >>> bool((a.weight == b.weight).all())
        True
        """
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise TypeError(
                f"Expected state_dict to be dict-like, got {type(state_dict).__name__}.")
        targets = self._state_targets()
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict.keys() if k not in targets]
        errors = []
        updates = []
        for key, target in targets.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            try:
                array = value._value if isinstance(value, Tensor) else np.asarray(value)
            except Exception as e:  # noqa: BLE001
                errors.append(f'While copying the parameter named "{key}", expected a Tensor '
                              f"or array, got {type(value).__name__} ({e}).")
                continue
            if array.dtype.kind not in "biuf":
                errors.append(f'While copying the parameter named "{key}", expected a numeric '
                              f"Tensor or array, got dtype {array.dtype}.")
                continue
            if array.shape != target._value.shape:
                errors.append(
                    f"size mismatch for {key}: copying a param with shape {Size(array.shape)} "
                    f"from checkpoint, the shape in current model is {target.shape}.")
                continue
            if assign and target._requires_grad and array.dtype.kind != "f":
                errors.append(f'While assigning the parameter named "{key}": only floating '
                              f"point values can require gradients, got dtype {array.dtype}.")
                continue
            updates.append((target, array))
        if strict:
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: "
                              + ", ".join(f'"{k}"' for k in unexpected) + ". ")
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: "
                              + ", ".join(f'"{k}"' for k in missing) + ". ")
        if errors:
            raise RuntimeError(
                f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                + "\n\t".join(errors)
                + ("\n\t(fgrad: pass strict=False to load a partial state_dict; keys are the "
                   "dotted names of model.state_dict())" if strict and (missing or unexpected)
                   else ""))
        with grad_mode.no_grad():
            for target, array in updates:
                if assign:  # PyTorch's: the loaded values themselves, their dtype kept
                    target._value = array
                    continue
                if not target._value.flags.writeable:
                    target._value = np.array(target._value)
                np.copyto(target._value, array, casting="unsafe")
                graph.mark_written(target._value)
        return _IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ calling

    def forward(self, *args, **kwargs):
        raise NotImplementedError(
            f'Module [{type(self).__name__}] is missing the required "forward" function')

    def register_forward_pre_hook(self, hook):
        """``hook(module, args)`` runs before ``forward``; it may return new args."""
        handle = _RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        return handle

    def register_forward_hook(self, hook):
        """``hook(module, args, output)`` runs after ``forward``; it may return a new
        output."""
        handle = _RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    def __call__(self, *args, **kwargs):
        if not (self._forward_pre_hooks or self._forward_hooks):
            return self.forward(*args, **kwargs)
        for hook in list(self._forward_pre_hooks.values()):
            out = hook(self, args)
            if out is not None:
                args = out if isinstance(out, tuple) else (out,)
        result = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            out = hook(self, args, result)
            if out is not None:
                result = out
        return result

    # ------------------------------------------------------------------ repr

    def extra_repr(self):
        """The text inside the parentheses of this module's repr line."""
        return ""

    def _get_name(self):
        return type(self).__name__

    def __repr__(self):
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        for name, module in self._modules.items():
            lines.append(f"({name}): " + _addindent(repr(module), 2))
        main = self._get_name() + "("
        if lines:
            if len(lines) == 1 and not self._modules:
                main += lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"

    def __deepcopy__(self, memo):
        cls = type(self)
        out = cls.__new__(cls)
        memo[id(self)] = out
        for key, value in self.__dict__.items():
            object.__setattr__(out, key, copy.deepcopy(value, memo))
        return out


def _check_name(module, name, what, store):
    if not isinstance(name, str):
        raise TypeError(f"{what} name should be a string. Got {type(name).__name__}")
    if "." in name:
        raise KeyError(f'{what} name can\'t contain "."')
    if name == "":
        raise KeyError(f'{what} name can\'t be empty string ""')
    # NB: hasattr also sees the other registries (a buffer named like a parameter would
    # shadow it in state_dict) and class attributes, as PyTorch checks.
    if name not in store and hasattr(module, name):
        raise KeyError(f"attribute '{name}' already exists")


def _remove_from(module, name, *stores):
    for store in stores:
        if store == "__dict__":
            module.__dict__.pop(name, None)
        else:
            members = module.__dict__.get(store)
            if members is not None:
                members.pop(name, None)
    module.__dict__["_non_persistent_buffers_set"].discard(name)
