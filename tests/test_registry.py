"""Every primitive has every rule: abstract eval, implementation, printing, JVP,
batching; every linear primitive also has a transpose rule.

Primitives are discovered by scanning modules for ``Primitive`` objects, so a
new primitive that forgets a rule makes this test fail.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import pytest

import fgrad  # noqa: F401  (imports and registers everything)
import fgrad._src.lax as lax_pkg
from fgrad._src import core
from fgrad._src.interpreters import ad, batching
from fgrad._src.pretty_print import pp_rules


def _modules():
    names = [f"fgrad._src.lax.{m.name}" for m in pkgutil.iter_modules(lax_pkg.__path__)]
    names.append("fgrad._src.custom_derivatives")
    modules = [importlib.import_module(n) for n in names]
    # Plus any other already-imported fgrad module that defines primitives.
    modules += [m for n, m in sorted(sys.modules.items()) if n.startswith("fgrad.") and m]
    return modules


def _discover():
    found = {}
    for module in _modules():
        for attr, value in list(vars(module).items()):
            if isinstance(value, core.Primitive):
                found.setdefault(id(value), (value, f"{module.__name__}.{attr}"))
    return list(found.values())


PRIMITIVES = _discover()
IDS = [f"{p.name}@{where}" for p, where in PRIMITIVES]


def test_discovery_finds_the_primitives():
    names = {p.name for p, _ in PRIMITIVES}
    # A handful of primitives from every family, so a broken scan cannot pass vacuously.
    for expected in ("add", "mul", "sin", "reduce_sum", "reduce_max", "broadcast_in_dim",
                     "reshape", "gather", "dot_general", "select_n", "convert_element_type",
                     "custom_vjp_call"):
        assert expected in names
    assert len(PRIMITIVES) >= 60


def test_primitive_names_are_unique():
    by_name = {}
    for prim, where in PRIMITIVES:
        by_name.setdefault(prim.name, []).append(where)
    duplicated = {n: w for n, w in by_name.items() if len(w) > 1}
    assert not duplicated, f"distinct primitives share a printed name: {duplicated}"


@pytest.mark.parametrize("prim,where", PRIMITIVES, ids=IDS)
def test_primitive_has_every_rule(prim, where):
    missing = [
        kind
        for kind, table in [
            ("abstract eval (core.abstract_eval_rules)", core.abstract_eval_rules),
            ("implementation (core.impl_rules)", core.impl_rules),
            ("printing (pretty_print.pp_rules)", pp_rules),
            ("JVP (ad.jvp_rules)", ad.jvp_rules),
            ("batching (batching.batch_rules)", batching.batch_rules),
        ]
        if prim not in table
    ]
    assert not missing, f"primitive {prim.name} ({where}) has no {', '.join(missing)}"
    for table in (core.abstract_eval_rules, core.impl_rules, ad.jvp_rules,
                  batching.batch_rules):
        assert callable(table[prim])
    assert pp_rules[prim] is None or callable(pp_rules[prim])


def _registered_linear(prim):
    rule = ad.jvp_rules.get(prim)
    qualname = getattr(rule, "__qualname__", "")
    return qualname.startswith(("deflinear.", "defbilinear."))


# Linear (or linear in some operand) by construction, whichever helper registered them.
LINEAR_BY_NAME = {
    "add", "sub", "neg", "mul", "div", "select_n", "convert_element_type", "reduce_sum",
    "cumsum", "broadcast_in_dim", "reshape", "transpose", "squeeze", "expand_dims",
    "concatenate", "pad", "slice", "rev", "gather", "scatter_add", "dynamic_slice",
    "dynamic_update_slice", "dot_general", "custom_lin",
}


def test_linear_detection_works():
    detected = {p.name for p, _ in PRIMITIVES if _registered_linear(p)}
    assert len(detected) >= 10, f"deflinear/defbilinear detection found only {detected}"
    names = {p.name for p, _ in PRIMITIVES}
    assert LINEAR_BY_NAME <= names, f"renamed or removed: {LINEAR_BY_NAME - names}"


@pytest.mark.parametrize("prim,where", PRIMITIVES, ids=IDS)
def test_linear_primitive_has_transpose_rule(prim, where):
    if _registered_linear(prim) or prim.name in LINEAR_BY_NAME:
        assert prim in ad.transpose_rules, f"linear primitive {prim.name} has no transpose rule"
        assert callable(ad.transpose_rules[prim])
