"""The PyTorch autograd tutorials (the seed lessons), run on fgrad's Tensor facade.

Each section is a lesson from the seeds with ``torch`` replaced by ``fgrad``;
the printed output has PyTorch's layout (``tensor([...], grad_fn=<...>)``).

1. ``requires_grad`` and ``grad_fn``: the recorded graph.
2. Gradients of scalars: ``out.backward()`` fills ``x.grad``.
3. Vector-Jacobian products: ``y.backward(v)`` for a non-scalar ``y``.
4. Chains and accumulation; non-leaf gradients; ``retain_graph``.
5. The DAG: ``Q = 3a^3 - b^2`` with an external gradient (seed 001).
6. Stopping the graph: ``no_grad``, ``detach``, frozen parameters and
   replacing the last layer for fine-tuning (seed 001).
7. A one-layer network with BCE-with-logits (seed 002).

Run: python examples/autograd_tutorial.py
"""

import argparse
import warnings

import fgrad as fg
from fgrad import nn, optim


def section(title):
    print(f"\n=== {title} ===")


def graph_basics():
    section("1. requires_grad and grad_fn")
    t = fg.tensor([[1, 2], [3, 4]], dtype=fg.float, requires_grad=True)
    print(t)
    t = fg.FloatTensor([1.0, 2.0])
    t.requires_grad_()
    print(t)

    x = fg.ones(2, 2, requires_grad=True)
    print(x)
    print(x.grad, x.grad_fn)  # a leaf we created: no gradient yet, no grad_fn
    y = x + 2
    print(y)
    print(y.grad_fn)
    z = y * y * 3
    out = z.mean()
    print(z, out)

    a = fg.randn(2, 2)
    a = (a * 3) / (a - 1)
    print(a.requires_grad)
    a.requires_grad_(True)
    print(a.requires_grad)
    b = (a * a).sum()
    print(b.grad_fn)
    return x, out


def scalar_gradients(x, out):
    section("2. Gradients: out.backward()")
    out.backward()  # d(out)/dx = 3 * 2 * (x + 2) / 4 = 4.5
    print(x.grad)


def vector_jacobian():
    section("3. Vector-Jacobian products")
    fg.manual_seed(0)
    x = fg.randn(3, requires_grad=True)
    y = x * 2
    while y.data.norm() < 1000:
        y = y * 2
    print("NORM :", y.data.norm())
    print(y)
    v = fg.tensor([0.1, 1.0, 0.0001], dtype=fg.float)
    y.backward(v)
    print(x.grad)  # v * 2**k, where y = 2**k * x


def chains():
    section("4. Chains, accumulation, non-leaf gradients")
    x = fg.tensor([4.0], requires_grad=True)
    print(f"x.grad: {x.grad}")
    y = x ** 2
    y.backward()
    print(f"x.grad:{x.grad}")  # 2x = 8

    x = fg.tensor([4.0], requires_grad=True)
    y = fg.tensor([2.0], requires_grad=True)
    z = x ** 2 + y ** 2
    z.backward()
    print(f"x.grad:{x.grad}")
    print(f"y.grad:{y.grad}")

    x = fg.tensor([4.0], requires_grad=True)
    y = 2 * (x ** 2)
    z = y ** 2
    z.backward()
    print(f"x.grad:{x.grad}")  # dz/dx = 2y * 4x = 2 * 32 * 16 = 1024
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        print(f"y.grad:{y.grad}")  # not a leaf: None, with a warning
    print("UserWarning:", str(caught[0].message)[:70] + "..." if caught else None)

    x = fg.ones(2, 2, requires_grad=True)
    y = x + 2
    y.backward(fg.ones(2, 2), retain_graph=True)
    print(x.grad)
    y.backward(fg.ones(2, 2))  # accumulates into x.grad
    print(x.grad)


def dag():
    section("5. The DAG: Q = 3a^3 - b^2")
    a = fg.tensor([2.0, 3.0], requires_grad=True)
    b = fg.tensor([6.0, 4.0], requires_grad=True)
    Q = 3 * a ** 3 - b ** 2  # noqa: N806  (the tutorial's name)
    print(Q.grad_fn, [fn for fn, _ in Q.grad_fn.next_functions])
    external_grad = fg.tensor([1.0, 1.0])
    Q.backward(gradient=external_grad)
    # check if collected gradients are correct
    print(9 * a ** 2 == a.grad)
    print(-2 * b == b.grad)


class TinyBackbone(nn.Module):
    """A stand-in for the tutorial's pretrained resnet18: features, then ``fc``."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 512), nn.ReLU())
        self.fc = nn.Linear(512, 1000)

    def forward(self, x):
        return self.fc(self.features(x))


def exclusion():
    section("6. Exclusion from the DAG")
    x = fg.rand(5, 5)
    y = fg.rand(5, 5)
    z = fg.rand((5, 5), requires_grad=True)
    a = x + y
    print(f"Does `a` require gradients? : {a.requires_grad}")
    b = x + z
    print(f"Does `b` require gradients?: {b.requires_grad}")

    print((x ** 2).requires_grad, (z ** 2).requires_grad)
    with fg.no_grad():
        print((z ** 2).requires_grad)
    d = z.detach()
    print(d.requires_grad, bool(z.eq(d).all()))

    model = TinyBackbone()
    # Freeze all the parameters in the network
    for param in model.parameters():
        param.requires_grad = False
    model.fc = nn.Linear(512, 10)  # the new classifier is unfrozen and registered
    print([name for name, p in model.named_parameters() if p.requires_grad])
    optimizer = optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    images, labels = fg.rand(4, 3, 8, 8), fg.tensor([1, 0, 4, 9])
    loss = nn.CrossEntropyLoss()(model(images), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    changed = [k for k, v in model.state_dict().items() if not bool((v == before[k]).all())]
    print("changed by one optimizer step:", changed)


def one_layer():
    section("7. One layer with BCE with logits (seed 002)")
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
    z = fg.matmul(x, w) + b
    print(z.requires_grad)
    with fg.no_grad():
        z = fg.matmul(x, w) + b
    print(z.requires_grad)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="(already quick; for CI)")
    parser.parse_args(argv)
    fg.manual_seed(0)
    x, out = graph_basics()
    scalar_gradients(x, out)
    vector_jacobian()
    chains()
    dag()
    exclusion()
    one_layer()


if __name__ == "__main__":
    main()
