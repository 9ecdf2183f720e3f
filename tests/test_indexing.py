"""NumPy indexing on fgrad arrays and tracers: ``fnp.getitem(x, idx)`` eagerly,
``x[idx]`` under ``make_jaxpr`` and ``jit``, equal to NumPy's ``x[idx]``;
out-of-range indices raise ``IndexError``; gradients scatter-add.
"""

from __future__ import annotations

import numpy as np
import pytest
from core_checks import ALL_DTYPES, F64, arrays, check_against_numpy, shapes
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fgrad as fg
import fgrad.numpy as fnp


def check_index(x, idx, what=""):
    """``x[idx]``: fnp.getitem eagerly, the tracer operator when traced and jitted."""
    what = what or f"x{x.shape}[{idx!r}]"
    check_against_numpy(
        lambda a: fnp.getitem(a, idx), lambda a: a[idx], (x,), modes=("eager",), what=what
    )
    check_against_numpy(lambda a: a[idx], lambda a: a[idx], (x,), modes=("jaxpr", "jit"), what=what)


@st.composite
def slices(draw, n):
    bound = st.none() | st.integers(-n - 2, n + 2)
    step = st.none() | st.sampled_from([1, 2, 3, -1, -2, -3])
    return slice(draw(bound), draw(bound), draw(step))


@st.composite
def mixed_indices(draw, shape):
    """Ints, slices, integer arrays (broadcast together), None and '...' in any mix."""
    index_shape = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3))
    items = []
    for n in shape:
        kind = draw(st.sampled_from(["slice", "int", "array", "full"]))
        if kind == "int" and n:
            items.append(draw(st.integers(-n, n - 1)))
        elif kind == "array" and n:
            sub = index_shape[draw(st.integers(0, len(index_shape))) :]
            items.append(draw(hnp.arrays(np.int64, sub, elements=st.integers(-n, n - 1))))
        elif kind == "slice":
            items.append(draw(slices(n)))
        else:
            items.append(slice(None))
    full = [k for k, i in enumerate(items) if isinstance(i, slice) and i == slice(None)]
    if full and draw(st.booleans()):
        items[draw(st.sampled_from(full))] = Ellipsis  # '...' standing for one full slice
    elif draw(st.booleans()):
        # '...' standing for no axis: between two advanced indices it still separates them
        items.insert(draw(st.integers(0, len(items))), Ellipsis)
    elif draw(st.booleans()):
        items = items[: draw(st.integers(0, len(items)))]  # trailing dims implied
    for _ in range(draw(st.integers(0, 2))):
        items.insert(draw(st.integers(0, len(items))), None)
    return items[0] if len(items) == 1 and draw(st.booleans()) else tuple(items)


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: d.name)
@settings(max_examples=40)
@given(data=st.data())
def test_basic_indices(dtype, data):
    x = data.draw(arrays(dtype, data.draw(shapes)))
    idx = data.draw(hnp.basic_indices(x.shape, allow_newaxis=True, allow_ellipsis=True))
    check_index(x, idx)


@settings(max_examples=150)
@given(data=st.data())
def test_mixed_advanced_indices(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=4))
    x = data.draw(arrays(F64, shape))
    idx = data.draw(mixed_indices(shape))
    check_index(x, idx)


CASES = [
    ((5,), 3),
    ((5,), -1),
    ((5,), -5),
    ((3, 4), (1, -1)),
    ((3, 4), (slice(None, None, -1),)),
    ((6,), slice(5, None, -2)),
    ((6,), slice(-1, -7, -1)),
    ((6,), slice(None, 2, -1)),
    ((6,), slice(1, 5, 3)),
    ((3, 4), (None, Ellipsis, None)),
    ((2, 3, 4), (Ellipsis, 1)),
    ((2, 3, 4), (1, Ellipsis)),
    ((2, 3, 4), (Ellipsis,)),
    ((3,), ()),
    ((), ()),
    ((), None),
    ((), Ellipsis),
    ((5,), np.array([0, -1, 2, 2])),
    ((4, 3), np.array([[0, 1], [3, -4]])),
    ((4, 3, 2), (np.array([0, 1]), np.array([2, 0]))),  # adjacent, at the front
    ((4, 3, 2), (slice(None), np.array([0, 2]), np.array([1, 0]))),  # adjacent, inside
    ((4, 3, 2), (np.array([0, 1]), slice(None), np.array([1, 0]))),  # non-adjacent: go first
    ((4, 3, 2), (np.array([[0], [3]]), slice(1, None), np.array([1, 0]))),  # broadcast
    ((4, 3, 2), (1, slice(None), np.array([1, 0]))),  # an int is advanced next to arrays
    ((4, 3, 2), (slice(None), 1, np.array([1, 0]))),  # int + array adjacent
    ((4, 3), (np.array([0, 1]), None)),
    ((4, 3), (None, np.array([0, 1]))),
    ((4, 3), [0, 2]),
    ((4, 3), np.array([], np.int64)),
    ((4, 3), (Ellipsis, np.array([2]))),
    ((4, 3), np.int64(2)),
    ((4, 3), (np.int64(-1), np.int32(0))),
]


@pytest.mark.parametrize("shape,idx", CASES, ids=[repr(c[1]) for c in CASES])
def test_index_cases(shape, idx):
    x = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    check_index(x, idx)


MASK_CASES = [
    ((5,), lambda x: x > 2),
    ((3, 4), lambda x: x % 3 == 0),  # full mask: 1-D result
    ((3, 4), lambda x: np.array([True, False, True])),  # mask over the first axis
    ((3, 4), lambda x: (slice(None), np.array([False, True, True, False]))),
    ((2, 3, 4), lambda x: (np.array([[True, False, True], [False, False, True]]), slice(1, 3))),
    ((2, 3, 4), lambda x: (1, np.array([True, False, True]))),  # int + mask
    ((3, 4), lambda x: np.zeros((3, 4), bool)),  # selects nothing
    ((3, 4), lambda x: [True, False, True]),  # list mask
]


@pytest.mark.parametrize("case", range(len(MASK_CASES)))
def test_constant_boolean_masks(case):
    shape, make = MASK_CASES[case]
    x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    idx = make(x)
    check_index(x, idx, what=f"x{shape}[mask case {case}]")


def test_traced_boolean_mask_needs_a_constant():
    x = np.arange(4.0)
    with pytest.raises(fg.errors.ConcretizationError, match="boolean mask"):
        fg.make_jaxpr(lambda x: x[x > 1.0])(x)
    with pytest.raises(fg.errors.ConcretizationError):
        fg.jit(lambda x, m: x[m])(x, np.array([True, False, True, True]))


@settings(max_examples=40)
@given(data=st.data())
def test_traced_integer_array_indices(data):
    """Index arrays passed as traced arguments (a gather with run-time indices)."""
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    x = data.draw(arrays(F64, shape))
    index_shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3))
    n = shape[0]
    i = data.draw(hnp.arrays(np.int64, index_shape, elements=st.integers(-n, n - 1)))
    check_against_numpy(
        lambda a, k: a[k],
        lambda a, k: a[k],
        (x, i),
        modes=("jaxpr", "jit"),
        what=f"x{shape}[traced {i!r}]",
    )
    if len(shape) >= 2:
        m = shape[1]
        j = data.draw(hnp.arrays(np.int64, index_shape, elements=st.integers(-m, m - 1)))
        check_against_numpy(
            lambda a, k, m: a[k, 1:, m] if len(shape) > 2 else a[k, m],
            lambda a, k, m: a[k, 1:, m] if len(shape) > 2 else a[k, m],
            (x, i, j),
            modes=("jaxpr", "jit"),
            what="x[traced i, traced j]",
        )


def test_traced_scalar_index():
    x = np.arange(12.0).reshape(3, 4)
    for i in (0, 2, -1):
        check_against_numpy(
            lambda a, k: a[k],
            lambda a, k: a[k],
            (x, np.int64(i)),
            modes=("jaxpr", "jit"),
            what=f"x[traced {i}]",
        )
        check_against_numpy(
            lambda a, k: a[1:, k],
            lambda a, k: a[1:, k],
            (x, np.int64(i)),
            modes=("jaxpr", "jit"),
            what=f"x[1:, traced {i}]",
        )


# --------------------------------------------------------------------------- errors

OUT_OF_RANGE = [
    ((3,), 3),
    ((3,), -4),
    ((2, 3), (1, 3)),
    ((2, 3), (-3,)),
    ((3,), np.array([0, 3])),
    ((3,), np.array([-4])),
    ((2, 3), (slice(None), np.array([[0], [5]]))),
    ((0,), 0),
    ((3,), [1, 2, 7]),
    ((3,), (0, 0)),  # too many indices
]


@pytest.mark.parametrize("shape,idx", OUT_OF_RANGE, ids=[repr(c[1]) for c in OUT_OF_RANGE])
def test_out_of_range_raises_index_error(shape, idx):
    x = np.zeros(shape)
    with pytest.raises(IndexError):
        x[idx]  # noqa: B018  (NumPy agrees it is an error)
    with pytest.raises(IndexError):
        fnp.getitem(x, idx)
    with pytest.raises(IndexError):
        fg.make_jaxpr(lambda a: a[idx])(x)
    with pytest.raises(IndexError):
        fg.jit(lambda a: a[idx])(x)


def test_traced_index_out_of_range_raises_at_run_time():
    x = np.arange(3.0)
    f = fg.jit(lambda a, i: a[i])
    assert float(f(x, np.int64(-3))) == 0.0
    with pytest.raises(IndexError):
        f(x, np.int64(3))
    with pytest.raises(IndexError):
        f(x, np.array([0, -4]))


def test_bad_index_types():
    x = np.arange(3.0)
    for idx in (1.5, "a", np.array([0.5])):
        with pytest.raises(IndexError):
            fnp.getitem(x, idx)
        with pytest.raises(IndexError):
            fg.make_jaxpr(lambda a, idx=idx: a[idx])(x)
    with pytest.raises(TypeError, match="immutable"):
        fg.make_jaxpr(lambda a: a.__setitem__(0, 1.0))(x)


# --------------------------------------------------------------------------- gradients


@settings(max_examples=40)
@given(data=st.data())
def test_indexing_gradient_is_scatter_add(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    x = data.draw(arrays(F64, shape))
    idx = data.draw(mixed_indices(shape))
    out_shape = x[idx].shape
    w = data.draw(arrays(F64, out_shape))
    g = fg.grad(lambda a: fnp.sum(a[idx] * w))(x)
    expected = np.zeros_like(x)
    np.add.at(expected, idx, w)
    np.testing.assert_allclose(g, expected, rtol=1e-12, atol=1e-12)
    assert g.dtype == x.dtype and g.shape == x.shape


@pytest.mark.parametrize("idx", [
    (slice(None), np.array([0, 2]), Ellipsis, np.array([1, 3])),
    (np.array([1, 0]), Ellipsis, np.array([2, 1]), slice(None)),
    (slice(None), 1, Ellipsis, np.array([0, 3])),
    (slice(None), np.array([True, False, True]), Ellipsis, np.array([True, False, True, False])),
], ids=["slice first", "slice last", "int and array", "masks"])
def test_empty_ellipsis_separates_advanced_indices(idx):
    # NumPy: an Ellipsis between advanced indices separates them even when it stands
    # for no axis, so the indexed axes go first
    x = np.arange(24.0).reshape(2, 3, 4)
    check_index(x, idx)
    want = x[idx]
    weights = np.arange(want.size, dtype=float).reshape(want.shape)
    grad = fg.grad(lambda a: fnp.sum(a[idx] * weights))(x)
    expected = np.zeros_like(x)
    np.add.at(expected, idx, weights)
    np.testing.assert_array_equal(grad, expected)


@pytest.mark.parametrize("mask_shape, x_shape", [((2,), (3,)), ((4,), (3,)), ((2, 2), (3, 3)),
                                                 ((3, 2), (3, 3))])
def test_boolean_mask_of_the_wrong_shape_is_an_error_under_every_transform(mask_shape, x_shape):
    mask, x = np.ones(mask_shape, bool), np.ones(x_shape)
    with pytest.raises(IndexError, match="boolean index did not match"):
        x[mask]
    for run in (lambda f: f(x), lambda f: fg.jit(f)(x),
                lambda f: fg.grad(lambda a: fnp.sum(f(a)))(x),
                lambda f: fg.vmap(f)(np.stack([x, x]))):
        with pytest.raises(IndexError, match="boolean index did not match indexed array"):
            run(lambda a: a[mask])


@pytest.mark.parametrize("backend", ["numba", "reference"])
def test_traced_index_arrays_are_checked_against_their_own_axis(backend):
    # the combined flat index of x[0, 5] (x 3x4) is in range: each index needs its check
    x = np.arange(12.0).reshape(3, 4)
    f = fg.jit(lambda x, i, j: x[i, j])
    previous = fg.config.read("backend")
    fg.config.update("backend", backend)
    try:
        for i, j in (([0], [5]), ([1], [-5]), ([3], [-4])):
            with pytest.raises(IndexError, match="out of bounds"):
                f(x, np.array(i), np.array(j))
        np.testing.assert_array_equal(f(x, np.array([2, 0]), np.array([3, -1])), [11.0, 3.0])
    finally:
        fg.config.update("backend", previous)


@pytest.mark.parametrize("backend", ["numba", "reference"])
def test_a_negative_index_out_of_range_is_named_as_written(backend):
    # Wrapped first, -6 on an axis of 5 was reported as index -1, a valid index.
    x = np.arange(5.0)
    previous = fg.config.read("backend")
    fg.config.update("backend", backend)
    try:
        for index, named in ((np.array([-1, -6]), -6), (np.int64(-100), -100)):
            for run in (fg.jit(lambda x, i: x[i]), lambda x, i: fg.tensor(x)[i],
                        lambda x, i: fg.grad(lambda y: fnp.sum(y[i]))(x)):
                with pytest.raises(IndexError, match=f"index {named} is out of bounds"):
                    run(x, index)
        np.testing.assert_array_equal(fg.jit(lambda x, i: x[i])(x, np.array([-1, -5, 4])),
                                      [4.0, 0.0, 4.0])
    finally:
        fg.config.update("backend", previous)
