"""Helpers that register a primitive's abstract-eval and NumPy rules in one call."""

import numpy as np

from fgrad._src import core, dtypes
from fgrad._src.core import Primitive, ShapedArray
from fgrad._src.pretty_print import pp_rules

FLOAT = "float"
NUMERIC = "numeric"
ANY = "any"


def _check_dtype(name, aval, accepted):
    kind = aval.dtype.kind
    if accepted == FLOAT and kind != "f":
        raise TypeError(f"{name} requires a floating-point operand, got {aval.str_short()}")
    if accepted == NUMERIC and kind == "b":
        raise TypeError(f"{name} does not accept boolean operands, got {aval.str_short()}")


def _as_dtype(impl, dtype_of):
    # NB: NumPy may return a different dtype than the abstract rule promises
    # (e.g. for 0-d inputs); the reference casts so both executors agree.
    def impl_cast(*args, **params):
        out = impl(*args, **params)
        dtype = dtype_of(*args, **params)
        return _cast_result(out, dtype)

    impl_cast.unchecked = impl  # the bare NumPy function (used by the Tensor facade)
    return impl_cast


_NDARRAY = np.ndarray


def _cast_result(out, dtype):
    if isinstance(out, (np.ndarray, np.generic)) and out.dtype == dtype:
        return out
    # NB: a big-endian operand's result is native, as its aval says.
    return np.asarray(out, dtypes.native_byte_order(dtype))


def _as_first_dtype(impl, arity):
    """``_as_dtype(impl, dtype of the first operand)`` for a unary or binary ``impl``.

    NB: it runs on every eager primitive, so the usual case, NumPy returning an
    array of the operand array's dtype, costs two class checks and one dtype
    comparison; everything else gets the full check of ``_cast_result``.
    """
    if arity == 1:
        def impl_cast(x):
            out = impl(x)
            if out.__class__ is _NDARRAY and x.__class__ is _NDARRAY and out.dtype == x.dtype:
                return out
            return _cast_result(out, np.asarray(x).dtype)
    else:
        def impl_cast(x, y):
            out = impl(x, y)
            if out.__class__ is _NDARRAY and x.__class__ is _NDARRAY and out.dtype == x.dtype:
                return out
            return _cast_result(out, np.asarray(x).dtype)

    impl_cast.unchecked = impl
    return impl_cast


def unop(name, impl, accepted=FLOAT, result_dtype=None) -> Primitive:
    """A shape-preserving unary primitive with NumPy implementation ``impl``."""
    prim = Primitive(name)

    def abstract(x):
        _check_dtype(name, x, accepted)
        dtype = x.dtype if result_dtype is None else result_dtype
        return ShapedArray.trusted(x.shape, dtype, x.weak_type and result_dtype is None)

    core.abstract_eval_rules[prim] = abstract
    core.impl_rules[prim] = _as_first_dtype(impl, 1) if result_dtype is None else _as_dtype(
        impl, lambda x: result_dtype
    )
    pp_rules[prim] = None
    return prim


def binop(name, impl, accepted=NUMERIC, result_dtype=None) -> Primitive:
    """An elementwise binary primitive: equal shapes and dtypes, no broadcasting."""
    prim = Primitive(name)

    def abstract(x, y):
        if x.shape != y.shape:
            raise ValueError(
                f"{name} requires equal shapes, got {x.str_short()} and {y.str_short()}"
            )
        if x.dtype != y.dtype:
            raise TypeError(
                f"{name} requires equal dtypes, got {x.str_short()} and {y.str_short()}"
            )
        _check_dtype(name, x, accepted)
        dtype = x.dtype if result_dtype is None else result_dtype
        # NB: comparisons of two weak operands are weak too, like Python's `2.0 > 1.0`.
        return ShapedArray.trusted(x.shape, dtype, x.weak_type and y.weak_type)

    core.abstract_eval_rules[prim] = abstract
    core.impl_rules[prim] = _as_first_dtype(impl, 2) if result_dtype is None else _as_dtype(
        impl, lambda x, y: result_dtype
    )
    pp_rules[prim] = None
    return prim


def primitive(name, abstract, impl, multiple_results=False, pp=None) -> Primitive:
    """A primitive with explicit abstract-eval and implementation rules."""
    prim = Primitive(name, multiple_results)
    core.abstract_eval_rules[prim] = abstract
    core.impl_rules[prim] = impl
    pp_rules[prim] = pp
    return prim


def scalar_like(value, like):
    """``value`` as a 0-d NumPy array with the dtype of ``like``."""
    return np.asarray(value, dtype=core.get_aval(like).dtype)


def canonical_dtype(dtype) -> np.dtype:
    return dtypes.check_supported(dtype)
