"""``Tensor.backward`` and ``fg.autograd.grad``: argument checks, then the graph walk."""

from __future__ import annotations

import numpy as np

from fgrad._src.tensor import graph
from fgrad._src.tensor.tensor import Tensor


def _as_tuple(x, what):
    if isinstance(x, Tensor):
        return (x,)
    if x is None:
        return ()
    try:
        items = tuple(x)  # NB: any iterable, model.parameters() included
    except TypeError:
        raise TypeError(f"{what} must be a Tensor or a sequence of Tensors, got "
                        f"{type(x).__name__}") from None
    for item in items:
        if not isinstance(item, Tensor):
            raise TypeError(f"{what} must be Tensors, got {type(item).__name__}")
    return items


def _per_output(grads, n, what):
    """One gradient (a Tensor, an array or None) per output; a sequence must hold Tensors
    or None, one per output, as in PyTorch: ``y.backward([1.0, 2.0])`` is ambiguous."""
    if grads is None:
        return (None,) * n
    if not isinstance(grads, (list, tuple)):
        grads = (grads,)
    elif n == 1 and not all(isinstance(g, Tensor) or g is None for g in grads):
        bad = next(g for g in grads if not (isinstance(g, Tensor) or g is None))
        raise TypeError(f"{what}: gradients can be either Tensors or None, but got "
                        f"{type(bad).__name__} in a {type(grads).__name__} (write "
                        f"fg.tensor({list(grads)!r:.40}) for one gradient)")
    if len(grads) != n:
        raise RuntimeError(f"{what}: got {len(grads)} gradients for {n} outputs (one per "
                           "output)")
    for g in grads:
        if isinstance(g, (list, tuple, str)):
            raise TypeError(f"{what}: gradients can be either Tensors or None, but got "
                            f"{type(g).__name__}")
    return tuple(grads)


def _root_edge(t):
    return (t._grad_fn, t._output_nr) if t._grad_fn is not None else (t, None)


def _root_cotangent(out, gradient, index, create_graph):
    """The cotangent fed to ``out``: ``gradient`` checked, or ones for a scalar."""
    if gradient is None:
        if out._value.size != 1:
            raise RuntimeError(
                "grad can be implicitly created only for scalar outputs "
                f"(fgrad: this output has shape {tuple(out.shape)}; pass gradient=, a tensor of "
                "that shape, to get the vector-Jacobian product, or reduce the output first, "
                "e.g. y.sum().backward())"
            )
        if out._value.dtype.kind != "f":
            raise RuntimeError(
                f"grad can be implicitly created only for real scalar outputs but got "
                f"{out.dtype}")
        ct = np.ones(out._value.shape, out._value.dtype)
        return Tensor._wrap(ct) if create_graph else ct
    if not isinstance(gradient, Tensor):
        gradient = Tensor._wrap(np.asarray(gradient))
    if gradient.shape != out.shape:
        raise RuntimeError(
            f"Mismatch in shape: grad_output[{index}] has a shape of {gradient.shape} and "
            f"output[{index}] has a shape of {out.shape}."
        )
    if gradient._value.dtype != out._value.dtype:
        gradient = gradient.to(out.dtype)
    if create_graph:
        return gradient
    return gradient._value


def _check_requires_grad(outputs):
    for k, out in enumerate(outputs):
        if not out._requires_grad:
            raise RuntimeError(
                f"element {k} of tensors does not require grad and does not have a grad_fn "
                "(fgrad: no input of this computation has requires_grad=True, or it ran under "
                "no_grad(); create the leaves with requires_grad=True)"
            )


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate the gradients of ``tensors`` into the leaves' ``.grad``."""
    outputs = _as_tuple(tensors, "tensors")
    grads = _per_output(grad_tensors, len(outputs), "backward")
    _check_requires_grad(outputs)
    if retain_graph is None:
        retain_graph = create_graph
    roots = [_root_edge(t) for t in outputs]
    cts = [_root_cotangent(t, g, k, create_graph) for k, (t, g) in enumerate(zip(outputs, grads))]
    if inputs is None:
        graph.run_backward(roots, cts, retain_graph, create_graph)
        return
    inputs = _as_tuple(inputs, "inputs")
    if not inputs:
        raise RuntimeError("`inputs` argument to `backward()` cannot be empty (give the "
                           "tensors whose .grad to fill, or leave inputs=None for every leaf)")
    captured = graph.run_backward(roots, cts, retain_graph, create_graph, inputs=inputs,
                                  accumulate=False)
    for t, ct in zip(inputs, captured):
        # NB: a non-leaf that retains its grad got it during the walk already.
        if ct is not None and not (t._grad_fn is not None and t._retains_grad):
            graph.accumulate_grad(t, ct, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=None, materialize_grads=False):
    """The gradients of ``outputs`` with respect to ``inputs``, without touching ``.grad``.

    >>> import fgrad as fg
    >>> x = fg.tensor(3.0, requires_grad=True)
    >>> fg.autograd.grad(x ** 3, x)
    (tensor(27.),)
    """
    outputs = _as_tuple(outputs, "outputs")
    inputs = _as_tuple(inputs, "inputs")
    if not inputs:
        raise RuntimeError("grad requires non-empty inputs (the tensors to differentiate "
                           "with respect to)")
    grad_outputs = _per_output(grad_outputs, len(outputs), "grad")
    for t in inputs:
        if not t._requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    _check_requires_grad(outputs)
    if allow_unused is None:
        allow_unused = materialize_grads
    if retain_graph is None:
        retain_graph = create_graph
    roots = [_root_edge(t) for t in outputs]
    cts = [_root_cotangent(t, g, k, create_graph)
           for k, (t, g) in enumerate(zip(outputs, grad_outputs))]
    # NB: a tensor listed twice gets its gradient twice (run_backward captures each once).
    distinct = list({id(t): t for t in inputs}.values())
    found = graph.run_backward(roots, cts, retain_graph, create_graph, inputs=tuple(distinct),
                               accumulate=False)
    by_id = {id(t): ct for t, ct in zip(distinct, found)}
    captured = [by_id[id(t)] for t in inputs]
    result = []
    for t, ct in zip(inputs, captured):
        if ct is None:
            if materialize_grads:
                result.append(Tensor._wrap(np.zeros_like(t._value)))
                continue
            if not allow_unused:
                raise RuntimeError(
                    "One of the differentiated Tensors appears to not have been used in the "
                    "graph. Set allow_unused=True if this is the desired behavior.")
            result.append(None)
        elif isinstance(ct, Tensor):
            result.append(ct)
        else:
            result.append(Tensor._wrap(np.array(ct, dtype=t._value.dtype)))
    return tuple(result)
