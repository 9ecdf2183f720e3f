"""Jaxpr -> text, in JAX's format: ``{ lambda consts ; ins. let eqns in (outs,) }``.

Variables get alphabetic names (a, b, ..., z, ba, bb, ...) in binding order;
params print sorted by name and separated by spaces, as in JAX
(``broadcast_in_dim[broadcast_dimensions=() shape=(3,)]``); nested jaxprs print in
full; a primitive may register a custom param printer.
"""

import numpy as np

from fgrad._src.core import ClosedJaxpr, Jaxpr, Literal

# Primitive -> function(params) -> dict of printable params. Primitives whose
# params print with the default formatter are registered with ``None``.
pp_rules: dict = {}


def _alphabetic(n: int) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = letters[n % 26]
    n //= 26
    while n:
        out = letters[n % 26] + out
        n //= 26
    return out


def pp_param_value(value, names=None) -> str:
    """Text of one param value: tuples as ``(0,)``, dtypes by name, jaxprs nested.

    >>> pp_param_value((0,)), pp_param_value(np.dtype("float32"))
    ('(0,)', 'float32')
    """
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, type) and issubclass(value, np.generic):
        return np.dtype(value).name
    if isinstance(value, tuple):
        inner = ", ".join(pp_param_value(v, names) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, ClosedJaxpr):
        value = value.jaxpr
    if isinstance(value, Jaxpr):
        # A nested jaxpr prints in full (its variables continue the outer naming, as in
        # JAX), its lines indented under the equation.
        return _pp_jaxpr(value, names or _Names()).replace("\n", "\n      ")
    if callable(value):
        return getattr(value, "__name__", type(value).__name__)
    return str(value)


class _Names:
    def __init__(self):
        self.names: dict = {}
        self.count = 0

    def bind(self, var) -> str:
        name = self.names[var] = _alphabetic(self.count)
        self.count += 1
        return f"{name}:{var.aval.str_short()}"

    def atom(self, x) -> str:
        if isinstance(x, Literal):
            val = np.asarray(x.val)[()]
            return f"{val}:{x.aval.str_short()}"
        return self.names.get(x, f"<unbound {x!r}>")


def pp_eqn_params(eqn, names=None) -> str:
    rule = pp_rules.get(eqn.primitive)
    params = rule(eqn.params) if rule is not None else eqn.params
    if not params:
        return ""
    items = " ".join(f"{k}={pp_param_value(params[k], names)}" for k in sorted(params))
    return f"[{items}]"


def pp_jaxpr(jaxpr: Jaxpr) -> str:
    """Render ``jaxpr`` as text.

    >>> import fgrad as fg
    >>> print(pp_jaxpr(fg.make_jaxpr(lambda x: -x)(np.ones(2)).jaxpr))
    { lambda ; a:f64[2]. let
        b:f64[2] = neg a
      in (b,) }
    """
    return _pp_jaxpr(jaxpr, _Names())


def _pp_jaxpr(jaxpr: Jaxpr, names: _Names) -> str:
    consts = " ".join(names.bind(v) for v in jaxpr.constvars)
    ins = " ".join(names.bind(v) for v in jaxpr.in_binders)
    lines = []
    for eqn in jaxpr.eqns:
        lhs = " ".join(names.bind(v) for v in eqn.out_binders)
        rhs = " ".join(names.atom(x) for x in eqn.inputs)
        lines.append(f"    {lhs} = {eqn.primitive.name}{pp_eqn_params(eqn, names)} {rhs}".rstrip())
    outs = ", ".join(names.atom(x) for x in jaxpr.outs)
    outs = f"({outs},)" if len(jaxpr.outs) == 1 else f"({outs})"
    head = f"{{ lambda {consts}; {ins}. let" if consts else f"{{ lambda ; {ins}. let"
    if not lines:
        return f"{head}  in {outs} }}"
    return "\n".join([head, *lines, f"  in {outs} }}"])
