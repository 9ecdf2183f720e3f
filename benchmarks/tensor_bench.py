"""The Tensor facade against hand-written NumPy and PyTorch eager (when installed).

    python benchmarks/tensor_bench.py [--rounds 15]

Workloads, each forward + backward written with ``fg.Tensor`` as a PyTorch user
would write them:

* W1: ``sum(tanh(x) * x + sin(x) ** 2)`` for n = 3 (per-op overhead) and n = 1000;
* W3: logistic regression ``mean(bce_with_logits(X @ w + b, y))``, X 1024 x 100.

Every contender is checked against NumPy's gradient before it is timed. Timing
is interleaved (each round runs every contender in turn) and the table shows
the median and minimum per call, and the ratio of medians to NumPy and PyTorch
(PyTorch runs with one intra-op thread).
"""

from __future__ import annotations

import argparse
import importlib

import numpy as np

import fgrad as fg
from fgrad.bench.timing import measure


def _optional(name):
    try:
        return importlib.import_module(name)
    except Exception:
        return None


torch = _optional("torch")
if torch is not None:
    # One thread, like NumPy's elementwise work: PyTorch's intra-op threads only add
    # scheduling overhead at these sizes (and contend on a loaded machine).
    torch.set_num_threads(1)


def _check(name, got, want, rtol):
    got = np.asarray(got, dtype=np.float64)
    if not np.allclose(got, want, rtol=rtol, atol=rtol):
        raise AssertionError(f"{name} disagrees with NumPy (max diff {np.abs(got - want).max()})")


def w1(n, dtype):
    """Gradient of ``sum(tanh(x) * x + sin(x) ** 2)`` by forward + backward."""
    x = np.random.default_rng(0).standard_normal(n).astype(dtype)

    def numpy_grad():
        t = np.tanh(x)
        return (1 - t * t) * x + t + 2 * np.sin(x) * np.cos(x)

    xf = fg.tensor(x)

    def fgrad_tensor():
        xr = xf.detach().requires_grad_()
        (fg.tanh(xr) * xr + fg.sin(xr) ** 2).sum().backward()
        return xr.grad.numpy()

    contenders = {"numpy": numpy_grad, "fgrad Tensor": fgrad_tensor}
    if torch is not None:
        xt = torch.tensor(x)

        def torch_eager():
            xr = xt.detach().requires_grad_()
            (torch.tanh(xr) * xr + torch.sin(xr) ** 2).sum().backward()
            return xr.grad.numpy()

        contenders["torch eager"] = torch_eager
    return contenders, numpy_grad()


def w3(dtype):
    """Logistic regression: gradient of ``mean(bce_with_logits(X @ w + b, y))`` in w and b."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1024, 100)).astype(dtype)
    y = (rng.random(1024) > 0.5).astype(dtype)
    w = (0.1 * rng.standard_normal(100)).astype(dtype)
    b = np.asarray(0.1, dtype)

    def numpy_grad():
        z = X @ w + b
        p = 1 / (1 + np.exp(-z))
        g = (p - y) / len(y)
        return np.concatenate([X.T @ g, [g.sum()]])

    Xf, yf, wf, bf = fg.tensor(X), fg.tensor(y), fg.tensor(w), fg.tensor(b)
    bce = fg.nn.functional.binary_cross_entropy_with_logits

    def fgrad_tensor():
        wr, br = wf.detach().requires_grad_(), bf.detach().requires_grad_()
        bce(Xf @ wr + br, yf).backward()
        return np.concatenate([wr.grad.numpy(), [br.grad.item()]])

    contenders = {"numpy": numpy_grad, "fgrad Tensor": fgrad_tensor}
    if torch is not None:
        Xt, yt, wt, bt = (torch.tensor(a) for a in (X, y, w, b))
        tbce = torch.nn.functional.binary_cross_entropy_with_logits

        def torch_eager():
            wr, br = wt.detach().requires_grad_(), bt.detach().requires_grad_()
            tbce(Xt @ wr + br, yt).backward()
            return np.concatenate([wr.grad.numpy(), [br.grad.item()]])

        contenders["torch eager"] = torch_eager
    return contenders, numpy_grad()


def run(rounds=15):
    rows = []
    workloads = [
        ("W1 n=3", lambda d: w1(3, d)),
        ("W1 n=1000", lambda d: w1(1000, d)),
        ("W3 1024x100", w3),
    ]
    for name, build in workloads:
        for dtype in (np.float32, np.float64):
            contenders, want = build(dtype)
            rtol = 1e-4 if dtype == np.float32 else 1e-9
            for cname, fn in contenders.items():
                _check(f"{name} {cname}", fn(), want, rtol)
            times = measure(contenders, rounds=rounds)
            rows.append((name, np.dtype(dtype).name, times))
    return rows


def _fmt(seconds):
    return f"{seconds * 1e6:10.1f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    rows = run(args.rounds)
    print(f"{'workload':<13} {'dtype':<8} {'contender':<13} {'median us':>10} {'min us':>10} "
          f"{'/ numpy':>8} {'/ torch':>8}")
    for name, dtype, times in rows:
        base = times["numpy"][0]
        ref = times.get("torch eager", (None,))[0]
        for cname, (median, low) in times.items():
            vs_torch = f"{median / ref:8.2f}" if ref else f"{'-':>8}"
            print(f"{name:<13} {dtype:<8} {cname:<13} {_fmt(median)} {_fmt(low)} "
                  f"{median / base:8.2f} {vs_torch}")
    if torch is None:
        print("(PyTorch is not installed: `pip install torch==2.13.0` adds its column)")


if __name__ == "__main__":
    main()
