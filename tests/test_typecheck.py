"""``typecheck_jaxpr`` accepts well-formed jaxprs and rejects hand-built malformed ones."""

from __future__ import annotations

import numpy as np
import pytest

import fgrad as fg
import fgrad.numpy as fnp
from fgrad._src.core import (
    Jaxpr,
    JaxprEqn,
    JaxprTypeError,
    Literal,
    ShapedArray,
    Var,
    typecheck_jaxpr,
)
from fgrad._src.lax import lax


def var(shape=(3,), dtype=np.float64):
    return Var(ShapedArray(shape, dtype))


def test_exported_as_fg_errors():
    assert fg.errors.JaxprTypeError is JaxprTypeError
    assert issubclass(JaxprTypeError, TypeError)


def test_well_formed_hand_built_jaxpr():
    c, x, y, z = var(), var(), var(), var((), np.float64)
    jaxpr = Jaxpr(
        [c], [x],
        [JaxprEqn(lax.mul_p, [x, c], {}, [y]),
         JaxprEqn(lax.reduce_sum_p, [y], {"axes": (0,)}, [z])],
        [z, x, Literal(2.0)],
    )
    out = typecheck_jaxpr(jaxpr)
    assert [(a.shape, a.dtype) for a in out] == [((), np.float64), ((3,), np.float64),
                                                 ((), np.float64)]


@pytest.mark.parametrize("f,args", [
    (lambda x: fnp.sum(fnp.tanh(x) * x), (np.ones(3),)),
    (lambda x, y: (x @ y, x[0, ::-1], fnp.where(x > 0, x, 1.0)), (np.ones((2, 3)), np.ones(3))),
    (fg.grad(lambda x: fnp.sum(fnp.logaddexp(x, 2.0 * x))), (np.ones(4, np.float32),)),
])
def test_traced_jaxprs_typecheck(f, args):
    closed = fg.make_jaxpr(f)(*args)
    out = typecheck_jaxpr(closed.jaxpr)
    assert [(a.shape, a.dtype) for a in out] == [(a.shape, a.dtype) for a in closed.out_avals]


def test_unbound_variable_in_equation():
    x, ghost, y = var(), var(), var()
    jaxpr = Jaxpr([], [x], [JaxprEqn(lax.add_p, [x, ghost], {}, [y])], [y])
    with pytest.raises(JaxprTypeError, match="before it is bound"):
        typecheck_jaxpr(jaxpr)


def test_unbound_variable_in_outputs():
    x, ghost = var(), var()
    with pytest.raises(JaxprTypeError, match="before it is bound"):
        typecheck_jaxpr(Jaxpr([], [x], [], [ghost]))


def test_use_before_definition():
    x, y, z = var(), var(), var()
    eqns = [JaxprEqn(lax.neg_p, [y], {}, [z]), JaxprEqn(lax.neg_p, [x], {}, [y])]
    with pytest.raises(JaxprTypeError, match="before it is bound"):
        typecheck_jaxpr(Jaxpr([], [x], eqns, [z]))


def test_input_bound_twice():
    x = var()
    with pytest.raises(JaxprTypeError, match="bound twice"):
        typecheck_jaxpr(Jaxpr([], [x, x], [], [x]))


def test_constvar_and_input_are_the_same_var():
    x = var()
    with pytest.raises(JaxprTypeError, match="bound twice"):
        typecheck_jaxpr(Jaxpr([x], [x], [], [x]))


def test_equation_rebinds_an_input():
    x = var()
    with pytest.raises(JaxprTypeError, match="bound twice"):
        typecheck_jaxpr(Jaxpr([], [x], [JaxprEqn(lax.neg_p, [x], {}, [x])], [x]))


def test_two_equations_bind_the_same_var():
    x, y = var(), var()
    eqns = [JaxprEqn(lax.neg_p, [x], {}, [y]), JaxprEqn(lax.sin_p, [x], {}, [y])]
    with pytest.raises(JaxprTypeError, match="bound twice"):
        typecheck_jaxpr(Jaxpr([], [x], eqns, [y]))


def test_binder_dtype_mismatch():
    x, y = var((3,), np.float64), var((3,), np.float32)
    with pytest.raises(JaxprTypeError, match="f32"):
        typecheck_jaxpr(Jaxpr([], [x], [JaxprEqn(lax.sin_p, [x], {}, [y])], [y]))


def test_binder_shape_mismatch():
    x, y = var((3,)), var((4,))
    with pytest.raises(JaxprTypeError, match=r"f64\[4\]"):
        typecheck_jaxpr(Jaxpr([], [x], [JaxprEqn(lax.sin_p, [x], {}, [y])], [y]))


def test_reduction_binder_mismatch():
    x, y = var((2, 3)), var((2,))
    eqn = JaxprEqn(lax.reduce_sum_p, [x], {"axes": (0,)}, [y])  # really f64[3]
    with pytest.raises(JaxprTypeError):
        typecheck_jaxpr(Jaxpr([], [x], [eqn], [y]))


def test_operand_types_disagree():
    x, w, y = var((3,)), var((4,)), var((3,))
    with pytest.raises(JaxprTypeError, match="add"):
        typecheck_jaxpr(Jaxpr([], [x, w], [JaxprEqn(lax.add_p, [x, w], {}, [y])], [y]))
    a, b, c = var((3,), np.float32), var((3,), np.float64), var((3,), np.float32)
    with pytest.raises(JaxprTypeError, match="add"):
        typecheck_jaxpr(Jaxpr([], [a, b], [JaxprEqn(lax.add_p, [a, b], {}, [c])], [c]))


def test_wrong_number_of_binders():
    x, y, z = var(), var(), var()
    with pytest.raises(JaxprTypeError, match="outputs"):
        typecheck_jaxpr(Jaxpr([], [x], [JaxprEqn(lax.neg_p, [x], {}, [y, z])], [y]))


def test_literal_as_binder():
    x = var()
    with pytest.raises(JaxprTypeError, match="not a Var"):
        typecheck_jaxpr(Jaxpr([], [x, Literal(1.0)], [], [x]))
