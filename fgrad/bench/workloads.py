"""Benchmark workloads W1-W5. Each builder returns ``{contender: zero-arg callable}``
with hand-written NumPy as the baseline ``"numpy"``; peers (JAX, PyTorch, HIPS
autograd) are added only when importable. Every contender is checked against
NumPy's result before it is timed.
"""

from __future__ import annotations

import importlib

import numpy as np

import fgrad as fg
import fgrad.numpy as fnp


def optional(module):
    try:
        return importlib.import_module(module)
    except Exception:
        return None


jax = optional("jax")
torch = optional("torch")
autograd = optional("autograd")
if jax is not None:
    jax.config.update("jax_enable_x64", True)


def _check(name, got, want, rtol):
    got = np.asarray(got, dtype=np.float64)
    if not np.allclose(got, want, rtol=rtol, atol=rtol):
        raise AssertionError(f"{name} disagrees with NumPy (max diff {np.abs(got - want).max()})")


def _verified(contenders, want, rtol, to_numpy=lambda r: r):
    for name, fn in contenders.items():
        _check(name, to_numpy(fn()), want, rtol)
    return contenders


# --------------------------------------------------------------------------- W1 / W2


def w1_fn(x):
    return fnp.sum(fnp.tanh(x) * x + fnp.sin(x) ** 2)


def w1(n, dtype):
    """Gradient of ``sum(tanh(x) * x + sin(x) ** 2)``."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n).astype(dtype)

    def numpy_grad():
        t = np.tanh(x)
        return (1 - t * t) * x + t + 2 * np.sin(x) * np.cos(x)

    eager = fg.grad(w1_fn)
    jitted = fg.jit(fg.grad(w1_fn))
    contenders = {"numpy": numpy_grad, "fgrad grad": lambda: eager(x),
                  "fgrad jit(grad)": lambda: jitted(x)}
    if jax is not None:
        jnp = jax.numpy
        jgrad = jax.jit(jax.grad(lambda x: jnp.sum(jnp.tanh(x) * x + jnp.sin(x) ** 2)))
        xj = jnp.asarray(x)
        contenders["jax jit(grad)"] = lambda: jgrad(xj).block_until_ready()
    if torch is not None:
        xt = torch.tensor(x)

        def torch_grad():
            xr = xt.detach().requires_grad_()
            (torch.tanh(xr) * xr + torch.sin(xr) ** 2).sum().backward()
            return xr.grad

        contenders["torch eager"] = torch_grad
    if autograd is not None:
        anp = autograd.numpy
        agrad = autograd.grad(lambda x: anp.sum(anp.tanh(x) * x + anp.sin(x) ** 2))
        contenders["autograd"] = lambda: agrad(x)
    rtol = 1e-3 if dtype == np.float32 else 1e-8
    return _verified(contenders, numpy_grad().astype(np.float64), rtol, _to_numpy)


def _to_numpy(result):
    if torch is not None and isinstance(result, torch.Tensor):
        return result.detach().numpy()
    return np.asarray(result)


# --------------------------------------------------------------------------- W3


def w3(dtype):
    """Logistic regression: gradient of ``mean(bce_with_logits(X @ w + b, y))``."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1024, 100)).astype(dtype)
    y = (rng.random(1024) > 0.5).astype(dtype)
    w = (0.1 * rng.standard_normal(100)).astype(dtype)
    b = dtype(0.1)

    def loss(w, b):
        return fnp.mean(fg.nn.binary_cross_entropy_with_logits(X @ w + b, y))

    def numpy_grad():
        z = X @ w + b
        p = 1 / (1 + np.exp(-z))
        g = (p - y) / len(y)
        return X.T @ g

    eager = fg.grad(loss)
    jitted = fg.jit(fg.grad(loss))
    contenders = {"numpy": numpy_grad, "fgrad grad": lambda: eager(w, b),
                  "fgrad jit(grad)": lambda: jitted(w, b)}
    if jax is not None:
        jnp = jax.numpy
        Xj, yj, wj = jnp.asarray(X), jnp.asarray(y), jnp.asarray(w)

        def jloss(w, b):
            z = Xj @ w + b
            return jnp.mean(jnp.logaddexp(0, z) - z * yj)

        jgrad = jax.jit(jax.grad(jloss))
        contenders["jax jit(grad)"] = lambda: jgrad(wj, b).block_until_ready()
    if torch is not None:
        Xt, yt, wt = torch.tensor(X), torch.tensor(y), torch.tensor(w)
        bce = torch.nn.functional.binary_cross_entropy_with_logits

        def torch_grad():
            wr = wt.detach().requires_grad_()
            bce(Xt @ wr + float(b), yt).backward()
            return wr.grad

        contenders["torch eager"] = torch_grad
    rtol = 1e-3 if dtype == np.float32 else 1e-8
    return _verified(contenders, numpy_grad().astype(np.float64), rtol, _to_numpy)


# --------------------------------------------------------------------------- W4


def mlp_params(dtype, rng):
    sizes = [784, 512, 256, 10]
    params = {}
    for i, (m, n) in enumerate(zip(sizes[:-1], sizes[1:])):
        params[f"w{i}"] = (rng.standard_normal((m, n)) / np.sqrt(m)).astype(dtype)
        params[f"b{i}"] = np.zeros(n, dtype)
    return params


def mlp_loss(params, x, labels):
    h = x
    for i in range(3):
        h = h @ params[f"w{i}"] + params[f"b{i}"]
        if i < 2:
            h = fnp.maximum(h, 0)
    log_probs = fg.nn.log_softmax(h, axis=-1)
    return -fnp.mean(log_probs[np.arange(labels.shape[0]), labels])


def _numpy_mlp_step(params, x, labels, lr):
    acts, h = [x], x
    for i in range(3):
        h = h @ params[f"w{i}"] + params[f"b{i}"]
        if i < 2:
            h = np.maximum(h, 0)
        acts.append(h)
    logits = acts[-1]
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    n = x.shape[0]
    g = probs
    g[np.arange(n), labels] -= 1
    g /= n
    grads = {}
    for i in reversed(range(3)):
        grads[f"w{i}"] = acts[i].T @ g
        grads[f"b{i}"] = g.sum(axis=0)
        if i > 0:
            g = (g @ params[f"w{i}"].T) * (acts[i] > 0)
    for k in params:
        params[k] -= lr * grads[k]
    return params


def w4(dtype):
    """MLP 784-512-256-10, batch 128: forward, backward and an SGD update."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((128, 784)).astype(dtype)
    labels = rng.integers(0, 10, 128)
    lr = dtype(0.01)
    base = mlp_params(dtype, rng)
    value_and_grad = fg.jit(fg.value_and_grad(mlp_loss))

    def fgrad_step(params):
        _, grads = value_and_grad(params, x, labels)
        for k in params:
            params[k] -= lr * grads[k]
        return params

    def sgd_step(params, x, labels):  # JAX style: the update is part of the program
        grads = fg.grad(mlp_loss)(params, x, labels)
        return {k: params[k] - lr * grads[k] for k in params}

    # NB: donated, as JAX's training loops do: the new weights go into the old ones.
    train_step = fg.jit(sgd_step, donate_argnums=0)

    def fresh():
        return {k: v.copy() for k, v in base.items()}

    states = {name: fresh()
              for name in ("numpy", "fgrad jit(value_and_grad)", "fgrad jit(train step)")}

    def fgrad_train_step():
        name = "fgrad jit(train step)"
        states[name] = train_step(states[name], x, labels)

    contenders = {
        "numpy": lambda: _numpy_mlp_step(states["numpy"], x, labels, lr),
        "fgrad jit(value_and_grad)":
            lambda: fgrad_step(states["fgrad jit(value_and_grad)"]),
        "fgrad jit(train step)": fgrad_train_step,
    }
    # Verify one step from identical parameters.
    want = _numpy_mlp_step(fresh(), x, labels, lr)
    for name, got in [("value_and_grad", fgrad_step(fresh())),
                      ("train step", train_step(fresh(), x, labels))]:
        for k in want:
            _check(f"fgrad W4 {name} {k}", got[k], want[k].astype(np.float64),
                   1e-3 if dtype == np.float32 else 1e-8)
    if torch is not None:
        tparams = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in base.items()}
        xt, lt = torch.tensor(x), torch.tensor(labels)

        def torch_step():
            h = xt
            for i in range(3):
                h = h @ tparams[f"w{i}"] + tparams[f"b{i}"]
                if i < 2:
                    h = torch.relu(h)
            torch.nn.functional.cross_entropy(h, lt).backward()
            with torch.no_grad():
                for p in tparams.values():
                    p -= float(lr) * p.grad
                    p.grad = None

        contenders["torch eager"] = torch_step
    return contenders


# --------------------------------------------------------------------------- W5


def rosenbrock(x):
    return fnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def numpy_rosenbrock_hessian(x):
    n = len(x)
    h = np.zeros((n, n))
    diag = np.zeros(n)
    diag[:-1] += 1200 * x[:-1] ** 2 - 400 * x[1:] + 2
    diag[1:] += 200
    off = -400 * x[:-1]
    h[np.arange(n), np.arange(n)] = diag
    h[np.arange(n - 1), np.arange(1, n)] = off
    h[np.arange(1, n), np.arange(n - 1)] = off
    return h


def w5(n):
    """Hessian of the Rosenbrock function."""
    x = np.random.default_rng(0).standard_normal(n)
    jitted = fg.jit(fg.hessian(rosenbrock))
    contenders = {"numpy": lambda: numpy_rosenbrock_hessian(x),
                  "fgrad jit(hessian)": lambda: jitted(x)}
    if jax is not None:
        jnp = jax.numpy

        def jrosen(x):
            return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)

        jh = jax.jit(jax.hessian(jrosen))
        xj = jnp.asarray(x)
        contenders["jax jit(hessian)"] = lambda: jh(xj).block_until_ready()
    return _verified(contenders, numpy_rosenbrock_hessian(x), 1e-8, _to_numpy)
