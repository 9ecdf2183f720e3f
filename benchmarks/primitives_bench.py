"""One operation at a time: ``fg.jit`` of a single ``fgrad.numpy`` call against NumPy's.

    python benchmarks/primitives_bench.py [--rows 256] [--dtype float32] [--rounds 15]

Each case runs on ``rows x 256`` arrays (65,536 elements by default), one primitive or
a short fixed pattern of them (a broadcast add, a gather, a keepdims reduction), so a
kernel that is slow for its own reasons (a loop that does not vectorize, a branch a
random mask mispredicts, an input copied in) shows as a ratio above 1, marked ``<<<``
above 1.5. Whole-program speed (fusion, transcendental kernels) is the business of
``python -m fgrad.bench``; this table is where a single kernel's regression shows.

Every case is checked against NumPy (NaN-aware) before it is timed; timing is
interleaved (``fgrad.bench.timing.measure``) and the table shows medians per call.
"""

from __future__ import annotations

import argparse
import functools

import numpy as np

import fgrad as fg
import fgrad.numpy as fnp
from fgrad.bench.timing import measure

COLUMNS = 256


def cases(rows, dtype):
    """``{name: (fgrad function, NumPy function, args)}``."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, COLUMNS)).astype(dtype)
    y = rng.standard_normal((rows, COLUMNS)).astype(dtype)
    row = rng.standard_normal(COLUMNS).astype(dtype)
    col = rng.standard_normal(rows).astype(dtype)
    mask = x > 0  # random: a branchy select mispredicts half of the time
    ix = rng.integers(-100, 100, (rows, COLUMNS))
    iy = rng.integers(1, 100, (rows, COLUMNS))
    flat = x.reshape(-1)
    index = rng.integers(0, flat.size, flat.size)
    same = {  # the same call in both namespaces
        "add": ("add", (x, y)), "multiply": ("multiply", (x, y)),
        "divide": ("divide", (x, y)), "maximum": ("maximum", (x, y)),
        "negative": ("negative", (x,)), "abs": ("abs", (x,)), "square": ("square", (x,)),
        "sqrt(abs)": ("sqrt", (np.abs(x),)), "log(abs)": ("log", (np.abs(x),)),
        "exp": ("exp", (x,)),
        "tanh": ("tanh", (x,)), "sin": ("sin", (x,)), "greater": ("greater", (x, y)),
        "isfinite": ("isfinite", (x,)), "where": ("where", (mask, x, y)),
        "sum": ("sum", (x,)), "matmul": ("matmul", (x[:COLUMNS], y[:COLUMNS].T)),
        "matvec": ("matmul", (x, row)), "outer": ("outer", (col, row)),
        "int maximum": ("maximum", (ix, iy)), "int floor_divide": ("floor_divide", (ix, iy)),
    }
    table = {name: (getattr(fnp, fn), getattr(np, fn), args) for name, (fn, args) in same.items()}

    def both(fn):  # a lambda over "np"-like namespaces: the same code for both sides
        return (lambda *a: fn(fnp, *a)), (lambda *a: fn(np, *a))

    patterns = {
        "add row (x + v)": (lambda m, a, v: a + v, (x, row)),
        "add column (x + v[:, None])": (lambda m, a, v: a + v[:, None], (x, col)),
        "sum axis 0": (lambda m, a: m.sum(a, axis=0), (x,)),
        "sum axis 1": (lambda m, a: m.sum(a, axis=1), (x,)),
        "max axis 0": (lambda m, a: m.max(a, axis=0), (x,)),
        "max axis 1": (lambda m, a: m.max(a, axis=1), (x,)),
        "argmax axis 1": (lambda m, a: m.argmax(a, axis=1), (x,)),
        "softmax rows": (lambda m, a: m.exp(a - m.max(a, axis=1, keepdims=True))
                         / m.sum(m.exp(a - m.max(a, axis=1, keepdims=True)), axis=1,
                                 keepdims=True), (x,)),
        "slice x[::2, 1::3] * 2": (lambda m, a: a[::2, 1::3] * 2, (x,)),
        "reverse x[::-1] + 0": (lambda m, a: a[::-1] + 0, (x,)),
        "concatenate axis 1": (lambda m, a, b: m.concatenate([a, b], axis=1), (x, y)),
        "repeat 2 axis 1": (lambda m, a: m.repeat(a, 2, axis=1), (x,)),
        "gather x[idx]": (lambda m, a, i: a[i], (flat, index)),
        "norm": (lambda m, a: m.linalg.norm(a), (x,)),
    }
    for name, (fn, args) in patterns.items():
        table[name] = (*both(fn), args)
    # NB: NumPy's x.T is a view (and x.T + 0 keeps its layout); a jitted result is always
    # C-contiguous, so the fair NumPy side copies.
    table["transpose (C-contiguous)"] = (fnp.transpose, lambda a: np.ascontiguousarray(a.T),
                                         (x,))
    return table


def run(rows, dtype, rounds):
    print(f"one jitted operation against NumPy: {rows}x{COLUMNS} {np.dtype(dtype).name}, "
          f"medians of {rounds} interleaved rounds")
    print(f"{'case':30s} {'fgrad jit us':>13s} {'numpy us':>10s} {'ratio':>7s}")
    for name, (fg_fn, np_fn, args) in cases(rows, dtype).items():
        jitted = fg.jit(fg_fn)
        got, want = np.asarray(jitted(*args)), np.asarray(np_fn(*args))
        if got.shape != want.shape or not np.allclose(got, want, rtol=1e-3, atol=1e-3,
                                                      equal_nan=True):
            raise AssertionError(f"{name}: fgrad disagrees with NumPy")
        times = measure({"fgrad": functools.partial(jitted, *args),
                         "numpy": functools.partial(np_fn, *args)}, rounds=rounds)
        ratio = times["fgrad"][0] / times["numpy"][0]
        mark = "  <<<" if ratio > 1.5 else ""
        print(f"{name:30s} {times['fgrad'][0] * 1e6:13.1f} {times['numpy'][0] * 1e6:10.1f} "
              f"{ratio:7.2f}{mark}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    run(args.rows, np.dtype(args.dtype), args.rounds)


if __name__ == "__main__":
    main()
