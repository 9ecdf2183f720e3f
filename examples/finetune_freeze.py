"""Fine-tuning by freezing (seed 001): freeze a trained network, replace its last layer,
train only the new layer, and check that the frozen weights did not change.

1. Train a small network on the digits 0-4 of scikit-learn's digits data set.
2. ``param.requires_grad = False`` for every parameter, then
   ``model.fc = nn.Linear(64, 5)``: the new layer is registered and trainable.
3. Fine-tune on the digits 5-9. The optimizer is given *all* the parameters,
   as in the tutorial; the frozen ones get no gradient and are skipped.
4. Compare the frozen weights with a copy taken before fine-tuning.

Run: python examples/finetune_freeze.py [--quick]
"""

import argparse

import numpy as np

import fgrad as fg
from fgrad import nn, optim


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


class Net(nn.Module):
    def __init__(self, n_classes=5):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64),
                                      nn.ReLU())
        self.fc = nn.Linear(64, n_classes)

    def forward(self, x):
        return self.fc(self.features(x))


def fit(model, optimizer, x, y, epochs, batch_size=32, seed=0):
    rng = np.random.default_rng(seed)
    criterion = nn.CrossEntropyLoss()
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            loss = criterion(model(fg.from_numpy(x[idx])), fg.from_numpy(y[idx]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return loss.item()


def accuracy(model, x, y):
    with fg.no_grad():
        return float((model.eval()(fg.from_numpy(x)).argmax(1).numpy() == y).mean())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few epochs (for CI)")
    args = parser.parse_args(argv)
    epochs = 2 if args.quick else 10
    fg.manual_seed(0)
    x_train, x_test, y_train, y_test = load_digits_split()
    old_train, old_test = y_train < 5, y_test < 5
    new_train, new_test = ~old_train, ~old_test

    # 1. Train on digits 0-4.
    model = Net()
    fit(model.train(), optim.Adam(model.parameters(), lr=2e-3), x_train[old_train],
        y_train[old_train], epochs)
    print(f"trained on digits 0-4: test accuracy "
          f"{accuracy(model, x_test[old_test], y_test[old_test]):.2%}")

    # 2. Freeze everything, then replace the final layer (it is registered and trainable).
    for param in model.parameters():
        param.requires_grad = False
    model.fc = nn.Linear(64, 5)
    print(model)
    print("trainable:", [name for name, p in model.named_parameters() if p.requires_grad])
    frozen_before = {k: v.clone() for k, v in model.features.state_dict().items()}

    # 3. Fine-tune on digits 5-9 (relabelled 0-4); the optimizer sees every parameter.
    y_new_train, y_new_test = y_train[new_train] - 5, y_test[new_test] - 5
    print(f"new head before fine-tuning: accuracy on digits 5-9 "
          f"{accuracy(model, x_test[new_test], y_new_test):.2%}")
    optimizer = optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
    loss = fit(model.train(), optimizer, x_train[new_train], y_new_train, epochs)
    print(f"fine-tuned on digits 5-9: last batch loss {loss:.4f}, test accuracy "
          f"{accuracy(model, x_test[new_test], y_new_test):.2%}")
    print("frozen parameters have no gradient:",
          all(p.grad is None for p in model.features.parameters()))

    # 4. The frozen weights are bit-for-bit unchanged; the new head moved.
    after = model.features.state_dict()
    unchanged = all(np.array_equal(frozen_before[k].numpy(), after[k].numpy())
                    for k in frozen_before)
    print("frozen weights unchanged:", unchanged)
    if not unchanged:
        raise SystemExit("frozen weights changed during fine-tuning")
    return unchanged, accuracy(model, x_test[new_test], y_new_test)


if __name__ == "__main__":
    main()
