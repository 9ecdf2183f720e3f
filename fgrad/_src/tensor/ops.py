"""The Tensor ops: ``fgrad.numpy`` functions with PyTorch's semantics and node names.

Each ``Op`` pairs a function over arrays/tracers with the name of the node it
records. The functions run only while an op signature is being staged (see
``program``), so they may be written for clarity: PyTorch's type promotion,
``dim``/``keepdim`` and unbiased ``var`` are resolved here, once per signature.
"""

from __future__ import annotations

import math

import numpy as np

from fgrad._src import nn_ops
from fgrad._src.core import get_aval
from fgrad._src.custom_derivatives import custom_vjp
from fgrad._src.lax import lax
from fgrad._src.numpy import indexing, linalg
from fgrad._src.numpy import lax_numpy as fnp
from fgrad._src.tensor import dispatch, names
from fgrad._src.tensor.dispatch import Op
from fgrad._src.tensor.dtype import DEFAULT_FLOAT, result_type

# --------------------------------------------------------------------------- promotion


def _cast(x, dtype):
    aval = get_aval(x)
    if aval.weak_type or aval.dtype == dtype:
        return x
    return lax.convert_element_type(x, dtype)


def promote(*xs, to_float=False):
    """Cast operands to PyTorch's result dtype (float32 for ints when ``to_float``)."""
    dtype = result_type([get_aval(x) for x in xs])
    if to_float and dtype.kind != "f":
        dtype = DEFAULT_FLOAT
    out = []
    for x in xs:
        aval = get_aval(x)
        if aval.weak_type and aval.dtype.kind != dtype.kind and dtype.kind != "f":
            x = lax.convert_element_type(x, dtype)
        out.append(_cast(x, dtype))
    return out


def _float(x):
    """Integer inputs of float functions become float32 (PyTorch's default dtype)."""
    aval = get_aval(x)
    return x if aval.dtype.kind == "f" else lax.convert_element_type(x, DEFAULT_FLOAT)


def _binary(fn, to_float=False):
    def op(x, y):
        x, y = promote(x, y, to_float=to_float)
        return fn(x, y)

    op.__name__ = fn.__name__
    return op


def _unary(fn):
    def op(x):
        return fn(_float(x))

    op.__name__ = fn.__name__
    return op


# --------------------------------------------------------------------------- arithmetic

add = Op("AddBackward0", _binary(fnp.add))
sub = Op("SubBackward0", _binary(fnp.subtract))
rsub = Op("RsubBackward1", lambda x, y: _binary(fnp.subtract)(y, x))
mul = Op("MulBackward0", _binary(fnp.multiply))
div = Op("DivBackward0", _binary(fnp.divide, to_float=True))
# PyTorch computes ``2 / x`` as ``reciprocal(x) * 2``, hence MulBackward0.
rdiv = Op("MulBackward0", lambda x, y: _binary(fnp.divide, to_float=True)(y, x))


def _tie_split(pick, loses):
    """PyTorch's maximum/minimum of two same-shape float operands: the gradient goes to the
    winner and is halved on a tie, also against a constant (fgrad.numpy's minimum-norm rule
    would give the differentiated side all or nothing, docs/kinks.md); where one is nan,
    both sides get it, as in PyTorch."""

    @custom_vjp
    def split(x, y):
        return pick(x, y)

    def fwd(x, y):
        return pick(x, y), (x, y)

    def bwd(operands, ct):
        x, y = operands
        unless_lost = fnp.where(fnp.equal(x, y), fnp.multiply(ct, 0.5), ct)
        return (fnp.where(loses(x, y), 0.0, unless_lost),
                fnp.where(loses(y, x), 0.0, unless_lost))

    split.defvjp(fwd, bwd)

    def op(x, y):
        x, y = promote(x, y)
        dtype = result_type([get_aval(x), get_aval(y)])
        if dtype.kind != "f":
            return pick(x, y)
        # NB: a weak Python scalar takes the result dtype before broadcasting, which
        # would make it a strong float64 array.
        x, y = (lax.convert_element_type(v, dtype) for v in (x, y))
        shape = np.broadcast_shapes(get_aval(x).shape, get_aval(y).shape)
        return split(fnp.broadcast_to(x, shape), fnp.broadcast_to(y, shape))

    return op


maximum = Op("MaximumBackward0", _tie_split(fnp.maximum, fnp.less))
minimum = Op("MinimumBackward0", _tie_split(fnp.minimum, fnp.greater))
atan2 = Op("Atan2Backward0", _binary(fnp.arctan2, to_float=True))
fmod = Op("FmodBackward0", _binary(fnp.fmod))


def _pow_scalar(x, exponent):
    if isinstance(exponent, float) and get_aval(x).dtype.kind != "f":
        x = _float(x)
    if isinstance(exponent, int) and exponent < 0 and get_aval(x).dtype.kind != "f":
        raise RuntimeError("Integers to negative integer powers are not allowed.")
    return fnp.power(x, exponent)


pow_scalar = Op("PowBackward0", _pow_scalar)
pow_tensor = Op("PowBackward1", _binary(fnp.power))
rpow = Op("PowBackward2", lambda x, base: _binary(fnp.power)(base, x))


def _floor_divide(x, y):
    x, y = promote(x, y)
    return fnp.floor(fnp.divide(x, y))


# Float operands only; integer floor division and remainder carry no gradient and are
# computed by NumPy directly (see Tensor.__floordiv__).
floor_divide = Op("DivBackward2", _floor_divide)
remainder = Op("RemainderBackward0", lambda x, y: _remainder(*promote(x, y)))


def _remainder(x, y):
    """Python's ``x % y`` (the sign of ``y``) from C's exact ``fmod``, as NumPy computes
    it: ``x - floor(x / y) * y`` loses digits when ``x / y`` is large, and is nan for an
    infinite ``y``."""
    r = fnp.fmod(x, y)
    wrong_sign = fnp.logical_and(fnp.not_equal(r, 0), fnp.not_equal(fnp.less(r, 0),
                                                                    fnp.less(y, 0)))
    return fnp.where(wrong_sign, fnp.add(r, y), r)


def _lerp(x, end, weight):
    x, end = promote(x, end)
    return fnp.add(x, fnp.multiply(weight, fnp.subtract(end, x)))


lerp = Op("LerpBackward0", _lerp)

# --------------------------------------------------------------------------- comparisons

eq = Op("EqBackward0", _binary(fnp.equal))
ne = Op("NeBackward0", _binary(fnp.not_equal))
lt = Op("LtBackward0", _binary(fnp.less))
le = Op("LeBackward0", _binary(fnp.less_equal))
gt = Op("GtBackward0", _binary(fnp.greater))
ge = Op("GeBackward0", _binary(fnp.greater_equal))
logical_and = Op("LogicalAndBackward0", fnp.logical_and)
logical_or = Op("LogicalOrBackward0", fnp.logical_or)
logical_xor = Op("LogicalXorBackward0", fnp.logical_xor)
logical_not = Op("LogicalNotBackward0", fnp.logical_not)
isnan = Op("IsnanBackward0", fnp.isnan)
isinf = Op("IsinfBackward0", fnp.isinf)
isfinite = Op("IsfiniteBackward0", fnp.isfinite)


def _bitwise(fn, name):
    def op(x, y):
        x, y = promote(x, y)
        if get_aval(x).dtype.kind == "f":
            raise TypeError("bitwise operations need integer or bool tensors")
        # NB: PyTorch's dtype is settled; this broadcasts and gives a Python int operand
        # (weakly typed) the tensor's integer dtype.
        return fn(*fnp._promote_broadcast(name, x, y))

    return op


bitwise_and = Op("BitwiseAndBackward0", _bitwise(lax.bitwise_and, "bitwise_and"))
bitwise_or = Op("BitwiseOrBackward0", _bitwise(lax.bitwise_or, "bitwise_or"))
bitwise_xor = Op("BitwiseXorBackward0", _bitwise(lax.bitwise_xor, "bitwise_xor"))
bitwise_not = Op("BitwiseNotBackward0", lax.bitwise_not)

# --------------------------------------------------------------------------- unary math


def _unary_op(name, fn):
    return Op(name, _unary(fn))


exp = _unary_op("ExpBackward0", fnp.exp)
log = _unary_op("LogBackward0", fnp.log)
log1p = _unary_op("Log1PBackward0", fnp.log1p)
expm1 = _unary_op("Expm1Backward0", fnp.expm1)
log2 = _unary_op("Log2Backward0", lambda x: fnp.divide(fnp.log(x), math.log(2.0)))
log10 = _unary_op("Log10Backward0", lambda x: fnp.divide(fnp.log(x), math.log(10.0)))
sin = _unary_op("SinBackward0", fnp.sin)
cos = _unary_op("CosBackward0", fnp.cos)
tan = _unary_op("TanBackward0", fnp.tan)
tanh = _unary_op("TanhBackward0", fnp.tanh)
sinh = _unary_op("SinhBackward0", fnp.sinh)
cosh = _unary_op("CoshBackward0", fnp.cosh)
asin = _unary_op("AsinBackward0", fnp.arcsin)
acos = _unary_op("AcosBackward0", fnp.arccos)
atan = _unary_op("AtanBackward0", fnp.arctan)
asinh = _unary_op("AsinhBackward0", fnp.arcsinh)
acosh = _unary_op("AcoshBackward0", fnp.arccosh)
atanh = _unary_op("AtanhBackward0", fnp.arctanh)
sqrt = _unary_op("SqrtBackward0", fnp.sqrt)
rsqrt = _unary_op("RsqrtBackward0", lambda x: lax.rsqrt(x))
reciprocal = _unary_op("ReciprocalBackward0", fnp.reciprocal)
sigmoid = _unary_op("SigmoidBackward0", nn_ops.sigmoid)
logsigmoid = _unary_op("LogSigmoidBackward0", nn_ops.log_sigmoid)
softplus = _unary_op("SoftplusBackward0", nn_ops.softplus)


def _softplus_beta(x, beta, threshold):
    """PyTorch's ``softplus(x, beta, threshold)``: ``log(1 + exp(beta x)) / beta``, and
    ``x`` itself where ``beta x > threshold``."""
    x = _float(x)
    scaled = fnp.multiply(x, beta)
    soft = fnp.divide(nn_ops.softplus(scaled), beta)
    return fnp.where(fnp.greater(scaled, threshold), x, soft)


softplus_beta = Op("SoftplusBackward0", _softplus_beta)
floor = Op("FloorBackward0", fnp.floor)
ceil = Op("CeilBackward0", fnp.ceil)
round_ = Op("RoundBackward0", lambda x: lax.round(x) if get_aval(x).dtype.kind == "f" else x)
trunc = Op("TruncBackward0", lambda x: fnp.where(fnp.less(x, 0), fnp.ceil(x), fnp.floor(x)))
neg = Op("NegBackward0", fnp.negative)
abs_ = Op("AbsBackward0", fnp.abs)


def _sign(x):
    """PyTorch's sign: a bool is its own sign, and nan's sign is 0 (NumPy's is nan)."""
    if get_aval(x).dtype == np.bool_:
        return x
    out = fnp.sign(x)
    if get_aval(x).dtype.kind == "f":
        out = fnp.where(fnp.isnan(x), fnp.zeros_like(out), out)
    return out


sign = Op("SignBackward0", _sign)
# PyTorch: a bool squared is an int64 (NumPy's is int8).
square = Op("PowBackward0", lambda x: fnp.square(
    lax.convert_element_type(x, np.int64) if get_aval(x).dtype == np.bool_ else x))
relu = Op("ReluBackward0", lambda x: fnp.maximum(x, fnp.zeros_like(x)) if get_aval(
    x).dtype.kind != "f" else nn_ops.relu(x))


def _clamp(x, low, high):
    return _clamp_between(x, None if low is None else _bound(low, x),
                          None if high is None else _bound(high, x))


def _clamp_between(x, low, high):
    """``x`` clamped to bounds of its dtype (or None): the gradient reaches ``x`` where
    ``low <= x <= high`` (PyTorch's clamp includes the bounds) and a bound where ``x``
    passes it."""
    if low is not None:
        x = fnp.where(fnp.less(x, low), low, x)
    if high is not None:
        x = fnp.where(fnp.greater(x, high), high, x)
    return x


def _bound(value, x):
    dtype = get_aval(x).dtype
    return np.asarray(value, dtype)


# NB: PyTorch's clamp passes the gradient where min <= x <= max (boundaries included).
clamp = Op("ClampBackward1", _clamp)


def _clamp_tensors(x, *rest):
    """Clamp between tensor bounds (``has_low``/``has_high`` say which are given), as
    PyTorch's (maximum/minimum would split a tie)."""
    *bounds, has_low, has_high = rest
    x, *bounds = promote(x, *bounds)
    bounds = iter(bounds)
    return _clamp_between(x, next(bounds) if has_low else None,
                          next(bounds) if has_high else None)


clamp_tensors = Op("ClampBackward0", _clamp_tensors)


# --------------------------------------------------------------------------- reductions


def _torch_accumulator(x):
    """PyTorch sums and multiplies bools and integers, unsigned too, as int64."""
    kind = get_aval(x).dtype.kind
    return lax.convert_element_type(x, np.int64) if kind in "bu" else x


def _sum(x, dim, keepdim, dtype):
    if dtype is not None:
        x = lax.convert_element_type(x, dtype)
    return fnp.sum(_torch_accumulator(x), axis=dim, keepdims=keepdim)


sum_ = Op(lambda avals, p: names.reduction_name("Sum", p[0]), _sum)


def _mean(x, dim, keepdim, dtype):
    if dtype is not None:
        x = lax.convert_element_type(x, dtype)
    if get_aval(x).dtype.kind != "f":
        raise RuntimeError(
            "mean(): could not infer output dtype. Input dtype must be either a floating point "
            f"or complex dtype. Got: {_torch_name(get_aval(x).dtype)} (hint: call .float() first)"
        )
    return fnp.mean(x, axis=dim, keepdims=keepdim)


def _torch_name(dtype):
    return {"int64": "Long", "int32": "Int", "bool": "Bool", "int16": "Short", "int8": "Char",
            "uint8": "Byte", "float64": "Double", "float32": "Float"}.get(dtype.name, dtype.name)


mean = Op(lambda avals, p: names.reduction_name("Mean", p[0]), _mean)
prod = Op(lambda avals, p: "ProdBackward0" if p[0] is None else "ProdBackward1",
          lambda x, dim, keepdim: fnp.prod(_torch_accumulator(x), axis=dim, keepdims=keepdim))
amax = Op("AmaxBackward0", lambda x, dim, keepdim: fnp.max(x, axis=dim, keepdims=keepdim))
amin = Op("AminBackward0", lambda x, dim, keepdim: fnp.min(x, axis=dim, keepdims=keepdim))


# NB: ties share the gradient evenly, as in PyTorch. With a nan present the result and
# every element's gradient are nan (JAX's rule; PyTorch gives it to the nan element):
# a rule of its own (a custom_vjp) would lose forward mode (jacfwd of Tensor code).
max_all = Op("MaxBackward1", lambda x: fnp.max(x))
min_all = Op("MinBackward1", lambda x: fnp.min(x))


def _select_along(x, index, dim, keepdim):
    """``x`` at ``index`` (an int array of the reduced shape) along ``dim``: a gather, so
    the gradient goes to that one element, as PyTorch's ``max(dim)`` does."""
    shape = get_aval(x).shape
    reduced = shape[:dim] + shape[dim + 1:]
    grids = np.indices(reduced, sparse=True) if reduced else ()
    parts = list(grids[:dim]) + [index] + list(grids[dim:])
    out = indexing.getitem(x, tuple(parts))
    return fnp.expand_dims(out, dim) if keepdim else out


def _max_dim(x, dim, keepdim, arg=fnp.argmax):
    dim = dim % max(get_aval(x).ndim, 1)
    if get_aval(x).ndim == 0:
        return x, fnp.zeros((), np.int64)
    index = arg(x, axis=dim)
    values = _select_along(x, index, dim, keepdim)
    return values, (fnp.expand_dims(index, dim) if keepdim else index)


max_dim = Op("MaxBackward0", _max_dim)
min_dim = Op("MinBackward0", lambda x, dim, keepdim: _max_dim(x, dim, keepdim, fnp.argmin))
argmax = Op("ArgmaxBackward0", lambda x, dim, keepdim: fnp.argmax(x, axis=dim, keepdims=keepdim))
argmin = Op("ArgminBackward0", lambda x, dim, keepdim: fnp.argmin(x, axis=dim, keepdims=keepdim))


def _var(x, dim, correction, keepdim):
    return fnp.var(_float(x), axis=dim, ddof=correction, keepdims=keepdim)


var = Op("VarBackward0", _var)
def _std(x, dim, correction, keepdim):
    """``sqrt(var)`` with PyTorch's gradient 0 where the deviation is 0 (``sqrt``'s own
    is infinite there, and inf * 0 is nan); a nan variance stays nan."""
    v = _var(x, dim, correction, keepdim)
    zero = fnp.equal(v, 0)
    return fnp.where(zero, fnp.zeros_like(v), fnp.sqrt(fnp.where(zero, fnp.ones_like(v), v)))


std = Op("StdBackward0", _std)
all_ = Op("AllBackward0", lambda x, dim, keepdim: fnp.all(x, axis=dim, keepdims=keepdim))
any_ = Op("AnyBackward0", lambda x, dim, keepdim: fnp.any(x, axis=dim, keepdims=keepdim))
norm = Op("LinalgVectorNormBackward0", lambda x, p, dim, keepdim: _norm(x, p, dim, keepdim))
logsumexp = Op("LogsumexpBackward0", lambda x, dim, keepdim: nn_ops.logsumexp(
    _float(x), axis=dim, keepdims=keepdim))
def _cumsum(x, dim):
    if get_aval(x).dtype.kind in "ub":  # PyTorch sums bool and unsigned ints as int64
        x = lax.convert_element_type(x, np.int64)
    if get_aval(x).ndim == 0:
        return fnp.reshape(fnp.cumsum(fnp.reshape(x, (1,)), axis=0), ())
    return fnp.cumsum(x, axis=dim)


cumsum = Op("CumsumBackward0", _cumsum)


def _norm(x, p, dim, keepdim):
    x = _float(x)
    if dim is None:  # over every element: the norm of the flattened tensor
        ndim = get_aval(x).ndim
        out = _norm(fnp.reshape(x, (-1,)), p, 0, False)
        return fnp.reshape(out, (1,) * ndim) if keepdim else out
    if p == 2:
        return linalg.norm(x, axis=dim, keepdims=keepdim)
    if p == 1:
        return fnp.sum(fnp.abs(x), axis=dim, keepdims=keepdim)
    if p == np.inf:
        return fnp.max(fnp.abs(x), axis=dim, keepdims=keepdim)
    if p == -np.inf:
        return fnp.min(fnp.abs(x), axis=dim, keepdims=keepdim)
    if p == 0:
        return fnp.sum(fnp.not_equal(x, 0).astype(get_aval(x).dtype), axis=dim, keepdims=keepdim)
    total = fnp.sum(fnp.power(fnp.abs(x), float(p)), axis=dim, keepdims=keepdim)
    return fnp.power(total, 1.0 / p)


# --------------------------------------------------------------------------- shape


view = Op("ViewBackward0", lambda x, shape: fnp.reshape(x, shape), view=True)
reshape_copy = Op("UnsafeViewBackward0", lambda x, shape: fnp.reshape(x, shape))
t = Op("TBackward0", lambda x: fnp.transpose(x), view=True)
permute = Op("PermuteBackward0", lambda x, dims: fnp.transpose(x, dims), view=True)
transpose = Op("TransposeBackward0", lambda x, d0, d1: fnp.swapaxes(x, d0, d1), view=True)
squeeze_all = Op("SqueezeBackward0", lambda x: fnp.squeeze(x), view=True)
squeeze_dim = Op("SqueezeBackward1", lambda x, dim: fnp.squeeze(x, dim), view=True)
squeeze_dims = Op("SqueezeBackward2", lambda x, dims: fnp.squeeze(x, dims), view=True)
unsqueeze = Op("UnsqueezeBackward0", lambda x, dim: fnp.expand_dims(x, dim), view=True)
expand = Op("ExpandBackward0", lambda x, shape: fnp.broadcast_to(x, shape), view=True)
repeat = Op("RepeatBackward0", lambda x, reps: fnp.tile(x, reps))
flip = Op("FlipBackward0", lambda x, dims: fnp.flip(x, dims))
clone = Op("CloneBackward0", lambda x: x)
alias = Op("AliasBackward0", lambda x: x, view=True)
to_copy = Op("ToCopyBackward0", lambda x, dtype: lax.convert_element_type(x, dtype))
narrow = Op("SliceBackward0", lambda x, dim, start, length: _narrow(x, dim, start, length),
            view=True)


def _narrow(x, dim, start, length):
    idx = [slice(None)] * get_aval(x).ndim
    idx[dim] = slice(start, start + length)
    return indexing.getitem(x, tuple(idx))


def _split(x, sizes, dim):
    outs, start = [], 0
    for size in sizes:
        outs.append(_narrow(x, dim, start, size))
        start += size
    return tuple(outs)


split = Op("SplitBackward0", _split, view=True)
split_sizes = Op("SplitWithSizesBackward0", _split, view=True)


def _unbind(x, dim):
    n = get_aval(x).shape[dim]
    idx = [slice(None)] * get_aval(x).ndim
    outs = []
    for i in range(n):
        idx[dim] = i
        outs.append(indexing.getitem(x, tuple(idx)))
    return tuple(outs)


unbind = Op("UnbindBackward0", _unbind, view=True)


def _cat(*args):
    *xs, dim = args
    xs = promote(*xs)
    return fnp.concatenate(xs, axis=dim)


def _stack(*args):
    *xs, dim = args
    xs = promote(*xs)
    return fnp.stack(xs, axis=dim)


cat = Op("CatBackward0", _cat)
stack = Op("StackBackward0", _stack)


def _where(cond, x, y):
    x, y = promote(x, y)
    return fnp.where(cond, x, y)


where = Op("WhereBackward0", _where)
# An in-place fill of a tensor on the graph (``zero_``, ``fill_``, ``normal_``, ...): a
# select of the new values everywhere, under the node name PyTorch gives that method.
filled_in_place = {name: Op(name, _where) for name in (
    "ZeroBackward0", "FillBackward2", "NormalBackward0", "UniformBackward0", "CopyBackwards")}
masked_fill = Op("MaskedFillBackward0", lambda x, mask, value: fnp.where(
    mask, _cast_value(value, x), x))


def _cast_value(value, x):
    aval = get_aval(value)
    dtype = get_aval(x).dtype
    return value if aval.dtype == dtype else lax.convert_element_type(value, dtype)


# --------------------------------------------------------------------------- indexing


def _rebuild_index(template, arrays):
    out = []
    for item in template:
        if isinstance(item, tuple):
            kind = item[0]
            if kind == "slice":
                out.append(slice(*item[1:]))
            elif kind == "array":
                out.append(arrays[item[1]])
        else:
            out.append(item)
    return tuple(out)


def torch_index_axes(template, ndim, array_shapes):
    """``(source, destination)`` for ``moveaxis`` taking NumPy's result of
    ``x[template]`` to PyTorch's, or None when they agree. PyTorch applies integer
    indices first, so ``x[1, :, [0, 3]]`` keeps the array's axes in place, where NumPy
    counts the 1 as a second advanced index separated by the slice and puts the index
    axes first. ``array_shapes`` are the shapes of the index arrays."""
    def is_array(item):
        return isinstance(item, tuple) and item[0] == "array"

    arrays = [k for k, item in enumerate(template) if is_array(item)]
    index_ndim = len(np.broadcast_shapes(*array_shapes)) if array_shapes else 0
    if not arrays or index_ndim == 0:
        return None
    advanced = [k for k, item in enumerate(template) if is_array(item) or isinstance(item, int)]
    if advanced == list(range(advanced[0], advanced[-1] + 1)):
        return None  # NumPy keeps them in place too
    no_ints = [item for item in template if not isinstance(item, int)]
    kept = [k for k, item in enumerate(no_ints) if is_array(item)]
    if kept != list(range(kept[0], kept[-1] + 1)):
        return None  # separated for PyTorch too: both put them first
    consumed = sum(1 for item in template if item is not None and item is not Ellipsis)
    at = 0
    for item in no_ints[:kept[0]]:
        at += (ndim - consumed) if item is Ellipsis else 1
    if at == 0:
        return None
    return list(range(index_ndim)), list(range(at, at + index_ndim))


def _getitem(x, *rest):
    *arrays, template = rest
    out = indexing.getitem(x, _rebuild_index(template, arrays))
    moved = torch_index_axes(template, get_aval(x).ndim, [get_aval(a).shape for a in arrays])
    return fnp.moveaxis(out, *moved) if moved else out


getitem = Op(lambda avals, params: names.index_name(params[0]), _getitem, view=True)
dispatch.getitem_op = getitem  # NB: traced advanced indexing copies (note_traced_views)


def _setitem(x, value, positions, mask, last=None):
    """``x[index] = value`` as a new array: ``positions`` are the flat indices the index
    selects (in the shape of ``x[index]``), ``mask`` marks them; ``last``, when the index
    repeats an element, marks the positions whose value is written last."""
    aval = get_aval(x)
    value = fnp.broadcast_to(_cast_value(value, x), get_aval(positions).shape)
    if last is not None:
        value = fnp.where(last, value, fnp.zeros_like(value))
    flat_positions = fnp.reshape(positions, (-1,))
    zeros = fnp.zeros((aval.size,), aval.dtype)
    scattered = lax.scatter_add(zeros, flat_positions, fnp.reshape(value, (-1,)), 0)
    flat = fnp.where(mask, scattered, fnp.reshape(x, (-1,)))
    return fnp.reshape(flat, aval.shape)


setitem = Op("CopySlices", _setitem)

def _gather(x, index, dim):
    """``out[i][j] = x[index[i][j]][j]`` (for ``dim=0``): PyTorch's ``gather``."""
    shape = get_aval(index).shape
    parts = list(np.indices(shape, sparse=True)) if shape else []
    parts[dim] = index
    return indexing.getitem(x, tuple(parts))


gather = Op("GatherBackward0", _gather)
index_select = Op("IndexSelectBackward0", lambda x, index, dim: indexing.getitem(
    x, (slice(None),) * dim + (index,)))
masked_select = Op("MaskedSelectBackward0", lambda x, rows: fnp.reshape(x, (-1,))[rows])

# --------------------------------------------------------------------------- linear algebra


def _matmul(x, y):
    x, y = promote(x, y)
    return linalg.matmul(x, y)


matmul = Op(lambda avals, p: names.matmul_name(avals[0].ndim, avals[1].ndim), _matmul)
mm = Op("MmBackward0", _matmul)
mv = Op("MvBackward0", _matmul)
dot = Op("DotBackward0", _matmul)
bmm = Op("BmmBackward0", _matmul)
outer = Op("MulBackward0", lambda x, y: linalg.outer(*promote(x, y)))
# PyTorch computes these three through matrix products and reshapes: ViewBackward0.
inner = Op("ViewBackward0", lambda x, y: linalg.inner(*promote(x, y)))
tensordot = Op("ViewBackward0", lambda x, y, axes: linalg.tensordot(*promote(x, y), axes))
einsum = Op("ViewBackward0", lambda *args: linalg.einsum(args[-1], *promote(*args[:-1])))
logaddexp = Op("LogaddexpBackward0", lambda x, y: fnp.logaddexp(*promote(x, y, to_float=True)))

# --------------------------------------------------------------------------- nn


def _softmax(x, dim):
    return nn_ops.softmax(_float(x), axis=dim)


softmax = Op("SoftmaxBackward0", _softmax)
log_softmax = Op("LogSoftmaxBackward0", lambda x, dim: nn_ops.log_softmax(_float(x), axis=dim))


def _reduce_loss(loss, reduction):
    if reduction == "mean":
        return fnp.mean(loss)
    if reduction == "sum":
        return fnp.sum(loss)
    return loss


def _bce_with_logits(logits, target, *rest):
    *weights, reduction, has_weight, has_pos_weight = rest
    logits, target = promote(logits, target)
    weights = list(weights)
    weight = weights.pop(0) if has_weight else None
    pos_weight = weights.pop(0) if has_pos_weight else None
    if pos_weight is None:
        loss = nn_ops.binary_cross_entropy_with_logits(logits, target)
    else:
        log_weight = fnp.add(1, fnp.multiply(fnp.subtract(pos_weight, 1), target))
        loss = fnp.add(
            fnp.multiply(fnp.subtract(1, target), logits),
            fnp.multiply(log_weight, nn_ops.softplus(fnp.negative(logits))),
        )
    if weight is not None:
        loss = fnp.multiply(loss, weight)
    return _reduce_loss(loss, reduction)


binary_cross_entropy_with_logits = Op("BinaryCrossEntropyWithLogitsBackward0", _bce_with_logits)


def _clamped_log(x):
    """``log(x)`` clamped below at -100, as PyTorch's BCE does (no warning at 0)."""
    positive = fnp.greater(x, 0)
    safe_log = fnp.log(fnp.where(positive, x, fnp.ones_like(x)))
    return fnp.maximum(fnp.where(positive, safe_log, fnp.full_like(x, -100.0)), -100.0)


@custom_vjp
def _bce_pointwise(p, y):
    return fnp.negative(fnp.add(fnp.multiply(y, _clamped_log(p)),
                                fnp.multiply(fnp.subtract(1, y), _clamped_log(fnp.subtract(1, p)))))


def _bce_pointwise_fwd(p, y):
    return _bce_pointwise(p, y), (p, y)


def _bce_pointwise_bwd(res, ct):
    # PyTorch's formulas, finite at p = 0 and 1: d/dp = (p - y) / max(p (1 - p), 1e-12),
    # d/dy = log(1 - p) - log(p), each log clamped as in the loss.
    p, y = res
    one_minus = fnp.subtract(1, p)
    dp = fnp.divide(fnp.subtract(p, y), fnp.maximum(fnp.multiply(p, one_minus), 1e-12))
    dy = fnp.subtract(_clamped_log(one_minus), _clamped_log(p))
    return fnp.multiply(ct, dp), fnp.multiply(ct, dy)


_bce_pointwise.defvjp(_bce_pointwise_fwd, _bce_pointwise_bwd)


def _bce(probs, target, *rest):
    *weights, reduction = rest
    probs, target = promote(probs, target)
    loss = _bce_pointwise(probs, target)
    if weights:
        loss = fnp.multiply(loss, weights[0])
    return _reduce_loss(loss, reduction)


binary_cross_entropy = Op("BinaryCrossEntropyBackward0", _bce)


# NB: integer operands of the float-only ops below compute in float32 (PyTorch raises
# "not implemented for 'Long'"; NumPy's promotion of an int with a float gives float64).


def _mse(x, y, reduction):
    x, y = promote(x, y, to_float=True)
    return _reduce_loss(fnp.square(fnp.subtract(x, y)), reduction)


mse_loss = Op("MseLossBackward0", _mse)


def _l1(x, y, reduction):
    x, y = promote(x, y, to_float=True)
    return _reduce_loss(fnp.abs(fnp.subtract(x, y)), reduction)


# PyTorch's l1_loss is a composite: its node is the reduction's (or abs's).
l1_loss = Op(lambda avals, p: {"mean": "MeanBackward0", "sum": "SumBackward0"}.get(
    p[0], "AbsBackward0"), _l1)


def _class_weights(target, ignore_index, dtype, weights):
    """Flat targets safe to index with (ignored ones become 0), each one's weight, and
    which ones count (None when ``ignore_index`` is None: the caller checked that no
    target is ignored)."""
    tgt = fnp.reshape(target, (-1,))
    if ignore_index is None:
        ones = fnp.ones(get_aval(tgt).shape, dtype)
        return tgt, (fnp.multiply(ones, _cast(weights[0], dtype)[tgt]) if weights else ones), None
    valid = fnp.not_equal(tgt, ignore_index)
    safe = fnp.where(valid, tgt, fnp.zeros_like(tgt))
    w = lax.convert_element_type(valid, dtype)  # 1 where counted, 0 where ignored
    if weights:
        w = fnp.multiply(w, _cast(weights[0], dtype)[safe])
    return safe, w, valid


def _reduce_nll(picked, w, reduction, target, valid):
    losses = fnp.negative(fnp.multiply(picked, w))
    if valid is not None:
        # NB: selected, not multiplied: an ignored row's inf or nan must not leak in.
        losses = fnp.where(valid, losses, fnp.zeros_like(losses))
    if reduction == "mean":
        return fnp.divide(fnp.sum(losses), fnp.sum(w))
    if reduction == "sum":
        return fnp.sum(losses)
    return fnp.reshape(losses, get_aval(target).shape)


def _classes_last(log_probs):
    """``log_probs`` as (elements, classes): the class dim (1, or 0 when unbatched) last."""
    aval = get_aval(log_probs)
    moved = fnp.moveaxis(log_probs, 1, -1) if aval.ndim > 1 else log_probs[None]
    return fnp.reshape(moved, (-1, get_aval(moved).shape[-1]))


def _nll(log_probs, target, *rest):
    *weights, reduction, ignore_index = rest
    log_probs = _float(log_probs)
    aval = get_aval(log_probs)
    flat = _classes_last(log_probs)
    safe, w, valid = _class_weights(target, ignore_index, aval.dtype, weights)
    picked = flat[np.arange(get_aval(flat).shape[0]), safe]
    return _reduce_nll(picked, w, reduction, target, valid)


nll_loss = Op("NllLossBackward0", _nll)


def _cross_entropy(logits, target, *rest):
    *weights, reduction, ignore_index = rest
    logits = _float(logits)
    aval = get_aval(logits)
    if aval.ndim != 2:
        dim = 1 if aval.ndim > 1 else 0
        log_probs = nn_ops.log_softmax(logits, axis=dim)
        return _nll(log_probs, target, *weights, reduction, ignore_index)
    # (batch, classes), the usual case: pick the target logits first, then subtract their
    # rows' logsumexp; the same numbers as log_softmax(logits)[rows, targets] with a
    # smaller program (no log-probabilities of the whole batch).
    if ignore_index is None and not weights and reduction != "none":
        return _plain_cross_entropy(logits, target, reduction)
    safe, w, valid = _class_weights(target, ignore_index, aval.dtype, weights)
    picked = fnp.subtract(logits[np.arange(aval.shape[0]), safe],
                          nn_ops.logsumexp(logits, axis=1))
    return _reduce_nll(picked, w, reduction, target, valid)


def _plain_cross_entropy(logits, target, reduction):
    """Mean or sum of ``logsumexp(row) - row[target]`` over (batch, classes) logits, no
    class weights, no ignored target (the caller checked each is a valid class): the
    targets index the flat logits directly. The same numbers as the general path."""
    n, n_classes = get_aval(logits).shape
    flat_index = fnp.add(np.arange(n) * n_classes, fnp.reshape(target, (-1,)))
    picked = lax.gather(fnp.reshape(logits, (-1,)), flat_index, axis=0)
    total = fnp.sum(fnp.subtract(nn_ops.logsumexp(logits, axis=1), picked))
    return total if reduction == "sum" else fnp.divide(total, np.asarray(n, total.dtype))


cross_entropy = Op("NllLossBackward0", _cross_entropy)


def _smoothed_cross_entropy(logits, target, *rest):
    """PyTorch's label smoothing ``s`` over class indices: ``(1 - s) * nll + s / C *
    smooth``, where ``smooth`` is each element's ``-sum_c w_c log p_c``, reduced like the
    nll (the mean divides by the weights of the counted targets)."""
    *weights, reduction, ignore_index, smoothing = rest
    logits = _float(logits)
    aval = get_aval(logits)
    log_probs = nn_ops.log_softmax(logits, axis=1 if aval.ndim > 1 else 0)
    nll = _nll(log_probs, target, *weights, reduction, ignore_index)
    flat = _classes_last(log_probs)
    n_classes = get_aval(flat).shape[1]
    if weights:
        flat = fnp.multiply(flat, weights[0])
    smooth = fnp.negative(fnp.sum(flat, axis=1))
    _, w, valid = _class_weights(target, ignore_index, aval.dtype, weights)
    if valid is not None:
        smooth = fnp.where(valid, smooth, fnp.zeros_like(smooth))
    if reduction == "mean":
        smooth = fnp.divide(fnp.sum(smooth), fnp.sum(w))
    elif reduction == "sum":
        smooth = fnp.sum(smooth)
    else:
        smooth = fnp.reshape(smooth, get_aval(target).shape)
    return fnp.add(fnp.multiply(nll, 1.0 - smoothing),
                   fnp.multiply(smooth, smoothing / n_classes))


smoothed_cross_entropy = Op("AddBackward0", _smoothed_cross_entropy)


def _soft_cross_entropy(logits, target, *rest):
    """Cross-entropy against class probabilities (a float target shaped like the logits):
    each element's ``-sum_c w_c t_c log p_c``, with ``t`` smoothed to ``t (1 - s) + s / C``;
    the mean divides by the number of elements, as PyTorch's."""
    *weights, reduction, smoothing = rest
    logits, target = promote(logits, target, to_float=True)
    aval = get_aval(logits)
    class_dim = 1 if aval.ndim > 1 else 0
    n_classes = aval.shape[class_dim]
    if smoothing:
        target = fnp.add(fnp.multiply(target, 1.0 - smoothing), smoothing / n_classes)
    terms = fnp.multiply(nn_ops.log_softmax(logits, axis=class_dim), target)
    if weights:
        shape = [1] * aval.ndim
        shape[class_dim] = n_classes
        terms = fnp.multiply(terms, fnp.reshape(weights[0], tuple(shape)))
    losses = fnp.negative(fnp.sum(terms, axis=class_dim))
    if reduction == "mean":
        count = aval.size // n_classes if n_classes else 0
        return fnp.divide(fnp.sum(losses), np.asarray(count, get_aval(losses).dtype))
    return fnp.sum(losses) if reduction == "sum" else losses


# PyTorch's composite ends with a division by the element count, or a negation.
soft_cross_entropy = Op(lambda avals, p: "DivBackward1" if p[0] == "mean" else "NegBackward0",
                        _soft_cross_entropy)


def _linear_name(avals, params):
    ndim, has_bias = avals[0].ndim, params[0]
    if ndim == 2:
        return "AddmmBackward0" if has_bias else "MmBackward0"
    if ndim == 1:
        return "ViewBackward0" if has_bias else "SqueezeBackward4"
    return "ViewBackward0" if has_bias else "UnsafeViewBackward0"


def _linear(x, weight, *rest):
    *bias, has_bias = rest
    x, weight = promote(x, weight)
    x_aval, w_aval = get_aval(x), get_aval(weight)
    if w_aval.ndim == 2 and x_aval.ndim >= 1 and x_aval.shape[-1] == w_aval.shape[1]:
        # NB: contract x's last dim with the weight's dim 1 rather than ``x @ weight.T``:
        # under fg.jit the transpose is a copy of the weight every call, and the weight's
        # gradient would come out as (in, out) and be copied back by another transpose.
        out = lax.dot_general(x, weight, (((x_aval.ndim - 1,), (1,)), ((), ())))
    else:  # a vector weight, or mismatched shapes: matmul's semantics and error messages
        out = linalg.matmul(x, fnp.transpose(weight))
    return fnp.add(out, bias[0]) if has_bias else out


linear = Op(_linear_name, _linear)
dropout = Op("MulBackward0", lambda x, mask, scale: fnp.multiply(
    fnp.multiply(_float(x), _cast_value(mask, _float(x))), scale))


def _leaky_relu(x, slope):
    x = _float(x)
    return fnp.where(fnp.greater(x, 0), x, fnp.multiply(x, slope))


leaky_relu = Op("LeakyReluBackward0", _leaky_relu)
silu = _unary_op("SiluBackward0", lambda x: fnp.multiply(x, nn_ops.sigmoid(x)))


def _elu(x, alpha):
    x = _float(x)
    positive = fnp.greater(x, 0)
    # NB: expm1 of where(x > 0, 0, x) rather than of minimum(x, 0): at x == 0 the
    # gradient is alpha, as PyTorch's (minimum gives a tie no gradient).
    negative_part = fnp.multiply(alpha, fnp.expm1(fnp.where(positive, 0, x)))
    return fnp.where(positive, x, negative_part)


def _hardtanh(x, low, high):
    # PyTorch's hardtanh passes the gradient strictly inside (min_val, max_val), where
    # clamp includes the boundaries.
    low, high = _bound(low, x), _bound(high, x)
    return fnp.where(fnp.less_equal(x, low), low, fnp.where(fnp.greater_equal(x, high), high, x))


elu = Op("EluBackward0", _elu)
hardtanh = Op("HardtanhBackward0", _hardtanh)
