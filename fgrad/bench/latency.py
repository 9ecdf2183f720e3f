"""New-shape latency: seconds from a ``fg.jit(fg.grad(f))`` call on a never-seen shape to
its result, for a 20-op ``f`` (tracing, lowering and the first run).

``python -m fgrad.bench.latency [ROUNDS]`` prints the median and the minimum. The
benchmark runs it in a fresh process that imports only fgrad: a process that has also
loaded JAX or PyTorch holds a million more objects, and the garbage collector's full
passes over them land on whichever call allocates at the wrong moment.

>>> median, best = measure(rounds=2)
>>> 0 < best <= median
True
"""

from __future__ import annotations

import sys
import time

import numpy as np

import fgrad as fg
import fgrad.numpy as fnp


def twenty_op_program(x):
    y = x
    for i in range(5):
        y = fnp.tanh(y) * 0.5 + fnp.sin(y) - y * (0.1 * i) + 1.0
    return fnp.sum(y)


def measure(rounds=5):
    """``(median, min)`` seconds of the first call on each of ``rounds`` new shapes."""
    f = fg.jit(fg.grad(twenty_op_program))
    f(np.ones(7))  # kernels compiled, Python warm
    times = []
    for k in range(rounds):
        x = np.ones(1000 + k)
        start = time.perf_counter()
        f(x)
        times.append(time.perf_counter() - start)
    return float(np.median(times)), float(np.min(times))


if __name__ == "__main__":
    print(*measure(int(sys.argv[1]) if len(sys.argv) > 1 else 5))
