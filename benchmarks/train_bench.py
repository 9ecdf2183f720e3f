"""The W4 training step with fg.nn + fg.optim and with fg.jit, against NumPy (and PyTorch).

One step of a 784-512-256-10 ReLU MLP on a float32 batch of 128: forward,
cross-entropy loss, backward, plain SGD update (lr 0.01). Contenders:

* ``numpy``: the hand-written forward/backward of ``fgrad.bench.workloads`` (baseline);
* ``fg.nn + fg.optim``: ``nn.Sequential`` of ``nn.Linear``/``nn.ReLU``,
  ``nn.CrossEntropyLoss``, ``loss.backward()``, ``optim.SGD.step()``;
* ``fg.jit(value_and_grad) + functional_call``: the same module as a params dict,
  ``fg.jit(fg.value_and_grad(loss))`` with ``nn.functional_call`` inside;
* ``fg.jit(train step) + functional_call``: the same with the SGD update inside the
  jitted function, which returns the new params dict, the params donated
  (``donate_argnums=0``, the JAX idiom);
* ``fg.jit(value_and_grad), plain fnp``: the W4 function of ``fgrad.bench``
  (no module), to separate the bridge from the compiled step;
* ``torch nn + optim``: the PyTorch version, when torch is installed
  (``pip install torch==2.13.0``). With ``OPENBLAS_NUM_THREADS`` set, torch gets
  that many intra-op threads too, so every contender computes with the same number
  of threads (and torch's idle OpenMP threads, which spin after each op, do not
  slow down the contenders timed after it).

A last row times only NumPy's eight matrix products of the step (three forward, five
backward: the same shapes and layouts). They are BLAS's work, the same calls in every
contender, so their ratio is the floor no implementation of this step goes below
with that BLAS and thread count.

Every contender is first checked to produce the same updated parameters as NumPy
from the same starting point. Then they are timed interleaved (median of rounds)
and the table shows each median and its ratio to NumPy's (and the ratio of the
minima, which is steadier on a busy machine).

Run: python benchmarks/train_bench.py [--rounds N]
"""

import argparse
import os
import sys

import numpy as np

import fgrad as fg
import fgrad.numpy as fnp
from fgrad import nn, optim
from fgrad.bench.timing import measure
from fgrad.bench.workloads import _numpy_mlp_step, mlp_loss

try:  # optional peer
    import torch
except Exception:  # noqa: BLE001
    torch = None

SIZES = (784, 512, 256, 10)
FLOOR = "(the eight matrix products alone)"
BATCH = 128
LR = 0.01


def make_model():
    fg.manual_seed(0)
    layers = []
    for i, (m, n) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        layers.append(nn.Linear(m, n))
        if i < len(SIZES) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def to_numpy_params(module_params):
    """``{"0.weight": (512, 784), ...}`` -> W4's ``{"w0": (784, 512), "b0": ...}``."""
    out = {}
    for i, layer in enumerate((0, 2, 4)):
        out[f"w{i}"] = np.ascontiguousarray(module_params[f"{layer}.weight"].T)
        out[f"b{i}"] = module_params[f"{layer}.bias"].copy()
    return out


def contenders(x, labels):
    base = nn.get_params(make_model())  # one initialisation for everybody

    # ---- hand-written NumPy (the baseline)
    np_params = to_numpy_params(base)

    def numpy_step():
        _numpy_mlp_step(np_params, x, labels, np.float32(LR))

    # ---- fg.nn + fg.optim
    model = make_model()
    nn.set_params(model, base)
    opt = optim.SGD(model.parameters(), lr=LR)
    criterion = nn.CrossEntropyLoss()
    xt, lt = fg.from_numpy(x), fg.from_numpy(labels)

    def facade_step():
        opt.zero_grad()
        loss = criterion(model(xt), lt)
        loss.backward()
        opt.step()

    # ---- fg.jit(fg.value_and_grad(...)) over a params dict, through functional_call
    template = make_model()

    def loss_fn(params, x, labels):
        logits = nn.functional_call(template, params, x)
        log_probs = fg.nn.log_softmax(logits, axis=-1)
        return -fnp.mean(log_probs[fnp.arange(labels.shape[0]), labels])

    jit_step_fn = fg.jit(fg.value_and_grad(loss_fn))
    jit_params = {k: v.copy() for k, v in base.items()}

    def jit_step():
        _, grads = jit_step_fn(jit_params, x, labels)
        for k in jit_params:
            jit_params[k] -= LR * grads[k]

    # ---- JAX style: the SGD update inside the jitted program, through functional_call
    def sgd_step(params, x, labels):
        grads = fg.grad(loss_fn)(params, x, labels)
        return {k: params[k] - np.float32(LR) * grads[k] for k in params}

    # NB: donated, as JAX's training loops do: the new weights go into the old ones.
    train_step_fn = fg.jit(sgd_step, donate_argnums=0)

    train_state = {"params": {k: v.copy() for k, v in base.items()}}

    def train_step():
        train_state["params"] = train_step_fn(train_state["params"], x, labels)

    # ---- the same without a module (fgrad.bench's W4 function)
    plain_fn = fg.jit(fg.value_and_grad(mlp_loss))
    plain_params = to_numpy_params(base)

    def plain_step():
        _, grads = plain_fn(plain_params, x, labels)
        for k in plain_params:
            plain_params[k] -= np.float32(LR) * grads[k]

    steps = {
        "numpy (hand-written)": numpy_step,
        "fg.nn + fg.optim": facade_step,
        "fg.jit(value_and_grad) + functional_call": jit_step,
        "fg.jit(train step) + functional_call": train_step,
        "fg.jit(value_and_grad), plain fnp": plain_step,
    }
    states = {
        "numpy (hand-written)": lambda: np_params,
        "fg.nn + fg.optim": lambda: to_numpy_params(nn.get_params(model)),
        "fg.jit(value_and_grad) + functional_call": lambda: to_numpy_params(jit_params),
        "fg.jit(train step) + functional_call":
            lambda: to_numpy_params(train_state["params"]),
        "fg.jit(value_and_grad), plain fnp": lambda: plain_params,
    }

    if torch is not None:
        threads = os.environ.get("OPENBLAS_NUM_THREADS", "")
        if threads.isdigit() and int(threads) > 0:
            torch.set_num_threads(int(threads))
        tmodel = torch.nn.Sequential(
            torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 256),
            torch.nn.ReLU(), torch.nn.Linear(256, 10))
        with torch.no_grad():
            for name, p in tmodel.named_parameters():
                p.copy_(torch.from_numpy(base[name]))
        topt = torch.optim.SGD(tmodel.parameters(), lr=LR)
        tcrit = torch.nn.CrossEntropyLoss()
        tx, tl = torch.from_numpy(x), torch.from_numpy(labels)

        def torch_step():
            topt.zero_grad()
            tcrit(tmodel(tx), tl).backward()
            topt.step()

        steps["torch nn + optim"] = torch_step
        states["torch nn + optim"] = lambda: to_numpy_params(
            {k: v.detach().numpy() for k, v in tmodel.named_parameters()})
    return steps, states


def products_only(x):
    """NumPy's eight matrix products of the step, on arrays of the step's shapes."""
    rng = np.random.default_rng(1)
    weights = [rng.standard_normal((m, n)).astype(np.float32)
               for m, n in zip(SIZES[:-1], SIZES[1:])]
    acts = [x] + [np.maximum(rng.standard_normal((BATCH, n)).astype(np.float32), 0)
                  for n in SIZES[1:-1]]
    cts = [rng.standard_normal((BATCH, n)).astype(np.float32) for n in SIZES[1:]]

    def products():
        for act, w in zip(acts, weights):
            act @ w
        for i in reversed(range(len(weights))):
            acts[i].T @ cts[i]
            if i > 0:
                cts[i] @ weights[i].T

    return products


def verify(steps, states):
    """One step from the same parameters must give the same parameters everywhere."""
    for step in steps.values():
        step()
    want = states["numpy (hand-written)"]()
    for name, state in states.items():
        got = state()
        for k in want:
            if not np.allclose(got[k], want[k], rtol=1e-4, atol=1e-6):
                raise AssertionError(f"{name}: {k} differs from NumPy after one step (max diff "
                                     f"{np.abs(got[k] - want[k]).max():.3g})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    labels = rng.integers(0, SIZES[-1], BATCH)
    steps, states = contenders(x, labels)
    verify(steps, states)
    steps[FLOOR] = products_only(x)
    timings = measure(steps, rounds=args.rounds)
    base, base_min = timings["numpy (hand-written)"]
    blas_threads = os.environ.get("OPENBLAS_NUM_THREADS", "unset")
    torch_note = (f", torch {torch.__version__} with {torch.get_num_threads()} thread(s)"
                  if torch else "")
    print(f"W4 training step: MLP {'-'.join(map(str, SIZES))}, batch {BATCH}, float32, SGD "
          f"(python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} cpus, "
          f"OPENBLAS_NUM_THREADS={blas_threads}{torch_note})")
    width = max(map(len, timings))
    print(f"{'contender':<{width}}  {'median ms':>9}  {'min ms':>8}  {'x numpy':>7}  "
          f"{'(of mins)':>9}")
    for name, (median, best) in timings.items():
        print(f"{name:<{width}}  {median * 1e3:9.3f}  {best * 1e3:8.3f}  {median / base:7.2f}  "
              f"{best / base_min:9.2f}")
    return timings


if __name__ == "__main__":
    main()
