"""JAX-style training of an fg.nn model: fg.jit(fg.value_and_grad(loss)) over a params dict.

The same MLP is trained twice from the same initial weights on the same
mini-batches of scikit-learn's digits:

* functional style: the parameters are a pytree (``nn.get_params(model)``, a
  dict of NumPy arrays), the loss calls ``nn.functional_call(model, params, x)``,
  and ``fg.jit(fg.value_and_grad(loss))`` compiles the whole step; the update
  is a ``tree_map``;
* PyTorch style: ``loss.backward()`` and ``optim.SGD.step()``.

Both run the same arithmetic, so the losses agree to float32 rounding.

Run: python examples/functional_training.py [--quick]
"""

import argparse
import copy
import time

import numpy as np

import fgrad as fg
import fgrad.numpy as fnp
from fgrad import nn, optim
from fgrad.tree_util import tree_map


def load_digits_split(seed=0):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data, digits.target.astype(np.int64), test_size=0.25, stratify=digits.target,
        random_state=seed)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std[std == 0] = 1.0
    return (((x_train - mean) / std).astype(np.float32), ((x_test - mean) / std).astype(
        np.float32), y_train, y_test)


def make_model():
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 epochs (for CI)")
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args(argv)
    epochs = 2 if args.quick else args.epochs
    lr, batch_size = 0.1, 64

    fg.manual_seed(0)
    model = make_model()
    twin = copy.deepcopy(model)  # same initial weights, trained PyTorch-style
    x_train, x_test, y_train, y_test = load_digits_split()

    # ---- functional style -------------------------------------------------------
    params = nn.get_params(model)  # {"0.weight": array, "0.bias": array, ...}
    print("params pytree:", {k: v.shape for k, v in params.items()})

    def loss_fn(params, x, labels):
        logits = nn.functional_call(model, params, x)  # arrays in, arrays (tracers) out
        log_probs = fg.nn.log_softmax(logits, axis=-1)
        return -fnp.mean(log_probs[fnp.arange(labels.shape[0]), labels])

    step = fg.jit(fg.value_and_grad(loss_fn))

    # ---- PyTorch style ----------------------------------------------------------
    optimizer = optim.SGD(twin.parameters(), lr=lr)
    criterion = nn.CrossEntropyLoss()

    rng = np.random.default_rng(0)
    times = {"jit(value_and_grad)": 0.0, "backward + SGD": 0.0}
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(x_train))
        # Whole batches only, so that jit compiles a single shape.
        n_batches = len(order) // batch_size
        losses = {"jit(value_and_grad)": 0.0, "backward + SGD": 0.0}
        for b in range(n_batches):
            idx = order[b * batch_size:(b + 1) * batch_size]
            xb, yb = x_train[idx], y_train[idx]

            start = time.perf_counter()
            loss, grads = step(params, xb, yb)
            params = tree_map(lambda p, g: p - lr * g, params, grads)
            times["jit(value_and_grad)"] += time.perf_counter() - start
            losses["jit(value_and_grad)"] += float(loss)

            start = time.perf_counter()
            t_loss = criterion(twin(fg.from_numpy(xb)), fg.from_numpy(yb))
            optimizer.zero_grad()
            t_loss.backward()
            optimizer.step()
            times["backward + SGD"] += time.perf_counter() - start
            losses["backward + SGD"] += t_loss.item()
        print(f"epoch {epoch:2d}/{epochs}  " + "  ".join(
            f"{name} loss {total / n_batches:.5f}" for name, total in losses.items()))

    # Write the trained pytree back into the module and evaluate it as a module.
    nn.set_params(model, params)
    with fg.no_grad():
        acc = {
            "functional": (model(fg.from_numpy(x_test)).argmax(1).numpy() == y_test).mean(),
            "PyTorch-style": (twin(fg.from_numpy(x_test)).argmax(1).numpy() == y_test).mean(),
        }
    diff = max(float(np.abs(p.detach().numpy() - q.detach().numpy()).max())
               for p, q in zip(model.parameters(), twin.parameters()))
    print("test accuracy: " + ", ".join(f"{k} {v:.2%}" for k, v in acc.items()))
    print(f"largest parameter difference between the two styles: {diff:.2e}")
    print("time per epoch: " + ", ".join(f"{k} {v / epochs:.3f} s" for k, v in times.items()))
    return acc, diff


if __name__ == "__main__":
    main()
