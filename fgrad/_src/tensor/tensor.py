"""``fg.Tensor``: a NumPy array plus autograd state, with PyTorch's methods.

Every op goes through ``dispatch.apply`` (compute eagerly, record a node when
grad mode is on and an input requires grad). In-place methods (``add_``,
``zero_``, ``x[i] = v``, ``-=``) write into the existing array, so views made
by ``detach()`` and ``.data`` see the update, as in PyTorch.
"""

from __future__ import annotations

import builtins
import math
import numbers
import operator
import warnings

import numpy as np

from fgrad._src.core import Tracer, get_aval
from fgrad._src.tensor import dispatch, grad_mode, graph, ops
from fgrad._src.tensor import repr as tensor_repr
from fgrad._src.tensor.dispatch import apply
from fgrad._src.tensor.dtype import as_dtype, from_numpy_dtype, result_type

_grad_state = grad_mode.state
_NONLEAF_GRAD_WARNING = (
    "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
    "attribute won't be populated during autograd.backward(). If you indeed want the .grad "
    "field to be populated for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor. "
    "If you access the non-leaf Tensor by mistake, make sure you access the leaf Tensor "
    "instead."
)
_FLOAT_ONLY = (
    "only Tensors of floating point dtype can require gradients (got {dtype}); "
    "create the tensor with dtype=fgrad.float32, or convert it with .float() first"
)


class Size(tuple):
    """The shape of a tensor: a tuple that prints as ``fgrad.Size([2, 3])``."""

    __slots__ = ()

    def __repr__(self):
        return f"fgrad.Size({list(self)})"

    def numel(self):
        return int(np.prod(self, dtype=np.int64))


def _scalar(x):
    """Python scalars pass; NumPy scalars become Python scalars (PyTorch wraps both)."""
    if isinstance(x, np.generic):
        return x.item()
    return x


def _operand(x):
    """``x`` as an operand of a Tensor op: a Tensor, a Python or NumPy bool/int/float, or
    a Tensor made from a NumPy array (or nested lists) of numbers; anything else is a
    TypeError."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (builtins.bool, int, float, np.bool_, np.integer, np.floating)):
        return _scalar(x)
    if x is None or isinstance(x, (str, bytes, numbers.Number)):
        raise TypeError(f"unsupported operand for a Tensor op: {_describe(x)}; {_OPERANDS}")
    arr = _as_array(x)
    if not isinstance(arr, Tracer) and arr.dtype.kind not in "biuf":
        raise TypeError(f"unsupported operand for a Tensor op: {_describe(x)} (NumPy dtype "
                        f"{arr.dtype}); {_OPERANDS}")
    return Tensor._wrap(arr)


_OPERANDS = ("fgrad Tensors combine with Tensors, Python and NumPy real numbers (bool, int, "
             "float) and arrays of them")


def check_bool_condition(condition):
    """``where``'s condition must be a bool Tensor, as PyTorch requires."""
    # NB: PyTorch still takes uint8 (deprecated) conditions as masks.
    if not isinstance(condition, Tensor) or condition._value.dtype not in (np.bool_, np.uint8):
        kind = condition.dtype if isinstance(condition, Tensor) else type(condition).__name__
        raise RuntimeError(f"where expected condition to be a boolean tensor, but got {kind} "
                           "(compare first, e.g. x > 0)")


def _describe(x):
    return "None" if x is None else f"{type(x).__name__} {x!r:.40}"


class Device(str):
    """The one device, ``"cpu"``: a string (so ``t.device == "cpu"``) with PyTorch's
    ``type`` and ``index`` attributes.

    >>> CPU.type, CPU == "cpu", CPU
    ('cpu', True, device(type='cpu'))
    """

    type = property(lambda self: "cpu")
    index = None

    def __repr__(self):
        return "device(type='cpu')"


CPU = Device("cpu")


def check_device(device, what):
    """Refuse every device but the CPU: ``None``, ``"cpu"``, ``"cpu:0"`` or an object whose
    ``type`` is ``"cpu"`` pass; ``what`` names the action in the error.

    >>> check_device("cpu", "create a tensor")
    """
    if device is None:
        return
    kind = getattr(device, "type", device)
    if not (isinstance(kind, str) and kind.split(":")[0] == "cpu"):
        raise RuntimeError(f"fgrad runs on the CPU only; cannot {what} on {device!r}")


def _as_array(data):
    if isinstance(data, Tracer):
        return data  # NB: never concretized; its ops run traced (see dispatch.apply)
    arr = np.asarray(data)
    if arr.dtype == np.float64 and not isinstance(data, (np.ndarray, np.generic)):
        arr = arr.astype(np.float32)
    return arr


def _dims(args):
    """``f(2, 3)`` or ``f((2, 3))`` or ``f([2, 3])`` -> ``(2, 3)``; each an int (PyTorch
    refuses ``2.5`` and ``"3"``, which ``int()`` would take)."""
    if len(args) == 1 and isinstance(args[0], (tuple, list, Size)):
        args = args[0]
    dims = []
    for d in args:
        try:
            dims.append(operator.index(d))
        except TypeError:
            raise TypeError(f"sizes and dims must be ints, got {type(d).__name__} {d!r:.40} "
                            f"in {tuple(args)!r:.60}") from None
    return tuple(dims)


def _wrap_dim(t, dim):
    """``dim`` of ``t`` made non-negative, PyTorch's way (a 0-d tensor has dims 0 and -1)."""
    dim, ndim = int(dim), builtins.max(t._value.ndim, 1)
    if not -ndim <= dim < ndim:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-ndim}, "
                         f"{ndim - 1}], but got {dim})")
    return dim % ndim


def _comparable(other):
    """Whether ``==``/``!=`` compare elementwise: tensors, arrays, numbers and (nested)
    sequences do; None, strings and other objects are simply unequal."""
    return isinstance(other, (Tensor, Tracer, np.ndarray, np.generic, numbers.Number, list,
                              tuple))


def _float_bounds(x, low, high):
    """An integer or bool ``x`` with a float bound: PyTorch's clamp gives floats."""
    return x._value.dtype.kind in "iub" and any(
        isinstance(b, float) for b in (_scalar(low), _scalar(high)))


def _clamp_bounds(x, low, high):
    """The arguments and params of ``ops.clamp_tensors``: the given bounds as tensors."""
    bounds = tuple(_operand(b) for b in (low, high) if b is not None)
    return (x, *bounds), (low is not None, high is not None)


def _dim_param(t, dim):
    """A reduction's ``dim`` of ``t``: None, an int, or a tuple; an empty list or tuple
    means every dim, as in PyTorch (``x.sum(dim=[])`` is the sum of all elements). A dim
    out of range raises PyTorch's IndexError."""
    if dim is None:
        return None
    if isinstance(dim, (list, tuple)):
        dims = tuple(int(d) for d in dim)
        for d in dims:
            _wrap_dim(t, d)
        return dims or None
    _wrap_dim(t, dim)
    return int(dim)


def _check_extremum(t, name, dim):
    """PyTorch's errors for a max/min/argmax/argmin/amax/amin with nothing to choose
    from (NumPy's read "attempt to get argmax of an empty sequence" for ``max(dim=0)``)."""
    shape = t._value.shape
    if dim is None:
        if t._value.size == 0:
            message = f"{name}(): Expected reduction dim to be specified for input.numel() == 0."
            if name in ("argmax", "argmin"):
                raise IndexError(message)
            raise RuntimeError(f"{message} Specify the reduction dim with the 'dim' argument.")
        return
    for d in dim if isinstance(dim, tuple) else (dim,):
        d = _wrap_dim(t, d)
        if shape and shape[d] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size.")


class Tensor:
    """A multi-dimensional array that can record operations for autograd.

    >>> import fgrad as fg
    >>> x = fg.tensor([1.0, 2.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    tensor([2., 4.])
    """

    __slots__ = ("_value", "_grad_fn", "_requires_grad", "_output_nr", "__weakref__", "__dict__")
    __array_priority__ = 1000
    # Rarely set, so they live in the instance dict only when they are.
    _grad = None
    _retains_grad = False
    _hooks = None

    def __init__(self, *args, dtype=None, requires_grad=False):
        # fg.Tensor(data) -> float32 copy of data; fg.Tensor(2, 3) -> zeros of that shape.
        if len(args) == 1 and not isinstance(args[0], (int, np.integer)):
            data = args[0]
            from fgrad._src.tensor import creation

            if creation.is_traced(data):
                # NB: under a transform: the values stay traced (see creation.tensor)
                traced = creation.tensor(data, dtype=dtype or np.float32,
                                         requires_grad=requires_grad)
                self._init(traced._value, None, False, 0)
                return
            value = np.array(data._value if isinstance(data, Tensor) else data)
        else:
            value = np.zeros(_dims(args), np.float32)
        if dtype is None:
            value = value.astype(np.float32) if value.dtype.kind in "fiub" else value
        else:
            value = value.astype(as_dtype(dtype).dtype)
        self._init(value, None, False, 0)
        if requires_grad:
            self.requires_grad_(True)

    def _init(self, value, grad_fn, requires_grad, output_nr):
        self._value = value
        self._grad_fn = grad_fn
        self._requires_grad = requires_grad
        self._output_nr = output_nr

    @staticmethod
    def _wrap(value, grad_fn=None, requires_grad=False, output_nr=0):
        """A Tensor around ``value`` (no copy, no checks): the internal constructor."""
        t = _new(Tensor)
        t._value = value
        t._grad_fn = grad_fn
        t._requires_grad = requires_grad
        t._output_nr = output_nr
        return t

    # ------------------------------------------------------------------ autograd state

    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        if not isinstance(value, (builtins.bool, np.bool_)):
            raise TypeError(f"requires_grad must be a bool, got {type(value).__name__} "
                            f"{value!r:.40}")
        value = builtins.bool(value)
        if self._grad_fn is not None:
            if not value:
                raise RuntimeError(
                    "you can only change requires_grad flags of leaf variables. If you want to "
                    "use a computed variable in a subgraph that doesn't require differentiation "
                    "use var_no_grad = var.detach()."
                )
            return
        if value and self._value.dtype.kind != "f":
            raise RuntimeError(_FLOAT_ONLY.format(dtype=self.dtype))
        self._requires_grad = value

    def requires_grad_(self, requires_grad=True):
        """Set ``requires_grad`` in place and return ``self``."""
        self.requires_grad = requires_grad
        return self

    @property
    def grad_fn(self):
        return self._grad_fn

    @property
    def is_leaf(self):
        return self._grad_fn is None

    @property
    def grad(self):
        if self._grad_fn is not None and not self._retains_grad:
            warnings.warn(_NONLEAF_GRAD_WARNING, UserWarning, stacklevel=2)
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got "
                                f"{type(value).__name__}")
            if value.shape != self.shape:
                raise RuntimeError(
                    f"assigned grad has data of a different size: {tuple(value.shape)} vs "
                    f"{tuple(self.shape)}"
                )
            if value._value.dtype != self._value.dtype:
                raise RuntimeError(
                    f"attempting to assign a gradient with dtype {value.dtype} to a tensor "
                    f"with dtype {self.dtype}; convert it first (grad.to(tensor.dtype))")
        self._grad = value

    @grad.deleter
    def grad(self):
        self._grad = None

    def retain_grad(self):
        """Make this non-leaf tensor receive ``.grad`` during backward."""
        if self._grad_fn is None:
            if not self._requires_grad:
                raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
            return
        if not self._retains_grad:
            self._retains_grad = True
            graph.retain(self._grad_fn, self._output_nr, self)

    @property
    def retains_grad(self):
        return self._retains_grad

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; it may return a
        replacement gradient."""
        if not self._requires_grad:
            raise RuntimeError(
                "cannot register a hook on a tensor that doesn't require gradient")
        if self._grad_fn is None:
            if self._hooks is None:
                self._hooks = []
            self._hooks.append(hook)
            return graph._RemovableHandle(self._hooks, hook)
        return graph.retain(self._grad_fn, self._output_nr, None, hook)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (vector-Jacobian
        product with ``gradient`` for non-scalar tensors)."""
        if (gradient is None and inputs is None and not create_graph and self._grad_fn is not None
                and self._value.size == 1 and self._value.dtype.kind == "f"):
            # Fast path: loss.backward() on a scalar.
            ct = np.ones(self._value.shape, self._value.dtype)
            graph.run_backward([(self._grad_fn, self._output_nr)], [ct], bool(retain_graph),
                               False)
            return
        from fgrad._src.tensor import autograd

        autograd.backward(self, gradient, retain_graph, create_graph, inputs=inputs)

    def __fgrad_array__(self):
        """The value (an array, or a tracer under a transform) ``fg.grad``/``fg.jit`` take
        when a function returns a Tensor: ``fg.grad(lambda x: F.mse_loss(x, y))(x)``."""
        return self._value

    def detach(self):
        """A tensor sharing this one's values, outside the graph (under a transform: the
        values with their gradient stopped, as torch.func's detach)."""
        return dispatch.note_detached(self, Tensor._wrap(dispatch.detached(self._value)))

    def detach_(self):
        if isinstance(self._value, Tracer):
            self._value = dispatch.detached(self._value)
            return self
        view = self.__dict__.get("_view_of")
        if view is not None and view[1][0] is not None and self._requires_grad:
            raise RuntimeError("Can't detach views in-place. Use detach() instead (fgrad: this "
                               "tensor is a view of another in the graph).")
        self._grad_fn = None
        self._requires_grad = False
        return self

    @property
    def data(self):
        return self.detach()

    @data.setter
    def data(self, value):
        # NB: PyTorch's checks: a tensor only, and a float one if this one requires grad
        if not isinstance(value, Tensor):
            raise TypeError(f"Variable data has to be a tensor, but got {type(value).__name__}")
        if self._requires_grad and value._value.dtype.kind not in "fc":
            raise RuntimeError("data set to a tensor that requires gradients must be floating "
                               "point or complex dtype")
        self._value = value._value

    # ------------------------------------------------------------------ array protocol

    @property
    def shape(self):
        return Size(self._value.shape)

    def size(self, dim=None):
        if dim is None:
            return Size(self._value.shape)
        return self._value.shape[dim]

    @property
    def dtype(self):
        return from_numpy_dtype(self._value.dtype)

    @property
    def ndim(self):
        return self._value.ndim

    def dim(self):
        return self._value.ndim

    ndimension = dim

    def numel(self):
        return int(self._value.size)

    nelement = numel

    def element_size(self):
        return self._value.dtype.itemsize

    @property
    def device(self):
        """Always the CPU: ``str(t.device) == "cpu"`` and ``t.device.type == "cpu"``."""
        return CPU

    is_cuda = False
    is_sparse = False

    def is_floating_point(self):
        return self._value.dtype.kind == "f"

    def is_contiguous(self):
        layout = _layout(self)
        return layout is None or builtins.bool(layout.flags.c_contiguous)

    def numpy(self, force=False):
        """The underlying NumPy array (shared, not copied)."""
        if self._requires_grad and not force:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() "
                "instead."
            )
        return self._value

    def __array__(self, dtype=None, copy=None):
        value = self.numpy()
        if dtype is not None:
            value = value.astype(dtype)
        return np.array(value) if copy else value

    def item(self):
        if self._value.size != 1:
            raise RuntimeError(
                f"a Tensor with {self._value.size} elements cannot be converted to Scalar")
        return self._value.reshape(()).item()

    def tolist(self):
        return self._value.tolist()

    def __bool__(self):
        if self._value.size != 1:
            many = "no values" if self._value.size == 0 else "more than one value"
            raise RuntimeError(
                f"Boolean value of Tensor with {many} is ambiguous "
                f"(shape {tuple(self._value.shape)}); use .any() or .all()")
        return builtins.bool(self._value.reshape(()))

    def __float__(self):
        return builtins.float(self.item())

    def __int__(self):
        return builtins.int(self.item())

    def __index__(self):
        if self._value.dtype.kind not in "iub" or self._value.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an "
                            "index")
        return builtins.int(self.item())

    def __complex__(self):
        return complex(self.item())

    def __len__(self):
        if self._value.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._value.shape[0]

    def __iter__(self):
        if self._value.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return iter(self.unbind(0))

    def __hash__(self):
        return id(self)

    def __repr__(self):
        fn = self._grad_fn
        return tensor_repr.tensor_repr(
            self._value, None if fn is None else type(fn).__name__, self._requires_grad)

    def __format__(self, spec):
        if self._value.ndim == 0:
            return format(self.item(), spec)
        return format(repr(self), spec)

    def __reduce_ex__(self, protocol):
        return (_rebuild, (np.array(self._value), self._requires_grad))

    def __deepcopy__(self, memo):
        if self._grad_fn is not None:
            raise RuntimeError(
                "Only Tensors created explicitly by the user (graph leaves) support the "
                "deepcopy protocol at the moment.")
        out = Tensor._wrap(np.array(self._value), None, self._requires_grad)
        if self._grad is not None:
            out._grad = Tensor._wrap(np.array(self._grad._value))
        memo[id(self)] = out
        return out

    # ------------------------------------------------------------------ conversions

    def to(self, *args, dtype=None, **kwargs):
        """``to(dtype)`` casts (recorded as ToCopyBackward0); devices other than cpu
        are not available."""
        for a in args:
            if isinstance(a, Tensor):
                dtype = a.dtype
            elif a is None or isinstance(a, str) or hasattr(a, "type") and not isinstance(
                    a, type):
                check_device(a, "put a tensor")
            else:
                dtype = a
        check_device(kwargs.get("device"), "put a tensor")
        if dtype is None or as_dtype(dtype).dtype == self._value.dtype:
            return self.clone() if kwargs.get("copy") else self
        return apply(ops.to_copy, (self,), (as_dtype(dtype).dtype,))

    def type(self, dtype=None):
        if dtype is None:
            return f"fgrad.{_TYPE_NAMES.get(self._value.dtype.name, 'Tensor')}"
        return self.to(dtype)

    def type_as(self, other):
        return self.to(other.dtype)

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    def long(self):
        return self.to(np.int64)

    def int(self):
        return self.to(np.int32)

    def bool(self):
        return self.to(np.bool_)

    def cpu(self):
        return self

    def contiguous(self):
        if self.is_contiguous():
            return self
        out = apply(ops.clone, (self,))
        if isinstance(out._value, np.ndarray):  # NB: a copy keeps the input's strides
            out._value = np.ascontiguousarray(out._value)
        return out

    def clone(self):
        return apply(ops.clone, (self,))

    def copy_(self, src):
        if isinstance(src, (builtins.bool, int, float, np.generic)):  # a number: a fill
            src = Tensor._wrap(np.asarray(src))
        elif not isinstance(src, Tensor):
            raise TypeError("copy_(): argument 'other' (position 1) must be Tensor, not "
                            f"{type(src).__name__}")
        return _inplace(self, ops.clone, (src,), (), copy=True)

    # ------------------------------------------------------------------ operators

    def __add__(self, other):
        return apply(ops.add, (self, _operand(other)))

    def __radd__(self, other):
        return apply(ops.add, (_operand(other), self))

    def __sub__(self, other):
        return apply(ops.sub, (self, _operand(other)))

    def __rsub__(self, other):
        return apply(ops.rsub, (self, _operand(other)))

    def __mul__(self, other):
        return apply(ops.mul, (self, _operand(other)))

    def __rmul__(self, other):
        return apply(ops.mul, (_operand(other), self))

    def __truediv__(self, other):
        return apply(ops.div, (self, _operand(other)))

    def __rtruediv__(self, other):
        return apply(ops.rdiv, (self, _operand(other)))

    def __floordiv__(self, other):
        return _integer_or(ops.floor_divide, np.floor_divide, self, _operand(other))

    def __rfloordiv__(self, other):
        return _integer_or(ops.floor_divide, np.floor_divide, _operand(other), self)

    def __mod__(self, other):
        return _integer_or(ops.remainder, np.remainder, self, _operand(other))

    def __rmod__(self, other):
        return _integer_or(ops.remainder, np.remainder, _operand(other), self)

    def __pow__(self, exponent):
        if type(exponent) is int or type(exponent) is float:
            return apply(ops.pow_scalar, (self,), (exponent,))
        return self.pow(exponent)

    def __rpow__(self, base):
        return apply(ops.rpow, (self, _operand(base)))

    def __matmul__(self, other):
        return apply(ops.matmul, (self, _operand(other)))

    def __rmatmul__(self, other):
        return apply(ops.matmul, (_operand(other), self))

    def __neg__(self):
        return apply(ops.neg, (self,))

    def __pos__(self):
        return self

    def __abs__(self):
        return apply(ops.abs_, (self,))

    def __invert__(self):
        if self._value.dtype == np.bool_:
            return apply(ops.logical_not, (self,))
        return apply(ops.bitwise_not, (self,))

    def __and__(self, other):
        return apply(ops.bitwise_and, (self, _operand(other)))

    __rand__ = __and__

    def __or__(self, other):
        return apply(ops.bitwise_or, (self, _operand(other)))

    __ror__ = __or__

    def __xor__(self, other):
        return apply(ops.bitwise_xor, (self, _operand(other)))

    __rxor__ = __xor__

    def __eq__(self, other):
        if not _comparable(other):
            return False  # PyTorch's answer for None, strings and other objects
        return apply(ops.eq, (self, _operand(other)))

    def __ne__(self, other):
        if not _comparable(other):
            return True
        return apply(ops.ne, (self, _operand(other)))

    def __lt__(self, other):
        return apply(ops.lt, (self, _operand(other)))

    def __le__(self, other):
        return apply(ops.le, (self, _operand(other)))

    def __gt__(self, other):
        return apply(ops.gt, (self, _operand(other)))

    def __ge__(self, other):
        return apply(ops.ge, (self, _operand(other)))

    def __iadd__(self, other):
        return _inplace(self, ops.add, (self, _operand(other)))

    def __isub__(self, other):
        return _inplace(self, ops.sub, (self, _operand(other)))

    def __imul__(self, other):
        return _inplace(self, ops.mul, (self, _operand(other)))

    def __itruediv__(self, other):
        return _inplace(self, ops.div, (self, _operand(other)))

    def __ipow__(self, other):
        return self.pow_(other)

    def __getitem__(self, index):
        items = index if isinstance(index, tuple) else (index,)
        empty_axes = _false_index_axes(index, self._value.ndim)
        if empty_axes:  # x[False]: x[True] with that new axis of size 0
            index = tuple(True if _is_false(item) else item for item in items)
        template, arrays = _parse_index(index, self._value.shape)
        out = apply(ops.getitem, (self, *arrays), (template,))
        for axis in empty_axes:
            out = out.narrow(axis, 0, 0)
        if builtins.any(_is_bool_scalar(item) for item in items):
            # NB: a bool scalar makes the index an advanced one in PyTorch: the result is a
            # copy, so writing into x[True] must not change x
            out = out.clone()
        return out

    def __setitem__(self, index, value):
        value = _fill_value(self, value)  # NB: nan into an int tensor is an error
        raw = value._value if isinstance(value, Tensor) else value
        if _holds_tracer(self, value, index) and _is_full_mask(index, self) and np.ndim(
                raw) == 0:
            from fgrad._src.numpy import lax_numpy as fnp  # x[x > 1] = v, traced

            _rebind_traced(self, fnp.where(index._value, raw, self._value))
            return
        template, arrays = _parse_index(index, self._value.shape)
        _check_inplace(self)
        np_index = _numpy_index(template, arrays)
        recording = _holds_tracer(self, value) or _grad_state.enabled and (
            self._requires_grad or isinstance(value, Tensor) and value._requires_grad)
        moved = ops.torch_index_axes(template, self._value.ndim, [a.shape for a in arrays])
        if not recording and not moved:
            _make_writable(self)
            self._value[np_index] = raw
            graph.mark_written(self._value)
            return
        size = self._value.size
        positions = np.arange(size, dtype=np.int64).reshape(self._value.shape)[np_index]
        if moved:  # the selection in PyTorch's layout (see ops.torch_index_axes)
            positions = np.moveaxis(positions, *moved)
        if not recording:
            _make_writable(self)
            # NB: element coordinates, not a flat view: the tensor may be non-contiguous.
            self._value[np.unravel_index(positions, self._value.shape)] = np.broadcast_to(
                np.asarray(raw), positions.shape)
            graph.mark_written(self._value)
            return
        mask = np.zeros(size, np.bool_)
        flat = positions.reshape(-1)
        mask[flat] = True
        extra = ()
        if np.count_nonzero(mask) < flat.size:
            # NB: an element indexed twice takes the last value written, as without grad
            # (the op scatters by adding: only the last write of each element is kept).
            last = np.zeros(flat.size, np.bool_)
            _, first_from_end = np.unique(flat[::-1], return_index=True)
            last[flat.size - 1 - first_from_end] = True
            extra = (Tensor._wrap(last.reshape(positions.shape)),)
        positions = Tensor._wrap(np.ascontiguousarray(positions))
        result = apply(ops.setitem, (self, value, positions, Tensor._wrap(mask)) + extra)
        if _holds_tracer(self, value):
            _rebind_traced(self, result._value)
        else:
            _take_over(self, result)

    # ------------------------------------------------------------------ arithmetic methods

    def add(self, other, alpha=1):
        other = _operand(other)
        if alpha != 1:
            other = other * alpha
        return apply(ops.add, (self, other))

    def sub(self, other, alpha=1):
        other = _operand(other)
        if alpha != 1:
            other = other * alpha
        return apply(ops.sub, (self, other))

    subtract = sub

    def mul(self, other):
        return apply(ops.mul, (self, _operand(other)))

    multiply = mul

    def div(self, other, rounding_mode=None):
        other = _operand(other)
        if rounding_mode == "floor":
            return _integer_or(ops.floor_divide, np.floor_divide, self, other)
        if rounding_mode == "trunc":
            if _integral(self._value) and _integral(
                    other._value if isinstance(other, Tensor) else other):
                return _integer_or(None, _truncated_quotient, self, other)
            return apply(ops.trunc, (apply(ops.div, (self, other)),))
        if rounding_mode is not None:
            raise RuntimeError("div expected rounding_mode to be one of None, 'trunc', or "
                               f"'floor' but found '{rounding_mode}'")
        return apply(ops.div, (self, other))

    divide = true_divide = div

    def pow(self, exponent):
        exponent = _scalar(exponent)
        if isinstance(exponent, Tensor):
            return apply(ops.pow_tensor, (self, exponent))
        if isinstance(exponent, (np.ndarray, list)):
            return apply(ops.pow_tensor, (self, _operand(exponent)))
        return apply(ops.pow_scalar, (self,), (exponent,))

    def remainder(self, other):
        return _integer_or(ops.remainder, np.remainder, self, _operand(other))

    def fmod(self, other):
        return _integer_or(ops.fmod, np.fmod, self, _operand(other))

    def atan2(self, other):
        return apply(ops.atan2, (self, _operand(other)))

    arctan2 = atan2

    def maximum(self, other):
        return apply(ops.maximum, (self, _operand(other)))

    def minimum(self, other):
        return apply(ops.minimum, (self, _operand(other)))

    def lerp(self, end, weight):
        return apply(ops.lerp, (self, _operand(end), _operand(weight)))

    def clamp(self, min=None, max=None):  # noqa: A002
        if min is None and max is None:
            raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
        if isinstance(min, Tensor) or isinstance(max, Tensor):
            return apply(ops.clamp_tensors, *_clamp_bounds(self, min, max))
        x = self.float() if _float_bounds(self, min, max) else self  # PyTorch's result type
        return apply(ops.clamp, (x,), (_scalar(min), _scalar(max)))

    clip = clamp

    def clamp_min(self, min):  # noqa: A002
        return self.clamp(min=min)

    def clamp_max(self, max):  # noqa: A002
        return self.clamp(max=max)

    def eq(self, other):
        return apply(ops.eq, (self, _operand(other)))

    def ne(self, other):
        return apply(ops.ne, (self, _operand(other)))

    def lt(self, other):
        return apply(ops.lt, (self, _operand(other)))

    def le(self, other):
        return apply(ops.le, (self, _operand(other)))

    def gt(self, other):
        return apply(ops.gt, (self, _operand(other)))

    def ge(self, other):
        return apply(ops.ge, (self, _operand(other)))

    greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne

    def equal(self, other):
        """True when both tensors have the same shape and elements."""
        other = _operand(other)
        return builtins.bool(self.shape == other.shape and (self == other).all())

    def allclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        return builtins.bool(np.allclose(self._value, _operand(other)._value, rtol, atol,
                                         equal_nan))

    def isclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        return Tensor._wrap(np.isclose(self._value, _operand(other)._value, rtol, atol,
                                       equal_nan))

    def logical_and(self, other):
        return apply(ops.logical_and, (self, _operand(other)))

    def logical_or(self, other):
        return apply(ops.logical_or, (self, _operand(other)))

    def logical_xor(self, other):
        return apply(ops.logical_xor, (self, _operand(other)))

    def logical_not(self):
        return apply(ops.logical_not, (self,))

    def isnan(self):
        return apply(ops.isnan, (self,))

    def isinf(self):
        return apply(ops.isinf, (self,))

    def isfinite(self):
        return apply(ops.isfinite, (self,))

    def where(self, condition, other):
        condition = _operand(condition)
        check_bool_condition(condition)
        return apply(ops.where, (condition, self, _operand(other)))

    def masked_fill(self, mask, value):
        return apply(ops.masked_fill, (self, _operand(mask), _fill_value(self, value)))

    # ------------------------------------------------------------------ reductions

    def sum(self, dim=None, keepdim=False, dtype=None):
        dtype = None if dtype is None else as_dtype(dtype).dtype
        return apply(ops.sum_, (self,), (_dim_param(self, dim), keepdim, dtype))

    def mean(self, dim=None, keepdim=False, dtype=None):
        dtype = None if dtype is None else as_dtype(dtype).dtype
        return apply(ops.mean, (self,), (_dim_param(self, dim), keepdim, dtype))

    def prod(self, dim=None, keepdim=False):
        return apply(ops.prod, (self,), (_dim_param(self, dim), keepdim))

    def max(self, dim=None, keepdim=False):
        if isinstance(dim, Tensor):
            return self.maximum(dim)
        _check_extremum(self, "max", dim)
        if dim is None:
            return apply(ops.max_all, (self,))
        values, indices = apply(ops.max_dim, (self,), (_wrap_dim(self, dim), keepdim))
        return _MinMax(values, indices, "max")

    def min(self, dim=None, keepdim=False):
        if isinstance(dim, Tensor):
            return self.minimum(dim)
        _check_extremum(self, "min", dim)
        if dim is None:
            return apply(ops.min_all, (self,))
        values, indices = apply(ops.min_dim, (self,), (_wrap_dim(self, dim), keepdim))
        return _MinMax(values, indices, "min")

    def amax(self, dim=(), keepdim=False):
        dims = _dim_param(self, dim)  # () is every dim
        _check_extremum(self, "amax", dims)
        return apply(ops.amax, (self,), (dims, keepdim))

    def amin(self, dim=(), keepdim=False):
        dims = _dim_param(self, dim)  # () is every dim
        _check_extremum(self, "amin", dims)
        return apply(ops.amin, (self,), (dims, keepdim))

    def argmax(self, dim=None, keepdim=False):
        dims = _dim_param(self, dim)
        _check_extremum(self, "argmax", dims)
        return apply(ops.argmax, (self,), (dims, keepdim))

    def argmin(self, dim=None, keepdim=False):
        dims = _dim_param(self, dim)
        _check_extremum(self, "argmin", dims)
        return apply(ops.argmin, (self,), (dims, keepdim))

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return apply(ops.var, (self,), (_dim_param(self, dim), _correction(unbiased, correction),
                                        keepdim))

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return apply(ops.std, (self,), (_dim_param(self, dim), _correction(unbiased, correction),
                                        keepdim))

    def all(self, dim=None, keepdim=False):
        return apply(ops.all_, (self,), (_dim_param(self, dim), keepdim))

    def any(self, dim=None, keepdim=False):
        return apply(ops.any_, (self,), (_dim_param(self, dim), keepdim))

    def norm(self, p="fro", dim=None, keepdim=False):
        p = 2 if p in ("fro", None) else p
        if not isinstance(p, numbers.Real) or isinstance(p, builtins.bool):
            raise ValueError(f"norm: p must be a number (inf and -inf included) or 'fro', got "
                             f"{p!r:.40}")
        return apply(ops.norm, (self,), (p, _dim_param(self, dim), keepdim))

    def logsumexp(self, dim, keepdim=False):
        return apply(ops.logsumexp, (self,), (_dim_param(self, dim), keepdim))

    def cumsum(self, dim):
        return apply(ops.cumsum, (self,), (_wrap_dim(self, dim),))

    # ------------------------------------------------------------------ shape

    def view(self, *shape):
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer, tuple, list, Size)):
            return self.to(shape[0])
        shape = _dims(shape)
        if _reshape_copies(_layout(self), shape):
            raise RuntimeError(
                "view size is not compatible with input tensor's size and stride (at least one "
                "dimension spans across two contiguous subspaces). Use .reshape(...) instead.")
        return apply(ops.view, (self,), (shape,))

    def view_as(self, other):
        return self.view(other.shape)

    def reshape(self, *shape):
        shape = _dims(shape)
        op = ops.reshape_copy if _reshape_copies(_layout(self), shape) else ops.view
        return apply(op, (self,), (shape,))

    def reshape_as(self, other):
        return self.reshape(other.shape)

    def flatten(self, start_dim=0, end_dim=-1):
        shape = self._value.shape
        start, end = _wrap_dim(self, start_dim), _wrap_dim(self, end_dim)
        if not shape:
            return self.reshape(1)
        if start > end:
            raise RuntimeError("flatten() has invalid args: start_dim cannot come after "
                               "end_dim")
        new = shape[:start] + (int(np.prod(shape[start:end + 1], dtype=np.int64)),) + shape[
            end + 1:]
        return self.reshape(new)

    def unflatten(self, dim, sizes):
        shape = self._value.shape
        dim = _wrap_dim(self, dim)
        given = [int(s) for s in sizes]
        sizes = list(given)
        known = math.prod(s for s in sizes if s != -1)
        if sizes.count(-1) == 1 and known:  # -1 is inferred from this dim alone
            sizes[sizes.index(-1)] = shape[dim] // known
        if sizes.count(-1) or math.prod(sizes) != shape[dim]:
            raise RuntimeError(f"unflatten: Provided sizes {given} don't multiply up to "
                               f"the size of dim {dim} ({shape[dim]}) in the input tensor")
        return self.reshape(shape[:dim] + tuple(sizes) + shape[dim + 1:])

    def t(self):
        if self._value.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is "
                               f"{self._value.ndim}D")
        return apply(ops.t, (self,))

    @property
    def T(self):  # noqa: N802
        return apply(ops.permute, (self,), (tuple(reversed(range(self._value.ndim))),))

    @property
    def mT(self):  # noqa: N802
        if self._value.ndim == 1:
            raise RuntimeError("tensor.mT is only supported on matrices or batches of "
                               "matrices. Got 1-D tensor.")
        return self.transpose(-2, -1) if self._value.ndim else self.transpose(0, 0)

    def transpose(self, dim0, dim1):
        dim0, dim1 = _wrap_dim(self, dim0), _wrap_dim(self, dim1)
        if self._value.ndim == 0:  # PyTorch: a 0-d tensor has the one dim 0 (or -1)
            return apply(ops.alias, (self,))
        return apply(ops.transpose, (self,), (dim0, dim1))

    swapaxes = swapdims = transpose

    def permute(self, *dims):
        return apply(ops.permute, (self,), (_dims(dims),))

    def squeeze(self, dim=None):
        if dim is None:
            return apply(ops.squeeze_all, (self,))
        if isinstance(dim, (tuple, list)):
            return _squeeze_dims(self, dim)
        dim = _wrap_dim(self, dim)
        if self._value.ndim == 0 or self._value.shape[dim] != 1:
            return apply(ops.alias, (self,))
        return apply(ops.squeeze_dim, (self,), (dim,))

    def unsqueeze(self, dim):
        dim = int(dim)
        if dim < 0:
            dim += self._value.ndim + 1
        return apply(ops.unsqueeze, (self,), (dim,))

    def expand(self, *sizes):
        sizes = _dims(sizes)
        shape = self._value.shape
        lead = len(sizes) - len(shape)
        full = tuple(
            shape[i - lead] if s == -1 else s for i, s in enumerate(sizes))
        return apply(ops.expand, (self,), (full,))

    def expand_as(self, other):
        return self.expand(other.shape)

    def repeat(self, *sizes):
        return apply(ops.repeat, (self,), (_dims(sizes),))

    def tile(self, *dims):
        """``repeat`` with ``dims`` padded with leading 1s to this tensor's rank.

        >>> import fgrad as fg
        >>> fg.ones(2, 3).tile(2).shape
        fgrad.Size([2, 6])
        """
        dims = _dims(dims)
        return self.repeat((1,) * (self._value.ndim - len(dims)) + dims)

    def broadcast_to(self, *shape):
        return self.expand(*shape)

    def ravel(self):
        return self.reshape(-1)

    def movedim(self, source, destination):
        """Move the dims ``source`` to the positions ``destination`` (ints or sequences),
        keeping the others in order (``torch.movedim``, ``np.moveaxis``)."""
        one = isinstance(source, (int, np.integer))
        sources = [_wrap_dim(self, d) for d in ((source,) if one else source)]
        one = isinstance(destination, (int, np.integer))
        targets = [_wrap_dim(self, d) for d in ((destination,) if one else destination)]
        if len(sources) != len(targets) or len(set(sources)) != len(sources) or len(
                set(targets)) != len(targets):
            raise RuntimeError(f"movedim: invalid source {source} or destination {destination}")
        rest = iter(d for d in range(self._value.ndim) if d not in sources)
        placed = dict(zip(targets, sources))
        order = [placed[d] if d in placed else next(rest) for d in range(self._value.ndim)]
        return self.permute(*order)

    moveaxis = movedim

    def flip(self, *dims):
        return apply(ops.flip, (self,), (_dims(dims),))

    def narrow(self, dim, start, length):
        dim = _wrap_dim(self, dim)
        size, start, length = self._value.shape[dim], int(start), int(length)
        if not -size <= start <= size:
            raise IndexError(f"start out of range (expected to be in range of [{-size}, {size}], "
                             f"but got {start})")
        start %= builtins.max(size, 1)
        if length < 0 or start + length > size:
            raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size "
                               f"({size}).")
        return apply(ops.narrow, (self,), (dim, start, length))

    def split(self, split_size, dim=0):
        if self._value.ndim == 0:
            raise RuntimeError("split expects at least a 1-dimensional tensor")
        dim = _wrap_dim(self, dim)
        n = self._value.shape[dim]
        if isinstance(split_size, (list, tuple)):
            sizes = tuple(int(s) for s in split_size)
            if sum(sizes) != n or builtins.any(s < 0 for s in sizes):
                raise RuntimeError(
                    f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's "
                    f"size at dimension {dim}), but got split_sizes={list(sizes)}")
            return apply(ops.split_sizes, (self,), (sizes, dim))
        split_size = int(split_size)
        if split_size < 0 or (split_size == 0 and n):
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, and must not "
                               f"be negative, but got split_size={split_size} for a dimension "
                               f"of size {n}")
        if n == 0:
            return (apply(ops.split_sizes, (self,), ((0,), dim))[0],)
        sizes = tuple(builtins.min(split_size, n - i) for i in range(0, n, split_size))
        return apply(ops.split, (self,), (sizes, dim))

    def chunk(self, chunks, dim=0):
        if self._value.ndim == 0:
            raise RuntimeError("chunk expects at least a 1-dimensional tensor")
        if int(chunks) <= 0:
            raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
        n = self._value.shape[_wrap_dim(self, dim)]
        if n == 0:  # PyTorch: as many empty pieces as asked for
            return tuple(self.split(0, dim)[0] for _ in range(int(chunks)))
        return self.split(-(-n // int(chunks)), dim)

    def unbind(self, dim=0):
        return apply(ops.unbind, (self,), (_wrap_dim(self, dim),))

    def gather(self, dim, index):
        """``out[i][j] = self[index[i][j]][j]`` for ``dim=0`` (``GatherBackward0``)."""
        index = _index_tensor(index, "gather")
        if index.ndim != self._value.ndim:
            raise RuntimeError("Index tensor must have the same number of dimensions as input "
                               "tensor")
        dim = _wrap_dim(self, dim)
        values = index._value
        if isinstance(values, np.ndarray) and values.size:
            # NB: the op reads by flat offset: an index past its row would read the next
            # row, so every index is checked against its dimension here.
            size = self._value.shape[dim] if self._value.ndim else 1
            if values.min() < 0 or values.max() >= size:
                bad = values[(values < 0) | (values >= size)].flat[0]
                raise RuntimeError(f"index {bad} is out of bounds for dimension {dim} with "
                                   f"size {size}")
        return apply(ops.gather, (self, index), (dim,))

    def index_select(self, dim, index):
        index = _index_tensor(index, "index_select")
        if index.ndim == 0:  # PyTorch: a 0-d index selects one entry, keeping the dim
            index = index.reshape(1)
        return apply(ops.index_select, (self, index), (_wrap_dim(self, dim),))

    def masked_select(self, mask):
        mask = _operand(mask)
        shape = np.broadcast_shapes(tuple(self.shape), tuple(mask.shape))  # both broadcast
        flat = np.flatnonzero(np.broadcast_to(mask._value, shape))
        x = self if tuple(self.shape) == shape else self.expand(shape)
        return apply(ops.masked_select, (x, Tensor._wrap(flat)))

    # ------------------------------------------------------------------ new tensors

    def new_tensor(self, data, dtype=None, requires_grad=False):
        from fgrad._src.tensor import creation

        return creation.tensor(data, dtype=dtype or self.dtype, requires_grad=requires_grad)

    def new_zeros(self, *size, dtype=None, requires_grad=False):
        return self.new_full(_dims(size), 0, dtype=dtype, requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, requires_grad=False):
        return self.new_full(_dims(size), 1, dtype=dtype, requires_grad=requires_grad)

    new_empty = new_zeros

    def new_full(self, size, fill_value, dtype=None, requires_grad=False):
        dt = as_dtype(dtype).dtype if dtype is not None else self._value.dtype
        out = Tensor._wrap(np.full(_dims((size,)), fill_value, dt))
        return out.requires_grad_() if requires_grad else out

    # ------------------------------------------------------------------ linear algebra

    def matmul(self, other):
        return apply(ops.matmul, (self, _operand(other)))

    def mm(self, other):
        _check_ndim("mm", self, 2, "self")
        _check_ndim("mm", other, 2, "mat2")
        return apply(ops.mm, (self, other))

    def mv(self, vec):
        _check_ndim("mv", self, 2, "self")
        _check_ndim("mv", vec, 1, "vec")
        return apply(ops.mv, (self, vec))

    def dot(self, other):
        _check_ndim("dot", self, 1, "self")
        _check_ndim("dot", other, 1, "tensor")
        return apply(ops.dot, (self, other))

    def bmm(self, other):
        _check_ndim("bmm", self, 3, "self")
        _check_ndim("bmm", other, 3, "mat2")
        if self.shape[0] != other.shape[0] or self.shape[2] != other.shape[1]:
            raise RuntimeError(
                f"Expected size for first two dimensions of batch2 tensor to be: "
                f"[{self.shape[0]}, {self.shape[2]}] but got: [{other.shape[0]}, "
                f"{other.shape[1]}]. (bmm multiplies (b, n, m) by (b, m, p) and does not "
                "broadcast; use matmul to broadcast batch dims)")
        return apply(ops.bmm, (self, other))

    def outer(self, other):
        _check_ndim("outer", self, 1, "self")
        _check_ndim("outer", other, 1, "vec2")
        return apply(ops.outer, (self, other))

    def inner(self, other):
        """The sum of products over the last dims (``torch.inner``, ``np.inner``)."""
        return apply(ops.inner, (self, _operand(other)))

    def logaddexp(self, other):
        return apply(ops.logaddexp, (self, _operand(other)))

    # ------------------------------------------------------------------ nn-style methods

    def softmax(self, dim):
        return apply(ops.softmax, (self,), (int(dim),))

    def log_softmax(self, dim):
        return apply(ops.log_softmax, (self,), (int(dim),))

    # ------------------------------------------------------------------ in-place

    def zero_(self):
        return _fill(self, 0, "ZeroBackward0")

    def fill_(self, value):
        if isinstance(value, Tensor) and (value._requires_grad or _holds_tracer(value)):
            if value.ndim != 0:
                raise RuntimeError("fill_ only supports 0-dimension value tensor but got "
                                   f"tensor with {value.ndim} dimensions.")
            return self.copy_(value)  # NB: differentiable in the value, as PyTorch's
        return _fill(self, _scalar(value.item() if isinstance(value, Tensor) else value),
                     "FillBackward2")

    def add_(self, other, alpha=1):
        other = _operand(other)
        if alpha != 1:
            other = other * alpha
        return _inplace(self, ops.add, (self, other))

    def sub_(self, other, alpha=1):
        other = _operand(other)
        if alpha != 1:
            other = other * alpha
        return _inplace(self, ops.sub, (self, other))

    def mul_(self, other):
        return _inplace(self, ops.mul, (self, _operand(other)))

    def div_(self, other):
        return _inplace(self, ops.div, (self, _operand(other)))

    def pow_(self, exponent):
        exponent = _scalar(exponent)
        if isinstance(exponent, Tensor):
            return _inplace(self, ops.pow_tensor, (self, exponent))
        return _inplace(self, ops.pow_scalar, (self,), (exponent,))

    def clamp_(self, min=None, max=None):  # noqa: A002
        if isinstance(min, Tensor) or isinstance(max, Tensor):
            return _inplace(self, ops.clamp_tensors, *_clamp_bounds(self, min, max))
        if _float_bounds(self, min, max):
            raise RuntimeError(f"result type Float can't be cast to the desired output type "
                               f"{_torch_type(self._value.dtype)} (clamp_ of an integer "
                               "tensor takes integer bounds; clamp() returns floats)")
        return _inplace(self, ops.clamp, (self,), (_scalar(min), _scalar(max)))

    clip_ = clamp_

    def clamp_min_(self, min):  # noqa: A002
        return self.clamp_(min=min)

    def clamp_max_(self, max):  # noqa: A002
        return self.clamp_(max=max)

    def neg_(self):
        return _inplace(self, ops.neg, (self,))

    def exp_(self):
        return _inplace(self, ops.exp, (self,))

    def sqrt_(self):
        return _inplace(self, ops.sqrt, (self,))

    def abs_(self):
        return _inplace(self, ops.abs_, (self,))

    def masked_fill_(self, mask, value):
        return _inplace(self, ops.masked_fill, (self, _operand(mask), _fill_value(self, value)))

    def lerp_(self, end, weight):
        return _inplace(self, ops.lerp, (self, _operand(end), _operand(weight)))

    def addcmul_(self, t1, t2, value=1):
        return self.add_(_operand(t1) * _operand(t2) * value)

    def addcdiv_(self, t1, t2, value=1):
        return self.add_(_operand(t1) / _operand(t2) * value)

    def uniform_(self, a=0.0, b=1.0):
        from fgrad._src.tensor import creation

        values = creation.generator().uniform(a, b, self._value.shape)
        return _fill(self, values, "UniformBackward0")

    def normal_(self, mean=0.0, std=1.0):
        from fgrad._src.tensor import creation

        values = creation.generator().normal(mean, std, self._value.shape)
        return _fill(self, values, "NormalBackward0")


_new = object.__new__
dispatch.Tensor = Tensor
dispatch._wrap = Tensor._wrap
graph._TensorModule.Tensor = Tensor
_TYPE_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor", "int64": "LongTensor",
               "int32": "IntTensor", "bool": "BoolTensor", "uint8": "ByteTensor",
               "int16": "ShortTensor", "int8": "CharTensor"}


def _integer_or(op, numpy_fn, x, y):
    """``op`` for floats; for integer operands (no gradient) NumPy's function directly,
    raising on a zero divisor as PyTorch does (NumPy would give 0), unless the result is
    empty."""
    xs = [a._value if isinstance(a, Tensor) else a for a in (x, y)]
    if all(_integral(a) for a in xs):
        if np.any(np.asarray(xs[1]) == 0) and 0 not in np.broadcast_shapes(
                *(np.shape(a) for a in xs)):
            raise RuntimeError("ZeroDivisionError: integer division or modulo by zero")
        # PyTorch's result dtype (a 0-d tensor or a Python int does not widen a tensor
        # with dimensions); NumPy computes in its own, wider one, which holds the result.
        dtype = result_type([get_aval(a) for a in xs])
        return Tensor._wrap(np.asarray(numpy_fn(*xs)).astype(dtype, copy=False))
    return apply(op, (x, y))


def _is_full_mask(index, t):
    """``index`` is a bool Tensor of ``t``'s shape (``t[t > 1] = 0``; with a scalar value
    that is a select; other values fill the selected elements in order)."""
    return (isinstance(index, Tensor) and index._value.dtype == np.bool_
            and tuple(index._value.shape) == tuple(t._value.shape))


def _fill_value(x, value):
    """``masked_fill``'s (or an assignment's) value for ``x``: a number (or a concrete 0-d
    tensor) that an integer tensor cannot hold (nan, inf, or beyond its range) is
    PyTorch's overflow error, not a garbage integer."""
    value = _operand(value)
    dtype = x._value.dtype
    number = value
    if isinstance(value, Tensor) and isinstance(value._value, np.ndarray) and (
            value._value.ndim == 0):
        number = value._value.item()
    if isinstance(number, (int, float)) and not isinstance(number, builtins.bool) and (
            dtype.kind in "iu") and not (np.isfinite(number) and np.iinfo(dtype).min <= number
                                         <= np.iinfo(dtype).max):
        raise RuntimeError(f"value cannot be converted to type {dtype} without overflow: "
                           f"{number} (an integer tensor holds finite integers in its range)")
    return value


def _integral(a):
    """An int or bool Python number, or an array of an integer or bool dtype."""
    if isinstance(a, (int, builtins.bool, np.integer, np.bool_)):
        return True
    return isinstance(a, np.ndarray) and a.dtype.kind in "iub"


def _truncated_quotient(x, y):
    """Integer division rounding toward zero."""
    q = np.floor_divide(np.abs(x), np.abs(y))
    return np.where((np.asarray(x) < 0) != (np.asarray(y) < 0), -q, q)


def _rebuild(value, requires_grad):
    return Tensor._wrap(value, None, requires_grad)


def _math_method(op):
    def method(self):
        return apply(op, (self,))

    method.__name__ = op.fn.__name__
    return method


def _inplace_math_method(op, name):
    def method(self):
        return _inplace(self, op, (self,))

    method.__name__ = name
    method.__doc__ = f"In-place ``{name[:-1]}``: ``x.{name}()`` (PyTorch's in-place method)."
    return method


for _name, _op in {
    "exp": ops.exp, "log": ops.log, "log1p": ops.log1p, "expm1": ops.expm1, "log2": ops.log2,
    "log10": ops.log10, "sin": ops.sin, "cos": ops.cos, "tan": ops.tan, "tanh": ops.tanh,
    "sinh": ops.sinh, "cosh": ops.cosh, "asin": ops.asin, "acos": ops.acos, "atan": ops.atan,
    "arcsin": ops.asin, "arccos": ops.acos, "arctan": ops.atan, "asinh": ops.asinh,
    "acosh": ops.acosh, "atanh": ops.atanh, "sqrt": ops.sqrt, "rsqrt": ops.rsqrt,
    "reciprocal": ops.reciprocal, "sigmoid": ops.sigmoid, "floor": ops.floor, "ceil": ops.ceil,
    "round": ops.round_, "trunc": ops.trunc, "neg": ops.neg, "negative": ops.neg,
    "abs": ops.abs_, "absolute": ops.abs_, "sign": ops.sign, "square": ops.square,
    "relu": ops.relu,
}.items():
    setattr(Tensor, _name, _math_method(_op))
    if not hasattr(Tensor, _name + "_"):  # relu_, sigmoid_, tanh_, sin_, floor_, ...
        setattr(Tensor, _name + "_", _inplace_math_method(_op, _name + "_"))


class _MinMax(tuple):
    """``(values, indices)`` returned by ``max(dim)``/``min(dim)``."""

    def __new__(cls, values, indices, name):
        self = super().__new__(cls, (values, indices))
        self._name = name
        return self

    values = property(lambda self: self[0])
    indices = property(lambda self: self[1])

    def __repr__(self):
        return (f"fgrad.return_types.{self._name}(\nvalues={self[0]!r},\n"
                f"indices={self[1]!r})")


def _correction(unbiased, correction):
    if correction is not None:
        return int(correction)
    return 0 if unbiased is False else 1


def _check_ndim(name, t, ndim, what):
    if not isinstance(t, Tensor):
        raise TypeError(f"{name}(): argument '{what}' must be Tensor, not {type(t).__name__}")
    if t.ndim != ndim:
        raise RuntimeError(f"{what} must be a {ndim}D tensor, got {t.ndim}D "
                           f"(shape {tuple(t.shape)})")


# --------------------------------------------------------------------------- indexing


def _index_tensor(index, name):
    index = _operand(index)
    if not isinstance(index, Tensor) or index._value.dtype.kind not in "iu":
        raise RuntimeError(f"{name}(): Expected dtype int64 for index")
    return index


def _is_bool_scalar(item):
    """A 0-d boolean index: a Python or NumPy bool, or a 0-d bool tensor or array."""
    if isinstance(item, Tensor):
        item = item._value
    return isinstance(item, (builtins.bool, np.bool_)) or (
        isinstance(item, np.ndarray) and item.ndim == 0 and item.dtype == np.bool_)


def _is_false(item):
    """A 0-d boolean index that is False."""
    if not _is_bool_scalar(item):
        return False
    return not builtins.bool(item._value if isinstance(item, Tensor) else item)


def _false_index_axes(index, ndim):
    """The result axes of the False items of an index without index arrays (each adds an
    axis of size 0 there, as in NumPy and PyTorch), or () when it has none."""
    items = index if isinstance(index, tuple) else (index,)
    if not builtins.any(_is_false(item) for item in items):
        return ()
    if builtins.sum(1 for item in items if _is_bool_scalar(item)) > 1:
        raise IndexError("several boolean scalars in one index are not supported; index "
                         "with one of them")
    shapes = []  # per item: (dims of x it takes, axes of the result it makes)
    for item in items:
        value = item._value if isinstance(item, Tensor) else item
        if isinstance(value, (list, np.ndarray)) and np.ndim(value) > 0:
            raise IndexError("a False index together with index arrays or masks is not "
                             "supported; index with the arrays first, then take [False]")
        if item is None or isinstance(value, (builtins.bool, np.bool_)) or (
                isinstance(value, np.ndarray) and value.dtype == np.bool_):
            shapes.append((0, 1))  # a new axis, or a 0-d bool (size 1 or 0)
        elif isinstance(value, slice):
            shapes.append((1, 1))
        elif item is Ellipsis:
            shapes.append(None)
        else:
            shapes.append((1, 0))  # an integer
    taken = builtins.sum(s[0] for s in shapes if s is not None)
    axes, axis = [], 0
    for item, shape in zip(items, shapes):
        if _is_false(item):
            axes.append(axis)
        axis += ndim - taken if shape is None else shape[1]
    return tuple(axes)


def _layout(t):
    """An array with ``t``'s memory layout: its value, or for a traced value (which has
    none) None when it is no view, else the view made from a concrete base of the same
    shape (the strides it has in eager mode, as PyTorch's)."""
    if not isinstance(t._value, Tracer):
        return t._value
    view_of = t.__dict__.get("_view_of")
    if view_of is None:
        return None
    return dispatch.concrete_view(view_of[0]._value.shape, view_of[1])


def _reshape_copies(value, shape):
    """Whether reshaping ``value`` (an array, or None: contiguous) to ``shape`` needs a
    copy (its strides allow no view), as for a transposed matrix flattened."""
    flags = getattr(value, "flags", None)
    if flags is None or flags.c_contiguous:
        return False
    try:
        reshaped = value.reshape(shape)
    except ValueError:
        return False  # the op itself reports the bad shape
    # NB: a reshape is either a view (the same memory) or a fresh copy: bounds tell them apart
    return value.size > 0 and not np.may_share_memory(reshaped, value)


def _squeeze_dims(self, dims):
    """``squeeze`` of a tuple of dims: those of size 1 go (PyTorch 2's ``squeeze(dims)``)."""
    wrapped = [_wrap_dim(self, d) for d in dims]
    for d in wrapped:
        if wrapped.count(d) > 1:
            raise RuntimeError(f"dim {d} appears multiple times in the list of dims")
    shape = self._value.shape
    ones = tuple(sorted(d for d in wrapped if shape[d] == 1))
    if not ones:
        return apply(ops.alias, (self,))
    return apply(ops.squeeze_dims, (self,), (ones,))


def _parse_index(index, shape):
    """Split an index into a hashable template and the index arrays it refers to."""
    if not isinstance(index, tuple):
        index = (index,)
    index = tuple(item._value if isinstance(item, Tensor) else
                  np.asarray(item) if isinstance(item, list) else item for item in index)
    if any(isinstance(item, np.ndarray) and item.dtype == np.uint8 for item in index):
        # NB: PyTorch's byte masks: a uint8 index selects where it is nonzero, as a bool one.
        warnings.warn("indexing with dtype fgrad.uint8 is now deprecated, please use a dtype "
                      "fgrad.bool instead.", UserWarning, stacklevel=3)
        index = tuple(item != 0 if isinstance(item, np.ndarray) and item.dtype == np.uint8
                      else item for item in index)
    template, arrays = [], []
    for position, item in enumerate(index):
        if isinstance(item, (np.ndarray, np.bool_)) or isinstance(item, builtins.bool):
            arr = np.asarray(item)
            if arr.dtype == np.bool_:
                if arr.ndim:
                    _check_mask(arr, index, position, shape)
                if arr.ndim == 0:
                    arr = arr.reshape(1)
                    template.append(None)
                    if not arr[0]:
                        template.append(("array", len(arrays)))
                        arrays.append(Tensor._wrap(np.zeros(0, np.int64)))
                    continue
                for part in np.nonzero(arr):
                    template.append(("array", len(arrays)))
                    arrays.append(Tensor._wrap(part))
                continue
            if arr.ndim == 0:
                template.append(int(arr))
                continue
            if arr.dtype.kind not in "iu":
                raise IndexError("tensors used as indices must be long, int, byte or bool "
                                 "tensors")
            template.append(("array", len(arrays)))
            arrays.append(Tensor._wrap(arr.astype(np.int64, copy=False)))
        elif isinstance(item, slice):
            template.append(("slice", _int_or_none(item.start), _int_or_none(item.stop),
                             _int_or_none(item.step)))
        elif item is None or item is Ellipsis:
            template.append(item)
        elif isinstance(item, (int, np.integer)):
            template.append(int(item))
        else:
            raise IndexError(
                f"only integers, slices (`:`), ellipsis (`...`), None and long or byte "
                f"Variables are valid indices (got {type(item).__name__})")
    return tuple(template), arrays


def _dims_taken(item):
    if item is None or item is Ellipsis:
        return 0
    if isinstance(item, np.ndarray) and item.dtype == np.bool_:
        return item.ndim
    return 1


def _check_mask(mask, index, position, shape):
    """A boolean mask must have the shape of the dims it indexes (PyTorch's check)."""
    before = index[:position]
    if any(item is Ellipsis for item in before):  # counted from the end
        first = len(shape) - builtins.sum(_dims_taken(item) for item in index[position:])
    else:
        first = builtins.sum(_dims_taken(item) for item in before)
    for k, size in enumerate(mask.shape):
        dim = first + k
        if not 0 <= dim < len(shape) or shape[dim] != size:
            got = shape[dim] if 0 <= dim < len(shape) else "no dimension"
            raise IndexError(f"The shape of the mask {list(mask.shape)} at index {k} does not "
                             f"match the shape of the indexed tensor {list(shape)} at index "
                             f"{dim} ({got})")


def _numpy_index(template, arrays):
    out = []
    for item in template:
        if isinstance(item, tuple):
            out.append(slice(*item[1:]) if item[0] == "slice" else arrays[item[1]]._value)
        else:
            out.append(item)
    return tuple(out)


def _int_or_none(x):
    if x is None:
        return None
    if isinstance(x, Tensor):
        return int(x.item())
    return int(x)


# --------------------------------------------------------------------------- in-place


_INPLACE_LEAF = (
    "a leaf Variable that requires grad is being used in an in-place operation. "
    "(fgrad: update parameters inside `with fg.no_grad():`, e.g. "
    "`with fg.no_grad(): w -= lr * w.grad`; or work on w.data / w.detach().)"
)


_INPLACE_VIEW_OF_LEAF = (
    "a view of a leaf Variable that requires grad is being used in an in-place operation. "
    "(fgrad: update parameters inside `with fg.no_grad():`, or clone() the view first.)"
)


_EXPANDED_WRITE = (
    "unsupported operation: more than one element of the written-to tensor refers to a "
    "single memory location (an expanded tensor). Please clone() the tensor before "
    "performing the operation.")


_INPLACE_NO_GRAD_VIEW = (
    "A view was created in no_grad mode and is being modified inplace with grad mode "
    "enabled. Given that this use case is ambiguous and error-prone, it is forbidden. Move "
    "both the view and the inplace either inside the no_grad block (if the inplace should "
    "not be tracked) or outside it (if it should).")


def _check_inplace(t):
    if not _grad_state.enabled:
        return
    if t._requires_grad and t._grad_fn is None:
        raise RuntimeError(_INPLACE_LEAF)
    if t.__dict__.get("_no_grad_view"):
        raise RuntimeError(_INPLACE_NO_GRAD_VIEW)


def _holds_tracer(*xs):
    """Some of ``xs`` is a Tensor holding a traced value (under a transform, e.g. in a
    module's forward inside ``fg.nn.functional_call``)."""
    return builtins.any(isinstance(x, Tensor) and isinstance(x._value, Tracer) for x in xs)


def _rebind_traced(self, value, cast="same_kind"):
    """An in-place op on traced values: ``self`` takes the new value over, as torch.func
    runs in-place ops under its transforms (also a tensor holding constants, such as a
    buffer made with ``fg.zeros`` inside the function). Views keep PyTorch's sharing
    as in eager mode (``_take_over``): a write into a view goes into its base at the
    view's elements, and every live view of a rebound base is made afresh from it."""
    view_of = self.__dict__.get("_view_of")
    _check_inplace_result(self, value, cast)
    if value.dtype != self._value.dtype:
        value = value.astype(self._value.dtype)
    if view_of is None and not self.__dict__.get("_views"):
        self._value = value
        return self
    if view_of is not None and dispatch.recipe_detaches(view_of[1]):
        return _untracked_write(self, value)
    return _take_over(self, Tensor._wrap(value))


def _untracked_write(self, value):
    """A traced write through a ``detach()`` alias (or a view of one): the values change
    in the original too, but not its gradient, as an eager write into shared memory that
    no graph records."""
    from fgrad._src.lax import lax

    base, recipe = self.__dict__["_view_of"]
    positions, mask = _written_positions(base, recipe)
    old = base._value
    with grad_mode.no_grad():
        written = apply(ops.setitem, (Tensor._wrap(old), Tensor._wrap(value), positions,
                                      mask))._value
    if old.dtype.kind == "f":
        # NB: the new values, with the old ones' gradient: written + (old - old)
        written = lax.add(lax.stop_gradient(written), lax.sub(old, lax.stop_gradient(old)))
    base._value = written
    _refresh_views(base)  # ``self`` among them
    return self


def _inplace(self, op, args, params=(), copy=False):
    """Run ``op`` and store the result in ``self`` (PyTorch's in-place semantics)."""
    _check_inplace(self)
    if _holds_tracer(self, *args):
        if copy:
            from fgrad._src.numpy import lax_numpy as fnp

            value = fnp.broadcast_to(fnp.asarray(args[0]._value), self._value.shape)
            return _rebind_traced(self, value, cast="unsafe")
        return _rebind_traced(self, apply(op, args, params)._value)
    recording = _grad_state.enabled and builtins.any(
        isinstance(a, Tensor) and a._requires_grad for a in args)
    if copy:
        src = args[0]
        if recording and src._requires_grad:
            result = apply(ops.to_copy, (src,), (self._value.dtype,)) if (
                src._value.dtype != self._value.dtype) else apply(ops.clone, (src,))
            result = result.expand(self.shape) if result.shape != self.shape else result
            return _take_over(self, result)
        if self._requires_grad and _grad_state.enabled:
            # A constant over a tensor on the graph: the old values get a zero gradient.
            return _fill(self, np.broadcast_to(src._value, self._value.shape), "CopyBackwards")
        np.copyto(self._value, src._value, casting="unsafe")
        graph.mark_written(self._value)
        return self
    if recording:
        # NB: the node must hold ``self`` as it was: ``self`` takes the result over below,
        # and a create_graph backward recomputes the node from its inputs.
        before = Tensor._wrap(self._value, self._grad_fn, self._requires_grad, self._output_nr)
        args = tuple(before if a is self else a for a in args)
    result = apply(op, args, params)
    _check_inplace_result(self, result._value)
    if recording and result._value.dtype != self._value.dtype:
        result = apply(ops.to_copy, (result,), (self._value.dtype,))
    if recording:
        return _take_over(self, result)
    _write(self, result._value)
    return self


def _check_inplace_result(self, value, cast="same_kind"):
    """PyTorch's errors for an in-place op whose result ``value`` ``self`` cannot hold: a
    dtype it cannot be cast to, or another shape."""
    if value.dtype != self._value.dtype and not np.can_cast(value.dtype, self._value.dtype,
                                                            cast):
        raise RuntimeError(f"result type {_torch_type(value.dtype)} can't be cast to the "
                           f"desired output type {_torch_type(self._value.dtype)}")
    if tuple(value.shape) != tuple(self._value.shape):
        raise RuntimeError(f"output with shape {list(self._value.shape)} doesn't match the "
                           f"broadcast shape {list(value.shape)}")


def _torch_type(dtype):
    return ops._torch_name(dtype)


def _write(self, value):
    v = self._value
    # NB: an expanded tensor may have been made writable by an earlier fill or assignment
    if builtins.any(st == 0 and n > 1 for st, n in zip(v.strides, v.shape)):
        raise RuntimeError(_EXPANDED_WRITE)
    _make_writable(self)
    np.copyto(self._value, value, casting="unsafe")
    graph.mark_written(self._value)


def _take_over(self, result):
    """An in-place op recorded on the graph: ``self`` takes over ``result``'s value and
    history. A view's base takes the new values over too, as PyTorch's ``CopySlices``
    does (a differentiable assignment into the base at the view's elements), and every
    live view of the base is then made afresh from it, so all of them see the write."""
    view_of = self.__dict__.get("_view_of")
    if view_of is None or view_of[1][0] is None:  # no view, or detached: no base to write
        shared = self._value
        _rebase(self, result)
        if view_of is not None:  # detach() or .data: the values are shared, not the graph
            _write_through(self, shared)
        _refresh_views(self)
        return self
    base, recipe = view_of
    if base._requires_grad and base._grad_fn is None:
        raise RuntimeError(_INPLACE_VIEW_OF_LEAF)
    positions, mask = _written_positions(base, recipe)
    before = Tensor._wrap(base._value, base._grad_fn, base._requires_grad, base._output_nr)
    written = apply(ops.setitem, (before, result, positions, mask))
    _rebase(base, written)
    _refresh_views(base)  # ``self`` among them
    return self


def _written_positions(base, recipe):
    """``(positions, mask)`` Tensors of a write into the view ``recipe`` of ``base``: the
    flat positions it covers (in the view's shape) and a mask of them over ``base``."""
    positions = np.ascontiguousarray(dispatch.concrete_view(base._value.shape, recipe))
    mask = np.zeros(base._value.size, np.bool_)
    mask[positions.reshape(-1)] = True
    if np.count_nonzero(mask) < positions.size:
        raise RuntimeError(_EXPANDED_WRITE)
    return Tensor._wrap(positions), Tensor._wrap(mask)


def _write_through(self, shared):
    """After an in-place op recorded on a ``detach()``/``.data`` alias: write its new
    values into the memory it shares with the original, as PyTorch does, and keep
    sharing it. The op's node keeps private copies of what it saved from that memory
    (PyTorch's saved original self); any other node that saved it now refuses to run."""
    node = self._grad_fn
    owner = graph.base_array(shared)
    if node is not None and node._saved:
        node._saved = tuple(np.array(a) if isinstance(a, np.ndarray)
                            and graph.base_array(a) is owner else a for a in node._saved)
    if node is not None and node._args is not None:
        node._args = tuple(
            Tensor._wrap(np.array(a._value), a._grad_fn, a._requires_grad, a._output_nr)
            if isinstance(a, Tensor) and isinstance(a._value, np.ndarray)
            and graph.base_array(a._value) is owner else a for a in node._args)
    if not shared.flags.writeable:
        return  # a read-only original (a broadcast): nothing to share into
    np.copyto(shared, self._value, casting="unsafe")
    graph.mark_written(shared)
    self._value = shared


def _refresh_views(base):
    """Make every live view of ``base`` afresh from its new value and history."""
    views = base.__dict__.get("_views")
    if not views:
        return
    for ref in list(views):
        view = ref()
        if view is not None:
            _rebase(view, dispatch.make_view(base, view.__dict__["_view_of"][1]))


def _make_writable(self):
    """Let a write without a graph go into ``self``'s values. A read-only view (NumPy's
    ``broadcast_to`` gives one for ``expand``) becomes a writable view of the same memory
    when its owner is writable, so the base sees the write, as in PyTorch; any other
    read-only array is replaced by a private copy."""
    v = self._value
    if v.flags.writeable:
        return
    owner = graph.base_array(v)
    if owner.flags.writeable and v.size:
        try:
            self._value = np.ndarray(v.shape, v.dtype, buffer=owner, strides=v.strides,
                                     offset=v.ctypes.data - owner.ctypes.data)
            return
        except (TypeError, ValueError):  # an owner that exports no buffer
            pass
    self._value = np.array(v)


def _rebase(self, result):
    """``self`` takes over ``result``'s value and history (an in-place op on the graph)."""
    old_fn = self._grad_fn
    if self._retains_grad and old_fn is not None and old_fn._retained:
        # NB: the retained grad now belongs to the new node only (PyTorch moves it too);
        # left on the old node as well, both would add into .grad.
        old_fn._retained[:] = [entry for entry in old_fn._retained
                               if entry[1] is None or entry[1]() is not self]
    self._value = result._value
    self._grad_fn = result._grad_fn
    self._output_nr = result._output_nr
    self._requires_grad = result._requires_grad
    if self._retains_grad and self._grad_fn is not None:
        graph.retain(self._grad_fn, self._output_nr, self)
    return self


def _fill(self, value, node_name):
    """Write ``value`` into ``self``; on the graph, as a node named ``node_name``."""
    _check_inplace(self)
    if _holds_tracer(self):  # the new values are constants
        return _rebind_traced(self, np.array(np.broadcast_to(
            np.asarray(value, self._value.dtype), self._value.shape)))
    if self._requires_grad and self._grad_fn is not None and _grad_state.enabled:
        # NB: still on the graph, as PyTorch's fill_/zero_ (the old values get a zero
        # gradient): a select of the new value everywhere, exact for any old value.
        filled = Tensor._wrap(np.array(np.broadcast_to(
            np.asarray(value, self._value.dtype), self._value.shape)))
        nowhere = Tensor._wrap(np.zeros(self._value.shape, np.bool_))
        before = Tensor._wrap(self._value, self._grad_fn, True, self._output_nr)
        op = ops.filled_in_place[node_name]
        return _take_over(self, apply(op, (nowhere, before, filled)))
    _make_writable(self)
    self._value[...] = value
    graph.mark_written(self._value)
    return self
