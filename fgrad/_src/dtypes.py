"""Canonical dtypes, NEP 50 promotion with weak types, and short dtype names.

A *weak* type marks a value that came from a Python scalar: it takes the dtype
of whatever strong operand it meets, exactly as NumPy 2 treats Python scalars.
"""

import numpy as np

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
bool_ = np.dtype(np.bool_)

_SHORT_NAMES = {"b": "bool", "i": "i", "u": "u", "f": "f"}


def short_name(dtype) -> str:
    """The jaxpr spelling of a dtype: ``f32``, ``f64``, ``i64``, ``bool``.

    >>> short_name(np.dtype("float32"))
    'f32'
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return "bool"
    return f"{_SHORT_NAMES[dtype.kind]}{dtype.itemsize * 8}"


def check_supported(dtype) -> np.dtype:
    """Return ``dtype`` as a NumPy dtype, or raise if fgrad cannot compute with it.

    >>> check_supported("float32")
    dtype('float32')
    """
    dtype = np.dtype(dtype)
    if dtype.kind not in "biuf" or dtype == np.float16:
        raise TypeError(
            f"fgrad does not support arrays of dtype {dtype}; "
            "convert them to float32, float64, an integer type or bool first."
        )
    return dtype


def canonical_array_dtype(dtype) -> np.dtype:
    """The dtype fgrad computes in for arrays of ``dtype``: the same type in the machine's
    byte order, as NumPy's own results are (a big-endian ``>f8`` array from a file is a
    float64 value); raises as ``check_supported`` for unsupported dtypes.

    >>> canonical_array_dtype(">f8") == np.float64
    True
    """
    return native_byte_order(check_supported(dtype))


def native_byte_order(dtype) -> np.dtype:
    """``dtype`` in the machine's byte order (itself when it already is).

    >>> native_byte_order(np.dtype(">i4")) == np.int32
    True
    """
    dtype = np.dtype(dtype)
    return dtype if dtype.isnative else dtype.newbyteorder("=")


def is_float(dtype) -> bool:
    """True for floating-point dtypes (the ones that carry gradients).

    >>> is_float(np.float32), is_float(np.int64)
    (True, False)
    """
    return np.dtype(dtype).kind == "f"


def python_scalar_dtype(x) -> np.dtype:
    """The dtype a Python scalar gets when it stands alone (bool, int64, float64).

    >>> python_scalar_dtype(2.0)
    dtype('float64')
    """
    if isinstance(x, (bool, np.bool_)):
        return bool_
    if isinstance(x, int):
        return int64
    if isinstance(x, float):
        return float64
    raise TypeError(f"{type(x).__name__} is not a Python scalar")


def _weak_stand_in(dtype):
    # NB: NumPy 2's result_type implements NEP 50 for Python scalars, so a weak
    # operand is represented by a Python scalar of its kind.
    kind = np.dtype(dtype).kind
    return {"b": False, "i": 0, "u": 0, "f": 0.0}[kind]


def result_type(*dtypes_and_weak) -> tuple:
    """Promote ``(dtype, weak_type)`` pairs the way NumPy 2 does; return ``(dtype, weak)``.

    >>> result_type((np.dtype("float32"), False), (np.dtype("float64"), True))
    (dtype('float32'), False)
    """
    strong = [np.dtype(d) for d, weak in dtypes_and_weak if not weak]
    weak = [_weak_stand_in(d) for d, w in dtypes_and_weak if w]
    if not strong:
        # Only Python scalars: promote their kinds (bool < int < float).
        out = np.result_type(*[type(w) if not isinstance(w, bool) else np.bool_ for w in weak])
        return np.dtype(out), True
    out = np.result_type(*strong, *weak)
    return np.dtype(out), False
