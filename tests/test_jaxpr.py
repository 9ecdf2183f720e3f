"""Golden-text tests for printed jaxprs (SPEC §1, JAX's text format):

    { lambda consts ; ins. let
        outs = primitive[param=value other=value] args
      in (outs,) }
"""

from __future__ import annotations

import collections

import numpy as np
import pytest

import fgrad as fg
import fgrad.numpy as fnp
from fgrad._src import core
from fgrad._src.core import Jaxpr, JaxprEqn, Literal, ShapedArray, Var
from fgrad._src.lax import lax

CONST = np.arange(3.0)
Point = collections.namedtuple("Point", "x y")

GOLDEN = {
    "spec_example": (
        lambda x: fnp.sum(fnp.tanh(x) * x),
        (np.ones(3),),
        """\
{ lambda ; a:f64[3]. let
    b:f64[3] = tanh a
    c:f64[3] = mul b a
    d:f64[] = reduce_sum[axes=(0,)] c
  in (d,) }""",
    ),
    "f32_times_python_float_stays_f32": (
        lambda x: x * 2.0,
        (np.ones(3, np.float32),),
        """\
{ lambda ; a:f32[3]. let
    b:f32[3] = broadcast_in_dim[broadcast_dimensions=() shape=(3,)] 2.0:f32[]
    c:f32[3] = mul a b
  in (c,) }""",
    ),
    "closed_over_array_is_a_constvar": (
        lambda x: fnp.dot(x, CONST) + CONST[0],
        (np.ones(3),),
        """\
{ lambda a:f64[3]; b:f64[3]. let
    c:f64[] = dot_general[dimension_numbers=(((0,), (0,)), ((), ()))] b a
    d:f64[] = add c 0.0:f64[]
  in (d,) }""",
    ),
    "dict_input_in_sorted_key_order": (
        lambda p: fnp.tanh(p["w"] @ p["x"] + p["b"]),
        ({"x": np.ones(3, np.float32), "w": np.ones((2, 3), np.float32),
          "b": np.ones(2, np.float32)},),
        """\
{ lambda ; a:f32[2] b:f32[2,3] c:f32[3]. let
    d:f32[2] = dot_general[dimension_numbers=(((1,), (0,)), ((), ()))] b c
    e:f32[2] = add d a
    f:f32[2] = tanh e
  in (f,) }""",
    ),
    "tuple_input_tuple_output": (
        lambda xy: (xy[0] + xy[1], xy[0] - xy[1]),
        ((np.ones(2), np.ones(2)),),
        """\
{ lambda ; a:f64[2] b:f64[2]. let
    c:f64[2] = add a b
    d:f64[2] = sub a b
  in (c, d) }""",
    ),
    "namedtuple_and_none_inputs": (
        lambda p, _: p.x * p.y,
        (Point(np.ones(2), np.ones(2)), None),
        """\
{ lambda ; a:f64[2] b:f64[2]. let
    c:f64[2] = mul a b
  in (c,) }""",
    ),
    "mean_keepdims": (
        lambda x: fnp.mean(x, axis=1, keepdims=True),
        (np.ones((2, 3), np.float32),),
        """\
{ lambda ; a:f32[2,3]. let
    b:f32[2] = reduce_sum[axes=(1,)] a
    c:f32[2,1] = reshape[new_sizes=(2, 1)] b
    d:f32[2,1] = broadcast_in_dim[broadcast_dimensions=() shape=(2, 1)] 3.0:f32[]
    e:f32[2,1] = div c d
  in (e,) }""",
    ),
    "relu_with_where": (
        lambda x: fnp.where(x > 0, x, 0.0),
        (np.ones(4),),
        """\
{ lambda ; a:f64[4]. let
    b:f64[4] = broadcast_in_dim[broadcast_dimensions=() shape=(4,)] 0.0:f64[]
    c:bool[4] = gt a b
    d:f64[4] = select_n c b a
  in (d,) }""",
    ),
    "slicing_with_negative_step": (
        lambda x: x[1:, ::-2],
        (np.ones((3, 4)),),
        """\
{ lambda ; a:f64[3,4]. let
    b:f64[3,4] = rev[dimensions=(1,)] a
    c:f64[2,2] = slice[limit_indices=(3, 3) start_indices=(1, 0) strides=(1, 2)] b
  in (c,) }""",
    ),
    "integer_array_index_is_a_constvar": (
        lambda x: x[np.array([2, 0])],
        (np.ones((3, 2)),),
        """\
{ lambda a:i64[2]; b:f64[3,2]. let
    c:f64[2,2] = gather[axis=0] b a
  in (c,) }""",
    ),
    "gradient_program": (
        fg.grad(lambda x: fnp.sum(fnp.sin(x))),
        (np.ones(3),),
        """\
{ lambda ; a:f64[3]. let
    b:f64[3] = cos a
    c:f64[3] = broadcast_in_dim[broadcast_dimensions=() shape=(3,)] 1.0:f64[]
    d:f64[3] = mul c b
  in (d,) }""",
    ),
    "int_and_bool_outputs": (
        lambda i: (i + 1, i > 2),
        (np.arange(2),),
        """\
{ lambda ; a:i64[2]. let
    b:i64[2] = broadcast_in_dim[broadcast_dimensions=() shape=(2,)] 1:i64[]
    c:i64[2] = add a b
    d:i64[2] = broadcast_in_dim[broadcast_dimensions=() shape=(2,)] 2:i64[]
    e:bool[2] = gt a d
  in (c, e) }""",
    ),
    "weak_scalar_argument": (
        lambda x, s: x * (s / 2.0),
        (np.ones(2, np.float32), 3.0),
        """\
{ lambda ; a:f32[2] b:f64[]. let
    c:f64[] = div b 2.0:f64[]
    d:f32[] = convert_element_type[new_dtype=float32] c
    e:f32[2] = broadcast_in_dim[broadcast_dimensions=() shape=(2,)] d
    f:f32[2] = mul a e
  in (f,) }""",
    ),
    "cast_then_reduce_max": (
        lambda x: fnp.max(x.astype(np.float32), axis=0),
        (np.ones((2, 2)),),
        """\
{ lambda ; a:f64[2,2]. let
    b:f32[2,2] = convert_element_type[new_dtype=float32] a
    c:f32[2] = reduce_max[axes=(0,)] b
  in (c,) }""",
    ),
    "no_equations": (lambda x: x, (np.ones(3),), "{ lambda ; a:f64[3]. let  in (a,) }"),
    "no_outputs": (lambda x: (), (1.0,), "{ lambda ; a:f64[]. let  in () }"),
    "no_inputs_constant_result": (
        lambda: fnp.zeros(2) + 1.0, (), "{ lambda a:f64[2]; . let  in (a,) }"
    ),
}


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_text(name, capsys):
    f, args, expected = GOLDEN[name]
    closed = fg.make_jaxpr(f)(*args)
    assert str(closed) == expected
    assert repr(closed) == expected
    print(closed)
    assert capsys.readouterr().out == expected + "\n"
    core.typecheck_jaxpr(closed.jaxpr)  # what we print is also well-typed


def test_variable_names_continue_past_z():
    def chain(x):
        for _ in range(30):
            x = -x
        return x

    lines = str(fg.make_jaxpr(chain)(1.0)).splitlines()
    assert lines[0] == "{ lambda ; a:f64[]. let"
    assert lines[1] == "    b:f64[] = neg a"
    assert lines[25] == "    z:f64[] = neg y"
    assert lines[26] == "    ba:f64[] = neg z"
    assert lines[27] == "    bb:f64[] = neg ba"
    assert lines[-1] == "  in (be,) }"  # a + 30 more names


def _var(shape=(), dtype=np.float64):
    return Var(ShapedArray(shape, dtype))


def test_literals_of_each_dtype():
    a = _var((2,), np.float32)
    b, c, d = _var((2,), np.float32), _var((2,), np.int64), _var((2,), np.bool_)
    eqns = [
        JaxprEqn(lax.mul_p, [a, Literal(np.float32(0.5))], {}, [b]),
        JaxprEqn(lax.add_p, [Literal(np.int64(-3)), Literal(np.int64(1))], {}, [c]),
        JaxprEqn(lax.and_p, [Literal(np.True_), Literal(False)], {}, [d]),
    ]
    text = str(Jaxpr([], [a], eqns, [b, c, d]))
    assert text == """\
{ lambda ; a:f32[2]. let
    b:f32[2] = mul a 0.5:f32[]
    c:i64[2] = add -3:i64[] 1:i64[]
    d:bool[2] = and True:bool[] False:bool[]
  in (b, c, d) }"""


def test_a_broadcast_literal_is_staged_once_per_value_dtype_and_shape():
    def f(x, y):
        return (x * 0.5 + x * 0.5 + x * -0.0 + x * 0.0 + y * 0.5 + fnp.sum(x[:2] * 0.5)
                + fnp.sum(x[:2] * 0.5))

    text = str(fg.make_jaxpr(f)(np.ones(3), np.ones(3, np.float32)))
    operands = [line.split("] ")[-1] for line in text.splitlines() if "broadcast_in_dim" in line]
    staged = [operand for operand in operands if ":" in operand]  # literals, not variables
    # one per (value bits, dtype, shape): -0.0 and 0.0 differ, f32 and f64 differ
    assert sorted(staged) == sorted(["0.5:f64[]", "-0.0:f64[]", "0.0:f64[]", "0.5:f32[]",
                                     "0.5:f64[]"])
    assert text.count("shape=(2,)") == 1
    assert fg.jit(f)(np.ones(3), np.ones(3, np.float32)) == pytest.approx(f(
        np.ones(3), np.ones(3, np.float32)))


def test_nested_jaxpr_param_and_multiple_binders():
    inner_x = _var((3,))
    inner_y = _var((3,))
    inner = Jaxpr([], [inner_x], [JaxprEqn(lax.sin_p, [inner_x], {}, [inner_y])], [inner_y])
    x, y, z = _var((3,)), _var((3,)), _var((3,))
    outer = Jaxpr([], [x], [JaxprEqn(lax.neg_p, [x], {"jaxpr": inner, "name": "f"}, [y, z])],
                  [z, y])
    assert str(outer) == """\
{ lambda ; a:f64[3]. let
    b:f64[3] c:f64[3] = neg[jaxpr={ lambda ; d:f64[3]. let
          e:f64[3] = sin d
        in (e,) } name=f] a
  in (c, b) }"""


def test_unbound_variable_prints_as_unbound():
    x, ghost, y = _var(), _var(), _var()
    text = str(Jaxpr([], [x], [JaxprEqn(lax.add_p, [x, ghost], {}, [y])], [y]))
    assert "<unbound Var(f64[])>" in text


def test_custom_vjp_call_prints_its_name():
    @fg.custom_vjp
    def f(x):
        return fnp.sin(x)

    f.defvjp(lambda x: (fnp.sin(x), fnp.cos(x)), lambda res, g: (res * g,))
    text = str(fg.make_jaxpr(f)(np.ones(3)))
    assert "custom_vjp_call[" in text and "name=f" in text
    assert text.startswith("{ lambda ; a:f64[3]. let\n    b:f64[3] = custom_vjp_call[")


def test_make_jaxpr_traces_keyword_arguments_and_checks_static_argnums():
    text = str(fg.make_jaxpr(lambda x, scale=2.0: x * scale)(
        np.ones(3, np.float32), scale=np.float32(3.0)))
    assert text.startswith("{ lambda ; a:f32[3] b:f32[]. let")  # scale is an input
    # a negative position counts from the end; one past the arguments is an error
    text = str(fg.make_jaxpr(lambda x, s: x * len(s), static_argnums=-1)(np.ones(2), "ab"))
    assert "2.0:f64[]" in text
    with pytest.raises(ValueError, match="out of range"):
        fg.make_jaxpr(lambda x: x, static_argnums=3)(np.ones(2))
    assert "3.0:f64[]" in str(fg.make_jaxpr(lambda x, n: x * n, static_argnums=np.int64(1))(
        np.ones(2), 3))
