"""Quickstart: gradients, the traced program, and jit.

Run: python examples/quickstart.py
"""

import numpy as np

import fgrad as fg
import fgrad.numpy as fnp


def f(x):
    return fnp.sum(fnp.tanh(x) * x + fnp.sin(x) ** 2)


def main():
    x = np.linspace(-1.0, 1.0, 3)
    print("f(x)        =", f(x))
    print("grad f(x)   =", fg.grad(f)(x))
    print("jaxpr of f:")
    print(fg.make_jaxpr(f)(x))
    print("jaxpr of grad f:")
    print(fg.make_jaxpr(fg.grad(f))(x))
    print("jit(grad f) =", fg.jit(fg.grad(f))(x))
    print("hessian     =")
    print(fg.hessian(f)(x))


if __name__ == "__main__":
    main()
