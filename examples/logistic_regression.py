"""Seed 002's single-layer network with binary cross-entropy on logits, then trained.

Part 1 is the tutorial's walk-through: ``z = x @ w + b``,
``loss = binary_cross_entropy_with_logits(z, y)``, the ``grad_fn`` of each,
``loss.backward()`` filling ``w.grad`` and ``b.grad``, and the two ways to stop
tracking (``no_grad`` and ``detach``). The gradient is checked against the
closed form ``dloss/dz = (sigmoid(z) - y) / 3``.

Part 2 trains the same model — 5 inputs, 3 independent binary outputs — as a
logistic regression on synthetic data, first with hand-written updates under
``fg.no_grad()`` and then with ``nn.Linear``, ``nn.BCEWithLogitsLoss`` and
``optim.SGD``.

Run: python examples/logistic_regression.py [--quick]
"""

import argparse

import numpy as np

import fgrad as fg
from fgrad import nn, optim


def tutorial():
    print("== seed 002: one layer, BCE with logits ==")
    x = fg.ones(5)  # input tensor
    y = fg.zeros(3)  # expected output
    w = fg.randn(5, 3, requires_grad=True)
    b = fg.randn(3, requires_grad=True)
    z = fg.matmul(x, w) + b
    loss = fg.nn.functional.binary_cross_entropy_with_logits(z, y)

    print("Gradient function for z =", z.grad_fn)
    print("Gradient function for loss =", loss.grad_fn)

    loss.backward()
    print(w.grad)
    print(b.grad)

    # The closed form: dloss/dz = (sigmoid(z) - y) / 3, and dz/dw[i, j] = x[i].
    dz = (1 / (1 + np.exp(-z.detach().numpy())) - y.numpy()) / 3
    assert np.allclose(b.grad.numpy(), dz, atol=1e-6)
    assert np.allclose(w.grad.numpy(), np.outer(x.numpy(), dz), atol=1e-6)
    print("matches (sigmoid(z) - y) / 3:", True)

    # Stopping gradient tracking, method 1: no_grad.
    z = fg.matmul(x, w) + b
    print(z.requires_grad)
    with fg.no_grad():
        z = fg.matmul(x, w) + b
    print(z.requires_grad)
    # Method 2: detach.
    z = fg.matmul(x, w) + b
    z_det = z.detach()
    print(z_det.requires_grad)


def synthetic(n, rng):
    """5 features, 3 binary labels drawn from a true logistic model."""
    x = rng.standard_normal((n, 5)).astype(np.float32)
    w_true = rng.standard_normal((5, 3)).astype(np.float32) * 2
    b_true = np.array([0.5, -1.0, 0.0], np.float32)
    p = 1 / (1 + np.exp(-(x @ w_true + b_true)))
    y = (rng.random((n, 3)) < p).astype(np.float32)
    return x, y


def train_by_hand(x, y, epochs, lr):
    print("== training by hand: w -= lr * w.grad under no_grad ==")
    w = fg.zeros(5, 3, requires_grad=True)
    b = fg.zeros(3, requires_grad=True)
    xt, yt = fg.from_numpy(x), fg.from_numpy(y)
    for epoch in range(epochs):
        loss = fg.nn.functional.binary_cross_entropy_with_logits(xt @ w + b, yt)
        loss.backward()
        with fg.no_grad():
            w -= lr * w.grad
            b -= lr * b.grad
        w.grad = None
        b.grad = None
        if epoch % max(1, epochs // 5) == 0 or epoch == epochs - 1:
            print(f"epoch {epoch:3d}  loss {loss.item():.4f}")
    with fg.no_grad():
        acc = (((xt @ w + b) > 0).float() == yt).float().mean().item()
    print(f"accuracy {acc:.2%}")
    return loss.item(), acc


def train_with_modules(x, y, epochs, lr):
    print("== the same model with nn.Linear, nn.BCEWithLogitsLoss and optim.SGD ==")
    model = nn.Linear(5, 3)
    criterion = nn.BCEWithLogitsLoss()
    optimizer = optim.SGD(model.parameters(), lr=lr)
    xt, yt = fg.from_numpy(x), fg.from_numpy(y)
    for epoch in range(epochs):
        loss = criterion(model(xt), yt)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if epoch % max(1, epochs // 5) == 0 or epoch == epochs - 1:
            print(f"epoch {epoch:3d}  loss {loss.item():.4f}")
    with fg.no_grad():
        acc = ((model(xt) > 0).float() == yt).float().mean().item()
    print(f"accuracy {acc:.2%}")
    return loss.item(), acc


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few epochs (for CI)")
    args = parser.parse_args(argv)
    epochs = 20 if args.quick else 200
    fg.manual_seed(0)
    tutorial()
    x, y = synthetic(2000, np.random.default_rng(0))
    by_hand = train_by_hand(x, y, epochs, lr=0.5)
    with_modules = train_with_modules(x, y, epochs, lr=0.5)
    return by_hand, with_modules


if __name__ == "__main__":
    main()
