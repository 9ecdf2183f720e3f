"""``python -m fgrad.bench``: fgrad against hand-written NumPy (and peers when installed).

Prints, per workload, each contender's median and min time per call and its
ratio to NumPy's median, all measured interleaved in one process.
``--quick`` runs small sizes only; ``--json FILE`` writes the numbers;
``--plot FILE.png`` draws them when matplotlib is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from fgrad.bench import workloads
from fgrad.bench.timing import measure


def _row(workload, results):
    base = results["numpy"][0]
    lines = []
    for name, (median, best) in results.items():
        lines.append((workload, name, median, best, median / base))
    return lines


def _print(rows):
    print(f"{'workload':34s} {'contender':28s} {'median':>12s} {'min':>12s} {'/numpy':>8s}")
    for workload, name, median, best, ratio in rows:
        print(f"{workload:34s} {name:28s} {_fmt(median):>12s} {_fmt(best):>12s} {ratio:8.3f}")


def _fmt(seconds):
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds:.3f} s"


def new_shape_latency(rounds=5):
    """``(median, min)`` seconds of a 20-op ``jit(grad)`` call on a never-seen shape,
    measured in a fresh process that imports only fgrad (see ``fgrad.bench.latency``)."""
    out = subprocess.run([sys.executable, "-m", "fgrad.bench.latency", str(rounds)],
                         check=True, capture_output=True, text=True)
    median, best = out.stdout.split()[-2:]
    return float(median), float(best)


def cold_start():
    """Import time, first call with a warm cache, first call after clearing the cache."""
    first_call = (
        "import time, numpy as np; t = time.perf_counter(); import fgrad as fg; "
        "import fgrad.numpy as fnp; "
        "fg.jit(fg.grad(lambda x: fnp.sum(fnp.tanh(x) * x)))(np.ones(3)); "
        "print(time.perf_counter() - t)"
    )
    import_only = (
        "import time; t = time.perf_counter(); import fgrad; print(time.perf_counter() - t)"
    )

    def run(code, env=None):
        out = subprocess.run([sys.executable, "-c", code], check=True, env=env,
                             capture_output=True, text=True)
        return float(out.stdout.strip().splitlines()[-1])

    results = {"import fgrad": run(import_only)}
    run(first_call)  # make sure the cache is warm
    results["first call, warm cache"] = run(first_call)
    with tempfile.TemporaryDirectory() as cache_dir:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
        results["first call, empty cache"] = run(first_call, env)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fgrad.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--only", default="", help="comma-separated workload prefixes")
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--plot", metavar="FILE.png")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-start runs")
    args = parser.parse_args(argv)

    peers = [m for m in ("jax", "torch", "autograd") if getattr(workloads, m) is not None]
    print(f"peers installed: {', '.join(peers) or 'none'}")
    threads = {v: os.environ.get(v, "unset") for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    print("threads: " + ", ".join(f"{k}={v}" for k, v in threads.items()))
    if peers and "unset" in threads.values():
        # NB: on a small machine the peers' idle thread pools spin between their calls and
        # slow whoever runs next; medians of the interleaved runs then mean little.
        print("note: for stable figures with peers loaded, run with "
              "OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1")
    sizes = [1000, 100_000] if args.quick else [1000, 100_000, 1_000_000, 10_000_000]
    plan = []
    for dtype in (np.float64, np.float32):
        tag = np.dtype(dtype).name
        plan += [(f"W1 n=3 {tag}", lambda d=dtype: workloads.w1(3, d)),
                 (f"W1 n=100 {tag}", lambda d=dtype: workloads.w1(100, d))]
        plan += [(f"W2 n={n:.0e} {tag}", lambda n=n, d=dtype: workloads.w1(n, d)) for n in sizes]
        plan += [(f"W3 logistic 1024x100 {tag}", lambda d=dtype: workloads.w3(d)),
                 (f"W4 MLP step {tag}", lambda d=dtype: workloads.w4(d))]
    plan += [("W5 hessian n=10", lambda: workloads.w5(10))]
    if not args.quick:
        plan += [("W5 hessian n=100", lambda: workloads.w5(100))]
    if args.only:
        prefixes = args.only.split(",")
        plan = [(name, build) for name, build in plan if name.startswith(tuple(prefixes))]

    rows = []
    for name, build in plan:
        rounds = args.rounds if "1e+07" not in name else max(3, args.rounds // 3)
        results = measure(build(), rounds=rounds)
        new_rows = _row(name, results)
        _print(new_rows)
        rows += new_rows

    extra = {}
    median, best = new_shape_latency()
    extra["new-shape latency, 20-op jit(grad)"] = median
    print(f"new-shape latency (20-op jit(grad) program, fresh process): median "
          f"{_fmt(median)}, min {_fmt(best)}")
    if not args.no_cold:
        for label, seconds in cold_start().items():
            extra[label] = seconds
            print(f"{label}: {_fmt(seconds)}")

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": [dict(zip(("workload", "contender", "median", "min", "ratio"), r))
                                for r in rows], "extra": extra}, f, indent=1)
    if args.plot:
        _plot(rows, args.plot)


def _plot(rows, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("--plot needs matplotlib (pip install matplotlib)")
        return
    labels = [f"{w} | {c}" for w, c, *_ in rows if c != "numpy"]
    ratios = [r for _, c, _, _, r in rows if c != "numpy"]
    fig, ax = plt.subplots(figsize=(8, 0.25 * len(labels) + 1))
    ax.barh(labels, ratios)
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("time / NumPy time (lower is better)")
    fig.tight_layout()
    fig.savefig(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
