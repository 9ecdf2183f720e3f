"""``repr(tensor)`` in PyTorch's layout (its ``_tensor_str`` rules, default print options).

* Floats use 4 decimals; if every finite nonzero value is an integer they print
  as ``8.``; scientific notation (``4.0960e+02``) when max/min of the finite
  nonzero magnitudes exceeds 1000, the max exceeds 1e8, or (non-integers) the
  min is below 1e-4. Every element is right-aligned to the widest one.
* Lines wrap at 80 columns; more than 1000 elements are summarized with
  ``...`` keeping 3 items at each edge.
* Suffixes: ``dtype=fgrad.float64`` for dtypes other than float32, int64 and
  bool (PyTorch prints ``torch.float64``), then ``grad_fn=<MulBackward0>`` or
  ``requires_grad=True``.
"""

from __future__ import annotations

import math

import numpy as np

PRECISION = 4
THRESHOLD = 1000
EDGEITEMS = 3
LINEWIDTH = 80


class _Formatter:
    def __init__(self, values: np.ndarray):
        self.floating = values.dtype.kind == "f"
        self.int_mode = True
        self.sci_mode = False
        self.max_width = 1
        flat = values.reshape(-1)
        if not self.floating:
            for v in flat.tolist():
                self.max_width = max(self.max_width, len(str(v)))
            return
        finite = flat[np.isfinite(flat) & (flat != 0)].astype(np.float64)
        if finite.size == 0:
            return
        magnitudes = np.abs(finite)
        low, high = float(magnitudes.min()), float(magnitudes.max())
        items = finite.tolist()
        self.int_mode = bool(np.all(finite == np.ceil(finite)))
        if self.int_mode:
            if high / low > 1000.0 or high > 1.0e8:
                self.sci_mode = True
                self._widen(f"{{:.{PRECISION}e}}", items)
            else:
                self.max_width = max(self.max_width, *(len(f"{v:.0f}") + 1 for v in items))
        elif high / low > 1000.0 or high > 1.0e8 or low < 1.0e-4:
            self.sci_mode = True
            self._widen(f"{{:.{PRECISION}e}}", items)
        else:
            self._widen(f"{{:.{PRECISION}f}}", items)

    def _widen(self, spec, items):
        self.max_width = max(self.max_width, *(len(spec.format(v)) for v in items))

    def format(self, value) -> str:
        if self.floating:
            if self.sci_mode:
                text = f"{{:{self.max_width}.{PRECISION}e}}".format(value)
            elif self.int_mode:
                text = f"{value:.0f}"
                if not (math.isinf(value) or math.isnan(value)):
                    text += "."
            else:
                text = f"{{:.{PRECISION}f}}".format(value)
        else:
            text = str(value)
        return (self.max_width - len(text)) * " " + text


def _summarized(values: np.ndarray) -> np.ndarray:
    """The elements that are shown when printing is summarized (edges only)."""
    if values.ndim == 0:
        return values
    if values.ndim == 1:
        if values.shape[0] > 2 * EDGEITEMS:
            return np.concatenate([values[:EDGEITEMS], values[-EDGEITEMS:]])
        return values
    if values.shape[0] > 2 * EDGEITEMS:
        rows = [values[i] for i in range(EDGEITEMS)]
        rows += [values[i] for i in range(len(values) - EDGEITEMS, len(values))]
    else:
        rows = list(values)
    return np.stack([_summarized(r) for r in rows])


def _vector(values, indent, summarize, fmt):
    element_length = fmt.max_width + 2
    per_line = max(1, int(math.floor((LINEWIDTH - indent) / element_length)))
    if summarize and values.shape[0] > 2 * EDGEITEMS:
        data = [fmt.format(v) for v in values[:EDGEITEMS].tolist()] + [" ..."]
        data += [fmt.format(v) for v in values[-EDGEITEMS:].tolist()]
    else:
        data = [fmt.format(v) for v in values.tolist()]
    lines = [", ".join(data[i:i + per_line]) for i in range(0, len(data), per_line)]
    return "[" + ("," + "\n" + " " * (indent + 1)).join(lines) + "]"


def _format(values, indent, summarize, fmt):
    ndim = values.ndim
    if ndim == 0:
        return fmt.format(values.item())
    if ndim == 1:
        return _vector(values, indent, summarize, fmt)
    n = values.shape[0]
    if summarize and n > 2 * EDGEITEMS:
        slices = [_format(values[i], indent + 1, summarize, fmt) for i in range(EDGEITEMS)]
        slices.append("...")
        slices += [_format(values[i], indent + 1, summarize, fmt) for i in range(n - EDGEITEMS, n)]
    else:
        slices = [_format(values[i], indent + 1, summarize, fmt) for i in range(n)]
    return "[" + ("," + "\n" * (ndim - 1) + " " * (indent + 1)).join(slices) + "]"


def format_values(values: np.ndarray, indent: int) -> str:
    """The bracketed body PyTorch prints for ``values`` (no ``tensor(`` prefix)."""
    if values.size == 0:
        return "[]"
    summarize = values.size > THRESHOLD
    fmt = _Formatter(_summarized(values) if summarize else values)
    return _format(values, indent, summarize, fmt)


_DEFAULT_DTYPES = frozenset({np.dtype(np.float32), np.dtype(np.int64), np.dtype(np.bool_)})


def _add_suffixes(text, suffixes, indent):
    parts = [text]
    last_line_len = len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        if last_line_len + len(suffix) + 2 > LINEWIDTH:
            parts.append(",\n" + " " * indent + suffix)
            last_line_len = indent + len(suffix)
        else:
            parts.append(", " + suffix)
            last_line_len += len(suffix) + 2
    parts.append(")")
    return "".join(parts)


def tensor_repr(values: np.ndarray, grad_fn_name=None, requires_grad=False, prefix="tensor("):
    """The full ``repr`` of a tensor holding ``values``.

    >>> print(tensor_repr(np.array([[1.0, 2.0], [3.0, 4.0]], np.float32), requires_grad=True))
    tensor([[1., 2.],
            [3., 4.]], requires_grad=True)
    """
    indent = len(prefix)
    suffixes = []
    dtype_text = f"dtype=fgrad.{values.dtype.name}"
    if values.size == 0:
        if values.ndim != 1:
            suffixes.append("size=" + str(tuple(values.shape)))
        if values.dtype != np.float32:
            suffixes.append(dtype_text)
        body = "[]"
    else:
        if values.dtype not in _DEFAULT_DTYPES:
            suffixes.append(dtype_text)
        body = format_values(values, indent)
    if grad_fn_name is not None:
        suffixes.append(f"grad_fn=<{grad_fn_name}>")
    elif requires_grad:
        suffixes.append("requires_grad=True")
    return _add_suffixes(prefix + body, suffixes, indent)
