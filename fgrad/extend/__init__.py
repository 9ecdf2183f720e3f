"""Extending fgrad: the IR, primitives and rule helpers for new primitives."""

from fgrad._src.core import (
    ClosedJaxpr,
    Jaxpr,
    JaxprEqn,
    Literal,
    Primitive,
    ShapedArray,
    Var,
    abstract_eval_rules,
    eval_jaxpr,
    impl_rules,
    typecheck_jaxpr,
)
from fgrad._src.interpreters.ad import (
    Zero,
    defbilinear,
    defjvp,
    defjvp2,
    defjvp_instantiated,
    defjvp_minmax,
    defjvp_zero,
    deflinear,
    deftranspose,
    jvp_rules,
    transpose_rules,
)
from fgrad._src.pretty_print import pp_rules

__all__ = [
    "ClosedJaxpr", "Jaxpr", "JaxprEqn", "Literal", "Primitive", "ShapedArray", "Var",
    "abstract_eval_rules", "eval_jaxpr", "impl_rules", "typecheck_jaxpr", "Zero",
    "defbilinear", "defjvp", "defjvp2", "defjvp_instantiated", "defjvp_minmax",
    "defjvp_zero", "deflinear", "deftranspose",
    "jvp_rules", "transpose_rules", "pp_rules",
]
